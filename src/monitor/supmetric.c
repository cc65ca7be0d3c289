/* The metric dataset of the supervision pull (docs/supervision.md#metric): hourly aggregates
 * of the platform's series (those without a department_id label: hosts, storage pools,
 * the platform's own figures) read from the time-series store. Each completed hour is
 * exported once into supervision_metrics, one row per series, each with the next seq of the
 * dataset; rows older than GC_METRIC_SUP_KEEP_HOURS are dropped (a snapshot holds the
 * hours kept). */
#include "monitor/tsdb.h"

#include "core/asset.h"
#include "core/supdata.h"
#include "crypto/crypto.h"
#include "util/log.h"
#include "util/timeutil.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOUR_MS 3600000LL

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

/* The OpenMetrics base unit of a name's suffix, or NULL. */
static const char *unit_of(const char *name)
{
    static const char *const units[] = {"seconds", "bytes", "ratio", "celsius", "watts",
                                        "joules", "hertz", "volts", "amperes", "meters"};
    char base[256];
    snprintf(base, sizeof(base), "%s", name);
    if (ends_with(base, "_total"))
        base[strlen(base) - 6] = '\0';
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        char suf[32];
        snprintf(suf, sizeof(suf), "_%s", units[i]);
        if (ends_with(base, suf))
            return units[i];
    }
    return NULL;
}

/* The records of hour [h, h + 1 h) of every platform series, appended to out as
 * [id, hour, data text]. */
static int export_hour(struct gc_tsdb *db, json_t *metrics, int64_t h, json_t *out,
                       struct gc_error *err)
{
    size_t i;
    json_t *m;
    int rc = 0;
    json_array_foreach(metrics, i, m) {
        const char *name = json_string_value(m);
        bool counter = ends_with(name, "_total");
        struct gc_tsdb_query q = {.metric = name,
                                  .start_ms = h,
                                  .end_ms = h + HOUR_MS,
                                  .step_ms = HOUR_MS,
                                  .agg = counter ? GC_AGG_MAX : GC_AGG_AVG};
        json_t *res = NULL;
        rc = gc_tsdb_query_range(db, &q, &res, err);
        if (rc)
            break;
        size_t k;
        json_t *s;
        json_array_foreach(json_object_get(res, "series"), k, s) {
            json_t *labels = json_object_get(s, "labels");
            json_t *pt = json_array_get(json_object_get(s, "points"), 0);
            if (json_object_get(labels, "department_id") || !pt)
                continue; /* a department's series, or nothing in the hour */
            double v = json_number_value(json_array_get(pt, 1));
            if (!isfinite(v))
                continue;
            json_t *l = json_object();
            const char *ln;
            json_t *lv;
            json_object_foreach(labels, ln, lv) {
                if (json_object_size(l) == 32 || !json_is_string(lv) || !ln[0] ||
                    strlen(ln) > 128)
                    continue;
                json_object_set_new(l, ln, gc_sup_json_str(json_string_value(lv), 1024));
            }
            json_t *d = json_pack("{s:s,s:s,s:f,s:o,s:i,s:o}", "name", name, "type",
                                  counter ? "counter" : "gauge", "value", v, "time",
                                  gc_json_time(h), "interval_seconds", 3600, "labels", l);
            const char *unit = unit_of(name);
            if (unit)
                json_object_set_new(d, "unit", json_string(unit));
            char *ltext = json_dumps(labels, JSON_COMPACT | JSON_SORT_KEYS);
            char key[GC_SM3_HEX_LEN + 1];
            struct gc_sm3_ctx *c = gc_sm3_new();
            gc_sm3_update(c, name, strlen(name));
            gc_sm3_update(c, "\n", 1);
            gc_sm3_update(c, ltext ? ltext : "", ltext ? strlen(ltext) : 0);
            gc_sm3_final_hex(c, key);
            free(ltext);
            char id[256];
            if (strlen(name) <= 150)
                snprintf(id, sizeof(id), "metric:%s:%.32s:%lld", name, key, (long long)h);
            else
                snprintf(id, sizeof(id), "metric:%.32s:%lld", key, (long long)h);
            char *text = json_dumps(d, JSON_COMPACT | JSON_REAL_PRECISION(17));
            json_decref(d);
            json_array_append_new(out, json_pack("[s,I,s]", id, (json_int_t)h, text));
            free(text);
        }
        json_decref(res);
        if (rc)
            break;
    }
    return rc;
}

int gc_metric_sup_update(struct gc_store *st, int64_t now, int64_t *written,
                         struct gc_error *err)
{
    if (written)
        *written = 0;
    struct gc_tsdb *db = gc_tsdb_global;
    if (!db)
        return 0; /* [tsdb] enabled = false: nothing to export */
    int rc = gc_tsdb_flush(db, err);
    if (rc)
        return rc;
    int64_t last = (now / HOUR_MS) * HOUR_MS - HOUR_MS; /* the last completed hour */
    int64_t keep_from = last - (GC_METRIC_SUP_KEEP_HOURS - 1) * HOUR_MS;
    /* what to export, read first; written in one short transaction */
    struct gc_tx *tx;
    rc = gc_tx_begin(st, GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    int64_t done = 0;
    rc = gc_tx_query_int(tx, "SELECT COALESCE(MAX(hour_ms), 0) FROM supervision_metrics",
                         GC_NOARGS, &done, err);
    int64_t from = done ? done + HOUR_MS : last - (GC_METRIC_SUP_FIRST_HOURS - 1) * HOUR_MS;
    if (from < keep_from)
        from = keep_from;
    json_t *metrics = json_array();
    struct gc_rows *r = NULL;
    if (!rc && from <= last) {
        rc = gc_tx_query(tx,
                         "SELECT DISTINCT metric FROM tsdb_series WHERE department_id IS NULL"
                         " ORDER BY metric",
                         GC_NOARGS, &r, err);
        while (!rc && (rc = gc_rows_next(r, err)) > 0) {
            rc = 0;
            json_array_append_new(metrics, json_string(gc_rows_text(r, 0)));
        }
        gc_rows_free(r);
        rc = rc < 0 ? rc : 0;
    }
    gc_tx_rollback(tx);
    json_t *recs = json_array();
    for (int64_t h = from; !rc && h <= last; h += HOUR_MS)
        rc = export_hour(db, metrics, h, recs, err);
    json_decref(metrics);
    if (!rc)
        rc = gc_tx_begin(st, GC_TX_WRITE, &tx, err);
    if (rc) {
        json_decref(recs);
        return rc;
    }
    int64_t n = 0;
    size_t i;
    json_t *x;
    json_array_foreach(recs, i, x) {
        int64_t seq = 0;
        int64_t exists = 0;
        const char *id = json_string_value(json_array_get(x, 0));
        rc = gc_tx_query_int(tx, "SELECT COUNT(*) FROM supervision_metrics WHERE id = ?",
                             GC_ARGS(GC_VTXT(id)), &exists, err);
        if (!rc && exists)
            continue; /* another refresh exported it meanwhile */
        if (!rc)
            rc = gc_sup_seq_next(tx, "metric", &seq, err);
        if (!rc)
            rc = gc_tx_exec(tx,
                            "INSERT INTO supervision_metrics (id, hour_ms, data, seq)"
                            " VALUES (?, ?, ?, ?)",
                            GC_ARGS(GC_VTXT(id), GC_VINT_(json_integer_value(json_array_get(x, 1))),
                                    GC_VTXT(json_string_value(json_array_get(x, 2))),
                                    GC_VINT_(seq)),
                            NULL, err);
        if (rc)
            break;
        n++;
    }
    json_decref(recs);
    if (!rc)
        rc = gc_tx_exec(tx, "DELETE FROM supervision_metrics WHERE hour_ms < ?",
                        GC_ARGS(GC_VINT_(keep_from)), NULL, err);
    if (rc) {
        gc_tx_rollback(tx);
        return rc;
    }
    rc = gc_tx_commit(tx, err);
    if (!rc && written)
        *written = n;
    return rc;
}

static pthread_mutex_t metric_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t metric_last_ms;

int gc_metric_sup_refresh(struct gc_store *st, struct gc_error *err)
{
    int rc = 0;
    pthread_mutex_lock(&metric_lock);
    int64_t now = gc_now_ms();
    /* once per hour is enough (an hour is exported when it has ended), but a minute keeps
     * the first pull after the hour prompt */
    if (metric_last_ms == 0 || now - metric_last_ms >= 60000 || now < metric_last_ms) {
        rc = gc_metric_sup_update(st, now, NULL, err);
        if (!rc)
            metric_last_ms = now;
    }
    pthread_mutex_unlock(&metric_lock);
    return rc;
}

int gc_metric_sup_high(struct gc_tx *tx, int64_t *seq, struct gc_error *err)
{
    return gc_sup_seq_high(tx, "metric", seq, err);
}

int gc_metric_sup_fetch(struct gc_tx *tx, int64_t after, int64_t upto, bool live_only, int max,
                        gc_sup_emit_fn emit, void *cls, struct gc_error *err)
{
    (void)live_only; /* old hours are dropped without tombstones: a sample never changes */
    struct gc_rows *r;
    int rc = gc_tx_query(tx,
                         "SELECT id, seq, hour_ms, data FROM supervision_metrics"
                         " WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
                         GC_ARGS(GC_VINT_(after), GC_VINT_(upto), GC_VINT_(max)), &r, err);
    if (rc)
        return rc;
    while ((rc = gc_rows_next(r, err)) > 0) {
        struct gc_sup_record rec = {.id = gc_rows_text(r, 0),
                                    .seq = gc_rows_int(r, 1),
                                    .time_ms = gc_rows_int(r, 2),
                                    .data = gc_rows_text(r, 3)};
        rc = emit(cls, &rec);
        if (rc)
            break;
    }
    gc_rows_free(r);
    return rc > 0 ? 0 : rc;
}
