/* The asset inventory: discovery from the platform's own tables, operator enrichment, CSV
 * and JSON import, history, and the asset provider of the supervision pull.
 *
 * Why a periodic sync and not hooks in every module: hosts, VMs, volumes and networks change
 * in many places (API calls, jobs, the host manager's reconcile). One function comparing
 * those tables with the asset table catches every change however it happened, writes only
 * real ones, and keeps the other modules unaware of assets. It runs every [supervision]
 * asset_sync_interval seconds and before every pull of the asset dataset, so a pull never
 * misses a change that happened before it began.
 *
 * Discovered and operator fields never overwrite each other: an asset keeps the two apart
 * (columns discovered and operator) and its data is their union. Each discovered kind owns
 * a fixed set of fields (owned[] below); the sync only rewrites those, and PATCH or import
 * may set only the others. */
#include "core/asset.h"

#include "core/validate.h"
#include "util/buf.h"
#include "util/csv.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/timeutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define JDUMP (JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII)

/* ------------------------------------------------------------------------------------ */
/* supervision sequences */

int gc_sup_seq_next(struct gc_tx *tx, const char *dataset, int64_t *seq, struct gc_error *err)
{
    int rc = gc_tx_exec(tx,
                        "INSERT INTO supervision_seq (dataset, seq) VALUES (?, 1)"
                        " ON CONFLICT (dataset) DO UPDATE SET seq = supervision_seq.seq + 1",
                        GC_ARGS(GC_VTXT(dataset)), NULL, err);
    if (!rc)
        rc = gc_tx_query_int(tx, "SELECT seq FROM supervision_seq WHERE dataset = ?",
                             GC_ARGS(GC_VTXT(dataset)), seq, err);
    return rc;
}

int gc_sup_seq_high(struct gc_tx *tx, const char *dataset, int64_t *seq, struct gc_error *err)
{
    int rc = gc_tx_query_int(tx, "SELECT seq FROM supervision_seq WHERE dataset = ?",
                             GC_ARGS(GC_VTXT(dataset)), seq, err);
    if (rc == GC_ENOTFOUND) {
        gc_error_clear(err);
        *seq = 0;
        rc = 0;
    }
    return rc;
}

/* ------------------------------------------------------------------------------------ */
/* the fields of the asset dataset (CONTRACT / docs/supervision-spec.md) */

enum ftype { F_STR, F_INT, F_BOOL, F_ENUM, F_UUID, F_ATTRS };

struct afield {
    const char *path;   /* "location.u" */
    enum ftype t;
    int64_t min, max;   /* F_STR: length in characters; F_INT: value */
    const char *enums;  /* F_ENUM: "a|b|c" */
};

#define KINDS "host|vm|volume|network|server|network_device|storage_device|security_device|rack|software"
#define STR255 F_STR, 0, 255, NULL

static const struct afield fields[] = {
    {"kind", F_ENUM, 0, 0, KINDS},
    {"name", F_STR, 1, 255, NULL},
    {"manufacturer", STR255},
    {"model", STR255},
    {"serial_number", STR255},
    {"part_number", STR255},
    {"asset_tag", STR255},
    {"uuid", STR255},
    {"firmware_version", STR255},
    {"cpu_arch", F_ENUM, 0, 0, "x86_64|aarch64|loongarch64|mips64|sw_64|riscv64|other"},
    {"layer", F_ENUM, 0, 0,
     "cpu|server|os|database|middleware|storage|network|security|other"},
    {"domestic.flag", F_BOOL, 0, 0, NULL},
    {"domestic.basis", F_STR, 0, 1000, NULL},
    {"location.data_centre", STR255},
    {"location.room", STR255},
    {"location.row", STR255},
    {"location.rack", STR255},
    {"location.u", F_INT, 1, 60, NULL},
    {"department_id", F_UUID, 0, 0, NULL},
    {"business_system", STR255},
    {"mlps_grade", F_INT, 1, 5, NULL},
    {"crypto_evaluation", F_ENUM, 0, 0, "none|planned|passed|failed"},
    {"dr_level", F_INT, 1, 6, NULL},
    {"status.state", F_ENUM, 0, 0, "enabled|disabled|absent|unknown"},
    {"status.health", F_ENUM, 0, 0, "ok|warning|critical|unknown"},
    {"capacity.vcpus", F_INT, 0, 1000000, NULL},
    {"capacity.memory_bytes", F_INT, 0, INT64_MAX, NULL},
    {"capacity.disk_bytes", F_INT, 0, INT64_MAX, NULL},
    {"source", F_ENUM, 0, 0, "discovered|imported|snmp"},
    {"host_id", F_UUID, 0, 0, NULL},
    {"security_function", F_ENUM, 0, 0, "waf|db_audit|vuln_scanner|firewall|ids|other"},
    {"attributes", F_ATTRS, 0, 0, NULL},
};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))
#define ATTRS_MAX 32

/* The objects holding nested fields. */
static bool is_parent(const char *k)
{
    return !strcmp(k, "domestic") || !strcmp(k, "location") || !strcmp(k, "status") ||
           !strcmp(k, "capacity");
}

static const struct afield *field_find(const char *path)
{
    for (size_t i = 0; i < NFIELDS; i++)
        if (!strcmp(fields[i].path, path))
            return &fields[i];
    return NULL;
}

static bool enum_has(const char *list, const char *v)
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

/* The fields discovery owns, per discovered kind: top-level names, or "attributes.<key>". */
static const char *const owned_host[] = {"kind", "name", "uuid", "cpu_arch", "capacity",
                                         "status", "source", "attributes.cpu_model",
                                         "attributes.machine_arch", "attributes.hypervisor",
                                         "attributes.hostname", "attributes.zone", NULL};
static const char *const owned_vm[] = {"kind", "name", "uuid", "cpu_arch", "department_id",
                                       "host_id", "capacity", "status", "source", NULL};
static const char *const owned_volume[] = {"kind", "name", "uuid", "department_id", "host_id",
                                           "capacity", "status", "source", "attributes.pool",
                                           "attributes.format", "attributes.vm_id", NULL};
static const char *const owned_network[] = {"kind", "name", "uuid", "department_id", "status",
                                            "source", "attributes.mode",
                                            "attributes.ipv4_cidr", "attributes.ipv6_cidr",
                                            "attributes.external", NULL};

static const char *const *owned_of(const char *kind)
{
    if (!strcmp(kind, "host"))
        return owned_host;
    if (!strcmp(kind, "vm"))
        return owned_vm;
    if (!strcmp(kind, "volume"))
        return owned_volume;
    if (!strcmp(kind, "network"))
        return owned_network;
    return NULL;
}

static bool is_discovered_kind(const char *kind)
{
    return owned_of(kind) != NULL;
}

/* What discovery over SNMP owns (core/snmp_device.c): what the device tells, and what its
 * target says (kind, security function, department, data centre and room); the rest of the
 * location (row, rack, u), domestic flag, MLPS grade and so on are the operator's. */
static const char *const owned_snmp[] = {
    "kind", "name", "manufacturer", "model", "serial_number", "firmware_version", "asset_tag",
    "security_function", "department_id", "location.data_centre", "location.room", "status",
    "source", "attributes.sys_descr", "attributes.sys_object_id", "attributes.sys_location",
    "attributes.hardware_rev", "attributes.software_rev", "attributes.snmp_address", NULL};

/* Whether assets of source are discovered (their owned fields are not the operator's). */
static bool is_disc_source(const char *source)
{
    return !strcmp(source, "discovered") || !strcmp(source, "snmp");
}

static const char *const *owned_for(const char *source, const char *kind)
{
    if (!strcmp(source, "snmp"))
        return owned_snmp;
    if (!strcmp(source, "discovered"))
        return owned_of(kind);
    return NULL;
}

/* Whether path ("capacity", "location.u" or "attributes.pool") belongs to discovery. */
static bool owned(const char *const *list, const char *path)
{
    if (!list)
        return false;
    for (const char *const *p = list; *p; p++) {
        size_t n = strlen(*p);
        if (!strcmp(*p, path))
            return true;
        /* a whole owned object owns its members */
        if (!strncmp(*p, path, n) && path[n] == '.' && strncmp(*p, "attributes.", 11) != 0)
            return true;
    }
    return false;
}

/* ------------------------------------------------------------------------------------ */
/* validation: every message says where ("row 7, field location.u: 61 is above 60") */

struct verrs {
    json_t *list;   /* [{"row","field","detail"}] */
    size_t count;   /* all of them, listed or not */
    int row;        /* 0: not an import (PATCH) */
};

__attribute__((format(printf, 3, 4))) static void verr(struct verrs *v, const char *field,
                                                       const char *fmt, ...)
{
    v->count++;
    if (json_array_size(v->list) >= GC_ASSET_IMPORT_MAX_ERRORS)
        return;
    char msg[400], detail[560];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (v->row < 0) /* the CSV header: the message says where */
        snprintf(detail, sizeof(detail), "%s", msg);
    else if (v->row > 0 && field && field[0])
        snprintf(detail, sizeof(detail), "row %d, field %s: %s", v->row, field, msg);
    else if (v->row > 0)
        snprintf(detail, sizeof(detail), "row %d: %s", v->row, msg);
    else if (field && field[0])
        snprintf(detail, sizeof(detail), "field %s: %s", field, msg);
    else
        snprintf(detail, sizeof(detail), "%s", msg);
    json_t *e = json_object();
    if (v->row > 0)
        json_object_set_new(e, "row", json_integer(v->row));
    json_object_set_new(e, "field", json_string(field ? field : ""));
    json_t *d = json_string(detail);
    json_object_set_new(e, "detail", d ? d : json_string("(message is not valid UTF-8)"));
    json_array_append_new(v->list, e);
}

static void check_value(struct verrs *v, const struct afield *f, const json_t *val)
{
    const char *p = f->path;
    switch (f->t) {
    case F_STR:
    case F_UUID:
    case F_ENUM: {
        if (!json_is_string(val)) {
            verr(v, p, "must be a string");
            return;
        }
        const char *s = json_string_value(val);
        if (f->t == F_UUID) {
            if (!gc_id_valid(s))
                verr(v, p, "'%.64s' is not a UUID", s);
        } else if (f->t == F_ENUM) {
            if (!enum_has(f->enums, s))
                verr(v, p, "'%.64s' is not one of %s", s, f->enums);
        } else {
            size_t n = gc_utf8_len(s);
            if ((int64_t)n < f->min)
                verr(v, p, "must not be empty");
            else if ((int64_t)n > f->max)
                verr(v, p, "is %zu characters long, at most %lld are allowed", n,
                     (long long)f->max);
            for (const char *c = s; *c; c++)
                if ((unsigned char)*c < 0x20 && *c != '\t') {
                    verr(v, p, "contains a control character");
                    break;
                }
        }
        return;
    }
    case F_INT: {
        if (!json_is_integer(val)) {
            verr(v, p, "must be an integer");
            return;
        }
        int64_t x = json_integer_value(val);
        if (x < f->min)
            verr(v, p, "%lld is below %lld", (long long)x, (long long)f->min);
        else if (x > f->max)
            verr(v, p, "%lld is above %lld", (long long)x, (long long)f->max);
        return;
    }
    case F_BOOL:
        if (!json_is_boolean(val))
            verr(v, p, "must be true or false");
        return;
    case F_ATTRS: {
        if (!json_is_object(val)) {
            verr(v, p, "must be an object of strings");
            return;
        }
        if (json_object_size(val) > ATTRS_MAX)
            verr(v, p, "has %zu keys, at most %d are allowed", json_object_size(val),
                 ATTRS_MAX);
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)val, k, x) {
            char path[128];
            snprintf(path, sizeof(path), "attributes.%.64s", k);
            size_t kn = gc_utf8_len(k);
            if (kn < 1 || kn > 64)
                verr(v, path, "attribute names are 1 to 64 characters long");
            else if (!json_is_string(x))
                verr(v, path, "must be a string");
            else if (gc_utf8_len(json_string_value(x)) > 1000)
                verr(v, path, "is longer than 1000 characters");
        }
        return;
    }
    }
}

/* Checks an object of asset fields: types, bounds, unknown fields; with required, kind and
 * name must be there. nulls are not accepted here (the caller removed them). */
static void check_fields(struct verrs *v, const json_t *o, bool required)
{
    const char *k;
    json_t *val;
    json_object_foreach((json_t *)o, k, val) {
        if (is_parent(k)) {
            if (!json_is_object(val)) {
                verr(v, k, "must be an object");
                continue;
            }
            const char *sk;
            json_t *sv;
            json_object_foreach(val, sk, sv) {
                char path[160];
                snprintf(path, sizeof(path), "%s.%.100s", k, sk);
                const struct afield *f = field_find(path);
                if (!f)
                    verr(v, path, "unknown field (see docs/supervision.md#asset-fields)");
                else
                    check_value(v, f, sv);
            }
            continue;
        }
        const struct afield *f = field_find(k);
        if (!f || strchr(k, '.')) {
            char shown[80];
            snprintf(shown, sizeof(shown), "%.64s", k);
            verr(v, shown, "unknown field (see docs/supervision.md#asset-fields)");
            continue;
        }
        check_value(v, f, val);
    }
    if (required) {
        if (!json_object_get(o, "kind"))
            verr(v, "kind", "is required");
        if (!json_object_get(o, "name"))
            verr(v, "name", "is required");
    }
}

/* Removes null members (and null members of nested objects; an object left empty goes). */
static void strip_nulls(json_t *o)
{
    const char *k;
    json_t *val;
    void *tmp;
    json_object_foreach_safe(o, tmp, k, val) {
        if (json_is_null(val)) {
            json_object_del(o, k);
        } else if (json_is_object(val)) {
            strip_nulls(val);
            if (json_object_size(val) == 0)
                json_object_del(o, k);
        }
    }
}

/* Flattens o into "path" → value (one level of nesting; attributes by key). */
static json_t *flatten(const json_t *o)
{
    json_t *f = json_object();
    const char *k;
    json_t *val;
    json_object_foreach((json_t *)o, k, val) {
        if (json_is_object(val)) {
            const char *sk;
            json_t *sv;
            json_object_foreach(val, sk, sv) {
                char path[300];
                snprintf(path, sizeof(path), "%s.%s", k, sk);
                json_object_set(f, path, sv);
            }
        } else {
            json_object_set(f, k, val);
        }
    }
    return f;
}

/* {"path": {"old","new"}} for every field that differs; NULL when none does. */
static json_t *diff(const json_t *old, const json_t *new_)
{
    json_t *a = old ? flatten(old) : json_object();
    json_t *b = new_ ? flatten(new_) : json_object();
    json_t *d = json_object();
    const char *k;
    json_t *val;
    json_object_foreach(a, k, val) {
        json_t *nv = json_object_get(b, k);
        if (!nv || !json_equal(val, nv))
            json_object_set_new(d, k, json_pack("{sOso}", "old", val, "new",
                                                nv ? json_incref(nv) : json_null()));
    }
    json_object_foreach(b, k, val) {
        if (!json_object_get(a, k))
            json_object_set_new(d, k, json_pack("{snsO}", "old", "new", val));
    }
    json_decref(a);
    json_decref(b);
    if (json_object_size(d) == 0) {
        json_decref(d);
        return NULL;
    }
    return d;
}

/* The record's data: the discovered fields, then the operator's where discovery has none
 * (nested objects member by member). */
static json_t *merge(const json_t *disc, const json_t *oper, const char *source)
{
    json_t *m = json_deep_copy(disc);
    const char *k;
    json_t *val;
    json_object_foreach((json_t *)oper, k, val) {
        json_t *cur = json_object_get(m, k);
        if (cur && json_is_object(cur) && json_is_object(val)) {
            const char *sk;
            json_t *sv;
            json_object_foreach(val, sk, sv) {
                if (!json_object_get(cur, sk))
                    json_object_set(cur, sk, sv);
            }
        } else if (!cur) {
            json_object_set_new(m, k, json_deep_copy(val));
        }
    }
    json_object_set_new(m, "source", json_string(source));
    return m;
}

static bool asset_id_valid(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 128)
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  (p > s && (c == '.' || c == '_' || c == ':' || c == '-'));
        if (!ok)
            return false;
    }
    return true;
}

/* ------------------------------------------------------------------------------------ */
/* the asset row and its one writer */

struct asset {
    bool exists, deleted;
    char id[136];
    char source[16];
    char kind[24];
    json_t *disc, *oper, *data; /* data NULL when deleted */
    int64_t version;
    char dept_path[GC_DEPT_PATH_MAX];
};

static void asset_release(struct asset *a)
{
    json_decref(a->disc);
    json_decref(a->oper);
    json_decref(a->data);
    memset(a, 0, sizeof(*a));
}

static json_t *load_json(const char *s)
{
    json_t *j = s && *s ? json_loads(s, 0, NULL) : NULL;
    return j ? j : json_object();
}

#define ASSET_COLS                                                                         \
    "a.id, a.kind, a.source, a.deleted, a.discovered, a.operator, a.data, a.version,"     \
    " COALESCE(d.path, ''), a.seq, a.created_at, a.updated_at"
#define ASSET_FROM " FROM assets a LEFT JOIN departments d ON d.id = a.department_id"

static void asset_from_row(struct gc_rows *r, struct asset *a)
{
    a->exists = true;
    snprintf(a->id, sizeof(a->id), "%s", gc_rows_text(r, 0));
    snprintf(a->kind, sizeof(a->kind), "%s", gc_rows_text(r, 1));
    snprintf(a->source, sizeof(a->source), "%s", gc_rows_text(r, 2));
    a->deleted = gc_rows_int(r, 3) != 0;
    a->disc = load_json(gc_rows_text(r, 4));
    a->oper = load_json(gc_rows_text(r, 5));
    a->data = a->deleted ? NULL : load_json(gc_rows_text(r, 6));
    a->version = gc_rows_int(r, 7);
    snprintf(a->dept_path, sizeof(a->dept_path), "%s", gc_rows_text(r, 8));
}

/* Loads asset id (deleted or not); a->exists false when there is none. */
static int asset_load(struct gc_tx *tx, const char *id, struct asset *a, struct gc_error *err)
{
    memset(a, 0, sizeof(*a));
    struct gc_rows *r;
    int rc = gc_tx_query(tx, "SELECT " ASSET_COLS ASSET_FROM " WHERE a.id = ?",
                         GC_ARGS(GC_VTXT(id)), &r, err);
    if (rc)
        return rc;
    rc = gc_rows_next(r, err);
    if (rc > 0) {
        asset_from_row(r, a);
        rc = 0;
    }
    gc_rows_free(r);
    return rc;
}

/* Writes the new state of an asset: disc and oper (borrowed; both NULL: delete), with a new
 * seq and a history row, unless nothing in its data changes. a is the current state
 * (a->exists false for a new one); *changed (may be NULL) tells whether anything was
 * written. */
static int asset_write(struct gc_tx *tx, const char *actor, struct asset *a, const char *id,
                       const char *kind, const char *source, const json_t *disc,
                       const json_t *oper, int64_t now, bool *changed, struct gc_error *err)
{
    bool del = !disc && !oper;
    json_t *data = del ? NULL : merge(disc, oper, source);
    const json_t *old = a->exists && !a->deleted ? a->data : NULL;
    json_t *changes = diff(old, data);
    char *disc_s = disc ? json_dumps(disc, JDUMP) : NULL;
    char *oper_s = oper ? json_dumps(oper, JDUMP) : NULL;
    /* the parts are compared too: a discovered field that became equal to an operator
     * value still has to be recorded as discovery's */
    bool same_parts = a->exists && !a->deleted && !del && disc_s && oper_s;
    if (same_parts) {
        char *d0 = json_dumps(a->disc, JDUMP), *o0 = json_dumps(a->oper, JDUMP);
        same_parts = !strcmp(d0, disc_s) && !strcmp(o0, oper_s);
        free(d0);
        free(o0);
    }
    int rc = 0;
    if (changed)
        *changed = false;
    if ((!changes && (del ? (!a->exists || a->deleted) : a->exists && !a->deleted) &&
         same_parts) ||
        (del && (!a->exists || a->deleted)))
        goto cleanup;
    int64_t seq;
    rc = gc_sup_seq_next(tx, "asset", &seq, err);
    if (rc)
        goto cleanup;
    char *data_s = data ? json_dumps(data, JDUMP) : NULL;
    const json_t *src = data ? data : a->data;
    const char *dept = gc_json_str(src, "department_id");
    const char *arch = gc_json_str(src, "cpu_arch");
    const char *layer = gc_json_str(src, "layer");
    json_t *dom = json_object_get(json_object_get(src, "domestic"), "flag");
    const char *domestic = json_is_true(dom) ? "true" : json_is_false(dom) ? "false" : NULL;
    const char *serial = data ? gc_json_str(data, "serial_number") : NULL;
    const char *tag = data ? gc_json_str(data, "asset_tag") : NULL;
    const char *name = data ? gc_json_str(data, "name") : NULL;
    if (!a->exists) {
        rc = gc_tx_exec(tx,
                        "INSERT INTO assets (id, kind, name, source, department_id, cpu_arch,"
                        " layer, domestic, serial_number, asset_tag, discovered, operator, data,"
                        " seq, deleted, created_at, updated_at, version)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, 1)",
                        GC_ARGS(GC_VTXT(id), GC_VTXT(kind), GC_VTXT(name ? name : ""),
                                GC_VTXT(source), GC_VTXT(dept),
                                GC_VTXT(arch), GC_VTXT(layer), GC_VTXT(domestic),
                                GC_VTXT(serial), GC_VTXT(tag), GC_VTXT(disc_s), GC_VTXT(oper_s),
                                GC_VTXT(data_s), GC_VINT_(seq), GC_VINT_(now), GC_VINT_(now)),
                        NULL, err);
    } else {
        /* a tombstone keeps its last parts, so that the same resource coming back keeps the
         * operator's enrichment */
        rc = gc_tx_exec(tx,
                        "UPDATE assets SET kind = ?, name = COALESCE(?, name), source = ?,"
                        " department_id = ?, cpu_arch = ?,"
                        " layer = ?, domestic = ?, serial_number = ?, asset_tag = ?,"
                        " discovered = COALESCE(?, discovered), operator = COALESCE(?, operator),"
                        " data = ?, seq = ?, deleted = ?, updated_at = ?, version = version + 1"
                        " WHERE id = ?",
                        GC_ARGS(GC_VTXT(kind), GC_VTXT(name), GC_VTXT(source), GC_VTXT(dept),
                                GC_VTXT(arch),
                                GC_VTXT(layer), GC_VTXT(domestic), GC_VTXT(serial),
                                GC_VTXT(tag), GC_VTXT(disc_s), GC_VTXT(oper_s), GC_VTXT(data_s),
                                GC_VINT_(seq), GC_VINT_(del ? 1 : 0), GC_VINT_(now),
                                GC_VTXT(id)),
                        NULL, err);
    }
    free(data_s);
    if (!rc) {
        const char *op = del ? "delete" : (!a->exists || a->deleted) ? "create" : "update";
        char *ch = changes ? json_dumps(changes, JDUMP) : gc_strdup("{}");
        rc = gc_tx_exec(tx,
                        "INSERT INTO asset_history (asset_id, seq, time, actor, op, changes)"
                        " VALUES (?, ?, ?, ?, ?, ?)",
                        GC_ARGS(GC_VTXT(id), GC_VINT_(seq), GC_VINT_(now), GC_VTXT(actor),
                                GC_VTXT(op), GC_VTXT(ch)),
                        NULL, err);
        free(ch);
    }
    if (!rc && changed)
        *changed = true;
cleanup:
    free(disc_s);
    free(oper_s);
    json_decref(changes);
    json_decref(data);
    return rc;
}

/* The API representation: the data's fields, then id, seq, version, times and which
 * fields discovery owns. */
static json_t *asset_json(const struct asset *a, int64_t seq, int64_t created, int64_t updated)
{
    json_t *o = json_deep_copy(a->data);
    json_object_set_new(o, "id", json_string(a->id));
    json_object_set_new(o, "seq", json_integer(seq));
    json_object_set_new(o, "version", json_integer(a->version));
    json_object_set_new(o, "created_at", gc_json_time(created));
    json_object_set_new(o, "updated_at", gc_json_time(updated));
    json_t *own = json_array();
    const char *const *list = owned_for(a->source, a->kind);
    for (const char *const *p = list; p && *p; p++)
        json_array_append_new(own, json_string(*p));
    json_object_set_new(o, "discovered_fields", own);
    return o;
}

static json_t *asset_row_json(struct gc_rows *r, char *path)
{
    struct asset a;
    memset(&a, 0, sizeof(a));
    asset_from_row(r, &a);
    if (path)
        snprintf(path, GC_DEPT_PATH_MAX, "%s", a.dept_path);
    json_t *o = asset_json(&a, gc_rows_int(r, 9), gc_rows_int(r, 10), gc_rows_int(r, 11));
    asset_release(&a);
    return o;
}

/* ------------------------------------------------------------------------------------ */
/* read */

static int asset_loader(struct gc_tx *tx, const char *id, json_t **out, char *path,
                        struct gc_error *err)
{
    if (!asset_id_valid(id))
        return gc_error_set(err, GC_ENOTFOUND, "id", "asset '%.64s' not found", id);
    struct gc_rows *r;
    int rc = gc_tx_query(tx, "SELECT " ASSET_COLS ASSET_FROM " WHERE a.id = ? AND a.deleted = 0",
                         GC_ARGS(GC_VTXT(id)), &r, err);
    if (rc)
        return rc;
    rc = gc_rows_next(r, err);
    if (rc == 0)
        rc = gc_error_set(err, GC_ENOTFOUND, "id", "asset '%s' not found", id);
    if (rc > 0) {
        *out = asset_row_json(r, path);
        rc = 0;
    }
    gc_rows_free(r);
    return rc;
}

int gc_asset_get(const struct gc_ctx *ctx, const char *id, json_t **out, struct gc_error *err)
{
    return gc_get_scoped(ctx, asset_loader, GC_P_VM_READ, "asset", id, out, err);
}

static json_t *list_row(struct gc_rows *r, const struct gc_principal *who)
{
    (void)who; /* scope is in the query */
    return asset_row_json(r, NULL);
}

int gc_asset_list(const struct gc_ctx *ctx, json_t *filters, int limit, const char *cursor,
                  json_t **items, char **next_cursor, struct gc_error *err)
{
    int rc = gc_require(ctx->who, GC_P_VM_READ, err);
    if (!rc)
        rc = gc_page_limit(limit, &limit, err);
    if (rc)
        return rc;
    if (cursor && !asset_id_valid(cursor))
        return gc_error_set(err, GC_EINVAL, "cursor",
                            "cursor is not one returned by this API (use next_cursor as given)");
    /* filter values are checked, so that a typo is an error rather than an empty list */
    static const struct {
        const char *param, *column, *path;
    } f[] = {{"kind", "a.kind", "kind"},
             {"department_id", "a.department_id", "department_id"},
             {"domestic", "a.domestic", NULL},
             {"cpu_arch", "a.cpu_arch", "cpu_arch"},
             {"layer", "a.layer", "layer"},
             {"source", "a.source", "source"}};
    struct gc_buf sql;
    gc_buf_init(&sql, GC_BUF_UNLIMITED);
    struct gc_val args[12];
    size_t n = 0;
    (void)gc_buf_adds(&sql, "SELECT " ASSET_COLS ASSET_FROM " WHERE a.id > ? AND a.deleted = 0");
    args[n++] = GC_VTXT(cursor ? cursor : "");
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
        const char *v = gc_json_str(filters, f[i].param);
        if (!v)
            continue;
        bool ok;
        if (!f[i].path) {
            ok = !strcmp(v, "true") || !strcmp(v, "false");
        } else {
            const struct afield *af = field_find(f[i].path);
            ok = af->t == F_UUID ? gc_id_valid(v) : enum_has(af->enums, v);
        }
        if (!ok) {
            gc_buf_release(&sql);
            const struct afield *af = f[i].path ? field_find(f[i].path) : NULL;
            return gc_error_set(err, GC_EINVAL, f[i].param,
                                "query parameter '%s': '%.64s' is not %s", f[i].param, v,
                                !af ? "true or false"
                                : af->t == F_UUID ? "a department id"
                                                  : af->enums);
        }
        (void)gc_buf_addf(&sql, " AND %s = ?", f[i].column);
        args[n++] = GC_VTXT(v);
    }
    char prefix[GC_DEPT_PATH_MAX + 2];
    if (!gc_role_is_platform(ctx->who->role)) {
        if (ctx->who->role == GC_ROLE_DEPARTMENT_ADMIN) {
            snprintf(prefix, sizeof(prefix), "%s%%", ctx->who->dept_path);
            (void)gc_buf_adds(&sql, " AND d.path LIKE ?");
        } else {
            snprintf(prefix, sizeof(prefix), "%s", ctx->who->dept_path);
            (void)gc_buf_adds(&sql, " AND d.path = ?");
        }
        args[n++] = GC_VTXT(prefix);
    }
    (void)gc_buf_adds(&sql, " ORDER BY a.id LIMIT ?");
    args[n++] = GC_VINT_(limit + 1);
    rc = gc_page_run(ctx, gc_buf_str(&sql), args, n, limit, "id", list_row, items, next_cursor,
                     err);
    gc_buf_release(&sql);
    return rc;
}

static json_t *history_row(struct gc_rows *r, const struct gc_principal *who)
{
    (void)who;
    json_t *o = json_object();
    json_object_set_new(o, "seq", json_integer(gc_rows_int(r, 0)));
    json_object_set_new(o, "time", gc_json_time(gc_rows_int(r, 1)));
    json_object_set_new(o, "actor", json_string(gc_rows_text(r, 2)));
    json_object_set_new(o, "op", json_string(gc_rows_text(r, 3)));
    json_object_set_new(o, "changes", load_json(gc_rows_text(r, 4)));
    return o;
}

int gc_asset_history(const struct gc_ctx *ctx, const char *id, int limit, const char *cursor,
                     json_t **items, char **next_cursor, struct gc_error *err)
{
    int rc = gc_require(ctx->who, GC_P_VM_READ, err);
    if (!rc)
        rc = gc_page_limit(limit, &limit, err);
    if (rc)
        return rc;
    int64_t after = 0;
    if (cursor) {
        char *end;
        errno = 0;
        long long v = strtoll(cursor, &end, 10);
        if (errno || end == cursor || *end || v < 0)
            return gc_error_set(err, GC_EINVAL, "cursor",
                                "cursor is not one returned by this API (use next_cursor as "
                                "given)");
        after = v;
    }
    if (!asset_id_valid(id))
        return gc_error_set(err, GC_ENOTFOUND, "id", "asset '%.64s' not found", id);
    /* the asset's scope, deleted or not: its history outlives it */
    struct gc_tx *tx;
    rc = gc_tx_begin(ctx->store, GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    struct asset a;
    rc = asset_load(tx, id, &a, err);
    gc_tx_rollback(tx);
    if (!rc && !a.exists)
        rc = gc_error_set(err, GC_ENOTFOUND, "id", "asset '%s' not found", id);
    if (!rc)
        rc = gc_authorize(ctx->who, GC_P_VM_READ, a.dept_path, "asset", id, err);
    asset_release(&a);
    if (rc)
        return rc;
    return gc_page_run(ctx,
                       "SELECT seq, time, actor, op, changes FROM asset_history"
                       " WHERE asset_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                       GC_ARGS(GC_VTXT(id), GC_VINT_(after), GC_VINT_(limit + 1)), limit, "seq",
                       history_row, items, next_cursor, err);
}

/* ------------------------------------------------------------------------------------ */
/* operator changes: PATCH, DELETE, import */

static const char *actor_of(const struct gc_ctx *ctx)
{
    return ctx->who && ctx->who->username[0] ? ctx->who->username : "system";
}

/* Operator fields of a discovered asset must not touch what discovery owns. */
static void check_not_owned(struct verrs *v, const char *source, const char *kind,
                            const json_t *oper)
{
    const char *const *list = owned_for(source, kind);
    json_t *flat = flatten(oper);
    const char *k;
    json_t *val;
    json_object_foreach(flat, k, val) {
        const char *top = k;
        char head[64];
        const char *dot = strchr(k, '.');
        if (dot && (size_t)(dot - k) < sizeof(head)) {
            memcpy(head, k, (size_t)(dot - k));
            head[dot - k] = '\0';
            top = head;
        }
        if (owned(list, k) || (strcmp(top, "attributes") != 0 && owned(list, top)))
            verr(v, k, "is discovered from the %s and cannot be set by an operator",
                 !strcmp(source, "snmp") ? "device over SNMP" : kind);
    }
    json_decref(flat);
}

/* Checks the semantic rules that need the store: the department exists. */
static int check_refs(struct gc_tx *tx, struct verrs *v, const json_t *oper,
                      struct gc_error *err)
{
    const char *dept = gc_json_str(oper, "department_id");
    if (!dept || !gc_id_valid(dept))
        return 0;
    char path[GC_DEPT_PATH_MAX];
    int rc = gc_dept_path(tx, dept, path, err);
    if (rc == GC_ENOTFOUND) {
        gc_error_clear(err);
        verr(v, "department_id", "department '%s' does not exist", dept);
        return 0;
    }
    return rc;
}

static int verrs_to_error(struct verrs *v, struct gc_error *err)
{
    json_t *first = json_array_get(v->list, 0);
    const char *d = json_string_value(json_object_get(first, "detail"));
    const char *f = json_string_value(json_object_get(first, "field"));
    if (v->count > 1)
        return gc_error_set(err, GC_EINVAL, f ? f : "", "%s (and %zu more errors)", d ? d : "",
                            v->count - 1);
    return gc_error_set(err, GC_EINVAL, f ? f : "", "%s", d ? d : "");
}

int gc_asset_update(const struct gc_ctx *ctx, const char *id, int64_t if_match, json_t *in,
                    json_t **out, struct gc_error *err)
{
    struct gc_tx *tx;
    int rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    struct asset a;
    memset(&a, 0, sizeof(a));
    json_t *oper = NULL;
    struct verrs v = {.list = json_array()};
    if (!asset_id_valid(id)) {
        rc = gc_error_set(err, GC_ENOTFOUND, "id", "asset '%.64s' not found", id);
        goto done;
    }
    rc = asset_load(tx, id, &a, err);
    if (!rc && (!a.exists || a.deleted))
        rc = gc_error_set(err, GC_ENOTFOUND, "id", "asset '%s' not found", id);
    if (!rc)
        rc = gc_authorize(ctx->who, GC_P_HOST_WRITE, a.dept_path, "asset", id, err);
    if (!rc && if_match >= 0 && if_match != a.version)
        rc = gc_error_set(err, GC_EPRECOND, "If-Match",
                          "asset '%s' is at version %lld, not %lld", id, (long long)a.version,
                          (long long)if_match);
    if (rc)
        goto done;
    for (const char *ro[] = {"id", "seq", "version", "created_at", "updated_at",
                             "discovered_fields", NULL},
                    **p = ro;
         *p; p++)
        if (json_object_get(in, *p))
            verr(&v, *p, "is set by govcloud and cannot be changed");
    const char *src = gc_json_str(in, "source");
    if (src && strcmp(src, a.source) != 0)
        verr(&v, "source", "is set by govcloud and cannot be changed");
    bool discovered = is_disc_source(a.source);
    /* RFC 7396 on the operator's part: null removes, objects merge member by member */
    oper = json_deep_copy(a.oper);
    const char *k;
    json_t *val;
    json_object_foreach(in, k, val) {
        if (!strcmp(k, "source") || json_array_size(v.list))
            continue;
        json_t *cur = json_object_get(oper, k);
        if (json_is_object(val) && json_is_object(cur)) {
            const char *sk;
            json_t *sv;
            json_object_foreach(val, sk, sv) {
                if (json_is_null(sv))
                    json_object_del(cur, sk);
                else
                    json_object_set(cur, sk, sv);
            }
        } else if (json_is_null(val)) {
            json_object_del(oper, k);
        } else {
            json_object_set_new(oper, k, json_deep_copy(val));
        }
    }
    strip_nulls(oper);
    if (!json_array_size(v.list)) {
        check_fields(&v, oper, !discovered);
        if (discovered)
            check_not_owned(&v, a.source, a.kind, oper);
        else if (json_is_string(json_object_get(oper, "kind")) &&
                 is_discovered_kind(gc_json_str(oper, "kind")))
            verr(&v, "kind", "'%s' assets are discovered, not entered", gc_json_str(oper, "kind"));
    }
    if (!json_array_size(v.list))
        rc = check_refs(tx, &v, oper, err);
    if (!rc && json_array_size(v.list))
        rc = verrs_to_error(&v, err);
    if (rc)
        goto done;
    const char *kind = discovered ? a.kind : gc_json_str(oper, "kind");
    rc = asset_write(tx, actor_of(ctx), &a, id, kind, a.source, a.disc, oper, gc_now_ms(),
                     NULL, err);
done:;
    struct gc_audit_event ev = {.action = "asset.update",
                                .resource_type = "asset",
                                .resource_id = id,
                                .department_id = oper ? gc_json_str(oper, "department_id") : NULL,
                                .detail = in};
    rc = gc_audit_commit(tx, ctx, &ev, rc, err);
    json_decref(v.list);
    json_decref(oper);
    asset_release(&a);
    if (rc)
        return rc;
    return gc_asset_get(ctx, id, out, err);
}

int gc_asset_delete(const struct gc_ctx *ctx, const char *id, int64_t if_match,
                    struct gc_error *err)
{
    struct gc_tx *tx;
    int rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    struct asset a;
    memset(&a, 0, sizeof(a));
    if (!asset_id_valid(id))
        rc = gc_error_set(err, GC_ENOTFOUND, "id", "asset '%.64s' not found", id);
    if (!rc)
        rc = asset_load(tx, id, &a, err);
    if (!rc && (!a.exists || a.deleted))
        rc = gc_error_set(err, GC_ENOTFOUND, "id", "asset '%s' not found", id);
    if (!rc)
        rc = gc_authorize(ctx->who, GC_P_HOST_WRITE, a.dept_path, "asset", id, err);
    if (!rc && is_disc_source(a.source))
        rc = gc_error_set(err, GC_ECONFLICT, "id",
                          "asset '%s' is discovered: it goes when its %s is deleted", id,
                          !strcmp(a.source, "snmp") ? "SNMP device target" : a.kind);
    if (!rc && if_match >= 0 && if_match != a.version)
        rc = gc_error_set(err, GC_EPRECOND, "If-Match",
                          "asset '%s' is at version %lld, not %lld", id, (long long)a.version,
                          (long long)if_match);
    if (!rc)
        rc = asset_write(tx, actor_of(ctx), &a, id, a.kind, a.source, NULL, NULL, gc_now_ms(),
                         NULL, err);
    struct gc_audit_event ev = {.action = "asset.delete",
                                .resource_type = "asset",
                                .resource_id = id,
                                .department_id = a.data ? gc_json_str(a.data, "department_id")
                                                        : NULL};
    rc = gc_audit_commit(tx, ctx, &ev, rc, err);
    asset_release(&a);
    return rc;
}

/* Finds the live asset whose column (serial_number or asset_tag) is value; id "" if none. */
static int find_by(struct gc_tx *tx, const char *column, const char *value, char *id,
                   size_t cap, struct gc_error *err)
{
    id[0] = '\0';
    if (!value)
        return 0;
    struct gc_rows *r;
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT id FROM assets WHERE %s = ? AND deleted = 0 LIMIT 1",
             !strcmp(column, "asset_tag") ? "asset_tag" : "serial_number");
    int rc = gc_tx_query(tx, sql, GC_ARGS(GC_VTXT(value)), &r, err);
    if (rc)
        return rc;
    rc = gc_rows_next(r, err);
    if (rc > 0) {
        snprintf(id, cap, "%s", gc_rows_text(r, 0));
        rc = 0;
    }
    gc_rows_free(r);
    return rc;
}

/* The live imported asset of that kind and name without serial number or asset tag. */
static int find_by_name(struct gc_tx *tx, const char *kind, const char *name, char *id,
                        size_t cap, struct gc_error *err)
{
    id[0] = '\0';
    struct gc_rows *r;
    int rc = gc_tx_query(tx,
                         "SELECT id FROM assets WHERE kind = ? AND name = ? AND deleted = 0"
                         " AND source = 'imported' AND serial_number IS NULL"
                         " AND asset_tag IS NULL ORDER BY id LIMIT 1",
                         GC_ARGS(GC_VTXT(kind), GC_VTXT(name)), &r, err);
    if (rc)
        return rc;
    rc = gc_rows_next(r, err);
    if (rc > 0) {
        snprintf(id, cap, "%s", gc_rows_text(r, 0));
        rc = 0;
    }
    gc_rows_free(r);
    return rc;
}

/* Whether errors already hold one about row. */
static bool row_reported(const json_t *errors, int row)
{
    size_t i;
    json_t *e;
    json_array_foreach(errors, i, e) {
        if (json_integer_value(json_object_get(e, "row")) == row)
            return true;
    }
    return false;
}

/* Orders errors by row (stable: a row's errors keep their order). */
static void sort_by_row(json_t *errors)
{
    size_t n = json_array_size(errors);
    for (size_t i = 1; i < n; i++) {
        json_t *e = json_incref(json_array_get(errors, i));
        json_int_t row = json_integer_value(json_object_get(e, "row"));
        size_t j = i;
        while (j > 0 &&
               json_integer_value(json_object_get(json_array_get(errors, j - 1), "row")) > row)
            j--;
        if (j != i) {
            json_array_remove(errors, i);
            json_array_insert(errors, j, e);
        }
        json_decref(e);
    }
}

int gc_asset_import(const struct gc_ctx *ctx, json_t *rows, json_t **out, json_t *errors,
                    struct gc_error *err)
{
    int rc = gc_require(ctx->who, GC_P_HOST_WRITE, err);
    if (rc)
        return rc;
    if (!json_is_array(rows))
        return gc_error_set(err, GC_EINVAL, "", "the body must be a JSON array of assets");
    size_t n = json_array_size(rows);
    if (n == 0)
        return gc_error_set(err, GC_EINVAL, "", "there are no rows to import");
    if (n > GC_ASSET_IMPORT_MAX_ROWS)
        return gc_error_set(err, GC_EINVAL, "", "%zu rows; at most %d are imported at once", n,
                            GC_ASSET_IMPORT_MAX_ROWS);
    struct gc_tx *tx;
    rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    struct verrs v = {.list = errors, .count = json_array_size(errors)};
    json_t *seen = json_object(); /* "s:<serial>", "t:<tag>", "i:<id>" → row */
    json_t *result = json_array();
    int64_t created = 0, updated = 0, unchanged = 0;
    int64_t now = gc_now_ms();
    for (size_t i = 0; !rc && i < n; i++) {
        v.row = (int)i + 1;
        size_t before = v.count;
        json_t *row = json_array_get(rows, i);
        if (!json_is_object(row)) {
            if (!row_reported(errors, v.row)) /* a CSV row that did not parse */
                verr(&v, "", "must be an object of asset fields");
            continue;
        }
        json_t *oper = json_deep_copy(row);
        strip_nulls(oper);
        const char *want_id = gc_json_str(oper, "id");
        char id[136] = "";
        if (json_object_get(oper, "id") && !json_is_string(json_object_get(oper, "id")))
            verr(&v, "id", "must be a string");
        else if (want_id && !asset_id_valid(want_id))
            verr(&v, "id", "'%.64s' is not an asset id (1 to 128 of A-Z a-z 0-9 . _ : -)",
                 want_id);
        else if (want_id && !strcmp(want_id, "snmp-devices"))
            verr(&v, "id", "'snmp-devices' is reserved (/v1/assets/snmp-devices)");
        else if (want_id)
            snprintf(id, sizeof(id), "%s", want_id);
        json_object_del(oper, "id");
        const char *src = gc_json_str(oper, "source");
        if (src && strcmp(src, "imported") != 0)
            verr(&v, "source", "'%.32s': imported assets have source imported", src);
        json_object_del(oper, "source");
        /* the natural key: an explicit id, else the serial number, else the asset tag */
        const char *serial = gc_json_str(oper, "serial_number");
        const char *tag = gc_json_str(oper, "asset_tag");
        char by_serial[136] = "", by_tag[136] = "";
        if (!rc && json_is_string(json_object_get(oper, "serial_number")))
            rc = find_by(tx, "serial_number", serial, by_serial, sizeof(by_serial), err);
        if (!rc && json_is_string(json_object_get(oper, "asset_tag")))
            rc = find_by(tx, "asset_tag", tag, by_tag, sizeof(by_tag), err);
        if (rc) {
            json_decref(oper);
            break;
        }
        if (!id[0])
            snprintf(id, sizeof(id), "%s", by_serial[0] ? by_serial : by_tag);
        /* without any key, an imported asset of the same kind and name is the same one */
        if (!id[0] && !json_object_get(oper, "serial_number") &&
            !json_object_get(oper, "asset_tag") && json_is_string(json_object_get(oper, "kind")) &&
            json_is_string(json_object_get(oper, "name"))) {
            rc = find_by_name(tx, gc_json_str(oper, "kind"), gc_json_str(oper, "name"), id,
                              sizeof(id), err);
            if (rc) {
                json_decref(oper);
                break;
            }
        }
        if (by_serial[0] && strcmp(by_serial, id) != 0)
            verr(&v, "serial_number", "'%.64s' is the serial number of asset %s", serial,
                 by_serial);
        if (by_tag[0] && strcmp(by_tag, id) != 0)
            verr(&v, "asset_tag", "'%.64s' is the asset tag of asset %s", tag, by_tag);
        /* the same key twice in one import */
        bool keyless = !want_id && !json_object_get(oper, "serial_number") &&
                       !json_object_get(oper, "asset_tag");
        char kn[600] = "";
        if (keyless && json_is_string(json_object_get(oper, "kind")) &&
            json_is_string(json_object_get(oper, "name")))
            snprintf(kn, sizeof(kn), "%s %s", gc_json_str(oper, "kind"),
                     gc_json_str(oper, "name"));
        struct {
            const char *prefix, *value, *field;
        } keys[] = {{"n:", kn[0] ? kn : NULL, "name"},
                    {"i:", want_id && id[0] ? id : NULL, "id"},
                    {"s:", json_is_string(json_object_get(oper, "serial_number")) ? serial : NULL,
                     "serial_number"},
                    {"t:", json_is_string(json_object_get(oper, "asset_tag")) ? tag : NULL,
                     "asset_tag"}};
        for (size_t k = 0; k < 4; k++) {
            if (!keys[k].value)
                continue;
            char key[700];
            snprintf(key, sizeof(key), "%s%s", keys[k].prefix, keys[k].value);
            json_t *prev = json_object_get(seen, key);
            if (prev)
                verr(&v, keys[k].field, "'%.64s' is also in row %lld", keys[k].value,
                     (long long)json_integer_value(prev));
            else
                json_object_set_new(seen, key, json_integer(v.row));
        }
        struct asset a;
        memset(&a, 0, sizeof(a));
        if (id[0])
            rc = asset_load(tx, id, &a, err);
        if (rc) {
            json_decref(oper);
            break;
        }
        bool discovered = a.exists && is_disc_source(a.source);
        if (!discovered && !a.exists && id[0]) {
            const char *colon = strchr(id, ':');
            char head[24] = "";
            if (colon && (size_t)(colon - id) < sizeof(head)) {
                memcpy(head, id, (size_t)(colon - id));
                head[colon - id] = '\0';
            }
            if (is_discovered_kind(head) || !strcmp(head, "snmp"))
                verr(&v, "id", "'%s' names a discovered asset, and there is none", id);
        }
        if (discovered) {
            /* enrichment of a discovered asset: what discovery owns may only repeat it */
            const char *const *list = owned_for(a.source, a.kind);
            const char *k;
            json_t *val;
            void *tmp;
            json_object_foreach_safe(oper, tmp, k, val) {
                if (owned(list, k) && json_equal(val, json_object_get(a.disc, k)))
                    json_object_del(oper, k);
            }
            check_fields(&v, oper, false);
            check_not_owned(&v, a.source, a.kind, oper);
        } else {
            check_fields(&v, oper, true);
            const char *kind = gc_json_str(oper, "kind");
            if (kind && is_discovered_kind(kind))
                verr(&v, "kind",
                     "'%s' assets are discovered from the platform, not imported "
                     "(import servers, racks, devices and software)",
                     kind);
        }
        if (v.count == before)
            rc = check_refs(tx, &v, oper, err);
        if (!rc && v.count == before) {
            if (!id[0]) {
                char uuid[GC_ID_LEN + 1];
                gc_id_new(uuid);
                snprintf(id, sizeof(id), "asset:%s", uuid);
            }
            bool changed = false;
            bool existed = a.exists && !a.deleted;
            /* writes go ahead while rows are checked; any error rolls all of it back */
            if (v.count == 0) {
                json_t *none = json_object();
                rc = asset_write(tx, actor_of(ctx), &a, id,
                                 discovered ? a.kind : gc_json_str(oper, "kind"),
                                 discovered ? a.source : "imported",
                                 discovered ? a.disc : none, oper, now, &changed, err);
                json_decref(none);
            }
            const char *res = !changed ? "unchanged" : existed ? "updated" : "created";
            if (changed && existed)
                updated++;
            else if (changed)
                created++;
            else
                unchanged++;
            json_array_append_new(result,
                                  json_pack("{sissss}", "row", v.row, "id", id, "result", res));
        }
        asset_release(&a);
        json_decref(oper);
    }
    json_decref(seen);
    if (!rc && v.count) {
        sort_by_row(v.list);
        rc = verrs_to_error(&v, err);
    }
    json_t *detail = json_pack("{sIsIsI}", "created", (json_int_t)created, "updated",
                               (json_int_t)updated, "unchanged", (json_int_t)unchanged);
    struct gc_audit_event ev = {
        .action = "asset.import", .resource_type = "asset", .detail = detail};
    rc = gc_audit_commit(tx, ctx, &ev, rc, err);
    if (rc) {
        json_decref(detail);
        json_decref(result);
        return rc;
    }
    json_object_set_new(detail, "rows", result);
    *out = detail;
    return 0;
}

/* ------------------------------------------------------------------------------------ */
/* CSV to rows */

/* A cell as the JSON value of its field; NULL (and an error) when it does not parse. */
static json_t *cell_value(struct verrs *v, const char *path, const char *s)
{
    const struct afield *f = strncmp(path, "attributes.", 11) == 0 ? NULL : field_find(path);
    if (!f || f->t == F_STR || f->t == F_ENUM || f->t == F_UUID) {
        json_t *j = json_string(s);
        if (!j)
            verr(v, path, "is not valid UTF-8");
        return j;
    }
    if (f->t == F_INT) {
        char *end;
        errno = 0;
        long long x = strtoll(s, &end, 10);
        if (errno || end == s || *end) {
            verr(v, path, "'%.64s' is not an integer", s);
            return NULL;
        }
        return json_integer(x);
    }
    /* F_BOOL */
    if (!strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcmp(s, "1") || !strcmp(s, "是"))
        return json_true();
    if (!strcasecmp(s, "false") || !strcasecmp(s, "no") || !strcmp(s, "0") || !strcmp(s, "否"))
        return json_false();
    verr(v, path, "'%.64s' is not true or false (also: yes/no, 1/0, 是/否)", s);
    return NULL;
}

int gc_asset_csv_rows(const char *data, size_t len, json_t **rows, json_t *errors,
                      struct gc_error *err)
{
    struct gc_csv *c;
    int rc = gc_csv_parse(data, len, GC_ASSET_IMPORT_MAX_ROWS + 1, 256, &c, err);
    if (rc)
        return rc;
    if (c->nrows < 2) {
        bool header = c->nrows == 1;
        gc_csv_free(c);
        return gc_error_set(err, GC_EINVAL, "",
                            header ? "the CSV text has a header and no rows"
                                   : "the CSV text is empty");
    }
    struct verrs v = {.list = errors, .count = json_array_size(errors), .row = -1};
    const struct gc_csv_row *h = &c->rows[0];
    /* the header: known field names, each once */
    for (size_t j = 0; j < h->nfields; j++) {
        const char *name = h->fields[j];
        bool ok = !strcmp(name, "id") || field_find(name) ||
                  (!strncmp(name, "attributes.", 11) && name[11]);
        if (!strcmp(name, "attributes"))
            ok = false;
        char what[120];
        snprintf(what, sizeof(what), "%.100s", name);
        if (!ok)
            verr(&v, what, "header, column %zu: unknown field '%.64s' (nested fields are "
                           "dotted: location.rack, domestic.flag, attributes.<name>)",
                 j + 1, name);
        for (size_t k = 0; k < j; k++)
            if (!strcmp(h->fields[k], name))
                verr(&v, what, "header, column %zu: '%.64s' is also column %zu", j + 1, name,
                     k + 1);
    }
    json_t *out = json_array();
    if (!v.count) {
        for (size_t i = 1; i < c->nrows; i++) {
            const struct gc_csv_row *r = &c->rows[i];
            v.row = (int)i;
            json_t *o = json_object();
            if (r->nfields != h->nfields) {
                verr(&v, "", "has %zu fields, the header has %zu", r->nfields, h->nfields);
                json_decref(o);
                o = json_null(); /* reported: not checked further */
            } else {
                for (size_t j = 0; j < r->nfields; j++) {
                    const char *cell = r->fields[j], *name = h->fields[j];
                    if (!cell[0])
                        continue; /* an empty cell is an absent field */
                    json_t *val = cell_value(&v, name, cell);
                    if (!val)
                        continue;
                    const char *dot = strchr(name, '.');
                    if (!dot) {
                        json_object_set_new(o, name, val);
                        continue;
                    }
                    char parent[32];
                    snprintf(parent, sizeof(parent), "%.*s", (int)(dot - name), name);
                    json_t *p = json_object_get(o, parent);
                    if (!p) {
                        p = json_object();
                        json_object_set_new(o, parent, p);
                    }
                    json_object_set_new(p, dot + 1, val);
                }
            }
            json_array_append_new(out, o);
        }
    }
    gc_csv_free(c);
    *rows = out;
    return 0;
}

/* ------------------------------------------------------------------------------------ */
/* discovery */

static const char *norm_arch(const char *a)
{
    static const char *const known[] = {"x86_64", "aarch64", "loongarch64", "mips64", "sw_64",
                                        "riscv64"};
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (!strcmp(a, known[i]))
            return known[i];
    if (!strcmp(a, "mips64el"))
        return "mips64";
    if (!strcmp(a, "sw64"))
        return "sw_64";
    return "other";
}

static json_t *status_of(const char *state, const char *health)
{
    return json_pack("{ssss}", "state", state, "health", health);
}

/* The discovered part of every asset the platform's resources make: id → object. */
static int discover(struct gc_tx *tx, json_t *cur, struct gc_error *err)
{
    struct gc_rows *r;
    int rc = gc_tx_query(tx,
                         "SELECT id, name, arch, cpu_model, cpus, memory_mib, hypervisor,"
                         " hostname, zone, state, maintenance FROM hosts",
                         GC_NOARGS, &r, err);
    while (!rc && (rc = gc_rows_next(r, err)) > 0) {
        rc = 0;
        char id[80];
        snprintf(id, sizeof(id), "host:%s", gc_rows_text(r, 0));
        const char *arch = gc_rows_text(r, 2), *state = gc_rows_text(r, 9);
        json_t *attrs = json_object();
        if (gc_rows_text(r, 3)[0])
            json_object_set_new(attrs, "cpu_model", json_string(gc_rows_text(r, 3)));
        if (arch[0])
            json_object_set_new(attrs, "machine_arch", json_string(arch));
        if (gc_rows_text(r, 6)[0])
            json_object_set_new(attrs, "hypervisor", json_string(gc_rows_text(r, 6)));
        if (gc_rows_text(r, 7)[0])
            json_object_set_new(attrs, "hostname", json_string(gc_rows_text(r, 7)));
        json_object_set_new(attrs, "zone", json_string(gc_rows_text(r, 8)));
        json_t *o = json_pack("{ssssss}", "kind", "host", "name", gc_rows_text(r, 1), "uuid",
                              gc_rows_text(r, 0));
        json_object_set_new(o, "capacity",
                            json_pack("{sIsI}", "vcpus", (json_int_t)gc_rows_int(r, 4),
                                      "memory_bytes",
                                      (json_int_t)(gc_rows_int(r, 5) * 1048576)));
        if (arch[0])
            json_object_set_new(o, "cpu_arch", json_string(norm_arch(arch)));
        json_object_set_new(o, "attributes", attrs);
        json_object_set_new(
            o, "status",
            status_of(gc_rows_int(r, 10) ? "disabled" : "enabled",
                      !strcmp(state, "connected")      ? "ok"
                      : !strcmp(state, "disconnected") ? "critical"
                                                       : "unknown"));
        json_object_set_new(cur, id, o);
    }
    gc_rows_free(r);
    if (rc < 0)
        return rc;
    rc = gc_tx_query(tx,
                     "SELECT v.id, v.name, v.department_id, v.host_id, v.vcpus, v.memory_mib,"
                     " v.disk_gib, v.state, COALESCE(i.arch, '') FROM vms v"
                     " LEFT JOIN images i ON i.id = v.image_id",
                     GC_NOARGS, &r, err);
    while (!rc && (rc = gc_rows_next(r, err)) > 0) {
        rc = 0;
        char id[80];
        snprintf(id, sizeof(id), "vm:%s", gc_rows_text(r, 0));
        const char *state = gc_rows_text(r, 7);
        json_t *o = json_pack("{sssssssss{sIsIsI}}", "kind", "vm", "name", gc_rows_text(r, 1),
                              "uuid", gc_rows_text(r, 0), "department_id", gc_rows_text(r, 2),
                              "capacity", "vcpus", (json_int_t)gc_rows_int(r, 4),
                              "memory_bytes", (json_int_t)(gc_rows_int(r, 5) * 1048576),
                              "disk_bytes", (json_int_t)(gc_rows_int(r, 6) << 30));
        if (!gc_rows_null(r, 3))
            json_object_set_new(o, "host_id", json_string(gc_rows_text(r, 3)));
        if (gc_rows_text(r, 8)[0])
            json_object_set_new(o, "cpu_arch", json_string(norm_arch(gc_rows_text(r, 8))));
        json_object_set_new(o, "status",
                            !strcmp(state, "running")   ? status_of("enabled", "ok")
                            : !strcmp(state, "stopped") ? status_of("disabled", "ok")
                            : !strcmp(state, "error")   ? status_of("enabled", "critical")
                                                        : status_of("unknown", "unknown"));
        json_object_set_new(cur, id, o);
    }
    gc_rows_free(r);
    if (rc < 0)
        return rc;
    rc = gc_tx_query(tx,
                     "SELECT id, name, department_id, host_id, size_gib, state, pool, format,"
                     " vm_id FROM volumes",
                     GC_NOARGS, &r, err);
    while (!rc && (rc = gc_rows_next(r, err)) > 0) {
        rc = 0;
        char id[80];
        snprintf(id, sizeof(id), "volume:%s", gc_rows_text(r, 0));
        const char *state = gc_rows_text(r, 5);
        json_t *o = json_pack("{sssssssssss{sI}}", "kind", "volume", "name", gc_rows_text(r, 1),
                              "uuid", gc_rows_text(r, 0), "department_id", gc_rows_text(r, 2),
                              "host_id", gc_rows_text(r, 3), "capacity", "disk_bytes",
                              (json_int_t)(gc_rows_int(r, 4) << 30));
        json_t *attrs = json_pack("{ssss}", "pool", gc_rows_text(r, 6), "format",
                                  gc_rows_text(r, 7));
        if (!gc_rows_null(r, 8))
            json_object_set_new(attrs, "vm_id", json_string(gc_rows_text(r, 8)));
        json_object_set_new(o, "attributes", attrs);
        json_object_set_new(o, "status",
                            !strcmp(state, "available") || !strcmp(state, "in-use")
                                ? status_of("enabled", "ok")
                            : !strcmp(state, "error") ? status_of("enabled", "critical")
                                                      : status_of("unknown", "unknown"));
        json_object_set_new(cur, id, o);
    }
    gc_rows_free(r);
    if (rc < 0)
        return rc;
    rc = gc_tx_query(tx,
                     "SELECT id, name, department_id, mode, ipv4_cidr, ipv6_cidr, external"
                     " FROM networks",
                     GC_NOARGS, &r, err);
    while (!rc && (rc = gc_rows_next(r, err)) > 0) {
        rc = 0;
        char id[80];
        snprintf(id, sizeof(id), "network:%s", gc_rows_text(r, 0));
        json_t *attrs = json_pack("{ssssss}", "mode", gc_rows_text(r, 3), "ipv4_cidr",
                                  gc_rows_text(r, 4), "external",
                                  gc_rows_int(r, 6) ? "true" : "false");
        if (gc_rows_text(r, 5)[0])
            json_object_set_new(attrs, "ipv6_cidr", json_string(gc_rows_text(r, 5)));
        json_t *o = json_pack("{sssssssoso}", "kind", "network", "name", gc_rows_text(r, 1),
                              "uuid", gc_rows_text(r, 0), "attributes", attrs, "status",
                              status_of("enabled", "ok"));
        if (!gc_rows_null(r, 2))
            json_object_set_new(o, "department_id", json_string(gc_rows_text(r, 2)));
        json_object_set_new(cur, id, o);
    }
    gc_rows_free(r);
    return rc < 0 ? rc : 0;
}

int gc_asset_sync(struct gc_store *st, int64_t *changes, struct gc_error *err)
{
    if (changes)
        *changes = 0;
    struct gc_tx *tx;
    int rc = gc_tx_begin(st, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    json_t *cur = json_object();  /* id → discovered part now */
    json_t *have = json_object(); /* id → discovered part recorded, of live assets */
    rc = discover(tx, cur, err);
    struct gc_rows *r = NULL;
    if (!rc)
        rc = gc_tx_query(tx,
                         "SELECT id, discovered FROM assets WHERE source = 'discovered'"
                         " AND deleted = 0",
                         GC_NOARGS, &r, err);
    while (!rc && (rc = gc_rows_next(r, err)) > 0) {
        rc = 0;
        json_object_set_new(have, gc_rows_text(r, 0), json_string(gc_rows_text(r, 1)));
    }
    gc_rows_free(r);
    if (rc > 0)
        rc = 0;
    int64_t created = 0, updated = 0, deleted = 0, now = gc_now_ms();
    const char *id;
    json_t *disc;
    json_object_foreach(cur, id, disc) {
        if (rc)
            break;
        const char *old = json_string_value(json_object_get(have, id));
        char *s = json_dumps(disc, JDUMP);
        bool same = old && !strcmp(old, s);
        free(s);
        if (same)
            continue;
        struct asset a;
        rc = asset_load(tx, id, &a, err);
        if (!rc) {
            json_t *none = json_object();
            bool changed = false;
            rc = asset_write(tx, "discovery", &a, id, gc_json_str(disc, "kind"), "discovered",
                             disc, a.exists ? a.oper : none, now, &changed, err);
            json_decref(none);
            if (changed && (!a.exists || a.deleted))
                created++;
            else if (changed)
                updated++;
        }
        asset_release(&a);
    }
    json_t *gone;
    json_object_foreach(have, id, gone) {
        if (rc)
            break;
        if (json_object_get(cur, id))
            continue;
        struct asset a;
        rc = asset_load(tx, id, &a, err);
        if (!rc && a.exists)
            rc = asset_write(tx, "discovery", &a, id, a.kind, "discovered", NULL, NULL, now,
                             NULL, err);
        if (!rc)
            deleted++;
        asset_release(&a);
    }
    json_decref(cur);
    json_decref(have);
    if (!rc && created + updated + deleted == 0) {
        gc_tx_rollback(tx); /* nothing to commit (and no cache to invalidate) */
        return 0;
    }
    json_t *detail = json_pack("{sIsIsI}", "created", (json_int_t)created, "updated",
                               (json_int_t)updated, "deleted", (json_int_t)deleted);
    struct gc_ctx ctx = {.store = st, .request_id = "", .source_ip = ""};
    struct gc_audit_event ev = {.action = "asset.sync",
                                .resource_type = "asset",
                                .detail = detail,
                                .actor_name = "system:asset-discovery"};
    rc = gc_audit_commit(tx, &ctx, &ev, rc, err);
    json_decref(detail);
    if (!rc && changes)
        *changes = created + updated + deleted;
    return rc;
}

int gc_asset_snmp_put(struct gc_tx *tx, const char *id, const json_t *disc, const char *actor,
                      bool *changed, struct gc_error *err)
{
    struct asset a;
    int rc = asset_load(tx, id, &a, err);
    if (!rc && a.exists && strcmp(a.source, "snmp") != 0)
        rc = gc_error_set(err, GC_ECONFLICT, "id", "asset '%s' is not discovered over SNMP", id);
    if (!rc && !disc) {
        if (changed)
            *changed = false;
        if (a.exists && !a.deleted)
            rc = asset_write(tx, actor, &a, id, a.kind, "snmp", NULL, NULL, gc_now_ms(),
                             changed, err);
    } else if (!rc) {
        json_t *none = json_object();
        rc = asset_write(tx, actor, &a, id, gc_json_str(disc, "kind"), "snmp", disc,
                         a.exists ? a.oper : none, gc_now_ms(), changed, err);
        json_decref(none);
    }
    asset_release(&a);
    return rc;
}

int gc_asset_snmp_last(struct gc_tx *tx, const char *id, json_t **disc, struct gc_error *err)
{
    struct asset a;
    int rc = asset_load(tx, id, &a, err);
    *disc = NULL;
    if (!rc && a.exists && !a.deleted && !strcmp(a.source, "snmp"))
        *disc = json_incref(a.disc);
    asset_release(&a);
    return rc;
}

/* Serialises syncs: the periodic thread and pulls may ask at once. */
static pthread_mutex_t sync_lock = PTHREAD_MUTEX_INITIALIZER;

int gc_asset_sup_refresh(struct gc_store *st, struct gc_error *err)
{
    pthread_mutex_lock(&sync_lock);
    int rc = gc_asset_sync(st, NULL, err);
    pthread_mutex_unlock(&sync_lock);
    return rc;
}

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    bool running, stopping;
    struct gc_store *st;
    int64_t interval_ms;
} S = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static void *sync_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&S.lock);
    while (!S.stopping) {
        pthread_mutex_unlock(&S.lock);
        struct gc_error err = {0};
        int64_t n = 0;
        pthread_mutex_lock(&sync_lock);
        int rc = gc_asset_sync(S.st, &n, &err);
        pthread_mutex_unlock(&sync_lock);
        if (rc)
            gc_warn("asset", "discovery failed: %s", err.msg);
        else if (n)
            gc_info("asset", "discovery: %lld assets changed", (long long)n);
        pthread_mutex_lock(&S.lock);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = (int64_t)ts.tv_nsec + (S.interval_ms % 1000) * 1000000;
        ts.tv_sec += (time_t)(S.interval_ms / 1000 + ns / 1000000000);
        ts.tv_nsec = (long)(ns % 1000000000);
        while (!S.stopping && pthread_cond_timedwait(&S.cond, &S.lock, &ts) == 0)
            ;
    }
    pthread_mutex_unlock(&S.lock);
    return NULL;
}

int gc_asset_sync_start(struct gc_store *st, const struct gc_config *cfg, struct gc_error *err)
{
    pthread_mutex_lock(&S.lock);
    S.st = st;
    S.interval_ms = cfg->asset_sync_interval * 1000;
    S.stopping = false;
    int rc = pthread_create(&S.thread, NULL, sync_main, NULL);
    S.running = rc == 0;
    pthread_mutex_unlock(&S.lock);
    if (rc)
        return gc_error_set(err, GC_EINTERNAL, "", "cannot start the asset discovery thread");
    return 0;
}

void gc_asset_sync_stop(void)
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
    S.running = false;
}

/* ------------------------------------------------------------------------------------ */
/* the asset provider of the supervision pull */

int gc_asset_sup_high(struct gc_tx *tx, int64_t *seq, struct gc_error *err)
{
    return gc_sup_seq_high(tx, "asset", seq, err);
}

int gc_asset_sup_fetch(struct gc_tx *tx, int64_t after, int64_t upto, bool live_only, int max,
                       gc_sup_emit_fn emit, void *cls, struct gc_error *err)
{
    struct gc_rows *r;
    int rc = gc_tx_query(tx,
                         live_only ? "SELECT id, seq, updated_at, deleted, data FROM assets"
                                     " WHERE seq > ? AND seq <= ? AND deleted = 0"
                                     " ORDER BY seq LIMIT ?"
                                   : "SELECT id, seq, updated_at, deleted, data FROM assets"
                                     " WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
                         GC_ARGS(GC_VINT_(after), GC_VINT_(upto), GC_VINT_(max)), &r, err);
    if (rc)
        return rc;
    while ((rc = gc_rows_next(r, err)) > 0) {
        struct gc_sup_record rec = {.id = gc_rows_text(r, 0),
                                    .seq = gc_rows_int(r, 1),
                                    .time_ms = gc_rows_int(r, 2),
                                    .deleted = gc_rows_int(r, 3) != 0,
                                    .data = gc_rows_text(r, 4)};
        rc = emit(cls, &rec);
        if (rc)
            break;
    }
    gc_rows_free(r);
    return rc > 0 ? 0 : rc;
}
