/* Unit tests of the collection side of monitoring: the current-value table and its
 * Prometheus exposition (families, HELP/TYPE, escaping, values, expiry, forgetting), batch
 * label sorting, and the protected-address rule of service checks. */
#include "testutil.h"

#include "monitor/checks.h"
#include "monitor/collect.h"
#include "monitor/latest.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>

static int reset(void **state)
{
    (void)state;
    gc_monitor_clear_sinks();
    gc_latest_clear();
    gc_latest_init(3000);
    return 0;
}

static char *render(int64_t now)
{
    struct gc_buf b;
    gc_buf_init(&b, 1 << 20);
    assert_int_equal(gc_latest_render(&b, now), 0);
    return gc_buf_steal(&b);
}

static void emit1(const char *metric, int64_t t, double v, int n, const struct gc_label *l)
{
    struct gc_sample s = {{metric, l, n}, t, v};
    gc_latest_sink()->append(NULL, &s, 1);
}

static void families_sorted_with_help_and_type(void **state)
{
    (void)state;
    gc_metric_describe("t_a", GC_METRIC_COUNTER, "A counter.\nwith \\ two lines");
    gc_metric_describe("t_a_b", GC_METRIC_GAUGE, "Another.");
    struct gc_label l1[] = {{"x", "1"}}, l2[] = {{"x", "2"}};
    /* t_a without labels, t_a_b between t_a's labelled series in byte order */
    emit1("t_a", 1000, 1, 1, l2);
    emit1("t_a_b", 1000, 5, 0, NULL);
    emit1("t_a", 1000, 2, 1, l1);
    emit1("t_a", 1000, 3, 0, NULL);
    char *out = render(1000);
    assert_string_equal(out, "# HELP t_a A counter.\\nwith \\\\ two lines\n"
                             "# TYPE t_a counter\n"
                             "t_a 3\n"
                             "t_a{x=\"1\"} 2\n"
                             "t_a{x=\"2\"} 1\n"
                             "# HELP t_a_b Another.\n"
                             "# TYPE t_a_b gauge\n"
                             "t_a_b 5\n");
    free(out);
    assert_int_equal(gc_latest_count(), 4);
}

static void label_values_escaped_and_undescribed_untyped(void **state)
{
    (void)state;
    struct gc_label l[] = {{"v", "a\"b\\c\nd"}};
    emit1("t_undescribed", 1, 0.5, 1, l);
    char *out = render(1);
    assert_string_equal(out, "# HELP t_undescribed Collected by govcloudd.\n"
                             "# TYPE t_undescribed untyped\n"
                             "t_undescribed{v=\"a\\\"b\\\\c\\nd\"} 0.5\n");
    free(out);
}

static void values_round_trip(void **state)
{
    (void)state;
    const double vals[] = {0, -1, 0.1, 1e-9, 123456789012345678.0, 1.0 / 3, 42};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        struct gc_buf b;
        gc_buf_init(&b, 64);
        assert_int_equal(gc_prom_value(&b, vals[i]), 0);
        assert_true(strtod(gc_buf_str(&b), NULL) == vals[i]);
        gc_buf_release(&b);
    }
    struct gc_buf b;
    gc_buf_init(&b, 64);
    gc_prom_value(&b, NAN);
    gc_prom_value(&b, INFINITY);
    gc_prom_value(&b, -INFINITY);
    gc_prom_value(&b, 0.1);
    assert_string_equal(gc_buf_str(&b), "NaN+Inf-Inf0.1");
    gc_buf_release(&b);
}

static void newest_sample_wins_and_late_ones_are_ignored(void **state)
{
    (void)state;
    emit1("t_v", 1000, 1, 0, NULL);
    emit1("t_v", 2000, 2, 0, NULL);
    emit1("t_v", 1500, 9, 0, NULL); /* late */
    char *out = render(2000);
    assert_non_null(strstr(out, "\nt_v 2\n"));
    free(out);
}

static void expiry_after_three_of_its_own_intervals(void **state)
{
    (void)state;
    /* floor 3 s; a series reporting every 10 s lives 30 s, one every 1 s lives 3 s */
    emit1("t_slow", 0, 1, 0, NULL);
    emit1("t_slow", 10000, 1, 0, NULL);
    emit1("t_fast", 9000, 1, 0, NULL);
    emit1("t_fast", 10000, 1, 0, NULL);
    char *out = render(13000);
    assert_non_null(strstr(out, "t_fast 1"));
    free(out);
    out = render(13001);
    assert_null(strstr(out, "t_fast"));
    assert_non_null(strstr(out, "t_slow 1"));
    free(out);
    assert_int_equal(gc_latest_count(), 1);
    out = render(40001);
    assert_string_equal(out, "");
    free(out);
    assert_int_equal(gc_latest_count(), 0);
}

static void forget_drops_one_series(void **state)
{
    (void)state;
    struct gc_label a[] = {{"k", "a"}}, b[] = {{"k", "b"}};
    emit1("t_f", 1, 1, 1, a);
    emit1("t_f", 1, 1, 1, b);
    struct gc_series s = {"t_f", a, 1};
    gc_latest_forget(&s);
    gc_latest_forget(&s); /* absent: no-op */
    char *out = render(1);
    assert_null(strstr(out, "k=\"a\""));
    assert_non_null(strstr(out, "k=\"b\""));
    free(out);
}

static void many_series_grow_the_table(void **state)
{
    (void)state;
    char v[16];
    for (int i = 0; i < 5000; i++) {
        snprintf(v, sizeof(v), "%05d", i);
        struct gc_label l[] = {{"i", v}};
        emit1("t_many", 1, i, 1, l);
    }
    assert_int_equal(gc_latest_count(), 5000);
    char *out = render(1);
    assert_non_null(strstr(out, "t_many{i=\"00000\"} 0\nt_many{i=\"00001\"} 1\n"));
    assert_non_null(strstr(out, "t_many{i=\"04999\"} 4999\n"));
    free(out);
}

static void batch_sorts_labels_through_the_fan_out(void **state)
{
    (void)state;
    assert_int_equal(gc_monitor_add_sink(gc_latest_sink()), 0);
    struct gc_batch b = {0};
    char tmp[8] = "vm-1";
    gc_batch_add(&b, "t_batch", 5, 7, 3, "resource_id", tmp, "host_id", "h", "department_id",
                 "d");
    tmp[0] = 'X'; /* the batch has its own copy */
    gc_batch_emit(&b);
    assert_int_equal((int)b.n, 0);
    char *out = render(5);
    assert_non_null(strstr(out, "t_batch{department_id=\"d\",host_id=\"h\",resource_id=\"vm-1\"} 7\n"));
    free(out);
}

static bool prot(const char *addr, const char *nets)
{
    struct sockaddr_storage ss = {0};
    if (strchr(addr, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, addr, &s6->sin6_addr), 1);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, addr, &s4->sin_addr), 1);
    }
    return gc_addr_protected((struct sockaddr *)&ss, nets);
}

static void protected_addresses(void **state)
{
    (void)state;
    const char *yes[] = {"127.0.0.1", "127.255.0.9", "0.0.0.0", "169.254.169.254",
                         "224.0.0.1", "255.255.255.255", "::1", "::", "fe80::1",
                         "febf::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:169.254.1.1"};
    const char *no[] = {"10.0.0.1", "192.168.1.1", "8.8.8.8", "128.0.0.1", "169.253.1.1",
                        "2001:db8::1", "fec0::1", "::ffff:10.0.0.1"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        if (!prot(yes[i], "none"))
            fail_msg("%s should be protected", yes[i]);
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        if (prot(no[i], "none"))
            fail_msg("%s should not be protected", no[i]);
    const char *nets = "10.20.0.0/16, 192.168.7.128/25,fd00::/8";
    assert_true(prot("10.20.255.1", nets));
    assert_false(prot("10.21.0.1", nets));
    assert_true(prot("192.168.7.200", nets));
    assert_false(prot("192.168.7.100", nets));
    assert_true(prot("fd12::5", nets));
    assert_true(prot("::ffff:10.20.0.1", nets));
    assert_false(prot("2001:db8::1", nets));
    struct gc_error err = {0};
    assert_int_equal(gc_networks_check(nets, "f", &err), 0);
    assert_int_equal(gc_networks_check("none", "f", &err), 0);
    assert_int_equal(gc_networks_check("10.0.0.0/33", "f", &err), GC_EINVAL);
    assert_int_equal(gc_networks_check("10.0.0.0", "f", &err), GC_EINVAL);
    assert_int_equal(gc_networks_check("10.0.0.0/8,nonsense/4", "f", &err), GC_EINVAL);
    assert_non_null(strstr(err.msg, "nonsense/4"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(families_sorted_with_help_and_type, reset),
        cmocka_unit_test_setup(label_values_escaped_and_undescribed_untyped, reset),
        cmocka_unit_test_setup(values_round_trip, reset),
        cmocka_unit_test_setup(newest_sample_wins_and_late_ones_are_ignored, reset),
        cmocka_unit_test_setup(expiry_after_three_of_its_own_intervals, reset),
        cmocka_unit_test_setup(forget_drops_one_series, reset),
        cmocka_unit_test_setup(many_series_grow_the_table, reset),
        cmocka_unit_test_setup(batch_sorts_labels_through_the_fan_out, reset),
        cmocka_unit_test_setup(protected_addresses, reset),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gc_monitor_clear_sinks();
    gc_latest_clear();
    return rc;
}
