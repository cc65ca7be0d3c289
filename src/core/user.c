/* Users and roles: who can log in, in which department, with which rights. */
#include "core/core.h"

#include "core/repcache.h"
#include "core/validate.h"
#include "crypto/crypto.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USER_COLS                                                                               \
    "u.id, u.username, u.display_name, u.role, u.department_id, u.disabled, u.locked_until,"    \
    " u.created_at, u.updated_at, u.password_changed_at, u.version, COALESCE(d.path, '')"
#define USER_FROM " FROM users u LEFT JOIN departments d ON d.id = u.department_id"

struct user_row {
    char path[GC_DEPT_PATH_MAX];
    int role;
    int64_t version;
    bool disabled;
    char department_id[GC_ID_LEN + 1];
};

static json_t *user_json(struct gc_rows *r, struct user_row *row)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(gc_rows_text(r, 0)));
    json_object_set_new(o, "username", json_string(gc_rows_text(r, 1)));
    json_object_set_new(o, "display_name", json_string(gc_rows_text(r, 2)));
    json_object_set_new(o, "role", json_string(gc_rows_text(r, 3)));
    json_object_set_new(o, "department_id",
                        gc_rows_null(r, 4) ? json_null() : json_string(gc_rows_text(r, 4)));
    json_object_set_new(o, "disabled", json_boolean(gc_rows_int(r, 5) != 0));
    int64_t locked = gc_rows_int(r, 6);
    json_object_set_new(o, "locked_until", gc_json_time(locked > gc_now_ms() ? locked : 0));
    json_object_set_new(o, "created_at", gc_json_time(gc_rows_int(r, 7)));
    json_object_set_new(o, "updated_at", gc_json_time(gc_rows_int(r, 8)));
    json_object_set_new(o, "password_changed_at", gc_json_time(gc_rows_int(r, 9)));
    json_object_set_new(o, "version", json_integer(gc_rows_int(r, 10)));
    if (row) {
        snprintf(row->path, sizeof(row->path), "%s", gc_rows_text(r, 11));
        row->role = gc_role_parse(gc_rows_text(r, 3));
        row->version = gc_rows_int(r, 10);
        row->disabled = gc_rows_int(r, 5) != 0;
        snprintf(row->department_id, sizeof(row->department_id), "%s", gc_rows_text(r, 4));
    }
    return o;
}

static int load(struct gc_tx *tx, const char *id, json_t **out, struct user_row *row,
                struct gc_error *err)
{
    if (!gc_id_valid(id))
        return gc_error_set(err, GC_ENOTFOUND, "id", "user '%.64s' not found", id);
    struct gc_rows *r;
    int rc = gc_tx_query(tx, "SELECT " USER_COLS USER_FROM " WHERE u.id = ?",
                         GC_ARGS(GC_VTXT(id)), &r, err);
    if (rc)
        return rc;
    rc = gc_rows_next(r, err);
    if (rc == 0)
        rc = gc_error_set(err, GC_ENOTFOUND, "id", "user '%s' not found", id);
    if (rc > 0) {
        rc = 0;
        json_t *o = user_json(r, row);
        if (out)
            *out = o;
        else
            json_decref(o);
    }
    gc_rows_free(r);
    return rc;
}

int gc_password_policy(const struct gc_config *cfg, const char *pw, struct gc_error *err)
{
    size_t len = gc_utf8_len(pw);
    if ((int64_t)len < cfg->password_min_length)
        return gc_error_set(err, GC_EINVAL, "password",
                            "password must be at least %lld characters",
                            (long long)cfg->password_min_length);
    if (len > 256)
        return gc_error_set(err, GC_EINVAL, "password", "password must be at most 256 characters");
    int lower = 0, upper = 0, digit = 0, other = 0;
    for (const unsigned char *p = (const unsigned char *)pw; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            return gc_error_set(err, GC_EINVAL, "password",
                                "password must not contain control characters");
        if (*p >= 'a' && *p <= 'z')
            lower = 1;
        else if (*p >= 'A' && *p <= 'Z')
            upper = 1;
        else if (*p >= '0' && *p <= '9')
            digit = 1;
        else
            other = 1;
    }
    if (lower + upper + digit + other < 3)
        return gc_error_set(err, GC_EINVAL, "password",
                            "password needs characters of at least three kinds: lowercase, "
                            "uppercase, digits, others");
    return 0;
}

static const struct gc_jfield create_spec[] = {
    {"username", GC_JT_STRING, true, false, 2, 64, GC_CS_USERNAME},
    {"password", GC_JT_STRING, true, false, 1, 256, GC_CS_ANY},
    {"role", GC_JT_STRING, true, false, 1, 32, GC_CS_CODE},
    {"department_id", GC_JT_STRING, false, true, 1, 64, GC_CS_ANY},
    {"display_name", GC_JT_STRING, false, false, 0, 128, GC_CS_TEXT},
};

static const struct gc_jfield update_spec[] = {
    {"display_name", GC_JT_STRING, false, false, 0, 128, GC_CS_TEXT},
    {"password", GC_JT_STRING, false, false, 1, 256, GC_CS_ANY},
    {"role", GC_JT_STRING, false, false, 1, 32, GC_CS_CODE},
    {"department_id", GC_JT_STRING, false, true, 1, 64, GC_CS_ANY},
    {"disabled", GC_JT_BOOL, false, false, 0, 0, GC_CS_ANY},
    {"locked", GC_JT_BOOL, false, false, 0, 0, GC_CS_ANY},
    {"current_password", GC_JT_STRING, false, false, 1, 1024, GC_CS_ANY},
};

static int parse_role(const char *s, int *role, struct gc_error *err)
{
    *role = gc_role_parse(s);
    if (*role < 0)
        return gc_error_set(err, GC_EINVAL, "role",
                            "unknown role '%.32s'; roles: platform_admin, operator, auditor, "
                            "supervisor, department_admin, department_user",
                            s);
    return 0;
}

/* May `who` give `role` to someone in the department at `dept_path`? */
static int check_role_grant(const struct gc_principal *who, int role, struct gc_error *err)
{
    if (gc_role_is_platform((enum gc_role)role) && who->role != GC_ROLE_PLATFORM_ADMIN)
        return gc_error_set(err, GC_EPERM, "role",
                            "only a platform administrator may grant the role %s",
                            gc_role_name((enum gc_role)role));
    return 0;
}

/* Resolves the department a user is to belong to, for role; *path gets its path. */
static int resolve_dept(struct gc_tx *tx, const struct gc_principal *who, int role,
                        const char *dept, char *path, struct gc_error *err)
{
    path[0] = '\0';
    if (gc_role_is_platform((enum gc_role)role)) {
        if (dept)
            return gc_error_set(err, GC_EINVAL, "department_id",
                                "platform role %s belongs to no department; omit department_id",
                                gc_role_name((enum gc_role)role));
        return 0;
    }
    if (!dept)
        return gc_error_set(err, GC_EINVAL, "department_id",
                            "role %s needs a department_id", gc_role_name((enum gc_role)role));
    int rc = gc_dept_path(tx, dept, path, err);
    if (rc == GC_ENOTFOUND || (!rc && !gc_in_scope(who, path)))
        return gc_error_set(err, GC_EINVAL, "department_id", "department '%.64s' not found",
                            dept);
    return rc;
}

static int count_other_admins(struct gc_tx *tx, const char *id, int64_t *n, struct gc_error *err)
{
    return gc_tx_query_int(tx,
                           "SELECT COUNT(*) FROM users WHERE role = 'platform_admin' AND "
                           "disabled = 0 AND id <> ?",
                           GC_ARGS(GC_VTXT(id)), n, err);
}

static int finish_write(struct gc_tx *tx, const struct gc_ctx *ctx, const char *action,
                        const char *id, const char *dept_id, const char *path, json_t *detail,
                        int rc, struct gc_error *err)
{
    if (!rc) {
        struct gc_audit_event ev = {.action = action,
                                    .resource_type = "user",
                                    .resource_id = id,
                                    .department_id = dept_id && dept_id[0] ? dept_id : NULL,
                                    .department_path = path,
                                    .outcome = GC_OUTCOME_SUCCESS,
                                    .detail = detail};
        rc = gc_audit_append(tx, ctx, &ev, err);
    }
    if (rc) {
        gc_tx_rollback(tx);
        return rc;
    }
    rc = gc_tx_commit(tx, err);
    gc_auth_cache_flush();
    return rc;
}

int gc_user_create(const struct gc_ctx *ctx, json_t *in, json_t **out, struct gc_error *err)
{
    int rc = gc_require(ctx->who, GC_P_USER_WRITE, err);
    if (!rc)
        rc = gc_json_check(in, create_spec, sizeof(create_spec) / sizeof(create_spec[0]), err);
    int role = -1;
    if (!rc)
        rc = parse_role(gc_json_str(in, "role"), &role, err);
    if (!rc)
        rc = check_role_grant(ctx->who, role, err);
    const char *pw = gc_json_str(in, "password");
    if (!rc)
        rc = gc_password_policy(ctx->cfg, pw, err);
    if (rc)
        return rc;
    const char *username = gc_json_str(in, "username");
    const char *dept = gc_json_str(in, "department_id");
    const char *display = gc_json_str(in, "display_name");
    /* hash outside the write transaction: scrypt takes tens of milliseconds */
    char *hash = gc_password_hash(pw);
    struct gc_tx *tx;
    rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc) {
        free(hash);
        return rc;
    }
    char path[GC_DEPT_PATH_MAX], id[GC_ID_LEN + 1];
    gc_id_new(id);
    int64_t now = gc_now_ms();
    rc = resolve_dept(tx, ctx->who, role, dept, path, err);
    if (!rc)
        rc = gc_tx_exec(tx,
                        "INSERT INTO users (id, username, display_name, password_hash, role,"
                        " department_id, password_changed_at, created_at, updated_at, version)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
                        GC_ARGS(GC_VTXT(id), GC_VTXT(username), GC_VTXT(display ? display : ""),
                                GC_VTXT(hash), GC_VTXT(gc_role_name((enum gc_role)role)),
                                GC_VTXT(dept), GC_VINT_(now), GC_VINT_(now), GC_VINT_(now)),
                        NULL, err);
    free(hash);
    if (rc == GC_ECONFLICT)
        rc = gc_error_set(err, GC_ECONFLICT, "username", "username '%s' is taken", username);
    json_t *obj = NULL;
    if (!rc)
        rc = load(tx, id, &obj, NULL, err);
    rc = finish_write(tx, ctx, "user.create", id, dept, path, obj, rc, err);
    if (rc) {
        json_decref(obj);
        return rc;
    }
    *out = obj;
    return 0;
}

int gc_user_get(const struct gc_ctx *ctx, const char *id, json_t **out, struct gc_error *err)
{
    if (strcmp(id, "me") == 0)
        id = ctx->who->user_id;
    struct gc_tx *tx;
    int rc = gc_tx_begin(ctx->store, GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    struct user_row row;
    json_t *obj = NULL;
    rc = load(tx, id, &obj, &row, err);
    gc_tx_rollback(tx);
    if (!rc && strcmp(id, ctx->who->user_id) != 0)
        rc = gc_authorize(ctx->who, GC_P_USER_READ, row.path, "user", id, err);
    if (rc) {
        json_decref(obj);
        return rc;
    }
    *out = obj;
    return 0;
}

int gc_user_get_body(const struct gc_ctx *ctx, const char *id, char **body, int64_t *version,
                     struct gc_error *err)
{
    if (strcmp(id, "me") == 0)
        id = ctx->who->user_id;
    bool self = strcmp(id, ctx->who->user_id) == 0;
    struct gc_repcache_hit hit;
    if (gc_repcache_get(ctx->store, "user", id, &hit)) {
        int rc = self ? 0 : gc_authorize(ctx->who, GC_P_USER_READ, hit.path, "user", id, err);
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
    struct user_row row;
    json_t *obj = NULL;
    rc = load(tx, id, &obj, &row, err);
    gc_tx_rollback(tx);
    if (rc)
        return rc;
    char *text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    /* locked_until is computed against the clock: cache only while no lock is shown */
    if (!strstr(text, "\"locked_until\":\""))
        gc_repcache_put(ctx->store, gen, "user", id, text, strlen(text), row.path, row.version);
    rc = self ? 0 : gc_authorize(ctx->who, GC_P_USER_READ, row.path, "user", id, err);
    if (rc) {
        free(text);
        return rc;
    }
    *body = text;
    *version = row.version;
    return 0;
}

static json_t *user_row_json(struct gc_rows *r, const struct gc_principal *who)
{
    (void)who;
    return user_json(r, NULL);
}

int gc_user_list(const struct gc_ctx *ctx, json_t *filters, int limit, const char *cursor,
                 json_t **items, char **next_cursor, struct gc_error *err)
{
    int rc = gc_require(ctx->who, GC_P_USER_READ, err);
    if (!rc)
        rc = gc_page_limit(limit, &limit, err);
    if (!rc)
        rc = gc_page_cursor_id(cursor, err);
    const char *role = gc_json_str(filters, "role");
    int r_;
    if (!rc && role)
        rc = parse_role(role, &r_, err);
    if (rc)
        return rc;
    struct gc_buf sql;
    gc_buf_init(&sql, GC_BUF_UNLIMITED);
    struct gc_val args[8];
    size_t n = 0;
    (void)gc_buf_adds(&sql, "SELECT " USER_COLS USER_FROM " WHERE u.id > ?");
    args[n++] = GC_VTXT(cursor ? cursor : "");
    static const char *const filt[][2] = {
        {"department_id", "u.department_id"}, {"role", "u.role"}, {"username", "u.username"}};
    for (size_t i = 0; i < 3; i++) {
        const char *v = gc_json_str(filters, filt[i][0]);
        if (v) {
            (void)gc_buf_addf(&sql, " AND %s = ?", filt[i][1]);
            args[n++] = GC_VTXT(v);
        }
    }
    char prefix[GC_DEPT_PATH_MAX + 2];
    if (!gc_role_is_platform(ctx->who->role)) {
        if (ctx->who->role == GC_ROLE_DEPARTMENT_ADMIN) {
            snprintf(prefix, sizeof(prefix), "%s%%", ctx->who->dept_path);
            (void)gc_buf_adds(&sql, " AND d.path LIKE ?");
        } else {
            snprintf(prefix, sizeof(prefix), "%s", ctx->who->dept_path);
            (void)gc_buf_adds(&sql, " AND d.path = ?");
        }
        args[n++] = GC_VTXT(prefix);
    }
    (void)gc_buf_adds(&sql, " ORDER BY u.id LIMIT ?");
    args[n++] = GC_VINT_(limit + 1);

    rc = gc_page_run(ctx, gc_buf_str(&sql), args, n, limit, "id", user_row_json, items,
                     next_cursor, err);
    gc_buf_release(&sql);
    return rc;
}

/* A wrong current password counts as a failed login: guessing it through a stolen session
 * locks the account like guessing at the login does, and a lock ends the sessions too. */
static int wrong_current_password(const struct gc_ctx *ctx, const char *id,
                                  struct gc_error *err)
{
    struct gc_error e2 = {0};
    struct gc_tx *tx;
    bool locked = false;
    if (gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, &e2) == 0) {
        int64_t fails = 0;
        int rc = gc_tx_exec(tx, "UPDATE users SET failed_logins = failed_logins + 1 WHERE id = ?",
                            GC_ARGS(GC_VTXT(id)), NULL, &e2);
        if (!rc)
            rc = gc_tx_query_int(tx, "SELECT failed_logins FROM users WHERE id = ?",
                                 GC_ARGS(GC_VTXT(id)), &fails, &e2);
        if (!rc && fails >= ctx->cfg->max_failed_logins) {
            locked = true;
            rc = gc_tx_exec(tx,
                            "UPDATE users SET failed_logins = 0, locked_until = ? WHERE id = ?",
                            GC_ARGS(GC_VINT_(gc_now_ms() + ctx->cfg->lockout_seconds * 1000),
                                    GC_VTXT(id)),
                            NULL, &e2);
            if (!rc)
                rc = gc_tx_exec(tx, "DELETE FROM tokens WHERE user_id = ? AND kind = 'session'",
                                GC_ARGS(GC_VTXT(id)), NULL, &e2);
        }
        if (rc)
            gc_tx_rollback(tx);
        else
            (void)gc_tx_commit(tx, &e2);
        gc_auth_cache_flush();
    }
    if (locked) {
        gc_error_set(err, GC_ELOCKED, "current_password",
                     "current_password was wrong too many times: the account is locked and its "
                     "sessions are ended");
        err->retry_after = ctx->cfg->lockout_seconds;
        return GC_ELOCKED;
    }
    return gc_error_set(err, GC_EPERM, "current_password",
                        "current_password is wrong; the password was not changed");
}

int gc_user_update(const struct gc_ctx *ctx, const char *id, int64_t if_match, json_t *in,
                   json_t **out, struct gc_error *err)
{
    if (strcmp(id, "me") == 0)
        id = ctx->who->user_id;
    int rc = gc_json_check(in, update_spec, sizeof(update_spec) / sizeof(update_spec[0]), err);
    if (rc)
        return rc;
    bool self = strcmp(id, ctx->who->user_id) == 0;
    const char *pw = gc_json_str(in, "password");
    const char *role_s = gc_json_str(in, "role");
    json_t *jdept = json_object_get(in, "department_id");
    json_t *jdisabled = json_object_get(in, "disabled");
    json_t *jlocked = json_object_get(in, "locked");
    if (self && (role_s || jdept || jdisabled || jlocked))
        return gc_error_set(err, GC_EPERM, role_s ? "role" : jdept ? "department_id"
                                           : jdisabled ? "disabled" : "locked",
                            "you cannot change your own role, department, disabled or locked "
                            "state; ask another administrator");
    if (jlocked && json_is_true(jlocked))
        return gc_error_set(err, GC_EINVAL, "locked",
                            "field 'locked' only accepts false (to lift a lock)");
    /* changing your own password needs the current one: a stolen session must not be able
     * to take the account over for good */
    const char *current = gc_json_str(in, "current_password");
    if (current && !(self && pw))
        return gc_error_set(err, GC_EINVAL, "current_password",
                            "current_password goes only with a change of your own password");
    if (self && pw && !current)
        return gc_error_set(err, GC_EINVAL, "current_password",
                            "give current_password to change your own password");
    if (self && pw) {
        char stored[256] = "";
        struct gc_tx *rtx;
        rc = gc_tx_begin(ctx->store, GC_TX_READ, &rtx, err);
        if (rc)
            return rc;
        struct gc_rows *r = NULL;
        rc = gc_tx_query(rtx, "SELECT password_hash FROM users WHERE id = ?",
                         GC_ARGS(GC_VTXT(id)), &r, err);
        if (!rc && (rc = gc_rows_next(r, err)) > 0) {
            snprintf(stored, sizeof(stored), "%s", gc_rows_text(r, 0));
            rc = 0;
        }
        gc_rows_free(r);
        gc_tx_rollback(rtx);
        if (rc)
            return rc;
        if (!gc_password_verify(current, stored))
            return wrong_current_password(ctx, id, err);
    }
    int role = -1;
    if (role_s && (rc = parse_role(role_s, &role, err)))
        return rc;
    if (pw && (rc = gc_password_policy(ctx->cfg, pw, err)))
        return rc;
    char *hash = pw ? gc_password_hash(pw) : NULL;

    struct gc_tx *tx;
    rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc) {
        free(hash);
        return rc;
    }
    struct user_row row;
    json_t *before = NULL, *after = NULL;
    rc = load(tx, id, &before, &row, err);
    if (!rc && !self)
        rc = gc_authorize(ctx->who, GC_P_USER_WRITE, row.path, "user", id, err);
    if (!rc && !self && gc_role_is_platform((enum gc_role)row.role) &&
        ctx->who->role != GC_ROLE_PLATFORM_ADMIN)
        rc = gc_error_set(err, GC_EPERM, "", "only a platform administrator may change user '%s'",
                          id);
    if (!rc && if_match >= 0 && if_match != row.version)
        rc = gc_error_set(err, GC_EPRECOND, "If-Match",
                          "user '%s' is at version %lld, not %lld: reload it and retry", id,
                          (long long)row.version, (long long)if_match);
    int new_role = role >= 0 ? role : row.role;
    if (!rc && role >= 0)
        rc = check_role_grant(ctx->who, role, err);
    /* department follows the role: platform roles have none */
    const char *new_dept = row.department_id[0] ? row.department_id : NULL;
    if (jdept)
        new_dept = json_is_string(jdept) ? json_string_value(jdept) : NULL;
    if (role >= 0 && gc_role_is_platform((enum gc_role)role) && !jdept)
        new_dept = NULL;
    char path[GC_DEPT_PATH_MAX] = "";
    if (!rc && (role >= 0 || jdept))
        rc = resolve_dept(tx, ctx->who, new_role, new_dept, path, err);
    else
        snprintf(path, sizeof(path), "%s", row.path);
    bool loses_admin = row.role == GC_ROLE_PLATFORM_ADMIN &&
                       ((role >= 0 && role != GC_ROLE_PLATFORM_ADMIN) ||
                        (jdisabled && json_is_true(jdisabled)));
    if (!rc && loses_admin) {
        int64_t others = 0;
        rc = count_other_admins(tx, id, &others, err);
        if (!rc && others == 0)
            rc = gc_error_set(err, GC_ECONFLICT, role >= 0 ? "role" : "disabled",
                              "user '%s' is the last active platform administrator", id);
    }
    int64_t now = gc_now_ms();
    if (!rc)
        rc = gc_tx_exec(
            tx,
            "UPDATE users SET display_name = COALESCE(?, display_name),"
            " password_hash = COALESCE(?, password_hash),"
            " password_changed_at = CASE WHEN ? = 1 THEN ? ELSE password_changed_at END,"
            " role = ?, department_id = ?,"
            " disabled = COALESCE(?, disabled),"
            " failed_logins = CASE WHEN ? = 1 THEN 0 ELSE failed_logins END,"
            " locked_until = CASE WHEN ? = 1 THEN 0 ELSE locked_until END,"
            " updated_at = ?, version = version + 1 WHERE id = ?",
            GC_ARGS(GC_VTXT(gc_json_str(in, "display_name")), GC_VTXT(hash), GC_VINT_(hash ? 1 : 0),
                    GC_VINT_(now), GC_VTXT(gc_role_name((enum gc_role)new_role)),
                    GC_VTXT(new_dept),
                    jdisabled ? GC_VINT_(json_is_true(jdisabled) ? 1 : 0) : GC_VNUL,
                    GC_VINT_(jlocked ? 1 : 0), GC_VINT_(jlocked ? 1 : 0), GC_VINT_(now),
                    GC_VTXT(id)),
            NULL, err);
    /* a new password or a disabled account ends the other sessions of that user */
    if (!rc && (hash || (jdisabled && json_is_true(jdisabled))))
        rc = gc_tx_exec(tx, "DELETE FROM tokens WHERE user_id = ? AND kind = 'session' AND id <> ?",
                        GC_ARGS(GC_VTXT(id), GC_VTXT(ctx->who->token_id)), NULL, err);
    free(hash);
    if (!rc)
        rc = load(tx, id, &after, NULL, err);
    json_t *detail = NULL;
    if (!rc) {
        detail = json_pack("{s:O,s:O,s:b}", "before", before, "after", after, "password_changed",
                           pw != NULL);
    }
    rc = finish_write(tx, ctx, "user.update", id, new_dept, path, detail, rc, err);
    json_decref(detail);
    json_decref(before);
    if (rc) {
        json_decref(after);
        return rc;
    }
    *out = after;
    return 0;
}

int gc_user_delete(const struct gc_ctx *ctx, const char *id, int64_t if_match,
                   struct gc_error *err)
{
    if (strcmp(id, "me") == 0 || strcmp(id, ctx->who->user_id) == 0)
        return gc_error_set(err, GC_EPERM, "id", "you cannot delete yourself");
    struct gc_tx *tx;
    int rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    struct user_row row;
    json_t *before = NULL;
    rc = load(tx, id, &before, &row, err);
    if (!rc)
        rc = gc_authorize(ctx->who, GC_P_USER_WRITE, row.path, "user", id, err);
    if (!rc && gc_role_is_platform((enum gc_role)row.role) &&
        ctx->who->role != GC_ROLE_PLATFORM_ADMIN)
        rc = gc_error_set(err, GC_EPERM, "", "only a platform administrator may delete user '%s'",
                          id);
    if (!rc && if_match >= 0 && if_match != row.version)
        rc = gc_error_set(err, GC_EPRECOND, "If-Match",
                          "user '%s' is at version %lld, not %lld: reload it and retry", id,
                          (long long)row.version, (long long)if_match);
    if (!rc && row.role == GC_ROLE_PLATFORM_ADMIN) {
        int64_t others = 0;
        rc = count_other_admins(tx, id, &others, err);
        if (!rc && others == 0)
            rc = gc_error_set(err, GC_ECONFLICT, "id",
                              "user '%s' is the last active platform administrator", id);
    }
    if (!rc)
        rc = gc_tx_exec(tx, "DELETE FROM tokens WHERE user_id = ?", GC_ARGS(GC_VTXT(id)), NULL,
                        err);
    if (!rc)
        rc = gc_tx_exec(tx, "DELETE FROM users WHERE id = ?", GC_ARGS(GC_VTXT(id)), NULL, err);
    rc = finish_write(tx, ctx, "user.delete", id, row.department_id, row.path, before, rc, err);
    json_decref(before);
    return rc;
}

static char *random_password(const struct gc_config *cfg)
{
    for (;;) {
        unsigned char raw[15];
        char pw[32];
        gc_random_bytes(raw, sizeof(raw));
        gc_b64url(raw, sizeof(raw), pw);
        if (gc_password_policy(cfg, pw, NULL) == 0)
            return gc_strdup(pw);
    }
}

int gc_bootstrap_admin(struct gc_store *st, const struct gc_config *cfg, const char *password,
                       char **created_pw, struct gc_error *err)
{
    *created_pw = NULL;
    struct gc_tx *tx;
    int rc = gc_tx_begin(st, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    int64_t n = 0;
    rc = gc_tx_query_int(tx, "SELECT COUNT(*) FROM users", GC_NOARGS, &n, err);
    if (rc || n > 0) {
        gc_tx_rollback(tx);
        return rc; /* not the first start: the variable is not looked at */
    }
    if (password && password[0]) {
        struct gc_error pe = {0};
        if (gc_password_policy(cfg, password, &pe) != 0) {
            gc_tx_rollback(tx);
            return gc_error_set(err, GC_EINVAL, "GOVCLOUD_ADMIN_PASSWORD",
                                "GOVCLOUD_ADMIN_PASSWORD: %s", pe.msg);
        }
    }
    char *pw = password && password[0] ? gc_strdup(password) : random_password(cfg);
    char *hash = gc_password_hash(pw);
    char id[GC_ID_LEN + 1];
    gc_id_new(id);
    int64_t now = gc_now_ms();
    rc = gc_tx_exec(tx,
                    "INSERT INTO users (id, username, display_name, password_hash, role,"
                    " password_changed_at, created_at, updated_at, version)"
                    " VALUES (?, 'admin', '平台管理员', ?, 'platform_admin', ?, ?, ?, 1)",
                    GC_ARGS(GC_VTXT(id), GC_VTXT(hash), GC_VINT_(now), GC_VINT_(now),
                            GC_VINT_(now)),
                    NULL, err);
    free(hash);
    struct gc_ctx ctx = {.store = st, .cfg = cfg, .request_id = "", .source_ip = ""};
    struct gc_audit_event ev = {.action = "user.create",
                                .resource_type = "user",
                                .resource_id = id,
                                .outcome = GC_OUTCOME_SUCCESS,
                                .reason = "first start: platform administrator created",
                                .actor_name = "system"};
    if (!rc)
        rc = gc_audit_append(tx, &ctx, &ev, err);
    if (rc) {
        gc_tx_rollback(tx);
        free(pw);
        return rc;
    }
    rc = gc_tx_commit(tx, err);
    if (rc) {
        free(pw);
        return rc;
    }
    if (password && password[0])
        free(pw);
    else
        *created_pw = pw;
    return 0;
}
