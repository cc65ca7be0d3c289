/* The image store: uploaded images kept as volumes in a storage pool of one host (the store
 * host), and copied from there into the storage pool of every other host that is to run a
 * VM from them, hashed on the way and verified against the image's checksums before use. */
#include "sched/imagestore.h"

#include "sched/hostmgr.h"
#include "sched/runner.h"
#include "crypto/crypto.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/timeutil.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Set once at registration, before any request or job. */
static const struct gc_config *cfg;
static struct gc_store *the_store;

/* One copy at a time: two VMs on one host must not both create the same volume. */
static pthread_mutex_t copy_lock = PTHREAD_MUTEX_INITIALIZER;

/* libvirt streams carry at most 256 KiB a message: bytes are gathered to that size */
#define CHUNK (256 * 1024)

static const char *store_pool(void)
{
    return strcmp(cfg->images_store_pool, "auto") == 0 ? cfg->storage_pool
                                                        : cfg->images_store_pool;
}

/* The store host: [images] store_host (id or name), or the connected host registered first. */
static int store_host(char *id, struct gc_error *err)
{
    struct gc_tx *tx;
    int rc = gc_tx_begin(the_store, GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    struct gc_rows *r = NULL;
    bool any = strcmp(cfg->images_store_host, "auto") == 0;
    if (any)
        rc = gc_tx_query(tx,
                         "SELECT id FROM hosts WHERE state = 'connected'"
                         " ORDER BY created_at, id LIMIT 1",
                         GC_NOARGS, &r, err);
    else
        rc = gc_tx_query(tx, "SELECT id FROM hosts WHERE id = ? OR name = ?",
                         GC_ARGS(GC_VTXT(cfg->images_store_host),
                                 GC_VTXT(cfg->images_store_host)),
                         &r, err);
    if (!rc && (rc = gc_rows_next(r, err)) > 0) {
        snprintf(id, GC_ID_LEN + 1, "%s", gc_rows_text(r, 0));
        rc = 0;
    } else if (rc == 0) {
        rc = any ? gc_error_set(err, GC_EBUSY, "",
                                "no host is connected to keep the image (the image store)")
                 : gc_error_set(err, GC_EBUSY, "",
                                "the image store host '%s' ([images] store_host) is not "
                                "registered",
                                cfg->images_store_host);
    }
    gc_rows_free(r);
    gc_tx_rollback(tx);
    return rc;
}

/* ---- upload sink (gc_image_store) ---- */

struct gc_image_sink {
    char host[GC_ID_LEN + 1];
    char pool[128];
    const struct gc_compute_driver *drv;
    struct gc_vol_stream *st;
    unsigned char *buf;
    size_t len;
};

static void sink_free(struct gc_image_sink *s)
{
    gc_hostmgr_release(s->host);
    free(s->buf);
    free(s);
}

static int sink_open(const char *volume, int64_t bytes, struct gc_image_sink **out,
                     struct gc_error *err)
{
    struct gc_image_sink *s = gc_calloc(1, sizeof(*s));
    int rc = store_host(s->host, err);
    struct gc_compute_conn *c = NULL;
    if (!rc)
        rc = gc_hostmgr_acquire(s->host, &s->drv, &c, err);
    if (rc) {
        free(s);
        return rc;
    }
    snprintf(s->pool, sizeof(s->pool), "%s", store_pool());
    if (!s->drv->vol_upload_open)
        rc = gc_error_set(err, GC_EUNSUPPORTED, "", "the compute driver cannot upload volumes");
    else
        rc = s->drv->vol_upload_open(c, s->pool, volume, bytes, &s->st, err);
    if (rc) {
        sink_free(s);
        return rc;
    }
    s->buf = gc_malloc(CHUNK);
    *out = s;
    return 0;
}

static int sink_write(struct gc_image_sink *s, const void *p, size_t n, struct gc_error *err)
{
    const unsigned char *q = p;
    while (n > 0) {
        size_t k = CHUNK - s->len < n ? CHUNK - s->len : n;
        memcpy(s->buf + s->len, q, k);
        s->len += k;
        q += k;
        n -= k;
        if (s->len == CHUNK) {
            int rc = s->drv->vol_send(s->st, s->buf, s->len, err);
            if (rc)
                return rc;
            s->len = 0;
        }
    }
    return 0;
}

static void sink_abort(struct gc_image_sink *s)
{
    if (!s)
        return;
    s->drv->vol_stream_abort(s->st);
    sink_free(s);
}

static int sink_finish(struct gc_image_sink *s, char *host, char *pool, char **path,
                       struct gc_error *err)
{
    int rc = s->len ? s->drv->vol_send(s->st, s->buf, s->len, err) : 0;
    if (rc) {
        sink_abort(s);
        return rc;
    }
    rc = s->drv->vol_stream_finish(s->st, path, err);
    snprintf(host, GC_ID_LEN + 1, "%s", s->host);
    snprintf(pool, 128, "%s", s->pool);
    sink_free(s);
    return rc;
}

static void sink_where(const struct gc_image_sink *s, char *host, char *pool)
{
    snprintf(host, GC_ID_LEN + 1, "%s", s->host);
    snprintf(pool, 128, "%s", s->pool);
}

static void delete_volume(const char *host, const char *pool, const char *volume)
{
    const struct gc_compute_driver *drv;
    struct gc_compute_conn *c;
    struct gc_error err = {0};
    if (gc_hostmgr_acquire(host, &drv, &c, &err) == 0) {
        if (drv->vol_delete(c, pool, volume, &err) != 0 && err.code != GC_ENOTFOUND)
            gc_warn("images", "cannot delete volume %s on host %s: %s", volume, host, err.msg);
        gc_hostmgr_release(host);
    } else {
        gc_warn("images", "volume %s left on host %s: %s", volume, host, err.msg);
    }
}

static const struct gc_image_store_ops store_ops = {
    .open = sink_open,
    .write = sink_write,
    .finish = sink_finish,
    .abort = sink_abort,
    .where = sink_where,
    .discard = delete_volume,
};

/* ---- distribution ---- */

static int exec1(const char *sql, const struct gc_val *args, size_t n, struct gc_error *err)
{
    struct gc_tx *tx;
    int rc = gc_tx_begin(the_store, GC_TX_WRITE, &tx, err);
    if (rc)
        return rc;
    rc = gc_tx_exec(tx, sql, args, n, NULL, err);
    if (rc) {
        gc_tx_rollback(tx);
        return rc;
    }
    return gc_tx_commit(tx, err);
}

struct image_rec {
    char sha[65], sm3[65];
    char store_host[GC_ID_LEN + 1], store_pool[128], volume[64];
    char copy_pool[128], copy_path[1100];
    bool have_copy;
};

static int load_image(const char *image, const char *host, struct image_rec *im,
                      struct gc_error *err)
{
    memset(im, 0, sizeof(*im));
    struct gc_tx *tx;
    int rc = gc_tx_begin(the_store, GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    struct gc_rows *r = NULL;
    rc = gc_tx_query(tx,
                     "SELECT i.sha256, i.sm3, i.store_host_id, i.store_pool, i.store_volume,"
                     " c.pool, c.path FROM images i LEFT JOIN image_copies c"
                     " ON c.image_id = i.id AND c.host_id = ? WHERE i.id = ?",
                     GC_ARGS(GC_VTXT(host), GC_VTXT(image)), &r, err);
    if (!rc && (rc = gc_rows_next(r, err)) > 0) {
        rc = 0;
        snprintf(im->sha, sizeof(im->sha), "%s", gc_rows_text(r, 0));
        snprintf(im->sm3, sizeof(im->sm3), "%s", gc_rows_text(r, 1));
        snprintf(im->store_host, sizeof(im->store_host), "%s", gc_rows_text(r, 2));
        snprintf(im->store_pool, sizeof(im->store_pool), "%s", gc_rows_text(r, 3));
        snprintf(im->volume, sizeof(im->volume), "%s", gc_rows_text(r, 4));
        im->have_copy = !gc_rows_null(r, 6);
        if (im->have_copy) {
            snprintf(im->copy_pool, sizeof(im->copy_pool), "%s", gc_rows_text(r, 5));
            snprintf(im->copy_path, sizeof(im->copy_path), "%s", gc_rows_text(r, 6));
        }
    } else if (rc == 0) {
        rc = gc_error_set(err, GC_ENOTFOUND, "image_id", "image %s is gone", image);
    }
    gc_rows_free(r);
    gc_tx_rollback(tx);
    return rc;
}

struct hasher {
    EVP_MD_CTX *sha, *sm3;
};

static int hasher_init(struct hasher *h, struct gc_error *err)
{
    h->sha = EVP_MD_CTX_new();
    h->sm3 = EVP_MD_CTX_new();
    if (!h->sha || !h->sm3 || EVP_DigestInit_ex(h->sha, EVP_sha256(), NULL) != 1 ||
        EVP_DigestInit_ex(h->sm3, EVP_sm3(), NULL) != 1)
        return gc_error_set(err, GC_EINTERNAL, "", "digest setup failed");
    return 0;
}

/* Finishes both digests and compares them with the image's. */
static int hasher_check(struct hasher *h, const struct image_rec *im, const char *what,
                        struct gc_error *err)
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int dl = 0;
    char sha[65] = "", sm3[65] = "";
    if (EVP_DigestFinal_ex(h->sha, d, &dl) == 1)
        gc_hex(d, dl, sha);
    if (EVP_DigestFinal_ex(h->sm3, d, &dl) == 1)
        gc_hex(d, dl, sm3);
    if (strcmp(sha, im->sha) != 0 || strcmp(sm3, im->sm3) != 0)
        return gc_error_set(err, GC_ECONFLICT, "image_id",
                            "%s does not match the image's checksums (SHA-256 %.12s…, SM3 "
                            "%.12s…, expected %.12s… and %.12s…); nothing boots from it",
                            what, sha, sm3, im->sha, im->sm3);
    return 0;
}

static void hasher_release(struct hasher *h)
{
    EVP_MD_CTX_free(h->sha);
    EVP_MD_CTX_free(h->sm3);
}

/* Reads a volume through the driver and hashes it; with to (an open upload) also writes
 * the bytes there. */
static int pump(const struct gc_compute_driver *drv, struct gc_vol_stream *from,
                const struct gc_compute_driver *tdrv, struct gc_vol_stream *to, struct hasher *h,
                int64_t *total, struct gc_error *err)
{
    unsigned char *buf = gc_malloc(CHUNK);
    int rc = 0;
    *total = 0;
    for (;;) {
        size_t got = 0;
        rc = drv->vol_recv(from, buf, CHUNK, &got, err);
        if (rc || got == 0)
            break;
        EVP_DigestUpdate(h->sha, buf, got);
        EVP_DigestUpdate(h->sm3, buf, got);
        *total += (int64_t)got;
        if (to && (rc = tdrv->vol_send(to, buf, got, err)))
            break;
    }
    free(buf);
    return rc;
}

/* Reads the copy on a host again and compares it with the image's checksums. */
static int verify_copy(const struct gc_compute_driver *drv, struct gc_compute_conn *c,
                       const char *pool, const char *volume, const struct image_rec *im,
                       const char *host, struct gc_error *err)
{
    struct hasher h = {0};
    struct gc_vol_stream *st = NULL;
    int64_t bytes = 0, total = 0;
    int rc = hasher_init(&h, err);
    if (!rc)
        rc = drv->vol_download_open(c, pool, volume, &bytes, &st, err);
    if (!rc) {
        rc = pump(drv, st, NULL, NULL, &h, &total, err);
        if (rc)
            drv->vol_stream_abort(st);
        else
            rc = drv->vol_stream_finish(st, NULL, err);
    }
    char what[200];
    snprintf(what, sizeof(what), "the copy of the image on host %s", host);
    if (!rc)
        rc = hasher_check(&h, im, what, err);
    hasher_release(&h);
    return rc;
}

/* Copies the image from the store host into pool of host, verifying it on the way. */
static int copy_image(const struct image_rec *im, const char *host,
                      const struct gc_compute_driver *tdrv, struct gc_compute_conn *tc,
                      const char *pool, char **path, struct gc_error *err)
{
    const struct gc_compute_driver *sdrv;
    struct gc_compute_conn *sc;
    int rc = gc_hostmgr_acquire(im->store_host, &sdrv, &sc, err);
    if (rc)
        return gc_error_set(err, rc, "", "the image store host %s is not connected: the image "
                                         "cannot be copied to host %s",
                            im->store_host, host);
    struct hasher h = {0};
    struct gc_vol_stream *from = NULL, *to = NULL;
    int64_t bytes = 0, total = 0; /* bytes: the capacity, for qcow2 its virtual size */
    rc = hasher_init(&h, err);
    if (!rc)
        rc = sdrv->vol_download_open(sc, im->store_pool, im->volume, &bytes, &from, err);
    if (!rc)
        rc = tdrv->vol_upload_open(tc, pool, im->volume, 0, &to, err);
    if (!rc)
        rc = pump(sdrv, from, tdrv, to, &h, &total, err);
    if (from) {
        if (rc)
            sdrv->vol_stream_abort(from);
        else
            rc = sdrv->vol_stream_finish(from, NULL, err);
    }
    if (!rc)
        rc = hasher_check(&h, im, "the copy from the image store", err);
    if (to) {
        if (rc)
            tdrv->vol_stream_abort(to);
        else
            rc = tdrv->vol_stream_finish(to, path, err);
    }
    hasher_release(&h);
    gc_hostmgr_release(im->store_host);
    if (!rc)
        gc_info("images", "copied volume %s (%lld bytes) from host %s to host %s", im->volume,
                (long long)total, im->store_host, host);
    return rc;
}

int gc_image_on_host(struct gc_job_run *job, const char *image, const char *host,
                     const struct gc_compute_driver *drv, struct gc_compute_conn *c, char **path,
                     struct gc_error *err)
{
    struct image_rec im;
    pthread_mutex_lock(&copy_lock);
    int rc = load_image(image, host, &im, err);
    if (!rc && im.have_copy) {
        gc_job_progress(job, 15, "verifying the image's copy on the host");
        rc = verify_copy(drv, c, im.copy_pool, im.volume, &im, host, err);
        if (!rc)
            *path = gc_strdup(im.copy_path);
        if (rc == GC_ENOTFOUND) { /* removed behind govcloud's back: copy it again */
            gc_error_clear(err);
            rc = 0;
            im.have_copy = false;
            struct gc_error e2 = {0};
            exec1("DELETE FROM image_copies WHERE image_id = ? AND host_id = ?",
                  GC_ARGS(GC_VTXT(image), GC_VTXT(host)), &e2);
        }
    }
    if (!rc && !im.have_copy && strcmp(host, im.store_host) == 0 &&
        strcmp(cfg->storage_pool, im.store_pool) == 0) {
        /* the stored volume itself is this host's copy (never copied onto itself) */
        gc_job_progress(job, 15, "verifying the stored image");
        rc = verify_copy(drv, c, im.store_pool, im.volume, &im, host, err);
        if (!rc)
            rc = drv->vol_path ? drv->vol_path(c, im.store_pool, im.volume, path, err)
                               : gc_error_set(err, GC_EUNSUPPORTED, "", "no vol_path");
        if (!rc)
            rc = exec1("INSERT OR REPLACE INTO image_copies (image_id, host_id, pool, volume,"
                       " path, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                       GC_ARGS(GC_VTXT(image), GC_VTXT(host), GC_VTXT(im.store_pool),
                               GC_VTXT(im.volume), GC_VTXT(*path), GC_VINT_(gc_now_ms())),
                       err);
    } else if (!rc && !im.have_copy) {
        gc_job_progress(job, 15, "copying the image from the image store to the host");
        rc = copy_image(&im, host, drv, c, cfg->storage_pool, path, err);
        /* what was sent was verified; what the host wrote is read back before use */
        if (!rc && (rc = verify_copy(drv, c, cfg->storage_pool, im.volume, &im, host, err))) {
            struct gc_error e2 = {0};
            drv->vol_delete(c, cfg->storage_pool, im.volume, &e2);
        }
        if (!rc)
            rc = exec1("INSERT OR REPLACE INTO image_copies (image_id, host_id, pool, volume,"
                       " path, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                       GC_ARGS(GC_VTXT(image), GC_VTXT(host), GC_VTXT(cfg->storage_pool),
                               GC_VTXT(im.volume), GC_VTXT(*path), GC_VINT_(gc_now_ms())),
                       err);
    }
    pthread_mutex_unlock(&copy_lock);
    return rc;
}

/* ---- image.purge: the volumes of a deleted uploaded image ---- */

static int image_purge(struct gc_job_run *job, const json_t *params, json_t **result,
                       struct gc_error *err)
{
    (void)job;
    (void)err;
    json_t *vols = json_object_get(params, "volumes");
    json_t *deleted = json_array(), *left = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(vols, i, v) {
        const char *host = json_string_value(json_object_get(v, "host_id"));
        const char *pool = json_string_value(json_object_get(v, "pool"));
        const char *vol = json_string_value(json_object_get(v, "volume"));
        if (!host || !pool || !vol)
            continue;
        const struct gc_compute_driver *drv;
        struct gc_compute_conn *c;
        struct gc_error e = {0};
        int rc = gc_hostmgr_acquire(host, &drv, &c, &e);
        if (!rc) {
            rc = drv->vol_delete(c, pool, vol, &e);
            gc_hostmgr_release(host);
        }
        if (rc == 0 || rc == GC_ENOTFOUND) {
            json_array_append_new(deleted, json_string(host));
        } else {
            gc_warn("images", "volume %s left in pool %s of host %s: %s", vol, pool, host,
                    e.msg);
            json_array_append_new(left, json_pack("{s:s,s:s,s:s,s:s}", "host_id", host, "pool",
                                                  pool, "volume", vol, "error", e.msg));
        }
    }
    *result = json_pack("{s:o,s:o}", "deleted_on", deleted, "left", left);
    return 0;
}

static const struct gc_job_kind purge_kind = {
    .name = "image.purge", .run = image_purge, .resumable = true};

void gc_imagestore_register(const struct gc_config *config, struct gc_store *st)
{
    cfg = config;
    the_store = st;
    gc_image_store = &store_ops;
    gc_job_register(&purge_kind);
}
