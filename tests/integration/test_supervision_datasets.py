"""The supervision datasets beyond asset (docs/supervision.md): log (the audit trail as CADF
events), alarm, availability (incidents) and backup (reserved, empty) through
GET /v1/supervision/{dataset} — snapshot, then only the changes after a cursor, the same id
with a new seq when a record changes, cursors refused when malformed or of another dataset —
and the domestic substitution rate of the local inventory (GET
/v1/supervision/substitution-rate) after an import, against figures computed by hand from
the definition in docs/supervision.md.

The daemon has no hypervisor host (bootstrap.host_uri=none), so the inventory holds exactly
what the test imports."""

import base64
import re
import socket
import subprocess
import threading
import time
import unittest
import uuid

from gcharness import DAEMON, DaemonTestCase, free_port

TIME_RE = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"
UUID_RE = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


def b64(s):
    return base64.urlsafe_b64encode(s.encode()).decode().rstrip("=")


class SupervisionDatasetsTest(DaemonTestCase):
    daemon_extra = ("--set", "tsdb.test_ingest=true", "--set", "alarm.evaluation_interval=1",
                    "--set", "monitor.interval=1")

    # ---- helpers ----

    def pull(self, dataset, cursor=None, limit=1000000, token=None):
        q = f"?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        r = self.req("GET", f"/v1/supervision/{dataset}{q}", token=token or self.admin)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("Transfer-Encoding"), "chunked")
        b = r.json
        self.assertEqual((b["dataset"], b["schema_version"]), (dataset, "1.0"))
        seqs = [x["seq"] for x in b["records"]]
        self.assertEqual(seqs, sorted(set(seqs)), "seqs strictly increasing")
        for rec in b["records"]:
            self.assertEqual((rec["dataset"], rec["schema_version"], rec["op"]),
                             (dataset, "1.0", "upsert"))
            self.assertRegex(rec["time"], TIME_RE)
            self.assertIsInstance(rec["data"], dict)
        return b

    def wait(self, what, fn, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = fn()
            if v:
                return v
            time.sleep(0.3)
        self.fail(f"timed out after {timeout} s waiting for {what}")

    def check_log(self, d):
        """The CADF fields and GB/T 22239-2019 8.1.4.3's: time, user, type, outcome."""
        for k in ("id", "type_uri", "event_type", "event_time", "action", "outcome",
                  "initiator", "target", "observer"):
            self.assertIn(k, d)
        self.assertEqual(d["type_uri"], "http://schemas.dmtf.org/cloud/audit/1.0/event")
        self.assertRegex(d["id"], UUID_RE)
        self.assertRegex(d["event_time"], TIME_RE)
        self.assertIn(d["outcome"], ("success", "failure"))
        self.assertIn(d["event_type"], ("activity", "monitor", "control"))
        for k in ("id", "name", "type"):
            self.assertTrue(d["initiator"][k])
        self.assertTrue(d["target"]["id"] and d["target"]["type"])
        self.assertTrue(d["observer"]["id"])
        self.assertRegex(d["chain_hash"], r"^[0-9a-f]{64}$")
        extra = set(d) - {"id", "type_uri", "event_type", "event_time", "action", "outcome",
                          "severity", "initiator", "target", "observer", "reason",
                          "request_id", "chain_hash"}
        self.assertFalse(extra, "members the schema does not allow")

    # ---- log ----

    def test_log_snapshot_then_changes(self):
        tag = uuid.uuid4().hex[:8]
        dept = self.mkdept("日志 " + tag)
        b = self.pull("log")
        self.assertTrue(b["snapshot"])
        self.assertFalse(b["more"])
        for rec in b["records"]:
            self.assertEqual(rec["id"], rec["data"]["id"])
            self.assertEqual(rec["time"], rec["data"]["event_time"])
            self.check_log(rec["data"])
        mine = [x["data"] for x in b["records"] if x["data"]["action"] == "department.create"
                and x["data"]["target"]["id"] == dept["id"]]
        self.assertEqual(len(mine), 1, "the department's creation is in the snapshot")
        ev = mine[0]
        self.assertEqual((ev["outcome"], ev["initiator"]["name"], ev["initiator"]["role"]),
                         ("success", "admin", "platform_admin"))
        self.assertEqual(ev["initiator"]["address"], "127.0.0.1")
        self.assertEqual(ev["target"]["type"], "department")
        cur = b["next_cursor"]
        # nothing new: no records, the same cursor
        b2 = self.pull("log", cur)
        self.assertFalse(b2["snapshot"])
        self.assertEqual(b2["records"], [])
        self.assertEqual(b2["next_cursor"], cur)
        # a denied attempt and a new department: only those come after the cursor
        name = "aud" + tag
        self.mkuser(name, "auditor")
        aud = self.d.login(name, "User-Passw0rd!")
        r = self.req("POST", "/v1/departments", {"name": "x" + tag}, token=aud)
        self.assertEqual(r.status, 403, r)
        dept2 = self.mkdept("日志2 " + tag)
        b3 = self.pull("log", cur)
        acts = [(x["data"]["action"], x["data"]["outcome"]) for x in b3["records"]]
        self.assertIn(("user.create", "success"), acts)
        self.assertIn(("auth.login", "success"), acts)
        self.assertIn(("department.create", "success"), acts)
        denied = [x["data"] for x in b3["records"] if x["data"]["outcome"] == "failure"]
        self.assertEqual(len(denied), 1, acts)
        self.assertEqual((denied[0]["initiator"]["name"], denied[0]["event_type"],
                          denied[0]["reason"]["code"]), (name, "control", "denied"))
        self.assertTrue(denied[0]["reason"]["detail"])
        self.assertIn(dept2["id"], [x["data"]["target"]["id"] for x in b3["records"]])
        self.assertTrue(all(x["seq"] > b["records"][-1]["seq"] for x in b3["records"]))
        # a snapshot in small answers continues as a snapshot and ends where one answer does
        seen, c, rounds = [], None, 0
        while True:
            part = self.pull("log", c, limit=2)
            self.assertTrue(part["snapshot"])
            self.assertLessEqual(len(part["records"]), 2)
            seen += [x["id"] for x in part["records"]]
            c = part["next_cursor"]
            rounds += 1
            if not part["more"]:
                break
        whole = self.pull("log")
        self.assertEqual(seen[:len(whole["records"])], [x["id"] for x in whole["records"]])
        self.assertGreater(rounds, 2)

    def test_cursors_refused(self):
        a = self.pull("asset")["next_cursor"]
        lg = self.pull("log")["next_cursor"]
        for dataset, cur, part in (("log", a, "belongs to dataset 'asset'"),
                                   ("alarm", lg, "belongs to dataset 'log'"),
                                   ("availability", lg, "belongs to dataset 'log'"),
                                   ("log", "not-a-cursor!", "not one returned"),
                                   ("log", b64("gc1:log:x:1"), "not one returned"),
                                   ("log", b64("gc1:log:c:999999999"), "ahead of dataset"),
                                   ("backup", b64("gc1:backup:c:1"), "ahead of dataset")):
            r = self.req("GET", f"/v1/supervision/{dataset}?cursor={cur}", token=self.admin)
            self.assertProblem(r, 400, part)
            self.assertEqual(r.json.get("field"), "cursor")
        r = self.req("GET", "/v1/supervision/nothing", token=self.admin)
        self.assertProblem(r, 404, "available: asset, environment, log, metric, alarm, availability, backup")
        # department roles: 403 on every dataset
        d = self.mkdept("部门 " + uuid.uuid4().hex[:6])
        name = "du" + uuid.uuid4().hex[:8]
        self.mkuser(name, "department_admin", d["id"])
        tok = self.d.login(name, "User-Passw0rd!")
        for ds in ("log", "metric", "alarm", "availability", "backup"):
            self.assertProblem(self.req("GET", f"/v1/supervision/{ds}", token=tok), 403)

    def test_backup_is_reserved_and_empty(self):
        b = self.pull("backup")
        self.assertEqual(b["records"], [])
        self.assertFalse(b["more"])
        self.assertEqual(self.pull("backup", b["next_cursor"])["records"], [])

    # ---- metric ----

    def test_metric_hourly_aggregates(self):
        host = str(uuid.uuid4())
        name = "gc_test_sup_load_ratio"
        hour = (int(time.time()) // 3600) * 3600 * 1000 - 2 * 3600 * 1000
        samples = [{"metric": name, "labels": {"host_id": host}, "t_ms": hour + 60000,
                    "value": 0.2},
                   {"metric": name, "labels": {"host_id": host}, "t_ms": hour + 120000,
                    "value": 0.4},
                   {"metric": "gc_test_sup_requests_total", "labels": {"host_id": host},
                    "t_ms": hour + 60000, "value": 7},
                   {"metric": "gc_test_sup_requests_total", "labels": {"host_id": host},
                    "t_ms": hour + 90000, "value": 9},
                   {"metric": "gc_test_sup_vm_ratio",
                    "labels": {"department_id": str(uuid.uuid4()), "vm_id": host},
                    "t_ms": hour + 60000, "value": 1}]
        r = self.req("POST", "/v1/metrics/test-samples", {"samples": samples, "flush": True},
                     token=self.admin)
        self.assertEqual(r.status, 200, r)
        b = self.pull("metric")
        mine = {x["data"]["name"]: x for x in b["records"]
                if x["data"].get("labels", {}).get("host_id") == host}
        self.assertEqual(set(mine), {name, "gc_test_sup_requests_total"},
                         "a department's series is not exported")
        g = mine[name]
        self.assertEqual(g["data"]["time"], time.strftime("%Y-%m-%dT%H:%M:%S.000Z",
                                                          time.gmtime(hour / 1000)))
        self.assertEqual(g["time"], g["data"]["time"])
        self.assertAlmostEqual(g["data"]["value"], 0.3, places=9)
        self.assertEqual((g["data"]["type"], g["data"]["unit"], g["data"]["interval_seconds"]),
                         ("gauge", "ratio", 3600))
        c = mine["gc_test_sup_requests_total"]["data"]
        self.assertEqual((c["type"], c["value"]), ("counter", 9))
        self.assertTrue(g["id"].startswith(f"metric:{name}:"))
        # exported once: nothing new after the cursor
        after = self.pull("metric", b["next_cursor"])
        self.assertFalse([x for x in after["records"]
                          if x["data"].get("labels", {}).get("host_id") == host])

    # ---- alarm ----

    def test_alarm_changes_come_again_under_the_same_id(self):
        room = "r" + uuid.uuid4().hex[:6]
        r = self.req("POST", "/v1/alarm-rules",
                     {"name": "hot-" + room, "selector": f'gc_test_temp_celsius{{room="{room}"}}',
                      "op": ">", "threshold": 30, "severity": "minor",
                      "summary": "room {{room}} at {{value}}"}, token=self.admin)
        self.assertEqual(r.status, 201, r)
        rule = r.json
        cur = self.pull("alarm")["next_cursor"]

        def inject(v):
            r = self.req("POST", "/v1/metrics/test-samples",
                         {"samples": [{"metric": "gc_test_temp_celsius", "labels": {"room": room},
                                       "t_ms": int(time.time() * 1000), "value": v}]},
                         token=self.admin)
            self.assertEqual(r.status, 200, r)

        def alarm_recs(c):
            return [x for x in self.pull("alarm", c)["records"]
                    if x["data"]["name"] == rule["name"]]

        inject(35)
        recs = self.wait("the alarm record", lambda: alarm_recs(cur))
        self.assertEqual(len(recs), 1)
        a = recs[0]
        d = a["data"]
        self.assertRegex(a["id"], r"^alarm:" + UUID_RE[1:])
        self.assertEqual((d["status"], d["severity"]), ("firing", "warning"))  # minor → warning
        self.assertEqual((d["threshold"], d["observed_value"]), (30, 35))
        self.assertEqual(d["labels"]["room"], room)
        self.assertIn(f"room {room} at 35", d["annotations"]["summary"])
        self.assertRegex(d["fingerprint"], r"^[0-9a-f]{64}$")
        self.assertRegex(d["starts_at"], TIME_RE)
        self.assertNotIn("ends_at", d)
        alarm_id = a["id"][len("alarm:"):]
        r = self.req("GET", f"/v1/alarms/{alarm_id}", token=self.admin)
        self.assertEqual(r.json["fingerprint"], d["fingerprint"])
        cur2 = self.pull("alarm")["next_cursor"]
        # acknowledged: the same id, a new seq
        r = self.req("POST", f"/v1/alarms/{alarm_id}/ack", {}, token=self.admin)
        self.assertEqual(r.status, 200, r)
        recs = alarm_recs(cur2)
        self.assertEqual(len(recs), 1)
        self.assertEqual(recs[0]["id"], a["id"])
        self.assertGreater(recs[0]["seq"], a["seq"])
        self.assertEqual(recs[0]["data"]["acknowledged_by"], "admin")
        self.assertRegex(recs[0]["data"]["acknowledged_at"], TIME_RE)
        cur3 = self.pull("alarm")["next_cursor"]
        # resolved: again
        inject(20)
        recs = self.wait("the resolution", lambda: alarm_recs(cur3))
        self.assertEqual(recs[0]["id"], a["id"])
        self.assertEqual(recs[0]["data"]["status"], "resolved")
        self.assertRegex(recs[0]["data"]["ends_at"], TIME_RE)
        # the snapshot holds it once, at its latest state
        snap = [x for x in self.pull("alarm")["records"] if x["id"] == a["id"]]
        self.assertEqual(len(snap), 1)
        self.assertEqual(snap[0]["data"]["status"], "resolved")

    # ---- availability: a service check's incident ----

    def test_incident_opens_and_closes(self):
        tag = uuid.uuid4().hex[:6]
        dept = self.mkdept("可用性 " + tag)
        cur = self.pull("availability")["next_cursor"]
        port = free_port()  # nothing listens there yet: the check is down from the start
        r = self.req("POST", "/v1/checks", {"name": "tcp-" + tag, "department_id": dept["id"],
                                            "kind": "tcp", "host": "127.0.0.1", "port": port,
                                            "interval_seconds": 1, "timeout_ms": 500},
                     token=self.admin)
        self.assertEqual(r.status, 201, r)
        check = r.json

        def mine(c):
            return [x for x in self.pull("availability", c)["records"]
                    if x["data"].get("resource_id") == check["id"]]

        recs = self.wait("the incident", lambda: mine(cur))
        self.assertEqual(len(recs), 1)
        inc = recs[0]
        d = inc["data"]
        self.assertEqual((d["kind"], d["scope"], d["department_id"], d["resource_name"]),
                         ("incident", "check", dept["id"], "tcp-" + tag))
        self.assertRegex(inc["id"], UUID_RE)
        self.assertTrue(d["cause"])
        self.assertNotIn("ended_at", d)
        cur2 = self.pull("availability")["next_cursor"]
        # the target comes up: the incident ends, same id, new seq
        lsock = socket.socket()
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind(("127.0.0.1", port))
        lsock.listen(16)
        stop = threading.Event()

        def serve():
            lsock.settimeout(0.2)
            while not stop.is_set():
                try:
                    c, _ = lsock.accept()
                    c.close()
                except OSError:
                    continue
        t = threading.Thread(target=serve, daemon=True)
        t.start()
        try:
            recs = self.wait("the end of the incident", lambda: mine(cur2))
        finally:
            stop.set()
            t.join()
            lsock.close()
        self.assertEqual(recs[0]["id"], inc["id"])
        self.assertGreater(recs[0]["seq"], inc["seq"])
        d = recs[0]["data"]
        self.assertRegex(d["ended_at"], TIME_RE)
        self.assertGreaterEqual(d["duration_seconds"], 0)
        self.assertTrue(d["end_reason"])
        self.req("DELETE", f"/v1/checks/{check['id']}", token=self.admin)

    # ---- the domestic substitution rate ----

    def test_substitution_rate_after_import(self):
        before = self.req("GET", "/v1/supervision/substitution-rate", token=self.admin)
        self.assertEqual(before.status, 200, before)
        self.assertEqual(before.json["assets_seen"], 0, "no host: an empty inventory")
        self.assertIsNone(before.json["overall"]["rate_by_count"])
        t = uuid.uuid4().hex[:6]
        rows = [
            {"kind": "server", "name": "a1-" + t, "domestic": {"flag": True, "basis": "cert"},
             "capacity": {"vcpus": 64}},
            {"kind": "server", "name": "a2-" + t, "capacity": {"vcpus": 32}},
            {"kind": "server", "name": "a3-" + t, "layer": "server",
             "domestic": {"flag": False}, "capacity": {"vcpus": 32},
             "attributes": {"weight": "heavy"}},
            {"kind": "software", "name": "a4-" + t, "layer": "os",
             "domestic": {"flag": True}},
            {"kind": "software", "name": "a5-" + t, "layer": "os",
             "domestic": {"flag": False}},
            {"kind": "software", "name": "a6-" + t, "layer": "os",
             "domestic": {"flag": True, "basis": "catalogue 3"}},
            {"kind": "storage_device", "name": "a7-" + t,
             "domestic": {"flag": True, "basis": "x"}, "capacity": {"disk_bytes": 1000}},
            {"kind": "storage_device", "name": "a8-" + t, "domestic": {"flag": False},
             "capacity": {"disk_bytes": 1000}},
            {"kind": "software", "name": "a9-" + t, "domestic": {"flag": True}},
            {"kind": "rack", "name": "a10-" + t, "layer": "other"},
            {"kind": "security_device", "name": "a11-" + t, "security_function": "waf",
             "domestic": {"flag": True, "basis": "b"}, "attributes": {"weight": "2.5"}},
            {"kind": "security_device", "name": "a12-" + t, "layer": "security",
             "security_function": "db_audit", "domestic": {"flag": False}},
        ]
        r = self.req("POST", "/v1/assets/import", rows, token=self.admin)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["created"], 12)
        r = self.req("GET", "/v1/supervision/substitution-rate", token=self.admin)
        self.assertEqual(r.status, 200, r)
        s = r.json
        self.assertEqual((s["scope"], s["assets_seen"], s["unclassified"]), ("local", 12, 2))
        L = {x["layer"]: x for x in s["layers"]}
        self.assertEqual(list(L), ["cpu", "server", "os", "database", "middleware", "storage",
                                   "network", "security"])
        sv = L["server"]
        self.assertEqual((sv["assets"], sv["domestic"], sv["domestic_with_basis"],
                          sv["undeclared"], sv["capacity_assets"], sv["capacity_total"]),
                         (3, 1, 1, 1, 3, 128))
        self.assertAlmostEqual(sv["rate_by_count"], 0.333333, places=6)
        self.assertAlmostEqual(sv["rate_by_capacity"], 0.5, places=6)
        self.assertEqual((L["os"]["domestic"], L["os"]["domestic_without_basis"]), (2, 1))
        self.assertAlmostEqual(L["os"]["rate_by_count"], 0.666667, places=6)
        self.assertIsNone(L["os"]["rate_by_capacity"])
        self.assertAlmostEqual(L["storage"]["rate_by_capacity"], 0.5, places=6)
        self.assertEqual(L["security"]["capacity_assets"], 1)
        self.assertAlmostEqual(L["security"]["rate_by_capacity"], 1.0, places=6)
        self.assertEqual(L["cpu"]["assets"], 0)
        self.assertIsNone(L["cpu"]["rate_by_count"])
        o = s["overall"]
        # (.15/3 + .15·2/3 + .1·.5 + .05·.5) / .45 and (.15·.5 + .1·.5 + .05·1) / .3
        self.assertAlmostEqual(o["rate_by_count"], 0.5, places=6)
        self.assertAlmostEqual(o["rate_by_capacity"], 0.583333, places=6)
        self.assertEqual(sorted(o["layers_without_assets"]),
                         ["cpu", "database", "middleware", "network"])
        self.assertAlmostEqual(sum(o["weights_by_count"].values()), 1.0, places=5)
        self.assertEqual(s["evidence"], {"domestic_assets": 5, "with_basis": 4,
                                         "without_basis": 1})
        self.assertAlmostEqual(s["weights"]["cpu"], 0.2)
        # a deleted asset no longer counts
        items = self.req("GET", "/v1/assets?kind=software&limit=100", token=self.admin).json
        a5 = [x for x in items["items"] if x["name"] == "a5-" + t][0]
        self.assertEqual(self.req("DELETE", f"/v1/assets/{a5['id']}", token=self.admin).status,
                         204)
        s2 = self.req("GET", "/v1/supervision/substitution-rate", token=self.admin).json
        L2 = {x["layer"]: x for x in s2["layers"]}
        self.assertEqual((L2["os"]["assets"], L2["os"]["domestic"]), (2, 2))
        self.assertAlmostEqual(L2["os"]["rate_by_count"], 1.0)
        # department roles may not read it
        d = self.mkdept("替代 " + t)
        name = "su" + t
        self.mkuser(name, "department_user", d["id"])
        self.assertProblem(self.req("GET", "/v1/supervision/substitution-rate",
                                    token=self.d.login(name, "User-Passw0rd!")), 403)
        # and nobody without a token
        self.assertEqual(self.req("GET", "/v1/supervision/substitution-rate").status, 401)


class SubstitutionWeightsOptionTest(unittest.TestCase):
    """[supervision] substitution_weights is checked when the daemon starts."""

    def check(self, value):
        return subprocess.run([DAEMON, "--check-config", "--set",
                               f"supervision.substitution_weights={value}"],
                              capture_output=True, text=True, timeout=30)

    def test_weights_checked_at_start(self):
        ok = self.check("server=0.5,os=0.25,security=0.25")
        self.assertEqual(ok.returncode, 0, ok.stderr)
        for bad, part in (("cpu=0.5", "sum to 0.5, not 1"),
                          ("gpu=1", "unknown layer 'gpu'"),
                          ("cpu=1.5,os=-0.5", "not a non-negative number"),
                          ("cpu=0.5,cpu=0.5", "given twice")):
            r = self.check(bad)
            self.assertEqual(r.returncode, 2, (bad, r.stdout, r.stderr))
            self.assertIn("[supervision] substitution_weights", r.stderr)
            self.assertIn(part, r.stderr)


if __name__ == "__main__":
    unittest.main()
