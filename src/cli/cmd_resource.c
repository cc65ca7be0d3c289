/* Generic list/get/create/update/delete over a REST collection, and the department, user and
 * api-key command tables built on them: each option's `key` names the field it fills. */
#include "cli/cmds.h"

#include "cli/http.h"
#include "cli/prompt.h"
#include "util/error.h"
#include "util/mem.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/banned.h" /* last: it redefines library names */

#define MAX_PATH_BYTES 4096
#define MAX_QUERY_BYTES 16384
/* a file given as an option's value (a PEM key) is small */
#define MAX_FILE_OPT_BYTES (1024u * 1024u)
/* --all stops here: a server whose cursors go round in a circle must not loop us for ever */
#define MAX_PAGES 100000

int gc_cli_id_path(const struct gc_cli *cli, struct gc_buf *b, const char *base, const char *id,
                   const char *suffix)
{
    if (!id[0] || strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
        return gc_cli_usage_error(cli, "invalid id '%s'", id);
    if (gc_buf_adds(b, base) != 0 || gc_buf_adds(b, "/") != 0 || gc_cli_escape(b, id) != 0 ||
        (suffix && gc_buf_adds(b, suffix) != 0))
        return gc_cli_usage_error(cli, "id is too long");
    return GC_CLI_OK;
}

void gc_cli_show(const struct gc_cli *cli, const json_t *obj)
{
    if (cli->output == GC_CLI_OUT_JSON)
        gc_cli_print_json(stdout, obj);
    else
        gc_cli_print_object(stdout, obj);
}

int gc_cli_get_object(struct gc_cli *cli, const char *path, json_t **out)
{
    struct gc_cli_resp resp;
    struct gc_cli_req req = {.method = "GET", .path = path};
    int rc = gc_cli_http(cli, &req, &resp);
    if (rc == GC_CLI_OK && !json_is_object(resp.json))
        rc = gc_cli_fail(GC_CLI_EFAIL, "the server's answer to GET %s is not a JSON object", path);
    if (rc == GC_CLI_OK) {
        *out = resp.json;
        resp.json = NULL;
    }
    gc_cli_resp_release(&resp);
    return rc;
}

/* 8-4-4-4-12 hex digits: taken as an id without asking the server. */
static bool looks_like_id(const char *s)
{
    if (strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !strchr("0123456789abcdefABCDEF", s[i]))
            return false;
    }
    return true;
}

int gc_cli_resolve(struct gc_cli *cli, const struct gc_cli_resource *res, const char *value,
                   char **id)
{
    struct gc_buf q, safe;
    json_t *page = NULL;
    int rc;

    *id = NULL;
    if (!res->by_name || !value[0] || looks_like_id(value)) {
        *id = gc_strdup(value);
        return GC_CLI_OK;
    }
    gc_buf_init(&q, MAX_QUERY_BYTES);
    gc_buf_init(&safe, GC_BUF_UNLIMITED);
    if (gc_cli_sanitize(&safe, value, 0) != 0)
        GC_BUG("unlimited buffer refused data");
    if (gc_buf_adds(&q, "name=") != 0 || gc_cli_escape(&q, value) != 0 ||
        gc_buf_adds(&q, "&limit=2") != 0) {
        rc = gc_cli_usage_error(cli, "the %s name is too long", res->noun);
        goto cleanup;
    }
    struct gc_cli_resp resp;
    struct gc_cli_req req = {.method = "GET", .path = res->path, .query = gc_buf_str(&q)};
    rc = gc_cli_http(cli, &req, &resp);
    page = resp.json;
    resp.json = NULL;
    gc_cli_resp_release(&resp);
    if (rc != GC_CLI_OK)
        goto cleanup;
    json_t *items = json_object_get(page, "items");
    if (!json_is_array(items)) {
        rc = gc_cli_fail(GC_CLI_EFAIL, "the server's answer to GET %s has no items list",
                         res->path);
    } else if (json_array_size(items) == 0) {
        rc = gc_cli_fail(GC_CLI_ENOTFOUND, "no %s is named '%s' (that you can see)", res->noun,
                         gc_buf_str(&safe));
    } else if (json_array_size(items) > 1) {
        rc = gc_cli_fail(GC_CLI_ECONFLICT, "more than one %s is named '%s': give the id",
                         res->noun, gc_buf_str(&safe));
    } else {
        const char *found = json_string_value(json_object_get(json_array_get(items, 0), "id"));
        if (!found || !found[0])
            rc = gc_cli_fail(GC_CLI_EFAIL, "the server's %s '%s' has no id", res->noun,
                             gc_buf_str(&safe));
        else
            *id = gc_strdup(found);
    }

cleanup:
    json_decref(page);
    gc_buf_release(&q);
    gc_buf_release(&safe);
    return rc;
}

/* Resolves value (a name or an id of res) and appends the object's path (+ suffix) to b.
 * *id receives the id (caller frees) when id is not NULL. */
static int object_path(struct gc_cli *cli, const struct gc_cli_resource *res, const char *value,
                       const char *suffix, struct gc_buf *b, char **id)
{
    char *found = NULL;
    int rc = gc_cli_resolve(cli, res, value, &found);
    if (rc == GC_CLI_OK)
        rc = gc_cli_id_path(cli, b, res->path, found, suffix);
    if (rc == GC_CLI_OK && id)
        *id = found;
    else
        free(found);
    return rc;
}

void gc_cli_show_res(const struct gc_cli *cli, const struct gc_cli_resource *res,
                     const json_t *obj)
{
    const char *skip[8] = {0};
    size_t n = 0;

    if (cli->output == GC_CLI_OUT_JSON || !res || !res->subtables) {
        gc_cli_show(cli, obj);
        return;
    }
    for (const struct gc_cli_subtable *t = res->subtables; t->key && n + 1 < 8; t++)
        skip[n++] = t->key;
    gc_cli_print_object_skip(stdout, obj, skip);
    for (const struct gc_cli_subtable *t = res->subtables; t->key; t++) {
        const json_t *a = json_object_get(obj, t->key);
        if (!json_is_array(a))
            continue;
        if (json_array_size(a) == 0) {
            printf("\n%s: none\n", t->key);
        } else {
            printf("\n%s:\n", t->key);
            gc_cli_print_table(stdout, t->cols, a);
        }
    }
}

/* The If-Match version, re-printed from the parsed number so that the header carries
 * digits only whatever strtoll tolerated (a sign, leading blanks). */
static const char *if_match(const struct gc_cli_cmd *cmd, const struct gc_cli_args *args,
                            char *buf, size_t cap)
{
    const char *v = gc_cli_arg(cmd, args, "if-match");
    if (!v)
        return NULL;
    snprintf(buf, cap, "%lld", strtoll(v, NULL, 10));
    return buf;
}

/* The length of the next item of a comma-separated list at p: up to the first comma that is
 * not inside double quotes (a matcher such as host="a,b" is one item). */
static size_t item_len(const char *p)
{
    bool quoted = false;
    size_t i = 0;
    for (; p[i] && (quoted || p[i] != ','); i++)
        if (p[i] == '"')
            quoted = !quoted;
    return i;
}

/* The text of the file an option names (a PEM key), as a JSON string. */
static int file_json(struct gc_cli *cli, const struct gc_cli_opt *o, const char *v, json_t **out)
{
    struct gc_buf b;
    char chunk[4096];
    size_t n;
    int rc = GC_CLI_OK;
    FILE *f = fopen(v, "rb");
    if (!f)
        return gc_cli_fail(GC_CLI_EUSAGE, "cannot open %s (--%s): %s", v, o->name,
                           strerror(errno));
    gc_buf_init(&b, MAX_FILE_OPT_BYTES);
    while (rc == GC_CLI_OK && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if (gc_buf_add(&b, chunk, n) != 0)
            rc = gc_cli_usage_error(cli, "%s (--%s) is larger than %u KiB", v, o->name,
                                    MAX_FILE_OPT_BYTES >> 10);
    if (rc == GC_CLI_OK && ferror(f))
        rc = gc_cli_fail(GC_CLI_EFAIL, "cannot read %s: %s", v, strerror(errno));
    fclose(f);
    if (rc == GC_CLI_OK) {
        *out = json_stringn(b.len ? gc_buf_str(&b) : "", b.len);
        if (!*out)
            rc = gc_cli_usage_error(cli, "%s (--%s) is not UTF-8 text", v, o->name);
    }
    gc_buf_release(&b);
    return rc;
}

/* "k=v,k=v" as a JSON object of strings (a silence's matchers). */
static int map_json(struct gc_cli *cli, const struct gc_cli_opt *o, const char *v, json_t **out)
{
    json_t *m = json_object();
    for (const char *p = v;;) {
        size_t len = item_len(p);
        char *item = gc_strndup(p, len);
        char *eq = strchr(item, '=');
        json_t *val = eq ? json_string(eq + 1) : NULL;
        int bad = !eq || eq == item || !val;
        if (!bad) {
            *eq = '\0';
            bad = json_object_set_new(m, item, val) != 0; /* a key that is not UTF-8 */
        } else {
            json_decref(val);
        }
        free(item);
        if (bad) {
            json_decref(m);
            return gc_cli_usage_error(cli, "invalid --%s '%s': expected NAME=VALUE[,NAME=VALUE...]",
                                      o->name, v);
        }
        if (!p[len])
            break;
        p += len + 1;
    }
    *out = m;
    return GC_CLI_OK;
}

/* The JSON value of option o for the body: lists become arrays, references are resolved to
 * ids. Returns GC_CLI_OK with *out set, or an exit code after printing. */
static int opt_json(struct gc_cli *cli, const struct gc_cli_opt *o, const char *v, json_t **out)
{
    json_t *j = NULL;
    *out = NULL;
    if ((o->flags & GC_OPT_NULLABLE) && (strcmp(v, "none") == 0 || strcmp(v, "root") == 0)) {
        *out = json_null();
        return GC_CLI_OK;
    }
    switch (o->type) {
    case GC_OPT_FLAG:
        j = json_boolean(!(o->flags & GC_OPT_SENDS_FALSE));
        break;
    case GC_OPT_BOOL:
        j = json_boolean(gc_cli_bool_value(v) == 1);
        break;
    case GC_OPT_INT:
        j = json_integer(strtoll(v, NULL, 10));
        break;
    case GC_OPT_NUMBER:
        j = json_real(strtod(v, NULL));
        break;
    case GC_OPT_JSON:
        j = json_loads(v, JSON_DECODE_ANY, NULL); /* checked by the parser */
        break;
    case GC_OPT_STRING:
    case GC_OPT_TIME:
    case GC_OPT_CHOICE:
        if (o->flags & GC_OPT_MAP)
            return map_json(cli, o, v, out);
        if (o->flags & GC_OPT_FILE)
            return file_json(cli, o, v, out);
        if (o->flags & GC_OPT_LIST) {
            /* all items checked before any is looked up */
            size_t vl = strlen(v);
            if (vl == 0 || v[0] == ',' || v[vl - 1] == ',' || strstr(v, ",,"))
                return gc_cli_usage_error(cli, "empty item in --%s '%s'", o->name, v);
            j = json_array();
            const char *p = v;
            for (;;) {
                size_t len = item_len(p);
                const char *comma = p[len] ? p + len : NULL;
                char *item = gc_strndup(p, len);
                char *id = NULL;
                int rc = GC_CLI_OK;
                if (o->ref)
                    rc = gc_cli_resolve(cli, o->ref, item, &id);
                json_t *e = rc == GC_CLI_OK ? json_string(id ? id : item) : NULL;
                free(item);
                free(id);
                if (rc != GC_CLI_OK) {
                    json_decref(j);
                    return rc;
                }
                if (!e) {
                    json_decref(j);
                    return gc_cli_usage_error(cli, "the value of --%s is not valid UTF-8",
                                              o->name);
                }
                json_array_append_new(j, e);
                if (!comma)
                    break;
                p = comma + 1;
            }
        } else if (o->ref) {
            char *id = NULL;
            int rc = gc_cli_resolve(cli, o->ref, v, &id);
            if (rc != GC_CLI_OK)
                return rc;
            j = json_string(id);
            free(id);
        } else {
            j = json_string(v); /* NULL when v is not UTF-8 */
        }
        break;
    }
    if (!j)
        return gc_cli_usage_error(cli, "the value of --%s is not valid UTF-8", o->name);
    *out = j;
    return GC_CLI_OK;
}

/* Appends key=value for the given options that have a key: all of them for a list (its
 * filters), only the GC_OPT_QUERY ones otherwise. References are resolved to ids. */
static int build_query(struct gc_cli *cli, const struct gc_cli_cmd *cmd,
                       const struct gc_cli_args *args, bool only_query, struct gc_buf *q)
{
    for (int i = 0; cmd->opts && cmd->opts[i].name; i++) {
        const struct gc_cli_opt *o = &cmd->opts[i];
        const char *v = args->val[i];
        char *id = NULL;
        if (!o->key || !v || strcmp(o->key, "cursor") == 0 ||
            (only_query && !(o->flags & GC_OPT_QUERY)))
            continue;
        if (o->type == GC_OPT_FLAG)
            v = (o->flags & GC_OPT_SENDS_FALSE) ? "false" : "true";
        if (o->ref) {
            int rc = gc_cli_resolve(cli, o->ref, v, &id);
            if (rc != GC_CLI_OK)
                return rc;
            v = id;
        }
        /* a list is the parameter repeated, once per item (match[]=a&match[]=b) */
        int bad = 0;
        for (const char *p = v; !bad;) {
            size_t len = (o->flags & GC_OPT_LIST) ? item_len(p) : strlen(p);
            char *item = gc_strndup(p, len);
            bad = (q->len && gc_buf_adds(q, "&") != 0) || gc_cli_escape(q, o->key) != 0 ||
                  gc_buf_adds(q, "=") != 0 || gc_cli_escape(q, item) != 0;
            free(item);
            if (!p[len])
                break;
            p += len + 1;
        }
        free(id);
        if (bad)
            return gc_cli_usage_error(cli, "the filters are too long");
    }
    return GC_CLI_OK;
}

/* Builds the JSON body from every given option that has a key (but not GC_OPT_QUERY).
 * *n counts the fields. Returns GC_CLI_OK or an exit code after printing. */
static int build_body(struct gc_cli *cli, const struct gc_cli_cmd *cmd,
                      const struct gc_cli_args *args, json_t *body, int *n)
{
    *n = 0;
    for (int i = 0; cmd->opts && cmd->opts[i].name; i++) {
        const struct gc_cli_opt *o = &cmd->opts[i];
        json_t *j;
        if (!o->key || !args->val[i] || (o->flags & GC_OPT_QUERY))
            continue;
        int rc = opt_json(cli, o, args->val[i], &j);
        if (rc != GC_CLI_OK)
            return rc;
        json_object_set_new(body, o->key, j);
        (*n)++;
    }
    return GC_CLI_OK;
}

/* Adds "password" from --password, --password-stdin or, on a terminal, a prompt (twice, so a
 * typo does not lock anyone out). `required` refuses to go on without one. */
static int add_password(const struct gc_cli *cli, const struct gc_cli_cmd *cmd,
                        const struct gc_cli_args *args, json_t *body, bool required)
{
    const char *flag = gc_cli_arg(cmd, args, "password");
    bool from_stdin = gc_cli_arg(cmd, args, "password-stdin") != NULL;
    char *pw = NULL, *again = NULL;
    int rc = GC_CLI_OK;

    if (flag && from_stdin)
        return gc_cli_usage_error(cli, "give --password or --password-stdin, not both");
    /* your own password changes only with the current one: it comes first on stdin */
    if (!required && gc_cli_arg(cmd, args, "current-password-stdin")) {
        if (gc_cli_arg(cmd, args, "current-password"))
            return gc_cli_usage_error(cli, "give --current-password or "
                                           "--current-password-stdin, not both");
        char *cur = NULL;
        rc = gc_cli_read_stdin_secret("current password", &cur);
        if (rc != GC_CLI_OK)
            return rc;
        json_t *j = json_string(cur);
        gc_cli_secret_free(cur);
        if (!j)
            return gc_cli_usage_error(cli, "the current password is not valid UTF-8");
        json_object_set_new(body, "current_password", j);
    }
    if (flag)
        return GC_CLI_OK; /* build_body already set it */
    if (from_stdin) {
        rc = gc_cli_read_stdin_secret("password", &pw);
    } else if (required && gc_cli_stdin_is_tty()) {
        rc = gc_cli_prompt("New password: ", true, &pw);
        if (rc == GC_CLI_OK)
            rc = gc_cli_prompt("Repeat the password: ", true, &again);
        if (rc == GC_CLI_OK && strcmp(pw, again) != 0)
            rc = gc_cli_fail(GC_CLI_EUSAGE, "the passwords do not match");
    } else if (required) {
        return gc_cli_usage_error(cli, "missing password: give --password-stdin (or --password)");
    } else {
        return GC_CLI_OK;
    }
    if (rc == GC_CLI_OK) {
        json_t *j = json_string(pw);
        if (!j)
            rc = gc_cli_usage_error(cli, "the password is not valid UTF-8");
        else
            json_object_set_new(body, "password", j);
    }
    gc_cli_secret_free(pw);
    gc_cli_secret_free(again);
    return rc;
}

/* Lists the collection at path (res->path, or a sub-collection such as an asset's history)
 * with res's columns. */
static int list_at(struct gc_cli *cli, const struct gc_cli_cmd *cmd,
                   const struct gc_cli_args *args, const struct gc_cli_resource *res,
                   const char *path)
{
    bool all = gc_cli_arg(cmd, args, "all") != NULL;
    const char *first_cursor = gc_cli_arg(cmd, args, "cursor");
    char *cursor = first_cursor ? gc_strdup(first_cursor) : NULL;
    json_t *items = json_array(), *page = NULL;
    struct gc_buf base, q;
    int rc = GC_CLI_OK;
    long pages = 0;

    gc_buf_init(&base, MAX_QUERY_BYTES);
    gc_buf_init(&q, MAX_QUERY_BYTES);
    rc = build_query(cli, cmd, args, false, &base);
    if (rc != GC_CLI_OK)
        goto cleanup;
    for (;;) {
        struct gc_cli_resp resp;
        gc_buf_reset(&q);
        if (gc_buf_adds(&q, gc_buf_str(&base)) != 0 ||
            (cursor && ((q.len && gc_buf_adds(&q, "&") != 0) || gc_buf_adds(&q, "cursor=") != 0 ||
                        gc_cli_escape(&q, cursor) != 0))) {
            rc = gc_cli_fail(GC_CLI_EFAIL, "the cursor is too long");
            goto cleanup;
        }
        struct gc_cli_req req = {.method = "GET", .path = path, .query = gc_buf_str(&q)};
        rc = gc_cli_http(cli, &req, &resp);
        json_decref(page);
        page = resp.json;
        resp.json = NULL;
        gc_cli_resp_release(&resp);
        if (rc != GC_CLI_OK)
            goto cleanup;
        json_t *pitems = json_object_get(page, "items");
        if (!json_is_array(pitems)) {
            rc = gc_cli_fail(GC_CLI_EFAIL, "the server's answer to GET %s has no items list",
                             path);
            goto cleanup;
        }
        json_array_extend(items, pitems);
        const char *next = json_string_value(json_object_get(page, "next_cursor"));
        if (!all || !next || !next[0])
            break;
        if ((cursor && strcmp(next, cursor) == 0) || ++pages >= MAX_PAGES) {
            rc = gc_cli_fail(GC_CLI_EFAIL, "the server's cursors do not come to an end (page "
                                           "%ld)", pages + 1);
            goto cleanup;
        }
        free(cursor);
        cursor = gc_strdup(next);
    }

    const char *next = json_string_value(json_object_get(page, "next_cursor"));
    if (cli->output == GC_CLI_OUT_JSON) {
        if (all) {
            json_t *out = json_pack("{s:O,s:n}", "items", items, "next_cursor");
            gc_cli_print_json(stdout, out);
            json_decref(out);
        } else {
            gc_cli_print_json(stdout, page); /* the page exactly as the server sent it */
        }
    } else {
        gc_cli_print_table(stdout, res->cols, items);
        if (!all && next && next[0]) {
            fflush(stdout);
            fprintf(stderr, "govcloud: more %s%s follow: add --all, or --cursor %s for the next "
                            "page\n", res->nouns ? res->nouns : res->noun, res->nouns ? "" : "s",
                    next);
        }
    }

cleanup:
    free(cursor);
    json_decref(items);
    json_decref(page);
    gc_buf_release(&base);
    gc_buf_release(&q);
    return rc;
}

int gc_cli_res_list(struct gc_cli *cli, const struct gc_cli_cmd *cmd,
                    const struct gc_cli_args *args)
{
    const struct gc_cli_resource *res = cmd->data;
    return list_at(cli, cmd, args, res, res->path);
}

int gc_cli_res_sublist(struct gc_cli *cli, const struct gc_cli_cmd *cmd,
                       const struct gc_cli_args *args)
{
    const struct gc_cli_sublist *sub = cmd->data;
    struct gc_buf path;
    gc_buf_init(&path, MAX_PATH_BYTES);
    int rc = object_path(cli, sub->parent, args->pos[0], sub->suffix, &path, NULL);
    if (rc == GC_CLI_OK)
        rc = list_at(cli, cmd, args, sub->items, gc_buf_str(&path));
    gc_buf_release(&path);
    return rc;
}

int gc_cli_res_view(struct gc_cli *cli, const struct gc_cli_cmd *cmd,
                    const struct gc_cli_args *args)
{
    const struct gc_cli_resource *res = cmd->data;
    struct gc_buf q;
    struct gc_cli_resp resp = {0};

    gc_buf_init(&q, MAX_QUERY_BYTES);
    int rc = build_query(cli, cmd, args, false, &q);
    if (rc == GC_CLI_OK) {
        struct gc_cli_req req = {.method = "GET", .path = res->path, .query = gc_buf_str(&q)};
        rc = gc_cli_http(cli, &req, &resp);
        if (rc == GC_CLI_OK && !json_is_object(resp.json))
            rc = gc_cli_fail(GC_CLI_EFAIL, "the server's answer to GET %s is not a JSON object",
                             res->path);
    }
    if (rc == GC_CLI_OK)
        gc_cli_show_res(cli, res, resp.json);
    gc_cli_resp_release(&resp);
    gc_buf_release(&q);
    return rc;
}

int gc_cli_res_get(struct gc_cli *cli, const struct gc_cli_cmd *cmd,
                   const struct gc_cli_args *args)
{
    const struct gc_cli_resource *res = cmd->data;
    struct gc_buf path;
    json_t *obj = NULL;

    gc_buf_init(&path, MAX_PATH_BYTES);
    int rc = object_path(cli, res, args->pos[0], NULL, &path, NULL);
    if (rc == GC_CLI_OK)
        rc = gc_cli_get_object(cli, gc_buf_str(&path), &obj);
    if (rc == GC_CLI_OK)
        gc_cli_show_res(cli, res, obj);
    json_decref(obj);
    gc_buf_release(&path);
    return rc;
}

/* --timeout only means something with --wait; checked before anything is sent. */
static int check_wait(const struct gc_cli *cli, const struct gc_cli_cmd *cmd,
                      const struct gc_cli_args *args)
{
    if (gc_cli_has_opt(cmd, "timeout") && gc_cli_arg(cmd, args, "timeout") &&
        !gc_cli_arg(cmd, args, "wait"))
        return gc_cli_usage_error(cli, "--timeout needs --wait");
    return GC_CLI_OK;
}

/* What a create, action or delete answered. A job (202) or an object that names its job
 * (an image's job_id) is shown, or with --wait followed to its end, after which the object
 * is shown as it is then (a delete prints what it removed). */
static int answer_done(struct gc_cli *cli, const struct gc_cli_cmd *cmd,
                       const struct gc_cli_args *args, const struct gc_cli_resource *res,
                       const struct gc_cli_resp *resp, bool is_delete)
{
    const json_t *a = resp->json;
    const char *job_id = NULL, *obj_id = NULL;
    bool wait = gc_cli_has_opt(cmd, "wait") && gc_cli_arg(cmd, args, "wait");
    int rc;

    if (resp->status == 204 || !a) {
        if (cli->output == GC_CLI_OUT_TABLE && is_delete)
            printf("deleted %s %s\n", res->noun, args->pos[0]);
        return GC_CLI_OK;
    }
    if (!json_is_object(a))
        return gc_cli_fail(GC_CLI_EFAIL, "the server's answer is not a JSON object");
    if (resp->status == 202) {
        job_id = json_string_value(json_object_get(a, "id"));
        obj_id = json_string_value(json_object_get(a, "resource_id"));
    } else {
        job_id = json_string_value(json_object_get(a, "job_id"));
        obj_id = json_string_value(json_object_get(a, "id"));
    }
    if (!job_id || !wait) {
        gc_cli_show_res(cli, resp->status == 202 ? NULL : res, a);
        if (job_id && cli->output == GC_CLI_OUT_TABLE) {
            struct gc_buf safe;
            gc_buf_init(&safe, GC_BUF_UNLIMITED);
            if (gc_cli_sanitize(&safe, job_id, 80) != 0)
                GC_BUG("unlimited buffer refused data");
            fflush(stdout);
            fprintf(stderr, "govcloud: job %s started: follow it with 'govcloud job wait %s' "
                            "(or give --wait)\n", gc_buf_str(&safe), gc_buf_str(&safe));
            gc_buf_release(&safe);
        }
        return GC_CLI_OK;
    }

    const char *tmo = gc_cli_arg(cmd, args, "timeout");
    rc = gc_cli_job_wait(cli, job_id, tmo ? strtoll(tmo, NULL, 10) : 0, is_delete);
    if (rc != GC_CLI_OK)
        return rc;
    if (is_delete) {
        if (cli->output == GC_CLI_OUT_TABLE)
            printf("deleted %s %s\n", res->noun, args->pos[0]);
        return GC_CLI_OK;
    }
    if (!obj_id)
        return GC_CLI_OK;
    struct gc_buf path;
    json_t *obj = NULL;
    gc_buf_init(&path, MAX_PATH_BYTES);
    rc = gc_cli_id_path(cli, &path, res->path, obj_id, NULL);
    if (rc == GC_CLI_OK)
        rc = gc_cli_get_object(cli, gc_buf_str(&path), &obj);
    if (rc == GC_CLI_OK)
        gc_cli_show_res(cli, res, obj);
    json_decref(obj);
    gc_buf_release(&path);
    return rc;
}

/* Sends req and shows what the server answers (a job is followed with --wait). */
static int send_and_show(struct gc_cli *cli, const struct gc_cli_cmd *cmd,
                         const struct gc_cli_args *args, const struct gc_cli_resource *res,
                         const struct gc_cli_req *req)
{
    struct gc_cli_resp resp;
    int rc = gc_cli_http(cli, req, &resp);
    if (rc == GC_CLI_OK && !json_is_object(resp.json) && resp.status != 204)
        rc = gc_cli_fail(GC_CLI_EFAIL, "the server's answer to %s %s is not a JSON object",
                         req->method, req->path);
    if (rc == GC_CLI_OK)
        rc = answer_done(cli, cmd, args, res, &resp, false);
    gc_cli_resp_release(&resp);
    return rc;
}

int gc_cli_res_create(struct gc_cli *cli, const struct gc_cli_cmd *cmd,
                      const struct gc_cli_args *args)
{
    const struct gc_cli_resource *res = cmd->data;
    json_t *body = json_object();
    int n;
    int rc = check_wait(cli, cmd, args);
    if (rc == GC_CLI_OK && cmd->npos == 1) {
        /* "govcloud vm create web1 ...": the one argument of a create is the name */
        json_t *name = json_string(args->pos[0]);
        if (!name)
            rc = gc_cli_usage_error(cli, "the name is not valid UTF-8");
        else
            json_object_set_new(body, "name", name);
    }
    if (rc == GC_CLI_OK)
        rc = build_body(cli, cmd, args, body, &n);
    if (rc == GC_CLI_OK && res->has_password)
        rc = add_password(cli, cmd, args, body, true);
    if (rc == GC_CLI_OK) {
        struct gc_cli_req req = {.method = "POST", .path = res->path, .body = body};
        rc = send_and_show(cli, cmd, args, res, &req);
    }
    if (rc == GC_CLI_OK && res->create_note) {
        fflush(stdout);
        fprintf(stderr, "govcloud: %s\n", res->create_note);
    }
    json_decref(body);
    return rc;
}

int gc_cli_res_update(struct gc_cli *cli, const struct gc_cli_cmd *cmd,
                      const struct gc_cli_args *args)
{
    const struct gc_cli_resource *res = cmd->data;
    json_t *body = json_object();
    struct gc_buf path;
    char ver[32];
    int n;

    gc_buf_init(&path, MAX_PATH_BYTES);
    int rc = build_body(cli, cmd, args, body, &n);
    if (rc == GC_CLI_OK && res->has_password)
        rc = add_password(cli, cmd, args, body, false);
    if (rc == GC_CLI_OK && json_object_size(body) == 0)
        rc = gc_cli_usage_error(cli, "nothing to update: give at least one field option");
    if (rc == GC_CLI_OK)
        rc = object_path(cli, res, args->pos[0], NULL, &path, NULL);
    if (rc == GC_CLI_OK) {
        struct gc_cli_req req = {.method = "PATCH", .path = gc_buf_str(&path), .body = body,
                                 .if_match = if_match(cmd, args, ver, sizeof(ver))};
        rc = send_and_show(cli, cmd, args, res, &req);
    }
    json_decref(body);
    gc_buf_release(&path);
    return rc;
}

int gc_cli_res_delete(struct gc_cli *cli, const struct gc_cli_cmd *cmd,
                      const struct gc_cli_args *args)
{
    const struct gc_cli_resource *res = cmd->data;
    struct gc_buf path;
    char ver[32];

    gc_buf_init(&path, MAX_PATH_BYTES);
    int rc = check_wait(cli, cmd, args);
    if (rc == GC_CLI_OK)
        rc = object_path(cli, res, args->pos[0], NULL, &path, NULL);
    if (rc == GC_CLI_OK) {
        struct gc_cli_resp resp;
        const char *im = gc_cli_has_opt(cmd, "if-match") ? if_match(cmd, args, ver, sizeof(ver))
                                                         : NULL;
        struct gc_cli_req req = {.method = "DELETE", .path = gc_buf_str(&path), .if_match = im};
        rc = gc_cli_http(cli, &req, &resp);
        if (rc == GC_CLI_OK)
            rc = answer_done(cli, cmd, args, res, &resp, true);
        gc_cli_resp_release(&resp);
    }
    gc_buf_release(&path);
    return rc;
}

int gc_cli_res_action(struct gc_cli *cli, const struct gc_cli_cmd *cmd,
                      const struct gc_cli_args *args)
{
    const struct gc_cli_action *act = cmd->data;
    const struct gc_cli_resource *res = act->res;
    json_t *body = json_object();
    struct gc_buf path, q;
    struct gc_cli_resp resp = {0};
    int n = 0;

    gc_buf_init(&path, MAX_PATH_BYTES);
    gc_buf_init(&q, MAX_QUERY_BYTES);
    int rc = check_wait(cli, cmd, args);
    if (rc == GC_CLI_OK)
        rc = build_body(cli, cmd, args, body, &n);
    if (rc == GC_CLI_OK)
        rc = build_query(cli, cmd, args, true, &q);
    if (rc == GC_CLI_OK)
        rc = object_path(cli, res, args->pos[0], act->suffix, &path, NULL);
    if (rc == GC_CLI_OK && cmd->npos == 2)
        rc = gc_cli_id_path(cli, &path, "", args->pos[1], NULL); /* a sub-object: rules/ID */
    if (rc != GC_CLI_OK)
        goto cleanup;

    struct gc_cli_req req = {.method = act->method, .path = gc_buf_str(&path),
                             .query = gc_buf_str(&q), .body = n || act->body ? body : NULL};
    rc = gc_cli_http(cli, &req, &resp);
    if (rc != GC_CLI_OK)
        goto cleanup;
    if (resp.status == 204) {
        if (cli->output == GC_CLI_OUT_TABLE)
            printf("%s %s\n", act->done, args->pos[cmd->npos - 1]);
        goto cleanup;
    }
    if (resp.status == 202) {
        rc = answer_done(cli, cmd, args, res, &resp, false);
    } else if (json_is_object(resp.json)) {
        gc_cli_show_res(cli, act->shows, resp.json); /* a sub-object, such as a new rule */
    } else {
        rc = gc_cli_fail(GC_CLI_EFAIL, "the server's answer to %s %s is not a JSON object",
                         req.method, req.path);
    }

cleanup:
    gc_cli_resp_release(&resp);
    json_decref(body);
    gc_buf_release(&path);
    gc_buf_release(&q);
    return rc;
}

static const char *const role_choices[] = {"platform_admin",   "operator",        "auditor",
                                           "supervisor",       "department_admin",
                                           "department_user",  NULL};

/* ---- departments ---- */

static const struct gc_cli_col dept_cols[] = {
    {"ID", "id", 0},        {"NAME", "name", 40},   {"CODE", "code", 24},
    {"PARENT_ID", "parent_id", 0}, {"DEPTH", "depth", 0}, {"VERSION", "version", 0},
    {0},
};

static const struct gc_cli_resource dept_res = {
    .noun = "department", .path = "/v1/departments", .cols = dept_cols};

static const struct gc_cli_opt dept_list_opts[] = {
    {.name = "parent-id", .type = GC_OPT_STRING, .metavar = "ID", .key = "parent_id",
     .help = "only the children of department ID; 'root' for the top level"},
    {.name = "name", .type = GC_OPT_STRING, .metavar = "NAME", .key = "name",
     .help = "only departments with this name"},
    {.name = "code", .type = GC_OPT_STRING, .metavar = "CODE", .key = "code",
     .help = "only the department with this code"},
    GC_CLI_OPT_LIMIT, GC_CLI_OPT_CURSOR, GC_CLI_OPT_ALL, {0},
};

#define DEPT_FIELDS(req)                                                                    \
    {.name = "name", .type = GC_OPT_STRING, .metavar = "NAME", .key = "name", .flags = req, \
     .help = "name, 1-128 characters, e.g. 广州市"},                                          \
    {.name = "code", .type = GC_OPT_STRING, .metavar = "CODE", .key = "code",              \
     .help = "unique code, 1-64 of A-Z a-z 0-9 - _ ., e.g. 4401"},                         \
    {.name = "description", .type = GC_OPT_STRING, .metavar = "TEXT", .key = "description", \
     .help = "free text, at most 1024 characters"}

static const struct gc_cli_opt dept_create_opts[] = {
    DEPT_FIELDS(GC_OPT_REQUIRED),
    {.name = "parent-id", .type = GC_OPT_STRING, .metavar = "ID", .key = "parent_id",
     .flags = GC_OPT_NULLABLE, .help = "parent department; omit (or 'root') for a top-level one"},
    {0},
};

static const struct gc_cli_opt dept_update_opts[] = {
    DEPT_FIELDS(0),
    {.name = "parent-id", .type = GC_OPT_STRING, .metavar = "ID", .key = "parent_id",
     .flags = GC_OPT_NULLABLE,
     .help = "move it, with its subtree, under department ID; 'root' makes it top-level"},
    GC_CLI_OPT_IF_MATCH, {0},
};

static const struct gc_cli_opt if_match_opts[] = {GC_CLI_OPT_IF_MATCH, {0}};

static const struct gc_cli_cmd dept_list = {
    .name = "list", .summary = "List departments", .opts = dept_list_opts,
    .run = gc_cli_res_list, .data = &dept_res};
static const struct gc_cli_cmd dept_get = {
    .name = "get", .summary = "Show one department", .posargs = "ID", .npos = 1,
    .run = gc_cli_res_get, .data = &dept_res};
static const struct gc_cli_cmd dept_create = {
    .name = "create", .summary = "Create a department", .opts = dept_create_opts,
    .run = gc_cli_res_create, .data = &dept_res};
static const struct gc_cli_cmd dept_update = {
    .name = "update", .summary = "Change a department's fields", .posargs = "ID", .npos = 1,
    .opts = dept_update_opts, .run = gc_cli_res_update, .data = &dept_res};
static const struct gc_cli_cmd dept_delete = {
    .name = "delete", .summary = "Delete a department (it must have no children or users)",
    .posargs = "ID", .npos = 1, .opts = if_match_opts, .run = gc_cli_res_delete,
    .data = &dept_res};

static const struct gc_cli_cmd *const dept_subs[] = {&dept_list, &dept_get, &dept_create,
                                                     &dept_update, &dept_delete, NULL};

const struct gc_cli_cmd gc_cli_cmd_department = {
    .name = "department", .summary = "Manage departments (部门/单位)",
    .description = "Departments form a tree of up to 8 levels: province, city, bureau, office.",
    .subs = dept_subs};

/* ---- users ---- */

static const struct gc_cli_col user_cols[] = {
    {"ID", "id", 0},           {"USERNAME", "username", 0},
    {"DISPLAY_NAME", "display_name", 24}, {"ROLE", "role", 0},
    {"DEPARTMENT_ID", "department_id", 0}, {"DISABLED", "disabled", 0},
    {"LOCKED_UNTIL", "locked_until", 0},  {0},
};

static const struct gc_cli_resource user_res = {
    .noun = "user", .path = "/v1/users", .cols = user_cols, .has_password = true};

static const struct gc_cli_opt user_list_opts[] = {
    {.name = "department-id", .type = GC_OPT_STRING, .metavar = "ID", .key = "department_id",
     .help = "only users of department ID"},
    {.name = "role", .type = GC_OPT_CHOICE, .metavar = "ROLE", .key = "role",
     .choices = role_choices, .help = "only users with this role"},
    {.name = "username", .type = GC_OPT_STRING, .metavar = "NAME", .key = "username",
     .help = "only the user with this login name"},
    GC_CLI_OPT_LIMIT, GC_CLI_OPT_CURSOR, GC_CLI_OPT_ALL, {0},
};

#define USER_PASSWORD_OPTS                                                                  \
    {.name = "password", .type = GC_OPT_STRING, .metavar = "PASSWORD", .key = "password",  \
     .help = "the password; visible in the process list, prefer --password-stdin"},       \
    {.name = "password-stdin", .type = GC_OPT_FLAG,                                        \
     .help = "read the password from the first line of standard input"}

static const struct gc_cli_opt user_create_opts[] = {
    {.name = "username", .type = GC_OPT_STRING, .metavar = "NAME", .key = "username",
     .flags = GC_OPT_REQUIRED,
     .help = "login name, 2-64 of a-z 0-9 . _ -, starting with a letter"},
    USER_PASSWORD_OPTS,
    {.name = "role", .type = GC_OPT_CHOICE, .metavar = "ROLE", .key = "role",
     .flags = GC_OPT_REQUIRED, .choices = role_choices, .help = "what the user may do"},
    {.name = "department-id", .type = GC_OPT_STRING, .metavar = "ID", .key = "department_id",
     .help = "the user's department; required for department_admin and department_user, "
             "not allowed for platform roles"},
    {.name = "display-name", .type = GC_OPT_STRING, .metavar = "NAME", .key = "display_name",
     .help = "full name, at most 128 characters, e.g. 张三"},
    {0},
};

static const struct gc_cli_opt user_update_opts[] = {
    {.name = "display-name", .type = GC_OPT_STRING, .metavar = "NAME", .key = "display_name",
     .help = "full name, at most 128 characters"},
    USER_PASSWORD_OPTS,
    {.name = "current-password", .type = GC_OPT_STRING, .metavar = "PASSWORD",
     .key = "current_password",
     .help = "your current password, needed to change your own; prefer "
             "--current-password-stdin"},
    {.name = "current-password-stdin", .type = GC_OPT_FLAG,
     .help = "read your current password from the first line of standard input (then the new "
             "one from the second, with --password-stdin)"},
    {.name = "role", .type = GC_OPT_CHOICE, .metavar = "ROLE", .key = "role",
     .choices = role_choices, .help = "new role"},
    {.name = "department-id", .type = GC_OPT_STRING, .metavar = "ID", .key = "department_id",
     .flags = GC_OPT_NULLABLE,
     .help = "move the user to department ID; 'none' when changing to a platform role"},
    {.name = "disabled", .type = GC_OPT_BOOL, .metavar = "true|false", .key = "disabled",
     .help = "disable the account (true) or enable it again (false)"},
    {.name = "unlock", .type = GC_OPT_FLAG, .key = "locked", .flags = GC_OPT_SENDS_FALSE,
     .help = "lift a lock set by too many failed logins"},
    GC_CLI_OPT_IF_MATCH, {0},
};

static const struct gc_cli_cmd user_list = {
    .name = "list", .summary = "List users", .opts = user_list_opts, .run = gc_cli_res_list,
    .data = &user_res};
static const struct gc_cli_cmd user_get = {
    .name = "get", .summary = "Show one user ('me' for yourself)", .posargs = "ID", .npos = 1,
    .run = gc_cli_res_get, .data = &user_res};
static const struct gc_cli_cmd user_create = {
    .name = "create", .summary = "Create a user",
    .description = "Without --password or --password-stdin, the password is asked for twice on "
                   "the terminal.",
    .opts = user_create_opts, .run = gc_cli_res_create, .data = &user_res};
static const struct gc_cli_cmd user_update = {
    .name = "update", .summary = "Change a user's fields, password, or lock", .posargs = "ID",
    .npos = 1, .opts = user_update_opts, .run = gc_cli_res_update, .data = &user_res};
static const struct gc_cli_cmd user_delete = {
    .name = "delete", .summary = "Delete a user, with its tokens and API keys", .posargs = "ID",
    .npos = 1, .opts = if_match_opts, .run = gc_cli_res_delete, .data = &user_res};

static const struct gc_cli_cmd *const user_subs[] = {&user_list, &user_get, &user_create,
                                                     &user_update, &user_delete, NULL};

const struct gc_cli_cmd gc_cli_cmd_user = {
    .name = "user", .summary = "Manage users",
    .description = "Roles: platform_admin, operator, auditor, supervisor (platform roles, no "
                   "department) and department_admin, department_user (bound to a department).",
    .subs = user_subs};

/* ---- API keys ---- */

static const struct gc_cli_col key_cols[] = {
    {"ID", "id", 0}, {"NAME", "name", 40}, {"CREATED_AT", "created_at", 0},
    {"EXPIRES_AT", "expires_at", 0}, {0},
};

static const struct gc_cli_resource key_res = {
    .noun = "api-key", .path = "/v1/api-keys", .cols = key_cols,
    .create_note = "the key is shown only this once: store it now"};

static const struct gc_cli_opt key_list_opts[] = {
    GC_CLI_OPT_LIMIT, GC_CLI_OPT_CURSOR, GC_CLI_OPT_ALL, {0},
};

static const struct gc_cli_opt key_create_opts[] = {
    {.name = "name", .type = GC_OPT_STRING, .metavar = "NAME", .key = "name",
     .flags = GC_OPT_REQUIRED, .help = "what the key is for, e.g. backup-script"},
    {.name = "expires-at", .type = GC_OPT_TIME, .metavar = "TIME", .key = "expires_at",
     .help = "RFC 3339 time after which the key stops working (default: never)"},
    {0},
};

static const struct gc_cli_cmd key_list = {
    .name = "list", .summary = "List your API keys (never their secrets)",
    .opts = key_list_opts, .run = gc_cli_res_list, .data = &key_res};
static const struct gc_cli_cmd key_create = {
    .name = "create", .summary = "Create an API key; its secret is shown once",
    .opts = key_create_opts, .run = gc_cli_res_create, .data = &key_res};
static const struct gc_cli_cmd key_delete = {
    .name = "delete", .summary = "Revoke an API key", .posargs = "ID", .npos = 1,
    .run = gc_cli_res_delete, .data = &key_res};

static const struct gc_cli_cmd *const key_subs[] = {&key_list, &key_create, &key_delete, NULL};

const struct gc_cli_cmd gc_cli_cmd_api_key = {
    .name = "api-key", .summary = "Manage API keys for scripts and other machine clients",
    .description = "An API key acts with the rights of the user who made it. Use it as "
                   "GOVCLOUD_TOKEN or --token.",
    .subs = key_subs};
