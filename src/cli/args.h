/* Command-line parsing and --help generation, both driven by the gc_cli_cmd/gc_cli_opt tables. */
#ifndef GC_CLI_ARGS_H
#define GC_CLI_ARGS_H

#include "cli/cli.h"

#include <stdio.h>

/* Parses argv[1..argc-1] against the tree under root. Global options (--url, --token,
 * --output, --help) are accepted at every level and stored in cli.
 * Returns GC_CLI_OK with *cmdp set to the leaf to run and *done false; or an exit code with
 * *done true when there is nothing to run (help was printed: GC_CLI_OK; a usage error was
 * printed: GC_CLI_EUSAGE). */
int gc_cli_parse(struct gc_cli *cli, const struct gc_cli_cmd *root, int argc, char **argv,
                 const struct gc_cli_cmd **cmdp, struct gc_cli_args *args, bool *done);

/* Prints the help of cmd; path is the full command ("govcloud user create"). */
void gc_cli_help(FILE *f, const struct gc_cli_cmd *cmd, const char *path, bool is_root);

#endif
