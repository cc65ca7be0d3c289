/* Unit tests of placement (core/vm.c) on a SQLite store in a temporary directory: the spread
 * and pack weighers, a zone's own weigher and over-commit ratios, and the counters a zone
 * change recomputes. Hosts are rows with chosen sizes: no hypervisor is involved. */
#include "testutil.h"

#include "core/core.h"
#include "store/store.h"

struct fx {
    char dir[64];
    char db[128];
    struct gc_store *st;
    struct gc_config cfg;
    struct gc_tx *tx;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    tu_mkdtemp(f->dir);
    snprintf(f->db, sizeof(f->db), "%s/govcloud.db", f->dir);
    struct gc_error err = {0};
    if (gc_store_open("sqlite", f->db, 2, &f->st, &err) != 0) {
        print_error("gc_store_open: %s\n", err.msg);
        return -1;
    }
    gc_config_init(&f->cfg);
    if (gc_tx_begin(f->st, GC_TX_WRITE, &f->tx, &err) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    gc_tx_rollback(f->tx);
    gc_store_close(f->st);
    gc_config_release(&f->cfg);
    tu_rmdir(f->dir);
    free(f);
    return 0;
}

/* A connected i686 host: id "h<n>", cpus CPUs, mib MiB, in zone, with its counters. */
static void host(struct fx *f, const char *id, const char *zone, int64_t cpus, int64_t mib)
{
    struct gc_error err = {0};
    char uri[64];
    snprintf(uri, sizeof(uri), "test:///default?%s", id);
    assert_int_equal(gc_tx_exec(f->tx,
                                "INSERT INTO hosts (id, name, uri, zone, state, arch, cpus,"
                                " memory_mib, created_at, updated_at, version)"
                                " VALUES (?, ?, ?, ?, 'connected', 'i686', ?, ?, 0, 0, 1)",
                                GC_ARGS(GC_VTXT(id), GC_VTXT(id), GC_VTXT(uri), GC_VTXT(zone),
                                        GC_VINT_(cpus), GC_VINT_(mib)),
                                NULL, &err),
                     0);
    assert_int_equal(gc_host_capacity_refresh(f->tx, &f->cfg, id, &err), 0);
}

/* Places a VM and reserves it on the chosen host; returns that host's id (static buffer). */
static const char *place(struct fx *f, const char *zone, int64_t vcpus, int64_t mib)
{
    static char out[GC_ID_LEN + 1];
    struct gc_error err = {0};
    struct gc_place_req q = {.arch = "i686", .vcpus = vcpus, .memory_mib = mib, .zone = zone};
    int rc = gc_vm_place(f->tx, &f->cfg, &q, out, &err);
    if (rc) {
        print_message("placement: %s\n", err.msg);
        return NULL;
    }
    assert_int_equal(gc_host_reserve(f->tx, out, vcpus, mib, &err), 0);
    return out;
}

static int64_t counter(struct fx *f, const char *id, const char *col)
{
    struct gc_error err = {0};
    char sql[96];
    int64_t v = 0;
    snprintf(sql, sizeof(sql), "SELECT %s FROM hosts WHERE id = ?", col);
    assert_int_equal(gc_tx_query_int(f->tx, sql, GC_ARGS(GC_VTXT(id)), &v, &err), 0);
    return v;
}

static void set_weigher(struct fx *f, const char *w)
{
    struct gc_error err = {0};
    assert_int_equal(gc_config_set(&f->cfg, "compute.placement_weigher", w, &err), 0);
}

static void spread_takes_the_most_free_memory(void **state)
{
    struct fx *f = *state;
    host(f, "small", "z", 16, 4096);
    host(f, "big", "z", 16, 16384);
    host(f, "mid", "z", 16, 8192);
    assert_string_equal(place(f, NULL, 1, 1024), "big");
    /* big has 15360 free, mid 8192: big again until it falls below mid */
    for (int i = 0; i < 7; i++)
        assert_string_equal(place(f, NULL, 1, 1024), "big");
    assert_int_equal(counter(f, "big", "memory_free_mib"), 8192);
    const char *h = place(f, NULL, 1, 1024); /* a tie: either */
    assert_true(strcmp(h, "big") == 0 || strcmp(h, "mid") == 0);
}

static void pack_takes_the_least_free_memory_that_fits(void **state)
{
    struct fx *f = *state;
    set_weigher(f, "pack");
    host(f, "small", "z", 16, 4096);
    host(f, "big", "z", 16, 16384);
    host(f, "mid", "z", 16, 8192);
    for (int i = 0; i < 4; i++)
        assert_string_equal(place(f, NULL, 1, 1024), "small");
    assert_int_equal(counter(f, "small", "memory_free_mib"), 0);
    /* small is full: the next least free that fits is mid */
    assert_string_equal(place(f, NULL, 1, 1024), "mid");
    /* too big for mid's 7168 left: big, although mid is fuller */
    assert_string_equal(place(f, NULL, 1, 8192), "big");
    /* mid takes all its remaining vCPUs (16 x 400 % = 64, one used) */
    assert_string_equal(place(f, NULL, 63, 512), "mid");
    assert_int_equal(counter(f, "mid", "vcpus_free"), 0);
    /* mid still has the least free memory, but no vCPU: skipped */
    assert_string_equal(place(f, NULL, 1, 512), "big");
}

static void a_zone_has_its_own_weigher_and_ratios(void **state)
{
    struct fx *f = *state;
    struct gc_error err = {0};
    host(f, "a1", "za", 16, 4096);
    host(f, "a2", "za", 16, 8192);
    host(f, "b1", "zb", 16, 8192);
    /* zone za packs and takes 200 % memory; zb keeps the defaults */
    assert_int_equal(gc_tx_exec(f->tx,
                                "INSERT INTO zones (name, ram_overcommit_percent,"
                                " placement_weigher, created_at, updated_at, version)"
                                " VALUES ('za', 200, 'pack', 0, 0, 1)",
                                GC_NOARGS, NULL, &err),
                     0);
    assert_int_equal(gc_zone_capacity_refresh(f->tx, &f->cfg, "za", &err), 0);
    assert_int_equal(counter(f, "a1", "memory_free_mib"), 8192);
    assert_int_equal(counter(f, "a2", "memory_free_mib"), 16384);
    assert_int_equal(counter(f, "b1", "memory_free_mib"), 8192);
    char w[16];
    assert_int_equal(gc_zone_weigher(f->tx, &f->cfg, "za", w, sizeof(w), &err), 0);
    assert_string_equal(w, "pack");
    assert_int_equal(gc_zone_weigher(f->tx, &f->cfg, "zb", w, sizeof(w), &err), 0);
    assert_string_equal(w, "spread");
    assert_int_equal(gc_zone_weigher(f->tx, &f->cfg, NULL, w, sizeof(w), &err), 0);
    assert_string_equal(w, "spread");
    /* in za: packed onto a1 (8192 free with the ratio) */
    assert_string_equal(place(f, "za", 1, 4096), "a1");
    assert_string_equal(place(f, "za", 1, 4096), "a1");
    assert_string_equal(place(f, "za", 1, 4096), "a2");
    /* without a zone: spread over all, a2 has the most free memory (12288) */
    assert_string_equal(place(f, NULL, 1, 1024), "a2");
    /* the ratio lowered back: a1 is over-committed and refuses more */
    assert_int_equal(gc_tx_exec(f->tx, "UPDATE zones SET ram_overcommit_percent = NULL",
                                GC_NOARGS, NULL, &err),
                     0);
    assert_int_equal(gc_zone_capacity_refresh(f->tx, &f->cfg, "za", &err), 0);
    assert_int_equal(counter(f, "a1", "memory_free_mib"), 4096 - 8192);
    assert_int_equal(counter(f, "a2", "memory_free_mib"), 8192 - 5120);
    struct gc_place_req q = {.arch = "i686", .vcpus = 1, .memory_mib = 4096, .zone = "za"};
    char out[GC_ID_LEN + 1];
    assert_int_equal(gc_vm_place(f->tx, &f->cfg, &q, out, &err), GC_ECONFLICT);
    assert_non_null(strstr(err.msg, "4096 MiB"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(spread_takes_the_most_free_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(pack_takes_the_least_free_memory_that_fits, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_zone_has_its_own_weigher_and_ratios, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
