/* Networks (libvirt NAT, isolated or bridged networks, IPv4 and optional IPv6) and the IP
 * address management that gives each VM interface its own address. A network is realised on
 * a host (as libvirt network "gc-<id>") when the first VM there needs it. */
#include "core/core.h"

#include "core/validate.h"
#include "util/buf.h"
#include "util/mem.h"
#include "util/timeutil.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NET_COLS                                                                              \
    "n.id, n.name, n.mode, n.bridge, n.ipv4_cidr, n.ipv4_gateway, n.ipv6_cidr,"               \
    " n.ipv6_gateway, n.department_id, n.description, n.created_at, n.updated_at, n.version," \
    " COALESCE(d.path, ''), (SELECT COUNT(*) FROM vm_nics x WHERE x.network_id = n.id),"       \
    " n.external, (SELECT COUNT(*) FROM public_ips p WHERE p.network_id = n.id)"
#define NET_FROM " FROM networks n LEFT JOIN departments d ON d.id = n.department_id"

static json_t *net_json(struct gc_rows *r, char *path)
{
    json_t *o = json_object();
    static const char *const text[] = {"id", "name", "mode", "bridge", "ipv4_cidr",
                                       "ipv4_gateway", "ipv6_cidr", "ipv6_gateway"};
    for (int i = 0; i < 8; i++)
        json_object_set_new(o, text[i], json_string(gc_rows_text(r, i)));
    json_object_set_new(o, "department_id",
                        gc_rows_null(r, 8) ? json_null() : json_string(gc_rows_text(r, 8)));
    json_object_set_new(o, "description", json_string(gc_rows_text(r, 9)));
    json_object_set_new(o, "external", json_boolean(gc_rows_int(r, 15) != 0));
    /* on an external network every address in use is a public IP (associated or not) */
    json_object_set_new(o, "addresses_used",
                        json_integer(gc_rows_int(r, 15) ? gc_rows_int(r, 16) : gc_rows_int(r, 14)));
    json_object_set_new(o, "created_at", gc_json_time(gc_rows_int(r, 10)));
    json_object_set_new(o, "updated_at", gc_json_time(gc_rows_int(r, 11)));
    json_object_set_new(o, "version", json_integer(gc_rows_int(r, 12)));
    if (path)
        snprintf(path, GC_DEPT_PATH_MAX, "%s", gc_rows_text(r, 13));
    return o;
}

/* A network is usable by a VM of department path vm_path when it is shared or belongs to
 * the VM's department or one of its ancestors; readable by whoever could use it, and by
 * the departments below its owner. */
static bool visible(const struct gc_principal *who, const char *net_path)
{
    if (gc_role_is_platform(who->role) || !net_path[0])
        return true;
    return gc_in_scope(who, net_path) ||
           strncmp(who->dept_path, net_path, strlen(net_path)) == 0;
}

static int load(struct gc_tx *tx, const char *id, json_t **out, char *path, struct gc_error *err)
{
    return gc_load_by_id(tx, "SELECT " NET_COLS NET_FROM " WHERE n.id = ?", "network", id, net_json, out, path, err);
}

/* Parses "a.b.c.d/p" (family AF_INET) or "x::/p" (AF_INET6) into the network address. */
static int parse_cidr(int family, const char *s, unsigned char addr[16], int *prefix)
{
    char buf[64];
    const char *slash = strchr(s, '/');
    if (!slash || (size_t)(slash - s) >= sizeof(buf))
        return -1;
    memcpy(buf, s, (size_t)(slash - s));
    buf[slash - s] = '\0';
    char *end;
    long p = strtol(slash + 1, &end, 10);
    if (*end || end == slash + 1 || p < 0 || p > (family == AF_INET ? 32 : 128))
        return -1;
    if (inet_pton(family, buf, addr) != 1)
        return -1;
    *prefix = (int)p;
    int n = family == AF_INET ? 4 : 16;
    for (int bit = (int)p; bit < n * 8; bit++) /* host bits must be zero */
        if (addr[bit / 8] & (0x80 >> (bit % 8)))
            return -1;
    return 0;
}

/* Adds k to the address (big-endian, n bytes). */
static void addr_add(unsigned char *a, int n, uint64_t k)
{
    for (int i = n - 1; i >= 0 && k; i--) {
        uint64_t v = a[i] + (k & 0xff);
        a[i] = (unsigned char)v;
        k = (k >> 8) + (v >> 8);
    }
}

static void addr_str(int family, const unsigned char *a, char *out, size_t cap)
{
    inet_ntop(family, a, out, (socklen_t)cap);
}

static const struct gc_jfield create_spec[] = {
    {"name", GC_JT_STRING, true, false, 1, 64, GC_CS_CODE},
    {"mode", GC_JT_STRING, true, false, 1, 16, GC_CS_CODE},
    {"bridge", GC_JT_STRING, false, false, 1, 15, GC_CS_CODE},
    {"ipv4_cidr", GC_JT_STRING, true, false, 9, 18, GC_CS_TEXT},
    {"ipv6_cidr", GC_JT_STRING, false, false, 3, 43, GC_CS_TEXT},
    {"department_id", GC_JT_STRING, false, true, 1, 64, GC_CS_ANY},
    {"description", GC_JT_STRING, false, false, 0, 1024, GC_CS_ANY},
    {"external", GC_JT_BOOL, false, false, 0, 0, GC_CS_ANY},
};

int gc_net_create(const struct gc_ctx *ctx, json_t *in, json_t **out, struct gc_error *err)
{
    int rc = gc_require(ctx->who, GC_P_CATALOG_WRITE, err);
    if (!rc)
        rc = gc_json_check(in, create_spec, sizeof(create_spec) / sizeof(create_spec[0]), err);
    if (rc)
        return rc;
    const char *mode = gc_json_str(in, "mode"), *bridge = gc_json_str(in, "bridge");
    if (strcmp(mode, "nat") && strcmp(mode, "isolated") && strcmp(mode, "bridge"))
        return gc_error_set(err, GC_EINVAL, "mode", "mode must be nat, isolated or bridge");
    if (!strcmp(mode, "bridge") != !!bridge)
        return gc_error_set(err, GC_EINVAL, "bridge",
                            bridge ? "only a bridge network names a bridge"
                                   : "a bridge network needs the host bridge name in 'bridge'");
    unsigned char a4[16], a6[16];
    int p4, p6 = 0;
    const char *c4 = gc_json_str(in, "ipv4_cidr"), *c6 = gc_json_str(in, "ipv6_cidr");
    if (parse_cidr(AF_INET, c4, a4, &p4) != 0 || p4 < 8 || p4 > 29)
        return gc_error_set(err, GC_EINVAL, "ipv4_cidr",
                            "ipv4_cidr must be a network such as 10.20.0.0/24 (prefix 8 to 29, "
                            "host bits zero)");
    if (c6 && (parse_cidr(AF_INET6, c6, a6, &p6) != 0 || p6 < 64 || p6 > 120))
        return gc_error_set(err, GC_EINVAL, "ipv6_cidr",
                            "ipv6_cidr must be a network such as fd00:20::/64 (prefix 64 to "
                            "120, host bits zero)");
    /* the gateway is the first address: the host's side of the network */
    char gw4[64], gw6[64] = "";
    addr_add(a4, 4, 1);
    addr_str(AF_INET, a4, gw4, sizeof(gw4));
    if (c6) {
        addr_add(a6, 16, 1);
        addr_str(AF_INET6, a6, gw6, sizeof(gw6));
    }
    json_t *jd = json_object_get(in, "department_id");
    const char *dept = json_is_string(jd) ? json_string_value(jd) : NULL;
    bool external = json_is_true(json_object_get(in, "external"));
    if (external && dept)
        return gc_error_set(err, GC_EINVAL, "external",
                            "an external network is a pool of public addresses for all "
                            "departments: give no department_id");
    struct gc_tx *tx;
    rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    char dpath[GC_DEPT_PATH_MAX] = "";
    if (dept) {
        rc = gc_dept_path(tx, dept, dpath, err);
        if (rc == GC_ENOTFOUND)
            rc = gc_error_set(err, GC_EINVAL, "department_id", "department '%.64s' not found",
                              dept);
    }
    char id[GC_ID_LEN + 1];
    gc_id_new(id);
    int64_t now = gc_now_ms();
    const char *desc = gc_json_str(in, "description");
    if (!rc)
        rc = gc_tx_exec(tx,
                        "INSERT INTO networks (id, name, mode, bridge, ipv4_cidr, ipv4_gateway,"
                        " ipv6_cidr, ipv6_gateway, department_id, description, created_at,"
                        " updated_at, version, external)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)",
                        GC_ARGS(GC_VTXT(id), GC_VTXT(gc_json_str(in, "name")), GC_VTXT(mode),
                                GC_VTXT(bridge ? bridge : ""), GC_VTXT(c4), GC_VTXT(gw4),
                                GC_VTXT(c6 ? c6 : ""), GC_VTXT(gw6), GC_VTXT(dept),
                                GC_VTXT(desc ? desc : ""), GC_VINT_(now), GC_VINT_(now),
                                GC_VINT_(external)),
                        NULL, err);
    if (rc == GC_ECONFLICT)
        rc = gc_error_set(err, GC_ECONFLICT, "name", "a network named '%s' exists",
                          gc_json_str(in, "name"));
    json_t *obj = NULL;
    if (!rc)
        rc = load(tx, id, &obj, NULL, err);
    if (!rc) {
        struct gc_audit_event ev = {.action = "network.create",
                                    .resource_type = "network",
                                    .resource_id = id,
                                    .department_id = dept,
                                    .department_path = dpath,
                                    .outcome = GC_OUTCOME_SUCCESS,
                                    .detail = obj};
        rc = gc_audit_append(tx, ctx, &ev, err);
    }
    if (rc) {
        gc_tx_rollback(tx);
        json_decref(obj);
        return rc;
    }
    rc = gc_tx_commit(tx, err);
    if (rc) {
        json_decref(obj);
        return rc;
    }
    *out = obj;
    return 0;
}

int gc_net_get(const struct gc_ctx *ctx, const char *id, json_t **out, struct gc_error *err)
{
    int rc = gc_require(ctx->who, GC_P_CATALOG_READ, err);
    struct gc_tx *tx;
    if (!rc)
        rc = gc_tx_begin(ctx->store, GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    char path[GC_DEPT_PATH_MAX];
    json_t *obj = NULL;
    rc = load(tx, id, &obj, path, err);
    gc_tx_rollback(tx);
    if (!rc && !visible(ctx->who, path))
        rc = gc_error_set(err, GC_ENOTFOUND, "id", "network '%s' not found", id);
    if (rc) {
        json_decref(obj);
        return rc;
    }
    *out = obj;
    return 0;
}

/* Visibility depends on the tree: rows the caller may not see are left out here (networks
 * are few). */
static json_t *net_row(struct gc_rows *r, const struct gc_principal *who)
{
    char path[GC_DEPT_PATH_MAX];
    json_t *o = net_json(r, path);
    if (!visible(who, path)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int gc_net_list(const struct gc_ctx *ctx, json_t *filters, int limit, const char *cursor,
                json_t **items, char **next_cursor, struct gc_error *err)
{
    int rc = gc_require(ctx->who, GC_P_CATALOG_READ, err);
    if (!rc)
        rc = gc_page_limit(limit, &limit, err);
    if (!rc)
        rc = gc_page_cursor_id(cursor, err);
    if (rc)
        return rc;
    struct gc_buf sql;
    gc_buf_init(&sql, GC_BUF_UNLIMITED);
    struct gc_val args[6];
    size_t n = 0;
    (void)gc_buf_adds(&sql, "SELECT " NET_COLS NET_FROM " WHERE n.id > ?");
    args[n++] = GC_VTXT(cursor ? cursor : "");
    static const char *const f[][2] = {{"name", "n.name"}, {"mode", "n.mode"}};
    for (size_t i = 0; i < 2; i++) {
        const char *v = gc_json_str(filters, f[i][0]);
        if (v) {
            (void)gc_buf_addf(&sql, " AND %s = ?", f[i][1]);
            args[n++] = GC_VTXT(v);
        }
    }
    (void)gc_buf_adds(&sql, " ORDER BY n.id");
    rc = gc_page_run(ctx, gc_buf_str(&sql), args, n, limit, "id", net_row, items,
                     next_cursor, err);
    gc_buf_release(&sql);
    return rc;
}

int gc_net_delete(const struct gc_ctx *ctx, const char *id, int64_t if_match,
                  struct gc_error *err)
{
    struct gc_tx *tx;
    int rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    char path[GC_DEPT_PATH_MAX];
    json_t *obj = NULL;
    rc = load(tx, id, &obj, path, err);
    /* a network the caller cannot see does not exist for it: 404 before 403 */
    if (!rc && !visible(ctx->who, path))
        rc = gc_error_set(err, GC_ENOTFOUND, "id", "network '%s' not found", id);
    if (!rc)
        rc = gc_require(ctx->who, GC_P_CATALOG_WRITE, err);
    int64_t v = obj ? json_integer_value(json_object_get(obj, "version")) : 0;
    if (!rc && if_match >= 0 && if_match != v)
        rc = gc_error_set(err, GC_EPRECOND, "If-Match",
                          "network '%s' is at version %lld, not %lld", id, (long long)v,
                          (long long)if_match);
    if (!rc && json_integer_value(json_object_get(obj, "addresses_used")) > 0)
        rc = gc_error_set(err, GC_ECONFLICT, "id",
                          "network '%s' still has %lld VM interfaces; delete those VMs first", id,
                          (long long)json_integer_value(json_object_get(obj, "addresses_used")));
    char job[GC_ID_LEN + 1];
    if (!rc) {
        /* the libvirt networks on the hosts go in a job: hosts may be slow or away */
        char name[64];
        snprintf(name, sizeof(name), "gc-%s", id);
        json_t *params = json_pack("{s:s}", "network", name);
        rc = gc_job_submit(tx, ctx, "network.remove", params, NULL, "network", id, job, err);
        json_decref(params);
    }
    if (!rc)
        rc = gc_tx_exec(tx, "DELETE FROM networks WHERE id = ?", GC_ARGS(GC_VTXT(id)), NULL, err);
    if (!rc) {
        struct gc_audit_event ev = {.action = "network.delete",
                                    .resource_type = "network",
                                    .resource_id = id,
                                    .department_path = path,
                                    .outcome = GC_OUTCOME_SUCCESS,
                                    .detail = obj};
        rc = gc_audit_append(tx, ctx, &ev, err);
    }
    json_decref(obj);
    if (rc) {
        gc_tx_rollback(tx);
        return rc;
    }
    rc = gc_tx_commit(tx, err);
    if (!rc)
        gc_job_notify();
    return rc;
}

/* The lowest free address of the network from the first after the gateway; family AF_INET
 * or AF_INET6. GC_ECONFLICT when the network is full. */
static int pick(struct gc_tx *tx, const char *network, int family, const char *cidr, char *out,
                size_t cap, struct gc_error *err)
{
    unsigned char base[16];
    int prefix;
    if (parse_cidr(family, cidr, base, &prefix) != 0)
        return gc_error_set(err, GC_ESTORE, "", "network %s has a bad %s", network, cidr);
    int bytes = family == AF_INET ? 4 : 16;
    int hostbits = bytes * 8 - prefix;
    uint64_t size = hostbits >= 63 ? UINT64_MAX : (uint64_t)1 << hostbits;
    /* taken addresses, as a set of offsets from the network address */
    struct gc_rows *r = NULL;
    /* on an external network, public IPs that are not associated hold their address too */
    int rc = family == AF_INET
                 ? gc_tx_query(tx,
                               "SELECT ipv4 FROM vm_nics WHERE network_id = ?"
                               " UNION SELECT address FROM public_ips WHERE network_id = ?",
                               GC_ARGS(GC_VTXT(network), GC_VTXT(network)), &r, err)
                 : gc_tx_query(tx,
                               "SELECT ipv6 FROM vm_nics WHERE network_id = ? AND"
                               " ipv6 IS NOT NULL",
                               GC_ARGS(GC_VTXT(network)), &r, err);
    size_t n = 0, ncap = 64;
    uint64_t *taken = gc_malloc(ncap * sizeof(*taken));
    while (!rc && (rc = gc_rows_next(r, err)) > 0) {
        rc = 0;
        unsigned char a[16];
        if (inet_pton(family, gc_rows_text(r, 0), a) != 1)
            continue;
        uint64_t off = 0;
        for (int i = bytes - 8 < 0 ? 0 : bytes - 8; i < bytes; i++)
            off = (off << 8) | a[i];
        uint64_t mask = hostbits >= 64 ? UINT64_MAX : (((uint64_t)1 << hostbits) - 1);
        if (n == ncap) {
            ncap *= 2;
            taken = gc_realloc(taken, ncap * sizeof(*taken));
        }
        taken[n++] = off & mask;
    }
    gc_rows_free(r);
    if (rc < 0) {
        free(taken);
        return rc;
    }
    /* offset 0 is the network, 1 the gateway, the last (IPv4) the broadcast address */
    uint64_t last = family == AF_INET ? size - 2 : (size > n + 3 ? n + 2 : size - 1);
    for (uint64_t off = 2; off <= last; off++) {
        bool used = false;
        for (size_t i = 0; i < n && !used; i++)
            used = taken[i] == off;
        if (!used) {
            unsigned char a[16];
            memcpy(a, base, 16);
            addr_add(a, bytes, off);
            addr_str(family, a, out, cap);
            free(taken);
            return 0;
        }
    }
    free(taken);
    return gc_error_set(err, GC_ECONFLICT, "networks", "network %s has no free %s address",
                        network, family == AF_INET ? "IPv4" : "IPv6");
}

/* A NIC of vm_id on network (loaded as net): the IPv4 address fixed_v4, or the lowest free
 * one; the lowest free IPv6 address when the network has IPv6. */
static int attach(struct gc_tx *tx, json_t *net, const char *network_id, const char *vm_id,
                  int position, const char *fixed_v4, json_t **nic, struct gc_error *err)
{
    char v4[64], v6[64] = "";
    int rc = 0;
    if (fixed_v4)
        snprintf(v4, sizeof(v4), "%s", fixed_v4);
    else
        rc = pick(tx, network_id, AF_INET, gc_json_str(net, "ipv4_cidr"), v4, sizeof(v4), err);
    const char *c6 = gc_json_str(net, "ipv6_cidr");
    if (!rc && c6 && c6[0])
        rc = pick(tx, network_id, AF_INET6, c6, v6, sizeof(v6), err);
    if (rc)
        return rc;
    for (int attempt = 0; attempt < 8; attempt++) {
        unsigned char r[3];
        gc_random_bytes(r, sizeof(r));
        char mac[24], id[GC_ID_LEN + 1];
        /* 52:54:00 is the prefix QEMU/KVM guests use */
        snprintf(mac, sizeof(mac), "52:54:00:%02x:%02x:%02x", r[0], r[1], r[2]);
        gc_id_new(id);
        rc = gc_tx_exec(tx,
                        "INSERT INTO vm_nics (id, vm_id, network_id, position, mac, ipv4, ipv6,"
                        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        GC_ARGS(GC_VTXT(id), GC_VTXT(vm_id), GC_VTXT(network_id),
                                GC_VINT_(position), GC_VTXT(mac), GC_VTXT(v4),
                                GC_VTXT(v6[0] ? v6 : NULL), GC_VINT_(gc_now_ms())),
                        NULL, err);
        if (rc == GC_ECONFLICT && strstr(err->msg, "mac"))
            continue; /* that MAC exists: draw another */
        if (!rc)
            *nic = json_pack("{s:s,s:s,s:s,s:o}", "network_id", network_id, "mac", mac, "ipv4",
                             v4, "ipv6", v6[0] ? json_string(v6) : json_null());
        return rc;
    }
    return gc_error_set(err, GC_ECONFLICT, "networks", "no free MAC address found");
}

int gc_net_attach(struct gc_tx *tx, const char *vm_dept_path, const char *network_id,
                  const char *vm_id, int position, json_t **nic, struct gc_error *err)
{
    char path[GC_DEPT_PATH_MAX];
    json_t *net = NULL;
    int rc = load(tx, network_id, &net, path, err);
    if (rc == GC_ENOTFOUND ||
        (!rc && path[0] && strncmp(vm_dept_path, path, strlen(path)) != 0)) {
        json_decref(net);
        return gc_error_set(err, GC_EINVAL, "networks", "network '%.64s' not found",
                            network_id);
    }
    if (!rc && json_is_true(json_object_get(net, "external")))
        rc = gc_error_set(err, GC_EINVAL, "networks",
                          "network '%s' is external: its addresses are public IPs, allocated "
                          "with POST /v1/public-ips and associated with a VM",
                          network_id);
    if (!rc)
        rc = attach(tx, net, network_id, vm_id, position, NULL, nic, err);
    json_decref(net);
    return rc;
}

int gc_net_attach_public(struct gc_tx *tx, const char *network_id, const char *vm_id,
                         const char *ipv4, json_t **nic, struct gc_error *err)
{
    json_t *net = NULL;
    int64_t position = 0;
    int rc = load(tx, network_id, &net, NULL, err);
    if (!rc)
        rc = gc_tx_query_int(tx, "SELECT COALESCE(MAX(position) + 1, 0) FROM vm_nics"
                                 " WHERE vm_id = ?",
                             GC_ARGS(GC_VTXT(vm_id)), &position, err);
    if (!rc)
        rc = attach(tx, net, network_id, vm_id, (int)position, ipv4, nic, err);
    json_decref(net);
    return rc;
}

int gc_net_pick_public(struct gc_tx *tx, const char *network_id, char *out, size_t cap,
                       struct gc_error *err)
{
    json_t *net = NULL;
    int rc = load(tx, network_id, &net, NULL, err);
    if (rc == GC_ENOTFOUND)
        rc = gc_error_set(err, GC_EINVAL, "network_id", "network '%.64s' not found", network_id);
    else if (!rc && !json_is_true(json_object_get(net, "external")))
        rc = gc_error_set(err, GC_EINVAL, "network_id",
                          "network '%s' is not external: public IPs come from networks "
                          "created with \"external\": true",
                          network_id);
    if (!rc)
        rc = pick(tx, network_id, AF_INET, gc_json_str(net, "ipv4_cidr"), out, cap, err);
    if (rc == GC_ECONFLICT)
        rc = gc_error_set(err, GC_ECONFLICT, "network_id",
                          "external network '%s' has no free address left", network_id);
    json_decref(net);
    return rc;
}

int gc_vm_nics(struct gc_tx *tx, const char *vm_id, json_t **out, struct gc_error *err)
{
    struct gc_rows *r = NULL;
    json_t *arr = json_array();
    int rc = gc_tx_query(tx,
                         "SELECT network_id, mac, ipv4, ipv6 FROM vm_nics WHERE vm_id = ?"
                         " ORDER BY position",
                         GC_ARGS(GC_VTXT(vm_id)), &r, err);
    while (!rc && (rc = gc_rows_next(r, err)) > 0) {
        rc = 0;
        json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:o}", "network_id",
                                             gc_rows_text(r, 0), "mac", gc_rows_text(r, 1),
                                             "ipv4", gc_rows_text(r, 2), "ipv6",
                                             gc_rows_null(r, 3) ? json_null()
                                                                : json_string(gc_rows_text(r, 3))));
    }
    gc_rows_free(r);
    if (rc < 0) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return 0;
}
