/* Benchmark of supervisor-mode ingest over HTTP (a report, not a test): a govcloudd started
 * with [supervision] accept_pushes receives pre-built signed batches of asset records from
 * several concurrent senders (POST /v1/supervision/ingest, keep-alive), beside a raw
 * baseline in the same run: the same records inserted by a minimal prepared-statement loop
 * into SQLite (the same table, the same pragmas as the daemon's store, one transaction per
 * batch). Usage: bench_supervisor_ingest [BUILD_DIR]. Sizes: BENCH_INGEST_RECORDS (100000),
 * BENCH_INGEST_BATCH (500), BENCH_INGEST_SENDERS (4). BENCH_KEEP=1 keeps the temporary
 * directory. See bench/README.md. */
#include "supervision/envelope.h"
#include "util/id.h"
#include "util/timeutil.h"

#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ADMIN_PW "Bench-Passw0rd!"

static long env_long(const char *name, long def)
{
    const char *v = getenv(name);
    return v && *v ? atol(v) : def;
}

static double now_s(void)
{
    return (double)gc_mono_ns() / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_supervisor_ingest: %s\n", what);
    exit(1);
}

struct resp {
    char *data;
    size_t n;
};

static size_t grow(char *p, size_t size, size_t n, void *opaque)
{
    struct resp *r = opaque;
    r->data = realloc(r->data, r->n + size * n + 1);
    if (!r->data)
        die("out of memory");
    memcpy(r->data + r->n, p, size * n);
    r->n += size * n;
    r->data[r->n] = '\0';
    return size * n;
}

/* One request on handle h (reused: keep-alive); returns the status, *out the body. */
static long http(CURL *h, const char *method, const char *url, const char *token,
                 const char *body, size_t len, struct resp *out)
{
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    hdr = curl_slist_append(hdr, "Expect:");
    char auth[256];
    if (token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        hdr = curl_slist_append(hdr, auth);
    }
    out->data = NULL;
    out->n = 0;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, grow);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    long status = 0;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdr);
    return status;
}

static json_t *record(long i, int64_t t_ms)
{
    char id[64], name[32], uuid[GC_ID_LEN + 1], t[32];
    gc_id_new(uuid);
    snprintf(id, sizeof(id), "vm:%s", uuid);
    snprintf(name, sizeof(name), "web-%06ld", i);
    gc_time_format_rfc3339(t_ms, t, sizeof(t));
    json_t *data = json_pack(
        "{s:s,s:s,s:s,s:s,s:s,s:s,s:{s:b,s:s},s:{s:s,s:s,s:s,s:i},s:s,s:i,s:s,s:{s:s,s:s},"
        "s:{s:i,s:I,s:I},s:s,s:s}",
        "kind", "vm", "name", name, "manufacturer", "Huawei", "serial_number", uuid, "uuid",
        uuid, "cpu_arch", i % 3 ? "x86_64" : "aarch64", "domestic", "flag", (int)(i % 2),
        "basis", "鲲鹏 920；安全可靠测评", "location", "data_centre", "南宁一号机房", "room",
        "A201", "rack", "A201-03-07", "u", (int)(i % 42 + 1), "department_id",
        "0192f3a4-0000-7000-8000-000000000001", "mlps_grade", 3, "business_system",
        "政务服务网", "status", "state", "enabled", "health", "ok", "capacity", "vcpus", 4,
        "memory_bytes", (json_int_t)8589934592, "disk_bytes", (json_int_t)107374182400,
        "source", "discovered", "host_id", "0192f3a4-5b6c-7d8e-9f00-112233445566");
    return gc_sup_record_new("asset", id, i + 1, t_ms, data);
}

struct batch {
    char *text;
    size_t len;
    char **ids, **data; /* for the baseline */
    int64_t *seq, *time;
    long n;
};

static struct batch *B;
static long nbatches, nsenders;
static char ingest_url[256], push_token[80];
static atomic_long accepted_total, failures;

static void *sender(void *arg)
{
    long me = (long)arg;
    CURL *h = curl_easy_init();
    for (long b = me; b < nbatches; b += nsenders) {
        struct resp r;
        long st = http(h, "POST", ingest_url, push_token, B[b].text, B[b].len, &r);
        json_t *j = st == 200 ? json_loads(r.data, 0, NULL) : NULL;
        if (!j) {
            fprintf(stderr, "batch %ld: HTTP %ld %s\n", b + 1, st, r.data ? r.data : "");
            atomic_fetch_add(&failures, 1);
        } else {
            atomic_fetch_add(&accepted_total, (long)json_integer_value(json_object_get(j, "accepted")));
            json_decref(j);
        }
        free(r.data);
    }
    curl_easy_cleanup(h);
    return NULL;
}

/* utime + stime of a process, in seconds. */
static double proc_cpu(pid_t pid)
{
    char path[64], buf[2048];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long ut = 0, stt = 0;
    if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &stt) == 2)
        return (double)(ut + stt) / (double)sysconf(_SC_CLK_TCK);
    return 0;
}

static double self_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof(a);
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(s, (struct sockaddr *)&a, &l) != 0)
        die("no free port");
    close(s);
    return ntohs(a.sin_port);
}

static void sq(sqlite3 *db, const char *sql)
{
    char *e = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &e) != SQLITE_OK)
        die(e ? e : sql);
}

static double baseline(const char *dir, const char *cloud)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/baseline.db", dir);
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK)
        die("cannot open the baseline database");
    /* the daemon store's pragmas and the table of migration 20 */
    sq(db, "PRAGMA journal_mode=WAL");
    sq(db, "PRAGMA synchronous=FULL");
    sq(db, "CREATE TABLE sup_records (cloud_id TEXT NOT NULL, dataset TEXT NOT NULL,"
           " record_id TEXT NOT NULL, seq BIGINT NOT NULL, time BIGINT NOT NULL, op TEXT NOT NULL,"
           " data TEXT, received_at BIGINT NOT NULL, PRIMARY KEY (cloud_id, dataset, record_id))");
    sqlite3_stmt *ins;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO sup_records (cloud_id, dataset, record_id, seq, time, op,"
                           " data, received_at) VALUES (?, 'asset', ?, ?, ?, 'upsert', ?, ?) ON"
                           " CONFLICT (cloud_id, dataset, record_id) DO UPDATE SET"
                           " seq = excluded.seq, time = excluded.time, op = excluded.op,"
                           " data = excluded.data, received_at = excluded.received_at"
                           " WHERE excluded.seq > sup_records.seq",
                           -1, &ins, NULL) != SQLITE_OK)
        die(sqlite3_errmsg(db));
    double t0 = now_s();
    int64_t now = gc_now_ms();
    for (long b = 0; b < nbatches; b++) {
        sq(db, "BEGIN IMMEDIATE");
        for (long i = 0; i < B[b].n; i++) {
            sqlite3_bind_text(ins, 1, cloud, -1, SQLITE_STATIC);
            sqlite3_bind_text(ins, 2, B[b].ids[i], -1, SQLITE_STATIC);
            sqlite3_bind_int64(ins, 3, B[b].seq[i]);
            sqlite3_bind_int64(ins, 4, B[b].time[i]);
            sqlite3_bind_text(ins, 5, B[b].data[i], -1, SQLITE_STATIC);
            sqlite3_bind_int64(ins, 6, now);
            if (sqlite3_step(ins) != SQLITE_DONE)
                die(sqlite3_errmsg(db));
            sqlite3_reset(ins);
        }
        sq(db, "COMMIT");
    }
    double t = now_s() - t0;
    sqlite3_finalize(ins);
    sqlite3_close(db);
    return t;
}

int main(int argc, char **argv)
{
    const char *build = argc > 1 ? argv[1] : "build";
    long nrec = env_long("BENCH_INGEST_RECORDS", 100000);
    long bsize = env_long("BENCH_INGEST_BATCH", 500);
    nsenders = env_long("BENCH_INGEST_SENDERS", 4);
    if (nrec < 1 || bsize < 1 || bsize > GC_BATCH_MAX_RECORDS || nsenders < 1)
        die("bad sizes");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    char dir[] = "/tmp/govcloud-bench-ingest-XXXXXX";
    if (!mkdtemp(dir))
        die("mkdtemp");
    int port = free_port();
    char listen[64], daemon[512], logp[600], url[128];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
    snprintf(daemon, sizeof(daemon), "%s/govcloudd", build);
    snprintf(logp, sizeof(logp), "%s/daemon.log", dir);
    snprintf(url, sizeof(url), "http://%s", listen);
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        FILE *lf = freopen(logp, "w", stdout);
        (void)lf;
        dup2(1, 2);
        setenv("GOVCLOUD_ADMIN_PASSWORD", ADMIN_PW, 1);
        /* BENCH_INGEST_THREADS: [server] threads of the daemon (default: its own default) */
        char threads[48];
        snprintf(threads, sizeof(threads), "server.threads=%ld",
                 env_long("BENCH_INGEST_THREADS", 0));
        execl(daemon, daemon, "--listen", listen, "--data-dir", dir, "--set",
              "supervision.accept_pushes=true", "--set", "server.max_body_bytes=16777216",
              "--set", "log.level=warn", "--set", threads, (char *)NULL);
        _exit(127);
    }
    CURL *h = curl_easy_init();
    char u[512];
    struct resp r;
    int ready = 0;
    for (int i = 0; i < 400 && !ready; i++) {
        snprintf(u, sizeof(u), "%s/readyz", url);
        ready = http(h, "GET", u, NULL, NULL, 0, &r) == 200;
        free(r.data);
        if (!ready)
            usleep(50000);
    }
    if (!ready)
        die("govcloudd did not become ready (see BENCH_KEEP=1 and its daemon.log)");
    snprintf(u, sizeof(u), "%s/v1/tokens", url);
    const char *login = "{\"username\":\"admin\",\"password\":\"" ADMIN_PW "\"}";
    if (http(h, "POST", u, NULL, login, strlen(login), &r) != 201)
        die("login failed");
    json_t *j = json_loads(r.data, 0, NULL);
    free(r.data);
    char admin[80];
    snprintf(admin, sizeof(admin), "%s", json_string_value(json_object_get(j, "token")));
    json_decref(j);
    /* the sending cloud: a key of this run, registered with the supervisor */
    struct gc_sm2_key *key = NULL;
    struct gc_error err = {0};
    char *pem = NULL, cloud[GC_ID_LEN + 1];
    if (gc_sm2_key_generate(&key, &err) || gc_sm2_key_public_pem(key, &pem, &err))
        die(err.msg);
    gc_id_new(cloud);
    json_t *reg = json_pack("{s:s,s:s,s:s}", "cloud_id", cloud, "name", "bench-cloud",
                            "public_key_pem", pem);
    char *regs = json_dumps(reg, JSON_COMPACT);
    snprintf(u, sizeof(u), "%s/v1/supervision/clouds", url);
    if (http(h, "POST", u, admin, regs, strlen(regs), &r) != 201)
        die("cannot register the cloud");
    j = json_loads(r.data, 0, NULL);
    free(r.data);
    snprintf(push_token, sizeof(push_token), "%s", json_string_value(json_object_get(j, "token")));
    json_decref(j);
    free(regs);
    json_decref(reg);
    free(pem);
    snprintf(ingest_url, sizeof(ingest_url), "%s/v1/supervision/ingest", url);

    /* the batches, built and signed before anything is timed */
    nbatches = (nrec + bsize - 1) / bsize;
    B = calloc((size_t)nbatches, sizeof(*B));
    size_t bytes = 0;
    int64_t t0ms = gc_now_ms() - 3600000;
    for (long b = 0; b < nbatches; b++) {
        long n = b == nbatches - 1 ? nrec - b * bsize : bsize;
        json_t *recs = json_array();
        B[b].n = n;
        B[b].ids = calloc((size_t)n, sizeof(char *));
        B[b].data = calloc((size_t)n, sizeof(char *));
        B[b].seq = calloc((size_t)n, sizeof(int64_t));
        B[b].time = calloc((size_t)n, sizeof(int64_t));
        for (long i = 0; i < n; i++) {
            long k = b * bsize + i;
            json_t *rec = record(k, t0ms + k);
            B[b].ids[i] = strdup(json_string_value(json_object_get(rec, "id")));
            B[b].data[i] = gc_canonical_dumps(json_object_get(rec, "data"));
            B[b].seq[i] = k + 1;
            B[b].time[i] = t0ms + k;
            json_array_append_new(recs, rec);
        }
        struct gc_sup_batch_opts o = {.cloud_id = cloud, .dataset = "asset",
                                      .batch_seq = b + 1, .key = key};
        if (gc_sup_batch_build(&o, recs, &B[b].text, &B[b].len, &err))
            die(err.msg);
        bytes += B[b].len;
        json_decref(recs);
    }
    printf("%ld records (assets) in %ld signed batches of %ld, %.0f bytes per record; "
           "%ld concurrent senders over HTTP/1.1 keep-alive\n",
           nrec, nbatches, bsize, (double)bytes / (double)nrec, nsenders);

    double d0 = proc_cpu(pid), s0 = self_cpu(), t0 = now_s();
    pthread_t *th = calloc((size_t)nsenders, sizeof(pthread_t));
    for (long i = 0; i < nsenders; i++)
        pthread_create(&th[i], NULL, sender, (void *)i);
    for (long i = 0; i < nsenders; i++)
        pthread_join(th[i], NULL);
    free(th);
    double wall = now_s() - t0, dcpu = proc_cpu(pid) - d0, scpu = self_cpu() - s0;
    if (atomic_load(&failures))
        die("some batches were not accepted");
    if (atomic_load(&accepted_total) != nrec)
        die("the supervisor did not accept every record");
    /* what the supervisor holds */
    snprintf(u, sizeof(u), "%s/v1/supervision/clouds/%s", url, cloud);
    if (http(h, "GET", u, admin, NULL, 0, &r) != 200)
        die("cannot read the cloud back");
    j = json_loads(r.data, 0, NULL);
    free(r.data);
    json_t *s0j = json_array_get(json_object_get(j, "streams"), 0);
    if (json_integer_value(json_object_get(s0j, "records")) != nrec ||
        json_array_size(json_object_get(s0j, "gaps")) != 0)
        die("the supervisor's records or gaps are not what was sent");
    json_decref(j);

    double base = baseline(dir, cloud);
    double rate = (double)nrec / wall, brate = (double)nrec / base;
    printf("                                                     records/s  us/record\n");
    printf("govcloudd ingest over HTTP (verify, validate, store)  %9.0f  %9.2f\n", rate,
           wall * 1e6 / (double)nrec);
    printf("  daemon CPU per record                                          %9.2f\n",
           dcpu * 1e6 / (double)nrec);
    printf("  senders' CPU per record (curl, this process)                   %9.2f\n",
           scpu * 1e6 / (double)nrec);
    printf("raw baseline: SQLite prepared-statement upserts       %9.0f  %9.2f\n", brate,
           base * 1e6 / (double)nrec);
    printf("ratio ingest / baseline: %.3f (target >= 0.5); ingest target >= 100000 "
           "records/s\n",
           rate / brate);
    printf("CPU-bound rate of the daemon on 2 cores of its own: %.0f records/s\n",
           2.0 * (double)nrec / (dcpu > 0 ? dcpu : 1));

    kill(pid, SIGTERM);
    int status = 0;
    waitpid(pid, &status, 0);
    curl_easy_cleanup(h);
    if (!env_long("BENCH_KEEP", 0)) {
        char cmd[600];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", dir);
    } else {
        printf("kept %s\n", dir);
    }
    gc_sm2_key_free(key);
    for (long b = 0; b < nbatches; b++) {
        for (long i = 0; i < B[b].n; i++) {
            free(B[b].ids[i]);
            free(B[b].data[i]);
        }
        free(B[b].ids);
        free(B[b].data);
        free(B[b].seq);
        free(B[b].time);
        free(B[b].text);
    }
    free(B);
    curl_global_cleanup();
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
