/* Config drive images (NoCloud "cidata") built with libisofs: files in memory in, ISO 9660
 * bytes out. libisofs writes the image from a thread of its own; we read it block by block
 * through the burn_source it hands out. */
#include "drivers/configdrive.h"

#include "util/mem.h"

#include <stdint.h> /* libisofs.h needs it first */
#include <sys/types.h>

#include <libisofs/libisofs.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* libisofs.h only declares it: the layout is libburn's (version 1, with read_xt). */
struct burn_source {
    int refcount;
    int (*read)(struct burn_source *, unsigned char *buffer, int size);
    int (*read_sub)(struct burn_source *, unsigned char *buffer, int size);
    off_t (*get_size)(struct burn_source *);
    int (*set_size)(struct burn_source *source, off_t size);
    void (*free_data)(struct burn_source *);
    struct burn_source *next;
    void *data;
    int version;
    int (*read_xt)(struct burn_source *, unsigned char *buffer, int size);
    int (*cancel)(struct burn_source *source);
};

static pthread_once_t iso_once = PTHREAD_ONCE_INIT;
static int iso_init_rc;

static void iso_start(void)
{
    iso_init_rc = iso_init();
    /* libisofs reports to stderr by default; errors come back as return codes */
    iso_set_msgs_severities((char *)"NEVER", (char *)"NEVER", (char *)"govcloud");
}

int gc_configdrive_iso(const char *label, const struct gc_cd_file *files, int n,
                       unsigned char **out, size_t *len, struct gc_error *err)
{
    *out = NULL;
    *len = 0;
    pthread_once(&iso_once, iso_start);
    if (iso_init_rc < 0)
        return gc_error_set(err, GC_EINTERNAL, "", "libisofs cannot start (%d)", iso_init_rc);
    IsoImage *img = NULL;
    IsoWriteOpts *opts = NULL;
    struct burn_source *bs = NULL;
    int rc = 0, r = iso_image_new(label, &img);
    if (r < 0) {
        rc = gc_error_set(err, GC_EINTERNAL, "", "cannot start an ISO image (%d)", r);
        goto cleanup;
    }
    iso_image_set_volume_id(img, label);
    IsoDir *root = iso_image_get_root(img);
    for (int i = 0; i < n; i++) {
        /* the stream owns a copy: libisofs frees it */
        unsigned char *copy = gc_malloc(files[i].len ? files[i].len : 1);
        if (files[i].len)
            memcpy(copy, files[i].data, files[i].len);
        IsoStream *st = NULL;
        IsoFile *f = NULL;
        r = iso_memory_stream_new(copy, files[i].len, &st);
        if (r < 0) {
            free(copy);
            rc = gc_error_set(err, GC_EINTERNAL, "", "cannot add %s to the ISO image (%d)",
                              files[i].name, r);
            goto cleanup;
        }
        /* the file takes the stream's reference */
        r = iso_image_add_new_file(img, root, files[i].name, st, &f);
        if (r < 0) {
            iso_stream_unref(st);
            rc = gc_error_set(err, GC_EINTERNAL, "", "cannot add %s to the ISO image (%d)",
                              files[i].name, r);
            goto cleanup;
        }
        iso_node_set_permissions((IsoNode *)f, 0444);
    }
    /* profile 0: plain ISO 9660 level 1; Rock Ridge and Joliet carry the real names
     * (user-data is not a valid ISO 9660 name). The volume id stays lowercase "cidata" as
     * genisoimage -V writes it (strict ISO 9660 would make it CIDATA) */
    if ((r = iso_write_opts_new(&opts, 0)) < 0 || (r = iso_write_opts_set_rockridge(opts, 1)) < 0 ||
        (r = iso_write_opts_set_joliet(opts, 1)) < 0 ||
        (r = iso_write_opts_set_relaxed_vol_atts(opts, 1)) < 0 ||
        (r = iso_image_create_burn_source(img, opts, &bs)) < 0) {
        rc = gc_error_set(err, GC_EINTERNAL, "", "cannot write the ISO image (%d)", r);
        bs = NULL;
        goto cleanup;
    }
    off_t size = bs->get_size(bs);
    if (size <= 0 || size > (off_t)64 << 20) {
        rc = gc_error_set(err, GC_EINTERNAL, "", "unexpected ISO image size %lld",
                          (long long)size);
        goto cleanup;
    }
    unsigned char *buf = gc_malloc((size_t)size);
    size_t got = 0;
    while (got < (size_t)size) {
        int k = bs->read_xt(bs, buf + got, 2048);
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    if (got != (size_t)size) {
        free(buf);
        rc = gc_error_set(err, GC_EINTERNAL, "", "the ISO image ended after %zu of %lld bytes",
                          got, (long long)size);
        goto cleanup;
    }
    *out = buf;
    *len = got;
cleanup:
    if (bs) {
        if (rc && bs->cancel)
            bs->cancel(bs);
        bs->free_data(bs);
        free(bs);
    }
    if (opts)
        iso_write_opts_free(opts);
    if (img)
        iso_image_unref(img);
    return rc;
}
