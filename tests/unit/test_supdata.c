/* Unit tests of the supervision datasets log, alarm, availability and backup (core/supdata.c,
 * core/availability.c): every record a provider emits is valid against its JSON Schema, seqs
 * increase, changes come again under the same id with a new seq, figures are stable; and of
 * the domestic substitution rate (core/substitution.c) with hand-computed figures. */
#include "testutil.h"

#include "core/core.h"
#include "core/supdata.h"
#include "monitor/tsdb.h"
#include "supervision/envelope.h"
#include "supervision/schema.h"
#include "util/config.h"
#include "util/timeutil.h"

#include <math.h>
#include <time.h>

#define ADMIN_PW "Admin-Passw0rd!"

struct fx {
    char dir[64];
    char db[128];
    struct gc_store *st;
    struct gc_config cfg;
    struct gc_principal admin;
    struct gc_ctx ctx;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    tu_mkdtemp(f->dir);
    snprintf(f->db, sizeof(f->db), "%s/govcloud.db", f->dir);
    gc_config_init(&f->cfg);
    struct gc_error err = {0};
    if (gc_schema_init(&err) != 0 || gc_store_open("sqlite", f->db, 4, &f->st, &err) != 0) {
        print_error("setup: %s\n", err.msg);
        return -1;
    }
    gc_auth_cache_flush();
    char *created = NULL;
    if (gc_bootstrap_admin(f->st, &f->cfg, ADMIN_PW, &created, &err) != 0) {
        print_error("gc_bootstrap_admin: %s\n", err.msg);
        return -1;
    }
    free(created);
    struct gc_ctx anon = {.store = f->st, .cfg = &f->cfg, .request_id = "", .source_ip = ""};
    json_t *in = json_pack("{s:s,s:s}", "username", "admin", "password", ADMIN_PW);
    json_t *out = NULL;
    if (gc_auth_login(&anon, in, &out, &err) != 0 ||
        gc_auth_resolve(f->st, json_string_value(json_object_get(out, "token")), &f->admin,
                        &err) != 0) {
        print_error("login: %s\n", err.msg);
        return -1;
    }
    json_decref(in);
    json_decref(out);
    f->ctx = (struct gc_ctx){.store = f->st,
                             .cfg = &f->cfg,
                             .who = &f->admin,
                             .request_id = "req-0001",
                             .source_ip = "10.20.30.40"};
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (!f)
        return 0;
    gc_store_close(f->st);
    gc_config_release(&f->cfg);
    tu_rmdir(f->dir);
    free(f);
    return 0;
}

/* ---- fetching a whole dataset through its provider ---- */

struct got {
    json_t *records; /* records as record.json, in the order emitted */
    const char *dataset;
};

static int collect(void *cls, const struct gc_sup_record *rec)
{
    struct got *g = cls;
    json_t *data = NULL;
    if (!rec->deleted) {
        json_error_t jerr;
        data = json_loads(rec->data, 0, &jerr);
        if (!data)
            fail_msg("record %s: data is not JSON: %s (%s)", rec->id, jerr.text, rec->data);
    }
    json_t *r = gc_sup_record_new(g->dataset, rec->id, rec->seq, rec->time_ms, data);
    struct gc_schema_error se;
    if (gc_schema_validate_record(r, &se) != 0) {
        char *t = json_dumps(r, JSON_COMPACT);
        fail_msg("%s record is not valid: %s: %s", g->dataset, se.message, t);
    }
    json_array_append_new(g->records, r);
    return 0;
}

/* Every record of dataset after seq `after`, in batches of 2 (the provider's limit is
 * honoured), checked against the schema; seqs strictly increasing. */
static json_t *fetch_all(struct fx *f, const char *dataset, int64_t after)
{
    const struct gc_sup_provider *p = gc_sup_provider_find(dataset);
    assert_non_null(p);
    struct gc_error err = {0};
    if (p->refresh)
        assert_int_equal(p->refresh(f->st, &err), 0);
    struct gc_tx *tx;
    assert_int_equal(gc_tx_begin(f->st, GC_TX_READ, &tx, &err), 0);
    int64_t high = -1;
    assert_int_equal(p->high(tx, &high, &err), 0);
    struct got g = {.records = json_array(), .dataset = dataset};
    int64_t last = after;
    for (;;) {
        size_t before = json_array_size(g.records);
        assert_int_equal(p->fetch(tx, last, high, true, 2, collect, &g, &err), 0);
        size_t n = json_array_size(g.records) - before;
        assert_true(n <= 2);
        for (size_t i = before; i < json_array_size(g.records); i++) {
            int64_t s = json_integer_value(json_object_get(json_array_get(g.records, i), "seq"));
            if (s <= last)
                fail_msg("%s: seq %lld after %lld", dataset, (long long)s, (long long)last);
            assert_true(s <= high);
            last = s;
        }
        if (n < 2)
            break;
    }
    gc_tx_rollback(tx);
    return g.records;
}

static json_t *find_rec(json_t *recs, const char *id)
{
    json_t *found = NULL, *r;
    size_t i;
    json_array_foreach(recs, i, r) {
        if (!strcmp(json_string_value(json_object_get(r, "id")), id))
            found = r; /* the last one */
    }
    return found;
}

static const char *dstr(json_t *rec, const char *path)
{
    json_t *v = json_object_get(rec, "data");
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *tok = strtok(buf, "."); tok && v; tok = strtok(NULL, "."))
        v = json_object_get(v, tok);
    return json_string_value(v);
}

/* ---- log ---- */

static void log_records(void **state)
{
    struct fx *f = *state;
    gc_audit_failure(&f->ctx, "vm.delete", "vm", "0192f3a9-0000-7000-8000-00000000abcd",
                     GC_OUTCOME_DENIED, "role auditor may not delete VMs");
    gc_audit_failure(&f->ctx, "vm.reboot", "vm", "0192f3a9-0000-7000-8000-00000000abce",
                     GC_OUTCOME_FAILURE, "the host is unreachable");
    json_t *recs = fetch_all(f, "log", 0);
    /* the bootstrap and the login are audited too */
    assert_true(json_array_size(recs) >= 3);
    json_t *last = json_array_get(recs, json_array_size(recs) - 1);
    json_t *prev = json_array_get(recs, json_array_size(recs) - 2);
    assert_string_equal(dstr(prev, "action"), "vm.delete");
    assert_string_equal(dstr(prev, "outcome"), "failure");
    assert_string_equal(dstr(prev, "event_type"), "control");
    assert_string_equal(dstr(prev, "reason.code"), "denied");
    assert_string_equal(dstr(prev, "reason.detail"), "role auditor may not delete VMs");
    assert_string_equal(dstr(prev, "initiator.name"), "admin");
    assert_string_equal(dstr(prev, "initiator.id"), f->admin.user_id);
    assert_string_equal(dstr(prev, "initiator.role"), "platform_admin");
    assert_string_equal(dstr(prev, "initiator.address"), "10.20.30.40");
    assert_string_equal(dstr(prev, "target.id"), "0192f3a9-0000-7000-8000-00000000abcd");
    assert_string_equal(dstr(prev, "target.type"), "vm");
    assert_string_equal(dstr(prev, "request_id"), "req-0001");
    assert_int_equal(strlen(dstr(prev, "chain_hash")), 64);
    assert_string_equal(dstr(last, "action"), "vm.reboot");
    assert_string_equal(dstr(last, "event_type"), "activity");
    assert_string_equal(dstr(last, "reason.code"), "failure");
    /* the record id is the event's id, its time the event's */
    assert_string_equal(json_string_value(json_object_get(last, "id")), dstr(last, "id"));
    assert_string_equal(json_string_value(json_object_get(last, "time")),
                        dstr(last, "event_time"));
    /* changes after a seq: only what came later */
    int64_t mid = json_integer_value(json_object_get(prev, "seq"));
    json_t *tail = fetch_all(f, "log", mid);
    assert_int_equal(json_array_size(tail), 1);
    assert_string_equal(dstr(json_array_get(tail, 0), "action"), "vm.reboot");
    json_decref(tail);
    json_decref(recs);
    /* long texts are cut to the schema's lengths (code points, not bytes) */
    char reason[3000 * 3 + 1] = "";
    for (int i = 0; i < 3000; i++)
        strcat(reason, "审");
    gc_audit_failure(&f->ctx, "vm.delete", "vm", "x", GC_OUTCOME_FAILURE, reason);
    recs = fetch_all(f, "log", mid);
    const char *d = dstr(json_array_get(recs, 1), "reason.detail");
    assert_int_equal(strlen(d), 2000 * 3);
    json_decref(recs);
}

/* ---- alarm and availability (incidents) ---- */

static void incident(struct fx *f, const char *vm, const char *dept, const char *cause,
                     int64_t at)
{
    struct gc_error err = {0};
    struct gc_tx *tx;
    assert_int_equal(gc_tx_begin(f->st, GC_TX_WRITE, &tx, &err), 0);
    int rc = gc_incident_sync(tx, "vm", vm, dept, NULL, cause, "the VM runs again", at, &err);
    if (rc)
        fail_msg("gc_incident_sync: %s", err.msg);
    assert_int_equal(gc_tx_commit(tx, &err), 0);
}

static void mkdept(struct fx *f, const char *name, char id[GC_ID_LEN + 1])
{
    json_t *in = json_pack("{s:s}", "name", name), *out = NULL;
    struct gc_error err = {0};
    if (gc_dept_create(&f->ctx, in, &out, &err))
        fail_msg("department: %s", err.msg);
    snprintf(id, GC_ID_LEN + 1, "%s", json_string_value(json_object_get(out, "id")));
    json_decref(in);
    json_decref(out);
}

static void alarm_and_incident_records(void **state)
{
    struct fx *f = *state;
    char dept[GC_ID_LEN + 1], vm[GC_ID_LEN + 1];
    mkdept(f, "finance", dept);
    gc_id_new(vm);
    int64_t now = gc_now_ms();
    incident(f, vm, dept, "the domain does not run", now - 60000);
    json_t *al = fetch_all(f, "alarm", 0);
    json_t *av = fetch_all(f, "availability", 0);
    assert_int_equal(json_array_size(al), 1);
    assert_int_equal(json_array_size(av), 1);
    json_t *a = json_array_get(al, 0), *i = json_array_get(av, 0);
    assert_string_equal(dstr(a, "status"), "firing");
    assert_string_equal(dstr(a, "severity"), "critical");
    assert_string_equal(dstr(a, "name"), "vm-down");
    assert_string_equal(dstr(a, "resource.type"), "vm");
    assert_string_equal(dstr(a, "resource.id"), vm);
    assert_string_equal(dstr(a, "labels.resource_id"), vm);
    assert_null(dstr(a, "ends_at"));
    assert_string_equal(dstr(i, "kind"), "incident");
    assert_string_equal(dstr(i, "scope"), "vm");
    assert_string_equal(dstr(i, "resource_id"), vm);
    assert_string_equal(dstr(i, "department_id"), dept);
    assert_string_equal(dstr(i, "cause"), "the domain does not run");
    assert_null(dstr(i, "ended_at"));
    char aid[300], iid[300];
    snprintf(aid, sizeof(aid), "%s", json_string_value(json_object_get(a, "id")));
    snprintf(iid, sizeof(iid), "%s", json_string_value(json_object_get(i, "id")));
    int64_t aseq = json_integer_value(json_object_get(a, "seq"));
    int64_t iseq = json_integer_value(json_object_get(i, "seq"));
    assert_true(!strncmp(aid, "alarm:", 6));
    json_decref(al);
    json_decref(av);

    /* the same state again changes nothing */
    incident(f, vm, dept, "the domain does not run", now - 30000);
    al = fetch_all(f, "alarm", aseq);
    av = fetch_all(f, "availability", iseq);
    assert_int_equal(json_array_size(al), 0);
    assert_int_equal(json_array_size(av), 0);
    json_decref(al);
    json_decref(av);

    /* it ends: the same ids come again with new seqs */
    incident(f, vm, dept, NULL, now);
    al = fetch_all(f, "alarm", aseq);
    av = fetch_all(f, "availability", iseq);
    assert_int_equal(json_array_size(al), 1);
    assert_int_equal(json_array_size(av), 1);
    a = json_array_get(al, 0);
    i = json_array_get(av, 0);
    assert_string_equal(json_string_value(json_object_get(a, "id")), aid);
    assert_string_equal(json_string_value(json_object_get(i, "id")), iid);
    assert_string_equal(dstr(a, "status"), "resolved");
    assert_non_null(dstr(a, "ends_at"));
    assert_string_equal(dstr(a, "annotations.end_reason"), "the VM runs again");
    assert_non_null(dstr(i, "ended_at"));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(i, "data"),
                                                        "duration_seconds")),
                     60);
    assert_string_equal(dstr(i, "end_reason"), "the VM runs again");
    json_decref(al);
    json_decref(av);

    /* a metric alarm of severity minor with a number label, threshold and value; then
     * acknowledged */
    struct gc_error err = {0};
    struct gc_tx *tx;
    assert_int_equal(gc_tx_begin(f->st, GC_TX_WRITE, &tx, &err), 0);
    json_t *labels = json_pack("{s:s,s:s,s:i}", "alertname", "pool-full", "host_id",
                               "0192f3a4-5b6c-7d8e-9f00-112233445566", "shard", 3);
    struct gc_alarm_fire fire = {.rule_id = "00000000-0000-7000-8000-000000000004",
                                 .rule_name = "disk-nearly-full",
                                 .severity = "minor",
                                 .summary = "pool {{shard}} is {{value_percent}} full",
                                 .series = "govcloud_host_pool_used_ratio{shard=\"3\"}",
                                 .labels = labels,
                                 .value = 0.93,
                                 .threshold = 0.9,
                                 .has_threshold = true,
                                 .now = now};
    assert_int_equal(gc_alarm_fire(tx, &fire, &err), 0);
    json_decref(labels);
    assert_int_equal(gc_tx_commit(tx, &err), 0);
    al = fetch_all(f, "alarm", aseq);
    assert_int_equal(json_array_size(al), 2);
    a = json_array_get(al, 1);
    assert_string_equal(dstr(a, "severity"), "warning"); /* minor → warning */
    assert_string_equal(dstr(a, "labels.shard"), "3");
    assert_string_equal(dstr(a, "resource.type"), "host");
    json_t *d = json_object_get(a, "data");
    assert_true(fabs(json_real_value(json_object_get(d, "threshold")) - 0.9) < 1e-12);
    assert_true(fabs(json_real_value(json_object_get(d, "observed_value")) - 0.93) < 1e-12);
    assert_int_equal(strlen(dstr(a, "fingerprint")), 64);
    char alarm_uuid[GC_ID_LEN + 1];
    snprintf(alarm_uuid, sizeof(alarm_uuid), "%s",
             json_string_value(json_object_get(a, "id")) + 6);
    int64_t s2 = json_integer_value(json_object_get(a, "seq"));
    json_decref(al);
    json_t *out = NULL;
    assert_int_equal(gc_alarm_ack(&f->ctx, alarm_uuid, NULL, &out, &err), 0);
    json_decref(out);
    al = fetch_all(f, "alarm", s2);
    assert_int_equal(json_array_size(al), 1);
    a = json_array_get(al, 0);
    assert_string_equal(dstr(a, "acknowledged_by"), "admin");
    assert_non_null(dstr(a, "acknowledged_at"));
    assert_string_equal(dstr(a, "status"), "firing");
    json_decref(al);
    /* a snapshot holds every alarm, firing and resolved */
    al = fetch_all(f, "alarm", 0);
    assert_int_equal(json_array_size(al), 2);
    json_decref(al);
}

/* ---- availability: the figures of completed months ---- */

static int64_t month_start_ms(int64_t ms, int back)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    int y = tm.tm_year + 1900, m = tm.tm_mon + 1 - back;
    while (m < 1) {
        m += 12;
        y--;
    }
    struct tm s = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = 1};
    return (int64_t)timegm(&s) * 1000;
}

static void period_records(void **state)
{
    struct fx *f = *state;
    char dept[GC_ID_LEN + 1], vm[GC_ID_LEN + 1];
    mkdept(f, "tax", dept);
    gc_id_new(vm);
    int64_t now = gc_now_ms();
    int64_t pm = month_start_ms(now, 1), cm = month_start_ms(now, 0);
    struct gc_error err = {0};
    struct gc_tx *tx;
    /* a VM that lives since 40 days before the previous month, down one hour in it */
    assert_int_equal(gc_tx_begin(f->st, GC_TX_WRITE, &tx, &err), 0);
    assert_int_equal(gc_vm_lifetime(tx, vm, dept, true, pm - 40LL * 86400000, &err), 0);
    assert_int_equal(gc_tx_commit(tx, &err), 0);
    incident(f, vm, dept, "its host is unreachable", pm + 5LL * 86400000);
    incident(f, vm, dept, NULL, pm + 5LL * 86400000 + 3600000);

    int64_t changed = -1;
    assert_int_equal(gc_availability_periods_update(f->st, now, &changed, &err), 0);
    /* three months (the one of the VM's creation, the next, the previous one), platform and
     * department each */
    assert_int_equal(changed, 6);
    json_t *recs = fetch_all(f, "availability", 0);
    assert_int_equal(json_array_size(recs), 1 + 6); /* the incident (its latest state), figures */
    char ym[32], id[200];
    time_t t = (time_t)(pm / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(ym, sizeof(ym), "%04d-%02d", tm.tm_year + 1900, tm.tm_mon + 1);
    snprintf(id, sizeof(id), "availability:period:platform:%s", ym);
    json_t *p = find_rec(recs, id);
    assert_non_null(p);
    json_t *d = json_object_get(p, "data");
    int64_t service = (cm - pm) / 1000;
    assert_string_equal(dstr(p, "scope"), "platform");
    assert_null(json_object_get(d, "resource_id"));
    assert_int_equal(json_integer_value(json_object_get(d, "service_seconds")), service);
    assert_int_equal(json_integer_value(json_object_get(d, "downtime_seconds")), 3600);
    assert_int_equal(json_integer_value(json_object_get(d, "incidents")), 1);
    double want = floor((double)(service - 3600) / (double)service * 100.0 * 1e6) / 1e6;
    assert_true(fabs(json_real_value(json_object_get(d, "percent")) - want) < 1e-9);
    assert_false(json_is_true(json_object_get(d, "target_met"))); /* 99.86…% < 99.99% */
    snprintf(id, sizeof(id), "availability:period:department:%s:%s", dept, ym);
    json_t *q = find_rec(recs, id);
    assert_non_null(q);
    assert_string_equal(dstr(q, "resource_id"), dept);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(q, "data"),
                                                        "downtime_seconds")),
                     3600);
    int64_t high = json_integer_value(json_object_get(json_array_get(recs, 6), "seq"));
    json_decref(recs);

    /* recomputed the same: nothing new, whenever in the month */
    assert_int_equal(gc_availability_periods_update(f->st, now, &changed, &err), 0);
    assert_int_equal(changed, 0);
    assert_int_equal(gc_availability_periods_update(f->st, now + 3600000, &changed, &err), 0);
    assert_int_equal(changed, 0);
    recs = fetch_all(f, "availability", high);
    assert_int_equal(json_array_size(recs), 0);
    json_decref(recs);

    /* a maintenance window laid over the outage afterwards: the figures differ, so the
     * month's records come again with new seqs (the same ids) */
    assert_int_equal(gc_tx_begin(f->st, GC_TX_WRITE, &tx, &err), 0);
    struct gc_val args[] = {GC_VINT_(pm + 5LL * 86400000 - 60000),
                            GC_VINT_(pm + 5LL * 86400000 + 7200000)};
    assert_int_equal(gc_tx_exec(tx,
                                "INSERT INTO maintenance_windows (id, scope, resource_id,"
                                " starts_at, ends_at, description, created_at) VALUES"
                                " ('0192f3a9-0000-7000-8000-0000000000aa', 'platform', NULL,"
                                " ?, ?, 'late', 0)",
                                args, 2, NULL, &err),
                     0);
    assert_int_equal(gc_tx_commit(tx, &err), 0);
    assert_int_equal(gc_availability_periods_update(f->st, now, &changed, &err), 0);
    assert_int_equal(changed, 2);
    recs = fetch_all(f, "availability", high);
    assert_int_equal(json_array_size(recs), 2);
    snprintf(id, sizeof(id), "availability:period:platform:%s", ym);
    p = find_rec(recs, id);
    assert_non_null(p);
    d = json_object_get(p, "data");
    assert_int_equal(json_integer_value(json_object_get(d, "downtime_seconds")), 0);
    assert_int_equal(json_integer_value(json_object_get(d, "planned_seconds")), 7260);
    json_decref(recs);
}

/* ---- metric: hourly aggregates of the platform's series ---- */

static void metric_records(void **state)
{
    struct fx *f = *state;
    struct gc_error err = {0};
    struct gc_tsdb_opts o;
    gc_tsdb_opts_default(&o);
    o.flush_interval_ms = 0;
    struct gc_tsdb *db = NULL;
    assert_int_equal(gc_tsdb_open(f->st, &o, &db, &err), 0);
    int64_t now = gc_now_ms();
    int64_t h = (now / 3600000) * 3600000 - 2 * 3600000; /* the hour before the last one */
    struct gc_label host[] = {{"host_id", "0192f3a4-5b6c-7d8e-9f00-112233445566"}};
    struct gc_label vm[] = {{"department_id", "0192f3a4-0000-7000-8000-000000000001"},
                            {"vm_id", "0192f3a9-0000-7000-8000-00000000abcd"}};
    struct gc_sample smp[] = {
        {{"govcloud_host_cpu_usage_ratio", host, 1}, h + 60000, 0.2},
        {{"govcloud_host_cpu_usage_ratio", host, 1}, h + 120000, 0.4},
        {{"govcloud_test_errors_total", host, 1}, h + 60000, 10},
        {{"govcloud_test_errors_total", host, 1}, h + 120000, 20},
        {{"govcloud_vm_cpu_usage_ratio", vm, 2}, h + 60000, 0.9},
        /* the current hour: not exported until it ends */
        {{"govcloud_host_cpu_usage_ratio", host, 1}, now - 1000, 0.9},
    };
    gc_tsdb_append(db, smp, sizeof(smp) / sizeof(smp[0]));
    gc_tsdb_global = db;
    int64_t written = -1;
    assert_int_equal(gc_metric_sup_update(f->st, now, &written, &err), 0);
    assert_int_equal(written, 2);
    assert_int_equal(gc_metric_sup_update(f->st, now, &written, &err), 0);
    assert_int_equal(written, 0); /* an hour is exported once */
    json_t *recs = fetch_all(f, "metric", 0);
    assert_int_equal(json_array_size(recs), 2);
    json_t *cpu = NULL, *errs = NULL, *r;
    size_t i;
    json_array_foreach(recs, i, r) {
        const char *name = dstr(r, "name");
        if (!strcmp(name, "govcloud_host_cpu_usage_ratio"))
            cpu = r;
        else if (!strcmp(name, "govcloud_test_errors_total"))
            errs = r;
    }
    assert_non_null(cpu);
    assert_non_null(errs);
    json_t *d = json_object_get(cpu, "data");
    assert_true(fabs(json_number_value(json_object_get(d, "value")) - 0.3) < 1e-9);
    assert_string_equal(dstr(cpu, "type"), "gauge");
    assert_string_equal(dstr(cpu, "unit"), "ratio");
    assert_string_equal(dstr(cpu, "labels.host_id"), "0192f3a4-5b6c-7d8e-9f00-112233445566");
    assert_int_equal(json_integer_value(json_object_get(d, "interval_seconds")), 3600);
    char t[40];
    gc_time_format_rfc3339(h, t, sizeof(t));
    assert_string_equal(dstr(cpu, "time"), t);
    assert_string_equal(json_string_value(json_object_get(cpu, "time")), t);
    assert_contains(json_string_value(json_object_get(cpu, "id")),
                    "metric:govcloud_host_cpu_usage_ratio:");
    d = json_object_get(errs, "data");
    assert_true(fabs(json_number_value(json_object_get(d, "value")) - 20) < 1e-9);
    assert_string_equal(dstr(errs, "type"), "counter");
    assert_null(dstr(errs, "unit"));
    int64_t high = json_integer_value(json_object_get(json_array_get(recs, 1), "seq"));
    json_decref(recs);
    /* an hour later the current hour has ended: exported, and only it comes after */
    assert_int_equal(gc_metric_sup_update(f->st, now + 3600000, &written, &err), 0);
    assert_int_equal(written, 1);
    recs = fetch_all(f, "metric", high);
    assert_int_equal(json_array_size(recs), 1);
    assert_true(fabs(json_number_value(json_object_get(json_object_get(json_array_get(recs, 0),
                                                                       "data"),
                                                       "value")) -
                     0.9) < 1e-9);
    json_decref(recs);
    /* a week on, the hours kept are dropped: the snapshot is empty */
    assert_int_equal(gc_metric_sup_update(f->st, now + 200LL * 3600000, &written, &err), 0);
    struct gc_tx *tx;
    int64_t left = -1;
    assert_int_equal(gc_tx_begin(f->st, GC_TX_READ, &tx, &err), 0);
    assert_int_equal(gc_tx_query_int(tx, "SELECT COUNT(*) FROM supervision_metrics", GC_NOARGS,
                                     &left, &err),
                     0);
    gc_tx_rollback(tx);
    assert_int_equal(left, 0);
    gc_tsdb_global = NULL;
    gc_tsdb_close(db);
}

static void backup_is_empty(void **state)
{
    struct fx *f = *state;
    json_t *recs = fetch_all(f, "backup", 0);
    assert_int_equal(json_array_size(recs), 0);
    json_decref(recs);
    assert_null(gc_sup_provider_find("nothing"));
}

/* ---- the domestic substitution rate ---- */

static void weights_parse(void **state)
{
    (void)state;
    double w[GC_NLAYERS];
    struct gc_error err = {0};
    assert_int_equal(gc_subst_weights_parse(GC_SUBST_DEFAULT_WEIGHTS, w, &err), 0);
    assert_true(fabs(w[GC_LAYER_CPU] - 0.2) < 1e-12);
    assert_true(fabs(w[GC_LAYER_SECURITY] - 0.05) < 1e-12);
    assert_int_equal(gc_subst_weights_parse(" server = 0.5 , os=0.5", w, &err), 0);
    assert_true(fabs(w[GC_LAYER_SERVER] - 0.5) < 1e-12);
    assert_true(w[GC_LAYER_CPU] == 0);
    static const struct {
        const char *text, *msg;
    } bad[] = {
        {"", "empty"},
        {"cpu=0.5,cpu=0.5", "given twice"},
        {"gpu=1", "unknown layer 'gpu'"},
        {"cpu=-0.1,server=1.1", "not a non-negative number"},
        {"cpu=0.5", "sum to 0.5, not 1"},
        {"cpu=abc", "not a non-negative number"},
        {"cpu=0.5,server=0.5,", "is not layer=weight"},
        {"cpu", "is not layer=weight"},
        {"cpu=", "has no weight"},
        {"cpu=nan", "not a non-negative number"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct gc_error e = {0};
        if (gc_subst_weights_parse(bad[i].text, w, &e) != GC_EINVAL)
            fail_msg("weights '%s' accepted", bad[i].text);
        assert_contains(e.msg, bad[i].msg);
    }
}

static json_t *layer_of(json_t *res, const char *name)
{
    size_t i;
    json_t *l;
    json_array_foreach(json_object_get(res, "layers"), i, l) {
        if (!strcmp(json_string_value(json_object_get(l, "layer")), name))
            return l;
    }
    fail_msg("no layer %s", name);
    return NULL;
}

#define NUM(o, k) json_number_value(json_object_get(o, k))
#define INT(o, k) json_integer_value(json_object_get(o, k))

static void substitution_rate(void **state)
{
    (void)state;
    static const char *const assets[] = {
        "{\"kind\":\"server\",\"name\":\"a1\",\"domestic\":{\"flag\":true,\"basis\":\"cert\"},"
        "\"capacity\":{\"vcpus\":64}}",
        "{\"kind\":\"host\",\"name\":\"a2\",\"capacity\":{\"vcpus\":32}}",
        "{\"kind\":\"server\",\"name\":\"a3\",\"layer\":\"server\",\"domestic\":{\"flag\":false},"
        "\"capacity\":{\"vcpus\":32},\"attributes\":{\"weight\":\"heavy\"}}",
        "{\"kind\":\"software\",\"name\":\"a4\",\"layer\":\"os\",\"domestic\":{\"flag\":true,"
        "\"basis\":\" \"}}",
        "{\"kind\":\"software\",\"name\":\"a5\",\"layer\":\"os\",\"domestic\":{\"flag\":false}}",
        "{\"kind\":\"software\",\"name\":\"a6\",\"layer\":\"os\",\"domestic\":{\"flag\":true,"
        "\"basis\":\"catalogue 3\"}}",
        "{\"kind\":\"storage_device\",\"name\":\"a7\",\"domestic\":{\"flag\":true,\"basis\":\"x\"},"
        "\"capacity\":{\"disk_bytes\":1000}}",
        "{\"kind\":\"storage_device\",\"name\":\"a8\",\"domestic\":{\"flag\":false},"
        "\"capacity\":{\"disk_bytes\":1000}}",
        "{\"kind\":\"vm\",\"name\":\"a9\",\"domestic\":{\"flag\":true}}",
        "{\"kind\":\"rack\",\"name\":\"a10\",\"layer\":\"other\"}",
        "{\"kind\":\"security_device\",\"name\":\"a11\",\"domestic\":{\"flag\":true,\"basis\":"
        "\"b\"},\"attributes\":{\"weight\":\"2.5\"}}",
        "{\"kind\":\"security_device\",\"name\":\"a12\",\"layer\":\"security\",\"domestic\":"
        "{\"flag\":false}}",
        NULL};
    struct gc_subst s;
    gc_subst_init(&s);
    for (const char *const *a = assets; *a; a++) {
        json_t *d = json_loads(*a, 0, NULL);
        assert_non_null(d);
        gc_subst_add(&s, d);
        json_decref(d);
    }
    gc_subst_add(&s, NULL); /* not an object: ignored */
    double w[GC_NLAYERS];
    struct gc_error err = {0};
    assert_int_equal(gc_subst_weights_parse(GC_SUBST_DEFAULT_WEIGHTS, w, &err), 0);
    json_t *res = gc_subst_result(&s, w);
    assert_int_equal(INT(res, "assets_seen"), 12);
    assert_int_equal(INT(res, "unclassified"), 2);
    json_t *l = layer_of(res, "server");
    assert_int_equal(INT(l, "assets"), 3);
    assert_int_equal(INT(l, "domestic"), 1);
    assert_int_equal(INT(l, "domestic_with_basis"), 1);
    assert_int_equal(INT(l, "undeclared"), 1);
    assert_true(fabs(NUM(l, "rate_by_count") - 0.333333) < 1e-9);
    assert_int_equal(INT(l, "capacity_assets"), 3);
    assert_true(NUM(l, "capacity_total") == 128);
    assert_true(fabs(NUM(l, "rate_by_capacity") - 0.5) < 1e-9);
    l = layer_of(res, "os");
    assert_int_equal(INT(l, "assets"), 3);
    assert_int_equal(INT(l, "domestic"), 2);
    assert_int_equal(INT(l, "domestic_with_basis"), 1);
    assert_int_equal(INT(l, "domestic_without_basis"), 1);
    assert_true(fabs(NUM(l, "rate_by_count") - 0.666667) < 1e-9);
    assert_true(json_is_null(json_object_get(l, "rate_by_capacity")));
    l = layer_of(res, "storage");
    assert_true(fabs(NUM(l, "rate_by_count") - 0.5) < 1e-9);
    assert_true(fabs(NUM(l, "rate_by_capacity") - 0.5) < 1e-9);
    l = layer_of(res, "security");
    assert_int_equal(INT(l, "assets"), 2);
    assert_int_equal(INT(l, "capacity_assets"), 1);
    assert_true(fabs(NUM(l, "rate_by_capacity") - 1.0) < 1e-9);
    l = layer_of(res, "cpu");
    assert_int_equal(INT(l, "assets"), 0);
    assert_true(json_is_null(json_object_get(l, "rate_by_count")));
    json_t *o = json_object_get(res, "overall");
    /* by count: (.15·1/3 + .15·2/3 + .1·.5 + .05·.5) / (.15+.15+.1+.05) = .225/.45 */
    assert_true(fabs(NUM(o, "rate_by_count") - 0.5) < 1e-9);
    /* by capacity: (.15·.5 + .1·.5 + .05·1) / (.15+.1+.05) = .175/.3 */
    assert_true(fabs(NUM(o, "rate_by_capacity") - 0.583333) < 1e-9);
    assert_true(fabs(NUM(json_object_get(o, "weights_by_count"), "server") - 0.333333) < 1e-9);
    assert_true(fabs(NUM(json_object_get(o, "weights_by_capacity"), "server") - 0.5) < 1e-9);
    assert_null(json_object_get(json_object_get(o, "weights_by_count"), "cpu"));
    assert_int_equal(json_array_size(json_object_get(o, "layers_without_assets")), 4);
    json_t *e = json_object_get(res, "evidence");
    assert_int_equal(INT(e, "domestic_assets"), 5);
    assert_int_equal(INT(e, "with_basis"), 4);
    assert_int_equal(INT(e, "without_basis"), 1);
    json_decref(res);

    /* no asset in any weighted layer: no overall figure */
    gc_subst_init(&s);
    res = gc_subst_result(&s, w);
    assert_true(json_is_null(json_object_get(json_object_get(res, "overall"), "rate_by_count")));
    json_decref(res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(log_records, setup, teardown),
        cmocka_unit_test_setup_teardown(alarm_and_incident_records, setup, teardown),
        cmocka_unit_test_setup_teardown(period_records, setup, teardown),
        cmocka_unit_test_setup_teardown(metric_records, setup, teardown),
        cmocka_unit_test_setup_teardown(backup_is_empty, setup, teardown),
        cmocka_unit_test(weights_parse),
        cmocka_unit_test(substitution_rate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
