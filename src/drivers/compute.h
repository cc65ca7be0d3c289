/* The compute driver table: how govcloud talks to a hypervisor host. libvirt's own
 * driver-table pattern; the libvirt implementation is compute_libvirt.c, and another
 * hypervisor family is a new file that fills the same table. */
#ifndef GC_COMPUTE_H
#define GC_COMPUTE_H

#include "util/error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
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

/* A govcloud network as a host realises it (a libvirt network named name). */
struct gc_net_spec {
    const char *name;
    const char *mode;         /* nat | isolated | bridge */
    const char *bridge;       /* bridge mode: existing host bridge */
    const char *ipv4_gateway; /* the host's address on the network */
    int ipv4_prefix;
    const char *ipv6_gateway; /* or NULL */
    int ipv6_prefix;
};

struct gc_vm_nic {
    const char *network;      /* libvirt network name */
    const char *mac;
    const char *filter;       /* nwfilter applied to the interface, or NULL */
};

/* One firewall rule of a security group. */
struct gc_fw_rule {
    const char *direction;    /* ingress | egress (as seen from the VM) */
    const char *protocol;     /* tcp | udp | icmp | all */
    int port_min, port_max;   /* tcp/udp destination ports; 0 = any */
    const char *cidr;         /* the remote side: IPv4 or IPv6 network */
};

/* A virtual machine as the hypervisor is to run it. */
struct gc_vm_spec {
    const char *uuid;        /* govcloud's VM id, used as the domain UUID */
    const char *name;        /* domain name */
    int vcpus;
    int64_t memory_mib;
    const char *virt_type;   /* "kvm" or "qemu" (software emulation) */
    const char *arch;        /* x86_64, aarch64, ... */
    /* direct kernel boot (kernel images) */
    const char *kernel, *initrd, *cmdline;
    /* or a root disk (disk images): created as a copy-on-write volume in pool */
    const char *disk_image;  /* backing file */
    const char *disk_format; /* raw | qcow2 (of the backing file) */
    int64_t disk_gib;
    const char *pool;        /* storage pool for the root volume */
    const char *serial_log;  /* file that receives the serial console, or NULL */
    /* a volume of pool attached read-only as a virtio disk (the NoCloud config drive that
     * vol_upload made), or NULL */
    const char *config_drive;
    /* a VNC console on this address (port chosen by libvirt) with this password, or NULL */
    const char *vnc_listen, *vnc_password;
    const struct gc_vm_nic *nics;
    int nnics;
};

/* Domain states as govcloud names them. */
#define GC_POWER_STATES(X) \
    X("nostate") X("running") X("blocked") X("paused") X("shutdown") X("shutoff") \
    X("crashed") X("pmsuspended")

struct gc_vol_stream; /* a volume upload or download in progress */

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
    /* Domains: [{"uuid","name","state","vcpus","memory_mib"}] (0: unknown) */
    int (*domains)(struct gc_compute_conn *c, json_t **out, struct gc_error *err);
    /* Whether KVM acceleration is offered for arch (else software emulation). */
    bool (*has_kvm)(struct gc_compute_conn *c, const char *arch);
    /* Defines (persistently) and creates the root volume if any. */
    int (*vm_define)(struct gc_compute_conn *c, const struct gc_vm_spec *spec,
                     struct gc_error *err);
    int (*vm_start)(struct gc_compute_conn *c, const char *uuid, struct gc_error *err);
    /* ACPI power button; the guest decides. */
    int (*vm_shutdown)(struct gc_compute_conn *c, const char *uuid, struct gc_error *err);
    /* Pulls the plug. */
    int (*vm_destroy)(struct gc_compute_conn *c, const char *uuid, struct gc_error *err);
    int (*vm_reboot)(struct gc_compute_conn *c, const char *uuid, struct gc_error *err);
    /* Removes the definition and the volumes it created (root volume, config drive);
     * GC_ENOTFOUND when absent. */
    int (*vm_undefine)(struct gc_compute_conn *c, const char *uuid, struct gc_error *err);
    /* state: one of GC_POWER_STATES; GC_ENOTFOUND when no such domain. */
    int (*vm_state)(struct gc_compute_conn *c, const char *uuid, char *state, size_t cap,
                    struct gc_error *err);
    /* Defines and starts the network on the host unless it runs already. */
    int (*net_ensure)(struct gc_compute_conn *c, const struct gc_net_spec *spec,
                      struct gc_error *err);
    /* Pins an address to a MAC in the network's DHCP (no-op for bridge networks). */
    int (*net_dhcp_host)(struct gc_compute_conn *c, const char *network, const char *mac,
                         const char *ipv4, bool add, struct gc_error *err);
    /* Stops and removes the network from the host; GC_ENOTFOUND when absent. */
    int (*net_remove)(struct gc_compute_conn *c, const char *network, struct gc_error *err);
    /* (Re)defines a security group's filter; interfaces using it are updated at once. */
    int (*fw_group_define)(struct gc_compute_conn *c, const char *name,
                           const struct gc_fw_rule *rules, int n, struct gc_error *err);
    /* (Re)defines a VM's filter: replies to its own traffic, DHCP and IPv6 neighbour
     * discovery pass, then the groups' rules; other ingress is dropped, and egress too when
     * any group has egress rules. */
    int (*fw_vm_define)(struct gc_compute_conn *c, const char *name, const char *const *groups,
                        int ngroups, bool restrict_egress, struct gc_error *err);
    /* GC_ENOTFOUND when absent. */
    int (*fw_remove)(struct gc_compute_conn *c, const char *name, struct gc_error *err);
    /* A volume of format (qcow2 in file pools, raw in logical and rbd pools) in pool; *path
     * (malloc'd) gets where it is. Idempotent. */
    int (*vol_create)(struct gc_compute_conn *c, const char *pool, const char *name,
                      int64_t size_gib, const char *format, char **path, struct gc_error *err);
    /* A new volume name in pool, a full copy of the volume from of the same pool (done by
     * the host's storage backend); GC_ECONFLICT when name exists already. */
    int (*vol_clone)(struct gc_compute_conn *c, const char *pool, const char *from,
                     const char *name, int64_t size_gib, const char *format,
                     struct gc_error *err);
    /* GC_ENOTFOUND when absent. */
    int (*vol_delete)(struct gc_compute_conn *c, const char *pool, const char *name,
                      struct gc_error *err);
    /* A raw volume name in pool holding exactly the len bytes of data (replacing one of that
     * name), written through a libvirt stream: works on remote hosts too. */
    int (*vol_upload)(struct gc_compute_conn *c, const char *pool, const char *name,
                      const void *data, size_t len, struct gc_error *err);
    /* The VNC console of a running domain, from its live definition: listen (64) the
     * address, *port the TCP port, password (64) its password ("" when none). GC_ENOTFOUND
     * when absent; GC_ECONFLICT when it does not run or has no VNC console. */
    int (*vm_vnc)(struct gc_compute_conn *c, const char *uuid, char *listen, int *port,
                  char *password, struct gc_error *err);
    /* Grows a volume that no running VM uses (no-op when it is that large already). */
    int (*vol_resize)(struct gc_compute_conn *c, const char *pool, const char *name,
                      int64_t size_gib, struct gc_error *err);
    /* Attaches (attach) or detaches volume name of pool as device target (vdb…) of a domain,
     * in its definition and, when it runs, live: a file, a block device (LVM) or an RBD
     * image, as the pool has it. GC_ENOTFOUND when the domain is absent. */
    int (*vm_disk)(struct gc_compute_conn *c, const char *uuid, const char *pool,
                   const char *name, const char *format, const char *target, bool attach,
                   struct gc_error *err);
    /* Sets vCPUs and memory in the definition of a domain that is shut off. */
    int (*vm_resize)(struct gc_compute_conn *c, const char *uuid, int vcpus, int64_t memory_mib,
                     struct gc_error *err);
    /* Moves a domain and the volumes of its disks (every disk must be a volume of a storage
     * pool with the same name on both hosts) from src to dst. Running: live migration, the
     * disks copied by QEMU, the definition moved. Shut off: the volumes copied through
     * libvirt streams, then the definition. *src_volumes gets [{"pool","name"}], the
     * volumes left on src for the caller to delete once it has recorded the move. On
     * failure nothing changes on src and what was made on dst is removed. */
    int (*vm_migrate)(struct gc_compute_conn *src, struct gc_compute_conn *dst,
                      const char *uuid, json_t **src_volumes, struct gc_error *err);

    /* Attaches (attach) or detaches (by MAC) an interface of a domain, in its definition
     * and, when it runs, live. */
    int (*vm_nic)(struct gc_compute_conn *c, const char *uuid, const struct gc_vm_nic *nic,
                  bool attach, struct gc_error *err);

    /* Creates volume name in pool (a plain file of the bytes sent; one of that name left by
     * an abandoned transfer is replaced) and opens a stream that writes into it. bytes: the
     * size when known, else 0. The stream is the caller's until finish or abort. */
    int (*vol_upload_open)(struct gc_compute_conn *c, const char *pool, const char *name,
                           int64_t bytes, struct gc_vol_stream **out, struct gc_error *err);
    /* Opens a stream that reads volume name of pool; *bytes gets its size. GC_ENOTFOUND when
     * there is no such volume. */
    int (*vol_download_open)(struct gc_compute_conn *c, const char *pool, const char *name,
                             int64_t *bytes, struct gc_vol_stream **out, struct gc_error *err);
    int (*vol_send)(struct gc_vol_stream *s, const void *p, size_t n, struct gc_error *err);
    /* *got = 0 at the end of the volume. */
    int (*vol_recv)(struct gc_vol_stream *s, void *p, size_t cap, size_t *got,
                    struct gc_error *err);
    /* Completes the transfer and frees s; after an upload, *path (malloc'd, when path is not
     * NULL) gets where the volume is on the host. On failure an upload's volume is deleted. */
    int (*vol_stream_finish)(struct gc_vol_stream *s, char **path, struct gc_error *err);
    /* Abandons the transfer and frees s; an upload's volume is deleted. Accepts NULL. */
    void (*vol_stream_abort)(struct gc_vol_stream *s);
    /* *path (malloc'd): where volume name of pool is on the host; GC_ENOTFOUND when absent. */
    int (*vol_path)(struct gc_compute_conn *c, const char *pool, const char *name, char **path,
                    struct gc_error *err);

    /* Monitoring. The host's CPU time and memory: {"cpu_seconds": {"user","system","idle",
     * "iowait",…} (what the host reports, cumulative), "memory_bytes": {"total","free",
     * "buffers","cached"}}; either member absent when the host does not report it. */
    int (*node_stats)(struct gc_compute_conn *c, json_t **out, struct gc_error *err);
    /* Every domain's counters in one call: [{"uuid","state" (GC_POWER_STATES),
     * "cpu_seconds","vcpus","memory_bytes","memory_rss_bytes","memory_available_bytes",
     * "memory_unused_bytes", "interfaces":[{"name","rx_bytes","tx_bytes","rx_packets",
     * "tx_packets","rx_errors","tx_errors","rx_drops","tx_drops"}],
     * "disks":[{"name","read_bytes","write_bytes","read_requests","write_requests",
     * "capacity_bytes","allocation_bytes"}]}]; a member is absent when not reported. */
    int (*domain_stats)(struct gc_compute_conn *c, json_t **out, struct gc_error *err);
};

extern const struct gc_compute_driver gc_compute_libvirt;

/* 0 when govcloud accepts uri for the libvirt driver; GC_EINVAL (field "uri") otherwise:
 * libvirt URIs can name a program to run or a file to parse, which an API caller must not. */
int gc_compute_libvirt_uri_check(const char *uri, struct gc_error *err);

/* The driver for a URI, or NULL with err filled. */
const struct gc_compute_driver *gc_compute_driver_for(const char *uri, struct gc_error *err);

#endif
