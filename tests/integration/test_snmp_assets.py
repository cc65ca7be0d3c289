"""Assets discovered over SNMP (docs/supervision.md#devices-discovered-over-snmp) against
Debian's snmpd, started here in the foreground on a loopback UDP port with its own
configuration: the system group (sysName, sysDescr, sysLocation, sysObjectID) from snmpd's
own directives, and an ENTITY-MIB entPhysicalTable served through `pass_persist` by a
script that answers GET and GETNEXT from a JSON file the test writes. SNMPv2c with a
community and SNMPv3 with a USM user (createUser).

Expected values come from the table the test serves and from docs/supervision.md, not from
the daemon."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

from gcharness import DaemonTestCase
from test_environment import udp_port

SNMPD = shutil.which("snmpd") or "/usr/sbin/snmpd"
COMMUNITY = "c0mmunity-Assets-42"
V3 = {"version": "3", "user": "assetuser", "auth_protocol": "SHA-256",
      "auth_password": "auth-Asset-Secret-1", "priv_protocol": "AES",
      "priv_password": "priv-Asset-Secret-2"}
SECRETS = (COMMUNITY, V3["auth_password"], V3["priv_password"])
ENT = "1.3.6.1.2.1.47.1.1.1.1"
SYS_DESCR = "Example Networks S5720 Switch, Software Version 5.170 (V200R011)"
SYS_OID = "1.3.6.1.4.1.2011.2.23.1"

# pass_persist: PING/PONG, get/getnext of the rows in the JSON file (index → column →
# [type, value]); anything else is not writable
PASS_SCRIPT = r'''
import json, sys
BASE = tuple(int(x) for x in "%s".split("."))
PATH = %r
import os
CACHE = [None, None]
def items():
    st = os.stat(PATH)
    key = (st.st_mtime_ns, st.st_ino, st.st_size)
    if CACHE[0] == key:
        return CACHE[1]
    with open(PATH) as f:
        rows = json.load(f)
    out = []
    for idx, cols in rows.items():
        for col, (t, v) in cols.items():
            out.append((BASE + (int(col), int(idx)), t, v))
    out.sort()
    CACHE[0], CACHE[1] = key, out
    return out
def oid(s):
    return tuple(int(x) for x in s.strip().strip(".").split(".") if x)
while True:
    line = sys.stdin.readline()
    if not line:
        break
    cmd = line.strip()
    if cmd == "PING":
        print("PONG", flush=True)
    elif cmd in ("get", "getnext"):
        o = oid(sys.stdin.readline())
        hit = None
        for it in items():
            if (cmd == "get" and it[0] == o) or (cmd == "getnext" and it[0] > o):
                hit = it
                break
        if hit:
            print("." + ".".join(map(str, hit[0])))
            print(hit[1])
            print(hit[2])
        else:
            print("NONE")
        sys.stdout.flush()
    elif cmd == "set":
        sys.stdin.readline()
        sys.stdin.readline()
        print("not-writable", flush=True)
'''


def table(serial="SN-CHASSIS-0001", rows=None):
    """A chassis (class 3) at index 2 after a module at index 1, and a port at 3; the
    port lacks most columns (a sparse table)."""
    if rows is not None:
        return rows
    return {
        "1": {"2": ["string", "Line card"], "5": ["integer", "9"], "7": ["string", "slot 1"],
              "11": ["string", "SN-MODULE-1"], "12": ["string", "Example"],
              "13": ["string", "LC-48"]},
        "2": {"2": ["string", "S5720 chassis"], "5": ["integer", "3"],
              "7": ["string", "chassis"], "8": ["string", "VER.B"],
              "9": ["string", "FW 1.2.3"], "10": ["string", "V200R011"],
              "11": ["string", serial], "12": ["string", "Example Networks"],
              "13": ["string", "S5720-28X"], "15": ["string", "TAG-0042"]},
        "3": {"2": ["string", "GigabitEthernet0/0/1"], "5": ["integer", "10"]},
    }


class AssetSnmpd:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="gc-snmpd-assets-")
        self.port = udp_port()
        self.data = os.path.join(self.dir, "entities.json")
        self.set(table())
        script = os.path.join(self.dir, "ent.py")
        with open(script, "w") as f:
            f.write(PASS_SCRIPT % (ENT, self.data))
        conf = os.path.join(self.dir, "snmpd.conf")
        with open(conf, "w") as f:
            f.write(f"agentAddress udp:127.0.0.1:{self.port}\n"
                    f"rocommunity {COMMUNITY} 127.0.0.1\n"
                    f"createUser {V3['user']} SHA-256 \"{V3['auth_password']}\" AES"
                    f" \"{V3['priv_password']}\"\n"
                    f"rouser {V3['user']} priv\n"
                    "sysName core-sw-01\n"
                    f"sysDescr {SYS_DESCR}\n"
                    "sysLocation DC-1 room A101\n"
                    f"sysObjectID .{SYS_OID}\n"
                    f"pass_persist .{ENT} {sys.executable} {script}\n")
        os.makedirs(os.path.join(self.dir, "persist"))
        self.env = dict(os.environ, MIBS="",
                        SNMP_PERSISTENT_DIR=os.path.join(self.dir, "persist"))
        self.log = open(os.path.join(self.dir, "snmpd.log"), "wb")
        self.proc = subprocess.Popen([SNMPD, "-f", "-Lo", "-C", "-c", conf], env=self.env,
                                     stdout=self.log, stderr=self.log)
        deadline = time.time() + 10
        while time.time() < deadline:
            r = subprocess.run(["snmpget", "-v2c", "-c", COMMUNITY, "-t", "0.3", "-r", "0",
                                f"127.0.0.1:{self.port}", "1.3.6.1.2.1.1.5.0"],
                               env=self.env, capture_output=True)
            if r.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError("snmpd did not start")

    def set(self, rows):
        tmp = self.data + ".tmp"
        with open(tmp, "w") as f:
            json.dump(rows, f)
        os.replace(tmp, self.data)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class SnmpAssetTest(DaemonTestCase):
    # the periodic pass runs when a target is created or changed, and then only hourly:
    # everything else here is on demand, so that the counts of history rows are exact
    daemon_extra = ("--set", "supervision.asset_sync_interval=3600")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.snmp = AssetSnmpd()

    @classmethod
    def tearDownClass(cls):
        cls.snmp.stop()
        super().tearDownClass()

    def setUp(self):
        self.snmp.set(table())

    # ---- helpers ----
    def wait(self, what, fn, timeout=15):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = fn()
            if last:
                return last
            time.sleep(0.2)
        self.fail(f"timed out after {timeout} s waiting for {what} (last: {last!r})")

    def target(self, want=201, **body):
        body.setdefault("address", "127.0.0.1")
        body.setdefault("port", self.snmp.port)
        body.setdefault("kind", "network_device")
        body.setdefault("credentials", {"version": "2c", "community": COMMUNITY})
        r = self.req("POST", "/v1/assets/snmp-devices", body, token=self.admin)
        self.assertEqual(r.status, want, r)
        if want != 201:
            return r
        tid = r.json["id"]
        self.addCleanup(lambda: self.req("DELETE", f"/v1/assets/snmp-devices/{tid}",
                                         token=self.admin))
        return r.json

    def discover(self, tid, want=200):
        r = self.req("POST", f"/v1/assets/snmp-devices/{tid}/discover", token=self.admin)
        self.assertEqual(r.status, want, r)
        return r.json

    def asset(self, aid, want=200):
        r = self.req("GET", f"/v1/assets/{urllib.parse.quote(aid)}", token=self.admin)
        self.assertEqual(r.status, want, r)
        return r.json

    def history(self, aid):
        r = self.req("GET", f"/v1/assets/{aid}/history?limit=500", token=self.admin)
        self.assertEqual(r.status, 200, r)
        return r.json["items"]

    def get_target(self, tid):
        r = self.req("GET", f"/v1/assets/snmp-devices/{tid}", token=self.admin)
        self.assertEqual(r.status, 200, r)
        return r.json

    def no_secrets(self, obj):
        text = json.dumps(obj, ensure_ascii=False)
        for s in SECRETS:
            self.assertNotIn(s, text)

    # ---- tests ----
    def test_v2c_device_becomes_an_asset(self):
        t = self.target(location={"data_centre": "DC-1", "room": "A101"})
        self.assertEqual(t["asset_id"], "snmp:" + t["id"])
        self.assertEqual(t["port"], self.snmp.port)
        # created: the periodic pass reads it straight away
        a = self.wait("the asset", lambda: (lambda r: r.json if r.status == 200 else None)(
            self.req("GET", f"/v1/assets/{t['asset_id']}", token=self.admin)))
        self.assertEqual(a["source"], "snmp")
        self.assertEqual(a["kind"], "network_device")
        self.assertEqual(a["name"], "core-sw-01")
        # the chassis row (class 3), not the first row
        self.assertEqual(a["manufacturer"], "Example Networks")
        self.assertEqual(a["model"], "S5720-28X")
        self.assertEqual(a["serial_number"], "SN-CHASSIS-0001")
        self.assertEqual(a["firmware_version"], "FW 1.2.3")
        self.assertEqual(a["asset_tag"], "TAG-0042")
        self.assertEqual(a["attributes"]["sys_descr"], SYS_DESCR)
        self.assertEqual(a["attributes"]["sys_object_id"], SYS_OID)
        self.assertEqual(a["attributes"]["sys_location"], "DC-1 room A101")
        self.assertEqual(a["attributes"]["hardware_rev"], "VER.B")
        self.assertEqual(a["attributes"]["software_rev"], "V200R011")
        self.assertEqual(a["attributes"]["snmp_address"], f"127.0.0.1:{self.snmp.port}")
        self.assertEqual(a["location"], {"data_centre": "DC-1", "room": "A101"})
        self.assertEqual(a["status"], {"state": "enabled", "health": "ok"})
        self.assertIn("serial_number", a["discovered_fields"])
        self.assertNotIn("domestic", a["discovered_fields"])
        t2 = self.get_target(t["id"])
        self.assertIsNotNone(t2["last_seen_at"])
        self.assertIsNone(t2["last_error"])
        # listed with source snmp
        r = self.req("GET", "/v1/assets?source=snmp&limit=500", token=self.admin)
        self.assertIn(t["asset_id"], [x["id"] for x in r.json["items"]])

    def test_v3_device_and_security_function(self):
        t = self.target(kind="security_device", security_function="waf", credentials=V3)
        a = self.discover(t["id"])
        self.assertEqual(a["id"], t["asset_id"])
        self.assertEqual((a["kind"], a["security_function"]), ("security_device", "waf"))
        self.assertEqual(a["serial_number"], "SN-CHASSIS-0001")
        self.assertEqual(t["credentials"], {"version": "3", "user": V3["user"],
                                            "auth_protocol": "SHA-256",
                                            "priv_protocol": "AES", "secret_set": True})
        # a wrong password: auth, the asset is kept but marked absent
        r = self.req("PATCH", f"/v1/assets/snmp-devices/{t['id']}",
                     {"credentials": dict(V3, auth_password="not-the-password")},
                     token=self.admin)
        self.assertEqual(r.status, 200, r)
        r = self.req("POST", f"/v1/assets/snmp-devices/{t['id']}/discover", token=self.admin)
        self.assertProblem(r, 409, "(auth)")
        self.assertEqual(self.asset(t["asset_id"])["status"]["state"], "absent")

    def test_concurrent_v3_sessions_of_one_user(self):
        # two targets on the same agent (same engine ID and USM user), read at once: the
        # closing of one session must not take the user away from the other
        ids = [self.target(address=a, kind="server", credentials=V3, enabled=False)["id"]
               for a in ("127.0.0.1", "localhost")]
        bad = []
        for _ in range(8):
            out = []
            ths = [threading.Thread(target=lambda i=i: out.append(self.req(
                "POST", f"/v1/assets/snmp-devices/{i}/discover", token=self.admin)))
                for i in ids]
            for th in ths:
                th.start()
            for th in ths:
                th.join(30)
            bad += [r.json.get("detail") for r in out if r.status != 200]
            self.assertEqual(len(out), 2)
        self.assertEqual(bad, [])

    def test_enrichment_survives_and_history_of_real_changes_only(self):
        t = self.target(kind="storage_device")
        aid = t["asset_id"]
        self.discover(t["id"])
        r = self.req("PATCH", f"/v1/assets/{aid}",
                     {"domestic": {"flag": True, "basis": "证书 2026-007"}, "mlps_grade": 3,
                      "location": {"rack": "R07", "u": 12}}, token=self.admin)
        self.assertEqual(r.status, 200, r)
        # a field the device owns is refused, naming it
        r = self.req("PATCH", f"/v1/assets/{aid}", {"serial_number": "X"}, token=self.admin)
        self.assertProblem(r, 400, "serial_number")
        self.assertEqual(r.json["field"], "serial_number")
        # a discovered asset is not deleted through the inventory
        self.assertProblem(self.req("DELETE", f"/v1/assets/{aid}", token=self.admin), 409)
        n = len(self.history(aid))
        seq = self.asset(aid)["seq"]
        # unchanged: no history row, same seq
        a = self.discover(t["id"])
        self.assertEqual(len(self.history(aid)), n)
        self.assertEqual(a["seq"], seq)
        self.assertEqual(a["domestic"], {"flag": True, "basis": "证书 2026-007"})
        self.assertEqual(a["mlps_grade"], 3)
        self.assertEqual(a["location"], {"rack": "R07", "u": 12})
        # a new serial number: exactly one history row, naming it
        self.snmp.set(table(serial="SN-CHASSIS-0002"))
        a = self.discover(t["id"])
        self.assertEqual(a["serial_number"], "SN-CHASSIS-0002")
        self.assertGreater(a["seq"], seq)
        h = self.history(aid)
        self.assertEqual(len(h), n + 1, h)
        self.assertEqual(h[-1]["op"], "update")
        self.assertEqual(h[-1]["changes"], {"serial_number": {"old": "SN-CHASSIS-0001",
                                                              "new": "SN-CHASSIS-0002"}})
        self.assertEqual(a["domestic"]["flag"], True)
        self.assertEqual(a["location"]["rack"], "R07")
        self.discover(t["id"])
        self.assertEqual(len(self.history(aid)), n + 1)
        # a device without ENTITY-MIB rows: name and sysDescr only, first-row fallback gone
        self.snmp.set({})
        a = self.discover(t["id"])
        self.assertNotIn("serial_number", a)
        self.assertEqual(a["attributes"]["sys_descr"], SYS_DESCR)
        # the first row when there is no chassis
        self.snmp.set({"7": {"5": ["integer", "9"], "11": ["string", "SN-ONLY-ROW"]}})
        self.assertEqual(self.discover(t["id"])["serial_number"], "SN-ONLY-ROW")

    def test_entity_table_read_is_bounded(self):
        # 600 rows, the chassis last: only the first 512 are read, so the first row is used
        rows = {str(i): {"5": ["integer", "10"]} for i in range(1, 601)}
        rows["1"]["11"] = ["string", "SN-ROW-1"]
        rows["600"] = {"5": ["integer", "3"], "11": ["string", "SN-CHASSIS-600"]}
        self.snmp.set(rows)
        t = self.target(timeout_ms=30000)
        t0 = time.monotonic()
        a = self.discover(t["id"])
        self.assertEqual(a["serial_number"], "SN-ROW-1")
        self.assertLess(time.monotonic() - t0, 30)
        # with the chassis within the bound, it is chosen
        rows = {str(i): {"5": ["integer", "10"]} for i in range(1, 21)}
        rows["20"] = {"5": ["integer", "3"], "11": ["string", "SN-CHASSIS-20"]}
        self.snmp.set(rows)
        self.assertEqual(self.discover(t["id"])["serial_number"], "SN-CHASSIS-20")

    def test_wrong_community_keeps_the_asset(self):
        t = self.target(timeout_ms=500)
        aid = t["asset_id"]
        self.discover(t["id"])
        r = self.req("PATCH", f"/v1/assets/snmp-devices/{t['id']}",
                     {"credentials": {"version": "2c", "community": "wrong"}},
                     token=self.admin)
        self.assertEqual(r.status, 200, r)
        r = self.req("POST", f"/v1/assets/snmp-devices/{t['id']}/discover", token=self.admin)
        self.assertProblem(r, 409, "community")
        t2 = self.get_target(t["id"])
        self.assertIn("community", t2["last_error"])
        self.assertIn("timeout", t2["last_error"])
        a = self.asset(aid)
        self.assertEqual(a["status"], {"state": "absent", "health": "unknown"})
        self.assertEqual(a["serial_number"], "SN-CHASSIS-0001")
        n = len(self.history(aid))
        # failing again changes nothing more
        self.discover(t["id"], want=409)
        self.assertEqual(len(self.history(aid)), n)
        r = self.req("PATCH", f"/v1/assets/snmp-devices/{t['id']}",
                     {"credentials": {"version": "2c", "community": COMMUNITY}},
                     token=self.admin)
        a = self.discover(t["id"])
        self.assertEqual(a["status"], {"state": "enabled", "health": "ok"})
        self.assertIsNone(self.get_target(t["id"])["last_error"])

    def test_hung_device_times_out_without_hanging_the_api(self):
        t = self.target(timeout_ms=1500)
        self.discover(t["id"])
        self.snmp.proc.send_signal(signal.SIGSTOP)
        try:
            out = {}

            def run():
                t0 = time.monotonic()
                out["r"] = self.req("POST", f"/v1/assets/snmp-devices/{t['id']}/discover",
                                    token=self.admin)
                out["s"] = time.monotonic() - t0
            th = threading.Thread(target=run)
            th.start()
            time.sleep(0.2)
            # the API answers meanwhile
            t0 = time.monotonic()
            r = self.req("GET", f"/v1/assets/snmp-devices/{t['id']}", token=self.admin)
            self.assertEqual(r.status, 200)
            self.assertLess(time.monotonic() - t0, 1.0)
            th.join(20)
            self.assertFalse(th.is_alive())
            self.assertProblem(out["r"], 409, "timeout")
            self.assertLess(out["s"], 5.0)
            self.assertGreaterEqual(out["s"], 1.2)
            self.assertEqual(self.asset(t["asset_id"])["status"]["state"], "absent")
        finally:
            self.snmp.proc.send_signal(signal.SIGCONT)
        self.assertEqual(self.discover(t["id"])["status"]["state"], "enabled")

    def test_delete_tombstones_the_asset(self):
        t = self.target()
        aid = t["asset_id"]
        self.discover(t["id"])
        r = self.req("GET", "/v1/supervision/asset?limit=1000000", token=self.admin)
        self.assertEqual(r.status, 200, r)
        self.assertIn(aid, [x["id"] for x in r.json["records"]])
        cursor = r.json["next_cursor"]
        r = self.req("DELETE", f"/v1/assets/snmp-devices/{t['id']}", token=self.admin)
        self.assertEqual(r.status, 204, r)
        self.asset(aid, want=404)
        r = self.req("GET", f"/v1/supervision/asset?cursor={cursor}", token=self.admin)
        self.assertEqual(r.status, 200, r)
        recs = [x for x in r.json["records"] if x["id"] == aid]
        self.assertEqual(len(recs), 1, r.json)
        self.assertEqual((recs[0]["op"], recs[0]["data"]), ("delete", None))
        self.assertEqual(self.history(aid)[-1]["op"], "delete")
        r = self.req("GET", f"/v1/assets/snmp-devices/{t['id']}", token=self.admin)
        self.assertProblem(r, 404)

    def test_target_changes_apply_to_the_asset(self):
        dept = self.mkdept("网络 " + str(time.time_ns()))
        t = self.target()
        self.discover(t["id"])
        r = self.req("PATCH", f"/v1/assets/snmp-devices/{t['id']}",
                     {"kind": "security_device", "security_function": "firewall",
                      "department_id": dept["id"], "location": {"room": "B2"}},
                     token=self.admin)
        self.assertEqual(r.status, 200, r)
        a = self.asset(t["asset_id"])
        self.assertEqual((a["kind"], a["security_function"], a["department_id"]),
                         ("security_device", "firewall", dept["id"]))
        self.assertEqual(a["location"], {"room": "B2"})

    def test_credentials_never_returned(self):
        t = self.target()
        v3 = self.target(credentials=V3, address="localhost")
        self.no_secrets(t)
        self.no_secrets(v3)
        self.assertEqual(t["credentials"], {"version": "2c", "secret_set": True})
        self.no_secrets(self.get_target(t["id"]))
        r = self.req("GET", "/v1/assets/snmp-devices?limit=500", token=self.admin)
        self.assertEqual(r.status, 200)
        self.no_secrets(r.json)
        r = self.req("PATCH", f"/v1/assets/snmp-devices/{t['id']}", {"timeout_ms": 900},
                     token=self.admin)
        self.assertEqual(r.status, 200)
        self.no_secrets(r.json)
        self.no_secrets(self.discover(t["id"]))
        r = self.req("GET", "/v1/audit-events?resource_type=snmp_device&limit=500",
                     token=self.admin)
        self.assertEqual(r.status, 200)
        self.assertGreaterEqual(len(r.json["items"]), 3)
        self.no_secrets(r.json)

    def test_bad_input_names_the_field(self):
        cases = [
            ({"kind": "router"}, "kind"),
            ({"port": 0}, "port"),
            ({"port": "161"}, "port"),
            ({"address": "bad address!"}, "address"),
            ({"security_function": "waf"}, "security_function"),
            ({"kind": "security_device", "security_function": "antivirus"},
             "security_function"),
            ({"credentials": {"version": "1"}}, "credentials.version"),
            ({"credentials": {"version": "2c"}}, "credentials.community"),
            ({"location": {"rack": "R1"}}, "location.rack"),
            ({"department_id": "00000000-0000-7000-8000-000000000000"}, "department_id"),
            ({"timeout_ms": 5}, "timeout_ms"),
            ({"colour": "red"}, "colour"),
        ]
        for body, field in cases:
            with self.subTest(field=field, body=body):
                r = self.target(want=400, **body)
                self.assertProblem(r, 400)
                self.assertEqual(r.json.get("field"), field, r.json)
        r = self.req("POST", "/v1/assets/snmp-devices", {"kind": "server"}, token=self.admin)
        self.assertProblem(r, 400)
        self.assertIn(r.json["field"], ("address", "credentials"))
        t = self.target()
        r = self.req("PATCH", f"/v1/assets/snmp-devices/{t['id']}", {"kind": "rack"},
                     token=self.admin)
        self.assertProblem(r, 400)
        self.assertEqual(r.json["field"], "kind")
        self.assertProblem(self.target(want=409), 409)  # the same address and port
        r = self.req("GET", "/v1/assets/snmp-devices?kind=router", token=self.admin)
        self.assertProblem(r, 400)
        self.assertProblem(self.req("POST", "/v1/assets/snmp-devices/nope/discover",
                                    token=self.admin), 404)

    def test_department_roles_get_403_and_readers_read(self):
        dept = self.mkdept("资产 " + str(time.time_ns()))
        t = self.target(enabled=False)
        toks = {}
        for role in ("department_admin", "department_user", "auditor", "supervisor"):
            name = "sa-" + role[:5] + str(time.time_ns())[-8:]
            self.mkuser(name, role, dept["id"] if role.startswith("department") else None)
            toks[role] = self.d.login(name, "User-Passw0rd!")
        base = "/v1/assets/snmp-devices"
        writes = (("POST", base, {"address": "127.0.0.2", "kind": "server",
                                  "credentials": {"version": "2c", "community": "x"}}),
                  ("PATCH", f"{base}/{t['id']}", {"timeout_ms": 700}),
                  ("DELETE", f"{base}/{t['id']}", None),
                  ("POST", f"{base}/{t['id']}/discover", None))
        reads = (("GET", base, None), ("GET", f"{base}/{t['id']}", None))
        for role in ("department_admin", "department_user"):
            for method, path, body in reads + writes:
                with self.subTest(role=role, method=method, path=path):
                    self.assertProblem(self.req(method, path, body, token=toks[role]), 403)
        for role in ("auditor", "supervisor"):
            for method, path, body in reads:
                self.assertEqual(self.req(method, path, body, token=toks[role]).status, 200)
            for method, path, body in writes:
                with self.subTest(role=role, method=method, path=path):
                    self.assertProblem(self.req(method, path, body, token=toks[role]), 403)
