/* The generic store: connection pool, transactions, cursors and migrations over a driver. */
#include "store/store.h"

#include "store/store_int.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/timeutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct gc_store {
    const struct gc_store_driver *drv;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_mutex_t write_lock;
    void **free_conns; /* stack of idle connections */
    _Atomic uint64_t generation;
    int nfree;
    int nconns;
    /* group commit (gc_store_write_async, gc_store_write_grouped): a writer thread and its
     * queue (under group_lock) */
    pthread_mutex_t group_lock;
    struct group_call *async_head, **async_tail;
    pthread_cond_t async_cond;
    pthread_t writer;
    bool writer_started, writer_stop;
};

struct group_call {
    gc_group_fn fn;
    gc_group_done_fn on_done;
    void *arg;
    int rc;
    struct gc_error err;
    struct group_call *next;
};

struct gc_tx {
    struct gc_store *st;
    void *conn;
    bool write;
    struct gc_rows *open_rows;
};

struct gc_rows {
    struct gc_tx *tx;
    void *cur;
};

static const struct gc_store_driver *find_driver(const char *name)
{
    if (strcmp(name, "sqlite") == 0)
        return &gc_store_sqlite_driver;
    return NULL;
}

static int migrate(struct gc_store *st, struct gc_error *err);

int gc_store_open(const char *driver, const char *target, int nconns, struct gc_store **out,
                  struct gc_error *err)
{
    const struct gc_store_driver *drv = find_driver(driver);
    if (!drv)
        return gc_error_set(err, GC_EINVAL, "driver", "unknown store driver '%s'", driver);
    if (nconns < 1)
        nconns = 1;
    struct gc_store *st = gc_calloc(1, sizeof(*st));
    st->drv = drv;
    pthread_mutex_init(&st->lock, NULL);
    pthread_cond_init(&st->cond, NULL);
    pthread_mutex_init(&st->write_lock, NULL);
    pthread_mutex_init(&st->group_lock, NULL);
    st->async_tail = &st->async_head;
    pthread_cond_init(&st->async_cond, NULL);
    st->free_conns = gc_calloc((size_t)nconns, sizeof(void *));
    for (int i = 0; i < nconns; i++) {
        void *c = NULL;
        int rc = drv->conn_open(target, &c, err);
        if (rc) {
            gc_store_close(st);
            return rc;
        }
        st->free_conns[st->nfree++] = c;
        st->nconns++;
    }
    int rc = migrate(st, err);
    if (rc) {
        gc_store_close(st);
        return rc;
    }
    *out = st;
    return 0;
}

static void writer_stop(struct gc_store *st);

void gc_store_close(struct gc_store *st)
{
    if (!st)
        return;
    writer_stop(st);
    pthread_mutex_lock(&st->lock);
    while (st->nfree < st->nconns)
        pthread_cond_wait(&st->cond, &st->lock);
    pthread_mutex_unlock(&st->lock);
    for (int i = 0; i < st->nfree; i++)
        st->drv->conn_close(st->free_conns[i]);
    free(st->free_conns);
    pthread_mutex_destroy(&st->lock);
    pthread_cond_destroy(&st->cond);
    pthread_mutex_destroy(&st->write_lock);
    pthread_mutex_destroy(&st->group_lock);
    pthread_cond_destroy(&st->async_cond);
    free(st);
}

const char *gc_store_driver_name(const struct gc_store *st)
{
    return st->drv->name;
}

int gc_tx_begin(struct gc_store *st, enum gc_tx_mode mode, struct gc_tx **out,
                struct gc_error *err)
{
    bool write = mode == GC_TX_WRITE;
    if (write && st->drv->serialize_writes)
        pthread_mutex_lock(&st->write_lock);
    pthread_mutex_lock(&st->lock);
    while (st->nfree == 0)
        pthread_cond_wait(&st->cond, &st->lock);
    void *conn = st->free_conns[--st->nfree];
    pthread_mutex_unlock(&st->lock);

    int rc = st->drv->begin(conn, write, err);
    if (rc) {
        pthread_mutex_lock(&st->lock);
        st->free_conns[st->nfree++] = conn;
        pthread_cond_signal(&st->cond);
        pthread_mutex_unlock(&st->lock);
        if (write && st->drv->serialize_writes)
            pthread_mutex_unlock(&st->write_lock);
        return rc;
    }
    struct gc_tx *tx = gc_calloc(1, sizeof(*tx));
    tx->st = st;
    tx->conn = conn;
    tx->write = write;
    *out = tx;
    return 0;
}

static void tx_release(struct gc_tx *tx)
{
    struct gc_store *st = tx->st;
    if (tx->open_rows)
        GC_BUG("transaction ended with an open cursor");
    pthread_mutex_lock(&st->lock);
    st->free_conns[st->nfree++] = tx->conn;
    pthread_cond_signal(&st->cond);
    pthread_mutex_unlock(&st->lock);
    if (tx->write && st->drv->serialize_writes)
        pthread_mutex_unlock(&st->write_lock);
    free(tx);
}

int gc_tx_commit(struct gc_tx *tx, struct gc_error *err)
{
    struct gc_store *st = tx->st;
    bool write = tx->write;
    int rc = st->drv->commit(tx->conn, err);
    if (rc)
        st->drv->rollback(tx->conn);
    /* bumped before the write lock is released: the next writer's data cannot be cached
     * under this generation */
    if (write)
        atomic_fetch_add(&st->generation, 1);
    tx_release(tx);
    return rc;
}

/* ---- group commit ---- */

/* At most this many calls share one transaction, so that none waits behind too many. */
#define GROUP_MAX 16

/* Detaches up to GROUP_MAX calls from the front of a queue (group_lock held). */
static struct group_call *take_group(struct group_call **head, struct group_call ***tail)
{
    struct group_call *calls = *head, *last = calls;
    for (int n = 1; n < GROUP_MAX && last->next; n++)
        last = last->next;
    *head = last->next;
    if (!*head)
        *tail = head;
    last->next = NULL;
    return calls;
}

/* Runs the calls of one group in one transaction, each in a savepoint. */
static void run_group(struct gc_store *st, struct group_call *calls)
{
    struct gc_tx *tx = NULL;
    struct gc_error err = {0};
    int rc = gc_tx_begin(st, GC_TX_WRITE, &tx, &err);
    for (struct group_call *c = calls; c && !rc; c = c->next) {
        rc = gc_tx_exec(tx, "SAVEPOINT gc_group", GC_NOARGS, NULL, &err);
        if (rc)
            break;
        c->rc = c->fn(tx, c->arg, &c->err);
        if (c->rc)
            rc = gc_tx_exec(tx, "ROLLBACK TO SAVEPOINT gc_group", GC_NOARGS, NULL, &err);
        if (!rc)
            rc = gc_tx_exec(tx, "RELEASE SAVEPOINT gc_group", GC_NOARGS, NULL, &err);
    }
    if (!rc)
        rc = gc_tx_commit(tx, &err);
    else if (tx)
        gc_tx_rollback(tx);
    if (!rc)
        return;
    /* the transaction is lost: every call that had succeeded fails with its error */
    for (struct group_call *c = calls; c; c = c->next) {
        if (c->rc == 0) {
            c->rc = rc;
            c->err = err;
        }
    }
}

static void *writer_main(void *arg)
{
    struct gc_store *st = arg;
    pthread_mutex_lock(&st->group_lock);
    for (;;) {
        while (!st->async_head && !st->writer_stop)
            pthread_cond_wait(&st->async_cond, &st->group_lock);
        if (!st->async_head)
            break; /* stopping, and nothing is left */
        struct group_call *calls = take_group(&st->async_head, &st->async_tail);
        pthread_mutex_unlock(&st->group_lock);
        run_group(st, calls);
        for (struct group_call *c = calls, *next; c; c = next) {
            next = c->next;
            c->on_done(c->arg, c->rc, &c->err);
            free(c);
        }
        pthread_mutex_lock(&st->group_lock);
    }
    pthread_mutex_unlock(&st->group_lock);
    return NULL;
}

void gc_store_write_async(struct gc_store *st, gc_group_fn fn, gc_group_done_fn done,
                          void *arg)
{
    struct group_call *c = gc_calloc(1, sizeof(*c));
    c->fn = fn;
    c->on_done = done;
    c->arg = arg;
    pthread_mutex_lock(&st->group_lock);
    if (!st->writer_started) {
        if (pthread_create(&st->writer, NULL, writer_main, st) != 0)
            GC_BUG("cannot start the store's writer thread");
        st->writer_started = true;
    }
    *st->async_tail = c;
    st->async_tail = &c->next;
    pthread_cond_signal(&st->async_cond);
    pthread_mutex_unlock(&st->group_lock);
}

/* gc_store_write_grouped: the asynchronous call, waited for. */
struct waited_call {
    gc_group_fn fn;
    void *arg;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
    int rc;
    struct gc_error err;
};

static int waited_fn(struct gc_tx *tx, void *arg, struct gc_error *err)
{
    struct waited_call *w = arg;
    return w->fn(tx, w->arg, err);
}

static void waited_done(void *arg, int rc, const struct gc_error *err)
{
    struct waited_call *w = arg;
    pthread_mutex_lock(&w->lock);
    w->rc = rc;
    if (rc)
        w->err = *err;
    w->done = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

int gc_store_write_grouped(struct gc_store *st, gc_group_fn fn, void *arg,
                           struct gc_error *err)
{
    struct waited_call w = {.fn = fn, .arg = arg};
    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.cond, NULL);
    gc_store_write_async(st, waited_fn, waited_done, &w);
    pthread_mutex_lock(&w.lock);
    while (!w.done)
        pthread_cond_wait(&w.cond, &w.lock);
    pthread_mutex_unlock(&w.lock);
    pthread_mutex_destroy(&w.lock);
    pthread_cond_destroy(&w.cond);
    if (w.rc && err)
        *err = w.err;
    return w.rc;
}

static void writer_stop(struct gc_store *st)
{
    pthread_mutex_lock(&st->group_lock);
    bool started = st->writer_started;
    st->writer_stop = true;
    pthread_cond_signal(&st->async_cond);
    pthread_mutex_unlock(&st->group_lock);
    if (started)
        pthread_join(st->writer, NULL);
}

uint64_t gc_store_generation(struct gc_store *st)
{
    return atomic_load(&st->generation);
}

bool gc_store_cacheable(const struct gc_store *st)
{
    return st->drv->single_process;
}

void gc_tx_rollback(struct gc_tx *tx)
{
    if (!tx)
        return;
    if (tx->open_rows)
        gc_rows_free(tx->open_rows);
    tx->st->drv->rollback(tx->conn);
    tx_release(tx);
}

int gc_tx_query(struct gc_tx *tx, const char *sql, const struct gc_val *args, size_t nargs,
                struct gc_rows **out, struct gc_error *err)
{
    if (tx->open_rows)
        GC_BUG("second cursor opened on one transaction: %s", sql);
    void *cur = NULL;
    int rc = tx->st->drv->query(tx->conn, sql, args, nargs, &cur, err);
    if (rc)
        return rc;
    struct gc_rows *r = gc_malloc(sizeof(*r));
    r->tx = tx;
    r->cur = cur;
    tx->open_rows = r;
    *out = r;
    return 0;
}

int gc_rows_next(struct gc_rows *r, struct gc_error *err)
{
    return r->tx->st->drv->next(r->cur, err);
}

bool gc_rows_null(struct gc_rows *r, int col)
{
    return r->tx->st->drv->col_null(r->cur, col);
}

int64_t gc_rows_int(struct gc_rows *r, int col)
{
    return r->tx->st->drv->col_int(r->cur, col);
}

const char *gc_rows_text(struct gc_rows *r, int col)
{
    return r->tx->st->drv->col_text(r->cur, col);
}

const void *gc_rows_blob(struct gc_rows *r, int col, size_t *len)
{
    return r->tx->st->drv->col_blob(r->cur, col, len);
}

char *gc_rows_dup(struct gc_rows *r, int col)
{
    if (gc_rows_null(r, col))
        return NULL;
    return gc_strdup(gc_rows_text(r, col));
}

void gc_rows_free(struct gc_rows *r)
{
    if (!r)
        return;
    r->tx->st->drv->finish(r->cur);
    r->tx->open_rows = NULL;
    free(r);
}

int gc_tx_exec(struct gc_tx *tx, const char *sql, const struct gc_val *args, size_t nargs,
               int64_t *changes, struct gc_error *err)
{
    struct gc_rows *r;
    int rc = gc_tx_query(tx, sql, args, nargs, &r, err);
    if (rc)
        return rc;
    while ((rc = gc_rows_next(r, err)) > 0)
        ;
    if (rc == 0 && changes)
        *changes = tx->st->drv->changes(tx->conn);
    gc_rows_free(r);
    return rc < 0 ? rc : 0;
}

int gc_tx_query_int(struct gc_tx *tx, const char *sql, const struct gc_val *args, size_t nargs,
                    int64_t *out, struct gc_error *err)
{
    struct gc_rows *r;
    int rc = gc_tx_query(tx, sql, args, nargs, &r, err);
    if (rc)
        return rc;
    rc = gc_rows_next(r, err);
    if (rc > 0) {
        *out = gc_rows_int(r, 0);
        rc = 0;
    } else if (rc == 0) {
        rc = GC_ENOTFOUND;
        gc_error_set(err, GC_ENOTFOUND, "", "no row");
    }
    gc_rows_free(r);
    return rc;
}

int gc_store_ping(struct gc_store *st, struct gc_error *err)
{
    struct gc_tx *tx;
    int rc = gc_tx_begin(st, GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    int64_t v;
    rc = gc_tx_query_int(tx, "SELECT 1", GC_NOARGS, &v, err);
    gc_tx_rollback(tx);
    return rc;
}

int gc_store_schema_version(struct gc_store *st, int64_t *version, struct gc_error *err)
{
    struct gc_tx *tx;
    int rc = gc_tx_begin(st, GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    rc = gc_tx_query_int(tx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                         GC_NOARGS, version, err);
    gc_tx_rollback(tx);
    return rc;
}

static int migrate(struct gc_store *st, struct gc_error *err)
{
    struct gc_tx *tx;
    int rc = gc_tx_begin(st, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    rc = gc_tx_exec(tx,
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, "
                    "name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
                    GC_NOARGS, NULL, err);
    int64_t have = 0;
    if (!rc)
        rc = gc_tx_query_int(tx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                             GC_NOARGS, &have, err);
    int known = gc_nmigrations ? gc_migrations[gc_nmigrations - 1].version : 0;
    if (!rc && have > known)
        rc = gc_error_set(err, GC_ESTORE, "data_dir",
                          "the database has schema version %lld, newer than this govcloudd "
                          "knows (%d): run the newer version, or restore a backup made before "
                          "the upgrade",
                          (long long)have, known);
    for (size_t i = 0; !rc && i < gc_nmigrations; i++) {
        const struct gc_migration *m = &gc_migrations[i];
        /* by presence, not by the highest number: migrations of work developed in parallel
         * may land in any order */
        int64_t done = 0;
        rc = gc_tx_query_int(tx, "SELECT COUNT(*) FROM schema_migrations WHERE version = ?",
                             GC_ARGS(GC_VINT_(m->version)), &done, err);
        if (rc || done)
            continue;
        for (const char *const *s = m->statements; !rc && *s; s++)
            rc = gc_tx_exec(tx, *s, GC_NOARGS, NULL, err);
        if (!rc)
            rc = gc_tx_exec(tx,
                            "INSERT INTO schema_migrations (version, name, applied_at) "
                            "VALUES (?, ?, ?)",
                            GC_ARGS(GC_VINT_(m->version), GC_VTXT(m->name),
                                    GC_VINT_(gc_now_ms())),
                            NULL, err);
        if (!rc)
            gc_info("store", "applied schema migration %d (%s)", m->version, m->name);
    }
    if (rc) {
        gc_tx_rollback(tx);
        return rc;
    }
    return gc_tx_commit(tx, err);
}
