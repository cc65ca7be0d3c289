"""Volume snapshots and revert, and the storage pool a volume goes to, on libvirt's test
driver (test:///default: its dir pool 'default-pool' copies volumes with
virStorageVolCreateXMLFrom like a real host): snapshot, list, get, revert, delete; a volume
with snapshots cannot be deleted; snapshots count against the department's disk_gib quota;
another department's volumes and snapshots are 404; bad input is 4xx. The test driver
cannot attach disks, grow volumes or hold data: the data and size a revert brings back,
and the 409 for a volume of a running VM, are checked with a real QEMU host in
test_qemu_vm.py.

Expected values come from docs/infrastructure.md ("Volumes"), not from the daemon."""

import shutil
import tempfile
import unittest
import uuid

from gcharness import DaemonTestCase
from test_vms import VmHelpers, uniq


class SnapshotTest(DaemonTestCase, VmHelpers):
    daemon_extra = ("--set", "compute.storage_pool=default-pool", "--set", "jobs.workers=2")

    @classmethod
    def setUpClass(cls):
        cls.files = tempfile.mkdtemp(prefix="govcloud-snap-files-")
        super().setUpClass()
        try:
            t = cls("run")
            cls.host = t.mkhost()
            cls.dept = t.mkdept_()
            cls.other = t.mkdept_()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            shutil.rmtree(cls.files, ignore_errors=True)

    def run_job(self, r, kind):
        self.assertEqual(r.status, 202, r)
        self.assertEqual((r.json["kind"], r.json["resource_type"]), (kind, "volume"), r.json)
        self.assertEqual(r.headers.get("Location"), f"/v1/jobs/{r.json['id']}")
        return self.wait_ok(r.json["id"])

    def mkvol(self, size=1, dept=None, **kw):
        r = self.call("POST", "/v1/volumes", {"name": uniq("v-"), "size_gib": size,
                                               "department_id": dept or self.dept["id"], **kw})
        self.run_job(r, "volume.create")
        return self.ok("GET", f"/v1/volumes/{r.json['resource_id']}")

    def snap(self, vol, name=None, token=None, **kw):
        return self.call("POST", f"/v1/volumes/{vol}/snapshots",
                         {"name": name or uniq("s-"), **kw}, token)

    def rm(self, vol):
        for s in self.ok("GET", f"/v1/volumes/{vol}/snapshots?limit=500")["items"]:
            self.run_job(self.call("DELETE", f"/v1/volumes/{vol}/snapshots/{s['id']}"),
                         "volume.snapshot_delete")
        self.run_job(self.call("DELETE", f"/v1/volumes/{vol}"), "volume.delete")

    def test_snapshot_revert_delete(self):
        vol = self.mkvol(1)
        self.assertEqual((vol["pool"], vol["format"], vol["state"]),
                         ("default-pool", "qcow2", "available"), vol)
        r = self.snap(vol["id"], "before-upgrade", description="就在升级之前")
        job = self.run_job(r, "volume.snapshot")
        sid = job["params"]["snapshot_id"]
        s = self.ok("GET", f"/v1/volumes/{vol['id']}/snapshots/{sid}")
        self.assertEqual((s["id"], s["volume_id"], s["department_id"], s["name"],
                          s["description"], s["size_gib"], s["state"], s["last_error"]),
                         (sid, vol["id"], self.dept["id"], "before-upgrade", "就在升级之前", 1,
                          "available", ""), s)
        self.assertEqual(self.ok("GET", f"/v1/volumes/{vol['id']}/snapshots")["items"], [s])
        # the name is the volume's own: a second one of that name is a conflict
        r = self.snap(vol["id"], "before-upgrade")
        self.assertEqual((r.status, r.json.get("field")), (409, "name"), r)
        # back to the snapshot (the test driver cannot resize volumes nor write into them:
        # what comes back is checked on a real host in test_qemu_vm.py)
        job = self.run_job(self.call("POST", f"/v1/volumes/{vol['id']}/revert",
                                     {"snapshot_id": sid}), "volume.revert")
        self.assertEqual(job["params"]["snapshot_id"], sid)
        v = self.ok("GET", f"/v1/volumes/{vol['id']}")
        self.assertEqual((v["size_gib"], v["state"], v["last_error"]), (1, "available", ""), v)
        # a volume with snapshots is not deleted
        r = self.call("DELETE", f"/v1/volumes/{vol['id']}")
        self.assertEqual(r.status, 409, r)
        self.assertIn("has 1 snapshot", r.json["detail"])
        self.assertEqual(self.ok("GET", f"/v1/volumes/{vol['id']}")["state"], "available")
        # the snapshot goes, then the volume
        self.run_job(self.call("DELETE", f"/v1/volumes/{vol['id']}/snapshots/{sid}"),
                     "volume.snapshot_delete")
        self.assertEqual(self.call("GET", f"/v1/volumes/{vol['id']}/snapshots/{sid}").status,
                         404)
        self.assertEqual(self.ok("GET", f"/v1/volumes/{vol['id']}/snapshots")["items"], [])
        self.run_job(self.call("DELETE", f"/v1/volumes/{vol['id']}"), "volume.delete")
        # every change is audited on the volume
        acts = {e["action"] for e in self.events(resource_id=vol["id"])}
        for a in ("volume.snapshot", "volume.revert", "volume.snapshot_delete"):
            self.assertIn(a, acts)

    def test_snapshot_pages(self):
        vol = self.mkvol(1)
        ids = []
        for i in range(3):
            ids.append(self.run_job(self.snap(vol["id"], f"s{i}"),
                                    "volume.snapshot")["params"]["snapshot_id"])
        page = self.ok("GET", f"/v1/volumes/{vol['id']}/snapshots?limit=2")
        self.assertEqual(len(page["items"]), 2)
        rest = self.ok("GET", f"/v1/volumes/{vol['id']}/snapshots?limit=2&cursor="
                       + page["next_cursor"])
        self.assertIsNone(rest["next_cursor"])
        self.assertEqual(sorted(x["id"] for x in page["items"] + rest["items"]), sorted(ids))
        self.rm(vol["id"])

    def test_bad_input(self):
        vol = self.mkvol(1)
        other = self.mkvol(1)
        sid = self.run_job(self.snap(other["id"]), "volume.snapshot")["params"]["snapshot_id"]
        base = f"/v1/volumes/{vol['id']}"
        # unknown snapshots, and another volume's snapshot through this volume: 404
        for s in (str(uuid.uuid4()), "not-an-id", sid):
            self.assertEqual(self.call("GET", f"{base}/snapshots/{s}").status, 404, s)
            self.assertEqual(self.call("DELETE", f"{base}/snapshots/{s}").status, 404, s)
        for v in (str(uuid.uuid4()), "x"):
            self.assertEqual(self.call("GET", f"/v1/volumes/{v}/snapshots").status, 404)
            self.assertEqual(self.snap(v).status, 404)
            self.assertEqual(self.call("POST", f"/v1/volumes/{v}/revert",
                                       {"snapshot_id": sid}).status, 404)
        # revert to a snapshot the volume does not have
        for s in (str(uuid.uuid4()), sid):
            r = self.call("POST", f"{base}/revert", {"snapshot_id": s})
            self.assertEqual((r.status, r.json.get("field")), (400, "snapshot_id"), r)
            self.assertIn("has no snapshot", r.json["detail"])
        for body in (None, {}, {"snapshot_id": 5}, {"snapshot_id": sid, "x": 1}):
            self.assertEqual(self.call("POST", f"{base}/revert", body).status, 400, body)
        for body in (None, {}, {"name": ""}, {"name": "a b"}, {"name": "x" * 65},
                     {"name": "ok", "description": "x" * 256},
                     {"name": "ok", "description": "a\x01"}, {"name": "ok", "size_gib": 1}):
            r = self.call("POST", f"{base}/snapshots", body)
            self.assertEqual(r.status, 400, (body, r))
        self.assertEqual(self.call("GET", f"{base}/snapshots?limit=0").status, 400)
        # pools: not a name; unknown on the named host; on no host at all
        for pool in ("a/b", "", 7):
            r = self.call("POST", "/v1/volumes", {"name": uniq("v-"), "size_gib": 1,
                                                  "department_id": self.dept["id"],
                                                  "pool": pool})
            self.assertEqual((r.status, r.json.get("field")), (400, "pool"), r)
        r = self.call("POST", "/v1/volumes", {"name": uniq("v-"), "size_gib": 1,
                                              "department_id": self.dept["id"],
                                              "host_id": self.host["id"],
                                              "pool": "no-such-pool"})
        self.assertEqual((r.status, r.json.get("field")), (400, "pool"), r)
        self.assertIn(f"host '{self.host['id']}' has no storage pool 'no-such-pool'",
                      r.json["detail"])
        r = self.call("POST", "/v1/volumes", {"name": uniq("v-"), "size_gib": 1,
                                              "department_id": self.dept["id"],
                                              "pool": "no-such-pool"})
        self.assertEqual((r.status, r.json.get("field")), (409, "pool"), r)
        self.assertIn("no connected host has a storage pool 'no-such-pool'", r.json["detail"])
        names = [v["name"] for v in self.ok("GET", "/v1/volumes?limit=500")["items"]]
        self.assertEqual(len(names), 2, "a refused create left a volume behind")
        # a named pool the host has: it is used
        v = self.mkvol(1, pool="default-pool", host_id=self.host["id"])
        self.assertEqual((v["pool"], v["format"], v["host_id"]),
                         ("default-pool", "qcow2", self.host["id"]))
        for x in (vol, other, v):
            self.rm(x["id"])

    def test_department_scope(self):
        vol = self.mkvol(1)
        sid = self.run_job(self.snap(vol["id"]), "volume.snapshot")["params"]["snapshot_id"]
        outsider = self.mkuser_("department_admin", self.other["id"])["token"]
        member = self.mkuser_("department_user", self.dept["id"])["token"]
        auditor = self.mkuser_("auditor")["token"]
        base = f"/v1/volumes/{vol['id']}"
        for method, path, body in (("GET", f"{base}/snapshots", None),
                                   ("POST", f"{base}/snapshots", {"name": "mine"}),
                                   ("GET", f"{base}/snapshots/{sid}", None),
                                   ("DELETE", f"{base}/snapshots/{sid}", None),
                                   ("POST", f"{base}/revert", {"snapshot_id": sid})):
            r = self.call(method, path, body, outsider)
            self.assertEqual(r.status, 404, (method, path, r))
            self.assertIn("not found", r.json["detail"])
        # readers read, and do not write
        self.assertEqual(self.call("GET", f"{base}/snapshots/{sid}", token=auditor).status, 200)
        self.assertEqual(self.snap(vol["id"], token=auditor).status, 403)
        self.assertEqual(self.call("POST", f"{base}/revert", {"snapshot_id": sid},
                                   auditor).status, 403)
        # the department's own users do both
        self.assertEqual(len(self.ok("GET", f"{base}/snapshots", token=member)["items"]), 1)
        self.run_job(self.call("POST", f"{base}/revert", {"snapshot_id": sid}, member),
                     "volume.revert")
        self.assertEqual(len(self.ok("GET", f"{base}/snapshots")["items"]), 1)
        self.rm(vol["id"])

    def test_quota_counts_snapshots(self):
        dept = self.mkdept_()
        self.ok("PUT", f"/v1/departments/{dept['id']}/quota", {"disk_gib": 3})
        vol = self.mkvol(2, dept=dept["id"])
        r = self.snap(vol["id"])
        self.assertEqual((r.status, r.json.get("field")), (409, "disk_gib"), r)
        self.assertIn("quota exceeded", r.json["detail"])
        self.assertEqual(self.ok("GET", f"/v1/volumes/{vol['id']}/snapshots")["items"], [])
        self.ok("PUT", f"/v1/departments/{dept['id']}/quota", {"disk_gib": 4})
        self.run_job(self.snap(vol["id"]), "volume.snapshot")
        q = self.ok("GET", f"/v1/departments/{dept['id']}/quota")
        self.assertEqual(q["usage"]["disk_gib"], 4, q)
        self.assertEqual(q["usage"]["volumes"], 1, q)
        # and a new volume no longer fits
        r = self.call("POST", "/v1/volumes", {"name": uniq("v-"), "size_gib": 1,
                                              "department_id": dept["id"]})
        self.assertEqual((r.status, r.json.get("field")), (409, "disk_gib"), r)
        self.rm(vol["id"])
        q = self.ok("GET", f"/v1/departments/{dept['id']}/quota")
        self.assertEqual(q["usage"]["disk_gib"], 0, q)


if __name__ == "__main__":
    unittest.main()
