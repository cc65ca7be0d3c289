/* Volumes (云硬盘): disks in a host's storage pool (qcow2 files in dir pools, raw logical
 * volumes in LVM pools, raw images in Ceph RBD pools), created, attached to a VM of the same
 * department on the same host, detached, grown, snapshotted, reverted and deleted through
 * jobs. They and their snapshots belong to a department and count against its quotas
 * (volumes, disk_gib). */
#include "core/core.h"

#include "core/validate.h"
#include "util/buf.h"
#include "util/mem.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <string.h>

#define VOL_COLS                                                                              \
    "x.id, x.name, x.department_id, x.host_id, x.pool, x.size_gib, x.state, x.vm_id,"         \
    " x.target, x.last_error, x.created_at, x.updated_at, x.version, COALESCE(d.path, ''),"  \
    " x.format"
#define VOL_FROM " FROM volumes x JOIN departments d ON d.id = x.department_id"

static json_t *vol_json(struct gc_rows *r, char *path)
{
    json_t *o = json_object();
    static const char *const text[] = {"id", "name", "department_id", "host_id", "pool"};
    for (int i = 0; i < 5; i++)
        json_object_set_new(o, text[i], json_string(gc_rows_text(r, i)));
    json_object_set_new(o, "size_gib", json_integer(gc_rows_int(r, 5)));
    json_object_set_new(o, "state", json_string(gc_rows_text(r, 6)));
    json_object_set_new(o, "vm_id",
                        gc_rows_null(r, 7) ? json_null() : json_string(gc_rows_text(r, 7)));
    json_object_set_new(o, "target",
                        gc_rows_null(r, 8) ? json_null() : json_string(gc_rows_text(r, 8)));
    json_object_set_new(o, "last_error", json_string(gc_rows_text(r, 9)));
    json_object_set_new(o, "created_at", gc_json_time(gc_rows_int(r, 10)));
    json_object_set_new(o, "updated_at", gc_json_time(gc_rows_int(r, 11)));
    json_object_set_new(o, "version", json_integer(gc_rows_int(r, 12)));
    json_object_set_new(o, "format", json_string(gc_rows_text(r, 14)));
    if (path)
        snprintf(path, GC_DEPT_PATH_MAX, "%s", gc_rows_text(r, 13));
    return o;
}

static int load(struct gc_tx *tx, const char *id, json_t **out, char *path, struct gc_error *err)
{
    return gc_load_by_id(tx, "SELECT " VOL_COLS VOL_FROM " WHERE x.id = ?", "volume", id, vol_json, out, path, err);
}

/* Checks the VM a volume is to be attached to: same department, same host, not busy. */
static int check_vm(struct gc_tx *tx, const char *vm, const char *dept, const char *host,
                    struct gc_error *err)
{
    struct gc_rows *r = NULL;
    int rc = gc_id_valid(vm) ? gc_tx_query(tx,
                                           "SELECT department_id, COALESCE(host_id, ''), state"
                                           " FROM vms WHERE id = ?",
                                           GC_ARGS(GC_VTXT(vm)), &r, err)
                             : GC_ENOTFOUND;
    if (rc == GC_ENOTFOUND || (!rc && gc_rows_next(r, err) <= 0) ||
        (!rc && strcmp(gc_rows_text(r, 0), dept) != 0)) {
        gc_rows_free(r);
        return gc_error_set(err, GC_EINVAL, "vm_id",
                            "virtual machine '%.64s' not found in the volume's department", vm);
    }
    if (rc)
        return rc;
    if (host && strcmp(gc_rows_text(r, 1), host) != 0)
        rc = gc_error_set(err, GC_ECONFLICT, "vm_id",
                          "the volume is on host '%s' and the VM on host '%s': volumes in local "
                          "storage pools attach only to VMs of their host",
                          host, gc_rows_text(r, 1));
    else if (!strcmp(gc_rows_text(r, 2), "building") || !strcmp(gc_rows_text(r, 2), "deleting"))
        rc = gc_error_set(err, GC_ECONFLICT, "vm_id", "virtual machine '%s' is %s", vm,
                          gc_rows_text(r, 2));
    gc_rows_free(r);
    return rc;
}


/* Audits action on the volume, commits, and answers with its job. */
static int finish(struct gc_tx *tx, const struct gc_ctx *ctx, const char *action,
                  const char *id, const char *dept, const char *path, const char *job,
                  json_t *detail, int rc, json_t **out, struct gc_error *err)
{
    struct gc_audit_event ev = {.action = action,
                                .resource_type = "volume",
                                .resource_id = id,
                                .department_id = dept,
                                .department_path = path,
                                .outcome = GC_OUTCOME_SUCCESS,
                                .detail = detail};
    return gc_job_commit(tx, ctx, &ev, job, rc, out, err);
}

/* The format of volumes in a storage pool of type type: qcow2 files where the pool is a
 * directory, raw where it hands out block devices (LVM) or images (RBD); NULL when govcloud
 * does not put volumes in such pools. */
static const char *pool_format(const char *type)
{
    static const char *const map[][2] = {{"dir", "qcow2"},     {"fs", "qcow2"},
                                         {"netfs", "qcow2"},   {"logical", "raw"},
                                         {"rbd", "raw"}};
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (!strcmp(type, map[i][0]))
            return map[i][1];
    return NULL;
}

/* The pool named pool in a host's discovered pools (the JSON of hosts.pools), or NULL. */
static json_t *find_pool(json_t *pools, const char *pool)
{
    size_t i;
    json_t *p;
    json_array_foreach(pools, i, p) {
        if (!strcmp(gc_json_str(p, "name") ? gc_json_str(p, "name") : "", pool))
            return p;
    }
    return NULL;
}

int gc_volume_pool_check(const json_t *pools, const char *host, const char *pool, bool named,
                         char format[16], struct gc_error *err)
{
    json_t *p = find_pool((json_t *)pools, pool);
    const char *type = p ? gc_json_str(p, "type") : NULL;
    const char *state = p ? gc_json_str(p, "state") : NULL;
    const char *fmt = type ? pool_format(type) : NULL;
    int rc = 0;
    if (!p && !named)
        fmt = "qcow2";
    else if (!p)
        rc = gc_error_set(err, GC_EINVAL, "pool", "host '%s' has no storage pool '%.128s'",
                          host, pool);
    else if (!fmt)
        rc = gc_error_set(err, GC_EINVAL, "pool",
                          "storage pool '%s' on host '%s' is of type '%s': volumes go to pools "
                          "of type dir, fs, netfs, logical (LVM) or rbd (Ceph)",
                          pool, host, type ? type : "unknown");
    else if (named && state && strcmp(state, "running") != 0)
        rc = gc_error_set(err, GC_ECONFLICT, "pool",
                          "storage pool '%s' on host '%s' is %s, not running", pool, host,
                          state);
    if (!rc)
        snprintf(format, 16, "%s", fmt);
    return rc;
}

/* gc_volume_pool_check with the pools host reported when it connected. */
static int check_pool(struct gc_tx *tx, const char *host, const char *pool, bool named,
                      char format[16], struct gc_error *err)
{
    struct gc_rows *r = NULL;
    int rc = gc_tx_query(tx, "SELECT pools FROM hosts WHERE id = ?", GC_ARGS(GC_VTXT(host)),
                         &r, err);
    json_t *pools = NULL;
    if (!rc && gc_rows_next(r, err) > 0)
        pools = json_loads(gc_rows_text(r, 0), 0, NULL);
    gc_rows_free(r);
    if (!rc)
        rc = gc_volume_pool_check(pools, host, pool, named, format, err);
    json_decref(pools);
    return rc;
}

/* The connected host, not in maintenance, with the most free memory that has pool. */
static int host_with_pool(struct gc_tx *tx, const char *pool, char host[GC_ID_LEN + 1],
                          struct gc_error *err)
{
    struct gc_rows *r = NULL;
    int rc = gc_tx_query(tx,
                         "SELECT id, pools FROM hosts WHERE state = 'connected' AND"
                         " maintenance = 0 ORDER BY memory_free_mib DESC, id",
                         NULL, 0, &r, err);
    while (!rc && !host[0] && (rc = gc_rows_next(r, err)) > 0) {
        rc = 0;
        json_t *pools = json_loads(gc_rows_text(r, 1), 0, NULL);
        if (find_pool(pools, pool))
            snprintf(host, GC_ID_LEN + 1, "%s", gc_rows_text(r, 0));
        json_decref(pools);
    }
    gc_rows_free(r);
    if (rc < 0)
        return rc;
    return host[0] ? 0
                   : gc_error_set(err, GC_ECONFLICT, "pool",
                                  "no connected host has a storage pool '%.128s'", pool);
}

static const struct gc_jfield create_spec[] = {
    {"name", GC_JT_STRING, true, false, 1, 64, GC_CS_CODE},
    {"size_gib", GC_JT_INT, true, false, 1, 65536, GC_CS_ANY},
    {"department_id", GC_JT_STRING, false, false, 1, 64, GC_CS_ANY},
    {"vm_id", GC_JT_STRING, false, false, 1, 64, GC_CS_ANY},
    {"host_id", GC_JT_STRING, false, false, 1, 64, GC_CS_ANY},
    {"pool", GC_JT_STRING, false, false, 1, 128, GC_CS_CODE},
};

int gc_volume_create(const struct gc_ctx *ctx, json_t *in, json_t **out, struct gc_error *err)
{
    int rc = gc_require(ctx->who, GC_P_VM_WRITE, err);
    if (!rc)
        rc = gc_json_check(in, create_spec, sizeof(create_spec) / sizeof(create_spec[0]), err);
    if (rc)
        return rc;
    const char *dept = gc_json_str(in, "department_id"), *vm = gc_json_str(in, "vm_id");
    const char *host = gc_json_str(in, "host_id"), *pool = gc_json_str(in, "pool");
    if (host && !gc_role_is_platform(ctx->who->role))
        return gc_error_set(err, GC_EPERM, "host_id",
                            "only platform administrators and operators choose the host");
    if (host && vm)
        return gc_error_set(err, GC_EINVAL, "host_id", "give vm_id or host_id, not both");
    if (!dept && !ctx->who->department_id[0])
        return gc_error_set(err, GC_EINVAL, "department_id",
                            "give the department_id the volume belongs to");
    if (!dept)
        dept = ctx->who->department_id;
    int64_t size = json_integer_value(json_object_get(in, "size_gib"));
    struct gc_tx *tx;
    rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    char path[GC_DEPT_PATH_MAX], host_id[GC_ID_LEN + 1] = "";
    rc = gc_dept_path(tx, dept, path, err);
    if (rc == GC_ENOTFOUND || (!rc && !gc_in_scope(ctx->who, path)))
        rc = gc_error_set(err, GC_EINVAL, "department_id", "department '%.64s' not found", dept);
    if (!rc)
        rc = gc_quota_check_volume(tx, path, size, err);
    /* where: the VM's host, the chosen host, or the connected host with most room */
    struct gc_rows *r = NULL;
    if (!rc && vm) {
        rc = check_vm(tx, vm, dept, NULL, err);
        if (!rc)
            rc = gc_tx_query(tx, "SELECT COALESCE(host_id, '') FROM vms WHERE id = ?",
                             GC_ARGS(GC_VTXT(vm)), &r, err);
    } else if (!rc && pool && !host) {
        rc = host_with_pool(tx, pool, host_id, err);
    } else if (!rc) {
        rc = gc_tx_query(tx,
                         host ? "SELECT id FROM hosts WHERE id = ? AND state = 'connected'"
                              : "SELECT id FROM hosts WHERE state = 'connected' AND"
                                " maintenance = 0 ORDER BY memory_free_mib DESC LIMIT 1",
                         (const struct gc_val[]){GC_VTXT(host)}, host ? 1 : 0, &r, err);
    }
    if (!rc && r && gc_rows_next(r, err) > 0)
        snprintf(host_id, sizeof(host_id), "%s", gc_rows_text(r, 0));
    gc_rows_free(r);
    if (!rc && !host_id[0])
        rc = gc_error_set(err, GC_ECONFLICT, host ? "host_id" : "",
                          host ? "host '%.64s' is not connected" : "no connected host%s",
                          host ? host : "");
    char format[16] = "";
    if (!rc)
        rc = check_pool(tx, host_id, pool ? pool : ctx->cfg->storage_pool, pool != NULL,
                        format, err);
    char id[GC_ID_LEN + 1], job[GC_ID_LEN + 1];
    gc_id_new(id);
    int64_t now = gc_now_ms();
    const char *name = gc_json_str(in, "name");
    if (!rc)
        rc = gc_tx_exec(tx,
                        "INSERT INTO volumes (id, name, department_id, host_id, pool, format,"
                        " size_gib, state, created_at, updated_at, version)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, 'creating', ?, ?, 1)",
                        GC_ARGS(GC_VTXT(id), GC_VTXT(name), GC_VTXT(dept), GC_VTXT(host_id),
                                GC_VTXT(pool ? pool : ctx->cfg->storage_pool), GC_VTXT(format),
                                GC_VINT_(size), GC_VINT_(now), GC_VINT_(now)),
                        NULL, err);
    if (rc == GC_ECONFLICT && strstr(err->msg, "name"))
        rc = gc_error_set(err, GC_ECONFLICT, "name",
                          "the department already has a volume named '%s'", name);
    if (!rc) {
        json_t *p = json_pack("{s:s,s:o}", "volume_id", id, "attach_to",
                              vm ? json_string(vm) : json_null());
        rc = gc_job_submit(tx, ctx, "volume.create", p, dept, "volume", id, job, err);
        json_decref(p);
    }
    json_t *detail = json_pack("{s:s,s:I,s:s,s:s}", "name", name, "size_gib", (json_int_t)size,
                               "host_id", host_id, "pool",
                               pool ? pool : ctx->cfg->storage_pool);
    rc = finish(tx, ctx, "volume.create", id, dept, path, job, detail, rc, out, err);
    json_decref(detail);
    return rc;
}

int gc_volume_get(const struct gc_ctx *ctx, const char *id, json_t **out, struct gc_error *err)
{
    return gc_get_scoped(ctx, load, GC_P_VM_READ, "volume", id, out, err);
}

static json_t *vol_row(struct gc_rows *r, const struct gc_principal *who)
{
    char path[GC_DEPT_PATH_MAX];
    json_t *o = vol_json(r, path);
    if (!gc_in_scope(who, path)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int gc_volume_list(const struct gc_ctx *ctx, json_t *filters, int limit, const char *cursor,
                   json_t **items, char **next_cursor, struct gc_error *err)
{
    static const struct gc_list_filter f[] = {
        {"department_id", "x.department_id"},
        {"vm_id", "x.vm_id"},
        {"state", "x.state"},
        {NULL, NULL}};
    return gc_list_filtered(ctx, GC_P_VM_READ,
                            "SELECT " VOL_COLS VOL_FROM " WHERE x.id > ?", "x.id",
                            f, filters, limit, cursor, vol_row, items, next_cursor, err);
}

/* A volume is copied (snapshot) or overwritten (revert) only while no guest uses it:
 * detached, or attached to a VM that is not running (the job checks again with the host). */
static int check_quiet(struct gc_tx *tx, const json_t *vol, const char *doing,
                       struct gc_error *err)
{
    const char *id = gc_json_str(vol, "id"), *state = gc_json_str(vol, "state");
    const char *vm = gc_json_str(vol, "vm_id");
    if (strcmp(state, "available") && strcmp(state, "in-use") &&
        !(strcmp(state, "error") == 0 && !strcmp(doing, "reverting")))
        return gc_error_set(err, GC_ECONFLICT, "id", "volume '%s' is %s: no %s now", id, state,
                            doing);
    if (!vm)
        return 0;
    struct gc_rows *r = NULL;
    int rc = gc_tx_query(tx, "SELECT state, power_state FROM vms WHERE id = ?",
                         GC_ARGS(GC_VTXT(vm)), &r, err);
    if (!rc && gc_rows_next(r, err) > 0) {
        const char *vs = gc_rows_text(r, 0), *power = gc_rows_text(r, 1);
        static const char *const busy[] = {"running", "paused", "blocked", "pmsuspended"};
        bool runs = false;
        for (size_t i = 0; i < 4; i++)
            runs |= strcmp(power, busy[i]) == 0;
        if (runs)
            rc = gc_error_set(err, GC_ECONFLICT, "id",
                              "volume '%s' is attached to virtual machine '%s', which is %s: "
                              "stop the VM or detach the volume before %s",
                              id, vm, power, doing);
        else if (!strcmp(vs, "building") || !strcmp(vs, "deleting"))
            rc = gc_error_set(err, GC_ECONFLICT, "id",
                              "volume '%s' is attached to virtual machine '%s', which is %s", id,
                              vm, vs);
    }
    gc_rows_free(r);
    return rc;
}

static const struct gc_jfield revert_spec[] = {
    {"snapshot_id", GC_JT_STRING, true, false, 1, 64, GC_CS_ANY}};
static const struct gc_jfield attach_spec[] = {
    {"vm_id", GC_JT_STRING, true, false, 1, 64, GC_CS_ANY}};
static const struct gc_jfield resize_spec[] = {
    {"size_gib", GC_JT_INT, true, false, 1, 65536, GC_CS_ANY}};

int gc_volume_action(const struct gc_ctx *ctx, const char *id, const char *action, json_t *in,
                     json_t **out, struct gc_error *err)
{
    int rc = 0;
    if (!strcmp(action, "attach"))
        rc = gc_json_check(in, attach_spec, 1, err);
    else if (!strcmp(action, "resize"))
        rc = gc_json_check(in, resize_spec, 1, err);
    else if (!strcmp(action, "revert"))
        rc = gc_json_check(in, revert_spec, 1, err);
    if (rc)
        return rc;
    struct gc_tx *tx;
    rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    char path[GC_DEPT_PATH_MAX], job[GC_ID_LEN + 1];
    json_t *obj = NULL;
    rc = load(tx, id, &obj, path, err);
    if (!rc)
        rc = gc_authorize(ctx->who, GC_P_VM_WRITE, path, "volume", id, err);
    if (!rc)
        rc = gc_job_busy(tx, "volume", id, "volume", err);
    const char *state = obj ? gc_json_str(obj, "state") : "";
    char dept[GC_ID_LEN + 1] = "", host[GC_ID_LEN + 1] = "";
    if (obj) {
        snprintf(dept, sizeof(dept), "%s", gc_json_str(obj, "department_id"));
        snprintf(host, sizeof(host), "%s", gc_json_str(obj, "host_id"));
    }
    json_t *params = json_pack("{s:s}", "volume_id", id);
    const char *kind = NULL;
    if (!rc && !strcmp(action, "attach")) {
        kind = "volume.attach";
        if (strcmp(state, "available") != 0)
            rc = gc_error_set(err, GC_ECONFLICT, "id", "volume '%s' is %s, not available", id,
                              state);
        if (!rc)
            rc = check_vm(tx, gc_json_str(in, "vm_id"), dept, host, err);
        if (!rc)
            json_object_set_new(params, "vm_id", json_string(gc_json_str(in, "vm_id")));
    } else if (!rc && !strcmp(action, "detach")) {
        kind = "volume.detach";
        if (strcmp(state, "in-use") != 0)
            rc = gc_error_set(err, GC_ECONFLICT, "id", "volume '%s' is %s, not attached", id,
                              state);
    } else if (!rc && !strcmp(action, "resize")) {
        kind = "volume.resize";
        int64_t want = json_integer_value(json_object_get(in, "size_gib"));
        int64_t have = json_integer_value(json_object_get(obj, "size_gib"));
        if (strcmp(state, "available") != 0)
            rc = gc_error_set(err, GC_ECONFLICT, "id",
                              "volume '%s' is %s: detach it before resizing", id, state);
        else if (want <= have)
            rc = gc_error_set(err, GC_EINVAL, "size_gib",
                              "volumes only grow: size_gib must be above %lld", (long long)have);
        if (!rc)
            rc = gc_quota_check_volume_grow(tx, path, want - have, err);
        if (!rc)
            json_object_set_new(params, "size_gib", json_integer(want));
    } else if (!rc && !strcmp(action, "delete")) {
        kind = "volume.delete";
        int64_t snaps = 0;
        if (strcmp(state, "available") && strcmp(state, "error") && strcmp(state, "deleting"))
            rc = gc_error_set(err, GC_ECONFLICT, "id",
                              "volume '%s' is %s: detach it before deleting it", id, state);
        if (!rc)
            rc = gc_tx_query_int(tx, "SELECT COUNT(*) FROM volume_snapshots WHERE volume_id = ?",
                                 GC_ARGS(GC_VTXT(id)), &snaps, err);
        if (!rc && snaps > 0)
            rc = gc_error_set(err, GC_ECONFLICT, "id",
                              "volume '%s' has %lld snapshot%s: delete them before the volume",
                              id, (long long)snaps, snaps == 1 ? "" : "s");
    } else if (!rc && !strcmp(action, "revert")) {
        kind = "volume.revert";
        const char *sid = gc_json_str(in, "snapshot_id");
        rc = check_quiet(tx, obj, "reverting", err);
        struct gc_rows *r = NULL;
        if (!rc)
            rc = gc_tx_query(tx,
                             "SELECT state FROM volume_snapshots WHERE id = ? AND volume_id = ?",
                             GC_ARGS(GC_VTXT(sid), GC_VTXT(id)), &r, err);
        if (!rc && gc_rows_next(r, err) <= 0)
            rc = gc_error_set(err, GC_EINVAL, "snapshot_id",
                              "volume '%s' has no snapshot '%.64s'", id, sid);
        else if (!rc && strcmp(gc_rows_text(r, 0), "available") != 0)
            rc = gc_error_set(err, GC_ECONFLICT, "snapshot_id", "snapshot '%s' is %s", sid,
                              gc_rows_text(r, 0));
        gc_rows_free(r);
        if (!rc) {
            json_object_set_new(params, "snapshot_id", json_string(sid));
            json_object_set_new(obj, "snapshot_id", json_string(sid));
        }
    } else if (!rc) {
        rc = gc_error_set(err, GC_EINVAL, "action", "unknown action '%.32s'", action);
    }
    if (!rc)
        rc = gc_job_submit(tx, ctx, kind, params, dept, "volume", id, job, err);
    if (!rc && !strcmp(action, "delete"))
        rc = gc_tx_exec(tx,
                        "UPDATE volumes SET state = 'deleting', updated_at = ?,"
                        " version = version + 1 WHERE id = ?",
                        GC_ARGS(GC_VINT_(gc_now_ms()), GC_VTXT(id)), NULL, err);
    json_decref(params);
    char act[32];
    snprintf(act, sizeof(act), "volume.%s", action);
    rc = finish(tx, ctx, act, id, dept, path, job, obj, rc, out, err);
    json_decref(obj);
    return rc;
}

/* ---- snapshots: full copies of a volume in its pool (gc-snap-<id>), made by jobs ---- */

#define SNAP_MAX_PER_VOLUME 32

#define SNAP_COLS                                                                             \
    "x.id, x.volume_id, x.department_id, x.name, x.description, x.size_gib, x.state,"        \
    " x.last_error, x.created_at, x.updated_at, x.version, COALESCE(d.path, '')"
#define SNAP_FROM " FROM volume_snapshots x JOIN departments d ON d.id = x.department_id"

static json_t *snap_json(struct gc_rows *r, char *path)
{
    json_t *o = json_object();
    static const char *const text[] = {"id", "volume_id", "department_id", "name",
                                       "description"};
    for (int i = 0; i < 5; i++)
        json_object_set_new(o, text[i], json_string(gc_rows_text(r, i)));
    json_object_set_new(o, "size_gib", json_integer(gc_rows_int(r, 5)));
    json_object_set_new(o, "state", json_string(gc_rows_text(r, 6)));
    json_object_set_new(o, "last_error", json_string(gc_rows_text(r, 7)));
    json_object_set_new(o, "created_at", gc_json_time(gc_rows_int(r, 8)));
    json_object_set_new(o, "updated_at", gc_json_time(gc_rows_int(r, 9)));
    json_object_set_new(o, "version", json_integer(gc_rows_int(r, 10)));
    if (path)
        snprintf(path, GC_DEPT_PATH_MAX, "%s", gc_rows_text(r, 11));
    return o;
}

static json_t *snap_row(struct gc_rows *r, const struct gc_principal *who)
{
    char path[GC_DEPT_PATH_MAX];
    json_t *o = snap_json(r, path);
    if (!gc_in_scope(who, path)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Loads volume vol and checks perm on it (404 for volumes out of the caller's scope). */
static int load_authorized(struct gc_tx *tx, const struct gc_ctx *ctx, const char *vol,
                           enum gc_perm perm, json_t **obj, char *path, struct gc_error *err)
{
    int rc = load(tx, vol, obj, path, err);
    if (!rc)
        rc = gc_authorize(ctx->who, perm, path, "volume", vol, err);
    return rc;
}

/* Snapshot sid of volume vol: GC_ENOTFOUND when it is not one of that volume's. */
static int load_snap(struct gc_tx *tx, const char *vol, const char *sid, json_t **out,
                     struct gc_error *err)
{
    json_t *o = NULL;
    int rc = gc_load_by_id(tx, "SELECT " SNAP_COLS SNAP_FROM " WHERE x.id = ?", "snapshot", sid,
                           snap_json, &o, NULL, err);
    if (!rc && strcmp(gc_json_str(o, "volume_id"), vol) != 0)
        rc = gc_error_set(err, GC_ENOTFOUND, "", "snapshot '%.64s' not found", sid);
    if (rc)
        json_decref(o);
    else
        *out = o;
    return rc;
}

static const struct gc_jfield snap_spec[] = {
    {"name", GC_JT_STRING, true, false, 1, 64, GC_CS_CODE},
    {"description", GC_JT_STRING, false, false, 0, 255, GC_CS_TEXT},
};

int gc_volume_snapshot_create(const struct gc_ctx *ctx, const char *vol, json_t *in,
                              json_t **out, struct gc_error *err)
{
    int rc = gc_json_check(in, snap_spec, sizeof(snap_spec) / sizeof(snap_spec[0]), err);
    if (rc)
        return rc;
    struct gc_tx *tx;
    rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    char path[GC_DEPT_PATH_MAX], job[GC_ID_LEN + 1], sid[GC_ID_LEN + 1],
        dept[GC_ID_LEN + 1] = "";
    json_t *obj = NULL;
    rc = load_authorized(tx, ctx, vol, GC_P_VM_WRITE, &obj, path, err);
    if (!rc)
        rc = gc_job_busy(tx, "volume", vol, "volume", err);
    if (!rc)
        rc = check_quiet(tx, obj, "taking a snapshot", err);
    int64_t size = obj ? json_integer_value(json_object_get(obj, "size_gib")) : 0, n = 0;
    if (obj)
        snprintf(dept, sizeof(dept), "%s", gc_json_str(obj, "department_id"));
    if (!rc)
        rc = gc_tx_query_int(tx, "SELECT COUNT(*) FROM volume_snapshots WHERE volume_id = ?",
                             GC_ARGS(GC_VTXT(vol)), &n, err);
    if (!rc && n >= SNAP_MAX_PER_VOLUME)
        rc = gc_error_set(err, GC_ECONFLICT, "id",
                          "volume '%s' has %d snapshots, the most it may have: delete one first",
                          vol, SNAP_MAX_PER_VOLUME);
    if (!rc)
        rc = gc_quota_check_volume_grow(tx, path, size, err);
    const char *name = gc_json_str(in, "name"), *desc = gc_json_str(in, "description");
    gc_id_new(sid);
    int64_t now = gc_now_ms();
    if (!rc)
        rc = gc_tx_exec(tx,
                        "INSERT INTO volume_snapshots (id, volume_id, department_id, name,"
                        " description, size_gib, state, created_at, updated_at, version)"
                        " VALUES (?, ?, ?, ?, ?, ?, 'creating', ?, ?, 1)",
                        GC_ARGS(GC_VTXT(sid), GC_VTXT(vol), GC_VTXT(dept), GC_VTXT(name),
                                GC_VTXT(desc ? desc : ""), GC_VINT_(size), GC_VINT_(now),
                                GC_VINT_(now)),
                        NULL, err);
    if (rc == GC_ECONFLICT && strstr(err->msg, "name"))
        rc = gc_error_set(err, GC_ECONFLICT, "name",
                          "volume '%s' already has a snapshot named '%s'", vol, name);
    if (!rc) {
        json_t *p = json_pack("{s:s,s:s}", "volume_id", vol, "snapshot_id", sid);
        rc = gc_job_submit(tx, ctx, "volume.snapshot", p, dept, "volume", vol, job, err);
        json_decref(p);
    }
    json_t *detail = json_pack("{s:s,s:s,s:I}", "snapshot_id", sid, "name", name, "size_gib",
                               (json_int_t)size);
    rc = finish(tx, ctx, "volume.snapshot", vol, dept, path, job, detail, rc, out, err);
    json_decref(detail);
    json_decref(obj);
    return rc;
}

int gc_volume_snapshot_list(const struct gc_ctx *ctx, const char *vol, int limit,
                            const char *cursor, json_t **items, char **next_cursor,
                            struct gc_error *err)
{
    int rc = gc_page_limit(limit, &limit, err);
    if (!rc)
        rc = gc_page_cursor_id(cursor, err);
    if (rc)
        return rc;
    struct gc_tx *tx;
    rc = gc_tx_begin(ctx->store, GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    char path[GC_DEPT_PATH_MAX];
    json_t *obj = NULL;
    rc = load_authorized(tx, ctx, vol, GC_P_VM_READ, &obj, path, err);
    gc_tx_rollback(tx);
    json_decref(obj);
    if (rc)
        return rc;
    return gc_page_run(ctx,
                       "SELECT " SNAP_COLS SNAP_FROM " WHERE x.volume_id = ? AND x.id > ?"
                       " ORDER BY x.id",
                       GC_ARGS(GC_VTXT(vol), GC_VTXT(cursor ? cursor : "")), limit, "id",
                       snap_row, items, next_cursor, err);
}

int gc_volume_snapshot_get(const struct gc_ctx *ctx, const char *vol, const char *sid,
                           json_t **out, struct gc_error *err)
{
    struct gc_tx *tx;
    int rc = gc_tx_begin(ctx->store, GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    char path[GC_DEPT_PATH_MAX];
    json_t *obj = NULL;
    rc = load_authorized(tx, ctx, vol, GC_P_VM_READ, &obj, path, err);
    json_decref(obj);
    if (!rc)
        rc = load_snap(tx, vol, sid, out, err);
    gc_tx_rollback(tx);
    return rc;
}

int gc_volume_snapshot_delete(const struct gc_ctx *ctx, const char *vol, const char *sid,
                              json_t **out, struct gc_error *err)
{
    struct gc_tx *tx;
    int rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    char path[GC_DEPT_PATH_MAX], job[GC_ID_LEN + 1], dept[GC_ID_LEN + 1] = "";
    json_t *obj = NULL, *snap = NULL;
    rc = load_authorized(tx, ctx, vol, GC_P_VM_WRITE, &obj, path, err);
    if (obj)
        snprintf(dept, sizeof(dept), "%s", gc_json_str(obj, "department_id"));
    if (!rc)
        rc = load_snap(tx, vol, sid, &snap, err);
    if (!rc)
        rc = gc_job_busy(tx, "volume", vol, "volume", err);
    if (!rc && !strcmp(gc_json_str(snap, "state"), "creating"))
        rc = gc_error_set(err, GC_ECONFLICT, "snapshot_id", "snapshot '%s' is being created",
                          sid);
    if (!rc) {
        json_t *p = json_pack("{s:s,s:s}", "volume_id", vol, "snapshot_id", sid);
        rc = gc_job_submit(tx, ctx, "volume.snapshot_delete", p, dept, "volume", vol, job, err);
        json_decref(p);
    }
    if (!rc)
        rc = gc_tx_exec(tx,
                        "UPDATE volume_snapshots SET state = 'deleting', updated_at = ?,"
                        " version = version + 1 WHERE id = ?",
                        GC_ARGS(GC_VINT_(gc_now_ms()), GC_VTXT(sid)), NULL, err);
    rc = finish(tx, ctx, "volume.snapshot_delete", vol, dept, path, job, snap, rc, out, err);
    json_decref(snap);
    json_decref(obj);
    return rc;
}
