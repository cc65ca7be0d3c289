/* The environment dataset of the supervision interface (docs/supervision-spec.md,
 * environment): every reading a data-centre sensor gave, as an immutable record
 * "env:<sensor id>:<reading name>:<time in ms>", written by the poller
 * (monitor/environment.c) in one transaction per sensor and poll, with the next seq of the
 * dataset. Records are kept [environment] export_retention_days and then dropped (no
 * tombstone: a reading is not deleted, it ages out); a snapshot is what is retained. */
#include "core/asset.h"

#include "supervision/schema.h"
#include "util/log.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The record's data: the reading as the spec has it (the poller's extra fields — name,
 * rate — left out; "unknown" readings are not exported). */
static json_t *spec_data(json_t *r)
{
    static const char *const keep[] = {"sensor_id", "reading_type", "reading", "reading_units",
                                       "time", "physical_context", "room", "room_class",
                                       "thresholds", "status", NULL};
    json_t *d = json_object();
    for (const char *const *k = keep; *k; k++) {
        json_t *v = json_object_get(r, *k);
        if (v && !json_is_null(v) && !(json_is_string(v) && json_string_length(v) == 0))
            json_object_set(d, *k, v);
    }
    return d;
}

int gc_env_export(struct gc_store *st, json_t *readings, int *written, struct gc_error *err)
{
    *written = 0;
    struct gc_tx *tx;
    int rc = gc_tx_begin(st, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    size_t i;
    json_t *r;
    json_array_foreach(readings, i, r) {
        const char *status = json_string_value(json_object_get(r, "status"));
        if (status && !strcmp(status, "unknown"))
            continue;
        json_t *d = spec_data(r);
        struct gc_schema_error se = {0};
        if (gc_schema_validate("environment", d, &se) != 0) {
            gc_warn("environment", "reading %s of sensor %s not exported: %s",
                    json_string_value(json_object_get(r, "name")),
                    json_string_value(json_object_get(r, "sensor_id")), se.message);
            json_decref(d);
            continue;
        }
        int64_t t = 0;
        if (gc_time_parse_rfc3339(json_string_value(json_object_get(d, "time")), &t) != 0)
            t = gc_now_ms();
        char id[400];
        snprintf(id, sizeof(id), "env:%s:%s:%lld",
                 json_string_value(json_object_get(r, "sensor_id")),
                 json_string_value(json_object_get(r, "name"))
                     ? json_string_value(json_object_get(r, "name"))
                     : json_string_value(json_object_get(d, "reading_type")),
                 (long long)t);
        char *text = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
        json_decref(d);
        int64_t seq = 0;
        rc = gc_sup_seq_next(tx, "environment", &seq, err);
        if (!rc)
            rc = gc_tx_exec(tx,
                            "INSERT OR IGNORE INTO env_records (id, seq, time, data) VALUES"
                            " (?, ?, ?, ?)",
                            GC_ARGS(GC_VTXT(id), GC_VINT_(seq), GC_VINT_(t), GC_VTXT(text)),
                            NULL, err);
        free(text);
        if (rc)
            break;
        (*written)++;
    }
    if (!rc)
        rc = gc_tx_commit(tx, err);
    else
        gc_tx_rollback(tx);
    return rc;
}

int gc_env_export_prune(struct gc_store *st, int64_t before_ms, struct gc_error *err)
{
    struct gc_tx *tx;
    int rc = gc_tx_begin(st, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    rc = gc_tx_exec(tx, "DELETE FROM env_records WHERE time < ?", GC_ARGS(GC_VINT_(before_ms)),
                    NULL, err);
    if (!rc)
        rc = gc_tx_commit(tx, err);
    else
        gc_tx_rollback(tx);
    return rc;
}

int gc_env_sup_high(struct gc_tx *tx, int64_t *seq, struct gc_error *err)
{
    return gc_sup_seq_high(tx, "environment", seq, err);
}

int gc_env_sup_fetch(struct gc_tx *tx, int64_t after, int64_t upto, bool live_only, int max,
                     gc_sup_emit_fn emit, void *cls, struct gc_error *err)
{
    (void)live_only; /* readings are never deleted: every retained one is live */
    struct gc_rows *r;
    int rc = gc_tx_query(tx,
                         "SELECT id, seq, time, data FROM env_records WHERE seq > ? AND"
                         " seq <= ? ORDER BY seq LIMIT ?",
                         GC_ARGS(GC_VINT_(after), GC_VINT_(upto), GC_VINT_(max)), &r, err);
    if (rc)
        return rc;
    while ((rc = gc_rows_next(r, err)) > 0) {
        struct gc_sup_record rec = {.id = gc_rows_text(r, 0),
                                    .seq = gc_rows_int(r, 1),
                                    .time_ms = gc_rows_int(r, 2),
                                    .data = gc_rows_text(r, 3)};
        rc = emit(cls, &rec);
        if (rc)
            break;
    }
    gc_rows_free(r);
    return rc > 0 ? 0 : rc;
}
