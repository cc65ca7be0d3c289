/* The operations every resource shares: paging, get, create, update, delete. */
#include "api/api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int gc_api_paging(struct gc_req *req, int *limit, const char **cursor, struct gc_error *err)
{
    *limit = 0;
    *cursor = gc_req_query(req, "cursor");
    const char *l = gc_req_query(req, "limit");
    if (l) {
        char *end;
        errno = 0;
        long v = strtol(l, &end, 10);
        if (errno || end == l || *end || v < 1 || v > 500)
            return gc_error_set(err, GC_EINVAL, "limit",
                                "query parameter 'limit' must be an integer from 1 to 500");
        *limit = (int)v;
    }
    if (*cursor && !**cursor)
        return gc_error_set(err, GC_EINVAL, "cursor", "query parameter 'cursor' is empty");
    return 0;
}

void gc_api_list_response(struct gc_resp *resp, json_t *items, char *next_cursor)
{
    json_t *o = json_object();
    json_object_set_new(o, "items", items);
    json_object_set_new(o, "next_cursor", next_cursor ? json_string(next_cursor) : json_null());
    free(next_cursor);
    gc_resp_json(resp, 200, o);
}

void gc_api_list(struct gc_req *req, struct gc_resp *resp, gc_list_fn fn,
                 const char *const *filters)
{
    struct gc_error err = {0};
    int limit;
    const char *cursor;
    if (gc_api_paging(req, &limit, &cursor, &err)) {
        gc_resp_error(resp, req, &err);
        return;
    }
    json_t *f = json_object();
    for (const char *const *p = filters; p && *p; p++) {
        const char *v = gc_req_query(req, *p);
        if (v) {
            json_t *s = json_string(v);
            if (!s) {
                gc_error_set(&err, GC_EINVAL, *p, "query parameter '%s' is not valid UTF-8", *p);
                json_decref(f);
                gc_resp_error(resp, req, &err);
                return;
            }
            json_object_set_new(f, *p, s);
        }
    }
    json_t *items = NULL;
    char *next = NULL;
    int rc = fn(&req->ctx, f, limit, cursor, &items, &next, &err);
    json_decref(f);
    if (rc) {
        gc_resp_error(resp, req, &err);
        return;
    }
    gc_api_list_response(resp, items, next);
}

void gc_api_get(struct gc_req *req, struct gc_resp *resp, gc_get_fn fn)
{
    struct gc_error err = {0};
    json_t *obj = NULL;
    if (fn(&req->ctx, req->params[0], &obj, &err)) {
        gc_resp_error(resp, req, &err);
        return;
    }
    gc_resp_etag_from(resp, obj);
    gc_resp_json(resp, 200, obj);
}

void gc_api_get_body(struct gc_req *req, struct gc_resp *resp, gc_get_body_fn fn)
{
    struct gc_error err = {0};
    char *body = NULL;
    int64_t version = 0;
    if (fn(&req->ctx, req->params[0], &body, &version, &err)) {
        gc_resp_error(resp, req, &err);
        return;
    }
    resp->status = 200;
    resp->owned_text = body;
    resp->ctype = "application/json";
    snprintf(resp->etag, sizeof(resp->etag), "\"%lld\"", (long long)version);
}

void gc_api_create(struct gc_req *req, struct gc_resp *resp, gc_create_fn fn,
                   const char *collection)
{
    struct gc_error err = {0};
    json_t *obj = NULL;
    if (fn(&req->ctx, req->body, &obj, &err)) {
        gc_resp_error(resp, req, &err);
        return;
    }
    gc_resp_etag_from(resp, obj);
    const char *id = json_string_value(json_object_get(obj, "id"));
    if (id && collection)
        snprintf(resp->location, sizeof(resp->location), "%s/%s", collection, id);
    gc_resp_json(resp, 201, obj);
}

void gc_api_update(struct gc_req *req, struct gc_resp *resp, gc_update_fn fn)
{
    struct gc_error err = {0};
    int64_t if_match;
    json_t *obj = NULL;
    if (gc_req_if_match(req, &if_match, &err) ||
        fn(&req->ctx, req->params[0], if_match, req->body, &obj, &err)) {
        gc_resp_error(resp, req, &err);
        return;
    }
    gc_resp_etag_from(resp, obj);
    gc_resp_json(resp, 200, obj);
}

void gc_api_delete(struct gc_req *req, struct gc_resp *resp, gc_delete_fn fn)
{
    struct gc_error err = {0};
    int64_t if_match;
    if (gc_req_if_match(req, &if_match, &err) ||
        fn(&req->ctx, req->params[0], if_match, &err)) {
        gc_resp_error(resp, req, &err);
        return;
    }
    gc_resp_no_content(resp);
}
