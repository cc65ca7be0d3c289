/* Unit tests of src/store with the SQLite backend in a temporary directory: migrations,
 * statements and cursors, conflicts, transactions, the statement cache and concurrency. */
#include "testutil.h"

#include "store/store.h"
#include "store/store_int.h"
#include "util/log.h"

#include <pthread.h>
#include <stdatomic.h>

struct fx {
    char dir[64];
    char db[128];
    struct gc_store *st;
};

static int open_store(struct fx *f, int nconns)
{
    struct gc_error err = {0};
    int rc = gc_store_open("sqlite", f->db, nconns, &f->st, &err);
    if (rc)
        print_error("gc_store_open: %s\n", err.msg);
    return rc;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    tu_mkdtemp(f->dir);
    snprintf(f->db, sizeof(f->db), "%s/govcloud.db", f->dir);
    if (open_store(f, 4) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    gc_store_close(f->st);
    tu_rmdir(f->dir);
    free(f);
    return 0;
}

/* Creates the table t used by most tests, in its own transaction. */
static void make_table(struct gc_store *st)
{
    struct gc_tx *tx;
    struct gc_error err = {0};
    assert_int_equal(gc_tx_begin(st, GC_TX_WRITE, &tx, &err), 0);
    assert_int_equal(gc_tx_exec(tx,
                                "CREATE TABLE t (id BIGINT PRIMARY KEY, name TEXT UNIQUE,"
                                " note TEXT, n BIGINT)",
                                GC_NOARGS, NULL, &err),
                     0);
    assert_int_equal(gc_tx_commit(tx, &err), 0);
}

static int64_t count_rows(struct gc_store *st, const char *table)
{
    struct gc_tx *tx;
    struct gc_error err = {0};
    char sql[128];
    int64_t n = -1;
    snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %s", table);
    assert_int_equal(gc_tx_begin(st, GC_TX_READ, &tx, &err), 0);
    int rc = gc_tx_query_int(tx, sql, GC_NOARGS, &n, &err);
    gc_tx_rollback(tx);
    assert_int_equal(rc, 0);
    return n;
}

/* ---- opening and migrations ---- */

static void migrations_applied_once(void **state)
{
    struct fx *f = *state;
    struct gc_error err = {0};
    int64_t v = -1;
    assert_string_equal(gc_store_driver_name(f->st), "sqlite");
    /* every migration is applied, in order: the version is that of the last one */
    assert_true(gc_nmigrations >= 1);
    assert_int_equal(gc_migrations[0].version, 1);
    /* strictly increasing (numbers are handed out ahead of merging, so gaps may exist
     * in a branch) */
    for (size_t i = 1; i < gc_nmigrations; i++)
        assert_true(gc_migrations[i].version > gc_migrations[i - 1].version);
    const int64_t latest = gc_migrations[gc_nmigrations - 1].version;
    assert_int_equal(gc_store_schema_version(f->st, &v, &err), 0);
    assert_int_equal(v, latest);
    assert_int_equal(count_rows(f->st, "schema_migrations"), (int64_t)gc_nmigrations);
    /* the tables of migration 1 exist and are empty */
    static const char *const tables[] = {"departments", "users",      "tokens",
                                         "audit_events", "audit_head", "jobs"};
    for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++)
        assert_int_equal(count_rows(f->st, tables[i]), 0);

    struct gc_tx *tx;
    int64_t applied_at = 0;
    assert_int_equal(gc_tx_begin(f->st, GC_TX_READ, &tx, &err), 0);
    assert_int_equal(gc_tx_query_int(tx, "SELECT applied_at FROM schema_migrations WHERE "
                                         "version = 1",
                                     GC_NOARGS, &applied_at, &err),
                     0);
    gc_tx_rollback(tx);
    assert_true(applied_at > 0);

    /* reopening applies nothing again */
    gc_store_close(f->st);
    f->st = NULL;
    tu_sleep_ms(3);
    assert_int_equal(open_store(f, 2), 0);
    assert_int_equal(gc_store_schema_version(f->st, &v, &err), 0);
    assert_int_equal(v, latest);
    assert_int_equal(count_rows(f->st, "schema_migrations"), (int64_t)gc_nmigrations);
    int64_t again = 0;
    assert_int_equal(gc_tx_begin(f->st, GC_TX_READ, &tx, &err), 0);
    assert_int_equal(gc_tx_query_int(tx, "SELECT applied_at FROM schema_migrations WHERE "
                                         "version = 1",
                                     GC_NOARGS, &again, &err),
                     0);
    gc_tx_rollback(tx);
    assert_int_equal(again, applied_at);
}

static void open_errors(void **state)
{
    (void)state;
    struct gc_store *st = NULL;
    struct gc_error err = {0};
    assert_int_equal(gc_store_open("postgres", "x", 1, &st, &err), GC_EINVAL);
    assert_contains(err.msg, "postgres");
    assert_null(st);
    gc_error_clear(&err);
    assert_int_equal(gc_store_open("sqlite", "/nonexistent-dir-gc-unit/sub/x.db", 1, &st, &err),
                     GC_ESTORE);
    assert_contains(err.msg, "/nonexistent-dir-gc-unit/sub/x.db");
    assert_null(st);
    gc_store_close(NULL);
}

static void ping(void **state)
{
    struct fx *f = *state;
    struct gc_error err = {0};
    for (int i = 0; i < 10; i++)
        assert_int_equal(gc_store_ping(f->st, &err), 0);
    assert_int_equal(err.code, 0);
}

/* ---- statements ---- */

static void exec_and_query_with_args(void **state)
{
    struct fx *f = *state;
    struct gc_error err = {0};
    struct gc_tx *tx;
    make_table(f->st);
    assert_int_equal(gc_tx_begin(f->st, GC_TX_WRITE, &tx, &err), 0);
    const char *ins = "INSERT INTO t (id, name, note, n) VALUES (?, ?, ?, ?)";
    assert_int_equal(gc_tx_exec(tx, ins,
                                GC_ARGS(GC_VINT_(1), GC_VTXT("one"), GC_VTXT("第一"),
                                        GC_VINT_(INT64_MAX)),
                                NULL, &err),
                     0);
    assert_int_equal(gc_tx_exec(tx, ins,
                                GC_ARGS(GC_VINT_(2), GC_VTXT("two"), GC_VNUL, GC_VINT_(INT64_MIN)),
                                NULL, &err),
                     0);
    /* GC_VTXT(NULL) binds SQL NULL */
    assert_int_equal(gc_tx_exec(tx, ins,
                                GC_ARGS(GC_VINT_(3), GC_VTXT(NULL), GC_VTXT(""), GC_VINT_(-5)),
                                NULL, &err),
                     0);
    int64_t changes = -1;
    assert_int_equal(gc_tx_exec(tx, "UPDATE t SET n = n WHERE id >= ?", GC_ARGS(GC_VINT_(2)),
                                &changes, &err),
                     0);
    assert_int_equal(changes, 2);
    assert_int_equal(gc_tx_exec(tx, "DELETE FROM t WHERE id = ?", GC_ARGS(GC_VINT_(99)),
                                &changes, &err),
                     0);
    assert_int_equal(changes, 0);
    assert_int_equal(gc_tx_commit(tx, &err), 0);

    assert_int_equal(gc_tx_begin(f->st, GC_TX_READ, &tx, &err), 0);
    struct gc_rows *r;
    assert_int_equal(gc_tx_query(tx, "SELECT id, name, note, n FROM t ORDER BY id", GC_NOARGS,
                                 &r, &err),
                     0);
    assert_int_equal(gc_rows_next(r, &err), 1);
    assert_int_equal(gc_rows_int(r, 0), 1);
    assert_string_equal(gc_rows_text(r, 1), "one");
    assert_string_equal(gc_rows_text(r, 2), "第一");
    assert_true(gc_rows_int(r, 3) == INT64_MAX);
    assert_false(gc_rows_null(r, 2));
    char *d = gc_rows_dup(r, 2);
    assert_string_equal(d, "第一");
    free(d);

    assert_int_equal(gc_rows_next(r, &err), 1);
    assert_int_equal(gc_rows_int(r, 0), 2);
    assert_true(gc_rows_null(r, 2));
    assert_string_equal(gc_rows_text(r, 2), ""); /* "" for NULL, never NULL */
    assert_null(gc_rows_dup(r, 2));
    assert_true(gc_rows_int(r, 3) == INT64_MIN);

    assert_int_equal(gc_rows_next(r, &err), 1);
    assert_int_equal(gc_rows_int(r, 0), 3);
    assert_true(gc_rows_null(r, 1));
    assert_null(gc_rows_dup(r, 1));
    assert_false(gc_rows_null(r, 2)); /* the empty string is not NULL */
    d = gc_rows_dup(r, 2);
    assert_non_null(d);
    assert_string_equal(d, "");
    free(d);
    assert_true(gc_rows_int(r, 3) == -5);

    assert_int_equal(gc_rows_next(r, &err), 0);
    assert_int_equal(gc_rows_next(r, &err), 0); /* stays done */
    gc_rows_free(r);
    gc_rows_free(NULL);

    /* text and integer arguments in a WHERE clause */
    int64_t id = 0;
    assert_int_equal(gc_tx_query_int(tx, "SELECT id FROM t WHERE name = ? AND n < ?",
                                     GC_ARGS(GC_VTXT("two"), GC_VINT_(0)), &id, &err),
                     0);
    assert_int_equal(id, 2);
    assert_int_equal(gc_tx_query_int(tx, "SELECT COUNT(*) FROM t WHERE name IS NULL", GC_NOARGS,
                                     &id, &err),
                     0);
    assert_int_equal(id, 1);
    /* the same statement with other arguments (cached statements are reset and rebound) */
    for (int i = 1; i <= 3; i++) {
        assert_int_equal(gc_tx_query_int(tx, "SELECT n FROM t WHERE id = ?", GC_ARGS(GC_VINT_(i)),
                                         &id, &err),
                         0);
        assert_true(i != 3 || id == -5);
    }
    gc_tx_rollback(tx);
}

static void query_int_not_found(void **state)
{
    struct fx *f = *state;
    struct gc_error err = {0};
    struct gc_tx *tx;
    make_table(f->st);
    assert_int_equal(gc_tx_begin(f->st, GC_TX_READ, &tx, &err), 0);
    int64_t v = 77;
    assert_int_equal(gc_tx_query_int(tx, "SELECT n FROM t WHERE id = ?", GC_ARGS(GC_VINT_(-999)),
                                     &v, &err),
                     GC_ENOTFOUND);
    assert_int_equal(err.code, GC_ENOTFOUND);
    assert_int_equal(v, 77);
    /* the transaction is still usable */
    assert_int_equal(gc_tx_query_int(tx, "SELECT 40 + ?", GC_ARGS(GC_VINT_(2)), &v, &err), 0);
    assert_int_equal(v, 42);
    gc_tx_rollback(tx);
}

static void unique_violation_is_conflict(void **state)
{
    struct fx *f = *state;
    struct gc_error err = {0};
    struct gc_tx *tx;
    make_table(f->st);
    const char *ins = "INSERT INTO t (id, name) VALUES (?, ?)";
    assert_int_equal(gc_tx_begin(f->st, GC_TX_WRITE, &tx, &err), 0);
    assert_int_equal(gc_tx_exec(tx, ins, GC_ARGS(GC_VINT_(1), GC_VTXT("a")), NULL, &err), 0);
    /* primary key */
    assert_int_equal(gc_tx_exec(tx, ins, GC_ARGS(GC_VINT_(1), GC_VTXT("b")), NULL, &err),
                     GC_ECONFLICT);
    assert_int_equal(err.code, GC_ECONFLICT);
    assert_contains(err.msg, "UNIQUE");
    /* unique column */
    gc_error_clear(&err);
    assert_int_equal(gc_tx_exec(tx, ins, GC_ARGS(GC_VINT_(2), GC_VTXT("a")), NULL, &err),
                     GC_ECONFLICT);
    assert_contains(err.msg, "t.name");
    /* the failed statements left the transaction usable, and the good row in it */
    assert_int_equal(gc_tx_exec(tx, ins, GC_ARGS(GC_VINT_(2), GC_VTXT("b")), NULL, &err), 0);
    assert_int_equal(gc_tx_commit(tx, &err), 0);
    assert_int_equal(count_rows(f->st, "t"), 2);

    /* conflicts in the schema's own unique columns too */
    assert_int_equal(gc_tx_begin(f->st, GC_TX_WRITE, &tx, &err), 0);
    const char *uins = "INSERT INTO users (id, username, password_hash, role, password_changed_at,"
                       " created_at, updated_at, version) VALUES (?, 'same', 'x', 'operator', 0,"
                       " 0, 0, 1)";
    assert_int_equal(gc_tx_exec(tx, uins, GC_ARGS(GC_VTXT("u1")), NULL, &err), 0);
    assert_int_equal(gc_tx_exec(tx, uins, GC_ARGS(GC_VTXT("u2")), NULL, &err), GC_ECONFLICT);
    gc_tx_rollback(tx);
}

static void syntax_error_is_store_error(void **state)
{
    struct fx *f = *state;
    struct gc_error err = {0};
    struct gc_tx *tx;
    assert_int_equal(gc_tx_begin(f->st, GC_TX_READ, &tx, &err), 0);
    int64_t v = 0;
    assert_int_equal(gc_tx_query_int(tx, "SELEKT 1", GC_NOARGS, &v, &err), GC_ESTORE);
    assert_int_equal(err.code, GC_ESTORE);
    assert_contains(err.msg, "syntax error");
    assert_int_equal(gc_tx_query_int(tx, "SELECT 1 FROM no_such_table", GC_NOARGS, &v, &err),
                     GC_ESTORE);
    assert_contains(err.msg, "no_such_table");
    /* still usable */
    assert_int_equal(gc_tx_query_int(tx, "SELECT 5", GC_NOARGS, &v, &err), 0);
    assert_int_equal(v, 5);
    gc_tx_rollback(tx);
}

/* ---- transactions ---- */

static void rollback_discards(void **state)
{
    struct fx *f = *state;
    struct gc_error err = {0};
    struct gc_tx *tx;
    make_table(f->st);
    assert_int_equal(gc_tx_begin(f->st, GC_TX_WRITE, &tx, &err), 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(gc_tx_exec(tx, "INSERT INTO t (id) VALUES (?)", GC_ARGS(GC_VINT_(i)),
                                    NULL, &err),
                         0);
    int64_t n = 0;
    assert_int_equal(gc_tx_query_int(tx, "SELECT COUNT(*) FROM t", GC_NOARGS, &n, &err), 0);
    assert_int_equal(n, 10); /* visible inside the transaction */
    gc_tx_rollback(tx);
    assert_int_equal(count_rows(f->st, "t"), 0);

    /* a rollback with a cursor still open frees it and returns the connection */
    assert_int_equal(gc_tx_begin(f->st, GC_TX_WRITE, &tx, &err), 0);
    assert_int_equal(gc_tx_exec(tx, "INSERT INTO t (id) VALUES (1), (2)", GC_NOARGS, NULL, &err),
                     0);
    struct gc_rows *r;
    assert_int_equal(gc_tx_query(tx, "SELECT id FROM t", GC_NOARGS, &r, &err), 0);
    assert_int_equal(gc_rows_next(r, &err), 1);
    gc_tx_rollback(tx);
    gc_tx_rollback(NULL);
    /* more transactions than connections: every connection came back to the pool */
    for (int i = 0; i < 12; i++) {
        assert_int_equal(gc_tx_begin(f->st, i % 2 ? GC_TX_READ : GC_TX_WRITE, &tx, &err), 0);
        assert_int_equal(gc_tx_query_int(tx, "SELECT COUNT(*) FROM t", GC_NOARGS, &n, &err), 0);
        assert_int_equal(n, 0);
        gc_tx_rollback(tx);
    }
}

static void commit_persists_across_reopen(void **state)
{
    struct fx *f = *state;
    struct gc_error err = {0};
    struct gc_tx *tx;
    make_table(f->st);
    assert_int_equal(gc_tx_begin(f->st, GC_TX_WRITE, &tx, &err), 0);
    assert_int_equal(gc_tx_exec(tx, "INSERT INTO t (id, name, note) VALUES (?, ?, ?)",
                                GC_ARGS(GC_VINT_(7), GC_VTXT("kept"), GC_VTXT("政务云")), NULL,
                                &err),
                     0);
    assert_int_equal(gc_tx_commit(tx, &err), 0);
    /* a rolled-back change after it must not show up */
    assert_int_equal(gc_tx_begin(f->st, GC_TX_WRITE, &tx, &err), 0);
    assert_int_equal(gc_tx_exec(tx, "UPDATE t SET note = 'lost' WHERE id = 7", GC_NOARGS, NULL,
                                &err),
                     0);
    gc_tx_rollback(tx);

    gc_store_close(f->st);
    f->st = NULL;
    assert_int_equal(open_store(f, 3), 0);
    assert_int_equal(gc_tx_begin(f->st, GC_TX_READ, &tx, &err), 0);
    struct gc_rows *r;
    assert_int_equal(gc_tx_query(tx, "SELECT id, name, note FROM t", GC_NOARGS, &r, &err), 0);
    assert_int_equal(gc_rows_next(r, &err), 1);
    assert_int_equal(gc_rows_int(r, 0), 7);
    assert_string_equal(gc_rows_text(r, 1), "kept");
    assert_string_equal(gc_rows_text(r, 2), "政务云");
    assert_int_equal(gc_rows_next(r, &err), 0);
    gc_rows_free(r);
    gc_tx_rollback(tx);
}

/* ---- statement cache ---- */

static void statement_cache_eviction(void **state)
{
    struct fx *f = *state;
    struct gc_error err = {0};
    struct gc_tx *tx;
    /* a pool of one connection: every statement goes through the same cache */
    gc_store_close(f->st);
    f->st = NULL;
    assert_int_equal(open_store(f, 1), 0);
    make_table(f->st);

    enum { DISTINCT = 300 };
    char sql[128];
    for (int round = 0; round < 3; round++) {
        assert_int_equal(gc_tx_begin(f->st, GC_TX_WRITE, &tx, &err), 0);
        for (int i = 0; i < DISTINCT; i++) {
            int64_t v = -1;
            /* three kinds of distinct statements: constant, bound, and a write */
            snprintf(sql, sizeof(sql), "SELECT %d + ?", i);
            assert_int_equal(gc_tx_query_int(tx, sql, GC_ARGS(GC_VINT_(round)), &v, &err), 0);
            if (v != i + round)
                fail_msg("%s with %d gave %lld", sql, round, (long long)v);
            if (round == 0) {
                snprintf(sql, sizeof(sql), "INSERT INTO t (id, n) VALUES (?, %d)", i * 2);
                assert_int_equal(gc_tx_exec(tx, sql, GC_ARGS(GC_VINT_(i)), NULL, &err), 0);
            }
            snprintf(sql, sizeof(sql), "SELECT n FROM t WHERE id = ? AND %d = %d", i, i);
            assert_int_equal(gc_tx_query_int(tx, sql, GC_ARGS(GC_VINT_(i)), &v, &err), 0);
            if (v != i * 2)
                fail_msg("%s gave %lld", sql, (long long)v);
        }
        /* the oldest statements were evicted; they still work when prepared again, and the
         * hot statement is reused across the loop */
        for (int i = DISTINCT - 1; i >= 0; i -= 7) {
            int64_t v = -1;
            snprintf(sql, sizeof(sql), "SELECT %d + ?", i);
            assert_int_equal(gc_tx_query_int(tx, sql, GC_ARGS(GC_VINT_(1000)), &v, &err), 0);
            assert_int_equal(v, i + 1000);
            assert_int_equal(gc_tx_query_int(tx, "SELECT COUNT(*) FROM t WHERE id <= ?",
                                             GC_ARGS(GC_VINT_(i)), &v, &err),
                             0);
            assert_int_equal(v, i + 1);
        }
        assert_int_equal(gc_tx_commit(tx, &err), 0);
    }
    assert_int_equal(count_rows(f->st, "t"), DISTINCT);
    /* a statement abandoned mid-cursor is reset before its next use */
    assert_int_equal(gc_tx_begin(f->st, GC_TX_READ, &tx, &err), 0);
    for (int k = 0; k < 3; k++) {
        struct gc_rows *r;
        assert_int_equal(gc_tx_query(tx, "SELECT id FROM t ORDER BY id", GC_NOARGS, &r, &err),
                         0);
        assert_int_equal(gc_rows_next(r, &err), 1);
        assert_int_equal(gc_rows_int(r, 0), 0); /* starts from the first row again */
        assert_int_equal(gc_rows_next(r, &err), 1);
        assert_int_equal(gc_rows_int(r, 0), 1);
        gc_rows_free(r);
    }
    gc_tx_rollback(tx);
}

/* ---- concurrency ---- */

enum { WRITERS = 4, ROWS_PER_WRITER = 200 };

struct writer_arg {
    struct gc_store *st;
    int who;
    atomic_int *failures;
    char first_error[320];
};

static void *writer(void *p)
{
    struct writer_arg *a = p;
    for (int i = 0; i < ROWS_PER_WRITER; i++) {
        struct gc_error err = {0};
        struct gc_tx *tx;
        int rc = gc_tx_begin(a->st, GC_TX_WRITE, &tx, &err);
        if (!rc) {
            int64_t before = 0, after = 0;
            rc = gc_tx_query_int(tx, "SELECT COUNT(*) FROM t", GC_NOARGS, &before, &err);
            if (!rc)
                rc = gc_tx_exec(tx, "INSERT INTO t (id, name, n) VALUES (?, ?, ?)",
                                GC_ARGS(GC_VINT_(a->who * 100000 + i), GC_VNUL, GC_VINT_(a->who)),
                                NULL, &err);
            if (!rc)
                rc = gc_tx_query_int(tx, "SELECT COUNT(*) FROM t", GC_NOARGS, &after, &err);
            /* nobody else writes inside this transaction */
            if (!rc && after != before + 1)
                rc = gc_error_set(&err, GC_EINTERNAL, "", "count went %lld -> %lld",
                                  (long long)before, (long long)after);
            if (rc)
                gc_tx_rollback(tx);
            else
                rc = gc_tx_commit(tx, &err);
        }
        if (rc) {
            if (atomic_fetch_add(a->failures, 1) == 0)
                snprintf(a->first_error, sizeof(a->first_error), "%s", err.msg);
        }
    }
    return NULL;
}

static void concurrent_writers(void **state)
{
    struct fx *f = *state;
    make_table(f->st);
    pthread_t th[WRITERS];
    struct writer_arg args[WRITERS];
    atomic_int failures = 0;
    for (int i = 0; i < WRITERS; i++) {
        args[i] = (struct writer_arg){.st = f->st, .who = i + 1, .failures = &failures};
        assert_int_equal(pthread_create(&th[i], NULL, writer, &args[i]), 0);
    }
    for (int i = 0; i < WRITERS; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < WRITERS; i++)
        if (args[i].first_error[0])
            print_error("writer %d: %s\n", i + 1, args[i].first_error);
    assert_int_equal(atomic_load(&failures), 0);
    assert_int_equal(count_rows(f->st, "t"), WRITERS * ROWS_PER_WRITER);
    struct gc_error err = {0};
    struct gc_tx *tx;
    assert_int_equal(gc_tx_begin(f->st, GC_TX_READ, &tx, &err), 0);
    for (int w = 1; w <= WRITERS; w++) {
        int64_t n = 0;
        assert_int_equal(gc_tx_query_int(tx, "SELECT COUNT(*) FROM t WHERE n = ?",
                                         GC_ARGS(GC_VINT_(w)), &n, &err),
                         0);
        assert_int_equal(n, ROWS_PER_WRITER);
    }
    gc_tx_rollback(tx);
}

struct reader_arg {
    struct gc_store *st;
    atomic_int *writer_done;
    atomic_int *failures;
    int reads;
    char first_error[320];
};

static void reader_fail(struct reader_arg *a, const char *msg)
{
    if (atomic_fetch_add(a->failures, 1) == 0 || !a->first_error[0])
        snprintf(a->first_error, sizeof(a->first_error), "%s", msg);
}

static void *reader(void *p)
{
    struct reader_arg *a = p;
    int64_t last = 0;
    for (;;) {
        int done = atomic_load(a->writer_done);
        struct gc_error err = {0};
        struct gc_tx *tx;
        if (gc_tx_begin(a->st, GC_TX_READ, &tx, &err) != 0) {
            reader_fail(a, err.msg);
            break;
        }
        int64_t n1 = 0, n2 = 0, sum1 = 0, sum2 = 0;
        int rc = gc_tx_query_int(tx, "SELECT COUNT(*) FROM t", GC_NOARGS, &n1, &err);
        if (!rc)
            rc = gc_tx_query_int(tx, "SELECT COALESCE(SUM(n), 0) FROM t", GC_NOARGS, &sum1, &err);
        if (!rc)
            rc = gc_tx_query_int(tx, "SELECT COUNT(*) FROM t", GC_NOARGS, &n2, &err);
        if (!rc)
            rc = gc_tx_query_int(tx, "SELECT COALESCE(SUM(n), 0) FROM t", GC_NOARGS, &sum2, &err);
        gc_tx_rollback(tx);
        if (rc) {
            reader_fail(a, err.msg);
            break;
        }
        a->reads++;
        /* a read transaction sees one snapshot; snapshots only move forward; every row the
         * writer commits has n = 1 */
        if (n1 != n2 || sum1 != sum2)
            reader_fail(a, "snapshot changed inside a read transaction");
        if (n1 < last)
            reader_fail(a, "row count went backwards");
        if (sum1 != n1)
            reader_fail(a, "saw a half-written transaction");
        last = n1;
        if (done)
            break;
    }
    return NULL;
}

static void readers_alongside_writer(void **state)
{
    struct fx *f = *state;
    make_table(f->st);
    enum { READERS = 3, ROWS = 300 };
    atomic_int writer_done = 0, failures = 0;
    pthread_t th[READERS];
    struct reader_arg args[READERS];
    for (int i = 0; i < READERS; i++) {
        args[i] = (struct reader_arg){
            .st = f->st, .writer_done = &writer_done, .failures = &failures};
        assert_int_equal(pthread_create(&th[i], NULL, reader, &args[i]), 0);
    }
    /* the writer: two rows per transaction, the second one balancing the sum */
    int werr = 0;
    char wmsg[320] = "";
    for (int i = 0; i < ROWS && !werr; i++) {
        struct gc_error err = {0};
        struct gc_tx *tx = NULL;
        int rc = gc_tx_begin(f->st, GC_TX_WRITE, &tx, &err);
        if (!rc) {
            rc = gc_tx_exec(tx, "INSERT INTO t (id, n) VALUES (?, 2)", GC_ARGS(GC_VINT_(2 * i)),
                            NULL, &err);
            if (!rc)
                rc = gc_tx_exec(tx, "INSERT INTO t (id, n) VALUES (?, 0)",
                                GC_ARGS(GC_VINT_(2 * i + 1)), NULL, &err);
            if (rc)
                gc_tx_rollback(tx);
            else
                rc = gc_tx_commit(tx, &err);
        }
        if (rc) {
            werr = rc;
            snprintf(wmsg, sizeof(wmsg), "%s", err.msg);
        }
    }
    atomic_store(&writer_done, 1);
    int reads = 0;
    for (int i = 0; i < READERS; i++) {
        pthread_join(th[i], NULL);
        reads += args[i].reads;
        if (args[i].first_error[0])
            print_error("reader %d: %s\n", i, args[i].first_error);
    }
    if (werr)
        fail_msg("writer failed: %s", wmsg);
    assert_int_equal(atomic_load(&failures), 0);
    assert_true(reads >= READERS);
    assert_int_equal(count_rows(f->st, "t"), 2 * ROWS);
}

/* Group commit: many threads at once, each call inserting two rows in its savepoint; every
 * fifth call fails after its first insert. The failing calls get their own error and leave
 * nothing; every other call's rows are there. (How many transactions the calls shared
 * depends on timing: it is printed, not asserted.) */
struct group_arg {
    struct gc_store *st;
    int base; /* first id of this thread */
    int calls;
    int ok, failed, wrong;
};

struct group_call_arg {
    int id;
    bool fail;
};

static int group_fn(struct gc_tx *tx, void *arg, struct gc_error *err)
{
    struct group_call_arg *a = arg;
    int rc = gc_tx_exec(tx, "INSERT INTO t (id, n) VALUES (?, 1)", GC_ARGS(GC_VINT_(a->id)),
                        NULL, err);
    if (!rc && a->fail)
        return gc_error_set(err, GC_EINVAL, "x", "call %d fails on purpose", a->id);
    if (!rc)
        rc = gc_tx_exec(tx, "INSERT INTO t (id, n) VALUES (?, 1)",
                        GC_ARGS(GC_VINT_(a->id + 1)), NULL, err);
    return rc;
}

static void *group_thread(void *arg)
{
    struct group_arg *g = arg;
    for (int i = 0; i < g->calls; i++) {
        struct group_call_arg c = {.id = g->base + 2 * i, .fail = i % 5 == 4};
        struct gc_error err = {0};
        int rc = gc_store_write_grouped(g->st, group_fn, &c, &err);
        if (c.fail && rc == GC_EINVAL && strstr(err.msg, "fails on purpose"))
            g->failed++;
        else if (!c.fail && rc == 0)
            g->ok++;
        else
            g->wrong++;
    }
    return NULL;
}

static void group_commit(void **state)
{
    struct fx *f = *state;
    make_table(f->st);
    enum { THREADS = 6, CALLS = 40 };
    uint64_t gen = gc_store_generation(f->st);
    pthread_t th[THREADS];
    struct group_arg g[THREADS];
    for (int i = 0; i < THREADS; i++) {
        g[i] = (struct group_arg){.st = f->st, .base = i * 1000, .calls = CALLS};
        assert_int_equal(pthread_create(&th[i], NULL, group_thread, &g[i]), 0);
    }
    int ok = 0, failed = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(g[i].wrong, 0);
        ok += g[i].ok;
        failed += g[i].failed;
    }
    uint64_t commits = gc_store_generation(f->st) - gen;
    print_message("%d calls in %llu transactions\n", THREADS * CALLS, (unsigned long long)commits);
    assert_true(commits >= 1 && commits <= THREADS * CALLS);
    assert_int_equal(failed, THREADS * CALLS / 5);
    assert_int_equal(ok, THREADS * CALLS - failed);
    /* two rows per good call, none of a failed one */
    assert_int_equal(count_rows(f->st, "t"), 2 * (int64_t)ok);
    struct gc_tx *tx;
    struct gc_error err = {0};
    int64_t n = -1;
    assert_int_equal(gc_tx_begin(f->st, GC_TX_READ, &tx, &err), 0);
    /* call i of thread t inserted ids t*1000 + 2i (and + 1): the failed ones (i % 5 == 4) none */
    assert_int_equal(gc_tx_query_int(tx, "SELECT COUNT(*) FROM t WHERE (id % 1000) / 2 % 5 = 4",
                                     GC_NOARGS, &n, &err),
                     0);
    gc_tx_rollback(tx);
    assert_int_equal(n, 0);
}

/* A call alone is its own group and commits; the commit generation moves. */
static void group_commit_alone(void **state)
{
    struct fx *f = *state;
    make_table(f->st);
    uint64_t gen = gc_store_generation(f->st);
    struct group_call_arg c = {.id = 7};
    struct gc_error err = {0};
    assert_int_equal(gc_store_write_grouped(f->st, group_fn, &c, &err), 0);
    assert_true(gc_store_generation(f->st) > gen);
    assert_int_equal(count_rows(f->st, "t"), 2);
    /* the same ids again: a conflict, returned to the caller, and nothing else changes */
    assert_int_equal(gc_store_write_grouped(f->st, group_fn, &c, &err), GC_ECONFLICT);
    assert_int_equal(count_rows(f->st, "t"), 2);
}

/* The asynchronous form: calls queued from several threads are run on the writer thread,
 * each done exactly once with its own outcome; closing the store finishes the queue. */
struct async_done {
    pthread_mutex_t lock;
    int ok, failed, wrong, calls;
};

struct async_call {
    struct group_call_arg a;
    struct async_done *d;
};

static void async_done_fn(void *arg, int rc, const struct gc_error *err)
{
    struct async_call *c = arg;
    pthread_mutex_lock(&c->d->lock);
    c->d->calls++;
    if (c->a.fail && rc == GC_EINVAL && strstr(err->msg, "fails on purpose"))
        c->d->failed++;
    else if (!c->a.fail && rc == 0)
        c->d->ok++;
    else
        c->d->wrong++;
    pthread_mutex_unlock(&c->d->lock);
    free(c);
}

struct async_thread {
    struct gc_store *st;
    struct async_done *d;
    int base;
};

static void *async_thread(void *arg)
{
    struct async_thread *t = arg;
    for (int i = 0; i < 50; i++) {
        struct async_call *c = calloc(1, sizeof(*c));
        c->a.id = t->base + 2 * i;
        c->a.fail = i % 5 == 4;
        c->d = t->d;
        gc_store_write_async(t->st, group_fn, async_done_fn, c);
    }
    return NULL;
}

static void group_commit_async(void **state)
{
    struct fx *f = *state;
    make_table(f->st);
    struct async_done d = {.lock = PTHREAD_MUTEX_INITIALIZER};
    enum { THREADS = 4 };
    pthread_t th[THREADS];
    struct async_thread t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        t[i] = (struct async_thread){.st = f->st, .d = &d, .base = i * 1000};
        assert_int_equal(pthread_create(&th[i], NULL, async_thread, &t[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    /* close at once: every queued call is run and answered first */
    gc_store_close(f->st);
    f->st = NULL;
    assert_int_equal(d.calls, THREADS * 50);
    assert_int_equal(d.wrong, 0);
    assert_int_equal(d.failed, THREADS * 10);
    assert_int_equal(open_store(f, 2), 0);
    assert_int_equal(count_rows(f->st, "t"), 2 * (int64_t)d.ok);
}

int main(void)
{
    gc_log_min_level = GC_LOG_WARN; /* migrations log at info on every open */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(migrations_applied_once, setup, teardown),
        cmocka_unit_test(open_errors),
        cmocka_unit_test_setup_teardown(ping, setup, teardown),
        cmocka_unit_test_setup_teardown(exec_and_query_with_args, setup, teardown),
        cmocka_unit_test_setup_teardown(query_int_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(unique_violation_is_conflict, setup, teardown),
        cmocka_unit_test_setup_teardown(syntax_error_is_store_error, setup, teardown),
        cmocka_unit_test_setup_teardown(rollback_discards, setup, teardown),
        cmocka_unit_test_setup_teardown(commit_persists_across_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(statement_cache_eviction, setup, teardown),
        cmocka_unit_test_setup_teardown(concurrent_writers, setup, teardown),
        cmocka_unit_test_setup_teardown(readers_alongside_writer, setup, teardown),
        cmocka_unit_test_setup_teardown(group_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(group_commit_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(group_commit_async, setup, teardown),
    };
    return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
