/* SQLite backend of the store: WAL, synchronous=FULL commits, a prepared-statement cache
 * per connection. */
#include "store/store.h"

#include "util/log.h"
#include "util/mem.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#define STMT_CACHE 128

struct cached_stmt {
    char *sql;
    sqlite3_stmt *stmt;
    bool busy;
    uint64_t used; /* for eviction */
};

enum { TXS_BEGIN, TXS_BEGIN_IMMEDIATE, TXS_COMMIT, TXS_ROLLBACK, TXS_COUNT };
static const char *const tx_sql[TXS_COUNT] = {"BEGIN", "BEGIN IMMEDIATE", "COMMIT", "ROLLBACK"};

struct sq_conn {
    sqlite3 *db;
    sqlite3_stmt *tx_stmt[TXS_COUNT]; /* prepared once: transactions are on every request */
    struct cached_stmt cache[STMT_CACHE];
    int ncache;
    uint64_t tick;
};

struct sq_cur {
    struct sq_conn *c;
    sqlite3_stmt *stmt;
    struct cached_stmt *slot; /* NULL for an uncached statement */
    int last_rc;
};

static int sq_error(sqlite3 *db, int rc, struct gc_error *err, const char *what)
{
    int prim = rc & 0xff;
    if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
        return gc_error_set(err, GC_ECONFLICT, "", "%s", sqlite3_errmsg(db));
    if (prim == SQLITE_CONSTRAINT)
        return gc_error_set(err, GC_ECONFLICT, "", "%s", sqlite3_errmsg(db));
    if (prim == SQLITE_BUSY || prim == SQLITE_LOCKED)
        return gc_error_set(err, GC_EBUSY, "", "database busy: %s", sqlite3_errmsg(db));
    gc_err("store", "sqlite %s failed: %s (%d)", what, sqlite3_errmsg(db), rc);
    return gc_error_set(err, GC_ESTORE, "", "sqlite %s failed: %s", what, sqlite3_errmsg(db));
}

static int sq_exec_simple(struct sq_conn *c, const char *sql, struct gc_error *err)
{
    char *msg = NULL;
    int rc = sqlite3_exec(c->db, sql, NULL, NULL, &msg);
    sqlite3_free(msg);
    if (rc != SQLITE_OK)
        return sq_error(c->db, sqlite3_extended_errcode(c->db), err, sql);
    return 0;
}

static pthread_once_t sq_once = PTHREAD_ONCE_INIT;

static void sq_global_init(void)
{
    /* memory statistics take a global mutex on every allocation; govcloud reads none */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

static int sq_open(const char *target, void **out, struct gc_error *err)
{
    pthread_once(&sq_once, sq_global_init);
    struct sq_conn *c = gc_calloc(1, sizeof(*c));
    int rc = sqlite3_open_v2(target, &c->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc != SQLITE_OK) {
        gc_error_set(err, GC_ESTORE, "data_dir", "cannot open database %s: %s", target,
                     c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
        sqlite3_close(c->db);
        free(c);
        return GC_ESTORE;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, 10000);
    /* WAL with synchronous=FULL: a commit is on disk when it returns, so a kill -9 or a
     * power loss never loses an acknowledged write. */
    rc = sq_exec_simple(c, "PRAGMA journal_mode=WAL", err);
    if (!rc)
        rc = sq_exec_simple(c, "PRAGMA synchronous=FULL", err);
    if (!rc)
        rc = sq_exec_simple(c, "PRAGMA foreign_keys=ON", err);
    if (!rc)
        rc = sq_exec_simple(c, "PRAGMA temp_store=MEMORY", err);
    for (int i = 0; !rc && i < TXS_COUNT; i++)
        if (sqlite3_prepare_v3(c->db, tx_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &c->tx_stmt[i],
                               NULL) != SQLITE_OK)
            rc = sq_error(c->db, sqlite3_extended_errcode(c->db), err, tx_sql[i]);
    if (rc) {
        for (int i = 0; i < TXS_COUNT; i++)
            sqlite3_finalize(c->tx_stmt[i]);
        sqlite3_close(c->db);
        free(c);
        return rc;
    }
    *out = c;
    return 0;
}

static int run_tx_stmt(struct sq_conn *c, int which, struct gc_error *err)
{
    sqlite3_stmt *s = c->tx_stmt[which];
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return sq_error(c->db, rc, err, tx_sql[which]);
    return 0;
}

static void sq_close(void *conn)
{
    struct sq_conn *c = conn;
    if (!c)
        return;
    for (int i = 0; i < c->ncache; i++) {
        sqlite3_finalize(c->cache[i].stmt);
        free(c->cache[i].sql);
    }
    for (int i = 0; i < TXS_COUNT; i++)
        sqlite3_finalize(c->tx_stmt[i]);
    sqlite3_close(c->db);
    free(c);
}

static int sq_begin(void *conn, bool write, struct gc_error *err)
{
    return run_tx_stmt(conn, write ? TXS_BEGIN_IMMEDIATE : TXS_BEGIN, err);
}

static int sq_commit(void *conn, struct gc_error *err)
{
    return run_tx_stmt(conn, TXS_COMMIT, err);
}

static void sq_rollback(void *conn)
{
    struct sq_conn *c = conn;
    if (!sqlite3_get_autocommit(c->db))
        run_tx_stmt(c, TXS_ROLLBACK, NULL);
}

static struct cached_stmt *cache_get(struct sq_conn *c, const char *sql, struct gc_error *err,
                                     int *rcp)
{
    *rcp = 0;
    for (int i = 0; i < c->ncache; i++) {
        if (!c->cache[i].busy && strcmp(c->cache[i].sql, sql) == 0) {
            c->cache[i].used = ++c->tick;
            return &c->cache[i];
        }
    }
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL);
    if (rc != SQLITE_OK) {
        *rcp = sq_error(c->db, sqlite3_extended_errcode(c->db), err, "prepare");
        return NULL;
    }
    struct cached_stmt *slot;
    if (c->ncache < STMT_CACHE) {
        slot = &c->cache[c->ncache++];
    } else {
        slot = NULL;
        for (int i = 0; i < c->ncache; i++)
            if (!c->cache[i].busy && (!slot || c->cache[i].used < slot->used))
                slot = &c->cache[i];
        if (!slot) {
            sqlite3_finalize(stmt);
            *rcp = gc_error_set(err, GC_ESTORE, "", "statement cache exhausted");
            return NULL;
        }
        sqlite3_finalize(slot->stmt);
        free(slot->sql);
    }
    slot->sql = gc_strdup(sql);
    slot->stmt = stmt;
    slot->busy = false;
    slot->used = ++c->tick;
    return slot;
}

static int sq_query(void *conn, const char *sql, const struct gc_val *args, size_t nargs,
                    void **out, struct gc_error *err)
{
    struct sq_conn *c = conn;
    int rc;
    struct cached_stmt *slot = cache_get(c, sql, err, &rc);
    if (!slot)
        return rc;
    sqlite3_stmt *s = slot->stmt;
    if ((size_t)sqlite3_bind_parameter_count(s) != nargs)
        GC_BUG("statement takes %d parameters, %zu given: %s", sqlite3_bind_parameter_count(s),
               nargs, sql);
    for (size_t i = 0; i < nargs; i++) {
        int brc;
        switch (args[i].t) {
        case GC_VINT:
            brc = sqlite3_bind_int64(s, (int)i + 1, args[i].i);
            break;
        case GC_VTEXT:
            brc = sqlite3_bind_text(s, (int)i + 1, args[i].s, -1, SQLITE_TRANSIENT);
            break;
        case GC_VBLOB:
            brc = sqlite3_bind_blob64(s, (int)i + 1, args[i].i ? args[i].s : "",
                                      (sqlite3_uint64)args[i].i, SQLITE_TRANSIENT);
            break;
        default:
            brc = sqlite3_bind_null(s, (int)i + 1);
        }
        if (brc != SQLITE_OK) {
            sqlite3_reset(s);
            sqlite3_clear_bindings(s);
            return sq_error(c->db, brc, err, "bind");
        }
    }
    struct sq_cur *cur = gc_malloc(sizeof(*cur));
    cur->c = c;
    cur->stmt = s;
    cur->slot = slot;
    cur->last_rc = 0;
    slot->busy = true;
    *out = cur;
    return 0;
}

static int sq_next(void *p, struct gc_error *err)
{
    struct sq_cur *cur = p;
    if (cur->last_rc == SQLITE_DONE)
        return 0;
    int rc = sqlite3_step(cur->stmt);
    cur->last_rc = rc;
    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE)
        return 0;
    return sq_error(cur->c->db, sqlite3_extended_errcode(cur->c->db), err, "step");
}

static bool sq_col_null(void *p, int col)
{
    struct sq_cur *cur = p;
    return sqlite3_column_type(cur->stmt, col) == SQLITE_NULL;
}

static int64_t sq_col_int(void *p, int col)
{
    struct sq_cur *cur = p;
    return sqlite3_column_int64(cur->stmt, col);
}

static const char *sq_col_text(void *p, int col)
{
    struct sq_cur *cur = p;
    const unsigned char *t = sqlite3_column_text(cur->stmt, col);
    return t ? (const char *)t : "";
}

static const void *sq_col_blob(void *p, int col, size_t *len)
{
    struct sq_cur *cur = p;
    const void *b = sqlite3_column_blob(cur->stmt, col);
    *len = b ? (size_t)sqlite3_column_bytes(cur->stmt, col) : 0;
    return b ? b : "";
}

static int64_t sq_changes(void *conn)
{
    struct sq_conn *c = conn;
    return sqlite3_changes64(c->db);
}

static void sq_finish(void *p)
{
    struct sq_cur *cur = p;
    sqlite3_reset(cur->stmt);
    sqlite3_clear_bindings(cur->stmt);
    cur->slot->busy = false;
    free(cur);
}

const struct gc_store_driver gc_store_sqlite_driver = {
    .name = "sqlite",
    .serialize_writes = true,
    .conn_open = sq_open,
    .conn_close = sq_close,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .query = sq_query,
    .next = sq_next,
    .col_null = sq_col_null,
    .col_int = sq_col_int,
    .col_text = sq_col_text,
    .col_blob = sq_col_blob,
    .changes = sq_changes,
    .finish = sq_finish,
    .single_process = true,
};
