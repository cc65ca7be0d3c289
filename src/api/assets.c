/* Handlers of the asset inventory (/v1/assets…) and of the supervision pull
 * (/v1/supervision/{dataset}), whose body is streamed. */
#include "api/api.h"

#include "core/asset.h"
#include "core/supdata.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void gc_api_asset_list(struct gc_req *req, struct gc_resp *resp)
{
    static const char *const filters[] = {"kind",  "department_id", "domestic", "cpu_arch",
                                          "layer", "source",        NULL};
    gc_api_list(req, resp, gc_asset_list, filters);
}

void gc_api_asset_get(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_get(req, resp, gc_asset_get);
}

void gc_api_asset_update(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_update(req, resp, gc_asset_update);
}

void gc_api_asset_delete(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_delete(req, resp, gc_asset_delete);
}

void gc_api_asset_history(struct gc_req *req, struct gc_resp *resp)
{
    struct gc_error err = {0};
    int limit;
    const char *cursor;
    json_t *items = NULL;
    char *next = NULL;
    if (gc_api_paging(req, &limit, &cursor, &err) ||
        gc_asset_history(&req->ctx, req->params[0], limit, cursor, &items, &next, &err)) {
        gc_resp_error(resp, req, &err);
        return;
    }
    gc_api_list_response(resp, items, next);
}

/* Whether the Content-Type is type (with or without parameters such as charset). */
static bool ctype_is(const char *ct, const char *type)
{
    if (!ct)
        return false;
    while (*ct == ' ')
        ct++;
    size_t n = strlen(type);
    if (strncasecmp(ct, type, n) != 0)
        return false;
    ct += n;
    while (*ct == ' ')
        ct++;
    if (*ct == ';') {
        /* a charset other than UTF-8 is refused rather than misread */
        const char *cs = NULL;
        for (const char *q = ct; *q && !cs; q++)
            if (strncasecmp(q, "charset=", 8) == 0)
                cs = q;
        if (cs) {
            cs += 8;
            if (*cs == '"')
                cs++;
            return strncasecmp(cs, "utf-8", 5) == 0 || strncasecmp(cs, "utf8", 4) == 0;
        }
        return true;
    }
    return *ct == '\0';
}

static void import_error(struct gc_req *req, struct gc_resp *resp, const struct gc_error *err,
                         json_t *errors)
{
    gc_resp_error(resp, req, err);
    if (errors && resp->json)
        json_object_set_new(resp->json, "errors", errors);
    else
        json_decref(errors);
}

void gc_api_asset_import(struct gc_req *req, struct gc_resp *resp)
{
    struct gc_error err = {0};
    const char *ct = gc_req_header(req, "Content-Type");
    json_t *rows = NULL, *errors = NULL, *out = NULL;
    int rc = gc_require(req->ctx.who, GC_P_HOST_WRITE, &err);
    if (rc) {
        gc_resp_error(resp, req, &err);
        return;
    }
    if (ctype_is(ct, "application/json")) {
        json_error_t jerr;
        rows = json_loadb(req->raw.data, req->raw.len, JSON_REJECT_DUPLICATES, &jerr);
        if (!rows)
            rc = gc_error_set(&err, GC_EINVAL, "", "malformed JSON at line %d, column %d: %s",
                              jerr.line, jerr.column, jerr.text);
        else if (!json_is_array(rows))
            rc = gc_error_set(&err, GC_EINVAL, "",
                              "the body must be a JSON array of asset objects");
    } else if (ctype_is(ct, "text/csv")) {
        errors = json_array();
        rc = gc_asset_csv_rows(req->raw.data, req->raw.len, &rows, errors, &err);
        if (!rc && json_array_size(rows) == 0) { /* the header was wrong */
            const json_t *e = json_array_get(errors, 0);
            const char *d = json_string_value(json_object_get(e, "detail"));
            const char *f = json_string_value(json_object_get(e, "field"));
            if (json_array_size(errors) > 1)
                rc = gc_error_set(&err, GC_EINVAL, f ? f : "", "%s (and %zu more errors)",
                                  d ? d : "", json_array_size(errors) - 1);
            else
                rc = gc_error_set(&err, GC_EINVAL, f ? f : "", "%s", d ? d : "");
        }
    } else {
        rc = gc_error_set(&err, GC_EMEDIA, "Content-Type",
                          "Content-Type must be application/json (an array of assets) or "
                          "text/csv (a header row of field names), got '%.64s'",
                          ct ? ct : "none");
    }
    if (rc) {
        json_decref(rows);
        import_error(req, resp, &err, errors);
        return;
    }
    if (!errors)
        errors = json_array();
    rc = gc_asset_import(&req->ctx, rows, &out, errors, &err);
    json_decref(rows);
    if (rc) {
        import_error(req, resp, &err, json_array_size(errors) ? errors : NULL);
        if (!json_array_size(errors))
            json_decref(errors);
        return;
    }
    json_decref(errors);
    gc_resp_json(resp, 200, out);
}

static long pull_read(void *cls, char *buf, size_t max)
{
    return gc_sup_pull_read(cls, buf, max);
}

static void pull_free(void *cls)
{
    gc_sup_pull_free(cls);
}

void gc_api_supervision_pull(struct gc_req *req, struct gc_resp *resp)
{
    struct gc_error err = {0};
    const char *cursor = gc_req_query(req, "cursor");
    const char *l = gc_req_query(req, "limit");
    int64_t limit = 0;
    if (l) {
        char *end;
        errno = 0;
        long long v = strtoll(l, &end, 10);
        if (errno || end == l || *end || v < 1 || v > GC_SUP_PULL_MAX_LIMIT) {
            gc_error_set(&err, GC_EINVAL, "limit",
                         "query parameter 'limit' must be an integer from 1 to %d",
                         GC_SUP_PULL_MAX_LIMIT);
            gc_resp_error(resp, req, &err);
            return;
        }
        limit = v;
    }
    if (cursor && !*cursor) {
        gc_error_set(&err, GC_EINVAL, "cursor", "query parameter 'cursor' is empty");
        gc_resp_error(resp, req, &err);
        return;
    }
    struct gc_sup_pull *p = NULL;
    if (gc_sup_pull_open(&req->ctx, req->params[0], cursor, limit, &p, &err)) {
        gc_resp_error(resp, req, &err);
        return;
    }
    resp->status = 200;
    resp->ctype = "application/json";
    resp->reader = pull_read;
    resp->reader_free = pull_free;
    resp->reader_cls = p;
}

/* ---- /v1/assets/snmp-devices (core/snmp_device.c) ---- */

void gc_api_snmp_device_list(struct gc_req *req, struct gc_resp *resp)
{
    static const char *const filters[] = {"kind", "address", NULL};
    gc_api_list(req, resp, gc_snmp_device_list, filters);
}

void gc_api_snmp_device_create(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_create(req, resp, gc_snmp_device_create, "/v1/assets/snmp-devices");
}

void gc_api_snmp_device_get(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_get(req, resp, gc_snmp_device_get);
}

void gc_api_snmp_device_update(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_update(req, resp, gc_snmp_device_update);
}

void gc_api_snmp_device_delete(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_delete(req, resp, gc_snmp_device_delete);
}

void gc_api_snmp_device_discover(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_get(req, resp, gc_snmp_device_discover);
}

void gc_api_supervision_substitution(struct gc_req *req, struct gc_resp *resp)
{
    struct gc_error err = {0};
    json_t *out = NULL;
    if (gc_subst_local(&req->ctx, req->ctx.cfg->supervision_substitution_weights, &out, &err)) {
        gc_resp_error(resp, req, &err);
        return;
    }
    gc_resp_json(resp, 200, out);
}
