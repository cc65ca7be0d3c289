/* Unit tests of the push outbox (core/sup_push.c) and of supervisor-mode ingest
 * (core/sup_recv.c) against a real SQLite store: the same store plays the cloud and the
 * supervisor, the "network" is a send function that hands each batch to gc_sup_ingest and
 * can fail on demand. Order, backoff, resends after a crash between send and record, and
 * nothing built twice. */
#include "testutil.h"

#include "core/asset.h"
#include "core/core.h"
#include "core/supervise.h"
#include "supervision/envelope.h"
#include "supervision/schema.h"
#include "util/config.h"
#include "util/timeutil.h"

#define ADMIN_PW "Admin-Passw0rd!"

struct fx {
    char dir[64];
    char db[128];
    struct gc_store *st;
    struct gc_config cfg;
    struct gc_principal admin;
    struct gc_ctx ctx;
    struct gc_sup_identity id;
    char token[80];
    char rid[GC_ID_LEN + 1];
};

/* the "network" */
static struct fx *NET;
static int fail_next, calls;
static int64_t order[64];
static int norder;

static int loop_send(const char *url, const char *token, const char *key, const char *body,
                     size_t len, struct gc_error *err)
{
    (void)url;
    calls++;
    const char *last = strrchr(key, ':');
    if (norder < 64 && last)
        order[norder++] = atoll(last + 1);
    if (fail_next > 0) {
        fail_next--;
        return gc_error_set(err, GC_EBUSY, "", "the receiver answered HTTP 503");
    }
    json_t *out = NULL;
    int rc = gc_sup_ingest(NET->st, token, body, len, &out, err);
    json_decref(out);
    return rc;
}

static void raw_exec(struct gc_store *st, const char *sql)
{
    struct gc_tx *tx;
    struct gc_error err = {0};
    assert_int_equal(gc_tx_begin(st, GC_TX_WRITE, &tx, &err), 0);
    if (gc_tx_exec(tx, sql, GC_NOARGS, NULL, &err) != 0) {
        gc_tx_rollback(tx);
        fail_msg("%s: %s", sql, err.msg);
    }
    assert_int_equal(gc_tx_commit(tx, &err), 0);
}

static int64_t q_int(struct gc_store *st, const char *sql)
{
    struct gc_tx *tx;
    struct gc_error err = {0};
    int64_t v = -1;
    assert_int_equal(gc_tx_begin(st, GC_TX_READ, &tx, &err), 0);
    if (gc_tx_query_int(tx, sql, GC_NOARGS, &v, &err) != 0)
        fail_msg("%s: %s", sql, err.msg);
    gc_tx_rollback(tx);
    return v;
}

static void import(struct fx *f, int n, const char *prefix)
{
    json_t *rows = json_array();
    for (int i = 0; i < n; i++) {
        char name[64];
        snprintf(name, sizeof(name), "%s-%d", prefix, i);
        json_array_append_new(rows, json_pack("{s:s,s:s,s:s}", "kind", "server", "name", name,
                                              "serial_number", name));
    }
    json_t *out = NULL, *errors = json_array();
    struct gc_error err = {0};
    if (gc_asset_import(&f->ctx, rows, &out, errors, &err) != 0)
        fail_msg("import: %s", err.msg);
    json_decref(out);
    json_decref(errors);
    json_decref(rows);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct gc_error err = {0};
    tu_mkdtemp(f->dir);
    snprintf(f->db, sizeof(f->db), "%s/govcloud.db", f->dir);
    gc_config_init(&f->cfg);
    if (gc_store_open("sqlite", f->db, 4, &f->st, &err) != 0 || gc_schema_init(&err) != 0)
        return -1;
    char *created = NULL;
    if (gc_bootstrap_admin(f->st, &f->cfg, ADMIN_PW, &created, &err) != 0)
        return -1;
    free(created);
    json_t *in = json_pack("{s:s,s:s}", "username", "admin", "password", ADMIN_PW), *out = NULL;
    struct gc_ctx anon = {.store = f->st, .cfg = &f->cfg, .request_id = "", .source_ip = ""};
    if (gc_auth_login(&anon, in, &out, &err) != 0 ||
        gc_auth_resolve(f->st, json_string_value(json_object_get(out, "token")), &f->admin,
                        &err) != 0)
        return -1;
    json_decref(in);
    json_decref(out);
    f->ctx = anon;
    f->ctx.who = &f->admin;
    /* the cloud's identity, made here (gc_sup_identity_get would write under data_dir) */
    gc_id_new(f->id.cloud_id);
    if (gc_sm2_key_generate(&f->id.key, &err) ||
        gc_sm2_key_public_pem(f->id.key, &f->id.public_pem, &err))
        return -1;
    /* registered with "the supervisor" (the same store) */
    in = json_pack("{s:s,s:s,s:s}", "cloud_id", f->id.cloud_id, "name", "unit-cloud",
                   "public_key_pem", f->id.public_pem);
    if (gc_cloud_create(&f->ctx, in, &out, &err) != 0) {
        print_error("cloud: %s\n", err.msg);
        return -1;
    }
    snprintf(f->token, sizeof(f->token), "%s", json_string_value(json_object_get(out, "token")));
    json_decref(in);
    json_decref(out);
    in = json_pack("{s:s,s:s,s:s,s:[s]}", "name", "unit", "url", "http://unit.invalid/ingest",
                   "token", f->token, "datasets", "asset");
    if (gc_receiver_create(&f->ctx, in, &out, &err) != 0) {
        print_error("receiver: %s\n", err.msg);
        return -1;
    }
    snprintf(f->rid, sizeof(f->rid), "%s", json_string_value(json_object_get(out, "id")));
    json_decref(in);
    json_decref(out);
    NET = f;
    fail_next = calls = norder = 0;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    gc_store_close(f->st);
    gc_config_release(&f->cfg);
    gc_sm2_key_free(f->id.key);
    free(f->id.public_pem);
    tu_rmdir(f->dir);
    free(f);
    return 0;
}

static void test_order_backoff_and_exactly_once(void **state)
{
    struct fx *f = *state;
    struct gc_error err = {0};
    int built = 0, sent = 0;
    import(f, 1200, "srv");
    assert_int_equal(gc_push_build(f->st, &f->id, &built, &err), 0);
    assert_int_equal(built, 3); /* 500 + 500 + 200 */
    /* nothing new: nothing built */
    assert_int_equal(gc_push_build(f->st, &f->id, &built, &err), 0);
    assert_int_equal(built, 0);
    /* the first attempt fails: the stream waits (batches 2 and 3 are not tried) */
    fail_next = 1;
    assert_int_equal(gc_push_deliver(f->st, loop_send, NULL, &sent, &err), 0);
    assert_int_equal(sent, 0);
    assert_int_equal(calls, 1);
    /* and is not tried again before its backoff */
    assert_int_equal(gc_push_deliver(f->st, loop_send, NULL, &sent, &err), 0);
    assert_int_equal(calls, 1);
    json_t *stats = NULL;
    assert_int_equal(gc_push_stats(f->st, &stats, &err), 0);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(stats, 0), "pending")), 3);
    json_decref(stats);
    assert_int_equal(q_int(f->st, "SELECT attempts FROM sup_outbox WHERE batch_seq = 1"), 1);
    int64_t next = q_int(f->st, "SELECT next_at FROM sup_outbox WHERE batch_seq = 1");
    assert_true(next > gc_now_ms() + 500 && next < gc_now_ms() + 1500); /* 1 s */
    /* the backoff over: everything in order */
    raw_exec(f->st, "UPDATE sup_outbox SET next_at = 0");
    assert_int_equal(gc_push_deliver(f->st, loop_send, NULL, &sent, &err), 0);
    assert_int_equal(sent, 3);
    assert_int_equal(norder, 4);
    assert_int_equal(order[0], 1);
    assert_int_equal(order[1], 1);
    assert_int_equal(order[2], 2);
    assert_int_equal(order[3], 3);
    assert_int_equal(q_int(f->st, "SELECT COUNT(*) FROM sup_records WHERE op = 'upsert'"), 1200);
    assert_int_equal(q_int(f->st, "SELECT delivered_seq FROM sup_push_state"), 3);
    assert_int_equal(q_int(f->st, "SELECT COUNT(*) FROM sup_gaps"), 0);
    /* the received records are those of the pull: same ids and seqs */
    assert_int_equal(q_int(f->st, "SELECT COUNT(*) FROM sup_records r JOIN assets a ON"
                                  " a.id = r.record_id AND a.seq = r.seq"),
                     1200);

    /* a crash after the send and before it was recorded: sent again, stored once */
    raw_exec(f->st, "UPDATE sup_outbox SET delivered_at = NULL, next_at = 0, attempts = 0"
                    " WHERE batch_seq = 3");
    calls = 0;
    assert_int_equal(gc_push_deliver(f->st, loop_send, NULL, &sent, &err), 0);
    assert_int_equal(calls, 1);
    assert_int_equal(q_int(f->st, "SELECT COUNT(*) FROM sup_records"), 1200);
    assert_int_equal(q_int(f->st, "SELECT batches FROM sup_streams"), 3);
    assert_int_equal(q_int(f->st, "SELECT duplicates FROM sup_streams"), 200);

    /* later changes: one more batch, the next batch_seq, and only the changes */
    import(f, 10, "more");
    assert_int_equal(gc_push_build(f->st, &f->id, &built, &err), 0);
    assert_int_equal(built, 1);
    assert_int_equal(q_int(f->st, "SELECT records FROM sup_outbox WHERE batch_seq = 4"), 10);
    assert_int_equal(gc_push_deliver(f->st, loop_send, NULL, &sent, &err), 0);
    assert_int_equal(sent, 1);
    assert_int_equal(q_int(f->st, "SELECT COUNT(*) FROM sup_records"), 1210);
    /* delivered batches are pruned; the state keeps the place */
    assert_int_equal(gc_push_prune(f->st, gc_now_ms() + 1000, &err), 0);
    assert_int_equal(q_int(f->st, "SELECT COUNT(*) FROM sup_outbox"), 0);
    assert_int_equal(gc_push_build(f->st, &f->id, &built, &err), 0);
    assert_int_equal(built, 0);
}

/* Large records: batches are cut at GC_PUSH_BATCH_BYTES of record text, so that each stays
 * under a supervisor's default 1 MiB body limit; everything still arrives, in order. */
static void test_batches_cut_by_size(void **state)
{
    struct fx *f = *state;
    struct gc_error err = {0};
    /* 1000 characters of evidence, 3 bytes each in UTF-8: about 3.2 KB per record */
    char basis[3001] = "";
    for (int i = 0; i < 1000; i++)
        strcat(basis, "证");
    json_t *rows = json_array();
    for (int i = 0; i < 600; i++) {
        char name[32];
        snprintf(name, sizeof(name), "big-%d", i);
        json_array_append_new(rows, json_pack("{s:s,s:s,s:{s:b,s:s}}", "kind", "server", "name",
                                              name, "domestic", "flag", 1, "basis", basis));
    }
    json_t *out = NULL, *errors = json_array();
    if (gc_asset_import(&f->ctx, rows, &out, errors, &err) != 0)
        fail_msg("import: %s", err.msg);
    json_decref(out);
    json_decref(errors);
    json_decref(rows);
    int built = 0, sent = 0;
    assert_int_equal(gc_push_build(f->st, &f->id, &built, &err), 0);
    /* about 2 MB of records: several batches, none of 500 records, each body within
     * the byte budget (plus its envelope and record_ids) */
    int64_t total = q_int(f->st, "SELECT SUM(LENGTH(CAST(body AS BLOB))) FROM sup_outbox");
    int64_t biggest = q_int(f->st, "SELECT MAX(LENGTH(CAST(body AS BLOB))) FROM sup_outbox");
    print_message("%d batches, %lld bytes, the biggest %lld\n", built, (long long)total,
                  (long long)biggest);
    assert_true(total > 1800 * 1000);
    assert_true(built >= 4 && built < 20);
    assert_true(q_int(f->st, "SELECT MAX(records) FROM sup_outbox") < 500);
    assert_true(biggest <= GC_PUSH_BATCH_BYTES + 64 * 1024);
    assert_int_equal(q_int(f->st, "SELECT SUM(records) FROM sup_outbox"), 600);
    assert_int_equal(gc_push_deliver(f->st, loop_send, NULL, &sent, &err), 0);
    assert_int_equal(sent, built);
    assert_int_equal(q_int(f->st, "SELECT COUNT(*) FROM sup_records WHERE op = 'upsert'"), 600);
    assert_int_equal(q_int(f->st, "SELECT COUNT(*) FROM sup_gaps"), 0);
    assert_int_equal(norder, built);
    for (int i = 0; i < built; i++)
        assert_int_equal(order[i], i + 1);
}

static void test_disabled_and_deleted_receiver(void **state)
{
    struct fx *f = *state;
    struct gc_error err = {0};
    int built = 0, sent = 0;
    import(f, 20, "g");
    assert_int_equal(gc_push_build(f->st, &f->id, &built, &err), 0);
    assert_int_equal(built, 1);
    /* a disabled receiver gets nothing */
    json_t *in = json_pack("{s:b}", "enabled", 0), *out = NULL;
    assert_int_equal(gc_receiver_update(&f->ctx, f->rid, -1, in, &out, &err), 0);
    json_decref(in);
    json_decref(out);
    import(f, 5, "h");
    assert_int_equal(gc_push_build(f->st, &f->id, &built, &err), 0);
    assert_int_equal(built, 0);
    assert_int_equal(gc_push_deliver(f->st, loop_send, NULL, &sent, &err), 0);
    assert_int_equal(calls, 0);
    /* its delivery state is shown, without the token */
    assert_int_equal(gc_receiver_get(&f->ctx, f->rid, &out, &err), 0);
    char *text = json_dumps(out, 0);
    assert_null(strstr(text, f->token));
    free(text);
    json_t *d = json_array_get(json_object_get(out, "delivery"), 0);
    assert_int_equal(json_integer_value(json_object_get(d, "pending_batches")), 1);
    assert_int_equal(json_integer_value(json_object_get(d, "last_batch_seq")), 1);
    json_decref(out);
    /* deleting the receiver drops its outbox */
    assert_int_equal(gc_receiver_delete(&f->ctx, f->rid, -1, &err), 0);
    assert_int_equal(q_int(f->st, "SELECT COUNT(*) FROM sup_outbox"), 0);
    assert_int_equal(q_int(f->st, "SELECT COUNT(*) FROM sup_push_state"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_order_backoff_and_exactly_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disabled_and_deleted_receiver, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batches_cut_by_size, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
