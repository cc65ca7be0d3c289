/* Unit tests of src/crypto: SM3 known answers (GB/T 32905), hex and base64url encodings
 * (RFC 4648), scrypt password hashes, bearer secrets and constant-time comparison. */
#include "testutil.h"

#include "crypto/crypto.h"

/* ---- SM3 ---- */

static void sm3_known_answers(void **state)
{
    (void)state;
    char hex[GC_SM3_HEX_LEN + 1];
    /* GB/T 32905-2016 appendix A, example 1 */
    gc_sm3_hex("abc", 3, hex);
    assert_string_equal(hex, "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0");
    /* example 2: "abcd" repeated 16 times (64 bytes, exactly one block before padding) */
    char m[65] = "";
    for (int i = 0; i < 16; i++)
        memcpy(m + 4 * i, "abcd", 4);
    m[64] = '\0';
    gc_sm3_hex(m, 64, hex);
    assert_string_equal(hex, "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732");
    /* the empty message */
    gc_sm3_hex("", 0, hex);
    assert_string_equal(hex, "1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b");

    /* the raw digest matches the hex */
    unsigned char raw[GC_SM3_LEN];
    gc_sm3("abc", 3, raw);
    assert_int_equal(raw[0], 0x66);
    assert_int_equal(raw[1], 0xc7);
    assert_int_equal(raw[31], 0xe0);
}

static void sm3_incremental_equals_one_shot(void **state)
{
    (void)state;
    enum { N = 10007 };
    unsigned char *data = malloc(N);
    assert_non_null(data);
    for (size_t i = 0; i < N; i++)
        data[i] = (unsigned char)(i * 131 + (i >> 8));
    char want[GC_SM3_HEX_LEN + 1], got[GC_SM3_HEX_LEN + 1];
    gc_sm3_hex(data, N, want);

    static const size_t chunks[] = {1, 3, 55, 56, 63, 64, 65, 1000, N};
    for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
        struct gc_sm3_ctx *h = gc_sm3_new();
        for (size_t off = 0; off < N; off += chunks[c]) {
            size_t n = N - off < chunks[c] ? N - off : chunks[c];
            gc_sm3_update(h, data + off, n);
        }
        gc_sm3_final_hex(h, got);
        if (strcmp(want, got) != 0) {
            free(data);
            fail_msg("chunk size %zu: %s != %s", chunks[c], got, want);
        }
    }
    free(data);

    /* the standard vector, fed one byte at a time, with empty updates in between */
    struct gc_sm3_ctx *h = gc_sm3_new();
    gc_sm3_update(h, "", 0);
    for (int i = 0; i < 16; i++) {
        gc_sm3_update(h, "ab", 2);
        gc_sm3_update(h, "", 0);
        gc_sm3_update(h, "cd", 2);
    }
    gc_sm3_final_hex(h, got);
    assert_string_equal(got, "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732");

    /* nothing fed: the hash of the empty message */
    h = gc_sm3_new();
    gc_sm3_final_hex(h, got);
    assert_string_equal(got, "1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b");
}

static void hex_encoding(void **state)
{
    (void)state;
    const unsigned char in[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xcd, 0xef, 0xff};
    char out[2 * sizeof(in) + 1];
    memset(out, 'X', sizeof(out));
    gc_hex(in, sizeof(in), out);
    assert_string_equal(out, "00017f80abcdefff");
    gc_hex(in, 0, out);
    assert_string_equal(out, "");
    gc_hex(in + 4, 1, out);
    assert_string_equal(out, "ab");
}

/* ---- base64url ---- */

static void b64url_rfc4648_vectors(void **state)
{
    (void)state;
    /* RFC 4648 section 10, without the padding */
    static const struct {
        const char *in, *out;
    } v[] = {
        {"", ""},          {"f", "Zg"},          {"fo", "Zm8"},       {"foo", "Zm9v"},
        {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        char out[32];
        memset(out, 'X', sizeof(out));
        gc_b64url((const unsigned char *)v[i].in, strlen(v[i].in), out);
        assert_string_equal(out, v[i].out);
    }
}

static void b64url_uses_the_url_alphabet(void **state)
{
    (void)state;
    char out[64];
    /* standard base64 would give "+/8=" and "////" */
    const unsigned char a[] = {0xfb, 0xff};
    gc_b64url(a, sizeof(a), out);
    assert_string_equal(out, "-_8");
    const unsigned char b[] = {0xff, 0xff, 0xff};
    gc_b64url(b, sizeof(b), out);
    assert_string_equal(out, "____");
    const unsigned char c[] = {0xfb, 0xef, 0xbe};
    gc_b64url(c, sizeof(c), out);
    assert_string_equal(out, "----");
    const unsigned char z[] = {0, 0, 0, 0};
    gc_b64url(z, sizeof(z), out);
    assert_string_equal(out, "AAAAAA");

    /* every byte value: output is 4*ceil(n/3) minus padding, url-safe only */
    unsigned char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    char big[4 * 86 + 1];
    gc_b64url(all, sizeof(all), big);
    assert_int_equal(strlen(big), (256 * 4 + 2) / 3);
    for (const char *p = big; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_'))
            fail_msg("character '%c' outside the base64url alphabet", *p);
    assert_memory_equal(big, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g", 44);
}

/* ---- passwords ---- */

static int setup_cheap_scrypt(void **state)
{
    (void)state;
    gc_password_set_cost_for_tests(10);
    return 0;
}

static void password_hash_and_verify(void **state)
{
    (void)state;
    const char *pw = "Correct-Horse-Battery-1";
    char *enc = gc_password_hash(pw);
    assert_non_null(enc);
    assert_true(strncmp(enc, "$scrypt$ln=10,r=8,p=1$", 22) == 0);
    /* "$scrypt$ln=10,r=8,p=1$" + 22 salt chars (16 bytes) + "$" + 43 hash chars (32 bytes) */
    assert_int_equal(strlen(enc), 22 + 22 + 1 + 43);
    assert_int_equal(enc[22 + 22], '$');
    assert_true(gc_password_verify(pw, enc));
    assert_false(gc_password_verify("Correct-Horse-Battery-2", enc));
    assert_false(gc_password_verify("correct-horse-battery-1", enc));
    assert_false(gc_password_verify("", enc));
    assert_false(gc_password_verify("Correct-Horse-Battery-1 ", enc));

    /* non-ASCII passwords */
    char *enc2 = gc_password_hash("政务云-密码-2024");
    assert_true(gc_password_verify("政务云-密码-2024", enc2));
    assert_false(gc_password_verify("政务云-密码-2025", enc2));
    free(enc2);

    /* the cost is read from the encoding, not from the current setting */
    gc_password_set_cost_for_tests(11);
    assert_true(gc_password_verify(pw, enc));
    char *enc3 = gc_password_hash(pw);
    assert_true(strncmp(enc3, "$scrypt$ln=11,", 14) == 0);
    gc_password_set_cost_for_tests(10);
    assert_true(gc_password_verify(pw, enc3));
    free(enc3);
    free(enc);
}

static void password_salts_differ(void **state)
{
    (void)state;
    char *a = gc_password_hash("Same-Password-1");
    char *b = gc_password_hash("Same-Password-1");
    int same_enc = strcmp(a, b) == 0;
    int same_salt = strncmp(a, b, 22 + 22) == 0;
    bool va = gc_password_verify("Same-Password-1", b);
    bool vb = gc_password_verify("Same-Password-1", a);
    free(a);
    free(b);
    assert_false(same_enc);
    assert_false(same_salt);
    assert_true(va);
    assert_true(vb);
}

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int b64_val(char c)
{
    const char *p = strchr(b64_alphabet, c);
    return p ? (int)(p - b64_alphabet) : 0;
}

static char b64_char(int v)
{
    return b64_alphabet[v & 63];
}

static void password_tampered_hash_fails(void **state)
{
    (void)state;
    const char *pw = "Tamper-Proof-99";
    char *enc = gc_password_hash(pw);
    size_t len = strlen(enc);
    char copy[160];
    int accepted = 0;
    /* change each character of the salt and of the hash in turn */
    for (size_t i = 22; i < len; i++) {
        if (enc[i] == '$')
            continue;
        memcpy(copy, enc, len + 1);
        /* flip the highest of the 6 bits: the last character of the salt and of the hash
         * carry unused low bits, so flipping a low bit might change nothing */
        copy[i] = b64_char(b64_val(copy[i]) ^ 32);
        if (gc_password_verify(pw, copy))
            accepted++;
    }
    /* a different cost */
    memcpy(copy, enc, len + 1);
    copy[11] = '1';
    copy[12] = '1';
    bool other_cost = gc_password_verify(pw, copy);
    free(enc);
    assert_int_equal(accepted, 0);
    assert_false(other_cost);
}

static void password_malformed_encodings(void **state)
{
    (void)state;
    const char *pw = "Correct-Horse-Battery-1";
    char *good = gc_password_hash(pw);
    const char *salt = good + 22;
    char salt_s[23], hash_s[44];
    memcpy(salt_s, salt, 22);
    salt_s[22] = '\0';
    memcpy(hash_s, salt + 23, 43);
    hash_s[43] = '\0';

    char bad[16][200];
    int n = 0;
    snprintf(bad[n++], 200, "%s", "");
    snprintf(bad[n++], 200, "%s", "$scrypt$");
    snprintf(bad[n++], 200, "%s", "plaintext");
    snprintf(bad[n++], 200, "$argon2id$ln=10,r=8,p=1$%s$%s", salt_s, hash_s);
    snprintf(bad[n++], 200, "$scrypt$ln=0,r=8,p=1$%s$%s", salt_s, hash_s);
    snprintf(bad[n++], 200, "$scrypt$ln=23,r=8,p=1$%s$%s", salt_s, hash_s);
    snprintf(bad[n++], 200, "$scrypt$ln=10,r=0,p=1$%s$%s", salt_s, hash_s);
    snprintf(bad[n++], 200, "$scrypt$ln=10,r=8,p=0$%s$%s", salt_s, hash_s);
    snprintf(bad[n++], 200, "$scrypt$ln=10,r=-8,p=1$%s$%s", salt_s, hash_s);
    snprintf(bad[n++], 200, "$scrypt$ln=10,r=8,p=1$%s", salt_s);
    snprintf(bad[n++], 200, "$scrypt$ln=10,r=8,p=1$%s$", salt_s);
    snprintf(bad[n++], 200, "$scrypt$ln=10,r=8,p=1$$%s", hash_s);
    snprintf(bad[n++], 200, "$scrypt$ln=10,r=8,p=1$%s$%s", "!!!!", hash_s);
    snprintf(bad[n++], 200, "$scrypt$ln=x,r=8,p=1$%s$%s", salt_s, hash_s);
    snprintf(bad[n++], 200, "$scrypt$r=8,p=1$%s$%s", salt_s, hash_s);
    snprintf(bad[n++], 200, "$scrypt$ln=10,r=8,p=1$%s+%s", salt_s, hash_s);
    int accepted = -1;
    for (int i = 0; i < n; i++)
        if (gc_password_verify(pw, bad[i])) {
            accepted = i;
            break;
        }
    free(good);
    if (accepted >= 0)
        fail_msg("accepted malformed encoding \"%s\"", bad[accepted]);
}

/* A stored hash that lost characters (a truncated column, a bad copy) is malformed: it must
 * not verify, or a short enough hash accepts wrong passwords by chance. */
static void password_truncated_hash_is_rejected(void **state)
{
    (void)state;
    const char *pw = "Correct-Horse-Battery-1";
    char *good = gc_password_hash(pw);
    size_t len = strlen(good);
    char cut[160];
    int accepted_len = -1;
    /* keep the salt and 2..42 of the 43 hash characters */
    for (size_t keep = 2; keep < 43 && accepted_len < 0; keep++) {
        memcpy(cut, good, len - 43 + keep);
        cut[len - 43 + keep] = '\0';
        if (gc_password_verify(pw, cut))
            accepted_len = (int)keep;
    }
    free(good);
    if (accepted_len >= 0)
        fail_msg("an encoding whose hash was cut to %d of 43 characters still verifies",
                 accepted_len);
}

/* ---- secrets ---- */

static void secret_shape_and_uniqueness(void **state)
{
    (void)state;
    enum { N = 2000 };
    char(*s)[64] = malloc(sizeof(*s) * N);
    assert_non_null(s);
    int bad_shape = -1;
    for (int i = 0; i < N; i++) {
        gc_secret_new(i % 2 ? "gct_" : "gck_", s[i]);
        if (strlen(s[i]) != 47 || strncmp(s[i], i % 2 ? "gct_" : "gck_", 4) != 0)
            bad_shape = i;
        for (const char *p = s[i] + 4; *p; p++)
            if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                  (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
                bad_shape = i;
    }
    int dups = 0;
    for (int i = 0; i < N; i++)
        for (int j = i + 2; j < N; j += 2) /* same prefix */
            if (strcmp(s[i] + 4, s[j] + 4) == 0)
                dups++;
    char example[64];
    memcpy(example, s[bad_shape < 0 ? 0 : bad_shape], 64);
    free(s);
    if (bad_shape >= 0)
        fail_msg("badly shaped secret %s", example);
    assert_int_equal(dups, 0);

    /* no prefix */
    char plain[64];
    gc_secret_new("", plain);
    assert_int_equal(strlen(plain), 43);
}

static void ct_streq_compares(void **state)
{
    (void)state;
    assert_true(gc_ct_streq("", ""));
    assert_true(gc_ct_streq("abc", "abc"));
    assert_true(gc_ct_streq("政务云", "政务云"));
    assert_false(gc_ct_streq("abc", "abd"));
    assert_false(gc_ct_streq("abc", "Abc"));
    assert_false(gc_ct_streq("abc", "ab"));
    assert_false(gc_ct_streq("ab", "abc"));
    assert_false(gc_ct_streq("", "a"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sm3_known_answers),
        cmocka_unit_test(sm3_incremental_equals_one_shot),
        cmocka_unit_test(hex_encoding),
        cmocka_unit_test(b64url_rfc4648_vectors),
        cmocka_unit_test(b64url_uses_the_url_alphabet),
        cmocka_unit_test(password_hash_and_verify),
        cmocka_unit_test(password_salts_differ),
        cmocka_unit_test(password_tampered_hash_fails),
        cmocka_unit_test(password_malformed_encodings),
        cmocka_unit_test(password_truncated_hash_is_rejected),
        cmocka_unit_test(secret_shape_and_uniqueness),
        cmocka_unit_test(ct_streq_compares),
    };
    return cmocka_run_group_tests_name("crypto", tests, setup_cheap_scrypt, NULL);
}
