"""Two real libvirt hosts: the system libvirtd (host A, qemu:///system) and a second,
independent libvirtd on this machine (host B, in its own mount namespace with its own host
UUID and its own storage pool directory: libvirtd.SecondHost). Moving VMs between them:

- live migration of a running guest with a network (a bridge), a security group, a data
  volume and user data (its read-only config drive is copied before the move): the guest keeps running (its heartbeat on the serial console goes on counting, it
  never restarts), the data volume's bytes arrive in B's pool, nothing stays on A;
- a stopped VM moves back by copying its volumes through libvirt streams and its definition,
  then starts on A;
- a host in maintenance is evacuated (its VMs move away), and can then be removed;
- what must be refused: the same host, a host in maintenance, a department user, a host not
  in maintenance for evacuation, a VM with a job in progress.

Also what needs a host of its own: a security group change made while host B was away reaches
it when it is back; a storage pool defined later is discovered; a domain resized behind
govcloud's back is drift.

Skips, saying so, only when libvirt, QEMU, unshare or qemu-io is not installed."""

import json
import os
import re
import shutil
import subprocess
import time
import unittest
import uuid

import gcharness as gh
import libvirtd as lv

CONSOLE_DIR = "/var/log/libvirt/qemu"


def virsh(uri, *args):
    return subprocess.run(["virsh", "-c", uri, *args], capture_output=True, text=True,
                          timeout=60)


class TwoHostsTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        missing = lv.missing_binaries() + [b for b in ("unshare", "qemu-io", "ip")
                                           if shutil.which(b) is None]
        if missing:
            raise unittest.SkipTest("not installed: " + ", ".join(missing))
        lv.ensure_libvirtd()
        lv.ensure_default_pool()
        cls.work = lv.make_workdir("govcloud-migration-")
        cls.images = os.path.join(cls.work, "images")
        os.makedirs(cls.images)
        os.chmod(cls.images, 0o755)
        cls.kernel, cls.initrd = lv.tiny_image(cls.images)
        cls.host2 = lv.SecondHost(cls.work).start()
        cls.bridge = "gcmig" + uuid.uuid4().hex[:6]
        subprocess.run(["ip", "link", "add", "name", cls.bridge, "type", "bridge"], check=True)
        subprocess.run(["ip", "link", "set", cls.bridge, "up"], check=True)
        cls.d = gh.Daemon(extra=["--set", "bootstrap.host_uri=none",
                                 "--set", "compute.virt_type=qemu",
                                 "--set", "compute.host_refresh_interval=2"]).start()
        cls.admin = cls.d.login()

    @classmethod
    def tearDownClass(cls):
        rc = cls.d.stop()
        log = cls.d.read_log()
        cls.d.cleanup()
        cls.host2.stop()
        subprocess.run(["ip", "link", "del", cls.bridge], capture_output=True)
        shutil.rmtree(cls.work, ignore_errors=True)
        lv.stop_libvirtd()
        if rc != 0:
            raise AssertionError(f"govcloudd exited with {rc}:\n{log[-4000:]}")
        for bad in ("runtime error:", "AddressSanitizer", "LeakSanitizer"):
            if bad in log:
                raise AssertionError(f"sanitizer report in the daemon log:\n{log[-8000:]}")

    # -- helpers ------------------------------------------------------------------------

    def req(self, method, path, body=None, token=None):
        return self.d.request(method, path, body, token=token or self.admin)

    def get(self, path):
        r = self.req("GET", path)
        self.assertEqual(r.status, 200, r)
        return r.json

    def wait(self, what, fn, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = fn()
            if v:
                return v
            time.sleep(0.3)
        self.fail(f"timed out after {timeout} s waiting for {what}")

    def wait_job(self, job_id, timeout=180, state="succeeded"):
        def done():
            j = self.get(f"/v1/jobs/{job_id}")
            return j if j["state"] in ("succeeded", "failed", "cancelled") else None
        j = self.wait(f"job {job_id}", done, timeout)
        self.assertEqual(j["state"], state, j)
        return j

    def accepted(self, r):
        self.assertEqual(r.status, 202, r)
        return self.wait_job(r.json["id"])

    def register(self, name, uri):
        r = self.req("POST", "/v1/hosts", {"name": name, "uri": uri})
        self.assertEqual(r.status, 201, r)
        return self.wait(f"host {name} to connect", lambda: (
            lambda h: h if h["state"] == "connected" else None)(
                self.get(f"/v1/hosts/{r.json['id']}")), 60)

    def host(self, name, uri):
        """The host with that URI, registered if it is not, and out of maintenance."""
        for h in self.get("/v1/hosts")["items"]:
            if h["uri"] == uri:
                if h["maintenance"]:
                    self.assertEqual(self.req("PATCH", f"/v1/hosts/{h['id']}",
                                              {"maintenance": False}).status, 200)
                return self.get(f"/v1/hosts/{h['id']}")
        return self.register(name, uri)

    def setup_vm(self, tag, host, department_id=None, **extra):
        """A running tiny guest (heartbeat kernel argument) on host; returns the VM."""
        r = self.req("POST", "/v1/images", {
            "name": "stay-" + tag, "kind": "kernel", "arch": "x86_64",
            "kernel_path": self.kernel, "initrd_path": self.initrd,
            "cmdline": "console=ttyS0 govcloud.stay=1"})
        self.assertEqual(r.status, 201, r)
        image = r.json
        self.wait_job(image["job_id"])
        flavor = self.req("POST", "/v1/flavors", {"name": "mig-" + tag, "vcpus": 1,
                                                  "memory_mib": 128}).json
        dept_id = department_id or self.req("POST", "/v1/departments",
                                            {"name": "迁移测试 " + tag}).json["id"]
        r = self.req("POST", "/v1/vms", {"name": "vm-" + tag, "department_id": dept_id,
                                         "flavor_id": flavor["id"], "image_id": image["id"],
                                         "host_id": host["id"], **extra})
        self.accepted(r)
        return self.get(f"/v1/vms/{r.json['resource_id']}")

    def test_domain_resized_outside_govcloud_is_drift(self):
        """A domain whose size is changed with virsh behind govcloud's back shows drift naming
        both sizes (and a vm.drift audit event); changing it back clears the drift."""
        tag = uuid.uuid4().hex[:6]
        a = self.host("drift-a-" + tag, "qemu:///system")
        vm = self.setup_vm(tag, a, start=False)
        dom = vm["domain_name"]
        self.assertEqual(virsh("qemu:///system", "setvcpus", dom, "2", "--config",
                               "--maximum").returncode, 0)
        self.assertEqual(virsh("qemu:///system", "setvcpus", dom, "2", "--config").returncode, 0)
        vm = self.wait("the drift", lambda: (lambda v: v if "vCPUs" in v["drift"] else None)(
            self.get(f"/v1/vms/{vm['id']}")), 30)
        self.assertIn("has 2 vCPUs and 128 MiB where govcloud recorded 1 and 128", vm["drift"])
        ev = self.get(f"/v1/audit-events?action=vm.drift&resource_id={vm['id']}")["items"]
        self.assertEqual(len(ev), 1, ev)
        virsh("qemu:///system", "setvcpus", dom, "1", "--config")
        virsh("qemu:///system", "setvcpus", dom, "1", "--config", "--maximum")
        self.wait("the drift to clear", lambda: self.get(f"/v1/vms/{vm['id']}")["drift"] == "",
                  30)
        self.accepted(self.req("DELETE", f"/v1/vms/{vm['id']}"))

    def test_pool_defined_later_is_discovered(self):
        """A storage pool defined on a connected host shows up in the host's facts at the
        next refresh ([compute] host_refresh_interval, 2 s here), without a reconnection."""
        b = self.host("pools-b", self.host2.uri)
        name = "later-" + uuid.uuid4().hex[:6]
        path = os.path.join(self.host2.dir, "varlib", name)  # seen from B's namespace below
        os.makedirs(path)
        lv.virsh("pool-define-as", name, "dir", "--target", f"/var/lib/libvirt/{name}",
                 uri=self.host2.uri)
        lv.virsh("pool-start", name, uri=self.host2.uri)
        try:
            pool = self.wait("the new pool in the host's facts", lambda: next(
                (p for p in self.get(f"/v1/hosts/{b['id']}")["storage_pools"]
                 if p["name"] == name), None), 30)
            self.assertEqual((pool["type"], pool["state"]), ("dir", "running"))
        finally:
            lv.virsh("pool-destroy", name, uri=self.host2.uri, check=False)
            lv.virsh("pool-undefine", name, uri=self.host2.uri, check=False)

    def test_security_group_change_reaches_a_host_that_was_away(self):
        """A security group changes while the host of one of its VMs is disconnected (its
        libvirtd is down); when the host is back, govcloud defines the group's filter there
        again, with the new rule."""
        tag = uuid.uuid4().hex[:6]
        b = self.host("away-b-" + tag, self.host2.uri)
        net = self.req("POST", "/v1/networks", {
            "name": "bra-" + tag, "mode": "bridge", "bridge": self.bridge,
            "ipv4_cidr": "10.233.42.0/24"}).json
        dept = self.req("POST", "/v1/departments", {"name": "离线安全组 " + tag}).json
        sg = self.req("POST", "/v1/security-groups", {
            "name": "away-" + tag, "department_id": dept["id"], "rules": [
                {"direction": "ingress", "protocol": "tcp", "port_min": 22,
                 "cidr": "10.0.0.0/8"}]}).json
        vm = self.setup_vm(tag, b, department_id=dept["id"], networks=[net["id"]],
                           security_groups=[sg["id"]])
        gfilter = "gc-sg-" + sg["id"]
        self.assertNotIn("dstportstart='8443'",
                         virsh(self.host2.uri, "nwfilter-dumpxml", gfilter).stdout)
        self.host2.kill_libvirtd()
        try:
            self.wait("host B to be seen disconnected", lambda: self.get(
                f"/v1/hosts/{b['id']}")["state"] == "disconnected", 60)
            r = self.req("POST", f"/v1/security-groups/{sg['id']}/rules", {
                "direction": "ingress", "protocol": "tcp", "port_min": 8443,
                "cidr": "192.168.0.0/16"})
            self.assertEqual(r.status, 201, r)
            job = [j for j in self.get("/v1/jobs?kind=security_group.apply")["items"]
                   if j["resource_id"] == sg["id"]][-1]
            job = self.wait_job(job["id"])
            self.assertEqual(job["result"]["vms_unreachable"], 1, job)
        finally:
            self.host2.restart_libvirtd()
        self.wait("host B to reconnect", lambda: self.get(
            f"/v1/hosts/{b['id']}")["state"] == "connected", 120)
        self.wait("the new rule on host B", lambda: "dstportstart='8443'" in virsh(
            self.host2.uri, "nwfilter-dumpxml", gfilter).stdout, 30)
        self.accepted(self.req("DELETE", f"/v1/vms/{vm['id']}"))

    def test_kill9_during_live_migration(self):
        """govcloudd is killed (-9) while a live migration runs; after the restart the job is
        run again and ends, and the VM is recorded on the one host that has its domain, with
        the room held on that host only."""
        tag = uuid.uuid4().hex[:6]
        a = self.host("crash-a-" + tag, "qemu:///system")
        b = self.host("crash-b-" + tag, self.host2.uri)
        vm = self.setup_vm(tag, a)
        domain = vm["domain_name"]
        self.wait("the guest's heartbeat", lambda: len(self.heartbeat(domain)) >= 1, 120)
        used_a = self.get(f"/v1/hosts/{a['id']}")["vcpus_used"]
        used_b = self.get(f"/v1/hosts/{b['id']}")["vcpus_used"]
        r = self.req("POST", f"/v1/vms/{vm['id']}/migrate", {"host_id": b["id"]})
        self.assertEqual(r.status, 202, r)
        job_id = r.json["id"]
        self.wait("the copy to begin", lambda: self.get(f"/v1/jobs/{job_id}")["progress"] >= 30,
                  60)
        self.d.kill9()
        self.d.start()
        job = self.wait(f"job {job_id} to end", lambda: (
            lambda j: j if j["state"] in ("succeeded", "failed") else None)(
                self.get(f"/v1/jobs/{job_id}")), 180)
        vm = self.get(f"/v1/vms/{vm['id']}")
        self.assertIn(vm["state"], ("running", "stopped"), vm)
        on_a = virsh("qemu:///system", "dominfo", domain).returncode == 0
        on_b = virsh(self.host2.uri, "dominfo", domain).returncode == 0
        self.assertNotEqual(on_a, on_b, (
            f"domain on A: {virsh('qemu:///system', 'domstate', domain).stdout.strip()}, "
            f"on B: {virsh(self.host2.uri, 'domstate', domain).stdout.strip()}; job {job}"))
        self.assertEqual(vm["host_id"], a["id"] if on_a else b["id"], (vm, job))
        if job["state"] == "succeeded":
            self.assertEqual(vm["host_id"], b["id"])
        ua = self.get(f"/v1/hosts/{a['id']}")["vcpus_used"]
        ub = self.get(f"/v1/hosts/{b['id']}")["vcpus_used"]
        self.assertEqual((ua, ub), (used_a - 1, used_b + 1) if on_b else (used_a, used_b),
                         "the room is held on the wrong host")
        self.accepted(self.req("DELETE", f"/v1/vms/{vm['id']}"))
        self.assertFalse(virsh("qemu:///system", "dominfo", domain).returncode == 0)
        self.assertFalse(virsh(self.host2.uri, "dominfo", domain).returncode == 0)
        print(f"\n  after kill -9: job {job['state']} ({job['error']}; attempts {job['attempts']}), VM on "
              f"{'B' if on_b else 'A'}")

    def cli(self, *args):
        env = {k: v for k, v in os.environ.items() if not k.startswith("GOVCLOUD_")}
        env.update({"GOVCLOUD_URL": self.d.url, "GOVCLOUD_TOKEN": self.admin,
                    "HOME": self.work, "XDG_CONFIG_HOME": self.work})
        p = subprocess.run([gh.CLI, *args], env=env, capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=300)
        self.assertEqual(p.returncode, 0, f"govcloud {' '.join(args)}: {p.stdout}{p.stderr}")
        return p.stdout

    def heartbeat(self, domain):
        try:
            with open(f"{CONSOLE_DIR}/{domain}-console.log", errors="replace") as f:
                beats = re.findall(r"GOVCLOUD-ALIVE (\d+)", f.read())
        except OSError:
            return []
        return [int(b) for b in beats]

    def files_of_a(self):
        return set(os.listdir("/var/lib/libvirt/images"))

    def files_of_b(self):
        return set(os.listdir(self.host2.images))

    # -- the test -----------------------------------------------------------------------

    def test_live_and_offline_migration_and_evacuation(self):
        tag = uuid.uuid4().hex[:6]
        a = self.host("mig-a-" + tag, "qemu:///system")
        b = self.host("mig-b-" + tag, self.host2.uri)
        self.assertNotEqual(a["id"], b["id"])
        r = self.req("POST", "/v1/images", {
            "name": "stay-" + tag, "kind": "kernel", "arch": "x86_64",
            "kernel_path": self.kernel, "initrd_path": self.initrd,
            "cmdline": "console=ttyS0 govcloud.stay=1"})
        self.assertEqual(r.status, 201, r)
        image = r.json
        self.wait_job(image["job_id"])
        flavor = self.req("POST", "/v1/flavors", {"name": "mig-" + tag, "vcpus": 1,
                                                  "memory_mib": 128}).json
        dept = self.req("POST", "/v1/departments", {"name": "迁移测试 " + tag}).json
        net = self.req("POST", "/v1/networks", {
            "name": "br-" + tag, "mode": "bridge", "bridge": self.bridge,
            "ipv4_cidr": "10.233.41.0/24"})
        self.assertEqual(net.status, 201, net)
        net = net.json
        sg = self.req("POST", "/v1/security-groups", {
            "name": "ssh-" + tag, "department_id": dept["id"], "rules": [
                {"direction": "ingress", "protocol": "tcp", "port_min": 22,
                 "cidr": "10.0.0.0/8"}]})
        self.assertEqual(sg.status, 201, sg)
        sg = sg.json
        user_pw = "Dept-Passw0rd!x"
        r = self.req("POST", "/v1/users", {"username": "mig-" + tag, "password": user_pw,
                                           "role": "department_admin",
                                           "department_id": dept["id"]})
        self.assertEqual(r.status, 201, r)
        dept_token = self.d.login("mig-" + tag, user_pw)

        # a running guest on A with an interface, a security group, a data volume and user
        # data (a read-only config drive, which QEMU cannot mirror: copied before the move)
        r = self.req("POST", "/v1/vms", {"name": "live1", "department_id": dept["id"],
                                         "flavor_id": flavor["id"], "image_id": image["id"],
                                         "host_id": a["id"], "networks": [net["id"]],
                                         "security_groups": [sg["id"]],
                                         "user_data": f"#cloud-config mig-{tag}\n"})
        self.accepted(r)
        vm = self.get(f"/v1/vms/{r.json['resource_id']}")
        self.assertEqual((vm["host_id"], vm["state"]), (a["id"], "running"))
        domain = vm["domain_name"]
        drive = f"gc-{vm['id']}-cidata.iso"
        self.assertIn(drive, self.files_of_a())
        vnc_a = self.get(f"/v1/vms/{vm['id']}/vnc")
        r = self.req("POST", "/v1/volumes", {"name": "data-" + tag, "size_gib": 1,
                                             "department_id": dept["id"], "vm_id": vm["id"]})
        self.accepted(r)
        vol = self.get(f"/v1/volumes/{r.json['resource_id']}")
        volfile = f"gc-vol-{vol['id']}.qcow2"
        self.assertIn(volfile, self.files_of_a())
        self.wait("the guest's heartbeat", lambda: len(self.heartbeat(domain)) >= 2, 120)

        # refused: a department user; the same host; a host in maintenance; bad bodies
        r = self.req("POST", f"/v1/vms/{vm['id']}/migrate", {}, token=dept_token)
        self.assertEqual(r.status, 403, r)
        r = self.req("POST", f"/v1/vms/{vm['id']}/migrate", {"host_id": a["id"]})
        self.assertEqual(r.status, 409, r)
        self.assertIn("already on host", r.json["detail"])
        r = self.req("POST", f"/v1/vms/{vm['id']}/migrate", {"host_id": 7})
        self.assertEqual(r.status, 400, r)
        r = self.req("POST", f"/v1/vms/{vm['id']}/migrate", {"host": b["id"]})
        self.assertEqual(r.status, 400, r)
        r = self.req("POST", f"/v1/vms/{vm['id']}/migrate",
                     {"host_id": "0190f0f0-0000-7000-8000-000000000000"})
        self.assertEqual(r.status, 400, r)
        self.assertEqual(self.req("PATCH", f"/v1/hosts/{b['id']}",
                                  {"maintenance": True}).status, 200)
        r = self.req("POST", f"/v1/vms/{vm['id']}/migrate", {})
        self.assertEqual(r.status, 409, r)
        self.assertIn("maintenance", r.json["detail"])
        self.assertEqual(self.req("PATCH", f"/v1/hosts/{b['id']}",
                                  {"maintenance": False}).status, 200)
        r = self.req("POST", f"/v1/hosts/{a['id']}/evacuate")
        self.assertEqual(r.status, 409, r)
        self.assertIn("not in maintenance", r.json["detail"])
        usage_a = self.get(f"/v1/hosts/{a['id']}")
        usage_b = self.get(f"/v1/hosts/{b['id']}")

        # live: placement picks B, the only other host
        beats_before = self.heartbeat(domain)
        t0 = time.monotonic()
        r = self.req("POST", f"/v1/vms/{vm['id']}/migrate", {})
        self.assertEqual(r.status, 202, r)
        # while it moves, other actions on it wait
        self.assertEqual(self.req("POST", f"/v1/vms/{vm['id']}/stop").status, 409)
        job = self.wait_job(r.json["id"])
        live_s = time.monotonic() - t0
        self.assertEqual(job["result"]["host_id"], b["id"], job)
        vm = self.get(f"/v1/vms/{vm['id']}")
        self.assertEqual((vm["host_id"], vm["state"], vm["power_state"]),
                         (b["id"], "running", "running"), vm)
        self.assertIn("running", virsh(self.host2.uri, "domstate", domain).stdout)
        self.assertNotEqual(virsh("qemu:///system", "dominfo", domain).returncode, 0,
                            "the domain is still on host A")
        # the guest never restarted: its heartbeat goes on from where it was
        self.wait("the heartbeat after the move",
                  lambda: len(self.heartbeat(domain)) >= len(beats_before) + 3, 60)
        beats = self.heartbeat(domain)
        self.assertEqual(beats, list(range(1, len(beats) + 1)),
                         "the heartbeat restarted: the guest was rebooted, not migrated")
        # the volumes moved: in B's pool, gone from A's; the config drive too, still read-only
        self.assertIn(volfile, self.files_of_b())
        self.assertNotIn(volfile, self.files_of_a())
        self.assertIn(drive, self.files_of_b())
        self.assertNotIn(drive, self.files_of_a())
        with open(os.path.join(self.host2.images, drive), "rb") as f:
            self.assertIn(f"#cloud-config mig-{tag}".encode(), f.read())
        # the console moved with the guest: B's port, the same password
        vnc_b = self.get(f"/v1/vms/{vm['id']}/vnc")
        self.assertEqual((vnc_b["host_id"], vnc_b["password"]), (b["id"], vnc_a["password"]))
        self.assertEqual(self.get(f"/v1/volumes/{vol['id']}")["host_id"], b["id"])
        # the security group's filters are on B, the VM's own filter gone from A
        self.assertEqual(virsh(self.host2.uri, "nwfilter-dumpxml",
                               "gc-vm-" + vm["id"]).returncode, 0)
        self.assertNotEqual(virsh("qemu:///system", "nwfilter-dumpxml",
                                  "gc-vm-" + vm["id"]).returncode, 0)
        xml = virsh(self.host2.uri, "dumpxml", domain).stdout
        self.assertIn(f"bridge='{self.bridge}'", xml)
        self.assertIn(f"/var/lib/libvirt/images/{volfile}", xml)
        cd = xml[xml.index(f"/var/lib/libvirt/images/{drive}"):]
        self.assertIn("<readonly/>", cd[:cd.index("</disk>")])
        # the room moved with it
        a_now, b_now = self.get(f"/v1/hosts/{a['id']}"), self.get(f"/v1/hosts/{b['id']}")
        self.assertEqual(a_now["vcpus_used"], usage_a["vcpus_used"] - 1)
        self.assertEqual(b_now["vcpus_used"], usage_b["vcpus_used"] + 1)
        self.assertEqual(b_now["memory_used_mib"],
                         usage_b["memory_used_mib"] + 128)
        ev = self.get(f"/v1/audit-events?action=vm.migrate&resource_id={vm['id']}")["items"]
        self.assertEqual([e["outcome"] for e in ev],
                         ["denied"] + ["failure"] * 5 + ["success"], ev)

        # offline: stop it on B, write known bytes into its data volume there, move it back
        self.accepted(self.req("POST", f"/v1/vms/{vm['id']}/stop?force=true"))
        bfile = os.path.join(self.host2.images, volfile)
        subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 1M", bfile],
                       check=True, capture_output=True)
        # (through the CLI, naming the VM and the host by name)
        out = self.cli("vm", "migrate", vm["name"], "--host", a["name"], "--wait",
                       "--timeout", "180")
        self.assertIn(a["id"], out)
        vm = self.get(f"/v1/vms/{vm['id']}")
        self.assertEqual((vm["host_id"], vm["state"], vm["power_state"]),
                         (a["id"], "stopped", "shutoff"), vm)
        self.assertNotIn(volfile, self.files_of_b())
        self.assertIn(drive, self.files_of_a())
        self.assertNotIn(drive, self.files_of_b())
        afile = os.path.join("/var/lib/libvirt/images", volfile)
        check = subprocess.run(["qemu-io", "-r", "-f", "qcow2", "-c", "read -P 0x5a 0 1M",
                                afile], capture_output=True, text=True)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        self.assertNotIn("Pattern verification failed", check.stdout)
        self.assertNotEqual(virsh(self.host2.uri, "dominfo", domain).returncode, 0)
        # and it boots there
        self.accepted(self.req("POST", f"/v1/vms/{vm['id']}/start"))
        self.assertIn("running", virsh("qemu:///system", "domstate", domain).stdout)

        # evacuation: A in maintenance, its VMs go to B; then A can be removed
        self.assertEqual(self.req("PATCH", f"/v1/hosts/{a['id']}",
                                  {"maintenance": True}).status, 200)
        r = self.req("POST", f"/v1/hosts/{a['id']}/evacuate", token=dept_token)
        self.assertIn(r.status, (403, 404), r)
        job = json.loads(self.cli("host", "evacuate", a["name"], "-o", "json", "--wait",
                                  "--timeout", "180"))
        if "result" not in job:  # --wait shows the host; the job is the last host.evacuate
            job = [j for j in self.get("/v1/jobs?kind=host.evacuate")["items"]
                   if j["resource_id"] == a["id"]][-1]
        self.assertIn(vm["id"], [m["vm_id"] for m in job["result"]["moved"]], job)
        self.assertEqual(job["result"]["failed"], [])
        vm = self.get(f"/v1/vms/{vm['id']}")
        self.assertEqual((vm["host_id"], vm["state"]), (b["id"], "running"), vm)
        r = self.req("DELETE", f"/v1/hosts/{a['id']}")
        self.assertEqual(r.status, 204, r)

        # delete: nothing of it stays on B
        self.accepted(self.req("DELETE", f"/v1/vms/{vm['id']}"))
        self.accepted(self.req("DELETE", f"/v1/volumes/{vol['id']}"))
        self.assertNotEqual(virsh(self.host2.uri, "dominfo", domain).returncode, 0)
        self.assertNotIn(volfile, self.files_of_b())
        self.assertEqual([f for f in self.files_of_b() if vm["id"] in f], [])
        print(f"\n  live migration job: {live_s:.1f} s")


if __name__ == "__main__":
    unittest.main()
