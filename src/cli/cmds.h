/* The CLI's commands, and the generic list/get/create/update/delete/action/view that every
 * REST collection shares (departments, users, API keys, audit events, jobs, the
 * infrastructure, monitoring, assets, sensors and supervision). */
#ifndef GC_CLI_CMDS_H
#define GC_CLI_CMDS_H

#include "cli/cli.h"
#include "cli/output.h"
#include "util/buf.h"

#include <jansson.h>
#include <limits.h>

/* The top-level commands, in the order --help lists them. */
extern const struct gc_cli_cmd gc_cli_cmd_login;
extern const struct gc_cli_cmd gc_cli_cmd_logout;
extern const struct gc_cli_cmd gc_cli_cmd_whoami;
extern const struct gc_cli_cmd gc_cli_cmd_department;
extern const struct gc_cli_cmd gc_cli_cmd_user;
extern const struct gc_cli_cmd gc_cli_cmd_api_key;
extern const struct gc_cli_cmd gc_cli_cmd_audit;
extern const struct gc_cli_cmd gc_cli_cmd_job;
extern const struct gc_cli_cmd gc_cli_cmd_host;
extern const struct gc_cli_cmd gc_cli_cmd_flavor;
extern const struct gc_cli_cmd gc_cli_cmd_image;
extern const struct gc_cli_cmd gc_cli_cmd_vm;
extern const struct gc_cli_cmd gc_cli_cmd_volume;
extern const struct gc_cli_cmd gc_cli_cmd_network;
extern const struct gc_cli_cmd gc_cli_cmd_security_group;
extern const struct gc_cli_cmd gc_cli_cmd_server_group;
extern const struct gc_cli_cmd gc_cli_cmd_quota;
extern const struct gc_cli_cmd gc_cli_cmd_alarm;
extern const struct gc_cli_cmd gc_cli_cmd_alarm_rule;
extern const struct gc_cli_cmd gc_cli_cmd_silence;
extern const struct gc_cli_cmd gc_cli_cmd_notification_channel;
extern const struct gc_cli_cmd gc_cli_cmd_check;
extern const struct gc_cli_cmd gc_cli_cmd_availability;
extern const struct gc_cli_cmd gc_cli_cmd_maintenance_window;
extern const struct gc_cli_cmd gc_cli_cmd_metric;
extern const struct gc_cli_cmd gc_cli_cmd_asset;
extern const struct gc_cli_cmd gc_cli_cmd_sensor;
extern const struct gc_cli_cmd gc_cli_cmd_supervision;
extern const struct gc_cli_cmd gc_cli_cmd_version;

/* An array of objects inside an object (a security group's rules), shown by get as a table
 * under the object's fields. */
struct gc_cli_subtable {
    const char *key; /* NULL ends a list */
    const struct gc_cli_col *cols;
};

/* A REST collection, the data of the generic commands below. */
struct gc_cli_resource {
    const char *noun;              /* "department", for messages */
    const char *nouns;             /* its plural when not noun + "s", or NULL */
    const char *path;              /* "/v1/departments" */
    const struct gc_cli_col *cols; /* list table columns */
    bool has_password;             /* create/update take --password/--password-stdin */
    const char *create_note;       /* printed on stderr after a create, or NULL */
    bool by_name;                  /* GET path?name=N finds objects: names work as ids */
    const struct gc_cli_subtable *subtables; /* NULL or {0}-terminated */
};

/* An operation on one object, the data of gc_cli_res_action: METHOD res->path/ID suffix,
 * and with a second argument /ARG2 (a rule of a security group). */
struct gc_cli_action {
    const struct gc_cli_resource *res;
    const char *method;
    const char *suffix; /* "/start" */
    const char *done;   /* printed before the last argument when the answer is 204 */
    bool body;          /* always send a JSON object, {} when no option filled it */
    const struct gc_cli_resource *shows; /* the answer's subtables, or NULL */
};

/* A collection under one object (an asset's history): GET parent->path/ID suffix, listed
 * with items's columns. */
struct gc_cli_sublist {
    const struct gc_cli_resource *parent;
    const char *suffix; /* "/history" */
    const struct gc_cli_resource *items;
};

/* Options every list (and every update/delete) shares. */
#define GC_CLI_OPT_LIMIT                                                                  \
    {.name = "limit", .type = GC_OPT_INT, .metavar = "N", .key = "limit", .min = 1,       \
     .max = 500,                                                                           \
     .help = "items per page (server default 50); with --all, the size of each page"}
#define GC_CLI_OPT_CURSOR                                                                 \
    {.name = "cursor", .type = GC_OPT_STRING, .metavar = "CURSOR", .key = "cursor",        \
     .help = "start after CURSOR, the next_cursor of the previous page"}
#define GC_CLI_OPT_ALL                                                                    \
    {.name = "all", .type = GC_OPT_FLAG,                                                   \
     .help = "follow next_cursor and list every page (json output: one items array)"}
#define GC_CLI_OPT_IF_MATCH                                                               \
    {.name = "if-match", .type = GC_OPT_INT, .metavar = "VERSION", .min = 0,               \
     .max = LLONG_MAX,                                                                     \
     .help = "change it only if its version is still VERSION, else fail with exit code 6"}

#define GC_CLI_LIST_PAGING GC_CLI_OPT_LIMIT, GC_CLI_OPT_CURSOR, GC_CLI_OPT_ALL

/* An option that names another object; the server gets its id. */
#define GC_CLI_REF_OPT(optname, jsonkey, resource, helptext, fl)                            \
    {.name = optname, .type = GC_OPT_STRING, .metavar = "NAME|ID", .key = jsonkey,          \
     .ref = &resource, .flags = fl, .help = helptext}

/* Departments, looked up by name (GET ?name=) for the options that name one. */
extern const struct gc_cli_resource gc_cli_dept_ref;

/* Options of the commands whose answer is a job. */
#define GC_CLI_OPT_WAIT                                                                   \
    {.name = "wait", .type = GC_OPT_FLAG,                                                  \
     .help = "wait for the job to end, showing its progress like 'job wait', then show the " \
             "result; exit code 9 when the job fails"}
#define GC_CLI_OPT_TIMEOUT                                                                \
    {.name = "timeout", .type = GC_OPT_INT, .metavar = "SECONDS", .min = 0, .max = 31536000, \
     .help = "with --wait: stop waiting after SECONDS (exit code 1; the job goes on)"}

/* Generic commands; cmd->data is a struct gc_cli_resource. Options with a `key` become
 * query parameters (list) or body fields (create, update). */
int gc_cli_res_list(struct gc_cli *cli, const struct gc_cli_cmd *cmd,
                    const struct gc_cli_args *args);
int gc_cli_res_get(struct gc_cli *cli, const struct gc_cli_cmd *cmd,
                   const struct gc_cli_args *args);
int gc_cli_res_create(struct gc_cli *cli, const struct gc_cli_cmd *cmd,
                      const struct gc_cli_args *args);
int gc_cli_res_update(struct gc_cli *cli, const struct gc_cli_cmd *cmd,
                      const struct gc_cli_args *args);
int gc_cli_res_delete(struct gc_cli *cli, const struct gc_cli_cmd *cmd,
                      const struct gc_cli_args *args);
/* cmd->data is a struct gc_cli_sublist; paged like a list. */
int gc_cli_res_sublist(struct gc_cli *cli, const struct gc_cli_cmd *cmd,
                       const struct gc_cli_args *args);
/* One object computed by the server (a report): GET res->path with every keyed option as a
 * query parameter, shown with res's subtables. */
int gc_cli_res_view(struct gc_cli *cli, const struct gc_cli_cmd *cmd,
                    const struct gc_cli_args *args);
/* cmd->data is a struct gc_cli_action; GC_OPT_QUERY options go in the query, the others in
 * the body (none: no body). */
int gc_cli_res_action(struct gc_cli *cli, const struct gc_cli_cmd *cmd,
                      const struct gc_cli_args *args);

/* Turns a name of res into its id by asking GET res->path?name=VALUE (when res->by_name and
 * value does not look like an id); *id is a copy of value otherwise. Caller frees *id.
 * Returns GC_CLI_OK, or after printing GC_CLI_ENOTFOUND (no such name), GC_CLI_ECONFLICT
 * (several objects have it) or the request's exit code. */
int gc_cli_resolve(struct gc_cli *cli, const struct gc_cli_resource *res, const char *value,
                   char **id);

/* Polls job id until it ends, drawing progress as 'job wait' does. With --output json the
 * final job is printed when it did not succeed, and also on success if json_on_success.
 * Returns GC_CLI_OK (succeeded), GC_CLI_EJOB (failed, cancelled), GC_CLI_EFAIL (timeout)
 * or the exit code of a request that failed. */
int gc_cli_job_wait(struct gc_cli *cli, const char *id, long long timeout_s,
                    bool json_on_success);

/* Like gc_cli_show, but in table form res's subtables follow the fields as tables. */
void gc_cli_show_res(const struct gc_cli *cli, const struct gc_cli_resource *res,
                     const json_t *obj);

/* Appends base + "/" + escaped id (+ suffix) to b. Returns GC_CLI_OK, or GC_CLI_EUSAGE
 * after printing when the id is empty, "." or "..". */
int gc_cli_id_path(const struct gc_cli *cli, struct gc_buf *b, const char *base, const char *id,
                   const char *suffix);

/* Prints one object in the chosen output format. */
void gc_cli_show(const struct gc_cli *cli, const json_t *obj);

/* GETs path and hands the JSON object over in *out (caller json_decref()s). Returns
 * GC_CLI_OK or an exit code after printing. */
int gc_cli_get_object(struct gc_cli *cli, const char *path, json_t **out);

#endif
