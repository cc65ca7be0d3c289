/* The CLI's commands, and the generic list/get/create/update/delete that every REST
 * collection shares (departments, users, API keys, audit events, jobs). */
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
extern const struct gc_cli_cmd gc_cli_cmd_version;

/* A REST collection, the data of the generic commands below. */
struct gc_cli_resource {
    const char *noun;              /* "department", for messages */
    const char *path;              /* "/v1/departments" */
    const struct gc_cli_col *cols; /* list table columns */
    bool has_password;             /* create/update take --password/--password-stdin */
    const char *create_note;       /* printed on stderr after a create, or NULL */
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
