"""Data-centre environment (docs/environment.md) against real devices: Debian's snmpd,
started here in the foreground on a loopback UDP port with its own configuration, serving
sensor values through `pass` from a file the test writes (SNMPv2c and SNMPv3 with a USM
user made by createUser), and a Modbus-TCP server built with libmodbus
(tests/tools/modbus_server.c) serving registers the test sets."""

import math
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from gcharness import BUILD, Daemon, DaemonTestCase

SNMPD = shutil.which("snmpd") or "/usr/sbin/snmpd"
MODBUS_SERVER = os.path.join(BUILD, "tests", "modbus_server")
TH = ".1.3.6.1.4.1.8072.9999.1"
V3 = {"version": "3", "user": "govuser", "auth_protocol": "SHA",
      "auth_password": "auth-Secret-77", "priv_protocol": "AES",
      "priv_password": "priv-Secret-88"}
COMMUNITY = "c0mmunity-Secret-99"


def udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tcp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Snmpd:
    """snmpd in the foreground; values: {oid: (type, value)} served through pass."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="gc-snmpd-")
        self.port = udp_port()
        self.values = os.path.join(self.dir, "values")
        script = os.path.join(self.dir, "pass.sh")
        with open(script, "w") as f:
            f.write("#!/bin/sh\n"
                    "if [ \"$1\" = \"-g\" ]; then\n"
                    f"  line=$(grep \"^$2 \" {self.values} | head -n 1)\n"
                    "  if [ -n \"$line\" ]; then set -- $line;"
                    " printf '%s\\n%s\\n%s\\n' \"$1\" \"$2\" \"$3\"; fi\n"
                    "fi\nexit 0\n")
        os.chmod(script, 0o755)
        conf = os.path.join(self.dir, "snmpd.conf")
        with open(conf, "w") as f:
            f.write(f"agentAddress udp:127.0.0.1:{self.port}\n"
                    f"rocommunity {COMMUNITY} 127.0.0.1\n"
                    f"createUser {V3['user']} SHA \"{V3['auth_password']}\" AES"
                    f" \"{V3['priv_password']}\"\n"
                    f"rouser {V3['user']} priv\n"
                    f"pass {TH} {script}\n"
                    f"pass .1.3.6.1.2.1.33 {script}\n")
        os.makedirs(os.path.join(self.dir, "persist"))
        env = dict(os.environ, MIBS="", SNMP_PERSISTENT_DIR=os.path.join(self.dir, "persist"))
        self.set({})
        self.log = open(os.path.join(self.dir, "snmpd.log"), "wb")
        self.proc = subprocess.Popen([SNMPD, "-f", "-Lo", "-C", "-c", conf], env=env,
                                     stdout=self.log, stderr=self.log)
        # ready when it answers
        deadline = time.time() + 10
        while time.time() < deadline:
            r = subprocess.run(["snmpget", "-v2c", "-c", COMMUNITY, "-t", "0.3", "-r", "0",
                                f"127.0.0.1:{self.port}", "1.3.6.1.2.1.1.3.0"],
                               env=env, capture_output=True)
            if r.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError("snmpd did not start")

    def set(self, values):
        tmp = self.values + ".tmp"
        with open(tmp, "w") as f:
            for oid, (typ, val) in values.items():
                f.write(f"{oid} {typ} {val}\n")
        os.replace(tmp, self.values)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class ModbusServer:
    """tests/tools/modbus_server: lines as that program documents them."""

    def __init__(self, lines=()):
        self.dir = tempfile.mkdtemp(prefix="gc-modbus-")
        self.state = os.path.join(self.dir, "state")
        self.set(lines)
        self.port = tcp_port()
        self.proc = subprocess.Popen([MODBUS_SERVER, str(self.port), self.state],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        if self.proc.stdout.readline().strip() != b"ready":
            raise RuntimeError("modbus_server did not start")

    def set(self, lines):
        tmp = self.state + ".tmp"
        with open(tmp, "w") as f:
            f.write("".join(line + "\n" for line in lines))
        os.replace(tmp, self.state)

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def dew(t, rh):
    g = math.log(rh / 100) + 17.62 * t / (243.12 + t)
    return 243.12 * g / (17.62 - g)


class EnvironmentTest(DaemonTestCase):
    daemon_extra = ("--set", "environment.interval=1", "--set", "environment.rate_window=10",
                    "--set", "monitor.interval=1")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.snmp = Snmpd()

    @classmethod
    def tearDownClass(cls):
        cls.snmp.stop()
        super().tearDownClass()

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

    def sensor(self, **body):
        body.setdefault("name", "s-" + str(time.time_ns())[-10:])
        body.setdefault("address", "127.0.0.1")
        r = self.req("POST", "/v1/sensors", body, token=self.admin)
        self.assertEqual(r.status, 201, r)
        sid = r.json["id"]
        self.addCleanup(lambda: self.req("DELETE", f"/v1/sensors/{sid}", token=self.admin))
        return r.json

    def modbus(self, lines):
        m = ModbusServer(lines)
        self.addCleanup(m.stop)
        return m

    def readings(self, sid):
        r = self.req("GET", f"/v1/sensors/{sid}/readings", token=self.admin)
        self.assertEqual(r.status, 200, r)
        return r.json

    def reading(self, sid, name):
        for it in self.readings(sid)["items"]:
            if it["name"] == name:
                return it
        return None

    def metrics(self):
        r = self.req("GET", "/metrics", token=self.admin)
        self.assertEqual(r.status, 200, r)
        return r.body.decode()

    def metric(self, name, **labels):
        """The value of the one series of name whose labels include these, or None."""
        for line in self.metrics().splitlines():
            m = re.match(r"^(\w+)\{(.*)\} (\S+)$", line)
            if not m or m.group(1) != name:
                continue
            got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2)))
            if all(got.get(k) == v for k, v in labels.items()):
                return float(m.group(3))
        return None

    # ---- tests ----
    def test_snmp_v2c_and_v3_readings_units_and_dew_point(self):
        self.snmp.set({f"{TH}.1.0": ("integer", 235), f"{TH}.2.0": ("string", "455")})
        v2 = self.sensor(driver="snmp", port=self.snmp.port, profile="snmp-th-generic",
                         credentials={"version": "2c", "community": COMMUNITY}, room="R1",
                         room_class="A", context="intake")
        v3 = self.sensor(driver="snmp", port=self.snmp.port, profile="snmp-th-generic",
                         credentials=V3, room="R1", room_class="A", context="intake")
        for s in (v2, v3):
            got = self.wait("readings", lambda: self.reading(s["id"], "dew_point"))
            t = self.reading(s["id"], "temperature")
            h = self.reading(s["id"], "humidity")
            self.assertEqual((t["reading"], t["reading_units"]), (23.5, "Cel"))
            self.assertEqual((h["reading"], h["reading_units"]), (45.5, "%"))
            self.assertAlmostEqual(got["reading"], dew(23.5, 45.5), places=6)
            self.assertEqual(got["reading_units"], "Cel")
            self.assertEqual(t["status"], "ok")
            self.assertEqual(t["thresholds"], {"lower_critical": 18, "lower_caution": 19,
                                               "upper_caution": 26, "upper_critical": 27})
            self.assertEqual(t["rate_limit_per_hour"], 20)
            self.assertEqual(got["thresholds"], {"lower_critical": 5.5, "lower_caution": 6.5,
                                                 "upper_caution": 14, "upper_critical": 15})
            self.assertEqual(t["physical_context"], "intake")
            self.assertEqual(t["room_class"], "A")
            self.assertTrue(self.readings(s["id"])["up"])
            self.assertEqual(self.metric("govcloud_env_humidity_ratio", sensor_id=s["id"],
                                         room="R1", room_class="A", context="intake"), 0.455)
            self.assertEqual(self.metric("govcloud_env_temperature_celsius",
                                         sensor_id=s["id"]), 23.5)
            self.assertEqual(self.metric("govcloud_env_sensor_up", sensor_id=s["id"]), 1)
        # the time-series store has them too
        def stored():
            r = self.req("GET", "/v1/metrics/query?metric=govcloud_env_temperature_celsius"
                         f"&match[]=sensor_id%3D{v3['id']}", token=self.admin)
            return r.status == 200 and r.json.get("series") and r
        self.wait("the store to have the temperature", stored, timeout=30)
        # and the supervision interface's environment dataset: every reading a record
        def pulled(cursor=None):
            q = "/v1/supervision/environment?limit=100000" + (f"&cursor={cursor}" if cursor
                                                              else "")
            r = self.req("GET", q, token=self.admin)
            self.assertEqual(r.status, 200, r)
            return r.json
        snap = pulled()
        mine = [x for x in snap["records"] if x["data"]["sensor_id"] == v3["id"]]
        self.assertTrue(mine, snap["records"][:3])
        for rec in mine:
            self.assertEqual((rec["dataset"], rec["op"], rec["schema_version"]),
                             ("environment", "upsert", "1.0"))
            self.assertTrue(rec["id"].startswith(f"env:{v3['id']}:"), rec)
            self.assertNotIn("name", rec["data"])
        t = [x["data"] for x in mine if x["data"]["reading_type"] == "temperature"][0]
        self.assertEqual((t["reading"], t["reading_units"], t["physical_context"], t["room"],
                          t["room_class"], t["status"]), (23.5, "Cel", "intake", "R1", "A", "ok"))
        self.assertEqual(t["thresholds"]["upper_critical"], 27)
        seqs = [x["seq"] for x in snap["records"]]
        self.assertEqual(seqs, sorted(seqs))
        # later polls come as changes after the cursor, and only those
        later = self.wait("later readings", lambda: (lambda j: j if j["records"] else None)(
            pulled(snap["next_cursor"])), timeout=20)
        self.assertGreater(min(x["seq"] for x in later["records"]), max(seqs))
        self.assertEqual(self.req("GET", "/v1/supervision/environment?cursor=bogus",
                                  token=self.admin).status, 400)

    def test_credentials_never_returned(self):
        s = self.sensor(driver="snmp", port=self.snmp.port, profile="snmp-th-generic",
                        credentials=V3, enabled=False)
        m = self.sensor(driver="snmp", port=self.snmp.port, profile="snmp-th-generic",
                        credentials={"version": "2c", "community": COMMUNITY}, enabled=False)
        self.assertEqual(s["credentials"], {"version": "3", "user": "govuser",
                                            "auth_protocol": "SHA", "priv_protocol": "AES",
                                            "secret_set": True})
        r = self.req("PATCH", f"/v1/sensors/{m['id']}", {"room": "R9"}, token=self.admin)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["version"], 2)
        bodies = [self.req("GET", f"/v1/sensors/{s['id']}", token=self.admin).body,
                  self.req("GET", "/v1/sensors?limit=500", token=self.admin).body,
                  self.req("GET", f"/v1/sensors/{m['id']}", token=self.admin).body,
                  r.body,
                  self.req("GET", "/v1/audit-events?resource_type=sensor&limit=500",
                           token=self.admin).body]
        for b in bodies:
            for secret in (V3["auth_password"], V3["priv_password"], COMMUNITY):
                self.assertNotIn(secret.encode(), b)
        # the update kept the stored secret: the sensor still reads
        r = self.req("PATCH", f"/v1/sensors/{m['id']}", {"enabled": True}, token=self.admin)
        self.assertEqual(r.status, 200, r)
        self.snmp.set({f"{TH}.1.0": ("integer", 200), f"{TH}.2.0": ("integer", 400)})
        self.wait("the patched sensor to read", lambda: self.readings(m["id"])["up"])
        ev = self.req("GET", f"/v1/audit-events?resource_id={m['id']}", token=self.admin).json
        self.assertEqual({e["action"] for e in ev["items"]}, {"sensor.create", "sensor.update"})

    def test_breach_then_back_in_range(self):
        mb = self.modbus(["i 0 220", "i 1 450"])
        s = self.sensor(driver="modbus", port=mb.port, profile="modbus-th-sensor", room="R2",
                        room_class="B", context="intake",
                        thresholds={"temperature": {"rate": None}})
        self.wait("ok", lambda: (self.reading(s["id"], "temperature") or {}).get("status")
                  == "ok")
        self.assertEqual(self.metric("govcloud_env_limit_breached", sensor_id=s["id"],
                                     reading="temperature", limit="upper_critical"), 0)
        mb.set(["i 0 300", "i 1 450"])  # 30.0 °C: beyond the 27 °C of GB 50174
        self.wait("critical", lambda: (self.reading(s["id"], "temperature") or {}).get(
            "status") == "critical")
        self.wait("breached = 1", lambda: self.metric(
            "govcloud_env_limit_breached", sensor_id=s["id"], room="R2",
            reading="temperature", limit="upper_critical") == 1)
        self.assertEqual(self.metric("govcloud_env_limit_breached", sensor_id=s["id"],
                                     reading="temperature", limit="upper_caution"), 1)
        self.assertIsNone(self.metric("govcloud_env_limit_breached", sensor_id=s["id"],
                                      reading="temperature", limit="rate"))
        mb.set(["i 0 265", "i 1 450"])  # 26.5 °C: caution only
        self.wait("caution", lambda: (self.reading(s["id"], "temperature") or {}).get(
            "status") == "caution")
        mb.set(["i 0 220", "i 1 450"])
        self.wait("ok again", lambda: (self.reading(s["id"], "temperature") or {}).get(
            "status") == "ok")
        self.wait("breached = 0", lambda: self.metric(
            "govcloud_env_limit_breached", sensor_id=s["id"], reading="temperature",
            limit="upper_critical") == 0)
        # humidity 65 % breaks the 60 % limit
        mb.set(["i 0 220", "i 1 650"])
        self.wait("humidity critical", lambda: (self.reading(s["id"], "humidity") or {}).get(
            "status") == "critical")

    def test_negative_values_and_rate_of_change(self):
        mb = self.modbus(["i 0 -55", "i 1 300"])
        s = self.sensor(driver="modbus", port=mb.port, profile="modbus-th-sensor",
                        context="exhaust")
        t = self.wait("a reading", lambda: self.reading(s["id"], "temperature"))
        self.assertEqual(t["reading"], -5.5)  # s16 two's complement, scale 0.1
        self.assertEqual(t["status"], "ok")   # no inlet limits on the exhaust side
        mb.set(["i 0 220", "i 1 300"])
        time.sleep(6)
        mb.set(["i 0 260", "i 1 300"])  # +4 °C within the 10 s window: far above 20 °C/h
        self.wait("rate breached", lambda: self.metric(
            "govcloud_env_limit_breached", sensor_id=s["id"], reading="temperature",
            limit="rate") == 1)
        t = self.reading(s["id"], "temperature")
        self.assertGreater(t["rate_per_hour"], 20)
        self.assertEqual(t["status"], "critical")

    def test_hung_device_does_not_delay_modbus(self):
        self.snmp.set({f"{TH}.1.0": ("integer", 210), f"{TH}.2.0": ("integer", 400)})
        sn = self.sensor(driver="snmp", port=self.snmp.port, profile="snmp-th-generic",
                         credentials={"version": "2c", "community": COMMUNITY},
                         timeout_ms=3000)
        mb = self.modbus(["i 0 220", "i 1 450"])
        m = self.sensor(driver="modbus", port=mb.port, profile="modbus-th-sensor")
        self.wait("both up", lambda: self.readings(sn["id"])["up"] and
                  self.readings(m["id"])["up"])
        self.snmp.proc.send_signal(signal.SIGSTOP)
        try:
            seen = set()
            t0 = time.monotonic()
            while time.monotonic() - t0 < 5:
                seen.add(self.readings(m["id"])["checked_at"])
                time.sleep(0.2)
            # one poll a second goes on while the SNMP device hangs for 3 s a poll
            self.assertGreaterEqual(len(seen), 3, seen)
            self.assertTrue(self.readings(m["id"])["up"])
            down = self.wait("the hung device to time out",
                             lambda: (lambda r: r if r["up"] is False else None)(
                                 self.readings(sn["id"])))
            self.assertEqual(down["reason"], "timeout")
            self.assertTrue(all(i["status"] == "unknown" for i in down["items"]), down)
            self.wait("sensor_up 0", lambda: self.metric("govcloud_env_sensor_up",
                                                         sensor_id=sn["id"]) == 0)
        finally:
            self.snmp.proc.send_signal(signal.SIGCONT)
        self.wait("back up", lambda: self.readings(sn["id"])["up"])

    def test_wrong_community_wrong_password_and_garbage(self):
        self.snmp.set({f"{TH}.1.0": ("integer", 210), f"{TH}.2.0": ("string", "garbage")})
        bad = self.sensor(driver="snmp", port=self.snmp.port, profile="snmp-th-generic",
                          credentials={"version": "2c", "community": "wrong"}, timeout_ms=500)
        r = self.wait("down", lambda: (lambda r: r if r["up"] is False else None)(
            self.readings(bad["id"])))
        self.assertEqual(r["reason"], "timeout")
        self.assertIn("community", r["error"])
        self.assertEqual(r["items"], [])
        self.wait("sensor_up 0", lambda: self.metric("govcloud_env_sensor_up",
                                                     sensor_id=bad["id"]) == 0)
        g = self.sensor(driver="snmp", port=self.snmp.port, profile="snmp-th-generic",
                        credentials={"version": "2c", "community": COMMUNITY})
        r = self.wait("garbage", lambda: (lambda r: r if r["up"] is False else None)(
            self.readings(g["id"])))
        self.assertEqual(r["reason"], "bad_value")
        self.assertIn("garbage", r["error"])
        w = self.sensor(driver="snmp", port=self.snmp.port, profile="snmp-th-generic",
                        credentials=dict(V3, auth_password="not-the-password"),
                        timeout_ms=1000)
        r = self.wait("v3 down", lambda: (lambda r: r if r["up"] is False else None)(
            self.readings(w["id"])))
        self.assertEqual(r["reason"], "auth", r)

    def test_ups_profile(self):
        self.snmp.set({".1.3.6.1.2.1.33.1.4.1.0": ("integer", 5),
                       ".1.3.6.1.2.1.33.1.2.4.0": ("integer", 64),
                       ".1.3.6.1.2.1.33.1.2.7.0": ("integer", 24),
                       ".1.3.6.1.2.1.33.1.4.4.1.4.1": ("integer", 3100)})
        u = self.sensor(driver="snmp", port=self.snmp.port, profile="snmp-ups-rfc1628",
                        credentials={"version": "2c", "community": COMMUNITY})
        ob = self.wait("ups", lambda: self.reading(u["id"], "on_battery"))
        self.assertEqual((ob["reading"], ob["status"]), (1, "critical"))
        self.assertEqual(self.metric("govcloud_env_ups_on_battery", sensor_id=u["id"]), 1)
        self.assertEqual(self.metric("govcloud_env_battery_ratio", sensor_id=u["id"]), 0.64)
        self.assertEqual(self.reading(u["id"], "output_power")["reading"], 3100)
        self.snmp.set({".1.3.6.1.2.1.33.1.4.1.0": ("integer", 3),
                       ".1.3.6.1.2.1.33.1.2.4.0": ("integer", 100),
                       ".1.3.6.1.2.1.33.1.2.7.0": ("integer", 24),
                       ".1.3.6.1.2.1.33.1.4.4.1.4.1": ("integer", 3100)})
        self.wait("on mains", lambda: self.reading(u["id"], "on_battery")["reading"] == 0)

    def test_pue_from_two_energy_counters(self):
        # facility meter: +3.00 kWh per read, IT meter: +2.00 kWh per read (0.01 kWh units):
        # one read each per round -> PUE 1.5 exactly
        fac = self.modbus(["h 0 u32 100000 300 per_read", "h 2 s32 -1234"])
        it = self.modbus(["h 0 u32 500000 200 per_read", "h 2 s32 5000"])
        f = self.sensor(driver="modbus", port=fac.port, profile="modbus-power-meter",
                        context="facility", credentials={"unit_id": 3})
        i = self.sensor(driver="modbus", port=it.port, profile="modbus-power-meter",
                        context="rack")
        p = self.wait("power", lambda: self.reading(f["id"], "power"))
        self.assertAlmostEqual(p["reading"], -123.4, places=6)  # s32, scale 0.1
        self.assertEqual(self.reading(f["id"], "energy")["reading_units"], "kW.h")
        pue = self.wait("PUE", lambda: self.metric("govcloud_env_pue", sensor_id="site",
                                                   context="facility"), timeout=20)
        self.assertAlmostEqual(pue, 1.5, places=9)
        self.assertEqual(self.metric("govcloud_env_limit_breached", sensor_id="site",
                                     reading="pue", limit="upper_caution"), 1)
        self.assertIsNotNone(self.metric("govcloud_env_energy_kwh_total", sensor_id=i["id"]))

    def test_bad_input_names_the_field(self):
        ok = {"name": "bad-in", "driver": "snmp", "address": "127.0.0.1",
              "profile": "snmp-th-generic", "credentials": {"version": "2c", "community": "x"}}
        cases = [
            ({"name": None}, "name"),
            ({"driver": "bacnet"}, "driver"),
            ({"profile": "nope"}, "profile"),
            ({"profile": "modbus-th-sensor"}, "profile"),
            ({"credentials": {"version": "2c"}}, "credentials.community"),
            ({"credentials": {"version": "1"}}, "credentials.version"),
            ({"credentials": dict(V3, auth_protocol="SHA-1000")}, "credentials.auth_protocol"),
            ({"credentials": dict(V3, priv_password="short")}, "credentials.priv_password"),
            ({"credentials": {"version": "2c", "community": "x", "extra": "y"}},
             "credentials.extra"),
            ({"room_class": "D"}, "room_class"),
            ({"context": "roof"}, "context"),
            ({"port": 0}, "port"),
            ({"timeout_ms": 5}, "timeout_ms"),
            ({"address": "a b"}, "address"),
            ({"thresholds": {"nope": {"upper_critical": 1}}}, "thresholds.nope"),
            ({"thresholds": {"temperature": {"upper_critical": "hot"}}},
             "thresholds.temperature.upper_critical"),
            ({"thresholds": {"temperature": {"lower_critical": 30}}},
             "thresholds.temperature.lower_critical"),
            ({"thresholds": {"dew_point": {"high": 1}}}, "thresholds.dew_point.high"),
            ({"unknown": 1}, "unknown"),
        ]
        for change, field in cases:
            body = dict(ok)
            for k, v in change.items():
                if v is None:
                    body.pop(k)
                else:
                    body[k] = v
            r = self.req("POST", "/v1/sensors", body, token=self.admin)
            self.assertProblem(r, 400)
            self.assertEqual(r.json.get("field"), field, (change, r.json))
        r = self.req("POST", "/v1/sensors", dict(ok, driver="modbus", profile="modbus-th-sensor",
                                                 credentials={"unit_id": 300}),
                     token=self.admin)
        self.assertProblem(r, 400)
        self.assertEqual(r.json["field"], "credentials.unit_id")
        names = [s["name"] for s in self.req("GET", "/v1/sensors?limit=500",
                                             token=self.admin).json["items"]]
        self.assertNotIn("bad-in", names)
        s = self.sensor(**dict(ok, enabled=False))
        r = self.req("PATCH", f"/v1/sensors/{s['id']}", {"driver": "modbus"}, token=self.admin)
        self.assertProblem(r, 400)
        r = self.req("PATCH", f"/v1/sensors/{s['id']}", {"profile": "modbus-leak-door"},
                     token=self.admin)
        self.assertEqual(r.json["field"], "profile", r.json)
        r = self.req("POST", "/v1/sensors", dict(ok, name=s["name"]), token=self.admin)
        self.assertProblem(r, 409)
        self.assertProblem(self.req("GET", "/v1/sensors/" + "0" * 8, token=self.admin), 404)

    def test_profiles_listed_and_checked(self):
        r = self.req("GET", "/v1/sensors/profiles", token=self.admin)
        self.assertEqual(r.status, 200, r)
        names = {p["name"] for p in r.json["items"]}
        self.assertLessEqual({"snmp-th-generic", "snmp-ups-rfc1628", "modbus-power-meter",
                              "modbus-th-sensor", "modbus-leak-door"}, names)
        r = self.req("GET", "/v1/sensors/profiles/snmp-ups-rfc1628", token=self.admin)
        self.assertEqual(r.json["readings"][0]["oid"], "1.3.6.1.2.1.33.1.4.1.0")
        self.assertProblem(self.req("GET", "/v1/sensors/profiles/nope", token=self.admin), 404)
        good = {"name": "my-probe", "driver": "modbus", "readings": [
            {"name": "t", "reading_type": "temperature", "units": "Cel", "register": 4,
             "format": "s32", "word_order": "little", "scale": 0.01}]}
        r = self.req("POST", "/v1/sensors/profiles/check", good, token=self.admin)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["readings"][0]["word_order"], "little")
        bad = [
            ({"driver": "bacnet"}, "driver"),
            ({"readings": []}, "readings"),
            ({"readings": [dict(good["readings"][0], units="degC")]}, "readings[0].units"),
            ({"readings": [dict(good["readings"][0], register=70000)]}, "readings[0].register"),
            ({"readings": [dict(good["readings"][0], format="f32")]}, "readings[0].format"),
            ({"readings": [dict(good["readings"][0], oid="1.3.6")]}, "readings[0].oid"),
            ({"readings": [dict(good["readings"][0], reading_type="pue")]},
             "readings[0].reading_type"),
            ({"readings": [dict(good["readings"][0], scale=0)]}, "readings[0].scale"),
            ({"readings": [dict(good["readings"][0], colour=1)]}, "readings[0].colour"),
        ]
        for change, field in bad:
            r = self.req("POST", "/v1/sensors/profiles/check", dict(good, **change),
                         token=self.admin)
            self.assertProblem(r, 400)
            self.assertEqual(r.json.get("field"), field, (change, r.json))

    def test_department_roles_get_403(self):
        dept = self.mkdept("环控 " + str(time.time_ns()))
        tokens = []
        for role in ("department_admin", "department_user"):
            name = "env-" + role[:5] + str(time.time_ns())[-8:]
            self.mkuser(name, role, dept["id"])
            tokens.append(self.d.login(name, "User-Passw0rd!"))
        s = self.sensor(driver="modbus", profile="modbus-th-sensor", port=1, enabled=False)
        for tok in tokens:
            for method, path, body in (
                    ("GET", "/v1/sensors", None),
                    ("POST", "/v1/sensors", {"name": "x", "driver": "modbus",
                                             "address": "127.0.0.1",
                                             "profile": "modbus-th-sensor"}),
                    ("GET", f"/v1/sensors/{s['id']}", None),
                    ("PATCH", f"/v1/sensors/{s['id']}", {"room": "x"}),
                    ("DELETE", f"/v1/sensors/{s['id']}", None),
                    ("GET", f"/v1/sensors/{s['id']}/readings", None),
                    ("GET", "/v1/sensors/profiles", None)):
                self.assertProblem(self.req(method, path, body, token=tok), 403)


class ProfileDirTest(unittest.TestCase):
    """[environment] profile_dir: extra profiles are loaded; a bad one stops the start with
    the file and the field named."""

    def test_profile_dir(self):
        pdir = tempfile.mkdtemp(prefix="gc-profiles-")
        self.addCleanup(shutil.rmtree, pdir, True)
        with open(os.path.join(pdir, "door.json"), "w") as f:
            f.write('{"name": "site-door", "driver": "snmp", "readings": [{"name": "door",'
                    ' "reading_type": "door", "units": "1", "oid": "1.3.6.1.4.1.99.1.0",'
                    ' "true_values": [2]}]}')
        d = Daemon(extra=["--set", f"environment.profile_dir={pdir}"]).start()
        try:
            tok = d.login()
            r = d.request("GET", "/v1/sensors/profiles/site-door", token=tok)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json["source"], os.path.join(pdir, "door.json"))
        finally:
            self.assertEqual(d.stop(), 0)
            d.cleanup()
        with open(os.path.join(pdir, "zz-bad.json"), "w") as f:
            f.write('{"name": "bad", "driver": "modbus", "readings": [{"name": "t",'
                    ' "reading_type": "temperature", "units": "Cel", "register": -1}]}')
        d = Daemon(extra=["--set", f"environment.profile_dir={pdir}"])
        try:
            with self.assertRaises(RuntimeError) as cm:
                d.start()
            self.assertIn("zz-bad.json", str(cm.exception))
            self.assertIn("readings[0].register", str(cm.exception))
        finally:
            d.cleanup()


if __name__ == "__main__":
    unittest.main()
