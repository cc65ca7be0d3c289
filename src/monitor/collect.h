/* Collectors: every [monitor] interval, the platform itself (one thread) and each connected
 * host (one worker thread per host and round, so a slow or hung host delays nobody else:
 * a host whose previous round has not finished is skipped and logged). Service checks run
 * beside them (checks.h). Samples go to the sinks through gc_monitor_emit. */
#ifndef GC_COLLECT_H
#define GC_COLLECT_H

#include "monitor/monitor.h"
#include "store/store.h"
#include "util/config.h"

#include <stddef.h>
#include <stdint.h>

/* A batch of samples being built: every string is copied, so callers may pass
 * temporaries; labels are sorted by name on the way in. */
struct gc_batch {
    struct gc_sample *s;
    size_t n, cap;
};

/* Adds one sample; nlabels (name, value) pairs of const char * follow. */
void gc_batch_add(struct gc_batch *b, const char *metric, int64_t t_ms, double value,
                  int nlabels, ...);
/* Hands the batch to the sinks and frees it (the batch is empty afterwards). */
void gc_batch_emit(struct gc_batch *b);
void gc_batch_release(struct gc_batch *b);

/* Declares the metric families of every collector (HELP/TYPE of /metrics). */
void gc_collect_describe(void);
/* Starts the collectors when [monitor] enabled. */
int gc_collect_start(struct gc_store *st, const struct gc_config *cfg, struct gc_error *err);
/* Stops them; waits (bounded) for host workers in flight. */
void gc_collect_stop(void);

#endif
