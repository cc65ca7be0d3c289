/* job list/get/submit/cancel/wait. wait polls GET /v1/jobs/{id}: a progress bar redrawn in
 * place on a terminal, one line per change otherwise, so logs of scripted runs stay short. */
#include "cli/cmds.h"

#include "cli/http.h"
#include "util/error.h"
#include "util/mem.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "util/banned.h" /* last: it redefines library names */

#define MAX_PATH_BYTES 4096
#define POLL_FIRST_MS 200
#define POLL_MAX_MS 2000
/* a daemon restart (jobs resume) or a busy store should not end a long wait */
#define MAX_TRANSIENT_FAILURES 10
#define BAR_CELLS 24

static const struct gc_cli_col job_cols[] = {
    {"ID", "id", 0},
    {"KIND", "kind", 0},
    {"STATE", "state", 0},
    {"PROGRESS", "progress", 0},
    {"MESSAGE", "message", 40},
    {"CREATED_AT", "created_at", 0},
    {0},
};

static const struct gc_cli_resource job_res = {.noun = "job", .path = "/v1/jobs",
                                               .cols = job_cols};

static bool state_is_final(const char *s)
{
    return strcmp(s, "succeeded") == 0 || strcmp(s, "failed") == 0 || strcmp(s, "cancelled") == 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
        /* EINTR: sleep the rest */
    }
}

static size_t terminal_columns(void)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
        return ws.ws_col;
    return 80;
}

/* The job's state, progress (0-100) and sanitised message (caller frees). */
static void job_fields(const json_t *job, const char **state, long long *progress,
                       char **message, size_t maxw)
{
    struct gc_buf b;
    const char *m = json_string_value(json_object_get(job, "message"));
    *state = json_string_value(json_object_get(job, "state"));
    if (!*state)
        *state = "unknown";
    *progress = json_integer_value(json_object_get(job, "progress"));
    if (*progress < 0)
        *progress = 0;
    if (*progress > 100)
        *progress = 100;
    gc_buf_init(&b, GC_BUF_UNLIMITED);
    if (gc_cli_sanitize(&b, m ? m : "", maxw) != 0)
        GC_BUG("unlimited buffer refused data");
    *message = gc_buf_steal(&b);
}

/* One line, redrawn in place: "[#########...............]  40% running  copying image  12s" */
static void draw_bar(const json_t *job, double elapsed_s)
{
    const char *state;
    long long pct;
    char *msg;
    char head[128];
    size_t cols = terminal_columns();

    job_fields(job, &state, &pct, &msg, 0);
    size_t filled = (size_t)(pct * BAR_CELLS / 100);
    int n = snprintf(head, sizeof(head), "[%.*s%.*s] %3lld%% %-9s ", (int)filled,
                     "########################", (int)(BAR_CELLS - filled),
                     "........................", pct, state);
    char tail[32];
    int tn = snprintf(tail, sizeof(tail), "  %.0fs", elapsed_s);
    size_t room = cols > (size_t)(n + tn + 1) ? cols - (size_t)(n + tn + 1) : 0;
    struct gc_buf cut;
    gc_buf_init(&cut, GC_BUF_UNLIMITED);
    if (room > 0 && gc_cli_sanitize(&cut, msg, room) != 0)
        GC_BUG("unlimited buffer refused data");
    /* \r and erase-line keep it on one line however the message length changes */
    printf("\r\033[K%s%s%s", head, gc_buf_str(&cut), tail);
    fflush(stdout);
    gc_buf_release(&cut);
    free(msg);
}

/* "job ID running 40% copying image"; returns the line (caller frees) for change detection. */
static char *plain_line(const char *id, const json_t *job)
{
    const char *state;
    long long pct;
    char *msg;
    struct gc_buf b, sid;
    job_fields(job, &state, &pct, &msg, 0);
    gc_buf_init(&b, GC_BUF_UNLIMITED);
    gc_buf_init(&sid, GC_BUF_UNLIMITED);
    if (gc_cli_sanitize(&sid, id, 80) != 0 ||
        gc_buf_addf(&b, "job %s %s %lld%%%s%s", gc_buf_str(&sid), state, pct, msg[0] ? " " : "",
                    msg) != 0)
        GC_BUG("unlimited buffer refused data");
    free(msg);
    gc_buf_release(&sid);
    return gc_buf_steal(&b);
}

int gc_cli_job_wait(struct gc_cli *cli, const char *id, long long timeout_s,
                    bool json_on_success)
{
    bool bar = cli->stdout_tty && cli->output == GC_CLI_OUT_TABLE;
    bool plain = !cli->stdout_tty && cli->output == GC_CLI_OUT_TABLE;
    int64_t start = gc_mono_ns();
    int64_t deadline = timeout_s > 0 ? start + timeout_s * 1000000000LL : 0;
    long delay = POLL_FIRST_MS;
    int failures = 0;
    char *last = NULL;
    json_t *job = NULL;
    struct gc_buf path;
    int rc;

    gc_buf_init(&path, MAX_PATH_BYTES);
    rc = gc_cli_id_path(cli, &path, "/v1/jobs", id, NULL);
    if (rc != GC_CLI_OK)
        goto cleanup;

    for (;;) {
        struct gc_cli_resp resp;
        struct gc_cli_req req = {.method = "GET", .path = gc_buf_str(&path), .quiet = true};
        rc = gc_cli_http(cli, &req, &resp);
        bool transient = rc == GC_CLI_ECONNECT || resp.status == 502 || resp.status == 503 ||
                         resp.status == 504;
        if (rc != GC_CLI_OK && !(transient && failures < MAX_TRANSIENT_FAILURES)) {
            if (bar)
                printf("\n");
            gc_cli_report(&resp);
            gc_cli_resp_release(&resp);
            goto cleanup;
        }
        if (rc == GC_CLI_OK && !json_is_object(resp.json)) {
            gc_cli_resp_release(&resp);
            if (bar)
                printf("\n");
            rc = gc_cli_fail(GC_CLI_EFAIL, "the server's answer about job %s is not an object",
                             id);
            goto cleanup;
        }
        if (rc == GC_CLI_OK) {
            failures = 0;
            json_decref(job);
            job = resp.json;
            resp.json = NULL;
        } else {
            failures++;
        }
        gc_cli_resp_release(&resp);

        if (job) {
            double elapsed = (double)(gc_mono_ns() - start) / 1e9;
            if (bar) {
                draw_bar(job, elapsed);
            } else if (plain) {
                char *line = plain_line(id, job);
                if (!last || strcmp(line, last) != 0) {
                    printf("%s\n", line);
                    fflush(stdout);
                    free(last);
                    last = line;
                } else {
                    free(line);
                }
            }
            const char *state = json_string_value(json_object_get(job, "state"));
            if (state && state_is_final(state))
                break;
        }
        int64_t now = gc_mono_ns();
        if (deadline && now >= deadline) {
            if (bar)
                printf("\n");
            if (cli->output == GC_CLI_OUT_JSON && job)
                gc_cli_print_json(stdout, job);
            rc = gc_cli_fail(GC_CLI_EFAIL, "timed out after %llds waiting for job %s", timeout_s,
                             id);
            goto cleanup;
        }
        long wait = delay;
        if (deadline && (deadline - now) / 1000000 < wait)
            wait = (long)((deadline - now) / 1000000) + 1;
        sleep_ms(wait);
        delay = delay * 3 / 2 > POLL_MAX_MS ? POLL_MAX_MS : delay * 3 / 2;
    }

    if (bar)
        printf("\n");
    const char *state = json_string_value(json_object_get(job, "state"));
    bool ok = strcmp(state, "succeeded") == 0;
    if (cli->output == GC_CLI_OUT_JSON && (json_on_success || !ok))
        gc_cli_print_json(stdout, job);
    if (ok) {
        rc = GC_CLI_OK;
    } else {
        const char *err = json_string_value(json_object_get(job, "error"));
        struct gc_buf safe;
        gc_buf_init(&safe, GC_BUF_UNLIMITED);
        if (gc_cli_sanitize(&safe, err && err[0] ? err : "no reason given", 0) != 0)
            GC_BUG("unlimited buffer refused data");
        rc = gc_cli_fail(GC_CLI_EJOB, "job %s %s: %s", id, state, gc_buf_str(&safe));
        gc_buf_release(&safe);
    }

cleanup:
    free(last);
    json_decref(job);
    gc_buf_release(&path);
    return rc;
}

static int wait_run(struct gc_cli *cli, const struct gc_cli_cmd *cmd,
                    const struct gc_cli_args *args)
{
    const char *tmo = gc_cli_arg(cmd, args, "timeout");
    return gc_cli_job_wait(cli, args->pos[0], tmo ? strtoll(tmo, NULL, 10) : 0, true);
}

static int cancel_run(struct gc_cli *cli, const struct gc_cli_cmd *cmd,
                      const struct gc_cli_args *args)
{
    struct gc_buf path;
    struct gc_cli_resp resp = {0};
    (void)cmd;

    gc_buf_init(&path, MAX_PATH_BYTES);
    int rc = gc_cli_id_path(cli, &path, "/v1/jobs", args->pos[0], "/cancel");
    if (rc == GC_CLI_OK) {
        struct gc_cli_req req = {.method = "POST", .path = gc_buf_str(&path)};
        rc = gc_cli_http(cli, &req, &resp);
    }
    if (rc == GC_CLI_OK && json_is_object(resp.json))
        gc_cli_show(cli, resp.json);
    gc_cli_resp_release(&resp);
    gc_buf_release(&path);
    return rc;
}

static int submit_run(struct gc_cli *cli, const struct gc_cli_cmd *cmd,
                      const struct gc_cli_args *args)
{
    const char *kind = gc_cli_arg(cmd, args, "kind");
    const char *params = gc_cli_arg(cmd, args, "params");
    struct gc_cli_resp resp = {0};
    json_t *body = json_object();
    json_t *jkind = json_string(kind);
    int rc = GC_CLI_OK;

    if (!jkind) {
        rc = gc_cli_usage_error(cli, "the value of --kind is not valid UTF-8");
        goto cleanup;
    }
    json_object_set_new(body, "kind", jkind);
    if (params) {
        json_error_t jerr;
        json_t *p = json_loads(params, 0, &jerr);
        if (!json_is_object(p)) {
            json_decref(p);
            rc = gc_cli_usage_error(cli, "--params must be a JSON object: %s",
                                    p ? "got another JSON value" : jerr.text);
            goto cleanup;
        }
        json_object_set_new(body, "params", p);
    }
    struct gc_cli_req req = {.method = "POST", .path = "/v1/jobs", .body = body};
    rc = gc_cli_http(cli, &req, &resp);
    if (rc == GC_CLI_OK && json_is_object(resp.json))
        gc_cli_show(cli, resp.json);

cleanup:
    gc_cli_resp_release(&resp);
    json_decref(body);
    return rc;
}

static const char *const state_choices[] = {"queued",    "running",   "succeeded",
                                            "failed",    "cancelled", NULL};

static const struct gc_cli_opt job_list_opts[] = {
    {.name = "state", .type = GC_OPT_CHOICE, .metavar = "STATE", .key = "state",
     .choices = state_choices, .help = "only jobs in this state"},
    {.name = "kind", .type = GC_OPT_STRING, .metavar = "KIND", .key = "kind",
     .help = "only jobs of this kind, e.g. vm.create"},
    GC_CLI_OPT_LIMIT, GC_CLI_OPT_CURSOR, GC_CLI_OPT_ALL, {0},
};

static const struct gc_cli_opt job_wait_opts[] = {
    {.name = "timeout", .type = GC_OPT_INT, .metavar = "SECONDS", .min = 0, .max = 31536000,
     .help = "give up after SECONDS (exit code 1); 0, the default, waits for ever"},
    {0},
};

static const struct gc_cli_opt job_submit_opts[] = {
    {.name = "kind", .type = GC_OPT_STRING, .metavar = "KIND", .flags = GC_OPT_REQUIRED,
     .help = "job kind; only kinds that may be submitted directly, such as the test kinds"},
    {.name = "params", .type = GC_OPT_STRING, .metavar = "JSON",
     .help = "the job's parameters as a JSON object, e.g. '{\"seconds\": 5}'"},
    {0},
};

static const struct gc_cli_cmd job_list = {
    .name = "list", .summary = "List jobs", .opts = job_list_opts, .run = gc_cli_res_list,
    .data = &job_res};
static const struct gc_cli_cmd job_get = {
    .name = "get", .summary = "Show one job", .posargs = "ID", .npos = 1,
    .run = gc_cli_res_get, .data = &job_res};
static const struct gc_cli_cmd job_submit = {
    .name = "submit", .summary = "Submit a job of a kind that may be submitted directly",
    .opts = job_submit_opts, .run = submit_run};
static const struct gc_cli_cmd job_cancel = {
    .name = "cancel", .summary = "Cancel a job (a running one stops at its next checkpoint)",
    .posargs = "ID", .npos = 1, .run = cancel_run};
static const struct gc_cli_cmd job_wait = {
    .name = "wait", .summary = "Wait for a job to end, showing its progress",
    .description = "Exits 0 when the job succeeded and 9 when it failed or was cancelled. On a "
                   "terminal a progress bar is redrawn in place; otherwise a line 'job ID STATE "
                   "N% MESSAGE' is printed whenever something changes. With --output json only "
                   "the final job is printed.",
    .posargs = "ID", .npos = 1, .opts = job_wait_opts, .run = wait_run};

static const struct gc_cli_cmd *const job_subs[] = {&job_list, &job_get, &job_submit,
                                                    &job_cancel, &job_wait, NULL};

const struct gc_cli_cmd gc_cli_cmd_job = {
    .name = "job", .summary = "Follow and cancel slow operations (jobs)", .subs = job_subs};
