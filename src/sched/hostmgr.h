/* The host manager: one long-lived compute connection per registered host, state
 * (connected / disconnected), last-seen time, and reconnection with exponential backoff,
 * all from one thread for all hosts. */
#ifndef GC_HOSTMGR_H
#define GC_HOSTMGR_H

#include "drivers/compute.h"
#include "store/store.h"
#include "util/config.h"

/* Loads the registered hosts and starts connecting to them. */
int gc_hostmgr_start(struct gc_store *st, const struct gc_config *cfg, struct gc_error *err);
void gc_hostmgr_stop(void);

/* Starts managing a host that was just registered; tries to connect at once and records
 * the outcome (state, facts, pools, last error) in the store before returning. */
void gc_hostmgr_add(const char *id, const char *uri);
void gc_hostmgr_remove(const char *id);

/* Borrows the live connection of a host; GC_EBUSY when it is not connected.
 * Give it back with gc_hostmgr_release. */
int gc_hostmgr_acquire(const char *id, const struct gc_compute_driver **drv,
                       struct gc_compute_conn **conn, struct gc_error *err);
void gc_hostmgr_release(const char *id);
/* Called (from a connection thread) each time a host has connected, to bring what changed
 * while it was away up to date on it. Set once before gc_hostmgr_start. */
void gc_hostmgr_on_connect(void (*fn)(const char *host_id));
/* Ids of the managed hosts (a JSON array of strings, the caller's). */
json_t *gc_hostmgr_hosts(void);

#endif
