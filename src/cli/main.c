/* govcloud: the command-line client of govcloudd. main only wires the command tree, the
 * server resolution and libcurl together; the commands live in cmd_*.c. */
#include "cli/args.h"
#include "cli/cli_config.h"
#include "cli/cmds.h"
#include "cli/http.h"

#include <curl/curl.h>
#include <stdio.h>
#include <unistd.h>

#include "util/banned.h" /* last: it redefines library names */

static const struct gc_cli_cmd *const root_subs[] = {
    &gc_cli_cmd_login,         &gc_cli_cmd_logout,
    &gc_cli_cmd_whoami,        &gc_cli_cmd_department,
    &gc_cli_cmd_user,          &gc_cli_cmd_api_key,
    &gc_cli_cmd_audit,         &gc_cli_cmd_job,
    &gc_cli_cmd_host,          &gc_cli_cmd_flavor,
    &gc_cli_cmd_image,         &gc_cli_cmd_vm,
    &gc_cli_cmd_volume,        &gc_cli_cmd_network,
    &gc_cli_cmd_security_group, &gc_cli_cmd_server_group,
    &gc_cli_cmd_quota,         &gc_cli_cmd_alarm,
    &gc_cli_cmd_alarm_rule,    &gc_cli_cmd_silence,
    &gc_cli_cmd_notification_channel, &gc_cli_cmd_check,
    &gc_cli_cmd_availability,  &gc_cli_cmd_maintenance_window,
    &gc_cli_cmd_metric,        &gc_cli_cmd_asset,
    &gc_cli_cmd_sensor,        &gc_cli_cmd_supervision,
    &gc_cli_cmd_version,       NULL,
};

static const struct gc_cli_cmd root = {
    .name = "govcloud",
    .summary = "Command-line client for govcloud, the operations-management platform of a "
               "government cloud.",
    .subs = root_subs,
};

int main(int argc, char **argv)
{
    struct gc_cli cli = {.output = GC_CLI_OUT_TABLE};
    struct gc_cli_args args;
    const struct gc_cli_cmd *cmd = NULL;
    bool done;
    int rc;

    cli.stdout_tty = isatty(STDOUT_FILENO) == 1;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "govcloud: error: cannot initialise libcurl\n");
        return GC_CLI_EFAIL;
    }
    rc = gc_cli_parse(&cli, &root, argc, argv, &cmd, &args, &done);
    if (done)
        goto cleanup;
    if (!cmd->local) {
        rc = gc_cli_config_resolve(&cli);
        if (rc != GC_CLI_OK)
            goto cleanup;
    }
    rc = cmd->run(&cli, cmd, &args);

cleanup:
    gc_cli_http_close(&cli);
    gc_cli_config_release(&cli);
    curl_global_cleanup();
    /* a full disk or a closed pipe must not look like success to a script */
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "govcloud: error: cannot write to standard output\n");
        if (rc == GC_CLI_OK)
            rc = GC_CLI_EFAIL;
    }
    return rc;
}
