"""API conventions of docs/api.md, end to end against a live govcloudd: service endpoints,
CRUD with Location/ETag/If-Match, the department tree, keyset pagination and filters,
request ids, 404/405 problems, and the audit trail of writes."""

import re
import sqlite3
import threading
import time
import unittest
import urllib.parse
from datetime import datetime, timezone

from gcharness import DaemonTestCase

UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
RFC3339_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
PROBLEM_BASE = "https://govcloud.example/problems/"


def parse_time(s):
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def db_ro(d):
    return sqlite3.connect(f"file:{d.db_path}?mode=ro", uri=True, timeout=10)


def db_count(d, table, where="1=1", args=()):
    with db_ro(d) as db:
        return db.execute(f"SELECT COUNT(*) FROM {table} WHERE {where}", args).fetchone()[0]


class ApiTestCase(DaemonTestCase):
    """Shared helpers for this file."""

    def assertProblemType(self, r, status, slug, detail_part=None):
        self.assertProblem(r, status, detail_part)
        self.assertEqual(r.json["type"], PROBLEM_BASE + slug, r.json)
        self.assertEqual(r.json["request_id"], r.headers.get("X-Request-Id"))

    def all_pages(self, path, limit=None, max_pages=100):
        """Follows next_cursor to the end; returns (items, pages)."""
        items, pages, cursor = [], [], None
        sep = "&" if "?" in path else "?"
        for _ in range(max_pages):
            q = path
            params = []
            if limit:
                params.append(f"limit={limit}")
            if cursor:
                params.append("cursor=" + urllib.parse.quote(cursor))
            if params:
                q += sep + "&".join(params)
            r = self.req("GET", q, token=self.admin)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(set(r.json), {"items", "next_cursor"}, r.json)
            pages.append(r.json)
            items += r.json["items"]
            cursor = r.json["next_cursor"]
            if cursor is None:
                return items, pages
        self.fail(f"{path}: more than {max_pages} pages")

    def audit_events(self, **filters):
        q = "/v1/audit-events?" + urllib.parse.urlencode(filters)
        items, _ = self.all_pages(q, limit=500)
        return items

    def assertEtag(self, r, version):
        self.assertEqual(r.headers.get("ETag"), f'"{version}"', r.headers)
        self.assertEqual(r.json["version"], version, r.json)


class ServiceEndpointsTest(ApiTestCase):

    def test_healthz(self):
        r = self.req("GET", "/healthz")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.headers["Content-Type"].startswith("application/json"))
        self.assertEqual(r.json, {"status": "ok"})

    def test_readyz(self):
        r = self.req("GET", "/readyz")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json, {"status": "ready"})

    def test_version(self):
        r = self.req("GET", "/v1/version")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(set(r.json), {"version", "schema_version", "store"}, r.json)
        self.assertRegex(r.json["version"], r"^\d+\.\d+\.\d+")
        self.assertEqual(r.json["store"], "sqlite")
        with db_ro(self.d) as db:
            # the schema version the daemon reports is the one the store is at
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        self.assertIsInstance(r.json["schema_version"], int)
        self.assertGreaterEqual(r.json["schema_version"], 1)
        self.assertIn("departments", tables)

    def test_service_endpoints_need_no_token(self):
        for path in ("/healthz", "/readyz", "/v1/version", "/v1/openapi.json", "/metrics"):
            with self.subTest(path=path):
                r = self.req("GET", path)
                self.assertEqual(r.status, 200, r)

    def test_every_response_has_security_headers_and_request_id(self):
        for path, token in (("/healthz", None), ("/v1/users/me", self.admin),
                            ("/v1/nope", None)):
            with self.subTest(path=path):
                r = self.req("GET", path, token=token)
                self.assertTrue(r.headers.get("X-Request-Id"))
                self.assertEqual(r.headers.get("Cache-Control"), "no-store")
                self.assertEqual(r.headers.get("X-Content-Type-Options"), "nosniff")

    def test_unknown_path_is_404_problem(self):
        for path in ("/v1/nope", "/v2/departments", "/v1/departments/", "/", "/v1"):
            with self.subTest(path=path):
                r = self.req("GET", path, token=self.admin)
                self.assertProblemType(r, 404, "not-found")
                self.assertEqual(r.json["instance"], path)

    def test_wrong_method_is_405_with_allow(self):
        cases = [
            ("PUT", "/v1/departments", "GET, POST"),
            ("DELETE", "/v1/departments", "GET, POST"),
            ("PATCH", "/v1/users", "GET, POST"),
            ("POST", "/healthz", "GET"),
            ("PUT", "/v1/departments/01a00000-0000-7000-8000-000000000000",
             "GET, PATCH, DELETE"),
            ("POST", "/v1/tokens/current", "DELETE"),
            ("GET", "/v1/jobs/01a00000-0000-7000-8000-000000000000/cancel", "POST"),
        ]
        for method, path, allow in cases:
            with self.subTest(method=method, path=path):
                before = db_count(self.d, "departments")
                r = self.req(method, path, token=self.admin)
                self.assertProblemType(r, 405, "method-not-allowed")
                self.assertEqual([m.strip() for m in r.headers.get("Allow", "").split(",")],
                                 allow.split(", "))
                self.assertIn(method, r.json["detail"])
                self.assertEqual(db_count(self.d, "departments"), before)

    def test_unknown_query_parameter_is_400(self):
        for path, token in (("/healthz?verbose=1", None), ("/v1/departments?sort=name", self.admin),
                            ("/v1/users?foo=bar", self.admin),
                            ("/v1/audit-events?resource=x", self.admin),
                            ("/v1/users/me?x=1", self.admin)):
            with self.subTest(path=path):
                r = self.req("GET", path, token=token)
                self.assertProblemType(r, 400, "invalid-request")
                name = path.split("?")[1].split("=")[0]
                self.assertEqual(r.json.get("field"), name, r.json)
                self.assertIn(name, r.json["detail"])

    def test_duplicate_query_parameter_is_400(self):
        r = self.req("GET", "/v1/departments?limit=1&limit=2", token=self.admin)
        self.assertProblemType(r, 400, "invalid-request")
        self.assertEqual(r.json.get("field"), "limit")


class RequestIdTest(ApiTestCase):

    def test_request_id_echoed(self):
        for rid in ("abc-123_X.y", "a", "Z" * 64):
            with self.subTest(rid=rid):
                r = self.req("GET", "/healthz", headers={"X-Request-Id": rid})
                self.assertEqual(r.headers.get("X-Request-Id"), rid)

    def test_request_id_generated_when_absent_or_invalid(self):
        seen = set()
        for sent in (None, "has space", "x" * 65, "semi;colon", "ünï"):
            with self.subTest(sent=sent):
                h = {"X-Request-Id": sent} if sent else {}
                try:
                    r = self.req("GET", "/healthz", headers=h)
                except UnicodeEncodeError:
                    continue  # http.client will not send non-latin-1 headers
                rid = r.headers.get("X-Request-Id")
                self.assertTrue(rid)
                self.assertNotEqual(rid, sent)
                self.assertRegex(rid, r"^[A-Za-z0-9._-]{1,64}$")
                self.assertNotIn(rid, seen, "generated request ids must differ")
                seen.add(rid)

    def test_request_id_in_problem_body(self):
        r = self.req("GET", "/v1/nope", headers={"X-Request-Id": "rid-problem-1"})
        self.assertProblem(r, 404)
        self.assertEqual(r.json["request_id"], "rid-problem-1")

    def test_request_id_recorded_in_audit_event_of_write(self):
        r = self.req("POST", "/v1/departments", {"name": "rid-dept"}, token=self.admin,
                     headers={"X-Request-Id": "rid-write-0001"})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.headers.get("X-Request-Id"), "rid-write-0001")
        events = self.audit_events(resource_id=r.json["id"])
        self.assertEqual(len(events), 1, events)
        self.assertEqual(events[0]["action"], "department.create")
        self.assertEqual(events[0]["request_id"], "rid-write-0001")

        # a generated id is recorded just the same
        r2 = self.req("PATCH", f"/v1/departments/{r.json['id']}", {"description": "x"},
                      token=self.admin)
        self.assertEqual(r2.status, 200, r2)
        events = self.audit_events(resource_id=r.json["id"], action="department.update")
        self.assertEqual(len(events), 1, events)
        self.assertEqual(events[0]["request_id"], r2.headers["X-Request-Id"])

    def test_request_id_recorded_in_failure_event(self):
        self.req("POST", "/v1/departments", {"name": "rid-dup"}, token=self.admin)
        r = self.req("POST", "/v1/departments", {"name": "rid-dup"}, token=self.admin,
                     headers={"X-Request-Id": "rid-failed-write"})
        self.assertProblem(r, 409)
        with db_ro(self.d) as db:
            rows = db.execute("SELECT action, outcome FROM audit_events WHERE request_id = ?",
                              ("rid-failed-write",)).fetchall()
        self.assertEqual(rows, [("department.create", "failure")])


class DepartmentCrudTest(ApiTestCase):

    def test_crud_end_to_end(self):
        r = self.req("POST", "/v1/departments",
                     {"name": "广东省", "code": "440000", "description": "省级"},
                     token=self.admin)
        self.assertEqual(r.status, 201, r)
        dept = r.json
        self.assertEqual(set(dept), {"id", "name", "code", "parent_id", "depth", "description",
                                     "created_at", "updated_at", "version"})
        self.assertRegex(dept["id"], UUID7)
        self.assertEqual((dept["name"], dept["code"], dept["parent_id"], dept["depth"],
                          dept["description"]), ("广东省", "440000", None, 0, "省级"))
        self.assertRegex(dept["created_at"], RFC3339_MS)
        self.assertEqual(dept["created_at"], dept["updated_at"])
        self.assertLess(abs((parse_time(dept["created_at"]) -
                             datetime.now(timezone.utc)).total_seconds()), 60)
        self.assertEtag(r, 1)
        self.assertEqual(r.headers.get("Location"), f"/v1/departments/{dept['id']}")

        g = self.req("GET", r.headers["Location"], token=self.admin)
        self.assertEqual(g.status, 200, g)
        self.assertEqual(g.json, dept)
        self.assertEtag(g, 1)

        p = self.req("PATCH", f"/v1/departments/{dept['id']}", {"name": "广东省人民政府"},
                     token=self.admin, headers={"If-Match": '"1"'})
        self.assertEqual(p.status, 200, p)
        self.assertEtag(p, 2)
        self.assertEqual(p.json["name"], "广东省人民政府")
        self.assertEqual(p.json["code"], "440000")
        self.assertGreaterEqual(parse_time(p.json["updated_at"]), parse_time(dept["updated_at"]))
        self.assertEqual(p.json["created_at"], dept["created_at"])

        # stale If-Match: 412 and unchanged
        s = self.req("PATCH", f"/v1/departments/{dept['id']}", {"name": "stale"},
                     token=self.admin, headers={"If-Match": '"1"'})
        self.assertProblemType(s, 412, "precondition-failed")
        self.assertEqual(s.json.get("field"), "If-Match")
        g = self.req("GET", f"/v1/departments/{dept['id']}", token=self.admin)
        self.assertEqual(g.json, p.json)

        # malformed If-Match: 400 and unchanged
        for bad in ("abc", '"x"', '"1', "1.5", '"-1"', '""'):
            with self.subTest(if_match=bad):
                m = self.req("PATCH", f"/v1/departments/{dept['id']}", {"name": "malformed"},
                             token=self.admin, headers={"If-Match": bad})
                self.assertProblemType(m, 400, "invalid-request")
                self.assertEqual(m.json.get("field"), "If-Match")
        g = self.req("GET", f"/v1/departments/{dept['id']}", token=self.admin)
        self.assertEqual(g.json, p.json)

        # PATCH without If-Match is unconditional
        u = self.req("PATCH", f"/v1/departments/{dept['id']}", {"description": "改"},
                     token=self.admin)
        self.assertEqual(u.status, 200, u)
        self.assertEtag(u, 3)

        # DELETE with a stale If-Match: 412, still there
        s = self.req("DELETE", f"/v1/departments/{dept['id']}", token=self.admin,
                     headers={"If-Match": '"2"'})
        self.assertProblemType(s, 412, "precondition-failed")
        self.assertEqual(self.req("GET", f"/v1/departments/{dept['id']}",
                                  token=self.admin).status, 200)

        dl = self.req("DELETE", f"/v1/departments/{dept['id']}", token=self.admin,
                      headers={"If-Match": '"3"'})
        self.assertEqual(dl.status, 204, dl)
        self.assertEqual(dl.body, b"")
        g = self.req("GET", f"/v1/departments/{dept['id']}", token=self.admin)
        self.assertProblemType(g, 404, "not-found")
        self.assertEqual(g.json.get("field"), "id")
        self.assertProblemType(self.req("DELETE", f"/v1/departments/{dept['id']}",
                                        token=self.admin), 404, "not-found")
        self.assertProblemType(self.req("PATCH", f"/v1/departments/{dept['id']}",
                                        {"name": "ghost"}, token=self.admin), 404, "not-found")
        self.assertEqual(db_count(self.d, "departments", "id = ?", (dept["id"],)), 0)

    def test_create_requires_name(self):
        before = db_count(self.d, "departments")
        r = self.req("POST", "/v1/departments", {"code": "NONAME"}, token=self.admin)
        self.assertProblemType(r, 400, "invalid-request", "name")
        self.assertEqual(r.json.get("field"), "name")
        self.assertEqual(db_count(self.d, "departments"), before)

    def test_code_can_be_cleared_and_description_is_kept(self):
        d = self.mkdept("清除编码", code="CLR-1", description="keep me")
        r = self.req("PATCH", f"/v1/departments/{d['id']}", {"code": None}, token=self.admin)
        self.assertEqual(r.status, 200, r)
        self.assertIsNone(r.json["code"])
        self.assertEqual(r.json["description"], "keep me")
        self.assertEqual(r.json["name"], "清除编码")


class UserCrudTest(ApiTestCase):

    USER_KEYS = {"id", "username", "display_name", "role", "department_id", "disabled",
                 "locked_until", "created_at", "updated_at", "password_changed_at", "version"}

    def test_crud_end_to_end(self):
        dept = self.mkdept("用户测试局")
        body = {"username": "zhangsan", "password": "User-Passw0rd!", "role": "department_user",
                "department_id": dept["id"], "display_name": "张三"}
        r = self.req("POST", "/v1/users", body, token=self.admin)
        self.assertEqual(r.status, 201, r)
        u = r.json
        self.assertEqual(set(u), self.USER_KEYS)
        self.assertNotIn(b"User-Passw0rd!", r.body)
        self.assertNotIn(b"scrypt", r.body.lower())
        self.assertRegex(u["id"], UUID7)
        self.assertEqual((u["username"], u["role"], u["department_id"], u["display_name"],
                          u["disabled"], u["locked_until"]),
                         ("zhangsan", "department_user", dept["id"], "张三", False, None))
        self.assertEtag(r, 1)
        self.assertEqual(r.headers.get("Location"), f"/v1/users/{u['id']}")

        g = self.req("GET", r.headers["Location"], token=self.admin)
        self.assertEqual(g.status, 200, g)
        self.assertEqual(g.json, u)
        self.assertEtag(g, 1)

        p = self.req("PATCH", f"/v1/users/{u['id']}", {"display_name": "张三丰"},
                     token=self.admin, headers={"If-Match": '"1"'})
        self.assertEqual(p.status, 200, p)
        self.assertEtag(p, 2)
        self.assertEqual(p.json["display_name"], "张三丰")
        self.assertEqual(p.json["password_changed_at"], u["password_changed_at"])

        s = self.req("PATCH", f"/v1/users/{u['id']}", {"display_name": "stale"},
                     token=self.admin, headers={"If-Match": '"1"'})
        self.assertProblemType(s, 412, "precondition-failed")
        m = self.req("PATCH", f"/v1/users/{u['id']}", {"display_name": "malformed"},
                     token=self.admin, headers={"If-Match": "v2"})
        self.assertProblemType(m, 400, "invalid-request")
        g = self.req("GET", f"/v1/users/{u['id']}", token=self.admin)
        self.assertEqual(g.json, p.json)

        s = self.req("DELETE", f"/v1/users/{u['id']}", token=self.admin,
                     headers={"If-Match": '"1"'})
        self.assertProblemType(s, 412, "precondition-failed")
        dl = self.req("DELETE", f"/v1/users/{u['id']}", token=self.admin,
                      headers={"If-Match": '"2"'})
        self.assertEqual(dl.status, 204, dl)
        self.assertEqual(dl.body, b"")
        self.assertProblemType(self.req("GET", f"/v1/users/{u['id']}", token=self.admin),
                               404, "not-found")
        self.assertProblemType(self.req("DELETE", f"/v1/users/{u['id']}", token=self.admin),
                               404, "not-found")
        self.assertEqual(db_count(self.d, "users", "id = ?", (u["id"],)), 0)

    def test_users_me(self):
        r = self.req("GET", "/v1/users/me", token=self.admin)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["username"], "admin")
        self.assertEqual(r.json["role"], "platform_admin")
        self.assertIsNone(r.json["department_id"])
        self.assertEqual(set(r.json), self.USER_KEYS)

    def test_duplicate_username_is_409(self):
        self.mkuser("dupname", "operator")
        before = db_count(self.d, "users")
        r = self.req("POST", "/v1/users", {"username": "dupname", "password": "User-Passw0rd!",
                                           "role": "auditor"}, token=self.admin)
        self.assertProblemType(r, 409, "conflict", "dupname")
        self.assertEqual(db_count(self.d, "users"), before)

    def test_role_and_department_rules(self):
        dept = self.mkdept("角色规则局")
        before = db_count(self.d, "users")
        cases = [
            ({"role": "department_user"}, "department_id"),               # needs a department
            ({"role": "operator", "department_id": dept["id"]}, "department_id"),  # has none
            ({"role": "root"}, "role"),
            ({"role": "department_admin",
              "department_id": "01a00000-0000-7000-8000-000000000000"}, "department_id"),
        ]
        for extra, field in cases:
            with self.subTest(extra=extra):
                r = self.req("POST", "/v1/users", {"username": "rolecase",
                                                   "password": "User-Passw0rd!", **extra},
                             token=self.admin)
                self.assertProblemType(r, 400, "invalid-request")
                self.assertEqual(r.json.get("field"), field, r.json)
        self.assertEqual(db_count(self.d, "users"), before)


class DepartmentTreeTest(ApiTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()

        def mk(name, parent=None, **kw):
            body = {"name": name, **kw}
            if parent:
                body["parent_id"] = parent
            r = cls.d.request("POST", "/v1/departments", body, token=cls.admin)
            assert r.status == 201, r
            return r.json
        cls.province = mk("广东省", code="440000")
        cls.gz = mk("广州市", cls.province["id"], code="440100")
        cls.sz = mk("深圳市", cls.province["id"], code="440300")
        cls.bureau = mk("广州市政务服务数据管理局", cls.gz["id"], code="440100-ZSJ")
        cls.office = mk("办公室", cls.bureau["id"])

    def get(self, d):
        r = self.req("GET", f"/v1/departments/{d['id']}", token=self.admin)
        self.assertEqual(r.status, 200, r)
        return r.json

    def test_tree_depths_and_parents(self):
        self.assertEqual([self.get(x)["depth"] for x in
                          (self.province, self.gz, self.bureau, self.office)], [0, 1, 2, 3])
        self.assertEqual(self.get(self.office)["parent_id"], self.bureau["id"])
        self.assertEqual(self.get(self.gz)["parent_id"], self.province["id"])

    def test_move_subtree(self):
        root = self.mkdept("搬迁省")
        a = self.mkdept("甲市", root["id"])
        b = self.mkdept("乙市", root["id"])
        bureau = self.mkdept("某局", a["id"])
        office = self.mkdept("某科", bureau["id"])
        r = self.req("PATCH", f"/v1/departments/{bureau['id']}", {"parent_id": b["id"]},
                     token=self.admin, headers={"If-Match": '"1"'})
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json["parent_id"], r.json["depth"]), (b["id"], 2))
        self.assertEtag(r, 2)
        o = self.get(office)
        self.assertEqual((o["parent_id"], o["depth"]), (bureau["id"], 3))
        kids = self.req("GET", f"/v1/departments?parent_id={b['id']}", token=self.admin)
        self.assertEqual([x["id"] for x in kids.json["items"]], [bureau["id"]])
        kids = self.req("GET", f"/v1/departments?parent_id={a['id']}", token=self.admin)
        self.assertEqual(kids.json["items"], [])

        # to the top level: the whole subtree moves up
        r = self.req("PATCH", f"/v1/departments/{bureau['id']}", {"parent_id": None},
                     token=self.admin)
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json["parent_id"], r.json["depth"]), (None, 0))
        self.assertEqual(self.get(office)["depth"], 1)

        # and back down, deeper
        r = self.req("PATCH", f"/v1/departments/{bureau['id']}", {"parent_id": a["id"]},
                     token=self.admin)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["depth"], 2)
        self.assertEqual(self.get(office)["depth"], 3)

    def test_move_under_itself_or_descendant_is_400(self):
        for target in (self.gz, self.bureau, self.office):
            with self.subTest(target=target["name"]):
                before = self.get(self.gz)
                r = self.req("PATCH", f"/v1/departments/{self.gz['id']}",
                             {"parent_id": target["id"]}, token=self.admin)
                self.assertProblemType(r, 400, "invalid-request", "under itself")
                self.assertEqual(r.json.get("field"), "parent_id")
                self.assertEqual(self.get(self.gz), before)
                self.assertEqual(self.get(self.office)["depth"], 3)

    def test_move_to_missing_parent_is_400(self):
        before = self.get(self.sz)
        r = self.req("PATCH", f"/v1/departments/{self.sz['id']}",
                     {"parent_id": "01a00000-0000-7000-8000-000000000000"}, token=self.admin)
        self.assertProblemType(r, 400, "invalid-request")
        self.assertEqual(r.json.get("field"), "parent_id")
        self.assertEqual(self.get(self.sz), before)

    def test_duplicate_sibling_name_is_409(self):
        before = db_count(self.d, "departments")
        r = self.req("POST", "/v1/departments", {"name": "广州市",
                                                 "parent_id": self.province["id"]},
                     token=self.admin)
        self.assertProblemType(r, 409, "conflict", "广州市")
        self.assertEqual(r.json.get("field"), "name")
        r = self.req("POST", "/v1/departments", {"name": "广东省"}, token=self.admin)
        self.assertProblemType(r, 409, "conflict", "广东省")
        self.assertEqual(db_count(self.d, "departments"), before)
        # the same name under another parent is fine
        other = self.mkdept("办公室", self.sz["id"])
        self.req("DELETE", f"/v1/departments/{other['id']}", token=self.admin)

    def test_rename_to_sibling_name_is_409(self):
        before = self.get(self.sz)
        r = self.req("PATCH", f"/v1/departments/{self.sz['id']}", {"name": "广州市"},
                     token=self.admin)
        self.assertProblemType(r, 409, "conflict", "广州市")
        self.assertEqual(self.get(self.sz), before)

    def test_move_next_to_same_named_sibling_is_409(self):
        twin = self.mkdept("办公室", self.sz["id"])   # same name as self.office
        r = self.req("PATCH", f"/v1/departments/{twin['id']}",
                     {"parent_id": self.bureau["id"]}, token=self.admin)
        self.assertProblemType(r, 409, "conflict")
        self.assertEqual(r.json.get("field"), "name")
        after = self.get(twin)
        self.assertEqual((after["parent_id"], after["version"]), (self.sz["id"], 1))
        self.req("DELETE", f"/v1/departments/{twin['id']}", token=self.admin)
        # detail names the clashing name (checked last: a wording problem, not a state one)
        self.assertIn("办公室", r.json["detail"])

    def test_duplicate_code_is_409(self):
        before = db_count(self.d, "departments")
        r = self.req("POST", "/v1/departments", {"name": "别的局", "code": "440100-ZSJ",
                                                 "parent_id": self.sz["id"]}, token=self.admin)
        self.assertProblemType(r, 409, "conflict", "440100-ZSJ")
        self.assertEqual(r.json.get("field"), "code")
        self.assertEqual(db_count(self.d, "departments"), before)
        sz = self.get(self.sz)
        r = self.req("PATCH", f"/v1/departments/{self.sz['id']}", {"code": "440000"},
                     token=self.admin)
        self.assertProblemType(r, 409, "conflict", "440000")
        self.assertEqual(self.get(self.sz), sz)

    def test_delete_refused_while_it_has_children(self):
        r = self.req("DELETE", f"/v1/departments/{self.bureau['id']}", token=self.admin)
        self.assertProblemType(r, 409, "conflict", "child departments")
        self.assertEqual(self.get(self.bureau)["id"], self.bureau["id"])

    def test_delete_refused_while_it_has_users(self):
        d = self.mkdept("有人的科", self.sz["id"])
        u = self.mkuser("deptholder", "department_user", d["id"])
        r = self.req("DELETE", f"/v1/departments/{d['id']}", token=self.admin)
        self.assertProblemType(r, 409, "conflict", "users")
        self.assertEqual(self.get(d)["version"], 1)
        self.assertEqual(self.req("DELETE", f"/v1/users/{u['id']}", token=self.admin).status,
                         204)
        r = self.req("DELETE", f"/v1/departments/{d['id']}", token=self.admin)
        self.assertEqual(r.status, 204, r)

    def test_at_most_eight_levels(self):
        parent = None
        chain = []
        for i in range(8):
            chain.append(self.mkdept(f"层{i}", parent))
            parent = chain[-1]["id"]
        self.assertEqual(chain[-1]["depth"], 7)
        before = db_count(self.d, "departments")
        r = self.req("POST", "/v1/departments", {"name": "层8", "parent_id": parent},
                     token=self.admin)
        self.assertProblemType(r, 400, "invalid-request")
        self.assertEqual(r.json.get("field"), "parent_id")
        self.assertEqual(db_count(self.d, "departments"), before)
        # moving a two-level subtree under level 6 would make level 8: refused as well
        sub = self.mkdept("子树根")
        self.mkdept("子树叶", sub["id"])
        r = self.req("PATCH", f"/v1/departments/{sub['id']}", {"parent_id": chain[6]["id"]},
                     token=self.admin)
        self.assertProblemType(r, 400, "invalid-request")
        self.assertEqual(self.get(sub)["depth"], 0)


class PaginationAndFiltersTest(ApiTestCase):

    N = 25

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        r = cls.d.request("POST", "/v1/departments", {"name": "分页父", "code": "PAGE-P"},
                          token=cls.admin)
        assert r.status == 201, r
        cls.parent = r.json
        cls.created = []
        for i in range(cls.N):
            r = cls.d.request("POST", "/v1/departments",
                              {"name": f"分页{i:02d}", "code": f"PG-{i:02d}",
                               "parent_id": cls.parent["id"]}, token=cls.admin)
            assert r.status == 201, r
            cls.created.append(r.json)
        cls.dept_a = cls.created[0]
        cls.dept_b = cls.created[1]
        cls.users = []
        for name, role, dept in (("pg-op", "operator", None),
                                 ("pg-aud", "auditor", None),
                                 ("pg-da", "department_admin", cls.dept_a["id"]),
                                 ("pg-du1", "department_user", cls.dept_a["id"]),
                                 ("pg-du2", "department_user", cls.dept_b["id"])):
            body = {"username": name, "password": "User-Passw0rd!", "role": role}
            if dept:
                body["department_id"] = dept
            r = cls.d.request("POST", "/v1/users", body, token=cls.admin)
            assert r.status == 201, r
            cls.users.append(r.json)

    def test_pages_disjoint_complete_in_order(self):
        path = f"/v1/departments?parent_id={self.parent['id']}"
        items, pages = self.all_pages(path, limit=10)
        self.assertEqual([len(p["items"]) for p in pages], [10, 10, 5])
        for p in pages[:-1]:
            self.assertEqual(p["next_cursor"], p["items"][-1]["id"])
        self.assertIsNone(pages[-1]["next_cursor"])
        ids = [x["id"] for x in items]
        self.assertEqual(len(ids), len(set(ids)), "pages overlap")
        self.assertEqual(set(ids), {x["id"] for x in self.created}, "pages are incomplete")
        self.assertEqual(ids, sorted(ids), "items are not in id (creation) order")
        times = [parse_time(x["created_at"]) for x in items]
        self.assertEqual(times, sorted(times), "items are not in creation order")
        # one page with everything gives the same order
        one = self.req("GET", path + "&limit=500", token=self.admin)
        self.assertEqual([x["id"] for x in one.json["items"]], ids)
        self.assertIsNone(one.json["next_cursor"])

    def test_last_full_page_has_null_cursor(self):
        _, pages = self.all_pages(f"/v1/departments?parent_id={self.parent['id']}", limit=5)
        self.assertEqual([len(p["items"]) for p in pages], [5] * 5)
        self.assertIsNone(pages[-1]["next_cursor"])

    def test_default_limit_is_50(self):
        for i in range(30):
            self.mkdept(f"默认{i:02d}", self.dept_b["id"])
        r = self.req("GET", "/v1/departments", token=self.admin)
        self.assertEqual(r.status, 200, r)
        total = db_count(self.d, "departments")
        self.assertGreater(total, 50)
        self.assertEqual(len(r.json["items"]), 50)
        self.assertIsNotNone(r.json["next_cursor"])

    def test_limit_one_walks_everything(self):
        items, pages = self.all_pages(f"/v1/departments?parent_id={self.parent['id']}",
                                      limit=1)
        self.assertEqual(len(pages), self.N)
        self.assertEqual([x["id"] for x in items], sorted(x["id"] for x in self.created))

    def test_bad_limit_is_400(self):
        for lim in ("0", "501", "abc", "-1", "1.5", "", "10abc", "99999999999999999999"):
            for coll in ("/v1/departments", "/v1/users", "/v1/audit-events", "/v1/jobs",
                         "/v1/api-keys"):
                with self.subTest(limit=lim, coll=coll):
                    r = self.req("GET", f"{coll}?limit={lim}", token=self.admin)
                    self.assertProblemType(r, 400, "invalid-request", "limit")
                    self.assertEqual(r.json.get("field"), "limit")

    def test_limit_bounds_accepted(self):
        for lim in ("1", "500"):
            r = self.req("GET", f"/v1/departments?limit={lim}", token=self.admin)
            self.assertEqual(r.status, 200, r)
            self.assertLessEqual(len(r.json["items"]), int(lim))

    def test_bad_cursor_is_400(self):
        for coll in ("/v1/departments", "/v1/users", "/v1/audit-events", "/v1/jobs",
                     "/v1/api-keys"):
            for cur in ("zzz", "", "not-a-cursor", "1 OR 1=1"):
                with self.subTest(coll=coll, cursor=cur):
                    r = self.req("GET", f"{coll}?cursor={urllib.parse.quote(cur)}",
                                 token=self.admin)
                    self.assertProblemType(r, 400, "invalid-request")
                    self.assertEqual(r.json.get("field"), "cursor")

    def test_filter_parent_root(self):
        items, _ = self.all_pages("/v1/departments?parent_id=root", limit=500)
        self.assertIn(self.parent["id"], [x["id"] for x in items])
        self.assertTrue(all(x["parent_id"] is None for x in items), items)
        with db_ro(self.d) as db:
            n = db.execute("SELECT COUNT(*) FROM departments WHERE parent_id IS NULL").fetchone()
        self.assertEqual(len(items), n[0])

    def test_filter_name_and_code(self):
        r = self.req("GET", "/v1/departments?name=" + urllib.parse.quote("分页07"),
                     token=self.admin)
        self.assertEqual([x["id"] for x in r.json["items"]], [self.created[7]["id"]])
        r = self.req("GET", "/v1/departments?code=PG-13", token=self.admin)
        self.assertEqual([x["id"] for x in r.json["items"]], [self.created[13]["id"]])
        r = self.req("GET", "/v1/departments?code=PG-13&parent_id=root", token=self.admin)
        self.assertEqual(r.json["items"], [])
        # filters are exact, not patterns
        for pat in ("分页%", "分页0_", "%"):
            r = self.req("GET", "/v1/departments?name=" + urllib.parse.quote(pat),
                         token=self.admin)
            self.assertEqual(r.json["items"], [], pat)

    def test_filter_paging_combined(self):
        items, pages = self.all_pages(f"/v1/departments?parent_id={self.dept_a['id']}",
                                      limit=3)
        self.assertEqual(items, [])
        self.assertEqual(len(pages), 1)

    def test_user_filters(self):
        def names(q):
            items, _ = self.all_pages("/v1/users?" + q, limit=500)
            return sorted(x["username"] for x in items)
        self.assertEqual(names("role=department_user"), ["pg-du1", "pg-du2"])
        self.assertEqual(names("role=operator"), ["pg-op"])
        self.assertEqual(names("role=platform_admin"), ["admin"])
        self.assertEqual(names(f"department_id={self.dept_a['id']}"), ["pg-da", "pg-du1"])
        self.assertEqual(names(f"department_id={self.dept_a['id']}&role=department_admin"),
                         ["pg-da"])
        self.assertEqual(names("username=pg-aud"), ["pg-aud"])
        r = self.req("GET", "/v1/users?role=root", token=self.admin)
        self.assertProblemType(r, 400, "invalid-request")
        self.assertEqual(r.json.get("field"), "role")

    def test_user_pagination(self):
        items, pages = self.all_pages("/v1/users", limit=2)
        self.assertEqual(len(items), db_count(self.d, "users"))
        self.assertEqual(len({x["id"] for x in items}), len(items))
        self.assertEqual([len(p["items"]) for p in pages[:-1]], [2] * (len(pages) - 1))


class CreationOrderTest(ApiTestCase):
    """'ids sort by creation time' and 'items come in creation order': departments created
    concurrently must be listed in the order they were created (the order of their
    department.create audit events, which are written in the same transaction)."""

    def test_concurrent_creations_listed_in_creation_order(self):
        parent = self.mkdept("并发父")
        errors = []

        def worker(k):
            for i in range(40):
                r = self.d.request("POST", "/v1/departments",
                                   {"name": f"并发{k}-{i}", "parent_id": parent["id"]},
                                   token=self.admin)
                if r.status != 201:
                    errors.append(r)
        threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        with db_ro(self.d) as db:
            truth = [row[0] for row in db.execute(
                "SELECT resource_id FROM audit_events WHERE action = 'department.create'"
                " AND outcome = 'success' AND resource_id <> ? ORDER BY seq", (parent["id"],))]
        self.assertEqual(len(truth), 320)
        inversions = [(a, b) for a, b in zip(truth, truth[1:]) if a > b]
        if inversions:
            self.fail(f"{len(inversions)} times an id created later sorts "
                      f"before the one created just before it (UUIDv7 ids are not "
                      f"monotonic within a millisecond), e.g. {inversions[:2]}")
        items, _ = self.all_pages(f"/v1/departments?parent_id={parent['id']}", limit=100)
        listed = [x["id"] for x in items]
        self.assertEqual(len(listed), 320)
        self.assertEqual(listed, truth)


class AuditTrailTest(ApiTestCase):

    def test_create_update_delete_events(self):
        me = self.req("GET", "/v1/users/me", token=self.admin).json
        d = self.mkdept("审计局", code="AUD-1")
        self.req("PATCH", f"/v1/departments/{d['id']}", {"name": "审计局2"}, token=self.admin)
        self.assertEqual(self.req("DELETE", f"/v1/departments/{d['id']}",
                                  token=self.admin).status, 204)
        events = self.audit_events(resource_id=d["id"])
        self.assertEqual([e["action"] for e in events],
                         ["department.create", "department.update", "department.delete"])
        seqs = [e["seq"] for e in events]
        self.assertEqual(seqs, sorted(seqs))
        for e in events:
            self.assertEqual((e["actor_id"], e["actor_name"], e["actor_role"], e["outcome"],
                              e["resource_type"], e["resource_id"], e["source_ip"]),
                             (me["id"], "admin", "platform_admin", "success", "department",
                              d["id"], "127.0.0.1"))
            self.assertRegex(e["time"], RFC3339_MS)
            self.assertRegex(e["hash"], r"^[0-9a-f]{64}$")
            self.assertRegex(e["id"], UUID7)
        self.assertEqual(events[0]["detail"]["name"], "审计局")
        self.assertEqual(events[1]["detail"]["before"]["name"], "审计局")
        self.assertEqual(events[1]["detail"]["after"]["name"], "审计局2")
        self.assertEqual(events[2]["detail"]["name"], "审计局2")

    def test_user_events(self):
        u = self.mkuser("audited-user", "auditor")
        self.req("PATCH", f"/v1/users/{u['id']}", {"display_name": "x"}, token=self.admin)
        self.req("DELETE", f"/v1/users/{u['id']}", token=self.admin)
        events = self.audit_events(resource_type="user", resource_id=u["id"])
        self.assertEqual([(e["action"], e["outcome"]) for e in events],
                         [("user.create", "success"), ("user.update", "success"),
                          ("user.delete", "success")])
        for e in events:
            self.assertNotIn("password_hash", str(e["detail"]))
            self.assertNotIn("User-Passw0rd!", str(e["detail"]))

    def test_failed_writes_recorded(self):
        d = self.mkdept("失败审计局", code="FAIL-AUD")
        self.mkuser("fail-aud-user", "department_user", d["id"])
        r = self.req("POST", "/v1/departments", {"name": "别名", "code": "FAIL-AUD"},
                     token=self.admin, headers={"X-Request-Id": "audit-fail-409"})
        self.assertProblem(r, 409)
        r2 = self.req("DELETE", f"/v1/departments/{d['id']}", token=self.admin)
        self.assertProblem(r2, 409)
        r3 = self.req("PATCH", f"/v1/departments/{d['id']}", {"name": 5}, token=self.admin)
        self.assertProblem(r3, 400)

        fails = self.audit_events(outcome="failure", action="department.create")
        mine = [e for e in fails if e["request_id"] == "audit-fail-409"]
        self.assertEqual(len(mine), 1, fails)
        self.assertEqual((mine[0]["actor_name"], mine[0]["resource_type"]),
                         ("admin", "department"))
        self.assertEqual(mine[0]["reason"], r.json["detail"])

        ev = self.audit_events(resource_id=d["id"], outcome="failure")
        self.assertEqual([(e["action"], e["reason"]) for e in ev],
                         [("department.delete", r2.json["detail"]),
                          ("department.update", r3.json["detail"])])

    def test_reads_are_not_audited(self):
        with db_ro(self.d) as db:
            before = db.execute("SELECT COUNT(*) FROM audit_events").fetchone()[0]
        self.req("GET", "/v1/departments", token=self.admin)
        self.req("GET", "/v1/users/me", token=self.admin)
        self.req("GET", "/v1/audit-events?limit=1", token=self.admin)
        with db_ro(self.d) as db:
            after = db.execute("SELECT COUNT(*) FROM audit_events").fetchone()[0]
        self.assertEqual(after, before)

    def test_filters(self):
        t0 = datetime.now(timezone.utc)
        time.sleep(0.01)
        d = self.mkdept("过滤局")
        u = self.mkuser("filter-user", "operator")
        time.sleep(0.01)
        t1 = datetime.now(timezone.utc)
        fmt = "%Y-%m-%dT%H:%M:%S.%fZ"

        def q(**f):
            return self.audit_events(**f)
        win = q(since=t0.strftime(fmt), until=t1.strftime(fmt))
        self.assertEqual([(e["action"], e["resource_id"]) for e in win],
                         [("department.create", d["id"]), ("user.create", u["id"])])
        self.assertTrue(all(e["action"] == "user.create" for e in q(action="user.create")))
        self.assertIn(u["id"], [e["resource_id"] for e in q(action="user.create")])
        self.assertTrue(all(e["resource_type"] == "department"
                            for e in q(resource_type="department")))
        self.assertTrue(all(e["actor_name"] == "admin" for e in q(actor_name="admin")))
        self.assertEqual(q(actor_name="nobody-at-all"), [])
        self.assertTrue(all(e["outcome"] == "success" for e in q(outcome="success")))
        later = q(since=t1.strftime(fmt))
        self.assertNotIn(d["id"], [e["resource_id"] for e in later])

    def test_bad_filters_are_400(self):
        for qs, field in (("since=yesterday", "since"), ("until=2026-13-01T00:00:00Z", "until"),
                          ("outcome=maybe", "outcome"), ("cursor=abc", "cursor"),
                          ("cursor=-5", "cursor")):
            with self.subTest(qs=qs):
                r = self.req("GET", "/v1/audit-events?" + qs, token=self.admin)
                self.assertProblemType(r, 400, "invalid-request")
                self.assertEqual(r.json.get("field"), field)

    def test_pagination_by_cursor(self):
        for i in range(6):
            self.mkdept(f"审计分页{i}")
        with db_ro(self.d) as db:
            total = db.execute("SELECT COUNT(*) FROM audit_events").fetchone()[0]
        items, pages = self.all_pages("/v1/audit-events", limit=4)
        self.assertGreaterEqual(total, 7)
        seqs = [e["seq"] for e in items]
        self.assertEqual(seqs[:total], list(range(1, total + 1)))
        self.assertEqual([len(p["items"]) for p in pages[:-1]], [4] * (len(pages) - 1))
        for p in pages[:-1]:
            self.assertEqual(p["next_cursor"], str(p["items"][-1]["seq"]))
        # the chain links across pages
        for a, b in zip(items, items[1:]):
            self.assertEqual(b["prev_hash"], a["hash"])

    def test_verify_intact(self):
        self.mkdept("校验局")
        r = self.req("GET", "/v1/audit-events/verify", token=self.admin)
        self.assertEqual(r.status, 200, r)
        with db_ro(self.d) as db:
            n, head = db.execute("SELECT COUNT(*), MAX(seq) FROM audit_events").fetchone()
        self.assertEqual(r.json, {"intact": True, "events": n, "head_seq": head})

    def test_audit_needs_permission(self):
        d = self.mkdept("无权审计局")
        self.mkuser("aud-du", "department_user", d["id"])
        self.mkuser("aud-op", "operator")
        for name in ("aud-du", "aud-op"):
            tok = self.d.login(name, "User-Passw0rd!")
            with self.subTest(user=name):
                self.assertProblemType(self.req("GET", "/v1/audit-events", token=tok), 403,
                                       "forbidden")
                self.assertProblemType(self.req("GET", "/v1/audit-events/verify", token=tok),
                                       403, "forbidden")


if __name__ == "__main__":
    unittest.main()
