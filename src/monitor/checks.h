/* Service checks: probes that departments define against their applications (TCP connect,
 * HTTP(S) status and latency, ICMP echo where the daemon may open ICMP sockets), the
 * resource /v1/checks, and the scheduler that runs each check every interval_seconds in its
 * own thread with its own timeout. Results: govcloud_check_up, govcloud_check_latency_seconds
 * and, while down, govcloud_check_error{reason}; the last error is also on the resource. */
#ifndef GC_CHECKS_H
#define GC_CHECKS_H

#include "core/core.h"

#include <stdbool.h>
#include <sys/socket.h>

void gc_checks_describe(void);

int gc_check_create(const struct gc_ctx *ctx, json_t *in, json_t **out, struct gc_error *err);
int gc_check_get(const struct gc_ctx *ctx, const char *id, json_t **out, struct gc_error *err);
int gc_check_list(const struct gc_ctx *ctx, json_t *filters, int limit, const char *cursor,
                  json_t **items, char **next_cursor, struct gc_error *err);
int gc_check_update(const struct gc_ctx *ctx, const char *id, int64_t if_match, json_t *in,
                    json_t **out, struct gc_error *err);
int gc_check_delete(const struct gc_ctx *ctx, const char *id, int64_t if_match,
                    struct gc_error *err);

/* Whether sa is an address only platform roles' checks may target: loopback, link-local,
 * unspecified, multicast, broadcast, or inside one of networks ("none" or comma-separated
 * CIDRs). */
bool gc_addr_protected(const struct sockaddr *sa, const char *networks);
/* GC_EINVAL (field) unless networks is "none" or a valid CIDR list. */
int gc_networks_check(const char *networks, const char *field, struct gc_error *err);

/* Starts the scheduler (with [monitor] enabled); initialises libcurl. */
int gc_checks_start(struct gc_store *st, const struct gc_config *cfg, struct gc_error *err);
void gc_checks_stop(void);

#endif
