/* Unit tests of the supervision envelope: canonical JSON, SM2 sign/verify, SM4 seal/open,
 * batches, keys and the cloud identity; and, as an independent second implementation, the
 * openssl command-line tool with a Python canonicaliser (supervision_interop.py). */
#include "testutil.h"

#include "supervision/envelope.h"
#include "supervision/schema.h"
#include "util/buf.h"
#include "util/id.h"
#include "util/mem.h"
#include "util/timeutil.h"

#include <jansson.h>
#include <sys/wait.h>

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

static const char *CLOUD = "6f1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d5";

static void test_canonical_form(void **state)
{
    (void)state;
    json_error_t je;
    json_t *a = json_loads("{\"b\":1,\"a\":[true,null,0.1,1e20,-0.0,2.5e-7,100.0,-3,1.5e300],"
                           "\"\\u00e9\":\"x\\n\\\"\\u0001/\\\\\\u2028\",\"B\":{\"z\":{},\"y\":[]},"
                           "\"\":false}",
                           0, &je);
    assert_non_null(a);
    char *c = gc_canonical_dumps(a);
    assert_string_equal(c, "{\"\":false,\"B\":{\"y\":[],\"z\":{}},\"a\":[true,null,"
                           "0.10000000000000001,1e20,-0.0,2.4999999999999999e-7,100.0,-3,"
                           "1.5000000000000001e300],\"b\":1,"
                           "\"\xc3\xa9\":\"x\\n\\\"\\u0001/\\\\\xe2\x80\xa8\"}");
    /* the same members in another order give the same bytes */
    json_t *b = json_loads("{\"\":false,\"b\":1,\"B\":{\"y\":[],\"z\":{}},\"\\u00e9\":\"x\\n\\\""
                           "\\u0001/\\\\\\u2028\",\"a\":[true,null,0.1,1e20,-0.0,2.5e-7,100.0,-3,"
                           "1.5e300]}",
                           0, &je);
    char *d = gc_canonical_dumps(b);
    assert_string_equal(c, d);
    /* and the canonical text parses back to the same canonical text */
    json_t *back = json_loads(c, 0, &je);
    char *e = gc_canonical_dumps(back);
    assert_string_equal(c, e);
    /* leaving out a top-level member */
    struct gc_buf buf;
    gc_buf_init(&buf, GC_BUF_UNLIMITED);
    assert_int_equal(gc_canonical_json(a, "a", &buf), 0);
    assert_null(strstr(gc_buf_str(&buf), "\"a\":"));
    gc_buf_release(&buf);
    free(c);
    free(d);
    free(e);
    json_decref(a);
    json_decref(b);
    json_decref(back);
}

/* The canonical form is byte for byte jansson's compact, sorted dump with 17 digits (the spec
 * says so): a second implementation in C, on the examples and on awkward values. */
static void test_canonical_matches_jansson(void **state)
{
    (void)state;
    const char *names[] = {"asset", "metric", "log", "alarm", "environment", "availability",
                           "availability-incident", "backup", "asset-delete"};
    const size_t flags = JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(17);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        json_t *j = load_example(names[i]);
        char *a = gc_canonical_dumps(j), *b = json_dumps(j, flags);
        assert_string_equal(a, b);
        free(a);
        free(b);
        json_decref(j);
    }
    json_error_t je;
    json_t *j = json_loads("{\"z\":[1e-300,-1.5e-10,123456789012345678,3.0,0.30000000000000004,"
                           "-9223372036854775807,1e22,5e-324],\"\\u00ff\":\"\\u001f\\u007f\\b\",\"Z\":"
                           "{\"\\u4e2d\":\"\\ud83d\\ude00\",\"a\":null}}",
                           0, &je);
    assert_non_null(j);
    char *a = gc_canonical_dumps(j), *b = json_dumps(j, flags);
    assert_string_equal(a, b);
    assert_non_null(strstr(a, "\\u001F"));
    free(a);
    free(b);
    json_decref(j);
}

/* The Python canonicaliser of supervision_interop.py gives the same bytes on every example. */
static void test_canonical_matches_python(void **state)
{
    (void)state;
    const char *names[] = {"asset", "metric", "log", "alarm", "environment", "availability",
                           "backup"};
    char script[1024];
    src_path(script, sizeof(script), "tests/unit/supervision_interop.py");
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char path[1024], rel[256], cmd[2300];
        snprintf(rel, sizeof(rel), "schemas/supervision/examples/%s.json", names[i]);
        src_path(path, sizeof(path), rel);
        snprintf(cmd, sizeof(cmd), "python3 %s canon %s", script, path);
        FILE *p = popen(cmd, "r");
        assert_non_null(p);
        static char out[65536];
        size_t n = fread(out, 1, sizeof(out) - 1, p);
        out[n] = '\0';
        assert_int_equal(pclose(p), 0);
        json_t *j = load_example(names[i]);
        char *c = gc_canonical_dumps(j);
        assert_string_equal(c, out);
        free(c);
        json_decref(j);
    }
}

static void test_record_new(void **state)
{
    (void)state;
    json_t *ex = load_example("environment");
    json_t *r = gc_sup_record_new("environment", "env:dc1-a201-r03-inlet-t:1795632136000",
                                  20417, 1795632136000,
                                  json_incref(json_object_get(ex, "data")));
    assert_true(json_equal(r, ex));
    struct gc_schema_error se;
    assert_int_equal(gc_schema_validate_record(r, &se), 0);
    json_decref(r);
    json_decref(ex);
    ex = load_example("asset-delete");
    r = gc_sup_record_new("asset", "vm:0192f3a9-0000-7000-8000-00000000abcd", 1043,
                          1795632001517, NULL);
    assert_true(json_equal(r, ex));
    json_decref(r);
    json_decref(ex);
}

static void test_base64(void **state)
{
    (void)state;
    char *s = gc_base64_encode("foob", 4);
    assert_string_equal(s, "Zm9vYg==");
    unsigned char *d;
    size_t n;
    assert_int_equal(gc_base64_decode(s, &d, &n), 0);
    assert_int_equal(n, 4);
    assert_memory_equal(d, "foob", 4);
    free(d);
    free(s);
    assert_int_equal(gc_base64_decode("Zm9vYg=", &d, &n), GC_EINVAL);
    assert_int_equal(gc_base64_decode("Zm9v\nYg==", &d, &n), GC_EINVAL);
    assert_int_equal(gc_base64_decode("Zm-_", &d, &n), GC_EINVAL);
}

static void test_sign_verify(void **state)
{
    (void)state;
    struct gc_sm2_key *k = NULL, *other = NULL, *pub = NULL;
    struct gc_error err = {0};
    assert_int_equal(gc_sm2_key_generate(&k, &err), 0);
    assert_int_equal(gc_sm2_key_generate(&other, &err), 0);
    char *pem = NULL;
    assert_int_equal(gc_sm2_key_public_pem(k, &pem, &err), 0);
    assert_non_null(strstr(pem, "-----BEGIN PUBLIC KEY-----"));
    assert_int_equal(gc_sm2_key_from_pem(pem, strlen(pem), &pub, &err), 0);
    assert_false(gc_sm2_key_has_private(pub));
    const char msg[] = "the canonical body";
    char *sig = NULL;
    assert_int_equal(gc_sm2_sign(k, msg, strlen(msg), &sig, &err), 0);
    assert_int_equal(gc_sm2_verify(pub, msg, strlen(msg), sig, &err), 0);
    assert_int_equal(gc_sm2_verify(k, msg, strlen(msg), sig, &err), 0);
    /* another message, another key, a flipped signature byte */
    assert_int_equal(gc_sm2_verify(pub, "the canonical bodY", strlen(msg), sig, &err), GC_EAUTH);
    assert_int_equal(gc_sm2_verify(other, msg, strlen(msg), sig, &err), GC_EAUTH);
    unsigned char *der;
    size_t n;
    assert_int_equal(gc_base64_decode(sig, &der, &n), 0);
    der[n - 3] ^= 0x01;
    char *bad = gc_base64_encode(der, n);
    assert_int_equal(gc_sm2_verify(pub, msg, strlen(msg), bad, &err), GC_EAUTH);
    assert_int_equal(gc_sm2_verify(pub, msg, strlen(msg), "not base64!", &err), GC_EINVAL);
    /* signing needs the private key */
    char *s2 = NULL;
    assert_int_equal(gc_sm2_sign(pub, msg, strlen(msg), &s2, &err), GC_EINVAL);
    free(der);
    free(bad);
    free(sig);
    free(pem);
    gc_sm2_key_free(k);
    gc_sm2_key_free(other);
    gc_sm2_key_free(pub);
}

static void test_non_sm2_key_refused(void **state)
{
    (void)state;
    char dir[64], cmd[256], path[128];
    tu_mkdtemp(dir);
    snprintf(path, sizeof(path), "%s/ec.pem", dir);
    snprintf(cmd, sizeof(cmd),
             "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out %s 2>/dev/null",
             path);
    assert_int_equal(system(cmd), 0);
    struct gc_sm2_key *k = NULL;
    struct gc_error err = {0};
    assert_int_equal(gc_sm2_key_load_or_create(path, &k, &err), GC_EINVAL);
    assert_non_null(strstr(err.msg, "not an SM2 key"));
    assert_int_equal(gc_sm2_key_from_pem("junk", 4, &k, &err), GC_EINVAL);
    tu_rmdir(dir);
}

static void test_key_load_or_create(void **state)
{
    (void)state;
    char dir[64], path[128];
    tu_mkdtemp(dir);
    snprintf(path, sizeof(path), "%s/sm2-key.pem", dir);
    struct gc_sm2_key *a = NULL, *b = NULL;
    struct gc_error err = {0};
    assert_int_equal(gc_sm2_key_load_or_create(path, &a, &err), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(gc_sm2_key_load_or_create(path, &b, &err), 0);
    char fa[65], fb[65];
    assert_int_equal(gc_sm2_key_fingerprint(a, fa, &err), 0);
    assert_int_equal(gc_sm2_key_fingerprint(b, fb, &err), 0);
    assert_string_equal(fa, fb);
    assert_true(gc_sm2_key_has_private(b));
    /* the file is a key the openssl tool reads as SM2 */
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "openssl pkey -in %s -noout -text 2>/dev/null | grep -q SM2",
             path);
    assert_int_equal(system(cmd), 0);
    gc_sm2_key_free(a);
    gc_sm2_key_free(b);
    tu_rmdir(dir);
}

static void test_sm4(void **state)
{
    (void)state;
    unsigned char secret[GC_SUP_SECRET_LEN], other[GC_SUP_SECRET_LEN];
    gc_random_bytes(secret, sizeof(secret));
    memcpy(other, secret, sizeof(other));
    other[31] ^= 1;
    const char aad[] = "header";
    const char pt[] = "[{\"id\":\"a\"},{\"id\":\"b\"}] and some more than one block of text";
    char *iv, *ct, *mac, *out = NULL;
    size_t outlen = 0;
    struct gc_error err = {0};
    assert_int_equal(gc_sm4_seal(secret, aad, strlen(aad), pt, strlen(pt), &iv, &ct, &mac, &err),
                     0);
    assert_int_equal(gc_sm4_open(secret, aad, strlen(aad), iv, ct, mac, &out, &outlen, &err), 0);
    assert_int_equal(outlen, strlen(pt));
    assert_string_equal(out, pt);
    free(out);
    /* wrong secret, other header, altered ciphertext, altered iv: all refused by the MAC */
    assert_int_equal(gc_sm4_open(other, aad, strlen(aad), iv, ct, mac, &out, &outlen, &err),
                     GC_EAUTH);
    assert_int_equal(gc_sm4_open(secret, "headex", 6, iv, ct, mac, &out, &outlen, &err),
                     GC_EAUTH);
    ct[5] = ct[5] == 'A' ? 'B' : 'A';
    assert_int_equal(gc_sm4_open(secret, aad, strlen(aad), iv, ct, mac, &out, &outlen, &err),
                     GC_EAUTH);
    ct[5] = ct[5] == 'A' ? 'B' : 'A';
    iv[0] = iv[0] == 'A' ? 'B' : 'A';
    assert_int_equal(gc_sm4_open(secret, aad, strlen(aad), iv, ct, mac, &out, &outlen, &err),
                     GC_EAUTH);
    assert_null(out);
    /* two seals of the same text differ (random IV) */
    char *iv2, *ct2, *mac2;
    assert_int_equal(
        gc_sm4_seal(secret, aad, strlen(aad), pt, strlen(pt), &iv2, &ct2, &mac2, &err), 0);
    assert_string_not_equal(ct, ct2);
    free(iv);
    free(ct);
    free(mac);
    free(iv2);
    free(ct2);
    free(mac2);
}

static json_t *example_records(void)
{
    json_t *a = json_array();
    json_array_append_new(a, load_example("asset"));
    json_array_append_new(a, load_example("asset-delete"));
    return a;
}

struct keys {
    struct gc_sm2_key *key;
    unsigned char secret[GC_SUP_SECRET_LEN];
    int lookups;
};

static int lookup(void *arg, const char *cloud_id, const struct gc_sm2_key **key,
                  const unsigned char **secret, struct gc_error *err)
{
    struct keys *k = arg;
    k->lookups++;
    if (strcmp(cloud_id, CLOUD) != 0)
        return gc_error_set(err, GC_ENOTFOUND, "/cloud_id", "unknown cloud %s", cloud_id);
    *key = k->key;
    *secret = k->secret;
    return 0;
}

static void test_batch_round_trip(void **state)
{
    (void)state;
    struct keys ks = {0};
    struct gc_error err = {0};
    assert_int_equal(gc_sm2_key_generate(&ks.key, &err), 0);
    gc_random_bytes(ks.secret, sizeof(ks.secret));
    json_t *recs = example_records();
    for (int encrypt = 0; encrypt < 2; encrypt++) {
        struct gc_sup_batch_opts o = {.cloud_id = CLOUD,
                                      .dataset = "asset",
                                      .batch_seq = 7,
                                      .time_ms = 1795632136123,
                                      .key = ks.key,
                                      .secret = encrypt ? ks.secret : NULL,
                                      .key_id = encrypt ? "k1" : NULL};
        char *text = NULL;
        size_t len = 0;
        assert_int_equal(gc_sup_batch_build(&o, recs, &text, &len, &err), 0);
        assert_int_equal(strlen(text), len);
        assert_true((strstr(text, "\"encryption\":") != NULL) == encrypt);
        assert_true((strstr(text, "GX-DC1-000731") != NULL) == !encrypt);
        struct gc_sup_batch_expect x = {.dataset = "asset", .lookup = lookup, .lookup_arg = &ks};
        struct gc_sup_batch b;
        int rc = gc_sup_batch_open(text, len, &x, &b, &err);
        if (rc)
            fail_msg("open: %s (%s)", err.msg, err.field);
        assert_string_equal(b.cloud_id, CLOUD);
        assert_string_equal(b.dataset, "asset");
        assert_int_equal(b.batch_seq, 7);
        assert_string_equal(b.time, "2026-11-25T18:42:16.123Z");
        assert_true(b.encrypted == encrypt);
        /* the records read back: ids, seqs, times and the canonical text of their data */
        assert_int_equal(b.nrecords, json_array_size(recs));
        struct gc_schema_error se;
        for (size_t i = 0; i < b.nrecords; i++) {
            assert_int_equal(gc_sup_batch_check_record(&b, i, &se), 0);
            const json_t *want = json_array_get(recs, i);
            struct gc_sup_rec r;
            gc_sup_batch_record(&b, i, &r);
            const char *id = json_string_value(json_object_get(want, "id"));
            assert_int_equal(r.id_len, strlen(id));
            assert_memory_equal(r.id, id, r.id_len);
            assert_int_equal(r.seq, json_integer_value(json_object_get(want, "seq")));
            int64_t t = 0;
            assert_int_equal(gc_time_parse_rfc3339(json_string_value(json_object_get(want, "time")), &t), 0);
            assert_int_equal(r.time_ms, t);
            const json_t *wd = json_object_get(want, "data");
            if (json_is_object(wd)) {
                char *c = gc_canonical_dumps(wd);
                assert_false(r.del);
                assert_non_null(r.data);
                assert_int_equal(r.data_len, strlen(c));
                assert_memory_equal(r.data, c, r.data_len);
                free(c);
            } else {
                assert_true(r.del);
                assert_null(r.data);
            }
        }
        gc_sup_batch_release(&b);

        /* a flipped byte in the body: the seq 1042 → 1043 (still valid JSON) */
        char *t2 = gc_strdup(text);
        char *p = strstr(t2, encrypt ? "\"batch_seq\":7" : "\"seq\":1042");
        assert_non_null(p);
        p[encrypt ? 12 : 9] += 1; /* "batch_seq":8, or "seq":1043 */
        assert_int_equal(gc_sup_batch_open(t2, len, &x, &b, &err), GC_EAUTH);
        gc_sup_batch_release(&b);
        free(t2);
        /* a flipped byte in the signature */
        t2 = gc_strdup(text);
        p = strstr(t2, "\"value\":\"") + 9 + 20;
        *p = *p == 'A' ? 'B' : 'A';
        rc = gc_sup_batch_open(t2, len, &x, &b, &err);
        assert_true(rc == GC_EAUTH || rc == GC_EINVAL);
        gc_sup_batch_release(&b);
        free(t2);
        /* a second copy of the signature member inside a record: the body changed, and
         * the fast path (text minus the member) does not apply to an ambiguous text */
        {
            const char *sv = strstr(text, "\"signature\":{");
            const char *end = strchr(sv, '}') + 1;
            const char *ins = strstr(text, "\"op\":\"upsert\"");
            if (ins) {
                ins += strlen("\"op\":\"upsert\"");
                struct gc_buf t3;
                gc_buf_init(&t3, GC_BUF_UNLIMITED);
                gc_buf_add(&t3, text, (size_t)(ins - text));
                gc_buf_add(&t3, ",", 1);
                gc_buf_add(&t3, sv, (size_t)(end - sv));
                gc_buf_adds(&t3, ins);
                assert_int_equal(gc_sup_batch_open(t3.data, t3.len, &x, &b, &err), GC_EAUTH);
                gc_sup_batch_release(&b);
                gc_buf_release(&t3);
            }
        }
        /* the same bytes re-ordered (not canonical any more) still verify: the receiver
         * canonicalises */
        json_error_t je;
        json_t *doc = json_loads(text, 0, &je);
        char *pretty = json_dumps(doc, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
        assert_int_equal(gc_sup_batch_open(pretty, strlen(pretty), &x, &b, &err), 0);
        gc_sup_batch_release(&b);
        free(pretty);
        json_decref(doc);
        /* wrong key */
        struct gc_sm2_key *other;
        assert_int_equal(gc_sm2_key_generate(&other, &err), 0);
        struct gc_sup_batch_expect wrong = {.key = other, .secret = ks.secret};
        assert_int_equal(gc_sup_batch_open(text, len, &wrong, &b, &err), GC_EAUTH);
        gc_sup_batch_release(&b);
        gc_sm2_key_free(other);
        /* wrong expectations */
        struct gc_sup_batch_expect other_ds = {.dataset = "log", .key = ks.key};
        assert_int_equal(gc_sup_batch_open(text, len, &other_ds, &b, &err), GC_EINVAL);
        assert_string_equal(err.field, "/dataset");
        gc_sup_batch_release(&b);
        struct gc_sup_batch_expect other_cloud = {.cloud_id = "0192f3a4-0000-7000-8000-000000000001",
                                              .key = ks.key};
        assert_int_equal(gc_sup_batch_open(text, len, &other_cloud, &b, &err), GC_EINVAL);
        assert_string_equal(err.field, "/cloud_id");
        gc_sup_batch_release(&b);
        if (encrypt) {
            /* right signature, wrong secret: the MAC fails */
            struct gc_sup_batch_expect ws = {.key = ks.key, .secret = (const unsigned char *)
                                                              "0123456789abcdef0123456789abcdef"};
            assert_int_equal(gc_sup_batch_open(text, len, &ws, &b, &err), GC_EAUTH);
            gc_sup_batch_release(&b);
            struct gc_sup_batch_expect none = {.key = ks.key};
            assert_int_equal(gc_sup_batch_open(text, len, &none, &b, &err), GC_EINVAL);
            gc_sup_batch_release(&b);
        } else {
            struct gc_sup_batch_expect req = {.key = ks.key, .require_encryption = true};
            assert_int_equal(gc_sup_batch_open(text, len, &req, &b, &err), GC_EINVAL);
            gc_sup_batch_release(&b);
        }
        free(text);
    }
    json_decref(recs);
    gc_sm2_key_free(ks.key);
}

static void test_batch_bad_input(void **state)
{
    (void)state;
    struct gc_sm2_key *k;
    struct gc_error err = {0};
    assert_int_equal(gc_sm2_key_generate(&k, &err), 0);
    struct gc_sup_batch_expect x = {.key = k};
    struct gc_sup_batch b;
    assert_int_equal(gc_sup_batch_open("{", 1, &x, &b, &err), GC_EINVAL);
    gc_sup_batch_release(&b);
    const char dup[] = "{\"cloud_id\":\"a\",\"cloud_id\":\"b\"}";
    assert_int_equal(gc_sup_batch_open(dup, strlen(dup), &x, &b, &err), GC_EINVAL);
    gc_sup_batch_release(&b);
    const char nosig[] = "{\"cloud_id\":\"6f1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d5\",\"dataset\":"
                         "\"asset\",\"schema_version\":\"1.0\",\"batch_seq\":1,\"time\":"
                         "\"2026-11-25T18:42:16.123Z\",\"record_ids\":[],\"records\":[]}";
    assert_int_equal(gc_sup_batch_open(nosig, strlen(nosig), &x, &b, &err), GC_EINVAL);
    assert_string_equal(err.field, "/signature");
    gc_sup_batch_release(&b);
    /* a record that is bad on its own: the batch opens, the record is refused by itself */
    json_t *recs = example_records();
    json_object_set_new(json_object_get(json_array_get(recs, 0), "data"), "mlps_grade",
                        json_integer(9));
    struct gc_sup_batch_opts o = {.cloud_id = CLOUD, .dataset = "asset", .batch_seq = 1, .key = k};
    char *text;
    size_t len;
    assert_int_equal(gc_sup_batch_build(&o, recs, &text, &len, &err), 0);
    assert_int_equal(gc_sup_batch_open(text, len, &x, &b, &err), 0);
    struct gc_schema_error se;
    assert_int_equal(gc_sup_batch_check_record(&b, 0, &se), GC_EINVAL);
    assert_string_equal(se.message, "data/mlps_grade: 9 is above the maximum 5");
    assert_int_equal(gc_sup_batch_check_record(&b, 1, &se), 0);
    gc_sup_batch_release(&b);
    free(text);
    /* a record of another dataset in an asset batch */
    o.dataset = "log";
    assert_int_equal(gc_sup_batch_build(&o, recs, &text, &len, &err), 0);
    assert_int_equal(gc_sup_batch_open(text, len, &x, &b, &err), 0);
    assert_int_equal(gc_sup_batch_check_record(&b, 1, &se), GC_EINVAL);
    assert_string_equal(se.pointer, "/dataset");
    gc_sup_batch_release(&b);
    free(text);
    /* build refuses what it cannot sign */
    o.cloud_id = "not-a-uuid";
    assert_int_equal(gc_sup_batch_build(&o, recs, &text, &len, &err), GC_EINVAL);
    json_decref(recs);
    gc_sm2_key_free(k);
}

static int run_cmd(const char *cmd)
{
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The openssl tool and the Python canonicaliser verify (and decrypt) what the C code made;
 * and the C code verifies what the openssl tool signed. */
static void test_interop_openssl(void **state)
{
    (void)state;
    if (run_cmd("openssl version >/dev/null 2>&1 && python3 -c 1") != 0)
        skip();
    char dir[64], script[1024], cmd[4096];
    tu_mkdtemp(dir);
    src_path(script, sizeof(script), "tests/unit/supervision_interop.py");
    struct gc_sm2_key *k;
    struct gc_error err = {0};
    assert_int_equal(gc_sm2_key_generate(&k, &err), 0);
    char *pub;
    assert_int_equal(gc_sm2_key_public_pem(k, &pub, &err), 0);
    char p_pub[128], p_plain[128], p_enc[128], p_bad[128];
    snprintf(p_pub, sizeof(p_pub), "%s/pub.pem", dir);
    snprintf(p_plain, sizeof(p_plain), "%s/plain.json", dir);
    snprintf(p_enc, sizeof(p_enc), "%s/enc.json", dir);
    snprintf(p_bad, sizeof(p_bad), "%s/bad.json", dir);
    FILE *f = fopen(p_pub, "w");
    fputs(pub, f);
    fclose(f);
    unsigned char secret[GC_SUP_SECRET_LEN];
    gc_random_bytes(secret, sizeof(secret));
    char hex[2 * GC_SUP_SECRET_LEN + 1];
    for (int i = 0; i < GC_SUP_SECRET_LEN; i++)
        snprintf(hex + 2 * i, 3, "%02x", secret[i]);
    json_t *recs = json_array();
    const char *names[] = {"asset", "metric", "log", "alarm", "environment", "backup"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        json_array_append_new(recs, load_example(names[i]));
    char *canon_recs = gc_canonical_dumps(recs);
    for (int encrypt = 0; encrypt < 2; encrypt++) {
        struct gc_sup_batch_opts o = {.cloud_id = CLOUD, .dataset = "asset", .batch_seq = 3,
                                  .key = k, .secret = encrypt ? secret : NULL};
        char *text;
        size_t len;
        assert_int_equal(gc_sup_batch_build(&o, recs, &text, &len, &err), 0);
        const char *path = encrypt ? p_enc : p_plain;
        f = fopen(path, "w");
        fwrite(text, 1, len, f);
        fclose(f);
        snprintf(cmd, sizeof(cmd), "python3 %s verify %s %s %s", script, path, p_pub,
                 encrypt ? hex : "");
        FILE *p = popen(cmd, "r");
        static char out[65536];
        size_t n = fread(out, 1, sizeof(out) - 1, p);
        out[n] = '\0';
        assert_int_equal(pclose(p), 0);
        if (n && out[n - 1] == '\n')
            out[n - 1] = '\0';
        assert_string_equal(out, canon_recs);
        /* tampered: the independent implementation refuses it too */
        char *bad = gc_strdup(text);
        char *q = strstr(bad, "\"batch_seq\":3");
        q[12] = '4';
        f = fopen(p_bad, "w");
        fwrite(bad, 1, len, f);
        fclose(f);
        snprintf(cmd, sizeof(cmd), "python3 %s verify %s %s %s 2>/dev/null", script, p_bad,
                 p_pub, encrypt ? hex : "");
        assert_int_not_equal(run_cmd(cmd), 0);
        free(bad);
        free(text);
    }
    /* openssl signs, the C code verifies */
    char p_key[128], p_msg[128], p_sig[128];
    snprintf(p_key, sizeof(p_key), "%s/key.pem", dir);
    snprintf(p_msg, sizeof(p_msg), "%s/msg", dir);
    snprintf(p_sig, sizeof(p_sig), "%s/sig", dir);
    char *priv;
    assert_int_equal(gc_sm2_key_private_pem(k, &priv, &err), 0);
    f = fopen(p_key, "w");
    fputs(priv, f);
    fclose(f);
    f = fopen(p_msg, "w");
    fputs(canon_recs, f);
    fclose(f);
    snprintf(cmd, sizeof(cmd),
             "openssl pkeyutl -sign -inkey %s -rawin -digest sm3 -in %s -out %s "
             "-pkeyopt distid:1234567812345678",
             p_key, p_msg, p_sig);
    assert_int_equal(run_cmd(cmd), 0);
    f = fopen(p_sig, "rb");
    unsigned char sig[256];
    size_t siglen = fread(sig, 1, sizeof(sig), f);
    fclose(f);
    char *sig64 = gc_base64_encode(sig, siglen);
    assert_int_equal(gc_sm2_verify(k, canon_recs, strlen(canon_recs), sig64, &err), 0);
    /* signed with another distinguishing id: refused (the ID is part of what is signed) */
    snprintf(cmd, sizeof(cmd),
             "openssl pkeyutl -sign -inkey %s -rawin -digest sm3 -in %s -out %s "
             "-pkeyopt distid:1234567812345679",
             p_key, p_msg, p_sig);
    assert_int_equal(run_cmd(cmd), 0);
    f = fopen(p_sig, "rb");
    siglen = fread(sig, 1, sizeof(sig), f);
    fclose(f);
    free(sig64);
    sig64 = gc_base64_encode(sig, siglen);
    assert_int_equal(gc_sm2_verify(k, canon_recs, strlen(canon_recs), sig64, &err), GC_EAUTH);
    free(sig64);
    free(priv);
    free(canon_recs);
    free(pub);
    json_decref(recs);
    gc_sm2_key_free(k);
    tu_rmdir(dir);
}

static void test_identity(void **state)
{
    (void)state;
    char dir[64], path[128];
    tu_mkdtemp(dir);
    const struct gc_sup_identity *id = NULL, *id2 = NULL;
    struct gc_error err = {0};
    assert_int_equal(gc_sup_identity_get(dir, "auto", &id, &err), 0);
    assert_true(gc_id_valid(id->cloud_id));
    assert_non_null(strstr(id->public_pem, "BEGIN PUBLIC KEY"));
    assert_int_equal(strlen(id->fingerprint), 64);
    struct stat st;
    snprintf(path, sizeof(path), "%s/supervision", dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    snprintf(path, sizeof(path), "%s/supervision/cloud-id", dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char buf[64] = {0};
    FILE *f = fopen(path, "r");
    assert_non_null(fgets(buf, sizeof(buf), f));
    fclose(f);
    assert_int_equal(strncmp(buf, id->cloud_id, 36), 0);
    snprintf(path, sizeof(path), "%s/supervision/sm2-key.pem", dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* cached for the process */
    assert_int_equal(gc_sup_identity_get(dir, "auto", &id2, &err), 0);
    assert_ptr_equal(id, id2);
    /* the key signs batches the public PEM verifies */
    struct gc_sm2_key *pub;
    assert_int_equal(gc_sm2_key_from_pem(id->public_pem, strlen(id->public_pem), &pub, &err), 0);
    char *sig;
    assert_int_equal(gc_sm2_sign(id->key, "x", 1, &sig, &err), 0);
    assert_int_equal(gc_sm2_verify(pub, "x", 1, sig, &err), 0);
    free(sig);
    gc_sm2_key_free(pub);
    snprintf(path, sizeof(path), "%s/supervision/sm2-key.pem", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/supervision/cloud-id", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/supervision", dir);
    rmdir(path);
    tu_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canonical_form),
        cmocka_unit_test(test_canonical_matches_jansson),
        cmocka_unit_test(test_canonical_matches_python),
        cmocka_unit_test(test_record_new),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_sign_verify),
        cmocka_unit_test(test_non_sm2_key_refused),
        cmocka_unit_test(test_key_load_or_create),
        cmocka_unit_test(test_sm4),
        cmocka_unit_test(test_batch_round_trip),
        cmocka_unit_test(test_batch_bad_input),
        cmocka_unit_test(test_interop_openssl),
        cmocka_unit_test(test_identity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
