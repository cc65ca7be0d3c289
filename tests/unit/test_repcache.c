/* Unit tests of the representation cache: entries live exactly as long as the store's write
 * generation they were loaded under. */
#include "testutil.h"

#include "core/repcache.h"
#include "store/store.h"

struct fx {
    char dir[64];
    struct gc_store *st;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    tu_mkdtemp(f->dir);
    char db[128];
    snprintf(db, sizeof(db), "%s/t.db", f->dir);
    struct gc_error err = {0};
    if (gc_store_open("sqlite", db, 2, &f->st, &err) != 0)
        fail_msg("gc_store_open: %s", err.msg);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    gc_repcache_clear();
    gc_store_close(f->st);
    tu_rmdir(f->dir);
    free(f);
    return 0;
}

static void bump(struct gc_store *st)
{
    struct gc_error err = {0};
    struct gc_tx *tx;
    assert_int_equal(gc_tx_begin(st, GC_TX_WRITE, &tx, &err), 0);
    assert_int_equal(gc_tx_commit(tx, &err), 0);
}

static void hit_until_a_write_commits(void **state)
{
    struct fx *f = *state;
    assert_true(gc_store_cacheable(f->st));
    struct gc_repcache_hit hit;
    assert_false(gc_repcache_get(f->st, "department", "a", &hit));
    uint64_t gen = gc_store_generation(f->st);
    gc_repcache_put(f->st, gen, "department", "a", "{\"x\":1}", 7, "/a/", 3);
    assert_true(gc_repcache_get(f->st, "department", "a", &hit));
    assert_string_equal(hit.body, "{\"x\":1}");
    assert_int_equal(hit.len, 7);
    assert_int_equal(hit.version, 3);
    assert_string_equal(hit.path, "/a/");
    free(hit.body);
    /* other kinds and ids do not match */
    assert_false(gc_repcache_get(f->st, "user", "a", &hit));
    assert_false(gc_repcache_get(f->st, "department", "b", &hit));
    /* a committed write ends it */
    bump(f->st);
    assert_int_equal(gc_store_generation(f->st), gen + 1);
    assert_false(gc_repcache_get(f->st, "department", "a", &hit));
}

static void rollback_keeps_it(void **state)
{
    struct fx *f = *state;
    uint64_t gen = gc_store_generation(f->st);
    gc_repcache_put(f->st, gen, "department", "r", "{}", 2, "/r/", 1);
    struct gc_error err = {0};
    struct gc_tx *tx;
    assert_int_equal(gc_tx_begin(f->st, GC_TX_WRITE, &tx, &err), 0);
    gc_tx_rollback(tx);
    assert_int_equal(gc_tx_begin(f->st, GC_TX_READ, &tx, &err), 0);
    gc_tx_rollback(tx);
    struct gc_repcache_hit hit;
    assert_true(gc_repcache_get(f->st, "department", "r", &hit));
    free(hit.body);
}

static void stale_loads_are_not_stored(void **state)
{
    struct fx *f = *state;
    /* loaded under an older generation: a write committed between load and put */
    uint64_t gen = gc_store_generation(f->st);
    bump(f->st);
    gc_repcache_put(f->st, gen, "department", "s", "{}", 2, "/s/", 1);
    struct gc_repcache_hit hit;
    assert_false(gc_repcache_get(f->st, "department", "s", &hit));
}

static void oversized_entries_are_skipped(void **state)
{
    struct fx *f = *state;
    size_t n = 9000;
    char *big = malloc(n + 1);
    memset(big, 'x', n);
    big[n] = '\0';
    gc_repcache_put(f->st, gc_store_generation(f->st), "department", "big", big, n, "/", 1);
    free(big);
    struct gc_repcache_hit hit;
    assert_false(gc_repcache_get(f->st, "department", "big", &hit));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(hit_until_a_write_commits, setup, teardown),
        cmocka_unit_test_setup_teardown(rollback_keeps_it, setup, teardown),
        cmocka_unit_test_setup_teardown(stale_loads_are_not_stored, setup, teardown),
        cmocka_unit_test_setup_teardown(oversized_entries_are_skipped, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
