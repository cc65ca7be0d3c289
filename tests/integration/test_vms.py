"""Flavors, images and virtual machines: the catalogue (validation, conflicts, the image
import job and its SHA-256/SM3 checksums), the VM life cycle through jobs on libvirt's test
driver (test:///default: an in-process hypervisor, i686, 16 CPUs, 3072 MiB, one fresh
hypervisor per connection), placement (capacity with over-commit, maintenance,
architecture, explicit hosts, parallel creates), department scoping, the objects a VM keeps
from being deleted, image re-verification, audit events and the console log.

Expected values come from docs/api.md and the rules of the brief, not from the daemon."""

import hashlib
import os
import shutil
import tempfile
import threading
import time
import unittest
import urllib.parse

from gcharness import Daemon, DaemonTestCase

TERMINAL = ("succeeded", "failed", "cancelled")
PASSWORD = "User-Passw0rd!"
HOST_CPUS, HOST_MIB = 16, 3072          # what test:///default reports
CPU_OVERCOMMIT, RAM_OVERCOMMIT = 400, 100  # the defaults of [compute]

_seq = [0]


def uniq(prefix):
    _seq[0] += 1
    return f"{prefix}{_seq[0]}-{os.getpid()}"


def _q(**kw):
    return urllib.parse.urlencode(kw)


def sanitizer_report(log):
    for bad in ("runtime error:", "AddressSanitizer", "LeakSanitizer"):
        if bad in log:
            return bad
    return None


class VmHelpers:
    """Mixin: needs self.d (a Daemon), self.admin (a token) and self.files (a directory)."""

    def call(self, method, path, body=None, token=None, **kw):
        return self.d.request(method, path, body, token=token or self.admin, **kw)

    def ok(self, method, path, body=None, token=None, want=200):
        r = self.call(method, path, body, token)
        self.assertEqual(r.status, want, f"{method} {path}: {r}")
        return r.json

    # -- jobs --
    def wait_job(self, jid, timeout=30, token=None):
        deadline = time.time() + timeout
        while True:
            j = self.ok("GET", f"/v1/jobs/{jid}", token=token)
            if j["state"] in TERMINAL:
                return j
            if time.time() > deadline:
                self.fail(f"job {jid} did not end in {timeout}s: {j}")
            time.sleep(0.02)

    def wait_ok(self, jid):
        j = self.wait_job(jid)
        self.assertEqual(j["state"], "succeeded", j)
        return j

    def accepted(self, r, kind):
        """Checks a 202 that returns a job of kind; returns the job."""
        self.assertEqual(r.status, 202, r)
        self.assertEqual(r.json["kind"], kind, r.json)
        self.assertEqual(r.headers.get("Location"), f"/v1/jobs/{r.json['id']}")
        self.assertEqual(r.json["resource_type"], "vm")
        return r.json

    # -- catalogue --
    def write(self, name, data):
        path = os.path.join(self.files, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def mkflavor(self, vcpus=1, memory_mib=64, **kw):
        body = {"name": uniq("f-"), "vcpus": vcpus, "memory_mib": memory_mib, **kw}
        return self.ok("POST", "/v1/flavors", body, want=201)

    def mkimage(self, arch="i686", wait=True, **kw):
        if "kernel_path" not in kw and "disk_path" not in kw:
            kw["kernel_path"] = self.write(uniq("vmlinuz-"), os.urandom(3000))
            kw["initrd_path"] = self.write(uniq("initrd-"), os.urandom(1000))
        kw.setdefault("kind", "disk" if "disk_path" in kw else "kernel")
        body = {"name": uniq("img-"), "arch": arch, **kw}
        img = self.ok("POST", "/v1/images", body, want=201)
        if wait:
            self.wait_job(img["job_id"])
            img = self.ok("GET", f"/v1/images/{img['id']}")
        return img

    # -- hosts and departments --
    def mkhost(self, **kw):
        name = uniq("h-")
        h = self.ok("POST", "/v1/hosts", {"name": name, "uri": f"test:///default?{name}", **kw},
                    want=201)
        self.assertEqual((h["state"], h["arch"], h["cpus"], h["memory_mib"]),
                         ("connected", "i686", HOST_CPUS, HOST_MIB), h)
        return h

    def mkdept_(self, name=None, parent=None):
        body = {"name": name or uniq("dept-")}
        if parent:
            body["parent_id"] = parent
        return self.ok("POST", "/v1/departments", body, want=201)

    def mkuser_(self, role, dept=None):
        name = uniq("u-")
        body = {"username": name, "password": PASSWORD, "role": role}
        if dept:
            body["department_id"] = dept
        u = self.ok("POST", "/v1/users", body, want=201)
        u["token"] = self.d.login(name, PASSWORD)
        return u

    # -- VMs --
    def post_vm(self, flavor, image, dept=None, token=None, name=None, **kw):
        body = {"name": name or uniq("vm-"), "flavor_id": flavor, "image_id": image, **kw}
        if dept:
            body["department_id"] = dept
        return self.call("POST", "/v1/vms", body, token)

    def create_vm(self, flavor, image, dept=None, token=None, **kw):
        """Creates a VM and waits for its job to succeed; returns the VM."""
        job = self.accepted(self.post_vm(flavor, image, dept, token, **kw), "vm.create")
        self.wait_ok(job["id"])
        return self.ok("GET", f"/v1/vms/{job['resource_id']}")

    def delete_vm(self, vid, token=None):
        job = self.accepted(self.call("DELETE", f"/v1/vms/{vid}", token=token), "vm.delete")
        self.assertEqual(job["resource_id"], vid)
        done = self.wait_ok(job["id"])
        self.assertEqual(self.call("GET", f"/v1/vms/{vid}").status, 404)
        return done

    def vm_ids(self, token=None, **query):
        r = self.ok("GET", "/v1/vms?" + _q(limit=500, **query), token=token)
        return [v["id"] for v in r["items"]]

    def job_ids(self):
        return sorted(j["id"] for j in self.ok("GET", "/v1/jobs?limit=500")["items"])

    def events(self, **query):
        r = self.ok("GET", "/v1/audit-events?" + _q(limit=500, **query))
        return r["items"]


class Base(DaemonTestCase, VmHelpers):
    daemon_extra = ("--set", "jobs.workers=2")

    @classmethod
    def setUpClass(cls):
        cls.files = tempfile.mkdtemp(prefix="govcloud-vm-files-")
        cls.console_dir = tempfile.mkdtemp(prefix="govcloud-console-")
        cls.daemon_extra = tuple(cls.daemon_extra) + (
            "--set", f"compute.console_log_dir={cls.console_dir}")
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            shutil.rmtree(cls.files, ignore_errors=True)
            shutil.rmtree(cls.console_dir, ignore_errors=True)


# ---------------------------------------------------------------------------------------
class TestFlavors(Base):

    def test_crud(self):
        name = uniq("m1.small-")
        r = self.call("POST", "/v1/flavors", {"name": name, "vcpus": 2, "memory_mib": 2048,
                                              "disk_gib": 20, "description": "小型"})
        self.assertEqual(r.status, 201, r)
        f = r.json
        self.assertEqual(r.headers.get("Location"), f"/v1/flavors/{f['id']}")
        for k, v in (("name", name), ("vcpus", 2), ("memory_mib", 2048), ("disk_gib", 20),
                     ("description", "小型"), ("version", 1)):
            self.assertEqual(f[k], v, f)
        self.assertEqual(self.ok("GET", f"/v1/flavors/{f['id']}"), f)
        # disk_gib and description are optional
        g = self.ok("POST", "/v1/flavors", {"name": uniq("tiny-"), "vcpus": 1,
                                            "memory_mib": 64}, want=201)
        self.assertEqual((g["disk_gib"], g["description"]), (0, ""))
        listed = self.ok("GET", "/v1/flavors?" + _q(name=name))["items"]
        self.assertEqual([x["id"] for x in listed], [f["id"]])
        everything = [x["id"] for x in self.ok("GET", "/v1/flavors?limit=500")["items"]]
        self.assertIn(f["id"], everything)
        self.assertIn(g["id"], everything)
        # every signed-in role reads the catalogue
        dept = self.mkdept_()
        du = self.mkuser_("department_user", dept["id"])
        self.assertEqual(self.ok("GET", f"/v1/flavors/{f['id']}", token=du["token"]), f)
        # and only platform admins and operators change it
        r = self.call("POST", "/v1/flavors", {"name": uniq("x-"), "vcpus": 1,
                                              "memory_mib": 64}, token=du["token"])
        self.assertProblem(r, 403)
        self.assertProblem(self.call("DELETE", f"/v1/flavors/{f['id']}", token=du["token"]), 403)
        op = self.mkuser_("operator")
        r = self.call("DELETE", f"/v1/flavors/{g['id']}", token=op["token"])
        self.assertEqual(r.status, 204, r)
        r = self.call("DELETE", f"/v1/flavors/{f['id']}")
        self.assertEqual(r.status, 204, r)
        self.assertProblem(self.call("GET", f"/v1/flavors/{f['id']}"), 404)
        self.assertProblem(self.call("DELETE", f"/v1/flavors/{f['id']}"), 404)
        self.assertEqual(self.ok("GET", "/v1/flavors?" + _q(name=name))["items"], [])

    def test_validation_names_the_field(self):
        good = {"name": "v-ok", "vcpus": 1, "memory_mib": 64}
        cases = [
            ({"vcpus": 1, "memory_mib": 64}, "name"),
            ({**good, "name": ""}, "name"),
            ({**good, "name": "有 空格"}, "name"),
            ({**good, "name": "x" * 65}, "name"),
            ({"name": "v1", "memory_mib": 64}, "vcpus"),
            ({**good, "vcpus": 0}, "vcpus"),
            ({**good, "vcpus": 513}, "vcpus"),
            ({**good, "vcpus": "2"}, "vcpus"),
            ({**good, "vcpus": 1.5}, "vcpus"),
            ({"name": "v1", "vcpus": 1}, "memory_mib"),
            ({**good, "memory_mib": 63}, "memory_mib"),
            ({**good, "memory_mib": None}, "memory_mib"),
            ({**good, "disk_gib": -1}, "disk_gib"),
            ({**good, "description": 5}, "description"),
            ({**good, "colour": "red"}, "colour"),
        ]
        for body, field in cases:
            with self.subTest(body=body):
                r = self.call("POST", "/v1/flavors", body)
                self.assertProblem(r, 400)
                self.assertEqual(r.json.get("field"), field, r.json)
        self.assertEqual([x for x in self.ok("GET", "/v1/flavors?limit=500")["items"]
                          if x["name"] in ("v-ok", "v1")], [], "a refused flavor was stored")
        r = self.call("POST", "/v1/flavors", raw=b"[1]",
                      headers={"Content-Type": "application/json"})
        self.assertProblem(r, 400)

    def test_duplicate_name_is_409(self):
        f = self.mkflavor()
        r = self.call("POST", "/v1/flavors", {"name": f["name"], "vcpus": 4, "memory_mib": 128})
        self.assertProblem(r, 409)
        self.assertEqual(r.json.get("field"), "name")
        self.assertIn(f["name"], r.json["detail"])
        same = self.ok("GET", "/v1/flavors?" + _q(name=f["name"]))["items"]
        self.assertEqual(same, [f])


# ---------------------------------------------------------------------------------------
class TestImages(Base):

    def digests(self, *paths):
        sha, sm3, size = hashlib.sha256(), hashlib.new("sm3"), 0
        for p in paths:
            with open(p, "rb") as f:
                data = f.read()
            sha.update(data)
            sm3.update(data)
            size += len(data)
        return sha.hexdigest(), sm3.hexdigest(), size

    def test_kernel_image_import(self):
        k = self.write("vmlinuz-a", os.urandom(200_000))
        i = self.write("initrd-a", os.urandom(70_001))
        name = uniq("alpine-")
        r = self.call("POST", "/v1/images", {"name": name, "kind": "kernel", "arch": "i686",
                                             "kernel_path": k, "initrd_path": i,
                                             "cmdline": "console=ttyS0 quiet",
                                             "min_memory_mib": 128})
        self.assertEqual(r.status, 201, r)
        img = r.json
        self.assertEqual(r.headers.get("Location"), f"/v1/images/{img['id']}")
        self.assertEqual((img["state"], img["kind"], img["kernel_path"], img["initrd_path"],
                          img["cmdline"], img["min_memory_mib"], img["format"],
                          img["disk_path"]),
                         ("importing", "kernel", k, i, "console=ttyS0 quiet", 128, "", ""))
        job = self.wait_job(img["job_id"])
        self.assertEqual((job["kind"], job["state"]), ("image.import", "succeeded"), job)
        self.assertEqual((job["resource_type"], job["resource_id"]), ("image", img["id"]))
        got = self.ok("GET", f"/v1/images/{img['id']}")
        sha, sm3, size = self.digests(k, i)
        self.assertEqual(got["state"], "active", got)
        self.assertEqual(got["sha256"], sha, "SHA-256 is not that of kernel + initrd")
        self.assertEqual(got["sm3"], sm3, "SM3 is not that of kernel + initrd")
        self.assertEqual(got["size_bytes"], size)
        self.assertEqual(got["size_bytes"], 270_001)
        self.assertEqual(got["last_error"], "")
        self.assertGreater(got["version"], img["version"])
        # the order matters: kernel first, then initrd
        self.assertNotEqual(got["sha256"], self.digests(i, k)[0])
        listed = self.ok("GET", "/v1/images?" + _q(name=name))["items"]
        self.assertEqual(listed, [got])
        self.assertIn(img["id"], [x["id"] for x in self.ok(
            "GET", "/v1/images?" + _q(kind="kernel", state="active", arch="i686",
                                      limit=500))["items"]])
        self.assertNotIn(img["id"], [x["id"] for x in self.ok(
            "GET", "/v1/images?" + _q(kind="disk", limit=500))["items"]])

    def test_kernel_image_without_initrd(self):
        k = self.write("vmlinuz-only", b"just a kernel")
        img = self.mkimage(kernel_path=k)
        sha, sm3, size = self.digests(k)
        self.assertEqual((img["state"], img["sha256"], img["sm3"], img["size_bytes"]),
                         ("active", sha, sm3, size))
        self.assertEqual(img["cmdline"], "console=ttyS0", "default cmdline")

    def test_disk_image_import(self):
        for fmt in ("qcow2", "raw"):
            with self.subTest(format=fmt):
                disk = self.write(uniq("disk-") + "." + fmt, os.urandom(100_000))
                img = self.mkimage(disk_path=disk, format=fmt, arch="x86_64", min_disk_gib=2)
                sha, sm3, size = self.digests(disk)
                self.assertEqual((img["state"], img["kind"], img["format"], img["disk_path"],
                                  img["kernel_path"], img["arch"], img["min_disk_gib"]),
                                 ("active", "disk", fmt, disk, "", "x86_64", 2))
                self.assertEqual((img["sha256"], img["sm3"], img["size_bytes"]),
                                 (sha, sm3, size))

    def test_empty_file_digests(self):
        k = self.write("vmlinuz-empty", b"")
        img = self.mkimage(kernel_path=k)
        self.assertEqual(img["state"], "active", img)
        self.assertEqual(img["sha256"], hashlib.sha256(b"").hexdigest())
        self.assertEqual(img["sm3"], hashlib.new("sm3", b"").hexdigest())
        self.assertEqual(img["size_bytes"], 0)

    def test_validation(self):
        k = self.write("vmlinuz-v", b"k")
        disk = self.write("disk-v.qcow2", b"d")
        jobs_before = self.job_ids()
        kern = {"name": "iv-k", "kind": "kernel", "arch": "i686", "kernel_path": k}
        dsk = {"name": "iv-d", "kind": "disk", "arch": "x86_64", "disk_path": disk,
               "format": "qcow2"}
        cases = [
            ({**kern, "kernel_path": "vmlinuz"}, "kernel_path"),
            ({**kern, "kernel_path": "./boot/vmlinuz"}, "kernel_path"),
            ({**kern, "initrd_path": "initrd.img"}, "initrd_path"),
            ({**dsk, "disk_path": "images/disk.qcow2"}, "disk_path"),
            ({**kern, "disk_path": disk}, "disk_path"),
            ({**kern, "format": "raw"}, "format"),
            ({k2: v for k2, v in kern.items() if k2 != "kernel_path"}, "kernel_path"),
            ({k2: v for k2, v in dsk.items() if k2 != "format"}, "format"),
            ({**dsk, "format": "vmdk"}, "format"),
            ({k2: v for k2, v in dsk.items() if k2 != "disk_path"}, "disk_path"),
            ({**dsk, "kernel_path": k}, "kernel_path"),
            ({**kern, "kind": "iso"}, "kind"),
            ({k2: v for k2, v in kern.items() if k2 != "kind"}, "kind"),
            ({k2: v for k2, v in kern.items() if k2 != "arch"}, "arch"),
            ({k2: v for k2, v in kern.items() if k2 != "name"}, "name"),
            ({**kern, "min_memory_mib": -1}, "min_memory_mib"),
            ({**kern, "checksum": "x"}, "checksum"),
        ]
        for body, field in cases:
            with self.subTest(body=body):
                r = self.call("POST", "/v1/images", body)
                self.assertProblem(r, 400)
                self.assertEqual(r.json.get("field"), field, r.json)
        left = [x for x in self.ok("GET", "/v1/images?limit=500")["items"]
                if x["name"] in ("iv-k", "iv-d")]
        self.assertEqual(left, [], "a refused image was stored")
        self.assertEqual(self.job_ids(), jobs_before, "a refused image queued an import")

    def test_duplicate_name_is_409(self):
        img = self.mkimage()
        k = self.write("vmlinuz-dup", b"k")
        r = self.call("POST", "/v1/images", {"name": img["name"], "kind": "kernel",
                                             "arch": "i686", "kernel_path": k})
        self.assertProblem(r, 409)
        self.assertEqual(r.json.get("field"), "name")
        self.assertEqual(len(self.ok("GET", "/v1/images?" + _q(name=img["name"]))["items"]), 1)

    def test_missing_file_gives_state_error(self):
        k = self.write("vmlinuz-m", b"kernel")
        gone = os.path.join(self.files, "no-such-initrd")
        img = self.mkimage(kernel_path=k, initrd_path=gone, wait=False)
        self.assertEqual(img["state"], "importing")
        job = self.wait_job(img["job_id"])
        self.assertEqual(job["state"], "failed", job)
        self.assertIn(gone, job["error"])
        got = self.ok("GET", f"/v1/images/{img['id']}")
        self.assertEqual(got["state"], "error", got)
        self.assertIn(gone, got["last_error"])
        self.assertEqual((got["sha256"], got["sm3"]), ("", ""), got)
        self.assertIn(img["id"], [x["id"] for x in self.ok(
            "GET", "/v1/images?" + _q(state="error", limit=500))["items"]])
        # an image that is not active cannot be used
        f = self.mkflavor()
        dept = self.mkdept_()
        r = self.post_vm(f["id"], img["id"], dept["id"])
        self.assertProblem(r, 409)
        self.assertEqual(r.json.get("field"), "image_id")
        self.assertEqual(self.vm_ids(), [])
        # and it can be deleted
        self.assertEqual(self.call("DELETE", f"/v1/images/{img['id']}").status, 204)

    def test_unreadable_disk_gives_state_error(self):
        img = self.mkimage(disk_path="/nonexistent/dir/disk.raw", format="raw", wait=False)
        self.wait_job(img["job_id"])
        got = self.ok("GET", f"/v1/images/{img['id']}")
        self.assertEqual(got["state"], "error", got)
        self.assertIn("/nonexistent/dir/disk.raw", got["last_error"])

    def test_delete(self):
        img = self.mkimage()
        self.assertProblem(self.call("DELETE", "/v1/images/" + img["id"],
                                     headers={"If-Match": '"999"'}), 412)
        r = self.call("DELETE", f"/v1/images/{img['id']}")
        self.assertEqual(r.status, 204, r)
        self.assertProblem(self.call("GET", f"/v1/images/{img['id']}"), 404)
        self.assertProblem(self.call("DELETE", f"/v1/images/{img['id']}"), 404)
        # the files are left alone
        self.assertTrue(os.path.exists(img["kernel_path"]))
        ev = self.events(action="image.delete", resource_id=img["id"], outcome="success")
        self.assertEqual(len(ev), 1, ev)
        self.assertEqual(ev[0]["detail"].get("sha256"), img["sha256"], ev)

    def test_roles(self):
        img = self.mkimage()
        dept = self.mkdept_()
        k = self.write("vmlinuz-r", b"k")
        body = {"name": uniq("ir-"), "kind": "kernel", "arch": "i686", "kernel_path": k}
        for role in ("auditor", "supervisor", "department_admin", "department_user"):
            with self.subTest(role=role):
                u = self.mkuser_(role, dept["id"] if role.startswith("department") else None)
                self.assertEqual(self.ok("GET", f"/v1/images/{img['id']}", token=u["token"]),
                                 img)
                self.assertProblem(self.call("POST", "/v1/images", body, token=u["token"]), 403)
                self.assertProblem(self.call("DELETE", f"/v1/images/{img['id']}",
                                             token=u["token"]), 403)
        op = self.mkuser_("operator")
        r = self.call("POST", "/v1/images", body, token=op["token"])
        self.assertEqual(r.status, 201, r)
        self.wait_job(r.json["job_id"])


# ---------------------------------------------------------------------------------------
class TestVmLifecycle(Base):
    """One test:///default host; every test removes the VMs it made."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            t = cls("run")    # a helper instance for the class fixtures
            cls.host = t.mkhost()
            cls.flavor = t.mkflavor(vcpus=1, memory_mib=128)
            cls.image = t.mkimage()
            cls.dept = t.mkdept_()
        except BaseException:
            cls.tearDownClass()
            raise

    def tearDown(self):
        # cancel helper jobs, then remove every VM left (tests delete their own; a failed
        # test may leave some)
        for j in self.ok("GET", "/v1/jobs?limit=500")["items"]:
            if j["state"] not in TERMINAL and j["kind"].startswith("test."):
                self.call("POST", f"/v1/jobs/{j['id']}/cancel")
        for j in self.ok("GET", "/v1/jobs?limit=500")["items"]:
            if j["state"] not in TERMINAL:
                self.wait_job(j["id"])
        for vid in self.vm_ids():
            r = self.call("DELETE", f"/v1/vms/{vid}")
            if r.status == 202:
                self.wait_job(r.json["id"])
        for h in self.ok("GET", "/v1/hosts?limit=500")["items"]:
            if h["id"] != self.host["id"]:
                self.call("DELETE", f"/v1/hosts/{h['id']}")

    def vm(self, vid):
        return self.ok("GET", f"/v1/vms/{vid}")

    def test_create_start_stop_reboot_delete(self):
        name = uniq("web-")
        r = self.post_vm(self.flavor["id"], self.image["id"], self.dept["id"], name=name)
        job = self.accepted(r, "vm.create")
        self.assertIn(job["state"], ("queued", "running", "succeeded"))
        self.assertEqual(job["department_id"], self.dept["id"])
        vid = job["resource_id"]
        self.assertEqual(job["params"].get("vm_id"), vid)
        # the VM exists at once, placed on the host
        v = self.vm(vid)
        self.assertEqual((v["name"], v["department_id"], v["host_id"], v["flavor_id"],
                          v["image_id"], v["vcpus"], v["memory_mib"]),
                         (name, self.dept["id"], self.host["id"], self.flavor["id"],
                          self.image["id"], 1, 128))
        self.assertIn(v["state"], ("building", "running"))
        self.assertEqual(v["domain_name"], f"gc-{vid}")
        done = self.wait_ok(job["id"])
        self.assertEqual(done["result"].get("power_state"), "running", done)
        v = self.vm(vid)
        self.assertEqual((v["state"], v["power_state"], v["host_id"], v["last_error"]),
                         ("running", "running", self.host["id"], ""), v)
        self.assertIn(vid, self.vm_ids(host_id=self.host["id"]))
        self.assertIn(vid, self.vm_ids(state="running"))
        self.assertEqual(self.vm_ids(name=name), [vid])

        def act(path, kind, state, power):
            j = self.accepted(self.call("POST", f"/v1/vms/{vid}/{path}"), kind)
            self.assertEqual(j["resource_id"], vid)
            self.wait_ok(j["id"])
            got = self.vm(vid)
            self.assertEqual((got["state"], got["power_state"]), (state, power),
                             f"after {path}: {got}")
            return j

        j = act("stop", "vm.stop", "stopped", "shutoff")
        self.assertIs(j["params"].get("force"), False)
        self.assertIn(vid, self.vm_ids(state="stopped"))
        self.assertNotIn(vid, self.vm_ids(state="running"))
        act("stop", "vm.stop", "stopped", "shutoff")     # stopping a stopped VM is fine
        act("start", "vm.start", "running", "running")
        act("start", "vm.start", "running", "running")   # and starting a running one
        j = act("stop?force=true", "vm.stop", "stopped", "shutoff")
        self.assertIs(j["params"].get("force"), True)
        act("reboot", "vm.reboot", "running", "running")  # a stopped VM boots
        act("reboot", "vm.reboot", "running", "running")
        self.assertProblem(self.call("POST", f"/v1/vms/{vid}/stop?force=maybe"), 400)
        # delete
        before = self.vm(vid)
        r = self.call("DELETE", f"/v1/vms/{vid}")
        dj = self.accepted(r, "vm.delete")
        g = self.call("GET", f"/v1/vms/{vid}")
        if g.status == 200:     # the job may be done already
            self.assertEqual(g.json["state"], "deleting", g.json)
        done = self.wait_ok(dj["id"])
        self.assertEqual(done["result"].get("deleted"), vid, done)
        self.assertProblem(self.call("GET", f"/v1/vms/{vid}"), 404)
        self.assertProblem(self.call("POST", f"/v1/vms/{vid}/start"), 404)
        self.assertProblem(self.call("DELETE", f"/v1/vms/{vid}"), 404)
        self.assertNotIn(vid, self.vm_ids())
        self.assertEqual(before["domain_name"], f"gc-{vid}")

    def test_create_without_start(self):
        v = self.create_vm(self.flavor["id"], self.image["id"], self.dept["id"], start=False)
        self.assertEqual((v["state"], v["power_state"]), ("stopped", "shutoff"), v)
        j = self.accepted(self.call("POST", f"/v1/vms/{v['id']}/start"), "vm.start")
        self.wait_ok(j["id"])
        self.assertEqual(self.vm(v["id"])["power_state"], "running")
        self.delete_vm(v["id"])

    def test_domain_is_gone_after_delete(self):
        """The API shows no hypervisor domains, but a deleted VM's capacity is free again
        and its host can be removed: the record is gone; the job reports the domain
        removed."""
        h = self.mkhost()
        small = self.mkflavor(vcpus=1, memory_mib=HOST_MIB)
        v = self.create_vm(small["id"], self.image["id"], self.dept["id"], host_id=h["id"])
        self.assertEqual(v["host_id"], h["id"])
        r = self.post_vm(small["id"], self.image["id"], self.dept["id"], host_id=h["id"])
        self.assertProblem(r, 409)
        done = self.delete_vm(v["id"])
        self.assertEqual(done["result"], {"deleted": v["id"]})
        v2 = self.create_vm(small["id"], self.image["id"], self.dept["id"], host_id=h["id"])
        self.delete_vm(v2["id"])
        self.assertEqual(self.call("DELETE", f"/v1/hosts/{h['id']}").status, 204)

    def test_second_action_while_a_job_is_in_progress_is_409(self):
        # right after create, the create job is queued or running
        r = self.post_vm(self.flavor["id"], self.image["id"], self.dept["id"])
        job = self.accepted(r, "vm.create")
        vid = job["resource_id"]
        r = self.call("POST", f"/v1/vms/{vid}/stop")
        self.assertIn(r.status, (202, 409), r)      # 202 only if the create ended already
        if r.status == 409:
            self.assertProblem(r, 409)
        self.wait_ok(job["id"])
        if r.status == 202:
            self.wait_job(r.json["id"])
        # occupy both workers so that the next job stays queued
        sleepers = []
        for _ in range(2):
            s = self.call("POST", "/v1/jobs", {"kind": "test.sleep",
                                               "params": {"steps": 400, "step_ms": 50}})
            self.assertEqual(s.status, 202, s)
            sleepers.append(s.json["id"])
        deadline = time.time() + 10
        while any(self.ok("GET", f"/v1/jobs/{s}")["state"] != "running" for s in sleepers):
            self.assertLess(time.time(), deadline, "the sleep jobs did not start")
            time.sleep(0.02)
        stop = self.accepted(self.call("POST", f"/v1/vms/{vid}/stop"), "vm.stop")
        self.assertEqual(self.ok("GET", f"/v1/jobs/{stop['id']}")["state"], "queued")
        before = self.vm(vid)
        jobs_before = self.ok("GET", "/v1/jobs?limit=500")["items"]
        for method, path in (("POST", "start"), ("POST", "stop"), ("POST", "stop?force=true"),
                             ("POST", "reboot"), ("DELETE", "")):
            with self.subTest(method=method, path=path):
                url = f"/v1/vms/{vid}" + (f"/{path}" if path else "")
                r = self.call(method, url)
                self.assertProblem(r, 409)
                self.assertIn("job in progress", r.json["detail"])
        self.assertEqual(self.vm(vid), before, "a refused action changed the VM")
        self.assertEqual(len(self.ok("GET", "/v1/jobs?limit=500")["items"]), len(jobs_before),
                         "a refused action queued a job")
        for s in sleepers:
            self.call("POST", f"/v1/jobs/{s}/cancel")
        self.wait_ok(stop["id"])
        self.assertEqual(self.vm(vid)["state"], "stopped")
        # after the job, actions are accepted again
        self.delete_vm(vid)

    def test_create_validation(self):
        f, i, d = self.flavor["id"], self.image["id"], self.dept["id"]
        missing = "01a00000-0000-7000-8000-000000000000"
        big = self.mkimage(min_memory_mib=256)
        vms_before, jobs_before = self.vm_ids(), self.job_ids()
        cases = [
            ({"flavor_id": f, "image_id": i, "department_id": d}, 400, "name"),
            ({"name": "a b", "flavor_id": f, "image_id": i, "department_id": d}, 400, "name"),
            ({"name": "x", "image_id": i, "department_id": d}, 400, "flavor_id"),
            ({"name": "x", "flavor_id": f, "department_id": d}, 400, "image_id"),
            ({"name": "x", "flavor_id": missing, "image_id": i, "department_id": d}, 400,
             "flavor_id"),
            ({"name": "x", "flavor_id": "nope", "image_id": i, "department_id": d}, 400,
             "flavor_id"),
            ({"name": "x", "flavor_id": f, "image_id": missing, "department_id": d}, 400,
             "image_id"),
            ({"name": "x", "flavor_id": f, "image_id": i, "department_id": missing}, 400,
             "department_id"),
            # a platform user has no department to default to
            ({"name": "x", "flavor_id": f, "image_id": i}, 400, "department_id"),
            ({"name": "x", "flavor_id": f, "image_id": i, "department_id": d,
              "host_id": missing}, 400, "host_id"),
            ({"name": "x", "flavor_id": f, "image_id": i, "department_id": d,
              "start": "yes"}, 400, "start"),
            ({"name": "x", "flavor_id": f, "image_id": i, "department_id": d,
              "user_data": 5}, 400, "user_data"),
        ]
        for body, status, field in cases:
            with self.subTest(body=body):
                r = self.call("POST", "/v1/vms", body)
                self.assertProblem(r, status)
                self.assertEqual(r.json.get("field"), field, r.json)
        # the image needs more memory than the flavor has
        r = self.post_vm(f, big["id"], d)
        self.assertProblem(r, 400)
        self.assertEqual(r.json.get("field"), "flavor_id")
        self.assertEqual(self.vm_ids(), vms_before, "a refused create left a VM")
        self.assertEqual(self.job_ids(), jobs_before, "a refused create left a job")
        # names are unique within a department
        v = self.create_vm(f, i, d, name="dup")
        r = self.post_vm(f, i, d, name="dup")
        self.assertProblem(r, 409)
        self.assertEqual(r.json.get("field"), "name")
        other = self.mkdept_()
        w = self.create_vm(f, i, other["id"], name="dup")
        self.delete_vm(v["id"])
        self.delete_vm(w["id"])

    def test_console(self):
        v = self.create_vm(self.flavor["id"], self.image["id"], self.dept["id"])
        r = self.call("GET", f"/v1/vms/{v['id']}/console")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.headers.get("Content-Type", "").startswith("text/plain"),
                        r.headers.get("Content-Type"))
        self.assertEqual(r.body, b"", "the test driver prints nothing")
        log = os.path.join(self.console_dir, f"{v['domain_name']}-console.log")
        with open(log, "wb") as fh:
            fh.write("Welcome to 政务云\r\nlogin: ".encode())
        r = self.call("GET", f"/v1/vms/{v['id']}/console")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body.decode("utf-8"), "Welcome to 政务云\r\nlogin: ")
        # only the tail of a long log
        with open(log, "wb") as fh:
            fh.write(b"A" * 200_000 + b"\nlast line\n")
        r = self.call("GET", f"/v1/vms/{v['id']}/console")
        self.assertEqual(r.status, 200, r)
        self.assertLessEqual(len(r.body), 65536)
        self.assertGreater(len(r.body), 60000)
        self.assertTrue(r.body.endswith(b"\nlast line\n"))
        self.assertEqual(self.call("GET", f"/v1/vms/{v['id']}/console?x=1").status, 400)
        self.delete_vm(v["id"])
        self.assertProblem(self.call("GET", f"/v1/vms/{v['id']}/console"), 404)

    def test_console_is_valid_utf8(self):
        """The answer says charset=utf-8, so bytes that are not UTF-8 (a guest prints
        anything; the 64 KiB cut can split a character) must not reach the client as is."""
        v = self.create_vm(self.flavor["id"], self.image["id"], self.dept["id"])
        log = os.path.join(self.console_dir, f"{v['domain_name']}-console.log")
        with open(log, "wb") as fh:
            fh.write(b"boot \xff\xfe\x00 ok\n")
        r = self.call("GET", f"/v1/vms/{v['id']}/console")
        self.assertEqual(r.status, 200, r)
        self.assertIn("utf-8", r.headers.get("Content-Type", "").lower())
        try:
            text = r.body.decode("utf-8")
        except UnicodeDecodeError as e:
            self.fail(f"console text is not UTF-8 ({e}): {r.body!r}")
        self.assertTrue(text.startswith("boot ") and text.endswith(" ok\n"), text)
        # a multi-byte character cut by the 64 KiB window
        with open(log, "wb") as fh:
            fh.write("政".encode() * 30000)     # 90000 bytes; 65536 is not a multiple of 3
        r = self.call("GET", f"/v1/vms/{v['id']}/console")
        try:
            r.body.decode("utf-8")
        except UnicodeDecodeError as e:
            self.fail(f"console tail cut inside a UTF-8 character ({e})")
        self.delete_vm(v["id"])

    def test_image_changed_after_import_fails_the_vm(self):
        k = self.write(uniq("vmlinuz-chg-"), b"original kernel")
        img = self.mkimage(kernel_path=k)
        self.assertEqual(img["state"], "active")
        with open(k, "ab") as fh:
            fh.write(b" with a backdoor")
        job = self.accepted(self.post_vm(self.flavor["id"], img["id"], self.dept["id"]),
                            "vm.create")
        done = self.wait_job(job["id"])
        self.assertEqual(done["state"], "failed", done)
        self.assertIn("checksums differ", done["error"])
        v = self.vm(job["resource_id"])
        self.assertEqual(v["state"], "error", v)
        self.assertIn("checksums differ", v["last_error"])
        self.assertNotEqual(v["power_state"], "running")
        # the image record still has the imported checksums
        self.assertEqual(self.ok("GET", f"/v1/images/{img['id']}")["sha256"], img["sha256"])
        # a VM in error can be deleted
        self.delete_vm(v["id"])
        # a removed file fails the same way, with the reason
        img2 = self.mkimage(kernel_path=self.write(uniq("vmlinuz-rm-"), b"k2"))
        os.unlink(img2["kernel_path"])
        job = self.accepted(self.post_vm(self.flavor["id"], img2["id"], self.dept["id"]),
                            "vm.create")
        done = self.wait_job(job["id"])
        self.assertEqual(done["state"], "failed", done)
        self.assertIn(img2["kernel_path"], done["error"])
        v = self.vm(job["resource_id"])
        self.assertEqual(v["state"], "error")
        self.assertIn(img2["kernel_path"], v["last_error"])
        self.delete_vm(v["id"])

    def test_failed_define_records_the_reason(self):
        """A disk image needs the host's `default` storage pool; the test driver has only
        `default-pool`, so defining the domain fails: the VM must say why."""
        disk = self.write(uniq("disk-"), os.urandom(4096))
        img = self.mkimage(disk_path=disk, format="raw")
        f = self.mkflavor(vcpus=1, memory_mib=64, disk_gib=1)
        job = self.accepted(self.post_vm(f["id"], img["id"], self.dept["id"]), "vm.create")
        done = self.wait_job(job["id"])
        v = self.vm(job["resource_id"])
        if done["state"] == "succeeded":      # the driver found a pool after all
            self.assertEqual(v["state"], "running", v)
        else:
            self.assertEqual(v["state"], "error", v)
            self.assertIn("pool", done["error"], f"the failed job gives no reason: {done}")
            self.assertNotEqual(v["last_error"], "",
                                f"the VM in error gives no reason (the job says "
                                f"{done['error']!r}): {v}")
            self.assertIn("pool", v["last_error"])
        self.delete_vm(v["id"])

    def test_flavor_and_image_in_use_are_409(self):
        f = self.mkflavor()
        img = self.mkimage()
        v = self.create_vm(f["id"], img["id"], self.dept["id"])
        r = self.call("DELETE", f"/v1/flavors/{f['id']}")
        self.assertProblem(r, 409)
        self.assertIn("virtual machine", r.json["detail"])
        r = self.call("DELETE", f"/v1/images/{img['id']}")
        self.assertProblem(r, 409)
        self.assertIn("virtual machine", r.json["detail"])
        self.assertEqual(self.ok("GET", f"/v1/flavors/{f['id']}"), f)
        self.assertEqual(self.ok("GET", f"/v1/images/{img['id']}"), img)
        self.delete_vm(v["id"])
        self.assertEqual(self.call("DELETE", f"/v1/flavors/{f['id']}").status, 204)
        self.assertEqual(self.call("DELETE", f"/v1/images/{img['id']}").status, 204)

    def test_department_delete_refused_while_it_owns_vms(self):
        dept = self.mkdept_()
        v = self.create_vm(self.flavor["id"], self.image["id"], dept["id"])
        r = self.call("DELETE", f"/v1/departments/{dept['id']}")
        self.assertProblem(r, 409)
        self.assertIn("virtual machines", r.json["detail"])
        self.assertEqual(self.call("GET", f"/v1/departments/{dept['id']}").status, 200)
        self.assertEqual(self.vm(v["id"])["department_id"], dept["id"])
        self.delete_vm(v["id"])
        r = self.call("DELETE", f"/v1/departments/{dept['id']}")
        self.assertEqual(r.status, 204, r)

    def test_host_delete_refused_while_it_runs_vms(self):
        h = self.mkhost()
        v = self.create_vm(self.flavor["id"], self.image["id"], self.dept["id"],
                           host_id=h["id"])
        self.assertEqual(v["host_id"], h["id"])
        r = self.call("DELETE", f"/v1/hosts/{h['id']}")
        self.assertProblem(r, 409)
        self.assertIn("virtual machines", r.json["detail"])
        self.assertEqual(self.call("GET", f"/v1/hosts/{h['id']}").status, 200)
        self.assertEqual(self.vm(v["id"])["state"], "running")
        # a stopped VM still holds the host
        j = self.accepted(self.call("POST", f"/v1/vms/{v['id']}/stop"), "vm.stop")
        self.wait_ok(j["id"])
        self.assertProblem(self.call("DELETE", f"/v1/hosts/{h['id']}"), 409)
        self.delete_vm(v["id"])
        self.assertEqual(self.call("DELETE", f"/v1/hosts/{h['id']}").status, 204)

    def test_audit_events(self):
        v = self.create_vm(self.flavor["id"], self.image["id"], self.dept["id"])
        for path, kind in (("stop", "vm.stop"), ("start", "vm.start"),
                           ("stop?force=true", "vm.stop"), ("reboot", "vm.reboot")):
            j = self.accepted(self.call("POST", f"/v1/vms/{v['id']}/{path}"), kind)
            self.wait_ok(j["id"])
        self.delete_vm(v["id"])
        ev = self.events(resource_id=v["id"])
        ok = [e for e in ev if e["outcome"] == "success"]
        actions = [e["action"] for e in ok]
        for action in ("vm.create", "vm.delete"):
            with self.subTest(action=action):
                self.assertEqual(actions.count(action), 1, actions)
        # the graceful stop; the forced one may be recorded as vm.stop or vm.force_stop
        self.assertIn(actions.count("vm.stop") + actions.count("vm.force_stop"), (2,), actions)
        self.assertIn("vm.stop", actions)
        self.assertIn("vm.start", actions)
        self.assertIn("vm.reboot", actions)
        me = self.ok("GET", "/v1/users/me")
        for e in ok:
            with self.subTest(event=e["action"]):
                self.assertEqual(e["resource_type"], "vm")
                self.assertEqual(e["department_id"], self.dept["id"])
                self.assertEqual(e["actor_name"], me["username"])
        create = next(e for e in ok if e["action"] == "vm.create")
        self.assertEqual(create["detail"].get("host_id"), self.host["id"], create)
        self.assertEqual(create["detail"].get("flavor_id"), self.flavor["id"], create)
        # the events are in the verified chain
        self.assertIs(self.ok("GET", "/v1/audit-events/verify")["intact"], True)


# ---------------------------------------------------------------------------------------
class TestVmScope(Base):
    """Department P with child P1, department Q; VMs are scoped like jobs."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            t = cls("run")
            cls.host = t.mkhost()
            cls.flavor = t.mkflavor(vcpus=1, memory_mib=64)
            cls.image = t.mkimage()
            cls.p = t.mkdept_()["id"]
            cls.p1 = t.mkdept_(parent=cls.p)["id"]
            cls.q = t.mkdept_()["id"]
            cls.pa = t.mkuser_("department_admin", cls.p)
            cls.p1u = t.mkuser_("department_user", cls.p1)
            cls.p1u2 = t.mkuser_("department_user", cls.p1)
            cls.qu = t.mkuser_("department_user", cls.q)
            cls.sup = t.mkuser_("supervisor")
            cls.aud = t.mkuser_("auditor")
            # each department user makes one VM in its own department (no department_id)
            cls.vm = {}
            for key, u in (("p1", cls.p1u), ("q", cls.qu)):
                job = t.accepted(t.post_vm(cls.flavor["id"], cls.image["id"],
                                           token=u["token"]), "vm.create")
                t.assertEqual(job["created_by"], u["id"])
                t.wait_ok(job["id"])
                cls.vm[key] = t.ok("GET", f"/v1/vms/{job['resource_id']}")
            job = t.accepted(t.post_vm(cls.flavor["id"], cls.image["id"], cls.p,
                                       token=cls.pa["token"]), "vm.create")
            t.wait_ok(job["id"])
            cls.vm["p"] = t.ok("GET", f"/v1/vms/{job['resource_id']}")
        except BaseException:
            cls.tearDownClass()
            raise

    def test_created_in_own_department(self):
        self.assertEqual(self.vm["p1"]["department_id"], self.p1)
        self.assertEqual(self.vm["q"]["department_id"], self.q)
        self.assertEqual(self.vm["p1"]["created_by"], self.p1u["id"])
        self.assertEqual(self.vm["p1"]["state"], "running")
        # a department user cannot create elsewhere: a foreign department looks missing
        for dept in (self.q, self.p):
            with self.subTest(dept=dept):
                r = self.post_vm(self.flavor["id"], self.image["id"], dept,
                                 token=self.p1u["token"])
                self.assertProblem(r, 400)
                self.assertEqual(r.json.get("field"), "department_id")
        # a department admin may create in its subtree
        r = self.post_vm(self.flavor["id"], self.image["id"], self.p1, token=self.pa["token"])
        job = self.accepted(r, "vm.create")
        self.wait_ok(job["id"])
        self.assertEqual(self.ok("GET", f"/v1/vms/{job['resource_id']}")["department_id"],
                         self.p1)
        self.delete_vm(job["resource_id"], token=self.pa["token"])
        # only platform roles choose the host
        for u in (self.p1u, self.pa):
            r = self.post_vm(self.flavor["id"], self.image["id"], token=u["token"],
                             host_id=self.host["id"])
            self.assertProblem(r, 403)
            self.assertEqual(r.json.get("field"), "host_id")
        # auditors and supervisors read but do not create
        for u in (self.sup, self.aud):
            r = self.post_vm(self.flavor["id"], self.image["id"], self.p, token=u["token"])
            self.assertProblem(r, 403)
        self.assertCountEqual(self.vm_ids(), [v["id"] for v in self.vm.values()])

    def test_foreign_vms_are_404(self):
        version = {k: self.ok("GET", f"/v1/vms/{v['id']}")["version"]
                   for k, v in self.vm.items()}
        cases = [(self.p1u, "q"), (self.p1u, "p"), (self.qu, "p1"), (self.pa, "q")]
        for u, key in cases:
            v = self.vm[key]
            for method, path in (("GET", ""), ("GET", "/console"), ("POST", "/start"),
                                 ("POST", "/stop"), ("POST", "/stop?force=true"),
                                 ("POST", "/reboot"), ("DELETE", "")):
                with self.subTest(user=u["username"], vm=v["name"], method=method, path=path):
                    r = self.call(method, f"/v1/vms/{v['id']}{path}", token=u["token"])
                    self.assertProblem(r, 404)
                    self.assertNotIn(v["name"], r.json["detail"])
            after = self.ok("GET", f"/v1/vms/{v['id']}")
            self.assertEqual((after["state"], after["version"]), ("running", version[key]),
                             "a foreign user changed the VM")

    def test_in_scope_actions(self):
        # another user of the same department, and the admin of the parent department
        for u in (self.p1u2, self.pa):
            with self.subTest(user=u["username"]):
                v = self.vm["p1"]
                self.assertEqual(self.ok("GET", f"/v1/vms/{v['id']}", token=u["token"])["id"],
                                 v["id"])
                r = self.call("GET", f"/v1/vms/{v['id']}/console", token=u["token"])
                self.assertEqual(r.status, 200, r)
                j = self.accepted(self.call("POST", f"/v1/vms/{v['id']}/reboot",
                                            token=u["token"]), "vm.reboot")
                self.assertEqual(self.wait_job(j["id"], token=u["token"])["state"], "succeeded")
        # a department user may not read the hosts its VMs run on
        self.assertProblem(self.call("GET", f"/v1/hosts/{self.host['id']}",
                                     token=self.p1u["token"]), 404)

    def test_lists_are_scoped(self):
        vm = {k: v["id"] for k, v in self.vm.items()}
        self.assertCountEqual(self.vm_ids(self.p1u["token"]), [vm["p1"]])
        self.assertCountEqual(self.vm_ids(self.qu["token"]), [vm["q"]])
        self.assertCountEqual(self.vm_ids(self.pa["token"]), [vm["p"], vm["p1"]])
        for u in (self.sup, self.aud):
            self.assertCountEqual(self.vm_ids(u["token"]), vm.values())
        # filters cannot reach outside the scope
        self.assertEqual(self.vm_ids(self.p1u["token"], department_id=self.q), [])
        self.assertEqual(self.vm_ids(self.p1u["token"], department_id=self.p), [])
        self.assertEqual(self.vm_ids(self.pa["token"], department_id=self.q), [])
        self.assertEqual(self.vm_ids(self.pa["token"], name=self.vm["q"]["name"]), [])
        self.assertEqual(self.vm_ids(self.qu["token"], host_id=self.host["id"]), [vm["q"]])
        self.assertEqual(self.vm_ids(self.pa["token"], department_id=self.p1), [vm["p1"]])
        # paging inside the scope
        seen, cursor = [], None
        while True:
            q = {"limit": 1}
            if cursor:
                q["cursor"] = cursor
            r = self.ok("GET", "/v1/vms?" + _q(**q), token=self.pa["token"])
            seen += [x["id"] for x in r["items"]]
            cursor = r["next_cursor"]
            if not cursor:
                break
        self.assertEqual(seen, sorted([vm["p"], vm["p1"]]))
        # the VM jobs follow the same scope
        jobs = self.ok("GET", "/v1/jobs?" + _q(kind="vm.create", limit=500),
                       token=self.qu["token"])["items"]
        self.assertEqual({j["resource_id"] for j in jobs}, {vm["q"]})

    def test_audit_events_of_vms_are_in_the_department_view(self):
        seen = self.ok("GET", "/v1/audit-events?" + _q(action="vm.create", limit=500),
                       token=self.pa["token"])["items"]
        ids = {e["resource_id"] for e in seen if e["outcome"] == "success"}
        self.assertLessEqual({self.vm["p"]["id"], self.vm["p1"]["id"]}, ids)
        self.assertNotIn(self.vm["q"]["id"], ids)
        for e in seen:
            self.assertIn(e["department_id"], (self.p, self.p1))


# ---------------------------------------------------------------------------------------
class PlacementCase(DaemonTestCase, VmHelpers):
    """Every test gets a daemon of its own with exactly the hosts it registers."""

    extra = ()

    @classmethod
    def setUpClass(cls):
        pass

    @classmethod
    def tearDownClass(cls):
        pass

    def setUp(self):
        self.files = tempfile.mkdtemp(prefix="govcloud-vm-files-")
        self.d = Daemon(extra=("--set", "jobs.workers=2", *self.extra)).start()
        self.admin = self.d.login()
        self.image = self.mkimage()
        self.dept = self.mkdept_()

    def tearDown(self):
        rc = self.d.stop()
        log = self.d.read_log()
        self.d.cleanup()
        shutil.rmtree(self.files, ignore_errors=True)
        self.assertEqual(rc, 0, log[-4000:])
        self.assertIsNone(sanitizer_report(log), log[-8000:])

    def snapshot(self):
        """What a refused create must leave unchanged."""
        return (sorted(self.vm_ids()),
                sorted(j["id"] for j in self.ok("GET", "/v1/jobs?limit=500")["items"]),
                [e["seq"] for e in self.events(action="vm.create", outcome="success")])

    def fill(self, flavor, n):
        vids = []
        for _ in range(n):
            job = self.accepted(self.post_vm(flavor, self.image["id"], self.dept["id"],
                                             start=False), "vm.create")
            vids.append(job["resource_id"])
        return vids

    def assertRefused(self, r, words, field=None):
        self.assertProblem(r, 409)
        self.assertIn("cannot place", r.json["detail"])
        for w in words:
            self.assertIn(w, r.json["detail"])
        if field is not None:
            self.assertEqual(r.json.get("field"), field, r.json)


class TestPlacementCapacity(PlacementCase):

    def test_cpu_overcommit(self):
        h = self.mkhost()
        # 16 CPUs x 400 % = 64 vCPUs: four VMs of 16 vCPUs fit, a fifth does not
        f = self.mkflavor(vcpus=16, memory_mib=256)
        fits = HOST_CPUS * CPU_OVERCOMMIT // 100 // 16
        self.assertEqual(fits, 4)
        vids = self.fill(f["id"], fits)
        before = self.snapshot()
        r = self.post_vm(f["id"], self.image["id"], self.dept["id"])
        self.assertRefused(r, ["16 free vCPUs"])
        self.assertEqual(self.snapshot(), before, "a refused create wrote something")
        # a single vCPU does not fit either, memory would
        one = self.mkflavor(vcpus=1, memory_mib=64)
        self.assertRefused(self.post_vm(one["id"], self.image["id"], self.dept["id"]),
                           ["1 free vCPUs"])
        for vid in vids:
            v = self.ok("GET", f"/v1/vms/{vid}")
            self.assertEqual(v["host_id"], h["id"])
        for j in self.ok("GET", "/v1/jobs?" + _q(kind="vm.create", limit=500))["items"]:
            self.wait_ok(j["id"])
        # deleting one frees its share
        self.delete_vm(vids[0])
        self.accepted(self.post_vm(f["id"], self.image["id"], self.dept["id"], start=False),
                      "vm.create")

    def test_memory_is_not_overcommitted(self):
        self.mkhost()
        f = self.mkflavor(vcpus=1, memory_mib=1024)
        self.fill(f["id"], HOST_MIB * RAM_OVERCOMMIT // 100 // 1024)   # 3
        before = self.snapshot()
        r = self.post_vm(f["id"], self.image["id"], self.dept["id"])
        self.assertRefused(r, ["1024 MiB"])
        self.assertEqual(self.snapshot(), before, "a refused create wrote something")
        # but the last 64 MiB... there are none: 3 x 1024 = 3072
        small = self.mkflavor(vcpus=1, memory_mib=64)
        self.assertRefused(self.post_vm(small["id"], self.image["id"], self.dept["id"]),
                           ["64 MiB"])
        self.assertEqual(self.snapshot()[0], before[0])

    def test_second_host_takes_over_and_spread(self):
        h1 = self.mkhost()
        f = self.mkflavor(vcpus=1, memory_mib=1024)
        a = self.fill(f["id"], 1)[0]
        h2 = self.mkhost()
        # the weigher takes the host with the most free memory: h2, then h1 and h2 alike
        b = self.fill(f["id"], 1)[0]
        self.assertEqual(self.ok("GET", f"/v1/vms/{a}")["host_id"], h1["id"])
        self.assertEqual(self.ok("GET", f"/v1/vms/{b}")["host_id"], h2["id"])
        more = self.fill(f["id"], 4)
        hosts = [self.ok("GET", f"/v1/vms/{v}")["host_id"] for v in more]
        self.assertEqual(sorted(hosts), sorted([h1["id"], h2["id"]] * 2))
        self.assertRefused(self.post_vm(f["id"], self.image["id"], self.dept["id"]),
                           ["1024 MiB"])


class TestPlacementOvercommitSettings(PlacementCase):
    extra = ("--set", "compute.ram_overcommit_percent=150",
             "--set", "compute.cpu_overcommit_percent=100")

    def test_configured_overcommit(self):
        self.mkhost()
        mem = self.mkflavor(vcpus=1, memory_mib=1024)
        self.fill(mem["id"], 4)            # 3072 x 150 % = 4608 MiB
        self.assertRefused(self.post_vm(mem["id"], self.image["id"], self.dept["id"]),
                           ["1024 MiB"])
        cpu = self.mkflavor(vcpus=12, memory_mib=64)   # 16 x 100 % = 16; 4 are used
        self.fill(cpu["id"], 1)
        self.assertRefused(self.post_vm(cpu["id"], self.image["id"], self.dept["id"]),
                           ["12 free vCPUs"])


class TestPlacementFilters(PlacementCase):

    def test_maintenance(self):
        h = self.mkhost()
        f = self.mkflavor()
        r = self.call("PATCH", f"/v1/hosts/{h['id']}", {"maintenance": True})
        self.assertEqual(r.status, 200, r)
        before = self.snapshot()
        self.assertRefused(self.post_vm(f["id"], self.image["id"], self.dept["id"]),
                           ["maintenance"])
        # naming the host does not get around it
        self.assertRefused(self.post_vm(f["id"], self.image["id"], self.dept["id"],
                                        host_id=h["id"]), ["maintenance"], field="host_id")
        self.assertEqual(self.snapshot(), before)
        # a second host that is not in maintenance takes the VM
        h2 = self.mkhost()
        v = self.create_vm(f["id"], self.image["id"], self.dept["id"])
        self.assertEqual(v["host_id"], h2["id"])
        self.assertEqual(self.call("PATCH", f"/v1/hosts/{h['id']}",
                                   {"maintenance": False}).status, 200)
        w = self.create_vm(f["id"], self.image["id"], self.dept["id"])
        self.assertEqual(w["host_id"], h["id"], "the weigher should take the emptier host")

    def test_arch_mismatch(self):
        self.mkhost()
        f = self.mkflavor()
        x86 = self.mkimage(arch="x86_64")
        before = self.snapshot()
        self.assertRefused(self.post_vm(f["id"], x86["id"], self.dept["id"]),
                           ["x86_64"])
        self.assertEqual(self.snapshot(), before)
        aarch = self.mkimage(arch="aarch64")
        self.assertRefused(self.post_vm(f["id"], aarch["id"], self.dept["id"]), ["aarch64"])

    def test_no_host(self):
        f = self.mkflavor()
        self.assertRefused(self.post_vm(f["id"], self.image["id"], self.dept["id"]), [])

    def test_explicit_host(self):
        h1, h2 = self.mkhost(), self.mkhost()
        f = self.mkflavor(vcpus=2, memory_mib=512)
        op = self.mkuser_("operator")
        # the weigher would spread; an explicit host is honoured every time
        placed = []
        for tok in (self.admin, op["token"], self.admin):
            v = self.create_vm(f["id"], self.image["id"], self.dept["id"], token=tok,
                               host_id=h2["id"])
            placed.append(v["host_id"])
        self.assertEqual(placed, [h2["id"]] * 3)
        # without host_id, the emptier host
        v = self.create_vm(f["id"], self.image["id"], self.dept["id"])
        self.assertEqual(v["host_id"], h1["id"])
        # the explicit host must have room: the others do not count
        big = self.mkflavor(vcpus=1, memory_mib=HOST_MIB - 3 * 512 + 1)
        before = self.snapshot()
        self.assertRefused(self.post_vm(big["id"], self.image["id"], self.dept["id"],
                                        host_id=h2["id"]), [], field="host_id")
        self.assertEqual(self.snapshot(), before)
        # department roles may not choose
        for role in ("department_admin", "department_user"):
            with self.subTest(role=role):
                u = self.mkuser_(role, self.dept["id"])
                r = self.post_vm(f["id"], self.image["id"], token=u["token"],
                                 host_id=h1["id"])
                self.assertProblem(r, 403)
                self.assertEqual(r.json.get("field"), "host_id")
                self.assertEqual(self.snapshot(), before)
        r = self.post_vm(f["id"], self.image["id"], self.dept["id"],
                         host_id="01a00000-0000-7000-8000-000000000000")
        self.assertProblem(r, 400)
        self.assertEqual(r.json.get("field"), "host_id")


class TestPlacementConcurrency(PlacementCase):

    def test_parallel_creates_never_overshoot(self):
        h = self.mkhost()
        per = HOST_MIB // 5                       # 614 MiB: five fit, six do not
        self.assertGreater(per * 6, HOST_MIB)
        f = self.mkflavor(vcpus=1, memory_mib=per)
        users = [self.mkuser_("department_user", self.dept["id"]) for _ in range(8)]
        barrier = threading.Barrier(8)
        results = [None] * 8

        def create(i):
            barrier.wait()
            results[i] = self.d.request("POST", "/v1/vms",
                                        {"name": f"par-{i}", "flavor_id": f["id"],
                                         "image_id": self.image["id"]},
                                        token=users[i]["token"])

        threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        statuses = sorted(r.status for r in results)
        self.assertEqual(statuses, [202] * 5 + [409] * 3, results)
        for r in results:
            if r.status == 409:
                self.assertRefused(r, [f"{per} MiB"])
        vms = self.ok("GET", "/v1/vms?limit=500")["items"]
        self.assertEqual(len(vms), 5)
        self.assertLessEqual(sum(v["memory_mib"] for v in vms), HOST_MIB)
        self.assertEqual({v["host_id"] for v in vms}, {h["id"]})
        self.assertEqual(len({v["name"] for v in vms}), 5)
        for r in results:
            if r.status == 202:
                self.wait_ok(r.json["id"])
        for v in self.ok("GET", "/v1/vms?limit=500")["items"]:
            self.assertEqual((v["state"], v["power_state"]), ("running", "running"), v)
        jobs = self.ok("GET", "/v1/jobs?" + _q(kind="vm.create", limit=500))["items"]
        self.assertEqual(len(jobs), 5)


if __name__ == "__main__":
    unittest.main()
