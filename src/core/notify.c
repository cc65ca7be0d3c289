/* Notification channels and the outbox (告警通知). A state change that others must hear of
 * (an incident opened or resolved) puts one outbox row per enabled channel in the same
 * transaction as the change; the notifier (monitor/notifier.c) delivers the rows through
 * the channel's notify driver, retrying until the receiver takes it. So a notification
 * survives a restart or a receiver outage, and there is one per state change. */
#include "core/core.h"

#include "core/validate.h"
#include "util/mem.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <string.h>

#define CH_COLS                                                                               \
    "c.id, c.name, c.kind, c.url, c.enabled, c.created_at, c.updated_at, c.version,"          \
    " (SELECT COUNT(*) FROM notify_outbox o WHERE o.channel_id = c.id AND"                    \
    "  o.delivered_at IS NULL),"                                                              \
    " (SELECT MAX(o.delivered_at) FROM notify_outbox o WHERE o.channel_id = c.id),"           \
    " COALESCE((SELECT o.last_error FROM notify_outbox o WHERE o.channel_id = c.id AND"       \
    "  o.delivered_at IS NULL ORDER BY o.created_at LIMIT 1), ''),"                          \
    " COALESCE((SELECT MIN(o.created_at) FROM notify_outbox o WHERE o.channel_id = c.id AND"  \
    "  o.delivered_at IS NULL), 0)"

static json_t *ch_json(struct gc_rows *r, char *path)
{
    (void)path;
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:b}", "id", gc_rows_text(r, 0), "name",
                          gc_rows_text(r, 1), "kind", gc_rows_text(r, 2), "url",
                          gc_rows_text(r, 3), "enabled", gc_rows_int(r, 4) != 0);
    json_object_set_new(o, "created_at", gc_json_time(gc_rows_int(r, 5)));
    json_object_set_new(o, "updated_at", gc_json_time(gc_rows_int(r, 6)));
    json_object_set_new(o, "version", json_integer(gc_rows_int(r, 7)));
    /* what waits for it, and why it waits */
    json_t *d = json_pack("{s:I,s:o,s:s,s:o}", "pending", (json_int_t)gc_rows_int(r, 8),
                          "last_delivered_at",
                          gc_rows_null(r, 9) ? json_null() : gc_json_time(gc_rows_int(r, 9)),
                          "last_error", gc_rows_text(r, 10), "oldest_pending_at",
                          gc_json_time(gc_rows_int(r, 11)));
    json_object_set_new(o, "delivery", d);
    return o;
}

static json_t *ch_row(struct gc_rows *r, const struct gc_principal *who)
{
    (void)who;
    return ch_json(r, NULL);
}

static const struct gc_jfield ch_spec[] = {
    {"name", GC_JT_STRING, true, false, 1, 64, GC_CS_CODE},
    {"kind", GC_JT_STRING, false, false, 1, 16, GC_CS_CODE},
    {"url", GC_JT_STRING, true, false, 1, 2048, GC_CS_TEXT},
    {"enabled", GC_JT_BOOL, false, false, 0, 0, GC_CS_ANY},
};

int gc_channel_create(const struct gc_ctx *ctx, json_t *in, json_t **out, struct gc_error *err)
{
    int rc = gc_require(ctx->who, GC_P_HOST_WRITE, err);
    if (!rc)
        rc = gc_json_check(in, ch_spec, sizeof(ch_spec) / sizeof(ch_spec[0]), err);
    if (rc)
        return rc;
    const char *kind = gc_json_str(in, "kind") ? gc_json_str(in, "kind") : "webhook";
    const char *url = gc_json_str(in, "url");
    if (strcmp(kind, "webhook") != 0)
        return gc_error_set(err, GC_EINVAL, "kind", "kind must be webhook");
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
        return gc_error_set(err, GC_EINVAL, "url", "url must start with http:// or https://");
    struct gc_tx *tx;
    rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    char id[GC_ID_LEN + 1];
    gc_id_new(id);
    int64_t now = gc_now_ms();
    json_t *en = json_object_get(in, "enabled");
    rc = gc_tx_exec(tx,
                    "INSERT INTO notify_channels (id, name, kind, url, enabled, created_at,"
                    " updated_at, version) VALUES (?, ?, ?, ?, ?, ?, ?, 1)",
                    GC_ARGS(GC_VTXT(id), GC_VTXT(gc_json_str(in, "name")), GC_VTXT(kind),
                            GC_VTXT(url), GC_VINT_(en && json_is_false(en) ? 0 : 1),
                            GC_VINT_(now), GC_VINT_(now)),
                    NULL, err);
    if (rc == GC_ECONFLICT)
        rc = gc_error_set(err, GC_ECONFLICT, "name", "a channel named '%s' exists",
                          gc_json_str(in, "name"));
    json_t *obj = NULL;
    if (!rc)
        rc = gc_load_by_id(tx, "SELECT " CH_COLS " FROM notify_channels c WHERE c.id = ?",
                           "notification channel", id, ch_json, &obj, NULL, err);
    struct gc_audit_event ev = {.action = "notification_channel.create",
                                .resource_type = "notification_channel",
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

int gc_channel_list(const struct gc_ctx *ctx, json_t *filters, int limit, const char *cursor,
                    json_t **items, char **next_cursor, struct gc_error *err)
{
    static const struct gc_list_filter f[] = {{"kind", "c.kind"}, {NULL, NULL}};
    return gc_list_filtered(ctx, GC_P_HOST_READ,
                            "SELECT " CH_COLS " FROM notify_channels c WHERE c.id > ?", "c.id",
                            f, filters, limit, cursor, ch_row, items, next_cursor, err);
}

int gc_channel_delete(const struct gc_ctx *ctx, const char *id, int64_t if_match,
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
    rc = gc_load_by_id(tx, "SELECT " CH_COLS " FROM notify_channels c WHERE c.id = ?",
                       "notification channel", id, ch_json, &before, NULL, err);
    /* what still waits for it goes with it */
    if (!rc)
        rc = gc_tx_exec(tx, "DELETE FROM notify_outbox WHERE channel_id = ?",
                        GC_ARGS(GC_VTXT(id)), NULL, err);
    if (!rc)
        rc = gc_tx_exec(tx, "DELETE FROM notify_channels WHERE id = ?", GC_ARGS(GC_VTXT(id)),
                        NULL, err);
    struct gc_audit_event ev = {.action = "notification_channel.delete",
                                .resource_type = "notification_channel",
                                .resource_id = id,
                                .outcome = GC_OUTCOME_SUCCESS,
                                .detail = before};
    rc = gc_audit_commit(tx, ctx, &ev, rc, err);
    json_decref(before);
    return rc;
}

int gc_notify_enqueue(struct gc_tx *tx, json_t *event, int64_t now, struct gc_error *err)
{
    char eid[GC_ID_LEN + 1];
    gc_id_new(eid);
    json_object_set_new(event, "event_id", json_string(eid));
    json_object_set_new(event, "time", gc_json_time(now));
    char *body = json_dumps(event, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(15));
    if (!body)
        return gc_error_set(err, GC_EINTERNAL, "", "out of memory");
    struct gc_rows *r = NULL;
    int rc = gc_tx_query(tx, "SELECT id FROM notify_channels WHERE enabled = 1 ORDER BY id",
                         GC_NOARGS, &r, err);
    json_t *chans = json_array();
    while (!rc && (rc = gc_rows_next(r, err)) > 0) {
        rc = 0;
        json_array_append_new(chans, json_string(gc_rows_text(r, 0)));
    }
    gc_rows_free(r);
    size_t i;
    json_t *c;
    json_array_foreach(chans, i, c) {
        if (rc < 0)
            break;
        char id[GC_ID_LEN + 1];
        gc_id_new(id);
        rc = gc_tx_exec(tx,
                        "INSERT INTO notify_outbox (id, channel_id, event_id, body, created_at,"
                        " attempts, next_at, delivered_at, last_error) VALUES (?, ?, ?, ?, ?,"
                        " 0, ?, NULL, '')",
                        GC_ARGS(GC_VTXT(id), GC_VTXT(json_string_value(c)), GC_VTXT(eid),
                                GC_VTXT(body), GC_VINT_(now), GC_VINT_(now)),
                        NULL, err);
    }
    json_decref(chans);
    free(body);
    return rc < 0 ? rc : 0;
}
