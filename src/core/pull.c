/* GET /v1/supervision/{dataset}: records by cursor, streamed. Without a cursor a snapshot
 * (every live record, in seq order), with one only what changed after it (deletions
 * included). The body is made in batches of BATCH records, each read in a short read
 * transaction, so that neither memory nor a database snapshot grows with the dataset.
 *
 * The upper seq of a response is fixed when it opens: what changes while it streams gets a
 * higher seq and comes with the next pull, so next_cursor never skips a change. The cursor
 * is opaque to clients: base64url of "gc1:<dataset>:<s|c>:<seq>" (s: a snapshot goes on,
 * deletions left out; c: changes). */
#include "core/asset.h"
#include "core/supdata.h"

#include "crypto/crypto.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The datasets that can be pulled (and are pushed). docs/supervision.md says what each holds. */
const struct gc_sup_provider gc_sup_providers[] = {
    {"asset", gc_asset_sup_refresh, gc_asset_sup_high, gc_asset_sup_fetch},
    {"environment", NULL, gc_env_sup_high, gc_env_sup_fetch},
    {"log", NULL, gc_log_sup_high, gc_log_sup_fetch},
    {"metric", gc_metric_sup_refresh, gc_metric_sup_high, gc_metric_sup_fetch},
    {"alarm", NULL, gc_alarm_sup_high, gc_alarm_sup_fetch},
    {"availability", gc_availability_sup_refresh, gc_availability_sup_high,
     gc_availability_sup_fetch},
    {"backup", NULL, gc_backup_sup_high, gc_backup_sup_fetch},
};
const size_t gc_sup_nproviders = sizeof(gc_sup_providers) / sizeof(gc_sup_providers[0]);

const struct gc_sup_provider *gc_sup_provider_find(const char *dataset)
{
    for (size_t i = 0; i < gc_sup_nproviders; i++)
        if (!strcmp(gc_sup_providers[i].dataset, dataset))
            return &gc_sup_providers[i];
    return NULL;
}

#define BATCH 500

struct gc_sup_pull {
    struct gc_store *st;
    const struct gc_sup_provider *p;
    bool snapshot;     /* live records only */
    bool first;        /* no record written yet */
    int64_t after;     /* the last seq written (or the cursor's) */
    int64_t upto;      /* the highest seq of this response */
    int64_t left;      /* records this response may still carry */
    int64_t batch_n;   /* records of the current batch */
    int stage;         /* 0 records, 1 tail written, 2 done */
    bool exhausted;    /* every record up to upto was written */
    struct gc_buf out; /* what is made and not yet handed over */
    size_t off;
};

/* ---- cursors ---- */

static int b64url_val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/* Decodes base64url without padding into out (cap bytes, NUL-terminated); -1 if malformed. */
static int b64url_decode(const char *in, char *out, size_t cap)
{
    size_t n = 0;
    unsigned acc = 0;
    int bits = 0;
    for (const char *p = in; *p; p++) {
        int v = b64url_val(*p);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n + 1 >= cap)
                return -1;
            out[n++] = (char)((acc >> bits) & 0xff);
        }
    }
    out[n] = '\0';
    return 0;
}

static void cursor_make(const char *dataset, bool snapshot, int64_t seq, char *out, size_t cap)
{
    char raw[96];
    int n = snprintf(raw, sizeof(raw), "gc1:%s:%c:%lld", dataset, snapshot ? 's' : 'c',
                     (long long)seq);
    char enc[140];
    gc_b64url((const unsigned char *)raw, (size_t)n, enc);
    snprintf(out, cap, "%s", enc);
}

static int cursor_parse(const char *cursor, const char *dataset, bool *snapshot, int64_t *seq,
                        struct gc_error *err)
{
    char raw[96];
    char ds[40], mode = 0;
    long long v = -1;
    int used = 0;
    if (strlen(cursor) > 120 || b64url_decode(cursor, raw, sizeof(raw)) != 0 ||
        sscanf(raw, "gc1:%39[a-z_]:%c:%lld%n", ds, &mode, &v, &used) != 3 ||
        raw[used] != '\0' || (mode != 's' && mode != 'c') || v < 0)
        return gc_error_set(err, GC_EINVAL, "cursor",
                            "cursor is not one returned by this API (use next_cursor as given, "
                            "or no cursor for a full snapshot)");
    if (strcmp(ds, dataset) != 0)
        return gc_error_set(err, GC_EINVAL, "cursor",
                            "cursor belongs to dataset '%s', not '%s'", ds, dataset);
    *snapshot = mode == 's';
    *seq = v;
    return 0;
}

/* ---- the body ---- */

static void add_json_string(struct gc_buf *b, const char *s)
{
    json_t *j = json_string(s);
    char *t = j ? json_dumps(j, JSON_ENCODE_ANY | JSON_ENSURE_ASCII) : NULL;
    (void)gc_buf_adds(b, t ? t : "\"\"");
    free(t);
    json_decref(j);
}

static int emit(void *cls, const struct gc_sup_record *rec)
{
    struct gc_sup_pull *p = cls;
    char time[40];
    gc_time_format_rfc3339(rec->time_ms, time, sizeof(time));
    struct gc_buf *b = &p->out;
    (void)gc_buf_adds(b, p->first ? "{\"id\":" : ",{\"id\":");
    add_json_string(b, rec->id);
    (void)gc_buf_addf(b,
                      ",\"dataset\":\"%s\",\"schema_version\":\"1.0\",\"seq\":%lld,"
                      "\"time\":\"%s\",\"op\":\"%s\",\"data\":%s}",
                      p->p->dataset, (long long)rec->seq, time,
                      rec->deleted ? "delete" : "upsert",
                      rec->deleted || !rec->data || !rec->data[0] ? "null" : rec->data);
    p->first = false;
    p->after = rec->seq;
    p->left--;
    p->batch_n++;
    return 0;
}

int gc_sup_pull_open(const struct gc_ctx *ctx, const char *dataset, const char *cursor,
                     int64_t limit, struct gc_sup_pull **out, struct gc_error *err)
{
    if (!ctx->who)
        return gc_error_set(err, GC_EAUTH, "", "authentication required");
    if (!gc_role_is_platform(ctx->who->role))
        return gc_error_set(err, GC_EPERM, "",
                            "role %s may not pull supervision data (platform roles and "
                            "supervisor only)",
                            gc_role_name(ctx->who->role));
    const struct gc_sup_provider *prov = gc_sup_provider_find(dataset);
    if (!prov) {
        char names[256] = "";
        size_t used = 0;
        for (size_t i = 0; i < gc_sup_nproviders && used < sizeof(names); i++)
            used += (size_t)snprintf(names + used, sizeof(names) - used, "%s%s", i ? ", " : "",
                                     gc_sup_providers[i].dataset);
        return gc_error_set(err, GC_ENOTFOUND, "dataset",
                            "dataset '%.40s' cannot be pulled (available: %s)", dataset, names);
    }
    if (limit == 0)
        limit = GC_SUP_PULL_DEFAULT_LIMIT;
    if (limit < 1 || limit > GC_SUP_PULL_MAX_LIMIT)
        return gc_error_set(err, GC_EINVAL, "limit", "limit must be from 1 to %d",
                            GC_SUP_PULL_MAX_LIMIT);
    bool snapshot = true;
    int64_t after = 0;
    if (cursor) {
        int rc = cursor_parse(cursor, dataset, &snapshot, &after, err);
        if (rc)
            return rc;
    }
    if (prov->refresh) {
        int rc = prov->refresh(ctx->store, err);
        if (rc)
            return rc;
    }
    struct gc_tx *tx;
    int rc = gc_tx_begin(ctx->store, GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    int64_t high = 0;
    rc = prov->high(tx, &high, err);
    gc_tx_rollback(tx);
    if (rc)
        return rc;
    if (after > high)
        return gc_error_set(err, GC_EINVAL, "cursor",
                            "cursor is ahead of dataset '%s' (seq %lld, the latest is %lld): it "
                            "comes from another cloud or an older database; pull without a "
                            "cursor",
                            dataset, (long long)after, (long long)high);
    struct gc_sup_pull *p = gc_calloc(1, sizeof(*p));
    p->st = ctx->store;
    p->p = prov;
    p->snapshot = snapshot;
    p->first = true;
    p->after = after;
    p->upto = high;
    p->left = limit;
    gc_buf_init(&p->out, GC_BUF_UNLIMITED);
    (void)gc_buf_addf(&p->out,
                      "{\"dataset\":\"%s\",\"schema_version\":\"1.0\",\"snapshot\":%s,"
                      "\"records\":[",
                      dataset, snapshot ? "true" : "false");
    *out = p;
    return 0;
}

/* Makes more of the body into p->out; -1 when the store failed. */
static int produce(struct gc_sup_pull *p)
{
    if (p->stage == 0 && !p->exhausted && p->left > 0) {
        struct gc_error err = {0};
        struct gc_tx *tx;
        int want = p->left < BATCH ? (int)p->left : BATCH;
        p->batch_n = 0;
        int rc = gc_tx_begin(p->st, GC_TX_READ, &tx, &err);
        if (!rc) {
            rc = p->p->fetch(tx, p->after, p->upto, p->snapshot, want, emit, p, &err);
            gc_tx_rollback(tx);
        }
        if (rc) {
            gc_err("pull", "dataset %s after seq %lld: %s", p->p->dataset, (long long)p->after,
                   err.msg);
            return -1;
        }
        if (p->batch_n < want)
            p->exhausted = true;
        return 0;
    }
    if (p->stage == 0) {
        /* done: everything to upto, or the limit */
        char cur[160];
        bool more = !p->exhausted;
        if (more)
            cursor_make(p->p->dataset, p->snapshot, p->after, cur, sizeof(cur));
        else
            cursor_make(p->p->dataset, false, p->upto, cur, sizeof(cur));
        (void)gc_buf_addf(&p->out, "],\"next_cursor\":\"%s\",\"more\":%s}\n", cur,
                          more ? "true" : "false");
        p->stage = 1;
        return 0;
    }
    p->stage = 2;
    return 0;
}

long gc_sup_pull_read(struct gc_sup_pull *p, char *buf, size_t max)
{
    while (p->off == p->out.len) {
        gc_buf_reset(&p->out);
        p->off = 0;
        if (p->stage == 2)
            return 0;
        if (produce(p) != 0)
            return -1;
    }
    size_t n = p->out.len - p->off;
    if (n > max)
        n = max;
    memcpy(buf, p->out.data + p->off, n);
    p->off += n;
    return (long)n;
}

void gc_sup_pull_free(struct gc_sup_pull *p)
{
    if (!p)
        return;
    gc_buf_release(&p->out);
    free(p);
}
