/* Public IP addresses (公网IP): an address of an external network, allocated to a department
 * (counted against its public_ips quota, in the allocating transaction) and associated with
 * at most one of its VMs, as an interface of the VM on the external network whose DHCP
 * reservation pins that address. The interface is attached by a job. */
#include "core/core.h"

#include "core/validate.h"
#include "util/buf.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <string.h>

#define PIP_COLS                                                                             \
    "p.id, p.address, p.network_id, p.department_id, p.vm_id, p.state, p.last_error,"        \
    " p.created_at, p.updated_at, p.version, COALESCE(d.path, ''),"                          \
    " (SELECT x.mac FROM vm_nics x WHERE x.vm_id = p.vm_id AND x.network_id = p.network_id"  \
    " AND x.ipv4 = p.address)"
#define PIP_FROM " FROM public_ips p JOIN departments d ON d.id = p.department_id"

static json_t *pip_json(struct gc_rows *r, char *path)
{
    json_t *o = json_object();
    static const char *const text[] = {"id", "address", "network_id", "department_id"};
    for (int i = 0; i < 4; i++)
        json_object_set_new(o, text[i], json_string(gc_rows_text(r, i)));
    json_object_set_new(o, "vm_id",
                        gc_rows_null(r, 4) ? json_null() : json_string(gc_rows_text(r, 4)));
    json_object_set_new(o, "mac",
                        gc_rows_null(r, 11) ? json_null() : json_string(gc_rows_text(r, 11)));
    json_object_set_new(o, "state", json_string(gc_rows_text(r, 5)));
    json_object_set_new(o, "last_error", json_string(gc_rows_text(r, 6)));
    json_object_set_new(o, "created_at", gc_json_time(gc_rows_int(r, 7)));
    json_object_set_new(o, "updated_at", gc_json_time(gc_rows_int(r, 8)));
    json_object_set_new(o, "version", json_integer(gc_rows_int(r, 9)));
    if (path)
        snprintf(path, GC_DEPT_PATH_MAX, "%s", gc_rows_text(r, 10));
    return o;
}

static int load(struct gc_tx *tx, const char *id, json_t **out, char *path, struct gc_error *err)
{
    return gc_load_by_id(tx, "SELECT " PIP_COLS PIP_FROM " WHERE p.id = ?", "public IP", id,
                         pip_json, out, path, err);
}

static int finish(struct gc_tx *tx, const struct gc_ctx *ctx, const char *action,
                  const char *id, const char *dept, const char *path, json_t *detail, int rc,
                  struct gc_error *err)
{
    if (!rc) {
        struct gc_audit_event ev = {.action = action,
                                    .resource_type = "public_ip",
                                    .resource_id = id,
                                    .department_id = dept,
                                    .department_path = path,
                                    .outcome = GC_OUTCOME_SUCCESS,
                                    .detail = detail};
        rc = gc_audit_append(tx, ctx, &ev, err);
    }
    if (rc) {
        gc_tx_rollback(tx);
        return rc;
    }
    return gc_tx_commit(tx, err);
}

static const struct gc_jfield create_spec[] = {
    {"network_id", GC_JT_STRING, true, false, 1, 64, GC_CS_ANY},
    {"department_id", GC_JT_STRING, false, false, 1, 64, GC_CS_ANY},
};

int gc_pip_create(const struct gc_ctx *ctx, json_t *in, json_t **out, struct gc_error *err)
{
    int rc = gc_require(ctx->who, GC_P_VM_WRITE, err);
    if (!rc)
        rc = gc_json_check(in, create_spec, sizeof(create_spec) / sizeof(create_spec[0]), err);
    if (rc)
        return rc;
    const char *dept = gc_json_str(in, "department_id");
    const char *net = gc_json_str(in, "network_id");
    if (!dept && !ctx->who->department_id[0])
        return gc_error_set(err, GC_EINVAL, "department_id",
                            "give the department_id the public IP is for");
    if (!dept)
        dept = ctx->who->department_id;
    struct gc_tx *tx;
    rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    char path[GC_DEPT_PATH_MAX] = "", id[GC_ID_LEN + 1], addr[64] = "";
    rc = gc_dept_path(tx, dept, path, err);
    if (rc == GC_ENOTFOUND || (!rc && !gc_in_scope(ctx->who, path)))
        rc = gc_error_set(err, GC_EINVAL, "department_id", "department '%.64s' not found", dept);
    /* the quota and the address in the transaction that records them: parallel requests
     * neither overshoot the quota nor get one address twice */
    if (!rc)
        rc = gc_quota_check_public_ip(tx, path, err);
    if (!rc && !gc_id_valid(net))
        rc = gc_error_set(err, GC_EINVAL, "network_id", "network '%.64s' not found", net);
    if (!rc)
        rc = gc_net_pick_public(tx, net, addr, sizeof(addr), err);
    gc_id_new(id);
    int64_t now = gc_now_ms();
    if (!rc)
        rc = gc_tx_exec(tx,
                        "INSERT INTO public_ips (id, network_id, address, department_id, state,"
                        " created_at, updated_at, version)"
                        " VALUES (?, ?, ?, ?, 'available', ?, ?, 1)",
                        GC_ARGS(GC_VTXT(id), GC_VTXT(net), GC_VTXT(addr), GC_VTXT(dept),
                                GC_VINT_(now), GC_VINT_(now)),
                        NULL, err);
    json_t *obj = NULL;
    if (!rc)
        rc = load(tx, id, &obj, NULL, err);
    rc = finish(tx, ctx, "public_ip.create", id, dept, path, obj, rc, err);
    if (rc) {
        json_decref(obj);
        return rc;
    }
    *out = obj;
    return 0;
}

int gc_pip_get(const struct gc_ctx *ctx, const char *id, json_t **out, struct gc_error *err)
{
    return gc_get_scoped(ctx, load, GC_P_VM_READ, "public IP", id, out, err);
}

static json_t *pip_row(struct gc_rows *r, const struct gc_principal *who)
{
    char path[GC_DEPT_PATH_MAX];
    json_t *o = pip_json(r, path);
    if (!gc_in_scope(who, path)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int gc_pip_list(const struct gc_ctx *ctx, json_t *filters, int limit, const char *cursor,
                json_t **items, char **next_cursor, struct gc_error *err)
{
    static const struct gc_list_filter f[] = {{"department_id", "p.department_id"},
                                               {"network_id", "p.network_id"},
                                               {"vm_id", "p.vm_id"},
                                               {"state", "p.state"}, {NULL, NULL}};
    return gc_list_filtered(ctx, GC_P_VM_READ,
                            "SELECT " PIP_COLS PIP_FROM " WHERE p.id > ?", "p.id",
                            f, filters, limit, cursor, pip_row, items, next_cursor, err);
}

/* Loads the public IP for a change: visible, writable, no job of its own running. */
static int load_for_change(struct gc_tx *tx, const struct gc_ctx *ctx, const char *id,
                           json_t **obj, char *path, char *dept, struct gc_error *err)
{
    int rc = load(tx, id, obj, path, err);
    if (!rc)
        rc = gc_authorize(ctx->who, GC_P_VM_WRITE, path, "public IP", id, err);
    if (!rc)
        rc = gc_job_busy(tx, "public_ip", id, "public IP", err);
    if (*obj)
        snprintf(dept, GC_ID_LEN + 1, "%s", gc_json_str(*obj, "department_id"));
    return rc;
}

int gc_pip_delete(const struct gc_ctx *ctx, const char *id, int64_t if_match,
                  struct gc_error *err)
{
    struct gc_tx *tx;
    int rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    char path[GC_DEPT_PATH_MAX] = "", dept[GC_ID_LEN + 1] = "";
    json_t *obj = NULL;
    rc = load_for_change(tx, ctx, id, &obj, path, dept, err);
    int64_t v = obj ? json_integer_value(json_object_get(obj, "version")) : 0;
    if (!rc && if_match >= 0 && if_match != v)
        rc = gc_error_set(err, GC_EPRECOND, "If-Match", "public IP '%s' is at version %lld, not %lld",
                          id, (long long)v, (long long)if_match);
    const char *state = obj ? gc_json_str(obj, "state") : "";
    if (!rc && strcmp(state, "available") != 0)
        rc = gc_error_set(err, GC_ECONFLICT, "id",
                          "public IP '%s' is %s: disassociate it before releasing it", id,
                          state);
    if (!rc)
        rc = gc_tx_exec(tx, "DELETE FROM public_ips WHERE id = ?", GC_ARGS(GC_VTXT(id)), NULL,
                        err);
    rc = finish(tx, ctx, "public_ip.delete", id, dept, path, obj, rc, err);
    json_decref(obj);
    return rc;
}

/* The VM a public IP is to be associated with: in the IP's department or below it, visible
 * to the caller, placed, neither building nor deleting, with room for one more interface. */
static int check_vm(struct gc_tx *tx, const struct gc_ctx *ctx, const char *vm,
                    const char *ip_path, struct gc_error *err)
{
    struct gc_rows *r = NULL;
    int rc = gc_id_valid(vm) ? gc_tx_query(tx,
                                           "SELECT COALESCE(d.path, ''), v.state,"
                                           " v.host_id IS NULL, (SELECT COUNT(*) FROM vm_nics x"
                                           " WHERE x.vm_id = v.id) FROM vms v JOIN departments d"
                                           " ON d.id = v.department_id WHERE v.id = ?",
                                           GC_ARGS(GC_VTXT(vm)), &r, err)
                             : GC_ENOTFOUND;
    int found = rc ? 0 : gc_rows_next(r, err);
    if (found < 0) {
        gc_rows_free(r);
        return found;
    }
    if (rc == GC_ENOTFOUND || (!rc && found == 0) ||
        (!rc && (strncmp(gc_rows_text(r, 0), ip_path, strlen(ip_path)) != 0 ||
                 !gc_in_scope(ctx->who, gc_rows_text(r, 0))))) {
        gc_rows_free(r);
        return gc_error_set(err, GC_EINVAL, "vm_id",
                            "virtual machine '%.64s' not found in the public IP's department",
                            vm);
    }
    if (rc)
        return rc;
    const char *state = gc_rows_text(r, 1);
    if (!strcmp(state, "building") || !strcmp(state, "deleting") || gc_rows_int(r, 2))
        rc = gc_error_set(err, GC_ECONFLICT, "vm_id", "virtual machine '%s' is %s", vm, state);
    else if (gc_rows_int(r, 3) >= 4)
        rc = gc_error_set(err, GC_ECONFLICT, "vm_id",
                          "virtual machine '%s' has 4 network interfaces, the most it can have",
                          vm);
    gc_rows_free(r);
    if (!rc)
        rc = gc_job_busy(tx, "vm", vm, "virtual machine", err);
    return rc;
}

static const struct gc_jfield associate_spec[] = {
    {"vm_id", GC_JT_STRING, true, false, 1, 64, GC_CS_ANY}};

int gc_pip_action(const struct gc_ctx *ctx, const char *id, const char *action, json_t *in,
                  json_t **out, struct gc_error *err)
{
    bool associate = strcmp(action, "associate") == 0;
    int rc = associate ? gc_json_check(in, associate_spec, 1, err) : 0;
    if (rc)
        return rc;
    struct gc_tx *tx;
    rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    char path[GC_DEPT_PATH_MAX] = "", dept[GC_ID_LEN + 1] = "", job[GC_ID_LEN + 1];
    json_t *obj = NULL, *nic = NULL;
    rc = load_for_change(tx, ctx, id, &obj, path, dept, err);
    const char *state = obj ? gc_json_str(obj, "state") : "";
    const char *vm = associate ? gc_json_str(in, "vm_id") : obj ? gc_json_str(obj, "vm_id") : NULL;
    char vmid[GC_ID_LEN + 1] = "";
    if (vm)
        snprintf(vmid, sizeof(vmid), "%s", vm);
    if (associate) {
        if (!rc && strcmp(state, "available") != 0)
            rc = gc_error_set(err, GC_ECONFLICT, "id",
                              "public IP '%s' is %s: disassociate it first", id, state);
        if (!rc)
            rc = check_vm(tx, ctx, vmid, path, err);
        /* the interface is recorded now, so its address and MAC are taken at once */
        if (!rc)
            rc = gc_net_attach_public(tx, gc_json_str(obj, "network_id"), vmid,
                                      gc_json_str(obj, "address"), &nic, err);
    } else if (!rc && strcmp(state, "available") == 0) {
        rc = gc_error_set(err, GC_ECONFLICT, "id", "public IP '%s' is not associated", id);
    }
    if (!rc)
        rc = gc_tx_exec(tx,
                        "UPDATE public_ips SET state = ?, vm_id = ?, last_error = '',"
                        " updated_at = ?, version = version + 1 WHERE id = ?",
                        GC_ARGS(GC_VTXT(associate ? "associating" : "disassociating"),
                                GC_VTXT(vmid[0] ? vmid : NULL), GC_VINT_(gc_now_ms()),
                                GC_VTXT(id)),
                        NULL, err);
    if (!rc) {
        json_t *params = json_pack("{s:s,s:s}", "public_ip_id", id, "vm_id", vmid);
        char kind[40];
        snprintf(kind, sizeof(kind), "public_ip.%s", associate ? "associate" : "disassociate");
        rc = gc_job_submit(tx, ctx, kind, params, dept, "public_ip", id, job, err);
        json_decref(params);
    }
    json_t *detail = json_pack("{s:O?,s:s,s:O?}", "before", obj, "vm_id", vmid, "nic", nic);
    char act[40];
    snprintf(act, sizeof(act), "public_ip.%s", associate ? "associate" : "disassociate");
    struct gc_audit_event ev = {.action = act,
                                .resource_type = "public_ip",
                                .resource_id = id,
                                .department_id = dept,
                                .department_path = path,
                                .outcome = GC_OUTCOME_SUCCESS,
                                .detail = detail};
    rc = gc_job_commit(tx, ctx, &ev, job, rc, out, err);
    json_decref(detail);
    json_decref(nic);
    json_decref(obj);
    return rc;
}
