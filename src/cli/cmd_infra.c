/* The infrastructure commands: hosts, flavors, images, VMs, volumes, networks, security and
 * server groups, quotas. Tables over the generic commands of cmd_resource.c; only the
 * console and the quota view have code of their own. */
#include "cli/cmds.h"

#include "cli/http.h"
#include "util/error.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/banned.h" /* last: it redefines library names */

#define MAX_PATH_BYTES 4096

#define LIST_PAGING GC_CLI_LIST_PAGING
#define REF_OPT GC_CLI_REF_OPT

/* The department commands themselves take ids only. */
const struct gc_cli_resource gc_cli_dept_ref = {
    .noun = "department", .path = "/v1/departments", .by_name = true};
#define dept_ref gc_cli_dept_ref

static const struct gc_cli_opt if_match_opts[] = {GC_CLI_OPT_IF_MATCH, {0}};
static const struct gc_cli_opt wait_opts[] = {GC_CLI_OPT_WAIT, GC_CLI_OPT_TIMEOUT, {0}};

/* ---- hosts ---- */

static const struct gc_cli_col host_cols[] = {
    {"ID", "id", 0},       {"NAME", "name", 0},         {"ZONE", "zone", 0},
    {"STATE", "state", 0}, {"MAINTENANCE", "maintenance", 0}, {"ARCH", "arch", 0},
    {"CPUS", "cpus", 0},   {"MEMORY_MIB", "memory_mib", 0}, {"URI", "uri", 40},
    {0},
};
static const struct gc_cli_col pool_cols[] = {
    {"NAME", "name", 0}, {"STATE", "state", 0}, {"TYPE", "type", 0},
    {"CAPACITY_BYTES", "capacity_bytes", 0}, {"AVAILABLE_BYTES", "available_bytes", 0},
    {"PATH", "path", 0}, {0},
};
static const struct gc_cli_subtable host_subs[] = {{"storage_pools", pool_cols}, {0}};

static const struct gc_cli_resource host_res = {
    .noun = "host", .path = "/v1/hosts", .cols = host_cols, .by_name = true,
    .subtables = host_subs};

static const char *const host_state_choices[] = {"connected", "disconnected", NULL};

static const struct gc_cli_opt host_list_opts[] = {
    {.name = "zone", .type = GC_OPT_STRING, .metavar = "ZONE", .key = "zone",
     .help = "only hosts in this zone"},
    {.name = "state", .type = GC_OPT_CHOICE, .metavar = "STATE", .key = "state",
     .choices = host_state_choices, .help = "only connected or disconnected hosts"},
    {.name = "arch", .type = GC_OPT_STRING, .metavar = "ARCH", .key = "arch",
     .help = "only hosts of this architecture, e.g. x86_64"},
    {.name = "name", .type = GC_OPT_STRING, .metavar = "NAME", .key = "name",
     .help = "only the host with this name"},
    LIST_PAGING, {0},
};

static const struct gc_cli_opt host_register_opts[] = {
    {.name = "uri", .type = GC_OPT_STRING, .metavar = "URI", .key = "uri",
     .flags = GC_OPT_REQUIRED,
     .help = "libvirt connection URI, e.g. qemu+ssh://root@kvm01.example/system?no_tty=1"},
    {.name = "zone", .type = GC_OPT_STRING, .metavar = "ZONE", .key = "zone",
     .help = "availability zone, e.g. gz-a"},
    {.name = "description", .type = GC_OPT_STRING, .metavar = "TEXT", .key = "description",
     .help = "free text"},
    {0},
};

static const struct gc_cli_opt host_update_opts[] = {
    {.name = "name", .type = GC_OPT_STRING, .metavar = "NAME", .key = "name",
     .help = "new name"},
    {.name = "zone", .type = GC_OPT_STRING, .metavar = "ZONE", .key = "zone",
     .help = "new zone"},
    {.name = "description", .type = GC_OPT_STRING, .metavar = "TEXT", .key = "description",
     .help = "free text"},
    {.name = "maintenance", .type = GC_OPT_BOOL, .metavar = "on|off", .key = "maintenance",
     .help = "on: no new VMs or volumes are placed on the host; off: back in service"},
    GC_CLI_OPT_IF_MATCH, {0},
};

static const struct gc_cli_cmd host_list = {
    .name = "list", .summary = "List hypervisor hosts", .opts = host_list_opts,
    .run = gc_cli_res_list, .data = &host_res};
static const struct gc_cli_cmd host_get = {
    .name = "get", .summary = "Show one host with its discovered facts and storage pools",
    .posargs = "HOST", .npos = 1, .run = gc_cli_res_get, .data = &host_res};
static const struct gc_cli_cmd host_register = {
    .name = "register", .summary = "Register a host by its libvirt URI and connect to it",
    .posargs = "NAME", .npos = 1, .opts = host_register_opts, .run = gc_cli_res_create,
    .data = &host_res};
static const struct gc_cli_cmd host_update = {
    .name = "update", .summary = "Rename a host, change its zone, or put it in maintenance",
    .posargs = "HOST", .npos = 1, .opts = host_update_opts, .run = gc_cli_res_update,
    .data = &host_res};
static const struct gc_cli_cmd host_remove = {
    .name = "remove",
    .summary = "Remove a host from govcloud (it must have no VMs or volumes; the machine is "
               "not touched)",
    .posargs = "HOST", .npos = 1, .opts = if_match_opts, .run = gc_cli_res_delete,
    .data = &host_res};

static const struct gc_cli_action host_evacuate_act = {&host_res, "POST", "/evacuate", NULL, false, NULL};
static const struct gc_cli_cmd host_evacuate = {
    .name = "evacuate",
    .summary = "Move every VM off a host in maintenance to other hosts (a job)",
    .description = "Put the host in maintenance first (host update HOST --maintenance on). "
                   "VMs that cannot move stay and are listed in the job's result.",
    .posargs = "HOST", .npos = 1, .opts = wait_opts, .run = gc_cli_res_action,
    .data = &host_evacuate_act};

static const struct gc_cli_cmd *const host_subs_cmds[] = {
    &host_list, &host_get, &host_register, &host_update, &host_evacuate, &host_remove, NULL};

const struct gc_cli_cmd gc_cli_cmd_host = {
    .name = "host", .summary = "Manage hypervisor hosts (计算节点)",
    .description = "HOST is a host's name or id. For platform_admin and operator; auditor and "
                   "supervisor may read.",
    .subs = host_subs_cmds};

/* ---- flavors ---- */

static const struct gc_cli_col flavor_cols[] = {
    {"ID", "id", 0},          {"NAME", "name", 0},         {"VCPUS", "vcpus", 0},
    {"MEMORY_MIB", "memory_mib", 0}, {"DISK_GIB", "disk_gib", 0},
    {"DESCRIPTION", "description", 40}, {0},
};

static const struct gc_cli_resource flavor_res = {
    .noun = "flavor", .path = "/v1/flavors", .cols = flavor_cols, .by_name = true};

static const struct gc_cli_opt flavor_list_opts[] = {
    {.name = "name", .type = GC_OPT_STRING, .metavar = "NAME", .key = "name",
     .help = "only the flavor with this name"},
    LIST_PAGING, {0},
};

static const struct gc_cli_opt flavor_create_opts[] = {
    {.name = "vcpus", .type = GC_OPT_INT, .metavar = "N", .key = "vcpus", .min = 1, .max = 512,
     .flags = GC_OPT_REQUIRED, .help = "virtual CPUs"},
    {.name = "memory-mib", .type = GC_OPT_INT, .metavar = "MIB", .key = "memory_mib",
     .min = 64, .max = LLONG_MAX, .flags = GC_OPT_REQUIRED,
     .help = "memory in MiB, at least 64"},
    {.name = "disk-gib", .type = GC_OPT_INT, .metavar = "GIB", .key = "disk_gib", .min = 0,
     .max = 65536, .help = "root disk of VMs from disk images (default 0)"},
    {.name = "description", .type = GC_OPT_STRING, .metavar = "TEXT", .key = "description",
     .help = "free text"},
    {0},
};

static const struct gc_cli_cmd flavor_list = {
    .name = "list", .summary = "List flavors", .opts = flavor_list_opts,
    .run = gc_cli_res_list, .data = &flavor_res};
static const struct gc_cli_cmd flavor_get = {
    .name = "get", .summary = "Show one flavor", .posargs = "FLAVOR", .npos = 1,
    .run = gc_cli_res_get, .data = &flavor_res};
static const struct gc_cli_cmd flavor_create = {
    .name = "create", .summary = "Create a flavor", .posargs = "NAME", .npos = 1,
    .opts = flavor_create_opts, .run = gc_cli_res_create, .data = &flavor_res};
static const struct gc_cli_cmd flavor_delete = {
    .name = "delete", .summary = "Delete a flavor no VM uses", .posargs = "FLAVOR", .npos = 1,
    .opts = if_match_opts, .run = gc_cli_res_delete, .data = &flavor_res};

static const struct gc_cli_cmd *const flavor_subs[] = {&flavor_list, &flavor_get,
                                                       &flavor_create, &flavor_delete, NULL};

const struct gc_cli_cmd gc_cli_cmd_flavor = {
    .name = "flavor", .summary = "Manage flavors (规格): sizes of VMs",
    .description = "FLAVOR is a flavor's name or id. Everybody may read them; platform_admin "
                   "and operator create and delete them. Flavors cannot be changed.",
    .subs = flavor_subs};

/* ---- images ---- */

static const struct gc_cli_col image_cols[] = {
    {"ID", "id", 0},       {"NAME", "name", 0},   {"KIND", "kind", 0},
    {"STATE", "state", 0}, {"ARCH", "arch", 0},   {"FORMAT", "format", 0},
    {"SIZE_BYTES", "size_bytes", 0}, {0},
};

static const struct gc_cli_resource image_res = {
    .noun = "image", .path = "/v1/images", .cols = image_cols, .by_name = true};

static const char *const image_kind_choices[] = {"kernel", "disk", NULL};
static const char *const image_state_choices[] = {"importing", "active", "error", NULL};
static const char *const image_format_choices[] = {"raw", "qcow2", NULL};

static const struct gc_cli_opt image_list_opts[] = {
    {.name = "name", .type = GC_OPT_STRING, .metavar = "NAME", .key = "name",
     .help = "only the image with this name"},
    {.name = "kind", .type = GC_OPT_CHOICE, .metavar = "KIND", .key = "kind",
     .choices = image_kind_choices, .help = "only images of this kind"},
    {.name = "state", .type = GC_OPT_CHOICE, .metavar = "STATE", .key = "state",
     .choices = image_state_choices, .help = "only images in this state"},
    {.name = "arch", .type = GC_OPT_STRING, .metavar = "ARCH", .key = "arch",
     .help = "only images for this architecture"},
    LIST_PAGING, {0},
};

static const struct gc_cli_opt image_import_opts[] = {
    {.name = "kind", .type = GC_OPT_CHOICE, .metavar = "KIND", .key = "kind",
     .flags = GC_OPT_REQUIRED, .choices = image_kind_choices,
     .help = "kernel: a kernel and an initramfs booted directly; disk: a bootable disk image"},
    {.name = "arch", .type = GC_OPT_STRING, .metavar = "ARCH", .key = "arch",
     .flags = GC_OPT_REQUIRED, .help = "architecture it runs on, e.g. x86_64"},
    {.name = "kernel-path", .type = GC_OPT_STRING, .metavar = "PATH", .key = "kernel_path",
     .help = "kernel: absolute path of the kernel"},
    {.name = "initrd-path", .type = GC_OPT_STRING, .metavar = "PATH", .key = "initrd_path",
     .help = "kernel: absolute path of the initramfs"},
    {.name = "cmdline", .type = GC_OPT_STRING, .metavar = "TEXT", .key = "cmdline",
     .help = "kernel: command line (default console=ttyS0)"},
    {.name = "disk-path", .type = GC_OPT_STRING, .metavar = "PATH", .key = "disk_path",
     .help = "disk: absolute path of the disk image"},
    {.name = "format", .type = GC_OPT_CHOICE, .metavar = "FORMAT", .key = "format",
     .choices = image_format_choices, .help = "disk: format of the disk image"},
    {.name = "os-type", .type = GC_OPT_STRING, .metavar = "TYPE", .key = "os_type",
     .help = "operating system type (default linux)"},
    {.name = "min-disk-gib", .type = GC_OPT_INT, .metavar = "GIB", .key = "min_disk_gib",
     .min = 0, .max = 65536, .help = "smallest flavor disk it needs"},
    {.name = "min-memory-mib", .type = GC_OPT_INT, .metavar = "MIB", .key = "min_memory_mib",
     .min = 0, .max = LLONG_MAX, .help = "smallest flavor memory it needs"},
    GC_CLI_OPT_WAIT, GC_CLI_OPT_TIMEOUT, {0},
};

static const struct gc_cli_cmd image_list = {
    .name = "list", .summary = "List images", .opts = image_list_opts, .run = gc_cli_res_list,
    .data = &image_res};
static const struct gc_cli_cmd image_get = {
    .name = "get", .summary = "Show one image with its checksums", .posargs = "IMAGE",
    .npos = 1, .run = gc_cli_res_get, .data = &image_res};
static const struct gc_cli_cmd image_import = {
    .name = "import", .summary = "Register image files and check-sum them (a job)",
    .description = "The files must exist at the same absolute path on the management server "
                   "and on every host. The image is 'importing' until its image.import job "
                   "has computed the SHA-256 and SM3 checksums; with --wait the command "
                   "waits for that and shows the image, 'active' or 'error'.",
    .posargs = "NAME", .npos = 1, .opts = image_import_opts, .run = gc_cli_res_create,
    .data = &image_res};
static const struct gc_cli_cmd image_delete = {
    .name = "delete", .summary = "Delete an image no VM uses (its files stay)",
    .posargs = "IMAGE", .npos = 1, .opts = if_match_opts, .run = gc_cli_res_delete,
    .data = &image_res};

static const struct gc_cli_cmd *const image_subs[] = {&image_list, &image_get, &image_import,
                                                      &image_delete, NULL};

const struct gc_cli_cmd gc_cli_cmd_image = {
    .name = "image", .summary = "Manage images (镜像) that VMs boot",
    .description = "IMAGE is an image's name or id. Everybody may read them; platform_admin and "
                   "operator import and delete them.",
    .subs = image_subs};

/* ---- VMs ---- */

static const struct gc_cli_col vm_cols[] = {
    {"ID", "id", 0},       {"NAME", "name", 0},           {"STATE", "state", 0},
    {"POWER_STATE", "power_state", 0}, {"VCPUS", "vcpus", 0},
    {"MEMORY_MIB", "memory_mib", 0}, {"HOST_ID", "host_id", 0}, {"DRIFT", "drift", 40},
    {0},
};
static const struct gc_cli_col nic_cols[] = {
    {"NETWORK_ID", "network_id", 0}, {"MAC", "mac", 0}, {"IPV4", "ipv4", 0},
    {"IPV6", "ipv6", 0}, {0},
};
static const struct gc_cli_subtable vm_subs[] = {{"nics", nic_cols}, {0}};

static const struct gc_cli_resource vm_res = {
    .noun = "vm", .path = "/v1/vms", .cols = vm_cols, .by_name = true, .subtables = vm_subs};

static const struct gc_cli_col net_cols[] = {
    {"ID", "id", 0},          {"NAME", "name", 0},           {"MODE", "mode", 0},
    {"IPV4_CIDR", "ipv4_cidr", 0}, {"IPV6_CIDR", "ipv6_cidr", 0},
    {"DEPARTMENT_ID", "department_id", 0}, {"ADDRESSES_USED", "addresses_used", 0}, {0},
};
static const struct gc_cli_resource net_res = {
    .noun = "network", .path = "/v1/networks", .cols = net_cols, .by_name = true};

static const struct gc_cli_col sg_cols[] = {
    {"ID", "id", 0}, {"NAME", "name", 0}, {"DEPARTMENT_ID", "department_id", 0},
    {"VMS", "vms", 0}, {"DESCRIPTION", "description", 40}, {0},
};
static const struct gc_cli_col rule_cols[] = {
    {"ID", "id", 0},          {"DIRECTION", "direction", 0}, {"PROTOCOL", "protocol", 0},
    {"PORT_MIN", "port_min", 0}, {"PORT_MAX", "port_max", 0}, {"CIDR", "cidr", 0}, {0},
};
static const struct gc_cli_subtable sg_subs[] = {{"rules", rule_cols}, {0}};
static const struct gc_cli_resource sg_res = {
    .noun = "security group", .path = "/v1/security-groups", .cols = sg_cols, .by_name = true,
    .subtables = sg_subs};

/* the API has no name filter for server groups and volumes: ids only */
static const struct gc_cli_col sgroup_cols[] = {
    {"ID", "id", 0}, {"NAME", "name", 0}, {"POLICY", "policy", 0},
    {"DEPARTMENT_ID", "department_id", 0}, {"MEMBERS", "members", 0}, {0},
};
static const struct gc_cli_resource sgroup_res = {
    .noun = "server group", .path = "/v1/server-groups", .cols = sgroup_cols};

static const char *const vm_state_choices[] = {"building", "running", "stopped", "error",
                                               "deleting", NULL};

static const struct gc_cli_opt vm_list_opts[] = {
    REF_OPT("department", "department_id", dept_ref,
            "only VMs of this department (name or id)", 0),
    REF_OPT("host", "host_id", host_res, "only VMs on this host (name or id)", 0),
    {.name = "state", .type = GC_OPT_CHOICE, .metavar = "STATE", .key = "state",
     .choices = vm_state_choices, .help = "only VMs in this state"},
    {.name = "name", .type = GC_OPT_STRING, .metavar = "NAME", .key = "name",
     .help = "only VMs with this name"},
    LIST_PAGING, {0},
};

static const struct gc_cli_opt vm_create_opts[] = {
    REF_OPT("flavor", "flavor_id", flavor_res, "its size", GC_OPT_REQUIRED),
    REF_OPT("image", "image_id", image_res, "what it boots (an active image)",
            GC_OPT_REQUIRED),
    {.name = "network", .type = GC_OPT_STRING, .metavar = "NET[,NET...]", .key = "networks",
     .ref = &net_res, .flags = GC_OPT_LIST,
     .help = "networks (names or ids, comma-separated, at most 4), one interface each in this "
             "order"},
    {.name = "security-group", .type = GC_OPT_STRING, .metavar = "SG[,SG...]",
     .key = "security_groups", .ref = &sg_res, .flags = GC_OPT_LIST,
     .help = "security groups (names or ids, comma-separated, at most 8)"},
    {.name = "zone", .type = GC_OPT_STRING, .metavar = "ZONE", .key = "zone",
     .help = "place it on a host of this zone"},
    {.name = "server-group", .type = GC_OPT_STRING, .metavar = "ID", .key = "server_group_id",
     .help = "server group (id) whose affinity or anti-affinity placement follows"},
    REF_OPT("department", "department_id", dept_ref,
            "its department (name or id); department roles: default their own, platform roles "
            "must give it", 0),
    REF_OPT("host", "host_id", host_res, "platform roles: put it on this host", 0),
    {.name = "no-start", .type = GC_OPT_FLAG, .key = "start", .flags = GC_OPT_SENDS_FALSE,
     .help = "define it but do not start it"},
    GC_CLI_OPT_WAIT, GC_CLI_OPT_TIMEOUT, {0},
};

static const struct gc_cli_opt vm_stop_opts[] = {
    {.name = "force", .type = GC_OPT_FLAG, .key = "force", .flags = GC_OPT_QUERY,
     .help = "power it off at once instead of pressing the power button first"},
    GC_CLI_OPT_WAIT, GC_CLI_OPT_TIMEOUT, {0},
};

static const struct gc_cli_opt vm_resize_opts[] = {
    REF_OPT("flavor", "flavor_id", flavor_res, "the new flavor (disk_gib the same or larger: the root disk grows)",
            GC_OPT_REQUIRED),
    GC_CLI_OPT_WAIT, GC_CLI_OPT_TIMEOUT, {0},
};

static const struct gc_cli_action vm_start_act = {&vm_res, "POST", "/start", NULL, false, NULL};
static const struct gc_cli_action vm_stop_act = {&vm_res, "POST", "/stop", NULL, false, NULL};
static const struct gc_cli_action vm_reboot_act = {&vm_res, "POST", "/reboot", NULL, false, NULL};
static const struct gc_cli_action vm_resize_act = {&vm_res, "POST", "/resize", NULL, false, NULL};
static const struct gc_cli_action vm_migrate_act = {&vm_res, "POST", "/migrate", NULL, true, NULL};

static const struct gc_cli_opt vm_migrate_opts[] = {
    REF_OPT("host", "host_id", host_res,
            "the destination (name or id); without it, placement chooses in the VM's zone", 0),
    GC_CLI_OPT_WAIT, GC_CLI_OPT_TIMEOUT, {0},
};

/* Prints the serial console log: as it is into a pipe or a file; on a terminal with
 * control characters replaced, because a guest can print anything. */
static int console_run(struct gc_cli *cli, const struct gc_cli_cmd *cmd,
                       const struct gc_cli_args *args)
{
    struct gc_buf path;
    char *id = NULL;
    struct gc_cli_resp resp = {0};
    int rc;
    (void)cmd;

    gc_buf_init(&path, MAX_PATH_BYTES);
    rc = gc_cli_resolve(cli, &vm_res, args->pos[0], &id);
    if (rc == GC_CLI_OK)
        rc = gc_cli_id_path(cli, &path, vm_res.path, id, "/console");
    if (rc == GC_CLI_OK) {
        struct gc_cli_req req = {.method = "GET", .path = gc_buf_str(&path), .text = true};
        rc = gc_cli_http(cli, &req, &resp);
    }
    if (rc != GC_CLI_OK)
        goto cleanup;
    if (cli->output == GC_CLI_OUT_JSON) {
        json_t *o = json_pack("{s:s,s:s%}", "vm_id", id, "console", resp.text, resp.text_len);
        if (!o) {
            rc = gc_cli_fail(GC_CLI_EFAIL, "the server's console text is not UTF-8");
            goto cleanup;
        }
        gc_cli_print_json(stdout, o);
        json_decref(o);
    } else if (cli->stdout_tty) {
        struct gc_buf out;
        gc_buf_init(&out, GC_BUF_UNLIMITED);
        if (gc_cli_sanitize_text(&out, resp.text, resp.text_len) != 0)
            GC_BUG("unlimited buffer refused data");
        fwrite(gc_buf_str(&out), 1, out.len, stdout);
        gc_buf_release(&out);
    } else {
        fwrite(resp.text, 1, resp.text_len, stdout);
    }

cleanup:
    gc_cli_resp_release(&resp);
    free(id);
    gc_buf_release(&path);
    return rc;
}

static const struct gc_cli_cmd vm_list = {
    .name = "list", .summary = "List virtual machines", .opts = vm_list_opts,
    .run = gc_cli_res_list, .data = &vm_res};
static const struct gc_cli_cmd vm_get = {
    .name = "get", .summary = "Show one VM with its interfaces", .posargs = "VM", .npos = 1,
    .run = gc_cli_res_get, .data = &vm_res};
static const struct gc_cli_cmd vm_create = {
    .name = "create", .summary = "Create a VM (a job): placed, defined and started",
    .description = "NAME is the new VM's name, unique in its department (letters, digits, "
                   "'.', '_', '-'). Prints the vm.create job (its resource_id is the VM's id); "
                   "with --wait, follows it and shows the VM.",
    .posargs = "NAME", .npos = 1, .opts = vm_create_opts, .run = gc_cli_res_create,
    .data = &vm_res};
static const struct gc_cli_cmd vm_start = {
    .name = "start", .summary = "Start a stopped VM (a job)", .posargs = "VM", .npos = 1,
    .opts = wait_opts, .run = gc_cli_res_action, .data = &vm_start_act};
static const struct gc_cli_cmd vm_stop = {
    .name = "stop",
    .summary = "Stop a VM (a job): the power button, then forced off after [compute] "
               "stop_timeout",
    .posargs = "VM", .npos = 1, .opts = vm_stop_opts, .run = gc_cli_res_action,
    .data = &vm_stop_act};
static const struct gc_cli_cmd vm_reboot = {
    .name = "reboot", .summary = "Reboot a running VM, or start a stopped one (a job)",
    .posargs = "VM", .npos = 1, .opts = wait_opts, .run = gc_cli_res_action,
    .data = &vm_reboot_act};
static const struct gc_cli_cmd vm_resize = {
    .name = "resize", .summary = "Give a stopped VM another flavor (a job)", .posargs = "VM",
    .npos = 1, .opts = vm_resize_opts, .run = gc_cli_res_action, .data = &vm_resize_act};
static const struct gc_cli_cmd vm_migrate = {
    .name = "migrate",
    .summary = "Move a VM to another host (a job): live while it runs, copied when stopped",
    .description = "For platform_admin and operator. The VM is 'migrating' until the job ends; "
                   "if the move fails it stays where it was.",
    .posargs = "VM", .npos = 1, .opts = vm_migrate_opts, .run = gc_cli_res_action,
    .data = &vm_migrate_act};
static const struct gc_cli_cmd vm_delete = {
    .name = "delete",
    .summary = "Delete a VM (a job): its domain, root disk and addresses; volumes are kept",
    .posargs = "VM", .npos = 1, .opts = wait_opts, .run = gc_cli_res_delete, .data = &vm_res};
static const struct gc_cli_cmd vm_console = {
    .name = "console", .summary = "Print the VM's serial console log (the last 64 KiB)",
    .description = "Only for VMs on hosts on the management server. Into a pipe or a file the "
                   "text is written as the server sends it; on a terminal control characters "
                   "are shown as '?'.",
    .posargs = "VM", .npos = 1, .run = console_run};

static const struct gc_cli_cmd *const vm_subs_cmds[] = {
    &vm_list,  &vm_get,    &vm_create, &vm_start,   &vm_stop,
    &vm_reboot, &vm_resize, &vm_migrate, &vm_delete, &vm_console, NULL};

const struct gc_cli_cmd gc_cli_cmd_vm = {
    .name = "vm", .summary = "Manage virtual machines (云主机)",
    .description = "VM is a VM's name or id; a name must be unique among the VMs you can see. "
                   "Department roles work on their department's VMs.",
    .subs = vm_subs_cmds};

/* ---- volumes ---- */

static const struct gc_cli_col vol_cols[] = {
    {"ID", "id", 0},       {"NAME", "name", 0},     {"SIZE_GIB", "size_gib", 0},
    {"STATE", "state", 0}, {"VM_ID", "vm_id", 0},   {"TARGET", "target", 0},
    {"HOST_ID", "host_id", 0}, {0},
};
static const struct gc_cli_resource vol_res = {
    .noun = "volume", .path = "/v1/volumes", .cols = vol_cols};

static const char *const vol_state_choices[] = {"creating", "available", "in-use", "error",
                                                "deleting", NULL};

static const struct gc_cli_opt vol_list_opts[] = {
    REF_OPT("department", "department_id", dept_ref,
            "only volumes of this department (name or id)", 0),
    REF_OPT("vm", "vm_id", vm_res, "only volumes attached to this VM (name or id)", 0),
    {.name = "state", .type = GC_OPT_CHOICE, .metavar = "STATE", .key = "state",
     .choices = vol_state_choices, .help = "only volumes in this state"},
    LIST_PAGING, {0},
};

#define SIZE_OPT(helptext)                                                                 \
    {.name = "size-gib", .type = GC_OPT_INT, .metavar = "GIB", .key = "size_gib", .min = 1,  \
     .max = 65536, .flags = GC_OPT_REQUIRED, .help = helptext}

static const struct gc_cli_opt vol_create_opts[] = {
    SIZE_OPT("size in GiB"),
    REF_OPT("department", "department_id", dept_ref,
            "its department (name or id); platform roles must give it", 0),
    REF_OPT("vm", "vm_id", vm_res, "create it on this VM's host and attach it there", 0),
    REF_OPT("host", "host_id", host_res, "platform roles: create it on this host", 0),
    GC_CLI_OPT_WAIT, GC_CLI_OPT_TIMEOUT, {0},
};

static const struct gc_cli_opt vol_attach_opts[] = {
    REF_OPT("vm", "vm_id", vm_res, "the VM (on the volume's host)", GC_OPT_REQUIRED),
    GC_CLI_OPT_WAIT, GC_CLI_OPT_TIMEOUT, {0},
};

static const struct gc_cli_opt vol_resize_opts[] = {
    SIZE_OPT("the new, larger size in GiB"), GC_CLI_OPT_WAIT, GC_CLI_OPT_TIMEOUT, {0},
};

static const struct gc_cli_action vol_attach_act = {&vol_res, "POST", "/attach", NULL, false, NULL};
static const struct gc_cli_action vol_detach_act = {&vol_res, "POST", "/detach", NULL, false, NULL};
static const struct gc_cli_action vol_resize_act = {&vol_res, "POST", "/resize", NULL, false, NULL};

static const struct gc_cli_cmd vol_list = {
    .name = "list", .summary = "List volumes", .opts = vol_list_opts, .run = gc_cli_res_list,
    .data = &vol_res};
static const struct gc_cli_cmd vol_get = {
    .name = "get", .summary = "Show one volume", .posargs = "ID", .npos = 1,
    .run = gc_cli_res_get, .data = &vol_res};
static const struct gc_cli_cmd vol_create = {
    .name = "create", .summary = "Create a volume (a job), optionally attached to a VM",
    .posargs = "NAME", .npos = 1, .opts = vol_create_opts, .run = gc_cli_res_create,
    .data = &vol_res};
static const struct gc_cli_cmd vol_attach = {
    .name = "attach", .summary = "Attach a volume to a VM (a job)", .posargs = "ID", .npos = 1,
    .opts = vol_attach_opts, .run = gc_cli_res_action, .data = &vol_attach_act};
static const struct gc_cli_cmd vol_detach = {
    .name = "detach", .summary = "Detach a volume from its VM (a job)", .posargs = "ID",
    .npos = 1, .opts = wait_opts, .run = gc_cli_res_action, .data = &vol_detach_act};
static const struct gc_cli_cmd vol_resize = {
    .name = "resize", .summary = "Grow a detached volume (a job)", .posargs = "ID", .npos = 1,
    .opts = vol_resize_opts, .run = gc_cli_res_action, .data = &vol_resize_act};
static const struct gc_cli_cmd vol_delete = {
    .name = "delete", .summary = "Delete a detached volume (a job)", .posargs = "ID",
    .npos = 1, .opts = wait_opts, .run = gc_cli_res_delete, .data = &vol_res};

static const struct gc_cli_cmd *const vol_subs[] = {&vol_list,   &vol_get,    &vol_create,
                                                    &vol_attach, &vol_detach, &vol_resize,
                                                    &vol_delete, NULL};

const struct gc_cli_cmd gc_cli_cmd_volume = {
    .name = "volume", .summary = "Manage volumes (云硬盘): data disks of VMs",
    .description = "Volumes are named by id (the API cannot look them up by name); VMs, hosts "
                   "and departments in the options by name or id.",
    .subs = vol_subs};

/* ---- networks ---- */

static const char *const net_mode_choices[] = {"nat", "isolated", "bridge", NULL};

static const struct gc_cli_opt net_list_opts[] = {
    {.name = "name", .type = GC_OPT_STRING, .metavar = "NAME", .key = "name",
     .help = "only the network with this name"},
    {.name = "mode", .type = GC_OPT_CHOICE, .metavar = "MODE", .key = "mode",
     .choices = net_mode_choices, .help = "only networks of this mode"},
    LIST_PAGING, {0},
};

static const struct gc_cli_opt net_create_opts[] = {
    {.name = "mode", .type = GC_OPT_CHOICE, .metavar = "MODE", .key = "mode",
     .flags = GC_OPT_REQUIRED, .choices = net_mode_choices,
     .help = "nat: own bridge, masqueraded; isolated: no forwarding; bridge: an existing host "
             "bridge"},
    {.name = "ipv4-cidr", .type = GC_OPT_STRING, .metavar = "CIDR", .key = "ipv4_cidr",
     .flags = GC_OPT_REQUIRED, .help = "IPv4 network, prefix 8-29, e.g. 10.20.0.0/24"},
    {.name = "ipv6-cidr", .type = GC_OPT_STRING, .metavar = "CIDR", .key = "ipv6_cidr",
     .help = "IPv6 network, prefix 64-120, e.g. fd00:20::/64"},
    {.name = "bridge", .type = GC_OPT_STRING, .metavar = "BRIDGE", .key = "bridge",
     .help = "bridge mode: the host bridge, e.g. br-vlan120"},
    REF_OPT("department", "department_id", dept_ref,
            "the department (name or id) whose tree may use it; omit or 'none' for a shared "
            "network", GC_OPT_NULLABLE),
    {.name = "description", .type = GC_OPT_STRING, .metavar = "TEXT", .key = "description",
     .help = "free text"},
    {0},
};

static const struct gc_cli_cmd net_list = {
    .name = "list", .summary = "List networks", .opts = net_list_opts, .run = gc_cli_res_list,
    .data = &net_res};
static const struct gc_cli_cmd net_get = {
    .name = "get", .summary = "Show one network", .posargs = "NETWORK", .npos = 1,
    .run = gc_cli_res_get, .data = &net_res};
static const struct gc_cli_cmd net_create = {
    .name = "create", .summary = "Create a network", .posargs = "NAME", .npos = 1,
    .opts = net_create_opts, .run = gc_cli_res_create, .data = &net_res};
static const struct gc_cli_cmd net_delete = {
    .name = "delete", .summary = "Delete a network no VM uses (removed from the hosts by a job)",
    .posargs = "NETWORK", .npos = 1, .opts = if_match_opts, .run = gc_cli_res_delete,
    .data = &net_res};

static const struct gc_cli_cmd *const net_subs[] = {&net_list, &net_get, &net_create,
                                                    &net_delete, NULL};

const struct gc_cli_cmd gc_cli_cmd_network = {
    .name = "network", .summary = "Manage networks (网络)",
    .description = "NETWORK is a network's name or id. platform_admin and operator create and "
                   "delete them; everybody sees the ones they may use.",
    .subs = net_subs};

/* ---- security groups ---- */

static const char *const direction_choices[] = {"ingress", "egress", NULL};
static const char *const protocol_choices[] = {"tcp", "udp", "icmp", "all", NULL};

static const struct gc_cli_opt sg_list_opts[] = {
    {.name = "name", .type = GC_OPT_STRING, .metavar = "NAME", .key = "name",
     .help = "only groups with this name"},
    LIST_PAGING, {0},
};

static const struct gc_cli_opt sg_create_opts[] = {
    REF_OPT("department", "department_id", dept_ref,
            "its department (name or id); department roles: default their own; 'none' for a "
            "shared group (platform roles)", GC_OPT_NULLABLE),
    {.name = "description", .type = GC_OPT_STRING, .metavar = "TEXT", .key = "description",
     .help = "free text"},
    {0},
};

static const struct gc_cli_opt rule_add_opts[] = {
    {.name = "direction", .type = GC_OPT_CHOICE, .metavar = "DIR", .key = "direction",
     .flags = GC_OPT_REQUIRED, .choices = direction_choices,
     .help = "ingress: traffic to the VM; egress: traffic from it"},
    {.name = "protocol", .type = GC_OPT_CHOICE, .metavar = "PROTO", .key = "protocol",
     .flags = GC_OPT_REQUIRED, .choices = protocol_choices, .help = "protocol"},
    {.name = "port", .type = GC_OPT_INT, .metavar = "PORT", .key = "port_min", .min = 1,
     .max = 65535, .help = "tcp, udp: the port, or the first of a range"},
    {.name = "port-max", .type = GC_OPT_INT, .metavar = "PORT", .key = "port_max", .min = 1,
     .max = 65535, .help = "tcp, udp: the last port of a range (default: --port)"},
    {.name = "cidr", .type = GC_OPT_STRING, .metavar = "CIDR", .key = "cidr",
     .flags = GC_OPT_REQUIRED, .help = "the remote network, e.g. 10.0.0.0/8 or ::/0"},
    {0},
};

static const struct gc_cli_action rule_add_act = {&sg_res, "POST", "/rules", NULL, false, NULL};
static const struct gc_cli_action rule_remove_act = {&sg_res, "DELETE", "/rules",
                                                     "removed rule", false, NULL};

static const struct gc_cli_cmd rule_add = {
    .name = "add", .summary = "Add a rule to a security group", .posargs = "GROUP", .npos = 1,
    .opts = rule_add_opts, .run = gc_cli_res_action, .data = &rule_add_act};
static const struct gc_cli_cmd rule_remove = {
    .name = "remove", .summary = "Remove a rule from a security group",
    .posargs = "GROUP RULE_ID", .npos = 2, .run = gc_cli_res_action, .data = &rule_remove_act};

static const struct gc_cli_cmd *const rule_subs[] = {&rule_add, &rule_remove, NULL};

static const struct gc_cli_cmd sg_rule = {
    .name = "rule", .summary = "Add or remove rules",
    .description = "A change is applied to the group's VMs on their hosts by a "
                   "security_group.apply job.",
    .subs = rule_subs};
static const struct gc_cli_cmd sg_list = {
    .name = "list", .summary = "List security groups", .opts = sg_list_opts,
    .run = gc_cli_res_list, .data = &sg_res};
static const struct gc_cli_cmd sg_get = {
    .name = "get", .summary = "Show one security group with its rules", .posargs = "GROUP",
    .npos = 1, .run = gc_cli_res_get, .data = &sg_res};
static const struct gc_cli_cmd sg_create = {
    .name = "create", .summary = "Create a security group (without rules: add them after)",
    .posargs = "NAME", .npos = 1, .opts = sg_create_opts, .run = gc_cli_res_create,
    .data = &sg_res};
static const struct gc_cli_cmd sg_delete = {
    .name = "delete", .summary = "Delete a security group no VM uses", .posargs = "GROUP",
    .npos = 1, .opts = if_match_opts, .run = gc_cli_res_delete, .data = &sg_res};

static const struct gc_cli_cmd *const sg_subs_cmds[] = {&sg_list,   &sg_get, &sg_create,
                                                        &sg_delete, &sg_rule, NULL};

const struct gc_cli_cmd gc_cli_cmd_security_group = {
    .name = "security-group", .summary = "Manage security groups (安全组) and their rules",
    .description = "GROUP is a group's name or id.", .subs = sg_subs_cmds};

/* ---- server groups ---- */

static const char *const policy_choices[] = {"affinity", "anti-affinity", NULL};

static const struct gc_cli_opt sgroup_list_opts[] = {
    REF_OPT("department", "department_id", dept_ref,
            "only groups of this department (name or id)", 0),
    LIST_PAGING, {0},
};

static const struct gc_cli_opt sgroup_create_opts[] = {
    {.name = "policy", .type = GC_OPT_CHOICE, .metavar = "POLICY", .key = "policy",
     .flags = GC_OPT_REQUIRED, .choices = policy_choices,
     .help = "anti-affinity: each member on another host; affinity: all on one host"},
    REF_OPT("department", "department_id", dept_ref,
            "its department (name or id); department roles: default their own", 0),
    {0},
};

static const struct gc_cli_cmd sgroup_list = {
    .name = "list", .summary = "List server groups", .opts = sgroup_list_opts,
    .run = gc_cli_res_list, .data = &sgroup_res};
static const struct gc_cli_cmd sgroup_get = {
    .name = "get", .summary = "Show one server group", .posargs = "ID", .npos = 1,
    .run = gc_cli_res_get, .data = &sgroup_res};
static const struct gc_cli_cmd sgroup_create = {
    .name = "create", .summary = "Create a server group", .posargs = "NAME", .npos = 1,
    .opts = sgroup_create_opts, .run = gc_cli_res_create, .data = &sgroup_res};
static const struct gc_cli_cmd sgroup_delete = {
    .name = "delete", .summary = "Delete a server group without members", .posargs = "ID",
    .npos = 1, .opts = if_match_opts, .run = gc_cli_res_delete, .data = &sgroup_res};

static const struct gc_cli_cmd *const sgroup_subs[] = {&sgroup_list, &sgroup_get,
                                                       &sgroup_create, &sgroup_delete, NULL};

const struct gc_cli_cmd gc_cli_cmd_server_group = {
    .name = "server-group", .summary = "Manage server groups (亲和组): placement rules",
    .description = "Server groups are named by id (the API cannot look them up by name). A VM "
                   "joins one when it is created: 'vm create --server-group ID'.",
    .subs = sgroup_subs};

/* ---- quotas ---- */

static const char *const quota_keys[] = {"vms", "vcpus", "memory_mib", "disk_gib", "volumes",
                                         "public_ips", NULL};

/* One row per limit: RESOURCE LIMIT USAGE AVAILABLE, after the department and version. */
static void show_quota(const struct gc_cli *cli, const json_t *q)
{
    if (cli->output == GC_CLI_OUT_JSON) {
        gc_cli_print_json(stdout, q);
        return;
    }
    static const char *const skip[] = {"limits", "usage", "available", NULL};
    static const struct gc_cli_col cols[] = {
        {"RESOURCE", "resource", 0}, {"LIMIT", "limit", 0}, {"USAGE", "usage", 0},
        {"AVAILABLE", "available", 0}, {0},
    };
    json_t *rows = json_array();
    for (size_t i = 0; quota_keys[i]; i++) {
        json_t *r = json_object();
        json_object_set_new(r, "resource", json_string(quota_keys[i]));
        json_object_set(r, "limit", json_object_get(json_object_get(q, "limits"), quota_keys[i]));
        json_object_set(r, "usage", json_object_get(json_object_get(q, "usage"), quota_keys[i]));
        json_object_set(r, "available",
                        json_object_get(json_object_get(q, "available"), quota_keys[i]));
        json_array_append_new(rows, r);
    }
    gc_cli_print_object_skip(stdout, q, skip);
    printf("\n");
    gc_cli_print_table(stdout, cols, rows);
    json_decref(rows);
}

static int quota_run(struct gc_cli *cli, const struct gc_cli_cmd *cmd,
                     const struct gc_cli_args *args)
{
    bool set = cmd->opts != NULL;
    json_t *body = json_object(), *q = NULL;
    struct gc_buf path;
    char *id = NULL;
    char ver[32];
    int rc = GC_CLI_OK;

    gc_buf_init(&path, MAX_PATH_BYTES);
    for (int i = 0; set && cmd->opts[i].name; i++) {
        const struct gc_cli_opt *o = &cmd->opts[i];
        const char *v = args->val[i];
        if (!o->key || !v)
            continue;
        json_object_set_new(body, o->key, strcmp(v, "none") == 0
                                              ? json_null()
                                              : json_integer(strtoll(v, NULL, 10)));
    }
    if (set && json_object_size(body) == 0)
        rc = gc_cli_usage_error(cli, "nothing to set: give at least one limit option");
    if (rc == GC_CLI_OK)
        rc = gc_cli_resolve(cli, &dept_ref, args->pos[0], &id);
    if (rc == GC_CLI_OK)
        rc = gc_cli_id_path(cli, &path, dept_ref.path, id, "/quota");
    if (rc != GC_CLI_OK)
        goto cleanup;
    if (set) {
        const char *im = gc_cli_arg(cmd, args, "if-match");
        if (im)
            snprintf(ver, sizeof(ver), "%lld", strtoll(im, NULL, 10));
        struct gc_cli_resp resp;
        struct gc_cli_req req = {.method = "PUT", .path = gc_buf_str(&path), .body = body,
                                 .if_match = im ? ver : NULL};
        rc = gc_cli_http(cli, &req, &resp);
        q = resp.json;
        resp.json = NULL;
        gc_cli_resp_release(&resp);
    } else {
        rc = gc_cli_get_object(cli, gc_buf_str(&path), &q);
    }
    if (rc == GC_CLI_OK && !json_is_object(q))
        rc = gc_cli_fail(GC_CLI_EFAIL, "the server's quota answer is not a JSON object");
    if (rc == GC_CLI_OK)
        show_quota(cli, q);

cleanup:
    json_decref(q);
    json_decref(body);
    free(id);
    gc_buf_release(&path);
    return rc;
}

#define LIMIT_OPT(optname, jsonkey, helptext)                                               \
    {.name = optname, .type = GC_OPT_INT, .metavar = "N|none", .key = jsonkey, .min = 0,     \
     .max = LLONG_MAX, .flags = GC_OPT_NULLABLE, .help = helptext}

static const struct gc_cli_opt quota_set_opts[] = {
    LIMIT_OPT("vms", "vms", "virtual machines"),
    LIMIT_OPT("vcpus", "vcpus", "virtual CPUs"),
    LIMIT_OPT("memory-mib", "memory_mib", "memory of the VMs in MiB"),
    LIMIT_OPT("disk-gib", "disk_gib", "root disks and volumes in GiB"),
    LIMIT_OPT("volumes", "volumes", "volumes"),
    LIMIT_OPT("public-ips", "public_ips", "public addresses (stored, not enforced yet)"),
    GC_CLI_OPT_IF_MATCH, {0},
};

static const struct gc_cli_cmd quota_show = {
    .name = "show", .summary = "Show a department's limits, its subtree's usage and the room left",
    .posargs = "DEPARTMENT", .npos = 1, .run = quota_run};
static const struct gc_cli_cmd quota_set = {
    .name = "set", .summary = "Set a department's limits (only those given change)",
    .description = "'none' removes a limit. A limit may be set below the current usage: "
                   "nothing is taken away, new requests are refused.",
    .posargs = "DEPARTMENT", .npos = 1, .opts = quota_set_opts, .run = quota_run};

static const struct gc_cli_cmd *const quota_subs[] = {&quota_show, &quota_set, NULL};

const struct gc_cli_cmd gc_cli_cmd_quota = {
    .name = "quota", .summary = "Show and set the quotas (配额) of departments",
    .description = "DEPARTMENT is a department's name or id. A department's limits bound its "
                   "whole subtree. platform_admin and operator set them; everybody who sees "
                   "the department may read them.",
    .subs = quota_subs};
