/* The option table and its INI / flag parsers (inih). */
#include "util/config.h"

#include "util/mem.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define OFF(f) offsetof(struct gc_config, f)

/* offsets are kept beside the table so that the table itself stays readable */
static const size_t option_offsets[] = {
    OFF(listen), OFF(threads), OFF(max_body_bytes), OFF(connection_limit),
    OFF(connection_timeout), OFF(data_dir), OFF(store_driver), OFF(log_format), OFF(log_level),
    OFF(token_ttl), OFF(max_failed_logins), OFF(lockout_seconds), OFF(password_min_length),
    OFF(virt_type), OFF(console_log_dir), OFF(storage_pool), OFF(cpu_overcommit_percent),
    OFF(ram_overcommit_percent), OFF(placement_weigher), OFF(stop_timeout),
    OFF(host_refresh_interval), OFF(vnc_listen), OFF(images_store_host),
    OFF(images_store_pool), OFF(images_max_upload_gib), OFF(bootstrap_host_uri),
    OFF(bootstrap_image_dir), OFF(job_workers), OFF(test_job_kinds), OFF(monitor_enabled),
    OFF(monitor_interval), OFF(monitor_protected_networks), OFF(monitor_metrics_access),
    OFF(tsdb_enabled), OFF(tsdb_flush_interval), OFF(tsdb_rollup_interval),
    OFF(tsdb_retention_raw_days), OFF(tsdb_retention_5m_days), OFF(tsdb_retention_1h_days),
    OFF(tsdb_test_ingest), OFF(alarm_enabled), OFF(alarm_interval), OFF(alarm_stale_after),
    OFF(alarm_burn_interval), OFF(alarm_availability_target), OFF(asset_sync_interval),
    OFF(supervision_cloud_id), OFF(supervision_substitution_weights), OFF(push_interval),
    OFF(push_retention), OFF(accept_pushes), OFF(env_interval), OFF(env_profile_dir),
    OFF(env_rate_window), OFF(env_export_retention_days),
};

const struct gc_config_option gc_config_options[] = {
    {"server", "listen", GC_OPT_STR, "127.0.0.1:8080", 0, 0, NULL,
     "Address and port of the HTTP API, `ADDR:PORT`; IPv6 in brackets, e.g. `[::1]:8080`."},
    {"server", "threads", GC_OPT_INT, "0", 0, 256, NULL,
     "HTTP worker threads; 0 means one per CPU."},
    {"server", "max_body_bytes", GC_OPT_INT, "1048576", 1024, 1073741824, NULL,
     "Largest request body accepted; larger bodies get 413 and are not read."},
    {"server", "connection_limit", GC_OPT_INT, "1024", 16, 65536, NULL,
     "Most concurrent client connections."},
    {"server", "connection_timeout", GC_OPT_INT, "60", 1, 3600, NULL,
     "Seconds an idle connection is kept open."},
    {"store", "data_dir", GC_OPT_STR, "/var/lib/govcloud", 0, 0, NULL,
     "Directory for the database and other state; created if missing."},
    {"store", "driver", GC_OPT_ENUM, "sqlite", 0, 0, "sqlite",
     "Store backend. `sqlite` keeps `govcloud.db` in `data_dir` (WAL, synchronous commits)."},
    {"log", "format", GC_OPT_ENUM, "json", 0, 0, "json|syslog",
     "`json`: one JSON object per line on standard error; `syslog`: the system log."},
    {"log", "level", GC_OPT_ENUM, "info", 0, 0, "debug|info|warn|error", "Lowest level logged."},
    {"auth", "token_ttl", GC_OPT_INT, "28800", 60, 2592000, NULL,
     "Lifetime of a login token in seconds (default 8 hours)."},
    {"auth", "max_failed_logins", GC_OPT_INT, "5", 1, 100, NULL,
     "Failed logins in a row after which an account is locked."},
    {"auth", "lockout_seconds", GC_OPT_INT, "900", 1, 86400, NULL,
     "How long a locked account stays locked."},
    {"auth", "password_min_length", GC_OPT_INT, "10", 8, 128, NULL,
     "Shortest password accepted; passwords also need three of: lowercase, uppercase, digit, "
     "other."},
    {"compute", "virt_type", GC_OPT_ENUM, "auto", 0, 0, "auto|kvm|qemu",
     "Virtualisation of new VMs: `kvm` (hardware), `qemu` (software emulation, slow), or "
     "`auto`: KVM where the host offers it for the image's architecture."},
    {"compute", "console_log_dir", GC_OPT_STR, "/var/log/libvirt/qemu", 0, 0, NULL,
     "Directory on each hypervisor host where libvirt's virtlogd writes the serial console of "
     "each VM (`<domain>-console.log`)."},
    {"compute", "storage_pool", GC_OPT_STR, "default", 0, 0, NULL,
     "libvirt storage pool on each host that holds the root volumes of VMs booted from disk "
     "images, and the volumes whose create request names no `pool`."},
    {"compute", "cpu_overcommit_percent", GC_OPT_INT, "400", 100, 10000, NULL,
     "vCPUs placed on a host, in percent of its CPUs (400 = 4 vCPUs per CPU)."},
    {"compute", "ram_overcommit_percent", GC_OPT_INT, "100", 50, 1000, NULL,
     "Memory of VMs placed on a host, in percent of its memory."},
    {"compute", "placement_weigher", GC_OPT_ENUM, "spread", 0, 0, "spread|pack",
     "How placement chooses among the hosts that fit: `spread` takes the host with the most "
     "free memory (even load), `pack` the one with the least free memory that still fits "
     "(fills hosts up so idle ones can be powered down). A zone may set its own."},
    {"compute", "stop_timeout", GC_OPT_INT, "60", 1, 3600, NULL,
     "Seconds a graceful stop waits for the guest to power off before it is forced off."},
    {"compute", "host_refresh_interval", GC_OPT_INT, "60", 1, 3600, NULL,
     "Seconds between two readings of a connected host's facts and storage pools (capacity, "
     "pools defined later)."},
    {"compute", "vnc_listen", GC_OPT_STR, "127.0.0.1", 0, 0, NULL,
     "Address on each hypervisor host where the VNC consoles of new VMs listen (port chosen "
     "by libvirt from 5900, password per VM; see `GET /v1/vms/{id}/vnc`): a numeric IPv4 or "
     "IPv6 address every host has (`127.0.0.1`: reachable only on the host, e.g. through an SSH "
     "tunnel; `0.0.0.0` or `::`: every interface), or `none` for no console."},
    {"images", "store_host", GC_OPT_STR, "auto", 0, 0, NULL,
     "Host (id or name) whose storage pool keeps uploaded images (`PUT /v1/images/{id}/file`); "
     "`auto`: the connected host registered first. VMs on other hosts get a copy from it."},
    {"images", "store_pool", GC_OPT_STR, "auto", 0, 0, NULL,
     "Storage pool on the store host that keeps uploaded images; `auto`: `[compute] "
     "storage_pool`. Copies on the other hosts go to their `[compute] storage_pool`."},
    {"images", "max_upload_gib", GC_OPT_INT, "64", 1, 65536, NULL,
     "Largest image upload in GiB; a larger `Content-Length` gets 413 before the body is read "
     "(the `[server] max_body_bytes` limit does not apply to uploads)."},
    {"bootstrap", "host_uri", GC_OPT_STR, "none", 0, 0, NULL,
     "A hypervisor host registered at start when no host has this URI (`make run` uses "
     "`qemu:///system`); `none` registers nothing."},
    {"bootstrap", "image_dir", GC_OPT_STR, "none", 0, 0, NULL,
     "A directory with `vmlinuz` and `initramfs.img`, registered at start as image `tiny` "
     "(with a flavor `tiny`: 1 vCPU, 128 MiB) when no image has that name; `none` skips it."},
    {"jobs", "workers", GC_OPT_INT, "2", 1, 64, NULL, "Threads that run background jobs."},
    {"jobs", "test_job_kinds", GC_OPT_BOOL, "false", 0, 0, NULL,
     "Registers job kinds that exist only for tests (`test.sleep`). Keep off in production."},
    {"monitor", "enabled", GC_OPT_BOOL, "true", 0, 0, NULL,
     "Collects samples from hosts, VMs, the platform and service checks (see "
     "docs/monitoring.md)."},
    {"monitor", "interval", GC_OPT_INT, "15", 1, 3600, NULL,
     "Seconds between two collection rounds of hosts, VMs and the platform; a series that "
     "stops reporting leaves `/metrics` after three intervals."},
    {"monitor", "protected_networks", GC_OPT_STR, "none", 0, 0, NULL,
     "Comma-separated networks (CIDR) that only service checks created by platform roles may "
     "target, in addition to loopback, link-local, unspecified and multicast addresses, which "
     "are always protected; put the management network of the hosts here. `none`: nothing "
     "more."},
    {"monitor", "metrics_access", GC_OPT_ENUM, "token", 0, 0, "token|public",
     "Who sees the monitoring series (they carry department data) on `/metrics`: `token` "
     "needs a bearer token or API key of a platform role (anonymous scrapes get only the "
     "daemon's own HTTP and job metrics); `public` shows everything to anyone who can reach "
     "the port."},
    {"tsdb", "enabled", GC_OPT_BOOL, "true", 0, 0, NULL,
     "Keeps the samples of the monitoring collectors in the embedded time-series store "
     "(tables `tsdb_*` of the database) and serves `/v1/metrics/query`."},
    {"tsdb", "flush_interval", GC_OPT_INT, "10", 1, 3600, NULL,
     "Seconds between two writes of new samples to the database (one transaction each). A "
     "crash (kill -9, power loss) loses at most the samples of the last interval; queries "
     "see samples once written."},
    {"tsdb", "rollup_interval", GC_OPT_INT, "600", 60, 86400, NULL,
     "Seconds between two roll-up and retention runs (raw samples into 5-minute and 1-hour "
     "aggregates; deletion of chunks past retention)."},
    {"tsdb", "retention_raw_days", GC_OPT_INT, "15", 1, 3650, NULL,
     "Days raw samples are kept."},
    {"tsdb", "retention_5m_days", GC_OPT_INT, "365", 1, 36500, NULL,
     "Days 5-minute aggregates (min, max, sum, count) are kept."},
    {"tsdb", "retention_1h_days", GC_OPT_INT, "1095", 1, 36500, NULL,
     "Days 1-hour aggregates (min, max, sum, count) are kept."},
    {"tsdb", "test_ingest", GC_OPT_BOOL, "false", 0, 0, NULL,
     "Tests only: enables `POST /v1/metrics/test-samples`, which lets a platform "
     "administrator inject samples as if a collector had emitted them. Keep off in "
     "production."},
    {"alarm", "enabled", GC_OPT_BOOL, "true", 0, 0, NULL,
     "Evaluates the metric alarm rules (incident rules work whatever this says)."},
    {"alarm", "evaluation_interval", GC_OPT_INT, "5", 1, 300, NULL,
     "Seconds between two rounds of the alarm evaluator: how late, at most, an alarm fires or "
     "resolves after its condition (and `for`) says so."},
    {"alarm", "stale_after", GC_OPT_INT, "300", 30, 86400, NULL,
     "Seconds after which a series that stopped reporting resolves its alarm (\"the series "
     "has not been reported\") and is forgotten."},
    {"alarm", "burn_interval", GC_OPT_INT, "60", 0, 3600, NULL,
     "Seconds between two computations of the availability error-budget burn rate "
     "(`govcloud_availability_burn_rate`); 0 turns it off."},
    {"alarm", "availability_target", GC_OPT_STR, "99.99", 0, 0, NULL,
     "The availability target, in percent: the error budget the burn rate measures, the "
     "default target of availability figures and reports, and the target of the monthly "
     "figures of the supervision availability dataset."},
    {"supervision", "asset_sync_interval", GC_OPT_INT, "30", 1, 86400, NULL,
     "Seconds between two passes of asset discovery, which makes the asset inventory match "
     "the hosts, VMs, volumes and networks (each real change gets a new `seq` and a history "
     "row). A pull of the asset dataset also runs a pass first (docs/supervision.md)."},
    {"supervision", "cloud_id", GC_OPT_STR, "auto", 0, 0, NULL,
     "This cloud's id in supervision data (docs/supervision-spec.md): a lowercase UUID, or "
     "`auto`: a UUID generated on first use and kept in `data_dir/supervision/cloud-id`. The "
     "cloud's SM2 signing key is `data_dir/supervision/sm2-key.pem` (0600, created on first "
     "use); `GET /v1/supervision/public-key` shows both for registering the cloud with a "
     "supervisor."},
    {"supervision", "substitution_weights", GC_OPT_STR,
     "cpu=0.2,server=0.15,os=0.15,database=0.15,middleware=0.1,storage=0.1,network=0.1,"
     "security=0.05",
     0, 0, NULL,
     "Weights of the layers in the overall domestic substitution rate (docs/supervision.md): "
     "`layer=weight` pairs separated by commas, layers among `cpu`, `server`, `os`, "
     "`database`, `middleware`, `storage`, `network`, `security`, each at most once, weights "
     "non-negative and summing to 1; a layer not named weighs 0. Checked at start."},
    {"supervision", "push_interval", GC_OPT_INT, "2", 1, 300, NULL,
     "Seconds between two passes of the pusher, which takes new records of every dataset "
     "into the outbox of each enabled receiver (`/v1/supervision/receivers`) and delivers "
     "the stored batches in order. A failed delivery is retried with a backoff of 1 s "
     "doubling to 5 min, whatever this says (docs/supervision.md#push-to-a-supervisor)."},
    {"supervision", "push_retention", GC_OPT_INT, "86400", 0, 31536000, NULL,
     "Seconds a delivered batch stays in the push outbox before it is deleted (0: at once). "
     "Undelivered batches are never deleted."},
    {"supervision", "accept_pushes", GC_OPT_BOOL, "false", 0, 0, NULL,
     "Supervisor mode: accept batches pushed by registered clouds on "
     "`POST /v1/supervision/ingest` (otherwise it answers 404). Register clouds with "
     "`POST /v1/supervision/clouds` (docs/supervision.md#supervisor-mode)."},
    {"environment", "interval", GC_OPT_INT, "30", 1, 3600, NULL,
     "Seconds between two polls of the data-centre environment sensors (`/v1/sensors`, "
     "docs/environment.md); each device is read in its own thread within its own "
     "`timeout_ms`, so a hung device delays no other. Needs [monitor] enabled."},
    {"environment", "profile_dir", GC_OPT_STR, "none", 0, 0, NULL,
     "Directory of extra sensor device profiles (`*.json`, the format of "
     "docs/environment.md), loaded at start beside the embedded ones; a bad file stops "
     "the start with the file and field named. `none`: only the embedded profiles."},
    {"environment", "rate_window", GC_OPT_INT, "900", 10, 86400, NULL,
     "Seconds of readings behind a temperature's rate of change (°C per hour), checked "
     "against the GB 50174-2017 limit of 20 °C/h; a rate is given once readings span at "
     "least half the window."},
    {"environment", "export_retention_days", GC_OPT_INT, "7", 1, 3650, NULL,
     "Days the readings exported as the supervision interface's environment dataset are "
     "kept for pulls and pushes (docs/supervision.md); the readings' series stay in the "
     "time-series store by its own retention."},
};
const size_t gc_config_noptions = sizeof(gc_config_options) / sizeof(gc_config_options[0]);

_Static_assert(sizeof(option_offsets) / sizeof(option_offsets[0]) ==
                   sizeof(gc_config_options) / sizeof(gc_config_options[0]),
               "every option needs an offset");

static int find_option(const char *section, const char *name)
{
    int found = -1;
    for (size_t i = 0; i < gc_config_noptions; i++) {
        const struct gc_config_option *o = &gc_config_options[i];
        if (strcmp(o->name, name) != 0)
            continue;
        if (section && strcmp(o->section, section) != 0)
            continue;
        if (found >= 0)
            return -2; /* ambiguous bare name */
        found = (int)i;
    }
    return found;
}

static bool enum_allows(const char *allowed, const char *v)
{
    size_t n = strlen(v);
    for (const char *p = allowed; *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncmp(p, v, n) == 0)
            return true;
        if (!bar)
            break;
        p = bar + 1;
    }
    return false;
}

static int set_option(struct gc_config *cfg, size_t idx, const char *value, struct gc_error *err)
{
    const struct gc_config_option *o = &gc_config_options[idx];
    char *base = (char *)cfg + option_offsets[idx];
    switch (o->type) {
    case GC_OPT_STR:
    case GC_OPT_ENUM:
        if (o->type == GC_OPT_ENUM && !enum_allows(o->allowed, value))
            return gc_error_set(err, GC_EINVAL, o->name,
                                "option [%s] %s: '%s' is not allowed; allowed: %s", o->section,
                                o->name, value, o->allowed);
        if (o->type == GC_OPT_STR && value[0] == '\0')
            return gc_error_set(err, GC_EINVAL, o->name, "option [%s] %s: must not be empty",
                                o->section, o->name);
        free(*(char **)base);
        *(char **)base = gc_strdup(value);
        return 0;
    case GC_OPT_INT: {
        char *end;
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (errno || end == value || *end || v < o->min || v > o->max)
            return gc_error_set(err, GC_EINVAL, o->name,
                                "option [%s] %s: '%s' is not an integer from %lld to %lld",
                                o->section, o->name, value, (long long)o->min,
                                (long long)o->max);
        *(int64_t *)base = v;
        return 0;
    }
    case GC_OPT_BOOL:
        if (!strcmp(value, "true") || !strcmp(value, "yes") || !strcmp(value, "1") ||
            !strcmp(value, "on"))
            *(bool *)base = true;
        else if (!strcmp(value, "false") || !strcmp(value, "no") || !strcmp(value, "0") ||
                 !strcmp(value, "off"))
            *(bool *)base = false;
        else
            return gc_error_set(err, GC_EINVAL, o->name,
                                "option [%s] %s: '%s' is not a boolean (true or false)",
                                o->section, o->name, value);
        return 0;
    }
    GC_BUG("option type %d", (int)o->type);
}

void gc_config_init(struct gc_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < gc_config_noptions; i++)
        if (set_option(cfg, i, gc_config_options[i].def, NULL) != 0)
            GC_BUG("bad default for option %s", gc_config_options[i].name);
}

void gc_config_release(struct gc_config *cfg)
{
    for (size_t i = 0; i < gc_config_noptions; i++) {
        enum gc_opt_type t = gc_config_options[i].type;
        if (t == GC_OPT_STR || t == GC_OPT_ENUM) {
            char **p = (char **)((char *)cfg + option_offsets[i]);
            free(*p);
            *p = NULL;
        }
    }
}

int gc_config_set(struct gc_config *cfg, const char *key, const char *value, struct gc_error *err)
{
    char section[64] = "";
    const char *name = key;
    const char *dot = strchr(key, '.');
    if (dot) {
        size_t n = (size_t)(dot - key);
        if (n >= sizeof(section))
            return gc_error_set(err, GC_EINVAL, key, "unknown option '%s'", key);
        memcpy(section, key, n);
        section[n] = '\0';
        name = dot + 1;
    }
    int idx = find_option(dot ? section : NULL, name);
    if (idx == -2)
        return gc_error_set(err, GC_EINVAL, key, "option '%s' is ambiguous; use section.name",
                            key);
    if (idx < 0)
        return gc_error_set(err, GC_EINVAL, key,
                            "unknown option '%s'; see docs/configuration.md for the options",
                            key);
    return set_option(cfg, (size_t)idx, value, err);
}

struct load_ctx {
    struct gc_config *cfg;
    struct gc_error *err;
    const char *path;
    int failed;
};

static int ini_cb(void *user, const char *section, const char *name, const char *value)
{
    struct load_ctx *c = user;
    if (c->failed)
        return 0;
    int idx = find_option(section, name);
    if (idx < 0) {
        gc_error_set(c->err, GC_EINVAL, name, "%s: unknown option '%s' in section [%s]",
                     c->path, name, section);
        c->failed = 1;
        return 0;
    }
    struct gc_error e = {0};
    if (set_option(c->cfg, (size_t)idx, value, &e) != 0) {
        gc_error_set(c->err, GC_EINVAL, name, "%s: %s", c->path, e.msg);
        c->failed = 1;
        return 0;
    }
    return 1;
}

int gc_config_load(struct gc_config *cfg, const char *path, struct gc_error *err)
{
    struct load_ctx c = {.cfg = cfg, .err = err, .path = path};
    FILE *f = fopen(path, "r");
    if (!f)
        return gc_error_set(err, GC_EINVAL, "config", "cannot open configuration file %s: %s",
                            path, strerror(errno));
    int rc = ini_parse_file(f, ini_cb, &c);
    fclose(f);
    if (c.failed)
        return GC_EINVAL;
    if (rc > 0)
        return gc_error_set(err, GC_EINVAL, "config", "%s:%d: syntax error", path, rc);
    if (rc < 0)
        return gc_error_set(err, GC_EINVAL, "config", "cannot read %s", path);
    return 0;
}

void gc_config_write_reference(FILE *out)
{
    const char *cur = "";
    for (size_t i = 0; i < gc_config_noptions; i++) {
        const struct gc_config_option *o = &gc_config_options[i];
        if (strcmp(cur, o->section) != 0) {
            fprintf(out, "\n### [%s]\n\n| option | type | default | allowed | meaning |\n"
                         "| --- | --- | --- | --- | --- |\n",
                    o->section);
            cur = o->section;
        }
        char allowed[128];
        if (o->type == GC_OPT_INT)
            snprintf(allowed, sizeof(allowed), "%lld – %lld", (long long)o->min,
                     (long long)o->max);
        else if (o->type == GC_OPT_ENUM) {
            /* "a|b" → "`a`, `b`": a bare | would split the Markdown table cell */
            size_t k = 0;
            k += (size_t)snprintf(allowed + k, sizeof(allowed) - k, "`");
            for (const char *p = o->allowed; *p && k + 4 < sizeof(allowed); p++)
                k += (size_t)snprintf(allowed + k, sizeof(allowed) - k, "%s",
                                      *p == '|' ? "`, `" : (char[]){*p, 0});
            snprintf(allowed + k, sizeof(allowed) - k, "`");
        }
        else if (o->type == GC_OPT_BOOL)
            snprintf(allowed, sizeof(allowed), "true, false");
        else
            snprintf(allowed, sizeof(allowed), "text");
        static const char *const tn[] = {"string", "integer", "boolean", "enum"};
        fprintf(out, "| `%s` | %s | `%s` | %s | %s |\n", o->name, tn[o->type], o->def, allowed,
                o->doc);
    }
}

int gc_vnc_listen_check(const char *s, struct gc_error *err)
{
    unsigned char addr[16];
    if (strcmp(s, "none") == 0 || inet_pton(AF_INET, s, addr) == 1 ||
        inet_pton(AF_INET6, s, addr) == 1)
        return 0;
    return gc_error_set(err, GC_EINVAL, "vnc_listen",
                        "vnc_listen '%s': expected a numeric IPv4 or IPv6 address (e.g. "
                        "127.0.0.1, 0.0.0.0, ::) or none",
                        s);
}

int gc_parse_listen(const char *s, char *host, size_t hostcap, int *port, struct gc_error *err)
{
    const char *colon;
    size_t hl;
    const char *h = s;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return gc_error_set(err, GC_EINVAL, "listen",
                                "listen '%s': IPv6 addresses are written [ADDR]:PORT", s);
        h = s + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || strchr(s, ':') != colon)
            return gc_error_set(err, GC_EINVAL, "listen",
                                "listen '%s': expected ADDR:PORT, e.g. 127.0.0.1:8080 or "
                                "[::1]:8080",
                                s);
        hl = (size_t)(colon - s);
    }
    if (hl == 0 || hl >= hostcap)
        return gc_error_set(err, GC_EINVAL, "listen", "listen '%s': missing or too long address",
                            s);
    char tmp[64];
    unsigned char addr[16];
    if (hl >= sizeof(tmp))
        return gc_error_set(err, GC_EINVAL, "listen", "listen '%s': address too long", s);
    memcpy(tmp, h, hl);
    tmp[hl] = '\0';
    if (inet_pton(s[0] == '[' ? AF_INET6 : AF_INET, tmp, addr) != 1)
        return gc_error_set(err, GC_EINVAL, "listen",
                            "listen '%s': '%s' is not a numeric %s address (names such as "
                            "localhost are not accepted)",
                            s, tmp, s[0] == '[' ? "IPv6" : "IPv4");
    if (!isdigit((unsigned char)colon[1]))
        return gc_error_set(err, GC_EINVAL, "listen",
                            "listen '%s': port must be a number from 0 to 65535", s);
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || p < 0 || p > 65535)
        return gc_error_set(err, GC_EINVAL, "listen",
                            "listen '%s': port must be a number from 0 to 65535", s);
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (int)p;
    return 0;
}
