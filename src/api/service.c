/* Service endpoints (health, readiness, metrics, OpenAPI, version) and authentication. */
#include "api/api.h"

#include "monitor/latest.h"
#include "util/config.h"
#include "util/timeutil.h"

#include <strings.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const unsigned char gc_openapi_json[];
extern const size_t gc_openapi_json_len;

void gc_api_healthz(struct gc_req *req, struct gc_resp *resp)
{
    (void)req;
    static const char body[] = "{\"status\":\"ok\"}";
    resp->status = 200;
    resp->text = body;
    resp->text_len = sizeof(body) - 1;
    resp->ctype = "application/json";
}

void gc_api_readyz(struct gc_req *req, struct gc_resp *resp)
{
    struct gc_error err = {0};
    if (gc_store_ping(req->ctx.store, &err) != 0) {
        struct gc_error e2 = {0};
        gc_error_set(&e2, GC_EBUSY, "", "the store does not answer: %s", err.msg);
        gc_resp_error(resp, req, &e2);
        return;
    }
    static const char body[] = "{\"status\":\"ready\"}";
    resp->status = 200;
    resp->text = body;
    resp->text_len = sizeof(body) - 1;
    resp->ctype = "application/json";
}

/* The monitoring series carry department data: they are shown to platform roles (bearer
 * token or API key), or to anyone with [monitor] metrics_access = public. Anonymous scrapes
 * get the daemon's own metrics only. */
static int metrics_scope(struct gc_req *req, bool *full, struct gc_error *err)
{
    *full = req->ctx.cfg && strcmp(req->ctx.cfg->monitor_metrics_access, "public") == 0;
    const char *h = gc_req_header(req, "Authorization");
    if (*full || !h)
        return 0;
    if (strncasecmp(h, "Bearer ", 7) != 0)
        return gc_error_set(err, GC_EAUTH, "Authorization",
                            "the Authorization header must use the Bearer scheme");
    const char *tok = h + 7;
    while (*tok == ' ')
        tok++;
    int rc = gc_auth_resolve(req->ctx.store, tok, &req->who, err);
    if (rc)
        return rc;
    req->ctx.who = &req->who;
    if (!gc_role_is_platform(req->who.role))
        return gc_error_set(err, GC_EPERM, "Authorization",
                            "the monitoring series of /metrics are for platform roles; "
                            "department users read their own through the metrics query API");
    *full = true;
    return 0;
}

void gc_api_metrics(struct gc_req *req, struct gc_resp *resp)
{
    struct gc_error err = {0};
    bool full = false;
    if (metrics_scope(req, &full, &err) != 0) {
        gc_resp_error(resp, req, &err);
        return;
    }
    struct gc_buf b;
    gc_buf_init(&b, 256u << 20);
    int rc = gc_metrics_render(&b, req->ctx.store);
    if (!rc && full)
        rc = gc_latest_render(&b, gc_now_ms());
    else if (!rc)
        rc = gc_buf_adds(&b, "# the monitoring series (hosts, VMs, checks) need a bearer token "
                             "or API key of a platform role\n");
    if (rc != 0) {
        gc_buf_release(&b);
        gc_error_set(&err, GC_EINTERNAL, "", "metrics exposition too large");
        gc_resp_error(resp, req, &err);
        return;
    }
    resp->status = 200;
    resp->owned_text = gc_buf_steal(&b);
    resp->ctype = "text/plain; version=0.0.4; charset=utf-8";
}

void gc_api_openapi(struct gc_req *req, struct gc_resp *resp)
{
    (void)req;
    resp->status = 200;
    resp->text = (const char *)gc_openapi_json;
    resp->text_len = gc_openapi_json_len;
    resp->ctype = "application/json";
}

void gc_api_version(struct gc_req *req, struct gc_resp *resp)
{
    int64_t v = 0;
    struct gc_error err = {0};
    (void)gc_store_schema_version(req->ctx.store, &v, &err);
    gc_resp_json(resp, 200,
                 json_pack("{s:s,s:I,s:s}", "version", GC_VERSION, "schema_version", (json_int_t)v,
                           "store", gc_store_driver_name(req->ctx.store)));
}

void gc_api_token_create(struct gc_req *req, struct gc_resp *resp)
{
    struct gc_error err = {0};
    json_t *out = NULL;
    if (gc_auth_login(&req->ctx, req->body, &out, &err)) {
        gc_resp_error(resp, req, &err);
        return;
    }
    gc_resp_json(resp, 201, out);
}

void gc_api_token_delete(struct gc_req *req, struct gc_resp *resp)
{
    struct gc_error err = {0};
    if (gc_auth_logout(&req->ctx, &err)) {
        gc_resp_error(resp, req, &err);
        return;
    }
    gc_resp_no_content(resp);
}

void gc_api_apikey_list(struct gc_req *req, struct gc_resp *resp)
{
    struct gc_error err = {0};
    int limit;
    const char *cursor;
    json_t *items = NULL;
    char *next = NULL;
    if (gc_api_paging(req, &limit, &cursor, &err) ||
        gc_apikey_list(&req->ctx, limit, cursor, &items, &next, &err)) {
        gc_resp_error(resp, req, &err);
        return;
    }
    gc_api_list_response(resp, items, next);
}

void gc_api_apikey_create(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_create(req, resp, gc_apikey_create, "/v1/api-keys");
}

void gc_api_apikey_delete(struct gc_req *req, struct gc_resp *resp)
{
    struct gc_error err = {0};
    if (gc_apikey_delete(&req->ctx, req->params[0], &err)) {
        gc_resp_error(resp, req, &err);
        return;
    }
    gc_resp_no_content(resp);
}
