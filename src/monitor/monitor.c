/* The fan-out from collectors to sinks, and the canonical form of a series. */
#include "monitor/monitor.h"

#include "util/error.h"

#include "util/mem.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
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

/* ---- reasons: a short list, for failures are few ---- */

struct note {
    struct note *next;
    char *key, *reason;
};

static struct {
    pthread_mutex_t lock;
    struct note *head;
    size_t n;
} N = {.lock = PTHREAD_MUTEX_INITIALIZER};

void gc_monitor_note(const struct gc_series *s, const char *reason)
{
    struct gc_buf k;
    gc_buf_init(&k, 4096);
    if (gc_series_key(s, &k) != 0) {
        gc_buf_release(&k);
        return;
    }
    pthread_mutex_lock(&N.lock);
    struct note **pp = &N.head;
    while (*pp && strcmp((*pp)->key, gc_buf_str(&k)) != 0)
        pp = &(*pp)->next;
    if (*pp && !reason) {
        struct note *x = *pp;
        *pp = x->next;
        free(x->key);
        free(x->reason);
        free(x);
        N.n--;
    } else if (*pp) {
        free((*pp)->reason);
        (*pp)->reason = gc_strdup(reason);
    } else if (reason && N.n < 4096) {
        struct note *x = gc_calloc(1, sizeof(*x));
        x->key = gc_buf_steal(&k);
        x->reason = gc_strdup(reason);
        x->next = N.head;
        N.head = x;
        N.n++;
    }
    pthread_mutex_unlock(&N.lock);
    gc_buf_release(&k);
}

bool gc_monitor_reason(const char *key, char *out, size_t n)
{
    bool found = false;
    pthread_mutex_lock(&N.lock);
    for (struct note *x = N.head; x; x = x->next)
        if (strcmp(x->key, key) == 0) {
            snprintf(out, n, "%s", x->reason);
            found = true;
            break;
        }
    pthread_mutex_unlock(&N.lock);
    return found;
}
