"""Durability and the audit chain: kill -9 while several clients write, then check that every
acknowledged write survived with its content and its audit event, and nothing else appeared;
and tamper with the audit chain in the SQLite file to see that verification reports it."""

import hashlib
import os
import random
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse

from gcharness import CLI, SOURCE, Daemon

PASSWORD = "Crash-Passw0rd!"
WRITERS = 6
ROUNDS = 3


def sanitizer_report(log):
    for bad in ("runtime error:", "AddressSanitizer", "LeakSanitizer"):
        if bad in log:
            return bad
    return None


def fetch_all(d, token, path):
    items, cursor = [], None
    while True:
        q = {"limit": 500}
        if cursor:
            q["cursor"] = cursor
        r = d.request("GET", f"{path}?{urllib.parse.urlencode(q)}", token=token)
        if r.status != 200:
            raise AssertionError(f"GET {path}: {r}")
        items += r.json["items"]
        cursor = r.json["next_cursor"]
        if not cursor:
            return items


def run_cli(d, token, *args):
    """Runs the govcloud CLI against d; returns (exit code, output)."""
    home = tempfile.mkdtemp(prefix="govcloud-cli-")
    try:
        env = dict(os.environ, XDG_CONFIG_HOME=home, HOME=home)
        env.pop("GOVCLOUD_URL", None)
        env.pop("GOVCLOUD_TOKEN", None)
        p = subprocess.run([CLI, "--url", d.url, "--token", token, *args], capture_output=True,
                           text=True, timeout=60, env=env)
        return p.returncode, p.stdout + p.stderr
    finally:
        shutil.rmtree(home, ignore_errors=True)


class Writer(threading.Thread):
    """Creates departments and users, changes descriptions and moves departments until the
    daemon dies or it is told to stop. Records what was attempted and what was acknowledged
    (2xx). One request at a time, so at most one is in flight when the daemon is killed.

    Every fourth department is a branch (created under the round's root, never moved); the
    others are leaves (created under the root or a branch, and moved between them), so that
    no move can be refused."""

    FIELDS = ("description", "parent_id")   # what PATCH changes

    def __init__(self, d, token, rnd, idx, root):
        super().__init__(daemon=True)
        self.d, self.token, self.rnd, self.idx, self.root = d, token, rnd, idx, root
        self.stop = threading.Event()
        self.tried_depts = set()      # names
        self.tried_users = set()      # usernames
        self.depts = {}               # id -> acknowledged content at creation
        self.users = {}               # id -> acknowledged content
        self.tried = {}               # dept id -> field -> values tried, in order
        self.acked = {}               # dept id -> field -> last acknowledged value
        self.patches_acked = {}       # dept id -> count
        self.branches, self.leaves = [], []
        self.errors = []              # non-2xx answers
        self.in_flight = None
        self.died = None

    def call(self, method, path, body):
        self.in_flight = (method, path, body)
        r = self.d.request(method, path, body, token=self.token, timeout=20)
        self.in_flight = None
        if r.status >= 300:
            self.errors.append((method, path, body, r.status, r.body[:300]))
            return None
        return r

    def patch(self, did, field, value):
        self.tried[did][field].append(value)
        r = self.call("PATCH", f"/v1/departments/{did}", {field: value})
        if r:
            if r.json[field] != value:
                self.errors.append(("PATCH", did, field, value, "echo", r.json))
            self.acked[did][field] = value
            self.patches_acked[did] += 1

    def run(self):
        rng = random.Random()
        i = 0
        try:
            while not self.stop.is_set():
                i += 1
                name = f"c{self.rnd}w{self.idx}n{i}"
                branch = i % 4 == 1
                parent = self.root if branch else rng.choice([self.root] + self.branches[-3:])
                body = {"name": name, "code": name.upper(), "parent_id": parent,
                        "description": "v0"}
                self.tried_depts.add(name)
                r = self.call("POST", "/v1/departments", body)
                if r:
                    got = r.json
                    did = got["id"]
                    self.depts[did] = {k: got[k] for k in body}
                    if self.depts[did] != body:
                        self.errors.append(("POST", "/v1/departments", body, "echo", got))
                    self.tried[did] = {f: [body[f]] for f in self.FIELDS}
                    self.acked[did] = {f: body[f] for f in self.FIELDS}
                    self.patches_acked[did] = 0
                    (self.branches if branch else self.leaves).append(did)
                if i % 3 == 0 and self.depts:
                    dept = rng.choice(list(self.depts))
                    uname = f"c{self.rnd}w{self.idx}u{i}"
                    ubody = {"username": uname, "password": PASSWORD, "role": "department_user",
                             "department_id": dept, "display_name": f"用户{i}"}
                    self.tried_users.add(uname)
                    r = self.call("POST", "/v1/users", ubody)
                    if r:
                        got = r.json
                        self.users[got["id"]] = {k: got[k] for k in
                                                 ("username", "role", "department_id",
                                                  "display_name")}
                if i % 2 == 0 and self.depts:
                    self.patch(rng.choice(list(self.depts)), "description", f"v{i}")
                if i % 5 == 0 and self.leaves:
                    leaf = rng.choice(self.leaves)
                    now = self.acked[leaf]["parent_id"]
                    choices = [p for p in [self.root] + self.branches if p != now]
                    if choices:
                        self.patch(leaf, "parent_id", rng.choice(choices))
        except Exception as e:   # the daemon died under us
            self.died = e


class TestKill9UnderLoad(unittest.TestCase):
    def test_acknowledged_writes_survive_kill9(self):
        first = Daemon()
        data_dir = first.data_dir
        daemons = [first]
        try:
            d = first.start()
            token = d.login()
            depts, users = {}, {}        # everything acknowledged so far, all rounds
            tried_depts, tried_users = set(), set()
            tried, acked, patches = {}, {}, {}
            roots = {}
            pre_users = {u["id"] for u in fetch_all(d, token, "/v1/users")}
            extras = set()   # unacknowledged objects found after earlier rounds
            for rnd in range(1, ROUNDS + 1):
                root = d.request("POST", "/v1/departments", {"name": f"crash-round-{rnd}"},
                                 token=token)
                self.assertEqual(root.status, 201, root)
                roots[root.json["id"]] = root.json
                writers = [Writer(d, token, rnd, i, root.json["id"]) for i in range(WRITERS)]
                for w in writers:
                    w.start()
                delay = random.uniform(1.0, 2.5)
                time.sleep(delay)
                d.kill9()
                for w in writers:
                    w.join(30)
                    self.assertFalse(w.is_alive(), "a writer hangs after kill -9")
                for w in writers:
                    self.assertEqual(w.errors, [], f"round {rnd}: non-2xx answers while "
                                                   f"writing")
                    depts.update(w.depts)
                    users.update(w.users)
                    tried_depts |= w.tried_depts
                    tried_users |= w.tried_users
                    tried.update(w.tried)
                    acked.update(w.acked)
                    patches.update(w.patches_acked)
                self.assertGreater(sum(len(w.depts) for w in writers), 5,
                                   f"round {rnd}: too few writes before the kill ({delay:.1f}s)")
                d = Daemon(data_dir=data_dir).start()
                daemons.append(d)
                token = d.login()
                self.check(d, token, rnd, depts, users, tried_depts, tried_users, tried,
                           acked, patches, roots, pre_users, extras)
            if os.path.exists(CLI):
                rc, out = run_cli(d, token, "audit", "verify")
                self.assertEqual(rc, 0, f"govcloud audit verify: {out}")
                self.assertIn("intact", out)
        finally:
            rcs = [x.stop() for x in daemons]
            log = first.read_log()
            shutil.rmtree(data_dir, ignore_errors=True)
        self.assertEqual(rcs[-1], 0, log[-3000:])
        self.assertIsNone(sanitizer_report(log), log[-8000:])
        if not os.path.exists(CLI):
            self.skipTest(f"the CLI is not built ({CLI}): 'govcloud audit verify' not checked")

    def check(self, d, token, rnd, depts, users, tried_depts, tried_users, tried, acked,
              patches, roots, pre_users, extras):
        have_depts = {x["id"]: x for x in fetch_all(d, token, "/v1/departments")}
        have_users = {x["id"]: x for x in fetch_all(d, token, "/v1/users")}
        # every acknowledged department, with its acknowledged content
        for did, want in depts.items():
            self.assertIn(did, have_depts, f"round {rnd}: acknowledged department lost: {want}")
            got = have_depts[did]
            for k in ("name", "code"):
                self.assertEqual(got[k], want[k], f"round {rnd}: department {did} {k}")
            for k, values in tried[did].items():
                # the last acknowledged value, or one tried after it (the request in flight)
                last = len(values) - 1 - values[::-1].index(acked[did][k])
                self.assertIn(got[k], values[last:],
                              f"round {rnd}: department {did}: {k} {got[k]!r}, acknowledged "
                              f"{acked[did][k]!r}, tried {values}")
        for uid, want in users.items():
            self.assertIn(uid, have_users, f"round {rnd}: acknowledged user lost: {want}")
            got = have_users[uid]
            self.assertEqual({k: got[k] for k in want}, want, f"round {rnd}: user {uid}")
        # the tree is consistent: parents exist, depths follow them
        for x in have_depts.values():
            parent = have_depts.get(x["parent_id"]) if x["parent_id"] else None
            if x["parent_id"]:
                self.assertIsNotNone(parent, f"round {rnd}: department {x} has no parent")
            self.assertEqual(x["depth"], parent["depth"] + 1 if parent else 0,
                             f"round {rnd}: depth of {x}")
        # nothing that was never attempted; unacknowledged extras only from requests in flight
        extra_depts = [x for i, x in have_depts.items() if i not in depts and i not in roots]
        for x in extra_depts:
            self.assertIn(x["name"], tried_depts, f"round {rnd}: a department nobody created")
        extra_users = [x for i, x in have_users.items() if i not in users and i not in pre_users]
        for x in extra_users:
            self.assertIn(x["username"], tried_users, f"round {rnd}: a user nobody created")
        new = {x["id"] for x in extra_depts + extra_users} - extras
        self.assertLessEqual(len(new), WRITERS,
                             f"round {rnd}: more unacknowledged objects than requests in flight")
        extras |= new
        # the audit chain is intact and every create has its event
        r = d.request("GET", "/v1/audit-events/verify", token=token)
        self.assertEqual(r.status, 200, r)
        self.assertIs(r.json["intact"], True, f"round {rnd}: {r.json}")
        events = fetch_all(d, token, "/v1/audit-events")
        self.assertEqual(len(events), r.json["events"])
        created = {}
        for e in events:
            if e["outcome"] == "success":
                created.setdefault((e["action"], e["resource_id"]), 0)
                created[(e["action"], e["resource_id"])] += 1
        for did in have_depts:
            self.assertEqual(created.get(("department.create", did)), 1,
                             f"round {rnd}: department {did} without exactly one create event")
        for uid in have_users:
            self.assertEqual(created.get(("user.create", uid)), 1,
                             f"round {rnd}: user {uid} without exactly one create event")
        for did, n in patches.items():
            self.assertGreaterEqual(created.get(("department.update", did), 0), n,
                                    f"round {rnd}: acknowledged PATCHes without audit events")
        # an acknowledged user's password survived too
        if users:
            uid = random.choice(list(users))
            r = d.request("POST", "/v1/tokens", {"username": users[uid]["username"],
                                                 "password": PASSWORD})
            self.assertEqual(r.status, 201, r)


# ---- tampering with the audit chain ----

FIELDS = ("prev_hash", "seq", "id", "time", "actor_id", "actor_name", "actor_role", "action",
          "resource_type", "resource_id", "department_id", "department_path", "outcome",
          "reason", "source_ip", "request_id", "detail")


def chain_hash(ev):
    """SM3 over the length-prefixed fields, as the daemon computes an event's hash."""
    h = hashlib.new("sm3")
    for f in FIELDS:
        v = ev[f]
        b = ("" if v is None else str(v)).encode()
        h.update(f"{len(b)}:".encode())
        h.update(b)
    return h.hexdigest()


class TestAuditTamper(unittest.TestCase):
    """Each test edits a copy of one stopped daemon's database and starts a daemon on it."""

    @classmethod
    def setUpClass(cls):
        d = Daemon(test_jobs=False).start()
        try:
            tok = d.login()
            parent = None
            for i in range(6):
                body = {"name": f"tamper-{i}"}
                if parent:
                    body["parent_id"] = parent
                r = d.request("POST", "/v1/departments", body, token=tok)
                assert r.status == 201, r
                parent = r.json["id"]
                r = d.request("PATCH", f"/v1/departments/{parent}", {"description": f"d{i}"},
                              token=tok)
                assert r.status == 200, r
            r = d.request("POST", "/v1/users", {"username": "tamper-u", "password": PASSWORD,
                                                "role": "department_admin",
                                                "department_id": parent}, token=tok)
            assert r.status == 201, r
            # an API key: using it writes no audit event, unlike a login
            r = d.request("POST", "/v1/api-keys", {"name": "tamper"}, token=tok)
            assert r.status == 201, r
            cls.key = r.json["key"]
            r = d.request("GET", "/v1/audit-events/verify", token=cls.key)
            assert r.status == 200 and r.json["intact"], r
            cls.n = r.json["events"]
        finally:
            rc = d.stop()
        if rc != 0:
            raise AssertionError(f"govcloudd exited {rc}: {d.read_log()[-3000:]}")
        cls.template = d.data_dir
        assert cls.n >= 14, cls.n

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.template, ignore_errors=True)

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="govcloud-tamper-")
        shutil.rmtree(self.dir)
        shutil.copytree(self.template, self.dir)
        os.remove(os.path.join(self.dir, "daemon.log"))
        self.daemon = None

    def tearDown(self):
        if self.daemon:
            rc = self.daemon.stop()
            log = self.daemon.read_log()
            self.assertEqual(rc, 0, log[-3000:])
            self.assertIsNone(sanitizer_report(log), log[-8000:])
        shutil.rmtree(self.dir, ignore_errors=True)

    def db(self):
        con = sqlite3.connect(os.path.join(self.dir, "govcloud.db"), isolation_level=None)
        con.row_factory = sqlite3.Row
        return con

    def event(self, con, seq):
        return dict(con.execute("SELECT * FROM audit_events WHERE seq = ?", (seq,)).fetchone())

    def verify(self):
        self.daemon = Daemon(data_dir=self.dir, test_jobs=False).start()
        r = self.daemon.request("GET", "/v1/audit-events/verify", token=self.key)
        self.assertEqual(r.status, 200, r)
        if os.path.exists(CLI):
            rc, out = run_cli(self.daemon, self.key, "audit", "verify")
            want = 0 if r.json["intact"] else 10
            self.assertEqual(rc, want, f"govcloud audit verify exit code; output: {out}")
            if not r.json["intact"]:
                self.assertIn(str(r.json["first_bad_seq"]), out)
        return r.json

    def assertBroken(self, rep, first_bad, *words):
        self.assertIs(rep["intact"], False, f"tampering not reported: {rep}")
        self.assertEqual(rep["first_bad_seq"], first_bad, rep)
        for w in words:
            self.assertIn(w, rep["problem"], rep)

    def test_untouched_copy_is_intact(self):
        with self.db() as con:   # the test's own model of the chain agrees with the daemon
            for seq in range(1, self.n + 1):
                ev = self.event(con, seq)
                self.assertEqual(chain_hash(ev), ev["hash"], f"event {seq}")
        rep = self.verify()
        self.assertEqual(rep, {"intact": True, "events": self.n, "head_seq": self.n})

    def test_edited_field(self):
        k = self.n // 2
        con = self.db()
        con.execute("UPDATE audit_events SET reason = 'nothing to see here' WHERE seq = ?", (k,))
        con.close()
        self.assertBroken(self.verify(), k, "edited")

    def test_edited_department_path(self):
        """The path decides which department admins see an event: it is covered too."""
        con = self.db()
        k = con.execute("SELECT MAX(seq) FROM audit_events WHERE department_path <> ''"
                        ).fetchone()[0]
        self.assertIsNotNone(k, "no event with a department path in the template")
        con.execute("UPDATE audit_events SET department_path = '/elsewhere/' WHERE seq = ?",
                    (k,))
        con.close()
        self.assertBroken(self.verify(), k, "edited")

    def test_edited_actor_and_detail(self):
        k = 3
        con = self.db()
        con.execute("UPDATE audit_events SET actor_name = 'somebody-else', detail = '{}'"
                    " WHERE seq = ?", (k,))
        con.close()
        self.assertBroken(self.verify(), k)

    def test_edited_and_rehashed_event(self):
        """Whoever edits an event and recomputes its hash still breaks the next link."""
        k = self.n // 2
        con = self.db()
        ev = self.event(con, k)
        ev["outcome"] = "failure"
        con.execute("UPDATE audit_events SET outcome = ?, hash = ? WHERE seq = ?",
                    ("failure", chain_hash(ev), k))
        con.close()
        self.assertBroken(self.verify(), k + 1, "link")

    def test_deleted_event_in_the_middle(self):
        k = self.n // 2
        con = self.db()
        con.execute("DELETE FROM audit_events WHERE seq = ?", (k,))
        con.close()
        self.assertBroken(self.verify(), k, "missing")

    def test_deleted_events_at_the_end(self):
        con = self.db()
        con.execute("DELETE FROM audit_events WHERE seq > ?", (self.n - 2,))
        con.close()
        rep = self.verify()
        self.assertBroken(rep, self.n - 1, "deleted")
        self.assertEqual(rep["events"], self.n - 2)

    def forged(self, con, seq, prev_hash, good_hash):
        ev = self.event(con, 2)
        ev.update(seq=seq, id="01a00000-0000-7000-8000-00000000f0f0", prev_hash=prev_hash,
                  reason="forged", actor_name="admin")
        ev["hash"] = chain_hash(ev) if good_hash else "ab" * 32
        cols = ", ".join(ev)
        con.execute(f"INSERT INTO audit_events ({cols}) VALUES "
                    f"({', '.join('?' for _ in ev)})", list(ev.values()))
        return ev

    def test_forged_event_appended_with_bad_hash(self):
        con = self.db()
        self.forged(con, self.n + 1, self.event(con, self.n)["hash"], good_hash=False)
        con.close()
        self.assertBroken(self.verify(), self.n + 1)

    def test_forged_event_appended_with_good_hash(self):
        """A well-formed event added at the end without moving the head: reported, and the
        first bad event is the forged one."""
        con = self.db()
        self.forged(con, self.n + 1, self.event(con, self.n)["hash"], good_hash=True)
        con.close()
        rep = self.verify()
        self.assertIs(rep["intact"], False, f"forged event not reported: {rep}")
        self.assertEqual(rep["first_bad_seq"], self.n + 1,
                         f"first_bad_seq names no event of the chain: {rep}")

    def insert_in_the_middle(self, good_hash):
        k = self.n // 2
        con = self.db()
        # make room: shift the events after k by one (via negative seqs, no clashes)
        con.execute("UPDATE audit_events SET seq = -(seq + 1) WHERE seq > ?", (k,))
        con.execute("UPDATE audit_events SET seq = -seq WHERE seq < 0")
        self.forged(con, k + 1, self.event(con, k)["hash"], good_hash=good_hash)
        con.execute("UPDATE audit_head SET seq = seq + 1")
        con.close()
        return k, self.verify()

    def test_forged_event_inserted_in_the_middle_with_bad_hash(self):
        k, rep = self.insert_in_the_middle(good_hash=False)
        self.assertBroken(rep, k + 1)

    def test_forged_event_inserted_in_the_middle_with_good_hash(self):
        """The forged event itself is well-formed; the event after it no longer links."""
        k, rep = self.insert_in_the_middle(good_hash=True)
        self.assertIs(rep["intact"], False, rep)
        self.assertIn(rep["first_bad_seq"], (k + 1, k + 2), rep)


class TestAuditOffHost(unittest.TestCase):
    """docs/security.md promises that the chain can be checked off-host from the API alone,
    and gives a script for it: run that script against a daemon with varied events."""

    def script(self):
        path = os.path.join(SOURCE, "docs", "security.md")
        with open(path, encoding="utf-8") as f:
            text = f.read()
        at = text.find("checked off-host")
        self.assertGreater(at, 0, f"{path}: the off-host check is gone; update this test")
        start = text.find("```python\n", at)
        end = text.find("```", start + 10)
        self.assertGreater(start, 0, f"{path}: no script after 'checked off-host'")
        return text[start + len("```python\n"):end]

    def test_documented_offhost_verifier_agrees(self):
        script = self.script()
        d = Daemon().start()
        tmp = tempfile.mkdtemp(prefix="govcloud-offhost-")
        try:
            tok = d.login()

            def ok(r, status=201):
                self.assertEqual(r.status, status, r)
                return r.json

            a = ok(d.request("POST", "/v1/departments", {"name": "省甲", "code": "OFF-A"},
                             token=tok))
            a1 = ok(d.request("POST", "/v1/departments", {"name": "市乙", "parent_id": a["id"]},
                              token=tok))
            ok(d.request("POST", "/v1/users", {"username": "off-da", "password": PASSWORD,
                                               "role": "department_admin",
                                               "department_id": a1["id"],
                                               "display_name": "单位管理员"}, token=tok))
            ok(d.request("POST", "/v1/users", {"username": "off-aud", "password": PASSWORD,
                                               "role": "auditor"}, token=tok))
            da = d.login("off-da", PASSWORD)
            ok(d.request("PATCH", f"/v1/departments/{a1['id']}", {"description": "说明 \"引号\""},
                         token=da), 200)
            ok(d.request("POST", "/v1/jobs", {"kind": "test.sleep",
                                              "params": {"steps": 1, "step_ms": 0}},
                         token=da), 202)
            self.assertEqual(d.request("DELETE", f"/v1/departments/{a['id']}",
                                       token=da).status, 404)
            self.assertEqual(d.request("POST", "/v1/tokens", {"username": "off-da",
                                                              "password": "wrong"}).status, 401)
            key = ok(d.request("POST", "/v1/api-keys", {"name": "collector"},
                               token=d.login("off-aud", PASSWORD)))["key"]
            time.sleep(0.3)   # the job's end event
            rep = d.request("GET", "/v1/audit-events/verify", token=key).json
            self.assertIs(rep["intact"], True, rep)
            path = os.path.join(tmp, "verify_audit.py")
            with open(path, "w", encoding="utf-8") as f:
                f.write(script)
            p = subprocess.run(["/usr/bin/python3", path, d.url, key], capture_output=True,
                               text=True, timeout=60)
            self.assertEqual(p.returncode, 0,
                             "the verifier of docs/security.md fails on an intact chain: "
                             + p.stdout + p.stderr)
            self.assertIn(f"intact: {rep['events']} events", p.stdout)
        finally:
            rc = d.stop()
            log = d.read_log()
            d.cleanup()
            shutil.rmtree(tmp, ignore_errors=True)
        self.assertEqual(rc, 0, log[-3000:])
        self.assertIsNone(sanitizer_report(log), log[-8000:])


if __name__ == "__main__":
    unittest.main()
