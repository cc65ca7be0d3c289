/* The fan-out from collectors to sinks, and the canonical form of a series. */
#include "monitor/monitor.h"

#include "util/error.h"

#include <pthread.h>
#include <string.h>

static struct {
    pthread_rwlock_t lock;
    struct gc_sample_sink sinks[GC_MONITOR_SINKS_MAX];
    size_t n;
} S = {.lock = PTHREAD_RWLOCK_INITIALIZER};

int gc_monitor_add_sink(const struct gc_sample_sink *sink)
{
    int rc = 0;
    pthread_rwlock_wrlock(&S.lock);
    if (S.n == GC_MONITOR_SINKS_MAX)
        rc = GC_EINVAL;
    else
        S.sinks[S.n++] = *sink;
    pthread_rwlock_unlock(&S.lock);
    return rc;
}

void gc_monitor_clear_sinks(void)
{
    pthread_rwlock_wrlock(&S.lock);
    S.n = 0;
    pthread_rwlock_unlock(&S.lock);
}

void gc_monitor_emit(const struct gc_sample *s, size_t n)
{
    if (n == 0)
        return;
    pthread_rwlock_rdlock(&S.lock);
    for (size_t i = 0; i < S.n; i++)
        S.sinks[i].append(S.sinks[i].opaque, s, n);
    pthread_rwlock_unlock(&S.lock);
}

int gc_series_key(const struct gc_series *s, struct gc_buf *out)
{
    int rc = gc_buf_adds(out, s->metric);
    if (s->nlabels > 0)
        rc |= gc_buf_add(out, "{", 1);
    for (int i = 0; i < s->nlabels; i++) {
        if (i)
            rc |= gc_buf_add(out, ",", 1);
        rc |= gc_buf_adds(out, s->labels[i].name);
        rc |= gc_buf_add(out, "=\"", 2);
        for (const char *p = s->labels[i].value; *p; p++) {
            if (*p == '\\')
                rc |= gc_buf_add(out, "\\\\", 2);
            else if (*p == '"')
                rc |= gc_buf_add(out, "\\\"", 2);
            else if (*p == '\n')
                rc |= gc_buf_add(out, "\\n", 2);
            else
                rc |= gc_buf_add(out, p, 1);
        }
        rc |= gc_buf_add(out, "\"", 1);
    }
    if (s->nlabels > 0)
        rc |= gc_buf_add(out, "}", 1);
    return rc ? GC_ETOOBIG : 0;
}
