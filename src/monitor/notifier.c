/* Delivery of the notification outbox. One thread; each pass takes the due rows oldest
 * first, sends them, and records the outcome of each in its own transaction. A channel whose
 * receiver failed gets nothing more in that pass, so its notifications arrive in order. */
#include "monitor/notifier.h"

#include "drivers/notify.h"
#include "util/log.h"
#include "util/timeutil.h"

#include <jansson.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#define BACKOFF_MAX_MS 300000

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    bool running, stopping;
    struct gc_store *st;
} N = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static void record(const char *id, bool ok, int64_t attempts, const char *error)
{
    struct gc_error err = {0};
    struct gc_tx *tx;
    if (gc_tx_begin(N.st, GC_TX_WRITE, &tx, &err) != 0)
        return;
    int64_t now = gc_now_ms();
    int64_t wait = attempts >= 18 ? BACKOFF_MAX_MS : 1000LL << attempts;
    if (wait > BACKOFF_MAX_MS)
        wait = BACKOFF_MAX_MS;
    int rc = gc_tx_exec(tx,
                        "UPDATE notify_outbox SET attempts = attempts + 1, delivered_at = ?,"
                        " next_at = ?, last_error = ? WHERE id = ?",
                        GC_ARGS(ok ? GC_VINT_(now) : GC_VNUL, GC_VINT_(now + wait),
                                GC_VTXT(ok ? "" : error), GC_VTXT(id)),
                        NULL, &err);
    if (rc)
        gc_tx_rollback(tx);
    else if (gc_tx_commit(tx, &err) != 0)
        rc = err.code;
    if (rc)
        gc_err("notify", "outbox %s: cannot record the delivery: %s", id, err.msg);
}

static void pass(void)
{
    struct gc_error err = {0};
    struct gc_tx *tx;
    if (gc_tx_begin(N.st, GC_TX_READ, &tx, &err) != 0)
        return;
    struct gc_rows *r = NULL;
    json_t *due = json_array();
    int rc = gc_tx_query(tx,
                         "SELECT o.id, o.body, o.attempts, c.kind, c.url, c.id FROM notify_outbox o"
                         " JOIN notify_channels c ON c.id = o.channel_id WHERE"
                         " o.delivered_at IS NULL ORDER BY o.created_at, o.id LIMIT 200",
                         GC_NOARGS, &r, &err);
    while (!rc && (rc = gc_rows_next(r, &err)) > 0) {
        rc = 0;
        json_array_append_new(due, json_pack("[ssIsss]", gc_rows_text(r, 0), gc_rows_text(r, 1),
                                             (json_int_t)gc_rows_int(r, 2), gc_rows_text(r, 3),
                                             gc_rows_text(r, 4), gc_rows_text(r, 5)));
    }
    gc_rows_free(r);
    /* next_at of each, read apart (one cursor at a time) */
    json_t *next = json_object();
    size_t i;
    json_t *d;
    json_array_foreach(due, i, d) {
        int64_t at = 0;
        if (gc_tx_query_int(tx, "SELECT next_at FROM notify_outbox WHERE id = ?",
                            GC_ARGS(GC_VTXT(json_string_value(json_array_get(d, 0)))), &at,
                            &err) == 0)
            json_object_set_new(next, json_string_value(json_array_get(d, 0)),
                                json_integer(at));
    }
    gc_tx_rollback(tx);
    json_t *blocked = json_object(); /* channels that failed in this pass, or must wait */
    int64_t now = gc_now_ms();
    json_array_foreach(due, i, d) {
        const char *id = json_string_value(json_array_get(d, 0));
        const char *chan = json_string_value(json_array_get(d, 5));
        if (json_object_get(blocked, chan))
            continue;
        if (json_integer_value(json_object_get(next, id)) > now) {
            json_object_set_new(blocked, chan, json_true()); /* keeps the order */
            continue;
        }
        pthread_mutex_lock(&N.lock);
        bool stop = N.stopping;
        pthread_mutex_unlock(&N.lock);
        if (stop)
            break;
        const struct gc_notify_driver *drv =
            gc_notify_driver_for(json_string_value(json_array_get(d, 3)));
        struct gc_error e = {0};
        int s = drv ? drv->send(json_string_value(json_array_get(d, 4)),
                                json_string_value(json_array_get(d, 1)), id, &e)
                    : gc_error_set(&e, GC_EUNSUPPORTED, "", "no driver for this channel kind");
        int64_t attempts = json_integer_value(json_array_get(d, 2));
        if (s) {
            gc_warn("notify", "channel %s: notification %s not delivered (attempt %lld): %s",
                    chan, id, (long long)attempts + 1, e.msg);
            json_object_set_new(blocked, chan, json_true());
        }
        record(id, s == 0, attempts, e.msg);
    }
    json_decref(blocked);
    json_decref(next);
    json_decref(due);
}

static void *loop(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&N.lock);
    while (!N.stopping) {
        pthread_mutex_unlock(&N.lock);
        pass();
        pthread_mutex_lock(&N.lock);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        if (!N.stopping)
            pthread_cond_timedwait(&N.cond, &N.lock, &ts);
    }
    pthread_mutex_unlock(&N.lock);
    return NULL;
}

int gc_notifier_start(struct gc_store *st, struct gc_error *err)
{
    N.st = st;
    N.stopping = false;
    if (pthread_create(&N.thread, NULL, loop, NULL) != 0)
        return gc_error_set(err, GC_EINTERNAL, "", "cannot start the notifier thread");
    N.running = true;
    return 0;
}

void gc_notifier_stop(void)
{
    if (!N.running)
        return;
    pthread_mutex_lock(&N.lock);
    N.stopping = true;
    pthread_cond_broadcast(&N.cond);
    pthread_mutex_unlock(&N.lock);
    pthread_join(N.thread, NULL);
    N.running = false;
}
