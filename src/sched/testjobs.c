/* Job kinds that exist only for tests: they sleep in steps, report progress, can be told to
 * fail, and come in a resumable and a non-resumable flavour. Registered only when
 * [jobs] test_job_kinds is true. */
#include "core/core.h"
#include "core/validate.h"
#include "sched/runner.h"

#include <time.h>

static const struct gc_jfield spec[] = {
    {"steps", GC_JT_INT, false, false, 1, 1000, GC_CS_ANY},
    {"step_ms", GC_JT_INT, false, false, 0, 60000, GC_CS_ANY},
    {"fail_at_step", GC_JT_INT, false, false, 1, 1000, GC_CS_ANY},
};

static int check(const json_t *params, struct gc_error *err)
{
    int rc = gc_json_check(params, spec, sizeof(spec) / sizeof(spec[0]), err);
    if (rc && err->field[0]) {
        char f[sizeof(err->field)];
        snprintf(f, sizeof(f), "params.%.80s", err->field);
        snprintf(err->field, sizeof(err->field), "%s", f);
    }
    return rc;
}

static int sleep_run(struct gc_job_run *job, const json_t *params, json_t **result,
                     struct gc_error *err)
{
    json_t *s = json_object_get(params, "steps");
    json_t *ms = json_object_get(params, "step_ms");
    json_t *fail = json_object_get(params, "fail_at_step");
    int steps = s ? (int)json_integer_value(s) : 5;
    int step_ms = ms ? (int)json_integer_value(ms) : 100;
    int fail_at = fail ? (int)json_integer_value(fail) : 0;
    for (int i = 1; i <= steps; i++) {
        struct timespec ts = {step_ms / 1000, (long)(step_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        if (i == fail_at)
            return gc_error_set(err, GC_EINTERNAL, "", "test job failed at step %d as asked", i);
        char msg[64];
        snprintf(msg, sizeof(msg), "step %d of %d", i, steps);
        if (gc_job_progress(job, i * 100 / steps, msg))
            return gc_error_set(err, GC_EBUSY, "", "stopped at step %d", i);
    }
    *result = json_pack("{s:i}", "steps_done", steps);
    return 0;
}

static const struct gc_job_kind test_sleep = {
    .name = "test.sleep", .run = sleep_run, .resumable = true, .submittable = true,
    .check = check};
static const struct gc_job_kind test_sleep_once = {
    .name = "test.sleep_once", .run = sleep_run, .resumable = false, .submittable = true,
    .check = check};

void gc_register_test_job_kinds(void)
{
    gc_job_register(&test_sleep);
    gc_job_register(&test_sleep_once);
}
