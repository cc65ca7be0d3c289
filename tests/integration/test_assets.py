"""The asset inventory (docs/supervision.md#assets): discovery of hosts, VMs, volumes and
networks from the platform (libvirt's test driver, test:///default), operator enrichment
that discovery never undoes, CSV and JSON import (all or nothing, errors naming row and
field, idempotent by natural key, history of real changes only), department scoping, and the
supervision pull by cursor (snapshot, then changes only; malformed cursors refused).

Expected values come from CONTRACT.md's asset dataset and docs/supervision.md, not from the
daemon."""

import base64
import json
import os
import shutil
import socket
import tempfile
import time
import unittest
import urllib.parse

from gcharness import DaemonTestCase
from test_openapi import status_of_oversized
from test_vms import VmHelpers, uniq


def b64(s):
    return base64.urlsafe_b64encode(s.encode()).decode().rstrip("=")


class AssetBase(DaemonTestCase, VmHelpers):
    daemon_extra = ("--set", "jobs.workers=2", "--set", "supervision.asset_sync_interval=1")

    @classmethod
    def setUpClass(cls):
        cls.files = tempfile.mkdtemp(prefix="govcloud-asset-files-")
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            shutil.rmtree(cls.files, ignore_errors=True)

    # -- helpers --
    def pull(self, cursor=None, token=None, **kw):
        q = dict(kw)
        if cursor:
            q["cursor"] = cursor
        path = "/v1/supervision/asset" + ("?" + urllib.parse.urlencode(q) if q else "")
        r = self.call("GET", path, token=token)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("Transfer-Encoding"), "chunked", "streamed body")
        body = r.json
        seqs = [x["seq"] for x in body["records"]]
        self.assertEqual(seqs, sorted(seqs), "records in seq order")
        self.assertEqual(len(seqs), len(set(seqs)))
        for rec in body["records"]:
            self.assertEqual((rec["dataset"], rec["schema_version"]), ("asset", "1.0"))
            self.assertRegex(rec["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            self.assertIn(rec["op"], ("upsert", "delete"))
            if rec["op"] == "delete":
                self.assertIsNone(rec["data"])
            else:
                self.assertIn(rec["data"]["kind"], ("host", "vm", "volume", "network", "server",
                                                    "network_device", "storage_device",
                                                    "security_device", "rack", "software"))
        return body

    def drain(self):
        """A snapshot; returns (records by id, cursor after it)."""
        b = self.pull(limit=1000000)
        self.assertFalse(b["more"])
        return {x["id"]: x for x in b["records"]}, b["next_cursor"]

    def import_json(self, rows, want=200, token=None):
        r = self.call("POST", "/v1/assets/import", rows, token=token)
        self.assertEqual(r.status, want, r)
        return r

    def import_csv(self, text, want=200, token=None, bom=False, crlf=False):
        if crlf:
            text = text.replace("\n", "\r\n")
        data = (b"\xef\xbb\xbf" if bom else b"") + text.encode()
        r = self.d.request("POST", "/v1/assets/import", token=token or self.admin, raw=data,
                           headers={"Content-Type": "text/csv; charset=utf-8"})
        self.assertEqual(r.status, want, r)
        return r

    def asset(self, aid, want=200, token=None):
        r = self.call("GET", f"/v1/assets/{urllib.parse.quote(aid)}", token=token)
        self.assertEqual(r.status, want, r)
        return r.json

    def history(self, aid):
        return self.ok("GET", f"/v1/assets/{aid}/history?limit=500")["items"]

    def count_assets(self):
        n, cursor = 0, None
        while True:
            r = self.ok("GET", "/v1/assets?limit=500" + (f"&cursor={cursor}" if cursor else ""))
            n += len(r["items"])
            cursor = r["next_cursor"]
            if not cursor:
                return n


class TestDiscovery(AssetBase):
    # the libvirt test driver's storage pool, so that volumes really get created
    daemon_extra = AssetBase.daemon_extra + ("--set", "compute.storage_pool=default-pool")

    def test_volume(self):
        self.mkhost()
        dept = self.mkdept_()
        r = self.call("POST", "/v1/volumes", {"name": uniq("vol-"), "size_gib": 2,
                                              "department_id": dept["id"]})
        self.assertEqual(r.status, 202, r)
        self.wait_ok(r.json["id"])
        vid = r.json["resource_id"]
        snap, cursor = self.drain()
        d = snap[f"volume:{vid}"]["data"]
        self.assertEqual((d["kind"], d["department_id"], d["capacity"], d["attributes"]["pool"],
                          d["status"]), ("volume", dept["id"], {"disk_bytes": 2 << 30},
                                         "default-pool", {"state": "enabled", "health": "ok"}))
        j = self.call("DELETE", f"/v1/volumes/{vid}")
        self.assertEqual(j.status, 202, j)
        self.wait_ok(j.json["id"])
        recs = {x["id"]: x for x in self.pull(cursor)["records"]}
        self.assertEqual(recs[f"volume:{vid}"]["op"], "delete")

    def test_host_vm_volume_network_discovered_and_tombstoned(self):
        h = self.mkhost()
        _, cursor = self.drain()
        host = self.asset(f"host:{h['id']}")
        self.assertEqual((host["kind"], host["source"], host["name"]),
                         ("host", "discovered", h["name"]))
        # i686 is none of the contract's architectures: other, with the machine's kept
        self.assertEqual(host["cpu_arch"], "other")
        self.assertEqual(host["attributes"]["machine_arch"], "i686")
        self.assertEqual(host["attributes"]["cpu_model"], h["cpu_model"])
        self.assertEqual(host["capacity"], {"vcpus": 16, "memory_bytes": 3072 << 20})
        self.assertEqual(host["status"], {"state": "enabled", "health": "ok"})
        self.assertNotIn("department_id", host)

        dept = self.mkdept_()
        fl = self.mkflavor(vcpus=2, memory_mib=128, disk_gib=1)
        img = self.mkimage()
        vm = self.create_vm(fl["id"], img["id"], dept["id"])
        # the periodic pass (1 s here) finds it without a pull
        deadline = time.time() + 10
        while self.call("GET", f"/v1/assets/vm:{vm['id']}").status != 200:
            self.assertLess(time.time(), deadline, "the VM never became an asset")
            time.sleep(0.2)
        b = self.pull(cursor)
        self.assertFalse(b["snapshot"])
        recs = {x["id"]: x for x in b["records"]}
        rec = recs[f"vm:{vm['id']}"]
        self.assertEqual(rec["op"], "upsert")
        d = rec["data"]
        self.assertEqual((d["kind"], d["name"], d["uuid"], d["department_id"], d["host_id"],
                          d["source"]),
                         ("vm", vm["name"], vm["id"], dept["id"], vm["host_id"], "discovered"))
        self.assertEqual(d["capacity"], {"vcpus": 2, "memory_bytes": 128 << 20,
                                         "disk_bytes": 1 << 30})
        self.assertEqual(d["status"]["state"], "enabled")
        self.assertNotIn(f"host:{h['id']}", recs, "the host did not change")
        cursor = b["next_cursor"]
        vm_seq = rec["seq"]
        self.assertEqual(self.asset(f"vm:{vm['id']}")["seq"], vm_seq)

        # a discovered asset cannot be deleted through the inventory
        r = self.call("DELETE", f"/v1/assets/vm:{vm['id']}")
        self.assertProblem(r, 409, "discovered")

        self.delete_vm(vm["id"])
        b = self.pull(cursor)
        recs = {x["id"]: x for x in b["records"]}
        self.assertEqual(recs[f"vm:{vm['id']}"]["op"], "delete")
        self.assertIsNone(recs[f"vm:{vm['id']}"]["data"])
        self.assertGreater(recs[f"vm:{vm['id']}"]["seq"], vm_seq)
        self.asset(f"vm:{vm['id']}", want=404)
        ops = [x["op"] for x in self.history(f"vm:{vm['id']}")]
        self.assertEqual(ops[0], "create")
        self.assertEqual(ops[-1], "delete")
        # nothing changed since: an empty answer, and the same cursor again
        b2 = self.pull(b["next_cursor"])
        self.assertEqual(b2["records"], [])
        self.assertEqual(b2["next_cursor"], b["next_cursor"])
        # a snapshot leaves tombstones out
        snap, _ = self.drain()
        self.assertNotIn(f"vm:{vm['id']}", snap)
        self.assertIn(f"host:{h['id']}", snap)

    def test_network(self):
        net = self.ok("POST", "/v1/networks", {"name": uniq("anet-"), "mode": "isolated",
                                                "ipv4_cidr": "10.231.7.0/24"}, want=201)
        snap, _ = self.drain()
        a = snap[f"network:{net['id']}"]["data"]
        self.assertEqual((a["kind"], a["name"], a["attributes"]["mode"],
                          a["attributes"]["ipv4_cidr"]),
                         ("network", net["name"], "isolated", "10.231.7.0/24"))
        self.ok("DELETE", f"/v1/networks/{net['id']}", want=204)
        self.pull()
        self.asset(f"network:{net['id']}", want=404)

    def test_enrichment_survives_discovery(self):
        self.mkhost()
        dept = self.mkdept_()
        fl = self.mkflavor()
        img = self.mkimage()
        vm = self.create_vm(fl["id"], img["id"], dept["id"])
        self.pull()
        aid = f"vm:{vm['id']}"
        before = self.asset(aid)
        self.assertIn("capacity", before["discovered_fields"])
        enrich = {"location": {"data_centre": "DC-1", "room": "A101", "rack": "R07", "u": 12},
                  "business_system": "电子政务外网门户", "mlps_grade": 3,
                  "domestic": {"flag": True, "basis": "证书 2024-001"},
                  "attributes": {"owner": "ops"}}
        r = self.call("PATCH", f"/v1/assets/{aid}", enrich,
                      headers={"If-Match": f'"{before["version"]}"'})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["location"]["u"], 12)
        # discovered fields are refused, naming the field
        for body, field in (({"capacity": {"vcpus": 64}}, "capacity.vcpus"),
                            ({"name": "renamed"}, "name"),
                            ({"department_id": dept["id"]}, "department_id"),
                            ({"status": {"health": "ok"}}, "status.health")):
            r = self.call("PATCH", f"/v1/assets/{aid}", body)
            self.assertProblem(r, 400, f"field {field}: is discovered")
            self.assertEqual(r.json["field"], field)
        # unknown and bad fields
        r = self.call("PATCH", f"/v1/assets/{aid}", {"location": {"u": 61}})
        self.assertProblem(r, 400, "field location.u: 61 is above 60")
        r = self.call("PATCH", f"/v1/assets/{aid}", {"colour": "red"})
        self.assertProblem(r, 400, "field colour: unknown field")
        # the VM changes: discovery rewrites its part, the operator's stays
        stop = self.accepted(self.call("POST", f"/v1/vms/{vm['id']}/stop?force=true"), "vm.stop")
        self.wait_ok(stop["id"])
        self.pull()
        after = self.asset(aid)
        self.assertEqual(after["status"]["state"], "disabled")
        for k, v in enrich.items():
            self.assertEqual(after[k], v, k)
        hist = self.history(aid)
        # the periodic pass may also have seen the VM being built or stopping: every entry
        # but the operator's is discovery's, and discovery only ever touched its own fields
        self.assertEqual(hist[0]["op"], "create")
        mine = [i for i, x in enumerate(hist) if x["actor"] == "admin"]
        self.assertEqual(len(mine), 1, hist)
        self.assertEqual(hist[mine[0]]["changes"]["location.u"], {"old": None, "new": 12})
        self.assertEqual(set(hist[mine[0]]["changes"]),
                         {"location.data_centre", "location.room", "location.rack",
                          "location.u", "business_system", "mlps_grade", "domestic.flag",
                          "domestic.basis", "attributes.owner"})
        later = hist[mine[0] + 1:]
        self.assertTrue(later, "the stop was recorded")
        for x in [h for i, h in enumerate(hist) if i not in mine]:
            self.assertEqual(x["actor"], "discovery", x)
            for field in x["changes"]:
                self.assertFalse(field.split(".")[0] in enrich, (field, x))
        self.assertEqual(later[-1]["changes"]["status.state"]["new"], "disabled")
        # null removes an operator field
        r = self.call("PATCH", f"/v1/assets/{aid}", {"mlps_grade": None})
        self.assertEqual(r.status, 200, r)
        self.assertNotIn("mlps_grade", r.json)
        # a PATCH with nothing new writes no history
        n = len(self.history(aid))
        r = self.call("PATCH", f"/v1/assets/{aid}", {"business_system": "电子政务外网门户"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(len(self.history(aid)), n)


class TestImport(AssetBase):

    CSV = ("kind,name,serial_number,manufacturer,model,location.room,location.rack,"
           "location.u,domestic.flag,domestic.basis,security_function,attributes.note\n"
           "security_device,waf-{t},WAF-{t},Example,WAF-3000,A101,R07,12,yes,"
           "\"certificate 2024-001, catalogue entry 17\",waf,\"line one\nline \"\"two\"\"\"\n"
           "security_device,audit-{t},DBA-{t},Example,DBA-1,A101,R07,14,否,,db_audit,\n"
           "server,srv-{t},SRV-{t},Inspur,NF5280,A101,R08,20,true,,,\n"
           "rack,rack-{t},,,,A101,R08,,,,,\n")

    def test_csv_import_quoting_bom_crlf_and_idempotent_reimport(self):
        t = uniq("c")
        text = self.CSV.format(t=t)
        _, cursor = self.drain()
        r = self.import_csv(text, bom=True, crlf=True)
        self.assertEqual((r.json["created"], r.json["updated"], r.json["unchanged"]), (4, 0, 0))
        self.assertEqual([x["row"] for x in r.json["rows"]], [1, 2, 3, 4])
        ids = [x["id"] for x in r.json["rows"]]
        waf = self.asset(ids[0])
        self.assertEqual(waf["domestic"], {"flag": True,
                                           "basis": "certificate 2024-001, catalogue entry 17"})
        # the embedded CRLF of a quoted field is kept as it was sent
        self.assertEqual(waf["attributes"]["note"], 'line one\r\nline "two"')
        self.assertEqual(waf["location"], {"room": "A101", "rack": "R07", "u": 12})
        self.assertEqual((waf["source"], waf["security_function"]), ("imported", "waf"))
        self.assertEqual(self.asset(ids[1])["domestic"], {"flag": False})
        self.assertNotIn("serial_number", self.asset(ids[3]))
        b = self.pull(cursor)
        self.assertEqual(sorted(x["id"] for x in b["records"]), sorted(ids))
        cursor = b["next_cursor"]

        # the same rows again (without the byte-order mark): nothing changes, no history, no
        # new seq
        r = self.import_csv(text, crlf=True)
        self.assertEqual((r.json["created"], r.json["updated"], r.json["unchanged"]), (0, 0, 4))
        self.assertEqual([x["id"] for x in r.json["rows"]], ids)
        self.assertEqual(self.pull(cursor)["records"], [])
        self.assertEqual([len(self.history(i)) for i in ids], [1, 1, 1, 1])

        # one field changes: one update, one history row naming it, one new record
        r = self.import_csv(text.replace(",R08,20,", ",R09,21,"), crlf=True)
        self.assertEqual((r.json["created"], r.json["updated"], r.json["unchanged"]), (0, 1, 3))
        h = self.history(ids[2])
        self.assertEqual([x["op"] for x in h], ["create", "update"])
        self.assertEqual(h[1]["changes"], {"location.rack": {"old": "R08", "new": "R09"},
                                           "location.u": {"old": 20, "new": 21}})
        b = self.pull(cursor)
        self.assertEqual([x["id"] for x in b["records"]], [ids[2]])
        self.assertEqual(b["records"][0]["data"]["location"]["u"], 21)

        # an import is audited
        ev = self.events(action="asset.import")
        self.assertTrue(any(e["outcome"] == "success" for e in ev), ev)

    def test_bad_rows_name_row_and_field_and_nothing_is_written(self):
        t = uniq("b")
        before = self.count_assets()
        _, cursor = self.drain()
        bad = ("kind,name,serial_number,location.u,mlps_grade,domestic.flag,cpu_arch\n"
               f"server,ok-{t},OK-{t},10,3,true,x86_64\n"
               f"server,bad-u-{t},BU-{t},61,3,true,x86_64\n"
               f"server,,BN-{t},1,2,true,aarch64\n"
               f"router,bad-kind-{t},BK-{t},1,2,true,x86_64\n"
               f"server,bad-grade-{t},BG-{t},1,9,maybe,sparc\n"
               f"server,dup-{t},OK-{t},2,2,false,x86_64\n"
               f"server,ragged-{t}\n"
               f"vm,typed-vm-{t},VM-{t},,,,\n")
        r = self.import_csv(bad, want=400)
        # every row's findings at once, by row: cells that do not parse, ragged rows, and
        # the checks of the rows that parsed
        self.assertProblem(r, 400, "row 2, field location.u: 61 is above 60 (and 8 more errors)")
        for e in r.json["errors"]:
            self.assertEqual(set(e), {"row", "field", "detail"})
            self.assertTrue(e["detail"].startswith(f"row {e['row']}"), e)
        self.assertEqual([e["detail"] for e in r.json["errors"]], [
            "row 2, field location.u: 61 is above 60",
            "row 3, field name: is required",
            "row 4, field kind: 'router' is not one of host|vm|volume|network|server|"
            "network_device|storage_device|security_device|rack|software",
            "row 5, field domestic.flag: 'maybe' is not true or false (also: yes/no, 1/0, "
            "是/否)",
            "row 5, field mlps_grade: 9 is above 5",
            "row 5, field cpu_arch: 'sparc' is not one of x86_64|aarch64|loongarch64|mips64|"
            "sw_64|riscv64|other",
            f"row 6, field serial_number: 'OK-{t}' is also in row 1",
            "row 7: has 2 fields, the header has 7",
            "row 8, field kind: 'vm' assets are discovered from the platform, not imported "
            "(import servers, racks, devices and software)",
        ])
        self.assertEqual([e["field"] for e in r.json["errors"]][:2], ["location.u", "name"])
        self.assertEqual(self.count_assets(), before, "nothing written")
        self.assertEqual(self.pull(cursor)["records"], [])
        # a failed import is audited as a failure
        ev = self.events(action="asset.import", outcome="failure")
        self.assertTrue(ev)

    def test_csv_header_and_syntax_errors(self):
        r = self.import_csv("kind,name,locaton.u\nserver,x,1\n", want=400)
        self.assertIn("header, column 3: unknown field 'locaton.u'", r.json["detail"])
        r = self.import_csv("kind,name,name\nserver,x,y\n", want=400)
        self.assertIn("'name' is also column 2", r.json["detail"])
        r = self.import_csv('kind,name\nserver,"unclosed\n', want=400)
        self.assertIn("CSV record 2", r.json["detail"])
        r = self.import_csv('kind,name\nserver,a"b"c\n', want=400)
        self.assertIn("malformed", r.json["detail"])
        r = self.import_csv("kind,name\n", want=400)
        self.assertProblem(r, 400, "a header and no rows")

    def test_json_import_errors_and_keys(self):
        t = uniq("j")
        rows = [{"kind": "storage_device", "name": f"san-{t}", "asset_tag": f"TAG-{t}",
                 "capacity": {"disk_bytes": 1 << 40}, "layer": "storage"},
                {"kind": "software", "name": f"db-{t}", "id": f"sw:{t}", "layer": "database",
                 "domestic": {"flag": True, "basis": "catalogue"}, "firmware_version": "8.0"}]
        r = self.import_json(rows)
        self.assertEqual(r.json["created"], 2)
        self.assertEqual(r.json["rows"][1]["id"], f"sw:{t}")
        # by asset tag and by explicit id: updates, not duplicates
        rows[0]["name"] = f"san-{t}-renamed"
        rows[1]["firmware_version"] = "8.1"
        r = self.import_json(rows)
        self.assertEqual((r.json["created"], r.json["updated"]), (0, 2))
        self.assertEqual(self.asset(r.json["rows"][0]["id"])["name"], f"san-{t}-renamed")
        # an import replaces the operator fields: a field left out goes
        r = self.import_json([{"kind": "software", "name": f"db-{t}", "id": f"sw:{t}"}])
        self.assertNotIn("firmware_version", self.asset(f"sw:{t}"))
        # bad rows
        r = self.import_json([{"kind": "server"}, 7,
                              {"kind": "server", "name": "x", "location": {"u": "high"}},
                              {"kind": "server", "name": "y", "colour": "red"},
                              {"kind": "server", "name": "z", "attributes": {"a": 1}},
                              {"kind": "server", "name": "w", "id": "bad id!"},
                              {"kind": "server", "name": "v",
                               "department_id": "00000000-0000-4000-8000-000000000000"}],
                             want=400)
        details = [e["detail"] for e in r.json["errors"]]
        self.assertEqual(details, [
            "row 1, field name: is required",
            "row 2: must be an object of asset fields",
            "row 3, field location.u: must be an integer",
            "row 4, field colour: unknown field (see docs/supervision.md#asset-fields)",
            "row 5, field attributes.a: must be a string",
            "row 6, field id: 'bad id!' is not an asset id (1 to 128 of A-Z a-z 0-9 . _ : -)",
            "row 7, field department_id: department '00000000-0000-4000-8000-000000000000' "
            "does not exist",
        ])
        # not an array, empty, other media types
        self.assertProblem(self.call("POST", "/v1/assets/import", {"kind": "server"}), 400,
                           "JSON array")
        self.assertProblem(self.call("POST", "/v1/assets/import", []), 400, "no rows")
        r = self.d.request("POST", "/v1/assets/import", token=self.admin, raw=b"kind,name\n",
                           headers={"Content-Type": "text/plain"})
        self.assertProblem(r, 415, "text/csv")
        r = self.d.request("POST", "/v1/assets/import", token=self.admin,
                           raw="kind,name\nserver,x\n".encode("utf-16"),
                           headers={"Content-Type": "text/csv; charset=utf-16"})
        self.assertProblem(r, 415)

    def test_delete_imported_is_a_tombstone(self):
        t = uniq("d")
        r = self.import_json([{"kind": "rack", "name": f"rack-{t}", "asset_tag": f"R-{t}"}])
        aid = r.json["rows"][0]["id"]
        _, cursor = self.drain()
        a = self.asset(aid)
        r = self.call("DELETE", f"/v1/assets/{aid}", headers={"If-Match": '"999"'})
        self.assertProblem(r, 412)
        self.assertEqual(self.call("DELETE", f"/v1/assets/{aid}",
                                   headers={"If-Match": f'"{a["version"]}"'}).status, 204)
        self.asset(aid, want=404)
        self.assertProblem(self.call("DELETE", f"/v1/assets/{aid}"), 404)
        b = self.pull(cursor)
        self.assertEqual([(x["id"], x["op"]) for x in b["records"]], [(aid, "delete")])
        self.assertEqual([x["op"] for x in self.history(aid)], ["create", "delete"])
        # the same tag imported again is a new asset (the tombstone stays a tombstone)
        r = self.import_json([{"kind": "rack", "name": f"rack-{t}", "asset_tag": f"R-{t}"}])
        self.assertNotEqual(r.json["rows"][0]["id"], aid)

    def test_huge_body_413(self):
        before = self.count_assets()
        for ctype in ("application/json", "text/csv"):
            self.assertEqual(status_of_oversized(self.d, "POST", "/v1/assets/import",
                                                 self.admin, ctype=ctype), 413, ctype)
        # a body just under the limit is read and checked (here: rows without a name)
        csv = ("kind\n" + "server\n" * 100000).encode()
        self.assertLess(len(csv), 1 << 20)
        r = self.d.request("POST", "/v1/assets/import", token=self.admin, raw=csv,
                           headers={"Content-Type": "text/csv"})
        self.assertProblem(r, 400, "row 1, field name: is required (and 99999 more errors)")
        self.assertEqual(len(r.json["errors"]), 100)
        self.assertEqual(self.count_assets(), before)


class TestScopeAndFilters(AssetBase):

    def test_department_scoping_and_filters(self):
        t = uniq("s")
        a = self.mkdept_()
        a1 = self.mkdept_(parent=a["id"])
        b = self.mkdept_()
        r = self.import_json([
            {"kind": "server", "name": f"a1-{t}", "department_id": a1["id"],
             "cpu_arch": "loongarch64", "layer": "server", "domestic": {"flag": True}},
            {"kind": "server", "name": f"b-{t}", "department_id": b["id"],
             "cpu_arch": "x86_64", "layer": "server", "domestic": {"flag": False}},
            {"kind": "software", "name": f"plat-{t}", "layer": "os"}])
        ids = [x["id"] for x in r.json["rows"]]
        ua = self.mkuser_("department_admin", a["id"])
        ua1 = self.mkuser_("department_user", a1["id"])
        ub = self.mkuser_("department_user", b["id"])
        sup = self.mkuser_("supervisor")

        def listed(tok, **q):
            r = self.ok("GET", "/v1/assets?" + urllib.parse.urlencode(dict(limit=500, **q)),
                        token=tok)
            return {x["id"] for x in r["items"]} & set(ids)

        self.assertEqual(listed(self.admin), set(ids))
        self.assertEqual(listed(ua["token"]), {ids[0]})   # its subtree
        self.assertEqual(listed(ua1["token"]), {ids[0]})
        self.assertEqual(listed(ub["token"]), {ids[1]})
        self.assertEqual(listed(sup["token"]), set(ids))
        self.asset(ids[1], want=404, token=ua1["token"])
        self.asset(ids[2], want=404, token=ua1["token"])
        self.assertProblem(self.call("GET", f"/v1/assets/{ids[1]}/history",
                                     token=ua1["token"]), 404)
        self.asset(ids[0], token=ua1["token"])
        # departments change nothing and pull nothing
        self.assertProblem(self.call("PATCH", f"/v1/assets/{ids[0]}", {"mlps_grade": 2},
                                     token=ua["token"]), 403)
        self.assertProblem(self.call("POST", "/v1/assets/import", [{"kind": "rack",
                                                                     "name": "r"}],
                                     token=ua["token"]), 403)
        self.assertProblem(self.call("GET", "/v1/supervision/asset", token=ua["token"]), 403)
        self.pull(token=sup["token"])
        # the platform changes a department's asset; it stays the department's
        r = self.call("PATCH", f"/v1/assets/{ids[0]}", {"mlps_grade": 2})
        self.assertEqual((r.status, r.json["mlps_grade"]), (200, 2), r)
        self.assertEqual(self.asset(ids[0], token=ua1["token"])["mlps_grade"], 2)
        # filters
        self.assertEqual(listed(self.admin, cpu_arch="loongarch64"), {ids[0]})
        self.assertEqual(listed(self.admin, domestic="true"), {ids[0]})
        self.assertEqual(listed(self.admin, domestic="false"), {ids[1]})
        self.assertEqual(listed(self.admin, layer="os"), {ids[2]})
        self.assertEqual(listed(self.admin, kind="software"), {ids[2]})
        self.assertEqual(listed(self.admin, department_id=b["id"]), {ids[1]})
        self.assertEqual(listed(self.admin, source="imported"), set(ids))
        # paging: one by one, every asset once
        seen, cursor = [], None
        while True:
            q = {"limit": 1, "kind": "server"}
            if cursor:
                q["cursor"] = cursor
            r = self.ok("GET", "/v1/assets?" + urllib.parse.urlencode(q))
            seen += [x["id"] for x in r["items"]]
            cursor = r["next_cursor"]
            if not cursor:
                break
        self.assertEqual(len(seen), len(set(seen)))
        self.assertTrue({ids[0], ids[1]} <= set(seen))

    def test_injection_attempts_are_rejected_or_inert(self):
        for q, field in ((("kind", "server' OR '1'='1"), "kind"),
                         (("department_id", "x' OR 1=1 --"), "department_id"),
                         (("domestic", "1 OR 1=1"), "domestic"),
                         (("cpu_arch", "x86_64;DROP TABLE assets"), "cpu_arch"),
                         (("layer", "%"), "layer"),
                         (("cursor", "' OR ''='"), "cursor")):
            r = self.call("GET", "/v1/assets?" + urllib.parse.urlencode([q]))
            self.assertProblem(r, 400)
            self.assertEqual(r.json["field"], field)
        r = self.call("GET", "/v1/assets?colour=red")
        self.assertProblem(r, 400, "unknown query parameter")
        # a hostile name is stored and returned as it is
        t = uniq("i")
        name = f"x'); DROP TABLE assets; -- {t} \"<script>\""
        r = self.import_json([{"kind": "software", "name": name}])
        self.assertEqual(self.asset(r.json["rows"][0]["id"])["name"], name)
        self.assertGreater(self.count_assets(), 0)
        r = self.call("GET", "/v1/assets/" + urllib.parse.quote("x' OR '1'='1"))
        self.assertProblem(r, 404)


class TestPull(AssetBase):

    def test_snapshot_then_changes_with_limits(self):
        t = uniq("p")
        rows = [{"kind": "server", "name": f"p{i}-{t}", "serial_number": f"P{i}-{t}"}
                for i in range(7)]
        r = self.import_json(rows)
        ids = [x["id"] for x in r.json["rows"]]
        snap, end = self.drain()
        self.assertTrue(set(ids) <= set(snap))
        # the snapshot again, three at a time: the same records, each once
        got, cursor, more = [], None, True
        while more:
            b = self.pull(cursor, limit=3)
            self.assertTrue(b["snapshot"])
            self.assertLessEqual(len(b["records"]), 3)
            got += [x["id"] for x in b["records"]]
            cursor, more = b["next_cursor"], b["more"]
        self.assertEqual(sorted(got), sorted(snap))
        self.assertEqual(self.pull(cursor)["records"], [])
        # changes only, in the order they happened
        self.ok("PATCH", f"/v1/assets/{ids[3]}", {"mlps_grade": 2})
        self.ok("DELETE", f"/v1/assets/{ids[5]}", want=204)
        self.ok("PATCH", f"/v1/assets/{ids[1]}", {"dr_level": 4})
        b = self.pull(end)
        self.assertFalse(b["snapshot"])
        self.assertEqual([(x["id"], x["op"]) for x in b["records"]],
                         [(ids[3], "upsert"), (ids[5], "delete"), (ids[1], "upsert")])
        self.assertEqual(b["records"][0]["data"]["mlps_grade"], 2)
        # a record changed twice comes once, at its latest
        self.ok("PATCH", f"/v1/assets/{ids[3]}", {"mlps_grade": 4})
        b2 = self.pull(end)
        self.assertEqual([x["id"] for x in b2["records"]], [ids[5], ids[1], ids[3]])
        self.assertEqual(b2["records"][2]["data"]["mlps_grade"], 4)

    def test_bad_cursors_and_parameters(self):
        _, good = self.drain()
        for cur, part in (("not-base64!", "not one returned"),
                          (b64("hello"), "not one returned"),
                          (b64("gc1:asset:x:5"), "not one returned"),
                          (b64("gc1:asset:c:-1"), "not one returned"),
                          (b64("gc1:asset:c:5 OR 1=1"), "not one returned"),
                          (b64("gc1:log:c:1"), "belongs to dataset 'log'"),
                          (b64("gc1:asset:c:999999999"), "ahead of dataset"),
                          ("A" * 500, "not one returned")):
            r = self.call("GET", "/v1/supervision/asset?" + urllib.parse.urlencode(
                {"cursor": cur}))
            self.assertProblem(r, 400, part)
            self.assertEqual(r.json["field"], "cursor")
        for lim in ("0", "-1", "1000001", "ten"):
            self.assertProblem(self.call("GET", f"/v1/supervision/asset?limit={lim}"), 400)
        self.assertProblem(self.call("GET", "/v1/supervision/nothing"), 404)
        self.assertProblem(self.call("GET", "/v1/supervision/asset?since=1"), 400)
        self.pull(good)

    def test_records_match_the_inventory(self):
        t = uniq("m")
        r = self.import_json([{"kind": "network_device", "name": f"sw-{t}",
                               "serial_number": f"SW-{t}", "manufacturer": "华为",
                               "location": {"rack": "R1", "u": 40}}])
        aid = r.json["rows"][0]["id"]
        snap, _ = self.drain()
        a = self.asset(aid)
        rec = snap[aid]
        self.assertEqual(rec["seq"], a["seq"])
        meta = {"id", "seq", "version", "created_at", "updated_at", "discovered_fields"}
        self.assertEqual(rec["data"], {k: v for k, v in a.items() if k not in meta})
        self.assertEqual(rec["time"], a["updated_at"])


if __name__ == "__main__":
    unittest.main()
