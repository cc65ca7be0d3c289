"""Prometheus end to end: a real Prometheus from Debian's package (run by hand, its own
data directory, loopback port) scrapes govcloudd's /metrics every second with an API key of
an auditor (the monitoring series need a platform role), and the series of a host and of a
service check are read back through Prometheus' HTTP API with govcloud's labels. Prometheus
is stopped afterwards."""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

from gcharness import DaemonTestCase, free_port


class PrometheusTest(DaemonTestCase):
    daemon_extra = ("--set", "monitor.interval=1")

    @classmethod
    def setUpClass(cls):
        if not shutil.which("prometheus"):
            raise AssertionError("prometheus is missing (scripts/install-deps installs it)")
        super().setUpClass()
        cls.tmp = tempfile.mkdtemp(prefix="govcloud-prom-")
        cls.prom = None

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.prom and cls.prom.poll() is None:
                cls.prom.terminate()
                try:
                    cls.prom.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    cls.prom.kill()
                    cls.prom.wait()
        finally:
            shutil.rmtree(cls.tmp, ignore_errors=True)
            super().tearDownClass()

    def api(self, path, **q):
        url = f"http://127.0.0.1:{self.prom_port}{path}?" + urllib.parse.urlencode(q)
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.loads(r.read())

    def test_prometheus_scrapes_and_answers(self):
        tok = self.d.login()
        # a platform role's API key for the scrape
        r = self.req("POST", "/v1/users", {"username": "prom-reader", "role": "auditor",
                                           "password": "Reader-Passw0rd!"}, token=tok)
        self.assertEqual(r.status, 201, r)
        aud = self.d.login("prom-reader", "Reader-Passw0rd!")
        r = self.req("POST", "/v1/api-keys", {"name": "prometheus"}, token=aud)
        self.assertEqual(r.status, 201, r)
        key = r.json.get("key") or r.json.get("secret")
        keyfile = os.path.join(self.tmp, "key")
        with open(keyfile, "w") as f:
            f.write(key)
        # a host and a service check to read back
        h = self.req("POST", "/v1/hosts", {"name": "prom-h", "uri": "test:///default?prom",
                                           "zone": "prom-zone"}, token=tok).json
        dept = self.req("POST", "/v1/departments", {"name": "prom-dept"}, token=tok).json
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(16)
        self.addCleanup(lsock.close)
        chk = self.req("POST", "/v1/checks", {
            "name": "prom-tcp", "department_id": dept["id"], "kind": "tcp",
            "host": "127.0.0.1", "port": lsock.getsockname()[1], "interval_seconds": 1},
            token=tok)
        self.assertEqual(chk.status, 201, chk)
        chk = chk.json
        self.prom_port = free_port()
        cfg = os.path.join(self.tmp, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write(f"""global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: govcloud
    metrics_path: /metrics
    authorization:
      type: Bearer
      credentials_file: {keyfile}
    static_configs:
      - targets: ['127.0.0.1:{self.d.port}']
""")
        log = open(os.path.join(self.tmp, "prometheus.log"), "wb")
        self.addCleanup(log.close)
        type(self).prom = subprocess.Popen(
            ["prometheus", f"--config.file={cfg}",
             f"--storage.tsdb.path={os.path.join(self.tmp, 'data')}",
             f"--web.listen-address=127.0.0.1:{self.prom_port}"],
            stdout=log, stderr=log)
        deadline = time.time() + 60

        def last_log():
            with open(os.path.join(self.tmp, "prometheus.log"), "rb") as f:
                return f.read().decode(errors="replace")[-3000:]
        # the target is up, and a host series comes back with its labels
        while True:
            self.assertIsNone(self.prom.poll(), "prometheus exited:\n" + last_log())
            try:
                res = self.api("/api/v1/query", query=f'govcloud_host_up{{host_id="{h["id"]}"}}')
                if res["data"]["result"]:
                    break
            except OSError:
                pass
            self.assertLess(time.time(), deadline, "no series in Prometheus:\n" + last_log())
            time.sleep(0.5)
        s = res["data"]["result"][0]
        self.assertEqual(s["metric"]["zone"], "prom-zone")
        self.assertEqual(s["metric"]["job"], "govcloud")
        self.assertEqual(s["value"][1], "1")
        targets = self.api("/api/v1/targets")["data"]["activeTargets"]
        self.assertEqual([t["health"] for t in targets], ["up"], targets)
        # the check's series with check_id and department_id
        while True:
            res = self.api("/api/v1/query",
                           query=f'govcloud_check_up{{check_id="{chk["id"]}"}}')
            if res["data"]["result"]:
                break
            self.assertLess(time.time(), deadline, "no check series:\n" + last_log())
            time.sleep(0.5)
        m = res["data"]["result"][0]
        self.assertEqual(m["metric"]["department_id"], dept["id"])
        self.assertEqual(m["value"][1], "1")
        # a range query over the counter: several scrapes are stored
        time.sleep(2.5)
        now = time.time()
        rng = self.api("/api/v1/query_range", query="govcloud_process_uptime_seconds",
                       start=now - 10, end=now, step=1)
        vals = rng["data"]["result"][0]["values"]
        self.assertGreaterEqual(len(vals), 3, vals)
        self.assertLess(float(vals[0][1]), float(vals[-1][1]))
        self.prom.terminate()
        self.assertEqual(self.prom.wait(timeout=20), 0)


if __name__ == "__main__":
    unittest.main()
