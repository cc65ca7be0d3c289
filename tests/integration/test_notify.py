"""Notifications through a webhook channel: a service check goes down and comes back; each
state change (the built-in service-down alarm firing, then resolved) is queued in the same transaction as the incident
and delivered to the receiver exactly once, in order — also when the receiver is down at
first and govcloudd restarts while the notification waits."""

import http.server
import json
import socket
import sqlite3
import threading
import time
import unittest

from gcharness import DaemonTestCase, free_port


class Receiver:
    def __init__(self, port):
        self.got = []
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(n))
                outer.got.append((self.headers.get("Idempotency-Key"), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass
        self.srv = http.server.HTTPServer(("127.0.0.1", port), H)
        self.t = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.t.start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


class NotifyTest(DaemonTestCase):
    daemon_extra = ("--set", "monitor.interval=1")

    def wait(self, what, fn, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = fn()
            if v:
                return v
            time.sleep(0.3)
        self.fail(f"timed out after {timeout} s waiting for {what}")

    def outbox(self):
        db = sqlite3.connect(f"file:{self.d.db_path}?mode=ro", uri=True)
        try:
            return db.execute("SELECT event_id, attempts, delivered_at, last_error FROM"
                              " notify_outbox ORDER BY created_at").fetchall()
        finally:
            db.close()

    def test_channel_rules(self):
        for body, field in (({"name": "x", "url": "ftp://a/b"}, "url"),
                            ({"name": "x", "url": "http://a/", "kind": "sms"}, "kind"),
                            ({"url": "http://a/"}, "name"),
                            ({"name": "x", "url": "http://a/", "extra": 1}, None)):
            r = self.req("POST", "/v1/notification-channels", body, token=self.admin)
            self.assertEqual(r.status, 400, (body, r))
            if field:
                self.assertEqual(r.json["field"], field)
        dept = self.mkdept("通知 " + str(time.time_ns()))
        name = "nu-" + str(time.time_ns())[-8:]
        self.mkuser(name, "department_admin", dept["id"])
        user = self.d.login(name, "User-Passw0rd!")
        r = self.req("POST", "/v1/notification-channels",
                     {"name": "mine", "url": "http://127.0.0.1:9/x"}, token=user)
        self.assertEqual(r.status, 403, r)
        self.assertEqual(self.req("GET", "/v1/notification-channels", token=user).status, 403)

    def test_incident_notifications_survive_outage_and_restart(self):
        rport = free_port()
        r = self.req("POST", "/v1/notification-channels",
                     {"name": "ops-hook", "url": f"http://127.0.0.1:{rport}/hook"},
                     token=self.admin)
        self.assertEqual(r.status, 201, r)
        channel = r.json
        # a check against a port nobody listens on: down at once
        tport = free_port()
        r = self.req("POST", "/v1/checks", {"name": "svc", "department_id":
                                            self.mkdept("通知单位")["id"], "kind": "tcp",
                                            "host": "127.0.0.1", "port": tport,
                                            "interval_seconds": 1, "timeout_ms": 500},
                     token=self.admin)
        self.assertEqual(r.status, 201, r)
        check = r.json
        # the receiver is down: the notification waits, retried
        rows = self.wait("a failed delivery", lambda: (lambda o: o if o and o[0][1] >= 1
                                                       else None)(self.outbox()), 30)
        self.assertEqual(len(rows), 1, rows)
        self.assertIsNone(rows[0][2])
        self.assertNotEqual(rows[0][3], "")
        # the channel shows what waits and why
        dl = self.req("GET", "/v1/notification-channels", token=self.admin).json["items"]
        dl = [c for c in dl if c["id"] == channel["id"]][0]["delivery"]
        self.assertEqual(dl["pending"], 1, dl)
        self.assertNotEqual(dl["last_error"], "", dl)
        self.assertIsNone(dl["last_delivered_at"])
        self.assertIsNotNone(dl["oldest_pending_at"])
        # govcloudd restarts while it waits
        self.assertEqual(self.d.stop(), 0)
        self.d.start()
        recv = Receiver(rport)
        try:
            self.wait("the opened notification", lambda: len(recv.got) >= 1, 60)
            key, ev = recv.got[0]
            al = ev["alarm"]
            self.assertEqual((ev["type"], al["rule_name"], al["labels"]["resource_type"],
                              al["labels"]["resource_id"], al["status"]),
                             ("alarm.firing", "service-down", "check", check["id"], "firing"),
                             ev)
            self.assertIn("connect", al["reason"] + al["summary"], al)
            self.assertTrue(key)
            # the target comes up: resolved, once
            lsock = socket.socket()
            lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            lsock.bind(("127.0.0.1", tport))
            lsock.listen(16)
            try:
                self.wait("the resolved notification", lambda: len(recv.got) >= 2, 60)
                time.sleep(2.5)  # nothing more may come
            finally:
                lsock.close()
            self.assertEqual([e["type"] for _, e in recv.got],
                             ["alarm.firing", "alarm.resolved"], recv.got)
            self.assertEqual(recv.got[1][1]["alarm"]["id"], al["id"])
            self.assertEqual(recv.got[1][1]["alarm"]["status"], "resolved")
            self.assertEqual(len({e["event_id"] for _, e in recv.got}), 2)
            self.assertEqual(len({k for k, _ in recv.got}), 2)
            self.assertTrue(all(r[2] is not None for r in self.outbox()), self.outbox())
            dl = self.req("GET", "/v1/notification-channels", token=self.admin).json["items"]
            dl = [c for c in dl if c["id"] == channel["id"]][0]["delivery"]
            self.assertEqual((dl["pending"], dl["last_error"], dl["oldest_pending_at"]),
                             (0, "", None), dl)
            self.assertIsNotNone(dl["last_delivered_at"])
        finally:
            recv.close()
        self.assertEqual(self.req("DELETE", f"/v1/checks/{check['id']}",
                                  token=self.admin).status, 204)
        self.assertEqual(self.req("DELETE", f"/v1/notification-channels/{channel['id']}",
                                  token=self.admin).status, 204)
        ev = self.req("GET", "/v1/audit-events?action=notification_channel.create",
                      token=self.admin).json["items"]
        self.assertEqual([e["resource_id"] for e in ev if e["outcome"] == "success"],
                         [channel["id"]])


if __name__ == "__main__":
    unittest.main()
