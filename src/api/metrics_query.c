/* REST API v1 of the time-series store: range queries, the list of series, and the
 * test-only sample injection. */
#include "api/api.h"
#include "monitor/tsdb.h"
#include "util/timeutil.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static struct gc_tsdb *store_or_error(struct gc_req *req, struct gc_resp *resp)
{
    struct gc_error err = {0};
    if (gc_require(req->ctx.who, GC_P_VM_READ, &err)) {
        gc_resp_error(resp, req, &err);
        return NULL;
    }
    if (!gc_tsdb_global) {
        gc_error_set(&err, GC_EBUSY, "", "the time-series store is disabled ([tsdb] "
                                                "enabled = false)");
        gc_resp_error(resp, req, &err);
        return NULL;
    }
    return gc_tsdb_global;
}

/* Unix seconds (up to millisecond decimals) or RFC 3339 */
static int parse_time(const char *s, const char *field, int64_t *ms, struct gc_error *err)
{
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (s[0] && !errno && *end == '\0' && isfinite(d) && d >= 0 && d < 1e12) {
        *ms = (int64_t)llround(d * 1000.0);
        return 0;
    }
    if (gc_time_parse_rfc3339(s, ms) == 0 && *ms >= 0)
        return 0;
    return gc_error_set(err, GC_EINVAL, field,
                        "'%.64s' is not a time: give Unix seconds (e.g. 1767225600) or RFC 3339 "
                        "(e.g. 2026-01-01T00:00:00Z)",
                        s);
}

/* seconds, or a number with a unit s, m, h, d */
static int parse_step(const char *s, int64_t *ms, struct gc_error *err)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    int64_t unit = 1000;
    if (end != s && *end && !end[1]) {
        switch (*end) {
        case 's': unit = 1000; end++; break;
        case 'm': unit = 60000; end++; break;
        case 'h': unit = 3600000; end++; break;
        case 'd': unit = 86400000; end++; break;
        default: break;
        }
    }
    if (errno || end == s || *end || v < 1 || v > 100LL * 365 * 86400)
        return gc_error_set(err, GC_EINVAL, "step",
                            "step '%.40s' is not a duration: seconds (e.g. 60) or a number with "
                            "s, m, h or d (e.g. 5m, 1h)",
                            s);
    *ms = (int64_t)v * unit;
    return 0;
}

static int parse_matchers(struct gc_req *req, char bufs[][256], struct gc_tsdb_matcher *m,
                          int *nm, struct gc_error *err)
{
    const char *vals[GC_TSDB_MATCHERS_MAX];
    int n = gc_req_query_all(req, "match[]", vals, GC_TSDB_MATCHERS_MAX);
    if (n > GC_TSDB_MATCHERS_MAX)
        return gc_error_set(err, GC_EINVAL, "match[]", "at most %d matchers",
                            GC_TSDB_MATCHERS_MAX);
    for (int i = 0; i < n; i++) {
        if (strlen(vals[i]) >= 256)
            return gc_error_set(err, GC_EINVAL, "match[]", "matcher longer than 255 bytes");
        if (gc_tsdb_matcher_parse(vals[i], bufs[i], &m[i], err))
            return err->code;
    }
    *nm = n;
    return 0;
}

void gc_api_metrics_query(struct gc_req *req, struct gc_resp *resp)
{
    struct gc_tsdb *db = store_or_error(req, resp);
    if (!db)
        return;
    struct gc_error err = {0};
    struct gc_tsdb_query q = {.who = req->ctx.who, .agg = GC_AGG_AVG};
    char bufs[GC_TSDB_MATCHERS_MAX][256];
    struct gc_tsdb_matcher m[GC_TSDB_MATCHERS_MAX];
    q.metric = gc_req_query(req, "metric");
    const char *s = gc_req_query(req, "start"), *e = gc_req_query(req, "end"),
               *st = gc_req_query(req, "step"), *ag = gc_req_query(req, "agg");
    int64_t now = gc_now_ms();
    q.end_ms = now;
    if (!q.metric || !q.metric[0]) {
        gc_error_set(&err, GC_EINVAL, "metric", "query parameter 'metric' is required");
        goto fail;
    }
    if (e && parse_time(e, "end", &q.end_ms, &err))
        goto fail;
    q.start_ms = q.end_ms - 3600000;
    if (s && parse_time(s, "start", &q.start_ms, &err))
        goto fail;
    if (q.end_ms <= q.start_ms) {
        gc_error_set(&err, GC_EINVAL, "end", "end must be after start");
        goto fail;
    }
    if (st) {
        if (parse_step(st, &q.step_ms, &err))
            goto fail;
    } else {
        /* about 1,000 points, whole seconds, at least 15 s */
        q.step_ms = ((q.end_ms - q.start_ms) / 1000 + 999) / 1000 * 1000;
        if (q.step_ms < 15000)
            q.step_ms = 15000;
    }
    if (ag) {
        int a = gc_tsdb_agg_parse(ag);
        if (a < 0) {
            gc_error_set(&err, GC_EINVAL, "agg",
                         "unknown aggregation '%.40s'; allowed: avg, min, max, sum, p95", ag);
            goto fail;
        }
        q.agg = (enum gc_tsdb_agg)a;
    }
    if (parse_matchers(req, bufs, m, &q.nmatch, &err))
        goto fail;
    q.match = m;
    json_t *out = NULL;
    if (gc_tsdb_query_range(db, &q, &out, &err))
        goto fail;
    gc_resp_json(resp, 200, out);
    return;
fail:
    gc_resp_error(resp, req, &err);
}

void gc_api_metrics_series(struct gc_req *req, struct gc_resp *resp)
{
    struct gc_tsdb *db = store_or_error(req, resp);
    if (!db)
        return;
    struct gc_error err = {0};
    char bufs[GC_TSDB_MATCHERS_MAX][256];
    struct gc_tsdb_matcher m[GC_TSDB_MATCHERS_MAX];
    int nm = 0, limit;
    const char *cursor;
    const char *metric = gc_req_query(req, "metric");
    if (gc_api_paging(req, &limit, &cursor, &err) || parse_matchers(req, bufs, m, &nm, &err)) {
        gc_resp_error(resp, req, &err);
        return;
    }
    if (metric && !metric[0]) {
        gc_error_set(&err, GC_EINVAL, "metric", "query parameter 'metric' is empty");
        gc_resp_error(resp, req, &err);
        return;
    }
    json_t *items = NULL;
    char *next = NULL;
    if (gc_tsdb_series_list(db, metric, m, nm, req->ctx.who, limit ? limit : 100, cursor,
                            &items, &next, &err)) {
        gc_resp_error(resp, req, &err);
        return;
    }
    gc_api_list_response(resp, items, next);
}

static int cmp_label(const void *a, const void *b)
{
    return strcmp(((const struct gc_label *)a)->name, ((const struct gc_label *)b)->name);
}

/* Tests only ([tsdb] test_ingest): hands samples to every sink as a collector would. */
void gc_api_metrics_test_samples(struct gc_req *req, struct gc_resp *resp)
{
    struct gc_error err = {0};
    if (!req->ctx.cfg->tsdb_test_ingest) {
        gc_error_set(&err, GC_ENOTFOUND, "",
                     "sample injection is off; it exists for tests only ([tsdb] test_ingest)");
        gc_resp_error(resp, req, &err);
        return;
    }
    if (!req->ctx.who || req->ctx.who->role != GC_ROLE_PLATFORM_ADMIN) {
        gc_error_set(&err, GC_EPERM, "", "only a platform_admin may inject samples");
        gc_resp_error(resp, req, &err);
        return;
    }
    json_t *arr = json_object_get(req->body, "samples");
    if (!json_is_array(arr) || json_array_size(arr) > 10000) {
        gc_error_set(&err, GC_EINVAL, "samples", "samples must be an array of at most 10000");
        gc_resp_error(resp, req, &err);
        return;
    }
    size_t n = json_array_size(arr);
    struct gc_sample *smp = calloc(n ? n : 1, sizeof(*smp));
    struct gc_label *lab = calloc(n ? n * GC_SERIES_LABELS_MAX : 1, sizeof(*lab));
    if (!smp || !lab) {
        free(smp);
        free(lab);
        gc_error_set(&err, GC_EINTERNAL, "", "out of memory");
        gc_resp_error(resp, req, &err);
        return;
    }
    char field[64];
    for (size_t i = 0; i < n; i++) {
        json_t *x = json_array_get(arr, i);
        snprintf(field, sizeof(field), "samples[%zu]", i);
        json_t *metric = json_object_get(x, "metric"), *labels = json_object_get(x, "labels"),
               *t = json_object_get(x, "t_ms"), *v = json_object_get(x, "value");
        if (!json_is_string(metric) || !json_string_length(metric) || !json_is_integer(t) ||
            (labels && !json_is_object(labels)) || (labels && json_object_size(labels) >
                                                                  GC_SERIES_LABELS_MAX)) {
            gc_error_set(&err, GC_EINVAL, field,
                         "%s needs metric (string), t_ms (integer), value (number or \"NaN\", "
                         "\"+Inf\", \"-Inf\") and at most %d string labels",
                         field, GC_SERIES_LABELS_MAX);
            goto out;
        }
        double val;
        if (json_is_number(v))
            val = json_number_value(v);
        else if (json_is_string(v) && !strcmp(json_string_value(v), "NaN"))
            val = NAN;
        else if (json_is_string(v) && !strcmp(json_string_value(v), "+Inf"))
            val = INFINITY;
        else if (json_is_string(v) && !strcmp(json_string_value(v), "-Inf"))
            val = -INFINITY;
        else {
            gc_error_set(&err, GC_EINVAL, field, "%s: value must be a number", field);
            goto out;
        }
        struct gc_label *L = lab + i * GC_SERIES_LABELS_MAX;
        int nl = 0;
        const char *k;
        json_t *lv;
        json_object_foreach(labels, k, lv)
        {
            if (!json_is_string(lv)) {
                gc_error_set(&err, GC_EINVAL, field, "%s: label %s must be a string", field, k);
                goto out;
            }
            L[nl].name = k;
            L[nl++].value = json_string_value(lv);
        }
        qsort(L, (size_t)nl, sizeof(*L), cmp_label);
        smp[i].series.metric = json_string_value(metric);
        smp[i].series.labels = L;
        smp[i].series.nlabels = nl;
        smp[i].t_ms = json_integer_value(t);
        smp[i].value = val;
    }
    gc_monitor_emit(smp, n);
    json_t *o = json_object();
    json_object_set_new(o, "accepted", json_integer((json_int_t)n));
    if (gc_tsdb_global && json_is_true(json_object_get(req->body, "flush"))) {
        if (gc_tsdb_flush(gc_tsdb_global, &err)) {
            json_decref(o);
            goto out;
        }
    }
    gc_resp_json(resp, 200, o);
out:
    if (err.code)
        gc_resp_error(resp, req, &err);
    free(smp);
    free(lab);
}
