/* libmicrohttpd glue: connection handling, body limits, routing, authentication,
 * request ids, failure auditing and graceful shutdown. */
#include "http/http.h"

#include "util/log.h"
#include "util/mem.h"
#include "util/timeutil.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

struct gc_server {
    struct MHD_Daemon *d;
    struct gc_store *st;
    const struct gc_config *cfg;
    size_t max_body;
    atomic_int in_flight;   /* requests begun and not completed */
    atomic_int dispatching; /* requests whose body is in and whose answer is being made */
    atomic_int suspended;   /* of those, the ones answered later by another thread */
    atomic_bool stopping;
    int port;
};

struct gc_store *gc_server_store(struct gc_server *srv)
{
    return srv->st;
}

const char *gc_req_header(struct gc_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *gc_req_query(struct gc_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

struct qall {
    const char *name;
    const char **out;
    int cap, n;
};

static enum MHD_Result qall_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    (void)kind;
    struct qall *q = cls;
    if (strcmp(key, q->name) == 0) {
        if (q->n < q->cap)
            q->out[q->n] = value ? value : "";
        q->n++;
    }
    return MHD_YES;
}

int gc_req_query_all(struct gc_req *req, const char *name, const char **out, int cap)
{
    struct qall q = {name, out, cap, 0};
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, qall_iter, &q);
    return q.n;
}

int gc_req_if_match(struct gc_req *req, int64_t *version, struct gc_error *err)
{
    *version = -1;
    const char *h = gc_req_header(req, "If-Match");
    if (!h)
        return 0;
    const char *p = h;
    if (p[0] == 'W' && p[1] == '/')
        p += 2;
    char *end;
    long long v;
    if (*p == '"')
        v = strtoll(p + 1, &end, 10);
    else
        v = strtoll(p, &end, 10);
    if ((*p == '"' && (end == p + 1 || end[0] != '"' || end[1])) ||
        (*p != '"' && (end == p || *end)) || v < 0)
        return gc_error_set(err, GC_EINVAL, "If-Match",
                            "If-Match must be an ETag this API returned, such as \"3\"");
    *version = v;
    return 0;
}

int gc_http_status_of(int code)
{
    switch (code) {
    case 0: return 200;
    case GC_EINVAL: return 400;
    case GC_ENOTFOUND: return 404;
    case GC_ECONFLICT: return 409;
    case GC_EPERM: return 403;
    case GC_EAUTH: return 401;
    case GC_ELOCKED: return 429;
    case GC_EPRECOND: return 412;
    case GC_ETOOBIG: return 413;
    case GC_EUNSUPPORTED: return 501;
    case GC_EMETHOD: return 405;
    case GC_EMEDIA: return 415;
    case GC_EBUSY: return 503;
    case GC_ERATE: return 429;
    default: return 500;
    }
}

void gc_resp_json(struct gc_resp *resp, int status, json_t *json)
{
    json_decref(resp->json);
    resp->status = status;
    resp->json = json;
    resp->ctype = "application/json";
}

void gc_resp_no_content(struct gc_resp *resp)
{
    json_decref(resp->json);
    resp->json = NULL;
    resp->status = 204;
}

void gc_resp_etag_from(struct gc_resp *resp, const json_t *obj)
{
    json_t *v = json_object_get(obj, "version");
    if (json_is_integer(v))
        snprintf(resp->etag, sizeof(resp->etag), "\"%lld\"", (long long)json_integer_value(v));
}

/* Length of the valid UTF-8 sequence at p, or 0. */
static size_t utf8_seq(const unsigned char *p)
{
    if (p[0] < 0x80)
        return 1;
    size_t n = p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc2 ? 2 : 0;
    if (n == 0 || p[0] > 0xf4)
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

/* A JSON string of s; bytes that are not valid UTF-8 (a raw byte from a client) become '?',
 * so that an error message can always be sent. Valid characters are kept. */
static json_t *safe_string(const char *s)
{
    json_t *v = json_string(s);
    if (v)
        return v;
    struct gc_buf b;
    gc_buf_init(&b, GC_BUF_UNLIMITED);
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        size_t n = utf8_seq(p);
        if (n == 0) {
            (void)gc_buf_add(&b, "?", 1);
            p++;
        } else {
            (void)gc_buf_add(&b, p, n);
            p += n;
        }
    }
    v = json_string(gc_buf_str(&b));
    gc_buf_release(&b);
    return v ? v : json_string("");
}

void gc_resp_error(struct gc_resp *resp, struct gc_req *req, const struct gc_error *err)
{
    int status = gc_http_status_of(err->code);
    json_t *p = json_object();
    char type[128];
    snprintf(type, sizeof(type), "https://govcloud.example/problems/%s",
             gc_error_slug(err->code));
    json_object_set_new(p, "type", json_string(type));
    json_object_set_new(p, "title", json_string(gc_error_title(err->code)));
    json_object_set_new(p, "status", json_integer(status));
    const char *detail = err->msg[0] ? err->msg : gc_error_title(err->code);
    if (status >= 500 && err->code == GC_ESTORE)
        detail = "the store failed; the operation was not carried out (see the daemon log)";
    json_object_set_new(p, "detail", safe_string(detail));
    json_object_set_new(p, "instance", safe_string(req->url ? req->url : ""));
    json_object_set_new(p, "request_id", json_string(req->request_id));
    if (err->field[0])
        json_object_set_new(p, "field", safe_string(err->field));
    gc_resp_json(resp, status, p);
    resp->ctype = "application/problem+json";
    if (err->retry_after > 0)
        resp->retry_after = err->retry_after;
    if (status == 401)
        resp->www_auth = true;
    if (status >= 500 && status != 503)
        gc_err("http", "%s %s: %s (%s:%d)", req->method, req->url, err->msg,
               err->file ? err->file : "?", err->line);
}

/* ---- routing ---- */

/* Matches url against pattern, collecting {param} segments. */
static bool match(const char *pattern, const char *url, const char **params, int *nparams,
                  char *scratch, size_t scratch_cap)
{
    size_t used = 0;
    int n = 0;
    const char *p = pattern, *u = url;
    while (*p && *u) {
        if (*p == '{') {
            const char *pe = strchr(p, '}');
            const char *ue = strchr(u, '/');
            size_t len = ue ? (size_t)(ue - u) : strlen(u);
            if (len == 0 || n == 4 || used + len + 1 > scratch_cap)
                return false;
            memcpy(scratch + used, u, len);
            scratch[used + len] = '\0';
            params[n++] = scratch + used;
            used += len + 1;
            p = pe + 1;
            u += len;
            continue;
        }
        if (*p != *u)
            return false;
        p++;
        u++;
    }
    if (*p || *u)
        return false;
    *nparams = n;
    return true;
}

struct conn_state {
    struct gc_req req;
    char scratch[512];
    int route_index;
    int status; /* of the response queued, for metrics */
    bool started;
    const struct gc_stream_ops *stream; /* a streaming route's, once its begin succeeded */
    bool stream_failed;                 /* its data failed: the rest of the body is dropped */
    struct gc_error stream_err;
    bool encoded_slash; /* the raw path had %2F or %00, which routing must not see decoded */
    bool done;
    /* a deferred answer (gc_req_suspend): set by the handler, answered by gc_req_resume */
    bool suspended;
    atomic_bool resumed;
    struct gc_resp deferred;
};

static bool query_allowed(const struct gc_route *r, const char *key)
{
    if (!r->query)
        return false;
    size_t n = strlen(key);
    for (const char *p = r->query; *p;) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        if (len == n && strncmp(p, key, n) == 0)
            return true;
        if (!c)
            break;
        p = c + 1;
    }
    return false;
}

struct qcheck {
    const struct gc_route *route;
    const char *bad;
    bool dup;
    char seen[16][32];
    int nseen;
};

static enum MHD_Result query_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    (void)kind;
    (void)value;
    struct qcheck *q = cls;
    if (!query_allowed(q->route, key)) {
        q->bad = key;
        return MHD_NO;
    }
    size_t klen = strlen(key);
    bool multi = klen > 2 && strcmp(key + klen - 2, "[]") == 0; /* match[]: may repeat */
    for (int i = 0; i < q->nseen && !multi; i++)
        if (strcmp(q->seen[i], key) == 0) {
            q->bad = key;
            q->dup = true;
            return MHD_NO;
        }
    if (q->nseen < 16)
        snprintf(q->seen[q->nseen++], sizeof(q->seen[0]), "%s", key);
    return MHD_YES;
}

static bool is_json_ctype(const char *ct)
{
    if (!ct)
        return false;
    while (*ct == ' ')
        ct++;
    if (strncasecmp(ct, "application/json", 16) != 0)
        return false;
    ct += 16;
    while (*ct == ' ')
        ct++;
    return *ct == '\0' || *ct == ';';
}

/* Finds the route and checks everything but the body: method, shutdown, query parameters,
 * authentication. false: resp holds the error. */
static bool prepare(struct conn_state *cs, struct gc_resp *resp)
{
    struct gc_req *req = &cs->req;
    struct gc_error err = {0};
    cs->route_index = -1;
    bool path_known = false;
    char allow[64] = "";
    for (size_t i = 0; i < gc_nroutes; i++) {
        const struct gc_route *r = &gc_routes[i];
        int np = 0;
        if (!match(r->pattern, req->url, req->params, &np, cs->scratch, sizeof(cs->scratch)))
            continue;
        path_known = true;
        if (strcmp(r->method, req->method) == 0) {
            req->route = r;
            req->nparams = np;
            cs->route_index = (int)i;
            break;
        }
        if (!strstr(allow, r->method) && strlen(allow) + strlen(r->method) + 3 < sizeof(allow)) {
            if (allow[0])
                snprintf(allow + strlen(allow), sizeof(allow) - strlen(allow), ", ");
            snprintf(allow + strlen(allow), sizeof(allow) - strlen(allow), "%s", r->method);
        }
    }
    if (!req->route) {
        if (path_known) {
            gc_error_set(&err, GC_EMETHOD, "", "method %s is not allowed on %s; allowed: %s",
                         req->method, req->url, allow);
            snprintf(resp->allow, sizeof(resp->allow), "%s", allow);
        } else {
            gc_error_set(&err, GC_ENOTFOUND, "", "no such endpoint: %s %s (see /v1/openapi.json)",
                         req->method, req->url);
        }
        gc_resp_error(resp, req, &err);
        return false;
    }
    const struct gc_route *r = req->route;
    if (atomic_load(&req->srv->stopping)) {
        gc_error_set(&err, GC_EBUSY, "", "the daemon is shutting down; retry shortly");
        err.retry_after = 5;
        gc_resp_error(resp, req, &err);
        return false;
    }
    struct qcheck q = {.route = r};
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, query_iter, &q);
    if (q.bad) {
        if (q.dup)
            gc_error_set(&err, GC_EINVAL, q.bad, "query parameter '%.64s' given twice", q.bad);
        else
            gc_error_set(&err, GC_EINVAL, q.bad, "unknown query parameter '%.64s'; allowed: %s",
                         q.bad, r->query ? r->query : "none");
        gc_resp_error(resp, req, &err);
        return false;
    }
    if (r->auth) {
        const char *h = gc_req_header(req, "Authorization");
        int rc;
        if (!h) {
            rc = gc_error_set(&err, GC_EAUTH, "Authorization",
                              "missing Authorization header; send 'Authorization: Bearer "
                              "<token>' with a token from POST /v1/tokens");
        } else if (strncasecmp(h, "Bearer ", 7) != 0) {
            rc = gc_error_set(&err, GC_EAUTH, "Authorization",
                              "the Authorization header must use the Bearer scheme");
        } else {
            const char *tok = h + 7;
            while (*tok == ' ')
                tok++;
            rc = gc_auth_resolve(req->srv->st, tok, &req->who, &err);
        }
        if (rc) {
            gc_resp_error(resp, req, &err);
            return false;
        }
        req->ctx.who = &req->who;
    }
    return true;
}

/* A failed attempt to change something is audited (successes are audited by core in the
 * same transaction as the change). */
static void audit_failure(struct gc_req *req, const struct gc_resp *resp)
{
    const struct gc_route *r = req->route;
    if (r && r->action && resp->status >= 400 && req->ctx.who) {
        json_t *d = json_object_get(resp->json, "detail");
        const char *reason = json_is_string(d) ? json_string_value(d) : "";
        const char *rid = req->nparams > 0 ? req->params[0] : NULL;
        if (rid && !gc_id_valid(rid) && strcmp(rid, "me") != 0)
            rid = "(invalid id)";
        gc_audit_failure(&req->ctx, r->action, r->resource, rid,
                         resp->status == 403 ? GC_OUTCOME_DENIED : GC_OUTCOME_FAILURE, reason);
    }
}

static void dispatch(struct conn_state *cs, struct gc_resp *resp)
{
    struct gc_req *req = &cs->req;
    struct gc_error err = {0};
    if (!prepare(cs, resp))
        return;
    const struct gc_route *r = req->route;
    if (r->body == GC_BODY_JSON) {
        const char *ct = gc_req_header(req, "Content-Type");
        json_error_t jerr;
        if (req->raw.len == 0) {
            gc_error_set(&err, GC_EINVAL, "", "the request body is empty; send a JSON object");
        } else if (!is_json_ctype(ct)) {
            gc_error_set(&err, GC_EMEDIA, "Content-Type",
                         "Content-Type must be application/json, got '%.64s'", ct ? ct : "none");
        } else if (!(req->body = json_loadb(req->raw.data, req->raw.len, JSON_REJECT_DUPLICATES,
                                            &jerr))) {
            gc_error_set(&err, GC_EINVAL, "", "malformed JSON at line %d, column %d: %s",
                         jerr.line, jerr.column, jerr.text);
        } else if (!json_is_object(req->body)) {
            gc_error_set(&err, GC_EINVAL, "", "the request body must be a JSON object");
        }
    } else if (r->body == GC_BODY_RAW) {
        if (req->raw.len == 0)
            gc_error_set(&err, GC_EINVAL, "", "the request body is empty");
    } else if (req->raw.len > 0) {
        gc_error_set(&err, GC_EINVAL, "", "%s %s takes no request body", req->method,
                     r->pattern);
    }
    if (err.code) {
        gc_resp_error(resp, req, &err);
    } else {
        r->handler(req, resp);
    }
    if (!cs->suspended) /* else when the answer comes */
        audit_failure(req, resp);
}

static bool valid_request_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.'))
            return false;
    return true;
}

/* A streamed body (gc_resp.reader) as libmicrohttpd wants it. */
struct reader_state {
    long (*reader)(void *cls, char *buf, size_t max);
    void (*reader_free)(void *cls);
    void *cls;
};

static ssize_t reader_cb(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct reader_state *rs = cls;
    long n = rs->reader(rs->cls, buf, max);
    if (n > 0)
        return (ssize_t)n;
    return n == 0 ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
}

static void reader_done(void *cls)
{
    struct reader_state *rs = cls;
    if (rs->reader_free)
        rs->reader_free(rs->cls);
    free(rs);
}

static enum MHD_Result queue(struct MHD_Connection *conn, struct gc_req *req,
                             struct gc_resp *resp)
{
    struct MHD_Response *mr;
    if (resp->reader) {
        struct reader_state *rs = gc_malloc(sizeof(*rs));
        rs->reader = resp->reader;
        rs->reader_free = resp->reader_free;
        rs->cls = resp->reader_cls;
        resp->reader = NULL;
        resp->reader_free = NULL;
        resp->reader_cls = NULL;
        mr = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024, reader_cb, rs,
                                               reader_done);
        if (!mr)
            reader_done(rs);
    } else if (resp->json) {
        /* 15 digits: 0.1 reads 0.1; 17 where a value must come back to the bit */
        char *body = json_dumps(resp->json, JSON_COMPACT | JSON_REAL_PRECISION(
                                                              resp->exact_reals ? 17 : 15));
        mr = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    } else if (resp->owned_text) {
        mr = MHD_create_response_from_buffer(strlen(resp->owned_text), resp->owned_text,
                                             MHD_RESPMEM_MUST_FREE);
        resp->owned_text = NULL;
    } else if (resp->text) {
        mr = MHD_create_response_from_buffer(resp->text_len, (void *)resp->text,
                                             MHD_RESPMEM_PERSISTENT);
    } else {
        mr = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    if (!mr)
        return MHD_NO;
    if (resp->ctype && resp->status != 204)
        MHD_add_response_header(mr, "Content-Type", resp->ctype);
    MHD_add_response_header(mr, "X-Request-Id", req->request_id);
    MHD_add_response_header(mr, "Cache-Control", "no-store");
    MHD_add_response_header(mr, "X-Content-Type-Options", "nosniff");
    if (resp->etag[0])
        MHD_add_response_header(mr, "ETag", resp->etag);
    if (resp->location[0])
        MHD_add_response_header(mr, "Location", resp->location);
    if (resp->allow[0])
        MHD_add_response_header(mr, "Allow", resp->allow);
    if (resp->www_auth)
        MHD_add_response_header(mr, "WWW-Authenticate", "Bearer realm=\"govcloud\"");
    if (resp->retry_after > 0) {
        char ra[24];
        snprintf(ra, sizeof(ra), "%ld", resp->retry_after);
        MHD_add_response_header(mr, "Retry-After", ra);
    }
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)resp->status, mr);
    MHD_destroy_response(mr);
    return ret;
}

static void resp_release(struct gc_resp *resp)
{
    json_decref(resp->json);
    free(resp->owned_text);
    if (resp->reader && resp->reader_free) /* never handed to libmicrohttpd */
        resp->reader_free(resp->reader_cls);
}

/* Whether method and url name a route whose body is streamed. */
static bool is_stream_route(struct conn_state *cs, const char *method, const char *url)
{
    const char *params[4];
    int np;
    for (size_t i = 0; i < gc_nroutes; i++)
        if (gc_routes[i].body == GC_BODY_STREAM && strcmp(gc_routes[i].method, method) == 0 &&
            match(gc_routes[i].pattern, url, params, &np, cs->scratch, sizeof(cs->scratch)))
            return true;
    return false;
}

static void log_access(struct conn_state *cs)
{
    struct gc_req *req = &cs->req;
    if (cs->status >= 400 || strcmp(req->method, "GET") != 0)
        gc_info("http", "%s %s %d %.1fms %s", req->method, req->url, cs->status,
                (double)(gc_mono_ns() - req->start_ns) / 1e6, req->source_ip);
    else
        gc_debug("http", "%s %s %d %.1fms %s", req->method, req->url, cs->status,
                 (double)(gc_mono_ns() - req->start_ns) / 1e6, req->source_ip);
}

/* Answers a streaming request with an error now. Before the body, libmicrohttpd then closes
 * the connection without reading it. In the middle of a body, libmicrohttpd (0.9.75) refuses
 * (MHD_NO): the caller drops the rest of the body and answers at its end. */
static enum MHD_Result stream_answer(struct conn_state *cs, const struct gc_error *err)
{
    struct gc_req *req = &cs->req;
    struct gc_resp resp = {.status = 500};
    gc_resp_error(&resp, req, err);
    enum MHD_Result ret = queue(req->conn, req, &resp);
    if (ret == MHD_YES) {
        cs->status = resp.status;
        audit_failure(req, &resp);
        log_access(cs);
    }
    resp_release(&resp);
    return ret;
}

/* The headers of a streaming request are in: the same checks as any request, then the
 * route's begin. */
static enum MHD_Result stream_begin(struct conn_state *cs)
{
    struct gc_req *req = &cs->req;
    struct gc_resp resp = {.status = 500};
    gc_log_set_request_id(req->request_id);
    enum MHD_Result ret = MHD_YES;
    if (!prepare(cs, &resp)) {
        cs->done = true;
        ret = queue(req->conn, req, &resp);
        cs->status = resp.status;
        log_access(cs);
    } else {
        const struct gc_stream_ops *ops = gc_route_stream(req->route);
        struct gc_error err = {0};
        if (!ops)
            gc_error_set(&err, GC_EINTERNAL, "", "streaming route without operations");
        else
            ops->begin(req, &err);
        if (err.code) {
            cs->done = true;
            ret = stream_answer(cs, &err);
        } else {
            cs->stream = ops;
        }
    }
    resp_release(&resp);
    gc_log_set_request_id(NULL);
    return ret;
}

/* Sees the request target before libmicrohttpd decodes it: an encoded '/' or NUL in the path
 * would otherwise change which route matches. */
static char encoded_slash_marker; /* returned instead of an allocation: nothing to leak if the
                                     request ends before it reaches the handler */

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls;
    (void)conn;
    bool in_query = false;
    for (const char *p = uri; *p; p++) {
        in_query |= *p == '?';
        /* %2F only matters in the path; %00 would cut a path or a query value short */
        if (p[0] == '%' && ((!in_query && p[1] == '2' && (p[2] == 'f' || p[2] == 'F')) ||
                            (p[1] == '0' && p[2] == '0')))
            return &encoded_slash_marker;
    }
    return NULL;
}

/* ---- deferred answers ---- */

static struct conn_state *conn_of(struct gc_req *req)
{
    return (struct conn_state *)(void *)((char *)req - offsetof(struct conn_state, req));
}

void gc_req_suspend(struct gc_req *req)
{
    struct conn_state *cs = conn_of(req);
    cs->suspended = true;
    atomic_store(&cs->resumed, false);
    atomic_fetch_add(&req->srv->suspended, 1);
    MHD_suspend_connection(req->conn);
}

void gc_req_resume(struct gc_req *req, struct gc_resp *resp)
{
    struct conn_state *cs = conn_of(req);
    cs->deferred = *resp;
    memset(resp, 0, sizeof(*resp));
    atomic_store(&cs->resumed, true);
    MHD_resume_connection(req->conn);
}

static enum MHD_Result answer_deferred(struct conn_state *cs)
{
    if (!atomic_load(&cs->resumed))
        return MHD_YES;
    struct gc_req *req = &cs->req;
    struct gc_server *srv = req->srv;
    cs->suspended = false;
    gc_log_set_request_id(req->request_id);
    audit_failure(req, &cs->deferred);
    enum MHD_Result ret = queue(req->conn, req, &cs->deferred);
    atomic_fetch_sub(&srv->dispatching, 1);
    atomic_fetch_sub(&srv->suspended, 1);
    cs->status = cs->deferred.status;
    resp_release(&cs->deferred);
    log_access(cs);
    gc_log_set_request_id(NULL);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    struct gc_server *srv = cls;
    struct conn_state *cs = *con_cls;
    if (!cs || *con_cls == &encoded_slash_marker) {
        cs = gc_calloc(1, sizeof(*cs));
        cs->route_index = -1;
        cs->encoded_slash = *con_cls == &encoded_slash_marker;
        *con_cls = cs;
    }
    if (!cs->started) {
        cs->started = true;
        struct gc_req *req = &cs->req;
        req->srv = srv;
        req->conn = conn;
        req->method = method;
        req->url = url;
        req->start_ns = gc_mono_ns();
        gc_buf_init(&req->raw, srv->max_body);
        const char *rid = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
        if (rid && valid_request_id(rid))
            snprintf(req->request_id, sizeof(req->request_id), "%s", rid);
        else
            gc_request_id_new(req->request_id);
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (ci && ci->client_addr) {
            const struct sockaddr *sa = ci->client_addr;
            if (sa->sa_family == AF_INET)
                inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
                          req->source_ip, sizeof(req->source_ip));
            else if (sa->sa_family == AF_INET6)
                inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
                          req->source_ip, sizeof(req->source_ip));
        }
        req->ctx.store = srv->st;
        req->ctx.cfg = srv->cfg;
        req->ctx.request_id = req->request_id;
        req->ctx.source_ip = req->source_ip;
        atomic_fetch_add(&srv->in_flight, 1);
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        req->content_length = -1;
        if (cl) {
            char *end;
            unsigned long long v = strtoull(cl, &end, 10);
            if (end != cl && *end == '\0' && v <= INT64_MAX)
                req->content_length = (int64_t)v;
            /* the body's buffer at its size at once (bounded by max_body, checked below) */
            if (req->content_length > 0 && (uint64_t)req->content_length <= srv->max_body)
                (void)gc_buf_reserve(&req->raw, (size_t)req->content_length);
        }
        if (!cs->encoded_slash && is_stream_route(cs, method, url))
            return stream_begin(cs);
        if (cl && strtoull(cl, NULL, 10) > srv->max_body) {
            /* answer before the body is read: libmicrohttpd then closes the connection */
            req->too_big = true;
            cs->done = true;
            struct gc_error err = {0};
            struct gc_resp resp = {.status = 500};
            gc_error_set(&err, GC_ETOOBIG, "", "the request body is larger than %zu bytes",
                         srv->max_body);
            gc_resp_error(&resp, req, &err);
            enum MHD_Result ret = queue(conn, req, &resp);
            cs->status = resp.status;
            resp_release(&resp);
            return ret;
        }
        return MHD_YES;
    }
    struct gc_req *req = &cs->req;
    if (cs->stream) {
        if (*upload_data_size > 0) {
            if (!cs->stream_failed && !cs->done &&
                cs->stream->data(req, upload_data, *upload_data_size, &cs->stream_err) != 0) {
                cs->stream_failed = true;
                cs->stream->abort(req);
                gc_log_set_request_id(req->request_id);
                /* answered now if libmicrohttpd takes a response in the middle of a body;
                 * else at its end, the rest being dropped unread by us */
                if (stream_answer(cs, &cs->stream_err) == MHD_YES)
                    cs->done = true;
                gc_log_set_request_id(NULL);
            }
            *upload_data_size = 0;
            return MHD_YES;
        }
        if (cs->done)
            return MHD_YES;
        cs->done = true;
        gc_log_set_request_id(req->request_id);
        if (cs->stream_failed)
            return stream_answer(cs, &cs->stream_err);
        atomic_fetch_add(&srv->dispatching, 1);
        struct gc_resp resp = {.status = 500};
        cs->stream->end(req, &resp);
        audit_failure(req, &resp);
        enum MHD_Result ret = queue(conn, req, &resp);
        atomic_fetch_sub(&srv->dispatching, 1);
        cs->status = resp.status;
        resp_release(&resp);
        log_access(cs);
        gc_log_set_request_id(NULL);
        return ret;
    }
    if (cs->suspended) /* called again once resumed */
        return answer_deferred(cs);
    if (*upload_data_size > 0) {
        if (!req->too_big && gc_buf_add(&req->raw, upload_data, *upload_data_size) != 0)
            req->too_big = true;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (cs->done)
        return MHD_YES;
    cs->done = true;
    gc_log_set_request_id(req->request_id);
    atomic_fetch_add(&srv->dispatching, 1);
    struct gc_resp resp = {.status = 500};
    if (req->too_big) {
        struct gc_error err = {0};
        gc_error_set(&err, GC_ETOOBIG, "", "the request body is larger than %zu bytes",
                     srv->max_body);
        gc_resp_error(&resp, req, &err);
    } else if (cs->encoded_slash) {
        struct gc_error err = {0};
        gc_error_set(&err, GC_EINVAL, "", "the request target contains an encoded NUL (%%00), or "
                                          "an encoded '/' (%%2F) in the path, which no endpoint "
                                          "accepts");
        gc_resp_error(&resp, req, &err);
    } else {
        dispatch(cs, &resp);
        if (cs->suspended) { /* answered by gc_req_resume; dispatching stays counted */
            resp_release(&resp);
            gc_log_set_request_id(NULL);
            return MHD_YES;
        }
    }
    enum MHD_Result ret = queue(conn, req, &resp);
    atomic_fetch_sub(&srv->dispatching, 1);
    cs->status = resp.status;
    resp_release(&resp);
    /* access log: every change and every error at info, plain reads at debug */
    log_access(cs);
    gc_log_set_request_id(NULL);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    struct gc_server *srv = cls;
    struct conn_state *cs = *con_cls;
    if (!cs || *con_cls == &encoded_slash_marker)
        return;
    if (cs->stream && cs->req.sink) { /* the body never came whole: drop what was made */
        gc_log_set_request_id(cs->req.request_id);
        gc_info("http", "%s %s: the request ended before its body (%s)", cs->req.method,
                cs->req.url, toe == MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN ? "shutdown"
                                                                           : "connection lost");
        cs->stream->abort(&cs->req);
        gc_log_set_request_id(NULL);
    }
    if (cs->done)
        gc_metrics_observe(cs->route_index, cs->status, gc_mono_ns() - cs->req.start_ns);
    json_decref(cs->req.body);
    gc_buf_release(&cs->req.raw);
    free(cs);
    *con_cls = NULL;
    atomic_fetch_sub(&srv->in_flight, 1);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    gc_warn("http", "libmicrohttpd: %s", msg);
}

int gc_server_start(const struct gc_server_opts *opts, struct gc_store *st,
                    const struct gc_config *cfg, struct gc_server **out, struct gc_error *err)
{
    char host[128];
    int port;
    int rc = gc_parse_listen(opts->listen, host, sizeof(host), &port, err);
    if (rc)
        return rc;
    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_PASSIVE, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    if (getaddrinfo(host, NULL, &hints, &ai) != 0 || !ai)
        return gc_error_set(err, GC_EINVAL, "listen",
                            "listen '%s': '%s' is not a numeric IPv4 or IPv6 address",
                            opts->listen, host);
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    bool v6 = ai->ai_family == AF_INET6;
    freeaddrinfo(ai);
    if (v6)
        ((struct sockaddr_in6 *)(void *)&ss)->sin6_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in *)(void *)&ss)->sin_port = htons((uint16_t)port);

    struct gc_server *srv = gc_calloc(1, sizeof(*srv));
    srv->st = st;
    srv->cfg = cfg;
    srv->max_body = opts->max_body;
    atomic_init(&srv->in_flight, 0);
    atomic_init(&srv->dispatching, 0);
    atomic_init(&srv->suspended, 0);
    atomic_init(&srv->stopping, false);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
    if (v6)
        flags |= MHD_USE_IPv6;
    int threads = opts->threads > 0 ? opts->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1)
        threads = 1;
    srv->d = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
        srv, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&ss, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)threads,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)opts->connection_limit,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)opts->connection_timeout,
        /* the pool holds a request's headers and the response headers; bodies are streamed
         * to our handler. 16 KiB instead of 32: it is cleared on every request. */
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16384,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_URI_LOG_CALLBACK, on_uri, srv,
        MHD_OPTION_END);
    if (!srv->d) {
        free(srv);
        return gc_error_set(err, GC_EINVAL, "listen",
                            "cannot listen on %s (address in use, or not an address of this "
                            "machine?)",
                            opts->listen);
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv->d, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = di ? di->port : port;
    *out = srv;
    return 0;
}

int gc_server_port(const struct gc_server *srv)
{
    return srv->port;
}

void gc_server_stop(struct gc_server *srv, int grace_ms)
{
    if (!srv)
        return;
    atomic_store(&srv->stopping, true);
    MHD_socket s = MHD_quiesce_daemon(srv->d);
    /* requests being answered get the whole grace period; a client still sending its body
     * gets a short one, so that one stalled client cannot hold the shutdown */
    int64_t start = gc_mono_ns();
    int64_t deadline = start + (int64_t)grace_ms * 1000000;
    int64_t upload_deadline = start + 2000 * (int64_t)1000000;
    while (atomic_load(&srv->in_flight) > 0 && gc_mono_ns() < deadline &&
           (atomic_load(&srv->dispatching) > 0 || gc_mono_ns() < upload_deadline)) {
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    /* an owed answer is waited for whatever the grace: its thread will resume a connection
     * of this daemon (such work is bounded, e.g. a store write) */
    while (atomic_load(&srv->suspended) > 0) {
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    MHD_stop_daemon(srv->d);
    if (s != MHD_INVALID_SOCKET)
        close(s);
    free(srv);
}
