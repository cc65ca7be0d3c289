/* Start-up registrations that make a fresh installation usable at once: the local
 * hypervisor host and a tiny bootable image with a flavor to match ([bootstrap] options).
 * They go through the same rules and audit trail as API calls, as the actor "system". */
#include "core/core.h"

#include "util/log.h"

#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

static bool exists(struct gc_store *st, const char *sql, const char *arg)
{
    struct gc_error err = {0};
    struct gc_tx *tx;
    int64_t n = 0;
    if (gc_tx_begin(st, GC_TX_READ, &tx, &err) != 0)
        return true; /* cannot tell: do nothing */
    int rc = gc_tx_query_int(tx, sql, GC_ARGS(GC_VTXT(arg)), &n, &err);
    gc_tx_rollback(tx);
    return rc != 0 || n > 0;
}

void gc_bootstrap_infra(struct gc_store *st, const struct gc_config *cfg)
{
    struct gc_principal system = {.role = GC_ROLE_PLATFORM_ADMIN};
    snprintf(system.username, sizeof(system.username), "system");
    struct gc_ctx ctx = {
        .store = st, .cfg = cfg, .who = &system, .request_id = "", .source_ip = ""};
    struct gc_error err = {0};
    json_t *out = NULL;
    const char *uri = cfg->bootstrap_host_uri;
    if (strcmp(uri, "none") != 0 && !exists(st, "SELECT COUNT(*) FROM hosts WHERE uri = ?", uri)) {
        json_t *in = json_pack("{s:s,s:s,s:s}", "name", "local", "uri", uri, "description",
                               "registered at start ([bootstrap] host_uri)");
        if (gc_host_create(&ctx, in, &out, &err) == 0)
            gc_info("bootstrap", "registered host 'local' (%s): %s", uri,
                    json_string_value(json_object_get(out, "state")));
        else
            gc_warn("bootstrap", "cannot register host %s: %s", uri, err.msg);
        json_decref(in);
        json_decref(out);
        out = NULL;
    }
    const char *dir = cfg->bootstrap_image_dir;
    if (strcmp(dir, "none") == 0)
        return;
    char kernel[4200], initrd[4200];
    snprintf(kernel, sizeof(kernel), "%s/vmlinuz", dir);
    snprintf(initrd, sizeof(initrd), "%s/initramfs.img", dir);
    if (access(kernel, R_OK) != 0 || access(initrd, R_OK) != 0) {
        gc_warn("bootstrap", "[bootstrap] image_dir %s has no readable vmlinuz and initramfs.img "
                             "(scripts/tiny-image DIR builds them)",
                dir);
        return;
    }
    struct utsname u;
    uname(&u);
    gc_error_clear(&err);
    if (!exists(st, "SELECT COUNT(*) FROM images WHERE name = ?", "tiny")) {
        json_t *in = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "name", "tiny", "kind", "kernel",
                               "kernel_path", kernel, "initrd_path", initrd, "arch", u.machine,
                               "cmdline", "console=ttyS0 govcloud.hostname=tiny");
        if (gc_image_create(&ctx, in, &out, &err) == 0)
            gc_info("bootstrap", "registered image 'tiny' from %s", dir);
        else
            gc_warn("bootstrap", "cannot register the tiny image: %s", err.msg);
        json_decref(in);
        json_decref(out);
        out = NULL;
    }
    gc_error_clear(&err);
    if (!exists(st, "SELECT COUNT(*) FROM flavors WHERE name = ?", "tiny")) {
        json_t *in = json_pack("{s:s,s:i,s:i,s:s}", "name", "tiny", "vcpus", 1, "memory_mib", 128,
                               "description", "for the tiny test image");
        if (gc_flavor_create(&ctx, in, &out, &err) != 0)
            gc_warn("bootstrap", "cannot create the tiny flavor: %s", err.msg);
        json_decref(in);
        json_decref(out);
    }
}
