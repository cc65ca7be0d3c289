/* Quotas per department, inherited down the tree: a limit set on a department bounds the
 * usage of its whole subtree, so a province's limit also holds for all its cities' VMs
 * together. Checked inside the transaction that reserves the resources, so parallel
 * requests can never overshoot. */
#include "core/core.h"

#include "core/validate.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <string.h>

#define NRES 6
static const char *const res_names[NRES] = {"vms", "vcpus", "memory_mib", "disk_gib",
                                            "volumes", "public_ips"};

/* Usage of the subtree at path: VMs, volumes and their snapshots (their sizes count as
 * disk), and public IPs. */
static int usage_of(struct gc_tx *tx, const char *path, int64_t u[NRES], struct gc_error *err)
{
    char like[GC_DEPT_PATH_MAX + 2];
    snprintf(like, sizeof(like), "%s%%", path);
    struct gc_rows *r = NULL;
    memset(u, 0, sizeof(int64_t) * NRES);
    int rc = gc_tx_query(tx,
                         "SELECT COUNT(*), COALESCE(SUM(v.vcpus), 0),"
                         " COALESCE(SUM(v.memory_mib), 0), COALESCE(SUM(v.disk_gib), 0)"
                         " FROM vms v JOIN departments d ON d.id = v.department_id"
                         " WHERE d.path LIKE ?",
                         GC_ARGS(GC_VTXT(like)), &r, err);
    if (!rc && (rc = gc_rows_next(r, err)) > 0) {
        for (int i = 0; i < 4; i++)
            u[i] = gc_rows_int(r, i);
        rc = 0;
    }
    gc_rows_free(r);
    r = NULL;
    if (!rc)
        rc = gc_tx_query(tx,
                         "SELECT COUNT(*), COALESCE(SUM(x.size_gib), 0) FROM volumes x"
                         " JOIN departments d ON d.id = x.department_id WHERE d.path LIKE ?",
                         GC_ARGS(GC_VTXT(like)), &r, err);
    if (!rc && (rc = gc_rows_next(r, err)) > 0) {
        u[4] = gc_rows_int(r, 0);
        u[3] += gc_rows_int(r, 1);
        rc = 0;
    }
    gc_rows_free(r);
    r = NULL;
    /* a volume snapshot is a full copy: its size counts as disk too */
    if (!rc)
        rc = gc_tx_query(tx,
                         "SELECT COALESCE(SUM(x.size_gib), 0) FROM volume_snapshots x"
                         " JOIN departments d ON d.id = x.department_id WHERE d.path LIKE ?",
                         GC_ARGS(GC_VTXT(like)), &r, err);
    if (!rc && (rc = gc_rows_next(r, err)) > 0) {
        u[3] += gc_rows_int(r, 0);
        rc = 0;
    }
    gc_rows_free(r);
    if (!rc)
        rc = gc_tx_query_int(tx,
                             "SELECT COUNT(*) FROM public_ips p JOIN departments d"
                             " ON d.id = p.department_id WHERE d.path LIKE ?",
                             GC_ARGS(GC_VTXT(like)), &u[5], err);
    return rc;
}

/* The department's own limits (-1 = none) and the version of its quota row (0 = none). */
static int limits_of(struct gc_tx *tx, const char *dept, int64_t l[NRES], int64_t *version,
                     struct gc_error *err)
{
    for (int i = 0; i < NRES; i++)
        l[i] = -1;
    *version = 0;
    struct gc_rows *r = NULL;
    int rc = gc_tx_query(tx,
                         "SELECT vms, vcpus, memory_mib, disk_gib, volumes, public_ips, version"
                         " FROM quotas WHERE department_id = ?",
                         GC_ARGS(GC_VTXT(dept)), &r, err);
    if (!rc && (rc = gc_rows_next(r, err)) > 0) {
        for (int i = 0; i < NRES; i++)
            l[i] = gc_rows_null(r, i) ? -1 : gc_rows_int(r, i);
        *version = gc_rows_int(r, 6);
        rc = 0;
    }
    gc_rows_free(r);
    return rc;
}

/* Ids of the departments on a path, root first: "/a/b/c/" → a, b, c. */
static int path_ids(const char *path, char ids[][GC_ID_LEN + 1], int max)
{
    int n = 0;
    for (const char *p = path; *p && n < max;) {
        if (*p == '/') {
            p++;
            continue;
        }
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == GC_ID_LEN) {
            memcpy(ids[n], p, GC_ID_LEN);
            ids[n][GC_ID_LEN] = '\0';
            n++;
        }
        p += len;
    }
    return n;
}

static int check_want(struct gc_tx *tx, const char *dept_path, const int64_t want[NRES],
                      struct gc_error *err)
{
    char ids[GC_DEPT_MAX_DEPTH + 1][GC_ID_LEN + 1];
    int n = path_ids(dept_path, ids, GC_DEPT_MAX_DEPTH + 1);
    for (int k = 0; k < n; k++) {
        int64_t lim[NRES], ver;
        int rc = limits_of(tx, ids[k], lim, &ver, err);
        if (rc)
            return rc;
        if (!ver)
            continue;
        /* the subtree of ids[k] is the path up to and including it */
        const char *at = strstr(dept_path, ids[k]);
        char sub[GC_DEPT_PATH_MAX];
        snprintf(sub, sizeof(sub), "%.*s/", (int)(at - dept_path + GC_ID_LEN), dept_path);
        int64_t use[NRES];
        rc = usage_of(tx, sub, use, err);
        if (rc)
            return rc;
        for (int i = 0; i < NRES; i++)
            if (want[i] > 0 && lim[i] >= 0 && use[i] + want[i] > lim[i])
                return gc_error_set(err, GC_ECONFLICT, res_names[i],
                                    "quota exceeded: department '%s' allows %s %lld for its "
                                    "subtree, %lld are in use and %lld more were asked for",
                                    ids[k], res_names[i], (long long)lim[i], (long long)use[i],
                                    (long long)want[i]);
    }
    return 0;
}

int gc_quota_check(struct gc_tx *tx, const char *dept_path, int64_t vms, int64_t vcpus,
                   int64_t memory_mib, int64_t disk_gib, struct gc_error *err)
{
    const int64_t want[NRES] = {vms, vcpus, memory_mib, disk_gib, 0, 0};
    return check_want(tx, dept_path, want, err);
}

int gc_quota_check_volume(struct gc_tx *tx, const char *dept_path, int64_t size_gib,
                          struct gc_error *err)
{
    const int64_t want[NRES] = {0, 0, 0, size_gib, 1, 0};
    return check_want(tx, dept_path, want, err);
}

int gc_quota_check_volume_grow(struct gc_tx *tx, const char *dept_path, int64_t more_gib,
                               struct gc_error *err)
{
    const int64_t want[NRES] = {0, 0, 0, more_gib, 0, 0};
    return check_want(tx, dept_path, want, err);
}

int gc_quota_check_public_ip(struct gc_tx *tx, const char *dept_path, struct gc_error *err)
{
    const int64_t want[NRES] = {0, 0, 0, 0, 0, 1};
    return check_want(tx, dept_path, want, err);
}

static json_t *numbers(const int64_t v[NRES], bool null_negative)
{
    json_t *o = json_object();
    for (int i = 0; i < NRES; i++)
        json_object_set_new(o, res_names[i],
                            null_negative && v[i] < 0 ? json_null() : json_integer(v[i]));
    return o;
}

static int build(struct gc_tx *tx, const char *dept, const char *path, json_t **out,
                 struct gc_error *err)
{
    int64_t lim[NRES], use[NRES], eff[NRES], ver;
    int rc = limits_of(tx, dept, lim, &ver, err);
    if (!rc)
        rc = usage_of(tx, path, use, err);
    if (rc)
        return rc;
    /* room left: the tightest over the department and its ancestors */
    for (int i = 0; i < NRES; i++)
        eff[i] = -1;
    char ids[GC_DEPT_MAX_DEPTH + 1][GC_ID_LEN + 1];
    int n = path_ids(path, ids, GC_DEPT_MAX_DEPTH + 1);
    for (int k = 0; k < n && !rc; k++) {
        int64_t l[NRES], v, u[NRES];
        rc = limits_of(tx, ids[k], l, &v, err);
        if (rc || !v)
            continue;
        const char *at = strstr(path, ids[k]);
        char sub[GC_DEPT_PATH_MAX];
        snprintf(sub, sizeof(sub), "%.*s/", (int)(at - path + GC_ID_LEN), path);
        rc = usage_of(tx, sub, u, err);
        for (int i = 0; !rc && i < NRES; i++) {
            if (l[i] < 0)
                continue;
            int64_t room = l[i] - u[i] < 0 ? 0 : l[i] - u[i];
            if (eff[i] < 0 || room < eff[i])
                eff[i] = room;
        }
    }
    if (rc)
        return rc;
    json_t *o = json_object();
    json_object_set_new(o, "department_id", json_string(dept));
    json_object_set_new(o, "limits", numbers(lim, true));
    json_object_set_new(o, "usage", numbers(use, false));
    json_object_set_new(o, "available", numbers(eff, true));
    json_object_set_new(o, "version", json_integer(ver));
    *out = o;
    return 0;
}

int gc_quota_get(const struct gc_ctx *ctx, const char *dept, json_t **out, struct gc_error *err)
{
    struct gc_tx *tx;
    int rc = gc_tx_begin(ctx->store, GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    char path[GC_DEPT_PATH_MAX];
    rc = gc_dept_path(tx, dept, path, err);
    if (!rc)
        rc = gc_authorize(ctx->who, GC_P_DEPT_READ, path, "department", dept, err);
    if (!rc)
        rc = build(tx, dept, path, out, err);
    gc_tx_rollback(tx);
    return rc;
}

int gc_quota_set(const struct gc_ctx *ctx, const char *dept, int64_t if_match, json_t *in,
                 json_t **out, struct gc_error *err)
{
    static const struct gc_jfield spec[] = {
        {"vms", GC_JT_INT, false, true, 0, 2000000000, GC_CS_ANY},
        {"vcpus", GC_JT_INT, false, true, 0, 2000000000, GC_CS_ANY},
        {"memory_mib", GC_JT_INT, false, true, 0, 2000000000, GC_CS_ANY},
        {"disk_gib", GC_JT_INT, false, true, 0, 2000000000, GC_CS_ANY},
        {"volumes", GC_JT_INT, false, true, 0, 2000000000, GC_CS_ANY},
        {"public_ips", GC_JT_INT, false, true, 0, 2000000000, GC_CS_ANY},
    };
    struct gc_tx *tx;
    int rc = gc_json_check(in, spec, sizeof(spec) / sizeof(spec[0]), err);
    if (!rc)
        rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    char path[GC_DEPT_PATH_MAX];
    rc = gc_dept_path(tx, dept, path, err);
    /* quotas are set by the platform: a department never raises its own */
    if (!rc && !gc_in_scope(ctx->who, path))
        rc = gc_error_set(err, GC_ENOTFOUND, "id", "department '%s' not found", dept);
    if (!rc && ctx->who->role != GC_ROLE_PLATFORM_ADMIN && ctx->who->role != GC_ROLE_OPERATOR)
        rc = gc_error_set(err, GC_EPERM, "", "only platform administrators and operators set "
                                             "quotas");
    int64_t lim[NRES], ver = 0;
    if (!rc)
        rc = limits_of(tx, dept, lim, &ver, err);
    if (!rc && if_match >= 0 && if_match != ver)
        rc = gc_error_set(err, GC_EPRECOND, "If-Match",
                          "the quota of department '%s' is at version %lld, not %lld", dept,
                          (long long)ver, (long long)if_match);
    /* a field left out keeps its value; null removes the limit */
    for (int i = 0; !rc && i < NRES; i++) {
        json_t *v = json_object_get(in, res_names[i]);
        if (v)
            lim[i] = json_is_null(v) ? -1 : json_integer_value(v);
    }
    struct gc_val a[NRES];
    for (int i = 0; i < NRES; i++)
        a[i] = lim[i] < 0 ? GC_VNUL : GC_VINT_(lim[i]);
    if (!rc)
        rc = gc_tx_exec(tx,
                        "INSERT INTO quotas (department_id, vms, vcpus, memory_mib, disk_gib,"
                        " volumes, public_ips, updated_at, version)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1) ON CONFLICT (department_id) DO UPDATE"
                        " SET vms = excluded.vms, vcpus = excluded.vcpus,"
                        " memory_mib = excluded.memory_mib, disk_gib = excluded.disk_gib,"
                        " volumes = excluded.volumes, public_ips = excluded.public_ips,"
                        " updated_at = excluded.updated_at, version = quotas.version + 1",
                        GC_ARGS(GC_VTXT(dept), a[0], a[1], a[2], a[3], a[4], a[5],
                                GC_VINT_(gc_now_ms())),
                        NULL, err);
    json_t *obj = NULL;
    if (!rc)
        rc = build(tx, dept, path, &obj, err);
    if (!rc) {
        char id[GC_ID_LEN + 1];
        snprintf(id, sizeof(id), "%s", dept);
        struct gc_audit_event ev = {.action = "quota.update",
                                    .resource_type = "quota",
                                    .resource_id = id,
                                    .department_id = id,
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
