/* The notifier: delivers the notification outbox (core/notify.c) through the notify drivers,
 * in order per channel, retrying with backoff (1 s doubling to 5 min) until the receiver
 * takes each notification. */
#ifndef GC_NOTIFIER_H
#define GC_NOTIFIER_H

#include "store/store.h"

int gc_notifier_start(struct gc_store *st, struct gc_error *err);
void gc_notifier_stop(void);

#endif
