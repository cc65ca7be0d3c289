/* The embedded time-series store: a sample sink (monitor.h) that keeps one open, compressed
 * chunk per series in memory, writes every series' new data to the store in one transaction
 * per flush, rolls raw samples up into 5-minute and 1-hour aggregates (min, max, sum,
 * count), deletes what is past retention, and answers range queries.
 *
 * Tables (migration 13): tsdb_series (id, canonical key, metric, labels JSON,
 * department_id), tsdb_chunks (series_id, resolution, start_ms, end_ms, count, data),
 * tsdb_meta (rollup watermarks). A chunk row is always written whole, in a transaction:
 * a crash loses at most the samples appended since the last flush, never a chunk. */
#ifndef GC_TSDB_H
#define GC_TSDB_H

#include "core/core.h"
#include "monitor/monitor.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

enum { GC_RES_RAW = 0, GC_RES_5M = 1, GC_RES_1H = 2, GC_RES_COUNT = 3 };
/* Resolution of each level in milliseconds (0: raw samples). */
extern const int64_t gc_tsdb_res_ms[GC_RES_COUNT];

struct gc_tsdb_opts {
    int64_t flush_interval_ms;          /* background flush period; 0: no background thread */
    int64_t rollup_interval_ms;         /* background roll-up + retention period */
    int64_t retention_ms[GC_RES_COUNT]; /* how long each resolution is kept */
    int chunk_max_samples;              /* a raw chunk is sealed at this many samples (120) */
    int64_t chunk_max_span_ms;          /* ... or when it spans this long (2 h) */
    int64_t rollup_grace_ms;            /* how late samples may arrive and still be rolled up */
};

/* The defaults: flush 10 s, roll-up 10 min, raw 15 d, 5 min 1 year, 1 h 3 years. */
void gc_tsdb_opts_default(struct gc_tsdb_opts *o);
void gc_tsdb_opts_from_config(struct gc_tsdb_opts *o, const struct gc_config *cfg);

struct gc_tsdb;

/* Loads the series index; starts the background thread when flush_interval_ms > 0. */
int gc_tsdb_open(struct gc_store *st, const struct gc_tsdb_opts *o, struct gc_tsdb **out,
                 struct gc_error *err) __attribute__((warn_unused_result));
/* Stops the thread, flushes, frees. Accepts NULL. */
void gc_tsdb_close(struct gc_tsdb *db);

/* The sink (append = gc_tsdb_append). */
struct gc_sample_sink gc_tsdb_sink(struct gc_tsdb *db);
/* Takes a batch. Samples of a series must come in time order: a sample not newer than the
 * series' last one is dropped (counted as out_of_order, or duplicate when the time is equal);
 * so is a sample with a time outside [0, 2^50) ms or a bad series (invalid). */
void gc_tsdb_append(void *db, const struct gc_sample *s, size_t n);

/* gc_series_key into buf (cap bytes), without allocation; the length, or -1 when it does not
 * fit. */
int gc_tsdb_series_key(const struct gc_series *s, char *buf, size_t cap);

/* Writes every series' unwritten samples, in one transaction. */
int gc_tsdb_flush(struct gc_tsdb *db, struct gc_error *err);
/* Flushes, rolls complete windows up (raw → 5 min → 1 h) and deletes chunks past retention,
 * as of now_ms. */
int gc_tsdb_maintain(struct gc_tsdb *db, int64_t now_ms, struct gc_error *err);

struct gc_tsdb_stats {
    uint64_t appended, out_of_order, duplicates, invalid;
    uint64_t series, flushes, flush_errors, chunks_written, bytes_written;
    int64_t last_flush_ms, last_flush_duration_us, max_flush_duration_us;
};
void gc_tsdb_get_stats(struct gc_tsdb *db, struct gc_tsdb_stats *out);

struct gc_store *gc_tsdb_store(struct gc_tsdb *db);
const struct gc_tsdb_opts *gc_tsdb_options(struct gc_tsdb *db);
/* The roll-up watermarks: level lvl holds every complete window before wm[lvl] (0: none). */
void gc_tsdb_watermarks(struct gc_tsdb *db, int64_t wm[GC_RES_COUNT]);

/* The store of the running daemon (NULL when [tsdb] enabled is false), for the API. */
extern struct gc_tsdb *gc_tsdb_global;

/* ---- queries ---- */
enum gc_tsdb_agg { GC_AGG_AVG, GC_AGG_MIN, GC_AGG_MAX, GC_AGG_SUM, GC_AGG_P95 };
int gc_tsdb_agg_parse(const char *s); /* -1 when unknown */
const char *gc_tsdb_agg_name(enum gc_tsdb_agg a);

#define GC_TSDB_MATCHERS_MAX 16
#define GC_TSDB_MAX_POINTS 11000
#define GC_TSDB_MAX_SERIES 20000

struct gc_tsdb_matcher {
    const char *name;
    const char *value;
    bool negate; /* != rather than = */
};

/* Parses `name="value"`, `name=value`, `name!="value"` or `name!=value` into m (pointers into
 * buf, a writable copy of s of the same size). */
int gc_tsdb_matcher_parse(const char *s, char *buf, struct gc_tsdb_matcher *m,
                          struct gc_error *err);

struct gc_tsdb_query {
    const char *metric;
    const struct gc_tsdb_matcher *match;
    int nmatch;
    int64_t start_ms, end_ms, step_ms; /* buckets [start + i*step, start + (i+1)*step) < end */
    enum gc_tsdb_agg agg;
    const struct gc_principal *who;    /* scoping; NULL: every series (internal callers) */
    int64_t now_ms;                    /* for retention checks; 0: the clock */
};

/* {"metric", "start", "end", "step", "agg", "resolutions": [...], "series": [{"labels",
 * "points": [[t_seconds, value], ...]}]}. Buckets without samples are left out. */
int gc_tsdb_query_range(struct gc_tsdb *db, const struct gc_tsdb_query *q, json_t **out,
                        struct gc_error *err);
/* Series visible to who, metric NULL for all, ordered by id after the cursor. */
int gc_tsdb_series_list(struct gc_tsdb *db, const char *metric,
                        const struct gc_tsdb_matcher *match, int nmatch,
                        const struct gc_principal *who, int limit, const char *cursor,
                        json_t **items, char **next_cursor, struct gc_error *err);

#endif
