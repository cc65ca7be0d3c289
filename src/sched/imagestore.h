/* The image store (imagestore.c): where uploaded images are kept, and how a host gets its
 * verified copy of one before a VM boots from it. */
#ifndef GC_IMAGESTORE_H
#define GC_IMAGESTORE_H

#include "core/core.h"
#include "drivers/compute.h"
#include "store/store.h"
#include "util/config.h"

/* Sets gc_image_store and registers the image.purge job kind. */
void gc_imagestore_register(const struct gc_config *cfg, struct gc_store *st);

/* Makes sure host (reached through drv and c) has a copy of the uploaded image whose
 * SHA-256 and SM3 match the image's: an existing copy is read and verified again, a missing
 * one is copied from the store host (verified on the way). *path (malloc'd) gets the copy's
 * path on the host. */
int gc_image_on_host(struct gc_job_run *job, const char *image, const char *host,
                     const struct gc_compute_driver *drv, struct gc_compute_conn *c, char **path,
                     struct gc_error *err);

#endif
