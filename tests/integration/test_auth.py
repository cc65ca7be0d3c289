"""Authentication against a live govcloudd: logins, lockout, session tokens, API keys,
password policy and changes, disabled accounts, and the guards around administrators."""

import base64
import hashlib
import os
import re
import sqlite3
import threading
import time
import unittest
from datetime import datetime, timezone

from gcharness import ADMIN_PASSWORD, DaemonTestCase

PW = "User-Passw0rd!"
SESSION_RE = re.compile(r"^gct_[A-Za-z0-9_-]{43}$")
APIKEY_RE = re.compile(r"^gck_[A-Za-z0-9_-]{43}$")
RFC3339_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
TIME_IN_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z")
PROBLEM_BASE = "https://govcloud.example/problems/"


def parse_time(s):
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ" if "." in s else "%Y-%m-%dT%H:%M:%SZ"
    return datetime.strptime(s, fmt).replace(tzinfo=timezone.utc)


def now_utc():
    return datetime.now(timezone.utc)


def random_secret(prefix):
    return prefix + base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")


def db_ro(d):
    return sqlite3.connect(f"file:{d.db_path}?mode=ro", uri=True, timeout=10)


def db_rw(d):
    db = sqlite3.connect(d.db_path, timeout=10)
    db.execute("PRAGMA busy_timeout = 10000")
    return db


def db_all(d, sql, args=()):
    with db_ro(d) as db:
        return db.execute(sql, args).fetchall()


class AuthTestCase(DaemonTestCase):

    def assertProblemType(self, r, status, slug, detail_part=None):
        self.assertProblem(r, status, detail_part)
        self.assertEqual(r.json["type"], PROBLEM_BASE + slug, r.json)

    def assert401(self, r, detail_part=None):
        self.assertProblemType(r, 401, "unauthorized", detail_part)
        self.assertTrue(r.headers.get("WWW-Authenticate", "").startswith("Bearer"),
                        r.headers.get("WWW-Authenticate"))

    def login_r(self, username, password):
        return self.req("POST", "/v1/tokens", {"username": username, "password": password})

    def me(self, token):
        return self.req("GET", "/v1/users/me", token=token)

    def user_row(self, uid):
        return self.req("GET", f"/v1/users/{uid}", token=self.admin).json

    def one_audit(self, **filters):
        """The single audit event matching filters (via the API)."""
        import urllib.parse
        r = self.req("GET", "/v1/audit-events?limit=500&" + urllib.parse.urlencode(filters),
                     token=self.admin)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(len(r.json["items"]), 1, (filters, r.json["items"]))
        return r.json["items"][0]


def race(d, requests, stagger=0.4, hold=0.6):
    """Sends requests [(method, path, body, token)] while this process holds the store's
    write lock, so that every one of them authenticates and then waits to write; then lets
    them go. They are sent `stagger` seconds apart: a request waiting for the lock keeps its
    server thread busy, so the next connection goes to another thread instead of queueing
    behind it. Returns the responses in order."""
    db = sqlite3.connect(d.db_path, timeout=10, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    out = [None] * len(requests)

    def go(i, method, path, body, token):
        out[i] = d.request(method, path, body, token=token)
    threads = [threading.Thread(target=go, args=(i, *rq)) for i, rq in enumerate(requests)]
    try:
        for t in threads:
            t.start()
            time.sleep(stagger)
        time.sleep(hold)
    finally:
        db.execute("ROLLBACK")
        db.close()
    for t in threads:
        t.join(30)
    return out


class LastAdminTest(AuthTestCase):
    """Two platform administrators remove each other at the same moment: one succeeds, the
    other must be refused with 409, because it would remove the last active platform
    administrator. For each way of removing one: disabling, demoting, deleting."""

    daemon_extra = ("--set", "server.threads=4")

    def active_admins(self):
        return db_all(self.d, "SELECT id FROM users WHERE role = 'platform_admin' AND "
                      "disabled = 0 ORDER BY id")

    def test_last_platform_admin_is_kept(self):
        a = self.me(self.admin).json
        b = self.mkuser("admin-b", "platform_admin")
        creds = {a["id"]: ("admin", ADMIN_PASSWORD), b["id"]: ("admin-b", PW)}
        tok = {a["id"]: self.admin, b["id"]: self.d.login("admin-b", PW)}
        rounds = [("PATCH", {"disabled": True}, "disabled", 200, {"disabled": False}),
                  ("PATCH", {"role": "auditor"}, "role", 200, {"role": "platform_admin"}),
                  ("DELETE", None, "id", 204, None)]
        for method, body, field, ok, undo in rounds:
            with self.subTest(method=method, body=body):
                x, y = a["id"], b["id"]
                rx, ry = race(self.d, [(method, f"/v1/users/{y}", body, tok[x]),
                                       (method, f"/v1/users/{x}", body, tok[y])])
                self.assertEqual(sorted([rx.status, ry.status]), sorted([ok, 409]), (rx, ry))
                winner, loser, refused = (x, y, ry) if rx.status == ok else (y, x, rx)
                self.assertProblemType(refused, 409, "conflict", "last")
                self.assertEqual(refused.json.get("field"), field)
                self.assertEqual(self.active_admins(), [(winner,)])
                w = self.req("GET", f"/v1/users/{winner}", token=tok[winner]).json
                self.assertEqual((w["role"], w["disabled"]), ("platform_admin", False))
                if undo is None:
                    break
                r = self.req("PATCH", f"/v1/users/{loser}", undo, token=tok[winner])
                self.assertEqual(r.status, 200, r)
                tok[loser] = self.d.login(*creds[loser])
                self.assertEqual(len(self.active_admins()), 2)
        # whoever is left cannot remove itself either
        (last,), = self.active_admins()
        self.assertProblemType(self.req("DELETE", f"/v1/users/{last}", token=tok[last]), 403,
                               "forbidden")
        self.assertProblemType(self.req("PATCH", f"/v1/users/{last}", {"disabled": True},
                                        token=tok[last]), 403, "forbidden")
        type(self).admin = tok[last]


class LoginTest(AuthTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        r = cls.d.request("POST", "/v1/users", {"username": "lg-user", "password": PW,
                                                "role": "operator"}, token=cls.admin)
        assert r.status == 201, r
        cls.user = r.json

    def test_login_ok(self):
        t0 = now_utc()
        r = self.login_r("lg-user", PW)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(set(r.json), {"token", "token_type", "expires_at", "user"})
        self.assertRegex(r.json["token"], SESSION_RE)
        self.assertEqual(r.json["token_type"], "Bearer")
        self.assertRegex(r.json["expires_at"], RFC3339_MS)
        ttl = (parse_time(r.json["expires_at"]) - t0).total_seconds()
        self.assertAlmostEqual(ttl, 8 * 3600, delta=120)
        self.assertEqual(r.json["user"]["id"], self.user["id"])
        self.assertEqual(r.json["user"]["username"], "lg-user")
        self.assertEqual(r.json["user"]["role"], "operator")
        self.assertIsNone(r.json["user"]["department_id"])
        self.assertNotIn("password_hash", r.json["user"])
        m = self.me(r.json["token"])
        self.assertEqual(m.status, 200, m)
        self.assertEqual(m.json["id"], self.user["id"])

    def test_tokens_are_kept_only_as_hashes(self):
        tok = self.d.login("lg-user", PW)
        rows = db_all(self.d, "SELECT * FROM tokens")
        self.assertTrue(rows)
        for row in rows:
            self.assertNotIn(tok, [str(c) for c in row])
            self.assertFalse(any(tok[4:] in str(c) for c in row), row)
        if "sm3" in hashlib.algorithms_available:
            h = hashlib.new("sm3", tok.encode()).hexdigest()
            self.assertEqual(db_all(self.d, "SELECT kind, user_id FROM tokens WHERE "
                                    "secret_hash = ?", (h,)), [("session", self.user["id"])])

    def test_each_login_gets_a_new_token(self):
        a = self.d.login("lg-user", PW)
        b = self.d.login("lg-user", PW)
        self.assertNotEqual(a, b)
        self.assertEqual(self.me(a).status, 200)
        self.assertEqual(self.me(b).status, 200)

    def test_wrong_password_and_unknown_user_look_the_same(self):
        wrong = self.login_r("lg-user", "Wrong-Passw0rd!")
        unknown = self.login_r("no-such-user", "Wrong-Passw0rd!")
        for r in (wrong, unknown):
            self.assertProblemType(r, 401, "unauthorized")
            self.assertEqual(r.json["detail"], "invalid username or password")
        strip = lambda j: {k: v for k, v in j.items() if k != "request_id"}
        self.assertEqual(strip(wrong.json), strip(unknown.json))
        self.assertNotIn("lg-user", wrong.body.decode())
        # a later good login still works (and resets the counter)
        self.assertEqual(self.login_r("lg-user", PW).status, 201)

    def test_unknown_user_is_never_locked(self):
        for i in range(6):
            with self.subTest(attempt=i + 1):
                self.assertProblemType(self.login_r("ghost-user", "x"), 401, "unauthorized")

    def test_no_token_is_written_for_failed_logins(self):
        before = db_all(self.d, "SELECT id FROM tokens ORDER BY id")
        self.login_r("lg-user", "Wrong-Passw0rd!")
        self.login_r("ghost-user-2", PW)
        self.req("POST", "/v1/tokens", {"username": "lg-user"})
        self.assertEqual(db_all(self.d, "SELECT id FROM tokens ORDER BY id"), before)
        self.assertEqual(self.login_r("lg-user", PW).status, 201)

    def test_login_audit_events(self):
        u = self.mkuser("lg-audit", "auditor")
        ok = self.login_r("lg-audit", PW)
        self.assertEqual(ok.status, 201, ok)
        bad = self.login_r("lg-audit", "Wrong-Passw0rd!")
        self.assertEqual(bad.status, 401, bad)
        self.assertEqual(self.login_r("lg-nobody-xyz", "whatever").status, 401)

        e = self.one_audit(action="auth.login", resource_id=u["id"], outcome="success")
        self.assertEqual((e["actor_id"], e["actor_name"], e["actor_role"], e["resource_type"]),
                         (u["id"], "lg-audit", "auditor", "user"))
        self.assertEqual(e["source_ip"], "127.0.0.1")
        self.assertEqual(e["request_id"], ok.headers["X-Request-Id"])
        e = self.one_audit(action="auth.login", resource_id=u["id"], outcome="failure")
        self.assertEqual(e["actor_name"], "lg-audit")
        self.assertIn("wrong password", e["reason"])
        self.assertEqual(e["request_id"], bad.headers["X-Request-Id"])
        e = self.one_audit(action="auth.login", actor_name="lg-nobody-xyz")
        self.assertEqual(e["outcome"], "failure")
        self.assertIsNone(e["resource_id"])
        self.assertIsNone(e["actor_id"])
        self.assertIn("unknown", e["reason"])
        # the password is in no audit event
        for row in db_all(self.d, "SELECT reason, detail FROM audit_events"):
            self.assertNotIn("Wrong-Passw0rd!", "".join(row))
            self.assertNotIn(PW, "".join(row))


class LockoutTest(AuthTestCase):

    def test_lockout_after_five_failures(self):
        u = self.mkuser("lk-user", "operator")
        for i in range(4):
            with self.subTest(attempt=i + 1):
                self.assertProblemType(self.login_r("lk-user", "Wrong-Passw0rd!"), 401,
                                       "unauthorized")
        t0 = now_utc()
        r = self.login_r("lk-user", "Wrong-Passw0rd!")
        self.assertProblemType(r, 429, "account-locked")
        ra = int(r.headers.get("Retry-After", "0"))
        self.assertTrue(890 <= ra <= 900, r.headers.get("Retry-After"))
        m = TIME_IN_TEXT.search(r.json["detail"])
        self.assertIsNotNone(m, r.json["detail"])
        until = parse_time(m.group(0))
        self.assertAlmostEqual((until - t0).total_seconds(), 900, delta=30)
        self.assertEqual(parse_time(self.user_row(u["id"])["locked_until"]), until)
        self.assertEqual(db_all(self.d, "SELECT COUNT(*) FROM tokens WHERE user_id = ?",
                                (u["id"],)), [(0,)])

        # even the right password is refused while locked
        r = self.login_r("lk-user", PW)
        self.assertProblemType(r, 429, "account-locked")
        self.assertTrue(1 <= int(r.headers.get("Retry-After", "0")) <= 900)
        self.assertIn(m.group(0), r.json["detail"])
        self.assertEqual(db_all(self.d, "SELECT COUNT(*) FROM tokens WHERE user_id = ?",
                                (u["id"],)), [(0,)])

        # locking is recorded; the refused attempt while locked is 'denied'
        e = self.one_audit(action="auth.login", resource_id=u["id"], outcome="denied")
        self.assertIn("locked", e["reason"])
        fails = db_all(self.d, "SELECT reason FROM audit_events WHERE action = 'auth.login' "
                       "AND resource_id = ? AND outcome = 'failure' ORDER BY seq", (u["id"],))
        self.assertEqual(len(fails), 5)
        self.assertIn("locked", fails[-1][0])

        # 'locked': true is not a thing an admin can set
        v = self.user_row(u["id"])["version"]
        r = self.req("PATCH", f"/v1/users/{u['id']}", {"locked": True}, token=self.admin)
        self.assertProblemType(r, 400, "invalid-request")
        self.assertEqual(r.json.get("field"), "locked")
        self.assertEqual(self.user_row(u["id"])["version"], v)

        # an administrator lifts the lock
        r = self.req("PATCH", f"/v1/users/{u['id']}", {"locked": False}, token=self.admin)
        self.assertEqual(r.status, 200, r)
        self.assertIsNone(r.json["locked_until"])
        self.assertEqual(self.login_r("lk-user", PW).status, 201)

    def test_success_resets_the_count(self):
        self.mkuser("lk-reset", "operator")
        for _ in range(4):
            self.assertEqual(self.login_r("lk-reset", "Wrong-Passw0rd!").status, 401)
        self.assertEqual(self.login_r("lk-reset", PW).status, 201)
        for i in range(4):
            with self.subTest(attempt=i + 1):
                self.assertEqual(self.login_r("lk-reset", "Wrong-Passw0rd!").status, 401)
        self.assertEqual(self.login_r("lk-reset", PW).status, 201)

    def test_user_cannot_lift_own_lock(self):
        u = self.mkuser("lk-self", "operator")
        tok = self.d.login("lk-self", PW)
        r = self.req("PATCH", "/v1/users/me", {"locked": False}, token=tok)
        self.assertProblemType(r, 403, "forbidden")
        self.assertEqual(self.user_row(u["id"])["version"], 1)


class TokenTest(AuthTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for name in ("tk-user", "tk-exp"):
            r = cls.d.request("POST", "/v1/users", {"username": name, "password": PW,
                                                    "role": "operator"}, token=cls.admin)
            assert r.status == 201, r

    def test_logout(self):
        tok = self.d.login("tk-user", PW)
        other = self.d.login("tk-user", PW)
        self.assertEqual(self.me(tok).status, 200)
        r = self.req("DELETE", "/v1/tokens/current", token=tok)
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.body, b"")
        self.assert401(self.me(tok), "revoked")
        self.assert401(self.req("DELETE", "/v1/tokens/current", token=tok))
        # only that session ends
        self.assertEqual(self.me(other).status, 200)
        if "sm3" in hashlib.algorithms_available:
            h = hashlib.new("sm3", tok.encode()).hexdigest()
            self.assertEqual(db_all(self.d, "SELECT COUNT(*) FROM tokens WHERE secret_hash = ?",
                                    (h,)), [(0,)])
        uid = self.me(other).json["id"]
        ev = db_all(self.d, "SELECT outcome FROM audit_events WHERE action = 'auth.logout' AND "
                    "actor_id = ?", (uid,))
        self.assertEqual(ev, [("success",)])

    def test_bad_credentials_are_401_with_www_authenticate(self):
        good = self.d.login("tk-user", PW)
        flipped = good[:-1] + ("A" if good[-1] != "A" else "B")
        cases = {
            "missing": None,
            "basic": "Basic " + base64.b64encode(b"admin:" + ADMIN_PASSWORD.encode()).decode(),
            "token scheme": "Token " + good,
            "bearer, no token": "Bearer",
            "bearer, empty": "Bearer ",
            "short": "Bearer gct_short",
            "too long": "Bearer " + good + "x",
            "no prefix": "Bearer " + good[4:],
            "wrong prefix": "Bearer xyz_" + good[4:],
            "bad characters": "Bearer gct_" + "!" * 43,
            "trailing junk": "Bearer " + good + " extra",
            "forged session": "Bearer " + random_secret("gct_"),
            "forged api key": "Bearer " + random_secret("gck_"),
            "one char changed": "Bearer " + flipped,
        }
        before = db_all(self.d, "SELECT COUNT(*) FROM departments")
        for label, header in cases.items():
            with self.subTest(case=label):
                h = {"Authorization": header} if header is not None else {}
                self.assert401(self.req("GET", "/v1/users/me", headers=h))
                r = self.req("POST", "/v1/departments", {"name": "unauth-" + label},
                             headers=h)
                self.assert401(r)
                self.assertEqual(r.headers["WWW-Authenticate"], 'Bearer realm="govcloud"')
        self.assertEqual(db_all(self.d, "SELECT COUNT(*) FROM departments"), before)
        # the scheme name is case-insensitive (RFC 9110)
        self.assertEqual(self.req("GET", "/v1/users/me",
                                  headers={"Authorization": "bearer " + good}).status, 200)

    def test_every_protected_route_needs_a_token(self):
        z = "01a00000-0000-7000-8000-000000000000"
        routes = [("DELETE", "/v1/tokens/current"), ("GET", "/v1/api-keys"),
                  ("POST", "/v1/api-keys"), ("DELETE", f"/v1/api-keys/{z}"),
                  ("GET", "/v1/departments"), ("POST", "/v1/departments"),
                  ("GET", f"/v1/departments/{z}"), ("PATCH", f"/v1/departments/{z}"),
                  ("DELETE", f"/v1/departments/{z}"), ("GET", "/v1/users"),
                  ("POST", "/v1/users"), ("GET", "/v1/users/me"), ("GET", f"/v1/users/{z}"),
                  ("PATCH", f"/v1/users/{z}"), ("DELETE", f"/v1/users/{z}"),
                  ("GET", "/v1/audit-events"), ("GET", "/v1/audit-events/verify"),
                  ("GET", "/v1/jobs"), ("POST", "/v1/jobs"), ("GET", f"/v1/jobs/{z}"),
                  ("POST", f"/v1/jobs/{z}/cancel")]
        for method, path in routes:
            with self.subTest(route=f"{method} {path}"):
                body = {"name": "x"} if method in ("POST", "PATCH") and \
                    not path.endswith("/cancel") else None
                self.assert401(self.req(method, path, body))

    def test_expired_token(self):
        t0 = time.time()
        tok = self.d.login("tk-exp", PW)
        uid = db_all(self.d, "SELECT id FROM users WHERE username = 'tk-exp'")[0][0]
        # before the token is ever used (the daemon caches resolved tokens briefly)
        db = db_rw(self.d)
        try:
            n = db.execute("UPDATE tokens SET expires_at = ? WHERE user_id = ? AND "
                           "kind = 'session'", (int((t0 - 60) * 1000), uid)).rowcount
            db.commit()
        finally:
            db.close()
        self.assertEqual(n, 1)
        self.assert401(self.me(tok), "expired")
        self.assert401(self.req("GET", "/v1/departments", token=tok), "expired")
        # a fresh login works
        self.assertEqual(self.me(self.d.login("tk-exp", PW)).status, 200)


class ApiKeyTest(AuthTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        r = cls.d.request("POST", "/v1/departments", {"name": "钥匙局"}, token=cls.admin)
        assert r.status == 201, r
        cls.dept = r.json
        for name, role, dept in (("ak-user", "operator", None),
                                 ("ak-other", "operator", None),
                                 ("ak-du", "department_user", cls.dept["id"])):
            body = {"username": name, "password": PW, "role": role}
            if dept:
                body["department_id"] = dept
            r = cls.d.request("POST", "/v1/users", body, token=cls.admin)
            assert r.status == 201, r
        cls.tok = cls.d.login("ak-user", PW)

    def tokens_count(self):
        return db_all(self.d, "SELECT COUNT(*) FROM tokens")[0][0]

    def test_lifecycle(self):
        r = self.req("POST", "/v1/api-keys", {"name": "backup-script"}, token=self.tok)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(set(r.json), {"id", "name", "key", "created_at", "expires_at"})
        key = r.json["key"]
        kid = r.json["id"]
        self.assertRegex(key, APIKEY_RE)
        self.assertEqual(r.json["name"], "backup-script")
        self.assertIsNone(r.json["expires_at"])
        self.assertRegex(r.json["created_at"], RFC3339_MS)
        self.assertEqual(r.headers.get("Location"), f"/v1/api-keys/{kid}")

        # works as a bearer, acting as its owner
        m = self.me(key)
        self.assertEqual(m.status, 200, m)
        self.assertEqual(m.json["username"], "ak-user")

        # listed without the secret
        ls = self.req("GET", "/v1/api-keys", token=self.tok)
        self.assertEqual(ls.status, 200, ls)
        mine = [k for k in ls.json["items"] if k["id"] == kid]
        self.assertEqual(len(mine), 1)
        self.assertEqual(set(mine[0]), {"id", "name", "created_at", "expires_at"})
        self.assertNotIn(key.encode(), ls.body)
        self.assertNotIn(key[4:].encode(), ls.body)
        # the secret is not in the store or in the audit trail
        for row in db_all(self.d, "SELECT * FROM tokens") + \
                db_all(self.d, "SELECT detail, reason FROM audit_events"):
            self.assertFalse(any(key[4:] in str(c) for c in row), row)

        # an API key cannot log out; it keeps working
        r = self.req("DELETE", "/v1/tokens/current", token=key)
        self.assertProblemType(r, 400, "invalid-request")
        self.assertEqual(self.me(key).status, 200)

        # revoke
        r = self.req("DELETE", f"/v1/api-keys/{kid}", token=self.tok)
        self.assertEqual(r.status, 204, r)
        self.assert401(self.me(key))
        self.assertProblemType(self.req("DELETE", f"/v1/api-keys/{kid}", token=self.tok), 404,
                               "not-found")
        ls = self.req("GET", "/v1/api-keys", token=self.tok)
        self.assertNotIn(kid, [k["id"] for k in ls.json["items"]])
        self.assertEqual(db_all(self.d, "SELECT COUNT(*) FROM tokens WHERE id = ?", (kid,)),
                         [(0,)])
        acts = db_all(self.d, "SELECT action, outcome FROM audit_events WHERE resource_id = ? "
                      "ORDER BY seq", (kid,))
        self.assertEqual(acts[0], ("api_key.create", "success"))
        self.assertIn(("api_key.delete", "success"), acts)

    def test_expiry(self):
        r = self.req("POST", "/v1/api-keys",
                     {"name": "until-2099", "expires_at": "2099-01-01T00:00:00Z"},
                     token=self.tok)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(parse_time(r.json["expires_at"]),
                         datetime(2099, 1, 1, tzinfo=timezone.utc))
        self.assertEqual(self.me(r.json["key"]).status, 200)

        before = self.tokens_count()
        for exp in ("2000-01-01T00:00:00Z", "1970-01-01T00:00:00Z", "tomorrow", "2099-13-01",
                    "", "2099-01-01 00:00:00"):
            with self.subTest(expires_at=exp):
                r = self.req("POST", "/v1/api-keys", {"name": "bad-exp", "expires_at": exp},
                             token=self.tok)
                self.assertProblemType(r, 400, "invalid-request")
                self.assertEqual(r.json.get("field"), "expires_at")
        self.assertEqual(self.tokens_count(), before)

    def test_expired_key_is_401(self):
        r = self.req("POST", "/v1/api-keys", {"name": "soon", "expires_at":
                                              "2099-01-01T00:00:00Z"}, token=self.tok)
        self.assertEqual(r.status, 201, r)
        db = db_rw(self.d)
        try:
            db.execute("UPDATE tokens SET expires_at = ? WHERE id = ?",
                       (int((time.time() - 60) * 1000), r.json["id"]))
            db.commit()
        finally:
            db.close()
        self.assert401(self.me(r.json["key"]), "expired")

    def test_keys_are_private_to_their_owner(self):
        r = self.req("POST", "/v1/api-keys", {"name": "mine"}, token=self.tok)
        self.assertEqual(r.status, 201, r)
        kid, key = r.json["id"], r.json["key"]
        other = self.d.login("ak-other", PW)
        self.assertProblemType(self.req("DELETE", f"/v1/api-keys/{kid}", token=other), 404,
                               "not-found")
        ls = self.req("GET", "/v1/api-keys", token=other)
        self.assertEqual(ls.status, 200, ls)
        self.assertNotIn(kid, [k["id"] for k in ls.json["items"]])
        self.assertEqual(self.me(key).status, 200)

    def test_key_has_the_rights_of_its_user(self):
        du = self.d.login("ak-du", PW)
        r = self.req("POST", "/v1/api-keys", {"name": "du-key"}, token=du)
        self.assertEqual(r.status, 201, r)
        before = db_all(self.d, "SELECT COUNT(*) FROM departments")
        w = self.req("POST", "/v1/departments", {"name": "不许", "parent_id": self.dept["id"]},
                     token=r.json["key"])
        self.assertProblemType(w, 403, "forbidden")
        self.assertEqual(db_all(self.d, "SELECT COUNT(*) FROM departments"), before)

    def test_name_rules(self):
        before = self.tokens_count()
        for body, field in (({}, "name"), ({"name": ""}, "name"), ({"name": "x" * 129}, "name"),
                            ({"name": "a\nb"}, "name"), ({"name": "k", "key": "gck_x"}, "key")):
            with self.subTest(body=body):
                r = self.req("POST", "/v1/api-keys", body, token=self.tok)
                self.assertProblemType(r, 400, "invalid-request")
                self.assertEqual(r.json.get("field"), field)
        self.assertEqual(self.tokens_count(), before)


class PasswordTest(AuthTestCase):

    BAD = [
        ("Ab1!xyz", "at least"),                  # 7 characters
        ("Abcdef1!", "at least"),                 # 8 < 10
        ("abcdefghijkl", "three kinds"),          # one kind
        ("abcdefghij12", "three kinds"),          # two kinds
        ("ABCDEFGHIJ!!", "three kinds"),          # two kinds
        ("Abcdefgh1\x01xyz", "control"),
        ("Abcdefgh1\u007fxyz", "control"),
        ("Ab1!" * 65, "256"),                     # 260 characters
    ]

    def test_policy_on_create(self):
        before = db_all(self.d, "SELECT COUNT(*) FROM users")
        for pw, why in self.BAD:
            with self.subTest(pw=pw[:20]):
                r = self.req("POST", "/v1/users", {"username": "pw-new", "password": pw,
                                                   "role": "operator"}, token=self.admin)
                self.assertProblemType(r, 400, "invalid-request", "password")
                self.assertEqual(r.json.get("field"), "password")
                self.assertIn(why, r.json["detail"])
        self.assertEqual(db_all(self.d, "SELECT COUNT(*) FROM users"), before)
        # three kinds and ten characters is enough; so is 256 characters
        self.mkuser("pw-ok", "operator", password="Abcdefghij12")
        self.mkuser("pw-long", "operator", password="Ab1!" * 64)
        self.assertEqual(self.login_r("pw-ok", "Abcdefghij12").status, 201)

    def test_policy_on_change(self):
        u = self.mkuser("pw-change", "operator")
        tok = self.d.login("pw-change", PW)
        for who, token, path in (("self", tok, "/v1/users/me"),
                                 ("admin", self.admin, f"/v1/users/{u['id']}")):
            for pw, why in self.BAD:
                with self.subTest(who=who, pw=pw[:20]):
                    body = {"password": pw}
                    if who == "self":
                        body["current_password"] = PW
                    r = self.req("PATCH", path, body, token=token)
                    self.assertProblemType(r, 400, "invalid-request", "password")
                    self.assertEqual(r.json.get("field"), "password")
        after = self.user_row(u["id"])
        self.assertEqual((after["version"], after["password_changed_at"]),
                         (1, u["password_changed_at"]))
        self.assertEqual(self.me(tok).status, 200)
        self.assertEqual(self.login_r("pw-change", PW).status, 201)

    def test_change_own_password_revokes_other_sessions(self):
        u = self.mkuser("pw-self", "operator")
        t1 = self.d.login("pw-self", PW)
        t2 = self.d.login("pw-self", PW)
        other_user = self.mkuser("pw-bystander", "operator")
        t3 = self.d.login("pw-bystander", PW)
        time.sleep(0.01)
        new = "N3w-Secret-Pass"
        # the current password is needed, and must be right; nothing changes otherwise
        r = self.req("PATCH", "/v1/users/me", {"password": new}, token=t1)
        self.assertProblemType(r, 400, "invalid-request", "current_password")
        r = self.req("PATCH", "/v1/users/me", {"password": new,
                                               "current_password": "Wrong-Passw0rd"}, token=t1)
        self.assertEqual(r.status, 403, r)
        self.assertEqual(self.me(t2).status, 200)
        r = self.req("PATCH", "/v1/users/me", {"password": new, "current_password": PW},
                     token=t1)
        self.assertEqual(r.status, 200, r)
        # (the one wrong guess above counted as a failed login; the right one and the login
        # below reset nothing else)
        self.assertNotIn(new.encode(), r.body)
        self.assertGreater(parse_time(r.json["password_changed_at"]),
                           parse_time(u["password_changed_at"]))
        self.assertEqual(r.json["version"], 2)
        self.assert401(self.me(t2))
        self.assertEqual(self.me(t1).status, 200)        # the session that changed it stays
        self.assertEqual(self.me(t3).status, 200)        # other users are not affected
        self.assertProblemType(self.login_r("pw-self", PW), 401, "unauthorized")
        self.assertEqual(self.login_r("pw-self", new).status, 201)
        e = db_all(self.d, "SELECT detail FROM audit_events WHERE action = 'user.update' AND "
                   "resource_id = ?", (u["id"],))
        self.assertEqual(len(e), 1)
        self.assertIn('"password_changed":true', e[0][0])
        self.assertNotIn(new, e[0][0])
        self.assertIsNotNone(other_user)

    def test_guessing_the_current_password_locks_and_ends_sessions(self):
        self.mkuser("pw-guess", "operator")
        t1 = self.d.login("pw-guess", PW)
        for i in range(4):
            r = self.req("PATCH", "/v1/users/me", {"password": "N3w-Secret-Pass",
                                                   "current_password": f"Guess-{i}-Passw0rd"},
                         token=t1)
            self.assertEqual(r.status, 403, r)
        r = self.req("PATCH", "/v1/users/me", {"password": "N3w-Secret-Pass",
                                               "current_password": "Guess-5-Passw0rd"}, token=t1)
        self.assertEqual(r.status, 429, r)
        self.assertIn("locked", r.json["detail"])
        self.assertTrue(r.headers.get("Retry-After"))
        self.assert401(self.me(t1))                      # the session is ended
        self.assertEqual(self.login_r("pw-guess", PW).status, 429)   # and the account locked

    def test_admin_reset_ends_all_sessions_of_that_user(self):
        u = self.mkuser("pw-reset", "operator")
        t1 = self.d.login("pw-reset", PW)
        t2 = self.d.login("pw-reset", PW)
        r = self.req("PATCH", f"/v1/users/{u['id']}", {"password": "Reset-Passw0rd!"},
                     token=self.admin)
        self.assertEqual(r.status, 200, r)
        self.assert401(self.me(t1))
        self.assert401(self.me(t2))
        self.assertEqual(self.me(self.admin).status, 200)
        self.assertEqual(self.login_r("pw-reset", "Reset-Passw0rd!").status, 201)

    def test_users_change_own_display_name_but_not_role(self):
        dept = self.mkdept("自改局")
        u = self.mkuser("pw-du", "department_user", dept["id"])
        tok = self.d.login("pw-du", PW)
        r = self.req("PATCH", "/v1/users/me", {"display_name": "小王"}, token=tok)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["display_name"], "小王")
        for body, field in (({"role": "department_admin"}, "role"),
                            ({"department_id": None}, "department_id"),
                            ({"disabled": False}, "disabled")):
            with self.subTest(body=body):
                r = self.req("PATCH", f"/v1/users/{u['id']}", body, token=tok)
                self.assertProblemType(r, 403, "forbidden")
                self.assertEqual(r.json.get("field"), field)
        after = self.user_row(u["id"])
        self.assertEqual((after["role"], after["version"]), ("department_user", 2))


class DisabledUserTest(AuthTestCase):

    def test_disabled_user(self):
        u = self.mkuser("dis-user", "operator")
        tok = self.d.login("dis-user", PW)
        k = self.req("POST", "/v1/api-keys", {"name": "dis-key"}, token=tok)
        self.assertEqual(k.status, 201, k)
        key = k.json["key"]
        self.assertEqual(self.me(key).status, 200)

        r = self.req("PATCH", f"/v1/users/{u['id']}", {"disabled": True}, token=self.admin)
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.json["disabled"])
        self.assert401(self.me(tok))
        self.assert401(self.me(key))
        self.assert401(self.req("POST", "/v1/api-keys", {"name": "more"}, token=key))

        before = db_all(self.d, "SELECT COUNT(*) FROM tokens WHERE user_id = ?", (u["id"],))
        r = self.login_r("dis-user", PW)
        self.assertProblemType(r, 403, "forbidden", "disabled")
        self.assertEqual(db_all(self.d, "SELECT COUNT(*) FROM tokens WHERE user_id = ?",
                                (u["id"],)), before)
        self.assertProblemType(self.login_r("dis-user", "Wrong-Passw0rd!"), 401, "unauthorized")
        e = self.one_audit(action="auth.login", resource_id=u["id"], outcome="denied")
        self.assertIn("disabled", e["reason"])

        r = self.req("PATCH", f"/v1/users/{u['id']}", {"disabled": False}, token=self.admin)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.me(self.d.login("dis-user", PW)).status, 200)


class AdminGuardTest(AuthTestCase):

    def test_admin_cannot_demote_or_disable_itself(self):
        me = self.me(self.admin).json
        for path in ("/v1/users/me", f"/v1/users/{me['id']}"):
            for body, field in (({"role": "operator"}, "role"), ({"disabled": True}, "disabled"),
                                ({"department_id": None}, "department_id")):
                with self.subTest(path=path, body=body):
                    r = self.req("PATCH", path, body, token=self.admin)
                    self.assertProblemType(r, 403, "forbidden")
                    self.assertEqual(r.json.get("field"), field)
        after = self.me(self.admin).json
        self.assertEqual((after["role"], after["disabled"], after["version"]),
                         ("platform_admin", False, me["version"]))

    def test_nobody_can_delete_themselves(self):
        me = self.me(self.admin).json
        r = self.req("DELETE", f"/v1/users/{me['id']}", token=self.admin)
        self.assertProblemType(r, 403, "forbidden")
        r = self.req("DELETE", "/v1/users/me", token=self.admin)
        self.assertIn(r.status, (403, 404), r)
        self.assertProblem(r, r.status)
        self.assertEqual(self.me(self.admin).status, 200)

        dept = self.mkdept("自删局")
        da = self.mkuser("self-da", "department_admin", dept["id"])
        tok = self.d.login("self-da", PW)
        r = self.req("DELETE", f"/v1/users/{da['id']}", token=tok)
        self.assertProblemType(r, 403, "forbidden")
        self.assertEqual(self.me(tok).status, 200)
        self.assertEqual(db_all(self.d, "SELECT COUNT(*) FROM users WHERE id = ?", (da["id"],)),
                         [(1,)])

    def test_an_admin_may_demote_another_admin(self):
        c = self.mkuser("admin-c", "platform_admin")
        tc = self.d.login("admin-c", PW)
        r = self.req("PATCH", f"/v1/users/{c['id']}", {"role": "auditor"}, token=self.admin)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["role"], "auditor")
        # the demoted admin's session now has the new role
        self.assertEqual(self.me(tc).json["role"], "auditor")
        self.assertProblemType(self.req("POST", "/v1/departments", {"name": "不行"}, token=tc),
                               403, "forbidden")


if __name__ == "__main__":
    unittest.main()
