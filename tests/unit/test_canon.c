/* Unit tests of the canonical JSON reader (src/supervision/canon.c): it indexes exactly the
 * text the writer produces, refuses every other text (which gc_cj_load then takes through
 * jansson), and its index gives back the values. */
#include "testutil.h"

#include "supervision/canon.h"
#include "util/buf.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>

/* Rebuilds a jansson value from value i of the index (keys and strings decoded). */
static json_t *to_json(const struct gc_cjdoc *d, uint32_t i)
{
    const struct gc_cj *x = &d->v[i];
    size_t n;
    const char *s;
    switch (x->type) {
    case GC_CJ_NULL:
        return json_null();
    case GC_CJ_FALSE:
        return json_false();
    case GC_CJ_TRUE:
        return json_true();
    case GC_CJ_INT:
        return json_integer(x->v.i);
    case GC_CJ_REAL:
        return json_real(x->v.d);
    case GC_CJ_STRING:
        s = gc_cj_str(d, i, &n);
        return json_stringn(s, n);
    case GC_CJ_ARRAY: {
        json_t *a = json_array();
        uint32_t c = i + 1;
        for (uint32_t k = 0; k < x->count; k++, c = d->v[c].next)
            json_array_append_new(a, to_json(d, c));
        assert_int_equal(c, x->next); /* the subtree ends where next says */
        return a;
    }
    default: {
        json_t *o = json_object();
        uint32_t k = i + 1;
        for (uint32_t m = 0; m < x->count; m++, k = d->v[k + 1].next) {
            assert_int_equal(d->v[k].type, GC_CJ_STRING);
            s = gc_cj_str(d, k, &n);
            char *key = strndup(s, n);
            json_object_set_new(o, key, to_json(d, k + 1));
            /* gc_cj_get finds every member */
            assert_int_equal(gc_cj_get(d, i, key), k + 1);
            free(key);
        }
        assert_int_equal(k, x->next);
        return o;
    }
    }
}

/* Every value's text is the canonical text of the value it indexes. */
static void check_spans(const struct gc_cjdoc *d)
{
    for (size_t i = 0; i < d->n; i++) {
        json_t *v = to_json(d, (uint32_t)i);
        char *c = gc_canonical_dumps(v);
        char *t = gc_cj_dup(d, (uint32_t)i);
        assert_string_equal(c, t);
        free(c);
        free(t);
        json_decref(v);
    }
}

/* Reads the canonical text of v and checks the index against v. */
static void round_trip(const json_t *v)
{
    char *c = gc_canonical_dumps(v);
    assert_non_null(c);
    struct gc_cjdoc d = {0};
    int rc = gc_cj_read(&d, c, strlen(c));
    if (rc)
        fail_msg("canonical text refused: %.300s", c);
    json_t *back = to_json(&d, 0);
    if (!json_equal(back, (json_t *)v))
        fail_msg("read back differently: %.300s", c);
    assert_int_equal(d.v[0].end, strlen(c));
    assert_int_equal(d.v[0].next, d.n);
    check_spans(&d);
    json_decref(back);
    gc_cj_release(&d);
    free(c);
}

static void reads_canonical_text(void **state)
{
    (void)state;
    json_error_t je;
    const char *texts[] = {
        "{\"b\":1,\"a\":[true,null,0.1,1e20,-0.0,2.5e-7,100.0,-3,1.5e300],"
        "\"\\u00e9\":\"x\\n\\\"\\u0001/\\\\\\u2028\\t\\b\\f\\r\",\"B\":{\"z\":{},\"y\":[]},\"\":false}",
        "{\"z\":[1e-300,-1.5e-10,123456789012345678,3.0,0.30000000000000004,"
        "-9223372036854775807,1e22,5e-324,9223372036854775807],\"\\u00ff\":\"\\u001f\\u007f\\b\","
        "\"Z\":{\"\\u4e2d\":\"\\ud83d\\ude00\",\"a\":null}}",
        "[]", "{}", "0", "-1", "\"\"", "[[[[[]]]]]", "[{\"a\":[{\"b\":{}}]}]",
        "{\"a\":1,\"ab\":2,\"b\":3,\"\\u007f\":4,\"\\u00e9\":5}",
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        json_t *v = json_loads(texts[i], JSON_DECODE_ANY, &je);
        if (!v)
            fail_msg("test text %zu: %s", i, je.text);
        round_trip(v);
        json_decref(v);
    }
    /* INT64_MIN has no positive counterpart */
    json_t *m = json_integer(INT64_MIN);
    round_trip(m);
    json_decref(m);
}

/* A small deterministic generator of awkward values. */
static uint64_t rng = 0x9e3779b97f4a7c15u;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static json_t *random_string(void)
{
    static const char *const pieces[] = {"a", "Z", "\"", "\\", "/", "\n", "\x01", "\x1f", "\x7f",
                                         "é", "中", "😀", " ", "\t", "~", "\r", "\b", "\f"};
    char buf[64] = "";
    size_t n = next_rand() % 6;
    for (size_t i = 0; i < n; i++)
        strcat(buf, pieces[next_rand() % (sizeof(pieces) / sizeof(pieces[0]))]);
    return json_string(buf);
}

static json_t *random_value(int depth)
{
    switch (next_rand() % (depth > 4 ? 6 : 8)) {
    case 0:
        return json_null();
    case 1:
        return json_boolean(next_rand() & 1);
    case 2: {
        int64_t v = (int64_t)next_rand();
        return json_integer(next_rand() & 1 ? v : v % 1000);
    }
    case 3: {
        double d;
        do {
            uint64_t bits = next_rand();
            memcpy(&d, &bits, sizeof(d));
        } while (!isfinite(d));
        static const double nice[] = {0.1, 1.0, -0.0, 1e20, 2.5e-7, 100.0, 1e-5, 123.456};
        return json_real(next_rand() & 1 ? d : nice[next_rand() % 8]);
    }
    case 4:
    case 5:
        return random_string();
    case 6: {
        json_t *a = json_array();
        size_t n = next_rand() % 5;
        for (size_t i = 0; i < n; i++)
            json_array_append_new(a, random_value(depth + 1));
        return a;
    }
    default: {
        json_t *o = json_object();
        size_t n = next_rand() % 5;
        for (size_t i = 0; i < n; i++) {
            json_t *k = random_string();
            json_object_set_new(o, json_string_value(k), random_value(depth + 1));
            json_decref(k);
        }
        return o;
    }
    }
}

static void reads_random_values(void **state)
{
    (void)state;
    for (int i = 0; i < 3000; i++) {
        json_t *v = random_value(0);
        round_trip(v);
        json_decref(v);
    }
}

/* Text that is not canonical is refused by the reader; gc_cj_load takes the JSON among it
 * through jansson and indexes its canonical form. */
static void refuses_other_text(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        bool json; /* valid JSON (gc_cj_load takes it) */
    } cases[] = {
        {"{\"a\": 1}", true},            /* whitespace */
        {" {\"a\":1}", true},            /* leading whitespace */
        {"{\"b\":1,\"a\":2}", true},     /* keys out of order */
        {"{\"a\":1,\"a\":1}", false},    /* a duplicate key (jansson refuses it too) */
        {"[\"\\/\"]", true},             /* an escape the writer does not use */
        {"[\"\\u0041\"]", true},
        {"[\"\\u001f\"]", true},         /* lowercase hex */
        {"[\"\\u000A\"]", true},         /* \\n has its short escape */
        {"[\"\\u00e9\"]", true},
        {"[\"\\u0000\"]", false},        /* jansson refuses U+0000 */
        {"[\"a\x01\"]", false},          /* a raw control character */
        {"[-0]", true},
        {"[01]", false},
        {"[1.0e5]", true},
        {"[1E5]", true},
        {"[1e+20]", true},
        {"[1e020]", true},
        {"[0.1]", true},                 /* canonical is 0.10000000000000001 */
        {"[2.50]", true},
        {"[1.]", false},
        {"[.5]", false},
        {"[-]", false},
        {"[1e400]", false},              /* not finite */
        {"[9223372036854775808]", false}, /* beyond int64 */
        {"[1,]", false},
        {"[1 2]", false},
        {"[1,,2]", false},
        {"{\"a\"1}", false},
        {"{\"a\":}", false},
        {"{,}", false},
        {"[\"\xc0\x80\"]", false},       /* overlong */
        {"[\"\xed\xa0\x80\"]", false},   /* a surrogate */
        {"[\"\xf4\x90\x80\x80\"]", false}, /* above U+10FFFF */
        {"[\"\xe4\xb8\"]", false},       /* cut short */
        {"[tru]", false},
        {"[nul]", false},
        {"[\"unterminated]", false},
        {"{} x", false},
        {"", false},
        {"[] []", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *t = cases[i].text;
        struct gc_cjdoc d = {0};
        int rc = gc_cj_read(&d, t, strlen(t));
        if (rc != GC_EINVAL)
            fail_msg("case %zu (%s): read gave %d", i, t, rc);
        assert_int_equal(d.n, 0);
        struct gc_error err = {0};
        rc = gc_cj_load(&d, t, strlen(t), &err);
        if (cases[i].json) {
            if (rc)
                fail_msg("case %zu (%s): load: %s", i, t, err.msg);
            json_error_t je;
            json_t *v = json_loads(t, JSON_DECODE_ANY, &je);
            char *c = gc_canonical_dumps(v);
            assert_non_null(d.own);
            assert_string_equal(d.own, c);
            assert_ptr_equal(d.text, d.own);
            free(c);
            json_decref(v);
        } else {
            if (rc != GC_EINVAL)
                fail_msg("case %zu (%s): load gave %d", i, t, rc);
            assert_true(strstr(err.msg, "not JSON") || strstr(err.msg, "canonical"));
        }
        gc_cj_release(&d);
    }
}

static void nesting_limit(void **state)
{
    (void)state;
    char deep[2 * GC_CANON_MAX_DEPTH + 3];
    for (int depth = GC_CANON_MAX_DEPTH; depth <= GC_CANON_MAX_DEPTH + 1; depth++) {
        memset(deep, '[', (size_t)depth);
        memset(deep + depth, ']', (size_t)depth);
        deep[2 * depth] = '\0';
        struct gc_cjdoc d = {0};
        struct gc_error err = {0};
        int rc = gc_cj_read(&d, deep, strlen(deep));
        assert_int_equal(rc, depth <= GC_CANON_MAX_DEPTH ? 0 : GC_EINVAL);
        rc = gc_cj_load(&d, deep, strlen(deep), &err);
        assert_int_equal(rc, depth <= GC_CANON_MAX_DEPTH ? 0 : GC_EINVAL);
        if (rc)
            assert_non_null(strstr(err.msg, "nested more than 64 levels"));
        gc_cj_release(&d);
    }
}

static void accessors(void **state)
{
    (void)state;
    const char *t = "{\"id\":\"vm:1\",\"n\":{\"x\":\"a\\\"b\"},\"seq\":5}\n\n";
    struct gc_cjdoc d = {0};
    assert_int_equal(gc_cj_read(&d, t, strlen(t)), 0); /* trailing whitespace is fine */
    assert_int_equal(d.len, strlen(t) - 2);
    uint32_t id = gc_cj_get(&d, 0, "id"), n = gc_cj_get(&d, 0, "n");
    assert_true(gc_cj_str_eq(&d, id, "vm:1"));
    assert_false(gc_cj_str_eq(&d, id, "vm:"));
    assert_false(gc_cj_str_eq(&d, n, "vm:1")); /* not a string */
    assert_int_equal(gc_cj_get(&d, 0, "nope"), GC_CJ_NONE);
    assert_int_equal(gc_cj_get(&d, 0, "i"), GC_CJ_NONE);
    assert_int_equal(gc_cj_get(&d, 0, "zzz"), GC_CJ_NONE);
    assert_int_equal(gc_cj_get(&d, id, "x"), GC_CJ_NONE); /* not an object */
    uint32_t x = gc_cj_get(&d, n, "x");
    char buf[8];
    assert_string_equal(gc_cj_strcpy(&d, x, buf, sizeof(buf)), "a\"b");
    assert_string_equal(gc_cj_strcpy(&d, id, buf, 3), "vm");
    assert_string_equal(gc_cj_strcpy(&d, n, buf, sizeof(buf)), "");
    char *dup = gc_cj_dup(&d, n);
    assert_string_equal(dup, "{\"x\":\"a\\\"b\"}");
    free(dup);
    assert_int_equal(d.v[gc_cj_get(&d, 0, "seq")].v.i, 5);
    /* a doc is reused by the next read */
    assert_int_equal(gc_cj_read(&d, "[1]", 3), 0);
    assert_int_equal(d.n, 2);
    gc_cj_release(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reads_canonical_text), cmocka_unit_test(reads_random_values),
        cmocka_unit_test(refuses_other_text),   cmocka_unit_test(nesting_limit),
        cmocka_unit_test(accessors),
    };
    return cmocka_run_group_tests_name("canon", tests, NULL, NULL);
}
