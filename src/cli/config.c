/* Server URL and token resolution for the CLI, and the config file that login writes.
 * The file holds a bearer secret, so it is written 0600 in a 0700 directory, atomically. */
#include "cli/cli_config.h"

#include "cli/http.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/banned.h" /* last: it redefines library names */

#define MAX_CONFIG_BYTES (64 * 1024)
#define MAX_TOKEN_BYTES 4096

struct cfg {
    char *url;   /* as written in the file; owned */
    char *token; /* owned, wiped on release */
    int mode;    /* permission bits of the file, -1 when it does not exist */
};

static void wipe_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

static void wipe_release(struct gc_buf *b)
{
    if (b->data)
        explicit_bzero(b->data, b->cap);
    gc_buf_release(b);
}

static void cfg_release(struct cfg *c)
{
    free(c->url);
    wipe_free(c->token);
    c->url = NULL;
    c->token = NULL;
}

/* $XDG_CONFIG_HOME/govcloud/config, else $HOME/.config/govcloud/config; NULL when neither
 * is set. XDG says a relative XDG_CONFIG_HOME is to be ignored. */
static char *config_path(void)
{
    const char *xdg = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");
    struct gc_buf b;
    gc_buf_init(&b, 4096);
    if (xdg && xdg[0] == '/') {
        if (gc_buf_addf(&b, "%s/govcloud/config", xdg) != 0)
            goto fail;
    } else if (home && home[0]) {
        if (gc_buf_addf(&b, "%s/.config/govcloud/config", home) != 0)
            goto fail;
    } else {
        goto fail;
    }
    return gc_buf_steal(&b);
fail:
    gc_buf_release(&b);
    return NULL;
}

/* Prints a problem with the config file: only a warning while resolving, since a run with
 * --url/--token does not need the file; an error when login/logout must write it. */
static int report(bool warn, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int report(bool warn, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (warn)
        gc_cli_warn("%s", msg);
    else
        gc_cli_fail(GC_CLI_EFAIL, "%s", msg);
    return GC_CLI_EFAIL;
}

/* Reads the whole file into text. A missing file is not an error: *mode is -1 then. */
static int read_text(const char *path, struct gc_buf *text, int *mode, bool warn)
{
    struct stat st;
    int rc = GC_CLI_EFAIL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    *mode = -1;
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return GC_CLI_OK;
        return report(warn, "cannot read %s: %s", path, strerror(errno));
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        report(warn, "cannot read %s: not a regular file", path);
        goto cleanup;
    }
    for (;;) {
        char chunk[4096];
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            report(warn, "cannot read %s: %s", path, strerror(errno));
            goto cleanup;
        }
        if (n == 0)
            break;
        int arc = gc_buf_add(text, chunk, (size_t)n);
        explicit_bzero(chunk, sizeof(chunk));
        if (arc != 0) {
            report(warn, "%s is larger than %d KiB", path, MAX_CONFIG_BYTES / 1024);
            goto cleanup;
        }
    }
    *mode = (int)(st.st_mode & 07777);
    rc = GC_CLI_OK;
cleanup:
    close(fd);
    return rc;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* Splits one line into key and value, both trimmed, pointing into line (which it edits).
 * Returns false for blank lines, comments and lines without '='. */
static bool split_line(char *line, char **key, char **val, bool *malformed)
{
    *malformed = false;
    while (is_blank(*line))
        line++;
    if (!*line || *line == '#')
        return false;
    char *eq = strchr(line, '=');
    if (!eq) {
        *malformed = true;
        return false;
    }
    char *k_end = eq;
    while (k_end > line && is_blank(k_end[-1]))
        k_end--;
    *k_end = '\0';
    char *v = eq + 1;
    while (is_blank(*v))
        v++;
    char *v_end = v + strlen(v);
    while (v_end > v && is_blank(v_end[-1]))
        v_end--;
    *v_end = '\0';
    *key = line;
    *val = v;
    return true;
}

/* Parses "key = value" lines; unknown keys are ignored so that newer files still work. */
static void parse_text(const char *path, const char *text, struct cfg *c, bool warn)
{
    const char *p = text;
    int lineno = 0;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        char *line = gc_strndup(p, len);
        char *key, *val;
        bool malformed;
        lineno++;
        if (split_line(line, &key, &val, &malformed)) {
            if (strcmp(key, "url") == 0) {
                free(c->url);
                c->url = gc_strdup(val);
            } else if (strcmp(key, "token") == 0) {
                wipe_free(c->token);
                c->token = val[0] ? gc_strdup(val) : NULL;
            }
        } else if (malformed && warn) {
            gc_cli_warn("%s:%d: ignoring a line without '='", path, lineno);
        }
        explicit_bzero(line, len);
        free(line);
        p += len + (nl ? 1 : 0);
    }
}

/* Reads and parses the file; warn is false on a second reading, which has nothing new to say. */
static int load(const char *path, struct cfg *c, bool warn)
{
    struct gc_buf text;
    gc_buf_init(&text, MAX_CONFIG_BYTES);
    int rc = read_text(path, &text, &c->mode, true);
    if (rc == GC_CLI_OK)
        parse_text(path, gc_buf_str(&text), c, warn);
    wipe_release(&text);
    return rc;
}

/* A token goes into an HTTP header and the config file: printable ASCII without spaces only,
 * so it can add neither a header nor a line. */
static bool token_ok(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n > MAX_TOKEN_BYTES)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)t[i] <= ' ' || (unsigned char)t[i] >= 0x7F)
            return false;
    return true;
}

static const char *nonempty_env(const char *name)
{
    const char *v = getenv(name);
    return v && v[0] ? v : NULL;
}

int gc_cli_config_resolve(struct gc_cli *cli)
{
    struct cfg c = {.mode = -1};
    char *cfg_url = NULL;
    const char *why = NULL, *raw, *from;
    int rc = GC_CLI_EUSAGE;

    cli->config_path = config_path();
    if (cli->config_path && load(cli->config_path, &c, true) != GC_CLI_OK) {
        /* an unreadable file must not stop a run that has --url/--token */
        cfg_release(&c);
    }
    if (c.url) {
        cfg_url = gc_cli_url_normalize(c.url, &why);
        if (!cfg_url)
            gc_cli_warn("%s: ignoring url '%s': %s", cli->config_path, c.url, why);
    }

    if (cli->flag_url) {
        raw = cli->flag_url;
        from = "--url";
        cli->url_src = GC_CLI_SRC_FLAG;
    } else if (nonempty_env("GOVCLOUD_URL")) {
        raw = nonempty_env("GOVCLOUD_URL");
        from = "GOVCLOUD_URL";
        cli->url_src = GC_CLI_SRC_ENV;
    } else if (cfg_url) {
        raw = cfg_url;
        from = cli->config_path;
        cli->url_src = GC_CLI_SRC_CONFIG;
    } else {
        raw = GC_CLI_DEFAULT_URL;
        from = "the default";
        cli->url_src = GC_CLI_SRC_DEFAULT;
    }
    cli->url = gc_cli_url_normalize(raw, &why);
    if (!cli->url) {
        /* a URL with user:password@ is not echoed: it carries a secret */
        bool secret = strchr(raw, '@') != NULL;
        rc = gc_cli_usage_error(cli, "invalid server URL%s%s%s (from %s): %s", secret ? "" : " '",
                                secret ? "" : raw, secret ? "" : "'", from, why);
        goto cleanup;
    }

    const char *tok = NULL;
    if (cli->flag_token) {
        tok = cli->flag_token;
        from = "--token";
        cli->token_src = GC_CLI_SRC_FLAG;
    } else if (nonempty_env("GOVCLOUD_TOKEN")) {
        tok = nonempty_env("GOVCLOUD_TOKEN");
        from = "GOVCLOUD_TOKEN";
        cli->token_src = GC_CLI_SRC_ENV;
    } else if (c.token && strcmp(cfg_url ? cfg_url : GC_CLI_DEFAULT_URL, cli->url) == 0) {
        tok = c.token;
        from = cli->config_path;
        cli->token_src = GC_CLI_SRC_CONFIG;
        if (c.mode >= 0 && (c.mode & 077))
            gc_cli_warn("%s holds a token and can be read by other users: run "
                        "'chmod 600 %s'", cli->config_path, cli->config_path);
    } else {
        cli->token_src = GC_CLI_SRC_NONE;
        if (c.token)
            cli->saved_url = gc_strdup(cfg_url ? cfg_url : GC_CLI_DEFAULT_URL);
    }
    if (tok && !token_ok(tok) && cli->token_src == GC_CLI_SRC_CONFIG) {
        /* a broken saved token must not stop 'login' from replacing it, nor commands that
         * send no token: ignore it like a missing one. Never echo the value: a secret. */
        gc_cli_warn("%s: ignoring the saved token: it is not a valid token (printable "
                    "characters without spaces, at most %d); run 'govcloud login' again",
                    cli->config_path, MAX_TOKEN_BYTES);
        tok = NULL;
        cli->token_src = GC_CLI_SRC_NONE;
    }
    if (tok) {
        if (!token_ok(tok)) {
            /* never echo the value: it is a secret */
            rc = gc_cli_usage_error(cli, "the token from %s is not a valid token (printable "
                                         "characters without spaces, at most %d)", from,
                                    MAX_TOKEN_BYTES);
            goto cleanup;
        }
        cli->token = gc_strdup(tok);
    }
    rc = GC_CLI_OK;

cleanup:
    free(cfg_url);
    cfg_release(&c);
    return rc;
}

void gc_cli_config_release(struct gc_cli *cli)
{
    free(cli->url);
    wipe_free(cli->token);
    free(cli->config_path);
    free(cli->saved_url);
    cli->saved_url = NULL;
    cli->url = NULL;
    cli->token = NULL;
    cli->config_path = NULL;
}

char *gc_cli_config_saved_token(const struct gc_cli *cli)
{
    struct cfg c = {.mode = -1};
    char *t = NULL;
    if (cli->config_path && load(cli->config_path, &c, false) == GC_CLI_OK && c.token) {
        t = c.token;
        c.token = NULL;
    }
    cfg_release(&c);
    return t;
}

/* Creates dir with mode 0700 when missing; tightens our own directory when it is looser. */
static int ensure_private_dir(const char *dir)
{
    struct stat st;
    if (mkdir(dir, 0700) == 0)
        return GC_CLI_OK;
    if (errno != EEXIST)
        return gc_cli_fail(GC_CLI_EFAIL, "cannot create %s: %s", dir, strerror(errno));
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return gc_cli_fail(GC_CLI_EFAIL, "%s exists and is not a directory", dir);
    if ((st.st_mode & 077) && st.st_uid == geteuid() && chmod(dir, 0700) != 0)
        return gc_cli_fail(GC_CLI_EFAIL, "cannot make %s private: %s", dir, strerror(errno));
    return GC_CLI_OK;
}

/* Creates the config directory and its parent (~/.config or $XDG_CONFIG_HOME) if needed. */
static int ensure_dirs(const char *path)
{
    char *dir = gc_strdup(path);
    int rc = GC_CLI_EFAIL;
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        goto cleanup;
    *slash = '\0'; /* .../govcloud */
    char *parent_slash = strrchr(dir, '/');
    if (parent_slash && parent_slash != dir) {
        *parent_slash = '\0';
        /* the parent is shared with other programs: create it private, but never chmod it */
        if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
            rc = gc_cli_fail(GC_CLI_EFAIL, "cannot create %s: %s", dir, strerror(errno));
            goto cleanup;
        }
        *parent_slash = '/';
    }
    rc = ensure_private_dir(dir);
cleanup:
    free(dir);
    return rc;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Writes text to path through a temporary file and rename(), so that a crash never leaves
 * a half-written file and the file is never readable by others, even for a moment. */
static int replace_file(const char *path, const struct gc_buf *text)
{
    struct gc_buf tmp;
    int fd = -1, rc = GC_CLI_EFAIL;
    bool created = false;

    gc_buf_init(&tmp, 8192);
    if (gc_buf_addf(&tmp, "%s.XXXXXX", path) != 0) {
        gc_cli_fail(GC_CLI_EFAIL, "config path is too long");
        goto cleanup;
    }
    fd = mkstemp(tmp.data); /* mode 0600 */
    if (fd < 0) {
        gc_cli_fail(GC_CLI_EFAIL, "cannot create a file next to %s: %s", path, strerror(errno));
        goto cleanup;
    }
    created = true;
    if (fchmod(fd, 0600) != 0 || write_all(fd, gc_buf_str(text), text->len) != 0 ||
        fsync(fd) != 0) {
        gc_cli_fail(GC_CLI_EFAIL, "cannot write %s: %s", tmp.data, strerror(errno));
        goto cleanup;
    }
    if (close(fd) != 0) {
        fd = -1;
        gc_cli_fail(GC_CLI_EFAIL, "cannot write %s: %s", tmp.data, strerror(errno));
        goto cleanup;
    }
    fd = -1;
    if (rename(tmp.data, path) != 0) {
        gc_cli_fail(GC_CLI_EFAIL, "cannot replace %s: %s", path, strerror(errno));
        goto cleanup;
    }
    rc = GC_CLI_OK;
cleanup:
    if (fd >= 0)
        close(fd);
    if (rc != GC_CLI_OK && created)
        unlink(tmp.data);
    gc_buf_release(&tmp);
    return rc;
}

/* Rewrites the config file: url and token (when not NULL) replace their lines, the token line
 * goes when drop_token, every other line stays as it was. */
static int rewrite(const struct gc_cli *cli, const char *url, const char *token, bool drop_token,
                   bool *removed)
{
    struct gc_buf old, out;
    bool url_done = false, token_done = false;
    int mode, rc;
    const char *path = cli->config_path;

    if (removed)
        *removed = false;
    if (!path)
        return gc_cli_fail(GC_CLI_EFAIL, "cannot find the config file: neither XDG_CONFIG_HOME "
                                         "nor HOME is set");
    gc_buf_init(&old, MAX_CONFIG_BYTES);
    gc_buf_init(&out, MAX_CONFIG_BYTES + 2 * MAX_TOKEN_BYTES);

    rc = read_text(path, &old, &mode, false);
    if (rc != GC_CLI_OK)
        goto cleanup;
    if (mode < 0 && !url && !token) {
        rc = GC_CLI_OK; /* nothing to remove from a file that does not exist */
        goto cleanup;
    }
    if (mode < 0 && gc_buf_adds(&out, "# govcloud CLI configuration, written by 'govcloud "
                                      "login'. Keep it private: it holds a token.\n") != 0)
        GC_BUG("config header over the cap");

    const char *p = gc_buf_str(&old);
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        char *line = gc_strndup(p, len);
        char *key, *val;
        bool malformed, keep = true;
        int arc = 0;
        if (split_line(line, &key, &val, &malformed)) {
            if (strcmp(key, "url") == 0 && url) {
                keep = false;
                if (!url_done)
                    arc = gc_buf_addf(&out, "url = %s\n", url);
                url_done = true;
            } else if (strcmp(key, "token") == 0 && (token || drop_token)) {
                keep = false;
                if (drop_token && removed)
                    *removed = true;
                if (token && !token_done)
                    arc = gc_buf_addf(&out, "token = %s\n", token);
                token_done = true;
            }
        }
        explicit_bzero(line, len);
        free(line);
        if (keep && (gc_buf_add(&out, p, len) != 0 || gc_buf_adds(&out, "\n") != 0))
            arc = GC_ETOOBIG;
        if (arc) {
            rc = gc_cli_fail(GC_CLI_EFAIL, "%s is too large", path);
            goto cleanup;
        }
        p += len + (nl ? 1 : 0);
    }
    if ((url && !url_done && gc_buf_addf(&out, "url = %s\n", url) != 0) ||
        (token && !token_done && gc_buf_addf(&out, "token = %s\n", token) != 0)) {
        rc = gc_cli_fail(GC_CLI_EFAIL, "%s is too large", path);
        goto cleanup;
    }
    if (drop_token && !(removed && *removed)) {
        rc = GC_CLI_OK; /* unchanged */
        goto cleanup;
    }
    rc = ensure_dirs(path);
    if (rc == GC_CLI_OK)
        rc = replace_file(path, &out);

cleanup:
    wipe_release(&old);
    wipe_release(&out);
    return rc;
}

int gc_cli_config_save(const struct gc_cli *cli, const char *url, const char *token)
{
    if (!token_ok(token))
        return gc_cli_fail(GC_CLI_EFAIL, "the server sent a token that cannot be saved");
    return rewrite(cli, url, token, false, NULL);
}

int gc_cli_config_forget_token(const struct gc_cli *cli, bool *removed)
{
    bool r = false;
    int rc = rewrite(cli, NULL, NULL, true, &r);
    if (removed)
        *removed = r;
    return rc;
}
