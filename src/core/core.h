/* The rules of govcloud: who may do what to which object, and the state machines.
 * core knows no HTTP, SQL engine or hypervisor: it calls the store and the drivers.
 * Representations are jansson objects (JSON is the data model of the API and the audit). */
#ifndef GC_CORE_H
#define GC_CORE_H

#include "store/store.h"
#include "util/config.h"
#include "util/error.h"
#include "util/id.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* X(enum, name, platform-wide) */
#define GC_ROLES(X)                                         \
    X(GC_ROLE_PLATFORM_ADMIN, "platform_admin", true)       \
    X(GC_ROLE_OPERATOR, "operator", true)                   \
    X(GC_ROLE_AUDITOR, "auditor", true)                     \
    X(GC_ROLE_SUPERVISOR, "supervisor", true)               \
    X(GC_ROLE_DEPARTMENT_ADMIN, "department_admin", false)  \
    X(GC_ROLE_DEPARTMENT_USER, "department_user", false)

enum gc_role {
#define GC_X_ROLE(e, n, p) e,
    GC_ROLES(GC_X_ROLE)
#undef GC_X_ROLE
        GC_ROLE_COUNT
};

const char *gc_role_name(enum gc_role r);
int gc_role_parse(const char *s); /* -1 when unknown */
bool gc_role_is_platform(enum gc_role r);

/* Deepest department tree; paths are '/id/id/.../' so this bounds their length. */
#define GC_DEPT_MAX_DEPTH 8
#define GC_DEPT_PATH_MAX (GC_DEPT_MAX_DEPTH * (GC_ID_LEN + 1) + 2)

/* The authenticated caller of an operation. */
struct gc_principal {
    char user_id[GC_ID_LEN + 1];
    char username[72];
    enum gc_role role;
    char department_id[GC_ID_LEN + 1]; /* "" for platform roles */
    char dept_path[GC_DEPT_PATH_MAX];  /* "" for platform roles */
    char token_id[GC_ID_LEN + 1];
    bool via_api_key;
};

/* Everything an operation needs to know about where it comes from. */
struct gc_ctx {
    struct gc_store *store;
    const struct gc_config *cfg;
    const struct gc_principal *who; /* NULL before authentication */
    const char *request_id;         /* "" when none */
    const char *source_ip;          /* "" when none */
};

/* Permissions checked by gc_authorize; the role matrix is in rbac.c (and docs/security.md). */
#define GC_PERMS(X)            \
    X(GC_P_DEPT_READ)          \
    X(GC_P_DEPT_WRITE)         \
    X(GC_P_USER_READ)          \
    X(GC_P_USER_WRITE)         \
    X(GC_P_AUDIT_READ)         \
    X(GC_P_JOB_READ)           \
    X(GC_P_JOB_WRITE)          \
    X(GC_P_SUPERVISION_READ)  \
    X(GC_P_HOST_READ)          \
    X(GC_P_HOST_WRITE)         \
    X(GC_P_CATALOG_READ)       \
    X(GC_P_CATALOG_WRITE)      \
    X(GC_P_VM_READ)            \
    X(GC_P_VM_WRITE)

enum gc_perm {
#define GC_X_PERM(e) e,
    GC_PERMS(GC_X_PERM)
#undef GC_X_PERM
        GC_P_COUNT
};

bool gc_role_can(enum gc_role role, enum gc_perm perm);
/* True when an object of department path obj_path ("" or NULL for a platform object) lies
 * in the caller's scope. */
bool gc_in_scope(const struct gc_principal *who, const char *obj_path);
/* Scope first (out of scope → GC_ENOTFOUND with "<what> '<id>' not found", so existence does
 * not leak), then the role (GC_EPERM). */
int gc_authorize(const struct gc_principal *who, enum gc_perm perm, const char *obj_path,
                 const char *what, const char *id, struct gc_error *err);
/* Role check only, for collection operations. */
int gc_require(const struct gc_principal *who, enum gc_perm perm, struct gc_error *err);

/* ---- audit (audit.c) ---- */
enum gc_outcome { GC_OUTCOME_SUCCESS, GC_OUTCOME_FAILURE, GC_OUTCOME_DENIED };

struct gc_audit_event {
    const char *action;        /* "department.create" */
    const char *resource_type; /* "department" */
    const char *resource_id;   /* may be NULL */
    const char *department_id; /* the department the resource belongs to, may be NULL */
    const char *department_path;
    enum gc_outcome outcome;
    const char *reason;        /* "" on success */
    json_t *detail;            /* borrowed, may be NULL */
    const char *actor_name;    /* overrides ctx->who (for logins); NULL to use ctx->who */
};

/* Appends an event to the SM3 chain inside the caller's write transaction. */
int gc_audit_append(struct gc_tx *tx, const struct gc_ctx *ctx, const struct gc_audit_event *ev,
                    struct gc_error *err);
/* The end of a change in tx: unless rc already failed, appends ev and commits; rolls back
 * otherwise. Returns the outcome. */
int gc_audit_commit(struct gc_tx *tx, const struct gc_ctx *ctx, const struct gc_audit_event *ev,
                    int rc, struct gc_error *err);
/* Records a failed or denied attempt in a transaction of its own. */
void gc_audit_failure(const struct gc_ctx *ctx, const char *action, const char *resource_type,
                      const char *resource_id, enum gc_outcome outcome, const char *reason);
int gc_audit_list(const struct gc_ctx *ctx, json_t *filters, int limit, const char *cursor,
                  json_t **items, char **next_cursor, struct gc_error *err);
/* Walks the whole chain; *report gets {"intact":…,"events":…,…}. */
int gc_audit_verify(struct gc_store *st, json_t **report, struct gc_error *err);

/* ---- departments (department.c) ---- */
int gc_dept_create(const struct gc_ctx *ctx, json_t *in, json_t **out, struct gc_error *err);
int gc_dept_get(const struct gc_ctx *ctx, const char *id, json_t **out, struct gc_error *err);
/* The same as a serialised body (malloc'd), served from the representation cache when it is
 * current; *version gets the version for the ETag. */
int gc_dept_get_body(const struct gc_ctx *ctx, const char *id, char **body, int64_t *version,
                     struct gc_error *err);
int gc_dept_list(const struct gc_ctx *ctx, json_t *filters, int limit, const char *cursor,
                 json_t **items, char **next_cursor, struct gc_error *err);
/* if_match: the expected version, or -1 for none. */
int gc_dept_update(const struct gc_ctx *ctx, const char *id, int64_t if_match, json_t *in,
                   json_t **out, struct gc_error *err);
int gc_dept_delete(const struct gc_ctx *ctx, const char *id, int64_t if_match,
                   struct gc_error *err);
/* Department path of id inside tx; GC_ENOTFOUND when missing. path needs GC_DEPT_PATH_MAX. */
int gc_dept_path(struct gc_tx *tx, const char *id, char *path, struct gc_error *err);

/* ---- users (user.c) ---- */
int gc_user_create(const struct gc_ctx *ctx, json_t *in, json_t **out, struct gc_error *err);
int gc_user_get(const struct gc_ctx *ctx, const char *id, json_t **out, struct gc_error *err);
int gc_user_get_body(const struct gc_ctx *ctx, const char *id, char **body, int64_t *version,
                     struct gc_error *err);
int gc_user_list(const struct gc_ctx *ctx, json_t *filters, int limit, const char *cursor,
                 json_t **items, char **next_cursor, struct gc_error *err);
int gc_user_update(const struct gc_ctx *ctx, const char *id, int64_t if_match, json_t *in,
                   json_t **out, struct gc_error *err);
int gc_user_delete(const struct gc_ctx *ctx, const char *id, int64_t if_match,
                   struct gc_error *err);
/* Checks the password policy; GC_EINVAL naming field "password" otherwise. */
int gc_password_policy(const struct gc_config *cfg, const char *pw, struct gc_error *err);
/* First start: creates user admin (platform_admin) when there are no users. *created_pw gets
 * a malloc'd random password when none was given and the admin was created, else NULL. */
int gc_bootstrap_admin(struct gc_store *st, const struct gc_config *cfg, const char *password,
                       char **created_pw, struct gc_error *err);

/* ---- authentication (auth.c) ---- */
/* Checks the password, applies lockout, creates a session token. */
int gc_auth_login(const struct gc_ctx *ctx, json_t *in, json_t **out, struct gc_error *err);
/* Resolves a bearer secret to a principal; GC_EAUTH when unknown, expired or revoked. */
int gc_auth_resolve(struct gc_store *st, const char *secret, struct gc_principal *who,
                    struct gc_error *err);
int gc_auth_logout(const struct gc_ctx *ctx, struct gc_error *err);
int gc_apikey_create(const struct gc_ctx *ctx, json_t *in, json_t **out, struct gc_error *err);
int gc_apikey_list(const struct gc_ctx *ctx, int limit, const char *cursor, json_t **items,
                   char **next_cursor, struct gc_error *err);
int gc_apikey_delete(const struct gc_ctx *ctx, const char *id, struct gc_error *err);
/* Forgets cached principals (after a user or token changes). */
void gc_auth_cache_flush(void);
/* Deletes expired tokens; returns how many. */
int64_t gc_auth_purge_expired(struct gc_store *st);


/* ---- jobs (job.c); the runner is in sched/ ---- */
#define GC_JOB_STATES(X)                  \
    X(GC_JOB_QUEUED, "queued")            \
    X(GC_JOB_RUNNING, "running")          \
    X(GC_JOB_SUCCEEDED, "succeeded")      \
    X(GC_JOB_FAILED, "failed")            \
    X(GC_JOB_CANCELLED, "cancelled")

enum gc_job_state {
#define GC_X_JS(e, n) e,
    GC_JOB_STATES(GC_X_JS)
#undef GC_X_JS
        GC_JOB_STATE_COUNT
};
const char *gc_job_state_name(enum gc_job_state s);
int gc_job_state_parse(const char *s); /* -1 when unknown */

struct gc_job_run; /* a running job, handed to its kind's run function */

/* A kind of job. run returns 0 (succeeded) or a GC_E* code with err filled (failed);
 * it calls gc_job_progress now and then, and stops early when that returns nonzero. */
struct gc_job_kind {
    const char *name;
    int (*run)(struct gc_job_run *job, const json_t *params, json_t **result,
               struct gc_error *err);
    bool resumable;   /* may be started again from the beginning after a crash */
    bool submittable; /* may be created through POST /v1/jobs */
    /* validates params for POST /v1/jobs; NULL accepts any object */
    int (*check)(const json_t *params, struct gc_error *err);
};

/* Registers a kind (the struct must outlive the process). */
void gc_job_register(const struct gc_job_kind *kind);
const struct gc_job_kind *gc_job_kind_find(const char *name);

/* Queues a job inside the caller's write transaction; id gets its id. Call
 * gc_job_notify() after the commit so that a worker picks it up at once. */
int gc_job_submit(struct gc_tx *tx, const struct gc_ctx *ctx, const char *kind, json_t *params,
                  const char *department_id, const char *resource_type, const char *resource_id,
                  char id[GC_ID_LEN + 1], struct gc_error *err);
/* Set by the runner: called after a job is queued. */
extern void (*gc_job_notify)(void);

int gc_job_create(const struct gc_ctx *ctx, json_t *in, json_t **out, struct gc_error *err);
/* The end of an operation that queued a job in tx: unless rc already failed, appends the
 * audit event ev, commits, wakes the runner and gives the job in *out; rolls back otherwise. */
int gc_job_commit(struct gc_tx *tx, const struct gc_ctx *ctx, const struct gc_audit_event *ev,
                  const char *job, int rc, json_t **out, struct gc_error *err);
/* GC_ECONFLICT when a job of that resource is queued or running. */
int gc_job_busy(struct gc_tx *tx, const char *resource_type, const char *resource_id,
                const char *what, struct gc_error *err);
int gc_job_get(const struct gc_ctx *ctx, const char *id, json_t **out, struct gc_error *err);
int gc_job_list(const struct gc_ctx *ctx, json_t *filters, int limit, const char *cursor,
                json_t **items, char **next_cursor, struct gc_error *err);
int gc_job_cancel(const struct gc_ctx *ctx, const char *id, json_t **out, struct gc_error *err);
/* Counts per state, for /metrics: counts[GC_JOB_STATE_COUNT]. */
int gc_job_count_by_state(struct gc_store *st, int64_t *counts, struct gc_error *err);

/* For run functions: records progress (0–100) and a message. Returns nonzero when the job
 * must stop now: cancelled by a user, or the daemon is shutting down. */
int gc_job_progress(struct gc_job_run *job, int percent, const char *message);
const char *gc_job_id(const struct gc_job_run *job);

/* ---- availability (availability.c; docs/availability.md) ---- */
/* Opens or closes the VM's incident to match its record (state, power state, drift), in tx;
 * a VM that is gone has its open incident closed. Call after every change of those. */
int gc_vm_incident_sync(struct gc_tx *tx, const char *vm, int64_t now, struct gc_error *err);
/* The same for any resource: an incident of type/id is open exactly while cause is not NULL
 * (opened with it; closed with end_reason). */
int gc_incident_sync(struct gc_tx *tx, const char *type, const char *id, const char *dept,
                     const char *host, const char *cause, const char *end_reason, int64_t now,
                     struct gc_error *err);
/* Records that a VM was created (created) or deleted, in tx. */
int gc_vm_lifetime(struct gc_tx *tx, const char *vm, const char *dept, bool created, int64_t now,
                   struct gc_error *err);
/* GET /v1/availability: query {scope: platform|department|vm, id, from, to, target_percent}. */
int gc_availability_get(const struct gc_ctx *ctx, json_t *query, json_t **out,
                        struct gc_error *err);
/* GET /v1/availability/report: query {scope, id, year, month, target_percent}: the year by
 * month, or the month by day, and the total. */
int gc_availability_report(const struct gc_ctx *ctx, json_t *query, json_t **out,
                           struct gc_error *err);
/* The platform's availability over [from, to), in percent (the error-budget burn rate). */
int gc_availability_percent(struct gc_store *st, int64_t from, int64_t to, double *pct,
                            struct gc_error *err);
int gc_mwindow_create(const struct gc_ctx *ctx, json_t *in, json_t **out, struct gc_error *err);
int gc_mwindow_list(const struct gc_ctx *ctx, json_t *filters, int limit, const char *cursor,
                    json_t **items, char **next_cursor, struct gc_error *err);
int gc_mwindow_delete(const struct gc_ctx *ctx, const char *id, int64_t if_match,
                      struct gc_error *err);

/* ---- notification channels and the outbox (notify.c) ---- */
int gc_channel_create(const struct gc_ctx *ctx, json_t *in, json_t **out, struct gc_error *err);
int gc_channel_list(const struct gc_ctx *ctx, json_t *filters, int limit, const char *cursor,
                    json_t **items, char **next_cursor, struct gc_error *err);
int gc_channel_delete(const struct gc_ctx *ctx, const char *id, int64_t if_match,
                      struct gc_error *err);
/* Queues event (gets "event_id" and "time") for every enabled channel, in tx: it is sent
 * if and only if tx commits. */
int gc_notify_enqueue(struct gc_tx *tx, json_t *event, int64_t now, struct gc_error *err);

/* ---- alarms (alarm.c; docs/monitoring.md#alarms) ---- */
struct gc_alarm_fire {
    const char *rule_id, *rule_name, *severity;
    const char *summary;    /* the rule's template: {{label}}, {{value}}, {{value_percent}},
                             * {{reason}} */
    const char *series;     /* what the rule fired on: a series key, or "vm/<id>" */
    json_t *labels;         /* borrowed; includes alertname and severity */
    double value, threshold;
    bool has_threshold;
    const char *reason;     /* why, when the collector knows it; may be NULL */
    const char *dept;       /* may be NULL */
    int64_t now, started_at; /* started_at 0: now */
};
/* Opens an alarm for (rule, series) in tx, or updates the open one (one per fingerprint);
 * a new alarm is notified unless a silence matches it. */
int gc_alarm_fire(struct gc_tx *tx, const struct gc_alarm_fire *a, struct gc_error *err);
/* Resolves the open alarm of (rule, series), if any; notified when its firing was. */
int gc_alarm_resolve(struct gc_tx *tx, const char *rule_id, const char *series,
                     const char *end_reason, int64_t now, struct gc_error *err);
/* Resolves every open alarm of a rule. */
int gc_alarm_resolve_rule(struct gc_tx *tx, const char *rule_id, const char *end_reason,
                          int64_t now, struct gc_error *err);
/* Sends the firing of alarms whose silence has ended; *sent gets how many. */
int gc_alarm_unsilence(struct gc_tx *tx, int64_t now, int *sent, struct gc_error *err);
/* The incident rules: an incident of type/id opened (cause) or closed (end_reason). */
int gc_alarm_incident(struct gc_tx *tx, const char *type, const char *id, const char *dept,
                      const char *host, const char *cause, const char *end_reason, int64_t now,
                      struct gc_error *err);
/* Changes with every change of a rule; the evaluator reloads when it moves. */
uint64_t gc_alarm_rules_generation(void);
/* The enabled metric rules: [{id, name, metric, matchers, func, op, threshold, for_ms,
 * severity, summary, department_id}]. */
int gc_alarm_rules_snapshot(struct gc_store *st, json_t **out, struct gc_error *err);
/* The open alarms of metric rules: [{rule_id, series, labels, started_at}]. */
int gc_alarm_open_metric(struct gc_store *st, json_t **out, struct gc_error *err);
/* Parsing and evaluating, shared with the evaluator and the tests. */
int gc_alarm_selector_parse(const char *sel, char *metric, size_t metric_size, json_t **matchers,
                            struct gc_error *err);
bool gc_alarm_matchers_hold(json_t *matchers, json_t *labels);
int gc_alarm_op_parse(const char *s);
bool gc_alarm_op_holds(int op, double v, double threshold);
void gc_alarm_render(const char *tpl, json_t *labels, double value, const char *reason,
                     char *out, size_t n);
int gc_alarm_list(const struct gc_ctx *ctx, json_t *filters, int limit, const char *cursor,
                  json_t **items, char **next_cursor, struct gc_error *err);
int gc_alarm_get(const struct gc_ctx *ctx, const char *id, json_t **out, struct gc_error *err);
int gc_alarm_ack(const struct gc_ctx *ctx, const char *id, json_t *in, json_t **out,
                 struct gc_error *err);
int gc_alarm_rule_create(const struct gc_ctx *ctx, json_t *in, json_t **out,
                         struct gc_error *err);
int gc_alarm_rule_get(const struct gc_ctx *ctx, const char *id, json_t **out,
                      struct gc_error *err);
int gc_alarm_rule_list(const struct gc_ctx *ctx, json_t *filters, int limit, const char *cursor,
                       json_t **items, char **next_cursor, struct gc_error *err);
int gc_alarm_rule_update(const struct gc_ctx *ctx, const char *id, int64_t if_match, json_t *in,
                         json_t **out, struct gc_error *err);
int gc_alarm_rule_delete(const struct gc_ctx *ctx, const char *id, int64_t if_match,
                         struct gc_error *err);
int gc_silence_create(const struct gc_ctx *ctx, json_t *in, json_t **out, struct gc_error *err);
int gc_silence_list(const struct gc_ctx *ctx, json_t *filters, int limit, const char *cursor,
                    json_t **items, char **next_cursor, struct gc_error *err);
int gc_silence_delete(const struct gc_ctx *ctx, const char *id, int64_t if_match,
                      struct gc_error *err);

/* ---- hypervisor hosts (host.c) ---- */
int gc_host_create(const struct gc_ctx *ctx, json_t *in, json_t **out, struct gc_error *err);
int gc_host_get(const struct gc_ctx *ctx, const char *id, json_t **out, struct gc_error *err);
int gc_host_list(const struct gc_ctx *ctx, json_t *filters, int limit, const char *cursor,
                 json_t **items, char **next_cursor, struct gc_error *err);
int gc_host_update(const struct gc_ctx *ctx, const char *id, int64_t if_match, json_t *in,
                   json_t **out, struct gc_error *err);
int gc_host_delete(const struct gc_ctx *ctx, const char *id, int64_t if_match,
                   struct gc_error *err);
/* Set by the daemon to the host manager: a host was registered / removed. */
extern void (*gc_host_added)(const char *id, const char *uri);
extern void (*gc_host_removed)(const char *id);

/* ---- flavors and images: the catalogue (catalog.c) ---- */
int gc_flavor_create(const struct gc_ctx *ctx, json_t *in, json_t **out, struct gc_error *err);
int gc_flavor_get(const struct gc_ctx *ctx, const char *id, json_t **out, struct gc_error *err);
int gc_flavor_list(const struct gc_ctx *ctx, json_t *filters, int limit, const char *cursor,
                   json_t **items, char **next_cursor, struct gc_error *err);
int gc_flavor_delete(const struct gc_ctx *ctx, const char *id, int64_t if_match,
                     struct gc_error *err);
/* Registers an image from files readable by govcloudd and queues the job that checksums
 * them (SHA-256 and SM3); the image is usable once active. */
int gc_image_create(const struct gc_ctx *ctx, json_t *in, json_t **out, struct gc_error *err);
int gc_image_get(const struct gc_ctx *ctx, const char *id, json_t **out, struct gc_error *err);
int gc_image_list(const struct gc_ctx *ctx, json_t *filters, int limit, const char *cursor,
                  json_t **items, char **next_cursor, struct gc_error *err);
int gc_image_delete(const struct gc_ctx *ctx, const char *id, int64_t if_match,
                    struct gc_error *err);
/* ---- image upload (catalog.c) ----
 * An image registered with "source": "upload" waits in state uploading for its file, which
 * PUT /v1/images/{id}/file streams through gc_image_upload_*: hashed (SHA-256 and SM3) and
 * checked (format) on the way into a volume on the image store host. The host side is
 * sched/imagestore.c, reached through gc_image_store (set by the daemon). */
struct gc_image_sink;
struct gc_image_store_ops {
    /* Opens a new volume named volume on the store host; bytes: the size, or 0 if unknown. */
    int (*open)(const char *volume, int64_t bytes, struct gc_image_sink **out,
                struct gc_error *err);
    int (*write)(struct gc_image_sink *s, const void *p, size_t n, struct gc_error *err);
    /* Completes the volume and frees s: host (GC_ID_LEN + 1 bytes), pool (128 bytes) and
     * *path (malloc'd) say where it is. On failure the volume is deleted. */
    int (*finish)(struct gc_image_sink *s, char *host, char *pool, char **path,
                  struct gc_error *err);
    /* Deletes the partial volume and frees s; accepts NULL. */
    void (*abort)(struct gc_image_sink *s);
    /* Where s writes: host (GC_ID_LEN + 1 bytes), pool (128 bytes). */
    void (*where)(const struct gc_image_sink *s, char *host, char *pool);
    /* Deletes a volume that finish completed but that could not be recorded. */
    void (*discard)(const char *host, const char *pool, const char *volume);
};
extern const struct gc_image_store_ops *gc_image_store;

struct gc_image_upload; /* one upload in progress */
/* Checks that the caller may upload the image's file now (it is in state uploading and no
 * other upload to it runs) and that bytes (the Content-Length; -1 unknown) is within
 * [images] max_upload_gib; sha256 (or NULL) is the checksum the client expects. */
int gc_image_upload_begin(const struct gc_ctx *ctx, const char *id, int64_t bytes,
                          const char *sha256, struct gc_image_upload **out,
                          struct gc_error *err);
int gc_image_upload_write(struct gc_image_upload *u, const void *p, size_t n,
                          struct gc_error *err);
/* Checks the whole file and makes the image active (audited); frees u. On failure nothing
 * is kept and the image stays uploading. *out: the image. */
int gc_image_upload_finish(struct gc_image_upload *u, json_t **out, struct gc_error *err);
/* The upload ended early (error answered, connection dropped): nothing is kept; frees u.
 * Accepts NULL. */
void gc_image_upload_abort(struct gc_image_upload *u);
/* Checks the first bytes of a disk image (n of them; all of the file when complete) against
 * its declared format: raw must not be another known format; qcow2 must be qcow2 version 2
 * or 3 without a backing file, an external data file or encryption. GC_EINVAL says why. */
int gc_image_header_check(const char *format, const unsigned char *p, size_t n, bool complete,
                          struct gc_error *err);
/* Bytes of a file's start gc_image_header_check needs (fewer if the file is shorter). */
#define GC_IMAGE_HEADER_BYTES 4096

/* Checksums an image's files: out needs 65 bytes each. */
int gc_image_checksum(const char *kind, const char *f1, const char *f2, char *sha256, char *sm3,
                      int64_t *size, struct gc_error *err);

/* ---- virtual machines (vm.c) ---- */
int gc_vm_create(const struct gc_ctx *ctx, json_t *in, json_t **out, struct gc_error *err);
/* What a VM asks of placement. */
struct gc_place_req {
    const char *arch;
    int64_t vcpus, memory_mib;
    const char *host;     /* a host the caller chose, or NULL */
    const char *zone;     /* only hosts of this zone, or NULL */
    const char *group;    /* server group id, or NULL */
    const char *policy;   /* its policy: affinity | anti-affinity */
    const char *exclude_host; /* never this host (a VM moving away from it), or NULL */
    const char *exclude_vm;   /* the VM being moved, left out of its group's rules */
};
/* Placement inside a write transaction: host_out (GC_ID_LEN + 1) gets the chosen host, or
 * GC_ECONFLICT says which filter left none. */
int gc_vm_place(struct gc_tx *tx, const struct gc_config *cfg, const struct gc_place_req *req,
                char *host_out, struct gc_error *err);
/* Moving a VM to another host (live migration, or a copy when it is shut off).
 * begin: in the caller's write transaction, chooses the destination (want_host, or
 * placement among the other hosts of its host's zone), reserves the room there and marks
 * the VM migrating; dest (GC_ID_LEN + 1) gets the host. end: records the outcome, moving
 * the VM and its volumes to the destination (ok) or releasing the destination's room;
 * state/power: what the hypervisor shows after it; error: why it failed. */
int gc_vm_migration_begin(struct gc_tx *tx, const struct gc_config *cfg, const char *id,
                          const char *want_host, char *dest, struct gc_error *err);
int gc_vm_migration_end(struct gc_tx *tx, const char *id, bool ok, const char *state,
                        const char *power, const char *error, struct gc_error *err);
/* POST /v1/vms/{id}/migrate (platform roles): in {"host_id"?}; queues vm.migrate. */
int gc_vm_migrate(const struct gc_ctx *ctx, const char *id, json_t *in, json_t **out,
                  struct gc_error *err);
/* POST /v1/hosts/{id}/evacuate: a host in maintenance; queues host.evacuate. */
int gc_host_evacuate(const struct gc_ctx *ctx, const char *id, json_t **out,
                     struct gc_error *err);
/* Adds (negative: releases) a VM's vCPUs and memory to a host's usage and free room. */
int gc_host_reserve(struct gc_tx *tx, const char *host, int64_t vcpus, int64_t mem,
                    struct gc_error *err);
/* Recomputes the free room of one host (or of all, host NULL) from its size, its usage and
 * the over-commit in force. */
int gc_host_capacity_refresh(struct gc_tx *tx, const struct gc_config *cfg, const char *host,
                             struct gc_error *err);
/* The same for every host of a zone (after its ratios changed). */
int gc_zone_capacity_refresh(struct gc_tx *tx, const struct gc_config *cfg, const char *zone,
                             struct gc_error *err);
/* The weigher placement uses in zone (NULL: no zone asked): the zone's, else the default. */
int gc_zone_weigher(struct gc_tx *tx, const struct gc_config *cfg, const char *zone, char *out,
                    size_t cap, struct gc_error *err);
/* Zones (zone.c): over-commit ratios and weigher per zone; platform objects. */
int gc_zone_get(const struct gc_ctx *ctx, const char *name, json_t **out, struct gc_error *err);
int gc_zone_list(const struct gc_ctx *ctx, json_t *filters, int limit, const char *cursor,
                 json_t **items, char **next_cursor, struct gc_error *err);
/* Replaces a zone's settings (absent or null: the [compute] default) and recomputes the
 * free room of its hosts in the same transaction. */
int gc_zone_put(const struct gc_ctx *ctx, const char *name, int64_t if_match, json_t *in,
                json_t **out, struct gc_error *err);
int gc_vm_get(const struct gc_ctx *ctx, const char *id, json_t **out, struct gc_error *err);
int gc_vm_list(const struct gc_ctx *ctx, json_t *filters, int limit, const char *cursor,
               json_t **items, char **next_cursor, struct gc_error *err);
/* action: start | stop | reboot | force_stop; queues a job, *out gets it. */
int gc_vm_action(const struct gc_ctx *ctx, const char *id, const char *action, json_t **out,
                 struct gc_error *err);
int gc_vm_delete(const struct gc_ctx *ctx, const char *id, json_t **out, struct gc_error *err);
/* Gives a stopped VM another flavor (vCPUs, memory, and a root disk that may grow, never
 * shrink): the difference is reserved on its host and counted against the quotas in this
 * transaction; a job changes the domain and grows the root volume. */
int gc_vm_resize(const struct gc_ctx *ctx, const char *id, json_t *in, json_t **out,
                 struct gc_error *err);
/* Tail of the serial console log (malloc'd text). */
int gc_vm_console(const struct gc_ctx *ctx, const char *id, char **text, struct gc_error *err);
/* The largest user data (cloud-init) a VM is created with, in bytes. */
#define GC_USER_DATA_MAX 65536
/* GET /v1/vms/{id}/vnc: the VNC console of a running VM, {"host","port","password",...}, for
 * platform administrators and operators and the administrators of the VM's department. */
int gc_vm_vnc(const struct gc_ctx *ctx, const char *id, json_t **out, struct gc_error *err);
/* Set by the daemon: asks host host_id for the VNC console of domain uuid (listen 64,
 * password 64). */
extern int (*gc_vm_vnc_probe)(const char *host_id, const char *uuid, char *listen, int *port,
                              char *password, struct gc_error *err);

/* ---- networks and IP address management (network.c) ---- */
int gc_net_create(const struct gc_ctx *ctx, json_t *in, json_t **out, struct gc_error *err);
int gc_net_get(const struct gc_ctx *ctx, const char *id, json_t **out, struct gc_error *err);
int gc_net_list(const struct gc_ctx *ctx, json_t *filters, int limit, const char *cursor,
                json_t **items, char **next_cursor, struct gc_error *err);
int gc_net_delete(const struct gc_ctx *ctx, const char *id, int64_t if_match,
                  struct gc_error *err);
/* Inside the VM-creating transaction: gives the VM an interface on the network with the
 * lowest free IPv4 (and IPv6) address and a fresh MAC. The unique indexes on (network,
 * address) make handing out one address twice impossible. */
int gc_net_attach(struct gc_tx *tx, const char *vm_dept_path, const char *network_id,
                  const char *vm_id, int position, json_t **nic, struct gc_error *err);
/* A NIC of vm_id on the external network network_id with the public address ipv4 (already
 * allocated in public_ips), after the VM's other NICs; *nic gets it. */
int gc_net_attach_public(struct gc_tx *tx, const char *network_id, const char *vm_id,
                         const char *ipv4, json_t **nic, struct gc_error *err);
/* The lowest free IPv4 address of an external network, for a public IP: GC_EINVAL (field
 * network_id) when the network is missing or not external, GC_ECONFLICT when it is full. */
int gc_net_pick_public(struct gc_tx *tx, const char *network_id, char *out, size_t cap,
                       struct gc_error *err);
/* The interfaces of a VM: [{"network_id","mac","ipv4","ipv6"}]. */
int gc_vm_nics(struct gc_tx *tx, const char *vm_id, json_t **out, struct gc_error *err);

/* ---- volumes (volume.c) ---- */
/* Creates a volume (202 job); with vm_id it is made on that VM's host and attached. */
int gc_volume_create(const struct gc_ctx *ctx, json_t *in, json_t **out, struct gc_error *err);
int gc_volume_get(const struct gc_ctx *ctx, const char *id, json_t **out, struct gc_error *err);
int gc_volume_list(const struct gc_ctx *ctx, json_t *filters, int limit, const char *cursor,
                   json_t **items, char **next_cursor, struct gc_error *err);
/* action: attach (in: vm_id) | detach | resize (in: size_gib) | delete; queues a job. */
int gc_volume_action(const struct gc_ctx *ctx, const char *id, const char *action, json_t *in,
                     json_t **out, struct gc_error *err);
/* Checks that a volume can go to storage pool pool of host, given the pools the host
 * reported ([{"name","type","state",...}]), and sets format: qcow2 for dir, fs and netfs
 * pools, raw for logical (LVM) and rbd (Ceph) pools. A pool the caller named (named) must be
 * reported, of one of those types (else GC_EINVAL, field "pool") and running (else
 * GC_ECONFLICT); the configured default pool, when not reported, is taken as qcow2. */
int gc_volume_pool_check(const json_t *pools, const char *host, const char *pool, bool named,
                         char format[16], struct gc_error *err);
/* Snapshots of a volume (202 jobs for create and delete): the volume must be detached or
 * its VM stopped; revert is gc_volume_action "revert" with {"snapshot_id"}. */
int gc_volume_snapshot_create(const struct gc_ctx *ctx, const char *vol, json_t *in,
                              json_t **out, struct gc_error *err);
int gc_volume_snapshot_list(const struct gc_ctx *ctx, const char *vol, int limit,
                            const char *cursor, json_t **items, char **next_cursor,
                            struct gc_error *err);
int gc_volume_snapshot_get(const struct gc_ctx *ctx, const char *vol, const char *sid,
                           json_t **out, struct gc_error *err);
int gc_volume_snapshot_delete(const struct gc_ctx *ctx, const char *vol, const char *sid,
                              json_t **out, struct gc_error *err);

/* ---- server groups: affinity and anti-affinity (servergroup.c) ---- */
int gc_sgroup_create(const struct gc_ctx *ctx, json_t *in, json_t **out, struct gc_error *err);
int gc_sgroup_get(const struct gc_ctx *ctx, const char *id, json_t **out, struct gc_error *err);
int gc_sgroup_list(const struct gc_ctx *ctx, json_t *filters, int limit, const char *cursor,
                   json_t **items, char **next_cursor, struct gc_error *err);
int gc_sgroup_delete(const struct gc_ctx *ctx, const char *id, int64_t if_match,
                     struct gc_error *err);
/* Inside a transaction: the policy of a group the VM's department may use (policy needs 16). */
int gc_sgroup_policy(struct gc_tx *tx, const char *vm_dept_path, const char *id, char *policy,
                     struct gc_error *err);

/* ---- security groups: the virtual firewall (secgroup.c) ---- */
int gc_sg_create(const struct gc_ctx *ctx, json_t *in, json_t **out, struct gc_error *err);
int gc_sg_get(const struct gc_ctx *ctx, const char *id, json_t **out, struct gc_error *err);
int gc_sg_list(const struct gc_ctx *ctx, json_t *filters, int limit, const char *cursor,
               json_t **items, char **next_cursor, struct gc_error *err);
int gc_sg_delete(const struct gc_ctx *ctx, const char *id, int64_t if_match,
                 struct gc_error *err);
/* Adds a rule; queues the job that updates every host (and so every interface using it). */
int gc_sg_rule_add(const struct gc_ctx *ctx, const char *group, json_t *in, json_t **out,
                   struct gc_error *err);
int gc_sg_rule_delete(const struct gc_ctx *ctx, const char *group, const char *rule,
                      struct gc_error *err);
/* Inside the VM-creating transaction: attaches a group the VM's department may use. */
int gc_sg_attach(struct gc_tx *tx, const char *vm_dept_path, const char *group,
                 const char *vm_id, struct gc_error *err);
/* The rules of a group: [{"id","direction","protocol","port_min","port_max","cidr"}]. */
int gc_sg_rules(struct gc_tx *tx, const char *group, json_t **out, struct gc_error *err);

/* ---- quotas (quota.c) ---- */
/* {"department_id","limits":{…},"usage":{…},"effective":{…},"version"}: limits are the
 * department's own (null = none), usage is its subtree's, effective the tightest room left
 * under it and every ancestor. */
int gc_quota_get(const struct gc_ctx *ctx, const char *dept, json_t **out, struct gc_error *err);
int gc_quota_set(const struct gc_ctx *ctx, const char *dept, int64_t if_match, json_t *in,
                 json_t **out, struct gc_error *err);
/* Inside a write transaction: would adding these amounts to dept break a quota of it or of an
 * ancestor? GC_ECONFLICT naming the department and the resource when it would. */
int gc_quota_check(struct gc_tx *tx, const char *dept_path, int64_t vms, int64_t vcpus,
                   int64_t memory_mib, int64_t disk_gib, struct gc_error *err);
/* The same for one more volume of size_gib, and for growing one by more_gib. */
int gc_quota_check_volume(struct gc_tx *tx, const char *dept_path, int64_t size_gib,
                          struct gc_error *err);
int gc_quota_check_volume_grow(struct gc_tx *tx, const char *dept_path, int64_t more_gib,
                               struct gc_error *err);
/* One more public IP for the subtree at dept_path. */
int gc_quota_check_public_ip(struct gc_tx *tx, const char *dept_path, struct gc_error *err);

/* ---- public IP addresses (public_ip.c) ---- */
int gc_pip_create(const struct gc_ctx *ctx, json_t *in, json_t **out, struct gc_error *err);
int gc_pip_get(const struct gc_ctx *ctx, const char *id, json_t **out, struct gc_error *err);
int gc_pip_list(const struct gc_ctx *ctx, json_t *filters, int limit, const char *cursor,
                json_t **items, char **next_cursor, struct gc_error *err);
int gc_pip_delete(const struct gc_ctx *ctx, const char *id, int64_t if_match,
                  struct gc_error *err);
/* action: associate (in: {"vm_id"}) | disassociate; queues a job, *out gets it. */
int gc_pip_action(const struct gc_ctx *ctx, const char *id, const char *action, json_t *in,
                  json_t **out, struct gc_error *err);

/* ---- start-up registrations (bootstrap.c) ---- */
/* Registers [bootstrap] host_uri and image_dir when they are set and not yet registered.
 * Call once the host manager and the job runner run. Failures are logged, not fatal. */
void gc_bootstrap_infra(struct gc_store *st, const struct gc_config *cfg);

/* ---- paging helpers (paging.c) ---- */
/* Validates limit (1–500; 0 → default 50). */
int gc_page_limit(int limit, int *out, struct gc_error *err);
/* Validates an id cursor. */
int gc_page_cursor_id(const char *cursor, struct gc_error *err);

/* Makes one object from the current row; path (GC_DEPT_PATH_MAX, may be NULL) gets the
 * department path of the object. */
typedef json_t *(*gc_row_path_fn)(struct gc_rows *r, char *path);
/* Loads the object sql (one ? for the id) finds: GC_ENOTFOUND "<what> '<id>' not found" when
 * id is not an id or there is no such row. */
int gc_load_by_id(struct gc_tx *tx, const char *sql, const char *what, const char *id,
                  gc_row_path_fn row, json_t **out, char *path, struct gc_error *err);

/* Loads one object by id in tx; path (GC_DEPT_PATH_MAX) gets its department path. */
typedef int (*gc_loader_fn)(struct gc_tx *tx, const char *id, json_t **out, char *path,
                            struct gc_error *err);
/* GET of one department-scoped object: loaded in a read transaction, then perm checked in
 * the scope of its department (404, as for a missing one, when the caller may not see it). */
int gc_get_scoped(const struct gc_ctx *ctx, gc_loader_fn load, enum gc_perm perm,
                  const char *what, const char *id, json_t **out, struct gc_error *err);

/* Makes one list item from the current row, or NULL to leave the row out (rows the caller
 * may not see). */
typedef json_t *(*gc_page_row_fn)(struct gc_rows *r, const struct gc_principal *who);

/* The keyset-paginated list every collection answers: runs sql (already ordered by the
 * cursor column, limited to at least limit + 1 rows when no rows are left out) in a read
 * transaction, keeps up to limit items, and sets *next_cursor to the cursor_key member of
 * the last item when more follow (NULL otherwise). */
int gc_page_run(const struct gc_ctx *ctx, const char *sql, const struct gc_val *args,
                size_t nargs, int limit, const char *cursor_key, gc_page_row_fn row,
                json_t **items, char **next_cursor, struct gc_error *err);

/* A list's equality filter: the query parameter and the SQL column it compares. */
struct gc_list_filter {
    const char *param, *column;
};
/* A keyset-paged list of objects keyed by an id column: needs perm; select is
 * "SELECT … FROM … WHERE <id column> > ?" (the cursor), and each of filters (at most 8,
 * ending with {NULL}) whose parameter values holds adds "AND column = ?"; ordered by the id
 * column; row decides what the caller may see. */
int gc_list_filtered(const struct gc_ctx *ctx, enum gc_perm perm, const char *select,
                     const char *id_column, const struct gc_list_filter *filters, json_t *values,
                     int limit, const char *cursor, gc_page_row_fn row, json_t **items,
                     char **next_cursor, struct gc_error *err);

/* ---- time in JSON ---- */
json_t *gc_json_time(int64_t ms); /* RFC 3339 string, or null for ms <= 0 */

#endif
