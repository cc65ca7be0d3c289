/* Jobs: the persisted record of slow work. A job is written before it starts and its state
 * moves queued → running → succeeded | failed | cancelled. The runner is in sched/. */
#include "core/core.h"

#include "core/validate.h"
#include "util/buf.h"
#include "util/mem.h"
#include "util/timeutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const state_names[] = {
#define GC_X_JS(e, n) n,
    GC_JOB_STATES(GC_X_JS)
#undef GC_X_JS
};

const char *gc_job_state_name(enum gc_job_state s)
{
    return (unsigned)s < GC_JOB_STATE_COUNT ? state_names[s] : "unknown";
}

int gc_job_state_parse(const char *s)
{
    for (int i = 0; i < GC_JOB_STATE_COUNT; i++)
        if (strcmp(s, state_names[i]) == 0)
            return i;
    return -1;
}

#define MAX_KINDS 128
static const struct gc_job_kind *kinds[MAX_KINDS];
static int nkinds;
static pthread_mutex_t kinds_lock = PTHREAD_MUTEX_INITIALIZER;

static void notify_nothing(void)
{
}
void (*gc_job_notify)(void) = notify_nothing;

void gc_job_register(const struct gc_job_kind *kind)
{
    pthread_mutex_lock(&kinds_lock);
    for (int i = 0; i < nkinds; i++)
        if (kinds[i] == kind || strcmp(kinds[i]->name, kind->name) == 0) {
            pthread_mutex_unlock(&kinds_lock);
            return;
        }
    if (nkinds == MAX_KINDS)
        GC_BUG("too many job kinds");
    kinds[nkinds++] = kind;
    pthread_mutex_unlock(&kinds_lock);
}

const struct gc_job_kind *gc_job_kind_find(const char *name)
{
    const struct gc_job_kind *k = NULL;
    pthread_mutex_lock(&kinds_lock);
    for (int i = 0; i < nkinds && !k; i++)
        if (strcmp(kinds[i]->name, name) == 0)
            k = kinds[i];
    pthread_mutex_unlock(&kinds_lock);
    return k;
}

#define JOB_COLS                                                                              \
    "j.id, j.kind, j.state, j.progress, j.message, j.error, j.params, j.result,"              \
    " j.resource_type, j.resource_id, j.department_id, j.created_by, j.attempts,"             \
    " j.created_at, j.updated_at, j.started_at, j.finished_at, COALESCE(d.path, ''),"         \
    " j.cancel_requested, j.version"
#define JOB_FROM " FROM jobs j LEFT JOIN departments d ON d.id = j.department_id"

static json_t *parse_obj(const char *s)
{
    json_error_t e;
    json_t *v = json_loads(s, 0, &e);
    if (!json_is_object(v)) {
        json_decref(v);
        return json_object();
    }
    return v;
}

static json_t *nullable(struct gc_rows *r, int col)
{
    return gc_rows_null(r, col) ? json_null() : json_string(gc_rows_text(r, col));
}

static json_t *job_json(struct gc_rows *r, char *path)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(gc_rows_text(r, 0)));
    json_object_set_new(o, "kind", json_string(gc_rows_text(r, 1)));
    json_object_set_new(o, "state", json_string(gc_rows_text(r, 2)));
    json_object_set_new(o, "progress", json_integer(gc_rows_int(r, 3)));
    json_object_set_new(o, "message", json_string(gc_rows_text(r, 4)));
    json_object_set_new(o, "error", json_string(gc_rows_text(r, 5)));
    json_object_set_new(o, "params", parse_obj(gc_rows_text(r, 6)));
    json_object_set_new(o, "result", parse_obj(gc_rows_text(r, 7)));
    json_object_set_new(o, "resource_type", nullable(r, 8));
    json_object_set_new(o, "resource_id", nullable(r, 9));
    json_object_set_new(o, "department_id", nullable(r, 10));
    json_object_set_new(o, "created_by", nullable(r, 11));
    json_object_set_new(o, "attempts", json_integer(gc_rows_int(r, 12)));
    json_object_set_new(o, "cancel_requested", json_boolean(gc_rows_int(r, 18) != 0));
    json_object_set_new(o, "created_at", gc_json_time(gc_rows_int(r, 13)));
    json_object_set_new(o, "updated_at", gc_json_time(gc_rows_int(r, 14)));
    json_object_set_new(o, "started_at", gc_json_time(gc_rows_int(r, 15)));
    json_object_set_new(o, "finished_at", gc_json_time(gc_rows_int(r, 16)));
    json_object_set_new(o, "version", json_integer(gc_rows_int(r, 19)));
    if (path)
        snprintf(path, GC_DEPT_PATH_MAX, "%s", gc_rows_text(r, 17));
    return o;
}

static int load(struct gc_tx *tx, const char *id, json_t **out, char *path, struct gc_error *err)
{
    return gc_load_by_id(tx, "SELECT " JOB_COLS JOB_FROM " WHERE j.id = ?", "job", id, job_json, out, path, err);
}

int gc_job_submit(struct gc_tx *tx, const struct gc_ctx *ctx, const char *kind, json_t *params,
                  const char *department_id, const char *resource_type, const char *resource_id,
                  char id[GC_ID_LEN + 1], struct gc_error *err)
{
    if (!gc_job_kind_find(kind))
        return gc_error_set(err, GC_EINVAL, "kind", "unknown job kind '%.64s'", kind);
    char *p = params ? json_dumps(params, JSON_COMPACT | JSON_SORT_KEYS) : gc_strdup("{}");
    gc_id_new(id);
    int64_t now = gc_now_ms();
    int rc = gc_tx_exec(tx,
                        "INSERT INTO jobs (id, kind, state, params, resource_type, resource_id,"
                        " department_id, created_by, created_at, updated_at)"
                        " VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?)",
                        GC_ARGS(GC_VTXT(id), GC_VTXT(kind), GC_VTXT(p), GC_VTXT(resource_type),
                                GC_VTXT(resource_id), GC_VTXT(department_id),
                                GC_VTXT(ctx->who ? ctx->who->user_id : NULL), GC_VINT_(now),
                                GC_VINT_(now)),
                        NULL, err);
    free(p);
    return rc;
}

static const struct gc_jfield create_spec[] = {
    {"kind", GC_JT_STRING, true, false, 1, 64, GC_CS_CODE},
    {"params", GC_JT_OBJECT, false, false, 0, 0, GC_CS_ANY},
};

int gc_job_create(const struct gc_ctx *ctx, json_t *in, json_t **out, struct gc_error *err)
{
    int rc = gc_require(ctx->who, GC_P_JOB_WRITE, err);
    if (!rc)
        rc = gc_json_check(in, create_spec, sizeof(create_spec) / sizeof(create_spec[0]), err);
    if (rc)
        return rc;
    const char *kname = gc_json_str(in, "kind");
    const struct gc_job_kind *k = gc_job_kind_find(kname);
    if (!k || !k->submittable)
        return gc_error_set(err, GC_EINVAL, "kind",
                            "job kind '%s' cannot be submitted directly; jobs of that kind are "
                            "created by the operation they belong to",
                            kname);
    json_t *params = json_object_get(in, "params");
    if (k->check && (rc = k->check(params ? params : json_object(), err)))
        return rc;
    struct gc_tx *tx;
    rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    char id[GC_ID_LEN + 1];
    const char *dept = ctx->who->department_id[0] ? ctx->who->department_id : NULL;
    rc = gc_job_submit(tx, ctx, kname, params, dept, NULL, NULL, id, err);
    json_t *obj = NULL;
    if (!rc)
        rc = load(tx, id, &obj, NULL, err);
    if (!rc) {
        struct gc_audit_event ev = {.action = "job.create",
                                    .resource_type = "job",
                                    .resource_id = id,
                                    .department_id = dept,
                                    .department_path = ctx->who->dept_path,
                                    .outcome = GC_OUTCOME_SUCCESS,
                                    .detail = obj};
        rc = gc_audit_append(tx, ctx, &ev, err);
    }
    if (rc) {
        gc_tx_rollback(tx);
        json_decref(obj);
        return rc;
    }
    rc = gc_tx_commit(tx, err);
    if (rc) {
        json_decref(obj);
        return rc;
    }
    gc_job_notify();
    *out = obj;
    return 0;
}

int gc_job_commit(struct gc_tx *tx, const struct gc_ctx *ctx, const struct gc_audit_event *ev,
                  const char *job, int rc, json_t **out, struct gc_error *err)
{
    rc = gc_audit_commit(tx, ctx, ev, rc, err);
    if (rc)
        return rc;
    gc_job_notify();
    return gc_job_get(ctx, job, out, err);
}

int gc_job_busy(struct gc_tx *tx, const char *resource_type, const char *resource_id,
                const char *what, struct gc_error *err)
{
    int64_t n = 0;
    int rc = gc_tx_query_int(tx,
                             "SELECT COUNT(*) FROM jobs WHERE resource_type = ? AND"
                             " resource_id = ? AND state IN ('queued', 'running')",
                             GC_ARGS(GC_VTXT(resource_type), GC_VTXT(resource_id)), &n, err);
    if (!rc && n > 0)
        rc = gc_error_set(err, GC_ECONFLICT, "id",
                          "%s '%s' has a job in progress; wait for it to end", what,
                          resource_id);
    return rc;
}

int gc_job_get(const struct gc_ctx *ctx, const char *id, json_t **out, struct gc_error *err)
{
    return gc_get_scoped(ctx, load, GC_P_JOB_READ, "job", id, out, err);
}

static json_t *job_row(struct gc_rows *r, const struct gc_principal *who)
{
    (void)who;
    return job_json(r, NULL);
}

int gc_job_list(const struct gc_ctx *ctx, json_t *filters, int limit, const char *cursor,
                json_t **items, char **next_cursor, struct gc_error *err)
{
    int rc = gc_require(ctx->who, GC_P_JOB_READ, err);
    if (!rc)
        rc = gc_page_limit(limit, &limit, err);
    if (!rc)
        rc = gc_page_cursor_id(cursor, err);
    const char *state = gc_json_str(filters, "state");
    if (!rc && state && gc_job_state_parse(state) < 0)
        rc = gc_error_set(err, GC_EINVAL, "state",
                          "unknown job state '%.32s'; states: queued, running, succeeded, failed, "
                          "cancelled",
                          state);
    if (rc)
        return rc;
    struct gc_buf sql;
    gc_buf_init(&sql, GC_BUF_UNLIMITED);
    struct gc_val args[8];
    size_t n = 0;
    (void)gc_buf_adds(&sql, "SELECT " JOB_COLS JOB_FROM " WHERE j.id > ?");
    args[n++] = GC_VTXT(cursor ? cursor : "");
    if (state) {
        (void)gc_buf_adds(&sql, " AND j.state = ?");
        args[n++] = GC_VTXT(state);
    }
    const char *kind = gc_json_str(filters, "kind");
    if (kind) {
        (void)gc_buf_adds(&sql, " AND j.kind = ?");
        args[n++] = GC_VTXT(kind);
    }
    char prefix[GC_DEPT_PATH_MAX + 2];
    if (!gc_role_is_platform(ctx->who->role)) {
        if (ctx->who->role == GC_ROLE_DEPARTMENT_ADMIN) {
            snprintf(prefix, sizeof(prefix), "%s%%", ctx->who->dept_path);
            (void)gc_buf_adds(&sql, " AND d.path LIKE ?");
        } else {
            snprintf(prefix, sizeof(prefix), "%s", ctx->who->dept_path);
            (void)gc_buf_adds(&sql, " AND d.path = ?");
        }
        args[n++] = GC_VTXT(prefix);
    }
    (void)gc_buf_adds(&sql, " ORDER BY j.id LIMIT ?");
    args[n++] = GC_VINT_(limit + 1);
    rc = gc_page_run(ctx, gc_buf_str(&sql), args, n, limit, "id", job_row, items,
                     next_cursor, err);
    gc_buf_release(&sql);
    return rc;
}

int gc_job_cancel(const struct gc_ctx *ctx, const char *id, json_t **out, struct gc_error *err)
{
    struct gc_tx *tx;
    int rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    char path[GC_DEPT_PATH_MAX];
    json_t *obj = NULL;
    rc = load(tx, id, &obj, path, err);
    if (!rc)
        rc = gc_authorize(ctx->who, GC_P_JOB_WRITE, path, "job", id, err);
    const char *state = obj ? gc_json_str(obj, "state") : NULL;
    int64_t now = gc_now_ms();
    if (!rc && state && strcmp(state, "queued") == 0) {
        rc = gc_tx_exec(tx,
                        "UPDATE jobs SET version = version + 1, state = 'cancelled', cancel_requested = 1,"
                        " error = 'cancelled before it started', finished_at = ?,"
                        " updated_at = ? WHERE id = ?",
                        GC_ARGS(GC_VINT_(now), GC_VINT_(now), GC_VTXT(id)), NULL, err);
    } else if (!rc && state && strcmp(state, "running") == 0) {
        rc = gc_tx_exec(tx, "UPDATE jobs SET version = version + 1, cancel_requested = 1, updated_at = ? WHERE id = ?",
                        GC_ARGS(GC_VINT_(now), GC_VTXT(id)), NULL, err);
    } else if (!rc) {
        rc = gc_error_set(err, GC_ECONFLICT, "id", "job '%s' has already ended (%s)", id,
                          state ? state : "?");
    }
    json_decref(obj);
    obj = NULL;
    if (!rc)
        rc = load(tx, id, &obj, NULL, err);
    if (!rc) {
        struct gc_audit_event ev = {.action = "job.cancel",
                                    .resource_type = "job",
                                    .resource_id = id,
                                    .department_id = gc_json_str(obj, "department_id"),
                                    .department_path = path,
                                    .outcome = GC_OUTCOME_SUCCESS};
        rc = gc_audit_append(tx, ctx, &ev, err);
    }
    if (rc) {
        gc_tx_rollback(tx);
        json_decref(obj);
        return rc;
    }
    rc = gc_tx_commit(tx, err);
    if (rc) {
        json_decref(obj);
        return rc;
    }
    *out = obj;
    return 0;
}

int gc_job_count_by_state(struct gc_store *st, int64_t *counts, struct gc_error *err)
{
    memset(counts, 0, sizeof(int64_t) * GC_JOB_STATE_COUNT);
    struct gc_tx *tx;
    int rc = gc_tx_begin(st, GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    struct gc_rows *r = NULL;
    rc = gc_tx_query(tx, "SELECT state, COUNT(*) FROM jobs GROUP BY state", GC_NOARGS, &r, err);
    while (!rc && (rc = gc_rows_next(r, err)) > 0) {
        rc = 0; /* a row */
        int s = gc_job_state_parse(gc_rows_text(r, 0));
        if (s >= 0)
            counts[s] = gc_rows_int(r, 1);
    }
    if (rc > 0)
        rc = 0;
    gc_rows_free(r);
    gc_tx_rollback(tx);
    return rc;
}
