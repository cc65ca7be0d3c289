/* The signed batch envelope of supervision specification 1.0 (docs/supervision-spec.md):
 * canonical JSON, SM2 signatures (SM3, distinguishing ID 1234567812345678), SM4-CTR with
 * HMAC-SM3 (encrypt-then-MAC, keys from HKDF-SM3), the cloud's own SM2 key and id. */
#ifndef GC_ENVELOPE_H
#define GC_ENVELOPE_H

#include "supervision/canon.h"
#include "util/buf.h"
#include "util/error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GC_SM2_DEFAULT_ID "1234567812345678"
#define GC_SIGNATURE_ALG "SM2-SM3"
#define GC_ENCRYPTION_ALG "SM4-CTR-HMAC-SM3"
/* The shared secret a cloud and a receiver agree on for SM4 encryption (bytes). */
#define GC_SUP_SECRET_LEN 32
/* Most records in one batch (batch.json maxItems). */
#define GC_BATCH_MAX_RECORDS 10000

/* ---- SM2 keys ---- */

struct gc_sm2_key; /* an SM2 key pair, or a public key only */

/* A fresh key pair. Caller frees with gc_sm2_key_free. */
int gc_sm2_key_generate(struct gc_sm2_key **out, struct gc_error *err);
/* A PEM private key (PKCS#8, "BEGIN PRIVATE KEY") or public key ("BEGIN PUBLIC KEY");
 * anything but an SM2 key is GC_EINVAL. */
int gc_sm2_key_from_pem(const char *pem, size_t len, struct gc_sm2_key **out,
                        struct gc_error *err);
/* Reads the private key PEM at path, or, when there is no such file, generates one and
 * writes it there with mode 0600 (created exclusively, then renamed into place). */
int gc_sm2_key_load_or_create(const char *path, struct gc_sm2_key **out, struct gc_error *err);
bool gc_sm2_key_has_private(const struct gc_sm2_key *k);
/* PEM texts, malloc'd (caller frees). */
int gc_sm2_key_public_pem(const struct gc_sm2_key *k, char **pem, struct gc_error *err);
int gc_sm2_key_private_pem(const struct gc_sm2_key *k, char **pem, struct gc_error *err);
/* Lowercase hex SM3 of the DER SubjectPublicKeyInfo; out needs 65 bytes. */
int gc_sm2_key_fingerprint(const struct gc_sm2_key *k, char out[65], struct gc_error *err);
void gc_sm2_key_free(struct gc_sm2_key *k);

/* SM2 signature with SM3 and the default ID over msg: DER, base64 (RFC 4648, padded),
 * malloc'd into *sig_b64. */
int gc_sm2_sign(const struct gc_sm2_key *k, const void *msg, size_t n, char **sig_b64,
                struct gc_error *err);
/* 0 when sig_b64 is a valid signature of msg by k, else GC_EAUTH ("signature does not
 * verify") or GC_EINVAL (not base64). */
int gc_sm2_verify(const struct gc_sm2_key *k, const void *msg, size_t n, const char *sig_b64,
                  struct gc_error *err);

/* ---- SM4 (spec: "Encryption") ---- */

/* Encrypts pt under the secret: SM4-CTR with a random IV, HMAC-SM3 over aad || iv || ct.
 * iv, ct and mac are malloc'd base64 strings. */
int gc_sm4_seal(const unsigned char secret[GC_SUP_SECRET_LEN], const void *aad, size_t aadlen,
                const void *pt, size_t n, char **iv_b64, char **ct_b64, char **mac_b64,
                struct gc_error *err);
/* Checks the MAC (constant time) and decrypts; *pt malloc'd (NUL-terminated), *ptlen set.
 * GC_EAUTH when the MAC does not match (wrong key or tampering). */
int gc_sm4_open(const unsigned char secret[GC_SUP_SECRET_LEN], const void *aad, size_t aadlen,
                const char *iv_b64, const char *ct_b64, const char *mac_b64, char **pt,
                size_t *ptlen, struct gc_error *err);

/* base64 (RFC 4648 §4, padded, no line breaks); decode rejects anything else. */
char *gc_base64_encode(const void *in, size_t n);
int gc_base64_decode(const char *in, unsigned char **out, size_t *outlen);

/* ---- records ---- */

/* A record as record.json describes it: {"id", "dataset", "schema_version", "seq", "time",
 * "op", "data"}; op is "delete" when data is NULL, else "upsert" (data is stolen). Not
 * validated: call gc_schema_validate_record when the data comes from outside. */
json_t *gc_sup_record_new(const char *dataset, const char *id, int64_t seq, int64_t time_ms,
                          json_t *data);

/* ---- batches ---- */

struct gc_sup_batch_opts {
    const char *cloud_id;   /* the sending cloud's id (uuid) */
    const char *dataset;    /* one of gc_supervision_datasets */
    int64_t batch_seq;      /* ≥ 1, per receiver and dataset */
    int64_t time_ms;        /* the batch's time; 0: now */
    const struct gc_sm2_key *key;          /* the cloud's private key */
    const unsigned char *secret;           /* GC_SUP_SECRET_LEN bytes to encrypt, or NULL */
    const char *key_id;                    /* optional label of the secret, or NULL */
};

/* Builds the signed batch of records (a JSON array of records as in record.json; not
 * validated here: validate them when they are made). *out: malloc'd canonical JSON text
 * of the whole batch, *outlen its length. */
int gc_sup_batch_build(const struct gc_sup_batch_opts *o, const json_t *records, char **out,
                   size_t *outlen, struct gc_error *err);

/* What a receiver knows about a sender: called with the batch's cloud id before anything is
 * verified; fills *key (the cloud's registered public key) and *secret (its SM4 secret, or
 * NULL when it has none). Returns 0 or an error (GC_ENOTFOUND: an unknown cloud). */
typedef int (*gc_sup_batch_key_fn)(void *arg, const char *cloud_id, const struct gc_sm2_key **key,
                               const unsigned char **secret, struct gc_error *err);

struct gc_sup_batch_expect {
    const char *cloud_id;   /* required cloud id, or NULL for any */
    const char *dataset;    /* required dataset, or NULL for any */
    /* either a lookup … */
    gc_sup_batch_key_fn lookup;
    void *lookup_arg;
    /* … or a fixed key and secret (used when lookup is NULL) */
    const struct gc_sm2_key *key;
    const unsigned char *secret;
    bool require_encryption; /* refuse plain batches */
};

struct gc_sup_batch {
    char cloud_id[40];
    char dataset[16];
    int64_t batch_seq;
    char time[32];
    bool encrypted;
    size_t nrecords;
    /* the canonical text of record_ids, inside doc (it identifies the batch's contents) */
    const char *ids_text;
    size_t ids_len;
    /* internal */
    struct gc_cjdoc doc;       /* the batch, in canonical form */
    struct gc_cjdoc plain;     /* an encrypted batch's records, decrypted */
    const struct gc_cjdoc *rd; /* the document of the records: &doc or &plain */
    uint32_t *rec;             /* the index in *rd of each record */
    char *pt;                  /* the decrypted text plain indexes */
};

/* A record of an opened batch that gc_sup_batch_check_record accepted. The strings point
 * into the batch: valid until it is released, not NUL-terminated. */
struct gc_sup_rec {
    const char *id;
    size_t id_len;
    int64_t seq;
    int64_t time_ms;
    bool del;         /* op "delete" */
    const char *data; /* the canonical text of data, as received; NULL when deleted */
    size_t data_len;
};

/* Reads the batch (canonical text is indexed in place, any other JSON is put in canonical
 * form first), checks the envelope against batch.json, the cloud id and dataset, verifies
 * the SM2 signature over the canonical body, checks the MAC and decrypts when encrypted, and
 * checks that record_ids match the records' ids. Records themselves are not validated: a
 * receiver validates each with gc_sup_batch_check_record and keeps the good ones.
 * Errors: GC_EINVAL (malformed; err->field is the JSON pointer), GC_EAUTH (signature or
 * MAC), GC_ENOTFOUND (lookup: unknown cloud), GC_ETOOBIG. Release out in any case. */
int gc_sup_batch_open(const char *text, size_t len, const struct gc_sup_batch_expect *x,
                  struct gc_sup_batch *out, struct gc_error *err);
void gc_sup_batch_release(struct gc_sup_batch *b);
/* Validates record i of an opened batch (record.json, the dataset's schema, and the record's
 * dataset against the batch's). The pointer is relative to the record. */
struct gc_schema_error;
int gc_sup_batch_check_record(const struct gc_sup_batch *b, size_t i, struct gc_schema_error *err);
/* The fields of record i, which gc_sup_batch_check_record accepted. */
void gc_sup_batch_record(const struct gc_sup_batch *b, size_t i, struct gc_sup_rec *out);
/* The id of record i into out (cap bytes, cut to fit), "" when it has no string id. */
char *gc_sup_batch_record_id(const struct gc_sup_batch *b, size_t i, char *out, size_t cap);

/* ---- the cloud's identity ---- */

struct gc_sup_identity {
    char cloud_id[40];
    struct gc_sm2_key *key; /* private */
    char *public_pem;
    char fingerprint[65];
};

/* The cloud's identity, loaded once per process (and created on first use) under
 * data_dir/supervision/: cloud-id (when cloud_id_opt is "auto") and sm2-key.pem, both
 * 0600, the directory 0700. cloud_id_opt: "auto" or a lowercase uuid ([supervision]
 * cloud_id). The result lives until exit. Thread-safe. */
int gc_sup_identity_get(const char *data_dir, const char *cloud_id_opt,
                        const struct gc_sup_identity **out, struct gc_error *err);

#endif
