/* The collectors of hosts, VMs and the platform: one coordinating thread that ticks every
 * [monitor] interval, emits the platform's own samples and starts one worker per connected
 * host; a worker borrows the host's connection, reads node, pool and bulk domain statistics
 * and emits them with the labels of the store (VM id, department, host, zone). */
#include "monitor/collect.h"

#include "core/core.h"
#include "drivers/compute.h"
#include "monitor/checks.h"
#include "monitor/latest.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/timeutil.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- batches ---- */

void gc_batch_add(struct gc_batch *b, const char *metric, int64_t t_ms, double value,
                  int nlabels, ...)
{
    if (nlabels > GC_SERIES_LABELS_MAX)
        GC_BUG("too many labels");
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 64;
        b->s = gc_realloc(b->s, b->cap * sizeof(*b->s));
    }
    struct gc_label *l = nlabels ? gc_calloc((size_t)nlabels, sizeof(*l)) : NULL;
    va_list ap;
    va_start(ap, nlabels);
    for (int i = 0; i < nlabels; i++) {
        const char *name = va_arg(ap, const char *);
        const char *val = va_arg(ap, const char *);
        /* insertion sort by name */
        int j = i;
        while (j > 0 && strcmp(l[j - 1].name, name) > 0) {
            l[j] = l[j - 1];
            j--;
        }
        l[j].name = name; /* label names are literals */
        l[j].value = gc_strdup(val ? val : "");
    }
    va_end(ap);
    b->s[b->n++] = (struct gc_sample){
        .series = {.metric = metric, .labels = l, .nlabels = nlabels},
        .t_ms = t_ms,
        .value = value,
    };
}

void gc_batch_release(struct gc_batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        for (int k = 0; k < b->s[i].series.nlabels; k++)
            free((char *)b->s[i].series.labels[k].value);
        free((struct gc_label *)b->s[i].series.labels);
    }
    free(b->s);
    *b = (struct gc_batch){0};
}

void gc_batch_emit(struct gc_batch *b)
{
    gc_monitor_emit(b->s, b->n);
    gc_batch_release(b);
}

/* ---- metric families ---- */

void gc_collect_describe(void)
{
    static const struct {
        const char *name;
        enum gc_metric_type type;
        const char *help;
    } fams[] = {
        {"govcloud_process_uptime_seconds", GC_METRIC_GAUGE, "Seconds since govcloudd started."},
        {"govcloud_process_resident_memory_bytes", GC_METRIC_GAUGE,
         "Resident memory of govcloudd."},
        {"govcloud_platform_jobs", GC_METRIC_GAUGE, "Jobs in the store, by state."},
        {"govcloud_platform_hosts", GC_METRIC_GAUGE, "Registered hosts, by connection state."},
        {"govcloud_platform_vms", GC_METRIC_GAUGE, "Virtual machines, by state."},
        {"govcloud_monitor_series", GC_METRIC_GAUGE,
         "Series in the current-value table behind /metrics."},
        {"govcloud_host_up", GC_METRIC_GAUGE,
         "1 when govcloudd holds a live connection to the host, else 0."},
        {"govcloud_host_collect_duration_seconds", GC_METRIC_GAUGE,
         "Time the last collection round of a host took."},
        {"govcloud_host_collect_success", GC_METRIC_GAUGE,
         "1 when every statistic of the host's last round could be read, else 0."},
        {"govcloud_host_pool_used_ratio", GC_METRIC_GAUGE,
         "Share of a storage pool's capacity in use (0 to 1)."},
        {"govcloud_host_cpu_seconds_total", GC_METRIC_COUNTER,
         "CPU time of the host (all CPUs), by mode, as libvirt reports it."},
        {"govcloud_host_memory_total_bytes", GC_METRIC_GAUGE, "Memory of the host."},
        {"govcloud_host_memory_free_bytes", GC_METRIC_GAUGE, "Free memory of the host."},
        {"govcloud_host_memory_buffers_bytes", GC_METRIC_GAUGE, "Buffer memory of the host."},
        {"govcloud_host_memory_cached_bytes", GC_METRIC_GAUGE, "Page cache of the host."},
        {"govcloud_host_pool_capacity_bytes", GC_METRIC_GAUGE, "Size of a storage pool."},
        {"govcloud_host_pool_available_bytes", GC_METRIC_GAUGE,
         "Free space in a storage pool."},
        {"govcloud_vm_running", GC_METRIC_GAUGE,
         "1 when the VM's domain runs on its host, else 0."},
        {"govcloud_vm_cpu_seconds_total", GC_METRIC_COUNTER, "CPU time the VM used."},
        {"govcloud_vm_vcpus", GC_METRIC_GAUGE, "vCPUs of the running VM."},
        {"govcloud_vm_memory_bytes", GC_METRIC_GAUGE,
         "Memory the VM has now (balloon current)."},
        {"govcloud_vm_memory_rss_bytes", GC_METRIC_GAUGE,
         "Resident memory of the VM's process on the host."},
        {"govcloud_vm_memory_available_bytes", GC_METRIC_GAUGE,
         "Memory the guest sees as available (needs the balloon driver in the guest)."},
        {"govcloud_vm_memory_unused_bytes", GC_METRIC_GAUGE,
         "Memory the guest leaves unused (needs the balloon driver in the guest)."},
        {"govcloud_vm_network_receive_bytes_total", GC_METRIC_COUNTER,
         "Bytes received by an interface of the VM."},
        {"govcloud_vm_network_transmit_bytes_total", GC_METRIC_COUNTER,
         "Bytes sent by an interface of the VM."},
        {"govcloud_vm_network_receive_packets_total", GC_METRIC_COUNTER,
         "Packets received by an interface of the VM."},
        {"govcloud_vm_network_transmit_packets_total", GC_METRIC_COUNTER,
         "Packets sent by an interface of the VM."},
        {"govcloud_vm_network_receive_errors_total", GC_METRIC_COUNTER,
         "Receive errors of an interface of the VM."},
        {"govcloud_vm_network_transmit_errors_total", GC_METRIC_COUNTER,
         "Transmit errors of an interface of the VM."},
        {"govcloud_vm_network_receive_drops_total", GC_METRIC_COUNTER,
         "Received packets dropped on an interface of the VM."},
        {"govcloud_vm_network_transmit_drops_total", GC_METRIC_COUNTER,
         "Packets to send dropped on an interface of the VM."},
        {"govcloud_vm_disk_read_bytes_total", GC_METRIC_COUNTER, "Bytes read from a disk."},
        {"govcloud_vm_disk_write_bytes_total", GC_METRIC_COUNTER, "Bytes written to a disk."},
        {"govcloud_vm_disk_read_requests_total", GC_METRIC_COUNTER, "Read requests of a disk."},
        {"govcloud_vm_disk_write_requests_total", GC_METRIC_COUNTER,
         "Write requests of a disk."},
        {"govcloud_vm_disk_capacity_bytes", GC_METRIC_GAUGE, "Size of a disk as the VM sees it."},
        {"govcloud_vm_disk_allocation_bytes", GC_METRIC_GAUGE,
         "Space a disk takes on its storage."},
    };
    for (size_t i = 0; i < sizeof(fams) / sizeof(fams[0]); i++)
        gc_metric_describe(fams[i].name, fams[i].type, fams[i].help);
    gc_checks_describe();
}

/* ---- state ---- */

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    bool running, stop;
    struct gc_store *st;
    int64_t interval_ms;
    int64_t started_ms;
    struct hostconn **hc; /* the collector's own connection to each host */
    size_t nhc;
    int workers;
} C = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

/* The collector talks to each host over a connection of its own, not the host manager's:
 * libvirt has no per-call timeout and its keepalive does not fire while a call waits, so a
 * call stuck on a hung host must not hold the host manager's connection (that would keep it
 * from noticing the host is gone, and a host removal would wait for it). A stuck worker
 * keeps only its own connection; the host is skipped until the call returns. */
struct hostconn {
    char id[GC_ID_LEN + 1];
    char uri[1024];
    const struct gc_compute_driver *drv;
    struct gc_compute_conn *conn;
    bool busy;
    int64_t busy_since_ms;
    bool seen; /* still registered, this round */
};

static struct hostconn *hostconn_get(const char *id)
{
    for (size_t i = 0; i < C.nhc; i++)
        if (strcmp(C.hc[i]->id, id) == 0)
            return C.hc[i];
    struct hostconn *h = gc_calloc(1, sizeof(*h));
    snprintf(h->id, sizeof(h->id), "%s", id);
    C.hc = gc_realloc(C.hc, (C.nhc + 1) * sizeof(*C.hc));
    C.hc[C.nhc++] = h;
    return h;
}

/* Runs sql (two columns: a label value, a count) and adds one sample per row. */
static void add_counts(struct gc_batch *b, struct gc_tx *tx, const char *sql, const char *metric,
                       const char *label, int64_t t)
{
    struct gc_error err = {0};
    struct gc_rows *r = NULL;
    int rc = gc_tx_query(tx, sql, GC_NOARGS, &r, &err);
    while (!rc && (rc = gc_rows_next(r, &err)) > 0) {
        rc = 0;
        gc_batch_add(b, metric, t, (double)gc_rows_int(r, 1), 1, label, gc_rows_text(r, 0));
    }
    gc_rows_free(r);
    if (rc < 0)
        gc_warn("monitor", "cannot read %s: %s", metric, err.msg);
}

static double rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long long size = 0, rss = 0;
    if (!f)
        return 0;
    if (fscanf(f, "%lld %lld", &size, &rss) != 2)
        rss = 0;
    fclose(f);
    return (double)rss * (double)sysconf(_SC_PAGESIZE);
}

struct host_ref {
    char id[GC_ID_LEN + 1];
    char zone[128];
    bool connected;
};

/* The platform's own samples, and the list of hosts for this round. */
static json_t *platform_round(int64_t t)
{
    struct gc_batch b = {0};
    gc_batch_add(&b, "govcloud_process_uptime_seconds", t, (double)(t - C.started_ms) / 1000.0,
                 0);
    gc_batch_add(&b, "govcloud_process_resident_memory_bytes", t, rss_bytes(), 0);
    gc_batch_add(&b, "govcloud_monitor_series", t, (double)gc_latest_count(), 0);
    json_t *hosts = json_array();
    struct gc_tx *tx = NULL;
    struct gc_error err = {0};
    if (gc_tx_begin(C.st, GC_TX_READ, &tx, &err) == 0) {
        int64_t jobs[GC_JOB_STATE_COUNT] = {0};
        struct gc_rows *r = NULL;
        int rc = gc_tx_query(tx, "SELECT state, COUNT(*) FROM jobs GROUP BY state", GC_NOARGS,
                             &r, &err);
        while (!rc && (rc = gc_rows_next(r, &err)) > 0) {
            rc = 0;
            int s = gc_job_state_parse(gc_rows_text(r, 0));
            if (s >= 0)
                jobs[s] = gc_rows_int(r, 1);
        }
        gc_rows_free(r);
        for (int s = 0; s < GC_JOB_STATE_COUNT; s++)
            gc_batch_add(&b, "govcloud_platform_jobs", t, (double)jobs[s], 1, "state",
                         gc_job_state_name((enum gc_job_state)s));
        add_counts(&b, tx, "SELECT state, COUNT(*) FROM hosts GROUP BY state",
                   "govcloud_platform_hosts", "state", t);
        add_counts(&b, tx, "SELECT state, COUNT(*) FROM vms GROUP BY state",
                   "govcloud_platform_vms", "state", t);
        r = NULL;
        rc = gc_tx_query(tx, "SELECT id, zone, state, uri FROM hosts ORDER BY id", GC_NOARGS,
                         &r, &err);
        while (!rc && (rc = gc_rows_next(r, &err)) > 0) {
            rc = 0;
            bool up = strcmp(gc_rows_text(r, 2), "connected") == 0;
            gc_batch_add(&b, "govcloud_host_up", t, up ? 1 : 0, 2, "host_id", gc_rows_text(r, 0),
                         "zone", gc_rows_text(r, 1));
            json_array_append_new(hosts, json_pack("{s:s,s:s,s:b,s:s}", "id",
                                                   gc_rows_text(r, 0), "zone",
                                                   gc_rows_text(r, 1), "up", up, "uri",
                                                   gc_rows_text(r, 3)));
        }
        gc_rows_free(r);
        if (rc < 0)
            gc_warn("monitor", "cannot list hosts: %s", err.msg);
        gc_tx_rollback(tx);
    } else {
        gc_warn("monitor", "cannot read the store: %s", err.msg);
    }
    gc_batch_emit(&b);
    return hosts;
}

static double jnum(json_t *o, const char *k, bool *ok)
{
    json_t *v = json_object_get(o, k);
    *ok = json_is_number(v);
    return *ok ? json_number_value(v) : 0;
}

/* VM id -> department id of the VMs the store places on host (or moving to it). */
static json_t *vms_of_host(const char *host_id)
{
    json_t *map = json_object();
    struct gc_tx *tx = NULL;
    struct gc_error err = {0};
    if (gc_tx_begin(C.st, GC_TX_READ, &tx, &err) != 0) {
        gc_warn("monitor", "host %s: cannot read the store: %s", host_id, err.msg);
        return map;
    }
    struct gc_rows *r = NULL;
    int rc = gc_tx_query(tx,
                         "SELECT id, department_id FROM vms WHERE host_id = ? OR "
                         "migration_target = ?",
                         GC_ARGS(GC_VTXT(host_id), GC_VTXT(host_id)), &r, &err);
    while (!rc && (rc = gc_rows_next(r, &err)) > 0) {
        rc = 0;
        json_object_set_new(map, gc_rows_text(r, 0), json_string(gc_rows_text(r, 1)));
    }
    gc_rows_free(r);
    gc_tx_rollback(tx);
    return map;
}

static void host_samples(struct gc_batch *b, const char *hid, const char *zone, int64_t t,
                         json_t *node, json_t *pools)
{
    bool ok;
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(node, "cpu_seconds"), k, v)
        gc_batch_add(b, "govcloud_host_cpu_seconds_total", t, json_number_value(v), 3, "host_id",
                     hid, "mode", k, "zone", zone);
    json_t *mem = json_object_get(node, "memory_bytes");
    static const char *const mk[][2] = {{"total", "govcloud_host_memory_total_bytes"},
                                        {"free", "govcloud_host_memory_free_bytes"},
                                        {"buffers", "govcloud_host_memory_buffers_bytes"},
                                        {"cached", "govcloud_host_memory_cached_bytes"}};
    for (size_t i = 0; i < 4; i++) {
        double x = jnum(mem, mk[i][0], &ok);
        if (ok)
            gc_batch_add(b, mk[i][1], t, x, 2, "host_id", hid, "zone", zone);
    }
    size_t i;
    json_array_foreach(pools, i, v)
    {
        const char *name = json_string_value(json_object_get(v, "name"));
        double cap = jnum(v, "capacity_bytes", &ok);
        if (!name || !ok)
            continue;
        gc_batch_add(b, "govcloud_host_pool_capacity_bytes", t, cap, 3, "host_id", hid, "pool",
                     name, "zone", zone);
        double av = jnum(v, "available_bytes", &ok);
        if (ok)
            gc_batch_add(b, "govcloud_host_pool_available_bytes", t, av, 3, "host_id", hid,
                         "pool", name, "zone", zone);
        /* what the built-in disk-nearly-full rule watches */
        if (ok && cap > 0)
            gc_batch_add(b, "govcloud_host_pool_used_ratio", t, (cap - av) / cap, 3, "host_id",
                         hid, "pool", name, "zone", zone);
    }
}

static void vm_samples(struct gc_batch *b, const char *hid, int64_t t, json_t *doms,
                       json_t *vms)
{
    size_t i;
    json_t *d;
    bool ok;
    json_array_foreach(doms, i, d)
    {
        const char *id = json_string_value(json_object_get(d, "uuid"));
        const char *dept = id ? json_string_value(json_object_get(vms, id)) : NULL;
        if (!dept)
            continue; /* not a govcloud VM of this host */
#define VM3 3, "department_id", dept, "host_id", hid, "resource_id", id
        const char *state = json_string_value(json_object_get(d, "state"));
        if (state)
            gc_batch_add(b, "govcloud_vm_running", t, strcmp(state, "running") == 0, VM3);
        static const char *const simple[][2] = {
            {"cpu_seconds", "govcloud_vm_cpu_seconds_total"},
            {"vcpus", "govcloud_vm_vcpus"},
            {"memory_bytes", "govcloud_vm_memory_bytes"},
            {"memory_rss_bytes", "govcloud_vm_memory_rss_bytes"},
            {"memory_available_bytes", "govcloud_vm_memory_available_bytes"},
            {"memory_unused_bytes", "govcloud_vm_memory_unused_bytes"}};
        for (size_t k = 0; k < sizeof(simple) / sizeof(simple[0]); k++) {
            double x = jnum(d, simple[k][0], &ok);
            if (ok)
                gc_batch_add(b, simple[k][1], t, x, VM3);
        }
#undef VM3
        static const char *const nic[][2] = {
            {"rx_bytes", "govcloud_vm_network_receive_bytes_total"},
            {"tx_bytes", "govcloud_vm_network_transmit_bytes_total"},
            {"rx_packets", "govcloud_vm_network_receive_packets_total"},
            {"tx_packets", "govcloud_vm_network_transmit_packets_total"},
            {"rx_errors", "govcloud_vm_network_receive_errors_total"},
            {"tx_errors", "govcloud_vm_network_transmit_errors_total"},
            {"rx_drops", "govcloud_vm_network_receive_drops_total"},
            {"tx_drops", "govcloud_vm_network_transmit_drops_total"}};
        static const char *const disk[][2] = {
            {"read_bytes", "govcloud_vm_disk_read_bytes_total"},
            {"write_bytes", "govcloud_vm_disk_write_bytes_total"},
            {"read_requests", "govcloud_vm_disk_read_requests_total"},
            {"write_requests", "govcloud_vm_disk_write_requests_total"},
            {"capacity_bytes", "govcloud_vm_disk_capacity_bytes"},
            {"allocation_bytes", "govcloud_vm_disk_allocation_bytes"}};
        size_t j;
        json_t *e;
        json_array_foreach(json_object_get(d, "interfaces"), j, e)
        {
            const char *dev = json_string_value(json_object_get(e, "name"));
            for (size_t k = 0; dev && k < sizeof(nic) / sizeof(nic[0]); k++) {
                double x = jnum(e, nic[k][0], &ok);
                if (ok)
                    gc_batch_add(b, nic[k][1], t, x, 4, "department_id", dept, "host_id", hid,
                                 "interface", dev, "resource_id", id);
            }
        }
        json_array_foreach(json_object_get(d, "disks"), j, e)
        {
            const char *dev = json_string_value(json_object_get(e, "name"));
            for (size_t k = 0; dev && k < sizeof(disk) / sizeof(disk[0]); k++) {
                double x = jnum(e, disk[k][0], &ok);
                if (ok)
                    gc_batch_add(b, disk[k][1], t, x, 4, "department_id", dept, "device", dev,
                                 "host_id", hid, "resource_id", id);
            }
        }
    }
}

struct host_job {
    struct hostconn *hc;
    char zone[128];
    int64_t t;
};

static void drop_conn(struct hostconn *hc)
{
    if (hc->conn)
        hc->drv->disconnect(hc->conn);
    hc->conn = NULL;
}

/* Keeps why the last round of a host failed, for the alarm on its success series. */
static void note_success(const char *id, const char *zone, const char *why)
{
    struct gc_label l[2] = {{"host_id", id}, {"zone", zone}};
    struct gc_series se = {"govcloud_host_collect_success", l, 2};
    gc_monitor_note(&se, why);
}

static void *host_worker(void *arg)
{
    struct host_job *j = arg;
    struct hostconn *hc = j->hc;
    const char *id = hc->id;
    int64_t t0 = gc_mono_ns();
    struct gc_error err = {0};
    struct gc_batch b = {0};
    bool ok = true;
    char why[400] = "";
    if (hc->conn && !hc->drv->alive(hc->conn))
        drop_conn(hc);
    if (!hc->conn) {
        hc->drv = gc_compute_driver_for(hc->uri, &err);
        if (!hc->drv || hc->drv->connect(hc->uri, NULL, NULL, &hc->conn, &err) != 0) {
            gc_warn("monitor", "host %s: cannot connect to collect: %s", id, err.msg);
            snprintf(why, sizeof(why), "cannot connect: %s", err.msg);
            hc->conn = NULL;
            ok = false;
        }
    }
    if (hc->conn) {
        json_t *node = NULL, *pools = NULL, *doms = NULL;
        bool failed = false;
        if (hc->drv->node_stats && hc->drv->node_stats(hc->conn, &node, &err) != 0) {
            gc_warn("monitor", "host %s: node statistics: %s", id, err.msg);
            snprintf(why, sizeof(why), "node statistics: %s", err.msg);
            failed = true;
        }
        err = (struct gc_error){0};
        if (hc->drv->pools(hc->conn, &pools, &err) != 0) {
            gc_warn("monitor", "host %s: storage pools: %s", id, err.msg);
            if (!why[0])
                snprintf(why, sizeof(why), "storage pools: %s", err.msg);
            failed = true;
        }
        err = (struct gc_error){0};
        if (hc->drv->domain_stats && hc->drv->domain_stats(hc->conn, &doms, &err) != 0) {
            gc_warn("monitor", "host %s: domain statistics: %s", id, err.msg);
            if (!why[0])
                snprintf(why, sizeof(why), "domain statistics: %s", err.msg);
            failed = true;
        }
        if (failed) {
            ok = false;
            drop_conn(hc); /* a fresh connection next round */
        }
        json_t *vms = vms_of_host(id);
        host_samples(&b, id, j->zone, j->t, node, pools);
        vm_samples(&b, id, j->t, doms, vms);
        json_decref(vms);
        json_decref(node);
        json_decref(pools);
        json_decref(doms);
    }
    gc_batch_add(&b, "govcloud_host_collect_duration_seconds", j->t,
                 (double)(gc_mono_ns() - t0) / 1e9, 2, "host_id", id, "zone", j->zone);
    gc_batch_add(&b, "govcloud_host_collect_success", j->t, ok, 2, "host_id", id, "zone",
                 j->zone);
    note_success(id, j->zone, ok ? NULL : why);
    gc_batch_emit(&b);
    pthread_mutex_lock(&C.lock);
    hc->busy = false;
    C.workers--;
    pthread_cond_broadcast(&C.cond);
    pthread_mutex_unlock(&C.lock);
    free(j);
    return NULL;
}

static void start_host_workers(json_t *hosts, int64_t t)
{
    size_t i;
    json_t *h;
    pthread_mutex_lock(&C.lock);
    for (size_t k = 0; k < C.nhc; k++)
        C.hc[k]->seen = false;
    json_array_foreach(hosts, i, h)
    {
        const char *id = json_string_value(json_object_get(h, "id"));
        struct hostconn *hc = hostconn_get(id);
        hc->seen = true;
        if (!json_is_true(json_object_get(h, "up")))
            continue;
        if (hc->busy) {
            char why[200];
            snprintf(why, sizeof(why),
                     "timed out: the collection started %lld ms ago has not finished (the "
                     "host's libvirtd does not answer)",
                     (long long)(t - hc->busy_since_ms));
            gc_warn("monitor", "host %s: %s; skipping this round", id, why);
            /* a hung host reports failure each round, and why */
            const char *zone = json_string_value(json_object_get(h, "zone"));
            struct gc_batch b = {0};
            gc_batch_add(&b, "govcloud_host_collect_success", t, 0, 2, "host_id", id, "zone",
                         zone);
            note_success(id, zone, why);
            gc_batch_emit(&b);
            continue;
        }
        const char *uri = json_string_value(json_object_get(h, "uri"));
        if (strcmp(hc->uri, uri) != 0) {
            drop_conn(hc);
            snprintf(hc->uri, sizeof(hc->uri), "%s", uri);
        }
        struct host_job *j = gc_calloc(1, sizeof(*j));
        j->hc = hc;
        snprintf(j->zone, sizeof(j->zone), "%s",
                 json_string_value(json_object_get(h, "zone")));
        j->t = t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        /* many short-lived threads (one per host or check): keep their stacks small */
        pthread_attr_setstacksize(&attr, 1u << 20);
        pthread_t th;
        if (pthread_create(&th, &attr, host_worker, j) == 0) {
            hc->busy = true;
            hc->busy_since_ms = t;
            C.workers++;
        } else {
            gc_warn("monitor", "host %s: cannot start a collector thread", id);
            free(j);
        }
        pthread_attr_destroy(&attr);
    }
    /* hosts no longer registered: their connections go (unless a worker still uses one) */
    size_t w = 0;
    for (size_t k = 0; k < C.nhc; k++) {
        struct hostconn *hc = C.hc[k];
        if (!hc->seen && !hc->busy) {
            drop_conn(hc);
            free(hc);
        } else {
            C.hc[w++] = hc;
        }
    }
    C.nhc = w;
    pthread_mutex_unlock(&C.lock);
}

static void *coordinator(void *arg)
{
    (void)arg;
    int64_t next = gc_now_ms();
    pthread_mutex_lock(&C.lock);
    while (!C.stop) {
        int64_t now = gc_now_ms();
        if (now < next) {
            struct timespec ts = {.tv_sec = (time_t)(next / 1000),
                                  .tv_nsec = (long)(next % 1000) * 1000000};
            pthread_cond_timedwait(&C.cond, &C.lock, &ts);
            continue;
        }
        /* the round's timestamp: all its samples share it */
        int64_t t = now;
        next = next + C.interval_ms;
        if (next <= now)
            next = now + C.interval_ms;
        pthread_mutex_unlock(&C.lock);
        json_t *hosts = platform_round(t);
        start_host_workers(hosts, t);
        json_decref(hosts);
        pthread_mutex_lock(&C.lock);
    }
    pthread_mutex_unlock(&C.lock);
    return NULL;
}

int gc_collect_start(struct gc_store *st, const struct gc_config *cfg, struct gc_error *err)
{
    (void)err;
    if (!cfg->monitor_enabled)
        return 0;
    C.st = st;
    C.interval_ms = cfg->monitor_interval * 1000;
    C.started_ms = gc_now_ms();
    C.stop = false;
    if (pthread_create(&C.thread, NULL, coordinator, NULL) != 0)
        return gc_error_set(err, GC_EINTERNAL, "", "cannot start the monitoring thread");
    C.running = true;
    gc_info("monitor", "collecting every %lld s", (long long)cfg->monitor_interval);
    return 0;
}

void gc_collect_stop(void)
{
    if (!C.running)
        return;
    pthread_mutex_lock(&C.lock);
    C.stop = true;
    pthread_cond_broadcast(&C.cond);
    pthread_mutex_unlock(&C.lock);
    pthread_join(C.thread, NULL);
    /* workers end once libvirt answers or keepalive drops the host; wait a bounded time */
    int64_t deadline = gc_now_ms() + 10000;
    pthread_mutex_lock(&C.lock);
    while (C.workers > 0 && gc_now_ms() < deadline) {
        struct timespec ts = {.tv_sec = (time_t)(deadline / 1000),
                              .tv_nsec = (long)(deadline % 1000) * 1000000};
        pthread_cond_timedwait(&C.cond, &C.lock, &ts);
    }
    if (C.workers > 0)
        gc_warn("monitor", "%d host collectors still waiting for their host at shutdown",
                C.workers);
    /* a connection in use by a stuck worker is left to the process exit */
    size_t w = 0;
    for (size_t k = 0; k < C.nhc; k++) {
        if (C.hc[k]->busy) {
            C.hc[w++] = C.hc[k];
            continue;
        }
        drop_conn(C.hc[k]);
        free(C.hc[k]);
    }
    C.nhc = w;
    if (!w) {
        free(C.hc);
        C.hc = NULL;
    }
    pthread_mutex_unlock(&C.lock);
    C.running = false;
}
