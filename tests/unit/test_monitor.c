/* Unit tests of src/monitor: the fan-out of samples to sinks and the canonical series key. */
#include "testutil.h"

#include "monitor/monitor.h"
#include "util/buf.h"
#include "util/error.h"

#include <pthread.h>

struct counting_sink {
    pthread_mutex_t lock;
    size_t batches, samples;
    double sum;
    char last_metric[64];
};

static void count_append(void *opaque, const struct gc_sample *s, size_t n)
{
    struct counting_sink *c = opaque;
    pthread_mutex_lock(&c->lock);
    c->batches++;
    c->samples += n;
    for (size_t i = 0; i < n; i++)
        c->sum += s[i].value;
    snprintf(c->last_metric, sizeof(c->last_metric), "%s", s[n - 1].series.metric);
    pthread_mutex_unlock(&c->lock);
}

static void emit_reaches_every_sink_in_order(void **state)
{
    (void)state;
    gc_monitor_clear_sinks();
    struct counting_sink a = {.lock = PTHREAD_MUTEX_INITIALIZER};
    struct counting_sink b = {.lock = PTHREAD_MUTEX_INITIALIZER};
    struct gc_sample_sink sa = {"a", count_append, &a}, sb = {"b", count_append, &b};
    assert_int_equal(gc_monitor_add_sink(&sa), 0);
    assert_int_equal(gc_monitor_add_sink(&sb), 0);
    struct gc_label l[] = {{"host_id", "h1"}};
    struct gc_sample s[] = {
        {{"govcloud_host_up", l, 1}, 1000, 1.0},
        {{"govcloud_host_cpus", l, 1}, 1000, 64.0},
    };
    gc_monitor_emit(s, 2);
    gc_monitor_emit(s, 0); /* nothing: no empty batch reaches a sink */
    assert_int_equal(a.batches, 1);
    assert_int_equal(b.batches, 1);
    assert_int_equal(a.samples, 2);
    assert_true(b.sum == 65.0);
    assert_string_equal(a.last_metric, "govcloud_host_cpus");
    gc_monitor_clear_sinks();
    gc_monitor_emit(s, 2);
    assert_int_equal(a.batches, 1);
}

static void sink_table_is_bounded(void **state)
{
    (void)state;
    gc_monitor_clear_sinks();
    struct counting_sink c = {.lock = PTHREAD_MUTEX_INITIALIZER};
    struct gc_sample_sink s = {"c", count_append, &c};
    for (int i = 0; i < GC_MONITOR_SINKS_MAX; i++)
        assert_int_equal(gc_monitor_add_sink(&s), 0);
    assert_int_equal(gc_monitor_add_sink(&s), GC_EINVAL);
    gc_monitor_clear_sinks();
}

struct emitter {
    int rounds;
};

static void *emit_many(void *arg)
{
    struct emitter *e = arg;
    struct gc_sample s = {{"govcloud_test", NULL, 0}, 1, 1.0};
    for (int i = 0; i < e->rounds; i++)
        gc_monitor_emit(&s, 1);
    return NULL;
}

static void emit_from_many_threads(void **state)
{
    (void)state;
    gc_monitor_clear_sinks();
    struct counting_sink c = {.lock = PTHREAD_MUTEX_INITIALIZER};
    struct gc_sample_sink s = {"c", count_append, &c};
    assert_int_equal(gc_monitor_add_sink(&s), 0);
    pthread_t t[4];
    struct emitter e = {10000};
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, emit_many, &e), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(c.samples, 40000);
    gc_monitor_clear_sinks();
}

static void series_key_is_prometheus_text(void **state)
{
    (void)state;
    struct gc_buf b;
    gc_buf_init(&b, 4096);
    struct gc_series bare = {"govcloud_up", NULL, 0};
    assert_int_equal(gc_series_key(&bare, &b), 0);
    assert_string_equal(gc_buf_str(&b), "govcloud_up");
    gc_buf_reset(&b);
    struct gc_label l[] = {{"department_id", "d1"}, {"name", "a\"b\\c\nd 政务"}};
    struct gc_series s = {"govcloud_vm_up", l, 2};
    assert_int_equal(gc_series_key(&s, &b), 0);
    assert_string_equal(gc_buf_str(&b),
                        "govcloud_vm_up{department_id=\"d1\",name=\"a\\\"b\\\\c\\nd 政务\"}");
    gc_buf_release(&b);
    /* a full buffer says so */
    gc_buf_init(&b, 8);
    assert_int_equal(gc_series_key(&s, &b), GC_ETOOBIG);
    gc_buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(emit_reaches_every_sink_in_order),
        cmocka_unit_test(sink_table_is_bounded),
        cmocka_unit_test(emit_from_many_threads),
        cmocka_unit_test(series_key_is_prometheus_text),
    };
    return cmocka_run_group_tests_name("monitor", tests, NULL, NULL);
}
