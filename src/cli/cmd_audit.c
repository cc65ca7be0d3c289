/* audit list and audit verify. verify's exit code (10 when the hash chain is broken) is what
 * a monitoring script checks, so it is distinct from every transport or HTTP failure. */
#include "cli/cmds.h"

#include "cli/http.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>

#include "util/banned.h" /* last: it redefines library names */

/* The value of obj[key] as table text, "-" when absent. */
static char *field_text(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    struct gc_buf raw, out;
    gc_buf_init(&raw, GC_BUF_UNLIMITED);
    gc_buf_init(&out, GC_BUF_UNLIMITED);
    if (gc_cli_value_text(v ? v : json_null(), &raw) != 0 ||
        gc_cli_sanitize(&out, gc_buf_str(&raw), 0) != 0)
        GC_BUG("unlimited buffer refused data");
    gc_buf_release(&raw);
    return gc_buf_steal(&out);
}

static int verify_run(struct gc_cli *cli, const struct gc_cli_cmd *cmd,
                      const struct gc_cli_args *args)
{
    json_t *r = NULL;
    (void)cmd;
    (void)args;
    int rc = gc_cli_get_object(cli, "/v1/audit-events/verify", &r);
    if (rc != GC_CLI_OK)
        return rc;

    json_t *intact = json_object_get(r, "intact");
    if (!json_is_boolean(intact)) {
        rc = gc_cli_fail(GC_CLI_EFAIL, "the server's verify answer has no 'intact' field");
    } else if (cli->output == GC_CLI_OUT_JSON) {
        gc_cli_print_json(stdout, r);
        rc = json_is_true(intact) ? GC_CLI_OK : GC_CLI_EAUDIT;
    } else if (json_is_true(intact)) {
        char *events = field_text(r, "events");
        printf("audit chain intact: %s events\n", events);
        free(events);
    } else {
        char *seq = field_text(r, "first_bad_seq");
        char *problem = field_text(r, "problem");
        printf("audit chain broken at event %s: %s\n", seq, problem);
        free(seq);
        free(problem);
        rc = GC_CLI_EAUDIT;
    }
    json_decref(r);
    return rc;
}

static const struct gc_cli_col audit_cols[] = {
    {"SEQ", "seq", 0},
    {"TIME", "time", 0},
    {"ACTOR", "actor_name", 24},
    {"ACTION", "action", 0},
    {"RESOURCE_TYPE", "resource_type", 0},
    {"RESOURCE_ID", "resource_id", 0},
    {"OUTCOME", "outcome", 0},
    {"REASON", "reason", 40},
    {0},
};

static const struct gc_cli_resource audit_res = {
    .noun = "audit event", .path = "/v1/audit-events", .cols = audit_cols};

static const char *const outcome_choices[] = {"success", "failure", "denied", NULL};

static const struct gc_cli_opt audit_list_opts[] = {
    {.name = "actor-name", .type = GC_OPT_STRING, .metavar = "NAME", .key = "actor_name",
     .help = "only events by this user name"},
    {.name = "action", .type = GC_OPT_STRING, .metavar = "ACTION", .key = "action",
     .help = "only this action, e.g. department.create or auth.login"},
    {.name = "resource-type", .type = GC_OPT_STRING, .metavar = "TYPE", .key = "resource_type",
     .help = "only events about this kind of resource, e.g. department"},
    {.name = "resource-id", .type = GC_OPT_STRING, .metavar = "ID", .key = "resource_id",
     .help = "only events about this resource"},
    {.name = "outcome", .type = GC_OPT_CHOICE, .metavar = "OUTCOME", .key = "outcome",
     .choices = outcome_choices, .help = "only events with this outcome"},
    {.name = "since", .type = GC_OPT_TIME, .metavar = "TIME", .key = "since",
     .help = "only events at or after TIME (RFC 3339, e.g. 2026-11-25T00:00:00Z)"},
    {.name = "until", .type = GC_OPT_TIME, .metavar = "TIME", .key = "until",
     .help = "only events before TIME (RFC 3339)"},
    GC_CLI_OPT_LIMIT, GC_CLI_OPT_CURSOR, GC_CLI_OPT_ALL, {0},
};

static const struct gc_cli_cmd audit_list = {
    .name = "list", .summary = "List audit events, oldest first", .opts = audit_list_opts,
    .run = gc_cli_res_list, .data = &audit_res};

static const struct gc_cli_cmd audit_verify = {
    .name = "verify", .summary = "Check the audit hash chain",
    .description = "Prints 'audit chain intact: N events' and exits 0, or 'audit chain broken "
                   "at event SEQ: PROBLEM' and exits 10.",
    .run = verify_run};

static const struct gc_cli_cmd *const audit_subs[] = {&audit_list, &audit_verify, NULL};

const struct gc_cli_cmd gc_cli_cmd_audit = {
    .name = "audit", .summary = "Read and verify the audit trail",
    .description = "Readable by platform_admin and auditor (all events) and department_admin "
                   "(events of its subtree).",
    .subs = audit_subs};
