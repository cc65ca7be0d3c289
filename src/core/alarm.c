/* Alarms (告警): rules, the alarms they raise, silences and acknowledgement.
 *
 * A rule is either a condition on metric series (kind "metric": a selector, a function of
 * the samples, a comparison with a threshold, and how long it must hold) — the evaluator in
 * monitor/alarmeval.c checks it against every sample collectors emit — or a rule on
 * incidents (kind "incident": VM, host or service down), which availability.c triggers in
 * the very transaction that opens or closes the incident.
 *
 * An alarm is one episode of one rule on one series: at most one open (firing) row per
 * fingerprint (SM3 of rule id and series; a unique index enforces it), so a condition that
 * holds for hours is one alarm, not one per sample. Every change of state puts one
 * notification in the outbox (notify.c) in the same transaction — unless a silence matched
 * the alarm when it fired: then neither its firing nor its resolution is sent, and the
 * evaluator sends the firing late if the silence ends while the alarm still fires. */
#include "core/core.h"

#include "core/asset.h"

#include "core/validate.h"
#include "crypto/crypto.h"
#include "util/buf.h"
#include "util/mem.h"
#include "util/timeutil.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_uint_fast64_t rules_gen = 1;

uint64_t gc_alarm_rules_generation(void)
{
    return atomic_load(&rules_gen);
}

static void rules_changed(void)
{
    atomic_fetch_add(&rules_gen, 1);
}

/* ---- small parts ---- */

static const char *const severities[] = {"critical", "major", "minor", "warning", "info", NULL};
static const char *const ops[] = {">", ">=", "<", "<=", "==", "!=", NULL};

static bool in_list(const char *s, const char *const *list)
{
    for (; s && *list; list++)
        if (strcmp(s, *list) == 0)
            return true;
    return false;
}

int gc_alarm_op_parse(const char *s)
{
    for (int i = 0; ops[i]; i++)
        if (s && strcmp(s, ops[i]) == 0)
            return i;
    return -1;
}

bool gc_alarm_op_holds(int op, double v, double threshold)
{
    switch (op) {
    case 0: return v > threshold;
    case 1: return v >= threshold;
    case 2: return v < threshold;
    case 3: return v <= threshold;
    case 4: return v == threshold;
    case 5: return v != threshold;
    }
    return false;
}

static void fmt_num(double v, char *out, size_t n)
{
    snprintf(out, n, "%.17g", v);
}

static json_t *num_json(const char *text)
{
    if (!text || !text[0])
        return json_null();
    double v = strtod(text, NULL);
    if (v == floor(v) && fabs(v) < 9e15)
        return json_integer((json_int_t)v);
    return json_real(v);
}

static bool label_name_ok(const char *s, size_t n)
{
    if (n == 0 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_'))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || s[i] == '_' ||
              (s[i] >= '0' && s[i] <= '9')))
            return false;
    return true;
}

int gc_alarm_selector_parse(const char *sel, char *metric, size_t metric_size, json_t **matchers,
                            struct gc_error *err)
{
    const char *p = sel;
    size_t n = 0;
    while (p[n] && p[n] != '{')
        n++;
    bool ok = n > 0 && n < metric_size && label_name_ok(p, n);
    for (size_t i = 0; ok && i < n; i++)
        ok = p[i] != ':';
    if (!ok)
        return gc_error_set(err, GC_EINVAL, "selector",
                            "selector must start with a metric name ([a-zA-Z_][a-zA-Z0-9_]*), "
                            "then optional {label=\"value\", label!=\"value\"}");
    memcpy(metric, p, n);
    metric[n] = '\0';
    json_t *m = json_array();
    p += n;
    if (*p == '{') {
        p++;
        while (*p == ' ')
            p++;
        while (*p && *p != '}') {
            const char *name = p;
            while (*p && *p != '=' && *p != '!' && *p != ' ')
                p++;
            size_t nl = (size_t)(p - name);
            while (*p == ' ')
                p++;
            const char *op = NULL;
            if (p[0] == '=' && p[1] != '~')
                op = "=", p++;
            else if (p[0] == '!' && p[1] == '=' && p[2] != '~')
                op = "!=", p += 2;
            while (*p == ' ')
                p++;
            if (!label_name_ok(name, nl) || nl > 63 || !op || *p != '"') {
                json_decref(m);
                return gc_error_set(err, GC_EINVAL, "selector",
                                    "selector: each matcher is label=\"value\" or "
                                    "label!=\"value\" (near '%.40s')",
                                    name);
            }
            p++;
            struct gc_buf v;
            gc_buf_init(&v, 1024);
            while (*p && *p != '"') {
                if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
                    p++;
                else if (*p == '\\' && p[1] == 'n') {
                    p += 2;
                    gc_buf_add(&v, "\n", 1);
                    continue;
                }
                gc_buf_add(&v, p, 1);
                p++;
            }
            if (*p != '"' || v.len > 255) {
                gc_buf_release(&v);
                json_decref(m);
                return gc_error_set(err, GC_EINVAL, "selector",
                                    *p != '"' ? "selector: unterminated quoted value"
                                              : "selector: a value is at most 255 bytes");
            }
            p++;
            char lname[64];
            memcpy(lname, name, nl);
            lname[nl] = '\0';
            json_array_append_new(m, json_pack("[s,s,s]", lname, op, v.data ? v.data : ""));
            gc_buf_release(&v);
            while (*p == ' ')
                p++;
            if (*p == ',') {
                p++;
                while (*p == ' ')
                    p++;
            } else if (*p != '}') {
                json_decref(m);
                return gc_error_set(err, GC_EINVAL, "selector",
                                    "selector: expected ',' or '}' near '%.40s'", p);
            }
        }
        if (*p != '}' || p[1]) {
            json_decref(m);
            return gc_error_set(err, GC_EINVAL, "selector",
                                *p != '}' ? "selector: missing '}'"
                                          : "selector: nothing may follow '}'");
        }
        if (json_array_size(m) > 8) {
            json_decref(m);
            return gc_error_set(err, GC_EINVAL, "selector", "selector: at most 8 matchers");
        }
    } else if (*p) {
        json_decref(m);
        return gc_error_set(err, GC_EINVAL, "selector", "selector: unexpected '%.20s'", p);
    }
    *matchers = m;
    return 0;
}

/* metric{a="x",b!="y"}, the canonical text of a selector */
static json_t *selector_json(const char *metric, json_t *matchers)
{
    struct gc_buf b;
    gc_buf_init(&b, GC_BUF_UNLIMITED);
    gc_buf_adds(&b, metric);
    if (json_array_size(matchers)) {
        gc_buf_add(&b, "{", 1);
        size_t i;
        json_t *m;
        json_array_foreach(matchers, i, m) {
            if (i)
                gc_buf_add(&b, ",", 1);
            gc_buf_adds(&b, json_string_value(json_array_get(m, 0)));
            gc_buf_adds(&b, json_string_value(json_array_get(m, 1)));
            gc_buf_add(&b, "\"", 1);
            for (const char *p = json_string_value(json_array_get(m, 2)); *p; p++) {
                if (*p == '"' || *p == '\\')
                    gc_buf_add(&b, "\\", 1);
                if (*p == '\n')
                    gc_buf_adds(&b, "\\n");
                else
                    gc_buf_add(&b, p, 1);
            }
            gc_buf_add(&b, "\"", 1);
        }
        gc_buf_add(&b, "}", 1);
    }
    json_t *s = json_stringn(b.data ? b.data : "", b.len);
    gc_buf_release(&b);
    return s;
}

bool gc_alarm_matchers_hold(json_t *matchers, json_t *labels)
{
    size_t i;
    json_t *m;
    json_array_foreach(matchers, i, m) {
        const char *v = json_string_value(json_object_get(labels, json_string_value(
                                                                      json_array_get(m, 0))));
        bool eq = strcmp(v ? v : "", json_string_value(json_array_get(m, 2))) == 0;
        bool neg = strcmp(json_string_value(json_array_get(m, 1)), "!=") == 0;
        if (eq == neg)
            return false;
    }
    return true;
}

void gc_alarm_render(const char *tpl, json_t *labels, double value, const char *reason,
                     char *out, size_t n)
{
    struct gc_buf b;
    gc_buf_init(&b, GC_BUF_UNLIMITED);
    for (const char *p = tpl; *p;) {
        const char *q = strstr(p, "{{");
        const char *e = q ? strstr(q + 2, "}}") : NULL;
        if (!q || !e) {
            gc_buf_adds(&b, p);
            break;
        }
        gc_buf_add(&b, p, (size_t)(q - p));
        char name[64];
        size_t nl = (size_t)(e - q - 2);
        if (nl >= sizeof(name))
            nl = sizeof(name) - 1;
        memcpy(name, q + 2, nl);
        name[nl] = '\0';
        char num[40];
        if (strcmp(name, "value") == 0) {
            snprintf(num, sizeof(num), "%.4g", value);
            gc_buf_adds(&b, num);
        } else if (strcmp(name, "value_percent") == 0) {
            snprintf(num, sizeof(num), "%.1f %%", value * 100);
            gc_buf_adds(&b, num);
        } else if (strcmp(name, "reason") == 0) {
            gc_buf_adds(&b, reason && reason[0] ? reason : "no reason recorded");
        } else {
            const char *v = json_string_value(json_object_get(labels, name));
            gc_buf_adds(&b, v ? v : "");
        }
        p = e + 2;
    }
    snprintf(out, n, "%s", b.data ? b.data : "");
    gc_buf_release(&b);
}

/* ---- alarms: the transitions ---- */

static void fingerprint(const char *rule_id, const char *series, char out[GC_SM3_HEX_LEN + 1])
{
    struct gc_sm3_ctx *c = gc_sm3_new();
    gc_sm3_update(c, rule_id, strlen(rule_id));
    gc_sm3_update(c, "\n", 1);
    gc_sm3_update(c, series, strlen(series));
    gc_sm3_final_hex(c, out);
}

/* *hit: whether an active silence matches labels (every one of its matchers is a label of
 * the alarm with that value). */
static int silenced(struct gc_tx *tx, json_t *labels, int64_t now, bool *hit,
                    struct gc_error *err)
{
    struct gc_rows *r = NULL;
    *hit = false;
    int rc = gc_tx_query(tx, "SELECT matchers FROM silences WHERE starts_at <= ? AND ends_at > ?",
                         GC_ARGS(GC_VINT_(now), GC_VINT_(now)), &r, err);
    while (!rc && !*hit && (rc = gc_rows_next(r, err)) > 0) {
        rc = 0;
        json_t *m = json_loads(gc_rows_text(r, 0), 0, NULL);
        const char *k;
        json_t *v;
        bool all = json_is_object(m) && json_object_size(m) > 0;
        json_object_foreach(m, k, v) {
            const char *have = json_string_value(json_object_get(labels, k));
            if (!have || !json_is_string(v) || strcmp(have, json_string_value(v)) != 0)
                all = false;
        }
        json_decref(m);
        *hit = all;
    }
    gc_rows_free(r);
    return rc < 0 ? rc : 0;
}

static int notify(struct gc_tx *tx, const char *type, const char *alarm_id, int64_t now,
                  struct gc_error *err);

/* Every change of an alarm's state gives it the next seq of the supervision dataset
 * "alarm" (docs/supervision-spec.md), in the transaction of the change. */
static int bump_seq(struct gc_tx *tx, const char *id, struct gc_error *err)
{
    int64_t seq = 0;
    int rc = gc_sup_seq_next(tx, "alarm", &seq, err);
    if (!rc)
        rc = gc_tx_exec(tx, "UPDATE alarms SET seq = ? WHERE id = ?",
                        GC_ARGS(GC_VINT_(seq), GC_VTXT(id)), NULL, err);
    return rc;
}

int gc_alarm_fire(struct gc_tx *tx, const struct gc_alarm_fire *a, struct gc_error *err)
{
    char fp[GC_SM3_HEX_LEN + 1], v[40], th[40], summary[1024];
    fingerprint(a->rule_id, a->series, fp);
    fmt_num(a->value, v, sizeof(v));
    fmt_num(a->threshold, th, sizeof(th));
    gc_alarm_render(a->summary, a->labels, a->value, a->reason, summary, sizeof(summary));
    struct gc_rows *r = NULL;
    int rc = gc_tx_query(tx, "SELECT id FROM alarms WHERE fingerprint = ? AND ended_at IS NULL",
                         GC_ARGS(GC_VTXT(fp)), &r, err);
    char open_id[GC_ID_LEN + 1] = "";
    if (!rc && (rc = gc_rows_next(r, err)) > 0) {
        rc = 0;
        snprintf(open_id, sizeof(open_id), "%s", gc_rows_text(r, 0));
    }
    gc_rows_free(r);
    if (rc < 0)
        return rc;
    if (open_id[0]) /* the same episode goes on: one alarm, its latest value */
        return gc_tx_exec(tx,
                          "UPDATE alarms SET value = ?, reason = ?, summary = ?, updated_at = ?"
                          " WHERE id = ?",
                          GC_ARGS(GC_VTXT(v), GC_VTXT(a->reason ? a->reason : ""),
                                  GC_VTXT(summary), GC_VINT_(a->now), GC_VTXT(open_id)),
                          NULL, err);
    bool quiet = false;
    rc = silenced(tx, a->labels, a->now, &quiet, err);
    if (rc)
        return rc;
    char id[GC_ID_LEN + 1];
    gc_id_new(id);
    char *labels = json_dumps(a->labels, JSON_COMPACT | JSON_SORT_KEYS);
    rc = gc_tx_exec(tx,
                    "INSERT INTO alarms (id, rule_id, rule_name, fingerprint, series, status,"
                    " severity, labels, summary, reason, value, threshold, department_id,"
                    " started_at, ended_at, silenced, updated_at) VALUES (?, ?, ?, ?, ?,"
                    " 'firing', ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)",
                    GC_ARGS(GC_VTXT(id), GC_VTXT(a->rule_id), GC_VTXT(a->rule_name),
                            GC_VTXT(fp), GC_VTXT(a->series), GC_VTXT(a->severity),
                            GC_VTXT(labels ? labels : "{}"),
                            GC_VTXT(summary), GC_VTXT(a->reason ? a->reason : ""), GC_VTXT(v),
                            GC_VTXT(a->has_threshold ? th : NULL),
                            GC_VTXT(a->dept && a->dept[0] ? a->dept : NULL),
                            GC_VINT_(a->started_at ? a->started_at : a->now),
                            GC_VINT_(quiet ? 1 : 0), GC_VINT_(a->now)),
                    NULL, err);
    free(labels);
    if (!rc)
        rc = bump_seq(tx, id, err);
    if (!rc && !quiet)
        rc = notify(tx, "alarm.firing", id, a->now, err);
    return rc;
}

int gc_alarm_resolve(struct gc_tx *tx, const char *rule_id, const char *series,
                     const char *end_reason, int64_t now, struct gc_error *err)
{
    char fp[GC_SM3_HEX_LEN + 1];
    fingerprint(rule_id, series, fp);
    struct gc_rows *r = NULL;
    int rc = gc_tx_query(tx,
                         "SELECT id, silenced FROM alarms WHERE fingerprint = ? AND"
                         " ended_at IS NULL",
                         GC_ARGS(GC_VTXT(fp)), &r, err);
    char id[GC_ID_LEN + 1] = "";
    bool quiet = false;
    if (!rc && (rc = gc_rows_next(r, err)) > 0) {
        rc = 0;
        snprintf(id, sizeof(id), "%s", gc_rows_text(r, 0));
        quiet = gc_rows_int(r, 1) != 0;
    }
    gc_rows_free(r);
    if (rc < 0 || !id[0])
        return rc < 0 ? rc : 0;
    rc = gc_tx_exec(tx,
                    "UPDATE alarms SET status = 'resolved', ended_at = ?, end_reason = ?,"
                    " updated_at = ? WHERE id = ?",
                    GC_ARGS(GC_VINT_(now), GC_VTXT(end_reason), GC_VINT_(now), GC_VTXT(id)),
                    NULL, err);
    if (!rc)
        rc = bump_seq(tx, id, err);
    if (!rc && !quiet)
        rc = notify(tx, "alarm.resolved", id, now, err);
    return rc;
}

int gc_alarm_resolve_rule(struct gc_tx *tx, const char *rule_id, const char *end_reason,
                          int64_t now, struct gc_error *err)
{
    struct gc_rows *r = NULL;
    json_t *series = json_array();
    int rc = gc_tx_query(tx, "SELECT series FROM alarms WHERE rule_id = ? AND ended_at IS NULL",
                         GC_ARGS(GC_VTXT(rule_id)), &r, err);
    while (!rc && (rc = gc_rows_next(r, err)) > 0) {
        rc = 0;
        json_array_append_new(series, json_string(gc_rows_text(r, 0)));
    }
    gc_rows_free(r);
    size_t i;
    json_t *s;
    json_array_foreach(series, i, s) {
        if (rc < 0)
            break;
        rc = gc_alarm_resolve(tx, rule_id, json_string_value(s), end_reason, now, err);
    }
    json_decref(series);
    return rc < 0 ? rc : 0;
}

int gc_alarm_unsilence(struct gc_tx *tx, int64_t now, int *sent, struct gc_error *err)
{
    struct gc_rows *r = NULL;
    json_t *rows = json_array();
    *sent = 0;
    int rc = gc_tx_query(tx,
                         "SELECT id, labels FROM alarms WHERE ended_at IS NULL AND silenced = 1",
                         GC_NOARGS, &r, err);
    while (!rc && (rc = gc_rows_next(r, err)) > 0) {
        rc = 0;
        json_array_append_new(rows, json_pack("[s,s]", gc_rows_text(r, 0), gc_rows_text(r, 1)));
    }
    gc_rows_free(r);
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) {
        if (rc < 0)
            break;
        json_t *labels = json_loads(json_string_value(json_array_get(row, 1)), 0, NULL);
        bool quiet = true;
        rc = silenced(tx, labels, now, &quiet, err);
        json_decref(labels);
        const char *id = json_string_value(json_array_get(row, 0));
        if (!rc && !quiet) {
            rc = gc_tx_exec(tx, "UPDATE alarms SET silenced = 0, updated_at = ? WHERE id = ?",
                            GC_ARGS(GC_VINT_(now), GC_VTXT(id)), NULL, err);
            if (!rc)
                rc = bump_seq(tx, id, err);
            if (!rc)
                rc = notify(tx, "alarm.firing", id, now, err);
            if (!rc)
                (*sent)++;
        }
    }
    json_decref(rows);
    return rc < 0 ? rc : 0;
}

int gc_alarm_incident(struct gc_tx *tx, const char *type, const char *id, const char *dept,
                      const char *host, const char *cause, const char *end_reason, int64_t now,
                      struct gc_error *err)
{
    struct gc_rows *r = NULL;
    json_t *rules = json_array();
    int rc = gc_tx_query(tx,
                         "SELECT id, name, matchers, severity, summary FROM alarm_rules WHERE"
                         " kind = 'incident' AND enabled = 1 ORDER BY id",
                         GC_NOARGS, &r, err);
    while (!rc && (rc = gc_rows_next(r, err)) > 0) {
        rc = 0;
        json_array_append_new(rules, json_pack("[s,s,s,s,s]", gc_rows_text(r, 0),
                                               gc_rows_text(r, 1), gc_rows_text(r, 2),
                                               gc_rows_text(r, 3), gc_rows_text(r, 4)));
    }
    gc_rows_free(r);
    char series[160];
    snprintf(series, sizeof(series), "%s/%s", type, id);
    json_t *labels = json_pack("{s:s,s:s}", "resource_type", type, "resource_id", id);
    if (dept && dept[0])
        json_object_set_new(labels, "department_id", json_string(dept));
    if (host && host[0])
        json_object_set_new(labels, "host_id", json_string(host));
    size_t i;
    json_t *rule;
    json_array_foreach(rules, i, rule) {
        if (rc < 0)
            break;
        const char *rid = json_string_value(json_array_get(rule, 0));
        json_t *m = json_loads(json_string_value(json_array_get(rule, 2)), 0, NULL);
        bool hit = json_is_array(m) && gc_alarm_matchers_hold(m, labels);
        json_decref(m);
        if (!hit)
            continue;
        if (!cause) {
            rc = gc_alarm_resolve(tx, rid, series, end_reason, now, err);
            continue;
        }
        json_t *l = json_deep_copy(labels);
        json_object_set_new(l, "alertname", json_copy(json_array_get(rule, 1)));
        json_object_set_new(l, "severity", json_copy(json_array_get(rule, 3)));
        struct gc_alarm_fire a = {.rule_id = rid,
                                  .rule_name = json_string_value(json_array_get(rule, 1)),
                                  .severity = json_string_value(json_array_get(rule, 3)),
                                  .summary = json_string_value(json_array_get(rule, 4)),
                                  .series = series,
                                  .labels = l,
                                  .value = 1,
                                  .reason = cause,
                                  .dept = dept,
                                  .now = now};
        rc = gc_alarm_fire(tx, &a, err);
        json_decref(l);
    }
    json_decref(labels);
    json_decref(rules);
    return rc < 0 ? rc : 0;
}

/* ---- alarms: reading, acknowledging ---- */

#define AL_COLS                                                                               \
    "a.id, a.rule_id, a.rule_name, a.status, a.severity, a.labels, a.summary, a.reason,"      \
    " a.value, a.threshold, a.department_id, a.started_at, a.ended_at, a.end_reason,"         \
    " a.silenced, a.acked_by, a.acked_at, a.ack_comment, a.updated_at, a.fingerprint,"        \
    " COALESCE(d.path, '')"
#define AL_FROM " FROM alarms a LEFT JOIN departments d ON d.id = a.department_id"

static json_t *al_json(struct gc_rows *r, char *path)
{
    json_t *labels = json_loads(gc_rows_text(r, 5), 0, NULL);
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:o,s:s,s:s}", "id", gc_rows_text(r, 0),
                          "rule_id", gc_rows_text(r, 1), "rule_name", gc_rows_text(r, 2),
                          "status", gc_rows_text(r, 3), "severity", gc_rows_text(r, 4),
                          "labels", labels ? labels : json_object(), "summary",
                          gc_rows_text(r, 6), "reason", gc_rows_text(r, 7));
    json_object_set_new(o, "value", num_json(gc_rows_text(r, 8)));
    json_object_set_new(o, "threshold", num_json(gc_rows_text(r, 9)));
    json_object_set_new(o, "department_id",
                        gc_rows_null(r, 10) ? json_null() : json_string(gc_rows_text(r, 10)));
    json_object_set_new(o, "started_at", gc_json_time(gc_rows_int(r, 11)));
    json_object_set_new(o, "ended_at",
                        gc_rows_null(r, 12) ? json_null() : gc_json_time(gc_rows_int(r, 12)));
    json_object_set_new(o, "end_reason", json_string(gc_rows_text(r, 13)));
    json_object_set_new(o, "silenced", json_boolean(gc_rows_int(r, 14) != 0));
    json_object_set_new(o, "acknowledged_by",
                        gc_rows_null(r, 15) ? json_null() : json_string(gc_rows_text(r, 15)));
    json_object_set_new(o, "acknowledged_at",
                        gc_rows_null(r, 16) ? json_null() : gc_json_time(gc_rows_int(r, 16)));
    json_object_set_new(o, "ack_comment", json_string(gc_rows_text(r, 17)));
    json_object_set_new(o, "updated_at", gc_json_time(gc_rows_int(r, 18)));
    json_object_set_new(o, "fingerprint", json_string(gc_rows_text(r, 19)));
    if (path)
        snprintf(path, GC_DEPT_PATH_MAX, "%s", gc_rows_text(r, 20));
    return o;
}

static int al_load(struct gc_tx *tx, const char *id, json_t **out, char *path,
                   struct gc_error *err)
{
    return gc_load_by_id(tx, "SELECT " AL_COLS AL_FROM " WHERE a.id = ?", "alarm", id, al_json,
                         out, path, err);
}

/* Platform alarms (no department) are for platform roles; a department's for those who may
 * see it. */
static bool may_see(const struct gc_principal *who, const char *path)
{
    if (gc_role_is_platform(who->role))
        return gc_role_can(who->role, GC_P_HOST_READ);
    return path[0] && gc_in_scope(who, path) && gc_role_can(who->role, GC_P_VM_READ);
}

static json_t *al_row(struct gc_rows *r, const struct gc_principal *who)
{
    char path[GC_DEPT_PATH_MAX];
    json_t *o = al_json(r, path);
    if (!may_see(who, path)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static int scoped_perm_check(const struct gc_ctx *ctx, struct gc_error *err)
{
    if (!ctx->who)
        return gc_error_set(err, GC_EAUTH, "", "authentication required");
    if (!gc_role_can(ctx->who->role, GC_P_HOST_READ) && !gc_role_can(ctx->who->role, GC_P_VM_READ))
        return gc_error_set(err, GC_EPERM, "", "role %s may not read alarms",
                            gc_role_name(ctx->who->role));
    return 0;
}

int gc_alarm_list(const struct gc_ctx *ctx, json_t *filters, int limit, const char *cursor,
                  json_t **items, char **next_cursor, struct gc_error *err)
{
    static const struct gc_list_filter f[] = {{"status", "a.status"},
                                              {"severity", "a.severity"},
                                              {"rule_id", "a.rule_id"},
                                              {"department_id", "a.department_id"},
                                              {NULL, NULL}};
    int rc = scoped_perm_check(ctx, err);
    if (rc)
        return rc;
    const char *st = gc_json_str(filters, "status");
    if (st && strcmp(st, "firing") && strcmp(st, "resolved"))
        return gc_error_set(err, GC_EINVAL, "status", "status is firing or resolved");
    const char *sev = gc_json_str(filters, "severity");
    if (sev && !in_list(sev, severities))
        return gc_error_set(err, GC_EINVAL, "severity",
                            "severity is critical, major, minor, warning or info");
    /* the permission was checked above, per row below */
    enum gc_perm p =
        gc_role_can(ctx->who->role, GC_P_HOST_READ) ? GC_P_HOST_READ : GC_P_VM_READ;
    return gc_list_filtered(ctx, p, "SELECT " AL_COLS AL_FROM " WHERE a.id > ?", "a.id", f,
                            filters, limit, cursor, al_row, items, next_cursor, err);
}

/* GET of one alarm or rule: loaded in a read transaction, then 404 (as for a missing one)
 * when the caller may not see it. */
static int get_visible(const struct gc_ctx *ctx, gc_loader_fn load, const char *what,
                       const char *id, json_t **out, struct gc_error *err)
{
    int rc = scoped_perm_check(ctx, err);
    struct gc_tx *tx;
    if (!rc)
        rc = gc_tx_begin(ctx->store, GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    char path[GC_DEPT_PATH_MAX] = "";
    json_t *o = NULL;
    rc = load(tx, id, &o, path, err);
    gc_tx_rollback(tx);
    if (!rc && !may_see(ctx->who, path)) {
        json_decref(o);
        return gc_error_set(err, GC_ENOTFOUND, "id", "%s '%s' not found", what, id);
    }
    if (!rc)
        *out = o;
    return rc;
}

int gc_alarm_get(const struct gc_ctx *ctx, const char *id, json_t **out, struct gc_error *err)
{
    return get_visible(ctx, al_load, "alarm", id, out, err);
}

static const struct gc_jfield ack_spec[] = {
    {"comment", GC_JT_STRING, false, false, 0, 1000, GC_CS_TEXT},
};

int gc_alarm_ack(const struct gc_ctx *ctx, const char *id, json_t *in, json_t **out,
                 struct gc_error *err)
{
    int rc = in ? gc_json_check(in, ack_spec, 1, err) : 0;
    if (!rc)
        rc = scoped_perm_check(ctx, err);
    struct gc_tx *tx;
    if (!rc)
        rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    char path[GC_DEPT_PATH_MAX] = "";
    json_t *o = NULL, *after = NULL;
    rc = al_load(tx, id, &o, path, err);
    if (!rc && !may_see(ctx->who, path))
        rc = gc_error_set(err, GC_ENOTFOUND, "id", "alarm '%s' not found", id);
    /* operators for the platform's alarms, department administrators for their own */
    if (!rc && !(gc_role_is_platform(ctx->who->role)
                     ? gc_role_can(ctx->who->role, GC_P_HOST_WRITE)
                     : gc_role_can(ctx->who->role, GC_P_DEPT_WRITE)))
        rc = gc_error_set(err, GC_EPERM, "", "role %s may not acknowledge alarms",
                          gc_role_name(ctx->who->role));
    if (!rc && !json_is_null(json_object_get(o, "acknowledged_by")))
        rc = gc_error_set(err, GC_ECONFLICT, "id", "alarm '%s' was acknowledged by %s", id,
                          json_string_value(json_object_get(o, "acknowledged_by")));
    if (!rc && strcmp(json_string_value(json_object_get(o, "status")), "firing") != 0)
        rc = gc_error_set(err, GC_ECONFLICT, "id",
                          "alarm '%s' is resolved; only a firing alarm is acknowledged", id);
    int64_t now = gc_now_ms();
    const char *comment = in ? gc_json_str(in, "comment") : NULL;
    if (!rc)
        rc = gc_tx_exec(tx,
                        "UPDATE alarms SET acked_by = ?, acked_at = ?, ack_comment = ?,"
                        " updated_at = ? WHERE id = ?",
                        GC_ARGS(GC_VTXT(ctx->who->username), GC_VINT_(now),
                                GC_VTXT(comment ? comment : ""), GC_VINT_(now), GC_VTXT(id)),
                        NULL, err);
    if (!rc)
        rc = bump_seq(tx, id, err);
    if (!rc)
        rc = al_load(tx, id, &after, NULL, err);
    const char *dept = o ? gc_json_str(o, "department_id") : NULL;
    struct gc_audit_event ev = {.action = "alarm.acknowledge",
                                .resource_type = "alarm",
                                .resource_id = id,
                                .department_id = dept,
                                .department_path = path,
                                .outcome = GC_OUTCOME_SUCCESS,
                                .detail = in};
    rc = gc_audit_commit(tx, ctx, &ev, rc, err);
    json_decref(o);
    if (rc) {
        json_decref(after);
        return rc;
    }
    *out = after;
    return 0;
}

/* The notification of a change of an alarm: the alarm as the API shows it, and a type. */
static int notify(struct gc_tx *tx, const char *type, const char *alarm_id, int64_t now,
                  struct gc_error *err)
{
    json_t *o = NULL;
    int rc = al_load(tx, alarm_id, &o, NULL, err);
    if (rc)
        return rc;
    json_t *ev = json_pack("{s:s,s:o}", "type", type, "alarm", o);
    rc = gc_notify_enqueue(tx, ev, now, err);
    json_decref(ev);
    return rc;
}

/* ---- rules ---- */

#define RU_COLS                                                                               \
    "r.id, r.name, r.builtin, r.kind, r.metric, r.matchers, r.func, r.op, r.threshold,"       \
    " r.for_ms, r.severity, r.summary, r.department_id, r.enabled, r.created_at,"             \
    " r.updated_at, r.version, COALESCE(d.path, '')"
#define RU_FROM " FROM alarm_rules r LEFT JOIN departments d ON d.id = r.department_id"

static json_t *ru_json(struct gc_rows *r, char *path)
{
    json_t *m = json_loads(gc_rows_text(r, 5), 0, NULL);
    if (!json_is_array(m)) {
        json_decref(m);
        m = json_array();
    }
    json_t *o = json_pack("{s:s,s:s,s:b,s:s}", "id", gc_rows_text(r, 0), "name",
                          gc_rows_text(r, 1), "builtin", gc_rows_int(r, 2) != 0, "kind",
                          gc_rows_text(r, 3));
    if (strcmp(gc_rows_text(r, 3), "metric") == 0) {
        json_object_set_new(o, "selector", selector_json(gc_rows_text(r, 4), m));
        json_object_set_new(o, "function", json_string(gc_rows_text(r, 6)));
        json_object_set_new(o, "op", json_string(gc_rows_text(r, 7)));
        json_object_set_new(o, "threshold", num_json(gc_rows_text(r, 8)));
        json_object_set_new(o, "for_seconds", json_integer(gc_rows_int(r, 9) / 1000));
    } else {
        json_object_set_new(o, "resource_type", json_copy(json_array_get(json_array_get(m, 0), 2)));
    }
    json_decref(m);
    json_object_set_new(o, "severity", json_string(gc_rows_text(r, 10)));
    json_object_set_new(o, "summary", json_string(gc_rows_text(r, 11)));
    json_object_set_new(o, "department_id",
                        gc_rows_null(r, 12) ? json_null() : json_string(gc_rows_text(r, 12)));
    json_object_set_new(o, "enabled", json_boolean(gc_rows_int(r, 13) != 0));
    json_object_set_new(o, "created_at", gc_json_time(gc_rows_int(r, 14)));
    json_object_set_new(o, "updated_at", gc_json_time(gc_rows_int(r, 15)));
    json_object_set_new(o, "version", json_integer(gc_rows_int(r, 16)));
    if (path)
        snprintf(path, GC_DEPT_PATH_MAX, "%s", gc_rows_text(r, 17));
    return o;
}

static int ru_load(struct gc_tx *tx, const char *id, json_t **out, char *path,
                   struct gc_error *err)
{
    return gc_load_by_id(tx, "SELECT " RU_COLS RU_FROM " WHERE r.id = ?", "alarm rule", id,
                         ru_json, out, path, err);
}

static json_t *ru_row(struct gc_rows *r, const struct gc_principal *who)
{
    char path[GC_DEPT_PATH_MAX];
    json_t *o = ru_json(r, path);
    if (!may_see(who, path)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Who may change a rule of the department at path ("" for a platform rule). */
static int may_write_rule(const struct gc_principal *who, const char *path, const char *id,
                          struct gc_error *err)
{
    if (gc_role_is_platform(who->role)) {
        if (!gc_role_can(who->role, GC_P_HOST_WRITE))
            return gc_error_set(err, GC_EPERM, "", "role %s may not change alarm rules",
                                gc_role_name(who->role));
        return 0;
    }
    if (!path[0] || !gc_in_scope(who, path))
        return id ? gc_error_set(err, GC_ENOTFOUND, "id", "alarm rule '%s' not found", id)
                  : gc_error_set(err, GC_EINVAL, "department_id", "department not found");
    if (!gc_role_can(who->role, GC_P_DEPT_WRITE))
        return gc_error_set(err, GC_EPERM, "", "role %s may not change alarm rules",
                            gc_role_name(who->role));
    return 0;
}

static const struct gc_jfield rule_spec[] = {
    {"name", GC_JT_STRING, true, false, 1, 64, GC_CS_CODE},
    {"selector", GC_JT_STRING, true, false, 1, 2048, GC_CS_TEXT},
    {"function", GC_JT_STRING, false, false, 1, 16, GC_CS_CODE},
    {"op", GC_JT_STRING, true, false, 1, 2, GC_CS_ANY},
    {"threshold", GC_JT_NUMBER, true, false, 0, 0, GC_CS_ANY},
    {"for_seconds", GC_JT_INT, false, false, 0, 86400, GC_CS_ANY},
    {"severity", GC_JT_STRING, true, false, 1, 16, GC_CS_CODE},
    {"summary", GC_JT_STRING, false, false, 0, 512, GC_CS_TEXT},
    {"department_id", GC_JT_STRING, false, true, 1, 64, GC_CS_ANY},
    {"enabled", GC_JT_BOOL, false, false, 0, 0, GC_CS_ANY},
};
#define NSPEC(s) (sizeof(s) / sizeof((s)[0]))

/* The checks of a complete rule (after a PATCH is applied, too). */
static int rule_check(json_t *c, char *metric, size_t msize, json_t **matchers,
                      struct gc_error *err)
{
    const char *fn = gc_json_str(c, "function");
    if (fn && strcmp(fn, "value") && strcmp(fn, "rate"))
        return gc_error_set(err, GC_EINVAL, "function", "function is value or rate");
    if (gc_alarm_op_parse(gc_json_str(c, "op")) < 0)
        return gc_error_set(err, GC_EINVAL, "op", "op is one of >, >=, <, <=, ==, !=");
    if (!in_list(gc_json_str(c, "severity"), severities))
        return gc_error_set(err, GC_EINVAL, "severity",
                            "severity is critical, major, minor, warning or info");
    double th = json_number_value(json_object_get(c, "threshold"));
    if (!isfinite(th))
        return gc_error_set(err, GC_EINVAL, "threshold", "threshold must be a finite number");
    if (!gc_json_str(c, "selector"))
        return 0; /* an incident rule */
    return gc_alarm_selector_parse(gc_json_str(c, "selector"), metric, msize, matchers, err);
}

/* Resolves and checks the department a rule is for: *dept NULL for a platform rule. */
static int rule_dept(const struct gc_ctx *ctx, struct gc_tx *tx, json_t *in, const char **dept,
                     char *path, struct gc_error *err)
{
    *dept = gc_json_str(in, "department_id");
    path[0] = '\0';
    if (!*dept && !gc_role_is_platform(ctx->who->role))
        *dept = ctx->who->department_id;
    if (!*dept)
        return 0;
    int rc = gc_dept_path(tx, gc_id_valid(*dept) ? *dept : "-", path, err);
    if (rc == GC_ENOTFOUND || (!rc && !gc_in_scope(ctx->who, path)))
        rc = gc_error_set(err, GC_EINVAL, "department_id", "department '%.64s' not found",
                          *dept);
    return rc;
}

int gc_alarm_rule_create(const struct gc_ctx *ctx, json_t *in, json_t **out, struct gc_error *err)
{
    int rc = gc_json_check(in, rule_spec, NSPEC(rule_spec), err);
    char metric[128];
    json_t *matchers = NULL;
    if (!rc)
        rc = rule_check(in, metric, sizeof(metric), &matchers, err);
    struct gc_tx *tx;
    if (!rc)
        rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc) {
        json_decref(matchers);
        return rc;
    }
    const char *dept = NULL;
    char path[GC_DEPT_PATH_MAX];
    rc = rule_dept(ctx, tx, in, &dept, path, err);
    if (!rc)
        rc = may_write_rule(ctx->who, path, NULL, err);
    char id[GC_ID_LEN + 1], th[40];
    gc_id_new(id);
    fmt_num(json_number_value(json_object_get(in, "threshold")), th, sizeof(th));
    char *m = json_dumps(matchers, JSON_COMPACT);
    int64_t now = gc_now_ms();
    json_t *fs = json_object_get(in, "for_seconds");
    const char *fn = gc_json_str(in, "function"), *summary = gc_json_str(in, "summary");
    if (!rc)
        rc = gc_tx_exec(
            tx,
            "INSERT INTO alarm_rules (id, name, builtin, kind, metric, matchers, func, op,"
            " threshold, for_ms, severity, summary, department_id, enabled, created_at,"
            " updated_at, version) VALUES (?, ?, 0, 'metric', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
            " ?, 1)",
            GC_ARGS(GC_VTXT(id), GC_VTXT(gc_json_str(in, "name")), GC_VTXT(metric), GC_VTXT(m),
                    GC_VTXT(fn ? fn : "value"), GC_VTXT(gc_json_str(in, "op")), GC_VTXT(th),
                    GC_VINT_(fs ? json_integer_value(fs) * 1000 : 0),
                    GC_VTXT(gc_json_str(in, "severity")),
                    GC_VTXT(summary ? summary : "{{alertname}}: {{value}}"), GC_VTXT(dept),
                    GC_VINT_(json_is_false(json_object_get(in, "enabled")) ? 0 : 1),
                    GC_VINT_(now), GC_VINT_(now)),
            NULL, err);
    free(m);
    json_decref(matchers);
    if (rc == GC_ECONFLICT)
        rc = gc_error_set(err, GC_ECONFLICT, "name", "an alarm rule named '%s' exists",
                          gc_json_str(in, "name"));
    json_t *obj = NULL;
    if (!rc)
        rc = ru_load(tx, id, &obj, NULL, err);
    struct gc_audit_event ev = {.action = "alarm_rule.create",
                                .resource_type = "alarm_rule",
                                .resource_id = id,
                                .department_id = dept,
                                .department_path = path,
                                .outcome = GC_OUTCOME_SUCCESS,
                                .detail = obj};
    rc = gc_audit_commit(tx, ctx, &ev, rc, err);
    if (rc) {
        json_decref(obj);
        return rc;
    }
    rules_changed();
    *out = obj;
    return 0;
}

int gc_alarm_rule_get(const struct gc_ctx *ctx, const char *id, json_t **out,
                      struct gc_error *err)
{
    return get_visible(ctx, ru_load, "alarm rule", id, out, err);
}

int gc_alarm_rule_list(const struct gc_ctx *ctx, json_t *filters, int limit, const char *cursor,
                       json_t **items, char **next_cursor, struct gc_error *err)
{
    static const struct gc_list_filter f[] = {
        {"kind", "r.kind"}, {"severity", "r.severity"}, {"department_id", "r.department_id"},
        {NULL, NULL}};
    int rc = scoped_perm_check(ctx, err);
    if (rc)
        return rc;
    enum gc_perm p =
        gc_role_can(ctx->who->role, GC_P_HOST_READ) ? GC_P_HOST_READ : GC_P_VM_READ;
    return gc_list_filtered(ctx, p, "SELECT " RU_COLS RU_FROM " WHERE r.id > ?", "r.id", f,
                            filters, limit, cursor, ru_row, items, next_cursor, err);
}

static const struct gc_jfield rule_update_spec[] = {
    {"name", GC_JT_STRING, false, false, 1, 64, GC_CS_CODE},
    {"selector", GC_JT_STRING, false, false, 1, 2048, GC_CS_TEXT},
    {"function", GC_JT_STRING, false, false, 1, 16, GC_CS_CODE},
    {"op", GC_JT_STRING, false, false, 1, 2, GC_CS_ANY},
    {"threshold", GC_JT_NUMBER, false, false, 0, 0, GC_CS_ANY},
    {"for_seconds", GC_JT_INT, false, false, 0, 86400, GC_CS_ANY},
    {"severity", GC_JT_STRING, false, false, 1, 16, GC_CS_CODE},
    {"summary", GC_JT_STRING, false, false, 0, 512, GC_CS_TEXT},
    {"enabled", GC_JT_BOOL, false, false, 0, 0, GC_CS_ANY},
};

int gc_alarm_rule_update(const struct gc_ctx *ctx, const char *id, int64_t if_match, json_t *in,
                         json_t **out, struct gc_error *err)
{
    int rc = gc_json_check(in, rule_update_spec, NSPEC(rule_update_spec), err);
    if (!rc)
        rc = scoped_perm_check(ctx, err);
    struct gc_tx *tx;
    if (!rc)
        rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    char path[GC_DEPT_PATH_MAX] = "";
    json_t *obj = NULL, *c = NULL, *matchers = NULL, *after = NULL;
    rc = ru_load(tx, id, &obj, path, err);
    if (!rc && !may_see(ctx->who, path))
        rc = gc_error_set(err, GC_ENOTFOUND, "id", "alarm rule '%s' not found", id);
    if (!rc)
        rc = may_write_rule(ctx->who, path, id, err);
    if (!rc)
        rc = gc_check_if_match(obj, if_match, "alarm rule", id, err);
    bool builtin = obj && json_is_true(json_object_get(obj, "builtin"));
    bool incident = obj && strcmp(json_string_value(json_object_get(obj, "kind")), "incident") == 0;
    if (!rc && builtin) {
        static const char *const fixed[] = {"name", "selector", "function", "op", NULL};
        for (const char *const *k = fixed; *k && !rc; k++)
            if (json_object_get(in, *k))
                rc = gc_error_set(err, GC_EINVAL, *k,
                                  "'%s' is a built-in rule: only threshold, for_seconds, "
                                  "severity, summary and enabled change",
                                  json_string_value(json_object_get(obj, "name")));
    }
    if (!rc && incident) {
        static const char *const fixed[] = {"threshold", "for_seconds", NULL};
        for (const char *const *k = fixed; *k && !rc; k++)
            if (json_object_get(in, *k))
                rc = gc_error_set(err, GC_EINVAL, *k,
                                  "an incident rule fires when the incident opens; it has no %s",
                                  *k);
    }
    char metric[128] = "";
    if (!rc) {
        c = json_deep_copy(obj);
        if (incident) {
            json_object_set_new(c, "op", json_string(">"));
            json_object_set_new(c, "threshold", json_integer(0));
        }
        json_object_update(c, in);
        rc = rule_check(c, metric, sizeof(metric), &matchers, err);
    }
    char th[40] = "0";
    char *m = NULL;
    if (!rc) {
        fmt_num(json_number_value(json_object_get(c, "threshold")), th, sizeof(th));
        m = matchers ? json_dumps(matchers, JSON_COMPACT) : NULL;
    }
    bool enabled = c && !json_is_false(json_object_get(c, "enabled"));
    if (!rc)
        rc = gc_tx_exec(
            tx,
            "UPDATE alarm_rules SET name = ?, metric = CASE WHEN kind = 'metric' THEN ? ELSE"
            " metric END, matchers = COALESCE(?, matchers), func = ?, op = ?, threshold = ?,"
            " for_ms = ?, severity = ?, summary = ?, enabled = ?, updated_at = ?,"
            " version = version + 1 WHERE id = ?",
            GC_ARGS(GC_VTXT(gc_json_str(c, "name")), GC_VTXT(metric), GC_VTXT(m),
                    GC_VTXT(gc_json_str(c, "function") ? gc_json_str(c, "function") : "value"),
                    GC_VTXT(gc_json_str(c, "op")), GC_VTXT(th),
                    GC_VINT_(json_integer_value(json_object_get(c, "for_seconds")) * 1000),
                    GC_VTXT(gc_json_str(c, "severity")), GC_VTXT(gc_json_str(c, "summary")),
                    GC_VINT_(enabled ? 1 : 0), GC_VINT_(gc_now_ms()), GC_VTXT(id)),
            NULL, err);
    free(m);
    json_decref(matchers);
    if (rc == GC_ECONFLICT)
        rc = gc_error_set(err, GC_ECONFLICT, "name", "an alarm rule named '%s' exists",
                          gc_json_str(c, "name"));
    /* a rule switched off ends what it raised */
    if (!rc && !enabled)
        rc = gc_alarm_resolve_rule(tx, id, "rule disabled", gc_now_ms(), err);
    if (!rc)
        rc = ru_load(tx, id, &after, NULL, err);
    struct gc_audit_event ev = {.action = "alarm_rule.update",
                                .resource_type = "alarm_rule",
                                .resource_id = id,
                                .department_id = obj ? gc_json_str(obj, "department_id") : NULL,
                                .department_path = path,
                                .outcome = GC_OUTCOME_SUCCESS,
                                .detail = in};
    rc = gc_audit_commit(tx, ctx, &ev, rc, err);
    json_decref(obj);
    json_decref(c);
    if (rc) {
        json_decref(after);
        return rc;
    }
    rules_changed();
    *out = after;
    return 0;
}

int gc_alarm_rule_delete(const struct gc_ctx *ctx, const char *id, int64_t if_match,
                         struct gc_error *err)
{
    int rc = scoped_perm_check(ctx, err);
    struct gc_tx *tx;
    if (!rc)
        rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    char path[GC_DEPT_PATH_MAX] = "";
    json_t *obj = NULL;
    rc = ru_load(tx, id, &obj, path, err);
    if (!rc && !may_see(ctx->who, path))
        rc = gc_error_set(err, GC_ENOTFOUND, "id", "alarm rule '%s' not found", id);
    if (!rc)
        rc = may_write_rule(ctx->who, path, id, err);
    if (!rc)
        rc = gc_check_if_match(obj, if_match, "alarm rule", id, err);
    if (!rc && json_is_true(json_object_get(obj, "builtin")))
        rc = gc_error_set(err, GC_ECONFLICT, "id",
                          "'%s' is a built-in rule: disable it (enabled=false) instead",
                          json_string_value(json_object_get(obj, "name")));
    if (!rc)
        rc = gc_alarm_resolve_rule(tx, id, "rule deleted", gc_now_ms(), err);
    if (!rc)
        rc = gc_tx_exec(tx, "DELETE FROM alarm_rules WHERE id = ?", GC_ARGS(GC_VTXT(id)), NULL,
                        err);
    struct gc_audit_event ev = {.action = "alarm_rule.delete",
                                .resource_type = "alarm_rule",
                                .resource_id = id,
                                .department_id = obj ? gc_json_str(obj, "department_id") : NULL,
                                .department_path = path,
                                .outcome = GC_OUTCOME_SUCCESS,
                                .detail = obj};
    rc = gc_audit_commit(tx, ctx, &ev, rc, err);
    json_decref(obj);
    if (!rc)
        rules_changed();
    return rc;
}

int gc_alarm_rules_snapshot(struct gc_store *st, json_t **out, struct gc_error *err)
{
    struct gc_tx *tx;
    int rc = gc_tx_begin(st, GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    struct gc_rows *r = NULL;
    json_t *a = json_array();
    rc = gc_tx_query(tx,
                     "SELECT id, name, metric, matchers, func, op, threshold, for_ms, severity,"
                     " summary, COALESCE(department_id, '') FROM alarm_rules WHERE"
                     " kind = 'metric' AND enabled = 1 ORDER BY id",
                     GC_NOARGS, &r, err);
    while (!rc && (rc = gc_rows_next(r, err)) > 0) {
        rc = 0;
        json_t *m = json_loads(gc_rows_text(r, 3), 0, NULL);
        json_array_append_new(
            a, json_pack("{s:s,s:s,s:s,s:o,s:s,s:s,s:f,s:I,s:s,s:s,s:s}", "id",
                         gc_rows_text(r, 0), "name", gc_rows_text(r, 1), "metric",
                         gc_rows_text(r, 2), "matchers", json_is_array(m) ? m : json_array(),
                         "func", gc_rows_text(r, 4), "op", gc_rows_text(r, 5), "threshold",
                         strtod(gc_rows_text(r, 6), NULL), "for_ms",
                         (json_int_t)gc_rows_int(r, 7), "severity", gc_rows_text(r, 8),
                         "summary", gc_rows_text(r, 9), "department_id", gc_rows_text(r, 10)));
        if (!json_is_array(m))
            json_decref(m);
    }
    gc_rows_free(r);
    gc_tx_rollback(tx);
    if (rc < 0) {
        json_decref(a);
        return rc;
    }
    *out = a;
    return 0;
}

int gc_alarm_open_metric(struct gc_store *st, json_t **out, struct gc_error *err)
{
    struct gc_tx *tx;
    int rc = gc_tx_begin(st, GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    struct gc_rows *r = NULL;
    json_t *a = json_array();
    rc = gc_tx_query(tx,
                     "SELECT a.rule_id, a.series, a.labels, a.started_at FROM alarms a JOIN"
                     " alarm_rules r ON r.id = a.rule_id WHERE a.ended_at IS NULL AND"
                     " r.kind = 'metric'",
                     GC_NOARGS, &r, err);
    while (!rc && (rc = gc_rows_next(r, err)) > 0) {
        rc = 0;
        json_array_append_new(a, json_pack("{s:s,s:s,s:s,s:I}", "rule_id", gc_rows_text(r, 0),
                                           "series", gc_rows_text(r, 1), "labels",
                                           gc_rows_text(r, 2), "started_at",
                                           (json_int_t)gc_rows_int(r, 3)));
    }
    gc_rows_free(r);
    gc_tx_rollback(tx);
    if (rc < 0) {
        json_decref(a);
        return rc;
    }
    *out = a;
    return 0;
}

/* ---- silences ---- */

#define SI_COLS "s.id, s.matchers, s.comment, s.created_by, s.starts_at, s.ends_at, s.created_at"

static json_t *si_json(struct gc_rows *r, char *path)
{
    (void)path;
    json_t *m = json_loads(gc_rows_text(r, 1), 0, NULL);
    int64_t now = gc_now_ms();
    json_t *o = json_pack("{s:s,s:o,s:s,s:s}", "id", gc_rows_text(r, 0), "matchers",
                          m ? m : json_object(), "comment", gc_rows_text(r, 2), "created_by",
                          gc_rows_text(r, 3));
    json_object_set_new(o, "starts_at", gc_json_time(gc_rows_int(r, 4)));
    json_object_set_new(o, "ends_at", gc_json_time(gc_rows_int(r, 5)));
    json_object_set_new(o, "created_at", gc_json_time(gc_rows_int(r, 6)));
    json_object_set_new(o, "state", json_string(gc_rows_int(r, 5) <= now ? "expired"
                                                : gc_rows_int(r, 4) > now ? "pending"
                                                                          : "active"));
    return o;
}

static json_t *si_row(struct gc_rows *r, const struct gc_principal *who)
{
    (void)who;
    return si_json(r, NULL);
}

static const struct gc_jfield silence_spec[] = {
    {"matchers", GC_JT_OBJECT, true, false, 0, 0, GC_CS_ANY},
    {"comment", GC_JT_STRING, true, false, 1, 1000, GC_CS_TEXT},
    {"starts_at", GC_JT_STRING, false, false, 1, 64, GC_CS_ANY},
    {"ends_at", GC_JT_STRING, false, false, 1, 64, GC_CS_ANY},
    {"duration_seconds", GC_JT_INT, false, false, 60, 90 * 86400, GC_CS_ANY},
};

int gc_silence_create(const struct gc_ctx *ctx, json_t *in, json_t **out, struct gc_error *err)
{
    int rc = gc_require(ctx->who, GC_P_HOST_WRITE, err);
    if (!rc)
        rc = gc_json_check(in, silence_spec, NSPEC(silence_spec), err);
    if (rc)
        return rc;
    json_t *m = json_object_get(in, "matchers");
    if (json_object_size(m) == 0 || json_object_size(m) > 16)
        return gc_error_set(err, GC_EINVAL, "matchers",
                            "matchers names 1 to 16 labels and the value each must have, e.g. "
                            "{\"alertname\": \"disk-nearly-full\", \"host_id\": \"…\"}");
    const char *k;
    json_t *v;
    json_object_foreach(m, k, v) {
        if (!label_name_ok(k, strlen(k)) || strlen(k) > 63)
            return gc_error_set(err, GC_EINVAL, "matchers", "'%.64s' is not a label name", k);
        if (!json_is_string(v) || strlen(json_string_value(v)) > 255)
            return gc_error_set(err, GC_EINVAL, "matchers",
                                "matchers.%s: expected a string of at most 255 bytes", k);
    }
    int64_t now = gc_now_ms(), starts = now, ends = 0;
    if (gc_json_str(in, "starts_at") && gc_time_parse_rfc3339(gc_json_str(in, "starts_at"), &starts))
        return gc_error_set(err, GC_EINVAL, "starts_at", "starts_at is not an RFC 3339 time");
    bool has_end = gc_json_str(in, "ends_at") != NULL;
    json_t *dur = json_object_get(in, "duration_seconds");
    if (has_end == (dur != NULL))
        return gc_error_set(err, GC_EINVAL, "ends_at",
                            "give either ends_at or duration_seconds (a silence always expires)");
    if (has_end && gc_time_parse_rfc3339(gc_json_str(in, "ends_at"), &ends))
        return gc_error_set(err, GC_EINVAL, "ends_at", "ends_at is not an RFC 3339 time");
    if (dur)
        ends = starts + json_integer_value(dur) * 1000;
    if (ends <= starts || ends <= now)
        return gc_error_set(err, GC_EINVAL, "ends_at", "ends_at must be after starts_at and now");
    if (ends - starts > 90LL * 86400 * 1000)
        return gc_error_set(err, GC_EINVAL, "ends_at", "a silence lasts at most 90 days");
    struct gc_tx *tx;
    rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    char id[GC_ID_LEN + 1];
    gc_id_new(id);
    char *ms = json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS);
    rc = gc_tx_exec(tx,
                    "INSERT INTO silences (id, matchers, comment, created_by, starts_at, ends_at,"
                    " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    GC_ARGS(GC_VTXT(id), GC_VTXT(ms), GC_VTXT(gc_json_str(in, "comment")),
                            GC_VTXT(ctx->who->username), GC_VINT_(starts), GC_VINT_(ends),
                            GC_VINT_(now)),
                    NULL, err);
    free(ms);
    json_t *obj = NULL;
    if (!rc)
        rc = gc_load_by_id(tx, "SELECT " SI_COLS " FROM silences s WHERE s.id = ?", "silence", id,
                           si_json, &obj, NULL, err);
    struct gc_audit_event ev = {.action = "silence.create",
                                .resource_type = "silence",
                                .resource_id = id,
                                .outcome = GC_OUTCOME_SUCCESS,
                                .detail = obj};
    rc = gc_audit_commit(tx, ctx, &ev, rc, err);
    if (rc) {
        json_decref(obj);
        return rc;
    }
    *out = obj;
    return 0;
}

int gc_silence_list(const struct gc_ctx *ctx, json_t *filters, int limit, const char *cursor,
                    json_t **items, char **next_cursor, struct gc_error *err)
{
    static const struct gc_list_filter f[] = {{NULL, NULL}};
    return gc_list_filtered(ctx, GC_P_HOST_READ,
                            "SELECT " SI_COLS " FROM silences s WHERE s.id > ?", "s.id", f,
                            filters, limit, cursor, si_row, items, next_cursor, err);
}

int gc_silence_delete(const struct gc_ctx *ctx, const char *id, int64_t if_match,
                      struct gc_error *err)
{
    (void)if_match;
    int rc = gc_require(ctx->who, GC_P_HOST_WRITE, err);
    struct gc_tx *tx;
    if (!rc)
        rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    json_t *before = NULL;
    rc = gc_load_by_id(tx, "SELECT " SI_COLS " FROM silences s WHERE s.id = ?", "silence", id,
                       si_json, &before, NULL, err);
    int64_t now = gc_now_ms();
    /* it expires now, and stays listed: what was silenced, and until when, is history */
    if (!rc)
        rc = gc_tx_exec(tx,
                        "UPDATE silences SET ends_at = ?, starts_at = MIN(starts_at, ?) WHERE"
                        " id = ? AND ends_at > ?",
                        GC_ARGS(GC_VINT_(now), GC_VINT_(now), GC_VTXT(id), GC_VINT_(now)), NULL,
                        err);
    struct gc_audit_event ev = {.action = "silence.expire",
                                .resource_type = "silence",
                                .resource_id = id,
                                .outcome = GC_OUTCOME_SUCCESS,
                                .detail = before};
    rc = gc_audit_commit(tx, ctx, &ev, rc, err);
    json_decref(before);
    return rc;
}
