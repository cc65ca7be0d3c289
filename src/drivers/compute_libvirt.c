/* The libvirt compute driver: one virConnect per host with keepalive, driven by libvirt's
 * default event loop on a single thread for all hosts (many hosts cost one thread). */
#include "drivers/compute.h"

#include "util/buf.h"
#include "util/id.h"
#include "util/log.h"
#include "util/mem.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

static bool in_list(const char *s, size_t n, const char *const *list)
{
    for (; *list; list++)
        if (strlen(*list) == n && strncmp(s, *list, n) == 0)
            return true;
    return false;
}

/* The URIs govcloud lets a caller register: a libvirt URI may name a program to run
 * (?command= of the ext and ssh transports), a file to parse (test:///PATH), a socket, or
 * switch off host key and certificate checks (?no_verify=1). Accepted:
 *   qemu:///system
 *   qemu[+ssh|+libssh|+libssh2|+tls|+tcp]://[USER@]HOST[:PORT]/system[?PARAMS]
 *   test:///default[?ANY]  (libvirt's test driver, in govcloudd; it ignores the query)
 *   test[+ssh|...]://[USER@]HOST[:PORT]/default[?PARAMS]  (the test driver of a remote daemon)
 * PARAMS: no_tty, keyfile, known_hosts, pkipath, tls_priority. */
int gc_compute_libvirt_uri_check(const char *uri, struct gc_error *err)
{
    static const char *const transports[] = {"", "+ssh", "+libssh", "+libssh2", "+tls", "+tcp",
                                             NULL};
    static const char *const params[] = {"no_tty", "keyfile", "known_hosts", "pkipath",
                                         "tls_priority", NULL};
    for (const char *p = uri; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return gc_error_set(err, GC_EINVAL, "uri",
                                "URI must not contain spaces or control characters");
    if (strncmp(uri, "test:///default", 15) == 0 && (uri[15] == '\0' || uri[15] == '?'))
        return 0;
    const char *sep = strstr(uri, "://");
    size_t base = strncmp(uri, "qemu", 4) == 0 ? 4 : strncmp(uri, "test", 4) == 0 ? 4 : 0;
    const char *want = uri[0] == 'q' ? "/system" : "/default";
    if (!base || !sep || sep < uri + base ||
        !in_list(uri + base, (size_t)(sep - uri - base), transports))
        return gc_error_set(err, GC_EINVAL, "uri",
                            "URI '%.128s' is not accepted; use qemu:///system, "
                            "qemu+ssh://[USER@]HOST/system, qemu+tls://HOST/system or "
                            "test:///default",
                            uri);
    const char *auth = sep + 3, *path = strchr(auth, '/');
    if (!path)
        return gc_error_set(err, GC_EINVAL, "uri", "URI '%.128s' has no path %s", uri, want);
    for (const char *p = auth; p < path; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_@:[]", *p))
            return gc_error_set(err, GC_EINVAL, "uri",
                                "URI '%.128s': the host part may hold only a user, a host name "
                                "or address and a port",
                                uri);
    bool local = path == auth;
    if (local && (uri[0] != 'q' || sep != uri + base))
        return gc_error_set(err, GC_EINVAL, "uri",
                            "URI '%.128s': a transport (+ssh, +tls, ...) needs a host", uri);
    const char *query = strchr(path, '?');
    size_t plen = query ? (size_t)(query - path) : strlen(path);
    if (plen != strlen(want) || strncmp(path, want, plen) != 0)
        return gc_error_set(err, GC_EINVAL, "uri", "URI '%.128s': the path must be %s", uri,
                            want);
    if (query && local)
        return gc_error_set(err, GC_EINVAL, "uri",
                            "URI '%.128s': qemu:///system takes no parameters", uri);
    for (const char *q = query ? query + 1 : NULL; q && *q;) {
        size_t n = strcspn(q, "&;");
        size_t name = strcspn(q, "=&;");
        if (name > n)
            name = n;
        if (!in_list(q, name, params))
            return gc_error_set(err, GC_EINVAL, "uri",
                                "URI parameter '%.*s' is not accepted; accepted: no_tty, keyfile, "
                                "known_hosts, pkipath, tls_priority",
                                (int)(name > 32 ? 32 : name), q);
        q += n;
        if (*q)
            q++;
    }
    return 0;
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
        /* the size it runs with (or will start with, shut off) */
        virDomainInfo info;
        memset(&info, 0, sizeof(info));
        if (virDomainGetInfo(doms[i], &info) < 0)
            virResetLastError();
        json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:i,s:I}", "uuid", uuid, "name",
                                             virDomainGetName(doms[i]), "state",
                                             state >= 0 && state < 8 ? st[state] : "unknown",
                                             "vcpus", (int)info.nrVirtCpu, "memory_mib",
                                             (json_int_t)(info.maxMem / 1024)));
        virDomainFree(doms[i]);
    }
    free(doms);
    *out = arr;
    return 0;
}


/* ---- virtual machines ---- */

static int xml_add(struct gc_buf *b, const char *s)
{
    int rc = 0;
    for (const char *p = s; *p && !rc; p++) {
        switch (*p) {
        case '<': rc = gc_buf_adds(b, "&lt;"); break;
        case '>': rc = gc_buf_adds(b, "&gt;"); break;
        case '&': rc = gc_buf_adds(b, "&amp;"); break;
        case '\'': rc = gc_buf_adds(b, "&apos;"); break;
        case '"': rc = gc_buf_adds(b, "&quot;"); break;
        default: rc = gc_buf_add(b, p, 1);
        }
    }
    return rc;
}

static bool lv_has_kvm(struct gc_compute_conn *c, const char *arch)
{
    char *caps = virConnectGetCapabilities(c->conn);
    if (!caps)
        return false;
    bool yes = false;
    /* <guest>…<arch name='x86_64'>…<domain type='kvm'/>…</arch></guest> */
    char want[64];
    snprintf(want, sizeof(want), "<arch name='%s'>", arch);
    for (const char *g = strstr(caps, "<guest>"); g && !yes; g = strstr(g + 1, "<guest>")) {
        const char *end = strstr(g, "</guest>");
        const char *a = strstr(g, want);
        const char *k = strstr(g, "<domain type='kvm'");
        yes = a && k && end && a < end && k < end;
    }
    free(caps);
    return yes;
}

static virDomainPtr lookup(struct gc_compute_conn *c, const char *uuid, struct gc_error *err)
{
    virDomainPtr d = virDomainLookupByUUIDString(c->conn, uuid);
    if (!d) {
        virErrorPtr e = virGetLastError();
        if (e && e->code == VIR_ERR_NO_DOMAIN)
            gc_error_set(err, GC_ENOTFOUND, "", "no domain %s on the host", uuid);
        else
            gc_error_set(err, GC_EBUSY, "", "cannot look up domain %s: %s", uuid,
                         virGetLastErrorMessage());
        virResetLastError();
    }
    return d;
}

static virStorageVolPtr vol_lookup(struct gc_compute_conn *c, const char *pool, const char *name,
                                   struct gc_error *err);

static char *volume_name(const char *uuid)
{
    char *n = gc_malloc(GC_ID_LEN + 16);
    snprintf(n, GC_ID_LEN + 16, "%s-root.qcow2", uuid);
    return n;
}

/* Creates the root volume (a qcow2 overlay on the image) and returns its path. */
static int create_root_volume(struct gc_compute_conn *c, const struct gc_vm_spec *s, char **path,
                              struct gc_error *err)
{
    virStoragePoolPtr pool = virStoragePoolLookupByName(c->conn, s->pool ? s->pool : "default");
    if (!pool)
        return gc_error_set(err, GC_EBUSY, "pool", "storage pool '%s' not found on the host: %s",
                            s->pool ? s->pool : "default", virGetLastErrorMessage());
    char *vname = volume_name(s->uuid);
    struct gc_buf x;
    gc_buf_init(&x, 1 << 16);
    int rc = gc_buf_adds(&x, "<volume><name>");
    rc |= xml_add(&x, vname);
    rc |= gc_buf_addf(&x,
                      "</name><capacity unit='GiB'>%lld</capacity>"
                      "<target><format type='qcow2'/></target>"
                      "<backingStore><path>",
                      (long long)s->disk_gib);
    rc |= xml_add(&x, s->disk_image);
    rc |= gc_buf_adds(&x, "</path><format type='");
    rc |= xml_add(&x, s->disk_format ? s->disk_format : "qcow2");
    rc |= gc_buf_adds(&x, "'/></backingStore></volume>");
    virStorageVolPtr vol = rc ? NULL : virStorageVolCreateXML(pool, gc_buf_str(&x), 0);
    if (!vol)
        rc = gc_error_set(err, GC_EBUSY, "", "cannot create the root volume: %s",
                          virGetLastErrorMessage());
    else {
        *path = virStorageVolGetPath(vol);
        virStorageVolFree(vol);
    }
    gc_buf_release(&x);
    free(vname);
    virStoragePoolFree(pool);
    return rc;
}

/* <interface> of a VM on a libvirt network, with its MAC and its nwfilter. */
static int interface_xml(struct gc_buf *x, const struct gc_vm_nic *n)
{
    int rc = gc_buf_adds(x, "<interface type='network'><source network='");
    rc |= xml_add(x, n->network);
    rc |= gc_buf_adds(x, "'/><mac address='");
    rc |= xml_add(x, n->mac);
    rc |= gc_buf_adds(x, "'/><model type='virtio'/>");
    if (n->filter) {
        rc |= gc_buf_adds(x, "<filterref filter='");
        rc |= xml_add(x, n->filter);
        rc |= gc_buf_adds(x, "'/>");
    }
    rc |= gc_buf_adds(x, "</interface>");
    return rc;
}

static int lv_vm_define(struct gc_compute_conn *c, const struct gc_vm_spec *s,
                        struct gc_error *err)
{
    char *disk = NULL, *cd = NULL;
    bool cd_block = false;
    int rc = 0;
    if (s->disk_image && (rc = create_root_volume(c, s, &disk, err)))
        return rc;
    if (s->config_drive) {
        virStorageVolPtr v = vol_lookup(c, s->pool ? s->pool : "default", s->config_drive, err);
        virStorageVolInfo info;
        if (!v || virStorageVolGetInfo(v, &info) < 0 || !(cd = virStorageVolGetPath(v)))
            rc = v ? gc_error_set(err, GC_EBUSY, "", "cannot read volume %s: %s",
                                  s->config_drive, virGetLastErrorMessage())
                   : err->code;
        else if (info.type == VIR_STORAGE_VOL_NETWORK)
            rc = gc_error_set(err, GC_EUNSUPPORTED, "pool",
                              "the config drive cannot be in a network (RBD) pool");
        else
            cd_block = info.type == VIR_STORAGE_VOL_BLOCK;
        if (v)
            virStorageVolFree(v);
        virResetLastError();
        if (rc) {
            free(disk);
            free(cd);
            return rc;
        }
    }
    struct gc_buf x;
    gc_buf_init(&x, 1 << 20);
    rc |= gc_buf_addf(&x, "<domain type='%s'><name>", s->virt_type);
    rc |= xml_add(&x, s->name);
    rc |= gc_buf_addf(&x,
                      "</name><uuid>%s</uuid><memory unit='MiB'>%lld</memory>"
                      "<vcpu>%d</vcpu><os><type arch='",
                      s->uuid, (long long)s->memory_mib, s->vcpus);
    rc |= xml_add(&x, s->arch);
    rc |= gc_buf_adds(&x, "'>hvm</type>");
    if (s->kernel) {
        rc |= gc_buf_adds(&x, "<kernel>");
        rc |= xml_add(&x, s->kernel);
        rc |= gc_buf_adds(&x, "</kernel>");
        if (s->initrd && s->initrd[0]) {
            rc |= gc_buf_adds(&x, "<initrd>");
            rc |= xml_add(&x, s->initrd);
            rc |= gc_buf_adds(&x, "</initrd>");
        }
        rc |= gc_buf_adds(&x, "<cmdline>");
        rc |= xml_add(&x, s->cmdline ? s->cmdline : "");
        rc |= gc_buf_adds(&x, "</cmdline>");
    } else {
        rc |= gc_buf_adds(&x, "<boot dev='hd'/>");
    }
    /* ACPI, or a guest's poweroff does not end the domain */
    rc |= gc_buf_adds(&x, "</os><features><acpi/></features>"
                          "<on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot>"
                          "<on_crash>destroy</on_crash><devices>");
    if (disk) {
        rc |= gc_buf_adds(&x, "<disk type='file' device='disk'><driver name='qemu' "
                              "type='qcow2'/><source file='");
        rc |= xml_add(&x, disk);
        rc |= gc_buf_adds(&x, "'/><target dev='vda' bus='virtio'/></disk>");
    }
    /* vdz: data volumes take vdb, vdc, ... (a guest names virtio disks in PCI order, and
     * cloud-init finds the drive by its label, not its name) */
    if (cd) {
        rc |= gc_buf_addf(&x, "<disk type='%s' device='disk'><driver name='qemu' type='raw'/>"
                              "<source %s='", cd_block ? "block" : "file",
                          cd_block ? "dev" : "file");
        rc |= xml_add(&x, cd);
        rc |= gc_buf_adds(&x, "'/><target dev='vdz' bus='virtio'/><readonly/></disk>");
    }
    for (int i = 0; i < s->nnics; i++)
        rc |= interface_xml(&x, &s->nics[i]);
    /* a pty console whose output virtlogd also writes to a file on the host */
    rc |= gc_buf_adds(&x, "<serial type='pty'>");
    if (s->serial_log) {
        rc |= gc_buf_adds(&x, "<log file='");
        rc |= xml_add(&x, s->serial_log);
        rc |= gc_buf_adds(&x, "' append='on'/>");
    }
    rc |= gc_buf_adds(&x, "<target port='0'/></serial><console type='pty'><target type='serial' "
                          "port='0'/></console>");
    if (s->vnc_listen) {
        rc |= gc_buf_adds(&x, "<graphics type='vnc' autoport='yes' listen='");
        rc |= xml_add(&x, s->vnc_listen);
        rc |= gc_buf_adds(&x, "'");
        if (s->vnc_password) {
            rc |= gc_buf_adds(&x, " passwd='");
            rc |= xml_add(&x, s->vnc_password);
            rc |= gc_buf_adds(&x, "'");
        }
        rc |= gc_buf_adds(&x, "><listen type='address' address='");
        rc |= xml_add(&x, s->vnc_listen);
        rc |= gc_buf_adds(&x, "'/></graphics>");
    }
    rc |= gc_buf_adds(&x, "<memballoon model='none'/></devices></domain>");
    free(disk);
    free(cd);
    if (rc) {
        gc_buf_release(&x);
        return gc_error_set(err, GC_EINVAL, "", "domain description too large");
    }
    virDomainPtr d = virDomainDefineXML(c->conn, gc_buf_str(&x));
    gc_buf_release(&x);
    if (!d)
        return gc_error_set(err, GC_EBUSY, "", "the hypervisor refused the domain: %s",
                            virGetLastErrorMessage());
    virDomainFree(d);
    return 0;
}

typedef int (*domain_op)(virDomainPtr d);

static int reboot_op(virDomainPtr d)
{
    return virDomainReboot(d, 0);
}

static int run_op(struct gc_compute_conn *c, const char *uuid, domain_op op, const char *what,
                  struct gc_error *err)
{
    virDomainPtr d = lookup(c, uuid, err);
    if (!d)
        return err->code;
    int rc = 0;
    if (op(d) < 0)
        rc = gc_error_set(err, GC_EBUSY, "", "cannot %s domain %s: %s", what, uuid,
                          virGetLastErrorMessage());
    virDomainFree(d);
    virResetLastError();
    return rc;
}

static int lv_vm_start(struct gc_compute_conn *c, const char *uuid, struct gc_error *err)
{
    return run_op(c, uuid, virDomainCreate, "start", err);
}

static int lv_vm_shutdown(struct gc_compute_conn *c, const char *uuid, struct gc_error *err)
{
    return run_op(c, uuid, virDomainShutdown, "shut down", err);
}

static int lv_vm_destroy(struct gc_compute_conn *c, const char *uuid, struct gc_error *err)
{
    return run_op(c, uuid, virDomainDestroy, "stop", err);
}

static int lv_vm_reboot(struct gc_compute_conn *c, const char *uuid, struct gc_error *err)
{
    return run_op(c, uuid, reboot_op, "reboot", err);
}

static int lv_vm_undefine(struct gc_compute_conn *c, const char *uuid, struct gc_error *err)
{
    virDomainPtr d = lookup(c, uuid, err);
    if (!d && err->code != GC_ENOTFOUND)
        return err->code;
    /* a domain removed outside govcloud may have left its root volume: removed below too */
    int gone = d ? 0 : GC_ENOTFOUND;
    gc_error_clear(err);
    int rc = 0;
    /* a guest may power off between the check and the destroy: only a domain still running
     * afterwards is a failure */
    if (d && virDomainIsActive(d) == 1 && virDomainDestroy(d) < 0 && virDomainIsActive(d) != 0)
        rc = gc_error_set(err, GC_EBUSY, "", "cannot stop domain %s: %s", uuid,
                          virGetLastErrorMessage());
    if (d && !rc && virDomainUndefineFlags(d, VIR_DOMAIN_UNDEFINE_NVRAM) < 0 &&
        virDomainUndefine(d) < 0)
        rc = gc_error_set(err, GC_EBUSY, "", "cannot undefine domain %s: %s", uuid,
                          virGetLastErrorMessage());
    if (d)
        virDomainFree(d);
    /* the root volume and the config drive, if this VM had them */
    if (!rc) {
        char *vname = volume_name(uuid);
        char cdname[GC_ID_LEN + 32];
        snprintf(cdname, sizeof(cdname), "gc-%s-cidata.iso", uuid);
        const char *names[] = {vname, cdname};
        virStoragePoolPtr *pools = NULL;
        int n = virConnectListAllStoragePools(c->conn, &pools,
                                              VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE);
        for (int i = 0; i < n; i++) {
            for (int k = 0; k < 2; k++) {
                virStorageVolPtr v = virStorageVolLookupByName(pools[i], names[k]);
                if (v) {
                    if (virStorageVolDelete(v, 0) < 0 && !rc)
                        rc = gc_error_set(err, GC_EBUSY, "", "cannot delete volume %s: %s",
                                          names[k], virGetLastErrorMessage());
                    virStorageVolFree(v);
                }
            }
            virStoragePoolFree(pools[i]);
        }
        free(pools);
        free(vname);
    }
    virResetLastError();
    if (!rc && gone)
        return gc_error_set(err, GC_ENOTFOUND, "", "no domain %s on the host", uuid);
    return rc;
}

static int lv_vm_state(struct gc_compute_conn *c, const char *uuid, char *state, size_t cap,
                       struct gc_error *err)
{
    static const char *const st[] = {
#define GC_X_PS(n) n,
        GC_POWER_STATES(GC_X_PS)
#undef GC_X_PS
    };
    virDomainPtr d = lookup(c, uuid, err);
    if (!d)
        return err->code;
    int s = 0, reason = 0, rc = 0;
    if (virDomainGetState(d, &s, &reason, 0) < 0)
        rc = gc_error_set(err, GC_EBUSY, "", "cannot read the state of %s: %s", uuid,
                          virGetLastErrorMessage());
    else
        snprintf(state, cap, "%s", s >= 0 && s < 8 ? st[s] : "nostate");
    virDomainFree(d);
    virResetLastError();
    return rc;
}

/* ---- networks ---- */

static void prefix_to_mask(int prefix, char *out, size_t cap)
{
    uint32_t m = prefix <= 0 ? 0 : 0xffffffffu << (32 - prefix);
    snprintf(out, cap, "%u.%u.%u.%u", m >> 24, (m >> 16) & 255, (m >> 8) & 255, m & 255);
}

static int lv_net_ensure(struct gc_compute_conn *c, const struct gc_net_spec *s,
                         struct gc_error *err)
{
    virNetworkPtr n = virNetworkLookupByName(c->conn, s->name);
    if (n) {
        int rc = 0;
        if (virNetworkIsActive(n) != 1 && virNetworkCreate(n) < 0)
            rc = gc_error_set(err, GC_EBUSY, "", "cannot start network %s: %s", s->name,
                              virGetLastErrorMessage());
        virNetworkFree(n);
        virResetLastError();
        return rc;
    }
    virResetLastError();
    struct gc_buf x;
    gc_buf_init(&x, 1 << 16);
    int rc = gc_buf_adds(&x, "<network><name>");
    rc |= xml_add(&x, s->name);
    rc |= gc_buf_adds(&x, "</name>");
    if (strcmp(s->mode, "bridge") == 0) {
        rc |= gc_buf_adds(&x, "<forward mode='bridge'/><bridge name='");
        rc |= xml_add(&x, s->bridge);
        rc |= gc_buf_adds(&x, "'/>");
    } else {
        if (strcmp(s->mode, "nat") == 0)
            rc |= gc_buf_adds(&x, "<forward mode='nat'/>");
        char mask[20];
        prefix_to_mask(s->ipv4_prefix, mask, sizeof(mask));
        rc |= gc_buf_adds(&x, "<bridge stp='on' delay='0'/><ip address='");
        rc |= xml_add(&x, s->ipv4_gateway);
        /* no DHCP range: dnsmasq answers only the addresses govcloud pins to each VM's MAC
         * (libvirt adds the <dhcp> element with the first pinned host) */
        rc |= gc_buf_addf(&x, "' netmask='%s'/>", mask);
        if (s->ipv6_gateway && s->ipv6_gateway[0]) {
            rc |= gc_buf_adds(&x, "<ip family='ipv6' address='");
            rc |= xml_add(&x, s->ipv6_gateway);
            rc |= gc_buf_addf(&x, "' prefix='%d'/>", s->ipv6_prefix);
        }
    }
    rc |= gc_buf_adds(&x, "</network>");
    if (rc) {
        gc_buf_release(&x);
        return gc_error_set(err, GC_EINVAL, "", "network description too large");
    }
    n = virNetworkDefineXML(c->conn, gc_buf_str(&x));
    gc_buf_release(&x);
    if (!n)
        return gc_error_set(err, GC_EBUSY, "", "the host refused network %s: %s", s->name,
                            virGetLastErrorMessage());
    rc = 0;
    if (virNetworkCreate(n) < 0)
        rc = gc_error_set(err, GC_EBUSY, "", "cannot start network %s: %s", s->name,
                          virGetLastErrorMessage());
    else
        virNetworkSetAutostart(n, 1);
    virNetworkFree(n);
    virResetLastError();
    return rc;
}

static int lv_net_dhcp_host(struct gc_compute_conn *c, const char *network, const char *mac,
                            const char *ipv4, bool add, struct gc_error *err)
{
    virNetworkPtr n = virNetworkLookupByName(c->conn, network);
    if (!n) {
        virResetLastError();
        return add ? gc_error_set(err, GC_EBUSY, "", "network %s is not on the host", network)
                   : 0;
    }
    int rc = 0;
    char *xml = virNetworkGetXMLDesc(n, 0);
    bool bridged = xml && strstr(xml, "<forward mode='bridge'") != NULL;
    free(xml);
    if (!bridged) {
        char host[160];
        snprintf(host, sizeof(host), "<host mac='%s' ip='%s'/>", mac, ipv4);
        unsigned flags = VIR_NETWORK_UPDATE_AFFECT_CONFIG;
        if (virNetworkIsActive(n) == 1)
            flags |= VIR_NETWORK_UPDATE_AFFECT_LIVE;
        if (virNetworkUpdate(n,
                             add ? VIR_NETWORK_UPDATE_COMMAND_ADD_LAST
                                 : VIR_NETWORK_UPDATE_COMMAND_DELETE,
                             VIR_NETWORK_SECTION_IP_DHCP_HOST, -1, host, flags) < 0) {
            virErrorPtr e = virGetLastError();
            /* adding what is there, or removing what is not, is done already */
            bool done = e && (e->code == VIR_ERR_OPERATION_INVALID);
            if (!done)
                rc = gc_error_set(err, GC_EBUSY, "", "cannot %s DHCP host %s on %s: %s",
                                  add ? "add" : "remove", ipv4, network,
                                  virGetLastErrorMessage());
        }
    }
    virNetworkFree(n);
    virResetLastError();
    return rc;
}

static int lv_net_remove(struct gc_compute_conn *c, const char *network, struct gc_error *err)
{
    virNetworkPtr n = virNetworkLookupByName(c->conn, network);
    if (!n) {
        virResetLastError();
        return gc_error_set(err, GC_ENOTFOUND, "", "network %s is not on the host", network);
    }
    int rc = 0;
    if (virNetworkIsActive(n) == 1 && virNetworkDestroy(n) < 0)
        rc = gc_error_set(err, GC_EBUSY, "", "cannot stop network %s: %s", network,
                          virGetLastErrorMessage());
    if (!rc && virNetworkUndefine(n) < 0)
        rc = gc_error_set(err, GC_EBUSY, "", "cannot remove network %s: %s", network,
                          virGetLastErrorMessage());
    virNetworkFree(n);
    virResetLastError();
    return rc;
}

/* ---- security groups as nwfilters ---- */

/* Redefining a filter must keep its UUID (libvirt refuses a second filter of that name). */
static int filter_uuid(struct gc_compute_conn *c, const char *name, struct gc_buf *x)
{
    virNWFilterPtr f = virNWFilterLookupByName(c->conn, name);
    if (!f) {
        virResetLastError();
        return 0;
    }
    char uuid[VIR_UUID_STRING_BUFLEN];
    int rc = 0;
    if (virNWFilterGetUUIDString(f, uuid) == 0)
        rc = gc_buf_addf(x, "<uuid>%s</uuid>", uuid);
    virNWFilterFree(f);
    return rc;
}

static int define_filter(struct gc_compute_conn *c, const char *xml, const char *name,
                         struct gc_error *err)
{
    virNWFilterPtr f = virNWFilterDefineXML(c->conn, xml);
    if (!f) {
        int rc = gc_error_set(err, GC_EBUSY, "", "the host refused filter %s: %s", name,
                              virGetLastErrorMessage());
        virResetLastError();
        return rc;
    }
    virNWFilterFree(f);
    return 0;
}

static int lv_fw_group_define(struct gc_compute_conn *c, const char *name,
                              const struct gc_fw_rule *rules, int n, struct gc_error *err)
{
    struct gc_buf x;
    gc_buf_init(&x, 1 << 20);
    int rc = gc_buf_adds(&x, "<filter name='");
    rc |= xml_add(&x, name);
    rc |= gc_buf_adds(&x, "' chain='root'>");
    rc |= filter_uuid(c, name, &x);
    for (int i = 0; i < n; i++) {
        const struct gc_fw_rule *r = &rules[i];
        bool v6 = strchr(r->cidr, ':') != NULL;
        bool in = strcmp(r->direction, "ingress") == 0;
        char addr[64] = "";
        const char *slash = strchr(r->cidr, '/');
        snprintf(addr, sizeof(addr), "%.*s", (int)(slash ? slash - r->cidr : (long)strlen(r->cidr)),
                 r->cidr);
        int prefix = slash ? atoi(slash + 1) : (v6 ? 128 : 32);
        const char *proto = r->protocol;
        char elem[16];
        if (strcmp(proto, "icmp") == 0)
            snprintf(elem, sizeof(elem), "%s", v6 ? "icmpv6" : "icmp");
        else if (strcmp(proto, "all") == 0)
            snprintf(elem, sizeof(elem), "%s", v6 ? "all-ipv6" : "all");
        else
            snprintf(elem, sizeof(elem), "%s%s", proto, v6 ? "-ipv6" : "");
        rc |= gc_buf_addf(&x, "<rule action='accept' direction='%s' priority='500'><%s %sipaddr='",
                          in ? "in" : "out", elem, in ? "src" : "dst");
        rc |= xml_add(&x, addr);
        rc |= gc_buf_addf(&x, "' %sipmask='%d'", in ? "src" : "dst", prefix);
        if (r->port_min > 0 && (!strcmp(proto, "tcp") || !strcmp(proto, "udp")))
            rc |= gc_buf_addf(&x, " dstportstart='%d' dstportend='%d'", r->port_min,
                              r->port_max > 0 ? r->port_max : r->port_min);
        rc |= gc_buf_adds(&x, "/></rule>");
    }
    rc |= gc_buf_adds(&x, "</filter>");
    if (!rc)
        rc = define_filter(c, gc_buf_str(&x), name, err);
    else
        rc = gc_error_set(err, GC_EINVAL, "", "filter %s too large", name);
    gc_buf_release(&x);
    return rc;
}

static int lv_fw_vm_define(struct gc_compute_conn *c, const char *name, const char *const *groups,
                           int ngroups, bool restrict_egress, struct gc_error *err)
{
    struct gc_buf x;
    gc_buf_init(&x, 1 << 16);
    int rc = gc_buf_adds(&x, "<filter name='");
    rc |= xml_add(&x, name);
    rc |= gc_buf_adds(&x, "' chain='root'>");
    rc |= filter_uuid(c, name, &x);
    rc |= gc_buf_adds(
        &x, /* replies to the VM's own connections */
            "<rule action='accept' direction='inout' priority='100'>"
            "<all state='ESTABLISHED,RELATED'/></rule>"
            "<rule action='accept' direction='inout' priority='100'>"
            "<all-ipv6 state='ESTABLISHED,RELATED'/></rule>"
            /* DHCP answers and IPv6 neighbour discovery / router advertisements */
            "<rule action='accept' direction='inout' priority='110'>"
            "<udp srcportstart='67' srcportend='68' dstportstart='67' dstportend='68'/></rule>"
            "<rule action='accept' direction='inout' priority='110'><icmpv6/></rule>");
    for (int i = 0; i < ngroups; i++) {
        rc |= gc_buf_adds(&x, "<filterref filter='");
        rc |= xml_add(&x, groups[i]);
        rc |= gc_buf_adds(&x, "'/>");
    }
    rc |= gc_buf_adds(&x, "<rule action='drop' direction='in' priority='900'><all/></rule>"
                          "<rule action='drop' direction='in' priority='900'><all-ipv6/></rule>");
    if (restrict_egress)
        rc |= gc_buf_adds(&x, "<rule action='drop' direction='out' priority='900'><all/></rule>"
                              "<rule action='drop' direction='out' priority='900'><all-ipv6/>"
                              "</rule>");
    rc |= gc_buf_adds(&x, "</filter>");
    if (!rc)
        rc = define_filter(c, gc_buf_str(&x), name, err);
    else
        rc = gc_error_set(err, GC_EINVAL, "", "filter %s too large", name);
    gc_buf_release(&x);
    return rc;
}

static int lv_fw_remove(struct gc_compute_conn *c, const char *name, struct gc_error *err)
{
    virNWFilterPtr f = virNWFilterLookupByName(c->conn, name);
    if (!f) {
        virResetLastError();
        return gc_error_set(err, GC_ENOTFOUND, "", "filter %s is not on the host", name);
    }
    int rc = 0;
    if (virNWFilterUndefine(f) < 0)
        rc = gc_error_set(err, GC_EBUSY, "", "cannot remove filter %s: %s", name,
                          virGetLastErrorMessage());
    virNWFilterFree(f);
    virResetLastError();
    return rc;
}

/* ---- volumes ---- */

static virStorageVolPtr vol_lookup(struct gc_compute_conn *c, const char *pool, const char *name,
                                   struct gc_error *err)
{
    virStoragePoolPtr p = virStoragePoolLookupByName(c->conn, pool);
    if (!p) {
        gc_error_set(err, GC_EBUSY, "pool", "storage pool '%s' not found on the host: %s", pool,
                     virGetLastErrorMessage());
        virResetLastError();
        return NULL;
    }
    virStorageVolPtr v = virStorageVolLookupByName(p, name);
    if (!v) {
        gc_error_set(err, GC_ENOTFOUND, "", "volume %s is not in pool %s", name, pool);
        virResetLastError();
    }
    virStoragePoolFree(p);
    return v;
}

/* <volume> for name: capacity, and the format element only in file pools (logical and rbd
 * pools have no formats: their volumes are raw). */
static int vol_xml(struct gc_buf *x, const char *name, int64_t size_gib, const char *format)
{
    int rc = gc_buf_adds(x, "<volume><name>");
    rc |= xml_add(x, name);
    rc |= gc_buf_addf(x, "</name><capacity unit='GiB'>%lld</capacity>", (long long)size_gib);
    if (format && !strcmp(format, "qcow2"))
        rc |= gc_buf_adds(x, "<target><format type='qcow2'/></target>");
    rc |= gc_buf_adds(x, "</volume>");
    return rc;
}

static int lv_vol_create(struct gc_compute_conn *c, const char *pool, const char *name,
                         int64_t size_gib, const char *format, char **path,
                         struct gc_error *err)
{
    virStorageVolPtr v = vol_lookup(c, pool, name, err);
    if (!v && err->code != GC_ENOTFOUND)
        return err->code;
    gc_error_clear(err);
    if (!v) {
        virStoragePoolPtr p = virStoragePoolLookupByName(c->conn, pool);
        if (!p)
            return gc_error_set(err, GC_EBUSY, "pool", "storage pool '%s' not found: %s", pool,
                                virGetLastErrorMessage());
        struct gc_buf x;
        gc_buf_init(&x, 4096);
        int rc = vol_xml(&x, name, size_gib, format);
        v = rc ? NULL : virStorageVolCreateXML(p, gc_buf_str(&x), 0);
        /* before any other libvirt call, which would reset the error */
        if (!v)
            rc = gc_error_set(err, GC_EBUSY, "", "cannot create volume %s: %s", name,
                              virGetLastErrorMessage());
        gc_buf_release(&x);
        virStoragePoolFree(p);
        if (!v) {
            virResetLastError();
            return rc;
        }
    }
    *path = virStorageVolGetPath(v);
    virStorageVolFree(v);
    return *path ? 0 : gc_error_set(err, GC_EBUSY, "", "volume %s has no path", name);
}

static int lv_vol_clone(struct gc_compute_conn *c, const char *pool, const char *from,
                        const char *name, int64_t size_gib, const char *format,
                        struct gc_error *err)
{
    virStorageVolPtr there = vol_lookup(c, pool, name, err);
    if (there) {
        virStorageVolFree(there);
        return gc_error_set(err, GC_ECONFLICT, "", "volume %s exists already in pool %s", name,
                            pool);
    }
    if (err->code != GC_ENOTFOUND)
        return err->code;
    gc_error_clear(err);
    virStorageVolPtr src = vol_lookup(c, pool, from, err);
    if (!src)
        return err->code;
    virStoragePoolPtr p = virStoragePoolLookupByVolume(src);
    struct gc_buf x;
    gc_buf_init(&x, 4096);
    int rc = vol_xml(&x, name, size_gib, format);
    virStorageVolPtr v = rc || !p ? NULL : virStorageVolCreateXMLFrom(p, gc_buf_str(&x), src, 0);
    if (!v)
        rc = gc_error_set(err, GC_EBUSY, "", "cannot copy volume %s to %s: %s", from, name,
                          virGetLastErrorMessage());
    gc_buf_release(&x);
    if (v)
        virStorageVolFree(v);
    if (p)
        virStoragePoolFree(p);
    virStorageVolFree(src);
    virResetLastError();
    return rc;
}

static int lv_vol_delete(struct gc_compute_conn *c, const char *pool, const char *name,
                         struct gc_error *err)
{
    virStorageVolPtr v = vol_lookup(c, pool, name, err);
    if (!v)
        return err->code;
    int rc = 0;
    if (virStorageVolDelete(v, 0) < 0)
        rc = gc_error_set(err, GC_EBUSY, "", "cannot delete volume %s: %s", name,
                          virGetLastErrorMessage());
    virStorageVolFree(v);
    virResetLastError();
    return rc;
}

static int lv_vol_resize(struct gc_compute_conn *c, const char *pool, const char *name,
                         int64_t size_gib, struct gc_error *err)
{
    virStorageVolPtr v = vol_lookup(c, pool, name, err);
    if (!v)
        return err->code;
    int rc = 0;
    virStorageVolInfo info;
    if (virStorageVolGetInfo(v, &info) == 0 && info.capacity >= (unsigned long long)size_gib << 30)
        ; /* done already (a job run again) */
    else if (virStorageVolResize(v, (unsigned long long)size_gib << 30, 0) < 0)
        rc = gc_error_set(err, GC_EBUSY, "", "cannot resize volume %s: %s", name,
                          virGetLastErrorMessage());
    virStorageVolFree(v);
    virResetLastError();
    return rc;
}

static int lv_vol_upload(struct gc_compute_conn *c, const char *pool, const char *name,
                         const void *data, size_t len, struct gc_error *err)
{
    virStoragePoolPtr p = virStoragePoolLookupByName(c->conn, pool);
    if (!p) {
        int rc = gc_error_set(err, GC_EBUSY, "pool", "storage pool '%s' not found on the host: %s",
                              pool, virGetLastErrorMessage());
        virResetLastError();
        return rc;
    }
    virStorageVolPtr old = virStorageVolLookupByName(p, name);
    if (old) { /* a job run again: made afresh */
        (void)virStorageVolDelete(old, 0);
        virStorageVolFree(old);
    }
    struct gc_buf x;
    gc_buf_init(&x, 4096);
    int rc = gc_buf_adds(&x, "<volume><name>");
    rc |= xml_add(&x, name);
    rc |= gc_buf_addf(&x, "</name><capacity unit='B'>%zu</capacity>"
                          "<target><format type='raw'/><permissions><mode>0644</mode>"
                          "</permissions></target></volume>",
                      len);
    virStorageVolPtr v = rc ? NULL : virStorageVolCreateXML(p, gc_buf_str(&x), 0);
    gc_buf_release(&x);
    virStreamPtr st = v ? virStreamNew(c->conn, 0) : NULL;
    rc = 0;
    if (!v || !st || virStorageVolUpload(v, st, 0, len, 0) < 0) {
        rc = gc_error_set(err, GC_EBUSY, "", "cannot write volume %s: %s", name,
                          virGetLastErrorMessage());
        if (st)
            virStreamFree(st);
        st = NULL;
    }
    for (size_t off = 0; !rc && off < len;) {
        int k = virStreamSend(st, (const char *)data + off, len - off);
        if (k < 0)
            rc = gc_error_set(err, GC_EBUSY, "", "writing volume %s: %s", name,
                              virGetLastErrorMessage());
        else
            off += (size_t)k;
    }
    if (st && !rc && virStreamFinish(st) < 0)
        rc = gc_error_set(err, GC_EBUSY, "", "finishing volume %s: %s", name,
                          virGetLastErrorMessage());
    else if (st && rc)
        (void)virStreamAbort(st);
    if (st)
        virStreamFree(st);
    if (v && rc)
        (void)virStorageVolDelete(v, 0);
    if (v)
        virStorageVolFree(v);
    virStoragePoolFree(p);
    virResetLastError();
    return rc;
}

/* Copies attribute attr='…' of the element starting at el (up to its '>') into out. */
static bool xml_attr(const char *el, const char *attr, char *out, size_t cap)
{
    const char *end = strchr(el, '>');
    char key[40];
    snprintf(key, sizeof(key), " %s='", attr);
    const char *a = strstr(el, key);
    if (!end || !a || a > end)
        return false;
    a += strlen(key);
    const char *q = strchr(a, '\'');
    if (!q || q > end || (size_t)(q - a) >= cap)
        return false;
    memcpy(out, a, (size_t)(q - a));
    out[q - a] = '\0';
    return true;
}

/* The <auth> and <source> of a network disk for RBD image path (pool/image) of pool p: the
 * monitors and the cephx user and secret the pool's definition names. */
static int rbd_source(virStoragePoolPtr p, const char *path, struct gc_buf *x,
                      struct gc_error *err)
{
    char *pxml = virStoragePoolGetXMLDesc(p, 0);
    if (!pxml)
        return gc_error_set(err, GC_EBUSY, "", "cannot read the definition of pool %s: %s",
                            virStoragePoolGetName(p), virGetLastErrorMessage());
    const char *src = strstr(pxml, "<source>");
    const char *srcend = src ? strstr(src, "</source>") : NULL;
    int rc = 0;
    char user[256] = "", uuid[64] = "", usage[256] = "";
    const char *auth = src ? strstr(src, "<auth ") : NULL;
    if (auth && auth < srcend) {
        xml_attr(auth, "username", user, sizeof(user));
        const char *sec = strstr(auth, "<secret ");
        if (sec && sec < srcend && !xml_attr(sec, "uuid", uuid, sizeof(uuid)))
            xml_attr(sec, "usage", usage, sizeof(usage));
    }
    if (user[0] && (uuid[0] || usage[0])) {
        rc |= gc_buf_adds(x, "<auth username='");
        rc |= xml_add(x, user);
        rc |= gc_buf_adds(x, uuid[0] ? "'><secret type='ceph' uuid='" : "'><secret type='ceph' usage='");
        rc |= xml_add(x, uuid[0] ? uuid : usage);
        rc |= gc_buf_adds(x, "'/></auth>");
    }
    rc |= gc_buf_adds(x, "<source protocol='rbd' name='");
    rc |= xml_add(x, path);
    rc |= gc_buf_adds(x, "'>");
    for (const char *h = src ? strstr(src, "<host ") : NULL; h && h < srcend;
         h = strstr(h + 1, "<host ")) {
        char name[256] = "", port[16] = "";
        if (!xml_attr(h, "name", name, sizeof(name)))
            continue;
        rc |= gc_buf_adds(x, "<host name='");
        rc |= xml_add(x, name);
        if (xml_attr(h, "port", port, sizeof(port))) {
            rc |= gc_buf_adds(x, "' port='");
            rc |= xml_add(x, port);
        }
        rc |= gc_buf_adds(x, "'/>");
    }
    rc |= gc_buf_adds(x, "</source>");
    free(pxml);
    return rc ? gc_error_set(err, GC_EINTERNAL, "", "disk definition too long") : 0;
}

static int lv_vm_disk(struct gc_compute_conn *c, const char *uuid, const char *pool,
                      const char *name, const char *format, const char *target, bool attach,
                      struct gc_error *err)
{
    virStorageVolPtr v = vol_lookup(c, pool, name, err);
    if (!v)
        return err->code == GC_ENOTFOUND
                   ? gc_error_set(err, GC_EBUSY, "", "volume %s is not in pool %s on the host",
                                  name, pool)
                   : err->code;
    virStorageVolInfo info;
    char *path = virStorageVolGetPath(v);
    virStoragePoolPtr p = virStoragePoolLookupByVolume(v);
    int rc = 0;
    if (!path || !p || virStorageVolGetInfo(v, &info) < 0)
        rc = gc_error_set(err, GC_EBUSY, "", "cannot read volume %s: %s", name,
                          virGetLastErrorMessage());
    virDomainPtr d = rc ? NULL : lookup(c, uuid, err);
    if (!rc && !d)
        rc = err->code;
    struct gc_buf x;
    gc_buf_init(&x, 8192);
    if (!rc) {
        bool block = info.type == VIR_STORAGE_VOL_BLOCK;
        bool net = info.type == VIR_STORAGE_VOL_NETWORK;
        int b = gc_buf_addf(&x, "<disk type='%s' device='disk'><driver name='qemu' type='",
                            net ? "network" : block ? "block" : "file");
        b |= xml_add(&x, format);
        b |= gc_buf_adds(&x, "'/>");
        if (net) {
            rc = rbd_source(p, path, &x, err);
        } else {
            b |= gc_buf_adds(&x, block ? "<source dev='" : "<source file='");
            b |= xml_add(&x, path);
            b |= gc_buf_adds(&x, "'/>");
        }
        b |= gc_buf_adds(&x, "<target dev='");
        b |= xml_add(&x, target);
        b |= gc_buf_adds(&x, "' bus='virtio'/></disk>");
        if (!rc && b)
            rc = gc_error_set(err, GC_EINTERNAL, "", "disk definition too long");
    }
    unsigned flags = VIR_DOMAIN_AFFECT_CONFIG;
    if (!rc && virDomainIsActive(d) == 1)
        flags |= VIR_DOMAIN_AFFECT_LIVE;
    if (!rc && (attach ? virDomainAttachDeviceFlags(d, gc_buf_str(&x), flags)
                       : virDomainDetachDeviceFlags(d, gc_buf_str(&x), flags)) < 0)
        rc = gc_error_set(err, GC_EBUSY, "", "cannot %s %s: %s", attach ? "attach" : "detach",
                          path, virGetLastErrorMessage());
    /* a live detach only asks the guest: done when the device is gone from the domain */
    char dev[64];
    snprintf(dev, sizeof(dev), "<target dev='%s'", target);
    for (int i = 0; !rc && !attach && (flags & VIR_DOMAIN_AFFECT_LIVE) && i <= 100; i++) {
        char *xml = virDomainGetXMLDesc(d, 0);
        bool still = xml && strstr(xml, dev) != NULL;
        free(xml);
        if (!still)
            break;
        if (i == 100)
            rc = gc_error_set(err, GC_EBUSY, "", "the guest did not release %s within 10 s; "
                                                 "the volume stays attached", path);
        else
            nanosleep(&(struct timespec){0, 100 * 1000000L}, NULL);
    }
    gc_buf_release(&x);
    if (d)
        virDomainFree(d);
    if (p)
        virStoragePoolFree(p);
    virStorageVolFree(v);
    free(path);
    virResetLastError();
    return rc;
}

static int lv_vm_nic(struct gc_compute_conn *c, const char *uuid, const struct gc_vm_nic *nic,
                     bool attach, struct gc_error *err)
{
    virDomainPtr d = lookup(c, uuid, err);
    if (!d)
        return err->code;
    struct gc_buf x;
    gc_buf_init(&x, 4096);
    int rc = interface_xml(&x, nic);
    unsigned flags = VIR_DOMAIN_AFFECT_CONFIG;
    if (virDomainIsActive(d) == 1)
        flags |= VIR_DOMAIN_AFFECT_LIVE;
    int r = rc ? -1
               : attach ? virDomainAttachDeviceFlags(d, gc_buf_str(&x), flags)
                        : virDomainDetachDeviceFlags(d, gc_buf_str(&x), flags);
    if (r < 0) {
        int code = virGetLastErrorCode();
        /* absent on detach: what a detach wants; no support: the driver cannot hot-plug */
        rc = gc_error_set(err,
                          !attach && code == VIR_ERR_DEVICE_MISSING ? GC_ENOTFOUND
                          : code == VIR_ERR_NO_SUPPORT              ? GC_EUNSUPPORTED
                                                                    : GC_EBUSY,
                          "", "cannot %s the interface %s: %s", attach ? "attach" : "detach",
                          nic->mac, virGetLastErrorMessage());
    } else
        rc = 0;
    /* a live detach only asks the guest: done when the interface is gone from the domain */
    for (int i = 0; !rc && !attach && (flags & VIR_DOMAIN_AFFECT_LIVE) && i <= 100; i++) {
        char *xml = virDomainGetXMLDesc(d, 0);
        bool still = xml && strstr(xml, nic->mac) != NULL;
        free(xml);
        if (!still)
            break;
        if (i == 100)
            rc = gc_error_set(err, GC_EBUSY, "", "the guest did not release the interface %s "
                                                 "within 10 s; it stays attached", nic->mac);
        else
            nanosleep(&(struct timespec){0, 100 * 1000000L}, NULL);
    }
    gc_buf_release(&x);
    virDomainFree(d);
    virResetLastError();
    return rc;
}

static int lv_vm_resize(struct gc_compute_conn *c, const char *uuid, int vcpus,
                        int64_t memory_mib, struct gc_error *err)
{
    virDomainPtr d = lookup(c, uuid, err);
    if (!d)
        return err->code;
    int rc = 0;
    unsigned long kib = (unsigned long)memory_mib * 1024;
    if (virDomainIsActive(d) == 1)
        rc = gc_error_set(err, GC_ECONFLICT, "", "domain %s runs: stop it before resizing", uuid);
    /* the maximum first (growing), then the current value */
    else if (virDomainSetVcpusFlags(d, (unsigned)vcpus,
                                    VIR_DOMAIN_AFFECT_CONFIG | VIR_DOMAIN_VCPU_MAXIMUM) < 0 ||
             virDomainSetVcpusFlags(d, (unsigned)vcpus, VIR_DOMAIN_AFFECT_CONFIG) < 0 ||
             virDomainSetMemoryFlags(d, kib, VIR_DOMAIN_AFFECT_CONFIG | VIR_DOMAIN_MEM_MAXIMUM) <
                 0 ||
             virDomainSetMemoryFlags(d, kib, VIR_DOMAIN_AFFECT_CONFIG) < 0)
        rc = gc_error_set(err, GC_EBUSY, "", "cannot resize domain %s: %s", uuid,
                          virGetLastErrorMessage());
    virDomainFree(d);
    virResetLastError();
    return rc;
}

/* ---- volume transfers ---- */

struct gc_vol_stream {
    virStreamPtr st;
    virStorageVolPtr vol;
    bool upload;
};

static void stream_free(struct gc_vol_stream *s)
{
    if (s->st)
        virStreamFree(s->st);
    if (s->vol)
        virStorageVolFree(s->vol);
    free(s);
}

static int lv_vol_upload_open(struct gc_compute_conn *c, const char *pool, const char *name,
                              int64_t bytes, struct gc_vol_stream **out, struct gc_error *err)
{
    virStoragePoolPtr p = virStoragePoolLookupByName(c->conn, pool);
    if (!p) {
        int rc = gc_error_set(err, GC_EBUSY, "pool", "storage pool '%s' not found on the host: %s",
                              pool, virGetLastErrorMessage());
        virResetLastError();
        return rc;
    }
    virStorageVolPtr old = virStorageVolLookupByName(p, name);
    if (old) { /* left by an upload that did not end */
        if (virStorageVolDelete(old, 0) < 0)
            gc_warn("compute", "cannot delete the old volume %s: %s", name,
                    virGetLastErrorMessage());
        virStorageVolFree(old);
    }
    virResetLastError();
    struct gc_buf x;
    gc_buf_init(&x, 4096);
    int rc = gc_buf_adds(&x, "<volume><name>");
    rc |= xml_add(&x, name);
    /* allocation 0: a sparse file, not one written full of zeros first */
    rc |= gc_buf_addf(&x,
                      "</name><capacity unit='bytes'>%lld</capacity>"
                      "<allocation unit='bytes'>0</allocation><target><format type='raw'/>"
                      "<permissions><mode>0644</mode></permissions></target></volume>",
                      (long long)bytes);
    struct gc_vol_stream *s = gc_calloc(1, sizeof(*s));
    s->upload = true;
    s->vol = rc ? NULL : virStorageVolCreateXML(p, gc_buf_str(&x), 0);
    gc_buf_release(&x);
    virStoragePoolFree(p);
    if (!s->vol) {
        rc = gc_error_set(err, GC_EBUSY, "", "cannot create volume %s in pool %s: %s", name, pool,
                          virGetLastErrorMessage());
        virResetLastError();
        stream_free(s);
        return rc;
    }
    s->st = virStreamNew(c->conn, 0);
    if (!s->st || virStorageVolUpload(s->vol, s->st, 0, 0, 0) < 0) {
        rc = gc_error_set(err, GC_EBUSY, "", "cannot upload into volume %s: %s", name,
                          virGetLastErrorMessage());
        virResetLastError();
        if (s->st) {
            virStreamFree(s->st);
            s->st = NULL;
        }
        virStorageVolDelete(s->vol, 0);
        virResetLastError();
        stream_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

static int lv_vol_download_open(struct gc_compute_conn *c, const char *pool, const char *name,
                                int64_t *bytes, struct gc_vol_stream **out, struct gc_error *err)
{
    virStorageVolPtr v = vol_lookup(c, pool, name, err);
    if (!v)
        return err->code;
    virStorageVolInfo info;
    struct gc_vol_stream *s = gc_calloc(1, sizeof(*s));
    s->vol = v;
    s->st = virStreamNew(c->conn, 0);
    if (virStorageVolGetInfo(v, &info) < 0 || !s->st ||
        virStorageVolDownload(v, s->st, 0, 0, 0) < 0) {
        int rc = gc_error_set(err, GC_EBUSY, "", "cannot read volume %s: %s", name,
                              virGetLastErrorMessage());
        virResetLastError();
        if (s->st) {
            virStreamFree(s->st);
            s->st = NULL;
        }
        stream_free(s);
        return rc;
    }
    *bytes = (int64_t)info.capacity;
    *out = s;
    return 0;
}

static int lv_vol_send(struct gc_vol_stream *s, const void *p, size_t n, struct gc_error *err)
{
    const char *q = p;
    while (n > 0) {
        int k = virStreamSend(s->st, q, n);
        if (k <= 0) {
            int rc = gc_error_set(err, GC_EBUSY, "", "writing to the volume failed: %s",
                                  virGetLastErrorMessage());
            virResetLastError();
            return rc;
        }
        q += k;
        n -= (size_t)k;
    }
    return 0;
}

static int lv_vol_recv(struct gc_vol_stream *s, void *p, size_t cap, size_t *got,
                       struct gc_error *err)
{
    int k = virStreamRecv(s->st, p, cap);
    if (k < 0) {
        int rc = gc_error_set(err, GC_EBUSY, "", "reading the volume failed: %s",
                              virGetLastErrorMessage());
        virResetLastError();
        return rc;
    }
    *got = (size_t)k;
    return 0;
}

static void lv_vol_stream_abort(struct gc_vol_stream *s)
{
    if (!s)
        return;
    virStreamAbort(s->st);
    if (s->upload && virStorageVolDelete(s->vol, 0) < 0)
        gc_warn("compute", "cannot delete an abandoned upload: %s", virGetLastErrorMessage());
    virResetLastError();
    stream_free(s);
}

static int lv_vol_stream_finish(struct gc_vol_stream *s, char **path, struct gc_error *err)
{
    if (virStreamFinish(s->st) < 0) {
        int rc = gc_error_set(err, GC_EBUSY, "", "the volume transfer failed: %s",
                              virGetLastErrorMessage());
        virResetLastError();
        lv_vol_stream_abort(s);
        return rc;
    }
    int rc = 0;
    if (path) {
        *path = virStorageVolGetPath(s->vol);
        if (!*path)
            rc = gc_error_set(err, GC_EBUSY, "", "the volume has no path: %s",
                              virGetLastErrorMessage());
        virResetLastError();
    }
    stream_free(s);
    return rc;
}

static int lv_vol_path(struct gc_compute_conn *c, const char *pool, const char *name,
                       char **path, struct gc_error *err)
{
    virStorageVolPtr v = vol_lookup(c, pool, name, err);
    if (!v)
        return err->code;
    *path = virStorageVolGetPath(v);
    virStorageVolFree(v);
    int rc = *path ? 0 : gc_error_set(err, GC_EBUSY, "", "volume %s has no path", name);
    virResetLastError();
    return rc;
}

static int lv_vm_vnc(struct gc_compute_conn *c, const char *uuid, char *listen, int *port,
                     char *password, struct gc_error *err)
{
    virDomainPtr d = lookup(c, uuid, err);
    if (!d)
        return err->code;
    int rc = 0;
    /* SECURE: the password is part of the definition only with it */
    char *xml = virDomainIsActive(d) == 1 ? virDomainGetXMLDesc(d, VIR_DOMAIN_XML_SECURE) : NULL;
    const char *g = xml ? strstr(xml, "<graphics type='vnc'") : NULL;
    char p[16] = "";
    listen[0] = password[0] = '\0';
    if (!xml)
        rc = gc_error_set(err, GC_ECONFLICT, "id", "domain %s does not run", uuid);
    else if (!g)
        rc = gc_error_set(err, GC_ECONFLICT, "id",
                          "domain %s has no VNC console (defined before consoles existed)",
                          uuid);
    else if (!xml_attr(g, "port", p, sizeof(p)) || atoi(p) <= 0)
        rc = gc_error_set(err, GC_EBUSY, "", "domain %s has no VNC port yet", uuid);
    else {
        *port = atoi(p);
        if (!xml_attr(g, "listen", listen, 64))
            snprintf(listen, 64, "127.0.0.1");
        (void)xml_attr(g, "passwd", password, 64);
    }
    free(xml);
    virDomainFree(d);
    virResetLastError();
    return rc;
}

/* ---- migration ---- */

/* One disk of a domain being moved: where it is here, where it goes there. */
struct mig_disk {
    char *src_path;           /* as in the domain XML (escaped form == plain: see disk_paths) */
    char *dst_path;
    char pool[128], name[256], format[16], target[16];
    unsigned long long capacity;
    bool file_pool;           /* dir, fs or netfs: a file that can start empty */
    bool readonly;            /* QEMU does not mirror it: copied before a live migration */
};

static void mig_disks_free(struct mig_disk *d, int n)
{
    for (int i = 0; i < n; i++) {
        free(d[i].src_path);
        free(d[i].dst_path);
    }
    free(d);
}

/* Where a local disk's source is in a <disk> element: after "<source file='" (a file) or
 * "<source dev='" (a block device, e.g. LVM); NULL for network disks (RBD: shared storage
 * that stays where it is). */
static const char *source_attr(const char *p, const char *end, size_t *skip)
{
    static const char *const attrs[] = {"<source file='", "<source dev='"};
    for (int i = 0; i < 2; i++) {
        const char *s = strstr(p, attrs[i]);
        if (s && s < end) {
            *skip = strlen(attrs[i]);
            return s;
        }
    }
    return NULL;
}

/* The local disks of a domain's XML: path and target device. govcloud writes these paths
 * itself; one that would need XML escaping is refused rather than guessed at. */
static int disk_paths(const char *xml, struct mig_disk **out, int *n, struct gc_error *err)
{
    *out = NULL;
    *n = 0;
    int cap = 0;
    for (const char *p = strstr(xml, "<disk "); p; p = strstr(p + 1, "<disk ")) {
        const char *end = strstr(p, "</disk>");
        size_t skip = 0;
        const char *s = end ? source_attr(p, end, &skip) : NULL;
        if (!s)
            continue;
        s += skip;
        const char *q = strchr(s, '\'');
        const char *t = strstr(p, "<target dev='");
        if (!q || q > end || !t || t > end)
            continue;
        t += strlen("<target dev='");
        if (memchr(s, '&', (size_t)(q - s)))
            return gc_error_set(err, GC_EUNSUPPORTED, "", "a disk path holds XML escapes");
        if (*n == cap) {
            cap = cap ? cap * 2 : 4;
            *out = gc_realloc(*out, (size_t)cap * sizeof(**out));
        }
        struct mig_disk *d = &(*out)[(*n)++];
        memset(d, 0, sizeof(*d));
        d->src_path = gc_strndup(s, (size_t)(q - s));
        const char *ro = strstr(p, "<readonly/>");
        d->readonly = ro && ro < end;
        snprintf(d->target, sizeof(d->target), "%.*s", (int)strcspn(t, "'"), t);
    }
    return 0;
}

/* xml with every local disk's source path replaced by its path on the destination. */
static char *retarget(const char *xml, const struct mig_disk *d, int n)
{
    struct gc_buf b;
    gc_buf_init(&b, GC_BUF_UNLIMITED);
    const char *p = xml;
    int rc = 0;
    for (;;) {
        size_t skip = 0;
        const char *s = source_attr(p, p + strlen(p), &skip);
        if (!s)
            break;
        s += skip;
        const char *q = strchr(s, '\'');
        if (!q)
            break;
        rc |= gc_buf_add(&b, p, (size_t)(s - p));
        const char *repl = NULL;
        for (int i = 0; i < n; i++)
            if (strlen(d[i].src_path) == (size_t)(q - s) &&
                memcmp(d[i].src_path, s, (size_t)(q - s)) == 0)
                repl = d[i].dst_path;
        if (repl)
            rc |= gc_buf_adds(&b, repl);
        else
            rc |= gc_buf_add(&b, s, (size_t)(q - s));
        p = q;
    }
    rc |= gc_buf_adds(&b, p);
    if (rc) {
        gc_buf_release(&b);
        return NULL;
    }
    return gc_buf_steal(&b);
}

/* The pool, name, format and size of each disk here, and an empty volume of the same name
 * in the pool of the same name there (replacing one a failed attempt left). */
static int prepare_disks(struct gc_compute_conn *src, struct gc_compute_conn *dst,
                         struct mig_disk *d, int n, bool live, struct gc_error *err)
{
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        virStorageVolPtr v = virStorageVolLookupByPath(src->conn, d[i].src_path);
        virStoragePoolPtr sp = v ? virStoragePoolLookupByVolume(v) : NULL;
        if (!sp) {
            rc = gc_error_set(err, GC_EUNSUPPORTED, "",
                              "disk %s is not a volume of a storage pool: cannot move it",
                              d[i].src_path);
            if (v)
                virStorageVolFree(v);
            break;
        }
        snprintf(d[i].pool, sizeof(d[i].pool), "%s", virStoragePoolGetName(sp));
        snprintf(d[i].name, sizeof(d[i].name), "%s", virStorageVolGetName(v));
        virStorageVolInfo info;
        char *vx = virStorageVolGetXMLDesc(v, 0);
        char *px = virStoragePoolGetXMLDesc(sp, 0);
        if (virStorageVolGetInfo(v, &info) < 0 || !vx || !px) {
            rc = gc_error_set(err, GC_EBUSY, "", "cannot read volume %s: %s", d[i].name,
                              virGetLastErrorMessage());
        } else {
            d[i].capacity = info.capacity;
            const char *t = strstr(vx, "<target>");
            const char *f = t ? strstr(t, "<format type='") : NULL;
            snprintf(d[i].format, sizeof(d[i].format), "%.*s", f ? (int)strcspn(f + 14, "'") : 3,
                     f ? f + 14 : "raw");
            d[i].file_pool = strstr(px, "<pool type='dir'") || strstr(px, "<pool type='fs'") ||
                             strstr(px, "<pool type='netfs'");
        }
        free(vx);
        free(px);
        virStoragePoolFree(sp);
        virStorageVolFree(v);
        if (rc)
            break;
        virStoragePoolPtr dp = virStoragePoolLookupByName(dst->conn, d[i].pool);
        if (!dp) {
            rc = gc_error_set(err, GC_ECONFLICT, "host_id",
                              "the destination host has no storage pool '%s' for disk %s",
                              d[i].pool, d[i].name);
            break;
        }
        virStorageVolPtr old = virStorageVolLookupByName(dp, d[i].name);
        if (old) {
            (void)virStorageVolDelete(old, 0);
            virStorageVolFree(old);
        }
        struct gc_buf x;
        gc_buf_init(&x, 4096);
        int b = gc_buf_adds(&x, "<volume><name>");
        b |= xml_add(&x, d[i].name);
        /* live, QEMU writes the guest's view of the disk into an image of the same format
         * and size; shut off, a file starts empty and takes the copied bytes as they are
         * (a block device needs its size either way) */
        bool empty = (!live || d[i].readonly) && d[i].file_pool;
        b |= gc_buf_addf(&x, "</name><capacity unit='B'>%llu</capacity>"
                             "<target><format type='%s'/></target></volume>",
                         empty ? 0ULL : d[i].capacity, empty ? "raw" : d[i].format);
        virStorageVolPtr nv = b ? NULL : virStorageVolCreateXML(dp, gc_buf_str(&x), 0);
        gc_buf_release(&x);
        if (!nv)
            rc = gc_error_set(err, GC_EBUSY, "", "cannot create volume %s on the destination: %s",
                              d[i].name, virGetLastErrorMessage());
        else {
            d[i].dst_path = virStorageVolGetPath(nv);
            virStorageVolFree(nv);
            if (!d[i].dst_path)
                rc = gc_error_set(err, GC_EBUSY, "", "volume %s has no path", d[i].name);
        }
        virStoragePoolFree(dp);
    }
    virResetLastError();
    return rc;
}

/* Removes the volumes prepare_disks made there (a failed move). */
static void drop_disks(struct gc_compute_conn *dst, const struct mig_disk *d, int n)
{
    for (int i = 0; i < n; i++) {
        if (!d[i].dst_path)
            continue;
        virStorageVolPtr v = virStorageVolLookupByPath(dst->conn, d[i].dst_path);
        if (v) {
            (void)virStorageVolDelete(v, 0);
            virStorageVolFree(v);
        }
    }
    virResetLastError();
}

/* Copies the bytes of a volume here into the volume there, through libvirt streams: no
 * path between the hosts is needed but govcloud's own connections. */
static int copy_volume(struct gc_compute_conn *src, struct gc_compute_conn *dst,
                       const struct mig_disk *d, struct gc_error *err)
{
    virStorageVolPtr sv = virStorageVolLookupByPath(src->conn, d->src_path);
    virStorageVolPtr dv = virStorageVolLookupByPath(dst->conn, d->dst_path);
    virStreamPtr in = virStreamNew(src->conn, 0), out = virStreamNew(dst->conn, 0);
    int rc = 0;
    bool started = false;
    if (!sv || !dv || !in || !out || virStorageVolDownload(sv, in, 0, 0, 0) < 0 ||
        virStorageVolUpload(dv, out, 0, 0, 0) < 0) {
        rc = gc_error_set(err, GC_EBUSY, "", "cannot copy volume %s: %s", d->name,
                          virGetLastErrorMessage());
    } else {
        started = true;
        size_t cap = 1 << 20;
        char *buf = gc_malloc(cap);
        for (;;) {
            int got = virStreamRecv(in, buf, cap);
            if (got < 0) {
                rc = gc_error_set(err, GC_EBUSY, "", "reading volume %s: %s", d->name,
                                  virGetLastErrorMessage());
                break;
            }
            if (got == 0)
                break;
            for (int off = 0; off < got && !rc;) {
                int sent = virStreamSend(out, buf + off, (size_t)(got - off));
                if (sent < 0)
                    rc = gc_error_set(err, GC_EBUSY, "", "writing volume %s: %s", d->name,
                                      virGetLastErrorMessage());
                else
                    off += sent;
            }
            if (rc)
                break;
        }
        free(buf);
    }
    if (started && !rc && (virStreamFinish(in) < 0 || virStreamFinish(out) < 0))
        rc = gc_error_set(err, GC_EBUSY, "", "finishing the copy of volume %s: %s", d->name,
                          virGetLastErrorMessage());
    else if (started && rc) {
        (void)virStreamAbort(in);
        (void)virStreamAbort(out);
    }
    if (in)
        virStreamFree(in);
    if (out)
        virStreamFree(out);
    if (sv)
        virStorageVolFree(sv);
    if (dv)
        virStorageVolFree(dv);
    virResetLastError();
    return rc;
}

static int lv_vm_migrate(struct gc_compute_conn *src, struct gc_compute_conn *dst,
                         const char *uuid, json_t **src_volumes, struct gc_error *err)
{
    *src_volumes = NULL;
    virDomainPtr d = lookup(src, uuid, err);
    if (!d)
        return err->code;
    int state = 0, reason = 0, rc = 0;
    if (virDomainGetState(d, &state, &reason, 0) < 0) {
        rc = gc_error_set(err, GC_EBUSY, "", "cannot read the state of %s: %s", uuid,
                          virGetLastErrorMessage());
        virDomainFree(d);
        return rc;
    }
    bool live = state == VIR_DOMAIN_RUNNING || state == VIR_DOMAIN_PAUSED ||
                state == VIR_DOMAIN_BLOCKED;
    char *inactive = virDomainGetXMLDesc(d, VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_MIGRATABLE |
                                               VIR_DOMAIN_XML_SECURE);
    char *active = live ? virDomainGetXMLDesc(d, VIR_DOMAIN_XML_MIGRATABLE |
                                                     VIR_DOMAIN_XML_SECURE)
                        : NULL;
    struct mig_disk *disks = NULL;
    int n = 0;
    if (!inactive || (live && !active))
        rc = gc_error_set(err, GC_EBUSY, "", "cannot read the definition of %s: %s", uuid,
                          virGetLastErrorMessage());
    /* the disks of the definition and of the running domain are the same volumes (attach
     * and detach change both) */
    if (!rc)
        rc = disk_paths(active ? active : inactive, &disks, &n, err);
    if (!rc)
        rc = prepare_disks(src, dst, disks, n, live, err);
    char *dxml = rc ? NULL : retarget(inactive, disks, n);
    char *axml = rc || !live ? NULL : retarget(active, disks, n);
    if (!rc && (!dxml || (live && !axml)))
        rc = gc_error_set(err, GC_EINTERNAL, "", "out of memory");
    if (!rc && live) {
        virTypedParameterPtr params = NULL;
        int np = 0, maxp = 0;
        if (virTypedParamsAddString(&params, &np, &maxp, VIR_MIGRATE_PARAM_DEST_XML, axml) < 0 ||
            virTypedParamsAddString(&params, &np, &maxp, VIR_MIGRATE_PARAM_PERSIST_XML, dxml) <
                0)
            rc = gc_error_set(err, GC_EINTERNAL, "", "out of memory");
        /* exactly the local disks are copied; network disks (RBD) are shared. QEMU cannot
         * mirror a read-only disk (libvirt refuses it): the config drive never changes, so
         * its bytes go first, through streams, and the destination opens the copy */
        int nrw = 0;
        for (int i = 0; !rc && i < n; i++) {
            if (disks[i].readonly)
                rc = copy_volume(src, dst, &disks[i], err);
            else if (virTypedParamsAddString(&params, &np, &maxp,
                                             VIR_MIGRATE_PARAM_MIGRATE_DISKS,
                                             disks[i].target) < 0)
                rc = gc_error_set(err, GC_EINTERNAL, "", "out of memory");
            else
                nrw++;
        }
        unsigned flags = VIR_MIGRATE_LIVE | VIR_MIGRATE_PERSIST_DEST |
                         VIR_MIGRATE_UNDEFINE_SOURCE | VIR_MIGRATE_AUTO_CONVERGE |
                         VIR_MIGRATE_ABORT_ON_ERROR;
        if (nrw > 0)
            flags |= VIR_MIGRATE_NON_SHARED_DISK;
        virDomainPtr moved = rc ? NULL : virDomainMigrate3(d, dst->conn, params, (unsigned)np,
                                                           flags);
        if (!rc && !moved)
            rc = gc_error_set(err, GC_EBUSY, "", "live migration of %s failed: %s", uuid,
                              virGetLastErrorMessage());
        if (moved)
            virDomainFree(moved);
        virTypedParamsFree(params, np);
    } else if (!rc) {
        /* shut off: the volumes' bytes, then the definition */
        for (int i = 0; i < n && !rc; i++)
            rc = copy_volume(src, dst, &disks[i], err);
        if (!rc) {
            for (int i = 0; i < n; i++) {
                virStoragePoolPtr p = virStoragePoolLookupByName(dst->conn, disks[i].pool);
                if (p) {
                    (void)virStoragePoolRefresh(p, 0); /* learns the copied format */
                    virStoragePoolFree(p);
                }
            }
            virDomainPtr nd = virDomainDefineXML(dst->conn, dxml);
            if (!nd)
                rc = gc_error_set(err, GC_EBUSY, "", "cannot define %s on the destination: %s",
                                  uuid, virGetLastErrorMessage());
            else
                virDomainFree(nd);
        }
        if (!rc && virDomainUndefineFlags(d, VIR_DOMAIN_UNDEFINE_NVRAM) < 0 &&
            virDomainUndefine(d) < 0)
            rc = gc_error_set(err, GC_EBUSY, "", "cannot undefine %s here: %s", uuid,
                              virGetLastErrorMessage());
    }
    if (rc) {
        /* a definition made there is gone again, and so are the volumes */
        virDomainPtr there = virDomainLookupByUUIDString(dst->conn, uuid);
        if (there) {
            if (virDomainIsActive(there) != 1)
                (void)virDomainUndefine(there);
            virDomainFree(there);
        }
        drop_disks(dst, disks, n);
    } else {
        json_t *vols = json_array();
        for (int i = 0; i < n; i++)
            json_array_append_new(vols, json_pack("{s:s,s:s}", "pool", disks[i].pool, "name",
                                                  disks[i].name));
        *src_volumes = vols;
    }
    free(dxml);
    free(axml);
    free(inactive);
    free(active);
    mig_disks_free(disks, n);
    virDomainFree(d);
    virResetLastError();
    return rc;
}

/* ---- monitoring ---- */

/* A numeric typed parameter of any integer or double type, as a double; false if absent. */
static bool tp_num(const virTypedParameterPtr p, int n, const char *name, double *v)
{
    for (int i = 0; i < n; i++) {
        if (strcmp(p[i].field, name) != 0)
            continue;
        switch (p[i].type) {
        case VIR_TYPED_PARAM_INT:
            *v = p[i].value.i;
            return true;
        case VIR_TYPED_PARAM_UINT:
            *v = p[i].value.ui;
            return true;
        case VIR_TYPED_PARAM_LLONG:
            *v = (double)p[i].value.l;
            return true;
        case VIR_TYPED_PARAM_ULLONG:
            *v = (double)p[i].value.ul;
            return true;
        case VIR_TYPED_PARAM_DOUBLE:
            *v = p[i].value.d;
            return true;
        default:
            return false;
        }
    }
    return false;
}

static void tp_set(json_t *o, const char *key, const virTypedParameterPtr p, int n,
                   const char *name, double scale)
{
    double v;
    if (tp_num(p, n, name, &v))
        json_object_set_new(o, key, json_real(v * scale));
}

static int lv_node_stats(struct gc_compute_conn *c, json_t **out, struct gc_error *err)
{
    (void)err;
    json_t *o = json_object();
    int n = 0;
    if (virNodeGetCPUStats(c->conn, VIR_NODE_CPU_STATS_ALL_CPUS, NULL, &n, 0) == 0 && n > 0 &&
        n < 64) {
        virNodeCPUStats cs[64];
        memset(cs, 0, sizeof(cs));
        if (virNodeGetCPUStats(c->conn, VIR_NODE_CPU_STATS_ALL_CPUS, cs, &n, 0) == 0) {
            json_t *cpu = json_object();
            for (int i = 0; i < n; i++) {
                const char *f = cs[i].field;
                if (strcmp(f, VIR_NODE_CPU_STATS_KERNEL) == 0)
                    f = "system";
                if (strcmp(f, VIR_NODE_CPU_STATS_UTILIZATION) == 0)
                    continue;
                json_object_set_new(cpu, f, json_real((double)cs[i].value / 1e9));
            }
            json_object_set_new(o, "cpu_seconds", cpu);
        }
    }
    virResetLastError();
    n = 0;
    if (virNodeGetMemoryStats(c->conn, VIR_NODE_MEMORY_STATS_ALL_CELLS, NULL, &n, 0) == 0 &&
        n > 0 && n < 64) {
        virNodeMemoryStats ms[64];
        memset(ms, 0, sizeof(ms));
        if (virNodeGetMemoryStats(c->conn, VIR_NODE_MEMORY_STATS_ALL_CELLS, ms, &n, 0) == 0) {
            json_t *mem = json_object();
            for (int i = 0; i < n; i++) /* KiB */
                json_object_set_new(mem, ms[i].field, json_real((double)ms[i].value * 1024.0));
            json_object_set_new(o, "memory_bytes", mem);
        }
    }
    virResetLastError();
    *out = o;
    return 0;
}

static int lv_domain_stats(struct gc_compute_conn *c, json_t **out, struct gc_error *err)
{
    static const char *const st[] = {"nostate", "running", "blocked", "paused",
                                     "shutdown", "shutoff", "crashed", "pmsuspended"};
    virDomainStatsRecordPtr *recs = NULL;
    unsigned int what = VIR_DOMAIN_STATS_STATE | VIR_DOMAIN_STATS_CPU_TOTAL |
                        VIR_DOMAIN_STATS_BALLOON | VIR_DOMAIN_STATS_VCPU |
                        VIR_DOMAIN_STATS_INTERFACE | VIR_DOMAIN_STATS_BLOCK;
    int n = virConnectGetAllDomainStats(c->conn, what, &recs, 0);
    if (n < 0)
        return gc_error_set(err, GC_EBUSY, "", "cannot read domain statistics: %s",
                            virGetLastErrorMessage());
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) {
        virTypedParameterPtr p = recs[i]->params;
        int np = recs[i]->nparams;
        char uuid[VIR_UUID_STRING_BUFLEN];
        if (virDomainGetUUIDString(recs[i]->dom, uuid) < 0)
            continue;
        json_t *d = json_pack("{s:s}", "uuid", uuid);
        double v;
        if (tp_num(p, np, "state.state", &v))
            json_object_set_new(d, "state",
                                json_string(v >= 0 && v < 8 ? st[(int)v] : "unknown"));
        tp_set(d, "cpu_seconds", p, np, "cpu.time", 1e-9);
        tp_set(d, "vcpus", p, np, "vcpu.current", 1);
        tp_set(d, "memory_bytes", p, np, "balloon.current", 1024);
        tp_set(d, "memory_rss_bytes", p, np, "balloon.rss", 1024);
        tp_set(d, "memory_available_bytes", p, np, "balloon.available", 1024);
        tp_set(d, "memory_unused_bytes", p, np, "balloon.unused", 1024);
        static const char *const nf[][2] = {
            {"rx_bytes", "rx.bytes"}, {"tx_bytes", "tx.bytes"}, {"rx_packets", "rx.pkts"},
            {"tx_packets", "tx.pkts"}, {"rx_errors", "rx.errs"}, {"tx_errors", "tx.errs"},
            {"rx_drops", "rx.drop"},   {"tx_drops", "tx.drop"}};
        static const char *const bf[][2] = {
            {"read_bytes", "rd.bytes"},        {"write_bytes", "wr.bytes"},
            {"read_requests", "rd.reqs"},      {"write_requests", "wr.reqs"},
            {"capacity_bytes", "capacity"},    {"allocation_bytes", "allocation"}};
        struct {
            const char *prefix, *key;
            const char *const (*f)[2];
            size_t nf;
        } groups[] = {{"net", "interfaces", nf, sizeof(nf) / sizeof(nf[0])},
                      {"block", "disks", bf, sizeof(bf) / sizeof(bf[0])}};
        for (size_t g = 0; g < 2; g++) {
            char name[64];
            snprintf(name, sizeof(name), "%s.count", groups[g].prefix);
            double cnt = 0;
            if (!tp_num(p, np, name, &cnt))
                continue;
            json_t *list = json_array();
            for (int k = 0; k < (int)cnt && k < 256; k++) {
                const char *dev = NULL;
                snprintf(name, sizeof(name), "%s.%d.name", groups[g].prefix, k);
                if (virTypedParamsGetString(p, np, name, &dev) != 1 || !dev)
                    continue;
                json_t *e = json_pack("{s:s}", "name", dev);
                for (size_t f = 0; f < groups[g].nf; f++) {
                    snprintf(name, sizeof(name), "%s.%d.%s", groups[g].prefix, k,
                             groups[g].f[f][1]);
                    tp_set(e, groups[g].f[f][0], p, np, name, 1);
                }
                json_array_append_new(list, e);
            }
            json_object_set_new(d, groups[g].key, list);
        }
        json_array_append_new(arr, d);
    }
    virDomainStatsRecordListFree(recs);
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
    .has_kvm = lv_has_kvm,
    .vm_define = lv_vm_define,
    .vm_start = lv_vm_start,
    .vm_shutdown = lv_vm_shutdown,
    .vm_destroy = lv_vm_destroy,
    .vm_reboot = lv_vm_reboot,
    .vm_undefine = lv_vm_undefine,
    .vm_state = lv_vm_state,
    .net_ensure = lv_net_ensure,
    .net_dhcp_host = lv_net_dhcp_host,
    .net_remove = lv_net_remove,
    .fw_group_define = lv_fw_group_define,
    .fw_vm_define = lv_fw_vm_define,
    .fw_remove = lv_fw_remove,
    .vol_create = lv_vol_create,
    .vol_clone = lv_vol_clone,
    .vol_delete = lv_vol_delete,
    .vol_resize = lv_vol_resize,
    .vol_upload = lv_vol_upload,
    .vm_vnc = lv_vm_vnc,
    .vm_disk = lv_vm_disk,
    .vm_resize = lv_vm_resize,
    .vm_migrate = lv_vm_migrate,
    .vm_nic = lv_vm_nic,
    .vol_upload_open = lv_vol_upload_open,
    .vol_download_open = lv_vol_download_open,
    .vol_send = lv_vol_send,
    .vol_recv = lv_vol_recv,
    .vol_stream_finish = lv_vol_stream_finish,
    .vol_stream_abort = lv_vol_stream_abort,
    .vol_path = lv_vol_path,
    .node_stats = lv_node_stats,
    .domain_stats = lv_domain_stats,
};

const struct gc_compute_driver *gc_compute_driver_for(const char *uri, struct gc_error *err)
{
    static const struct gc_compute_driver *const drivers[] = {&gc_compute_libvirt};
    for (size_t i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++)
        if (drivers[i]->handles(uri)) {
            if (drivers[i] == &gc_compute_libvirt && gc_compute_libvirt_uri_check(uri, err))
                return NULL;
            return drivers[i];
        }
    gc_error_set(err, GC_EINVAL, "uri",
                 "no compute driver for URI '%.128s'; supported: qemu:///system, "
                 "qemu+ssh://HOST/system, qemu+tls://HOST/system, test:///default",
                 uri);
    return NULL;
}
