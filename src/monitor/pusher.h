/* The supervision pusher (docs/supervision.md#push-to-a-supervisor): every
 * [supervision] push_interval seconds it builds the batches each enabled receiver is owed
 * (core/sup_push.c), delivers the stored ones in order with backoff, prunes delivered ones
 * after [supervision] push_retention, and reports govcloud_supervision_lag_seconds and
 * govcloud_supervision_pending_batches per receiver and dataset. */
#ifndef GC_PUSHER_H
#define GC_PUSHER_H

#include "store/store.h"
#include "util/config.h"

int gc_pusher_start(struct gc_store *st, const struct gc_config *cfg, struct gc_error *err);
void gc_pusher_stop(void);
/* Wakes the pusher for a pass now (after a receiver changed). */
void gc_pusher_kick(void);

#endif
