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

/* Public keys read from PEM, by their text: OpenSSL 3's decoders take about half a
 * millisecond per key, and a supervisor reads the same few keys for every batch. Entries
 * are shared by reference (EVP_PKEY_up_ref); the least recently used one is dropped. */
#define PUBKEY_CACHE 16
static struct {
    char *pem;
    size_t len;
    EVP_PKEY *pkey;
    uint64_t used;
} pubkeys[PUBKEY_CACHE];
static uint64_t pubkey_clock;
static pthread_mutex_t pubkey_lock = PTHREAD_MUTEX_INITIALIZER;

static EVP_PKEY *pubkey_cached(const char *pem, size_t len)
{
    EVP_PKEY *p = NULL;
    pthread_mutex_lock(&pubkey_lock);
    for (int i = 0; i < PUBKEY_CACHE && !p; i++) {
        if (pubkeys[i].pkey && pubkeys[i].len == len && memcmp(pubkeys[i].pem, pem, len) == 0 &&
            EVP_PKEY_up_ref(pubkeys[i].pkey)) {
            p = pubkeys[i].pkey;
            pubkeys[i].used = ++pubkey_clock;
        }
    }
    pthread_mutex_unlock(&pubkey_lock);
    return p;
}

static void pubkey_remember(const char *pem, size_t len, EVP_PKEY *p)
{
    if (!EVP_PKEY_up_ref(p))
        return;
    pthread_mutex_lock(&pubkey_lock);
    int victim = 0;
    for (int i = 1; i < PUBKEY_CACHE; i++)
        if (pubkeys[i].used < pubkeys[victim].used)
            victim = i;
    EVP_PKEY_free(pubkeys[victim].pkey);
    free(pubkeys[victim].pem);
    pubkeys[victim].pem = gc_strndup(pem, len);
    pubkeys[victim].len = len;
    pubkeys[victim].pkey = p;
    pubkeys[victim].used = ++pubkey_clock;
    pthread_mutex_unlock(&pubkey_lock);
}

int gc_sm2_key_from_pem(const char *pem, size_t len, struct gc_sm2_key **out,
                        struct gc_error *err)
{
    *out = NULL;
    if (len > INT32_MAX)
        return gc_error_set(err, GC_EINVAL, "", "PEM text too long");
    bool priv = strstr(pem, "PRIVATE KEY-----") != NULL;
    EVP_PKEY *cached = priv ? NULL : pubkey_cached(pem, len);
    if (cached) {
        *out = key_wrap(cached, false);
        return 0;
    }
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
    if (!priv)
        pubkey_remember(pem, len, p);
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

/* Verifies sig_b64 over the concatenation of n pieces (SM3 is fed piece by piece). */
static int sm2_verify_pieces(const struct gc_sm2_key *k, const void *const *msg,
                             const size_t *len, size_t n, const char *sig_b64,
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
        EVP_PKEY_CTX_set1_id(pctx, GC_SM2_DEFAULT_ID, strlen(GC_SM2_DEFAULT_ID)) != 1) {
        rc = ossl_err(err, GC_EINTERNAL, "SM2 verification could not start");
    } else {
        bool ok = true;
        for (size_t i = 0; i < n && ok; i++)
            ok = EVP_DigestVerifyUpdate(md, msg[i], len[i]) == 1;
        if (!ok || EVP_DigestVerifyFinal(md, sig, siglen) != 1)
            rc = gc_error_set(err, GC_EAUTH, "/signature/value",
                              "the SM2 signature does not verify with the cloud's public key");
    }
    EVP_MD_CTX_free(md);
    free(sig);
    return rc;
}

int gc_sm2_verify(const struct gc_sm2_key *k, const void *msg, size_t n, const char *sig_b64,
                  struct gc_error *err)
{
    return sm2_verify_pieces(k, &msg, &n, 1, sig_b64, err);
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
    gc_cj_release(&b->doc);
    gc_cj_release(&b->plain);
    free(b->rec);
    free(b->pt);
    b->rec = NULL;
    b->pt = NULL;
    b->rd = NULL;
    b->nrecords = 0;
}

static int schema_fail(struct gc_error *err, const struct gc_schema_error *se)
{
    return gc_error_set(err, GC_EINVAL, se->pointer, "%s", se->message);
}

/* The canonical body is the batch's canonical text without its top-level signature member
 * (and the comma that joined it): text[0, *a) followed by text[*b, len). */
static void signed_cut(const struct gc_cjdoc *d, size_t *a, size_t *b)
{
    uint32_t k = 1;
    *a = *b = 0;
    for (uint32_t m = 0; m < d->v[0].count; m++, k = d->v[k + 1].next) {
        if (!gc_cj_str_eq(d, k, "signature"))
            continue;
        *a = d->v[k].start;
        *b = d->v[k + 1].end;
        if (m > 0)
            (*a)--; /* the comma before it */
        else if (d->v[0].count > 1)
            (*b)++; /* the comma after it */
        return;
    }
}

/* A copy of member key's string value of object obj (NUL-terminated; caller frees). */
static char *member_dup(const struct gc_cjdoc *d, uint32_t obj, const char *key)
{
    size_t n = 0;
    uint32_t i = gc_cj_get(d, obj, key);
    const char *s = i != GC_CJ_NONE && d->v[i].type == GC_CJ_STRING ? gc_cj_str(d, i, &n) : "";
    return gc_strndup(s, n);
}

static int open_encrypted(struct gc_sup_batch *out, uint32_t enc, const unsigned char *secret,
                          struct gc_error *err)
{
    if (!secret)
        return gc_error_set(err, GC_EINVAL, "/encryption",
                            "batch is encrypted and no secret is configured for cloud %s",
                            out->cloud_id);
    char aad[160];
    size_t ptlen = 0;
    batch_aad(aad, sizeof(aad), out->cloud_id, out->dataset, out->batch_seq);
    char *iv = member_dup(&out->doc, enc, "iv"), *ct = member_dup(&out->doc, enc, "ciphertext"),
         *mac = member_dup(&out->doc, enc, "mac");
    int rc = gc_sm4_open(secret, aad, strlen(aad), iv, ct, mac, &out->pt, &ptlen, err);
    free(iv);
    free(ct);
    free(mac);
    if (rc)
        return rc;
    struct gc_error lerr = {0};
    if (gc_cj_load(&out->plain, out->pt, ptlen, &lerr) != 0 ||
        out->plain.v[0].type != GC_CJ_ARRAY || out->plain.v[0].count > GC_BATCH_MAX_RECORDS)
        return gc_error_set(err, GC_EINVAL, "/encryption/ciphertext",
                            "the decrypted records are not a JSON array of at most %d",
                            GC_BATCH_MAX_RECORDS);
    out->rd = &out->plain;
    return 0;
}

int gc_sup_batch_open(const char *text, size_t len, const struct gc_sup_batch_expect *x,
                  struct gc_sup_batch *out, struct gc_error *err)
{
    memset(out, 0, sizeof(*out));
    struct gc_schema_error se;
    struct gc_error lerr = {0};
    char *sig = NULL;
    int rc = gc_cj_load(&out->doc, text, len, &lerr);
    if (rc) {
        rc = gc_error_set(err, rc, "", "batch %s", lerr.msg);
        goto cleanup;
    }
    const struct gc_cjdoc *d = &out->doc;
    if (gc_schema_validate_cj("batch", d, 0, &se) != 0) {
        rc = schema_fail(err, &se);
        goto cleanup;
    }
    uint32_t recs = gc_cj_get(d, 0, "records"), enc = gc_cj_get(d, 0, "encryption");
    if ((recs == GC_CJ_NONE) == (enc == GC_CJ_NONE)) {
        rc = gc_error_set(err, GC_EINVAL, recs != GC_CJ_NONE ? "/encryption" : "/records",
                          "a batch has exactly one of records and encryption");
        goto cleanup;
    }
    gc_cj_strcpy(d, gc_cj_get(d, 0, "cloud_id"), out->cloud_id, sizeof(out->cloud_id));
    gc_cj_strcpy(d, gc_cj_get(d, 0, "dataset"), out->dataset, sizeof(out->dataset));
    gc_cj_strcpy(d, gc_cj_get(d, 0, "time"), out->time, sizeof(out->time));
    out->batch_seq = d->v[gc_cj_get(d, 0, "batch_seq")].v.i;
    out->encrypted = enc != GC_CJ_NONE;
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
    if (x->require_encryption && !out->encrypted) {
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
    sig = member_dup(d, gc_cj_get(d, 0, "signature"), "value");
    size_t cut_a, cut_b;
    signed_cut(d, &cut_a, &cut_b);
    const void *pieces[2] = {d->text, d->text + cut_b};
    size_t lens[2] = {cut_a, d->len - cut_b};
    rc = sm2_verify_pieces(key, pieces, lens, 2, sig, err);
    if (rc)
        goto cleanup;
    if (out->encrypted) {
        rc = open_encrypted(out, enc, secret, err);
        if (rc)
            goto cleanup;
        recs = 0;
    } else {
        out->rd = d;
    }
    const struct gc_cjdoc *rd = out->rd;
    out->nrecords = rd->v[recs].count;
    out->rec = gc_calloc(out->nrecords ? out->nrecords : 1, sizeof(*out->rec));
    uint32_t r = recs + 1;
    for (size_t i = 0; i < out->nrecords; i++, r = rd->v[r].next)
        out->rec[i] = r;
    uint32_t ids = gc_cj_get(d, 0, "record_ids");
    out->ids_text = d->text + d->v[ids].start;
    out->ids_len = d->v[ids].end - d->v[ids].start;
    if (d->v[ids].count != out->nrecords) {
        rc = gc_error_set(err, GC_EINVAL, "/record_ids", "record_ids lists %u ids for %zu records",
                          d->v[ids].count, out->nrecords);
        goto cleanup;
    }
    uint32_t id = ids + 1;
    for (size_t i = 0; i < out->nrecords; i++, id = d->v[id].next) {
        uint32_t rid = gc_cj_get(rd, out->rec[i], "id");
        if (rid == GC_CJ_NONE || rd->v[rid].type != GC_CJ_STRING)
            continue;
        size_t a = rd->v[rid].end - rd->v[rid].start, b = d->v[id].end - d->v[id].start;
        if (a != b || memcmp(rd->text + rd->v[rid].start, d->text + d->v[id].start, a) != 0) {
            rc = gc_error_set(err, GC_EINVAL, "/record_ids",
                              "record_ids/%zu differs from the id of record %zu", i, i);
            goto cleanup;
        }
    }
cleanup:
    free(sig);
    if (rc) {
        free(out->rec);
        out->rec = NULL;
        out->nrecords = 0;
    }
    return rc;
}

int gc_sup_batch_check_record(const struct gc_sup_batch *b, size_t i, struct gc_schema_error *err)
{
    if (i >= b->nrecords) {
        if (err) {
            err->pointer[0] = '\0';
            snprintf(err->message, sizeof(err->message), "(root): no record %zu", i);
        }
        return GC_EINVAL;
    }
    const struct gc_cjdoc *rd = b->rd;
    int rc = gc_schema_validate_record_cj(rd, b->rec[i], err);
    if (rc)
        return rc;
    uint32_t ds = gc_cj_get(rd, b->rec[i], "dataset");
    if (!gc_cj_str_eq(rd, ds, b->dataset)) {
        if (err) {
            char got[16];
            snprintf(err->pointer, sizeof(err->pointer), "/dataset");
            snprintf(err->message, sizeof(err->message), "dataset: '%s' in a batch of dataset %s",
                     gc_cj_strcpy(rd, ds, got, sizeof(got)), b->dataset);
        }
        return GC_EINVAL;
    }
    return 0;
}

void gc_sup_batch_record(const struct gc_sup_batch *b, size_t i, struct gc_sup_rec *out)
{
    const struct gc_cjdoc *rd = b->rd;
    uint32_t r = b->rec[i];
    memset(out, 0, sizeof(*out));
    out->id = gc_cj_str(rd, gc_cj_get(rd, r, "id"), &out->id_len);
    out->seq = rd->v[gc_cj_get(rd, r, "seq")].v.i;
    char t[32];
    (void)gc_time_parse_rfc3339(gc_cj_strcpy(rd, gc_cj_get(rd, r, "time"), t, sizeof(t)),
                                &out->time_ms);
    out->del = gc_cj_str_eq(rd, gc_cj_get(rd, r, "op"), "delete");
    uint32_t data = gc_cj_get(rd, r, "data");
    if (!out->del && data != GC_CJ_NONE && rd->v[data].type == GC_CJ_OBJECT) {
        out->data = rd->text + rd->v[data].start;
        out->data_len = rd->v[data].end - rd->v[data].start;
    }
}

char *gc_sup_batch_record_id(const struct gc_sup_batch *b, size_t i, char *out, size_t cap)
{
    uint32_t id = i < b->nrecords ? gc_cj_get(b->rd, b->rec[i], "id") : GC_CJ_NONE;
    return gc_cj_strcpy(b->rd, id, out, cap);
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
