"""Hostile and malformed input against every endpoint that takes a body, plus query
parameters and path ids: every refusal is a 4xx application/problem+json, nothing is written
to departments/users/tokens/jobs, the daemon never answers 5xx and stays up."""

import http.client
import json
import select
import socket
import sqlite3
import unittest
import urllib.parse

from gcharness import DaemonTestCase

PW = "User-Passw0rd!"
MIB = 1 << 20
PROBLEM_BASE = "https://govcloud.example/problems/"
JSON_CT = {"Content-Type": "application/json"}
NOWHERE = "01a00000-0000-7000-8000-000000000000"   # valid shape, no such object

SNAPSHOT_SQL = {
    "departments": "SELECT * FROM departments ORDER BY id",
    "users": "SELECT * FROM users ORDER BY id",
    "tokens": "SELECT id, secret_hash, kind, name, user_id, created_at, expires_at FROM tokens"
              " ORDER BY id",
    "jobs": "SELECT * FROM jobs ORDER BY id",
}

SQLI = ["x' OR '1'='1", "1; DROP TABLE users;--", "' UNION SELECT id, password_hash FROM users--",
        "admin'--", "\") OR 1=1 --"]


def str_field(nullable=False, lo=0, hi=0, text=False):
    return {"type": "string", "nullable": nullable, "min": lo, "max": hi, "text": text}


BOOL = {"type": "bool", "nullable": False}
OBJECT = {"type": "object", "nullable": False}


class BadInputTest(DaemonTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.statuses = []

        def ok(r, status=201):
            assert r.status == status, r
            return r.json
        cls.dept = ok(cls.d.request("POST", "/v1/departments",
                                    {"name": "坏输入局", "code": "BI-D"}, token=cls.admin))
        cls.empty = ok(cls.d.request("POST", "/v1/departments",
                                     {"name": "空科", "parent_id": cls.dept["id"]},
                                     token=cls.admin))
        cls.user = ok(cls.d.request("POST", "/v1/users",
                                    {"username": "bi-user", "password": PW,
                                     "role": "department_user",
                                     "department_id": cls.dept["id"]}, token=cls.admin))
        D, U = cls.dept["id"], cls.user["id"]
        # Each endpoint with a base body that would succeed, and its fields.
        cls.endpoints = [
            {"name": "dept.create", "method": "POST", "path": "/v1/departments",
             "base": {"name": "坏输入新", "code": "BI-NEW", "parent_id": D, "description": "d"},
             "fields": {"name": str_field(False, 1, 128, True),
                        "parent_id": str_field(True, 36, 36),
                        "code": str_field(True, 1, 64),
                        "description": str_field(False, 0, 1024)}},
            {"name": "dept.update", "method": "PATCH", "path": f"/v1/departments/{D}",
             "base": {"name": "坏输入改", "code": "BI-CHG", "description": "changed"},
             "fields": {"name": str_field(False, 1, 128, True),
                        "parent_id": str_field(True, 36, 36),
                        "code": str_field(True, 1, 64),
                        "description": str_field(False, 0, 1024)}},
            {"name": "user.create", "method": "POST", "path": "/v1/users",
             "base": {"username": "bi-new", "password": PW, "role": "department_user",
                      "department_id": D, "display_name": "新"},
             "fields": {"username": str_field(False, 2, 64),
                        "password": str_field(False, 1, 256),
                        "role": str_field(False, 1, 32),
                        "department_id": str_field(True, 1, 64),
                        "display_name": str_field(False, 0, 128, True)}},
            {"name": "user.update", "method": "PATCH", "path": f"/v1/users/{U}",
             "base": {"display_name": "改名", "disabled": False},
             "fields": {"display_name": str_field(False, 0, 128, True),
                        "password": str_field(False, 1, 256),
                        "role": str_field(False, 1, 32),
                        "department_id": str_field(True, 1, 64),
                        "disabled": BOOL, "locked": BOOL}},
            {"name": "api_key.create", "method": "POST", "path": "/v1/api-keys",
             "base": {"name": "bi-key", "expires_at": "2099-01-01T00:00:00Z"},
             "fields": {"name": str_field(False, 1, 128, True),
                        "expires_at": str_field(True, 1, 64)}},
            {"name": "job.create", "method": "POST", "path": "/v1/jobs",
             "base": {"kind": "test.sleep", "params": {"steps": 1, "step_ms": 0}},
             "fields": {"kind": str_field(False, 1, 64), "params": OBJECT}},
            {"name": "token.create", "method": "POST", "path": "/v1/tokens", "auth": False,
             "base": {"username": "bi-user", "password": PW},
             "fields": {"username": str_field(False, 1, 64),
                        "password": str_field(False, 1, 1024)}},
        ]

    @classmethod
    def tearDownClass(cls):
        fivexx = [s for s in cls.statuses if s[0] >= 500]
        super().tearDownClass()
        if fivexx:
            raise AssertionError(f"the daemon answered 5xx: {fivexx[:10]}")

    # ---- helpers ----

    def req(self, method, path, body=None, token=None, **kw):
        r = self.d.request(method, path, body, token=token, **kw)
        self.statuses.append((r.status, method, path[:120]))
        self.assertLess(r.status, 500, f"{method} {path[:200]} -> {r}")
        return r

    def send(self, ep, raw=None, body=None, headers=None):
        h = dict(JSON_CT)
        h.update(headers or {})
        if body is not None:
            raw = json.dumps(body).encode()
        token = self.admin if ep.get("auth", True) else None
        return self.req(ep["method"], ep["path"], raw=raw, token=token, headers=h)

    def raw_http(self, method, path, body=b"", headers=None):
        """http.client request: no default headers (urllib would add a Content-Type)."""
        c = http.client.HTTPConnection("127.0.0.1", self.d.port, timeout=30)
        try:
            c.request(method, path, body=body, headers=headers or {})
            resp = c.getresponse()
            data = resp.read()
        finally:
            c.close()
        self.statuses.append((resp.status, method, path[:120]))
        self.assertLess(resp.status, 500, f"{method} {path} -> {resp.status} {data[:300]!r}")
        j = json.loads(data) if data and "json" in (resp.getheader("Content-Type") or "") \
            else None
        return resp.status, resp, j

    def exchange(self, method, path, headers, body, chunked=False, wait=1.0):
        """One request over a raw socket, for bodies the server may refuse before reading:
        sends the head, gives the server `wait` seconds to answer early, sends the body
        only if it did not (a closed connection is fine), then reads the response.
        Returns (status, lowercase headers, parsed JSON or None)."""
        s = socket.create_connection(("127.0.0.1", self.d.port), timeout=30)
        try:
            h = {"Host": "127.0.0.1", "Connection": "close", **headers}
            if chunked:
                h["Transfer-Encoding"] = "chunked"
            else:
                h["Content-Length"] = str(len(body))
            s.sendall((f"{method} {path} HTTP/1.1\r\n" +
                       "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n").encode())
            early, _, _ = select.select([s], [], [], wait)
            if not early:
                try:
                    if chunked:
                        for i in range(0, len(body), 65536):
                            part = body[i:i + 65536]
                            s.sendall(b"%x\r\n" % len(part) + part + b"\r\n")
                        s.sendall(b"0\r\n\r\n")
                    else:
                        s.sendall(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass
            data = b""
            try:
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            except (ConnectionResetError, socket.timeout):
                pass
        finally:
            s.close()
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.assertTrue(lines[0].startswith("HTTP/1.1 "),
                        f"{method} {path}: no HTTP response, got {data[:200]!r}")
        status = int(lines[0].split()[1])
        hdrs = {k.strip().lower(): v.strip()
                for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)}
        if "content-length" in hdrs:
            rest = rest[:int(hdrs["content-length"])]
        self.statuses.append((status, method, path[:120]))
        self.assertLess(status, 500, f"{method} {path} -> {status} {rest[:300]!r}")
        j = json.loads(rest) if rest and "json" in hdrs.get("content-type", "") else None
        return status, hdrs, j

    def assertRawProblem(self, status, hdrs, j, want, slug):
        self.assertEqual(status, want, j)
        self.assertTrue(hdrs.get("content-type", "").startswith("application/problem+json"),
                        hdrs)
        self.assertEqual(j["status"], want)
        self.assertEqual(j["type"], PROBLEM_BASE + slug)
        for k in ("title", "detail", "instance", "request_id"):
            self.assertIn(k, j)

    def auth_headers(self, ep):
        h = dict(JSON_CT)
        if ep.get("auth", True):
            h["Authorization"] = "Bearer " + self.admin
        return h

    def snapshot(self):
        with sqlite3.connect(f"file:{self.d.db_path}?mode=ro", uri=True, timeout=10) as db:
            return {t: db.execute(q).fetchall() for t, q in SNAPSHOT_SQL.items()}

    def assertUnchanged(self, before, what=""):
        after = self.snapshot()
        for t in SNAPSHOT_SQL:
            self.assertEqual(after[t], before[t], f"table {t} changed after {what}")

    def assertRefused(self, r, status, before, field=None, what=""):
        self.assertProblem(r, status)
        self.assertTrue(r.json["type"].startswith(PROBLEM_BASE), r.json)
        self.assertEqual(r.json["request_id"], r.headers.get("X-Request-Id"))
        if field is not None:
            self.assertEqual(r.json.get("field"), field, r.json)
        self.assertUnchanged(before, what)

    def each_endpoint(self):
        for ep in self.endpoints:
            yield ep

    # ---- bodies ----

    def test_malformed_json(self):
        raws = [b"{", b"}", b'{"name": "x"', b'{"name": "x",}', b"{'name': 'x'}",
                b'{name: "x"}', b'{"name": "x"} trailing', b'{"name": "x"}{"name": "y"}',
                b'{"name": NaN}', b'{"name": Infinity}', b'{"name": undefined}',
                b'{"name": "x\\q"}', b'{"name": "\\u12"}', b'{"name" "x"}', b'{"name": 01}',
                b'{"n": 1e99999}', b'{"n": 123456789012345678901234567890}',
                b'{"a": ' + b"[" * 3000 + b"]" * 3000 + b"}",
                b'{"name": "x"}\x00', b"\x00", b"{\"name\": \"x\"}\n\x1a"]
        for ep in self.each_endpoint():
            for raw in raws:
                with self.subTest(ep=ep["name"], raw=raw[:40]):
                    before = self.snapshot()
                    r = self.send(ep, raw=raw)
                    self.assertRefused(r, 400, before, what=raw[:40])
                    self.assertIn("JSON", r.json["detail"])

    def test_truncated_json(self):
        for ep in self.each_endpoint():
            full = json.dumps(ep["base"], ensure_ascii=False).encode()
            for cut in sorted({1, 2, len(full) // 3, len(full) // 2, len(full) - 2,
                               len(full) - 1}):
                with self.subTest(ep=ep["name"], cut=cut):
                    before = self.snapshot()
                    r = self.send(ep, raw=full[:cut])
                    self.assertRefused(r, 400, before, what=f"cut at {cut}")

    def test_empty_body(self):
        for ep in self.each_endpoint():
            for raw in (b"", b" ", b"\r\n"):
                with self.subTest(ep=ep["name"], raw=raw):
                    before = self.snapshot()
                    r = self.send(ep, raw=raw)
                    self.assertRefused(r, 400, before)

    def test_not_an_object(self):
        for ep in self.each_endpoint():
            for body in ([], [ep["base"]], "x", 42, 1.5, None, True, False):
                with self.subTest(ep=ep["name"], body=body):
                    before = self.snapshot()
                    r = self.send(ep, raw=json.dumps(body).encode())
                    self.assertRefused(r, 400, before)
                    self.assertTrue("object" in r.json["detail"] or "JSON" in r.json["detail"],
                                    r.json["detail"])

    def test_wrong_types(self):
        wrong = {"string": [1, 1.5, True, False, [], ["x"], {}, {"a": "b"}],
                 "bool": ["true", "false", 1, 0, [], {}, 1.0],
                 "object": ["x", 1, [], True, ["a"]]}
        for ep in self.each_endpoint():
            for field, spec in ep["fields"].items():
                values = list(wrong[spec["type"]])
                if not spec["nullable"]:
                    values.append(None)
                for v in values:
                    with self.subTest(ep=ep["name"], field=field, value=v):
                        before = self.snapshot()
                        body = dict(ep["base"])
                        body[field] = v
                        r = self.send(ep, body=body)
                        self.assertRefused(r, 400, before, field=field)
                        self.assertIn(field, r.json["detail"])

    def test_params_members_are_checked(self):
        ep = next(e for e in self.endpoints if e["name"] == "job.create")
        for params, field in (({"steps": "1"}, "params.steps"), ({"steps": 0}, "params.steps"),
                              ({"steps": 1.5}, "params.steps"), ({"bogus": 1}, "params.bogus"),
                              ({"step_ms": -1}, "params.step_ms")):
            with self.subTest(params=params):
                before = self.snapshot()
                r = self.send(ep, body={"kind": "test.sleep", "params": params})
                self.assertRefused(r, 400, before, field=field)

    def test_unknown_fields(self):
        extras = {"bogus": 1, "id": NOWHERE, "version": 7, "created_at": "2020-01-01T00:00:00Z",
                  "NAME": "x", "": "empty key", "password_hash": "x", "名字": "中文"}
        for ep in self.each_endpoint():
            for k, v in extras.items():
                if k in ep["fields"]:
                    continue
                with self.subTest(ep=ep["name"], field=k):
                    before = self.snapshot()
                    r = self.send(ep, body={**ep["base"], k: v})
                    # an empty name cannot be given as 'field' (empty means none)
                    self.assertRefused(r, 400, before, field=k if k else None)
                    self.assertIn(f"'{k}'", r.json["detail"])

    def test_duplicate_keys(self):
        for ep in self.each_endpoint():
            k, v = next(iter(ep["base"].items()))
            body = json.dumps(ep["base"])[:-1] + ", " + json.dumps(k) + ": " + json.dumps(v) + "}"
            with self.subTest(ep=ep["name"], key=k):
                before = self.snapshot()
                r = self.send(ep, raw=body.encode())
                self.assertRefused(r, 400, before)
                self.assertIn("duplicate", r.json["detail"])

    def test_invalid_utf8(self):
        bad_bytes = [b"\xff\xfe", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf5\x80\x80\x80", b"a\x80b",
                     b"\xe4\xb8"]
        for ep in self.each_endpoint():
            field = next(f for f, s in ep["fields"].items() if s["type"] == "string")
            for bb in bad_bytes:
                with self.subTest(ep=ep["name"], bytes=bb, where="value"):
                    body = dict(ep["base"])
                    body[field] = "@@BAD@@"
                    raw = json.dumps(body).encode().replace(b"@@BAD@@", bb)
                    before = self.snapshot()
                    r = self.send(ep, raw=raw)
                    self.assertRefused(r, 400, before)
                with self.subTest(ep=ep["name"], bytes=bb, where="key"):
                    raw = json.dumps({**ep["base"], "@@BAD@@": 1}).encode().replace(
                        b"@@BAD@@", bb)
                    before = self.snapshot()
                    r = self.send(ep, raw=raw)
                    self.assertRefused(r, 400, before)
        # the example from the brief, verbatim
        before = self.snapshot()
        r = self.req("POST", "/v1/departments", raw=b'{"name":"\xff\xfe"}', token=self.admin,
                     headers=JSON_CT)
        self.assertRefused(r, 400, before)

    def test_nul_and_lone_surrogate_escapes(self):
        for ep in self.each_endpoint():
            field = next(f for f, s in ep["fields"].items() if s["type"] == "string")
            for esc in (b"\\u0000", b"a\\u0000b", b"\\ud800", b"\\udc00x", b"\\ud800\\u0041"):
                with self.subTest(ep=ep["name"], escape=esc):
                    body = dict(ep["base"])
                    body[field] = "@@ESC@@"
                    raw = json.dumps(body).encode().replace(b"@@ESC@@", esc)
                    before = self.snapshot()
                    r = self.send(ep, raw=raw)
                    self.assertRefused(r, 400, before)
            with self.subTest(ep=ep["name"], escape="NUL in a key"):
                raw = json.dumps(ep["base"]).encode()[:-1] + b', "na\\u0000me": "x"}'
                before = self.snapshot()
                self.assertRefused(self.send(ep, raw=raw), 400, before)

    def test_control_characters_in_names(self):
        ctrls = ["a\x01b", "a\nb", "a\rb", "a\tb", "\x1b[31mred", "a\x7fb", "trailing\n",
                 "a\u0085b", "a\u009bb"]
        for ep in self.each_endpoint():
            for field, spec in ep["fields"].items():
                if not spec.get("text"):
                    continue
                for v in ctrls:
                    with self.subTest(ep=ep["name"], field=field, value=v):
                        before = self.snapshot()
                        r = self.send(ep, body={**ep["base"], field: v})
                        self.assertRefused(r, 400, before, field=field)
                        self.assertIn("control", r.json["detail"])

    def test_restricted_charsets(self):
        cases = [("dept.create", "code", ["a b", "a/b", "编码", "a'b", "a;b"]),
                 ("user.create", "username", ["Zhang", "1abc", "-abc", "a b", "zhang@x",
                                              "张三", "a'b"]),
                 ("job.create", "kind", ["test sleep", "test;sleep"])]
        for ep_name, field, values in cases:
            ep = next(e for e in self.endpoints if e["name"] == ep_name)
            for v in values:
                with self.subTest(ep=ep_name, field=field, value=v):
                    before = self.snapshot()
                    r = self.send(ep, body={**ep["base"], field: v})
                    self.assertRefused(r, 400, before, field=field)

    def test_string_lengths(self):
        for ep in self.each_endpoint():
            for field, spec in ep["fields"].items():
                if spec["type"] != "string":
                    continue
                values = {"max+1": "a" * (spec["max"] + 1),
                          "max+1 (CJK)": "测" * (spec["max"] + 1),
                          "500 KB": "a" * (500 * 1024)}
                if spec["min"] > 0:
                    values["min-1"] = "a" * (spec["min"] - 1)
                for label, v in values.items():
                    with self.subTest(ep=ep["name"], field=field, len=label):
                        before = self.snapshot()
                        r = self.send(ep, body={**ep["base"], field: v})
                        self.assertRefused(r, 400, before, field=field)
                        self.assertIn(field, r.json["detail"])

    def test_huge_body_with_content_length(self):
        raw = b'{"name":"' + b"a" * MIB + b'"}'
        for ep in self.each_endpoint():
            with self.subTest(ep=ep["name"]):
                before = self.snapshot()
                st, hdrs, j = self.exchange(ep["method"], ep["path"], self.auth_headers(ep), raw)
                self.assertRawProblem(st, hdrs, j, 413, "payload-too-large")
                self.assertUnchanged(before)
        # one byte over the limit is too much; exactly at the limit is read
        ep = self.endpoints[0]
        pre, post = b'{"name":"x","description":"', b'"}'
        fill = MIB - len(pre) - len(post)
        before = self.snapshot()
        st, hdrs, j = self.exchange(ep["method"], ep["path"], self.auth_headers(ep),
                                    pre + b"a" * (fill + 1) + post)
        self.assertRawProblem(st, hdrs, j, 413, "payload-too-large")
        r = self.send(ep, raw=pre + b"a" * fill + post)
        self.assertRefused(r, 400, before, field="description")

    def test_huge_body_chunked(self):
        raw = b'{"name":"' + b"a" * (MIB + 4096) + b'"}'
        for ep in self.each_endpoint():
            with self.subTest(ep=ep["name"]):
                before = self.snapshot()
                st, hdrs, j = self.exchange(ep["method"], ep["path"], self.auth_headers(ep), raw,
                                            chunked=True, wait=0.05)
                self.assertRawProblem(st, hdrs, j, 413, "payload-too-large")
                self.assertUnchanged(before)

    def test_oversized_content_length_refused_before_the_body(self):
        """'bodies larger than max_body_bytes get 413 and are not read': a client that
        announces 1 GiB gets 413 at once, not '100 Continue' or a wait for the body."""
        for expect in (True, False):
            with self.subTest(expect_100_continue=expect):
                s = socket.create_connection(("127.0.0.1", self.d.port), timeout=5)
                try:
                    s.sendall((f"POST /v1/departments HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                               f"Authorization: Bearer {self.admin}\r\n"
                               f"Content-Type: application/json\r\n"
                               f"Content-Length: {1 << 30}\r\n" +
                               ("Expect: 100-continue\r\n" if expect else "") +
                               "\r\n").encode())
                    try:
                        first = s.recv(200)
                    except socket.timeout:
                        first = b"(no answer within 5 s)"
                finally:
                    s.close()
                self.assertTrue(first.startswith(b"HTTP/1.1 413"), first)

    def test_wrong_content_type(self):
        types = ["text/plain", "application/x-www-form-urlencoded", "application/xml",
                 "application/jsonx", "application/json-patch+json",
                 "application/merge-patch+json", "multipart/form-data; boundary=x",
                 "text/json", "json", ""]
        for ep in self.each_endpoint():
            raw = json.dumps(ep["base"]).encode()
            for ct in types:
                with self.subTest(ep=ep["name"], ctype=ct):
                    before = self.snapshot()
                    r = self.send(ep, raw=raw, headers={"Content-Type": ct})
                    self.assertRefused(r, 415, before, field="Content-Type")
                    self.assertEqual(r.json["type"], PROBLEM_BASE + "unsupported-media-type")
            with self.subTest(ep=ep["name"], ctype="(none)"):
                h = {}
                if ep.get("auth", True):
                    h["Authorization"] = "Bearer " + self.admin
                before = self.snapshot()
                status, _, j = self.raw_http(ep["method"], ep["path"], raw, h)
                self.assertEqual(status, 415, j)
                self.assertUnchanged(before)

    def test_body_on_routes_without_body(self):
        tok = self.d.login("bi-user", PW)
        cases = [("GET", "/v1/departments", self.admin),
                 ("GET", f"/v1/departments/{self.dept['id']}", self.admin),
                 ("DELETE", f"/v1/departments/{self.empty['id']}", self.admin),
                 ("DELETE", f"/v1/users/{self.user['id']}", self.admin),
                 ("DELETE", "/v1/tokens/current", tok),
                 ("POST", f"/v1/jobs/{NOWHERE}/cancel", self.admin)]
        for method, path, token in cases:
            with self.subTest(method=method, path=path):
                before = self.snapshot()
                r = self.req(method, path, raw=b'{"x": 1}', token=token, headers=JSON_CT)
                self.assertRefused(r, 400, before)
        self.assertEqual(self.req("GET", "/v1/users/me", token=tok).status, 200)

    def test_unauthenticated_bad_input_is_401(self):
        for raw in (b"{", b'{"name": 5}', b"[]"):
            with self.subTest(raw=raw):
                before = self.snapshot()
                r = self.req("POST", "/v1/departments", raw=raw, headers=JSON_CT)
                self.assertRefused(r, 401, before)

    # ---- SQL injection ----

    def test_sql_injection_as_values(self):
        before = self.snapshot()
        made = []
        for s in SQLI:
            with self.subTest(where="department name", value=s):
                r = self.req("POST", "/v1/departments",
                             {"name": s, "description": s, "parent_id": self.dept["id"]},
                             token=self.admin)
                self.assertEqual(r.status, 201, r)
                made.append(r.json["id"])
                g = self.req("GET", f"/v1/departments/{r.json['id']}", token=self.admin)
                self.assertEqual((g.json["name"], g.json["description"]), (s, s))
        with sqlite3.connect(f"file:{self.d.db_path}?mode=ro", uri=True) as db:
            names = {row[0] for row in db.execute("SELECT name FROM sqlite_master "
                                                  "WHERE type = 'table'")}
            self.assertLessEqual({"departments", "users", "tokens", "audit_events", "jobs"},
                                 names)
            self.assertEqual(db.execute("SELECT COUNT(*) FROM departments WHERE id IN (%s)" %
                                        ",".join("?" * len(made)), made).fetchone()[0],
                             len(made))
        after = self.snapshot()
        self.assertEqual(after["users"], before["users"])
        self.assertEqual(after["tokens"], before["tokens"])
        self.assertEqual(len(after["departments"]), len(before["departments"]) + len(made))
        for i in made:
            self.assertEqual(self.req("DELETE", f"/v1/departments/{i}", token=self.admin).status,
                             204)
        self.assertUnchanged(before, "cleanup")

        for s in SQLI:
            for ep_name, field in (("dept.create", "code"), ("user.create", "username"),
                                   ("job.create", "kind")):
                ep = next(e for e in self.endpoints if e["name"] == ep_name)
                with self.subTest(ep=ep_name, field=field, value=s):
                    before = self.snapshot()
                    r = self.send(ep, body={**ep["base"], field: s})
                    self.assertRefused(r, 400, before, field=field)
            with self.subTest(where="role", value=s):
                ep = next(e for e in self.endpoints if e["name"] == "user.create")
                before = self.snapshot()
                self.assertRefused(self.send(ep, body={**ep["base"], "role": s}), 400, before)
            with self.subTest(where="login username", value=s):
                before = self.snapshot()
                r = self.req("POST", "/v1/tokens", {"username": s, "password": PW})
                self.assertRefused(r, 401, before)
            with self.subTest(where="department_id", value=s):
                ep = next(e for e in self.endpoints if e["name"] == "user.create")
                before = self.snapshot()
                r = self.send(ep, body={**ep["base"], "department_id": s})
                self.assertRefused(r, 400, before, field="department_id")

        # API key names are data
        before = self.snapshot()
        r = self.req("POST", "/v1/api-keys", {"name": SQLI[1]}, token=self.admin)
        self.assertEqual(r.status, 201, r)
        with sqlite3.connect(f"file:{self.d.db_path}?mode=ro", uri=True) as db:
            self.assertEqual(db.execute("SELECT name FROM tokens WHERE id = ?",
                                        (r.json["id"],)).fetchall(), [(SQLI[1],)])
        self.assertEqual(self.req("DELETE", f"/v1/api-keys/{r.json['id']}",
                                  token=self.admin).status, 204)
        self.assertUnchanged(before, "api key cleanup")

    def test_sql_injection_in_query_parameters(self):
        lists = {"/v1/departments": ["name", "code", "parent_id"],
                 "/v1/users": ["username", "department_id", "role"],
                 "/v1/audit-events": ["actor_name", "action", "resource_type", "resource_id",
                                      "outcome", "since", "until"],
                 "/v1/jobs": ["kind", "state"]}
        for path, params in lists.items():
            for p in params:
                for s in SQLI + ["%", "_", "*", "root' OR '1'='1"]:
                    with self.subTest(path=path, param=p, value=s):
                        before = self.snapshot()
                        r = self.req("GET", f"{path}?{p}={urllib.parse.quote(s)}",
                                     token=self.admin)
                        if r.status == 200:
                            # filters are exact: whatever comes back has that very value
                            bad = [x for x in r.json["items"] if x.get(p) != s]
                            self.assertEqual(bad, [], "filter matched objects it should not")
                        else:
                            self.assertProblem(r, 400)
                            self.assertEqual(r.json.get("field"), p)
                        self.assertUnchanged(before)
            for p in ("cursor", "limit"):
                for s in SQLI + ["1 OR 1=1", "50; DROP TABLE users"]:
                    with self.subTest(path=path, param=p, value=s):
                        before = self.snapshot()
                        r = self.req("GET", f"{path}?{p}={urllib.parse.quote(s)}",
                                     token=self.admin)
                        self.assertRefused(r, 400, before, field=p)
        # as a parameter name
        before = self.snapshot()
        r = self.req("GET", "/v1/departments?" + urllib.parse.quote(SQLI[0]) + "=1",
                     token=self.admin)
        self.assertRefused(r, 400, before, field=SQLI[0])

    def test_sql_injection_in_path_ids(self):
        ids = SQLI + [self.dept["id"] + "' OR '1'='1", self.dept["id"] + "'--"]
        for s in ids:
            q = urllib.parse.quote(s, safe="")
            routes = [("GET", f"/v1/departments/{q}", None),
                      ("PATCH", f"/v1/departments/{q}", {"name": "pwned"}),
                      ("DELETE", f"/v1/departments/{q}", None),
                      ("GET", f"/v1/users/{q}", None),
                      ("PATCH", f"/v1/users/{q}", {"display_name": "pwned"}),
                      ("DELETE", f"/v1/users/{q}", None),
                      ("GET", f"/v1/jobs/{q}", None),
                      ("POST", f"/v1/jobs/{q}/cancel", None),
                      ("DELETE", f"/v1/api-keys/{q}", None)]
            for method, path, body in routes:
                with self.subTest(method=method, id=s):
                    before = self.snapshot()
                    r = self.req(method, path, body, token=self.admin)
                    self.assertRefused(r, 404, before)
                    self.assertEqual(r.json["type"], PROBLEM_BASE + "not-found")

    # ---- paths and ids ----

    def test_path_tricks(self):
        D = self.dept["id"]
        paths = ["/v1/departments/../users", "/v1/departments/%2e%2e",
                 "/v1/departments/%2e%2e/users", "/v1//departments", "//v1/departments",
                 "/v1/departments//" + D,
                 f"/v1/departments/{D}/", f"/v1/departments/{D}/x",
                 f"/v1/departments/{D}/../{D}", f"/v1/departments/./{D}",
                 "/V1/DEPARTMENTS", "/v1/departments;x",
                 "/v1/departments/" + "a" * 8000,
                 "/v1/departments/" + "a/" * 2000]
        for p in paths:
            for method in ("GET", "DELETE"):
                with self.subTest(method=method, path=p[:60]):
                    before = self.snapshot()
                    r = self.req(method, p, token=self.admin)
                    self.assertIn(r.status, (404, 405), r)
                    self.assertRefused(r, r.status, before)
                    self.assertNotIn("items", r.json)
        # an encoded '/' is refused outright (docs/api.md, "paths")
        for p in ("/v1/departments/%2e%2e%2fusers", "/v1/departments/%2E%2E%2Fusers",
                  "/v1/departments/..%2Fusers", "/v1/departments/a%2Fb",
                  f"/v1/departments/{D}%2F", f"/v1/users%2F{self.user['id']}",
                  f"/v1/jobs/{NOWHERE}%2fcancel"):
            for method in ("GET", "DELETE", "POST"):
                with self.subTest(method=method, path=p[:60]):
                    before = self.snapshot()
                    r = self.req(method, p, token=self.admin)
                    self.assertRefused(r, 400, before)
                    self.assertIn("encoded", r.json["detail"])

    def test_very_long_request_line(self):
        for n in (100_000, 1_000_000):
            with self.subTest(length=n):
                try:
                    r = self.req("GET", "/v1/departments/" + "a" * n, token=self.admin)
                    self.assertIn(r.status, (404, 414, 431), r)
                except (ConnectionError, http.client.HTTPException, OSError):
                    pass   # the server may drop such a connection
                self.assertEqual(self.req("GET", "/readyz").status, 200)

    def test_invalid_ids_are_404(self):
        D = self.dept["id"]
        ids = ["not-a-uuid", D.upper(), D[:-1], D + "0", "0" * 36,
               "00000000-0000-0000-0000-000000000000", NOWHERE, D.replace("-", ""),
               "%20" + D, D + "%20", "me", "null", "-1", "0", "%25"]
        for i in ids:
            for method, tmpl, body in (("GET", "/v1/departments/{}", None),
                                       ("PATCH", "/v1/departments/{}", {"name": "x"}),
                                       ("DELETE", "/v1/departments/{}", None),
                                       ("GET", "/v1/jobs/{}", None),
                                       ("POST", "/v1/jobs/{}/cancel", None),
                                       ("DELETE", "/v1/api-keys/{}", None)):
                with self.subTest(method=method, path=tmpl, id=i):
                    before = self.snapshot()
                    r = self.req(method, tmpl.format(i), body, token=self.admin)
                    self.assertRefused(r, 404, before)
            for method, body in (("GET", None), ("PATCH", {"display_name": "x"}),
                                 ("DELETE", None)):
                if i == "me" and method != "DELETE":
                    continue   # /v1/users/me is the caller
                with self.subTest(method=method, path="/v1/users/{}", id=i):
                    before = self.snapshot()
                    r = self.req(method, f"/v1/users/{i}", body, token=self.admin)
                    # "me" is the caller, who may not delete themselves
                    self.assertRefused(r, 403 if i == "me" else 404, before)

    def test_nul_in_path_is_400(self):
        """A percent-encoded NUL must not cut the id or value short: /v1/departments/{id}%00x
        is not department {id}; docs/api.md says such a path gets 400."""
        D, E = self.dept["id"], self.empty["id"]
        for method, path, body in (("GET", f"/v1/departments/{D}%00junk", None),
                                   ("PATCH", f"/v1/departments/{D}%00junk", {"name": "pwned"}),
                                   ("DELETE", f"/v1/departments/{E}%00junk", None),
                                   ("GET", f"/v1/users/{self.user['id']}%00", None),
                                   ("PATCH", "/v1/users/me%00x", {"display_name": "pwned"})):
            with self.subTest(method=method, path=path):
                before = self.snapshot()
                r = self.req(method, path, body, token=self.admin)
                self.assertRefused(r, 400, before)

    def test_nul_in_query_value_does_not_truncate(self):
        """?code=BI-D%00junk is not ?code=BI-D: either no match or 400, never department
        BI-D."""
        for q in ("code=BI-D%00junk", "name=" + urllib.parse.quote("坏输入局") + "%00x",
                  f"parent_id={self.dept['id']}%00x"):
            with self.subTest(query=q):
                r = self.req("GET", "/v1/departments?" + q, token=self.admin)
                if r.status == 200:
                    self.assertEqual(r.json["items"], [], r.json)
                else:
                    self.assertProblem(r, 400)

    def test_problem_detail_present_for_non_utf8_text(self):
        """Every problem has a 'detail', also when the path, a parameter name or a field name
        is not valid UTF-8 or is cut in the middle of a character."""
        cut_id = "a" * 63 + urllib.parse.quote("é")         # 65 bytes: %.64s cuts the é
        cut_key = "a" * 63 + "é"
        long_cjk = "重" * 128
        self.req("POST", "/v1/departments", {"name": long_cjk}, token=self.admin)
        cases = [
            ("GET", "/v1/departments/%ff", None, 404),
            ("GET", "/v1/nope%ff", None, 404),
            ("GET", f"/v1/departments/{cut_id}", None, 404),
            ("GET", "/v1/departments?%ff=1", None, 400),
            ("GET", "/v1/departments?" + urllib.parse.quote(cut_key) + "=1", None, 400),
            ("POST", "/v1/departments", {"name": "x", cut_key: 1}, 400),
            ("POST", "/v1/departments", {"name": long_cjk}, 409),
        ]
        for method, path, body, status in cases:
            with self.subTest(method=method, path=path[:60], body=str(body)[:40]):
                before = self.snapshot()
                r = self.req(method, path, body, token=self.admin)
                self.assertRefused(r, status, before)
                self.assertTrue(r.json["detail"])

    # ---- and at the end ----

    def test_zz_daemon_alive_and_store_intact(self):
        self.assertEqual(self.d.proc.poll(), None, "the daemon exited")
        self.assertEqual(self.req("GET", "/readyz").status, 200)
        self.assertEqual(self.req("GET", "/healthz").status, 200)
        v = self.req("GET", "/v1/audit-events/verify", token=self.admin)
        self.assertEqual(v.status, 200, v)
        self.assertTrue(v.json["intact"], v.json)
        with sqlite3.connect(f"file:{self.d.db_path}?mode=ro", uri=True) as db:
            self.assertEqual(db.execute("PRAGMA integrity_check").fetchone()[0], "ok")
            self.assertEqual(db.execute("SELECT COUNT(*) FROM users WHERE username IN "
                                        "('admin', 'bi-user')").fetchone()[0], 2)
        self.assertEqual(self.req("GET", f"/v1/departments/{self.dept['id']}",
                                  token=self.admin).status, 200)
        self.assertEqual(self.d.login("bi-user", PW)[:4], "gct_")
        self.assertEqual([s for s in self.statuses if s[0] >= 500], [])


if __name__ == "__main__":
    unittest.main()
