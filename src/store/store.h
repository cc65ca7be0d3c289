/* The store: platform state behind one interface with pluggable backends (driver tables).
 * SQL given to it is portable (SQLite and PostgreSQL): `?` placeholders, BIGINT/TEXT types,
 * no engine-specific functions. Results are read through a row cursor. */
#ifndef GC_STORE_H
#define GC_STORE_H

#include "util/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum gc_vtype { GC_VNULL = 0, GC_VINT, GC_VTEXT, GC_VBLOB };

struct gc_val {
    enum gc_vtype t;
    int64_t i;
    const char *s; /* borrowed; for GC_VBLOB the bytes, i their number */
};

#define GC_VINT_(x) ((struct gc_val){.t = GC_VINT, .i = (int64_t)(x)})
static inline struct gc_val gc_vtxt(const char *s)
{
    struct gc_val v = {.t = s ? GC_VTEXT : GC_VNULL, .s = s};
    return v;
}
#define GC_VTXT(x) gc_vtxt(x)
/* Bytes (a BYTEA column: BLOB in SQLite, bytea in PostgreSQL). */
static inline struct gc_val gc_vblob(const void *p, size_t n)
{
    struct gc_val v = {.t = GC_VBLOB, .i = (int64_t)n, .s = (const char *)p};
    return v;
}
#define GC_VNUL ((struct gc_val){.t = GC_VNULL})
/* GC_ARGS(a, b, c) expands to "array, count" for gc_tx_exec / gc_tx_query. */
#define GC_ARGS(...)                                  \
    (const struct gc_val[]){__VA_ARGS__},             \
        sizeof((const struct gc_val[]){__VA_ARGS__}) / sizeof(struct gc_val)
#define GC_NOARGS NULL, 0

/* A backend. Every method returns 0 or a negative GC_E* code and fills err.
 * Unique-constraint violations must come back as GC_ECONFLICT. */
struct gc_store_driver {
    const char *name;
    bool serialize_writes; /* one writer at a time inside the process (SQLite) */
    int (*conn_open)(const char *target, void **conn, struct gc_error *err);
    void (*conn_close)(void *conn);
    int (*begin)(void *conn, bool write, struct gc_error *err);
    int (*commit)(void *conn, struct gc_error *err);
    void (*rollback)(void *conn);
    /* Prepares (or reuses) and binds; *cur is valid until finish. */
    int (*query)(void *conn, const char *sql, const struct gc_val *args, size_t nargs, void **cur,
                 struct gc_error *err);
    int (*next)(void *cur, struct gc_error *err); /* 1 row, 0 done, <0 error */
    bool (*col_null)(void *cur, int col);
    int64_t (*col_int)(void *cur, int col);
    const char *(*col_text)(void *cur, int col); /* valid until next/finish; never NULL */
    /* bytes of a BYTEA column, *len their number; valid until next/finish; never NULL */
    const void *(*col_blob)(void *cur, int col, size_t *len);
    int64_t (*changes)(void *conn);
    void (*finish)(void *cur);
    /* every writer of the database is in this process (SQLite under the data-dir lock):
     * caches may then be invalidated by this process's own commits */
    bool single_process;
};

extern const struct gc_store_driver gc_store_sqlite_driver;

struct gc_store;
struct gc_tx;
struct gc_rows;

enum gc_tx_mode { GC_TX_READ, GC_TX_WRITE };

/* driver: "sqlite"; target: for sqlite, the database file path. nconns: pool size.
 * Applies pending migrations. */
int gc_store_open(const char *driver, const char *target, int nconns, struct gc_store **out,
                  struct gc_error *err) __attribute__((warn_unused_result));
void gc_store_close(struct gc_store *st);
const char *gc_store_driver_name(const struct gc_store *st);
int gc_store_schema_version(struct gc_store *st, int64_t *version, struct gc_error *err);
/* A counter bumped after every committed write transaction of this process. A cache entry
 * stamped with the generation read before its data was loaded is valid while the counter
 * still has that value. */
uint64_t gc_store_generation(struct gc_store *st);
/* Whether such caching is sound for this store (see single_process). */
bool gc_store_cacheable(const struct gc_store *st);
/* A trivial query, for readiness. */
int gc_store_ping(struct gc_store *st, struct gc_error *err);

/* Takes a connection from the pool and begins a transaction. A write transaction is durable
 * once gc_tx_commit returns 0. */
int gc_tx_begin(struct gc_store *st, enum gc_tx_mode mode, struct gc_tx **out,
                struct gc_error *err) __attribute__((warn_unused_result));
/* Commits and frees tx, whatever the outcome. */
int gc_tx_commit(struct gc_tx *tx, struct gc_error *err);
/* Rolls back and frees tx; accepts NULL. */
void gc_tx_rollback(struct gc_tx *tx);

/* The work of one caller of gc_store_write_grouped, run inside the shared transaction. */
typedef int (*gc_group_fn)(struct gc_tx *tx, void *arg, struct gc_error *err);

/* Group commit: runs fn(tx, arg, err) in a write transaction that it may share with the
 * calls other threads make at the same time, so that one commit (one fsync) makes all of
 * them durable. Each call runs in its own savepoint: when fn fails, only its own changes are
 * rolled back and its error returned to its caller; the others go on. Returns 0 once the
 * shared transaction has committed, fn's error, or the commit's error (then nothing of any
 * call was written). fn runs on the store's writer thread (gc_store_write_async, waited
 * for): it must not take locks the waiting callers hold, nor call these two functions. */
int gc_store_write_grouped(struct gc_store *st, gc_group_fn fn, void *arg,
                           struct gc_error *err);

/* What gc_store_write_async calls once the shared transaction is over: rc is 0 when the
 * call's work is committed, else its error (err). */
typedef void (*gc_group_done_fn)(void *arg, int rc, const struct gc_error *err);

/* The same without waiting: fn runs on the store's writer thread (started on first use),
 * grouped with the other calls queued meanwhile, and done(arg, rc, err) is called on that
 * thread after the commit or the failure. Neither may block on anything but the store.
 * gc_store_close finishes every queued call first. */
void gc_store_write_async(struct gc_store *st, gc_group_fn fn, gc_group_done_fn done,
                          void *arg);

/* Runs a statement; *changes (may be NULL) gets the number of rows changed. */
int gc_tx_exec(struct gc_tx *tx, const char *sql, const struct gc_val *args, size_t nargs,
               int64_t *changes, struct gc_error *err);
/* Runs a query; read rows with gc_rows_next, then gc_rows_free. One open cursor per tx. */
int gc_tx_query(struct gc_tx *tx, const char *sql, const struct gc_val *args, size_t nargs,
                struct gc_rows **out, struct gc_error *err);
int gc_rows_next(struct gc_rows *r, struct gc_error *err);
bool gc_rows_null(struct gc_rows *r, int col);
int64_t gc_rows_int(struct gc_rows *r, int col);
const char *gc_rows_text(struct gc_rows *r, int col); /* "" for NULL */
/* The bytes of a BYTEA column (length 0 for NULL); valid until the next row. */
const void *gc_rows_blob(struct gc_rows *r, int col, size_t *len);
/* NULL for SQL NULL, else a malloc'd copy. */
char *gc_rows_dup(struct gc_rows *r, int col);
void gc_rows_free(struct gc_rows *r);

/* Runs a query expected to return at most one row with one integer column;
 * GC_ENOTFOUND when there is no row. */
int gc_tx_query_int(struct gc_tx *tx, const char *sql, const struct gc_val *args, size_t nargs,
                    int64_t *out, struct gc_error *err);

#endif
