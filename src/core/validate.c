/* JSON body validation. */
#include "core/validate.h"

#include <string.h>

size_t gc_utf8_len(const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p & 0xc0) != 0x80)
            n++;
    return n;
}

const char *gc_json_str(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

int gc_check_if_match(const json_t *obj, int64_t if_match, const char *noun, const char *id,
                      struct gc_error *err)
{
    if (!obj || if_match < 0)
        return 0;
    long long v = (long long)json_integer_value(json_object_get(obj, "version"));
    if (v == if_match)
        return 0;
    return gc_error_set(err, GC_EPRECOND, "If-Match",
                        "%s '%s' is at version %lld, not %lld: reload it and retry", noun, id,
                        v, (long long)if_match);
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "unknown";
}

static const char *const want_names[] = {"a string", "a boolean", "an integer", "an object",
                                         "an array", "a number"};

static bool charset_ok(const char *s, enum gc_charset cs, char *bad)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; p[i]; i++) {
        unsigned char c = p[i];
        bool ok;
        switch (cs) {
        case GC_CS_TEXT:
            ok = c >= 0x20 && c != 0x7f;
            /* C1 controls (U+0080–U+009F), bidi overrides and isolates (U+202A–U+202E,
             * U+2066–U+2069) and line/paragraph separators (U+2028, U+2029) can disguise
             * what a name says on a terminal or a page */
            if (c == 0xc2 && p[i + 1] >= 0x80 && p[i + 1] <= 0x9f)
                ok = false;
            if (c == 0xe2 && p[i + 1] == 0x80 && p[i + 2] >= 0xa8 && p[i + 2] <= 0xae)
                ok = false;
            if (c == 0xe2 && p[i + 1] == 0x81 && p[i + 2] >= 0xa6 && p[i + 2] <= 0xa9)
                ok = false;
            break;
        case GC_CS_CODE:
            ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '-';
            break;
        case GC_CS_USERNAME:
            ok = (c >= 'a' && c <= 'z') ||
                 (i > 0 && ((c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'));
            break;
        default:
            ok = true;
        }
        if (!ok) {
            *bad = (char)c;
            return false;
        }
    }
    return true;
}

static const char *charset_doc(enum gc_charset cs)
{
    switch (cs) {
    case GC_CS_CODE: return "letters, digits, '.', '_' and '-'";
    case GC_CS_USERNAME: return "a lowercase letter, then lowercase letters, digits, '.', '_', '-'";
    default: return "printable characters (no control characters)";
    }
}

int gc_json_check(const json_t *in, const struct gc_jfield *spec, size_t n, struct gc_error *err)
{
    if (!json_is_object(in))
        return gc_error_set(err, GC_EINVAL, "", "request body must be a JSON object, got %s",
                            type_name(in));
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)in, key, v) {
        const struct gc_jfield *f = NULL;
        for (size_t i = 0; i < n; i++)
            if (strcmp(spec[i].name, key) == 0)
                f = &spec[i];
        if (!f) {
            char known[512] = "";
            size_t o = 0;
            for (size_t i = 0; i < n && o < sizeof(known); i++)
                o += (size_t)snprintf(known + o, sizeof(known) - o, "%s%s", i ? ", " : "",
                                      spec[i].name);
            return gc_error_set(err, GC_EINVAL, key, "unknown field '%.64s'; known fields: %s",
                                key, known);
        }
        if (json_is_null(v)) {
            if (!f->nullable)
                return gc_error_set(err, GC_EINVAL, key, "field '%s' must not be null", key);
            continue;
        }
        bool type_ok = (f->type == GC_JT_STRING && json_is_string(v)) ||
                       (f->type == GC_JT_BOOL && json_is_boolean(v)) ||
                       (f->type == GC_JT_INT && json_is_integer(v)) ||
                       (f->type == GC_JT_OBJECT && json_is_object(v)) ||
                       (f->type == GC_JT_ARRAY && json_is_array(v)) ||
                       (f->type == GC_JT_NUMBER && json_is_number(v));
        if (!type_ok)
            return gc_error_set(err, GC_EINVAL, key, "field '%s': expected %s, got %s", key,
                                want_names[f->type], type_name(v));
        if (f->type == GC_JT_STRING) {
            const char *s = json_string_value(v);
            size_t len = gc_utf8_len(s);
            if (len < (size_t)f->min || len > (size_t)f->max)
                return gc_error_set(err, GC_EINVAL, key,
                                    "field '%s': length must be from %d to %d characters, got "
                                    "%zu",
                                    key, f->min, f->max, len);
            char bad;
            if (!charset_ok(s, f->charset, &bad)) {
                if ((unsigned char)bad < 0x20 || bad == 0x7f)
                    return gc_error_set(err, GC_EINVAL, key,
                                        "field '%s': control character 0x%02x not allowed; "
                                        "allowed: %s",
                                        key, (unsigned char)bad, charset_doc(f->charset));
                if ((unsigned char)bad >= 0x80)
                    return gc_error_set(err, GC_EINVAL, key,
                                        "field '%s': control character or text-direction "
                                        "override not allowed (a C1 control, U+2028/U+2029 or "
                                        "U+202A–U+202E/U+2066–U+2069); allowed: %s",
                                        key, charset_doc(f->charset));
                return gc_error_set(err, GC_EINVAL, key,
                                    "field '%s': character '%c' not allowed; allowed: %s", key,
                                    bad, charset_doc(f->charset));
            }
        } else if (f->type == GC_JT_ARRAY) {
            size_t items = json_array_size(v);
            if (items < (size_t)f->min || items > (size_t)f->max)
                return gc_error_set(err, GC_EINVAL, key,
                                    "field '%s': must have from %d to %d items, got %zu", key,
                                    f->min, f->max, items);
        } else if (f->type == GC_JT_INT) {
            json_int_t x = json_integer_value(v);
            if (x < f->min || x > f->max)
                return gc_error_set(err, GC_EINVAL, key,
                                    "field '%s': must be from %d to %d, got %lld", key, f->min,
                                    f->max, (long long)x);
        }
    }
    for (size_t i = 0; i < n; i++)
        if (spec[i].required && !json_object_get(in, spec[i].name))
            return gc_error_set(err, GC_EINVAL, spec[i].name, "missing required field '%s'",
                                spec[i].name);
    return 0;
}
