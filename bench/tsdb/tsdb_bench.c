/* Benchmark of the time-series store (a report, not a test): ingest rate on 2 threads beside
 * a raw SQLite prepared-statement loop, bytes per stored sample of realistic VM series, query
 * latency over 30 days (one series; a department's 1,000 series) beside a raw SQLite
 * GROUP BY, and 10,000 VMs x 20 series at a 15 s interval in (compressed) real time with
 * CPU and RSS. Sizes come from the environment (see bench/README.md). */
#include "core/core.h"
#include "monitor/tsdb.h"
#include "store/store.h"
#include "util/log.h"
#include "util/timeutil.h"

#include <math.h>
#include <stdbool.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define NMETRICS 20

static const char *const metric_names[NMETRICS] = {
    "govcloud_vm_cpu_seconds_total",          "govcloud_vm_memory_bytes",
    "govcloud_vm_memory_used_bytes",          "govcloud_vm_memory_available_bytes",
    "govcloud_vm_memory_swap_in_bytes_total", "govcloud_vm_memory_major_faults_total",
    "govcloud_vm_disk_read_bytes_total",      "govcloud_vm_disk_write_bytes_total",
    "govcloud_vm_disk_read_requests_total",   "govcloud_vm_disk_write_requests_total",
    "govcloud_vm_network_receive_bytes_total", "govcloud_vm_network_transmit_bytes_total",
    "govcloud_vm_network_receive_packets_total", "govcloud_vm_network_transmit_packets_total",
    "govcloud_vm_network_receive_errors_total", "govcloud_vm_network_transmit_drops_total",
    "govcloud_vm_up",                          "govcloud_vm_vcpus",
    "govcloud_vm_disk_allocation_bytes",      "govcloud_vm_disk_capacity_bytes",
};

static long env_long(const char *name, long def)
{
    const char *v = getenv(name);
    return v && *v ? atol(v) : def;
}

static double now_s(void)
{
    return (double)gc_mono_ns() / 1e9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static long status_kib(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t n = strlen(key);
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, key, n) == 0) {
            v = atol(line + n + 1);
            break;
        }
    if (f)
        fclose(f);
    return v;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void die(const char *what, const struct gc_error *err)
{
    fprintf(stderr, "bench: %s: %s\n", what, err ? err->msg : "");
    exit(1);
}

/* ---- realistic VM series ---- */

struct vm {
    uint64_t rng;
    char id[48], dept[40], host[40];
    struct gc_label labels[NMETRICS][3];
    double util;        /* share of its vCPUs it uses */
    int vcpus;
    int64_t cpu_ns, mem, used, swap, faults, rd_b, wr_b, rd_n, wr_n, rx_b, tx_b, rx_p, tx_p;
    int64_t alloc, cap;
};

static uint64_t xr(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static double unif(uint64_t *s)
{
    return (double)(xr(s) >> 11) / 9007199254740992.0;
}

static void vm_init(struct vm *g, long i, long ndept)
{
    g->rng = 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1) + 12345;
    snprintf(g->id, sizeof(g->id), "0191d2a4-%04lx-7%03lx-8000-%012lx", i >> 16 & 0xffff,
             (unsigned long)(i & 0xfff), (unsigned long)i);
    snprintf(g->dept, sizeof(g->dept), "dept-%04ld", ndept ? i % ndept : 0);
    snprintf(g->host, sizeof(g->host), "host-%04ld", i / 40);
    for (int m = 0; m < NMETRICS; m++) {
        g->labels[m][0] = (struct gc_label){"department_id", g->dept};
        g->labels[m][1] = (struct gc_label){"host_id", g->host};
        g->labels[m][2] = (struct gc_label){"resource_id", g->id};
    }
    /* most government VMs idle, some busy */
    double r = unif(&g->rng);
    g->util = r < 0.6 ? 0.02 + 0.03 * unif(&g->rng) : r < 0.9 ? 0.1 + 0.3 * unif(&g->rng)
                                                              : 0.5 + 0.4 * unif(&g->rng);
    g->vcpus = 1 << (xr(&g->rng) % 4);
    g->mem = (int64_t)g->vcpus * 2 * 1073741824LL;
    g->used = g->mem / 4;
    g->cap = 42949672960LL;
    g->alloc = g->cap / 5;
}

/* one round's 20 values */
static void vm_step(struct vm *g, double *v)
{
    double busy = g->util * (0.7 + 0.6 * unif(&g->rng));
    g->cpu_ns += (int64_t)(busy * g->vcpus * 15e9);
    if (unif(&g->rng) < 0.3) /* memory moves in KiB, now and then */
        g->used += ((int64_t)(xr(&g->rng) % 2049) - 1024) * 1024;
    if (unif(&g->rng) < 0.01)
        g->faults += (int64_t)(xr(&g->rng) % 5);
    double io = g->util > 0.1 ? 1.0 : 0.1; /* idle VMs rarely touch the disk */
    if (unif(&g->rng) < io) {
        int64_t n = 1 + (int64_t)(xr(&g->rng) % (uint64_t)(g->util * 400 + 1));
        g->rd_n += n;
        g->rd_b += n * 512 * (1 + (int64_t)(xr(&g->rng) % 16));
    }
    if (unif(&g->rng) < io * 1.5) {
        int64_t n = 1 + (int64_t)(xr(&g->rng) % (uint64_t)(g->util * 300 + 1));
        g->wr_n += n;
        g->wr_b += n * 4096 * (1 + (int64_t)(xr(&g->rng) % 4));
        if (unif(&g->rng) < 0.02)
            g->alloc += 1048576;
    }
    int64_t p = 2 + (int64_t)(xr(&g->rng) % (uint64_t)(g->util * 2000 + 3));
    g->rx_p += p;
    g->rx_b += p * (60 + (int64_t)(xr(&g->rng) % 1400));
    int64_t q = 1 + (int64_t)(xr(&g->rng) % (uint64_t)(g->util * 1500 + 2));
    g->tx_p += q;
    g->tx_b += q * (60 + (int64_t)(xr(&g->rng) % 1400));
    double vals[NMETRICS] = {(double)g->cpu_ns / 1e9, (double)g->mem, (double)g->used,
                             (double)(g->mem - g->used), (double)g->swap, (double)g->faults,
                             (double)g->rd_b, (double)g->wr_b, (double)g->rd_n, (double)g->wr_n,
                             (double)g->rx_b, (double)g->tx_b, (double)g->rx_p, (double)g->tx_p,
                             0, 0, 1, (double)g->vcpus, (double)g->alloc, (double)g->cap};
    memcpy(v, vals, sizeof(vals));
}

/* the timestamp of round r of a VM: the collector's start of round plus a little jitter */
static int64_t round_t(struct vm *g, int64_t t0, long r)
{
    return t0 + r * 15000 + (int64_t)(xr(&g->rng) % 8);
}

static void batch_of(struct vm *g, int64_t t, struct gc_sample *s)
{
    double v[NMETRICS];
    vm_step(g, v);
    for (int m = 0; m < NMETRICS; m++) {
        s[m].series.metric = metric_names[m];
        s[m].series.labels = g->labels[m];
        s[m].series.nlabels = 3;
        s[m].t_ms = t;
        s[m].value = v[m];
    }
}

static struct gc_store *open_store(const char *path)
{
    struct gc_store *st;
    struct gc_error err = {0};
    if (gc_store_open("sqlite", path, 4, &st, &err))
        die("store", &err);
    return st;
}

static double file_mib(const char *path)
{
    struct stat sb;
    char wal[512];
    snprintf(wal, sizeof(wal), "%s-wal", path);
    double n = stat(path, &sb) == 0 ? (double)sb.st_size : 0;
    if (stat(wal, &sb) == 0)
        n += (double)sb.st_size;
    return n;
}

/* ---- 1. ingest ---- */

struct ing {
    struct gc_tsdb *ts;
    struct vm *vms;
    long from, to, rounds;
    int64_t t0;
};

static void *ingest_thread(void *p)
{
    struct ing *a = p;
    struct gc_sample s[NMETRICS];
    for (long r = 0; r < a->rounds; r++)
        for (long i = a->from; i < a->to; i++) {
            batch_of(&a->vms[i], round_t(&a->vms[i], a->t0, r), s);
            gc_tsdb_append(a->ts, s, NMETRICS);
        }
    return NULL;
}

static int64_t q1(struct gc_store *st, const char *sql)
{
    struct gc_tx *tx;
    struct gc_error err = {0};
    int64_t v = 0;
    if (gc_tx_begin(st, GC_TX_READ, &tx, &err) || gc_tx_query_int(tx, sql, NULL, 0, &v, &err))
        die(sql, &err);
    gc_tx_rollback(tx);
    return v;
}

static void bench_ingest(const char *dir)
{
    long nvms = env_long("BENCH_TSDB_VMS", 2000), rounds = env_long("BENCH_TSDB_ROUNDS", 240);
    long nthreads = env_long("BENCH_TSDB_THREADS", 2);
    double total = (double)nvms * NMETRICS * (double)rounds;
    printf("\n== ingest: %ld VMs x %d series x %ld samples (15 s apart) = %.1f M samples ==\n",
           nvms, NMETRICS, rounds, total / 1e6);
    int64_t t0 = 1767225600000;
    struct vm *vms = calloc((size_t)nvms, sizeof(*vms));
    char path[256];
    snprintf(path, sizeof(path), "%s/ingest.db", dir);
    struct gc_store *st = open_store(path);
    struct gc_tsdb_opts o;
    gc_tsdb_opts_default(&o);
    o.flush_interval_ms = 0;
    struct gc_tsdb *ts;
    struct gc_error err = {0};
    if (gc_tsdb_open(st, &o, &ts, &err))
        die("tsdb", &err);
    for (long i = 0; i < nvms; i++)
        vm_init(&vms[i], i, 100);
    double c0 = cpu_s(), w0 = now_s();
    pthread_t th[8];
    struct ing a[8];
    for (long k = 0; k < nthreads && k < 8; k++) {
        a[k] = (struct ing){ts, vms, nvms * k / nthreads, nvms * (k + 1) / nthreads, rounds, t0};
        pthread_create(&th[k], NULL, ingest_thread, &a[k]);
    }
    for (long k = 0; k < nthreads && k < 8; k++)
        pthread_join(th[k], NULL);
    double w1 = now_s();
    if (gc_tsdb_flush(ts, &err))
        die("flush", &err);
    double w2 = now_s(), c2 = cpu_s();
    struct gc_tsdb_stats s;
    gc_tsdb_get_stats(ts, &s);
    double rate = total / (w2 - w0);
    printf("tsdb    : %.2f s (append %.2f s on %ld threads + flush %.2f s, %lu chunk rows), "
           "CPU %.2f s: %.2f M samples/s\n",
           w2 - w0, w1 - w0, nthreads, w2 - w1, (unsigned long)s.chunks_written, c2 - c0,
           rate / 1e6);
    /* bytes per sample */
    int64_t bytes = q1(st, "SELECT SUM(LENGTH(data)) FROM tsdb_chunks WHERE resolution = 0");
    int64_t count = q1(st, "SELECT SUM(count) FROM tsdb_chunks WHERE resolution = 0");
    gc_tsdb_close(ts);
    gc_store_close(st);
    sqlite3 *db;
    sqlite3_open(path, &db);
    sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
    printf("\n== size: realistic VM series (60 %% idle VMs, 30 %% moderate, 10 %% busy) ==\n");
    printf("chunk data: %.3f bytes/sample (%lld bytes for %lld samples); database file "
           "%.3f bytes/sample (with series index, SQLite pages)\n",
           (double)bytes / (double)count, (long long)bytes, (long long)count,
           file_mib(path) / (double)count);
    sqlite3_stmt *q;
    sqlite3_prepare_v2(db,
                       "SELECT s.metric, SUM(LENGTH(c.data)) * 1.0 / SUM(c.count) FROM "
                       "tsdb_chunks c JOIN tsdb_series s ON s.id = c.series_id GROUP BY "
                       "s.metric ORDER BY 2 DESC",
                       -1, &q, NULL);
    printf("per metric (bytes/sample):");
    int k = 0;
    while (sqlite3_step(q) == SQLITE_ROW)
        printf("%s %s %.2f", k++ % 3 ? "," : "\n ", (const char *)sqlite3_column_text(q, 0),
               sqlite3_column_double(q, 1));
    printf("\n");
    sqlite3_finalize(q);
    sqlite3_close(db);

    /* baseline: the same samples, one prepared INSERT each, 100,000 per transaction */
    snprintf(path, sizeof(path), "%s/baseline.db", dir);
    sqlite3_open(path, &db);
    sqlite3_exec(db,
                 "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                 "CREATE TABLE samples (series_id INTEGER NOT NULL, t INTEGER NOT NULL,"
                 " v REAL NOT NULL)",
                 NULL, NULL, NULL);
    sqlite3_stmt *ins;
    sqlite3_prepare_v2(db, "INSERT INTO samples (series_id, t, v) VALUES (?, ?, ?)", -1, &ins,
                       NULL);
    for (long i = 0; i < nvms; i++)
        vm_init(&vms[i], i, 100);
    double b0 = now_s(), bc0 = cpu_s();
    long n = 0;
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    double v[NMETRICS];
    for (long r = 0; r < rounds; r++)
        for (long i = 0; i < nvms; i++) {
            int64_t t = round_t(&vms[i], t0, r);
            vm_step(&vms[i], v);
            for (int m = 0; m < NMETRICS; m++) {
                sqlite3_bind_int64(ins, 1, i * NMETRICS + m);
                sqlite3_bind_int64(ins, 2, t);
                sqlite3_bind_double(ins, 3, v[m]);
                sqlite3_step(ins);
                sqlite3_reset(ins);
                if (++n % 100000 == 0) {
                    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
                    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
                }
            }
        }
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    double b1 = now_s(), bc1 = cpu_s();
    sqlite3_finalize(ins);
    sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
    double brate = total / (b1 - b0);
    printf("\nbaseline: raw SQLite loop (1 thread, no index, WAL, 100,000 rows per commit): "
           "%.2f s, CPU %.2f s: %.2f M samples/s; file %.1f bytes/sample\n",
           b1 - b0, bc1 - bc0, brate / 1e6, file_mib(path) / total);
    printf("ratio   : ingest %.1fx the baseline; size %.1fx smaller (chunk data vs baseline "
           "file)\n",
           rate / brate, (file_mib(path) / total) / ((double)bytes / (double)count));
    sqlite3_close(db);
    free(vms);
}

/* ---- 2. queries over 30 days ---- */

static void bench_query(const char *dir)
{
    long nser = env_long("BENCH_TSDB_QUERY_SERIES", 1000), days = env_long("BENCH_TSDB_DAYS", 30);
    long others = env_long("BENCH_TSDB_OTHER_SERIES", 9000), runs = env_long("BENCH_TSDB_RUNS", 50);
    long rounds = days * 5760;
    printf("\n== query: %ld series of one department x %ld days at 15 s (%.1f M samples), "
           "beside %ld series of other departments ==\n",
           nser, days, (double)nser * (double)rounds / 1e6, others);
    char path[256];
    snprintf(path, sizeof(path), "%s/query.db", dir);
    struct gc_store *st = open_store(path);
    struct gc_error err = {0};
    {
        struct gc_tx *tx;
        if (gc_tx_begin(st, GC_TX_WRITE, &tx, &err))
            die("tx", &err);
        const char *ins = "INSERT INTO departments (id, parent_id, path, depth, name, "
                          "created_at, updated_at, version) VALUES (?, NULL, ?, 1, ?, 0, 0, 1)";
        for (int i = 0; i < 10; i++) {
            char id[16], p[24];
            snprintf(id, sizeof(id), "dept-%04d", i);
            snprintf(p, sizeof(p), "/%s/", id);
            if (gc_tx_exec(tx, ins, GC_ARGS(GC_VTXT(id), GC_VTXT(p), GC_VTXT(id)), NULL, &err))
                die("dept", &err);
        }
        if (gc_tx_commit(tx, &err))
            die("commit", &err);
    }
    struct gc_tsdb_opts o;
    gc_tsdb_opts_default(&o);
    o.flush_interval_ms = 0;
    struct gc_tsdb *ts;
    if (gc_tsdb_open(st, &o, &ts, &err))
        die("tsdb", &err);
    int64_t now = 1767225600000 + (int64_t)days * 86400000;
    int64_t t0 = now - (int64_t)days * 86400000;
    struct vm *vms = calloc((size_t)(nser + others), sizeof(*vms));
    for (long i = 0; i < nser + others; i++)
        vm_init(&vms[i], i, 0);
    for (long i = nser; i < nser + others; i++) /* other departments, an hour each */
        snprintf(vms[i].dept, sizeof(vms[i].dept), "dept-%04ld", 1 + i % 9);
    double w0 = now_s();
    double v[NMETRICS];
    for (long r = 0; r < rounds; r++) {
        for (long i = 0; i < nser + (r < 240 ? others : 0); i++) {
            vm_step(&vms[i], v);
            struct gc_sample s = {{metric_names[0], vms[i].labels[0], 3},
                                  round_t(&vms[i], t0, r), v[0]};
            gc_tsdb_append(ts, &s, 1);
        }
        if (r % 5760 == 5759 && gc_tsdb_flush(ts, &err))
            die("flush", &err);
    }
    if (gc_tsdb_flush(ts, &err))
        die("flush", &err);
    double w1 = now_s();
    printf("loaded in %.1f s (1 thread)\n", w1 - w0);
    struct gc_principal dadm = {.role = GC_ROLE_DEPARTMENT_ADMIN, .department_id = "dept-0000",
                                .dept_path = "/dept-0000/"};
    struct gc_tsdb_matcher one = {"resource_id", vms[0].id, false};
    double *lat = calloc((size_t)runs, sizeof(double));
    for (int phase = env_long("BENCH_TSDB_SKIP_RAW", 0) ? 1 : 0; phase < 2; phase++) {
        if (phase == 1) {
            double m0 = now_s();
            if (gc_tsdb_maintain(ts, now, &err))
                die("maintain", &err);
            double m1 = now_s();
            printf("roll-up of %ld days (raw -> 5 min -> 1 h): %.1f s, %.1f M raw samples/s\n",
                   days, m1 - m0, (double)nser * (double)rounds / 1e6 / (m1 - m0));
        }
        const char *how = phase ? "after roll-up (1 h aggregates + 5 min + raw tail)"
                                : "before roll-up (raw samples)";
        for (int which = 0; which < 2; which++) {
            long nr = which ? (runs / 5 > 3 ? runs / 5 : 3) : runs;
            size_t nout = 0;
            for (long k = 0; k < nr; k++) {
                struct gc_tsdb_query q = {.metric = metric_names[0], .start_ms = t0,
                                          .end_ms = now, .step_ms = 3600000, .agg = GC_AGG_AVG,
                                          .now_ms = now, .who = which ? &dadm : NULL,
                                          .match = which ? NULL : &one, .nmatch = which ? 0 : 1};
                json_t *out = NULL;
                double a = now_s();
                if (gc_tsdb_query_range(ts, &q, &out, &err))
                    die("query", &err);
                lat[k] = (now_s() - a) * 1000;
                nout = json_array_size(json_object_get(out, "series"));
                json_decref(out);
            }
            qsort(lat, (size_t)nr, sizeof(double), cmp_d);
            printf("%-11s %s: %zu series x %ld points, %ld runs: p50 %.2f ms, p99 %.2f ms\n",
                   which ? "department" : "one series", how, nout, days * 24, nr,
                   lat[nr / 2], lat[(nr * 99) / 100 < nr ? (nr * 99) / 100 : nr - 1]);
        }
    }
    for (int lvl = 1; lvl < GC_RES_COUNT; lvl++) {
        char sql[200];
        snprintf(sql, sizeof(sql),
                 "SELECT COALESCE(SUM(LENGTH(data)) * 1000 / SUM(count), 0) FROM tsdb_chunks "
                 "WHERE resolution = %d",
                 lvl);
        printf("%s aggregates (min, max, sum, count): %.2f bytes per point\n",
               lvl == 1 ? "5-minute" : "1-hour", (double)q1(st, sql) / 1000.0);
    }
    /* baseline: the same series' raw samples in an indexed SQLite table, GROUP BY hour */
    snprintf(path, sizeof(path), "%s/qbase.db", dir);
    sqlite3 *db;
    sqlite3_open(path, &db);
    sqlite3_exec(db,
                 "PRAGMA journal_mode=WAL; CREATE TABLE samples (series_id INTEGER NOT NULL,"
                 " t INTEGER NOT NULL, v REAL NOT NULL, PRIMARY KEY (series_id, t))"
                 " WITHOUT ROWID",
                 NULL, NULL, NULL);
    sqlite3_stmt *ins;
    sqlite3_prepare_v2(db, "INSERT INTO samples VALUES (?, ?, ?)", -1, &ins, NULL);
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    struct vm g;
    vm_init(&g, 0, 0);
    long base_series = env_long("BENCH_TSDB_BASELINE_SERIES", 20);
    for (long sidx = 0; sidx < base_series; sidx++) {
        vm_init(&g, sidx, 0);
        for (long r = 0; r < rounds; r++) {
            vm_step(&g, v);
            sqlite3_bind_int64(ins, 1, sidx);
            sqlite3_bind_int64(ins, 2, round_t(&g, t0, r));
            sqlite3_bind_double(ins, 3, v[0]);
            sqlite3_step(ins);
            sqlite3_reset(ins);
        }
    }
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    sqlite3_finalize(ins);
    sqlite3_stmt *sel;
    sqlite3_prepare_v2(db,
                       "SELECT (t - ?) / 3600000, AVG(v) FROM samples WHERE series_id = ? AND "
                       "t >= ? AND t < ? GROUP BY 1 ORDER BY 1",
                       -1, &sel, NULL);
    for (long k = 0; k < runs; k++) {
        double a = now_s();
        sqlite3_bind_int64(sel, 1, t0);
        sqlite3_bind_int64(sel, 2, k % base_series);
        sqlite3_bind_int64(sel, 3, t0);
        sqlite3_bind_int64(sel, 4, now);
        long rows = 0;
        while (sqlite3_step(sel) == SQLITE_ROW)
            rows++;
        sqlite3_reset(sel);
        lat[k] = (now_s() - a) * 1000;
        if (rows != days * 24)
            die("baseline rows", NULL);
    }
    qsort(lat, (size_t)runs, sizeof(double), cmp_d);
    printf("baseline  : one series' raw samples in SQLite (PRIMARY KEY (series_id, t)), "
           "GROUP BY hour: p50 %.2f ms, p99 %.2f ms; a department's %ld series would be ~%.0f "
           "ms (x %ld, not run)\n",
           lat[runs / 2], lat[(runs * 99) / 100], nser, lat[runs / 2] * (double)nser, nser);
    sqlite3_finalize(sel);
    sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
    printf("baseline file: %.1f bytes/sample\n",
           file_mib(path) / ((double)base_series * (double)rounds));
    sqlite3_close(db);
    free(lat);
    free(vms);
    gc_tsdb_close(ts);
    gc_store_close(st);
}

/* ---- 3. 10,000 VMs x 20 series at 15 s, sustained ---- */

struct coll {
    struct gc_tsdb *ts;
    struct vm *vms;
    long from, to;
    int64_t t;
    double took;
};

static void *collect_round(void *p)
{
    struct coll *c = p;
    double a = now_s();
    struct gc_sample s[NMETRICS];
    for (long i = c->from; i < c->to; i++) {
        batch_of(&c->vms[i], c->t + (int64_t)(xr(&c->vms[i].rng) % 8), s);
        gc_tsdb_append(c->ts, s, NMETRICS);
    }
    c->took = now_s() - a;
    return NULL;
}

static void bench_scale(const char *dir)
{
    long nvms = env_long("BENCH_TSDB_SCALE_VMS", 10000);
    long rounds = env_long("BENCH_TSDB_SCALE_ROUNDS", 12);
    long speed = env_long("BENCH_TSDB_SPEEDUP", 1);
    double period = 15.0 / (double)speed;
    printf("\n== scale: %ld VMs x %d series = %ld series at a 15 s interval, %ld rounds; time "
           "compressed %ldx (a round every %.1f s, a flush every %.1f s) ==\n",
           nvms, NMETRICS, nvms * NMETRICS, rounds, speed, period, 10.0 / (double)speed);
    char path[256];
    snprintf(path, sizeof(path), "%s/scale.db", dir);
    struct gc_store *st = open_store(path);
    struct gc_tsdb_opts o;
    gc_tsdb_opts_default(&o);
    o.flush_interval_ms = 10000 / speed;
    o.rollup_interval_ms = 0;
    struct gc_tsdb *ts;
    struct gc_error err = {0};
    long rss0 = status_kib("VmRSS:");
    if (gc_tsdb_open(st, &o, &ts, &err))
        die("tsdb", &err);
    struct vm *vms = calloc((size_t)nvms, sizeof(*vms));
    for (long i = 0; i < nvms; i++)
        vm_init(&vms[i], i, 100);
    long rss_vms = status_kib("VmRSS:");
    int64_t t0 = gc_now_ms() - 3600000;
    double c0 = cpu_s(), w0 = now_s(), worst = 0, c_steady = 0, w_steady = 0;
    int64_t seen_flush = 0, steady_flush_max = 0, steady_flushes = 0, steady_flush_sum = 0;
    bool steady = false;
#define POLL_FLUSH()                                                                        \
    do {                                                                                    \
        struct gc_tsdb_stats ps;                                                            \
        gc_tsdb_get_stats(ts, &ps);                                                         \
        if (ps.last_flush_ms != seen_flush) {                                               \
            seen_flush = ps.last_flush_ms;                                                  \
            if (steady && ps.flushes > 2) {                                                 \
                steady_flushes++;                                                           \
                steady_flush_sum += ps.last_flush_duration_us;                              \
                if (ps.last_flush_duration_us > steady_flush_max)                           \
                    steady_flush_max = ps.last_flush_duration_us;                           \
            }                                                                               \
        }                                                                                   \
    } while (0)
    for (long r = 0; r < rounds; r++) {
        if (r == 2) { /* steady state: series created, first chunks written */
            c_steady = cpu_s();
            w_steady = now_s();
            steady = true;
        }
        double start = w0 + (double)r * period;
        while (now_s() < start) {
            POLL_FLUSH();
            usleep(2000);
        }
        pthread_t th[2];
        struct coll c[2];
        for (int k = 0; k < 2; k++) {
            c[k] = (struct coll){ts, vms, nvms * k / 2, nvms * (k + 1) / 2, t0 + r * 15000, 0};
            pthread_create(&th[k], NULL, collect_round, &c[k]);
        }
        for (int k = 0; k < 2; k++) {
            pthread_join(th[k], NULL);
            if (c[k].took > worst)
                worst = c[k].took;
        }
    }
    while (now_s() < w0 + (double)rounds * period) {
        POLL_FLUSH();
        usleep(2000);
    }
    double c1 = cpu_s(), w1 = now_s();
    long rss = status_kib("VmRSS:"), hwm = status_kib("VmHWM:");
    struct gc_tsdb_stats s;
    gc_tsdb_get_stats(ts, &s);
    double sim = (w1 - w_steady) * (double)speed;
    printf("samples appended %lu (%lu dropped), flushes %lu (errors %lu); slowest flush %.2f s "
           "(the first ones also write the new series rows); from the third on: %ld flushes, "
           "mean %.2f s, slowest %.2f s, of a %.1f s interval; slowest collector round %.2f s "
           "of %.1f s\n",
           (unsigned long)s.appended, (unsigned long)(s.out_of_order + s.duplicates + s.invalid),
           (unsigned long)s.flushes, (unsigned long)s.flush_errors,
           (double)s.max_flush_duration_us / 1e6, (long)steady_flushes,
           steady_flushes ? (double)steady_flush_sum / (double)steady_flushes / 1e6 : 0.0,
           (double)steady_flush_max / 1e6, 10.0 / (double)speed, worst, period);
    printf("CPU (rounds 3..%ld, steady state): %.1f s over %.0f s of simulated time = %.1f %% of "
           "one core (%.1f %% over the whole run incl. series creation)\n",
           rounds, c1 - c_steady, sim, 100.0 * (c1 - c_steady) / sim,
           100.0 * (c1 - c0) / ((w1 - w0) * (double)speed));
    printf("RSS: %.0f MiB at the end, peak %.0f MiB (process before the store %.0f MiB; the "
           "generator's VM state %.0f MiB of it)\n",
           (double)rss / 1024, (double)hwm / 1024, (double)rss0 / 1024,
           (double)(rss_vms - rss0) / 1024);
    printf("behind: %s\n",
           worst < period && (double)steady_flush_max / 1e6 < 10.0 / (double)speed
               ? "no (every round and every flush finished within its interval)"
               : "YES: a round or a flush took longer than its interval");
    gc_tsdb_close(ts);
    gc_store_close(st);
    free(vms);
}

int main(int argc, char **argv)
{
    const char *only = argc > 1 ? argv[1] : "all";
    setvbuf(stdout, NULL, _IOLBF, 0);
    gc_log_setup("json", GC_LOG_WARN);
    char dir[] = "/tmp/govcloud-tsdb-bench-XXXXXX";
    if (!mkdtemp(dir))
        die("mkdtemp", NULL);
    printf("govcloud time-series store benchmark (%ld CPUs online)\n",
           sysconf(_SC_NPROCESSORS_ONLN));
    if (!strcmp(only, "all") || !strcmp(only, "ingest"))
        bench_ingest(dir);
    if (!strcmp(only, "all") || !strcmp(only, "query"))
        bench_query(dir);
    if (!strcmp(only, "all") || !strcmp(only, "scale"))
        bench_scale(dir);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (!getenv("BENCH_KEEP") && system(cmd) != 0)
        fprintf(stderr, "bench: could not remove %s\n", dir);
    return 0;
}
