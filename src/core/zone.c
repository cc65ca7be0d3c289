/* Zones: the hosts sharing a `zone` label, with their own CPU and memory over-commit ratios
 * and placement weigher (each falls back to the [compute] default when not set). A zone
 * exists as soon as a host carries its label or its settings were stored. */
#include "core/core.h"

#include "core/validate.h"
#include "util/mem.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <string.h>

#define ZONE_COLS                                                                            \
    "n.name, COALESCE(z.cpu_overcommit_percent, ?), COALESCE(z.ram_overcommit_percent, ?),"  \
    " COALESCE(z.placement_weigher, ?), z.cpu_overcommit_percent IS NULL,"                  \
    " z.ram_overcommit_percent IS NULL, z.placement_weigher IS NULL,"                        \
    " COALESCE(z.created_at, 0), COALESCE(z.updated_at, 0), COALESCE(z.version, 0),"         \
    " (SELECT COUNT(*) FROM hosts h WHERE h.zone = n.name)"
#define ZONE_FROM                                                                            \
    " FROM (SELECT name FROM zones UNION SELECT zone AS name FROM hosts) n"                  \
    " LEFT JOIN zones z ON z.name = n.name"
#define ZONE_DEFAULTS(cfg)                                                                   \
    GC_VINT_((cfg)->cpu_overcommit_percent), GC_VINT_((cfg)->ram_overcommit_percent),         \
        GC_VTXT((cfg)->placement_weigher)

static json_t *zone_json(struct gc_rows *r)
{
    json_t *defaults = json_array();
    static const char *const fields[] = {"cpu_overcommit_percent", "ram_overcommit_percent",
                                         "placement_weigher"};
    for (int i = 0; i < 3; i++)
        if (gc_rows_int(r, 4 + i))
            json_array_append_new(defaults, json_string(fields[i]));
    return json_pack("{s:s,s:I,s:I,s:s,s:o,s:I,s:o,s:o,s:I}", "name", gc_rows_text(r, 0),
                     "cpu_overcommit_percent", (json_int_t)gc_rows_int(r, 1),
                     "ram_overcommit_percent", (json_int_t)gc_rows_int(r, 2),
                     "placement_weigher", gc_rows_text(r, 3), "defaults", defaults, "hosts",
                     (json_int_t)gc_rows_int(r, 10), "created_at",
                     gc_json_time(gc_rows_int(r, 7)), "updated_at",
                     gc_json_time(gc_rows_int(r, 8)), "version", (json_int_t)gc_rows_int(r, 9));
}

/* A zone name as hosts carry it: 1 to 64 of A-Z a-z 0-9 . _ - */
static bool name_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 1 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static int load(struct gc_tx *tx, const struct gc_config *cfg, const char *name, json_t **out,
                struct gc_error *err)
{
    if (!name_valid(name))
        return gc_error_set(err, GC_ENOTFOUND, "name", "zone '%.64s' not found", name);
    struct gc_rows *r;
    int rc = gc_tx_query(tx, "SELECT " ZONE_COLS ZONE_FROM " WHERE n.name = ?",
                         GC_ARGS(ZONE_DEFAULTS(cfg), GC_VTXT(name)), &r, err);
    if (rc)
        return rc;
    rc = gc_rows_next(r, err);
    if (rc == 0)
        rc = gc_error_set(err, GC_ENOTFOUND, "name",
                          "zone '%s' not found: no host is in it and it has no settings", name);
    if (rc > 0) {
        rc = 0;
        *out = zone_json(r);
    }
    gc_rows_free(r);
    return rc;
}

int gc_zone_get(const struct gc_ctx *ctx, const char *name, json_t **out, struct gc_error *err)
{
    int rc = gc_authorize(ctx->who, GC_P_HOST_READ, "", "zone", name, err);
    if (rc)
        return rc;
    struct gc_tx *tx;
    rc = gc_tx_begin(ctx->store, GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    rc = load(tx, ctx->cfg, name, out, err);
    gc_tx_rollback(tx);
    return rc;
}

static json_t *zone_row(struct gc_rows *r, const struct gc_principal *who)
{
    (void)who;
    return zone_json(r);
}

int gc_zone_list(const struct gc_ctx *ctx, json_t *filters, int limit, const char *cursor,
                 json_t **items, char **next_cursor, struct gc_error *err)
{
    (void)filters;
    int rc = gc_require(ctx->who, GC_P_HOST_READ, err);
    if (!rc)
        rc = gc_page_limit(limit, &limit, err);
    if (!rc && cursor && !name_valid(cursor))
        rc = gc_error_set(err, GC_EINVAL, "cursor",
                          "cursor is not one returned by this API (use next_cursor as given)");
    if (rc)
        return rc;
    return gc_page_run(ctx,
                       "SELECT " ZONE_COLS ZONE_FROM " WHERE n.name > ? ORDER BY n.name LIMIT ?",
                       GC_ARGS(ZONE_DEFAULTS(ctx->cfg), GC_VTXT(cursor ? cursor : ""),
                               GC_VINT_(limit + 1)),
                       limit, "name", zone_row, items, next_cursor, err);
}

/* The bounds of a zone's setting are those of the [compute] option of the same name. */
static const struct gc_config_option *option(const char *name)
{
    for (size_t i = 0; i < gc_config_noptions; i++)
        if (strcmp(gc_config_options[i].section, "compute") == 0 &&
            strcmp(gc_config_options[i].name, name) == 0)
            return &gc_config_options[i];
    GC_BUG("no option compute.%s", name);
}

static const struct gc_jfield put_spec[] = {
    {"cpu_overcommit_percent", GC_JT_INT, false, true, 0, 0, GC_CS_ANY},
    {"ram_overcommit_percent", GC_JT_INT, false, true, 0, 0, GC_CS_ANY},
    {"placement_weigher", GC_JT_STRING, false, true, 1, 16, GC_CS_CODE},
};

static int check_body(const json_t *in, struct gc_error *err)
{
    struct gc_jfield spec[3];
    memcpy(spec, put_spec, sizeof(spec));
    for (int i = 0; i < 2; i++) {
        const struct gc_config_option *o = option(spec[i].name);
        spec[i].min = (int)o->min;
        spec[i].max = (int)o->max;
    }
    return gc_json_check(in, spec, 3, err);
}

int gc_zone_put(const struct gc_ctx *ctx, const char *name, int64_t if_match, json_t *in,
                json_t **out, struct gc_error *err)
{
    int rc = gc_authorize(ctx->who, GC_P_HOST_WRITE, "", "zone", name, err);
    if (!rc && !name_valid(name))
        rc = gc_error_set(err, GC_EINVAL, "name",
                          "a zone name is 1 to 64 of A-Z a-z 0-9 . _ -, got '%.64s'", name);
    if (!rc)
        rc = check_body(in, err);
    const char *weigher = gc_json_str(in, "placement_weigher");
    if (!rc && weigher && strcmp(weigher, "spread") && strcmp(weigher, "pack"))
        rc = gc_error_set(err, GC_EINVAL, "placement_weigher",
                          "placement_weigher must be spread or pack, got '%s'", weigher);
    if (rc)
        return rc;
    const json_t *cpu = json_object_get(in, "cpu_overcommit_percent");
    const json_t *ram = json_object_get(in, "ram_overcommit_percent");
    struct gc_tx *tx;
    rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    json_t *before = NULL, *after = NULL;
    int64_t version = 0;
    rc = load(tx, ctx->cfg, name, &before, err);
    if (rc == GC_ENOTFOUND) /* a zone may be configured before its first host */
        rc = 0;
    if (before)
        version = json_integer_value(json_object_get(before, "version"));
    if (!rc && if_match >= 0 && if_match != version)
        rc = gc_error_set(err, GC_EPRECOND, "If-Match",
                          "zone '%s' is at version %lld, not %lld: reload it and retry", name,
                          (long long)version, (long long)if_match);
    int64_t now = gc_now_ms();
    if (!rc)
        rc = gc_tx_exec(tx,
                        "INSERT INTO zones (name, cpu_overcommit_percent, ram_overcommit_percent,"
                        " placement_weigher, created_at, updated_at, version)"
                        " VALUES (?, ?, ?, ?, ?, ?, 1) ON CONFLICT (name) DO UPDATE SET"
                        " cpu_overcommit_percent = excluded.cpu_overcommit_percent,"
                        " ram_overcommit_percent = excluded.ram_overcommit_percent,"
                        " placement_weigher = excluded.placement_weigher,"
                        " updated_at = excluded.updated_at, version = zones.version + 1",
                        GC_ARGS(GC_VTXT(name),
                                json_is_integer(cpu) ? GC_VINT_(json_integer_value(cpu)) : GC_VNUL,
                                json_is_integer(ram) ? GC_VINT_(json_integer_value(ram)) : GC_VNUL,
                                GC_VTXT(weigher), GC_VINT_(now), GC_VINT_(now)),
                        NULL, err);
    /* the hosts' free room follows the new ratios in this transaction */
    if (!rc)
        rc = gc_zone_capacity_refresh(tx, ctx->cfg, name, err);
    if (!rc)
        rc = load(tx, ctx->cfg, name, &after, err);
    if (!rc) {
        json_t *detail = json_pack("{s:O?,s:O}", "before", before, "after", after);
        struct gc_audit_event ev = {.action = "zone.update",
                                    .resource_type = "zone",
                                    .resource_id = name,
                                    .outcome = GC_OUTCOME_SUCCESS,
                                    .detail = detail};
        rc = gc_audit_append(tx, ctx, &ev, err);
        json_decref(detail);
    }
    json_decref(before);
    if (rc) {
        gc_tx_rollback(tx);
        json_decref(after);
        return rc;
    }
    rc = gc_tx_commit(tx, err);
    if (rc) {
        json_decref(after);
        return rc;
    }
    *out = after;
    return 0;
}
