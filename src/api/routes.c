/* The route table of REST API v1: every endpoint, its handler, its metrics name, whether it
 * needs a token or a body, its query parameters, and its audit action. docs/openapi.json
 * must describe exactly these (a test checks it). */
#include "api/api.h"

#define PAGE "limit,cursor"

const struct gc_route gc_routes[] = {
    /* method, pattern, handler, name, auth, body, query, action, resource */
    {"GET", "/healthz", gc_api_healthz, "healthz", false, false, NULL, NULL, NULL},
    {"GET", "/readyz", gc_api_readyz, "readyz", false, false, NULL, NULL, NULL},
    {"GET", "/metrics", gc_api_metrics, "metrics", false, false, NULL, NULL, NULL},
    {"GET", "/v1/openapi.json", gc_api_openapi, "openapi", false, false, NULL, NULL, NULL},
    {"GET", "/v1/version", gc_api_version, "version", false, false, NULL, NULL, NULL},

    {"POST", "/v1/tokens", gc_api_token_create, "tokens.create", false, true, NULL, NULL, NULL},
    {"DELETE", "/v1/tokens/current", gc_api_token_delete, "tokens.delete", true, false, NULL,
     "auth.logout", "token"},
    {"GET", "/v1/api-keys", gc_api_apikey_list, "api_keys.list", true, false, PAGE, NULL, NULL},
    {"POST", "/v1/api-keys", gc_api_apikey_create, "api_keys.create", true, true, NULL,
     "api_key.create", "api_key"},
    {"DELETE", "/v1/api-keys/{id}", gc_api_apikey_delete, "api_keys.delete", true, false, NULL,
     "api_key.delete", "api_key"},

    {"GET", "/v1/departments", gc_api_dept_list, "departments.list", true, false,
     "parent_id,name,code," PAGE, NULL, NULL},
    {"POST", "/v1/departments", gc_api_dept_create, "departments.create", true, true, NULL,
     "department.create", "department"},
    {"GET", "/v1/departments/{id}", gc_api_dept_get, "departments.get", true, false, NULL, NULL,
     NULL},
    {"PATCH", "/v1/departments/{id}", gc_api_dept_update, "departments.update", true, true, NULL,
     "department.update", "department"},
    {"DELETE", "/v1/departments/{id}", gc_api_dept_delete, "departments.delete", true, false,
     NULL, "department.delete", "department"},

    {"GET", "/v1/departments/{id}/quota", gc_api_quota_get, "quotas.get", true, false, NULL,
     NULL, NULL},
    {"PUT", "/v1/departments/{id}/quota", gc_api_quota_set, "quotas.update", true, true, NULL,
     "quota.update", "quota"},

    {"GET", "/v1/users", gc_api_user_list, "users.list", true, false,
     "department_id,role,username," PAGE, NULL, NULL},
    {"POST", "/v1/users", gc_api_user_create, "users.create", true, true, NULL, "user.create",
     "user"},
    {"GET", "/v1/users/me", gc_api_user_me, "users.me", true, false, NULL, NULL, NULL},
    {"GET", "/v1/users/{id}", gc_api_user_get, "users.get", true, false, NULL, NULL, NULL},
    {"PATCH", "/v1/users/{id}", gc_api_user_update, "users.update", true, true, NULL,
     "user.update", "user"},
    {"DELETE", "/v1/users/{id}", gc_api_user_delete, "users.delete", true, false, NULL,
     "user.delete", "user"},

    {"GET", "/v1/audit-events", gc_api_audit_list, "audit_events.list", true, false,
     "actor_name,action,resource_type,resource_id,outcome,since,until," PAGE, NULL, NULL},
    {"GET", "/v1/audit-events/verify", gc_api_audit_verify, "audit_events.verify", true, false,
     NULL, NULL, NULL},

    {"GET", "/v1/hosts", gc_api_host_list, "hosts.list", true, false,
     "zone,state,arch,name," PAGE, NULL, NULL},
    {"POST", "/v1/hosts", gc_api_host_create, "hosts.create", true, true, NULL, "host.create",
     "host"},
    {"GET", "/v1/hosts/{id}", gc_api_host_get, "hosts.get", true, false, NULL, NULL, NULL},
    {"PATCH", "/v1/hosts/{id}", gc_api_host_update, "hosts.update", true, true, NULL,
     "host.update", "host"},
    {"DELETE", "/v1/hosts/{id}", gc_api_host_delete, "hosts.delete", true, false, NULL,
     "host.delete", "host"},

    {"GET", "/v1/flavors", gc_api_flavor_list, "flavors.list", true, false, "name," PAGE, NULL,
     NULL},
    {"POST", "/v1/flavors", gc_api_flavor_create, "flavors.create", true, true, NULL,
     "flavor.create", "flavor"},
    {"GET", "/v1/flavors/{id}", gc_api_flavor_get, "flavors.get", true, false, NULL, NULL, NULL},
    {"DELETE", "/v1/flavors/{id}", gc_api_flavor_delete, "flavors.delete", true, false, NULL,
     "flavor.delete", "flavor"},

    {"GET", "/v1/images", gc_api_image_list, "images.list", true, false,
     "name,kind,state,arch," PAGE, NULL, NULL},
    {"POST", "/v1/images", gc_api_image_create, "images.create", true, true, NULL,
     "image.create", "image"},
    {"GET", "/v1/images/{id}", gc_api_image_get, "images.get", true, false, NULL, NULL, NULL},
    {"DELETE", "/v1/images/{id}", gc_api_image_delete, "images.delete", true, false, NULL,
     "image.delete", "image"},
    {"PUT", "/v1/images/{id}/file", gc_api_image_upload, "images.upload", true, GC_BODY_STREAM,
     "sha256", "image.upload", "image"},

    {"GET", "/v1/networks", gc_api_net_list, "networks.list", true, false, "name,mode," PAGE,
     NULL, NULL},
    {"POST", "/v1/networks", gc_api_net_create, "networks.create", true, true, NULL,
     "network.create", "network"},
    {"GET", "/v1/networks/{id}", gc_api_net_get, "networks.get", true, false, NULL, NULL, NULL},
    {"DELETE", "/v1/networks/{id}", gc_api_net_delete, "networks.delete", true, false, NULL,
     "network.delete", "network"},

    {"GET", "/v1/security-groups", gc_api_sg_list, "security_groups.list", true, false,
     "name," PAGE, NULL, NULL},
    {"POST", "/v1/security-groups", gc_api_sg_create, "security_groups.create", true, true, NULL,
     "security_group.create", "security_group"},
    {"GET", "/v1/security-groups/{id}", gc_api_sg_get, "security_groups.get", true, false, NULL,
     NULL, NULL},
    {"DELETE", "/v1/security-groups/{id}", gc_api_sg_delete, "security_groups.delete", true,
     false, NULL, "security_group.delete", "security_group"},
    {"POST", "/v1/security-groups/{id}/rules", gc_api_sg_rule_add, "security_groups.rule_add",
     true, true, NULL, "security_group.rule_add", "security_group"},
    {"DELETE", "/v1/security-groups/{id}/rules/{rule_id}", gc_api_sg_rule_delete,
     "security_groups.rule_delete", true, false, NULL, "security_group.rule_delete",
     "security_group"},

    {"GET", "/v1/server-groups", gc_api_sgroup_list, "server_groups.list", true, false,
     "department_id," PAGE, NULL, NULL},
    {"POST", "/v1/server-groups", gc_api_sgroup_create, "server_groups.create", true, true, NULL,
     "server_group.create", "server_group"},
    {"GET", "/v1/server-groups/{id}", gc_api_sgroup_get, "server_groups.get", true, false, NULL,
     NULL, NULL},
    {"DELETE", "/v1/server-groups/{id}", gc_api_sgroup_delete, "server_groups.delete", true,
     false, NULL, "server_group.delete", "server_group"},

    {"GET", "/v1/vms", gc_api_vm_list, "vms.list", true, false,
     "department_id,host_id,state,name," PAGE, NULL, NULL},
    {"POST", "/v1/vms", gc_api_vm_create, "vms.create", true, true, NULL, "vm.create", "vm"},
    {"GET", "/v1/vms/{id}", gc_api_vm_get, "vms.get", true, false, NULL, NULL, NULL},
    {"DELETE", "/v1/vms/{id}", gc_api_vm_delete, "vms.delete", true, false, NULL, "vm.delete",
     "vm"},
    {"POST", "/v1/vms/{id}/start", gc_api_vm_start, "vms.start", true, false, NULL, "vm.start",
     "vm"},
    {"POST", "/v1/vms/{id}/stop", gc_api_vm_stop, "vms.stop", true, false, "force", "vm.stop",
     "vm"},
    {"POST", "/v1/vms/{id}/reboot", gc_api_vm_reboot, "vms.reboot", true, false, NULL,
     "vm.reboot", "vm"},
    {"POST", "/v1/vms/{id}/resize", gc_api_vm_resize, "vms.resize", true, true, NULL,
     "vm.resize", "vm"},
    {"GET", "/v1/vms/{id}/console", gc_api_vm_console, "vms.console", true, false, NULL, NULL,
     NULL},

    {"GET", "/v1/volumes", gc_api_volume_list, "volumes.list", true, false,
     "department_id,vm_id,state," PAGE, NULL, NULL},
    {"POST", "/v1/volumes", gc_api_volume_create, "volumes.create", true, true, NULL,
     "volume.create", "volume"},
    {"GET", "/v1/volumes/{id}", gc_api_volume_get, "volumes.get", true, false, NULL, NULL, NULL},
    {"DELETE", "/v1/volumes/{id}", gc_api_volume_delete, "volumes.delete", true, false, NULL,
     "volume.delete", "volume"},
    {"POST", "/v1/volumes/{id}/attach", gc_api_volume_attach, "volumes.attach", true, true, NULL,
     "volume.attach", "volume"},
    {"POST", "/v1/volumes/{id}/detach", gc_api_volume_detach, "volumes.detach", true, false,
     NULL, "volume.detach", "volume"},
    {"POST", "/v1/volumes/{id}/resize", gc_api_volume_resize, "volumes.resize", true, true, NULL,
     "volume.resize", "volume"},

    {"GET", "/v1/jobs", gc_api_job_list, "jobs.list", true, false, "state,kind," PAGE, NULL,
     NULL},
    {"POST", "/v1/jobs", gc_api_job_create, "jobs.create", true, true, NULL, "job.create", "job"},
    {"GET", "/v1/jobs/{id}", gc_api_job_get, "jobs.get", true, false, NULL, NULL, NULL},
    {"POST", "/v1/jobs/{id}/cancel", gc_api_job_cancel, "jobs.cancel", true, false, NULL,
     "job.cancel", "job"},
};
const size_t gc_nroutes = sizeof(gc_routes) / sizeof(gc_routes[0]);

const struct gc_stream_ops *gc_route_stream(const struct gc_route *r)
{
    if (r->handler == gc_api_image_upload)
        return &gc_api_image_upload_ops;
    return NULL;
}
