/* The audit trail: every change of state and every failed or denied attempt, chained with
 * SM3 so that an edited, inserted or deleted event is found by gc_audit_verify. */
#include "core/core.h"

#include "core/validate.h"
#include "crypto/crypto.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const outcome_names[] = {"success", "failure", "denied"};
static const char zero_hash[] =
    "0000000000000000000000000000000000000000000000000000000000000000";

/* Length-prefixed fields make the hashed encoding unambiguous. */
static void hash_field(struct gc_sm3_ctx *h, const char *s)
{
    char len[24];
    if (!s)
        s = "";
    int n = snprintf(len, sizeof(len), "%zu:", strlen(s));
    gc_sm3_update(h, len, (size_t)n);
    gc_sm3_update(h, s, strlen(s));
}

struct chain_fields {
    int64_t seq;
    const char *id;
    int64_t time;
    const char *actor_id, *actor_name, *actor_role, *action, *resource_type, *resource_id;
    const char *department_id, *department_path, *outcome, *reason, *source_ip, *request_id;
    const char *detail, *prev_hash;
};

static void chain_hash(const struct chain_fields *f, char out[GC_SM3_HEX_LEN + 1])
{
    struct gc_sm3_ctx *h = gc_sm3_new();
    char num[48];
    hash_field(h, f->prev_hash);
    snprintf(num, sizeof(num), "%lld", (long long)f->seq);
    hash_field(h, num);
    hash_field(h, f->id);
    snprintf(num, sizeof(num), "%lld", (long long)f->time);
    hash_field(h, num);
    hash_field(h, f->actor_id);
    hash_field(h, f->actor_name);
    hash_field(h, f->actor_role);
    hash_field(h, f->action);
    hash_field(h, f->resource_type);
    hash_field(h, f->resource_id);
    hash_field(h, f->department_id);
    hash_field(h, f->department_path);
    hash_field(h, f->outcome);
    hash_field(h, f->reason);
    hash_field(h, f->source_ip);
    hash_field(h, f->request_id);
    hash_field(h, f->detail);
    gc_sm3_final_hex(h, out);
}

int gc_audit_append(struct gc_tx *tx, const struct gc_ctx *ctx, const struct gc_audit_event *ev,
                    struct gc_error *err)
{
    struct gc_rows *r;
    int64_t prev_seq = 0;
    char prev_hash[GC_SM3_HEX_LEN + 1];
    snprintf(prev_hash, sizeof(prev_hash), "%s", zero_hash);
    int rc = gc_tx_query(tx, "SELECT seq, hash FROM audit_head WHERE one = 1", GC_NOARGS, &r,
                         err);
    if (rc)
        return rc;
    rc = gc_rows_next(r, err);
    if (rc > 0) {
        prev_seq = gc_rows_int(r, 0);
        snprintf(prev_hash, sizeof(prev_hash), "%s", gc_rows_text(r, 1));
        rc = 0;
    }
    gc_rows_free(r);
    if (rc < 0)
        return rc;

    char id[GC_ID_LEN + 1], hash[GC_SM3_HEX_LEN + 1];
    gc_id_new(id);
    char *detail = ev->detail ? json_dumps(ev->detail, JSON_COMPACT | JSON_SORT_KEYS |
                                                           JSON_ENSURE_ASCII)
                              : gc_strdup("{}");
    const struct gc_principal *who = ctx->who;
    struct chain_fields f = {
        .seq = prev_seq + 1,
        .id = id,
        .time = gc_now_ms(),
        .actor_id = who ? who->user_id : "",
        .actor_name = ev->actor_name ? ev->actor_name : (who ? who->username : "anonymous"),
        .actor_role = who ? gc_role_name(who->role) : "",
        .action = ev->action,
        .resource_type = ev->resource_type,
        .resource_id = ev->resource_id ? ev->resource_id : "",
        .department_id = ev->department_id ? ev->department_id : "",
        .department_path = ev->department_path ? ev->department_path : "",
        .outcome = outcome_names[ev->outcome],
        .reason = ev->reason ? ev->reason : "",
        .source_ip = ctx->source_ip ? ctx->source_ip : "",
        .request_id = ctx->request_id ? ctx->request_id : "",
        .detail = detail,
        .prev_hash = prev_hash,
    };
    chain_hash(&f, hash);
    rc = gc_tx_exec(
        tx,
        "INSERT INTO audit_events (seq, id, time, actor_id, actor_name, actor_role, action,"
        " resource_type, resource_id, department_id, department_path, outcome, reason,"
        " source_ip, request_id, detail, prev_hash, hash)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        GC_ARGS(GC_VINT_(f.seq), GC_VTXT(f.id), GC_VINT_(f.time), GC_VTXT(f.actor_id),
                GC_VTXT(f.actor_name), GC_VTXT(f.actor_role), GC_VTXT(f.action),
                GC_VTXT(f.resource_type), GC_VTXT(f.resource_id), GC_VTXT(f.department_id),
                GC_VTXT(f.department_path), GC_VTXT(f.outcome),
                GC_VTXT(f.reason), GC_VTXT(f.source_ip), GC_VTXT(f.request_id),
                GC_VTXT(f.detail), GC_VTXT(f.prev_hash), GC_VTXT(hash)),
        NULL, err);
    free(detail);
    if (rc)
        return rc;
    return gc_tx_exec(tx,
                      "INSERT INTO audit_head (one, seq, hash) VALUES (1, ?, ?)"
                      " ON CONFLICT (one) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
                      GC_ARGS(GC_VINT_(f.seq), GC_VTXT(hash)), NULL, err);
}

void gc_audit_failure(const struct gc_ctx *ctx, const char *action, const char *resource_type,
                      const char *resource_id, enum gc_outcome outcome, const char *reason)
{
    struct gc_error err = {0};
    struct gc_tx *tx;
    if (gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, &err) != 0) {
        gc_err("audit", "cannot record failed %s: %s", action, err.msg);
        return;
    }
    struct gc_audit_event ev = {
        .action = action,
        .resource_type = resource_type,
        .resource_id = resource_id,
        .outcome = outcome,
        .reason = reason,
    };
    if (ctx->who && ctx->who->department_id[0]) {
        ev.department_id = ctx->who->department_id;
        ev.department_path = ctx->who->dept_path;
    }
    if (gc_audit_append(tx, ctx, &ev, &err) != 0) {
        gc_tx_rollback(tx);
        gc_err("audit", "cannot record failed %s: %s", action, err.msg);
        return;
    }
    if (gc_tx_commit(tx, &err) != 0)
        gc_err("audit", "cannot record failed %s: %s", action, err.msg);
}

#define EVENT_COLS                                                                          \
    "seq, id, time, actor_id, actor_name, actor_role, action, resource_type, resource_id,"  \
    " department_id, outcome, reason, source_ip, request_id, detail, prev_hash, hash,"      \
    " department_path"

static json_t *event_json(struct gc_rows *r)
{
    json_error_t jerr;
    json_t *detail = json_loads(gc_rows_text(r, 14), 0, &jerr);
    json_t *o = json_object();
    json_object_set_new(o, "seq", json_integer(gc_rows_int(r, 0)));
    json_object_set_new(o, "id", json_string(gc_rows_text(r, 1)));
    json_object_set_new(o, "time", gc_json_time(gc_rows_int(r, 2)));
    const char *s;
    s = gc_rows_text(r, 3);
    json_object_set_new(o, "actor_id", s[0] ? json_string(s) : json_null());
    json_object_set_new(o, "actor_name", json_string(gc_rows_text(r, 4)));
    json_object_set_new(o, "actor_role", json_string(gc_rows_text(r, 5)));
    json_object_set_new(o, "action", json_string(gc_rows_text(r, 6)));
    json_object_set_new(o, "resource_type", json_string(gc_rows_text(r, 7)));
    s = gc_rows_text(r, 8);
    json_object_set_new(o, "resource_id", s[0] ? json_string(s) : json_null());
    s = gc_rows_text(r, 9);
    json_object_set_new(o, "department_id", s[0] ? json_string(s) : json_null());
    json_object_set_new(o, "department_path", json_string(gc_rows_text(r, 17)));
    json_object_set_new(o, "outcome", json_string(gc_rows_text(r, 10)));
    json_object_set_new(o, "reason", json_string(gc_rows_text(r, 11)));
    json_object_set_new(o, "source_ip", json_string(gc_rows_text(r, 12)));
    json_object_set_new(o, "request_id", json_string(gc_rows_text(r, 13)));
    json_object_set_new(o, "detail", detail ? detail : json_object());
    json_object_set_new(o, "prev_hash", json_string(gc_rows_text(r, 15)));
    json_object_set_new(o, "hash", json_string(gc_rows_text(r, 16)));
    return o;
}

static json_t *event_row(struct gc_rows *r, const struct gc_principal *who)
{
    (void)who;
    return event_json(r);
}

int gc_audit_commit(struct gc_tx *tx, const struct gc_ctx *ctx, const struct gc_audit_event *ev,
                    int rc, struct gc_error *err)
{
    if (!rc)
        rc = gc_audit_append(tx, ctx, ev, err);
    if (rc) {
        gc_tx_rollback(tx);
        return rc;
    }
    return gc_tx_commit(tx, err);
}

int gc_audit_list(const struct gc_ctx *ctx, json_t *filters, int limit, const char *cursor,
                  json_t **items, char **next_cursor, struct gc_error *err)
{
    int rc = gc_require(ctx->who, GC_P_AUDIT_READ, err);
    if (!rc)
        rc = gc_page_limit(limit, &limit, err);
    if (rc)
        return rc;
    int64_t after = 0;
    if (cursor) {
        char *end;
        long long v = strtoll(cursor, &end, 10);
        if (*end || end == cursor || v < 0)
            return gc_error_set(err, GC_EINVAL, "cursor",
                                "cursor is not one returned by this API (use next_cursor as "
                                "given)");
        after = v;
    }
    struct gc_buf sql;
    gc_buf_init(&sql, GC_BUF_UNLIMITED);
    struct gc_val args[16];
    size_t n = 0;
    (void)gc_buf_adds(&sql, "SELECT " EVENT_COLS " FROM audit_events WHERE seq > ?");
    args[n++] = GC_VINT_(after);
    static const char *const text_filters[] = {"actor_name", "action", "resource_type",
                                               "resource_id", "outcome"};
    for (size_t i = 0; i < sizeof(text_filters) / sizeof(text_filters[0]); i++) {
        const char *v = gc_json_str(filters, text_filters[i]);
        if (v) {
            (void)gc_buf_addf(&sql, " AND %s = ?", text_filters[i]);
            args[n++] = GC_VTXT(v);
        }
    }
    json_t *since = json_object_get(filters, "since_ms");
    json_t *until = json_object_get(filters, "until_ms");
    if (since) {
        (void)gc_buf_adds(&sql, " AND time >= ?");
        args[n++] = GC_VINT_(json_integer_value(since));
    }
    if (until) {
        (void)gc_buf_adds(&sql, " AND time < ?");
        args[n++] = GC_VINT_(json_integer_value(until));
    }
    char prefix[GC_DEPT_PATH_MAX + 2];
    if (!gc_role_is_platform(ctx->who->role)) {
        snprintf(prefix, sizeof(prefix), "%s%%", ctx->who->dept_path);
        (void)gc_buf_adds(&sql, " AND department_path LIKE ?");
        args[n++] = GC_VTXT(prefix);
    }
    (void)gc_buf_adds(&sql, " ORDER BY seq LIMIT ?");
    args[n++] = GC_VINT_(limit + 1);

    rc = gc_page_run(ctx, gc_buf_str(&sql), args, n, limit, "seq", event_row, items,
                     next_cursor, err);
    gc_buf_release(&sql);
    return rc;
}

int gc_audit_verify(struct gc_store *st, json_t **report, struct gc_error *err)
{
    struct gc_tx *tx = NULL;
    struct gc_rows *r = NULL;
    int rc = gc_tx_begin(st, GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    int64_t head_seq = 0;
    char head_hash[GC_SM3_HEX_LEN + 1] = "";
    rc = gc_tx_query(tx, "SELECT seq, hash FROM audit_head WHERE one = 1", GC_NOARGS, &r, err);
    if (!rc && (rc = gc_rows_next(r, err)) > 0) {
        head_seq = gc_rows_int(r, 0);
        snprintf(head_hash, sizeof(head_hash), "%s", gc_rows_text(r, 1));
        rc = 0;
    }
    gc_rows_free(r);
    r = NULL;

    char prev[GC_SM3_HEX_LEN + 1];
    snprintf(prev, sizeof(prev), "%s", zero_hash);
    int64_t expect = 1, events = 0, bad = 0;
    char problem[256] = "";
    if (!rc)
        rc = gc_tx_query(tx, "SELECT " EVENT_COLS " FROM audit_events ORDER BY seq", GC_NOARGS,
                         &r, err);
    while (!rc && !bad && (rc = gc_rows_next(r, err)) > 0) {
        rc = 0;
        events++;
        int64_t seq = gc_rows_int(r, 0);
        struct chain_fields f = {
            .seq = seq,
            .id = gc_rows_text(r, 1),
            .time = gc_rows_int(r, 2),
            .actor_id = gc_rows_text(r, 3),
            .actor_name = gc_rows_text(r, 4),
            .actor_role = gc_rows_text(r, 5),
            .action = gc_rows_text(r, 6),
            .resource_type = gc_rows_text(r, 7),
            .resource_id = gc_rows_text(r, 8),
            .department_id = gc_rows_text(r, 9),
            .department_path = gc_rows_text(r, 17),
            .outcome = gc_rows_text(r, 10),
            .reason = gc_rows_text(r, 11),
            .source_ip = gc_rows_text(r, 12),
            .request_id = gc_rows_text(r, 13),
            .detail = gc_rows_text(r, 14),
            .prev_hash = gc_rows_text(r, 15),
        };
        char h[GC_SM3_HEX_LEN + 1];
        if (seq != expect) {
            bad = expect;
            snprintf(problem, sizeof(problem),
                     seq > expect ? "event %lld is missing (deleted); the next event is %lld"
                                  : "event %lld is out of order (found %lld)",
                     (long long)expect, (long long)seq);
            break;
        }
        if (strcmp(f.prev_hash, prev) != 0) {
            bad = seq;
            snprintf(problem, sizeof(problem),
                     "event %lld does not link to the event before it (inserted, or the one "
                     "before was replaced)",
                     (long long)seq);
            break;
        }
        chain_hash(&f, h);
        if (strcmp(h, gc_rows_text(r, 16)) != 0) {
            bad = seq;
            snprintf(problem, sizeof(problem),
                     "event %lld was edited: its content does not match its hash",
                     (long long)seq);
            break;
        }
        snprintf(prev, sizeof(prev), "%s", h);
        expect++;
    }
    if (rc > 0)
        rc = 0;
    gc_rows_free(r);
    gc_tx_rollback(tx);
    if (rc)
        return rc;
    if (!bad && (head_seq != expect - 1 || (head_seq > 0 && strcmp(head_hash, prev) != 0))) {
        /* the head says where the chain ends: past it are appended (forged) events, short
         * of it are deleted ones */
        bad = head_seq > expect - 1 ? expect : head_seq + 1;
        if (head_seq > expect - 1)
            snprintf(problem, sizeof(problem),
                     "events %lld to %lld were deleted from the end of the chain",
                     (long long)expect, (long long)head_seq);
        else
            snprintf(problem, sizeof(problem),
                     "the chain head (event %lld) does not match the last event %lld",
                     (long long)head_seq, (long long)(expect - 1));
    }
    json_t *o = json_object();
    json_object_set_new(o, "intact", json_boolean(!bad));
    json_object_set_new(o, "events", json_integer(events));
    json_object_set_new(o, "head_seq", json_integer(head_seq));
    if (bad) {
        json_object_set_new(o, "first_bad_seq", json_integer(bad));
        json_object_set_new(o, "problem", json_string(problem));
    }
    *report = o;
    return 0;
}
