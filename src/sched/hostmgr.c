/* Host connections: connect, watch, reconnect with backoff. */
#include "sched/hostmgr.h"

#include "core/core.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/timeutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 60000
#define SEEN_EVERY_MS 15000
#define RECONCILE_EVERY_MS 5000
/* Connection attempts running at once: a start with thousands of hosts must not start
 * thousands of threads; the others wait for the next round of the loop. */
#define MAX_CONNECTING 64

struct hconn {
    char id[GC_ID_LEN + 1];
    char uri[512];
    const struct gc_compute_driver *drv;
    struct gc_compute_conn *conn;
    int users;          /* borrowers of conn */
    bool dropped;       /* set by the driver's close callback */
    bool removed;
    int64_t next_try_ms;
    int64_t backoff_ms;
    int64_t seen_written_ms;
    int64_t reconciled_ms;
    int64_t facts_ms;
    bool connecting;    /* an attempt runs in its own thread */
};

static struct {
    struct gc_store *st;
    const struct gc_config *cfg;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct hconn **hosts;
    size_t n, cap;
    pthread_t thread;
    bool running, stopping;
    int connects;  /* attempts running */
    int recording; /* attempts writing their outcome to the store */
    bool released; /* the stop freed the hosts: a late attempt frees its own */
} M = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static struct hconn *find(const char *id)
{
    for (size_t i = 0; i < M.n; i++)
        if (!M.hosts[i]->removed && strcmp(M.hosts[i]->id, id) == 0)
            return M.hosts[i];
    return NULL;
}

static void on_closed(void *opaque, const char *reason)
{
    struct hconn *h = opaque;
    pthread_mutex_lock(&M.lock);
    h->dropped = true;
    pthread_cond_signal(&M.cond);
    pthread_mutex_unlock(&M.lock);
    gc_warn("hosts", "host %s: connection closed (%s)", h->id, reason);
}

/* Records the state of a host in the store. facts/pools may be NULL. */
static void record(const char *id, const char *state, const char *error,
                   const struct gc_host_facts *f, json_t *pools, bool seen)
{
    struct gc_error err = {0};
    struct gc_tx *tx;
    if (gc_tx_begin(M.st, GC_TX_WRITE, &tx, &err) != 0)
        return;
    int64_t now = gc_now_ms();
    char *p = pools ? json_dumps(pools, JSON_COMPACT) : NULL;
    int rc = gc_tx_exec(
        tx,
        "UPDATE hosts SET state = ?, last_error = ?,"
        " last_seen_at = CASE WHEN ? = 1 THEN ? ELSE last_seen_at END,"
        " arch = COALESCE(?, arch), cpu_model = COALESCE(?, cpu_model),"
        " cpus = COALESCE(?, cpus), memory_mib = COALESCE(?, memory_mib),"
        " hypervisor = COALESCE(?, hypervisor),"
        " hypervisor_version = COALESCE(?, hypervisor_version),"
        " libvirt_version = COALESCE(?, libvirt_version), hostname = COALESCE(?, hostname),"
        " pools = COALESCE(?, pools), updated_at = ? WHERE id = ?",
        GC_ARGS(GC_VTXT(state), GC_VTXT(error ? error : ""), GC_VINT_(seen ? 1 : 0),
                GC_VINT_(now), GC_VTXT(f ? f->arch : NULL), GC_VTXT(f ? f->cpu_model : NULL),
                f ? GC_VINT_(f->cpus) : GC_VNUL, f ? GC_VINT_(f->memory_mib) : GC_VNUL,
                GC_VTXT(f ? f->hypervisor : NULL), GC_VTXT(f ? f->hypervisor_version : NULL),
                GC_VTXT(f ? f->libvirt_version : NULL), GC_VTXT(f ? f->hostname : NULL),
                GC_VTXT(p), GC_VINT_(now), GC_VTXT(id)),
        NULL, &err);
    free(p);
    if (!rc && f)
        rc = gc_host_capacity_refresh(tx, M.cfg, id, &err);
    /* a host govcloud cannot reach is down (an incident, and the host-down alarm), unless
     * an operator put it in maintenance first */
    if (!rc && (strcmp(state, "disconnected") == 0 || strcmp(state, "connected") == 0)) {
        int64_t maint = 0;
        rc = gc_tx_query_int(tx, "SELECT maintenance FROM hosts WHERE id = ?",
                             GC_ARGS(GC_VTXT(id)), &maint, &err);
        char cause[400];
        snprintf(cause, sizeof(cause), "govcloud cannot reach its libvirtd: %s",
                 error && error[0] ? error : "connection lost");
        bool down = strcmp(state, "disconnected") == 0 && !maint;
        if (!rc)
            rc = gc_incident_sync(tx, "host", id, NULL, NULL, down ? cause : NULL,
                                  maint ? "the host is in maintenance" : "the host is reachable",
                                  now, &err);
    }
    if (rc || gc_tx_commit(tx, &err) != 0) {
        if (rc)
            gc_tx_rollback(tx);
        gc_err("hosts", "host %s: cannot record state: %s", id, err.msg);
    }
}

static void (*on_connect)(const char *host_id);

void gc_hostmgr_on_connect(void (*fn)(const char *host_id))
{
    on_connect = fn;
}

/* Connects one host (called without M.lock). */
static void try_connect(struct hconn *h)
{
    struct gc_error err = {0};
    struct gc_compute_conn *c = NULL;
    struct gc_host_facts f;
    json_t *pools = NULL;
    int rc = h->drv->connect(h->uri, on_closed, h, &c, &err);
    if (!rc)
        rc = h->drv->facts(c, &f, &err);
    if (!rc && h->drv->pools && h->drv->pools(c, &pools, &err) != 0) {
        gc_warn("hosts", "host %s: %s", h->id, err.msg);
        rc = 0;
    }
    pthread_mutex_lock(&M.lock);
    int64_t now = gc_now_ms();
    /* deleted while this attempt ran: gc_hostmgr_remove found no connection to close */
    bool removed = h->removed;
    if (!removed && rc) {
        h->backoff_ms = h->backoff_ms ? h->backoff_ms * 2 : BACKOFF_MIN_MS;
        if (h->backoff_ms > BACKOFF_MAX_MS)
            h->backoff_ms = BACKOFF_MAX_MS;
        h->next_try_ms = now + h->backoff_ms;
    } else if (!removed) {
        h->conn = c;
        h->dropped = false;
        h->backoff_ms = 0;
        h->seen_written_ms = now;
        h->facts_ms = now;
    }
    /* the daemon stops: the store may be closing, record nothing */
    bool stopping = M.stopping;
    if (stopping && !removed && !rc) {
        h->conn = NULL;
        removed = true;
    }
    if (!removed && !stopping)
        M.recording++;
    pthread_mutex_unlock(&M.lock);
    if (removed || stopping) {
        if (c && removed)
            h->drv->disconnect(c);
    } else if (rc) {
        gc_warn("hosts", "host %s (%s): %s; next try in %lld s", h->id, h->uri, err.msg,
                (long long)(h->backoff_ms / 1000));
        record(h->id, "disconnected", err.msg, NULL, NULL, false);
        if (c)
            h->drv->disconnect(c);
    } else {
        gc_info("hosts", "host %s connected (%s, %s %s, %d CPUs, %lld MiB)", h->id, h->uri,
                f.hypervisor, f.arch, f.cpus, (long long)f.memory_mib);
        record(h->id, "connected", NULL, &f, pools, true);
        if (on_connect)
            on_connect(h->id);
    }
    json_decref(pools);
    if (!removed && !stopping) {
        pthread_mutex_lock(&M.lock);
        M.recording--;
        pthread_cond_broadcast(&M.cond);
        pthread_mutex_unlock(&M.lock);
    }
}

/* Connecting can block for as long as the network lets it (a host that accepts and never
 * answers): each attempt runs in a thread of its own, so one host never delays the others,
 * the API or the shutdown. */
static void *connect_thread(void *arg)
{
    struct hconn *h = arg;
    try_connect(h);
    pthread_mutex_lock(&M.lock);
    h->connecting = false;
    M.connects--;
    bool orphan = M.released;
    pthread_cond_broadcast(&M.cond);
    pthread_mutex_unlock(&M.lock);
    if (orphan)
        free(h); /* left behind by the stop, which freed the others */
    return NULL;
}

/* With M.lock held. */
static void start_connect(struct hconn *h)
{
    h->connecting = true;
    h->next_try_ms = INT64_MAX;
    M.connects++;
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, connect_thread, h) != 0) {
        h->connecting = false;
        M.connects--;
        h->next_try_ms = gc_now_ms() + BACKOFF_MIN_MS;
        gc_err("hosts", "host %s: cannot start a connection thread", h->id);
    }
    pthread_attr_destroy(&attr);
}

/* What the hypervisor shows against what govcloud recorded, into out; "" when they agree.
 * vcpus/mem: recorded; dvcpus/dmem: the domain's (0: unknown). */
static void drift_of(const char *state, const char *power, int64_t vcpus, int64_t mem,
                     int64_t dvcpus, int64_t dmem, char *out, size_t cap)
{
    out[0] = '\0';
    if (strcmp(state, "building") == 0 || strcmp(state, "deleting") == 0 ||
        strcmp(state, "error") == 0 || strcmp(state, "migrating") == 0)
        return;
    if (strcmp(power, "missing") == 0) {
        snprintf(out, cap, "the domain is missing on the host: it was removed outside govcloud");
        return;
    }
    bool on = strcmp(power, "running") == 0 || strcmp(power, "blocked") == 0 ||
              strcmp(power, "paused") == 0;
    if (strcmp(state, "running") == 0 && !on)
        snprintf(out, cap,
                 "the domain stopped outside govcloud (or the guest powered itself off)");
    else if (strcmp(state, "stopped") == 0 && on)
        snprintf(out, cap, "the domain was started outside govcloud");
    else if ((dvcpus > 0 && dvcpus != vcpus) || (dmem > 0 && dmem != mem))
        snprintf(out, cap,
                 "the domain has %lld vCPUs and %lld MiB where govcloud recorded %lld and "
                 "%lld: it was changed outside govcloud",
                 (long long)dvcpus, (long long)dmem, (long long)vcpus, (long long)mem);
}

/* Compares the host's domains with the VMs recorded on it. The observed power state is
 * recorded; a difference from the recorded state is reported as drift (and audited when it
 * appears), never "corrected" behind the operator's back. */
static void reconcile(struct hconn *h, json_t *domains)
{
    struct gc_error err = {0};
    struct gc_tx *tx;
    if (gc_tx_begin(M.st, GC_TX_WRITE, &tx, &err) != 0)
        return;
    struct gc_rows *r = NULL;
    json_t *vms = json_array();
    int rc = gc_tx_query(tx,
                         "SELECT v.id, v.state, v.power_state, v.drift, v.department_id,"
                         " COALESCE(d.path, ''), v.vcpus, v.memory_mib FROM vms v"
                         " LEFT JOIN departments d ON d.id = v.department_id WHERE v.host_id = ?"
                         /* a VM with a job in progress is changing on purpose */
                         " AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.resource_type = 'vm'"
                         " AND j.resource_id = v.id AND j.state IN ('queued', 'running'))",
                         GC_ARGS(GC_VTXT(h->id)), &r, &err);
    while (!rc && (rc = gc_rows_next(r, &err)) > 0) {
        rc = 0;
        json_array_append_new(vms, json_pack("[ssssssII]", gc_rows_text(r, 0),
                                             gc_rows_text(r, 1), gc_rows_text(r, 2),
                                             gc_rows_text(r, 3), gc_rows_text(r, 4),
                                             gc_rows_text(r, 5), (json_int_t)gc_rows_int(r, 6),
                                             (json_int_t)gc_rows_int(r, 7)));
    }
    gc_rows_free(r);
    size_t i;
    json_t *v;
    int64_t now = gc_now_ms();
    json_array_foreach(vms, i, v) {
        if (rc)
            break;
        const char *id = json_string_value(json_array_get(v, 0));
        const char *state = json_string_value(json_array_get(v, 1));
        const char *power = "missing";
        int64_t dvcpus = 0, dmem = 0;
        size_t k;
        json_t *dom;
        json_array_foreach(domains, k, dom) {
            if (strcmp(json_string_value(json_object_get(dom, "uuid")), id) == 0) {
                power = json_string_value(json_object_get(dom, "state"));
                dvcpus = json_integer_value(json_object_get(dom, "vcpus"));
                dmem = json_integer_value(json_object_get(dom, "memory_mib"));
            }
        }
        char drift[256];
        drift_of(state, power, json_integer_value(json_array_get(v, 6)),
                 json_integer_value(json_array_get(v, 7)), dvcpus, dmem, drift, sizeof(drift));
        if (strcmp(power, json_string_value(json_array_get(v, 2))) == 0 &&
            strcmp(drift, json_string_value(json_array_get(v, 3))) == 0)
            continue;
        rc = gc_tx_exec(tx,
                        "UPDATE vms SET power_state = ?, drift = ?, updated_at = ?,"
                        " version = version + 1 WHERE id = ?",
                        GC_ARGS(GC_VTXT(power), GC_VTXT(drift), GC_VINT_(now), GC_VTXT(id)),
                        NULL, &err);
        if (!rc)
            rc = gc_vm_incident_sync(tx, id, now, &err);
        if (!rc && drift[0] && strcmp(drift, json_string_value(json_array_get(v, 3))) != 0) {
            struct gc_ctx ctx = {.store = M.st, .cfg = M.cfg, .request_id = "", .source_ip = ""};
            json_t *detail = json_pack("{s:s,s:s,s:s}", "recorded_state", state,
                                       "power_state", power, "host_id", h->id);
            struct gc_audit_event ev = {.action = "vm.drift",
                                        .resource_type = "vm",
                                        .resource_id = id,
                                        .department_id = json_string_value(json_array_get(v, 4)),
                                        .department_path =
                                            json_string_value(json_array_get(v, 5)),
                                        .outcome = GC_OUTCOME_FAILURE,
                                        .reason = drift,
                                        .detail = detail,
                                        .actor_name = "system"};
            rc = gc_audit_append(tx, &ctx, &ev, &err);
            json_decref(detail);
            if (!rc)
                gc_warn("vms", "vm %s on host %s: %s", id, h->id, drift);
        }
    }
    json_decref(vms);
    if (rc) {
        gc_tx_rollback(tx);
        gc_err("hosts", "host %s: reconciliation failed: %s", h->id, err.msg);
        return;
    }
    if (gc_tx_commit(tx, &err) != 0)
        gc_err("hosts", "host %s: reconciliation failed: %s", h->id, err.msg);
}

/* The VMs of a host that dropped: their state is unknown, never deleted. */
static void mark_unknown(const char *host)
{
    struct gc_error err = {0};
    struct gc_tx *tx;
    if (gc_tx_begin(M.st, GC_TX_WRITE, &tx, &err) != 0)
        return;
    int64_t now = gc_now_ms();
    if (gc_tx_exec(tx,
                   "UPDATE vms SET power_state = 'unknown', updated_at = ?, version = version + 1"
                   " WHERE host_id = ? AND power_state <> 'unknown'",
                   GC_ARGS(GC_VINT_(now), GC_VTXT(host)), NULL, &err) != 0) {
        gc_tx_rollback(tx);
        return;
    }
    /* VMs that should run and cannot be shown to: incidents from now */
    struct gc_rows *r = NULL;
    json_t *ids = json_array();
    int rc = gc_tx_query(tx, "SELECT id FROM vms WHERE host_id = ? AND state = 'running'",
                         GC_ARGS(GC_VTXT(host)), &r, &err);
    while (!rc && (rc = gc_rows_next(r, &err)) > 0) {
        rc = 0;
        json_array_append_new(ids, json_string(gc_rows_text(r, 0)));
    }
    gc_rows_free(r);
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v) {
        if (rc < 0)
            break;
        rc = gc_vm_incident_sync(tx, json_string_value(v), now, &err);
    }
    json_decref(ids);
    if (rc < 0) {
        gc_tx_rollback(tx);
        return;
    }
    (void)gc_tx_commit(tx, &err);
}

static void *loop(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&M.lock);
    while (!M.stopping) {
        int64_t now = gc_now_ms();
        for (size_t i = 0; i < M.n && !M.stopping; i++) {
            struct hconn *h = M.hosts[i];
            if (h->removed)
                continue;
            if (h->conn && (h->dropped || !h->drv->alive(h->conn))) {
                if (h->users > 0)
                    continue; /* close once the borrowers are done */
                struct gc_compute_conn *c = h->conn;
                h->conn = NULL;
                h->next_try_ms = now + BACKOFF_MIN_MS;
                h->backoff_ms = BACKOFF_MIN_MS;
                pthread_mutex_unlock(&M.lock);
                h->drv->disconnect(c);
                record(h->id, "disconnected", "connection lost", NULL, NULL, false);
                mark_unknown(h->id);
                pthread_mutex_lock(&M.lock);
            } else if (!h->conn && !h->connecting && now >= h->next_try_ms &&
                       M.connects < MAX_CONNECTING) {
                start_connect(h);
            } else if (h->conn && now - h->reconciled_ms >= RECONCILE_EVERY_MS) {
                h->reconciled_ms = now;
                h->users++;
                struct gc_compute_conn *c = h->conn;
                pthread_mutex_unlock(&M.lock);
                json_t *domains = NULL;
                struct gc_error err = {0};
                if (h->drv->domains(c, &domains, &err) == 0)
                    reconcile(h, domains);
                json_decref(domains);
                pthread_mutex_lock(&M.lock);
                h->users--;
                pthread_cond_broadcast(&M.cond);
            } else if (h->conn && now - h->facts_ms >= M.cfg->host_refresh_interval * 1000) {
                h->facts_ms = now;
                h->seen_written_ms = now;
                h->users++;
                struct gc_compute_conn *c = h->conn;
                pthread_mutex_unlock(&M.lock);
                struct gc_host_facts f = {0};
                json_t *pools = NULL;
                struct gc_error err = {0};
                if (h->drv->facts(c, &f, &err) == 0 && h->drv->pools(c, &pools, &err) == 0)
                    record(h->id, "connected", NULL, &f, pools, true);
                else
                    gc_warn("hosts", "host %s: cannot refresh its facts: %s", h->id, err.msg);
                json_decref(pools);
                pthread_mutex_lock(&M.lock);
                h->users--;
                pthread_cond_broadcast(&M.cond);
            } else if (h->conn && now - h->seen_written_ms >= SEEN_EVERY_MS) {
                h->seen_written_ms = now;
                pthread_mutex_unlock(&M.lock);
                record(h->id, "connected", NULL, NULL, NULL, true);
                pthread_mutex_lock(&M.lock);
            }
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&M.cond, &M.lock, &ts);
    }
    pthread_mutex_unlock(&M.lock);
    return NULL;
}

static struct hconn *add_locked(const char *id, const char *uri)
{
    struct hconn *h = gc_calloc(1, sizeof(*h));
    snprintf(h->id, sizeof(h->id), "%s", id);
    snprintf(h->uri, sizeof(h->uri), "%s", uri);
    h->drv = gc_compute_driver_for(uri, NULL);
    if (M.n == M.cap) {
        M.cap = M.cap ? M.cap * 2 : 16;
        M.hosts = gc_realloc(M.hosts, M.cap * sizeof(*M.hosts));
    }
    M.hosts[M.n++] = h;
    return h;
}

int gc_hostmgr_start(struct gc_store *st, const struct gc_config *cfg, struct gc_error *err)
{
    M.st = st;
    M.cfg = cfg;
    int rc = gc_compute_libvirt.init(err);
    if (rc)
        return rc;
    /* what the previous run recorded is no longer known: no host is connected yet */
    struct gc_tx *tx;
    rc = gc_tx_begin(st, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    rc = gc_tx_exec(tx, "UPDATE hosts SET state = 'connecting' WHERE state <> 'connecting'",
                    GC_NOARGS, NULL, err);
    /* the over-commit ratios may have changed since the last run */
    if (!rc)
        rc = gc_host_capacity_refresh(tx, cfg, NULL, err);
    if (rc) {
        gc_tx_rollback(tx);
        return rc;
    }
    rc = gc_tx_commit(tx, err);
    if (rc)
        return rc;
    rc = gc_tx_begin(st, GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    struct gc_rows *r = NULL;
    rc = gc_tx_query(tx, "SELECT id, uri FROM hosts ORDER BY id", GC_NOARGS, &r, err);
    pthread_mutex_lock(&M.lock);
    while (!rc && (rc = gc_rows_next(r, err)) > 0) {
        rc = 0;
        struct hconn *h = add_locked(gc_rows_text(r, 0), gc_rows_text(r, 1));
        if (!h->drv)
            h->next_try_ms = INT64_MAX;
    }
    pthread_mutex_unlock(&M.lock);
    if (rc > 0)
        rc = 0;
    gc_rows_free(r);
    gc_tx_rollback(tx);
    if (rc)
        return rc;
    M.stopping = false;
    if (pthread_create(&M.thread, NULL, loop, NULL) != 0)
        return gc_error_set(err, GC_EINTERNAL, "", "cannot start the host manager thread");
    M.running = true;
    return 0;
}

void gc_hostmgr_stop(void)
{
    if (!M.running)
        return;
    pthread_mutex_lock(&M.lock);
    M.stopping = true;
    pthread_cond_broadcast(&M.cond);
    pthread_mutex_unlock(&M.lock);
    pthread_join(M.thread, NULL);
    M.running = false;
    /* attempts still connecting get a moment; one that hangs is left behind (it records
     * nothing once it sees the daemon stopping), an attempt writing to the store is awaited */
    pthread_mutex_lock(&M.lock);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 2;
    while (M.connects > 0)
        if (pthread_cond_timedwait(&M.cond, &M.lock, &ts) != 0)
            break;
    while (M.recording > 0)
        pthread_cond_wait(&M.cond, &M.lock);
    for (size_t i = 0; i < M.n; i++) {
        struct hconn *h = M.hosts[i];
        if (h->connecting)
            continue; /* its thread still holds it */
        if (h->conn)
            h->drv->disconnect(h->conn);
        free(h);
    }
    M.released = true;
    pthread_mutex_unlock(&M.lock);
    free(M.hosts);
    M.hosts = NULL;
    M.n = M.cap = 0;
}

void gc_hostmgr_add(const char *id, const char *uri)
{
    pthread_mutex_lock(&M.lock);
    struct hconn *h = add_locked(id, uri);
    if (!h->drv) {
        h->next_try_ms = INT64_MAX;
        pthread_mutex_unlock(&M.lock);
        return;
    }
    start_connect(h);
    /* the caller answers with what is known after a short wait: connected, or still
     * connecting (a slow host), or disconnected with the reason */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 5;
    while (h->connecting && !M.stopping)
        if (pthread_cond_timedwait(&M.cond, &M.lock, &ts) != 0)
            break;
    pthread_mutex_unlock(&M.lock);
}

void gc_hostmgr_remove(const char *id)
{
    pthread_mutex_lock(&M.lock);
    struct hconn *h = find(id);
    if (h) {
        /* the struct stays (the driver's close callback may still point to it); the
         * connection goes once nobody borrows it */
        h->removed = true;
        while (h->users > 0)
            pthread_cond_wait(&M.cond, &M.lock);
        struct gc_compute_conn *c = h->conn;
        h->conn = NULL;
        pthread_mutex_unlock(&M.lock);
        if (c)
            h->drv->disconnect(c);
        return;
    }
    pthread_mutex_unlock(&M.lock);
}

int gc_hostmgr_acquire(const char *id, const struct gc_compute_driver **drv,
                       struct gc_compute_conn **conn, struct gc_error *err)
{
    pthread_mutex_lock(&M.lock);
    struct hconn *h = find(id);
    if (!h || !h->conn || h->dropped) {
        pthread_mutex_unlock(&M.lock);
        return gc_error_set(err, GC_EBUSY, "host_id", "host '%s' is not connected", id);
    }
    h->users++;
    *drv = h->drv;
    *conn = h->conn;
    pthread_mutex_unlock(&M.lock);
    return 0;
}

void gc_hostmgr_release(const char *id)
{
    pthread_mutex_lock(&M.lock);
    for (size_t i = 0; i < M.n; i++)
        if (strcmp(M.hosts[i]->id, id) == 0 && M.hosts[i]->users > 0) {
            M.hosts[i]->users--;
            break;
        }
    pthread_cond_broadcast(&M.cond);
    pthread_mutex_unlock(&M.lock);
}

json_t *gc_hostmgr_hosts(void)
{
    json_t *a = json_array();
    pthread_mutex_lock(&M.lock);
    for (size_t i = 0; i < M.n; i++)
        if (!M.hosts[i]->removed)
            json_array_append_new(a, json_string(M.hosts[i]->id));
    pthread_mutex_unlock(&M.lock);
    return a;
}
