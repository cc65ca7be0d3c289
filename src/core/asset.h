/* The asset inventory (discovered from the platform's own resources, or imported from CSV or
 * JSON), its history, and the pull of supervision datasets by cursor (docs/supervision.md).
 * Every asset change takes the next value of the dataset's sequence in its own transaction,
 * so that a reader holding a seq can ask for exactly what changed after it. */
#ifndef GC_ASSET_H
#define GC_ASSET_H

#include "core/core.h"

#include <stdbool.h>
#include <stdint.h>

/* ---- supervision sequences (one counter per dataset, table supervision_seq) ---- */
/* Bumps dataset's counter inside the caller's write transaction; *seq gets the new value.
 * The row is created on first use, so other datasets need no migration for it. */
int gc_sup_seq_next(struct gc_tx *tx, const char *dataset, int64_t *seq, struct gc_error *err);
/* The counter's current value (0 when the dataset never changed). */
int gc_sup_seq_high(struct gc_tx *tx, const char *dataset, int64_t *seq, struct gc_error *err);

/* ---- assets (asset.c) ---- */
/* Largest import: rows, and errors listed before the rest are only counted. */
#define GC_ASSET_IMPORT_MAX_ROWS 100000
#define GC_ASSET_IMPORT_MAX_ERRORS 100

/* GET /v1/assets: filters kind, department_id, domestic (true|false), cpu_arch, layer,
 * source; keyset paging by id. Department roles see their department's assets only. */
int gc_asset_list(const struct gc_ctx *ctx, json_t *filters, int limit, const char *cursor,
                  json_t **items, char **next_cursor, struct gc_error *err);
int gc_asset_get(const struct gc_ctx *ctx, const char *id, json_t **out, struct gc_error *err);
/* JSON merge patch (RFC 7396) of the operator's fields; discovered fields are refused. */
int gc_asset_update(const struct gc_ctx *ctx, const char *id, int64_t if_match, json_t *in,
                    json_t **out, struct gc_error *err);
/* Soft delete (a tombstone keeps the id and a new seq) of an imported asset. */
int gc_asset_delete(const struct gc_ctx *ctx, const char *id, int64_t if_match,
                    struct gc_error *err);
/* The asset's changes, oldest first, keyset paging by seq (deleted assets included). */
int gc_asset_history(const struct gc_ctx *ctx, const char *id, int limit, const char *cursor,
                     json_t **items, char **next_cursor, struct gc_error *err);
/* Imports rows (a JSON array of asset objects) all or nothing. errors (a JSON array) may
 * already hold what gc_asset_csv_rows found; the import's findings are added, up to
 * GC_ASSET_IMPORT_MAX_ERRORS {"row","field","detail"} ordered by row, and when there are
 * any GC_EINVAL is returned and nothing is written. *out: {"created","updated","unchanged",
 * "rows":[{"row","id","result"}]}. */
int gc_asset_import(const struct gc_ctx *ctx, json_t *rows, json_t **out, json_t *errors,
                    struct gc_error *err);
/* CSV text (a header of field names, dotted for nested fields: location.rack,
 * domestic.flag, attributes.<key>) to the rows gc_asset_import takes, cells typed by field.
 * Bad cells and ragged rows (null in *rows) are appended to errors (a JSON array) as for
 * the import, to be passed on to it; GC_EINVAL when the text is not CSV at all. An error in
 * the header leaves *rows empty. */
int gc_asset_csv_rows(const char *data, size_t len, json_t **rows, json_t *errors,
                      struct gc_error *err);

/* Discovery: makes the asset table match the hosts, VMs, volumes and networks, writing only
 * real changes (new seq and history row each, one audit event for the pass); *changes (may
 * be NULL) gets how many assets changed. */
int gc_asset_sync(struct gc_store *st, int64_t *changes, struct gc_error *err);
/* The thread that runs gc_asset_sync every [supervision] asset_sync_interval seconds. */
int gc_asset_sync_start(struct gc_store *st, const struct gc_config *cfg, struct gc_error *err);
void gc_asset_sync_stop(void);

/* ---- assets discovered over SNMP (snmp_device.c; the asset writes in asset.c) ---- */
/* Writes the discovered part of asset id (source snmp) in tx, the operator's part kept;
 * disc NULL makes a tombstone. A new seq and a history row only when something changed
 * (*changed, may be NULL). */
int gc_asset_snmp_put(struct gc_tx *tx, const char *id, const json_t *disc, const char *actor,
                      bool *changed, struct gc_error *err);
/* The discovered part recorded for live snmp asset id (*disc NULL when there is none). */
int gc_asset_snmp_last(struct gc_tx *tx, const char *id, json_t **disc, struct gc_error *err);

/* Most entPhysicalTable rows read from one device. */
#define GC_SNMP_DEVICE_MAX_ROWS 512

/* /v1/assets/snmp-devices: platform objects (GC_P_HOST_READ / GC_P_HOST_WRITE); the
 * credentials are kept and never shown. Deleting a target tombstones its asset. */
int gc_snmp_device_create(const struct gc_ctx *ctx, json_t *in, json_t **out,
                          struct gc_error *err);
int gc_snmp_device_get(const struct gc_ctx *ctx, const char *id, json_t **out,
                       struct gc_error *err);
int gc_snmp_device_list(const struct gc_ctx *ctx, json_t *filters, int limit,
                        const char *cursor, json_t **items, char **next_cursor,
                        struct gc_error *err);
int gc_snmp_device_update(const struct gc_ctx *ctx, const char *id, int64_t if_match,
                          json_t *in, json_t **out, struct gc_error *err);
int gc_snmp_device_delete(const struct gc_ctx *ctx, const char *id, int64_t if_match,
                          struct gc_error *err);
/* Reads the device now (bounded by its timeout_ms) and records what it found: *out is the
 * asset. A device that cannot be read: GC_ECONFLICT saying why (its last_error too). */
int gc_snmp_device_discover(const struct gc_ctx *ctx, const char *id, json_t **out,
                            struct gc_error *err);
/* The thread that discovers every enabled device every [supervision] asset_sync_interval
 * seconds, each device in a thread of its own. */
int gc_snmp_devices_start(struct gc_store *st, const struct gc_config *cfg,
                          struct gc_error *err);
void gc_snmp_devices_stop(void);

/* ---- pull of supervision datasets by cursor (pull.c) ---- */
/* One record of a dataset, as a provider hands it over. */
struct gc_sup_record {
    const char *id;
    int64_t seq;
    int64_t time_ms;  /* when it changed */
    bool deleted;     /* op delete (a tombstone); data is then ignored */
    const char *data; /* the dataset's object as JSON text */
};
/* Takes one record; nonzero stops the fetch (and is returned by it). */
typedef int (*gc_sup_emit_fn)(void *cls, const struct gc_sup_record *rec);

/* A dataset served by GET /v1/supervision/{dataset}. To add one, write these functions and
 * add a line to gc_sup_providers in pull.c; its records need a seq from gc_sup_seq_next (or
 * any other strictly increasing counter of the dataset, such as the audit chain's). */
struct gc_sup_provider {
    const char *dataset; /* "asset" */
    /* Brings the dataset up to date before a pull (assets: discovery); may be NULL. */
    int (*refresh)(struct gc_store *st, struct gc_error *err);
    /* The dataset's highest seq now. */
    int (*high)(struct gc_tx *tx, int64_t *seq, struct gc_error *err);
    /* Emits, in seq order, up to max records with after < seq <= upto; live_only leaves
     * out deletions (the records of a snapshot). */
    int (*fetch)(struct gc_tx *tx, int64_t after, int64_t upto, bool live_only, int max,
                 gc_sup_emit_fn emit, void *cls, struct gc_error *err);
};
extern const struct gc_sup_provider gc_sup_providers[];

/* The environment dataset (env_export.c): the poller exports each successful poll's
 * readings (the poller's reading objects; "unknown" ones left out), in one transaction;
 * *written gets how many records were made. */
int gc_env_export(struct gc_store *st, json_t *readings, int *written, struct gc_error *err);
/* Drops readings older than before_ms. */
int gc_env_export_prune(struct gc_store *st, int64_t before_ms, struct gc_error *err);
int gc_env_sup_high(struct gc_tx *tx, int64_t *seq, struct gc_error *err);
int gc_env_sup_fetch(struct gc_tx *tx, int64_t after, int64_t upto, bool live_only, int max,
                     gc_sup_emit_fn emit, void *cls, struct gc_error *err);
extern const size_t gc_sup_nproviders;
const struct gc_sup_provider *gc_sup_provider_find(const char *dataset);

/* A pull in progress: the response body made piece by piece. */
struct gc_sup_pull;
/* Largest and default number of records of one pull response. */
#define GC_SUP_PULL_MAX_LIMIT 1000000
#define GC_SUP_PULL_DEFAULT_LIMIT 10000
/* Checks access (platform roles; departments get GC_EPERM), the dataset (GC_ENOTFOUND), the
 * cursor (GC_EINVAL when malformed, of another dataset or ahead of it) and limit (0: the
 * default), refreshes the dataset and fixes the upper seq of this response. */
int gc_sup_pull_open(const struct gc_ctx *ctx, const char *dataset, const char *cursor,
                     int64_t limit, struct gc_sup_pull **out, struct gc_error *err);
/* Writes up to max bytes of the body into buf: returns how many, 0 at the end, -1 when the
 * store failed mid-way (logged). The body: {"dataset","schema_version","snapshot",
 * "records":[…],"next_cursor","more"}. */
long gc_sup_pull_read(struct gc_sup_pull *p, char *buf, size_t max);
void gc_sup_pull_free(struct gc_sup_pull *p);

/* The asset dataset's provider functions (asset.c). */
int gc_asset_sup_refresh(struct gc_store *st, struct gc_error *err);
int gc_asset_sup_high(struct gc_tx *tx, int64_t *seq, struct gc_error *err);
int gc_asset_sup_fetch(struct gc_tx *tx, int64_t after, int64_t upto, bool live_only, int max,
                       gc_sup_emit_fn emit, void *cls, struct gc_error *err);

#endif
