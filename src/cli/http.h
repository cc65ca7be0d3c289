/* The CLI's one way to talk to govcloudd: a libcurl request that returns the status, the
 * parsed JSON body and the request id, and maps failures to the CLI's exit codes. */
#ifndef GC_CLI_HTTP_H
#define GC_CLI_HTTP_H

#include "cli/cli.h"
#include "util/buf.h"

#include <jansson.h>

struct gc_cli_req {
    const char *method;   /* "GET", "POST", "PATCH", "DELETE" */
    const char *path;     /* already escaped, below the base URL: "/v1/users/ID" */
    const char *query;    /* already escaped "a=b&c=d", or NULL */
    const json_t *body;   /* sent as application/json; NULL sends no body */
    const char *raw;      /* instead of body: raw_len bytes sent as content_type (a file) */
    size_t raw_len;
    const char *content_type;
    const char *if_match; /* a version number sent as If-Match: "N", or NULL */
    bool no_auth;         /* never send the token (logging in) */
    bool quiet;           /* print nothing on failure; the caller reads resp */
    bool text;            /* a 2xx answer is text (text/plain), kept in resp->text */
};

struct gc_cli_resp {
    long status;         /* HTTP status; 0 when no answer was received */
    json_t *json;        /* the parsed body, NULL when empty or not JSON; owned */
    char *text;          /* req->text: the 2xx body, NUL-terminated; owned */
    size_t text_len;
    char request_id[80]; /* X-Request-Id of the answer (sanitised), or "" */
    char error[1024];    /* what went wrong, for quiet callers; "" on success */
    bool want_login;     /* a 401 to a request that had no token to send: suggest login */
    char other_url[256]; /* with want_login: the URL a saved token belongs to, or "" */
};

/* Sends req to cli->url. Returns GC_CLI_OK for a 2xx answer, otherwise the exit code for the
 * failure (GC_CLI_ECONNECT when the server could not be reached, the status's code for an
 * error answer) after printing "govcloud: error: ..." unless req->quiet. resp is always
 * filled and must be released with gc_cli_resp_release(). */
int gc_cli_http(struct gc_cli *cli, const struct gc_cli_req *req, struct gc_cli_resp *resp);

void gc_cli_resp_release(struct gc_cli_resp *resp);

/* Prints the error of a failed exchange: for problem+json answers
 * "govcloud: error: <detail> (HTTP <status>, request <id>)", then one line per entry of its
 * `errors` list when it has more than one (an import's bad rows). */
void gc_cli_report(const struct gc_cli_resp *resp);

/* The exit code scripts see for an HTTP status (0 for 2xx). */
int gc_cli_status_exit(long status);

/* Appends s percent-encoded, keeping only RFC 3986 unreserved characters as they are, so that
 * ids and filter values can never change the path or add query parameters. */
int gc_cli_escape(struct gc_buf *b, const char *s) __attribute__((warn_unused_result));

/* Checks that url is an http(s) URL with a host and no credentials, query or fragment.
 * Returns a new string without trailing slashes (caller frees), or NULL with *why set. */
char *gc_cli_url_normalize(const char *url, const char **why);

/* Frees the curl handle kept in cli for connection reuse. */
void gc_cli_http_close(struct gc_cli *cli);

#endif
