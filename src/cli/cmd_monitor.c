/* The monitoring commands: alarms, alarm rules, silences, service checks, availability,
 * maintenance windows, notification channels and metric queries. Tables over the generic
 * commands of cmd_resource.c; none has code of its own. */
#include "cli/cmds.h"

#include <limits.h>

#include "util/banned.h" /* last: it redefines library names */

static const struct gc_cli_opt if_match_opts[] = {GC_CLI_OPT_IF_MATCH, {0}};
static const struct gc_cli_opt paging_opts[] = {GC_CLI_LIST_PAGING, {0}};

static const char *const severity_choices[] = {"critical", "major", "minor", "warning", "info",
                                               NULL};

/* ---- alarms ---- */

static const struct gc_cli_col alarm_cols[] = {
    {"ID", "id", 0},           {"STATUS", "status", 0},      {"SEVERITY", "severity", 0},
    {"RULE", "rule_name", 24}, {"SUMMARY", "summary", 48},   {"STARTED_AT", "started_at", 0},
    {"ENDED_AT", "ended_at", 0}, {"ACKED_BY", "acknowledged_by", 16}, {0},
};
static const struct gc_cli_resource alarm_res = {
    .noun = "alarm", .path = "/v1/alarms", .cols = alarm_cols};

static const char *const alarm_status_choices[] = {"firing", "resolved", NULL};

static const struct gc_cli_opt alarm_list_opts[] = {
    {.name = "status", .type = GC_OPT_CHOICE, .metavar = "STATUS", .key = "status",
     .choices = alarm_status_choices, .help = "firing: what fires now; resolved: history"},
    {.name = "severity", .type = GC_OPT_CHOICE, .metavar = "SEVERITY", .key = "severity",
     .choices = severity_choices, .help = "only alarms of this severity"},
    {.name = "rule-id", .type = GC_OPT_STRING, .metavar = "ID", .key = "rule_id",
     .help = "only the alarms of this rule"},
    GC_CLI_REF_OPT("department", "department_id", gc_cli_dept_ref,
                   "only the alarms of this department (name or id)", 0),
    GC_CLI_LIST_PAGING, {0},
};

static const struct gc_cli_opt alarm_ack_opts[] = {
    {.name = "comment", .type = GC_OPT_STRING, .metavar = "TEXT", .key = "comment",
     .help = "why, or what is being done (at most 1000 characters)"},
    {0},
};

static const struct gc_cli_action alarm_ack_act = {&alarm_res, "POST", "/ack", NULL, true, NULL};

static const struct gc_cli_cmd alarm_list = {
    .name = "list", .summary = "List alarms, oldest first (firing and history)",
    .opts = alarm_list_opts, .run = gc_cli_res_list, .data = &alarm_res};
static const struct gc_cli_cmd alarm_get = {
    .name = "get", .summary = "Show one alarm", .posargs = "ID", .npos = 1,
    .run = gc_cli_res_get, .data = &alarm_res};
static const struct gc_cli_cmd alarm_ack = {
    .name = "ack", .summary = "Acknowledge a firing alarm (once; it still resolves by itself)",
    .posargs = "ID", .npos = 1, .opts = alarm_ack_opts, .run = gc_cli_res_action,
    .data = &alarm_ack_act};

static const struct gc_cli_cmd *const alarm_subs[] = {&alarm_list, &alarm_get, &alarm_ack,
                                                      NULL};

const struct gc_cli_cmd gc_cli_cmd_alarm = {
    .name = "alarm", .summary = "List and acknowledge alarms (告警)",
    .description = "Platform roles see every alarm, department roles their department's. "
                   "platform_admin and operator acknowledge any alarm, a department_admin "
                   "its department's.",
    .subs = alarm_subs};

/* ---- alarm rules ---- */

static const struct gc_cli_col rule_cols[] = {
    {"ID", "id", 0},         {"NAME", "name", 32},          {"KIND", "kind", 0},
    {"SEVERITY", "severity", 0}, {"SELECTOR", "selector", 40}, {"OP", "op", 0},
    {"THRESHOLD", "threshold", 0}, {"FOR_SECONDS", "for_seconds", 0},
    {"ENABLED", "enabled", 0}, {"BUILTIN", "builtin", 0}, {0},
};
static const struct gc_cli_resource rule_res = {
    .noun = "alarm rule", .path = "/v1/alarm-rules", .cols = rule_cols};

static const char *const rule_kind_choices[] = {"metric", "incident", NULL};
static const char *const function_choices[] = {"value", "rate", NULL};
static const char *const op_choices[] = {">", ">=", "<", "<=", "==", "!=", NULL};

static const struct gc_cli_opt rule_list_opts[] = {
    {.name = "kind", .type = GC_OPT_CHOICE, .metavar = "KIND", .key = "kind",
     .choices = rule_kind_choices, .help = "only rules of this kind"},
    {.name = "severity", .type = GC_OPT_CHOICE, .metavar = "SEVERITY", .key = "severity",
     .choices = severity_choices, .help = "only rules of this severity"},
    GC_CLI_REF_OPT("department", "department_id", gc_cli_dept_ref,
                   "only the rules of this department (name or id)", 0),
    GC_CLI_LIST_PAGING, {0},
};

#define RULE_FIELDS(req)                                                                    \
    {.name = "selector", .type = GC_OPT_STRING, .metavar = "SELECTOR", .key = "selector",   \
     .flags = req,                                                                          \
     .help = "metric{label=\"value\",label!=\"value\"}: a metric and at most 8 matchers"},   \
    {.name = "function", .type = GC_OPT_CHOICE, .metavar = "FUNCTION", .key = "function",   \
     .choices = function_choices,                                                           \
     .help = "value (default): the sample itself; rate: per-second increase (counters)"},   \
    {.name = "op", .type = GC_OPT_CHOICE, .metavar = "OP", .key = "op", .flags = req,       \
     .choices = op_choices, .help = "how the value is compared with the threshold"},       \
    {.name = "threshold", .type = GC_OPT_NUMBER, .metavar = "NUMBER", .key = "threshold",   \
     .flags = req, .help = "the limit, e.g. 0.9"},                                          \
    {.name = "for-seconds", .type = GC_OPT_INT, .metavar = "SECONDS", .key = "for_seconds", \
     .min = 0, .max = 86400,                                                                \
     .help = "how long the condition must hold before the alarm fires (default 0)"},       \
    {.name = "severity", .type = GC_OPT_CHOICE, .metavar = "SEVERITY", .key = "severity",   \
     .flags = req, .choices = severity_choices, .help = "the alarms' severity"},           \
    {.name = "summary", .type = GC_OPT_STRING, .metavar = "TEXT", .key = "summary",         \
     .help = "template: {{label}}, {{value}}, {{value_percent}}, {{reason}}"},             \
    {.name = "enabled", .type = GC_OPT_BOOL, .metavar = "true|false", .key = "enabled",     \
     .help = "false: the rule raises nothing (its firing alarms resolve)"}

static const struct gc_cli_opt rule_create_opts[] = {
    RULE_FIELDS(GC_OPT_REQUIRED),
    GC_CLI_REF_OPT("department", "department_id", gc_cli_dept_ref,
                   "a department rule (name or id) that sees only that department's series; "
                   "department_admin: its own (the default)", 0),
    {0},
};

static const struct gc_cli_opt rule_update_opts[] = {
    {.name = "name", .type = GC_OPT_STRING, .metavar = "NAME", .key = "name",
     .help = "new name, 1-64 of A-Z a-z 0-9 . _ -"},
    RULE_FIELDS(0), GC_CLI_OPT_IF_MATCH, {0},
};

static const struct gc_cli_cmd rule_list = {
    .name = "list", .summary = "List alarm rules (the built-in ones first)",
    .opts = rule_list_opts, .run = gc_cli_res_list, .data = &rule_res};
static const struct gc_cli_cmd rule_get = {
    .name = "get", .summary = "Show one alarm rule", .posargs = "ID", .npos = 1,
    .run = gc_cli_res_get, .data = &rule_res};
static const struct gc_cli_cmd rule_create = {
    .name = "create", .summary = "Create a metric alarm rule", .posargs = "NAME", .npos = 1,
    .description = "NAME: 1-64 of A-Z a-z 0-9 . _ -; it is the alertname label of its alarms.",
    .opts = rule_create_opts, .run = gc_cli_res_create, .data = &rule_res};
static const struct gc_cli_cmd rule_update = {
    .name = "update", .summary = "Change an alarm rule",
    .description = "Built-in rules change only threshold, for-seconds, severity, summary and "
                   "enabled.",
    .posargs = "ID", .npos = 1, .opts = rule_update_opts, .run = gc_cli_res_update,
    .data = &rule_res};
static const struct gc_cli_cmd rule_delete = {
    .name = "delete",
    .summary = "Delete an alarm rule (its firing alarms resolve; built-in rules cannot be "
               "deleted, disable them)",
    .posargs = "ID", .npos = 1, .opts = if_match_opts, .run = gc_cli_res_delete,
    .data = &rule_res};

static const struct gc_cli_cmd *const rule_subs[] = {&rule_list, &rule_get, &rule_create,
                                                     &rule_update, &rule_delete, NULL};

const struct gc_cli_cmd gc_cli_cmd_alarm_rule = {
    .name = "alarm-rule", .summary = "Manage alarm rules (告警规则)",
    .description = "platform_admin and operator manage platform and department rules, a "
                   "department_admin its department's.",
    .subs = rule_subs};

/* ---- silences ---- */

static const struct gc_cli_col silence_cols[] = {
    {"ID", "id", 0},          {"STATE", "state", 0},       {"MATCHERS", "matchers", 40},
    {"STARTS_AT", "starts_at", 0}, {"ENDS_AT", "ends_at", 0}, {"CREATED_BY", "created_by", 16},
    {"COMMENT", "comment", 32}, {0},
};
static const struct gc_cli_resource silence_res = {
    .noun = "silence", .path = "/v1/silences", .cols = silence_cols};

static const struct gc_cli_opt silence_create_opts[] = {
    {.name = "match", .type = GC_OPT_STRING, .metavar = "LABEL=VALUE[,...]", .key = "matchers",
     .flags = GC_OPT_REQUIRED | GC_OPT_MAP,
     .help = "labels an alarm must have, each with exactly this value (alertname is the "
             "rule's name), e.g. alertname=vm-down,vm_id=..."},
    {.name = "comment", .type = GC_OPT_STRING, .metavar = "TEXT", .key = "comment",
     .flags = GC_OPT_REQUIRED, .help = "why (at most 1000 characters)"},
    {.name = "starts-at", .type = GC_OPT_TIME, .metavar = "TIME", .key = "starts_at",
     .help = "RFC 3339 start (default now)"},
    {.name = "ends-at", .type = GC_OPT_TIME, .metavar = "TIME", .key = "ends_at",
     .help = "RFC 3339 end; or give --duration"},
    {.name = "duration", .type = GC_OPT_INT, .metavar = "SECONDS", .key = "duration_seconds",
     .min = 60, .max = 7776000, .help = "how long from the start"},
    {0},
};

static const struct gc_cli_cmd silence_list = {
    .name = "list", .summary = "List silences (active, pending and expired)",
    .opts = paging_opts, .run = gc_cli_res_list, .data = &silence_res};
static const struct gc_cli_cmd silence_create = {
    .name = "create", .summary = "Silence matching alarms for a while",
    .description = "Alarms that fire while it is active and whose labels match are recorded "
                   "but not notified.",
    .opts = silence_create_opts, .run = gc_cli_res_create, .data = &silence_res};
static const struct gc_cli_cmd silence_delete = {
    .name = "delete", .summary = "End a silence now (it stays listed, expired)",
    .posargs = "ID", .npos = 1, .run = gc_cli_res_delete, .data = &silence_res};

static const struct gc_cli_cmd *const silence_subs[] = {&silence_list, &silence_create,
                                                        &silence_delete, NULL};

const struct gc_cli_cmd gc_cli_cmd_silence = {
    .name = "silence", .summary = "Manage silences (告警静默) of alarm notifications",
    .description = "For platform roles; platform_admin and operator create and end them.",
    .subs = silence_subs};

/* ---- service checks ---- */

static const struct gc_cli_col check_cols[] = {
    {"ID", "id", 0},         {"NAME", "name", 24},       {"KIND", "kind", 0},
    {"TARGET_HOST", "host", 24}, {"PORT", "port", 0},    {"URL", "url", 32},
    {"INTERVAL_S", "interval_seconds", 0}, {"ENABLED", "enabled", 0},
    {"UP", "status.up", 0}, {"REASON", "status.reason", 24}, {0},
};
static const struct gc_cli_resource check_res = {
    .noun = "check", .path = "/v1/checks", .cols = check_cols};

static const char *const check_kind_choices[] = {"tcp", "http", "icmp", NULL};

static const struct gc_cli_opt check_list_opts[] = {
    GC_CLI_REF_OPT("department", "department_id", gc_cli_dept_ref,
                   "only the checks of this department (name or id)", 0),
    {.name = "kind", .type = GC_OPT_CHOICE, .metavar = "KIND", .key = "kind",
     .choices = check_kind_choices, .help = "only checks of this kind"},
    GC_CLI_LIST_PAGING, {0},
};

#define CHECK_FIELDS                                                                        \
    {.name = "host", .type = GC_OPT_STRING, .metavar = "HOST", .key = "host",               \
     .help = "tcp, icmp: a DNS name, IPv4 or IPv6 address"},                                \
    {.name = "port", .type = GC_OPT_INT, .metavar = "PORT", .key = "port", .min = 1,         \
     .max = 65535, .help = "tcp: the port"},                                                \
    {.name = "url", .type = GC_OPT_STRING, .metavar = "URL", .key = "url",                  \
     .help = "http: an http:// or https:// URL (redirects are not followed)"},              \
    {.name = "expect-status", .type = GC_OPT_INT, .metavar = "STATUS", .key = "expect_status", \
     .min = 100, .max = 599, .help = "http: the status that means up (default 200)"},       \
    {.name = "tls-verify", .type = GC_OPT_BOOL, .metavar = "true|false", .key = "tls_verify", \
     .help = "http: verify the server's certificate and name (default true)"},              \
    {.name = "interval", .type = GC_OPT_INT, .metavar = "SECONDS", .key = "interval_seconds", \
     .min = 1, .max = 86400, .help = "seconds between probes (default 30)"},                \
    {.name = "timeout-ms", .type = GC_OPT_INT, .metavar = "MS", .key = "timeout_ms",         \
     .min = 100, .max = 60000, .help = "bound of one probe (default 5000, at most the interval)"}, \
    {.name = "enabled", .type = GC_OPT_BOOL, .metavar = "true|false", .key = "enabled",     \
     .help = "false: not probed"}

static const struct gc_cli_opt check_create_opts[] = {
    {.name = "kind", .type = GC_OPT_CHOICE, .metavar = "KIND", .key = "kind",
     .flags = GC_OPT_REQUIRED, .choices = check_kind_choices,
     .help = "tcp: a connection; http: a request; icmp: a ping"},
    CHECK_FIELDS,
    GC_CLI_REF_OPT("department", "department_id", gc_cli_dept_ref,
                   "its department (name or id); platform roles must give it, department "
                   "roles default to their own", 0),
    {0},
};

static const struct gc_cli_opt check_update_opts[] = {
    {.name = "name", .type = GC_OPT_STRING, .metavar = "NAME", .key = "name",
     .help = "new name"},
    CHECK_FIELDS, GC_CLI_OPT_IF_MATCH, {0},
};

static const struct gc_cli_cmd check_list = {
    .name = "list", .summary = "List service checks", .opts = check_list_opts,
    .run = gc_cli_res_list, .data = &check_res};
static const struct gc_cli_cmd check_get = {
    .name = "get", .summary = "Show one check with its last probe's result", .posargs = "ID",
    .npos = 1, .run = gc_cli_res_get, .data = &check_res};
static const struct gc_cli_cmd check_create = {
    .name = "create", .summary = "Create a service check (probed at once, then every interval)",
    .description = "NAME: 1-64 of A-Z a-z 0-9 . _ -.", .posargs = "NAME", .npos = 1,
    .opts = check_create_opts, .run = gc_cli_res_create, .data = &check_res};
static const struct gc_cli_cmd check_update = {
    .name = "update", .summary = "Change a service check (its kind stays)", .posargs = "ID",
    .npos = 1, .opts = check_update_opts, .run = gc_cli_res_update, .data = &check_res};
static const struct gc_cli_cmd check_delete = {
    .name = "delete", .summary = "Delete a service check", .posargs = "ID", .npos = 1,
    .opts = if_match_opts, .run = gc_cli_res_delete, .data = &check_res};

static const struct gc_cli_cmd *const check_subs[] = {&check_list, &check_get, &check_create,
                                                      &check_update, &check_delete, NULL};

const struct gc_cli_cmd gc_cli_cmd_check = {
    .name = "check", .summary = "Manage service checks (服务拨测): tcp, http, icmp probes",
    .description = "Scoped like VMs: platform_admin and operator manage every check, "
                   "department roles their department's.",
    .subs = check_subs};

/* ---- availability ---- */

static const struct gc_cli_col incident_cols[] = {
    {"RESOURCE_TYPE", "resource_type", 0}, {"RESOURCE_ID", "resource_id", 0},
    {"STARTED_AT", "started_at", 0}, {"ENDED_AT", "ended_at", 0},
    {"DOWNTIME_S", "downtime_seconds", 0}, {"PLANNED_S", "planned_seconds", 0},
    {"REASON", "reason", 40}, {0},
};
static const struct gc_cli_subtable avail_subs[] = {{"incident_list", incident_cols}, {0}};
static const struct gc_cli_resource avail_res = {
    .noun = "availability", .path = "/v1/availability", .subtables = avail_subs};

static const struct gc_cli_col period_cols[] = {
    {"PERIOD", "period", 0}, {"AVAILABILITY_%", "availability_text", 0},
    {"TARGET_MET", "target_met", 0}, {"DOWNTIME_S", "downtime_seconds", 0},
    {"PLANNED_S", "planned_seconds", 0}, {"INCIDENTS", "incidents", 0},
    {"RESOURCES", "resources", 0}, {0},
};
static const struct gc_cli_subtable report_subs[] = {{"periods", period_cols}, {0}};
static const struct gc_cli_resource report_res = {
    .noun = "availability report", .path = "/v1/availability/report", .subtables = report_subs};

static const char *const avail_scope_choices[] = {"platform", "department", "vm", "host",
                                                  "check", NULL};

#define AVAIL_SCOPE                                                                         \
    {.name = "scope", .type = GC_OPT_CHOICE, .metavar = "SCOPE", .key = "scope",            \
     .choices = avail_scope_choices,                                                        \
     .help = "platform (default, platform roles), or the department, vm, host or check "   \
             "given by --id"},                                                              \
    {.name = "id", .type = GC_OPT_STRING, .metavar = "ID", .key = "id",                     \
     .help = "the department, VM, host or check (an id)"},                                  \
    {.name = "target", .type = GC_OPT_NUMBER, .metavar = "PERCENT", .key = "target_percent", \
     .help = "the target the figure is held against (default 99.99)"}

static const struct gc_cli_opt avail_show_opts[] = {
    AVAIL_SCOPE,
    {.name = "from", .type = GC_OPT_TIME, .metavar = "TIME", .key = "from",
     .help = "RFC 3339 start (default the start of this month, UTC)"},
    {.name = "to", .type = GC_OPT_TIME, .metavar = "TIME", .key = "to",
     .help = "RFC 3339 end (default now)"},
    {0},
};

static const struct gc_cli_opt avail_report_opts[] = {
    AVAIL_SCOPE,
    {.name = "year", .type = GC_OPT_INT, .metavar = "YEAR", .key = "year", .min = 1970,
     .max = 9999, .flags = GC_OPT_REQUIRED, .help = "the year, e.g. 2026"},
    {.name = "month", .type = GC_OPT_INT, .metavar = "MONTH", .key = "month", .min = 1,
     .max = 12, .help = "a month of the year, by day (default: the year by month)"},
    {0},
};

static const struct gc_cli_cmd avail_show = {
    .name = "show", .summary = "Availability over a period (default this month so far)",
    .description = "docs/availability.md defines the figures. Planned maintenance windows "
                   "do not count as downtime.",
    .opts = avail_show_opts, .run = gc_cli_res_view, .data = &avail_res};
static const struct gc_cli_cmd avail_report = {
    .name = "report", .summary = "Availability of a year by month, or of a month by day",
    .opts = avail_report_opts, .run = gc_cli_res_view, .data = &report_res};

static const struct gc_cli_cmd *const avail_subs_cmds[] = {&avail_show, &avail_report, NULL};

const struct gc_cli_cmd gc_cli_cmd_availability = {
    .name = "availability", .summary = "Show availability figures (可用性) and reports",
    .description = "Platform scope for platform roles; a department or VM for those who may "
                   "see it.",
    .subs = avail_subs_cmds};

/* ---- maintenance windows ---- */

static const struct gc_cli_col mw_cols[] = {
    {"ID", "id", 0},         {"SCOPE", "scope", 0},          {"RESOURCE_ID", "resource_id", 0},
    {"STARTS_AT", "starts_at", 0}, {"ENDS_AT", "ends_at", 0}, {"DESCRIPTION", "description", 40},
    {0},
};
static const struct gc_cli_resource mw_res = {
    .noun = "maintenance window", .path = "/v1/maintenance-windows", .cols = mw_cols};

static const char *const mw_scope_choices[] = {"platform", "host", "vm", NULL};

static const struct gc_cli_opt mw_list_opts[] = {
    {.name = "scope", .type = GC_OPT_CHOICE, .metavar = "SCOPE", .key = "scope",
     .choices = mw_scope_choices, .help = "only windows of this scope"},
    {.name = "resource-id", .type = GC_OPT_STRING, .metavar = "ID", .key = "resource_id",
     .help = "only the windows of this host or VM"},
    GC_CLI_LIST_PAGING, {0},
};

static const struct gc_cli_opt mw_create_opts[] = {
    {.name = "scope", .type = GC_OPT_CHOICE, .metavar = "SCOPE", .key = "scope",
     .flags = GC_OPT_REQUIRED, .choices = mw_scope_choices,
     .help = "platform: every VM; host: a hypervisor host; vm: one VM"},
    {.name = "resource-id", .type = GC_OPT_STRING, .metavar = "ID", .key = "resource_id",
     .help = "host or vm: its id"},
    {.name = "starts-at", .type = GC_OPT_TIME, .metavar = "TIME", .key = "starts_at",
     .flags = GC_OPT_REQUIRED, .help = "RFC 3339 start"},
    {.name = "ends-at", .type = GC_OPT_TIME, .metavar = "TIME", .key = "ends_at",
     .flags = GC_OPT_REQUIRED, .help = "RFC 3339 end, at most 31 days after the start"},
    {.name = "description", .type = GC_OPT_STRING, .metavar = "TEXT", .key = "description",
     .help = "what is done"},
    {0},
};

static const struct gc_cli_cmd mw_list = {
    .name = "list", .summary = "List maintenance windows", .opts = mw_list_opts,
    .run = gc_cli_res_list, .data = &mw_res};
static const struct gc_cli_cmd mw_create = {
    .name = "create", .summary = "Declare a planned maintenance window",
    .opts = mw_create_opts, .run = gc_cli_res_create, .data = &mw_res};
static const struct gc_cli_cmd mw_delete = {
    .name = "delete", .summary = "Remove a maintenance window (past figures change with it)",
    .posargs = "ID", .npos = 1, .run = gc_cli_res_delete, .data = &mw_res};

static const struct gc_cli_cmd *const mw_subs[] = {&mw_list, &mw_create, &mw_delete, NULL};

const struct gc_cli_cmd gc_cli_cmd_maintenance_window = {
    .name = "maintenance-window", .summary = "Manage planned maintenance windows (计划维护)",
    .description = "Downtime inside a window is planned and not counted against availability. "
                   "platform_admin and operator declare them; auditor and supervisor read.",
    .subs = mw_subs};

/* ---- notification channels ---- */

static const struct gc_cli_col chan_cols[] = {
    {"ID", "id", 0}, {"NAME", "name", 24}, {"KIND", "kind", 0}, {"URL", "url", 40},
    {"ENABLED", "enabled", 0}, {"PENDING", "delivery.pending", 0},
    {"LAST_ERROR", "delivery.last_error", 32}, {0},
};
static const struct gc_cli_resource chan_res = {
    .noun = "notification channel", .path = "/v1/notification-channels", .cols = chan_cols};

static const char *const chan_kind_choices[] = {"webhook", NULL};

static const struct gc_cli_opt chan_list_opts[] = {
    {.name = "kind", .type = GC_OPT_CHOICE, .metavar = "KIND", .key = "kind",
     .choices = chan_kind_choices, .help = "only channels of this kind"},
    GC_CLI_LIST_PAGING, {0},
};

static const struct gc_cli_opt chan_create_opts[] = {
    {.name = "url", .type = GC_OPT_STRING, .metavar = "URL", .key = "url",
     .flags = GC_OPT_REQUIRED,
     .help = "http:// or https:// address that receives a POST of each event"},
    {.name = "kind", .type = GC_OPT_CHOICE, .metavar = "KIND", .key = "kind",
     .choices = chan_kind_choices, .help = "default webhook"},
    {.name = "enabled", .type = GC_OPT_BOOL, .metavar = "true|false", .key = "enabled",
     .help = "false: nothing is queued for it"},
    {0},
};

static const struct gc_cli_cmd chan_list = {
    .name = "list", .summary = "List notification channels with their delivery state",
    .opts = chan_list_opts, .run = gc_cli_res_list, .data = &chan_res};
static const struct gc_cli_cmd chan_create = {
    .name = "create", .summary = "Add a webhook that receives every alarm that fires or resolves",
    .description = "NAME: 1-64 of A-Z a-z 0-9 . _ -.", .posargs = "NAME", .npos = 1,
    .opts = chan_create_opts, .run = gc_cli_res_create, .data = &chan_res};
static const struct gc_cli_cmd chan_delete = {
    .name = "delete", .summary = "Remove a notification channel (what waits for it is dropped)",
    .posargs = "ID", .npos = 1, .run = gc_cli_res_delete, .data = &chan_res};

static const struct gc_cli_cmd *const chan_subs[] = {&chan_list, &chan_create, &chan_delete,
                                                     NULL};

const struct gc_cli_cmd gc_cli_cmd_notification_channel = {
    .name = "notification-channel", .summary = "Manage where alarm notifications go (通知渠道)",
    .description = "platform_admin and operator manage them; auditor and supervisor read.",
    .subs = chan_subs};

/* ---- metrics ---- */

static const struct gc_cli_col series_cols[] = {
    {"METRIC", "metric", 40}, {"LABELS", "labels", 80}, {0},
};
static const struct gc_cli_resource series_res = {
    .noun = "series", .nouns = "series", .path = "/v1/metrics/series", .cols = series_cols};

static const struct gc_cli_col qseries_cols[] = {
    {"LABELS", "labels", 60}, {"POINTS", "points", 60}, {0},
};
static const struct gc_cli_subtable query_subs[] = {{"series", qseries_cols}, {0}};
static const struct gc_cli_resource query_res = {
    .noun = "query", .path = "/v1/metrics/query", .subtables = query_subs};

static const char *const agg_choices[] = {"avg", "min", "max", "sum", "p95", NULL};

#define MATCH_OPT                                                                           \
    {.name = "match", .type = GC_OPT_STRING, .metavar = "MATCHER[,...]", .key = "match[]",  \
     .flags = GC_OPT_LIST,                                                                  \
     .help = "label matchers that must all hold: name=\"value\" or name!=\"value\""}

static const struct gc_cli_opt series_opts[] = {
    {.name = "metric", .type = GC_OPT_STRING, .metavar = "METRIC", .key = "metric",
     .help = "only series of this metric"},
    MATCH_OPT, GC_CLI_LIST_PAGING, {0},
};

static const struct gc_cli_opt query_opts[] = {
    {.name = "metric", .type = GC_OPT_STRING, .metavar = "METRIC", .key = "metric",
     .flags = GC_OPT_REQUIRED, .help = "the metric, e.g. govcloud_vm_cpu_usage_ratio"},
    MATCH_OPT,
    {.name = "start", .type = GC_OPT_STRING, .metavar = "TIME", .key = "start",
     .help = "Unix seconds or RFC 3339 (default an hour before the end)"},
    {.name = "end", .type = GC_OPT_STRING, .metavar = "TIME", .key = "end",
     .help = "Unix seconds or RFC 3339, exclusive (default now)"},
    {.name = "step", .type = GC_OPT_STRING, .metavar = "STEP", .key = "step",
     .help = "seconds, or a number with s, m, h or d (default: about 1000 points)"},
    {.name = "agg", .type = GC_OPT_CHOICE, .metavar = "AGG", .key = "agg",
     .choices = agg_choices, .help = "aggregation within each step (default avg)"},
    {0},
};

static const struct gc_cli_cmd metric_series = {
    .name = "series", .summary = "List the series you can see", .opts = series_opts,
    .run = gc_cli_res_list, .data = &series_res};
static const struct gc_cli_cmd metric_query = {
    .name = "query", .summary = "Aggregate a metric's series over a time range",
    .description = "Every matching series, as [time, value] points per step.",
    .opts = query_opts, .run = gc_cli_res_view, .data = &query_res};

static const struct gc_cli_cmd *const metric_subs[] = {&metric_series, &metric_query, NULL};

const struct gc_cli_cmd gc_cli_cmd_metric = {
    .name = "metric", .summary = "Query the time-series store (监控指标)",
    .description = "Department roles see their department's series only.",
    .subs = metric_subs};
