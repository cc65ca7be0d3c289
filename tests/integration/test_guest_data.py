"""What a guest gets from govcloud beyond CPUs and memory, on the real system libvirtd with
QEMU (software emulation where KVM does not work):

- user data: a VM created with `user_data` gets a NoCloud config drive (ISO 9660 labelled
  cidata, gc-<vm id>-cidata.iso in the storage pool, a read-only virtio disk); the tiny guest
  mounts it and prints the first line of user-data and its meta-data on the serial console.
  The user data is in no API answer, audit event or log: only its size and SM3 digest are.
  Deleting the VM deletes the drive;
- the VNC console: GET /v1/vms/{id}/vnc answers the port of the running domain's live
  definition and its password; the port speaks RFB and offers only VNC (password)
  authentication; who may ask;
- resize with a bigger root disk: the stopped VM's root volume grows (never shrinks), counted
  against the disk_gib quota.

Skips, saying so, only when libvirt or QEMU is not installed."""

import hashlib
import os
import shutil
import socket
import subprocess
import time
import unittest
import uuid

import gcharness as gh
import libvirtd as lv

POOL_DIR = "/var/lib/libvirt/images"


def virsh(*args):
    return subprocess.run(["virsh", "-c", "qemu:///system", *args], capture_output=True,
                          text=True, timeout=60)


class GuestDataTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        missing = lv.missing_binaries() + [b for b in ("qemu-img",) if shutil.which(b) is None]
        if missing:
            raise unittest.SkipTest("not installed: " + ", ".join(missing))
        lv.ensure_libvirtd()
        lv.ensure_default_pool()
        cls.images = lv.make_workdir("govcloud-guest-data-")
        os.chmod(cls.images, 0o755)
        cls.kernel, cls.initrd = lv.tiny_image(cls.images)
        virt = "kvm" if lv.kvm_usable() else "qemu"
        cls.d = gh.Daemon(extra=["--set", "bootstrap.host_uri=qemu:///system",
                                 "--set", f"compute.virt_type={virt}"]).start()
        cls.admin = cls.d.login()
        cls.tag = uuid.uuid4().hex[:6]
        cls.host = cls.wait_cls(lambda: next(
            (h for h in cls.get_cls("/v1/hosts")["items"]
             if h["uri"] == "qemu:///system" and h["state"] == "connected"), None), 30)
        cls.dept = cls.d.request("POST", "/v1/departments", {"name": "客户数据 " + cls.tag},
                                 token=cls.admin).json
        r = cls.d.request("POST", "/v1/images", {
            "name": "stay-" + cls.tag, "kind": "kernel", "arch": "x86_64",
            "kernel_path": cls.kernel, "initrd_path": cls.initrd,
            "cmdline": "console=ttyS0 govcloud.stay=1"}, token=cls.admin)
        assert r.status == 201, r
        cls.image = r.json
        cls.flavor = cls.d.request("POST", "/v1/flavors", {
            "name": "gd-" + cls.tag, "vcpus": 1, "memory_mib": 128}, token=cls.admin).json
        cls.wait_cls(lambda: cls.get_cls(f"/v1/images/{cls.image['id']}")["state"] == "active",
                     60)

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

    @classmethod
    def get_cls(cls, path):
        r = cls.d.request("GET", path, token=cls.admin)
        assert r.status == 200, r
        return r.json

    @classmethod
    def wait_cls(cls, fn, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = fn()
            if v:
                return v
            time.sleep(0.3)
        raise AssertionError("timed out")

    def get(self, path, token=None):
        r = self.d.request("GET", path, token=token or self.admin)
        self.assertEqual(r.status, 200, r)
        return r.json if r.json is not None else r.body.decode("utf-8", "replace")

    def wait(self, what, fn, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = fn()
            if v:
                return v
            time.sleep(0.3)
        self.fail(f"timed out after {timeout} s waiting for {what}")

    def wait_job(self, job_id, timeout=120):
        def done():
            j = self.get(f"/v1/jobs/{job_id}")
            return j if j["state"] in ("succeeded", "failed", "cancelled") else None
        j = self.wait(f"job {job_id}", done, timeout)
        self.assertEqual(j["state"], "succeeded", j)
        return j

    def accepted(self, r):
        self.assertEqual(r.status, 202, r)
        return self.wait_job(r.json["id"])

    def user(self, role, dept=None):
        name = f"{role[:8]}-{uuid.uuid4().hex[:6]}"
        body = {"username": name, "password": "Guest-Passw0rd!x", "role": role}
        if dept:
            body["department_id"] = dept
        r = self.d.request("POST", "/v1/users", body, token=self.admin)
        self.assertEqual(r.status, 201, r)
        return self.d.login(name, "Guest-Passw0rd!x")

    # -- user data ------------------------------------------------------------------------

    def test_user_data_reaches_the_guest_and_nowhere_else(self):
        marker = "GD-" + uuid.uuid4().hex[:10]
        secret = "s3cret-" + uuid.uuid4().hex
        udata = f"#cloud-config {marker}\npassword: {secret}\n# 中文 too\n"
        r = self.d.request("POST", "/v1/vms", {
            "name": "ud-" + self.tag, "department_id": self.dept["id"],
            "flavor_id": self.flavor["id"], "image_id": self.image["id"],
            "user_data": udata}, token=self.admin)
        self.assertEqual(r.status, 202, r)
        self.assertNotIn(secret, r.body.decode())
        vm_id = r.json["resource_id"]
        job = self.wait_job(r.json["id"])
        self.assertNotIn(secret, str(job))
        vm = self.get(f"/v1/vms/{vm_id}")
        raw = udata.encode()
        self.assertEqual(vm["user_data_bytes"], len(raw))
        self.assertEqual(vm["user_data_sm3"], hashlib.new("sm3", raw).hexdigest())
        self.assertNotIn("user_data", vm)
        # the drive: a volume of the pool, attached read-only as a virtio disk
        drive = f"gc-{vm_id}-cidata.iso"
        self.assertIn(drive, os.listdir(POOL_DIR))
        xml = virsh("dumpxml", vm["domain_name"]).stdout
        disk = xml[xml.index(f"{POOL_DIR}/{drive}"):]
        disk = disk[:disk.index("</disk>")]
        self.assertIn("<readonly/>", disk)
        self.assertIn("bus='virtio'", disk)
        # the guest reads it: first line of user-data, the meta-data
        console = self.wait("the user data on the console", lambda: (
            lambda c: c if "GOVCLOUD-METADATA local-hostname" in c else None)(
                self.get(f"/v1/vms/{vm_id}/console")), 120)
        self.assertIn(f"GOVCLOUD-USERDATA #cloud-config {marker}", console)
        self.assertIn(f'GOVCLOUD-METADATA instance-id: "{vm_id}"', console)
        self.assertIn(f'GOVCLOUD-METADATA local-hostname: "ud-{self.tag}"', console)
        # the audit trail has its size and digest, never the data
        ev = self.get(f"/v1/audit-events?action=vm.create&resource_id={vm_id}")["items"]
        self.assertEqual(len(ev), 1, ev)
        self.assertEqual(ev[0]["detail"]["user_data_bytes"], len(raw))
        self.assertEqual(ev[0]["detail"]["user_data_sm3"], vm["user_data_sm3"])
        self.assertNotIn(secret, str(ev))
        self.assertNotIn(secret, str(self.get("/v1/vms?limit=200")))
        self.assertNotIn(secret, self.d.read_log())
        # a VM without user data has no drive and reports none
        r = self.d.request("POST", "/v1/vms", {
            "name": "noud-" + self.tag, "department_id": self.dept["id"],
            "flavor_id": self.flavor["id"], "image_id": self.image["id"], "start": False},
            token=self.admin)
        self.accepted(r)
        plain = self.get(f"/v1/vms/{r.json['resource_id']}")
        self.assertEqual((plain["user_data_bytes"], plain["user_data_sm3"]), (0, None))
        self.assertNotIn(f"gc-{plain['id']}-cidata.iso", os.listdir(POOL_DIR))
        self.assertNotIn("cidata", virsh("dumpxml", plain["domain_name"]).stdout)
        # too large, or not text: refused, nothing made
        before = len(self.get("/v1/vms?limit=200")["items"])
        for bad in ("x" * 65537, "中" * 21846, 5, ["a"]):
            r = self.d.request("POST", "/v1/vms", {
                "name": "bad-" + self.tag, "department_id": self.dept["id"],
                "flavor_id": self.flavor["id"], "image_id": self.image["id"],
                "user_data": bad}, token=self.admin)
            self.assertEqual(r.status, 400, r)
            self.assertEqual(r.json["field"], "user_data", r.json)
        self.assertEqual(len(self.get("/v1/vms?limit=200")["items"]), before)
        r = self.d.request("POST", "/v1/vms", {
            "name": "max-" + self.tag, "department_id": self.dept["id"],
            "flavor_id": self.flavor["id"], "image_id": self.image["id"],
            "user_data": "y" * 65536, "start": False}, token=self.admin)
        self.accepted(r)
        big = r.json["resource_id"]
        self.assertEqual(self.get(f"/v1/vms/{big}")["user_data_bytes"], 65536)
        # delete: the drives go with the VMs
        for v in (vm_id, plain["id"], big):
            self.accepted(self.d.request("DELETE", f"/v1/vms/{v}", token=self.admin))
        left = [f for f in os.listdir(POOL_DIR) if vm_id in f or big in f]
        self.assertEqual(left, [])

    # -- VNC console ---------------------------------------------------------------------

    def test_vnc_console_port_and_password(self):
        r = self.d.request("POST", "/v1/vms", {
            "name": "vnc-" + self.tag, "department_id": self.dept["id"],
            "flavor_id": self.flavor["id"], "image_id": self.image["id"]}, token=self.admin)
        self.accepted(r)
        vm = self.get(f"/v1/vms/{r.json['resource_id']}")
        con = self.get(f"/v1/vms/{vm['id']}/vnc")
        self.assertEqual((con["vm_id"], con["host_id"], con["host"], con["listen"]),
                         (vm["id"], self.host["id"], "127.0.0.1", "127.0.0.1"), con)
        self.assertGreaterEqual(con["port"], 5900)
        self.assertRegex(con["password"], r"^[A-Za-z0-9]{8}$")
        # the live definition says the same
        xml = virsh("dumpxml", "--security-info", vm["domain_name"]).stdout
        self.assertIn(f"port='{con['port']}'", xml)
        self.assertIn(f"passwd='{con['password']}'", xml)
        # the port speaks RFB and wants a password (security type 2), never none (1)
        with socket.create_connection(("127.0.0.1", con["port"]), timeout=10) as s:
            banner = s.recv(12)
            self.assertTrue(banner.startswith(b"RFB 003."), banner)
            s.sendall(b"RFB 003.008\n")
            n = s.recv(1)[0]
            types = s.recv(n)
            self.assertEqual(list(types), [2], types)
        # the password is in no API answer but this one, nor in the audit trail or the log
        self.assertNotIn(con["password"], str(self.get(f"/v1/vms/{vm['id']}")))
        self.assertNotIn(con["password"], str(self.get(f"/v1/audit-events?resource_id={vm['id']}")))
        self.assertNotIn(con["password"], self.d.read_log())
        # who may ask: platform admin and operator, the department's admin; not its users,
        # nor the read-only platform roles, nor another department's admin
        other = self.d.request("POST", "/v1/departments", {"name": "别的 " + self.tag},
                               token=self.admin).json
        for role, dept, status in (("operator", None, 200),
                                   ("department_admin", self.dept["id"], 200),
                                   ("department_user", self.dept["id"], 403),
                                   ("auditor", None, 403),
                                   ("department_admin", other["id"], 404)):
            tok = self.user(role, dept)
            r = self.d.request("GET", f"/v1/vms/{vm['id']}/vnc", token=tok)
            self.assertEqual(r.status, status, (role, r))
            if status == 200:
                self.assertEqual(r.json["port"], con["port"])
        # stopped: no console
        self.accepted(self.d.request("POST", f"/v1/vms/{vm['id']}/stop?force=true",
                                     token=self.admin))
        r = self.d.request("GET", f"/v1/vms/{vm['id']}/vnc", token=self.admin)
        self.assertEqual(r.status, 409, r)
        r = self.d.request("GET", "/v1/vms/0190f0f0-0000-7000-8000-000000000000/vnc",
                           token=self.admin)
        self.assertEqual(r.status, 404, r)
        self.accepted(self.d.request("DELETE", f"/v1/vms/{vm['id']}", token=self.admin))

    # -- resize with a bigger root disk ------------------------------------------------------

    def test_resize_grows_the_root_disk(self):
        base = os.path.join(self.images, f"base-{self.tag}.qcow2")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", base, "1G"], check=True)
        os.chmod(base, 0o644)
        r = self.d.request("POST", "/v1/images", {
            "name": "disk-" + self.tag, "kind": "disk", "arch": "x86_64", "disk_path": base,
            "format": "qcow2"}, token=self.admin)
        self.assertEqual(r.status, 201, r)
        img = r.json
        self.wait_job(img["job_id"])
        flavors = {}
        for gib in (1, 2, 3):
            flavors[gib] = self.d.request("POST", "/v1/flavors", {
                "name": f"d{gib}-{self.tag}", "vcpus": 1, "memory_mib": 128,
                "disk_gib": gib}, token=self.admin).json
        dept = self.d.request("POST", "/v1/departments", {"name": "扩容 " + self.tag},
                              token=self.admin).json
        r = self.d.request("POST", "/v1/vms", {
            "name": "grow-" + self.tag, "department_id": dept["id"],
            "flavor_id": flavors[1]["id"], "image_id": img["id"], "start": False},
            token=self.admin)
        self.accepted(r)
        vm = self.get(f"/v1/vms/{r.json['resource_id']}")
        root = f"{vm['id']}-root.qcow2"

        def capacity():
            out = virsh("vol-info", "--bytes", "--pool", "default", root).stdout
            return int(out.split("Capacity:")[1].split()[0])
        self.assertEqual(capacity(), 1 << 30)
        # the quota counts the growth: 2 GiB allowed, 3 refused, nothing changed
        r = self.d.request("PUT", f"/v1/departments/{dept['id']}/quota", {"disk_gib": 2},
                           token=self.admin)
        self.assertEqual(r.status, 200, r)
        r = self.d.request("POST", f"/v1/vms/{vm['id']}/resize",
                           {"flavor_id": flavors[3]["id"]}, token=self.admin)
        self.assertEqual(r.status, 409, r)
        self.assertIn("disk_gib", r.json["detail"])
        self.assertEqual(self.get(f"/v1/vms/{vm['id']}")["disk_gib"], 1)
        self.assertEqual(capacity(), 1 << 30)
        job = self.accepted(self.d.request("POST", f"/v1/vms/{vm['id']}/resize",
                                           {"flavor_id": flavors[2]["id"]}, token=self.admin))
        self.assertEqual(job["result"]["disk_gib"], 2, job)
        self.assertEqual(capacity(), 2 << 30)
        vm = self.get(f"/v1/vms/{vm['id']}")
        self.assertEqual((vm["disk_gib"], vm["flavor_id"]), (2, flavors[2]["id"]))
        quota = self.get(f"/v1/departments/{dept['id']}/quota")
        self.assertEqual(quota["usage"]["disk_gib"], 2, quota)
        ev = self.get(f"/v1/audit-events?action=vm.resize&resource_id={vm['id']}")["items"]
        self.assertEqual(ev[-1]["detail"]["disk_gib"], 2, ev)
        # never smaller
        r = self.d.request("POST", f"/v1/vms/{vm['id']}/resize",
                           {"flavor_id": flavors[1]["id"]}, token=self.admin)
        self.assertEqual(r.status, 400, r)
        self.assertIn("do not shrink", r.json["detail"])
        self.assertEqual(capacity(), 2 << 30)
        # a running VM must be stopped first
        self.accepted(self.d.request("POST", f"/v1/vms/{vm['id']}/start", token=self.admin))
        r = self.d.request("POST", f"/v1/vms/{vm['id']}/resize",
                           {"flavor_id": flavors[3]["id"]}, token=self.admin)
        self.assertEqual(r.status, 409, r)
        self.accepted(self.d.request("DELETE", f"/v1/vms/{vm['id']}", token=self.admin))
        self.assertNotIn(root, os.listdir(POOL_DIR))


if __name__ == "__main__":
    unittest.main()
