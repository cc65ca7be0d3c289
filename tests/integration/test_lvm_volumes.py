"""Volumes in a real LVM storage pool: a volume group on a loop device over a sparse file, a
libvirt `logical` pool on it in the system libvirtd, and govcloud creating raw volumes
there (logical volumes gc-vol-<id>), attaching one to a real QEMU guest as a block device,
taking a snapshot (a copy LV gc-snap-<id>), reverting to it (the data comes back), and
deleting everything. The pool, the volume group and the loop device are removed afterwards,
whatever happened.

Creating a logical volume needs the kernel's device-mapper. Where it is missing (some
container and micro-VM kernels), lvcreate fails; then test_logical_pool_takes_raw_volumes
checks that govcloud still discovers the pool, picks the raw format and reports lvcreate's
error on the volume, and test_lvm_volume_on_a_real_guest skips, quoting the error.
Skips entirely only when libvirt/QEMU or lvm2 is not installed."""

import os
import shutil
import subprocess
import tempfile
import time
import unittest
import uuid

import gcharness as gh
import libvirtd as lv


def run(*cmd, check=True):
    r = subprocess.run(list(cmd), capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr.strip()}")
    return r


def virsh(*args, check=False):
    return run("virsh", "-c", "qemu:///system", *args, check=check)


def device_mapper_error():
    """None when device-mapper works, else what dmsetup says."""
    r = run("dmsetup", "version", check=False)
    if r.returncode == 0 and "Driver version" in r.stdout:
        return None
    return " ".join(line.strip() for line in r.stderr.splitlines() if line.strip())


class LvmVolumeTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        missing = lv.missing_binaries() + [b for b in ("vgcreate", "lvs", "dmsetup", "losetup",
                                                       "qemu-io")
                                           if not lv.which(b)]
        if missing:
            raise unittest.SkipTest("libvirt/QEMU/lvm2 not installed (missing: "
                                    + ", ".join(missing) + ")")
        cls.dm_error = device_mapper_error()
        cls.tag = uuid.uuid4().hex[:8]
        cls.vg = cls.pool = f"gc-test-{cls.tag}"
        cls.loop = None
        cls.d = None
        cls.libvirtd = False
        cls.workdir = tempfile.mkdtemp(prefix="govcloud-lvm-")
        cls.backing = os.path.join(cls.workdir, "pv.img")
        try:
            lv.ensure_libvirtd()
            cls.libvirtd = True
            lv.ensure_default_pool()
            with open(cls.backing, "wb") as f:
                f.truncate(2 << 30)  # sparse: takes no space until written
            cls.loop = run("losetup", "-f", "--show", cls.backing).stdout.strip()
            run("pvcreate", "-q", cls.loop)
            run("vgcreate", "-q", cls.vg, cls.loop)
            virsh("pool-define-as", cls.pool, "logical", "--source-name", cls.vg,
                  "--target", f"/dev/{cls.vg}", check=True)
            virsh("pool-start", cls.pool, check=True)
            cls.images = os.path.join(cls.workdir, "images")
            lv.tiny_image(cls.images)
            virt = "kvm" if lv.kvm_usable() else "qemu"
            cls.d = gh.Daemon(extra=["--set", "bootstrap.host_uri=qemu:///system",
                                     "--set", f"bootstrap.image_dir={cls.images}",
                                     "--set", f"compute.virt_type={virt}"]).start()
            cls.admin = cls.d.login()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        problems = []
        rc, log = 0, ""
        if cls.d:
            rc = cls.d.stop()
            log = cls.d.read_log()
            cls.d.cleanup()
        # whatever govcloud left, the pool, the volume group and the loop device go
        virsh("pool-destroy", cls.pool)
        virsh("pool-undefine", cls.pool)
        if cls.loop:
            run("vgremove", "-f", "-y", cls.vg, check=False)
            run("pvremove", "-y", cls.loop, check=False)
            r = run("losetup", "-d", cls.loop, check=False)
            if r.returncode != 0:
                problems.append(f"losetup -d {cls.loop}: {r.stderr}")
        shutil.rmtree(cls.workdir, ignore_errors=True)
        if cls.libvirtd:
            lv.stop_libvirtd()
        if rc != 0:
            problems.append(f"govcloudd exited with {rc}:\n{log[-4000:]}")
        for bad in ("runtime error:", "AddressSanitizer", "LeakSanitizer"):
            if bad in log:
                problems.append(f"sanitizer report in the daemon log:\n{log[-8000:]}")
        if problems:
            raise AssertionError("\n".join(problems))

    # -- helpers --
    def get(self, path):
        r = self.d.request("GET", path, token=self.admin)
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

    def job(self, r, ok=True, timeout=120):
        self.assertEqual(r.status, 202, r)
        j = self.wait(f"job {r.json['id']}", lambda: (
            lambda j: j if j["state"] in ("succeeded", "failed", "cancelled") else None)(
                self.get(f"/v1/jobs/{r.json['id']}")), timeout)
        if ok:
            self.assertEqual(j["state"], "succeeded", j)
        return j

    def post(self, path, body=None):
        return self.d.request("POST", path, body, token=self.admin)

    def delete(self, path):
        return self.d.request("DELETE", path, token=self.admin)

    def host(self):
        return self.wait("the local host with the LVM pool", lambda: next(
            (h for h in self.get("/v1/hosts")["items"]
             if h["uri"] == "qemu:///system" and h["state"] == "connected"
             and any(p["name"] == self.pool for p in h["storage_pools"])), None), 30)

    def dept(self):
        r = self.post("/v1/departments", {"name": "LVM " + uuid.uuid4().hex[:6]})
        self.assertEqual(r.status, 201, r)
        return r.json["id"]

    def lvs(self):
        r = run("lvs", "--noheadings", "-o", "lv_name", self.vg, check=False)
        return sorted(x.strip() for x in r.stdout.split() if x.strip())

    # -- tests --
    def test_logical_pool_takes_raw_volumes(self):
        """The pool is discovered as type logical, running; a volume named into it is raw and
        named gc-vol-<id> (no .qcow2): created when device-mapper works, else failed with
        lvcreate's error, and removable either way."""
        host = self.host()
        pool = next(p for p in host["storage_pools"] if p["name"] == self.pool)
        self.assertEqual((pool["type"], pool["state"]), ("logical", "running"), pool)
        r = self.post("/v1/volumes", {"name": "raw1", "size_gib": 1, "department_id": self.dept(),
                                      "host_id": host["id"], "pool": self.pool})
        vid = r.json["resource_id"]
        vol = self.get(f"/v1/volumes/{vid}")
        self.assertEqual((vol["pool"], vol["format"]), (self.pool, "raw"), vol)
        j = self.job(r, ok=False)
        vol = self.get(f"/v1/volumes/{vid}")
        if self.dm_error:
            self.assertEqual((j["state"], vol["state"]), ("failed", "error"), (j, vol))
            self.assertIn(f"cannot create volume gc-vol-{vid}:", vol["last_error"])
            self.assertIn("lvcreate", vol["last_error"])
            self.assertIn("/dev/mapper/control: open failed", vol["last_error"])
        else:
            self.assertEqual((j["state"], vol["state"]), ("succeeded", "available"), (j, vol))
            self.assertIn(f"gc-vol-{vid}", self.lvs())
        self.job(self.delete(f"/v1/volumes/{vid}"))
        self.assertNotIn(f"gc-vol-{vid}", self.lvs())

    def test_lvm_volume_on_a_real_guest(self):
        """A raw LVM volume attached to a QEMU guest as a block device; data written, a
        snapshot LV, other data, a revert: the first data is back; the guest boots with it;
        everything deleted, no LV left."""
        if self.dm_error:
            self.skipTest("device-mapper is not available in this kernel, so LVM cannot "
                          f"create logical volumes here: `dmsetup version` says: {self.dm_error}")
        host = self.host()
        dept = self.dept()
        flavor = self.get("/v1/flavors?name=tiny")["items"][0]
        image = self.wait("the tiny image import", lambda: next(
            (i for i in self.get("/v1/images?name=tiny")["items"] if i["state"] == "active"),
            None), 60)
        r = self.post("/v1/vms", {"name": "lvm1", "department_id": dept, "flavor_id": flavor["id"],
                                  "image_id": image["id"], "start": False})
        self.job(r)
        vm = self.get(f"/v1/vms/{r.json['resource_id']}")
        self.assertEqual(vm["host_id"], host["id"])
        r = self.post("/v1/volumes", {"name": "data", "size_gib": 1, "department_id": dept,
                                      "vm_id": vm["id"], "pool": self.pool})
        self.job(r)
        vid = r.json["resource_id"]
        vol = self.get(f"/v1/volumes/{vid}")
        self.assertEqual((vol["state"], vol["format"], vol["target"]), ("in-use", "raw", "vdb"))
        dev = f"/dev/{self.vg}/gc-vol-{vid}"
        xml = virsh("dumpxml", vm["domain_name"]).stdout
        self.assertIn("<disk type='block' device='disk'>", xml)
        self.assertIn(f"<source dev='{dev}'", xml)
        self.assertEqual(run("qemu-io", "-f", "raw", "-c", "write -P 0x5a 0 1M", dev,
                             check=False).returncode, 0)
        j = self.job(self.post(f"/v1/volumes/{vid}/snapshots", {"name": "s1"}))
        sid = j["params"]["snapshot_id"]
        self.assertIn(f"gc-snap-{sid}", self.lvs())
        run("qemu-io", "-f", "raw", "-c", "write -P 0xa5 0 1M", dev)
        self.job(self.post(f"/v1/volumes/{vid}/revert", {"snapshot_id": sid}))
        r = run("qemu-io", "-f", "raw", "-c", "read -P 0x5a 0 1M", dev, check=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("Pattern verification failed", r.stdout)
        self.assertEqual(self.get(f"/v1/volumes/{vid}")["state"], "in-use")
        # the guest boots with its block device (and powers itself off)
        self.job(self.post(f"/v1/vms/{vm['id']}/start"))
        self.job(self.delete(f"/v1/vms/{vm['id']}"))
        self.job(self.delete(f"/v1/volumes/{vid}/snapshots/{sid}"))
        self.job(self.delete(f"/v1/volumes/{vid}"))
        self.assertEqual([x for x in self.lvs() if x.startswith("gc-")], [])


if __name__ == "__main__":
    unittest.main()
