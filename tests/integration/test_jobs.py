"""Jobs: submission, progress, success and failure, cancellation, validation, listing,
metrics, the audit events of a job's end, and what happens to running jobs when the daemon
is killed or stopped (test job kinds test.sleep, resumable, and test.sleep_once, not)."""

import re
import shutil
import signal
import time
import unittest
import urllib.parse

from gcharness import Daemon, DaemonTestCase

TERMINAL = ("succeeded", "failed", "cancelled")
STATES = ("queued", "running", "succeeded", "failed", "cancelled")


def sanitizer_report(log):
    for bad in ("runtime error:", "AddressSanitizer", "LeakSanitizer"):
        if bad in log:
            return bad
    return None


class JobHelpers:
    """Mixin: needs self.d (a Daemon) and self.admin (a token)."""

    def submit(self, params=None, kind="test.sleep", token=None, d=None):
        d = d or self.d
        body = {"kind": kind}
        if params is not None:
            body["params"] = params
        r = d.request("POST", "/v1/jobs", body, token=token or self.admin)
        self.assertEqual(r.status, 202, r)
        return r.json

    def get(self, jid, token=None, d=None):
        d = d or self.d
        r = d.request("GET", f"/v1/jobs/{jid}", token=token or self.admin)
        self.assertEqual(r.status, 200, r)
        return r.json

    def wait(self, jid, states=TERMINAL, timeout=20, token=None, d=None, pred=None):
        """Polls until the job is in one of states (and pred(job) holds); returns it."""
        deadline = time.time() + timeout
        while True:
            j = self.get(jid, token=token, d=d)
            if j["state"] in states and (pred is None or pred(j)):
                return j
            if time.time() > deadline:
                self.fail(f"job {jid} did not reach {states} in {timeout}s: {j}")
            time.sleep(0.01)

    def events_of(self, jid, token=None, d=None):
        d = d or self.d
        r = d.request("GET", "/v1/audit-events?" + urllib.parse.urlencode(
            {"resource_id": jid, "limit": 500}), token=token or self.admin)
        self.assertEqual(r.status, 200, r)
        return r.json["items"]

    def settle(self, d=None):
        """Cancels every job that has not ended and waits until all have."""
        d = d or self.d
        r = d.request("GET", "/v1/jobs?limit=500", token=self.admin)
        for j in r.json["items"]:
            if j["state"] not in TERMINAL:
                d.request("POST", f"/v1/jobs/{j['id']}/cancel", token=self.admin)
        for j in r.json["items"]:
            if j["state"] not in TERMINAL:
                self.wait(j["id"], d=d)


class TestJobs(DaemonTestCase, JobHelpers):
    daemon_extra = ("--set", "jobs.workers=2")

    def tearDown(self):
        self.settle()

    def test_sleep_runs_to_success_with_progress(self):
        r = self.d.request("POST", "/v1/jobs",
                           {"kind": "test.sleep", "params": {"steps": 5, "step_ms": 100}},
                           token=self.admin)
        self.assertEqual(r.status, 202, r)
        job = r.json
        self.assertEqual(r.headers.get("Location"), f"/v1/jobs/{job['id']}")
        self.assertEqual(r.headers.get("ETag"), f'"{job["version"]}"')
        self.assertIn(job["state"], ("queued", "running"))
        self.assertEqual(job["kind"], "test.sleep")
        self.assertEqual(job["params"], {"steps": 5, "step_ms": 100})
        self.assertIsNone(job["finished_at"])
        seen = []
        deadline = time.time() + 20
        while True:
            j = self.get(job["id"])
            seen.append((j["state"], j["progress"], j["version"]))
            if j["state"] in TERMINAL:
                break
            self.assertLess(time.time(), deadline, seen[-5:])
            time.sleep(0.01)
        self.assertEqual(j["state"], "succeeded", j)
        self.assertEqual(j["progress"], 100)
        self.assertEqual(j["result"], {"steps_done": 5})
        self.assertEqual(j["error"], "")
        self.assertEqual(j["attempts"], 1)
        self.assertIsNotNone(j["started_at"])
        self.assertIsNotNone(j["finished_at"])
        self.assertLessEqual(j["started_at"], j["finished_at"])
        progress = [p for _, p, _ in seen]
        self.assertEqual(progress, sorted(progress), "progress went backwards")
        versions = [v for _, _, v in seen]
        self.assertEqual(versions, sorted(versions), "version went backwards")
        middle = {p for s, p, _ in seen if s == "running" and 0 < p < 100}
        self.assertGreaterEqual(len(middle), 2, f"progress not observed increasing: {seen}")
        self.assertIn("running", [s for s, _, _ in seen])

    def test_fail_at_step(self):
        job = self.submit({"steps": 5, "step_ms": 20, "fail_at_step": 3})
        j = self.wait(job["id"])
        self.assertEqual(j["state"], "failed", j)
        self.assertIn("step 3", j["error"])
        self.assertLess(j["progress"], 100)
        self.assertEqual(j["result"], {})
        self.assertIsNotNone(j["finished_at"])

    def test_cancel_running_job(self):
        job = self.submit({"steps": 200, "step_ms": 50})
        self.wait(job["id"], ("running",))
        r = self.d.request("POST", f"/v1/jobs/{job['id']}/cancel", token=self.admin)
        self.assertEqual(r.status, 202, r)
        self.assertEqual(r.headers.get("Location"), f"/v1/jobs/{job['id']}")
        self.assertTrue(r.json["state"] == "cancelled" or r.json["cancel_requested"], r.json)
        t0 = time.time()
        j = self.wait(job["id"], timeout=5)
        self.assertEqual(j["state"], "cancelled", j)
        self.assertLess(time.time() - t0, 2, "a running job took long to notice its cancel")
        self.assertLess(j["progress"], 100)
        self.assertIsNotNone(j["finished_at"])
        self.assertIn("cancel", j["error"])

    def test_cancel_queued_job_at_once(self):
        fillers = [self.submit({"steps": 300, "step_ms": 50}) for _ in range(2)]
        for f in fillers:
            self.wait(f["id"], ("running",))
        job = self.submit({"steps": 5, "step_ms": 10})
        self.assertEqual(self.get(job["id"])["state"], "queued",
                         "with both workers busy a new job should wait")
        r = self.d.request("POST", f"/v1/jobs/{job['id']}/cancel", token=self.admin)
        self.assertEqual(r.status, 202, r)
        self.assertEqual(r.json["state"], "cancelled", "a queued job is cancelled at once")
        self.assertIsNotNone(r.json["finished_at"])
        for f in fillers:
            self.assertEqual(self.d.request("POST", f"/v1/jobs/{f['id']}/cancel",
                                            token=self.admin).status, 202)
        for f in fillers:
            self.assertEqual(self.wait(f["id"])["state"], "cancelled")
        time.sleep(0.3)   # the workers are free now: the cancelled job must not start
        j = self.get(job["id"])
        self.assertEqual(j["state"], "cancelled")
        self.assertEqual(j["attempts"], 0, j)
        self.assertIsNone(j["started_at"], j)

    def test_cancel_finished_job_is_409(self):
        ok = self.submit({"steps": 1, "step_ms": 0})
        bad = self.submit({"steps": 2, "step_ms": 0, "fail_at_step": 1})
        gone = self.submit({"steps": 300, "step_ms": 50})
        self.wait(gone["id"], ("running",))
        self.d.request("POST", f"/v1/jobs/{gone['id']}/cancel", token=self.admin)
        for job, state in ((ok, "succeeded"), (bad, "failed"), (gone, "cancelled")):
            with self.subTest(state=state):
                before = self.wait(job["id"])
                self.assertEqual(before["state"], state)
                r = self.d.request("POST", f"/v1/jobs/{job['id']}/cancel", token=self.admin)
                self.assertProblem(r, 409)
                self.assertTrue(r.json["type"].endswith("/conflict"), r.json)
                self.assertEqual(self.get(job["id"]), before, "a refused cancel changed the job")

    def test_unknown_or_missing_kind_is_400(self):
        before = len(self.d.request("GET", "/v1/jobs?limit=500", token=self.admin).json["items"])
        for body in ({"kind": "no.such.kind"}, {"kind": "vm.create"}, {"params": {}},
                     {"kind": 5}, {"kind": ""}, {"kind": "test.sleep", "extra": 1}):
            with self.subTest(body=body):
                r = self.d.request("POST", "/v1/jobs", body, token=self.admin)
                self.assertProblem(r, 400)
                want = "extra" if "extra" in body else "kind"
                self.assertEqual(r.json.get("field"), want, r.json)
        after = len(self.d.request("GET", "/v1/jobs?limit=500", token=self.admin).json["items"])
        self.assertEqual(before, after, "a refused POST /v1/jobs created a job")

    def test_bad_params_are_400_naming_the_param(self):
        cases = [({"steps": "x"}, "params.steps"), ({"steps": 0}, "params.steps"),
                 ({"steps": 1.5}, "params.steps"), ({"steps": 100000}, "params.steps"),
                 ({"step_ms": -1}, "params.step_ms"), ({"fail_at_step": "2"},
                                                       "params.fail_at_step"),
                 ({"bogus": 1}, "params.bogus"), ({"steps": None}, "params.steps")]
        for kind in ("test.sleep", "test.sleep_once"):
            for params, field in cases:
                with self.subTest(kind=kind, params=params):
                    r = self.d.request("POST", "/v1/jobs", {"kind": kind, "params": params},
                                       token=self.admin)
                    self.assertProblem(r, 400)
                    self.assertEqual(r.json.get("field"), field, r.json)
                    self.assertIn(field.split(".")[1], r.json["detail"])
        r = self.d.request("POST", "/v1/jobs", {"kind": "test.sleep", "params": [1]},
                           token=self.admin)
        self.assertProblem(r, 400)
        self.assertEqual(r.json.get("field"), "params", r.json)

    def test_list_filters(self):
        a = self.submit({"steps": 1, "step_ms": 0})
        b = self.submit({"steps": 1, "step_ms": 0}, kind="test.sleep_once")
        c = self.submit({"steps": 2, "step_ms": 0, "fail_at_step": 1}, kind="test.sleep_once")
        for j in (a, b, c):
            self.wait(j["id"])

        def ids(**q):
            r = self.d.request("GET", "/v1/jobs?" + urllib.parse.urlencode(dict(q, limit=500)),
                               token=self.admin)
            self.assertEqual(r.status, 200, r)
            for item in r.json["items"]:
                for k, v in q.items():
                    self.assertEqual(item[k], v, f"filter {k}={v} let through {item}")
            return [item["id"] for item in r.json["items"]]

        self.assertIn(a["id"], ids(kind="test.sleep"))
        self.assertNotIn(b["id"], ids(kind="test.sleep"))
        once = ids(kind="test.sleep_once")
        self.assertIn(b["id"], once)
        self.assertIn(c["id"], once)
        self.assertEqual(ids(kind="no.such.kind"), [])
        self.assertIn(a["id"], ids(state="succeeded"))
        self.assertNotIn(c["id"], ids(state="succeeded"))
        self.assertIn(c["id"], ids(state="failed"))
        both = ids(state="succeeded", kind="test.sleep_once")
        self.assertIn(b["id"], both)
        self.assertNotIn(a["id"], both)
        self.assertNotIn(c["id"], both)
        all_ids = ids()
        self.assertEqual(all_ids, sorted(all_ids), "jobs are not in creation order")
        # paging
        r = self.d.request("GET", "/v1/jobs?limit=1", token=self.admin)
        self.assertEqual(len(r.json["items"]), 1)
        self.assertIsNotNone(r.json["next_cursor"])
        r2 = self.d.request("GET", "/v1/jobs?limit=1&cursor=" + r.json["next_cursor"],
                            token=self.admin)
        self.assertEqual(r2.status, 200, r2)
        self.assertEqual(r2.json["items"][0]["id"], all_ids[1])
        for q, field in (("state=bogus", "state"), ("bogus=1", "bogus"), ("limit=0", "limit"),
                         ("cursor=zzz", "cursor")):
            with self.subTest(query=q):
                r = self.d.request("GET", "/v1/jobs?" + q, token=self.admin)
                self.assertProblem(r, 400)
                self.assertEqual(r.json.get("field"), field, r.json)

    def metrics_jobs(self):
        r = self.d.request("GET", "/metrics")
        self.assertEqual(r.status, 200, r)
        text = r.body.decode()
        counts = {}
        for m in re.finditer(r'^govcloud_jobs\{state="([a-z]+)"\} (\d+)$', text, re.M):
            counts[m.group(1)] = int(m.group(2))
        return counts

    def test_jobs_in_metrics(self):
        self.settle()
        self.wait(self.submit({"steps": 1, "step_ms": 0})["id"])
        m = self.metrics_jobs()
        self.assertEqual(set(m), set(STATES), m)
        items = self.d.request("GET", "/v1/jobs?limit=500", token=self.admin).json["items"]
        for s in STATES:
            self.assertEqual(m[s], sum(1 for j in items if j["state"] == s), (s, m))
        self.assertGreaterEqual(m["succeeded"], 1)
        # a running job shows up as running, and then as succeeded
        job = self.submit({"steps": 50, "step_ms": 20})
        self.wait(job["id"], ("running",))
        self.assertEqual(self.metrics_jobs()["running"], 1)
        self.wait(job["id"])
        m2 = self.metrics_jobs()
        self.assertEqual(m2["running"], 0)
        self.assertEqual(m2["succeeded"], m["succeeded"] + 1)

    def test_job_end_events_are_audited(self):
        ok = self.submit({"steps": 1, "step_ms": 0})
        bad = self.submit({"steps": 3, "step_ms": 0, "fail_at_step": 2})
        gone = self.submit({"steps": 300, "step_ms": 50})
        self.wait(gone["id"], ("running",))
        self.d.request("POST", f"/v1/jobs/{gone['id']}/cancel", token=self.admin)
        for job, action, outcome in ((ok, "job.succeeded", "success"),
                                     (bad, "job.failed", "failure"),
                                     (gone, "job.cancelled", "failure")):
            with self.subTest(action=action):
                self.wait(job["id"])
                events = self.events_of(job["id"])
                actions = [e["action"] for e in events]
                self.assertEqual(actions.count(action), 1, actions)
                self.assertEqual(actions[0], "job.create", actions)
                ends = [a for a in actions if a in ("job.succeeded", "job.failed",
                                                    "job.cancelled")]
                self.assertEqual(ends, [action], "exactly one end event")
                e = [e for e in events if e["action"] == action][0]
                self.assertEqual(e["resource_type"], "job")
                self.assertEqual(e["outcome"], outcome)
                self.assertEqual(e["detail"].get("kind"), "test.sleep")
        bad_event = [e for e in self.events_of(bad["id"]) if e["action"] == "job.failed"][0]
        self.assertIn("step 2", bad_event["reason"])
        self.assertIn("job.cancel", [e["action"] for e in self.events_of(gone["id"])])
        r = self.d.request("GET", "/v1/audit-events/verify", token=self.admin)
        self.assertIs(r.json["intact"], True, r.json)

    def test_department_admin_sees_its_jobs_end_events(self):
        """A job's department is its creator's; its end event is an event of that department,
        so the department's admin reads it like the job.create event."""
        dept = self.mkdept("作业部门")
        self.mkuser("job-da", "department_admin", dept["id"])
        tok = self.d.login("job-da", "User-Passw0rd!")
        job = self.submit({"steps": 1, "step_ms": 0}, token=tok)
        self.assertEqual(job["department_id"], dept["id"])
        self.wait(job["id"], token=tok)
        admin_view = [e["action"] for e in self.events_of(job["id"])]
        self.assertIn("job.succeeded", admin_view)
        own_view = [e["action"] for e in self.events_of(job["id"], token=tok)]
        self.assertIn("job.create", own_view)
        self.assertIn("job.succeeded", own_view,
                      "the department admin cannot read the end event of its own job")

    def test_test_kinds_absent_unless_enabled(self):
        d = Daemon(test_jobs=False).start()
        try:
            tok = d.login()
            for kind in ("test.sleep", "test.sleep_once"):
                r = d.request("POST", "/v1/jobs", {"kind": kind, "params": {"steps": 1}},
                              token=tok)
                self.assertProblem(r, 400)
                self.assertEqual(r.json.get("field"), "kind")
                self.assertIn(kind, r.json["detail"])
            self.assertEqual(d.request("GET", "/v1/jobs", token=tok).json["items"], [])
        finally:
            rc = d.stop()
            log = d.read_log()
            d.cleanup()
        self.assertEqual(rc, 0, log[-3000:])
        self.assertIsNone(sanitizer_report(log), log[-6000:])


class TestJobRestart(unittest.TestCase, JobHelpers):
    """Running jobs across a kill -9 and a graceful stop (own daemons on one data dir)."""

    def setUp(self):
        self.first = Daemon(extra=("--set", "jobs.workers=2")).start()
        self.d = self.first
        self.admin = self.d.login()
        self.daemons = [self.first]

    def tearDown(self):
        logs = []
        for d in reversed(self.daemons):
            rc = d.stop()
            if d is not self.first and rc not in (0, None):
                logs.append(f"exit {rc}")
        log = self.first.read_log()
        shutil.rmtree(self.first.data_dir, ignore_errors=True)
        self.assertEqual(logs, [], log[-4000:])
        self.assertIsNone(sanitizer_report(log), log[-8000:])

    def restart(self):
        d = Daemon(data_dir=self.first.data_dir, extra=("--set", "jobs.workers=2")).start()
        self.daemons.append(d)
        self.d = d
        self.admin = d.login()
        return d

    def two_running(self):
        res = self.submit({"steps": 20, "step_ms": 100}, kind="test.sleep")
        once = self.submit({"steps": 20, "step_ms": 100}, kind="test.sleep_once")
        for j in (res, once):
            self.wait(j["id"], ("running",), pred=lambda j: j["progress"] > 0)
        return res, once

    def test_kill9_resumable_job_runs_again_other_fails(self):
        res, once = self.two_running()
        queued = self.submit({"steps": 2, "step_ms": 10})
        self.assertEqual(self.get(queued["id"])["state"], "queued")
        self.first.kill9()
        self.restart()
        j = self.get(res["id"])
        self.assertIn(j["state"], ("queued", "running"), j)
        # queued again (attempts still 1), or already claimed for its second attempt
        self.assertEqual(j["attempts"], 2 if j["state"] == "running" else 1, j)
        j = self.get(once["id"])
        self.assertEqual(j["state"], "failed", j)
        self.assertIn("interrupted", j["error"])
        self.assertIsNotNone(j["finished_at"])
        self.assertIn("was running when the daemon stopped", self.d.read_log())
        j = self.wait(res["id"], timeout=30)
        self.assertEqual(j["state"], "succeeded", j)
        self.assertEqual(j["attempts"], 2, j)
        self.assertEqual(j["result"], {"steps_done": 20})
        self.assertEqual(j["progress"], 100)
        j = self.wait(queued["id"])
        self.assertEqual((j["state"], j["attempts"]), ("succeeded", 1), j)
        self.assertIn("job.failed", [e["action"] for e in self.events_of(once["id"])])
        self.assertIn("job.succeeded", [e["action"] for e in self.events_of(res["id"])])
        r = self.d.request("GET", "/v1/audit-events/verify", token=self.admin)
        self.assertIs(r.json["intact"], True, r.json)

    def test_kill9_after_cancel_request_does_not_run_the_job_again(self):
        """A running job whose cancel was accepted (202) but not yet seen by the job when the
        daemon died ends cancelled at the next start; it is not started a second time."""
        job = self.submit({"steps": 3, "step_ms": 3000}, kind="test.sleep")
        self.wait(job["id"], ("running",))
        r = self.d.request("POST", f"/v1/jobs/{job['id']}/cancel", token=self.admin)
        self.assertEqual(r.status, 202, r)
        self.assertTrue(r.json["cancel_requested"], r.json)
        self.assertEqual(r.json["state"], "running", "the job saw its cancel too early")
        self.first.kill9()
        self.restart()
        j = self.wait(job["id"], timeout=30)
        self.assertEqual(j["state"], "cancelled", j)
        self.assertEqual(j["attempts"], 1, f"a cancelled job was started again: {j}")

    def test_sigterm_exits_0_and_resumable_job_runs_again(self):
        res, once = self.two_running()
        queued = self.submit({"steps": 2, "step_ms": 10})
        t0 = time.time()
        rc = self.first.stop(signal.SIGTERM, timeout=30)
        took = time.time() - t0
        self.assertEqual(rc, 0, self.first.read_log()[-3000:])
        self.assertLess(took, 5, "SIGTERM with running jobs took too long")
        self.restart()
        j = self.get(res["id"])
        self.assertIn(j["state"], ("queued", "running"), j)
        j = self.get(once["id"])
        self.assertEqual(j["state"], "failed", j)
        self.assertIn("interrupted", j["error"])
        j = self.wait(res["id"], timeout=30)
        self.assertEqual((j["state"], j["attempts"]), ("succeeded", 2), j)
        self.assertEqual(j["result"], {"steps_done": 20})
        j = self.wait(queued["id"])
        self.assertEqual((j["state"], j["attempts"]), ("succeeded", 1), j)
        r = self.d.request("GET", "/v1/audit-events/verify", token=self.admin)
        self.assertIs(r.json["intact"], True, r.json)


if __name__ == "__main__":
    unittest.main()
