"""The whole monitoring path in one daemon: the collectors' samples reach both sinks — the
current values on /metrics and the time-series store — and come back through
GET /v1/metrics/query with the collectors' labels and department scoping. Runs on libvirt's
test driver (hosts and VMs in the daemon's own process)."""

import time
import unittest
import urllib.parse

from gcharness import DaemonTestCase


class MetricsPipelineTest(DaemonTestCase):
    daemon_extra = ("--set", "monitor.interval=1", "--set", "tsdb.flush_interval=1")

    def wait(self, what, fn, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = fn()
            if v:
                return v
            time.sleep(0.3)
        self.fail(f"timed out after {timeout} s waiting for {what}")

    def query(self, token=None, **q):
        r = self.req("GET", "/v1/metrics/query?" + urllib.parse.urlencode(q, doseq=True),
                     token=token or self.admin)
        self.assertEqual(r.status, 200, r)
        return r.json

    def test_collected_samples_are_stored_and_queried(self):
        r = self.req("POST", "/v1/hosts", {"name": "mp1", "uri": "test:///default?mp1"},
                     token=self.admin)
        self.assertEqual(r.status, 201, r)
        host = r.json
        t0 = int(time.time()) - 2
        # the host's up series, collected every second, stored, then queried back
        res = self.wait("govcloud_host_up in the store", lambda: (lambda j: j if j["series"]
                                                                   else None)(
            self.query(metric="govcloud_host_up", **{"match[]": f'host_id="{host["id"]}"'},
                       start=t0, end=int(time.time()) + 1, step=1, agg="max")), 30)
        self.assertEqual(len(res["series"]), 1, res)
        s = res["series"][0]
        self.assertEqual(s["labels"]["host_id"], host["id"])
        self.assertEqual(s["labels"]["zone"], "default")
        self.assertTrue(all(p[1] == 1 for p in s["points"]), s)
        self.assertGreaterEqual(len(s["points"]), 1)
        # the same series is a current value on /metrics
        m = self.req("GET", "/metrics", token=self.admin)
        self.assertEqual(m.status, 200)
        self.assertIn(f'govcloud_host_up{{host_id="{host["id"]}",zone="default"}} 1',
                      m.body.decode())
        # department users see only their department's series: a host series has none
        dept = self.mkdept("指标 " + str(time.time_ns()))
        name = "mp-" + str(time.time_ns())[-8:]
        self.mkuser(name, "department_user", dept["id"])
        user = self.d.login(name, "User-Passw0rd!")
        res = self.query(token=user, metric="govcloud_host_up", start=t0,
                         end=int(time.time()) + 1, step=1)
        self.assertEqual(res["series"], [], res)


if __name__ == "__main__":
    unittest.main()
