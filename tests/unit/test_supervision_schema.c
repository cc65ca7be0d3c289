/* Unit tests of the supervision schema validator: the examples of the spec validate, every
 * kind of violation names the right field with the right message, the embedded schemas are
 * the files of the tree. */
#include "testutil.h"

#include "supervision/schema.h"
#include "util/buf.h"
#include "util/mem.h"

#include <jansson.h>

/* the source tree, from this file's path (…/tests/unit/test_supervision_schema.c) */
static void src_path(char *out, size_t cap, const char *rel)
{
    const char *f = __FILE__;
    const char *cut = strstr(f, "tests/unit/");
    snprintf(out, cap, "%.*s%s", (int)(cut - f), f, rel);
}

static json_t *load_example(const char *name)
{
    char path[1024], rel[256];
    snprintf(rel, sizeof(rel), "schemas/supervision/examples/%s.json", name);
    src_path(path, sizeof(path), rel);
    json_error_t e;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &e);
    if (!j)
        fail_msg("%s: %s", path, e.text);
    return j;
}

static void test_schemas_compile(void **state)
{
    (void)state;
    struct gc_error err = {0};
    assert_int_equal(gc_schema_init(&err), 0);
    for (const char *const *d = gc_supervision_datasets; *d; d++)
        assert_non_null(gc_schema_text(*d, NULL));
    assert_non_null(gc_schema_text("record", NULL));
    assert_non_null(gc_schema_text("batch", NULL));
    assert_null(gc_schema_text("nosuch", NULL));
}

/* The embedded schemas are byte for byte the files shipped in schemas/supervision/. */
static void test_embedded_are_the_files(void **state)
{
    (void)state;
    const char *names[] = {"asset", "metric", "log", "alarm", "environment", "availability",
                           "backup", "record", "batch"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char path[1024], rel[256];
        snprintf(rel, sizeof(rel), "schemas/supervision/%s.json", names[i]);
        src_path(path, sizeof(path), rel);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        static char buf[65536];
        size_t n = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        size_t len = 0;
        const char *t = gc_schema_text(names[i], &len);
        assert_non_null(t);
        assert_int_equal(len, n);
        assert_memory_equal(t, buf, n);
    }
}

static void test_examples_validate(void **state)
{
    (void)state;
    const char *names[] = {"asset",       "metric",       "log",
                           "alarm",       "environment",  "availability",
                           "availability-incident", "backup", "asset-delete"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        json_t *r = load_example(names[i]);
        struct gc_schema_error e = {{0}, {0}};
        int rc = gc_schema_validate_record(r, &e);
        if (rc)
            fail_msg("example %s: %s (%s)", names[i], e.message, e.pointer);
        json_t *data = json_object_get(r, "data");
        if (data)
            assert_int_equal(gc_schema_validate(json_string_value(json_object_get(r, "dataset")),
                                                data, &e),
                             0);
        json_decref(r);
    }
    /* every dataset has an example */
    for (const char *const *d = gc_supervision_datasets; *d; d++)
        json_decref(load_example(*d));
}

/* The examples shown in docs/supervision-spec.md are the example files. */
static void test_doc_examples_are_the_files(void **state)
{
    (void)state;
    char path[1024];
    src_path(path, sizeof(path), "docs/supervision-spec.md");
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char doc[262144];
    size_t n = fread(doc, 1, sizeof(doc) - 1, f);
    fclose(f);
    doc[n] = '\0';
    int seen = 0;
    for (const char *p = strstr(doc, "<!-- example: "); p; p = strstr(p + 1, "<!-- example: ")) {
        char name[64];
        assert_int_equal(sscanf(p, "<!-- example: %63[a-z-]", name), 1);
        const char *start = strstr(p, "```json\n");
        const char *end = start ? strstr(start + 8, "\n```") : NULL;
        assert_non_null(end);
        json_error_t e;
        json_t *shown = json_loadb(start + 8, (size_t)(end - start - 8), 0, &e);
        if (!shown)
            fail_msg("example %s in the spec: %s", name, e.text);
        json_t *file = load_example(name);
        if (!json_equal(shown, file))
            fail_msg("example %s in docs/supervision-spec.md differs from its file", name);
        json_decref(shown);
        json_decref(file);
        seen++;
    }
    assert_true(seen >= 9);
}

/* Applies patch (an object: member path with '/' → new value, or null to delete) to a copy
 * of an example and checks the error. */
struct violation {
    const char *example;
    const char *path;  /* "/data/location/u" */
    const char *value; /* JSON text, or NULL to remove the member */
    const char *pointer;
    const char *message;
};

static void set_path(json_t *root, const char *path, json_t *value)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", path + 1);
    json_t *cur = root;
    char *save = NULL;
    char *seg = strtok_r(buf, "/", &save);
    while (seg) {
        char *next = strtok_r(NULL, "/", &save);
        if (!next) {
            if (value)
                json_object_set_new(cur, seg, value);
            else
                json_object_del(cur, seg);
            return;
        }
        json_t *child = json_object_get(cur, seg);
        if (!child) {
            child = json_object();
            json_object_set_new(cur, seg, child);
        }
        cur = child;
        seg = next;
    }
}

static const struct violation violations[] = {
    {"asset", "/data/location/u", "61", "/data/location/u",
     "data/location/u: 61 is above the maximum 60"},
    {"asset", "/data/location/u", "0", "/data/location/u",
     "data/location/u: 0 is below the minimum 1"},
    {"asset", "/data/location/u", "\"12\"", "/data/location/u",
     "data/location/u: must be an integer, not a string"},
    {"asset", "/data/location/u", "12.5", "/data/location/u",
     "data/location/u: must be an integer, not a number with a fraction"},
    {"asset", "/data/kind", NULL, "/data/kind", "data/kind: is required"},
    {"asset", "/data/colour", "\"red\"", "/data/colour",
     "data/colour: is not allowed here (not a field of this object)"},
    {"asset", "/data/kind", "\"blade\"", "/data/kind",
     "data/kind: 'blade' is not one of host, vm, volume, network, server, network_device, "
     "storage_device, security_device, rack, software"},
    {"asset", "/data/name", "\"\"", "/data/name",
     "data/name: is 0 characters long, below the minimum 1"},
    {"asset", "/data/department_id", "\"0192F3A4-0000-7000-8000-000000000001\"",
     "/data/department_id",
     "data/department_id: '0192F3A4-0000-7000-8000-000000000001' is not a lowercase UUID"},
    {"asset", "/data/domestic/flag", NULL, "/data/domestic/flag", "data/domestic/flag: is required"},
    {"asset", "/data/domestic/flag", "\"yes\"", "/data/domestic/flag",
     "data/domestic/flag: must be a boolean, not a string"},
    {"asset", "/data/mlps_grade", "6", "/data/mlps_grade",
     "data/mlps_grade: 6 is above the maximum 5"},
    {"asset", "/data/attributes/a~b", "7", "/data/attributes/a~0b",
     "data/attributes/a~0b: must be a string, not an integer"},
    {"asset", "/data/status", "[]", "/data/status",
     "data/status: must be an object, not an array"},
    {"asset", "/schema_version", "\"2.0\"", "/schema_version",
     "schema_version: '2.0' is not the required value '1.0'"},
    {"asset", "/seq", "0", "/seq", "seq: 0 is below the minimum 1"},
    {"asset", "/seq", "9007199254740992", "/seq",
     "seq: 9007199254740992 is above the maximum 9007199254740991"},
    {"asset", "/time", "\"2026-11-25T18:42:16Z\"", "/time",
     "time: '2026-11-25T18:42:16Z' is not a time of the form YYYY-MM-DDTHH:MM:SS.sssZ (UTC)"},
    {"asset", "/time", "\"2027-02-29T00:00:00.000Z\"", "/time",
     "time: '2027-02-29T00:00:00.000Z' is not a time of the form YYYY-MM-DDTHH:MM:SS.sssZ "
     "(UTC)"},
    {"asset", "/op", "\"replace\"", "/op", "op: 'replace' is not one of upsert, delete"},
    {"asset", "/dataset", "\"assets\"", "/dataset",
     "dataset: 'assets' is not one of asset, metric, log, alarm, environment, availability, "
     "backup"},
    {"asset", "/data", "null", "/data", "data: is required when op is upsert"},
    {"asset", "/extra", "1", "/extra", "extra: is not allowed here (not a field of this object)"},
    {"asset-delete", "/data", "{\"kind\":\"vm\",\"name\":\"x\"}", "/data",
     "data: must be absent or null when op is delete"},
    {"metric", "/data/name", "\"cpu usage\"", "/data/name",
     "data/name: 'cpu usage' does not match the pattern ^[a-zA-Z_:][a-zA-Z0-9_:]*$"},
    {"metric", "/data/name", "\"9lives\"", "/data/name",
     "data/name: '9lives' does not match the pattern ^[a-zA-Z_:][a-zA-Z0-9_:]*$"},
    {"metric", "/data/unit", "\"Seconds\"", "/data/unit",
     "data/unit: 'Seconds' does not match the pattern ^[a-z0-9_]+$"},
    {"metric", "/data/value", "\"0.5\"", "/data/value",
     "data/value: must be a number, not a string"},
    {"log", "/data/outcome", "\"denied\"", "/data/outcome",
     "data/outcome: 'denied' is not one of success, failure"},
    {"log", "/data/initiator/name", NULL, "/data/initiator/name",
     "data/initiator/name: is required"},
    {"log", "/data/chain_hash",
     "\"5C0C3A7E4F1B2D6A8E9F0A1B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5F\"", "/data/chain_hash",
     "data/chain_hash: '5C0C3A7E4F1B2D6A8E9F0A1B2C3D4E5F60718293A4B5C6D7…' does not match the "
     "pattern ^[0-9a-f]+$"},
    {"log", "/data/type_uri", "\"http://example.com/event\"", "/data/type_uri",
     "data/type_uri: 'http://example.com/event' is not the required value "
     "'http://schemas.dmtf.org/cloud/audit/1.0/event'"},
    {"alarm", "/data/status", "\"pending\"", "/data/status",
     "data/status: 'pending' is not one of firing, resolved"},
    {"alarm", "/data/annotations/summary", "3", "/data/annotations/summary",
     "data/annotations/summary: must be a string, not an integer"},
    {"environment", "/data/reading_units", "\"C\"", "/data/reading_units",
     "data/reading_units: 'C' is not one of Cel, %, W, kW.h, 1"},
    {"environment", "/data/thresholds/upper_critical", "null", "/data/thresholds/upper_critical",
     "data/thresholds/upper_critical: must be a number, not null"},
    {"availability", "/data/percent", "100.5", "/data/percent",
     "data/percent: 100.5 is above the maximum 100"},
    {"availability", "/data/kind", "\"other\"", "/data/kind",
     "data/kind: 'other' is not one of incident, period"},
    {"availability", "/data/kind", NULL, "/data/kind",
     "data/kind: is required (one of incident, period)"},
    {"availability-incident", "/data/cause", NULL, "/data/cause", "data/cause: is required"},
    {"availability-incident", "/data/percent", "99.0", "/data/percent",
     "data/percent: is not allowed here (not a field of this object)"},
    {"backup", "/data/dr_level", "7", "/data/dr_level", "data/dr_level: 7 is above the maximum 6"},
    {"backup", "/data/resource/type", "\"disk\"", "/data/resource/type",
     "data/resource/type: 'disk' is not one of vm, volume, database, file_system, platform"},
};

static void test_violations(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(violations) / sizeof(violations[0]); i++) {
        const struct violation *v = &violations[i];
        json_t *r = load_example(v->example);
        json_t *val = NULL;
        if (v->value) {
            json_error_t je;
            val = json_loads(v->value, JSON_DECODE_ANY, &je);
            assert_non_null(val);
        }
        set_path(r, v->path, val);
        struct gc_schema_error e = {{0}, {0}};
        int rc = gc_schema_validate_record(r, &e);
        if (rc != GC_EINVAL || strcmp(e.pointer, v->pointer) != 0 ||
            strcmp(e.message, v->message) != 0)
            fail_msg("case %zu (%s %s): rc %d pointer '%s' message '%s'", i, v->example,
                     v->path, rc, e.pointer, e.message);
        json_decref(r);
    }
}

/* String lengths count code points, not bytes. */
static void test_lengths_in_code_points(void **state)
{
    (void)state;
    json_t *r = load_example("asset");
    struct gc_buf b;
    gc_buf_init(&b, GC_BUF_UNLIMITED);
    for (int i = 0; i < 255; i++)
        gc_buf_adds(&b, "机");
    json_object_set_new(json_object_get(r, "data"), "name", json_string(gc_buf_str(&b)));
    struct gc_schema_error e;
    assert_int_equal(gc_schema_validate_record(r, &e), 0); /* 765 bytes, 255 characters */
    gc_buf_adds(&b, "房");
    json_object_set_new(json_object_get(r, "data"), "name", json_string(gc_buf_str(&b)));
    assert_int_equal(gc_schema_validate_record(r, &e), GC_EINVAL);
    assert_string_equal(e.pointer, "/data/name");
    assert_non_null(strstr(e.message, "is 256 characters long, above the maximum 255"));
    gc_buf_release(&b);
    json_decref(r);
}

static void test_members_and_names(void **state)
{
    (void)state;
    json_t *r = load_example("asset");
    json_t *attrs = json_object();
    char k[80];
    for (int i = 0; i < 33; i++) {
        snprintf(k, sizeof(k), "k%02d", i);
        json_object_set_new(attrs, k, json_string("v"));
    }
    json_object_set_new(json_object_get(r, "data"), "attributes", attrs);
    struct gc_schema_error e;
    assert_int_equal(gc_schema_validate_record(r, &e), GC_EINVAL);
    assert_string_equal(e.pointer, "/data/attributes");
    assert_string_equal(e.message, "data/attributes: 33 members is above the maximum 32");
    attrs = json_object();
    memset(k, 'x', 65);
    k[65] = '\0';
    json_object_set_new(attrs, k, json_string("v"));
    json_object_set_new(json_object_get(r, "data"), "attributes", attrs);
    assert_int_equal(gc_schema_validate_record(r, &e), GC_EINVAL);
    assert_string_equal(e.message + strlen("data/attributes/") + 65,
                        ": the name is 65 characters long, above the maximum 64");
    json_decref(r);
}

static void test_dates(void **state)
{
    (void)state;
    const char *good[] = {"2028-02-29T23:59:59.999Z", "2026-12-31T00:00:00.000Z",
                          "2016-12-31T23:59:60.000Z"};
    const char *bad[] = {"2026-11-25T18:42:16.12Z",  "2026-11-25T18:42:16.123+08:00",
                         "2026-13-01T00:00:00.000Z", "2026-04-31T00:00:00.000Z",
                         "2026-11-25 18:42:16.123Z", "2026-11-25T24:00:00.000Z",
                         "1900-02-29T00:00:00.000Z", ""};
    json_t *r = load_example("metric");
    struct gc_schema_error e;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        json_object_set_new(r, "time", json_string(good[i]));
        if (gc_schema_validate_record(r, &e) != 0)
            fail_msg("%s: %s", good[i], e.message);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_object_set_new(r, "time", json_string(bad[i]));
        if (gc_schema_validate_record(r, &e) != GC_EINVAL || strcmp(e.pointer, "/time") != 0)
            fail_msg("%s accepted", bad[i]);
    }
    json_decref(r);
}

static void test_envelope_schemas(void **state)
{
    (void)state;
    struct gc_schema_error e;
    json_t *b = json_pack("{s:s,s:s,s:s,s:i,s:s,s:[s],s:[{}],s:{s:s,s:s}}", "cloud_id",
                          "6f1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d5", "dataset", "asset",
                          "schema_version", "1.0", "batch_seq", 1, "time",
                          "2026-11-25T18:42:16.123Z", "record_ids", "x", "records",
                          "signature", "alg", "SM2-SM3", "value", "MEUCIQDabcdefgh");
    assert_int_equal(gc_schema_validate("batch", b, &e), 0);
    json_object_set_new(b, "batch_seq", json_integer(0));
    assert_int_equal(gc_schema_validate("batch", b, &e), GC_EINVAL);
    assert_string_equal(e.message, "batch_seq: 0 is below the minimum 1");
    json_object_set_new(b, "batch_seq", json_integer(2));
    json_object_set_new(json_object_get(b, "signature"), "alg", json_string("RSA"));
    assert_int_equal(gc_schema_validate("batch", b, &e), GC_EINVAL);
    assert_string_equal(e.pointer, "/signature/alg");
    json_decref(b);
    assert_int_equal(gc_schema_validate("nosuch", json_null(), &e), GC_ENOTFOUND);
    /* a whole record as the root: pointer "" */
    assert_int_equal(gc_schema_validate("record", json_null(), &e), GC_EINVAL);
    assert_string_equal(e.pointer, "");
    assert_string_equal(e.message, "(root): must be an object, not null");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schemas_compile),
        cmocka_unit_test(test_embedded_are_the_files),
        cmocka_unit_test(test_examples_validate),
        cmocka_unit_test(test_doc_examples_are_the_files),
        cmocka_unit_test(test_violations),
        cmocka_unit_test(test_lengths_in_code_points),
        cmocka_unit_test(test_members_and_names),
        cmocka_unit_test(test_dates),
        cmocka_unit_test(test_envelope_schemas),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
