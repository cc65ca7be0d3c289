/* Unit tests of the environment pieces: profile parsing with errors naming the field, the
 * embedded profiles, register decoding (word orders, signed), the dew point and the
 * classification against limits. */
#include "testutil.h"

#include "drivers/sensor.h"

#include <math.h>

static int parse(const char *text, struct gc_profile *p, struct gc_error *e)
{
    memset(e, 0, sizeof(*e));
    return gc_profile_parse_text(text, strlen(text), p, e);
}

static void good_profiles_parse(void **state)
{
    (void)state;
    struct gc_profile *p = calloc(1, sizeof(*p));
    struct gc_error e;
    assert_int_equal(parse("{\"name\":\"m\",\"driver\":\"modbus\",\"readings\":["
                           "{\"name\":\"e\",\"reading_type\":\"energy\",\"units\":\"kW.h\","
                           "\"register\":7,\"table\":\"input\",\"format\":\"u32\","
                           "\"word_order\":\"little\",\"scale\":0.01},"
                           "{\"name\":\"t\",\"reading_type\":\"temperature\",\"units\":\"Cel\","
                           "\"register\":9,\"format\":\"s16\",\"offset\":-40,"
                           "\"context\":\"exhaust\"}]}",
                           p, &e),
                     0);
    assert_int_equal(p->nreadings, 2);
    assert_int_equal(p->readings[0].type, GC_RT_ENERGY);
    assert_int_equal(p->readings[0].table, GC_MB_INPUT);
    assert_int_equal(p->readings[0].format, GC_MB_U32);
    assert_int_equal(p->readings[0].order, GC_MB_LITTLE);
    assert_int_equal(p->readings[0].address, 7);
    assert_true(p->readings[0].scale == 0.01);
    assert_int_equal(p->readings[1].table, GC_MB_HOLDING); /* defaults */
    assert_int_equal(p->readings[1].order, GC_MB_BIG);
    assert_true(p->readings[1].offset == -40);
    assert_string_equal(p->readings[1].context, "exhaust");
    assert_int_equal(parse("{\"name\":\"s\",\"driver\":\"snmp\",\"readings\":[{\"name\":\"u\","
                           "\"reading_type\":\"ups_state\",\"units\":\"1\",\"oid\":"
                           "\".1.3.6.1.2.1.33.1.4.1.0\",\"true_values\":[5,6]}]}",
                           p, &e),
                     0);
    assert_string_equal(p->readings[0].oid, "1.3.6.1.2.1.33.1.4.1.0");
    assert_int_equal(p->readings[0].ntrue, 2);
    free(p);
}

static void bad_profiles_name_the_field(void **state)
{
    (void)state;
    static const struct {
        const char *text, *field, *msg;
    } cases[] = {
        {"[]", "", "object"},
        {"{\"name\":\"x\",\"driver\":\"snmp\",\"readings\":[]", "", "not valid JSON"},
        {"{\"name\":\"X Y\",\"driver\":\"snmp\",\"readings\":[]}", "name", "a-z"},
        {"{\"name\":\"x\",\"driver\":\"bacnet\",\"readings\":[]}", "driver", "snmp or modbus"},
        {"{\"name\":\"x\",\"driver\":\"snmp\",\"readings\":[]}", "readings", "1 to 32"},
        {"{\"name\":\"x\",\"driver\":\"snmp\",\"colour\":1,\"readings\":[]}", "colour",
         "unknown"},
        {"{\"name\":\"x\",\"driver\":\"snmp\",\"readings\":[{\"name\":\"t\",\"reading_type\":"
         "\"temperature\",\"units\":\"K\",\"oid\":\"1.3.6.1\"}]}",
         "readings[0].units", "\"Cel\""},
        {"{\"name\":\"x\",\"driver\":\"snmp\",\"readings\":[{\"name\":\"t\",\"reading_type\":"
         "\"temperature\",\"units\":\"Cel\",\"oid\":\"1.3.x.1\"}]}",
         "readings[0].oid", "numeric OID"},
        {"{\"name\":\"x\",\"driver\":\"snmp\",\"readings\":[{\"name\":\"t\",\"reading_type\":"
         "\"temperature\",\"units\":\"Cel\",\"oid\":\"1.3.6\",\"register\":1}]}",
         "readings[0].register", "modbus"},
        {"{\"name\":\"x\",\"driver\":\"modbus\",\"readings\":[{\"name\":\"t\",\"reading_type\":"
         "\"temperature\",\"units\":\"Cel\",\"register\":65535,\"format\":\"u32\"}]}",
         "readings[0].register", "two registers"},
        {"{\"name\":\"x\",\"driver\":\"modbus\",\"readings\":[{\"name\":\"t\",\"reading_type\":"
         "\"temperature\",\"units\":\"Cel\",\"register\":1,\"word_order\":\"middle\"}]}",
         "readings[0].word_order", "big"},
        {"{\"name\":\"x\",\"driver\":\"modbus\",\"readings\":[{\"name\":\"t\",\"reading_type\":"
         "\"temperature\",\"units\":\"Cel\",\"register\":1,\"true_values\":[1]}]}",
         "readings[0].true_values", "ups_state"},
        {"{\"name\":\"x\",\"driver\":\"modbus\",\"readings\":[{\"name\":\"t\",\"reading_type\":"
         "\"dew_point\",\"units\":\"Cel\",\"register\":1}]}",
         "readings[0].reading_type", "derived"},
        {"{\"name\":\"x\",\"driver\":\"modbus\",\"readings\":[{\"name\":\"t\",\"reading_type\":"
         "\"door\",\"units\":\"1\",\"register\":1},{\"name\":\"t\",\"reading_type\":"
         "\"leak\",\"units\":\"1\",\"register\":2}]}",
         "", "readings[1].name: 't' is already readings[0]"},
        {"{\"name\":\"x\",\"driver\":\"modbus\",\"readings\":[{\"name\":\"a\",\"reading_type\":"
         "\"door\",\"units\":\"1\",\"register\":1},{\"name\":\"b\",\"reading_type\":"
         "\"door\",\"units\":\"1\",\"register\":2}]}",
         "", "different contexts"},
    };
    struct gc_profile *p = calloc(1, sizeof(*p));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct gc_error e;
        assert_int_equal(parse(cases[i].text, p, &e), GC_EINVAL);
        if (strcmp(e.field, cases[i].field) != 0 || !strstr(e.msg, cases[i].msg))
            fail_msg("case %zu: field '%s' message '%s'", i, e.field, e.msg);
    }
    free(p);
}

static void embedded_profiles_load_and_dir_errors(void **state)
{
    (void)state;
    struct gc_error e = {0};
    assert_int_equal(gc_profiles_load("none", &e), 0);
    assert_true(gc_profile_count() >= 5);
    const struct gc_profile *u = gc_profile_find("snmp-ups-rfc1628");
    assert_non_null(u);
    assert_string_equal(u->driver, "snmp");
    assert_null(gc_profile_find("nope"));
    char dir[64];
    tu_mkdtemp(dir);
    char path[128];
    snprintf(path, sizeof(path), "%s/dup.json", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"name\":\"snmp-ups-rfc1628\",\"driver\":\"snmp\",\"readings\":[{\"name\":\"t\","
          "\"reading_type\":\"leak\",\"units\":\"1\",\"oid\":\"1.3.6.1\"}]}",
          f);
    fclose(f);
    assert_int_equal(gc_profiles_load(dir, &e), GC_EINVAL);
    assert_non_null(strstr(e.msg, "already loaded"));
    unlink(path);
    assert_int_equal(gc_profiles_load("/nonexistent/profiles", &e), GC_EINVAL);
    assert_string_equal(e.field, "profile_dir");
    rmdir(dir);
    assert_non_null(gc_profile_find("snmp-th-generic")); /* failures left the table alone */
}

static void register_decoding(void **state)
{
    (void)state;
    uint16_t r1[2] = {0xfffe, 0};
    assert_true(gc_mb_decode(r1, GC_MB_U16, GC_MB_BIG) == 65534);
    assert_true(gc_mb_decode(r1, GC_MB_S16, GC_MB_BIG) == -2);
    uint16_t r2[2] = {0x0001, 0x0002};
    assert_true(gc_mb_decode(r2, GC_MB_U32, GC_MB_BIG) == 65538);     /* 0x00010002 */
    assert_true(gc_mb_decode(r2, GC_MB_U32, GC_MB_LITTLE) == 131073); /* 0x00020001 */
    uint16_t r3[2] = {0xffff, 0xfff6};
    assert_true(gc_mb_decode(r3, GC_MB_S32, GC_MB_BIG) == -10);
    assert_true(gc_mb_decode(r3, GC_MB_U32, GC_MB_BIG) == 4294967286.0);
    uint16_t r4[2] = {0xfff6, 0xffff};
    assert_true(gc_mb_decode(r4, GC_MB_S32, GC_MB_LITTLE) == -10);
    assert_int_equal(gc_mb_words(GC_MB_S16), 1);
    assert_int_equal(gc_mb_words(GC_MB_U32), 2);
}

static void dew_point_magnus(void **state)
{
    (void)state;
    /* reference values of the Magnus formula (b = 17.62, c = 243.12 °C) */
    assert_true(fabs(gc_dew_point(25, 60) - 16.69) < 0.01);
    assert_true(fabs(gc_dew_point(20, 50) - 9.26) < 0.01);
    assert_true(fabs(gc_dew_point(23.5, 100) - 23.5) < 1e-9); /* saturated: equal */
    assert_true(fabs(gc_dew_point(0, 80) - (-3.04)) < 0.01);
    assert_true(isnan(gc_dew_point(20, 0)));
}

static void limits_and_classification(void **state)
{
    (void)state;
    struct gc_limits l;
    bool b[5];
    gc_limits_default(GC_RT_TEMPERATURE, "intake", "A", &l);
    assert_true(l.lower_critical == 18 && l.upper_critical == 27 && l.rate == 20);
    assert_int_equal(gc_limits_classify(&l, 22, NAN, b), GC_ENV_OK);
    assert_false(b[0] || b[1] || b[2] || b[3] || b[4]);
    assert_int_equal(gc_limits_classify(&l, 26.5, NAN, b), GC_ENV_CAUTION);
    assert_true(b[2] && !b[3]);
    assert_int_equal(gc_limits_classify(&l, 27.5, NAN, b), GC_ENV_CRITICAL);
    assert_true(b[2] && b[3]);
    assert_int_equal(gc_limits_classify(&l, 17, NAN, b), GC_ENV_CRITICAL);
    assert_true(b[0] && b[1]);
    assert_int_equal(gc_limits_classify(&l, 22, -25, b), GC_ENV_CRITICAL); /* falling fast */
    assert_true(b[4]);
    assert_int_equal(gc_limits_classify(&l, 22, 19, b), GC_ENV_OK);
    /* exhaust air: only the rate */
    gc_limits_default(GC_RT_TEMPERATURE, "exhaust", "B", &l);
    assert_true(isnan(l.upper_critical) && l.rate == 20);
    assert_int_equal(gc_limits_classify(&l, 45, NAN, b), GC_ENV_OK);
    gc_limits_default(GC_RT_HUMIDITY, "room", "C", &l);
    assert_int_equal(gc_limits_classify(&l, 61, NAN, b), GC_ENV_CRITICAL);
    assert_true(isnan(l.lower_critical));
    gc_limits_default(GC_RT_DEW_POINT, "intake", "A", &l);
    assert_true(l.lower_critical == 5.5 && l.upper_critical == 15);
    gc_limits_default(GC_RT_LEAK, "room", "A", &l);
    assert_int_equal(gc_limits_classify(&l, 1, NAN, b), GC_ENV_CRITICAL);
    assert_int_equal(gc_limits_classify(&l, 0, NAN, b), GC_ENV_OK);
    gc_limits_default(GC_RT_DOOR, "room", "A", &l);
    assert_int_equal(gc_limits_classify(&l, 1, NAN, b), GC_ENV_CAUTION);
    gc_limits_default(GC_RT_POWER, "rack", "A", &l);
    assert_int_equal(gc_limits_classify(&l, 1e9, NAN, b), GC_ENV_OK);
    assert_string_equal(gc_env_status_name(GC_ENV_CAUTION), "caution");
}

static void reading_types(void **state)
{
    (void)state;
    assert_int_equal(gc_reading_type_parse("humidity"), GC_RT_HUMIDITY);
    assert_string_equal(gc_reading_type_units(GC_RT_HUMIDITY), "%");
    assert_string_equal(gc_reading_type_metric(GC_RT_HUMIDITY), "govcloud_env_humidity_ratio");
    assert_true(gc_reading_type_factor(GC_RT_HUMIDITY) == 0.01);
    assert_string_equal(gc_reading_type_units(GC_RT_ENERGY), "kW.h");
    assert_int_equal(gc_reading_type_parse("Temperature"), -1);
    assert_true(gc_physical_context_valid("intake"));
    assert_false(gc_physical_context_valid("roof"));
    assert_non_null(gc_sensor_driver_for("snmp"));
    assert_non_null(gc_sensor_driver_for("modbus"));
    assert_null(gc_sensor_driver_for("bacnet"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(good_profiles_parse),
        cmocka_unit_test(bad_profiles_name_the_field),
        cmocka_unit_test(embedded_profiles_load_and_dir_errors),
        cmocka_unit_test(register_decoding),
        cmocka_unit_test(dew_point_magnus),
        cmocka_unit_test(limits_and_classification),
        cmocka_unit_test(reading_types),
    };
    return cmocka_run_group_tests_name("environment", tests, NULL, NULL);
}
