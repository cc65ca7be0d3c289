/* The current-value table behind /metrics: a chained hash of series keys under one mutex,
 * sorted at render time so that each metric family comes out in one block. */
#include "monitor/latest.h"

#include "util/error.h"
#include "util/mem.h"

#include <math.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FAMILIES 256

struct family {
    const char *name;
    enum gc_metric_type type;
    const char *help;
};

struct entry {
    struct entry *next;
    uint64_t hash;
    size_t metric_len; /* the metric name is key[0..metric_len) */
    double value;
    int64_t t_ms;
    int64_t gap_ms;    /* between the last two samples: the series' own interval */
    char key[];        /* metric{labels} */
};

static struct {
    pthread_mutex_t lock;
    struct entry **buckets;
    size_t nbuckets, n;
    int64_t floor_ms;
    struct family fam[MAX_FAMILIES];
    size_t nfam;
} L = {.lock = PTHREAD_MUTEX_INITIALIZER};

static uint64_t fnv(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

void gc_metric_describe(const char *name, enum gc_metric_type type, const char *help)
{
    pthread_mutex_lock(&L.lock);
    size_t i = 0;
    while (i < L.nfam && strcmp(L.fam[i].name, name) != 0)
        i++;
    if (i == MAX_FAMILIES)
        GC_BUG("too many metric families");
    L.fam[i] = (struct family){name, type, help};
    if (i == L.nfam)
        L.nfam++;
    pthread_mutex_unlock(&L.lock);
}

static const struct family *family_of(const char *name, size_t len)
{
    for (size_t i = 0; i < L.nfam; i++)
        if (strlen(L.fam[i].name) == len && memcmp(L.fam[i].name, name, len) == 0)
            return &L.fam[i];
    return NULL;
}

void gc_latest_init(int64_t min_expire_ms)
{
    pthread_mutex_lock(&L.lock);
    L.floor_ms = min_expire_ms;
    pthread_mutex_unlock(&L.lock);
}

static void grow(void)
{
    size_t nb = L.nbuckets ? L.nbuckets * 2 : 1024;
    struct entry **b = gc_calloc(nb, sizeof(*b));
    for (size_t i = 0; i < L.nbuckets; i++)
        for (struct entry *e = L.buckets[i], *next; e; e = next) {
            next = e->next;
            e->next = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
        }
    free(L.buckets);
    L.buckets = b;
    L.nbuckets = nb;
}

/* The slot that holds key, or the empty slot at the end of its chain. */
static struct entry **find(const char *key, size_t len, uint64_t h)
{
    struct entry **pp = &L.buckets[h & (L.nbuckets - 1)];
    while (*pp && !((*pp)->hash == h && strlen((*pp)->key) == len &&
                    memcmp((*pp)->key, key, len) == 0))
        pp = &(*pp)->next;
    return pp;
}

static void latest_append(void *opaque, const struct gc_sample *s, size_t n)
{
    (void)opaque;
    struct gc_buf key;
    gc_buf_init(&key, 64 * 1024);
    pthread_mutex_lock(&L.lock);
    for (size_t i = 0; i < n; i++) {
        gc_buf_reset(&key);
        if (gc_series_key(&s[i].series, &key) != 0)
            continue; /* a series key of 64 KiB is a bug upstream; skip it */
        if (L.n + 1 > L.nbuckets * 3 / 4)
            grow();
        uint64_t h = fnv(key.data, key.len);
        struct entry **pp = find(key.data, key.len, h);
        struct entry *e = *pp;
        if (!e) {
            e = gc_malloc(sizeof(*e) + key.len + 1);
            memcpy(e->key, key.data, key.len + 1);
            e->next = NULL;
            e->hash = h;
            e->metric_len = strlen(s[i].series.metric);
            e->gap_ms = 0;
            e->t_ms = s[i].t_ms;
            *pp = e;
            L.n++;
        } else if (s[i].t_ms > e->t_ms) {
            e->gap_ms = s[i].t_ms - e->t_ms;
        } else if (s[i].t_ms < e->t_ms) {
            continue; /* an older sample arriving late */
        }
        e->t_ms = s[i].t_ms;
        e->value = s[i].value;
    }
    pthread_mutex_unlock(&L.lock);
    gc_buf_release(&key);
}

static const struct gc_sample_sink sink = {"latest", latest_append, NULL};

const struct gc_sample_sink *gc_latest_sink(void)
{
    return &sink;
}

void gc_latest_forget(const struct gc_series *s)
{
    struct gc_buf key;
    gc_buf_init(&key, 64 * 1024);
    if (gc_series_key(s, &key) == 0) {
        pthread_mutex_lock(&L.lock);
        if (L.nbuckets) {
            struct entry **pp = find(key.data, key.len, fnv(key.data, key.len));
            struct entry *e = *pp;
            if (e) {
                *pp = e->next;
                free(e);
                L.n--;
            }
        }
        pthread_mutex_unlock(&L.lock);
    }
    gc_buf_release(&key);
}

void gc_latest_clear(void)
{
    pthread_mutex_lock(&L.lock);
    for (size_t i = 0; i < L.nbuckets; i++)
        for (struct entry *e = L.buckets[i], *next; e; e = next) {
            next = e->next;
            free(e);
        }
    free(L.buckets);
    L.buckets = NULL;
    L.nbuckets = L.n = 0;
    pthread_mutex_unlock(&L.lock);
}

size_t gc_latest_count(void)
{
    pthread_mutex_lock(&L.lock);
    size_t n = L.n;
    pthread_mutex_unlock(&L.lock);
    return n;
}

int gc_prom_value(struct gc_buf *b, double v)
{
    if (isnan(v))
        return gc_buf_adds(b, "NaN");
    if (isinf(v))
        return gc_buf_adds(b, v > 0 ? "+Inf" : "-Inf");
    char tmp[40];
    /* the shortest %g that reads back to the same double */
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    return gc_buf_adds(b, tmp);
}

int gc_prom_help(struct gc_buf *b, const char *help)
{
    int rc = 0;
    for (const char *p = help; *p; p++) {
        if (*p == '\\')
            rc |= gc_buf_add(b, "\\\\", 2);
        else if (*p == '\n')
            rc |= gc_buf_add(b, "\\n", 2);
        else
            rc |= gc_buf_add(b, p, 1);
    }
    return rc ? GC_ETOOBIG : 0;
}

static int by_family_then_key(const void *a, const void *b)
{
    const struct entry *x = *(const struct entry *const *)a;
    const struct entry *y = *(const struct entry *const *)b;
    size_t n = x->metric_len < y->metric_len ? x->metric_len : y->metric_len;
    int c = memcmp(x->key, y->key, n);
    if (c)
        return c;
    if (x->metric_len != y->metric_len)
        return x->metric_len < y->metric_len ? -1 : 1;
    return strcmp(x->key + x->metric_len, y->key + y->metric_len);
}

static bool expired(const struct entry *e, int64_t now_ms)
{
    if (L.floor_ms <= 0)
        return false;
    int64_t ttl = 3 * e->gap_ms > L.floor_ms ? 3 * e->gap_ms : L.floor_ms;
    return now_ms - e->t_ms > ttl;
}

int gc_latest_render(struct gc_buf *b, int64_t now_ms)
{
    int rc = 0;
    pthread_mutex_lock(&L.lock);
    struct entry **all = gc_malloc((L.n ? L.n : 1) * sizeof(*all));
    size_t k = 0;
    for (size_t i = 0; i < L.nbuckets; i++) {
        struct entry **pp = &L.buckets[i];
        while (*pp) {
            struct entry *e = *pp;
            if (expired(e, now_ms)) {
                *pp = e->next;
                free(e);
                L.n--;
                continue;
            }
            all[k++] = e;
            pp = &e->next;
        }
    }
    qsort(all, k, sizeof(*all), by_family_then_key);
    for (size_t i = 0; i < k && !rc; i++) {
        const struct entry *e = all[i];
        if (i == 0 || all[i - 1]->metric_len != e->metric_len ||
            memcmp(all[i - 1]->key, e->key, e->metric_len) != 0) {
            const struct family *f = family_of(e->key, e->metric_len);
            rc |= gc_buf_addf(b, "# HELP %.*s ", (int)e->metric_len, e->key);
            rc |= gc_prom_help(b, f ? f->help : "Collected by govcloudd.");
            rc |= gc_buf_addf(b, "\n# TYPE %.*s %s\n", (int)e->metric_len, e->key,
                              !f                             ? "untyped"
                              : f->type == GC_METRIC_COUNTER ? "counter"
                                                             : "gauge");
        }
        rc |= gc_buf_adds(b, e->key);
        rc |= gc_buf_add(b, " ", 1);
        rc |= gc_prom_value(b, e->value);
        rc |= gc_buf_add(b, "\n", 1);
    }
    free(all);
    pthread_mutex_unlock(&L.lock);
    return rc ? GC_ETOOBIG : 0;
}
