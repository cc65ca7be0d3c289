"""Alarms: rules on metric series and on incidents, firing and resolving once per episode,
notified through a webhook channel, silences that expire, audited acknowledgement, history,
department scoping, the built-in rules, a kill -9 in the middle, and bad input.

Samples reach the evaluator through POST /v1/metrics/test-samples, which hands them to the
same fan-out the collectors use ([tsdb] test_ingest); host-down uses a real host URI that
nothing answers."""

import json
import time
import unittest

from gcharness import DaemonTestCase, free_port
from test_notify import Receiver

BUILTIN = {"host-down", "vm-down", "service-down", "disk-nearly-full",
           "availability-budget-burn", "collector-failing", "environment-limit",
           "supervision-lag"}


class AlarmTest(DaemonTestCase):
    daemon_extra = ("--set", "tsdb.test_ingest=true", "--set", "alarm.evaluation_interval=1",
                    "--set", "alarm.burn_interval=1", "--set", "monitor.interval=1")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.rport = free_port()
        cls.recv = Receiver(cls.rport)
        r = cls.d.request("POST", "/v1/notification-channels",
                          {"name": "alarm-hook", "url": f"http://127.0.0.1:{cls.rport}/h"},
                          token=cls.admin)
        assert r.status == 201, r

    @classmethod
    def tearDownClass(cls):
        cls.recv.close()
        super().tearDownClass()

    def wait(self, what, fn, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = fn()
            if v:
                return v
            time.sleep(0.3)
        self.fail(f"timed out after {timeout} s waiting for {what}")

    def inject(self, metric, labels, value):
        r = self.req("POST", "/v1/metrics/test-samples",
                     {"samples": [{"metric": metric, "labels": labels,
                                   "t_ms": int(time.time() * 1000), "value": value}]},
                     token=self.admin)
        self.assertEqual(r.status, 200, r)

    def alarms(self, token=None, **q):
        qs = "&".join(f"{k}={v}" for k, v in q.items())
        r = self.req("GET", "/v1/alarms?limit=500" + ("&" + qs if qs else ""),
                     token=token or self.admin)
        self.assertEqual(r.status, 200, r)
        return r.json["items"]

    def of_rule(self, rule_id, status=None):
        return [a for a in self.alarms(rule_id=rule_id)
                if status is None or a["status"] == status]

    def events(self, alarm_id):
        return [e["type"] for _, e in self.recv.got if e.get("alarm", {}).get("id") == alarm_id]

    def mkrule(self, name, selector, op, threshold, for_seconds=1, token=None, **kw):
        body = {"name": name, "selector": selector, "op": op, "threshold": threshold,
                "for_seconds": for_seconds, "severity": kw.pop("severity", "major")}
        body.update(kw)
        r = self.req("POST", "/v1/alarm-rules", body, token=token or self.admin)
        self.assertEqual(r.status, 201, r)
        return r.json

    # ---- the rules ----

    def test_builtin_rules(self):
        r = self.req("GET", "/v1/alarm-rules?limit=100", token=self.admin)
        self.assertEqual(r.status, 200, r)
        builtin = {x["name"]: x for x in r.json["items"] if x["builtin"]}
        self.assertEqual(set(builtin), BUILTIN)
        self.assertEqual(builtin["disk-nearly-full"]["selector"], "govcloud_host_pool_used_ratio")
        self.assertEqual(builtin["vm-down"]["kind"], "incident")
        rid = builtin["collector-failing"]["id"]
        self.assertProblem(self.req("DELETE", f"/v1/alarm-rules/{rid}", token=self.admin), 409,
                           "built-in")
        r = self.req("PATCH", f"/v1/alarm-rules/{rid}", {"selector": "x"}, token=self.admin)
        self.assertProblem(r, 400, "built-in")
        self.assertEqual(r.json["field"], "selector")
        vid = builtin["vm-down"]["id"]
        r = self.req("PATCH", f"/v1/alarm-rules/{vid}", {"for_seconds": 5}, token=self.admin)
        self.assertProblem(r, 400, "no for_seconds")
        # auditors read, cannot write
        name = "aud-" + str(time.time_ns())[-8:]
        self.mkuser(name, "auditor")
        aud = self.d.login(name, "User-Passw0rd!")
        self.assertEqual(self.req("GET", f"/v1/alarm-rules/{rid}", token=aud).status, 200)
        self.assertEqual(self.req("PATCH", f"/v1/alarm-rules/{rid}", {"enabled": False},
                                  token=aud).status, 403)

    def test_bad_rules(self):
        good = {"name": "ok", "selector": 'm{a="b"}', "op": ">", "threshold": 1,
                "severity": "minor"}
        cases = [
            ({"selector": "9bad"}, "selector"),
            ({"selector": 'm{a="b"'}, "selector"),
            ({"selector": 'm{a=~"b.*"}'}, "selector"),
            ({"selector": 'm{a="b"} junk'}, "selector"),
            ({"selector": "m{a=\"b\"}'; DROP TABLE alarms; --"}, "selector"),
            ({"op": "=>"}, "op"),
            ({"threshold": "1"}, "threshold"),
            ({"severity": "urgent"}, "severity"),
            ({"function": "avg"}, "function"),
            ({"for_seconds": -1}, "for_seconds"),
            ({"for_seconds": 86401}, "for_seconds"),
            ({"name": "has space"}, "name"),
            ({"colour": "red"}, "colour"),
            ({"department_id": "00000000-0000-7000-8000-00000000dead"}, "department_id"),
        ]
        for patch, field in cases:
            body = dict(good, **patch)
            r = self.req("POST", "/v1/alarm-rules", body, token=self.admin)
            self.assertProblem(r, 400)
            self.assertEqual(r.json.get("field"), field, (patch, r.json))
        r = self.d.request("POST", "/v1/alarm-rules", raw=b'{"name": "x", "threshold": 1e999}',
                           token=self.admin, headers={"Content-Type": "application/json"})
        self.assertEqual(r.status, 400, r)
        # nothing of that was written
        r = self.req("GET", "/v1/alarm-rules?limit=100", token=self.admin)
        self.assertFalse([x for x in r.json["items"] if x["name"] == "ok"])
        # a name is unique
        self.mkrule("dup-rule", "m", ">", 1)
        self.assertProblem(self.req("POST", "/v1/alarm-rules",
                                    dict(good, name="dup-rule"), token=self.admin), 409)

    # ---- an episode, end to end ----

    def test_fire_ack_resolve_notified_once(self):
        room = "r" + str(time.time_ns())[-6:]
        rule = self.mkrule("hot-" + room, f'gc_test_temp_celsius{{room="{room}"}}', ">", 30,
                           for_seconds=2, severity="critical",
                           summary="room {{room}} at {{value}} °C")
        self.assertEqual(rule["selector"], f'gc_test_temp_celsius{{room="{room}"}}')
        # another room's series does not match
        self.inject("gc_test_temp_celsius", {"room": "other"}, 99)
        self.inject("gc_test_temp_celsius", {"room": room}, 35)
        time.sleep(1.2)
        self.assertEqual(self.of_rule(rule["id"]), [], "fired before its for")
        for _ in range(6):  # the condition holds over several samples: one alarm
            self.inject("gc_test_temp_celsius", {"room": room}, 36)
            time.sleep(0.5)
        firing = self.wait("the alarm", lambda: self.of_rule(rule["id"], "firing"))
        self.assertEqual(len(self.of_rule(rule["id"])), 1)
        al = firing[0]
        self.assertEqual(al["severity"], "critical")
        self.assertEqual(al["labels"]["room"], room)
        self.assertEqual(al["labels"]["alertname"], rule["name"])
        self.assertEqual(al["threshold"], 30)
        self.assertIn(f"room {room} at 3", al["summary"])
        self.assertFalse(al["silenced"])
        self.wait("the firing notification", lambda: self.events(al["id"]) == ["alarm.firing"])
        # acknowledged once, by an operator, audited
        name = "op-" + str(time.time_ns())[-8:]
        self.mkuser(name, "operator")
        op = self.d.login(name, "User-Passw0rd!")
        r = self.req("POST", f"/v1/alarms/{al['id']}/ack", {"comment": "on it / 处理中"},
                     token=op)
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json["acknowledged_by"], r.json["ack_comment"]),
                         (name, "on it / 处理中"))
        self.assertProblem(self.req("POST", f"/v1/alarms/{al['id']}/ack", {}, token=op), 409,
                           "acknowledged")
        r = self.req("GET", "/v1/audit-events?action=alarm.acknowledge&outcome=success"
                     f"&resource_id={al['id']}", token=self.admin)
        self.assertEqual(len(r.json["items"]), 1, r)
        self.assertEqual(r.json["items"][0]["actor_name"], name)
        # back below: resolved, notified once
        self.inject("gc_test_temp_celsius", {"room": room}, 22)
        self.wait("resolution", lambda: self.of_rule(rule["id"], "resolved"))
        self.wait("the resolved notification",
                  lambda: self.events(al["id"]) == ["alarm.firing", "alarm.resolved"])
        r = self.req("GET", f"/v1/alarms/{al['id']}", token=self.admin)
        self.assertEqual(r.json["status"], "resolved")
        self.assertIn("no longer holds", r.json["end_reason"])
        self.assertIsNotNone(r.json["ended_at"])
        self.assertProblem(self.req("POST", f"/v1/alarms/{al['id']}/ack", {}, token=self.admin),
                           409)
        # a new episode is a new alarm; history keeps both
        for _ in range(6):
            self.inject("gc_test_temp_celsius", {"room": room}, 40)
            time.sleep(0.5)
        self.wait("a second alarm", lambda: self.of_rule(rule["id"], "firing"))
        self.assertEqual(len(self.of_rule(rule["id"])), 2)
        # disabling the rule ends it
        r = self.req("PATCH", f"/v1/alarm-rules/{rule['id']}", {"enabled": False},
                     token=self.admin)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.of_rule(rule["id"], "firing"), [])
        self.assertEqual(self.of_rule(rule["id"], "resolved")[-1]["end_reason"], "rule disabled")
        second = self.of_rule(rule["id"])[-1]["id"]
        self.wait("the second episode's notifications",
                  lambda: self.events(second) == ["alarm.firing", "alarm.resolved"])

    def test_rate_function(self):
        rule = self.mkrule("errs-" + str(time.time_ns())[-6:],
                           'gc_test_errors_total{job="rate"}', ">", 5, function="rate",
                           for_seconds=0)
        self.assertEqual(rule["function"], "rate")
        t0 = int(time.time() * 1000)
        # 1 per second: below
        samples = [{"metric": "gc_test_errors_total", "labels": {"job": "rate"},
                    "t_ms": t0 + i * 1000, "value": 100 + i} for i in range(3)]
        self.req("POST", "/v1/metrics/test-samples", {"samples": samples}, token=self.admin)
        time.sleep(2)
        self.assertEqual(self.of_rule(rule["id"]), [])
        # 50 per second: above
        samples = [{"metric": "gc_test_errors_total", "labels": {"job": "rate"},
                    "t_ms": t0 + 3000 + i * 1000, "value": 102 + 50 * (i + 1)} for i in range(2)]
        self.req("POST", "/v1/metrics/test-samples", {"samples": samples}, token=self.admin)
        al = self.wait("a rate alarm", lambda: self.of_rule(rule["id"], "firing"))[0]
        self.assertAlmostEqual(al["value"], 50, places=6)

    # ---- silences ----

    def test_silence_then_expiry_sends_late(self):
        rule = self.mkrule("quiet-" + str(time.time_ns())[-6:], 'gc_test_q{x="1"}', ">=", 1,
                           for_seconds=0)
        for body, field in (({"matchers": {}, "comment": "c", "duration_seconds": 600},
                             "matchers"),
                            ({"matchers": {"alertname": rule["name"]}, "comment": "c"},
                             "ends_at"),
                            ({"matchers": {"alertname": rule["name"]}, "comment": "c",
                              "duration_seconds": 91 * 86400}, "duration_seconds"),
                            ({"matchers": {"bad name": "x"}, "comment": "c",
                              "duration_seconds": 600}, "matchers"),
                            ({"matchers": {"alertname": 3}, "comment": "c",
                              "duration_seconds": 600}, "matchers"),
                            ({"matchers": {"alertname": "x"}, "duration_seconds": 600},
                             "comment"),
                            ({"matchers": {"alertname": "x"}, "comment": "c",
                              "ends_at": "2001-01-01T00:00:00Z"}, "ends_at")):
            r = self.req("POST", "/v1/silences", body, token=self.admin)
            self.assertProblem(r, 400)
            self.assertEqual(r.json["field"], field, (body, r.json))
        r = self.req("POST", "/v1/silences", {"matchers": {"alertname": rule["name"]},
                                              "comment": "planned work 计划维护",
                                              "duration_seconds": 3600}, token=self.admin)
        self.assertEqual(r.status, 201, r)
        sil = r.json
        self.assertEqual(sil["state"], "active")
        self.inject("gc_test_q", {"x": "1"}, 5)
        al = self.wait("a silenced alarm", lambda: self.of_rule(rule["id"], "firing"))[0]
        self.assertTrue(al["silenced"])
        time.sleep(1.5)
        self.assertEqual(self.events(al["id"]), [], "a silenced alarm was notified")
        # the silence ends while the alarm still fires: it is notified then
        self.assertEqual(self.req("DELETE", f"/v1/silences/{sil['id']}",
                                  token=self.admin).status, 204)
        r = self.req("GET", "/v1/silences?limit=500", token=self.admin)
        self.assertEqual([s["state"] for s in r.json["items"] if s["id"] == sil["id"]],
                         ["expired"])
        self.inject("gc_test_q", {"x": "1"}, 5)
        self.wait("the late notification", lambda: self.events(al["id"]) == ["alarm.firing"])
        self.assertFalse(self.req("GET", f"/v1/alarms/{al['id']}",
                                  token=self.admin).json["silenced"])

    # ---- departments ----

    def test_department_scoping(self):
        d1 = self.mkdept("告警甲 " + str(time.time_ns()))
        d2 = self.mkdept("告警乙 " + str(time.time_ns()))
        n1, n2, nu = ("da-" + str(time.time_ns())[-8:], "db-" + str(time.time_ns())[-8:],
                      "du-" + str(time.time_ns())[-8:])
        self.mkuser(n1, "department_admin", d1["id"])
        self.mkuser(n2, "department_admin", d2["id"])
        self.mkuser(nu, "department_user", d1["id"])
        a1, a2, u1 = (self.d.login(n, "User-Passw0rd!") for n in (n1, n2, nu))
        rule = self.mkrule("d1-cpu-" + str(time.time_ns())[-6:], "gc_test_vm_cpu_ratio", ">",
                           0.9, for_seconds=0, token=a1)
        self.assertEqual(rule["department_id"], d1["id"])
        # a department admin cannot make a rule for another department
        r = self.req("POST", "/v1/alarm-rules", {"name": "x-" + str(time.time_ns())[-6:],
                                                 "selector": "m", "op": ">", "threshold": 1,
                                                 "severity": "info",
                                                 "department_id": d2["id"]}, token=a1)
        self.assertProblem(r, 400)
        self.assertEqual(self.req("POST", "/v1/alarm-rules", {"name": "y", "selector": "m",
                                                              "op": ">", "threshold": 1,
                                                              "severity": "info"},
                                  token=u1).status, 403)
        # it matches its department's series only
        self.inject("gc_test_vm_cpu_ratio", {"department_id": d2["id"], "vm": "b"}, 0.99)
        self.inject("gc_test_vm_cpu_ratio", {"department_id": d1["id"], "vm": "a"}, 0.99)
        al = self.wait("d1's alarm", lambda: self.of_rule(rule["id"], "firing"))
        self.assertEqual(len(al), 1, al)
        al = al[0]
        self.assertEqual(al["department_id"], d1["id"])
        self.assertEqual([a["id"] for a in self.alarms(token=a1)], [al["id"]])
        self.assertEqual([a["id"] for a in self.alarms(token=u1)], [al["id"]])
        self.assertEqual(self.alarms(token=a2), [])
        self.assertEqual(self.req("GET", f"/v1/alarms/{al['id']}", token=a2).status, 404)
        self.assertEqual(self.req("GET", f"/v1/alarm-rules/{rule['id']}", token=a2).status, 404)
        self.assertEqual(self.req("PATCH", f"/v1/alarm-rules/{rule['id']}", {"threshold": 2},
                                  token=a2).status, 404)
        self.assertEqual(self.req("POST", f"/v1/alarms/{al['id']}/ack", {}, token=a2).status,
                         404)
        self.assertEqual(self.req("POST", f"/v1/alarms/{al['id']}/ack", {}, token=u1).status,
                         403)
        self.assertEqual(self.req("POST", f"/v1/alarms/{al['id']}/ack", {}, token=a1).status,
                         200)
        # platform alarms and silences are not theirs
        self.assertEqual(self.req("GET", "/v1/silences", token=a1).status, 403)
        r = self.req("GET", "/v1/alarm-rules?limit=100", token=a1)
        self.assertEqual([x["id"] for x in r.json["items"]], [rule["id"]])
        self.assertEqual(self.req("DELETE", f"/v1/alarm-rules/{rule['id']}", token=a1).status,
                         204)

    # ---- built-in rules ----

    def test_builtin_disk_and_burn_rules(self):
        rules = {x["name"]: x for x in self.req("GET", "/v1/alarm-rules?limit=100",
                                                 token=self.admin).json["items"]}
        disk, burn = rules["disk-nearly-full"], rules["availability-budget-burn"]
        for x in (disk, burn):
            r = self.req("PATCH", f"/v1/alarm-rules/{x['id']}", {"for_seconds": 0},
                         token=self.admin, headers={"If-Match": f'"{x["version"]}"'})
            self.assertEqual(r.status, 200, r)
        host = "00000000-0000-7000-8000-" + str(time.time_ns())[-12:]
        self.inject("govcloud_host_pool_used_ratio", {"host_id": host, "pool": "default",
                                                      "zone": "z"}, 0.95)
        al = self.wait("disk-nearly-full", lambda: [a for a in self.of_rule(disk["id"], "firing")
                                                    if a["labels"]["host_id"] == host])[0]
        self.assertEqual(al["summary"],
                         f"storage pool default on host {host} is 95.0 % full")
        # the burn rate is computed and exported; the rule fires on it
        r = self.wait("the burn-rate series", lambda: (lambda x: x if b"govcloud_availability_"
                                                       b"burn_rate{" in x.body else None)(
            self.req("GET", "/metrics", token=self.admin)))
        self.assertIn(b'govcloud_availability_burn_rate{scope="platform",window="1h"}', r.body)
        # (a series of its own: the real one, 0 here, is emitted every second)
        self.inject("govcloud_availability_burn_rate", {"scope": "test", "window": "1h"}, 20)
        al = self.wait("budget burn", lambda: self.of_rule(burn["id"], "firing"))[0]
        self.assertIn("the test error budget is burning 20 times", al["summary"])
        self.assertEqual([a for a in self.of_rule(burn["id"])
                          if a["labels"]["scope"] == "platform"], [])

    def test_host_down_alarm_and_host_availability(self):
        port = free_port()
        r = self.req("POST", "/v1/hosts", {"name": "gone-" + str(time.time_ns())[-6:],
                                           "uri": f"qemu+tcp://127.0.0.1:{port}/system"},
                     token=self.admin)
        self.assertEqual(r.status, 201, r)
        host = r.json
        rule = [x for x in self.req("GET", "/v1/alarm-rules?limit=100",
                                    token=self.admin).json["items"]
                if x["name"] == "host-down"][0]
        al = self.wait("host-down", lambda: [a for a in self.of_rule(rule["id"], "firing")
                                             if a["labels"]["resource_id"] == host["id"]], 60)[0]
        self.assertIn("cannot reach", al["summary"])
        self.wait("its notification", lambda: self.events(al["id"]) == ["alarm.firing"])
        time.sleep(1.5)
        r = self.req("GET", f"/v1/availability?scope=host&id={host['id']}", token=self.admin)
        self.assertEqual(r.status, 200, r)
        self.assertGreaterEqual(r.json["incidents"], 1)
        self.assertGreater(r.json["downtime_seconds"], 0)
        self.assertLess(r.json["availability_percent"], 100)
        self.assertEqual(r.json["incident_list"][0]["resource_type"], "host")
        r = self.req("GET", "/v1/availability", token=self.admin)
        self.assertGreaterEqual(r.json["hosts"]["incidents"], 1)
        # deleting the host ends the incident and the alarm
        self.assertEqual(self.req("DELETE", f"/v1/hosts/{host['id']}", token=self.admin).status,
                         204)
        r = self.req("GET", f"/v1/alarms/{al['id']}", token=self.admin)
        self.assertEqual((r.json["status"], r.json["end_reason"]),
                         ("resolved", "the host was deleted"))

    def test_service_down_ends_with_its_check(self):
        d = self.mkdept("检查告警 " + str(time.time_ns()))
        rule = [x for x in self.req("GET", "/v1/alarm-rules?limit=100",
                                    token=self.admin).json["items"]
                if x["name"] == "service-down"][0]
        ids = []
        for end in ("disable", "delete"):
            r = self.req("POST", "/v1/checks", {"name": "gone-" + end, "kind": "tcp",
                                                "host": "127.0.0.1", "port": free_port(),
                                                "interval_seconds": 1, "timeout_ms": 500,
                                                "department_id": d["id"]}, token=self.admin)
            self.assertEqual(r.status, 201, r)
            chk = r.json["id"]
            al = self.wait("service-down", lambda: [a for a in self.of_rule(rule["id"], "firing")
                                                    if a["labels"]["resource_id"] == chk])[0]
            self.assertEqual(al["department_id"], d["id"])
            if end == "disable":
                r = self.req("PATCH", f"/v1/checks/{chk}", {"enabled": False}, token=self.admin)
                self.assertEqual(r.status, 200, r)
            else:
                self.assertEqual(self.req("DELETE", f"/v1/checks/{chk}",
                                          token=self.admin).status, 204)
            r = self.req("GET", f"/v1/alarms/{al['id']}", token=self.admin)
            self.assertEqual((r.json["status"], r.json["end_reason"]),
                             ("resolved", f"the check was {end}d"))
            ids.append(al["id"])
        self.assertEqual(len(set(ids)), 2)

    # ---- reports ----

    def test_reports(self):
        now = time.gmtime()
        r = self.req("GET", f"/v1/availability/report?year={now.tm_year}", token=self.admin)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["granularity"], "month")
        self.assertEqual(len(r.json["periods"]), now.tm_mon)
        self.assertEqual(r.json["periods"][0]["period"], f"{now.tm_year}-01")
        self.assertIn("availability_text", r.json["total"])
        r = self.req("GET", f"/v1/availability/report?year={now.tm_year}&month={now.tm_mon}",
                     token=self.admin)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["granularity"], "day")
        self.assertEqual(len(r.json["periods"]), now.tm_mday)
        self.assertEqual(r.json["period"], f"{now.tm_year}-{now.tm_mon:02d}")
        for q, field in (("year=20x6", "year"), ("year=1999", "year"),
                         (f"year={now.tm_year}&month=13", "month"),
                         (f"year={now.tm_year + 1}", "year"), ("", "year"),
                         (f"year={now.tm_year}&scope=galaxy", "scope")):
            r = self.req("GET", f"/v1/availability/report?{q}", token=self.admin)
            self.assertProblem(r, 400)
            self.assertEqual(r.json["field"], field, (q, r.json))
        d = self.mkdept("报表 " + str(time.time_ns()))
        name = "rp-" + str(time.time_ns())[-8:]
        self.mkuser(name, "department_user", d["id"])
        u = self.d.login(name, "User-Passw0rd!")
        self.assertEqual(self.req("GET", f"/v1/availability/report?year={now.tm_year}",
                                  token=u).status, 403)
        r = self.req("GET", f"/v1/availability/report?year={now.tm_year}&scope=department"
                     f"&id={d['id']}", token=u)
        self.assertEqual(r.status, 200, r)


class AlarmRestartTest(DaemonTestCase):
    """A firing alarm outlives a kill -9, is not raised twice, and still resolves."""
    daemon_extra = ("--set", "tsdb.test_ingest=true", "--set", "alarm.evaluation_interval=1",
                    "--set", "alarm.stale_after=30")

    def wait(self, what, fn, timeout=30):
        return AlarmTest.wait(self, what, fn, timeout)

    def test_kill9(self):
        r = self.req("POST", "/v1/alarm-rules", {"name": "k9", "selector": "gc_test_k9",
                                                 "op": ">", "threshold": 0, "severity": "minor"},
                     token=self.admin)
        self.assertEqual(r.status, 201, r)
        rid = r.json["id"]

        def inject(v):
            self.assertEqual(self.req("POST", "/v1/metrics/test-samples", {"samples": [
                {"metric": "gc_test_k9", "t_ms": int(time.time() * 1000), "value": v}]},
                token=self.admin).status, 200)

        def mine():
            r = self.req("GET", f"/v1/alarms?rule_id={rid}", token=self.admin)
            return r.json["items"]
        inject(1)
        self.wait("firing", lambda: [a for a in mine() if a["status"] == "firing"])
        self.d.kill9()
        self.d.start()
        inject(1)
        time.sleep(2.5)
        self.assertEqual(len(mine()), 1, mine())
        inject(0)
        self.wait("resolved", lambda: [a for a in mine() if a["status"] == "resolved"])
        self.assertEqual(len(mine()), 1)
        # a series that stops reporting resolves after stale_after
        inject(1)
        self.wait("firing again", lambda: [a for a in mine() if a["status"] == "firing"])
        a = self.wait("stale resolution", lambda: [a for a in mine() if a["status"] == "resolved"
                                                   and "not been reported" in a["end_reason"]],
                      60)
        self.assertEqual(len(a), 1)


if __name__ == "__main__":
    unittest.main()
