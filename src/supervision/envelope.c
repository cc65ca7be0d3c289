/* The signed (and optionally encrypted) batch envelope of supervision data: canonical JSON,
 * SM2/SM3 signatures, SM4-CTR + HMAC-SM3 with HKDF-SM3 keys, on OpenSSL 3 EVP. */
#define _GNU_SOURCE /* memmem */
#include "supervision/envelope.h"

#include "crypto/crypto.h"
#include "supervision/schema.h"
#include "util/id.h"
#include "util/mem.h"
#include "util/timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct gc_sm2_key {
    EVP_PKEY *pkey;
    bool has_private;
};

/* ---- canonical JSON ---- */

#define CANON_MAX_DEPTH 64

static int canon_string(const char *s, size_t n, struct gc_buf *b)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = gc_buf_add(b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        if (i > run)
            rc = gc_buf_add(b, s + run, i - run);
        run = i + 1;
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t elen = 2;
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            elen = 6;
        }
        if (!rc)
            rc = gc_buf_add(b, esc, elen);
    }
    if (!rc && n > run)
        rc = gc_buf_add(b, s + run, n - run);
    if (!rc)
        rc = gc_buf_add(b, "\"", 1);
    return rc;
}

/* printf "%.17g", then: ".0" appended when the text is only digits and '-'; the exponent
 * written without '+' and without leading zeros ("1e+20" → "1e20", "1e-05" → "1e-5"). */
static int canon_real(double d, struct gc_buf *b)
{
    if (!isfinite(d))
        return GC_EINVAL;
    char t[40], o[44];
    int n = snprintf(t, sizeof(t), "%.17g", d);
    if (n <= 0 || (size_t)n >= sizeof(t))
        return GC_EINVAL;
    size_t j = 0;
    bool frac_or_exp = false;
    for (int i = 0; i < n; i++) {
        if (t[i] == '.')
            frac_or_exp = true;
        if (t[i] == 'e') {
            frac_or_exp = true;
            o[j++] = 'e';
            i++;
            if (t[i] == '-')
                o[j++] = '-';
            else if (t[i] != '+')
                i--;
            while (i + 1 < n - 1 && t[i + 1] == '0')
                i++;
            continue;
        }
        o[j++] = t[i];
    }
    if (!frac_or_exp) {
        o[j++] = '.';
        o[j++] = '0';
    }
    return gc_buf_add(b, o, j);
}

static int key_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int canon(const json_t *v, const char *skip_key, struct gc_buf *b, int depth)
{
    if (depth > CANON_MAX_DEPTH)
        return GC_EINVAL;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        size_t n = json_object_size(v), k = 0;
        const char *stack[64];
        const char **keys = n <= 64 ? stack : gc_malloc(n * sizeof(char *));
        const char *key;
        json_t *m;
        json_object_foreach((json_t *)v, key, m) {
            if (!skip_key || strcmp(key, skip_key) != 0)
                keys[k++] = key;
        }
        qsort(keys, k, sizeof(char *), key_cmp);
        int rc = gc_buf_add(b, "{", 1);
        for (size_t i = 0; i < k && !rc; i++) {
            if (i)
                rc = gc_buf_add(b, ",", 1);
            if (!rc)
                rc = canon_string(keys[i], strlen(keys[i]), b);
            if (!rc)
                rc = gc_buf_add(b, ":", 1);
            if (!rc)
                rc = canon(json_object_get(v, keys[i]), NULL, b, depth + 1);
        }
        if (!rc)
            rc = gc_buf_add(b, "}", 1);
        if (keys != stack)
            free(keys);
        return rc;
    }
    case JSON_ARRAY: {
        int rc = gc_buf_add(b, "[", 1);
        size_t n = json_array_size(v);
        for (size_t i = 0; i < n && !rc; i++) {
            if (i)
                rc = gc_buf_add(b, ",", 1);
            if (!rc)
                rc = canon(json_array_get(v, i), NULL, b, depth + 1);
        }
        if (!rc)
            rc = gc_buf_add(b, "]", 1);
        return rc;
    }
    case JSON_STRING:
        return canon_string(json_string_value(v), json_string_length(v), b);
    case JSON_INTEGER: {
        char t[24];
        int n = snprintf(t, sizeof(t), "%lld", (long long)json_integer_value(v));
        return gc_buf_add(b, t, (size_t)n);
    }
    case JSON_REAL:
        return canon_real(json_real_value(v), b);
    case JSON_TRUE:
        return gc_buf_add(b, "true", 4);
    case JSON_FALSE:
        return gc_buf_add(b, "false", 5);
    default:
        return gc_buf_add(b, "null", 4);
    }
}

int gc_canonical_json(const json_t *v, const char *skip_key, struct gc_buf *b)
{
    return canon(v, skip_key, b, 0);
}

char *gc_canonical_dumps(const json_t *v)
{
    struct gc_buf b;
    gc_buf_init(&b, GC_BUF_UNLIMITED);
    if (canon(v, NULL, &b, 0) != 0) {
        gc_buf_release(&b);
        return NULL;
    }
    return gc_buf_steal(&b);
}

/* ---- base64 ---- */

char *gc_base64_encode(const void *in, size_t n)
{
    char *out = gc_malloc(4 * ((n + 2) / 3) + 1);
    /* EVP_EncodeBlock takes an int length: encode in pieces of a multiple of 3 bytes */
    size_t done = 0, olen = 0;
    const size_t piece = 3 * (1u << 28);
    while (done < n || n == 0) {
        size_t take = n - done < piece ? n - done : piece;
        olen += (size_t)EVP_EncodeBlock((unsigned char *)out + olen,
                                        (const unsigned char *)in + done, (int)take);
        done += take;
        if (n == 0)
            break;
    }
    out[olen] = '\0';
    return out;
}

int gc_base64_decode(const char *in, unsigned char **out, size_t *outlen)
{
    size_t n = strlen(in);
    *out = NULL;
    if (n % 4 != 0 || n > (size_t)1 << 30)
        return GC_EINVAL;
    size_t pad = 0;
    if (n && in[n - 1] == '=')
        pad++;
    if (n > 1 && in[n - 2] == '=')
        pad++;
    for (size_t i = 0; i < n - pad; i++) {
        char c = in[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/'))
            return GC_EINVAL;
    }
    unsigned char *buf = gc_malloc(n / 4 * 3 + 1);
    int r = n ? EVP_DecodeBlock(buf, (const unsigned char *)in, (int)n) : 0;
    if (r < 0 || (size_t)r < pad) {
        free(buf);
        return GC_EINVAL;
    }
    *out = buf;
    *outlen = (size_t)r - pad;
    return 0;
}

/* ---- SM2 keys ---- */

static int ossl_err(struct gc_error *err, int code, const char *what)
{
    return gc_error_set(err, code, "", "%s", what);
}

static struct gc_sm2_key *key_wrap(EVP_PKEY *p, bool priv)
{
    struct gc_sm2_key *k = gc_calloc(1, sizeof(*k));
    k->pkey = p;
    k->has_private = priv;
    return k;
}

int gc_sm2_key_generate(struct gc_sm2_key **out, struct gc_error *err)
{
    EVP_PKEY *p = EVP_PKEY_Q_keygen(NULL, NULL, "SM2");
    if (!p)
        return ossl_err(err, GC_EINTERNAL, "cannot generate an SM2 key");
    *out = key_wrap(p, true);
    return 0;
}

int gc_sm2_key_from_pem(const char *pem, size_t len, struct gc_sm2_key **out,
                        struct gc_error *err)
{
    *out = NULL;
    if (len > INT32_MAX)
        return gc_error_set(err, GC_EINVAL, "", "PEM text too long");
    bool priv = strstr(pem, "PRIVATE KEY-----") != NULL;
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio)
        return ossl_err(err, GC_EINTERNAL, "out of memory");
    EVP_PKEY *p = priv ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)
                       : PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (!p)
        return gc_error_set(err, GC_EINVAL, "", "not a PEM %s key", priv ? "private" : "public");
    if (!EVP_PKEY_is_a(p, "SM2")) {
        EVP_PKEY_free(p);
        return gc_error_set(err, GC_EINVAL, "", "the PEM key is not an SM2 key");
    }
    *out = key_wrap(p, priv);
    return 0;
}

bool gc_sm2_key_has_private(const struct gc_sm2_key *k)
{
    return k && k->has_private;
}

static int bio_text(BIO *bio, char **out)
{
    char *data;
    long n = BIO_get_mem_data(bio, &data);
    if (n < 0)
        return GC_EINTERNAL;
    *out = gc_malloc((size_t)n + 1);
    memcpy(*out, data, (size_t)n);
    (*out)[n] = '\0';
    return 0;
}

int gc_sm2_key_public_pem(const struct gc_sm2_key *k, char **pem, struct gc_error *err)
{
    BIO *bio = BIO_new(BIO_s_mem());
    int rc = 0;
    if (!bio || !PEM_write_bio_PUBKEY(bio, k->pkey) || bio_text(bio, pem))
        rc = ossl_err(err, GC_EINTERNAL, "cannot write the public key");
    BIO_free(bio);
    return rc;
}

int gc_sm2_key_private_pem(const struct gc_sm2_key *k, char **pem, struct gc_error *err)
{
    if (!k->has_private)
        return gc_error_set(err, GC_EINVAL, "", "the key has no private part");
    BIO *bio = BIO_new(BIO_s_mem());
    int rc = 0;
    if (!bio || !PEM_write_bio_PrivateKey(bio, k->pkey, NULL, NULL, 0, NULL, NULL) ||
        bio_text(bio, pem))
        rc = ossl_err(err, GC_EINTERNAL, "cannot write the private key");
    BIO_free(bio);
    return rc;
}

int gc_sm2_key_fingerprint(const struct gc_sm2_key *k, char out[65], struct gc_error *err)
{
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(k->pkey, &der);
    if (n <= 0)
        return ossl_err(err, GC_EINTERNAL, "cannot encode the public key");
    gc_sm3_hex(der, (size_t)n, out);
    OPENSSL_free(der);
    return 0;
}

void gc_sm2_key_free(struct gc_sm2_key *k)
{
    if (!k)
        return;
    EVP_PKEY_free(k->pkey);
    free(k);
}

int gc_sm2_key_load_or_create(const char *path, struct gc_sm2_key **out, struct gc_error *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (f) {
        char buf[8192];
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        bool bad = ferror(f) || !feof(f);
        fclose(f);
        if (bad)
            return gc_error_set(err, GC_EINVAL, "", "cannot read the SM2 key %s", path);
        buf[n] = '\0';
        int rc = gc_sm2_key_from_pem(buf, n, out, err);
        OPENSSL_cleanse(buf, sizeof(buf));
        if (rc == 0 && !(*out)->has_private) {
            gc_sm2_key_free(*out);
            *out = NULL;
            return gc_error_set(err, GC_EINVAL, "", "%s holds no private key", path);
        }
        if (rc && err) {
            char why[sizeof(err->msg)];
            snprintf(why, sizeof(why), "%s", err->msg);
            gc_error_set(err, rc, "", "%s: %s", path, why);
        }
        return rc;
    }
    if (errno != ENOENT)
        return gc_error_set(err, GC_EINVAL, "", "cannot open %s: %s", path, strerror(errno));
    struct gc_sm2_key *k = NULL;
    char *pem = NULL, tmp[4096];
    int rc = gc_sm2_key_generate(&k, err);
    if (!rc)
        rc = gc_sm2_key_private_pem(k, &pem, err);
    if (rc)
        goto cleanup;
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = gc_error_set(err, GC_EINVAL, "", "cannot create %s: %s", tmp, strerror(errno));
        goto cleanup;
    }
    size_t len = strlen(pem);
    bool ok = write(fd, pem, len) == (ssize_t)len && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    /* link(2) fails when another process created the key meanwhile: keep theirs */
    if (!ok || (link(tmp, path) != 0 && errno != EEXIST)) {
        rc = gc_error_set(err, GC_EINVAL, "", "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        goto cleanup;
    }
    unlink(tmp);
    gc_sm2_key_free(k);
    k = NULL;
    OPENSSL_cleanse(pem, len);
    free(pem);
    return gc_sm2_key_load_or_create(path, out, err);
cleanup:
    if (pem) {
        OPENSSL_cleanse(pem, strlen(pem));
        free(pem);
    }
    gc_sm2_key_free(k);
    return rc;
}

/* ---- SM2 signatures ---- */

int gc_sm2_sign(const struct gc_sm2_key *k, const void *msg, size_t n, char **sig_b64,
                struct gc_error *err)
{
    *sig_b64 = NULL;
    if (!k || !k->has_private)
        return gc_error_set(err, GC_EINVAL, "", "signing needs an SM2 private key");
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    unsigned char sig[160];
    size_t siglen = sizeof(sig);
    int rc = 0;
    if (!md || EVP_DigestSignInit_ex(md, &pctx, "SM3", NULL, NULL, k->pkey, NULL) != 1 ||
        EVP_PKEY_CTX_set1_id(pctx, GC_SM2_DEFAULT_ID, strlen(GC_SM2_DEFAULT_ID)) != 1 ||
        EVP_DigestSign(md, sig, &siglen, msg, n) != 1)
        rc = ossl_err(err, GC_EINTERNAL, "SM2 signing failed");
    else
        *sig_b64 = gc_base64_encode(sig, siglen);
    EVP_MD_CTX_free(md); /* frees pctx, which belongs to it */
    return rc;
}

int gc_sm2_verify(const struct gc_sm2_key *k, const void *msg, size_t n, const char *sig_b64,
                  struct gc_error *err)
{
    unsigned char *sig = NULL;
    size_t siglen = 0;
    if (gc_base64_decode(sig_b64, &sig, &siglen) != 0 || siglen == 0 || siglen > 160) {
        free(sig);
        return gc_error_set(err, GC_EINVAL, "/signature/value",
                            "the signature is not the base64 of a DER SM2 signature");
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int rc = 0;
    if (!md || EVP_DigestVerifyInit_ex(md, &pctx, "SM3", NULL, NULL, k->pkey, NULL) != 1 ||
        EVP_PKEY_CTX_set1_id(pctx, GC_SM2_DEFAULT_ID, strlen(GC_SM2_DEFAULT_ID)) != 1)
        rc = ossl_err(err, GC_EINTERNAL, "SM2 verification could not start");
    else if (EVP_DigestVerify(md, sig, siglen, msg, n) != 1)
        rc = gc_error_set(err, GC_EAUTH, "/signature/value",
                          "the SM2 signature does not verify with the cloud's public key");
    EVP_MD_CTX_free(md);
    free(sig);
    return rc;
}

/* ---- SM4-CTR + HMAC-SM3 ---- */

static const char INFO_ENC[] = "govcloud-supervision-1.0 sm4-ctr";
static const char INFO_MAC[] = "govcloud-supervision-1.0 hmac-sm3";

/* HKDF (RFC 5869) with SM3, empty salt. */
static int hkdf_sm3(const unsigned char *ikm, size_t ikmlen, const char *info,
                    unsigned char *out, size_t outlen)
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *kc = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    OSSL_PARAM params[4];
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SM3", 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikmlen);
    params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info,
                                                  strlen(info));
    params[3] = OSSL_PARAM_construct_end();
    int ok = kc && EVP_KDF_derive(kc, out, outlen, params) == 1;
    EVP_KDF_CTX_free(kc);
    EVP_KDF_free(kdf);
    return ok ? 0 : GC_EINTERNAL;
}

static int hmac_sm3(const unsigned char key[32], const void *a, size_t alen, const void *b,
                    size_t blen, const void *c, size_t clen, unsigned char out[32])
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *mc = mac ? EVP_MAC_CTX_new(mac) : NULL;
    OSSL_PARAM params[2];
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SM3", 0);
    params[1] = OSSL_PARAM_construct_end();
    size_t outlen = 0;
    int ok = mc && EVP_MAC_init(mc, key, 32, params) == 1 && EVP_MAC_update(mc, a, alen) == 1 &&
             EVP_MAC_update(mc, b, blen) == 1 && EVP_MAC_update(mc, c, clen) == 1 &&
             EVP_MAC_final(mc, out, &outlen, 32) == 1 && outlen == 32;
    EVP_MAC_CTX_free(mc);
    EVP_MAC_free(mac);
    return ok ? 0 : GC_EINTERNAL;
}

static int sm4_ctr(const unsigned char key[16], const unsigned char iv[16], const void *in,
                   size_t n, unsigned char *out)
{
    EVP_CIPHER *ciph = EVP_CIPHER_fetch(NULL, "SM4-CTR", NULL);
    EVP_CIPHER_CTX *cc = ciph ? EVP_CIPHER_CTX_new() : NULL;
    int ok = cc && EVP_EncryptInit_ex2(cc, ciph, key, iv, NULL) == 1;
    size_t done = 0;
    while (ok && done < n) {
        int piece = n - done > (1u << 30) ? 1 << 30 : (int)(n - done), outl = 0;
        ok = EVP_EncryptUpdate(cc, out + done, &outl, (const unsigned char *)in + done,
                               piece) == 1 &&
             outl == piece;
        done += (size_t)piece;
    }
    EVP_CIPHER_CTX_free(cc);
    EVP_CIPHER_free(ciph);
    return ok ? 0 : GC_EINTERNAL;
}

static int derive(const unsigned char secret[GC_SUP_SECRET_LEN], unsigned char kenc[16],
                  unsigned char kmac[32])
{
    if (hkdf_sm3(secret, GC_SUP_SECRET_LEN, INFO_ENC, kenc, 16) ||
        hkdf_sm3(secret, GC_SUP_SECRET_LEN, INFO_MAC, kmac, 32))
        return GC_EINTERNAL;
    return 0;
}

int gc_sm4_seal(const unsigned char secret[GC_SUP_SECRET_LEN], const void *aad, size_t aadlen,
                const void *pt, size_t n, char **iv_b64, char **ct_b64, char **mac_b64,
                struct gc_error *err)
{
    unsigned char kenc[16], kmac[32], iv[16], tag[32];
    unsigned char *ct = gc_malloc(n ? n : 1);
    int rc = 0;
    *iv_b64 = *ct_b64 = *mac_b64 = NULL;
    gc_random_bytes(iv, sizeof(iv));
    if (derive(secret, kenc, kmac) || sm4_ctr(kenc, iv, pt, n, ct) ||
        hmac_sm3(kmac, aad, aadlen, iv, 16, ct, n, tag)) {
        rc = ossl_err(err, GC_EINTERNAL, "SM4 encryption failed");
    } else {
        *iv_b64 = gc_base64_encode(iv, 16);
        *ct_b64 = gc_base64_encode(ct, n);
        *mac_b64 = gc_base64_encode(tag, 32);
    }
    OPENSSL_cleanse(kenc, sizeof(kenc));
    OPENSSL_cleanse(kmac, sizeof(kmac));
    free(ct);
    return rc;
}

int gc_sm4_open(const unsigned char secret[GC_SUP_SECRET_LEN], const void *aad, size_t aadlen,
                const char *iv_b64, const char *ct_b64, const char *mac_b64, char **pt,
                size_t *ptlen, struct gc_error *err)
{
    unsigned char kenc[16], kmac[32], tag[32];
    unsigned char *iv = NULL, *ct = NULL, *mac = NULL;
    size_t ivlen = 0, ctlen = 0, maclen = 0;
    int rc = 0;
    *pt = NULL;
    if (gc_base64_decode(iv_b64, &iv, &ivlen) || ivlen != 16) {
        rc = gc_error_set(err, GC_EINVAL, "/encryption/iv", "iv is not 16 bytes in base64");
        goto cleanup;
    }
    if (gc_base64_decode(mac_b64, &mac, &maclen) || maclen != 32) {
        rc = gc_error_set(err, GC_EINVAL, "/encryption/mac", "mac is not 32 bytes in base64");
        goto cleanup;
    }
    if (gc_base64_decode(ct_b64, &ct, &ctlen)) {
        rc = gc_error_set(err, GC_EINVAL, "/encryption/ciphertext",
                          "ciphertext is not base64");
        goto cleanup;
    }
    if (derive(secret, kenc, kmac) || hmac_sm3(kmac, aad, aadlen, iv, 16, ct, ctlen, tag)) {
        rc = ossl_err(err, GC_EINTERNAL, "SM4 decryption failed");
        goto cleanup;
    }
    if (CRYPTO_memcmp(tag, mac, 32) != 0) {
        rc = gc_error_set(err, GC_EAUTH, "/encryption/mac",
                          "the MAC does not match: wrong secret or altered ciphertext");
        goto cleanup;
    }
    *pt = gc_malloc(ctlen + 1);
    if (sm4_ctr(kenc, iv, ct, ctlen, (unsigned char *)*pt)) {
        free(*pt);
        *pt = NULL;
        rc = ossl_err(err, GC_EINTERNAL, "SM4 decryption failed");
        goto cleanup;
    }
    (*pt)[ctlen] = '\0';
    *ptlen = ctlen;
cleanup:
    OPENSSL_cleanse(kenc, sizeof(kenc));
    OPENSSL_cleanse(kmac, sizeof(kmac));
    free(iv);
    free(ct);
    free(mac);
    return rc;
}

/* The associated data the MAC covers besides iv and ciphertext. */
static void batch_aad(char *out, size_t cap, const char *cloud_id, const char *dataset,
                      int64_t seq)
{
    snprintf(out, cap, "govcloud-supervision-1.0\n%s\n%s\n%s\n%lld\n", cloud_id, dataset,
             GC_SUPERVISION_SCHEMA_VERSION, (long long)seq);
}

/* ---- records ---- */

json_t *gc_sup_record_new(const char *dataset, const char *id, int64_t seq, int64_t time_ms,
                          json_t *data)
{
    char when[32];
    gc_time_format_rfc3339(time_ms, when, sizeof(when));
    json_t *r = json_pack("{s:s,s:s,s:s,s:I,s:s,s:s}", "id", id, "dataset", dataset,
                          "schema_version", GC_SUPERVISION_SCHEMA_VERSION, "seq",
                          (json_int_t)seq, "time", when, "op", data ? "upsert" : "delete");
    if (data)
        json_object_set_new(r, "data", data);
    return r;
}

/* ---- batches ---- */

int gc_sup_batch_build(const struct gc_sup_batch_opts *o, const json_t *records, char **out,
                   size_t *outlen, struct gc_error *err)
{
    *out = NULL;
    if (!json_is_array(records) || json_array_size(records) > GC_BATCH_MAX_RECORDS)
        return gc_error_set(err, GC_EINVAL, "records", "records must be an array of at most %d",
                            GC_BATCH_MAX_RECORDS);
    if (!o->cloud_id || !gc_id_valid(o->cloud_id))
        return gc_error_set(err, GC_EINVAL, "cloud_id", "cloud id must be a lowercase uuid");
    if (!o->dataset || !gc_supervision_dataset_valid(o->dataset))
        return gc_error_set(err, GC_EINVAL, "dataset", "unknown dataset '%s'",
                            o->dataset ? o->dataset : "");
    if (o->batch_seq < 1)
        return gc_error_set(err, GC_EINVAL, "batch_seq", "batch_seq must be at least 1");
    char when[32];
    gc_time_format_rfc3339(o->time_ms ? o->time_ms : gc_now_ms(), when, sizeof(when));
    json_t *ids = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(records, i, r) {
        const char *id = json_string_value(json_object_get(r, "id"));
        if (!id) {
            json_decref(ids);
            return gc_error_set(err, GC_EINVAL, "records", "record %zu has no string id", i);
        }
        json_array_append_new(ids, json_string(id));
    }
    json_t *b = json_pack("{s:s,s:s,s:s,s:I,s:s,s:o}", "cloud_id", o->cloud_id, "dataset",
                          o->dataset, "schema_version", GC_SUPERVISION_SCHEMA_VERSION,
                          "batch_seq", (json_int_t)o->batch_seq, "time", when, "record_ids",
                          ids);
    struct gc_buf body;
    gc_buf_init(&body, GC_BUF_UNLIMITED);
    char *sig = NULL;
    int rc = 0;
    if (o->secret) {
        char aad[160], *iv, *ct, *mac;
        rc = gc_canonical_json(records, NULL, &body);
        if (rc) {
            rc = gc_error_set(err, GC_EINVAL, "records", "records cannot be serialised");
            goto cleanup;
        }
        batch_aad(aad, sizeof(aad), o->cloud_id, o->dataset, o->batch_seq);
        rc = gc_sm4_seal(o->secret, aad, strlen(aad), body.data, body.len, &iv, &ct, &mac, err);
        if (rc)
            goto cleanup;
        json_t *enc = json_pack("{s:s,s:s,s:s,s:s}", "alg", GC_ENCRYPTION_ALG, "iv", iv,
                                "ciphertext", ct, "mac", mac);
        free(iv);
        free(ct);
        free(mac);
        if (o->key_id)
            json_object_set_new(enc, "key_id", json_string(o->key_id));
        json_object_set_new(b, "encryption", enc);
        gc_buf_reset(&body);
    } else {
        json_object_set(b, "records", (json_t *)records);
    }
    if (gc_canonical_json(b, NULL, &body) != 0) {
        rc = gc_error_set(err, GC_EINVAL, "records", "records cannot be serialised");
        goto cleanup;
    }
    rc = gc_sm2_sign(o->key, body.data, body.len, &sig, err);
    if (rc)
        goto cleanup;
    json_object_set_new(b, "signature",
                        json_pack("{s:s,s:s}", "alg", GC_SIGNATURE_ALG, "value", sig));
    gc_buf_reset(&body);
    if (gc_canonical_json(b, NULL, &body) != 0) {
        rc = gc_error_set(err, GC_EINTERNAL, "", "batch cannot be serialised");
        goto cleanup;
    }
    *outlen = body.len;
    *out = gc_buf_steal(&body);
cleanup:
    free(sig);
    gc_buf_release(&body);
    json_decref(b);
    return rc;
}

void gc_sup_batch_release(struct gc_sup_batch *b)
{
    if (!b)
        return;
    json_decref(b->records);
    json_decref(b->doc);
    b->records = b->doc = NULL;
}

static int schema_fail(struct gc_error *err, const struct gc_schema_error *se)
{
    return gc_error_set(err, GC_EINVAL, se->pointer, "%s", se->message);
}

int gc_sup_batch_open(const char *text, size_t len, const struct gc_sup_batch_expect *x,
                  struct gc_sup_batch *out, struct gc_error *err)
{
    memset(out, 0, sizeof(*out));
    json_error_t jerr;
    struct gc_schema_error se;
    struct gc_buf body;
    gc_buf_init(&body, GC_BUF_UNLIMITED);
    char *pt = NULL;
    int rc = 0;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        rc = gc_error_set(err, GC_EINVAL, "", "batch is not JSON: line %d column %d: %s",
                          jerr.line, jerr.column, jerr.text);
        goto cleanup;
    }
    out->doc = doc;
    if (gc_schema_validate("batch", doc, &se) != 0) {
        rc = schema_fail(err, &se);
        goto cleanup;
    }
    json_t *recs = json_object_get(doc, "records");
    json_t *enc = json_object_get(doc, "encryption");
    if (!recs == !enc) {
        rc = gc_error_set(err, GC_EINVAL, recs ? "/encryption" : "/records",
                          "a batch has exactly one of records and encryption");
        goto cleanup;
    }
    snprintf(out->cloud_id, sizeof(out->cloud_id), "%s",
             json_string_value(json_object_get(doc, "cloud_id")));
    snprintf(out->dataset, sizeof(out->dataset), "%s",
             json_string_value(json_object_get(doc, "dataset")));
    snprintf(out->time, sizeof(out->time), "%s",
             json_string_value(json_object_get(doc, "time")));
    out->batch_seq = json_integer_value(json_object_get(doc, "batch_seq"));
    out->encrypted = enc != NULL;
    if (x->cloud_id && strcmp(x->cloud_id, out->cloud_id) != 0) {
        rc = gc_error_set(err, GC_EINVAL, "/cloud_id", "batch is from cloud %s, not %s",
                          out->cloud_id, x->cloud_id);
        goto cleanup;
    }
    if (x->dataset && strcmp(x->dataset, out->dataset) != 0) {
        rc = gc_error_set(err, GC_EINVAL, "/dataset", "batch is of dataset %s, not %s",
                          out->dataset, x->dataset);
        goto cleanup;
    }
    if (x->require_encryption && !enc) {
        rc = gc_error_set(err, GC_EINVAL, "/records",
                          "this receiver accepts only encrypted batches from this cloud");
        goto cleanup;
    }
    const struct gc_sm2_key *key = x->key;
    const unsigned char *secret = x->secret;
    if (x->lookup && (rc = x->lookup(x->lookup_arg, out->cloud_id, &key, &secret, err)) != 0)
        goto cleanup;
    if (!key) {
        rc = gc_error_set(err, GC_ENOTFOUND, "/cloud_id", "no public key for cloud %s",
                          out->cloud_id);
        goto cleanup;
    }
    const char *sig = json_string_value(json_object_get(json_object_get(doc, "signature"),
                                                        "value"));
    /* Fast path: a sender that sent the canonical form (govcloud does) signed exactly the
     * text without its signature member. In canonical text that member is followed only by
     * the last member, "time", and the end of the top-level object, which places it at the
     * top level; it must occur once. The rest is then what was signed, byte for byte. */
    bool verified = false;
    char needle[320], tail[64];
    int nlen = snprintf(needle, sizeof(needle), ",\"signature\":{\"alg\":\"%s\",\"value\":\"%s\"}",
                        GC_SIGNATURE_ALG, sig);
    int tlen = snprintf(tail, sizeof(tail), ",\"time\":\"%s\"}", out->time);
    const char *at = nlen > 0 && (size_t)nlen < sizeof(needle)
                         ? memmem(text, len, needle, (size_t)nlen)
                         : NULL;
    if (at && tlen > 0 && (size_t)tlen < sizeof(tail) &&
        len - (size_t)(at - text) == (size_t)nlen + (size_t)tlen &&
        memcmp(at + nlen, tail, (size_t)tlen) == 0 &&
        !memmem(at + 1, len - (size_t)(at + 1 - text), needle, (size_t)nlen)) {
        if (gc_buf_add(&body, text, (size_t)(at - text)) == 0 &&
            gc_buf_add(&body, at + nlen, len - (size_t)(at - text) - (size_t)nlen) == 0)
            verified = gc_sm2_verify(key, body.data, body.len, sig, NULL) == 0;
        gc_buf_reset(&body);
    }
    if (!verified) {
        if (gc_canonical_json(doc, "signature", &body) != 0) {
            rc = gc_error_set(err, GC_EINVAL, "", "batch cannot be put in canonical form");
            goto cleanup;
        }
        rc = gc_sm2_verify(key, body.data, body.len, sig, err);
        if (rc)
            goto cleanup;
    }
    if (enc) {
        if (!secret) {
            rc = gc_error_set(err, GC_EINVAL, "/encryption",
                              "batch is encrypted and no secret is configured for cloud %s",
                              out->cloud_id);
            goto cleanup;
        }
        char aad[160];
        size_t ptlen = 0;
        batch_aad(aad, sizeof(aad), out->cloud_id, out->dataset, out->batch_seq);
        rc = gc_sm4_open(secret, aad, strlen(aad),
                         json_string_value(json_object_get(enc, "iv")),
                         json_string_value(json_object_get(enc, "ciphertext")),
                         json_string_value(json_object_get(enc, "mac")), &pt, &ptlen, err);
        if (rc)
            goto cleanup;
        recs = json_loadb(pt, ptlen, JSON_REJECT_DUPLICATES, &jerr);
        if (!json_is_array(recs) || json_array_size(recs) > GC_BATCH_MAX_RECORDS) {
            json_decref(recs);
            rc = gc_error_set(err, GC_EINVAL, "/encryption/ciphertext",
                              "the decrypted records are not a JSON array of at most %d",
                              GC_BATCH_MAX_RECORDS);
            goto cleanup;
        }
        out->records = recs;
    } else {
        out->records = json_incref(recs);
    }
    json_t *ids = json_object_get(doc, "record_ids");
    if (json_array_size(ids) != json_array_size(out->records)) {
        rc = gc_error_set(err, GC_EINVAL, "/record_ids", "record_ids lists %zu ids for %zu records",
                          json_array_size(ids), json_array_size(out->records));
        goto cleanup;
    }
    for (size_t i = 0; i < json_array_size(ids); i++) {
        const json_t *rid = json_object_get(json_array_get(out->records, i), "id");
        if (json_is_string(rid) && !json_equal((json_t *)rid, json_array_get(ids, i))) {
            rc = gc_error_set(err, GC_EINVAL, "/record_ids",
                              "record_ids/%zu differs from the id of record %zu", i, i);
            goto cleanup;
        }
    }
cleanup:
    free(pt);
    gc_buf_release(&body);
    if (rc) {
        json_decref(out->records);
        out->records = NULL;
    }
    return rc;
}

int gc_sup_batch_check_record(const struct gc_sup_batch *b, size_t i, struct gc_schema_error *err)
{
    const json_t *r = json_array_get(b->records, i);
    if (!r) {
        if (err) {
            err->pointer[0] = '\0';
            snprintf(err->message, sizeof(err->message), "(root): no record %zu", i);
        }
        return GC_EINVAL;
    }
    int rc = gc_schema_validate_record(r, err);
    if (rc)
        return rc;
    const char *ds = json_string_value(json_object_get(r, "dataset"));
    if (strcmp(ds, b->dataset) != 0) {
        if (err) {
            snprintf(err->pointer, sizeof(err->pointer), "/dataset");
            snprintf(err->message, sizeof(err->message),
                     "dataset: '%s' in a batch of dataset %s", ds, b->dataset);
        }
        return GC_EINVAL;
    }
    return 0;
}

/* ---- the cloud's identity ---- */

static pthread_mutex_t ident_lock = PTHREAD_MUTEX_INITIALIZER;
static struct gc_sup_identity *ident;

static int ensure_dir(const char *path, struct gc_error *err)
{
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return gc_error_set(err, GC_EINVAL, "data_dir", "cannot create %s: %s", path,
                            strerror(errno));
    return 0;
}

/* The cloud id kept in dir/cloud-id, made on first use. */
static int load_cloud_id(const char *dir, char out[40], struct gc_error *err)
{
    char path[4200], tmp[4300];
    snprintf(path, sizeof(path), "%s/cloud-id", dir);
    for (int attempt = 0; attempt < 2; attempt++) {
        FILE *f = fopen(path, "r");
        if (f) {
            char buf[64] = {0};
            size_t n = fread(buf, 1, sizeof(buf) - 1, f);
            fclose(f);
            while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
                buf[--n] = '\0';
            if (!gc_id_valid(buf))
                return gc_error_set(err, GC_EINVAL, "cloud_id",
                                    "%s does not hold a lowercase uuid", path);
            memcpy(out, buf, GC_ID_LEN + 1);
            return 0;
        }
        if (errno != ENOENT)
            return gc_error_set(err, GC_EINVAL, "cloud_id", "cannot read %s: %s", path,
                                strerror(errno));
        char id[GC_ID_LEN + 2];
        gc_id_new(id);
        size_t idlen = strlen(id);
        id[idlen] = '\n';
        id[idlen + 1] = '\0';
        snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
            return gc_error_set(err, GC_EINVAL, "cloud_id", "cannot create %s: %s", tmp,
                                strerror(errno));
        bool ok = write(fd, id, strlen(id)) == (ssize_t)strlen(id) && fsync(fd) == 0;
        ok = close(fd) == 0 && ok;
        if (!ok || (link(tmp, path) != 0 && errno != EEXIST)) {
            unlink(tmp);
            return gc_error_set(err, GC_EINVAL, "cloud_id", "cannot write %s: %s", path,
                                strerror(errno));
        }
        unlink(tmp);
    }
    return gc_error_set(err, GC_EINVAL, "cloud_id", "cannot create %s", path);
}

int gc_sup_identity_get(const char *data_dir, const char *cloud_id_opt,
                        const struct gc_sup_identity **out, struct gc_error *err)
{
    pthread_mutex_lock(&ident_lock);
    int rc = 0;
    struct gc_sup_identity *id = NULL;
    if (ident)
        goto done;
    char dir[4096], path[4200];
    snprintf(dir, sizeof(dir), "%s/supervision", data_dir);
    if ((rc = ensure_dir(dir, err)) != 0)
        goto done;
    id = gc_calloc(1, sizeof(*id));
    if (cloud_id_opt && strcmp(cloud_id_opt, "auto") != 0) {
        if (!gc_id_valid(cloud_id_opt)) {
            rc = gc_error_set(err, GC_EINVAL, "cloud_id",
                              "[supervision] cloud_id must be auto or a lowercase uuid");
            goto done;
        }
        snprintf(id->cloud_id, sizeof(id->cloud_id), "%s", cloud_id_opt);
    } else if ((rc = load_cloud_id(dir, id->cloud_id, err)) != 0) {
        goto done;
    }
    snprintf(path, sizeof(path), "%s/sm2-key.pem", dir);
    if ((rc = gc_sm2_key_load_or_create(path, &id->key, err)) != 0 ||
        (rc = gc_sm2_key_public_pem(id->key, &id->public_pem, err)) != 0 ||
        (rc = gc_sm2_key_fingerprint(id->key, id->fingerprint, err)) != 0)
        goto done;
    ident = id;
    id = NULL;
done:
    if (id) {
        gc_sm2_key_free(id->key);
        free(id->public_pem);
        free(id);
    }
    if (!rc)
        *out = ident;
    pthread_mutex_unlock(&ident_lock);
    return rc;
}
