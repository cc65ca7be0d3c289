/* The embedded time-series store: see tsdb.h. */
#include "monitor/tsdb.h"

#include "monitor/tsdb_codec.h"
#include "store/store.h"
#include "util/config.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/timeutil.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NSHARDS 64
#define RAW_LOOKBACK_MS (24 * 3600 * INT64_C(1000)) /* longest raw chunk span accepted */
#define AGG_POINTS 120                              /* points per aggregate chunk */
#define FLUSH_BATCH 4096                            /* rows per flush transaction */

const int64_t gc_tsdb_res_ms[GC_RES_COUNT] = {0, 300000, 3600000};
static const char *const res_name[GC_RES_COUNT] = {"raw", "5m", "1h"};

struct gc_tsdb *gc_tsdb_global;

struct sealed {
    struct sealed *next;
    uint8_t *blob;
    size_t len;
    int64_t start, end;
    uint32_t count;
};

struct series {
    struct series *next; /* hash chain */
    uint64_t hash;
    int64_t id;
    char *key;
    /* until the series row is written (flusher only after creation) */
    char *metric, *labels, *dept;
    bool persisted;
    bool dirty; /* open chunk has samples not yet written */
    int64_t last_t;
    int64_t open_start;
    struct gc_chunk_enc open;
    struct sealed *sealed;
};

struct shard {
    pthread_mutex_t mu;
    struct series **tab;
    size_t cap, n;
    uint64_t appended, ooo, dups, invalid;
};

struct gc_tsdb {
    struct gc_store *st;
    struct gc_tsdb_opts o;
    struct shard sh[NSHARDS];
    pthread_mutex_t id_mu;
    int64_t next_id;
    pthread_mutex_t flush_mu; /* one flush or maintenance at a time */
    pthread_mutex_t stat_mu;
    struct gc_tsdb_stats stats;
    int64_t wm[GC_RES_COUNT]; /* roll-up watermarks (under stat_mu); 0: none */
    /* background thread */
    pthread_t thr;
    bool thr_running;
    pthread_mutex_t thr_mu;
    pthread_cond_t thr_cv;
    bool stop;
};

void gc_tsdb_opts_default(struct gc_tsdb_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->flush_interval_ms = 10000;
    o->rollup_interval_ms = 600000;
    o->retention_ms[GC_RES_RAW] = 15 * INT64_C(86400000);
    o->retention_ms[GC_RES_5M] = 365 * INT64_C(86400000);
    o->retention_ms[GC_RES_1H] = 3 * 365 * INT64_C(86400000);
    o->chunk_max_samples = 120;
    o->chunk_max_span_ms = 2 * 3600 * INT64_C(1000);
    o->rollup_grace_ms = 300000;
}

void gc_tsdb_opts_from_config(struct gc_tsdb_opts *o, const struct gc_config *cfg)
{
    gc_tsdb_opts_default(o);
    o->flush_interval_ms = cfg->tsdb_flush_interval * 1000;
    o->rollup_interval_ms = cfg->tsdb_rollup_interval * 1000;
    o->retention_ms[GC_RES_RAW] = cfg->tsdb_retention_raw_days * INT64_C(86400000);
    o->retention_ms[GC_RES_5M] = cfg->tsdb_retention_5m_days * INT64_C(86400000);
    o->retention_ms[GC_RES_1H] = cfg->tsdb_retention_1h_days * INT64_C(86400000);
    if (o->rollup_grace_ms < 2 * o->flush_interval_ms + 60000)
        o->rollup_grace_ms = 2 * o->flush_interval_ms + 60000;
}

static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = UINT64_C(1469598103934665603);
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= UINT64_C(1099511628211);
    }
    return h ^ (h >> 29);
}

static void shard_insert(struct shard *sh, struct series *s)
{
    if (sh->n + 1 > sh->cap * 3 / 4) {
        size_t cap = sh->cap ? sh->cap * 2 : 256;
        struct series **tab = gc_calloc(cap, sizeof(*tab));
        for (size_t i = 0; i < sh->cap; i++)
            for (struct series *x = sh->tab[i], *nx; x; x = nx) {
                nx = x->next;
                size_t b = (x->hash >> 6) & (cap - 1);
                x->next = tab[b];
                tab[b] = x;
            }
        free(sh->tab);
        sh->tab = tab;
        sh->cap = cap;
    }
    size_t b = (s->hash >> 6) & (sh->cap - 1);
    s->next = sh->tab[b];
    sh->tab[b] = s;
    sh->n++;
}

static struct series *shard_find(struct shard *sh, uint64_t h, const char *key, size_t len)
{
    if (!sh->cap)
        return NULL;
    for (struct series *x = sh->tab[(h >> 6) & (sh->cap - 1)]; x; x = x->next)
        if (x->hash == h && strncmp(x->key, key, len) == 0 && x->key[len] == '\0')
            return x;
    return NULL;
}

static struct series *series_new(uint64_t h, const char *key, int64_t id)
{
    struct series *s = gc_calloc(1, sizeof(*s));
    s->hash = h;
    s->key = gc_strdup(key);
    s->id = id;
    s->last_t = -1;
    gc_chunk_init(&s->open, 1);
    return s;
}

static void seal(struct series *s)
{
    if (s->open.n == 0)
        return;
    gc_chunk_optimize(&s->open);
    struct sealed *c = gc_malloc(sizeof(*c));
    c->len = gc_chunk_size(&s->open);
    c->blob = gc_malloc(c->len);
    gc_chunk_serialize(&s->open, c->blob);
    c->start = s->open_start;
    c->end = s->open.tprev;
    c->count = s->open.n;
    /* kept in order: oldest first */
    struct sealed **pp = &s->sealed;
    while (*pp)
        pp = &(*pp)->next;
    c->next = NULL;
    *pp = c;
    gc_chunk_free(&s->open);
    gc_chunk_init(&s->open, 1);
    s->dirty = false;
}

static bool valid_series(const struct gc_series *s)
{
    if (!s->metric || !s->metric[0] || s->nlabels < 0 || s->nlabels > GC_SERIES_LABELS_MAX)
        return false;
    for (int i = 0; i < s->nlabels; i++) {
        if (!s->labels[i].name || !s->labels[i].name[0] || !s->labels[i].value)
            return false;
        if (i && strcmp(s->labels[i - 1].name, s->labels[i].name) >= 0)
            return false; /* sorted, no repeats */
    }
    return true;
}

static char *labels_json(const struct gc_series *s, char **dept)
{
    json_t *o = json_object();
    *dept = NULL;
    for (int i = 0; i < s->nlabels; i++) {
        json_object_set_new(o, s->labels[i].name, json_string(s->labels[i].value));
        if (strcmp(s->labels[i].name, "department_id") == 0 && s->labels[i].value[0])
            *dept = gc_strdup(s->labels[i].value);
    }
    char *txt = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    return txt ? txt : gc_strdup("{}");
}

/* gc_series_key into buf (cap bytes), fast: whole values are copied when they need no
 * escaping. Returns the length, or -1 when it does not fit. */
int gc_tsdb_series_key(const struct gc_series *s, char *buf, size_t cap)
{
    size_t n = 0, len = strlen(s->metric);
    if (len + 2 > cap)
        return -1;
    memcpy(buf, s->metric, len);
    n = len;
    if (s->nlabels > 0)
        buf[n++] = '{';
    for (int i = 0; i < s->nlabels; i++) {
        const char *name = s->labels[i].name, *v = s->labels[i].value;
        size_t nl = strlen(name), vl = strlen(v);
        if (n + nl + 2 * vl + 6 > cap)
            return -1;
        if (i)
            buf[n++] = ',';
        memcpy(buf + n, name, nl);
        n += nl;
        buf[n++] = '=';
        buf[n++] = '"';
        if (!strpbrk(v, "\\\"\n")) {
            memcpy(buf + n, v, vl);
            n += vl;
        } else {
            for (; *v; v++) {
                if (*v == '\\' || *v == '"' || *v == '\n') {
                    buf[n++] = '\\';
                    buf[n++] = *v == '\n' ? 'n' : *v;
                } else {
                    buf[n++] = *v;
                }
            }
        }
        buf[n++] = '"';
    }
    if (s->nlabels > 0)
        buf[n++] = '}';
    buf[n] = '\0';
    return (int)n;
}

void gc_tsdb_append(void *p, const struct gc_sample *smp, size_t n)
{
    struct gc_tsdb *db = p;
    char key[4096];
    for (size_t i = 0; i < n; i++) {
        const struct gc_sample *x = &smp[i];
        int klen = -1;
        bool ok = x->t_ms >= 0 && x->t_ms < GC_CHUNK_TMAX &&
                  valid_series(&x->series) &&
                  (klen = gc_tsdb_series_key(&x->series, key, sizeof(key))) > 0;
        uint64_t h = ok ? hash_bytes(key, (size_t)klen) : 0;
        struct shard *sh = &db->sh[h % NSHARDS];
        pthread_mutex_lock(&sh->mu);
        if (!ok) {
            sh->invalid++;
            pthread_mutex_unlock(&sh->mu);
            continue;
        }
        struct series *s = shard_find(sh, h, key, (size_t)klen);
        if (!s) {
            pthread_mutex_lock(&db->id_mu);
            int64_t id = db->next_id++;
            pthread_mutex_unlock(&db->id_mu);
            s = series_new(h, key, id);
            s->metric = gc_strdup(x->series.metric);
            s->labels = labels_json(&x->series, &s->dept);
            shard_insert(sh, s);
        }
        if (x->t_ms <= s->last_t) {
            if (x->t_ms == s->last_t)
                sh->dups++;
            else
                sh->ooo++;
            pthread_mutex_unlock(&sh->mu);
            continue;
        }
        if (s->open.n > 0 && x->t_ms - s->open_start >= db->o.chunk_max_span_ms)
            seal(s);
        if (s->open.n == 0)
            s->open_start = x->t_ms;
        gc_chunk_append(&s->open, x->t_ms, &x->value);
        s->last_t = x->t_ms;
        s->dirty = true;
        if (s->open.n >= (uint32_t)db->o.chunk_max_samples)
            seal(s);
        sh->appended++;
        pthread_mutex_unlock(&sh->mu);
    }
}

struct gc_sample_sink gc_tsdb_sink(struct gc_tsdb *db)
{
    struct gc_sample_sink k = {.name = "tsdb", .append = gc_tsdb_append, .opaque = db};
    return k;
}

/* ---- flush ---- */

struct work {
    struct series *s;
    struct sealed *c; /* a sealed chunk, or a snapshot of the open one */
    bool open;
};

static const char *const SQL_UPSERT =
    "INSERT INTO tsdb_chunks (series_id, resolution, start_ms, end_ms, count, data)"
    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (series_id, resolution, start_ms) DO UPDATE SET"
    " end_ms = excluded.end_ms, count = excluded.count, data = excluded.data";

static int do_flush(struct gc_tsdb *db, struct gc_error *err)
{
    int64_t t0 = gc_mono_ns();
    size_t nw = 0, capw = 0, nnew = 0, capnew = 0;
    struct work *w = NULL;
    struct series **fresh = NULL;
    for (int k = 0; k < NSHARDS; k++) {
        struct shard *sh = &db->sh[k];
        pthread_mutex_lock(&sh->mu);
        for (size_t b = 0; b < sh->cap; b++)
            for (struct series *s = sh->tab[b]; s; s = s->next) {
                if (!s->persisted) {
                    if (nnew == capnew) {
                        capnew = capnew ? capnew * 2 : 256;
                        fresh = gc_realloc(fresh, capnew * sizeof(*fresh));
                    }
                    fresh[nnew++] = s;
                }
                while (s->sealed || (s->dirty && s->open.n)) {
                    if (nw == capw) {
                        capw = capw ? capw * 2 : 1024;
                        w = gc_realloc(w, capw * sizeof(*w));
                    }
                    struct work *x = &w[nw++];
                    x->s = s;
                    if (s->sealed) {
                        x->c = s->sealed;
                        s->sealed = x->c->next;
                        x->c->next = NULL;
                        x->open = false;
                    } else {
                        x->c = gc_malloc(sizeof(*x->c));
                        x->c->next = NULL;
                        x->c->len = gc_chunk_size(&s->open);
                        x->c->blob = gc_malloc(x->c->len);
                        gc_chunk_serialize(&s->open, x->c->blob);
                        x->c->start = s->open_start;
                        x->c->end = s->open.tprev;
                        x->c->count = s->open.n;
                        x->open = true;
                        s->dirty = false;
                    }
                }
            }
        pthread_mutex_unlock(&sh->mu);
    }
    /* in transactions of at most FLUSH_BATCH rows, so that other writers of the database
     * (API requests) never wait for a whole flush of a large platform */
    int rc = 0;
    uint64_t bytes = 0;
    size_t done_new = 0, done_w = 0;
    int64_t now = gc_now_ms();
    while (!rc && (done_new < nnew || done_w < nw)) {
        size_t bn = nnew - done_new < FLUSH_BATCH ? nnew - done_new : FLUSH_BATCH;
        size_t bw = nw - done_w < FLUSH_BATCH - bn ? nw - done_w : FLUSH_BATCH - bn;
        struct gc_tx *tx = NULL;
        uint64_t bb = 0;
        rc = gc_tx_begin(db->st, GC_TX_WRITE, &tx, err);
        for (size_t i = done_new; !rc && i < done_new + bn; i++) {
            struct series *s = fresh[i];
            rc = gc_tx_exec(tx,
                            "INSERT INTO tsdb_series (id, skey, metric, labels, department_id,"
                            " created_at) VALUES (?, ?, ?, ?, ?, ?)",
                            GC_ARGS(GC_VINT_(s->id), GC_VTXT(s->key), GC_VTXT(s->metric),
                                    GC_VTXT(s->labels), GC_VTXT(s->dept), GC_VINT_(now)),
                            NULL, err);
            json_t *labels = rc ? NULL : json_loads(s->labels, 0, NULL);
            const char *k;
            json_t *v;
            json_object_foreach(labels, k, v)
            {
                if (!rc)
                    rc = gc_tx_exec(tx,
                                    "INSERT INTO tsdb_labels (name, value, series_id)"
                                    " VALUES (?, ?, ?)",
                                    GC_ARGS(GC_VTXT(k), GC_VTXT(json_string_value(v)),
                                            GC_VINT_(s->id)),
                                    NULL, err);
            }
            json_decref(labels);
        }
        for (size_t i = done_w; !rc && i < done_w + bw; i++) {
            struct sealed *c = w[i].c;
            rc = gc_tx_exec(tx, SQL_UPSERT,
                            GC_ARGS(GC_VINT_(w[i].s->id), GC_VINT_(GC_RES_RAW),
                                    GC_VINT_(c->start), GC_VINT_(c->end), GC_VINT_(c->count),
                                    gc_vblob(c->blob, c->len)),
                            NULL, err);
            bb += c->len;
        }
        if (!rc)
            rc = gc_tx_commit(tx, err);
        else
            gc_tx_rollback(tx);
        if (rc)
            break;
        for (size_t i = done_new; i < done_new + bn; i++) {
            struct series *s = fresh[i];
            s->persisted = true;
            free(s->metric);
            free(s->labels);
            free(s->dept);
            s->metric = s->labels = s->dept = NULL;
        }
        for (size_t i = done_w; i < done_w + bw; i++) {
            free(w[i].c->blob);
            free(w[i].c);
        }
        done_new += bn;
        done_w += bw;
        bytes += bb;
    }
    if (rc) {
        /* put the rest back for the next flush (series rows not written stay unpersisted) */
        for (size_t i = nw; i-- > done_w;) {
            struct series *s = w[i].s;
            struct shard *sh = &db->sh[s->hash % NSHARDS];
            pthread_mutex_lock(&sh->mu);
            if (w[i].open) {
                s->dirty = true;
                free(w[i].c->blob);
                free(w[i].c);
            } else {
                w[i].c->next = s->sealed;
                s->sealed = w[i].c;
            }
            pthread_mutex_unlock(&sh->mu);
        }
    }
    free(w);
    free(fresh);
    pthread_mutex_lock(&db->stat_mu);
    db->stats.flushes++;
    db->stats.bytes_written += bytes;
    db->stats.chunks_written += done_w;
    if (rc)
        db->stats.flush_errors++;
    db->stats.last_flush_ms = gc_now_ms();
    db->stats.last_flush_duration_us = (gc_mono_ns() - t0) / 1000;
    if (db->stats.last_flush_duration_us > db->stats.max_flush_duration_us)
        db->stats.max_flush_duration_us = db->stats.last_flush_duration_us;
    pthread_mutex_unlock(&db->stat_mu);
    return rc;
}

int gc_tsdb_flush(struct gc_tsdb *db, struct gc_error *err)
{
    pthread_mutex_lock(&db->flush_mu);
    int rc = do_flush(db, err);
    pthread_mutex_unlock(&db->flush_mu);
    return rc;
}

/* ---- roll-up and retention ---- */

static int meta_get(struct gc_tx *tx, const char *name, int64_t *v, struct gc_error *err)
{
    return gc_tx_query_int(tx, "SELECT value FROM tsdb_meta WHERE name = ?",
                           GC_ARGS(GC_VTXT(name)), v, err);
}

static int meta_set(struct gc_tx *tx, const char *name, int64_t v, struct gc_error *err)
{
    return gc_tx_exec(tx,
                      "INSERT INTO tsdb_meta (name, value) VALUES (?, ?) ON CONFLICT (name)"
                      " DO UPDATE SET value = excluded.value",
                      GC_ARGS(GC_VTXT(name), GC_VINT_(v)), NULL, err);
}

struct aggacc {
    double min[AGG_POINTS], max[AGG_POINTS], sum[AGG_POINTS], cnt[AGG_POINTS];
};

static void acc_reset(struct aggacc *a)
{
    for (int i = 0; i < AGG_POINTS; i++) {
        a->min[i] = INFINITY;
        a->max[i] = -INFINITY;
        a->sum[i] = 0;
        a->cnt[i] = 0;
    }
}

/* one finished series of a window: an aggregate chunk, or nothing when it has no point */
static struct sealed *acc_chunk(const struct aggacc *a, int64_t from, int64_t res)
{
    struct gc_chunk_enc e;
    gc_chunk_init(&e, 4);
    for (int i = 0; i < AGG_POINTS; i++) {
        if (a->cnt[i] == 0)
            continue;
        double v[4] = {a->min[i], a->max[i], a->sum[i], a->cnt[i]};
        gc_chunk_append(&e, from + i * res, v);
    }
    if (e.n == 0)
        return NULL;
    gc_chunk_optimize(&e);
    struct sealed *c = gc_malloc(sizeof(*c));
    c->len = gc_chunk_size(&e);
    c->blob = gc_malloc(c->len);
    gc_chunk_serialize(&e, c->blob);
    c->start = from;
    c->end = e.tprev;
    c->count = e.n;
    c->next = NULL;
    gc_chunk_free(&e);
    return c;
}

struct pending {
    int64_t sid;
    struct sealed *c;
};

#define ROLLUP_BATCH 2000 /* series ids per read */

/* Rolls level lvl-1 up into level lvl over [a, a + 120 * res), one transaction per batch of
 * series ids, so that other writers wait for one batch at most. A crash in the middle is
 * harmless: the watermark moves only afterwards, and writing a window again writes the same
 * rows (same keys, same contents). */
static int rollup_window(struct gc_store *st, int lvl, int64_t a, int64_t max_id,
                         int64_t raw_span, struct gc_error *err)
{
    int64_t res = gc_tsdb_res_ms[lvl];
    int64_t b = a + AGG_POINTS * res;
    int src = lvl - 1;
    int64_t lookback = src == GC_RES_RAW ? raw_span : 0;
    struct aggacc *acc = gc_malloc(sizeof(*acc));
    struct pending *pend = gc_malloc(ROLLUP_BATCH * sizeof(*pend));
    int rc = 0;
    for (int64_t lo = 0; !rc && lo <= max_id; lo += ROLLUP_BATCH) {
        size_t np = 0;
        struct gc_rows *r = NULL;
        struct gc_tx *tx = NULL;
        rc = gc_tx_begin(st, GC_TX_WRITE, &tx, err);
        if (rc)
            break;
        rc = gc_tx_query(tx,
                         "SELECT series_id, data FROM tsdb_chunks WHERE resolution = ?"
                         " AND start_ms >= ? AND start_ms < ? AND end_ms >= ?"
                         " AND series_id >= ? AND series_id < ? ORDER BY series_id, start_ms",
                         GC_ARGS(GC_VINT_(src), GC_VINT_(a - lookback), GC_VINT_(b),
                                 GC_VINT_(a), GC_VINT_(lo), GC_VINT_(lo + ROLLUP_BATCH)),
                         &r, err);
        if (rc) {
            gc_tx_rollback(tx);
            break;
        }
        int64_t cur = -1;
        for (;;) {
            int nr = gc_rows_next(r, err);
            if (nr < 0) {
                rc = nr;
                break;
            }
            int64_t sid = nr ? gc_rows_int(r, 0) : -2;
            if (sid != cur && cur >= 0) {
                struct sealed *c = acc_chunk(acc, a, res);
                if (c)
                    pend[np++] = (struct pending){cur, c};
            }
            if (!nr)
                break;
            if (sid != cur) {
                acc_reset(acc);
                cur = sid;
            }
            size_t len;
            const uint8_t *blob = gc_rows_blob(r, 1, &len);
            int ncols;
            uint32_t n;
            int64_t *t;
            double *v;
            if (gc_chunk_decode(blob, len, &ncols, &n, &t, &v) != 0) {
                gc_warn("tsdb", "series %" PRId64 ": a corrupt chunk skipped in roll-up", sid);
                continue;
            }
            for (uint32_t i = 0; i < n; i++) {
                if (t[i] < a || t[i] >= b)
                    continue;
                int k = (int)((t[i] - a) / res);
                const double *x = v + (size_t)i * (size_t)ncols;
                if (ncols == 1) {
                    if (isnan(x[0]))
                        continue;
                    acc->min[k] = fmin(acc->min[k], x[0]);
                    acc->max[k] = fmax(acc->max[k], x[0]);
                    acc->sum[k] += x[0];
                    acc->cnt[k] += 1;
                } else if (ncols == 4 && x[3] > 0) {
                    acc->min[k] = fmin(acc->min[k], x[0]);
                    acc->max[k] = fmax(acc->max[k], x[1]);
                    acc->sum[k] += x[2];
                    acc->cnt[k] += x[3];
                }
            }
            free(t);
            free(v);
        }
        gc_rows_free(r);
        for (size_t i = 0; i < np; i++) {
            struct sealed *c = pend[i].c;
            if (!rc)
                rc = gc_tx_exec(tx, SQL_UPSERT,
                                GC_ARGS(GC_VINT_(pend[i].sid), GC_VINT_(lvl),
                                        GC_VINT_(c->start), GC_VINT_(c->end),
                                        GC_VINT_(c->count), gc_vblob(c->blob, c->len)),
                                NULL, err);
            free(c->blob);
            free(c);
        }
        if (!rc)
            rc = gc_tx_commit(tx, err);
        else
            gc_tx_rollback(tx);
    }
    free(pend);
    free(acc);
    return rc;
}

static int rollup_level(struct gc_tsdb *db, int lvl, int64_t now, struct gc_error *err)
{
    static const char *const wm_name[GC_RES_COUNT] = {"", "rollup_5m", "rollup_1h"};
    int64_t res = gc_tsdb_res_ms[lvl];
    int64_t win = AGG_POINTS * res;
    int64_t limit = now - db->o.rollup_grace_ms;
    if (lvl > 1) {
        pthread_mutex_lock(&db->stat_mu);
        int64_t src_wm = db->wm[lvl - 1];
        pthread_mutex_unlock(&db->stat_mu);
        if (src_wm < limit)
            limit = src_wm;
    }
    for (;;) {
        struct gc_tx *tx = NULL;
        int rc = gc_tx_begin(db->st, GC_TX_WRITE, &tx, err);
        if (rc)
            return rc;
        int64_t wm = 0, max_id = 0, first = 0;
        rc = meta_get(tx, wm_name[lvl], &wm, err);
        if (rc == GC_ENOTFOUND || (!rc && wm <= 0)) {
            /* first run: from the oldest source chunk */
            rc = gc_tx_query_int(tx,
                                 "SELECT COALESCE(MIN(start_ms), -1) FROM tsdb_chunks"
                                 " WHERE resolution = ?",
                                 GC_ARGS(GC_VINT_(lvl - 1)), &first, err);
            wm = first < 0 ? -1 : first / win * win;
        }
        if (!rc && wm >= 0) {
            /* skip windows without data (the daemon was off): jump to the next chunk that
             * reaches into or past the watermark */
            int64_t next = -1;
            rc = gc_tx_query_int(tx,
                                 "SELECT COALESCE(MIN(start_ms), -1) FROM tsdb_chunks"
                                 " WHERE resolution = ? AND start_ms >= ? AND end_ms >= ?",
                                 GC_ARGS(GC_VINT_(lvl - 1),
                                         GC_VINT_(wm - (lvl == 1 ? db->o.chunk_max_span_ms : 0)),
                                         GC_VINT_(wm)),
                                 &next, err);
            if (!rc && next < 0) {
                /* nothing left to roll up: the watermark follows the clock, so that the
                 * level above may roll its windows up */
                int64_t to = limit / win * win;
                if (to > wm) {
                    rc = meta_set(tx, wm_name[lvl], to, err);
                    if (!rc)
                        rc = gc_tx_commit(tx, err);
                    else
                        gc_tx_rollback(tx);
                    if (rc)
                        return rc;
                    wm = to;
                } else {
                    gc_tx_rollback(tx);
                }
                pthread_mutex_lock(&db->stat_mu);
                db->wm[lvl] = wm;
                pthread_mutex_unlock(&db->stat_mu);
                return 0;
            }
            if (!rc && next >= wm + win)
                wm = next / win * win;
        }
        if (rc || wm < 0 || wm + win > limit) {
            gc_tx_rollback(tx);
            if (!rc && wm >= 0) {
                pthread_mutex_lock(&db->stat_mu);
                db->wm[lvl] = wm;
                pthread_mutex_unlock(&db->stat_mu);
            }
            return rc;
        }
        rc = gc_tx_query_int(tx, "SELECT COALESCE(MAX(id), 0) FROM tsdb_series", GC_NOARGS,
                             &max_id, err);
        gc_tx_rollback(tx);
        if (!rc)
            rc = rollup_window(db->st, lvl, wm, max_id, db->o.chunk_max_span_ms, err);
        if (!rc)
            rc = gc_tx_begin(db->st, GC_TX_WRITE, &tx, err);
        if (rc)
            return rc;
        rc = meta_set(tx, wm_name[lvl], wm + win, err);
        if (!rc)
            rc = gc_tx_commit(tx, err);
        else
            gc_tx_rollback(tx);
        if (rc)
            return rc;
        pthread_mutex_lock(&db->stat_mu);
        db->wm[lvl] = wm + win;
        pthread_mutex_unlock(&db->stat_mu);
        gc_debug("tsdb", "rolled %s up into %s up to %" PRId64, res_name[lvl - 1],
                 res_name[lvl], wm + win);
    }
}

int gc_tsdb_maintain(struct gc_tsdb *db, int64_t now, struct gc_error *err)
{
    pthread_mutex_lock(&db->flush_mu);
    int rc = do_flush(db, err);
    for (int lvl = 1; !rc && lvl < GC_RES_COUNT; lvl++)
        rc = rollup_level(db, lvl, now, err);
    if (!rc) {
        struct gc_tx *tx = NULL;
        rc = gc_tx_begin(db->st, GC_TX_WRITE, &tx, err);
        int64_t deleted = 0;
        for (int lvl = 0; !rc && lvl < GC_RES_COUNT; lvl++) {
            int64_t cutoff = now - db->o.retention_ms[lvl];
            pthread_mutex_lock(&db->stat_mu);
            /* never delete what is not rolled up yet */
            if (lvl + 1 < GC_RES_COUNT && db->wm[lvl + 1] > 0 && db->wm[lvl + 1] < cutoff)
                cutoff = db->wm[lvl + 1];
            pthread_mutex_unlock(&db->stat_mu);
            int64_t ch = 0;
            rc = gc_tx_exec(tx,
                            "DELETE FROM tsdb_chunks WHERE resolution = ? AND start_ms < ?"
                            " AND end_ms < ?",
                            GC_ARGS(GC_VINT_(lvl), GC_VINT_(cutoff), GC_VINT_(cutoff)), &ch,
                            err);
            deleted += ch;
        }
        if (!rc)
            rc = gc_tx_commit(tx, err);
        else
            gc_tx_rollback(tx);
        if (!rc && deleted)
            gc_info("tsdb", "retention: %" PRId64 " chunks past retention deleted", deleted);
    }
    pthread_mutex_unlock(&db->flush_mu);
    return rc;
}

/* ---- open / close ---- */

static void *bg_main(void *p)
{
    struct gc_tsdb *db = p;
    int64_t next_maint = gc_now_ms() + 60000; /* first roll-up a minute after start */
    pthread_mutex_lock(&db->thr_mu);
    while (!db->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = (int64_t)ts.tv_nsec + db->o.flush_interval_ms % 1000 * 1000000;
        ts.tv_sec += (time_t)(db->o.flush_interval_ms / 1000 + ns / 1000000000);
        ts.tv_nsec = (long)(ns % 1000000000);
        while (!db->stop) {
            int w = pthread_cond_timedwait(&db->thr_cv, &db->thr_mu, &ts);
            if (w == ETIMEDOUT)
                break;
        }
        if (db->stop)
            break;
        pthread_mutex_unlock(&db->thr_mu);
        struct gc_error err = {0};
        if (gc_tsdb_flush(db, &err) != 0)
            gc_warn("tsdb", "flush failed (retried at the next one): %s", err.msg);
        if (db->o.rollup_interval_ms > 0 && gc_now_ms() >= next_maint) {
            if (gc_tsdb_maintain(db, gc_now_ms(), &err) != 0)
                gc_warn("tsdb", "roll-up / retention failed: %s", err.msg);
            next_maint = gc_now_ms() + db->o.rollup_interval_ms;
        }
        pthread_mutex_lock(&db->thr_mu);
    }
    pthread_mutex_unlock(&db->thr_mu);
    return NULL;
}

int gc_tsdb_open(struct gc_store *st, const struct gc_tsdb_opts *o, struct gc_tsdb **out,
                 struct gc_error *err)
{
    struct gc_tsdb *db = gc_calloc(1, sizeof(*db));
    db->st = st;
    db->o = *o;
    if (db->o.chunk_max_samples < 2 || db->o.chunk_max_samples >= GC_CHUNK_MAXN)
        db->o.chunk_max_samples = 120;
    if (db->o.chunk_max_span_ms <= 0 || db->o.chunk_max_span_ms > RAW_LOOKBACK_MS)
        db->o.chunk_max_span_ms = 2 * 3600 * INT64_C(1000);
    for (int i = 0; i < NSHARDS; i++)
        pthread_mutex_init(&db->sh[i].mu, NULL);
    pthread_mutex_init(&db->id_mu, NULL);
    pthread_mutex_init(&db->flush_mu, NULL);
    pthread_mutex_init(&db->stat_mu, NULL);
    pthread_mutex_init(&db->thr_mu, NULL);
    pthread_cond_init(&db->thr_cv, NULL);
    db->next_id = 1;
    /* the series index, and where each series stopped */
    struct gc_tx *tx = NULL;
    int rc = gc_tx_begin(st, GC_TX_READ, &tx, err);
    struct gc_rows *r = NULL;
    if (!rc)
        rc = gc_tx_query(tx,
                         /* chunks of a series never overlap: the last one by start holds
                          * the last sample (and the primary key finds it at once) */
                         "SELECT s.id, s.skey, (SELECT c.end_ms FROM tsdb_chunks c"
                         " WHERE c.series_id = s.id AND c.resolution = 0"
                         " ORDER BY c.start_ms DESC LIMIT 1) FROM tsdb_series s",
                         GC_NOARGS, &r, err);
    while (!rc) {
        int nr = gc_rows_next(r, err);
        if (nr <= 0) {
            rc = nr;
            break;
        }
        const char *key = gc_rows_text(r, 1);
        uint64_t h = hash_bytes(key, strlen(key));
        struct series *s = series_new(h, key, gc_rows_int(r, 0));
        s->persisted = true;
        s->last_t = gc_rows_null(r, 2) ? -1 : gc_rows_int(r, 2);
        if (s->id >= db->next_id)
            db->next_id = s->id + 1;
        shard_insert(&db->sh[h % NSHARDS], s);
        db->stats.series++;
    }
    gc_rows_free(r);
    static const char *const wm_name[GC_RES_COUNT] = {"", "rollup_5m", "rollup_1h"};
    for (int lvl = 1; !rc && lvl < GC_RES_COUNT; lvl++) {
        int64_t v = 0;
        int mrc = meta_get(tx, wm_name[lvl], &v, err);
        if (mrc == 0)
            db->wm[lvl] = v;
        else if (mrc != GC_ENOTFOUND)
            rc = mrc;
    }
    gc_tx_rollback(tx);
    if (rc) {
        gc_tsdb_close(db);
        return rc;
    }
    if (db->o.flush_interval_ms > 0) {
        if (pthread_create(&db->thr, NULL, bg_main, db) != 0) {
            gc_tsdb_close(db);
            return gc_error_set(err, GC_EINTERNAL, "", "cannot start the tsdb thread");
        }
        db->thr_running = true;
    }
    gc_info("tsdb", "time-series store open: %" PRIu64 " series", db->stats.series);
    *out = db;
    return 0;
}

void gc_tsdb_close(struct gc_tsdb *db)
{
    if (!db)
        return;
    if (db->thr_running) {
        pthread_mutex_lock(&db->thr_mu);
        db->stop = true;
        pthread_cond_signal(&db->thr_cv);
        pthread_mutex_unlock(&db->thr_mu);
        pthread_join(db->thr, NULL);
    }
    struct gc_error err = {0};
    /* seal nothing: the open chunks are written as they are, whole */
    if (gc_tsdb_flush(db, &err) != 0)
        gc_warn("tsdb", "last flush failed, unwritten samples lost: %s", err.msg);
    for (int k = 0; k < NSHARDS; k++) {
        struct shard *sh = &db->sh[k];
        for (size_t b = 0; b < sh->cap; b++)
            for (struct series *s = sh->tab[b], *nx; s; s = nx) {
                nx = s->next;
                for (struct sealed *c = s->sealed, *cn; c; c = cn) {
                    cn = c->next;
                    free(c->blob);
                    free(c);
                }
                gc_chunk_free(&s->open);
                free(s->key);
                free(s->metric);
                free(s->labels);
                free(s->dept);
                free(s);
            }
        free(sh->tab);
        pthread_mutex_destroy(&sh->mu);
    }
    pthread_mutex_destroy(&db->id_mu);
    pthread_mutex_destroy(&db->flush_mu);
    pthread_mutex_destroy(&db->stat_mu);
    pthread_mutex_destroy(&db->thr_mu);
    pthread_cond_destroy(&db->thr_cv);
    free(db);
}

void gc_tsdb_get_stats(struct gc_tsdb *db, struct gc_tsdb_stats *out)
{
    pthread_mutex_lock(&db->stat_mu);
    *out = db->stats;
    pthread_mutex_unlock(&db->stat_mu);
    out->series = 0;
    for (int k = 0; k < NSHARDS; k++) {
        struct shard *sh = &db->sh[k];
        pthread_mutex_lock(&sh->mu);
        out->appended += sh->appended;
        out->out_of_order += sh->ooo;
        out->duplicates += sh->dups;
        out->invalid += sh->invalid;
        out->series += sh->n;
        pthread_mutex_unlock(&sh->mu);
    }
}

struct gc_store *gc_tsdb_store(struct gc_tsdb *db)
{
    return db->st;
}

const struct gc_tsdb_opts *gc_tsdb_options(struct gc_tsdb *db)
{
    return &db->o;
}

void gc_tsdb_watermarks(struct gc_tsdb *db, int64_t wm[GC_RES_COUNT])
{
    pthread_mutex_lock(&db->stat_mu);
    memcpy(wm, db->wm, sizeof(db->wm));
    pthread_mutex_unlock(&db->stat_mu);
}
