/* Virtual machines: the rules (who may create and operate which VM, in which department),
 * placement onto a host inside the creating transaction, and the jobs that carry the work
 * out (run by sched/vmjobs.c through the compute driver). */
#include "core/core.h"

#include "core/validate.h"
#include "crypto/crypto.h"
#include "util/buf.h"
#include "util/mem.h"
#include "util/timeutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VM_COLS                                                                              \
    "v.id, v.name, v.department_id, v.host_id, v.flavor_id, v.image_id, v.state,"            \
    " v.power_state, v.vcpus, v.memory_mib, v.disk_gib, v.domain_name, v.last_error,"        \
    " v.created_by, v.created_at, v.updated_at, v.version, COALESCE(d.path, ''), v.drift,"     \
    " v.server_group_id, length(CAST(v.user_data AS BLOB)), v.user_data_sm3"
#define VM_FROM " FROM vms v JOIN departments d ON d.id = v.department_id"

static json_t *vm_json(struct gc_rows *r, char *path)
{
    json_t *o = json_object();
    static const char *const text[] = {"id", "name", "department_id", "host_id", "flavor_id",
                                       "image_id", "state", "power_state"};
    for (int i = 0; i < 8; i++)
        json_object_set_new(o, text[i], gc_rows_null(r, i) ? json_null()
                                                           : json_string(gc_rows_text(r, i)));
    json_object_set_new(o, "vcpus", json_integer(gc_rows_int(r, 8)));
    json_object_set_new(o, "memory_mib", json_integer(gc_rows_int(r, 9)));
    json_object_set_new(o, "disk_gib", json_integer(gc_rows_int(r, 10)));
    json_object_set_new(o, "domain_name", json_string(gc_rows_text(r, 11)));
    json_object_set_new(o, "last_error", json_string(gc_rows_text(r, 12)));
    json_object_set_new(o, "drift", json_string(gc_rows_text(r, 18)));
    json_object_set_new(o, "server_group_id",
                        gc_rows_null(r, 19) ? json_null() : json_string(gc_rows_text(r, 19)));
    /* the user data itself (it may hold secrets) is never shown: its size and digest are */
    json_object_set_new(o, "user_data_bytes", json_integer(gc_rows_int(r, 20)));
    json_object_set_new(o, "user_data_sm3",
                        gc_rows_int(r, 20) ? json_string(gc_rows_text(r, 21)) : json_null());
    json_object_set_new(o, "created_by",
                        gc_rows_null(r, 13) ? json_null() : json_string(gc_rows_text(r, 13)));
    json_object_set_new(o, "created_at", gc_json_time(gc_rows_int(r, 14)));
    json_object_set_new(o, "updated_at", gc_json_time(gc_rows_int(r, 15)));
    json_object_set_new(o, "version", json_integer(gc_rows_int(r, 16)));
    if (path)
        snprintf(path, GC_DEPT_PATH_MAX, "%s", gc_rows_text(r, 17));
    return o;
}

static int load(struct gc_tx *tx, const char *id, json_t **out, char *path, struct gc_error *err)
{
    return gc_load_by_id(tx, "SELECT " VM_COLS VM_FROM " WHERE v.id = ?", "virtual machine", id, vm_json, out, path, err);
}

static const struct gc_jfield create_spec[] = {
    {"name", GC_JT_STRING, true, false, 1, 64, GC_CS_CODE},
    {"department_id", GC_JT_STRING, false, false, 1, 64, GC_CS_ANY},
    {"flavor_id", GC_JT_STRING, true, false, 1, 64, GC_CS_ANY},
    {"image_id", GC_JT_STRING, true, false, 1, 64, GC_CS_ANY},
    {"host_id", GC_JT_STRING, false, false, 1, 64, GC_CS_ANY},
    {"start", GC_JT_BOOL, false, false, 0, 0, GC_CS_ANY},
    {"networks", GC_JT_ARRAY, false, false, 0, 4, GC_CS_ANY},
    {"security_groups", GC_JT_ARRAY, false, false, 0, 8, GC_CS_ANY},
    {"zone", GC_JT_STRING, false, false, 1, 64, GC_CS_CODE},
    {"server_group_id", GC_JT_STRING, false, false, 1, 64, GC_CS_ANY},
    /* bounded in bytes below (a character is at least one) */
    {"user_data", GC_JT_STRING, false, false, 0, GC_USER_DATA_MAX, GC_CS_ANY},
};

/* Chooses a host: filters (connected, not in maintenance, architecture, free capacity with
 * the over-commit of the host's zone) then a weigher, in one indexed query over the hosts'
 * usage counters: `spread` takes the most free memory, `pack` the least that still fits
 * (both walk the placement index from one end of the range). The weigher is the zone's when
 * the request names a zone that sets one, else [compute] placement_weigher. Runs inside the
 * creating write transaction, so parallel creates never overfill a host; the caller then
 * adds the VM to the chosen host's counters. */
int gc_vm_place(struct gc_tx *tx, const struct gc_config *cfg, const struct gc_place_req *q,
                char *host_out, struct gc_error *err)
{
    const int64_t cpu_pct = cfg->cpu_overcommit_percent, ram_pct = cfg->ram_overcommit_percent;
    char weigher[16];
    int rc = gc_zone_weigher(tx, cfg, q->zone, weigher, sizeof(weigher), err);
    if (rc)
        return rc;
    struct gc_buf sql;
    gc_buf_init(&sql, GC_BUF_UNLIMITED);
    struct gc_val args[14];
    size_t n = 0;
    (void)gc_buf_adds(&sql, "SELECT id FROM hosts WHERE ");
    if (q->zone) {
        (void)gc_buf_adds(&sql, "zone = ? AND ");
        args[n++] = GC_VTXT(q->zone);
    }
    (void)gc_buf_adds(&sql, "arch = ? AND state = 'connected' AND maintenance = 0"
                            " AND memory_free_mib >= ? AND vcpus_free >= ?");
    args[n++] = GC_VTXT(q->arch);
    args[n++] = GC_VINT_(q->memory_mib);
    args[n++] = GC_VINT_(q->vcpus);
    if (q->host) {
        (void)gc_buf_adds(&sql, " AND id = ?");
        args[n++] = GC_VTXT(q->host);
    }
    if (q->exclude_host) {
        (void)gc_buf_adds(&sql, " AND id <> ?");
        args[n++] = GC_VTXT(q->exclude_host);
    }
    /* the moving VM itself does not count in its group's rules */
    const char *self = q->exclude_vm ? q->exclude_vm : "";
    if (q->group && strcmp(q->policy, "anti-affinity") == 0) {
        (void)gc_buf_adds(&sql, " AND id NOT IN (SELECT host_id FROM vms WHERE"
                                " server_group_id = ? AND host_id IS NOT NULL AND id <> ?)");
        args[n++] = GC_VTXT(q->group);
        args[n++] = GC_VTXT(self);
    } else if (q->group) {
        (void)gc_buf_adds(&sql, " AND (NOT EXISTS (SELECT 1 FROM vms WHERE server_group_id = ?"
                                " AND id <> ?) OR id IN (SELECT host_id FROM vms WHERE"
                                " server_group_id = ? AND id <> ?))");
        args[n++] = GC_VTXT(q->group);
        args[n++] = GC_VTXT(self);
        args[n++] = GC_VTXT(q->group);
        args[n++] = GC_VTXT(self);
    }
    (void)gc_buf_adds(&sql, strcmp(weigher, "pack") == 0 ? " ORDER BY memory_free_mib ASC LIMIT 1"
                                                         : " ORDER BY memory_free_mib DESC LIMIT 1");
    struct gc_rows *r = NULL;
    rc = gc_tx_query(tx, gc_buf_str(&sql), args, n, &r, err);
    gc_buf_release(&sql);
    const char *arch = q->arch, *want_host = q->host;
    const int64_t vcpus = q->vcpus, mem = q->memory_mib;
    host_out[0] = '\0';
    if (!rc && (rc = gc_rows_next(r, err)) > 0) {
        snprintf(host_out, GC_ID_LEN + 1, "%s", gc_rows_text(r, 0));
        rc = 0;
    }
    gc_rows_free(r);
    if (rc < 0 || host_out[0])
        return rc < 0 ? rc : 0;
    /* no host: say why, from the filter that failed */
    r = NULL;
    rc = gc_tx_query(tx,
                     "SELECT h.id, h.state, h.maintenance, h.arch,"
                     " h.cpus * COALESCE(z.cpu_overcommit_percent, ?) / 100 - h.vcpus_used,"
                     " h.memory_mib * COALESCE(z.ram_overcommit_percent, ?) / 100"
                     " - h.memory_used_mib FROM hosts h LEFT JOIN zones z ON z.name = h.zone"
                     " WHERE h.zone = COALESCE(?, h.zone) ORDER BY h.id",
                     GC_ARGS(GC_VINT_(cpu_pct), GC_VINT_(ram_pct), GC_VTXT(q->zone)), &r, err);
    int considered = 0;
    char why[200];
    if (q->zone)
        snprintf(why, sizeof(why), "no hypervisor host is in zone '%s'", q->zone);
    else
        snprintf(why, sizeof(why), "no hypervisor host is registered");
    while (!rc && (rc = gc_rows_next(r, err)) > 0) {
        rc = 0;
        if ((want_host && strcmp(gc_rows_text(r, 0), want_host) != 0) ||
            (q->exclude_host && strcmp(gc_rows_text(r, 0), q->exclude_host) == 0))
            continue;
        considered++;
        if (strcmp(gc_rows_text(r, 1), "connected") != 0)
            snprintf(why, sizeof(why), "no connected host");
        else if (gc_rows_int(r, 2))
            snprintf(why, sizeof(why), "every suitable host is in maintenance");
        else if (strcmp(gc_rows_text(r, 3), arch) != 0)
            snprintf(why, sizeof(why), "no connected host runs architecture %s", arch);
        else if (q->group)
            snprintf(why, sizeof(why),
                     "no host with room for %lld vCPUs and %lld MiB satisfies the %s of the "
                     "server group",
                     (long long)vcpus, (long long)mem, q->policy);
        else
            snprintf(why, sizeof(why),
                     "no host has %lld free vCPUs and %lld MiB of free memory (with "
                     "over-commit)",
                     (long long)vcpus, (long long)mem);
    }
    gc_rows_free(r);
    if (rc < 0)
        return rc;
    if (want_host && considered == 0)
        return gc_error_set(err, GC_EINVAL, "host_id", "host '%.64s' not found", want_host);
    if (q->exclude_host && considered == 0)
        snprintf(why, sizeof(why), "no other hypervisor host is in zone '%s'",
                 q->zone ? q->zone : "default");
    return gc_error_set(err, GC_ECONFLICT, want_host ? "host_id" : "",
                        "cannot place the virtual machine: %s", why);
}

int gc_host_reserve(struct gc_tx *tx, const char *host, int64_t vcpus, int64_t mem,
                    struct gc_error *err)
{
    return gc_tx_exec(tx,
                      "UPDATE hosts SET vcpus_used = vcpus_used + ?, vcpus_free = vcpus_free - ?,"
                      " memory_used_mib = memory_used_mib + ?,"
                      " memory_free_mib = memory_free_mib - ? WHERE id = ?",
                      GC_ARGS(GC_VINT_(vcpus), GC_VINT_(vcpus), GC_VINT_(mem), GC_VINT_(mem),
                              GC_VTXT(host)),
                      NULL, err);
}

/* The free room of hosts from their size, their usage and their zone's ratios (or the
 * [compute] defaults); where is "" (all), "WHERE id = ?" or "WHERE zone = ?". */
static int refresh(struct gc_tx *tx, const struct gc_config *cfg, const char *where,
                   const char *arg, struct gc_error *err)
{
    char sql[512];
    snprintf(sql, sizeof(sql),
             "UPDATE hosts SET vcpus_free = cpus * COALESCE((SELECT z.cpu_overcommit_percent"
             " FROM zones z WHERE z.name = hosts.zone), ?) / 100 - vcpus_used,"
             " memory_free_mib = memory_mib * COALESCE((SELECT z.ram_overcommit_percent"
             " FROM zones z WHERE z.name = hosts.zone), ?) / 100 - memory_used_mib %s",
             where);
    struct gc_val a[3] = {GC_VINT_(cfg->cpu_overcommit_percent),
                          GC_VINT_(cfg->ram_overcommit_percent), GC_VTXT(arg)};
    return gc_tx_exec(tx, sql, a, arg ? 3 : 2, NULL, err);
}

int gc_host_capacity_refresh(struct gc_tx *tx, const struct gc_config *cfg, const char *host,
                             struct gc_error *err)
{
    return refresh(tx, cfg, host ? "WHERE id = ?" : "", host, err);
}

int gc_zone_capacity_refresh(struct gc_tx *tx, const struct gc_config *cfg, const char *zone,
                             struct gc_error *err)
{
    return refresh(tx, cfg, "WHERE zone = ?", zone, err);
}

int gc_zone_weigher(struct gc_tx *tx, const struct gc_config *cfg, const char *zone, char *out,
                    size_t cap, struct gc_error *err)
{
    snprintf(out, cap, "%s", cfg->placement_weigher);
    if (!zone)
        return 0;
    struct gc_rows *r = NULL;
    int rc = gc_tx_query(tx, "SELECT placement_weigher FROM zones WHERE name = ?",
                         GC_ARGS(GC_VTXT(zone)), &r, err);
    if (!rc && (rc = gc_rows_next(r, err)) > 0) {
        rc = 0;
        if (!gc_rows_null(r, 0))
            snprintf(out, cap, "%s", gc_rows_text(r, 0));
    }
    gc_rows_free(r);
    return rc;
}

/* Audits action on the virtual machine, commits, and answers with its job. */
static int finish_with_job(struct gc_tx *tx, const struct gc_ctx *ctx, const char *action,
                  const char *id, const char *dept, const char *path, const char *job,
                  json_t *detail, int rc, json_t **out, struct gc_error *err)
{
    struct gc_audit_event ev = {.action = action,
                                .resource_type = "vm",
                                .resource_id = id,
                                .department_id = dept,
                                .department_path = path,
                                .outcome = GC_OUTCOME_SUCCESS,
                                .detail = detail};
    return gc_job_commit(tx, ctx, &ev, job, rc, out, err);
}

int gc_vm_create(const struct gc_ctx *ctx, json_t *in, json_t **out, struct gc_error *err)
{
    int rc = gc_require(ctx->who, GC_P_VM_WRITE, err);
    if (!rc)
        rc = gc_json_check(in, create_spec, sizeof(create_spec) / sizeof(create_spec[0]), err);
    if (rc)
        return rc;
    const char *dept = gc_json_str(in, "department_id");
    const char *host = gc_json_str(in, "host_id");
    if (!dept && !ctx->who->department_id[0])
        return gc_error_set(err, GC_EINVAL, "department_id",
                            "give the department_id the virtual machine belongs to");
    if (!dept)
        dept = ctx->who->department_id;
    if (host && !gc_role_is_platform(ctx->who->role))
        return gc_error_set(err, GC_EPERM, "host_id",
                            "only platform administrators and operators choose the host");
    const char *udata = gc_json_str(in, "user_data");
    size_t ulen = udata ? strlen(udata) : 0;
    if (ulen > GC_USER_DATA_MAX)
        return gc_error_set(err, GC_EINVAL, "user_data",
                            "user_data is %zu bytes: at most %d bytes (64 KiB) are accepted",
                            ulen, GC_USER_DATA_MAX);
    char usm3[GC_SM3_HEX_LEN + 1] = "";
    if (ulen)
        gc_sm3_hex(udata, ulen, usm3);
    json_t *jstart = json_object_get(in, "start");
    bool start = !jstart || json_is_true(jstart);
    struct gc_tx *tx;
    rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    char path[GC_DEPT_PATH_MAX];
    rc = gc_dept_path(tx, dept, path, err);
    if (rc == GC_ENOTFOUND || (!rc && !gc_in_scope(ctx->who, path)))
        rc = gc_error_set(err, GC_EINVAL, "department_id", "department '%.64s' not found", dept);
    int64_t vcpus = 0, mem = 0, disk = 0, min_mem = 0, min_disk = 0;
    char arch[33] = "", istate[16] = "", ikind[16] = "";
    struct gc_rows *r = NULL;
    const char *flavor = gc_json_str(in, "flavor_id"), *image = gc_json_str(in, "image_id");
    if (!rc && !gc_id_valid(flavor))
        rc = gc_error_set(err, GC_EINVAL, "flavor_id", "flavor '%.64s' not found", flavor);
    if (!rc && !gc_id_valid(image))
        rc = gc_error_set(err, GC_EINVAL, "image_id", "image '%.64s' not found", image);
    if (!rc)
        rc = gc_tx_query(tx, "SELECT vcpus, memory_mib, disk_gib FROM flavors WHERE id = ?",
                         GC_ARGS(GC_VTXT(flavor)), &r, err);
    if (!rc) {
        rc = gc_rows_next(r, err);
        if (rc > 0) {
            vcpus = gc_rows_int(r, 0);
            mem = gc_rows_int(r, 1);
            disk = gc_rows_int(r, 2);
            rc = 0;
        } else if (rc == 0) {
            rc = gc_error_set(err, GC_EINVAL, "flavor_id", "flavor '%s' not found", flavor);
        }
        gc_rows_free(r);
        r = NULL;
    }
    if (!rc)
        rc = gc_tx_query(tx,
                         "SELECT arch, state, kind, min_memory_mib, min_disk_gib FROM images"
                         " WHERE id = ?",
                         GC_ARGS(GC_VTXT(image)), &r, err);
    if (!rc) {
        rc = gc_rows_next(r, err);
        if (rc > 0) {
            snprintf(arch, sizeof(arch), "%s", gc_rows_text(r, 0));
            snprintf(istate, sizeof(istate), "%s", gc_rows_text(r, 1));
            snprintf(ikind, sizeof(ikind), "%s", gc_rows_text(r, 2));
            min_mem = gc_rows_int(r, 3);
            min_disk = gc_rows_int(r, 4);
            rc = 0;
        } else if (rc == 0) {
            rc = gc_error_set(err, GC_EINVAL, "image_id", "image '%s' not found", image);
        }
        gc_rows_free(r);
    }
    if (!rc && strcmp(istate, "active") != 0)
        rc = gc_error_set(err, GC_ECONFLICT, "image_id",
                          "image '%s' is %s, not active: %s", image, istate,
                          strcmp(istate, "uploading") == 0
                              ? "upload its file first (PUT /v1/images/{id}/file)"
                              : strcmp(istate, "importing") == 0
                                    ? "wait for its import to finish"
                                    : "register it again");
    if (!rc && (mem < min_mem || disk < min_disk))
        rc = gc_error_set(err, GC_EINVAL, "flavor_id",
                          "the flavor is too small for the image (it needs %lld MiB of memory and "
                          "%lld GiB of disk)",
                          (long long)min_mem, (long long)min_disk);
    if (!rc && strcmp(ikind, "disk") == 0 && disk < 1)
        rc = gc_error_set(err, GC_EINVAL, "flavor_id",
                          "a disk image needs a flavor with disk_gib of at least 1");
    /* quota reservation and placement in the same transaction as the insert */
    if (!rc)
        rc = gc_quota_check(tx, path, 1, vcpus, mem, disk, err);
    const char *group = gc_json_str(in, "server_group_id");
    char policy[16] = "";
    if (!rc && group)
        rc = gc_sgroup_policy(tx, path, group, policy, err);
    char host_id[GC_ID_LEN + 1];
    struct gc_place_req preq = {.arch = arch,
                                .vcpus = vcpus,
                                .memory_mib = mem,
                                .host = host,
                                .zone = gc_json_str(in, "zone"),
                                .group = group,
                                .policy = policy};
    if (!rc)
        rc = gc_vm_place(tx, ctx->cfg, &preq, host_id, err);
    if (!rc)
        rc = gc_host_reserve(tx, host_id, vcpus, mem, err);
    char id[GC_ID_LEN + 1], job[GC_ID_LEN + 1], domain[64];
    gc_id_new(id);
    snprintf(domain, sizeof(domain), "gc-%s", id);
    int64_t now = gc_now_ms();
    const char *name = gc_json_str(in, "name");
    if (!rc)
        rc = gc_tx_exec(tx,
                        "INSERT INTO vms (id, name, department_id, host_id, flavor_id, image_id,"
                        " state, vcpus, memory_mib, disk_gib, domain_name, created_by,"
                        " created_at, updated_at, version, server_group_id, user_data,"
                        " user_data_sm3)"
                        " VALUES (?, ?, ?, ?, ?, ?, 'building', ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)",
                        GC_ARGS(GC_VTXT(id), GC_VTXT(name), GC_VTXT(dept), GC_VTXT(host_id),
                                GC_VTXT(flavor), GC_VTXT(image), GC_VINT_(vcpus), GC_VINT_(mem),
                                GC_VINT_(disk), GC_VTXT(domain), GC_VTXT(ctx->who->user_id),
                                GC_VINT_(now), GC_VINT_(now), GC_VTXT(group),
                                GC_VTXT(udata ? udata : ""), GC_VTXT(usm3)),
                        NULL, err);
    if (!rc)
        rc = gc_vm_lifetime(tx, id, dept, true, now, err);
    if (rc == GC_ECONFLICT && strstr(err->msg, "name"))
        rc = gc_error_set(err, GC_ECONFLICT, "name",
                          "the department already has a virtual machine named '%s'", name);
    /* one interface per network, addresses from IPAM in this same transaction */
    json_t *nets = json_object_get(in, "networks");
    json_t *nics = json_array();
    size_t ni;
    json_t *nv;
    json_array_foreach(nets, ni, nv) {
        if (rc)
            break;
        if (!json_is_string(nv)) {
            rc = gc_error_set(err, GC_EINVAL, "networks", "networks[%zu]: expected a network id",
                              ni);
            break;
        }
        for (size_t k = 0; k < ni && !rc; k++)
            if (json_equal(json_array_get(nets, k), nv))
                rc = gc_error_set(err, GC_EINVAL, "networks",
                                  "networks[%zu]: network '%s' is given twice", ni,
                                  json_string_value(nv));
        json_t *nic = NULL;
        if (!rc)
            rc = gc_net_attach(tx, path, json_string_value(nv), id, (int)ni, &nic, err);
        if (!rc)
            json_array_append_new(nics, nic);
    }
    json_t *groups = json_object_get(in, "security_groups");
    json_array_foreach(groups, ni, nv) {
        if (rc)
            break;
        if (!json_is_string(nv))
            rc = gc_error_set(err, GC_EINVAL, "security_groups",
                              "security_groups[%zu]: expected a security group id", ni);
        else
            rc = gc_sg_attach(tx, path, json_string_value(nv), id, err);
        if (rc == GC_ECONFLICT)
            rc = gc_error_set(err, GC_EINVAL, "security_groups",
                              "security_groups[%zu]: group '%s' is given twice", ni,
                              json_string_value(nv));
    }
    if (!rc) {
        json_t *params = json_pack("{s:s,s:b}", "vm_id", id, "start", start);
        rc = gc_job_submit(tx, ctx, "vm.create", params, dept, "vm", id, job, err);
        json_decref(params);
    }
    json_t *detail = json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:o}", "name", name, "host_id", host_id,
                               "flavor_id", flavor ? flavor : "", "image_id", image ? image : "",
                               "vcpus", (json_int_t)vcpus, "memory_mib", (json_int_t)mem, "nics",
                               nics);
    /* never the user data itself: it can hold secrets */
    if (ulen) {
        json_object_set_new(detail, "user_data_bytes", json_integer((json_int_t)ulen));
        json_object_set_new(detail, "user_data_sm3", json_string(usm3));
    }
    rc = finish_with_job(tx, ctx, "vm.create", id, dept, path, job, detail, rc, out, err);
    json_decref(detail);
    return rc;
}

int gc_vm_get(const struct gc_ctx *ctx, const char *id, json_t **out, struct gc_error *err)
{
    struct gc_tx *tx;
    int rc = gc_tx_begin(ctx->store, GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    char path[GC_DEPT_PATH_MAX];
    json_t *obj = NULL, *nics = NULL;
    rc = load(tx, id, &obj, path, err);
    if (!rc)
        rc = gc_vm_nics(tx, id, &nics, err);
    if (!rc)
        json_object_set_new(obj, "nics", nics);
    struct gc_rows *r = NULL;
    json_t *groups = json_array();
    if (!rc)
        rc = gc_tx_query(tx, "SELECT group_id FROM vm_security_groups WHERE vm_id = ?"
                             " ORDER BY group_id",
                         GC_ARGS(GC_VTXT(id)), &r, err);
    while (!rc && (rc = gc_rows_next(r, err)) > 0) {
        rc = 0;
        json_array_append_new(groups, json_string(gc_rows_text(r, 0)));
    }
    if (rc > 0)
        rc = 0;
    gc_rows_free(r);
    if (!rc && obj)
        json_object_set_new(obj, "security_groups", groups);
    else
        json_decref(groups);
    gc_tx_rollback(tx);
    if (!rc)
        rc = gc_authorize(ctx->who, GC_P_VM_READ, path, "virtual machine", id, err);
    if (rc) {
        json_decref(obj);
        return rc;
    }
    *out = obj;
    return 0;
}

static json_t *vm_row(struct gc_rows *r, const struct gc_principal *who)
{
    (void)who;
    return vm_json(r, NULL);
}

int gc_vm_list(const struct gc_ctx *ctx, json_t *filters, int limit, const char *cursor,
               json_t **items, char **next_cursor, struct gc_error *err)
{
    int rc = gc_require(ctx->who, GC_P_VM_READ, err);
    if (!rc)
        rc = gc_page_limit(limit, &limit, err);
    if (!rc)
        rc = gc_page_cursor_id(cursor, err);
    if (rc)
        return rc;
    struct gc_buf sql;
    gc_buf_init(&sql, GC_BUF_UNLIMITED);
    struct gc_val args[10];
    size_t n = 0;
    (void)gc_buf_adds(&sql, "SELECT " VM_COLS VM_FROM " WHERE v.id > ?");
    args[n++] = GC_VTXT(cursor ? cursor : "");
    static const char *const f[][2] = {{"department_id", "v.department_id"},
                                       {"host_id", "v.host_id"},
                                       {"state", "v.state"},
                                       {"name", "v.name"}};
    for (size_t i = 0; i < 4; i++) {
        const char *v = gc_json_str(filters, f[i][0]);
        if (v) {
            (void)gc_buf_addf(&sql, " AND %s = ?", f[i][1]);
            args[n++] = GC_VTXT(v);
        }
    }
    char prefix[GC_DEPT_PATH_MAX + 2];
    if (!gc_role_is_platform(ctx->who->role)) {
        if (ctx->who->role == GC_ROLE_DEPARTMENT_ADMIN) {
            snprintf(prefix, sizeof(prefix), "%s%%", ctx->who->dept_path);
            (void)gc_buf_adds(&sql, " AND d.path LIKE ?");
        } else {
            snprintf(prefix, sizeof(prefix), "%s", ctx->who->dept_path);
            (void)gc_buf_adds(&sql, " AND d.path = ?");
        }
        args[n++] = GC_VTXT(prefix);
    }
    (void)gc_buf_adds(&sql, " ORDER BY v.id LIMIT ?");
    args[n++] = GC_VINT_(limit + 1);
    rc = gc_page_run(ctx, gc_buf_str(&sql), args, n, limit, "id", vm_row, items,
                     next_cursor, err);
    gc_buf_release(&sql);
    return rc;
}

static int queue_vm_job(const struct gc_ctx *ctx, const char *id, const char *kind,
                        const char *action, json_t *params, json_t **out, struct gc_error *err)
{
    struct gc_tx *tx;
    int rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    char path[GC_DEPT_PATH_MAX], job[GC_ID_LEN + 1];
    json_t *obj = NULL;
    rc = load(tx, id, &obj, path, err);
    if (!rc)
        rc = gc_authorize(ctx->who, GC_P_VM_WRITE, path, "virtual machine", id, err);
    if (!rc)
        rc = gc_job_busy(tx, "vm", id, "virtual machine", err);
    const char *state = obj ? gc_json_str(obj, "state") : "";
    if (!rc && strcmp(state, "building") == 0 && strcmp(kind, "vm.delete") != 0)
        rc = gc_error_set(err, GC_ECONFLICT, "id", "virtual machine '%s' is still being built",
                          id);
    if (!rc && strcmp(state, "migrating") == 0)
        rc = gc_error_set(err, GC_ECONFLICT, "id",
                          "virtual machine '%s' is moving to another host; try again when it "
                          "has arrived",
                          id);
    char dept[GC_ID_LEN + 1] = "";
    if (obj)
        snprintf(dept, sizeof(dept), "%s", gc_json_str(obj, "department_id"));
    if (!rc && params)
        json_object_set_new(params, "vm_id", json_string(id));
    if (!rc)
        rc = gc_job_submit(tx, ctx, kind, params, dept, "vm", id, job, err);
    if (!rc && strcmp(kind, "vm.delete") == 0)
        rc = gc_tx_exec(tx,
                        "UPDATE vms SET state = 'deleting', updated_at = ?, version = version + 1"
                        " WHERE id = ?",
                        GC_ARGS(GC_VINT_(gc_now_ms()), GC_VTXT(id)), NULL, err);
    rc = finish_with_job(tx, ctx, action, id, dept, path, job, obj, rc, out, err);
    json_decref(obj);
    return rc;
}

int gc_vm_action(const struct gc_ctx *ctx, const char *id, const char *action, json_t **out,
                 struct gc_error *err)
{
    static const char *const actions[][3] = {{"start", "vm.start", "vm.start"},
                                             {"stop", "vm.stop", "vm.stop"},
                                             {"force_stop", "vm.stop", "vm.stop"},
                                             {"reboot", "vm.reboot", "vm.reboot"}};
    for (size_t i = 0; i < 4; i++)
        if (strcmp(action, actions[i][0]) == 0) {
            json_t *params = json_pack("{s:b}", "force", strcmp(action, "force_stop") == 0);
            int rc = queue_vm_job(ctx, id, actions[i][1], actions[i][2], params, out, err);
            json_decref(params);
            return rc;
        }
    return gc_error_set(err, GC_EINVAL, "action", "unknown action '%.32s'", action);
}

int gc_vm_delete(const struct gc_ctx *ctx, const char *id, json_t **out, struct gc_error *err)
{
    json_t *params = json_object();
    int rc = queue_vm_job(ctx, id, "vm.delete", "vm.delete", params, out, err);
    json_decref(params);
    return rc;
}

int gc_vm_resize(const struct gc_ctx *ctx, const char *id, json_t *in, json_t **out,
                 struct gc_error *err)
{
    static const struct gc_jfield spec[] = {
        {"flavor_id", GC_JT_STRING, true, false, 1, 64, GC_CS_ANY}};
    int rc = gc_json_check(in, spec, 1, err);
    if (rc)
        return rc;
    const char *flavor = gc_json_str(in, "flavor_id");
    struct gc_tx *tx;
    rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    char path[GC_DEPT_PATH_MAX], job[GC_ID_LEN + 1];
    json_t *obj = NULL;
    rc = load(tx, id, &obj, path, err);
    if (!rc)
        rc = gc_authorize(ctx->who, GC_P_VM_WRITE, path, "virtual machine", id, err);
    if (!rc)
        rc = gc_job_busy(tx, "vm", id, "virtual machine", err);
    if (!rc && (strcmp(gc_json_str(obj, "state"), "stopped") != 0 ||
                strcmp(gc_json_str(obj, "power_state"), "shutoff") != 0))
        rc = gc_error_set(err, GC_ECONFLICT, "id",
                          "virtual machine '%s' must be stopped (shut off) to be resized", id);
    int64_t vcpus = 0, mem = 0, disk = 0;
    struct gc_rows *r = NULL;
    if (!rc && !gc_id_valid(flavor))
        rc = gc_error_set(err, GC_EINVAL, "flavor_id", "flavor '%.64s' not found", flavor);
    if (!rc)
        rc = gc_tx_query(tx, "SELECT vcpus, memory_mib, disk_gib FROM flavors WHERE id = ?",
                         GC_ARGS(GC_VTXT(flavor)), &r, err);
    if (!rc) {
        rc = gc_rows_next(r, err);
        if (rc > 0) {
            vcpus = gc_rows_int(r, 0);
            mem = gc_rows_int(r, 1);
            disk = gc_rows_int(r, 2);
            rc = 0;
        } else if (rc == 0) {
            rc = gc_error_set(err, GC_EINVAL, "flavor_id", "flavor '%s' not found", flavor);
        }
    }
    gc_rows_free(r);
    int64_t dv = rc ? 0 : vcpus - json_integer_value(json_object_get(obj, "vcpus"));
    int64_t dm = rc ? 0 : mem - json_integer_value(json_object_get(obj, "memory_mib"));
    if (!rc && disk < json_integer_value(json_object_get(obj, "disk_gib")))
        rc = gc_error_set(err, GC_EINVAL, "flavor_id",
                          "the flavor's disk is smaller than the VM's: disks do not shrink");
    int64_t dd = rc ? 0 : disk - json_integer_value(json_object_get(obj, "disk_gib"));
    const char *host = obj ? gc_json_str(obj, "host_id") : NULL;
    /* the host must have room for the difference, like a placement on that host */
    int64_t room = 0;
    if (!rc && (dv > 0 || dm > 0)) {
        rc = gc_tx_query_int(tx,
                             "SELECT COUNT(*) FROM hosts WHERE id = ? AND vcpus_free >= ? AND"
                             " memory_free_mib >= ?",
                             GC_ARGS(GC_VTXT(host), GC_VINT_(dv > 0 ? dv : 0),
                                     GC_VINT_(dm > 0 ? dm : 0)),
                             &room, err);
        if (!rc && !room)
            rc = gc_error_set(err, GC_ECONFLICT, "flavor_id",
                              "the VM's host has no room for %lld more vCPUs and %lld MiB "
                              "(with over-commit)",
                              (long long)dv, (long long)dm);
    }
    /* a grown root disk counts against disk_gib like a new one */
    if (!rc && (dv > 0 || dm > 0 || dd > 0))
        rc = gc_quota_check(tx, path, 0, dv > 0 ? dv : 0, dm > 0 ? dm : 0, dd, err);
    if (!rc && host)
        rc = gc_host_reserve(tx, host, dv, dm, err);
    if (!rc)
        rc = gc_tx_exec(tx,
                        "UPDATE vms SET flavor_id = ?, vcpus = ?, memory_mib = ?, disk_gib = ?,"
                        " updated_at = ?, version = version + 1 WHERE id = ?",
                        GC_ARGS(GC_VTXT(flavor), GC_VINT_(vcpus), GC_VINT_(mem), GC_VINT_(disk),
                                GC_VINT_(gc_now_ms()), GC_VTXT(id)),
                        NULL, err);
    char dept[GC_ID_LEN + 1] = "";
    if (obj)
        snprintf(dept, sizeof(dept), "%s", gc_json_str(obj, "department_id"));
    if (!rc) {
        json_t *p = json_pack("{s:s}", "vm_id", id);
        rc = gc_job_submit(tx, ctx, "vm.resize", p, dept, "vm", id, job, err);
        json_decref(p);
    }
    json_t *detail = json_pack("{s:O?,s:s,s:I,s:I,s:I}", "before", obj, "flavor_id", flavor,
                               "vcpus", (json_int_t)vcpus, "memory_mib", (json_int_t)mem,
                               "disk_gib", (json_int_t)disk);
    rc = finish_with_job(tx, ctx, "vm.resize", id, dept, path, job, detail, rc, out, err);
    json_decref(detail);
    json_decref(obj);
    return rc;
}

int gc_vm_console(const struct gc_ctx *ctx, const char *id, char **text, struct gc_error *err)
{
    struct gc_tx *tx;
    int rc = gc_tx_begin(ctx->store, GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    char path[GC_DEPT_PATH_MAX];
    json_t *obj = NULL;
    rc = load(tx, id, &obj, path, err);
    int64_t local = 0;
    if (!rc)
        rc = gc_tx_query_int(tx,
                             "SELECT COUNT(*) FROM hosts WHERE id = ? AND (uri LIKE 'qemu:///%'"
                             " OR uri LIKE 'test:///%')",
                             GC_ARGS(GC_VTXT(gc_json_str(obj, "host_id"))), &local, err);
    gc_tx_rollback(tx);
    if (!rc)
        rc = gc_authorize(ctx->who, GC_P_VM_READ, path, "virtual machine", id, err);
    if (!rc && !local)
        rc = gc_error_set(err, GC_EUNSUPPORTED, "id",
                          "the console log of a VM on a remote host cannot be read yet; read %s "
                          "on the host",
                          ctx->cfg->console_log_dir);
    char file[1200];
    if (!rc)
        snprintf(file, sizeof(file), "%s/%s-console.log", ctx->cfg->console_log_dir,
                 gc_json_str(obj, "domain_name"));
    json_decref(obj);
    if (rc)
        return rc;
    FILE *f = fopen(file, "rb");
    if (!f && errno == ENOENT) {
        *text = gc_strdup(""); /* nothing printed yet */
        return 0;
    }
    if (!f)
        return gc_error_set(err, GC_EBUSY, "id", "cannot read the console log %s: %s", file,
                            strerror(errno));
    /* the last 64 KiB: a console log grows without bound */
    long cap = 65536;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    long from = size > cap ? size - cap : 0;
    fseek(f, from, SEEK_SET);
    char *buf = gc_malloc((size_t)(size - from) + 1);
    size_t n = fread(buf, 1, (size_t)(size - from), f);
    buf[n] = '\0';
    fclose(f);
    /* the guest writes bytes, the API answers UTF-8 text: what is not valid UTF-8 (raw bytes,
     * a character cut by the 64 KiB window) becomes '?', NUL a space */
    for (size_t i = 0; i < n;) {
        unsigned char b = (unsigned char)buf[i];
        size_t len = b < 0x80 ? 1 : b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3
                   : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
        bool ok = len > 0 && i + len <= n;
        for (size_t k = 1; ok && k < len; k++)
            ok = ((unsigned char)buf[i + k] & 0xc0) == 0x80;
        if (!ok) {
            buf[i++] = '?';
            continue;
        }
        if (b == 0)
            buf[i] = ' ';
        i += len;
    }
    *text = buf;
    return 0;
}

/* ---- VNC console ---- */

int (*gc_vm_vnc_probe)(const char *host_id, const char *uuid, char *listen, int *port,
                       char *password, struct gc_error *err);

/* The host part of a libvirt URI (driver+transport://user@host:port/path), or "" (local). */
static void uri_host(const char *uri, char *out, size_t cap)
{
    out[0] = '\0';
    const char *p = strstr(uri, "://");
    if (!p)
        return;
    p += 3;
    size_t n = strcspn(p, "/?");
    const char *at = memchr(p, '@', n);
    if (at) {
        n -= (size_t)(at + 1 - p);
        p = at + 1;
    }
    if (*p == '[') { /* [IPv6]:port */
        const char *e = memchr(p, ']', n);
        if (e)
            snprintf(out, cap, "%.*s", (int)(e - p - 1), p + 1);
        return;
    }
    const char *colon = memchr(p, ':', n);
    snprintf(out, cap, "%.*s", (int)(colon ? (size_t)(colon - p) : n), p);
}

int gc_vm_vnc(const struct gc_ctx *ctx, const char *id, json_t **out, struct gc_error *err)
{
    struct gc_tx *tx;
    int rc = gc_tx_begin(ctx->store, GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    char path[GC_DEPT_PATH_MAX], uri[1100] = "", hostname[256] = "";
    json_t *obj = NULL;
    rc = load(tx, id, &obj, path, err);
    struct gc_rows *r = NULL;
    if (!rc && !json_is_null(json_object_get(obj, "host_id")))
        rc = gc_tx_query(tx, "SELECT uri, hostname FROM hosts WHERE id = ?",
                         GC_ARGS(GC_VTXT(gc_json_str(obj, "host_id"))), &r, err);
    if (!rc && r && gc_rows_next(r, err) > 0) {
        snprintf(uri, sizeof(uri), "%s", gc_rows_text(r, 0));
        snprintf(hostname, sizeof(hostname), "%s", gc_rows_text(r, 1));
    }
    gc_rows_free(r);
    gc_tx_rollback(tx);
    /* the console is the VM's keyboard: those who may operate it, but not department users
     * (their VMs' consoles are their administrators' to hand out) nor the read-only platform
     * roles (auditor, supervisor) */
    if (!rc)
        rc = gc_authorize(ctx->who, GC_P_VM_WRITE, path, "virtual machine", id, err);
    if (!rc && !gc_role_is_platform(ctx->who->role) &&
        ctx->who->role != GC_ROLE_DEPARTMENT_ADMIN)
        rc = gc_error_set(err, GC_EPERM, "",
                          "only platform administrators and operators and the department's "
                          "administrators may open the console of virtual machine '%s'",
                          id);
    const char *state = obj ? gc_json_str(obj, "state") : "";
    if (!rc && (!uri[0] || strcmp(state, "running") != 0))
        rc = gc_error_set(err, GC_ECONFLICT, "id",
                          "virtual machine '%s' is %s: only a running VM has a console", id,
                          state);
    if (!rc && !gc_vm_vnc_probe)
        rc = gc_error_set(err, GC_EUNSUPPORTED, "", "no host manager runs");
    char listen[64] = "", password[64] = "", host[256] = "";
    int port = 0;
    if (!rc && (rc = gc_vm_vnc_probe(gc_json_str(obj, "host_id"), id, listen, &port, password,
                                     err)) == GC_ENOTFOUND)
        rc = gc_error_set(err, GC_ECONFLICT, "id",
                          "the host of virtual machine '%s' has no domain for it", id);
    if (!rc) {
        /* a wildcard listen address: reach it at the host's own address */
        bool any = !strcmp(listen, "0.0.0.0") || !strcmp(listen, "::") || !listen[0];
        uri_host(uri, host, sizeof(host));
        if (!any)
            snprintf(host, sizeof(host), "%s", listen);
        else if (!host[0])
            snprintf(host, sizeof(host), "%s", hostname[0] ? hostname : "127.0.0.1");
        *out = json_pack("{s:s,s:s,s:s,s:i,s:s?}", "vm_id", id, "host_id",
                         gc_json_str(obj, "host_id"), "host", host, "port", port, "password",
                         password[0] ? password : NULL);
        json_object_set_new(*out, "listen", json_string(listen));
    }
    json_decref(obj);
    return rc;
}

/* ---- migration ---- */

int gc_vm_migration_begin(struct gc_tx *tx, const struct gc_config *cfg, const char *id,
                          const char *want_host, char *dest, struct gc_error *err)
{
    struct gc_rows *r = NULL;
    int rc = gc_tx_query(tx,
                         "SELECT v.state, COALESCE(v.host_id, ''), v.vcpus, v.memory_mib, i.arch,"
                         " COALESCE(h.zone, ''), COALESCE(h.state, ''),"
                         " COALESCE(v.server_group_id, ''), COALESCE(g.policy, '')"
                         " FROM vms v JOIN images i ON i.id = v.image_id"
                         " LEFT JOIN hosts h ON h.id = v.host_id"
                         " LEFT JOIN server_groups g ON g.id = v.server_group_id WHERE v.id = ?",
                         GC_ARGS(GC_VTXT(id)), &r, err);
    char state[32] = "", src[GC_ID_LEN + 1] = "", arch[33] = "", zone[65] = "",
         hstate[32] = "", group[GC_ID_LEN + 1] = "", policy[32] = "";
    int64_t vcpus = 0, mem = 0;
    if (!rc) {
        rc = gc_rows_next(r, err);
        if (rc > 0) {
            snprintf(state, sizeof(state), "%s", gc_rows_text(r, 0));
            snprintf(src, sizeof(src), "%s", gc_rows_text(r, 1));
            vcpus = gc_rows_int(r, 2);
            mem = gc_rows_int(r, 3);
            snprintf(arch, sizeof(arch), "%s", gc_rows_text(r, 4));
            snprintf(zone, sizeof(zone), "%s", gc_rows_text(r, 5));
            snprintf(hstate, sizeof(hstate), "%s", gc_rows_text(r, 6));
            snprintf(group, sizeof(group), "%s", gc_rows_text(r, 7));
            snprintf(policy, sizeof(policy), "%s", gc_rows_text(r, 8));
            rc = 0;
        } else if (rc == 0) {
            rc = gc_error_set(err, GC_ENOTFOUND, "id", "virtual machine '%s' not found", id);
        }
    }
    gc_rows_free(r);
    if (rc)
        return rc;
    if (strcmp(state, "running") != 0 && strcmp(state, "stopped") != 0)
        return gc_error_set(err, GC_ECONFLICT, "id",
                            "virtual machine '%s' is %s: only a running or stopped VM can move",
                            id, state);
    if (!src[0] || strcmp(hstate, "connected") != 0)
        return gc_error_set(err, GC_ECONFLICT, "id",
                            "the host of virtual machine '%s' is not connected: a VM moves only "
                            "from a connected host",
                            id);
    int64_t snaps = 0;
    rc = gc_tx_query_int(tx,
                         "SELECT COUNT(*) FROM volume_snapshots s JOIN volumes v"
                         " ON v.id = s.volume_id WHERE v.vm_id = ?",
                         GC_ARGS(GC_VTXT(id)), &snaps, err);
    if (rc)
        return rc;
    if (snaps > 0)
        return gc_error_set(err, GC_ECONFLICT, "id",
                            "volumes of virtual machine '%s' have %lld snapshots, which cannot "
                            "follow it to another host: delete them, or detach the volumes, "
                            "first",
                            id, (long long)snaps);
    if (want_host && strcmp(want_host, src) == 0)
        return gc_error_set(err, GC_ECONFLICT, "host_id",
                            "virtual machine '%s' is already on host '%s'", id, want_host);
    if (want_host && !gc_id_valid(want_host))
        return gc_error_set(err, GC_EINVAL, "host_id", "host '%.64s' not found", want_host);
    /* an operator who names a host may cross zones; placement stays in the VM's zone */
    struct gc_place_req q = {.arch = arch,
                             .vcpus = vcpus,
                             .memory_mib = mem,
                             .host = want_host,
                             .zone = want_host ? NULL : zone,
                             .group = group[0] ? group : NULL,
                             .policy = policy,
                             .exclude_host = src,
                             .exclude_vm = id};
    rc = gc_vm_place(tx, cfg, &q, dest, err);
    if (!rc)
        rc = gc_host_reserve(tx, dest, vcpus, mem, err);
    if (!rc)
        rc = gc_tx_exec(tx,
                        "UPDATE vms SET state = 'migrating', migration_target = ?,"
                        " last_error = '', updated_at = ?, version = version + 1 WHERE id = ?",
                        GC_ARGS(GC_VTXT(dest), GC_VINT_(gc_now_ms()), GC_VTXT(id)), NULL, err);
    return rc;
}

int gc_vm_migration_end(struct gc_tx *tx, const char *id, bool ok, const char *state,
                        const char *power, const char *error, struct gc_error *err)
{
    struct gc_rows *r = NULL;
    int rc = gc_tx_query(tx,
                         "SELECT COALESCE(host_id, ''), COALESCE(migration_target, ''), vcpus,"
                         " memory_mib FROM vms WHERE id = ?",
                         GC_ARGS(GC_VTXT(id)), &r, err);
    char src[GC_ID_LEN + 1] = "", dst[GC_ID_LEN + 1] = "";
    int64_t vcpus = 0, mem = 0;
    if (!rc && (rc = gc_rows_next(r, err)) > 0) {
        snprintf(src, sizeof(src), "%s", gc_rows_text(r, 0));
        snprintf(dst, sizeof(dst), "%s", gc_rows_text(r, 1));
        vcpus = gc_rows_int(r, 2);
        mem = gc_rows_int(r, 3);
        rc = 0;
    }
    gc_rows_free(r);
    if (rc < 0)
        return rc;
    if (!dst[0])
        return 0; /* not moving (recorded already) */
    int64_t now = gc_now_ms();
    /* the room is held where the VM is not */
    rc = gc_host_reserve(tx, ok ? src : dst, -vcpus, -mem, err);
    if (!rc)
        rc = gc_tx_exec(tx,
                        "UPDATE vms SET host_id = ?, migration_target = NULL, state = ?,"
                        " power_state = ?, last_error = ?, drift = '', updated_at = ?,"
                        " version = version + 1 WHERE id = ?",
                        GC_ARGS(GC_VTXT(ok ? dst : src), GC_VTXT(state), GC_VTXT(power),
                                GC_VTXT(error ? error : ""), GC_VINT_(now), GC_VTXT(id)),
                        NULL, err);
    if (!rc && ok)
        rc = gc_tx_exec(tx,
                        "UPDATE volumes SET host_id = ?, updated_at = ?, version = version + 1"
                        " WHERE vm_id = ?",
                        GC_ARGS(GC_VTXT(dst), GC_VINT_(now), GC_VTXT(id)), NULL, err);
    return rc;
}

static const struct gc_jfield migrate_spec[] = {
    {"host_id", GC_JT_STRING, false, false, 1, 64, GC_CS_ANY},
};

int gc_vm_migrate(const struct gc_ctx *ctx, const char *id, json_t *in, json_t **out,
                  struct gc_error *err)
{
    int rc = gc_json_check(in, migrate_spec, 1, err);
    if (rc)
        return rc;
    const char *want = gc_json_str(in, "host_id");
    struct gc_tx *tx;
    rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    char path[GC_DEPT_PATH_MAX], job[GC_ID_LEN + 1], dest[GC_ID_LEN + 1] = "";
    json_t *obj = NULL;
    rc = load(tx, id, &obj, path, err);
    /* moving VMs between hosts is the platform's business: departments see it happen */
    if (!rc)
        rc = gc_authorize(ctx->who, GC_P_VM_READ, path, "virtual machine", id, err);
    if (!rc)
        rc = gc_require(ctx->who, GC_P_HOST_WRITE, err);
    if (!rc)
        rc = gc_job_busy(tx, "vm", id, "virtual machine", err);
    if (!rc)
        rc = gc_vm_migration_begin(tx, ctx->cfg, id, want, dest, err);
    char dept[GC_ID_LEN + 1] = "";
    if (obj)
        snprintf(dept, sizeof(dept), "%s", gc_json_str(obj, "department_id"));
    if (!rc) {
        json_t *p = json_pack("{s:s,s:s}", "vm_id", id, "host_id", dest);
        rc = gc_job_submit(tx, ctx, "vm.migrate", p, dept, "vm", id, job, err);
        json_decref(p);
    }
    json_t *detail = json_pack("{s:O?,s:s}", "before", obj, "host_id", dest);
    rc = finish_with_job(tx, ctx, "vm.migrate", id, dept, path, job, detail, rc, out, err);
    json_decref(detail);
    json_decref(obj);
    return rc;
}
