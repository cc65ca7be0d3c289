/* Service checks: the /v1/checks resource (department-scoped like volumes), the address
 * rule that keeps department checks off the platform's own networks, the probes (TCP,
 * HTTP through libcurl, ICMP echo) and their scheduler. */
#include "monitor/checks.h"

#include "core/core.h"
#include "core/validate.h"
#include "monitor/collect.h"
#include "monitor/latest.h"
#include "util/config.h"
#include "util/id.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/timeutil.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void gc_checks_describe(void)
{
    gc_metric_describe("govcloud_check_up", GC_METRIC_GAUGE,
                       "1 when the service check's last probe succeeded, else 0.");
    gc_metric_describe("govcloud_check_latency_seconds", GC_METRIC_GAUGE,
                       "Time the last probe of a service check took until its answer.");
    gc_metric_describe("govcloud_check_error", GC_METRIC_GAUGE,
                       "1 while a service check is down, with the reason of its last failure "
                       "(timeout, refused, unreachable, dns, tls, bad_status, bad_response, "
                       "not_permitted, forbidden_address, error).");
}

/* ---- protected addresses ---- */

static bool in_net(const unsigned char *a, const unsigned char *net, int bits)
{
    int full = bits / 8, rest = bits % 8;
    if (memcmp(a, net, (size_t)full) != 0)
        return false;
    if (!rest)
        return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[full] & mask) == (net[full] & mask);
}

/* Parses one "addr/bits"; family AF_INET or AF_INET6. */
static bool parse_cidr(const char *s, size_t n, int *family, unsigned char net[16], int *bits)
{
    char tmp[64];
    if (n == 0 || n >= sizeof(tmp))
        return false;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    char *slash = strchr(tmp, '/');
    if (!slash)
        return false;
    *slash = '\0';
    char *end;
    long b = strtol(slash + 1, &end, 10);
    if (*end || slash[1] == '\0')
        return false;
    if (inet_pton(AF_INET, tmp, net) == 1) {
        *family = AF_INET;
        if (b < 0 || b > 32)
            return false;
    } else if (inet_pton(AF_INET6, tmp, net) == 1) {
        *family = AF_INET6;
        if (b < 0 || b > 128)
            return false;
    } else {
        return false;
    }
    *bits = (int)b;
    return true;
}

int gc_networks_check(const char *networks, const char *field, struct gc_error *err)
{
    if (strcmp(networks, "none") == 0)
        return 0;
    for (const char *p = networks; *p;) {
        while (*p == ' ')
            p++;
        const char *c = strchr(p, ',');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        while (n && p[n - 1] == ' ')
            n--;
        int fam, bits;
        unsigned char net[16];
        if (!parse_cidr(p, n, &fam, net, &bits))
            return gc_error_set(err, GC_EINVAL, field,
                                "'%.*s' is not a network in CIDR notation (e.g. 10.0.0.0/8)",
                                (int)(n > 64 ? 64 : n), p);
        if (!c)
            break;
        p = c + 1;
    }
    return 0;
}

bool gc_addr_protected(const struct sockaddr *sa, const char *networks)
{
    unsigned char a[16];
    int fam = sa->sa_family;
    if (fam == AF_INET) {
        memcpy(a, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
    } else if (fam == AF_INET6) {
        memcpy(a, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(a, mapped, 12) == 0) {
            memmove(a, a + 12, 4);
            fam = AF_INET;
        }
    } else {
        return true;
    }
    if (fam == AF_INET) {
        static const struct {
            unsigned char net[4];
            int bits;
        } v4[] = {{{127, 0, 0, 0}, 8},   {{0, 0, 0, 0}, 8},  {{169, 254, 0, 0}, 16},
                  {{224, 0, 0, 0}, 4},   {{255, 255, 255, 255}, 32}};
        for (size_t i = 0; i < sizeof(v4) / sizeof(v4[0]); i++)
            if (in_net(a, v4[i].net, v4[i].bits))
                return true;
    } else {
        static const unsigned char loop[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
        static const unsigned char any[16] = {0};
        static const unsigned char ll[16] = {0xfe, 0x80};
        static const unsigned char mc[16] = {0xff};
        if (!memcmp(a, loop, 16) || !memcmp(a, any, 16) || in_net(a, ll, 10) ||
            in_net(a, mc, 8))
            return true;
    }
    if (!networks || strcmp(networks, "none") == 0)
        return false;
    for (const char *p = networks; *p;) {
        while (*p == ' ')
            p++;
        const char *c = strchr(p, ',');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        while (n && p[n - 1] == ' ')
            n--;
        int nfam, bits;
        unsigned char net[16];
        if (parse_cidr(p, n, &nfam, net, &bits) && nfam == fam && in_net(a, net, bits))
            return true;
        if (!c)
            break;
        p = c + 1;
    }
    return false;
}

static const char *addr_text(const struct sockaddr *sa, char *buf, size_t cap)
{
    const void *src = sa->sa_family == AF_INET
                          ? (const void *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr
                          : (const void *)&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
    if (!inet_ntop(sa->sa_family, src, buf, (socklen_t)cap))
        snprintf(buf, cap, "?");
    return buf;
}

/* For a check that may not reach protected addresses: every address host resolves to must
 * be outside them. */
static int target_allowed(const char *host, const char *networks, const char *field,
                          struct gc_error *err)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int g = getaddrinfo(host, NULL, &hints, &res);
    if (g != 0)
        return gc_error_set(err, GC_EINVAL, field, "cannot resolve '%.128s': %s", host,
                            gai_strerror(g));
    int rc = 0;
    for (struct addrinfo *ai = res; ai && !rc; ai = ai->ai_next)
        if (gc_addr_protected(ai->ai_addr, networks)) {
            char t[INET6_ADDRSTRLEN];
            rc = gc_error_set(err, GC_EINVAL, field,
                              "'%.128s' is %s, a loopback, link-local, multicast or platform "
                              "management address: only platform roles may check it",
                              host, addr_text(ai->ai_addr, t, sizeof(t)));
        }
    freeaddrinfo(res);
    return rc;
}

/* ---- ICMP sockets ---- */

/* An ICMP socket: unprivileged ping socket (net.ipv4.ping_group_range) or a raw socket
 * (root or CAP_NET_RAW); -1 with errno when neither is allowed. *raw says which. */
static int icmp_socket(bool *raw)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_ICMP);
    *raw = false;
    if (fd >= 0)
        return fd;
    fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
    *raw = fd >= 0;
    return fd;
}

static bool icmp_permitted(void)
{
    bool raw;
    int fd = icmp_socket(&raw);
    if (fd < 0)
        return false;
    close(fd);
    return true;
}

/* ---- the resource ---- */

#define CHK_COLS                                                                               \
    "c.id, c.name, c.department_id, c.kind, c.host, c.port, c.url, c.expect_status,"          \
    " c.tls_verify, c.interval_seconds, c.timeout_ms, c.enabled, c.privileged, c.created_at," \
    " c.updated_at, c.version, COALESCE(d.path, '')"
#define CHK_FROM " FROM checks c JOIN departments d ON d.id = c.department_id"

/* last results, by check id (the scheduler's table, see below) */
static json_t *status_of(const char *id);

static json_t *chk_json(struct gc_rows *r, char *path)
{
    const char *kind = gc_rows_text(r, 3);
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:b,s:o,s:o,s:I}", "id", gc_rows_text(r, 0),
                          "name", gc_rows_text(r, 1), "department_id", gc_rows_text(r, 2),
                          "kind", kind, "interval_seconds", (json_int_t)gc_rows_int(r, 9),
                          "timeout_ms", (json_int_t)gc_rows_int(r, 10), "enabled",
                          gc_rows_int(r, 11) != 0, "created_at", gc_json_time(gc_rows_int(r, 13)),
                          "updated_at", gc_json_time(gc_rows_int(r, 14)), "version",
                          (json_int_t)gc_rows_int(r, 15));
    if (strcmp(kind, "http") == 0) {
        json_object_set_new(o, "url", json_string(gc_rows_text(r, 6)));
        json_object_set_new(o, "expect_status", json_integer(gc_rows_int(r, 7)));
        json_object_set_new(o, "tls_verify", json_boolean(gc_rows_int(r, 8) != 0));
    } else {
        json_object_set_new(o, "host", json_string(gc_rows_text(r, 4)));
        if (strcmp(kind, "tcp") == 0)
            json_object_set_new(o, "port", json_integer(gc_rows_int(r, 5)));
    }
    json_object_set_new(o, "status", status_of(gc_rows_text(r, 0)));
    if (path)
        snprintf(path, GC_DEPT_PATH_MAX, "%s", gc_rows_text(r, 16));
    return o;
}

static int load(struct gc_tx *tx, const char *id, json_t **out, char *path, struct gc_error *err)
{
    return gc_load_by_id(tx, "SELECT " CHK_COLS CHK_FROM " WHERE c.id = ?", "check", id,
                         chk_json, out, path, err);
}

static const struct gc_jfield create_spec[] = {
    {"name", GC_JT_STRING, true, false, 1, 64, GC_CS_CODE},
    {"department_id", GC_JT_STRING, false, false, 1, 64, GC_CS_ANY},
    {"kind", GC_JT_STRING, true, false, 1, 8, GC_CS_CODE},
    {"host", GC_JT_STRING, false, false, 1, 253, GC_CS_TEXT},
    {"port", GC_JT_INT, false, false, 1, 65535, GC_CS_ANY},
    {"url", GC_JT_STRING, false, false, 1, 2048, GC_CS_TEXT},
    {"expect_status", GC_JT_INT, false, false, 100, 599, GC_CS_ANY},
    {"tls_verify", GC_JT_BOOL, false, false, 0, 0, GC_CS_ANY},
    {"interval_seconds", GC_JT_INT, false, false, 1, 86400, GC_CS_ANY},
    {"timeout_ms", GC_JT_INT, false, false, 100, 60000, GC_CS_ANY},
    {"enabled", GC_JT_BOOL, false, false, 0, 0, GC_CS_ANY},
};
/* what PATCH may change: not the department nor the kind */
static const struct gc_jfield update_spec[] = {
    {"name", GC_JT_STRING, false, false, 1, 64, GC_CS_CODE},
    {"host", GC_JT_STRING, false, false, 1, 253, GC_CS_TEXT},
    {"port", GC_JT_INT, false, false, 1, 65535, GC_CS_ANY},
    {"url", GC_JT_STRING, false, false, 1, 2048, GC_CS_TEXT},
    {"expect_status", GC_JT_INT, false, false, 100, 599, GC_CS_ANY},
    {"tls_verify", GC_JT_BOOL, false, false, 0, 0, GC_CS_ANY},
    {"interval_seconds", GC_JT_INT, false, false, 1, 86400, GC_CS_ANY},
    {"timeout_ms", GC_JT_INT, false, false, 100, 60000, GC_CS_ANY},
    {"enabled", GC_JT_BOOL, false, false, 0, 0, GC_CS_ANY},
};

static int64_t jint(const json_t *o, const char *k, int64_t def)
{
    json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : def;
}

/* The check as it will be stored (c: defaults applied), its kind's rules, and the address
 * rule for callers that are not platform roles. */
static int check_target(const struct gc_ctx *ctx, json_t *c, bool privileged,
                        struct gc_error *err)
{
    const char *kind = gc_json_str(c, "kind");
    const char *networks = ctx->cfg ? ctx->cfg->monitor_protected_networks : "none";
    if (jint(c, "timeout_ms", 0) > jint(c, "interval_seconds", 0) * 1000)
        return gc_error_set(err, GC_EINVAL, "timeout_ms",
                            "timeout_ms (%lld) must not exceed interval_seconds (%lld) in "
                            "milliseconds",
                            (long long)jint(c, "timeout_ms", 0),
                            (long long)jint(c, "interval_seconds", 0));
    if (strcmp(kind, "tcp") == 0 || strcmp(kind, "icmp") == 0) {
        const char *host = gc_json_str(c, "host");
        if (!host || !*host)
            return gc_error_set(err, GC_EINVAL, "host", "a %s check needs host", kind);
        if (strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_:") !=
            strlen(host))
            return gc_error_set(err, GC_EINVAL, "host",
                                "host must be a DNS name, an IPv4 or an IPv6 address (letters, "
                                "digits, '.', '-', '_', ':')");
        if (json_object_get(c, "url") && *gc_json_str(c, "url"))
            return gc_error_set(err, GC_EINVAL, "url", "a %s check takes host, not url", kind);
        if (strcmp(kind, "tcp") == 0 && jint(c, "port", 0) == 0)
            return gc_error_set(err, GC_EINVAL, "port", "a tcp check needs port (1-65535)");
        if (strcmp(kind, "icmp") == 0 && jint(c, "port", 0) != 0)
            return gc_error_set(err, GC_EINVAL, "port", "an icmp check takes no port");
        if (strcmp(kind, "icmp") == 0 && !icmp_permitted())
            return gc_error_set(err, GC_EINVAL, "kind",
                                "icmp checks are not available: govcloudd may not open ICMP "
                                "sockets (it needs CAP_NET_RAW, or its group in "
                                "net.ipv4.ping_group_range); use a tcp or http check");
        return privileged ? 0 : target_allowed(host, networks, "host", err);
    }
    if (strcmp(kind, "http") == 0) {
        const char *url = gc_json_str(c, "url");
        if (!url || !*url)
            return gc_error_set(err, GC_EINVAL, "url", "an http check needs url");
        if ((gc_json_str(c, "host") && *gc_json_str(c, "host")) || jint(c, "port", 0))
            return gc_error_set(err, GC_EINVAL, "host", "an http check takes url, not host/port");
        CURLU *u = curl_url();
        char *scheme = NULL, *host = NULL;
        int rc = 0;
        if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
            rc = gc_error_set(err, GC_EINVAL, "url", "'%.128s' is not a valid URL", url);
        else if (strcmp(scheme, "http") && strcmp(scheme, "https"))
            rc = gc_error_set(err, GC_EINVAL, "url", "the URL scheme must be http or https, not "
                                                     "'%.16s'", scheme);
        if (!rc && !privileged) {
            /* curl gives IPv6 literals in brackets */
            size_t n = strlen(host);
            if (n > 2 && host[0] == '[' && host[n - 1] == ']') {
                memmove(host, host + 1, n - 2);
                host[n - 2] = '\0';
            }
            rc = target_allowed(host, networks, "url", err);
        }
        curl_free(scheme);
        curl_free(host);
        curl_url_cleanup(u);
        return rc;
    }
    return gc_error_set(err, GC_EINVAL, "kind", "kind must be tcp, http or icmp, not '%.16s'",
                        kind);
}

static void forget_series(const char *id, const char *dept);
static void schedule_now(void);

int gc_check_create(const struct gc_ctx *ctx, json_t *in, json_t **out, struct gc_error *err)
{
    int rc = gc_require(ctx->who, GC_P_VM_WRITE, err);
    if (!rc)
        rc = gc_json_check(in, create_spec, sizeof(create_spec) / sizeof(create_spec[0]), err);
    if (rc)
        return rc;
    bool privileged = gc_role_is_platform(ctx->who->role);
    json_t *c = json_deep_copy(in);
    if (!json_object_get(c, "interval_seconds"))
        json_object_set_new(c, "interval_seconds", json_integer(30));
    if (!json_object_get(c, "timeout_ms"))
        json_object_set_new(c, "timeout_ms",
                            json_integer(jint(c, "interval_seconds", 30) * 1000 < 5000
                                             ? jint(c, "interval_seconds", 30) * 1000
                                             : 5000));
    rc = check_target(ctx, c, privileged, err);
    if (rc) {
        json_decref(c);
        return rc;
    }
    const char *dept = gc_json_str(in, "department_id");
    if (!dept && !ctx->who->department_id[0]) {
        json_decref(c);
        return gc_error_set(err, GC_EINVAL, "department_id",
                            "give the department_id the check belongs to");
    }
    if (!dept)
        dept = ctx->who->department_id;
    struct gc_tx *tx;
    rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc) {
        json_decref(c);
        return rc;
    }
    char path[GC_DEPT_PATH_MAX], id[GC_ID_LEN + 1];
    rc = gc_dept_path(tx, dept, path, err);
    if (rc == GC_ENOTFOUND || (!rc && !gc_in_scope(ctx->who, path)))
        rc = gc_error_set(err, GC_EINVAL, "department_id", "department '%.64s' not found", dept);
    gc_id_new(id);
    int64_t now = gc_now_ms();
    const char *host = gc_json_str(c, "host"), *url = gc_json_str(c, "url");
    if (!rc)
        rc = gc_tx_exec(
            tx,
            "INSERT INTO checks (id, name, department_id, kind, host, port, url, expect_status,"
            " tls_verify, interval_seconds, timeout_ms, enabled, privileged, created_at,"
            " updated_at, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
            GC_ARGS(GC_VTXT(id), GC_VTXT(gc_json_str(c, "name")), GC_VTXT(dept),
                    GC_VTXT(gc_json_str(c, "kind")), GC_VTXT(host ? host : ""),
                    GC_VINT_(jint(c, "port", 0)), GC_VTXT(url ? url : ""),
                    GC_VINT_(jint(c, "expect_status", 200)),
                    GC_VINT_(!json_is_false(json_object_get(c, "tls_verify"))),
                    GC_VINT_(jint(c, "interval_seconds", 30)), GC_VINT_(jint(c, "timeout_ms", 0)),
                    GC_VINT_(!json_is_false(json_object_get(c, "enabled"))),
                    GC_VINT_(privileged), GC_VINT_(now), GC_VINT_(now)),
            NULL, err);
    if (rc == GC_ECONFLICT)
        rc = gc_error_set(err, GC_ECONFLICT, "name",
                          "the department already has a check named '%s'",
                          gc_json_str(c, "name"));
    json_decref(c);
    json_t *obj = NULL;
    if (!rc)
        rc = load(tx, id, &obj, NULL, err);
    if (!rc) {
        struct gc_audit_event ev = {.action = "check.create",
                                    .resource_type = "check",
                                    .resource_id = id,
                                    .department_id = dept,
                                    .department_path = path,
                                    .outcome = GC_OUTCOME_SUCCESS,
                                    .detail = obj};
        rc = gc_audit_append(tx, ctx, &ev, err);
    }
    if (!rc)
        rc = gc_tx_commit(tx, err);
    else
        gc_tx_rollback(tx);
    if (rc) {
        json_decref(obj);
        return rc;
    }
    schedule_now();
    *out = obj;
    return 0;
}

int gc_check_get(const struct gc_ctx *ctx, const char *id, json_t **out, struct gc_error *err)
{
    return gc_get_scoped(ctx, load, GC_P_VM_READ, "check", id, out, err);
}

static json_t *chk_row(struct gc_rows *r, const struct gc_principal *who)
{
    char path[GC_DEPT_PATH_MAX];
    json_t *o = chk_json(r, path);
    if (!gc_in_scope(who, path)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int gc_check_list(const struct gc_ctx *ctx, json_t *filters, int limit, const char *cursor,
                  json_t **items, char **next_cursor, struct gc_error *err)
{
    static const struct gc_list_filter f[] = {
        {"department_id", "c.department_id"},
        {"kind", "c.kind"},
        {NULL, NULL}};
    return gc_list_filtered(ctx, GC_P_VM_READ,
                            "SELECT " CHK_COLS CHK_FROM " WHERE c.id > ?", "c.id",
                            f, filters, limit, cursor, chk_row, items, next_cursor, err);
}

int gc_check_update(const struct gc_ctx *ctx, const char *id, int64_t if_match, json_t *in,
                    json_t **out, struct gc_error *err)
{
    int rc = gc_json_check(in, update_spec, sizeof(update_spec) / sizeof(update_spec[0]), err);
    if (rc)
        return rc;
    struct gc_tx *tx;
    rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    char path[GC_DEPT_PATH_MAX];
    json_t *obj = NULL, *c = NULL, *after = NULL;
    rc = load(tx, id, &obj, path, err);
    if (!rc)
        rc = gc_authorize(ctx->who, GC_P_VM_WRITE, path, "check", id, err);
    int64_t v = obj ? json_integer_value(json_object_get(obj, "version")) : 0;
    if (!rc && if_match >= 0 && if_match != v)
        rc = gc_error_set(err, GC_EPRECOND, "If-Match", "check '%s' is at version %lld", id,
                          (long long)v);
    bool privileged = gc_role_is_platform(ctx->who->role);
    if (!rc) {
        c = json_deep_copy(obj);
        json_object_update(c, in);
        rc = check_target(ctx, c, privileged, err);
    }
    const char *host = c ? gc_json_str(c, "host") : NULL, *url = c ? gc_json_str(c, "url") : NULL;
    if (!rc)
        rc = gc_tx_exec(tx,
                        "UPDATE checks SET name = ?, host = ?, port = ?, url = ?,"
                        " expect_status = ?, tls_verify = ?, interval_seconds = ?,"
                        " timeout_ms = ?, enabled = ?, privileged = ?, updated_at = ?,"
                        " version = version + 1 WHERE id = ?",
                        GC_ARGS(GC_VTXT(gc_json_str(c, "name")), GC_VTXT(host ? host : ""),
                                GC_VINT_(jint(c, "port", 0)), GC_VTXT(url ? url : ""),
                                GC_VINT_(jint(c, "expect_status", 200)),
                                GC_VINT_(!json_is_false(json_object_get(c, "tls_verify"))),
                                GC_VINT_(jint(c, "interval_seconds", 30)),
                                GC_VINT_(jint(c, "timeout_ms", 5000)),
                                GC_VINT_(!json_is_false(json_object_get(c, "enabled"))),
                                GC_VINT_(privileged), GC_VINT_(gc_now_ms()), GC_VTXT(id)),
                        NULL, err);
    if (rc == GC_ECONFLICT)
        rc = gc_error_set(err, GC_ECONFLICT, "name",
                          "the department already has a check named '%s'",
                          gc_json_str(c, "name"));
    /* a check switched off is not down: its open incident (and alarm) ends */
    if (!rc && json_is_false(json_object_get(c, "enabled")))
        rc = gc_incident_sync(tx, "check", id, gc_json_str(obj, "department_id"), NULL, NULL,
                              "the check was disabled", gc_now_ms(), err);
    if (!rc)
        rc = load(tx, id, &after, NULL, err);
    if (!rc) {
        struct gc_audit_event ev = {.action = "check.update",
                                    .resource_type = "check",
                                    .resource_id = id,
                                    .department_id = gc_json_str(obj, "department_id"),
                                    .department_path = path,
                                    .outcome = GC_OUTCOME_SUCCESS,
                                    .detail = in};
        rc = gc_audit_append(tx, ctx, &ev, err);
    }
    if (!rc)
        rc = gc_tx_commit(tx, err);
    else
        gc_tx_rollback(tx);
    json_decref(obj);
    json_decref(c);
    if (rc) {
        json_decref(after);
        return rc;
    }
    schedule_now();
    *out = after;
    return 0;
}

int gc_check_delete(const struct gc_ctx *ctx, const char *id, int64_t if_match,
                    struct gc_error *err)
{
    struct gc_tx *tx;
    int rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    char path[GC_DEPT_PATH_MAX];
    json_t *obj = NULL;
    rc = load(tx, id, &obj, path, err);
    if (!rc)
        rc = gc_authorize(ctx->who, GC_P_VM_WRITE, path, "check", id, err);
    int64_t v = obj ? json_integer_value(json_object_get(obj, "version")) : 0;
    if (!rc && if_match >= 0 && if_match != v)
        rc = gc_error_set(err, GC_EPRECOND, "If-Match", "check '%s' is at version %lld", id,
                          (long long)v);
    if (!rc)
        rc = gc_tx_exec(tx, "DELETE FROM checks WHERE id = ?", GC_ARGS(GC_VTXT(id)), NULL, err);
    /* an open incident (and its service-down alarm) ends with the check */
    if (!rc)
        rc = gc_incident_sync(tx, "check", id, gc_json_str(obj, "department_id"), NULL, NULL,
                              "the check was deleted", gc_now_ms(), err);
    if (!rc) {
        struct gc_audit_event ev = {.action = "check.delete",
                                    .resource_type = "check",
                                    .resource_id = id,
                                    .department_id = gc_json_str(obj, "department_id"),
                                    .department_path = path,
                                    .outcome = GC_OUTCOME_SUCCESS,
                                    .detail = obj};
        rc = gc_audit_append(tx, ctx, &ev, err);
    }
    if (!rc)
        rc = gc_tx_commit(tx, err);
    else
        gc_tx_rollback(tx);
    if (!rc)
        forget_series(id, gc_json_str(obj, "department_id"));
    json_decref(obj);
    return rc;
}

/* ---- probes ---- */

struct probe {
    char id[GC_ID_LEN + 1];
    char dept[GC_ID_LEN + 1];
    char kind[8];
    char host[256];
    int port;
    char *url;
    int expect_status;
    bool tls_verify, privileged;
    int timeout_ms;
    char networks[1024];
    /* results */
    bool up;
    double latency_s; /* < 0: none */
    const char *reason;
    char error[512];
};

static int64_t left_ms(int64_t deadline_ns)
{
    int64_t l = (deadline_ns - gc_mono_ns()) / 1000000;
    return l > 0 ? l : 0;
}

static void fail(struct probe *p, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(struct probe *p, const char *reason, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->error, sizeof(p->error), fmt, ap);
    va_end(ap);
    p->up = false;
    p->reason = reason;
}

/* Resolves p->host for socktype; refuses protected addresses unless privileged. */
static struct addrinfo *resolve(struct probe *p, int socktype, int family)
{
    struct addrinfo hints = {.ai_socktype = socktype, .ai_family = family}, *res = NULL;
    char port[8];
    snprintf(port, sizeof(port), "%d", p->port);
    int g = getaddrinfo(p->host, socktype == SOCK_RAW ? NULL : port, &hints, &res);
    if (g != 0) {
        fail(p, "dns", "cannot resolve %s: %s", p->host, gai_strerror(g));
        return NULL;
    }
    if (!p->privileged)
        for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
            if (gc_addr_protected(ai->ai_addr, p->networks)) {
                char t[INET6_ADDRSTRLEN];
                fail(p, "forbidden_address", "%s resolves to %s, a protected address", p->host,
                     addr_text(ai->ai_addr, t, sizeof(t)));
                freeaddrinfo(res);
                return NULL;
            }
    return res;
}

static void probe_tcp(struct probe *p)
{
    int64_t t0 = gc_mono_ns(), deadline = t0 + (int64_t)p->timeout_ms * 1000000;
    struct addrinfo *res = resolve(p, SOCK_STREAM, AF_UNSPEC);
    if (!res)
        return;
    fail(p, "error", "no address for %s", p->host);
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            fail(p, "error", "socket: %s", strerror(errno));
            continue;
        }
        int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (rc != 0 && errno == EINPROGRESS) {
            struct pollfd pf = {.fd = fd, .events = POLLOUT};
            int n = poll(&pf, 1, (int)left_ms(deadline));
            if (n == 0) {
                close(fd);
                fail(p, "timeout", "no answer from %s port %d within %d ms", p->host, p->port,
                     p->timeout_ms);
                break;
            }
            int soerr = 0;
            socklen_t sl = sizeof(soerr);
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
            errno = soerr;
            rc = soerr ? -1 : 0;
        }
        close(fd);
        if (rc == 0) {
            p->up = true;
            p->reason = NULL;
            p->error[0] = '\0';
            p->latency_s = (double)(gc_mono_ns() - t0) / 1e9;
            break;
        }
        fail(p, errno == ECONNREFUSED ? "refused" : "unreachable", "connect to %s port %d: %s",
             p->host, p->port, strerror(errno));
    }
    freeaddrinfo(res);
}

static uint16_t icmp_sum(const void *data, size_t n)
{
    const unsigned char *b = data;
    uint32_t s = 0;
    for (size_t i = 0; i + 1 < n; i += 2)
        s += (uint32_t)(b[i] << 8 | b[i + 1]);
    if (n & 1)
        s += (uint32_t)(b[n - 1] << 8);
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return htons((uint16_t)~s);
}

static void probe_icmp(struct probe *p)
{
    int64_t t0 = gc_mono_ns(), deadline = t0 + (int64_t)p->timeout_ms * 1000000;
    struct addrinfo *res = resolve(p, SOCK_RAW, AF_INET);
    if (!res)
        return;
    bool raw;
    int fd = icmp_socket(&raw);
    if (fd < 0) {
        fail(p, "not_permitted",
             "govcloudd may not open ICMP sockets (%s): it needs CAP_NET_RAW or its group in "
             "net.ipv4.ping_group_range",
             strerror(errno));
        freeaddrinfo(res);
        return;
    }
    static _Atomic uint16_t seq_counter;
    uint16_t seq = (uint16_t)(seq_counter++);
    uint16_t ident = (uint16_t)(getpid() ^ (uintptr_t)p);
    unsigned char pkt[16] = {ICMP_ECHO, 0};
    memcpy(pkt + 4, &ident, 2);
    memcpy(pkt + 6, &seq, 2);
    memcpy(pkt + 8, "govcloud", 8);
    uint16_t sum = icmp_sum(pkt, sizeof(pkt));
    memcpy(pkt + 2, &sum, 2);
    if (sendto(fd, pkt, sizeof(pkt), 0, res->ai_addr, res->ai_addrlen) < 0) {
        fail(p, "unreachable", "sending an echo request to %s: %s", p->host, strerror(errno));
        goto done;
    }
    for (;;) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int64_t l = left_ms(deadline);
        if (l == 0 || poll(&pf, 1, (int)l) <= 0) {
            fail(p, "timeout", "no echo reply from %s within %d ms", p->host, p->timeout_ms);
            goto done;
        }
        unsigned char buf[1500];
        struct sockaddr_storage from;
        socklen_t fl = sizeof(from);
        ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
        if (n <= 0)
            continue;
        const unsigned char *icmp = buf;
        if (raw) { /* raw sockets deliver the IP header too */
            size_t ihl = (size_t)(buf[0] & 0x0f) * 4;
            if ((size_t)n < ihl + 8)
                continue;
            icmp = buf + ihl;
            n -= (ssize_t)ihl;
            if (memcmp(icmp + 4, &ident, 2) != 0)
                continue;
        }
        if (n < 8 || icmp[0] != ICMP_ECHOREPLY || memcmp(icmp + 6, &seq, 2) != 0)
            continue;
        p->up = true;
        p->reason = NULL;
        p->error[0] = '\0';
        p->latency_s = (double)(gc_mono_ns() - t0) / 1e9;
        break;
    }
done:
    close(fd);
    freeaddrinfo(res);
}

static size_t discard(char *ptr, size_t size, size_t n, void *ud)
{
    (void)ptr;
    size_t *total = ud;
    *total += size * n;
    /* a check reads at most 1 MiB of a body: more is an answer we do not need */
    return *total > (1u << 20) ? 0 : size * n;
}

struct sockctx {
    struct probe *p;
    bool refused;
};

static curl_socket_t open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct sockctx *sc = ud;
    (void)purpose;
    if (!sc->p->privileged && gc_addr_protected(&a->addr, sc->p->networks)) {
        sc->refused = true;
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype, a->protocol);
}

static void probe_http(struct probe *p)
{
    CURL *h = curl_easy_init();
    if (!h) {
        fail(p, "error", "cannot start an HTTP client");
        return;
    }
    char errbuf[CURL_ERROR_SIZE] = "";
    size_t total = 0;
    struct sockctx sc = {p, false};
    curl_easy_setopt(h, CURLOPT_URL, p->url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)p->timeout_ms);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, p->tls_verify ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, p->tls_verify ? 2L : 0L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "govcloud-check/" GC_VERSION);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &total);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, &sc);
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    double t = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(h, CURLINFO_TOTAL_TIME, &t);
    const char *msg = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    if (rc == CURLE_WRITE_ERROR && total > (1u << 20))
        rc = CURLE_OK; /* we stopped reading a long body ourselves */
    if (sc.refused) {
        fail(p, "forbidden_address", "%s resolves to a protected address", p->url);
    } else if (rc == CURLE_OPERATION_TIMEDOUT) {
        fail(p, "timeout", "no complete answer from %s within %d ms", p->url, p->timeout_ms);
    } else if (rc == CURLE_COULDNT_RESOLVE_HOST) {
        fail(p, "dns", "%s", msg);
    } else if (rc == CURLE_COULDNT_CONNECT) {
        fail(p, "refused", "%s", msg);
    } else if (rc == CURLE_SSL_CONNECT_ERROR || rc == CURLE_PEER_FAILED_VERIFICATION ||
               rc == CURLE_SSL_CERTPROBLEM || rc == CURLE_SSL_CACERT_BADFILE) {
        fail(p, "tls", "%s", msg);
    } else if (rc != CURLE_OK) {
        fail(p, rc == CURLE_WEIRD_SERVER_REPLY || rc == CURLE_GOT_NOTHING ||
                        rc == CURLE_RECV_ERROR || rc == CURLE_UNSUPPORTED_PROTOCOL ||
                        rc == CURLE_PARTIAL_FILE
                    ? "bad_response"
                    : "error",
             "%s", msg);
    } else {
        p->latency_s = t;
        if (status != p->expect_status) {
            fail(p, "bad_status", "HTTP status %ld, expected %d", status, p->expect_status);
        } else {
            p->up = true;
            p->reason = NULL;
            p->error[0] = '\0';
        }
    }
    curl_easy_cleanup(h);
}

/* ---- the scheduler ---- */

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    bool running, stop, wake;
    struct gc_store *st;
    const struct gc_config *cfg;
    /* id -> {"next_ms", "in_flight", "up", "latency_ms", "last_error", "reason",
     *        "checked_at"} */
    json_t *state;
    int workers;
} S = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static json_t *status_of(const char *id)
{
    json_t *o = NULL;
    pthread_mutex_lock(&S.lock);
    json_t *s = S.state ? json_object_get(S.state, id) : NULL;
    if (s && json_object_get(s, "checked_at"))
        o = json_pack("{s:O,s:O,s:O,s:O,s:o}", "up", json_object_get(s, "up"), "latency_ms",
                      json_object_get(s, "latency_ms"), "last_error",
                      json_object_get(s, "last_error"), "reason", json_object_get(s, "reason"),
                      "checked_at", gc_json_time(json_integer_value(json_object_get(s, "checked_at"))));
    pthread_mutex_unlock(&S.lock);
    if (!o)
        o = json_pack("{s:n,s:n,s:s,s:n,s:n}", "up", "latency_ms", "last_error", "", "reason",
                      "checked_at");
    return o;
}

static void schedule_now(void)
{
    pthread_mutex_lock(&S.lock);
    S.wake = true;
    pthread_cond_broadcast(&S.cond);
    pthread_mutex_unlock(&S.lock);
}

static void forget_error(const char *id, const char *dept, const char *reason)
{
    struct gc_label l[3] = {{"check_id", id}, {"department_id", dept}, {"reason", reason}};
    struct gc_series s = {"govcloud_check_error", l, 3};
    gc_latest_forget(&s);
}

static void forget_series(const char *id, const char *dept)
{
    if (!dept)
        return;
    struct gc_label l[2] = {{"check_id", id}, {"department_id", dept}};
    struct gc_series s = {"govcloud_check_up", l, 2};
    gc_latest_forget(&s);
    s.metric = "govcloud_check_latency_seconds";
    gc_latest_forget(&s);
    pthread_mutex_lock(&S.lock);
    json_t *st = S.state ? json_object_get(S.state, id) : NULL;
    const char *reason = st ? json_string_value(json_object_get(st, "reason")) : NULL;
    char r[32] = "";
    if (reason)
        snprintf(r, sizeof(r), "%s", reason);
    if (S.state)
        json_object_del(S.state, id);
    pthread_mutex_unlock(&S.lock);
    if (r[0])
        forget_error(id, dept, r);
}

static void *probe_thread(void *arg)
{
    struct probe *p = arg;
    int64_t t = gc_now_ms();
    p->latency_s = -1;
    if (strcmp(p->kind, "tcp") == 0)
        probe_tcp(p);
    else if (strcmp(p->kind, "http") == 0)
        probe_http(p);
    else
        probe_icmp(p);
    if (!p->up)
        gc_warn("checks", "check %s (%s) is down: %s", p->id, p->kind, p->error);
    struct gc_batch b = {0};
    gc_batch_add(&b, "govcloud_check_up", t, p->up, 2, "check_id", p->id, "department_id",
                 p->dept);
    if (p->latency_s >= 0)
        gc_batch_add(&b, "govcloud_check_latency_seconds", t, p->latency_s, 2, "check_id", p->id,
                     "department_id", p->dept);
    if (!p->up)
        gc_batch_add(&b, "govcloud_check_error", t, 1, 3, "check_id", p->id, "department_id",
                     p->dept, "reason", p->reason);
    char old_reason[32] = "";
    bool was_up = true, known = false;
    pthread_mutex_lock(&S.lock);
    json_t *st = S.state ? json_object_get(S.state, p->id) : NULL;
    if (st) {
        const char *r = json_string_value(json_object_get(st, "reason"));
        if (r)
            snprintf(old_reason, sizeof(old_reason), "%s", r);
        json_t *u = json_object_get(st, "up");
        known = json_is_boolean(u);
        was_up = !known || json_is_true(u);
        json_object_set_new(st, "in_flight", json_false());
        json_object_set_new(st, "up", json_boolean(p->up));
        json_object_set_new(st, "latency_ms", p->latency_s >= 0
                                                  ? json_real(p->latency_s * 1000.0)
                                                  : json_null());
        json_object_set_new(st, "last_error", json_string(p->error));
        json_object_set_new(st, "reason", p->reason ? json_string(p->reason) : json_null());
        json_object_set_new(st, "checked_at", json_integer(t));
    }
    bool stale = !st; /* deleted while probing */
    pthread_mutex_unlock(&S.lock);
    /* the error series of the previous reason ends when the reason changes or the check
     * comes back */
    if (old_reason[0] && (p->up || strcmp(old_reason, p->reason) != 0))
        forget_error(p->id, p->dept, old_reason);
    if (!stale)
        gc_batch_emit(&b);
    else
        gc_batch_release(&b);
    /* availability: an incident from the first failed probe to the first good one (the
     * first probe after a start settles what the store has) */
    if (!stale && (!known || was_up != p->up)) {
        struct gc_error e = {0};
        struct gc_tx *tx = NULL;
        int rc = gc_tx_begin(S.st, GC_TX_WRITE, &tx, &e);
        if (!rc) {
            char cause[300];
            snprintf(cause, sizeof(cause), "%s: %.256s", p->reason ? p->reason : "down", p->error);
            rc = gc_incident_sync(tx, "check", p->id, p->dept, NULL, p->up ? NULL : cause,
                                  "the check passes again", t, &e);
            if (rc)
                gc_tx_rollback(tx);
            else
                rc = gc_tx_commit(tx, &e);
        }
        if (rc)
            gc_warn("checks", "check %s: cannot record its incident: %s", p->id, e.msg);
    }
    pthread_mutex_lock(&S.lock);
    S.workers--;
    pthread_cond_broadcast(&S.cond);
    pthread_mutex_unlock(&S.lock);
    free(p->url);
    free(p);
    return NULL;
}

/* One pass: loads the enabled checks, starts those that are due, forgets deleted ones. */
static void scheduler_pass(void)
{
    struct gc_tx *tx = NULL;
    struct gc_error err = {0};
    if (gc_tx_begin(S.st, GC_TX_READ, &tx, &err) != 0) {
        gc_warn("checks", "cannot read the store: %s", err.msg);
        return;
    }
    struct gc_rows *r = NULL;
    int rc = gc_tx_query(tx,
                         "SELECT id, department_id, kind, host, port, url, expect_status,"
                         " tls_verify, interval_seconds, timeout_ms, privileged FROM checks"
                         " WHERE enabled = 1",
                         GC_NOARGS, &r, &err);
    int64_t now = gc_now_ms();
    json_t *seen = json_object();
    while (!rc && (rc = gc_rows_next(r, &err)) > 0) {
        rc = 0;
        const char *id = gc_rows_text(r, 0);
        json_object_set_new(seen, id, json_string(gc_rows_text(r, 1)));
        pthread_mutex_lock(&S.lock);
        json_t *st = json_object_get(S.state, id);
        if (!st) {
            st = json_pack("{s:I,s:b}", "next_ms", (json_int_t)now, "in_flight", 0);
            json_object_set_new(S.state, id, st);
        }
        bool due = !json_is_true(json_object_get(st, "in_flight")) &&
                   json_integer_value(json_object_get(st, "next_ms")) <= now;
        int64_t interval = gc_rows_int(r, 8) * 1000;
        if (due) {
            json_object_set_new(st, "in_flight", json_true());
            json_object_set_new(st, "next_ms", json_integer(now + interval));
        } else if (json_integer_value(json_object_get(st, "next_ms")) > now + interval) {
            /* the interval was shortened */
            json_object_set_new(st, "next_ms", json_integer(now + interval));
        }
        pthread_mutex_unlock(&S.lock);
        if (!due)
            continue;
        struct probe *p = gc_calloc(1, sizeof(*p));
        snprintf(p->id, sizeof(p->id), "%s", id);
        snprintf(p->dept, sizeof(p->dept), "%s", gc_rows_text(r, 1));
        snprintf(p->kind, sizeof(p->kind), "%s", gc_rows_text(r, 2));
        snprintf(p->host, sizeof(p->host), "%s", gc_rows_text(r, 3));
        p->port = (int)gc_rows_int(r, 4);
        p->url = gc_strdup(gc_rows_text(r, 5));
        p->expect_status = (int)gc_rows_int(r, 6);
        p->tls_verify = gc_rows_int(r, 7) != 0;
        p->timeout_ms = (int)gc_rows_int(r, 9);
        p->privileged = gc_rows_int(r, 10) != 0;
        snprintf(p->networks, sizeof(p->networks), "%s", S.cfg->monitor_protected_networks);
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        /* many short-lived threads (one per host or check): keep their stacks small */
        pthread_attr_setstacksize(&attr, 1u << 20);
        pthread_t th;
        pthread_mutex_lock(&S.lock);
        S.workers++;
        pthread_mutex_unlock(&S.lock);
        if (pthread_create(&th, &attr, probe_thread, p) != 0) {
            gc_warn("checks", "check %s: cannot start a probe thread", id);
            pthread_mutex_lock(&S.lock);
            S.workers--;
            json_object_set_new(st, "in_flight", json_false());
            pthread_mutex_unlock(&S.lock);
            free(p->url);
            free(p);
        }
        pthread_attr_destroy(&attr);
    }
    gc_rows_free(r);
    gc_tx_rollback(tx);
    if (rc < 0) {
        gc_warn("checks", "cannot list checks: %s", err.msg);
        json_decref(seen);
        return;
    }
    /* checks deleted or disabled: their series end now */
    json_t *gone = json_array();
    pthread_mutex_lock(&S.lock);
    const char *k;
    json_t *v;
    json_object_foreach(S.state, k, v) if (!json_object_get(seen, k))
        json_array_append_new(gone, json_string(k));
    pthread_mutex_unlock(&S.lock);
    size_t i;
    json_array_foreach(gone, i, v)
    {
        /* the department is gone with the row: drop by the id the series carry */
        const char *id = json_string_value(v);
        struct gc_tx *t2 = NULL;
        char dept[GC_ID_LEN + 1] = "";
        struct gc_rows *r2 = NULL;
        if (gc_tx_begin(S.st, GC_TX_READ, &t2, &err) == 0) {
            if (gc_tx_query(t2, "SELECT department_id FROM checks WHERE id = ?",
                            GC_ARGS(GC_VTXT(id)), &r2, &err) == 0 &&
                gc_rows_next(r2, &err) > 0)
                snprintf(dept, sizeof(dept), "%s", gc_rows_text(r2, 0));
            gc_rows_free(r2);
            gc_tx_rollback(t2);
        }
        if (dept[0]) {
            forget_series(id, dept); /* disabled */
        } else {
            pthread_mutex_lock(&S.lock);
            json_object_del(S.state, id); /* deleted: gc_check_delete forgot the series */
            pthread_mutex_unlock(&S.lock);
        }
    }
    json_decref(gone);
    json_decref(seen);
}

static void *scheduler(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&S.lock);
    while (!S.stop) {
        S.wake = false;
        pthread_mutex_unlock(&S.lock);
        scheduler_pass();
        pthread_mutex_lock(&S.lock);
        if (S.stop || S.wake)
            continue;
        int64_t next = gc_now_ms() + 1000;
        struct timespec ts = {.tv_sec = (time_t)(next / 1000),
                              .tv_nsec = (long)(next % 1000) * 1000000};
        pthread_cond_timedwait(&S.cond, &S.lock, &ts);
    }
    pthread_mutex_unlock(&S.lock);
    return NULL;
}

int gc_checks_start(struct gc_store *st, const struct gc_config *cfg, struct gc_error *err)
{
    if (gc_networks_check(cfg->monitor_protected_networks, "protected_networks", err) != 0)
        return GC_EINVAL;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (!cfg->monitor_enabled)
        return 0;
    S.st = st;
    S.cfg = cfg;
    S.stop = false;
    pthread_mutex_lock(&S.lock);
    S.state = json_object();
    pthread_mutex_unlock(&S.lock);
    if (pthread_create(&S.thread, NULL, scheduler, NULL) != 0)
        return gc_error_set(err, GC_EINTERNAL, "", "cannot start the service-check thread");
    S.running = true;
    return 0;
}

void gc_checks_stop(void)
{
    if (!S.running)
        return;
    pthread_mutex_lock(&S.lock);
    S.stop = true;
    pthread_cond_broadcast(&S.cond);
    pthread_mutex_unlock(&S.lock);
    pthread_join(S.thread, NULL);
    /* probes end by their own timeout (at most 60 s); wait for them */
    pthread_mutex_lock(&S.lock);
    int64_t deadline = gc_now_ms() + 61000;
    while (S.workers > 0 && gc_now_ms() < deadline) {
        struct timespec ts = {.tv_sec = (time_t)(deadline / 1000),
                              .tv_nsec = (long)(deadline % 1000) * 1000000};
        pthread_cond_timedwait(&S.cond, &S.lock, &ts);
    }
    if (S.workers == 0) {
        json_decref(S.state);
        S.state = NULL;
    }
    pthread_mutex_unlock(&S.lock);
    S.running = false;
    curl_global_cleanup();
}
