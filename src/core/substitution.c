/* The domestic substitution rate (国产替代率), as docs/supervision.md defines it: per layer the
 * share of assets that are domestic products, by count and by capacity, and an overall figure
 * weighted by [supervision] substitution_weights. The computation takes asset objects one by
 * one (gc_subst_add), so that it runs the same over the local inventory and over asset
 * records a supervisor received. */
#include "core/supdata.h"

#include "util/timeutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const gc_subst_layer_names[GC_NLAYERS] = {
    "cpu", "server", "os", "database", "middleware", "storage", "network", "security"};

static int layer_index(const char *name, size_t n)
{
    for (int i = 0; i < GC_NLAYERS; i++)
        if (strlen(gc_subst_layer_names[i]) == n && !strncmp(gc_subst_layer_names[i], name, n))
            return i;
    return -1;
}

int gc_subst_weights_parse(const char *text, double w[GC_NLAYERS], struct gc_error *err)
{
    bool seen[GC_NLAYERS] = {false};
    for (int i = 0; i < GC_NLAYERS; i++)
        w[i] = 0;
    if (!text || !text[0])
        return gc_error_set(err, GC_EINVAL, "substitution_weights",
                            "substitution_weights is empty: give layer=weight pairs separated "
                            "by commas, e.g. " GC_SUBST_DEFAULT_WEIGHTS);
    double sum = 0;
    const char *p = text;
    for (;;) {
        while (*p == ' ')
            p++;
        const char *eq = strchr(p, '=');
        const char *comma = strchr(p, ',');
        if (!comma)
            comma = p + strlen(p);
        if (!eq || eq > comma)
            return gc_error_set(err, GC_EINVAL, "substitution_weights",
                                "substitution_weights: '%.*s' is not layer=weight",
                                (int)(comma - p > 40 ? 40 : comma - p), p);
        const char *ne = eq;
        while (ne > p && ne[-1] == ' ')
            ne--;
        int li = layer_index(p, (size_t)(ne - p));
        if (li < 0)
            return gc_error_set(err, GC_EINVAL, "substitution_weights",
                                "substitution_weights: unknown layer '%.*s' (layers: cpu, server, "
                                "os, database, middleware, storage, network, security)",
                                (int)(ne - p > 40 ? 40 : ne - p), p);
        if (seen[li])
            return gc_error_set(err, GC_EINVAL, "substitution_weights",
                                "substitution_weights: layer %s is given twice",
                                gc_subst_layer_names[li]);
        seen[li] = true;
        char num[48];
        size_t nl = (size_t)(comma - eq - 1);
        if (nl == 0 || nl >= sizeof(num))
            return gc_error_set(err, GC_EINVAL, "substitution_weights",
                                "substitution_weights: layer %s has no weight",
                                gc_subst_layer_names[li]);
        memcpy(num, eq + 1, nl);
        num[nl] = '\0';
        char *end = NULL;
        double v = strtod(num, &end);
        while (end && *end == ' ')
            end++;
        if (!end || *end || end == num || !isfinite(v) || v < 0)
            return gc_error_set(err, GC_EINVAL, "substitution_weights",
                                "substitution_weights: the weight of %s ('%s') is not a "
                                "non-negative number",
                                gc_subst_layer_names[li], num);
        w[li] = v;
        sum += v;
        if (!*comma)
            break;
        p = comma + 1;
    }
    if (fabs(sum - 1.0) > 1e-6)
        return gc_error_set(err, GC_EINVAL, "substitution_weights",
                            "substitution_weights: the weights sum to %.6g, not 1", sum);
    return 0;
}

void gc_subst_init(struct gc_subst *s)
{
    memset(s, 0, sizeof(*s));
}

/* The layer of an asset: its `layer`, or, without one, what its kind implies. -1: none. */
static int asset_layer(const json_t *data)
{
    const char *layer = json_string_value(json_object_get(data, "layer"));
    if (layer)
        return layer_index(layer, strlen(layer)); /* "other": -1 */
    const char *kind = json_string_value(json_object_get(data, "kind"));
    if (!kind)
        return -1;
    if (!strcmp(kind, "server") || !strcmp(kind, "host"))
        return GC_LAYER_SERVER;
    if (!strcmp(kind, "network_device"))
        return GC_LAYER_NETWORK;
    if (!strcmp(kind, "storage_device"))
        return GC_LAYER_STORAGE;
    if (!strcmp(kind, "security_device"))
        return GC_LAYER_SECURITY;
    return -1; /* vm, volume, network, rack, software without a layer */
}

/* The capacity of an asset in its layer, or a negative number when unknown: the attribute
 * `weight` (a positive number) when there is one, else capacity.vcpus for cpu and server and
 * capacity.disk_bytes for storage. */
static double asset_capacity(const json_t *data, int layer)
{
    const char *wt = json_string_value(json_object_get(json_object_get(data, "attributes"),
                                                       "weight"));
    if (wt) {
        char *end = NULL;
        double v = strtod(wt, &end);
        if (end && end != wt && !*end && isfinite(v) && v > 0)
            return v;
    }
    const json_t *cap = json_object_get(data, "capacity");
    const json_t *v = NULL;
    if (layer == GC_LAYER_CPU || layer == GC_LAYER_SERVER)
        v = json_object_get(cap, "vcpus");
    else if (layer == GC_LAYER_STORAGE)
        v = json_object_get(cap, "disk_bytes");
    if (json_is_integer(v) && json_integer_value(v) > 0)
        return (double)json_integer_value(v);
    return -1;
}

void gc_subst_add(struct gc_subst *s, const json_t *data)
{
    if (!json_is_object(data))
        return;
    s->seen++;
    int l = asset_layer(data);
    if (l < 0) {
        s->unclassified++;
        return;
    }
    struct gc_subst_tally *t = &s->layer[l];
    t->assets++;
    const json_t *dom = json_object_get(data, "domestic");
    bool domestic = json_is_true(json_object_get(dom, "flag"));
    if (!json_is_object(dom) || !json_is_boolean(json_object_get(dom, "flag")))
        t->undeclared++;
    if (domestic) {
        t->domestic++;
        const char *basis = json_string_value(json_object_get(dom, "basis"));
        if (basis && basis[strspn(basis, " \t")])
            t->domestic_with_basis++;
    }
    double c = asset_capacity(data, l);
    if (c > 0) {
        t->capacity_assets++;
        t->capacity_total += c;
        if (domestic)
            t->capacity_domestic += c;
    }
}

/* A ratio rounded to 6 decimals (the figures are shares of counts: more digits say nothing). */
static json_t *ratio(double num, double den)
{
    if (!(den > 0))
        return json_null();
    return json_real(round(num / den * 1e6) / 1e6);
}

json_t *gc_subst_result(const struct gc_subst *s, const double w[GC_NLAYERS])
{
    json_t *layers = json_array(), *weights = json_object();
    json_t *applied_c = json_object(), *applied_k = json_object(), *empty = json_array();
    double wc = 0, sc = 0, wk = 0, sk = 0;
    int64_t dom = 0, basis = 0;
    for (int i = 0; i < GC_NLAYERS; i++) {
        const struct gc_subst_tally *t = &s->layer[i];
        json_object_set_new(weights, gc_subst_layer_names[i], json_real(w[i]));
        json_array_append_new(
            layers,
            json_pack("{s:s,s:f,s:I,s:I,s:I,s:I,s:I,s:o,s:I,s:f,s:f,s:o}", "layer",
                      gc_subst_layer_names[i], "weight", w[i], "assets", (json_int_t)t->assets,
                      "domestic", (json_int_t)t->domestic, "domestic_with_basis",
                      (json_int_t)t->domestic_with_basis, "domestic_without_basis",
                      (json_int_t)(t->domestic - t->domestic_with_basis), "undeclared",
                      (json_int_t)t->undeclared, "rate_by_count",
                      ratio((double)t->domestic, (double)t->assets), "capacity_assets",
                      (json_int_t)t->capacity_assets, "capacity_total", t->capacity_total,
                      "capacity_domestic", t->capacity_domestic, "rate_by_capacity",
                      ratio(t->capacity_domestic, t->capacity_total)));
        dom += t->domestic;
        basis += t->domestic_with_basis;
        if (t->assets == 0) {
            json_array_append_new(empty, json_string(gc_subst_layer_names[i]));
            continue;
        }
        wc += w[i];
        sc += w[i] * (double)t->domestic / (double)t->assets;
        if (t->capacity_total > 0) {
            wk += w[i];
            sk += w[i] * t->capacity_domestic / t->capacity_total;
        }
    }
    for (int i = 0; i < GC_NLAYERS; i++) {
        const struct gc_subst_tally *t = &s->layer[i];
        if (t->assets > 0)
            json_object_set_new(applied_c, gc_subst_layer_names[i],
                                wc > 0 ? json_real(round(w[i] / wc * 1e6) / 1e6) : json_real(0));
        if (t->capacity_total > 0)
            json_object_set_new(applied_k, gc_subst_layer_names[i],
                                wk > 0 ? json_real(round(w[i] / wk * 1e6) / 1e6) : json_real(0));
    }
    json_t *overall = json_pack(
        "{s:o,s:o,s:o,s:o,s:o}", "rate_by_count", wc > 0 ? ratio(sc, wc) : json_null(),
        "rate_by_capacity", wk > 0 ? ratio(sk, wk) : json_null(), "weights_by_count", applied_c,
        "weights_by_capacity", applied_k, "layers_without_assets", empty);
    return json_pack("{s:I,s:I,s:o,s:o,s:o,s:{s:I,s:I,s:I}}", "assets_seen",
                     (json_int_t)s->seen, "unclassified", (json_int_t)s->unclassified, "weights",
                     weights, "layers", layers, "overall", overall, "evidence",
                     "domestic_assets", (json_int_t)dom, "with_basis", (json_int_t)basis,
                     "without_basis", (json_int_t)(dom - basis));
}

int gc_subst_local(const struct gc_ctx *ctx, const char *weights, json_t **out,
                   struct gc_error *err)
{
    if (!ctx->who)
        return gc_error_set(err, GC_EAUTH, "", "authentication required");
    if (!gc_role_is_platform(ctx->who->role))
        return gc_error_set(err, GC_EPERM, "",
                            "role %s may not read the substitution rate (platform roles and "
                            "supervisor only)",
                            gc_role_name(ctx->who->role));
    double w[GC_NLAYERS];
    int rc = gc_subst_weights_parse(weights, w, err);
    if (rc) { /* checked at start: only a changed default could get here */
        char m[sizeof(err->msg)];
        snprintf(m, sizeof(m), "%s", err->msg);
        return gc_error_set(err, GC_EINTERNAL, "", "[supervision] %s", m);
    }
    /* the inventory as a pull would see it: discovery first */
    rc = gc_asset_sup_refresh(ctx->store, err);
    if (rc)
        return rc;
    struct gc_tx *tx;
    rc = gc_tx_begin(ctx->store, GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    struct gc_rows *r = NULL;
    struct gc_subst s;
    gc_subst_init(&s);
    rc = gc_tx_query(tx, "SELECT data FROM assets WHERE deleted = 0 AND data IS NOT NULL",
                     GC_NOARGS, &r, err);
    while (!rc && (rc = gc_rows_next(r, err)) > 0) {
        rc = 0;
        json_t *d = json_loads(gc_rows_text(r, 0), 0, NULL);
        gc_subst_add(&s, d);
        json_decref(d);
    }
    gc_rows_free(r);
    gc_tx_rollback(tx);
    if (rc < 0)
        return rc;
    json_t *o = gc_subst_result(&s, w);
    json_object_set_new(o, "scope", json_string("local"));
    json_object_set_new(o, "computed_at", gc_json_time(gc_now_ms()));
    *out = o;
    return 0;
}
