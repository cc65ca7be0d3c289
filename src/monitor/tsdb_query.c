/* Queries of the time-series store: series selection with department scoping, and range
 * aggregation over the best resolution for the step. */
#include "monitor/tsdb.h"

#include "monitor/tsdb_codec.h"
#include "store/store.h"
#include "util/mem.h"
#include "util/timeutil.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const agg_names[] = {"avg", "min", "max", "sum", "p95"};

int gc_tsdb_agg_parse(const char *s)
{
    for (int i = 0; i < 5; i++)
        if (strcmp(s, agg_names[i]) == 0)
            return i;
    return -1;
}

const char *gc_tsdb_agg_name(enum gc_tsdb_agg a)
{
    return (unsigned)a < 5 ? agg_names[a] : "?";
}

static bool label_name_ok(const char *s)
{
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
        return false;
    for (s++; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_' ||
              (*s >= '0' && *s <= '9')))
            return false;
    return true;
}

int gc_tsdb_matcher_parse(const char *s, char *buf, struct gc_tsdb_matcher *m,
                          struct gc_error *err)
{
    memcpy(buf, s, strlen(s) + 1);
    char *op = strpbrk(buf, "!=");
    if (!op || (op[0] == '!' && op[1] != '='))
        return gc_error_set(err, GC_EINVAL, "match[]",
                            "matcher '%.80s' is not name=\"value\" or name!=\"value\"", s);
    m->negate = op[0] == '!';
    char *val = op + (m->negate ? 2 : 1);
    *op = '\0';
    m->name = buf;
    if (!label_name_ok(buf))
        return gc_error_set(err, GC_EINVAL, "match[]",
                            "matcher '%.80s': '%.64s' is not a label name", s, buf);
    size_t n = strlen(val);
    if (n >= 2 && val[0] == '"' && val[n - 1] == '"') {
        val[n - 1] = '\0';
        val++;
    } else if (strchr(val, '"')) {
        return gc_error_set(err, GC_EINVAL, "match[]", "matcher '%.80s': unbalanced quotes", s);
    }
    m->value = val;
    return 0;
}

struct sel {
    int64_t id;
    json_t *labels;
    char *metric;
};

static bool matches(json_t *labels, const struct gc_tsdb_matcher *m, int nm)
{
    for (int i = 0; i < nm; i++) {
        const char *v = json_string_value(json_object_get(labels, m[i].name));
        bool eq = strcmp(v ? v : "", m[i].value) == 0;
        if (eq == m[i].negate)
            return false;
    }
    return true;
}

/* the series of metric (NULL: all) that who may see and that match; ids > after */
static int select_series(struct gc_tx *tx, const char *metric,
                         const struct gc_tsdb_matcher *m, int nm,
                         const struct gc_principal *who, int64_t after, int limit,
                         struct sel **out, size_t *nout, struct gc_error *err)
{
    struct gc_buf sql;
    gc_buf_init(&sql, GC_BUF_UNLIMITED);
    struct gc_val args[8];
    size_t na = 0;
    gc_buf_adds(&sql, "SELECT s.id, s.labels, COALESCE(d.path, ''), s.metric FROM tsdb_series s"
                      " LEFT JOIN departments d ON d.id = s.department_id WHERE s.id > ?");
    args[na++] = GC_VINT_(after);
    if (metric) {
        gc_buf_adds(&sql, " AND s.metric = ?");
        args[na++] = GC_VTXT(metric);
    }
    /* equality matchers go through the label index first (the labels are checked exactly
     * below) */
    int np = 0;
    for (int i = 0; i < nm && np < 2; i++) {
        if (m[i].negate || !m[i].value[0])
            continue;
        gc_buf_adds(&sql, " AND s.id IN (SELECT series_id FROM tsdb_labels WHERE name = ?"
                          " AND value = ?)");
        args[na++] = GC_VTXT(m[i].name);
        args[na++] = GC_VTXT(m[i].value);
        np++;
    }
    char like[GC_DEPT_PATH_MAX + 2];
    if (who && !gc_role_is_platform(who->role)) {
        if (who->role == GC_ROLE_DEPARTMENT_ADMIN) {
            snprintf(like, sizeof(like), "%s%%", who->dept_path);
            gc_buf_adds(&sql, " AND d.path LIKE ?");
            args[na++] = GC_VTXT(like);
        } else {
            gc_buf_adds(&sql, " AND s.department_id = ?");
            args[na++] = GC_VTXT(who->department_id);
        }
    }
    gc_buf_adds(&sql, " ORDER BY s.id");
    struct gc_rows *r = NULL;
    int rc = gc_tx_query(tx, gc_buf_str(&sql), args, na, &r, err);
    gc_buf_release(&sql);
    size_t n = 0, cap = 0;
    struct sel *v = NULL;
    while (!rc) {
        int nr = gc_rows_next(r, err);
        if (nr <= 0) {
            rc = nr;
            break;
        }
        if (who && !gc_in_scope(who, gc_rows_text(r, 2)))
            continue;
        json_t *labels = json_loads(gc_rows_text(r, 1), 0, NULL);
        if (!labels || !matches(labels, m, nm)) {
            json_decref(labels);
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            v = gc_realloc(v, cap * sizeof(*v));
        }
        v[n].id = gc_rows_int(r, 0);
        v[n].metric = gc_strdup(gc_rows_text(r, 3));
        v[n++].labels = labels;
        if (limit > 0 && (int)n > limit)
            break;
    }
    gc_rows_free(r);
    if (rc) {
        for (size_t i = 0; i < n; i++) {
            json_decref(v[i].labels);
            free(v[i].metric);
        }
        free(v);
        return rc;
    }
    *out = v;
    *nout = n;
    return 0;
}

static void free_sel(struct sel *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        json_decref(v[i].labels);
        free(v[i].metric);
    }
    free(v);
}

int gc_tsdb_series_list(struct gc_tsdb *db, const char *metric,
                        const struct gc_tsdb_matcher *match, int nmatch,
                        const struct gc_principal *who, int limit, const char *cursor,
                        json_t **items, char **next_cursor, struct gc_error *err)
{
    int64_t after = 0;
    if (cursor) {
        char *end;
        after = strtoll(cursor, &end, 10);
        if (!cursor[0] || *end || after < 0)
            return gc_error_set(err, GC_EINVAL, "cursor", "cursor '%.40s' is not valid",
                                cursor);
    }
    struct gc_tx *tx = NULL;
    int rc = gc_tx_begin(gc_tsdb_store(db), GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    struct sel *v = NULL;
    size_t n = 0;
    rc = select_series(tx, metric, match, nmatch, who, after, limit, &v, &n, err);
    gc_tx_rollback(tx);
    if (rc)
        return rc;
    json_t *arr = json_array();
    *next_cursor = NULL;
    for (size_t i = 0; i < n; i++) {
        if ((int)i == limit) {
            char c[24];
            snprintf(c, sizeof(c), "%" PRId64, v[i - 1].id);
            *next_cursor = gc_strdup(c);
            break;
        }
        json_t *o = json_object();
        json_t *l = v[i].labels;
        json_object_set_new(o, "metric", json_string(v[i].metric));
        json_object_set(o, "labels", l);
        json_array_append_new(arr, o);
    }
    free_sel(v, n);
    *items = arr;
    return 0;
}

/* ---- range queries ---- */

struct acc {
    double *min, *max, *sum, *cnt, *p95;
    /* p95: raw values of the bucket being filled */
    double *vals;
    size_t nvals, capvals;
    int64_t vbucket;
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* linear interpolation between the closest ranks (as Prometheus' quantile_over_time) */
static double quantile95(double *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    double h = 0.95 * (double)(n - 1);
    size_t lo = (size_t)floor(h);
    if (lo + 1 >= n)
        return v[n - 1];
    return v[lo] + (h - (double)lo) * (v[lo + 1] - v[lo]);
}

static void p95_close(struct acc *a)
{
    if (a->vbucket >= 0 && a->nvals)
        a->p95[a->vbucket] = quantile95(a->vals, a->nvals);
    a->nvals = 0;
    a->vbucket = -1;
}

/* Reads one series' chunks of resolution lvl over [from, to) into the buckets. */
struct qctx {
    int64_t start_ms, step_ms, raw_span_ms;
    enum gc_tsdb_agg agg;
};

static int read_piece(struct gc_tx *tx, int64_t sid, int lvl, int64_t from, int64_t to,
                      const struct qctx *q, struct acc *a, struct gc_error *err)
{
    /* the chunk holding `from` starts at most one chunk span earlier */
    int64_t lookback = lvl == GC_RES_RAW ? q->raw_span_ms : 120 * gc_tsdb_res_ms[lvl];
    struct gc_rows *r = NULL;
    int rc = gc_tx_query(tx,
                         "SELECT data FROM tsdb_chunks WHERE series_id = ? AND resolution = ?"
                         " AND start_ms >= ? AND start_ms < ? AND end_ms >= ? ORDER BY start_ms",
                         GC_ARGS(GC_VINT_(sid), GC_VINT_(lvl), GC_VINT_(from - lookback),
                                 GC_VINT_(to), GC_VINT_(from)),
                         &r, err);
    while (!rc) {
        int nr = gc_rows_next(r, err);
        if (nr <= 0) {
            rc = nr;
            break;
        }
        size_t len;
        const uint8_t *blob = gc_rows_blob(r, 0, &len);
        int ncols;
        uint32_t n;
        int64_t *t;
        double *v;
        if (gc_chunk_decode(blob, len, &ncols, &n, &t, &v) != 0)
            continue; /* a corrupt chunk reads as missing data */
        for (uint32_t i = 0; i < n; i++) {
            if (t[i] < from || t[i] >= to)
                continue;
            int64_t b = (t[i] - q->start_ms) / q->step_ms;
            const double *x = v + (size_t)i * (size_t)ncols;
            if (ncols == 1) {
                if (isnan(x[0]))
                    continue;
                if (q->agg == GC_AGG_P95) {
                    if (b != a->vbucket) {
                        p95_close(a);
                        a->vbucket = b;
                    }
                    if (a->nvals == a->capvals) {
                        a->capvals = a->capvals ? a->capvals * 2 : 256;
                        a->vals = gc_realloc(a->vals, a->capvals * sizeof(double));
                    }
                    a->vals[a->nvals++] = x[0];
                }
                if (x[0] < a->min[b])
                    a->min[b] = x[0];
                if (x[0] > a->max[b])
                    a->max[b] = x[0];
                a->sum[b] += x[0];
                a->cnt[b] += 1;
            } else if (ncols == 4 && x[3] > 0) {
                if (x[0] < a->min[b])
                    a->min[b] = x[0];
                if (x[1] > a->max[b])
                    a->max[b] = x[1];
                a->sum[b] += x[2];
                a->cnt[b] += x[3];
            }
        }
        free(t);
        free(v);
    }
    gc_rows_free(r);
    return rc;
}

static json_t *num(double v)
{
    if (isnan(v))
        return json_string("NaN");
    if (isinf(v))
        return json_string(v > 0 ? "+Inf" : "-Inf");
    return json_real(v);
}

static json_t *tsec(int64_t ms)
{
    if (ms % 1000 == 0)
        return json_integer(ms / 1000);
    return json_real((double)ms / 1000.0);
}

int gc_tsdb_query_range(struct gc_tsdb *db, const struct gc_tsdb_query *q, json_t **out,
                        struct gc_error *err)
{
    if (!q->metric || !q->metric[0])
        return gc_error_set(err, GC_EINVAL, "metric", "metric is required");
    if (q->end_ms <= q->start_ms)
        return gc_error_set(err, GC_EINVAL, "end", "end must be after start");
    if (q->step_ms < 1000)
        return gc_error_set(err, GC_EINVAL, "step", "step must be at least 1 second");
    int64_t npoints = (q->end_ms - q->start_ms + q->step_ms - 1) / q->step_ms;
    if (npoints > GC_TSDB_MAX_POINTS)
        return gc_error_set(err, GC_EINVAL, "step",
                            "step too small for the range: %" PRId64 " points per series, at "
                            "most %d; use a step of at least %" PRId64 " s",
                            npoints, GC_TSDB_MAX_POINTS,
                            ((q->end_ms - q->start_ms) / GC_TSDB_MAX_POINTS + 999) / 1000 + 1);
    const struct gc_tsdb_opts *o = gc_tsdb_options(db);
    int64_t now = q->now_ms ? q->now_ms : gc_now_ms();
    if (q->agg == GC_AGG_P95 && q->start_ms < now - o->retention_ms[GC_RES_RAW])
        return gc_error_set(err, GC_EINVAL, "start",
                            "agg=p95 needs raw samples, which are kept %" PRId64
                            " days; start is older",
                            o->retention_ms[GC_RES_RAW] / 86400000);
    /* pieces: coarsest usable resolution first, raw for what is not rolled up yet */
    int64_t wm[GC_RES_COUNT];
    gc_tsdb_watermarks(db, wm);
    struct {
        int lvl;
        int64_t from, to;
    } piece[GC_RES_COUNT];
    int npiece = 0;
    int64_t cur = q->start_ms;
    for (int lvl = GC_RES_COUNT - 1; lvl > 0 && q->agg != GC_AGG_P95; lvl--) {
        int64_t r = gc_tsdb_res_ms[lvl];
        if (q->step_ms % r || q->start_ms % r || wm[lvl] <= cur)
            continue;
        int64_t to = wm[lvl] < q->end_ms ? wm[lvl] : q->end_ms;
        piece[npiece].lvl = lvl;
        piece[npiece].from = cur;
        piece[npiece++].to = to;
        cur = to;
    }
    if (cur < q->end_ms) {
        piece[npiece].lvl = GC_RES_RAW;
        piece[npiece].from = cur;
        piece[npiece++].to = q->end_ms;
    }
    struct gc_tx *tx = NULL;
    int rc = gc_tx_begin(gc_tsdb_store(db), GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    struct sel *v = NULL;
    size_t n = 0;
    rc = select_series(tx, q->metric, q->match, q->nmatch, q->who, 0, GC_TSDB_MAX_SERIES, &v,
                       &n, err);
    if (!rc && n > GC_TSDB_MAX_SERIES) {
        free_sel(v, n);
        gc_tx_rollback(tx);
        return gc_error_set(err, GC_EINVAL, "match[]",
                            "the selector matches more than %d series; add matchers",
                            GC_TSDB_MAX_SERIES);
    }
    if (rc) {
        gc_tx_rollback(tx);
        return rc;
    }
    size_t np = (size_t)npoints;
    struct qctx qc = {q->start_ms, q->step_ms, o->chunk_max_span_ms, q->agg};
    struct acc a = {0};
    a.min = gc_malloc(np * sizeof(double));
    a.max = gc_malloc(np * sizeof(double));
    a.sum = gc_malloc(np * sizeof(double));
    a.cnt = gc_malloc(np * sizeof(double));
    a.p95 = gc_malloc(np * sizeof(double));
    json_t *series = json_array();
    for (size_t i = 0; !rc && i < n; i++) {
        for (size_t k = 0; k < np; k++) {
            a.min[k] = INFINITY;
            a.max[k] = -INFINITY;
            a.sum[k] = a.cnt[k] = 0;
            a.p95[k] = NAN;
        }
        a.nvals = 0;
        a.vbucket = -1;
        for (int p = 0; !rc && p < npiece; p++)
            rc = read_piece(tx, v[i].id, piece[p].lvl, piece[p].from, piece[p].to, &qc, &a, err);
        p95_close(&a);
        json_t *pts = json_array();
        for (size_t k = 0; k < np; k++) {
            if (a.cnt[k] == 0)
                continue;
            double x;
            switch (q->agg) {
            case GC_AGG_MIN: x = a.min[k]; break;
            case GC_AGG_MAX: x = a.max[k]; break;
            case GC_AGG_SUM: x = a.sum[k]; break;
            case GC_AGG_P95: x = a.p95[k]; break;
            default: x = a.sum[k] / a.cnt[k];
            }
            json_t *pt = json_array();
            json_array_append_new(pt, tsec(q->start_ms + (int64_t)k * q->step_ms));
            json_array_append_new(pt, num(x));
            json_array_append_new(pts, pt);
        }
        json_t *s = json_object();
        json_object_set(s, "labels", v[i].labels);
        json_object_set_new(s, "points", pts);
        json_array_append_new(series, s);
    }
    gc_tx_rollback(tx);
    free(a.min);
    free(a.max);
    free(a.sum);
    free(a.cnt);
    free(a.p95);
    free(a.vals);
    free_sel(v, n);
    if (rc) {
        json_decref(series);
        return rc;
    }
    json_t *res = json_object();
    json_object_set_new(res, "metric", json_string(q->metric));
    json_object_set_new(res, "start", tsec(q->start_ms));
    json_object_set_new(res, "end", tsec(q->end_ms));
    json_object_set_new(res, "step", tsec(q->step_ms));
    json_object_set_new(res, "agg", json_string(gc_tsdb_agg_name(q->agg)));
    json_t *rs = json_array();
    static const char *const rn[GC_RES_COUNT] = {"raw", "5m", "1h"};
    for (int p = 0; p < npiece; p++) {
        json_t *x = json_object();
        json_object_set_new(x, "resolution", json_string(rn[piece[p].lvl]));
        json_object_set_new(x, "from", tsec(piece[p].from));
        json_object_set_new(x, "to", tsec(piece[p].to));
        json_array_append_new(rs, x);
    }
    json_object_set_new(res, "resolutions", rs);
    json_object_set_new(res, "series", series);
    *out = res;
    return 0;
}
