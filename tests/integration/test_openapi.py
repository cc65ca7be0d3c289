"""The OpenAPI document: the daemon serves docs/openapi.json unchanged, the independent
validator (tests/openapi/validate.js, @apidevtools/swagger-parser) accepts it and finds exactly
the daemon's routes in it, and the error statuses the daemon produces are documented."""

import json
import os
import re
import select
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
import unittest

from gcharness import DAEMON, SOURCE, DaemonTestCase

OPENAPI_DIR = os.path.join(SOURCE, "tests", "openapi")
VALIDATOR = os.path.join(OPENAPI_DIR, "validate.js")
PARSER = os.path.join(OPENAPI_DIR, "node_modules", "@apidevtools", "swagger-parser")
DOC = os.path.join(SOURCE, "docs", "openapi.json")
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
NOWHERE = "01a00000-0000-7000-8000-000000000000"
PW = "User-Passw0rd!"


def list_routes():
    out = subprocess.run([DAEMON, "--list-routes"], capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise AssertionError(f"govcloudd --list-routes exited {out.returncode}: {out.stderr}")
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]


def load_doc():
    with open(DOC, encoding="utf-8") as f:
        return json.load(f)


def operations(doc):
    for path, item in doc["paths"].items():
        for m in METHODS:
            if m in item:
                yield m.upper(), path, item[m]


def status_of_oversized(d, method, path, token, size=(1 << 20) + 2,
                        ctype="application/json"):
    """Status of a request whose body is over 1 MiB (or size). The server may answer before
    the body is sent and close the connection; a client must still read that answer. A body
    is only sent for the default size."""
    s = socket.create_connection(("127.0.0.1", d.port), timeout=30)
    try:
        head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                f"Content-Type: {ctype}\r\nContent-Length: {size}\r\n" +
                (f"Authorization: Bearer {token}\r\n" if token else "") + "\r\n")
        s.sendall(head.encode())
        if not select.select([s], [], [], 1.0)[0] and size == (1 << 20) + 2:
            try:
                s.sendall(b"{" + b" " * (1 << 20) + b"}")
            except (BrokenPipeError, ConnectionResetError):
                pass
        data = b""
        try:
            while not data.count(b"\r\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            pass
    finally:
        s.close()
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else None


def race(d, requests, stagger=0.4, hold=0.6):
    """Sends requests [(method, path, body, token)] while this process holds the store's
    write lock, `stagger` seconds apart (so each gets its own server thread), so that all
    authenticate before any writes; then lets them go. Returns the responses in order."""
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


class OpenApiTest(DaemonTestCase):

    daemon_extra = ("--set", "server.threads=4", "--set", "supervision.accept_pushes=true")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.doc = load_doc()
        cls.routes = list_routes()

    def documented(self, method, path):
        op = self.doc["paths"].get(path, {}).get(method.lower())
        self.assertIsNotNone(op, f"{method} {path} is not in docs/openapi.json")
        return set(op.get("responses", {}))

    def resolve(self, obj):
        while "$ref" in obj:
            node = self.doc
            for part in obj["$ref"].lstrip("#/").split("/"):
                node = node[part]
            obj = node
        return obj

    def test_served_document_is_the_source_file(self):
        r = self.req("GET", "/v1/openapi.json")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.headers["Content-Type"].startswith("application/json"))
        with open(DOC, "rb") as f:
            src = f.read()
        self.assertEqual(r.body, src, "GET /v1/openapi.json differs from docs/openapi.json "
                         "(rebuild the daemon after editing the document)")
        self.assertRegex(r.json["openapi"], r"^3\.0\.\d+$")

    def test_list_routes_output(self):
        self.assertTrue(self.routes)
        for line in self.routes:
            self.assertRegex(line, r"^(GET|POST|PUT|PATCH|DELETE) /\S*$")
        self.assertEqual(len(self.routes), len(set(self.routes)), "duplicate routes")
        # every listed route is really served: not 'no such endpoint', not 405
        for line in self.routes:
            method, path = line.split(" ", 1)
            concrete = re.sub(r"\{[^}]+\}", NOWHERE, path)
            with self.subTest(route=line):
                r = self.req(method, concrete)
                self.assertNotEqual(r.status, 405, r)
                if r.status == 404:
                    self.assertNotIn("no such endpoint", r.json["detail"])

    def test_validator_accepts_document_and_routes_match(self):
        node = shutil.which("node")
        if not node:
            self.fail("node is not installed: the OpenAPI check needs Node.js >= 20.19 "
                      "(scripts/install-deps)")
        if not os.path.isdir(PARSER):
            self.fail(f"{PARSER} is missing: run scripts/openapi-deps (make check does) to "
                      f"install the validator's npm packages")
        with tempfile.NamedTemporaryFile("w", suffix=".routes", delete=False) as f:
            f.write("# govcloudd --list-routes\n" + "\n".join(self.routes) + "\n")
            routes_file = f.name
        try:
            out = subprocess.run([node, VALIDATOR, "--routes", self.d.url + "/v1/openapi.json",
                                  routes_file], capture_output=True, text=True, timeout=120,
                                 cwd=OPENAPI_DIR)
        finally:
            os.unlink(routes_file)
        report = f"validate.js exited {out.returncode}:\n{out.stdout}{out.stderr}"
        self.assertIn("openapi: valid", out.stdout, report)
        self.assertIn("routes: match", out.stdout, report)
        self.assertEqual(out.returncode, 0, report)

    def test_documented_error_statuses_follow_the_conventions(self):
        """Static rules from docs/api.md: a token-protected operation can answer 401; one with
        a body 400, 413 and 415; one with an {id} 404; a list with query parameters 400."""
        missing = []
        global_security = self.doc.get("security", [])
        for method, path, op in operations(self.doc):
            resp = set(op.get("responses", {}))
            need = set()
            if op.get("security", global_security):
                need.add("401")
            if "requestBody" in op:
                need |= {"400", "413", "415"}
            if "{" in path:
                need.add("404")
            params = self.doc["paths"][path].get("parameters", []) + op.get("parameters", [])
            if any(self.resolve(p).get("in") == "query" for p in params):
                need.add("400")
            for s in sorted(need - resp):
                missing.append(f"{method} {path}: {s}")
        self.assertEqual(missing, [], "responses missing from docs/openapi.json")

    def _observe(self):
        """Makes the daemon produce error statuses; returns {(method, path template): {status}}
        after checking each status is the one expected."""
        seen = {}

        def saw(method, tmpl, r, status):
            self.assertEqual(r.status, status, f"{method} {tmpl}: {r}")
            seen.setdefault((method, tmpl), set()).add(str(status))

        patch_body = {"/v1/departments/{id}": {"name": "x"}, "/v1/users/{id}":
                      {"display_name": "x"}, "/v1/departments/{id}/quota": {"vms": 1},
                      "/v1/volumes/{id}/attach": {"vm_id": NOWHERE},
                      "/v1/public-ips/{id}/associate": {"vm_id": NOWHERE},
                      "/v1/vms/{id}/resize": {"flavor_id": NOWHERE},
                      "/v1/vms/{id}/migrate": {"host_id": NOWHERE},
                      "/v1/sensors/{id}": {"room": "x"},
                      "/v1/assets/snmp-devices/{id}": {"timeout_ms": 500},
                      "/v1/notification-channels": {"name": "oa-hook", "enabled": False,
                                                    "url": "http://127.0.0.1:9/hook"},
                      "/v1/maintenance-windows": {"scope": "platform",
                                                  "starts_at": "2030-01-01T00:00:00Z",
                                                  "ends_at": "2030-01-01T02:00:00Z"},
                      "/v1/volumes/{id}/resize": {"size_gib": 2},
                      "/v1/checks/{id}": {"enabled": False},
                      "/v1/alarm-rules/{id}": {"enabled": False},
                      "/v1/alarms/{id}/ack": {"comment": "x"},
                      "/v1/supervision/receivers/{id}": {"enabled": False},
                      "/v1/supervision/clouds/{id}": {"name": "x"},
                      "/v1/volumes/{id}/revert": {"snapshot_id": NOWHERE},
                      "/v1/volumes/{id}/snapshots": {"name": "x"},
                      "/v1/security-groups/{id}/rules": {"direction": "ingress",
                                                         "protocol": "all",
                                                         "cidr": "0.0.0.0/0"}}
        for line in self.routes:
            method, tmpl = line.split(" ", 1)
            doc_op = self.doc["paths"].get(tmpl, {}).get(method.lower())
            if doc_op is None:
                continue     # undocumented route: the validator's route comparison reports it
            path = tmpl.replace("{id}", NOWHERE)
            if doc_op.get("security", self.doc.get("security")):
                saw(method, tmpl, self.req(method, path), 401)
            # a binary (streamed) body: its own limit ([images] max_upload_gib, 64 GiB)
            binary = "application/octet-stream" in doc_op.get("requestBody", {}).get(
                "content", {})
            octet = {"Content-Type": "application/octet-stream"}
            if "requestBody" in doc_op:
                tok = None if tmpl == "/v1/tokens" else self.admin
                saw(method, tmpl, self.req(method, path, raw=b"{}", token=tok,
                                           headers={"Content-Type": "text/plain"}), 415)
                if binary:
                    saw(method, tmpl, self.req(method, path + "?sha256=zz", raw=b"x",
                                               token=tok, headers=octet), 400)
                    st = status_of_oversized(self.d, method, path, tok, size=65 << 30,
                                             ctype="application/octet-stream")
                else:
                    saw(method, tmpl, self.req(method, path, raw=b"[]", token=tok,
                                               headers={"Content-Type": "application/json"}),
                        400)
                    st = status_of_oversized(self.d, method, path, tok)
                self.assertEqual(st, 413, f"{method} {tmpl} with a body over the limit")
                seen.setdefault((method, tmpl), set()).add("413")
            if "{id}" in tmpl and binary:
                saw(method, tmpl, self.req(method, path, raw=b"x", token=self.admin,
                                           headers=octet), 404)
            elif "{id}" in tmpl:
                takes_body = method in ("PATCH", "PUT") or (method == "POST" and
                                                             "requestBody" in doc_op)
                body = patch_body.get(tmpl, {"description": "x"}) if takes_body else None
                saw(method, tmpl, self.req(method, path, body, token=self.admin), 404)

        # a disabled user's login is 403
        r = self.req("POST", "/v1/users", {"username": "oa-disabled", "password": PW,
                                           "role": "operator"}, token=self.admin)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(self.req("PATCH", f"/v1/users/{r.json['id']}", {"disabled": True},
                                  token=self.admin).status, 200)
        saw("POST", "/v1/tokens", self.req("POST", "/v1/tokens", {"username": "oa-disabled",
                                                                  "password": PW}), 403)
        # an API key cannot log out: 400
        k = self.req("POST", "/v1/api-keys", {"name": "oa-key"}, token=self.admin)
        self.assertEqual(k.status, 201, k)
        saw("DELETE", "/v1/tokens/current",
            self.req("DELETE", "/v1/tokens/current", token=k.json["key"]), 400)
        # the last active platform administrator: 409 on PATCH and DELETE. Two admins
        # remove each other at once; the second must be refused (test_auth.LastAdminTest).
        me = self.req("GET", "/v1/users/me", token=self.admin).json["id"]
        for method, body, ok in (("PATCH", {"role": "auditor"}, 200), ("DELETE", None, 204)):
            b = self.req("POST", "/v1/users", {"username": f"oa-admin-{method.lower()}",
                                               "password": PW, "role": "platform_admin"},
                         token=self.admin)
            self.assertEqual(b.status, 201, b)
            tb = self.d.login(f"oa-admin-{method.lower()}", PW)
            first, second = race(self.d, [(method, f"/v1/users/{b.json['id']}", body,
                                           self.admin),
                                          (method, f"/v1/users/{me}", body, tb)])
            self.assertEqual(first.status, ok, first)
            saw(method, "/v1/users/{id}", second, 409)
        return seen

    def test_statuses_the_daemon_produces_are_documented(self):
        missing = []
        for (method, tmpl), statuses in sorted(self._observe().items()):
            documented = self.documented(method, tmpl)
            for s in sorted(statuses - documented):
                missing.append(f"{method} {tmpl}: {s}")
        self.assertEqual(missing, [], "the daemon answered these statuses, which "
                         "docs/openapi.json does not list")

    def test_unknown_query_parameter_400_is_documented(self):
        """docs/api.md: 'an unknown query parameter gets 400' -- on every endpoint."""
        missing = []
        for line in self.routes:
            method, tmpl = line.split(" ", 1)
            if tmpl not in self.doc["paths"]:
                continue     # undocumented route: the validator's route comparison reports it
            path = tmpl.replace("{id}", NOWHERE) + "?no_such_parameter=1"
            with self.subTest(route=line):
                r = self.req(method, path, token=self.admin)
                self.assertProblem(r, 400)
                self.assertEqual(r.json.get("field"), "no_such_parameter")
            if "400" not in self.documented(method, tmpl):
                missing.append(line)
        self.assertEqual(missing, [], "these operations answer 400 to an unknown query "
                         "parameter but docs/openapi.json lists no 400 for them")


if __name__ == "__main__":
    unittest.main()
