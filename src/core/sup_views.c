/* The supervisor's views across clouds (docs/supervision.md#views-across-clouds): for each
 * registered cloud, what arrived (streams, lag, gaps), its assets by kind, CPU architecture
 * and domestic flag, its domestic substitution rate, the state of its data-centre
 * environment, and its latest availability figures; and the same summed over every cloud.
 * Everything is computed from the received records (sup_records), as the clouds sent them. */
#include "core/core.h"

#include "core/supdata.h"
#include "core/supervise.h"
#include "core/validate.h"
#include "util/timeutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void bump(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    json_object_set_new(o, key, json_integer(v ? json_integer_value(v) + 1 : 1));
}

struct acc {
    struct gc_subst subst;
    json_t *kinds, *arch, *domestic;
    int64_t assets;
};

static void acc_init(struct acc *a)
{
    gc_subst_init(&a->subst);
    a->kinds = json_object();
    a->arch = json_object();
    a->domestic = json_pack("{s:i,s:i,s:i}", "domestic", 0, "not_domestic", 0, "undeclared", 0);
    a->assets = 0;
}

static void acc_free(struct acc *a)
{
    json_decref(a->kinds);
    json_decref(a->arch);
    json_decref(a->domestic);
}

static void acc_add(struct acc *a, const json_t *d)
{
    gc_subst_add(&a->subst, d);
    a->assets++;
    const char *k = gc_json_str(d, "kind");
    bump(a->kinds, k ? k : "unknown");
    const char *arch = gc_json_str(d, "cpu_arch");
    if (arch)
        bump(a->arch, arch);
    json_t *dom = json_object_get(json_object_get(d, "domestic"), "flag");
    bump(a->domestic, !dom ? "undeclared" : json_is_true(dom) ? "domestic" : "not_domestic");
}

static json_t *acc_json(const struct acc *a, const double w[GC_NLAYERS])
{
    json_t *o = json_pack("{s:I,s:O,s:O,s:O}", "total", (json_int_t)a->assets, "by_kind",
                          a->kinds, "by_cpu_arch", a->arch, "by_domestic", a->domestic);
    json_object_set_new(o, "substitution_rate", gc_subst_result(&a->subst, w));
    return o;
}

/* The received records of one cloud and dataset, live ones, each handed to fn. */
static int each_record(struct gc_tx *tx, const char *cloud, const char *dataset, int64_t since,
                       void (*fn)(void *, const json_t *, int64_t), void *arg,
                       struct gc_error *err)
{
    struct gc_rows *r = NULL;
    int rc = gc_tx_query(tx,
                         "SELECT data, time FROM sup_records WHERE cloud_id = ? AND dataset = ?"
                         " AND op = 'upsert' AND time >= ?",
                         GC_ARGS(GC_VTXT(cloud), GC_VTXT(dataset), GC_VINT_(since)), &r, err);
    while (!rc && (rc = gc_rows_next(r, err)) > 0) {
        rc = 0;
        json_t *d = json_loads(gc_rows_text(r, 0), 0, NULL);
        if (d)
            fn(arg, d, gc_rows_int(r, 1));
        json_decref(d);
    }
    gc_rows_free(r);
    return rc < 0 ? rc : 0;
}

struct two {
    struct acc *a, *total;
};

static void asset_cb(void *arg, const json_t *d, int64_t t)
{
    (void)t;
    struct two *x = arg;
    acc_add(x->a, d);
    if (x->total)
        acc_add(x->total, d);
}

/* The environment: the latest reading of each sensor and reading type in the last hour of
 * what the cloud sent. */
struct env {
    json_t *latest; /* "sensor/type" -> [time, data] */
};

static void env_cb(void *arg, const json_t *d, int64_t t)
{
    struct env *e = arg;
    char key[300];
    snprintf(key, sizeof(key), "%s/%s", gc_json_str(d, "sensor_id") ? gc_json_str(d, "sensor_id")
                                                                      : "",
             gc_json_str(d, "reading_type") ? gc_json_str(d, "reading_type") : "");
    json_t *have = json_object_get(e->latest, key);
    if (have && json_integer_value(json_array_get(have, 0)) >= t)
        return;
    json_object_set_new(e->latest, key, json_pack("[I,O]", (json_int_t)t, d));
}

static json_t *env_json(struct env *e)
{
    json_t *status = json_pack("{s:i,s:i,s:i}", "ok", 0, "caution", 0, "critical", 0);
    json_t *sensors = json_object(), *critical = json_array();
    json_t *pue = json_null();
    int64_t latest = 0, pue_t = 0;
    const char *k;
    json_t *v;
    json_object_foreach(e->latest, k, v) {
        int64_t t = json_integer_value(json_array_get(v, 0));
        json_t *d = json_array_get(v, 1);
        const char *st = gc_json_str(d, "status");
        if (st)
            bump(status, st);
        if (st && !strcmp(st, "critical"))
            json_array_append(critical, d);
        json_object_set_new(sensors, gc_json_str(d, "sensor_id") ? gc_json_str(d, "sensor_id")
                                                                 : "",
                            json_true());
        if (t > latest)
            latest = t;
        const char *rt = gc_json_str(d, "reading_type");
        if (rt && !strcmp(rt, "pue") && t > pue_t) {
            pue_t = t;
            json_decref(pue);
            pue = json_copy(json_object_get(d, "reading"));
        }
    }
    json_t *o = json_pack("{s:I,s:o,s:o,s:o,s:o}", "sensors",
                          (json_int_t)json_object_size(sensors), "latest_readings_by_status",
                          status, "critical_readings", critical, "pue", pue,
                          "latest_reading_at", gc_json_time(latest));
    json_decref(sensors);
    return o;
}

/* Availability: the latest period figure of each scope/resource, and open incidents. */
struct avail {
    json_t *latest; /* "scope/resource" -> [period_end ms, data] */
    int64_t open_incidents;
};

static void avail_cb(void *arg, const json_t *d, int64_t t)
{
    (void)t;
    struct avail *a = arg;
    const char *kind = gc_json_str(d, "kind");
    if (kind && !strcmp(kind, "incident")) {
        if (!json_object_get(d, "ended_at"))
            a->open_incidents++;
        return;
    }
    int64_t end = 0;
    if (!kind || strcmp(kind, "period") ||
        gc_time_parse_rfc3339(gc_json_str(d, "period_end") ? gc_json_str(d, "period_end") : "",
                              &end) != 0)
        return;
    char key[300];
    snprintf(key, sizeof(key), "%s/%s", gc_json_str(d, "scope") ? gc_json_str(d, "scope") : "",
             gc_json_str(d, "resource_id") ? gc_json_str(d, "resource_id") : "");
    json_t *have = json_object_get(a->latest, key);
    if (have && json_integer_value(json_array_get(have, 0)) >= end)
        return;
    json_object_set_new(a->latest, key, json_pack("[I,O]", (json_int_t)end, d));
}

static json_t *avail_json(struct avail *a)
{
    json_t *platform = json_null(), *departments = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(a->latest, k, v) {
        json_t *d = json_array_get(v, 1);
        const char *scope = gc_json_str(d, "scope");
        if (scope && !strcmp(scope, "platform")) {
            json_decref(platform);
            platform = json_copy(d);
        } else if (scope && !strcmp(scope, "department")) {
            json_array_append(departments, d);
        }
    }
    return json_pack("{s:o,s:o,s:I}", "platform_latest_period", platform,
                     "departments_latest_period", departments, "open_incidents",
                     (json_int_t)a->open_incidents);
}

static json_t *streams_json(struct gc_tx *tx, const char *cloud, int64_t now, int *rcp,
                            struct gc_error *err)
{
    json_t *streams = json_array();
    struct gc_rows *r = NULL;
    int rc = gc_tx_query(tx,
                         "SELECT dataset, max_batch_seq, batches, accepted, duplicates, rejected,"
                         " last_batch_at, last_batch_time FROM sup_streams WHERE cloud_id = ?"
                         " ORDER BY dataset",
                         GC_ARGS(GC_VTXT(cloud)), &r, err);
    while (!rc && (rc = gc_rows_next(r, err)) > 0) {
        rc = 0;
        json_t *s = json_pack("{s:s,s:I,s:I,s:I,s:I,s:I}", "dataset", gc_rows_text(r, 0),
                              "max_batch_seq", (json_int_t)gc_rows_int(r, 1), "batches",
                              (json_int_t)gc_rows_int(r, 2), "accepted",
                              (json_int_t)gc_rows_int(r, 3), "duplicates",
                              (json_int_t)gc_rows_int(r, 4), "rejected",
                              (json_int_t)gc_rows_int(r, 5));
        json_object_set_new(s, "last_batch_at", gc_json_time(gc_rows_int(r, 6)));
        /* how old the newest data is: the cloud made the batch at last_batch_time */
        int64_t lt = gc_rows_int(r, 7);
        json_object_set_new(s, "lag_seconds", json_integer(lt > 0 ? (now - lt) / 1000 : -1));
        json_array_append_new(streams, s);
    }
    gc_rows_free(r);
    size_t i;
    json_t *s;
    json_array_foreach(streams, i, s) {
        if (rc < 0)
            break;
        json_t *gaps = json_array();
        rc = gc_tx_query(tx,
                         "SELECT from_seq, to_seq FROM sup_gaps WHERE cloud_id = ? AND"
                         " dataset = ? ORDER BY from_seq",
                         GC_ARGS(GC_VTXT(cloud), GC_VTXT(gc_json_str(s, "dataset"))), &r, err);
        while (!rc && (rc = gc_rows_next(r, err)) > 0) {
            rc = 0;
            json_array_append_new(gaps, json_pack("[I,I]", (json_int_t)gc_rows_int(r, 0),
                                                  (json_int_t)gc_rows_int(r, 1)));
        }
        gc_rows_free(r);
        json_object_set_new(s, "gaps", gaps);
        int64_t live = 0;
        if (rc >= 0)
            rc = gc_tx_query_int(tx,
                                 "SELECT COUNT(*) FROM sup_records WHERE cloud_id = ? AND"
                                 " dataset = ? AND op = 'upsert'",
                                 GC_ARGS(GC_VTXT(cloud), GC_VTXT(gc_json_str(s, "dataset"))),
                                 &live, err);
        json_object_set_new(s, "records", json_integer(live));
    }
    *rcp = rc < 0 ? rc : 0;
    return streams;
}

/* One cloud's summary; acc (may be NULL) also gets its assets, for the totals. */
static int summary(struct gc_tx *tx, const char *cloud, const char *name,
                   const double w[GC_NLAYERS], int64_t now, struct acc *total, json_t **out,
                   struct gc_error *err)
{
    int rc = 0;
    json_t *o = json_pack("{s:s,s:s}", "cloud_id", cloud, "name", name);
    json_object_set_new(o, "streams", streams_json(tx, cloud, now, &rc, err));
    struct acc a;
    acc_init(&a);
    struct two x = {&a, total};
    if (!rc)
        rc = each_record(tx, cloud, "asset", 0, asset_cb, &x, err);
    json_object_set_new(o, "assets", acc_json(&a, w));
    acc_free(&a);
    /* the environment as of the last hour the cloud reported */
    struct env e = {json_object()};
    int64_t newest = 0;
    if (!rc)
        rc = gc_tx_query_int(tx,
                             "SELECT COALESCE(MAX(time), 0) FROM sup_records WHERE cloud_id = ?"
                             " AND dataset = 'environment'",
                             GC_ARGS(GC_VTXT(cloud)), &newest, err);
    if (!rc)
        rc = each_record(tx, cloud, "environment", newest - 3600000, env_cb, &e, err);
    json_object_set_new(o, "environment", env_json(&e));
    json_decref(e.latest);
    struct avail av = {json_object(), 0};
    if (!rc)
        rc = each_record(tx, cloud, "availability", 0, avail_cb, &av, err);
    json_object_set_new(o, "availability", avail_json(&av));
    json_decref(av.latest);
    if (rc) {
        json_decref(o);
        return rc;
    }
    *out = o;
    return 0;
}

static int views_begin(const struct gc_ctx *ctx, const char *weights, double w[GC_NLAYERS],
                       struct gc_tx **tx, struct gc_error *err)
{
    int rc = gc_require(ctx->who, GC_P_SUPERVISION_READ, err);
    if (!rc && gc_subst_weights_parse(weights, w, err) != 0)
        return gc_error_set(err, GC_EINTERNAL, "", "[supervision] substitution_weights: %s",
                            err->msg);
    if (!rc)
        rc = gc_tx_begin(ctx->store, GC_TX_READ, tx, err);
    return rc;
}

int gc_sup_cloud_summary(const struct gc_ctx *ctx, const char *id, const char *weights,
                         json_t **out, struct gc_error *err)
{
    double w[GC_NLAYERS];
    struct gc_tx *tx;
    int rc = views_begin(ctx, weights, w, &tx, err);
    if (rc)
        return rc;
    struct gc_rows *r = NULL;
    char name[256] = "";
    bool found = false;
    rc = gc_tx_query(tx, "SELECT name FROM sup_clouds WHERE id = ?", GC_ARGS(GC_VTXT(id)), &r,
                     err);
    if (!rc && (rc = gc_rows_next(r, err)) > 0) {
        rc = 0;
        found = true;
        snprintf(name, sizeof(name), "%s", gc_rows_text(r, 0));
    }
    gc_rows_free(r);
    if (!rc && !found)
        rc = gc_error_set(err, GC_ENOTFOUND, "id", "cloud '%.64s' not found", id);
    if (!rc)
        rc = summary(tx, id, name, w, gc_now_ms(), NULL, out, err);
    gc_tx_rollback(tx);
    return rc < 0 ? rc : 0;
}

int gc_sup_overview(const struct gc_ctx *ctx, const char *weights, json_t **out,
                    struct gc_error *err)
{
    double w[GC_NLAYERS];
    struct gc_tx *tx;
    int rc = views_begin(ctx, weights, w, &tx, err);
    if (rc)
        return rc;
    struct gc_rows *r = NULL;
    json_t *clouds = json_array();
    rc = gc_tx_query(tx, "SELECT id, name FROM sup_clouds ORDER BY name", GC_NOARGS, &r, err);
    while (!rc && (rc = gc_rows_next(r, err)) > 0) {
        rc = 0;
        json_array_append_new(clouds, json_pack("[s,s]", gc_rows_text(r, 0), gc_rows_text(r, 1)));
    }
    gc_rows_free(r);
    struct acc total;
    acc_init(&total);
    json_t *items = json_array();
    int64_t now = gc_now_ms();
    size_t i;
    json_t *c;
    json_array_foreach(clouds, i, c) {
        if (rc < 0)
            break;
        json_t *s = NULL;
        rc = summary(tx, json_string_value(json_array_get(c, 0)),
                     json_string_value(json_array_get(c, 1)), w, now, &total, &s, err);
        if (!rc)
            json_array_append_new(items, s);
    }
    gc_tx_rollback(tx);
    json_decref(clouds);
    if (rc < 0) {
        acc_free(&total);
        json_decref(items);
        return rc;
    }
    json_t *o = json_pack("{s:o,s:I}", "clouds", items, "cloud_count",
                          (json_int_t)json_array_size(items));
    json_object_set_new(o, "assets", acc_json(&total, w));
    acc_free(&total);
    *out = o;
    return 0;
}
