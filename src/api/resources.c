/* Handlers of departments, users, audit events and jobs. */
#include "api/api.h"

#include "monitor/checks.h"

#include "core/validate.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const dept_filters[] = {"parent_id", "name", "code", NULL};
static const char *const user_filters[] = {"department_id", "role", "username", NULL};
static const char *const job_filters[] = {"state", "kind", NULL};

void gc_api_dept_list(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_list(req, resp, gc_dept_list, dept_filters);
}

void gc_api_dept_create(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_create(req, resp, gc_dept_create, "/v1/departments");
}

void gc_api_dept_get(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_get_body(req, resp, gc_dept_get_body);
}

void gc_api_dept_update(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_update(req, resp, gc_dept_update);
}

void gc_api_dept_delete(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_delete(req, resp, gc_dept_delete);
}

void gc_api_user_list(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_list(req, resp, gc_user_list, user_filters);
}

void gc_api_user_create(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_create(req, resp, gc_user_create, "/v1/users");
}

void gc_api_user_me(struct gc_req *req, struct gc_resp *resp)
{
    req->params[0] = "me";
    gc_api_get_body(req, resp, gc_user_get_body);
}

void gc_api_user_get(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_get_body(req, resp, gc_user_get_body);
}

void gc_api_user_update(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_update(req, resp, gc_user_update);
}

void gc_api_user_delete(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_delete(req, resp, gc_user_delete);
}

static int audit_list_adapter(const struct gc_ctx *ctx, json_t *filters, int limit,
                              const char *cursor, json_t **items, char **next,
                              struct gc_error *err)
{
    static const char *const tnames[] = {"since", "until"};
    for (int i = 0; i < 2; i++) {
        const char *v = gc_json_str(filters, tnames[i]);
        if (!v)
            continue;
        int64_t ms;
        if (gc_time_parse_rfc3339(v, &ms) != 0)
            return gc_error_set(err, GC_EINVAL, tnames[i],
                                "query parameter '%s': '%.40s' is not an RFC 3339 time such as "
                                "2026-11-25T00:00:00Z",
                                tnames[i], v);
        char key[16];
        snprintf(key, sizeof(key), "%s_ms", tnames[i]);
        json_object_set_new(filters, key, json_integer(ms));
    }
    const char *outcome = gc_json_str(filters, "outcome");
    if (outcome && strcmp(outcome, "success") && strcmp(outcome, "failure") &&
        strcmp(outcome, "denied"))
        return gc_error_set(err, GC_EINVAL, "outcome",
                            "query parameter 'outcome' must be success, failure or denied");
    return gc_audit_list(ctx, filters, limit, cursor, items, next, err);
}

void gc_api_audit_list(struct gc_req *req, struct gc_resp *resp)
{
    static const char *const filters[] = {"actor_name", "action", "resource_type", "resource_id",
                                          "outcome", "since", "until", NULL};
    gc_api_list(req, resp, audit_list_adapter, filters);
}

void gc_api_audit_verify(struct gc_req *req, struct gc_resp *resp)
{
    struct gc_error err = {0};
    json_t *report = NULL;
    if (gc_require(req->ctx.who, GC_P_AUDIT_READ, &err) ||
        (req->who.role == GC_ROLE_DEPARTMENT_ADMIN &&
         gc_error_set(&err, GC_EPERM, "", "only platform administrators and auditors verify the "
                                          "whole audit chain")) ||
        gc_audit_verify(req->ctx.store, &report, &err)) {
        gc_resp_error(resp, req, &err);
        return;
    }
    gc_resp_json(resp, 200, report);
}

void gc_api_job_list(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_list(req, resp, gc_job_list, job_filters);
}

void gc_api_job_create(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_create(req, resp, gc_job_create, "/v1/jobs");
    if (resp->status == 201)
        resp->status = 202;
}

void gc_api_job_get(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_get(req, resp, gc_job_get);
}

void gc_api_job_cancel(struct gc_req *req, struct gc_resp *resp)
{
    struct gc_error err = {0};
    json_t *obj = NULL;
    if (gc_job_cancel(&req->ctx, req->params[0], &obj, &err)) {
        gc_resp_error(resp, req, &err);
        return;
    }
    gc_resp_etag_from(resp, obj);
    snprintf(resp->location, sizeof(resp->location), "/v1/jobs/%s", req->params[0]);
    gc_resp_json(resp, 202, obj);
}

static const char *const host_filters[] = {"zone", "state", "arch", "name", NULL};

void gc_api_host_list(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_list(req, resp, gc_host_list, host_filters);
}

void gc_api_host_create(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_create(req, resp, gc_host_create, "/v1/hosts");
}

void gc_api_host_get(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_get(req, resp, gc_host_get);
}

void gc_api_host_update(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_update(req, resp, gc_host_update);
}

void gc_api_host_delete(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_delete(req, resp, gc_host_delete);
}

/* ---- catalogue ---- */

static const char *const flavor_filters[] = {"name", NULL};
static const char *const image_filters[] = {"name", "kind", "state", "arch", NULL};

void gc_api_flavor_list(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_list(req, resp, gc_flavor_list, flavor_filters);
}

void gc_api_flavor_create(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_create(req, resp, gc_flavor_create, "/v1/flavors");
}

void gc_api_flavor_get(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_get(req, resp, gc_flavor_get);
}

void gc_api_flavor_delete(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_delete(req, resp, gc_flavor_delete);
}

void gc_api_image_list(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_list(req, resp, gc_image_list, image_filters);
}

void gc_api_image_create(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_create(req, resp, gc_image_create, "/v1/images");
}

void gc_api_image_get(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_get(req, resp, gc_image_get);
}

void gc_api_image_delete(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_delete(req, resp, gc_image_delete);
}

/* PUT /v1/images/{id}/file: the body streams through gc_image_upload_* (never held whole). */
static bool is_octet_stream(const char *ct)
{
    if (!ct)
        return false;
    while (*ct == ' ')
        ct++;
    if (strncasecmp(ct, "application/octet-stream", 24) != 0)
        return false;
    ct += 24;
    while (*ct == ' ')
        ct++;
    return *ct == '\0' || *ct == ';';
}

static int upload_begin(struct gc_req *req, struct gc_error *err)
{
    int rc = gc_require(req->ctx.who, GC_P_CATALOG_WRITE, err);
    if (rc)
        return rc;
    const char *ct = gc_req_header(req, "Content-Type");
    if (!is_octet_stream(ct))
        return gc_error_set(err, GC_EMEDIA, "Content-Type",
                            "Content-Type must be application/octet-stream (the image file as "
                            "it is), got '%.64s'",
                            ct ? ct : "none");
    struct gc_image_upload *u = NULL;
    rc = gc_image_upload_begin(&req->ctx, req->params[0], req->content_length,
                               gc_req_query(req, "sha256"), &u, err);
    if (!rc)
        req->sink = u;
    return rc;
}

static int upload_data(struct gc_req *req, const char *p, size_t n, struct gc_error *err)
{
    return gc_image_upload_write(req->sink, p, n, err);
}

static void upload_end(struct gc_req *req, struct gc_resp *resp)
{
    struct gc_error err = {0};
    json_t *obj = NULL;
    int rc = gc_image_upload_finish(req->sink, &obj, &err);
    req->sink = NULL;
    if (rc) {
        gc_resp_error(resp, req, &err);
        return;
    }
    gc_resp_etag_from(resp, obj);
    gc_resp_json(resp, 200, obj);
}

static void upload_abort(struct gc_req *req)
{
    gc_image_upload_abort(req->sink);
    req->sink = NULL;
}

const struct gc_stream_ops gc_api_image_upload_ops = {
    .begin = upload_begin,
    .data = upload_data,
    .end = upload_end,
    .abort = upload_abort,
};

void gc_api_image_upload(struct gc_req *req, struct gc_resp *resp)
{
    struct gc_error err = {0};
    gc_error_set(&err, GC_EINTERNAL, "", "the upload route is streamed, not dispatched");
    gc_resp_error(resp, req, &err);
}

/* ---- virtual machines ---- */

static const char *const vm_filters[] = {"department_id", "host_id", "state", "name", NULL};

void gc_api_vm_list(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_list(req, resp, gc_vm_list, vm_filters);
}

void gc_api_vm_get(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_get(req, resp, gc_vm_get);
}

/* 202 with the job; Location points to the job */
static void job_accepted(struct gc_req *req, struct gc_resp *resp, int rc, json_t *job,
                         struct gc_error *err)
{
    if (rc) {
        gc_resp_error(resp, req, err);
        return;
    }
    gc_resp_etag_from(resp, job);
    snprintf(resp->location, sizeof(resp->location), "/v1/jobs/%s",
             json_string_value(json_object_get(job, "id")));
    gc_resp_json(resp, 202, job);
}

void gc_api_vm_create(struct gc_req *req, struct gc_resp *resp)
{
    struct gc_error err = {0};
    json_t *job = NULL;
    int rc = gc_vm_create(&req->ctx, req->body, &job, &err);
    job_accepted(req, resp, rc, job, &err);
}

void gc_api_vm_delete(struct gc_req *req, struct gc_resp *resp)
{
    struct gc_error err = {0};
    json_t *job = NULL;
    int rc = gc_vm_delete(&req->ctx, req->params[0], &job, &err);
    job_accepted(req, resp, rc, job, &err);
}

static void vm_action(struct gc_req *req, struct gc_resp *resp, const char *action)
{
    struct gc_error err = {0};
    json_t *job = NULL;
    const char *force = gc_req_query(req, "force");
    if (force && strcmp(force, "true") && strcmp(force, "false")) {
        gc_error_set(&err, GC_EINVAL, "force", "query parameter 'force' must be true or false");
        gc_resp_error(resp, req, &err);
        return;
    }
    if (force && strcmp(force, "true") == 0)
        action = "force_stop";
    int rc = gc_vm_action(&req->ctx, req->params[0], action, &job, &err);
    job_accepted(req, resp, rc, job, &err);
}

void gc_api_vm_start(struct gc_req *req, struct gc_resp *resp)
{
    vm_action(req, resp, "start");
}

void gc_api_vm_stop(struct gc_req *req, struct gc_resp *resp)
{
    vm_action(req, resp, "stop");
}

void gc_api_vm_reboot(struct gc_req *req, struct gc_resp *resp)
{
    vm_action(req, resp, "reboot");
}

void gc_api_vm_console(struct gc_req *req, struct gc_resp *resp)
{
    struct gc_error err = {0};
    char *text = NULL;
    if (gc_vm_console(&req->ctx, req->params[0], &text, &err)) {
        gc_resp_error(resp, req, &err);
        return;
    }
    resp->status = 200;
    resp->owned_text = text;
    resp->ctype = "text/plain; charset=utf-8";
}

/* ---- zones ---- */

static const char *const zone_filters[] = {NULL};

void gc_api_zone_list(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_list(req, resp, gc_zone_list, zone_filters);
}

void gc_api_zone_get(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_get(req, resp, gc_zone_get);
}

void gc_api_zone_put(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_update(req, resp, gc_zone_put);
}

void gc_api_vm_vnc(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_get(req, resp, gc_vm_vnc);
}

/* ---- quotas ---- */

void gc_api_quota_get(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_get(req, resp, gc_quota_get);
}

void gc_api_quota_set(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_update(req, resp, gc_quota_set);
}

/* ---- networks ---- */

static const char *const net_filters[] = {"name", "mode", NULL};

void gc_api_net_list(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_list(req, resp, gc_net_list, net_filters);
}

void gc_api_net_create(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_create(req, resp, gc_net_create, "/v1/networks");
}

void gc_api_net_get(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_get(req, resp, gc_net_get);
}

void gc_api_net_delete(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_delete(req, resp, gc_net_delete);
}

/* ---- security groups ---- */

static const char *const sg_filters[] = {"name", NULL};

void gc_api_sg_list(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_list(req, resp, gc_sg_list, sg_filters);
}

void gc_api_sg_create(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_create(req, resp, gc_sg_create, "/v1/security-groups");
}

void gc_api_sg_get(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_get(req, resp, gc_sg_get);
}

void gc_api_sg_delete(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_delete(req, resp, gc_sg_delete);
}

void gc_api_sg_rule_add(struct gc_req *req, struct gc_resp *resp)
{
    struct gc_error err = {0};
    json_t *rule = NULL;
    if (gc_sg_rule_add(&req->ctx, req->params[0], req->body, &rule, &err)) {
        gc_resp_error(resp, req, &err);
        return;
    }
    snprintf(resp->location, sizeof(resp->location), "/v1/security-groups/%s/rules/%s",
             req->params[0], json_string_value(json_object_get(rule, "id")));
    gc_resp_json(resp, 201, rule);
}

void gc_api_sg_rule_delete(struct gc_req *req, struct gc_resp *resp)
{
    struct gc_error err = {0};
    if (gc_sg_rule_delete(&req->ctx, req->params[0], req->params[1], &err)) {
        gc_resp_error(resp, req, &err);
        return;
    }
    gc_resp_no_content(resp);
}

/* ---- server groups ---- */

static const char *const sgroup_filters[] = {"department_id", NULL};

void gc_api_sgroup_list(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_list(req, resp, gc_sgroup_list, sgroup_filters);
}

void gc_api_sgroup_create(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_create(req, resp, gc_sgroup_create, "/v1/server-groups");
}

void gc_api_sgroup_get(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_get(req, resp, gc_sgroup_get);
}

void gc_api_sgroup_delete(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_delete(req, resp, gc_sgroup_delete);
}

/* ---- volumes ---- */

static const char *const volume_filters[] = {"department_id", "vm_id", "state", NULL};

void gc_api_volume_list(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_list(req, resp, gc_volume_list, volume_filters);
}

void gc_api_volume_get(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_get(req, resp, gc_volume_get);
}

void gc_api_volume_create(struct gc_req *req, struct gc_resp *resp)
{
    struct gc_error err = {0};
    json_t *job = NULL;
    int rc = gc_volume_create(&req->ctx, req->body, &job, &err);
    job_accepted(req, resp, rc, job, &err);
}

static void volume_action(struct gc_req *req, struct gc_resp *resp, const char *action)
{
    struct gc_error err = {0};
    json_t *job = NULL;
    int rc = gc_volume_action(&req->ctx, req->params[0], action, req->body, &job, &err);
    job_accepted(req, resp, rc, job, &err);
}

void gc_api_volume_delete(struct gc_req *req, struct gc_resp *resp)
{
    volume_action(req, resp, "delete");
}

void gc_api_volume_attach(struct gc_req *req, struct gc_resp *resp)
{
    volume_action(req, resp, "attach");
}

void gc_api_volume_detach(struct gc_req *req, struct gc_resp *resp)
{
    volume_action(req, resp, "detach");
}

void gc_api_volume_resize(struct gc_req *req, struct gc_resp *resp)
{
    volume_action(req, resp, "resize");
}

void gc_api_volume_revert(struct gc_req *req, struct gc_resp *resp)
{
    volume_action(req, resp, "revert");
}

void gc_api_volume_snapshot_list(struct gc_req *req, struct gc_resp *resp)
{
    struct gc_error err = {0};
    int limit;
    const char *cursor;
    json_t *items = NULL;
    char *next = NULL;
    if (gc_api_paging(req, &limit, &cursor, &err) ||
        gc_volume_snapshot_list(&req->ctx, req->params[0], limit, cursor, &items, &next,
                                &err)) {
        gc_resp_error(resp, req, &err);
        return;
    }
    gc_api_list_response(resp, items, next);
}

void gc_api_volume_snapshot_create(struct gc_req *req, struct gc_resp *resp)
{
    struct gc_error err = {0};
    json_t *job = NULL;
    int rc = gc_volume_snapshot_create(&req->ctx, req->params[0], req->body, &job, &err);
    job_accepted(req, resp, rc, job, &err);
}

void gc_api_volume_snapshot_get(struct gc_req *req, struct gc_resp *resp)
{
    struct gc_error err = {0};
    json_t *obj = NULL;
    if (gc_volume_snapshot_get(&req->ctx, req->params[0], req->params[1], &obj, &err)) {
        gc_resp_error(resp, req, &err);
        return;
    }
    gc_resp_etag_from(resp, obj);
    gc_resp_json(resp, 200, obj);
}

void gc_api_volume_snapshot_delete(struct gc_req *req, struct gc_resp *resp)
{
    struct gc_error err = {0};
    json_t *job = NULL;
    int rc = gc_volume_snapshot_delete(&req->ctx, req->params[0], req->params[1], &job, &err);
    job_accepted(req, resp, rc, job, &err);
}

void gc_api_vm_resize(struct gc_req *req, struct gc_resp *resp)
{
    struct gc_error err = {0};
    json_t *job = NULL;
    int rc = gc_vm_resize(&req->ctx, req->params[0], req->body, &job, &err);
    job_accepted(req, resp, rc, job, &err);
}

void gc_api_vm_migrate(struct gc_req *req, struct gc_resp *resp)
{
    struct gc_error err = {0};
    json_t *job = NULL;
    int rc = gc_vm_migrate(&req->ctx, req->params[0], req->body, &job, &err);
    job_accepted(req, resp, rc, job, &err);
}

void gc_api_host_evacuate(struct gc_req *req, struct gc_resp *resp)
{
    struct gc_error err = {0};
    json_t *job = NULL;
    int rc = gc_host_evacuate(&req->ctx, req->params[0], &job, &err);
    job_accepted(req, resp, rc, job, &err);
}

/* ---- public IPs ---- */

static const char *const pip_filters[] = {"department_id", "network_id", "vm_id", "state",
                                          NULL};

void gc_api_pip_list(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_list(req, resp, gc_pip_list, pip_filters);
}

void gc_api_pip_create(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_create(req, resp, gc_pip_create, "/v1/public-ips");
}

void gc_api_pip_get(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_get(req, resp, gc_pip_get);
}

void gc_api_pip_delete(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_delete(req, resp, gc_pip_delete);
}

static void pip_action(struct gc_req *req, struct gc_resp *resp, const char *action)
{
    struct gc_error err = {0};
    json_t *job = NULL;
    int rc = gc_pip_action(&req->ctx, req->params[0], action, req->body, &job, &err);
    job_accepted(req, resp, rc, job, &err);
}

void gc_api_pip_associate(struct gc_req *req, struct gc_resp *resp)
{
    pip_action(req, resp, "associate");
}

void gc_api_pip_disassociate(struct gc_req *req, struct gc_resp *resp)
{
    pip_action(req, resp, "disassociate");
}

/* ---- service checks (monitor/checks.c) ---- */

static const char *const check_filters[] = {"department_id", "kind", NULL};

void gc_api_check_list(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_list(req, resp, gc_check_list, check_filters);
}

void gc_api_check_create(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_create(req, resp, gc_check_create, "/v1/checks");
}

void gc_api_check_get(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_get(req, resp, gc_check_get);
}

void gc_api_check_update(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_update(req, resp, gc_check_update);
}

void gc_api_check_delete(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_delete(req, resp, gc_check_delete);
}

/* ---- availability ---- */

typedef int (*query_fn)(const struct gc_ctx *ctx, json_t *query, json_t **out,
                        struct gc_error *err);

/* A GET whose query parameters become the members of one object handed to fn. */
static void query_object(struct gc_req *req, struct gc_resp *resp, const char *const *params,
                         query_fn fn)
{
    struct gc_error err = {0};
    json_t *q = json_object();
    for (const char *const *p = params; *p; p++) {
        const char *v = gc_req_query(req, *p);
        json_t *s = v ? json_string(v) : NULL;
        if (v && !s) {
            gc_error_set(&err, GC_EINVAL, *p, "query parameter '%s' is not valid UTF-8", *p);
            break;
        }
        if (s)
            json_object_set_new(q, *p, s);
    }
    json_t *out = NULL;
    if (!err.code && fn(&req->ctx, q, &out, &err) == 0)
        gc_resp_json(resp, 200, out);
    else
        gc_resp_error(resp, req, &err);
    json_decref(q);
}

void gc_api_availability(struct gc_req *req, struct gc_resp *resp)
{
    static const char *const params[] = {"scope", "id", "from", "to", "target_percent", NULL};
    query_object(req, resp, params, gc_availability_get);
}

void gc_api_availability_report(struct gc_req *req, struct gc_resp *resp)
{
    static const char *const params[] = {"scope", "id", "year", "month", "target_percent", NULL};
    query_object(req, resp, params, gc_availability_report);
}

static const char *const mwindow_filters[] = {"scope", "resource_id", NULL};

void gc_api_mwindow_list(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_list(req, resp, gc_mwindow_list, mwindow_filters);
}

void gc_api_mwindow_create(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_create(req, resp, gc_mwindow_create, "/v1/maintenance-windows");
}

void gc_api_mwindow_delete(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_delete(req, resp, gc_mwindow_delete);
}

/* ---- notification channels ---- */

static const char *const channel_filters[] = {"kind", NULL};

void gc_api_channel_list(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_list(req, resp, gc_channel_list, channel_filters);
}

void gc_api_channel_create(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_create(req, resp, gc_channel_create, "/v1/notification-channels");
}

void gc_api_channel_delete(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_delete(req, resp, gc_channel_delete);
}

/* ---- alarms, alarm rules, silences ---- */

static const char *const alarm_filters[] = {"status", "severity", "rule_id", "department_id",
                                            NULL};

void gc_api_alarm_list(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_list(req, resp, gc_alarm_list, alarm_filters);
}

void gc_api_alarm_get(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_get(req, resp, gc_alarm_get);
}

void gc_api_alarm_ack(struct gc_req *req, struct gc_resp *resp)
{
    struct gc_error err = {0};
    json_t *out = NULL;
    if (gc_alarm_ack(&req->ctx, req->params[0], req->body, &out, &err) == 0)
        gc_resp_json(resp, 200, out);
    else
        gc_resp_error(resp, req, &err);
}

static const char *const rule_filters[] = {"kind", "severity", "department_id", NULL};

void gc_api_alarm_rule_list(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_list(req, resp, gc_alarm_rule_list, rule_filters);
}

void gc_api_alarm_rule_create(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_create(req, resp, gc_alarm_rule_create, "/v1/alarm-rules");
}

void gc_api_alarm_rule_get(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_get(req, resp, gc_alarm_rule_get);
}

void gc_api_alarm_rule_update(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_update(req, resp, gc_alarm_rule_update);
}

void gc_api_alarm_rule_delete(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_delete(req, resp, gc_alarm_rule_delete);
}

void gc_api_silence_list(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_list(req, resp, gc_silence_list, NULL);
}

void gc_api_silence_create(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_create(req, resp, gc_silence_create, "/v1/silences");
}

void gc_api_silence_delete(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_delete(req, resp, gc_silence_delete);
}
