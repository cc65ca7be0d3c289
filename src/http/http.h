/* The HTTP layer: libmicrohttpd server, routing, limits, authentication, request ids,
 * problem+json errors and request metrics. Handlers in api/ see only gc_req / gc_resp. */
#ifndef GC_HTTP_H
#define GC_HTTP_H

#include "core/core.h"
#include "util/buf.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct gc_server;
struct gc_req;
struct gc_resp;

typedef void (*gc_handler)(struct gc_req *req, struct gc_resp *resp);

struct gc_route {
    const char *method;
    const char *pattern;  /* "/v1/departments/{id}"; a {name} segment matches one segment */
    gc_handler handler;
    const char *name;     /* metrics label, e.g. "departments.get" */
    bool auth;            /* needs a bearer token */
    int body;             /* GC_BODY_NONE, GC_BODY_JSON (true) or GC_BODY_STREAM */
    const char *query;    /* allowed query parameters, comma separated, or NULL for none */
    const char *action;   /* audit action recorded when a change fails, or NULL */
    const char *resource; /* audit resource type for that record */
};

/* What a route takes as its body. */
#define GC_BODY_NONE 0
#define GC_BODY_JSON 1
/* A body handed over in pieces as it arrives, never held whole (uploads): the route's
 * gc_stream_ops run instead of its handler, and [server] max_body_bytes does not apply. */
#define GC_BODY_STREAM 2
/* A body of any media type, held whole within [server] max_body_bytes but not parsed: the
 * handler reads req->raw and the Content-Type itself (imports of CSV or JSON arrays). */
#define GC_BODY_RAW 3

struct gc_stream_ops {
    /* The headers are in (the caller authenticated): check and open req->sink. An error is
     * answered at once, before the body is read, and the connection is closed. */
    int (*begin)(struct gc_req *req, struct gc_error *err);
    /* The next piece of the body. An error is answered; the rest of the body is not used. */
    int (*data)(struct gc_req *req, const char *p, size_t n, struct gc_error *err);
    /* The whole body is in: answer. Must leave req->sink NULL. */
    void (*end)(struct gc_req *req, struct gc_resp *resp);
    /* The request ends without end (error, dropped connection, shutdown): drop req->sink
     * and anything half made. Must leave req->sink NULL. */
    void (*abort)(struct gc_req *req);
};

extern const struct gc_route gc_routes[];
extern const size_t gc_nroutes;
/* The stream operations of a GC_BODY_STREAM route (routes.c). */
const struct gc_stream_ops *gc_route_stream(const struct gc_route *r);

struct gc_req {
    struct gc_server *srv;
    void *conn; /* struct MHD_Connection */
    const char *method;
    const char *url;
    const struct gc_route *route;
    const char *params[4]; /* path parameters in order */
    int nparams;
    json_t *body;          /* parsed JSON body when route->body, else NULL */
    struct gc_buf raw;     /* the body as received */
    bool too_big;
    int64_t content_length; /* -1 when not given */
    void *sink;             /* a streaming route's state, from its begin to its end/abort */
    struct gc_principal who;
    struct gc_ctx ctx;
    char request_id[72];
    char source_ip[64];
    int64_t start_ns;
};

struct gc_resp {
    int status;
    json_t *json;              /* owned; serialised as the body */
    const char *text;          /* or a static text body */
    size_t text_len;
    const char *ctype;
    char *owned_text;          /* or an owned malloc'd text body */
    char etag[40];
    char location[160];
    long retry_after;
    char allow[64];
    bool www_auth;
    bool exact_reals; /* json reals with 17 significant digits (exact) instead of 15 */
    /* or a body made piece by piece while it is sent (chunked), never held whole: reader
     * writes up to max bytes into buf and returns how many, 0 at the end, or -1 on failure
     * (the connection is then closed: the client sees a truncated body). reader_free
     * (may be NULL) frees reader_cls once the response is done or was never sent. */
    long (*reader)(void *cls, char *buf, size_t max);
    void (*reader_free)(void *cls);
    void *reader_cls;
};

/* Query parameter, or NULL. */
const char *gc_req_query(struct gc_req *req, const char *name);
/* Every value of a query parameter that may repeat (its name ends in "[]"): up to cap in
 * out; returns how many there are (may exceed cap). */
int gc_req_query_all(struct gc_req *req, const char *name, const char **out, int cap);
/* The If-Match version: -1 when absent; GC_EINVAL filled when malformed. */
int gc_req_if_match(struct gc_req *req, int64_t *version, struct gc_error *err);
const char *gc_req_header(struct gc_req *req, const char *name);

void gc_resp_json(struct gc_resp *resp, int status, json_t *json); /* steals json */
void gc_resp_error(struct gc_resp *resp, struct gc_req *req, const struct gc_error *err);
void gc_resp_no_content(struct gc_resp *resp);
/* Deferred answers. A handler that hands its work to another thread calls gc_req_suspend,
 * then hands it over, and returns leaving resp untouched: the connection waits without
 * holding an HTTP thread. That other thread answers exactly once with gc_req_resume, which
 * takes over the contents of *resp (it may be called before the handler has returned).
 * req stays valid until then; the server does not stop while answers are owed. */
void gc_req_suspend(struct gc_req *req);
void gc_req_resume(struct gc_req *req, struct gc_resp *resp);
/* Sets ETag from the object's "version". */
void gc_resp_etag_from(struct gc_resp *resp, const json_t *obj);
int gc_http_status_of(int code);

struct gc_server_opts {
    const char *listen;
    int threads;
    size_t max_body;
    int connection_limit;
    int connection_timeout;
};

int gc_server_start(const struct gc_server_opts *opts, struct gc_store *st,
                    const struct gc_config *cfg, struct gc_server **out, struct gc_error *err);
/* The bound port (useful with port 0). */
int gc_server_port(const struct gc_server *srv);
/* Stops accepting, waits up to grace_ms for requests in flight, then stops. */
void gc_server_stop(struct gc_server *srv, int grace_ms);
struct gc_store *gc_server_store(struct gc_server *srv);

/* Metrics (metrics.c). */
void gc_metrics_init(void);
void gc_metrics_observe(int route_index, int status, int64_t ns);
/* Prometheus text exposition into b. */
int gc_metrics_render(struct gc_buf *b, struct gc_store *st);

#endif
