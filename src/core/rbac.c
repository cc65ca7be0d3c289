/* Roles, the permission matrix and department scoping. */
#include "core/core.h"

#include <string.h>

static const char *const role_names[] = {
#define GC_X_ROLE(e, n, p) n,
    GC_ROLES(GC_X_ROLE)
#undef GC_X_ROLE
};
static const bool role_platform[] = {
#define GC_X_ROLE(e, n, p) p,
    GC_ROLES(GC_X_ROLE)
#undef GC_X_ROLE
};
_Static_assert(sizeof(role_names) / sizeof(role_names[0]) == GC_ROLE_COUNT, "role table");

const char *gc_role_name(enum gc_role r)
{
    return (unsigned)r < GC_ROLE_COUNT ? role_names[r] : "unknown";
}

int gc_role_parse(const char *s)
{
    for (int i = 0; i < GC_ROLE_COUNT; i++)
        if (strcmp(s, role_names[i]) == 0)
            return i;
    return -1;
}

bool gc_role_is_platform(enum gc_role r)
{
    return (unsigned)r < GC_ROLE_COUNT && role_platform[r];
}

#define B(p) (1u << (p))
/* The permission matrix. Department roles are further limited to their scope. */
#define CAT B(GC_P_CATALOG_READ)
static const unsigned role_perms[GC_ROLE_COUNT] = {
    [GC_ROLE_PLATFORM_ADMIN] = ~0u,
    [GC_ROLE_OPERATOR] = B(GC_P_DEPT_READ) | B(GC_P_USER_READ) | B(GC_P_JOB_READ) |
                         B(GC_P_JOB_WRITE) | B(GC_P_HOST_READ) | B(GC_P_HOST_WRITE) | CAT |
                         B(GC_P_CATALOG_WRITE) | B(GC_P_VM_READ) | B(GC_P_VM_WRITE),
    [GC_ROLE_AUDITOR] = B(GC_P_DEPT_READ) | B(GC_P_USER_READ) | B(GC_P_AUDIT_READ) |
                        B(GC_P_JOB_READ) | B(GC_P_HOST_READ) | CAT | B(GC_P_VM_READ),
    [GC_ROLE_SUPERVISOR] = B(GC_P_DEPT_READ) | B(GC_P_SUPERVISION_READ) | B(GC_P_HOST_READ) |
                           CAT | B(GC_P_VM_READ),
    [GC_ROLE_DEPARTMENT_ADMIN] = B(GC_P_DEPT_READ) | B(GC_P_DEPT_WRITE) | B(GC_P_USER_READ) |
                                 B(GC_P_USER_WRITE) | B(GC_P_AUDIT_READ) | B(GC_P_JOB_READ) |
                                 B(GC_P_JOB_WRITE) | CAT | B(GC_P_VM_READ) | B(GC_P_VM_WRITE),
    [GC_ROLE_DEPARTMENT_USER] = B(GC_P_DEPT_READ) | B(GC_P_USER_READ) | B(GC_P_JOB_READ) | CAT |
                                B(GC_P_VM_READ) | B(GC_P_VM_WRITE),
};
#undef CAT
#undef B

bool gc_role_can(enum gc_role role, enum gc_perm perm)
{
    if ((unsigned)role >= GC_ROLE_COUNT || (unsigned)perm >= GC_P_COUNT)
        return false;
    return (role_perms[role] >> perm) & 1u;
}

bool gc_in_scope(const struct gc_principal *who, const char *obj_path)
{
    if (!who)
        return false;
    if (gc_role_is_platform(who->role))
        return true;
    if (!obj_path || !obj_path[0] || !who->dept_path[0])
        return false; /* platform objects are invisible to departments */
    if (who->role == GC_ROLE_DEPARTMENT_ADMIN)
        return strncmp(obj_path, who->dept_path, strlen(who->dept_path)) == 0;
    return strcmp(obj_path, who->dept_path) == 0;
}

int gc_authorize(const struct gc_principal *who, enum gc_perm perm, const char *obj_path,
                 const char *what, const char *id, struct gc_error *err)
{
    if (!gc_in_scope(who, obj_path))
        return gc_error_set(err, GC_ENOTFOUND, "id", "%s '%s' not found", what, id ? id : "");
    if (!gc_role_can(who->role, perm))
        return gc_error_set(err, GC_EPERM, "", "role %s may not do this to %s '%s'",
                            gc_role_name(who->role), what, id ? id : "");
    return 0;
}

int gc_require(const struct gc_principal *who, enum gc_perm perm, struct gc_error *err)
{
    if (!who)
        return gc_error_set(err, GC_EAUTH, "", "authentication required");
    if (!gc_role_can(who->role, perm))
        return gc_error_set(err, GC_EPERM, "", "role %s may not do this",
                            gc_role_name(who->role));
    return 0;
}
