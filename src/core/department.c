/* Departments: the organisation tree (province → city → bureau → office) that owns users
 * and resources and bounds what department roles can see. */
#include "core/core.h"

#include "core/repcache.h"
#include "core/validate.h"
#include "util/buf.h"
#include "util/mem.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEPT_COLS \
    "id, parent_id, path, depth, name, code, description, created_at, updated_at, version"

/* Tables whose rows keep a department from being deleted: (table, column, what).
 * Later resources (VMs, volumes, networks) add a line here. */
static const struct {
    const char *sql;
    const char *what;
} owned_checks[] = {
    {"SELECT COUNT(*) FROM departments WHERE parent_id = ?", "child departments"},
    {"SELECT COUNT(*) FROM users WHERE department_id = ?", "users"},
    {"SELECT COUNT(*) FROM jobs WHERE department_id = ? AND state IN ('queued', 'running')",
     "unfinished jobs"},
    {"SELECT COUNT(*) FROM vms WHERE department_id = ?", "virtual machines"},
    {"SELECT COUNT(*) FROM networks WHERE department_id = ?", "networks"},
    {"SELECT COUNT(*) FROM security_groups WHERE department_id = ?", "security groups"},
    {"SELECT COUNT(*) FROM server_groups WHERE department_id = ?", "server groups"},
    {"SELECT COUNT(*) FROM volumes WHERE department_id = ?", "volumes"},
};

static json_t *dept_json(struct gc_rows *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(gc_rows_text(r, 0)));
    json_object_set_new(o, "parent_id",
                        gc_rows_null(r, 1) ? json_null() : json_string(gc_rows_text(r, 1)));
    json_object_set_new(o, "depth", json_integer(gc_rows_int(r, 3)));
    json_object_set_new(o, "name", json_string(gc_rows_text(r, 4)));
    json_object_set_new(o, "code",
                        gc_rows_null(r, 5) ? json_null() : json_string(gc_rows_text(r, 5)));
    json_object_set_new(o, "description", json_string(gc_rows_text(r, 6)));
    json_object_set_new(o, "created_at", gc_json_time(gc_rows_int(r, 7)));
    json_object_set_new(o, "updated_at", gc_json_time(gc_rows_int(r, 8)));
    json_object_set_new(o, "version", json_integer(gc_rows_int(r, 9)));
    return o;
}

/* Loads one department; *path (GC_DEPT_PATH_MAX) and *version optional. */
static int load(struct gc_tx *tx, const char *id, json_t **out, char *path, int64_t *version,
                struct gc_error *err)
{
    if (!gc_id_valid(id))
        return gc_error_set(err, GC_ENOTFOUND, "id", "department '%.64s' not found", id);
    struct gc_rows *r;
    int rc = gc_tx_query(tx, "SELECT " DEPT_COLS " FROM departments WHERE id = ?",
                         GC_ARGS(GC_VTXT(id)), &r, err);
    if (rc)
        return rc;
    rc = gc_rows_next(r, err);
    if (rc == 0)
        rc = gc_error_set(err, GC_ENOTFOUND, "id", "department '%s' not found", id);
    if (rc > 0) {
        rc = 0;
        if (path)
            snprintf(path, GC_DEPT_PATH_MAX, "%s", gc_rows_text(r, 2));
        if (version)
            *version = gc_rows_int(r, 9);
        if (out)
            *out = dept_json(r);
    }
    gc_rows_free(r);
    return rc;
}

int gc_dept_path(struct gc_tx *tx, const char *id, char *path, struct gc_error *err)
{
    return load(tx, id, NULL, path, NULL, err);
}

static const struct gc_jfield create_spec[] = {
    {"name", GC_JT_STRING, true, false, 1, 128, GC_CS_TEXT},
    {"parent_id", GC_JT_STRING, false, true, 36, 36, GC_CS_CODE},
    {"code", GC_JT_STRING, false, true, 1, 64, GC_CS_CODE},
    {"description", GC_JT_STRING, false, false, 0, 1024, GC_CS_ANY},
};

static const struct gc_jfield update_spec[] = {
    {"name", GC_JT_STRING, false, false, 1, 128, GC_CS_TEXT},
    {"parent_id", GC_JT_STRING, false, true, 36, 36, GC_CS_CODE},
    {"code", GC_JT_STRING, false, true, 1, 64, GC_CS_CODE},
    {"description", GC_JT_STRING, false, false, 0, 1024, GC_CS_ANY},
};

/* Makes a unique-constraint failure say which value clashed. */
static int explain_conflict(int rc, struct gc_error *err, const char *name, const char *code)
{
    if (rc != GC_ECONFLICT)
        return rc;
    if (strstr(err->msg, "code"))
        return gc_error_set(err, GC_ECONFLICT, "code", "a department with code '%s' exists",
                            code ? code : "");
    return gc_error_set(err, GC_ECONFLICT, "name",
                        "a department named '%s' already exists under the same parent",
                        name ? name : "");
}

/* Root departments have a NULL parent, which a UNIQUE index does not compare; check here. */
static int check_root_name(struct gc_tx *tx, const char *name, const char *self,
                           struct gc_error *err)
{
    int64_t n = 0;
    int rc = gc_tx_query_int(tx,
                             "SELECT COUNT(*) FROM departments WHERE parent_id IS NULL AND "
                             "name = ? AND id <> ?",
                             GC_ARGS(GC_VTXT(name), GC_VTXT(self ? self : "")), &n, err);
    if (!rc && n > 0)
        rc = gc_error_set(err, GC_ECONFLICT, "name",
                          "a top-level department named '%s' already exists", name);
    return rc;
}

int gc_dept_create(const struct gc_ctx *ctx, json_t *in, json_t **out, struct gc_error *err)
{
    int rc = gc_require(ctx->who, GC_P_DEPT_WRITE, err);
    if (!rc)
        rc = gc_json_check(in, create_spec, sizeof(create_spec) / sizeof(create_spec[0]), err);
    if (rc)
        return rc;
    const char *name = gc_json_str(in, "name");
    const char *parent = gc_json_str(in, "parent_id");
    const char *code = gc_json_str(in, "code");
    const char *desc = gc_json_str(in, "description");

    struct gc_tx *tx;
    rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    char ppath[GC_DEPT_PATH_MAX] = "/";
    int64_t depth = 0;
    if (parent) {
        rc = load(tx, parent, NULL, ppath, NULL, err);
        if (rc == GC_ENOTFOUND || (!rc && !gc_in_scope(ctx->who, ppath)))
            rc = gc_error_set(err, GC_EINVAL, "parent_id", "parent department '%s' not found",
                              parent);
        for (const char *p = ppath; !rc && *p; p++)
            depth += *p == '/';
        depth -= 1;
        if (!rc && depth >= GC_DEPT_MAX_DEPTH)
            rc = gc_error_set(err, GC_EINVAL, "parent_id",
                              "departments nest at most %d levels deep", GC_DEPT_MAX_DEPTH);
    } else if (!gc_role_is_platform(ctx->who->role)) {
        rc = gc_error_set(err, GC_EPERM, "parent_id",
                          "only platform administrators create top-level departments; give "
                          "parent_id");
    } else {
        rc = check_root_name(tx, name, NULL, err);
    }
    char id[GC_ID_LEN + 1], path[GC_DEPT_PATH_MAX + GC_ID_LEN + 2];
    gc_id_new(id);
    snprintf(path, sizeof(path), "%s%s/", ppath, id);
    int64_t now = gc_now_ms();
    if (!rc)
        rc = gc_tx_exec(tx,
                        "INSERT INTO departments (id, parent_id, path, depth, name, code,"
                        " description, created_at, updated_at, version)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
                        GC_ARGS(GC_VTXT(id), GC_VTXT(parent), GC_VTXT(path), GC_VINT_(depth),
                                GC_VTXT(name), GC_VTXT(code), GC_VTXT(desc ? desc : ""),
                                GC_VINT_(now), GC_VINT_(now)),
                        NULL, err);
    rc = explain_conflict(rc, err, name, code);
    json_t *obj = NULL;
    if (!rc)
        rc = load(tx, id, &obj, NULL, NULL, err);
    if (!rc) {
        struct gc_audit_event ev = {.action = "department.create",
                                    .resource_type = "department",
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

int gc_dept_get(const struct gc_ctx *ctx, const char *id, json_t **out, struct gc_error *err)
{
    struct gc_tx *tx;
    int rc = gc_tx_begin(ctx->store, GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    char path[GC_DEPT_PATH_MAX];
    json_t *obj = NULL;
    rc = load(tx, id, &obj, path, NULL, err);
    gc_tx_rollback(tx);
    if (!rc)
        rc = gc_authorize(ctx->who, GC_P_DEPT_READ, path, "department", id, err);
    if (rc) {
        json_decref(obj);
        return rc;
    }
    *out = obj;
    return 0;
}

int gc_dept_get_body(const struct gc_ctx *ctx, const char *id, char **body, int64_t *version,
                     struct gc_error *err)
{
    struct gc_repcache_hit hit;
    if (gc_repcache_get(ctx->store, "department", id, &hit)) {
        int rc = gc_authorize(ctx->who, GC_P_DEPT_READ, hit.path, "department", id, err);
        if (rc) {
            free(hit.body);
            return rc;
        }
        *body = hit.body;
        *version = hit.version;
        return 0;
    }
    uint64_t gen = gc_store_generation(ctx->store);
    struct gc_tx *tx;
    int rc = gc_tx_begin(ctx->store, GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    char path[GC_DEPT_PATH_MAX];
    json_t *obj = NULL;
    int64_t v = 0;
    rc = load(tx, id, &obj, path, &v, err);
    gc_tx_rollback(tx);
    if (rc)
        return rc;
    char *text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    gc_repcache_put(ctx->store, gen, "department", id, text, strlen(text), path, v);
    rc = gc_authorize(ctx->who, GC_P_DEPT_READ, path, "department", id, err);
    if (rc) {
        free(text);
        return rc;
    }
    *body = text;
    *version = v;
    return 0;
}

static json_t *dept_row(struct gc_rows *r, const struct gc_principal *who)
{
    (void)who;
    return dept_json(r);
}

int gc_dept_list(const struct gc_ctx *ctx, json_t *filters, int limit, const char *cursor,
                 json_t **items, char **next_cursor, struct gc_error *err)
{
    int rc = gc_require(ctx->who, GC_P_DEPT_READ, err);
    if (!rc)
        rc = gc_page_limit(limit, &limit, err);
    if (!rc)
        rc = gc_page_cursor_id(cursor, err);
    if (rc)
        return rc;
    struct gc_buf sql;
    gc_buf_init(&sql, GC_BUF_UNLIMITED);
    struct gc_val args[8];
    size_t n = 0;
    (void)gc_buf_adds(&sql, "SELECT " DEPT_COLS " FROM departments WHERE id > ?");
    args[n++] = GC_VTXT(cursor ? cursor : "");
    const char *parent = gc_json_str(filters, "parent_id");
    if (parent && strcmp(parent, "root") == 0) {
        (void)gc_buf_adds(&sql, " AND parent_id IS NULL");
    } else if (parent) {
        (void)gc_buf_adds(&sql, " AND parent_id = ?");
        args[n++] = GC_VTXT(parent);
    }
    const char *name = gc_json_str(filters, "name");
    if (name) {
        (void)gc_buf_adds(&sql, " AND name = ?");
        args[n++] = GC_VTXT(name);
    }
    const char *code = gc_json_str(filters, "code");
    if (code) {
        (void)gc_buf_adds(&sql, " AND code = ?");
        args[n++] = GC_VTXT(code);
    }
    char prefix[GC_DEPT_PATH_MAX + 2];
    if (!gc_role_is_platform(ctx->who->role)) {
        if (ctx->who->role == GC_ROLE_DEPARTMENT_ADMIN) {
            snprintf(prefix, sizeof(prefix), "%s%%", ctx->who->dept_path);
            (void)gc_buf_adds(&sql, " AND path LIKE ?");
        } else {
            snprintf(prefix, sizeof(prefix), "%s", ctx->who->dept_path);
            (void)gc_buf_adds(&sql, " AND path = ?");
        }
        args[n++] = GC_VTXT(prefix);
    }
    (void)gc_buf_adds(&sql, " ORDER BY id LIMIT ?");
    args[n++] = GC_VINT_(limit + 1);

    rc = gc_page_run(ctx, gc_buf_str(&sql), args, n, limit, "id", dept_row, items,
                     next_cursor, err);
    gc_buf_release(&sql);
    return rc;
}

static int check_version(int64_t if_match, int64_t have, const char *id, struct gc_error *err)
{
    if (if_match >= 0 && if_match != have)
        return gc_error_set(err, GC_EPRECOND, "If-Match",
                            "department '%s' is at version %lld, not %lld: reload it and retry",
                            id, (long long)have, (long long)if_match);
    return 0;
}

int gc_dept_update(const struct gc_ctx *ctx, const char *id, int64_t if_match, json_t *in,
                   json_t **out, struct gc_error *err)
{
    int rc = gc_json_check(in, update_spec, sizeof(update_spec) / sizeof(update_spec[0]), err);
    if (rc)
        return rc;
    struct gc_tx *tx;
    rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    char path[GC_DEPT_PATH_MAX + GC_ID_LEN + 2];
    int64_t version = 0;
    json_t *before = NULL, *after = NULL;
    rc = load(tx, id, &before, path, &version, err);
    if (!rc)
        rc = gc_authorize(ctx->who, GC_P_DEPT_WRITE, path, "department", id, err);
    if (!rc)
        rc = check_version(if_match, version, id, err);

    const char *name = gc_json_str(in, "name");
    const char *desc = gc_json_str(in, "description");
    json_t *jcode = json_object_get(in, "code");
    json_t *jparent = json_object_get(in, "parent_id");
    const char *code = json_is_string(jcode) ? json_string_value(jcode) : NULL;
    int64_t now = gc_now_ms();

    /* moving a subtree */
    if (!rc && jparent) {
        const char *old_parent = gc_json_str(before, "parent_id");
        const char *np = json_is_string(jparent) ? json_string_value(jparent) : NULL;
        bool same = (!np && !old_parent) || (np && old_parent && strcmp(np, old_parent) == 0);
        if (!same) {
            char ppath[GC_DEPT_PATH_MAX] = "/";
            if (strcmp(path, ctx->who->dept_path) == 0)
                rc = gc_error_set(err, GC_EPERM, "parent_id",
                                  "you cannot move your own department");
            else if (!np && !gc_role_is_platform(ctx->who->role))
                rc = gc_error_set(err, GC_EPERM, "parent_id",
                                  "only platform administrators create top-level departments");
            if (!rc && np) {
                rc = load(tx, np, NULL, ppath, NULL, err);
                if (rc == GC_ENOTFOUND || (!rc && !gc_in_scope(ctx->who, ppath)))
                    rc = gc_error_set(err, GC_EINVAL, "parent_id",
                                      "parent department '%s' not found", np);
                if (!rc && strncmp(ppath, path, strlen(path)) == 0)
                    rc = gc_error_set(err, GC_EINVAL, "parent_id",
                                      "a department cannot move under itself or its own "
                                      "subtree");
            }
            char newpath[GC_DEPT_PATH_MAX + GC_ID_LEN + 2];
            snprintf(newpath, sizeof(newpath), "%s%s/", ppath, id);
            /* depth of the deepest department in the moved subtree after the move */
            int64_t maxdepth = 0, olddepth = 0;
            for (const char *p = path; *p; p++)
                olddepth += *p == '/';
            int64_t newdepth = 0;
            for (const char *p = newpath; *p; p++)
                newdepth += *p == '/';
            char like[sizeof(path) + 2];
            snprintf(like, sizeof(like), "%s%%", path);
            if (!rc)
                rc = gc_tx_query_int(tx, "SELECT MAX(depth) FROM departments WHERE path LIKE ?",
                                     GC_ARGS(GC_VTXT(like)), &maxdepth, err);
            if (!rc && maxdepth + (newdepth - olddepth) >= GC_DEPT_MAX_DEPTH)
                rc = gc_error_set(err, GC_EINVAL, "parent_id",
                                  "the move would nest departments deeper than %d levels",
                                  GC_DEPT_MAX_DEPTH);
            if (!rc && !np)
                rc = check_root_name(tx, name ? name : gc_json_str(before, "name"), id, err);
            if (!rc)
                rc = gc_tx_exec(tx,
                                "UPDATE departments SET path = ? || SUBSTR(path, ?),"
                                " depth = depth + ? WHERE path LIKE ?",
                                GC_ARGS(GC_VTXT(newpath), GC_VINT_((int64_t)strlen(path) + 1),
                                        GC_VINT_(newdepth - olddepth), GC_VTXT(like)),
                                NULL, err);
            if (!rc)
                rc = gc_tx_exec(tx, "UPDATE departments SET parent_id = ? WHERE id = ?",
                                GC_ARGS(GC_VTXT(np), GC_VTXT(id)), NULL, err);
            if (!rc)
                snprintf(path, sizeof(path), "%s", newpath);
        }
    }
    if (!rc && name && !gc_json_str(before, "parent_id") && !jparent)
        rc = check_root_name(tx, name, id, err);
    if (!rc)
        rc = gc_tx_exec(tx,
                        "UPDATE departments SET name = COALESCE(?, name),"
                        " description = COALESCE(?, description),"
                        " code = CASE WHEN ? = 1 THEN ? ELSE code END,"
                        " updated_at = ?, version = version + 1 WHERE id = ?",
                        GC_ARGS(GC_VTXT(name), GC_VTXT(desc), GC_VINT_(jcode ? 1 : 0),
                                GC_VTXT(code), GC_VINT_(now), GC_VTXT(id)),
                        NULL, err);
    rc = explain_conflict(rc, err, name ? name : gc_json_str(before, "name"), code);
    if (!rc)
        rc = load(tx, id, &after, NULL, NULL, err);
    if (!rc) {
        json_t *detail = json_pack("{s:O,s:O}", "before", before, "after", after);
        struct gc_audit_event ev = {.action = "department.update",
                                    .resource_type = "department",
                                    .resource_id = id,
                                    .department_id = id,
                                    .department_path = path,
                                    .outcome = GC_OUTCOME_SUCCESS,
                                    .detail = detail};
        rc = gc_audit_append(tx, ctx, &ev, err);
        json_decref(detail);
    }
    json_decref(before);
    if (rc) {
        gc_tx_rollback(tx);
        json_decref(after);
        return rc;
    }
    rc = gc_tx_commit(tx, err);
    gc_auth_cache_flush(); /* a move changes the scope of the users below */
    if (rc) {
        json_decref(after);
        return rc;
    }
    *out = after;
    return 0;
}

int gc_dept_delete(const struct gc_ctx *ctx, const char *id, int64_t if_match,
                   struct gc_error *err)
{
    struct gc_tx *tx;
    int rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    char path[GC_DEPT_PATH_MAX];
    int64_t version = 0;
    json_t *before = NULL;
    rc = load(tx, id, &before, path, &version, err);
    if (!rc)
        rc = gc_authorize(ctx->who, GC_P_DEPT_WRITE, path, "department", id, err);
    if (!rc && strcmp(path, ctx->who->dept_path) == 0)
        rc = gc_error_set(err, GC_EPERM, "id", "you cannot delete your own department");
    if (!rc)
        rc = check_version(if_match, version, id, err);
    for (size_t i = 0; !rc && i < sizeof(owned_checks) / sizeof(owned_checks[0]); i++) {
        int64_t n = 0;
        rc = gc_tx_query_int(tx, owned_checks[i].sql, GC_ARGS(GC_VTXT(id)), &n, err);
        if (!rc && n > 0)
            rc = gc_error_set(err, GC_ECONFLICT, "id",
                              "department '%s' still has %lld %s; move or delete them first", id,
                              (long long)n, owned_checks[i].what);
    }
    if (!rc)
        rc = gc_tx_exec(tx, "DELETE FROM departments WHERE id = ?", GC_ARGS(GC_VTXT(id)), NULL,
                        err);
    if (!rc) {
        struct gc_audit_event ev = {.action = "department.delete",
                                    .resource_type = "department",
                                    .resource_id = id,
                                    .department_id = id,
                                    .department_path = path,
                                    .outcome = GC_OUTCOME_SUCCESS,
                                    .detail = before};
        rc = gc_audit_append(tx, ctx, &ev, err);
    }
    json_decref(before);
    if (rc) {
        gc_tx_rollback(tx);
        return rc;
    }
    return gc_tx_commit(tx, err);
}
