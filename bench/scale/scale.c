/* Scale benchmark of the infrastructure layer (a report, not a test): placement of many VMs
 * onto many hosts, and listing one page of VMs out of many, each beside a baseline measured
 * in the same run on the same data with raw SQLite prepared statements. */
#include "core/core.h"
#include "util/config.h"
#include "util/id.h"
#include "util/timeutil.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long env_long(const char *name, long def)
{
    const char *v = getenv(name);
    return v && *v ? atol(v) : def;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld", &v) == 1)
            break;
    if (f)
        fclose(f);
    return v;
}

static void die(const char *what, const struct gc_error *err)
{
    fprintf(stderr, "bench: %s: %s\n", what, err ? err->msg : "");
    exit(1);
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    long nhosts = env_long("BENCH_HOSTS", 10000), nplace = env_long("BENCH_PLACEMENTS", 100000);
    long nvms = env_long("BENCH_VMS", 100000), nlists = env_long("BENCH_LISTS", 1000);
    char dir[] = "/tmp/govcloud-bench-XXXXXX";
    if (!mkdtemp(dir))
        die("mkdtemp", NULL);
    char db[128];
    snprintf(db, sizeof(db), "%s/govcloud.db", dir);
    struct gc_config cfg;
    gc_config_init(&cfg);
    struct gc_error err = {0};
    struct gc_store *st;
    if (gc_store_open("sqlite", db, 2, &st, &err) != 0)
        die("open store", &err);

    /* the inventory: hosts, a department, a flavor and an image */
    struct gc_tx *tx;
    if (gc_tx_begin(st, GC_TX_WRITE, &tx, &err))
        die("begin", &err);
    char dept[GC_ID_LEN + 1], path[GC_ID_LEN + 3];
    gc_id_new(dept);
    snprintf(path, sizeof(path), "/%s/", dept);
    int rc = gc_tx_exec(tx,
                        "INSERT INTO departments (id, path, depth, name, created_at, updated_at,"
                        " version) VALUES (?, ?, 0, 'bench', 0, 0, 1)",
                        GC_ARGS(GC_VTXT(dept), GC_VTXT(path)), NULL, &err);
    rc |= gc_tx_exec(tx,
                     "INSERT INTO flavors (id, name, vcpus, memory_mib, disk_gib, created_at,"
                     " updated_at, version) VALUES ('f', 'f', 2, 4096, 0, 0, 0, 1)",
                     GC_NOARGS, NULL, &err);
    rc |= gc_tx_exec(tx,
                     "INSERT INTO images (id, name, kind, state, arch, created_at, updated_at,"
                     " version) VALUES ('i', 'i', 'kernel', 'active', 'x86_64', 0, 0, 1)",
                     GC_NOARGS, NULL, &err);
    for (long i = 0; !rc && i < nhosts; i++) {
        char id[GC_ID_LEN + 1], name[32], uri[64];
        gc_id_new(id);
        snprintf(name, sizeof(name), "h%ld", i);
        snprintf(uri, sizeof(uri), "qemu+ssh://h%ld/system", i);
        rc = gc_tx_exec(tx,
                        "INSERT INTO hosts (id, name, uri, state, arch, cpus, memory_mib,"
                        " created_at, updated_at, version)"
                        " VALUES (?, ?, ?, 'connected', 'x86_64', 64, 262144, 0, 0, 1)",
                        GC_ARGS(GC_VTXT(id), GC_VTXT(name), GC_VTXT(uri)), NULL, &err);
    }
    if (!rc)
        rc = gc_host_capacity_refresh(tx, &cfg, NULL, &err);
    if (rc || gc_tx_commit(tx, &err))
        die("inventory", &err);

    /* placement through govcloud: choose a host and reserve on it, nplace times, in one
     * transaction (the durable commit of each create is measured by the API benchmark),
     * once per weigher; then the same query and update by bare prepared statements on the
     * same file as the baseline */
    static const char *const weighers[] = {"spread", "pack"};
    double gc_us = 0, raw_us = 0, pack_us = 0, raw_pack_us = 0;
    printf("placement: %ld VMs onto %ld hosts\n", nplace, nhosts);
    for (int w = 0; w < 2; w++) {
        if (gc_config_set(&cfg, "compute.placement_weigher", weighers[w], &err))
            die("weigher", &err);
        char host[GC_ID_LEN + 1];
        if (gc_tx_begin(st, GC_TX_WRITE, &tx, &err))
            die("begin", &err);
        int64_t t0 = gc_mono_ns();
        for (long i = 0; i < nplace; i++) {
            struct gc_place_req q = {.arch = "x86_64", .vcpus = 2, .memory_mib = 4096};
            if (gc_vm_place(tx, &cfg, &q, host, &err) ||
                gc_host_reserve(tx, host, 2, 4096, &err))
                die("placement", &err);
        }
        int64_t gc_ns = gc_mono_ns() - t0;
        gc_tx_rollback(tx);

        sqlite3 *raw;
        sqlite3_open(db, &raw);
        sqlite3_exec(raw, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        sqlite3_stmt *sel, *upd;
        sqlite3_prepare_v2(raw,
                           w == 0 ? "SELECT id FROM hosts WHERE arch = 'x86_64' AND state ="
                                    " 'connected' AND maintenance = 0 AND memory_free_mib >= 4096"
                                    " AND vcpus_free >= 2 ORDER BY memory_free_mib DESC LIMIT 1"
                                  : "SELECT id FROM hosts WHERE arch = 'x86_64' AND state ="
                                    " 'connected' AND maintenance = 0 AND memory_free_mib >= 4096"
                                    " AND vcpus_free >= 2 ORDER BY memory_free_mib ASC LIMIT 1",
                           -1, &sel, NULL);
        sqlite3_prepare_v2(raw,
                           "UPDATE hosts SET vcpus_used = vcpus_used + 2,"
                           " vcpus_free = vcpus_free - 2, memory_used_mib = memory_used_mib +"
                           " 4096, memory_free_mib = memory_free_mib - 4096 WHERE id = ?",
                           -1, &upd, NULL);
        t0 = gc_mono_ns();
        for (long i = 0; i < nplace; i++) {
            if (sqlite3_step(sel) != SQLITE_ROW)
                die("baseline placement", NULL);
            sqlite3_bind_text(upd, 1, (const char *)sqlite3_column_text(sel, 0), -1,
                              SQLITE_TRANSIENT);
            sqlite3_step(upd);
            sqlite3_reset(upd);
            sqlite3_reset(sel);
        }
        int64_t raw_ns = gc_mono_ns() - t0;
        sqlite3_exec(raw, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_finalize(sel);
        sqlite3_finalize(upd);
        sqlite3_close(raw);

        double g = (double)gc_ns / 1e3 / (double)nplace;
        double b = (double)raw_ns / 1e3 / (double)nplace;
        printf("  %-6s govcloud   %10.0f placements/s  %8.1f us each\n", weighers[w], 1e6 / g, g);
        printf("  %-6s raw SQLite %10.0f placements/s  %8.1f us each   (ratio %.2f; target >= "
               "20000/s)\n",
               weighers[w], 1e6 / b, b, b / g);
        if (w == 0) {
            gc_us = g;
            raw_us = b;
        } else {
            pack_us = g;
            raw_pack_us = b;
        }
    }

    /* listing one page of 100 out of nvms VMs */
    char **ids = calloc((size_t)nvms, sizeof(char *));
    if (gc_tx_begin(st, GC_TX_WRITE, &tx, &err))
        die("begin", &err);
    for (long i = 0; i < nvms; i++) {
        char id[GC_ID_LEN + 1], name[32], dom[48];
        gc_id_new(id);
        ids[i] = strdup(id);
        snprintf(name, sizeof(name), "vm%ld", i);
        snprintf(dom, sizeof(dom), "gc-%s", id);
        if (gc_tx_exec(tx,
                       "INSERT INTO vms (id, name, department_id, flavor_id, image_id, state,"
                       " vcpus, memory_mib, disk_gib, domain_name, created_at, updated_at,"
                       " version) VALUES (?, ?, ?, 'f', 'i', 'running', 2, 4096, 0, ?, 0, 0, 1)",
                       GC_ARGS(GC_VTXT(id), GC_VTXT(name), GC_VTXT(dept), GC_VTXT(dom)), NULL,
                       &err))
            die("vms", &err);
    }
    if (gc_tx_commit(tx, &err))
        die("vms", &err);
    struct gc_principal admin = {.role = GC_ROLE_PLATFORM_ADMIN};
    snprintf(admin.username, sizeof(admin.username), "bench");
    struct gc_ctx ctx = {.store = st, .cfg = &cfg, .who = &admin, .request_id = "",
                         .source_ip = ""};
    int64_t *lat = calloc((size_t)nlists, sizeof(int64_t));
    int64_t *rlat = calloc((size_t)nlists, sizeof(int64_t));
    srand(42);
    for (long i = 0; i < nlists; i++) {
        const char *cursor = ids[rand() % (nvms - 200)];
        json_t *items = NULL;
        char *next = NULL;
        int64_t s = gc_mono_ns();
        if (gc_vm_list(&ctx, json_object(), 100, cursor, &items, &next, &err))
            die("list", &err);
        char *body = json_dumps(items, JSON_COMPACT); /* what the API would send */
        lat[i] = gc_mono_ns() - s;
        if (json_array_size(items) != 100)
            die("list returned a short page", NULL);
        free(body);
        json_decref(items);
        free(next);
    }
    sqlite3 *raw;
    sqlite3_open(db, &raw);
    sqlite3_stmt *ls;
    sqlite3_prepare_v2(raw,
                       "SELECT v.id, v.name, v.department_id, v.host_id, v.flavor_id,"
                       " v.image_id, v.state, v.power_state, v.vcpus, v.memory_mib FROM vms v"
                       " JOIN departments d ON d.id = v.department_id WHERE v.id > ?"
                       " ORDER BY v.id LIMIT 101",
                       -1, &ls, NULL);
    srand(42);
    for (long i = 0; i < nlists; i++) {
        const char *cursor = ids[rand() % (nvms - 200)];
        int64_t s = gc_mono_ns();
        sqlite3_bind_text(ls, 1, cursor, -1, SQLITE_STATIC);
        int n = 0;
        while (sqlite3_step(ls) == SQLITE_ROW)
            n += sqlite3_column_bytes(ls, 1) > 0;
        sqlite3_reset(ls);
        rlat[i] = gc_mono_ns() - s;
        if (n != 101)
            die("baseline list", NULL);
    }
    sqlite3_finalize(ls);
    sqlite3_close(raw);
    qsort(lat, (size_t)nlists, sizeof(int64_t), cmp_i64);
    qsort(rlat, (size_t)nlists, sizeof(int64_t), cmp_i64);
    double p50 = (double)lat[nlists / 2] / 1e6, p99 = (double)lat[nlists * 99 / 100] / 1e6;
    double r50 = (double)rlat[nlists / 2] / 1e6, r99 = (double)rlat[nlists * 99 / 100] / 1e6;
    printf("list: one page of 100 out of %ld VMs, %ld times (keyset cursor)\n", nvms, nlists);
    printf("  govcloud   p50 %7.3f ms  p99 %7.3f ms   (target p99 < 10 ms)\n", p50, p99);
    printf("  raw SQLite p50 %7.3f ms  p99 %7.3f ms   (ratio p99 %.2f)\n", r50, r99,
           r99 / p99);
    printf("  RSS of this process with %ld hosts and %ld VMs in the store: %ld KiB\n", nhosts,
           nvms, rss_kib());
    printf("BENCH scale hosts=%ld placements=%ld place_per_s=%.0f place_us=%.1f "
           "raw_place_us=%.1f pack_place_per_s=%.0f pack_place_us=%.1f raw_pack_place_us=%.1f "
           "vms=%ld list_p50_ms=%.3f list_p99_ms=%.3f raw_list_p99_ms=%.3f\n",
           nhosts, nplace, 1e6 / gc_us, gc_us, raw_us, 1e6 / pack_us, pack_us, raw_pack_us, nvms,
           p50, p99, r99);
    for (long i = 0; i < nvms; i++)
        free(ids[i]);
    free(ids);
    free(lat);
    free(rlat);
    gc_store_close(st);
    gc_config_release(&cfg);
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench: could not remove %s\n", dir);
    return 0;
}
