/* Push to upstream receivers: the receivers (CRUD) and the persistent outbox.
 *
 * The outbox rules that make a crash at any moment harmless:
 * - a batch is made from the records after the stream's cursor, then stored together with
 *   the new cursor and batch_seq in ONE write transaction, guarded by the batch_seq read
 *   before (a batch_seq is stored once, with its text fixed; a crash before the commit
 *   leaves nothing, and the same records go into the same batch_seq next time);
 * - delivery sends the stored text, lowest undelivered batch_seq first per stream, and
 *   marks it delivered only after a 2xx; a crash in between sends it again (the receiver
 *   sees a duplicate batch and acknowledges it). */
#include "core/supervise.h"

#include "core/asset.h"
#include "core/validate.h"
#include "supervision/envelope.h"
#include "supervision/schema.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BACKOFF_MAX_MS 300000

static int may_manage(const struct gc_principal *who, struct gc_error *err)
{
    if (!who)
        return gc_error_set(err, GC_EAUTH, "", "authentication required");
    if (who->role != GC_ROLE_PLATFORM_ADMIN && who->role != GC_ROLE_OPERATOR)
        return gc_error_set(err, GC_EPERM, "",
                            "role %s may not manage supervision receivers (platform_admin and "
                            "operator only)",
                            gc_role_name(who->role));
    return 0;
}

#define RCV_COLS                                                                              \
    "r.id, r.name, r.url, r.secret IS NOT NULL, r.datasets, r.enabled, r.created_at,"         \
    " r.updated_at, r.version"

static json_t *rcv_json(struct gc_rows *r, char *path)
{
    (void)path;
    json_t *o = json_pack("{s:s,s:s,s:s,s:b,s:b}", "id", gc_rows_text(r, 0), "name",
                          gc_rows_text(r, 1), "url", gc_rows_text(r, 2), "encrypted",
                          gc_rows_int(r, 3) != 0, "enabled", gc_rows_int(r, 5) != 0);
    json_t *ds = json_loads(gc_rows_text(r, 4), 0, NULL);
    json_object_set_new(o, "datasets", ds ? ds : json_array());
    json_object_set_new(o, "created_at", gc_json_time(gc_rows_int(r, 6)));
    json_object_set_new(o, "updated_at", gc_json_time(gc_rows_int(r, 7)));
    json_object_set_new(o, "version", json_integer(gc_rows_int(r, 8)));
    return o;
}

static json_t *rcv_row(struct gc_rows *r, const struct gc_principal *who)
{
    (void)who;
    return rcv_json(r, NULL);
}

/* The delivery state of each dataset of receiver o (an object from rcv_json), in tx. */
static int add_delivery(struct gc_tx *tx, json_t *o, int64_t now, struct gc_error *err)
{
    const char *id = json_string_value(json_object_get(o, "id"));
    json_t *out = json_array();
    size_t i;
    json_t *d;
    int rc = 0;
    json_array_foreach(json_object_get(o, "datasets"), i, d) {
        const char *ds = json_string_value(d);
        struct gc_rows *r = NULL;
        int64_t cursor = 0, built = 0, delivered = 0, success = 0, created = 0;
        char last_error[512] = "";
        rc = gc_tx_query(tx,
                         "SELECT cursor, batch_seq, delivered_seq, last_error, last_success_at,"
                         " created_at FROM sup_push_state WHERE receiver_id = ? AND dataset = ?",
                         GC_ARGS(GC_VTXT(id), GC_VTXT(ds)), &r, err);
        if (!rc && (rc = gc_rows_next(r, err)) > 0) {
            cursor = gc_rows_int(r, 0);
            built = gc_rows_int(r, 1);
            delivered = gc_rows_int(r, 2);
            snprintf(last_error, sizeof(last_error), "%s", gc_rows_text(r, 3));
            success = gc_rows_int(r, 4);
            created = gc_rows_int(r, 5);
        }
        gc_rows_free(r);
        if (rc < 0)
            break;
        int64_t pending = 0, oldest = 0;
        rc = gc_tx_query_int(tx,
                             "SELECT COUNT(*) FROM sup_outbox WHERE receiver_id = ? AND"
                             " dataset = ? AND delivered_at IS NULL",
                             GC_ARGS(GC_VTXT(id), GC_VTXT(ds)), &pending, err);
        if (!rc && pending > 0)
            rc = gc_tx_query_int(tx,
                                 "SELECT COALESCE(MIN(oldest_at), 0) FROM sup_outbox WHERE"
                                 " receiver_id = ? AND dataset = ? AND delivered_at IS NULL",
                                 GC_ARGS(GC_VTXT(id), GC_VTXT(ds)), &oldest, err);
        if (rc)
            break;
        (void)created;
        int64_t lag = pending > 0 && oldest > 0 && now > oldest ? (now - oldest) / 1000 : 0;
        json_t *e = json_pack("{s:s,s:I,s:I,s:I,s:I,s:s,s:o,s:I}", "dataset", ds, "cursor",
                              (json_int_t)cursor, "last_batch_seq", (json_int_t)built,
                              "delivered_batch_seq", (json_int_t)delivered, "pending_batches",
                              (json_int_t)pending, "last_error", last_error, "last_success_at",
                              gc_json_time(success), "lag_seconds", (json_int_t)lag);
        json_array_append_new(out, e);
    }
    json_object_set_new(o, "delivery", out);
    return rc < 0 ? rc : 0;
}

static int rcv_load(struct gc_tx *tx, const char *id, json_t **out, struct gc_error *err)
{
    int rc = gc_load_by_id(tx, "SELECT " RCV_COLS " FROM sup_receivers r WHERE r.id = ?",
                           "supervision receiver", id, rcv_json, out, NULL, err);
    if (!rc && (rc = add_delivery(tx, *out, gc_now_ms(), err)) != 0) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

static const struct gc_jfield rcv_spec[] = {
    {"name", GC_JT_STRING, true, false, 1, 64, GC_CS_CODE},
    {"url", GC_JT_STRING, true, false, 1, 2048, GC_CS_TEXT},
    {"token", GC_JT_STRING, true, false, 1, 4096, GC_CS_TEXT},
    {"secret", GC_JT_STRING, false, true, 1, 64, GC_CS_TEXT},
    {"datasets", GC_JT_ARRAY, false, false, 1, 16, GC_CS_ANY},
    {"enabled", GC_JT_BOOL, false, false, 0, 0, GC_CS_ANY},
};

/* Checks the fields present in in (all optional here: create checks required ones). */
static int rcv_check(json_t *in, bool create, char **datasets, struct gc_error *err)
{
    struct gc_jfield spec[sizeof(rcv_spec) / sizeof(rcv_spec[0])];
    memcpy(spec, rcv_spec, sizeof(spec));
    if (!create)
        for (size_t i = 0; i < sizeof(spec) / sizeof(spec[0]); i++)
            spec[i].required = false;
    int rc = gc_json_check(in, spec, sizeof(spec) / sizeof(spec[0]), err);
    if (rc)
        return rc;
    const char *url = gc_json_str(in, "url");
    if (url && strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
        return gc_error_set(err, GC_EINVAL, "url",
                            "field 'url' must start with http:// or https:// (the supervisor's "
                            "ingest URL, e.g. https://supervisor.example/v1/supervision/ingest)");
    const char *secret = gc_json_str(in, "secret");
    if (secret) {
        unsigned char *k = NULL;
        size_t klen = 0;
        int bad = gc_base64_decode(secret, &k, &klen);
        free(k);
        if (bad || klen != GC_SUP_SECRET_LEN)
            return gc_error_set(err, GC_EINVAL, "secret",
                                "field 'secret' must be the base64 of %d bytes (e.g. "
                                "`openssl rand -base64 32`), the same on the supervisor",
                                GC_SUP_SECRET_LEN);
    }
    json_t *ds = json_object_get(in, "datasets");
    json_t *list = json_array();
    if (ds) {
        size_t i;
        json_t *d;
        json_array_foreach(ds, i, d) {
            char field[32];
            snprintf(field, sizeof(field), "datasets/%zu", i);
            if (!json_is_string(d) || !gc_sup_provider_find(json_string_value(d))) {
                json_decref(list);
                struct gc_buf b;
                gc_buf_init(&b, 512);
                for (size_t p = 0; p < gc_sup_nproviders; p++)
                    (void)gc_buf_addf(&b, "%s%s", p ? ", " : "", gc_sup_providers[p].dataset);
                rc = gc_error_set(err, GC_EINVAL, field,
                                  "field '%s': not a dataset this cloud can push (available: "
                                  "%s)",
                                  field, b.data ? b.data : "");
                gc_buf_release(&b);
                return rc;
            }
            for (size_t j = 0; j < i; j++)
                if (!strcmp(json_string_value(json_array_get(ds, j)), json_string_value(d))) {
                    json_decref(list);
                    return gc_error_set(err, GC_EINVAL, field, "field '%s': '%s' given twice",
                                        field, json_string_value(d));
                }
            json_array_append(list, d);
        }
    } else {
        for (size_t p = 0; p < gc_sup_nproviders; p++)
            json_array_append_new(list, json_string(gc_sup_providers[p].dataset));
    }
    *datasets = json_dumps(list, JSON_COMPACT);
    json_decref(list);
    return 0;
}

int gc_receiver_create(const struct gc_ctx *ctx, json_t *in, json_t **out, struct gc_error *err)
{
    char *datasets = NULL;
    int rc = may_manage(ctx->who, err);
    if (!rc)
        rc = rcv_check(in, true, &datasets, err);
    if (rc)
        return rc;
    struct gc_tx *tx;
    rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc) {
        free(datasets);
        return rc;
    }
    char id[GC_ID_LEN + 1];
    gc_id_new(id);
    int64_t now = gc_now_ms();
    json_t *en = json_object_get(in, "enabled");
    const char *secret = gc_json_str(in, "secret");
    rc = gc_tx_exec(tx,
                    "INSERT INTO sup_receivers (id, name, url, token, secret, datasets, enabled,"
                    " created_at, updated_at, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
                    GC_ARGS(GC_VTXT(id), GC_VTXT(gc_json_str(in, "name")),
                            GC_VTXT(gc_json_str(in, "url")), GC_VTXT(gc_json_str(in, "token")),
                            secret ? GC_VTXT(secret) : GC_VNUL, GC_VTXT(datasets),
                            GC_VINT_(en && json_is_false(en) ? 0 : 1), GC_VINT_(now),
                            GC_VINT_(now)),
                    NULL, err);
    free(datasets);
    if (rc == GC_ECONFLICT)
        rc = gc_error_set(err, GC_ECONFLICT, "name", "a supervision receiver named '%s' exists",
                          gc_json_str(in, "name"));
    json_t *obj = NULL;
    if (!rc)
        rc = rcv_load(tx, id, &obj, err);
    struct gc_audit_event ev = {.action = "supervision_receiver.create",
                                .resource_type = "supervision_receiver",
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

int gc_receiver_get(const struct gc_ctx *ctx, const char *id, json_t **out, struct gc_error *err)
{
    int rc = may_manage(ctx->who, err);
    struct gc_tx *tx;
    if (!rc)
        rc = gc_tx_begin(ctx->store, GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    rc = rcv_load(tx, id, out, err);
    gc_tx_rollback(tx);
    return rc;
}

int gc_receiver_list(const struct gc_ctx *ctx, json_t *filters, int limit, const char *cursor,
                     json_t **items, char **next_cursor, struct gc_error *err)
{
    static const struct gc_list_filter f[] = {{NULL, NULL}};
    int rc = may_manage(ctx->who, err);
    if (!rc)
        rc = gc_list_filtered(ctx, GC_P_HOST_READ,
                              "SELECT " RCV_COLS " FROM sup_receivers r WHERE r.id > ?", "r.id",
                              f, filters, limit, cursor, rcv_row, items, next_cursor, err);
    if (rc)
        return rc;
    struct gc_tx *tx;
    rc = gc_tx_begin(ctx->store, GC_TX_READ, &tx, err);
    if (!rc) {
        size_t i;
        json_t *o;
        int64_t now = gc_now_ms();
        json_array_foreach(*items, i, o) {
            if (rc)
                break;
            rc = add_delivery(tx, o, now, err);
        }
        gc_tx_rollback(tx);
    }
    if (rc) {
        json_decref(*items);
        *items = NULL;
        free(*next_cursor);
        *next_cursor = NULL;
    }
    return rc;
}

int gc_receiver_update(const struct gc_ctx *ctx, const char *id, int64_t if_match, json_t *in,
                       json_t **out, struct gc_error *err)
{
    char *datasets = NULL;
    int rc = may_manage(ctx->who, err);
    if (!rc)
        rc = rcv_check(in, false, &datasets, err);
    if (rc)
        return rc;
    if (!json_object_get(in, "datasets")) {
        free(datasets);
        datasets = NULL;
    }
    struct gc_tx *tx;
    rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc) {
        free(datasets);
        return rc;
    }
    json_t *before = NULL, *obj = NULL;
    rc = rcv_load(tx, id, &before, err);
    if (!rc)
        rc = gc_check_if_match(before, if_match, "supervision receiver", id, err);
    int64_t now = gc_now_ms();
    json_t *en = json_object_get(in, "enabled");
    json_t *sec = json_object_get(in, "secret");
    if (!rc)
        rc = gc_tx_exec(
            tx,
            "UPDATE sup_receivers SET name = COALESCE(?, name), url = COALESCE(?, url),"
            " token = COALESCE(?, token), secret = CASE WHEN ? THEN ? ELSE secret END,"
            " datasets = COALESCE(?, datasets), enabled = COALESCE(?, enabled),"
            " updated_at = ?, version = version + 1 WHERE id = ?",
            GC_ARGS(gc_json_str(in, "name") ? GC_VTXT(gc_json_str(in, "name")) : GC_VNUL,
                    gc_json_str(in, "url") ? GC_VTXT(gc_json_str(in, "url")) : GC_VNUL,
                    gc_json_str(in, "token") ? GC_VTXT(gc_json_str(in, "token")) : GC_VNUL,
                    GC_VINT_(sec != NULL), sec && json_is_string(sec) ? GC_VTXT(json_string_value(sec)) : GC_VNUL,
                    datasets ? GC_VTXT(datasets) : GC_VNUL,
                    en ? GC_VINT_(json_is_true(en) ? 1 : 0) : GC_VNUL, GC_VINT_(now),
                    GC_VTXT(id)),
            NULL, err);
    free(datasets);
    if (rc == GC_ECONFLICT)
        rc = gc_error_set(err, GC_ECONFLICT, "name", "a supervision receiver named '%s' exists",
                          gc_json_str(in, "name"));
    /* a changed receiver is tried again at once */
    if (!rc)
        rc = gc_tx_exec(tx,
                        "UPDATE sup_outbox SET next_at = ? WHERE receiver_id = ? AND"
                        " delivered_at IS NULL",
                        GC_ARGS(GC_VINT_(now), GC_VTXT(id)), NULL, err);
    if (!rc)
        rc = rcv_load(tx, id, &obj, err);
    json_t *detail = json_pack("{s:O,s:O}", "before", before ? before : json_null(), "after",
                               obj ? obj : json_null());
    struct gc_audit_event ev = {.action = "supervision_receiver.update",
                                .resource_type = "supervision_receiver",
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
    *out = obj;
    return 0;
}

int gc_receiver_delete(const struct gc_ctx *ctx, const char *id, int64_t if_match,
                       struct gc_error *err)
{
    int rc = may_manage(ctx->who, err);
    struct gc_tx *tx;
    if (!rc)
        rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    json_t *before = NULL;
    rc = rcv_load(tx, id, &before, err);
    if (!rc)
        rc = gc_check_if_match(before, if_match, "supervision receiver", id, err);
    /* its outbox goes with it */
    if (!rc)
        rc = gc_tx_exec(tx, "DELETE FROM sup_outbox WHERE receiver_id = ?", GC_ARGS(GC_VTXT(id)),
                        NULL, err);
    if (!rc)
        rc = gc_tx_exec(tx, "DELETE FROM sup_push_state WHERE receiver_id = ?",
                        GC_ARGS(GC_VTXT(id)), NULL, err);
    if (!rc)
        rc = gc_tx_exec(tx, "DELETE FROM sup_receivers WHERE id = ?", GC_ARGS(GC_VTXT(id)), NULL,
                        err);
    struct gc_audit_event ev = {.action = "supervision_receiver.delete",
                                .resource_type = "supervision_receiver",
                                .resource_id = id,
                                .outcome = GC_OUTCOME_SUCCESS,
                                .detail = before};
    rc = gc_audit_commit(tx, ctx, &ev, rc, err);
    json_decref(before);
    return rc;
}

/* ---- building batches ---- */

struct collect {
    const char *dataset;
    json_t *records;
    int64_t last_seq, first_seq, oldest;
    size_t bytes; /* the records' text so far (GC_PUSH_BATCH_BYTES) */
    int bad;      /* records whose data is not JSON (skipped: logged) */
};

/* collect's answer when the batch is full: the fetch stops, the record waits for the next */
#define COLLECT_FULL 1

static int collect(void *cls, const struct gc_sup_record *rec)
{
    struct collect *c = cls;
    /* the envelope of a record (dataset, schema_version, seq, time, op) is under 150 bytes */
    size_t size = strlen(rec->id) + (rec->data && !rec->deleted ? strlen(rec->data) : 0) + 150;
    if (json_array_size(c->records) > 0 && c->bytes + size > GC_PUSH_BATCH_BYTES)
        return COLLECT_FULL;
    c->bytes += size;
    json_t *data = NULL;
    if (!rec->deleted) {
        json_error_t jerr;
        data = json_loads(rec->data ? rec->data : "null", JSON_DECODE_ANY, &jerr);
        if (!data || !json_is_object(data)) {
            json_decref(data);
            data = json_object(); /* keeps the seq; the receiver rejects the record */
            c->bad++;
        }
    }
    json_array_append_new(c->records,
                          gc_sup_record_new(c->dataset, rec->id, rec->seq, rec->time_ms, data));
    if (!c->first_seq)
        c->first_seq = rec->seq;
    c->last_seq = rec->seq;
    if (!c->oldest || rec->time_ms < c->oldest)
        c->oldest = rec->time_ms;
    return 0;
}

struct stream {
    char receiver[GC_ID_LEN + 1];
    char name[72];
    char dataset[16];
    unsigned char secret[GC_SUP_SECRET_LEN];
    bool has_secret;
};

/* The enabled receivers' streams (receiver × dataset with a provider). */
static int load_streams(struct gc_store *st, struct stream **out, size_t *n, bool enabled_only,
                        struct gc_error *err)
{
    struct gc_tx *tx;
    int rc = gc_tx_begin(st, GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    struct gc_rows *r = NULL;
    size_t cap = 0, cnt = 0;
    struct stream *s = NULL;
    rc = gc_tx_query(tx,
                     "SELECT id, name, datasets, COALESCE(secret, ''), enabled FROM sup_receivers"
                     " ORDER BY id",
                     GC_NOARGS, &r, err);
    while (!rc && (rc = gc_rows_next(r, err)) > 0) {
        rc = 0;
        if (enabled_only && !gc_rows_int(r, 4))
            continue;
        json_t *ds = json_loads(gc_rows_text(r, 2), 0, NULL);
        unsigned char *k = NULL;
        size_t klen = 0;
        bool has = gc_rows_text(r, 3)[0] && gc_base64_decode(gc_rows_text(r, 3), &k, &klen) == 0 &&
                   klen == GC_SUP_SECRET_LEN;
        size_t i;
        json_t *d;
        json_array_foreach(ds, i, d) {
            if (!json_is_string(d) || !gc_sup_provider_find(json_string_value(d)))
                continue;
            if (cnt == cap) {
                cap = cap ? cap * 2 : 8;
                s = gc_realloc(s, cap * sizeof(*s));
            }
            struct stream *x = &s[cnt++];
            memset(x, 0, sizeof(*x));
            snprintf(x->receiver, sizeof(x->receiver), "%s", gc_rows_text(r, 0));
            snprintf(x->name, sizeof(x->name), "%s", gc_rows_text(r, 1));
            snprintf(x->dataset, sizeof(x->dataset), "%s", json_string_value(d));
            if (has) {
                memcpy(x->secret, k, GC_SUP_SECRET_LEN);
                x->has_secret = true;
            }
        }
        free(k);
        json_decref(ds);
    }
    gc_rows_free(r);
    gc_tx_rollback(tx);
    if (rc < 0) {
        free(s);
        return rc;
    }
    *out = s;
    *n = cnt;
    return 0;
}

/* Builds and stores the next batch of one stream; *done when there was nothing to build. */
static int build_one(struct gc_store *st, const struct gc_sup_identity *id,
                     const struct stream *s, bool *done, bool *stored, struct gc_error *err)
{
    const struct gc_sup_provider *prov = gc_sup_provider_find(s->dataset);
    *done = true;
    *stored = false;
    struct gc_tx *tx;
    int rc = gc_tx_begin(st, GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    int64_t cursor = 0, bseq = 0, created = 0, pending = 0, high = 0;
    bool have = false;
    struct gc_rows *r = NULL;
    rc = gc_tx_query(tx,
                     "SELECT cursor, batch_seq, created_at FROM sup_push_state WHERE"
                     " receiver_id = ? AND dataset = ?",
                     GC_ARGS(GC_VTXT(s->receiver), GC_VTXT(s->dataset)), &r, err);
    if (!rc && (rc = gc_rows_next(r, err)) > 0) {
        rc = 0;
        have = true;
        cursor = gc_rows_int(r, 0);
        bseq = gc_rows_int(r, 1);
        created = gc_rows_int(r, 2);
    }
    gc_rows_free(r);
    if (!rc && have)
        rc = gc_tx_query_int(tx,
                             "SELECT COUNT(*) FROM sup_outbox WHERE receiver_id = ? AND"
                             " dataset = ? AND delivered_at IS NULL",
                             GC_ARGS(GC_VTXT(s->receiver), GC_VTXT(s->dataset)), &pending, err);
    if (!rc)
        rc = prov->high(tx, &high, err);
    struct collect c = {.dataset = s->dataset, .records = json_array()};
    if (!rc && have && high > cursor && pending < GC_PUSH_MAX_PENDING)
        rc = prov->fetch(tx, cursor, high, false, GC_PUSH_BATCH_RECORDS, collect, &c, err);
    if (rc == COLLECT_FULL)
        rc = 0;
    gc_tx_rollback(tx);
    if (rc)
        goto out;
    int64_t now = gc_now_ms();
    if (!have) {
        /* the stream starts at seq 0: everything the dataset holds is owed */
        rc = gc_tx_begin(st, GC_TX_WRITE, &tx, err);
        if (!rc)
            rc = gc_tx_exec(tx,
                            "INSERT INTO sup_push_state (receiver_id, dataset, cursor, batch_seq,"
                            " delivered_seq, last_error, last_success_at, created_at) VALUES"
                            " (?, ?, 0, 0, 0, '', 0, ?) ON CONFLICT DO NOTHING",
                            GC_ARGS(GC_VTXT(s->receiver), GC_VTXT(s->dataset), GC_VINT_(now)),
                            NULL, err);
        if (!rc)
            rc = gc_tx_commit(tx, err);
        else
            gc_tx_rollback(tx);
        *done = rc != 0;
        goto out;
    }
    if (json_array_size(c.records) == 0)
        goto out;
    if (c.bad)
        gc_warn("push", "dataset %s: %d records with data that is not a JSON object", s->dataset,
                c.bad);
    struct gc_sup_batch_opts o = {.cloud_id = id->cloud_id,
                                  .dataset = s->dataset,
                                  .batch_seq = bseq + 1,
                                  .time_ms = now,
                                  .key = id->key,
                                  .secret = s->has_secret ? s->secret : NULL};
    char *text = NULL;
    size_t len = 0;
    rc = gc_sup_batch_build(&o, c.records, &text, &len, err);
    if (rc)
        goto out;
    int64_t oldest = c.oldest < created ? created : c.oldest;
    rc = gc_tx_begin(st, GC_TX_WRITE, &tx, err);
    if (rc) {
        free(text);
        goto out;
    }
    int64_t changed = 0;
    rc = gc_tx_exec(tx,
                    "UPDATE sup_push_state SET cursor = ?, batch_seq = ? WHERE receiver_id = ?"
                    " AND dataset = ? AND batch_seq = ? AND cursor = ?",
                    GC_ARGS(GC_VINT_(c.last_seq), GC_VINT_(bseq + 1), GC_VTXT(s->receiver),
                            GC_VTXT(s->dataset), GC_VINT_(bseq), GC_VINT_(cursor)),
                    &changed, err);
    if (!rc && changed != 1)
        rc = gc_error_set(err, GC_ECONFLICT, "", "the stream moved (receiver changed)");
    if (!rc)
        rc = gc_tx_exec(tx,
                        "INSERT INTO sup_outbox (receiver_id, dataset, batch_seq, body, records,"
                        " first_seq, last_seq, oldest_at, created_at, attempts, next_at,"
                        " delivered_at, last_error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?,"
                        " NULL, '')",
                        GC_ARGS(GC_VTXT(s->receiver), GC_VTXT(s->dataset), GC_VINT_(bseq + 1),
                                GC_VTXT(text), GC_VINT_(json_array_size(c.records)),
                                GC_VINT_(c.first_seq), GC_VINT_(c.last_seq), GC_VINT_(oldest),
                                GC_VINT_(now), GC_VINT_(now)),
                        NULL, err);
    free(text);
    if (!rc)
        rc = gc_tx_commit(tx, err);
    else
        gc_tx_rollback(tx);
    if (!rc) {
        *done = c.last_seq >= high;
        *stored = true;
    }
out:
    json_decref(c.records);
    return rc;
}

int gc_push_build(struct gc_store *st, const struct gc_sup_identity *id, int *built,
                  struct gc_error *err)
{
    struct stream *s = NULL;
    size_t n = 0;
    *built = 0;
    int rc = load_streams(st, &s, &n, true, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < n && !rc; i++) {
        /* a bounded number per pass, so that delivery and other streams get their turn */
        for (int k = 0; k < 50; k++) {
            bool done = true, stored = false;
            rc = build_one(st, id, &s[i], &done, &stored, err);
            if (rc == GC_ECONFLICT) {
                rc = 0;
                break;
            }
            if (stored)
                (*built)++;
            if (rc || done)
                break;
        }
    }
    free(s);
    return rc;
}

/* ---- delivery ---- */

static void record(struct gc_store *st, const char *receiver, const char *dataset, int64_t bseq,
                   bool ok, int64_t attempts, const char *error)
{
    struct gc_error err = {0};
    struct gc_tx *tx;
    if (gc_tx_begin(st, GC_TX_WRITE, &tx, &err) != 0)
        return;
    int64_t now = gc_now_ms();
    int64_t wait = attempts >= 18 ? BACKOFF_MAX_MS : 1000LL << attempts;
    if (wait > BACKOFF_MAX_MS)
        wait = BACKOFF_MAX_MS;
    int rc = gc_tx_exec(tx,
                        "UPDATE sup_outbox SET attempts = attempts + 1, delivered_at = ?,"
                        " next_at = ?, last_error = ? WHERE receiver_id = ? AND dataset = ? AND"
                        " batch_seq = ?",
                        GC_ARGS(ok ? GC_VINT_(now) : GC_VNUL, GC_VINT_(now + wait),
                                GC_VTXT(ok ? "" : error), GC_VTXT(receiver), GC_VTXT(dataset),
                                GC_VINT_(bseq)),
                        NULL, &err);
    if (!rc && ok)
        rc = gc_tx_exec(tx,
                        "UPDATE sup_push_state SET delivered_seq = MAX(delivered_seq, ?),"
                        " last_error = '', last_success_at = ? WHERE receiver_id = ? AND"
                        " dataset = ?",
                        GC_ARGS(GC_VINT_(bseq), GC_VINT_(now), GC_VTXT(receiver),
                                GC_VTXT(dataset)),
                        NULL, &err);
    else if (!rc)
        rc = gc_tx_exec(tx,
                        "UPDATE sup_push_state SET last_error = ? WHERE receiver_id = ? AND"
                        " dataset = ?",
                        GC_ARGS(GC_VTXT(error), GC_VTXT(receiver), GC_VTXT(dataset)), NULL,
                        &err);
    if (rc)
        gc_tx_rollback(tx);
    else if (gc_tx_commit(tx, &err) != 0)
        rc = err.code;
    if (rc)
        gc_err("push", "receiver %s dataset %s batch %lld: cannot record the delivery: %s",
               receiver, dataset, (long long)bseq, err.msg);
}

/* The lowest undelivered batch of a stream: 1 found, 0 none, <0 error. */
static int next_batch(struct gc_store *st, const char *receiver, const char *dataset,
                      int64_t *bseq, int64_t *attempts, int64_t *next_at, char **body,
                      char **url, char **token, struct gc_error *err)
{
    struct gc_tx *tx;
    int rc = gc_tx_begin(st, GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    struct gc_rows *r = NULL;
    int found = 0;
    rc = gc_tx_query(tx,
                     "SELECT o.batch_seq, o.attempts, o.next_at, o.body, r.url, r.token FROM"
                     " sup_outbox o JOIN sup_receivers r ON r.id = o.receiver_id WHERE"
                     " o.receiver_id = ? AND o.dataset = ? AND o.delivered_at IS NULL ORDER BY"
                     " o.batch_seq LIMIT 1",
                     GC_ARGS(GC_VTXT(receiver), GC_VTXT(dataset)), &r, err);
    if (!rc && (rc = gc_rows_next(r, err)) > 0) {
        rc = 0;
        found = 1;
        *bseq = gc_rows_int(r, 0);
        *attempts = gc_rows_int(r, 1);
        *next_at = gc_rows_int(r, 2);
        *body = gc_strdup(gc_rows_text(r, 3));
        *url = gc_strdup(gc_rows_text(r, 4));
        *token = gc_strdup(gc_rows_text(r, 5));
    }
    gc_rows_free(r);
    gc_tx_rollback(tx);
    return rc < 0 ? rc : found;
}

int gc_push_deliver(struct gc_store *st, gc_push_send_fn send, bool (*stop)(void), int *sent,
                    struct gc_error *err)
{
    struct stream *s = NULL;
    size_t n = 0;
    *sent = 0;
    int rc = load_streams(st, &s, &n, true, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < n && !rc; i++) {
        for (int k = 0; k < 200; k++) {
            if (stop && stop())
                goto out;
            int64_t bseq = 0, attempts = 0, next_at = 0;
            char *body = NULL, *url = NULL, *token = NULL;
            int f = next_batch(st, s[i].receiver, s[i].dataset, &bseq, &attempts, &next_at,
                               &body, &url, &token, err);
            if (f <= 0) {
                rc = f < 0 ? f : 0;
                break;
            }
            bool ok = false;
            if (next_at <= gc_now_ms()) {
                char key[128];
                snprintf(key, sizeof(key), "%s:%s:%lld", s[i].receiver, s[i].dataset,
                         (long long)bseq);
                struct gc_error e = {0};
                ok = send(url, token, key, body, strlen(body), &e) == 0;
                if (!ok)
                    gc_warn("push",
                            "receiver %s: batch %lld of dataset %s not delivered (attempt "
                            "%lld): %s",
                            s[i].name, (long long)bseq, s[i].dataset, (long long)attempts + 1,
                            e.msg);
                record(st, s[i].receiver, s[i].dataset, bseq, ok, attempts, e.msg);
                if (ok)
                    (*sent)++;
            }
            free(body);
            free(url);
            free(token);
            if (!ok)
                break; /* in order: the stream waits for this batch */
        }
    }
out:
    free(s);
    return rc;
}

int gc_push_prune(struct gc_store *st, int64_t before_ms, struct gc_error *err)
{
    struct gc_tx *tx;
    int rc = gc_tx_begin(st, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    rc = gc_tx_exec(tx,
                    "DELETE FROM sup_outbox WHERE delivered_at IS NOT NULL AND delivered_at < ?",
                    GC_ARGS(GC_VINT_(before_ms)), NULL, err);
    if (rc) {
        gc_tx_rollback(tx);
        return rc;
    }
    return gc_tx_commit(tx, err);
}

int gc_push_stats(struct gc_store *st, json_t **out, struct gc_error *err)
{
    struct stream *s = NULL;
    size_t n = 0;
    int rc = load_streams(st, &s, &n, true, err);
    if (rc)
        return rc;
    struct gc_tx *tx;
    rc = gc_tx_begin(st, GC_TX_READ, &tx, err);
    if (rc) {
        free(s);
        return rc;
    }
    json_t *a = json_array();
    int64_t now = gc_now_ms();
    for (size_t i = 0; i < n && !rc; i++) {
        int64_t pending = 0, oldest = 0;
        rc = gc_tx_query_int(tx,
                             "SELECT COUNT(*) FROM sup_outbox WHERE receiver_id = ? AND"
                             " dataset = ? AND delivered_at IS NULL",
                             GC_ARGS(GC_VTXT(s[i].receiver), GC_VTXT(s[i].dataset)), &pending,
                             err);
        if (!rc && pending)
            rc = gc_tx_query_int(tx,
                                 "SELECT COALESCE(MIN(oldest_at), 0) FROM sup_outbox WHERE"
                                 " receiver_id = ? AND dataset = ? AND delivered_at IS NULL",
                                 GC_ARGS(GC_VTXT(s[i].receiver), GC_VTXT(s[i].dataset)),
                                 &oldest, err);
        double lag = pending && oldest && now > oldest ? (double)(now - oldest) / 1000.0 : 0.0;
        json_array_append_new(a, json_pack("{s:s,s:s,s:I,s:f}", "receiver", s[i].name,
                                           "dataset", s[i].dataset, "pending",
                                           (json_int_t)pending, "lag_seconds", lag));
    }
    gc_tx_rollback(tx);
    free(s);
    if (rc) {
        json_decref(a);
        return rc;
    }
    *out = a;
    return 0;
}
