/* Monitoring: the samples collectors produce, and who receives them. A collector (hosts,
 * VMs, the platform, service checks) emits one batch per round; every registered sink — the
 * time-series store, the current-value table behind /metrics, the alarm evaluator — gets the
 * batch. Collectors know no sink and sinks know no collector. */
#ifndef GC_MONITOR_H
#define GC_MONITOR_H

#include "util/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GC_SERIES_LABELS_MAX 8
#define GC_MONITOR_SINKS_MAX 8

struct gc_label {
    const char *name;  /* [a-zA-Z_][a-zA-Z0-9_]* */
    const char *value; /* any UTF-8 */
};

/* A series: a metric name (Prometheus naming, e.g. govcloud_vm_cpu_seconds_total) and its
 * labels, sorted by name (resource_id, department_id, host_id, …). */
struct gc_series {
    const char *metric;
    const struct gc_label *labels;
    int nlabels;
};

struct gc_sample {
    struct gc_series series;
    int64_t t_ms;  /* Unix time in milliseconds */
    double value;
};

/* A receiver of samples. append is called from collector threads, possibly several at once,
 * with a batch that lives only for the call: copy what is kept. */
struct gc_sample_sink {
    const char *name;
    void (*append)(void *opaque, const struct gc_sample *s, size_t n);
    void *opaque;
};

/* Registers a sink (before collectors start); GC_EINVAL when the table is full. */
int gc_monitor_add_sink(const struct gc_sample_sink *sink);
/* Forgets every sink (tests, shutdown). */
void gc_monitor_clear_sinks(void);
/* Hands a batch to every sink, in registration order. */
void gc_monitor_emit(const struct gc_sample *s, size_t n);

/* The canonical text of a series, as Prometheus writes it: metric{a="x",b="y"} (labels in
 * the given order, which must be sorted; \, " and newline escaped in values; metric alone
 * when there is no label). Appends to out; 0, or GC_ETOOBIG when out is full. */
int gc_series_key(const struct gc_series *s, struct gc_buf *out);

/* Why a series shows a failure (a collector's timeout, its error), for the alarm raised on
 * it; NULL forgets it. Kept for at most 4096 series. */
void gc_monitor_note(const struct gc_series *s, const char *reason);
/* The reason kept for the series key (gc_series_key), into out; false when none. */
bool gc_monitor_reason(const char *key, char *out, size_t n);

#endif
