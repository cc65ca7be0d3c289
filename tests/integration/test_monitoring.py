"""Monitoring collection: host and VM series from libvirt (test:///default), the platform's
own series, the current-value table behind /metrics (Prometheus text format, promtool,
expiry, who may see it), and service checks (/v1/checks: TCP, HTTP, ICMP against servers
this test starts, hanging and garbage targets, the protected-address rule, CRUD, scoping).

Expected values come from docs/monitoring.md, not from the daemon."""

import http.server
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from gcharness import DaemonTestCase
from test_vms import PASSWORD, VmHelpers, uniq

INTERVAL = 1  # [monitor] interval of the daemon under test

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """[(metric, {label: value}, value)] of every sample line."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        labels = dict(LABEL.findall(m.group(2) or ""))
        out.append((m.group(1), labels, float(m.group(3))))
    return out


class Servers:
    """Local targets for the checks: a TCP listener, an HTTP server, a server that accepts
    and never answers, and one that answers garbage."""

    def __init__(self):
        self.threads = []
        self.socks = []
        # TCP listener (accepts and closes)
        self.tcp = self._listen()
        self._serve(self.tcp, self._accept_close)
        # hangs: accepts, reads, never answers
        self.hang = self._listen()
        self.hung = []
        self._serve(self.hang, self._accept_hold)
        # garbage: answers bytes that are not HTTP
        self.garbage = self._listen()
        self._serve(self.garbage, self._accept_garbage)

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                code = 500 if self.path.startswith("/fail") else 200
                body = b"ok\n"
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.http_port = self.httpd.server_address[1]
        t = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        t.start()
        # a port with nobody listening
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.closed_port = s.getsockname()[1]
        s.close()

    def _listen(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        self.socks.append(s)
        return s

    def _serve(self, s, fn):
        def loop():
            while True:
                try:
                    c, _ = s.accept()
                except OSError:
                    return
                fn(c)
        t = threading.Thread(target=loop, daemon=True)
        t.start()

    def _accept_close(self, c):
        c.close()

    def _accept_hold(self, c):
        self.hung.append(c)

    def _accept_garbage(self, c):
        try:
            c.settimeout(2)
            c.recv(4096)
            c.sendall(b"\x00\x01garbage that is not HTTP at all\r\n\r\n")
        except OSError:
            pass
        c.close()

    def port(self, s):
        return s.getsockname()[1]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        for s in self.socks + self.hung:
            s.close()


class Base(DaemonTestCase, VmHelpers):
    daemon_extra = ("--set", f"monitor.interval={INTERVAL}",
                    "--set", "monitor.protected_networks=10.99.0.0/16, fd99::/16")

    @classmethod
    def setUpClass(cls):
        cls.files = tempfile.mkdtemp(prefix="govcloud-mon-files-")
        super().setUpClass()
        cls.srv = Servers()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.srv.close()
            super().tearDownClass()
        finally:
            shutil.rmtree(cls.files, ignore_errors=True)

    def metrics(self, token=None):
        r = self.d.request("GET", "/metrics", token=token or self.admin)
        self.assertEqual(r.status, 200, r)
        return r.body.decode()

    def series(self, metric, token=None, **labels):
        return [(ls, v) for m, ls, v in parse_metrics(self.metrics(token))
                if m == metric and all(ls.get(k) == want for k, want in labels.items())]

    def wait_series(self, metric, timeout=15, pred=None, **labels):
        deadline = time.time() + timeout
        while True:
            got = self.series(metric, **labels)
            if got and (pred is None or pred(got)):
                return got
            if time.time() > deadline:
                self.fail(f"no {metric} {labels} within {timeout}s; have {got}")
            time.sleep(0.2)


class TestCollection(Base):

    def test_platform_and_host_series(self):
        h = self.mkhost(zone="mon-zone")
        self.wait_series("govcloud_host_up", host_id=h["id"], zone="mon-zone",
                         pred=lambda g: g[0][1] == 1)
        # libvirt's test driver reports node CPU times; its memory statistics are not
        # implemented (the series are then absent, not zero)
        cpu = self.wait_series("govcloud_host_cpu_seconds_total", host_id=h["id"],
                               zone="mon-zone")
        self.assertTrue({"user", "system", "idle"} <= {ls["mode"] for ls, _ in cpu}, cpu)
        pools = self.wait_series("govcloud_host_pool_capacity_bytes", host_id=h["id"])
        self.assertGreater(pools[0][1], 0)
        ok = self.wait_series("govcloud_host_collect_success", host_id=h["id"])
        self.assertEqual(ok[0][1], 1)
        # the platform
        names = {m for m, _, _ in parse_metrics(self.metrics())}
        for m in ("govcloud_process_uptime_seconds", "govcloud_process_resident_memory_bytes",
                  "govcloud_platform_jobs", "govcloud_platform_hosts",
                  "govcloud_monitor_series"):
            self.assertIn(m, names)
        hosts = self.series("govcloud_platform_hosts", state="connected")
        self.assertGreaterEqual(hosts[0][1], 1)
        rss = self.series("govcloud_process_resident_memory_bytes")[0][1]
        self.assertGreater(rss, 1 << 20)

    def test_vm_series_with_labels_and_expiry(self):
        h = self.mkhost()
        flavor = self.mkflavor(vcpus=1, memory_mib=128)
        image = self.mkimage()
        dept = self.mkdept_()
        vm = self.create_vm(flavor["id"], image["id"], dept=dept["id"], host_id=h["id"])
        want = dict(resource_id=vm["id"], department_id=dept["id"], host_id=h["id"])
        # libvirt's test driver answers bulk statistics with the state only (CPU, memory,
        # interfaces and disks are checked on qemu:///system in test_monitoring_qemu)
        self.wait_series("govcloud_vm_running", pred=lambda g: g[0][1] == 1, **want)
        # only govcloud's domains: the test driver's own domain "test" has no series
        vm_ids = set(self.vm_ids())
        for m, ls, _ in parse_metrics(self.metrics()):
            if m.startswith("govcloud_vm_"):
                self.assertIn(ls["resource_id"], vm_ids, (m, ls))
                self.assertEqual(set(ls) - {"interface", "device"},
                                 {"resource_id", "department_id", "host_id"}, (m, ls))
        # a stopped VM reports 0, a deleted one leaves /metrics after 3 intervals
        self.wait_ok(self.accepted(self.call("POST", f"/v1/vms/{vm['id']}/stop?force=true"),
                                   "vm.stop")["id"])
        self.wait_series("govcloud_vm_running", pred=lambda g: g[0][1] == 0, **want)
        self.delete_vm(vm["id"])
        t0 = time.time()
        deadline = t0 + 3 * INTERVAL + 5
        while self.series("govcloud_vm_running", resource_id=vm["id"]):
            self.assertLess(time.time(), deadline, "the deleted VM's series did not expire")
            time.sleep(0.2)
        self.assertGreaterEqual(time.time() - t0, 1.0)

    def test_exposition_passes_promtool(self):
        if not shutil.which("promtool"):
            self.fail("promtool is missing (scripts/install-deps installs prometheus)")
        self.mkhost()
        self.wait_series("govcloud_host_cpu_seconds_total")
        r = subprocess.run(["promtool", "check", "metrics"], input=self.metrics().encode(),
                           capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # every family has HELP and TYPE once, and its samples follow in one block
        text = self.metrics()
        seen, current = set(), None
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                name = line.split()[2]
                self.assertNotIn(name, seen, "family split or repeated")
                seen.add(name)
                current = name
            elif line and not line.startswith("#"):
                m = SAMPLE.match(line).group(1)
                self.assertTrue(m == current or m.startswith(current + "_"), (m, current))

    def test_who_sees_the_monitoring_series(self):
        self.mkhost()
        self.wait_series("govcloud_host_up")
        # anonymous: the daemon's own metrics only, and a note
        r = self.d.request("GET", "/metrics")
        self.assertEqual(r.status, 200)
        text = r.body.decode()
        self.assertIn("govcloud_http_requests_total", text)
        self.assertNotIn("govcloud_host_up", text)
        self.assertIn("need a bearer token", text)
        # a platform role (auditor) with an API key: everything
        aud = self.mkuser_("auditor")
        self.assertIn("govcloud_host_up", self.metrics(token=aud["token"]))
        key = self.ok("POST", "/v1/api-keys", {"name": uniq("k-")}, token=aud["token"],
                      want=201)
        self.assertIn("govcloud_host_up", self.metrics(token=key["key"] if "key" in key
                                                       else key["secret"]))
        # a department user: 403; a bad token: 401
        dept = self.mkdept_()
        du = self.mkuser_("department_user", dept["id"])
        self.assertProblem(self.d.request("GET", "/metrics", token=du["token"]), 403,
                           "platform roles")
        self.assertProblem(self.d.request("GET", "/metrics", token="nope"), 401)


class TestChecks(Base):

    def mkcheck(self, token=None, want=201, **body):
        body.setdefault("name", uniq("chk-"))
        r = self.call("POST", "/v1/checks", body, token)
        self.assertEqual(r.status, want, r)
        return r.json

    def wait_status(self, cid, pred, timeout=15):
        deadline = time.time() + timeout
        while True:
            c = self.ok("GET", f"/v1/checks/{cid}")
            if c["status"]["checked_at"] and pred(c["status"]):
                return c
            if time.time() > deadline:
                self.fail(f"check {cid} status not reached: {c}")
            time.sleep(0.2)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        t = cls("run")
        cls.dept = t.mkdept_()
        cls.du = t.mkuser_("department_user", cls.dept["id"])

    def test_tcp_up_and_refused(self):
        up = self.mkcheck(department_id=self.dept["id"], kind="tcp", host="127.0.0.1",
                          port=self.srv.port(self.srv.tcp), interval_seconds=1)
        self.assertEqual((up["kind"], up["host"], up["port"], up["timeout_ms"], up["enabled"]),
                         ("tcp", "127.0.0.1", self.srv.port(self.srv.tcp), 1000, True), up)
        c = self.wait_status(up["id"], lambda s: s["up"] is True)
        self.assertEqual(c["status"]["last_error"], "")
        self.assertGreaterEqual(c["status"]["latency_ms"], 0)
        lab = dict(check_id=up["id"], department_id=self.dept["id"])
        self.wait_series("govcloud_check_up", pred=lambda g: g[0][1] == 1, **lab)
        self.wait_series("govcloud_check_latency_seconds", **lab)
        down = self.mkcheck(department_id=self.dept["id"], kind="tcp", host="127.0.0.1",
                            port=self.srv.closed_port, interval_seconds=1)
        c = self.wait_status(down["id"], lambda s: s["up"] is False)
        self.assertEqual(c["status"]["reason"], "refused", c)
        self.assertIn("Connection refused", c["status"]["last_error"])
        self.wait_series("govcloud_check_error", reason="refused", check_id=down["id"])
        self.wait_series("govcloud_check_up", pred=lambda g: g[0][1] == 0, check_id=down["id"])

    def test_http_status_latency_and_recovery(self):
        base = f"http://127.0.0.1:{self.srv.http_port}"
        ok = self.mkcheck(department_id=self.dept["id"], kind="http", url=base + "/health",
                          interval_seconds=1)
        self.assertEqual((ok["expect_status"], ok["tls_verify"]), (200, True))
        self.wait_status(ok["id"], lambda s: s["up"] is True)
        bad = self.mkcheck(department_id=self.dept["id"], kind="http", url=base + "/fail",
                           interval_seconds=1)
        c = self.wait_status(bad["id"], lambda s: s["up"] is False)
        self.assertEqual(c["status"]["reason"], "bad_status")
        self.assertIn("HTTP status 500, expected 200", c["status"]["last_error"])
        self.wait_series("govcloud_check_error", check_id=bad["id"], reason="bad_status")
        # expecting 500 makes it up, and the error series goes away
        r = self.call("PATCH", f"/v1/checks/{bad['id']}", {"expect_status": 500},
                      headers={"If-Match": f'"{c["version"]}"'})
        self.assertEqual(r.status, 200, r)
        self.wait_status(bad["id"], lambda s: s["up"] is True)
        deadline = time.time() + 5
        while self.series("govcloud_check_error", check_id=bad["id"]):
            self.assertLess(time.time(), deadline, "error series stayed after recovery")
            time.sleep(0.2)

    def test_hanging_and_garbage_targets(self):
        hang = self.mkcheck(department_id=self.dept["id"], kind="http",
                            url=f"http://127.0.0.1:{self.srv.port(self.srv.hang)}/",
                            interval_seconds=2, timeout_ms=1500)
        quick = self.mkcheck(department_id=self.dept["id"], kind="tcp", host="127.0.0.1",
                             port=self.srv.port(self.srv.tcp), interval_seconds=1)
        t0 = time.time()
        c = self.wait_status(hang["id"], lambda s: s["up"] is False)
        self.assertEqual(c["status"]["reason"], "timeout", c)
        self.assertIn("within 1500 ms", c["status"]["last_error"])
        self.assertGreaterEqual(time.time() - t0, 1.4)
        self.wait_series("govcloud_check_error", check_id=hang["id"], reason="timeout")
        # the hanging target delayed no other check: the quick one ran meanwhile, twice
        q = self.ok("GET", f"/v1/checks/{quick['id']}")
        self.assertTrue(q["status"]["up"], q)
        garbage = self.mkcheck(department_id=self.dept["id"], kind="http",
                               url=f"http://127.0.0.1:{self.srv.port(self.srv.garbage)}/",
                               interval_seconds=1)
        c = self.wait_status(garbage["id"], lambda s: s["up"] is False)
        self.assertEqual(c["status"]["reason"], "bad_response", c)
        self.assertTrue(c["status"]["last_error"])
        log = self.d.read_log()
        self.assertIn(f"check {hang['id']} (http) is down", log)

    def test_icmp(self):
        r = self.call("POST", "/v1/checks", {"name": uniq("ping-"), "kind": "icmp",
                                             "host": "127.0.0.1",
                                             "department_id": self.dept["id"],
                                             "interval_seconds": 1})
        can_raw = os.geteuid() == 0
        if not can_raw:
            lo, hi = map(int, open("/proc/sys/net/ipv4/ping_group_range").read().split())
            can_raw = lo <= os.getegid() <= hi
        if can_raw:
            self.assertEqual(r.status, 201, r)
            self.wait_status(r.json["id"], lambda s: s["up"] is True)
        else:
            self.assertProblem(r, 400, "icmp checks are not available")
            self.assertEqual(r.json["field"], "kind")

    def test_protected_addresses(self):
        tok = self.du["token"]
        cases = [
            ({"kind": "tcp", "host": "127.0.0.1", "port": 22}, "host"),
            ({"kind": "tcp", "host": "localhost", "port": 22}, "host"),
            ({"kind": "tcp", "host": "169.254.169.254", "port": 80}, "host"),
            ({"kind": "tcp", "host": "0.0.0.0", "port": 80}, "host"),
            ({"kind": "tcp", "host": "10.99.3.4", "port": 80}, "host"),   # protected_networks
            ({"kind": "tcp", "host": "fd99::1", "port": 80}, "host"),
            ({"kind": "http", "url": "http://127.0.0.1:8080/"}, "url"),
            ({"kind": "http", "url": "http://[::1]/"}, "url"),
            ({"kind": "http", "url": "http://[::ffff:127.0.0.1]/"}, "url"),
            ({"kind": "http", "url": "https://169.254.169.254/latest/meta-data"}, "url"),
        ]
        for body, field in cases:
            r = self.call("POST", "/v1/checks", {"name": uniq("x-"), **body}, tok)
            self.assertProblem(r, 400, "only platform roles")
            self.assertEqual(r.json["field"], field, (body, r.json))
        # ordinary addresses are fine for a department
        c = self.mkcheck(token=tok, kind="tcp", host="10.98.0.1", port=80)
        self.assertEqual(c["department_id"], self.dept["id"])
        # a platform role may target loopback; a department user may not take it over
        adm = self.mkcheck(department_id=self.dept["id"], kind="tcp", host="127.0.0.1",
                           port=self.srv.port(self.srv.tcp))
        r = self.call("PATCH", f"/v1/checks/{adm['id']}", {"name": uniq("renamed-")}, tok)
        self.assertProblem(r, 400, "only platform roles")
        r = self.call("PATCH", f"/v1/checks/{c['id']}", {"host": "127.0.0.2"}, tok)
        self.assertProblem(r, 400, "only platform roles")

    def test_validation(self):
        d = self.dept["id"]
        for body, field in [
            ({"kind": "smtp", "host": "a.example", "port": 25}, "kind"),
            ({"kind": "tcp", "host": "10.98.0.1"}, "port"),
            ({"kind": "tcp", "host": "10.98.0.1", "port": 70000}, "port"),
            ({"kind": "tcp", "port": 80}, "host"),
            ({"kind": "http"}, "url"),
            ({"kind": "http", "url": "ftp://10.98.0.1/"}, "url"),
            ({"kind": "http", "url": "not a url"}, "url"),
            ({"kind": "tcp", "host": "10.98.0.1", "port": 80, "interval_seconds": 1,
              "timeout_ms": 5000}, "timeout_ms"),
            ({"kind": "tcp", "host": "10.98.0.1", "port": 80, "timeout_ms": 10}, "timeout_ms"),
            ({"kind": "tcp", "host": "10.98.0.1", "port": 80, "bogus": 1}, "bogus"),
            ({"kind": "tcp", "host": "10.98.0.1", "port": 80, "department_id": "nope"},
             "department_id"),
        ]:
            body.setdefault("department_id", d)
            r = self.call("POST", "/v1/checks", {"name": uniq("v-"), **body})
            self.assertProblem(r, 400)
            self.assertEqual(r.json.get("field"), field, (body, r.json))
        # admin without department_id: told to give one
        r = self.call("POST", "/v1/checks", {"name": "x", "kind": "tcp", "host": "10.98.0.1",
                                             "port": 1})
        self.assertProblem(r, 400, "department_id")
        # duplicate name in a department: 409
        name = uniq("dup-")
        self.mkcheck(name=name, department_id=d, kind="tcp", host="10.98.0.1", port=1)
        r = self.call("POST", "/v1/checks", {"name": name, "department_id": d, "kind": "tcp",
                                             "host": "10.98.0.1", "port": 1})
        self.assertProblem(r, 409)

    def test_crud_audit_scoping_and_series_removal(self):
        tok = self.du["token"]
        c = self.mkcheck(token=tok, kind="http", url="http://10.98.0.1:9/",
                         interval_seconds=60, timeout_ms=200, tls_verify=False)
        self.assertEqual(self.ok("GET", f"/v1/checks/{c['id']}", token=tok)["url"],
                         "http://10.98.0.1:9/")
        items = self.ok("GET", f"/v1/checks?department_id={self.dept['id']}&kind=http",
                        token=tok)["items"]
        self.assertIn(c["id"], [i["id"] for i in items])
        # another department sees nothing of it
        other = self.mkdept_()
        ou = self.mkuser_("department_user", other["id"])
        self.assertProblem(self.call("GET", f"/v1/checks/{c['id']}", token=ou["token"]), 404)
        self.assertNotIn(c["id"], [i["id"] for i in
                                   self.ok("GET", "/v1/checks", token=ou["token"])["items"]])
        self.assertProblem(self.call("DELETE", f"/v1/checks/{c['id']}", token=ou["token"]),
                           404)
        # an auditor reads but does not write
        aud = self.mkuser_("auditor")
        self.ok("GET", f"/v1/checks/{c['id']}", token=aud["token"])
        self.assertProblem(self.call("PATCH", f"/v1/checks/{c['id']}", {"enabled": False},
                                     token=aud["token"]), 403)
        # PATCH with a stale If-Match: 412; kind cannot change
        self.assertProblem(self.call("PATCH", f"/v1/checks/{c['id']}", {"enabled": False},
                                     token=tok, headers={"If-Match": '"99"'}), 412)
        self.assertProblem(self.call("PATCH", f"/v1/checks/{c['id']}", {"kind": "tcp"},
                                     token=tok), 400)
        u = self.ok("PATCH", f"/v1/checks/{c['id']}", {"enabled": False, "interval_seconds": 5},
                    token=tok)
        self.assertEqual((u["enabled"], u["interval_seconds"], u["version"]), (False, 5, 2))
        # series of a deleted check leave /metrics at once
        live = self.mkcheck(department_id=self.dept["id"], kind="tcp", host="127.0.0.1",
                            port=self.srv.port(self.srv.tcp), interval_seconds=1)
        self.wait_series("govcloud_check_up", check_id=live["id"])
        r = self.call("DELETE", f"/v1/checks/{live['id']}")
        self.assertEqual(r.status, 204, r)
        self.assertEqual(self.series("govcloud_check_up", check_id=live["id"]), [])
        self.assertEqual(self.call("DELETE", f"/v1/checks/{c['id']}", token=tok).status, 204)
        acts = [e["action"] for e in self.events(resource_id=c["id"], outcome="success")]
        self.assertEqual(sorted(acts), ["check.create", "check.delete", "check.update"])


if __name__ == "__main__":
    unittest.main()
