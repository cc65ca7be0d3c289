/* Reading passwords for the CLI: one line from standard input, or a prompt on the terminal
 * with echo turned off. Returned secrets are freed with gc_cli_secret_free(), which wipes. */
#ifndef GC_CLI_PROMPT_H
#define GC_CLI_PROMPT_H

#include <stdbool.h>
#include <stddef.h>

#define GC_CLI_MAX_SECRET 1024

/* Reads one line from standard input without its line end. Returns GC_CLI_OK with *out set
 * (caller frees with gc_cli_secret_free), or an exit code after printing the error (empty
 * input, a line longer than GC_CLI_MAX_SECRET). */
int gc_cli_read_stdin_secret(const char *what, char **out);

/* Prompts on the controlling terminal and reads a line; echo is off when secret. Returns
 * GC_CLI_OK with *out set, or an exit code after printing the error (no terminal, EOF). */
int gc_cli_prompt(const char *prompt, bool secret, char **out);

/* Whether standard input is a terminal, i.e. whether prompting makes sense. */
bool gc_cli_stdin_is_tty(void);

/* Wipes and frees a secret; NULL is fine. */
void gc_cli_secret_free(char *s);

#endif
