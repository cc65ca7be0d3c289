/* Hypervisor hosts: registration by compute URI, discovered facts, zones, maintenance.
 * The live connections are the host manager's (sched/hostmgr.c), reached through hooks. */
#include "core/core.h"

#include "core/validate.h"
#include "drivers/compute.h"
#include "util/buf.h"
#include "util/mem.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void no_added(const char *id, const char *uri)
{
    (void)id;
    (void)uri;
}
static void no_removed(const char *id)
{
    (void)id;
}
void (*gc_host_added)(const char *id, const char *uri) = no_added;
void (*gc_host_removed)(const char *id) = no_removed;

#define HOST_COLS                                                                             \
    "id, name, uri, zone, description, state, maintenance, last_error, last_seen_at, arch,"    \
    " cpu_model, cpus, memory_mib, hypervisor, hypervisor_version, libvirt_version, hostname," \
    " pools, created_at, updated_at, version, vcpus_used, memory_used_mib, vcpus_free,"          \
    " memory_free_mib"

static json_t *host_json(struct gc_rows *r)
{
    json_t *o = json_object();
    static const char *const text_cols[] = {"id", "name", "uri", "zone", "description", "state"};
    for (int i = 0; i < 6; i++)
        json_object_set_new(o, text_cols[i], json_string(gc_rows_text(r, i)));
    json_object_set_new(o, "maintenance", json_boolean(gc_rows_int(r, 6) != 0));
    json_object_set_new(o, "last_error", json_string(gc_rows_text(r, 7)));
    json_object_set_new(o, "last_seen_at", gc_json_time(gc_rows_int(r, 8)));
    json_object_set_new(o, "arch", json_string(gc_rows_text(r, 9)));
    json_object_set_new(o, "cpu_model", json_string(gc_rows_text(r, 10)));
    json_object_set_new(o, "cpus", json_integer(gc_rows_int(r, 11)));
    json_object_set_new(o, "memory_mib", json_integer(gc_rows_int(r, 12)));
    json_object_set_new(o, "hypervisor", json_string(gc_rows_text(r, 13)));
    json_object_set_new(o, "hypervisor_version", json_string(gc_rows_text(r, 14)));
    json_object_set_new(o, "libvirt_version", json_string(gc_rows_text(r, 15)));
    json_object_set_new(o, "hostname", json_string(gc_rows_text(r, 16)));
    json_error_t jerr;
    json_t *pools = json_loads(gc_rows_text(r, 17), 0, &jerr);
    json_object_set_new(o, "storage_pools", json_is_array(pools) ? pools : json_array());
    if (pools && !json_is_array(pools))
        json_decref(pools);
    json_object_set_new(o, "created_at", gc_json_time(gc_rows_int(r, 18)));
    json_object_set_new(o, "updated_at", gc_json_time(gc_rows_int(r, 19)));
    json_object_set_new(o, "version", json_integer(gc_rows_int(r, 20)));
    /* placement's counters: free room is after the over-commit of the host's zone */
    json_object_set_new(o, "vcpus_used", json_integer(gc_rows_int(r, 21)));
    json_object_set_new(o, "memory_used_mib", json_integer(gc_rows_int(r, 22)));
    json_object_set_new(o, "vcpus_free", json_integer(gc_rows_int(r, 23)));
    json_object_set_new(o, "memory_free_mib", json_integer(gc_rows_int(r, 24)));
    return o;
}

static int load(struct gc_tx *tx, const char *id, json_t **out, struct gc_error *err)
{
    if (!gc_id_valid(id))
        return gc_error_set(err, GC_ENOTFOUND, "id", "host '%.64s' not found", id);
    struct gc_rows *r;
    int rc = gc_tx_query(tx, "SELECT " HOST_COLS " FROM hosts WHERE id = ?",
                         GC_ARGS(GC_VTXT(id)), &r, err);
    if (rc)
        return rc;
    rc = gc_rows_next(r, err);
    if (rc == 0)
        rc = gc_error_set(err, GC_ENOTFOUND, "id", "host '%s' not found", id);
    if (rc > 0) {
        rc = 0;
        *out = host_json(r);
    }
    gc_rows_free(r);
    return rc;
}

/* Hosts are platform objects: department roles never see them (404 on get). */
static int authorize(const struct gc_ctx *ctx, enum gc_perm perm, const char *id,
                     struct gc_error *err)
{
    return gc_authorize(ctx->who, perm, "", "host", id, err);
}

static const struct gc_jfield create_spec[] = {
    {"name", GC_JT_STRING, true, false, 1, 64, GC_CS_CODE},
    {"uri", GC_JT_STRING, true, false, 1, 500, GC_CS_TEXT},
    {"zone", GC_JT_STRING, false, false, 1, 64, GC_CS_CODE},
    {"description", GC_JT_STRING, false, false, 0, 1024, GC_CS_ANY},
};

static const struct gc_jfield update_spec[] = {
    {"name", GC_JT_STRING, false, false, 1, 64, GC_CS_CODE},
    {"zone", GC_JT_STRING, false, false, 1, 64, GC_CS_CODE},
    {"description", GC_JT_STRING, false, false, 0, 1024, GC_CS_ANY},
    {"maintenance", GC_JT_BOOL, false, false, 0, 0, GC_CS_ANY},
};

static int audit_commit(struct gc_tx *tx, const struct gc_ctx *ctx, const char *action,
                        const char *id, json_t *detail, int rc, struct gc_error *err)
{
    struct gc_audit_event ev = {.action = action,
                                .resource_type = "host",
                                .resource_id = id,
                                .outcome = GC_OUTCOME_SUCCESS,
                                .detail = detail};
    return gc_audit_commit(tx, ctx, &ev, rc, err);
}

static int conflict_msg(int rc, struct gc_error *err, const char *name, const char *uri)
{
    if (rc != GC_ECONFLICT)
        return rc;
    if (strstr(err->msg, "uri"))
        return gc_error_set(err, GC_ECONFLICT, "uri", "a host with URI '%s' is registered",
                            uri ? uri : "");
    return gc_error_set(err, GC_ECONFLICT, "name", "a host named '%s' is registered",
                        name ? name : "");
}

int gc_host_create(const struct gc_ctx *ctx, json_t *in, json_t **out, struct gc_error *err)
{
    int rc = gc_require(ctx->who, GC_P_HOST_WRITE, err);
    if (!rc)
        rc = gc_json_check(in, create_spec, sizeof(create_spec) / sizeof(create_spec[0]), err);
    if (rc)
        return rc;
    const char *name = gc_json_str(in, "name");
    const char *uri = gc_json_str(in, "uri");
    const char *zone = gc_json_str(in, "zone");
    const char *desc = gc_json_str(in, "description");
    if (!gc_compute_driver_for(uri, err))
        return GC_EINVAL;
    char id[GC_ID_LEN + 1];
    gc_id_new(id);
    int64_t now = gc_now_ms();
    struct gc_tx *tx;
    rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    rc = gc_tx_exec(tx,
                    "INSERT INTO hosts (id, name, uri, zone, description, created_at, updated_at,"
                    " version) VALUES (?, ?, ?, ?, ?, ?, ?, 1)",
                    GC_ARGS(GC_VTXT(id), GC_VTXT(name), GC_VTXT(uri),
                            GC_VTXT(zone ? zone : "default"), GC_VTXT(desc ? desc : ""),
                            GC_VINT_(now), GC_VINT_(now)),
                    NULL, err);
    rc = conflict_msg(rc, err, name, uri);
    rc = audit_commit(tx, ctx, "host.create", id, in, rc, err);
    if (rc)
        return rc;
    /* connects now and records state and facts, so the answer shows them */
    gc_host_added(id, uri);
    return gc_host_get(ctx, id, out, err);
}

int gc_host_get(const struct gc_ctx *ctx, const char *id, json_t **out, struct gc_error *err)
{
    int rc = authorize(ctx, GC_P_HOST_READ, id, err);
    if (rc)
        return rc;
    struct gc_tx *tx;
    rc = gc_tx_begin(ctx->store, GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    rc = load(tx, id, out, err);
    gc_tx_rollback(tx);
    return rc;
}

static json_t *host_row(struct gc_rows *r, const struct gc_principal *who)
{
    (void)who;
    return host_json(r);
}

int gc_host_list(const struct gc_ctx *ctx, json_t *filters, int limit, const char *cursor,
                 json_t **items, char **next_cursor, struct gc_error *err)
{
    int rc = gc_require(ctx->who, GC_P_HOST_READ, err);
    if (!rc)
        rc = gc_page_limit(limit, &limit, err);
    if (!rc)
        rc = gc_page_cursor_id(cursor, err);
    if (rc)
        return rc;
    struct gc_buf sql;
    gc_buf_init(&sql, GC_BUF_UNLIMITED);
    struct gc_val args[8];
    size_t n = 0;
    (void)gc_buf_adds(&sql, "SELECT " HOST_COLS " FROM hosts WHERE id > ?");
    args[n++] = GC_VTXT(cursor ? cursor : "");
    static const char *const filt[] = {"zone", "state", "arch", "name"};
    for (size_t i = 0; i < 4; i++) {
        const char *v = gc_json_str(filters, filt[i]);
        if (v) {
            (void)gc_buf_addf(&sql, " AND %s = ?", filt[i]);
            args[n++] = GC_VTXT(v);
        }
    }
    (void)gc_buf_adds(&sql, " ORDER BY id LIMIT ?");
    args[n++] = GC_VINT_(limit + 1);
    rc = gc_page_run(ctx, gc_buf_str(&sql), args, n, limit, "id", host_row, items,
                     next_cursor, err);
    gc_buf_release(&sql);
    return rc;
}

int gc_host_update(const struct gc_ctx *ctx, const char *id, int64_t if_match, json_t *in,
                   json_t **out, struct gc_error *err)
{
    int rc = authorize(ctx, GC_P_HOST_WRITE, id, err);
    if (!rc)
        rc = gc_json_check(in, update_spec, sizeof(update_spec) / sizeof(update_spec[0]), err);
    if (rc)
        return rc;
    struct gc_tx *tx;
    rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    json_t *before = NULL;
    rc = load(tx, id, &before, err);
    int64_t version = before ? json_integer_value(json_object_get(before, "version")) : 0;
    if (!rc && if_match >= 0 && if_match != version)
        rc = gc_error_set(err, GC_EPRECOND, "If-Match",
                          "host '%s' is at version %lld, not %lld: reload it and retry", id,
                          (long long)version, (long long)if_match);
    json_t *maint = json_object_get(in, "maintenance");
    const char *name = gc_json_str(in, "name");
    if (!rc)
        rc = gc_tx_exec(tx,
                        "UPDATE hosts SET name = COALESCE(?, name), zone = COALESCE(?, zone),"
                        " description = COALESCE(?, description),"
                        " maintenance = COALESCE(?, maintenance), updated_at = ?,"
                        " version = version + 1 WHERE id = ?",
                        GC_ARGS(GC_VTXT(name), GC_VTXT(gc_json_str(in, "zone")),
                                GC_VTXT(gc_json_str(in, "description")),
                                maint ? GC_VINT_(json_is_true(maint)) : GC_VNUL,
                                GC_VINT_(gc_now_ms()), GC_VTXT(id)),
                        NULL, err);
    rc = conflict_msg(rc, err, name, NULL);
    /* another zone may have other over-commit ratios: the free room follows at once */
    if (!rc && gc_json_str(in, "zone"))
        rc = gc_host_capacity_refresh(tx, ctx->cfg, id, err);
    json_t *after = NULL;
    if (!rc)
        rc = load(tx, id, &after, err);
    json_t *detail = after ? json_pack("{s:O,s:O}", "before", before, "after", after) : NULL;
    rc = audit_commit(tx, ctx, "host.update", id, detail, rc, err);
    json_decref(detail);
    json_decref(before);
    if (rc) {
        json_decref(after);
        return rc;
    }
    *out = after;
    return 0;
}

int gc_host_delete(const struct gc_ctx *ctx, const char *id, int64_t if_match,
                   struct gc_error *err)
{
    int rc = authorize(ctx, GC_P_HOST_WRITE, id, err);
    if (rc)
        return rc;
    struct gc_tx *tx;
    rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    json_t *before = NULL;
    rc = load(tx, id, &before, err);
    int64_t version = before ? json_integer_value(json_object_get(before, "version")) : 0;
    if (!rc && if_match >= 0 && if_match != version)
        rc = gc_error_set(err, GC_EPRECOND, "If-Match",
                          "host '%s' is at version %lld, not %lld: reload it and retry", id,
                          (long long)version, (long long)if_match);
    int64_t nvms = 0;
    if (!rc)
        rc = gc_tx_query_int(tx, "SELECT COUNT(*) FROM vms WHERE host_id = ?",
                             GC_ARGS(GC_VTXT(id)), &nvms, err);
    if (!rc && nvms > 0)
        rc = gc_error_set(err, GC_ECONFLICT, "id",
                          "host '%s' still runs %lld virtual machines; move or delete them first",
                          id, (long long)nvms);
    if (!rc)
        rc = gc_tx_query_int(tx, "SELECT COUNT(*) FROM volumes WHERE host_id = ?",
                             GC_ARGS(GC_VTXT(id)), &nvms, err);
    if (!rc && nvms > 0)
        rc = gc_error_set(err, GC_ECONFLICT, "id",
                          "host '%s' still holds %lld volumes; delete them first", id,
                          (long long)nvms);
    if (!rc)
        rc = gc_tx_exec(tx, "DELETE FROM hosts WHERE id = ?", GC_ARGS(GC_VTXT(id)), NULL, err);
    if (!rc) /* an open incident (and its alarm) ends with the host */
        rc = gc_incident_sync(tx, "host", id, NULL, NULL, NULL, "the host was deleted",
                              gc_now_ms(), err);
    rc = audit_commit(tx, ctx, "host.delete", id, before, rc, err);
    json_decref(before);
    if (!rc)
        gc_host_removed(id);
    return rc;
}

int gc_host_evacuate(const struct gc_ctx *ctx, const char *id, json_t **out,
                     struct gc_error *err)
{
    int rc = authorize(ctx, GC_P_HOST_WRITE, id, err);
    if (rc)
        return rc;
    struct gc_tx *tx;
    rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    json_t *before = NULL;
    rc = load(tx, id, &before, err);
    if (!rc && !json_is_true(json_object_get(before, "maintenance")))
        rc = gc_error_set(err, GC_ECONFLICT, "id",
                          "host '%s' is not in maintenance: set maintenance first, so that no "
                          "new VM lands on it while its VMs move away",
                          id);
    if (!rc && strcmp(json_string_value(json_object_get(before, "state")), "connected") != 0)
        rc = gc_error_set(err, GC_ECONFLICT, "id",
                          "host '%s' is not connected: its VMs can move only while it is", id);
    if (!rc)
        rc = gc_job_busy(tx, "host", id, "host", err);
    char job[GC_ID_LEN + 1] = "";
    if (!rc) {
        json_t *p = json_pack("{s:s}", "host_id", id);
        rc = gc_job_submit(tx, ctx, "host.evacuate", p, NULL, "host", id, job, err);
        json_decref(p);
    }
    struct gc_audit_event ev = {.action = "host.evacuate",
                                .resource_type = "host",
                                .resource_id = id,
                                .outcome = GC_OUTCOME_SUCCESS,
                                .detail = before};
    rc = gc_job_commit(tx, ctx, &ev, job, rc, out, err);
    json_decref(before);
    return rc;
}
