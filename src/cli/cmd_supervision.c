/* The asset inventory, data-centre sensors and supervision commands. Tables over the generic
 * commands of cmd_resource.c, plus two of their own: sending a file (an asset import, a
 * sensor profile to check) and pulling a supervision dataset as JSON lines. */
#include "cli/cmds.h"

#include "cli/http.h"
#include "util/error.h"
#include "util/mem.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/banned.h" /* last: it redefines library names */

#define MAX_PATH_BYTES 4096
#define MAX_QUERY_BYTES 16384
/* an import bigger than this is refused by the server anyway; a typo (a disk image) must
 * not be read into memory first */
#define MAX_UPLOAD_BYTES (64u * 1024u * 1024u)
/* a pull with --all stops here: a server whose cursors never end must not loop us */
#define MAX_PULL_PAGES 1000000

static const struct gc_cli_opt if_match_opts[] = {GC_CLI_OPT_IF_MATCH, {0}};
static const struct gc_cli_opt paging_opts[] = {GC_CLI_LIST_PAGING, {0}};

/* ---- sending a file ---- */

/* A command that POSTs a file given as its argument ("-": standard input). */
struct upload {
    const char *path;                    /* "/v1/assets/import" */
    bool csv;                            /* a .csv file (or --format csv) goes as text/csv */
    const struct gc_cli_resource *shows; /* the answer's subtables */
};

/* Reads all of f into b (capped). Returns GC_CLI_OK or an exit code after printing. */
static int read_all(FILE *f, const char *name, struct gc_buf *b)
{
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if (gc_buf_add(b, chunk, n) != 0)
            return gc_cli_fail(GC_CLI_EUSAGE, "%s is larger than %u MiB", name,
                               MAX_UPLOAD_BYTES >> 20);
    if (ferror(f))
        return gc_cli_fail(GC_CLI_EFAIL, "cannot read %s: %s", name, strerror(errno));
    return GC_CLI_OK;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t ls = strlen(s), lx = strlen(suffix);
    return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

static int upload_run(struct gc_cli *cli, const struct gc_cli_cmd *cmd,
                      const struct gc_cli_args *args)
{
    const struct upload *up = cmd->data;
    const char *file = args->pos[0];
    const char *format = gc_cli_has_opt(cmd, "format") ? gc_cli_arg(cmd, args, "format") : NULL;
    struct gc_buf data;
    struct gc_cli_resp resp = {0};
    FILE *f = NULL;
    int rc;

    gc_buf_init(&data, MAX_UPLOAD_BYTES);
    if (strcmp(file, "-") == 0) {
        rc = read_all(stdin, "standard input", &data);
    } else if (!(f = fopen(file, "rb"))) {
        rc = gc_cli_fail(GC_CLI_EUSAGE, "cannot open %s: %s", file, strerror(errno));
    } else {
        rc = read_all(f, file, &data);
        fclose(f);
    }
    if (rc != GC_CLI_OK)
        goto cleanup;
    if (!format)
        format = up->csv && ends_with(file, ".csv") ? "csv" : "json";
    struct gc_cli_req req = {.method = "POST", .path = up->path,
                             .raw = data.len ? gc_buf_str(&data) : "", .raw_len = data.len,
                             .content_type = strcmp(format, "csv") == 0 ? "text/csv"
                                                                        : "application/json"};
    rc = gc_cli_http(cli, &req, &resp);
    if (rc == GC_CLI_OK && !json_is_object(resp.json))
        rc = gc_cli_fail(GC_CLI_EFAIL, "the server's answer to POST %s is not a JSON object",
                         up->path);
    if (rc == GC_CLI_OK)
        gc_cli_show_res(cli, up->shows, resp.json);

cleanup:
    gc_cli_resp_release(&resp);
    gc_buf_release(&data);
    return rc;
}

/* ---- assets ---- */

static const struct gc_cli_col asset_cols[] = {
    {"ID", "id", 0},          {"KIND", "kind", 0},           {"NAME", "name", 24},
    {"SOURCE", "source", 0},  {"CPU_ARCH", "cpu_arch", 0},   {"LAYER", "layer", 0},
    {"DOMESTIC", "domestic.flag", 0}, {"SERIAL_NUMBER", "serial_number", 20},
    {"DEPARTMENT_ID", "department_id", 0}, {"VERSION", "version", 0}, {0},
};
static const struct gc_cli_resource asset_res = {
    .noun = "asset", .path = "/v1/assets", .cols = asset_cols};

static const struct gc_cli_col history_cols[] = {
    {"SEQ", "seq", 0}, {"TIME", "time", 0}, {"ACTOR", "actor", 16}, {"OP", "op", 0},
    {"CHANGES", "changes", 100}, {0},
};
static const struct gc_cli_resource history_res = {
    .noun = "change", .cols = history_cols};

static const struct gc_cli_col import_row_cols[] = {
    {"ROW", "row", 0}, {"ID", "id", 0}, {"RESULT", "result", 0}, {0},
};
static const struct gc_cli_subtable import_subs[] = {{"rows", import_row_cols}, {0}};
static const struct gc_cli_resource import_res = {.noun = "import", .subtables = import_subs};

static const char *const asset_kind_choices[] = {
    "host", "vm", "volume", "network", "server", "network_device", "storage_device",
    "security_device", "rack", "software", NULL};
static const char *const bool_choices[] = {"true", "false", NULL};
static const char *const cpu_arch_choices[] = {"x86_64", "aarch64", "loongarch64", "mips64",
                                               "sw_64", "riscv64", "other", NULL};
static const char *const layer_choices[] = {"cpu", "server", "os", "database", "middleware",
                                            "storage", "network", "security", "other", NULL};
static const char *const source_choices[] = {"discovered", "imported", "snmp", NULL};
static const char *const crypto_choices[] = {"none", "planned", "passed", "failed", NULL};
static const char *const format_choices[] = {"csv", "json", NULL};

static const struct gc_cli_opt asset_list_opts[] = {
    {.name = "kind", .type = GC_OPT_CHOICE, .metavar = "KIND", .key = "kind",
     .choices = asset_kind_choices, .help = "only assets of this kind"},
    GC_CLI_REF_OPT("department", "department_id", gc_cli_dept_ref,
                   "only the assets of this department (name or id)", 0),
    {.name = "domestic", .type = GC_OPT_CHOICE, .metavar = "true|false", .key = "domestic",
     .choices = bool_choices, .help = "only domestic (true) or foreign (false) assets"},
    {.name = "cpu-arch", .type = GC_OPT_CHOICE, .metavar = "ARCH", .key = "cpu_arch",
     .choices = cpu_arch_choices, .help = "only assets of this CPU architecture"},
    {.name = "layer", .type = GC_OPT_CHOICE, .metavar = "LAYER", .key = "layer",
     .choices = layer_choices, .help = "only assets of this layer"},
    {.name = "source", .type = GC_OPT_CHOICE, .metavar = "SOURCE", .key = "source",
     .choices = source_choices, .help = "only discovered, imported or SNMP assets"},
    GC_CLI_LIST_PAGING, {0},
};

#define ASSET_TEXT(optname, jsonkey, helptext)                                              \
    {.name = optname, .type = GC_OPT_STRING, .metavar = "TEXT", .key = jsonkey,             \
     .help = helptext}
#define ASSET_JSON(optname, jsonkey, helptext)                                              \
    {.name = optname, .type = GC_OPT_JSON, .metavar = "JSON", .key = jsonkey,               \
     .help = helptext}

static const struct gc_cli_opt asset_update_opts[] = {
    ASSET_TEXT("name", "name", "name"),
    ASSET_TEXT("manufacturer", "manufacturer", "manufacturer, e.g. 华为"),
    ASSET_TEXT("model", "model", "model"),
    ASSET_TEXT("serial-number", "serial_number", "serial number"),
    ASSET_TEXT("asset-tag", "asset_tag", "asset tag (资产编号)"),
    ASSET_TEXT("business-system", "business_system", "the business system it serves"),
    {.name = "cpu-arch", .type = GC_OPT_CHOICE, .metavar = "ARCH", .key = "cpu_arch",
     .choices = cpu_arch_choices, .help = "CPU architecture"},
    {.name = "layer", .type = GC_OPT_CHOICE, .metavar = "LAYER", .key = "layer",
     .choices = layer_choices, .help = "layer of the substitution rate"},
    {.name = "mlps-grade", .type = GC_OPT_INT, .metavar = "N", .key = "mlps_grade", .min = 1,
     .max = 5, .help = "MLPS (等保) grade"},
    {.name = "dr-level", .type = GC_OPT_INT, .metavar = "N", .key = "dr_level", .min = 1,
     .max = 6, .help = "disaster-recovery level"},
    {.name = "crypto-evaluation", .type = GC_OPT_CHOICE, .metavar = "STATE",
     .key = "crypto_evaluation", .choices = crypto_choices,
     .help = "commercial cryptography evaluation (密评)"},
    GC_CLI_REF_OPT("department", "department_id", gc_cli_dept_ref,
                   "the department it belongs to (name or id); 'none' removes it",
                   GC_OPT_NULLABLE),
    ASSET_JSON("domestic", "domestic",
               "e.g. '{\"flag\": true, \"basis\": \"信创目录 2024\"}'; null removes it"),
    ASSET_JSON("location", "location", "e.g. '{\"room\": \"A101\", \"rack\": \"R3\", \"u\": 12}'"),
    ASSET_JSON("capacity", "capacity", "e.g. '{\"cores\": 64}'"),
    ASSET_JSON("attributes", "attributes", "free key-value pairs, merged ('null' values remove)"),
    GC_CLI_OPT_IF_MATCH, {0},
};

static const struct gc_cli_opt asset_import_opts[] = {
    {.name = "format", .type = GC_OPT_CHOICE, .metavar = "FORMAT", .choices = format_choices,
     .help = "csv or json (default: csv for a .csv file, else json)"},
    {0},
};

static const struct gc_cli_sublist asset_history_sub = {&asset_res, "/history", &history_res};
static const struct upload asset_import_up = {"/v1/assets/import", true, &import_res};

static const struct gc_cli_cmd asset_list = {
    .name = "list", .summary = "List live assets", .opts = asset_list_opts,
    .run = gc_cli_res_list, .data = &asset_res};
static const struct gc_cli_cmd asset_get = {
    .name = "get", .summary = "Show one asset", .posargs = "ID", .npos = 1,
    .run = gc_cli_res_get, .data = &asset_res};
static const struct gc_cli_cmd asset_update = {
    .name = "update", .summary = "Enrich or change an asset's operator fields",
    .description = "On a discovered asset the fields listed in its discovered_fields cannot be "
                   "changed. JSON options are merged as a JSON merge patch.",
    .posargs = "ID", .npos = 1, .opts = asset_update_opts, .run = gc_cli_res_update,
    .data = &asset_res};
static const struct gc_cli_cmd asset_delete = {
    .name = "delete", .summary = "Delete an imported asset (discovered ones go with their "
                                 "resource)",
    .posargs = "ID", .npos = 1, .opts = if_match_opts, .run = gc_cli_res_delete,
    .data = &asset_res};
static const struct gc_cli_cmd asset_history = {
    .name = "history", .summary = "Show every change of an asset, oldest first",
    .posargs = "ID", .npos = 1, .opts = paging_opts, .run = gc_cli_res_sublist,
    .data = &asset_history_sub};
static const struct gc_cli_cmd asset_import = {
    .name = "import", .summary = "Import assets from a CSV or JSON file ('-': standard input)",
    .description = "All or nothing: when a row is wrong nothing is written and every bad row "
                   "is listed (row and field). A row updates the asset with the same id, "
                   "serial_number or asset_tag, else the imported asset of the same kind and "
                   "name. docs/supervision.md describes the columns.",
    .posargs = "FILE", .npos = 1, .opts = asset_import_opts, .run = upload_run,
    .data = &asset_import_up};

/* ---- SNMP device targets ---- */

static const struct gc_cli_col snmp_cols[] = {
    {"ID", "id", 0},         {"ADDRESS", "address", 24},    {"PORT", "port", 0},
    {"KIND", "kind", 0},     {"ENABLED", "enabled", 0},     {"ASSET_ID", "asset_id", 0},
    {"LAST_SEEN_AT", "last_seen_at", 0}, {"LAST_ERROR", "last_error", 32}, {0},
};
static const struct gc_cli_resource snmp_res = {
    .noun = "SNMP device", .path = "/v1/assets/snmp-devices", .cols = snmp_cols};

static const char *const snmp_kind_choices[] = {"network_device", "storage_device",
                                                "security_device", "server", NULL};
static const char *const secfn_choices[] = {"waf", "db_audit", "vuln_scanner", "firewall", "ids",
                                            "other", NULL};

static const struct gc_cli_opt snmp_list_opts[] = {
    {.name = "kind", .type = GC_OPT_CHOICE, .metavar = "KIND", .key = "kind",
     .choices = snmp_kind_choices, .help = "only devices of this kind"},
    {.name = "address", .type = GC_OPT_STRING, .metavar = "ADDRESS", .key = "address",
     .help = "only the device at this address"},
    GC_CLI_LIST_PAGING, {0},
};

#define SNMP_CREDENTIALS(req)                                                               \
    {.name = "credentials", .type = GC_OPT_JSON, .metavar = "JSON", .key = "credentials",   \
     .flags = req,                                                                          \
     .help = "SNMPv2c '{\"version\":\"2c\",\"community\":\"...\"}' or SNMPv3 "              \
             "'{\"version\":\"3\",\"user\":...,\"auth_protocol\":...,\"auth_password\":...," \
             "\"priv_protocol\":\"AES\",\"priv_password\":...}'; never shown again"}
#define SNMP_FIELDS                                                                         \
    {.name = "port", .type = GC_OPT_INT, .metavar = "PORT", .key = "port", .min = 1,         \
     .max = 65535, .help = "UDP port (default 161)"},                                      \
    {.name = "security-function", .type = GC_OPT_CHOICE, .metavar = "FUNCTION",             \
     .key = "security_function", .choices = secfn_choices,                                  \
     .help = "security devices: what it does"},                                             \
    ASSET_JSON("location", "location", "e.g. '{\"room\": \"A101\", \"rack\": \"R3\"}'"),     \
    GC_CLI_REF_OPT("department", "department_id", gc_cli_dept_ref,                          \
                   "makes the asset visible to that department (name or id)", 0),           \
    {.name = "timeout-ms", .type = GC_OPT_INT, .metavar = "MS", .key = "timeout_ms",         \
     .min = 100, .max = 30000, .help = "bound of one discovery (default 2000)"},            \
    {.name = "enabled", .type = GC_OPT_BOOL, .metavar = "true|false", .key = "enabled",     \
     .help = "false: left out of the periodic discovery"}

static const struct gc_cli_opt snmp_create_opts[] = {
    {.name = "address", .type = GC_OPT_STRING, .metavar = "ADDRESS", .key = "address",
     .flags = GC_OPT_REQUIRED, .help = "DNS name, IPv4 or IPv6 address"},
    {.name = "kind", .type = GC_OPT_CHOICE, .metavar = "KIND", .key = "kind",
     .flags = GC_OPT_REQUIRED, .choices = snmp_kind_choices, .help = "what the device is"},
    SNMP_CREDENTIALS(GC_OPT_REQUIRED), SNMP_FIELDS, {0},
};

static const struct gc_cli_opt snmp_update_opts[] = {
    {.name = "address", .type = GC_OPT_STRING, .metavar = "ADDRESS", .key = "address",
     .help = "DNS name, IPv4 or IPv6 address"},
    {.name = "kind", .type = GC_OPT_CHOICE, .metavar = "KIND", .key = "kind",
     .choices = snmp_kind_choices, .help = "what the device is"},
    SNMP_CREDENTIALS(0), SNMP_FIELDS, GC_CLI_OPT_IF_MATCH, {0},
};

static const struct gc_cli_action snmp_discover_act = {&snmp_res, "POST", "/discover", NULL,
                                                       false, NULL};

static const struct gc_cli_cmd snmp_list = {
    .name = "list", .summary = "List SNMP device targets", .opts = snmp_list_opts,
    .run = gc_cli_res_list, .data = &snmp_res};
static const struct gc_cli_cmd snmp_get = {
    .name = "get", .summary = "Show one target with its last discovery", .posargs = "ID",
    .npos = 1, .run = gc_cli_res_get, .data = &snmp_res};
static const struct gc_cli_cmd snmp_create = {
    .name = "create", .summary = "Add a device whose asset is discovered over SNMP",
    .opts = snmp_create_opts, .run = gc_cli_res_create, .data = &snmp_res};
static const struct gc_cli_cmd snmp_update = {
    .name = "update", .summary = "Change an SNMP device target", .posargs = "ID", .npos = 1,
    .opts = snmp_update_opts, .run = gc_cli_res_update, .data = &snmp_res};
static const struct gc_cli_cmd snmp_delete = {
    .name = "delete", .summary = "Delete a target and its asset", .posargs = "ID", .npos = 1,
    .opts = if_match_opts, .run = gc_cli_res_delete, .data = &snmp_res};
static const struct gc_cli_cmd snmp_discover = {
    .name = "discover", .summary = "Read the device now (exit 6 with the reason when it cannot)",
    .posargs = "ID", .npos = 1, .run = gc_cli_res_action, .data = &snmp_discover_act};

static const struct gc_cli_cmd *const snmp_subs[] = {&snmp_list,   &snmp_get,    &snmp_create,
                                                     &snmp_update, &snmp_delete, &snmp_discover,
                                                     NULL};

static const struct gc_cli_cmd asset_snmp = {
    .name = "snmp-device", .summary = "Manage devices read over SNMP (network, storage, "
                                      "security devices, servers)",
    .description = "Platform roles only; platform_admin and operator manage them. Credentials "
                   "are written only: credentials.secret_set says whether one is kept.",
    .subs = snmp_subs};

static const struct gc_cli_cmd *const asset_subs[] = {
    &asset_list, &asset_get, &asset_update, &asset_delete, &asset_history, &asset_import,
    &asset_snmp, NULL};

const struct gc_cli_cmd gc_cli_cmd_asset = {
    .name = "asset", .summary = "Manage the asset inventory (资产台账)",
    .description = "ID is an asset id such as vm:<uuid> or asset:<uuid>. Everybody reads "
                   "(department roles their department's assets); platform_admin and operator "
                   "change them.",
    .subs = asset_subs};

/* ---- sensors ---- */

static const struct gc_cli_col sensor_cols[] = {
    {"ID", "id", 0},         {"NAME", "name", 24},        {"DRIVER", "driver", 0},
    {"ADDRESS", "address", 24}, {"PORT", "port", 0},      {"PROFILE", "profile", 24},
    {"ROOM", "room", 16},    {"ENABLED", "enabled", 0},   {"UP", "status.up", 0},
    {"ERROR", "status.error", 32}, {0},
};
static const struct gc_cli_resource sensor_res = {
    .noun = "sensor", .path = "/v1/sensors", .cols = sensor_cols};

static const struct gc_cli_col reading_cols[] = {
    {"NAME", "name", 24}, {"TYPE", "reading_type", 0}, {"VALUE", "reading", 0},
    {"UNITS", "reading_units", 0}, {"CONTEXT", "physical_context", 0},
    {"STATUS", "status", 0}, {"TIME", "time", 0}, {0},
};
static const struct gc_cli_subtable reading_subs[] = {{"items", reading_cols}, {0}};
static const struct gc_cli_resource readings_res = {.noun = "reading",
                                                    .subtables = reading_subs};

static const struct gc_cli_col profile_cols[] = {
    {"NAME", "name", 0}, {"DRIVER", "driver", 0}, {"SOURCE", "source", 32},
    {"DESCRIPTION", "description", 60}, {0},
};
static const struct gc_cli_col profile_reading_cols[] = {
    {"NAME", "name", 0}, {"TYPE", "reading_type", 0}, {"UNITS", "units", 0},
    {"SCALE", "scale", 0}, {"OID", "oid", 40}, {"REGISTER", "register", 0}, {0},
};
static const struct gc_cli_subtable profile_subs[] = {{"readings", profile_reading_cols}, {0}};
static const struct gc_cli_resource profile_res = {
    .noun = "profile", .path = "/v1/sensors/profiles", .cols = profile_cols,
    .subtables = profile_subs};

static const char *const driver_choices[] = {"snmp", "modbus", NULL};
static const char *const room_class_choices[] = {"A", "B", "C", NULL};
static const char *const context_choices[] = {"intake", "exhaust", "room", "rack", "ups",
                                              "facility", NULL};

static const struct gc_cli_opt sensor_list_opts[] = {
    {.name = "driver", .type = GC_OPT_CHOICE, .metavar = "DRIVER", .key = "driver",
     .choices = driver_choices, .help = "only sensors read with this driver"},
    {.name = "room", .type = GC_OPT_STRING, .metavar = "ROOM", .key = "room",
     .help = "only the sensors of this room"},
    {.name = "room-class", .type = GC_OPT_CHOICE, .metavar = "CLASS", .key = "room_class",
     .choices = room_class_choices, .help = "only sensors in rooms of this class"},
    {.name = "profile", .type = GC_OPT_STRING, .metavar = "PROFILE", .key = "profile",
     .help = "only sensors with this device profile"},
    GC_CLI_LIST_PAGING, {0},
};

#define SENSOR_FIELDS                                                                       \
    {.name = "port", .type = GC_OPT_INT, .metavar = "PORT", .key = "port", .min = 1,         \
     .max = 65535, .help = "default 161 (snmp) or 502 (modbus)"},                          \
    {.name = "credentials", .type = GC_OPT_JSON, .metavar = "JSON", .key = "credentials",   \
     .help = "snmp: '{\"version\":\"2c\",\"community\":\"...\"}' or SNMPv3; modbus: "         \
             "'{\"unit_id\":1}'"},                                                          \
    {.name = "room", .type = GC_OPT_STRING, .metavar = "ROOM", .key = "room",               \
     .help = "the machine room, e.g. A101"},                                                \
    {.name = "room-class", .type = GC_OPT_CHOICE, .metavar = "CLASS", .key = "room_class",  \
     .choices = room_class_choices, .help = "GB 50174-2017 class of the room (default B)"}, \
    {.name = "context", .type = GC_OPT_CHOICE, .metavar = "CONTEXT", .key = "context",      \
     .choices = context_choices,                                                            \
     .help = "where readings whose profile gives none are taken (default room)"},           \
    {.name = "thresholds", .type = GC_OPT_JSON, .metavar = "JSON", .key = "thresholds",     \
     .help = "per reading name, limit overrides, e.g. '{\"temperature\":{\"upper_critical\":32}}'"}, \
    {.name = "timeout-ms", .type = GC_OPT_INT, .metavar = "MS", .key = "timeout_ms",         \
     .min = 100, .max = 30000, .help = "bound of one poll (default 2000)"},                 \
    {.name = "enabled", .type = GC_OPT_BOOL, .metavar = "true|false", .key = "enabled",     \
     .help = "false: not polled"}

static const struct gc_cli_opt sensor_create_opts[] = {
    {.name = "driver", .type = GC_OPT_CHOICE, .metavar = "DRIVER", .key = "driver",
     .flags = GC_OPT_REQUIRED, .choices = driver_choices, .help = "how the device is read"},
    {.name = "address", .type = GC_OPT_STRING, .metavar = "ADDRESS", .key = "address",
     .flags = GC_OPT_REQUIRED, .help = "DNS name, IPv4 or IPv6 address of the device"},
    {.name = "profile", .type = GC_OPT_STRING, .metavar = "PROFILE", .key = "profile",
     .flags = GC_OPT_REQUIRED, .help = "a device profile ('sensor profile list')"},
    SENSOR_FIELDS, {0},
};

static const struct gc_cli_opt sensor_update_opts[] = {
    {.name = "name", .type = GC_OPT_STRING, .metavar = "NAME", .key = "name",
     .help = "new name"},
    {.name = "address", .type = GC_OPT_STRING, .metavar = "ADDRESS", .key = "address",
     .help = "DNS name, IPv4 or IPv6 address of the device"},
    {.name = "profile", .type = GC_OPT_STRING, .metavar = "PROFILE", .key = "profile",
     .help = "a device profile of the same driver"},
    SENSOR_FIELDS, GC_CLI_OPT_IF_MATCH, {0},
};

static const struct gc_cli_action sensor_readings_act = {&sensor_res, "GET", "/readings", NULL,
                                                         false, &readings_res};
static const struct upload profile_check_up = {"/v1/sensors/profiles/check", false,
                                               &profile_res};

static const struct gc_cli_cmd sensor_list = {
    .name = "list", .summary = "List sensors", .opts = sensor_list_opts, .run = gc_cli_res_list,
    .data = &sensor_res};
static const struct gc_cli_cmd sensor_get = {
    .name = "get", .summary = "Show one sensor with its last poll", .posargs = "ID", .npos = 1,
    .run = gc_cli_res_get, .data = &sensor_res};
static const struct gc_cli_cmd sensor_create = {
    .name = "create", .summary = "Register a sensor (polled at once, then every interval)",
    .posargs = "NAME", .npos = 1, .opts = sensor_create_opts, .run = gc_cli_res_create,
    .data = &sensor_res};
static const struct gc_cli_cmd sensor_update = {
    .name = "update", .summary = "Change a sensor", .posargs = "ID", .npos = 1,
    .opts = sensor_update_opts, .run = gc_cli_res_update, .data = &sensor_res};
static const struct gc_cli_cmd sensor_delete = {
    .name = "delete", .summary = "Delete a sensor", .posargs = "ID", .npos = 1,
    .opts = if_match_opts, .run = gc_cli_res_delete, .data = &sensor_res};
static const struct gc_cli_cmd sensor_readings = {
    .name = "readings", .summary = "Show the latest readings with their limits and status",
    .posargs = "ID", .npos = 1, .run = gc_cli_res_action, .data = &sensor_readings_act};

static const struct gc_cli_cmd profile_list = {
    .name = "list", .summary = "List device profiles (built-in and [environment] profile_dir)",
    .opts = paging_opts, .run = gc_cli_res_list, .data = &profile_res};
static const struct gc_cli_cmd profile_get = {
    .name = "get", .summary = "Show one device profile with its readings", .posargs = "NAME",
    .npos = 1, .run = gc_cli_res_get, .data = &profile_res};
static const struct gc_cli_cmd profile_check = {
    .name = "check", .summary = "Check a profile file (JSON; '-': standard input)",
    .description = "Nothing is loaded: put a good file in [environment] profile_dir and "
                   "restart to use it. A bad field is named, e.g. readings[2].oid.",
    .posargs = "FILE", .npos = 1, .run = upload_run, .data = &profile_check_up};

static const struct gc_cli_cmd *const profile_subs_cmds[] = {&profile_list, &profile_get,
                                                             &profile_check, NULL};
static const struct gc_cli_cmd sensor_profile = {
    .name = "profile", .summary = "List, show and check device profiles",
    .subs = profile_subs_cmds};

static const struct gc_cli_cmd *const sensor_subs[] = {
    &sensor_list,   &sensor_get,      &sensor_create, &sensor_update,
    &sensor_delete, &sensor_readings, &sensor_profile, NULL};

const struct gc_cli_cmd gc_cli_cmd_sensor = {
    .name = "sensor", .summary = "Manage data-centre sensors (动环监控): temperature, humidity, "
                                 "power, leaks",
    .description = "Platform roles only: platform_admin and operator manage sensors, auditor "
                   "and supervisor read them.",
    .subs = sensor_subs};

/* ---- supervision: pull ---- */

static const char *const dataset_choices[] = {"asset", "log", "metric", "alarm", "availability",
                                              "environment", "backup", NULL};

/* Prints one record as a line of compact JSON; on a terminal without control characters. */
static void print_record(const struct gc_cli *cli, const json_t *rec)
{
    char *line = json_dumps(rec, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!line)
        GC_BUG("json_dumps failed on a parsed record");
    if (cli->stdout_tty) {
        struct gc_buf out;
        gc_buf_init(&out, GC_BUF_UNLIMITED);
        if (gc_cli_sanitize_text(&out, line, strlen(line)) != 0)
            GC_BUG("unlimited buffer refused data");
        fputs(gc_buf_str(&out), stdout);
        gc_buf_release(&out);
    } else {
        fputs(line, stdout);
    }
    fputc('\n', stdout);
    free(line);
}

/* Reads the cursor saved in path; NULL when the file does not exist or is empty. */
static int read_cursor_file(const char *path, char **cursor)
{
    char buf[4096];
    FILE *f = fopen(path, "r");
    *cursor = NULL;
    if (!f)
        return errno == ENOENT ? GC_CLI_OK
                               : gc_cli_fail(GC_CLI_EUSAGE, "cannot open %s: %s", path,
                                             strerror(errno));
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    if (buf[0])
        *cursor = gc_strdup(buf);
    return GC_CLI_OK;
}

/* Replaces path's content with cursor and a newline (a new file renamed over it, so that a
 * crash leaves the old cursor or the new one, never half of one). */
static int write_cursor_file(const char *path, const char *cursor)
{
    struct gc_buf tmp;
    gc_buf_init(&tmp, GC_BUF_UNLIMITED);
    if (gc_buf_addf(&tmp, "%s.tmp", path) != 0)
        GC_BUG("unlimited buffer refused data");
    FILE *f = fopen(gc_buf_str(&tmp), "w");
    int rc = GC_CLI_OK;
    if (!f || fprintf(f, "%s\n", cursor) < 0 || fflush(f) != 0 || fsync(fileno(f)) != 0)
        rc = gc_cli_fail(GC_CLI_EFAIL, "cannot write %s: %s", gc_buf_str(&tmp), strerror(errno));
    if (f && fclose(f) != 0 && rc == GC_CLI_OK)
        rc = gc_cli_fail(GC_CLI_EFAIL, "cannot write %s: %s", gc_buf_str(&tmp), strerror(errno));
    if (rc == GC_CLI_OK && rename(gc_buf_str(&tmp), path) != 0)
        rc = gc_cli_fail(GC_CLI_EFAIL, "cannot rename %s to %s: %s", gc_buf_str(&tmp), path,
                         strerror(errno));
    if (rc != GC_CLI_OK)
        unlink(gc_buf_str(&tmp));
    gc_buf_release(&tmp);
    return rc;
}

static bool valid_dataset(const char *d)
{
    for (size_t i = 0; dataset_choices[i]; i++)
        if (strcmp(dataset_choices[i], d) == 0)
            return true;
    return false;
}

static int pull_run(struct gc_cli *cli, const struct gc_cli_cmd *cmd,
                    const struct gc_cli_args *args)
{
    const char *dataset = args->pos[0];
    const char *limit = gc_cli_arg(cmd, args, "limit");
    const char *cursor_file = gc_cli_arg(cmd, args, "cursor-file");
    bool all = gc_cli_arg(cmd, args, "all") != NULL;
    char *cursor = NULL;
    json_t *page = NULL, *records = json_array();
    struct gc_buf path, q;
    long pages = 0;
    int rc = GC_CLI_OK;

    gc_buf_init(&path, MAX_PATH_BYTES);
    gc_buf_init(&q, MAX_QUERY_BYTES);
    if (!valid_dataset(dataset)) {
        rc = gc_cli_usage_error(cli, "unknown dataset '%s': expected asset, log, metric, alarm, "
                                     "availability, environment or backup", dataset);
        goto cleanup;
    }
    if (gc_cli_arg(cmd, args, "cursor") && cursor_file) {
        rc = gc_cli_usage_error(cli, "give --cursor or --cursor-file, not both");
        goto cleanup;
    }
    if (cursor_file)
        rc = read_cursor_file(cursor_file, &cursor);
    else if (gc_cli_arg(cmd, args, "cursor"))
        cursor = gc_strdup(gc_cli_arg(cmd, args, "cursor"));
    if (rc == GC_CLI_OK)
        rc = gc_cli_id_path(cli, &path, "/v1/supervision", dataset, NULL);
    if (rc != GC_CLI_OK)
        goto cleanup;

    for (;;) {
        struct gc_cli_resp resp;
        gc_buf_reset(&q);
        if ((limit && gc_buf_addf(&q, "limit=%s", limit) != 0) ||
            (cursor && (gc_buf_adds(&q, q.len ? "&cursor=" : "cursor=") != 0 ||
                        gc_cli_escape(&q, cursor) != 0))) {
            rc = gc_cli_fail(GC_CLI_EFAIL, "the cursor is too long");
            goto cleanup;
        }
        struct gc_cli_req req = {.method = "GET", .path = gc_buf_str(&path),
                                 .query = gc_buf_str(&q)};
        rc = gc_cli_http(cli, &req, &resp);
        json_decref(page);
        page = resp.json;
        resp.json = NULL;
        gc_cli_resp_release(&resp);
        if (rc != GC_CLI_OK)
            goto cleanup;
        json_t *recs = json_object_get(page, "records");
        const char *next = json_string_value(json_object_get(page, "next_cursor"));
        if (!json_is_array(recs) || !next) {
            rc = gc_cli_fail(GC_CLI_EFAIL, "the server's answer to GET %s has no records list "
                                           "or no next_cursor", gc_buf_str(&path));
            goto cleanup;
        }
        if (cli->output == GC_CLI_OUT_JSON) {
            json_array_extend(records, recs);
        } else {
            size_t i;
            json_t *r;
            json_array_foreach(recs, i, r)
                print_record(cli, r);
        }
        bool more = json_is_true(json_object_get(page, "more"));
        bool same = cursor && strcmp(next, cursor) == 0;
        free(cursor);
        cursor = gc_strdup(next);
        if (!all || !more)
            break;
        if (same || ++pages >= MAX_PULL_PAGES) {
            rc = gc_cli_fail(GC_CLI_EFAIL, "the server's cursors do not come to an end (page "
                                           "%ld)", pages + 1);
            goto cleanup;
        }
    }

    if (cli->output == GC_CLI_OUT_JSON) {
        json_t *out = json_pack("{s:O,s:O,s:O,s:O,s:O}", "dataset",
                                json_object_get(page, "dataset"), "schema_version",
                                json_object_get(page, "schema_version"), "records", records,
                                "next_cursor", json_object_get(page, "next_cursor"), "more",
                                json_object_get(page, "more"));
        if (!out) {
            rc = gc_cli_fail(GC_CLI_EFAIL, "the server's answer lacks dataset, schema_version "
                                           "or more");
            goto cleanup;
        }
        gc_cli_print_json(stdout, out);
        json_decref(out);
    }
    /* the cursor is kept only once everything before it is out */
    if (fflush(stdout) != 0 || ferror(stdout)) {
        rc = gc_cli_fail(GC_CLI_EFAIL, "cannot write to standard output");
        goto cleanup;
    }
    if (cursor_file) {
        rc = write_cursor_file(cursor_file, cursor);
    } else if (cli->output == GC_CLI_OUT_TABLE) {
        struct gc_buf safe;
        gc_buf_init(&safe, GC_BUF_UNLIMITED);
        if (gc_cli_sanitize(&safe, cursor, 0) != 0)
            GC_BUG("unlimited buffer refused data");
        fprintf(stderr, "govcloud: %s; next cursor: %s\n",
                json_is_true(json_object_get(page, "more")) ? "more records follow"
                                                            : "up to date",
                gc_buf_str(&safe));
        gc_buf_release(&safe);
    }

cleanup:
    free(cursor);
    json_decref(page);
    json_decref(records);
    gc_buf_release(&path);
    gc_buf_release(&q);
    return rc;
}

static const struct gc_cli_opt pull_opts[] = {
    {.name = "cursor", .type = GC_OPT_STRING, .metavar = "CURSOR",
     .help = "only what changed after CURSOR (the next cursor of an earlier pull); without "
             "it, a snapshot of every live record"},
    {.name = "cursor-file", .type = GC_OPT_STRING, .metavar = "FILE",
     .help = "read the cursor from FILE (when it exists) and write the next one there once "
             "the records are out: repeated runs fetch only the changes"},
    {.name = "limit", .type = GC_OPT_INT, .metavar = "N", .min = 1, .max = INT_MAX,
     .help = "at most N records per request"},
    {.name = "all", .type = GC_OPT_FLAG,
     .help = "with --limit: ask again until nothing more is waiting"},
    {0},
};

/* ---- supervision: views, receivers, clouds ---- */

static const struct gc_cli_resource pubkey_res = {.noun = "public key",
                                                  .path = "/v1/supervision/public-key"};

static const struct gc_cli_col layer_cols[] = {
    {"LAYER", "layer", 0},  {"WEIGHT", "weight", 0},       {"ASSETS", "assets", 0},
    {"DOMESTIC", "domestic", 0}, {"WITH_BASIS", "domestic_with_basis", 0},
    {"UNDECLARED", "undeclared", 0}, {"RATE_BY_COUNT", "rate_by_count", 0},
    {"RATE_BY_CAPACITY", "rate_by_capacity", 0}, {0},
};
static const struct gc_cli_subtable subst_subs[] = {{"layers", layer_cols}, {0}};
static const struct gc_cli_resource subst_res = {
    .noun = "substitution rate", .path = "/v1/supervision/substitution-rate",
    .subtables = subst_subs};

static const struct gc_cli_col stream_cols[] = {
    {"DATASET", "dataset", 0}, {"MAX_BATCH_SEQ", "max_batch_seq", 0},
    {"BATCHES", "batches", 0}, {"ACCEPTED", "accepted", 0}, {"REJECTED", "rejected", 0},
    {"LAST_BATCH_AT", "last_batch_at", 0}, {"LAG_S", "lag_seconds", 0},
    {"GAPS", "gaps", 24}, {"RECORDS", "records", 0}, {0},
};
static const struct gc_cli_col ov_cloud_cols[] = {
    {"CLOUD_ID", "cloud_id", 0}, {"NAME", "name", 24}, {"ASSETS", "assets.total", 0},
    {"SUBST_RATE", "assets.substitution_rate.overall.rate_by_count", 0}, {"PUE", "environment.pue", 24},
    {"OPEN_INCIDENTS", "availability.open_incidents", 0}, {0},
};
static const struct gc_cli_subtable overview_subs[] = {{"clouds", ov_cloud_cols}, {0}};
static const struct gc_cli_resource overview_res = {
    .noun = "overview", .path = "/v1/supervision/overview", .subtables = overview_subs};

static const struct gc_cli_col delivery_cols[] = {
    {"DATASET", "dataset", 0}, {"CURSOR", "cursor", 0}, {"LAST_BATCH_SEQ", "last_batch_seq", 0},
    {"DELIVERED", "delivered_batch_seq", 0}, {"PENDING", "pending_batches", 0},
    {"LAST_SUCCESS_AT", "last_success_at", 0}, {"LAG_S", "lag_seconds", 0},
    {"LAST_ERROR", "last_error", 40}, {0},
};
static const struct gc_cli_subtable receiver_subs[] = {{"delivery", delivery_cols}, {0}};
static const struct gc_cli_col receiver_cols[] = {
    {"ID", "id", 0}, {"NAME", "name", 24}, {"URL", "url", 48}, {"DATASETS", "datasets", 40},
    {"ENABLED", "enabled", 0}, {"ENCRYPTED", "encrypted", 0}, {0},
};
static const struct gc_cli_resource receiver_res = {
    .noun = "receiver", .path = "/v1/supervision/receivers", .cols = receiver_cols,
    .subtables = receiver_subs};

static const struct gc_cli_subtable cloud_subs[] = {{"streams", stream_cols}, {0}};
static const struct gc_cli_col cloud_cols[] = {
    {"ID", "id", 0}, {"NAME", "name", 32}, {"ENCRYPTED", "encrypted", 0},
    {"FINGERPRINT_SM3", "fingerprint_sm3", 20}, {"CREATED_AT", "created_at", 0}, {0},
};
static const struct gc_cli_resource cloud_res = {
    .noun = "cloud", .path = "/v1/supervision/clouds", .cols = cloud_cols,
    .subtables = cloud_subs, .create_note = "the push token is shown only this once: give it "
                                            "to the cloud's operator now"};
static const struct gc_cli_resource summary_res = {.noun = "summary", .subtables = cloud_subs};

static const struct gc_cli_col record_cols[] = {
    {"DATASET", "dataset", 0}, {"ID", "id", 44}, {"SEQ", "seq", 0}, {"OP", "op", 0},
    {"TIME", "time", 0}, {"DATA", "data", 60}, {0},
};
static const struct gc_cli_resource record_res = {.noun = "record", .cols = record_cols};

#define RECEIVER_FIELDS(req)                                                                \
    {.name = "url", .type = GC_OPT_STRING, .metavar = "URL", .key = "url", .flags = req,    \
     .help = "the supervisor's ingest URL, e.g. https://supervisor.example/v1/supervision/" \
             "ingest"},                                                                     \
    {.name = "push-token", .type = GC_OPT_STRING, .metavar = "TOKEN", .key = "token",       \
     .flags = req, .help = "the push token the supervisor gave when it registered this cloud"}, \
    {.name = "secret", .type = GC_OPT_STRING, .metavar = "BASE64", .key = "secret",         \
     .flags = GC_OPT_NULLABLE,                                                              \
     .help = "base64 of the 32-byte SM4 secret shared with the supervisor; 'none' removes it"}, \
    {.name = "datasets", .type = GC_OPT_STRING, .metavar = "DATASET[,...]", .key = "datasets", \
     .flags = GC_OPT_LIST,                                                                  \
     .help = "datasets to push, comma-separated (default every dataset): asset, metric, "   \
             "log, alarm, environment, availability, backup"},                             \
    {.name = "enabled", .type = GC_OPT_BOOL, .metavar = "true|false", .key = "enabled",     \
     .help = "false: nothing is pushed"}

static const struct gc_cli_opt receiver_create_opts[] = {RECEIVER_FIELDS(GC_OPT_REQUIRED), {0}};
static const struct gc_cli_opt receiver_update_opts[] = {
    {.name = "name", .type = GC_OPT_STRING, .metavar = "NAME", .key = "name",
     .help = "new name"},
    RECEIVER_FIELDS(0), GC_CLI_OPT_IF_MATCH, {0},
};

static const struct gc_cli_opt cloud_register_opts[] = {
    {.name = "cloud-id", .type = GC_OPT_STRING, .metavar = "UUID", .key = "cloud_id",
     .flags = GC_OPT_REQUIRED, .help = "the cloud's id, from its 'supervision public-key'"},
    {.name = "public-key-file", .type = GC_OPT_STRING, .metavar = "FILE",
     .key = "public_key_pem", .flags = GC_OPT_REQUIRED | GC_OPT_FILE,
     .help = "the cloud's SM2 public key (PEM), from its 'supervision public-key'"},
    {.name = "secret", .type = GC_OPT_STRING, .metavar = "BASE64", .key = "secret",
     .help = "base64 of the 32-byte SM4 secret; then plain batches are refused"},
    {0},
};
static const struct gc_cli_opt cloud_update_opts[] = {
    {.name = "name", .type = GC_OPT_STRING, .metavar = "NAME", .key = "name",
     .help = "new name"},
    {.name = "public-key-file", .type = GC_OPT_STRING, .metavar = "FILE",
     .key = "public_key_pem", .flags = GC_OPT_FILE,
     .help = "a new SM2 public key (PEM): key rotation, for the next batch"},
    {.name = "secret", .type = GC_OPT_STRING, .metavar = "BASE64", .key = "secret",
     .help = "base64 of a new 32-byte SM4 secret"},
    {.name = "rotate-token", .type = GC_OPT_FLAG, .key = "rotate_token",
     .help = "issue a new push token (shown once); the old one stops working"},
    GC_CLI_OPT_IF_MATCH, {0},
};
static const struct gc_cli_opt records_opts[] = {
    {.name = "dataset", .type = GC_OPT_CHOICE, .metavar = "DATASET", .key = "dataset",
     .choices = dataset_choices, .help = "only this dataset"},
    {.name = "limit", .type = GC_OPT_INT, .metavar = "N", .key = "limit", .min = 1,
     .max = 10000, .help = "items per page; with --all, the size of each page"},
    GC_CLI_OPT_CURSOR, GC_CLI_OPT_ALL, {0},
};

static const struct gc_cli_action summary_act = {&cloud_res, "GET", "/summary", NULL, false,
                                                 &summary_res};
static const struct gc_cli_sublist records_sub = {&cloud_res, "/records", &record_res};

static const struct gc_cli_cmd receiver_list = {
    .name = "list", .summary = "List upstream receivers", .opts = paging_opts,
    .run = gc_cli_res_list, .data = &receiver_res};
static const struct gc_cli_cmd receiver_get = {
    .name = "get", .summary = "Show a receiver and its delivery state per dataset",
    .posargs = "ID", .npos = 1, .run = gc_cli_res_get, .data = &receiver_res};
static const struct gc_cli_cmd receiver_create = {
    .name = "create", .summary = "Push to an upstream supervisor from now on",
    .description = "NAME: 1-64 of A-Z a-z 0-9 . _ -. A full snapshot goes first, then the "
                   "changes, in signed batches retried until the receiver answers 2xx.",
    .posargs = "NAME", .npos = 1, .opts = receiver_create_opts, .run = gc_cli_res_create,
    .data = &receiver_res};
static const struct gc_cli_cmd receiver_update = {
    .name = "update", .summary = "Change a receiver (undelivered batches are tried again)",
    .posargs = "ID", .npos = 1, .opts = receiver_update_opts, .run = gc_cli_res_update,
    .data = &receiver_res};
static const struct gc_cli_cmd receiver_delete = {
    .name = "delete", .summary = "Stop pushing to a receiver (its outbox goes with it)",
    .posargs = "ID", .npos = 1, .opts = if_match_opts, .run = gc_cli_res_delete,
    .data = &receiver_res};

static const struct gc_cli_cmd *const receiver_subs_cmds[] = {
    &receiver_list, &receiver_get, &receiver_create, &receiver_update, &receiver_delete, NULL};

static const struct gc_cli_cmd sup_receiver = {
    .name = "receiver", .summary = "Manage the supervisors this cloud pushes to",
    .description = "platform_admin and operator only.", .subs = receiver_subs_cmds};

static const struct gc_cli_cmd cloud_list = {
    .name = "list", .summary = "List the clouds registered to push here", .opts = paging_opts,
    .run = gc_cli_res_list, .data = &cloud_res};
static const struct gc_cli_cmd cloud_get = {
    .name = "get", .summary = "Show a registered cloud with its streams", .posargs = "ID",
    .npos = 1, .run = gc_cli_res_get, .data = &cloud_res};
static const struct gc_cli_cmd cloud_register = {
    .name = "register", .summary = "Register a cloud that pushes here; its push token is shown "
                                   "once",
    .posargs = "NAME", .npos = 1, .opts = cloud_register_opts, .run = gc_cli_res_create,
    .data = &cloud_res};
static const struct gc_cli_cmd cloud_update = {
    .name = "update", .summary = "Rename a cloud, rotate its key, secret or token",
    .posargs = "ID", .npos = 1, .opts = cloud_update_opts, .run = gc_cli_res_update,
    .data = &cloud_res};
static const struct gc_cli_cmd cloud_delete = {
    .name = "delete", .summary = "Forget a cloud and everything it pushed", .posargs = "ID",
    .npos = 1, .opts = if_match_opts, .run = gc_cli_res_delete, .data = &cloud_res};
static const struct gc_cli_cmd cloud_summary = {
    .name = "summary",
    .summary = "What a cloud reported: streams, assets, substitution rate, environment, "
               "availability",
    .posargs = "ID", .npos = 1, .run = gc_cli_res_action, .data = &summary_act};
static const struct gc_cli_cmd cloud_records = {
    .name = "records", .summary = "List the records received from a cloud", .posargs = "ID",
    .npos = 1, .opts = records_opts, .run = gc_cli_res_sublist, .data = &records_sub};

static const struct gc_cli_cmd *const cloud_subs_cmds[] = {
    &cloud_list, &cloud_get, &cloud_register, &cloud_update, &cloud_delete, &cloud_summary,
    &cloud_records, NULL};

static const struct gc_cli_cmd sup_cloud = {
    .name = "cloud", .summary = "Manage the clouds that push here (supervisor mode)",
    .description = "platform_admin manages them; supervisor reads.", .subs = cloud_subs_cmds};

static const struct gc_cli_cmd sup_pull = {
    .name = "pull", .summary = "Pull a dataset as JSON lines, one record a line",
    .description = "DATASET: asset, log, metric, alarm, availability, environment or backup. "
                   "The next cursor goes to stderr (or to --cursor-file); -o json prints one "
                   "object with every record instead. Platform roles only.",
    .posargs = "DATASET", .npos = 1, .opts = pull_opts, .run = pull_run};
static const struct gc_cli_cmd sup_public_key = {
    .name = "public-key", .summary = "Show this cloud's supervision id and SM2 public key",
    .run = gc_cli_res_view, .data = &pubkey_res};
static const struct gc_cli_cmd sup_subst = {
    .name = "substitution-rate",
    .summary = "The domestic substitution rate (国产替代率) of this cloud's inventory",
    .run = gc_cli_res_view, .data = &subst_res};
static const struct gc_cli_cmd sup_overview = {
    .name = "overview", .summary = "Every registered cloud's summary and all their assets",
    .run = gc_cli_res_view, .data = &overview_res};

static const struct gc_cli_cmd *const sup_subs[] = {&sup_pull,  &sup_public_key, &sup_subst,
                                                    &sup_overview, &sup_receiver, &sup_cloud,
                                                    NULL};

const struct gc_cli_cmd gc_cli_cmd_supervision = {
    .name = "supervision", .summary = "Supervision (监管): pull, push and views across clouds",
    .description = "docs/supervision.md describes the datasets and both modes.",
    .subs = sup_subs};
