"""Start-up and shutdown: SIGTERM with requests in flight, SIGTERM when idle, a port that is
taken, bad options, the first administrator's password."""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from gcharness import ADMIN_PASSWORD, DAEMON, Daemon, free_port

PASSWORD = "User-Passw0rd!"


def sanitizer_report(log):
    for bad in ("runtime error:", "AddressSanitizer", "LeakSanitizer"):
        if bad in log:
            return bad
    return None


def run_daemon(args, env_extra=None, timeout=20, unset_admin=False):
    """Runs govcloudd to completion; returns (exit code, stdout+stderr). A daemon that does
    not exit within timeout is killed and reported as exit code None."""
    env = dict(os.environ, GOVCLOUD_ADMIN_PASSWORD=ADMIN_PASSWORD)
    if unset_admin:
        env.pop("GOVCLOUD_ADMIN_PASSWORD")
    env.update(env_extra or {})
    p = subprocess.Popen([DAEMON, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         env=env, text=True)
    try:
        out, _ = p.communicate(timeout=timeout)
        return p.returncode, out
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
        return None, out


def daemon_client_ports(pid, port):
    """Client-side ports of the TCP connections that process pid has accepted on port
    (Linux /proc). Connections still waiting in the kernel's accept queue are not included."""
    inodes = set()
    fddir = f"/proc/{pid}/fd"
    for fd in os.listdir(fddir):
        try:
            link = os.readlink(os.path.join(fddir, fd))
        except OSError:
            continue
        m = re.fullmatch(r"socket:\[(\d+)\]", link)
        if m:
            inodes.add(m.group(1))
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            local, remote, state, inode = cols[1], cols[2], cols[3], cols[9]
            if state == "01" and inode in inodes and int(local.rsplit(":", 1)[1], 16) == port:
                ports.add(int(remote.rsplit(":", 1)[1], 16))
    return ports


class Load:
    """Clients that create users in a loop, one connection per request, each recording what
    happened to every request."""

    def __init__(self, d, token, clients):
        self.d, self.token = d, token
        self.records = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.client, args=(i,), daemon=True)
                        for i in range(clients)]

    def start(self):
        for t in self.threads:
            t.start()

    def join(self):
        for t in self.threads:
            t.join(60)
            assert not t.is_alive(), "a client hangs"

    def client(self, i):
        n = 0
        while True:
            n += 1
            rec = {"username": f"sd{i}n{n}", "t0": time.time(), "port": None}
            with self.lock:
                self.records.append(rec)
            conn = http.client.HTTPConnection("127.0.0.1", self.d.port, timeout=60)
            try:
                conn.connect()
                rec["port"] = conn.sock.getsockname()[1]
                body = json.dumps({"username": rec["username"], "password": PASSWORD,
                                   "role": "operator"})
                conn.request("POST", "/v1/users", body,
                             {"Content-Type": "application/json",
                              "Authorization": "Bearer " + self.token})
                resp = conn.getresponse()
                rec["body"] = resp.read()
                rec["status"] = resp.status
                rec["ctype"] = resp.getheader("Content-Type", "")
                rec["retry_after"] = resp.getheader("Retry-After")
            except Exception as e:
                rec["error"] = repr(e)
            finally:
                rec["t1"] = time.time()
                conn.close()
            if rec.get("status") != 201:
                return


class TestSigtermInFlight(unittest.TestCase):
    CLIENTS = 16

    def setUp(self):
        self.d = Daemon(extra=("--set", "server.threads=4", "--set", "jobs.workers=1"))
        self.dirs = [self.d.data_dir]
        self.d.start()
        self.token = self.d.login()

    def tearDown(self):
        for d in (self.d, getattr(self, "d2", None)):
            if d and d.proc:
                d.stop()
        log = self.d.read_log()
        shutil.rmtree(self.d.data_dir, ignore_errors=True)
        self.assertIsNone(sanitizer_report(log), log[-8000:])

    def sigterm_under_load(self):
        load = Load(self.d, self.token, self.CLIENTS)
        load.start()
        time.sleep(1.0)
        accepted = daemon_client_ports(self.d.proc.pid, self.d.port)
        t_sig = time.time()
        proc = self.d.proc
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            rc = None
        took = time.time() - t_sig
        self.d.stop()
        load.join()
        return load.records, accepted, t_sig, rc, took

    def check_answer(self, rec):
        """A complete answer: 201 with the user, or a 503 problem."""
        self.assertIn(rec.get("status"), (201, 503), rec)
        body = json.loads(rec["body"])
        if rec["status"] == 201:
            self.assertEqual(body["username"], rec["username"])
        else:
            self.assertTrue(rec["ctype"].startswith("application/problem+json"), rec)
            self.assertEqual(body["status"], 503)
            self.assertTrue(body["type"].endswith("/unavailable"), body)
            self.assertTrue(rec["retry_after"], "503 without Retry-After")

    def test_sigterm_with_requests_in_flight(self):
        records, _, t_sig, rc, took = self.sigterm_under_load()
        self.assertEqual(rc, 0, self.d.read_log()[-3000:])
        self.assertLess(took, 5, "SIGTERM under load took too long")
        answered = [r for r in records if "status" in r]
        for r in answered:
            self.check_answer(r)
        ok = {r["username"] for r in answered if r["status"] == 201}
        late = [r for r in answered if r["status"] == 201 and r["t1"] > t_sig]
        self.assertTrue(late, "no request was in flight when SIGTERM came: test proves nothing")
        # after a restart: exactly the acknowledged users exist
        self.d2 = Daemon(data_dir=self.d.data_dir).start()
        tok = self.d2.login()
        have = set()
        cursor = None
        while True:
            r = self.d2.request("GET", "/v1/users?limit=500" + (f"&cursor={cursor}" if cursor
                                                                 else ""), token=tok)
            have |= {u["username"] for u in r.json["items"] if u["username"].startswith("sd")}
            cursor = r.json["next_cursor"]
            if not cursor:
                break
        self.assertEqual(have - ok, set(),
                         "users were created by requests that got no 201 (answer lost)")
        self.assertEqual(ok - have, set(), "acknowledged users are missing after the restart")

    def test_sigterm_answers_every_accepted_connection(self):
        """A request on a connection the daemon had accepted before SIGTERM gets a complete
        answer (201, or 503 if it had not started yet), not a reset."""
        records, accepted, t_sig, rc, _ = self.sigterm_under_load()
        self.assertEqual(rc, 0)
        waiting = [r for r in records if r["port"] in accepted and r["t0"] < t_sig]
        self.assertGreater(len(waiting), 4, "too few accepted connections at SIGTERM")
        dropped = [r for r in waiting if "status" not in r]
        self.assertEqual(dropped, [], f"{len(dropped)} of {len(waiting)} requests on accepted "
                                      "connections got no answer")
        for r in waiting:
            self.check_answer(r)


class TestStalledClient(unittest.TestCase):
    def test_sigterm_not_held_up_by_a_stalled_upload(self):
        """A client that sent the headers and part of a body, then nothing, must not keep
        the daemon from stopping for long (a restart would wait on any such client)."""
        d = Daemon().start()
        sock = None
        try:
            tok = d.login()
            sock = socket.create_connection(("127.0.0.1", d.port))
            sock.sendall(b"POST /v1/departments HTTP/1.1\r\nHost: govcloud\r\n"
                         b"Content-Type: application/json\r\nAuthorization: Bearer "
                         + tok.encode() + b"\r\nContent-Length: 100\r\n\r\n{\"name\":")
            time.sleep(0.3)
            t0 = time.time()
            d.proc.send_signal(signal.SIGTERM)
            try:
                rc = d.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                rc = None
            took = time.time() - t0
            sock.settimeout(2)
            try:
                answer = sock.recv(4096)
            except OSError:
                answer = b""
            if answer:
                self.assertRegex(answer, rb"^HTTP/1\.[01] 503 ", answer)
        finally:
            if sock:
                sock.close()
            d.stop(signal.SIGKILL)
            log = d.read_log()
            d.cleanup()
        self.assertIsNotNone(rc, "SIGTERM: still running after 10 s because of one stalled "
                                 "client")
        self.assertEqual(rc, 0, log[-3000:])
        self.assertLess(took, 5)


class TestStartStop(unittest.TestCase):
    def test_sigterm_idle_exits_0_quickly(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            with self.subTest(signal=sig):
                d = Daemon().start()
                try:
                    self.assertEqual(d.request("GET", "/healthz").status, 200)
                    t0 = time.time()
                    rc = d.stop(sig, timeout=20)
                    took = time.time() - t0
                    log = d.read_log()
                finally:
                    d.cleanup()
                self.assertEqual(rc, 0, log[-3000:])
                self.assertLess(took, 3, "an idle daemon took long to stop")
                self.assertIn("stopped", log)
                self.assertIsNone(sanitizer_report(log), log[-8000:])

    def test_sighup_does_not_stop(self):
        d = Daemon().start()
        try:
            d.proc.send_signal(signal.SIGHUP)
            time.sleep(0.3)
            self.assertIsNone(d.proc.poll(), "SIGHUP stopped the daemon")
            self.assertEqual(d.request("GET", "/healthz").status, 200)
            rc = d.stop()
            log = d.read_log()
        finally:
            d.cleanup()
        self.assertEqual(rc, 0, log[-3000:])

    def test_port_in_use(self):
        d = Daemon().start()
        other = tempfile.mkdtemp(prefix="govcloud-test-")
        try:
            addr = f"127.0.0.1:{d.port}"
            rc, out = run_daemon(["--listen", addr, "--data-dir", other])
            self.assertIsNotNone(rc, "a second daemon on a taken port did not exit:\n" + out)
            self.assertNotEqual(rc, 0, out)
            self.assertIn(addr, out, "the message does not name the address")
            self.assertEqual(d.request("GET", "/healthz").status, 200,
                             "the first daemon suffered")
        finally:
            rc1 = d.stop()
            d.cleanup()
            shutil.rmtree(other, ignore_errors=True)
        self.assertEqual(rc1, 0)

    def test_data_dir_in_use(self):
        d = Daemon().start()
        try:
            rc, out = run_daemon(["--listen", f"127.0.0.1:{free_port()}",
                                  "--data-dir", d.data_dir])
            self.assertIsNotNone(rc, "a second daemon on a data directory in use did not "
                                     "exit:\n" + out)
            self.assertNotEqual(rc, 0, out)
            self.assertIn(d.data_dir, out, "the message does not name the data directory")
            self.assertEqual(d.request("GET", "/readyz").status, 200)
            d.login()
        finally:
            rc1 = d.stop()
            d.cleanup()
        self.assertEqual(rc1, 0)

    def test_bad_options_exit_2_naming_the_option(self):
        tmp = tempfile.mkdtemp(prefix="govcloud-test-")
        try:
            def conf(text):
                path = os.path.join(tmp, f"c{len(os.listdir(tmp))}.conf")
                with open(path, "w") as f:
                    f.write(text)
                return path
            port = free_port()
            good = ["--listen", f"127.0.0.1:{port}"]
            cases = [
                (["--listen", "nonsense"], "listen"),
                (["--listen", "127.0.0.1:99999"], "listen"),
                (["--listen", "127.0.0.1"], "listen"),
                (["--listen", "nonsense:8080"], "listen"),
                (["--listen", "999.1.2.3:8080"], "listen"),
                (good + ["--set", "server.threads=abc"], "threads"),
                (good + ["--set", "server.threads=100000"], "threads"),
                (good + ["--set", "log.level=loud"], "level"),
                (good + ["--set", "jobs.test_job_kinds=maybe"], "test_job_kinds"),
                (good + ["--set", "no_such.option=1"], "no_such.option"),
                (good + ["--set", "server.threads"], "--set"),
                (good + ["--bogus-flag"], "bogus-flag"),
                (good + ["stray-argument"], "stray-argument"),
                (good + ["--config", conf("[server]\nthreads = 2\nbogus_option = 1\n")],
                 "bogus_option"),
                (good + ["--config", conf("[nosuchsection]\nthreads = 2\n")], "nosuchsection"),
                (good + ["--config", conf("[jobs]\nworkers = many\n")], "workers"),
                (good + ["--config", conf("[server\nthreads = 2\n")], ".conf"),
                (good + ["--config", os.path.join(tmp, "missing.conf")], "missing.conf"),
            ]
            for args, name in cases:
                data = os.path.join(tmp, "data")
                with self.subTest(args=args):
                    rc, out = run_daemon(args + ["--data-dir", data])
                    self.assertEqual(rc, 2, f"exit code; output:\n{out}")
                    self.assertIn(name, out, "the message does not name the option")
                    self.assertLess(len(out.strip().splitlines()), 40, out)
                    self.assertFalse(os.path.exists(data),
                                     "a bad option still created the data directory")
                    rc, out = run_daemon(args + ["--data-dir", data, "--check-config"])
                    self.assertEqual(rc, 2, f"--check-config exit code; output:\n{out}")
                shutil.rmtree(data, ignore_errors=True)
            rc, out = run_daemon(good + ["--data-dir", os.path.join(tmp, "data"),
                                         "--check-config"])
            self.assertEqual(rc, 0, out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_admin_password_violating_policy_fails_first_start(self):
        data = tempfile.mkdtemp(prefix="govcloud-test-")
        try:
            for bad in ("short1A!", "alllowercaseletters", "NoDigitsOrOthers"):
                with self.subTest(password=bad):
                    rc, out = run_daemon(["--listen", f"127.0.0.1:{free_port()}",
                                          "--data-dir", data],
                                         env_extra={"GOVCLOUD_ADMIN_PASSWORD": bad})
                    self.assertIsNotNone(rc, "the daemon started with a bad admin password")
                    self.assertNotEqual(rc, 0, out)
                    self.assertIn("GOVCLOUD_ADMIN_PASSWORD", out)
                    self.assertIn("password", out.replace("GOVCLOUD_ADMIN_PASSWORD", ""))
                    self.assertNotIn(bad, out, "the rejected password is echoed in the log")
            # nothing half-made: a good password now makes the administrator
            d = Daemon(data_dir=data).start()
            try:
                d.login("admin", ADMIN_PASSWORD)
                r = d.request("POST", "/v1/tokens", {"username": "admin",
                                                     "password": "short1A!"})
                self.assertEqual(r.status, 401, r)
            finally:
                self.assertEqual(d.stop(), 0, d.read_log()[-3000:])
        finally:
            shutil.rmtree(data, ignore_errors=True)

    def test_random_admin_password_printed_once(self):
        d = Daemon()
        del d.env["GOVCLOUD_ADMIN_PASSWORD"]
        try:
            d.start()
            log = d.read_log()
            m = re.findall(r"password / 密码:\s+(\S+)", log)
            self.assertEqual(len(m), 1, f"expected the password once in the log:\n{log[:3000]}")
            pw = m[0]
            self.assertEqual(log.count(pw), 1, "the password appears more than once")
            tok = d.login("admin", pw)
            r = d.request("GET", "/v1/users/me", token=tok)
            self.assertEqual((r.status, r.json["role"]), (200, "platform_admin"))
            r = d.request("GET", "/v1/audit-events?limit=500", token=tok)
            self.assertNotIn(pw, r.body.decode(), "the password is in the audit trail")
            self.assertEqual(d.stop(), 0)
            size = os.path.getsize(d.log_path)
            d.start()
            with open(d.log_path, "rb") as f:
                f.seek(size)
                second = f.read().decode("utf-8", "replace")
            self.assertIn("listening", second)
            self.assertNotIn("password / 密码", second, "the password banner came again")
            self.assertNotIn(pw, second)
            d.login("admin", pw)
            self.assertEqual(d.stop(), 0)
            self.assertIsNone(sanitizer_report(d.read_log()), d.read_log()[-8000:])
        finally:
            d.cleanup()


if __name__ == "__main__":
    unittest.main()
