/* Security groups (安全组), the standard's virtual firewall: rules by direction, protocol,
 * port range and IPv4/IPv6 network, applied to VM interfaces as libvirt nwfilters. A change
 * to a group is one job that redefines its filter on the hosts, which updates every
 * interface that uses it. */
#include "core/core.h"

#include "core/validate.h"
#include "util/buf.h"
#include "util/mem.h"
#include "util/timeutil.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SG_COLS                                                                               \
    "g.id, g.name, g.department_id, g.description, g.created_at, g.updated_at, g.version,"    \
    " COALESCE(d.path, ''), (SELECT COUNT(*) FROM vm_security_groups x WHERE x.group_id = g.id)"
#define SG_FROM " FROM security_groups g LEFT JOIN departments d ON d.id = g.department_id"

int gc_sg_rules(struct gc_tx *tx, const char *group, json_t **out, struct gc_error *err)
{
    struct gc_rows *r = NULL;
    json_t *arr = json_array();
    int rc = gc_tx_query(tx,
                         "SELECT id, direction, protocol, port_min, port_max, cidr FROM"
                         " security_group_rules WHERE group_id = ? ORDER BY id",
                         GC_ARGS(GC_VTXT(group)), &r, err);
    while (!rc && (rc = gc_rows_next(r, err)) > 0) {
        rc = 0;
        json_array_append_new(
            arr, json_pack("{s:s,s:s,s:s,s:o,s:o,s:s}", "id", gc_rows_text(r, 0), "direction",
                           gc_rows_text(r, 1), "protocol", gc_rows_text(r, 2), "port_min",
                           gc_rows_null(r, 3) ? json_null() : json_integer(gc_rows_int(r, 3)),
                           "port_max",
                           gc_rows_null(r, 4) ? json_null() : json_integer(gc_rows_int(r, 4)),
                           "cidr", gc_rows_text(r, 5)));
    }
    gc_rows_free(r);
    if (rc < 0) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return 0;
}

static json_t *sg_json(struct gc_rows *r, char *path)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(gc_rows_text(r, 0)));
    json_object_set_new(o, "name", json_string(gc_rows_text(r, 1)));
    json_object_set_new(o, "department_id",
                        gc_rows_null(r, 2) ? json_null() : json_string(gc_rows_text(r, 2)));
    json_object_set_new(o, "description", json_string(gc_rows_text(r, 3)));
    json_object_set_new(o, "vms", json_integer(gc_rows_int(r, 8)));
    json_object_set_new(o, "created_at", gc_json_time(gc_rows_int(r, 4)));
    json_object_set_new(o, "updated_at", gc_json_time(gc_rows_int(r, 5)));
    json_object_set_new(o, "version", json_integer(gc_rows_int(r, 6)));
    if (path)
        snprintf(path, GC_DEPT_PATH_MAX, "%s", gc_rows_text(r, 7));
    return o;
}

/* Shared groups and those of the caller's tree and its ancestors are visible. */
static bool visible(const struct gc_principal *who, const char *path)
{
    if (gc_role_is_platform(who->role) || !path[0])
        return true;
    return gc_in_scope(who, path) || strncmp(who->dept_path, path, strlen(path)) == 0;
}

/* May who change a group of that department path? Shared groups: platform only. */
static int may_write(const struct gc_principal *who, const char *path, const char *id,
                     struct gc_error *err)
{
    if (!visible(who, path))
        return gc_error_set(err, GC_ENOTFOUND, "id", "security group '%s' not found", id);
    if (!gc_role_can(who->role, GC_P_VM_WRITE) ||
        (!gc_role_is_platform(who->role) && !gc_in_scope(who, path)))
        return gc_error_set(err, GC_EPERM, "", "role %s may not change security group '%s'",
                            gc_role_name(who->role), id);
    return 0;
}

static int load(struct gc_tx *tx, const char *id, json_t **out, char *path, struct gc_error *err)
{
    if (!gc_id_valid(id))
        return gc_error_set(err, GC_ENOTFOUND, "id", "security group '%.64s' not found", id);
    struct gc_rows *r;
    int rc = gc_tx_query(tx, "SELECT " SG_COLS SG_FROM " WHERE g.id = ?", GC_ARGS(GC_VTXT(id)),
                         &r, err);
    if (rc)
        return rc;
    rc = gc_rows_next(r, err);
    if (rc == 0)
        rc = gc_error_set(err, GC_ENOTFOUND, "id", "security group '%s' not found", id);
    json_t *o = NULL;
    if (rc > 0) {
        rc = 0;
        o = sg_json(r, path);
    }
    gc_rows_free(r);
    json_t *rules = NULL;
    if (!rc)
        rc = gc_sg_rules(tx, id, &rules, err);
    if (rc) {
        json_decref(o);
        return rc;
    }
    json_object_set_new(o, "rules", rules);
    *out = o;
    return 0;
}

static const struct gc_jfield rule_spec[] = {
    {"direction", GC_JT_STRING, true, false, 1, 16, GC_CS_CODE},
    {"protocol", GC_JT_STRING, true, false, 1, 16, GC_CS_CODE},
    {"port_min", GC_JT_INT, false, true, 1, 65535, GC_CS_ANY},
    {"port_max", GC_JT_INT, false, true, 1, 65535, GC_CS_ANY},
    {"cidr", GC_JT_STRING, true, false, 3, 43, GC_CS_TEXT},
};

/* Validates and inserts one rule. */
static int insert_rule(struct gc_tx *tx, const char *group, json_t *in, const char *where,
                       char rule_id[GC_ID_LEN + 1], struct gc_error *err)
{
    int rc = gc_json_check(in, rule_spec, sizeof(rule_spec) / sizeof(rule_spec[0]), err);
    if (rc) {
        if (where[0]) {
            char f[sizeof(err->field)];
            snprintf(f, sizeof(f), "%s.%.60s", where, err->field);
            snprintf(err->field, sizeof(err->field), "%s", f);
        }
        return rc;
    }
    const char *dir = gc_json_str(in, "direction"), *proto = gc_json_str(in, "protocol");
    const char *cidr = gc_json_str(in, "cidr");
    if (strcmp(dir, "ingress") && strcmp(dir, "egress"))
        return gc_error_set(err, GC_EINVAL, "direction", "%sdirection must be ingress or egress",
                            where);
    if (strcmp(proto, "tcp") && strcmp(proto, "udp") && strcmp(proto, "icmp") &&
        strcmp(proto, "all"))
        return gc_error_set(err, GC_EINVAL, "protocol",
                            "%sprotocol must be tcp, udp, icmp or all", where);
    json_t *jmin = json_object_get(in, "port_min"), *jmax = json_object_get(in, "port_max");
    int64_t pmin = json_is_integer(jmin) ? json_integer_value(jmin) : 0;
    int64_t pmax = json_is_integer(jmax) ? json_integer_value(jmax) : pmin;
    bool ports = !strcmp(proto, "tcp") || !strcmp(proto, "udp");
    if (!ports && (pmin || pmax))
        return gc_error_set(err, GC_EINVAL, "port_min", "%sonly tcp and udp rules have ports",
                            where);
    if (pmin > pmax || (pmax && !pmin))
        return gc_error_set(err, GC_EINVAL, "port_max",
                            "%sport_max must not be below port_min", where);
    /* the network: a v4 or v6 address with a prefix, host bits zero */
    char addr[64];
    const char *slash = strchr(cidr, '/');
    bool v6 = strchr(cidr, ':') != NULL;
    unsigned char a[16];
    char *pend = NULL;
    long prefix = slash ? strtol(slash + 1, &pend, 10) : -1;
    if (slash && (pend == slash + 1 || *pend))
        prefix = -1; /* digits only after the slash */
    if (!slash || (size_t)(slash - cidr) >= sizeof(addr))
        return gc_error_set(err, GC_EINVAL, "cidr",
                            "%scidr must be a network such as 0.0.0.0/0 or 2001:db8::/32", where);
    snprintf(addr, sizeof(addr), "%.*s", (int)(slash - cidr), cidr);
    if (inet_pton(v6 ? AF_INET6 : AF_INET, addr, a) != 1 || prefix < 0 ||
        prefix > (v6 ? 128 : 32))
        return gc_error_set(err, GC_EINVAL, "cidr",
                            "%scidr must be a network such as 0.0.0.0/0 or 2001:db8::/32", where);
    for (int bit = (int)prefix; bit < (v6 ? 128 : 32); bit++)
        if (a[bit / 8] & (0x80 >> (bit % 8)))
            return gc_error_set(err, GC_EINVAL, "cidr",
                                "%scidr '%s' has host bits set; the network is written with them "
                                "zero, e.g. 10.0.0.0/8",
                                where, cidr);
    gc_id_new(rule_id);
    return gc_tx_exec(tx,
                      "INSERT INTO security_group_rules (id, group_id, direction, protocol,"
                      " port_min, port_max, cidr, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                      GC_ARGS(GC_VTXT(rule_id), GC_VTXT(group), GC_VTXT(dir), GC_VTXT(proto),
                              ports && pmin ? GC_VINT_(pmin) : GC_VNUL,
                              ports && pmin ? GC_VINT_(pmax) : GC_VNUL, GC_VTXT(cidr),
                              GC_VINT_(gc_now_ms())),
                      NULL, err);
}

/* Queues the job that pushes the group's rules to the hosts. */
static int queue_apply(struct gc_tx *tx, const struct gc_ctx *ctx, const char *group,
                       const char *dept, struct gc_error *err)
{
    char job[GC_ID_LEN + 1];
    json_t *p = json_pack("{s:s}", "group_id", group);
    int rc = gc_job_submit(tx, ctx, "security_group.apply", p, dept, "security_group", group,
                           job, err);
    json_decref(p);
    return rc;
}

static int commit_audited(struct gc_tx *tx, const struct gc_ctx *ctx, const char *action,
                          const char *id, const char *dept, const char *path, json_t *detail,
                          int rc, struct gc_error *err)
{
    if (!rc) {
        struct gc_audit_event ev = {.action = action,
                                    .resource_type = "security_group",
                                    .resource_id = id,
                                    .department_id = dept,
                                    .department_path = path,
                                    .outcome = GC_OUTCOME_SUCCESS,
                                    .detail = detail};
        rc = gc_audit_append(tx, ctx, &ev, err);
    }
    if (rc) {
        gc_tx_rollback(tx);
        return rc;
    }
    rc = gc_tx_commit(tx, err);
    if (!rc)
        gc_job_notify();
    return rc;
}

static const struct gc_jfield create_spec[] = {
    {"name", GC_JT_STRING, true, false, 1, 64, GC_CS_CODE},
    {"department_id", GC_JT_STRING, false, true, 1, 64, GC_CS_ANY},
    {"description", GC_JT_STRING, false, false, 0, 1024, GC_CS_ANY},
    {"rules", GC_JT_ARRAY, false, false, 0, 100, GC_CS_ANY},
};

int gc_sg_create(const struct gc_ctx *ctx, json_t *in, json_t **out, struct gc_error *err)
{
    int rc = gc_require(ctx->who, GC_P_VM_WRITE, err);
    if (!rc)
        rc = gc_json_check(in, create_spec, sizeof(create_spec) / sizeof(create_spec[0]), err);
    if (rc)
        return rc;
    json_t *jd = json_object_get(in, "department_id");
    const char *dept = json_is_string(jd) ? json_string_value(jd) : NULL;
    if (!jd && !gc_role_is_platform(ctx->who->role))
        dept = ctx->who->department_id; /* a department's own group by default */
    if (!dept && !gc_role_is_platform(ctx->who->role))
        return gc_error_set(err, GC_EPERM, "department_id",
                            "only platform administrators and operators create shared groups");
    struct gc_tx *tx;
    rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    char path[GC_DEPT_PATH_MAX] = "";
    if (dept) {
        rc = gc_dept_path(tx, dept, path, err);
        if (rc == GC_ENOTFOUND || (!rc && !gc_in_scope(ctx->who, path)))
            rc = gc_error_set(err, GC_EINVAL, "department_id", "department '%.64s' not found",
                              dept);
    }
    char id[GC_ID_LEN + 1];
    gc_id_new(id);
    int64_t now = gc_now_ms();
    const char *desc = gc_json_str(in, "description");
    if (!rc)
        rc = gc_tx_exec(tx,
                        "INSERT INTO security_groups (id, name, department_id, description,"
                        " created_at, updated_at, version) VALUES (?, ?, ?, ?, ?, ?, 1)",
                        GC_ARGS(GC_VTXT(id), GC_VTXT(gc_json_str(in, "name")), GC_VTXT(dept),
                                GC_VTXT(desc ? desc : ""), GC_VINT_(now), GC_VINT_(now)),
                        NULL, err);
    if (rc == GC_ECONFLICT)
        rc = gc_error_set(err, GC_ECONFLICT, "name", "a security group named '%s' exists there",
                          gc_json_str(in, "name"));
    size_t i;
    json_t *rv;
    json_array_foreach(json_object_get(in, "rules"), i, rv) {
        if (rc)
            break;
        char where[32], rid[GC_ID_LEN + 1];
        snprintf(where, sizeof(where), "rules[%zu]: ", i);
        rc = insert_rule(tx, id, rv, where, rid, err);
    }
    json_t *obj = NULL;
    if (!rc)
        rc = load(tx, id, &obj, NULL, err);
    rc = commit_audited(tx, ctx, "security_group.create", id, dept, path, obj, rc, err);
    if (rc) {
        json_decref(obj);
        return rc;
    }
    *out = obj;
    return 0;
}

int gc_sg_get(const struct gc_ctx *ctx, const char *id, json_t **out, struct gc_error *err)
{
    int rc = gc_require(ctx->who, GC_P_VM_READ, err);
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
        rc = gc_error_set(err, GC_ENOTFOUND, "id", "security group '%s' not found", id);
    if (rc) {
        json_decref(obj);
        return rc;
    }
    *out = obj;
    return 0;
}

static json_t *sg_row(struct gc_rows *r, const struct gc_principal *who)
{
    char path[GC_DEPT_PATH_MAX];
    json_t *o = sg_json(r, path);
    if (!visible(who, path)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int gc_sg_list(const struct gc_ctx *ctx, json_t *filters, int limit, const char *cursor,
               json_t **items, char **next_cursor, struct gc_error *err)
{
    int rc = gc_require(ctx->who, GC_P_VM_READ, err);
    if (!rc)
        rc = gc_page_limit(limit, &limit, err);
    if (!rc)
        rc = gc_page_cursor_id(cursor, err);
    if (rc)
        return rc;
    const char *name = gc_json_str(filters, "name");
    json_t *arr = NULL;
    rc = gc_page_run(ctx,
                     name ? "SELECT " SG_COLS SG_FROM " WHERE g.id > ? AND g.name = ? ORDER BY g.id"
                          : "SELECT " SG_COLS SG_FROM " WHERE g.id > ? ORDER BY g.id",
                     (const struct gc_val[]){GC_VTXT(cursor ? cursor : ""), GC_VTXT(name)},
                     name ? 2 : 1, limit, "id", sg_row, &arr, next_cursor, err);
    if (rc)
        return rc;
    /* the rules of the groups on the page */
    struct gc_tx *tx = NULL;
    rc = gc_tx_begin(ctx->store, GC_TX_READ, &tx, err);
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o) {
        json_t *rules = NULL;
        if (!rc && !(rc = gc_sg_rules(tx, json_string_value(json_object_get(o, "id")), &rules,
                                      err)))
            json_object_set_new(o, "rules", rules);
    }
    gc_tx_rollback(tx); /* NULL when it did not begin */
    if (rc) {
        json_decref(arr);
        free(*next_cursor);
        *next_cursor = NULL;
        return rc;
    }
    *items = arr;
    return 0;
}

int gc_sg_delete(const struct gc_ctx *ctx, const char *id, int64_t if_match,
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
        rc = may_write(ctx->who, path, id, err);
    int64_t v = obj ? json_integer_value(json_object_get(obj, "version")) : 0;
    if (!rc && if_match >= 0 && if_match != v)
        rc = gc_error_set(err, GC_EPRECOND, "If-Match",
                          "security group '%s' is at version %lld, not %lld", id, (long long)v,
                          (long long)if_match);
    if (!rc && json_integer_value(json_object_get(obj, "vms")) > 0)
        rc = gc_error_set(err, GC_ECONFLICT, "id",
                          "security group '%s' is used by %lld virtual machines", id,
                          (long long)json_integer_value(json_object_get(obj, "vms")));
    char job[GC_ID_LEN + 1];
    if (!rc) {
        char name[64];
        snprintf(name, sizeof(name), "gc-sg-%s", id);
        json_t *p = json_pack("{s:s}", "filter", name);
        rc = gc_job_submit(tx, ctx, "nwfilter.remove", p, NULL, "security_group", id, job, err);
        json_decref(p);
    }
    if (!rc)
        rc = gc_tx_exec(tx, "DELETE FROM security_groups WHERE id = ?", GC_ARGS(GC_VTXT(id)),
                        NULL, err);
    const char *dept = obj ? gc_json_str(obj, "department_id") : NULL;
    rc = commit_audited(tx, ctx, "security_group.delete", id, dept, path, obj, rc, err);
    json_decref(obj);
    return rc;
}

int gc_sg_rule_add(const struct gc_ctx *ctx, const char *group, json_t *in, json_t **out,
                   struct gc_error *err)
{
    struct gc_tx *tx;
    int rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    char path[GC_DEPT_PATH_MAX], rid[GC_ID_LEN + 1] = "";
    json_t *obj = NULL;
    rc = load(tx, group, &obj, path, err);
    if (!rc)
        rc = may_write(ctx->who, path, group, err);
    if (!rc)
        rc = insert_rule(tx, group, in, "", rid, err);
    const char *dept = obj ? gc_json_str(obj, "department_id") : NULL;
    if (!rc)
        rc = gc_tx_exec(tx,
                        "UPDATE security_groups SET updated_at = ?, version = version + 1"
                        " WHERE id = ?",
                        GC_ARGS(GC_VINT_(gc_now_ms()), GC_VTXT(group)), NULL, err);
    if (!rc)
        rc = queue_apply(tx, ctx, group, dept, err);
    json_t *rule = NULL;
    if (!rc) {
        json_t *rules = NULL;
        rc = gc_sg_rules(tx, group, &rules, err);
        size_t i;
        json_t *r;
        json_array_foreach(rules, i, r) if (!strcmp(gc_json_str(r, "id"), rid)) rule =
            json_incref(r);
        json_decref(rules);
        if (rule)
            json_object_set_new(rule, "version",
                                json_integer(json_integer_value(json_object_get(obj, "version")) +
                                             1));
    }
    rc = commit_audited(tx, ctx, "security_group.rule_add", group, dept, path, rule, rc, err);
    json_decref(obj);
    if (rc) {
        json_decref(rule);
        return rc;
    }
    *out = rule;
    return 0;
}

int gc_sg_rule_delete(const struct gc_ctx *ctx, const char *group, const char *rule,
                      struct gc_error *err)
{
    struct gc_tx *tx;
    int rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    char path[GC_DEPT_PATH_MAX];
    json_t *obj = NULL;
    rc = load(tx, group, &obj, path, err);
    if (!rc)
        rc = may_write(ctx->who, path, group, err);
    int64_t n = 0;
    if (!rc)
        rc = gc_tx_exec(tx, "DELETE FROM security_group_rules WHERE id = ? AND group_id = ?",
                        GC_ARGS(GC_VTXT(rule), GC_VTXT(group)), &n, err);
    if (!rc && n == 0)
        rc = gc_error_set(err, GC_ENOTFOUND, "rule_id", "rule '%.64s' not found in group '%s'",
                          rule, group);
    const char *dept = obj ? gc_json_str(obj, "department_id") : NULL;
    if (!rc)
        rc = gc_tx_exec(tx,
                        "UPDATE security_groups SET updated_at = ?, version = version + 1"
                        " WHERE id = ?",
                        GC_ARGS(GC_VINT_(gc_now_ms()), GC_VTXT(group)), NULL, err);
    if (!rc)
        rc = queue_apply(tx, ctx, group, dept, err);
    json_t *detail = json_pack("{s:s}", "rule_id", rule);
    rc = commit_audited(tx, ctx, "security_group.rule_delete", group, dept, path, detail, rc,
                        err);
    json_decref(detail);
    json_decref(obj);
    return rc;
}

int gc_sg_attach(struct gc_tx *tx, const char *vm_dept_path, const char *group,
                 const char *vm_id, struct gc_error *err)
{
    char path[GC_DEPT_PATH_MAX];
    json_t *obj = NULL;
    int rc = load(tx, group, &obj, path, err);
    json_decref(obj);
    if (rc == GC_ENOTFOUND || (!rc && path[0] && strncmp(vm_dept_path, path, strlen(path)) != 0))
        return gc_error_set(err, GC_EINVAL, "security_groups",
                            "security group '%.64s' not found", group);
    if (rc)
        return rc;
    return gc_tx_exec(tx, "INSERT INTO vm_security_groups (vm_id, group_id) VALUES (?, ?)",
                      GC_ARGS(GC_VTXT(vm_id), GC_VTXT(group)), NULL, err);
}
