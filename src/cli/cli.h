/* The govcloud CLI's shared vocabulary: exit codes, the command/option tables that drive both
 * argument parsing and --help, and the per-invocation context every command receives. */
#ifndef GC_CLI_H
#define GC_CLI_H

#include <stdbool.h>
#include <stddef.h>

/* Exit codes are the CLI's error vocabulary: scripts rely on them, so they are stable. The
 * same table prints them in `govcloud --help`; docs/cli.md repeats it. */
#define GC_CLI_EXITS(X)                                                                \
    X(GC_CLI_OK, 0, "success")                                                         \
    X(GC_CLI_EFAIL, 1, "other error (including job wait --timeout and HTTP 429/5xx)")  \
    X(GC_CLI_EUSAGE, 2, "usage error: unknown command or option, bad option value")    \
    X(GC_CLI_ECONNECT, 3, "cannot connect to the server")                              \
    X(GC_CLI_EAUTH, 4, "authentication needed or failed (HTTP 401)")                   \
    X(GC_CLI_ENOTFOUND, 5, "not found (HTTP 404)")                                     \
    X(GC_CLI_ECONFLICT, 6, "conflict or precondition failed (HTTP 409, 412)")          \
    X(GC_CLI_EFORBIDDEN, 7, "forbidden (HTTP 403)")                                    \
    X(GC_CLI_EINVALID, 8, "invalid request (HTTP 400, 413, 415, 422)")                 \
    X(GC_CLI_EJOB, 9, "job failed or was cancelled (job wait)")                        \
    X(GC_CLI_EAUDIT, 10, "audit chain broken (audit verify)")

enum gc_cli_exit {
#define GC_CLI_X_ENUM(name, val, text) name = val,
    GC_CLI_EXITS(GC_CLI_X_ENUM)
#undef GC_CLI_X_ENUM
};

enum gc_cli_output { GC_CLI_OUT_TABLE, GC_CLI_OUT_JSON };

/* Where the server URL or the token came from; first found wins in this order. */
enum gc_cli_source { GC_CLI_SRC_NONE, GC_CLI_SRC_FLAG, GC_CLI_SRC_ENV, GC_CLI_SRC_CONFIG,
                     GC_CLI_SRC_DEFAULT };

enum gc_cli_opt_type {
    GC_OPT_FLAG,   /* no value */
    GC_OPT_STRING, /* any value */
    GC_OPT_INT,    /* integer within [min, max] */
    GC_OPT_BOOL,   /* true or false */
    GC_OPT_TIME,   /* RFC 3339 */
    GC_OPT_CHOICE, /* one of choices */
    GC_OPT_NUMBER, /* a finite decimal number, sent as a JSON number */
    GC_OPT_JSON,   /* a JSON text (an object, an array, null...), sent as that value */
};

/* Option flags. */
#define GC_OPT_REQUIRED 0x1u /* the command refuses to run without it */
#define GC_OPT_NULLABLE 0x2u /* the value "none" (and "root") sends JSON null */
#define GC_OPT_SENDS_FALSE 0x4u /* a FLAG with a key sends false instead of true */
#define GC_OPT_LIST 0x8u  /* a comma-separated list, sent as a JSON array of strings */
#define GC_OPT_QUERY 0x10u /* sent as a query parameter even by commands that send a body */
#define GC_OPT_MAP 0x20u  /* "k=v,k=v", sent as a JSON object of strings */
#define GC_OPT_FILE 0x40u /* the value names a file whose text is sent as a string */

struct gc_cli_resource;

/* One option. `key` is the JSON body field or query parameter the option fills, so that the
 * generic resource commands build requests from the same table that parses and documents. */
struct gc_cli_opt {
    const char *name; /* long name without "--"; NULL ends a table */
    char shortopt;    /* 0 when none */
    enum gc_cli_opt_type type;
    const char *metavar; /* shown in help after the name, for options that take a value */
    const char *help;
    const char *key;
    unsigned flags;
    const char *const *choices; /* GC_OPT_CHOICE: NULL-terminated */
    long long min, max;         /* GC_OPT_INT */
    /* the value names an object of this collection by name or id; the id is sent */
    const struct gc_cli_resource *ref;
};

#define GC_CLI_MAX_OPTS 32
#define GC_CLI_MAX_POS 4

/* What the parser found for the chosen command. Values point into argv. */
struct gc_cli_args {
    const char *val[GC_CLI_MAX_OPTS]; /* indexed like cmd->opts; flags are "1" */
    const char *pos[GC_CLI_MAX_POS];
    int npos;
};

struct gc_cli;
struct gc_cli_cmd;

typedef int (*gc_cli_run_fn)(struct gc_cli *cli, const struct gc_cli_cmd *cmd,
                             const struct gc_cli_args *args);

/* A node of the command tree: a group (subs != NULL) or a leaf (run != NULL). */
struct gc_cli_cmd {
    const char *name;
    const char *summary;                   /* one line, shown in the parent's help */
    const char *description;               /* extra paragraph for the command's own help */
    const char *posargs;                   /* e.g. "ID"; NULL when none */
    int npos;                              /* exact number of positional arguments */
    const struct gc_cli_opt *opts;         /* command options (NULL-name terminated) or NULL */
    gc_cli_run_fn run;
    const struct gc_cli_cmd *const *subs;  /* NULL-terminated */
    const void *data;                      /* per-command data, e.g. a resource descriptor */
    bool local; /* main does not resolve the server first; the command does it if needed */
};

struct gc_curl_handle; /* opaque wrapper around CURL*, see http.c */

/* Per-invocation context. Created in main, passed to every command. */
struct gc_cli {
    /* from the global options */
    const char *flag_url;   /* points into argv */
    const char *flag_token; /* points into argv */
    enum gc_cli_output output;

    /* resolved by gc_cli_config_resolve(); owned */
    char *url; /* without a trailing slash */
    char *token; /* NULL when none is known */
    enum gc_cli_source url_src;
    enum gc_cli_source token_src;
    char *config_path; /* NULL when neither XDG_CONFIG_HOME nor HOME is known */
    char *saved_url;   /* the URL of a saved token that was not used (another server), or NULL */

    char cmd_path[96]; /* "govcloud user create", for messages */
    bool stdout_tty;
    void *curl; /* CURL *, created on first request, owned */
};

/* Prints "govcloud: error: ..." plus a pointer to --help on stderr; returns GC_CLI_EUSAGE. */
int gc_cli_usage_error(const struct gc_cli *cli, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Prints "govcloud: error: ..." on stderr; returns `code`. */
int gc_cli_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "govcloud: warning: ..." on stderr. */
void gc_cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The value of option `name` of cmd, or NULL when it was not given. */
const char *gc_cli_arg(const struct gc_cli_cmd *cmd, const struct gc_cli_args *args,
                       const char *name);

/* 1 for true/on, 0 for false/off, -1 for anything else (GC_OPT_BOOL values). */
int gc_cli_bool_value(const char *v);

/* Whether cmd has an option called name (so that shared code can ask gc_cli_arg safely). */
bool gc_cli_has_opt(const struct gc_cli_cmd *cmd, const char *name);

#endif
