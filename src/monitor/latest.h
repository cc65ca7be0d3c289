/* The current-value table: the latest sample of every series, as collectors last reported
 * it, behind /metrics. A sink of the monitoring fan-out (monitor.h). A series that stops
 * reporting expires: after three of its own intervals, and never sooner than the floor given
 * to gc_latest_init (three collection intervals). */
#ifndef GC_LATEST_H
#define GC_LATEST_H

#include "monitor/monitor.h"

#include <stddef.h>
#include <stdint.h>

enum gc_metric_type { GC_METRIC_GAUGE, GC_METRIC_COUNTER };

/* Declares a metric family for the exposition's HELP and TYPE lines. name and help must
 * live for the process (string literals). Re-declaring a name replaces it. */
void gc_metric_describe(const char *name, enum gc_metric_type type, const char *help);

/* Sets the expiry floor in milliseconds (0 keeps series until they are forgotten). */
void gc_latest_init(int64_t min_expire_ms);
/* The sink to register with gc_monitor_add_sink. */
const struct gc_sample_sink *gc_latest_sink(void);
/* Drops one series at once (e.g. an error series once its cause is gone). */
void gc_latest_forget(const struct gc_series *s);
/* Drops every series (tests, shutdown). */
void gc_latest_clear(void);
size_t gc_latest_count(void);

/* Appends every current series in the Prometheus text format (version 0.0.4): families
 * sorted by name, each with # HELP and # TYPE, then its samples; series older than their
 * expiry at now_ms are dropped first. 0, or GC_ETOOBIG when b is full. */
int gc_latest_render(struct gc_buf *b, int64_t now_ms);

/* A sample value as Prometheus writes it: shortest exact decimal, NaN, +Inf, -Inf. */
int gc_prom_value(struct gc_buf *b, double v);
/* HELP text escaping: backslash and newline. */
int gc_prom_help(struct gc_buf *b, const char *help);

#endif
