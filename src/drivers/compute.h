/* The compute driver table: how govcloud talks to a hypervisor host. libvirt's own
 * driver-table pattern; the libvirt implementation is compute_libvirt.c, and another
 * hypervisor family is a new file that fills the same table. */
#ifndef GC_COMPUTE_H
#define GC_COMPUTE_H

#include "util/error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* What a host is, as discovered on connection. */
struct gc_host_facts {
    char arch[32];            /* x86_64, aarch64, loongarch64, ... */
    char cpu_model[128];
    int cpus;                 /* logical CPUs */
    int64_t memory_mib;
    char hypervisor[32];      /* QEMU, Test, ... */
    char hypervisor_version[32];
    char libvirt_version[32];
    char hostname[256];
};

struct gc_compute_conn; /* one live connection to one host; owned by the host manager */

/* Called (from the driver's event thread) when a connection drops. */
typedef void (*gc_compute_closed_cb)(void *opaque, const char *reason);

struct gc_compute_driver {
    const char *name;
    /* Process-wide start (event loop); called once. */
    int (*init)(struct gc_error *err);
    /* Does this driver serve that URI? */
    bool (*handles)(const char *uri);
    int (*connect)(const char *uri, gc_compute_closed_cb closed, void *opaque,
                   struct gc_compute_conn **out, struct gc_error *err);
    void (*disconnect)(struct gc_compute_conn *c);
    bool (*alive)(struct gc_compute_conn *c);
    int (*facts)(struct gc_compute_conn *c, struct gc_host_facts *out, struct gc_error *err);
    /* Storage pools: [{"name","type","state","capacity_bytes","available_bytes","path"}] */
    int (*pools)(struct gc_compute_conn *c, json_t **out, struct gc_error *err);
    /* Domains: [{"uuid","name","state"}] */
    int (*domains)(struct gc_compute_conn *c, json_t **out, struct gc_error *err);
};

extern const struct gc_compute_driver gc_compute_libvirt;

/* The driver for a URI, or NULL with err filled. */
const struct gc_compute_driver *gc_compute_driver_for(const char *uri, struct gc_error *err);

#endif
