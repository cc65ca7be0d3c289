/* The supervision datasets beyond asset (docs/supervision.md): their providers for the pull
 * (and push) of gc_sup_providers, and the domestic substitution rate (国产替代率).
 *
 *   log           the audit trail (audit.c), CADF-shaped; seq = the audit chain's seq
 *   metric        hourly aggregates of the platform's series (monitor/supmetric.c)
 *   alarm         the alarms (alarm.c); seq bumped by every change of state
 *   availability  incidents (availability.c, seq bumped when one opens or closes) and the
 *                 figures of each completed month (platform, departments)
 *   backup        reserved by the specification: always empty */
#ifndef GC_SUPDATA_H
#define GC_SUPDATA_H

#include "core/asset.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* ---- helpers ---- */
/* A JSON string of s cut to at most max code points (UTF-8; s is assumed valid UTF-8, as
 * everything the store holds is). */
json_t *gc_sup_json_str(const char *s, size_t max);

/* ---- log (supdata.c) ---- */
int gc_log_sup_high(struct gc_tx *tx, int64_t *seq, struct gc_error *err);
int gc_log_sup_fetch(struct gc_tx *tx, int64_t after, int64_t upto, bool live_only, int max,
                     gc_sup_emit_fn emit, void *cls, struct gc_error *err);

/* ---- alarm (supdata.c) ---- */
int gc_alarm_sup_high(struct gc_tx *tx, int64_t *seq, struct gc_error *err);
int gc_alarm_sup_fetch(struct gc_tx *tx, int64_t after, int64_t upto, bool live_only, int max,
                       gc_sup_emit_fn emit, void *cls, struct gc_error *err);

/* ---- backup (supdata.c): reserved, empty ---- */
int gc_backup_sup_high(struct gc_tx *tx, int64_t *seq, struct gc_error *err);
int gc_backup_sup_fetch(struct gc_tx *tx, int64_t after, int64_t upto, bool live_only, int max,
                        gc_sup_emit_fn emit, void *cls, struct gc_error *err);

/* ---- metric (monitor/supmetric.c) ---- */
/* Hours exported on the first refresh, and hours kept (older rows are dropped). */
#define GC_METRIC_SUP_FIRST_HOURS 24
#define GC_METRIC_SUP_KEEP_HOURS 168
/* Exports every completed hour not exported yet (at most the last GC_METRIC_SUP_FIRST_HOURS
 * the first time) of the platform's series in the time-series store (gc_tsdb_global; none:
 * nothing): per series one record, the hour's average (a counter: its largest value). Then
 * drops hours older than GC_METRIC_SUP_KEEP_HOURS. *written (may be NULL): records added. */
int gc_metric_sup_update(struct gc_store *st, int64_t now, int64_t *written,
                         struct gc_error *err);
/* The provider's refresh: gc_metric_sup_update at most once a minute. */
int gc_metric_sup_refresh(struct gc_store *st, struct gc_error *err);
int gc_metric_sup_high(struct gc_tx *tx, int64_t *seq, struct gc_error *err);
int gc_metric_sup_fetch(struct gc_tx *tx, int64_t after, int64_t upto, bool live_only, int max,
                        gc_sup_emit_fn emit, void *cls, struct gc_error *err);

/* ---- availability (availability.c) ---- */
/* Months of figures kept up to date: the last GC_AVAIL_PERIOD_MONTHS completed months. */
#define GC_AVAIL_PERIOD_MONTHS 12
/* Sets the availability target, percent: the period figures' and the default of
 * GET /v1/availability ([alarm] availability_target; 99.99 until set). Once, at start,
 * before any thread reads it. */
void gc_availability_set_target(double percent);
/* Computes the figures of the completed months (platform, and each department that had VMs
 * in the month) as of now and stores those that are new or differ from what is stored, each
 * with the next seq of the dataset. Months that are stored already are recomputed only when
 * they are among the last two completed months. *changed (may be NULL): records written. */
int gc_availability_periods_update(struct gc_store *st, int64_t now, int64_t *changed,
                                   struct gc_error *err);
/* The provider's refresh: gc_availability_periods_update at most once a minute. */
int gc_availability_sup_refresh(struct gc_store *st, struct gc_error *err);
int gc_availability_sup_high(struct gc_tx *tx, int64_t *seq, struct gc_error *err);
int gc_availability_sup_fetch(struct gc_tx *tx, int64_t after, int64_t upto, bool live_only,
                              int max, gc_sup_emit_fn emit, void *cls, struct gc_error *err);

/* ---- domestic substitution rate (substitution.c; docs/supervision.md) ---- */
enum gc_subst_layer {
    GC_LAYER_CPU,
    GC_LAYER_SERVER,
    GC_LAYER_OS,
    GC_LAYER_DATABASE,
    GC_LAYER_MIDDLEWARE,
    GC_LAYER_STORAGE,
    GC_LAYER_NETWORK,
    GC_LAYER_SECURITY,
    GC_NLAYERS
};
extern const char *const gc_subst_layer_names[GC_NLAYERS];
/* The default of [supervision] substitution_weights. */
#define GC_SUBST_DEFAULT_WEIGHTS                                                              \
    "cpu=0.2,server=0.15,os=0.15,database=0.15,middleware=0.1,storage=0.1,network=0.1,"       \
    "security=0.05"

/* Parses "layer=weight,…": known layers, each at most once, weights finite and ≥ 0,
 * summing to 1 (±1e-6); a layer not named weighs 0. GC_EINVAL with a precise message. */
int gc_subst_weights_parse(const char *text, double w[GC_NLAYERS], struct gc_error *err);

struct gc_subst_tally {
    int64_t assets;              /* counted in the layer */
    int64_t domestic;            /* with domestic.flag true */
    int64_t domestic_with_basis; /* … and a non-empty domestic.basis */
    int64_t undeclared;          /* without domestic (counted as not domestic) */
    int64_t capacity_assets;     /* with a known capacity */
    double capacity_total;       /* sum of the known capacities */
    double capacity_domestic;    /* … of the domestic ones */
};
struct gc_subst {
    struct gc_subst_tally layer[GC_NLAYERS];
    int64_t seen;         /* asset objects given */
    int64_t unclassified; /* not in any layer (layer other, or none and a kind with none) */
};
void gc_subst_init(struct gc_subst *s);
/* Adds one asset object (the `data` of an asset record, asset.json). */
void gc_subst_add(struct gc_subst *s, const json_t *data);
/* The figures (docs/supervision.md "Domestic substitution rate") with weights w. */
json_t *gc_subst_result(const struct gc_subst *s, const double w[GC_NLAYERS]);
/* GET /v1/supervision/substitution-rate: the figures of the local inventory (live assets);
 * platform roles only (departments GC_EPERM). weights: [supervision] substitution_weights. */
int gc_subst_local(const struct gc_ctx *ctx, const char *weights, json_t **out,
                   struct gc_error *err);

#endif
