"""VM series from a real guest: the system libvirtd with QEMU, a tiny guest that keeps
running (kernel argument govcloud.stay=1) on an isolated network, and the series the
collector makes of libvirt's bulk domain statistics — CPU time that grows, memory,
interface counters — with the VM's id, department and host as labels; node memory of the
host too (libvirt's test driver has none of these).

Skips, saying so, only when libvirt or QEMU is not installed."""

import re
import shutil
import time
import unittest
import uuid

import gcharness as gh
import libvirtd as lv

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
CIDR = "10.251.14.0/24"  # not used by other tests


class QemuMonitoringTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        missing = lv.missing_binaries()
        if missing:
            raise unittest.SkipTest("libvirt/QEMU not installed (missing: " + ", ".join(missing)
                                    + ")")
        lv.ensure_libvirtd()
        lv.ensure_default_pool()
        cls.images = lv.make_workdir("govcloud-qemu-mon-")
        lv.tiny_image(cls.images)
        virt = "kvm" if lv.kvm_usable() else "qemu"
        cls.d = gh.Daemon(extra=["--set", "bootstrap.host_uri=qemu:///system",
                                 "--set", f"bootstrap.image_dir={cls.images}",
                                 "--set", f"compute.virt_type={virt}",
                                 "--set", "monitor.interval=1"]).start()
        cls.admin = cls.d.login()

    @classmethod
    def tearDownClass(cls):
        rc = cls.d.stop()
        log = cls.d.read_log()
        cls.d.cleanup()
        shutil.rmtree(cls.images, ignore_errors=True)
        lv.stop_libvirtd()
        if rc != 0:
            raise AssertionError(f"govcloudd exited with {rc}:\n{log[-4000:]}")
        for bad in ("runtime error:", "AddressSanitizer", "LeakSanitizer"):
            if bad in log:
                raise AssertionError(f"sanitizer report in the daemon log:\n{log[-8000:]}")

    def req(self, method, path, body=None):
        return self.d.request(method, path, body, token=self.admin)

    def get(self, path):
        r = self.req("GET", path)
        self.assertEqual(r.status, 200, r)
        return r.json

    def wait(self, what, fn, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = fn()
            if v:
                return v
            time.sleep(0.3)
        self.fail(f"timed out after {timeout} s waiting for {what}")

    def wait_job(self, job_id, timeout=120):
        j = self.wait(f"job {job_id}", lambda: (lambda j: j if j["state"] in (
            "succeeded", "failed", "cancelled") else None)(self.get(f"/v1/jobs/{job_id}")),
            timeout)
        self.assertEqual(j["state"], "succeeded", j)
        return j

    def samples(self):
        r = self.req("GET", "/metrics")
        self.assertEqual(r.status, 200, r)
        out = []
        for line in r.body.decode().splitlines():
            if line and not line.startswith("#"):
                m = SAMPLE.match(line)
                out.append((m.group(1), dict(LABEL.findall(m.group(2) or "")),
                            float(m.group(3))))
        return out

    def find(self, metric, **labels):
        return [(ls, v) for m, ls, v in self.samples()
                if m == metric and all(ls.get(k) == x for k, x in labels.items())]

    def test_running_guest_series(self):
        tag = uuid.uuid4().hex[:6]
        host = self.wait("the local host to connect", lambda: next(
            (h for h in self.get("/v1/hosts")["items"]
             if h["uri"] == "qemu:///system" and h["state"] == "connected"), None), 30)
        tiny = self.wait("the tiny image import", lambda: next(
            (i for i in self.get("/v1/images?name=tiny")["items"] if i["state"] == "active"),
            None), 60)
        r = self.req("POST", "/v1/images", {
            "name": "mon-stay-" + tag, "kind": "kernel", "arch": tiny["arch"],
            "kernel_path": tiny["kernel_path"], "initrd_path": tiny["initrd_path"],
            "cmdline": "console=ttyS0 govcloud.stay=1"})
        self.assertEqual(r.status, 201, r)
        image = r.json
        self.wait_job(image["job_id"])
        flavor = self.get("/v1/flavors?name=tiny")["items"][0]
        r = self.req("POST", "/v1/networks", {"name": "mon-" + tag, "mode": "isolated",
                                              "ipv4_cidr": CIDR})
        self.assertEqual(r.status, 201, r)
        net = r.json
        dept = self.req("POST", "/v1/departments", {"name": "监控 " + tag}).json
        r = self.req("POST", "/v1/vms", {"name": "mon-" + tag, "department_id": dept["id"],
                                         "flavor_id": flavor["id"], "image_id": image["id"],
                                         "host_id": host["id"], "networks": [net["id"]]})
        self.assertEqual(r.status, 202, r)
        vm_id = r.json["resource_id"]
        try:
            self.wait_job(r.json["id"])
            want = dict(resource_id=vm_id, department_id=dept["id"], host_id=host["id"])
            self.wait("the VM to run", lambda: (lambda s: s and s[0][1] == 1)(
                self.find("govcloud_vm_running", **want)), 60)
            cpu1 = self.wait("CPU time", lambda: self.find("govcloud_vm_cpu_seconds_total",
                                                           **want), 30)[0][1]
            self.assertGreater(cpu1, 0)
            self.wait("CPU time to grow", lambda: (lambda s: s and s[0][1] > cpu1)(
                self.find("govcloud_vm_cpu_seconds_total", **want)), 30)
            mem = self.find("govcloud_vm_memory_bytes", **want)
            self.assertEqual(mem[0][1], flavor["memory_mib"] * 1024 * 1024, mem)
            self.assertEqual(self.find("govcloud_vm_vcpus", **want)[0][1], flavor["vcpus"])
            rss = self.wait("resident memory", lambda: self.find(
                "govcloud_vm_memory_rss_bytes", **want), 30)
            self.assertGreater(rss[0][1], 1 << 20)
            nics = self.wait("interface counters", lambda: self.find(
                "govcloud_vm_network_transmit_bytes_total", **want), 30)
            self.assertEqual(len(nics), 1, nics)
            self.assertTrue(nics[0][0]["interface"], nics)
            self.assertEqual(set(nics[0][0]), {"resource_id", "department_id", "host_id",
                                               "interface"})
            self.assertTrue(self.find("govcloud_vm_network_receive_packets_total", **want))
            # the host's memory (qemu:///system reports node memory statistics)
            tot = self.find("govcloud_host_memory_total_bytes", host_id=host["id"])
            free = self.find("govcloud_host_memory_free_bytes", host_id=host["id"])
            self.assertTrue(tot and free, (tot, free))
            self.assertGreater(tot[0][1], free[0][1])
            self.assertTrue(self.find("govcloud_host_cpu_seconds_total", host_id=host["id"],
                                      mode="idle"))
            # no series for domains govcloud does not own (other tests' guests on this host)
            mine = {v["id"] for v in self.get("/v1/vms?limit=500")["items"]}
            for m, ls, _ in self.samples():
                if m.startswith("govcloud_vm_"):
                    self.assertIn(ls["resource_id"], mine, (m, ls))
        finally:
            r = self.req("DELETE", f"/v1/vms/{vm_id}")
            if r.status == 202:
                self.wait_job(r.json["id"])
            self.req("DELETE", f"/v1/networks/{net['id']}")


if __name__ == "__main__":
    unittest.main()
