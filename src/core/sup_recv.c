/* Supervisor mode: registered clouds, ingest of their pushed batches, and reading what was
 * received (docs/supervision.md#supervisor-mode; the rules are those of
 * docs/supervision-spec.md section 8). */
#include "core/supervise.h"

#include "core/validate.h"
#include "crypto/crypto.h"
#include "supervision/envelope.h"
#include "supervision/schema.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLOUD_TOKEN_PREFIX "gcs_"

static int may_read(const struct gc_principal *who, struct gc_error *err)
{
    if (!who)
        return gc_error_set(err, GC_EAUTH, "", "authentication required");
    if (who->role != GC_ROLE_PLATFORM_ADMIN && who->role != GC_ROLE_SUPERVISOR)
        return gc_error_set(err, GC_EPERM, "",
                            "role %s may not read supervised clouds (platform_admin and "
                            "supervisor only)",
                            gc_role_name(who->role));
    return 0;
}

static int may_write(const struct gc_principal *who, struct gc_error *err)
{
    if (!who)
        return gc_error_set(err, GC_EAUTH, "", "authentication required");
    if (who->role != GC_ROLE_PLATFORM_ADMIN)
        return gc_error_set(err, GC_EPERM, "",
                            "role %s may not register supervised clouds (platform_admin only)",
                            gc_role_name(who->role));
    return 0;
}

#define CLOUD_COLS                                                                            \
    "c.id, c.name, c.public_key_pem, c.fingerprint, c.secret IS NOT NULL, c.created_at,"      \
    " c.updated_at, c.version"

static json_t *cloud_json(struct gc_rows *r, char *path)
{
    (void)path;
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:b}", "id", gc_rows_text(r, 0), "name",
                          gc_rows_text(r, 1), "public_key_pem", gc_rows_text(r, 2),
                          "fingerprint_sm3", gc_rows_text(r, 3), "encrypted",
                          gc_rows_int(r, 4) != 0);
    json_object_set_new(o, "created_at", gc_json_time(gc_rows_int(r, 5)));
    json_object_set_new(o, "updated_at", gc_json_time(gc_rows_int(r, 6)));
    json_object_set_new(o, "version", json_integer(gc_rows_int(r, 7)));
    return o;
}

static json_t *cloud_row(struct gc_rows *r, const struct gc_principal *who)
{
    (void)who;
    return cloud_json(r, NULL);
}

static int gaps_of(struct gc_tx *tx, const char *cloud, const char *dataset, json_t **out,
                   struct gc_error *err)
{
    struct gc_rows *r = NULL;
    json_t *a = json_array();
    int rc = gc_tx_query(tx,
                         "SELECT from_seq, to_seq FROM sup_gaps WHERE cloud_id = ? AND"
                         " dataset = ? ORDER BY from_seq LIMIT 1000",
                         GC_ARGS(GC_VTXT(cloud), GC_VTXT(dataset)), &r, err);
    while (!rc && (rc = gc_rows_next(r, err)) > 0) {
        rc = 0;
        json_array_append_new(a, json_pack("[II]", (json_int_t)gc_rows_int(r, 0),
                                           (json_int_t)gc_rows_int(r, 1)));
    }
    gc_rows_free(r);
    if (rc < 0) {
        json_decref(a);
        return rc;
    }
    *out = a;
    return 0;
}

/* The streams (per dataset) of cloud object o, in tx. */
static int add_streams(struct gc_tx *tx, json_t *o, struct gc_error *err)
{
    const char *id = json_string_value(json_object_get(o, "id"));
    struct gc_rows *r = NULL;
    json_t *a = json_array();
    int rc = gc_tx_query(tx,
                         "SELECT dataset, max_batch_seq, batches, accepted, duplicates, rejected,"
                         " last_batch_at, last_batch_time FROM sup_streams WHERE cloud_id = ?"
                         " ORDER BY dataset",
                         GC_ARGS(GC_VTXT(id)), &r, err);
    while (!rc && (rc = gc_rows_next(r, err)) > 0) {
        rc = 0;
        int64_t at = gc_rows_int(r, 6), bt = gc_rows_int(r, 7);
        json_array_append_new(
            a, json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:o,s:o,s:I}", "dataset", gc_rows_text(r, 0),
                         "max_batch_seq", (json_int_t)gc_rows_int(r, 1), "batches",
                         (json_int_t)gc_rows_int(r, 2), "accepted",
                         (json_int_t)gc_rows_int(r, 3), "duplicates",
                         (json_int_t)gc_rows_int(r, 4), "rejected",
                         (json_int_t)gc_rows_int(r, 5), "last_batch_at", gc_json_time(at),
                         "last_batch_time", gc_json_time(bt), "lag_seconds",
                         (json_int_t)(at > bt && bt > 0 ? (at - bt) / 1000 : 0)));
    }
    gc_rows_free(r);
    size_t i;
    json_t *s;
    json_array_foreach(a, i, s) {
        if (rc)
            break;
        json_t *g = NULL;
        const char *ds = json_string_value(json_object_get(s, "dataset"));
        rc = gaps_of(tx, id, ds, &g, err);
        if (!rc)
            json_object_set_new(s, "gaps", g);
        int64_t n = 0;
        if (!rc)
            rc = gc_tx_query_int(tx,
                                 "SELECT COUNT(*) FROM sup_records WHERE cloud_id = ? AND"
                                 " dataset = ? AND op = 'upsert'",
                                 GC_ARGS(GC_VTXT(id), GC_VTXT(ds)), &n, err);
        if (!rc)
            json_object_set_new(s, "records", json_integer(n));
    }
    if (rc < 0) {
        json_decref(a);
        return rc;
    }
    json_object_set_new(o, "streams", a);
    return 0;
}

static int cloud_load(struct gc_tx *tx, const char *id, bool streams, json_t **out,
                      struct gc_error *err)
{
    int rc = gc_load_by_id(tx, "SELECT " CLOUD_COLS " FROM sup_clouds c WHERE c.id = ?",
                           "supervised cloud", id, cloud_json, out, NULL, err);
    if (!rc && streams && (rc = add_streams(tx, *out, err)) != 0) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

static const struct gc_jfield cloud_spec[] = {
    {"cloud_id", GC_JT_STRING, true, false, 36, 36, GC_CS_CODE},
    {"name", GC_JT_STRING, true, false, 1, 128, GC_CS_TEXT},
    {"public_key_pem", GC_JT_STRING, true, false, 1, 16384, GC_CS_ANY},
    {"secret", GC_JT_STRING, false, true, 1, 64, GC_CS_TEXT},
    {"rotate_token", GC_JT_BOOL, false, false, 0, 0, GC_CS_ANY},
};

static int cloud_check(json_t *in, bool create, char fp[65], struct gc_error *err)
{
    struct gc_jfield spec[sizeof(cloud_spec) / sizeof(cloud_spec[0])];
    memcpy(spec, cloud_spec, sizeof(spec));
    for (size_t i = 0; i < sizeof(spec) / sizeof(spec[0]); i++) {
        if (!create)
            spec[i].required = false;
        if (create && !strcmp(spec[i].name, "rotate_token"))
            spec[i].name = "-rotate_token-"; /* not on create */
    }
    if (!create && json_object_get(in, "cloud_id"))
        return gc_error_set(err, GC_EINVAL, "cloud_id",
                            "field 'cloud_id' cannot be changed: delete the cloud and register "
                            "it again");
    int rc = gc_json_check(in, spec, sizeof(spec) / sizeof(spec[0]), err);
    if (rc)
        return rc;
    const char *cid = gc_json_str(in, "cloud_id");
    if (cid && !gc_id_valid(cid))
        return gc_error_set(err, GC_EINVAL, "cloud_id",
                            "field 'cloud_id' must be a lowercase UUID, as the cloud's GET "
                            "/v1/supervision/public-key shows it");
    const char *pem = gc_json_str(in, "public_key_pem");
    if (pem) {
        struct gc_sm2_key *k = NULL;
        struct gc_error e = {0};
        if (gc_sm2_key_from_pem(pem, strlen(pem), &k, &e) != 0)
            return gc_error_set(err, GC_EINVAL, "public_key_pem",
                                "field 'public_key_pem' is not an SM2 public key in PEM "
                                "(-----BEGIN PUBLIC KEY-----): %s",
                                e.msg);
        if (gc_sm2_key_has_private(k)) {
            gc_sm2_key_free(k);
            return gc_error_set(err, GC_EINVAL, "public_key_pem",
                                "field 'public_key_pem' holds a private key: register the "
                                "cloud's public key only (GET /v1/supervision/public-key)");
        }
        rc = gc_sm2_key_fingerprint(k, fp, &e);
        gc_sm2_key_free(k);
        if (rc)
            return gc_error_set(err, GC_EINVAL, "public_key_pem", "%s", e.msg);
    }
    const char *secret = gc_json_str(in, "secret");
    if (secret) {
        unsigned char *k = NULL;
        size_t klen = 0;
        int bad = gc_base64_decode(secret, &k, &klen);
        free(k);
        if (bad || klen != GC_SUP_SECRET_LEN)
            return gc_error_set(err, GC_EINVAL, "secret",
                                "field 'secret' must be the base64 of %d bytes, the same as the "
                                "cloud's receiver has",
                                GC_SUP_SECRET_LEN);
    }
    return 0;
}

int gc_cloud_create(const struct gc_ctx *ctx, json_t *in, json_t **out, struct gc_error *err)
{
    char fp[65] = "";
    int rc = may_write(ctx->who, err);
    if (!rc)
        rc = cloud_check(in, true, fp, err);
    if (rc)
        return rc;
    char token[64], hash[GC_SM3_HEX_LEN + 1];
    gc_secret_new(CLOUD_TOKEN_PREFIX, token);
    gc_sm3_hex(token, strlen(token), hash);
    struct gc_tx *tx;
    rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    const char *id = gc_json_str(in, "cloud_id");
    const char *secret = gc_json_str(in, "secret");
    int64_t now = gc_now_ms(), exists = 0;
    rc = gc_tx_query_int(tx, "SELECT COUNT(*) FROM sup_clouds WHERE id = ?",
                         GC_ARGS(GC_VTXT(id)), &exists, err);
    if (!rc && exists)
        rc = gc_error_set(err, GC_ECONFLICT, "cloud_id", "cloud '%s' is registered already", id);
    if (!rc)
        rc = gc_tx_exec(tx,
                        "INSERT INTO sup_clouds (id, name, public_key_pem, fingerprint, secret,"
                        " token_hash, created_at, updated_at, version) VALUES (?, ?, ?, ?, ?, ?,"
                        " ?, ?, 1)",
                        GC_ARGS(GC_VTXT(id), GC_VTXT(gc_json_str(in, "name")),
                                GC_VTXT(gc_json_str(in, "public_key_pem")), GC_VTXT(fp),
                                secret ? GC_VTXT(secret) : GC_VNUL, GC_VTXT(hash), GC_VINT_(now),
                                GC_VINT_(now)),
                        NULL, err);
    if (rc == GC_ECONFLICT && exists == 0)
        rc = gc_error_set(err, GC_ECONFLICT, "name", "a cloud named '%s' is registered",
                          gc_json_str(in, "name"));
    json_t *obj = NULL;
    if (!rc)
        rc = cloud_load(tx, id, true, &obj, err);
    struct gc_audit_event ev = {.action = "supervision_cloud.create",
                                .resource_type = "supervision_cloud",
                                .resource_id = id,
                                .outcome = GC_OUTCOME_SUCCESS,
                                .detail = obj};
    rc = gc_audit_commit(tx, ctx, &ev, rc, err);
    if (rc) {
        json_decref(obj);
        return rc;
    }
    /* shown once: only its hash is kept */
    json_object_set_new(obj, "token", json_string(token));
    *out = obj;
    return 0;
}

int gc_cloud_get(const struct gc_ctx *ctx, const char *id, json_t **out, struct gc_error *err)
{
    int rc = may_read(ctx->who, err);
    struct gc_tx *tx;
    if (!rc)
        rc = gc_tx_begin(ctx->store, GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    rc = cloud_load(tx, id, true, out, err);
    gc_tx_rollback(tx);
    return rc;
}

int gc_cloud_list(const struct gc_ctx *ctx, json_t *filters, int limit, const char *cursor,
                  json_t **items, char **next_cursor, struct gc_error *err)
{
    static const struct gc_list_filter f[] = {{NULL, NULL}};
    int rc = may_read(ctx->who, err);
    if (rc)
        return rc;
    return gc_list_filtered(ctx, GC_P_SUPERVISION_READ,
                            "SELECT " CLOUD_COLS " FROM sup_clouds c WHERE c.id > ?", "c.id", f,
                            filters, limit, cursor, cloud_row, items, next_cursor, err);
}

int gc_cloud_update(const struct gc_ctx *ctx, const char *id, int64_t if_match, json_t *in,
                    json_t **out, struct gc_error *err)
{
    char fp[65] = "";
    int rc = may_write(ctx->who, err);
    if (!rc)
        rc = cloud_check(in, false, fp, err);
    if (rc)
        return rc;
    struct gc_tx *tx;
    rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    json_t *before = NULL, *obj = NULL;
    rc = cloud_load(tx, id, false, &before, err);
    if (!rc)
        rc = gc_check_if_match(before, if_match, "cloud", id, err);
    char token[64] = "", hash[GC_SM3_HEX_LEN + 1] = "";
    if (json_is_true(json_object_get(in, "rotate_token"))) {
        gc_secret_new(CLOUD_TOKEN_PREFIX, token);
        gc_sm3_hex(token, strlen(token), hash);
    }
    const char *pem = gc_json_str(in, "public_key_pem");
    json_t *sec = json_object_get(in, "secret");
    int64_t now = gc_now_ms();
    if (!rc)
        rc = gc_tx_exec(
            tx,
            "UPDATE sup_clouds SET name = COALESCE(?, name),"
            " public_key_pem = COALESCE(?, public_key_pem), fingerprint = COALESCE(?, fingerprint),"
            " secret = CASE WHEN ? THEN ? ELSE secret END, token_hash = COALESCE(?, token_hash),"
            " updated_at = ?, version = version + 1 WHERE id = ?",
            GC_ARGS(gc_json_str(in, "name") ? GC_VTXT(gc_json_str(in, "name")) : GC_VNUL,
                    pem ? GC_VTXT(pem) : GC_VNUL, pem ? GC_VTXT(fp) : GC_VNUL,
                    GC_VINT_(sec != NULL),
                    sec && json_is_string(sec) ? GC_VTXT(json_string_value(sec)) : GC_VNUL,
                    token[0] ? GC_VTXT(hash) : GC_VNUL, GC_VINT_(now), GC_VTXT(id)),
            NULL, err);
    if (rc == GC_ECONFLICT)
        rc = gc_error_set(err, GC_ECONFLICT, "name", "a cloud named '%s' is registered",
                          gc_json_str(in, "name"));
    if (!rc)
        rc = cloud_load(tx, id, true, &obj, err);
    json_t *detail = json_pack("{s:O,s:O,s:b}", "before", before ? before : json_null(), "after",
                               obj ? obj : json_null(), "token_rotated", token[0] != 0);
    struct gc_audit_event ev = {.action = "supervision_cloud.update",
                                .resource_type = "supervision_cloud",
                                .resource_id = id,
                                .outcome = GC_OUTCOME_SUCCESS,
                                .detail = detail};
    rc = gc_audit_commit(tx, ctx, &ev, rc, err);
    json_decref(detail);
    json_decref(before);
    if (rc) {
        json_decref(obj);
        return rc;
    }
    if (token[0])
        json_object_set_new(obj, "token", json_string(token));
    *out = obj;
    return 0;
}

int gc_cloud_delete(const struct gc_ctx *ctx, const char *id, int64_t if_match,
                    struct gc_error *err)
{
    int rc = may_write(ctx->who, err);
    struct gc_tx *tx;
    if (!rc)
        rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    json_t *before = NULL;
    rc = cloud_load(tx, id, true, &before, err);
    if (!rc)
        rc = gc_check_if_match(before, if_match, "cloud", id, err);
    static const char *const del[] = {
        "DELETE FROM sup_records WHERE cloud_id = ?", "DELETE FROM sup_gaps WHERE cloud_id = ?",
        "DELETE FROM sup_batches_in WHERE cloud_id = ?",
        "DELETE FROM sup_streams WHERE cloud_id = ?", "DELETE FROM sup_clouds WHERE id = ?"};
    for (size_t i = 0; !rc && i < sizeof(del) / sizeof(del[0]); i++)
        rc = gc_tx_exec(tx, del[i], GC_ARGS(GC_VTXT(id)), NULL, err);
    struct gc_audit_event ev = {.action = "supervision_cloud.delete",
                                .resource_type = "supervision_cloud",
                                .resource_id = id,
                                .outcome = GC_OUTCOME_SUCCESS,
                                .detail = before};
    rc = gc_audit_commit(tx, ctx, &ev, rc, err);
    json_decref(before);
    return rc;
}

int gc_cloud_records(const struct gc_ctx *ctx, const char *id, const char *dataset, int limit,
                     const char *cursor, json_t **items, char **next_cursor,
                     struct gc_error *err)
{
    int rc = may_read(ctx->who, err);
    if (rc)
        return rc;
    if (dataset && !gc_supervision_dataset_valid(dataset))
        return gc_error_set(err, GC_EINVAL, "dataset", "'%.40s' is not a supervision dataset",
                            dataset);
    if (limit == 0)
        limit = 100;
    if (limit < 1 || limit > 10000)
        return gc_error_set(err, GC_EINVAL, "limit", "limit must be from 1 to 10000");
    char cds[32] = "", crec[300] = "";
    if (cursor) {
        const char *colon = strchr(cursor, ':');
        if (!colon || colon == cursor || (size_t)(colon - cursor) >= sizeof(cds) ||
            strlen(colon + 1) >= sizeof(crec))
            return gc_error_set(err, GC_EINVAL, "cursor",
                                "cursor is not one returned by this API (use next_cursor)");
        memcpy(cds, cursor, (size_t)(colon - cursor));
        snprintf(crec, sizeof(crec), "%s", colon + 1);
    }
    struct gc_tx *tx;
    rc = gc_tx_begin(ctx->store, GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    json_t *c = NULL;
    rc = cloud_load(tx, id, false, &c, err);
    json_decref(c);
    struct gc_rows *r = NULL;
    json_t *a = json_array();
    if (!rc)
        rc = gc_tx_query(tx,
                         "SELECT dataset, record_id, seq, time, op, data, received_at FROM"
                         " sup_records WHERE cloud_id = ? AND (? = '' OR dataset = ?) AND"
                         " (dataset > ? OR (dataset = ? AND record_id > ?)) ORDER BY dataset,"
                         " record_id LIMIT ?",
                         GC_ARGS(GC_VTXT(id), GC_VTXT(dataset ? dataset : ""),
                                 GC_VTXT(dataset ? dataset : ""), GC_VTXT(cds), GC_VTXT(cds),
                                 GC_VTXT(crec), GC_VINT_(limit + 1)),
                         &r, err);
    int n = 0;
    bool more = false;
    while (!rc && (rc = gc_rows_next(r, err)) > 0) {
        rc = 0;
        if (n == limit) {
            more = true;
            break;
        }
        n++;
        json_t *data = gc_rows_null(r, 5) ? json_null() : json_loads(gc_rows_text(r, 5), 0, NULL);
        json_t *o = json_pack("{s:s,s:s,s:I,s:o,s:s,s:o,s:o}", "id", gc_rows_text(r, 1),
                              "dataset", gc_rows_text(r, 0), "seq",
                              (json_int_t)gc_rows_int(r, 2), "time",
                              gc_json_time(gc_rows_int(r, 3)), "op", gc_rows_text(r, 4), "data",
                              data ? data : json_null(), "received_at",
                              gc_json_time(gc_rows_int(r, 6)));
        json_array_append_new(a, o);
    }
    gc_rows_free(r);
    gc_tx_rollback(tx);
    if (rc < 0) {
        json_decref(a);
        return rc;
    }
    *next_cursor = NULL;
    if (more) {
        json_t *last = json_array_get(a, json_array_size(a) - 1);
        size_t cap = 400;
        *next_cursor = gc_malloc(cap);
        snprintf(*next_cursor, cap, "%s:%s",
                 json_string_value(json_object_get(last, "dataset")),
                 json_string_value(json_object_get(last, "id")));
    }
    *items = a;
    return 0;
}

/* ---- ingest ---- */

struct cloud_keys {
    char id[GC_ID_LEN + 1];
    struct gc_sm2_key *key;
    unsigned char secret[GC_SUP_SECRET_LEN];
    bool has_secret;
};

static int lookup(void *arg, const char *cloud_id, const struct gc_sm2_key **key,
                  const unsigned char **secret, struct gc_error *err)
{
    struct cloud_keys *c = arg;
    if (strcmp(cloud_id, c->id) != 0)
        return gc_error_set(err, GC_EPERM, "/cloud_id",
                            "the batch is signed as cloud %s, but the push token is that of "
                            "cloud %s",
                            cloud_id, c->id);
    *key = c->key;
    *secret = c->has_secret ? c->secret : NULL;
    return 0;
}

static int find_cloud(struct gc_store *st, const char *token, struct cloud_keys *c,
                      struct gc_error *err)
{
    char hash[GC_SM3_HEX_LEN + 1];
    gc_sm3_hex(token, strlen(token), hash);
    struct gc_tx *tx;
    int rc = gc_tx_begin(st, GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    struct gc_rows *r = NULL;
    char *pem = NULL, *secret = NULL;
    rc = gc_tx_query(tx,
                     "SELECT id, public_key_pem, COALESCE(secret, '') FROM sup_clouds WHERE"
                     " token_hash = ?",
                     GC_ARGS(GC_VTXT(hash)), &r, err);
    if (!rc && (rc = gc_rows_next(r, err)) > 0) {
        rc = 0;
        snprintf(c->id, sizeof(c->id), "%s", gc_rows_text(r, 0));
        pem = gc_strdup(gc_rows_text(r, 1));
        secret = gc_strdup(gc_rows_text(r, 2));
    } else if (rc == 0) {
        rc = gc_error_set(err, GC_EAUTH, "Authorization",
                          "the push token is not that of a registered cloud (POST "
                          "/v1/supervision/clouds gives one)");
    }
    gc_rows_free(r);
    gc_tx_rollback(tx);
    if (!rc && gc_sm2_key_from_pem(pem, strlen(pem), &c->key, err) != 0)
        rc = GC_EINTERNAL;
    if (!rc && secret[0]) {
        unsigned char *k = NULL;
        size_t klen = 0;
        if (gc_base64_decode(secret, &k, &klen) == 0 && klen == GC_SUP_SECRET_LEN) {
            memcpy(c->secret, k, GC_SUP_SECRET_LEN);
            c->has_secret = true;
        }
        free(k);
    }
    free(pem);
    free(secret);
    return rc < 0 ? rc : 0;
}

/* Records batch_seq b of a stream whose highest so far is max: a new gap, or one filled. */
static int note_batch_seq(struct gc_tx *tx, const char *cloud, const char *ds, int64_t b,
                          int64_t max, struct gc_error *err)
{
    if (b > max + 1)
        return gc_tx_exec(tx,
                          "INSERT INTO sup_gaps (cloud_id, dataset, from_seq, to_seq) VALUES"
                          " (?, ?, ?, ?)",
                          GC_ARGS(GC_VTXT(cloud), GC_VTXT(ds), GC_VINT_(max + 1),
                                  GC_VINT_(b - 1)),
                          NULL, err);
    if (b > max)
        return 0;
    struct gc_rows *r = NULL;
    int64_t from = 0, to = 0;
    int rc = gc_tx_query(tx,
                         "SELECT from_seq, to_seq FROM sup_gaps WHERE cloud_id = ? AND"
                         " dataset = ? AND from_seq <= ? ORDER BY from_seq DESC LIMIT 1",
                         GC_ARGS(GC_VTXT(cloud), GC_VTXT(ds), GC_VINT_(b)), &r, err);
    bool found = false;
    if (!rc && (rc = gc_rows_next(r, err)) > 0) {
        rc = 0;
        from = gc_rows_int(r, 0);
        to = gc_rows_int(r, 1);
        found = to >= b;
    }
    gc_rows_free(r);
    if (rc < 0 || !found)
        return rc < 0 ? rc : 0;
    rc = gc_tx_exec(tx, "DELETE FROM sup_gaps WHERE cloud_id = ? AND dataset = ? AND from_seq = ?",
                    GC_ARGS(GC_VTXT(cloud), GC_VTXT(ds), GC_VINT_(from)), NULL, err);
    if (!rc && from < b)
        rc = gc_tx_exec(tx,
                        "INSERT INTO sup_gaps (cloud_id, dataset, from_seq, to_seq) VALUES"
                        " (?, ?, ?, ?)",
                        GC_ARGS(GC_VTXT(cloud), GC_VTXT(ds), GC_VINT_(from), GC_VINT_(b - 1)),
                        NULL, err);
    if (!rc && b < to)
        rc = gc_tx_exec(tx,
                        "INSERT INTO sup_gaps (cloud_id, dataset, from_seq, to_seq) VALUES"
                        " (?, ?, ?, ?)",
                        GC_ARGS(GC_VTXT(cloud), GC_VTXT(ds), GC_VINT_(b + 1), GC_VINT_(to)),
                        NULL, err);
    return rc;
}

/* One opened and checked batch, stored by store_batch in a shared transaction. */
struct gc_sup_ingest {
    struct gc_sup_batch b;
    bool *good;        /* the records that validated */
    json_t *rejected;  /* [{record_id, field, detail}] */
    int64_t nrejected;
    char ids_hash[GC_SM3_HEX_LEN + 1];
    int64_t btime, now;
    /* results */
    int64_t accepted, duplicates;
    json_t *gaps;
    /* gc_sup_ingest_submit */
    gc_sup_ingest_done_fn done;
    void *done_arg;
};

/* Stores the good records of a batch: duplicate and gap bookkeeping, the upsert by highest
 * seq, the stream's counters. Runs in gc_store_write_grouped's transaction. */
static int store_batch(struct gc_tx *tx, void *arg, struct gc_error *err)
{
    struct gc_sup_ingest *in = arg;
    const struct gc_sup_batch *b = &in->b;
    size_t n = b->nrecords;
    in->accepted = in->duplicates = 0;
    struct gc_rows *r = NULL;
    char seen[GC_SM3_HEX_LEN + 1] = "";
    int rc = gc_tx_query(tx,
                         "SELECT ids_hash FROM sup_batches_in WHERE cloud_id = ? AND dataset = ?"
                         " AND batch_seq = ?",
                         GC_ARGS(GC_VTXT(b->cloud_id), GC_VTXT(b->dataset),
                                 GC_VINT_(b->batch_seq)),
                         &r, err);
    if (!rc && (rc = gc_rows_next(r, err)) > 0) {
        rc = 0;
        snprintf(seen, sizeof(seen), "%s", gc_rows_text(r, 0));
    }
    gc_rows_free(r);
    int64_t max = 0, have_stream = 0;
    if (!rc)
        rc = gc_tx_query_int(tx,
                             "SELECT COUNT(*) FROM sup_streams WHERE cloud_id = ? AND dataset = ?",
                             GC_ARGS(GC_VTXT(b->cloud_id), GC_VTXT(b->dataset)), &have_stream,
                             err);
    if (!rc && have_stream)
        rc = gc_tx_query_int(tx,
                             "SELECT max_batch_seq FROM sup_streams WHERE cloud_id = ? AND"
                             " dataset = ?",
                             GC_ARGS(GC_VTXT(b->cloud_id), GC_VTXT(b->dataset)), &max, err);
    if (!rc && !have_stream)
        rc = gc_tx_exec(tx,
                        "INSERT INTO sup_streams (cloud_id, dataset, max_batch_seq, batches,"
                        " accepted, duplicates, rejected, last_batch_at, last_batch_time) VALUES"
                        " (?, ?, 0, 0, 0, 0, 0, 0, 0)",
                        GC_ARGS(GC_VTXT(b->cloud_id), GC_VTXT(b->dataset)), NULL, err);
    bool dup_batch = seen[0] != 0;
    if (!rc && dup_batch && strcmp(seen, in->ids_hash) != 0)
        rc = gc_error_set(err, GC_ECONFLICT, "/batch_seq",
                          "batch %lld of dataset %s was received before with other records: a "
                          "batch_seq is never reused with other contents",
                          (long long)b->batch_seq, b->dataset);
    if (!rc && dup_batch) {
        for (size_t i = 0; i < n; i++)
            in->duplicates += in->good[i];
    } else if (!rc) {
        rc = gc_tx_exec(tx,
                        "INSERT INTO sup_batches_in (cloud_id, dataset, batch_seq, ids_hash,"
                        " received_at) VALUES (?, ?, ?, ?, ?)",
                        GC_ARGS(GC_VTXT(b->cloud_id), GC_VTXT(b->dataset),
                                GC_VINT_(b->batch_seq), GC_VTXT(in->ids_hash),
                                GC_VINT_(in->now)),
                        NULL, err);
        if (!rc)
            rc = note_batch_seq(tx, b->cloud_id, b->dataset, b->batch_seq, max, err);
        struct gc_buf id, data;
        gc_buf_init(&id, GC_BUF_UNLIMITED);
        gc_buf_init(&data, GC_BUF_UNLIMITED);
        for (size_t i = 0; !rc && i < n; i++) {
            if (!in->good[i])
                continue;
            struct gc_sup_rec rec;
            gc_sup_batch_record(b, i, &rec);
            /* the store binds NUL-terminated text */
            gc_buf_reset(&id);
            gc_buf_reset(&data);
            if (gc_buf_add(&id, rec.id, rec.id_len) != 0 ||
                (rec.data && gc_buf_add(&data, rec.data, rec.data_len) != 0)) {
                rc = gc_error_set(err, GC_ETOOBIG, "", "record %zu is too big", i);
                break;
            }
            int64_t changed = 0;
            rc = gc_tx_exec(
                tx,
                "INSERT INTO sup_records (cloud_id, dataset, record_id, seq, time, op, data,"
                " received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (cloud_id, dataset,"
                " record_id) DO UPDATE SET seq = excluded.seq, time = excluded.time,"
                " op = excluded.op, data = excluded.data, received_at = excluded.received_at"
                " WHERE excluded.seq > sup_records.seq",
                GC_ARGS(GC_VTXT(b->cloud_id), GC_VTXT(b->dataset), GC_VTXT(gc_buf_str(&id)),
                        GC_VINT_(rec.seq), GC_VINT_(rec.time_ms),
                        GC_VTXT(rec.del ? "delete" : "upsert"),
                        rec.data ? GC_VTXT(gc_buf_str(&data)) : GC_VNUL, GC_VINT_(in->now)),
                &changed, err);
            if (changed > 0)
                in->accepted++;
            else
                in->duplicates++;
        }
        gc_buf_release(&id);
        gc_buf_release(&data);
    }
    if (!rc)
        rc = gc_tx_exec(tx,
                        "UPDATE sup_streams SET max_batch_seq = MAX(max_batch_seq, ?),"
                        " batches = batches + ?, accepted = accepted + ?,"
                        " duplicates = duplicates + ?, rejected = rejected + ?,"
                        " last_batch_at = ?, last_batch_time = ? WHERE cloud_id = ? AND"
                        " dataset = ?",
                        GC_ARGS(GC_VINT_(b->batch_seq), GC_VINT_(dup_batch ? 0 : 1),
                                GC_VINT_(in->accepted), GC_VINT_(in->duplicates),
                                GC_VINT_(dup_batch ? 0 : in->nrejected), GC_VINT_(in->now),
                                GC_VINT_(in->btime), GC_VTXT(b->cloud_id),
                                GC_VTXT(b->dataset)),
                        NULL, err);
    if (!rc)
        rc = gaps_of(tx, b->cloud_id, b->dataset, &in->gaps, err);
    return rc;
}

static void ingest_free(struct gc_sup_ingest *in)
{
    json_decref(in->rejected);
    json_decref(in->gaps);
    free(in->good);
    gc_sup_batch_release(&in->b);
    free(in);
}

int gc_sup_ingest_prepare(struct gc_store *st, const char *token, const char *body, size_t len,
                          struct gc_sup_ingest **out, struct gc_error *err)
{
    *out = NULL;
    struct cloud_keys c = {0};
    int rc = find_cloud(st, token, &c, err);
    if (rc)
        return rc;
    struct gc_sup_batch_expect x = {.lookup = lookup,
                                    .lookup_arg = &c,
                                    .require_encryption = c.has_secret};
    struct gc_sup_ingest *in = gc_calloc(1, sizeof(*in));
    rc = gc_sup_batch_open(body, len, &x, &in->b, err);
    gc_sm2_key_free(c.key);
    if (rc) {
        ingest_free(in);
        return rc;
    }
    size_t n = in->b.nrecords;
    /* validate every record: bad ones are reported one by one */
    in->good = gc_calloc(n ? n : 1, sizeof(bool));
    in->rejected = json_array();
    for (size_t i = 0; i < n; i++) {
        struct gc_schema_error se;
        memset(&se, 0, sizeof(se));
        if (gc_sup_batch_check_record(&in->b, i, &se) == 0) {
            in->good[i] = true;
            continue;
        }
        char rid[1024];
        json_array_append_new(in->rejected,
                              json_pack("{s:s,s:s,s:s}", "record_id",
                                        gc_sup_batch_record_id(&in->b, i, rid, sizeof(rid)),
                                        "field", se.pointer, "detail", se.message));
    }
    in->nrejected = (int64_t)json_array_size(in->rejected);
    in->now = gc_now_ms();
    /* the batch's identity for duplicates: SM3 of its record ids (canonical text) */
    gc_sm3_hex(in->b.ids_text, in->b.ids_len, in->ids_hash);
    (void)gc_time_parse_rfc3339(in->b.time, &in->btime);
    *out = in;
    return 0;
}

/* The answer to a stored batch. */
static json_t *answer(const struct gc_sup_ingest *in)
{
    return json_pack("{s:s,s:s,s:I,s:I,s:I,s:O,s:O}", "cloud_id", in->b.cloud_id, "dataset",
                     in->b.dataset, "batch_seq", (json_int_t)in->b.batch_seq, "accepted",
                     (json_int_t)in->accepted, "duplicates", (json_int_t)in->duplicates,
                     "rejected", in->rejected, "gaps", in->gaps);
}

static void submitted_done(void *arg, int rc, const struct gc_error *err)
{
    struct gc_sup_ingest *in = arg;
    in->done(in->done_arg, rc, rc ? NULL : answer(in), err);
    ingest_free(in);
}

void gc_sup_ingest_submit(struct gc_store *st, struct gc_sup_ingest *in,
                          gc_sup_ingest_done_fn done, void *arg)
{
    in->done = done;
    in->done_arg = arg;
    gc_store_write_async(st, store_batch, submitted_done, in);
}

int gc_sup_ingest(struct gc_store *st, const char *token, const char *body, size_t len,
                  json_t **out, struct gc_error *err)
{
    struct gc_sup_ingest *in;
    int rc = gc_sup_ingest_prepare(st, token, body, len, &in, err);
    if (rc)
        return rc;
    rc = gc_store_write_grouped(st, store_batch, in, err);
    if (rc == 0)
        *out = answer(in);
    ingest_free(in);
    return rc;
}
