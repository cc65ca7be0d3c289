/* Data-centre environment: the /v1/sensors resource and the sensor poller. Sensors are
 * platform objects (GC_P_HOST_READ / GC_P_HOST_WRITE: platform administrators and
 * operators manage them, auditors and supervisors read them, department roles get 403).
 * Credentials are kept in the store and never leave it through the API. The poller reads
 * each enabled sensor every [environment] interval in a thread of its own, bounded by the
 * sensor's timeout_ms, so a hung device delays nobody else. */
#include "monitor/environment.h"

#include "core/asset.h"
#include "core/validate.h"
#include "drivers/sensor.h"
#include "monitor/collect.h"
#include "monitor/latest.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/timeutil.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void gc_env_describe(void)
{
    for (int t = 0; t < GC_RT_COUNT; t++)
        gc_metric_describe(gc_reading_type_metric((enum gc_reading_type)t),
                           t == GC_RT_ENERGY ? GC_METRIC_COUNTER : GC_METRIC_GAUGE,
                           "Data-centre environment reading (docs/environment.md).");
    gc_metric_describe("govcloud_env_temperature_rate_celsius_per_hour", GC_METRIC_GAUGE,
                       "Rate of change of a temperature over [environment] rate_window.");
    gc_metric_describe("govcloud_env_limit_breached", GC_METRIC_GAUGE,
                       "1 while an environment reading is beyond the limit named by label "
                       "limit (lower_critical, lower_caution, upper_caution, upper_critical, "
                       "rate), else 0.");
    gc_metric_describe("govcloud_env_sensor_up", GC_METRIC_GAUGE,
                       "1 when the sensor's last poll answered with valid values, else 0 "
                       "(the reason is in GET /v1/sensors/{id}/readings).");
}

/* ---- the poller's state, by sensor id ---- */

#define HIST_MAX 512

struct hist {
    int n;
    int64_t t[HIST_MAX];
    double v[HIST_MAX];
};

struct sstate {
    char id[GC_ID_LEN + 1];
    bool in_flight, polled;
    int up;                    /* -1 never polled, 0, 1 */
    char reason[32];
    char error[320];
    int64_t checked_at;
    json_t *readings;          /* latest readings (array), or NULL */
    struct hist *hist[GC_PROFILE_READINGS_MAX]; /* temperature history, by reading index */
    char hist_profile[64];
    /* PUE: the energy this sensor counted in round energy_round, and as what */
    double energy;
    int64_t energy_round;
    char energy_ctx[16];
    bool has_energy;
    struct sstate *next;
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    bool running, stop, wake;
    int workers;
    struct gc_store *st;
    const struct gc_config *cfg;
    struct sstate *s;
    int64_t round;
    /* PUE: facility and IT energy at the last complete round */
    bool pue_prev;
    double prev_f, prev_i;
    int prev_nf, prev_ni;
} S = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static struct sstate *state_find(const char *id, bool create)
{
    for (struct sstate *x = S.s; x; x = x->next)
        if (strcmp(x->id, id) == 0)
            return x;
    if (!create)
        return NULL;
    struct sstate *x = gc_calloc(1, sizeof(*x));
    snprintf(x->id, sizeof(x->id), "%s", id);
    x->up = -1;
    x->next = S.s;
    S.s = x;
    return x;
}

static void state_free(struct sstate *x)
{
    json_decref(x->readings);
    for (int i = 0; i < GC_PROFILE_READINGS_MAX; i++)
        free(x->hist[i]);
    free(x);
}

/* Ends the series of a sensor's last readings (deleted, disabled, or down). */
static void forget_readings(const char *id, json_t *readings)
{
    size_t i;
    json_t *r;
    json_array_foreach(readings, i, r) {
        int t = gc_reading_type_parse(json_string_value(json_object_get(r, "reading_type")));
        const char *room = json_string_value(json_object_get(r, "room"));
        const char *cls = json_string_value(json_object_get(r, "room_class"));
        const char *ctx = json_string_value(json_object_get(r, "physical_context"));
        const char *name = json_string_value(json_object_get(r, "name"));
        if (t < 0 || !room || !cls || !ctx || !name)
            continue;
        struct gc_label l[4] = {
            {"context", ctx}, {"room", room}, {"room_class", cls}, {"sensor_id", id}};
        struct gc_series s = {gc_reading_type_metric((enum gc_reading_type)t), l, 4};
        gc_latest_forget(&s);
        s.metric = "govcloud_env_temperature_rate_celsius_per_hour";
        gc_latest_forget(&s);
        for (int k = 0; k < 5; k++) {
            struct gc_label b[4] = {{"limit", gc_limit_names[k]},
                                    {"reading", name},
                                    {"room", room},
                                    {"sensor_id", id}};
            struct gc_series bs = {"govcloud_env_limit_breached", b, 4};
            gc_latest_forget(&bs);
        }
    }
}

static void forget_sensor(const char *id)
{
    pthread_mutex_lock(&S.lock);
    struct sstate **pp = &S.s, *x = NULL;
    while (*pp && strcmp((*pp)->id, id) != 0)
        pp = &(*pp)->next;
    if (*pp && !(*pp)->in_flight) {
        x = *pp;
        *pp = x->next;
    } else if (*pp) {
        /* a worker holds it: it is dropped at the next pass */
        (*pp)->polled = false;
    }
    pthread_mutex_unlock(&S.lock);
    struct gc_label l[1] = {{"sensor_id", id}};
    struct gc_series s = {"govcloud_env_sensor_up", l, 1};
    gc_latest_forget(&s);
    if (x) {
        forget_readings(id, x->readings);
        state_free(x);
    }
}

static void schedule_now(void)
{
    pthread_mutex_lock(&S.lock);
    S.wake = true;
    pthread_cond_broadcast(&S.cond);
    pthread_mutex_unlock(&S.lock);
}

/* ---- the resource ---- */

#define SEN_COLS                                                                       \
    "s.id, s.name, s.driver, s.address, s.port, s.credentials, s.profile, s.room,"     \
    " s.room_class, s.context, s.thresholds, s.timeout_ms, s.enabled, s.created_at,"   \
    " s.updated_at, s.version"

/* The credentials as the API shows them: what identifies, never what authenticates. */
static json_t *redact(const char *driver, const char *text)
{
    json_t *c = json_loads(text, 0, NULL);
    json_t *o = json_object();
    if (!strcmp(driver, "snmp")) {
        for (const char *k = "version\0user\0auth_protocol\0priv_protocol\0"; *k;
             k += strlen(k) + 1)
            if (json_object_get(c, k))
                json_object_set(o, k, json_object_get(c, k));
        json_object_set_new(o, "secret_set",
                            json_boolean(json_object_get(c, "community") ||
                                         json_object_get(c, "auth_password")));
    } else if (json_object_get(c, "unit_id")) {
        json_object_set(o, "unit_id", json_object_get(c, "unit_id"));
    }
    json_decref(c);
    return o;
}

static json_t *status_of(const char *id)
{
    pthread_mutex_lock(&S.lock);
    struct sstate *x = state_find(id, false);
    json_t *o;
    if (!x || x->up < 0)
        o = json_pack("{s:n,s:n,s:n,s:n}", "up", "reason", "error", "checked_at");
    else
        o = json_pack("{s:b,s:o,s:o,s:o}", "up", x->up == 1, "reason",
                      x->up ? json_null() : json_string(x->reason), "error",
                      x->up ? json_null() : json_string(x->error), "checked_at",
                      gc_json_time(x->checked_at));
    pthread_mutex_unlock(&S.lock);
    return o;
}

static json_t *sen_json(struct gc_rows *r, char *path)
{
    if (path)
        path[0] = '\0';
    const char *driver = gc_rows_text(r, 2);
    json_t *th = json_loads(gc_rows_text(r, 10), 0, NULL);
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:I,s:o,s:s,s:s,s:s,s:o,s:o,s:I,s:b}", "id",
                          gc_rows_text(r, 0), "name", gc_rows_text(r, 1), "driver", driver,
                          "address", gc_rows_text(r, 3), "port", (json_int_t)gc_rows_int(r, 4),
                          "credentials", redact(driver, gc_rows_text(r, 5)), "profile",
                          gc_rows_text(r, 6), "room", gc_rows_text(r, 7), "room_class",
                          gc_rows_text(r, 8), "context",
                          gc_rows_text(r, 9)[0] ? json_string(gc_rows_text(r, 9)) : json_null(),
                          "thresholds", th ? th : json_object(), "timeout_ms",
                          (json_int_t)gc_rows_int(r, 11), "enabled", gc_rows_int(r, 12) != 0);
    json_object_set_new(o, "status", status_of(gc_rows_text(r, 0)));
    json_object_set_new(o, "created_at", gc_json_time(gc_rows_int(r, 13)));
    json_object_set_new(o, "updated_at", gc_json_time(gc_rows_int(r, 14)));
    json_object_set_new(o, "version", json_integer(gc_rows_int(r, 15)));
    return o;
}

static json_t *sen_row(struct gc_rows *r, const struct gc_principal *who)
{
    (void)who;
    return sen_json(r, NULL);
}

static int load(struct gc_tx *tx, const char *id, json_t **out, struct gc_error *err)
{
    return gc_load_by_id(tx, "SELECT " SEN_COLS " FROM sensors s WHERE s.id = ?", "sensor", id,
                         sen_json, out, NULL, err);
}

static const struct gc_jfield create_spec[] = {
    {"name", GC_JT_STRING, true, false, 1, 64, GC_CS_CODE},
    {"driver", GC_JT_STRING, true, false, 1, 16, GC_CS_CODE},
    {"address", GC_JT_STRING, true, false, 1, 253, GC_CS_TEXT},
    {"port", GC_JT_INT, false, false, 1, 65535, GC_CS_ANY},
    {"credentials", GC_JT_OBJECT, false, false, 0, 0, GC_CS_ANY},
    {"profile", GC_JT_STRING, true, false, 1, 64, GC_CS_CODE},
    {"room", GC_JT_STRING, false, false, 0, 64, GC_CS_TEXT},
    {"room_class", GC_JT_STRING, false, false, 1, 1, GC_CS_CODE},
    {"context", GC_JT_STRING, false, true, 1, 16, GC_CS_CODE},
    {"thresholds", GC_JT_OBJECT, false, false, 0, 0, GC_CS_ANY},
    {"timeout_ms", GC_JT_INT, false, false, 100, 30000, GC_CS_ANY},
    {"enabled", GC_JT_BOOL, false, false, 0, 0, GC_CS_ANY},
};
/* PATCH: everything but the driver */
static const struct gc_jfield update_spec[] = {
    {"name", GC_JT_STRING, false, false, 1, 64, GC_CS_CODE},
    {"address", GC_JT_STRING, false, false, 1, 253, GC_CS_TEXT},
    {"port", GC_JT_INT, false, false, 1, 65535, GC_CS_ANY},
    {"credentials", GC_JT_OBJECT, false, false, 0, 0, GC_CS_ANY},
    {"profile", GC_JT_STRING, false, false, 1, 64, GC_CS_CODE},
    {"room", GC_JT_STRING, false, false, 0, 64, GC_CS_TEXT},
    {"room_class", GC_JT_STRING, false, false, 1, 1, GC_CS_CODE},
    {"context", GC_JT_STRING, false, true, 1, 16, GC_CS_CODE},
    {"thresholds", GC_JT_OBJECT, false, false, 0, 0, GC_CS_ANY},
    {"timeout_ms", GC_JT_INT, false, false, 100, 30000, GC_CS_ANY},
    {"enabled", GC_JT_BOOL, false, false, 0, 0, GC_CS_ANY},
};

/* The effective physical context of reading r of a sensor with context sctx. */
static const char *eff_ctx(const struct gc_profile_reading *r, const char *sctx)
{
    return r->context[0] ? r->context : sctx && sctx[0] ? sctx : "room";
}

/* The dew point derived from humidity reading h: its name, or NULL when the profile has no
 * temperature in the same context. name needs 80 bytes; *t gets the temperature's index. */
static const char *dew_name(const struct gc_profile *p, int h, const char *sctx, char *name,
                            int *t)
{
    int nh = 0;
    for (int i = 0; i < p->nreadings; i++)
        nh += p->readings[i].type == GC_RT_HUMIDITY;
    *t = -1;
    for (int i = 0; i < p->nreadings && *t < 0; i++)
        if (p->readings[i].type == GC_RT_TEMPERATURE &&
            !strcmp(eff_ctx(&p->readings[i], sctx), eff_ctx(&p->readings[h], sctx)))
            *t = i;
    if (*t < 0)
        return NULL;
    if (nh == 1)
        snprintf(name, 80, "dew_point");
    else
        snprintf(name, 80, "%s_dew_point", p->readings[h].name);
    return name;
}

static const char *const limit_keys[5] = {"lower_critical", "lower_caution", "upper_caution",
                                          "upper_critical", "rate"};

static double *limit_slot(struct gc_limits *l, int k)
{
    double *s[5] = {&l->lower_critical, &l->lower_caution, &l->upper_caution,
                    &l->upper_critical, &l->rate};
    return s[k];
}

/* The limits of one reading: the defaults for its type and context in the room class,
 * then the sensor's overrides (a number replaces, null removes). */
static void limits_for(enum gc_reading_type t, const char *ctx, const char *cls,
                       const json_t *over, struct gc_limits *l)
{
    gc_limits_default(t, ctx, cls, l);
    if (!json_is_object(over))
        return;
    for (int k = 0; k < 5; k++) {
        json_t *v = json_object_get(over, limit_keys[k]);
        if (json_is_number(v))
            *limit_slot(l, k) = json_number_value(v);
        else if (json_is_null(v))
            *limit_slot(l, k) = NAN;
    }
}

/* Checks the whole sensor as it will be stored (c: after defaults and the update). */
static int sensor_check(json_t *c, struct gc_error *err)
{
    const char *driver = gc_json_str(c, "driver");
    const struct gc_sensor_driver *drv = gc_sensor_driver_for(driver);
    if (!drv)
        return gc_error_set(err, GC_EINVAL, "driver", "driver must be snmp or modbus, not '%.16s'",
                            driver);
    const char *addr = gc_json_str(c, "address");
    if (strspn(addr, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_:") !=
        strlen(addr))
        return gc_error_set(err, GC_EINVAL, "address",
                            "address must be a DNS name, an IPv4 or an IPv6 address");
    const char *pname = gc_json_str(c, "profile");
    const struct gc_profile *p = gc_profile_find(pname);
    if (!p)
        return gc_error_set(err, GC_EINVAL, "profile",
                            "no sensor profile named '%.64s' (GET /v1/sensors/profiles lists "
                            "them)",
                            pname);
    if (strcmp(p->driver, driver) != 0)
        return gc_error_set(err, GC_EINVAL, "profile",
                            "profile '%s' is for %s devices, not %s", pname, p->driver, driver);
    int rc = drv->check(json_object_get(c, "credentials"), err);
    if (rc)
        return rc;
    const char *cls = gc_json_str(c, "room_class");
    if (strcmp(cls, "A") && strcmp(cls, "B") && strcmp(cls, "C"))
        return gc_error_set(err, GC_EINVAL, "room_class",
                            "room_class must be A, B or C (GB 50174-2017 classes)");
    const char *sctx = gc_json_str(c, "context");
    if (sctx && !gc_physical_context_valid(sctx))
        return gc_error_set(err, GC_EINVAL, "context",
                            "context must be intake, exhaust, room, rack, ups or facility");
    json_t *th = json_object_get(c, "thresholds");
    const char *rname;
    json_t *lim;
    json_object_foreach(th, rname, lim) {
        char f[96];
        snprintf(f, sizeof(f), "thresholds.%.60s", rname);
        int idx = -1;
        enum gc_reading_type type = GC_RT_TEMPERATURE;
        const char *ctx = "room";
        for (int i = 0; i < p->nreadings && idx < 0; i++) {
            char dn[80];
            int t;
            if (!strcmp(p->readings[i].name, rname)) {
                idx = i;
                type = p->readings[i].type;
                ctx = eff_ctx(&p->readings[i], sctx);
            } else if (p->readings[i].type == GC_RT_HUMIDITY &&
                       dew_name(p, i, sctx, dn, &t) && !strcmp(dn, rname)) {
                idx = i;
                type = GC_RT_DEW_POINT;
                ctx = eff_ctx(&p->readings[i], sctx);
            }
        }
        if (idx < 0)
            return gc_error_set(err, GC_EINVAL, f, "profile '%s' has no reading named '%.60s'",
                                pname, rname);
        if (!json_is_object(lim))
            return gc_error_set(err, GC_EINVAL, f,
                                "%s must be an object of lower_critical, lower_caution, "
                                "upper_caution, upper_critical and rate (numbers or null)",
                                f);
        const char *k;
        json_t *v;
        json_object_foreach(lim, k, v) {
            int kk = -1;
            for (int j = 0; j < 5; j++)
                if (!strcmp(limit_keys[j], k))
                    kk = j;
            char f2[96];
            snprintf(f2, sizeof(f2), "%.50s.%.30s", f, k);
            if (kk < 0)
                return gc_error_set(err, GC_EINVAL, f2,
                                    "unknown limit '%.30s' (lower_critical, lower_caution, "
                                    "upper_caution, upper_critical, rate)",
                                    k);
            if (!json_is_number(v) && !json_is_null(v))
                return gc_error_set(err, GC_EINVAL, f2, "%s must be a number or null", f2);
            if (kk == 4 && json_is_number(v) && json_number_value(v) <= 0)
                return gc_error_set(err, GC_EINVAL, f2, "%s must be above 0 (°C per hour)",
                                    f2);
        }
        struct gc_limits l;
        limits_for(type, ctx, cls, lim, &l);
        double seq[4] = {l.lower_critical, l.lower_caution, l.upper_caution, l.upper_critical};
        for (int a = 0; a < 4; a++)
            for (int b = a + 1; b < 4; b++)
                if (!isnan(seq[a]) && !isnan(seq[b]) && seq[a] > seq[b]) {
                    char f2[96];
                    snprintf(f2, sizeof(f2), "%.50s.%s", f, limit_keys[a]);
                    return gc_error_set(err, GC_EINVAL, f2,
                                        "%s (%g) is above %s (%g) for this reading", f2,
                                        seq[a], limit_keys[b], seq[b]);
                }
    }
    return 0;
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

int gc_sensor_create(const struct gc_ctx *ctx, json_t *in, json_t **out, struct gc_error *err)
{
    int rc = gc_require(ctx->who, GC_P_HOST_WRITE, err);
    if (!rc)
        rc = gc_json_check(in, create_spec, sizeof(create_spec) / sizeof(create_spec[0]), err);
    if (rc)
        return rc;
    json_t *c = json_deep_copy(in);
    const char *driver = gc_json_str(c, "driver");
    bool snmp = driver && !strcmp(driver, "snmp");
    if (!json_object_get(c, "port"))
        json_object_set_new(c, "port", json_integer(snmp ? 161 : 502));
    if (!json_object_get(c, "credentials")) {
        if (snmp) {
            json_decref(c);
            return gc_error_set(err, GC_EINVAL, "credentials",
                                "an snmp sensor needs credentials: {\"version\":\"2c\","
                                "\"community\"} or {\"version\":\"3\",\"user\",...}");
        }
        json_object_set_new(c, "credentials", json_pack("{s:i}", "unit_id", 1));
    }
    if (!json_object_get(c, "room"))
        json_object_set_new(c, "room", json_string(""));
    if (!json_object_get(c, "room_class"))
        json_object_set_new(c, "room_class", json_string("B"));
    if (!json_object_get(c, "thresholds"))
        json_object_set_new(c, "thresholds", json_object());
    rc = sensor_check(c, err);
    struct gc_tx *tx = NULL;
    if (!rc)
        rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc) {
        json_decref(c);
        return rc;
    }
    char id[GC_ID_LEN + 1];
    gc_id_new(id);
    int64_t now = gc_now_ms();
    char *cred = dumps(json_object_get(c, "credentials"));
    char *th = dumps(json_object_get(c, "thresholds"));
    const char *sctx = gc_json_str(c, "context");
    rc = gc_tx_exec(tx,
                    "INSERT INTO sensors (id, name, driver, address, port, credentials, profile,"
                    " room, room_class, context, thresholds, timeout_ms, enabled, created_at,"
                    " updated_at, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
                    GC_ARGS(GC_VTXT(id), GC_VTXT(gc_json_str(c, "name")), GC_VTXT(driver),
                            GC_VTXT(gc_json_str(c, "address")), GC_VINT_(jint(c, "port", 0)),
                            GC_VTXT(cred), GC_VTXT(gc_json_str(c, "profile")),
                            GC_VTXT(gc_json_str(c, "room")),
                            GC_VTXT(gc_json_str(c, "room_class")), GC_VTXT(sctx ? sctx : ""),
                            GC_VTXT(th), GC_VINT_(jint(c, "timeout_ms", 2000)),
                            GC_VINT_(!json_is_false(json_object_get(c, "enabled"))),
                            GC_VINT_(now), GC_VINT_(now)),
                    NULL, err);
    free(cred);
    free(th);
    if (rc == GC_ECONFLICT)
        rc = gc_error_set(err, GC_ECONFLICT, "name", "a sensor named '%s' exists",
                          gc_json_str(c, "name"));
    json_decref(c);
    json_t *obj = NULL;
    if (!rc)
        rc = load(tx, id, &obj, err);
    struct gc_audit_event ev = {.action = "sensor.create",
                                .resource_type = "sensor",
                                .resource_id = id,
                                .outcome = GC_OUTCOME_SUCCESS,
                                .detail = obj};
    rc = gc_audit_commit(tx, ctx, &ev, rc, err);
    if (rc) {
        json_decref(obj);
        return rc;
    }
    schedule_now();
    *out = obj;
    return 0;
}

int gc_sensor_get(const struct gc_ctx *ctx, const char *id, json_t **out, struct gc_error *err)
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

int gc_sensor_list(const struct gc_ctx *ctx, json_t *filters, int limit, const char *cursor,
                   json_t **items, char **next_cursor, struct gc_error *err)
{
    static const struct gc_list_filter f[] = {{"driver", "s.driver"},
                                              {"room", "s.room"},
                                              {"room_class", "s.room_class"},
                                              {"profile", "s.profile"},
                                              {NULL, NULL}};
    return gc_list_filtered(ctx, GC_P_HOST_READ,
                            "SELECT " SEN_COLS " FROM sensors s WHERE s.id > ?", "s.id", f,
                            filters, limit, cursor, sen_row, items, next_cursor, err);
}

int gc_sensor_update(const struct gc_ctx *ctx, const char *id, int64_t if_match, json_t *in,
                     json_t **out, struct gc_error *err)
{
    int rc = gc_require(ctx->who, GC_P_HOST_WRITE, err);
    if (!rc)
        rc = gc_json_check(in, update_spec, sizeof(update_spec) / sizeof(update_spec[0]), err);
    struct gc_tx *tx = NULL;
    if (!rc)
        rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    json_t *before = NULL, *c = NULL, *after = NULL;
    struct gc_rows *r = NULL;
    rc = load(tx, id, &before, err);
    if (!rc)
        rc = gc_check_if_match(before, if_match, "sensor", id, err);
    /* the stored credentials, which the representation leaves out */
    if (!rc)
        rc = gc_tx_query(tx, "SELECT credentials FROM sensors WHERE id = ?",
                         GC_ARGS(GC_VTXT(id)), &r, err);
    if (!rc && (rc = gc_rows_next(r, err)) > 0) {
        rc = 0;
        c = json_deep_copy(before);
        json_object_set_new(c, "credentials", json_loads(gc_rows_text(r, 0), 0, NULL));
        json_object_update(c, in);
        if (json_is_null(json_object_get(c, "context")))
            json_object_del(c, "context");
        rc = sensor_check(c, err);
    } else if (!rc) {
        rc = gc_error_set(err, GC_ENOTFOUND, "", "sensor '%s' not found", id);
    }
    gc_rows_free(r);
    if (!rc) {
        char *cred = dumps(json_object_get(c, "credentials"));
        char *th = dumps(json_object_get(c, "thresholds"));
        const char *sctx = gc_json_str(c, "context");
        rc = gc_tx_exec(tx,
                        "UPDATE sensors SET name = ?, address = ?, port = ?, credentials = ?,"
                        " profile = ?, room = ?, room_class = ?, context = ?, thresholds = ?,"
                        " timeout_ms = ?, enabled = ?, updated_at = ?, version = version + 1"
                        " WHERE id = ?",
                        GC_ARGS(GC_VTXT(gc_json_str(c, "name")),
                                GC_VTXT(gc_json_str(c, "address")), GC_VINT_(jint(c, "port", 0)),
                                GC_VTXT(cred), GC_VTXT(gc_json_str(c, "profile")),
                                GC_VTXT(gc_json_str(c, "room")),
                                GC_VTXT(gc_json_str(c, "room_class")), GC_VTXT(sctx ? sctx : ""),
                                GC_VTXT(th), GC_VINT_(jint(c, "timeout_ms", 2000)),
                                GC_VINT_(!json_is_false(json_object_get(c, "enabled"))),
                                GC_VINT_(gc_now_ms()), GC_VTXT(id)),
                        NULL, err);
        free(cred);
        free(th);
        if (rc == GC_ECONFLICT)
            rc = gc_error_set(err, GC_ECONFLICT, "name", "a sensor named '%s' exists",
                              gc_json_str(c, "name"));
    }
    json_decref(c);
    if (!rc)
        rc = load(tx, id, &after, err);
    json_t *detail = json_pack("{s:O,s:O}", "before", before ? before : json_null(), "after",
                               after ? after : json_null());
    struct gc_audit_event ev = {.action = "sensor.update",
                                .resource_type = "sensor",
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
    /* what it read before no longer applies (another profile, room, limits) */
    forget_sensor(id);
    schedule_now();
    *out = after;
    return 0;
}

int gc_sensor_delete(const struct gc_ctx *ctx, const char *id, int64_t if_match,
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
        rc = gc_check_if_match(before, if_match, "sensor", id, err);
    if (!rc)
        rc = gc_tx_exec(tx, "DELETE FROM sensors WHERE id = ?", GC_ARGS(GC_VTXT(id)), NULL, err);
    struct gc_audit_event ev = {.action = "sensor.delete",
                                .resource_type = "sensor",
                                .resource_id = id,
                                .outcome = GC_OUTCOME_SUCCESS,
                                .detail = before};
    rc = gc_audit_commit(tx, ctx, &ev, rc, err);
    json_decref(before);
    if (!rc)
        forget_sensor(id);
    return rc;
}

int gc_sensor_readings(const struct gc_ctx *ctx, const char *id, json_t **out,
                       struct gc_error *err)
{
    json_t *obj = NULL;
    int rc = gc_sensor_get(ctx, id, &obj, err);
    if (rc)
        return rc;
    json_t *st = json_object_get(obj, "status");
    json_t *o = json_pack("{s:s,s:s,s:O,s:O,s:O,s:O}", "sensor_id", id, "name",
                          json_string_value(json_object_get(obj, "name")), "up",
                          json_object_get(st, "up"), "reason", json_object_get(st, "reason"),
                          "error", json_object_get(st, "error"), "checked_at",
                          json_object_get(st, "checked_at"));
    pthread_mutex_lock(&S.lock);
    struct sstate *x = state_find(id, false);
    json_t *items = x && x->readings ? json_deep_copy(x->readings) : json_array();
    pthread_mutex_unlock(&S.lock);
    json_object_set_new(o, "items", items);
    json_decref(obj);
    *out = o;
    return 0;
}

int gc_sensor_profile_list(const struct gc_ctx *ctx, json_t **items, struct gc_error *err)
{
    int rc = gc_require(ctx->who, GC_P_HOST_READ, err);
    if (rc)
        return rc;
    json_t *a = json_array();
    for (size_t i = 0; i < gc_profile_count(); i++)
        json_array_append_new(a, gc_profile_json(gc_profile_at(i)));
    *items = a;
    return 0;
}

int gc_sensor_profile_get(const struct gc_ctx *ctx, const char *name, json_t **out,
                          struct gc_error *err)
{
    int rc = gc_require(ctx->who, GC_P_HOST_READ, err);
    if (rc)
        return rc;
    const struct gc_profile *p = gc_profile_find(name);
    if (!p)
        return gc_error_set(err, GC_ENOTFOUND, "", "sensor profile '%.64s' not found", name);
    *out = gc_profile_json(p);
    return 0;
}

int gc_sensor_profile_check(const struct gc_ctx *ctx, json_t *in, json_t **out,
                            struct gc_error *err)
{
    int rc = gc_require(ctx->who, GC_P_HOST_READ, err);
    if (rc)
        return rc;
    struct gc_profile *p = gc_calloc(1, sizeof(*p));
    rc = gc_profile_parse(in, p, err);
    if (!rc) {
        snprintf(p->source, sizeof(p->source), "request");
        *out = gc_profile_json(p);
    }
    free(p);
    return rc;
}

/* ---- polling ---- */

struct job {
    char id[GC_ID_LEN + 1];
    char driver[16];
    char address[256];
    int port;
    json_t *credentials;
    char profile[64];
    char room[72];
    char room_class[4];
    char context[16];
    json_t *thresholds;
    int timeout_ms;
    int64_t round;
    int64_t rate_window_ms;
};

/* Adds v at t to h and gives the rate per hour over the window (NAN until the history
 * spans half of it). */
static double rate_of(struct hist *h, int64_t t, double v, int64_t window)
{
    int drop = 0;
    while (drop < h->n && h->t[drop] < t - window)
        drop++;
    if (h->n - drop == HIST_MAX)
        drop++;
    if (drop) {
        memmove(h->t, h->t + drop, (size_t)(h->n - drop) * sizeof(h->t[0]));
        memmove(h->v, h->v + drop, (size_t)(h->n - drop) * sizeof(h->v[0]));
        h->n -= drop;
    }
    h->t[h->n] = t;
    h->v[h->n] = v;
    h->n++;
    int64_t span = t - h->t[0];
    if (h->n < 2 || span < window / 2 || span <= 0)
        return NAN;
    return (v - h->v[0]) / ((double)span / 3600000.0);
}

/* The four limits of the supervision environment dataset (Redfish Thresholds); the rate
 * limit is the reading's rate_limit_per_hour. */
static json_t *limits_json(const struct gc_limits *l)
{
    json_t *o = json_object();
    for (int k = 0; k < 4; k++) {
        double v = *limit_slot((struct gc_limits *)l, k);
        if (!isnan(v))
            json_object_set_new(o, limit_keys[k], json_real(v));
    }
    return o;
}

/* One reading: classified, added to the batch and to the readings array. */
static enum gc_env_status add_reading(struct gc_batch *b, json_t *items, const struct job *j,
                                      const char *name, enum gc_reading_type type,
                                      const char *ctx, double value, double rate, int64_t t)
{
    struct gc_limits l;
    limits_for(type, ctx, j->room_class, json_object_get(j->thresholds, name), &l);
    bool br[5];
    enum gc_env_status st = gc_limits_classify(&l, value, rate, br);
    gc_batch_add(b, gc_reading_type_metric(type), t, value * gc_reading_type_factor(type), 4,
                 "sensor_id", j->id, "room", j->room, "room_class", j->room_class, "context",
                 ctx);
    if (!isnan(rate))
        gc_batch_add(b, "govcloud_env_temperature_rate_celsius_per_hour", t, rate, 4,
                     "sensor_id", j->id, "room", j->room, "room_class", j->room_class,
                     "context", ctx);
    for (int k = 0; k < 5; k++) {
        if (isnan(*limit_slot(&l, k)) || (k == 4 && isnan(rate)))
            continue;
        gc_batch_add(b, "govcloud_env_limit_breached", t, br[k] ? 1 : 0, 4, "sensor_id", j->id,
                     "room", j->room, "reading", name, "limit", gc_limit_names[k]);
    }
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:o}", "sensor_id", j->id, "name",
                          name, "reading_type", gc_reading_type_name(type), "reading_units",
                          gc_reading_type_units(type), "physical_context", ctx, "room", j->room,
                          "room_class", j->room_class, "thresholds", limits_json(&l), "time",
                          gc_json_time(t));
    json_object_set_new(o, "reading", json_real(value));
    json_object_set_new(o, "status", json_string(gc_env_status_name(st)));
    if (!isnan(rate))
        json_object_set_new(o, "rate_per_hour", json_real(rate));
    if (!isnan(l.rate))
        json_object_set_new(o, "rate_limit_per_hour", json_real(l.rate));
    json_array_append_new(items, o);
    return st;
}

static void *poll_thread(void *arg)
{
    struct job *j = arg;
    struct gc_error e = {0};
    char reason[32] = "";
    const struct gc_profile *p = gc_profile_find(j->profile);
    const struct gc_sensor_driver *drv = gc_sensor_driver_for(j->driver);
    double raw[GC_PROFILE_READINGS_MAX];
    int rc;
    if (!p || !drv) {
        snprintf(reason, sizeof(reason), "error");
        rc = gc_error_set(&e, GC_EINVAL, "", "profile '%s' or driver '%s' is not available",
                          j->profile, j->driver);
    } else {
        struct gc_sensor_target tg = {.address = j->address,
                                      .port = j->port,
                                      .timeout_ms = j->timeout_ms,
                                      .credentials = j->credentials};
        struct gc_sensor_conn *conn = NULL;
        rc = drv->open(&tg, &conn, &e);
        if (rc)
            snprintf(reason, sizeof(reason), "error");
        else
            rc = drv->read(conn, p, raw, reason, &e);
        drv->close(conn);
    }
    int64_t t = gc_now_ms();
    struct gc_batch b = {0};
    json_t *items = json_array();
    double values[GC_PROFILE_READINGS_MAX];
    double energy = 0;
    bool has_energy = false;
    char energy_ctx[16] = "";
    if (!rc) {
        for (int i = 0; i < p->nreadings; i++) {
            const struct gc_profile_reading *r = &p->readings[i];
            double v = raw[i] * r->scale + r->offset;
            if (r->ntrue) {
                v = 0;
                for (int k = 0; k < r->ntrue; k++)
                    if (raw[i] == r->true_values[k])
                        v = 1;
            }
            if (!isfinite(v)) {
                snprintf(reason, sizeof(reason), "bad_value");
                rc = gc_error_set(&e, GC_EINVAL, "", "%s: not a finite number", r->name);
                break;
            }
            if (r->type == GC_RT_HUMIDITY && (v < 0 || v > 100)) {
                snprintf(reason, sizeof(reason), "bad_value");
                rc = gc_error_set(&e, GC_EINVAL, "", "%s: %g %% is not a relative humidity",
                                  r->name, v);
                break;
            }
            values[i] = v;
        }
    }
    if (!rc) {
        pthread_mutex_lock(&S.lock);
        struct sstate *x = state_find(j->id, false);
        double rates[GC_PROFILE_READINGS_MAX];
        for (int i = 0; i < p->nreadings; i++) {
            rates[i] = NAN;
            if (p->readings[i].type != GC_RT_TEMPERATURE || !x)
                continue;
            if (strcmp(x->hist_profile, p->name) != 0) {
                for (int k = 0; k < GC_PROFILE_READINGS_MAX; k++) {
                    free(x->hist[k]);
                    x->hist[k] = NULL;
                }
                snprintf(x->hist_profile, sizeof(x->hist_profile), "%s", p->name);
            }
            if (!x->hist[i])
                x->hist[i] = gc_calloc(1, sizeof(struct hist));
            rates[i] = rate_of(x->hist[i], t, values[i], j->rate_window_ms);
        }
        pthread_mutex_unlock(&S.lock);
        for (int i = 0; i < p->nreadings; i++) {
            const struct gc_profile_reading *r = &p->readings[i];
            const char *ctx = eff_ctx(r, j->context);
            add_reading(&b, items, j, r->name, r->type, ctx, values[i], rates[i], t);
            if (r->type == GC_RT_ENERGY) {
                has_energy = true;
                energy += values[i];
                snprintf(energy_ctx, sizeof(energy_ctx), "%s", ctx);
            }
            char dn[80];
            int ti;
            if (r->type == GC_RT_HUMIDITY && dew_name(p, i, j->context, dn, &ti)) {
                double dp = gc_dew_point(values[ti], values[i]);
                if (!isnan(dp))
                    add_reading(&b, items, j, dn, GC_RT_DEW_POINT, ctx, dp, NAN, t);
            }
        }
    } else {
        gc_warn("environment", "sensor %s (%s %s:%d) is down: %s: %s", j->id, j->driver,
                j->address, j->port, reason, e.msg);
    }
    gc_batch_add(&b, "govcloud_env_sensor_up", t, rc ? 0 : 1, 1, "sensor_id", j->id);
    json_t *old = NULL;
    pthread_mutex_lock(&S.lock);
    struct sstate *x = state_find(j->id, false);
    bool stale = !x || !x->polled;
    if (x) {
        x->in_flight = false;
        x->checked_at = t;
        x->up = rc ? 0 : 1;
        snprintf(x->reason, sizeof(x->reason), "%s", rc ? reason : "");
        snprintf(x->error, sizeof(x->error), "%s", rc ? e.msg : "");
        if (!rc) {
            old = x->readings;
            x->readings = json_incref(items);
            x->has_energy = has_energy;
            if (has_energy) {
                x->energy = energy;
                x->energy_round = j->round;
                snprintf(x->energy_ctx, sizeof(x->energy_ctx), "%s", energy_ctx);
            }
        } else if (x->readings) {
            /* the last values stay visible, marked unknown */
            size_t i;
            json_t *r;
            json_array_foreach(x->readings, i, r)
                json_object_set_new(r, "status", json_string("unknown"));
            old = json_deep_copy(x->readings);
        }
    }
    pthread_mutex_unlock(&S.lock);
    if (!stale)
        gc_batch_emit(&b);
    else
        gc_batch_release(&b);
    /* the supervision interface's environment dataset gets every good reading */
    if (!rc && !stale && json_array_size(items) > 0) {
        int n = 0;
        struct gc_error xe = {0};
        if (gc_env_export(S.st, items, &n, &xe) != 0)
            gc_warn("environment", "sensor %s: readings not exported: %s", j->id, xe.msg);
    }
    /* down: the readings' series end (sensor_up says why); up: series of readings that are
     * gone (another profile) end */
    if (rc && old)
        forget_readings(j->id, old);
    json_decref(old);
    json_decref(items);
    json_decref(j->credentials);
    json_decref(j->thresholds);
    free(j);
    pthread_mutex_lock(&S.lock);
    S.workers--;
    pthread_cond_broadcast(&S.cond);
    pthread_mutex_unlock(&S.lock);
    return NULL;
}

/* PUE of the last complete round: the facility meters' energy over the IT meters' energy
 * between two rounds in which every meter answered. */
static void pue_round(int64_t round, int64_t t)
{
    double f = 0, i = 0;
    int nf = 0, ni = 0;
    bool complete = true;
    pthread_mutex_lock(&S.lock);
    for (struct sstate *x = S.s; x; x = x->next) {
        if (!x->polled || !x->has_energy)
            continue;
        bool fac = !strcmp(x->energy_ctx, "facility");
        bool it = !strcmp(x->energy_ctx, "rack") || !strcmp(x->energy_ctx, "ups");
        if (!fac && !it)
            continue;
        if (x->energy_round != round)
            complete = false;
        if (fac) {
            f += x->energy;
            nf++;
        } else {
            i += x->energy;
            ni++;
        }
    }
    bool emit = false;
    double pue = NAN;
    if (complete && nf > 0 && ni > 0) {
        if (S.pue_prev && S.prev_nf == nf && S.prev_ni == ni && i - S.prev_i > 0 &&
            f - S.prev_f >= 0) {
            pue = (f - S.prev_f) / (i - S.prev_i);
            emit = true;
        }
        S.pue_prev = true;
        S.prev_f = f;
        S.prev_i = i;
        S.prev_nf = nf;
        S.prev_ni = ni;
    } else if (!complete) {
        S.pue_prev = false;
    }
    pthread_mutex_unlock(&S.lock);
    if (!emit)
        return;
    struct gc_limits l;
    gc_limits_default(GC_RT_PUE, "facility", "A", &l);
    bool br[5];
    gc_limits_classify(&l, pue, NAN, br);
    struct gc_batch b = {0};
    gc_batch_add(&b, "govcloud_env_pue", t, pue, 2, "sensor_id", "site", "context", "facility");
    gc_batch_add(&b, "govcloud_env_limit_breached", t, br[2] ? 1 : 0, 3, "sensor_id", "site",
                 "reading", "pue", "limit", "upper_caution");
    gc_batch_emit(&b);
}

/* One pass: starts a poll of every due sensor; a round (every interval) polls them all. */
static void poll_pass(bool round)
{
    struct gc_tx *tx = NULL;
    struct gc_error err = {0};
    int64_t now = gc_now_ms();
    if (round) {
        pthread_mutex_lock(&S.lock);
        int64_t last = S.round++;
        pthread_mutex_unlock(&S.lock);
        pue_round(last, now);
        if (gc_env_export_prune(S.st, now - S.cfg->env_export_retention_days * 86400000LL, &err) != 0)
            gc_warn("environment", "cannot drop old exported readings: %s", err.msg);
        err = (struct gc_error){0};
    }
    if (gc_tx_begin(S.st, GC_TX_READ, &tx, &err) != 0) {
        gc_warn("environment", "cannot read the store: %s", err.msg);
        return;
    }
    struct gc_rows *r = NULL;
    int rc = gc_tx_query(tx,
                         "SELECT id, driver, address, port, credentials, profile, room,"
                         " room_class, context, thresholds, timeout_ms FROM sensors"
                         " WHERE enabled = 1 ORDER BY id",
                         GC_NOARGS, &r, &err);
    json_t *seen = json_object();
    while (!rc && (rc = gc_rows_next(r, &err)) > 0) {
        rc = 0;
        const char *id = gc_rows_text(r, 0);
        json_object_set_new(seen, id, json_true());
        pthread_mutex_lock(&S.lock);
        struct sstate *x = state_find(id, true);
        bool due = !x->in_flight && (round || !x->polled);
        bool skipped = x->in_flight && round;
        if (due) {
            x->in_flight = true;
            x->polled = true;
        }
        int64_t cur = S.round;
        pthread_mutex_unlock(&S.lock);
        if (skipped)
            gc_warn("environment", "sensor %s: the previous poll has not ended; skipped", id);
        if (!due)
            continue;
        struct job *j = gc_calloc(1, sizeof(*j));
        snprintf(j->id, sizeof(j->id), "%s", id);
        snprintf(j->driver, sizeof(j->driver), "%s", gc_rows_text(r, 1));
        snprintf(j->address, sizeof(j->address), "%s", gc_rows_text(r, 2));
        j->port = (int)gc_rows_int(r, 3);
        j->credentials = json_loads(gc_rows_text(r, 4), 0, NULL);
        snprintf(j->profile, sizeof(j->profile), "%s", gc_rows_text(r, 5));
        snprintf(j->room, sizeof(j->room), "%s", gc_rows_text(r, 6));
        snprintf(j->room_class, sizeof(j->room_class), "%s", gc_rows_text(r, 7));
        snprintf(j->context, sizeof(j->context), "%s", gc_rows_text(r, 8));
        j->thresholds = json_loads(gc_rows_text(r, 9), 0, NULL);
        j->timeout_ms = (int)gc_rows_int(r, 10);
        j->round = cur;
        j->rate_window_ms = S.cfg->env_rate_window * 1000;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 1u << 20);
        pthread_t th;
        pthread_mutex_lock(&S.lock);
        S.workers++;
        pthread_mutex_unlock(&S.lock);
        if (pthread_create(&th, &attr, poll_thread, j) != 0) {
            gc_warn("environment", "sensor %s: cannot start a poll thread", id);
            pthread_mutex_lock(&S.lock);
            S.workers--;
            x->in_flight = false;
            pthread_mutex_unlock(&S.lock);
            json_decref(j->credentials);
            json_decref(j->thresholds);
            free(j);
        }
        pthread_attr_destroy(&attr);
    }
    gc_rows_free(r);
    gc_tx_rollback(tx);
    if (rc < 0) {
        gc_warn("environment", "cannot list sensors: %s", err.msg);
        json_decref(seen);
        return;
    }
    /* deleted or disabled sensors: their series end */
    json_t *gone = json_array();
    pthread_mutex_lock(&S.lock);
    for (struct sstate *x = S.s; x; x = x->next)
        if (!json_object_get(seen, x->id) && !x->in_flight)
            json_array_append_new(gone, json_string(x->id));
    pthread_mutex_unlock(&S.lock);
    size_t i;
    json_t *v;
    json_array_foreach(gone, i, v) forget_sensor(json_string_value(v));
    json_decref(gone);
    json_decref(seen);
}

static void *poller(void *arg)
{
    (void)arg;
    int64_t next_round = 0;
    pthread_mutex_lock(&S.lock);
    while (!S.stop) {
        S.wake = false;
        pthread_mutex_unlock(&S.lock);
        int64_t now = gc_now_ms();
        bool round = now >= next_round;
        if (round)
            next_round = now + S.cfg->env_interval * 1000;
        poll_pass(round);
        pthread_mutex_lock(&S.lock);
        if (S.stop || S.wake)
            continue;
        int64_t next = next_round;
        struct timespec ts = {.tv_sec = (time_t)(next / 1000),
                              .tv_nsec = (long)(next % 1000) * 1000000};
        pthread_cond_timedwait(&S.cond, &S.lock, &ts);
    }
    pthread_mutex_unlock(&S.lock);
    return NULL;
}

int gc_env_start(struct gc_store *st, const struct gc_config *cfg, struct gc_error *err)
{
    gc_sensor_drivers_init();
    int rc = gc_profiles_load(cfg->env_profile_dir, err);
    if (rc)
        return rc;
    if (!cfg->monitor_enabled)
        return 0;
    S.st = st;
    S.cfg = cfg;
    S.stop = false;
    S.round = 1;
    if (pthread_create(&S.thread, NULL, poller, NULL) != 0)
        return gc_error_set(err, GC_EINTERNAL, "", "cannot start the sensor poller");
    S.running = true;
    return 0;
}

void gc_env_stop(void)
{
    if (!S.running)
        return;
    pthread_mutex_lock(&S.lock);
    S.stop = true;
    pthread_cond_broadcast(&S.cond);
    pthread_mutex_unlock(&S.lock);
    pthread_join(S.thread, NULL);
    /* polls end by their own timeout (at most 30 s); wait for them */
    pthread_mutex_lock(&S.lock);
    int64_t deadline = gc_now_ms() + 31000;
    while (S.workers > 0 && gc_now_ms() < deadline) {
        struct timespec ts = {.tv_sec = (time_t)(deadline / 1000),
                              .tv_nsec = (long)(deadline % 1000) * 1000000};
        pthread_cond_timedwait(&S.cond, &S.lock, &ts);
    }
    if (S.workers == 0) {
        while (S.s) {
            struct sstate *x = S.s;
            S.s = x->next;
            state_free(x);
        }
    }
    pthread_mutex_unlock(&S.lock);
    S.running = false;
}
