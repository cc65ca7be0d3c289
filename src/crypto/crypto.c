/* SM3, scrypt and secret generation through OpenSSL 3's EVP interfaces. */
#include "crypto/crypto.h"

#include "util/id.h"
#include "util/mem.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gc_sm3_ctx {
    EVP_MD_CTX *md;
};

/* Fetched once: EVP_sm3() makes OpenSSL 3 look the algorithm up on every digest. */
static EVP_MD *sm3_fetched;
static pthread_once_t sm3_once = PTHREAD_ONCE_INIT;

static void sm3_fetch(void)
{
    sm3_fetched = EVP_MD_fetch(NULL, "SM3", NULL);
}

static const EVP_MD *sm3_md(void)
{
    pthread_once(&sm3_once, sm3_fetch);
    if (!sm3_fetched)
        GC_BUG("OpenSSL has no SM3");
    return sm3_fetched;
}

void gc_sm3(const void *data, size_t len, unsigned char out[GC_SM3_LEN])
{
    unsigned int n = 0;
    if (EVP_Digest(data, len, out, &n, sm3_md(), NULL) != 1 || n != GC_SM3_LEN)
        GC_BUG("SM3 digest failed");
}

void gc_hex(const unsigned char *in, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[in[i] >> 4];
        out[2 * i + 1] = d[in[i] & 15];
    }
    out[2 * n] = '\0';
}

void gc_sm3_hex(const void *data, size_t len, char out[GC_SM3_HEX_LEN + 1])
{
    unsigned char h[GC_SM3_LEN];
    gc_sm3(data, len, h);
    gc_hex(h, GC_SM3_LEN, out);
}

struct gc_sm3_ctx *gc_sm3_new(void)
{
    struct gc_sm3_ctx *c = gc_malloc(sizeof(*c));
    c->md = EVP_MD_CTX_new();
    if (!c->md || EVP_DigestInit_ex(c->md, sm3_md(), NULL) != 1)
        GC_BUG("SM3 init failed");
    return c;
}

void gc_sm3_update(struct gc_sm3_ctx *c, const void *data, size_t len)
{
    if (EVP_DigestUpdate(c->md, data, len) != 1)
        GC_BUG("SM3 update failed");
}

void gc_sm3_final_hex(struct gc_sm3_ctx *c, char out[GC_SM3_HEX_LEN + 1])
{
    unsigned char h[GC_SM3_LEN];
    unsigned int n = 0;
    if (EVP_DigestFinal_ex(c->md, h, &n) != 1)
        GC_BUG("SM3 final failed");
    gc_hex(h, GC_SM3_LEN, out);
    EVP_MD_CTX_free(c->md);
    free(c);
}

void gc_b64url(const unsigned char *in, size_t n, char *out)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        out[o++] = t[v >> 18];
        out[o++] = t[(v >> 12) & 63];
        out[o++] = t[(v >> 6) & 63];
        out[o++] = t[v & 63];
    }
    if (n - i == 1) {
        unsigned v = (unsigned)in[i] << 16;
        out[o++] = t[v >> 18];
        out[o++] = t[(v >> 12) & 63];
    } else if (n - i == 2) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
        out[o++] = t[v >> 18];
        out[o++] = t[(v >> 12) & 63];
        out[o++] = t[(v >> 6) & 63];
    }
    out[o] = '\0';
}

static int b64url_val(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

/* Decodes base64url without padding; returns the length or -1. */
static long b64url_decode(const char *in, size_t n, unsigned char *out, size_t cap)
{
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64url_val(in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= cap)
                return -1;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    return (long)o;
}

/* N = 2^15, r = 8, p = 1: 32 MiB and about 60 ms a hash on this class of machine. */
static int scrypt_log2n = 15;

void gc_password_set_cost_for_tests(int log2n)
{
    scrypt_log2n = log2n;
}

static int scrypt_derive(const char *pw, const unsigned char *salt, size_t saltlen, int log2n,
                         unsigned r, unsigned p, unsigned char *out, size_t outlen)
{
    uint64_t N = (uint64_t)1 << log2n;
    uint64_t maxmem = 128ULL * r * (N + p + 2) + (1 << 20);
    return EVP_PBE_scrypt(pw, strlen(pw), salt, saltlen, N, r, p, maxmem, out, outlen) == 1 ? 0
                                                                                            : -1;
}

char *gc_password_hash(const char *password)
{
    unsigned char salt[16], dk[32];
    char s64[32], h64[48], out[160];
    gc_random_bytes(salt, sizeof(salt));
    if (scrypt_derive(password, salt, sizeof(salt), scrypt_log2n, 8, 1, dk, sizeof(dk)) != 0)
        GC_BUG("scrypt failed");
    gc_b64url(salt, sizeof(salt), s64);
    gc_b64url(dk, sizeof(dk), h64);
    snprintf(out, sizeof(out), "$scrypt$ln=%d,r=8,p=1$%s$%s", scrypt_log2n, s64, h64);
    return gc_strdup(out);
}

bool gc_password_verify(const char *password, const char *encoded)
{
    int ln;
    unsigned r, p;
    char s64[64], h64[64];
    if (sscanf(encoded, "$scrypt$ln=%d,r=%u,p=%u$%63[A-Za-z0-9_-]$%63[A-Za-z0-9_-]", &ln, &r, &p,
               s64, h64) != 5)
        return false;
    if (ln < 1 || ln > 22 || r < 1 || r > 32 || p < 1 || p > 16)
        return false;
    unsigned char salt[48], want[48], got[48];
    long sl = b64url_decode(s64, strlen(s64), salt, sizeof(salt));
    long hl = b64url_decode(h64, strlen(h64), want, sizeof(want));
    if (sl < 16 || hl != 32)
        return false; /* what gc_password_hash writes: a shorter hash would be guessable */
    if (scrypt_derive(password, salt, (size_t)sl, ln, r, p, got, (size_t)hl) != 0)
        return false;
    return CRYPTO_memcmp(got, want, (size_t)hl) == 0;
}

void gc_secret_new(const char *prefix, char out[64])
{
    unsigned char raw[32];
    char b[48];
    gc_random_bytes(raw, sizeof(raw));
    gc_b64url(raw, sizeof(raw), b);
    snprintf(out, 64, "%s%s", prefix, b);
}

bool gc_ct_streq(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la != lb)
        return false;
    return CRYPTO_memcmp(a, b, la) == 0;
}
