/* The catalogue: flavors (sizes of VMs) and images (what VMs boot). Platform objects that
 * every signed-in user may read; platform administrators and operators manage them. */
#include "core/core.h"

#include "core/validate.h"
#include "crypto/crypto.h"
#include "util/buf.h"
#include "util/mem.h"
#include "util/timeutil.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- shared ---- */

typedef json_t *(*row_fn)(struct gc_rows *r);
typedef gc_page_row_fn list_fn;

static int load_one(struct gc_tx *tx, const char *sql, const char *what, const char *id,
                    row_fn fn, json_t **out, struct gc_error *err)
{
    if (!gc_id_valid(id))
        return gc_error_set(err, GC_ENOTFOUND, "id", "%s '%.64s' not found", what, id);
    struct gc_rows *r;
    int rc = gc_tx_query(tx, sql, GC_ARGS(GC_VTXT(id)), &r, err);
    if (rc)
        return rc;
    rc = gc_rows_next(r, err);
    if (rc == 0)
        rc = gc_error_set(err, GC_ENOTFOUND, "id", "%s '%s' not found", what, id);
    if (rc > 0) {
        rc = 0;
        *out = fn(r);
    }
    gc_rows_free(r);
    return rc;
}

static int list_rows(const struct gc_ctx *ctx, const char *base_sql, const char *const *filters,
                     json_t *fvals, int limit, const char *cursor, list_fn fn, json_t **items,
                     char **next_cursor, struct gc_error *err)
{
    int rc = gc_require(ctx->who, GC_P_CATALOG_READ, err);
    if (!rc)
        rc = gc_page_limit(limit, &limit, err);
    if (!rc)
        rc = gc_page_cursor_id(cursor, err);
    if (rc)
        return rc;
    struct gc_buf sql;
    gc_buf_init(&sql, GC_BUF_UNLIMITED);
    struct gc_val args[8];
    size_t n = 0;
    (void)gc_buf_addf(&sql, "%s WHERE id > ?", base_sql);
    args[n++] = GC_VTXT(cursor ? cursor : "");
    for (const char *const *f = filters; *f && n < 6; f++) {
        const char *v = gc_json_str(fvals, *f);
        if (v) {
            (void)gc_buf_addf(&sql, " AND %s = ?", *f);
            args[n++] = GC_VTXT(v);
        }
    }
    (void)gc_buf_adds(&sql, " ORDER BY id LIMIT ?");
    args[n++] = GC_VINT_(limit + 1);
    rc = gc_page_run(ctx, gc_buf_str(&sql), args, n, limit, "id", fn, items, next_cursor, err);
    gc_buf_release(&sql);
    return rc;
}

static int audit_commit(struct gc_tx *tx, const struct gc_ctx *ctx, const char *action,
                        const char *type, const char *id, json_t *detail, int rc,
                        struct gc_error *err)
{
    if (!rc) {
        struct gc_audit_event ev = {.action = action,
                                    .resource_type = type,
                                    .resource_id = id,
                                    .outcome = GC_OUTCOME_SUCCESS,
                                    .detail = detail};
        rc = gc_audit_append(tx, ctx, &ev, err);
    }
    if (rc) {
        gc_tx_rollback(tx);
        return rc;
    }
    return gc_tx_commit(tx, err);
}

static int check_if_match(json_t *obj, int64_t if_match, const char *what, const char *id,
                          struct gc_error *err)
{
    int64_t v = json_integer_value(json_object_get(obj, "version"));
    if (if_match >= 0 && if_match != v)
        return gc_error_set(err, GC_EPRECOND, "If-Match",
                            "%s '%s' is at version %lld, not %lld: reload it and retry", what,
                            id, (long long)v, (long long)if_match);
    return 0;
}

/* ---- flavors ---- */

#define FLAVOR_SELECT                                                                        \
    "SELECT id, name, vcpus, memory_mib, disk_gib, description, created_at, updated_at,"     \
    " version FROM flavors"

static json_t *flavor_json(struct gc_rows *r)
{
    return json_pack("{s:s,s:s,s:I,s:I,s:I,s:s,s:o,s:o,s:I}", "id", gc_rows_text(r, 0), "name",
                     gc_rows_text(r, 1), "vcpus", (json_int_t)gc_rows_int(r, 2), "memory_mib",
                     (json_int_t)gc_rows_int(r, 3), "disk_gib", (json_int_t)gc_rows_int(r, 4),
                     "description", gc_rows_text(r, 5), "created_at",
                     gc_json_time(gc_rows_int(r, 6)), "updated_at",
                     gc_json_time(gc_rows_int(r, 7)), "version", (json_int_t)gc_rows_int(r, 8));
}

static const struct gc_jfield flavor_spec[] = {
    {"name", GC_JT_STRING, true, false, 1, 64, GC_CS_CODE},
    {"vcpus", GC_JT_INT, true, false, 1, 512, GC_CS_ANY},
    {"memory_mib", GC_JT_INT, true, false, 64, 16 * 1024 * 1024, GC_CS_ANY},
    {"disk_gib", GC_JT_INT, false, false, 0, 65536, GC_CS_ANY},
    {"description", GC_JT_STRING, false, false, 0, 1024, GC_CS_ANY},
};

int gc_flavor_create(const struct gc_ctx *ctx, json_t *in, json_t **out, struct gc_error *err)
{
    int rc = gc_require(ctx->who, GC_P_CATALOG_WRITE, err);
    if (!rc)
        rc = gc_json_check(in, flavor_spec, sizeof(flavor_spec) / sizeof(flavor_spec[0]), err);
    if (rc)
        return rc;
    char id[GC_ID_LEN + 1];
    gc_id_new(id);
    int64_t now = gc_now_ms();
    const char *desc = gc_json_str(in, "description");
    json_t *disk = json_object_get(in, "disk_gib");
    struct gc_tx *tx;
    rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    rc = gc_tx_exec(tx,
                    "INSERT INTO flavors (id, name, vcpus, memory_mib, disk_gib, description,"
                    " created_at, updated_at, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)",
                    GC_ARGS(GC_VTXT(id), GC_VTXT(gc_json_str(in, "name")),
                            GC_VINT_(json_integer_value(json_object_get(in, "vcpus"))),
                            GC_VINT_(json_integer_value(json_object_get(in, "memory_mib"))),
                            GC_VINT_(disk ? json_integer_value(disk) : 0),
                            GC_VTXT(desc ? desc : ""), GC_VINT_(now), GC_VINT_(now)),
                    NULL, err);
    if (rc == GC_ECONFLICT)
        rc = gc_error_set(err, GC_ECONFLICT, "name", "a flavor named '%s' exists",
                          gc_json_str(in, "name"));
    json_t *obj = NULL;
    if (!rc)
        rc = load_one(tx, FLAVOR_SELECT " WHERE id = ?", "flavor", id, flavor_json, &obj, err);
    rc = audit_commit(tx, ctx, "flavor.create", "flavor", id, obj, rc, err);
    if (rc) {
        json_decref(obj);
        return rc;
    }
    *out = obj;
    return 0;
}

int gc_flavor_get(const struct gc_ctx *ctx, const char *id, json_t **out, struct gc_error *err)
{
    int rc = gc_require(ctx->who, GC_P_CATALOG_READ, err);
    struct gc_tx *tx;
    if (!rc)
        rc = gc_tx_begin(ctx->store, GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    rc = load_one(tx, FLAVOR_SELECT " WHERE id = ?", "flavor", id, flavor_json, out, err);
    gc_tx_rollback(tx);
    return rc;
}

static json_t *flavor_row(struct gc_rows *r, const struct gc_principal *who)
{
    (void)who;
    return flavor_json(r);
}

int gc_flavor_list(const struct gc_ctx *ctx, json_t *filters, int limit, const char *cursor,
                   json_t **items, char **next_cursor, struct gc_error *err)
{
    static const char *const f[] = {"name", NULL};
    return list_rows(ctx, FLAVOR_SELECT, f, filters, limit, cursor, flavor_row, items,
                     next_cursor, err);
}

static int delete_row(const struct gc_ctx *ctx, const char *table_select, const char *del_sql,
                      const char *in_use_sql, const char *what, const char *action,
                      row_fn fn, const char *id, int64_t if_match, struct gc_error *err)
{
    int rc = gc_require(ctx->who, GC_P_CATALOG_WRITE, err);
    struct gc_tx *tx;
    if (!rc)
        rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    json_t *before = NULL;
    rc = load_one(tx, table_select, what, id, fn, &before, err);
    if (!rc)
        rc = check_if_match(before, if_match, what, id, err);
    int64_t n = 0;
    if (!rc)
        rc = gc_tx_query_int(tx, in_use_sql, GC_ARGS(GC_VTXT(id)), &n, err);
    if (!rc && n > 0)
        rc = gc_error_set(err, GC_ECONFLICT, "id", "%s '%s' is used by %lld virtual machines",
                          what, id, (long long)n);
    if (!rc)
        rc = gc_tx_exec(tx, del_sql, GC_ARGS(GC_VTXT(id)), NULL, err);
    rc = audit_commit(tx, ctx, action, what, id, before, rc, err);
    json_decref(before);
    return rc;
}

int gc_flavor_delete(const struct gc_ctx *ctx, const char *id, int64_t if_match,
                     struct gc_error *err)
{
    return delete_row(ctx, FLAVOR_SELECT " WHERE id = ?", "DELETE FROM flavors WHERE id = ?",
                      "SELECT COUNT(*) FROM vms WHERE flavor_id = ?", "flavor", "flavor.delete",
                      flavor_json, id, if_match, err);
}

/* ---- images ---- */

#define IMAGE_SELECT                                                                          \
    "SELECT id, name, kind, state, format, kernel_path, initrd_path, cmdline, disk_path,"     \
    " os_type, arch, min_disk_gib, min_memory_mib, size_bytes, sha256, sm3, last_error,"      \
    " created_at, updated_at, version FROM images"

static json_t *image_json(struct gc_rows *r)
{
    json_t *o = json_object();
    static const char *const text[] = {"id", "name", "kind", "state", "format", "kernel_path",
                                       "initrd_path", "cmdline", "disk_path", "os_type",
                                       "arch"};
    for (int i = 0; i < 11; i++)
        json_object_set_new(o, text[i], json_string(gc_rows_text(r, i)));
    json_object_set_new(o, "min_disk_gib", json_integer(gc_rows_int(r, 11)));
    json_object_set_new(o, "min_memory_mib", json_integer(gc_rows_int(r, 12)));
    json_object_set_new(o, "size_bytes", json_integer(gc_rows_int(r, 13)));
    json_object_set_new(o, "sha256", json_string(gc_rows_text(r, 14)));
    json_object_set_new(o, "sm3", json_string(gc_rows_text(r, 15)));
    json_object_set_new(o, "last_error", json_string(gc_rows_text(r, 16)));
    json_object_set_new(o, "created_at", gc_json_time(gc_rows_int(r, 17)));
    json_object_set_new(o, "updated_at", gc_json_time(gc_rows_int(r, 18)));
    json_object_set_new(o, "version", json_integer(gc_rows_int(r, 19)));
    return o;
}

static const struct gc_jfield image_spec[] = {
    {"name", GC_JT_STRING, true, false, 1, 64, GC_CS_CODE},
    {"kind", GC_JT_STRING, true, false, 1, 16, GC_CS_CODE},
    {"format", GC_JT_STRING, false, false, 1, 16, GC_CS_CODE},
    {"kernel_path", GC_JT_STRING, false, false, 1, 1024, GC_CS_TEXT},
    {"initrd_path", GC_JT_STRING, false, false, 1, 1024, GC_CS_TEXT},
    {"cmdline", GC_JT_STRING, false, false, 0, 1024, GC_CS_TEXT},
    {"disk_path", GC_JT_STRING, false, false, 1, 1024, GC_CS_TEXT},
    {"os_type", GC_JT_STRING, false, false, 1, 32, GC_CS_CODE},
    {"arch", GC_JT_STRING, true, false, 1, 32, GC_CS_CODE},
    {"min_disk_gib", GC_JT_INT, false, false, 0, 65536, GC_CS_ANY},
    {"min_memory_mib", GC_JT_INT, false, false, 0, 16 * 1024 * 1024, GC_CS_ANY},
};

/* Hashes one file into both digests. */
static int hash_file(const char *path, EVP_MD_CTX *sha, EVP_MD_CTX *sm3, int64_t *size,
                     struct gc_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return gc_error_set(err, GC_EINVAL, "path", "cannot read %s: %s", path, strerror(errno));
    unsigned char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
        EVP_DigestUpdate(sha, buf, n);
        EVP_DigestUpdate(sm3, buf, n);
        *size += (int64_t)n;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad)
        return gc_error_set(err, GC_EINVAL, "path", "error reading %s", path);
    return 0;
}

int gc_image_checksum(const char *kind, const char *f1, const char *f2, char *sha256, char *sm3,
                      int64_t *size, struct gc_error *err)
{
    (void)kind;
    EVP_MD_CTX *a = EVP_MD_CTX_new(), *b = EVP_MD_CTX_new();
    EVP_MD *md_sha = EVP_MD_fetch(NULL, "SHA256", NULL), *md_sm3 = EVP_MD_fetch(NULL, "SM3", NULL);
    int rc = 0;
    *size = 0;
    if (!a || !b || !md_sha || !md_sm3 || EVP_DigestInit_ex(a, md_sha, NULL) != 1 ||
        EVP_DigestInit_ex(b, md_sm3, NULL) != 1)
        rc = gc_error_set(err, GC_EINTERNAL, "", "digest setup failed");
    if (!rc)
        rc = hash_file(f1, a, b, size, err);
    if (!rc && f2 && f2[0])
        rc = hash_file(f2, a, b, size, err);
    unsigned char h[EVP_MAX_MD_SIZE];
    unsigned int hl = 0;
    if (!rc && EVP_DigestFinal_ex(a, h, &hl) == 1)
        gc_hex(h, hl, sha256);
    if (!rc && EVP_DigestFinal_ex(b, h, &hl) == 1)
        gc_hex(h, hl, sm3);
    EVP_MD_CTX_free(a);
    EVP_MD_CTX_free(b);
    EVP_MD_free(md_sha);
    EVP_MD_free(md_sm3);
    return rc;
}

int gc_image_create(const struct gc_ctx *ctx, json_t *in, json_t **out, struct gc_error *err)
{
    int rc = gc_require(ctx->who, GC_P_CATALOG_WRITE, err);
    if (!rc)
        rc = gc_json_check(in, image_spec, sizeof(image_spec) / sizeof(image_spec[0]), err);
    if (rc)
        return rc;
    const char *kind = gc_json_str(in, "kind");
    const char *kernel = gc_json_str(in, "kernel_path"), *disk = gc_json_str(in, "disk_path");
    const char *format = gc_json_str(in, "format");
    if (strcmp(kind, "kernel") == 0) {
        if (!kernel)
            return gc_error_set(err, GC_EINVAL, "kernel_path",
                                "a kernel image needs kernel_path (and usually initrd_path)");
        if (disk || format)
            return gc_error_set(err, GC_EINVAL, disk ? "disk_path" : "format",
                                "a kernel image has no disk_path or format");
    } else if (strcmp(kind, "disk") == 0) {
        if (!disk)
            return gc_error_set(err, GC_EINVAL, "disk_path", "a disk image needs disk_path");
        if (kernel || gc_json_str(in, "initrd_path"))
            return gc_error_set(err, GC_EINVAL, "kernel_path",
                                "a disk image has no kernel_path or initrd_path");
        if (!format || (strcmp(format, "raw") && strcmp(format, "qcow2")))
            return gc_error_set(err, GC_EINVAL, "format",
                                "a disk image needs format 'raw' or 'qcow2'");
    } else {
        return gc_error_set(err, GC_EINVAL, "kind", "kind must be 'kernel' or 'disk'");
    }
    static const char *const paths[] = {"kernel_path", "initrd_path", "disk_path"};
    for (int i = 0; i < 3; i++) {
        const char *p = gc_json_str(in, paths[i]);
        if (p && p[0] != '/')
            return gc_error_set(err, GC_EINVAL, paths[i], "%s must be an absolute path",
                                paths[i]);
    }
    char id[GC_ID_LEN + 1], job[GC_ID_LEN + 1];
    gc_id_new(id);
    int64_t now = gc_now_ms();
    json_t *jd = json_object_get(in, "min_disk_gib"), *jm = json_object_get(in, "min_memory_mib");
    const char *os = gc_json_str(in, "os_type"), *cmdline = gc_json_str(in, "cmdline"),
               *initrd = gc_json_str(in, "initrd_path");
    struct gc_tx *tx;
    rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    rc = gc_tx_exec(
        tx,
        "INSERT INTO images (id, name, kind, state, format, kernel_path, initrd_path, cmdline,"
        " disk_path, os_type, arch, min_disk_gib, min_memory_mib, created_at, updated_at,"
        " version) VALUES (?, ?, ?, 'importing', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
        GC_ARGS(GC_VTXT(id), GC_VTXT(gc_json_str(in, "name")), GC_VTXT(kind),
                GC_VTXT(format ? format : ""), GC_VTXT(kernel ? kernel : ""),
                GC_VTXT(initrd ? initrd : ""), GC_VTXT(cmdline ? cmdline : "console=ttyS0"),
                GC_VTXT(disk ? disk : ""), GC_VTXT(os ? os : "linux"),
                GC_VTXT(gc_json_str(in, "arch")), GC_VINT_(jd ? json_integer_value(jd) : 0),
                GC_VINT_(jm ? json_integer_value(jm) : 0), GC_VINT_(now), GC_VINT_(now)),
        NULL, err);
    if (rc == GC_ECONFLICT)
        rc = gc_error_set(err, GC_ECONFLICT, "name", "an image named '%s' exists",
                          gc_json_str(in, "name"));
    if (!rc) {
        json_t *params = json_pack("{s:s}", "image_id", id);
        rc = gc_job_submit(tx, ctx, "image.import", params, NULL, "image", id, job, err);
        json_decref(params);
    }
    json_t *obj = NULL;
    if (!rc)
        rc = load_one(tx, IMAGE_SELECT " WHERE id = ?", "image", id, image_json, &obj, err);
    rc = audit_commit(tx, ctx, "image.create", "image", id, obj, rc, err);
    if (rc) {
        json_decref(obj);
        return rc;
    }
    gc_job_notify();
    json_object_set_new(obj, "job_id", json_string(job));
    *out = obj;
    return 0;
}

int gc_image_get(const struct gc_ctx *ctx, const char *id, json_t **out, struct gc_error *err)
{
    int rc = gc_require(ctx->who, GC_P_CATALOG_READ, err);
    struct gc_tx *tx;
    if (!rc)
        rc = gc_tx_begin(ctx->store, GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    rc = load_one(tx, IMAGE_SELECT " WHERE id = ?", "image", id, image_json, out, err);
    gc_tx_rollback(tx);
    return rc;
}

static json_t *image_row(struct gc_rows *r, const struct gc_principal *who)
{
    (void)who;
    return image_json(r);
}

int gc_image_list(const struct gc_ctx *ctx, json_t *filters, int limit, const char *cursor,
                  json_t **items, char **next_cursor, struct gc_error *err)
{
    static const char *const f[] = {"name", "kind", "state", "arch", NULL};
    return list_rows(ctx, IMAGE_SELECT, f, filters, limit, cursor, image_row, items,
                     next_cursor, err);
}

int gc_image_delete(const struct gc_ctx *ctx, const char *id, int64_t if_match,
                    struct gc_error *err)
{
    return delete_row(ctx, IMAGE_SELECT " WHERE id = ?", "DELETE FROM images WHERE id = ?",
                      "SELECT COUNT(*) FROM vms WHERE image_id = ?", "image", "image.delete",
                      image_json, id, if_match, err);
}
