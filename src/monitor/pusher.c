/* The supervision pusher thread: build, deliver, prune, report lag. One thread, so batches
 * of a stream are built and sent strictly in order. */
#include "monitor/pusher.h"

#include "core/supervise.h"
#include "monitor/latest.h"
#include "monitor/monitor.h"
#include "supervision/envelope.h"
#include "util/log.h"
#include "util/timeutil.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    bool running, stopping, kicked;
    struct gc_store *st;
    const struct gc_config *cfg;
} P = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

struct answer {
    char text[512];
    size_t n;
};

static size_t keep(char *p, size_t size, size_t n, void *opaque)
{
    struct answer *a = opaque;
    size_t len = size * n, room = sizeof(a->text) - 1 - a->n;
    if (len < room)
        room = len;
    memcpy(a->text + a->n, p, room);
    a->n += room;
    a->text[a->n] = '\0';
    return size * n;
}

/* POSTs one batch: 0 on a 2xx answer. */
static int http_send(const char *url, const char *token, const char *idem_key, const char *body,
                     size_t len, struct gc_error *err)
{
    CURL *h = curl_easy_init();
    if (!h)
        return gc_error_set(err, GC_EINTERNAL, "", "cannot start an HTTP client");
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    char line[4200];
    snprintf(line, sizeof(line), "Idempotency-Key: %s", idem_key);
    hdr = curl_slist_append(hdr, line);
    snprintf(line, sizeof(line), "Authorization: Bearer %s", token);
    hdr = curl_slist_append(hdr, line);
    hdr = curl_slist_append(hdr, "Expect:");
    struct answer a = {.n = 0};
    a.text[0] = '\0';
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 60000L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_USERAGENT, "govcloud-push/1");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, keep);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &a);
    CURLcode c = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    int rc = 0;
    if (c != CURLE_OK) {
        rc = gc_error_set(err, GC_EBUSY, "", "%s", curl_easy_strerror(c));
    } else if (status < 200 || status > 299) {
        /* the problem's detail says why */
        json_t *j = json_loads(a.text, 0, NULL);
        const char *d = j ? json_string_value(json_object_get(j, "detail")) : NULL;
        rc = gc_error_set(err, GC_EBUSY, "", "the receiver answered HTTP %ld%s%.300s", status,
                          d ? ": " : "", d ? d : "");
        json_decref(j);
    }
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    return rc;
}

static bool stopping(void)
{
    pthread_mutex_lock(&P.lock);
    bool s = P.stopping;
    pthread_mutex_unlock(&P.lock);
    return s;
}

static void report(void)
{
    struct gc_error err = {0};
    json_t *stats = NULL;
    if (gc_push_stats(P.st, &stats, &err) != 0) {
        gc_warn("push", "cannot read the outbox: %s", err.msg);
        return;
    }
    size_t n = json_array_size(stats);
    if (n) {
        struct gc_label *labels = calloc(n * 2, sizeof(*labels));
        struct gc_sample *s = calloc(n * 2, sizeof(*s));
        if (labels && s) {
            int64_t now = gc_now_ms();
            for (size_t i = 0; i < n; i++) {
                json_t *e = json_array_get(stats, i);
                labels[2 * i] = (struct gc_label){
                    "dataset", json_string_value(json_object_get(e, "dataset"))};
                labels[2 * i + 1] = (struct gc_label){
                    "receiver", json_string_value(json_object_get(e, "receiver"))};
                s[2 * i] = (struct gc_sample){
                    {"govcloud_supervision_lag_seconds", &labels[2 * i], 2},
                    now,
                    json_real_value(json_object_get(e, "lag_seconds"))};
                s[2 * i + 1] = (struct gc_sample){
                    {"govcloud_supervision_pending_batches", &labels[2 * i], 2},
                    now,
                    (double)json_integer_value(json_object_get(e, "pending"))};
            }
            gc_monitor_emit(s, n * 2);
        }
        free(labels);
        free(s);
    }
    json_decref(stats);
}

static void pass(const struct gc_sup_identity *id, int64_t *last_prune)
{
    struct gc_error err = {0};
    int built = 0, sent = 0;
    if (gc_push_build(P.st, id, &built, &err) != 0)
        gc_warn("push", "cannot build batches: %s", err.msg);
    if (stopping())
        return;
    if (gc_push_deliver(P.st, http_send, stopping, &sent, &err) != 0)
        gc_warn("push", "cannot deliver batches: %s", err.msg);
    int64_t now = gc_now_ms();
    if (now - *last_prune > 60000) {
        *last_prune = now;
        if (gc_push_prune(P.st, now - P.cfg->push_retention * 1000, &err) != 0)
            gc_warn("push", "cannot prune delivered batches: %s", err.msg);
    }
    report();
}

static void *loop(void *arg)
{
    (void)arg;
    const struct gc_sup_identity *id = NULL;
    int64_t last_prune = 0;
    pthread_mutex_lock(&P.lock);
    while (!P.stopping) {
        P.kicked = false;
        pthread_mutex_unlock(&P.lock);
        struct gc_error err = {0};
        if (!id && gc_sup_identity_get(P.cfg->data_dir, P.cfg->supervision_cloud_id, &id,
                                       &err) != 0)
            gc_err("push", "no supervision identity: %s", err.msg);
        if (id)
            pass(id, &last_prune);
        pthread_mutex_lock(&P.lock);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += (time_t)P.cfg->push_interval;
        while (!P.stopping && !P.kicked && pthread_cond_timedwait(&P.cond, &P.lock, &ts) == 0)
            ;
    }
    pthread_mutex_unlock(&P.lock);
    return NULL;
}

int gc_pusher_start(struct gc_store *st, const struct gc_config *cfg, struct gc_error *err)
{
    gc_metric_describe("govcloud_supervision_lag_seconds", GC_METRIC_GAUGE,
                       "Age of the oldest change not yet delivered to a supervision receiver "
                       "(0 when caught up), per receiver and dataset.");
    gc_metric_describe("govcloud_supervision_pending_batches", GC_METRIC_GAUGE,
                       "Batches stored in the push outbox and not yet delivered, per receiver "
                       "and dataset.");
    pthread_mutex_lock(&P.lock);
    P.st = st;
    P.cfg = cfg;
    P.stopping = false;
    int rc = pthread_create(&P.thread, NULL, loop, NULL);
    P.running = rc == 0;
    pthread_mutex_unlock(&P.lock);
    if (rc)
        return gc_error_set(err, GC_EINTERNAL, "", "cannot start the supervision pusher thread");
    return 0;
}

void gc_pusher_kick(void)
{
    pthread_mutex_lock(&P.lock);
    P.kicked = true;
    pthread_cond_broadcast(&P.cond);
    pthread_mutex_unlock(&P.lock);
}

void gc_pusher_stop(void)
{
    pthread_mutex_lock(&P.lock);
    if (!P.running) {
        pthread_mutex_unlock(&P.lock);
        return;
    }
    P.stopping = true;
    pthread_cond_broadcast(&P.cond);
    pthread_mutex_unlock(&P.lock);
    pthread_join(P.thread, NULL);
    P.running = false;
}
