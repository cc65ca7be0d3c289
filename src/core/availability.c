/* Availability (可用性): incidents of virtual machines, planned maintenance windows, and the
 * availability of a VM, a department or the platform over any period, as docs/availability.md
 * defines it. Incidents are opened and closed in the same transactions that record what the
 * hypervisors show (reconciliation, lost hosts, jobs), so the figures follow the records. */
#include "core/core.h"

#include "core/asset.h"
#include "core/supdata.h"
#include "core/validate.h"
#include "util/buf.h"
#include "util/mem.h"
#include "util/timeutil.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- incidents ---- */

/* Why a VM that should run does not, from its record; NULL when it is up (or need not be). */
static const char *down_cause(const char *state, const char *power, const char *drift)
{
    if (strcmp(state, "running") != 0)
        return NULL; /* stopped on purpose, being built, moved or deleted: not required up */
    if (strcmp(power, "running") == 0 || strcmp(power, "blocked") == 0 ||
        strcmp(power, "paused") == 0 || strcmp(power, "nostate") == 0)
        return NULL;
    if (strcmp(power, "unknown") == 0)
        return "its host is unreachable: the VM cannot be shown to run";
    if (drift[0])
        return drift;
    return "the domain does not run";
}

int gc_incident_sync(struct gc_tx *tx, const char *type, const char *id, const char *dept,
                     const char *host, const char *cause, const char *end_reason, int64_t now,
                     struct gc_error *err)
{
    int64_t open = 0;
    int rc = gc_tx_query_int(tx,
                             "SELECT COUNT(*) FROM incidents WHERE resource_type = ? AND"
                             " resource_id = ? AND ended_at IS NULL",
                             GC_ARGS(GC_VTXT(type), GC_VTXT(id)), &open, err);
    if (rc)
        return rc;
    if ((cause && !open) || (!cause && open)) {
        /* the built-in incident rules (vm-down, host-down, service-down) raise or resolve
         * their alarm in this transaction; the notification goes with it */
        rc = gc_alarm_incident(tx, type, id, dept, host, cause, end_reason, now, err);
        if (rc)
            return rc;
        /* the supervision dataset "availability": the incident's new seq */
        int64_t seq = 0;
        rc = gc_sup_seq_next(tx, "availability", &seq, err);
        if (rc)
            return rc;
        if (cause) {
            char iid[GC_ID_LEN + 1];
            gc_id_new(iid);
            return gc_tx_exec(tx,
                              "INSERT INTO incidents (id, resource_type, resource_id,"
                              " department_id, host_id, started_at, ended_at, cause, seq)"
                              " VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?)",
                              GC_ARGS(GC_VTXT(iid), GC_VTXT(type), GC_VTXT(id),
                                      GC_VTXT(dept && dept[0] ? dept : NULL),
                                      GC_VTXT(host && host[0] ? host : NULL), GC_VINT_(now),
                                      GC_VTXT(cause), GC_VINT_(seq)),
                              NULL, err);
        }
        /* at most one incident of a resource is open (one is opened only when none is) */
        return gc_tx_exec(tx,
                          "UPDATE incidents SET ended_at = ?, end_reason = ?, seq = ? WHERE"
                          " resource_type = ? AND resource_id = ? AND ended_at IS NULL",
                          GC_ARGS(GC_VINT_(now), GC_VTXT(end_reason), GC_VINT_(seq),
                                  GC_VTXT(type), GC_VTXT(id)),
                          NULL, err);
    }
    return 0;
}

int gc_vm_incident_sync(struct gc_tx *tx, const char *vm, int64_t now, struct gc_error *err)
{
    struct gc_rows *r = NULL;
    int rc = gc_tx_query(tx,
                         "SELECT state, power_state, drift, department_id,"
                         " COALESCE(host_id, '') FROM vms WHERE id = ?",
                         GC_ARGS(GC_VTXT(vm)), &r, err);
    char cause[256] = "", dept[GC_ID_LEN + 1] = "", host[GC_ID_LEN + 1] = "";
    bool exists = false;
    if (!rc && (rc = gc_rows_next(r, err)) > 0) {
        exists = true;
        const char *c = down_cause(gc_rows_text(r, 0), gc_rows_text(r, 1), gc_rows_text(r, 2));
        if (c)
            snprintf(cause, sizeof(cause), "%s", c);
        snprintf(dept, sizeof(dept), "%s", gc_rows_text(r, 3));
        snprintf(host, sizeof(host), "%s", gc_rows_text(r, 4));
        rc = 0;
    }
    gc_rows_free(r);
    if (rc < 0)
        return rc;
    return gc_incident_sync(tx, "vm", vm, dept, host, cause[0] ? cause : NULL,
                            exists ? "the VM runs again, or was stopped on purpose"
                                   : "the VM was deleted",
                            now, err);
}

int gc_vm_lifetime(struct gc_tx *tx, const char *vm, const char *dept, bool created, int64_t now,
                   struct gc_error *err)
{
    if (created)
        return gc_tx_exec(tx,
                          "INSERT INTO vm_lifetimes (vm_id, department_id, created_at,"
                          " deleted_at) VALUES (?, ?, ?, NULL)",
                          GC_ARGS(GC_VTXT(vm), GC_VTXT(dept), GC_VINT_(now)), NULL, err);
    return gc_tx_exec(tx, "UPDATE vm_lifetimes SET deleted_at = ? WHERE vm_id = ?",
                      GC_ARGS(GC_VINT_(now), GC_VTXT(vm)), NULL, err);
}

/* ---- maintenance windows ---- */

#define MW_COLS                                                                               \
    "w.id, w.scope, w.resource_id, w.starts_at, w.ends_at, w.description, w.created_by,"      \
    " w.created_at"

static json_t *mw_json(struct gc_rows *r, char *path)
{
    (void)path;
    json_t *o = json_pack("{s:s,s:s}", "id", gc_rows_text(r, 0), "scope", gc_rows_text(r, 1));
    json_object_set_new(o, "resource_id",
                        gc_rows_null(r, 2) ? json_null() : json_string(gc_rows_text(r, 2)));
    json_object_set_new(o, "starts_at", gc_json_time(gc_rows_int(r, 3)));
    json_object_set_new(o, "ends_at", gc_json_time(gc_rows_int(r, 4)));
    json_object_set_new(o, "description", json_string(gc_rows_text(r, 5)));
    json_object_set_new(o, "created_by",
                        gc_rows_null(r, 6) ? json_null() : json_string(gc_rows_text(r, 6)));
    json_object_set_new(o, "created_at", gc_json_time(gc_rows_int(r, 7)));
    return o;
}

static json_t *mw_row(struct gc_rows *r, const struct gc_principal *who)
{
    (void)who; /* the list is for platform roles only (checked before) */
    return mw_json(r, NULL);
}

static const struct gc_jfield mw_spec[] = {
    {"scope", GC_JT_STRING, true, false, 1, 16, GC_CS_CODE},
    {"resource_id", GC_JT_STRING, false, false, 1, 64, GC_CS_ANY},
    {"starts_at", GC_JT_STRING, true, false, 1, 64, GC_CS_ANY},
    {"ends_at", GC_JT_STRING, true, false, 1, 64, GC_CS_ANY},
    {"description", GC_JT_STRING, false, false, 0, 1024, GC_CS_ANY},
};

int gc_mwindow_create(const struct gc_ctx *ctx, json_t *in, json_t **out, struct gc_error *err)
{
    int rc = gc_require(ctx->who, GC_P_HOST_WRITE, err);
    if (!rc)
        rc = gc_json_check(in, mw_spec, sizeof(mw_spec) / sizeof(mw_spec[0]), err);
    if (rc)
        return rc;
    const char *scope = gc_json_str(in, "scope"), *res = gc_json_str(in, "resource_id");
    int64_t from = 0, to = 0;
    if (strcmp(scope, "platform") && strcmp(scope, "host") && strcmp(scope, "vm"))
        return gc_error_set(err, GC_EINVAL, "scope", "scope must be platform, host or vm");
    if (!strcmp(scope, "platform") != !res)
        return gc_error_set(err, GC_EINVAL, "resource_id",
                            res ? "a platform window names no resource_id"
                                : "a %s window needs the resource_id of the %s",
                            scope, scope);
    if (gc_time_parse_rfc3339(gc_json_str(in, "starts_at"), &from) != 0)
        return gc_error_set(err, GC_EINVAL, "starts_at", "starts_at is not an RFC 3339 time");
    if (gc_time_parse_rfc3339(gc_json_str(in, "ends_at"), &to) != 0)
        return gc_error_set(err, GC_EINVAL, "ends_at", "ends_at is not an RFC 3339 time");
    if (to <= from)
        return gc_error_set(err, GC_EINVAL, "ends_at", "ends_at must be after starts_at");
    if (to - from > 31LL * 24 * 3600 * 1000)
        return gc_error_set(err, GC_EINVAL, "ends_at",
                            "a maintenance window lasts at most 31 days");
    struct gc_tx *tx;
    rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    int64_t found = 1;
    if (res && gc_id_valid(res))
        rc = gc_tx_query_int(tx,
                             !strcmp(scope, "host") ? "SELECT COUNT(*) FROM hosts WHERE id = ?"
                                                    : "SELECT COUNT(*) FROM vms WHERE id = ?",
                             GC_ARGS(GC_VTXT(res)), &found, err);
    else if (res)
        found = 0;
    if (!rc && !found)
        rc = gc_error_set(err, GC_EINVAL, "resource_id", "%s '%.64s' not found", scope, res);
    char id[GC_ID_LEN + 1];
    gc_id_new(id);
    int64_t now = gc_now_ms();
    if (!rc)
        rc = gc_tx_exec(tx,
                        "INSERT INTO maintenance_windows (id, scope, resource_id, starts_at,"
                        " ends_at, description, created_by, created_at) VALUES"
                        " (?, ?, ?, ?, ?, ?, ?, ?)",
                        GC_ARGS(GC_VTXT(id), GC_VTXT(scope), GC_VTXT(res), GC_VINT_(from),
                                GC_VINT_(to), GC_VTXT(gc_json_str(in, "description")
                                                          ? gc_json_str(in, "description")
                                                          : ""),
                                GC_VTXT(ctx->who->user_id[0] ? ctx->who->user_id : NULL),
                                GC_VINT_(now)),
                        NULL, err);
    json_t *obj = NULL;
    if (!rc)
        rc = gc_load_by_id(tx, "SELECT " MW_COLS " FROM maintenance_windows w WHERE w.id = ?",
                           "maintenance window", id, mw_json, &obj, NULL, err);
    struct gc_audit_event ev = {.action = "maintenance_window.create",
                                .resource_type = "maintenance_window",
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

int gc_mwindow_list(const struct gc_ctx *ctx, json_t *filters, int limit, const char *cursor,
                    json_t **items, char **next_cursor, struct gc_error *err)
{
    static const struct gc_list_filter f[] = {
        {"scope", "w.scope"},
        {"resource_id", "w.resource_id"},
        {NULL, NULL}};
    return gc_list_filtered(ctx, GC_P_HOST_READ,
                            "SELECT " MW_COLS " FROM maintenance_windows w WHERE w.id > ?",
                            "w.id", f, filters, limit, cursor, mw_row, items, next_cursor, err);
}

int gc_mwindow_delete(const struct gc_ctx *ctx, const char *id, int64_t if_match,
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
    rc = gc_load_by_id(tx, "SELECT " MW_COLS " FROM maintenance_windows w WHERE w.id = ?",
                       "maintenance window", id, mw_json, &before, NULL, err);
    if (!rc)
        rc = gc_tx_exec(tx, "DELETE FROM maintenance_windows WHERE id = ?",
                        GC_ARGS(GC_VTXT(id)), NULL, err);
    struct gc_audit_event ev = {.action = "maintenance_window.delete",
                                .resource_type = "maintenance_window",
                                .resource_id = id,
                                .outcome = GC_OUTCOME_SUCCESS,
                                .detail = before};
    rc = gc_audit_commit(tx, ctx, &ev, rc, err);
    json_decref(before);
    return rc;
}

/* ---- the figures ---- */

struct span {
    int64_t a, b;
};

static int span_cmp(const void *x, const void *y)
{
    const struct span *p = x, *q = y;
    return p->a < q->a ? -1 : p->a > q->a;
}

/* Length of the union of spans clipped to [a, b) (spans itself is left as it is). */
static int64_t union_len(const struct span *spans, size_t n, int64_t a, int64_t b)
{
    if (n == 0)
        return 0;
    struct span *s = gc_malloc(n * sizeof(*s));
    memcpy(s, spans, n * sizeof(*s));
    qsort(s, n, sizeof(*s), span_cmp);
    int64_t total = 0, cur_a = 0, cur_b = 0;
    bool open = false;
    for (size_t i = 0; i < n; i++) {
        int64_t x = s[i].a < a ? a : s[i].a, y = s[i].b > b ? b : s[i].b;
        if (y <= x)
            continue;
        if (open && x <= cur_b) {
            if (y > cur_b)
                cur_b = y;
            continue;
        }
        if (open)
            total += cur_b - cur_a;
        cur_a = x;
        cur_b = y;
        open = true;
    }
    if (open)
        total += cur_b - cur_a;
    free(s);
    return total;
}

/* The windows that apply to a VM (platform-wide, its own, and those of host, when given),
 * overlapping [a, b): appended to *w. */
static int windows_for(struct gc_tx *tx, const char *vm, const char *host, int64_t a, int64_t b,
                       struct span **w, size_t *n, size_t *cap, struct gc_error *err)
{
    struct gc_rows *r = NULL;
    int rc = gc_tx_query(tx,
                         "SELECT starts_at, ends_at FROM maintenance_windows WHERE"
                         " ends_at > ? AND starts_at < ? AND (scope = 'platform' OR"
                         " (scope = 'vm' AND resource_id = ?) OR (scope = 'host' AND"
                         " resource_id = ?))",
                         GC_ARGS(GC_VINT_(a), GC_VINT_(b), GC_VTXT(vm),
                                 GC_VTXT(host ? host : "")),
                         &r, err);
    while (!rc && (rc = gc_rows_next(r, err)) > 0) {
        rc = 0;
        if (*n == *cap) {
            *cap = *cap ? *cap * 2 : 8;
            *w = gc_realloc(*w, *cap * sizeof(**w));
        }
        (*w)[(*n)++] = (struct span){gc_rows_int(r, 0), gc_rows_int(r, 1)};
    }
    gc_rows_free(r);
    return rc < 0 ? rc : 0;
}

struct tally {
    int64_t required_ms, down_ms, planned_ms;
    int64_t resources, incidents;
};

/* Adds one VM's figures over [from, to): its time in service (its lifetime, less the
 * windows that apply to all of it) and its downtime (its incidents, less every window that
 * applies to them). incidents, when not NULL, gets the VM's incidents in the period. */
static int tally_vm(struct gc_tx *tx, const char *type, const char *vm, int64_t created,
                    int64_t deleted, int64_t from, int64_t to, int64_t now, struct tally *t,
                    json_t *incidents, struct gc_error *err)
{
    int64_t a = created > from ? created : from;
    int64_t end = deleted > 0 ? deleted : now;
    int64_t b = end < to ? end : to;
    if (b <= a)
        return 0;
    struct span *w = NULL;
    size_t n = 0, cap = 0;
    int rc = windows_for(tx, vm, strcmp(type, "host") == 0 ? vm : NULL, a, b, &w, &n, &cap, err);
    int64_t planned = rc ? 0 : union_len(w, n, a, b);
    t->required_ms += (b - a) - planned;
    t->planned_ms += planned;
    t->resources++;
    struct gc_rows *r = NULL;
    if (!rc)
        rc = gc_tx_query(tx,
                         "SELECT id, started_at, ended_at, cause, COALESCE(host_id, ''),"
                         " COALESCE(end_reason, '') FROM incidents WHERE resource_type = ?"
                         " AND resource_id = ? AND started_at < ? AND (ended_at IS NULL OR"
                         " ended_at > ?) ORDER BY started_at",
                         GC_ARGS(GC_VTXT(type), GC_VTXT(vm), GC_VINT_(b), GC_VINT_(a)), &r,
                         err);
    /* the incidents first (one cursor at a time), then the windows of each */
    json_t *rows = json_array();
    while (!rc && (rc = gc_rows_next(r, err)) > 0) {
        rc = 0;
        json_array_append_new(
            rows, json_pack("[sIIsss]", gc_rows_text(r, 0), (json_int_t)gc_rows_int(r, 1),
                            (json_int_t)(gc_rows_null(r, 2) ? -1 : gc_rows_int(r, 2)),
                            gc_rows_text(r, 3), gc_rows_text(r, 4), gc_rows_text(r, 5)));
    }
    gc_rows_free(r);
    r = NULL;
    json_t *list = json_array();
    size_t k;
    json_t *row;
    json_array_foreach(rows, k, row) {
        if (rc < 0)
            break;
        const char *host = json_string_value(json_array_get(row, 4));
        int64_t s = json_integer_value(json_array_get(row, 1));
        int64_t ended = json_integer_value(json_array_get(row, 2));
        int64_t e = ended < 0 ? now : ended;
        int64_t x = s > a ? s : a, y = e < b ? e : b;
        if (y <= x)
            continue;
        /* the windows of the host it was on, too */
        size_t keep = n;
        rc = windows_for(tx, vm, host, x, y, &w, &n, &cap, err);
        int64_t excl = rc ? 0 : union_len(w, n, x, y);
        n = keep;
        t->down_ms += (y - x) - excl;
        t->incidents++;
        json_t *o = json_pack("{s:O,s:s,s:s,s:o,s:o,s:O,s:I,s:I,s:O}", "id",
                              json_array_get(row, 0), "resource_type", type, "resource_id", vm,
                              "started_at", gc_json_time(s), "ended_at",
                              ended < 0 ? json_null() : gc_json_time(e), "cause",
                              json_array_get(row, 3), "downtime_seconds",
                              (json_int_t)(((y - x) - excl) / 1000), "planned_seconds",
                              (json_int_t)(excl / 1000), "end_reason", json_array_get(row, 5));
        json_object_set_new(o, "host_id", host[0] ? json_string(host) : json_null());
        json_array_append_new(list, o);
    }
    json_decref(rows);
    free(w);
    if (incidents && !rc)
        json_array_extend(incidents, list);
    json_decref(list);
    return rc < 0 ? rc : 0;
}

/* The figures of scope (platform, department at path, vm or host id) over [from, to): t the
 * VMs' (or the host's), tc the service checks', th the hosts' (platform only). */
static int compute(struct gc_tx *tx, const char *scope, const char *id, const char *path,
                   int64_t from, int64_t to, int64_t now, struct tally *t, struct tally *tc,
                   struct tally *th, json_t *incidents, struct gc_error *err)
{
    struct gc_rows *r = NULL;
    int rc;
    if (!strcmp(scope, "vm"))
        rc = gc_tx_query(tx,
                         "SELECT vm_id, created_at, COALESCE(deleted_at, 0) FROM vm_lifetimes"
                         " WHERE vm_id = ?",
                         GC_ARGS(GC_VTXT(id)), &r, err);
    else if (!strcmp(scope, "host"))
        rc = gc_tx_query(tx, "SELECT id, created_at, 0 FROM hosts WHERE id = ?",
                         GC_ARGS(GC_VTXT(id)), &r, err);
    else if (!strcmp(scope, "check"))
        rc = gc_tx_query(tx, "SELECT id, created_at, 0 FROM checks WHERE id = ?",
                         GC_ARGS(GC_VTXT(id)), &r, err);
    else if (!strcmp(scope, "department")) {
        char like[GC_DEPT_PATH_MAX + 2];
        snprintf(like, sizeof(like), "%s%%", path);
        rc = gc_tx_query(tx,
                         "SELECT l.vm_id, l.created_at, COALESCE(l.deleted_at, 0) FROM"
                         " vm_lifetimes l JOIN departments d ON d.id = l.department_id WHERE"
                         " d.path LIKE ? AND l.created_at < ? AND (l.deleted_at IS NULL OR"
                         " l.deleted_at > ?) ORDER BY l.vm_id",
                         GC_ARGS(GC_VTXT(like), GC_VINT_(to), GC_VINT_(from)), &r, err);
    } else
        rc = gc_tx_query(tx,
                         "SELECT vm_id, created_at, COALESCE(deleted_at, 0) FROM vm_lifetimes"
                         " WHERE created_at < ? AND (deleted_at IS NULL OR deleted_at > ?)"
                         " ORDER BY vm_id",
                         GC_ARGS(GC_VINT_(to), GC_VINT_(from)), &r, err);
    /* the rows first (one statement open at a time), then each VM's incidents */
    json_t *vms = json_array();
    while (!rc && (rc = gc_rows_next(r, err)) > 0) {
        rc = 0;
        json_array_append_new(vms, json_pack("[sII]", gc_rows_text(r, 0),
                                             (json_int_t)gc_rows_int(r, 1),
                                             (json_int_t)gc_rows_int(r, 2)));
    }
    gc_rows_free(r);
    size_t i;
    json_t *v;
    json_array_foreach(vms, i, v) {
        if (rc < 0)
            break;
        rc = tally_vm(tx, !strcmp(scope, "host") || !strcmp(scope, "check") ? scope : "vm",
                      json_string_value(json_array_get(v, 0)),
                      json_integer_value(json_array_get(v, 1)),
                      json_integer_value(json_array_get(v, 2)), from, to, now, t, incidents,
                      err);
    }
    json_decref(vms);
    /* the department's (or every) service checks, as a second figure: their time in
     * service runs from their creation */
    json_t *checks = json_array();
    if (rc >= 0 && (!strcmp(scope, "platform") || !strcmp(scope, "department"))) {
        char like[GC_DEPT_PATH_MAX + 2];
        snprintf(like, sizeof(like), "%s%%", path);
        rc = gc_tx_query(tx,
                         "SELECT c.id, c.created_at FROM checks c JOIN departments d ON"
                         " d.id = c.department_id WHERE d.path LIKE ? AND c.created_at < ?"
                         " ORDER BY c.id",
                         GC_ARGS(GC_VTXT(like), GC_VINT_(to)), &r, err);
        while (!rc && (rc = gc_rows_next(r, err)) > 0) {
            rc = 0;
            json_array_append_new(checks, json_pack("[sI]", gc_rows_text(r, 0),
                                                    (json_int_t)gc_rows_int(r, 1)));
        }
        gc_rows_free(r);
        json_array_foreach(checks, i, v) {
            if (rc < 0)
                break;
            rc = tally_vm(tx, "check", json_string_value(json_array_get(v, 0)),
                          json_integer_value(json_array_get(v, 1)), 0, from, to, now, tc,
                          NULL, err);
        }
    }
    json_decref(checks);
    /* the platform's hypervisor hosts, as a third figure */
    json_t *hosts = json_array();
    if (rc >= 0 && !strcmp(scope, "platform")) {
        rc = gc_tx_query(tx, "SELECT id, created_at FROM hosts WHERE created_at < ? ORDER BY id",
                         GC_ARGS(GC_VINT_(to)), &r, err);
        while (!rc && (rc = gc_rows_next(r, err)) > 0) {
            rc = 0;
            json_array_append_new(hosts, json_pack("[sI]", gc_rows_text(r, 0),
                                                   (json_int_t)gc_rows_int(r, 1)));
        }
        gc_rows_free(r);
        json_array_foreach(hosts, i, v) {
            if (rc < 0)
                break;
            rc = tally_vm(tx, "host", json_string_value(json_array_get(v, 0)),
                          json_integer_value(json_array_get(v, 1)), 0, from, to, now, th, NULL,
                          err);
        }
    }
    json_decref(hosts);
    return rc < 0 ? rc : 0;
}

static double avail_target = 99.99;

void gc_availability_set_target(double percent)
{
    avail_target = percent;
}

/* A percentage truncated to 6 decimals, and its text to 4: enough digits to tell 99.99 from
 * 99.98, and no more than the data holds. */
static double percent_of(const struct tally *t, char text[32])
{
    double pct = t->required_ms > 0 ? 100.0 * (double)(t->required_ms - t->down_ms) /
                                          (double)t->required_ms
                                    : 100.0;
    pct = floor(pct * 1e6) / 1e6;
    snprintf(text, 32, "%.4f", floor(pct * 1e4) / 1e4);
    return pct;
}

static json_t *sub_figure(const struct tally *t)
{
    char text[32];
    double pct = percent_of(t, text);
    return json_pack("{s:I,s:I,s:I,s:I,s:f,s:s}", "resources", (json_int_t)t->resources,
                     "incidents", (json_int_t)t->incidents, "service_seconds",
                     (json_int_t)(t->required_ms / 1000), "downtime_seconds",
                     (json_int_t)(t->down_ms / 1000), "availability_percent", pct,
                     "availability_text", text);
}

int gc_availability_percent(struct gc_store *st, int64_t from, int64_t to, double *pct,
                            struct gc_error *err)
{
    struct gc_tx *tx;
    int rc = gc_tx_begin(st, GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    struct tally t = {0}, tc = {0}, th = {0};
    rc = compute(tx, "platform", NULL, "", from, to, gc_now_ms(), &t, &tc, &th, NULL, err);
    gc_tx_rollback(tx);
    char text[32];
    if (!rc)
        *pct = percent_of(&t, text);
    return rc;
}

static const struct gc_jfield avail_spec[] = {
    {"scope", GC_JT_STRING, false, false, 1, 16, GC_CS_CODE},
    {"id", GC_JT_STRING, false, false, 1, 64, GC_CS_ANY},
    {"from", GC_JT_STRING, false, false, 1, 64, GC_CS_ANY},
    {"to", GC_JT_STRING, false, false, 1, 64, GC_CS_ANY},
    {"target_percent", GC_JT_STRING, false, false, 1, 16, GC_CS_ANY},
};

/* The first instant of the current month, UTC. */
static int64_t month_start(int64_t now)
{
    time_t t = (time_t)(now / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    tm.tm_mday = 1;
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    return (int64_t)timegm(&tm) * 1000;
}

int gc_availability_get(const struct gc_ctx *ctx, json_t *query, json_t **out,
                        struct gc_error *err)
{
    int rc = gc_json_check(query, avail_spec, sizeof(avail_spec) / sizeof(avail_spec[0]), err);
    if (rc)
        return rc;
    const char *scope = gc_json_str(query, "scope") ? gc_json_str(query, "scope") : "platform";
    const char *id = gc_json_str(query, "id");
    int64_t now = gc_now_ms(), from = month_start(now), to = now;
    if (gc_json_str(query, "from") && gc_time_parse_rfc3339(gc_json_str(query, "from"), &from))
        return gc_error_set(err, GC_EINVAL, "from", "from is not an RFC 3339 time");
    if (gc_json_str(query, "to") && gc_time_parse_rfc3339(gc_json_str(query, "to"), &to))
        return gc_error_set(err, GC_EINVAL, "to", "to is not an RFC 3339 time");
    if (to <= from)
        return gc_error_set(err, GC_EINVAL, "to", "to must be after from");
    if (to - from > 3660LL * 24 * 3600 * 1000)
        return gc_error_set(err, GC_EINVAL, "from", "a period is at most 10 years");
    double target = avail_target;
    if (gc_json_str(query, "target_percent")) {
        char *end = NULL;
        target = strtod(gc_json_str(query, "target_percent"), &end);
        if (!end || *end || !(target > 0 && target <= 100))
            return gc_error_set(err, GC_EINVAL, "target_percent",
                                "target_percent is a number above 0 and at most 100");
    }
    if (strcmp(scope, "platform") && strcmp(scope, "department") && strcmp(scope, "vm") &&
        strcmp(scope, "host") && strcmp(scope, "check"))
        return gc_error_set(err, GC_EINVAL, "scope",
                            "scope must be platform, department, vm, host or check");
    if (!strcmp(scope, "platform") != !id)
        return gc_error_set(err, GC_EINVAL, "id",
                            id ? "the platform scope takes no id"
                               : "scope %s needs the id of the %s",
                            scope, scope);
    if ((!strcmp(scope, "platform") || !strcmp(scope, "host")) &&
        !gc_role_is_platform(ctx->who->role))
        return gc_error_set(err, GC_EPERM, "scope",
                            "the availability of the platform and its hosts is for platform "
                            "roles; ask for your department's (scope=department)");
    struct gc_tx *tx;
    rc = gc_tx_begin(ctx->store, GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    char path[GC_DEPT_PATH_MAX] = "";
    if (!strcmp(scope, "department")) {
        rc = gc_dept_path(tx, gc_id_valid(id) ? id : "-", path, err);
        if (rc == GC_ENOTFOUND || (!rc && !gc_in_scope(ctx->who, path)))
            rc = gc_error_set(err, GC_ENOTFOUND, "id", "department '%.64s' not found", id);
        if (!rc)
            rc = gc_require(ctx->who, GC_P_VM_READ, err);
    } else if (!strcmp(scope, "host")) {
        int64_t n = 0;
        rc = gc_tx_query_int(tx, "SELECT COUNT(*) FROM hosts WHERE id = ?",
                             GC_ARGS(GC_VTXT(id)), &n, err);
        if (!rc && n == 0)
            rc = gc_error_set(err, GC_ENOTFOUND, "id", "host '%.64s' not found", id);
        if (!rc)
            rc = gc_require(ctx->who, GC_P_HOST_READ, err);
    } else if (!strcmp(scope, "check")) {
        /* scoped to its department, as GET /v1/checks/{id}: 404 for those who may not see it */
        struct gc_rows *r = NULL;
        rc = gc_tx_query(tx,
                         "SELECT COALESCE(d.path, '') FROM checks c JOIN departments d ON"
                         " d.id = c.department_id WHERE c.id = ?",
                         GC_ARGS(GC_VTXT(id)), &r, err);
        bool seen = false;
        if (!rc && (rc = gc_rows_next(r, err)) > 0) {
            rc = 0;
            seen = gc_in_scope(ctx->who, gc_rows_text(r, 0));
        }
        gc_rows_free(r);
        if (!rc && !seen)
            rc = gc_error_set(err, GC_ENOTFOUND, "id", "check '%.64s' not found", id);
        if (!rc)
            rc = gc_require(ctx->who, GC_P_VM_READ, err);
    } else if (!strcmp(scope, "vm")) {
        json_t *vm = NULL;
        gc_tx_rollback(tx);
        rc = gc_vm_get(ctx, id, &vm, err);
        json_decref(vm);
        /* a deleted VM keeps its figures for those who may see its department */
        if (rc == GC_ENOTFOUND && gc_id_valid(id)) {
            if (gc_tx_begin(ctx->store, GC_TX_READ, &tx, err) != 0)
                return err->code;
            struct gc_rows *r = NULL;
            int q = gc_tx_query(tx,
                                "SELECT COALESCE(d.path, '') FROM vm_lifetimes l JOIN"
                                " departments d ON d.id = l.department_id WHERE l.vm_id = ?",
                                GC_ARGS(GC_VTXT(id)), &r, err);
            if (!q && gc_rows_next(r, err) > 0 && gc_in_scope(ctx->who, gc_rows_text(r, 0))) {
                gc_error_clear(err);
                rc = gc_require(ctx->who, GC_P_VM_READ, err);
            }
            gc_rows_free(r);
            gc_tx_rollback(tx);
        }
        if (rc)
            return rc;
        rc = gc_tx_begin(ctx->store, GC_TX_READ, &tx, err);
        if (rc)
            return rc;
    }
    if (rc) {
        gc_tx_rollback(tx);
        return rc;
    }
    struct tally t = {0}, tc = {0}, th = {0};
    bool one = !strcmp(scope, "vm") || !strcmp(scope, "host") || !strcmp(scope, "check");
    json_t *incidents = one ? json_array() : NULL;
    rc = compute(tx, scope, id, path, from, to, now, &t, &tc, &th, incidents, err);
    gc_tx_rollback(tx);
    if (rc < 0) {
        json_decref(incidents);
        return rc;
    }
    char text[32];
    double pct = percent_of(&t, text);
    json_t *o = json_pack("{s:s,s:o,s:o,s:o,s:I,s:I,s:I,s:I,s:I,s:f,s:s,s:f,s:b}", "scope",
                          scope, "id", id ? json_string(id) : json_null(), "from",
                          gc_json_time(from), "to", gc_json_time(to), "resources",
                          (json_int_t)t.resources, "incidents", (json_int_t)t.incidents,
                          "service_seconds", (json_int_t)(t.required_ms / 1000),
                          "downtime_seconds", (json_int_t)(t.down_ms / 1000),
                          "planned_seconds", (json_int_t)(t.planned_ms / 1000),
                          "availability_percent", pct, "availability_text", text,
                          "target_percent", target, "target_met", pct >= target);
    if (incidents)
        json_object_set_new(o, "incident_list", incidents);
    if (!strcmp(scope, "platform") || !strcmp(scope, "department"))
        json_object_set_new(o, "checks", sub_figure(&tc));
    if (!strcmp(scope, "platform"))
        json_object_set_new(o, "hosts", sub_figure(&th));
    *out = o;
    return 0;
}

/* ---- reports: a year by month, a month by day ---- */

static const struct gc_jfield report_spec[] = {
    {"scope", GC_JT_STRING, false, false, 1, 16, GC_CS_CODE},
    {"id", GC_JT_STRING, false, false, 1, 64, GC_CS_ANY},
    {"year", GC_JT_STRING, true, false, 4, 4, GC_CS_CODE},
    {"month", GC_JT_STRING, false, false, 1, 2, GC_CS_CODE},
    {"target_percent", GC_JT_STRING, false, false, 1, 16, GC_CS_ANY},
};

static int64_t utc_ms(int year, int month, int day)
{
    struct tm tm = {.tm_year = year - 1900, .tm_mon = month - 1, .tm_mday = day};
    return (int64_t)timegm(&tm) * 1000;
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (!end || *end || end == s || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

static void copy_figure(json_t *dst, json_t *fig)
{
    static const char *const keys[] = {"availability_percent", "availability_text",
                                       "downtime_seconds", "planned_seconds", "service_seconds",
                                       "incidents", "resources", "target_met", NULL};
    for (const char *const *k = keys; *k; k++)
        json_object_set(dst, *k, json_object_get(fig, *k));
}

int gc_availability_report(const struct gc_ctx *ctx, json_t *query, json_t **out,
                           struct gc_error *err)
{
    int rc = gc_json_check(query, report_spec, sizeof(report_spec) / sizeof(report_spec[0]),
                           err);
    if (rc)
        return rc;
    int year, month = 0;
    if (parse_int(gc_json_str(query, "year"), 2000, 2999, &year))
        return gc_error_set(err, GC_EINVAL, "year", "year is a number from 2000 to 2999");
    if (gc_json_str(query, "month") && parse_int(gc_json_str(query, "month"), 1, 12, &month))
        return gc_error_set(err, GC_EINVAL, "month", "month is a number from 1 to 12");
    int64_t now = gc_now_ms();
    int64_t from = month ? utc_ms(year, month, 1) : utc_ms(year, 1, 1);
    int64_t to = month ? utc_ms(month == 12 ? year + 1 : year, month == 12 ? 1 : month + 1, 1)
                       : utc_ms(year + 1, 1, 1);
    if (from >= now)
        return gc_error_set(err, GC_EINVAL, month ? "month" : "year",
                            "the period has not begun yet");
    if (to > now)
        to = now;
    json_t *q = json_deep_copy(query);
    json_object_del(q, "year");
    json_object_del(q, "month");
    char buf[40];
    json_object_set_new(q, "from", gc_json_time(from));
    json_object_set_new(q, "to", gc_json_time(to));
    json_t *total = NULL;
    rc = gc_availability_get(ctx, q, &total, err);
    if (rc) {
        json_decref(q);
        return rc;
    }
    json_t *periods = json_array();
    int n = month ? 31 : 12;
    for (int i = 1; i <= n && !rc; i++) {
        int64_t a = month ? utc_ms(year, month, i) : utc_ms(year, i, 1);
        int64_t b = month ? utc_ms(year, month, i + 1)
                          : utc_ms(i == 12 ? year + 1 : year, i == 12 ? 1 : i + 1, 1);
        if (a >= to || (month && a >= utc_ms(month == 12 ? year + 1 : year,
                                             month == 12 ? 1 : month + 1, 1)))
            break;
        if (b > to)
            b = to;
        json_object_set_new(q, "from", gc_json_time(a));
        json_object_set_new(q, "to", gc_json_time(b));
        json_t *fig = NULL;
        rc = gc_availability_get(ctx, q, &fig, err);
        if (rc)
            break;
        if (month)
            snprintf(buf, sizeof(buf), "%04d-%02d-%02d", year, month, i);
        else
            snprintf(buf, sizeof(buf), "%04d-%02d", year, i);
        json_t *p = json_pack("{s:s,s:o,s:o}", "period", buf, "from", gc_json_time(a), "to",
                              gc_json_time(b));
        copy_figure(p, fig);
        json_decref(fig);
        json_array_append_new(periods, p);
    }
    json_decref(q);
    if (rc) {
        json_decref(periods);
        json_decref(total);
        return rc;
    }
    if (month)
        snprintf(buf, sizeof(buf), "%04d-%02d", year, month);
    else
        snprintf(buf, sizeof(buf), "%04d", year);
    json_t *o = json_pack("{s:O,s:O,s:s,s:s,s:O,s:o,s:o}", "scope",
                          json_object_get(total, "scope"), "id", json_object_get(total, "id"),
                          "period", buf, "granularity", month ? "day" : "month",
                          "target_percent", json_object_get(total, "target_percent"), "from",
                          gc_json_time(from), "to", gc_json_time(to));
    json_t *tot = json_object();
    copy_figure(tot, total);
    json_object_set_new(o, "total", tot);
    json_object_set_new(o, "periods", periods);
    json_decref(total);
    *out = o;
    return 0;
}

/* ---- the availability dataset of the supervision pull (docs/supervision.md) ---- */

#define JDUMP_SORTED (JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(17))

/* One figure: the record's data (availability.json, kind period). */
static json_t *period_data(const char *scope, const char *id, int64_t a, int64_t b,
                           const struct tally *t)
{
    char text[32];
    double pct = percent_of(t, text);
    json_t *o = json_pack("{s:s,s:s,s:o,s:o,s:f,s:I,s:I,s:I,s:I,s:f,s:b}", "kind", "period",
                          "scope", scope, "period_start", gc_json_time(a), "period_end",
                          gc_json_time(b), "percent", pct, "downtime_seconds",
                          (json_int_t)(t->down_ms / 1000), "planned_seconds",
                          (json_int_t)(t->planned_ms / 1000), "service_seconds",
                          (json_int_t)(t->required_ms / 1000), "incidents",
                          (json_int_t)t->incidents, "target_percent", avail_target,
                          "target_met", pct >= avail_target);
    if (id)
        json_object_set_new(o, "resource_id", json_string(id));
    return o;
}

/* Computes the figures to store, in a read transaction: [[id, scope, dept|null, start,
 * data text], …]. */
static int periods_compute(struct gc_store *st, int64_t now, json_t *out, struct gc_error *err)
{
    struct gc_tx *tx;
    int rc = gc_tx_begin(st, GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    int64_t first = 0;
    rc = gc_tx_query_int(tx,
                         "SELECT COALESCE(MIN(t), 0) FROM (SELECT MIN(created_at) AS t FROM"
                         " vm_lifetimes UNION ALL SELECT MIN(created_at) FROM hosts) AS x",
                         GC_NOARGS, &first, err);
    json_t *stored = json_object(), *depts = json_array();
    struct gc_rows *r = NULL;
    if (!rc)
        rc = gc_tx_query(tx, "SELECT id FROM availability_periods", GC_NOARGS, &r, err);
    while (!rc && (rc = gc_rows_next(r, err)) > 0) {
        rc = 0;
        json_object_set_new(stored, gc_rows_text(r, 0), json_true());
    }
    gc_rows_free(r);
    r = NULL;
    if (rc >= 0) {
        rc = gc_tx_query(tx, "SELECT id, path FROM departments ORDER BY id", GC_NOARGS, &r,
                         err);
        while (!rc && (rc = gc_rows_next(r, err)) > 0) {
            rc = 0;
            json_array_append_new(depts, json_pack("[ss]", gc_rows_text(r, 0),
                                                   gc_rows_text(r, 1)));
        }
        gc_rows_free(r);
    }
    if (rc >= 0 && first > 0) {
        rc = 0;
        time_t tt = (time_t)(now / 1000);
        struct tm tm;
        gmtime_r(&tt, &tm);
        int y = tm.tm_year + 1900, m = tm.tm_mon + 1; /* the current month */
        int64_t first_month = month_start(first);
        for (int k = GC_AVAIL_PERIOD_MONTHS; k >= 1 && !rc; k--) {
            int my = y, mm = m - k;
            while (mm < 1) {
                mm += 12;
                my--;
            }
            int64_t a = utc_ms(my, mm, 1);
            int64_t b = utc_ms(mm == 12 ? my + 1 : my, mm == 12 ? 1 : mm + 1, 1);
            if (a < first_month)
                continue;
            char ym[16], id[160];
            snprintf(ym, sizeof(ym), "%04d-%02d", my, mm);
            snprintf(id, sizeof(id), "availability:period:platform:%s", ym);
            if (k > 2 && json_object_get(stored, id))
                continue; /* an older month, computed already */
            struct tally t = {0}, tc = {0}, th = {0};
            rc = compute(tx, "platform", NULL, "", a, b, now, &t, &tc, &th, NULL, err);
            if (rc)
                break;
            json_t *d = period_data("platform", NULL, a, b, &t);
            char *text = json_dumps(d, JDUMP_SORTED);
            json_array_append_new(out, json_pack("[s,s,n,I,s]", id, "platform", (json_int_t)a,
                                                 text));
            free(text);
            json_decref(d);
            size_t i;
            json_t *dp;
            json_array_foreach(depts, i, dp) {
                const char *did = json_string_value(json_array_get(dp, 0));
                struct tally u = {0}, uc = {0}, uh = {0};
                rc = compute(tx, "department", did, json_string_value(json_array_get(dp, 1)), a,
                             b, now, &u, &uc, &uh, NULL, err);
                if (rc)
                    break;
                if (u.resources == 0)
                    continue; /* no VM in the month: no figure */
                snprintf(id, sizeof(id), "availability:period:department:%s:%s", did, ym);
                d = period_data("department", did, a, b, &u);
                text = json_dumps(d, JDUMP_SORTED);
                json_array_append_new(out, json_pack("[s,s,s,I,s]", id, "department", did,
                                                     (json_int_t)a, text));
                free(text);
                json_decref(d);
            }
        }
    }
    gc_tx_rollback(tx);
    json_decref(stored);
    json_decref(depts);
    return rc < 0 ? rc : 0;
}

int gc_availability_periods_update(struct gc_store *st, int64_t now, int64_t *changed,
                                   struct gc_error *err)
{
    if (changed)
        *changed = 0;
    json_t *figs = json_array();
    int rc = periods_compute(st, now, figs, err);
    if (rc || json_array_size(figs) == 0) {
        json_decref(figs);
        return rc;
    }
    struct gc_tx *tx;
    rc = gc_tx_begin(st, GC_TX_WRITE, &tx, err);
    if (rc) {
        json_decref(figs);
        return rc;
    }
    size_t i;
    json_t *f;
    json_array_foreach(figs, i, f) {
        const char *id = json_string_value(json_array_get(f, 0));
        const char *data = json_string_value(json_array_get(f, 4));
        int64_t same = 0;
        rc = gc_tx_query_int(tx,
                             "SELECT COUNT(*) FROM availability_periods WHERE id = ? AND"
                             " data = ?",
                             GC_ARGS(GC_VTXT(id), GC_VTXT(data)), &same, err);
        if (rc)
            break;
        if (same)
            continue; /* recomputed the same: no new record */
        int64_t seq = 0;
        rc = gc_sup_seq_next(tx, "availability", &seq, err);
        if (rc)
            break;
        const char *dept = json_string_value(json_array_get(f, 2));
        rc = gc_tx_exec(tx,
                        "INSERT INTO availability_periods (id, scope, resource_id,"
                        " period_start, data, seq, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
                        " ON CONFLICT (id) DO UPDATE SET data = excluded.data,"
                        " seq = excluded.seq, updated_at = excluded.updated_at",
                        GC_ARGS(GC_VTXT(id), GC_VTXT(json_string_value(json_array_get(f, 1))),
                                GC_VTXT(dept), GC_VINT_(json_integer_value(json_array_get(f, 3))),
                                GC_VTXT(data), GC_VINT_(seq), GC_VINT_(now)),
                        NULL, err);
        if (rc)
            break;
        if (changed)
            (*changed)++;
    }
    json_decref(figs);
    if (rc) {
        gc_tx_rollback(tx);
        return rc;
    }
    return gc_tx_commit(tx, err);
}

static pthread_mutex_t periods_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t periods_last_ms;

int gc_availability_sup_refresh(struct gc_store *st, struct gc_error *err)
{
    int rc = 0;
    pthread_mutex_lock(&periods_lock);
    int64_t now = gc_now_ms();
    if (periods_last_ms == 0 || now - periods_last_ms >= 60000 || now < periods_last_ms) {
        rc = gc_availability_periods_update(st, now, NULL, err);
        if (!rc)
            periods_last_ms = now;
    }
    pthread_mutex_unlock(&periods_lock);
    return rc;
}

int gc_availability_sup_high(struct gc_tx *tx, int64_t *seq, struct gc_error *err)
{
    return gc_sup_seq_high(tx, "availability", seq, err);
}

/* An incident's record data (availability.json, kind incident). */
static json_t *incident_data(struct gc_rows *r)
{
    const char *type = gc_rows_text(r, 3);
    json_t *o = json_pack("{s:s,s:s,s:o,s:o,s:o}", "kind", "incident", "scope",
                          !strcmp(type, "host") || !strcmp(type, "check") ? type : "vm",
                          "resource_id", gc_sup_json_str(gc_rows_text(r, 4), 255), "started_at",
                          gc_json_time(gc_rows_int(r, 6)), "cause",
                          gc_sup_json_str(gc_rows_text(r, 8)[0] ? gc_rows_text(r, 8)
                                                                 : "unknown",
                                          1000));
    if (!gc_rows_null(r, 10) && gc_rows_text(r, 10)[0])
        json_object_set_new(o, "resource_name", gc_sup_json_str(gc_rows_text(r, 10), 255));
    if (!gc_rows_null(r, 5) && gc_id_valid(gc_rows_text(r, 5)))
        json_object_set_new(o, "department_id", json_string(gc_rows_text(r, 5)));
    if (!gc_rows_null(r, 7)) {
        int64_t s = gc_rows_int(r, 6), e = gc_rows_int(r, 7);
        json_object_set_new(o, "ended_at", gc_json_time(e));
        json_object_set_new(o, "duration_seconds", json_integer(e > s ? (e - s) / 1000 : 0));
        if (!gc_rows_null(r, 9))
            json_object_set_new(o, "end_reason", gc_sup_json_str(gc_rows_text(r, 9), 1000));
    }
    return o;
}

int gc_availability_sup_fetch(struct gc_tx *tx, int64_t after, int64_t upto, bool live_only,
                              int max, gc_sup_emit_fn emit, void *cls, struct gc_error *err)
{
    (void)live_only; /* nothing is deleted: incidents and figures stay */
    struct gc_rows *r;
    /* kind, record time, seq, then the incident's columns (NULL for a figure) or the
     * figure's id and data */
    int rc = gc_tx_query(
        tx,
        "SELECT * FROM (SELECT 'i' AS k, COALESCE(i.ended_at, i.started_at) AS t, i.seq AS seq,"
        " i.resource_type, i.resource_id, i.department_id, i.started_at, i.ended_at, i.cause,"
        " i.end_reason, CASE i.resource_type"
        "  WHEN 'vm' THEN (SELECT name FROM vms WHERE id = i.resource_id)"
        "  WHEN 'host' THEN (SELECT name FROM hosts WHERE id = i.resource_id)"
        "  WHEN 'check' THEN (SELECT name FROM checks WHERE id = i.resource_id) END,"
        " i.id AS rid, NULL AS data FROM incidents i WHERE i.seq > ? AND i.seq <= ?"
        " UNION ALL SELECT 'p', p.updated_at, p.seq, NULL, NULL, NULL, 0, NULL, NULL, NULL,"
        " NULL, p.id, p.data FROM availability_periods p WHERE p.seq > ? AND p.seq <= ?)"
        " AS u ORDER BY seq LIMIT ?",
        GC_ARGS(GC_VINT_(after), GC_VINT_(upto), GC_VINT_(after), GC_VINT_(upto),
                GC_VINT_(max)),
        &r, err);
    if (rc)
        return rc;
    while ((rc = gc_rows_next(r, err)) > 0) {
        bool incident = gc_rows_text(r, 0)[0] == 'i';
        char *text = NULL;
        if (incident) {
            json_t *d = incident_data(r);
            text = json_dumps(d, JSON_COMPACT | JSON_REAL_PRECISION(17));
            json_decref(d);
        }
        struct gc_sup_record rec = {.id = gc_rows_text(r, 11),
                                    .seq = gc_rows_int(r, 2),
                                    .time_ms = gc_rows_int(r, 1),
                                    .deleted = false,
                                    .data = incident ? text : gc_rows_text(r, 12)};
        rc = emit(cls, &rec);
        free(text);
        if (rc)
            break;
    }
    gc_rows_free(r);
    return rc > 0 ? 0 : rc;
}
