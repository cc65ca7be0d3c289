/* Unit tests of the alarm rules' parts (core/alarm.c): selectors, matchers, comparisons and
 * summary templates; and of the reasons kept beside failing series (monitor.c). */
#include "testutil.h"

#include "core/core.h"
#include "monitor/monitor.h"
#include "util/error.h"

#include <math.h>

static void selector_parses(void **state)
{
    (void)state;
    char metric[128];
    json_t *m = NULL;
    struct gc_error err = {0};
    assert_int_equal(gc_alarm_selector_parse("govcloud_vm_vcpus", metric, sizeof(metric), &m,
                                             &err),
                     0);
    assert_string_equal(metric, "govcloud_vm_vcpus");
    assert_int_equal(json_array_size(m), 0);
    json_decref(m);
    assert_int_equal(gc_alarm_selector_parse("m{a=\"x\", b != \"y \\\"q\\\"\",c=\"\"}", metric,
                                             sizeof(metric), &m, &err),
                     0);
    assert_string_equal(metric, "m");
    assert_int_equal(json_array_size(m), 3);
    assert_string_equal(json_string_value(json_array_get(json_array_get(m, 1), 1)), "!=");
    assert_string_equal(json_string_value(json_array_get(json_array_get(m, 1), 2)), "y \"q\"");
    assert_string_equal(json_string_value(json_array_get(json_array_get(m, 2), 2)), "");
    json_decref(m);
}

static void selector_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", "9m", "m{", "m{a=\"x\"", "m{a=x}", "m{a=~\"x\"}", "m{a!~\"x\"}", "m{=\"x\"}",
        "m{a=\"x\"} extra", "m x", "a:b", "m{a=\"x\";b=\"y\"}",
        "m{a=\"1\",b=\"1\",c=\"1\",d=\"1\",e=\"1\",f=\"1\",g=\"1\",h=\"1\",i=\"1\"}", NULL};
    for (const char *const *p = bad; *p; p++) {
        char metric[128];
        json_t *m = NULL;
        struct gc_error err = {0};
        int rc = gc_alarm_selector_parse(*p, metric, sizeof(metric), &m, &err);
        if (rc != GC_EINVAL)
            fail_msg("selector '%s' was accepted", *p);
        assert_string_equal(err.field, "selector");
        assert_null(m);
    }
}

static void matchers_and_ops(void **state)
{
    (void)state;
    json_t *m = json_pack("[[s,s,s],[s,s,s]]", "zone", "=", "a", "pool", "!=", "tmp");
    json_t *l = json_pack("{s:s,s:s}", "zone", "a", "pool", "default");
    assert_true(gc_alarm_matchers_hold(m, l));
    json_object_set_new(l, "pool", json_string("tmp"));
    assert_false(gc_alarm_matchers_hold(m, l));
    json_object_del(l, "zone"); /* a missing label is "" */
    json_object_set_new(l, "pool", json_string("x"));
    assert_false(gc_alarm_matchers_hold(m, l));
    json_decref(m);
    json_decref(l);
    assert_int_equal(gc_alarm_op_parse(">="), 1);
    assert_int_equal(gc_alarm_op_parse("=>"), -1);
    assert_int_equal(gc_alarm_op_parse(NULL), -1);
    assert_true(gc_alarm_op_holds(gc_alarm_op_parse(">"), 2, 1));
    assert_false(gc_alarm_op_holds(gc_alarm_op_parse(">"), 1, 1));
    assert_true(gc_alarm_op_holds(gc_alarm_op_parse(">="), 1, 1));
    assert_true(gc_alarm_op_holds(gc_alarm_op_parse("<"), 0.5, 1));
    assert_true(gc_alarm_op_holds(gc_alarm_op_parse("<="), 1, 1));
    assert_true(gc_alarm_op_holds(gc_alarm_op_parse("=="), 0, 0));
    assert_true(gc_alarm_op_holds(gc_alarm_op_parse("!="), 0, 1));
    assert_false(gc_alarm_op_holds(gc_alarm_op_parse(">"), NAN, 1));
}

static void summaries_render(void **state)
{
    (void)state;
    json_t *l = json_pack("{s:s,s:s}", "pool", "default", "host_id", "h1");
    char out[256];
    gc_alarm_render("pool {{pool}} on {{host_id}} is {{value_percent}} full ({{value}}); "
                    "{{missing}}|{{reason}}",
                    l, 0.953, NULL, out, sizeof(out));
    assert_string_equal(out, "pool default on h1 is 95.3 % full (0.953); |no reason recorded");
    gc_alarm_render("{{reason}} {{unclosed", l, 1, "timed out", out, sizeof(out));
    assert_string_equal(out, "timed out {{unclosed");
    char small[8];
    gc_alarm_render("{{pool}} {{pool}}", l, 1, NULL, small, sizeof(small));
    assert_string_equal(small, "default");
    json_decref(l);
}

static void reasons_are_kept_per_series(void **state)
{
    (void)state;
    struct gc_label lab[1] = {{"host_id", "h1"}};
    struct gc_series s = {"govcloud_host_collect_success", lab, 1};
    char out[64];
    assert_false(gc_monitor_reason("govcloud_host_collect_success{host_id=\"h1\"}", out,
                                   sizeof(out)));
    gc_monitor_note(&s, "timed out");
    assert_true(gc_monitor_reason("govcloud_host_collect_success{host_id=\"h1\"}", out,
                                  sizeof(out)));
    assert_string_equal(out, "timed out");
    gc_monitor_note(&s, "refused");
    assert_true(gc_monitor_reason("govcloud_host_collect_success{host_id=\"h1\"}", out,
                                  sizeof(out)));
    assert_string_equal(out, "refused");
    gc_monitor_note(&s, NULL);
    assert_false(gc_monitor_reason("govcloud_host_collect_success{host_id=\"h1\"}", out,
                                   sizeof(out)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(selector_parses),
        cmocka_unit_test(selector_rejects),
        cmocka_unit_test(matchers_and_ops),
        cmocka_unit_test(summaries_render),
        cmocka_unit_test(reasons_are_kept_per_series),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
