/* The catalogue: flavors (sizes of VMs) and images (what VMs boot). Platform objects that
 * every signed-in user may read; platform administrators and operators manage them. */
#include "core/core.h"

#include "core/validate.h"
#include "crypto/crypto.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/timeutil.h"

#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
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
    struct gc_audit_event ev = {.action = action,
                                .resource_type = type,
                                .resource_id = id,
                                .outcome = GC_OUTCOME_SUCCESS,
                                .detail = detail};
    return gc_audit_commit(tx, ctx, &ev, rc, err);
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
    " created_at, updated_at, version, source, store_host_id, store_pool FROM images"

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
    json_object_set_new(o, "source", json_string(gc_rows_text(r, 20)));
    json_object_set_new(o, "store_host_id", json_string(gc_rows_text(r, 21)));
    json_object_set_new(o, "store_pool", json_string(gc_rows_text(r, 22)));
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
    {"source", GC_JT_STRING, false, false, 1, 16, GC_CS_CODE},
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
    const char *source = gc_json_str(in, "source");
    bool upload = source && strcmp(source, "upload") == 0;
    if (source && !upload && strcmp(source, "path") != 0)
        return gc_error_set(err, GC_EINVAL, "source",
                            "source must be 'path' (files already on the hosts) or 'upload' "
                            "(PUT /v1/images/{id}/file)");
    if (upload) {
        if (strcmp(kind, "disk") != 0)
            return gc_error_set(err, GC_EINVAL, "kind", "only a disk image can be uploaded");
        if (disk || kernel || gc_json_str(in, "initrd_path"))
            return gc_error_set(err, GC_EINVAL, disk ? "disk_path" : "kernel_path",
                                "an uploaded image has no paths: its file comes with "
                                "PUT /v1/images/{id}/file");
        if (!format || (strcmp(format, "raw") && strcmp(format, "qcow2")))
            return gc_error_set(err, GC_EINVAL, "format",
                                "a disk image needs format 'raw' or 'qcow2'");
    } else if (strcmp(kind, "kernel") == 0) {
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
        " version, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)",
        GC_ARGS(GC_VTXT(id), GC_VTXT(gc_json_str(in, "name")), GC_VTXT(kind),
                GC_VTXT(upload ? "uploading" : "importing"),
                GC_VTXT(format ? format : ""), GC_VTXT(kernel ? kernel : ""),
                GC_VTXT(initrd ? initrd : ""), GC_VTXT(cmdline ? cmdline : "console=ttyS0"),
                GC_VTXT(disk ? disk : ""), GC_VTXT(os ? os : "linux"),
                GC_VTXT(gc_json_str(in, "arch")), GC_VINT_(jd ? json_integer_value(jd) : 0),
                GC_VINT_(jm ? json_integer_value(jm) : 0), GC_VINT_(now), GC_VINT_(now),
                GC_VTXT(upload ? "upload" : "path")),
        NULL, err);
    if (rc == GC_ECONFLICT)
        rc = gc_error_set(err, GC_ECONFLICT, "name", "an image named '%s' exists",
                          gc_json_str(in, "name"));
    if (!rc && !upload) {
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
    if (!upload) {
        gc_job_notify();
        json_object_set_new(obj, "job_id", json_string(job));
    }
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

/* ---- image upload ---- */

const struct gc_image_store_ops *gc_image_store;

/* Ids of the images whose file is being uploaded: one upload at a time per image, and no
 * delete meanwhile. */
static pthread_mutex_t uploads_lock = PTHREAD_MUTEX_INITIALIZER;
static char uploads[64][GC_ID_LEN + 1];

static bool upload_claim(const char *id)
{
    bool ok = false;
    int free_slot = -1;
    pthread_mutex_lock(&uploads_lock);
    for (int i = 0; i < 64; i++) {
        if (strcmp(uploads[i], id) == 0) {
            free_slot = -2;
            break;
        }
        if (!uploads[i][0] && free_slot == -1)
            free_slot = i;
    }
    if (free_slot >= 0) {
        snprintf(uploads[free_slot], sizeof(uploads[free_slot]), "%s", id);
        ok = true;
    }
    pthread_mutex_unlock(&uploads_lock);
    return ok;
}

static bool upload_running(const char *id)
{
    bool yes = false;
    pthread_mutex_lock(&uploads_lock);
    for (int i = 0; i < 64 && !yes; i++)
        yes = strcmp(uploads[i], id) == 0;
    pthread_mutex_unlock(&uploads_lock);
    return yes;
}

static void upload_unclaim(const char *id)
{
    pthread_mutex_lock(&uploads_lock);
    for (int i = 0; i < 64; i++)
        if (strcmp(uploads[i], id) == 0)
            uploads[i][0] = '\0';
    pthread_mutex_unlock(&uploads_lock);
}

static uint64_t be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Formats that are not raw, by their signature (offset, bytes) */
static const struct {
    const char *name;
    size_t off, len;
    const char *magic;
} foreign[] = {
    {"qcow or qcow2", 0, 4, "QFI\xfb"},
    {"QED", 0, 4, "QED\0"},
    {"VMDK", 0, 4, "KDMV"},
    {"VMDK descriptor", 0, 21, "# Disk DescriptorFile"},
    {"VDI", 64, 4, "\x7f\x10\xda\xbe"},
    {"VHDX", 0, 8, "vhdxfile"},
    {"VHD", 0, 8, "conectix"},
    {"LUKS", 0, 6, "LUKS\xba\xbe"},
    {"Parallels", 0, 16, "WithoutFreeSpace"},
    {"Parallels", 0, 16, "WithouFreSpacExt"},
    {"Bochs", 0, 22, "Bochs Virtual HD Image"},
    {"cloop", 0, 10, "#!/bin/sh\n"},
};

int gc_image_header_check(const char *format, const unsigned char *p, size_t n, bool complete,
                          struct gc_error *err)
{
    if (complete && n == 0)
        return gc_error_set(err, GC_EINVAL, "", "the image file is empty");
    if (strcmp(format, "raw") == 0) {
        for (size_t i = 0; i < sizeof(foreign) / sizeof(foreign[0]); i++)
            if (n >= foreign[i].off + foreign[i].len &&
                memcmp(p + foreign[i].off, foreign[i].magic, foreign[i].len) == 0)
                return gc_error_set(err, GC_EINVAL, "format",
                                    "the image was declared raw but the file is a %s image; "
                                    "register it with its real format",
                                    foreign[i].name);
        return 0;
    }
    if (strcmp(format, "qcow2") != 0)
        return gc_error_set(err, GC_EINVAL, "format", "format must be 'raw' or 'qcow2'");
    if (n < 72 || memcmp(p, "QFI\xfb", 4) != 0)
        return gc_error_set(err, GC_EINVAL, "format",
                            "the file is not a qcow2 image (no qcow2 header)");
    uint32_t version = be32(p + 4);
    if (version != 2 && version != 3)
        return gc_error_set(err, GC_EINVAL, "format",
                            "qcow2 version %u is not supported (only 2 and 3)", version);
    if (be64(p + 8) != 0 || be32(p + 16) != 0)
        return gc_error_set(err, GC_EINVAL, "format",
                            "the qcow2 image has a backing file, which could make QEMU read any "
                            "file on the host; upload a standalone image (qemu-img convert)");
    if (be32(p + 32) != 0)
        return gc_error_set(err, GC_EINVAL, "format",
                            "the qcow2 image is encrypted, which govcloud does not support");
    if (version == 3) {
        if (n < 104)
            return gc_error_set(err, GC_EINVAL, "format", "the qcow2 header is truncated");
        uint64_t incompatible = be64(p + 72);
        if (incompatible & 4u)
            return gc_error_set(err, GC_EINVAL, "format",
                                "the qcow2 image keeps its data in an external file, which "
                                "could make QEMU read any file on the host");
        if (incompatible & 2u)
            return gc_error_set(err, GC_EINVAL, "format", "the qcow2 image is marked corrupt");
        if (incompatible & ~(uint64_t)0x19)
            return gc_error_set(err, GC_EINVAL, "format",
                                "the qcow2 image uses features unknown to govcloud (0x%llx)",
                                (unsigned long long)incompatible);
    }
    return 0;
}

struct gc_image_upload {
    char id[GC_ID_LEN + 1];
    char format[16];
    char want_sha[65];
    int64_t bytes, got, limit;
    unsigned char head[GC_IMAGE_HEADER_BYTES];
    size_t head_len;
    bool head_checked;
    EVP_MD_CTX *sha, *sm3;
    struct gc_image_sink *sink;
    struct gc_principal who;
    struct gc_ctx ctx;
    char request_id[72], source_ip[64];
};

static void upload_free(struct gc_image_upload *u)
{
    if (!u)
        return;
    if (gc_image_store && u->sink)
        gc_image_store->abort(u->sink);
    EVP_MD_CTX_free(u->sha);
    EVP_MD_CTX_free(u->sm3);
    upload_unclaim(u->id);
    free(u);
}

void gc_image_upload_abort(struct gc_image_upload *u)
{
    if (u)
        gc_info("images", "image %s: upload abandoned after %lld bytes; nothing kept", u->id,
                (long long)u->got);
    upload_free(u);
}

int gc_image_upload_begin(const struct gc_ctx *ctx, const char *id, int64_t bytes,
                          const char *sha256, struct gc_image_upload **out,
                          struct gc_error *err)
{
    int rc = gc_require(ctx->who, GC_P_CATALOG_WRITE, err);
    if (rc)
        return rc;
    char want[65] = "";
    if (sha256) {
        size_t n = strlen(sha256);
        for (size_t i = 0; i < n && n == 64; i++)
            if (!((sha256[i] >= '0' && sha256[i] <= '9') ||
                  (sha256[i] >= 'a' && sha256[i] <= 'f') || (sha256[i] >= 'A' && sha256[i] <= 'F')))
                n = 0;
        if (n != 64)
            return gc_error_set(err, GC_EINVAL, "sha256",
                                "sha256 must be 64 hexadecimal digits (the SHA-256 of the file)");
        for (size_t i = 0; i < 64; i++)
            want[i] = (char)(sha256[i] >= 'A' && sha256[i] <= 'F' ? sha256[i] + 32 : sha256[i]);
    }
    /* before anything else: the answer must come before the client sends the body */
    int64_t limit = ctx->cfg->images_max_upload_gib << 30;
    if (bytes > limit)
        return gc_error_set(err, GC_ETOOBIG, "Content-Length",
                            "the image is %lld bytes, more than the upload limit of %lld GiB "
                            "([images] max_upload_gib)",
                            (long long)bytes, (long long)ctx->cfg->images_max_upload_gib);
    struct gc_tx *tx;
    rc = gc_tx_begin(ctx->store, GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    json_t *img = NULL;
    rc = load_one(tx, IMAGE_SELECT " WHERE id = ?", "image", id, image_json, &img, err);
    gc_tx_rollback(tx);
    if (rc)
        return rc;
    const char *state = gc_json_str(img, "state");
    if (strcmp(gc_json_str(img, "source"), "upload") != 0)
        rc = gc_error_set(err, GC_ECONFLICT, "id",
                          "image '%s' was registered from paths; only an image registered "
                          "with \"source\": \"upload\" takes an upload",
                          id);
    else if (strcmp(state, "uploading") != 0)
        rc = gc_error_set(err, GC_ECONFLICT, "id",
                          "image '%s' is %s: only an image in state uploading takes an upload "
                          "(register a new image to upload another file)",
                          id, state);
    if (!rc && !gc_image_store)
        rc = gc_error_set(err, GC_EUNSUPPORTED, "", "this daemon has no image store");
    if (!rc && !upload_claim(id))
        rc = gc_error_set(err, GC_ECONFLICT, "id",
                          "an upload to image '%s' is in progress (or too many uploads run)",
                          id);
    if (rc) {
        json_decref(img);
        return rc;
    }
    struct gc_image_upload *u = gc_calloc(1, sizeof(*u));
    snprintf(u->id, sizeof(u->id), "%s", id);
    snprintf(u->format, sizeof(u->format), "%s", gc_json_str(img, "format"));
    json_decref(img);
    snprintf(u->want_sha, sizeof(u->want_sha), "%s", want);
    u->bytes = bytes;
    u->limit = limit;
    u->who = *ctx->who;
    u->ctx = *ctx;
    u->ctx.who = &u->who;
    snprintf(u->request_id, sizeof(u->request_id), "%s", ctx->request_id ? ctx->request_id : "");
    snprintf(u->source_ip, sizeof(u->source_ip), "%s", ctx->source_ip ? ctx->source_ip : "");
    u->ctx.request_id = u->request_id;
    u->ctx.source_ip = u->source_ip;
    u->sha = EVP_MD_CTX_new();
    u->sm3 = EVP_MD_CTX_new();
    if (!u->sha || !u->sm3 || EVP_DigestInit_ex(u->sha, EVP_sha256(), NULL) != 1 ||
        EVP_DigestInit_ex(u->sm3, EVP_sm3(), NULL) != 1)
        rc = gc_error_set(err, GC_EINTERNAL, "", "digest setup failed");
    char vol[GC_ID_LEN + 16];
    snprintf(vol, sizeof(vol), "gc-image-%s", id);
    if (!rc)
        rc = gc_image_store->open(vol, bytes > 0 ? bytes : 0, &u->sink, err);
    /* where the volume is, recorded before a byte is written: should the daemon die during
     * the upload, deleting the image still finds the volume to delete */
    char host[GC_ID_LEN + 1] = "", pool[128] = "";
    if (!rc) {
        gc_image_store->where(u->sink, host, pool);
        struct gc_tx *wtx;
        rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &wtx, err);
        if (!rc && (rc = gc_tx_exec(wtx,
                                    "UPDATE images SET store_host_id = ?, store_pool = ?,"
                                    " store_volume = ? WHERE id = ? AND state = 'uploading'",
                                    GC_ARGS(GC_VTXT(host), GC_VTXT(pool), GC_VTXT(vol),
                                            GC_VTXT(id)),
                                    NULL, err)))
            gc_tx_rollback(wtx);
        else if (!rc)
            rc = gc_tx_commit(wtx, err);
    }
    if (rc) {
        upload_free(u);
        return rc;
    }
    *out = u;
    return 0;
}

int gc_image_upload_write(struct gc_image_upload *u, const void *p, size_t n,
                          struct gc_error *err)
{
    if ((int64_t)n > u->limit - u->got)
        return gc_error_set(err, GC_ETOOBIG, "",
                            "the image is larger than the upload limit of %lld GiB "
                            "([images] max_upload_gib)",
                            (long long)(u->limit >> 30));
    if (!u->head_checked) {
        size_t k = sizeof(u->head) - u->head_len;
        if (k > n)
            k = n;
        memcpy(u->head + u->head_len, p, k);
        u->head_len += k;
        if (u->head_len == sizeof(u->head)) {
            int rc = gc_image_header_check(u->format, u->head, u->head_len, false, err);
            if (rc)
                return rc;
            u->head_checked = true;
        }
    }
    u->got += (int64_t)n;
    EVP_DigestUpdate(u->sha, p, n);
    EVP_DigestUpdate(u->sm3, p, n);
    return gc_image_store->write(u->sink, p, n, err);
}

int gc_image_upload_finish(struct gc_image_upload *u, json_t **out, struct gc_error *err)
{
    int rc = 0;
    if (!u->head_checked)
        rc = gc_image_header_check(u->format, u->head, u->head_len, true, err);
    if (!rc && u->bytes > 0 && u->got != u->bytes)
        rc = gc_error_set(err, GC_EINVAL, "", "the body ended after %lld of %lld bytes",
                          (long long)u->got, (long long)u->bytes);
    char sha[65] = "", sm3[65] = "";
    unsigned char h[EVP_MAX_MD_SIZE];
    unsigned int hl = 0;
    if (!rc && EVP_DigestFinal_ex(u->sha, h, &hl) == 1)
        gc_hex(h, hl, sha);
    if (!rc && EVP_DigestFinal_ex(u->sm3, h, &hl) == 1)
        gc_hex(h, hl, sm3);
    if (!rc && u->want_sha[0] && strcmp(sha, u->want_sha) != 0)
        rc = gc_error_set(err, GC_EINVAL, "sha256",
                          "the SHA-256 of the uploaded file is %s, not %s as given: the file "
                          "was changed or cut on the way; nothing was kept",
                          sha, u->want_sha);
    char host[GC_ID_LEN + 1] = "", pool[128] = "", *path = NULL;
    if (!rc) {
        rc = gc_image_store->finish(u->sink, host, pool, &path, err);
        u->sink = NULL;
    }
    char vol[GC_ID_LEN + 16];
    snprintf(vol, sizeof(vol), "gc-image-%s", u->id);
    struct gc_tx *tx = NULL;
    if (!rc)
        rc = gc_tx_begin(u->ctx.store, GC_TX_WRITE, &tx, err);
    int64_t now = gc_now_ms(), changed = 0;
    if (!rc)
        rc = gc_tx_exec(tx,
                        "UPDATE images SET state = 'active', sha256 = ?, sm3 = ?, size_bytes = ?,"
                        " disk_path = ?, store_host_id = ?, store_pool = ?, store_volume = ?,"
                        " last_error = '', updated_at = ?, version = version + 1"
                        " WHERE id = ? AND state = 'uploading'",
                        GC_ARGS(GC_VTXT(sha), GC_VTXT(sm3), GC_VINT_(u->got), GC_VTXT(path),
                                GC_VTXT(host), GC_VTXT(pool), GC_VTXT(vol), GC_VINT_(now),
                                GC_VTXT(u->id)),
                        &changed, err);
    if (!rc && changed != 1)
        rc = gc_error_set(err, GC_ECONFLICT, "id", "image '%s' is no longer uploading", u->id);
    /* VMs boot from a copy in their host's [compute] storage_pool: when the store pool is
     * that pool, the stored volume is the store host's copy */
    if (!rc && strcmp(pool, u->ctx.cfg->storage_pool) == 0)
        rc = gc_tx_exec(tx,
                        "INSERT OR REPLACE INTO image_copies (image_id, host_id, pool, volume,"
                        " path, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                        GC_ARGS(GC_VTXT(u->id), GC_VTXT(host), GC_VTXT(pool), GC_VTXT(vol),
                                GC_VTXT(path), GC_VINT_(now)),
                        NULL, err);
    json_t *obj = NULL;
    if (!rc)
        rc = load_one(tx, IMAGE_SELECT " WHERE id = ?", "image", u->id, image_json, &obj, err);
    if (tx) {
        json_t *detail = json_pack("{s:I,s:s,s:s,s:s,s:s}", "size_bytes", (json_int_t)u->got,
                                   "sha256", sha, "sm3", sm3, "store_host_id", host,
                                   "store_pool", pool);
        rc = audit_commit(tx, &u->ctx, "image.upload", "image", u->id, detail, rc, err);
        json_decref(detail);
    }
    if (rc && path && gc_image_store->discard) /* the volume is complete but not recorded */
        gc_image_store->discard(host, pool, vol);
    free(path);
    upload_free(u);
    if (rc) {
        json_decref(obj);
        return rc;
    }
    *out = obj;
    return 0;
}

int gc_image_delete(const struct gc_ctx *ctx, const char *id, int64_t if_match,
                    struct gc_error *err)
{
    int rc = gc_require(ctx->who, GC_P_CATALOG_WRITE, err);
    if (!rc && gc_id_valid(id) && upload_running(id))
        rc = gc_error_set(err, GC_ECONFLICT, "id",
                          "an upload to image '%s' is in progress; delete it afterwards", id);
    struct gc_tx *tx;
    if (!rc)
        rc = gc_tx_begin(ctx->store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    json_t *before = NULL;
    rc = load_one(tx, IMAGE_SELECT " WHERE id = ?", "image", id, image_json, &before, err);
    if (!rc)
        rc = check_if_match(before, if_match, "image", id, err);
    int64_t n = 0;
    if (!rc)
        rc = gc_tx_query_int(tx, "SELECT COUNT(*) FROM vms WHERE image_id = ?",
                             GC_ARGS(GC_VTXT(id)), &n, err);
    if (!rc && n > 0)
        rc = gc_error_set(err, GC_ECONFLICT, "id", "image '%s' is used by %lld virtual machines",
                          id, (long long)n);
    /* the volumes of an uploaded image go with it, by a job (the hosts may be away) */
    json_t *vols = json_array();
    struct gc_rows *r = NULL;
    if (!rc)
        rc = gc_tx_query(tx,
                         "SELECT host_id, pool, volume FROM image_copies WHERE image_id = ?"
                         " UNION SELECT store_host_id, store_pool, store_volume FROM images"
                         " WHERE id = ? AND store_volume <> ''",
                         GC_ARGS(GC_VTXT(id), GC_VTXT(id)), &r, err);
    while (!rc && (rc = gc_rows_next(r, err)) > 0) {
        rc = 0;
        json_array_append_new(vols, json_pack("{s:s,s:s,s:s}", "host_id", gc_rows_text(r, 0),
                                              "pool", gc_rows_text(r, 1), "volume",
                                              gc_rows_text(r, 2)));
    }
    if (rc > 0)
        rc = 0;
    gc_rows_free(r);
    char job[GC_ID_LEN + 1] = "";
    if (!rc && json_array_size(vols) > 0) {
        json_t *params = json_pack("{s:s,s:O}", "image_id", id, "volumes", vols);
        rc = gc_job_submit(tx, ctx, "image.purge", params, NULL, "image", id, job, err);
        json_decref(params);
    }
    json_decref(vols);
    if (!rc)
        rc = gc_tx_exec(tx, "DELETE FROM image_copies WHERE image_id = ?", GC_ARGS(GC_VTXT(id)),
                        NULL, err);
    if (!rc)
        rc = gc_tx_exec(tx, "DELETE FROM images WHERE id = ?", GC_ARGS(GC_VTXT(id)), NULL, err);
    rc = audit_commit(tx, ctx, "image.delete", "image", id, before, rc, err);
    json_decref(before);
    if (!rc && job[0])
        gc_job_notify();
    return rc;
}
