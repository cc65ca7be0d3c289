"""Public IP addresses: external networks as pools, allocation to a department counted
against the public_ips quota (inherited, never overshot by parallel requests), IPAM that never
hands out an address twice, association through a job, release. Runs on libvirt's test
driver, which cannot attach an interface to a domain: there the association job fails and
the address goes back to available, which is checked here; the successful association on
a real QEMU host is in test_qemu_vm.py.

Expected values come from docs/infrastructure.md, not from the daemon."""

import shutil
import tempfile
import threading
import time
import unittest

from gcharness import DaemonTestCase
from test_vms import VmHelpers, _q, uniq

# TEST-NET-2 (RFC 5737), never routed: offsets 2..6 are the pool (.1 gateway, .7 broadcast)
POOL = "198.51.100.0/29"
POOL_ADDRS = [f"198.51.100.{i}" for i in range(2, 7)]


class PublicIpTest(DaemonTestCase, VmHelpers):
    daemon_extra = ("--set", "jobs.workers=2")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.files = tempfile.mkdtemp(prefix="govcloud-pip-files-")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.files, ignore_errors=True)
        super().tearDownClass()

    def setUp(self):
        if not hasattr(type(self), "host"):
            type(self).host = self.mkhost()
            type(self).image = self.mkimage()
            type(self).flavor = self.mkflavor()

    def mknet(self, cidr=POOL, external=True, **kw):
        body = {"name": uniq("ext-"), "mode": "nat", "ipv4_cidr": cidr, **kw}
        if external is not None:
            body["external"] = external
        return self.ok("POST", "/v1/networks", body, want=201)

    def alloc(self, net, dept, token=None):
        return self.call("POST", "/v1/public-ips", {"network_id": net, "department_id": dept},
                         token)

    def release(self, pid):
        self.assertEqual(self.call("DELETE", f"/v1/public-ips/{pid}").status, 204)

    def wait_failed(self, jid):
        j = self.wait_job(jid)
        self.assertEqual(j["state"], "failed", j)
        return j

    def test_external_network_is_a_shared_pool(self):
        dept = self.mkdept_()
        r = self.call("POST", "/v1/networks", {"name": uniq("ext-"), "mode": "nat",
                                               "ipv4_cidr": POOL, "external": True,
                                               "department_id": dept["id"]})
        self.assertProblem(r, 400, "all departments")
        self.assertEqual(r.json["field"], "external")
        net = self.mknet()
        self.assertTrue(net["external"])
        self.assertFalse(self.mknet("198.51.100.8/29", external=None)["external"])
        # a VM does not get an address of an external network by asking for the network
        before = self.vm_ids()
        r = self.post_vm(self.flavor["id"], self.image["id"], dept["id"], networks=[net["id"]])
        self.assertProblem(r, 400, "is external")
        self.assertEqual(self.vm_ids(), before)

    def test_allocation_ipam_and_release(self):
        dept = self.mkdept_()
        net = self.mknet()
        plain = self.mknet("198.51.100.16/29", external=False)
        self.assertProblem(self.alloc(plain["id"], dept["id"]), 400, "not external")
        self.assertProblem(self.alloc("01a21371-0000-7000-8000-000000000000", dept["id"]), 400,
                           "not found")
        got = []
        for addr in POOL_ADDRS:
            r = self.alloc(net["id"], dept["id"])
            self.assertEqual(r.status, 201, r)
            self.assertEqual(r.headers.get("Location"), f"/v1/public-ips/{r.json['id']}")
            self.assertEqual((r.json["address"], r.json["state"], r.json["vm_id"],
                              r.json["department_id"], r.json["network_id"]),
                             (addr, "available", None, dept["id"], net["id"]))
            got.append(r.json)
        r = self.alloc(net["id"], dept["id"])
        self.assertProblem(r, 409, "no free address left")
        self.assertEqual(self.ok("GET", f"/v1/networks/{net['id']}")["addresses_used"], 5)
        # the network cannot go while its addresses are allocated
        self.assertProblem(self.call("DELETE", f"/v1/networks/{net['id']}"), 409)
        # released: the lowest free address is handed out again, and only once
        self.release(got[1]["id"])
        self.assertEqual(self.call("GET", f"/v1/public-ips/{got[1]['id']}").status, 404)
        r = self.alloc(net["id"], dept["id"])
        self.assertEqual(r.json["address"], POOL_ADDRS[1])
        got[1] = r.json
        listed = self.ok("GET", "/v1/public-ips?" + _q(network_id=net["id"], limit=500))
        self.assertEqual(sorted(p["address"] for p in listed["items"]), POOL_ADDRS)
        ev = self.events(action="public_ip.create", resource_id=got[0]["id"])
        self.assertEqual(len(ev), 1)
        self.assertEqual(ev[0]["detail"]["address"], POOL_ADDRS[0])
        for p in got:
            self.release(p["id"])
        self.assertEqual(len(self.events(action="public_ip.delete")), 6)
        self.assertEqual(self.call("DELETE", f"/v1/networks/{net['id']}").status, 204)

    def test_quota_is_inherited_and_enforced(self):
        prov = self.mkdept_()
        city = self.mkdept_(parent=prov["id"])
        net = self.mknet("198.51.100.32/28")
        self.ok("PUT", f"/v1/departments/{prov['id']}/quota", {"public_ips": 2})
        a = self.alloc(net["id"], city["id"])
        b = self.alloc(net["id"], prov["id"])
        self.assertEqual((a.status, b.status), (201, 201))
        r = self.alloc(net["id"], city["id"])
        self.assertProblem(r, 409, "quota exceeded")
        self.assertIn(prov["id"], r.json["detail"])
        self.assertEqual(r.json["field"], "public_ips")
        q = self.ok("GET", f"/v1/departments/{city['id']}/quota")
        self.assertEqual((q["usage"]["public_ips"], q["available"]["public_ips"]), (1, 0))
        q = self.ok("GET", f"/v1/departments/{prov['id']}/quota")
        self.assertEqual(q["usage"]["public_ips"], 2)
        self.release(a.json["id"])
        self.assertEqual(self.alloc(net["id"], city["id"]).status, 201)

    def test_parallel_allocations_never_overshoot(self):
        dept = self.mkdept_()
        net = self.mknet("198.51.100.64/27")
        self.ok("PUT", f"/v1/departments/{dept['id']}/quota", {"public_ips": 3})
        out = []
        start = threading.Barrier(8)

        def one():
            start.wait()
            out.append(self.alloc(net["id"], dept["id"]))
        ts = [threading.Thread(target=one) for _ in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(sorted(r.status for r in out), [201] * 3 + [409] * 5, out)
        addrs = [r.json["address"] for r in out if r.status == 201]
        self.assertEqual(sorted(addrs), ["198.51.100.66", "198.51.100.67", "198.51.100.68"])
        listed = self.ok("GET", "/v1/public-ips?" + _q(department_id=dept["id"]))["items"]
        self.assertEqual(len(listed), 3)

    def test_parallel_allocations_from_one_pool_get_different_addresses(self):
        depts = [self.mkdept_()["id"] for _ in range(6)]
        net = self.mknet("198.51.100.128/28")
        out = []
        start = threading.Barrier(6)

        def one(d):
            start.wait()
            out.append(self.alloc(net["id"], d))
        ts = [threading.Thread(target=one, args=(d,)) for d in depts]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual([r.status for r in out], [201] * 6, out)
        addrs = [r.json["address"] for r in out]
        self.assertEqual(len(set(addrs)), 6, addrs)

    def test_association_on_a_host_that_cannot_hot_plug(self):
        dept = self.mkdept_()
        other = self.mkdept_()
        net = self.mknet("198.51.100.160/29")
        vm = self.create_vm(self.flavor["id"], self.image["id"], dept["id"], start=False)
        theirs = self.create_vm(self.flavor["id"], self.image["id"], other["id"], start=False)
        pip = self.alloc(net["id"], dept["id"]).json
        self.assertProblem(self.call("POST", f"/v1/public-ips/{pip['id']}/disassociate"), 409,
                           "not associated")
        for body, words in (({"vm_id": theirs["id"]}, "not found in the public IP's department"),
                            ({"vm_id": "nope"}, "not found"), ({}, "vm_id")):
            r = self.call("POST", f"/v1/public-ips/{pip['id']}/associate", body)
            self.assertProblem(r, 400, words)
        r = self.call("POST", f"/v1/public-ips/{pip['id']}/associate", {"vm_id": vm["id"]})
        self.assertEqual(r.status, 202, r)
        self.assertEqual((r.json["kind"], r.json["resource_type"], r.json["resource_id"]),
                         ("public_ip.associate", "public_ip", pip["id"]))
        # associating (or, if the job was quick, already back to available)
        self.assertIn(self.ok("GET", f"/v1/public-ips/{pip['id']}")["state"],
                      ("associating", "available"))
        j = self.wait_failed(r.json["id"])
        self.assertIn("not supported", j["error"], j)
        p = self.ok("GET", f"/v1/public-ips/{pip['id']}")
        self.assertEqual((p["state"], p["vm_id"], p["mac"]), ("available", None, None), p)
        self.assertIn("not supported", p["last_error"])
        # the interface recorded for it went with the failure
        self.assertEqual(self.ok("GET", f"/v1/vms/{vm['id']}")["nics"], [])
        self.release(pip["id"])

    def test_department_scope(self):
        dept = self.mkdept_()
        other = self.mkdept_()
        net = self.mknet("198.51.100.176/29")
        user = self.mkuser_("department_user", dept["id"])
        outsider = self.mkuser_("department_admin", other["id"])
        # a department user allocates for their own department without naming it
        r = self.call("POST", "/v1/public-ips", {"network_id": net["id"]}, user["token"])
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json["department_id"], dept["id"])
        pid = r.json["id"]
        self.assertEqual(self.call("GET", f"/v1/public-ips/{pid}", token=user["token"]).status,
                         200)
        self.assertProblem(self.call("GET", f"/v1/public-ips/{pid}", token=outsider["token"]),
                           404)
        self.assertProblem(self.call("DELETE", f"/v1/public-ips/{pid}", token=outsider["token"]),
                           404)
        self.assertProblem(self.alloc(net["id"], dept["id"], outsider["token"]), 400,
                           "not found")
        self.assertEqual(self.ok("GET", "/v1/public-ips", token=outsider["token"])["items"], [])
        r = self.call("DELETE", f"/v1/public-ips/{pid}", token=user["token"])
        self.assertEqual(r.status, 204, r)


if __name__ == "__main__":
    unittest.main()
