/* The libvirt compute driver: one virConnect per host with keepalive, driven by libvirt's
 * default event loop on a single thread for all hosts (many hosts cost one thread). */
#include "drivers/compute.h"

#include "util/log.h"
#include "util/mem.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gc_compute_conn {
    virConnectPtr conn;
    gc_compute_closed_cb closed;
    void *opaque;
};

static pthread_t event_thread;
static int event_ready;

/* libvirt reports errors through a callback that prints them by default; we collect them
 * from virGetLastError instead. */
static void quiet_errors(void *opaque, virErrorPtr e)
{
    (void)opaque;
    (void)e;
}

static void *event_loop(void *arg)
{
    (void)arg;
    for (;;)
        if (virEventRunDefaultImpl() < 0)
            gc_warn("libvirt", "event loop iteration failed: %s",
                    virGetLastErrorMessage());
    return NULL;
}

static int lv_init(struct gc_error *err)
{
    if (event_ready)
        return 0;
    if (virInitialize() < 0)
        return gc_error_set(err, GC_EINTERNAL, "", "libvirt initialisation failed");
    virSetErrorFunc(NULL, quiet_errors);
    if (virEventRegisterDefaultImpl() < 0)
        return gc_error_set(err, GC_EINTERNAL, "", "libvirt event loop: %s",
                            virGetLastErrorMessage());
    if (pthread_create(&event_thread, NULL, event_loop, NULL) != 0)
        return gc_error_set(err, GC_EINTERNAL, "", "cannot start the libvirt event thread");
    pthread_detach(event_thread);
    event_ready = 1;
    return 0;
}

static bool lv_handles(const char *uri)
{
    static const char *const schemes[] = {"qemu", "test", "lxc", "xen", "ch"};
    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
        size_t n = strlen(schemes[i]);
        if (strncmp(uri, schemes[i], n) == 0 && (uri[n] == ':' || uri[n] == '+'))
            return true;
    }
    return false;
}

static void on_close(virConnectPtr conn, int reason, void *opaque)
{
    (void)conn;
    struct gc_compute_conn *c = opaque;
    static const char *const reasons[] = {"error", "end of file", "keepalive timeout",
                                          "client closed"};
    const char *why = reason >= 0 && reason < 4 ? reasons[reason] : "unknown";
    if (c->closed)
        c->closed(c->opaque, why);
}

static int lv_connect(const char *uri, gc_compute_closed_cb closed, void *opaque,
                      struct gc_compute_conn **out, struct gc_error *err)
{
    virConnectPtr conn = virConnectOpen(uri);
    if (!conn)
        return gc_error_set(err, GC_EBUSY, "uri", "cannot connect to %s: %s", uri,
                            virGetLastErrorMessage());
    struct gc_compute_conn *c = gc_calloc(1, sizeof(*c));
    c->conn = conn;
    c->closed = closed;
    c->opaque = opaque;
    /* remote URIs: ping every 5 s, give up after 3 unanswered; local drivers refuse this */
    if (virConnectSetKeepAlive(conn, 5, 3) < 0)
        virResetLastError();
    if (virConnectRegisterCloseCallback(conn, on_close, c, NULL) < 0)
        virResetLastError();
    *out = c;
    return 0;
}

static void lv_disconnect(struct gc_compute_conn *c)
{
    if (!c)
        return;
    virConnectUnregisterCloseCallback(c->conn, on_close);
    virConnectClose(c->conn);
    free(c);
}

static bool lv_alive(struct gc_compute_conn *c)
{
    return c && virConnectIsAlive(c->conn) == 1;
}

static void version_string(unsigned long v, char *buf, size_t cap)
{
    snprintf(buf, cap, "%lu.%lu.%lu", v / 1000000, (v / 1000) % 1000, v % 1000);
}

static int lv_facts(struct gc_compute_conn *c, struct gc_host_facts *f, struct gc_error *err)
{
    memset(f, 0, sizeof(*f));
    virNodeInfo ni;
    if (virNodeGetInfo(c->conn, &ni) < 0)
        return gc_error_set(err, GC_EBUSY, "", "cannot read host facts: %s",
                            virGetLastErrorMessage());
    snprintf(f->cpu_model, sizeof(f->cpu_model), "%s", ni.model);
    f->cpus = (int)ni.cpus;
    f->memory_mib = (int64_t)(ni.memory / 1024);
    const char *type = virConnectGetType(c->conn);
    snprintf(f->hypervisor, sizeof(f->hypervisor), "%s", type ? type : "unknown");
    unsigned long v = 0;
    if (virConnectGetVersion(c->conn, &v) == 0)
        version_string(v, f->hypervisor_version, sizeof(f->hypervisor_version));
    if (virConnectGetLibVersion(c->conn, &v) == 0)
        version_string(v, f->libvirt_version, sizeof(f->libvirt_version));
    char *hn = virConnectGetHostname(c->conn);
    if (hn) {
        snprintf(f->hostname, sizeof(f->hostname), "%s", hn);
        free(hn);
    }
    /* the architecture is in the capabilities XML: <host><cpu><arch>x86_64</arch> */
    char *caps = virConnectGetCapabilities(c->conn);
    if (caps) {
        const char *host = strstr(caps, "<host>");
        const char *a = host ? strstr(host, "<arch>") : NULL;
        const char *e = a ? strstr(a, "</arch>") : NULL;
        if (a && e && e - a - 6 < (long)sizeof(f->arch))
            snprintf(f->arch, sizeof(f->arch), "%.*s", (int)(e - a - 6), a + 6);
        free(caps);
    }
    if (!f->arch[0])
        snprintf(f->arch, sizeof(f->arch), "unknown");
    virResetLastError();
    return 0;
}

static int lv_pools(struct gc_compute_conn *c, json_t **out, struct gc_error *err)
{
    virStoragePoolPtr *pools = NULL;
    int n = virConnectListAllStoragePools(c->conn, &pools, 0);
    if (n < 0)
        return gc_error_set(err, GC_EBUSY, "", "cannot list storage pools: %s",
                            virGetLastErrorMessage());
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) {
        virStoragePoolInfo info;
        json_t *p = json_object();
        json_object_set_new(p, "name", json_string(virStoragePoolGetName(pools[i])));
        if (virStoragePoolGetInfo(pools[i], &info) == 0) {
            static const char *const st[] = {"inactive", "building", "running", "degraded",
                                             "inaccessible"};
            json_object_set_new(p, "state", json_string(info.state < 5 ? st[info.state]
                                                                        : "unknown"));
            json_object_set_new(p, "capacity_bytes", json_integer((json_int_t)info.capacity));
            json_object_set_new(p, "available_bytes",
                                json_integer((json_int_t)info.available));
        }
        char *xml = virStoragePoolGetXMLDesc(pools[i], 0);
        if (xml) {
            const char *t = strstr(xml, "type='");
            if (t) {
                const char *e = strchr(t + 6, '\'');
                if (e)
                    json_object_set_new(p, "type", json_stringn(t + 6, (size_t)(e - t - 6)));
            }
            const char *path = strstr(xml, "<path>");
            const char *pe = path ? strstr(path, "</path>") : NULL;
            if (path && pe)
                json_object_set_new(p, "path", json_stringn(path + 6, (size_t)(pe - path - 6)));
            free(xml);
        }
        json_array_append_new(arr, p);
        virStoragePoolFree(pools[i]);
    }
    free(pools);
    virResetLastError();
    *out = arr;
    return 0;
}

static int lv_domains(struct gc_compute_conn *c, json_t **out, struct gc_error *err)
{
    virDomainPtr *doms = NULL;
    int n = virConnectListAllDomains(c->conn, &doms, 0);
    if (n < 0)
        return gc_error_set(err, GC_EBUSY, "", "cannot list domains: %s",
                            virGetLastErrorMessage());
    static const char *const st[] = {"nostate", "running", "blocked", "paused",
                                     "shutdown", "shutoff", "crashed", "pmsuspended"};
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) {
        char uuid[VIR_UUID_STRING_BUFLEN];
        int state = 0, reason = 0;
        virDomainGetUUIDString(doms[i], uuid);
        virDomainGetState(doms[i], &state, &reason, 0);
        json_array_append_new(arr, json_pack("{s:s,s:s,s:s}", "uuid", uuid, "name",
                                             virDomainGetName(doms[i]), "state",
                                             state >= 0 && state < 8 ? st[state] : "unknown"));
        virDomainFree(doms[i]);
    }
    free(doms);
    *out = arr;
    return 0;
}

const struct gc_compute_driver gc_compute_libvirt = {
    .name = "libvirt",
    .init = lv_init,
    .handles = lv_handles,
    .connect = lv_connect,
    .disconnect = lv_disconnect,
    .alive = lv_alive,
    .facts = lv_facts,
    .pools = lv_pools,
    .domains = lv_domains,
};

const struct gc_compute_driver *gc_compute_driver_for(const char *uri, struct gc_error *err)
{
    static const struct gc_compute_driver *const drivers[] = {&gc_compute_libvirt};
    for (size_t i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++)
        if (drivers[i]->handles(uri))
            return drivers[i];
    gc_error_set(err, GC_EINVAL, "uri",
                 "no compute driver for URI '%.128s'; supported: qemu:///system, "
                 "qemu+ssh://HOST/system, qemu+tls://HOST/system, test:///default",
                 uri);
    return NULL;
}
