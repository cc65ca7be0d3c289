"""Placement weighers (spread and pack, from [compute] placement_weigher or a zone's own) and
zones with their over-commit ratios: GET /v1/zones, GET/PUT /v1/zones/{name}; the hosts'
free-room counters follow a zone's ratios and a host's move to another zone at once.
Runs on libvirt's test driver (every test:///default host is i686, 16 CPUs, 3072 MiB: hosts
of different effective sizes come from different memory ratios of their zones).

Expected values come from docs/infrastructure.md, not from the daemon."""

import threading
import unittest
import urllib.parse

from test_vms import HOST_CPUS, HOST_MIB, PlacementCase, uniq


class ZoneCase(PlacementCase):

    def put_zone(self, name, body, want=200, token=None):
        return self.ok("PUT", f"/v1/zones/{name}", body, token=token, want=want)

    def host_of(self, vid):
        return self.ok("GET", f"/v1/vms/{vid}")["host_id"]

    def free(self, hid):
        h = self.ok("GET", f"/v1/hosts/{hid}")
        return h["vcpus_free"], h["memory_free_mib"]


class TestSpreadIsTheDefault(ZoneCase):

    def test_two_vms_go_to_different_hosts(self):
        h1, h2 = self.mkhost(), self.mkhost()
        f = self.mkflavor(vcpus=1, memory_mib=512)
        a, b = self.fill(f["id"], 2)
        self.assertEqual({self.host_of(a), self.host_of(b)}, {h1["id"], h2["id"]})

    def test_spread_takes_the_bigger_host(self):
        # zone "big" lets its host place 200 % of its memory: it has the most free memory
        self.put_zone(uniq("big"), {})  # a zone may be configured before it has hosts
        big, small = uniq("big-"), uniq("small-")
        self.put_zone(big, {"ram_overcommit_percent": 200})
        hb = self.mkhost(zone=big)
        hs = self.mkhost(zone=small)
        self.assertEqual(self.free(hb["id"])[1], 2 * HOST_MIB)
        self.assertEqual(self.free(hs["id"])[1], HOST_MIB)
        f = self.mkflavor(vcpus=1, memory_mib=1024)
        a = self.fill(f["id"], 1)[0]
        self.assertEqual(self.host_of(a), hb["id"])


class TestPackWeigher(ZoneCase):
    extra = ("--set", "compute.placement_weigher=pack")

    def test_two_vms_go_to_the_same_host(self):
        h1, h2 = self.mkhost(), self.mkhost()
        f = self.mkflavor(vcpus=1, memory_mib=512)
        a, b = self.fill(f["id"], 2)
        self.assertEqual(self.host_of(a), self.host_of(b))
        self.assertIn(self.host_of(a), (h1["id"], h2["id"]))

    def test_pack_fills_the_smaller_host_first_then_the_next(self):
        big, small = uniq("big-"), uniq("small-")
        self.put_zone(big, {"ram_overcommit_percent": 200})
        hb = self.mkhost(zone=big)
        hs = self.mkhost(zone=small)
        f = self.mkflavor(vcpus=1, memory_mib=1024)
        # the small host (3072 MiB) takes three, down to exactly 0 free; then the big one
        vids = self.fill(f["id"], 4)
        self.assertEqual([self.host_of(v) for v in vids], [hs["id"]] * 3 + [hb["id"]])
        self.assertEqual(self.free(hs["id"]), (HOST_CPUS * 4 - 3, 0))
        self.assertEqual(self.free(hb["id"]), (HOST_CPUS * 4 - 1, 2 * HOST_MIB - 1024))
        # a VM that only fits where there is more room skips the fuller host
        f2 = self.mkflavor(vcpus=1, memory_mib=4096)
        v = self.fill(f2["id"], 1)[0]
        self.assertEqual(self.host_of(v), hb["id"])

    def test_parallel_creates_with_pack_never_overshoot(self):
        h = self.mkhost()
        per = HOST_MIB // 5
        f = self.mkflavor(vcpus=1, memory_mib=per)
        results = []

        def one():
            results.append(self.post_vm(f["id"], self.image["id"], self.dept["id"],
                                        start=False).status)
        ts = [threading.Thread(target=one) for _ in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(sorted(results), [202] * 5 + [409] * 3, results)
        self.assertEqual(self.free(h["id"])[1], HOST_MIB - 5 * per)


class TestZoneWeigher(ZoneCase):

    def test_a_zone_packs_while_the_default_spreads(self):
        zp = uniq("packed-")
        z = self.put_zone(zp, {"placement_weigher": "pack"})
        self.assertEqual(z["placement_weigher"], "pack")
        self.assertEqual(sorted(z["defaults"]),
                         ["cpu_overcommit_percent", "ram_overcommit_percent"])
        h1, h2 = self.mkhost(zone=zp), self.mkhost(zone=zp)
        f = self.mkflavor(vcpus=1, memory_mib=512)
        # in the zone: packed on one host
        a = self.create_vm(f["id"], self.image["id"], self.dept["id"], zone=zp, start=False)
        b = self.create_vm(f["id"], self.image["id"], self.dept["id"], zone=zp, start=False)
        self.assertEqual(a["host_id"], b["host_id"])
        # without a zone in the request the [compute] default (spread) applies
        c = self.create_vm(f["id"], self.image["id"], self.dept["id"], start=False)
        self.assertNotEqual(c["host_id"], a["host_id"])
        self.assertIn(c["host_id"], (h1["id"], h2["id"]))
        # back to the default: spread inside the zone too
        z = self.put_zone(zp, {"placement_weigher": None})
        self.assertEqual(z["placement_weigher"], "spread")
        self.assertIn("placement_weigher", z["defaults"])


class TestZoneRatios(ZoneCase):

    def test_ratio_change_recomputes_the_hosts_of_the_zone(self):
        zn, other = uniq("zr-"), uniq("zo-")
        h = self.mkhost(zone=zn)
        ho = self.mkhost(zone=other)
        f = self.mkflavor(vcpus=1, memory_mib=1024)
        for _ in range(3):
            self.accepted(self.post_vm(f["id"], self.image["id"], self.dept["id"], start=False,
                                       zone=zn), "vm.create")
        self.assertEqual(self.free(h["id"]), (HOST_CPUS * 4 - 3, 0))
        self.assertProblem(self.post_vm(f["id"], self.image["id"], self.dept["id"], zone=zn),
                           409, "1024 MiB")
        z = self.put_zone(zn, {"ram_overcommit_percent": 150, "cpu_overcommit_percent": 100})
        self.assertEqual((z["cpu_overcommit_percent"], z["ram_overcommit_percent"]), (100, 150))
        self.assertEqual(z["hosts"], 1)
        self.assertEqual(self.free(h["id"]), (HOST_CPUS - 3, HOST_MIB * 3 // 2 - 3072))
        # the host of the other zone keeps the defaults
        self.assertEqual(self.free(ho["id"]), (HOST_CPUS * 4, HOST_MIB))
        v = self.create_vm(f["id"], self.image["id"], self.dept["id"], zone=zn, start=False)
        self.assertEqual(v["host_id"], h["id"])
        # lowering the ratio below what is placed leaves the VMs, refuses new ones
        self.put_zone(zn, {"ram_overcommit_percent": 100})
        self.assertEqual(self.free(h["id"])[1], HOST_MIB - 4096)
        self.assertProblem(self.post_vm(f["id"], self.image["id"], self.dept["id"], zone=zn),
                           409, "cannot place")
        # audited with before and after
        ev = self.events(action="zone.update", resource_id=zn)
        self.assertEqual(len(ev), 2, ev)
        self.assertEqual(ev[0]["resource_type"], "zone")
        first = min(ev, key=lambda e: e["seq"])
        self.assertEqual(first["detail"]["before"]["ram_overcommit_percent"], 100)
        self.assertEqual(first["detail"]["after"]["ram_overcommit_percent"], 150)

    def test_moving_a_host_to_another_zone_recomputes_it(self):
        roomy = uniq("roomy-")
        self.put_zone(roomy, {"ram_overcommit_percent": 300, "cpu_overcommit_percent": 200})
        h = self.mkhost()
        self.assertEqual(self.free(h["id"]), (HOST_CPUS * 4, HOST_MIB))
        r = self.call("PATCH", f"/v1/hosts/{h['id']}", {"zone": roomy})
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json["vcpus_free"], r.json["memory_free_mib"]),
                         (HOST_CPUS * 2, HOST_MIB * 3))
        r = self.call("PATCH", f"/v1/hosts/{h['id']}", {"zone": "default"})
        self.assertEqual((r.json["vcpus_free"], r.json["memory_free_mib"]),
                         (HOST_CPUS * 4, HOST_MIB))

    def test_list_get_and_bad_input(self):
        za = uniq("za-")
        self.mkhost(zone=za)
        self.mkhost(zone=za)
        self.mkhost()
        zs = self.ok("GET", "/v1/zones")["items"]
        names = [z["name"] for z in zs]
        self.assertEqual(names, sorted(names))
        self.assertIn("default", names)  # the zone of hosts registered without one
        z = self.ok("GET", f"/v1/zones/{za}")
        self.assertEqual((z["hosts"], z["version"], z["cpu_overcommit_percent"],
                          z["ram_overcommit_percent"], z["placement_weigher"]),
                         (2, 0, 400, 100, "spread"))
        self.assertEqual(sorted(z["defaults"]), ["cpu_overcommit_percent",
                                                 "placement_weigher", "ram_overcommit_percent"])
        # paging by name
        p1 = self.ok("GET", "/v1/zones?limit=1")
        self.assertEqual(len(p1["items"]), 1)
        p2 = self.ok("GET", "/v1/zones?limit=1&cursor=" +
                     urllib.parse.quote(p1["next_cursor"]))
        self.assertGreater(p2["items"][0]["name"], p1["items"][0]["name"])
        self.assertProblem(self.call("GET", "/v1/zones?cursor=a%20b"), 400)
        self.assertProblem(self.call("GET", "/v1/zones/nowhere"), 404, "zone 'nowhere'")
        for body, field, words in (
                ({"cpu_overcommit_percent": 99}, "cpu_overcommit_percent", "from 100 to 10000"),
                ({"ram_overcommit_percent": 1001}, "ram_overcommit_percent", "from 50 to 1000"),
                ({"ram_overcommit_percent": "150"}, "ram_overcommit_percent", "expected"),
                ({"placement_weigher": "random"}, "placement_weigher", "spread or pack"),
                ({"colour": "red"}, "colour", "unknown field")):
            r = self.call("PUT", f"/v1/zones/{za}", body)
            self.assertProblem(r, 400, words)
            self.assertEqual(r.json.get("field"), field, r.json)
        self.assertProblem(self.call("PUT", "/v1/zones/bad%20name", {}), 400, "zone name")
        self.assertEqual(self.ok("GET", f"/v1/zones/{za}")["version"], 0,
                         "a refused PUT wrote something")
        # If-Match
        z = self.put_zone(za, {"cpu_overcommit_percent": 200})
        self.assertEqual(z["version"], 1)
        r = self.call("PUT", f"/v1/zones/{za}", {}, headers={"If-Match": '"7"'})
        self.assertProblem(r, 412, "version 1")
        r = self.call("PUT", f"/v1/zones/{za}", {}, headers={"If-Match": '"1"'})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["cpu_overcommit_percent"], 400)

    def test_only_platform_roles_change_zones(self):
        zn = uniq("zp-")
        self.mkhost(zone=zn)
        auditor = self.mkuser_("auditor")
        self.assertEqual(self.call("GET", f"/v1/zones/{zn}", token=auditor["token"]).status,
                         200)
        self.assertProblem(self.call("PUT", f"/v1/zones/{zn}", {"cpu_overcommit_percent": 800},
                                     token=auditor["token"]), 403)
        dadmin = self.mkuser_("department_admin", self.dept["id"])
        self.assertProblem(self.call("GET", f"/v1/zones/{zn}", token=dadmin["token"]), 404)
        self.assertProblem(self.call("PUT", f"/v1/zones/{zn}", {"cpu_overcommit_percent": 800},
                                     token=dadmin["token"]), 404)
        self.assertProblem(self.call("GET", "/v1/zones", token=dadmin["token"]), 403)
        op = self.mkuser_("operator")
        z = self.ok("PUT", f"/v1/zones/{zn}", {"cpu_overcommit_percent": 800},
                    token=op["token"])
        self.assertEqual(z["cpu_overcommit_percent"], 800)
        self.assertEqual(self.ok("GET", f"/v1/zones/{zn}")["version"], 1)


if __name__ == "__main__":
    unittest.main()
