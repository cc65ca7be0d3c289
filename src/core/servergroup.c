/* Server groups: a department's way to ask placement for affinity (the members on one host,
 * e.g. for low latency) or anti-affinity (each member on a different host, so that one host
 * failing takes down at most one member — what a highly available service needs). */
#include "core/core.h"

#include "core/validate.h"
#include "util/buf.h"
#include "util/mem.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <string.h>

#define SGR_COLS                                                                              \
    "g.id, g.name, g.department_id, g.policy, g.created_at, g.updated_at, g.version,"         \
    " COALESCE(d.path, ''), (SELECT COUNT(*) FROM vms v WHERE v.server_group_id = g.id)"
#define SGR_FROM " FROM server_groups g JOIN departments d ON d.id = g.department_id"

static json_t *sgr_json(struct gc_rows *r, char *path)
{
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:I,s:o,s:o,s:I}", "id", gc_rows_text(r, 0), "name",
                          gc_rows_text(r, 1), "department_id", gc_rows_text(r, 2), "policy",
                          gc_rows_text(r, 3), "members", (json_int_t)gc_rows_int(r, 8),
                          "created_at", gc_json_time(gc_rows_int(r, 4)), "updated_at",
                          gc_json_time(gc_rows_int(r, 5)), "version",
                          (json_int_t)gc_rows_int(r, 6));
    if (path)
        snprintf(path, GC_DEPT_PATH_MAX, "%s", gc_rows_text(r, 7));
    return o;
}

static int load(struct gc_tx *tx, const char *id, json_t **out, char *path, struct gc_error *err)
{
    return gc_load_by_id(tx, "SELECT " SGR_COLS SGR_FROM " WHERE g.id = ?", "server group", id, sgr_json, out, path, err);
}

static const struct gc_jfield create_spec[] = {
    {"name", GC_JT_STRING, true, false, 1, 64, GC_CS_CODE},
    {"policy", GC_JT_STRING, true, false, 1, 16, GC_CS_CODE},
    {"department_id", GC_JT_STRING, false, false, 1, 64, GC_CS_ANY},
};

int gc_sgroup_create(const struct gc_ctx *ctx, json_t *in, json_t **out, struct gc_error *err)
{
    int rc = gc_require(ctx->who, GC_P_VM_WRITE, err);
    if (!rc)
        rc = gc_json_check(in, create_spec, sizeof(create_spec) / sizeof(create_spec[0]), err);
    if (rc)
        return rc;
    const char *policy = gc_json_str(in, "policy");
    if (strcmp(policy, "affinity") && strcmp(policy, "anti-affinity"))
        return gc_error_set(err, GC_EINVAL, "policy", "policy must be affinity or anti-affinity");
    const char *dept = gc_json_str(in, "department_id");
    if (!dept && !ctx->who->department_id[0])
        return gc_error_set(err, GC_EINVAL, "department_id",
                            "give the department_id the server group belongs to");
    if (!dept)
        dept = ctx->who->department_id;
    struct gc_tx *tx;
    rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    char path[GC_DEPT_PATH_MAX], id[GC_ID_LEN + 1];
    rc = gc_dept_path(tx, dept, path, err);
    if (rc == GC_ENOTFOUND || (!rc && !gc_in_scope(ctx->who, path)))
        rc = gc_error_set(err, GC_EINVAL, "department_id", "department '%.64s' not found", dept);
    gc_id_new(id);
    int64_t now = gc_now_ms();
    if (!rc)
        rc = gc_tx_exec(tx,
                        "INSERT INTO server_groups (id, name, department_id, policy, created_at,"
                        " updated_at, version) VALUES (?, ?, ?, ?, ?, ?, 1)",
                        GC_ARGS(GC_VTXT(id), GC_VTXT(gc_json_str(in, "name")), GC_VTXT(dept),
                                GC_VTXT(policy), GC_VINT_(now), GC_VINT_(now)),
                        NULL, err);
    if (rc == GC_ECONFLICT)
        rc = gc_error_set(err, GC_ECONFLICT, "name",
                          "the department already has a server group named '%s'",
                          gc_json_str(in, "name"));
    json_t *obj = NULL;
    if (!rc)
        rc = load(tx, id, &obj, NULL, err);
    if (!rc) {
        struct gc_audit_event ev = {.action = "server_group.create",
                                    .resource_type = "server_group",
                                    .resource_id = id,
                                    .department_id = dept,
                                    .department_path = path,
                                    .outcome = GC_OUTCOME_SUCCESS,
                                    .detail = obj};
        rc = gc_audit_append(tx, ctx, &ev, err);
    }
    if (rc) {
        gc_tx_rollback(tx);
        json_decref(obj);
        return rc;
    }
    rc = gc_tx_commit(tx, err);
    if (rc) {
        json_decref(obj);
        return rc;
    }
    *out = obj;
    return 0;
}

int gc_sgroup_get(const struct gc_ctx *ctx, const char *id, json_t **out, struct gc_error *err)
{
    return gc_get_scoped(ctx, load, GC_P_VM_READ, "server group", id, out, err);
}

static json_t *sgr_row(struct gc_rows *r, const struct gc_principal *who)
{
    char path[GC_DEPT_PATH_MAX];
    json_t *o = sgr_json(r, path);
    if (!gc_in_scope(who, path)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int gc_sgroup_list(const struct gc_ctx *ctx, json_t *filters, int limit, const char *cursor,
                   json_t **items, char **next_cursor, struct gc_error *err)
{
    static const struct gc_list_filter f[] = {
        {"department_id", "g.department_id"},
        {NULL, NULL}};
    return gc_list_filtered(ctx, GC_P_VM_READ,
                            "SELECT " SGR_COLS SGR_FROM " WHERE g.id > ?", "g.id",
                            f, filters, limit, cursor, sgr_row, items, next_cursor, err);
}

int gc_sgroup_delete(const struct gc_ctx *ctx, const char *id, int64_t if_match,
                     struct gc_error *err)
{
    struct gc_tx *tx;
    int rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    char path[GC_DEPT_PATH_MAX];
    json_t *obj = NULL;
    rc = load(tx, id, &obj, path, err);
    if (!rc)
        rc = gc_authorize(ctx->who, GC_P_VM_WRITE, path, "server group", id, err);
    int64_t v = obj ? json_integer_value(json_object_get(obj, "version")) : 0;
    if (!rc && if_match >= 0 && if_match != v)
        rc = gc_error_set(err, GC_EPRECOND, "If-Match", "server group '%s' is at version %lld",
                          id, (long long)v);
    if (!rc && json_integer_value(json_object_get(obj, "members")) > 0)
        rc = gc_error_set(err, GC_ECONFLICT, "id",
                          "server group '%s' still has %lld virtual machines", id,
                          (long long)json_integer_value(json_object_get(obj, "members")));
    if (!rc)
        rc = gc_tx_exec(tx, "DELETE FROM server_groups WHERE id = ?", GC_ARGS(GC_VTXT(id)), NULL,
                        err);
    if (!rc) {
        struct gc_audit_event ev = {.action = "server_group.delete",
                                    .resource_type = "server_group",
                                    .resource_id = id,
                                    .department_id = gc_json_str(obj, "department_id"),
                                    .department_path = path,
                                    .outcome = GC_OUTCOME_SUCCESS,
                                    .detail = obj};
        rc = gc_audit_append(tx, ctx, &ev, err);
    }
    json_decref(obj);
    if (rc) {
        gc_tx_rollback(tx);
        return rc;
    }
    return gc_tx_commit(tx, err);
}

int gc_sgroup_policy(struct gc_tx *tx, const char *vm_dept_path, const char *id, char *policy,
                     struct gc_error *err)
{
    char path[GC_DEPT_PATH_MAX];
    json_t *obj = NULL;
    int rc = load(tx, id, &obj, path, err);
    /* a group of the VM's own department only: its members are that department's VMs */
    if (rc == GC_ENOTFOUND || (!rc && strcmp(path, vm_dept_path) != 0))
        rc = gc_error_set(err, GC_EINVAL, "server_group_id",
                          "server group '%.64s' not found in the VM's department", id);
    if (!rc)
        snprintf(policy, 16, "%s", gc_json_str(obj, "policy"));
    json_decref(obj);
    return rc;
}
