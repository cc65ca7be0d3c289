/* Command-line parsing and help for the CLI. One table per command both parses and documents
 * its options, so --help can never drift from what is accepted. */
#include "cli/args.h"

#include "cli/output.h"
#include "util/error.h"
#include "util/timeutil.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "util/banned.h" /* last: it redefines library names */

static const char *const output_choices[] = {"table", "json", NULL};

/* Accepted at every level of the command tree, before or after the command names. */
static const struct gc_cli_opt global_opts[] = {
    {.name = "url", .type = GC_OPT_STRING, .metavar = "URL",
     .help = "server address (default http://127.0.0.1:8080; else GOVCLOUD_URL, then the "
             "config file)"},
    {.name = "token", .type = GC_OPT_STRING, .metavar = "TOKEN",
     .help = "bearer token or API key (else GOVCLOUD_TOKEN, then the config file); visible "
             "to other local users in the process list, prefer the environment"},
    {.name = "output", .shortopt = 'o', .type = GC_OPT_CHOICE, .metavar = "FORMAT",
     .help = "table: aligned columns; json: the server's JSON, pretty-printed",
     .choices = output_choices},
    {.name = "help", .shortopt = 'h', .type = GC_OPT_FLAG, .help = "show this help and exit"},
    {0},
};
enum { GOPT_URL, GOPT_TOKEN, GOPT_OUTPUT, GOPT_HELP, GOPT_COUNT };

static void vmessage(const char *level, const char *fmt, va_list ap)
{
    fflush(stdout); /* keep stdout and stderr in order on a terminal */
    fprintf(stderr, "govcloud: %s: ", level);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

int gc_cli_usage_error(const struct gc_cli *cli, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage("error", fmt, ap);
    va_end(ap);
    fprintf(stderr, "Run '%s --help' for usage.\n", cli->cmd_path[0] ? cli->cmd_path : "govcloud");
    return GC_CLI_EUSAGE;
}

int gc_cli_fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage("error", fmt, ap);
    va_end(ap);
    return code;
}

void gc_cli_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage("warning", fmt, ap);
    va_end(ap);
}

int gc_cli_bool_value(const char *v)
{
    if (strcmp(v, "true") == 0 || strcmp(v, "on") == 0)
        return 1;
    if (strcmp(v, "false") == 0 || strcmp(v, "off") == 0)
        return 0;
    return -1;
}

bool gc_cli_has_opt(const struct gc_cli_cmd *cmd, const char *name)
{
    for (int i = 0; cmd->opts && cmd->opts[i].name; i++)
        if (strcmp(cmd->opts[i].name, name) == 0)
            return true;
    return false;
}

const char *gc_cli_arg(const struct gc_cli_cmd *cmd, const struct gc_cli_args *args,
                       const char *name)
{
    if (!cmd->opts)
        return NULL;
    for (int i = 0; cmd->opts[i].name; i++)
        if (strcmp(cmd->opts[i].name, name) == 0)
            return args->val[i];
    GC_BUG("command %s has no option --%s", cmd->name, name);
}

/* Finds an option by long name (namelen bytes) or short letter; returns its index or -1. */
static int find_opt(const struct gc_cli_opt *opts, const char *name, size_t namelen, char shortopt)
{
    if (!opts)
        return -1;
    for (int i = 0; opts[i].name; i++) {
        if (shortopt ? opts[i].shortopt == shortopt
                     : strlen(opts[i].name) == namelen &&
                           memcmp(opts[i].name, name, namelen) == 0)
            return i;
    }
    return -1;
}

static void append_choices(struct gc_buf *b, const char *const *choices)
{
    for (size_t i = 0; choices[i]; i++)
        if (gc_buf_addf(b, "%s%s", i ? ", " : "", choices[i]) != 0)
            return;
}

/* Checks a value against the option's type before anything is sent, so a typo is a usage
 * error (exit 2) rather than a round trip and a 400. */
static int check_value(const struct gc_cli *cli, const struct gc_cli_opt *o, const char *v)
{
    switch (o->type) {
    case GC_OPT_FLAG:
    case GC_OPT_STRING:
        return 0;
    case GC_OPT_INT: {
        char *end;
        if ((o->flags & GC_OPT_NULLABLE) && strcmp(v, "none") == 0)
            return 0;
        errno = 0;
        long long n = strtoll(v, &end, 10);
        if (errno || end == v || *end || n < o->min || n > o->max)
            return gc_cli_usage_error(cli, "invalid value '%s' for --%s: expected an integer "
                                           "from %lld to %lld", v, o->name, o->min, o->max);
        return 0;
    }
    case GC_OPT_BOOL:
        if (gc_cli_bool_value(v) >= 0)
            return 0;
        return gc_cli_usage_error(cli, "invalid value '%s' for --%s: expected true or false "
                                       "(or on, off)", v, o->name);
    case GC_OPT_TIME: {
        int64_t ms;
        if (gc_time_parse_rfc3339(v, &ms) == 0)
            return 0;
        return gc_cli_usage_error(cli, "invalid value '%s' for --%s: expected an RFC 3339 "
                                       "time such as 2026-11-25T13:22:09Z", v, o->name);
    }
    case GC_OPT_NUMBER: {
        char *end;
        errno = 0;
        double d = strtod(v, &end);
        if (errno || end == v || *end || !isfinite(d))
            return gc_cli_usage_error(cli, "invalid value '%s' for --%s: expected a number "
                                           "such as 0.9 or 80", v, o->name);
        return 0;
    }
    case GC_OPT_JSON: {
        json_error_t jerr;
        json_t *j = json_loads(v, JSON_DECODE_ANY, &jerr);
        if (!j)
            return gc_cli_usage_error(cli, "invalid value for --%s: not JSON (%s), e.g. "
                                           "'{\"key\": \"value\"}'", o->name, jerr.text);
        json_decref(j);
        return 0;
    }
    case GC_OPT_CHOICE:
        for (size_t i = 0; o->choices[i]; i++)
            if (strcmp(o->choices[i], v) == 0)
                return 0;
        struct gc_buf b;
        gc_buf_init(&b, 4096);
        append_choices(&b, o->choices);
        int rc = gc_cli_usage_error(cli, "invalid value '%s' for --%s: expected one of: %s", v,
                                    o->name, gc_buf_str(&b));
        gc_buf_release(&b);
        return rc;
    }
    return 0;
}

int gc_cli_parse(struct gc_cli *cli, const struct gc_cli_cmd *root, int argc, char **argv,
                 const struct gc_cli_cmd **cmdp, struct gc_cli_args *args, bool *done)
{
    const struct gc_cli_cmd *cmd = root;
    const char *gval[GOPT_COUNT] = {0};
    bool only_pos = false;
    int rc;

    memset(args, 0, sizeof(*args));
    snprintf(cli->cmd_path, sizeof(cli->cmd_path), "govcloud");
    *done = true;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!only_pos && strcmp(a, "--") == 0) {
            only_pos = true;
            continue;
        }
        if (!only_pos && a[0] == '-' && a[1] != '\0') {
            const char *name, *inline_val = NULL;
            size_t namelen;
            char shortopt = 0;
            if (a[1] == '-') {
                name = a + 2;
                const char *eq = strchr(name, '=');
                namelen = eq ? (size_t)(eq - name) : strlen(name);
                inline_val = eq ? eq + 1 : NULL;
            } else {
                shortopt = a[1];
                name = a + 1;
                namelen = 1;
                inline_val = a[2] ? a + 2 : NULL;
            }
            const struct gc_cli_opt *o;
            const char **slot;
            int idx = find_opt(cmd->opts, name, namelen, shortopt);
            if (idx >= 0) {
                o = &cmd->opts[idx];
                slot = &args->val[idx];
            } else if ((idx = find_opt(global_opts, name, namelen, shortopt)) >= 0) {
                o = &global_opts[idx];
                slot = &gval[idx];
            } else {
                /* only the name: "--password=..." must not echo the secret */
                return gc_cli_usage_error(cli, "unknown option '%s%.*s'", a[1] == '-' ? "--" : "-",
                                          (int)namelen, name);
            }
            const char *v;
            if (o->type == GC_OPT_FLAG) {
                if (inline_val)
                    return gc_cli_usage_error(cli, "option --%s takes no value", o->name);
                v = "1";
            } else if (inline_val) {
                v = inline_val;
            } else if (i + 1 < argc) {
                v = argv[++i];
            } else {
                return gc_cli_usage_error(cli, "option --%s needs a value (%s)", o->name,
                                          o->metavar);
            }
            if (*slot && o->type != GC_OPT_FLAG)
                return gc_cli_usage_error(cli, "option --%s given more than once", o->name);
            rc = check_value(cli, o, v);
            if (rc)
                return rc;
            *slot = v;
            continue;
        }
        if (cmd->subs) {
            const struct gc_cli_cmd *sub = NULL;
            for (size_t k = 0; cmd->subs[k]; k++)
                if (strcmp(cmd->subs[k]->name, a) == 0)
                    sub = cmd->subs[k];
            if (!sub)
                return gc_cli_usage_error(cli, "unknown command '%s'", a);
            cmd = sub;
            size_t len = strlen(cli->cmd_path);
            snprintf(cli->cmd_path + len, sizeof(cli->cmd_path) - len, " %s", sub->name);
            continue;
        }
        if (args->npos >= cmd->npos || args->npos >= GC_CLI_MAX_POS)
            return gc_cli_usage_error(cli, "unexpected argument '%s'", a);
        args->pos[args->npos++] = a;
    }

    if (gval[GOPT_HELP]) {
        gc_cli_help(stdout, cmd, cli->cmd_path, cmd == root);
        return GC_CLI_OK;
    }
    if (cmd->subs) {
        if (cmd == root && argc == 1) {
            gc_cli_help(stderr, cmd, cli->cmd_path, true);
            return GC_CLI_EUSAGE;
        }
        return gc_cli_usage_error(cli, "missing command after '%s'", cli->cmd_path);
    }
    if (args->npos < cmd->npos)
        return gc_cli_usage_error(cli, "missing argument %s", cmd->posargs);
    for (int i = 0; cmd->opts && cmd->opts[i].name; i++)
        if ((cmd->opts[i].flags & GC_OPT_REQUIRED) && !args->val[i])
            return gc_cli_usage_error(cli, "missing option --%s", cmd->opts[i].name);

    cli->flag_url = gval[GOPT_URL];
    cli->flag_token = gval[GOPT_TOKEN];
    if (gval[GOPT_OUTPUT])
        cli->output = strcmp(gval[GOPT_OUTPUT], "json") == 0 ? GC_CLI_OUT_JSON : GC_CLI_OUT_TABLE;
    *cmdp = cmd;
    *done = false;
    return GC_CLI_OK;
}

enum { HELP_COL = 28, HELP_WIDTH = 80 };

/* Prints text word-wrapped at HELP_WIDTH, continuation lines indented to `indent`. */
static void print_wrapped(FILE *f, const char *text, size_t col, size_t indent)
{
    const char *p = text;
    while (*p) {
        const char *sp = strchr(p, ' ');
        size_t wl = sp ? (size_t)(sp - p) : strlen(p);
        if (col > indent && col + 1 + wl > HELP_WIDTH) {
            fprintf(f, "\n%*s", (int)indent, "");
            col = indent;
        } else if (col > indent) {
            fputc(' ', f);
            col++;
        }
        fwrite(p, 1, wl, f);
        col += wl;
        p += wl;
        while (*p == ' ')
            p++;
    }
    fputc('\n', f);
}

static void print_opts(FILE *f, const struct gc_cli_opt *opts)
{
    for (int i = 0; opts && opts[i].name; i++) {
        const struct gc_cli_opt *o = &opts[i];
        char left[96];
        struct gc_buf text;
        if (o->shortopt)
            snprintf(left, sizeof(left), "  -%c, --%s%s%s", o->shortopt, o->name,
                     o->metavar ? " " : "", o->metavar ? o->metavar : "");
        else
            snprintf(left, sizeof(left), "      --%s%s%s", o->name, o->metavar ? " " : "",
                     o->metavar ? o->metavar : "");
        gc_buf_init(&text, 8192);
        if (gc_buf_adds(&text, o->help ? o->help : "") != 0)
            continue;
        if (o->type == GC_OPT_CHOICE) {
            if (gc_buf_adds(&text, " (one of: ") == 0) {
                append_choices(&text, o->choices);
                if (gc_buf_adds(&text, ")") != 0)
                    GC_BUG("help text over 8 KiB");
            }
        }
        if (o->type == GC_OPT_INT && o->max < 1000000000LL &&
            gc_buf_addf(&text, " (%lld-%lld)", o->min, o->max) != 0)
            GC_BUG("help text over 8 KiB");
        if ((o->flags & GC_OPT_REQUIRED) && gc_buf_adds(&text, " (required)") != 0)
            GC_BUG("help text over 8 KiB");
        size_t lw = strlen(left);
        fputs(left, f);
        if (lw + 2 > HELP_COL) {
            fprintf(f, "\n%*s", HELP_COL, "");
        } else {
            fprintf(f, "%*s", (int)(HELP_COL - lw), "");
        }
        print_wrapped(f, gc_buf_str(&text), HELP_COL, HELP_COL);
        gc_buf_release(&text);
    }
}

void gc_cli_help(FILE *f, const struct gc_cli_cmd *cmd, const char *path, bool is_root)
{
    if (cmd->subs)
        fprintf(f, "Usage: %s %s\n\n", path,
                is_root ? "[OPTIONS] COMMAND [ARGS]" : "COMMAND [ARGS] [OPTIONS]");
    else
        fprintf(f, "Usage: %s%s%s [OPTIONS]\n\n", path, cmd->posargs ? " " : "",
                cmd->posargs ? cmd->posargs : "");
    print_wrapped(f, cmd->summary, 0, 0);
    if (cmd->description) {
        fputc('\n', f);
        print_wrapped(f, cmd->description, 0, 0);
    }
    if (cmd->subs) {
        size_t w = 0;
        for (size_t i = 0; cmd->subs[i]; i++)
            if (strlen(cmd->subs[i]->name) > w)
                w = strlen(cmd->subs[i]->name);
        fprintf(f, "\nCommands:\n");
        for (size_t i = 0; cmd->subs[i]; i++)
            fprintf(f, "  %-*s  %s\n", (int)w, cmd->subs[i]->name, cmd->subs[i]->summary);
    }
    if (cmd->opts && cmd->opts[0].name) {
        fprintf(f, "\nOptions:\n");
        print_opts(f, cmd->opts);
    }
    fprintf(f, "\nGlobal options (accepted before or after the command):\n");
    print_opts(f, global_opts);
    if (is_root) {
        fprintf(f, "\nEnvironment:\n"
                   "  GOVCLOUD_URL     server address, when --url is not given\n"
                   "  GOVCLOUD_TOKEN   token or API key, when --token is not given\n"
                   "  XDG_CONFIG_HOME  where the config file lives (default ~/.config)\n"
                   "\nConfig file:\n"
                   "  $XDG_CONFIG_HOME/govcloud/config (default ~/.config/govcloud/config):\n"
                   "  'url = ...' and 'token = ...' lines, written by 'govcloud login' with\n"
                   "  mode 0600. Its token is sent only to the url saved beside it.\n"
                   "\nExit codes:\n");
#define GC_CLI_X_HELP(name, val, text) fprintf(f, "  %2d  %s\n", val, text);
        GC_CLI_EXITS(GC_CLI_X_HELP)
#undef GC_CLI_X_HELP
    }
    if (cmd->subs)
        fprintf(f, "\nRun '%s COMMAND --help' for the options of a command.\n", path);
}
