/* The alarm evaluator: a sink of the monitoring fan-out that checks the metric alarm rules
 * against every sample, and a thread that records alarms firing and resolving
 * (docs/monitoring.md#alarms). */
#ifndef GC_ALARMEVAL_H
#define GC_ALARMEVAL_H

#include "monitor/monitor.h"
#include "store/store.h"
#include "util/config.h"

/* The sink to register with gc_monitor_add_sink (before gc_alarmeval_start is fine: it
 * ignores samples until the rules are loaded). */
const struct gc_sample_sink *gc_alarmeval_sink(void);
/* Loads the rules, takes up the alarms that were firing, starts the thread. */
int gc_alarmeval_start(struct gc_store *st, const struct gc_config *cfg, struct gc_error *err);
void gc_alarmeval_stop(void);

#endif
