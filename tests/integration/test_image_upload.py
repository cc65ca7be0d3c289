"""Image upload and distribution against the real libvirtd (qemu:///system): a disk image
streamed through PUT /v1/images/{id}/file into a storage pool of the image store host,
hashed (SHA-256, SM3) and format-checked on the way; bad uploads refused with nothing kept;
a dropped connection leaving no half image; a real guest booting from an uploaded qcow2
image, whose copy in the host's VM pool is made from the store (verified) for the first VM,
reused (verified again) for the next, and refused once tampered with.

libvirt's test driver cannot upload into volumes (virStorageVolUpload is not supported), so
this uses the system libvirtd with two directory pools of its own (unique names, temporary
directories): one as the image store ([images] store_pool), one for the VMs ([compute]
storage_pool), so that the first VM really copies the image from one pool to the other.

Skips, saying so, only when libvirt, QEMU, syslinux, mtools or dosfstools is missing."""

import hashlib
import http.client
import os
import shutil
import socket
import subprocess
import time
import unittest
import uuid

import gcharness as gh
import libvirtd as lv

DISK_TOOLS = ("mkfs.fat", "syslinux", "mcopy")


def boot_disk(workdir, kernel, initrd, msg):
    """A raw disk that boots the tiny guest: a FAT file system without partition table with
    syslinux in its boot sector, the kernel and initramfs and a syslinux.cfg."""
    disk = os.path.join(workdir, "boot.img")
    cfg = os.path.join(workdir, "syslinux.cfg")
    with open(cfg, "w") as f:
        f.write("DEFAULT tiny\nPROMPT 0\nTIMEOUT 0\nLABEL tiny\n  LINUX vmlinuz\n"
                f"  INITRD initrd.img\n  APPEND console=ttyS0 govcloud.msg={msg}\n")
    if os.path.exists(disk):
        os.unlink(disk)
    subprocess.run(["mkfs.fat", "-C", disk, "16384"], check=True, capture_output=True)
    subprocess.run(["syslinux", "--install", disk], check=True, capture_output=True)
    for src, dst in ((kernel, "vmlinuz"), (initrd, "initrd.img"), (cfg, "syslinux.cfg")):
        subprocess.run(["mcopy", "-i", disk, src, "::" + dst], check=True, capture_output=True)
    return disk


def digests(path):
    sha, sm3 = hashlib.sha256(), hashlib.new("sm3")
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            sha.update(b)
            sm3.update(b)
    return sha.hexdigest(), sm3.hexdigest()


class ImageUploadTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        missing = lv.missing_binaries() + [t for t in DISK_TOOLS if not shutil.which(t)]
        if missing:
            raise unittest.SkipTest("missing: " + ", ".join(missing)
                                    + " (scripts/install-deps installs them)")
        lv.ensure_libvirtd()
        cls.work = lv.make_workdir("govcloud-imgup-")
        tag = uuid.uuid4().hex[:8]
        cls.pools = {}
        for role in ("store", "vms"):
            name = f"gc-test-{role}-{tag}"
            path = os.path.join(cls.work, role)
            os.makedirs(path)
            os.chmod(path, 0o755)
            lv.virsh("pool-define-as", name, "dir", "--target", path)
            lv.virsh("pool-start", name)
            cls.pools[role] = (name, path)
        lv.tiny_image(cls.work)
        virt = "kvm" if lv.kvm_usable() else "qemu"
        cls.d = gh.Daemon(extra=["--set", "bootstrap.host_uri=qemu:///system",
                                 "--set", f"compute.virt_type={virt}",
                                 "--set", f"compute.storage_pool={cls.pools['vms'][0]}",
                                 "--set", f"images.store_pool={cls.pools['store'][0]}",
                                 "--set", "images.max_upload_gib=2"]).start()
        cls.admin = cls.d.login()
        cls.host = cls.wait_for("the local host to connect", lambda: next(
            (h for h in cls.d.request("GET", "/v1/hosts", token=cls.admin).json["items"]
             if h["uri"] == "qemu:///system" and h["state"] == "connected"), None), 30)

    @classmethod
    def tearDownClass(cls):
        rc = cls.d.stop()
        log = cls.d.read_log()
        cls.d.cleanup()
        for name, _ in cls.pools.values():
            for vol in lv.virsh("vol-list", name, check=False).stdout.split():
                if vol.startswith("gc-"):
                    lv.virsh("vol-delete", vol, "--pool", name, check=False)
            lv.virsh("pool-destroy", name, check=False)
            lv.virsh("pool-undefine", name, check=False)
        shutil.rmtree(cls.work, ignore_errors=True)
        lv.stop_libvirtd()
        if rc != 0:
            raise AssertionError(f"govcloudd exited with {rc}:\n{log[-4000:]}")
        for bad in ("runtime error:", "AddressSanitizer", "LeakSanitizer"):
            if bad in log:
                raise AssertionError(f"sanitizer report in the daemon log:\n{log[-8000:]}")

    # ---- helpers ----

    @staticmethod
    def wait_for(what, fn, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = fn()
            if v:
                return v
            time.sleep(0.3)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")

    def get(self, path):
        r = self.d.request("GET", path, token=self.admin)
        self.assertEqual(r.status, 200, r)
        return r.json if r.json is not None else r.body.decode("utf-8", "replace")

    def wait_job(self, job_id, timeout=120, state="succeeded"):
        def done():
            j = self.get(f"/v1/jobs/{job_id}")
            return j if j["state"] in ("succeeded", "failed", "cancelled") else None
        j = self.wait_for(f"job {job_id}", done, timeout)
        self.assertEqual(j["state"], state, j)
        return j

    def new_image(self, fmt="raw", token=None):
        r = self.d.request("POST", "/v1/images", {
            "name": "up-" + uuid.uuid4().hex[:10], "kind": "disk", "format": fmt,
            "arch": self.host["arch"], "source": "upload"}, token=token or self.admin)
        self.assertEqual(r.status, 201, r)
        self.assertEqual((r.json["state"], r.json["source"]), ("uploading", "upload"))
        self.assertNotIn("job_id", r.json)
        return r.json

    def put(self, image_id, data=None, path=None, query="", ctype="application/octet-stream",
            token=None):
        """PUT /v1/images/{id}/file with bytes or a file streamed from disk."""
        c = http.client.HTTPConnection("127.0.0.1", self.d.port, timeout=300)
        headers = {"Authorization": "Bearer " + (token or self.admin)}
        if ctype:
            headers["Content-Type"] = ctype
        if path:
            headers["Content-Length"] = str(os.path.getsize(path))
            with open(path, "rb") as f:
                c.request("PUT", f"/v1/images/{image_id}/file{query}", body=f, headers=headers)
                r = c.getresponse()
        else:
            c.request("PUT", f"/v1/images/{image_id}/file{query}", body=data, headers=headers)
            r = c.getresponse()
        resp = gh.Response(r.status, r.headers, r.read())
        c.close()
        return resp

    def assertProblem(self, r, status, part):
        self.assertEqual(r.status, status, r)
        self.assertEqual(r.headers.get("Content-Type"), "application/problem+json", r)
        self.assertIn(part, r.json["detail"], r.json)

    def volumes(self, role):
        out = lv.virsh("vol-list", self.pools[role][0]).stdout
        return {line.split()[0] for line in out.splitlines()[2:] if line.strip()}

    def assertNothingKept(self, image_id):
        img = self.get(f"/v1/images/{image_id}")
        self.assertEqual(img["state"], "uploading", img)
        self.assertEqual((img["sha256"], img["size_bytes"]), ("", 0), img)
        # the partial volume is deleted (the pool is refreshed to see the directory)
        lv.virsh("pool-refresh", self.pools["store"][0])
        self.assertNotIn(f"gc-image-{image_id}", self.volumes("store"))
        self.assertFalse(os.path.exists(
            os.path.join(self.pools["store"][1], f"gc-image-{image_id}")))

    # ---- tests ----

    def test_raw_upload_checksums_state_and_audit(self):
        img = self.new_image()
        data = b"\0" * 512 + os.urandom(3 * 1024 * 1024 + 123)
        sha = hashlib.sha256(data).hexdigest()
        sm3 = hashlib.new("sm3", data).hexdigest()
        r = self.put(img["id"], data, query=f"?sha256={sha.upper()}")
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json["state"], r.json["sha256"], r.json["sm3"], r.json["size_bytes"]),
                         ("active", sha, sm3, len(data)))
        self.assertEqual((r.json["store_host_id"], r.json["store_pool"]),
                         (self.host["id"], self.pools["store"][0]))
        self.assertEqual(r.headers["ETag"], f'"{r.json["version"]}"')
        # the volume holds exactly the bytes sent
        path = os.path.join(self.pools["store"][1], f"gc-image-{img['id']}")
        self.assertEqual(r.json["disk_path"], path)
        self.assertEqual(digests(path), (sha, sm3))
        # audited, with the checksums
        ev = self.get(f"/v1/audit-events?action=image.upload&resource_id={img['id']}")["items"]
        self.assertEqual(len(ev), 1, ev)
        self.assertEqual(ev[0]["outcome"], "success")
        # an active image takes no second upload
        self.assertProblem(self.put(img["id"], b"x" * 1024), 409, "only an image in state")
        # delete: the record at once, the volume by an image.purge job
        r = self.d.request("DELETE", f"/v1/images/{img['id']}", token=self.admin)
        self.assertEqual(r.status, 204, r)
        jobs = self.get(f"/v1/jobs?kind=image.purge")["items"]
        job = next(j for j in jobs if j["resource_id"] == img["id"])
        self.wait_job(job["id"])
        self.assertFalse(os.path.exists(path))

    def test_chunked_upload_without_length(self):
        img = self.new_image()
        data = os.urandom(300 * 1024)
        c = http.client.HTTPConnection("127.0.0.1", self.d.port, timeout=60)
        c.request("PUT", f"/v1/images/{img['id']}/file",
                  body=iter([data[:100000], data[100000:]]), encode_chunked=True,
                  headers={"Authorization": "Bearer " + self.admin,
                           "Content-Type": "application/octet-stream",
                           "Transfer-Encoding": "chunked"})
        r = c.getresponse()
        body = r.read()
        c.close()
        self.assertEqual(r.status, 200, body)
        got = self.get(f"/v1/images/{img['id']}")
        self.assertEqual((got["state"], got["size_bytes"], got["sha256"]),
                         ("active", len(data), hashlib.sha256(data).hexdigest()))

    def test_bad_uploads_are_refused_and_nothing_is_kept(self):
        img = self.new_image()
        data = os.urandom(64 * 1024)
        # wrong content type: 415 before the body is read
        self.assertProblem(self.put(img["id"], data, ctype="application/json"), 415,
                           "application/octet-stream")
        self.assertProblem(self.put(img["id"], data, ctype=None), 415, "octet-stream")
        # the checksum the client gave does not match: 400, nothing kept
        r = self.put(img["id"], data, query="?sha256=" + "0" * 64)
        self.assertProblem(r, 400, "nothing was kept")
        self.assertEqual(r.json["field"], "sha256")
        self.assertNothingKept(img["id"])
        self.assertProblem(self.put(img["id"], data, query="?sha256=abc"), 400, "64 hexadecimal")
        self.assertProblem(self.put(img["id"], data, query="?bogus=1"), 400, "unknown query")
        # empty file
        self.assertProblem(self.put(img["id"], b""), 400, "empty")
        # raw declared, but the file is a qcow2 image
        q = os.path.join(self.work, "plain.qcow2")
        subprocess.run(["qemu-img", "create", "-f", "qcow2", q, "16M"], check=True,
                       capture_output=True)
        self.assertProblem(self.put(img["id"], path=q), 400, "declared raw but the file is")
        self.assertNothingKept(img["id"])
        # a qcow2 with a backing file (it could read any file of the host): refused
        qimg = self.new_image("qcow2")
        b = os.path.join(self.work, "backed.qcow2")
        subprocess.run(["qemu-img", "create", "-f", "qcow2", "-F", "raw", "-b", "/etc/shadow",
                        b, "16M"], check=True, capture_output=True)
        self.assertProblem(self.put(qimg["id"], path=b), 400, "backing file")
        self.assertNothingKept(qimg["id"])
        # a qcow2 declared image that is not qcow2
        self.assertProblem(self.put(qimg["id"], data), 400, "not a qcow2 image")
        self.assertNothingKept(qimg["id"])
        # ... and a good qcow2 is then accepted
        r = self.put(qimg["id"], path=q)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["sha256"], digests(q)[0])
        # no such image; an image registered from paths
        self.assertProblem(self.put("01a21341-0669-7000-a00f-7321763bb973", data), 404,
                           "not found")
        kernel = os.path.join(self.work, "vmlinuz")
        r = self.d.request("POST", "/v1/images", {
            "name": "paths-" + uuid.uuid4().hex[:8], "kind": "kernel", "arch": "x86_64",
            "kernel_path": kernel}, token=self.admin)
        self.assertEqual(r.status, 201, r)
        self.assertProblem(self.put(r.json["id"], data), 409, "registered from paths")
        # bad registrations
        for body, field in (({"kind": "kernel", "format": "raw"}, "kind"),
                            ({"kind": "disk", "format": "vmdk"}, "format"),
                            ({"kind": "disk", "format": "raw", "disk_path": "/x"}, "disk_path"),
                            ({"kind": "disk", "format": "raw", "source": "http"}, "source")):
            body = dict(body, name="bad-" + uuid.uuid4().hex[:8], arch="x86_64")
            body.setdefault("source", "upload")
            r = self.d.request("POST", "/v1/images", body, token=self.admin)
            self.assertEqual((r.status, r.json.get("field")), (400, field), r)

    def test_oversize_is_refused_before_the_body(self):
        img = self.new_image()
        # 3 GiB announced, limit 2 GiB: the answer comes without a byte of the body sent
        s = socket.create_connection(("127.0.0.1", self.d.port), timeout=10)
        s.sendall((f"PUT /v1/images/{img['id']}/file HTTP/1.1\r\nHost: x\r\n"
                   f"Authorization: Bearer {self.admin}\r\n"
                   "Content-Type: application/octet-stream\r\n"
                   f"Content-Length: {3 << 30}\r\n\r\n").encode())
        head = s.recv(65536).decode("latin-1")
        s.close()
        self.assertTrue(head.startswith("HTTP/1.1 413"), head)
        self.assertIn("max_upload_gib", head)
        self.assertNothingKept(img["id"])

    def test_rbac(self):
        img = self.new_image()
        dept = self.d.request("POST", "/v1/departments", {"name": "img " + uuid.uuid4().hex[:6]},
                              token=self.admin).json
        users = {}
        for role in ("department_admin", "auditor", "operator"):
            name = role[:4] + uuid.uuid4().hex[:8]
            body = {"username": name, "password": "User-Passw0rd!", "role": role,
                    "display_name": name}
            if role == "department_admin":
                body["department_id"] = dept["id"]
            r = self.d.request("POST", "/v1/users", body, token=self.admin)
            self.assertEqual(r.status, 201, r)
            users[role] = self.d.login(name, "User-Passw0rd!")
        data = b"\0" * 4096
        for role in ("department_admin", "auditor"):
            self.assertProblem(self.put(img["id"], data, token=users[role]), 403, "")
            r = self.d.request("POST", "/v1/images", {
                "name": "x" + uuid.uuid4().hex[:8], "kind": "disk", "format": "raw",
                "arch": "x86_64", "source": "upload"}, token=users[role])
            self.assertEqual(r.status, 403, r)
        self.assertNothingKept(img["id"])
        denied = self.get(f"/v1/audit-events?action=image.upload&resource_id={img['id']}"
                          "&outcome=denied")["items"]
        self.assertEqual(len(denied), 2, denied)
        # an operator manages images
        r = self.put(img["id"], data, token=users["operator"])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.put("nosuch", data).status, 404)
        self.assertEqual(self.put(img["id"], data, token="bogus").status, 401)

    def test_dropped_connection_leaves_no_half_image(self):
        img = self.new_image()
        total = 64 << 20
        s = socket.create_connection(("127.0.0.1", self.d.port), timeout=10)
        s.sendall((f"PUT /v1/images/{img['id']}/file HTTP/1.1\r\nHost: x\r\n"
                   f"Authorization: Bearer {self.admin}\r\n"
                   "Content-Type: application/octet-stream\r\n"
                   f"Content-Length: {total}\r\n\r\n").encode())
        chunk = b"\0" * (1 << 20)
        for _ in range(total // 2 // len(chunk)):
            s.sendall(chunk)
        # the volume is being written while the body comes
        vol = os.path.join(self.pools["store"][1], f"gc-image-{img['id']}")
        self.wait_for("the partial volume", lambda: os.path.exists(vol), 10)
        # meanwhile: no second upload to it, no delete, no VM from it
        self.assertProblem(self.put(img["id"], b"\0" * 4096), 409, "is in progress")
        r = self.d.request("DELETE", f"/v1/images/{img['id']}", token=self.admin)
        self.assertProblem(r, 409, "is in progress")
        dept = self.d.request("POST", "/v1/departments", {"name": "up " + uuid.uuid4().hex[:6]},
                              token=self.admin).json
        flavor = self.d.request("POST", "/v1/flavors", {
            "name": "u1-" + uuid.uuid4().hex[:6], "vcpus": 1, "memory_mib": 64,
            "disk_gib": 1}, token=self.admin).json
        r = self.d.request("POST", "/v1/vms", {"name": "early", "department_id": dept["id"],
                                               "flavor_id": flavor["id"],
                                               "image_id": img["id"]}, token=self.admin)
        self.assertProblem(r, 409, "upload its file first")
        s.close()
        self.wait_for("the partial volume to be deleted", lambda: not os.path.exists(vol), 20)
        self.assertNothingKept(img["id"])
        self.assertEqual(self.d.request("GET", "/healthz").status, 200)
        # the upload can be made again, whole this time
        data = os.urandom(1 << 20)
        r = self.put(img["id"], data)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["sha256"], hashlib.sha256(data).hexdigest())

    def test_shutdown_during_an_upload_keeps_nothing(self):
        """A second daemon (same pools, its own database) stopped while a body comes in:
        it stops promptly, the partial volume is deleted, the image is still uploading after
        a restart and takes the whole file then."""
        d = gh.Daemon(extra=["--set", "bootstrap.host_uri=qemu:///system",
                             "--set", f"compute.storage_pool={self.pools['vms'][0]}",
                             "--set", f"images.store_pool={self.pools['store'][0]}"]).start()
        try:
            tok = d.login()
            self.wait_for("the host of the second daemon", lambda: any(
                h["state"] == "connected"
                for h in d.request("GET", "/v1/hosts", token=tok).json["items"]), 30)
            r = d.request("POST", "/v1/images", {
                "name": "sd-" + uuid.uuid4().hex[:8], "kind": "disk", "format": "raw",
                "arch": self.host["arch"], "source": "upload"}, token=tok)
            iid = r.json["id"]
            s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
            s.sendall((f"PUT /v1/images/{iid}/file HTTP/1.1\r\nHost: x\r\n"
                       f"Authorization: Bearer {tok}\r\n"
                       "Content-Type: application/octet-stream\r\n"
                       f"Content-Length: {32 << 20}\r\n\r\n").encode())
            s.sendall(b"\0" * (8 << 20))
            vol = os.path.join(self.pools["store"][1], f"gc-image-{iid}")
            self.wait_for("the partial volume", lambda: os.path.exists(vol), 10)
            t0 = time.monotonic()
            self.assertEqual(d.stop(), 0)
            self.assertLess(time.monotonic() - t0, 15)
            s.close()
            self.assertFalse(os.path.exists(vol), "the partial volume was left")
            self.assertIn("the request ended before its body (shutdown)", d.read_log())
            d.start()
            self.assertEqual(d.request("GET", f"/v1/images/{iid}", token=tok).json["state"],
                             "uploading")
            self.wait_for("the host of the second daemon", lambda: any(
                h["state"] == "connected"
                for h in d.request("GET", "/v1/hosts", token=tok).json["items"]), 30)
            c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=60)
            c.request("PUT", f"/v1/images/{iid}/file", body=b"\0" * 4096,
                      headers={"Authorization": "Bearer " + tok,
                               "Content-Type": "application/octet-stream"})
            r = c.getresponse()
            self.assertEqual(r.status, 200, r.read())
            c.close()
            self.assertEqual(d.request("DELETE", f"/v1/images/{iid}", token=tok).status, 204)
            # killed (no chance to clean up) during an upload: the partial volume stays, but
            # deleting the image deletes it (its place was recorded before the first byte)
            r = d.request("POST", "/v1/images", {
                "name": "k9-" + uuid.uuid4().hex[:8], "kind": "disk", "format": "raw",
                "arch": self.host["arch"], "source": "upload"}, token=tok)
            iid = r.json["id"]
            s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
            s.sendall((f"PUT /v1/images/{iid}/file HTTP/1.1\r\nHost: x\r\n"
                       f"Authorization: Bearer {tok}\r\n"
                       "Content-Type: application/octet-stream\r\n"
                       f"Content-Length: {32 << 20}\r\n\r\n").encode())
            s.sendall(b"\0" * (8 << 20))
            vol = os.path.join(self.pools["store"][1], f"gc-image-{iid}")
            self.wait_for("the partial volume", lambda: os.path.exists(vol), 10)
            d.kill9()
            s.close()
            self.assertTrue(os.path.exists(vol))
            d.start()
            img = d.request("GET", f"/v1/images/{iid}", token=tok).json
            self.assertEqual((img["state"], img["sha256"]), ("uploading", ""))
            self.wait_for("the host of the second daemon", lambda: any(
                h["state"] == "connected"
                for h in d.request("GET", "/v1/hosts", token=tok).json["items"]), 30)
            self.assertEqual(d.request("DELETE", f"/v1/images/{iid}", token=tok).status, 204)
            self.wait_for("the purge of the left volume", lambda: not os.path.exists(vol), 30)
        finally:
            rc = d.stop()
            log = d.read_log()
            d.cleanup()
        self.assertEqual(rc, 0, log[-3000:])
        for bad in ("runtime error:", "AddressSanitizer", "LeakSanitizer"):
            self.assertNotIn(bad, log)

    def test_guest_boots_from_uploaded_qcow2_copied_to_the_host(self):
        msg = "up-" + uuid.uuid4().hex[:8]
        raw = boot_disk(self.work, os.path.join(self.work, "vmlinuz"),
                        os.path.join(self.work, "initramfs.img"), msg)
        qcow = os.path.join(self.work, f"{msg}.qcow2")
        subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, qcow],
                       check=True, capture_output=True)
        sha, sm3 = digests(qcow)
        img = self.new_image("qcow2")
        r = self.put(img["id"], path=qcow, query=f"?sha256={sha}")
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json["sha256"], r.json["sm3"]), (sha, sm3))
        vol = f"gc-image-{img['id']}"
        self.assertNotIn(vol, self.volumes("vms"))  # only in the store so far
        flavor = self.d.request("POST", "/v1/flavors", {
            "name": "d1-" + uuid.uuid4().hex[:6], "vcpus": 1, "memory_mib": 192,
            "disk_gib": 1}, token=self.admin).json
        dept = self.d.request("POST", "/v1/departments", {"name": "boot " + msg},
                              token=self.admin).json

        def create_vm(name):
            r = self.d.request("POST", "/v1/vms", {
                "name": name, "department_id": dept["id"], "flavor_id": flavor["id"],
                "image_id": img["id"]}, token=self.admin)
            self.assertEqual(r.status, 202, r)
            return r.json

        # first VM: the image is copied from the store pool into the VMs' pool, verified
        job = create_vm("boot1")
        self.wait_job(job["id"], timeout=180)
        vm1 = job["resource_id"]
        copy = os.path.join(self.pools["vms"][1], vol)
        self.assertTrue(os.path.exists(copy))
        self.assertEqual(digests(copy), (sha, sm3))
        console = self.wait_for("the guest's lines on the console", lambda: (
            lambda c: c if f"GOVCLOUD-MSG {msg}" in c else None)(
                self.get(f"/v1/vms/{vm1}/console")), 120)
        self.assertIn("GOVCLOUD-GUEST-OK", console)
        # the root volume's backing file is the host's copy, not the stored volume
        root = os.path.join(self.pools["vms"][1], f"{vm1}-root.qcow2")
        info = subprocess.run(["qemu-img", "info", "-U", root], capture_output=True,
                              text=True).stdout
        self.assertIn(copy, info)
        # second VM: the copy is reused (verified again, not copied again)
        mtime = os.stat(copy).st_mtime_ns
        job = create_vm("boot2")
        self.wait_job(job["id"], timeout=180)
        vm2 = job["resource_id"]
        self.assertEqual(os.stat(copy).st_mtime_ns, mtime)
        # the copy is changed behind govcloud's back: the next VM is refused
        with open(copy, "r+b") as f:
            f.seek(os.path.getsize(copy) - 1)
            last = f.read(1)
            f.seek(-1, os.SEEK_END)
            f.write(bytes([last[0] ^ 0xff]))
        job = create_vm("boot3")
        j = self.wait_job(job["id"], timeout=180, state="failed")
        self.assertIn("does not match the image's checksums", str(j), j)
        vm3 = self.get(f"/v1/vms/{job['resource_id']}")
        self.assertEqual(vm3["state"], "error")
        # the image cannot go while VMs use it; then the VMs go, then the image and its
        # volumes in both pools
        r = self.d.request("DELETE", f"/v1/images/{img['id']}", token=self.admin)
        self.assertEqual(r.status, 409, r)
        for v in (vm1, vm2, job["resource_id"]):
            r = self.d.request("DELETE", f"/v1/vms/{v}", token=self.admin)
            self.assertEqual(r.status, 202, r)
            self.wait_job(r.json["id"], timeout=120)
        r = self.d.request("DELETE", f"/v1/images/{img['id']}", token=self.admin)
        self.assertEqual(r.status, 204, r)
        self.wait_for("the volumes to go", lambda: not os.path.exists(copy) and not os.path.exists(
            os.path.join(self.pools["store"][1], vol)), 30)


if __name__ == "__main__":
    unittest.main()
