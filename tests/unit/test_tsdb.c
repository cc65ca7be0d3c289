/* Unit tests of the time-series store: the chunk codec (bit-exact round trips, sizes,
 * corruption), the chunk store (flush, restart, ordering rules), roll-up and retention with
 * exact aggregates, and the query maths and scoping. */
#include "testutil.h"

#include "monitor/tsdb.h"
#include "monitor/tsdb_codec.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/timeutil.h"

#include <math.h>

static uint64_t rng = 88172645463325252ull;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static uint64_t bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}

/* encodes n samples, decodes, compares bit for bit; returns the blob size */
static size_t roundtrip_opt(const int64_t *t, const double *v, uint32_t n, int opt)
{
    struct gc_chunk_enc e;
    gc_chunk_init(&e, 1);
    for (uint32_t i = 0; i < n; i++)
        gc_chunk_append(&e, t[i], &v[i]);
    if (opt > 0 || (opt < 0 && (rnd() & 1)))
        gc_chunk_optimize(&e);
    size_t len = gc_chunk_size(&e);
    uint8_t *blob = malloc(len);
    gc_chunk_serialize(&e, blob);
    gc_chunk_free(&e);
    int ncols;
    uint32_t m;
    int64_t *dt;
    double *dv;
    assert_int_equal(gc_chunk_decode(blob, len, &ncols, &m, &dt, &dv), 0);
    assert_int_equal(ncols, 1);
    assert_int_equal(m, n);
    for (uint32_t i = 0; i < n; i++) {
        assert_int_equal(dt[i], t[i]);
        if (bits(dv[i]) != bits(v[i]))
            fail_msg("sample %u: %.17g (%016llx) decoded as %.17g (%016llx)", i, v[i],
                     (unsigned long long)bits(v[i]), dv[i], (unsigned long long)bits(dv[i]));
    }
    /* every truncation is detected, never read past the end */
    for (size_t cut = 0; cut < len; cut += 1 + len / 16) {
        uint32_t mm;
        int64_t *tt;
        double *vv;
        if (gc_chunk_decode(blob, cut, NULL, &mm, &tt, &vv) == 0) {
            free(tt);
            free(vv);
            /* a cut inside the zero padding of the last byte may still decode */
            assert_true(cut == len - 1);
        }
    }
    free(dt);
    free(dv);
    free(blob);
    return len;
}

static size_t roundtrip(const int64_t *t, const double *v, uint32_t n)
{
    return roundtrip_opt(t, v, n, -1);
}

static void codec_random_bits(void **state)
{
    (void)state;
    int64_t t[500];
    double v[500];
    for (int round = 0; round < 200; round++) {
        int64_t now = (int64_t)(rnd() % (GC_CHUNK_TMAX / 2));
        uint32_t n = 1 + (uint32_t)(rnd() % 500);
        for (uint32_t i = 0; i < n; i++) {
            /* gaps from 1 ms to years, and negative delta-of-deltas */
            uint64_t k = rnd() % 4;
            now += k == 0 ? 1 + (int64_t)(rnd() % 3) : k == 1 ? 15000 : k == 2 ? (int64_t)(rnd() % 100000000) + 1 : (int64_t)(rnd() % (INT64_C(1) << 40)) + 1;
            if (now >= GC_CHUNK_TMAX) {
                n = i;
                break;
            }
            t[i] = now;
            uint64_t b = rnd();
            switch (rnd() % 6) {
            case 0: memcpy(&v[i], &b, 8); break; /* any bit pattern, NaN payloads too */
            case 1: v[i] = (double)(int64_t)(rnd() % 2000000) - 1000000; break;
            case 2: v[i] = (rnd() & 1) ? INFINITY : -INFINITY; break;
            case 3: v[i] = NAN; break;
            case 4: v[i] = i ? v[i - 1] : 0.0; break;
            default: v[i] = (double)(rnd() % 1000000) / 1000.0; break;
            }
        }
        if (n)
            roundtrip(t, v, n);
    }
}

static void codec_edge_values(void **state)
{
    (void)state;
    int64_t t[8] = {0, 1, 2, 3, 1000, 1001, 2000000000000, GC_CHUNK_TMAX - 1};
    double v1[8] = {0.0, -0.0, 0.0, 9007199254740992.0, -9007199254740992.0, 1e-300, 1e300,
                    5e-324};
    roundtrip(t, v1, 8);
    /* a DEC column whose scale must grow (3 → 3.5 → 3.25 → 0.001) then turn XOR (1/3) */
    double v2[8] = {3, 3.5, 3.25, 0.001, 4, 1.0 / 3.0, 7, 8};
    roundtrip(t, v2, 8);
    double v3[8] = {NAN, 1, 2, INFINITY, -INFINITY, 3, NAN, 4};
    roundtrip(t, v3, 8);
    /* deltas with a common factor (pages, sectors), negative too */
    double v4[8] = {4096, 8192, 0, -4096 * 1000.0, 4096 * 7, 4096 * 7, 12288, 4096};
    roundtrip_opt(t, v4, 8, 1);
    double v5[8] = {0.5, 1.0, 1.5, 2.5, 2.0, 0.5, 3.0, 1e9};
    roundtrip_opt(t, v5, 8, 1);
}

/* realistic VM series at 15 s: the sizes the store is built for */
static void codec_realistic_sizes(void **state)
{
    (void)state;
    enum { N = 120 };
    int64_t t[N];
    double cpu[N], mem[N], rx[N], idle[N];
    int64_t t0 = 1767225600000, ns = 0, bytes = 0;
    for (int i = 0; i < N; i++) {
        t[i] = t0 + i * 15000 + (int64_t)(rnd() % 5); /* a few ms of jitter */
        ns += 15000000000 / 10 + (int64_t)(rnd() % 200000000); /* ~10 % of a vCPU */
        cpu[i] = (double)ns / 1e9;                               /* seconds, from ns */
        mem[i] = (double)(1610612736LL + (int64_t)(rnd() % 5 - 2) * 4096 * (i % 4 == 0));
        bytes += 1200 + (int64_t)(rnd() % 400);
        rx[i] = (double)bytes;
        idle[i] = 0;
    }
    size_t s_cpu = roundtrip_opt(t, cpu, N, 1), s_mem = roundtrip_opt(t, mem, N, 1),
           s_rx = roundtrip_opt(t, rx, N, 1), s_idle = roundtrip_opt(t, idle, N, 1);
    print_message("bytes/sample: cpu %.2f mem %.2f net %.2f idle %.2f\n", (double)s_cpu / N,
                  (double)s_mem / N, (double)s_rx / N, (double)s_idle / N);
    assert_true(s_idle < 5 * N / 4);  /* timestamps with ms jitter: ~1 B/sample */
    assert_true(s_mem < 2 * N);       /* page-granular gauge */
    assert_true(s_cpu < 6 * N);       /* noisy counter stored as ns, not as XOR floats */
    assert_true(s_rx < 4 * N);
}

static void codec_garbage_never_crashes(void **state)
{
    (void)state;
    uint8_t buf[256];
    for (int i = 0; i < 20000; i++) {
        size_t len = rnd() % sizeof(buf);
        for (size_t k = 0; k < len; k++)
            buf[k] = (uint8_t)rnd();
        if (len > 4) {
            buf[0] = 1;
            buf[1] = (uint8_t)(1 + rnd() % 4);
        }
        uint32_t n;
        int64_t *t;
        double *v;
        if (gc_chunk_decode(buf, len, NULL, &n, &t, &v) == 0) {
            for (uint32_t k = 1; k < n; k++)
                assert_true(t[k] > t[k - 1]);
            free(t);
            free(v);
        }
    }
}

static void series_key_matches_monitor(void **state)
{
    (void)state;
    const char *vals[] = {"plain", "with \"quote\"", "back\\slash", "new\nline", "", "中文"};
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 6; j++) {
            struct gc_label l[2] = {{"a", vals[i]}, {"b", vals[j]}};
            struct gc_series s = {"m_x", l, (i + j) % 3};
            struct gc_buf b;
            gc_buf_init(&b, 4096);
            assert_int_equal(gc_series_key(&s, &b), 0);
            char k[256];
            assert_int_equal(gc_tsdb_series_key(&s, k, sizeof(k)), (int)b.len);
            assert_string_equal(k, gc_buf_str(&b));
            gc_buf_release(&b);
            assert_int_equal(gc_tsdb_series_key(&s, k, 4), -1);
        }
}

/* ---- the store ---- */

struct fx {
    char dir[64];
    char db[128];
    struct gc_store *st;
    struct gc_tsdb *ts;
};

static struct gc_tsdb_opts opts(void)
{
    struct gc_tsdb_opts o;
    gc_tsdb_opts_default(&o);
    o.flush_interval_ms = 0; /* the tests flush */
    return o;
}

static void fx_open(struct fx *f)
{
    struct gc_error err = {0};
    if (gc_store_open("sqlite", f->db, 2, &f->st, &err))
        fail_msg("store: %s", err.msg);
    struct gc_tsdb_opts o = opts();
    if (gc_tsdb_open(f->st, &o, &f->ts, &err))
        fail_msg("tsdb: %s", err.msg);
}

static void fx_close(struct fx *f)
{
    gc_tsdb_close(f->ts);
    gc_store_close(f->st);
    f->ts = NULL;
    f->st = NULL;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    tu_mkdtemp(f->dir);
    snprintf(f->db, sizeof(f->db), "%s/t.db", f->dir);
    fx_open(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    fx_close(f);
    tu_rmdir(f->dir);
    free(f);
    return 0;
}

static void put(struct gc_tsdb *ts, const char *metric, const char *res, const char *dept,
                int64_t t, double v)
{
    struct gc_label l[2] = {{"department_id", dept}, {"resource_id", res}};
    struct gc_sample s = {{metric, dept ? l : l + 1, dept ? 2 : 1}, t, v};
    gc_tsdb_append(ts, &s, 1);
}

static int64_t q_int(struct gc_store *st, const char *sql)
{
    struct gc_error err = {0};
    struct gc_tx *tx;
    int64_t v = -1;
    assert_int_equal(gc_tx_begin(st, GC_TX_READ, &tx, &err), 0);
    assert_int_equal(gc_tx_query_int(tx, sql, GC_NOARGS, &v, &err), 0);
    gc_tx_rollback(tx);
    return v;
}

static json_t *query(struct gc_tsdb *ts, const char *metric, int64_t start, int64_t end,
                     int64_t step, enum gc_tsdb_agg agg, int64_t now)
{
    struct gc_error err = {0};
    struct gc_tsdb_query q = {.metric = metric, .start_ms = start, .end_ms = end,
                              .step_ms = step, .agg = agg, .now_ms = now};
    json_t *out = NULL;
    if (gc_tsdb_query_range(ts, &q, &out, &err))
        fail_msg("query: %s", err.msg);
    return out;
}

static double point(json_t *res, size_t series, size_t i, int64_t *t)
{
    json_t *p = json_array_get(
        json_object_get(json_array_get(json_object_get(res, "series"), series), "points"), i);
    if (!p)
        fail_msg("no point %zu", i);
    if (t)
        *t = json_integer_value(json_array_get(p, 0));
    return json_number_value(json_array_get(p, 1));
}

static size_t npoints(json_t *res, size_t series)
{
    return json_array_size(
        json_object_get(json_array_get(json_object_get(res, "series"), series), "points"));
}

static void store_chunks_flush_restart(void **state)
{
    struct fx *f = *state;
    struct gc_error err = {0};
    int64_t t0 = 1767225600000;
    for (int i = 0; i < 250; i++)
        put(f->ts, "m_a", "r1", NULL, t0 + i * 15000, i);
    assert_int_equal(gc_tsdb_flush(f->ts, &err), 0);
    /* 120 + 120 sealed, 10 open, written whole */
    assert_int_equal(q_int(f->st, "SELECT COUNT(*) FROM tsdb_chunks"), 3);
    assert_int_equal(q_int(f->st, "SELECT SUM(count) FROM tsdb_chunks"), 250);
    for (int i = 250; i < 260; i++)
        put(f->ts, "m_a", "r1", NULL, t0 + i * 15000, i);
    assert_int_equal(gc_tsdb_flush(f->ts, &err), 0);
    /* the open chunk's row is replaced, not duplicated */
    assert_int_equal(q_int(f->st, "SELECT COUNT(*) FROM tsdb_chunks"), 3);
    assert_int_equal(q_int(f->st, "SELECT SUM(count) FROM tsdb_chunks"), 260);
    /* unflushed samples are lost on a crash-like close? close flushes: they are kept */
    put(f->ts, "m_a", "r1", NULL, t0 + 260 * 15000, 260);
    fx_close(f);
    fx_open(f);
    assert_int_equal(q_int(f->st, "SELECT SUM(count) FROM tsdb_chunks"), 261);
    struct gc_tsdb_stats s;
    gc_tsdb_get_stats(f->ts, &s);
    assert_int_equal(s.series, 1);
    /* after the restart the series goes on where it stopped: older times are dropped */
    put(f->ts, "m_a", "r1", NULL, t0 + 100 * 15000, -1);
    put(f->ts, "m_a", "r1", NULL, t0 + 261 * 15000, 261);
    gc_tsdb_get_stats(f->ts, &s);
    assert_int_equal(s.out_of_order, 1);
    assert_int_equal(s.appended, 1);
    json_t *r = query(f->ts, "m_a", t0, t0 + 262 * 15000, 15000, GC_AGG_AVG, t0);
    assert_int_equal(npoints(r, 0), 261); /* the last one is not flushed yet */
    assert_true(point(r, 0, 260, NULL) == 260);
    json_decref(r);
    assert_int_equal(gc_tsdb_flush(f->ts, &err), 0);
    r = query(f->ts, "m_a", t0, t0 + 262 * 15000, 15000, GC_AGG_AVG, t0);
    assert_int_equal(npoints(r, 0), 262);
    json_decref(r);
}

static void store_order_rules(void **state)
{
    struct fx *f = *state;
    struct gc_error err = {0};
    put(f->ts, "m_o", "r", NULL, 2000, 1);
    put(f->ts, "m_o", "r", NULL, 2000, 99); /* duplicate: the first value stays */
    put(f->ts, "m_o", "r", NULL, 1000, 99); /* out of order */
    put(f->ts, "m_o", "r", NULL, 3000, 2);
    put(f->ts, "m_o", "r", NULL, -5, 2);    /* invalid time */
    struct gc_label bad[2] = {{"b", "x"}, {"a", "y"}}; /* unsorted labels */
    struct gc_sample s = {{"m_o", bad, 2}, 4000, 1};
    gc_tsdb_append(f->ts, &s, 1);
    struct gc_tsdb_stats st;
    gc_tsdb_get_stats(f->ts, &st);
    assert_int_equal(st.appended, 2);
    assert_int_equal(st.duplicates, 1);
    assert_int_equal(st.out_of_order, 1);
    assert_int_equal(st.invalid, 2);
    assert_int_equal(gc_tsdb_flush(f->ts, &err), 0);
    json_t *r = query(f->ts, "m_o", 0, 10000, 1000, GC_AGG_SUM, 5000);
    assert_int_equal(npoints(r, 0), 2);
    assert_true(point(r, 0, 0, NULL) == 1);
    assert_true(point(r, 0, 1, NULL) == 2);
    json_decref(r);
}

/* the maths of one bucket, on raw samples */
static void query_aggregations(void **state)
{
    struct fx *f = *state;
    struct gc_error err = {0};
    int64_t t0 = 1767225600000;
    /* 20 samples 1..20 in the first minute, NaN ignored, 100 in the second */
    for (int i = 0; i < 20; i++)
        put(f->ts, "m_q", "r", NULL, t0 + i * 3000, i + 1);
    put(f->ts, "m_q", "r", NULL, t0 + 60000, NAN);
    put(f->ts, "m_q", "r", NULL, t0 + 61000, 100);
    assert_int_equal(gc_tsdb_flush(f->ts, &err), 0);
    double expect[5][2] = {{10.5, 100}, {1, 100}, {20, 100}, {210, 100}, {19.05, 100}};
    for (int a = 0; a < 5; a++) {
        json_t *r = query(f->ts, "m_q", t0, t0 + 120000, 60000, (enum gc_tsdb_agg)a, t0);
        assert_int_equal(npoints(r, 0), 2);
        int64_t ts;
        double v = point(r, 0, 0, &ts);
        assert_int_equal(ts, t0 / 1000);
        if (fabs(v - expect[a][0]) > 1e-9)
            fail_msg("agg %s: %.17g, expected %.17g", gc_tsdb_agg_name((enum gc_tsdb_agg)a), v,
                     expect[a][0]);
        assert_true(point(r, 0, 1, NULL) == expect[a][1]);
        json_decref(r);
    }
    /* errors: too many points, end before start, step below 1 s, p95 older than raw */
    struct gc_tsdb_query q = {.metric = "m_q", .start_ms = t0, .end_ms = t0 + 86400000LL * 30,
                              .step_ms = 15000, .agg = GC_AGG_AVG, .now_ms = t0};
    json_t *out = NULL;
    assert_int_equal(gc_tsdb_query_range(f->ts, &q, &out, &err), GC_EINVAL);
    assert_string_equal(err.field, "step");
    assert_contains(err.msg, "step too small");
    q.end_ms = t0 - 1;
    assert_int_equal(gc_tsdb_query_range(f->ts, &q, &out, &err), GC_EINVAL);
    q.end_ms = t0 + 1000;
    q.step_ms = 10;
    assert_int_equal(gc_tsdb_query_range(f->ts, &q, &out, &err), GC_EINVAL);
    q.step_ms = 1000;
    q.agg = GC_AGG_P95;
    q.now_ms = t0 + 16 * 86400000LL;
    assert_int_equal(gc_tsdb_query_range(f->ts, &q, &out, &err), GC_EINVAL);
    assert_string_equal(err.field, "start");
}

static void exec(struct gc_store *st, const char *sql, const struct gc_val *a, size_t n)
{
    struct gc_error err = {0};
    struct gc_tx *tx;
    assert_int_equal(gc_tx_begin(st, GC_TX_WRITE, &tx, &err), 0);
    if (gc_tx_exec(tx, sql, a, n, NULL, &err))
        fail_msg("%s: %s", sql, err.msg);
    assert_int_equal(gc_tx_commit(tx, &err), 0);
}

static void query_selectors_and_scope(void **state)
{
    struct fx *f = *state;
    struct gc_error err = {0};
    const char *ins = "INSERT INTO departments (id, parent_id, path, depth, name, created_at,"
                      " updated_at, version) VALUES (?, ?, ?, ?, ?, 0, 0, 1)";
    exec(f->st, ins,
         GC_ARGS(GC_VTXT("dA"), GC_VNUL, GC_VTXT("/dA/"), GC_VINT_(1), GC_VTXT("A")));
    exec(f->st, ins,
         GC_ARGS(GC_VTXT("dA1"), GC_VTXT("dA"), GC_VTXT("/dA/dA1/"), GC_VINT_(2), GC_VTXT("A1")));
    exec(f->st, ins,
         GC_ARGS(GC_VTXT("dB"), GC_VNUL, GC_VTXT("/dB/"), GC_VINT_(1), GC_VTXT("B")));
    put(f->ts, "m_s", "vm1", "dA", 1000, 1);
    put(f->ts, "m_s", "vm2", "dA1", 1000, 2);
    put(f->ts, "m_s", "vm3", "dB", 1000, 3);
    put(f->ts, "m_s", "host1", NULL, 1000, 4);
    assert_int_equal(gc_tsdb_flush(f->ts, &err), 0);
    struct gc_principal admin = {.role = GC_ROLE_PLATFORM_ADMIN};
    struct gc_principal aadm = {.role = GC_ROLE_DEPARTMENT_ADMIN, .department_id = "dA",
                                .dept_path = "/dA/"};
    struct gc_principal a1usr = {.role = GC_ROLE_DEPARTMENT_USER, .department_id = "dA1",
                                 .dept_path = "/dA/dA1/"};
    struct gc_principal ausr = {.role = GC_ROLE_DEPARTMENT_USER, .department_id = "dA",
                                .dept_path = "/dA/"};
    struct {
        const struct gc_principal *who;
        size_t n;
    } cases[] = {{&admin, 4}, {&aadm, 2}, {&a1usr, 1}, {&ausr, 1}, {NULL, 4}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct gc_tsdb_query q = {.metric = "m_s", .start_ms = 0, .end_ms = 60000,
                                  .step_ms = 60000, .who = cases[i].who, .now_ms = 1000};
        json_t *out = NULL;
        assert_int_equal(gc_tsdb_query_range(f->ts, &q, &out, &err), 0);
        if (json_array_size(json_object_get(out, "series")) != cases[i].n)
            fail_msg("case %zu: %zu series, expected %zu", i,
                     json_array_size(json_object_get(out, "series")), cases[i].n);
        json_decref(out);
    }
    /* matchers: = and != (a missing label is "") */
    char b1[64], b2[64];
    struct gc_tsdb_matcher m[2];
    assert_int_equal(gc_tsdb_matcher_parse("resource_id!=\"vm1\"", b1, &m[0], &err), 0);
    assert_int_equal(gc_tsdb_matcher_parse("department_id=", b2, &m[1], &err), 0);
    struct gc_tsdb_query q = {.metric = "m_s", .start_ms = 0, .end_ms = 60000,
                              .step_ms = 60000, .match = m, .nmatch = 1, .now_ms = 1000};
    json_t *out = NULL;
    assert_int_equal(gc_tsdb_query_range(f->ts, &q, &out, &err), 0);
    assert_int_equal(json_array_size(json_object_get(out, "series")), 3);
    json_decref(out);
    q.nmatch = 2;
    assert_int_equal(gc_tsdb_query_range(f->ts, &q, &out, &err), 0);
    assert_int_equal(json_array_size(json_object_get(out, "series")), 1);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_array_get(json_object_get(out, "series"), 0),
                                            "labels"),
                            "resource_id")),
                        "host1");
    json_decref(out);
    assert_int_equal(gc_tsdb_matcher_parse("9bad=\"x\"", b1, &m[0], &err), GC_EINVAL);
    assert_int_equal(gc_tsdb_matcher_parse("novalue", b1, &m[0], &err), GC_EINVAL);
    /* the series list, paged */
    json_t *items = NULL;
    char *next = NULL;
    assert_int_equal(gc_tsdb_series_list(f->ts, NULL, NULL, 0, &admin, 3, NULL, &items, &next,
                                         &err),
                     0);
    assert_int_equal(json_array_size(items), 3);
    assert_non_null(next);
    json_decref(items);
    char *next2 = NULL;
    assert_int_equal(gc_tsdb_series_list(f->ts, "m_s", NULL, 0, &admin, 3, next, &items, &next2,
                                         &err),
                     0);
    assert_int_equal(json_array_size(items), 1);
    assert_null(next2);
    json_decref(items);
    free(next);
    assert_int_equal(gc_tsdb_series_list(f->ts, "m_s", NULL, 0, &aadm, 100, NULL, &items, &next,
                                         &err),
                     0);
    assert_int_equal(json_array_size(items), 2);
    json_decref(items);
}

/* 40 days of 3 series at 60 s: roll-up, aggregates equal to the raw maths, retention */
static void rollup_exact_and_retention(void **state)
{
    struct fx *f = *state;
    struct gc_error err = {0};
    const int64_t day = 86400000, t0 = 1767225600000; /* 2026-01-01, an hour boundary */
    const int64_t n = 40 * 1440;
    for (int64_t i = 0; i < n; i++) {
        int64_t t = t0 + i * 60000;
        put(f->ts, "m_r", "a", NULL, t, (double)(i % 97));          /* saw tooth */
        put(f->ts, "m_r", "b", NULL, t, (double)((i * 7919) % 1000)); /* scattered */
        put(f->ts, "m_r", "c", NULL, t, i % 50 == 0 ? NAN : 1.5);
    }
    assert_int_equal(gc_tsdb_flush(f->ts, &err), 0);
    int64_t now = t0 + n * 60000;
    /* before roll-up, 1 h steps over 10 days read raw */
    int64_t qs = t0 + 2 * day, qe = t0 + 12 * day;
    json_t *raw[4];
    for (int a = 0; a < 4; a++)
        raw[a] = query(f->ts, "m_r", qs, qe, 3600000, (enum gc_tsdb_agg)a, now);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(raw[0], "resolutions"), 0),
                            "resolution")),
                        "raw");
    assert_int_equal(gc_tsdb_maintain(f->ts, now, &err), 0);
    int64_t wm[GC_RES_COUNT];
    gc_tsdb_watermarks(f->ts, wm);
    assert_true(wm[1] > now - day && wm[1] <= now);
    assert_true(wm[2] > now - 6 * day && wm[2] <= wm[1]);
    /* raw older than 15 days is gone; the aggregates answer instead, with the same figures */
    assert_int_equal(q_int(f->st, "SELECT COUNT(*) FROM tsdb_chunks WHERE resolution = 0"
                                  " AND end_ms < 1767225600000 + 24 * 86400000"),
                     0);
    for (int a = 0; a < 4; a++) {
        json_t *agg = query(f->ts, "m_r", qs, qe, 3600000, (enum gc_tsdb_agg)a, now);
        assert_string_equal(json_string_value(json_object_get(
                                json_array_get(json_object_get(agg, "resolutions"), 0),
                                "resolution")),
                            "1h");
        for (size_t s = 0; s < 3; s++) {
            assert_int_equal(npoints(agg, s), 240);
            assert_int_equal(npoints(raw[a], s), 240);
            for (size_t i = 0; i < 240; i++) {
                double x = point(agg, s, i, NULL), y = point(raw[a], s, i, NULL);
                if (x != y)
                    fail_msg("agg %d series %zu point %zu: %.17g from 1h, %.17g from raw", a, s,
                             i, x, y);
            }
        }
        json_decref(agg);
        json_decref(raw[a]);
    }
    /* 5-minute steps come from the 5-minute level */
    json_t *r5 = query(f->ts, "m_r", qs, qs + day, 300000, GC_AGG_MAX, now);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(r5, "resolutions"), 0), "resolution")),
                        "5m");
    assert_int_equal(npoints(r5, 0), 288);
    json_decref(r5);
    /* idempotent: a second run changes nothing */
    int64_t rows = q_int(f->st, "SELECT COUNT(*) FROM tsdb_chunks");
    assert_int_equal(gc_tsdb_maintain(f->ts, now, &err), 0);
    assert_int_equal(q_int(f->st, "SELECT COUNT(*) FROM tsdb_chunks"), rows);
    /* two years later only the 1 h level is left */
    assert_int_equal(gc_tsdb_maintain(f->ts, now + 400 * day, &err), 0);
    print_message("left: raw %lld 5m %lld 1h %lld\n",
                  (long long)q_int(f->st, "SELECT COUNT(*) FROM tsdb_chunks WHERE resolution = 0"),
                  (long long)q_int(f->st, "SELECT COUNT(*) FROM tsdb_chunks WHERE resolution = 1"),
                  (long long)q_int(f->st, "SELECT COUNT(*) FROM tsdb_chunks WHERE resolution = 2"));
    assert_int_equal(q_int(f->st, "SELECT COUNT(*) FROM tsdb_chunks WHERE resolution < 2"), 0);
    assert_true(q_int(f->st, "SELECT COUNT(*) FROM tsdb_chunks WHERE resolution = 2") > 0);
    assert_int_equal(gc_tsdb_maintain(f->ts, now + 1200 * day, &err), 0);
    assert_int_equal(q_int(f->st, "SELECT COUNT(*) FROM tsdb_chunks"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(codec_random_bits),
        cmocka_unit_test(codec_edge_values),
        cmocka_unit_test(codec_realistic_sizes),
        cmocka_unit_test(codec_garbage_never_crashes),
        cmocka_unit_test(series_key_matches_monitor),
        cmocka_unit_test_setup_teardown(store_chunks_flush_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(store_order_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(query_aggregations, setup, teardown),
        cmocka_unit_test_setup_teardown(query_selectors_and_scope, setup, teardown),
        cmocka_unit_test_setup_teardown(rollup_exact_and_retention, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
