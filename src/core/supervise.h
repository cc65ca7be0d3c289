/* Supervision push (docs/supervision.md#push-to-a-supervisor) and supervisor mode
 * (docs/supervision.md#supervisor-mode).
 *
 * Cloud side: receivers (upstream ingest URLs with their token and optional SM4 secret) and
 * a persistent outbox per receiver and dataset. The pusher takes the records a dataset's
 * provider (gc_sup_providers) has after the receiver's cursor, builds one signed batch with
 * the next batch_seq, and stores it and the new cursor in one transaction; delivery then
 * sends the stored text, in batch_seq order, until the receiver answers 2xx.
 *
 * Supervisor side: registered clouds (their SM2 public key, optional SM4 secret and the SM3
 * hash of their push token) and the records received from them, one row per (cloud,
 * dataset, record id) at the highest seq seen. */
#ifndef GC_SUPERVISE_H
#define GC_SUPERVISE_H

#include "core/core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Records per push batch, at most. */
#define GC_PUSH_BATCH_RECORDS 500
/* And at most this much of the records' text (ids and data) per batch, so that a batch,
 * even encrypted (base64 adds a third), stays under a supervisor's default
 * [server] max_body_bytes of 1 MiB. A record larger than this goes alone. */
#define GC_PUSH_BATCH_BYTES (512 * 1024)
/* The pusher stops building batches for a receiver and dataset with this many undelivered
 * (the cursor keeps the place: nothing is lost, the rest is built as the outbox drains). */
#define GC_PUSH_MAX_PENDING 20000

/* ---- receivers (sup_push.c): platform_admin and operator only ---- */
int gc_receiver_create(const struct gc_ctx *ctx, json_t *in, json_t **out, struct gc_error *err);
int gc_receiver_get(const struct gc_ctx *ctx, const char *id, json_t **out, struct gc_error *err);
int gc_receiver_list(const struct gc_ctx *ctx, json_t *filters, int limit, const char *cursor,
                     json_t **items, char **next_cursor, struct gc_error *err);
int gc_receiver_update(const struct gc_ctx *ctx, const char *id, int64_t if_match, json_t *in,
                       json_t **out, struct gc_error *err);
int gc_receiver_delete(const struct gc_ctx *ctx, const char *id, int64_t if_match,
                       struct gc_error *err);

/* ---- the pusher's steps (sup_push.c; the thread is monitor/pusher.c) ---- */
struct gc_sup_identity;
/* Builds and stores the batches every enabled receiver is owed (each batch and its cursor in
 * one transaction); *built gets how many. */
int gc_push_build(struct gc_store *st, const struct gc_sup_identity *id, int *built,
                  struct gc_error *err);
/* Sends one batch: 0 when the receiver answered 2xx; otherwise err says why. */
typedef int (*gc_push_send_fn)(const char *url, const char *token, const char *idem_key,
                               const char *body, size_t len, struct gc_error *err);
/* Delivers the due batches in batch_seq order per receiver and dataset; a stream whose
 * batch fails waits for its backoff (1 s doubling to 5 min). stop (may be NULL) ends early. */
int gc_push_deliver(struct gc_store *st, gc_push_send_fn send, bool (*stop)(void), int *sent,
                    struct gc_error *err);
/* Deletes delivered batches delivered before before_ms. */
int gc_push_prune(struct gc_store *st, int64_t before_ms, struct gc_error *err);
/* Per enabled receiver and dataset: [{receiver, dataset, pending, lag_seconds}]. */
int gc_push_stats(struct gc_store *st, json_t **out, struct gc_error *err);

/* ---- supervisor mode (sup_recv.c) ---- */
/* Registered clouds: platform_admin writes; platform_admin and supervisor read. */
int gc_cloud_create(const struct gc_ctx *ctx, json_t *in, json_t **out, struct gc_error *err);
int gc_cloud_get(const struct gc_ctx *ctx, const char *id, json_t **out, struct gc_error *err);
int gc_cloud_list(const struct gc_ctx *ctx, json_t *filters, int limit, const char *cursor,
                  json_t **items, char **next_cursor, struct gc_error *err);
int gc_cloud_update(const struct gc_ctx *ctx, const char *id, int64_t if_match, json_t *in,
                    json_t **out, struct gc_error *err);
int gc_cloud_delete(const struct gc_ctx *ctx, const char *id, int64_t if_match,
                    struct gc_error *err);
/* The records received from a cloud, ordered by dataset and record id; dataset may be NULL
 * (all); limit 1–10000 (0: 100); cursor: the next_cursor of the previous page. */
int gc_cloud_records(const struct gc_ctx *ctx, const char *id, const char *dataset, int limit,
                     const char *cursor, json_t **items, char **next_cursor,
                     struct gc_error *err);
/* One pushed batch, authenticated by the cloud's push token: opened and verified
 * (gc_sup_batch_open), each record validated, the good ones stored at their highest seq.
 * *out: {"dataset","batch_seq","accepted","duplicates","rejected":[{record_id,field,detail}],
 * "gaps":[[from,to],…]}. Errors: GC_EAUTH (token, signature, MAC), GC_EPERM (a batch of
 * another cloud than the token's), GC_EINVAL (malformed), GC_ECONFLICT (a batch_seq received
 * before with other records). */
int gc_sup_ingest(struct gc_store *st, const char *token, const char *body, size_t len,
                  json_t **out, struct gc_error *err);

/* The same in two steps, for an HTTP thread that should not wait for the store:
 * gc_sup_ingest_prepare does every check on the calling thread (body must outlive the
 * ingest); gc_sup_ingest_submit then stores the batch on the store's writer thread, with
 * the batches other threads submit meanwhile (one commit for all), and calls done there
 * with the answer (*out, owned by done) or the error. The ingest is freed after done. */
struct gc_sup_ingest;
typedef void (*gc_sup_ingest_done_fn)(void *arg, int rc, json_t *out,
                                      const struct gc_error *err);
int gc_sup_ingest_prepare(struct gc_store *st, const char *token, const char *body, size_t len,
                          struct gc_sup_ingest **out, struct gc_error *err);
void gc_sup_ingest_submit(struct gc_store *st, struct gc_sup_ingest *in,
                          gc_sup_ingest_done_fn done, void *arg);

/* ---- views across clouds (sup_views.c): platform_admin and supervisor ---- */
/* One registered cloud: its streams (lag, gaps, records), assets by kind, CPU architecture
 * and domestic flag, domestic substitution rate (weights: [supervision]
 * substitution_weights), environment (latest readings, PUE) and availability (latest
 * period figures, open incidents), from the records it pushed. */
int gc_sup_cloud_summary(const struct gc_ctx *ctx, const char *id, const char *weights,
                         json_t **out, struct gc_error *err);
/* Every registered cloud's summary, and the assets and substitution rate of all of them. */
int gc_sup_overview(const struct gc_ctx *ctx, const char *weights, json_t **out,
                    struct gc_error *err);

#endif
