"""libvirt + QEMU for integration tests and `make run`: start the system daemons by hand
(the CI machines have no systemd: `virtlogd -d`, then `libvirtd -d`), stop them again, build
the tiny guest (scripts/tiny-image), boot it, and tell whether KVM can be used. Standard
library only; run as root.

    import libvirtd as lv
    started = lv.ensure_libvirtd()      # True when this call started virtlogd/libvirtd
    try:
        kernel, initrd = lv.tiny_image(workdir)
        ...
    finally:
        lv.stop_libvirtd()              # call once per ensure_libvirtd(), whatever it returned

From the shell:

    python3 tests/integration/libvirtd.py start|stop|status|kvm

Sharing. Several test processes (and `make run`) may use the daemons at once. Every
ensure_libvirtd() registers its caller (by PID; the shell's `start` registers the name "cli";
registering twice is the same as once) in a small state file, together with the PIDs of the
daemons the helper itself started. stop_libvirtd() unregisters the caller and stops the
daemons only when the helper started them (by PID, checked against the process start time so
that a reused PID is never signalled) and no other registered process is still alive.
Daemons that were already running, e.g. started by an administrator, are never stopped.
"""

import fcntl
import grp
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import uuid

URI = os.environ.get("GOVCLOUD_LIBVIRT_URI", "qemu:///system")
SOURCE = os.path.abspath(os.environ.get(
    "GOVCLOUD_SOURCE_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")))
TINY_IMAGE_SCRIPT = os.path.join(SOURCE, "scripts", "tiny-image")

# Commands the libvirt/QEMU side needs; tests skip (loudly) when one of them is missing.
REQUIRED_BINARIES = ("virsh", "libvirtd", "virtlogd", "qemu-system-x86_64")
DAEMON_SEARCH_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"

# As root, `virtlogd -d` and `libvirtd -d` write these pid files (checked with libvirt 9.0).
PIDFILES = {"virtlogd": "/run/virtlogd.pid", "libvirtd": "/run/libvirtd.pid"}
LIBVIRTD_LOG = "/var/log/libvirt/libvirtd.log"
QEMU_LOG_DIR = "/var/log/libvirt/qemu"

if os.geteuid() == 0:
    STATE_DIR = os.environ.get("GOVCLOUD_LIBVIRTD_STATE_DIR", "/run/govcloud-test")
else:
    STATE_DIR = os.environ.get("GOVCLOUD_LIBVIRTD_STATE_DIR",
                               os.path.join(tempfile.gettempdir(), f"govcloud-test-{os.getuid()}"))
STATE_FILE = os.path.join(STATE_DIR, "libvirtd.json")
KVM_CACHE_FILE = os.path.join(STATE_DIR, "kvm.json")
# A persistent cache of the tiny guest for kvm_usable() (callers may use it as well).
IMAGE_CACHE_DIR = os.environ.get("GOVCLOUD_TINY_IMAGE_DIR",
                                 os.path.join("/var/cache" if os.geteuid() == 0
                                              else tempfile.gettempdir(),
                                              "govcloud-tiny-image"))

GUEST_OK = "GOVCLOUD-GUEST-OK"


def log(msg):
    print(f"libvirtd.py: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# small utilities

def which(name):
    return shutil.which(name) or shutil.which(name, path=DAEMON_SEARCH_PATH)


def missing_binaries():
    """Names from REQUIRED_BINARIES that are not installed (empty list: all there)."""
    return [b for b in REQUIRED_BINARIES if which(b) is None]


def virsh(*args, timeout=60, check=True, uri=None):
    """Runs `virsh -c URI ARGS...`; returns the CompletedProcess (text). check: raise on error."""
    cmd = [which("virsh") or "virsh", "-c", uri or URI, *args]
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}): "
                           f"{(p.stderr or p.stdout).strip()}")
    return p


def libvirtd_answers(timeout=5):
    """Whether `virsh -c qemu:///system version` answers."""
    if which("virsh") is None:
        return False
    try:
        return virsh("version", timeout=timeout, check=False).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def _proc_stat(pid):
    """(state, starttime) of a process from /proc/PID/stat, or None when it does not exist."""
    try:
        with open(f"/proc/{int(pid)}/stat") as f:
            data = f.read()
    except (OSError, ValueError):
        return None
    fields = data[data.rindex(")") + 2:].split()
    return fields[0], int(fields[19])  # field 3 is the state, field 22 the start time


def _alive(pid, starttime=None):
    st = _proc_stat(pid)
    if st is None or st[0] in ("Z", "X"):  # zombies count as gone: PID 1 may reap them late
        return False
    return starttime is None or st[1] == starttime


def _comm(pid):
    try:
        with open(f"/proc/{int(pid)}/comm") as f:
            return f.read().strip()
    except (OSError, ValueError):
        return ""


def _daemon_pid(name):
    """PID of a running daemon NAME (virtlogd or libvirtd) according to its pid file."""
    try:
        with open(PIDFILES[name]) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return None
    if _alive(pid) and _comm(pid) == name:
        return pid
    return None


class _Lock:
    """An exclusive flock on STATE_DIR/NAME.lock, serialising helpers in different processes."""

    def __init__(self, name):
        os.makedirs(STATE_DIR, exist_ok=True)
        self.path = os.path.join(STATE_DIR, name + ".lock")
        self.fd = None

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)


def _load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _save_json(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


def _me(user):
    """The registration token of a user: {"pid", "start"} of a process, or a plain name."""
    if user is not None:
        return {"name": str(user)}
    pid = os.getpid()
    return {"pid": pid, "start": _proc_stat(pid)[1]}


def _user_alive(u):
    return "name" in u or _alive(u.get("pid", 0), u.get("start"))


def _state():
    """The helper's state with dead daemons and dead users pruned, or None."""
    st = _load_json(STATE_FILE)
    if not st:
        return None
    daemons = {n: d for n, d in st.get("daemons", {}).items() if _alive(d["pid"], d["start"])}
    if not daemons:
        return None
    return {"daemons": daemons, "users": [u for u in st.get("users", []) if _user_alive(u)]}


# --------------------------------------------------------------------------------------------
# /dev/kvm permissions

def fix_kvm_permissions():
    """Gives /dev/kvm the owner and mode Debian's udev rules give it (root:kvm 0660) when
    nobody did, so that QEMU running as libvirt-qemu (a member of group kvm) may open it.
    Returns whether it changed anything.

    Why this matters even though the tests use TCG: these machines have no udev, so the kernel
    leaves /dev/kvm root:root 0600. libvirt 9.0 probes QEMU's capabilities (that probe sees KVM
    working) and then checks whether /dev/kvm is usable by its QEMU user. It is not, so libvirt
    treats its capability cache as stale ("KVM was enabled when probing ..., but it is not
    available now" in its debug log) and probes QEMU again on every lookup, about 4 s each:
    measured 44-46 s for one `virsh create` of a type='qemu' domain. With root:kvm 0660 the same
    `virsh create` takes 0.4 s."""
    path = "/dev/kvm"
    if os.geteuid() != 0 or not os.path.exists(path):
        return False
    try:
        kvm_gid = grp.getgrnam("kvm").gr_gid
    except KeyError:
        return False
    st = os.stat(path)
    if (st.st_mode & 0o006) == 0o006 or (st.st_gid == kvm_gid and (st.st_mode & 0o060) == 0o060):
        return False
    os.chown(path, -1, kvm_gid)
    os.chmod(path, (st.st_mode & 0o7777) | 0o660)
    log("gave /dev/kvm group kvm and mode 0660, as udev does on a normal Debian host "
        "(without it libvirt re-probes QEMU on every call)")
    return True


# --------------------------------------------------------------------------------------------
# daemons

def _log_tail(path=LIBVIRTD_LOG, lines=15):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def _start_daemon(name):
    """Runs `NAME -d` and returns {"pid", "start"} of the daemon it left behind."""
    exe = which(name)
    p = subprocess.run([exe, "-d"], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=60)
    if p.returncode != 0:
        raise RuntimeError(f"{exe} -d failed ({p.returncode}): {(p.stderr or p.stdout).strip()}"
                           f"\n{_log_tail() if name == 'libvirtd' else ''}")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        pid = _daemon_pid(name)
        if pid:
            return {"pid": pid, "start": _proc_stat(pid)[1]}
        time.sleep(0.05)
    raise RuntimeError(f"{name} -d exited 0 but {PIDFILES[name]} names no running {name}")


def _terminate(name, d, timeout):
    """SIGTERM (then SIGKILL after timeout) the daemon d = {"pid", "start"} if still the same."""
    pid = d["pid"]
    if not _alive(pid, d["start"]):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid, d["start"]):
            return
        time.sleep(0.1)
    log(f"{name} (pid {pid}) ignored SIGTERM for {timeout} s; sending SIGKILL")
    if _alive(pid, d["start"]):
        os.kill(pid, signal.SIGKILL)


def ensure_libvirtd(timeout=30, user=None):
    """Makes sure `virsh -c qemu:///system version` answers. If it does not, starts
    `virtlogd -d` (unless it runs) and then `libvirtd -d`, and waits until it answers.
    Returns True when this call started a daemon, False when libvirtd was already answering.
    Registers the caller (this process, or the name `user`) as a user of the daemons; call
    stop_libvirtd() once afterwards in any case. Raises RuntimeError when it cannot start them.
    """
    missing = missing_binaries()
    if missing:
        raise RuntimeError(f"missing libvirt/QEMU commands: {', '.join(missing)}")
    fix_kvm_permissions()
    with _Lock("libvirtd"):
        st = _state()
        if libvirtd_answers():
            if st:  # started by this helper for someone else: share it
                if _me(user) not in st["users"]:
                    st["users"].append(_me(user))
                    _save_json(STATE_FILE, st)
            return False
        if os.geteuid() != 0:
            raise RuntimeError(f"{URI} does not answer and only root can start the system "
                               "libvirtd")
        started = dict(st["daemons"]) if st else {}
        new = []
        try:
            for name in ("virtlogd", "libvirtd"):  # libvirtd hands QEMU's output to virtlogd
                if _daemon_pid(name) is None:
                    started[name] = _start_daemon(name)
                    new.append(name)
            deadline = time.monotonic() + timeout
            while not libvirtd_answers():
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{URI} still does not answer after {timeout} s\n"
                                       f"{_log_tail()}")
                time.sleep(0.1)
        except BaseException:
            for name in reversed(new):
                _terminate(name, started[name], 10)
            raise
        if started:
            users = [u for u in (st["users"] if st else []) if u != _me(user)] + [_me(user)]
            _save_json(STATE_FILE, {"daemons": started, "users": users})
        return bool(new)


def stop_libvirtd(timeout=20, user=None):
    """Unregisters the caller; stops virtlogd and libvirtd (by PID) if this helper started them
    and no other registered user is alive. Returns whether it stopped any daemon."""
    with _Lock("libvirtd"):
        st = _state()
        if st is None:
            try:
                os.unlink(STATE_FILE)
            except FileNotFoundError:
                pass
            return False
        me = _me(user)
        users = [u for u in st["users"] if u != me]
        if users:
            st["users"] = users
            _save_json(STATE_FILE, st)
            return False
        for name in ("libvirtd", "virtlogd"):  # libvirtd first: it talks to virtlogd
            if name in st["daemons"]:
                _terminate(name, st["daemons"][name], timeout)
        os.unlink(STATE_FILE)
        return True


def ensure_default_pool(path="/var/lib/libvirt/images"):
    """The dir storage pool 'default' that govcloud's [compute] storage_pool names by default
    (Debian's libvirt packages do not create one): defined, started and autostarted here when
    missing. Returns True when it had to be created."""
    r = virsh("pool-info", "default", check=False)
    if r.returncode == 0:
        if "running" not in r.stdout:
            virsh("pool-start", "default", check=False)
        return False
    os.makedirs(path, exist_ok=True)
    virsh("pool-define-as", "default", "dir", "--target", path)
    virsh("pool-start", "default")
    virsh("pool-autostart", "default", check=False)
    log(f"created the storage pool 'default' in {path}")
    return True


class SecondHost:
    """A second, independent libvirt host on this machine, for migration tests: its own
    libvirtd and virtlogd in a private mount namespace (`unshare -m`) with their own
    /run/libvirt, /etc/libvirt (a different host UUID: libvirt refuses to migrate a domain to
    the host it is on), /var/lib/libvirt (so its storage pool 'default' holds other files
    than the first host's) and /var/cache/libvirt. It shares the network namespace and
    /var/log/libvirt with the machine, and listens on 127.0.0.1:PORT without TLS or
    authentication (a test-only setting: never on a real host).

        h = lv.SecondHost(workdir).start()     # h.uri: qemu+tcp://127.0.0.1:PORT/system
        ...
        h.stop()                                # domains destroyed, daemons gone
    """

    def __init__(self, workdir, port=None):
        self.dir = os.path.join(workdir, "host2")
        self.port = port or _free_port()
        self.uri = f"qemu+tcp://127.0.0.1:{self.port}/system"
        self.images = os.path.join(self.dir, "varlib", "images")  # its pool, seen from here
        self.proc = None

    def start(self, timeout=90):
        for sub in ("run", "cache", "varlib/qemu", "varlib/dnsmasq", "varlib/images",
                    "varlib/boot"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        os.chmod(self.dir, 0o755)
        etc = os.path.join(self.dir, "etc")
        shutil.rmtree(etc, ignore_errors=True)
        # the daemons' settings and libvirt's own filters, but none of the first host's
        # domains, networks, pools, secrets or govcloud filters
        def skip(d, names):
            rel = os.path.relpath(d, "/etc/libvirt")
            if rel in ("qemu", "storage", "secrets"):
                return [n for n in names if n not in ("autostart",)]
            if rel == "nwfilter":
                return [n for n in names if n.startswith("gc-")]
            return [n for n in names if rel.startswith(("qemu", "storage", "secrets"))]
        shutil.copytree("/etc/libvirt", etc, symlinks=True, ignore=skip)
        with open(os.path.join(etc, "libvirtd.conf"), "w") as f:
            f.write(f'listen_tls = 0\nlisten_tcp = 1\ntcp_port = "{self.port}"\n'
                    f'listen_addr = "127.0.0.1"\nauth_tcp = "none"\n'
                    f'host_uuid = "{uuid.uuid4()}"\n')
        # the migration ports of the two hosts' QEMUs must not meet
        with open(os.path.join(etc, "qemu.conf"), "a") as f:
            f.write("\nmigration_port_min = 49400\nmigration_port_max = 49499\n")
        script = f"""set -e
mount -t tmpfs tmpfs /run/libvirt
mount --bind {etc} /etc/libvirt
mount --bind {self.dir}/varlib /var/lib/libvirt
mount --bind {self.dir}/cache /var/cache/libvirt
virtlogd -d -p {self.dir}/virtlogd.pid
exec libvirtd -l -p {self.dir}/libvirtd.pid
"""
        logf = open(os.path.join(self.dir, "libvirtd.log"), "w")
        self.proc = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c",
                                      script], stdin=subprocess.DEVNULL, stdout=logf,
                                     stderr=subprocess.STDOUT,
                                     env={"PATH": DAEMON_SEARCH_PATH, "LANG": "C"})
        logf.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("the second libvirtd exited:\n" + _read(
                    os.path.join(self.dir, "libvirtd.log"))[-2000:])
            try:  # the first answer waits for QEMU's capabilities to be probed
                if virsh("version", uri=self.uri, check=False, timeout=30).returncode == 0:
                    break
            except subprocess.TimeoutExpired:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError(f"the second libvirtd did not answer on {self.uri}")
        try:
            virsh("pool-define-as", "default", "dir", "--target", "/var/lib/libvirt/images",
                  uri=self.uri)
            virsh("pool-start", "default", uri=self.uri)
        except BaseException:
            self.stop()
            raise
        return self

    def kill_libvirtd(self):
        """Kills the host's libvirtd only (its guests and virtlogd go on), as a crash of the
        daemon or a lost connection would look to govcloud."""
        self.proc.kill()
        self.proc.wait()

    def restart_libvirtd(self, timeout=90):
        """Starts libvirtd again in the host's namespace (entered through its virtlogd)."""
        with open(os.path.join(self.dir, "virtlogd.pid")) as f:
            ns_pid = int(f.read().strip())
        logf = open(os.path.join(self.dir, "libvirtd.log"), "a")
        self.proc = subprocess.Popen(["nsenter", "-m", "-t", str(ns_pid), "libvirtd", "-l", "-p",
                                      f"{self.dir}/libvirtd.pid"],
                                     stdin=subprocess.DEVNULL, stdout=logf,
                                     stderr=subprocess.STDOUT,
                                     env={"PATH": DAEMON_SEARCH_PATH, "LANG": "C"})
        logf.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if virsh("version", uri=self.uri, check=False, timeout=30).returncode == 0:
                    return
            except subprocess.TimeoutExpired:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the second libvirtd did not answer again on {self.uri}")

    def stop(self):
        if self.proc is None:
            return
        r = virsh("list", "--all", "--uuid", uri=self.uri, check=False, timeout=10)
        for dom in r.stdout.split():
            virsh("destroy", dom, uri=self.uri, check=False, timeout=20)
            virsh("undefine", dom, "--nvram", uri=self.uri, check=False, timeout=20)
        for name in ("libvirtd", "virtlogd"):
            try:
                with open(os.path.join(self.dir, f"{name}.pid")) as f:
                    pid = int(f.read().strip())
                if _comm(pid) == name:
                    os.kill(pid, signal.SIGTERM)
            except (OSError, ValueError):
                pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


def _free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status():
    """A dict describing the daemons: answering, helper-started PIDs, registered users."""
    st = _state()
    return {
        "uri": URI,
        "answers": libvirtd_answers(),
        "virtlogd_pid": _daemon_pid("virtlogd"),
        "libvirtd_pid": _daemon_pid("libvirtd"),
        "started_by_helper": st["daemons"] if st else {},
        "users": st["users"] if st else [],
    }


# --------------------------------------------------------------------------------------------
# the tiny guest

def tiny_image(outdir):
    """Runs scripts/tiny-image OUTDIR (cached: a few ms when already built) and returns the
    absolute paths (vmlinuz, initramfs.img). Raises RuntimeError with the script's output."""
    p = subprocess.run([TINY_IMAGE_SCRIPT, outdir], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=600)
    lines = p.stdout.split()
    if p.returncode != 0 or len(lines) != 2:
        raise RuntimeError(f"{TINY_IMAGE_SCRIPT} {outdir} failed ({p.returncode}):\n"
                           f"{p.stderr}{p.stdout}")
    return lines[0], lines[1]


def _xml_escape(s):
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
             .replace("'", "&apos;").replace('"', "&quot;"))


def domain_xml(name, kernel, initrd, serial_path, cmdline="console=ttyS0",
               domain_type="qemu", memory_mib=128, vcpus=1):
    """The XML of a tiny direct-kernel-boot domain: no disk, no network, the serial console
    written to serial_path. <acpi/> is needed for `poweroff -f` to end the domain, and
    on_poweroff=destroy makes it vanish (a transient domain) once the guest powers off."""
    e = _xml_escape
    return f"""<domain type='{e(domain_type)}'>
  <name>{e(name)}</name>
  <memory unit='MiB'>{int(memory_mib)}</memory>
  <vcpu>{int(vcpus)}</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{e(kernel)}</kernel>
    <initrd>{e(initrd)}</initrd>
    <cmdline>{e(cmdline)}</cmdline>
  </os>
  <features>
    <acpi/>
  </features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <serial type='file'>
      <source path='{e(serial_path)}'/>
      <target port='0'/>
    </serial>
    <memballoon model='none'/>
  </devices>
</domain>
"""


def domain_exists(name):
    """Whether libvirt knows domain NAME; raises if libvirt gives any other error."""
    p = virsh("domstate", name, timeout=30, check=False)
    if p.returncode == 0:
        return True
    if "failed to get domain" in p.stderr or "Domain not found" in p.stderr:
        return False
    raise RuntimeError(f"virsh domstate {name} failed: {p.stderr.strip()}")


def destroy_domain(name):
    """Destroys (and undefines, should it be persistent) domain NAME if it exists; removes
    libvirt's QEMU log of it. Never raises for a domain that is already gone."""
    if domain_exists(name):
        virsh("destroy", name, timeout=60, check=False)
        virsh("undefine", name, "--nvram", timeout=60, check=False)
    try:
        os.unlink(os.path.join(QEMU_LOG_DIR, f"{name}.log"))
    except OSError:
        pass


def wait_domain_gone(name, timeout):
    """Polls until domain NAME no longer exists. Returns the seconds waited, or None on
    timeout."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if not domain_exists(name):
            return time.monotonic() - t0
        time.sleep(0.1)
    return None


def make_workdir(prefix="govcloud-guest-"):
    """A temporary directory QEMU can use: mkdtemp() makes it 0700 root, but QEMU runs as
    libvirt-qemu and opens the kernel and initrd itself (libvirt only chowns the files, not
    the directory), which fails with "could not open kernel file ...: Permission denied"."""
    d = tempfile.mkdtemp(prefix=prefix)
    os.chmod(d, 0o755)
    return d


def boot_tiny_guest(workdir, name, cmdline, domain_type="qemu", image_dir=None,
                    wait_line=None, timeout=60):
    """Boots the tiny guest as a transient domain and waits. Returns a dict with
    serial (text), gone (seconds from `virsh create` returning to the domain vanishing, or
    None), create_s and line_s (seconds until wait_line appeared, if given). With wait_line
    it stops waiting as soon as that line shows up on the serial console. Always destroys the
    domain before returning."""
    if image_dir is None:
        kernel, initrd = tiny_image(workdir)
    else:  # copy out of a shared cache: libvirt chowns the files it gives QEMU
        k, i = tiny_image(image_dir)
        kernel, initrd = os.path.join(workdir, "vmlinuz"), os.path.join(workdir, "initramfs.img")
        shutil.copyfile(k, kernel)
        shutil.copyfile(i, initrd)
    serial = os.path.join(workdir, "serial.log")
    xml = os.path.join(workdir, "domain.xml")
    with open(xml, "w") as f:
        f.write(domain_xml(name, kernel, initrd, serial, cmdline, domain_type=domain_type))
    res = {"serial": "", "gone": None, "create_s": None, "line_s": None, "xml": xml}
    t0 = time.monotonic()
    try:
        virsh("create", xml, timeout=120)
        res["create_s"] = time.monotonic() - t0
        t1 = time.monotonic()
        while time.monotonic() - t1 < timeout:
            if wait_line is not None and res["line_s"] is None and wait_line in _read(serial):
                res["line_s"] = time.monotonic() - t1
                break
            if not domain_exists(name):
                res["gone"] = time.monotonic() - t1
                break
            time.sleep(0.1)
    finally:
        destroy_domain(name)
        res["serial"] = _read(serial)
    return res


def _read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


# --------------------------------------------------------------------------------------------
# KVM detection

# The smallest useful KVM program: real-mode code that computes 2+2, writes '4' and '\n' to
# port 0x3f8 and halts. ioctl numbers from <linux/kvm.h> (x86_64).
_KVM_GET_API_VERSION = 0xAE00
_KVM_CREATE_VM = 0xAE01
_KVM_GET_VCPU_MMAP_SIZE = 0xAE04
_KVM_CREATE_VCPU = 0xAE41
_KVM_SET_USER_MEMORY_REGION = 0x4020AE46
_KVM_RUN = 0xAE80
_KVM_GET_SREGS = 0x8138AE83
_KVM_SET_SREGS = 0x4138AE84
_KVM_SET_REGS = 0x4090AE82
_KVM_EXIT_IO, _KVM_EXIT_HLT = 2, 5


def _kvm_ioctl_probe():
    """Runs the tiny real-mode program through /dev/kvm; True if it printed "4\\n" and halted.
    Run it in a child process with a timeout (kvm_usable does): KVM_RUN may never return."""
    import ctypes
    import mmap
    kvm = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    if fcntl.ioctl(kvm, _KVM_GET_API_VERSION) != 12:
        return False
    vm = fcntl.ioctl(kvm, _KVM_CREATE_VM, 0)
    mem = mmap.mmap(-1, 0x1000, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    code = bytes([0xba, 0xf8, 0x03, 0x00, 0xd8, 0x04, ord("0"), 0xee, 0xb0, ord("\n"), 0xee, 0xf4])
    mem[0:len(code)] = code
    addr = ctypes.addressof(ctypes.c_char.from_buffer(mem))
    fcntl.ioctl(vm, _KVM_SET_USER_MEMORY_REGION, struct.pack("IIQQQ", 0, 0, 0x1000, 0x1000, addr))
    vcpu = fcntl.ioctl(vm, _KVM_CREATE_VCPU, 0)
    size = fcntl.ioctl(kvm, _KVM_GET_VCPU_MMAP_SIZE, 0)
    run = mmap.mmap(vcpu, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    sregs = bytearray(312)
    fcntl.ioctl(vcpu, _KVM_GET_SREGS, sregs, True)
    struct.pack_into("Q", sregs, 0, 0)   # cs.base
    struct.pack_into("H", sregs, 12, 0)  # cs.selector
    fcntl.ioctl(vcpu, _KVM_SET_SREGS, bytes(sregs))
    regs = bytearray(144)
    struct.pack_into("QQ", regs, 0, 2, 2)         # rax, rbx
    struct.pack_into("QQ", regs, 128, 0x1000, 2)  # rip, rflags
    fcntl.ioctl(vcpu, _KVM_SET_REGS, bytes(regs))
    out = b""
    for _ in range(10):
        fcntl.ioctl(vcpu, _KVM_RUN, 0)
        reason = struct.unpack_from("I", run, 8)[0]
        if reason == _KVM_EXIT_IO:
            _direction, size1, _port, count, off = struct.unpack_from("BBHIQ", run, 32)
            out += run[off:off + size1 * count]
        elif reason == _KVM_EXIT_HLT:
            return out == b"4\n"
        else:
            return False
    return False


def _boot_id():
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return ""


last_kvm_reason = ""


def kvm_usable(timeout=10.0, force=False):
    """Whether libvirt can run type='kvm' domains here. The reason lands in last_kvm_reason.

    Why a real boot: on these machines /dev/kvm exists and even works at the ioctl level (the
    machine is a Firecracker VM whose kernel provides KVM through the kvm_pvm module, with no
    vmx/svm in the CPU flags), and libvirt lists <domain type='kvm'> in its capabilities; but
    a real guest under -accel kvm spins at 100 % CPU after SeaBIOS and never prints a kernel
    line (QEMU also warns that the host lacks CPUID feature pni). Neither the device, nor the
    ioctls, nor libvirt's capabilities tell this apart from a working host; only running a
    real kernel does. So, in order, stopping at the first "no":
      1. /dev/kvm exists (no: return at once);
      2. a 12-byte real-mode program runs through the KVM ioctls in a child process within 5 s
         (milliseconds; catches missing modules, permissions and broken ioctls without a
         daemon);
      3. the tiny guest (scripts/tiny-image), started through libvirt as a type='kvm' domain,
         prints GOVCLOUD-GUEST-OK within `timeout` seconds (under working KVM it takes about
         a second; here it never does, so "no" costs `timeout` seconds).
    The answer is cached for the current boot (STATE_DIR/kvm.json, keyed by the kernel's
    boot_id); force=True probes again. Step 3 starts libvirtd if needed (and stops it again).
    """
    global last_kvm_reason
    if not os.path.exists("/dev/kvm"):
        last_kvm_reason = "no /dev/kvm"
        return False
    fix_kvm_permissions()
    with _Lock("kvm"):
        cached = _load_json(KVM_CACHE_FILE)
        if not force and cached and cached.get("boot_id") == _boot_id():
            last_kvm_reason = cached.get("reason", "") + " (cached for this boot)"
            return bool(cached.get("usable"))
        usable, reason = _kvm_probe(timeout)
        last_kvm_reason = reason
        _save_json(KVM_CACHE_FILE, {"boot_id": _boot_id(), "usable": usable, "reason": reason,
                                    "checked": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        return usable


def _kvm_probe(timeout):
    try:
        p = subprocess.run([sys.executable, os.path.abspath(__file__), "kvm-ioctl-probe"],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=5)
        if p.returncode != 0:
            return False, f"KVM ioctl probe failed: {(p.stderr or p.stdout).strip()[-300:]}"
    except subprocess.TimeoutExpired:
        return False, "KVM ioctl probe did not finish within 5 s"
    if missing_binaries():
        return False, f"libvirt/QEMU missing: {', '.join(missing_binaries())}"
    started = ensure_libvirtd()
    workdir = make_workdir("govcloud-kvm-probe-")
    name = f"govcloud-kvm-probe-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        r = boot_tiny_guest(workdir, name, "console=ttyS0 quiet", domain_type="kvm",
                            image_dir=IMAGE_CACHE_DIR, wait_line=GUEST_OK, timeout=timeout)
    except RuntimeError as e:
        return False, f"type='kvm' domain failed to start: {e}"
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        stop_libvirtd()
    if r["line_s"] is not None or GUEST_OK in r["serial"]:
        return True, f"tiny type='kvm' guest booted in {r['line_s'] or 0:.1f} s"
    seen = "no serial output" if not r["serial"] else f"{len(r['serial'])} bytes of serial output"
    return False, (f"tiny type='kvm' guest did not print {GUEST_OK} within {timeout:g} s "
                   f"({seen}); KVM is present but does not run real guests")


# --------------------------------------------------------------------------------------------

def _main(argv):
    usage = "usage: libvirtd.py start|stop|status|kvm [--force]"
    if len(argv) < 2:
        print(usage, file=sys.stderr)
        return 2
    cmd = argv[1]
    if cmd == "kvm-ioctl-probe":  # internal: used by kvm_usable() in a child process
        return 0 if _kvm_ioctl_probe() else 1
    if cmd == "start":
        try:
            started = ensure_libvirtd(user="cli")
            ensure_default_pool()
        except (RuntimeError, subprocess.CalledProcessError) as e:
            log(str(e))
            return 1
        print(f"libvirtd: {'started' if started else 'already running'} ({URI} answers)")
        return 0
    if cmd == "stop":
        stopped = stop_libvirtd(user="cli")
        print("libvirtd: " + ("stopped" if stopped else
                              "left running (not started by this helper, or still in use)"))
        return 0
    if cmd == "status":
        s = status()
        print(json.dumps(s, indent=1))
        return 0 if s["answers"] else 1
    if cmd == "kvm":
        ok = kvm_usable(force="--force" in argv[2:])
        print(f"kvm: {'usable' if ok else 'not usable'}: {last_kvm_reason}")
        return 0 if ok else 1
    print(usage, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv))
