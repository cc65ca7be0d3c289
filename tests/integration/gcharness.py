"""Test harness: starts a real govcloudd on a free loopback port with a temporary data
directory, and talks to it over HTTP with the standard library only."""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request

BUILD = os.environ.get("GOVCLOUD_BUILD_DIR",
                       os.path.join(os.path.dirname(__file__), "..", "..", "build"))
SOURCE = os.environ.get("GOVCLOUD_SOURCE_DIR",
                        os.path.join(os.path.dirname(__file__), "..", ".."))
DAEMON = os.path.join(BUILD, "govcloudd")
CLI = os.path.join(BUILD, "govcloud")
ADMIN_PASSWORD = "Admin-Passw0rd!"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body
        ctype = headers.get("Content-Type", "")
        self.json = None
        if body and "json" in ctype:
            self.json = json.loads(body)

    def __repr__(self):
        return f"<Response {self.status} {self.body[:300]!r}>"


class Daemon:
    """One govcloudd process. extra: additional command-line flags."""

    def __init__(self, data_dir=None, extra=(), env=None, test_jobs=True):
        self.own_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="govcloud-test-")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra = list(extra)
        if test_jobs:
            self.extra += ["--set", "jobs.test_job_kinds=true"]
        self.env = dict(os.environ)
        self.env["GOVCLOUD_ADMIN_PASSWORD"] = ADMIN_PASSWORD
        if env:
            self.env.update(env)
        self.proc = None
        self.log_path = os.path.join(self.data_dir, "daemon.log")

    def start(self, timeout=20):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [DAEMON, "--listen", f"127.0.0.1:{self.port}", "--data-dir", self.data_dir,
             *self.extra],
            stdout=self.log, stderr=self.log, env=self.env)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"govcloudd exited with {self.proc.returncode}:\n"
                                   + self.read_log())
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=1) as r:
                    if r.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.05)
        raise RuntimeError("govcloudd did not become ready:\n" + self.read_log())

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """Stops the daemon; returns its exit code."""
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.log.close()
        self.proc = None
        return rc

    def kill9(self):
        return self.stop(signal.SIGKILL)

    def cleanup(self):
        self.stop()
        if self.own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    @property
    def db_path(self):
        return os.path.join(self.data_dir, "govcloud.db")

    # ---- HTTP ----
    def request(self, method, path, body=None, token=None, headers=None, raw=None,
                timeout=30):
        h = dict(headers or {})
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        if token:
            h["Authorization"] = "Bearer " + token
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return Response(r.status, r.headers, r.read())
        except urllib.error.HTTPError as e:
            return Response(e.code, e.headers, e.read())

    def login(self, username="admin", password=ADMIN_PASSWORD):
        r = self.request("POST", "/v1/tokens", {"username": username, "password": password})
        if r.status != 201:
            raise AssertionError(f"login as {username} failed: {r}")
        return r.json["token"]


class DaemonTestCase(unittest.TestCase):
    """A test case with one daemon for the whole class (cls.d) and an admin token."""

    daemon_extra = ()

    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(extra=cls.daemon_extra).start()
        cls.admin = cls.d.login()

    @classmethod
    def tearDownClass(cls):
        rc = cls.d.stop()
        log = cls.d.read_log()
        cls.d.cleanup()
        if rc != 0:
            raise AssertionError(f"govcloudd exited with {rc} on SIGTERM:\n{log[-4000:]}")
        for bad in ("runtime error:", "AddressSanitizer", "LeakSanitizer"):
            if bad in log:
                raise AssertionError(f"sanitizer report in the daemon log:\n{log[-8000:]}")

    # helpers
    def req(self, method, path, body=None, token=None, **kw):
        return self.d.request(method, path, body, token=token, **kw)

    def assertProblem(self, r, status, detail_part=None):
        self.assertEqual(r.status, status, r)
        self.assertTrue(r.headers.get("Content-Type", "").startswith(
            "application/problem+json"), r.headers.get("Content-Type"))
        for k in ("type", "title", "status", "detail", "instance", "request_id"):
            self.assertIn(k, r.json, r.json)
        self.assertEqual(r.json["status"], status)
        if detail_part:
            self.assertIn(detail_part, r.json["detail"])

    def mkdept(self, name, parent=None, token=None, **fields):
        body = {"name": name, **fields}
        if parent:
            body["parent_id"] = parent
        r = self.req("POST", "/v1/departments", body, token=token or self.admin)
        self.assertEqual(r.status, 201, r)
        return r.json

    def mkuser(self, username, role, dept=None, token=None, password="User-Passw0rd!"):
        body = {"username": username, "password": password, "role": role}
        if dept:
            body["department_id"] = dept
        r = self.req("POST", "/v1/users", body, token=token or self.admin)
        self.assertEqual(r.status, 201, r)
        return r.json
