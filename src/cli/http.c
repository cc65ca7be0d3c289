/* libcurl requests for the CLI. One easy handle is kept per run so that --all and job wait
 * reuse the connection; redirects are never followed, so the token only goes to --url. */
#include "cli/http.h"

#include "cli/output.h"
#include "util/error.h"
#include "util/mem.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/banned.h" /* last: it redefines library names */

/* A list page of 500 audit events with details stays far below this; anything larger is a
 * misbehaving server and must not exhaust memory. */
#define MAX_RESPONSE_BYTES (64u * 1024u * 1024u)
#define CONNECT_TIMEOUT_S 10L
#define REQUEST_TIMEOUT_S 120L

int gc_cli_status_exit(long status)
{
    if (status >= 200 && status < 300)
        return GC_CLI_OK;
    switch (status) {
    case 400:
    case 413:
    case 415:
    case 422:
        return GC_CLI_EINVALID;
    case 401:
        return GC_CLI_EAUTH;
    case 403:
        return GC_CLI_EFORBIDDEN;
    case 404:
        return GC_CLI_ENOTFOUND;
    case 409:
    case 412:
        return GC_CLI_ECONFLICT;
    default:
        return GC_CLI_EFAIL;
    }
}

int gc_cli_escape(struct gc_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        int rc;
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            rc = gc_buf_add(b, p, 1);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 0xF]};
            rc = gc_buf_add(b, e, 3);
        }
        if (rc)
            return rc;
    }
    return 0;
}

char *gc_cli_url_normalize(const char *url, const char **why)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *user = NULL, *query = NULL, *frag = NULL;
    char *out = NULL;

    if (!u)
        GC_BUG("curl_url: out of memory");
    for (const unsigned char *p = (const unsigned char *)url; *p; p++) {
        if (*p <= ' ' || *p == 0x7F) {
            *why = "it contains spaces or control characters";
            goto cleanup;
        }
    }
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
        *why = "it is not a URL such as http://127.0.0.1:8080";
        goto cleanup;
    }
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
        *why = "only http:// and https:// are supported";
        goto cleanup;
    }
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host[0]) {
        *why = "it has no host";
        goto cleanup;
    }
    if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK) {
        *why = "credentials in the URL are not supported: use login or --token";
        goto cleanup;
    }
    if (curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_OK ||
        curl_url_get(u, CURLUPART_FRAGMENT, &frag, 0) == CURLUE_OK) {
        *why = "it must not have a query or fragment";
        goto cleanup;
    }
    size_t len = strlen(url);
    while (len > 0 && url[len - 1] == '/')
        len--;
    out = gc_strndup(url, len);

cleanup:
    curl_free(scheme);
    curl_free(host);
    curl_free(user);
    curl_free(query);
    curl_free(frag);
    curl_url_cleanup(u);
    return out;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct gc_buf *b = userdata;
    size_t n = size * nmemb;
    if (gc_buf_add(b, ptr, n) != 0)
        return 0; /* over MAX_RESPONSE_BYTES: curl aborts with CURLE_WRITE_ERROR */
    return n;
}

/* Keeps X-Request-Id, reduced to the characters the API allows in it, since it is echoed
 * on the terminal. */
static size_t on_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct gc_cli_resp *resp = userdata;
    size_t n = size * nmemb;
    static const char name[] = "x-request-id:";
    if (n > 5 && strncasecmp(ptr, "HTTP/", 5) == 0) {
        resp->request_id[0] = '\0'; /* a new response (after 100 Continue) */
        return n;
    }
    if (n <= sizeof(name) - 1 || strncasecmp(ptr, name, sizeof(name) - 1) != 0)
        return n;
    size_t j = 0;
    for (size_t i = sizeof(name) - 1; i < n && j + 1 < sizeof(resp->request_id); i++) {
        char c = ptr[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.')
            resp->request_id[j++] = c;
    }
    resp->request_id[j] = '\0';
    return n;
}

void gc_cli_resp_release(struct gc_cli_resp *resp)
{
    if (!resp)
        return;
    json_decref(resp->json);
    resp->json = NULL;
    free(resp->text);
    resp->text = NULL;
}

void gc_cli_http_close(struct gc_cli *cli)
{
    if (cli->curl)
        curl_easy_cleanup(cli->curl);
    cli->curl = NULL;
}

static const char *reason_phrase(long status)
{
    switch (status) {
    case 400: return "bad request";
    case 401: return "unauthorized";
    case 403: return "forbidden";
    case 404: return "not found";
    case 405: return "method not allowed";
    case 409: return "conflict";
    case 412: return "precondition failed";
    case 413: return "payload too large";
    case 415: return "unsupported media type";
    case 422: return "unprocessable content";
    case 429: return "too many requests";
    case 500: return "internal server error";
    case 502: return "bad gateway";
    case 503: return "service unavailable";
    case 504: return "gateway timeout";
    default: return "unexpected answer";
    }
}

/* Fills resp->error with the message shown to the user for a non-2xx answer. */
static void describe_status(struct gc_cli_resp *resp)
{
    const char *detail = NULL;
    const char *rid = resp->request_id;
    const json_t *j = resp->json;
    struct gc_buf d, r;

    gc_buf_init(&d, GC_BUF_UNLIMITED);
    gc_buf_init(&r, GC_BUF_UNLIMITED);
    if (json_is_object(j)) {
        detail = json_string_value(json_object_get(j, "detail"));
        if (!detail || !detail[0])
            detail = json_string_value(json_object_get(j, "title"));
        const char *brid = json_string_value(json_object_get(j, "request_id"));
        if (brid && brid[0] && !rid[0])
            rid = brid;
    }
    /* server text goes to the terminal: sanitise it (an unlimited buffer cannot refuse) */
    if (gc_cli_sanitize(&d, detail ? detail : reason_phrase(resp->status), 240) != 0 ||
        gc_cli_sanitize(&r, rid, 64) != 0)
        GC_BUG("unlimited buffer refused data");
    /* the status and the request id always fit: a detail too long for resp->error is cut
     * before them, and at a character boundary so that the terminal gets valid UTF-8 */
    char suffix[128];
    if (r.len)
        snprintf(suffix, sizeof(suffix), " (HTTP %ld, request %s)", resp->status,
                 gc_buf_str(&r));
    else
        snprintf(suffix, sizeof(suffix), " (HTTP %ld)", resp->status);
    size_t room = sizeof(resp->error) - strlen(suffix) - 1, dl = d.len;
    if (dl > room) {
        dl = room;
        while (dl > 0 && ((unsigned char)d.data[dl] & 0xC0) == 0x80)
            dl--;
    }
    snprintf(resp->error, sizeof(resp->error), "%.*s%s", (int)dl, gc_buf_str(&d), suffix);
    gc_buf_release(&d);
    gc_buf_release(&r);
}

void gc_cli_report(const struct gc_cli_resp *resp)
{
    gc_cli_fail(GC_CLI_EFAIL, "%s", resp->error);
    const json_t *errors = json_object_get(resp->json, "errors");
    if (json_array_size(errors) > 1) {
        size_t i;
        const json_t *e;
        json_array_foreach(errors, i, e) {
            const char *d = json_string_value(json_object_get(e, "detail"));
            struct gc_buf safe;
            gc_buf_init(&safe, GC_BUF_UNLIMITED);
            if (gc_cli_sanitize(&safe, d ? d : "?", 240) != 0)
                GC_BUG("unlimited buffer refused data");
            fprintf(stderr, "govcloud:   %s\n", gc_buf_str(&safe));
            gc_buf_release(&safe);
        }
    }
    if (resp->status == 401 && resp->want_login)
        fprintf(stderr, "govcloud: hint: not logged in: run 'govcloud login' or set "
                        "GOVCLOUD_TOKEN\n");
    if (resp->status == 401 && resp->want_login && resp->other_url[0])
        fprintf(stderr, "govcloud: hint: the saved token belongs to %s and is sent only there\n",
                resp->other_url);
}

static int transport_exit(CURLcode cc)
{
    switch (cc) {
    case CURLE_WRITE_ERROR:
    case CURLE_OUT_OF_MEMORY:
        return GC_CLI_EFAIL;
    default:
        return GC_CLI_ECONNECT;
    }
}

int gc_cli_http(struct gc_cli *cli, const struct gc_cli_req *req, struct gc_cli_resp *resp)
{
    struct gc_buf url, body, hdr;
    struct curl_slist *headers = NULL;
    char *payload = NULL;
    char errbuf[CURL_ERROR_SIZE] = "";
    int rc = GC_CLI_EFAIL;

    memset(resp, 0, sizeof(*resp));
    gc_buf_init(&url, 64 * 1024);
    gc_buf_init(&body, MAX_RESPONSE_BYTES);
    gc_buf_init(&hdr, 64 * 1024);

    if (!cli->curl) {
        cli->curl = curl_easy_init();
        if (!cli->curl) {
            snprintf(resp->error, sizeof(resp->error), "cannot initialise libcurl");
            goto done;
        }
    }
    CURL *c = cli->curl;
    curl_easy_reset(c); /* options only: the connection cache survives */

    if (gc_buf_adds(&url, cli->url) != 0 || gc_buf_adds(&url, req->path) != 0 ||
        (req->query && req->query[0] &&
         (gc_buf_adds(&url, "?") != 0 || gc_buf_adds(&url, req->query) != 0))) {
        snprintf(resp->error, sizeof(resp->error), "request URL is too long");
        goto done;
    }

    headers = curl_slist_append(headers, req->text
                                             ? "Accept: text/plain, application/problem+json"
                                             : "Accept: application/json, application/problem+json");
    headers = curl_slist_append(headers, "Expect:"); /* no 100-continue round trip */
    if (req->body) {
        payload = json_dumps(req->body, JSON_COMPACT);
        if (!payload)
            GC_BUG("json_dumps failed on a request body");
        headers = curl_slist_append(headers, "Content-Type: application/json");
    } else if (req->raw) {
        gc_buf_reset(&hdr);
        if (gc_buf_addf(&hdr, "Content-Type: %s", req->content_type) != 0)
            GC_BUG("Content-Type header over 64 KiB");
        headers = curl_slist_append(headers, gc_buf_str(&hdr));
    }
    if (cli->token && !req->no_auth) {
        gc_buf_reset(&hdr);
        if (gc_buf_addf(&hdr, "Authorization: Bearer %s", cli->token) != 0) {
            snprintf(resp->error, sizeof(resp->error), "token is too long");
            goto done;
        }
        headers = curl_slist_append(headers, gc_buf_str(&hdr));
    }
    resp->want_login = !cli->token && !req->no_auth;
    if (resp->want_login && cli->saved_url)
        snprintf(resp->other_url, sizeof(resp->other_url), "%s", cli->saved_url);
    if (req->if_match) {
        gc_buf_reset(&hdr);
        if (gc_buf_addf(&hdr, "If-Match: \"%s\"", req->if_match) != 0)
            GC_BUG("If-Match header over 64 KiB");
        headers = curl_slist_append(headers, gc_buf_str(&hdr));
    }
    if (!headers)
        GC_BUG("curl_slist_append: out of memory");

    curl_easy_setopt(c, CURLOPT_URL, gc_buf_str(&url));
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L); /* "." and ".." in an id stay literal */
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, REQUEST_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "govcloud/" GC_VERSION);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, resp);
    if (strcmp(req->method, "GET") == 0) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method);
        if (payload) {
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload);
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(payload));
        } else if (req->raw) {
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->raw_len);
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->raw);
        } else if (strcmp(req->method, "POST") == 0) {
            /* an empty body with Content-Length: 0 and no Content-Type, so that neither
             * a form type nor a missing length can be held against it */
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
            headers = curl_slist_append(headers, "Content-Type:");
            curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
        }
    }

    CURLcode cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        if (cc == CURLE_WRITE_ERROR)
            snprintf(resp->error, sizeof(resp->error),
                     "the server's answer is larger than %u MiB", MAX_RESPONSE_BYTES >> 20);
        else
            snprintf(resp->error, sizeof(resp->error), "cannot connect to %s: %s", cli->url,
                     errbuf[0] ? errbuf : curl_easy_strerror(cc));
        rc = transport_exit(cc);
        goto done;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);

    if (body.len > 0) {
        json_error_t jerr;
        resp->json = json_loadb(gc_buf_str(&body), body.len, 0, &jerr);
    }
    if (resp->status >= 300 && resp->status < 400) {
        char *loc = NULL;
        struct gc_buf safe;
        gc_buf_init(&safe, GC_BUF_UNLIMITED);
        curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &loc);
        if (gc_cli_sanitize(&safe, loc ? loc : "another address", 200) != 0)
            GC_BUG("unlimited buffer refused data");
        snprintf(resp->error, sizeof(resp->error),
                 "the server redirects (HTTP %ld) to %s; point --url at the govcloud server "
                 "itself", resp->status, gc_buf_str(&safe));
        gc_buf_release(&safe);
        rc = GC_CLI_EFAIL;
        goto done;
    }
    rc = gc_cli_status_exit(resp->status);
    if (rc != GC_CLI_OK) {
        describe_status(resp);
        goto done;
    }
    if (req->text) {
        resp->text = gc_malloc(body.len + 1);
        memcpy(resp->text, body.len ? gc_buf_str(&body) : "", body.len);
        resp->text[body.len] = '\0';
        resp->text_len = body.len;
        json_decref(resp->json); /* a console that prints JSON is still text */
        resp->json = NULL;
        goto done;
    }
    if (body.len > 0 && !resp->json) {
        snprintf(resp->error, sizeof(resp->error),
                 "the server's answer (HTTP %ld) is not JSON: is %s a govcloud server?",
                 resp->status, cli->url);
        rc = GC_CLI_EFAIL;
        goto done;
    }

done:
    if (rc != GC_CLI_OK && !req->quiet)
        gc_cli_report(resp);
    curl_slist_free_all(headers);
    /* the payload may hold a password, the body a new token, the header buffer the token:
     * wipe them before the memory goes back to malloc */
    if (payload) {
        explicit_bzero(payload, strlen(payload));
        free(payload);
    }
    if (body.data)
        explicit_bzero(body.data, body.cap);
    if (hdr.data)
        explicit_bzero(hdr.data, hdr.cap);
    gc_buf_release(&url);
    gc_buf_release(&body);
    gc_buf_release(&hdr);
    return rc;
}
