/* The jobs behind images and virtual machines: checksumming an image, and creating,
 * starting, stopping, rebooting and deleting a VM through its host's compute driver. Each
 * can run again after a crash: it looks at what the hypervisor has before it acts. */
#include "core/core.h"
#include "crypto/crypto.h"
#include "drivers/configdrive.h"
#include "sched/hostmgr.h"
#include "sched/imagestore.h"
#include "sched/runner.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <time.h>
#include <unistd.h>

/* Set once at registration, before any job runs. */
static const struct gc_config *cfg;
static struct gc_store *the_store;

static struct gc_store *job_store(void)
{
    return the_store;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Runs one UPDATE in its own write transaction. */
static int exec1(const char *sql, const struct gc_val *args, size_t n, struct gc_error *err)
{
    struct gc_tx *tx;
    int rc = gc_tx_begin(job_store(), GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    rc = gc_tx_exec(tx, sql, args, n, NULL, err);
    if (rc) {
        gc_tx_rollback(tx);
        return rc;
    }
    return gc_tx_commit(tx, err);
}

static void set_vm(const char *id, const char *state, const char *power, const char *error)
{
    struct gc_error err = {0};
    struct gc_tx *tx = NULL;
    int64_t now = gc_now_ms();
    int rc = gc_tx_begin(job_store(), GC_TX_WRITE, &tx, &err);
    bool began = rc == 0;
    if (!rc)
        rc = gc_tx_exec(tx,
                        "UPDATE vms SET state = COALESCE(?, state), power_state ="
                        " COALESCE(?, power_state), last_error = COALESCE(?, last_error),"
                        " drift = '', updated_at = ?, version = version + 1 WHERE id = ?",
                        GC_ARGS(GC_VTXT(state), GC_VTXT(power), GC_VTXT(error), GC_VINT_(now),
                                GC_VTXT(id)),
                        NULL, &err);
    /* the record and its incident change together */
    if (!rc)
        rc = gc_vm_incident_sync(tx, id, now, &err);
    if (rc) {
        if (began)
            gc_tx_rollback(tx);
    } else {
        rc = gc_tx_commit(tx, &err);
    }
    if (rc)
        gc_err("vms", "vm %s: cannot record state: %s", id, err.msg);
}

/* The connection to a host, waiting a little for one that is (re)connecting: after a
 * restart, jobs run again before the host manager has connected the hosts. */
static int acquire(const char *host, const struct gc_compute_driver **drv,
                   struct gc_compute_conn **c, struct gc_error *err)
{
    for (int i = 0;; i++) {
        int rc = gc_hostmgr_acquire(host, drv, c, err);
        if (rc != GC_EBUSY || i >= 75) /* 15 s */
            return rc;
        gc_error_clear(err);
        sleep_ms(200);
    }
}

/* ---- image.import ---- */

static int image_import(struct gc_job_run *job, const json_t *params, json_t **result,
                        struct gc_error *err)
{
    const char *id = json_string_value(json_object_get(params, "image_id"));
    if (!id)
        return gc_error_set(err, GC_EINVAL, "image_id", "job without image_id");
    char kind[16] = "", f1[1100] = "", f2[1100] = "";
    struct gc_tx *tx;
    int rc = gc_tx_begin(job_store(), GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    struct gc_rows *r = NULL;
    rc = gc_tx_query(tx, "SELECT kind, kernel_path, initrd_path, disk_path FROM images WHERE id = ?",
                     GC_ARGS(GC_VTXT(id)), &r, err);
    if (!rc && gc_rows_next(r, err) > 0) {
        snprintf(kind, sizeof(kind), "%s", gc_rows_text(r, 0));
        bool k = strcmp(kind, "kernel") == 0;
        snprintf(f1, sizeof(f1), "%s", gc_rows_text(r, k ? 1 : 3));
        snprintf(f2, sizeof(f2), "%s", k ? gc_rows_text(r, 2) : "");
    } else if (!rc) {
        rc = gc_error_set(err, GC_ENOTFOUND, "image_id", "image %s is gone", id);
    }
    gc_rows_free(r);
    gc_tx_rollback(tx);
    if (rc)
        return rc;
    gc_job_progress(job, 10, "computing SHA-256 and SM3 checksums");
    char sha[65] = "", sm3[65] = "";
    int64_t size = 0;
    rc = gc_image_checksum(kind, f1, f2, sha, sm3, &size, err);
    struct gc_error e2 = {0};
    if (rc) {
        exec1("UPDATE images SET state = 'error', last_error = ?, updated_at = ?,"
              " version = version + 1 WHERE id = ?",
              GC_ARGS(GC_VTXT(err->msg), GC_VINT_(gc_now_ms()), GC_VTXT(id)), &e2);
        return rc;
    }
    rc = exec1("UPDATE images SET state = 'active', sha256 = ?, sm3 = ?, size_bytes = ?,"
               " last_error = '', updated_at = ?, version = version + 1 WHERE id = ?",
               GC_ARGS(GC_VTXT(sha), GC_VTXT(sm3), GC_VINT_(size), GC_VINT_(gc_now_ms()),
                       GC_VTXT(id)),
               err);
    if (!rc)
        *result = json_pack("{s:s,s:s,s:I}", "sha256", sha, "sm3", sm3, "size_bytes",
                            (json_int_t)size);
    return rc;
}

/* ---- virtual machines ---- */

struct vm_info {
    char id[GC_ID_LEN + 1];
    char host[GC_ID_LEN + 1];
    bool host_local; /* the hypervisor runs on this machine (its files are ours to tidy) */
    char domain[64];
    int64_t vcpus, mem, disk;
    char kind[16], format[16], arch[33];
    char kernel[1100], initrd[1100], cmdline[1100], disk_path[1100];
    char sha[65], sm3[65];
    char image[GC_ID_LEN + 1];
    bool uploaded; /* kept by the image store, copied to the host on first use */
};

static int load_vm(const char *id, struct vm_info *v, struct gc_error *err)
{
    memset(v, 0, sizeof(*v));
    struct gc_tx *tx;
    int rc = gc_tx_begin(job_store(), GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    struct gc_rows *r = NULL;
    rc = gc_tx_query(tx,
                     "SELECT v.id, COALESCE(v.host_id, ''), v.domain_name, v.vcpus,"
                     " v.memory_mib, v.disk_gib, i.kind, i.format, i.arch, i.kernel_path,"
                     " i.initrd_path, i.cmdline, i.disk_path, i.sha256, i.sm3,"
                     " COALESCE(h.uri, ''), i.id, i.source"
                     " FROM vms v JOIN images i ON i.id = v.image_id"
                     " LEFT JOIN hosts h ON h.id = v.host_id WHERE v.id = ?",
                     GC_ARGS(GC_VTXT(id)), &r, err);
    if (!rc && gc_rows_next(r, err) > 0) {
        snprintf(v->id, sizeof(v->id), "%s", gc_rows_text(r, 0));
        snprintf(v->host, sizeof(v->host), "%s", gc_rows_text(r, 1));
        snprintf(v->domain, sizeof(v->domain), "%s", gc_rows_text(r, 2));
        v->vcpus = gc_rows_int(r, 3);
        v->mem = gc_rows_int(r, 4);
        v->disk = gc_rows_int(r, 5);
        snprintf(v->kind, sizeof(v->kind), "%s", gc_rows_text(r, 6));
        snprintf(v->format, sizeof(v->format), "%s", gc_rows_text(r, 7));
        snprintf(v->arch, sizeof(v->arch), "%s", gc_rows_text(r, 8));
        snprintf(v->kernel, sizeof(v->kernel), "%s", gc_rows_text(r, 9));
        snprintf(v->initrd, sizeof(v->initrd), "%s", gc_rows_text(r, 10));
        snprintf(v->cmdline, sizeof(v->cmdline), "%s", gc_rows_text(r, 11));
        snprintf(v->disk_path, sizeof(v->disk_path), "%s", gc_rows_text(r, 12));
        snprintf(v->sha, sizeof(v->sha), "%s", gc_rows_text(r, 13));
        snprintf(v->sm3, sizeof(v->sm3), "%s", gc_rows_text(r, 14));
        const char *uri = gc_rows_text(r, 15);
        v->host_local = strncmp(uri, "qemu:///", 8) == 0 || strncmp(uri, "test:///", 8) == 0;
        snprintf(v->image, sizeof(v->image), "%s", gc_rows_text(r, 16));
        v->uploaded = strcmp(gc_rows_text(r, 17), "upload") == 0;
    } else if (!rc) {
        rc = gc_error_set(err, GC_ENOTFOUND, "vm_id", "virtual machine %s is gone", id);
    }
    gc_rows_free(r);
    gc_tx_rollback(tx);
    return rc;
}

/* Waits until the domain reaches one of the wanted states (comma list) or the time is up. */
static int wait_state(const struct gc_compute_driver *drv, struct gc_compute_conn *c,
                      const char *uuid, const char *want, int timeout_ms, char *state, size_t cap,
                      struct gc_error *err)
{
    int64_t deadline = gc_now_ms() + timeout_ms;
    for (;;) {
        int rc = drv->vm_state(c, uuid, state, cap, err);
        if (rc)
            return rc;
        char w[128];
        snprintf(w, sizeof(w), ",%s,", want);
        char s[64];
        snprintf(s, sizeof(s), ",%s,", state);
        if (strstr(w, s))
            return 0;
        if (gc_now_ms() >= deadline)
            return GC_EBUSY;
        sleep_ms(200);
    }
}

/* The VM's interfaces with what the host needs to realise their networks. */
struct nic_info {
    char network[64]; /* libvirt name: gc-<network id> */
    char mode[16], bridge[16], gw4[64], gw6[64], mac[24], ipv4[64];
    int p4, p6;
};

static int load_nics(const char *vm, struct nic_info **out, int *n, struct gc_error *err)
{
    *out = NULL;
    *n = 0;
    struct gc_tx *tx;
    int rc = gc_tx_begin(job_store(), GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    struct gc_rows *r = NULL;
    rc = gc_tx_query(tx,
                     "SELECT x.network_id, n.mode, n.bridge, n.ipv4_gateway, n.ipv4_cidr,"
                     " n.ipv6_gateway, n.ipv6_cidr, x.mac, x.ipv4 FROM vm_nics x"
                     " JOIN networks n ON n.id = x.network_id WHERE x.vm_id = ?"
                     " ORDER BY x.position",
                     GC_ARGS(GC_VTXT(vm)), &r, err);
    while (!rc && (rc = gc_rows_next(r, err)) > 0) {
        rc = 0;
        *out = gc_realloc(*out, (size_t)(*n + 1) * sizeof(**out));
        struct nic_info *x = &(*out)[(*n)++];
        memset(x, 0, sizeof(*x));
        snprintf(x->network, sizeof(x->network), "gc-%s", gc_rows_text(r, 0));
        snprintf(x->mode, sizeof(x->mode), "%s", gc_rows_text(r, 1));
        snprintf(x->bridge, sizeof(x->bridge), "%s", gc_rows_text(r, 2));
        snprintf(x->gw4, sizeof(x->gw4), "%s", gc_rows_text(r, 3));
        const char *slash = strchr(gc_rows_text(r, 4), '/');
        x->p4 = slash ? atoi(slash + 1) : 24;
        snprintf(x->gw6, sizeof(x->gw6), "%s", gc_rows_text(r, 5));
        slash = strchr(gc_rows_text(r, 6), '/');
        x->p6 = slash ? atoi(slash + 1) : 64;
        snprintf(x->mac, sizeof(x->mac), "%s", gc_rows_text(r, 7));
        snprintf(x->ipv4, sizeof(x->ipv4), "%s", gc_rows_text(r, 8));
    }
    gc_rows_free(r);
    gc_tx_rollback(tx);
    if (rc < 0) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return rc < 0 ? rc : 0;
}

/* The security groups of a VM with their rules: [{"id", "rules": [...]}]. */
static int load_groups(const char *vm, json_t **out, struct gc_error *err)
{
    struct gc_tx *tx;
    int rc = gc_tx_begin(job_store(), GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    struct gc_rows *r = NULL;
    json_t *arr = json_array();
    rc = gc_tx_query(tx, "SELECT group_id FROM vm_security_groups WHERE vm_id = ? ORDER BY group_id",
                     GC_ARGS(GC_VTXT(vm)), &r, err);
    while (!rc && (rc = gc_rows_next(r, err)) > 0) {
        rc = 0;
        json_array_append_new(arr, json_pack("{s:s}", "id", gc_rows_text(r, 0)));
    }
    if (rc > 0)
        rc = 0;
    gc_rows_free(r);
    size_t i;
    json_t *g;
    json_array_foreach(arr, i, g) {
        json_t *rules = NULL;
        if (!rc && !(rc = gc_sg_rules(tx, json_string_value(json_object_get(g, "id")), &rules,
                                      err)))
            json_object_set_new(g, "rules", rules);
    }
    gc_tx_rollback(tx);
    if (rc) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return 0;
}

/* Defines the groups' filters and the VM's filter on the host. */
static int apply_vm_filter(const struct gc_compute_driver *drv, struct gc_compute_conn *c,
                           const char *vm, json_t *groups, struct gc_error *err)
{
    size_t ng = json_array_size(groups);
    char names[8][64];
    const char *refs[8];
    bool egress = false;
    int rc = 0;
    for (size_t i = 0; !rc && i < ng && i < 8; i++) {
        json_t *g = json_array_get(groups, i);
        json_t *rules = json_object_get(g, "rules");
        size_t nr = json_array_size(rules);
        struct gc_fw_rule *fr = gc_calloc(nr ? nr : 1, sizeof(*fr));
        for (size_t k = 0; k < nr; k++) {
            json_t *r = json_array_get(rules, k);
            fr[k].direction = json_string_value(json_object_get(r, "direction"));
            fr[k].protocol = json_string_value(json_object_get(r, "protocol"));
            fr[k].port_min = (int)json_integer_value(json_object_get(r, "port_min"));
            fr[k].port_max = (int)json_integer_value(json_object_get(r, "port_max"));
            fr[k].cidr = json_string_value(json_object_get(r, "cidr"));
            egress |= strcmp(fr[k].direction, "egress") == 0;
        }
        snprintf(names[i], sizeof(names[i]), "gc-sg-%s",
                 json_string_value(json_object_get(g, "id")));
        refs[i] = names[i];
        rc = drv->fw_group_define(c, names[i], fr, (int)nr, err);
        free(fr);
    }
    char vmfilter[64];
    snprintf(vmfilter, sizeof(vmfilter), "gc-vm-%s", vm);
    if (!rc)
        rc = drv->fw_vm_define(c, vmfilter, refs, (int)(ng < 8 ? ng : 8), egress, err);
    return rc;
}

/* Makes a host ready for a VM: its networks running with the VM's addresses pinned in
 * their DHCP, and the VM's security group filters defined. vnics (4) get the interfaces
 * for the domain (filtered by vmfilter (64) when the VM has groups); *nics (malloc'd) the
 * interfaces as recorded. */
static int host_prepare(const struct gc_compute_driver *drv, struct gc_compute_conn *c,
                        const char *vm, struct nic_info **nics, int *nnics,
                        struct gc_vm_nic *vnics, char *vmfilter, struct gc_error *err)
{
    int rc = load_nics(vm, nics, nnics, err);
    for (int i = 0; !rc && i < *nnics && i < 4; i++) {
        const struct nic_info *ni = &(*nics)[i];
        struct gc_net_spec ns = {.name = ni->network,
                                 .mode = ni->mode,
                                 .bridge = ni->bridge,
                                 .ipv4_gateway = ni->gw4,
                                 .ipv4_prefix = ni->p4,
                                 .ipv6_gateway = ni->gw6,
                                 .ipv6_prefix = ni->p6};
        rc = drv->net_ensure(c, &ns, err);
        if (!rc && strcmp(ni->mode, "bridge") != 0)
            rc = drv->net_dhcp_host(c, ni->network, ni->mac, ni->ipv4, true, err);
        vnics[i].network = ni->network;
        vnics[i].mac = ni->mac;
    }
    /* security groups: the groups' filters and the VM's own, referenced by each interface */
    snprintf(vmfilter, 64, "gc-vm-%s", vm);
    json_t *groups = NULL;
    if (!rc && *nnics > 0)
        rc = load_groups(vm, &groups, err);
    if (!rc && json_array_size(groups) > 0) {
        rc = apply_vm_filter(drv, c, vm, groups, err);
        for (int i = 0; !rc && i < *nnics && i < 4; i++)
            vnics[i].filter = vmfilter;
    }
    json_decref(groups);
    return rc;
}

/* What host_prepare left on a host for a VM that is no longer there: the DHCP pins and its
 * own filter (absent ones are fine). */
static int host_forget(const struct gc_compute_driver *drv, struct gc_compute_conn *c,
                       const char *vm, struct gc_error *err)
{
    struct nic_info *nics = NULL;
    int nnics = 0;
    int rc = load_nics(vm, &nics, &nnics, err);
    for (int i = 0; !rc && i < nnics; i++)
        if (strcmp(nics[i].mode, "bridge") != 0)
            rc = drv->net_dhcp_host(c, nics[i].network, nics[i].mac, nics[i].ipv4, false, err);
    free(nics);
    json_t *groups = NULL;
    if (!rc && nnics > 0)
        rc = load_groups(vm, &groups, err);
    if (!rc && json_array_size(groups) > 0) {
        char vmfilter[64];
        snprintf(vmfilter, sizeof(vmfilter), "gc-vm-%s", vm);
        rc = drv->fw_remove(c, vmfilter, err);
        if (rc == GC_ENOTFOUND) {
            rc = 0;
            gc_error_clear(err);
        }
    }
    json_decref(groups);
    return rc;
}

/* The VM's name and user data (malloc'd; "" when none). */
static int load_user_data(const char *vm, char *name, size_t cap, char **udata,
                          struct gc_error *err)
{
    *udata = NULL;
    struct gc_tx *tx;
    int rc = gc_tx_begin(job_store(), GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    struct gc_rows *r = NULL;
    rc = gc_tx_query(tx, "SELECT name, user_data FROM vms WHERE id = ?", GC_ARGS(GC_VTXT(vm)),
                     &r, err);
    if (!rc && (rc = gc_rows_next(r, err)) > 0) {
        snprintf(name, cap, "%s", gc_rows_text(r, 0));
        *udata = gc_strdup(gc_rows_text(r, 1));
        rc = 0;
    } else if (rc == 0) {
        rc = gc_error_set(err, GC_ENOTFOUND, "vm_id", "virtual machine %s is gone", vm);
    }
    gc_rows_free(r);
    gc_tx_rollback(tx);
    return rc;
}

/* The NoCloud config drive of a VM with user data: an ISO 9660 volume labelled cidata,
 * gc-<id>-cidata.iso in the storage pool, holding user-data, meta-data (instance-id,
 * local-hostname) and network-config (DHCP on each interface, found by its MAC). *made
 * tells whether the VM has one. */
static int config_drive(const struct gc_compute_driver *drv, struct gc_compute_conn *c,
                        const char *vm, const struct nic_info *nics, int nnics, char *volname,
                        size_t cap, bool *made, struct gc_error *err)
{
    *made = false;
    char name[128] = "";
    char *udata = NULL;
    int rc = load_user_data(vm, name, sizeof(name), &udata, err);
    if (rc || !udata[0]) {
        free(udata);
        return rc;
    }
    if (!drv->vol_upload) {
        free(udata);
        return gc_error_set(err, GC_EUNSUPPORTED, "user_data",
                            "the host's driver cannot write volumes: no user data");
    }
    char meta[512];
    snprintf(meta, sizeof(meta), "instance-id: \"%s\"\nlocal-hostname: \"%s\"\n", vm, name);
    struct gc_buf net;
    gc_buf_init(&net, GC_BUF_UNLIMITED);
    (void)gc_buf_adds(&net, "version: 2\nethernets:\n");
    for (int i = 0; i < nnics; i++)
        (void)gc_buf_addf(&net,
                          "  nic%d:\n    match:\n      macaddress: \"%s\"\n    dhcp4: true\n",
                          i, nics[i].mac);
    if (nnics == 0)
        (void)gc_buf_adds(&net, "  {}\n");
    struct gc_cd_file files[] = {
        {"user-data", udata, strlen(udata)},
        {"meta-data", meta, strlen(meta)},
        {"network-config", gc_buf_str(&net), strlen(gc_buf_str(&net))},
    };
    unsigned char *iso = NULL;
    size_t len = 0;
    rc = gc_configdrive_iso("cidata", files, 3, &iso, &len, err);
    snprintf(volname, cap, "gc-%s-cidata.iso", vm);
    if (!rc)
        rc = drv->vol_upload(c, cfg->storage_pool, volname, iso, len, err);
    *made = rc == 0;
    free(iso);
    gc_buf_release(&net);
    free(udata);
    return rc;
}

/* Eight characters from an alphabet without look-alikes: VNC's authentication uses only the
 * first eight bytes of a password. */
static void vnc_password(char out[9])
{
    static const char abc[] = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    unsigned char b[8];
    gc_random_bytes(b, sizeof(b));
    for (int i = 0; i < 8; i++)
        out[i] = abc[b[i] % (sizeof(abc) - 1)];
    out[8] = '\0';
}

static int vm_create(struct gc_job_run *job, const json_t *params, json_t **result,
                     struct gc_error *err)
{
    const char *id = json_string_value(json_object_get(params, "vm_id"));
    bool start = !json_is_false(json_object_get(params, "start"));
    struct vm_info v;
    int rc = load_vm(id ? id : "", &v, err);
    if (rc)
        return rc;
    const struct gc_compute_driver *drv;
    struct gc_compute_conn *c;
    bool kernel = strcmp(v.kind, "kernel") == 0;
    if (!v.uploaded) {
        gc_job_progress(job, 10, "verifying the image checksums");
        char sha[65] = "", sm3[65] = "";
        int64_t size = 0;
        rc = gc_image_checksum(v.kind, kernel ? v.kernel : v.disk_path, kernel ? v.initrd : "",
                               sha, sm3, &size, err);
        if (!rc && (strcmp(sha, v.sha) != 0 || strcmp(sm3, v.sm3) != 0))
            rc = gc_error_set(err, GC_ECONFLICT, "image_id",
                              "the image files changed since they were imported (checksums "
                              "differ); import the image again");
    }
    if (!rc)
        rc = acquire(v.host, &drv, &c, err);
    if (rc) {
        set_vm(v.id, "error", NULL, err->msg);
        return rc;
    }
    /* an uploaded image: the host's own copy, verified (copied from the store first if the
     * host has none) */
    if (v.uploaded) {
        char *copy = NULL;
        rc = gc_image_on_host(job, v.image, v.host, drv, c, &copy, err);
        if (!rc)
            snprintf(v.disk_path, sizeof(v.disk_path), "%s", copy);
        free(copy);
        if (rc) {
            gc_hostmgr_release(v.host);
            set_vm(v.id, "error", NULL, err->msg);
            return rc;
        }
    }
    struct nic_info *nics = NULL;
    int nnics = 0;
    struct gc_vm_nic vnics[4] = {{0}};
    char vmfilter[64];
    gc_job_progress(job, 30, "preparing the networks and security groups on the host");
    rc = host_prepare(drv, c, v.id, &nics, &nnics, vnics, vmfilter, err);
    if (rc) {
        gc_hostmgr_release(v.host);
        free(nics);
        set_vm(v.id, "error", NULL, err->msg);
        return rc;
    }
    char state[32] = "";
    gc_job_progress(job, 40, "defining the domain");
    /* idempotent: after a crash the domain may already be there */
    int found = drv->vm_state(c, v.id, state, sizeof(state), err);
    gc_error_clear(err); /* absent is the usual answer here */
    char cdname[GC_ID_LEN + 32] = "", vncpw[9] = "";
    bool cd = false;
    if (found == GC_ENOTFOUND) {
        gc_job_progress(job, 35, "writing the config drive");
        rc = config_drive(drv, c, v.id, nics, nnics, cdname, sizeof(cdname), &cd, err);
        vnc_password(vncpw);
    }
    if (!rc && found == GC_ENOTFOUND) {
        bool vnc = strcmp(cfg->vnc_listen, "none") != 0;
        char log[1200];
        snprintf(log, sizeof(log), "%s/%s-console.log", cfg->console_log_dir, v.domain);
        const char *virt = cfg->virt_type;
        if (strcmp(virt, "auto") == 0)
            virt = drv->has_kvm && drv->has_kvm(c, v.arch) ? "kvm" : "qemu";
        struct gc_vm_spec spec = {
            .uuid = v.id,
            .name = v.domain,
            .vcpus = (int)v.vcpus,
            .memory_mib = v.mem,
            .virt_type = virt,
            .arch = v.arch,
            .kernel = kernel ? v.kernel : NULL,
            .initrd = kernel ? v.initrd : NULL,
            .cmdline = kernel ? v.cmdline : NULL,
            .disk_image = kernel ? NULL : v.disk_path,
            .disk_format = v.format,
            .disk_gib = v.disk,
            .pool = cfg->storage_pool,
            .serial_log = log,
            .config_drive = cd ? cdname : NULL,
            .vnc_listen = vnc ? cfg->vnc_listen : NULL,
            .vnc_password = vnc ? vncpw : NULL,
            .nics = vnics,
            .nnics = nnics < 4 ? nnics : 4,
        };
        rc = drv->vm_define(c, &spec, err);
        if (rc && cd) { /* the domain holds it, or nothing does */
            struct gc_error e2 = {0};
            (void)drv->vol_delete(c, cfg->storage_pool, cdname, &e2);
        }
    }
    memset(vncpw, 0, sizeof(vncpw));
    if (!rc && start) {
        gc_job_progress(job, 70, "starting");
        if (drv->vm_state(c, v.id, state, sizeof(state), err) == 0 &&
            strcmp(state, "running") != 0)
            rc = drv->vm_start(c, v.id, err);
    }
    if (!rc)
        rc = drv->vm_state(c, v.id, state, sizeof(state), err);
    gc_hostmgr_release(v.host);
    free(nics);
    if (rc) {
        set_vm(v.id, "error", NULL, err->msg);
        return rc;
    }
    bool running = strcmp(state, "running") == 0;
    set_vm(v.id, running ? "running" : "stopped", state, "");
    *result = json_pack("{s:s,s:s}", "vm_id", v.id, "power_state", state);
    return 0;
}

static int vm_power(struct gc_job_run *job, const json_t *params, json_t **result,
                    struct gc_error *err, const char *what)
{
    const char *id = json_string_value(json_object_get(params, "vm_id"));
    bool force = json_is_true(json_object_get(params, "force"));
    struct vm_info v;
    int rc = load_vm(id ? id : "", &v, err);
    if (rc)
        return rc;
    const struct gc_compute_driver *drv;
    struct gc_compute_conn *c;
    rc = acquire(v.host, &drv, &c, err);
    if (rc)
        return rc;
    char state[32] = "";
    rc = drv->vm_state(c, v.id, state, sizeof(state), err);
    if (!rc && strcmp(what, "start") == 0) {
        if (strcmp(state, "running") != 0)
            rc = drv->vm_start(c, v.id, err);
    } else if (!rc && strcmp(what, "reboot") == 0) {
        rc = strcmp(state, "running") == 0 ? drv->vm_reboot(c, v.id, err)
                                           : drv->vm_start(c, v.id, err);
    } else if (!rc && strcmp(what, "stop") == 0 && strcmp(state, "shutoff") != 0) {
        if (!force) {
            gc_job_progress(job, 20, "asking the guest to power off");
            rc = drv->vm_shutdown(c, v.id, err);
            if (!rc)
                rc = wait_state(drv, c, v.id, "shutoff,crashed", (int)cfg->stop_timeout * 1000,
                                state, sizeof(state), err);
            if (rc == GC_EBUSY) {
                gc_job_progress(job, 80, "the guest did not power off in time: forcing it off");
                force = true;
                rc = 0;
            }
        }
        if (!rc && force && strcmp(state, "shutoff") != 0)
            rc = drv->vm_destroy(c, v.id, err);
    }
    if (!rc)
        rc = drv->vm_state(c, v.id, state, sizeof(state), err);
    gc_hostmgr_release(v.host);
    if (rc)
        return rc;
    set_vm(v.id, strcmp(state, "running") == 0 ? "running" : "stopped", state, "");
    *result = json_pack("{s:s}", "power_state", state);
    return 0;
}

static int vm_resize_run(struct gc_job_run *job, const json_t *params, json_t **result,
                         struct gc_error *err)
{
    const char *id = json_string_value(json_object_get(params, "vm_id"));
    struct vm_info v;
    int rc = load_vm(id ? id : "", &v, err);
    if (rc)
        return rc;
    const struct gc_compute_driver *drv;
    struct gc_compute_conn *c;
    rc = acquire(v.host, &drv, &c, err);
    if (rc)
        return rc;
    rc = drv->vm_resize(c, v.id, (int)v.vcpus, v.mem, err);
    /* the root volume of a disk image grows to the flavor's disk (no-op when it has that
     * size; the guest grows its file system itself, e.g. cloud-init's growpart) */
    if (!rc && strcmp(v.kind, "disk") == 0) {
        char root[GC_ID_LEN + 16];
        snprintf(root, sizeof(root), "%s-root.qcow2", v.id);
        gc_job_progress(job, 50, "growing the root volume");
        rc = drv->vol_resize(c, cfg->storage_pool, root, v.disk, err);
    }
    gc_hostmgr_release(v.host);
    if (rc) {
        set_vm(v.id, "error", NULL, err->msg);
        return rc;
    }
    *result = json_pack("{s:I,s:I,s:I}", "vcpus", (json_int_t)v.vcpus, "memory_mib",
                        (json_int_t)v.mem, "disk_gib", (json_int_t)v.disk);
    return 0;
}

static int vm_start_run(struct gc_job_run *job, const json_t *params, json_t **result,
                        struct gc_error *err)
{
    return vm_power(job, params, result, err, "start");
}

static int vm_stop_run(struct gc_job_run *job, const json_t *params, json_t **result,
                       struct gc_error *err)
{
    return vm_power(job, params, result, err, "stop");
}

static int vm_reboot_run(struct gc_job_run *job, const json_t *params, json_t **result,
                         struct gc_error *err)
{
    return vm_power(job, params, result, err, "reboot");
}

static int vm_delete_run(struct gc_job_run *job, const json_t *params, json_t **result,
                         struct gc_error *err)
{
    const char *id = json_string_value(json_object_get(params, "vm_id"));
    struct vm_info v;
    int rc = load_vm(id ? id : "", &v, err);
    if (rc == GC_ENOTFOUND)
        return 0; /* already gone (a rerun after a crash) */
    if (rc)
        return rc;
    if (v.host[0]) {
        const struct gc_compute_driver *drv;
        struct gc_compute_conn *c;
        rc = acquire(v.host, &drv, &c, err);
        if (rc)
            return rc;
        gc_job_progress(job, 30, "removing the domain and its volumes");
        rc = drv->vm_undefine(c, v.id, err);
        if (rc == GC_ENOTFOUND) {
            rc = 0;
            gc_error_clear(err);
        }
        /* the addresses pinned for it in the networks' DHCP, and its own filter */
        if (!rc)
            rc = host_forget(drv, c, v.id, err);
        gc_hostmgr_release(v.host);
        if (rc) {
            set_vm(v.id, "error", NULL, err->msg);
            return rc;
        }
    }
    if (v.host_local) {
        /* the console log and libvirt's log of the domain are the VM's too: nothing of it
         * stays behind */
        static const char *const suffix[] = {"-console.log", ".log"};
        for (int i = 0; i < 2; i++) {
            char log[1200];
            snprintf(log, sizeof(log), "%s/%s%s", cfg->console_log_dir, v.domain, suffix[i]);
            if (unlink(log) != 0 && errno != ENOENT)
                gc_warn("vms", "vm %s: cannot remove %s: %s", v.id, log, strerror(errno));
        }
    }
    /* the record and the host's reservation go in one transaction */
    struct gc_tx *tx = NULL;
    rc = gc_tx_begin(job_store(), GC_TX_WRITE, &tx, err);
    if (!rc && v.host[0])
        rc = gc_host_reserve(tx, v.host, -v.vcpus, -v.mem, err);
    /* its volumes outlive it, detached */
    if (!rc)
        rc = gc_tx_exec(tx,
                        "UPDATE volumes SET vm_id = NULL, target = NULL, state = 'available',"
                        " updated_at = ?, version = version + 1 WHERE vm_id = ?",
                        GC_ARGS(GC_VINT_(gc_now_ms()), GC_VTXT(v.id)), NULL, err);
    /* its public IPs stay with the department, free to associate again */
    if (!rc)
        rc = gc_tx_exec(tx,
                        "UPDATE public_ips SET vm_id = NULL, state = 'available', updated_at = ?,"
                        " version = version + 1 WHERE vm_id = ?",
                        GC_ARGS(GC_VINT_(gc_now_ms()), GC_VTXT(v.id)), NULL, err);
    if (!rc)
        rc = gc_tx_exec(tx, "DELETE FROM vms WHERE id = ?", GC_ARGS(GC_VTXT(v.id)), NULL, err);
    /* its downtime stays in the periods it lived in */
    if (!rc)
        rc = gc_vm_incident_sync(tx, v.id, gc_now_ms(), err);
    if (!rc)
        rc = gc_vm_lifetime(tx, v.id, NULL, false, gc_now_ms(), err);
    if (rc)
        gc_tx_rollback(tx);
    else
        rc = gc_tx_commit(tx, err);
    if (!rc)
        *result = json_pack("{s:s}", "deleted", v.id);
    return rc;
}

static void vol_name(char *out, size_t cap, const char *prefix, const char *id,
                     const char *format)
{
    snprintf(out, cap, "%s-%s%s", prefix, id, strcmp(format, "qcow2") ? "" : ".qcow2");
}

/* ---- migration and evacuation ---- */

/* Records the end of a move in one transaction. */
static int migration_end(const char *vm, bool ok, const char *power, const char *error,
                         struct gc_error *err)
{
    bool on = strcmp(power, "running") == 0 || strcmp(power, "paused") == 0 ||
              strcmp(power, "blocked") == 0;
    struct gc_tx *tx;
    int rc = gc_tx_begin(job_store(), GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    rc = gc_vm_migration_end(tx, vm, ok, on ? "running" : "stopped", power, error, err);
    if (!rc)
        rc = gc_vm_incident_sync(tx, vm, gc_now_ms(), err);
    if (rc) {
        gc_tx_rollback(tx);
        return rc;
    }
    return gc_tx_commit(tx, err);
}

/* The data volumes attached to a VM: [{"pool","name"}]. */
static int attached_volumes(const char *vm, json_t **out, struct gc_error *err)
{
    *out = json_array();
    struct gc_tx *tx;
    int rc = gc_tx_begin(job_store(), GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    struct gc_rows *r = NULL;
    rc = gc_tx_query(tx, "SELECT id, pool, format FROM volumes WHERE vm_id = ? ORDER BY id",
                     GC_ARGS(GC_VTXT(vm)), &r, err);
    while (!rc && (rc = gc_rows_next(r, err)) > 0) {
        rc = 0;
        char name[128];
        vol_name(name, sizeof(name), "gc-vol", gc_rows_text(r, 0), gc_rows_text(r, 2));
        json_array_append_new(*out, json_pack("{s:s,s:s}", "pool", gc_rows_text(r, 1), "name",
                                              name));
    }
    gc_rows_free(r);
    gc_tx_rollback(tx);
    return rc < 0 ? rc : 0;
}

/* Moves one VM already marked migrating (gc_vm_migration_begin) to its target, and
 * records the outcome. Safe to run again after a crash: where the domain is decides. */
static int migrate_one(struct gc_job_run *job, const char *vm, json_t **result,
                       struct gc_error *err)
{
    char src[GC_ID_LEN + 1] = "", dst[GC_ID_LEN + 1] = "";
    {
        struct gc_tx *tx;
        int rc = gc_tx_begin(job_store(), GC_TX_READ, &tx, err);
        if (rc)
            return rc;
        struct gc_rows *r = NULL;
        rc = gc_tx_query(tx,
                         "SELECT COALESCE(host_id, ''), COALESCE(migration_target, '')"
                         " FROM vms WHERE id = ?",
                         GC_ARGS(GC_VTXT(vm)), &r, err);
        if (!rc && (rc = gc_rows_next(r, err)) > 0) {
            snprintf(src, sizeof(src), "%s", gc_rows_text(r, 0));
            snprintf(dst, sizeof(dst), "%s", gc_rows_text(r, 1));
            rc = 0;
        } else if (rc == 0) {
            rc = gc_error_set(err, GC_ENOTFOUND, "vm_id", "virtual machine %s is gone", vm);
        }
        gc_rows_free(r);
        gc_tx_rollback(tx);
        if (rc)
            return rc;
    }
    if (!dst[0]) { /* done before a restart */
        *result = json_pack("{s:s,s:s}", "vm_id", vm, "host_id", src);
        return 0;
    }
    const struct gc_compute_driver *sd, *dd;
    struct gc_compute_conn *sc, *dc;
    int rc = acquire(src, &sd, &sc, err);
    if (rc) {
        struct gc_error e2 = {0};
        (void)migration_end(vm, false, "unknown", err->msg, &e2);
        return rc;
    }
    rc = acquire(dst, &dd, &dc, err);
    if (rc) {
        gc_hostmgr_release(src);
        struct gc_error e2 = {0};
        char power[32] = "unknown";
        (void)sd->vm_state(sc, vm, power, sizeof(power), &e2);
        (void)migration_end(vm, false, power, err->msg, &e2);
        return rc;
    }
    if (sd != dd || !sd->vm_migrate)
        rc = gc_error_set(err, GC_EUNSUPPORTED, "host_id",
                          "the hosts have different hypervisor drivers: a VM cannot move "
                          "between them");
    char here[32] = "", there[32] = "";
    int rh = rc ? rc : sd->vm_state(sc, vm, here, sizeof(here), err);
    gc_error_clear(err);
    int rt = rc ? rc : dd->vm_state(dc, vm, there, sizeof(there), err);
    gc_error_clear(err);
    bool arrived = !rc && rt == 0 && rh == GC_ENOTFOUND;
    if (!rc && rt == 0 && rh == 0) {
        /* both hosts have it: an interrupted move. Once QEMU has handed over, the source is
         * left paused and the destination runs: the move is done. Otherwise the destination's
         * copy is the unfinished one and goes. */
        if (strcmp(there, "running") == 0 && strcmp(here, "running") != 0) {
            arrived = true;
        } else if ((rc = dd->vm_undefine(dc, vm, err)) == GC_ENOTFOUND) {
            rc = 0;
            gc_error_clear(err);
        }
        if (!arrived && !rc)
            rh = sd->vm_state(sc, vm, here, sizeof(here), err);
    }
    struct nic_info *nics = NULL;
    int nnics = 0;
    struct gc_vm_nic vnics[4] = {{0}};
    char vmfilter[64];
    json_t *moved = NULL;
    if (!rc && !arrived) {
        if (rh)
            rc = gc_error_set(err, GC_ECONFLICT, "vm_id",
                              "the domain of virtual machine %s is on neither host", vm);
        if (!rc) {
            gc_job_progress(job, 10, "preparing the networks and security groups there");
            rc = host_prepare(dd, dc, vm, &nics, &nnics, vnics, vmfilter, err);
        }
        if (!rc) {
            bool on = strcmp(here, "running") == 0 || strcmp(here, "paused") == 0 ||
                      strcmp(here, "blocked") == 0;
            gc_job_progress(job, 30, on ? "live migration: copying memory and disks"
                                        : "copying the disks and the definition");
            rc = sd->vm_migrate(sc, dc, vm, &moved, err);
        }
        if (rc) {
            /* undo what was prepared there; the VM stays where it is */
            struct gc_error e2 = {0};
            if (!rh)
                (void)host_forget(dd, dc, vm, &e2);
        }
    }
    char power[32] = "unknown";
    struct gc_error e2 = {0};
    if (!rc) {
        (void)dd->vm_state(dc, vm, power, sizeof(power), &e2);
        gc_job_progress(job, 80, "recording the move");
        rc = migration_end(vm, true, power, "", err);
    } else {
        (void)sd->vm_state(sc, vm, power, sizeof(power), &e2);
        char msg[sizeof(err->msg)];
        snprintf(msg, sizeof(msg), "%s", err->msg);
        (void)migration_end(vm, false, power, msg, &e2);
    }
    if (!rc) {
        /* what stays on the old host: its domain (if a copy left one), root volume, data
         * volumes, DHCP pins and filter */
        gc_job_progress(job, 90, "tidying the old host");
        json_t *vols = NULL;
        if (sd->vm_undefine(sc, vm, &e2) && e2.code != GC_ENOTFOUND)
            gc_warn("vms", "vm %s: old host %s: %s", vm, src, e2.msg);
        gc_error_clear(&e2);
        if (attached_volumes(vm, &vols, &e2) == 0) {
            size_t i;
            json_t *o;
            json_array_foreach(vols, i, o) {
                const char *pool = json_string_value(json_object_get(o, "pool"));
                const char *name = json_string_value(json_object_get(o, "name"));
                if (sd->vol_delete(sc, pool, name, &e2) && e2.code != GC_ENOTFOUND)
                    gc_warn("vms", "vm %s: old host %s: %s", vm, src, e2.msg);
                gc_error_clear(&e2);
            }
        }
        json_decref(vols);
        if (host_forget(sd, sc, vm, &e2))
            gc_warn("vms", "vm %s: old host %s: %s", vm, src, e2.msg);
        *result = json_pack("{s:s,s:s,s:s,s:s,s:o}", "vm_id", vm, "from_host_id", src,
                            "host_id", dst, "power_state", power, "volumes",
                            moved ? json_incref(moved) : json_array());
    }
    json_decref(moved);
    free(nics);
    gc_hostmgr_release(dst);
    gc_hostmgr_release(src);
    return rc;
}

static int vm_migrate_run(struct gc_job_run *job, const json_t *params, json_t **result,
                          struct gc_error *err)
{
    const char *id = json_string_value(json_object_get(params, "vm_id"));
    return migrate_one(job, id ? id : "", result, err);
}

/* Moves every VM of a host in maintenance to other hosts, one after the other; a VM that
 * cannot move stays and is reported. */
static int host_evacuate_run(struct gc_job_run *job, const json_t *params, json_t **result,
                             struct gc_error *err)
{
    const char *host = json_string_value(json_object_get(params, "host_id"));
    json_t *ids = json_array();
    {
        struct gc_tx *tx;
        int rc = gc_tx_begin(job_store(), GC_TX_READ, &tx, err);
        if (rc) {
            json_decref(ids);
            return rc;
        }
        struct gc_rows *r = NULL;
        rc = gc_tx_query(tx, "SELECT id FROM vms WHERE host_id = ? ORDER BY id",
                         GC_ARGS(GC_VTXT(host ? host : "")), &r, err);
        while (!rc && (rc = gc_rows_next(r, err)) > 0) {
            rc = 0;
            json_array_append_new(ids, json_string(gc_rows_text(r, 0)));
        }
        gc_rows_free(r);
        gc_tx_rollback(tx);
        if (rc < 0) {
            json_decref(ids);
            return rc;
        }
    }
    json_t *moved = json_array(), *failed = json_array();
    size_t n = json_array_size(ids), i;
    json_t *v;
    json_array_foreach(ids, i, v) {
        const char *vm = json_string_value(v);
        char msg[160];
        snprintf(msg, sizeof(msg), "moving VM %zu of %zu (%s)", i + 1, n, vm);
        if (gc_job_progress(job, (int)(5 + 90 * i / (n ? n : 1)), msg))
            break;
        struct gc_error e = {0};
        struct gc_tx *tx;
        char dest[GC_ID_LEN + 1] = "";
        int64_t moving = 0;
        int rc = gc_tx_begin(job_store(), GC_TX_WRITE, &tx, &e);
        /* a VM left migrating by a crash goes on to its target */
        if (!rc)
            rc = gc_tx_query_int(tx,
                                 "SELECT COUNT(*) FROM vms WHERE id = ? AND host_id = ? AND"
                                 " migration_target IS NOT NULL",
                                 GC_ARGS(GC_VTXT(vm), GC_VTXT(host)), &moving, &e);
        if (!rc && !moving)
            rc = gc_job_busy(tx, "vm", vm, "virtual machine", &e);
        if (!rc && !moving)
            rc = gc_vm_migration_begin(tx, cfg, vm, NULL, dest, &e);
        if (rc)
            gc_tx_rollback(tx);
        else
            rc = gc_tx_commit(tx, &e);
        json_t *res = NULL;
        if (!rc)
            rc = migrate_one(job, vm, &res, &e);
        if (rc)
            json_array_append_new(failed, json_pack("{s:s,s:s}", "vm_id", vm, "error", e.msg));
        else
            json_array_append_new(moved, json_pack("{s:s,s:O?}", "vm_id", vm, "host_id",
                                                   json_object_get(res, "host_id")));
        json_decref(res);
    }
    json_decref(ids);
    size_t nf = json_array_size(failed);
    *result = json_pack("{s:o,s:o}", "moved", moved, "failed", failed);
    if (nf)
        return gc_error_set(err, GC_ECONFLICT, "host_id",
                            "%zu of %zu virtual machines could not move (see the job's result); "
                            "the host keeps them",
                            nf, n);
    return 0;
}

/* Removes a deleted network from every host that has it. */
static int network_remove(struct gc_job_run *job, const json_t *params, json_t **result,
                          struct gc_error *err)
{
    const char *name = json_string_value(json_object_get(params, "network"));
    if (!name)
        return gc_error_set(err, GC_EINVAL, "network", "job without network");
    json_t *hosts = gc_hostmgr_hosts();
    json_t *removed = json_array(), *skipped = json_array();
    size_t i;
    json_t *h;
    int rc = 0;
    json_array_foreach(hosts, i, h) {
        const char *host = json_string_value(h);
        const struct gc_compute_driver *drv;
        struct gc_compute_conn *c;
        struct gc_error e = {0};
        if (gc_hostmgr_acquire(host, &drv, &c, &e) != 0) {
            json_array_append_new(skipped, json_string(host)); /* not connected */
            continue;
        }
        int r = drv->net_remove(c, name, &e);
        gc_hostmgr_release(host);
        if (r == 0)
            json_array_append_new(removed, json_string(host));
        else if (r != GC_ENOTFOUND && !rc)
            rc = gc_error_set(err, r, "", "host %s: %s", host, e.msg);
        gc_job_progress(job, (int)((i + 1) * 100 / (json_array_size(hosts) + 1)), host);
    }
    json_decref(hosts);
    *result = json_pack("{s:o,s:o}", "removed_from", removed, "unreachable", skipped);
    return rc;
}

/* A group's rules changed: redefine its filter, and the filters of the VMs using it (whether
 * egress is restricted depends on the rules), on every connected host that runs them. */
static int sg_apply(struct gc_job_run *job, const json_t *params, json_t **result,
                    struct gc_error *err)
{
    const char *group = json_string_value(json_object_get(params, "group_id"));
    if (!group)
        return gc_error_set(err, GC_EINVAL, "group_id", "job without group_id");
    struct gc_tx *tx;
    int rc = gc_tx_begin(job_store(), GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    struct gc_rows *r = NULL;
    json_t *vms = json_array();
    rc = gc_tx_query(tx,
                     "SELECT v.id, COALESCE(v.host_id, '') FROM vm_security_groups x"
                     " JOIN vms v ON v.id = x.vm_id WHERE x.group_id = ?"
                     " AND EXISTS (SELECT 1 FROM vm_nics n WHERE n.vm_id = v.id)",
                     GC_ARGS(GC_VTXT(group)), &r, err);
    while (!rc && (rc = gc_rows_next(r, err)) > 0) {
        rc = 0;
        json_array_append_new(vms, json_pack("[ss]", gc_rows_text(r, 0), gc_rows_text(r, 1)));
    }
    if (rc > 0)
        rc = 0;
    gc_rows_free(r);
    gc_tx_rollback(tx);
    size_t i;
    json_t *v;
    int updated = 0, skipped = 0;
    json_array_foreach(vms, i, v) {
        if (rc)
            break;
        const char *vm = json_string_value(json_array_get(v, 0));
        const char *host = json_string_value(json_array_get(v, 1));
        const struct gc_compute_driver *drv;
        struct gc_compute_conn *c;
        struct gc_error e = {0};
        json_t *groups = NULL;
        if (!host[0] || gc_hostmgr_acquire(host, &drv, &c, &e) != 0) {
            skipped++; /* applied when the VM is next created or the group changes again */
            continue;
        }
        rc = load_groups(vm, &groups, err);
        if (!rc)
            rc = apply_vm_filter(drv, c, vm, groups, err);
        json_decref(groups);
        gc_hostmgr_release(host);
        updated++;
        gc_job_progress(job, (int)((i + 1) * 100 / (json_array_size(vms) + 1)), vm);
    }
    json_decref(vms);
    if (!rc)
        *result = json_pack("{s:i,s:i}", "vms_updated", updated, "vms_unreachable", skipped);
    return rc;
}

/* Removes a deleted group's filter from every host that has it. */
static int nwfilter_remove(struct gc_job_run *job, const json_t *params, json_t **result,
                           struct gc_error *err)
{
    (void)job;
    const char *name = json_string_value(json_object_get(params, "filter"));
    if (!name)
        return gc_error_set(err, GC_EINVAL, "filter", "job without filter");
    json_t *hosts = gc_hostmgr_hosts();
    size_t i;
    json_t *h;
    int removed = 0, rc = 0;
    json_array_foreach(hosts, i, h) {
        const struct gc_compute_driver *drv;
        struct gc_compute_conn *c;
        struct gc_error e = {0};
        if (gc_hostmgr_acquire(json_string_value(h), &drv, &c, &e) != 0)
            continue;
        int r = drv->fw_remove(c, name, &e);
        gc_hostmgr_release(json_string_value(h));
        if (r == 0)
            removed++;
        else if (r != GC_ENOTFOUND && r != GC_EBUSY && !rc)
            rc = gc_error_set(err, r, "", "%s", e.msg);
    }
    json_decref(hosts);
    if (!rc)
        *result = json_pack("{s:i}", "hosts", removed);
    return rc;
}

/* ---- volumes ---- */

struct vol_info {
    char id[GC_ID_LEN + 1], host[GC_ID_LEN + 1], pool[128], name[64], vm[GC_ID_LEN + 1],
        target[16], format[16];
    int64_t size;
};

/* The libvirt name of a volume or snapshot: prefix-<id>, with .qcow2 for qcow2 files. */

static int load_vol(const char *id, struct vol_info *v, struct gc_error *err)
{
    memset(v, 0, sizeof(*v));
    struct gc_tx *tx;
    int rc = gc_tx_begin(job_store(), GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    struct gc_rows *r = NULL;
    rc = gc_tx_query(tx,
                     "SELECT id, host_id, pool, size_gib, COALESCE(vm_id, ''),"
                     " COALESCE(target, ''), format FROM volumes WHERE id = ?",
                     GC_ARGS(GC_VTXT(id)), &r, err);
    if (!rc && gc_rows_next(r, err) > 0) {
        snprintf(v->id, sizeof(v->id), "%s", gc_rows_text(r, 0));
        snprintf(v->host, sizeof(v->host), "%s", gc_rows_text(r, 1));
        snprintf(v->pool, sizeof(v->pool), "%s", gc_rows_text(r, 2));
        v->size = gc_rows_int(r, 3);
        snprintf(v->vm, sizeof(v->vm), "%s", gc_rows_text(r, 4));
        snprintf(v->target, sizeof(v->target), "%s", gc_rows_text(r, 5));
        snprintf(v->format, sizeof(v->format), "%s", gc_rows_text(r, 6));
        vol_name(v->name, sizeof(v->name), "gc-vol", v->id, v->format);
    } else if (!rc) {
        rc = gc_error_set(err, GC_ENOTFOUND, "volume_id", "volume %s is gone", id);
    }
    gc_rows_free(r);
    gc_tx_rollback(tx);
    return rc;
}

static void set_vol(const char *id, const char *state, const char *vm, const char *target,
                    int64_t size, const char *error)
{
    struct gc_error err = {0};
    if (exec1("UPDATE volumes SET state = ?, vm_id = ?, target = ?,"
              " size_gib = CASE WHEN ? > 0 THEN ? ELSE size_gib END, last_error = ?,"
              " updated_at = ?, version = version + 1 WHERE id = ?",
              GC_ARGS(GC_VTXT(state), GC_VTXT(vm && vm[0] ? vm : NULL),
                      GC_VTXT(target && target[0] ? target : NULL), GC_VINT_(size),
                      GC_VINT_(size), GC_VTXT(error ? error : ""), GC_VINT_(gc_now_ms()),
                      GC_VTXT(id)),
              &err) != 0)
        gc_err("volumes", "volume %s: cannot record state: %s", id, err.msg);
}

/* The first free device name of a VM after its root disk: vdb, vdc, ... */
static int next_target(const char *vm, char *out, struct gc_error *err)
{
    struct gc_tx *tx;
    int rc = gc_tx_begin(job_store(), GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    for (char c = 'b'; c <= 'z'; c++) {
        char t[8];
        snprintf(t, sizeof(t), "vd%c", c);
        int64_t n = 0;
        rc = gc_tx_query_int(tx, "SELECT COUNT(*) FROM volumes WHERE vm_id = ? AND target = ?",
                             GC_ARGS(GC_VTXT(vm), GC_VTXT(t)), &n, err);
        if (rc || n == 0) {
            snprintf(out, 8, "%s", t);
            break;
        }
    }
    gc_tx_rollback(tx);
    return rc;
}

static int vol_attach_to(const struct gc_compute_driver *drv, struct gc_compute_conn *c,
                         struct vol_info *v, const char *vm, struct gc_error *err)
{
    char target[8] = "";
    int rc = next_target(vm, target, err);
    if (!rc)
        rc = drv->vm_disk(c, vm, v->pool, v->name, v->format, target, true, err);
    if (!rc)
        set_vol(v->id, "in-use", vm, target, 0, NULL);
    return rc;
}

static void set_snap(const char *id, const char *state, const char *error)
{
    struct gc_error err = {0};
    if (exec1("UPDATE volume_snapshots SET state = ?, last_error = ?, updated_at = ?,"
              " version = version + 1 WHERE id = ?",
              GC_ARGS(GC_VTXT(state), GC_VTXT(error ? error : ""), GC_VINT_(gc_now_ms()),
                      GC_VTXT(id)),
              &err) != 0)
        gc_err("volumes", "snapshot %s: cannot record state: %s", id, err.msg);
}

/* A copy must not be taken from, or written to, a disk a running guest uses: the VM the
 * volume is attached to has to be shut off (checked again here: it may have been started
 * since the request). */
static int vol_quiet(const struct gc_compute_driver *drv, struct gc_compute_conn *c,
                     const struct vol_info *v, struct gc_error *err)
{
    if (!v->vm[0])
        return 0;
    char state[32] = "";
    int rc = drv->vm_state(c, v->vm, state, sizeof(state), err);
    if (rc == GC_ENOTFOUND) {
        gc_error_clear(err);
        return 0;
    }
    if (!rc && strcmp(state, "shutoff") != 0 && strcmp(state, "shutdown") != 0 &&
        strcmp(state, "crashed") != 0)
        rc = gc_error_set(err, GC_ECONFLICT, "", "virtual machine %s, which the volume is "
                          "attached to, is %s: stop it first", v->vm, state);
    return rc;
}

/* volume.snapshot, volume.snapshot_delete and volume.revert: a snapshot is a full copy
 * gc-snap-<id> of the volume in its pool, made by the host's storage backend; reverting
 * replaces the volume by a copy of the snapshot (same name, so the path a domain holds stays
 * valid). Each can run again after a crash. */
static int snapshot_run(struct gc_job_run *job, const struct gc_compute_driver *drv,
                        struct gc_compute_conn *c, const struct vol_info *v,
                        const json_t *params, const char *what, struct gc_error *err)
{
    const char *sid = json_string_value(json_object_get(params, "snapshot_id"));
    if (!sid)
        return gc_error_set(err, GC_EINVAL, "snapshot_id", "job without snapshot_id");
    int64_t size = 0;
    struct gc_tx *tx;
    int rc = gc_tx_begin(job_store(), GC_TX_READ, &tx, err);
    if (!rc) {
        rc = gc_tx_query_int(tx, "SELECT size_gib FROM volume_snapshots WHERE id = ?",
                             GC_ARGS(GC_VTXT(sid)), &size, err);
        gc_tx_rollback(tx);
    }
    if (rc == GC_ENOTFOUND && !strcmp(what, "snapshot_delete"))
        return 0; /* a rerun after a crash */
    if (rc)
        return rc;
    char snap[64];
    vol_name(snap, sizeof(snap), "gc-snap", sid, v->format);
    if (!strcmp(what, "snapshot")) {
        rc = vol_quiet(drv, c, v, err);
        /* a rerun after a crash: a copy may have been begun */
        if (!rc && (rc = drv->vol_delete(c, v->pool, snap, err)) == GC_ENOTFOUND) {
            gc_error_clear(err);
            rc = 0;
        }
        gc_job_progress(job, 20, "copying the volume");
        if (!rc)
            rc = drv->vol_clone(c, v->pool, v->name, snap, size, v->format, err);
        set_snap(sid, rc ? "error" : "available", rc ? err->msg : NULL);
    } else if (!strcmp(what, "snapshot_delete")) {
        rc = drv->vol_delete(c, v->pool, snap, err);
        if (rc == GC_ENOTFOUND) {
            gc_error_clear(err);
            rc = 0;
        }
        if (!rc)
            rc = exec1("DELETE FROM volume_snapshots WHERE id = ?", GC_ARGS(GC_VTXT(sid)), err);
    } else if (!strcmp(what, "revert")) {
        rc = vol_quiet(drv, c, v, err);
        if (!rc && (rc = drv->vol_delete(c, v->pool, v->name, err)) == GC_ENOTFOUND) {
            gc_error_clear(err); /* a rerun: deleted before the crash */
            rc = 0;
        }
        if (rc)
            return rc; /* the volume is as it was */
        gc_job_progress(job, 40, "copying the snapshot back");
        rc = drv->vol_clone(c, v->pool, snap, v->name, size, v->format, err);
        /* the state it had (available, or in-use by a stopped VM), or error: the old
         * contents are gone and the copy failed; another revert can be asked for */
        const char *state = v->vm[0] ? "in-use" : "available";
        if (!rc)
            rc = exec1("UPDATE volumes SET state = ?, size_gib = ?, last_error = '',"
                       " updated_at = ?, version = version + 1 WHERE id = ?",
                       GC_ARGS(GC_VTXT(state), GC_VINT_(size), GC_VINT_(gc_now_ms()),
                               GC_VTXT(v->id)),
                       err);
        else
            set_vol(v->id, "error", v->vm, v->target, 0, err->msg);
    } else {
        rc = gc_error_set(err, GC_EINVAL, "", "unknown volume job %s", what);
    }
    return rc;
}

static int volume_run(struct gc_job_run *job, const json_t *params, json_t **result,
                      struct gc_error *err, const char *what)
{
    const char *id = json_string_value(json_object_get(params, "volume_id"));
    struct vol_info v;
    int rc = load_vol(id ? id : "", &v, err);
    if (rc == GC_ENOTFOUND && !strcmp(what, "delete"))
        return 0; /* a rerun after a crash */
    if (rc)
        return rc;
    const struct gc_compute_driver *drv;
    struct gc_compute_conn *c;
    rc = acquire(v.host, &drv, &c, err);
    if (rc) {
        if (!strcmp(what, "create"))
            set_vol(v.id, "error", NULL, NULL, 0, err->msg);
        const char *sid = json_string_value(json_object_get(params, "snapshot_id"));
        if (!strcmp(what, "snapshot") && sid)
            set_snap(sid, "error", err->msg);
        return rc;
    }
    char *path = NULL;
    if (!strcmp(what, "create")) {
        gc_job_progress(job, 20, "creating the volume");
        rc = drv->vol_create(c, v.pool, v.name, v.size, v.format, &path, err);
        const char *vm = json_string_value(json_object_get(params, "attach_to"));
        if (!rc)
            set_vol(v.id, "available", NULL, NULL, 0, NULL);
        if (!rc && vm) {
            gc_job_progress(job, 60, "attaching it");
            rc = vol_attach_to(drv, c, &v, vm, err);
        }
        if (rc)
            set_vol(v.id, "error", NULL, NULL, 0, err->msg);
    } else if (!strcmp(what, "attach")) {
        const char *vm = json_string_value(json_object_get(params, "vm_id"));
        rc = vol_attach_to(drv, c, &v, vm ? vm : "", err);
    } else if (!strcmp(what, "detach")) {
        if (v.vm[0]) {
            rc = drv->vm_disk(c, v.vm, v.pool, v.name, v.format, v.target, false, err);
            if (rc == GC_ENOTFOUND) { /* the domain is gone: nothing holds it */
                gc_error_clear(err);
                rc = 0;
            }
        }
        if (!rc)
            set_vol(v.id, "available", NULL, NULL, 0, NULL);
    } else if (!strcmp(what, "resize")) {
        int64_t size = json_integer_value(json_object_get(params, "size_gib"));
        rc = drv->vol_resize(c, v.pool, v.name, size, err);
        if (!rc)
            set_vol(v.id, "available", NULL, NULL, size, NULL);
    } else if (!strcmp(what, "delete")) {
        rc = drv->vol_delete(c, v.pool, v.name, err);
        if (rc == GC_ENOTFOUND) {
            gc_error_clear(err);
            rc = 0;
        }
        if (!rc)
            rc = exec1("DELETE FROM volumes WHERE id = ?", GC_ARGS(GC_VTXT(v.id)), err);
    } else {
        rc = snapshot_run(job, drv, c, &v, params, what, err);
    }
    gc_hostmgr_release(v.host);
    free(path);
    if (!rc)
        *result = json_pack("{s:s,s:s}", "volume_id", v.id, "done", what);
    return rc;
}

static int vol_create_run(struct gc_job_run *j, const json_t *p, json_t **r, struct gc_error *e)
{
    return volume_run(j, p, r, e, "create");
}
static int vol_attach_run(struct gc_job_run *j, const json_t *p, json_t **r, struct gc_error *e)
{
    return volume_run(j, p, r, e, "attach");
}
static int vol_detach_run(struct gc_job_run *j, const json_t *p, json_t **r, struct gc_error *e)
{
    return volume_run(j, p, r, e, "detach");
}
static int vol_resize_run(struct gc_job_run *j, const json_t *p, json_t **r, struct gc_error *e)
{
    return volume_run(j, p, r, e, "resize");
}
static int vol_delete_run(struct gc_job_run *j, const json_t *p, json_t **r, struct gc_error *e)
{
    return volume_run(j, p, r, e, "delete");
}
static int vol_snapshot_run(struct gc_job_run *j, const json_t *p, json_t **r,
                            struct gc_error *e)
{
    return volume_run(j, p, r, e, "snapshot");
}
static int vol_snapshot_delete_run(struct gc_job_run *j, const json_t *p, json_t **r,
                                   struct gc_error *e)
{
    return volume_run(j, p, r, e, "snapshot_delete");
}
static int vol_revert_run(struct gc_job_run *j, const json_t *p, json_t **r, struct gc_error *e)
{
    return volume_run(j, p, r, e, "revert");
}

/* ---- public IPs ---- */

/* The interface a public IP has on its VM (the NIC with its address on its network). */
static int pip_nic(const char *pip, char *vm, struct nic_info *out, struct gc_error *err)
{
    char want[64] = "", addr[64] = "";
    struct gc_tx *tx;
    int rc = gc_tx_begin(job_store(), GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    struct gc_rows *r = NULL;
    rc = gc_tx_query(tx, "SELECT COALESCE(vm_id, ''), network_id, address FROM public_ips"
                         " WHERE id = ?",
                     GC_ARGS(GC_VTXT(pip)), &r, err);
    if (!rc && gc_rows_next(r, err) > 0) {
        snprintf(vm, GC_ID_LEN + 1, "%s", gc_rows_text(r, 0));
        snprintf(want, sizeof(want), "gc-%s", gc_rows_text(r, 1));
        snprintf(addr, sizeof(addr), "%s", gc_rows_text(r, 2));
    } else if (!rc) {
        rc = gc_error_set(err, GC_ENOTFOUND, "public_ip_id", "public IP %s is gone", pip);
    }
    gc_rows_free(r);
    gc_tx_rollback(tx);
    struct nic_info *nics = NULL;
    int n = 0;
    if (!rc && vm[0])
        rc = load_nics(vm, &nics, &n, err);
    bool found = false;
    for (int i = 0; !rc && i < n && !found; i++)
        if (!strcmp(nics[i].network, want) && !strcmp(nics[i].ipv4, addr)) {
            *out = nics[i];
            found = true;
        }
    free(nics);
    if (!rc && !found)
        rc = gc_error_set(err, GC_ENOTFOUND, "vm_id", "the public IP has no interface on a VM");
    return rc;
}

static int pip_set(const char *id, const char *state, bool keep_vm, const char *error,
                   const char *vm, const char *mac)
{
    struct gc_error e = {0};
    struct gc_tx *tx;
    int rc = gc_tx_begin(job_store(), GC_TX_WRITE, &tx, &e);
    /* an interface that is not (or no longer) on the VM goes from the records too */
    if (!rc && !keep_vm && vm && mac)
        rc = gc_tx_exec(tx, "DELETE FROM vm_nics WHERE vm_id = ? AND mac = ?",
                        GC_ARGS(GC_VTXT(vm), GC_VTXT(mac)), NULL, &e);
    if (!rc)
        rc = gc_tx_exec(tx,
                        keep_vm ? "UPDATE public_ips SET state = ?, last_error = COALESCE(?, ''),"
                                  " updated_at = ?, version = version + 1 WHERE id = ?"
                                : "UPDATE public_ips SET state = ?, last_error = COALESCE(?, ''),"
                                  " vm_id = NULL, updated_at = ?, version = version + 1"
                                  " WHERE id = ?",
                        GC_ARGS(GC_VTXT(state), GC_VTXT(error), GC_VINT_(gc_now_ms()),
                                GC_VTXT(id)),
                        NULL, &e);
    if (rc) {
        if (tx)
            gc_tx_rollback(tx);
    } else {
        rc = gc_tx_commit(tx, &e);
    }
    if (rc)
        gc_err("vms", "public IP %s: cannot record state: %s", id, e.msg);
    return rc;
}

static int pip_associate_run(struct gc_job_run *job, const json_t *params, json_t **result,
                             struct gc_error *err)
{
    const char *id = json_string_value(json_object_get(params, "public_ip_id"));
    char vm[GC_ID_LEN + 1] = "";
    struct nic_info nic = {0};
    int rc = pip_nic(id ? id : "", vm, &nic, err);
    if (rc == GC_ENOTFOUND && vm[0] == '\0') {
        if (id)
            pip_set(id, "available", false, err->msg, NULL, NULL);
        return rc;
    }
    struct vm_info v;
    if (!rc)
        rc = load_vm(vm, &v, err);
    const struct gc_compute_driver *drv = NULL;
    struct gc_compute_conn *c = NULL;
    if (!rc)
        rc = gc_hostmgr_acquire(v.host, &drv, &c, err);
    if (rc) {
        pip_set(id, "available", false, err->msg, vm, rc == GC_ENOTFOUND ? NULL : nic.mac);
        return rc;
    }
    gc_job_progress(job, 30, "preparing the external network on the host");
    struct gc_net_spec ns = {.name = nic.network,
                             .mode = nic.mode,
                             .bridge = nic.bridge,
                             .ipv4_gateway = nic.gw4,
                             .ipv4_prefix = nic.p4,
                             .ipv6_gateway = nic.gw6,
                             .ipv6_prefix = nic.p6};
    bool dhcp = strcmp(nic.mode, "bridge") != 0, pinned = false;
    rc = drv->net_ensure(c, &ns, err);
    if (!rc && dhcp && !(rc = drv->net_dhcp_host(c, nic.network, nic.mac, nic.ipv4, true, err)))
        pinned = true;
    /* the VM's security groups guard its public interface as they guard the others */
    char vmfilter[64];
    snprintf(vmfilter, sizeof(vmfilter), "gc-vm-%s", vm);
    json_t *groups = NULL;
    if (!rc)
        rc = load_groups(vm, &groups, err);
    bool filtered = !rc && json_array_size(groups) > 0;
    if (filtered)
        rc = apply_vm_filter(drv, c, vm, groups, err);
    json_decref(groups);
    if (!rc) {
        gc_job_progress(job, 60, "attaching the interface");
        struct gc_vm_nic vn = {.network = nic.network,
                               .mac = nic.mac,
                               .filter = filtered ? vmfilter : NULL};
        rc = drv->vm_nic ? drv->vm_nic(c, vm, &vn, true, err)
                         : gc_error_set(err, GC_EUNSUPPORTED, "", "the compute driver cannot "
                                                                  "attach interfaces");
    }
    if (rc && pinned) {
        struct gc_error ignore = {0};
        (void)drv->net_dhcp_host(c, nic.network, nic.mac, nic.ipv4, false, &ignore);
    }
    gc_hostmgr_release(v.host);
    if (rc) {
        pip_set(id, "available", false, err->msg, vm, nic.mac);
        return rc;
    }
    rc = pip_set(id, "associated", true, NULL, NULL, NULL);
    if (!rc)
        *result = json_pack("{s:s,s:s,s:s,s:s}", "public_ip_id", id, "vm_id", vm, "address",
                            nic.ipv4, "mac", nic.mac);
    else
        gc_error_set(err, GC_ESTORE, "", "the interface is attached but its state could not "
                                         "be recorded");
    return rc;
}

static int pip_disassociate_run(struct gc_job_run *job, const json_t *params, json_t **result,
                                struct gc_error *err)
{
    const char *id = json_string_value(json_object_get(params, "public_ip_id"));
    char vm[GC_ID_LEN + 1] = "";
    struct nic_info nic = {0};
    int rc = pip_nic(id ? id : "", vm, &nic, err);
    if (rc == GC_ENOTFOUND) {
        /* no VM or no interface any more: nothing on a host to undo */
        gc_error_clear(err);
        if (id && pip_set(id, "available", false, NULL, NULL, NULL))
            return gc_error_set(err, GC_ESTORE, "", "the public IP could not be recorded as "
                                                    "available");
        *result = json_pack("{s:s?}", "public_ip_id", id);
        return 0;
    }
    struct vm_info v;
    if (!rc)
        rc = load_vm(vm, &v, err);
    const struct gc_compute_driver *drv = NULL;
    struct gc_compute_conn *c = NULL;
    if (!rc)
        rc = gc_hostmgr_acquire(v.host, &drv, &c, err);
    if (rc) {
        pip_set(id, "associated", true, err->msg, NULL, NULL);
        return rc;
    }
    gc_job_progress(job, 40, "detaching the interface");
    struct gc_vm_nic vn = {.network = nic.network, .mac = nic.mac, .filter = NULL};
    rc = drv->vm_nic ? drv->vm_nic(c, vm, &vn, false, err)
                     : gc_error_set(err, GC_EUNSUPPORTED, "", "the compute driver cannot "
                                                              "detach interfaces");
    if (rc == GC_ENOTFOUND) { /* the domain or the interface is gone already */
        gc_error_clear(err);
        rc = 0;
    }
    if (!rc && strcmp(nic.mode, "bridge") != 0)
        rc = drv->net_dhcp_host(c, nic.network, nic.mac, nic.ipv4, false, err);
    gc_hostmgr_release(v.host);
    if (rc) {
        pip_set(id, "associated", true, err->msg, NULL, NULL);
        return rc;
    }
    rc = pip_set(id, "available", false, NULL, vm, nic.mac);
    if (rc)
        return gc_error_set(err, GC_ESTORE, "", "the interface is detached but the public IP "
                                                "could not be recorded as available");
    *result = json_pack("{s:s,s:s}", "public_ip_id", id, "released_from", vm);
    return 0;
}

int gc_vmjobs_vnc(const char *host_id, const char *uuid, char *listen, int *port, char *password,
                  struct gc_error *err)
{
    const struct gc_compute_driver *drv;
    struct gc_compute_conn *c;
    int rc = gc_hostmgr_acquire(host_id, &drv, &c, err);
    if (rc)
        return rc;
    rc = drv->vm_vnc ? drv->vm_vnc(c, uuid, listen, port, password, err)
                     : gc_error_set(err, GC_EUNSUPPORTED, "", "the host's driver has no consoles");
    gc_hostmgr_release(host_id);
    return rc;
}

static const struct gc_job_kind kinds[] = {
    {.name = "volume.create", .run = vol_create_run, .resumable = true},
    {.name = "volume.attach", .run = vol_attach_run, .resumable = false},
    {.name = "volume.detach", .run = vol_detach_run, .resumable = false},
    {.name = "volume.resize", .run = vol_resize_run, .resumable = true},
    {.name = "volume.delete", .run = vol_delete_run, .resumable = true},
    {.name = "volume.snapshot", .run = vol_snapshot_run, .resumable = true},
    {.name = "volume.snapshot_delete", .run = vol_snapshot_delete_run, .resumable = true},
    {.name = "volume.revert", .run = vol_revert_run, .resumable = true},
    {.name = "security_group.apply", .run = sg_apply, .resumable = true},
    {.name = "nwfilter.remove", .run = nwfilter_remove, .resumable = true},
    {.name = "network.remove", .run = network_remove, .resumable = true},
    {.name = "image.import", .run = image_import, .resumable = true},
    {.name = "vm.create", .run = vm_create, .resumable = true},
    {.name = "vm.start", .run = vm_start_run, .resumable = true},
    {.name = "vm.stop", .run = vm_stop_run, .resumable = true},
    {.name = "vm.reboot", .run = vm_reboot_run, .resumable = false},
    {.name = "vm.resize", .run = vm_resize_run, .resumable = true},
    {.name = "vm.delete", .run = vm_delete_run, .resumable = true},
    {.name = "vm.migrate", .run = vm_migrate_run, .resumable = true},
    {.name = "host.evacuate", .run = host_evacuate_run, .resumable = true},
    /* not resumable: after a crash the job fails and the public IP stays "associating" or
     * "disassociating"; disassociating it again settles it */
    {.name = "public_ip.associate", .run = pip_associate_run, .resumable = false},
    {.name = "public_ip.disassociate", .run = pip_disassociate_run, .resumable = false},
};

/* A host has (re)connected: its VMs' security group filters are defined again as the groups
 * are now, since changes made while it was away did not reach it. */
static void host_connected(const char *host)
{
    struct gc_error err = {0};
    struct gc_tx *tx;
    if (gc_tx_begin(job_store(), GC_TX_READ, &tx, &err) != 0)
        return;
    struct gc_rows *r = NULL;
    json_t *vms = json_array();
    int rc = gc_tx_query(tx,
                         "SELECT DISTINCT v.id FROM vms v JOIN vm_security_groups x"
                         " ON x.vm_id = v.id WHERE v.host_id = ? AND v.state <> 'building'"
                         " AND EXISTS (SELECT 1 FROM vm_nics n WHERE n.vm_id = v.id)"
                         " ORDER BY v.id",
                         GC_ARGS(GC_VTXT(host)), &r, &err);
    while (!rc && (rc = gc_rows_next(r, &err)) > 0) {
        rc = 0;
        json_array_append_new(vms, json_string(gc_rows_text(r, 0)));
    }
    gc_rows_free(r);
    gc_tx_rollback(tx);
    const struct gc_compute_driver *drv;
    struct gc_compute_conn *c;
    if (rc >= 0 && json_array_size(vms) > 0 && gc_hostmgr_acquire(host, &drv, &c, &err) == 0) {
        size_t i, done = 0;
        json_t *v;
        json_array_foreach(vms, i, v) {
            json_t *groups = NULL;
            struct gc_error e = {0};
            if (load_groups(json_string_value(v), &groups, &e) != 0 ||
                apply_vm_filter(drv, c, json_string_value(v), groups, &e) != 0)
                gc_warn("vms", "vm %s on host %s: cannot apply its security groups: %s",
                        json_string_value(v), host, e.msg);
            else
                done++;
            json_decref(groups);
        }
        gc_hostmgr_release(host);
        gc_info("hosts", "host %s: security groups of %zu VMs applied again", host, done);
    }
    json_decref(vms);
}

void gc_register_vm_job_kinds(const struct gc_config *config, struct gc_store *st)
{
    cfg = config;
    the_store = st;
    gc_hostmgr_on_connect(host_connected);
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        gc_job_register(&kinds[i]);
}

