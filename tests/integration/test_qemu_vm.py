"""A real guest through govcloud: the system libvirtd with QEMU (KVM where it works, software
emulation otherwise), the tiny image from scripts/tiny-image registered through the API, a VM
created through the API that boots, prints on its serial console (read back through
GET /v1/vms/{id}/console) and powers itself off, which govcloud reports as drift; then the
VM is deleted and nothing of it is left: no domain, no console or libvirt log.

Skips, saying so, only when libvirt or QEMU is not installed."""

import os
import shutil
import subprocess
import time
import unittest
import uuid

import gcharness as gh
import libvirtd as lv

CONSOLE_DIR = "/var/log/libvirt/qemu"


class QemuVmTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        missing = lv.missing_binaries()
        if missing:
            raise unittest.SkipTest("libvirt/QEMU not installed (missing: " + ", ".join(missing)
                                    + ")")
        lv.ensure_libvirtd()
        lv.ensure_default_pool()
        cls.images = lv.make_workdir("govcloud-qemu-vm-")
        lv.tiny_image(cls.images)
        virt = "kvm" if lv.kvm_usable() else "qemu"
        cls.d = gh.Daemon(extra=["--set", "bootstrap.host_uri=qemu:///system",
                                 "--set", f"bootstrap.image_dir={cls.images}",
                                 "--set", f"compute.virt_type={virt}"]).start()
        cls.admin = cls.d.login()

    @classmethod
    def tearDownClass(cls):
        rc = cls.d.stop()
        log = cls.d.read_log()
        cls.d.cleanup()
        shutil.rmtree(cls.images, ignore_errors=True)
        lv.stop_libvirtd()
        if rc != 0:
            raise AssertionError(f"govcloudd exited with {rc}:\n{log[-4000:]}")
        for bad in ("runtime error:", "AddressSanitizer", "LeakSanitizer"):
            if bad in log:
                raise AssertionError(f"sanitizer report in the daemon log:\n{log[-8000:]}")

    def get(self, path):
        r = self.d.request("GET", path, token=self.admin)
        self.assertEqual(r.status, 200, r)
        return r.json if r.json is not None else r.body.decode("utf-8", "replace")

    def wait(self, what, fn, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = fn()
            if v:
                return v
            time.sleep(0.3)
        self.fail(f"timed out after {timeout} s waiting for {what}")

    def wait_job(self, job_id, timeout=60):
        def done():
            j = self.get(f"/v1/jobs/{job_id}")
            return j if j["state"] in ("succeeded", "failed", "cancelled") else None
        j = self.wait(f"job {job_id}", done, timeout)
        self.assertEqual(j["state"], "succeeded", j)
        return j

    def test_guest_boots_prints_powers_off_and_is_removed(self):
        # the bootstrap registered the local host, the image and the flavor
        host = self.wait("the local host to connect", lambda: next(
            (h for h in self.get("/v1/hosts")["items"]
             if h["uri"] == "qemu:///system" and h["state"] == "connected"), None), 30)
        self.assertEqual(host["hypervisor"], "QEMU")
        image = self.wait("the tiny image import", lambda: next(
            (i for i in self.get("/v1/images?name=tiny")["items"] if i["state"] == "active"),
            None), 60)
        flavor = self.get("/v1/flavors?name=tiny")["items"][0]
        # a kernel command line of our own, so that the console proves it is this guest
        msg = "msg-" + uuid.uuid4().hex[:8]
        r = self.d.request("POST", "/v1/images", {
            "name": "tiny-" + msg, "kind": "kernel", "arch": image["arch"],
            "kernel_path": image["kernel_path"], "initrd_path": image["initrd_path"],
            "cmdline": f"console=ttyS0 govcloud.msg={msg}"}, token=self.admin)
        self.assertEqual(r.status, 201, r)
        mine = r.json
        self.wait_job(mine["job_id"])
        dept = self.d.request("POST", "/v1/departments", {"name": "QEMU 测试 " + msg},
                              token=self.admin).json
        t0 = time.monotonic()
        r = self.d.request("POST", "/v1/vms", {"name": "tiny1", "department_id": dept["id"],
                                               "flavor_id": flavor["id"],
                                               "image_id": mine["id"]}, token=self.admin)
        self.assertEqual(r.status, 202, r)
        vm_id = r.json["resource_id"]
        self.wait_job(r.json["id"])
        vm = self.get(f"/v1/vms/{vm_id}")
        self.assertEqual(vm["host_id"], host["id"])
        domain = vm["domain_name"]
        out = subprocess.run(["virsh", "-c", "qemu:///system", "domuuid", domain],
                             capture_output=True, text=True)
        self.assertEqual(out.stdout.strip(), vm_id, out.stderr)
        # the guest prints its lines on the serial console, read back through the API
        console = self.wait("the guest's lines on the console", lambda: (
            lambda c: c if "GOVCLOUD-GUEST-OK" in c and f"GOVCLOUD-MSG {msg}" in c else None)(
                self.get(f"/v1/vms/{vm_id}/console")), 90)
        boot_s = time.monotonic() - t0
        self.assertIn("GOVCLOUD-MSG " + msg, console)
        # it powers itself off: govcloud records the power state and reports the drift
        vm = self.wait("the power-off to be seen", lambda: (
            lambda v: v if v["power_state"] == "shutoff" else None)(
                self.get(f"/v1/vms/{vm_id}")), 60)
        self.assertIn("outside govcloud", vm["drift"])
        events = self.get(f"/v1/audit-events?action=vm.drift&resource_id={vm_id}")["items"]
        self.assertEqual(len(events), 1, events)
        # start it again through the API: it boots a second time
        r = self.d.request("POST", f"/v1/vms/{vm_id}/start", token=self.admin)
        self.assertEqual(r.status, 202, r)
        self.wait_job(r.json["id"])
        self.wait("a second boot on the console", lambda:
                  self.get(f"/v1/vms/{vm_id}/console").count("GOVCLOUD-GUEST-OK") >= 2, 90)
        # delete: the domain, its console log and libvirt's log of it are gone
        self.wait("the second power-off", lambda: (
            lambda v: v if v["power_state"] == "shutoff" else None)(
                self.get(f"/v1/vms/{vm_id}")), 60)
        r = self.d.request("DELETE", f"/v1/vms/{vm_id}", token=self.admin)
        self.assertEqual(r.status, 202, r)
        self.wait_job(r.json["id"])
        self.assertEqual(self.d.request("GET", f"/v1/vms/{vm_id}", token=self.admin).status, 404)
        out = subprocess.run(["virsh", "-c", "qemu:///system", "dominfo", domain],
                             capture_output=True, text=True)
        self.assertNotEqual(out.returncode, 0, "the domain is still defined:\n" + out.stdout)
        for suffix in ("-console.log", ".log"):
            self.assertFalse(os.path.exists(f"{CONSOLE_DIR}/{domain}{suffix}"), suffix)
        print(f"\n  boot to console lines: {boot_s:.1f} s")

    def test_network_addresses_are_pinned_and_released(self):
        """A NAT network realised on the host when a VM needs it: the VM's interface has the
        MAC govcloud chose, the host's dnsmasq hands out exactly the address IPAM gave it, and
        deleting the VM and then the network leaves nothing on the host."""
        flavor = self.get("/v1/flavors?name=tiny")["items"][0]
        image = self.wait("the tiny image import", lambda: next(
            (i for i in self.get("/v1/images?name=tiny")["items"] if i["state"] == "active"),
            None), 60)
        dept = self.d.request("POST", "/v1/departments", {"name": "网络测试 " + uuid.uuid4().hex[:6]},
                              token=self.admin).json
        r = self.d.request("POST", "/v1/networks", {
            "name": "nat-" + uuid.uuid4().hex[:6], "mode": "nat", "ipv4_cidr": "10.231.7.0/24",
            "ipv6_cidr": "fd00:231:7::/64"}, token=self.admin)
        self.assertEqual(r.status, 201, r)
        net = r.json
        lvnet = "gc-" + net["id"]
        vms = []
        for name in ("n1", "n2"):
            r = self.d.request("POST", "/v1/vms", {
                "name": name, "department_id": dept["id"], "flavor_id": flavor["id"],
                "image_id": image["id"], "networks": [net["id"]], "start": False},
                token=self.admin)
            self.assertEqual(r.status, 202, r)
            self.wait_job(r.json["id"])
            vms.append(self.get(f"/v1/vms/{r.json['resource_id']}"))
        addrs = [v["nics"][0]["ipv4"] for v in vms]
        self.assertEqual(addrs, ["10.231.7.2", "10.231.7.3"])
        self.assertEqual([v["nics"][0]["ipv6"] for v in vms], ["fd00:231:7::2", "fd00:231:7::3"])
        hostsfile = f"/var/lib/libvirt/dnsmasq/{lvnet}.hostsfile"
        with open(hostsfile) as f:
            pinned = f.read()
        for v in vms:
            nic = v["nics"][0]
            self.assertIn(f"{nic['mac']},{nic['ipv4']}", pinned)
            xml = subprocess.run(["virsh", "-c", "qemu:///system", "dumpxml", v["domain_name"]],
                                 capture_output=True, text=True).stdout
            self.assertIn(f"<mac address='{nic['mac']}'/>", xml)
            self.assertIn(f"<source network='{lvnet}'/>", xml)
        # the network cannot go while it has interfaces
        r = self.d.request("DELETE", f"/v1/networks/{net['id']}", token=self.admin)
        self.assertEqual(r.status, 409, r)
        for v in vms:
            r = self.d.request("DELETE", f"/v1/vms/{v['id']}", token=self.admin)
            self.assertEqual(r.status, 202, r)
            self.wait_job(r.json["id"])
        with open(hostsfile) as f:
            self.assertNotIn("10.231.7.", f.read())
        # a new VM gets the lowest free address again
        self.assertEqual(self.get(f"/v1/networks/{net['id']}")["addresses_used"], 0)
        r = self.d.request("DELETE", f"/v1/networks/{net['id']}", token=self.admin)
        self.assertEqual(r.status, 204, r)
        jobs = self.get("/v1/jobs?kind=network.remove")["items"]
        job = [j for j in jobs if j["resource_id"] == net["id"]][0]
        self.wait_job(job["id"])
        out = subprocess.run(["virsh", "-c", "qemu:///system", "net-info", lvnet],
                             capture_output=True, text=True)
        self.assertNotEqual(out.returncode, 0, "the network is still on the host")

    def virsh(self, *args):
        return subprocess.run(["virsh", "-c", "qemu:///system", *args], capture_output=True,
                              text=True)

    def test_security_groups_become_nwfilters(self):
        """A security group is an nwfilter on the host; the VM's interface references the VM's
        own filter, which references the group's; changing the group updates the filter in
        place; deleting the VM and the group leaves no filter behind."""
        flavor = self.get("/v1/flavors?name=tiny")["items"][0]
        image = self.wait("the tiny image import", lambda: next(
            (i for i in self.get("/v1/images?name=tiny")["items"] if i["state"] == "active"),
            None), 60)
        tag = uuid.uuid4().hex[:6]
        dept = self.d.request("POST", "/v1/departments", {"name": "安全组测试 " + tag},
                              token=self.admin).json
        net = self.d.request("POST", "/v1/networks", {
            "name": "iso-" + tag, "mode": "isolated", "ipv4_cidr": "10.232.9.0/24"},
            token=self.admin).json
        r = self.d.request("POST", "/v1/security-groups", {
            "name": "web-" + tag, "department_id": dept["id"], "rules": [
                {"direction": "ingress", "protocol": "tcp", "port_min": 22, "cidr": "10.0.0.0/8"},
                {"direction": "ingress", "protocol": "icmp", "cidr": "::/0"}]},
            token=self.admin)
        self.assertEqual(r.status, 201, r)
        group = r.json
        r = self.d.request("POST", "/v1/vms", {
            "name": "fw1", "department_id": dept["id"], "flavor_id": flavor["id"],
            "image_id": image["id"], "networks": [net["id"]], "security_groups": [group["id"]],
            "start": False}, token=self.admin)
        self.assertEqual(r.status, 202, r)
        self.wait_job(r.json["id"])
        vm = self.get(f"/v1/vms/{r.json['resource_id']}")
        self.assertEqual(vm["security_groups"], [group["id"]])
        gfilter, vfilter = "gc-sg-" + group["id"], "gc-vm-" + vm["id"]
        self.assertIn(f"<filterref filter='{vfilter}'/>",
                      self.virsh("dumpxml", vm["domain_name"]).stdout)
        vxml = self.virsh("nwfilter-dumpxml", vfilter).stdout
        self.assertIn(f"<filterref filter='{gfilter}'/>", vxml)
        self.assertNotIn("direction='out' priority='900'", vxml)  # egress open: no egress rules
        gxml = self.virsh("nwfilter-dumpxml", gfilter).stdout
        self.assertIn("dstportstart='22'", gxml)
        self.assertIn("srcipaddr='10.0.0.0'", gxml)
        self.assertIn("<icmpv6", gxml)
        # an egress rule: the group's filter gains it, the VM's filter closes other egress
        r = self.d.request("POST", f"/v1/security-groups/{group['id']}/rules", {
            "direction": "egress", "protocol": "udp", "port_min": 53, "cidr": "0.0.0.0/0"},
            token=self.admin)
        self.assertEqual(r.status, 201, r)
        job = [j for j in self.get("/v1/jobs?kind=security_group.apply")["items"]
               if j["resource_id"] == group["id"]][-1]
        self.wait_job(job["id"])
        self.assertIn("dstportstart='53'", self.virsh("nwfilter-dumpxml", gfilter).stdout)
        self.assertIn("direction='out' priority='900'",
                      self.virsh("nwfilter-dumpxml", vfilter).stdout)
        # in use: the group stays
        self.assertEqual(self.d.request("DELETE", f"/v1/security-groups/{group['id']}",
                                        token=self.admin).status, 409)
        r = self.d.request("DELETE", f"/v1/vms/{vm['id']}", token=self.admin)
        self.wait_job(r.json["id"])
        self.assertNotEqual(self.virsh("nwfilter-dumpxml", vfilter).returncode, 0)
        self.assertEqual(self.d.request("DELETE", f"/v1/security-groups/{group['id']}",
                                        token=self.admin).status, 204)
        job = [j for j in self.get("/v1/jobs?kind=nwfilter.remove")["items"]
               if j["resource_id"] == group["id"]][-1]
        self.wait_job(job["id"])
        self.assertNotEqual(self.virsh("nwfilter-dumpxml", gfilter).returncode, 0)
        self.assertEqual(self.d.request("DELETE", f"/v1/networks/{net['id']}",
                                        token=self.admin).status, 204)

    def test_volume_create_attach_detach_resize_delete(self):
        """A volume in the host's 'default' pool: created and attached to a VM (vdb in the
        domain), detached, grown, attached again, kept (detached) when the VM is deleted,
        then deleted with its file."""
        flavor = self.get("/v1/flavors?name=tiny")["items"][0]
        image = self.wait("the tiny image import", lambda: next(
            (i for i in self.get("/v1/images?name=tiny")["items"] if i["state"] == "active"),
            None), 60)
        dept = self.d.request("POST", "/v1/departments", {"name": "卷测试 " + uuid.uuid4().hex[:6]},
                              token=self.admin).json
        r = self.d.request("POST", "/v1/vms", {"name": "disk1", "department_id": dept["id"],
                                               "flavor_id": flavor["id"], "image_id": image["id"],
                                               "start": False}, token=self.admin)
        self.wait_job(r.json["id"])
        vm = self.get(f"/v1/vms/{r.json['resource_id']}")
        r = self.d.request("POST", "/v1/volumes", {"name": "data", "size_gib": 1,
                                                   "department_id": dept["id"],
                                                   "vm_id": vm["id"]}, token=self.admin)
        self.assertEqual(r.status, 202, r)
        self.wait_job(r.json["id"])
        vol = self.get(f"/v1/volumes/{r.json['resource_id']}")
        self.assertEqual((vol["state"], vol["target"], vol["vm_id"]), ("in-use", "vdb", vm["id"]))
        fname = f"gc-vol-{vol['id']}.qcow2"
        self.assertIn(fname, self.virsh("dumpxml", vm["domain_name"]).stdout)
        # in use: no resize, no delete
        self.assertEqual(self.d.request("POST", f"/v1/volumes/{vol['id']}/resize",
                                        {"size_gib": 2}, token=self.admin).status, 409)
        # the stopped VM takes a bigger flavor: the domain's definition follows
        bigger = self.d.request("POST", "/v1/flavors", {
            "name": "bigger-" + uuid.uuid4().hex[:6], "vcpus": 2, "memory_mib": 256},
            token=self.admin).json
        r = self.d.request("POST", f"/v1/vms/{vm['id']}/resize", {"flavor_id": bigger["id"]},
                           token=self.admin)
        self.assertEqual(r.status, 202, r)
        self.wait_job(r.json["id"])
        xml = self.virsh("dumpxml", vm["domain_name"]).stdout
        self.assertIn("<memory unit='KiB'>262144</memory>", xml)
        self.assertIn(">2</vcpu>", xml)
        self.assertEqual(self.get(f"/v1/vms/{vm['id']}")["vcpus"], 2)
        self.assertEqual(self.d.request("DELETE", f"/v1/volumes/{vol['id']}",
                                        token=self.admin).status, 409)
        for action, body in (("detach", None), ("resize", {"size_gib": 2}),
                             ("attach", {"vm_id": vm["id"]})):
            r = self.d.request("POST", f"/v1/volumes/{vol['id']}/{action}", body,
                               token=self.admin)
            self.assertEqual(r.status, 202, r)
            self.wait_job(r.json["id"])
            if action == "detach":
                self.assertNotIn(fname, self.virsh("dumpxml", vm["domain_name"]).stdout)
        info = self.virsh("vol-info", fname, "--pool", "default").stdout
        self.assertIn("2.00 GiB", info)
        self.assertEqual(self.get(f"/v1/volumes/{vol['id']}")["state"], "in-use")
        # the VM goes, the volume stays, detached
        r = self.d.request("DELETE", f"/v1/vms/{vm['id']}", token=self.admin)
        self.wait_job(r.json["id"])
        vol = self.get(f"/v1/volumes/{vol['id']}")
        self.assertEqual((vol["state"], vol["vm_id"]), ("available", None))
        r = self.d.request("DELETE", f"/v1/volumes/{vol['id']}", token=self.admin)
        self.wait_job(r.json["id"])
        self.assertEqual(self.d.request("GET", f"/v1/volumes/{vol['id']}",
                                        token=self.admin).status, 404)
        self.assertNotEqual(self.virsh("vol-info", fname, "--pool", "default").returncode, 0)

    def qemu_io(self, path, fmt, cmd):
        return subprocess.run(["qemu-io", "-f", fmt, "-c", cmd, path], capture_output=True,
                              text=True)

    def hold_image(self):
        """The tiny guest's kernel with an init that does not exist: the kernel panics and the
        guest stays running (no reboot on panic), for as long as a test needs a running VM."""
        image = self.wait("the tiny image import", lambda: next(
            (i for i in self.get("/v1/images?name=tiny")["items"] if i["state"] == "active"),
            None), 60)
        r = self.d.request("POST", "/v1/images", {
            "name": "hold-" + uuid.uuid4().hex[:8], "kind": "kernel", "arch": image["arch"],
            "kernel_path": image["kernel_path"], "initrd_path": image["initrd_path"],
            "cmdline": "console=ttyS0 rdinit=/no-such-init panic=0"}, token=self.admin)
        self.assertEqual(r.status, 201, r)
        self.wait_job(r.json["job_id"])
        return r.json

    def test_volume_snapshot_and_revert(self):
        """A snapshot is a copy of the volume's data in the pool (gc-snap-<id>.qcow2); after the
        volume was written to and grown, a revert brings back the data and the size of the
        snapshot, while the volume stays attached to its (stopped) VM. With the VM running,
        snapshot and revert are refused (409)."""
        flavor = self.get("/v1/flavors?name=tiny")["items"][0]
        image = self.hold_image()
        dept = self.d.request("POST", "/v1/departments", {"name": "快照 " + uuid.uuid4().hex[:6]},
                              token=self.admin).json
        r = self.d.request("POST", "/v1/vms", {"name": "snap1", "department_id": dept["id"],
                                               "flavor_id": flavor["id"], "image_id": image["id"],
                                               "start": False}, token=self.admin)
        self.wait_job(r.json["id"])
        vm = self.get(f"/v1/vms/{r.json['resource_id']}")
        r = self.d.request("POST", "/v1/volumes", {"name": "data", "size_gib": 1,
                                                   "department_id": dept["id"],
                                                   "vm_id": vm["id"]}, token=self.admin)
        self.wait_job(r.json["id"])
        vid = r.json["resource_id"]
        vol = self.get(f"/v1/volumes/{vid}")
        self.assertEqual((vol["state"], vol["format"], vol["pool"]), ("in-use", "qcow2", "default"))
        path = self.virsh("vol-path", f"gc-vol-{vid}.qcow2", "--pool", "default").stdout.strip()
        self.assertTrue(path.endswith(f"gc-vol-{vid}.qcow2"), path)
        w = self.qemu_io(path, "qcow2", "write -P 0x11 0 1M")
        self.assertEqual(w.returncode, 0, w.stderr)

        def post(url, body=None, status=202):
            r = self.d.request("POST", url, body, token=self.admin)
            self.assertEqual(r.status, status, r)
            if status == 202:
                return self.wait_job(r.json["id"])
            return r.json

        job = post(f"/v1/volumes/{vid}/snapshots", {"name": "s1"})
        sid = job["params"]["snapshot_id"]
        snapfile = f"gc-snap-{sid}.qcow2"
        info = self.virsh("vol-info", snapfile, "--pool", "default")
        self.assertEqual(info.returncode, 0, info.stderr)
        self.assertIn("1.00 GiB", info.stdout)
        # the volume changes: other data, then (detached) a bigger size
        w = self.qemu_io(path, "qcow2", "write -P 0x22 0 1M")
        self.assertEqual(w.returncode, 0, w.stderr)
        post(f"/v1/volumes/{vid}/detach")
        post(f"/v1/volumes/{vid}/resize", {"size_gib": 2})
        post(f"/v1/volumes/{vid}/attach", {"vm_id": vm["id"]})
        self.assertIn("2.00 GiB", self.virsh("vol-info", f"gc-vol-{vid}.qcow2", "--pool",
                                             "default").stdout)
        # the snapshot kept the old data
        self.assertEqual(self.qemu_io(os.path.join(os.path.dirname(path), snapfile), "qcow2",
                                      "read -P 0x11 0 1M").returncode, 0)
        # running: neither copied nor overwritten
        post(f"/v1/vms/{vm['id']}/start", status=202)
        self.assertEqual(self.get(f"/v1/vms/{vm['id']}")["power_state"], "running")
        for url, body, doing in ((f"/v1/volumes/{vid}/snapshots", {"name": "s2"},
                                  "taking a snapshot"),
                                 (f"/v1/volumes/{vid}/revert", {"snapshot_id": sid},
                                  "reverting")):
            detail = post(url, body, status=409)["detail"]
            self.assertIn(f"attached to virtual machine '{vm['id']}', which is running: stop the "
                          f"VM or detach the volume before {doing}", detail)
        r = self.d.request("POST", f"/v1/vms/{vm['id']}/stop?force=true", token=self.admin)
        self.wait_job(r.json["id"])
        # stopped: the revert brings back the data and the size, the volume stays attached
        job = post(f"/v1/volumes/{vid}/revert", {"snapshot_id": sid})
        vol = self.get(f"/v1/volumes/{vid}")
        self.assertEqual((vol["state"], vol["vm_id"], vol["target"], vol["size_gib"]),
                         ("in-use", vm["id"], "vdb", 1), vol)
        r = self.qemu_io(path, "qcow2", "read -P 0x11 0 1M")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotIn("Pattern verification failed", r.stdout)
        self.assertIn("1.00 GiB", self.virsh("vol-info", f"gc-vol-{vid}.qcow2", "--pool",
                                             "default").stdout)
        self.assertIn(path, self.virsh("dumpxml", vm["domain_name"]).stdout)
        # the domain starts with the reverted disk
        post(f"/v1/vms/{vm['id']}/start")
        r = self.d.request("DELETE", f"/v1/vms/{vm['id']}", token=self.admin)
        self.wait_job(r.json["id"])
        # snapshots first, then the volume
        r = self.d.request("DELETE", f"/v1/volumes/{vid}", token=self.admin)
        self.assertEqual(r.status, 409, r)
        r = self.d.request("DELETE", f"/v1/volumes/{vid}/snapshots/{sid}", token=self.admin)
        self.wait_job(r.json["id"])
        self.assertNotEqual(self.virsh("vol-info", snapfile, "--pool", "default").returncode, 0)
        r = self.d.request("DELETE", f"/v1/volumes/{vid}", token=self.admin)
        self.wait_job(r.json["id"])
        self.assertFalse(os.path.exists(path))

    def test_public_ip_is_attached_pinned_and_released(self):
        """A public IP of an external (NAT, for the test) network associated with a stopped
        VM: the domain gets an interface on the external network with the public IP's MAC,
        the network's DHCP pins the public address to it; disassociating removes both, and
        deleting the VM frees an associated address."""
        flavor = self.get("/v1/flavors?name=tiny")["items"][0]
        image = self.wait("the tiny image import", lambda: next(
            (i for i in self.get("/v1/images?name=tiny")["items"] if i["state"] == "active"),
            None), 60)
        dept = self.d.request("POST", "/v1/departments", {"name": "公网测试 " + uuid.uuid4().hex[:6]},
                              token=self.admin).json
        r = self.d.request("POST", "/v1/networks", {
            "name": "pub-" + uuid.uuid4().hex[:6], "mode": "nat", "ipv4_cidr": "10.237.41.0/24",
            "external": True}, token=self.admin)
        self.assertEqual(r.status, 201, r)
        net = r.json
        lvnet = "gc-" + net["id"]
        vms = []
        for name in ("p1", "p2"):
            r = self.d.request("POST", "/v1/vms", {
                "name": name, "department_id": dept["id"], "flavor_id": flavor["id"],
                "image_id": image["id"], "start": False}, token=self.admin)
            self.assertEqual(r.status, 202, r)
            self.wait_job(r.json["id"])
            vms.append(self.get(f"/v1/vms/{r.json['resource_id']}"))
        pips = []
        for vm in vms:
            r = self.d.request("POST", "/v1/public-ips", {"network_id": net["id"],
                                                          "department_id": dept["id"]},
                               token=self.admin)
            self.assertEqual(r.status, 201, r)
            pip = r.json
            r = self.d.request("POST", f"/v1/public-ips/{pip['id']}/associate",
                               {"vm_id": vm["id"]}, token=self.admin)
            self.assertEqual(r.status, 202, r)
            self.wait_job(r.json["id"])
            pips.append(self.get(f"/v1/public-ips/{pip['id']}"))
        self.assertEqual([p["address"] for p in pips], ["10.237.41.2", "10.237.41.3"])
        hostsfile = f"/var/lib/libvirt/dnsmasq/{lvnet}.hostsfile"
        for p, vm in zip(pips, vms):
            self.assertEqual((p["state"], p["vm_id"]), ("associated", vm["id"]), p)
            nics = self.get(f"/v1/vms/{vm['id']}")["nics"]
            self.assertEqual([(n["network_id"], n["ipv4"], n["mac"]) for n in nics],
                             [(net["id"], p["address"], p["mac"])])
            xml = self.virsh("dumpxml", vm["domain_name"]).stdout
            self.assertIn(f"<mac address='{p['mac']}'/>", xml)
            self.assertIn(f"<source network='{lvnet}'/>", xml)
            with open(hostsfile) as f:
                self.assertIn(f"{p['mac']},{p['address']}", f.read())
        # an associated address cannot be released
        self.assertEqual(self.d.request("DELETE", f"/v1/public-ips/{pips[0]['id']}",
                                        token=self.admin).status, 409)
        # disassociate the first: interface and reservation go, the address stays allocated
        r = self.d.request("POST", f"/v1/public-ips/{pips[0]['id']}/disassociate",
                           token=self.admin)
        self.assertEqual(r.status, 202, r)
        self.wait_job(r.json["id"])
        p = self.get(f"/v1/public-ips/{pips[0]['id']}")
        self.assertEqual((p["state"], p["vm_id"], p["mac"]), ("available", None, None), p)
        self.assertNotIn(pips[0]["mac"], self.virsh("dumpxml", vms[0]["domain_name"]).stdout)
        self.assertEqual(self.get(f"/v1/vms/{vms[0]['id']}")["nics"], [])
        with open(hostsfile) as f:
            pinned = f.read()
        self.assertNotIn(pips[0]["mac"], pinned)
        self.assertIn(f"{pips[1]['mac']},{pips[1]['address']}", pinned)
        # deleting the second VM frees its association
        for vm in vms:
            r = self.d.request("DELETE", f"/v1/vms/{vm['id']}", token=self.admin)
            self.wait_job(r.json["id"])
        p = self.get(f"/v1/public-ips/{pips[1]['id']}")
        self.assertEqual((p["state"], p["vm_id"]), ("available", None), p)
        with open(hostsfile) as f:
            self.assertNotIn("10.237.41.", f.read())
        for p in pips:
            self.assertEqual(self.d.request("DELETE", f"/v1/public-ips/{p['id']}",
                                            token=self.admin).status, 204)
        r = self.d.request("DELETE", f"/v1/networks/{net['id']}", token=self.admin)
        self.assertEqual(r.status, 204, r)


if __name__ == "__main__":
    unittest.main()
