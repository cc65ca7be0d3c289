/* Sensor device profiles (data files mapping OIDs or registers to readings): parsing with
 * errors that name the field, the registry of embedded and operator profiles, register
 * decoding, the dew point and the GB 50174 limits. */
#include "drivers/sensor.h"

#include "util/log.h"
#include "util/mem.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- enums ---- */

static const struct {
    const char *name, *units, *metric;
    double factor;
} rtypes[] = {
#define GC_X_RT(e, n, u, m, f) {n, u, m, f},
    GC_READING_TYPES(GC_X_RT)
#undef GC_X_RT
};
_Static_assert(sizeof(rtypes) / sizeof(rtypes[0]) == GC_RT_COUNT, "reading type table");

const char *gc_reading_type_name(enum gc_reading_type t)
{
    return (unsigned)t < GC_RT_COUNT ? rtypes[t].name : "unknown";
}
const char *gc_reading_type_units(enum gc_reading_type t)
{
    return (unsigned)t < GC_RT_COUNT ? rtypes[t].units : "";
}
const char *gc_reading_type_metric(enum gc_reading_type t)
{
    return (unsigned)t < GC_RT_COUNT ? rtypes[t].metric : "";
}
double gc_reading_type_factor(enum gc_reading_type t)
{
    return (unsigned)t < GC_RT_COUNT ? rtypes[t].factor : 1.0;
}
int gc_reading_type_parse(const char *s)
{
    for (int i = 0; i < GC_RT_COUNT; i++)
        if (strcmp(s, rtypes[i].name) == 0)
            return i;
    return -1;
}

static const char *const contexts[] = {"intake", "exhaust", "room", "rack", "ups", "facility"};

bool gc_physical_context_valid(const char *s)
{
    for (size_t i = 0; i < sizeof(contexts) / sizeof(contexts[0]); i++)
        if (strcmp(s, contexts[i]) == 0)
            return true;
    return false;
}

const char *gc_env_status_name(enum gc_env_status s)
{
    static const char *const n[] = {"ok", "caution", "critical"};
    return (unsigned)s < 3 ? n[s] : "unknown";
}

const char *const gc_limit_names[5] = {"lower_critical", "lower_caution", "upper_caution",
                                       "upper_critical", "rate"};

/* ---- parsing ---- */

static bool name_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (const char *p = s; *p; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_' ||
              *p == '-'))
            return false;
    return true;
}

static bool oid_ok(const char *s)
{
    int arcs = 0;
    const char *p = s;
    if (*p == '.')
        p++;
    while (*p) {
        if (!isdigit((unsigned char)*p))
            return false;
        while (isdigit((unsigned char)*p))
            p++;
        arcs++;
        if (*p == '.') {
            p++;
            if (!*p)
                return false;
        } else if (*p) {
            return false;
        }
    }
    return arcs >= 2 && strlen(s) < 128;
}

/* Only these keys. */
static int keys_known(const json_t *o, const char *const *keys, const char *where,
                      struct gc_error *err)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v) {
        bool ok = false;
        for (const char *const *p = keys; *p && !ok; p++)
            ok = strcmp(*p, k) == 0;
        if (!ok) {
            char f[96];
            snprintf(f, sizeof(f), "%s%s%.40s", where, where[0] ? "." : "", k);
            return gc_error_set(err, GC_EINVAL, f, "unknown member '%.40s'", k);
        }
    }
    return 0;
}

static int get_num(const json_t *o, const char *key, double def, double *out, const char *where,
                   struct gc_error *err)
{
    json_t *v = json_object_get(o, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!json_is_number(v))
        return gc_error_set(err, GC_EINVAL, "", "%s.%s must be a number", where, key);
    *out = json_number_value(v);
    if (!isfinite(*out))
        return gc_error_set(err, GC_EINVAL, "", "%s.%s must be finite", where, key);
    return 0;
}

static const char *get_str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static int parse_reading(const json_t *r, const char *driver, struct gc_profile_reading *out,
                         const char *where, struct gc_error *err)
{
    static const char *const keys[] = {"name", "reading_type", "units", "context", "scale",
                                       "offset", "true_values", "oid", "register", "table",
                                       "format", "word_order", NULL};
    memset(out, 0, sizeof(*out));
    if (!json_is_object(r))
        return gc_error_set(err, GC_EINVAL, where, "%s must be an object", where);
    int rc = keys_known(r, keys, where, err);
    if (rc)
        return rc;
    char f[96];
#define FIELD(k) (snprintf(f, sizeof(f), "%s.%s", where, k), f)
    const char *name = get_str(r, "name");
    if (!name || !name_ok(name, 63))
        return gc_error_set(err, GC_EINVAL, FIELD("name"),
                            "%s.name must be 1-63 characters of a-z, 0-9, '_' or '-'", where);
    snprintf(out->name, sizeof(out->name), "%s", name);
    const char *type = get_str(r, "reading_type");
    int t = type ? gc_reading_type_parse(type) : -1;
    if (t < 0 || t == GC_RT_DEW_POINT || t == GC_RT_PUE)
        return gc_error_set(err, GC_EINVAL, FIELD("reading_type"),
                            "%s.reading_type must be temperature, humidity, power, energy, "
                            "ups_state, battery, leak or door (dew_point and pue are derived)",
                            where);
    out->type = (enum gc_reading_type)t;
    const char *units = get_str(r, "units");
    if (!units || strcmp(units, gc_reading_type_units(out->type)) != 0)
        return gc_error_set(err, GC_EINVAL, FIELD("units"),
                            "%s.units must be \"%s\" for a %s reading (convert with scale "
                            "and offset)",
                            where, gc_reading_type_units(out->type), type);
    const char *ctx = get_str(r, "context");
    if (json_object_get(r, "context") && (!ctx || !gc_physical_context_valid(ctx)))
        return gc_error_set(err, GC_EINVAL, FIELD("context"),
                            "%s.context must be intake, exhaust, room, rack, ups or facility",
                            where);
    snprintf(out->context, sizeof(out->context), "%s", ctx ? ctx : "");
    if ((rc = get_num(r, "scale", 1.0, &out->scale, where, err)) != 0) {
        snprintf(err->field, sizeof(err->field), "%s", FIELD("scale"));
        return rc;
    }
    if (out->scale == 0)
        return gc_error_set(err, GC_EINVAL, FIELD("scale"), "%s.scale must not be 0", where);
    if ((rc = get_num(r, "offset", 0.0, &out->offset, where, err)) != 0) {
        snprintf(err->field, sizeof(err->field), "%s", FIELD("offset"));
        return rc;
    }
    json_t *tv = json_object_get(r, "true_values");
    if (tv) {
        if (!json_is_array(tv) || json_array_size(tv) < 1 || json_array_size(tv) > 8)
            return gc_error_set(err, GC_EINVAL, FIELD("true_values"),
                                "%s.true_values must be an array of 1-8 numbers", where);
        size_t i;
        json_t *x;
        json_array_foreach(tv, i, x) {
            if (!json_is_number(x))
                return gc_error_set(err, GC_EINVAL, FIELD("true_values"),
                                    "%s.true_values[%zu] must be a number", where, i);
            out->true_values[out->ntrue++] = json_number_value(x);
        }
        if (out->type != GC_RT_UPS_STATE && out->type != GC_RT_LEAK &&
            out->type != GC_RT_DOOR)
            return gc_error_set(err, GC_EINVAL, FIELD("true_values"),
                                "%s.true_values is for ups_state, leak and door readings",
                                where);
    }
    bool snmp = strcmp(driver, "snmp") == 0;
    if (snmp) {
        const char *oid = get_str(r, "oid");
        if (!oid || !oid_ok(oid))
            return gc_error_set(err, GC_EINVAL, FIELD("oid"),
                                "%s.oid must be a numeric OID such as 1.3.6.1.2.1.33.1.2.4.0",
                                where);
        for (const char *k = "register\0table\0format\0word_order\0"; *k; k += strlen(k) + 1)
            if (json_object_get(r, k))
                return gc_error_set(err, GC_EINVAL, FIELD(k),
                                    "%s.%s is for modbus profiles; an snmp reading has an oid",
                                    where, k);
        snprintf(out->oid, sizeof(out->oid), "%s", oid[0] == '.' ? oid + 1 : oid);
        return 0;
    }
    if (json_object_get(r, "oid"))
        return gc_error_set(err, GC_EINVAL, FIELD("oid"),
                            "%s.oid is for snmp profiles; a modbus reading has a register",
                            where);
    json_t *reg = json_object_get(r, "register");
    if (!json_is_integer(reg) || json_integer_value(reg) < 0 || json_integer_value(reg) > 65535)
        return gc_error_set(err, GC_EINVAL, FIELD("register"),
                            "%s.register must be an integer from 0 to 65535 (the 0-based "
                            "protocol address)",
                            where);
    out->address = (int)json_integer_value(reg);
    const char *table = get_str(r, "table");
    if (json_object_get(r, "table") &&
        (!table || (strcmp(table, "holding") && strcmp(table, "input"))))
        return gc_error_set(err, GC_EINVAL, FIELD("table"),
                            "%s.table must be holding or input", where);
    out->table = table && !strcmp(table, "input") ? GC_MB_INPUT : GC_MB_HOLDING;
    const char *fmt = get_str(r, "format");
    static const char *const fmts[] = {"u16", "s16", "u32", "s32"};
    out->format = GC_MB_U16;
    if (json_object_get(r, "format")) {
        int k = -1;
        for (int i = 0; fmt && i < 4; i++)
            if (!strcmp(fmt, fmts[i]))
                k = i;
        if (k < 0)
            return gc_error_set(err, GC_EINVAL, FIELD("format"),
                                "%s.format must be u16, s16, u32 or s32", where);
        out->format = (enum gc_mb_format)k;
    }
    const char *wo = get_str(r, "word_order");
    if (json_object_get(r, "word_order") && (!wo || (strcmp(wo, "big") && strcmp(wo, "little"))))
        return gc_error_set(err, GC_EINVAL, FIELD("word_order"),
                            "%s.word_order must be big (high word first) or little", where);
    out->order = wo && !strcmp(wo, "little") ? GC_MB_LITTLE : GC_MB_BIG;
    if (out->address + gc_mb_words(out->format) - 1 > 65535)
        return gc_error_set(err, GC_EINVAL, FIELD("register"),
                            "%s.register: a 32-bit value needs two registers", where);
    return 0;
#undef FIELD
}

int gc_profile_parse(const json_t *doc, struct gc_profile *out, struct gc_error *err)
{
    static const char *const keys[] = {"name", "driver", "description", "readings", NULL};
    memset(out, 0, sizeof(*out));
    snprintf(out->source, sizeof(out->source), "builtin");
    if (!json_is_object(doc))
        return gc_error_set(err, GC_EINVAL, "", "a profile must be a JSON object");
    int rc = keys_known(doc, keys, "", err);
    if (rc)
        return rc;
    const char *name = get_str(doc, "name");
    if (!name || !name_ok(name, 63))
        return gc_error_set(err, GC_EINVAL, "name",
                            "name must be 1-63 characters of a-z, 0-9, '_' or '-'");
    snprintf(out->name, sizeof(out->name), "%s", name);
    const char *driver = get_str(doc, "driver");
    if (!driver || (strcmp(driver, "snmp") && strcmp(driver, "modbus")))
        return gc_error_set(err, GC_EINVAL, "driver", "driver must be snmp or modbus");
    snprintf(out->driver, sizeof(out->driver), "%s", driver);
    json_t *d = json_object_get(doc, "description");
    if (d && (!json_is_string(d) || strlen(json_string_value(d)) > 1000))
        return gc_error_set(err, GC_EINVAL, "description",
                            "description must be a string of at most 1000 bytes");
    snprintf(out->description, sizeof(out->description), "%s", d ? json_string_value(d) : "");
    json_t *rs = json_object_get(doc, "readings");
    if (!json_is_array(rs) || json_array_size(rs) == 0 ||
        json_array_size(rs) > GC_PROFILE_READINGS_MAX)
        return gc_error_set(err, GC_EINVAL, "readings",
                            "readings must be an array of 1 to %d readings",
                            GC_PROFILE_READINGS_MAX);
    size_t i;
    json_t *r;
    json_array_foreach(rs, i, r) {
        char where[32];
        snprintf(where, sizeof(where), "readings[%zu]", i);
        struct gc_profile_reading *pr = &out->readings[out->nreadings];
        if ((rc = parse_reading(r, driver, pr, where, err)) != 0)
            return rc;
        for (int j = 0; j < out->nreadings; j++) {
            if (strcmp(out->readings[j].name, pr->name) == 0)
                return gc_error_set(err, GC_EINVAL, "", "%s.name: '%s' is already readings[%d]",
                                    where, pr->name, j);
            if (out->readings[j].type == pr->type &&
                strcmp(out->readings[j].context, pr->context) == 0)
                return gc_error_set(err, GC_EINVAL, "",
                                    "%s: readings[%d] is already a %s reading in context '%s'"
                                    " (give them different contexts)",
                                    where, j, gc_reading_type_name(pr->type), pr->context);
        }
        out->nreadings++;
    }
    return 0;
}

int gc_profile_parse_text(const char *text, size_t len, struct gc_profile *out,
                          struct gc_error *err)
{
    json_error_t je;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!doc)
        return gc_error_set(err, GC_EINVAL, "", "not valid JSON: line %d column %d: %s",
                            je.line, je.column, je.text);
    int rc = gc_profile_parse(doc, out, err);
    json_decref(doc);
    return rc;
}

json_t *gc_profile_json(const struct gc_profile *p)
{
    static const char *const fmts[] = {"u16", "s16", "u32", "s32"};
    json_t *rs = json_array();
    for (int i = 0; i < p->nreadings; i++) {
        const struct gc_profile_reading *r = &p->readings[i];
        json_t *o = json_pack("{s:s,s:s,s:s,s:f,s:f}", "name", r->name, "reading_type",
                              gc_reading_type_name(r->type), "units",
                              gc_reading_type_units(r->type), "scale", r->scale, "offset",
                              r->offset);
        if (r->context[0])
            json_object_set_new(o, "context", json_string(r->context));
        if (r->ntrue) {
            json_t *a = json_array();
            for (int k = 0; k < r->ntrue; k++)
                json_array_append_new(a, json_real(r->true_values[k]));
            json_object_set_new(o, "true_values", a);
        }
        if (!strcmp(p->driver, "snmp")) {
            json_object_set_new(o, "oid", json_string(r->oid));
        } else {
            json_object_set_new(o, "register", json_integer(r->address));
            json_object_set_new(o, "table",
                                json_string(r->table == GC_MB_INPUT ? "input" : "holding"));
            json_object_set_new(o, "format", json_string(fmts[r->format]));
            json_object_set_new(o, "word_order",
                                json_string(r->order == GC_MB_LITTLE ? "little" : "big"));
        }
        json_array_append_new(rs, o);
    }
    return json_pack("{s:s,s:s,s:s,s:s,s:o}", "name", p->name, "driver", p->driver,
                     "description", p->description, "source", p->source, "readings", rs);
}

/* ---- the registry ---- */

/* generated by CMake from the JSON files of profiles/sensors (cmake/embed_profiles.cmake) */
extern const char *const gc_builtin_profiles[];
extern const char *const gc_builtin_profile_files[];
extern const size_t gc_builtin_nprofiles;

static struct {
    pthread_mutex_t lock;
    struct gc_profile *p;
    size_t n;
    bool loaded;
} R = {.lock = PTHREAD_MUTEX_INITIALIZER};

static int add_profile(struct gc_profile *all, size_t *n, const struct gc_profile *p,
                       struct gc_error *err)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(all[i].name, p->name) == 0)
            return gc_error_set(err, GC_EINVAL, "name",
                                "profile %s: a profile named '%s' is already loaded from %s",
                                p->source, p->name, all[i].source);
    all[(*n)++] = *p;
    return 0;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

#define GC_PROFILES_MAX 256

int gc_profiles_load(const char *dir, struct gc_error *err)
{
    struct gc_profile *all = gc_calloc(GC_PROFILES_MAX, sizeof(*all));
    size_t n = 0;
    int rc = 0;
    struct gc_profile *p = gc_calloc(1, sizeof(*p));
    for (size_t i = 0; !rc && i < gc_builtin_nprofiles; i++) {
        rc = gc_profile_parse_text(gc_builtin_profiles[i], strlen(gc_builtin_profiles[i]), p,
                                   err);
        if (rc)
            GC_BUG("embedded profile %s: %s: %s", gc_builtin_profile_files[i], err->field,
                   err->msg);
        snprintf(p->source, sizeof(p->source), "builtin:%s", gc_builtin_profile_files[i]);
        rc = add_profile(all, &n, p, err);
    }
    char **names = NULL;
    size_t nnames = 0;
    if (!rc && dir && strcmp(dir, "none") != 0) {
        DIR *d = opendir(dir);
        if (!d) {
            rc = gc_error_set(err, GC_EINVAL, "profile_dir", "[environment] profile_dir %s: %s",
                              dir, strerror(errno));
        } else {
            struct dirent *e;
            while ((e = readdir(d)) != NULL) {
                size_t l = strlen(e->d_name);
                if (l > 5 && strcmp(e->d_name + l - 5, ".json") == 0 && e->d_name[0] != '.') {
                    names = gc_realloc(names, (nnames + 1) * sizeof(*names));
                    names[nnames++] = gc_strdup(e->d_name);
                }
            }
            closedir(d);
            qsort(names, nnames, sizeof(*names), name_cmp);
        }
    }
    for (size_t i = 0; !rc && i < nnames; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        FILE *f = fopen(path, "rb");
        if (!f) {
            rc = gc_error_set(err, GC_EINVAL, "profile_dir", "profile %s: %s", path,
                              strerror(errno));
            break;
        }
        char *buf = gc_malloc(65537);
        size_t len = fread(buf, 1, 65537, f);
        fclose(f);
        if (len > 65536) {
            rc = gc_error_set(err, GC_EINVAL, "profile_dir",
                              "profile %s: larger than 64 KiB", path);
        } else {
            rc = gc_profile_parse_text(buf, len, p, err);
            if (rc) {
                char msg[sizeof(err->msg)];
                snprintf(msg, sizeof(msg), "%s", err->msg);
                char field[sizeof(err->field)];
                snprintf(field, sizeof(field), "%s", err->field);
                gc_error_set(err, GC_EINVAL, field, "profile %.200s: %s%s%s", path,
                             field[0] ? field : "", field[0] ? ": " : "", msg);
            } else {
                snprintf(p->source, sizeof(p->source), "%.255s", path);
                if (n == GC_PROFILES_MAX)
                    rc = gc_error_set(err, GC_EINVAL, "profile_dir",
                                      "more than %d profiles", GC_PROFILES_MAX);
                else
                    rc = add_profile(all, &n, p, err);
            }
        }
        free(buf);
    }
    for (size_t i = 0; i < nnames; i++)
        free(names[i]);
    free(names);
    free(p);
    if (rc) {
        free(all);
        return rc;
    }
    pthread_mutex_lock(&R.lock);
    /* loaded once, before any reader (the daemon's start; tests) */
    free(R.p);
    R.p = all;
    R.n = n;
    R.loaded = true;
    pthread_mutex_unlock(&R.lock);
    gc_info("environment", "%zu sensor profiles loaded (%zu embedded)", n, gc_builtin_nprofiles);
    return 0;
}

static void ensure_loaded(void)
{
    pthread_mutex_lock(&R.lock);
    bool loaded = R.loaded;
    pthread_mutex_unlock(&R.lock);
    if (!loaded) {
        struct gc_error e = {0};
        if (gc_profiles_load("none", &e) != 0)
            GC_BUG("embedded profiles: %s", e.msg);
    }
}

const struct gc_profile *gc_profile_find(const char *name)
{
    ensure_loaded();
    for (size_t i = 0; i < R.n; i++)
        if (strcmp(R.p[i].name, name) == 0)
            return &R.p[i];
    return NULL;
}

size_t gc_profile_count(void)
{
    ensure_loaded();
    return R.n;
}

const struct gc_profile *gc_profile_at(size_t i)
{
    ensure_loaded();
    return i < R.n ? &R.p[i] : NULL;
}

/* ---- decoding and physics ---- */

int gc_mb_words(enum gc_mb_format f)
{
    return f == GC_MB_U32 || f == GC_MB_S32 ? 2 : 1;
}

double gc_mb_decode(const uint16_t *regs, enum gc_mb_format f, enum gc_mb_order o)
{
    switch (f) {
    case GC_MB_U16:
        return (double)regs[0];
    case GC_MB_S16:
        return (double)(int16_t)regs[0];
    case GC_MB_U32:
    case GC_MB_S32: {
        uint32_t hi = o == GC_MB_BIG ? regs[0] : regs[1];
        uint32_t lo = o == GC_MB_BIG ? regs[1] : regs[0];
        uint32_t v = (hi << 16) | lo;
        return f == GC_MB_U32 ? (double)v : (double)(int32_t)v;
    }
    }
    return NAN;
}

double gc_dew_point(double t, double rh)
{
    if (!(rh > 0) || !isfinite(t))
        return NAN;
    if (rh > 100)
        rh = 100;
    const double b = 17.62, c = 243.12;
    double g = log(rh / 100.0) + b * t / (c + t);
    return c * g / (b - g);
}

void gc_limits_default(enum gc_reading_type t, const char *ctx, const char *room_class,
                       struct gc_limits *l)
{
    (void)room_class; /* GB 50174-2017 Appendix A gives A, B and C the same operating
                       * figures for these readings; the class is kept for overrides and
                       * reports (docs/environment.md) */
    l->lower_critical = l->lower_caution = l->upper_caution = l->upper_critical = NAN;
    l->rate = NAN;
    bool inlet = !ctx[0] || !strcmp(ctx, "intake") || !strcmp(ctx, "room") ||
                 !strcmp(ctx, "rack");
    switch (t) {
    case GC_RT_TEMPERATURE:
        if (inlet) {
            /* cold aisle or rack inlet 18-27 °C */
            l->lower_critical = 18;
            l->lower_caution = 19;
            l->upper_caution = 26;
            l->upper_critical = 27;
        }
        if (inlet || !strcmp(ctx, "exhaust"))
            l->rate = 20; /* < 20 °C/h with disk drives (5 °C/h with tape) */
        break;
    case GC_RT_HUMIDITY:
        if (inlet) {
            l->upper_caution = 55;
            l->upper_critical = 60; /* RH <= 60 % together with the dew point */
        }
        break;
    case GC_RT_DEW_POINT:
        if (inlet) {
            l->lower_critical = 5.5;
            l->lower_caution = 6.5;
            l->upper_caution = 14;
            l->upper_critical = 15;
        }
        break;
    case GC_RT_LEAK:
    case GC_RT_UPS_STATE:
        l->upper_critical = 0.5;
        break;
    case GC_RT_DOOR:
        l->upper_caution = 0.5;
        break;
    case GC_RT_BATTERY:
        l->lower_critical = 20;
        l->lower_caution = 50;
        break;
    case GC_RT_PUE:
        l->upper_caution = 1.3;
        break;
    default:
        break;
    }
}

enum gc_env_status gc_limits_classify(const struct gc_limits *l, double v, double rate,
                                      bool b[5])
{
    b[0] = !isnan(l->lower_critical) && v < l->lower_critical;
    b[1] = !isnan(l->lower_caution) && v < l->lower_caution;
    b[2] = !isnan(l->upper_caution) && v > l->upper_caution;
    b[3] = !isnan(l->upper_critical) && v > l->upper_critical;
    b[4] = !isnan(l->rate) && !isnan(rate) && fabs(rate) > l->rate;
    if (b[0] || b[3] || b[4])
        return GC_ENV_CRITICAL;
    if (b[1] || b[2])
        return GC_ENV_CAUTION;
    return GC_ENV_OK;
}

/* ---- the driver registry ---- */

const struct gc_sensor_driver *gc_sensor_driver_for(const char *name)
{
    static const struct gc_sensor_driver *const drivers[] = {&gc_sensor_snmp, &gc_sensor_modbus};
    for (size_t i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++)
        if (strcmp(drivers[i]->name, name) == 0)
            return drivers[i];
    return NULL;
}
