/* Handlers of supervision push (/v1/supervision/receivers) and of supervisor mode
 * (/v1/supervision/clouds, POST /v1/supervision/ingest). */
#include "api/api.h"

#include "core/supervise.h"
#include "monitor/pusher.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

void gc_api_receiver_list(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_list(req, resp, gc_receiver_list, NULL);
}

void gc_api_receiver_get(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_get(req, resp, gc_receiver_get);
}

void gc_api_receiver_create(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_create(req, resp, gc_receiver_create, "/v1/supervision/receivers");
    if (resp->status == 201)
        gc_pusher_kick();
}

void gc_api_receiver_update(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_update(req, resp, gc_receiver_update);
    if (resp->status == 200)
        gc_pusher_kick();
}

void gc_api_receiver_delete(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_delete(req, resp, gc_receiver_delete);
}

void gc_api_cloud_list(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_list(req, resp, gc_cloud_list, NULL);
}

void gc_api_cloud_get(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_get(req, resp, gc_cloud_get);
}

void gc_api_cloud_create(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_create(req, resp, gc_cloud_create, "/v1/supervision/clouds");
}

void gc_api_cloud_update(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_update(req, resp, gc_cloud_update);
}

void gc_api_cloud_delete(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_delete(req, resp, gc_cloud_delete);
}

void gc_api_cloud_records(struct gc_req *req, struct gc_resp *resp)
{
    struct gc_error err = {0};
    const char *l = gc_req_query(req, "limit");
    long limit = 0;
    if (l) {
        char *end = NULL;
        limit = strtol(l, &end, 10);
        if (!*l || *end || limit < 1 || limit > 10000) {
            gc_error_set(&err, GC_EINVAL, "limit", "limit must be an integer from 1 to 10000");
            gc_resp_error(resp, req, &err);
            return;
        }
    }
    json_t *items = NULL;
    char *next = NULL;
    if (gc_cloud_records(&req->ctx, req->params[0], gc_req_query(req, "dataset"), (int)limit,
                         gc_req_query(req, "cursor"), &items, &next, &err)) {
        gc_resp_error(resp, req, &err);
        return;
    }
    gc_api_list_response(resp, items, next);
    resp->exact_reals = true; /* the records as the clouds sent them, to the bit */
}

/* On the store's writer thread, once the batch is stored (or not). */
static void ingest_done(void *arg, int rc, json_t *out, const struct gc_error *err)
{
    struct gc_req *req = arg;
    struct gc_resp resp = {.status = 500};
    if (rc)
        gc_resp_error(&resp, req, err);
    else
        gc_resp_json(&resp, 200, out);
    gc_req_resume(req, &resp);
}

void gc_api_supervision_ingest(struct gc_req *req, struct gc_resp *resp)
{
    struct gc_error err = {0};
    if (!req->ctx.cfg->accept_pushes) {
        gc_error_set(&err, GC_ENOTFOUND, "",
                     "this govcloudd does not accept supervision pushes ([supervision] "
                     "accept_pushes is off)");
        gc_resp_error(resp, req, &err);
        return;
    }
    const char *h = gc_req_header(req, "Authorization");
    const char *tok = NULL;
    if (!h) {
        gc_error_set(&err, GC_EAUTH, "Authorization",
                     "missing Authorization header; send 'Authorization: Bearer <token>' with "
                     "the token the supervisor gave when it registered this cloud");
    } else if (strncasecmp(h, "Bearer ", 7) != 0) {
        gc_error_set(&err, GC_EAUTH, "Authorization",
                     "the Authorization header must use the Bearer scheme");
    } else {
        tok = h + 7;
        while (*tok == ' ')
            tok++;
    }
    const char *ct = gc_req_header(req, "Content-Type");
    if (!err.code && (!ct || strncasecmp(ct, "application/json", 16) != 0 ||
                      (ct[16] && ct[16] != ';' && ct[16] != ' ')))
        gc_error_set(&err, GC_EMEDIA, "Content-Type",
                     "Content-Type must be application/json, got '%.64s'", ct ? ct : "none");
    /* a batch is a JSON object: anything else is refused before the token is looked up */
    if (!err.code) {
        size_t i = 0;
        while (i < req->raw.len && (req->raw.data[i] == ' ' || req->raw.data[i] == '\n' ||
                                    req->raw.data[i] == '\r' || req->raw.data[i] == '\t'))
            i++;
        if (i == req->raw.len || req->raw.data[i] != '{')
            gc_error_set(&err, GC_EINVAL, "", "the body must be a batch: a JSON object "
                                              "(docs/supervision-spec.md section 4)");
    }
    /* the checks here; the store on its writer thread, grouped with other clouds' batches,
     * while this HTTP thread serves other connections */
    struct gc_sup_ingest *in = NULL;
    if (err.code || gc_sup_ingest_prepare(req->ctx.store, tok, req->raw.data, req->raw.len, &in,
                                          &err) != 0) {
        gc_resp_error(resp, req, &err);
        return;
    }
    gc_req_suspend(req);
    gc_sup_ingest_submit(req->ctx.store, in, ingest_done, req);
}

/* ---- views across clouds ---- */

void gc_api_supervision_overview(struct gc_req *req, struct gc_resp *resp)
{
    struct gc_error err = {0};
    json_t *out = NULL;
    if (gc_sup_overview(&req->ctx, req->ctx.cfg->supervision_substitution_weights, &out,
                        &err) != 0) {
        gc_resp_error(resp, req, &err);
        return;
    }
    gc_resp_json(resp, 200, out);
}

void gc_api_cloud_summary(struct gc_req *req, struct gc_resp *resp)
{
    struct gc_error err = {0};
    json_t *out = NULL;
    if (gc_sup_cloud_summary(&req->ctx, req->params[0],
                             req->ctx.cfg->supervision_substitution_weights, &out, &err) != 0) {
        gc_resp_error(resp, req, &err);
        return;
    }
    gc_resp_json(resp, 200, out);
}
