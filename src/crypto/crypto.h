/* Cryptography on OpenSSL 3: SM3 hashing, scrypt password hashes, bearer secrets,
 * hex and base64url encoding. */
#ifndef GC_CRYPTO_H
#define GC_CRYPTO_H

#include "util/error.h"

#include <stdbool.h>
#include <stddef.h>

#define GC_SM3_LEN 32
#define GC_SM3_HEX_LEN 64

/* SM3 (GB/T 32905) of data; out gets 32 bytes. */
void gc_sm3(const void *data, size_t len, unsigned char out[GC_SM3_LEN]);
/* Lowercase hex of SM3; out needs 65 bytes. */
void gc_sm3_hex(const void *data, size_t len, char out[GC_SM3_HEX_LEN + 1]);

/* Incremental SM3. */
struct gc_sm3_ctx;
struct gc_sm3_ctx *gc_sm3_new(void);
void gc_sm3_update(struct gc_sm3_ctx *c, const void *data, size_t len);
void gc_sm3_final_hex(struct gc_sm3_ctx *c, char out[GC_SM3_HEX_LEN + 1]); /* frees c */

void gc_hex(const unsigned char *in, size_t n, char *out); /* out needs 2n+1 */
/* base64url without padding; out needs 4*ceil(n/3)+1 bytes. */
void gc_b64url(const unsigned char *in, size_t n, char *out);

/* Password hashing with scrypt (memory-hard). The encoded form is
 * "$scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt b64url>$<hash b64url>"; returns a malloc'd string. */
char *gc_password_hash(const char *password);
/* Constant-time check; false for a malformed encoding. */
bool gc_password_verify(const char *password, const char *encoded);
/* Lowers the scrypt cost for unit tests only. */
void gc_password_set_cost_for_tests(int log2n);

/* A bearer secret "<prefix><43 base64url chars>" (256 bits); out needs 64 bytes. */
void gc_secret_new(const char *prefix, char out[64]);

/* Constant-time comparison of equal-length strings. */
bool gc_ct_streq(const char *a, const char *b);

#endif
