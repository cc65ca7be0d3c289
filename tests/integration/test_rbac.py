"""Role-based access control: a matrix over every endpoint of the route table and every role,
and the department scoping rules (a department's users never see or change another
department's objects, and cannot tell a foreign object from a missing one).

The expected outcomes below are written out by hand from the rules (docs/api.md, rbac.c and
the platform-only rules of core/*.c); they are not computed from the daemon's code."""

import json
import os
import random
import subprocess
import time
import unittest
import urllib.parse

from gcharness import DAEMON, DaemonTestCase

ROLES = ("platform_admin", "operator", "auditor", "supervisor", "department_admin",
         "department_user")

PASSWORD = "User-Passw0rd!"

# Routes that answer without a token.
PUBLIC = {"GET /healthz", "GET /readyz", "GET /metrics", "GET /v1/openapi.json",
          "GET /v1/version", "POST /v1/tokens",
          # authenticated by a registered cloud's push token, not by a user's; answers 404
          # unless [supervision] accept_pushes is on (test_supervision_push.py)
          "POST /v1/supervision/ingest"}

# The world every case runs in (built by build_world):
#   departments  A (province) -> A1 (city) -> A1a (bureau);  B -> B1
#   users        platform_admin, operator, auditor, supervisor: no department
#                department_admin and department_user: of A1;  department_admin "dab" of B
#   victims      v_a1 (A1), v_a1a (A1a), v_b1 (B1), v_plat (operator)
#   jobs         finished jobs of A1, A1a, B and a platform job
#   host         one hypervisor host (libvirt test driver)
#   catalogue    one flavor and one (kernel) image, both used by the VMs
#   VMs          one running VM in each of A1, A1a and B1 (made by the platform admin)
#
# EXPECTED[route][case] = statuses for, in this order:
#   platform_admin, operator, auditor, supervisor, department_admin (A1), department_user (A1)
EXPECTED = {
    "GET /healthz": {"anyone": (200, 200, 200, 200, 200, 200)},
    "GET /readyz": {"anyone": (200, 200, 200, 200, 200, 200)},
    # anonymous scrapes get the daemon's own metrics; with a token, the monitoring series
    # (department data) are for platform roles only (docs/monitoring.md)
    "GET /metrics": {"anyone": (200, 200, 200, 200, 403, 403)},
    "GET /v1/openapi.json": {"anyone": (200, 200, 200, 200, 200, 200)},
    "GET /v1/version": {"anyone": (200, 200, 200, 200, 200, 200)},

    "POST /v1/tokens": {
        "own credentials": (201, 201, 201, 201, 201, 201),
        "wrong password": (401, 401, 401, 401, 401, 401),
    },
    "DELETE /v1/tokens/current": {
        "fresh session": (204, 204, 204, 204, 204, 204),
    },
    "GET /v1/api-keys": {
        "own keys": (200, 200, 200, 200, 200, 200),
    },
    "POST /v1/api-keys": {
        "own key": (201, 201, 201, 201, 201, 201),
    },
    "DELETE /v1/api-keys/{id}": {
        "own key": (204, 204, 204, 204, 204, 204),
        "another user's key": (404, 404, 404, 404, 404, 404),
    },

    "GET /v1/departments": {"list": (200, 200, 200, 200, 200, 200)},
    "POST /v1/departments": {
        "top level": (201, 403, 403, 403, 403, 403),
        "under A1a": (201, 403, 403, 403, 201, 403),
        # a parent outside the caller's scope is reported like a missing parent (400)
        "under B1": (201, 403, 403, 403, 400, 403),
    },
    "GET /v1/departments/{id}": {
        "A (above A1)": (200, 200, 200, 200, 404, 404),
        "A1": (200, 200, 200, 200, 200, 200),
        "A1a": (200, 200, 200, 200, 200, 404),
        "B1": (200, 200, 200, 200, 404, 404),
    },
    "PATCH /v1/departments/{id}": {
        "A1 description": (200, 403, 403, 403, 200, 403),
        "A1a description": (200, 403, 403, 403, 200, 404),
        "B1 description": (200, 403, 403, 403, 404, 404),
    },
    "DELETE /v1/departments/{id}": {
        "empty department under A1a": (204, 403, 403, 403, 204, 404),
        "empty department under B1": (204, 403, 403, 403, 404, 404),
        # A1 still has a child and users: 409 for the platform admin; A1's admin may not
        # delete its own department
        "A1": (409, 403, 403, 403, 403, 403),
    },

    "GET /v1/users": {"list": (200, 200, 200, 403, 200, 200)},
    "POST /v1/users": {
        "department_user in A1a": (201, 403, 403, 403, 201, 403),
        "department_user in B1": (201, 403, 403, 403, 400, 403),
        "operator": (201, 403, 403, 403, 403, 403),
    },
    "GET /v1/users/me": {"self": (200, 200, 200, 200, 200, 200)},
    "GET /v1/users/{id}": {
        "self": (200, 200, 200, 200, 200, 200),
        "me": (200, 200, 200, 200, 200, 200),
        "user in A1": (200, 200, 200, 403, 200, 200),
        "user in A1a": (200, 200, 200, 403, 200, 404),
        "user in B1": (200, 200, 200, 403, 404, 404),
        "platform user": (200, 200, 200, 403, 404, 404),
    },
    "PATCH /v1/users/{id}": {
        "self display_name": (200, 200, 200, 200, 200, 200),
        "me display_name": (200, 200, 200, 200, 200, 200),
        "self password": (200, 200, 200, 200, 200, 200),
        "self role": (403, 403, 403, 403, 403, 403),
        "user in A1 display_name": (200, 403, 403, 403, 200, 403),
        "user in A1a display_name": (200, 403, 403, 403, 200, 404),
        "user in B1 display_name": (200, 403, 403, 403, 404, 404),
        "platform user display_name": (200, 403, 403, 403, 404, 404),
        "user in A1 made operator": (200, 403, 403, 403, 403, 403),
    },
    "DELETE /v1/users/{id}": {
        "self": (403, 403, 403, 403, 403, 403),
        # /v1/users/me names oneself for GET and PATCH; DELETE must refuse it the same way
        "me": (403, 403, 403, 403, 403, 403),
        "user in A1a": (204, 403, 403, 403, 204, 404),
        "user in B1": (204, 403, 403, 403, 404, 404),
        "platform user": (204, 403, 403, 403, 404, 404),
    },

    "GET /v1/audit-events": {"list": (200, 403, 200, 403, 200, 403)},
    "GET /v1/audit-events/verify": {"verify": (200, 403, 200, 403, 403, 403)},

    # hosts are platform objects: department roles never see one (404), nor list them (403)
    "GET /v1/hosts": {"list": (200, 200, 200, 200, 403, 403)},
    "POST /v1/hosts": {"test:///default": (201, 201, 403, 403, 403, 403)},
    "GET /v1/hosts/{id}": {"host": (200, 200, 200, 200, 404, 404)},
    "PATCH /v1/hosts/{id}": {"description": (200, 200, 403, 403, 404, 404)},
    "DELETE /v1/hosts/{id}": {"fresh host": (204, 204, 403, 403, 404, 404)},
    # the matrix's host is not in maintenance: refused with 409 to those allowed
    "POST /v1/hosts/{id}/evacuate": {"host": (409, 409, 403, 403, 404, 404)},
    # zones are platform objects like hosts; only platform_admin and operator change them
    "GET /v1/zones": {"list": (200, 200, 200, 200, 403, 403)},
    "GET /v1/zones/{name}": {"default": (200, 200, 200, 200, 404, 404)},
    "PUT /v1/zones/{name}": {"fresh zone": (200, 200, 403, 403, 404, 404)},

    # availability: the platform's figures for platform roles, a department's for its own
    "GET /v1/availability": {
        "platform": (200, 200, 200, 200, 403, 403),
        "department A1": (200, 200, 200, 200, 200, 200),
        "department B1": (200, 200, 200, 200, 404, 404),
    },
    # supervision: the cloud's id and public key, for registering it with a supervisor
    "GET /v1/supervision/public-key": {"identity": (200, 200, 200, 200, 403, 403)},
    "GET /v1/maintenance-windows": {"list": (200, 200, 200, 200, 403, 403)},
    "GET /v1/notification-channels": {"list": (200, 200, 200, 200, 403, 403)},
    # alarms: platform roles see all; a department's users see their department's
    "GET /v1/alarms": {"list": (200, 200, 200, 200, 200, 200)},
    "GET /v1/alarms/{id}": {"alarm of A1": (200, 200, 200, 200, 200, 200),
                            "alarm of B1": (200, 200, 200, 200, 404, 404)},
    # acknowledged by operators, and by the department's administrators
    "POST /v1/alarms/{id}/ack": {"alarm of A1": (200, 200, 403, 403, 200, 403),
                                 "alarm of B1": (200, 200, 403, 403, 404, 404)},
    "GET /v1/alarm-rules": {"list": (200, 200, 200, 200, 200, 200)},
    # a department administrator's rule is its department's
    "POST /v1/alarm-rules": {"rule": (201, 201, 403, 403, 201, 403)},
    "GET /v1/alarm-rules/{id}": {"built-in": (200, 200, 200, 200, 404, 404),
                                 "rule of A1": (200, 200, 200, 200, 200, 200)},
    "PATCH /v1/alarm-rules/{id}": {"rule of A1": (200, 200, 403, 403, 200, 403),
                                   "rule of B1": (200, 200, 403, 403, 404, 404)},
    "DELETE /v1/alarm-rules/{id}": {"rule of A1": (204, 204, 403, 403, 204, 403)},
    "GET /v1/silences": {"list": (200, 200, 200, 200, 403, 403)},
    "POST /v1/silences": {"silence": (201, 201, 403, 403, 403, 403)},
    "DELETE /v1/silences/{id}": {"fresh silence": (204, 204, 403, 403, 403, 403)},
    "GET /v1/availability/report": {"platform": (200, 200, 200, 200, 403, 403),
                                    "department A1": (200, 200, 200, 200, 200, 200)},
    "POST /v1/notification-channels": {"webhook": (201, 201, 403, 403, 403, 403)},
    "DELETE /v1/notification-channels/{id}": {"fresh channel": (204, 204, 403, 403, 403, 403)},
    "POST /v1/maintenance-windows": {"platform window": (201, 201, 403, 403, 403, 403)},
    "DELETE /v1/maintenance-windows/{id}": {"fresh window": (204, 204, 403, 403, 403, 403)},

    # the catalogue: every signed-in role reads it; platform admins and operators manage it
    "GET /v1/departments/{id}/quota": {
        "quota of A1": (200, 200, 200, 200, 200, 200),
        "quota of B1": (200, 200, 200, 200, 404, 404),
    },
    "PUT /v1/departments/{id}/quota": {
        "quota of A1": (200, 200, 403, 403, 403, 403),
        "quota of B1": (200, 200, 403, 403, 404, 404),
    },
    "GET /v1/networks": {"list": (200, 200, 200, 200, 200, 200)},
    "POST /v1/networks": {"shared network": (201, 201, 403, 403, 403, 403)},
    "GET /v1/networks/{id}": {
        "shared network": (200, 200, 200, 200, 200, 200),
        "network of B1": (200, 200, 200, 200, 404, 404),
    },
    "DELETE /v1/networks/{id}": {"unused network": (204, 204, 403, 403, 403, 403)},
    "POST /v1/vms/{id}/resize": {
        "running VM of A1": (409, 409, 403, 403, 409, 409),
        "running VM of B1": (409, 409, 403, 403, 404, 404),
    },
    # moving VMs is the platform's: with one host there is nowhere to go (409)
    "POST /v1/vms/{id}/migrate": {
        "running VM of A1": (409, 409, 403, 403, 403, 403),
        "running VM of B1": (409, 409, 403, 403, 404, 404),
    },
    "GET /v1/volumes": {"list": (200, 200, 200, 200, 200, 200)},
    "POST /v1/volumes": {
        "volume of A1": (202, 202, 403, 403, 202, 202),
        "volume of B1": (202, 202, 403, 403, 400, 400),
    },
    "GET /v1/volumes/{id}": {
        "volume of A1": (200, 200, 200, 200, 200, 200),
        "volume of B1": (200, 200, 200, 200, 404, 404),
    },
    "DELETE /v1/volumes/{id}": {
        "volume of A1": (202, 202, 403, 403, 202, 202),
        "volume of B1": (202, 202, 403, 403, 404, 404),
    },
    "POST /v1/volumes/{id}/attach": {
        "A1 volume to the A1 VM": (202, 202, 403, 403, 202, 202),
        "B1 volume to the B1 VM": (202, 202, 403, 403, 404, 404),
    },
    "POST /v1/volumes/{id}/detach": {
        "a detached volume of A1": (409, 409, 403, 403, 409, 409),
    },
    "POST /v1/volumes/{id}/resize": {
        "volume of A1": (202, 202, 403, 403, 202, 202),
        "volume of B1": (202, 202, 403, 403, 404, 404),
    },
    "POST /v1/volumes/{id}/revert": {
        "volume of A1 to its snapshot": (202, 202, 403, 403, 202, 202),
        "volume of B1 to its snapshot": (202, 202, 403, 403, 404, 404),
    },
    "GET /v1/volumes/{id}/snapshots": {
        "snapshots of an A1 volume": (200, 200, 200, 200, 200, 200),
        "snapshots of a B1 volume": (200, 200, 200, 200, 404, 404),
    },
    "POST /v1/volumes/{id}/snapshots": {
        "snapshot of an A1 volume": (202, 202, 403, 403, 202, 202),
        "snapshot of a B1 volume": (202, 202, 403, 403, 404, 404),
    },
    "GET /v1/volumes/{id}/snapshots/{snapshot_id}": {
        "snapshot of an A1 volume": (200, 200, 200, 200, 200, 200),
        "snapshot of a B1 volume": (200, 200, 200, 200, 404, 404),
    },
    "DELETE /v1/volumes/{id}/snapshots/{snapshot_id}": {
        "snapshot of an A1 volume": (202, 202, 403, 403, 202, 202),
        "snapshot of a B1 volume": (202, 202, 403, 403, 404, 404),
    },
    # public IPs are department objects like volumes; the pool (an external network) is shared
    "GET /v1/public-ips": {"list": (200, 200, 200, 200, 200, 200)},
    "POST /v1/public-ips": {
        "for A1": (201, 201, 403, 403, 201, 201),
        "for B1": (201, 201, 403, 403, 400, 400),
    },
    "GET /v1/public-ips/{id}": {
        "of A1": (200, 200, 200, 200, 200, 200),
        "of B1": (200, 200, 200, 200, 404, 404),
    },
    "DELETE /v1/public-ips/{id}": {
        "of A1": (204, 204, 403, 403, 204, 204),
        "of B1": (204, 204, 403, 403, 404, 404),
    },
    "POST /v1/public-ips/{id}/associate": {
        "A1 address to the A1 VM": (202, 202, 403, 403, 202, 202),
        "B1 address to the B1 VM": (202, 202, 403, 403, 404, 404),
    },
    "POST /v1/public-ips/{id}/disassociate": {
        "an available address of A1": (409, 409, 403, 403, 409, 409),
    },
    "GET /v1/checks": {"list": (200, 200, 200, 200, 200, 200)},
    "POST /v1/checks": {
        "check of A1": (201, 201, 403, 403, 201, 201),
        "check of B1": (201, 201, 403, 403, 400, 400),
    },
    "GET /v1/checks/{id}": {
        "check of A1": (200, 200, 200, 200, 200, 200),
        "check of B1": (200, 200, 200, 200, 404, 404),
    },
    "PATCH /v1/checks/{id}": {
        "check of A1": (200, 200, 403, 403, 200, 200),
        "check of B1": (200, 200, 403, 403, 404, 404),
    },
    "DELETE /v1/checks/{id}": {
        "check of A1": (204, 204, 403, 403, 204, 204),
        "check of B1": (204, 204, 403, 403, 404, 404),
    },
    "GET /v1/server-groups": {"list": (200, 200, 200, 200, 200, 200)},
    "POST /v1/server-groups": {
        "group of A1": (201, 201, 403, 403, 201, 201),
        "group of B1": (201, 201, 403, 403, 400, 400),
    },
    "GET /v1/server-groups/{id}": {
        "group of A1": (200, 200, 200, 200, 200, 200),
        "group of B1": (200, 200, 200, 200, 404, 404),
    },
    "DELETE /v1/server-groups/{id}": {
        "group of A1": (204, 204, 403, 403, 204, 204),
        "group of B1": (204, 204, 403, 403, 404, 404),
    },
    "GET /v1/security-groups": {"list": (200, 200, 200, 200, 200, 200)},
    "POST /v1/security-groups": {
        "group of A1": (201, 201, 403, 403, 201, 201),
        "group of B1": (201, 201, 403, 403, 400, 400),
    },
    "GET /v1/security-groups/{id}": {
        "group of A1": (200, 200, 200, 200, 200, 200),
        "group of B1": (200, 200, 200, 200, 404, 404),
    },
    "DELETE /v1/security-groups/{id}": {
        "unused group of A1": (204, 204, 403, 403, 204, 204),
        "unused group of B1": (204, 204, 403, 403, 404, 404),
    },
    "POST /v1/security-groups/{id}/rules": {
        "group of A1": (201, 201, 403, 403, 201, 201),
        "group of B1": (201, 201, 403, 403, 404, 404),
    },
    "DELETE /v1/security-groups/{id}/rules/{rule_id}": {
        "rule of a group of A1": (204, 204, 403, 403, 204, 204),
        "rule of a group of B1": (204, 204, 403, 403, 404, 404),
    },
    "GET /v1/flavors": {"list": (200, 200, 200, 200, 200, 200)},
    "POST /v1/flavors": {"flavor": (201, 201, 403, 403, 403, 403)},
    "GET /v1/flavors/{id}": {"flavor": (200, 200, 200, 200, 200, 200)},
    "DELETE /v1/flavors/{id}": {
        "unused flavor": (204, 204, 403, 403, 403, 403),
        "flavor in use": (409, 409, 403, 403, 403, 403),
    },
    "GET /v1/images": {"list": (200, 200, 200, 200, 200, 200)},
    "POST /v1/images": {"kernel image": (201, 201, 403, 403, 403, 403),
                        "image to upload": (201, 201, 403, 403, 403, 403)},
    # uploads: the roles that manage images only; the state and the query are checked after
    # the role (a real upload needs a pool that can take one: test_image_upload.py)
    "PUT /v1/images/{id}/file": {
        "active image": (409, 409, 403, 403, 403, 403),
        "uploading image, malformed sha256": (400, 400, 403, 403, 403, 403),
    },
    "GET /v1/images/{id}": {"image": (200, 200, 200, 200, 200, 200)},
    "DELETE /v1/images/{id}": {
        "unused image": (204, 204, 403, 403, 403, 403),
        "image in use": (409, 409, 403, 403, 403, 403),
    },

    # VMs: every role reads, department roles only in their scope (the admin: its subtree,
    # the user: its department); auditor and supervisor never change them; only platform
    # roles choose the host. A department outside the caller's scope in the body looks
    # missing (400), a VM outside it is 404.
    "GET /v1/vms": {"list": (200, 200, 200, 200, 200, 200)},
    "POST /v1/vms": {
        "in A1": (202, 202, 403, 403, 202, 202),
        "in B1": (202, 202, 403, 403, 400, 400),
        # without department_id: the caller's own; platform users have none
        "own department": (400, 400, 403, 403, 202, 202),
        "in A1 on a chosen host": (202, 202, 403, 403, 403, 403),
    },
    "GET /v1/vms/{id}": {
        "VM of A1": (200, 200, 200, 200, 200, 200),
        "VM of A1a": (200, 200, 200, 200, 200, 404),
        "VM of B1": (200, 200, 200, 200, 404, 404),
    },
    "DELETE /v1/vms/{id}": {
        "fresh VM of A1": (202, 202, 403, 403, 202, 202),
        "fresh VM of A1a": (202, 202, 403, 403, 202, 404),
        "fresh VM of B1": (202, 202, 403, 403, 404, 404),
    },
    "POST /v1/vms/{id}/start": {
        "VM of A1": (202, 202, 403, 403, 202, 202),
        "VM of A1a": (202, 202, 403, 403, 202, 404),
        "VM of B1": (202, 202, 403, 403, 404, 404),
    },
    "POST /v1/vms/{id}/stop": {
        "VM of A1": (202, 202, 403, 403, 202, 202),
        "VM of A1 forced": (202, 202, 403, 403, 202, 202),
        "VM of A1a": (202, 202, 403, 403, 202, 404),
        "VM of B1": (202, 202, 403, 403, 404, 404),
    },
    "POST /v1/vms/{id}/reboot": {
        "VM of A1": (202, 202, 403, 403, 202, 202),
        "VM of A1a": (202, 202, 403, 403, 202, 404),
        "VM of B1": (202, 202, 403, 403, 404, 404),
    },
    "GET /v1/vms/{id}/console": {
        "VM of A1": (200, 200, 200, 200, 200, 200),
        "VM of A1a": (200, 200, 200, 200, 200, 404),
        "VM of B1": (200, 200, 200, 200, 404, 404),
    },
    # the VNC console is the VM's keyboard: platform admins and operators, and the VM's
    # department admins; not its users, nor the read-only platform roles. The test driver's
    # domains get no VNC port: those allowed get 503 there (a real host answers 200, see
    # test_guest_data.py)
    "GET /v1/vms/{id}/vnc": {
        "VM of A1": (503, 503, 403, 403, 503, 403),
        "VM of A1a": (503, 503, 403, 403, 503, 404),
        "VM of B1": (503, 503, 403, 403, 404, 404),
    },

    # the asset inventory: every role reads what is in its scope (platform assets and other
    # departments' are invisible to departments); platform_admin and operator manage it;
    # the supervision pull is for platform roles (supervisor included) only
    "GET /v1/assets": {"list": (200, 200, 200, 200, 200, 200)},
    "POST /v1/assets/import": {"one server of A1": (200, 200, 403, 403, 403, 403)},
    "GET /v1/assets/{id}": {
        "asset of A1": (200, 200, 200, 200, 200, 200),
        "asset of B1": (200, 200, 200, 200, 404, 404),
        "platform asset": (200, 200, 200, 200, 404, 404),
    },
    "PATCH /v1/assets/{id}": {
        "asset of A1": (200, 200, 403, 403, 403, 403),
        "asset of B1": (200, 200, 403, 403, 404, 404),
    },
    "DELETE /v1/assets/{id}": {
        "asset of A1": (204, 204, 403, 403, 403, 403),
        "asset of B1": (204, 204, 403, 403, 404, 404),
    },
    "GET /v1/assets/{id}/history": {
        "asset of A1": (200, 200, 200, 200, 200, 200),
        "asset of B1": (200, 200, 200, 200, 404, 404),
    },
    # SNMP device targets are platform objects, as sensors; a discovery of a device that
    # does not answer is 409 (the device's fault), after the permission check
    "GET /v1/assets/snmp-devices": {"list": (200, 200, 200, 200, 403, 403)},
    "POST /v1/assets/snmp-devices": {"v2c device": (201, 201, 403, 403, 403, 403)},
    "GET /v1/assets/snmp-devices/{id}": {"platform target": (200, 200, 200, 200, 403, 403)},
    "PATCH /v1/assets/snmp-devices/{id}": {
        "platform target": (200, 200, 403, 403, 403, 403)},
    "DELETE /v1/assets/snmp-devices/{id}": {"fresh target": (204, 204, 403, 403, 403, 403)},
    "POST /v1/assets/snmp-devices/{id}/discover": {
        "silent device": (409, 409, 403, 403, 403, 403)},
    "GET /v1/supervision/{dataset}": {
        "asset": (200, 200, 200, 200, 403, 403),
        "log": (200, 200, 200, 200, 403, 403),
        "metric": (200, 200, 200, 200, 403, 403),
        "alarm": (200, 200, 200, 200, 403, 403),
        "availability": (200, 200, 200, 200, 403, 403),
        "backup": (200, 200, 200, 200, 403, 403),
        "environment": (200, 200, 200, 200, 403, 403),
    },
    "GET /v1/supervision/substitution-rate": {"local": (200, 200, 200, 200, 403, 403)},
    # push to upstream receivers: platform_admin and operator only (tokens are write-only)
    "GET /v1/supervision/receivers": {"list": (200, 200, 403, 403, 403, 403)},
    "POST /v1/supervision/receivers": {"new receiver": (201, 201, 403, 403, 403, 403)},
    "GET /v1/supervision/receivers/{id}": {"receiver": (200, 200, 403, 403, 403, 403)},
    "PATCH /v1/supervision/receivers/{id}": {"receiver": (200, 200, 403, 403, 403, 403)},
    "DELETE /v1/supervision/receivers/{id}": {"fresh receiver": (204, 204, 403, 403, 403, 403)},
    # supervisor mode: platform_admin registers clouds; the supervisor role reads
    "GET /v1/supervision/clouds": {"list": (200, 403, 403, 200, 403, 403)},
    "POST /v1/supervision/clouds": {"new cloud": (201, 403, 403, 403, 403, 403)},
    "GET /v1/supervision/clouds/{id}": {"cloud": (200, 403, 403, 200, 403, 403)},
    "PATCH /v1/supervision/clouds/{id}": {"cloud": (200, 403, 403, 403, 403, 403)},
    "DELETE /v1/supervision/clouds/{id}": {"fresh cloud": (204, 403, 403, 403, 403, 403)},
    "GET /v1/supervision/clouds/{id}/records": {"cloud": (200, 403, 403, 200, 403, 403)},
    # the supervisor's views across clouds
    "GET /v1/supervision/clouds/{id}/summary": {"cloud": (200, 403, 403, 200, 403, 403)},
    "GET /v1/supervision/overview": {"all clouds": (200, 403, 403, 200, 403, 403)},
    # a user's token is no push token; this daemon does not accept pushes at all
    "POST /v1/supervision/ingest": {"user token": (404, 404, 404, 404, 404, 404)},
    "GET /v1/jobs": {"list": (200, 200, 200, 403, 200, 200)},
    "POST /v1/jobs": {"test.sleep": (202, 202, 403, 403, 202, 403)},
    "GET /v1/jobs/{id}": {
        "job of A1": (200, 200, 200, 403, 200, 200),
        "job of A1a": (200, 200, 200, 403, 200, 404),
        "job of B": (200, 200, 200, 403, 404, 404),
        "platform job": (200, 200, 200, 403, 404, 404),
    },
    "POST /v1/jobs/{id}/cancel": {
        "unfinished job of A1": (202, 202, 403, 403, 202, 403),
        "unfinished job of B": (202, 202, 403, 403, 404, 404),
        "unfinished platform job": (202, 202, 403, 403, 404, 404),
        "finished job of A1": (409, 409, 403, 403, 409, 403),
        "finished job of B": (409, 409, 403, 403, 404, 404),
    },

    # series of VMs in A1, A1a and B1 and of the host: platform roles see all four, the
    # department admin of A1 its subtree (A1, A1a), the department user of A1 only A1
    "GET /v1/metrics/query": {"series of A1, A1a, B1, host": (200, 200, 200, 200, 200, 200)},
    "GET /v1/metrics/series": {"series of A1, A1a, B1, host": (200, 200, 200, 200, 200, 200)},
    "POST /v1/metrics/test-samples": {"one sample": (200, 403, 403, 403, 403, 403)},

    # data-centre environment: platform roles only; auditors and supervisors read
    "GET /v1/sensors/profiles": {"list": (200, 200, 200, 200, 403, 403)},
    "POST /v1/sensors/profiles/check": {"good profile": (200, 200, 200, 200, 403, 403)},
    "GET /v1/sensors/profiles/{name}": {"embedded": (200, 200, 200, 200, 403, 403)},
    "GET /v1/sensors": {"list": (200, 200, 200, 200, 403, 403)},
    "POST /v1/sensors": {"modbus sensor": (201, 201, 403, 403, 403, 403)},
    "GET /v1/sensors/{id}": {"platform sensor": (200, 200, 200, 200, 403, 403)},
    "PATCH /v1/sensors/{id}": {"platform sensor": (200, 200, 403, 403, 403, 403)},
    "DELETE /v1/sensors/{id}": {"fresh sensor": (204, 204, 403, 403, 403, 403)},
    "GET /v1/sensors/{id}/readings": {"platform sensor": (200, 200, 200, 200, 403, 403)},
}

SLUG = {400: "invalid-request", 401: "unauthorized", 403: "forbidden", 404: "not-found",
        409: "conflict", 503: "unavailable"}


def list_routes():
    out = subprocess.run([DAEMON, "--list-routes"], capture_output=True, text=True, timeout=30,
                         check=True).stdout
    return [line.strip() for line in out.splitlines() if line.strip()]


def missing_id():
    """A well-formed id (lowercase UUIDv7 shape) that names nothing."""
    h = "".join(random.choice("0123456789abcdef") for _ in range(32))
    return f"{h[:8]}-{h[8:12]}-7{h[13:16]}-8{h[17:20]}-{h[20:32]}"


_seq = [0]


def uniq(prefix):
    _seq[0] += 1
    return f"{prefix}{_seq[0]}x{random.randrange(10**6)}"


def build_world(c):
    """Creates the departments, users and jobs described above on c.d."""
    d = c.d

    def post(path, body, tok, want=201):
        r = d.request("POST", path, body, token=tok)
        if r.status != want:
            raise AssertionError(f"setup: POST {path} {body} -> {r}")
        return r.json

    adm = c.admin
    c.dept = {}
    c.dept["A"] = post("/v1/departments", {"name": "省A", "code": "RB-A"}, adm)["id"]
    c.dept["A1"] = post("/v1/departments",
                        {"name": "市A1", "code": "RB-A1", "parent_id": c.dept["A"]}, adm)["id"]
    c.dept["A1a"] = post("/v1/departments",
                         {"name": "局A1a", "code": "RB-A1a", "parent_id": c.dept["A1"]},
                         adm)["id"]
    c.dept["B"] = post("/v1/departments", {"name": "省B", "code": "RB-B"}, adm)["id"]
    c.dept["B1"] = post("/v1/departments",
                        {"name": "市B1", "code": "RB-B1", "parent_id": c.dept["B"]}, adm)["id"]

    def mkuser(name, role, dept=None):
        body = {"username": name, "password": PASSWORD, "role": role}
        if dept:
            body["department_id"] = c.dept[dept]
        return post("/v1/users", body, adm)

    c.user, c.tok, c.pw = {}, {}, {}
    for role in ROLES:
        dept = "A1" if role.startswith("department_") else None
        c.user[role] = mkuser("r-" + role.replace("_", "-"), role, dept)
        c.pw[role] = PASSWORD
    c.user["dab"] = mkuser("r-dab", "department_admin", "B")
    c.user["a1a_admin"] = mkuser("r-a1a-admin", "department_admin", "A1a")
    c.victim = {
        "A1": mkuser("v-a1", "department_user", "A1")["id"],
        "A1a": mkuser("v-a1a", "department_user", "A1a")["id"],
        "B1": mkuser("v-b1", "department_user", "B1")["id"],
        "plat": mkuser("v-plat", "operator")["id"],
    }
    for who in (*ROLES, "dab", "a1a_admin"):
        c.tok[who] = d.login(c.user[who]["username"], PASSWORD)

    c.host = post("/v1/hosts", {"name": "rbac-host", "uri": "test:///default?rbac=0"},
                  adm)["id"]

    # the catalogue, and one running VM in each of A1, A1a and B1
    c.kernel = os.path.join(d.data_dir, "rbac-vmlinuz")
    with open(c.kernel, "wb") as f:
        f.write(b"not really a kernel: the test driver does not boot it")
    c.flavor = post("/v1/flavors", {"name": "rbac-flavor", "vcpus": 1, "memory_mib": 64},
                    adm)["id"]
    img = post("/v1/images", {"name": "rbac-image", "kind": "kernel", "arch": "i686",
                              "kernel_path": c.kernel}, adm)
    c.image = img["id"]
    if _wait_job(d, adm, img["job_id"])["state"] != "succeeded":
        raise AssertionError("setup: the image import failed")
    c.vm, c.vmjob = {}, {}
    for key in ("A1", "A1a", "B1"):
        job = post("/v1/vms", {"name": f"rbac-vm-{key}", "department_id": c.dept[key],
                               "flavor_id": c.flavor, "image_id": c.image}, adm, want=202)
        c.vm[key], c.vmjob[key] = job["resource_id"], job["id"]
    for key, jid in c.vmjob.items():
        if _wait_job(d, adm, jid)["state"] != "succeeded":
            raise AssertionError(f"setup: the VM of {key} was not created")

    # finished jobs, one per department and one of the platform
    c.job = {}
    for key, who in (("A1", "department_admin"), ("A1a", "a1a_admin"), ("B", "dab"),
                     ("plat", None)):
        tok = c.tok[who] if who else adm
        r = d.request("POST", "/v1/jobs",
                      {"kind": "test.sleep", "params": {"steps": 1, "step_ms": 0}}, token=tok)
        if r.status != 202:
            raise AssertionError(f"setup: job for {key}: {r}")
        c.job[key] = r.json["id"]
    deadline = time.time() + 30
    for key, jid in c.job.items():
        while True:
            r = d.request("GET", f"/v1/jobs/{jid}", token=adm)
            if r.json["state"] in ("succeeded", "failed", "cancelled"):
                break
            if time.time() > deadline:
                raise AssertionError(f"setup: job {key} did not finish: {r}")
            time.sleep(0.02)


def _wait_job(d, token, jid, timeout=30):
    """Polls a job until it ends; returns it."""
    deadline = time.time() + timeout
    while True:
        r = d.request("GET", f"/v1/jobs/{jid}", token=token)
        if r.status != 200:
            raise AssertionError(f"GET job {jid}: {r}")
        if r.json["state"] in ("succeeded", "failed", "cancelled"):
            return r.json
        if time.time() > deadline:
            raise AssertionError(f"job {jid} did not end in {timeout}s: {r.json}")
        time.sleep(0.01)


# ---- the cases: one function per (route, case), called as fn(test, role) -> Response ----
RUNNERS = {}


def case(route, name):
    def deco(fn):
        RUNNERS[(route, name)] = fn
        return fn
    return deco


for _r in ("GET /healthz", "GET /readyz", "GET /metrics", "GET /v1/openapi.json",
           "GET /v1/version"):
    RUNNERS[(_r, "anyone")] = (lambda route: lambda t, role: t.as_(
        role, *route.split(" ", 1)))(_r)


@case("POST /v1/tokens", "own credentials")
def _(t, role):
    r = t.d.request("POST", "/v1/tokens",
                    {"username": t.user[role]["username"], "password": t.pw[role]})
    if r.status == 201:
        t.assertEqual(r.json["user"]["id"], t.user[role]["id"])
        me = t.d.request("GET", "/v1/users/me", token=r.json["token"])
        t.assertEqual(me.status, 200, me)
        t.assertEqual(me.json["role"], role)
    return r


@case("POST /v1/tokens", "wrong password")
def _(t, role):
    r = t.d.request("POST", "/v1/tokens",
                    {"username": t.user[role]["username"], "password": "Wrong-Passw0rd!"})
    t.assertNotIn("token", r.json or {})
    return r


@case("DELETE /v1/tokens/current", "fresh session")
def _(t, role):
    tok = t.d.login(t.user[role]["username"], t.pw[role])
    r = t.d.request("DELETE", "/v1/tokens/current", token=tok)
    if r.status == 204:
        after = t.d.request("GET", "/v1/users/me", token=tok)
        t.assertEqual(after.status, 401, "a logged-out token still works")
        # the role's other session is untouched
        t.assertEqual(t.as_(role, "GET", "/v1/users/me").status, 200)
    return r


@case("GET /v1/api-keys", "own keys")
def _(t, role):
    r = t.as_(role, "GET", "/v1/api-keys?limit=500")
    if r.status == 200:
        ids = {k["id"] for k in r.json["items"]}
        t.assertIn(t.key[role], ids, "own API key missing from the list")
        others = {v for k, v in t.key.items() if k != role}
        t.assertFalse(ids & others, "another user's API key is listed")
        for k in r.json["items"]:
            t.assertNotIn("key", k, "the secret of an API key is shown again")
    return r


@case("POST /v1/api-keys", "own key")
def _(t, role):
    r = t.as_(role, "POST", "/v1/api-keys", {"name": uniq("k")})
    if r.status == 201:
        t.assertTrue(r.json["key"].startswith("gck_"), r)
        me = t.d.request("GET", "/v1/users/me", token=r.json["key"])
        t.assertEqual(me.status, 200, me)
        t.assertEqual(me.json["id"], t.user[role]["id"], "an API key acts as another user")
        t.assertEqual(t.as_(role, "DELETE", f"/v1/api-keys/{r.json['id']}").status, 204)
    return r


@case("DELETE /v1/api-keys/{id}", "own key")
def _(t, role):
    k = t.as_(role, "POST", "/v1/api-keys", {"name": uniq("k")})
    t.assertEqual(k.status, 201, k)
    r = t.as_(role, "DELETE", f"/v1/api-keys/{k.json['id']}")
    if r.status == 204:
        t.assertEqual(t.d.request("GET", "/v1/users/me", token=k.json["key"]).status, 401,
                      "a revoked API key still works")
    return r


@case("DELETE /v1/api-keys/{id}", "another user's key")
def _(t, role):
    r = t.as_(role, "DELETE", f"/v1/api-keys/{t.admin_key['id']}")
    t.assertEqual(t.d.request("GET", "/v1/users/me", token=t.admin_key["key"]).status, 200,
                  "another user's API key was revoked")
    return r


@case("GET /v1/departments", "list")
def _(t, role):
    return t.as_(role, "GET", "/v1/departments?limit=500")


def _dept_create(t, role, parent):
    name = uniq("新部门")
    body = {"name": name}
    if parent:
        body["parent_id"] = t.dept[parent]
    r = t.as_(role, "POST", "/v1/departments", body)
    found = t.d.request("GET", "/v1/departments?" + _q(name=name), token=t.admin).json["items"]
    if r.status == 201:
        t.assertEqual(r.json["parent_id"], t.dept[parent] if parent else None)
        t.assertEqual(r.headers.get("Location"), f"/v1/departments/{r.json['id']}")
        t.assertEqual([x["id"] for x in found], [r.json["id"]])
    else:
        t.assertEqual(found, [], "a refused POST /v1/departments created a department")
    for x in found:
        t.assertEqual(t.d.request("DELETE", f"/v1/departments/{x['id']}",
                                  token=t.admin).status, 204)
    return r


case("POST /v1/departments", "top level")(lambda t, role: _dept_create(t, role, None))
case("POST /v1/departments", "under A1a")(lambda t, role: _dept_create(t, role, "A1a"))
case("POST /v1/departments", "under B1")(lambda t, role: _dept_create(t, role, "B1"))


def _dept_get(key):
    def run(t, role):
        r = t.as_(role, "GET", f"/v1/departments/{t.dept[key]}")
        if r.status == 200:
            t.assertEqual(r.json["id"], t.dept[key])
        return r
    return run


for _k, _c in (("A", "A (above A1)"), ("A1", "A1"), ("A1a", "A1a"), ("B1", "B1")):
    case("GET /v1/departments/{id}", _c)(_dept_get(_k))


def _dept_patch(key):
    def run(t, role):
        path = f"/v1/departments/{t.dept[key]}"
        before = t.d.request("GET", path, token=t.admin).json
        desc = uniq("desc-")
        r = t.as_(role, "PATCH", path, {"description": desc})
        after = t.d.request("GET", path, token=t.admin).json
        if r.status == 200:
            t.assertEqual(r.json["description"], desc)
            t.assertEqual(after["description"], desc)
            t.assertEqual(after["version"], before["version"] + 1)
        else:
            t.assertEqual(after, before, "a refused PATCH changed the department")
        return r
    return run


for _k in ("A1", "A1a", "B1"):
    case("PATCH /v1/departments/{id}", f"{_k} description")(_dept_patch(_k))


def _dept_delete(parent):
    def run(t, role):
        if parent == "A1":   # the A1 case: delete A1 itself
            target = t.dept["A1"]
        else:
            target = t.admin_post("/v1/departments",
                                  {"name": uniq("叶"), "parent_id": t.dept[parent]})["id"]
        r = t.as_(role, "DELETE", f"/v1/departments/{target}")
        still = t.d.request("GET", f"/v1/departments/{target}", token=t.admin).status
        if r.status == 204:
            t.assertEqual(still, 404, "a deleted department is still there")
        else:
            t.assertEqual(still, 200, "a refused DELETE removed the department")
            if parent != "A1":
                t.assertEqual(t.d.request("DELETE", f"/v1/departments/{target}",
                                          token=t.admin).status, 204)
        return r
    return run


case("DELETE /v1/departments/{id}", "empty department under A1a")(_dept_delete("A1a"))
case("DELETE /v1/departments/{id}", "empty department under B1")(_dept_delete("B1"))
case("DELETE /v1/departments/{id}", "A1")(_dept_delete("A1"))


@case("GET /v1/users", "list")
def _(t, role):
    return t.as_(role, "GET", "/v1/users?limit=500")


def _user_create(urole, dept):
    def run(t, role):
        name = uniq("n-")
        body = {"username": name, "password": PASSWORD, "role": urole}
        if dept:
            body["department_id"] = t.dept[dept]
        r = t.as_(role, "POST", "/v1/users", body)
        found = t.d.request("GET", "/v1/users?" + _q(username=name), token=t.admin).json["items"]
        if r.status == 201:
            t.assertEqual(r.json["role"], urole)
            t.assertEqual(r.json["department_id"], t.dept[dept] if dept else None)
            t.assertNotIn("password", r.json)
            t.assertNotIn("password_hash", r.json)
            t.assertEqual([x["id"] for x in found], [r.json["id"]])
        else:
            t.assertEqual(found, [], "a refused POST /v1/users created a user")
        for x in found:
            t.assertEqual(t.d.request("DELETE", f"/v1/users/{x['id']}", token=t.admin).status,
                          204)
        return r
    return run


case("POST /v1/users", "department_user in A1a")(_user_create("department_user", "A1a"))
case("POST /v1/users", "department_user in B1")(_user_create("department_user", "B1"))
case("POST /v1/users", "operator")(_user_create("operator", None))


@case("GET /v1/users/me", "self")
def _(t, role):
    r = t.as_(role, "GET", "/v1/users/me")
    if r.status == 200:
        t.assertEqual(r.json["id"], t.user[role]["id"])
        t.assertEqual(r.json["role"], role)
    return r


def _user_get(key):
    def run(t, role):
        uid = t.user[role]["id"] if key == "self" else "me" if key == "me" else t.victim[key]
        r = t.as_(role, "GET", f"/v1/users/{uid}")
        if r.status == 200:
            t.assertEqual(r.json["id"], t.user[role]["id"] if key == "me" else uid)
            t.assertNotIn("password_hash", r.json)
        return r
    return run


for _k, _c in (("self", "self"), ("me", "me"), ("A1", "user in A1"), ("A1a", "user in A1a"),
               ("B1", "user in B1"), ("plat", "platform user")):
    case("GET /v1/users/{id}", _c)(_user_get(_k))


def _user_patch(key):
    def run(t, role):
        uid = t.user[role]["id"] if key in ("self", "me") else t.victim[key]
        path = f"/v1/users/{uid}"
        before = t.d.request("GET", path, token=t.admin).json
        name = uniq("显示名")
        r = t.as_(role, "PATCH", "/v1/users/me" if key == "me" else path, {"display_name": name})
        after = t.d.request("GET", path, token=t.admin).json
        if r.status == 200:
            t.assertEqual(after["display_name"], name)
        else:
            t.assertEqual(after, before, "a refused PATCH changed the user")
        return r
    return run


for _k, _c in (("self", "self display_name"), ("me", "me display_name"),
               ("A1", "user in A1 display_name"),
               ("A1a", "user in A1a display_name"), ("B1", "user in B1 display_name"),
               ("plat", "platform user display_name")):
    case("PATCH /v1/users/{id}", _c)(_user_patch(_k))


@case("PATCH /v1/users/{id}", "self password")
def _(t, role):
    new = "Changed-" + uniq("Pw0rd!")
    r = t.as_(role, "PATCH", f"/v1/users/{t.user[role]['id']}",
              {"password": new, "current_password": t.pw[role]})
    if r.status == 200:
        old = t.pw[role]
        t.pw[role] = new
        ok = t.d.request("POST", "/v1/tokens", {"username": t.user[role]["username"],
                                                "password": new})
        t.assertEqual(ok.status, 201, "the new password does not work")
        bad = t.d.request("POST", "/v1/tokens", {"username": t.user[role]["username"],
                                                 "password": old})
        t.assertEqual(bad.status, 401, "the old password still works")
        t.assertEqual(t.as_(role, "GET", "/v1/users/me").status, 200,
                      "changing the password ended the session that changed it")
    return r


@case("PATCH /v1/users/{id}", "self role")
def _(t, role):
    target = "operator" if role != "operator" else "auditor"
    r = t.as_(role, "PATCH", f"/v1/users/{t.user[role]['id']}", {"role": target})
    me = t.as_(role, "GET", "/v1/users/me")
    t.assertEqual(me.json["role"], role, "a user changed their own role")
    return r


@case("PATCH /v1/users/{id}", "user in A1 made operator")
def _(t, role):
    uid = t.admin_post("/v1/users", {"username": uniq("m-"), "password": PASSWORD,
                                     "role": "department_user",
                                     "department_id": t.dept["A1"]})["id"]
    r = t.as_(role, "PATCH", f"/v1/users/{uid}", {"role": "operator"})
    after = t.d.request("GET", f"/v1/users/{uid}", token=t.admin).json
    if r.status == 200:
        t.assertEqual((after["role"], after["department_id"]), ("operator", None))
    else:
        t.assertEqual((after["role"], after["department_id"]),
                      ("department_user", t.dept["A1"]), "a refused PATCH changed the role")
    t.assertEqual(t.d.request("DELETE", f"/v1/users/{uid}", token=t.admin).status, 204)
    return r


@case("DELETE /v1/users/{id}", "self")
def _(t, role):
    r = t.as_(role, "DELETE", f"/v1/users/{t.user[role]['id']}")
    t.assertEqual(t.as_(role, "GET", "/v1/users/me").status, 200, "a user deleted themselves")
    return r


@case("DELETE /v1/users/{id}", "me")
def _(t, role):
    r = t.as_(role, "DELETE", "/v1/users/me")
    t.assertEqual(t.as_(role, "GET", "/v1/users/me").status, 200, "a user deleted themselves")
    return r


def _user_delete(urole, dept):
    def run(t, role):
        body = {"username": uniq("del-"), "password": PASSWORD, "role": urole}
        if dept:
            body["department_id"] = t.dept[dept]
        uid = t.admin_post("/v1/users", body)["id"]
        r = t.as_(role, "DELETE", f"/v1/users/{uid}")
        still = t.d.request("GET", f"/v1/users/{uid}", token=t.admin).status
        if r.status == 204:
            t.assertEqual(still, 404, "a deleted user is still there")
        else:
            t.assertEqual(still, 200, "a refused DELETE removed the user")
            t.assertEqual(t.d.request("DELETE", f"/v1/users/{uid}", token=t.admin).status, 204)
        return r
    return run


case("DELETE /v1/users/{id}", "user in A1a")(_user_delete("department_user", "A1a"))
case("DELETE /v1/users/{id}", "user in B1")(_user_delete("department_user", "B1"))
case("DELETE /v1/users/{id}", "platform user")(_user_delete("operator", None))


@case("GET /v1/audit-events", "list")
def _(t, role):
    return t.as_(role, "GET", "/v1/audit-events?limit=500")


@case("GET /v1/audit-events/verify", "verify")
def _(t, role):
    r = t.as_(role, "GET", "/v1/audit-events/verify")
    if r.status == 200:
        t.assertIs(r.json["intact"], True, r)
    return r


RBAC_METRIC = "govcloud_rbac_test"
SEES = {"platform_admin": 4, "operator": 4, "auditor": 4, "supervisor": 4,
        "department_admin": 2, "department_user": 1}


def _metrics_world(t):
    """Injects one sample per series once ([tsdb] test_ingest is on for this daemon)."""
    if getattr(t.__class__, "_metrics_done", False):
        return
    smp = [{"metric": RBAC_METRIC, "labels": {"department_id": t.dept[k], "resource_id": t.vm[k]},
            "t_ms": int(time.time() * 1000), "value": 1} for k in ("A1", "A1a", "B1")]
    smp.append({"metric": RBAC_METRIC, "labels": {"host_id": t.host},
                "t_ms": int(time.time() * 1000), "value": 1})
    r = t.d.request("POST", "/v1/metrics/test-samples", {"samples": smp, "flush": True},
                    token=t.admin)
    t.assertEqual(r.status, 200, r)
    t.__class__._metrics_done = True


@case("GET /v1/metrics/query", "series of A1, A1a, B1, host")
def _(t, role):
    _metrics_world(t)
    r = t.as_(role, "GET", f"/v1/metrics/query?metric={RBAC_METRIC}&step=1h")
    if r.status == 200:
        t.assertEqual(len(r.json["series"]), SEES[role], r.json)
    return r


@case("GET /v1/metrics/series", "series of A1, A1a, B1, host")
def _(t, role):
    _metrics_world(t)
    r = t.as_(role, "GET", f"/v1/metrics/series?metric={RBAC_METRIC}")
    if r.status == 200:
        t.assertEqual(len(r.json["items"]), SEES[role], r.json)
    return r


@case("POST /v1/metrics/test-samples", "one sample")
def _(t, role):
    return t.as_(role, "POST", "/v1/metrics/test-samples",
                 {"samples": [{"metric": "govcloud_rbac_inject", "labels": {},
                               "t_ms": int(time.time() * 1000), "value": 1}]})


@case("GET /v1/jobs", "list")
def _(t, role):
    return t.as_(role, "GET", "/v1/jobs?limit=500")


@case("POST /v1/jobs", "test.sleep")
def _(t, role):
    r = t.as_(role, "POST", "/v1/jobs", {"kind": "test.sleep",
                                         "params": {"steps": 1, "step_ms": 0}})
    if r.status == 202:
        dept = t.user[role]["department_id"]
        t.assertEqual(r.json["department_id"], dept)
        t.assertEqual(r.json["created_by"], t.user[role]["id"])
        t.assertEqual(r.headers.get("Location"), f"/v1/jobs/{r.json['id']}")
    return r


@case("GET /v1/hosts", "list")
def _(t, role):
    r = t.as_(role, "GET", "/v1/hosts?limit=500")
    if r.status == 200:
        t.assertIn(t.host, [h["id"] for h in r.json["items"]])
    return r


def _host_volatile(h):
    """A host without the fields the host manager keeps updating by itself."""
    return {k: v for k, v in h.items()
            if k not in ("updated_at", "last_seen_at", "state", "last_error")}


@case("POST /v1/hosts", "test:///default")
def _(t, role):
    name = uniq("host-")
    r = t.as_(role, "POST", "/v1/hosts", {"name": name, "uri": f"test:///default?{name}"})
    found = t.d.request("GET", "/v1/hosts?" + _q(name=name), token=t.admin).json["items"]
    if r.status == 201:
        t.assertEqual(r.json["name"], name)
        t.assertEqual(r.headers.get("Location"), f"/v1/hosts/{r.json['id']}")
        t.assertEqual([h["id"] for h in found], [r.json["id"]])
    else:
        t.assertEqual(found, [], "a refused POST /v1/hosts registered a host")
    for h in found:
        t.assertEqual(t.d.request("DELETE", f"/v1/hosts/{h['id']}", token=t.admin).status, 204)
    return r


@case("GET /v1/hosts/{id}", "host")
def _(t, role):
    r = t.as_(role, "GET", f"/v1/hosts/{t.host}")
    if r.status == 200:
        t.assertEqual(r.json["id"], t.host)
    return r


@case("PATCH /v1/hosts/{id}", "description")
def _(t, role):
    path = f"/v1/hosts/{t.host}"
    before = t.d.request("GET", path, token=t.admin).json
    desc = uniq("desc-")
    r = t.as_(role, "PATCH", path, {"description": desc})
    after = t.d.request("GET", path, token=t.admin).json
    if r.status == 200:
        t.assertEqual(after["description"], desc)
    else:
        t.assertEqual(_host_volatile(after), _host_volatile(before),
                      "a refused PATCH changed the host")
    return r


@case("DELETE /v1/hosts/{id}", "fresh host")
def _(t, role):
    name = uniq("host-")
    hid = t.admin_post("/v1/hosts", {"name": name, "uri": f"test:///default?{name}"})["id"]
    r = t.as_(role, "DELETE", f"/v1/hosts/{hid}")
    still = t.d.request("GET", f"/v1/hosts/{hid}", token=t.admin).status
    if r.status == 204:
        t.assertEqual(still, 404, "a deleted host is still there")
    else:
        t.assertEqual(still, 200, "a refused DELETE removed the host")
        t.assertEqual(t.d.request("DELETE", f"/v1/hosts/{hid}", token=t.admin).status, 204)
    return r


@case("GET /v1/supervision/public-key", "identity")
def _(t, role):
    r = t.as_(role, "GET", "/v1/supervision/public-key")
    if r.status == 200:
        t.assertIn("BEGIN PUBLIC KEY", r.json["public_key_pem"])
        t.assertEqual(len(r.json["cloud_id"]), 36)
    return r


@case("GET /v1/zones", "list")
def _(t, role):
    r = t.as_(role, "GET", "/v1/zones?limit=500")
    if r.status == 200:
        t.assertIn("default", [z["name"] for z in r.json["items"]])
    return r


@case("GET /v1/zones/{name}", "default")
def _(t, role):
    r = t.as_(role, "GET", "/v1/zones/default")
    if r.status == 200:
        t.assertEqual(r.json["name"], "default")
        t.assertGreaterEqual(r.json["hosts"], 1)
    return r


@case("PUT /v1/zones/{name}", "fresh zone")
def _(t, role):
    name = uniq("zone-")
    r = t.as_(role, "PUT", f"/v1/zones/{name}", {"cpu_overcommit_percent": 300})
    after = t.d.request("GET", f"/v1/zones/{name}", token=t.admin)
    if r.status == 200:
        t.assertEqual(after.json["cpu_overcommit_percent"], 300)
    else:
        t.assertEqual(after.status, 404, "a refused PUT stored the zone")
    return r


def _availability(q, scope_key=None):
    def run(t, role):
        query = q if scope_key is None else f"{q}&id={t.dept[scope_key]}"
        r = t.as_(role, "GET", "/v1/availability?" + query)
        if r.status == 200:
            t.assertIn("availability_percent", r.json)
        return r
    return run


case("GET /v1/availability", "platform")(_availability("scope=platform"))
case("GET /v1/availability", "department A1")(_availability("scope=department", "A1"))
case("GET /v1/availability", "department B1")(_availability("scope=department", "B1"))


def _window_body():
    now = time.time()
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    return {"scope": "platform", "starts_at": time.strftime(fmt, time.gmtime(now + 3600)),
            "ends_at": time.strftime(fmt, time.gmtime(now + 7200)), "description": "rbac"}


@case("GET /v1/maintenance-windows", "list")
def _(t, role):
    return t.as_(role, "GET", "/v1/maintenance-windows")


@case("POST /v1/maintenance-windows", "platform window")
def _(t, role):
    before = len(t.d.request("GET", "/v1/maintenance-windows?limit=500",
                             token=t.admin).json["items"])
    r = t.as_(role, "POST", "/v1/maintenance-windows", _window_body())
    after = t.d.request("GET", "/v1/maintenance-windows?limit=500", token=t.admin).json["items"]
    t.assertEqual(len(after), before + (1 if r.status == 201 else 0))
    if r.status == 201:
        t.d.request("DELETE", f"/v1/maintenance-windows/{r.json['id']}", token=t.admin)
    return r


@case("DELETE /v1/maintenance-windows/{id}", "fresh window")
def _(t, role):
    wid = t.admin_post("/v1/maintenance-windows", _window_body())["id"]
    r = t.as_(role, "DELETE", f"/v1/maintenance-windows/{wid}")
    ids = [w["id"] for w in t.d.request("GET", "/v1/maintenance-windows?limit=500",
                                        token=t.admin).json["items"]]
    t.assertEqual(wid in ids, r.status != 204)
    t.d.request("DELETE", f"/v1/maintenance-windows/{wid}", token=t.admin)
    return r


@case("GET /v1/notification-channels", "list")
def _(t, role):
    return t.as_(role, "GET", "/v1/notification-channels")


@case("POST /v1/notification-channels", "webhook")
def _(t, role):
    name = uniq("hook-")
    r = t.as_(role, "POST", "/v1/notification-channels",
              {"name": name, "url": "http://127.0.0.1:9/hook", "enabled": False})
    names = [c["name"] for c in t.d.request("GET", "/v1/notification-channels?limit=500",
                                            token=t.admin).json["items"]]
    t.assertEqual(name in names, r.status == 201)
    if r.status == 201:
        t.d.request("DELETE", f"/v1/notification-channels/{r.json['id']}", token=t.admin)
    return r


@case("DELETE /v1/notification-channels/{id}", "fresh channel")
def _(t, role):
    cid = t.admin_post("/v1/notification-channels", {"name": uniq("hook-"), "enabled": False,
                                                      "url": "http://127.0.0.1:9/hook"})["id"]
    r = t.as_(role, "DELETE", f"/v1/notification-channels/{cid}")
    ids = [c["id"] for c in t.d.request("GET", "/v1/notification-channels?limit=500",
                                        token=t.admin).json["items"]]
    t.assertEqual(cid in ids, r.status != 204)
    t.d.request("DELETE", f"/v1/notification-channels/{cid}", token=t.admin)
    return r


# -- alarms, alarm rules, silences, availability reports --

def _fresh_alarm(t, dept):
    """A firing service-down alarm of dept: a check of its against a closed port."""
    import socket
    so = socket.socket()
    so.bind(("127.0.0.1", 0))
    port = so.getsockname()[1]
    so.close()
    chk = t.admin_post("/v1/checks", {"name": uniq("down-"), "kind": "tcp",
                                      "host": "127.0.0.1", "port": port,
                                      "interval_seconds": 1, "timeout_ms": 500,
                                      "department_id": t.dept[dept]})["id"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        items = t.d.request("GET", "/v1/alarms?status=firing&limit=500",
                            token=t.admin).json["items"]
        for a in items:
            if a["labels"].get("resource_id") == chk:
                return a["id"], chk
        time.sleep(0.3)
    raise AssertionError(f"no alarm for check {chk}")


def _alarm_get(dept):
    def run(t, role):
        key = "_alarm_" + dept
        if not hasattr(t, key):
            setattr(t, key, _fresh_alarm(t, dept)[0])
        aid = getattr(t, key)
        r = t.as_(role, "GET", f"/v1/alarms/{aid}")
        if r.status == 200:
            t.assertEqual(r.json["department_id"], t.dept[dept])
        lst = t.as_(role, "GET", "/v1/alarms?limit=500").json["items"]
        t.assertEqual(any(a["id"] == aid for a in lst), r.status == 200)
        return r
    return run


def _alarm_ack(dept):
    def run(t, role):
        aid, chk = _fresh_alarm(t, dept)
        r = t.as_(role, "POST", f"/v1/alarms/{aid}/ack", {"comment": "rbac"})
        now = t.d.request("GET", f"/v1/alarms/{aid}", token=t.admin).json
        t.assertEqual(now["acknowledged_by"] is not None, r.status == 200)
        t.d.request("DELETE", f"/v1/checks/{chk}", token=t.admin)
        return r
    return run


for _d in ("A1", "B1"):
    case("GET /v1/alarms/{id}", f"alarm of {_d}")(_alarm_get(_d))
    case("POST /v1/alarms/{id}/ack", f"alarm of {_d}")(_alarm_ack(_d))


@case("GET /v1/alarms", "list")
def _(t, role):
    return t.as_(role, "GET", "/v1/alarms")


@case("GET /v1/alarm-rules", "list")
def _(t, role):
    r = t.as_(role, "GET", "/v1/alarm-rules?limit=500")
    if r.status == 200:
        builtin = [x for x in r.json["items"] if x["builtin"]]
        t.assertEqual(len(builtin), 0 if role.startswith("department_") else 8)
    return r


def _rule_body(dept=None):
    b = {"name": uniq("rule-"), "selector": 'govcloud_vm_vcpus{vm="x"}', "op": ">",
         "threshold": 64, "severity": "warning"}
    if dept:
        b["department_id"] = dept
    return b


@case("POST /v1/alarm-rules", "rule")
def _(t, role):
    body = _rule_body()
    r = t.as_(role, "POST", "/v1/alarm-rules", body)
    names = [x["name"] for x in t.d.request("GET", "/v1/alarm-rules?limit=500",
                                            token=t.admin).json["items"]]
    t.assertEqual(body["name"] in names, r.status == 201)
    if r.status == 201:
        t.assertEqual(r.json["department_id"],
                      t.dept["A1"] if role.startswith("department_") else None)
        t.d.request("DELETE", f"/v1/alarm-rules/{r.json['id']}", token=t.admin)
    return r


@case("GET /v1/alarm-rules/{id}", "built-in")
def _(t, role):
    return t.as_(role, "GET", "/v1/alarm-rules/00000000-0000-7000-8000-000000000004")


def _rule_case(dept, method):
    def run(t, role):
        rid = t.admin_post("/v1/alarm-rules", _rule_body(t.dept[dept]))["id"]
        if method == "GET":
            r = t.as_(role, "GET", f"/v1/alarm-rules/{rid}")
        elif method == "PATCH":
            r = t.as_(role, "PATCH", f"/v1/alarm-rules/{rid}", {"threshold": 65})
            now = t.d.request("GET", f"/v1/alarm-rules/{rid}", token=t.admin).json
            t.assertEqual(now["threshold"], 65 if r.status == 200 else 64)
        else:
            r = t.as_(role, "DELETE", f"/v1/alarm-rules/{rid}")
            still = t.d.request("GET", f"/v1/alarm-rules/{rid}", token=t.admin).status
            t.assertEqual(still, 404 if r.status == 204 else 200)
        t.d.request("DELETE", f"/v1/alarm-rules/{rid}", token=t.admin)
        return r
    return run


case("GET /v1/alarm-rules/{id}", "rule of A1")(_rule_case("A1", "GET"))
case("PATCH /v1/alarm-rules/{id}", "rule of A1")(_rule_case("A1", "PATCH"))
case("PATCH /v1/alarm-rules/{id}", "rule of B1")(_rule_case("B1", "PATCH"))
case("DELETE /v1/alarm-rules/{id}", "rule of A1")(_rule_case("A1", "DELETE"))


@case("GET /v1/silences", "list")
def _(t, role):
    return t.as_(role, "GET", "/v1/silences")


def _silence_body():
    return {"matchers": {"alertname": uniq("nothing-")}, "comment": "rbac",
            "duration_seconds": 600}


@case("POST /v1/silences", "silence")
def _(t, role):
    body = _silence_body()
    r = t.as_(role, "POST", "/v1/silences", body)
    found = [x for x in t.d.request("GET", "/v1/silences?limit=500",
                                    token=t.admin).json["items"]
             if x["matchers"] == body["matchers"]]
    t.assertEqual(len(found), 1 if r.status == 201 else 0)
    return r


@case("DELETE /v1/silences/{id}", "fresh silence")
def _(t, role):
    sid = t.admin_post("/v1/silences", _silence_body())["id"]
    r = t.as_(role, "DELETE", f"/v1/silences/{sid}")
    st = [x["state"] for x in t.d.request("GET", "/v1/silences?limit=500",
                                          token=t.admin).json["items"] if x["id"] == sid]
    t.assertEqual(st, ["expired" if r.status == 204 else "active"])
    return r


def _report(q, scope_key=None):
    def run(t, role):
        year = time.gmtime().tm_year
        query = f"year={year}&{q}" + ("" if scope_key is None else f"&id={t.dept[scope_key]}")
        r = t.as_(role, "GET", "/v1/availability/report?" + query)
        if r.status == 200:
            t.assertEqual(len(r.json["periods"]), time.gmtime().tm_mon)
        return r
    return run


case("GET /v1/availability/report", "platform")(_report("scope=platform"))
case("GET /v1/availability/report", "department A1")(_report("scope=department", "A1"))


def _job_get(key):
    def run(t, role):
        r = t.as_(role, "GET", f"/v1/jobs/{t.job[key]}")
        if r.status == 200:
            t.assertEqual(r.json["id"], t.job[key])
        return r
    return run


for _k, _c in (("A1", "job of A1"), ("A1a", "job of A1a"), ("B", "job of B"),
               ("plat", "platform job")):
    case("GET /v1/jobs/{id}", _c)(_job_get(_k))


def _job_cancel(owner, finished):
    def run(t, role):
        if finished:
            jid = t.job[owner]
        else:
            tok = t.admin if owner == "plat" else t.tok[owner]
            c = t.d.request("POST", "/v1/jobs", {"kind": "test.sleep",
                                                 "params": {"steps": 600, "step_ms": 100}},
                            token=tok)
            t.assertEqual(c.status, 202, c)
            jid = c.json["id"]
        before = t.d.request("GET", f"/v1/jobs/{jid}", token=t.admin).json
        r = t.as_(role, "POST", f"/v1/jobs/{jid}/cancel")
        after = t.d.request("GET", f"/v1/jobs/{jid}", token=t.admin).json
        if r.status == 202:
            t.assertTrue(after["state"] == "cancelled" or after["cancel_requested"], after)
        elif not finished:
            t.assertFalse(after["cancel_requested"], "a refused cancel was recorded")
            t.assertIn(after["state"], ("queued", "running"))
        else:
            t.assertEqual(after["state"], before["state"])
        if not finished and after["state"] in ("queued", "running"):
            t.d.request("POST", f"/v1/jobs/{jid}/cancel", token=t.admin)
        return r
    return run


case("POST /v1/jobs/{id}/cancel", "unfinished job of A1")(_job_cancel("department_admin", False))
case("POST /v1/jobs/{id}/cancel", "unfinished job of B")(_job_cancel("dab", False))
case("POST /v1/jobs/{id}/cancel", "unfinished platform job")(_job_cancel("plat", False))
case("POST /v1/jobs/{id}/cancel", "finished job of A1")(_job_cancel("A1", True))
case("POST /v1/jobs/{id}/cancel", "finished job of B")(_job_cancel("B", True))


# -- data-centre environment --

def _sensor(t):
    return t.admin_post("/v1/sensors", {"name": uniq("sensor-"), "driver": "modbus",
                                        "address": "127.0.0.1", "port": 1, "enabled": False,
                                        "profile": "modbus-th-sensor"})


@case("GET /v1/sensors/profiles", "list")
def _(t, role):
    r = t.as_(role, "GET", "/v1/sensors/profiles")
    if r.status == 200:
        t.assertIn("snmp-ups-rfc1628", [p["name"] for p in r.json["items"]])
    return r


@case("POST /v1/sensors/profiles/check", "good profile")
def _(t, role):
    return t.as_(role, "POST", "/v1/sensors/profiles/check", {
        "name": "p", "driver": "snmp", "readings": [
            {"name": "t", "reading_type": "temperature", "units": "Cel", "oid": "1.3.6.1.4"}]})


@case("GET /v1/sensors/profiles/{name}", "embedded")
def _(t, role):
    return t.as_(role, "GET", "/v1/sensors/profiles/modbus-th-sensor")


@case("GET /v1/sensors", "list")
def _(t, role):
    return t.as_(role, "GET", "/v1/sensors")


@case("POST /v1/sensors", "modbus sensor")
def _(t, role):
    name = uniq("sensor-")
    r = t.as_(role, "POST", "/v1/sensors", {"name": name, "driver": "modbus", "port": 1,
                                            "address": "127.0.0.1", "enabled": False,
                                            "profile": "modbus-th-sensor"})
    names = [s["name"] for s in t.d.request("GET", "/v1/sensors?limit=500",
                                            token=t.admin).json["items"]]
    t.assertEqual(name in names, r.status == 201)
    if r.status == 201:
        t.d.request("DELETE", f"/v1/sensors/{r.json['id']}", token=t.admin)
    return r


@case("GET /v1/sensors/{id}", "platform sensor")
def _(t, role):
    sid = _sensor(t)["id"]
    r = t.as_(role, "GET", f"/v1/sensors/{sid}")
    t.d.request("DELETE", f"/v1/sensors/{sid}", token=t.admin)
    return r


@case("PATCH /v1/sensors/{id}", "platform sensor")
def _(t, role):
    sid = _sensor(t)["id"]
    r = t.as_(role, "PATCH", f"/v1/sensors/{sid}", {"room": "R-" + role})
    room = t.d.request("GET", f"/v1/sensors/{sid}", token=t.admin).json["room"]
    t.assertEqual(room == "R-" + role, r.status == 200)
    t.d.request("DELETE", f"/v1/sensors/{sid}", token=t.admin)
    return r


@case("DELETE /v1/sensors/{id}", "fresh sensor")
def _(t, role):
    sid = _sensor(t)["id"]
    r = t.as_(role, "DELETE", f"/v1/sensors/{sid}")
    still = t.d.request("GET", f"/v1/sensors/{sid}", token=t.admin).status == 200
    t.assertEqual(still, r.status != 204)
    t.d.request("DELETE", f"/v1/sensors/{sid}", token=t.admin)
    return r


@case("GET /v1/sensors/{id}/readings", "platform sensor")
def _(t, role):
    sid = _sensor(t)["id"]
    r = t.as_(role, "GET", f"/v1/sensors/{sid}/readings")
    t.d.request("DELETE", f"/v1/sensors/{sid}", token=t.admin)
    return r


# -- quotas --

def _quota_get(key):
    def run(t, role):
        r = t.as_(role, "GET", f"/v1/departments/{t.dept[key]}/quota")
        if r.status == 200:
            t.assertEqual(r.json["department_id"], t.dept[key])
            # the subtree's VMs: A1's and A1a's for A1, B1's for B1 (other cases may add some)
            t.assertGreaterEqual(r.json["usage"]["vms"], 2 if key == "A1" else 1)
        return r
    return run


def _quota_put(key):
    def run(t, role):
        path = f"/v1/departments/{t.dept[key]}/quota"
        r = t.as_(role, "PUT", path, {"vms": 1000})
        now = t.d.request("GET", path, token=t.admin).json["limits"]["vms"]
        if r.status == 200:
            t.assertEqual(now, 1000)
        else:
            t.assertIsNone(now, "a refused PUT changed the quota")
        # leave no limit behind for the other cases
        t.d.request("PUT", path, {"vms": None}, token=t.admin)
        return r
    return run


case("GET /v1/departments/{id}/quota", "quota of A1")(_quota_get("A1"))
case("GET /v1/departments/{id}/quota", "quota of B1")(_quota_get("B1"))
case("PUT /v1/departments/{id}/quota", "quota of A1")(_quota_put("A1"))
case("PUT /v1/departments/{id}/quota", "quota of B1")(_quota_put("B1"))


# -- networks --

def _mknet(t, dept=None):
    body = {"name": uniq("net-"), "mode": "isolated", "ipv4_cidr": "10.99.0.0/24"}
    if dept:
        body["department_id"] = t.dept[dept]
    r = t.d.request("POST", "/v1/networks", body, token=t.admin)
    t.assertEqual(r.status, 201, r)
    return r.json["id"]


@case("GET /v1/networks", "list")
def _(t, role):
    shared, foreign = _mknet(t), _mknet(t, "B1")
    r = t.as_(role, "GET", "/v1/networks?limit=500")
    if r.status == 200:
        ids = [n["id"] for n in r.json["items"]]
        t.assertIn(shared, ids)
        if role.startswith("department_"):
            t.assertNotIn(foreign, ids, "a department sees another department's network")
        else:
            t.assertIn(foreign, ids)
    for n in (shared, foreign):
        t.d.request("DELETE", f"/v1/networks/{n}", token=t.admin)
    return r


@case("POST /v1/networks", "shared network")
def _(t, role):
    name = uniq("net-")
    r = t.as_(role, "POST", "/v1/networks",
              {"name": name, "mode": "nat", "ipv4_cidr": "10.98.0.0/24"})
    found = t.d.request("GET", "/v1/networks?" + _q(name=name), token=t.admin).json["items"]
    t.assertEqual(len(found), 1 if r.status == 201 else 0)
    for n in found:
        t.d.request("DELETE", f"/v1/networks/{n['id']}", token=t.admin)
    return r


def _net_get(dept):
    def run(t, role):
        n = _mknet(t, dept)
        r = t.as_(role, "GET", f"/v1/networks/{n}")
        if r.status == 200:
            t.assertEqual(r.json["id"], n)
        t.d.request("DELETE", f"/v1/networks/{n}", token=t.admin)
        return r
    return run


case("GET /v1/networks/{id}", "shared network")(_net_get(None))
case("GET /v1/networks/{id}", "network of B1")(_net_get("B1"))


@case("DELETE /v1/networks/{id}", "unused network")
def _(t, role):
    n = _mknet(t)
    r = t.as_(role, "DELETE", f"/v1/networks/{n}")
    still = t.d.request("GET", f"/v1/networks/{n}", token=t.admin).status
    t.assertEqual(still, 404 if r.status == 204 else 200)
    t.d.request("DELETE", f"/v1/networks/{n}", token=t.admin)
    return r


# -- VM resize (the matrix's VMs run: a resize is refused with 409 to those allowed) --

def _vm_resize(dept):
    def run(t, role):
        before = t.d.request("GET", f"/v1/vms/{t.vm[dept]}", token=t.admin).json
        r = t.as_(role, "POST", f"/v1/vms/{t.vm[dept]}/resize", {"flavor_id": t.flavor})
        after = t.d.request("GET", f"/v1/vms/{t.vm[dept]}", token=t.admin).json
        t.assertEqual(before["version"], after["version"], "a refused resize changed the VM")
        return r
    return run


case("POST /v1/vms/{id}/resize", "running VM of A1")(_vm_resize("A1"))
case("POST /v1/vms/{id}/resize", "running VM of B1")(_vm_resize("B1"))


def _vm_migrate(dept):
    def run(t, role):
        before = t.d.request("GET", f"/v1/vms/{t.vm[dept]}", token=t.admin).json
        r = t.as_(role, "POST", f"/v1/vms/{t.vm[dept]}/migrate", {})
        after = t.d.request("GET", f"/v1/vms/{t.vm[dept]}", token=t.admin).json
        t.assertEqual(before["version"], after["version"], "a refused migration changed the VM")
        return r
    return run


case("POST /v1/vms/{id}/migrate", "running VM of A1")(_vm_migrate("A1"))
case("POST /v1/vms/{id}/migrate", "running VM of B1")(_vm_migrate("B1"))


@case("POST /v1/hosts/{id}/evacuate", "host")
def _(t, role):
    path = f"/v1/hosts/{t.host}"
    before = t.d.request("GET", path, token=t.admin).json
    r = t.as_(role, "POST", path + "/evacuate")
    after = t.d.request("GET", path, token=t.admin).json
    t.assertEqual(before["version"], after["version"], "a refused evacuation changed the host")
    return r


# -- volumes --

def _mkvol(t, dept):
    r = t.d.request("POST", "/v1/volumes", {"name": uniq("vol-"), "size_gib": 1,
                                             "department_id": t.dept[dept]}, token=t.admin)
    t.assertEqual(r.status, 202, r)
    job = _wait_job(t.d, t.admin, r.json["id"])
    t.assertEqual(job["state"], "succeeded", job)
    return r.json["resource_id"]


def _mksnap(t, vid):
    r = t.d.request("POST", f"/v1/volumes/{vid}/snapshots", {"name": uniq("snap-")},
                    token=t.admin)
    t.assertEqual(r.status, 202, r)
    job = _wait_job(t.d, t.admin, r.json["id"])
    t.assertEqual(job["state"], "succeeded", job)
    return job["params"]["snapshot_id"]


def _snaps(t, vid):
    r = t.d.request("GET", f"/v1/volumes/{vid}/snapshots?limit=500", token=t.admin)
    return [s["id"] for s in r.json["items"]] if r.status == 200 else []


def _rmvol(t, vid):
    for s in _snaps(t, vid):
        r = t.d.request("DELETE", f"/v1/volumes/{vid}/snapshots/{s}", token=t.admin)
        if r.status == 202:
            _wait_job(t.d, t.admin, r.json["id"])
    r = t.d.request("DELETE", f"/v1/volumes/{vid}", token=t.admin)
    if r.status == 202:
        _wait_job(t.d, t.admin, r.json["id"])


@case("GET /v1/volumes", "list")
def _(t, role):
    mine, foreign = _mkvol(t, "A1"), _mkvol(t, "B1")
    r = t.as_(role, "GET", "/v1/volumes?limit=500")
    if r.status == 200:
        ids = [v["id"] for v in r.json["items"]]
        t.assertIn(mine, ids)
        (t.assertNotIn if role.startswith("department_") else t.assertIn)(foreign, ids)
    for v in (mine, foreign):
        _rmvol(t, v)
    return r


def _vol_create(dept):
    def run(t, role):
        name = uniq("vol-")
        r = t.as_(role, "POST", "/v1/volumes",
                  {"name": name, "size_gib": 1, "department_id": t.dept[dept]})
        if r.status == 202:
            _wait_job(t.d, t.admin, r.json["id"])
        found = [v for v in t.d.request("GET", "/v1/volumes?limit=500",
                                        token=t.admin).json["items"] if v["name"] == name]
        t.assertEqual(len(found), 1 if r.status == 202 else 0)
        for v in found:
            _rmvol(t, v["id"])
        return r
    return run


def _vol_get(dept):
    def run(t, role):
        v = _mkvol(t, dept)
        r = t.as_(role, "GET", f"/v1/volumes/{v}")
        if r.status == 200:
            t.assertEqual(r.json["state"], "available")
        _rmvol(t, v)
        return r
    return run


def _vol_delete(dept):
    def run(t, role):
        v = _mkvol(t, dept)
        r = t.as_(role, "DELETE", f"/v1/volumes/{v}")
        if r.status == 202:
            _wait_job(t.d, t.admin, r.json["id"])
        still = t.d.request("GET", f"/v1/volumes/{v}", token=t.admin).status
        t.assertEqual(still, 404 if r.status == 202 else 200)
        _rmvol(t, v)
        return r
    return run


def _vol_attach(dept):
    def run(t, role):
        v = _mkvol(t, dept)
        r = t.as_(role, "POST", f"/v1/volumes/{v}/attach", {"vm_id": t.vm[dept]})
        if r.status == 202:
            _wait_job(t.d, t.admin, r.json["id"])  # the test driver may refuse the device
        else:
            t.assertEqual(t.d.request("GET", f"/v1/volumes/{v}", token=t.admin)
                          .json["state"], "available", "a refused attach changed the volume")
        cur = t.d.request("GET", f"/v1/volumes/{v}", token=t.admin).json
        if cur["state"] == "in-use":
            d = t.d.request("POST", f"/v1/volumes/{v}/detach", token=t.admin)
            _wait_job(t.d, t.admin, d.json["id"])
        _rmvol(t, v)
        return r
    return run


@case("POST /v1/volumes/{id}/detach", "a detached volume of A1")
def _(t, role):
    v = _mkvol(t, "A1")
    r = t.as_(role, "POST", f"/v1/volumes/{v}/detach")
    _rmvol(t, v)
    return r


def _vol_resize(dept):
    def run(t, role):
        v = _mkvol(t, dept)
        r = t.as_(role, "POST", f"/v1/volumes/{v}/resize", {"size_gib": 2})
        if r.status == 202:
            job = _wait_job(t.d, t.admin, r.json["id"])
            size = t.d.request("GET", f"/v1/volumes/{v}", token=t.admin).json["size_gib"]
            # the test driver may not resize; then the job says so and the size stays
            t.assertEqual(size, 2 if job["state"] == "succeeded" else 1, job)
        _rmvol(t, v)
        return r
    return run


def _snap_list(dept):
    def run(t, role):
        v = _mkvol(t, dept)
        s = _mksnap(t, v)
        r = t.as_(role, "GET", f"/v1/volumes/{v}/snapshots")
        if r.status == 200:
            t.assertEqual([x["id"] for x in r.json["items"]], [s])
        _rmvol(t, v)
        return r
    return run


def _snap_create(dept):
    def run(t, role):
        v = _mkvol(t, dept)
        r = t.as_(role, "POST", f"/v1/volumes/{v}/snapshots", {"name": "mine"})
        if r.status == 202:
            _wait_job(t.d, t.admin, r.json["id"])
        t.assertEqual(len(_snaps(t, v)), 1 if r.status == 202 else 0)
        _rmvol(t, v)
        return r
    return run


def _snap_get(dept):
    def run(t, role):
        v = _mkvol(t, dept)
        s = _mksnap(t, v)
        r = t.as_(role, "GET", f"/v1/volumes/{v}/snapshots/{s}")
        if r.status == 200:
            t.assertEqual((r.json["id"], r.json["state"]), (s, "available"))
        _rmvol(t, v)
        return r
    return run


def _snap_delete(dept):
    def run(t, role):
        v = _mkvol(t, dept)
        s = _mksnap(t, v)
        r = t.as_(role, "DELETE", f"/v1/volumes/{v}/snapshots/{s}")
        if r.status == 202:
            t.assertEqual(_wait_job(t.d, t.admin, r.json["id"])["state"], "succeeded")
        t.assertEqual(_snaps(t, v), [] if r.status == 202 else [s])
        _rmvol(t, v)
        return r
    return run


def _vol_revert(dept):
    def run(t, role):
        v = _mkvol(t, dept)
        s = _mksnap(t, v)
        before = t.d.request("GET", f"/v1/volumes/{v}", token=t.admin).json["version"]
        r = t.as_(role, "POST", f"/v1/volumes/{v}/revert", {"snapshot_id": s})
        if r.status == 202:
            t.assertEqual(_wait_job(t.d, t.admin, r.json["id"])["state"], "succeeded")
        after = t.d.request("GET", f"/v1/volumes/{v}", token=t.admin).json["version"]
        (t.assertGreater if r.status == 202 else t.assertEqual)(after, before)
        _rmvol(t, v)
        return r
    return run


for _d, _a in (("A1", "an A1"), ("B1", "a B1")):
    case("GET /v1/volumes/{id}/snapshots", f"snapshots of {_a} volume")(_snap_list(_d))
    case("POST /v1/volumes/{id}/snapshots", f"snapshot of {_a} volume")(_snap_create(_d))
    case("GET /v1/volumes/{id}/snapshots/{snapshot_id}",
         f"snapshot of {_a} volume")(_snap_get(_d))
    case("DELETE /v1/volumes/{id}/snapshots/{snapshot_id}",
         f"snapshot of {_a} volume")(_snap_delete(_d))
    case("POST /v1/volumes/{id}/revert", f"volume of {_d} to its snapshot")(_vol_revert(_d))

for _d in ("A1", "B1"):
    case("POST /v1/volumes", f"volume of {_d}")(_vol_create(_d))
    case("GET /v1/volumes/{id}", f"volume of {_d}")(_vol_get(_d))
    case("DELETE /v1/volumes/{id}", f"volume of {_d}")(_vol_delete(_d))
    case("POST /v1/volumes/{id}/resize", f"volume of {_d}")(_vol_resize(_d))
    case("POST /v1/volumes/{id}/attach", f"{_d} volume to the {_d} VM")(_vol_attach(_d))


# -- public IPs --

def _extnet(t):
    if not getattr(t, "_ext", None):
        r = t.d.request("POST", "/v1/networks", {"name": uniq("rbac-ext-"), "mode": "nat",
                                                 "ipv4_cidr": "198.51.100.192/26",
                                                 "external": True}, token=t.admin)
        t.assertEqual(r.status, 201, r)
        type(t)._ext = r.json["id"]
    return t._ext


def _mkpip(t, dept):
    r = t.d.request("POST", "/v1/public-ips", {"network_id": _extnet(t),
                                               "department_id": t.dept[dept]}, token=t.admin)
    t.assertEqual(r.status, 201, r)
    return r.json["id"]


def _rmpip(t, pid):
    t.d.request("DELETE", f"/v1/public-ips/{pid}", token=t.admin)


@case("GET /v1/public-ips", "list")
def _(t, role):
    mine, foreign = _mkpip(t, "A1"), _mkpip(t, "B1")
    r = t.as_(role, "GET", "/v1/public-ips?limit=500")
    if r.status == 200:
        ids = [p["id"] for p in r.json["items"]]
        t.assertIn(mine, ids)
        (t.assertNotIn if role.startswith("department_") else t.assertIn)(foreign, ids)
    for p in (mine, foreign):
        _rmpip(t, p)
    return r


def _pip_create(dept):
    def run(t, role):
        r = t.as_(role, "POST", "/v1/public-ips", {"network_id": _extnet(t),
                                                   "department_id": t.dept[dept]})
        mine = t.d.request("GET", "/v1/public-ips?" + _q(department_id=t.dept[dept]),
                           token=t.admin).json["items"]
        if r.status == 201:
            t.assertEqual(r.json["department_id"], t.dept[dept])
            t.assertEqual([p["id"] for p in mine], [r.json["id"]])
        else:
            t.assertEqual(mine, [], "a refused POST /v1/public-ips allocated an address")
        for p in mine:
            _rmpip(t, p["id"])
        return r
    return run


def _pip_get(dept):
    def run(t, role):
        pid = _mkpip(t, dept)
        r = t.as_(role, "GET", f"/v1/public-ips/{pid}")
        if r.status == 200:
            t.assertEqual(r.json["id"], pid)
        _rmpip(t, pid)
        return r
    return run


def _pip_delete(dept):
    def run(t, role):
        pid = _mkpip(t, dept)
        r = t.as_(role, "DELETE", f"/v1/public-ips/{pid}")
        still = t.d.request("GET", f"/v1/public-ips/{pid}", token=t.admin).status
        t.assertEqual(still, 404 if r.status == 204 else 200)
        _rmpip(t, pid)
        return r
    return run


def _pip_associate(dept):
    def run(t, role):
        pid = _mkpip(t, dept)
        r = t.as_(role, "POST", f"/v1/public-ips/{pid}/associate", {"vm_id": t.vm[dept]})
        if r.status == 202:
            # the test driver cannot attach an interface: the job fails, the address is free
            _wait_job(t.d, t.admin, r.json["id"])
        p = t.d.request("GET", f"/v1/public-ips/{pid}", token=t.admin).json
        t.assertEqual((p["state"], p["vm_id"]), ("available", None), p)
        _rmpip(t, pid)
        return r
    return run


@case("POST /v1/public-ips/{id}/disassociate", "an available address of A1")
def _(t, role):
    pid = _mkpip(t, "A1")
    r = t.as_(role, "POST", f"/v1/public-ips/{pid}/disassociate")
    _rmpip(t, pid)
    return r


for _d in ("A1", "B1"):
    case("POST /v1/public-ips", f"for {_d}")(_pip_create(_d))
    case("GET /v1/public-ips/{id}", f"of {_d}")(_pip_get(_d))
    case("DELETE /v1/public-ips/{id}", f"of {_d}")(_pip_delete(_d))
    case("POST /v1/public-ips/{id}/associate", f"{_d} address to the {_d} VM")(
        _pip_associate(_d))


# -- service checks --

def _mkcheck(t, dept):
    r = t.d.request("POST", "/v1/checks", {"name": uniq("chk-"), "kind": "tcp",
                                           "host": "10.98.0.1", "port": 80,
                                           "interval_seconds": 600,
                                           "department_id": t.dept[dept]}, token=t.admin)
    t.assertEqual(r.status, 201, r)
    return r.json["id"]


@case("GET /v1/checks", "list")
def _(t, role):
    mine, foreign = _mkcheck(t, "A1"), _mkcheck(t, "B1")
    r = t.as_(role, "GET", "/v1/checks?limit=500")
    if r.status == 200:
        ids = [c["id"] for c in r.json["items"]]
        t.assertIn(mine, ids)
        (t.assertNotIn if role.startswith("department_") else t.assertIn)(foreign, ids)
    for c in (mine, foreign):
        t.d.request("DELETE", f"/v1/checks/{c}", token=t.admin)
    return r


def _chk_create(dept):
    def run(t, role):
        name = uniq("chk-")
        r = t.as_(role, "POST", "/v1/checks",
                  {"name": name, "kind": "tcp", "host": "10.98.0.1", "port": 80,
                   "interval_seconds": 600, "department_id": t.dept[dept]})
        found = [c for c in t.d.request("GET", "/v1/checks?limit=500",
                                        token=t.admin).json["items"] if c["name"] == name]
        t.assertEqual(len(found), 1 if r.status == 201 else 0)
        for c in found:
            t.d.request("DELETE", f"/v1/checks/{c['id']}", token=t.admin)
        return r
    return run


def _chk_get(dept):
    def run(t, role):
        c = _mkcheck(t, dept)
        r = t.as_(role, "GET", f"/v1/checks/{c}")
        if r.status == 200:
            t.assertEqual(r.json["host"], "10.98.0.1")
        t.d.request("DELETE", f"/v1/checks/{c}", token=t.admin)
        return r
    return run


def _chk_update(dept):
    def run(t, role):
        c = _mkcheck(t, dept)
        r = t.as_(role, "PATCH", f"/v1/checks/{c}", {"interval_seconds": 300})
        now = t.d.request("GET", f"/v1/checks/{c}", token=t.admin).json
        t.assertEqual(now["interval_seconds"], 300 if r.status == 200 else 600)
        t.d.request("DELETE", f"/v1/checks/{c}", token=t.admin)
        return r
    return run


def _chk_delete(dept):
    def run(t, role):
        c = _mkcheck(t, dept)
        r = t.as_(role, "DELETE", f"/v1/checks/{c}")
        still = t.d.request("GET", f"/v1/checks/{c}", token=t.admin).status
        t.assertEqual(still, 404 if r.status == 204 else 200)
        t.d.request("DELETE", f"/v1/checks/{c}", token=t.admin)
        return r
    return run


for _d in ("A1", "B1"):
    case("POST /v1/checks", f"check of {_d}")(_chk_create(_d))
    case("GET /v1/checks/{id}", f"check of {_d}")(_chk_get(_d))
    case("PATCH /v1/checks/{id}", f"check of {_d}")(_chk_update(_d))
    case("DELETE /v1/checks/{id}", f"check of {_d}")(_chk_delete(_d))


# -- server groups --

def _mksgr(t, dept):
    r = t.d.request("POST", "/v1/server-groups", {"name": uniq("sgr-"), "policy": "anti-affinity",
                                                  "department_id": t.dept[dept]}, token=t.admin)
    t.assertEqual(r.status, 201, r)
    return r.json["id"]


@case("GET /v1/server-groups", "list")
def _(t, role):
    mine, foreign = _mksgr(t, "A1"), _mksgr(t, "B1")
    r = t.as_(role, "GET", "/v1/server-groups?limit=500")
    if r.status == 200:
        ids = [g["id"] for g in r.json["items"]]
        t.assertIn(mine, ids)
        (t.assertNotIn if role.startswith("department_") else t.assertIn)(foreign, ids)
    for g in (mine, foreign):
        t.d.request("DELETE", f"/v1/server-groups/{g}", token=t.admin)
    return r


def _sgr_create(dept):
    def run(t, role):
        name = uniq("sgr-")
        r = t.as_(role, "POST", "/v1/server-groups",
                  {"name": name, "policy": "affinity", "department_id": t.dept[dept]})
        found = [g for g in t.d.request("GET", "/v1/server-groups?limit=500",
                                        token=t.admin).json["items"] if g["name"] == name]
        t.assertEqual(len(found), 1 if r.status == 201 else 0)
        for g in found:
            t.d.request("DELETE", f"/v1/server-groups/{g['id']}", token=t.admin)
        return r
    return run


def _sgr_get(dept):
    def run(t, role):
        g = _mksgr(t, dept)
        r = t.as_(role, "GET", f"/v1/server-groups/{g}")
        if r.status == 200:
            t.assertEqual(r.json["policy"], "anti-affinity")
        t.d.request("DELETE", f"/v1/server-groups/{g}", token=t.admin)
        return r
    return run


def _sgr_delete(dept):
    def run(t, role):
        g = _mksgr(t, dept)
        r = t.as_(role, "DELETE", f"/v1/server-groups/{g}")
        still = t.d.request("GET", f"/v1/server-groups/{g}", token=t.admin).status
        t.assertEqual(still, 404 if r.status == 204 else 200)
        t.d.request("DELETE", f"/v1/server-groups/{g}", token=t.admin)
        return r
    return run


for _d in ("A1", "B1"):
    case("POST /v1/server-groups", f"group of {_d}")(_sgr_create(_d))
    case("GET /v1/server-groups/{id}", f"group of {_d}")(_sgr_get(_d))
    case("DELETE /v1/server-groups/{id}", f"group of {_d}")(_sgr_delete(_d))


# -- security groups --

RULE = {"direction": "ingress", "protocol": "tcp", "port_min": 22, "cidr": "10.0.0.0/8"}


def _mksg(t, dept):
    r = t.d.request("POST", "/v1/security-groups",
                    {"name": uniq("sg-"), "department_id": t.dept[dept], "rules": [RULE]},
                    token=t.admin)
    t.assertEqual(r.status, 201, r)
    return r.json


def _cleanup_sg(t, gid):
    t.d.request("DELETE", f"/v1/security-groups/{gid}", token=t.admin)


@case("GET /v1/security-groups", "list")
def _(t, role):
    mine, foreign = _mksg(t, "A1")["id"], _mksg(t, "B1")["id"]
    r = t.as_(role, "GET", "/v1/security-groups?limit=500")
    if r.status == 200:
        ids = [g["id"] for g in r.json["items"]]
        t.assertIn(mine, ids)
        (t.assertNotIn if role.startswith("department_") else t.assertIn)(foreign, ids)
    for g in (mine, foreign):
        _cleanup_sg(t, g)
    return r


def _sg_create(dept):
    def run(t, role):
        name = uniq("sg-")
        r = t.as_(role, "POST", "/v1/security-groups",
                  {"name": name, "department_id": t.dept[dept], "rules": [RULE]})
        found = [g for g in t.d.request("GET", "/v1/security-groups?" + _q(name=name),
                                        token=t.admin).json["items"]]
        t.assertEqual(len(found), 1 if r.status == 201 else 0)
        if r.status == 201:
            t.assertEqual(found[0]["rules"][0]["port_min"], 22)
        for g in found:
            _cleanup_sg(t, g["id"])
        return r
    return run


def _sg_get(dept):
    def run(t, role):
        g = _mksg(t, dept)["id"]
        r = t.as_(role, "GET", f"/v1/security-groups/{g}")
        if r.status == 200:
            t.assertEqual(len(r.json["rules"]), 1)
        _cleanup_sg(t, g)
        return r
    return run


def _sg_delete(dept):
    def run(t, role):
        g = _mksg(t, dept)["id"]
        r = t.as_(role, "DELETE", f"/v1/security-groups/{g}")
        still = t.d.request("GET", f"/v1/security-groups/{g}", token=t.admin).status
        t.assertEqual(still, 404 if r.status == 204 else 200)
        _cleanup_sg(t, g)
        return r
    return run


def _sg_rule_add(dept):
    def run(t, role):
        g = _mksg(t, dept)["id"]
        r = t.as_(role, "POST", f"/v1/security-groups/{g}/rules",
                  {"direction": "egress", "protocol": "udp", "port_min": 53,
                   "cidr": "0.0.0.0/0"})
        rules = t.d.request("GET", f"/v1/security-groups/{g}", token=t.admin).json["rules"]
        t.assertEqual(len(rules), 2 if r.status == 201 else 1)
        _cleanup_sg(t, g)
        return r
    return run


def _sg_rule_delete(dept):
    def run(t, role):
        g = _mksg(t, dept)
        rid = g["rules"][0]["id"]
        r = t.as_(role, "DELETE", f"/v1/security-groups/{g['id']}/rules/{rid}")
        rules = t.d.request("GET", f"/v1/security-groups/{g['id']}", token=t.admin).json["rules"]
        t.assertEqual(len(rules), 0 if r.status == 204 else 1)
        _cleanup_sg(t, g["id"])
        return r
    return run


for _d in ("A1", "B1"):
    case("POST /v1/security-groups", f"group of {_d}")(_sg_create(_d))
    case("GET /v1/security-groups/{id}", f"group of {_d}")(_sg_get(_d))
    case("DELETE /v1/security-groups/{id}", f"unused group of {_d}")(_sg_delete(_d))
    case("POST /v1/security-groups/{id}/rules", f"group of {_d}")(_sg_rule_add(_d))
    case("DELETE /v1/security-groups/{id}/rules/{rule_id}",
         f"rule of a group of {_d}")(_sg_rule_delete(_d))


# -- the catalogue --

@case("GET /v1/flavors", "list")
def _(t, role):
    r = t.as_(role, "GET", "/v1/flavors?limit=500")
    if r.status == 200:
        t.assertIn(t.flavor, [f["id"] for f in r.json["items"]])
    return r


@case("POST /v1/flavors", "flavor")
def _(t, role):
    name = uniq("fl-")
    r = t.as_(role, "POST", "/v1/flavors", {"name": name, "vcpus": 2, "memory_mib": 256})
    found = t.d.request("GET", "/v1/flavors?" + _q(name=name), token=t.admin).json["items"]
    if r.status == 201:
        t.assertEqual(r.headers.get("Location"), f"/v1/flavors/{r.json['id']}")
        t.assertEqual([(f["id"], f["vcpus"], f["memory_mib"]) for f in found],
                      [(r.json["id"], 2, 256)])
    else:
        t.assertEqual(found, [], "a refused POST /v1/flavors created a flavor")
    for f in found:
        t.assertEqual(t.d.request("DELETE", f"/v1/flavors/{f['id']}", token=t.admin).status,
                      204)
    return r


@case("GET /v1/flavors/{id}", "flavor")
def _(t, role):
    r = t.as_(role, "GET", f"/v1/flavors/{t.flavor}")
    if r.status == 200:
        t.assertEqual(r.json["id"], t.flavor)
    return r


def _catalog_delete(kind, in_use):
    def run(t, role):
        if in_use:
            oid = t.flavor if kind == "flavors" else t.image
        elif kind == "flavors":
            oid = t.admin_post("/v1/flavors", {"name": uniq("fd-"), "vcpus": 1,
                                               "memory_mib": 64})["id"]
        else:
            img = t.admin_post("/v1/images", {"name": uniq("id-"), "kind": "kernel",
                                              "arch": "i686", "kernel_path": t.kernel})
            oid = img["id"]
            t.assertEqual(_wait_job(t.d, t.admin, img["job_id"])["state"], "succeeded")
        before = t.d.request("GET", f"/v1/{kind}/{oid}", token=t.admin).json
        r = t.as_(role, "DELETE", f"/v1/{kind}/{oid}")
        after = t.d.request("GET", f"/v1/{kind}/{oid}", token=t.admin)
        if r.status == 204:
            t.assertEqual(after.status, 404, f"a deleted {kind[:-1]} is still there")
        else:
            t.assertEqual(after.json, before, f"a refused DELETE changed the {kind[:-1]}")
            if not in_use:
                t.assertEqual(t.d.request("DELETE", f"/v1/{kind}/{oid}",
                                          token=t.admin).status, 204)
        if in_use and r.status == 409:
            t.assertIn("virtual machine", r.json["detail"])
        return r
    return run


case("DELETE /v1/flavors/{id}", "unused flavor")(_catalog_delete("flavors", False))
case("DELETE /v1/flavors/{id}", "flavor in use")(_catalog_delete("flavors", True))
case("DELETE /v1/images/{id}", "unused image")(_catalog_delete("images", False))
case("DELETE /v1/images/{id}", "image in use")(_catalog_delete("images", True))


@case("GET /v1/images", "list")
def _(t, role):
    r = t.as_(role, "GET", "/v1/images?limit=500")
    if r.status == 200:
        t.assertIn(t.image, [i["id"] for i in r.json["items"]])
    return r


@case("POST /v1/images", "kernel image")
def _(t, role):
    name = uniq("im-")
    r = t.as_(role, "POST", "/v1/images", {"name": name, "kind": "kernel", "arch": "i686",
                                           "kernel_path": t.kernel})
    found = t.d.request("GET", "/v1/images?" + _q(name=name), token=t.admin).json["items"]
    if r.status == 201:
        t.assertEqual(r.headers.get("Location"), f"/v1/images/{r.json['id']}")
        t.assertEqual([i["id"] for i in found], [r.json["id"]])
        t.assertEqual(_wait_job(t.d, t.admin, r.json["job_id"])["state"], "succeeded")
    else:
        t.assertEqual(found, [], "a refused POST /v1/images created an image")
    for i in found:
        t.assertEqual(t.d.request("DELETE", f"/v1/images/{i['id']}", token=t.admin).status,
                      204)
    return r


@case("POST /v1/images", "image to upload")
def _(t, role):
    name = uniq("iu-")
    r = t.as_(role, "POST", "/v1/images", {"name": name, "kind": "disk", "format": "raw",
                                           "arch": "i686", "source": "upload"})
    found = t.d.request("GET", "/v1/images?" + _q(name=name), token=t.admin).json["items"]
    if r.status == 201:
        t.assertEqual((r.json["state"], r.json["source"]), ("uploading", "upload"))
        t.assertEqual([i["id"] for i in found], [r.json["id"]])
    else:
        t.assertEqual(found, [], "a refused POST /v1/images created an image")
    for i in found:
        t.assertEqual(t.d.request("DELETE", f"/v1/images/{i['id']}", token=t.admin).status,
                      204)
    return r


def _upload(t, role, image, query=""):
    before = t.d.request("GET", f"/v1/images/{image}", token=t.admin).json
    r = t.as_(role, "PUT", f"/v1/images/{image}/file{query}", raw=b"\0" * 4096,
              headers={"Content-Type": "application/octet-stream"})
    after = t.d.request("GET", f"/v1/images/{image}", token=t.admin).json
    t.assertEqual(after, before, "a refused upload changed the image")
    return r


@case("PUT /v1/images/{id}/file", "active image")
def _(t, role):
    r = _upload(t, role, t.image)
    if r.status == 409:
        t.assertIn("only an image registered", r.json["detail"])
    return r


@case("PUT /v1/images/{id}/file", "uploading image, malformed sha256")
def _(t, role):
    img = t.admin_post("/v1/images", {"name": uniq("iu-"), "kind": "disk", "format": "raw",
                                      "arch": "i686", "source": "upload"})
    r = _upload(t, role, img["id"], "?sha256=xyz")
    if r.status == 400:
        t.assertEqual(r.json["field"], "sha256")
    t.assertEqual(t.d.request("DELETE", f"/v1/images/{img['id']}", token=t.admin).status, 204)
    return r


@case("GET /v1/images/{id}", "image")
def _(t, role):
    r = t.as_(role, "GET", f"/v1/images/{t.image}")
    if r.status == 200:
        t.assertEqual((r.json["id"], r.json["state"]), (t.image, "active"))
    return r


# -- virtual machines --

# the world's VMs each role sees
VM_SCOPE = {"platform_admin": ("A1", "A1a", "B1"), "operator": ("A1", "A1a", "B1"),
            "auditor": ("A1", "A1a", "B1"), "supervisor": ("A1", "A1a", "B1"),
            "department_admin": ("A1", "A1a"), "department_user": ("A1",)}


@case("GET /v1/vms", "list")
def _(t, role):
    r = t.as_(role, "GET", "/v1/vms?limit=500")
    if r.status == 200:
        listed = {v["id"] for v in r.json["items"]}
        t.assertEqual(listed & set(t.vm.values()), {t.vm[k] for k in VM_SCOPE[role]},
                      f"{role} sees other VMs of the world than its scope")
    return r


def _vm_create(dept, host):
    def run(t, role):
        name = uniq("vm-")
        body = {"name": name, "flavor_id": t.flavor, "image_id": t.image}
        if dept:
            body["department_id"] = t.dept[dept]
        if host:
            body["host_id"] = t.host
        r = t.as_(role, "POST", "/v1/vms", body)
        found = t.d.request("GET", "/v1/vms?" + _q(name=name), token=t.admin).json["items"]
        if r.status == 202:
            t.assertEqual((r.json["kind"], r.json["resource_type"]), ("vm.create", "vm"))
            t.assertEqual(r.headers.get("Location"), f"/v1/jobs/{r.json['id']}")
            t.assertEqual([v["id"] for v in found], [r.json["resource_id"]])
            want = t.dept[dept] if dept else t.user[role]["department_id"]
            t.assertEqual(found[0]["department_id"], want)
            t.assertEqual(found[0]["created_by"], t.user[role]["id"])
            t.assertEqual(_wait_job(t.d, t.admin, r.json["id"])["state"], "succeeded")
        else:
            t.assertEqual(found, [], "a refused POST /v1/vms created a VM")
        for v in found:     # removed in the background
            c = t.d.request("DELETE", f"/v1/vms/{v['id']}", token=t.admin)
            t.assertEqual(c.status, 202, c)
        return r
    return run


case("POST /v1/vms", "in A1")(_vm_create("A1", False))
case("POST /v1/vms", "in B1")(_vm_create("B1", False))
case("POST /v1/vms", "own department")(_vm_create(None, False))
case("POST /v1/vms", "in A1 on a chosen host")(_vm_create("A1", True))


def _vm_get(key, suffix=""):
    def run(t, role):
        r = t.as_(role, "GET", f"/v1/vms/{t.vm[key]}{suffix}")
        if r.status == 200 and not suffix:
            t.assertEqual(r.json["id"], t.vm[key])
        if r.status == 200 and suffix:
            t.assertTrue(r.headers.get("Content-Type", "").startswith("text/plain"), r.headers)
        return r
    return run


for _k in ("A1", "A1a", "B1"):
    case("GET /v1/vms/{id}", f"VM of {_k}")(_vm_get(_k))
    case("GET /v1/vms/{id}/console", f"VM of {_k}")(_vm_get(_k, "/console"))
    case("GET /v1/vms/{id}/vnc", f"VM of {_k}")(
        lambda t, role, _k=_k: t.as_(role, "GET", f"/v1/vms/{t.vm[_k]}/vnc"))


def _vm_action(key, action, power, query=""):
    def run(t, role):
        vid = t.vm[key]
        before = t.d.request("GET", f"/v1/vms/{vid}", token=t.admin).json
        r = t.as_(role, "POST", f"/v1/vms/{vid}/{action}{query}")
        if r.status == 202:
            t.assertEqual((r.json["kind"], r.json["resource_id"]), (f"vm.{action}", vid))
            t.assertEqual(r.json["department_id"], t.dept[key])
            t.assertEqual(_wait_job(t.d, t.admin, r.json["id"])["state"], "succeeded")
            after = t.d.request("GET", f"/v1/vms/{vid}", token=t.admin).json
            t.assertEqual(after["power_state"], power, after)
        else:
            after = t.d.request("GET", f"/v1/vms/{vid}", token=t.admin).json
            t.assertEqual(after, before, f"a refused {action} changed the VM")
        return r
    return run


for _k in ("A1", "A1a", "B1"):
    case("POST /v1/vms/{id}/start", f"VM of {_k}")(_vm_action(_k, "start", "running"))
    case("POST /v1/vms/{id}/stop", f"VM of {_k}")(_vm_action(_k, "stop", "shutoff"))
    case("POST /v1/vms/{id}/reboot", f"VM of {_k}")(_vm_action(_k, "reboot", "running"))
case("POST /v1/vms/{id}/stop", "VM of A1 forced")(
    _vm_action("A1", "stop", "shutoff", "?force=true"))


def _fresh_vm(t, key):
    """A stopped VM of department key, made by the platform admin for one DELETE. They are
    made six at a time (one per role), so that their jobs run together."""
    pool = t.__dict__.setdefault("fresh_vms", {}).setdefault(key, [])
    if not pool:
        jobs = [t.admin_post("/v1/vms", {"name": uniq("del-"), "department_id": t.dept[key],
                                         "flavor_id": t.flavor, "image_id": t.image,
                                         "start": False}) for _ in ROLES]
        for job in jobs:
            t.assertEqual(_wait_job(t.d, t.admin, job["id"])["state"], "succeeded")
            pool.append(job["resource_id"])
    return pool.pop()


def _vm_delete(key):
    def run(t, role):
        vid = _fresh_vm(t, key)
        before = t.d.request("GET", f"/v1/vms/{vid}", token=t.admin).json
        r = t.as_(role, "DELETE", f"/v1/vms/{vid}")
        if r.status == 202:
            t.assertEqual((r.json["kind"], r.json["resource_id"]), ("vm.delete", vid))
            t.assertEqual(_wait_job(t.d, t.admin, r.json["id"])["state"], "succeeded")
            t.assertEqual(t.d.request("GET", f"/v1/vms/{vid}", token=t.admin).status, 404,
                          "a deleted VM is still there")
        else:
            after = t.d.request("GET", f"/v1/vms/{vid}", token=t.admin).json
            t.assertEqual(after, before, "a refused DELETE changed the VM")
            c = t.d.request("DELETE", f"/v1/vms/{vid}", token=t.admin)   # in the background
            t.assertEqual(c.status, 202, c)
        return r
    return run


for _k in ("A1", "A1a", "B1"):
    case("DELETE /v1/vms/{id}", f"fresh VM of {_k}")(_vm_delete(_k))


# -- the asset inventory --

def _mkasset(t, dept):
    body = {"kind": "server", "name": uniq("srv-"), "serial_number": uniq("SN-")}
    if dept:
        body["department_id"] = t.dept[dept]
    r = t.d.request("POST", "/v1/assets/import", [body], token=t.admin)
    t.assertEqual(r.status, 200, r)
    return r.json["rows"][0]["id"]


def _rmasset(t, aid):
    t.d.request("DELETE", f"/v1/assets/{aid}", token=t.admin)


@case("GET /v1/assets", "list")
def _(t, role):
    mine, foreign, plat = _mkasset(t, "A1"), _mkasset(t, "B1"), _mkasset(t, None)
    r = t.as_(role, "GET", "/v1/assets?limit=500&kind=server")
    if r.status == 200:
        ids = [a["id"] for a in r.json["items"]]
        t.assertIn(mine, ids)
        dept = role.startswith("department_")
        (t.assertNotIn if dept else t.assertIn)(foreign, ids)
        (t.assertNotIn if dept else t.assertIn)(plat, ids)
    for a in (mine, foreign, plat):
        _rmasset(t, a)
    return r


@case("POST /v1/assets/import", "one server of A1")
def _(t, role):
    name = uniq("srv-")
    r = t.as_(role, "POST", "/v1/assets/import",
              [{"kind": "server", "name": name, "department_id": t.dept["A1"]}])
    found = [a for a in t.d.request("GET", "/v1/assets?limit=500&kind=server",
                                    token=t.admin).json["items"] if a["name"] == name]
    t.assertEqual(len(found), 1 if r.status == 200 else 0)
    for a in found:
        _rmasset(t, a["id"])
    return r


def _asset_get(dept):
    def run(t, role):
        a = _mkasset(t, dept)
        r = t.as_(role, "GET", f"/v1/assets/{a}")
        if r.status == 200:
            t.assertEqual(r.json["id"], a)
        _rmasset(t, a)
        return r
    return run


def _asset_update(dept):
    def run(t, role):
        a = _mkasset(t, dept)
        r = t.as_(role, "PATCH", f"/v1/assets/{a}", {"mlps_grade": 3})
        now = t.d.request("GET", f"/v1/assets/{a}", token=t.admin).json
        t.assertEqual(now.get("mlps_grade"), 3 if r.status == 200 else None)
        _rmasset(t, a)
        return r
    return run


def _asset_delete(dept):
    def run(t, role):
        a = _mkasset(t, dept)
        r = t.as_(role, "DELETE", f"/v1/assets/{a}")
        still = t.d.request("GET", f"/v1/assets/{a}", token=t.admin).status
        t.assertEqual(still, 404 if r.status == 204 else 200)
        _rmasset(t, a)
        return r
    return run


def _asset_history(dept):
    def run(t, role):
        a = _mkasset(t, dept)
        r = t.as_(role, "GET", f"/v1/assets/{a}/history")
        if r.status == 200:
            t.assertEqual([h["op"] for h in r.json["items"]], ["create"])
        _rmasset(t, a)
        return r
    return run


for _d in ("A1", "B1"):
    case("GET /v1/assets/{id}", f"asset of {_d}")(_asset_get(_d))
    case("PATCH /v1/assets/{id}", f"asset of {_d}")(_asset_update(_d))
    case("DELETE /v1/assets/{id}", f"asset of {_d}")(_asset_delete(_d))
    case("GET /v1/assets/{id}/history", f"asset of {_d}")(_asset_history(_d))
case("GET /v1/assets/{id}", "platform asset")(_asset_get(None))


@case("GET /v1/supervision/{dataset}", "asset")
def _(t, role):
    a = _mkasset(t, "B1")
    r = t.as_(role, "GET", "/v1/supervision/asset?limit=1000000")
    if r.status == 200:
        t.assertIn(a, [x["id"] for x in r.json["records"]])
        t.assertFalse(r.json["more"])
    _rmasset(t, a)
    return r


# -- assets discovered over SNMP --

_snmp_port = [40000 + os.getpid() % 10000]


def _snmp_target(t, **extra):
    _snmp_port[0] += 1
    body = {"address": "127.0.0.1", "port": _snmp_port[0], "kind": "network_device",
            "enabled": False, "timeout_ms": 100,
            "credentials": {"version": "2c", "community": "rbac-secret"}, **extra}
    return t.admin_post("/v1/assets/snmp-devices", body)


@case("GET /v1/assets/snmp-devices", "list")
def _(t, role):
    tid = _snmp_target(t)["id"]
    r = t.as_(role, "GET", "/v1/assets/snmp-devices?limit=500")
    if r.status == 200:
        t.assertIn(tid, [x["id"] for x in r.json["items"]])
    t.d.request("DELETE", f"/v1/assets/snmp-devices/{tid}", token=t.admin)
    return r


@case("POST /v1/assets/snmp-devices", "v2c device")
def _(t, role):
    _snmp_port[0] += 1
    r = t.as_(role, "POST", "/v1/assets/snmp-devices", {
        "address": "127.0.0.1", "port": _snmp_port[0], "kind": "server", "enabled": False,
        "credentials": {"version": "2c", "community": "rbac-secret"}})
    ports = [x["port"] for x in t.d.request("GET", "/v1/assets/snmp-devices?limit=500",
                                            token=t.admin).json["items"]]
    t.assertEqual(_snmp_port[0] in ports, r.status == 201)
    if r.status == 201:
        t.d.request("DELETE", f"/v1/assets/snmp-devices/{r.json['id']}", token=t.admin)
    return r


@case("GET /v1/assets/snmp-devices/{id}", "platform target")
def _(t, role):
    tid = _snmp_target(t)["id"]
    r = t.as_(role, "GET", f"/v1/assets/snmp-devices/{tid}")
    t.d.request("DELETE", f"/v1/assets/snmp-devices/{tid}", token=t.admin)
    return r


@case("PATCH /v1/assets/snmp-devices/{id}", "platform target")
def _(t, role):
    tid = _snmp_target(t)["id"]
    r = t.as_(role, "PATCH", f"/v1/assets/snmp-devices/{tid}", {"location": {"room": role}})
    now = t.d.request("GET", f"/v1/assets/snmp-devices/{tid}", token=t.admin).json
    t.assertEqual(now["location"] == {"room": role}, r.status == 200)
    t.d.request("DELETE", f"/v1/assets/snmp-devices/{tid}", token=t.admin)
    return r


@case("DELETE /v1/assets/snmp-devices/{id}", "fresh target")
def _(t, role):
    tid = _snmp_target(t)["id"]
    r = t.as_(role, "DELETE", f"/v1/assets/snmp-devices/{tid}")
    still = t.d.request("GET", f"/v1/assets/snmp-devices/{tid}", token=t.admin).status == 200
    t.assertEqual(still, r.status != 204)
    t.d.request("DELETE", f"/v1/assets/snmp-devices/{tid}", token=t.admin)
    return r


@case("POST /v1/assets/snmp-devices/{id}/discover", "silent device")
def _(t, role):
    tid = _snmp_target(t)["id"]
    r = t.as_(role, "POST", f"/v1/assets/snmp-devices/{tid}/discover")
    err = t.d.request("GET", f"/v1/assets/snmp-devices/{tid}", token=t.admin).json["last_error"]
    t.assertEqual(err is not None, r.status == 409)
    t.d.request("DELETE", f"/v1/assets/snmp-devices/{tid}", token=t.admin)
    return r


def _pull(dataset):
    def run(t, role):
        r = t.as_(role, "GET", f"/v1/supervision/{dataset}?limit=1000000")
        if r.status == 200:
            t.assertEqual(r.json["dataset"], dataset)
            t.assertTrue(r.json["snapshot"])
            t.assertFalse(r.json["more"])
            if dataset == "log":  # the world was built by audited calls
                t.assertGreater(len(r.json["records"]), 0)
            if dataset == "backup":
                t.assertEqual(r.json["records"], [])
        return r
    return run


for _ds in ("log", "metric", "alarm", "availability", "backup", "environment"):
    case("GET /v1/supervision/{dataset}", _ds)(_pull(_ds))


@case("GET /v1/supervision/substitution-rate", "local")
def _(t, role):
    r = t.as_(role, "GET", "/v1/supervision/substitution-rate")
    if r.status == 200:
        t.assertEqual(len(r.json["layers"]), 8)
        t.assertEqual(r.json["scope"], "local")
    return r


# -- supervision push and supervisor mode --

def _mkreceiver(t):
    r = t.d.request("POST", "/v1/supervision/receivers",
                    {"name": uniq("rcv-"), "url": "http://127.0.0.1:9/v1/supervision/ingest",
                     "token": "secret-token", "enabled": False}, token=t.admin)
    t.assertEqual(r.status, 201, r)
    return r.json["id"]


def _rcv_names(t):
    r = t.d.request("GET", "/v1/supervision/receivers?limit=500", token=t.admin)
    return [x["name"] for x in r.json["items"]]


@case("GET /v1/supervision/receivers", "list")
def _(t, role):
    rid = _mkreceiver(t)
    r = t.as_(role, "GET", "/v1/supervision/receivers?limit=500")
    if r.status == 200:
        t.assertIn(rid, [x["id"] for x in r.json["items"]])
        t.assertNotIn("secret-token", json.dumps(r.json))
    t.d.request("DELETE", f"/v1/supervision/receivers/{rid}", token=t.admin)
    return r


@case("POST /v1/supervision/receivers", "new receiver")
def _(t, role):
    name = uniq("rcv-")
    r = t.as_(role, "POST", "/v1/supervision/receivers",
              {"name": name, "url": "http://127.0.0.1:9/x", "token": "t", "enabled": False})
    t.assertEqual(name in _rcv_names(t), r.status == 201)
    if r.status == 201:
        t.d.request("DELETE", f"/v1/supervision/receivers/{r.json['id']}", token=t.admin)
    return r


@case("GET /v1/supervision/receivers/{id}", "receiver")
def _(t, role):
    rid = _mkreceiver(t)
    r = t.as_(role, "GET", f"/v1/supervision/receivers/{rid}")
    if r.status == 200:
        t.assertEqual(r.json["id"], rid)
    t.d.request("DELETE", f"/v1/supervision/receivers/{rid}", token=t.admin)
    return r


@case("PATCH /v1/supervision/receivers/{id}", "receiver")
def _(t, role):
    rid = _mkreceiver(t)
    r = t.as_(role, "PATCH", f"/v1/supervision/receivers/{rid}", {"url": "http://127.0.0.1:9/y"})
    now = t.d.request("GET", f"/v1/supervision/receivers/{rid}", token=t.admin).json
    t.assertEqual(now["url"].endswith("/y"), r.status == 200)
    t.d.request("DELETE", f"/v1/supervision/receivers/{rid}", token=t.admin)
    return r


@case("DELETE /v1/supervision/receivers/{id}", "fresh receiver")
def _(t, role):
    rid = _mkreceiver(t)
    r = t.as_(role, "DELETE", f"/v1/supervision/receivers/{rid}")
    st = t.d.request("GET", f"/v1/supervision/receivers/{rid}", token=t.admin).status
    t.assertEqual(st, 404 if r.status == 204 else 200)
    t.d.request("DELETE", f"/v1/supervision/receivers/{rid}", token=t.admin)
    return r


def _cloud_body(t):
    pk = t.d.request("GET", "/v1/supervision/public-key", token=t.admin).json
    return {"cloud_id": missing_id(), "name": uniq("cloud-"),
            "public_key_pem": pk["public_key_pem"]}


def _mkcloud(t):
    r = t.d.request("POST", "/v1/supervision/clouds", _cloud_body(t), token=t.admin)
    t.assertEqual(r.status, 201, r)
    return r.json["id"]


@case("GET /v1/supervision/clouds", "list")
def _(t, role):
    cid = _mkcloud(t)
    r = t.as_(role, "GET", "/v1/supervision/clouds?limit=500")
    if r.status == 200:
        t.assertIn(cid, [x["id"] for x in r.json["items"]])
    t.d.request("DELETE", f"/v1/supervision/clouds/{cid}", token=t.admin)
    return r


@case("POST /v1/supervision/clouds", "new cloud")
def _(t, role):
    body = _cloud_body(t)
    r = t.as_(role, "POST", "/v1/supervision/clouds", body)
    st = t.d.request("GET", f"/v1/supervision/clouds/{body['cloud_id']}", token=t.admin).status
    t.assertEqual(st, 200 if r.status == 201 else 404)
    t.d.request("DELETE", f"/v1/supervision/clouds/{body['cloud_id']}", token=t.admin)
    return r


@case("GET /v1/supervision/clouds/{id}", "cloud")
def _(t, role):
    cid = _mkcloud(t)
    r = t.as_(role, "GET", f"/v1/supervision/clouds/{cid}")
    if r.status == 200:
        t.assertEqual((r.json["id"], r.json["streams"]), (cid, []))
    t.d.request("DELETE", f"/v1/supervision/clouds/{cid}", token=t.admin)
    return r


@case("GET /v1/supervision/clouds/{id}/summary", "cloud")
def _(t, role):
    cid = _mkcloud(t)
    r = t.as_(role, "GET", f"/v1/supervision/clouds/{cid}/summary")
    if r.status == 200:
        t.assertEqual((r.json["cloud_id"], r.json["streams"], r.json["assets"]["total"]),
                      (cid, [], 0))
    t.d.request("DELETE", f"/v1/supervision/clouds/{cid}", token=t.admin)
    return r


@case("GET /v1/supervision/overview", "all clouds")
def _(t, role):
    cid = _mkcloud(t)
    r = t.as_(role, "GET", "/v1/supervision/overview")
    if r.status == 200:
        t.assertIn(cid, [c["cloud_id"] for c in r.json["clouds"]])
    t.d.request("DELETE", f"/v1/supervision/clouds/{cid}", token=t.admin)
    return r


@case("PATCH /v1/supervision/clouds/{id}", "cloud")
def _(t, role):
    cid = _mkcloud(t)
    name = uniq("renamed-")
    r = t.as_(role, "PATCH", f"/v1/supervision/clouds/{cid}", {"name": name})
    now = t.d.request("GET", f"/v1/supervision/clouds/{cid}", token=t.admin).json
    t.assertEqual(now["name"] == name, r.status == 200)
    t.d.request("DELETE", f"/v1/supervision/clouds/{cid}", token=t.admin)
    return r


@case("DELETE /v1/supervision/clouds/{id}", "fresh cloud")
def _(t, role):
    cid = _mkcloud(t)
    r = t.as_(role, "DELETE", f"/v1/supervision/clouds/{cid}")
    st = t.d.request("GET", f"/v1/supervision/clouds/{cid}", token=t.admin).status
    t.assertEqual(st, 404 if r.status == 204 else 200)
    t.d.request("DELETE", f"/v1/supervision/clouds/{cid}", token=t.admin)
    return r


@case("GET /v1/supervision/clouds/{id}/records", "cloud")
def _(t, role):
    cid = _mkcloud(t)
    r = t.as_(role, "GET", f"/v1/supervision/clouds/{cid}/records?dataset=asset")
    if r.status == 200:
        t.assertEqual(r.json["items"], [])
    t.d.request("DELETE", f"/v1/supervision/clouds/{cid}", token=t.admin)
    return r


@case("POST /v1/supervision/ingest", "user token")
def _(t, role):
    return t.as_(role, "POST", "/v1/supervision/ingest", {"cloud_id": missing_id()})


def _q(**kw):
    return urllib.parse.urlencode(kw)


class RbacBase(DaemonTestCase):
    """Shared helpers for the RBAC classes."""

    # the libvirt test driver's storage pool, so that volumes really get created
    daemon_extra = ("--set", "compute.storage_pool=default-pool",
                    "--set", "tsdb.test_ingest=true")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            build_world(cls)
        except BaseException:
            cls.tearDownClass()
            raise

    def as_(self, who, method, path, body=None, **kw):
        return self.d.request(method, path, body, token=self.tok[who], **kw)

    def admin_post(self, path, body):
        r = self.d.request("POST", path, body, token=self.admin)
        self.assertIn(r.status, (201, 202), r)
        return r.json

    def assertStatus(self, r, status, msg=""):
        if status < 400:
            self.assertEqual(r.status, status, f"{msg}: {r}")
        else:
            self.assertProblem(r, status)
            self.assertEqual(r.json["type"],
                             "https://govcloud.example/problems/" + SLUG[status], f"{msg}: {r}")


class TestRbacMatrix(RbacBase):
    """Every route x every role, with the outcomes of EXPECTED."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.key = {}
        for role in ROLES:
            r = cls.d.request("POST", "/v1/api-keys", {"name": "own"}, token=cls.tok[role])
            assert r.status == 201, r
            cls.key[role] = r.json["id"]
        r = cls.d.request("POST", "/v1/api-keys", {"name": "admin's"}, token=cls.admin)
        assert r.status == 201, r
        cls.admin_key = r.json

    def test_every_route_is_in_the_matrix(self):
        routes = list_routes()
        self.assertGreater(len(routes), 20, routes)
        missing = [r for r in routes if r not in EXPECTED]
        stale = [r for r in EXPECTED if r not in routes]
        self.assertEqual(missing, [], "routes without expected outcomes in EXPECTED: add them")
        self.assertEqual(stale, [], "EXPECTED lists routes the daemon does not have")
        self.assertEqual(len(routes), len(set(routes)), "duplicate routes")

    def test_every_case_has_a_runner(self):
        cases = {(r, c) for r, cs in EXPECTED.items() for c in cs}
        self.assertEqual(cases - set(RUNNERS), set(), "cases without a runner")
        self.assertEqual(set(RUNNERS) - cases, set(), "runners without an expected row")
        for r, cs in EXPECTED.items():
            self.assertTrue(cs, r)
            for c, row in cs.items():
                self.assertEqual(len(row), len(ROLES), (r, c))

    def test_no_token_means_401(self):
        for route in list_routes():
            if route in PUBLIC:
                continue
            method, path = route.split(" ", 1)
            path = path.replace("{id}", missing_id())
            body = {} if method in ("POST", "PATCH") else None
            with self.subTest(route=route):
                r = self.d.request(method, path, body)
                self.assertStatus(r, 401, route)
                self.assertIn("Bearer", r.headers.get("WWW-Authenticate", ""))
                r = self.d.request(method, path, body,
                                   headers={"Authorization": "Bearer gct_" + "x" * 43})
                self.assertStatus(r, 401, route + " with an unknown token")

    def run_route(self, route):
        for name, row in EXPECTED[route].items():
            for role, want in zip(ROLES, row):
                with self.subTest(route=route, case=name, role=role):
                    r = RUNNERS[(route, name)](self, role)
                    self.assertStatus(r, want, f"{route} [{name}] as {role}")


def _add_route_tests():
    for route in EXPECTED:
        name = "test_route_" + "".join(ch if ch.isalnum() else "_" for ch in route)
        setattr(TestRbacMatrix, name, lambda self, route=route: self.run_route(route))


_add_route_tests()


class TestDepartmentScope(RbacBase):
    """A department's admin and users never see or change another department's objects."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # an unfinished job of B, for cancel attempts
        r = cls.d.request("POST", "/v1/jobs", {"kind": "test.sleep",
                                               "params": {"steps": 600, "step_ms": 100}},
                          token=cls.tok["dab"])
        assert r.status == 202, r
        cls.job["B-running"] = r.json["id"]

    @classmethod
    def tearDownClass(cls):
        jid = getattr(cls, "job", {}).get("B-running")
        if jid:
            cls.d.request("POST", f"/v1/jobs/{jid}/cancel", token=cls.admin)
        super().tearDownClass()

    # -- who may see what --
    def foreign(self, who):
        """Objects outside who's scope: (kind, id)."""
        d, u, j, vm, vj = self.dept, self.victim, self.job, self.vm, self.vmjob
        if who == "department_admin":
            return [("departments", d["A"]), ("departments", d["B"]), ("departments", d["B1"]),
                    ("users", u["B1"]), ("users", self.user["dab"]["id"]),
                    ("users", u["plat"]), ("users", self.user["platform_admin"]["id"]),
                    ("jobs", j["B"]), ("jobs", j["plat"]), ("jobs", j["B-running"]),
                    ("jobs", vj["B1"]), ("hosts", self.host), ("vms", vm["B1"])]
        if who == "department_user":
            return self.foreign("department_admin") + [
                ("departments", d["A1a"]), ("users", u["A1a"]),
                ("users", self.user["a1a_admin"]["id"]), ("jobs", j["A1a"]),
                ("jobs", vj["A1a"]), ("vms", vm["A1a"])]
        if who == "dab":
            return [("departments", d["A"]), ("departments", d["A1"]),
                    ("departments", d["A1a"]), ("users", u["A1"]), ("users", u["A1a"]),
                    ("users", self.user["department_admin"]["id"]), ("users", u["plat"]),
                    ("jobs", j["A1"]), ("jobs", j["A1a"]), ("jobs", j["plat"]),
                    ("jobs", vj["A1"]), ("jobs", vj["A1a"]),
                    ("hosts", self.host), ("vms", vm["A1"]), ("vms", vm["A1a"])]
        raise KeyError(who)

    def requests_on(self, kind, oid):
        """Every request that names one object: (method, path, body)."""
        base = f"/v1/{kind}/{oid}"
        if kind == "departments":
            return [("GET", base, None), ("PATCH", base, {"description": "x"}),
                    ("DELETE", base, None)]
        if kind == "users":
            return [("GET", base, None), ("PATCH", base, {"display_name": "x"}),
                    ("PATCH", base, {"disabled": True}), ("DELETE", base, None)]
        if kind == "hosts":
            return [("GET", base, None), ("PATCH", base, {"maintenance": True}),
                    ("DELETE", base, None)]
        if kind == "vms":
            return [("GET", base, None), ("GET", base + "/console", None),
                    ("GET", base + "/vnc", None),
                    ("POST", base + "/start", None), ("POST", base + "/stop", None),
                    ("POST", base + "/stop?force=true", None),
                    ("POST", base + "/reboot", None), ("DELETE", base, None)]
        return [("GET", base, None), ("POST", base + "/cancel", None)]

    def normalized(self, r, oid):
        j = dict(r.json or {})
        j.pop("request_id", None)
        text = json.dumps(j, sort_keys=True, ensure_ascii=False).replace(oid, "<ID>")
        heads = sorted((k, v) for k, v in r.headers.items()
                       if k not in ("Date", "X-Request-Id"))
        return r.status, text, heads

    def test_foreign_objects_are_404_like_missing_ones(self):
        for who in ("department_admin", "department_user", "dab"):
            for kind, oid in self.foreign(who):
                before = self.d.request("GET", f"/v1/{kind}/{oid}", token=self.admin).json
                for method, path, body in self.requests_on(kind, oid):
                    with self.subTest(who=who, method=method, path=path, body=body):
                        r = self.as_(who, method, path, body)
                        self.assertStatus(r, 404, f"{who} {method} {path}")
                        other = missing_id()
                        m = self.as_(who, method, path.replace(oid, other), body)
                        self.assertEqual(self.normalized(r, oid), self.normalized(m, other),
                                         "a foreign object answers differently from a "
                                         "missing one")
                after = self.d.request("GET", f"/v1/{kind}/{oid}", token=self.admin).json
                if kind == "hosts":
                    before, after = _host_volatile(before), _host_volatile(after)
                if kind == "jobs":   # running jobs move on by themselves
                    for k in ("updated_at", "version", "progress", "message", "started_at",
                              "state", "attempts"):
                        before.pop(k, None)
                        after.pop(k, None)
                self.assertEqual(before, after, f"{who} changed foreign {kind} {oid}")

    def test_body_references_to_foreign_departments_look_missing(self):
        """parent_id / department_id naming a foreign department: the same 400 as a missing
        one, and nothing changes."""
        d = self.dept
        other = missing_id()
        cases = [
            ("POST", "/v1/departments", {"name": "x-foreign", "parent_id": d["B1"]},
             {"name": "x-foreign", "parent_id": other}, d["B1"]),
            ("PATCH", f"/v1/departments/{d['A1a']}", {"parent_id": d["B1"]},
             {"parent_id": other}, d["B1"]),
            ("POST", "/v1/users", {"username": "x-foreign", "password": PASSWORD,
                                   "role": "department_user", "department_id": d["B1"]},
             {"username": "x-foreign", "password": PASSWORD, "role": "department_user",
              "department_id": other}, d["B1"]),
            ("PATCH", f"/v1/users/{self.victim['A1']}", {"department_id": d["B1"]},
             {"department_id": other}, d["B1"]),
            ("PATCH", f"/v1/users/{self.victim['A1']}", {"department_id": d["A"]},
             {"department_id": other}, d["A"]),
        ]
        a1a = self.d.request("GET", f"/v1/departments/{d['A1a']}", token=self.admin).json
        va1 = self.d.request("GET", f"/v1/users/{self.victim['A1']}", token=self.admin).json
        for method, path, body, body_missing, fid in cases:
            with self.subTest(method=method, path=path, body=body):
                r = self.as_("department_admin", method, path, body)
                self.assertStatus(r, 400)
                self.assertIn(r.json.get("field"), ("parent_id", "department_id"))
                m = self.as_("department_admin", method, path, body_missing)
                self.assertEqual(self.normalized(r, fid), self.normalized(m, other))
        self.assertEqual(self.d.request("GET", f"/v1/departments/{d['A1a']}",
                                        token=self.admin).json, a1a)
        self.assertEqual(self.d.request("GET", f"/v1/users/{self.victim['A1']}",
                                        token=self.admin).json, va1)
        self.assertEqual(self.d.request("GET", "/v1/departments?name=x-foreign",
                                        token=self.admin).json["items"], [])
        self.assertEqual(self.d.request("GET", "/v1/users?username=x-foreign",
                                        token=self.admin).json["items"], [])

    def test_department_admin_limits(self):
        d, v = self.dept, self.victim
        da = "department_admin"
        # may not move its own department, nor make a department top-level
        r = self.as_(da, "PATCH", f"/v1/departments/{d['A1']}", {"parent_id": d["A1a"]})
        self.assertIn(r.status, (400, 403), r)
        r = self.as_(da, "PATCH", f"/v1/departments/{d['A1a']}", {"parent_id": None})
        self.assertStatus(r, 403)
        r = self.as_(da, "PATCH", f"/v1/departments/{d['A1']}", {"parent_id": None})
        self.assertStatus(r, 403)
        # may not grant platform roles
        for role in ("platform_admin", "operator", "auditor", "supervisor"):
            with self.subTest(role=role):
                r = self.as_(da, "PATCH", f"/v1/users/{v['A1']}", {"role": role})
                self.assertStatus(r, 403)
                r = self.as_(da, "POST", "/v1/users", {"username": "x-plat", "password": PASSWORD,
                                                        "role": role})
                self.assertStatus(r, 403)
        self.assertEqual(self.d.request("GET", f"/v1/users/{v['A1']}",
                                        token=self.admin).json["role"], "department_user")
        self.assertEqual(self.d.request("GET", "/v1/users?username=x-plat",
                                        token=self.admin).json["items"], [])
        # may not change platform users even by a field it could change in its scope
        r = self.as_(da, "PATCH", f"/v1/users/{self.user['auditor']['id']}",
                     {"display_name": "x"})
        self.assertStatus(r, 404)
        # may not verify the whole chain
        self.assertStatus(self.as_(da, "GET", "/v1/audit-events/verify"), 403)
        # may not create top-level departments
        r = self.as_(da, "POST", "/v1/departments", {"name": "x-top"})
        self.assertStatus(r, 403)
        self.assertEqual(self.d.request("GET", "/v1/departments?name=x-top",
                                        token=self.admin).json["items"], [])

    def list_ids(self, who, path, **query):
        """All ids of a collection as who sees it, paging with limit=1 to exercise cursors."""
        ids = []
        cursor = None
        for _ in range(1000):
            q = dict(query, limit=1)
            if cursor:
                q["cursor"] = cursor
            r = self.as_(who, "GET", f"{path}?{_q(**q)}")
            self.assertEqual(r.status, 200, r)
            ids += [x.get("id") for x in r.json["items"]]
            cursor = r.json["next_cursor"]
            if not cursor:
                break
        full = self.as_(who, "GET", f"{path}?{_q(**dict(query, limit=500))}")
        self.assertEqual([x.get("id") for x in full.json["items"]], ids,
                         "paging gives other items than one big page")
        return ids

    def test_department_lists_are_scoped(self):
        d = self.dept
        self.assertCountEqual(self.list_ids("department_admin", "/v1/departments"),
                              [d["A1"], d["A1a"]])
        self.assertCountEqual(self.list_ids("department_user", "/v1/departments"), [d["A1"]])
        self.assertCountEqual(self.list_ids("dab", "/v1/departments"), [d["B"], d["B1"]])
        self.assertCountEqual(self.list_ids("a1a_admin", "/v1/departments"), [d["A1a"]])
        # filters cannot reach outside the scope
        for who in ("department_admin", "department_user"):
            for q in ({"parent_id": d["B"]}, {"parent_id": "root"},
                      {"name": "市B1"}, {"code": "RB-B1"}, {"code": "RB-A"}):
                with self.subTest(who=who, query=q):
                    self.assertEqual(self.list_ids(who, "/v1/departments", **q), [])
        for who in ("department_admin", "department_user"):
            self.assertEqual(self.list_ids(who, "/v1/departments", parent_id=d["A"]), [d["A1"]])
        self.assertEqual(self.list_ids("department_user", "/v1/departments",
                                       parent_id=d["A1"]), [])
        self.assertEqual(self.list_ids("department_admin", "/v1/departments",
                                       parent_id=d["A1"]), [d["A1a"]])
        # platform roles see everything
        for role in ("platform_admin", "operator", "auditor", "supervisor"):
            ids = self.list_ids(role, "/v1/departments")
            self.assertTrue(set(d.values()) <= set(ids), role)

    def test_user_lists_are_scoped(self):
        u, v = self.user, self.victim
        a1 = {u["department_admin"]["id"], u["department_user"]["id"], v["A1"]}
        a1a = {u["a1a_admin"]["id"], v["A1a"]}
        self.assertCountEqual(self.list_ids("department_admin", "/v1/users"), a1 | a1a)
        self.assertCountEqual(self.list_ids("department_user", "/v1/users"), a1)
        self.assertCountEqual(self.list_ids("dab", "/v1/users"), {u["dab"]["id"], v["B1"]})
        for who in ("department_admin", "department_user"):
            for q in ({"department_id": self.dept["B1"]}, {"department_id": self.dept["A"]},
                      {"role": "platform_admin"}, {"role": "operator"}, {"username": "r-dab"},
                      {"username": "admin"}):
                with self.subTest(who=who, query=q):
                    self.assertEqual(self.list_ids(who, "/v1/users", **q), [])
        self.assertEqual(self.list_ids("department_user", "/v1/users",
                                       department_id=self.dept["A1a"]), [])
        self.assertStatus(self.as_("supervisor", "GET", "/v1/users"), 403)

    def test_job_lists_are_scoped(self):
        j, vj = self.job, self.vmjob
        a_side = [j["A1"], j["A1a"], vj["A1"], vj["A1a"]]
        self.assertCountEqual(self.list_ids("department_admin", "/v1/jobs"), a_side)
        self.assertCountEqual(self.list_ids("department_user", "/v1/jobs"), [j["A1"], vj["A1"]])
        self.assertCountEqual(self.list_ids("dab", "/v1/jobs"),
                              [j["B"], j["B-running"], vj["B1"]])
        for q in ({"kind": "test.sleep"}, {"kind": "vm.create"}, {"state": "succeeded"},
                  {"state": "running"}, {"state": "queued"}):
            with self.subTest(query=q):
                ids = set(self.list_ids("department_admin", "/v1/jobs", **q))
                self.assertLessEqual(ids, set(a_side))
        self.assertCountEqual(self.list_ids("department_admin", "/v1/jobs", kind="vm.create"),
                              [vj["A1"], vj["A1a"]])
        # the image import is a platform job
        self.assertEqual(self.list_ids("department_admin", "/v1/jobs", kind="image.import"), [])
        all_ids = set(self.list_ids("operator", "/v1/jobs"))
        self.assertLessEqual(set(j.values()) | set(vj.values()), all_ids)

    def test_vm_lists_are_scoped(self):
        vm, d = self.vm, self.dept
        self.assertCountEqual(self.list_ids("department_admin", "/v1/vms"), [vm["A1"], vm["A1a"]])
        self.assertCountEqual(self.list_ids("department_user", "/v1/vms"), [vm["A1"]])
        self.assertCountEqual(self.list_ids("a1a_admin", "/v1/vms"), [vm["A1a"]])
        self.assertCountEqual(self.list_ids("dab", "/v1/vms"), [vm["B1"]])
        for role in ("platform_admin", "operator", "auditor", "supervisor"):
            self.assertCountEqual(self.list_ids(role, "/v1/vms"), vm.values(), role)
        # filters cannot reach outside the scope
        for who in ("department_admin", "department_user"):
            for q in ({"department_id": d["B1"]}, {"department_id": d["B"]},
                      {"department_id": d["A"]}, {"name": "rbac-vm-B1"}):
                with self.subTest(who=who, query=q):
                    self.assertEqual(self.list_ids(who, "/v1/vms", **q), [])
        self.assertEqual(self.list_ids("department_user", "/v1/vms", department_id=d["A1a"]),
                         [])
        self.assertEqual(self.list_ids("department_user", "/v1/vms", host_id=self.host),
                         [vm["A1"]])
        self.assertCountEqual(self.list_ids("department_admin", "/v1/vms", host_id=self.host),
                              [vm["A1"], vm["A1a"]])
        self.assertEqual(self.list_ids("dab", "/v1/vms", state="running"), [vm["B1"]])

    def all_events(self, who, **query):
        events, cursor = [], None
        while True:
            q = dict(query, limit=500)
            if cursor:
                q["cursor"] = cursor
            r = self.as_(who, "GET", "/v1/audit-events?" + _q(**q))
            self.assertEqual(r.status, 200, r)
            events += r.json["items"]
            cursor = r.json["next_cursor"]
            if not cursor:
                return events

    def test_audit_events_are_scoped(self):
        d = self.dept
        # some activity on both sides
        self.assertEqual(self.as_("dab", "PATCH", f"/v1/departments/{d['B1']}",
                                  {"description": "b-side"}).status, 200)
        self.assertEqual(self.as_("department_admin", "PATCH", f"/v1/departments/{d['A1a']}",
                                  {"description": "a-side"}).status, 200)
        everything = self.all_events("auditor")
        self.assertEqual(everything, self.all_events("platform_admin"))
        a_side, b_side = {d["A1"], d["A1a"]}, {d["B"], d["B1"]}
        for who, mine, theirs in (("department_admin", a_side, b_side),
                                  ("a1a_admin", {d["A1a"]}, b_side | {d["A1"]}),
                                  ("dab", b_side, a_side | {d["A"]})):
            with self.subTest(who=who):
                seen = self.all_events(who)
                self.assertTrue(seen, "a department admin sees no audit events at all")
                for e in seen:
                    self.assertIn(e["department_id"], mine, f"{who} sees a foreign event {e}")
                # what it does see is exactly the events of its subtree
                expect = [e["seq"] for e in everything if e["department_id"] in mine]
                self.assertEqual([e["seq"] for e in seen], expect)
                # and the events about the other side's objects are not reachable by filter
                for oid in theirs:
                    self.assertEqual([e for e in self.all_events(who, resource_id=oid)
                                      if e["department_id"] not in mine], [])
        # the changes each made are in their own view
        self.assertIn("b-side", json.dumps([e["detail"] for e in self.all_events(
            "dab", action="department.update")]))
        self.assertNotIn("b-side", json.dumps([e["detail"] for e in self.all_events(
            "department_admin", action="department.update")]))
        for who in ("department_user", "operator", "supervisor"):
            self.assertStatus(self.as_(who, "GET", "/v1/audit-events"), 403, who)

    def test_scope_follows_a_moved_department(self):
        """After the platform admin moves a department, its admin's scope is the new place
        at once (not after a cache expires), and nothing else."""
        adm = self.admin
        m = self.admin_post("/v1/departments", {"name": "省M"})["id"]
        m1 = self.admin_post("/v1/departments", {"name": "市M1", "parent_id": m})["id"]
        m1a = self.admin_post("/v1/departments", {"name": "局M1a", "parent_id": m1})["id"]
        n = self.admin_post("/v1/departments", {"name": "省N"})["id"]
        self.admin_post("/v1/users", {"username": "r-dam", "password": PASSWORD,
                                      "role": "department_admin", "department_id": m1})
        tok = self.d.login("r-dam", PASSWORD)
        ids = lambda: {x["id"] for x in self.d.request("GET", "/v1/departments?limit=500",
                                                        token=tok).json["items"]}
        self.assertEqual(ids(), {m1, m1a})
        r = self.d.request("PATCH", f"/v1/departments/{m1}", {"parent_id": n}, token=adm)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(ids(), {m1, m1a}, "a moved department's admin lost sight of it")
        r = self.d.request("GET", f"/v1/departments/{m1a}", token=tok)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.d.request("GET", f"/v1/departments/{n}", token=tok).status, 404)
        self.assertEqual(self.d.request("GET", f"/v1/departments/{m}", token=tok).status, 404)


if __name__ == "__main__":
    unittest.main()
