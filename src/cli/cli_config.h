/* Where the CLI finds its server and token (flags, environment, config file) and how
 * login/logout keep the config file. */
#ifndef GC_CLI_CONFIG_H
#define GC_CLI_CONFIG_H

#include "cli/cli.h"

#define GC_CLI_DEFAULT_URL "http://127.0.0.1:8080"

/* Fills cli->url, cli->token, their sources and cli->config_path. First found wins: --url /
 * --token, then GOVCLOUD_URL / GOVCLOUD_TOKEN, then the config file. A token from the config
 * file is used only when the URL in effect is the one saved beside it, so that pointing the
 * CLI at another server never sends it a token meant for the first one.
 * Returns GC_CLI_OK, or an exit code after printing the error. */
int gc_cli_config_resolve(struct gc_cli *cli);

/* Writes url and token into the config file (mode 0600, directory 0700), keeping its other
 * lines. Returns GC_CLI_OK or GC_CLI_EFAIL after printing the error. */
int gc_cli_config_save(const struct gc_cli *cli, const char *url, const char *token);

/* Removes the token line from the config file, if any. *removed tells whether there was
 * one. Returns GC_CLI_OK or GC_CLI_EFAIL after printing the error. */
int gc_cli_config_forget_token(const struct gc_cli *cli, bool *removed);

/* The token saved in the config file (whatever URL it belongs to), or NULL; caller frees. */
char *gc_cli_config_saved_token(const struct gc_cli *cli);

/* Frees what gc_cli_config_resolve() put into cli, wiping the token. */
void gc_cli_config_release(struct gc_cli *cli);

#endif
