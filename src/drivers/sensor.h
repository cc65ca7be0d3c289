/* The sensor driver table: how govcloud reads a data-centre environment device (机房环控):
 * temperature and humidity probes, UPSes, power meters, leak and door contacts. SNMP
 * (sensor_snmp.c, net-snmp) and Modbus-TCP (sensor_modbus.c, libmodbus) fill the same
 * table. What to read from a device, and what it means, is a profile: a data file
 * (the JSON files of profiles/sensors, parsed and checked by sensor_profile.c), never code. */
#ifndef GC_SENSOR_H
#define GC_SENSOR_H

#include "util/error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- readings ---- */

/* X(enum, reading_type, canonical units (UCUM), metric, factor from the units to the
 * metric). Profiles must give readings in the canonical units (scale and offset convert). */
#define GC_READING_TYPES(X)                                                                  \
    X(GC_RT_TEMPERATURE, "temperature", "Cel", "govcloud_env_temperature_celsius", 1.0)      \
    X(GC_RT_HUMIDITY, "humidity", "%", "govcloud_env_humidity_ratio", 0.01)                  \
    X(GC_RT_DEW_POINT, "dew_point", "Cel", "govcloud_env_dew_point_celsius", 1.0)            \
    X(GC_RT_POWER, "power", "W", "govcloud_env_power_watts", 1.0)                            \
    X(GC_RT_ENERGY, "energy", "kW.h", "govcloud_env_energy_kwh_total", 1.0)                  \
    X(GC_RT_UPS_STATE, "ups_state", "1", "govcloud_env_ups_on_battery", 1.0)                 \
    X(GC_RT_BATTERY, "battery", "%", "govcloud_env_battery_ratio", 0.01)                     \
    X(GC_RT_LEAK, "leak", "1", "govcloud_env_leak", 1.0)                                     \
    X(GC_RT_DOOR, "door", "1", "govcloud_env_door_open", 1.0)                                \
    X(GC_RT_PUE, "pue", "1", "govcloud_env_pue", 1.0)

enum gc_reading_type {
#define GC_X_RT(e, n, u, m, f) e,
    GC_READING_TYPES(GC_X_RT)
#undef GC_X_RT
        GC_RT_COUNT
};
const char *gc_reading_type_name(enum gc_reading_type t);
const char *gc_reading_type_units(enum gc_reading_type t);
const char *gc_reading_type_metric(enum gc_reading_type t);
double gc_reading_type_factor(enum gc_reading_type t);
int gc_reading_type_parse(const char *s); /* -1 when unknown */

/* Physical contexts (Redfish PhysicalContext, snake_case). */
bool gc_physical_context_valid(const char *s);

/* ---- profiles (sensor_profile.c) ---- */

enum gc_mb_table { GC_MB_HOLDING, GC_MB_INPUT };
enum gc_mb_format { GC_MB_U16, GC_MB_S16, GC_MB_U32, GC_MB_S32 };
enum gc_mb_order { GC_MB_BIG, GC_MB_LITTLE }; /* word order of 32-bit values */

/* What one reading of a device is and where it comes from. */
struct gc_profile_reading {
    char name[64];             /* unique in the profile: "temperature", "intake_temperature" */
    enum gc_reading_type type;
    char context[16];          /* physical context, or "" to take the sensor's */
    double scale, offset;      /* value = raw * scale + offset */
    /* when set, the reading is 1 if the raw value is one of these, else 0 (states such
     * as UPS-MIB upsOutputSource battery(5)) */
    double true_values[8];
    int ntrue;
    /* SNMP */
    char oid[128];             /* numeric, e.g. 1.3.6.1.2.1.33.1.4.1.0 */
    /* Modbus */
    enum gc_mb_table table;
    int address;               /* register address, 0-based (protocol address) */
    enum gc_mb_format format;
    enum gc_mb_order order;
};

#define GC_PROFILE_READINGS_MAX 32

struct gc_profile {
    char name[64];
    char driver[16];           /* snmp | modbus */
    char description[1024];
    char source[256];          /* "builtin" or the file it was loaded from */
    struct gc_profile_reading readings[GC_PROFILE_READINGS_MAX];
    int nreadings;
};

/* Parses and checks one profile document; err names the field (readings[2].oid). */
int gc_profile_parse(const json_t *doc, struct gc_profile *out, struct gc_error *err);
/* The same from JSON text (what a file holds). */
int gc_profile_parse_text(const char *text, size_t len, struct gc_profile *out,
                          struct gc_error *err);
/* The profile as JSON (the format of the files). */
json_t *gc_profile_json(const struct gc_profile *p);

/* The registry: the profiles embedded at build time, then those of dir ("none": only the
 * embedded ones). A bad file is an error naming the file and the field; a file may not
 * replace an embedded profile of the same name. Call once before the daemon serves. */
int gc_profiles_load(const char *dir, struct gc_error *err);
/* A registered profile, or NULL; the registry lives for the process. */
const struct gc_profile *gc_profile_find(const char *name);
size_t gc_profile_count(void);
const struct gc_profile *gc_profile_at(size_t i);

/* Register decoding: regs[0..1] as read (16-bit words), per format and word order. */
double gc_mb_decode(const uint16_t *regs, enum gc_mb_format f, enum gc_mb_order o);
/* Words a format takes (1 or 2). */
int gc_mb_words(enum gc_mb_format f);

/* ---- drivers ---- */

/* Where a device is and how to talk to it. credentials: the stored object (snmp:
 * {"version":"2c","community"} or {"version":"3","user","auth_protocol","auth_password",
 * "priv_protocol","priv_password"}; modbus: {"unit_id"}). */
struct gc_sensor_target {
    const char *address;
    int port;
    int timeout_ms;            /* for the whole read */
    const json_t *credentials;
};

/* Why a read failed, for the readings API and the log. */
#define GC_SENSOR_REASONS(X) \
    X("timeout") X("refused") X("auth") X("no_such_object") X("bad_value") X("error")

struct gc_sensor_conn; /* one open device session, owned by the poller */

struct gc_sensor_driver {
    const char *name;
    /* Checks credentials (API input): GC_EINVAL naming the field, e.g. credentials.version. */
    int (*check)(const json_t *credentials, struct gc_error *err);
    int (*open)(const struct gc_sensor_target *t, struct gc_sensor_conn **out,
                struct gc_error *err);
    /* Reads the raw value of every reading of p into raw[]; on failure reason (32 bytes)
     * gets one of GC_SENSOR_REASONS and err says more. */
    int (*read)(struct gc_sensor_conn *c, const struct gc_profile *p, double *raw,
                char *reason, struct gc_error *err);
    void (*close)(struct gc_sensor_conn *c); /* accepts NULL */
};

extern const struct gc_sensor_driver gc_sensor_snmp;
extern const struct gc_sensor_driver gc_sensor_modbus;

const struct gc_sensor_driver *gc_sensor_driver_for(const char *name);
/* Once, before any thread reads (net-snmp's library state). */
void gc_sensor_drivers_init(void);

/* ---- describing an SNMP device (sensor_snmp.c): asset discovery, core/snmp_device.c ---- */

/* Reads, on a session opened with gc_sensor_snmp.open, the SNMPv2-MIB system group (one GET:
 * sysDescr, sysObjectID, sysName, sysLocation .0) and walks ENTITY-MIB's entPhysicalTable
 * (GETNEXT of the columns Descr, Class, Name, HardwareRev, FirmwareRev, SoftwareRev,
 * SerialNum, MfgName, ModelName, AssetID, row by row), at most max_rows rows, all before
 * deadline_ms (gc_snmp_clock_ms). *out: {"sys_descr","sys_object_id","sys_name",
 * "sys_location" (absent when the device has none), "entities": [{"index","class",
 * "descr","name","hardware_rev","firmware_rev","software_rev","serial_num","mfg_name",
 * "model_name","asset_id"} (members with a value only)], "entities_truncated"}. A device
 * without ENTITY-MIB gives no entities. On failure reason (32 bytes) gets one of
 * GC_SENSOR_REASONS and err (GC_EBUSY) says more. */
int gc_snmp_describe(struct gc_sensor_conn *c, int max_rows, int64_t deadline_ms, json_t **out,
                     char *reason, struct gc_error *err);
/* The monotonic clock deadline_ms is on, in ms. */
int64_t gc_snmp_clock_ms(void);

/* ---- derived values and limits (sensor_profile.c) ---- */

/* Dew point (°C) from temperature (°C) and relative humidity (%), Magnus formula with
 * b = 17.62, c = 243.12 °C (WMO, over water, -45..60 °C); NAN when rh <= 0. */
double gc_dew_point(double t_celsius, double rh_percent);

struct gc_limits {
    /* NAN: no such limit */
    double lower_critical, lower_caution, upper_caution, upper_critical;
    double rate;               /* largest |change| per hour, temperature only */
};

enum gc_env_status { GC_ENV_OK, GC_ENV_CAUTION, GC_ENV_CRITICAL };
const char *gc_env_status_name(enum gc_env_status s);

/* The limits govcloud applies by default to a reading of type t in physical context ctx
 * in a room of class room_class (A|B|C), from GB 50174-2017 Appendix A where it has a
 * figure (docs/environment.md). */
void gc_limits_default(enum gc_reading_type t, const char *ctx, const char *room_class,
                       struct gc_limits *out);
/* Where value (and rate per hour, NAN when unknown) stands against l. breached gets, per
 * limit (lower_critical, lower_caution, upper_caution, upper_critical, rate), whether it is
 * beyond it. */
enum gc_env_status gc_limits_classify(const struct gc_limits *l, double value, double rate,
                                      bool breached[5]);
extern const char *const gc_limit_names[5];

#endif
