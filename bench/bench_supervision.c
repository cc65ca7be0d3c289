/* Benchmark of supervision ingest checks (a report, not a test): records per second for
 * reading the canonical text alone (beside a jansson parse of it), schema validation alone,
 * batch opening (read, batch schema, SM2 verification) alone,
 * both, both on 2 threads, and both plus the SQLite insert, beside a raw baseline that
 * inserts the same records with a minimal prepared-statement loop in the same run.
 * Sizes: BENCH_SUP_RECORDS (200000), BENCH_SUP_BATCH (500). See bench/README.md. */
#include "supervision/envelope.h"
#include "supervision/schema.h"
#include "util/id.h"
#include "util/timeutil.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *CLOUD = "6f1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d5";

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
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_supervision: %s\n", what);
    exit(1);
}

/* One record of dataset ds, number i: shaped like the examples of the spec. */
static json_t *make_record(const char *ds, long i)
{
    char id[80], name[64], t[32], uuid[GC_ID_LEN + 1];
    gc_id_new(uuid);
    gc_time_format_rfc3339(1795632136000 + i * 15, t, sizeof(t));
    json_t *data;
    if (!strcmp(ds, "asset")) {
        snprintf(id, sizeof(id), "vm:%s", uuid);
        snprintf(name, sizeof(name), "web-%06ld", i);
        data = json_pack(
            "{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:{s:b,s:s},s:{s:s,s:s,s:s,s:i},s:s,s:i,s:s,"
            "s:{s:s,s:s},s:{s:i,s:I,s:I},s:s,s:s}",
            "kind", "vm", "name", name, "manufacturer", "Huawei", "model", "KVM guest",
            "serial_number", uuid, "uuid", uuid, "cpu_arch", i % 3 ? "x86_64" : "aarch64",
            "domestic", "flag", (int)(i % 2), "basis", "鲲鹏 920；安全可靠测评", "location",
            "data_centre", "南宁一号机房", "room", "A201", "rack", "A201-03-07", "u",
            (int)(i % 42 + 1), "department_id", "0192f3a4-0000-7000-8000-000000000001",
            "mlps_grade", 3, "business_system", "政务服务网", "status", "state", "enabled",
            "health", "ok", "capacity", "vcpus", 4, "memory_bytes", (json_int_t)8589934592,
            "disk_bytes", (json_int_t)107374182400, "source", "discovered", "host_id",
            "0192f3a4-5b6c-7d8e-9f00-112233445566");
    } else if (!strcmp(ds, "log")) {
        snprintf(id, sizeof(id), "%s", uuid);
        data = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:{s:s,s:s,s:s,s:s,s:s},"
                         "s:{s:s,s:s,s:s},s:{s:s,s:s,s:s},s:s}",
                         "id", uuid, "type_uri", "http://schemas.dmtf.org/cloud/audit/1.0/event",
                         "event_type", "activity", "event_time", t, "action",
                         i % 5 ? "vm.reboot" : "vm.delete", "outcome",
                         i % 7 ? "success" : "failure", "severity", "notice", "initiator",
                         "id", "0192f300-aaaa-7bbb-8ccc-dddddddddddd", "name", "zhangwei",
                         "type", "service/security/account/user", "role", "department_admin",
                         "address", "10.20.30.40", "target", "id", uuid, "type", "vm", "name",
                         "web-01", "observer", "id", CLOUD, "type", "service/compute", "name",
                         "govcloudd", "request_id", "9f3a1c0e55d2b7a04e11");
    } else if (!strcmp(ds, "environment")) {
        snprintf(id, sizeof(id), "env:dc1-a201-r%02ld-inlet-t:%ld", i % 40, i);
        data = json_pack("{s:s,s:s,s:f,s:s,s:s,s:s,s:s,s:s,s:{s:i,s:i,s:i,s:i},s:s}",
                         "sensor_id", id + 4, "reading_type", "temperature", "reading",
                         20.0 + (double)(i % 70) / 10.0, "reading_units", "Cel", "time", t,
                         "physical_context", "intake", "room", "A201", "room_class", "A",
                         "thresholds", "lower_critical", 15, "lower_caution", 18,
                         "upper_caution", 27, "upper_critical", 32, "status", "ok");
    } else {
        snprintf(id, sizeof(id), "metric:govcloud_vm_cpu_seconds_total:%ld", i);
        data = json_pack("{s:s,s:s,s:s,s:f,s:s,s:i,s:{s:s,s:s,s:s}}", "name",
                         "govcloud_vm_cpu_seconds_total", "type", "counter", "unit", "seconds",
                         "value", 1234.5 + (double)i * 0.25, "time", t, "interval_seconds", 15,
                         "labels", "resource_id", uuid, "host_id",
                         "0192f3a4-5b6c-7d8e-9f00-112233445566", "department_id",
                         "0192f3a4-0000-7000-8000-000000000001");
    }
    return json_pack("{s:s,s:s,s:s,s:I,s:s,s:s,s:o}", "id", id, "dataset", ds,
                     "schema_version", "1.0", "seq", (json_int_t)(i + 1), "time", t, "op",
                     "upsert", "data", data);
}

struct batch {
    const char *dataset;
    json_t *records; /* as built */
    char *text;      /* signed, plain */
    size_t len;
    char *enc_text;  /* signed, encrypted */
    size_t enc_len;
    char **bodies;   /* each record's data in canonical text, for the baseline */
};

static struct batch *batches;
static long nbatches, batch_size;
static struct gc_sm2_key *key;
static unsigned char secret[GC_SUP_SECRET_LEN];

static int open_check(struct batch *b, bool encrypted, bool validate)
{
    struct gc_sup_batch_expect x = {.cloud_id = CLOUD, .key = key, .secret = secret};
    struct gc_sup_batch ob;
    struct gc_error err = {0};
    if (gc_sup_batch_open(encrypted ? b->enc_text : b->text, encrypted ? b->enc_len : b->len, &x,
                          &ob, &err) != 0)
        die(err.msg);
    int bad = 0;
    if (validate) {
        struct gc_schema_error se;
        for (size_t i = 0; i < ob.nrecords; i++)
            bad += gc_sup_batch_check_record(&ob, i, &se) != 0;
    }
    gc_sup_batch_release(&ob);
    return bad;
}

struct worker {
    long from, to;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    for (long b = w->from; b < w->to; b++)
        if (open_check(&batches[b], false, true))
            die("a record did not validate");
    return NULL;
}

static sqlite3 *open_db(const char *path)
{
    sqlite3 *db;
    unlink(path);
    if (sqlite3_open(path, &db) != SQLITE_OK)
        die("sqlite open");
    sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                     "CREATE TABLE records (dataset TEXT NOT NULL, id TEXT NOT NULL,"
                     " seq INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (dataset, id))",
                 NULL, NULL, NULL);
    return db;
}

static void insert_row(sqlite3_stmt *st, const char *ds, const char *id, size_t idlen,
                       int64_t seq, const char *body, size_t blen)
{
    sqlite3_bind_text(st, 1, ds, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, id, (int)idlen, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, seq);
    sqlite3_bind_text(st, 4, body, (int)blen, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        die("insert");
    sqlite3_reset(st);
}

/* The baseline: one batch in one transaction, every record's data text ready. */
static void insert_batch(sqlite3 *db, sqlite3_stmt *st, const struct batch *B)
{
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    for (size_t i = 0; i < json_array_size(B->records); i++) {
        json_t *r = json_array_get(B->records, i);
        const char *id = json_string_value(json_object_get(r, "id"));
        insert_row(st, B->dataset, id, strlen(id), json_integer_value(json_object_get(r, "seq")),
                   B->bodies[i], strlen(B->bodies[i]));
    }
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
}

/* The ingest: the same statement with the opened batch's records as received. */
static void insert_opened(sqlite3 *db, sqlite3_stmt *st, const struct gc_sup_batch *ob)
{
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    for (size_t i = 0; i < ob->nrecords; i++) {
        struct gc_sup_rec r;
        gc_sup_batch_record(ob, i, &r);
        insert_row(st, ob->dataset, r.id, r.id_len, r.seq, r.data, r.data_len);
    }
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
}

int main(void)
{
    long nrec = env_long("BENCH_SUP_RECORDS", 200000);
    batch_size = env_long("BENCH_SUP_BATCH", 500);
    nbatches = (nrec + batch_size - 1) / batch_size;
    nrec = nbatches * batch_size;
    struct gc_error err = {0};
    if (gc_schema_init(&err) || gc_sm2_key_generate(&key, &err))
        die(err.msg);
    gc_random_bytes(secret, sizeof(secret));
    static const char *const mix[] = {"asset", "log", "environment", "metric"};
    printf("govcloud supervision ingest checks (%ld CPUs online)\n",
           sysconf(_SC_NPROCESSORS_ONLN));
    printf("%ld records in %ld batches of %ld (datasets asset, log, environment, metric in "
           "turn)\n",
           nrec, nbatches, batch_size);
    double t0 = now_s(), c0 = cpu_s();
    size_t bytes = 0;
    batches = calloc((size_t)nbatches, sizeof(*batches));
    for (long b = 0; b < nbatches; b++) {
        struct batch *B = &batches[b];
        B->dataset = mix[b % 4];
        B->records = json_array();
        B->bodies = calloc((size_t)batch_size, sizeof(char *));
        for (long i = 0; i < batch_size; i++) {
            json_t *r = make_record(B->dataset, b * batch_size + i);
            B->bodies[i] = gc_canonical_dumps(json_object_get(r, "data"));
            json_array_append_new(B->records, r);
        }
        struct gc_sup_batch_opts o = {.cloud_id = CLOUD, .dataset = B->dataset,
                                      .batch_seq = b / 4 + 1, .key = key};
        if (gc_sup_batch_build(&o, B->records, &B->text, &B->len, &err))
            die(err.msg);
        o.secret = secret;
        if (gc_sup_batch_build(&o, B->records, &B->enc_text, &B->enc_len, &err))
            die(err.msg);
        bytes += B->len;
    }
    printf("built and signed in %.2f s; %.0f bytes per record in a plain batch\n\n",
           now_s() - t0, (double)bytes / (double)nrec);

    /* read only: the index of each canonical batch (what opening costs before any check),
     * one index reused as a receiver's thread does */
    struct gc_cjdoc one = {0};
    t0 = now_s();
    c0 = cpu_s();
    for (long b = 0; b < nbatches; b++)
        if (gc_cj_read(&one, batches[b].text, batches[b].len))
            die("a batch is not canonical");
    double t_read = now_s() - t0, c_read = cpu_s() - c0;
    gc_cj_release(&one);
    struct gc_cjdoc *docs = calloc((size_t)nbatches, sizeof(*docs));
    for (long b = 0; b < nbatches; b++)
        if (gc_cj_read(&docs[b], batches[b].text, batches[b].len))
            die("a batch is not canonical");

    /* validate only (records already indexed) */
    t0 = now_s();
    c0 = cpu_s();
    struct gc_schema_error se;
    for (long b = 0; b < nbatches; b++) {
        const struct gc_cjdoc *d = &docs[b];
        uint32_t r = gc_cj_get(d, 0, "records") + 1;
        for (long i = 0; i < batch_size; i++, r = d->v[r].next)
            if (gc_schema_validate_record_cj(d, r, &se))
                die(se.message);
    }
    double t_val = now_s() - t0, c_val = cpu_s() - c0;
    for (long b = 0; b < nbatches; b++)
        gc_cj_release(&docs[b]);
    free(docs);

    /* parse only, with jansson: what a tree of the same batches would cost */
    t0 = now_s();
    c0 = cpu_s();
    for (long b = 0; b < nbatches; b++) {
        json_error_t je;
        json_t *doc = json_loadb(batches[b].text, batches[b].len, JSON_REJECT_DUPLICATES, &je);
        if (!doc)
            die("parse");
        json_decref(doc);
    }
    double t_parse = now_s() - t0, c_parse = cpu_s() - c0;

    /* verify only: read, batch schema, SM2 verification */
    t0 = now_s();
    c0 = cpu_s();
    for (long b = 0; b < nbatches; b++)
        open_check(&batches[b], false, false);
    double t_ver = now_s() - t0, c_ver = cpu_s() - c0;

    t0 = now_s();
    c0 = cpu_s();
    for (long b = 0; b < nbatches; b++)
        open_check(&batches[b], true, false);
    double t_dec = now_s() - t0, c_dec = cpu_s() - c0;

    t0 = now_s();
    c0 = cpu_s();
    for (long b = 0; b < nbatches; b++)
        if (open_check(&batches[b], false, true))
            die("a record did not validate");
    double t_both = now_s() - t0, c_both = cpu_s() - c0;

    /* both, 2 threads */
    t0 = now_s();
    c0 = cpu_s();
    pthread_t th[2];
    struct worker w[2] = {{0, nbatches / 2}, {nbatches / 2, nbatches}};
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, work, &w[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    double t_both2 = now_s() - t0, c_both2 = cpu_s() - c0;

    char path[64];
    snprintf(path, sizeof(path), "/tmp/gc-bench-sup-%ld.db", (long)getpid());

    /* raw baseline: the same records (canonical text ready) by a prepared-statement loop */
    sqlite3 *db = open_db(path);
    sqlite3_stmt *st;
    const char *ins = "INSERT OR REPLACE INTO records (dataset, id, seq, body) VALUES (?,?,?,?)";
    sqlite3_prepare_v2(db, ins, -1, &st, NULL);
    t0 = now_s();
    c0 = cpu_s();
    for (long b = 0; b < nbatches; b++)
        insert_batch(db, st, &batches[b]);
    double t_raw = now_s() - t0, c_raw = cpu_s() - c0;
    sqlite3_finalize(st);
    sqlite3_close(db);

    /* ingest: open + verify + validate every record + insert (the data text as received) */
    db = open_db(path);
    sqlite3_prepare_v2(db, ins, -1, &st, NULL);
    t0 = now_s();
    c0 = cpu_s();
    for (long b = 0; b < nbatches; b++) {
        struct gc_sup_batch_expect x = {.cloud_id = CLOUD, .key = key};
        struct gc_sup_batch ob;
        if (gc_sup_batch_open(batches[b].text, batches[b].len, &x, &ob, &err))
            die(err.msg);
        for (size_t i = 0; i < ob.nrecords; i++)
            if (gc_sup_batch_check_record(&ob, i, &se))
                die(se.message);
        insert_opened(db, st, &ob);
        gc_sup_batch_release(&ob);
    }
    double t_ing = now_s() - t0, c_ing = cpu_s() - c0;
    sqlite3_finalize(st);
    sqlite3_close(db);
    char p2[96];
    unlink(path);
    snprintf(p2, sizeof(p2), "%s-wal", path);
    unlink(p2);
    snprintf(p2, sizeof(p2), "%s-shm", path);
    unlink(p2);

    double n = (double)nrec;
    printf("%-54s %10s %10s %12s\n", "", "records/s", "us/record", "CPU us/rec");
#define ROW(label, t, c)                                                                   \
    printf("%-54s %10.0f %10.2f %12.2f\n", label, n / (t), (t) / n * 1e6, (c) / n * 1e6)
    ROW("read only: index of the canonical batch text", t_read, c_read);
    ROW("  for comparison: a jansson tree of the same text", t_parse, c_parse);
    ROW("validate only (indexed records)", t_val, c_val);
    ROW("verify only (read, batch schema, SM2), plain", t_ver, c_ver);
    ROW("verify + MAC + SM4 decrypt, encrypted", t_dec, c_dec);
    ROW("validate + verify, 1 thread", t_both, c_both);
    ROW("validate + verify, 2 threads", t_both2, c_both2);
    ROW("raw baseline: SQLite prepared-statement inserts", t_raw, c_raw);
    ROW("ingest: validate + verify + the same inserts, 1 thread", t_ing, c_ing);
    /* the signature check alone, on a body of a batch's size */
    char *sig = NULL;
    if (gc_sm2_sign(key, batches[0].text, batches[0].len, &sig, &err))
        die(err.msg);
    c0 = cpu_s();
    for (int i = 0; i < 200; i++)
        if (gc_sm2_verify(key, batches[0].text, batches[0].len, sig, &err))
            die(err.msg);
    double c_sm2 = (cpu_s() - c0) / 200;
    free(sig);
    printf("\nper batch of %ld: verification %.2f ms (of which SM2 with SM3 over the %zu-byte body "
           "%.3f ms)\n",
           batch_size, t_ver / (double)nbatches * 1e3, batches[0].len, c_sm2 * 1e3);
    printf("CPU-bound rate on 2 cores (2 / CPU per record, whatever else runs): validate + "
           "verify %.0f records/s; ingest %.0f records/s\n",
           2.0 * n / c_both, 2.0 * n / c_ing);
    printf("ratios: validate+verify (1 thread) / raw baseline %.2f; (2 threads) %.2f; "
           "ingest / raw baseline %.2f\n",
           t_raw / t_both, t_raw / t_both2, t_raw / t_ing);
    printf("targets: >= 100000 records/s with validation and signature checks on 2 cores: %s "
           "(%.0f/s); ingest >= 0.5 of the raw baseline: %s (%.2f)\n",
           n / t_both2 >= 100000 ? "met" : "MISSED", n / t_both2,
           t_raw / t_ing >= 0.5 ? "met" : "MISSED", t_raw / t_ing);
    printf("BENCH supervision records=%ld batch=%ld validate_rps=%.0f verify_rps=%.0f "
           "decrypt_rps=%.0f both_rps=%.0f both2_rps=%.0f raw_rps=%.0f ingest_rps=%.0f\n",
           nrec, batch_size, n / t_val, n / t_ver, n / t_dec, n / t_both, n / t_both2,
           n / t_raw, n / t_ing);
    for (long b = 0; b < nbatches; b++) {
        json_decref(batches[b].records);
        free(batches[b].text);
        free(batches[b].enc_text);
        for (long i = 0; i < batch_size; i++)
            free(batches[b].bodies[i]);
        free(batches[b].bodies);
    }
    free(batches);
    gc_sm2_key_free(key);
    return 0;
}
