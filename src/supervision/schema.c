/* A subset validator of JSON Schema draft 2020-12 for the supervision schemas: the embedded
 * schemas are compiled once into a tree of nodes; validating walks the tree and the jansson
 * value side by side, allocates nothing and builds the JSON pointer only when it fails.
 * Debian 12 has no maintained C JSON Schema library, hence this (see the spec, "Schemas"). */
#include "supervision/schema.h"

#include "util/mem.h"

#include <stdarg.h>

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* generated at build time by cmake/embed_schemas.cmake from schemas/supervision/NAME.json */
struct gc_embedded_schema {
    const char *name;
    const char *text;
    size_t len;
};
extern const struct gc_embedded_schema gc_embedded_schemas[];
extern const size_t gc_embedded_nschemas;

const char *const gc_supervision_datasets[] = {"asset",        "metric", "log",    "alarm",
                                               "environment",  "availability", "backup", NULL};

bool gc_supervision_dataset_valid(const char *name)
{
    for (const char *const *d = gc_supervision_datasets; *d; d++)
        if (strcmp(*d, name) == 0)
            return true;
    return false;
}

/* ---- the compiled form ---- */

enum {
    T_NULL = 1 << 0,
    T_BOOLEAN = 1 << 1,
    T_OBJECT = 1 << 2,
    T_ARRAY = 1 << 3,
    T_STRING = 1 << 4,
    T_INTEGER = 1 << 5,
    T_NUMBER = 1 << 6, /* integer or real */
};

enum fmt { FMT_NONE, FMT_DATE_TIME, FMT_UUID };
enum addl { ADDL_ANY, ADDL_NONE, ADDL_SCHEMA };

struct node;

struct prop {
    const char *name;
    size_t len;
    bool required; /* listed in the node's required (a required name is counted once) */
    struct node *schema;
};

/* A schema value (const, enum) in canonical form, compared with the instance's text. */
struct ctext {
    char *text;
    size_t len;
};

struct node {
    unsigned types; /* 0: any type */
    /* objects */
    struct prop *props; /* sorted by name */
    size_t nprops;
    const char **required; /* in schema order */
    size_t nrequired;
    enum addl addl;
    struct node *addl_schema;
    struct node *names; /* propertyNames */
    long min_props, max_props; /* -1: none */
    /* strings */
    long min_len, max_len; /* code points; -1: none */
    char *pattern;         /* the subset regex of match_pattern */
    enum fmt format;
    /* any */
    json_t *enumv; /* array */
    struct ctext *enum_text;
    size_t nenum;
    json_t *constv;
    struct ctext const_text;
    /* numbers */
    bool has_min, has_max, has_xmin, has_xmax;
    double min, max, xmin, xmax;
    /* arrays */
    struct node *items;
    long min_items, max_items;
    /* $ref and oneOf */
    struct node *ref;
    struct node **one_of;
    size_t n_one_of;
    const char *disc_key; /* oneOf discriminator: a required property with a const string */
    const char **disc_values;
};

struct schema {
    const char *name;
    struct node *root;
    json_t *doc; /* keeps the strings the nodes point into */
};

static struct schema schemas[16];
static size_t nschemas;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static struct gc_error init_err;

/* ---- compiling ---- */

struct compiler {
    json_t *defs;            /* the root's $defs object */
    const char **def_names;
    struct node **def_nodes; /* allocated before they are filled, for references */
    size_t ndefs;
    const char *schema_name;
    struct gc_error *err;
};

static struct node *node_new(void)
{
    struct node *n = gc_calloc(1, sizeof(*n));
    n->min_props = n->max_props = n->min_len = n->max_len = n->min_items = n->max_items = -1;
    return n;
}

static int cerr(struct compiler *c, const char *where, const char *what)
{
    return gc_error_set(c->err, GC_EINTERNAL, "", "schema %s: %s: %s", c->schema_name, where,
                        what);
}

static int compile_node(struct compiler *c, json_t *s, struct node *n, const char *where);

static struct node *compile_new(struct compiler *c, json_t *s, const char *where)
{
    struct node *n = node_new();
    if (compile_node(c, s, n, where) != 0)
        return NULL;
    return n;
}

static int type_bit(const char *t)
{
    static const struct {
        const char *name;
        int bit;
    } tab[] = {{"null", T_NULL},     {"boolean", T_BOOLEAN}, {"object", T_OBJECT},
               {"array", T_ARRAY},   {"string", T_STRING},   {"integer", T_INTEGER},
               {"number", T_NUMBER}};
    for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
        if (strcmp(tab[i].name, t) == 0)
            return tab[i].bit;
    return 0;
}

static int get_count(struct compiler *c, json_t *v, const char *where, long *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return cerr(c, where, "expects a non-negative integer");
    *out = (long)json_integer_value(v);
    return 0;
}

static int get_number(struct compiler *c, json_t *v, const char *where, double *out)
{
    if (!json_is_number(v))
        return cerr(c, where, "expects a number");
    *out = json_number_value(v);
    return 0;
}

static int prop_cmp(const void *a, const void *b)
{
    return strcmp(((const struct prop *)a)->name, ((const struct prop *)b)->name);
}

/* Checks that a pattern uses only what match_pattern implements. */
static bool pattern_supported(const char *p)
{
    for (; *p; p++) {
        if (*p == '\\') {
            p++;
            if (!*p)
                return false;
        } else if (*p == '[') {
            const char *q = strchr(p, ']');
            if (!q || q == p + 1)
                return false;
            p = q;
        } else if (strchr("(){}|", *p)) {
            return false;
        }
    }
    return true;
}

static int ctext_of(struct compiler *c, const json_t *v, const char *where, struct ctext *out)
{
    out->text = gc_canonical_dumps(v);
    if (!out->text)
        return cerr(c, where, "a value cannot be put in canonical form");
    out->len = strlen(out->text);
    return 0;
}

static int compile_node(struct compiler *c, json_t *s, struct node *n, const char *where)
{
    if (json_is_true(s))
        return 0;
    if (!json_is_object(s))
        return cerr(c, where, "a schema must be an object or true");
    const char *k;
    json_t *v;
    json_object_foreach(s, k, v) {
        if (!strcmp(k, "$schema") || !strcmp(k, "$id") || !strcmp(k, "title") ||
            !strcmp(k, "description") || !strcmp(k, "$comment") || !strcmp(k, "examples") ||
            !strcmp(k, "default") || !strcmp(k, "$defs")) {
            continue; /* annotations; $defs compiled by the caller */
        } else if (!strcmp(k, "type")) {
            if (json_is_string(v)) {
                n->types = (unsigned)type_bit(json_string_value(v));
            } else if (json_is_array(v)) {
                size_t i;
                json_t *t;
                json_array_foreach(v, i, t) {
                    if (!json_is_string(t) || !type_bit(json_string_value(t)))
                        return cerr(c, where, "unknown type");
                    n->types |= (unsigned)type_bit(json_string_value(t));
                }
            }
            if (!n->types)
                return cerr(c, where, "unknown type");
        } else if (!strcmp(k, "properties")) {
            if (!json_is_object(v))
                return cerr(c, where, "properties must be an object");
            n->nprops = json_object_size(v);
            n->props = gc_calloc(n->nprops ? n->nprops : 1, sizeof(*n->props));
            size_t i = 0;
            const char *pk;
            json_t *pv;
            json_object_foreach(v, pk, pv) {
                n->props[i].name = pk;
                n->props[i].len = strlen(pk);
                if (!(n->props[i].schema = compile_new(c, pv, pk)))
                    return c->err->code;
                i++;
            }
            qsort(n->props, n->nprops, sizeof(*n->props), prop_cmp);
        } else if (!strcmp(k, "required")) {
            if (!json_is_array(v))
                return cerr(c, where, "required must be an array");
            n->nrequired = json_array_size(v);
            n->required = gc_calloc(n->nrequired ? n->nrequired : 1, sizeof(char *));
            for (size_t i = 0; i < n->nrequired; i++) {
                if (!json_is_string(json_array_get(v, i)))
                    return cerr(c, where, "required must list strings");
                n->required[i] = json_string_value(json_array_get(v, i));
            }
        } else if (!strcmp(k, "additionalProperties")) {
            if (json_is_false(v)) {
                n->addl = ADDL_NONE;
            } else if (json_is_true(v)) {
                n->addl = ADDL_ANY;
            } else {
                n->addl = ADDL_SCHEMA;
                if (!(n->addl_schema = compile_new(c, v, "additionalProperties")))
                    return c->err->code;
            }
        } else if (!strcmp(k, "propertyNames")) {
            if (!(n->names = compile_new(c, v, "propertyNames")))
                return c->err->code;
        } else if (!strcmp(k, "minProperties")) {
            if (get_count(c, v, k, &n->min_props))
                return c->err->code;
        } else if (!strcmp(k, "maxProperties")) {
            if (get_count(c, v, k, &n->max_props))
                return c->err->code;
        } else if (!strcmp(k, "minLength")) {
            if (get_count(c, v, k, &n->min_len))
                return c->err->code;
        } else if (!strcmp(k, "maxLength")) {
            if (get_count(c, v, k, &n->max_len))
                return c->err->code;
        } else if (!strcmp(k, "minItems")) {
            if (get_count(c, v, k, &n->min_items))
                return c->err->code;
        } else if (!strcmp(k, "maxItems")) {
            if (get_count(c, v, k, &n->max_items))
                return c->err->code;
        } else if (!strcmp(k, "pattern")) {
            if (!json_is_string(v) || !pattern_supported(json_string_value(v)))
                return cerr(c, where, "pattern uses syntax the validator does not implement");
            n->pattern = (char *)json_string_value(v);
        } else if (!strcmp(k, "format")) {
            const char *f = json_is_string(v) ? json_string_value(v) : "";
            if (!strcmp(f, "date-time"))
                n->format = FMT_DATE_TIME;
            else if (!strcmp(f, "uuid"))
                n->format = FMT_UUID;
            else
                return cerr(c, where, "unknown format");
        } else if (!strcmp(k, "enum")) {
            if (!json_is_array(v) || json_array_size(v) == 0)
                return cerr(c, where, "enum must be a non-empty array");
            n->enumv = v;
            n->nenum = json_array_size(v);
            n->enum_text = gc_calloc(n->nenum, sizeof(*n->enum_text));
            for (size_t i = 0; i < n->nenum; i++)
                if (ctext_of(c, json_array_get(v, i), where, &n->enum_text[i]))
                    return c->err->code;
        } else if (!strcmp(k, "const")) {
            n->constv = v;
            if (ctext_of(c, v, where, &n->const_text))
                return c->err->code;
        } else if (!strcmp(k, "minimum")) {
            n->has_min = true;
            if (get_number(c, v, k, &n->min))
                return c->err->code;
        } else if (!strcmp(k, "maximum")) {
            n->has_max = true;
            if (get_number(c, v, k, &n->max))
                return c->err->code;
        } else if (!strcmp(k, "exclusiveMinimum")) {
            n->has_xmin = true;
            if (get_number(c, v, k, &n->xmin))
                return c->err->code;
        } else if (!strcmp(k, "exclusiveMaximum")) {
            n->has_xmax = true;
            if (get_number(c, v, k, &n->xmax))
                return c->err->code;
        } else if (!strcmp(k, "items")) {
            if (!(n->items = compile_new(c, v, "items")))
                return c->err->code;
        } else if (!strcmp(k, "$ref")) {
            const char *r = json_is_string(v) ? json_string_value(v) : "";
            if (strncmp(r, "#/$defs/", 8) != 0)
                return cerr(c, where, "only local references #/$defs/NAME are implemented");
            for (size_t i = 0; i < c->ndefs; i++)
                if (!strcmp(c->def_names[i], r + 8))
                    n->ref = c->def_nodes[i];
            if (!n->ref)
                return cerr(c, where, "reference to a missing $defs entry");
        } else if (!strcmp(k, "oneOf")) {
            if (!json_is_array(v) || json_array_size(v) == 0)
                return cerr(c, where, "oneOf must be a non-empty array");
            n->n_one_of = json_array_size(v);
            n->one_of = gc_calloc(n->n_one_of, sizeof(*n->one_of));
            for (size_t i = 0; i < n->n_one_of; i++)
                if (!(n->one_of[i] = compile_new(c, json_array_get(v, i), "oneOf")))
                    return c->err->code;
        } else {
            char msg[128];
            snprintf(msg, sizeof(msg), "keyword %s is not implemented", k);
            return cerr(c, where, msg);
        }
    }
    for (size_t i = 0; i < n->nrequired; i++)
        for (size_t p = 0; p < n->nprops; p++)
            if (!strcmp(n->props[p].name, n->required[i]))
                n->props[p].required = true;
    return 0;
}

/* After everything is compiled (references filled): a oneOf whose branches all require the
 * same property with a const string value chooses its branch by that value. */
static void find_discriminators(struct node *n, int depth)
{
    if (!n || depth > 32)
        return;
    for (size_t i = 0; i < n->nprops; i++)
        find_discriminators(n->props[i].schema, depth + 1);
    find_discriminators(n->addl_schema, depth + 1);
    find_discriminators(n->items, depth + 1);
    if (!n->n_one_of)
        return;
    const char *key = NULL;
    const char **vals = gc_calloc(n->n_one_of, sizeof(char *));
    for (size_t b = 0; b < n->n_one_of; b++) {
        struct node *br = n->one_of[b]->ref ? n->one_of[b]->ref : n->one_of[b];
        find_discriminators(br, depth + 1);
        const char *found = NULL;
        for (size_t r = 0; r < br->nrequired && !found; r++) {
            for (size_t p = 0; p < br->nprops; p++) {
                struct node *ps = br->props[p].schema;
                if (!strcmp(br->props[p].name, br->required[r]) && ps->constv &&
                    json_is_string(ps->constv) && (!key || !strcmp(key, br->required[r]))) {
                    found = br->required[r];
                    vals[b] = json_string_value(ps->constv);
                }
            }
        }
        if (!found) {
            free(vals);
            return;
        }
        key = found;
    }
    n->disc_key = key;
    n->disc_values = vals;
}

static int compile_schema(const struct gc_embedded_schema *e, struct schema *out,
                          struct gc_error *err)
{
    json_error_t jerr;
    json_t *doc = json_loadb(e->text, e->len, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc)
        return gc_error_set(err, GC_EINTERNAL, "", "schema %s: line %d: %s", e->name, jerr.line,
                            jerr.text);
    struct compiler c = {.schema_name = e->name, .err = err};
    c.defs = json_object_get(doc, "$defs");
    if (c.defs) {
        c.ndefs = json_object_size(c.defs);
        c.def_names = gc_calloc(c.ndefs + 1, sizeof(char *));
        c.def_nodes = gc_calloc(c.ndefs + 1, sizeof(struct node *));
        size_t i = 0;
        const char *k;
        json_t *v;
        json_object_foreach(c.defs, k, v) {
            c.def_names[i] = k;
            c.def_nodes[i] = node_new();
            i++;
        }
        i = 0;
        json_object_foreach(c.defs, k, v) {
            if (compile_node(&c, v, c.def_nodes[i++], k) != 0)
                goto fail;
        }
    }
    struct node *root = compile_new(&c, doc, "(root)");
    if (!root)
        goto fail;
    find_discriminators(root, 0);
    for (size_t i = 0; i < c.ndefs; i++)
        find_discriminators(c.def_nodes[i], 0);
    free(c.def_names);
    free(c.def_nodes);
    out->name = e->name;
    out->root = root;
    out->doc = doc;
    return 0;
fail:
    /* the partial tree is not freed: this is a build defect, reported once at start */
    free(c.def_names);
    free(c.def_nodes);
    return err->code;
}

static void init_all(void)
{
    if (gc_embedded_nschemas > sizeof(schemas) / sizeof(schemas[0])) {
        gc_error_set(&init_err, GC_EINTERNAL, "", "too many embedded schemas");
        return;
    }
    for (size_t i = 0; i < gc_embedded_nschemas; i++) {
        if (compile_schema(&gc_embedded_schemas[i], &schemas[nschemas], &init_err) != 0)
            return;
        nschemas++;
    }
}

int gc_schema_init(struct gc_error *err)
{
    pthread_once(&init_once, init_all);
    if (init_err.code) {
        if (err)
            *err = init_err;
        return init_err.code;
    }
    return 0;
}

const char *gc_schema_text(const char *name, size_t *len)
{
    for (size_t i = 0; i < gc_embedded_nschemas; i++)
        if (!strcmp(gc_embedded_schemas[i].name, name)) {
            if (len)
                *len = gc_embedded_schemas[i].len;
            return gc_embedded_schemas[i].text;
        }
    return NULL;
}

/* ---- validating ---- */

#define MAX_DEPTH 32

struct seg {
    const char *key; /* NULL: index */
    size_t klen;
    size_t index;
};

struct vstate {
    const struct gc_cjdoc *d; /* the instance */
    struct seg path[MAX_DEPTH];
    int depth;
    struct gc_schema_error *err;
};

static void pointer_append(char *out, size_t cap, size_t *len, const char *s, size_t n)
{
    for (size_t i = 0; i < n && *len + 3 < cap; i++) {
        if (s[i] == '~' || s[i] == '/') {
            out[(*len)++] = '~';
            out[(*len)++] = s[i] == '~' ? '0' : '1';
        } else {
            out[(*len)++] = s[i];
        }
    }
    out[*len] = '\0';
}

static int fail(struct vstate *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct vstate *st, const char *fmt, ...)
{
    struct gc_schema_error *e = st->err;
    if (!e)
        return GC_EINVAL;
    size_t len = 0;
    e->pointer[0] = '\0';
    for (int i = 0; i < st->depth; i++) {
        if (len + 2 >= sizeof(e->pointer))
            break;
        e->pointer[len++] = '/';
        e->pointer[len] = '\0';
        if (st->path[i].key) {
            pointer_append(e->pointer, sizeof(e->pointer), &len, st->path[i].key,
                           st->path[i].klen);
        } else {
            char num[24];
            int n = snprintf(num, sizeof(num), "%zu", st->path[i].index);
            pointer_append(e->pointer, sizeof(e->pointer), &len, num, (size_t)n);
        }
    }
    char detail[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    snprintf(e->message, sizeof(e->message), "%s: %s",
             e->pointer[0] ? e->pointer + 1 : "(root)", detail);
    return GC_EINVAL;
}

static const char *type_name(const struct gc_cjdoc *d, uint32_t v)
{
    switch (d->v[v].type) {
    case GC_CJ_OBJECT:
        return "an object";
    case GC_CJ_ARRAY:
        return "an array";
    case GC_CJ_STRING:
        return "a string";
    case GC_CJ_INT:
        return "an integer";
    case GC_CJ_REAL:
        return "a number with a fraction";
    case GC_CJ_TRUE:
    case GC_CJ_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

static void types_text(unsigned t, char *out, size_t cap)
{
    static const char *const names[] = {"null",   "a boolean", "an object", "an array",
                                        "a string", "an integer", "a number"};
    size_t len = 0;
    out[0] = '\0';
    for (int i = 0; i < 7; i++) {
        if (!(t & (1u << i)))
            continue;
        if (i == 5 && (t & T_NUMBER))
            continue;
        int n = snprintf(out + len, cap - len, "%s%s", len ? " or " : "", names[i]);
        if (n < 0 || (size_t)n >= cap - len)
            break;
        len += (size_t)n;
    }
}

/* A string for messages: quoted and cut at 48 code points. */
static void quote_text(const char *s, size_t n, char *out, size_t cap)
{
    size_t i = 0, cps = 0;
    while (i < n && cps < 48) {
        i++;
        while (i < n && ((unsigned char)s[i] & 0xC0) == 0x80)
            i++;
        cps++;
    }
    snprintf(out, cap, "'%.*s%s'", (int)i, s, i < n ? "…" : "");
}

/* A short rendering of a schema's value (const, enum) for messages. */
static void json_value_text(const json_t *v, char *out, size_t cap)
{
    if (json_is_string(v))
        quote_text(json_string_value(v), json_string_length(v), out, cap);
    else if (json_is_integer(v))
        snprintf(out, cap, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(out, cap, "%.15g", json_real_value(v));
    else if (json_is_boolean(v))
        snprintf(out, cap, "%s", json_is_true(v) ? "true" : "false");
    else if (json_is_null(v))
        snprintf(out, cap, "null");
    else
        snprintf(out, cap, "%s", json_is_object(v) ? "an object" : "an array");
}

/* The same for a value of the instance. */
static void value_text(const struct gc_cjdoc *d, uint32_t v, char *out, size_t cap)
{
    const struct gc_cj *x = &d->v[v];
    size_t n;
    switch (x->type) {
    case GC_CJ_STRING: {
        const char *s = gc_cj_str(d, v, &n);
        quote_text(s, n, out, cap);
        break;
    }
    case GC_CJ_INT:
        snprintf(out, cap, "%lld", (long long)x->v.i);
        break;
    case GC_CJ_REAL:
        snprintf(out, cap, "%.15g", x->v.d);
        break;
    case GC_CJ_TRUE:
    case GC_CJ_FALSE:
        snprintf(out, cap, "%s", x->type == GC_CJ_TRUE ? "true" : "false");
        break;
    case GC_CJ_NULL:
        snprintf(out, cap, "null");
        break;
    default:
        snprintf(out, cap, "%s", x->type == GC_CJ_OBJECT ? "an object" : "an array");
    }
}

static void enum_text(const json_t *e, char *out, size_t cap)
{
    size_t len = 0, i;
    json_t *x;
    out[0] = '\0';
    json_array_foreach(e, i, x) {
        char t[96];
        if (json_is_string(x))
            snprintf(t, sizeof(t), "%s", json_string_value(x));
        else
            json_value_text(x, t, sizeof(t));
        int n = snprintf(out + len, cap - len, "%s%s", i ? ", " : "", t);
        if (n < 0 || (size_t)n >= cap - len)
            break;
        len += (size_t)n;
    }
}

static size_t utf8_length(const char *s, size_t n)
{
    size_t cps = 0;
    for (size_t i = 0; i < n; i++)
        cps += ((unsigned char)s[i] & 0xC0) != 0x80;
    return cps;
}

/* Decodes one UTF-8 code point of a valid string (the reader has checked it). */
static uint32_t utf8_next(const unsigned char **p)
{
    const unsigned char *s = *p;
    uint32_t c = s[0];
    int extra = c < 0x80 ? 0 : c < 0xE0 ? 1 : c < 0xF0 ? 2 : 3;
    if (extra)
        c &= 0x3Fu >> extra;
    for (int i = 1; i <= extra && s[i]; i++)
        c = (c << 6) | (s[i] & 0x3Fu);
    *p = s + 1 + extra;
    return c;
}

/* ---- the pattern subset: literals, \-escapes (\d \w \s and escaped literals), '.',
 * classes [a-z_] and [^…], the quantifiers * + ?, anchors ^ and $. Patterns match
 * anywhere unless anchored, as ECMA-262 regular expressions do in JSON Schema. ---- */

/* Does the atom at pat (length *alen) match code point c? */
static bool atom_match(const char *pat, size_t *alen, uint32_t c)
{
    if (pat[0] == '\\') {
        *alen = 2;
        switch (pat[1]) {
        case 'd':
            return c >= '0' && c <= '9';
        case 'w':
            return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                   c == '_';
        case 's':
            return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
        default:
            return c == (unsigned char)pat[1];
        }
    }
    if (pat[0] == '.') {
        *alen = 1;
        return c != '\n';
    }
    if (pat[0] == '[') {
        const char *p = pat + 1;
        bool neg = *p == '^', in = false;
        if (neg)
            p++;
        const char *end = strchr(p + 1, ']'); /* a ']' right after '[' is literal */
        *alen = (size_t)(end - pat) + 1;
        while (p < end) {
            uint32_t lo = (unsigned char)*p, hi;
            if (*p == '\\' && p + 1 < end) {
                size_t l;
                if (atom_match(p, &l, c))
                    in = true;
                p += 2;
                continue;
            }
            if (p + 2 < end && p[1] == '-') {
                hi = (unsigned char)p[2];
                p += 3;
            } else {
                hi = lo;
                p++;
            }
            if (c >= lo && c <= hi)
                in = true;
        }
        return in != neg;
    }
    *alen = 1;
    return c == (unsigned char)pat[0];
}

static bool match_here(const char *pat, const unsigned char *s, const unsigned char *end,
                       int depth);

static bool match_here(const char *pat, const unsigned char *s, const unsigned char *end,
                       int depth)
{
    if (depth > 64)
        return false;
    for (;;) {
        if (!*pat)
            return true;
        if (pat[0] == '$' && !pat[1])
            return s == end;
        size_t alen;
        uint32_t c = 0;
        const unsigned char *next = s;
        if (s < end)
            c = utf8_next(&next);
        /* the atom's length, whatever c is */
        (void)atom_match(pat, &alen, c);
        char q = pat[alen];
        if (q == '*' || q == '+' || q == '?') {
            /* greedy, then give back one code point at a time */
            size_t n = 0, maxn = q == '?' ? 1 : (size_t)-1;
            const unsigned char *t = s;
            while (t < end && n < maxn) {
                const unsigned char *t2 = t;
                size_t l;
                if (!atom_match(pat, &l, utf8_next(&t2)))
                    break;
                t = t2;
                n++;
            }
            size_t least = q == '+' ? 1 : 0;
            for (;;) {
                if (n < least)
                    return false;
                if (match_here(pat + alen + 1, t, end, depth + 1))
                    return true;
                if (n == 0)
                    return false;
                do
                    t--;
                while (t > s && (*t & 0xC0) == 0x80);
                n--;
            }
        }
        if (s >= end || !atom_match(pat, &alen, c))
            return false;
        s = next;
        pat += alen;
    }
}

static bool match_pattern(const char *pat, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str, *end = s + n;
    if (pat[0] == '^')
        return match_here(pat + 1, s, end, 0);
    for (;;) {
        if (match_here(pat, s, end, 0))
            return true;
        if (s >= end)
            return false;
        utf8_next(&s);
    }
}

static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* The profile of RFC 3339 every supervision time uses: YYYY-MM-DDTHH:MM:SS.sssZ (UTC,
 * milliseconds). A leap second (:60) is accepted as RFC 3339 allows it. */
static bool is_date_time(const char *s, size_t n)
{
    if (n != 24 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' ||
        s[19] != '.' || s[23] != 'Z')
        return false;
    int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2), h = digits(s + 11, 2),
        mi = digits(s + 14, 2), se = digits(s + 17, 2), ms = digits(s + 20, 3);
    if (y < 0 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || se < 0 ||
        se > 60 || ms < 0)
        return false;
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int md = mdays[mo - 1];
    if (mo == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        md = 29;
    return d <= md;
}

static bool is_uuid(const char *s, size_t n)
{
    if (n != 36)
        return false;
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return false;
        }
    }
    return true;
}

static int check(const struct node *n, uint32_t v, struct vstate *st);

/* v < bound (or v > bound when above): integers compare exactly against integral bounds,
 * even beyond 2^53 where doubles lose precision. */
static bool below(const struct gc_cj *x, double bound, bool above)
{
    if (x->type == GC_CJ_INT && bound == floor(bound) && fabs(bound) < 9.2e18) {
        long long iv = x->v.i, b = (long long)bound;
        return above ? iv > b : iv < b;
    }
    double d = x->type == GC_CJ_INT ? (double)x->v.i : x->v.d;
    return above ? d > bound : d < bound;
}

static int push(struct vstate *st, const char *key, size_t klen, size_t index)
{
    if (st->depth >= MAX_DEPTH)
        return fail(st, "nested more than %d levels deep", MAX_DEPTH);
    st->path[st->depth].key = key;
    st->path[st->depth].klen = klen;
    st->path[st->depth].index = index;
    st->depth++;
    return 0;
}

static int check_child(const struct node *n, uint32_t v, struct vstate *st, const char *key,
                       size_t klen, size_t index)
{
    int rc = push(st, key, klen, index);
    if (rc)
        return rc;
    rc = check(n, v, st);
    if (rc == 0)
        st->depth--;
    return rc; /* on failure the path stays, for the caller's view; fail() has used it */
}

static const struct prop *find_prop(const struct node *n, const char *key, size_t klen)
{
    size_t lo = 0, hi = n->nprops;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const char *name = n->props[mid].name;
        size_t nlen = n->props[mid].len;
        int c = memcmp(key, name, klen < nlen ? klen : nlen);
        if (c == 0)
            c = klen < nlen ? -1 : klen > nlen;
        if (c == 0)
            return &n->props[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

static int check_name(const struct node *nm, const char *k, size_t klen, struct vstate *st)
{
    int rc = push(st, k, klen, 0);
    if (rc)
        return rc;
    size_t cps = utf8_length(k, klen);
    if (nm->max_len >= 0 && cps > (size_t)nm->max_len)
        return fail(st, "the name is %zu characters long, above the maximum %ld", cps,
                    nm->max_len);
    if (nm->min_len >= 0 && cps < (size_t)nm->min_len)
        return fail(st, "the name is %zu characters long, below the minimum %ld", cps,
                    nm->min_len);
    if (nm->pattern && !match_pattern(nm->pattern, k, klen))
        return fail(st, "the name does not match the pattern %s", nm->pattern);
    st->depth--;
    return 0;
}

/* The members of an object: each key looked up once among the schema's properties (the
 * lookups are kept for the second pass on up to 64 members); required members first, as a
 * missing one is the error to report before any member's. */
static int check_object(const struct node *n, uint32_t v, struct vstate *st)
{
    const struct gc_cjdoc *d = st->d;
    size_t size = d->v[v].count;
    const struct node *found[64];
    size_t nfound = 0, nreq = 0;
    uint32_t k = v + 1;
    for (size_t m = 0; m < size; m++, k = d->v[k + 1].next) {
        size_t klen;
        const char *key = gc_cj_str(d, k, &klen);
        const struct prop *p = n->nprops ? find_prop(n, key, klen) : NULL;
        if (p && p->required)
            nreq++;
        if (m < 64)
            found[nfound++] = p ? p->schema : NULL;
    }
    if (nreq < n->nrequired) { /* which one: the first missing in the schema's order */
        for (size_t i = 0; i < n->nrequired; i++) {
            if (gc_cj_get(d, v, n->required[i]) == GC_CJ_NONE) {
                push(st, n->required[i], strlen(n->required[i]), 0);
                return fail(st, "is required");
            }
        }
    }
    if (n->max_props >= 0 && size > (size_t)n->max_props)
        return fail(st, "%zu members is above the maximum %ld", size, n->max_props);
    if (n->min_props >= 0 && size < (size_t)n->min_props)
        return fail(st, "%zu members is below the minimum %ld", size, n->min_props);
    k = v + 1;
    for (size_t m = 0; m < size; m++, k = d->v[k + 1].next) {
        size_t klen;
        const char *key = gc_cj_str(d, k, &klen);
        int rc;
        if (n->names && (rc = check_name(n->names, key, klen, st)) != 0)
            return rc;
        const struct node *ps;
        if (m < nfound) {
            ps = found[m];
        } else {
            const struct prop *p = n->nprops ? find_prop(n, key, klen) : NULL;
            ps = p ? p->schema : NULL;
        }
        if (ps) {
            if ((rc = check_child(ps, k + 1, st, key, klen, 0)) != 0)
                return rc;
        } else if (n->addl == ADDL_NONE) {
            push(st, key, klen, 0);
            return fail(st, "is not allowed here (not a field of this object)");
        } else if (n->addl == ADDL_SCHEMA) {
            if ((rc = check_child(n->addl_schema, k + 1, st, key, klen, 0)) != 0)
                return rc;
        }
    }
    return 0;
}

static int check_one_of(const struct node *n, uint32_t v, struct vstate *st)
{
    const struct gc_cjdoc *d = st->d;
    if (n->disc_key) {
        uint32_t dk = gc_cj_get(d, v, n->disc_key);
        for (size_t b = 0; dk != GC_CJ_NONE && b < n->n_one_of; b++)
            if (gc_cj_str_eq(d, dk, n->disc_values[b]))
                return check(n->one_of[b], v, st);
        char opts[160];
        size_t len = 0;
        opts[0] = '\0';
        for (size_t b = 0; b < n->n_one_of; b++) {
            int w = snprintf(opts + len, sizeof(opts) - len, "%s%s", b ? ", " : "",
                             n->disc_values[b]);
            if (w < 0 || (size_t)w >= sizeof(opts) - len)
                break;
            len += (size_t)w;
        }
        if (d->v[v].type != GC_CJ_OBJECT)
            return fail(st, "must be an object, not %s", type_name(d, v));
        push(st, n->disc_key, strlen(n->disc_key), 0);
        if (dk == GC_CJ_NONE)
            return fail(st, "is required (one of %s)", opts);
        char t[96];
        value_text(d, dk, t, sizeof(t));
        return fail(st, "%s is not one of %s", t, opts);
    }
    size_t ok = 0;
    int depth = st->depth;
    struct gc_schema_error *save = st->err;
    st->err = NULL;
    for (size_t b = 0; b < n->n_one_of; b++) {
        if (check(n->one_of[b], v, st) == 0)
            ok++;
        st->depth = depth;
    }
    st->err = save;
    if (ok == 1)
        return 0;
    return fail(st, ok ? "matches more than one of the alternatives" :
                         "matches none of the alternatives");
}

/* Is the instance's value v the schema value whose canonical text is t (n bytes)? The
 * instance is canonical text too, so equal values are equal bytes. */
static bool same_value(const struct gc_cjdoc *d, uint32_t v, const struct ctext *t)
{
    const struct gc_cj *x = &d->v[v];
    return x->end - x->start == t->len && memcmp(d->text + x->start, t->text, t->len) == 0;
}

static int check_string(const struct node *n, uint32_t v, struct vstate *st)
{
    size_t len;
    const char *s = gc_cj_str(st->d, v, &len);
    if (n->max_len >= 0 || n->min_len >= 0) {
        /* bytes bound code points from above, and from below by a quarter */
        size_t cps = (n->max_len >= 0 && len <= (size_t)n->max_len && n->min_len <= 0)
                         ? len
                         : utf8_length(s, len);
        if (n->max_len >= 0 && cps > (size_t)n->max_len)
            return fail(st, "is %zu characters long, above the maximum %ld", cps, n->max_len);
        if (n->min_len >= 0 && cps < (size_t)n->min_len)
            return fail(st, "is %zu characters long, below the minimum %ld", cps, n->min_len);
    }
    const char *bad = NULL;
    if (n->format == FMT_DATE_TIME && !is_date_time(s, len))
        bad = "is not a time of the form YYYY-MM-DDTHH:MM:SS.sssZ (UTC)";
    else if (n->format == FMT_UUID && !is_uuid(s, len))
        bad = "is not a lowercase UUID";
    if (bad || (n->pattern && !match_pattern(n->pattern, s, len))) {
        char got[96];
        value_text(st->d, v, got, sizeof(got));
        if (bad)
            return fail(st, "%s %s", got, bad);
        return fail(st, "%s does not match the pattern %s", got, n->pattern);
    }
    return 0;
}

static int check_number(const struct node *n, uint32_t v, struct vstate *st)
{
    const struct gc_cj *x = &st->d->v[v];
    const char *what = NULL;
    double bound = 0;
    if (n->has_min && below(x, n->min, false))
        what = "is below the minimum", bound = n->min;
    else if (n->has_max && below(x, n->max, true))
        what = "is above the maximum", bound = n->max;
    else if (n->has_xmin && !below(x, n->xmin, true))
        what = "is not above", bound = n->xmin;
    else if (n->has_xmax && !below(x, n->xmax, false))
        what = "is not below", bound = n->xmax;
    if (!what)
        return 0;
    char got[48];
    value_text(st->d, v, got, sizeof(got));
    if (bound == floor(bound) && fabs(bound) < 9.2e18)
        return fail(st, "%s %s %lld", got, what, (long long)bound);
    return fail(st, "%s %s %.15g", got, what, bound);
}

static int check(const struct node *n, uint32_t v, struct vstate *st)
{
    const struct gc_cjdoc *d = st->d;
    const struct gc_cj *x = &d->v[v];
    if (n->ref) {
        int rc = check(n->ref, v, st);
        if (rc)
            return rc;
    }
    if (n->types) {
        static const unsigned bits[] = {
            [GC_CJ_NULL] = T_NULL,     [GC_CJ_FALSE] = T_BOOLEAN,
            [GC_CJ_TRUE] = T_BOOLEAN,  [GC_CJ_INT] = T_INTEGER | T_NUMBER,
            [GC_CJ_REAL] = T_NUMBER,   [GC_CJ_STRING] = T_STRING,
            [GC_CJ_ARRAY] = T_ARRAY,   [GC_CJ_OBJECT] = T_OBJECT,
        };
        if (!(bits[x->type] & n->types)) {
            char want[96];
            types_text(n->types, want, sizeof(want));
            return fail(st, "must be %s, not %s", want, type_name(d, v));
        }
    }
    if (n->constv && !same_value(d, v, &n->const_text)) {
        char want[96], got[96];
        json_value_text(n->constv, want, sizeof(want));
        value_text(d, v, got, sizeof(got));
        return fail(st, "%s is not the required value %s", got, want);
    }
    if (n->enumv) {
        bool found = false;
        for (size_t i = 0; i < n->nenum && !found; i++)
            found = same_value(d, v, &n->enum_text[i]);
        if (!found) {
            char got[96], opts[224];
            value_text(d, v, got, sizeof(got));
            enum_text(n->enumv, opts, sizeof(opts));
            return fail(st, "%s is not one of %s", got, opts);
        }
    }
    int rc = 0;
    switch (x->type) {
    case GC_CJ_OBJECT:
        if (n->nprops || n->nrequired || n->addl != ADDL_ANY || n->names ||
            n->max_props >= 0 || n->min_props >= 0)
            rc = check_object(n, v, st);
        break;
    case GC_CJ_ARRAY: {
        size_t size = x->count;
        if (n->max_items >= 0 && size > (size_t)n->max_items)
            return fail(st, "%zu items is above the maximum %ld", size, n->max_items);
        if (n->min_items >= 0 && size < (size_t)n->min_items)
            return fail(st, "%zu items is below the minimum %ld", size, n->min_items);
        uint32_t it = v + 1;
        for (size_t i = 0; n->items && i < size && !rc; i++, it = d->v[it].next)
            rc = check_child(n->items, it, st, NULL, 0, i);
        break;
    }
    case GC_CJ_STRING:
        rc = check_string(n, v, st);
        break;
    case GC_CJ_INT:
    case GC_CJ_REAL:
        rc = check_number(n, v, st);
        break;
    default:
        break;
    }
    if (rc)
        return rc;
    if (n->n_one_of)
        return check_one_of(n, v, st);
    return 0;
}

static const struct schema *find_schema(const char *name)
{
    for (size_t i = 0; i < nschemas; i++)
        if (!strcmp(schemas[i].name, name))
            return &schemas[i];
    return NULL;
}

static int validate_at(const char *name, const struct gc_cjdoc *d, uint32_t inst,
                       const char *prefix, struct gc_schema_error *err)
{
    struct gc_error ierr = {0};
    if (gc_schema_init(&ierr) != 0)
        GC_BUG("supervision schemas do not compile: %s", ierr.msg);
    const struct schema *s = find_schema(name);
    if (!s) {
        if (err) {
            snprintf(err->pointer, sizeof(err->pointer), "%s", prefix ? prefix : "");
            snprintf(err->message, sizeof(err->message), "no schema called '%s'", name);
        }
        return GC_ENOTFOUND;
    }
    struct vstate st = {.d = d, .depth = 0, .err = err};
    if (prefix)
        push(&st, prefix, strlen(prefix), 0);
    return check(s->root, inst, &st);
}

int gc_schema_validate_cj(const char *name, const struct gc_cjdoc *d, uint32_t instance,
                          struct gc_schema_error *err)
{
    return validate_at(name, d, instance, NULL, err);
}

int gc_schema_validate_record_cj(const struct gc_cjdoc *d, uint32_t record,
                                 struct gc_schema_error *err)
{
    int rc = validate_at("record", d, record, NULL, err);
    if (rc)
        return rc;
    uint32_t ds = gc_cj_get(d, record, "dataset"), data = gc_cj_get(d, record, "data");
    bool none = data == GC_CJ_NONE || d->v[data].type == GC_CJ_NULL;
    if (gc_cj_str_eq(d, gc_cj_get(d, record, "op"), "delete")) {
        if (!none) {
            if (err) {
                snprintf(err->pointer, sizeof(err->pointer), "/data");
                snprintf(err->message, sizeof(err->message),
                         "data: must be absent or null when op is delete");
            }
            return GC_EINVAL;
        }
        return 0;
    }
    if (none) {
        if (err) {
            snprintf(err->pointer, sizeof(err->pointer), "/data");
            snprintf(err->message, sizeof(err->message), "data: is required when op is upsert");
        }
        return GC_EINVAL;
    }
    char name[16];
    return validate_at(gc_cj_strcpy(d, ds, name, sizeof(name)), d, data, "data", err);
}

/* jansson values: indexed in canonical form first (a string holding U+0000 cannot be). */
static int from_json(struct gc_cjdoc *d, const json_t *v, struct gc_schema_error *err)
{
    if (gc_cj_from_json(d, v) == 0)
        return 0;
    if (err) {
        err->pointer[0] = '\0';
        snprintf(err->message, sizeof(err->message),
                 "(root): cannot be put in canonical form (U+0000 in a string, a number that "
                 "is not finite, or nested more than %d levels)",
                 GC_CANON_MAX_DEPTH);
    }
    return GC_EINVAL;
}

int gc_schema_validate(const char *name, const json_t *instance, struct gc_schema_error *err)
{
    struct gc_cjdoc d = {0};
    int rc = from_json(&d, instance, err);
    if (!rc)
        rc = validate_at(name, &d, 0, NULL, err);
    gc_cj_release(&d);
    return rc;
}

int gc_schema_validate_record(const json_t *record, struct gc_schema_error *err)
{
    struct gc_cjdoc d = {0};
    int rc = from_json(&d, record, err);
    if (!rc)
        rc = gc_schema_validate_record_cj(&d, 0, err);
    gc_cj_release(&d);
    return rc;
}
