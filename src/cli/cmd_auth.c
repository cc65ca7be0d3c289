/* login, logout, whoami and version: the commands about the session rather than a resource.
 * The token itself is never printed; only where it was saved. */
#include "cli/cmds.h"

#include "cli/cli_config.h"
#include "cli/http.h"
#include "cli/prompt.h"
#include "util/error.h"
#include "util/mem.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "util/banned.h" /* last: it redefines library names */

/* Plain http to anything but the loopback sends the password and the token in clear text.
 * The host is compared whole: "http://127.0.0.1.example.org" is not the loopback. */
static bool url_is_cleartext_remote(const char *url)
{
    CURLU *u;
    char *host = NULL;
    bool remote = true;
    struct in_addr a4;

    if (strncmp(url, "http://", 7) != 0)
        return false;
    u = curl_url();
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
        remote = !(strcmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0 ||
                   (inet_pton(AF_INET, host, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127));
    curl_free(host);
    curl_url_cleanup(u);
    return remote;
}

/* A token that could not be saved is of no use to anyone: revoke it rather than leave a
 * live bearer secret on the server that nobody can log out. */
static void revoke_unsaved(struct gc_cli *cli, const char *token)
{
    struct gc_cli_resp resp;
    char *keep = cli->token;
    cli->token = gc_strdup(token);
    struct gc_cli_req req = {.method = "DELETE", .path = "/v1/tokens/current", .quiet = true};
    if (gc_cli_http(cli, &req, &resp) != GC_CLI_OK)
        gc_cli_warn("the new token could not be revoked either: %s", resp.error);
    gc_cli_resp_release(&resp);
    gc_cli_secret_free(cli->token);
    cli->token = keep;
}

static int login_run(struct gc_cli *cli, const struct gc_cli_cmd *cmd,
                     const struct gc_cli_args *args)
{
    const char *user_flag = gc_cli_arg(cmd, args, "username");
    const char *pw_flag = gc_cli_arg(cmd, args, "password");
    bool pw_stdin = gc_cli_arg(cmd, args, "password-stdin") != NULL;
    char *username = NULL, *password = NULL;
    json_t *body = NULL;
    struct gc_cli_resp resp = {0};
    int rc;

    if (pw_flag && pw_stdin)
        return gc_cli_usage_error(cli, "give --password or --password-stdin, not both");
    if (!cli->config_path)
        return gc_cli_fail(GC_CLI_EFAIL, "nowhere to save the token: set HOME or "
                                         "XDG_CONFIG_HOME (or use an API key as GOVCLOUD_TOKEN)");
    if (user_flag) {
        username = gc_strdup(user_flag);
        rc = GC_CLI_OK;
    } else if (gc_cli_stdin_is_tty() && !pw_stdin) {
        rc = gc_cli_prompt("Username: ", false, &username);
    } else {
        return gc_cli_usage_error(cli, "missing option --username");
    }
    if (rc != GC_CLI_OK)
        goto cleanup;

    if (pw_flag) {
        password = gc_strdup(pw_flag);
    } else if (pw_stdin) {
        rc = gc_cli_read_stdin_secret("password", &password);
    } else if (gc_cli_stdin_is_tty()) {
        rc = gc_cli_prompt("Password: ", true, &password);
    } else {
        rc = gc_cli_usage_error(cli, "no password: give --password-stdin to read it from "
                                     "standard input");
    }
    if (rc != GC_CLI_OK)
        goto cleanup;

    if (url_is_cleartext_remote(cli->url))
        gc_cli_warn("%s is plain http: the password and the token cross the network "
                    "unencrypted", cli->url);

    body = json_pack("{s:s,s:s}", "username", username, "password", password);
    if (!body) {
        rc = gc_cli_usage_error(cli, "the username or password is not valid UTF-8");
        goto cleanup;
    }
    struct gc_cli_req req = {.method = "POST", .path = "/v1/tokens", .body = body,
                             .no_auth = true};
    rc = gc_cli_http(cli, &req, &resp);
    if (rc != GC_CLI_OK)
        goto cleanup;
    const char *token = json_string_value(json_object_get(resp.json, "token"));
    if (!token) {
        rc = gc_cli_fail(GC_CLI_EFAIL, "the server's answer to POST /v1/tokens has no token");
        goto cleanup;
    }
    rc = gc_cli_config_save(cli, cli->url, token);
    if (rc != GC_CLI_OK) {
        revoke_unsaved(cli, token);
        goto cleanup;
    }

    /* the answer holds the token: drop it before anything is shown */
    json_object_del(resp.json, "token");
    if (cli->output == GC_CLI_OUT_JSON) {
        json_object_set_new(resp.json, "config_file", json_string(cli->config_path));
        gc_cli_print_json(stdout, resp.json);
    } else {
        json_t *user = json_object_get(resp.json, "user");
        const char *name = json_string_value(json_object_get(user, "username"));
        const char *role = json_string_value(json_object_get(user, "role"));
        const char *exp = json_string_value(json_object_get(resp.json, "expires_at"));
        struct gc_buf safe;
        gc_buf_init(&safe, GC_BUF_UNLIMITED);
        if (gc_cli_sanitize(&safe, name ? name : username, 64) != 0)
            GC_BUG("unlimited buffer refused data");
        printf("logged in to %s as %s%s%s%s\n", cli->url, gc_buf_str(&safe), role ? " (" : "",
               role ? role : "", role ? ")" : "");
        printf("token saved in %s%s%s\n", cli->config_path, exp ? ", valid until " : "",
               exp ? exp : "");
        gc_buf_release(&safe);
    }
    if (cli->token_src == GC_CLI_SRC_FLAG || cli->token_src == GC_CLI_SRC_ENV)
        gc_cli_warn("%s is set and takes precedence over the saved token",
                    cli->token_src == GC_CLI_SRC_FLAG ? "--token" : "GOVCLOUD_TOKEN");

cleanup:
    json_decref(body);
    gc_cli_resp_release(&resp);
    gc_cli_secret_free(username);
    gc_cli_secret_free(password);
    return rc;
}

static int logout_run(struct gc_cli *cli, const struct gc_cli_cmd *cmd,
                      const struct gc_cli_args *args)
{
    struct gc_cli_resp resp;
    bool removed = false;
    char *saved = NULL;
    int rc;
    (void)cmd;
    (void)args;

    if (!cli->token) {
        if (cli->output == GC_CLI_OUT_TABLE)
            printf("not logged in to %s\n", cli->url);
        return GC_CLI_OK;
    }
    struct gc_cli_req req = {.method = "DELETE", .path = "/v1/tokens/current", .quiet = true};
    rc = gc_cli_http(cli, &req, &resp);
    if (rc != GC_CLI_OK && resp.status != 401) {
        /* keep the saved token, so that the revocation can be tried again */
        gc_cli_report(&resp);
        fprintf(stderr, "govcloud: the token was not revoked and is still saved; run 'govcloud "
                        "logout' again later\n");
        gc_cli_resp_release(&resp);
        return rc;
    }
    bool was_valid = rc == GC_CLI_OK;
    gc_cli_resp_release(&resp);

    /* forget the token only when it is the saved one, not one given with --token/env */
    saved = gc_cli_config_saved_token(cli);
    if (cli->token_src == GC_CLI_SRC_CONFIG || (saved && strcmp(saved, cli->token) == 0))
        rc = gc_cli_config_forget_token(cli, &removed);
    else
        rc = GC_CLI_OK;
    gc_cli_secret_free(saved);
    if (rc != GC_CLI_OK)
        return rc;
    if (cli->output == GC_CLI_OUT_TABLE) {
        printf("%s %s%s\n", was_valid ? "logged out from" : "the token had already expired or "
                                                           "been revoked at",
               cli->url, removed ? "; token removed from the config file" : "");
    }
    return GC_CLI_OK;
}

static int whoami_run(struct gc_cli *cli, const struct gc_cli_cmd *cmd,
                      const struct gc_cli_args *args)
{
    json_t *me = NULL;
    (void)cmd;
    (void)args;
    int rc = gc_cli_get_object(cli, "/v1/users/me", &me);
    if (rc == GC_CLI_OK)
        gc_cli_show(cli, me);
    json_decref(me);
    return rc;
}

static int version_run(struct gc_cli *cli, const struct gc_cli_cmd *cmd,
                       const struct gc_cli_args *args)
{
    bool client_only = gc_cli_arg(cmd, args, "client") != NULL;
    json_t *server = NULL, *out = NULL;
    struct gc_cli_resp resp = {0};
    int rc = GC_CLI_OK;

    if (!client_only) {
        rc = gc_cli_config_resolve(cli); /* version is `local`: main did not resolve */
        if (rc == GC_CLI_OK) {
            struct gc_cli_req req = {.method = "GET", .path = "/v1/version", .no_auth = true,
                                     .quiet = true};
            rc = gc_cli_http(cli, &req, &resp);
            if (rc == GC_CLI_OK && !json_is_object(resp.json))
                rc = GC_CLI_EFAIL;
            if (rc == GC_CLI_OK)
                server = json_incref(resp.json);
        }
    }
    if (cli->output == GC_CLI_OUT_JSON) {
        out = json_pack("{s:{s:s}}", "client", "version", GC_VERSION);
        if (server)
            json_object_set(out, "server", server);
        gc_cli_print_json(stdout, out);
    } else {
        printf("client  govcloud %s\n", GC_VERSION);
        if (server) {
            json_t *v = json_object_get(server, "version");
            json_t *schema = json_object_get(server, "schema_version");
            json_t *store = json_object_get(server, "store");
            struct gc_buf b;
            gc_buf_init(&b, GC_BUF_UNLIMITED);
            if (gc_buf_adds(&b, "server  govcloudd ") != 0 ||
                (v && gc_cli_value_text(v, &b) != 0) ||
                (schema && (gc_buf_adds(&b, ", schema ") != 0 ||
                            gc_cli_value_text(schema, &b) != 0)) ||
                (store && (gc_buf_adds(&b, ", store ") != 0 || gc_cli_value_text(store, &b) != 0)))
                GC_BUG("unlimited buffer refused data");
            struct gc_buf safe;
            gc_buf_init(&safe, GC_BUF_UNLIMITED);
            if (gc_cli_sanitize(&safe, gc_buf_str(&b), 200) != 0)
                GC_BUG("unlimited buffer refused data");
            printf("%s (%s)\n", gc_buf_str(&safe), cli->url);
            gc_buf_release(&safe);
            gc_buf_release(&b);
        }
    }
    if (rc != GC_CLI_OK && rc != GC_CLI_EUSAGE) {
        if (resp.error[0])
            gc_cli_fail(rc, "server version unknown: %s", resp.error);
        else
            gc_cli_fail(rc, "server version unknown: the answer to GET /v1/version is not an "
                            "object");
    }
    json_decref(out);
    json_decref(server);
    gc_cli_resp_release(&resp);
    return rc;
}

static const struct gc_cli_opt login_opts[] = {
    {.name = "username", .shortopt = 'u', .type = GC_OPT_STRING, .metavar = "NAME",
     .help = "who to log in as (asked for on a terminal when missing)"},
    {.name = "password-stdin", .type = GC_OPT_FLAG,
     .help = "read the password from the first line of standard input"},
    {.name = "password", .type = GC_OPT_STRING, .metavar = "PASSWORD",
     .help = "the password; visible in the process list, prefer --password-stdin or the "
             "prompt"},
    {0},
};

static const struct gc_cli_opt version_opts[] = {
    {.name = "client", .type = GC_OPT_FLAG, .help = "only the client's version; ask no server"},
    {0},
};

const struct gc_cli_cmd gc_cli_cmd_login = {
    .name = "login", .summary = "Log in and save the token in the config file",
    .description = "Calls POST /v1/tokens and writes url and token into "
                   "$XDG_CONFIG_HOME/govcloud/config (default ~/.config/govcloud/config), mode "
                   "0600. Without --password or --password-stdin the password is asked for on "
                   "the terminal, without echo.",
    .opts = login_opts, .run = login_run};

const struct gc_cli_cmd gc_cli_cmd_logout = {
    .name = "logout", .summary = "Revoke the token and remove it from the config file",
    .run = logout_run};

const struct gc_cli_cmd gc_cli_cmd_whoami = {
    .name = "whoami", .summary = "Show the user the token belongs to", .run = whoami_run};

const struct gc_cli_cmd gc_cli_cmd_version = {
    .name = "version", .summary = "Show the client's and the server's versions",
    .opts = version_opts, .run = version_run, .local = true};
