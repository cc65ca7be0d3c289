/* Job worker threads and housekeeping. */
#include "sched/runner.h"

#include "core/core.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/timeutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct gc_runner {
    struct gc_store *st;
    const struct gc_config *cfg;
    pthread_t *workers;
    int nworkers;
    pthread_t cron;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stopping;
    unsigned pending; /* wake-ups not yet consumed */
};

struct gc_job_run {
    struct gc_runner *runner;
    char id[GC_ID_LEN + 1];
    bool cancelled;
    int64_t last_write_ms;
};

static struct gc_runner *the_runner;

static void wake(void)
{
    struct gc_runner *r = the_runner;
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    r->pending++;
    /* broadcast: the housekeeping thread waits on the same condition */
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

const char *gc_job_id(const struct gc_job_run *job)
{
    return job->id;
}

static bool stopping(struct gc_runner *r)
{
    pthread_mutex_lock(&r->lock);
    bool s = r->stopping;
    pthread_mutex_unlock(&r->lock);
    return s;
}

int gc_job_progress(struct gc_job_run *job, int percent, const char *message)
{
    struct gc_error err = {0};
    if (percent < 0)
        percent = 0;
    if (percent > 99)
        percent = 99; /* 100 is written when the job succeeds */
    struct gc_tx *tx;
    if (gc_tx_begin(job->runner->st, GC_TX_WRITE, &tx, &err) == 0) {
        int64_t cancel = 0;
        int64_t now = gc_now_ms();
        int rc = gc_tx_exec(tx,
                            "UPDATE jobs SET version = version + 1, progress = ?, message = ?, updated_at = ?"
                            " WHERE id = ?",
                            GC_ARGS(GC_VINT_(percent), GC_VTXT(message ? message : ""),
                                    GC_VINT_(now), GC_VTXT(job->id)),
                            NULL, &err);
        if (!rc)
            rc = gc_tx_query_int(tx, "SELECT cancel_requested FROM jobs WHERE id = ?",
                                 GC_ARGS(GC_VTXT(job->id)), &cancel, &err);
        if (!rc && gc_tx_commit(tx, &err) == 0)
            job->cancelled = cancel != 0;
        else if (rc)
            gc_tx_rollback(tx);
        job->last_write_ms = now;
    }
    if (err.code)
        gc_warn("jobs", "job %s: cannot record progress: %s", job->id, err.msg);
    return job->cancelled || stopping(job->runner);
}

/* Ends a job in one transaction, with its audit event. */
static void finish(struct gc_runner *r, const char *id, const char *kind, enum gc_job_state state,
                   const char *error, json_t *result)
{
    struct gc_error err = {0};
    struct gc_tx *tx;
    char *res = result ? json_dumps(result, JSON_COMPACT | JSON_SORT_KEYS) : gc_strdup("{}");
    int64_t now = gc_now_ms();
    int rc = gc_tx_begin(r->st, GC_TX_WRITE, &tx, &err);
    char dept[GC_ID_LEN + 1] = "", path[GC_DEPT_PATH_MAX] = "";
    if (!rc) {
        /* the end of a job is audited under the job's department, so that department sees it */
        struct gc_rows *rows = NULL;
        if (gc_tx_query(tx,
                        "SELECT COALESCE(j.department_id, ''), COALESCE(d.path, '') FROM jobs j"
                        " LEFT JOIN departments d ON d.id = j.department_id WHERE j.id = ?",
                        GC_ARGS(GC_VTXT(id)), &rows, &err) == 0 &&
            gc_rows_next(rows, &err) > 0) {
            snprintf(dept, sizeof(dept), "%s", gc_rows_text(rows, 0));
            snprintf(path, sizeof(path), "%s", gc_rows_text(rows, 1));
        }
        gc_rows_free(rows);
        rc = gc_tx_exec(tx,
                        "UPDATE jobs SET version = version + 1, state = ?, error = ?, result = ?, finished_at = ?,"
                        " updated_at = ?, progress = CASE WHEN ? = 1 THEN 100 ELSE progress END"
                        " WHERE id = ?",
                        GC_ARGS(GC_VTXT(gc_job_state_name(state)), GC_VTXT(error ? error : ""),
                                GC_VTXT(res), GC_VINT_(now), GC_VINT_(now),
                                GC_VINT_(state == GC_JOB_SUCCEEDED), GC_VTXT(id)),
                        NULL, &err);
        char action[96];
        snprintf(action, sizeof(action), "job.%s", gc_job_state_name(state));
        struct gc_ctx ctx = {.store = r->st, .cfg = r->cfg, .request_id = "", .source_ip = ""};
        struct gc_audit_event ev = {.action = action,
                                    .resource_type = "job",
                                    .resource_id = id,
                                    .department_id = dept[0] ? dept : NULL,
                                    .department_path = path,
                                    .outcome = state == GC_JOB_SUCCEEDED ? GC_OUTCOME_SUCCESS
                                                                         : GC_OUTCOME_FAILURE,
                                    .reason = error ? error : "",
                                    .actor_name = "system"};
        json_t *detail = json_pack("{s:s}", "kind", kind);
        ev.detail = detail;
        if (!rc)
            rc = gc_audit_append(tx, &ctx, &ev, &err);
        json_decref(detail);
        if (rc)
            gc_tx_rollback(tx);
        else
            rc = gc_tx_commit(tx, &err);
    }
    free(res);
    if (rc)
        gc_err("jobs", "job %s: cannot record its end (%s): %s", id, gc_job_state_name(state),
               err.msg);
    else
        gc_info("jobs", "job %s (%s) %s%s%s", id, kind, gc_job_state_name(state),
                error && error[0] ? ": " : "", error ? error : "");
}

/* Puts a job interrupted by shutdown back in the queue, or fails it. */
static void interrupted(struct gc_runner *r, const char *id, const struct gc_job_kind *k)
{
    if (k && k->resumable) {
        struct gc_error err = {0};
        struct gc_tx *tx;
        if (gc_tx_begin(r->st, GC_TX_WRITE, &tx, &err) == 0) {
            if (gc_tx_exec(tx,
                           "UPDATE jobs SET version = version + 1, state = 'queued', message = 'interrupted by daemon "
                           "shutdown; will run again', updated_at = ? WHERE id = ?",
                           GC_ARGS(GC_VINT_(gc_now_ms()), GC_VTXT(id)), NULL, &err) == 0)
                (void)gc_tx_commit(tx, &err);
            else
                gc_tx_rollback(tx);
        }
        gc_info("jobs", "job %s queued again after shutdown", id);
        return;
    }
    finish(r, id, k ? k->name : "?", GC_JOB_FAILED, "interrupted by daemon shutdown", NULL);
}

/* Claims the oldest queued job; returns 1 with id/kind/params filled, 0 when none. */
static int claim(struct gc_runner *r, char *id, char *kind, size_t kindcap, json_t **params)
{
    struct gc_error err = {0};
    struct gc_tx *tx;
    if (gc_tx_begin(r->st, GC_TX_WRITE, &tx, &err) != 0)
        return 0;
    struct gc_rows *rows = NULL;
    int found = 0;
    char *p = NULL;
    int rc = gc_tx_query(tx,
                         "SELECT id, kind, params FROM jobs WHERE state = 'queued'"
                         " ORDER BY created_at, id LIMIT 1",
                         GC_NOARGS, &rows, &err);
    if (!rc && gc_rows_next(rows, &err) > 0) {
        snprintf(id, GC_ID_LEN + 1, "%s", gc_rows_text(rows, 0));
        snprintf(kind, kindcap, "%s", gc_rows_text(rows, 1));
        p = gc_strdup(gc_rows_text(rows, 2));
        found = 1;
    }
    gc_rows_free(rows);
    int64_t now = gc_now_ms();
    if (found)
        rc = gc_tx_exec(tx,
                        "UPDATE jobs SET version = version + 1, state = 'running', attempts = attempts + 1,"
                        " started_at = ?, updated_at = ? WHERE id = ?",
                        GC_ARGS(GC_VINT_(now), GC_VINT_(now), GC_VTXT(id)), NULL, &err);
    if (rc || !found) {
        gc_tx_rollback(tx);
        free(p);
        if (rc)
            gc_err("jobs", "cannot claim a job: %s", err.msg);
        return 0;
    }
    if (gc_tx_commit(tx, &err) != 0) {
        free(p);
        return 0;
    }
    json_error_t jerr;
    *params = json_loads(p, 0, &jerr);
    if (!*params)
        *params = json_object();
    free(p);
    return 1;
}

static void run_one(struct gc_runner *r, const char *id, const char *kind, json_t *params)
{
    const struct gc_job_kind *k = gc_job_kind_find(kind);
    if (!k) {
        finish(r, id, kind, GC_JOB_FAILED, "no such job kind in this version of govcloudd", NULL);
        return;
    }
    struct gc_job_run job = {.runner = r};
    snprintf(job.id, sizeof(job.id), "%s", id);
    gc_info("jobs", "job %s (%s) started", id, kind);
    json_t *result = NULL;
    struct gc_error err = {0};
    int rc = k->run(&job, params, &result, &err);
    if (job.cancelled)
        finish(r, id, kind, GC_JOB_CANCELLED, "cancelled by a user", result);
    else if (rc && stopping(r))
        interrupted(r, id, k);
    else if (rc)
        finish(r, id, kind, GC_JOB_FAILED, err.msg[0] ? err.msg : "failed", result);
    else
        finish(r, id, kind, GC_JOB_SUCCEEDED, "", result);
    json_decref(result);
}

static void *worker(void *arg)
{
    struct gc_runner *r = arg;
    for (;;) {
        if (stopping(r))
            break;
        char id[GC_ID_LEN + 1], kind[96];
        json_t *params = NULL;
        if (claim(r, id, kind, sizeof(kind), &params)) {
            run_one(r, id, kind, params);
            json_decref(params);
            continue;
        }
        /* nothing queued: sleep until woken, or poll again in a second (another daemon on
         * the same store may have queued work) */
        pthread_mutex_lock(&r->lock);
        if (!r->pending && !r->stopping) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            pthread_cond_timedwait(&r->cond, &r->lock, &ts);
        }
        if (r->pending)
            r->pending--;
        pthread_mutex_unlock(&r->lock);
    }
    return NULL;
}

static void *cron(void *arg)
{
    struct gc_runner *r = arg;
    int64_t next_purge = 0;
    for (;;) {
        pthread_mutex_lock(&r->lock);
        if (!r->stopping) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            pthread_cond_timedwait(&r->cond, &r->lock, &ts);
        }
        bool stop = r->stopping;
        pthread_mutex_unlock(&r->lock);
        if (stop)
            break;
        int64_t now = gc_now_ms();
        if (now >= next_purge) {
            int64_t n = gc_auth_purge_expired(r->st);
            if (n > 0)
                gc_info("auth", "removed %lld expired tokens", (long long)n);
            next_purge = now + 60000;
        }
    }
    return NULL;
}

int gc_jobs_recover(struct gc_store *st, struct gc_error *err)
{
    struct gc_tx *tx;
    int rc = gc_tx_begin(st, GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    struct gc_rows *rows = NULL;
    json_t *found = json_array();
    rc = gc_tx_query(tx,
                     "SELECT id, kind, cancel_requested FROM jobs WHERE state = 'running'",
                     GC_NOARGS, &rows, err);
    while (!rc && (rc = gc_rows_next(rows, err)) > 0) {
        rc = 0;
        json_array_append_new(found, json_pack("[ssb]", gc_rows_text(rows, 0),
                                               gc_rows_text(rows, 1),
                                               gc_rows_int(rows, 2) != 0));
    }
    if (rc > 0)
        rc = 0;
    gc_rows_free(rows);
    gc_tx_rollback(tx);
    struct gc_runner fake = {.st = st};
    pthread_mutex_init(&fake.lock, NULL);
    size_t i;
    json_t *v;
    json_array_foreach(found, i, v) {
        const char *id = json_string_value(json_array_get(v, 0));
        const char *kind = json_string_value(json_array_get(v, 1));
        const struct gc_job_kind *k = gc_job_kind_find(kind);
        if (json_is_true(json_array_get(v, 2))) {
            /* a user asked to cancel it before the daemon stopped: never run it again */
            finish(&fake, id, kind, GC_JOB_CANCELLED, "cancelled by a user", NULL);
        } else if (k && k->resumable) {
            struct gc_tx *wtx;
            if (gc_tx_begin(st, GC_TX_WRITE, &wtx, err) == 0) {
                if (gc_tx_exec(wtx,
                               "UPDATE jobs SET version = version + 1, state = 'queued', message = 'the daemon stopped "
                               "while it ran; running it again', updated_at = ? WHERE id = ?",
                               GC_ARGS(GC_VINT_(gc_now_ms()), GC_VTXT(id)), NULL, err) == 0)
                    (void)gc_tx_commit(wtx, err);
                else
                    gc_tx_rollback(wtx);
            }
            gc_info("jobs", "job %s (%s) was running when the daemon stopped: queued again", id,
                    kind);
        } else {
            finish(&fake, id, kind, GC_JOB_FAILED,
                   "interrupted: the daemon stopped while the job ran, and this kind of job "
                   "cannot resume; submit it again",
                   NULL);
        }
    }
    pthread_mutex_destroy(&fake.lock);
    json_decref(found);
    return rc;
}

struct gc_runner *gc_runner_start(struct gc_store *st, const struct gc_config *cfg)
{
    struct gc_runner *r = gc_calloc(1, sizeof(*r));
    r->st = st;
    r->cfg = cfg;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    r->nworkers = (int)cfg->job_workers;
    r->workers = gc_calloc((size_t)r->nworkers, sizeof(pthread_t));
    the_runner = r;
    gc_job_notify = wake;
    for (int i = 0; i < r->nworkers; i++)
        if (pthread_create(&r->workers[i], NULL, worker, r) != 0)
            GC_BUG("cannot start job worker thread");
    if (pthread_create(&r->cron, NULL, cron, r) != 0)
        GC_BUG("cannot start housekeeping thread");
    return r;
}

void gc_runner_stop(struct gc_runner *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    r->stopping = true;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    for (int i = 0; i < r->nworkers; i++)
        pthread_join(r->workers[i], NULL);
    pthread_join(r->cron, NULL);
    the_runner = NULL;
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
    free(r->workers);
    free(r);
}
