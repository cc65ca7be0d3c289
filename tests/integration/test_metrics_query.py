"""The time-series store through the API: samples injected as a collector would emit them
([tsdb] test_ingest, test-only), queried back with every aggregation, matchers and
department scoping; bad input as problem+json; kill -9 during ingestion then restart."""

import os
import sqlite3
import threading
import time
import unittest
import urllib.parse
import uuid

from gcharness import Daemon, DaemonTestCase

PASSWORD = "User-Passw0rd!"
STEP = 15000


def q(path, **params):
    items = []
    for k, v in params.items():
        if isinstance(v, list):
            items += [(k, x) for x in v]
        else:
            items.append((k, v))
    return path + "?" + urllib.parse.urlencode(items)


def sample(metric, labels, t_ms, value):
    return {"metric": metric, "labels": labels, "t_ms": t_ms, "value": value}


class MetricsQueryTest(DaemonTestCase):
    daemon_extra = ("--set", "tsdb.test_ingest=true", "--set", "tsdb.flush_interval=1")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.metric = "govcloud_test_cpu_" + uuid.uuid4().hex[:8]
        a = cls.mkdept_cls("A")
        a1 = cls.mkdept_cls("A1", a["id"])
        b = cls.mkdept_cls("B")
        cls.depts = {"A": a["id"], "A1": a1["id"], "B": b["id"]}
        cls.tokens = {}
        for name, role, dept in (("aadm", "department_admin", a["id"]),
                                 ("a1usr", "department_user", a1["id"]),
                                 ("busr", "department_user", b["id"]),
                                 ("aud", "auditor", None)):
            body = {"username": name, "password": PASSWORD, "role": role}
            if dept:
                body["department_id"] = dept
            r = cls.d.request("POST", "/v1/users", body, token=cls.admin)
            assert r.status == 201, r
            cls.tokens[name] = cls.d.login(name, PASSWORD)
        # one hour of samples at 15 s for four series: value = index * k
        cls.t0 = (int(time.time() * 1000) - 3600 * 1000) // 60000 * 60000
        cls.series = {"vm1": ("A", 1), "vm2": ("A1", 2), "vm3": ("B", 3), "host1": (None, 4)}
        smp = []
        for res, (dept, k) in cls.series.items():
            labels = {"resource_id": res}
            if dept:
                labels["department_id"] = cls.depts[dept]
            for i in range(240):
                smp.append(sample(cls.metric, labels, cls.t0 + i * STEP, i * k))
        r = cls.d.request("POST", "/v1/metrics/test-samples", {"samples": smp, "flush": True},
                          token=cls.admin)
        assert r.status == 200 and r.json["accepted"] == len(smp), r

    @classmethod
    def mkdept_cls(cls, name, parent=None):
        body = {"name": name + "-" + uuid.uuid4().hex[:6]}
        if parent:
            body["parent_id"] = parent
        r = cls.d.request("POST", "/v1/departments", body, token=cls.admin)
        assert r.status == 201, r
        return r.json

    def query(self, token=None, **params):
        params.setdefault("metric", self.metric)
        return self.req("GET", q("/v1/metrics/query", **params), token=token or self.admin)

    def by_resource(self, r):
        return {s["labels"]["resource_id"]: s["points"] for s in r.json["series"]}

    def test_aggregations(self):
        start, end = self.t0 // 1000, (self.t0 + 240 * STEP) // 1000
        # minute buckets hold samples i = 4m .. 4m+3 with value i * k
        for agg, f in (("avg", lambda m: (4 * m + 1.5)), ("min", lambda m: 4 * m),
                       ("max", lambda m: 4 * m + 3), ("sum", lambda m: 16 * m + 6),
                       ("p95", lambda m: 4 * m + 2.85)):
            r = self.query(start=start, end=end, step="1m", agg=agg)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json["agg"], agg)
            self.assertEqual(r.json["step"], 60)
            pts = self.by_resource(r)
            self.assertEqual(set(pts), set(self.series))
            for res, (_, k) in self.series.items():
                self.assertEqual(len(pts[res]), 60, (agg, res))
                for m, (t, v) in enumerate(pts[res]):
                    self.assertEqual(t, start + 60 * m)
                    self.assertAlmostEqual(v, f(m) * k, places=6, msg=(agg, res, m))

    def test_rfc3339_and_default_step(self):
        r = self.query(start=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.t0 / 1000)),
                       end=str((self.t0 + 240 * STEP) / 1000), agg="max")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["step"], 15)  # an hour / 1000 points, at least 15 s
        self.assertEqual(len(self.by_resource(r)["vm1"]), 240)

    def test_matchers(self):
        start, end = self.t0 // 1000, (self.t0 + 240 * STEP) // 1000
        r = self.query(start=start, end=end, step="1h", **{"match[]": 'resource_id="vm3"'})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(set(self.by_resource(r)), {"vm3"})
        r = self.query(start=start, end=end, step="1h",
                       **{"match[]": ['resource_id!="vm3"', "department_id="]})
        self.assertEqual(set(self.by_resource(r)), {"host1"})
        r = self.query(start=start, end=end, step="1h",
                       **{"match[]": f'department_id="{self.depts["A1"]}"'})
        self.assertEqual(set(self.by_resource(r)), {"vm2"})

    def test_scoping(self):
        start, end = self.t0 // 1000, (self.t0 + 240 * STEP) // 1000
        for who, want in (("aadm", {"vm1", "vm2"}), ("a1usr", {"vm2"}), ("busr", {"vm3"}),
                          ("aud", set(self.series))):
            r = self.query(token=self.tokens[who], start=start, end=end, step="1h")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(set(self.by_resource(r)), want, who)
            r = self.req("GET", q("/v1/metrics/series", metric=self.metric),
                         token=self.tokens[who])
            self.assertEqual(r.status, 200, r)
            self.assertEqual({s["labels"]["resource_id"] for s in r.json["items"]}, want, who)
        # a department user cannot widen the scope with a matcher
        r = self.query(token=self.tokens["busr"], start=start, end=end, step="1h",
                       **{"match[]": f'department_id="{self.depts["A"]}"'})
        self.assertEqual(r.json["series"], [])

    def test_series_paging(self):
        got, cursor = [], None
        while True:
            params = {"metric": self.metric, "limit": 3}
            if cursor:
                params["cursor"] = cursor
            r = self.req("GET", q("/v1/metrics/series", **params), token=self.admin)
            self.assertEqual(r.status, 200, r)
            got += [s["labels"]["resource_id"] for s in r.json["items"]]
            cursor = r.json["next_cursor"]
            if not cursor:
                break
        self.assertEqual(sorted(got), sorted(self.series))

    def test_bad_input(self):
        now = int(time.time())
        cases = [
            (dict(start="yesterday"), "start", "not a time"),
            (dict(end="2026-13-01T00:00:00Z"), "end", "not a time"),
            (dict(start=now, end=now - 10), "end", "end must be after start"),
            (dict(start=now - 30 * 86400, end=now, step="15s"), "step", "step too small"),
            (dict(step="0"), "step", "not a duration"),
            (dict(step="5x"), "step", "not a duration"),
            (dict(agg="median"), "agg", "unknown aggregation"),
            (dict(metric=""), "metric", "required"),
            ({"match[]": "9x=1"}, "match[]", "not a label name"),
            ({"match[]": "novalue"}, "match[]", "name=\"value\""),
            (dict(agg="p95", start=now - 20 * 86400, end=now, step="1h"), "start",
             "raw samples"),
        ]
        for params, field, detail in cases:
            r = self.query(**params)
            self.assertProblem(r, 400, detail)
            self.assertEqual(r.json.get("field"), field, (params, r.json))
        r = self.req("GET", "/v1/metrics/query?metric=x&bogus=1", token=self.admin)
        self.assertProblem(r, 400, "unknown query parameter")
        r = self.req("GET", "/v1/metrics/query?metric=x")
        self.assertProblem(r, 401)

    def test_injection_rules(self):
        r = self.req("POST", "/v1/metrics/test-samples",
                     {"samples": [sample("m", {}, 1, 1)]}, token=self.tokens["aud"])
        self.assertProblem(r, 403)
        for bad in ({"samples": "x"}, {"samples": [{"metric": "m", "t_ms": "1", "value": 1}]},
                    {"samples": [{"metric": "m", "t_ms": 1, "value": "one"}]},
                    {"samples": [{"metric": "m", "t_ms": 1, "value": 1, "labels": {"a": 1}}]}):
            r = self.req("POST", "/v1/metrics/test-samples", bad, token=self.admin)
            self.assertProblem(r, 400)
        # NaN and infinities are stored and come back as strings; NaN is not aggregated
        m = "govcloud_test_special_" + uuid.uuid4().hex[:8]
        t = self.t0
        r = self.req("POST", "/v1/metrics/test-samples", {"flush": True, "samples": [
            sample(m, {}, t, "+Inf"), sample(m, {}, t + 60000, "NaN"),
            sample(m, {}, t + 61000, 5), sample(m, {}, t + 120000, "-Inf")]}, token=self.admin)
        self.assertEqual(r.status, 200, r)
        r = self.query(metric=m, start=t // 1000, end=t // 1000 + 180, step=60, agg="max")
        self.assertEqual(r.json["series"][0]["points"],
                         [[t // 1000, "+Inf"], [t // 1000 + 60, 5], [t // 1000 + 120, "-Inf"]])


class IngestOffByDefaultTest(DaemonTestCase):
    def test_404_unless_enabled(self):
        r = self.req("POST", "/v1/metrics/test-samples",
                     {"samples": [sample("m", {}, 1, 1)]}, token=self.admin)
        self.assertProblem(r, 404, "test_ingest")


class StoreDisabledTest(DaemonTestCase):
    daemon_extra = ("--set", "tsdb.enabled=false")

    def test_503_when_disabled(self):
        r = self.req("GET", "/v1/metrics/query?metric=m", token=self.admin)
        self.assertProblem(r, 503, "disabled")
        r = self.req("GET", "/v1/metrics/series", token=self.admin)
        self.assertProblem(r, 503, "disabled")


class KillDuringIngestTest(unittest.TestCase):
    """kill -9 while a client streams samples: after the restart every series holds a gap-free
    prefix of what was sent, everything acknowledged more than two flush intervals before
    the kill is there, the database is intact, and ingestion goes on."""

    def test_kill9_during_ingest(self):
        extra = ("--set", "tsdb.test_ingest=true", "--set", "tsdb.flush_interval=1")
        d = Daemon(extra=extra).start()
        try:
            token = d.login()
            metric = "govcloud_test_crash_" + uuid.uuid4().hex[:8]
            t0 = (int(time.time() * 1000) - 6 * 3600 * 1000) // 60000 * 60000
            acked = []  # (wall time of the ack, last sample index)
            stop = threading.Event()

            def ingest():
                i = 0
                while not stop.is_set():
                    batch = []
                    for k in range(50):
                        for s in range(20):
                            batch.append(sample(metric, {"resource_id": f"vm{s}"},
                                                t0 + (i + k) * 1000, float(i + k)))
                    try:
                        r = d.request("POST", "/v1/metrics/test-samples", {"samples": batch},
                                      token=token, timeout=5)
                    except OSError:
                        return
                    if r.status != 200:
                        return
                    i += 50
                    acked.append((time.monotonic(), i))

            th = threading.Thread(target=ingest)
            th.start()
            time.sleep(4)
            kill_at = time.monotonic()
            d.kill9()
            stop.set()
            th.join()
            self.assertGreater(len(acked), 5)
            sure = max([n for (t, n) in acked if t < kill_at - 2.5], default=0)
            self.assertGreater(sure, 0)
            sent = acked[-1][1] + 50  # a batch may be in flight at the kill
            con = sqlite3.connect(d.db_path)
            self.assertEqual(con.execute("PRAGMA integrity_check").fetchone()[0], "ok")
            con.close()
            d.start()
            token = d.login()
            start = t0 // 1000
            end = start + sent + 100
            series = {}
            for a in range(start, end, 10000):  # at most 11,000 points per query
                r = d.request("GET", q("/v1/metrics/query", metric=metric, start=a,
                                       end=min(a + 10000, end), step=1), token=token)
                self.assertEqual(r.status, 200, r)
                for s in r.json["series"]:
                    series.setdefault(s["labels"]["resource_id"], []).extend(s["points"])
            self.assertEqual(len(series), 20)
            for res, pts in series.items():
                n = len(pts)
                # a gap-free prefix, each value the one sent for its time
                self.assertEqual(pts, [[start + i, i] for i in range(n)], res)
                self.assertGreaterEqual(n, sure, res)
            # the daemon goes on: newer samples are taken, older ones dropped as out of order
            more = [sample(metric, {"resource_id": "vm0"}, t0 + (sent + 10) * 1000, -1.0),
                    sample(metric, {"resource_id": "vm0"}, t0, 99.0)]
            r = d.request("POST", "/v1/metrics/test-samples", {"samples": more, "flush": True},
                          token=token)
            self.assertEqual(r.status, 200, r)
            r = d.request("GET", q("/v1/metrics/query", metric=metric, start=start,
                                   end=start + sent + 20, step=10,
                                   **{"match[]": 'resource_id="vm0"'}), token=token)
            pts = r.json["series"][0]["points"]
            self.assertEqual(pts[-1], [start + sent + 10, -1])
            self.assertEqual(pts[0], [start, 4.5])  # avg of 0..9: the old 99 was dropped
            self.assertEqual(d.stop(), 0)
            log = d.read_log()
            for bad in ("runtime error:", "AddressSanitizer", "LeakSanitizer"):
                self.assertNotIn(bad, log)
        finally:
            d.cleanup()


if __name__ == "__main__":
    unittest.main()
