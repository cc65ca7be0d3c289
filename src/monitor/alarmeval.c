/* The alarm evaluator: the third sink of the monitoring fan-out (beside the current-value
 * table and the time-series store). Collector threads hand it their samples; it keeps, for
 * every (metric rule, matching series), the last value and since when the rule's condition
 * has held. A thread of its own, every [alarm] evaluation_interval, turns conditions that
 * held for the rule's `for` into firing alarms, and conditions that stopped holding — or
 * series that stopped reporting for [alarm] stale_after — into resolved ones, in one
 * transaction (core/alarm.c writes the alarms and their notifications). The same thread
 * computes the error-budget burn rate of the platform's availability and emits it as a
 * series, which the built-in availability-budget-burn rule watches.
 *
 * What is pending (held, not yet for long enough) lives in memory only: after a restart a
 * condition must hold for its `for` again before a new alarm fires. Firing alarms are in the
 * store, and are taken up again at start. */
#include "monitor/alarmeval.h"

#include "core/core.h"
#include "core/validate.h"
#include "monitor/latest.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/timeutil.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NBUCKETS 65536
#define MAX_MATCH 8

struct rule {
    char id[GC_ID_LEN + 1], name[65], metric[128], severity[16], dept[GC_ID_LEN + 1];
    char *summary;
    struct {
        char name[64], value[256];
        bool neg;
    } m[MAX_MATCH];
    int nm, op;
    bool rate;
    double threshold;
    int64_t for_ms;
};

struct state {
    struct state *next;
    uint64_t hash;
    char rule_id[GC_ID_LEN + 1];
    json_t *labels;        /* the series' labels */
    double value, raw;
    int64_t raw_t, seen_ms, pending_since;
    bool have_raw, have_value, cond, firing;
    char *key;             /* the series key */
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    bool running, stopping;
    struct gc_store *st;
    int64_t interval_ms, stale_ms, burn_ms;
    double target;
    uint64_t gen;
    struct rule *rules;
    size_t nrules;
    struct state **buckets;
    size_t nstates;
    int64_t fired, resolved;
} E = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static uint64_t hash2(const char *a, const char *b)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = a; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    h = (h ^ 0x1f) * 1099511628211ull;
    for (const char *p = b; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return h;
}

static struct state *find(const char *rule_id, const char *key, uint64_t h)
{
    for (struct state *s = E.buckets[h % NBUCKETS]; s; s = s->next)
        if (s->hash == h && strcmp(s->rule_id, rule_id) == 0 && strcmp(s->key, key) == 0)
            return s;
    return NULL;
}

static struct state *add(const char *rule_id, const char *key, uint64_t h, json_t *labels)
{
    struct state *s = gc_calloc(1, sizeof(*s));
    s->hash = h;
    snprintf(s->rule_id, sizeof(s->rule_id), "%s", rule_id);
    s->key = gc_strdup(key);
    s->labels = labels;
    s->next = E.buckets[h % NBUCKETS];
    E.buckets[h % NBUCKETS] = s;
    E.nstates++;
    return s;
}

static void state_free(struct state *s)
{
    json_decref(s->labels);
    free(s->key);
    free(s);
}

static const struct rule *rule_by_id(const char *id)
{
    for (size_t i = 0; i < E.nrules; i++)
        if (strcmp(E.rules[i].id, id) == 0)
            return &E.rules[i];
    return NULL;
}

static void rules_free(struct rule *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(r[i].summary);
    free(r);
}

static bool rule_matches(const struct rule *r, const struct gc_sample *s)
{
    if (strcmp(r->metric, s->series.metric) != 0)
        return false;
    for (int i = 0; i < r->nm; i++) {
        const char *v = "";
        for (int k = 0; k < s->series.nlabels; k++)
            if (strcmp(s->series.labels[k].name, r->m[i].name) == 0)
                v = s->series.labels[k].value;
        if ((strcmp(v, r->m[i].value) == 0) == r->m[i].neg)
            return false;
    }
    if (r->dept[0]) { /* a department's rule sees its department's series only */
        for (int k = 0; k < s->series.nlabels; k++)
            if (strcmp(s->series.labels[k].name, "department_id") == 0)
                return strcmp(s->series.labels[k].value, r->dept) == 0;
        return false;
    }
    return true;
}

static void reload_rules(void);

static void sink_append(void *opaque, const struct gc_sample *smp, size_t n)
{
    (void)opaque;
    int64_t now = gc_now_ms();
    pthread_mutex_lock(&E.lock);
    bool changed = E.running && E.gen != gc_alarm_rules_generation();
    pthread_mutex_unlock(&E.lock);
    if (changed)
        reload_rules();
    pthread_mutex_lock(&E.lock);
    for (size_t i = 0; i < n && E.nrules; i++) {
        const struct gc_sample *s = &smp[i];
        struct gc_buf key;
        bool have_key = false;
        for (size_t ri = 0; ri < E.nrules; ri++) {
            const struct rule *r = &E.rules[ri];
            if (!rule_matches(r, s))
                continue;
            if (!have_key) {
                gc_buf_init(&key, 8192);
                if (gc_series_key(&s->series, &key) != 0) {
                    gc_buf_release(&key);
                    break;
                }
                have_key = true;
            }
            uint64_t h = hash2(r->id, gc_buf_str(&key));
            struct state *st = find(r->id, gc_buf_str(&key), h);
            if (!st) {
                json_t *labels = json_object();
                for (int k = 0; k < s->series.nlabels; k++)
                    json_object_set_new(labels, s->series.labels[k].name,
                                        json_string(s->series.labels[k].value));
                st = add(r->id, gc_buf_str(&key), h, labels);
            }
            st->seen_ms = now;
            double v = s->value;
            if (r->rate) {
                bool first = !st->have_raw || s->t_ms <= st->raw_t;
                double prev = st->raw;
                int64_t dt = s->t_ms - st->raw_t;
                if (!st->have_raw || s->t_ms > st->raw_t) {
                    st->raw = s->value;
                    st->raw_t = s->t_ms;
                    st->have_raw = true;
                }
                if (first)
                    continue; /* a rate needs two samples */
                /* a counter that went down was reset: it counted from 0 since */
                v = (s->value >= prev ? s->value - prev : s->value) / ((double)dt / 1000.0);
            }
            if (isnan(v))
                continue;
            st->value = v;
            st->have_value = true;
            st->cond = gc_alarm_op_holds(r->op, v, r->threshold);
            if (!st->cond)
                st->pending_since = 0;
            else if (!st->pending_since)
                st->pending_since = s->t_ms > 0 ? s->t_ms : now;
        }
        if (have_key)
            gc_buf_release(&key);
    }
    pthread_mutex_unlock(&E.lock);
}

static const struct gc_sample_sink sink = {"alarms", sink_append, NULL};

const struct gc_sample_sink *gc_alarmeval_sink(void)
{
    return &sink;
}

static pthread_mutex_t reload_lock = PTHREAD_MUTEX_INITIALIZER;

/* Reloads the rules when they changed; drops the states of rules that are gone. Called by
 * the evaluator each round, and by a collector thread that finds them changed, so that the
 * first sample after a change already meets the new rule. */
static void reload_rules(void)
{
    pthread_mutex_lock(&reload_lock);
    uint64_t gen = gc_alarm_rules_generation();
    pthread_mutex_lock(&E.lock);
    bool same = gen == E.gen || !E.st;
    pthread_mutex_unlock(&E.lock);
    if (same) {
        pthread_mutex_unlock(&reload_lock);
        return;
    }
    struct gc_error err = {0};
    json_t *a = NULL;
    if (gc_alarm_rules_snapshot(E.st, &a, &err) != 0) {
        gc_warn("alarms", "cannot read the alarm rules: %s", err.msg);
        pthread_mutex_unlock(&reload_lock);
        return;
    }
    size_t n = json_array_size(a);
    struct rule *r = gc_calloc(n ? n : 1, sizeof(*r));
    size_t i;
    json_t *o;
    json_array_foreach(a, i, o) {
        struct rule *x = &r[i];
        snprintf(x->id, sizeof(x->id), "%s", gc_json_str(o, "id"));
        snprintf(x->name, sizeof(x->name), "%s", gc_json_str(o, "name"));
        snprintf(x->metric, sizeof(x->metric), "%s", gc_json_str(o, "metric"));
        snprintf(x->severity, sizeof(x->severity), "%s", gc_json_str(o, "severity"));
        snprintf(x->dept, sizeof(x->dept), "%s", gc_json_str(o, "department_id"));
        x->summary = gc_strdup(gc_json_str(o, "summary"));
        x->op = gc_alarm_op_parse(gc_json_str(o, "op"));
        x->rate = strcmp(gc_json_str(o, "func"), "rate") == 0;
        x->threshold = json_number_value(json_object_get(o, "threshold"));
        x->for_ms = json_integer_value(json_object_get(o, "for_ms"));
        size_t k;
        json_t *m;
        json_array_foreach(json_object_get(o, "matchers"), k, m) {
            if (k >= MAX_MATCH)
                break;
            snprintf(x->m[k].name, sizeof(x->m[k].name), "%s",
                     json_string_value(json_array_get(m, 0)));
            x->m[k].neg = strcmp(json_string_value(json_array_get(m, 1)), "!=") == 0;
            snprintf(x->m[k].value, sizeof(x->m[k].value), "%s",
                     json_string_value(json_array_get(m, 2)));
            x->nm = (int)k + 1;
        }
    }
    json_decref(a);
    pthread_mutex_lock(&E.lock);
    struct rule *old = E.rules;
    size_t nold = E.nrules;
    E.rules = r;
    E.nrules = n;
    E.gen = gen;
    for (size_t b = 0; b < NBUCKETS; b++)
        for (struct state **pp = &E.buckets[b]; *pp;) {
            struct state *s = *pp;
            const struct rule *x = rule_by_id(s->rule_id);
            if (x) {
                pp = &s->next;
                continue;
            }
            *pp = s->next;
            state_free(s);
            E.nstates--;
        }
    pthread_mutex_unlock(&E.lock);
    pthread_mutex_unlock(&reload_lock);
    rules_free(old, nold);
}

struct action {
    bool fire;
    char rule_id[GC_ID_LEN + 1], name[65], severity[16], dept[GC_ID_LEN + 1];
    char *summary, *key, reason[400];
    json_t *labels;
    double value, threshold;
    int64_t started_at;
};

static void actions_free(struct action *a, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(a[i].summary);
        free(a[i].key);
        json_decref(a[i].labels);
    }
    free(a);
}

/* One round: what fires, what resolves, written in one transaction. */
static void evaluate(int64_t now)
{
    struct action *acts = NULL;
    size_t n = 0, cap = 0;
    pthread_mutex_lock(&E.lock);
    for (size_t b = 0; b < NBUCKETS; b++)
        for (struct state **pp = &E.buckets[b]; *pp;) {
            struct state *s = *pp;
            const struct rule *r = rule_by_id(s->rule_id);
            if (!r) {
                *pp = s->next;
                state_free(s);
                E.nstates--;
                continue;
            }
            bool stale = now - s->seen_ms > E.stale_ms;
            bool was_firing = s->firing;
            bool fire = !s->firing && !stale && s->cond && s->pending_since &&
                        now - s->pending_since >= r->for_ms;
            bool resolve = s->firing && (stale || (s->have_value && !s->cond));
            if (fire || resolve) {
                if (n == cap) {
                    cap = cap ? cap * 2 : 16;
                    acts = gc_realloc(acts, cap * sizeof(*acts));
                }
                struct action *a = &acts[n++];
                memset(a, 0, sizeof(*a));
                a->fire = fire;
                snprintf(a->rule_id, sizeof(a->rule_id), "%s", r->id);
                snprintf(a->name, sizeof(a->name), "%s", r->name);
                snprintf(a->severity, sizeof(a->severity), "%s", r->severity);
                a->summary = gc_strdup(r->summary);
                a->key = gc_strdup(s->key);
                a->value = s->value;
                a->threshold = r->threshold;
                a->started_at = s->pending_since ? s->pending_since : now;
                if (fire) {
                    a->labels = json_deep_copy(s->labels);
                    json_object_set_new(a->labels, "alertname", json_string(r->name));
                    json_object_set_new(a->labels, "severity", json_string(r->severity));
                    const char *d = json_string_value(json_object_get(s->labels,
                                                                      "department_id"));
                    snprintf(a->dept, sizeof(a->dept), "%s", d ? d : "");
                    if (!gc_monitor_reason(s->key, a->reason, sizeof(a->reason)))
                        a->reason[0] = '\0';
                } else if (stale) {
                    snprintf(a->reason, sizeof(a->reason),
                             "the series has not been reported for %lld s",
                             (long long)((now - s->seen_ms) / 1000));
                } else {
                    snprintf(a->reason, sizeof(a->reason),
                             "the condition no longer holds (value %.6g)", s->value);
                }
                s->firing = fire;
            }
            /* forgotten once it reports no more and has nothing open: a firing one is
             * resolved this round and forgotten the next, so that a failed write can still
             * put it back */
            if (stale && !was_firing) {
                *pp = s->next;
                state_free(s);
                E.nstates--;
                continue;
            }
            pp = &s->next;
        }
    pthread_mutex_unlock(&E.lock);

    struct gc_error err = {0};
    struct gc_tx *tx;
    int rc = gc_tx_begin(E.st, GC_TX_WRITE, &tx, &err);
    for (size_t i = 0; !rc && i < n; i++) {
        struct action *a = &acts[i];
        if (a->fire) {
            struct gc_alarm_fire f = {.rule_id = a->rule_id,
                                      .rule_name = a->name,
                                      .severity = a->severity,
                                      .summary = a->summary,
                                      .series = a->key,
                                      .labels = a->labels,
                                      .value = a->value,
                                      .threshold = a->threshold,
                                      .has_threshold = true,
                                      .reason = a->reason,
                                      .dept = a->dept,
                                      .now = now,
                                      .started_at = a->started_at};
            rc = gc_alarm_fire(tx, &f, &err);
        } else {
            rc = gc_alarm_resolve(tx, a->rule_id, a->key, a->reason, now, &err);
        }
    }
    int late = 0;
    if (!rc)
        rc = gc_alarm_unsilence(tx, now, &late, &err);
    if (!rc)
        rc = gc_tx_commit(tx, &err);
    else if (tx)
        gc_tx_rollback(tx);
    if (rc) {
        /* nothing was written: the next round tries again */
        gc_warn("alarms", "cannot record %zu alarm changes: %s", n, err.msg);
        pthread_mutex_lock(&E.lock);
        for (size_t i = 0; i < n; i++) {
            uint64_t h = hash2(acts[i].rule_id, acts[i].key);
            struct state *s = find(acts[i].rule_id, acts[i].key, h);
            if (s)
                s->firing = !acts[i].fire;
        }
        pthread_mutex_unlock(&E.lock);
    } else {
        for (size_t i = 0; i < n; i++) {
            if (acts[i].fire)
                E.fired++;
            else
                E.resolved++;
            gc_info("alarms", "%s %s on %s", acts[i].name,
                    acts[i].fire ? "fires" : "resolved", acts[i].key);
        }
    }
    actions_free(acts, n);
}

/* The burn rate of the platform's error budget over the last hour and six hours: the share
 * of service time lost, over the share the target allows (1 spends the budget exactly over
 * the period; 14.4 over one hour spends 2 % of a 30-day budget). */
static void burn(int64_t now)
{
    static const struct {
        const char *name;
        int64_t ms;
    } windows[] = {{"1h", 3600000}, {"6h", 6 * 3600000}};
    struct gc_sample smp[2];
    size_t n = 0;
    struct gc_label labels[2][2];
    for (size_t i = 0; i < 2; i++) {
        double pct;
        struct gc_error err = {0};
        if (gc_availability_percent(E.st, now - windows[i].ms, now, &pct, &err) != 0) {
            gc_warn("alarms", "cannot compute the availability: %s", err.msg);
            continue;
        }
        labels[n][0] = (struct gc_label){"scope", "platform"};
        labels[n][1] = (struct gc_label){"window", windows[i].name};
        smp[n] = (struct gc_sample){{"govcloud_availability_burn_rate", labels[n], 2}, now,
                                    (100.0 - pct) / (100.0 - E.target)};
        n++;
    }
    gc_monitor_emit(smp, n);
}

/* Takes up the alarms that were firing when the daemon stopped. */
static void take_up(void)
{
    struct gc_error err = {0};
    json_t *a = NULL;
    if (gc_alarm_open_metric(E.st, &a, &err) != 0) {
        gc_warn("alarms", "cannot read the open alarms: %s", err.msg);
        return;
    }
    int64_t now = gc_now_ms();
    size_t i;
    json_t *o;
    pthread_mutex_lock(&E.lock);
    json_array_foreach(a, i, o) {
        const char *rid = gc_json_str(o, "rule_id"), *key = gc_json_str(o, "series");
        uint64_t h = hash2(rid, key);
        if (find(rid, key, h))
            continue;
        json_t *labels = json_loads(gc_json_str(o, "labels"), 0, NULL);
        json_object_del(labels, "alertname");
        json_object_del(labels, "severity");
        struct state *s = add(rid, key, h, labels ? labels : json_object());
        s->firing = true;
        s->cond = true;
        s->seen_ms = now; /* it has until stale_after to report again */
        s->pending_since = json_integer_value(json_object_get(o, "started_at"));
    }
    pthread_mutex_unlock(&E.lock);
    json_decref(a);
}

static void *loop(void *arg)
{
    (void)arg;
    int64_t next_burn = 0;
    pthread_mutex_lock(&E.lock);
    while (!E.stopping) {
        pthread_mutex_unlock(&E.lock);
        reload_rules();
        int64_t now = gc_now_ms();
        if (E.burn_ms > 0 && now >= next_burn) {
            burn(now);
            next_burn = now + E.burn_ms;
        }
        evaluate(now);
        pthread_mutex_lock(&E.lock);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = (int64_t)ts.tv_nsec + (E.interval_ms % 1000) * 1000000;
        ts.tv_sec += (time_t)(E.interval_ms / 1000 + ns / 1000000000);
        ts.tv_nsec = (long)(ns % 1000000000);
        while (!E.stopping && pthread_cond_timedwait(&E.cond, &E.lock, &ts) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&E.lock);
    return NULL;
}

int gc_alarmeval_start(struct gc_store *st, const struct gc_config *cfg, struct gc_error *err)
{
    E.st = st;
    E.interval_ms = cfg->alarm_interval * 1000;
    E.stale_ms = cfg->alarm_stale_after * 1000;
    E.burn_ms = cfg->alarm_burn_interval * 1000;
    char *end = NULL;
    E.target = strtod(cfg->alarm_availability_target, &end);
    if (!end || *end || !(E.target > 0 && E.target < 100))
        return gc_error_set(err, GC_EINVAL, "availability_target",
                            "availability_target is a percentage above 0 and below 100");
    E.buckets = gc_calloc(NBUCKETS, sizeof(*E.buckets));
    E.gen = 0;
    gc_metric_describe("govcloud_availability_burn_rate", GC_METRIC_GAUGE,
                       "How fast the error budget of the availability target is spent over "
                       "the window: 1 spends it exactly over the period.");
    reload_rules();
    take_up();
    E.stopping = false;
    if (pthread_create(&E.thread, NULL, loop, NULL) != 0)
        return gc_error_set(err, GC_EINTERNAL, "", "cannot start the alarm evaluator");
    pthread_mutex_lock(&E.lock);
    E.running = true;
    pthread_mutex_unlock(&E.lock);
    return 0;
}

void gc_alarmeval_stop(void)
{
    if (!E.running)
        return;
    pthread_mutex_lock(&E.lock);
    E.stopping = true;
    pthread_cond_broadcast(&E.cond);
    pthread_mutex_unlock(&E.lock);
    pthread_join(E.thread, NULL);
    pthread_mutex_lock(&E.lock);
    E.running = false;
    for (size_t b = 0; b < NBUCKETS; b++)
        while (E.buckets[b]) {
            struct state *s = E.buckets[b];
            E.buckets[b] = s->next;
            state_free(s);
        }
    free(E.buckets);
    E.buckets = NULL;
    E.nstates = 0;
    rules_free(E.rules, E.nrules);
    E.rules = NULL;
    E.nrules = 0;
    pthread_mutex_unlock(&E.lock);
}
