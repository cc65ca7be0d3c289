/* Assets discovered over SNMP: the targets (/v1/assets/snmp-devices: where a network,
 * storage or security device or a server is, and how to talk to it) and their discovery.
 *
 * Each target makes one asset, id "snmp:<target id>", source "snmp": what the device tells
 * (SNMPv2-MIB system group, the chassis row of ENTITY-MIB's entPhysicalTable, read by
 * gc_snmp_describe in drivers/sensor_snmp.c on the sensor driver's session) and what the
 * target says (kind, security function, department, data centre and room). Those fields are
 * discovered fields (asset.c owned_snmp); everything else is the operator's and survives.
 *
 * Discovery runs in its own thread every [supervision] asset_sync_interval seconds, each
 * device in a detached thread of its own bounded by the device's timeout_ms, so a hung device
 * delays no other and never the asset sync of hosts and VMs; and on demand
 * (POST /v1/assets/snmp-devices/{id}/discover). A device that stops answering keeps its
 * asset, with status {"state": "absent", "health": "unknown"}, and its target's last_error
 * says why; deleting the target tombstones the asset. Targets are platform objects
 * (GC_P_HOST_READ / GC_P_HOST_WRITE, as sensors); credentials never leave the store. */
#include "core/asset.h"

#include "core/validate.h"
#include "drivers/sensor.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/timeutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KINDS_SNMP "network_device|storage_device|security_device|server"
#define FUNCS "waf|db_audit|vuln_scanner|firewall|ids|other"
#define ACTOR_SYSTEM "system:asset-discovery"

static bool in_list(const char *list, const char *v)
{
    size_t n = strlen(v);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, '|');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && !strncmp(p, v, n))
            return true;
        if (!e)
            break;
        p = e + 1;
    }
    return false;
}

static void wake(void);
static void claim(const char *id);
static void release(const char *id);

/* ------------------------------------------------------------------------------------ */
/* the resource */

#define DEV_COLS                                                                          \
    "d.id, d.address, d.port, d.credentials, d.kind, d.security_function, d.location,"    \
    " d.department_id, d.timeout_ms, d.enabled, d.asset_id, d.last_seen_at, d.last_error," \
    " d.last_error_at, d.created_at, d.updated_at, d.version"

/* What identifies, never what authenticates. */
static json_t *redact(const char *text)
{
    json_t *c = json_loads(text, 0, NULL);
    json_t *o = json_object();
    for (const char *k = "version\0user\0auth_protocol\0priv_protocol\0"; *k; k += strlen(k) + 1)
        if (json_object_get(c, k))
            json_object_set(o, k, json_object_get(c, k));
    json_object_set_new(o, "secret_set", json_boolean(json_object_get(c, "community") ||
                                                      json_object_get(c, "auth_password")));
    json_decref(c);
    return o;
}

static json_t *dev_json(struct gc_rows *r, char *path)
{
    if (path)
        path[0] = '\0';
    json_t *loc = json_loads(gc_rows_text(r, 6), 0, NULL);
    json_t *o = json_pack("{s:s,s:s,s:I,s:o,s:s,s:o,s:o,s:o,s:I,s:b,s:s}", "id",
                          gc_rows_text(r, 0), "address", gc_rows_text(r, 1), "port",
                          (json_int_t)gc_rows_int(r, 2), "credentials",
                          redact(gc_rows_text(r, 3)), "kind", gc_rows_text(r, 4),
                          "security_function",
                          gc_rows_null(r, 5) ? json_null() : json_string(gc_rows_text(r, 5)),
                          "location", loc ? loc : json_object(), "department_id",
                          gc_rows_null(r, 7) ? json_null() : json_string(gc_rows_text(r, 7)),
                          "timeout_ms", (json_int_t)gc_rows_int(r, 8), "enabled",
                          gc_rows_int(r, 9) != 0, "asset_id", gc_rows_text(r, 10));
    json_object_set_new(o, "last_seen_at", gc_json_time(gc_rows_int(r, 11)));
    json_object_set_new(o, "last_error",
                        gc_rows_null(r, 12) ? json_null() : json_string(gc_rows_text(r, 12)));
    json_object_set_new(o, "last_error_at", gc_json_time(gc_rows_int(r, 13)));
    json_object_set_new(o, "created_at", gc_json_time(gc_rows_int(r, 14)));
    json_object_set_new(o, "updated_at", gc_json_time(gc_rows_int(r, 15)));
    json_object_set_new(o, "version", json_integer(gc_rows_int(r, 16)));
    return o;
}

static json_t *dev_row(struct gc_rows *r, const struct gc_principal *who)
{
    (void)who;
    return dev_json(r, NULL);
}

static int load(struct gc_tx *tx, const char *id, json_t **out, struct gc_error *err)
{
    return gc_load_by_id(tx, "SELECT " DEV_COLS " FROM snmp_devices d WHERE d.id = ?",
                         "snmp device", id, dev_json, out, NULL, err);
}

/* The stored credentials, which the representation leaves out. */
static int load_credentials(struct gc_tx *tx, const char *id, json_t **out,
                            struct gc_error *err)
{
    struct gc_rows *r;
    *out = NULL;
    int rc = gc_tx_query(tx, "SELECT credentials FROM snmp_devices WHERE id = ?",
                         GC_ARGS(GC_VTXT(id)), &r, err);
    if (rc)
        return rc;
    rc = gc_rows_next(r, err);
    if (rc > 0) {
        *out = json_loads(gc_rows_text(r, 0), 0, NULL);
        rc = *out ? 0 : gc_error_set(err, GC_EINTERNAL, "", "stored credentials unreadable");
    } else if (rc == 0) {
        rc = gc_error_set(err, GC_ENOTFOUND, "id", "snmp device '%s' not found", id);
    }
    gc_rows_free(r);
    return rc;
}

static const struct gc_jfield create_spec[] = {
    {"address", GC_JT_STRING, true, false, 1, 253, GC_CS_TEXT},
    {"port", GC_JT_INT, false, false, 1, 65535, GC_CS_ANY},
    {"credentials", GC_JT_OBJECT, true, false, 0, 0, GC_CS_ANY},
    {"kind", GC_JT_STRING, true, false, 1, 32, GC_CS_CODE},
    {"security_function", GC_JT_STRING, false, true, 1, 32, GC_CS_CODE},
    {"location", GC_JT_OBJECT, false, true, 0, 0, GC_CS_ANY},
    {"department_id", GC_JT_STRING, false, true, 1, 64, GC_CS_ANY},
    {"timeout_ms", GC_JT_INT, false, false, 100, 30000, GC_CS_ANY},
    {"enabled", GC_JT_BOOL, false, false, 0, 0, GC_CS_ANY},
};
static const struct gc_jfield update_spec[] = {
    {"address", GC_JT_STRING, false, false, 1, 253, GC_CS_TEXT},
    {"port", GC_JT_INT, false, false, 1, 65535, GC_CS_ANY},
    {"credentials", GC_JT_OBJECT, false, false, 0, 0, GC_CS_ANY},
    {"kind", GC_JT_STRING, false, false, 1, 32, GC_CS_CODE},
    {"security_function", GC_JT_STRING, false, true, 1, 32, GC_CS_CODE},
    {"location", GC_JT_OBJECT, false, true, 0, 0, GC_CS_ANY},
    {"department_id", GC_JT_STRING, false, true, 1, 64, GC_CS_ANY},
    {"timeout_ms", GC_JT_INT, false, false, 100, 30000, GC_CS_ANY},
    {"enabled", GC_JT_BOOL, false, false, 0, 0, GC_CS_ANY},
};

/* Checks the target as it will be stored (c: after defaults and the update). */
static int dev_check(struct gc_tx *tx, json_t *c, struct gc_error *err)
{
    const char *addr = gc_json_str(c, "address");
    if (strspn(addr, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_:") !=
        strlen(addr))
        return gc_error_set(err, GC_EINVAL, "address",
                            "address must be a DNS name, an IPv4 or an IPv6 address");
    const char *kind = gc_json_str(c, "kind");
    if (!in_list(KINDS_SNMP, kind))
        return gc_error_set(err, GC_EINVAL, "kind", "kind must be one of %s, not '%.32s'",
                            KINDS_SNMP, kind);
    const char *fn = gc_json_str(c, "security_function");
    if (fn && strcmp(kind, "security_device") != 0)
        return gc_error_set(err, GC_EINVAL, "security_function",
                            "security_function is for kind security_device only");
    if (fn && !in_list(FUNCS, fn))
        return gc_error_set(err, GC_EINVAL, "security_function",
                            "security_function must be one of %s, not '%.32s'", FUNCS, fn);
    json_t *loc = json_object_get(c, "location");
    const char *k;
    json_t *v;
    json_object_foreach(loc, k, v) {
        char f[96];
        snprintf(f, sizeof(f), "location.%.40s", k);
        if (strcmp(k, "data_centre") != 0 && strcmp(k, "room") != 0)
            return gc_error_set(err, GC_EINVAL, f,
                                "unknown member '%.40s' of location: a target gives data_centre "
                                "and room (row, rack and u are set on the asset)",
                                k);
        if (!json_is_string(v) || json_string_length(v) == 0 ||
            gc_utf8_len(json_string_value(v)) > 255)
            return gc_error_set(err, GC_EINVAL, f, "%s must be a string of 1-255 characters", f);
        for (const char *p = json_string_value(v); *p; p++)
            if ((unsigned char)*p < 0x20)
                return gc_error_set(err, GC_EINVAL, f, "%s contains a control character", f);
    }
    const char *dept = gc_json_str(c, "department_id");
    if (dept) {
        if (!gc_id_valid(dept))
            return gc_error_set(err, GC_EINVAL, "department_id", "'%.64s' is not a department id",
                                dept);
        char path[GC_DEPT_PATH_MAX];
        int rc = gc_dept_path(tx, dept, path, err);
        if (rc == GC_ENOTFOUND)
            return gc_error_set(err, GC_EINVAL, "department_id", "department '%s' does not exist",
                                dept);
        if (rc)
            return rc;
    }
    return gc_sensor_snmp.check(json_object_get(c, "credentials"), err);
}

static int64_t jint(const json_t *o, const char *k, int64_t def)
{
    json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : def;
}

static char *dumps(const json_t *o)
{
    char *s = json_dumps(o ? o : json_object(), JSON_COMPACT | JSON_SORT_KEYS);
    if (!s)
        GC_BUG("out of memory");
    return s;
}

/* ---- the asset of a target ---- */

/* s cut to at most max UTF-8 characters, into out (cap bytes). */
static const char *cut(const char *s, size_t max, char *out, size_t cap)
{
    size_t n = 0, chars = 0;
    while (s[n] && chars < max) {
        size_t len = 1;
        while ((s[n + len] & 0xC0) == 0x80)
            len++;
        if (n + len >= cap)
            break;
        n += len;
        chars++;
    }
    memcpy(out, s, n);
    out[n] = '\0';
    return out;
}

static void set_str(json_t *o, const char *k, const char *v, size_t max)
{
    if (!v || !v[0])
        return;
    char buf[4200];
    json_object_set_new(o, k, json_string(cut(v, max, buf, sizeof(buf))));
}

/* The fields the target gives, over disc (replaced). */
static void apply_target(json_t *disc, const json_t *t)
{
    json_object_set_new(disc, "kind", json_string(gc_json_str(t, "kind")));
    json_object_set_new(disc, "source", json_string("snmp"));
    json_object_del(disc, "security_function");
    json_object_del(disc, "department_id");
    json_object_del(disc, "location");
    if (gc_json_str(t, "security_function"))
        json_object_set_new(disc, "security_function",
                            json_string(gc_json_str(t, "security_function")));
    if (gc_json_str(t, "department_id"))
        json_object_set_new(disc, "department_id", json_string(gc_json_str(t, "department_id")));
    json_t *loc = json_object_get(t, "location");
    if (json_is_object(loc) && json_object_size(loc))
        json_object_set_new(disc, "location", json_deep_copy(loc));
    json_t *attrs = json_object_get(disc, "attributes");
    if (!attrs) {
        attrs = json_object();
        json_object_set_new(disc, "attributes", attrs);
    }
    char a[300];
    snprintf(a, sizeof(a), "%s:%lld", gc_json_str(t, "address"),
             (long long)jint(t, "port", 161));
    json_object_set_new(attrs, "snmp_address", json_string(a));
}

/* The discovered part from what the device told (gc_snmp_describe) and the target. */
static json_t *disc_of(const json_t *d, const json_t *t)
{
    json_t *o = json_object();
    const char *name = gc_json_str(d, "sys_name");
    set_str(o, "name", name ? name : gc_json_str(t, "address"), 255);
    json_t *ents = json_object_get(d, "entities");
    json_t *chassis = NULL;
    size_t i;
    json_t *e;
    json_array_foreach(ents, i, e) {
        if (json_integer_value(json_object_get(e, "class")) == 3) {
            chassis = e;
            break;
        }
    }
    if (!chassis)
        chassis = json_array_get(ents, 0);
    set_str(o, "manufacturer", gc_json_str(chassis, "mfg_name"), 255);
    set_str(o, "model", gc_json_str(chassis, "model_name"), 255);
    set_str(o, "serial_number", gc_json_str(chassis, "serial_num"), 255);
    set_str(o, "firmware_version", gc_json_str(chassis, "firmware_rev"), 255);
    set_str(o, "asset_tag", gc_json_str(chassis, "asset_id"), 255);
    json_t *attrs = json_object();
    set_str(attrs, "sys_descr", gc_json_str(d, "sys_descr"), 1000);
    set_str(attrs, "sys_object_id", gc_json_str(d, "sys_object_id"), 1000);
    set_str(attrs, "sys_location", gc_json_str(d, "sys_location"), 1000);
    set_str(attrs, "hardware_rev", gc_json_str(chassis, "hardware_rev"), 1000);
    set_str(attrs, "software_rev", gc_json_str(chassis, "software_rev"), 1000);
    json_object_set_new(o, "attributes", attrs);
    json_object_set_new(o, "status", json_pack("{s:s,s:s}", "state", "enabled", "health", "ok"));
    apply_target(o, t);
    return o;
}

/* The target with its stored credentials, in tx. */
static int load_full(struct gc_tx *tx, const char *id, json_t **out, struct gc_error *err)
{
    json_t *t = NULL, *cred = NULL;
    int rc = load(tx, id, &t, err);
    if (!rc)
        rc = load_credentials(tx, id, &cred, err);
    if (rc) {
        json_decref(t);
        return rc;
    }
    json_object_set_new(t, "credentials", cred);
    *out = t;
    return 0;
}

/* Reads the device t (with credentials); *out what it told, or err (reason set). */
static int read_device(const json_t *t, json_t **out, char *reason, struct gc_error *err)
{
    int timeout = (int)jint(t, "timeout_ms", 2000);
    int64_t deadline = gc_snmp_clock_ms() + timeout;
    struct gc_sensor_target st = {.address = gc_json_str(t, "address"),
                                  .port = (int)jint(t, "port", 161),
                                  .timeout_ms = timeout,
                                  .credentials = json_object_get(t, "credentials")};
    struct gc_sensor_conn *c = NULL;
    snprintf(reason, 32, "error");
    int rc = gc_sensor_snmp.open(&st, &c, err);
    if (!rc)
        rc = gc_snmp_describe(c, GC_SNMP_DEVICE_MAX_ROWS, deadline, out, reason, err);
    gc_sensor_snmp.close(c);
    return rc;
}

/* Records the outcome of a discovery of target id: what the device told (d), or the
 * failure (d NULL; why in msg). Writes the asset (only real changes) and the target's
 * last_seen_at / last_error, audited when either the asset or last_error changed. *asset
 * (may be NULL) gets the asset id when there is a live asset. GC_ENOTFOUND when the target
 * went meanwhile. */
static int record(struct gc_store *st, const struct gc_ctx *ctx, const char *id, const json_t *d,
                  const char *msg, bool *changed_out, struct gc_error *err)
{
    struct gc_tx *tx;
    int rc = gc_tx_begin(st, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    json_t *t = NULL, *last = NULL, *disc = NULL;
    rc = load(tx, id, &t, err);
    const char *asset_id = t ? gc_json_str(t, "asset_id") : NULL;
    if (!rc)
        rc = gc_asset_snmp_last(tx, asset_id, &last, err);
    if (!rc) {
        if (d) {
            disc = disc_of(d, t);
        } else if (last) {
            disc = json_deep_copy(last);
            apply_target(disc, t);
            json_object_set_new(disc, "status",
                                json_pack("{s:s,s:s}", "state", "absent", "health", "unknown"));
        }
    }
    bool changed = false;
    if (!rc && disc)
        rc = gc_asset_snmp_put(tx, asset_id, disc, ctx->who ? ctx->who->username : "discovery",
                               &changed, err);
    const char *old_err = t ? gc_json_str(t, "last_error") : NULL;
    bool err_changed = d ? old_err != NULL : !old_err || strcmp(old_err, msg) != 0;
    int64_t now = gc_now_ms();
    if (!rc && d)
        rc = gc_tx_exec(tx,
                        "UPDATE snmp_devices SET last_seen_at = ?, last_error = NULL,"
                        " last_error_at = NULL WHERE id = ?",
                        GC_ARGS(GC_VINT_(now), GC_VTXT(id)), NULL, err);
    else if (!rc)
        rc = gc_tx_exec(tx,
                        "UPDATE snmp_devices SET last_error = ?, last_error_at = ? WHERE id = ?",
                        GC_ARGS(GC_VTXT(msg), GC_VINT_(now), GC_VTXT(id)), NULL, err);
    json_decref(last);
    if (!rc && !changed && !err_changed && !ctx->who) {
        /* a periodic pass that changed nothing but the time last seen: not an event */
        json_decref(disc);
        json_decref(t);
        return gc_tx_commit(tx, err);
    }
    json_t *detail = json_pack("{s:s,s:b,s:o}", "asset_id", asset_id ? asset_id : "",
                               "asset_changed", changed, "error",
                               d ? json_null() : json_string(msg ? msg : ""));
    struct gc_audit_event ev = {.action = "snmp_device.discover",
                                .resource_type = "snmp_device",
                                .resource_id = id,
                                .outcome = GC_OUTCOME_SUCCESS,
                                .detail = detail,
                                .actor_name = ctx->who ? NULL : ACTOR_SYSTEM};
    rc = gc_audit_commit(tx, ctx, &ev, rc, err);
    json_decref(detail);
    json_decref(disc);
    json_decref(t);
    if (!rc && changed_out)
        *changed_out = changed;
    return rc;
}

/* Reads target id and records the outcome; *why (320 bytes) the failure, "" on success. */
static int discover_one(struct gc_store *st, const struct gc_ctx *ctx, const char *id,
                        char *why, char *reason, struct gc_error *err)
{
    why[0] = '\0';
    struct gc_tx *tx;
    int rc = gc_tx_begin(st, GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    json_t *t = NULL;
    rc = load_full(tx, id, &t, err);
    gc_tx_rollback(tx);
    if (rc)
        return rc;
    json_t *d = NULL;
    struct gc_error derr = {0};
    if (read_device(t, &d, reason, &derr) != 0)
        snprintf(why, 320, "%.80s:%lld: %.200s (%.16s)", gc_json_str(t, "address"),
                 (long long)jint(t, "port", 161), derr.msg, reason);
    json_decref(t);
    rc = record(st, ctx, id, d, why, NULL, err);
    json_decref(d);
    return rc;
}

/* ---- CRUD ---- */

int gc_snmp_device_create(const struct gc_ctx *ctx, json_t *in, json_t **out,
                          struct gc_error *err)
{
    int rc = gc_require(ctx->who, GC_P_HOST_WRITE, err);
    if (!rc)
        rc = gc_json_check(in, create_spec, sizeof(create_spec) / sizeof(create_spec[0]), err);
    if (rc)
        return rc;
    json_t *c = json_deep_copy(in);
    if (!json_object_get(c, "port"))
        json_object_set_new(c, "port", json_integer(161));
    if (!json_is_object(json_object_get(c, "location")))
        json_object_set_new(c, "location", json_object());
    struct gc_tx *tx = NULL;
    rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc) {
        json_decref(c);
        return rc;
    }
    rc = dev_check(tx, c, err);
    char id[GC_ID_LEN + 1], asset_id[GC_ID_LEN + 8];
    gc_id_new(id);
    snprintf(asset_id, sizeof(asset_id), "snmp:%s", id);
    int64_t now = gc_now_ms();
    if (!rc) {
        char *cred = dumps(json_object_get(c, "credentials"));
        char *loc = dumps(json_object_get(c, "location"));
        rc = gc_tx_exec(tx,
                        "INSERT INTO snmp_devices (id, address, port, credentials, kind,"
                        " security_function, location, department_id, timeout_ms, enabled,"
                        " asset_id, created_at, updated_at, version)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
                        GC_ARGS(GC_VTXT(id), GC_VTXT(gc_json_str(c, "address")),
                                GC_VINT_(jint(c, "port", 161)), GC_VTXT(cred),
                                GC_VTXT(gc_json_str(c, "kind")),
                                GC_VTXT(gc_json_str(c, "security_function")), GC_VTXT(loc),
                                GC_VTXT(gc_json_str(c, "department_id")),
                                GC_VINT_(jint(c, "timeout_ms", 2000)),
                                GC_VINT_(!json_is_false(json_object_get(c, "enabled"))),
                                GC_VTXT(asset_id), GC_VINT_(now), GC_VINT_(now)),
                        NULL, err);
        free(cred);
        free(loc);
        if (rc == GC_ECONFLICT)
            rc = gc_error_set(err, GC_ECONFLICT, "address",
                              "a target for %s port %lld exists", gc_json_str(c, "address"),
                              (long long)jint(c, "port", 161));
    }
    json_decref(c);
    json_t *obj = NULL;
    if (!rc)
        rc = load(tx, id, &obj, err);
    struct gc_audit_event ev = {.action = "snmp_device.create",
                                .resource_type = "snmp_device",
                                .resource_id = id,
                                .outcome = GC_OUTCOME_SUCCESS,
                                .detail = obj};
    rc = gc_audit_commit(tx, ctx, &ev, rc, err);
    if (rc) {
        json_decref(obj);
        return rc;
    }
    wake();
    *out = obj;
    return 0;
}

int gc_snmp_device_get(const struct gc_ctx *ctx, const char *id, json_t **out,
                       struct gc_error *err)
{
    int rc = gc_require(ctx->who, GC_P_HOST_READ, err);
    struct gc_tx *tx;
    if (!rc)
        rc = gc_tx_begin(ctx->store, GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    rc = load(tx, id, out, err);
    gc_tx_rollback(tx);
    return rc;
}

int gc_snmp_device_list(const struct gc_ctx *ctx, json_t *filters, int limit,
                        const char *cursor, json_t **items, char **next_cursor,
                        struct gc_error *err)
{
    static const struct gc_list_filter f[] = {
        {"kind", "d.kind"}, {"address", "d.address"}, {NULL, NULL}};
    const char *kind = gc_json_str(filters, "kind");
    if (kind && !in_list(KINDS_SNMP, kind)) {
        int rc = gc_require(ctx->who, GC_P_HOST_READ, err);
        return rc ? rc
                  : gc_error_set(err, GC_EINVAL, "kind",
                                 "query parameter 'kind': '%.32s' is not %s", kind, KINDS_SNMP);
    }
    return gc_list_filtered(ctx, GC_P_HOST_READ,
                            "SELECT " DEV_COLS " FROM snmp_devices d WHERE d.id > ?", "d.id", f,
                            filters, limit, cursor, dev_row, items, next_cursor, err);
}

int gc_snmp_device_update(const struct gc_ctx *ctx, const char *id, int64_t if_match,
                          json_t *in, json_t **out, struct gc_error *err)
{
    int rc = gc_require(ctx->who, GC_P_HOST_WRITE, err);
    if (!rc)
        rc = gc_json_check(in, update_spec, sizeof(update_spec) / sizeof(update_spec[0]), err);
    struct gc_tx *tx = NULL;
    if (!rc)
        rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    json_t *before = NULL, *c = NULL, *after = NULL, *last = NULL;
    rc = load(tx, id, &before, err);
    if (!rc)
        rc = gc_check_if_match(before, if_match, "snmp device", id, err);
    if (!rc)
        rc = load_full(tx, id, &c, err);
    if (!rc) {
        json_object_update(c, in);
        for (const char *k = "security_function\0department_id\0"; *k; k += strlen(k) + 1)
            if (json_is_null(json_object_get(c, k)))
                json_object_del(c, k);
        if (!json_is_object(json_object_get(c, "location")))
            json_object_set_new(c, "location", json_object());
        /* a kind without a security function drops it */
        if (gc_json_str(c, "kind") && strcmp(gc_json_str(c, "kind"), "security_device") != 0 &&
            !json_object_get(in, "security_function"))
            json_object_del(c, "security_function");
        rc = dev_check(tx, c, err);
    }
    if (!rc) {
        char *cred = dumps(json_object_get(c, "credentials"));
        char *loc = dumps(json_object_get(c, "location"));
        rc = gc_tx_exec(tx,
                        "UPDATE snmp_devices SET address = ?, port = ?, credentials = ?,"
                        " kind = ?, security_function = ?, location = ?, department_id = ?,"
                        " timeout_ms = ?, enabled = ?, updated_at = ?, version = version + 1"
                        " WHERE id = ?",
                        GC_ARGS(GC_VTXT(gc_json_str(c, "address")),
                                GC_VINT_(jint(c, "port", 161)), GC_VTXT(cred),
                                GC_VTXT(gc_json_str(c, "kind")),
                                GC_VTXT(gc_json_str(c, "security_function")), GC_VTXT(loc),
                                GC_VTXT(gc_json_str(c, "department_id")),
                                GC_VINT_(jint(c, "timeout_ms", 2000)),
                                GC_VINT_(!json_is_false(json_object_get(c, "enabled"))),
                                GC_VINT_(gc_now_ms()), GC_VTXT(id)),
                        NULL, err);
        free(cred);
        free(loc);
        if (rc == GC_ECONFLICT)
            rc = gc_error_set(err, GC_ECONFLICT, "address",
                              "a target for %s port %lld exists", gc_json_str(c, "address"),
                              (long long)jint(c, "port", 161));
    }
    /* what the target gives the asset (kind, department, location…) applies now */
    const char *asset_id = before ? gc_json_str(before, "asset_id") : NULL;
    if (!rc)
        rc = gc_asset_snmp_last(tx, asset_id, &last, err);
    if (!rc && last) {
        apply_target(last, c);
        rc = gc_asset_snmp_put(tx, asset_id, last, ctx->who->username, NULL, err);
    }
    json_decref(last);
    json_decref(c);
    if (!rc)
        rc = load(tx, id, &after, err);
    json_t *detail = json_pack("{s:O,s:O}", "before", before ? before : json_null(), "after",
                               after ? after : json_null());
    struct gc_audit_event ev = {.action = "snmp_device.update",
                                .resource_type = "snmp_device",
                                .resource_id = id,
                                .outcome = GC_OUTCOME_SUCCESS,
                                .detail = detail};
    rc = gc_audit_commit(tx, ctx, &ev, rc, err);
    json_decref(detail);
    json_decref(before);
    if (rc) {
        json_decref(after);
        return rc;
    }
    wake();
    *out = after;
    return 0;
}

int gc_snmp_device_delete(const struct gc_ctx *ctx, const char *id, int64_t if_match,
                          struct gc_error *err)
{
    int rc = gc_require(ctx->who, GC_P_HOST_WRITE, err);
    struct gc_tx *tx;
    if (!rc)
        rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    json_t *before = NULL;
    rc = load(tx, id, &before, err);
    if (!rc)
        rc = gc_check_if_match(before, if_match, "snmp device", id, err);
    if (!rc)
        rc = gc_tx_exec(tx, "DELETE FROM snmp_devices WHERE id = ?", GC_ARGS(GC_VTXT(id)), NULL,
                        err);
    /* its asset goes with it (a tombstone: a pull reports the deletion) */
    if (!rc)
        rc = gc_asset_snmp_put(tx, gc_json_str(before, "asset_id"), NULL, ctx->who->username,
                               NULL, err);
    struct gc_audit_event ev = {.action = "snmp_device.delete",
                                .resource_type = "snmp_device",
                                .resource_id = id,
                                .outcome = GC_OUTCOME_SUCCESS,
                                .detail = before};
    rc = gc_audit_commit(tx, ctx, &ev, rc, err);
    json_decref(before);
    return rc;
}

int gc_snmp_device_discover(const struct gc_ctx *ctx, const char *id, json_t **out,
                            struct gc_error *err)
{
    int rc = gc_require(ctx->who, GC_P_HOST_WRITE, err);
    if (rc)
        return rc;
    char why[320], reason[32] = "";
    /* one discovery of a device at a time: this one waits for a periodic one under way */
    claim(id);
    rc = discover_one(ctx->store, ctx, id, why, reason, err);
    release(id);
    if (rc)
        return rc;
    if (why[0])
        return gc_error_set(err, GC_ECONFLICT, "",
                            "the device could not be read: %.200s; its asset (if any) is kept, "
                            "and the target's last_error says the same",
                            why);
    char asset_id[GC_ID_LEN + 8];
    snprintf(asset_id, sizeof(asset_id), "snmp:%s", id);
    return gc_asset_get(ctx, asset_id, out, err);
}

/* ------------------------------------------------------------------------------------ */
/* periodic discovery: one thread lists the enabled targets, one detached thread per device */

#define INFLIGHT_MAX 4096

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    bool running, stopping, wake;
    int workers;
    struct gc_store *st;
    int64_t interval_ms;
    json_t *inflight; /* id → true, while a worker reads it */
} S = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static void wake(void)
{
    pthread_mutex_lock(&S.lock);
    S.wake = true;
    pthread_cond_broadcast(&S.cond);
    pthread_mutex_unlock(&S.lock);
}

/* Waits until no discovery of id is under way and marks one. */
static void claim(const char *id)
{
    pthread_mutex_lock(&S.lock);
    if (!S.inflight)
        S.inflight = json_object();
    while (json_object_get(S.inflight, id))
        pthread_cond_wait(&S.cond, &S.lock);
    json_object_set_new(S.inflight, id, json_true());
    pthread_mutex_unlock(&S.lock);
}

static void release(const char *id)
{
    pthread_mutex_lock(&S.lock);
    json_object_del(S.inflight, id);
    pthread_cond_broadcast(&S.cond);
    pthread_mutex_unlock(&S.lock);
}

static void *worker(void *arg)
{
    char *id = arg;
    struct gc_ctx ctx = {.store = S.st, .request_id = "", .source_ip = ""};
    struct gc_error err = {0};
    char why[320], reason[32] = "";
    int rc = discover_one(S.st, &ctx, id, why, reason, &err);
    if (rc && rc != GC_ENOTFOUND)
        gc_warn("asset", "snmp device %s: discovery not recorded: %s", id, err.msg);
    else if (!rc && why[0])
        gc_info("asset", "snmp device %s: %s", id, why);
    pthread_mutex_lock(&S.lock);
    json_object_del(S.inflight, id);
    S.workers--;
    pthread_cond_broadcast(&S.cond);
    pthread_mutex_unlock(&S.lock);
    free(id);
    return NULL;
}

static void pass(void)
{
    struct gc_error err = {0};
    struct gc_tx *tx;
    if (gc_tx_begin(S.st, GC_TX_READ, &tx, &err) != 0) {
        gc_warn("asset", "snmp discovery: cannot read the store: %s", err.msg);
        return;
    }
    struct gc_rows *r = NULL;
    json_t *ids = json_array();
    int rc = gc_tx_query(tx, "SELECT id FROM snmp_devices WHERE enabled = 1 ORDER BY id",
                         GC_NOARGS, &r, &err);
    while (!rc && (rc = gc_rows_next(r, &err)) > 0) {
        rc = 0;
        json_array_append_new(ids, json_string(gc_rows_text(r, 0)));
    }
    gc_rows_free(r);
    gc_tx_rollback(tx);
    if (rc < 0)
        gc_warn("asset", "snmp discovery: cannot list the devices: %s", err.msg);
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v) {
        const char *id = json_string_value(v);
        pthread_mutex_lock(&S.lock);
        bool busy = json_object_get(S.inflight, id) != NULL || S.stopping ||
                    S.workers >= INFLIGHT_MAX;
        if (!busy) {
            json_object_set_new(S.inflight, id, json_true());
            S.workers++;
        }
        pthread_mutex_unlock(&S.lock);
        if (busy)
            continue;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 1u << 20);
        pthread_t th;
        char *arg = gc_strdup(id);
        if (pthread_create(&th, &attr, worker, arg) != 0) {
            gc_warn("asset", "snmp device %s: cannot start a discovery thread", id);
            free(arg);
            pthread_mutex_lock(&S.lock);
            json_object_del(S.inflight, id);
            S.workers--;
            pthread_mutex_unlock(&S.lock);
        }
        pthread_attr_destroy(&attr);
    }
    json_decref(ids);
}

static void *main_loop(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&S.lock);
    while (!S.stopping) {
        S.wake = false;
        pthread_mutex_unlock(&S.lock);
        pass();
        pthread_mutex_lock(&S.lock);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = (int64_t)ts.tv_nsec + (S.interval_ms % 1000) * 1000000;
        ts.tv_sec += (time_t)(S.interval_ms / 1000 + ns / 1000000000);
        ts.tv_nsec = (long)(ns % 1000000000);
        while (!S.stopping && !S.wake && pthread_cond_timedwait(&S.cond, &S.lock, &ts) == 0)
            ;
    }
    pthread_mutex_unlock(&S.lock);
    return NULL;
}

int gc_snmp_devices_start(struct gc_store *st, const struct gc_config *cfg,
                          struct gc_error *err)
{
    gc_sensor_drivers_init();
    pthread_mutex_lock(&S.lock);
    S.st = st;
    S.interval_ms = cfg->asset_sync_interval * 1000;
    S.stopping = false;
    if (!S.inflight)
        S.inflight = json_object();
    int rc = pthread_create(&S.thread, NULL, main_loop, NULL);
    S.running = rc == 0;
    pthread_mutex_unlock(&S.lock);
    if (rc)
        return gc_error_set(err, GC_EINTERNAL, "", "cannot start the SNMP discovery thread");
    return 0;
}

void gc_snmp_devices_stop(void)
{
    pthread_mutex_lock(&S.lock);
    if (!S.running) {
        pthread_mutex_unlock(&S.lock);
        return;
    }
    S.stopping = true;
    pthread_cond_broadcast(&S.cond);
    pthread_mutex_unlock(&S.lock);
    pthread_join(S.thread, NULL);
    /* workers end by their device's timeout (at most 30 s) */
    pthread_mutex_lock(&S.lock);
    int64_t deadline = gc_now_ms() + 31000;
    while (S.workers > 0 && gc_now_ms() < deadline) {
        struct timespec ts = {.tv_sec = (time_t)(deadline / 1000),
                              .tv_nsec = (long)(deadline % 1000) * 1000000};
        pthread_cond_timedwait(&S.cond, &S.lock, &ts);
    }
    if (S.workers == 0) {
        json_decref(S.inflight);
        S.inflight = NULL;
    }
    S.running = false;
    pthread_mutex_unlock(&S.lock);
}
