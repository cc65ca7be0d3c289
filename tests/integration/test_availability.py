"""Availability (docs/availability.md) with a real guest: a VM on the system libvirtd whose
domain is destroyed behind govcloud's back has an incident from the reconciliation that sees
it until the start that brings it back; its availability over the period falls by exactly
that downtime; a maintenance window over the incident excludes it; departments see their
own figures only; a deleted VM keeps its figures.

Skips, saying so, only when libvirt or QEMU is not installed."""

import os
import socket
import threading
import shutil
import subprocess
import time
import unittest
import uuid
import urllib.parse

import gcharness as gh
import libvirtd as lv


def iso(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + \
        ".%03dZ" % (ms % 1000)


class AvailabilityTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        missing = lv.missing_binaries()
        if missing:
            raise unittest.SkipTest("libvirt/QEMU not installed (missing: " + ", ".join(missing)
                                    + ")")
        lv.ensure_libvirtd()
        lv.ensure_default_pool()
        cls.work = lv.make_workdir("govcloud-availability-")
        cls.kernel, cls.initrd = lv.tiny_image(cls.work)
        cls.d = gh.Daemon(extra=["--set", "bootstrap.host_uri=none",
                                 "--set", "compute.virt_type=qemu",
                                 "--set", "monitor.interval=1"]).start()
        cls.admin = cls.d.login()

    @classmethod
    def tearDownClass(cls):
        rc = cls.d.stop()
        log = cls.d.read_log()
        cls.d.cleanup()
        shutil.rmtree(cls.work, ignore_errors=True)
        lv.stop_libvirtd()
        if rc != 0:
            raise AssertionError(f"govcloudd exited with {rc}:\n{log[-4000:]}")
        for bad in ("runtime error:", "AddressSanitizer", "LeakSanitizer"):
            if bad in log:
                raise AssertionError(f"sanitizer report in the daemon log:\n{log[-8000:]}")

    def req(self, method, path, body=None, token=None):
        return self.d.request(method, path, body, token=token or self.admin)

    def get(self, path, token=None):
        r = self.req("GET", path, token=token)
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

    def wait_job(self, job_id, timeout=120):
        def done():
            j = self.get(f"/v1/jobs/{job_id}")
            return j if j["state"] in ("succeeded", "failed", "cancelled") else None
        j = self.wait(f"job {job_id}", done, timeout)
        self.assertEqual(j["state"], "succeeded", j)
        return j

    def other_user(self):
        """A department user of a department of its own."""
        tag = uuid.uuid4().hex[:6]
        dept = self.req("POST", "/v1/departments", {"name": "别的 " + tag}).json
        r = self.req("POST", "/v1/users", {"username": "av-o-" + tag, "password": "User-Passw0rd!",
                                           "role": "department_user",
                                           "department_id": dept["id"]})
        assert r.status == 201, r
        return self.d.login("av-o-" + tag, "User-Passw0rd!")

    def avail(self, token=None, **q):
        return self.get("/v1/availability?" + urllib.parse.urlencode(q), token=token)

    def test_incident_downtime_window_and_scope(self):
        tag = uuid.uuid4().hex[:6]
        r = self.req("POST", "/v1/hosts", {"name": "av-" + tag, "uri": "qemu:///system"})
        self.assertEqual(r.status, 201, r)
        host = r.json
        self.wait("the host", lambda: self.get(f"/v1/hosts/{host['id']}")["state"] ==
                  "connected", 60)
        r = self.req("POST", "/v1/images", {
            "name": "stay-" + tag, "kind": "kernel", "arch": "x86_64",
            "kernel_path": self.kernel, "initrd_path": self.initrd,
            "cmdline": "console=ttyS0 govcloud.stay=1"})
        self.assertEqual(r.status, 201, r)
        self.wait_job(r.json["job_id"])
        image = r.json
        flavor = self.req("POST", "/v1/flavors", {"name": "av-" + tag, "vcpus": 1,
                                                  "memory_mib": 128}).json
        dept = self.req("POST", "/v1/departments", {"name": "可用性 " + tag}).json
        other = self.req("POST", "/v1/departments", {"name": "其他 " + tag}).json
        pw = "Dept-Passw0rd!x"
        for name, d in (("av-u-" + tag, dept), ("av-o-" + tag, other)):
            r = self.req("POST", "/v1/users", {"username": name, "password": pw,
                                               "role": "department_user",
                                               "department_id": d["id"]})
            self.assertEqual(r.status, 201, r)
        user = self.d.login("av-u-" + tag, pw)
        outsider = self.d.login("av-o-" + tag, pw)

        t0 = int(time.time() * 1000)
        r = self.req("POST", "/v1/vms", {"name": "av1", "department_id": dept["id"],
                                         "flavor_id": flavor["id"], "image_id": image["id"]})
        self.assertEqual(r.status, 202, r)
        self.wait_job(r.json["id"])
        vm = self.get(f"/v1/vms/{r.json['resource_id']}")
        a = self.avail(scope="vm", id=vm["id"], **{"from": iso(t0)})
        self.assertEqual((a["incidents"], a["downtime_seconds"]), (0, 0), a)
        self.assertEqual(a["availability_percent"], 100.0)
        self.assertTrue(a["target_met"])

        # the domain is destroyed behind govcloud's back: an incident, until the start
        subprocess.run(["virsh", "-c", "qemu:///system", "destroy", vm["domain_name"]],
                       check=True, capture_output=True)
        self.wait("the incident", lambda: self.avail(scope="vm", id=vm["id"])["incidents"] == 1,
                  30)
        # the built-in vm-down alarm fires with it, in the same transaction

        def vm_alarms():
            return [x for x in self.req("GET", "/v1/alarms?limit=500").json["items"]
                    if x["labels"].get("resource_id") == vm["id"]]
        al = vm_alarms()
        self.assertEqual([(x["rule_name"], x["status"]) for x in al], [("vm-down", "firing")])
        self.assertIn("outside govcloud", al[0]["reason"])
        time.sleep(3)
        r = self.req("POST", f"/v1/vms/{vm['id']}/start")
        self.assertEqual(r.status, 202, r)
        self.wait_job(r.json["id"])
        time.sleep(1.5)
        t1 = int(time.time() * 1000)
        a = self.avail(scope="vm", id=vm["id"], **{"from": iso(t0), "to": iso(t1)})
        self.assertEqual(a["incidents"], 1, a)
        self.assertEqual([(x["id"], x["status"]) for x in vm_alarms()],
                         [(al[0]["id"], "resolved")])
        inc = a["incident_list"][0]
        self.assertIn("outside govcloud", inc["cause"])
        self.assertIsNotNone(inc["ended_at"], inc)
        self.assertEqual(inc["host_id"], host["id"])
        down = a["downtime_seconds"]
        self.assertGreaterEqual(down, 3, a)
        self.assertLess(down, 60, a)
        # the figure is the downtime over the time in service, with enough digits
        expect = 100.0 * (a["service_seconds"] - down) / a["service_seconds"]
        self.assertAlmostEqual(a["availability_percent"], expect, delta=100.0 / a[
            "service_seconds"] * 1.01)
        self.assertLess(a["availability_percent"], 100.0)
        self.assertFalse(a["target_met"])
        self.assertEqual(len(a["availability_text"].split(".")[1]), 4, a)

        # a maintenance window over the incident: planned, not counted
        r = self.req("POST", "/v1/maintenance-windows", {
            "scope": "vm", "resource_id": vm["id"], "starts_at": inc["started_at"],
            "ends_at": inc["ended_at"], "description": "演练"})
        self.assertEqual(r.status, 201, r)
        window = r.json
        a2 = self.avail(scope="vm", id=vm["id"], **{"from": iso(t0), "to": iso(t1)})
        self.assertEqual(a2["downtime_seconds"], 0, a2)
        self.assertEqual(a2["availability_percent"], 100.0)
        self.assertGreaterEqual(a2["planned_seconds"], down)
        self.assertEqual(a2["incident_list"][0]["planned_seconds"], down, a2)
        ev = self.get("/v1/audit-events?action=maintenance_window.create")["items"]
        self.assertEqual([e["resource_id"] for e in ev], [window["id"]])
        self.assertEqual(self.req("DELETE", f"/v1/maintenance-windows/{window['id']}").status,
                         204)
        self.assertEqual(self.avail(scope="vm", id=vm["id"], **{"from": iso(t0),
                                                                "to": iso(t1)})
                         ["downtime_seconds"], down)

        # scope: the department's user sees the VM and the department, not the platform;
        # another department sees neither
        d = self.avail(token=user, scope="department", id=dept["id"],
                       **{"from": iso(t0), "to": iso(t1)})
        self.assertEqual((d["resources"], d["incidents"], d["downtime_seconds"]),
                         (1, 1, down), d)
        self.assertEqual(self.avail(token=user, scope="vm", id=vm["id"])["incidents"], 1)
        r = self.req("GET", "/v1/availability?scope=platform", token=user)
        self.assertEqual(r.status, 403, r)
        for q in (f"scope=vm&id={vm['id']}", f"scope=department&id={dept['id']}"):
            r = self.req("GET", "/v1/availability?" + q, token=outsider)
            self.assertEqual(r.status, 404, r)
        p = self.avail(**{"from": iso(t0), "to": iso(t1)})
        self.assertEqual(p["scope"], "platform")
        self.assertGreaterEqual(p["resources"], 1)
        self.assertGreaterEqual(p["downtime_seconds"], down)
        r = self.req("POST", "/v1/maintenance-windows", {
            "scope": "platform", "starts_at": iso(t0), "ends_at": iso(t1)}, token=user)
        self.assertEqual(r.status, 403, r)

        # bad input: 400 with the field
        for q, field in (("scope=galaxy", "scope"), ("scope=vm", "id"),
                         ("scope=platform&id=x", "id"), ("from=yesterday", "from"),
                         (f"from={iso(t1)}&to={iso(t0)}", "to"),
                         ("target_percent=120", "target_percent"), ("bogus=1", None)):
            r = self.req("GET", "/v1/availability?" + q)
            self.assertEqual(r.status, 400, (q, r))
            if field:
                self.assertEqual(r.json.get("field"), field, (q, r.json))
        for body, field in (({"scope": "vm", "starts_at": iso(t0), "ends_at": iso(t1)},
                             "resource_id"),
                            ({"scope": "platform", "starts_at": iso(t1), "ends_at": iso(t0)},
                             "ends_at"),
                            ({"scope": "host", "resource_id": str(uuid.uuid4()),
                              "starts_at": iso(t0), "ends_at": iso(t1)}, "resource_id"),
                            ({"scope": "platform", "starts_at": "soon", "ends_at": iso(t1)},
                             "starts_at")):
            r = self.req("POST", "/v1/maintenance-windows", body)
            self.assertEqual(r.status, 400, (body, r))
            self.assertEqual(r.json["field"], field, r.json)

        # deleted: the VM's figures stay, for who may see its department
        r = self.req("DELETE", f"/v1/vms/{vm['id']}")
        self.wait_job(r.json["id"])
        a3 = self.avail(scope="vm", id=vm["id"], **{"from": iso(t0), "to": iso(t1)})
        self.assertEqual((a3["incidents"], a3["downtime_seconds"]), (1, down), a3)
        self.assertEqual(self.avail(token=user, scope="vm", id=vm["id"],
                                    **{"from": iso(t0), "to": iso(t1)})["incidents"], 1)
        r = self.req("GET", f"/v1/availability?scope=vm&id={vm['id']}", token=outsider)
        self.assertEqual(r.status, 404, r)
        self.req("DELETE", f"/v1/hosts/{host['id']}")


    def test_service_check_incident_in_department_figures(self):
        """A TCP service check whose target stops listening has an incident from the first
        failed probe to the first good one; it shows in the department's `checks` figures."""
        tag = uuid.uuid4().hex[:6]
        dept = self.req("POST", "/v1/departments", {"name": "检查 " + tag}).json
        lsock = socket.socket()
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind(("127.0.0.1", 0))
        port = lsock.getsockname()[1]
        lsock.listen(16)
        stop = threading.Event()

        def serve(sk):
            sk.settimeout(0.2)
            while not stop.is_set():
                try:
                    c, _ = sk.accept()
                    c.close()
                except OSError:
                    if stop.is_set():
                        return
                    continue
        t = threading.Thread(target=serve, args=(lsock,), daemon=True)
        t.start()
        t0 = int(time.time() * 1000)
        r = self.req("POST", "/v1/checks", {"name": "tcp-" + tag, "department_id": dept["id"],
                                            "kind": "tcp", "host": "127.0.0.1", "port": port,
                                            "interval_seconds": 1, "timeout_ms": 500})
        self.assertEqual(r.status, 201, r)
        check = r.json
        self.wait("the check up", lambda: (self.get(f"/v1/checks/{check['id']}")["status"]
                                           or {}).get("up") is True, 30)
        # the target goes away: down; then back: up
        stop.set()
        t.join()
        lsock.close()
        self.wait("the check down", lambda: (self.get(f"/v1/checks/{check['id']}")["status"]
                                             or {}).get("up") is False, 30)
        time.sleep(2.5)
        lsock = socket.socket()
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind(("127.0.0.1", port))
        lsock.listen(16)
        stop.clear()
        t = threading.Thread(target=serve, args=(lsock,), daemon=True)
        t.start()
        try:
            self.wait("the check up again", lambda: (self.get(
                f"/v1/checks/{check['id']}")["status"] or {}).get("up") is True, 30)
            t1 = int(time.time() * 1000)
            a = self.avail(scope="department", id=dept["id"],
                           **{"from": iso(t0), "to": iso(t1)})
            c = a["checks"]
            self.assertEqual((c["resources"], c["incidents"]), (1, 1), a)
            self.assertGreaterEqual(c["downtime_seconds"], 2, a)
            self.assertLess(c["downtime_seconds"], 30, a)
            self.assertLess(c["availability_percent"], 100.0)
            # the VMs' figure is separate: the department has none
            self.assertEqual((a["resources"], a["availability_percent"]), (0, 100.0), a)
            # the check's own figure: the same incident, the same downtime
            one = self.avail(scope="check", id=check["id"], **{"from": iso(t0), "to": iso(t1)})
            self.assertEqual((one["incidents"], one["downtime_seconds"]),
                             (1, c["downtime_seconds"]), one)
            self.assertEqual(one["incident_list"][0]["resource_type"], "check")
            self.assertNotIn("checks", one)
            r = self.d.request("GET", f"/v1/availability?scope=check&id={check['id']}",
                               token=self.other_user())
            self.assertEqual(r.status, 404, r)
        finally:
            stop.set()
            t.join()
            lsock.close()
        self.assertEqual(self.req("DELETE", f"/v1/checks/{check['id']}").status, 204)


class AvailabilityTargetTest(unittest.TestCase):
    """[alarm] availability_target is the default target of the figures and reports; a value
    that is not a percentage stops the daemon at start with the option named."""

    def test_configured_target_is_the_default(self):
        d = gh.Daemon(extra=["--set", "bootstrap.host_uri=none",
                             "--set", "alarm.availability_target=99.5"]).start()
        try:
            admin = d.login()
            r = d.request("GET", "/v1/availability", token=admin)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json["target_percent"], 99.5)
            r = d.request("GET", "/v1/availability?target_percent=99.999", token=admin)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json["target_percent"], 99.999)
            r = d.request("GET", "/v1/availability/report?year=2026", token=admin)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json["target_percent"], 99.5)
        finally:
            self.assertEqual(d.stop(), 0)
            d.cleanup()

    def test_bad_target_refused_at_start(self):
        for bad in ("abc", "100", "0", "99.9x"):
            p = subprocess.run([gh.DAEMON, "--set", "alarm.availability_target=" + bad,
                                "--check-config"], capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn("availability_target: '%s' is not a percentage" % bad, p.stderr)


if __name__ == "__main__":
    unittest.main()
