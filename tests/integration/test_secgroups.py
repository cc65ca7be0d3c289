"""Security group rules are validated before anything reaches a host, and groups are scoped
to departments (the nwfilter side is in test_qemu_vm)."""

import unittest

import gcharness as gh


class SecurityGroupRulesTest(gh.DaemonTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        post = lambda path, body: cls.d.request("POST", path, body, token=cls.admin).json
        cls.a = post("/v1/departments", {"name": "安全组甲"})["id"]
        cls.b = post("/v1/departments", {"name": "安全组乙"})["id"]
        post("/v1/users", {"username": "sg-user", "password": "User-Passw0rd!",
                           "role": "department_user", "department_id": cls.a})
        cls.user = cls.d.login("sg-user", "User-Passw0rd!")

    def group(self, rules, dept=None):
        return self.req("POST", "/v1/security-groups",
                        {"name": gh.free_port().__str__(), "department_id": dept or self.a,
                         "rules": rules}, token=self.admin)

    def count(self):
        return len(self.req("GET", "/v1/security-groups?limit=500", token=self.admin)
                   .json["items"])

    def test_bad_rules_are_refused_and_nothing_is_written(self):
        bad = [
            ({"direction": "ingress", "protocol": "tcp", "cidr": "10.1.2.3/8"}, "host bits"),
            ({"direction": "ingress", "protocol": "tcp", "cidr": "10.0.0.0/8junk"}, "cidr"),
            ({"direction": "ingress", "protocol": "tcp", "cidr": "10.0.0.0/33"}, "cidr"),
            ({"direction": "ingress", "protocol": "tcp", "cidr": "2001:db8::1/32"}, "host bits"),
            ({"direction": "ingress", "protocol": "tcp", "cidr": "10.0.0.0"}, "cidr"),
            ({"direction": "sideways", "protocol": "tcp", "cidr": "0.0.0.0/0"}, "direction"),
            ({"direction": "ingress", "protocol": "sctp", "cidr": "0.0.0.0/0"}, "protocol"),
            ({"direction": "ingress", "protocol": "icmp", "port_min": 1, "cidr": "0.0.0.0/0"},
             "ports"),
            ({"direction": "ingress", "protocol": "tcp", "port_min": 80, "port_max": 22,
              "cidr": "0.0.0.0/0"}, "port_max"),
            ({"direction": "ingress", "protocol": "tcp", "cidr": "0.0.0.0/0", "action": "drop"},
             "unknown field"),
        ]
        before = self.count()
        for rule, why in bad:
            with self.subTest(rule=rule):
                r = self.group([rule])
                self.assertProblem(r, 400, why)
                self.assertTrue(r.json.get("field", "").endswith(
                    ("cidr", "direction", "protocol", "port_min", "port_max", "action")), r.json)
        self.assertEqual(self.count(), before)

    def test_good_rules(self):
        r = self.group([
            {"direction": "ingress", "protocol": "tcp", "port_min": 22, "cidr": "10.0.0.0/8"},
            {"direction": "ingress", "protocol": "icmp", "cidr": "::/0"},
            {"direction": "egress", "protocol": "udp", "port_min": 53, "port_max": 53,
             "cidr": "0.0.0.0/0"}])
        self.assertEqual(r.status, 201, r)
        self.assertEqual([x["port_max"] for x in r.json["rules"]], [22, None, 53])
        # a rule added later, and one removed; each queues the job that updates the hosts
        g = r.json["id"]
        r = self.req("POST", f"/v1/security-groups/{g}/rules",
                     {"direction": "ingress", "protocol": "all", "cidr": "192.168.0.0/16"},
                     token=self.admin)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.headers["Location"], f"/v1/security-groups/{g}/rules/{r.json['id']}")
        r = self.req("DELETE", f"/v1/security-groups/{g}/rules/{r.json['id']}", token=self.admin)
        self.assertEqual(r.status, 204, r)
        jobs = [j for j in self.req("GET", "/v1/jobs?kind=security_group.apply&limit=500",
                                    token=self.admin).json["items"] if j["resource_id"] == g]
        self.assertEqual(len(jobs), 2)

    def test_departments_see_their_own_and_shared_groups(self):
        mine = self.group([], self.a).json["id"]
        theirs = self.group([], self.b).json["id"]
        shared = self.req("POST", "/v1/security-groups", {"name": "shared", "department_id": None},
                          token=self.admin).json["id"]
        ids = [g["id"] for g in self.req("GET", "/v1/security-groups?limit=500",
                                         token=self.user).json["items"]]
        self.assertIn(mine, ids)
        self.assertIn(shared, ids)
        self.assertNotIn(theirs, ids)
        self.assertEqual(self.req("GET", f"/v1/security-groups/{theirs}", token=self.user)
                         .status, 404)
        # a department user may change its own group, not a shared one
        r = self.req("POST", f"/v1/security-groups/{shared}/rules",
                     {"direction": "ingress", "protocol": "all", "cidr": "0.0.0.0/0"},
                     token=self.user)
        self.assertProblem(r, 403)
        r = self.req("POST", f"/v1/security-groups/{mine}/rules",
                     {"direction": "ingress", "protocol": "all", "cidr": "0.0.0.0/0"},
                     token=self.user)
        self.assertEqual(r.status, 201, r)


if __name__ == "__main__":
    unittest.main()
