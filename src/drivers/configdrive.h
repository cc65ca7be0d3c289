/* Config drives: the small read-only disk through which cloud-init's NoCloud datasource (and
 * govcloud's tiny test guest) reads a VM's user data and metadata. Built in memory as an ISO
 * 9660 image by libisofs (Debian's libisofs-dev), so no temporary files or programs. */
#ifndef GC_CONFIGDRIVE_H
#define GC_CONFIGDRIVE_H

#include "util/error.h"

#include <stddef.h>

struct gc_cd_file {
    const char *name; /* e.g. "user-data": kept as is in the Rock Ridge and Joliet names */
    const void *data;
    size_t len;
};

/* An ISO 9660 image with Rock Ridge and Joliet names and volume identifier label, holding
 * files in its root directory. *out (malloc'd, caller frees) gets the image, *len its size
 * (a multiple of 2048). */
int gc_configdrive_iso(const char *label, const struct gc_cd_file *files, int n,
                       unsigned char **out, size_t *len, struct gc_error *err);

#endif
