/* Authentication: logins with lockout, session tokens, API keys, and the resolution of a
 * bearer secret to a principal (with a small cache, flushed on every change). */
#include "core/core.h"

#include "core/validate.h"
#include "crypto/crypto.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/timeutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SESSION_PREFIX "gct_"
#define APIKEY_PREFIX "gck_"
#define SECRET_LEN 47 /* prefix + 43 base64url characters */

/* ---- principal cache ----
 * Direct-mapped: a bearer secret resolves without touching the store for CACHE_TTL_MS.
 * Any change to users or tokens in this process bumps the generation, which empties it. */
#define CACHE_SLOTS 4096
#define CACHE_TTL_MS 5000

struct cache_slot {
    char hash[GC_SM3_HEX_LEN + 1];
    struct gc_principal who;
    int64_t token_expires; /* 0 = never */
    int64_t cached_at;
    uint64_t gen;
};

static struct cache_slot cache[CACHE_SLOTS];
static uint64_t cache_gen = 1;
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

void gc_auth_cache_flush(void)
{
    pthread_mutex_lock(&cache_lock);
    cache_gen++;
    pthread_mutex_unlock(&cache_lock);
}

static unsigned slot_of(const char *hash)
{
    unsigned v = 0;
    for (int i = 0; i < 8; i++)
        v = v * 16 + (unsigned)(hash[i] <= '9' ? hash[i] - '0' : hash[i] - 'a' + 10);
    return v % CACHE_SLOTS;
}

static bool cache_get(const char *hash, struct gc_principal *who, int64_t now)
{
    bool hit = false;
    pthread_mutex_lock(&cache_lock);
    struct cache_slot *s = &cache[slot_of(hash)];
    if (s->gen == cache_gen && now - s->cached_at < CACHE_TTL_MS &&
        (s->token_expires == 0 || s->token_expires > now) && strcmp(s->hash, hash) == 0) {
        *who = s->who;
        hit = true;
    }
    pthread_mutex_unlock(&cache_lock);
    return hit;
}

static void cache_put(const char *hash, const struct gc_principal *who, int64_t expires,
                      int64_t now)
{
    pthread_mutex_lock(&cache_lock);
    struct cache_slot *s = &cache[slot_of(hash)];
    snprintf(s->hash, sizeof(s->hash), "%s", hash);
    s->who = *who;
    s->token_expires = expires;
    s->cached_at = now;
    s->gen = cache_gen;
    pthread_mutex_unlock(&cache_lock);
}

/* ---- login ---- */

static const struct gc_jfield login_spec[] = {
    {"username", GC_JT_STRING, true, false, 1, 64, GC_CS_ANY},
    {"password", GC_JT_STRING, true, false, 1, 1024, GC_CS_ANY},
};

/* A hash to check against when the user does not exist, so that timing does not tell. */
static char *dummy;
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;

static void dummy_init(void)
{
    dummy = gc_password_hash("govcloud-dummy-password");
}

static const char *dummy_hash(void)
{
    pthread_once(&dummy_once, dummy_init);
    return dummy;
}

static void fmt_time(int64_t ms, char *buf, size_t cap)
{
    gc_time_format_rfc3339(ms, buf, cap);
}

int gc_auth_login(const struct gc_ctx *ctx, json_t *in, json_t **out, struct gc_error *err)
{
    int rc = gc_json_check(in, login_spec, sizeof(login_spec) / sizeof(login_spec[0]), err);
    if (rc)
        return rc;
    const char *username = gc_json_str(in, "username");
    const char *password = gc_json_str(in, "password");
    /* the name as given goes into the audit trail: keep only printable text */
    char shown[72];
    snprintf(shown, sizeof(shown), "%s", username);
    for (char *p = shown; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';

    struct gc_principal who = {0};
    char hash[256] = "";
    bool found = false, disabled = false;
    int64_t locked_until = 0;
    struct gc_tx *tx;
    rc = gc_tx_begin(ctx->store, GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    struct gc_rows *r = NULL;
    rc = gc_tx_query(tx,
                     "SELECT u.id, u.username, u.role, u.department_id, u.password_hash,"
                     " u.disabled, u.locked_until, COALESCE(d.path, '')"
                     " FROM users u LEFT JOIN departments d ON d.id = u.department_id"
                     " WHERE u.username = ?",
                     GC_ARGS(GC_VTXT(username)), &r, err);
    if (!rc && (rc = gc_rows_next(r, err)) > 0) {
        found = true;
        snprintf(who.user_id, sizeof(who.user_id), "%s", gc_rows_text(r, 0));
        snprintf(who.username, sizeof(who.username), "%s", gc_rows_text(r, 1));
        int role = gc_role_parse(gc_rows_text(r, 2));
        who.role = role < 0 ? GC_ROLE_DEPARTMENT_USER : (enum gc_role)role;
        snprintf(who.department_id, sizeof(who.department_id), "%s", gc_rows_text(r, 3));
        snprintf(hash, sizeof(hash), "%s", gc_rows_text(r, 4));
        disabled = gc_rows_int(r, 5) != 0 || role < 0;
        locked_until = gc_rows_int(r, 6);
        snprintf(who.dept_path, sizeof(who.dept_path), "%s", gc_rows_text(r, 7));
        rc = 0;
    }
    gc_rows_free(r);
    gc_tx_rollback(tx);
    if (rc)
        return rc;

    struct gc_ctx actx = *ctx;
    actx.who = found ? &who : NULL;
    int64_t now = gc_now_ms();
    if (found && locked_until > now) {
        char until[40];
        fmt_time(locked_until, until, sizeof(until));
        gc_audit_failure(&actx, "auth.login", "user", who.user_id, GC_OUTCOME_DENIED,
                         "account locked");
        rc = gc_error_set(err, GC_ELOCKED, "username",
                          "account '%s' is locked after repeated failed logins until %s", shown,
                          until);
        err->retry_after = (locked_until - now + 999) / 1000;
        return rc;
    }
    bool ok = gc_password_verify(password, found ? hash : dummy_hash());
    if (!found) {
        struct gc_audit_event ev = {.action = "auth.login",
                                    .resource_type = "user",
                                    .outcome = GC_OUTCOME_FAILURE,
                                    .reason = "unknown username",
                                    .actor_name = shown};
        if (gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err) == 0) {
            if (gc_audit_append(tx, &actx, &ev, err) == 0)
                (void)gc_tx_commit(tx, err);
            else
                gc_tx_rollback(tx);
        }
        return gc_error_set(err, GC_EAUTH, "", "invalid username or password");
    }

    rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    if (!ok) {
        int64_t fails = 0;
        rc = gc_tx_exec(tx, "UPDATE users SET failed_logins = failed_logins + 1 WHERE id = ?",
                        GC_ARGS(GC_VTXT(who.user_id)), NULL, err);
        if (!rc)
            rc = gc_tx_query_int(tx, "SELECT failed_logins FROM users WHERE id = ?",
                                 GC_ARGS(GC_VTXT(who.user_id)), &fails, err);
        bool lock = !rc && fails >= ctx->cfg->max_failed_logins;
        int64_t until_ms = now + ctx->cfg->lockout_seconds * 1000;
        if (lock)
            rc = gc_tx_exec(tx,
                            "UPDATE users SET failed_logins = 0, locked_until = ? WHERE id = ?",
                            GC_ARGS(GC_VINT_(until_ms), GC_VTXT(who.user_id)), NULL, err);
        char reason[160];
        snprintf(reason, sizeof(reason), "wrong password (%lld in a row)%s", (long long)fails,
                 lock ? "; account locked" : "");
        struct gc_audit_event ev = {.action = "auth.login",
                                    .resource_type = "user",
                                    .resource_id = who.user_id,
                                    .department_id = who.department_id[0] ? who.department_id
                                                                          : NULL,
                                    .department_path = who.dept_path,
                                    .outcome = GC_OUTCOME_FAILURE,
                                    .reason = reason};
        if (!rc)
            rc = gc_audit_append(tx, &actx, &ev, err);
        if (rc) {
            gc_tx_rollback(tx);
            return rc;
        }
        rc = gc_tx_commit(tx, err);
        if (rc)
            return rc;
        if (lock) {
            char until[40];
            fmt_time(until_ms, until, sizeof(until));
            rc = gc_error_set(err, GC_ELOCKED, "username",
                              "too many failed logins: account '%s' is locked until %s", shown,
                              until);
            err->retry_after = ctx->cfg->lockout_seconds;
            return rc;
        }
        return gc_error_set(err, GC_EAUTH, "", "invalid username or password");
    }
    if (disabled) {
        struct gc_audit_event ev = {.action = "auth.login",
                                    .resource_type = "user",
                                    .resource_id = who.user_id,
                                    .outcome = GC_OUTCOME_DENIED,
                                    .reason = "account disabled"};
        if (gc_audit_append(tx, &actx, &ev, err) == 0)
            (void)gc_tx_commit(tx, err);
        else
            gc_tx_rollback(tx);
        return gc_error_set(err, GC_EPERM, "username",
                            "account '%s' is disabled; ask an administrator", shown);
    }
    char secret[64], shash[GC_SM3_HEX_LEN + 1], tid[GC_ID_LEN + 1];
    gc_secret_new(SESSION_PREFIX, secret);
    gc_sm3_hex(secret, strlen(secret), shash);
    gc_id_new(tid);
    int64_t expires = now + ctx->cfg->token_ttl * 1000;
    rc = gc_tx_exec(tx, "UPDATE users SET failed_logins = 0 WHERE id = ?",
                    GC_ARGS(GC_VTXT(who.user_id)), NULL, err);
    if (!rc)
        rc = gc_tx_exec(tx,
                        "INSERT INTO tokens (id, secret_hash, kind, user_id, created_at,"
                        " expires_at) VALUES (?, ?, 'session', ?, ?, ?)",
                        GC_ARGS(GC_VTXT(tid), GC_VTXT(shash), GC_VTXT(who.user_id),
                                GC_VINT_(now), GC_VINT_(expires)),
                        NULL, err);
    struct gc_audit_event ev = {.action = "auth.login",
                                .resource_type = "user",
                                .resource_id = who.user_id,
                                .department_id = who.department_id[0] ? who.department_id : NULL,
                                .department_path = who.dept_path,
                                .outcome = GC_OUTCOME_SUCCESS};
    if (!rc)
        rc = gc_audit_append(tx, &actx, &ev, err);
    if (rc) {
        gc_tx_rollback(tx);
        return rc;
    }
    rc = gc_tx_commit(tx, err);
    if (rc)
        return rc;
    json_t *o = json_object();
    json_object_set_new(o, "token", json_string(secret));
    json_object_set_new(o, "token_type", json_string("Bearer"));
    json_object_set_new(o, "expires_at", gc_json_time(expires));
    json_t *user = json_object();
    json_object_set_new(user, "id", json_string(who.user_id));
    json_object_set_new(user, "username", json_string(who.username));
    json_object_set_new(user, "role", json_string(gc_role_name(who.role)));
    json_object_set_new(user, "department_id",
                        who.department_id[0] ? json_string(who.department_id) : json_null());
    json_object_set_new(o, "user", user);
    *out = o;
    return 0;
}

static bool secret_shape_ok(const char *s)
{
    if (strlen(s) != SECRET_LEN)
        return false;
    if (strncmp(s, SESSION_PREFIX, 4) != 0 && strncmp(s, APIKEY_PREFIX, 4) != 0)
        return false;
    for (const char *p = s + 4; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_'))
            return false;
    return true;
}

int gc_auth_resolve(struct gc_store *st, const char *secret, struct gc_principal *who,
                    struct gc_error *err)
{
    if (!secret_shape_ok(secret))
        return gc_error_set(err, GC_EAUTH, "Authorization",
                            "the bearer token is malformed; log in again (POST /v1/tokens)");
    char hash[GC_SM3_HEX_LEN + 1];
    gc_sm3_hex(secret, strlen(secret), hash);
    int64_t now = gc_now_ms();
    if (cache_get(hash, who, now))
        return 0;
    uint64_t gen;
    pthread_mutex_lock(&cache_lock);
    gen = cache_gen;
    pthread_mutex_unlock(&cache_lock);

    struct gc_tx *tx;
    int rc = gc_tx_begin(st, GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    struct gc_rows *r;
    rc = gc_tx_query(tx,
                     "SELECT t.id, t.kind, COALESCE(t.expires_at, 0), u.id, u.username, u.role,"
                     " COALESCE(u.department_id, ''), u.disabled, COALESCE(d.path, '')"
                     " FROM tokens t JOIN users u ON u.id = t.user_id"
                     " LEFT JOIN departments d ON d.id = u.department_id"
                     " WHERE t.secret_hash = ?",
                     GC_ARGS(GC_VTXT(hash)), &r, err);
    if (rc) {
        gc_tx_rollback(tx);
        return rc;
    }
    rc = gc_rows_next(r, err);
    int64_t expires = 0;
    if (rc == 0) {
        rc = gc_error_set(err, GC_EAUTH, "Authorization",
                          "the bearer token is unknown or was revoked; log in again");
    } else if (rc > 0) {
        rc = 0;
        memset(who, 0, sizeof(*who));
        snprintf(who->token_id, sizeof(who->token_id), "%s", gc_rows_text(r, 0));
        who->via_api_key = strcmp(gc_rows_text(r, 1), "api_key") == 0;
        expires = gc_rows_int(r, 2);
        snprintf(who->user_id, sizeof(who->user_id), "%s", gc_rows_text(r, 3));
        snprintf(who->username, sizeof(who->username), "%s", gc_rows_text(r, 4));
        int role = gc_role_parse(gc_rows_text(r, 5));
        snprintf(who->department_id, sizeof(who->department_id), "%s", gc_rows_text(r, 6));
        snprintf(who->dept_path, sizeof(who->dept_path), "%s", gc_rows_text(r, 8));
        if (expires && expires <= now)
            rc = gc_error_set(err, GC_EAUTH, "Authorization",
                              "the bearer token has expired; log in again");
        else if (gc_rows_int(r, 7))
            rc = gc_error_set(err, GC_EAUTH, "Authorization", "the account is disabled");
        else if (role < 0)
            rc = gc_error_set(err, GC_EAUTH, "Authorization", "the account has no valid role");
        else
            who->role = (enum gc_role)role;
    }
    gc_rows_free(r);
    gc_tx_rollback(tx);
    if (rc)
        return rc;
    pthread_mutex_lock(&cache_lock);
    bool fresh = gen == cache_gen;
    pthread_mutex_unlock(&cache_lock);
    if (fresh)
        cache_put(hash, who, expires, now);
    return 0;
}

int gc_auth_logout(const struct gc_ctx *ctx, struct gc_error *err)
{
    if (ctx->who->via_api_key)
        return gc_error_set(err, GC_EINVAL, "Authorization",
                            "this request used an API key, which cannot log out; revoke it with "
                            "DELETE /v1/api-keys/{id}");
    struct gc_tx *tx;
    int rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    rc = gc_tx_exec(tx, "DELETE FROM tokens WHERE id = ?", GC_ARGS(GC_VTXT(ctx->who->token_id)),
                    NULL, err);
    struct gc_audit_event ev = {.action = "auth.logout",
                                .resource_type = "token",
                                .resource_id = ctx->who->token_id,
                                .department_id = ctx->who->department_id[0]
                                                     ? ctx->who->department_id
                                                     : NULL,
                                .department_path = ctx->who->dept_path,
                                .outcome = GC_OUTCOME_SUCCESS};
    if (!rc)
        rc = gc_audit_append(tx, ctx, &ev, err);
    if (rc) {
        gc_tx_rollback(tx);
        return rc;
    }
    rc = gc_tx_commit(tx, err);
    gc_auth_cache_flush();
    return rc;
}

/* ---- API keys ---- */

static const struct gc_jfield apikey_spec[] = {
    {"name", GC_JT_STRING, true, false, 1, 128, GC_CS_TEXT},
    {"expires_at", GC_JT_STRING, false, true, 1, 64, GC_CS_ANY},
};

static json_t *apikey_json(const char *id, const char *name, int64_t created, int64_t expires)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(id));
    json_object_set_new(o, "name", json_string(name));
    json_object_set_new(o, "created_at", gc_json_time(created));
    json_object_set_new(o, "expires_at", gc_json_time(expires));
    return o;
}

int gc_apikey_create(const struct gc_ctx *ctx, json_t *in, json_t **out, struct gc_error *err)
{
    int rc = gc_json_check(in, apikey_spec, sizeof(apikey_spec) / sizeof(apikey_spec[0]), err);
    if (rc)
        return rc;
    const char *name = gc_json_str(in, "name");
    const char *exp_s = gc_json_str(in, "expires_at");
    int64_t now = gc_now_ms(), expires = 0;
    if (exp_s) {
        if (gc_time_parse_rfc3339(exp_s, &expires) != 0)
            return gc_error_set(err, GC_EINVAL, "expires_at",
                                "field 'expires_at': '%.40s' is not an RFC 3339 time such as "
                                "2027-01-01T00:00:00Z",
                                exp_s);
        if (expires <= now)
            return gc_error_set(err, GC_EINVAL, "expires_at",
                                "field 'expires_at' must be in the future");
    }
    char secret[64], shash[GC_SM3_HEX_LEN + 1], id[GC_ID_LEN + 1];
    gc_secret_new(APIKEY_PREFIX, secret);
    gc_sm3_hex(secret, strlen(secret), shash);
    gc_id_new(id);
    struct gc_tx *tx;
    rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    rc = gc_tx_exec(tx,
                    "INSERT INTO tokens (id, secret_hash, kind, name, user_id, created_at,"
                    " expires_at) VALUES (?, ?, 'api_key', ?, ?, ?, ?)",
                    GC_ARGS(GC_VTXT(id), GC_VTXT(shash), GC_VTXT(name),
                            GC_VTXT(ctx->who->user_id), GC_VINT_(now),
                            expires ? GC_VINT_(expires) : GC_VNUL),
                    NULL, err);
    json_t *o = apikey_json(id, name, now, expires);
    struct gc_audit_event ev = {.action = "api_key.create",
                                .resource_type = "api_key",
                                .resource_id = id,
                                .department_id = ctx->who->department_id[0]
                                                     ? ctx->who->department_id
                                                     : NULL,
                                .department_path = ctx->who->dept_path,
                                .outcome = GC_OUTCOME_SUCCESS,
                                .detail = o};
    if (!rc)
        rc = gc_audit_append(tx, ctx, &ev, err);
    if (rc) {
        gc_tx_rollback(tx);
        json_decref(o);
        return rc;
    }
    rc = gc_tx_commit(tx, err);
    if (rc) {
        json_decref(o);
        return rc;
    }
    json_object_set_new(o, "key", json_string(secret));
    *out = o;
    return 0;
}

static json_t *apikey_row(struct gc_rows *r, const struct gc_principal *who)
{
    (void)who;
    return apikey_json(gc_rows_text(r, 0), gc_rows_text(r, 1), gc_rows_int(r, 2),
                       gc_rows_int(r, 3));
}

int gc_apikey_list(const struct gc_ctx *ctx, int limit, const char *cursor, json_t **items,
                   char **next_cursor, struct gc_error *err)
{
    int rc = gc_page_limit(limit, &limit, err);
    if (!rc)
        rc = gc_page_cursor_id(cursor, err);
    if (rc)
        return rc;
    return gc_page_run(ctx,
                       "SELECT id, name, created_at, COALESCE(expires_at, 0) FROM tokens"
                       " WHERE user_id = ? AND kind = 'api_key' AND id > ? ORDER BY id LIMIT ?",
                       GC_ARGS(GC_VTXT(ctx->who->user_id), GC_VTXT(cursor ? cursor : ""),
                               GC_VINT_(limit + 1)),
                       limit, "id", apikey_row, items, next_cursor, err);
}

int gc_apikey_delete(const struct gc_ctx *ctx, const char *id, struct gc_error *err)
{
    if (!gc_id_valid(id))
        return gc_error_set(err, GC_ENOTFOUND, "id", "API key '%.64s' not found", id);
    struct gc_tx *tx;
    int rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    int64_t n = 0;
    rc = gc_tx_exec(tx, "DELETE FROM tokens WHERE id = ? AND user_id = ? AND kind = 'api_key'",
                    GC_ARGS(GC_VTXT(id), GC_VTXT(ctx->who->user_id)), &n, err);
    if (!rc && n == 0)
        rc = gc_error_set(err, GC_ENOTFOUND, "id", "API key '%s' not found", id);
    struct gc_audit_event ev = {.action = "api_key.delete",
                                .resource_type = "api_key",
                                .resource_id = id,
                                .department_id = ctx->who->department_id[0]
                                                     ? ctx->who->department_id
                                                     : NULL,
                                .department_path = ctx->who->dept_path,
                                .outcome = GC_OUTCOME_SUCCESS};
    if (!rc)
        rc = gc_audit_append(tx, ctx, &ev, err);
    if (rc) {
        gc_tx_rollback(tx);
        return rc;
    }
    rc = gc_tx_commit(tx, err);
    gc_auth_cache_flush();
    return rc;
}

int64_t gc_auth_purge_expired(struct gc_store *st)
{
    struct gc_error err = {0};
    struct gc_tx *tx;
    if (gc_tx_begin(st, GC_TX_WRITE, &tx, &err) != 0)
        return -1;
    int64_t n = 0;
    if (gc_tx_exec(tx, "DELETE FROM tokens WHERE expires_at IS NOT NULL AND expires_at <= ?",
                   GC_ARGS(GC_VINT_(gc_now_ms())), &n, &err) != 0) {
        gc_tx_rollback(tx);
        return -1;
    }
    if (gc_tx_commit(tx, &err) != 0)
        return -1;
    return n;
}
