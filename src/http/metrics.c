/* Request metrics (counters and latency histograms per route, lock-free) and the
 * Prometheus text exposition of /metrics. */
#include "http/http.h"

#include "util/timeutil.h"

#include <stdatomic.h>
#include <string.h>

static const int tracked_status[] = {200, 201, 202, 204, 400, 401, 403, 404, 405,
                                     409, 412, 413, 415, 429, 500, 501, 503};
#define NSTATUS (sizeof(tracked_status) / sizeof(tracked_status[0]) + 1) /* + other */
static const double buckets_s[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                   0.05,   0.1,   0.25,   0.5,   1.0,  2.5};
#define NBUCKETS (sizeof(buckets_s) / sizeof(buckets_s[0]))
#define MAX_ROUTES 256

struct route_metrics {
    atomic_uint_fast64_t by_status[NSTATUS];
    atomic_uint_fast64_t bucket[NBUCKETS + 1];
    atomic_uint_fast64_t sum_ns;
    atomic_uint_fast64_t count;
};

/* index MAX_ROUTES holds requests that matched no route */
static struct route_metrics rm[MAX_ROUTES + 1];
static int64_t started_ms;

void gc_metrics_init(void)
{
    if (gc_nroutes > MAX_ROUTES)
        GC_BUG("too many routes for metrics");
    started_ms = gc_now_ms();
}

void gc_metrics_observe(int route_index, int status, int64_t ns)
{
    struct route_metrics *m = &rm[route_index >= 0 ? route_index : MAX_ROUTES];
    size_t si = NSTATUS - 1;
    for (size_t i = 0; i < NSTATUS - 1; i++)
        if (tracked_status[i] == status) {
            si = i;
            break;
        }
    atomic_fetch_add_explicit(&m->by_status[si], 1, memory_order_relaxed);
    double s = (double)ns / 1e9;
    size_t b = NBUCKETS;
    for (size_t i = 0; i < NBUCKETS; i++)
        if (s <= buckets_s[i]) {
            b = i;
            break;
        }
    atomic_fetch_add_explicit(&m->bucket[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->sum_ns, (uint_fast64_t)(ns > 0 ? ns : 0), memory_order_relaxed);
    atomic_fetch_add_explicit(&m->count, 1, memory_order_relaxed);
}

static const char *route_label(size_t i)
{
    return i < gc_nroutes ? gc_routes[i].name : "unmatched";
}

int gc_metrics_render(struct gc_buf *b, struct gc_store *st)
{
    int rc = 0;
    rc |= gc_buf_adds(b, "# HELP govcloud_http_requests_total HTTP requests answered, by route "
                         "and status.\n# TYPE govcloud_http_requests_total counter\n");
    for (size_t i = 0; i <= MAX_ROUTES; i++) {
        if (i >= gc_nroutes && i != MAX_ROUTES)
            continue;
        for (size_t s = 0; s < NSTATUS; s++) {
            uint64_t v = atomic_load_explicit(&rm[i].by_status[s], memory_order_relaxed);
            if (!v)
                continue;
            if (s < NSTATUS - 1)
                rc |= gc_buf_addf(b,
                                  "govcloud_http_requests_total{route=\"%s\",status=\"%d\"} "
                                  "%llu\n",
                                  route_label(i), tracked_status[s], (unsigned long long)v);
            else
                rc |= gc_buf_addf(b,
                                  "govcloud_http_requests_total{route=\"%s\",status=\"other\"} "
                                  "%llu\n",
                                  route_label(i), (unsigned long long)v);
        }
    }
    rc |= gc_buf_adds(b, "# HELP govcloud_http_request_duration_seconds Time from the first "
                         "byte of a request to its response being queued.\n"
                         "# TYPE govcloud_http_request_duration_seconds histogram\n");
    for (size_t i = 0; i <= MAX_ROUTES; i++) {
        if (i >= gc_nroutes && i != MAX_ROUTES)
            continue;
        uint64_t count = atomic_load_explicit(&rm[i].count, memory_order_relaxed);
        if (!count)
            continue;
        uint64_t cum = 0;
        for (size_t k = 0; k < NBUCKETS; k++) {
            cum += atomic_load_explicit(&rm[i].bucket[k], memory_order_relaxed);
            rc |= gc_buf_addf(b,
                              "govcloud_http_request_duration_seconds_bucket{route=\"%s\","
                              "le=\"%g\"} %llu\n",
                              route_label(i), buckets_s[k], (unsigned long long)cum);
        }
        cum += atomic_load_explicit(&rm[i].bucket[NBUCKETS], memory_order_relaxed);
        rc |= gc_buf_addf(b,
                          "govcloud_http_request_duration_seconds_bucket{route=\"%s\","
                          "le=\"+Inf\"} %llu\n",
                          route_label(i), (unsigned long long)cum);
        rc |= gc_buf_addf(b, "govcloud_http_request_duration_seconds_sum{route=\"%s\"} %.9f\n",
                          route_label(i),
                          (double)atomic_load_explicit(&rm[i].sum_ns, memory_order_relaxed) /
                              1e9);
        rc |= gc_buf_addf(b, "govcloud_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
                          route_label(i), (unsigned long long)cum);
    }
    int64_t counts[GC_JOB_STATE_COUNT];
    struct gc_error err = {0};
    if (gc_job_count_by_state(st, counts, &err) == 0) {
        rc |= gc_buf_adds(b, "# HELP govcloud_jobs Jobs in the store, by state.\n"
                             "# TYPE govcloud_jobs gauge\n");
        for (int s = 0; s < GC_JOB_STATE_COUNT; s++)
            rc |= gc_buf_addf(b, "govcloud_jobs{state=\"%s\"} %lld\n",
                              gc_job_state_name((enum gc_job_state)s), (long long)counts[s]);
    }
    rc |= gc_buf_addf(b,
                      "# HELP govcloud_store_up Whether the store answered the last query.\n"
                      "# TYPE govcloud_store_up gauge\ngovcloud_store_up %d\n",
                      err.code ? 0 : 1);
    rc |= gc_buf_addf(b,
                      "# HELP govcloud_build_info Version of this govcloudd.\n"
                      "# TYPE govcloud_build_info gauge\n"
                      "govcloud_build_info{version=\"%s\"} 1\n"
                      "# HELP govcloud_start_time_seconds When this process started.\n"
                      "# TYPE govcloud_start_time_seconds gauge\n"
                      "govcloud_start_time_seconds %lld\n",
                      GC_VERSION, (long long)(started_ms / 1000));
    return rc ? GC_ETOOBIG : 0;
}
