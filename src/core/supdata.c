/* Providers of the supervision datasets log, alarm and backup (docs/supervision.md): each
 * reads its module's own table in seq order and writes the records of
 * docs/supervision-spec.md. The records are made here, from the rows, so that the modules
 * keep their own representations. */
#include "core/supdata.h"

#include "util/mem.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JOUT (JSON_COMPACT | JSON_REAL_PRECISION(17))

json_t *gc_sup_json_str(const char *s, size_t max)
{
    if (!s)
        s = "";
    size_t n = 0, i = 0;
    while (s[i]) {
        if (n == max)
            break;
        unsigned char c = (unsigned char)s[i];
        size_t len = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
        for (size_t k = 1; k < len; k++)
            if (!s[i + k]) { /* truncated sequence: stop before it */
                len = 0;
                break;
            }
        if (!len)
            break;
        i += len;
        n++;
    }
    json_t *j = json_stringn(s, i);
    return j ? j : json_string("");
}

/* ------------------------------------------------------------------------------------ */
/* log: the audit trail as CADF events */

int gc_log_sup_high(struct gc_tx *tx, int64_t *seq, struct gc_error *err)
{
    return gc_tx_query_int(tx, "SELECT COALESCE(MAX(seq), 0) FROM audit_events", GC_NOARGS, seq,
                           err);
}

enum {
    L_SEQ, L_ID, L_TIME, L_ACTOR_ID, L_ACTOR_NAME, L_ACTOR_ROLE, L_ACTION, L_RTYPE, L_RID,
    L_OUTCOME, L_REASON, L_IP, L_REQ, L_DETAIL, L_HASH
};

static json_t *log_data(struct gc_rows *r)
{
    const char *outcome = gc_rows_text(r, L_OUTCOME);
    bool ok = !strcmp(outcome, "success"), denied = !strcmp(outcome, "denied");
    const char *actor_id = gc_rows_text(r, L_ACTOR_ID);
    const char *actor_name = gc_rows_text(r, L_ACTOR_NAME);
    if (!actor_name[0])
        actor_name = "anonymous";
    json_t *init = json_pack("{s:o,s:o,s:s}", "id",
                             gc_sup_json_str(actor_id[0] ? actor_id : actor_name, 128), "name",
                             gc_sup_json_str(actor_name, 255), "type",
                             actor_id[0] ? "service/security/account/user"
                             : strncmp(actor_name, "system", 6) == 0 ? "service"
                                                                     : "unknown");
    if (gc_rows_text(r, L_ACTOR_ROLE)[0])
        json_object_set_new(init, "role", gc_sup_json_str(gc_rows_text(r, L_ACTOR_ROLE), 64));
    if (gc_rows_text(r, L_IP)[0])
        json_object_set_new(init, "address", gc_sup_json_str(gc_rows_text(r, L_IP), 64));

    const char *rtype = gc_rows_text(r, L_RTYPE), *rid = gc_rows_text(r, L_RID);
    if (!rtype[0])
        rtype = "unknown";
    json_t *target = json_pack("{s:o,s:o}", "id", gc_sup_json_str(rid[0] ? rid : rtype, 255),
                               "type", gc_sup_json_str(rtype, 128));
    json_t *detail = json_loads(gc_rows_text(r, L_DETAIL), 0, NULL);
    const char *tname = json_string_value(json_object_get(detail, "name"));
    if (tname && tname[0])
        json_object_set_new(target, "name", gc_sup_json_str(tname, 255));
    json_decref(detail);

    json_t *o = json_pack(
        "{s:s,s:s,s:s,s:o,s:o,s:s,s:s,s:o,s:o,s:{s:s,s:s,s:s}}", "id", gc_rows_text(r, L_ID),
        "type_uri", "http://schemas.dmtf.org/cloud/audit/1.0/event", "event_type",
        denied ? "control" : "activity", "event_time", gc_json_time(gc_rows_int(r, L_TIME)),
        "action", gc_sup_json_str(gc_rows_text(r, L_ACTION), 128), "outcome",
        ok ? "success" : "failure", "severity", ok ? "notice" : denied ? "warning" : "error",
        "initiator", init, "target", target, "observer", "id", "govcloudd", "type",
        "service/management", "name", "govcloudd");
    if (!ok || gc_rows_text(r, L_REASON)[0]) {
        json_t *reason = json_pack("{s:s}", "code", ok ? "success" : outcome);
        if (gc_rows_text(r, L_REASON)[0])
            json_object_set_new(reason, "detail",
                                gc_sup_json_str(gc_rows_text(r, L_REASON), 2000));
        json_object_set_new(o, "reason", reason);
    }
    if (gc_rows_text(r, L_REQ)[0])
        json_object_set_new(o, "request_id", gc_sup_json_str(gc_rows_text(r, L_REQ), 128));
    const char *hash = gc_rows_text(r, L_HASH);
    if (strlen(hash) == 64)
        json_object_set_new(o, "chain_hash", json_string(hash));
    return o;
}

int gc_log_sup_fetch(struct gc_tx *tx, int64_t after, int64_t upto, bool live_only, int max,
                     gc_sup_emit_fn emit, void *cls, struct gc_error *err)
{
    (void)live_only; /* audit events are never deleted */
    struct gc_rows *r;
    int rc = gc_tx_query(tx,
                         "SELECT seq, id, time, COALESCE(actor_id, ''), actor_name, actor_role,"
                         " action, resource_type, COALESCE(resource_id, ''), outcome, reason,"
                         " source_ip, request_id, detail, hash FROM audit_events"
                         " WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
                         GC_ARGS(GC_VINT_(after), GC_VINT_(upto), GC_VINT_(max)), &r, err);
    if (rc)
        return rc;
    while ((rc = gc_rows_next(r, err)) > 0) {
        json_t *d = log_data(r);
        char *text = json_dumps(d, JOUT);
        json_decref(d);
        struct gc_sup_record rec = {.id = gc_rows_text(r, L_ID),
                                    .seq = gc_rows_int(r, L_SEQ),
                                    .time_ms = gc_rows_int(r, L_TIME),
                                    .data = text};
        rc = emit(cls, &rec);
        free(text);
        if (rc)
            break;
    }
    gc_rows_free(r);
    return rc > 0 ? 0 : rc;
}

/* ------------------------------------------------------------------------------------ */
/* alarm: Alertmanager-shaped */

int gc_alarm_sup_high(struct gc_tx *tx, int64_t *seq, struct gc_error *err)
{
    return gc_sup_seq_high(tx, "alarm", seq, err);
}

enum {
    A_ID, A_FP, A_NAME, A_STATUS, A_SEV, A_LABELS, A_SUMMARY, A_REASON, A_VALUE, A_THRESHOLD,
    A_STARTED, A_ENDED, A_END_REASON, A_ACKED_BY, A_ACKED_AT, A_UPDATED, A_SEQ
};

/* A number kept as text, or NULL when there is none (or it is not finite). */
static json_t *num_of(struct gc_rows *r, int col)
{
    if (gc_rows_null(r, col))
        return NULL;
    const char *s = gc_rows_text(r, col);
    char *end = NULL;
    double v = strtod(s, &end);
    if (!s[0] || !end || *end || !isfinite(v))
        return NULL;
    return json_real(v);
}

static json_t *alarm_data(struct gc_rows *r)
{
    /* govcloud's severities to the specification's: minor is between major and warning;
     * it goes to warning (docs/supervision.md) */
    const char *sev = gc_rows_text(r, A_SEV);
    if (strcmp(sev, "critical") && strcmp(sev, "major") && strcmp(sev, "warning") &&
        strcmp(sev, "info"))
        sev = "warning";
    const char *status = strcmp(gc_rows_text(r, A_STATUS), "resolved") ? "firing" : "resolved";
    json_t *o = json_pack("{s:o,s:o,s:s,s:s,s:o}", "fingerprint",
                          gc_sup_json_str(gc_rows_text(r, A_FP), 64), "name",
                          gc_sup_json_str(gc_rows_text(r, A_NAME), 255), "status", status,
                          "severity", sev, "starts_at", gc_json_time(gc_rows_int(r, A_STARTED)));
    json_t *stored = json_loads(gc_rows_text(r, A_LABELS), 0, NULL);
    json_t *labels = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(stored, k, v) {
        if (json_object_size(labels) == 64)
            break;
        if (!k[0] || strlen(k) > 128)
            continue;
        if (json_is_string(v))
            json_object_set_new(labels, k, gc_sup_json_str(json_string_value(v), 1024));
        else if (!json_is_null(v)) {
            char *t = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
            json_object_set_new(labels, k, gc_sup_json_str(t, 1024));
            free(t);
        }
    }
    json_t *ann = json_object();
    if (gc_rows_text(r, A_SUMMARY)[0])
        json_object_set_new(ann, "summary", gc_sup_json_str(gc_rows_text(r, A_SUMMARY), 1024));
    if (gc_rows_text(r, A_REASON)[0])
        json_object_set_new(ann, "description",
                            gc_sup_json_str(gc_rows_text(r, A_REASON), 4096));
    if (!gc_rows_null(r, A_ENDED) && gc_rows_text(r, A_END_REASON)[0])
        json_object_set_new(ann, "end_reason",
                            gc_sup_json_str(gc_rows_text(r, A_END_REASON), 4096));
    if (json_object_size(ann))
        json_object_set_new(o, "annotations", ann);
    else
        json_decref(ann);
    if (!gc_rows_null(r, A_ENDED) && !strcmp(status, "resolved"))
        json_object_set_new(o, "ends_at", gc_json_time(gc_rows_int(r, A_ENDED)));
    json_t *n = num_of(r, A_THRESHOLD);
    if (n)
        json_object_set_new(o, "threshold", n);
    n = num_of(r, A_VALUE);
    if (n)
        json_object_set_new(o, "observed_value", n);
    /* the resource: an incident alarm's, else the host or VM of the series */
    const char *rt = json_string_value(json_object_get(labels, "resource_type"));
    const char *ri = json_string_value(json_object_get(labels, "resource_id"));
    if (!(rt && ri && rt[0] && ri[0])) {
        rt = NULL;
        static const char *const keys[][2] = {{"vm_id", "vm"}, {"host_id", "host"},
                                              {"sensor_id", "sensor"}, {"check_id", "check"}};
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]) && !rt; i++) {
            ri = json_string_value(json_object_get(labels, keys[i][0]));
            if (ri && ri[0])
                rt = keys[i][1];
        }
    }
    if (rt && ri && ri[0])
        json_object_set_new(o, "resource",
                            json_pack("{s:o,s:o}", "type", gc_sup_json_str(rt, 64), "id",
                                      gc_sup_json_str(ri, 255)));
    if (json_object_size(labels))
        json_object_set_new(o, "labels", labels);
    else
        json_decref(labels);
    json_decref(stored);
    if (!gc_rows_null(r, A_ACKED_BY) && gc_rows_text(r, A_ACKED_BY)[0]) {
        json_object_set_new(o, "acknowledged_by", gc_sup_json_str(gc_rows_text(r, A_ACKED_BY), 255));
        if (!gc_rows_null(r, A_ACKED_AT))
            json_object_set_new(o, "acknowledged_at", gc_json_time(gc_rows_int(r, A_ACKED_AT)));
    }
    return o;
}

int gc_alarm_sup_fetch(struct gc_tx *tx, int64_t after, int64_t upto, bool live_only, int max,
                       gc_sup_emit_fn emit, void *cls, struct gc_error *err)
{
    (void)live_only; /* alarms are kept: firing and resolved ones alike */
    struct gc_rows *r;
    int rc = gc_tx_query(tx,
                         "SELECT id, fingerprint, rule_name, status, severity, labels, summary,"
                         " reason, value, threshold, started_at, ended_at, end_reason,"
                         " acked_by, acked_at, updated_at, seq FROM alarms"
                         " WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
                         GC_ARGS(GC_VINT_(after), GC_VINT_(upto), GC_VINT_(max)), &r, err);
    if (rc)
        return rc;
    while ((rc = gc_rows_next(r, err)) > 0) {
        json_t *d = alarm_data(r);
        char *text = json_dumps(d, JOUT);
        json_decref(d);
        char id[GC_ID_LEN + 16];
        snprintf(id, sizeof(id), "alarm:%s", gc_rows_text(r, A_ID));
        struct gc_sup_record rec = {.id = id,
                                    .seq = gc_rows_int(r, A_SEQ),
                                    .time_ms = gc_rows_int(r, A_UPDATED),
                                    .data = text};
        rc = emit(cls, &rec);
        free(text);
        if (rc)
            break;
    }
    gc_rows_free(r);
    return rc > 0 ? 0 : rc;
}

/* ------------------------------------------------------------------------------------ */
/* backup: reserved by specification 1.0 until govcloud has backups */

int gc_backup_sup_high(struct gc_tx *tx, int64_t *seq, struct gc_error *err)
{
    (void)tx;
    (void)err;
    *seq = 0;
    return 0;
}

int gc_backup_sup_fetch(struct gc_tx *tx, int64_t after, int64_t upto, bool live_only, int max,
                        gc_sup_emit_fn emit, void *cls, struct gc_error *err)
{
    (void)tx, (void)after, (void)upto, (void)live_only, (void)max, (void)emit, (void)cls;
    (void)err;
    return 0;
}
