"""Integration tests of the command-line client `govcloud` (docs/cli.md) against a real
govcloudd. Every CLI run is a subprocess with a private HOME and XDG_CONFIG_HOME, a timeout,
and a check that its stderr carries no sanitizer report."""

import fcntl
import http.server
import json
import os
import pty
import re
import select
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import termios
import threading
import time
import unicodedata
import unittest
import urllib.parse
import uuid

from gcharness import ADMIN_PASSWORD, CLI, Daemon, DaemonTestCase

SANITIZER_MARKS = ("runtime error:", "AddressSanitizer", "LeakSanitizer")
MISSING_ID = "01a212ee-0000-7000-8000-000000000000"
USER_PW = "User-Passw0rd!"
RID_RE = re.compile(r"\(HTTP (\d{3}), request ([A-Za-z0-9._-]{1,64})\)")


def closed_tcp_port():
    """A loopback TCP port nobody listens on (bound and closed again at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_port_url():
    return f"http://127.0.0.1:{closed_tcp_port()}"


def cells(s):
    """Display width of s on a terminal: East Asian wide/fullwidth take two cells."""
    w = 0
    for ch in s:
        if unicodedata.combining(ch):
            continue
        w += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return w


def parse_object(text):
    """'field  value' lines of a single-object table into an ordered dict."""
    out = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        key, _, val = line.partition(" ")
        out[key] = val.lstrip(" ")
    return out


def parse_table(text):
    """Aligned columns into (header names, rows as dicts, misaligned cells). A cell is what
    lies between its header's display column and the next one; a cell is misaligned when it
    does not start exactly under its header or runs into the next column's gap."""
    lines = [l for l in text.splitlines() if l.strip()]
    header = [(m.group(0), cells(lines[0][:m.start()]))
              for m in re.finditer(r"\S+", lines[0])]
    names = [h for h, _ in header]
    starts = [c for _, c in header]
    rows, bad = [], []
    for line in lines[1:]:
        by_col, col = [], 0              # (display column, character)
        for ch in line:
            by_col.append((col, ch))
            col += cells(ch)
        row = {}
        for i, name in enumerate(names):
            lo = starts[i]
            hi = starts[i + 1] if i + 1 < len(starts) else 1 << 30
            chars = [(c, ch) for c, ch in by_col if lo <= c < hi]
            cell = "".join(ch for _, ch in chars)
            row[name] = cell.strip(" ")
            if cell.strip(" ") and (chars[0][0] != lo or chars[0][1] == " "):
                bad.append((name, line))
            if i + 1 < len(starts) and cell.strip(" ") and not cell.endswith("  "):
                bad.append((name, line))      # no two-blank gap before the next column
        rows.append(row)
    return names, rows, bad


class CliMixin:
    """Runs the CLI. Needs self.home (made by make_home())."""

    def make_home(self):
        self.home = tempfile.mkdtemp(prefix="govcloud-cli-home-")
        self.addCleanup(shutil.rmtree, self.home, True)
        self.xdg = os.path.join(self.home, "xdg")
        self.config_dir = os.path.join(self.xdg, "govcloud")
        self.config_file = os.path.join(self.config_dir, "config")

    def cli_env(self, url=None, token=None, env=None):
        e = {k: v for k, v in os.environ.items() if not k.startswith("GOVCLOUD_")}
        e["HOME"] = self.home
        e["XDG_CONFIG_HOME"] = self.xdg
        e.setdefault("LC_ALL", "C.UTF-8")
        if url is not None:
            e["GOVCLOUD_URL"] = url
        if token is not None:
            e["GOVCLOUD_TOKEN"] = token
        for k, v in (env or {}).items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = v
        return e

    def check_sanitizer(self, args, stderr):
        for mark in SANITIZER_MARKS:
            if mark in stderr:
                self.fail(f"sanitizer report from govcloud {' '.join(args)}:\n{stderr}")

    def cli(self, *args, url=None, token=None, env=None, input=None, timeout=30):
        """Runs govcloud with args; stdin is /dev/null unless input is given."""
        args = [str(a) for a in args]
        p = subprocess.run(
            [CLI, *args], env=self.cli_env(url, token, env),
            input=input.encode() if input is not None else None,
            stdin=subprocess.DEVNULL if input is None else None,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        for stream in ("stdout", "stderr"):
            raw = getattr(p, stream)
            try:
                setattr(p, stream, raw.decode("utf-8"))
            except UnicodeDecodeError as e:
                self.check_sanitizer(args, raw.decode("utf-8", "replace"))
                self.fail(f"govcloud {' '.join(args)} wrote invalid UTF-8 on {stream} "
                          f"({e}):\n{raw!r}")
        self.check_sanitizer(args, p.stderr)
        return p

    def run_on_terminal(self, args, env, answers=(), timeout=30):
        """Runs govcloud with stdin and stdout on a new pseudo-terminal that is its
        controlling terminal (so /dev/tty works). answers: (prompt bytes, reply bytes, secret);
        a secret reply is typed only once echo is off, as a person would after the prompt.
        Returns (exit code, everything the terminal showed, stderr, echo back on at exit)."""
        master, slave = pty.openpty()

        def make_controlling():
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        proc = subprocess.Popen([CLI, *args], env=env, stdin=slave, stdout=slave,
                                stderr=subprocess.PIPE, preexec_fn=make_controlling)
        os.close(slave)
        out, pending, seen = b"", list(answers), 0
        deadline = time.time() + timeout
        try:
            while time.time() < deadline:
                if pending and pending[0][0] in out[seen:]:
                    prompt, reply, secret = pending[0]
                    if secret:
                        while termios.tcgetattr(master)[3] & termios.ECHO:
                            if time.time() > deadline or proc.poll() is not None:
                                break
                            time.sleep(0.01)
                    os.write(master, reply)
                    seen = out.index(prompt, seen) + len(prompt)
                    pending.pop(0)
                    continue
                r, _, _ = select.select([master], [], [], 0.2)
                if r:
                    try:
                        data = os.read(master, 4096)
                    except OSError:          # EIO: the child has closed the terminal
                        break
                    if not data:
                        break
                    out += data
                elif proc.poll() is not None:
                    break
            else:
                proc.kill()
            rc = proc.wait(timeout=10)
            echo_on = bool(termios.tcgetattr(master)[3] & termios.ECHO)
        finally:
            os.close(master)
        err = proc.stderr.read().decode("utf-8")
        proc.stderr.close()
        self.check_sanitizer(args, err)
        return rc, out.decode("utf-8", "replace"), err, echo_on

    def assertExit(self, p, code):
        self.assertEqual(p.returncode, code,
                         f"exit {p.returncode}, expected {code}\nargs: {p.args[1:]}\n"
                         f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")


# ---------------------------------------------------------------------------------------
# No server needed: help, usage errors, version --client, connection refused.

GLOBAL_OPTS = ["--url", "--token", "-o, --output", "-h, --help"]

# command path -> options its --help must list (docs/cli.md)
LEAVES = {
    "login": ["-u, --username", "--password-stdin", "--password"],
    "logout": [],
    "whoami": [],
    "department list": ["--parent-id", "--name", "--code", "--limit", "--cursor", "--all"],
    "department get": [],
    "department create": ["--name", "--code", "--parent-id", "--description"],
    "department update": ["--name", "--code", "--description", "--parent-id", "--if-match"],
    "department delete": ["--if-match"],
    "user list": ["--department-id", "--role", "--username", "--limit", "--cursor", "--all"],
    "user get": [],
    "user create": ["--username", "--role", "--department-id", "--display-name",
                    "--password-stdin", "--password"],
    "user update": ["--display-name", "--password-stdin", "--password", "--current-password",
                    "--current-password-stdin", "--role", "--department-id", "--disabled",
                    "--unlock", "--if-match"],
    "user delete": ["--if-match"],
    "api-key list": ["--limit", "--cursor", "--all"],
    "api-key create": ["--name", "--expires-at"],
    "api-key delete": [],
    "audit list": ["--actor-name", "--action", "--resource-type", "--resource-id",
                   "--outcome", "--since", "--until", "--limit", "--cursor", "--all"],
    "audit verify": [],
    "job list": ["--state", "--kind", "--limit", "--cursor", "--all"],
    "job get": [],
    "job submit": ["--kind", "--params"],
    "job cancel": [],
    "job wait": ["--timeout"],
    "version": ["--client"],
    "host list": ["--zone", "--state", "--arch", "--name", "--limit", "--cursor", "--all"],
    "host get": [],
    "host register": ["--uri", "--zone", "--description"],
    "host update": ["--name", "--zone", "--description", "--maintenance", "--if-match"],
    "host remove": ["--if-match"],
    "flavor list": ["--name", "--limit", "--cursor", "--all"],
    "flavor get": [],
    "flavor create": ["--vcpus", "--memory-mib", "--disk-gib", "--description"],
    "flavor delete": ["--if-match"],
    "image list": ["--name", "--kind", "--state", "--arch", "--limit", "--cursor", "--all"],
    "image get": [],
    "image import": ["--kind", "--arch", "--kernel-path", "--initrd-path", "--cmdline",
                     "--disk-path", "--format", "--os-type", "--min-disk-gib",
                     "--min-memory-mib", "--wait", "--timeout"],
    "image delete": ["--if-match"],
    "vm list": ["--department", "--host", "--state", "--name", "--limit", "--cursor", "--all"],
    "vm get": [],
    "vm create": ["--flavor", "--image", "--network", "--security-group", "--zone",
                  "--server-group", "--department", "--host", "--no-start", "--wait",
                  "--timeout"],
    "vm start": ["--wait", "--timeout"],
    "vm stop": ["--force", "--wait", "--timeout"],
    "vm reboot": ["--wait", "--timeout"],
    "vm resize": ["--flavor", "--wait", "--timeout"],
    "vm delete": ["--wait", "--timeout"],
    "vm console": [],
    "volume list": ["--department", "--vm", "--state", "--limit", "--cursor", "--all"],
    "volume get": [],
    "volume create": ["--size-gib", "--department", "--vm", "--host", "--wait", "--timeout"],
    "volume attach": ["--vm", "--wait", "--timeout"],
    "volume detach": ["--wait", "--timeout"],
    "volume resize": ["--size-gib", "--wait", "--timeout"],
    "volume delete": ["--wait", "--timeout"],
    "network list": ["--name", "--mode", "--limit", "--cursor", "--all"],
    "network get": [],
    "network create": ["--mode", "--ipv4-cidr", "--ipv6-cidr", "--bridge", "--department",
                       "--description"],
    "network delete": ["--if-match"],
    "security-group list": ["--name", "--limit", "--cursor", "--all"],
    "security-group get": [],
    "security-group create": ["--department", "--description"],
    "security-group delete": ["--if-match"],
    "security-group rule add": ["--direction", "--protocol", "--port", "--port-max", "--cidr"],
    "security-group rule remove": [],
    "server-group list": ["--department", "--limit", "--cursor", "--all"],
    "server-group get": [],
    "server-group create": ["--policy", "--department"],
    "server-group delete": ["--if-match"],
    "quota show": [],
    "quota set": ["--vms", "--vcpus", "--memory-mib", "--disk-gib", "--volumes", "--public-ips",
                  "--if-match"],
    "alarm list": ["--status", "--severity", "--rule-id", "--department", "--limit",
                   "--cursor", "--all"],
    "alarm get": [],
    "alarm ack": ["--comment"],
    "alarm-rule list": ["--kind", "--severity", "--department", "--limit", "--cursor", "--all"],
    "alarm-rule get": [],
    "alarm-rule create": ["--selector", "--function", "--op", "--threshold", "--for-seconds",
                          "--severity", "--summary", "--enabled", "--department"],
    "alarm-rule update": ["--name", "--selector", "--function", "--op", "--threshold",
                          "--for-seconds", "--severity", "--summary", "--enabled", "--if-match"],
    "alarm-rule delete": ["--if-match"],
    "silence list": ["--limit", "--cursor", "--all"],
    "silence create": ["--match", "--comment", "--starts-at", "--ends-at", "--duration"],
    "silence delete": [],
    "notification-channel list": ["--kind", "--limit", "--cursor", "--all"],
    "notification-channel create": ["--url", "--kind", "--enabled"],
    "notification-channel delete": [],
    "check list": ["--department", "--kind", "--limit", "--cursor", "--all"],
    "check get": [],
    "check create": ["--kind", "--host", "--port", "--url", "--expect-status", "--tls-verify",
                     "--interval", "--timeout-ms", "--enabled", "--department"],
    "check update": ["--name", "--host", "--port", "--url", "--expect-status", "--tls-verify",
                     "--interval", "--timeout-ms", "--enabled", "--if-match"],
    "check delete": ["--if-match"],
    "availability show": ["--scope", "--id", "--target", "--from", "--to"],
    "availability report": ["--scope", "--id", "--target", "--year", "--month"],
    "maintenance-window list": ["--scope", "--resource-id", "--limit", "--cursor", "--all"],
    "maintenance-window create": ["--scope", "--resource-id", "--starts-at", "--ends-at",
                                  "--description"],
    "maintenance-window delete": [],
    "metric series": ["--metric", "--match", "--limit", "--cursor", "--all"],
    "metric query": ["--metric", "--match", "--start", "--end", "--step", "--agg"],
    "asset list": ["--kind", "--department", "--domestic", "--cpu-arch", "--layer", "--source",
                   "--limit", "--cursor", "--all"],
    "asset get": [],
    "asset update": ["--name", "--manufacturer", "--model", "--serial-number", "--asset-tag",
                     "--business-system", "--cpu-arch", "--layer", "--mlps-grade", "--dr-level",
                     "--crypto-evaluation", "--department", "--domestic", "--location",
                     "--capacity", "--attributes", "--if-match"],
    "asset delete": ["--if-match"],
    "asset history": ["--limit", "--cursor", "--all"],
    "asset import": ["--format"],
    "asset snmp-device list": ["--kind", "--address", "--limit", "--cursor", "--all"],
    "asset snmp-device get": [],
    "asset snmp-device create": ["--address", "--kind", "--credentials", "--port",
                                 "--security-function", "--location", "--department",
                                 "--timeout-ms", "--enabled"],
    "asset snmp-device update": ["--address", "--kind", "--credentials", "--port",
                                 "--security-function", "--location", "--department",
                                 "--timeout-ms", "--enabled", "--if-match"],
    "asset snmp-device delete": ["--if-match"],
    "asset snmp-device discover": [],
    "sensor list": ["--driver", "--room", "--room-class", "--profile", "--limit", "--cursor",
                    "--all"],
    "sensor get": [],
    "sensor create": ["--driver", "--address", "--profile", "--port", "--credentials", "--room",
                      "--room-class", "--context", "--thresholds", "--timeout-ms", "--enabled"],
    "sensor update": ["--name", "--address", "--profile", "--port", "--credentials", "--room",
                      "--room-class", "--context", "--thresholds", "--timeout-ms", "--enabled",
                      "--if-match"],
    "sensor delete": ["--if-match"],
    "sensor readings": [],
    "sensor profile list": ["--limit", "--cursor", "--all"],
    "sensor profile get": [],
    "sensor profile check": [],
    "supervision pull": ["--cursor", "--cursor-file", "--limit", "--all"],
    "supervision public-key": [],
    "supervision substitution-rate": [],
    "supervision overview": [],
    "supervision receiver list": ["--limit", "--cursor", "--all"],
    "supervision receiver get": [],
    "supervision receiver create": ["--url", "--push-token", "--secret", "--datasets",
                                    "--enabled"],
    "supervision receiver update": ["--name", "--url", "--push-token", "--secret", "--datasets",
                                    "--enabled", "--if-match"],
    "supervision receiver delete": ["--if-match"],
    "supervision cloud list": ["--limit", "--cursor", "--all"],
    "supervision cloud get": [],
    "supervision cloud register": ["--cloud-id", "--public-key-file", "--secret"],
    "supervision cloud update": ["--name", "--public-key-file", "--secret", "--rotate-token",
                                 "--if-match"],
    "supervision cloud delete": ["--if-match"],
    "supervision cloud summary": [],
    "supervision cloud records": ["--dataset", "--limit", "--cursor", "--all"],
}
POSITIONAL_ID = {"department get", "department update", "department delete", "user get",
                 "user update", "user delete", "api-key delete", "job get", "job cancel",
                 "job wait", "volume get", "volume attach", "volume detach", "volume resize",
                 "volume delete", "server-group get", "server-group delete", "alarm get",
                 "alarm ack", "alarm-rule get", "alarm-rule update", "alarm-rule delete",
                 "silence delete", "check get", "check update", "check delete", "asset get",
                 "asset update", "asset delete", "asset history", "sensor get", "sensor update",
                 "sensor readings", "supervision receiver get", "supervision cloud summary",
                 "asset snmp-device discover", "maintenance-window delete",
                 "notification-channel delete"}
GROUPS = {
    "": ["login", "logout", "whoami", "department", "user", "api-key", "audit", "job",
         "host", "flavor", "image", "vm", "volume", "network", "security-group",
         "server-group", "quota", "alarm", "alarm-rule", "silence", "notification-channel",
         "check", "availability", "maintenance-window", "metric", "asset", "sensor",
         "supervision", "version"],
    "department": ["list", "get", "create", "update", "delete"],
    "user": ["list", "get", "create", "update", "delete"],
    "api-key": ["list", "create", "delete"],
    "audit": ["list", "verify"],
    "job": ["list", "get", "submit", "cancel", "wait"],
    "host": ["list", "get", "register", "update", "evacuate", "remove"],
    "flavor": ["list", "get", "create", "delete"],
    "image": ["list", "get", "import", "delete"],
    "vm": ["list", "get", "create", "start", "stop", "reboot", "resize", "migrate", "delete", "console"],
    "volume": ["list", "get", "create", "attach", "detach", "resize", "delete"],
    "network": ["list", "get", "create", "delete"],
    "security-group": ["list", "get", "create", "delete", "rule"],
    "security-group rule": ["add", "remove"],
    "server-group": ["list", "get", "create", "delete"],
    "quota": ["show", "set"],
    "alarm": ["list", "get", "ack"],
    "alarm-rule": ["list", "get", "create", "update", "delete"],
    "silence": ["list", "create", "delete"],
    "notification-channel": ["list", "create", "delete"],
    "check": ["list", "get", "create", "update", "delete"],
    "availability": ["show", "report"],
    "maintenance-window": ["list", "create", "delete"],
    "metric": ["series", "query"],
    "asset": ["list", "get", "update", "delete", "history", "import", "snmp-device"],
    "asset snmp-device": ["list", "get", "create", "update", "delete", "discover"],
    "sensor": ["list", "get", "create", "update", "delete", "readings", "profile"],
    "sensor profile": ["list", "get", "check"],
    "supervision": ["pull", "public-key", "substitution-rate", "overview", "receiver", "cloud"],
    "supervision receiver": ["list", "get", "create", "update", "delete"],
    "supervision cloud": ["list", "get", "register", "update", "delete", "summary", "records"],
}


def option_lines(help_text, section):
    """The option names listed under `section:` in a help text (the left column)."""
    out, inside = [], False
    for line in help_text.splitlines():
        if line.rstrip().endswith(":") and not line.startswith(" "):
            inside = line.startswith(section)
            continue
        # "  -o, --output FORMAT" or "      --url URL"; wrapped help text is indented more
        m = re.match(r"^(?:  (-\w, )|      )(--[\w-]+)", line) if inside else None
        if m:
            out.append((m.group(1) or "") + m.group(2))
    return out


class CliOfflineTest(CliMixin, unittest.TestCase):
    def setUp(self):
        self.make_home()
        self.dead = closed_port_url()

    def test_help_top_level(self):
        for flag in ("--help", "-h"):
            p = self.cli(flag, url=self.dead)
            self.assertExit(p, 0)
            self.assertTrue(p.stdout.startswith("Usage: govcloud "), p.stdout)
            self.assertEqual(p.stderr, "")
            for sub in GROUPS[""]:
                self.assertRegex(p.stdout, rf"(?m)^  {re.escape(sub)}\s+\S", sub)
            self.assertEqual(option_lines(p.stdout, "Global options"),
                             ["--url", "--token", "-o, --output", "-h, --help"])
            # the exit code table, the environment and the config file are documented
            for code in range(0, 11):
                self.assertRegex(p.stdout, rf"(?m)^\s+{code}\s+\S", f"exit code {code}")
            for word in ("GOVCLOUD_URL", "GOVCLOUD_TOKEN", "XDG_CONFIG_HOME"):
                self.assertIn(word, p.stdout)

    def test_help_groups(self):
        for group, subs in GROUPS.items():
            if not group:
                continue
            words = group.split()
            for argv in ([*words, "--help"], ["--help", *words], [*words, "-h"]):
                p = self.cli(*argv, url=self.dead)
                self.assertExit(p, 0)
                self.assertTrue(p.stdout.startswith(f"Usage: govcloud {group} "), p.stdout)
                listed = re.findall(r"(?m)^  ([a-z-]+)\s{2,}\S", p.stdout.split("Commands:")[1])
                self.assertEqual(listed, subs, p.stdout)
                self.assertEqual(option_lines(p.stdout, "Global options"),
                                 GLOBAL_OPTS, p.stdout)

    def test_help_every_command(self):
        for path, opts in LEAVES.items():
            words = path.split()
            # --help after the command, also when required options/arguments are missing
            for argv in ([*words, "--help"], [*words, "-h"], ["--help", *words]):
                p = self.cli(*argv, url=self.dead)
                self.assertExit(p, 0)
                self.assertEqual(p.stderr, "", path)
                first = p.stdout.splitlines()[0]
                self.assertTrue(first.startswith(f"Usage: govcloud {path}"), first)
                if path in POSITIONAL_ID:
                    self.assertIn(" ID ", first)
                self.assertEqual(sorted(option_lines(p.stdout, "Options")), sorted(opts),
                                 f"options of '{path}':\n{p.stdout}")
                self.assertEqual(option_lines(p.stdout, "Global options"), GLOBAL_OPTS,
                                 f"global options of '{path}':\n{p.stdout}")

    def test_no_arguments_is_usage_error(self):
        p = self.cli(url=self.dead)
        self.assertExit(p, 2)
        self.assertEqual(p.stdout, "")
        self.assertIn("Usage: govcloud", p.stderr)

    def test_usage_errors_exit_2_and_send_nothing(self):
        # the URL is a closed port: any request would make the exit code 3, not 2
        cases = [
            (["frobnicate"], "unknown command 'frobnicate'"),
            (["department", "frobnicate"], "unknown command 'frobnicate'"),
            (["department"], "missing command"),
            (["department", "list", "--bogus"], "unknown option '--bogus'"),
            (["--bogus", "whoami"], "unknown option '--bogus'"),
            (["whoami", "-z"], "unknown option '-z'"),
            (["department", "get"], "missing argument ID"),
            (["department", "get", "a", "b"], "unexpected argument 'b'"),
            (["department", "create"], "missing option --name"),
            (["department", "list", "--limit", "abc"], "--limit"),
            (["department", "list", "--limit", "0"], "--limit"),
            (["department", "list", "--limit=501"], "--limit"),
            (["department", "list", "--limit"], "needs a value"),
            (["department", "list", "--all=yes"], "takes no value"),
            (["user", "update", MISSING_ID, "--disabled", "maybe"], "--disabled"),
            (["user", "list", "--role", "king"], "--role"),
            (["audit", "list", "--since", "yesterday"], "--since"),
            (["audit", "list", "--outcome", "meh"], "--outcome"),
            (["-o", "yaml", "whoami"], "--output"),
            (["department", "update", MISSING_ID], "nothing to update"),
            (["department", "update", MISSING_ID, "--if-match", "x", "--name", "a"],
             "--if-match"),
            (["department", "list", "--name", "a", "--name", "b"], "more than once"),
            (["job", "submit", "--kind", "test.sleep", "--params", "[1]"], "--params"),
            (["job", "submit", "--kind", "test.sleep", "--params", "{"], "--params"),
            (["job", "wait", MISSING_ID, "--timeout", "-1"], "--timeout"),
            (["user", "create", "--username", "a1", "--role", "operator"], "password"),
            (["login", "--password-stdin"], "--username"),
            (["login", "-u", "admin"], "no password"),    # no terminal to ask on
            (["department", "get", ".."], "invalid id '..'"),
            (["department", "get", ""], "invalid id ''"),
            (["job", "cancel", "."], "invalid id '.'"),
            (["login", "-u", "admin", "--password", "x", "--password-stdin"], "not both"),
            (["vm", "create", "web1", "--image", "tiny"], "missing option --flavor"),
            (["vm", "create", "--flavor", "f", "--image", "i"], "missing argument NAME"),
            (["vm", "stop", "web1", "--timeout", "5"], "--timeout needs --wait"),
            (["vm", "delete", "web1", "--timeout", "5"], "--timeout needs --wait"),
            (["vm", "stop", "web1", "--force=yes"], "takes no value"),
            (["vm", "list", "--state", "sleeping"], "--state"),
            (["host", "update", "h1", "--maintenance", "maybe"], "--maintenance"),
            (["flavor", "create", "f1", "--vcpus", "0", "--memory-mib", "64"], "--vcpus"),
            (["flavor", "create", "f1", "--vcpus", "1", "--memory-mib", "63"], "--memory-mib"),
            (["volume", "create", "v1", "--size-gib", "0"], "--size-gib"),
            (["quota", "set", "d1"], "nothing to set"),
            (["quota", "set", "d1", "--vms", "-1"], "--vms"),
            (["quota", "set", "d1", "--vms", "many"], "--vms"),
            (["security-group", "rule", "add", "web", "--direction", "in", "--protocol", "tcp",
              "--cidr", "0.0.0.0/0"], "--direction"),
            (["security-group", "rule", "remove", "web"], "missing argument"),
            (["security-group", "rule", "remove", MISSING_ID, ".."], "invalid id '..'"),
            (["network", "create", "n1", "--mode", "vlan", "--ipv4-cidr", "10.0.0.0/24"],
             "--mode"),
            (["image", "import", "i1", "--kind", "iso", "--arch", "x86_64"], "--kind"),
            (["vm", "get", ""], "invalid id ''"),
        ]
        for argv, msg in cases:
            with self.subTest(argv=argv):
                p = self.cli(*argv, url=self.dead, token="gct_unused", input="")
                self.assertExit(p, 2)
                self.assertEqual(p.stdout, "")
                self.assertIn("govcloud: error:", p.stderr)
                self.assertIn(msg, p.stderr)

    def test_unknown_option_does_not_echo_its_value(self):
        p = self.cli("whoami", "--password=hunter2-secret", url=self.dead)
        self.assertExit(p, 2)
        self.assertIn("unknown option '--password'", p.stderr)
        self.assertNotIn("hunter2-secret", p.stderr + p.stdout)

    def test_bad_token_is_usage_error_and_not_echoed(self):
        for kw in ({"token": "gct_has space"}, {"env": {"GOVCLOUD_TOKEN": "gct_new\nline"}}):
            p = self.cli("whoami", url=self.dead, **kw)
            self.assertExit(p, 2)
            self.assertIn("not a valid token", p.stderr)
            self.assertNotIn("gct_", p.stderr)
        p = self.cli("--token", "gct_tab\there", "whoami", url=self.dead)
        self.assertExit(p, 2)
        self.assertNotIn("gct_", p.stderr)

    def test_write_error_on_stdout_is_failure(self):
        if not os.path.exists("/dev/full"):
            self.skipTest("no /dev/full")
        with open("/dev/full", "wb") as full:
            p = subprocess.run([CLI, "version", "--client"], env=self.cli_env(self.dead),
                               stdin=subprocess.DEVNULL, stdout=full, stderr=subprocess.PIPE,
                               timeout=30)
        err = p.stderr.decode()
        self.check_sanitizer(["version"], err)
        self.assertEqual(p.returncode, 1, err)
        self.assertIn("cannot write to standard output", err)

    def test_version_client_asks_no_server(self):
        p = self.cli("version", "--client", url=self.dead)
        self.assertExit(p, 0)
        self.assertRegex(p.stdout, r"^client  govcloud \d+\.\d+\.\d+\n$")
        p = self.cli("-o", "json", "version", "--client", url=self.dead)
        self.assertExit(p, 0)
        v = json.loads(p.stdout)
        self.assertEqual(list(v), ["client"])
        self.assertRegex(v["client"]["version"], r"^\d+\.\d+\.\d+$")

    def test_connection_refused_exit_3(self):
        for argv in (["whoami"], ["department", "list"], ["audit", "verify"],
                     ["department", "create", "--name", "x"]):
            p = self.cli(*argv, url=self.dead, token="gct_whatever")
            self.assertExit(p, 3)
            self.assertEqual(p.stdout, "")
            self.assertIn("cannot connect to " + self.dead, p.stderr)
        # --url is honoured the same way
        p = self.cli("--url", self.dead, "whoami", token="gct_whatever")
        self.assertExit(p, 3)
        # version still prints the client's version, then exits 3
        p = self.cli("version", url=self.dead)
        self.assertExit(p, 3)
        self.assertIn("client  govcloud ", p.stdout)
        self.assertIn("server version unknown", p.stderr)

    def test_logout_unreachable_keeps_token(self):
        os.makedirs(self.config_dir, mode=0o700)
        with open(self.config_file, "w") as f:
            f.write(f"url = {self.dead}\ntoken = gct_keepme\n")
        os.chmod(self.config_file, 0o600)
        p = self.cli("logout")
        self.assertExit(p, 3)
        self.assertIn("still saved", p.stderr)
        with open(self.config_file) as f:
            self.assertIn("token = gct_keepme", f.read())

    def test_invalid_url(self):
        for url in ("ftp://example.org", "http://user:pw@127.0.0.1:1", "not a url"):
            p = self.cli("whoami", url=url, token="gct_x")
            self.assertExit(p, 2)
            self.assertIn("invalid server URL", p.stderr)
            self.assertNotIn("pw@", p.stderr)


# ---------------------------------------------------------------------------------------
# Against one daemon.

class CliTest(CliMixin, DaemonTestCase):
    counter = 0

    def setUp(self):
        self.make_home()

    def uniq(self, prefix):
        CliTest.counter += 1
        return f"{prefix}{CliTest.counter}x{os.getpid() % 1000}"

    def run_admin(self, *args, **kw):
        return self.cli(*args, url=self.d.url, token=self.admin, **kw)

    def api_get(self, path, token=None):
        r = self.req("GET", path, token=token or self.admin)
        self.assertEqual(r.status, 200, r)
        return r.json

    def cli_json(self, *args, **kw):
        p = self.run_admin("-o", "json", *args, **kw)
        self.assertExit(p, 0)
        return json.loads(p.stdout)

    def read_config(self):
        with open(self.config_file, encoding="utf-8") as f:
            return f.read()

    def config_token(self):
        m = re.search(r"(?m)^token = (\S+)$", self.read_config())
        return m.group(1) if m else None

    def login_cli(self, username="admin", password=ADMIN_PASSWORD, url=None):
        p = self.cli("login", "-u", username, "--password-stdin", url=url or self.d.url,
                     input=password + "\n")
        self.assertExit(p, 0)
        return p

    def assertRequestId(self, p, status):
        """stderr names the HTTP status and the request id, and the daemon logged that
        request id with that status."""
        m = RID_RE.search(p.stderr)
        self.assertIsNotNone(m, p.stderr)
        self.assertEqual(int(m.group(1)), status)
        rid = m.group(2)
        deadline = time.time() + 5           # the access log line may follow the answer
        while True:
            log = [json.loads(l) for l in self.d.read_log().splitlines() if l.startswith("{")]
            if any(l.get("request_id") == rid and l.get("module") == "http" and
                   f" {status} " in l.get("msg", "") for l in log):
                return rid
            if time.time() > deadline:
                self.fail(f"request {rid} with status {status} not in the daemon's access log")
            time.sleep(0.05)

    # ---- version, login, whoami ----

    def test_version(self):
        p = self.cli("version", url=self.d.url)
        self.assertExit(p, 0)
        server = self.req("GET", "/v1/version").json
        self.assertEqual(p.stdout.splitlines()[1],
                         f"server  govcloudd {server['version']}, schema "
                         f"{server['schema_version']}, store {server['store']} ({self.d.url})")
        v = json.loads(self.cli("-o", "json", "version", url=self.d.url).stdout)
        self.assertEqual(v["server"], server)
        self.assertEqual(v["client"]["version"], server["version"])

    def test_login_saves_url_and_token_privately(self):
        p = self.login_cli()
        self.assertEqual(p.stdout.splitlines()[0],
                         f"logged in to {self.d.url} as admin (platform_admin)")
        self.assertIn(f"token saved in {self.config_file}, valid until ", p.stdout)
        self.assertEqual(os.stat(self.config_dir).st_mode & 0o777, 0o700)
        self.assertEqual(os.stat(self.config_file).st_mode & 0o777, 0o600)
        text = self.read_config()
        self.assertRegex(text, rf"(?m)^url = {re.escape(self.d.url)}$")
        token = self.config_token()
        self.assertTrue(token and token.startswith("gct_"), text)
        self.assertNotIn(token, p.stdout + p.stderr)   # the token is never printed
        me = self.req("GET", "/v1/users/me", token=token)
        self.assertEqual(me.status, 200, me)
        self.assertEqual(me.json["username"], "admin")
        # the saved token is used without --token/GOVCLOUD_TOKEN
        p = self.cli("whoami", url=self.d.url)
        self.assertExit(p, 0)
        self.assertEqual(parse_object(p.stdout)["username"], "admin")
        # no leftover temporary files next to the config
        self.assertEqual(os.listdir(self.config_dir), ["config"])

    def test_login_keeps_other_lines_and_json_has_no_token(self):
        os.makedirs(self.config_dir, mode=0o755)
        with open(self.config_file, "w") as f:
            f.write("# my comment\nurl = http://127.0.0.1:1\nfuture_key = 42\n")
        os.chmod(self.config_file, 0o644)
        p = self.cli("-o", "json", "login", "--username", "admin", "--password-stdin",
                     url=self.d.url, input=ADMIN_PASSWORD + "\r\n")
        self.assertExit(p, 0)
        out = json.loads(p.stdout)
        self.assertNotIn("token", out)
        self.assertEqual(out["config_file"], self.config_file)
        self.assertEqual(out["user"]["username"], "admin")
        text = self.read_config()
        self.assertIn("# my comment\n", text)
        self.assertIn("future_key = 42\n", text)
        self.assertEqual(re.findall(r"(?m)^url = (.*)$", text), [self.d.url])
        self.assertNotIn(self.config_token(), p.stdout)
        self.assertEqual(os.stat(self.config_file).st_mode & 0o777, 0o600)
        self.assertEqual(os.stat(self.config_dir).st_mode & 0o777, 0o700)

    def test_login_without_xdg_uses_home_config(self):
        p = self.cli("login", "-u", "admin", "--password-stdin", url=self.d.url,
                     env={"XDG_CONFIG_HOME": None}, input=ADMIN_PASSWORD + "\n")
        self.assertExit(p, 0)
        path = os.path.join(self.home, ".config", "govcloud", "config")
        self.assertIn(f"token saved in {path}", p.stdout)
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        self.assertFalse(os.path.exists(self.config_file))

    def test_login_wrong_password_exit_4(self):
        name = self.uniq("wrongpw")
        self.mkuser(name, "operator")
        p = self.cli("login", "-u", name, "--password-stdin", url=self.d.url,
                     input="Not-The-Passw0rd!\n")
        self.assertExit(p, 4)
        api = self.req("POST", "/v1/tokens", {"username": name, "password": "Not-Right-1!"})
        self.assertEqual(api.status, 401)
        self.assertIn(api.json["detail"], p.stderr)
        self.assertRequestId(p, 401)
        self.assertEqual(p.stdout, "")
        self.assertFalse(os.path.exists(self.config_file))
        # an empty password on stdin is a usage error, nothing is sent
        p = self.cli("login", "-u", name, "--password-stdin", url=self.d.url, input="\n")
        self.assertExit(p, 2)

    def test_whoami(self):
        p = self.run_admin("whoami")
        self.assertExit(p, 0)
        me = self.api_get("/v1/users/me")
        obj = parse_object(p.stdout)
        self.assertEqual(list(obj), list(me))          # the server's field order
        self.assertEqual(obj["username"], "admin")
        self.assertEqual(obj["role"], "platform_admin")
        self.assertEqual(obj["department_id"], "-")    # null shown as -
        self.assertEqual(obj["id"], me["id"])
        self.assertEqual(self.cli_json("whoami"), me)
        # no token at all: 401, exit 4, with a hint
        p = self.cli("whoami", url=self.d.url)
        self.assertExit(p, 4)
        self.assertIn("not logged in", p.stderr)

    def test_token_precedence(self):
        dept = self.mkdept(self.uniq("prec"))
        names = {}
        tokens = {}
        for src in ("env", "flag"):
            names[src] = self.uniq("prec" + src)
            self.mkuser(names[src], "department_user", dept["id"])
            tokens[src] = self.d.login(names[src], USER_PW)
        self.login_cli()   # config file: admin
        bad = "gct_thisTokenIsNotValid0000000000000000000"

        def who(*args, **kw):
            p = self.cli(*args, "whoami", **kw)
            if p.returncode == 0:
                return parse_object(p.stdout)["username"]
            return p.returncode

        u = self.d.url
        self.assertEqual(who(url=u), "admin")
        self.assertEqual(who(url=u, token=tokens["env"]), names["env"])
        self.assertEqual(who("--token", tokens["flag"], url=u, token=tokens["env"]),
                         names["flag"])
        self.assertEqual(who(f"--token={tokens['flag']}", url=u), names["flag"])
        # a bad token in a higher place wins over a good one below it
        self.assertEqual(who(url=u, token=bad), 4)                         # env over config
        self.assertEqual(who("--token", bad, url=u, token=tokens["env"]), 4)  # flag over env
        self.assertEqual(who("--token", tokens["flag"], url=u, token=bad), names["flag"])
        # URL: --url over GOVCLOUD_URL over the config file
        dead = closed_port_url()
        self.assertEqual(who("--url", u, url=dead, token=self.admin), "admin")
        self.assertEqual(who("--url", dead, url=u, token=self.admin), 3)
        self.assertEqual(who(url=dead, token=self.admin), 3)
        self.assertEqual(who(token=self.admin), "admin")        # url from the config file
        # the saved token goes only to the saved URL
        other = u.replace("127.0.0.1", "localhost")
        p = self.cli("whoami", url=other)
        self.assertExit(p, 4)
        self.assertIn(f"the saved token belongs to {u}", p.stderr)
        # a config file readable by others triggers a warning
        os.chmod(self.config_file, 0o644)
        p = self.cli("whoami", url=u)
        self.assertExit(p, 0)
        self.assertIn("chmod 600", p.stderr)

    def test_logout(self):
        self.login_cli()
        token = self.config_token()
        self.assertEqual(self.req("GET", "/v1/users/me", token=token).status, 200)
        p = self.cli("logout", url=self.d.url)
        self.assertExit(p, 0)
        self.assertEqual(p.stdout,
                         f"logged out from {self.d.url}; token removed from the config file\n")
        self.assertEqual(self.req("GET", "/v1/users/me", token=token).status, 401)
        text = self.read_config()
        self.assertNotRegex(text, r"(?m)^\s*token\s*=")
        self.assertNotIn(token, text)
        self.assertRegex(text, rf"(?m)^url = {re.escape(self.d.url)}$")
        self.assertEqual(os.stat(self.config_file).st_mode & 0o777, 0o600)
        p = self.cli("whoami", url=self.d.url)
        self.assertExit(p, 4)
        p = self.cli("logout", url=self.d.url)
        self.assertExit(p, 0)
        self.assertIn("not logged in", p.stdout)

    def test_logout_with_explicit_token_leaves_config(self):
        self.login_cli()
        saved = self.config_token()
        other = self.d.login()
        p = self.cli("logout", url=self.d.url, token=other)
        self.assertExit(p, 0)
        self.assertEqual(self.req("GET", "/v1/users/me", token=other).status, 401)
        self.assertEqual(self.req("GET", "/v1/users/me", token=saved).status, 200)
        self.assertEqual(self.config_token(), saved)
        # a token that is already revoked is still removed from the config file
        self.assertEqual(self.req("DELETE", "/v1/tokens/current", token=saved).status, 204)
        p = self.cli("logout", url=self.d.url)
        self.assertExit(p, 0)
        self.assertIn("already expired or been revoked", p.stdout)
        self.assertIsNone(self.config_token())


    def test_login_prompts_on_terminal_without_echo(self):
        env = self.cli_env(self.d.url)
        rc, out, err, echo_on = self.run_on_terminal(
            ["login"], env, [(b"Username: ", b"admin\n", False),
                             (b"Password: ", ADMIN_PASSWORD.encode() + b"\n", True)])
        self.assertEqual(rc, 0, out + err)
        self.assertIn("Username: admin", out)
        self.assertIn("Password: ", out)
        self.assertNotIn(ADMIN_PASSWORD, out)          # no echo
        self.assertIn(f"logged in to {self.d.url} as admin", out)
        self.assertTrue(echo_on, "the terminal's echo was not restored")
        self.assertTrue(self.config_token())
        # user create asks twice; a mismatch is refused before anything is sent
        name = self.uniq("prompted")
        rc, out, err, echo_on = self.run_on_terminal(
            ["user", "create", "--username", name, "--role", "operator"],
            self.cli_env(self.d.url, self.admin),
            [(b"New password: ", b"First-Passw0rd!\n", True),
             (b"Repeat the password: ", b"Other-Passw0rd!\n", True)])
        self.assertEqual(rc, 2, out + err)
        self.assertIn("do not match", err)
        self.assertNotIn("Passw0rd", out + err)
        self.assertTrue(echo_on)
        r = self.req("GET", f"/v1/users?username={name}", token=self.admin)
        self.assertEqual(r.json["items"], [])

    def test_login_revokes_token_it_cannot_save(self):
        name = self.uniq("nosave")
        self.mkuser(name, "operator")
        with open(os.path.join(self.home, "notadir"), "w"):
            pass
        p = self.cli("login", "-u", name, "--password-stdin", url=self.d.url,
                     env={"XDG_CONFIG_HOME": os.path.join(self.home, "notadir")},
                     input=USER_PW + "\n")
        self.assertExit(p, 1)
        self.assertIn("cannot create", p.stderr)
        self.assertEqual(p.stdout, "")
        ev = self.cli_json("audit", "list", "--actor-name", name, "--all")["items"]
        self.assertEqual([(e["action"], e["outcome"]) for e in ev],
                         [("auth.login", "success"), ("auth.logout", "success")])

    def test_malformed_saved_token_does_not_block_login_or_version(self):
        # a hand-edited config file whose token line cannot be a token (an inline comment:
        # '#' starts a comment only at the start of a line). login must still be able to
        # replace it, and version sends no token at all.
        os.makedirs(self.config_dir, mode=0o700)
        with open(self.config_file, "w") as f:
            f.write(f"url = {self.d.url}\ntoken = gct_old  # the old admin token\n")
        os.chmod(self.config_file, 0o600)
        p = self.cli("version", url=self.d.url)
        self.assertExit(p, 0)
        self.assertIn("server  govcloudd ", p.stdout)
        p = self.cli("login", "-u", "admin", "--password-stdin", url=self.d.url,
                     input=ADMIN_PASSWORD + "\n")
        self.assertExit(p, 0)
        token = self.config_token()
        self.assertTrue(token.startswith("gct_") and token != "gct_old", self.read_config())
        self.assertNotIn("# the old admin token", self.read_config())
        self.assertExit(self.cli("whoami", url=self.d.url), 0)

    def test_login_warns_when_env_token_wins(self):
        p = self.cli("login", "-u", "admin", "--password-stdin", url=self.d.url,
                     token=self.admin, input=ADMIN_PASSWORD + "\n")
        self.assertExit(p, 0)
        self.assertIn("GOVCLOUD_TOKEN is set and takes precedence over the saved token",
                      p.stderr)

    def test_locked_account_and_unlock(self):
        name = self.uniq("locked")
        uid = self.mkuser(name, "operator")["id"]
        status = []
        for _ in range(5):
            r = self.req("POST", "/v1/tokens", {"username": name, "password": "Wrong-Passw0rd!"})
            status.append(r.status)
        self.assertEqual(status[-1], 429, status)
        p = self.cli("login", "-u", name, "--password-stdin", url=self.d.url,
                     input=USER_PW + "\n")
        self.assertExit(p, 1)
        self.assertRegex(p.stderr, r"locked .*until \d{4}-\d\d-\d\dT[\d:.]+Z \(HTTP 429, ")
        self.assertFalse(os.path.exists(self.config_file))
        p = self.run_admin("user", "list", "--username", name)
        _, rows, _ = parse_table(p.stdout)
        self.assertRegex(rows[0]["LOCKED_UNTIL"], r"^\d{4}-")
        p = self.run_admin("user", "update", uid, "--unlock")
        self.assertExit(p, 0)
        self.assertEqual(parse_object(p.stdout)["locked_until"], "-")
        self.login_cli(name, USER_PW)

    def test_user_role_change_to_platform_role(self):
        dept = self.mkdept(self.uniq("roles"))
        uid = self.mkuser(self.uniq("mover"), "department_admin", dept["id"])["id"]
        out = self.cli_json("user", "update", uid, "--role", "operator", "--department-id",
                            "none")                # sends "department_id": null
        self.assertEqual((out["role"], out["department_id"]), ("operator", None))
        self.assertEqual(out, self.api_get(f"/v1/users/{uid}"))
        p = self.run_admin("user", "update", uid, "--role", "department_user")
        self.assertExit(p, 8)                       # a department role needs a department
        self.assertIn("needs a department_id", p.stderr)
        out = self.cli_json("user", "update", uid, "--role", "department_user",
                            "--department-id", dept["id"])
        self.assertEqual((out["role"], out["department_id"]), ("department_user", dept["id"]))

    def test_table_output_is_cut_and_sanitised(self):
        parent = self.mkdept(self.uniq("display"))
        long_name = "广州市政务服务数据管理局信息化建设与运行维护中心第一办公室"   # 29 wide chars
        tricky = "a\u202eb\u0085c\u2028d"
        # the daemon refuses formatting characters in names ...
        r = self.req("POST", "/v1/departments", {"name": tricky, "parent_id": parent["id"]},
                     token=self.admin)
        self.assertProblem(r, 400, "not allowed")
        # ... but descriptions are free text, so the CLI must clean what it shows
        self.mkdept(long_name, parent=parent["id"],
                    description="第一行\n第二行\tx\x1b[2J" + tricky)
        self.mkdept("plain", parent=parent["id"], description=tricky)
        p = self.run_admin("department", "list", "--parent-id", parent["id"])
        self.assertExit(p, 0)
        header, rows, bad = parse_table(p.stdout)
        names = [r["NAME"] for r in rows]
        self.assertEqual(names[0], long_name[:19] + " …")   # 40 cells, ends in an ellipsis
        self.assertEqual(cells(names[0]), 40)
        self.assertEqual(bad, [], p.stdout)
        for ch in ("\u202e", "\u0085", "\u2028", "\x1b"):
            self.assertNotIn(ch, p.stdout)
        out = self.cli_json("department", "list", "--parent-id", parent["id"])
        self.assertEqual([i["name"] for i in out["items"]], [long_name, "plain"])  # full text
        self.assertEqual(out["items"][1]["description"], tricky)
        p = self.run_admin("department", "get", out["items"][1]["id"])
        obj = parse_object(p.stdout)
        self.assertEqual(obj["description"], "a?b?c?d")
        p = self.run_admin("department", "get", out["items"][0]["id"])
        obj = parse_object(p.stdout)
        self.assertEqual(obj["description"], "第一行 第二行 x?[2Ja?b?c?d")
        self.assertNotIn("\x1b", p.stdout)

    def test_filters_are_escaped(self):
        parent = self.mkdept(self.uniq("escaped"))
        d1 = self.mkdept("深圳市 & 南山区=1", parent=parent["id"])
        self.mkdept("深圳市", parent=parent["id"])
        out = self.cli_json("department", "list", "--name", "深圳市 & 南山区=1")
        self.assertEqual([i["id"] for i in out["items"]], [d1["id"]])
        # '+' in a time must reach the server as '+', not as a space
        out = self.cli_json("audit", "list", "--resource-id", d1["id"], "--since",
                            "2000-01-01T08:00:00+08:00")
        self.assertEqual(len(out["items"]), 1, out)

    # ---- departments ----

    def test_department_crud_table_and_json(self):
        code = self.uniq("GZ")
        name = "广州市政务服务数据管理局"
        p = self.run_admin("department", "create", "--name", name, "--code", code,
                           "--description", "市级单位")
        self.assertExit(p, 0)
        obj = parse_object(p.stdout)
        did = obj["id"]
        api = self.api_get(f"/v1/departments/{did}")
        self.assertEqual(list(obj), list(api))
        self.assertEqual(obj["name"], name)
        self.assertEqual(obj["description"], "市级单位")
        self.assertEqual(obj["parent_id"], "-")
        self.assertEqual(obj["version"], "1")

        got = self.cli_json("department", "get", did)
        self.assertEqual(got, api)
        self.assertEqual(list(got), list(api))
        # global options also between the group and the command; UTF-8 kept, 2-space indent
        p = self.cli("department", "-o", "json", "get", "--token", self.admin, did,
                     url=self.d.url)
        self.assertExit(p, 0)
        self.assertEqual(json.loads(p.stdout), api)
        self.assertIn(f'\n  "name": "{name}",\n', p.stdout)
        p = self.run_admin("department", "get", did)
        self.assertExit(p, 0)
        self.assertEqual(parse_object(p.stdout)["name"], name)

        # child, created in json output; json matches the API's GET
        child = self.cli_json("department", "create", "--name", "天河区", "--parent-id", did)
        self.assertEqual(child, self.api_get(f"/v1/departments/{child['id']}"))
        self.assertEqual(child["parent_id"], did)
        self.assertEqual(child["depth"], 1)

        # list by code (table): columns stay aligned with Chinese names
        p = self.run_admin("department", "list", "--parent-id", did)
        self.assertExit(p, 0)
        header, rows, bad = parse_table(p.stdout)
        self.assertEqual(header, ["ID", "NAME", "CODE", "PARENT_ID", "DEPTH", "VERSION"])
        self.assertEqual(len(rows), 1)
        self.assertEqual(rows[0]["NAME"], "天河区")
        self.assertEqual(rows[0]["CODE"], "-")
        self.assertEqual(rows[0]["PARENT_ID"], did)
        self.assertEqual(bad, [], p.stdout)
        p = self.run_admin("department", "list", "--code", code)
        header, rows, bad = parse_table(p.stdout)
        self.assertEqual([r["ID"] for r in rows], [did])
        self.assertEqual(rows[0]["NAME"], name)
        self.assertEqual(bad, [], p.stdout)
        lst = self.cli_json("department", "list", "--code", code)
        self.assertEqual(lst, self.api_get(f"/v1/departments?code={code}"))

        # update with the right version, then with a stale one
        p = self.run_admin("department", "update", did, "--description", "广州市人民政府",
                           "--if-match", "1")
        self.assertExit(p, 0)
        upd = parse_object(p.stdout)
        self.assertEqual(upd["description"], "广州市人民政府")
        self.assertEqual(upd["version"], "2")
        p = self.run_admin("department", "update", did, "--name", "旧名", "--if-match", "1")
        self.assertExit(p, 6)
        self.assertRequestId(p, 412)
        self.assertEqual(self.api_get(f"/v1/departments/{did}")["name"], name)
        upd = self.cli_json("department", "update", did, "--name", "广州市", "--if-match=2")
        self.assertEqual(upd, self.api_get(f"/v1/departments/{did}"))
        self.assertEqual(upd["name"], "广州市")
        self.assertEqual(upd["version"], 3)

        # move the child to the top level with --parent-id root
        moved = self.cli_json("department", "update", child["id"], "--parent-id", "root")
        self.assertIsNone(moved["parent_id"])
        self.assertEqual(moved["depth"], 0)
        top = [i["id"] for i in self.cli_json("department", "list", "--parent-id", "root",
                                               "--all")["items"]]
        self.assertIn(child["id"], top)
        self.assertIn(did, top)
        moved = self.cli_json("department", "update", child["id"], "--parent-id", did)
        self.assertEqual(moved["parent_id"], did)

        # a department with a child cannot be deleted
        p = self.run_admin("department", "delete", did)
        self.assertExit(p, 6)
        self.assertRequestId(p, 409)
        # stale version on delete
        p = self.run_admin("department", "delete", child["id"], "--if-match", "1")
        self.assertExit(p, 6)
        self.assertEqual(self.req("GET", f"/v1/departments/{child['id']}",
                                  token=self.admin).status, 200)
        p = self.run_admin("-o", "json", "department", "delete", child["id"])
        self.assertExit(p, 0)
        self.assertEqual(p.stdout, "")
        p = self.run_admin("department", "delete", did, "--if-match", "3")
        self.assertExit(p, 0)
        self.assertEqual(p.stdout, f"deleted department {did}\n")
        for i in (did, child["id"]):
            self.assertEqual(self.req("GET", f"/v1/departments/{i}", token=self.admin).status,
                             404)
        p = self.run_admin("department", "get", did)
        self.assertExit(p, 5)

    def test_conflict_on_long_chinese_name_is_reported_whole(self):
        parent = self.mkdept(self.uniq("longnames"))
        base = "广州市政务服务数据管理局信息化建设运行维护中心" * 6
        for n in (80, 128):
            name = base[:n]
            with self.subTest(name_chars=n):
                self.mkdept(name, parent=parent["id"])
                api = self.req("POST", "/v1/departments",
                               {"name": name, "parent_id": parent["id"]}, token=self.admin)
                self.assertEqual(api.status, 409, api)
                p = self.run_admin("department", "create", "--name", name, "--parent-id",
                                   parent["id"])
                self.assertExit(p, 6)
                # the daemon's detail names the department (its first 40 characters at least)
                self.assertIn(name[:40], api.json["detail"])
                self.assertIn(name[:40], p.stderr)
                # and the client keeps the status and the request id after it
                self.assertRequestId(p, 409)

    def test_list_all_pages(self):
        parent = self.mkdept(self.uniq("paged"))
        ids = [self.mkdept(f"分页{i}", parent=parent["id"])["id"] for i in range(7)]
        # json: --all joins the pages
        out = self.cli_json("department", "list", "--parent-id", parent["id"], "--limit", "2",
                            "--all")
        self.assertEqual(list(out), ["items", "next_cursor"])
        self.assertIsNone(out["next_cursor"])
        got = [i["id"] for i in out["items"]]
        self.assertEqual(got, ids)                     # each once, in creation order
        # --limit 1: every item its own page
        out = self.cli_json("department", "list", "--parent-id", parent["id"], "--limit", "1",
                            "--all")
        self.assertEqual([i["id"] for i in out["items"]], ids)
        # table: every id on exactly one line, no "more follow" note
        p = self.run_admin("department", "list", "--parent-id", parent["id"], "--limit", "2",
                           "--all")
        self.assertExit(p, 0)
        self.assertEqual(p.stderr, "")
        _, rows, _ = parse_table(p.stdout)
        self.assertEqual([r["ID"] for r in rows], ids)
        # without --all: one page and a note with the cursor of the next
        p = self.run_admin("department", "list", "--parent-id", parent["id"], "--limit", "3")
        self.assertExit(p, 0)
        _, rows, _ = parse_table(p.stdout)
        self.assertEqual([r["ID"] for r in rows], ids[:3])
        m = re.search(r"more departments follow: add --all, or --cursor (\S+) for the next page",
                      p.stderr)
        self.assertIsNotNone(m, p.stderr)
        page2 = self.cli_json("department", "list", "--parent-id", parent["id"], "--limit", "3",
                              "--cursor", m.group(1))
        self.assertEqual([i["id"] for i in page2["items"]], ids[3:6])
        self.assertIsNotNone(page2["next_cursor"])
        # the same for users
        users = [self.mkuser(self.uniq("pg"), "department_user", parent["id"])["id"]
                 for _ in range(3)]
        out = self.cli_json("user", "list", "--department-id", parent["id"], "--limit", "2",
                            "--all")
        self.assertEqual([u["id"] for u in out["items"]], users)

    # ---- users ----

    def test_user_create_update_delete(self):
        dept = self.mkdept(self.uniq("users"))
        name = self.uniq("zhangsan")
        p = self.run_admin("user", "create", "--username", name, "--role", "department_user",
                           "--department-id", dept["id"], "--display-name", "张三",
                           "--password-stdin", input="Zhang-Passw0rd!\n")
        self.assertExit(p, 0)
        obj = parse_object(p.stdout)
        uid = obj["id"]
        self.assertEqual(obj["username"], name)
        self.assertEqual(obj["display_name"], "张三")
        self.assertEqual(obj["department_id"], dept["id"])
        self.assertNotIn("password", "".join(k for k in obj if k != "password_changed_at"))
        self.assertNotIn("Zhang-Passw0rd!", p.stdout + p.stderr)
        utok = self.d.login(name, "Zhang-Passw0rd!")  # the password from stdin works
        self.assertEqual(self.cli_json("user", "get", uid), self.api_get(f"/v1/users/{uid}"))
        p = self.cli("-o", "json", "user", "get", "me", url=self.d.url, token=utok)
        self.assertExit(p, 0)
        self.assertEqual(json.loads(p.stdout)["id"], uid)

        p = self.run_admin("user", "list", "--department-id", dept["id"])
        self.assertExit(p, 0)
        _, rows, _ = parse_table(p.stdout)
        self.assertEqual([(r["ID"], r["USERNAME"], r["DISPLAY_NAME"], r["ROLE"]) for r in rows],
                         [(uid, name, "张三", "department_user")])

        upd = self.cli_json("user", "update", uid, "--display-name", "李四", "--disabled",
                            "true", "--if-match", "1")
        self.assertEqual(upd, self.api_get(f"/v1/users/{uid}"))
        self.assertTrue(upd["disabled"])
        self.assertEqual(upd["display_name"], "李四")
        r = self.req("POST", "/v1/tokens", {"username": name, "password": "Zhang-Passw0rd!"})
        self.assertIn(r.status, (401, 403), r)      # a disabled account cannot log in
        p = self.run_admin("user", "update", uid, "--disabled", "false", "--password-stdin",
                           "--if-match", "2", input="Li-Si-Passw0rd!\n")
        self.assertExit(p, 0)
        self.assertEqual(parse_object(p.stdout)["disabled"], "false")
        self.d.login(name, "Li-Si-Passw0rd!")
        # stale version
        p = self.run_admin("user", "update", uid, "--display-name", "王五", "--if-match", "2")
        self.assertExit(p, 6)
        # a user changes their own password with 'user update me'
        utok = self.d.login(name, "Li-Si-Passw0rd!")
        p = self.cli("user", "update", "me", "--password-stdin", url=self.d.url, token=utok,
                     input="Wang-Wu-Passw0rd!\n")
        self.assertExit(p, 8)                    # the current password is needed
        self.assertIn("current_password", p.stderr)
        p = self.cli("user", "update", "me", "--current-password-stdin", "--password-stdin",
                     url=self.d.url, token=utok, input="Li-Si-Passw0rd!\nWang-Wu-Passw0rd!\n")
        self.assertExit(p, 0)
        self.d.login(name, "Wang-Wu-Passw0rd!")

        p = self.run_admin("user", "delete", uid)
        self.assertExit(p, 0)
        self.assertEqual(p.stdout, f"deleted user {uid}\n")
        self.assertEqual(self.req("GET", f"/v1/users/{uid}", token=self.admin).status, 404)
        self.assertEqual(self.req("GET", "/v1/users/me", token=utok).status, 401)
        p = self.run_admin("user", "delete", uid)
        self.assertExit(p, 5)

    # ---- error mapping ----

    def test_forbidden_not_found_invalid(self):
        dept = self.mkdept(self.uniq("scope"))
        name = self.uniq("du")
        self.mkuser(name, "department_user", dept["id"])
        utok = self.d.login(name, USER_PW)
        p = self.cli("department", "create", "--name", "不许", url=self.d.url, token=utok)
        self.assertExit(p, 7)
        self.assertEqual(p.stdout, "")
        rid = self.assertRequestId(p, 403)
        api = self.req("POST", "/v1/departments", {"name": "不许"}, token=utok)
        self.assertEqual(api.status, 403)
        self.assertIn(api.json["detail"], p.stderr)
        # the denied attempt is audited under the request id the CLI printed
        ev = self.cli_json("audit", "list", "--outcome", "denied", "--actor-name", name, "--all")
        self.assertIn(rid, [e["request_id"] for e in ev["items"]])

        p = self.run_admin("department", "get", MISSING_ID)
        self.assertExit(p, 5)
        self.assertRequestId(p, 404)
        api = self.req("GET", f"/v1/departments/{MISSING_ID}", token=self.admin)
        self.assertIn(api.json["detail"], p.stderr)
        for argv in (["user", "get", MISSING_ID], ["job", "get", MISSING_ID],
                     ["api-key", "delete", MISSING_ID], ["job", "cancel", MISSING_ID],
                     ["department", "update", MISSING_ID, "--name", "x"]):
            self.assertExit(self.run_admin(*argv), 5)
        # an id with a '/' is escaped (%2F), never another path: the API answers 400
        p = self.run_admin("department", "get", "a/b")
        self.assertExit(p, 8)
        self.assertIn("encoded '/'", p.stderr)

        body = {"name": "x", "code": "bad code!"}
        p = self.run_admin("department", "create", "--name", "x", "--code", "bad code!")
        self.assertExit(p, 8)
        self.assertEqual(p.stdout, "")
        self.assertRequestId(p, 400)
        api = self.req("POST", "/v1/departments", body, token=self.admin)
        self.assertEqual(api.status, 400)
        self.assertIn(f"govcloud: error: {api.json['detail']} (HTTP 400, request ", p.stderr)
        p = self.run_admin("department", "create", "--name", "")
        self.assertExit(p, 8)
        self.assertIn("field 'name'", p.stderr)
        p = self.run_admin("job", "submit", "--kind", "test.sleep", "--params",
                           '{"steps": "many"}')
        self.assertExit(p, 8)
        self.assertIn("field 'steps'", p.stderr)

    # ---- API keys ----

    def test_api_keys(self):
        name = self.uniq("backup-script")
        p = self.run_admin("api-key", "create", "--name", name, "--expires-at",
                           "2099-12-31T00:00:00Z")
        self.assertExit(p, 0)
        obj = parse_object(p.stdout)
        key, kid = obj["key"], obj["id"]
        self.assertTrue(key.startswith("gck_"), p.stdout)
        self.assertEqual(obj["expires_at"], "2099-12-31T00:00:00.000Z")
        self.assertIn("shown only this once", p.stderr)
        # the key works as GOVCLOUD_TOKEN and as --token
        p = self.cli("whoami", url=self.d.url, token=key)
        self.assertExit(p, 0)
        self.assertEqual(parse_object(p.stdout)["username"], "admin")
        p = self.cli("--token", key, "-o", "json", "api-key", "list", "--all", url=self.d.url)
        self.assertExit(p, 0)
        listed = json.loads(p.stdout)["items"]
        self.assertIn(kid, [k["id"] for k in listed])
        self.assertNotIn(key, p.stdout)              # the secret is never listed again
        p = self.run_admin("api-key", "list")
        _, rows, _ = parse_table(p.stdout)
        row = [r for r in rows if r["ID"] == kid]
        self.assertEqual(len(row), 1, p.stdout)
        self.assertEqual(row[0]["NAME"], name)
        self.assertNotIn(key, p.stdout)
        p = self.run_admin("api-key", "delete", kid)
        self.assertExit(p, 0)
        self.assertEqual(p.stdout, f"deleted api-key {kid}\n")
        p = self.cli("whoami", url=self.d.url, token=key)
        self.assertExit(p, 4)
        self.assertNotIn(key, p.stderr)
        self.assertNotIn(kid, [k["id"] for k in self.cli_json("api-key", "list", "--all")["items"]])

    # ---- audit ----

    def test_audit_list_filter(self):
        dept = self.mkdept(self.uniq("audited"))
        out = self.cli_json("audit", "list", "--action", "department.create", "--resource-id",
                            dept["id"])
        self.assertEqual(len(out["items"]), 1, out)
        ev = out["items"][0]
        self.assertEqual((ev["action"], ev["resource_id"], ev["actor_name"], ev["outcome"]),
                         ("department.create", dept["id"], "admin", "success"))
        api = self.api_get(f"/v1/audit-events?action=department.create&resource_id={dept['id']}")
        self.assertEqual(out, api)
        p = self.run_admin("audit", "list", "--resource-type", "department", "--resource-id",
                           dept["id"], "--since", "2000-01-01T00:00:00Z")
        self.assertExit(p, 0)
        header, rows, bad = parse_table(p.stdout)
        self.assertEqual(bad, [], p.stdout)
        self.assertEqual(header, ["SEQ", "TIME", "ACTOR", "ACTION",
                                                  "RESOURCE_TYPE", "RESOURCE_ID", "OUTCOME",
                                                  "REASON"])
        self.assertEqual([(r["SEQ"], r["ACTION"], r["RESOURCE_ID"]) for r in rows],
                         [(str(ev["seq"]), "department.create", dept["id"])])
        out = self.cli_json("audit", "list", "--resource-id", dept["id"],
                            "--until", "2000-01-01T00:00:00Z")
        self.assertEqual(out["items"], [])
        allf = self.cli_json("audit", "list", "--outcome", "success", "--limit", "2", "--all")
        self.assertTrue(allf["items"])
        self.assertTrue(all(e["outcome"] == "success" for e in allf["items"]))
        seqs = [e["seq"] for e in allf["items"]]
        self.assertEqual(seqs, sorted(set(seqs)))

    def test_audit_verify_intact(self):
        p = self.run_admin("audit", "verify")
        self.assertExit(p, 0)
        self.assertRegex(p.stdout, r"^audit chain intact: \d+ events\n$")
        out = self.cli_json("audit", "verify")
        self.assertIs(out["intact"], True)

    # ---- jobs ----

    def submit(self, params, token=None):
        p = self.cli("-o", "json", "job", "submit", "--kind", "test.sleep", "--params",
                     json.dumps(params), url=self.d.url, token=token or self.admin)
        self.assertExit(p, 0)
        job = json.loads(p.stdout)
        self.assertEqual(job["kind"], "test.sleep")
        self.assertEqual(job["params"], params)
        return job

    def test_job_submit_and_wait_plain(self):
        p = self.run_admin("job", "submit", "--kind", "test.sleep", "--params",
                           '{"steps": 4, "step_ms": 250}')
        self.assertExit(p, 0)
        obj = parse_object(p.stdout)
        jid = obj["id"]
        self.assertEqual(obj["kind"], "test.sleep")
        self.assertIn(obj["state"], ("queued", "running"))
        p = self.run_admin("job", "wait", jid, "--timeout", "30")
        self.assertExit(p, 0)
        self.assertNotIn("\r", p.stdout)
        self.assertNotIn("\033", p.stdout)
        lines = p.stdout.splitlines()
        self.assertGreaterEqual(len(lines), 2, p.stdout)
        pat = re.compile(rf"^job {jid} (queued|running|succeeded) (\d+)%( .*)?$")
        progress = []
        for line in lines:
            m = pat.match(line)
            self.assertIsNotNone(m, f"unexpected line {line!r}")
            progress.append(int(m.group(2)))
        self.assertEqual(progress, sorted(progress))
        self.assertEqual(len(lines), len(set(lines)), "a line repeated without a change")
        self.assertEqual(lines[-1], f"job {jid} succeeded 100% step 4 of 4")
        job = self.cli_json("job", "get", jid)
        self.assertEqual(job["state"], "succeeded")
        self.assertEqual(job["result"], {"steps_done": 4})
        lst = self.cli_json("job", "list", "--state", "succeeded", "--kind", "test.sleep",
                            "--all")
        self.assertIn(jid, [j["id"] for j in lst["items"]])
        # json output: only the final job
        p = self.run_admin("-o", "json", "job", "wait", jid)
        self.assertExit(p, 0)
        self.assertEqual(json.loads(p.stdout)["state"], "succeeded")

    def test_job_wait_failed_exit_9(self):
        job = self.submit({"steps": 3, "step_ms": 50, "fail_at_step": 2})
        p = self.run_admin("job", "wait", job["id"], "--timeout", "30")
        self.assertExit(p, 9)
        self.assertIn(f"job {job['id']} failed: test job failed at step 2 as asked", p.stderr)
        self.assertRegex(p.stdout.splitlines()[-1], rf"^job {job['id']} failed ")
        p = self.run_admin("-o", "json", "job", "wait", job["id"])
        self.assertExit(p, 9)
        self.assertEqual(json.loads(p.stdout)["state"], "failed")

    def test_job_wait_on_terminal_draws_bar(self):
        job = self.submit({"steps": 5, "step_ms": 300})
        rc, out, err, _ = self.run_on_terminal(["job", "wait", job["id"], "--timeout", "30"],
                                               self.cli_env(self.d.url, self.admin))
        self.assertEqual(rc, 0, out + err)
        self.assertGreaterEqual(out.count("\r"), 3, repr(out))   # redrawn in place
        self.assertIn("\033[K", out)
        self.assertIn("[" + "#" * 24 + "] 100% succeeded", out)
        self.assertRegex(out, r"\[#{0,23}\.{1,24}\]\s+\d+% (queued|running)")
        self.assertNotIn(f"job {job['id']}", out)                 # not the plain lines
        # the last redraw ends the line
        self.assertTrue(out.rstrip("\r\n") != out, repr(out[-40:]))

    def test_job_cancel_and_timeout(self):
        job = self.submit({"steps": 200, "step_ms": 100})
        t = time.time()
        p = self.run_admin("job", "wait", job["id"], "--timeout", "1")
        self.assertExit(p, 1)
        self.assertLess(time.time() - t, 10)
        self.assertIn(f"timed out after 1s waiting for job {job['id']}", p.stderr)
        p = self.run_admin("job", "cancel", job["id"])
        self.assertExit(p, 0)
        obj = parse_object(p.stdout)
        self.assertEqual(obj["id"], job["id"])
        self.assertTrue(obj["cancel_requested"] == "true" or obj["state"] == "cancelled",
                        p.stdout)
        p = self.run_admin("job", "wait", job["id"], "--timeout", "30")
        self.assertExit(p, 9)
        self.assertIn("cancelled", p.stdout.splitlines()[-1])
        self.assertIn(f"job {job['id']} cancelled", p.stderr)
        p = self.run_admin("job", "cancel", job["id"])
        self.assertExit(p, 6)
        self.assertRequestId(p, 409)


# ---------------------------------------------------------------------------------------
# The infrastructure commands against one daemon with hosts on libvirt's test driver
# (test:///default?NAME: an in-process hypervisor, i686, 16 CPUs, 3072 MiB, whose storage
# pool is 'default-pool'). Expected values are read back through the API, not from the CLI.

class CliInfraTest(CliMixin, DaemonTestCase):
    counter = 0

    @classmethod
    def setUpClass(cls):
        cls.files = tempfile.mkdtemp(prefix="govcloud-cli-files-")
        cls.console_dir = tempfile.mkdtemp(prefix="govcloud-cli-console-")
        cls.daemon_extra = ("--set", "jobs.workers=2", "--set", "compute.storage_pool=default-pool",
                            "--set", f"compute.console_log_dir={cls.console_dir}")
        super().setUpClass()
        try:
            t = cls("run")
            t.make_home()
            tag = uuid.uuid4().hex[:8]
            cls.zone = f"cli-{tag}"
            cls.host = t.api("POST", "/v1/hosts", {"name": f"cli-h-{tag}", "zone": cls.zone,
                                                   "uri": f"test:///default?cli-{tag}"})
            cls.dept_name = f"cli-dept-{tag}"
            cls.dept = t.api("POST", "/v1/departments", {"name": cls.dept_name})
            cls.other = t.api("POST", "/v1/departments", {"name": f"cli-other-{tag}"})
            cls.du_name = f"cli-du-{tag}"
            t.api("POST", "/v1/users", {"username": cls.du_name, "password": USER_PW,
                                        "role": "department_user",
                                        "department_id": cls.dept["id"]})
            cls.du = cls.d.login(cls.du_name, USER_PW)
            cls.flavor = t.api("POST", "/v1/flavors", {"name": f"cli-small-{tag}", "vcpus": 1,
                                                       "memory_mib": 128})
            cls.image = t.mkimage(f"cli-tiny-{tag}")
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            shutil.rmtree(cls.files, ignore_errors=True)
            shutil.rmtree(cls.console_dir, ignore_errors=True)

    def setUp(self):
        self.make_home()

    def uniq(self, prefix):
        CliInfraTest.counter += 1
        return f"{prefix}{CliInfraTest.counter}x{uuid.uuid4().hex[:6]}"

    def api(self, method, path, body=None, token=None):
        r = self.d.request(method, path, body, token=token or self.admin)
        self.assertIn(r.status, (200, 201, 202, 204), f"{method} {path}: {r}")
        return r.json

    def wait_api(self, jid, timeout=30):
        deadline = time.time() + timeout
        while True:
            j = self.api("GET", f"/v1/jobs/{jid}")
            if j["state"] in ("succeeded", "failed", "cancelled"):
                return j
            self.assertLess(time.time(), deadline, f"job {jid} did not end: {j}")
            time.sleep(0.05)

    def mkimage(self, name):
        paths = []
        for part in ("vmlinuz", "initrd"):
            path = os.path.join(self.files, f"{name}-{part}")
            with open(path, "wb") as f:
                f.write(os.urandom(2000))
            paths.append(path)
        img = self.api("POST", "/v1/images", {"name": name, "kind": "kernel", "arch": "i686",
                                              "kernel_path": paths[0], "initrd_path": paths[1]})
        self.assertEqual(self.wait_api(img["job_id"])["state"], "succeeded")
        return self.api("GET", f"/v1/images/{img['id']}")

    def mkvm(self, name=None, dept=None):
        """A running VM made through the API, in the class's zone."""
        job = self.api("POST", "/v1/vms", {"name": name or self.uniq("apivm-"),
                                           "department_id": dept or self.dept["id"],
                                           "flavor_id": self.flavor["id"], "zone": self.zone,
                                           "image_id": self.image["id"]})
        self.assertEqual(self.wait_api(job["id"])["state"], "succeeded")
        return self.api("GET", f"/v1/vms/{job['resource_id']}")

    def rmvm(self, vid):
        r = self.d.request("DELETE", f"/v1/vms/{vid}", token=self.admin)
        if r.status == 202:
            self.wait_api(r.json["id"])

    def run_admin(self, *args, **kw):
        return self.cli(*args, url=self.d.url, token=self.admin, **kw)

    def run_du(self, *args, **kw):
        return self.cli(*args, url=self.d.url, token=self.du, **kw)

    def cli_json(self, *args, token=None, **kw):
        p = self.cli("-o", "json", *args, url=self.d.url, token=token or self.admin, **kw)
        self.assertExit(p, 0)
        return json.loads(p.stdout)

    def assertWaitLines(self, p, kind_done):
        """--wait into a pipe: 'job ID STATE N% MESSAGE' lines, ending in succeeded, then
        the object."""
        lines = p.stdout.splitlines()
        jobs = [l for l in lines if l.startswith("job ")]
        self.assertTrue(jobs, p.stdout)
        self.assertRegex(jobs[-1], r"^job \S+ succeeded 100%")
        self.assertEqual(lines[:len(jobs)], jobs, "progress lines come first")
        self.assertEqual(self.api("GET", f"/v1/jobs/{jobs[-1].split()[1]}")["kind"], kind_done)
        return parse_object("\n".join(lines[len(jobs):]).split("\n\n")[0])

    # ---- hosts ----

    def test_host_register_list_update_remove(self):
        name = self.uniq("cli-kvm-")
        uri = f"test:///default?{name}"
        p = self.run_admin("host", "register", name, "--uri", uri, "--zone", "cli-z2",
                           "--description", "测试节点")
        self.assertExit(p, 0)
        obj = parse_object(p.stdout.split("\n\n")[0])
        hid = obj["id"]
        api = self.api("GET", f"/v1/hosts/{hid}")
        self.assertEqual((api["name"], api["uri"], api["zone"], api["description"]),
                         (name, uri, "cli-z2", "测试节点"))
        self.assertEqual(obj["state"], api["state"])
        # the storage pools follow as a table
        pools = p.stdout.split("\nstorage_pools:\n")[1]
        _, rows, bad = parse_table(pools)
        self.assertEqual(bad, [])
        self.assertIn("default-pool", [r["NAME"] for r in rows])

        # get by name and by id: the same object as the API's
        self.assertEqual(self.cli_json("host", "get", name), self.api("GET", f"/v1/hosts/{hid}"))
        self.assertEqual(self.cli_json("host", "get", hid)["id"], hid)
        out = self.cli_json("host", "list", "--zone", "cli-z2", "--state", "connected")
        self.assertEqual([h["id"] for h in out["items"]], [hid])
        p = self.run_admin("host", "list", "--name", name)
        header, rows, bad = parse_table(p.stdout)
        self.assertEqual(bad, [], p.stdout)
        self.assertEqual(header, ["ID", "NAME", "ZONE", "STATE", "MAINTENANCE", "ARCH", "CPUS",
                                  "MEMORY_MIB", "URI"])
        self.assertEqual([(r["ID"], r["NAME"], r["ZONE"], r["MAINTENANCE"], r["CPUS"])
                          for r in rows], [(hid, name, "cli-z2", "false", "16")])

        # maintenance on and off, by name
        out = self.cli_json("host", "update", name, "--maintenance", "on")
        self.assertIs(out["maintenance"], True)
        self.assertIs(self.api("GET", f"/v1/hosts/{hid}")["maintenance"], True)
        ver = out["version"]
        p = self.run_admin("host", "update", name, "--maintenance", "off", "--if-match", ver - 1)
        self.assertExit(p, 6)
        self.assertIn("(HTTP 412, request ", p.stderr)
        self.assertIs(self.api("GET", f"/v1/hosts/{hid}")["maintenance"], True)
        p = self.run_admin("host", "update", name, "--maintenance", "off", "--if-match", ver)
        self.assertExit(p, 0)
        self.assertEqual(parse_object(p.stdout.split("\n\n")[0])["maintenance"], "false")
        # rename by id, then the old name is not found
        new = name + "-b"
        self.assertEqual(self.cli_json("host", "update", hid, "--name", new)["name"], new)
        p = self.run_admin("host", "get", name)
        self.assertExit(p, 5)
        self.assertIn(f"no host is named '{name}'", p.stderr)
        # bad input from the server: a zone that is empty
        p = self.run_admin("host", "update", new, "--zone", "")
        self.assertExit(p, 8)
        self.assertIn("'zone'", p.stderr)
        # a department user sees no hosts at all
        p = self.run_du("host", "list")
        self.assertExit(p, 7)
        self.assertIn("(HTTP 403, request ", p.stderr)
        p = self.run_du("host", "remove", hid)
        self.assertIn(p.returncode, (5, 7), p.stderr)
        self.assertEqual(self.d.request("GET", f"/v1/hosts/{hid}", token=self.admin).status, 200)
        # remove by name
        p = self.run_admin("host", "remove", new)
        self.assertExit(p, 0)
        self.assertEqual(p.stdout, f"deleted host {new}\n")
        self.assertEqual(self.d.request("GET", f"/v1/hosts/{hid}", token=self.admin).status, 404)
        self.assertExit(self.run_admin("host", "remove", hid), 5)

    # ---- flavors and images ----

    def test_flavor_create_get_delete(self):
        name = self.uniq("c2m1g-")
        p = self.run_admin("flavor", "create", name, "--vcpus", "2", "--memory-mib", "1024",
                           "--disk-gib", "3", "--description", "中型")
        self.assertExit(p, 0)
        obj = parse_object(p.stdout)
        api = self.api("GET", f"/v1/flavors/{obj['id']}")
        self.assertEqual((api["name"], api["vcpus"], api["memory_mib"], api["disk_gib"],
                          api["description"]), (name, 2, 1024, 3, "中型"))
        self.assertEqual(self.cli_json("flavor", "get", name), api)
        self.assertEqual(self.cli_json("flavor", "list", "--name", name)["items"], [api])
        p = self.run_admin("flavor", "list", "--all")
        _, rows, bad = parse_table(p.stdout)
        self.assertEqual(bad, [], p.stdout)
        self.assertIn({"ID": api["id"], "NAME": name, "VCPUS": "2", "MEMORY_MIB": "1024",
                       "DISK_GIB": "3", "DESCRIPTION": "中型"}, rows)
        # everybody reads flavors; a department user may not create or delete them
        self.assertEqual(self.cli_json("flavor", "get", name, token=self.du)["id"], api["id"])
        p = self.run_du("flavor", "create", self.uniq("no-"), "--vcpus", "1", "--memory-mib", "64")
        self.assertExit(p, 7)
        self.assertExit(self.run_du("flavor", "delete", name), 7)
        # duplicate name: conflict; a name the server refuses: invalid, with the field
        p = self.run_admin("flavor", "create", name, "--vcpus", "1", "--memory-mib", "64")
        self.assertExit(p, 6)
        self.assertIn(name, p.stderr)
        p = self.run_admin("flavor", "create", "有 空格", "--vcpus", "1", "--memory-mib", "64")
        self.assertExit(p, 8)
        self.assertIn("field 'name'", p.stderr)
        p = self.run_admin("flavor", "delete", name)
        self.assertExit(p, 0)
        self.assertEqual(p.stdout, f"deleted flavor {name}\n")
        self.assertEqual(self.d.request("GET", f"/v1/flavors/{api['id']}",
                                        token=self.admin).status, 404)
        self.assertExit(self.run_admin("flavor", "get", name), 5)

    def test_image_import_wait_and_delete(self):
        name = self.uniq("cli-img-")
        kernel = os.path.join(self.files, name + "-k")
        initrd = os.path.join(self.files, name + "-i")
        for path in (kernel, initrd):
            with open(path, "wb") as f:
                f.write(os.urandom(4096))
        p = self.run_admin("image", "import", name, "--kind", "kernel", "--arch", "i686",
                           "--kernel-path", kernel, "--initrd-path", initrd, "--cmdline",
                           "console=ttyS0 quiet", "--wait", "--timeout", "60")
        self.assertExit(p, 0)
        obj = self.assertWaitLines(p, "image.import")
        api = self.api("GET", f"/v1/images/{obj['id']}")
        self.assertEqual((api["state"], api["size_bytes"], api["cmdline"]),
                         ("active", 8192, "console=ttyS0 quiet"))
        self.assertEqual((obj["state"], obj["sha256"], obj["sm3"]),
                         ("active", api["sha256"], api["sm3"]))
        self.assertRegex(api["sha256"], r"^[0-9a-f]{64}$")
        self.assertEqual(self.cli_json("image", "get", name), api)
        out = self.cli_json("image", "list", "--name", name, "--state", "active", "--kind",
                            "kernel", "--arch", "i686")
        self.assertEqual([i["id"] for i in out["items"]], [api["id"]])
        # without --wait: the image as registered, and where to follow its job
        name2 = self.uniq("cli-img-")
        p = self.run_admin("image", "import", name2, "--kind", "kernel", "--arch", "i686",
                           "--kernel-path", kernel)
        self.assertExit(p, 0)
        obj2 = parse_object(p.stdout)
        self.assertEqual(obj2["state"], "importing")
        self.assertIn(f"job {obj2['job_id']} started: follow it with 'govcloud job wait "
                      f"{obj2['job_id']}'", p.stderr)
        self.assertExit(self.run_admin("job", "wait", obj2["job_id"]), 0)
        self.assertEqual(self.api("GET", f"/v1/images/{obj2['id']}")["state"], "active")
        # a missing file: the import job fails, exit 9 with its error
        name3 = self.uniq("cli-img-")
        p = self.run_admin("image", "import", name3, "--kind", "kernel", "--arch", "i686",
                           "--kernel-path", os.path.join(self.files, "nosuch"), "--wait")
        self.assertExit(p, 9)
        self.assertIn("failed: cannot read", p.stderr)
        self.assertEqual(self.cli_json("image", "get", name3)["state"], "error")
        # json with --wait: only the image
        name4 = self.uniq("cli-img-")
        out = self.cli_json("image", "import", name4, "--kind", "kernel", "--arch", "i686",
                            "--kernel-path", kernel, "--wait")
        self.assertEqual((out["name"], out["state"]), (name4, "active"))
        # department users may not import
        p = self.run_du("image", "import", self.uniq("x-"), "--kind", "kernel", "--arch", "i686",
                        "--kernel-path", kernel)
        self.assertExit(p, 7)
        for n in (name, name2, name3, name4):
            p = self.run_admin("image", "delete", n)
            self.assertExit(p, 0)
            self.assertEqual(p.stdout, f"deleted image {n}\n")
        self.assertEqual(self.d.request("GET", f"/v1/images/{api['id']}",
                                        token=self.admin).status, 404)

    # ---- VMs ----

    def test_vm_lifecycle_by_name(self):
        net = self.uniq("cli-net-")
        self.api("POST", "/v1/networks", {"name": net, "mode": "isolated",
                                          "ipv4_cidr": "10.247.31.0/24"})
        name = self.uniq("web-")
        # the operator's one-liner: names for the flavor, the image, the network, the
        # department; --wait follows the job and shows the VM
        p = self.run_admin("vm", "create", name, "--flavor", self.flavor["name"], "--image",
                           self.image["name"], "--network", net, "--department",
                           self.dept_name, "--zone", self.zone, "--wait")
        self.assertExit(p, 0)
        obj = self.assertWaitLines(p, "vm.create")
        vid = obj["id"]
        vm = self.api("GET", f"/v1/vms/{vid}")
        netobj = self.api("GET", "/v1/networks?name=" + net)["items"][0]
        self.assertEqual((vm["name"], vm["flavor_id"], vm["image_id"], vm["department_id"],
                          vm["host_id"], vm["state"]),
                         (name, self.flavor["id"], self.image["id"], self.dept["id"],
                          self.host["id"], "running"))
        self.assertEqual([n["network_id"] for n in vm["nics"]], [netobj["id"]])
        self.assertEqual((obj["state"], obj["power_state"]), ("running", "running"))
        _, nics, bad = parse_table(p.stdout.split("\nnics:\n")[1])
        self.assertEqual(bad, [])
        self.assertEqual([(r["NETWORK_ID"], r["MAC"], r["IPV4"]) for r in nics],
                         [(netobj["id"], vm["nics"][0]["mac"], "10.247.31.2")])

        # list with filters by name, table and json
        out = self.cli_json("vm", "list", "--host", self.host["name"], "--department",
                            self.dept_name, "--state", "running", "--all")
        self.assertIn(vid, [v["id"] for v in out["items"]])
        self.assertEqual(self.cli_json("vm", "list", "--name", name)["items"],
                         self.api("GET", "/v1/vms?name=" + name)["items"])
        p = self.run_admin("vm", "list", "--name", name)
        header, rows, bad = parse_table(p.stdout)
        self.assertEqual(bad, [], p.stdout)
        self.assertEqual(header, ["ID", "NAME", "STATE", "POWER_STATE", "VCPUS", "MEMORY_MIB",
                                  "HOST_ID", "DRIFT"])
        self.assertEqual([(r["ID"], r["NAME"], r["STATE"], r["VCPUS"]) for r in rows],
                         [(vid, name, "running", "1")])

        # stop --wait shows the stopped VM; start without --wait shows the job
        p = self.run_admin("vm", "stop", name, "--wait")
        self.assertExit(p, 0)
        self.assertEqual(self.assertWaitLines(p, "vm.stop")["state"], "stopped")
        self.assertEqual(self.api("GET", f"/v1/vms/{vid}")["power_state"], "shutoff")
        p = self.run_admin("vm", "start", name)
        self.assertExit(p, 0)
        job = parse_object(p.stdout)
        self.assertEqual((job["kind"], job["resource_id"]), ("vm.start", vid))
        self.assertIn(f"govcloud job wait {job['id']}", p.stderr)
        self.assertExit(self.run_admin("job", "wait", job["id"]), 0)
        self.assertEqual(self.api("GET", f"/v1/vms/{vid}")["state"], "running")
        # reboot, json: the VM only
        out = self.cli_json("vm", "reboot", vid, "--wait")
        self.assertEqual((out["id"], out["state"]), (vid, "running"))
        # on a terminal, --wait draws the progress bar of 'job wait', then the VM
        rc, shown, err, _ = self.run_on_terminal(["vm", "reboot", name, "--wait"],
                                                 self.cli_env(self.d.url, self.admin))
        self.assertEqual(rc, 0, shown + err)
        self.assertIn("\r\033[K", shown)
        self.assertIn("[" + "#" * 24 + "] 100% succeeded", shown)
        self.assertRegex(shown, rf"(?m)^id\s+{vid}\r?$")
        # stop --force is the query force=true: the job's params say so
        job = self.cli_json("vm", "stop", name, "--force")
        self.assertIs(job["params"]["force"], True)
        self.assertEqual(self.wait_api(job["id"])["state"], "succeeded")
        # another job while one runs: a conflict
        # resize the stopped VM to a flavor named by name
        big = self.api("POST", "/v1/flavors", {"name": self.uniq("cli-big-"), "vcpus": 2,
                                               "memory_mib": 256})
        out = self.cli_json("vm", "resize", name, "--flavor", big["name"], "--wait")
        self.assertEqual((out["flavor_id"], out["vcpus"], out["memory_mib"]),
                         (big["id"], 2, 256))
        p = self.run_admin("vm", "resize", name, "--flavor", "no-such-flavor")
        self.assertExit(p, 5)
        self.assertIn("no flavor is named 'no-such-flavor'", p.stderr)
        # starting a running VM twice / resizing a running one: conflicts from the server
        self.assertExit(self.run_admin("vm", "start", name, "--wait"), 0)
        p = self.run_admin("vm", "resize", name, "--flavor", self.flavor["name"])
        self.assertExit(p, 6)
        self.assertIn("(HTTP 409, request ", p.stderr)

        # the console: as is into a pipe, as a JSON string with -o json
        log = os.path.join(self.console_dir, f"{vm['domain_name']}-console.log")
        text = "Welcome to 政务云\r\n\x1b[31mlogin: \x1b[0m"
        with open(log, "wb") as f:
            f.write(text.encode())
        p = self.run_admin("vm", "console", name)
        self.assertExit(p, 0)
        self.assertEqual(p.stdout, text)
        out = self.cli_json("vm", "console", vid)
        self.assertEqual(out, {"vm_id": vid, "console": text})
        # on a terminal, the escape sequences do not reach it
        rc, shown, err, _ = self.run_on_terminal(["vm", "console", name],
                                                 self.cli_env(self.d.url, self.admin))
        self.assertEqual(rc, 0, shown + err)
        self.assertNotIn("\x1b", shown)
        self.assertIn("Welcome to 政务云", shown)
        self.assertIn("?[31mlogin: ?[0m", shown)

        # delete --wait: gone
        p = self.run_admin("vm", "delete", name, "--wait")
        self.assertExit(p, 0)
        self.assertEqual(p.stdout.splitlines()[-1], f"deleted vm {name}")
        self.assertEqual(self.d.request("GET", f"/v1/vms/{vid}", token=self.admin).status, 404)
        p = self.run_admin("vm", "get", vid)
        self.assertExit(p, 5)
        self.assertIn("(HTTP 404, request ", p.stderr)
        p = self.run_admin("vm", "console", name)
        self.assertExit(p, 5)
        self.api("DELETE", f"/v1/networks/{netobj['id']}")
        self.api("DELETE", f"/v1/flavors/{big['id']}")

    def test_vm_create_as_department_user_and_no_start(self):
        name = self.uniq("du-vm-")
        # no --department: the user's own
        p = self.run_du("vm", "create", name, "--flavor", self.flavor["name"], "--image",
                        self.image["id"], "--zone", self.zone, "--no-start", "--wait")
        self.assertExit(p, 0)
        obj = self.assertWaitLines(p, "vm.create")
        vm = self.api("GET", f"/v1/vms/{obj['id']}")
        self.assertEqual((vm["department_id"], vm["state"], vm["power_state"]),
                         (self.dept["id"], "stopped", "shutoff"))
        # the user sees it by name; another department's VM is not found
        self.assertEqual(self.cli_json("vm", "get", name, token=self.du)["id"], vm["id"])
        foreign = self.mkvm(dept=self.other["id"])
        p = self.run_du("vm", "get", foreign["id"])
        self.assertExit(p, 5)
        p = self.run_du("vm", "stop", foreign["name"])
        self.assertExit(p, 5)
        self.assertIn(f"no vm is named '{foreign['name']}'", p.stderr)
        # a host may be named only by platform roles
        p = self.run_du("vm", "create", self.uniq("x-"), "--flavor", self.flavor["name"],
                        "--image", self.image["name"], "--host", self.host["id"])
        self.assertIn(p.returncode, (7, 8), p.stderr)
        # the same name in two departments: the administrator must give the id
        twin = self.mkvm(name=name, dept=self.other["id"])
        p = self.run_admin("vm", "get", name)
        self.assertExit(p, 6)
        self.assertIn(f"more than one vm is named '{name}': give the id", p.stderr)
        self.assertEqual(self.cli_json("vm", "get", name, token=self.du)["id"], vm["id"])
        p = self.run_du("vm", "delete", name, "--wait")
        self.assertExit(p, 0)
        self.assertEqual(self.d.request("GET", f"/v1/vms/{vm['id']}", token=self.admin).status,
                         404)
        for v in (foreign, twin):
            self.rmvm(v["id"])

    def test_vm_with_security_group_and_server_group(self):
        sg = self.uniq("cli-sg-")
        p = self.run_admin("security-group", "create", sg, "--department", self.dept_name,
                           "--description", "web servers")
        self.assertExit(p, 0)
        sgid = parse_object(p.stdout.split("\n\n")[0])["id"]
        self.assertIn("rules: none", p.stdout)
        # rules: add two, remove one; the group shows the rest as a table
        r1 = self.cli_json("security-group", "rule", "add", sg, "--direction", "ingress",
                           "--protocol", "tcp", "--port", "8000", "--port-max", "8080",
                           "--cidr", "10.0.0.0/8")
        self.assertEqual((r1["port_min"], r1["port_max"], r1["cidr"]), (8000, 8080, "10.0.0.0/8"))
        p = self.run_admin("security-group", "rule", "add", sgid, "--direction", "ingress",
                           "--protocol", "icmp", "--cidr", "::/0")
        self.assertExit(p, 0)
        r2 = parse_object(p.stdout)
        self.assertEqual(r2["protocol"], "icmp")
        p = self.run_admin("security-group", "rule", "add", sg, "--direction", "ingress",
                           "--protocol", "tcp", "--port", "22", "--cidr", "10.1.2.3/8")
        self.assertExit(p, 8)
        self.assertIn("host bits", p.stderr)
        p = self.run_admin("security-group", "rule", "remove", sg, r1["id"])
        self.assertExit(p, 0)
        self.assertEqual(p.stdout, f"removed rule {r1['id']}\n")
        self.assertExit(self.run_admin("security-group", "rule", "remove", sg, r1["id"]), 5)
        api = self.api("GET", f"/v1/security-groups/{sgid}")
        self.assertEqual([r["id"] for r in api["rules"]], [r2["id"]])
        p = self.run_admin("security-group", "get", sg)
        self.assertExit(p, 0)
        _, rows, bad = parse_table(p.stdout.split("\nrules:\n")[1])
        self.assertEqual(bad, [])
        self.assertEqual([(r["ID"], r["DIRECTION"], r["PROTOCOL"], r["PORT_MIN"], r["CIDR"])
                          for r in rows], [(r2["id"], "ingress", "icmp", "-", "::/0")])
        self.assertEqual(self.cli_json("security-group", "list", "--name", sg)["items"][0]["id"],
                         sgid)

        # server groups: by id; the department by name
        p = self.run_admin("server-group", "create", self.uniq("cli-ha-"), "--policy",
                           "anti-affinity", "--department", self.dept_name)
        self.assertExit(p, 0)
        grp = parse_object(p.stdout)
        self.assertEqual((grp["policy"], grp["department_id"], grp["members"]),
                         ("anti-affinity", self.dept["id"], "0"))
        out = self.cli_json("server-group", "list", "--department", self.dept_name)
        self.assertIn(grp["id"], [g["id"] for g in out["items"]])
        self.assertEqual(self.cli_json("server-group", "get", grp["id"]),
                         self.api("GET", f"/v1/server-groups/{grp['id']}"))

        # a VM with both, named; the request carries their ids (the test driver cannot
        # apply nwfilters, so the job itself fails: the record shows what was asked)
        job = self.cli_json("vm", "create", self.uniq("cli-sgvm-"), "--flavor",
                            self.flavor["name"], "--image", self.image["name"],
                            "--security-group", sg, "--server-group", grp["id"], "--zone",
                            self.zone, "--department", self.dept["id"])
        self.assertEqual(job["kind"], "vm.create")
        vm = self.api("GET", f"/v1/vms/{job['resource_id']}")
        self.assertEqual((vm["security_groups"], vm["server_group_id"]), ([sgid], grp["id"]))
        self.wait_api(job["id"])
        # in use: conflicts
        p = self.run_admin("security-group", "delete", sg)
        self.assertExit(p, 6)
        p = self.run_admin("server-group", "delete", grp["id"])
        self.assertExit(p, 6)
        self.rmvm(vm["id"])
        p = self.run_admin("server-group", "delete", grp["id"])
        self.assertExit(p, 0)
        self.assertEqual(p.stdout, f"deleted server group {grp['id']}\n")
        p = self.run_admin("security-group", "delete", sg)
        self.assertExit(p, 0)
        self.assertEqual(p.stdout, f"deleted security group {sg}\n")
        self.assertExit(self.run_admin("security-group", "get", sgid), 5)
        # a list item that is not a known name: a usage error before anything is created
        p = self.run_admin("vm", "create", self.uniq("x-"), "--flavor", self.flavor["name"],
                           "--image", self.image["name"], "--security-group", "a,,b")
        self.assertExit(p, 2)
        self.assertIn("empty item in --security-group", p.stderr)

    # ---- volumes ----

    def test_volume_commands(self):
        vm = self.mkvm()
        name = self.uniq("cli-data-")
        p = self.run_admin("volume", "create", name, "--size-gib", "1", "--department",
                           self.dept_name, "--host", self.host["name"], "--wait")
        self.assertExit(p, 0)
        obj = self.assertWaitLines(p, "volume.create")
        vol = obj["id"]
        self.assertEqual((obj["name"], obj["size_gib"], obj["state"], obj["host_id"]),
                         (name, "1", "available", self.host["id"]))
        self.assertEqual(self.cli_json("volume", "get", vol), self.api("GET", f"/v1/volumes/{vol}"))
        p = self.run_admin("volume", "list", "--department", self.dept_name, "--state",
                           "available")
        _, rows, bad = parse_table(p.stdout)
        self.assertEqual(bad, [], p.stdout)
        self.assertIn((vol, name, "available", "-"),
                      [(r["ID"], r["NAME"], r["STATE"], r["VM_ID"]) for r in rows])
        # attach to the VM named by name. libvirt's test driver cannot attach disks
        # (virDomainAttachDeviceFlags; the real attach is tested in test_qemu_vm), so the job
        # may fail: then --wait exits 9 with the job's error, and the job shows which VM the
        # name stood for
        p = self.run_admin("-o", "json", "volume", "attach", vol, "--vm", vm["name"], "--wait")
        self.assertIn(p.returncode, (0, 9), p.stderr)
        if p.returncode == 0:
            out = json.loads(p.stdout)
            self.assertEqual((out["state"], out["vm_id"]), ("in-use", vm["id"]))
            out = self.cli_json("volume", "list", "--vm", vm["name"])
            self.assertEqual([v["id"] for v in out["items"]], [vol])
            # an attached volume can neither grow nor go
            self.assertExit(self.run_admin("volume", "resize", vol, "--size-gib", "2"), 6)
            self.assertExit(self.run_admin("volume", "delete", vol), 6)
            out = self.cli_json("volume", "detach", vol, "--wait")
            self.assertEqual((out["state"], out["vm_id"]), ("available", None))
        else:
            job = json.loads(p.stdout)          # the final job, for scripts
            self.assertEqual((job["kind"], job["state"], job["params"]["vm_id"]),
                             ("volume.attach", "failed", vm["id"]))
            self.assertIn("not supported by the connection driver", job["error"])
            self.assertIn(f"job {job['id']} failed: {job['error']}", p.stderr)
            self.assertEqual(self.api("GET", f"/v1/volumes/{vol}")["state"], "available")
            self.assertEqual(self.cli_json("volume", "list", "--vm", vm["name"])["items"], [])
            p = self.run_admin("volume", "detach", vol)     # not attached: a conflict
            self.assertExit(p, 6)
            self.assertIn("(HTTP 409, request ", p.stderr)
        # grow it; the test driver cannot resize volumes either (virStorageVolResize)
        p = self.run_admin("-o", "json", "volume", "resize", vol, "--size-gib", "2", "--wait")
        self.assertIn(p.returncode, (0, 9), p.stderr)
        out = json.loads(p.stdout)
        if p.returncode == 0:
            self.assertEqual(out["size_gib"], 2)
        else:
            self.assertEqual((out["kind"], out["params"].get("size_gib")), ("volume.resize", 2))
            self.assertIn("not supported by the connection driver", out["error"])
        p = self.run_admin("volume", "resize", vol, "--size-gib", "1")
        self.assertIn(p.returncode, (6, 8), p.stderr)     # shrinking is refused
        self.assertRegex(p.stderr, r"\(HTTP 4(00|09), request ")
        p = self.run_admin("volume", "delete", vol, "--wait")
        self.assertExit(p, 0)
        self.assertEqual(p.stdout.splitlines()[-1], f"deleted volume {vol}")
        self.assertEqual(self.d.request("GET", f"/v1/volumes/{vol}", token=self.admin).status,
                         404)
        # by the department user (its own department), without --wait: the job
        p = self.run_du("volume", "create", self.uniq("cli-du-"), "--size-gib", "1")
        self.assertExit(p, 0)
        job = parse_object(p.stdout)
        self.assertEqual(job["kind"], "volume.create")
        self.assertIn(f"govcloud job wait {job['id']}", p.stderr)
        self.assertEqual(self.wait_api(job["id"])["state"], "succeeded")
        v2 = self.api("GET", f"/v1/volumes/{job['resource_id']}")
        self.assertEqual((v2["department_id"], v2["state"]), (self.dept["id"], "available"))
        # the user may not name a host, nor touch another department's volume
        p = self.run_du("volume", "create", self.uniq("x-"), "--size-gib", "1", "--host",
                        self.host["id"])
        self.assertIn(p.returncode, (7, 8), p.stderr)
        self.rmvm(vm["id"])
        job = self.cli_json("volume", "delete", v2["id"], token=self.du)
        self.assertEqual(job["kind"], "volume.delete")
        self.assertEqual(self.wait_api(job["id"])["state"], "succeeded")

    # ---- networks ----

    def test_network_commands(self):
        name = self.uniq("cli-lan-")
        p = self.run_admin("network", "create", name, "--mode", "isolated", "--ipv4-cidr",
                           "10.247.32.0/24", "--ipv6-cidr", "fd00:247:32::/64", "--department",
                           self.dept_name, "--description", "后端")
        self.assertExit(p, 0)
        obj = parse_object(p.stdout)
        api = self.api("GET", f"/v1/networks/{obj['id']}")
        self.assertEqual((api["name"], api["mode"], api["ipv4_gateway"], api["department_id"],
                          api["description"]),
                         (name, "isolated", "10.247.32.1", self.dept["id"], "后端"))
        shared = self.cli_json("network", "create", self.uniq("cli-shared-"), "--mode", "nat",
                               "--ipv4-cidr", "10.247.33.0/24", "--department", "none")
        self.assertIsNone(shared["department_id"])
        self.assertEqual(self.cli_json("network", "get", name), api)
        out = self.cli_json("network", "list", "--name", name, "--mode", "isolated")
        self.assertEqual([n["id"] for n in out["items"]], [api["id"]])
        p = self.run_admin("network", "list", "--name", name)
        header, rows, bad = parse_table(p.stdout)
        self.assertEqual(bad, [])
        self.assertEqual([(r["NAME"], r["MODE"], r["IPV4_CIDR"], r["ADDRESSES_USED"])
                          for r in rows], [(name, "isolated", "10.247.32.0/24", "0")])
        # the department user sees it, may not create or delete networks
        self.assertEqual(self.cli_json("network", "get", name, token=self.du)["id"], api["id"])
        p = self.run_du("network", "create", self.uniq("x-"), "--mode", "nat", "--ipv4-cidr",
                        "10.247.34.0/24")
        self.assertExit(p, 7)
        self.assertExit(self.run_du("network", "delete", name), 7)
        p = self.run_admin("network", "create", self.uniq("x-"), "--mode", "nat",
                           "--ipv4-cidr", "10.247.35.1/24")
        self.assertExit(p, 8)
        self.assertIn("ipv4_cidr", p.stderr)
        for n in (name, shared["id"]):
            p = self.run_admin("network", "delete", n)
            self.assertExit(p, 0)
            self.assertEqual(p.stdout, f"deleted network {n}\n")
        self.assertExit(self.run_admin("network", "get", name), 5)

    # ---- quotas ----

    def test_quota_show_and_set(self):
        dname = self.uniq("cli-quota-")
        dept = self.api("POST", "/v1/departments", {"name": dname})
        p = self.run_admin("quota", "set", dname, "--vms", "1", "--vcpus", "8")
        self.assertExit(p, 0)
        head, table = p.stdout.split("\n\n")
        self.assertEqual(parse_object(head)["department_id"], dept["id"])
        header, rows, bad = parse_table(table)
        self.assertEqual(bad, [])
        self.assertEqual(header, ["RESOURCE", "LIMIT", "USAGE", "AVAILABLE"])
        self.assertEqual([(r["RESOURCE"], r["LIMIT"], r["USAGE"]) for r in rows][:3],
                         [("vms", "1", "0"), ("vcpus", "8", "0"), ("memory_mib", "-", "0")])
        api = self.api("GET", f"/v1/departments/{dept['id']}/quota")
        self.assertEqual((api["limits"]["vms"], api["limits"]["vcpus"]), (1, 8))
        self.assertEqual(self.cli_json("quota", "show", dname), api)
        self.assertEqual(self.cli_json("quota", "show", dept["id"], token=self.admin), api)
        # the quota is enforced: a second VM is a conflict naming the department
        first = self.mkvm(dept=dept["id"])
        p = self.run_admin("vm", "create", self.uniq("over-"), "--flavor", self.flavor["name"],
                           "--image", self.image["name"], "--department", dname)
        self.assertExit(p, 6)
        self.assertIn("quota exceeded", p.stderr)
        # none removes a limit; an outdated version is refused
        p = self.run_admin("quota", "set", dname, "--vms", "none", "--if-match",
                           api["version"] - 1)
        self.assertExit(p, 6)
        out = self.cli_json("quota", "set", dname, "--vms", "none", "--if-match", api["version"])
        self.assertEqual((out["limits"]["vms"], out["limits"]["vcpus"]), (None, 8))
        # department users read their own quota, may not set it
        own = self.cli_json("quota", "show", self.dept_name, token=self.du)
        self.assertEqual(own["department_id"], self.dept["id"])
        p = self.run_du("quota", "set", self.dept["id"], "--vms", "100")
        self.assertExit(p, 7)
        self.assertExit(self.run_admin("quota", "show", MISSING_ID), 5)
        p = self.run_admin("quota", "show", "no-such-department")
        self.assertExit(p, 5)
        self.assertIn("no department is named 'no-such-department'", p.stderr)
        self.rmvm(first["id"])


# ---------------------------------------------------------------------------------------
# Monitoring, assets, sensors and supervision commands against a real daemon that accepts
# pushes (its receiver pushes to itself) and test samples (to raise alarms).

class CliOpsTest(CliMixin, DaemonTestCase):
    daemon_extra = ("--set", "tsdb.test_ingest=true", "--set", "alarm.evaluation_interval=1",
                    "--set", "supervision.accept_pushes=true",
                    "--set", "supervision.push_interval=1",
                    "--set", "supervision.asset_sync_interval=1")
    counter = 0

    def setUp(self):
        self.make_home()

    def uniq(self, prefix):
        CliOpsTest.counter += 1
        return f"{prefix}{CliOpsTest.counter}x{uuid.uuid4().hex[:6]}"

    def run_admin(self, *args, **kw):
        return self.cli(*args, url=self.d.url, token=self.admin, **kw)

    def cli_json(self, *args, **kw):
        p = self.run_admin("-o", "json", *args, **kw)
        self.assertExit(p, 0)
        return json.loads(p.stdout)

    def api(self, method, path, body=None):
        return self.req(method, path, body, token=self.admin)

    def assertApiError(self, p, code, method, path, body=None):
        """The CLI failed with exit code `code` and printed the detail the API gives for the
        same request."""
        self.assertExit(p, code)
        r = self.api(method, path, body)
        self.assertGreaterEqual(r.status, 400, r)
        self.assertIn(r.json["detail"], p.stderr)
        self.assertIn(f"(HTTP {r.status}, request ", p.stderr)

    def wait_for(self, what, fn, timeout=20):
        deadline = time.time() + timeout
        while True:
            v = fn()
            if v:
                return v
            if time.time() > deadline:
                self.fail(f"timed out waiting for {what}")
            time.sleep(0.2)

    def inject(self, metric, labels, value):
        r = self.api("POST", "/v1/metrics/test-samples",
                     {"samples": [{"metric": metric, "labels": labels,
                                   "t_ms": int(time.time() * 1000), "value": value}],
                      "flush": True})
        self.assertEqual(r.status, 200, r)

    # ---- alarm rules, alarms, silences ----

    def test_alarm_rule_round_trip(self):
        name = self.uniq("cli-rule-")
        p = self.run_admin("alarm-rule", "create", name, "--selector", 'gc_test_cli_r{job="a"}',
                           "--op", ">=", "--threshold", "0.75", "--severity", "warning",
                           "--for-seconds", "30")
        self.assertExit(p, 0)
        o = parse_object(p.stdout)
        self.assertEqual((o["name"], o["op"], o["threshold"], o["for_seconds"], o["version"]),
                         (name, ">=", "0.75", "30", "1"))
        rid = o["id"]
        listed = self.cli_json("alarm-rule", "list", "--severity", "warning", "--all")
        self.assertEqual([r["name"] for r in listed["items"] if r["id"] == rid], [name])
        self.assertTrue(all(r["severity"] == "warning" for r in listed["items"]))
        p = self.run_admin("alarm-rule", "list", "--kind", "metric", "--limit", "500")
        self.assertExit(p, 0)
        names, rows, bad = parse_table(p.stdout)
        self.assertEqual(bad, [])
        self.assertEqual(names[:4], ["ID", "NAME", "KIND", "SEVERITY"])
        self.assertIn({"ID": rid, "THRESHOLD": "0.75"},
                      [{"ID": r["ID"], "THRESHOLD": r["THRESHOLD"]} for r in rows])
        self.assertEqual(self.cli_json("alarm-rule", "get", rid), self.api(
            "GET", f"/v1/alarm-rules/{rid}").json)
        got = self.cli_json("alarm-rule", "update", rid, "--threshold", "2",
                            "--enabled", "false", "--if-match", "1")
        self.assertEqual((got["threshold"], got["enabled"], got["version"]), (2, False, 2))
        p = self.run_admin("alarm-rule", "update", rid, "--threshold", "3", "--if-match", "1")
        self.assertExit(p, 6)
        self.assertEqual(self.api("GET", f"/v1/alarm-rules/{rid}").json["threshold"], 2)
        # bad input: the API's message and exit code 8; a bad number never leaves the client
        p = self.run_admin("alarm-rule", "create", self.uniq("bad-"), "--selector", "x{",
                           "--op", ">", "--threshold", "1", "--severity", "info")
        self.assertApiError(p, 8, "POST", "/v1/alarm-rules",
                            {"name": "bad-x", "selector": "x{", "op": ">", "threshold": 1,
                             "severity": "info"})
        p = self.run_admin("alarm-rule", "update", rid, "--threshold", "lots")
        self.assertExit(p, 2)
        self.assertIn("expected a number", p.stderr)
        # built-in rules are disabled, not deleted
        p = self.run_admin("alarm-rule", "delete", "00000000-0000-7000-8000-000000000001")
        self.assertApiError(p, 6, "DELETE", "/v1/alarm-rules/00000000-0000-7000-8000-000000000001")
        p = self.run_admin("alarm-rule", "delete", rid)
        self.assertExit(p, 0)
        self.assertEqual(p.stdout, f"deleted alarm rule {rid}\n")
        self.assertExit(self.run_admin("alarm-rule", "get", rid), 5)

    def test_alarm_list_get_ack(self):
        name = self.uniq("cli-alarm-")
        job = uuid.uuid4().hex[:8]
        rule = self.cli_json("alarm-rule", "create", name, "--selector",
                             f'gc_test_cli_a{{job="{job}"}}', "--op", ">", "--threshold", "1",
                             "--severity", "minor")
        self.inject("gc_test_cli_a", {"job": job}, 5)
        alarm = self.wait_for("the alarm", lambda: self.cli_json(
            "alarm", "list", "--rule-id", rule["id"], "--status", "firing")["items"])[0]
        self.assertEqual((alarm["rule_name"], alarm["value"]), (name, 5))
        p = self.run_admin("alarm", "list", "--status", "firing", "--limit", "500")
        self.assertExit(p, 0)
        _, rows, bad = parse_table(p.stdout)
        self.assertEqual(bad, [])
        row = [r for r in rows if r["ID"] == alarm["id"]]
        self.assertEqual(len(row), 1, p.stdout)
        self.assertEqual((row[0]["STATUS"], row[0]["SEVERITY"], row[0]["RULE"],
                          row[0]["ACKED_BY"]), ("firing", "minor", name, "-"))
        p = self.run_admin("alarm", "get", alarm["id"])
        self.assertExit(p, 0)
        self.assertEqual(parse_object(p.stdout)["status"], "firing")
        p = self.run_admin("alarm", "ack", alarm["id"], "--comment", "看一下")
        self.assertExit(p, 0)
        o = parse_object(p.stdout)
        self.assertEqual((o["acknowledged_by"], o["ack_comment"]), ("admin", "看一下"))
        self.assertEqual(self.api("GET", f"/v1/alarms/{alarm['id']}").json["acknowledged_by"],
                         "admin")
        p = self.run_admin("alarm", "ack", alarm["id"])
        self.assertApiError(p, 6, "POST", f"/v1/alarms/{alarm['id']}/ack", {})
        self.assertExit(self.run_admin("alarm", "get", MISSING_ID), 5)
        self.assertExit(self.run_admin("alarm", "list", "--status", "burning"), 2)
        self.api("DELETE", f"/v1/alarm-rules/{rule['id']}")

    def test_silences(self):
        p = self.run_admin("silence", "create", "--match", "alertname=vm-down,vm_id=v1",
                           "--comment", "planned work", "--duration", "600")
        self.assertExit(p, 0)
        o = parse_object(p.stdout)
        self.assertEqual(o["state"], "active")
        self.assertEqual(json.loads(o["matchers"]), {"alertname": "vm-down", "vm_id": "v1"})
        listed = self.cli_json("silence", "list", "--all")["items"]
        self.assertEqual([s["state"] for s in listed if s["id"] == o["id"]], ["active"])
        p = self.run_admin("silence", "delete", o["id"])
        self.assertExit(p, 0)
        listed = self.cli_json("silence", "list", "--all")["items"]
        self.assertEqual([s["state"] for s in listed if s["id"] == o["id"]], ["expired"])
        # a matcher without '=' is refused before anything is sent
        p = self.run_admin("silence", "create", "--match", "alertname", "--comment", "c",
                           "--duration", "600")
        self.assertExit(p, 2)
        self.assertIn("expected NAME=VALUE", p.stderr)
        # no end: the API says what is missing
        p = self.run_admin("silence", "create", "--match", "alertname=x", "--comment", "c")
        self.assertApiError(p, 8, "POST", "/v1/silences",
                            {"matchers": {"alertname": "x"}, "comment": "c"})

    # ---- checks, availability, maintenance windows, notification channels ----

    def test_check_round_trip_and_availability(self):
        dept = self.mkdept(self.uniq("检查部门"), code=self.uniq("chk"))
        name = self.uniq("chk-")
        p = self.run_admin("check", "create", name, "--kind", "tcp", "--host", "127.0.0.1",
                           "--port", str(self.d.port), "--interval", "1",
                           "--department", dept["name"])
        self.assertExit(p, 0)
        o = parse_object(p.stdout)
        self.assertEqual((o["name"], o["kind"], o["department_id"], o["port"]),
                         (name, "tcp", dept["id"], str(self.d.port)))
        cid = o["id"]
        up = self.wait_for("the first probe", lambda: self.cli_json(
            "check", "get", cid)["status"].get("up"))
        self.assertIs(up, True)
        p = self.run_admin("check", "list", "--department", dept["id"], "--kind", "tcp")
        self.assertExit(p, 0)
        _, rows, bad = parse_table(p.stdout)
        self.assertEqual(bad, [])
        self.assertEqual([(r["ID"], r["UP"], r["INTERVAL_S"]) for r in rows],
                         [(cid, "true", "1")])
        got = self.cli_json("check", "update", cid, "--interval", "5", "--if-match", "1")
        self.assertEqual((got["interval_seconds"], got["version"]), (5, 2))
        self.assertExit(self.run_admin("check", "update", cid, "--enabled", "false",
                                       "--if-match", "1"), 6)
        # availability of the check, as the API computes it
        a = self.cli_json("availability", "show", "--scope", "check", "--id", cid)
        api = self.api("GET", f"/v1/availability?scope=check&id={cid}").json
        self.assertEqual((a["scope"], a["id"], a["availability_text"]),
                         (api["scope"], api["id"], api["availability_text"]))
        p = self.run_admin("availability", "report", "--year", "2026", "--month", "2",
                           "--target", "99.9")
        self.assertExit(p, 0)
        head, _, table = p.stdout.partition("\nperiods:\n")
        self.assertEqual(parse_object(head)["target_percent"], "99.9")
        names, rows, bad = parse_table(table)
        self.assertEqual(bad, [])
        self.assertEqual(names[:2], ["PERIOD", "AVAILABILITY_%"])
        self.assertEqual([r["PERIOD"] for r in rows], [f"2026-02-{d:02d}" for d in range(1, 29)])
        p = self.run_admin("availability", "show", "--scope", "vm")
        self.assertApiError(p, 8, "GET", "/v1/availability?scope=vm")
        self.assertExit(self.run_admin("availability", "report", "--year", "2026",
                                       "--month", "13"), 2)
        # an http check without a URL
        p = self.run_admin("check", "create", self.uniq("h-"), "--kind", "http",
                           "--department", dept["id"])
        self.assertApiError(p, 8, "POST", "/v1/checks",
                            {"name": "h-x", "kind": "http", "department_id": dept["id"]})
        p = self.run_admin("check", "delete", cid)
        self.assertExit(p, 0)
        self.assertExit(self.run_admin("check", "get", cid), 5)

    def test_maintenance_windows(self):
        p = self.run_admin("maintenance-window", "create", "--scope", "platform",
                           "--starts-at", "2026-12-01T01:00:00Z",
                           "--ends-at", "2026-12-01T03:00:00Z", "--description", "升级存储")
        self.assertExit(p, 0)
        o = parse_object(p.stdout)
        self.assertEqual((o["scope"], o["description"]), ("platform", "升级存储"))
        p = self.run_admin("maintenance-window", "list", "--scope", "platform")
        self.assertExit(p, 0)
        _, rows, bad = parse_table(p.stdout)
        self.assertEqual(bad, [])
        self.assertIn((o["id"], "升级存储"), [(r["ID"], r["DESCRIPTION"]) for r in rows])
        self.assertExit(self.run_admin("maintenance-window", "delete", o["id"]), 0)
        self.assertNotIn(o["id"], [w["id"] for w in self.cli_json(
            "maintenance-window", "list", "--all")["items"]])
        body = {"scope": "platform", "starts_at": "2026-12-01T03:00:00Z",
                "ends_at": "2026-12-01T01:00:00Z"}
        p = self.run_admin("maintenance-window", "create", "--scope", "platform",
                           "--starts-at", body["starts_at"], "--ends-at", body["ends_at"])
        self.assertApiError(p, 8, "POST", "/v1/maintenance-windows", body)
        self.assertExit(self.run_admin("maintenance-window", "create", "--scope", "platform",
                                       "--starts-at", "tomorrow", "--ends-at",
                                       body["ends_at"]), 2)

    def test_notification_channels(self):
        name = self.uniq("hook-")
        ch = self.cli_json("notification-channel", "create", name, "--url",
                           "http://127.0.0.1:9/hook", "--enabled", "false")
        self.assertEqual((ch["name"], ch["kind"], ch["enabled"]), (name, "webhook", False))
        p = self.run_admin("notification-channel", "list", "--kind", "webhook")
        self.assertExit(p, 0)
        _, rows, bad = parse_table(p.stdout)
        self.assertEqual(bad, [])
        self.assertIn((ch["id"], name, "false"), [(r["ID"], r["NAME"], r["ENABLED"])
                                                  for r in rows])
        self.assertExit(self.run_admin("notification-channel", "delete", ch["id"]), 0)
        self.assertExit(self.run_admin("notification-channel", "delete", ch["id"]), 5)
        p = self.run_admin("notification-channel", "create", name, "--url", "ftp://x/")
        self.assertApiError(p, 8, "POST", "/v1/notification-channels",
                            {"name": name, "url": "ftp://x/"})

    # ---- metrics ----

    def test_metric_series_and_query(self):
        job = uuid.uuid4().hex[:8]
        t = int(time.time()) - 120
        samples = [{"metric": "gc_test_cli_m", "labels": {"job": job, "inst": inst},
                    "t_ms": (t + i) * 1000, "value": v * (i + 1)}
                   for inst, v in (("a", 1), ("b,c", 10)) for i in range(3)]
        r = self.api("POST", "/v1/metrics/test-samples", {"samples": samples, "flush": True})
        self.assertEqual(r.status, 200, r)
        got = self.cli_json("metric", "series", "--metric", "gc_test_cli_m", "--match",
                            f'job="{job}"', "--all")["items"]
        self.assertEqual(sorted(s["labels"]["inst"] for s in got), ["a", "b,c"])
        # a comma inside quotes is part of the value; the matchers all hold
        got = self.cli_json("metric", "series", "--match", f'job="{job}",inst="b,c"')["items"]
        self.assertEqual([s["labels"]["inst"] for s in got], ["b,c"])
        q = self.cli_json("metric", "query", "--metric", "gc_test_cli_m", "--match",
                          f'job="{job}",inst!="a"', "--start", str(t), "--end", str(t + 60),
                          "--step", "1m", "--agg", "max")
        self.assertEqual(q["agg"], "max")
        self.assertEqual([(s["labels"]["inst"], [v for _, v in s["points"]])
                          for s in q["series"]], [("b,c", [30])])
        p = self.run_admin("metric", "query", "--metric", "gc_test_cli_m", "--match",
                           f'job="{job}"', "--start", str(t), "--end", str(t + 60),
                           "--step", "60", "--agg", "sum")
        self.assertExit(p, 0)
        _, _, table = p.stdout.partition("\nseries:\n")
        names, rows, bad = parse_table(table)
        self.assertEqual((names, bad), (["LABELS", "POINTS"], []))
        self.assertEqual(sorted(json.loads(r["POINTS"])[0][1] for r in rows), [6, 60])
        p = self.run_admin("metric", "query", "--metric", "gc_test_cli_m", "--step", "soon")
        self.assertApiError(p, 8, "GET", "/v1/metrics/query?metric=gc_test_cli_m&step=soon")

    # ---- assets ----

    def write(self, name, text):
        path = os.path.join(self.home, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def test_asset_import_list_update_history_delete(self):
        sn = uuid.uuid4().hex[:10]
        before = len(self.cli_json("asset", "list", "--all")["items"])
        bad = self.write("bad.csv", "kind,name,serial_number,location.u\n"
                                    f"server,s1,{sn}a,99\nrack,r1,,70\nserver,s2,{sn}b,3\n")
        p = self.run_admin("asset", "import", bad)
        self.assertExit(p, 8)
        self.assertIn("row 1, field location.u: 99 is above 60", p.stderr)
        self.assertIn("row 2, field location.u: 70 is above 60", p.stderr)
        self.assertEqual(len(self.cli_json("asset", "list", "--all")["items"]), before)
        good = self.write("good.csv", "kind,name,serial_number,location.u,domestic.flag\n"
                                      f"server,s1,{sn}a,9,true\nserver,s2,{sn}b,3,false\n")
        p = self.run_admin("asset", "import", good)
        self.assertExit(p, 0)
        head, _, table = p.stdout.partition("\nrows:\n")
        self.assertEqual(parse_object(head)["created"], "2")
        _, rows, bad_cells = parse_table(table)
        self.assertEqual(bad_cells, [])
        self.assertEqual([(r["ROW"], r["RESULT"]) for r in rows], [("1", "created"),
                                                                  ("2", "created")])
        aid = rows[0]["ID"]
        # the same rows again from standard input as JSON: unchanged
        doc = json.dumps([{"kind": "server", "name": "s1", "serial_number": f"{sn}a",
                           "location": {"u": 9}, "domestic": {"flag": True}}])
        again = self.cli_json("asset", "import", "-", input=doc)
        self.assertEqual((again["unchanged"], again["rows"][0]["id"]), (1, aid))
        p = self.run_admin("asset", "list", "--source", "imported", "--domestic", "true",
                           "--kind", "server", "--all")
        self.assertExit(p, 0)
        _, rows, bad_cells = parse_table(p.stdout)
        self.assertEqual(bad_cells, [])
        self.assertIn((aid, "s1", "true"), [(r["ID"], r["NAME"], r["DOMESTIC"]) for r in rows])
        self.assertNotIn(f"{sn}b", [r["SERIAL_NUMBER"] for r in rows])
        got = self.cli_json("asset", "update", aid, "--manufacturer", "华为", "--location",
                            '{"room": "A101", "u": 12}', "--if-match", "1")
        self.assertEqual((got["manufacturer"], got["location"], got["version"]),
                         ("华为", {"room": "A101", "u": 12}, 2))
        self.assertExit(self.run_admin("asset", "update", aid, "--model", "x",
                                       "--if-match", "1"), 6)
        p = self.run_admin("asset", "update", aid, "--location", "{room")
        self.assertExit(p, 2)
        self.assertIn("not JSON", p.stderr)
        p = self.run_admin("asset", "update", aid, "--location", '{"u": 99}')
        self.assertApiError(p, 8, "PATCH", f"/v1/assets/{urllib.parse.quote(aid)}",
                            {"location": {"u": 99}})
        p = self.run_admin("asset", "get", aid)
        self.assertExit(p, 0)
        self.assertEqual(parse_object(p.stdout)["manufacturer"], "华为")
        hist = self.cli_json("asset", "history", aid)["items"]
        self.assertEqual([h["op"] for h in hist], ["create", "update"])
        self.assertEqual(hist[1]["changes"]["manufacturer"], {"old": None, "new": "华为"})
        p = self.run_admin("asset", "history", aid, "--limit", "1")
        self.assertExit(p, 0)
        self.assertIn("more changes follow", p.stderr)
        self.assertExit(self.run_admin("asset", "delete", aid), 0)
        self.assertExit(self.run_admin("asset", "get", aid), 5)
        p = self.run_admin("asset", "import", os.path.join(self.home, "missing.csv"))
        self.assertExit(p, 2)
        self.assertIn("cannot open", p.stderr)

    def test_snmp_devices(self):
        cred = '{"version": "2c", "community": "s3cret-community"}'
        p = self.run_admin("asset", "snmp-device", "create", "--address", "127.0.0.1",
                           "--port", str(free_udp_port()), "--kind", "network_device",
                           "--credentials", cred, "--timeout-ms", "300", "--enabled", "false")
        self.assertExit(p, 0)
        self.assertNotIn("s3cret", p.stdout)
        did = parse_object(p.stdout)["id"]
        dev = self.cli_json("asset", "snmp-device", "get", did)
        self.assertEqual(dev["credentials"].get("secret_set"), True)
        p = self.run_admin("asset", "snmp-device", "list", "--kind", "network_device")
        self.assertExit(p, 0)
        _, rows, bad = parse_table(p.stdout)
        self.assertEqual(bad, [])
        self.assertIn(did, [r["ID"] for r in rows])
        got = self.cli_json("asset", "snmp-device", "update", did, "--timeout-ms", "200",
                            "--if-match", "1")
        self.assertEqual((got["timeout_ms"], got["version"]), (200, 2))
        # nobody answers there: 409 with the reason
        p = self.run_admin("asset", "snmp-device", "discover", did)
        self.assertExit(p, 6)
        self.assertIn("(HTTP 409, request ", p.stderr)
        self.assertIn(self.cli_json("asset", "snmp-device", "get", did)["last_error"][:20],
                      p.stderr)
        p = self.run_admin("asset", "snmp-device", "create", "--address", "127.0.0.1",
                           "--kind", "server", "--credentials", '{"version": "9"}')
        self.assertApiError(p, 8, "POST", "/v1/assets/snmp-devices",
                            {"address": "127.0.0.1", "kind": "server",
                             "credentials": {"version": "9"}})
        self.assertExit(self.run_admin("asset", "snmp-device", "delete", did), 0)
        self.assertExit(self.run_admin("asset", "snmp-device", "get", did), 5)

    # ---- sensors ----

    def test_sensors_and_profiles(self):
        p = self.run_admin("sensor", "profile", "list")
        self.assertExit(p, 0)
        _, rows, bad = parse_table(p.stdout)
        self.assertEqual(bad, [])
        self.assertIn(("modbus-th-sensor", "modbus"), [(r["NAME"], r["DRIVER"]) for r in rows])
        prof = self.cli_json("sensor", "profile", "get", "modbus-th-sensor")
        self.assertEqual(prof["driver"], "modbus")
        p = self.run_admin("sensor", "profile", "get", "modbus-th-sensor")
        self.assertExit(p, 0)
        self.assertIn("\nreadings:\n", p.stdout)
        good = dict(prof)
        good.pop("source", None)
        good["name"] = "cli-check"
        self.assertEqual(self.cli_json("sensor", "profile", "check",
                                       self.write("p.json", json.dumps(good)))["name"],
                         "cli-check")
        broken = dict(good, readings=[dict(good["readings"][0], register=-5)])
        path = self.write("bad.json", json.dumps(broken))
        p = self.run_admin("sensor", "profile", "check", path)
        self.assertApiError(p, 8, "POST", "/v1/sensors/profiles/check", broken)

        name = self.uniq("th-")
        p = self.run_admin("sensor", "create", name, "--driver", "modbus", "--address",
                           "127.0.0.1", "--port", str(closed_tcp_port()), "--profile",
                           "modbus-th-sensor", "--room", "A101", "--room-class", "A",
                           "--credentials", '{"unit_id": 3}', "--timeout-ms", "300")
        self.assertExit(p, 0)
        o = parse_object(p.stdout)
        self.assertEqual((o["name"], o["room_class"], json.loads(o["credentials"])),
                         (name, "A", {"unit_id": 3}))
        sid = o["id"]
        rd = self.wait_for("a failed poll", lambda: (lambda r: r if r["checked_at"] else None)(
            self.cli_json("sensor", "readings", sid)))
        self.assertIs(rd["up"], False)
        p = self.run_admin("sensor", "readings", sid)
        self.assertExit(p, 0)
        self.assertEqual(parse_object(p.stdout.split("\n\n")[0])["up"], "false")
        p = self.run_admin("sensor", "list", "--room", "A101", "--driver", "modbus")
        self.assertExit(p, 0)
        _, rows, bad = parse_table(p.stdout)
        self.assertEqual(bad, [])
        self.assertEqual([(r["ID"], r["UP"]) for r in rows if r["ID"] == sid], [(sid, "false")])
        got = self.cli_json("sensor", "update", sid, "--room", "B202", "--thresholds",
                            '{"temperature": {"upper_critical": 30}}', "--if-match", "1")
        self.assertEqual((got["room"], got["version"]), ("B202", 2))
        p = self.run_admin("sensor", "create", self.uniq("s-"), "--driver", "snmp",
                           "--address", "127.0.0.1", "--profile", "modbus-th-sensor")
        self.assertApiError(p, 8, "POST", "/v1/sensors",
                            {"name": "s-x", "driver": "snmp", "address": "127.0.0.1",
                             "profile": "modbus-th-sensor"})
        self.assertExit(self.run_admin("sensor", "delete", sid, "--if-match", "1"), 6)
        self.assertExit(self.run_admin("sensor", "delete", sid, "--if-match", "2"), 0)
        self.assertExit(self.run_admin("sensor", "get", sid), 5)

    # ---- supervision ----

    def test_supervision_pull(self):
        sn = uuid.uuid4().hex[:10]
        self.cli_json("asset", "import", "-", input=json.dumps(
            [{"kind": "rack", "name": f"pull-{sn}", "asset_tag": sn}]))
        snap = self.api("GET", "/v1/supervision/asset").json
        p = self.run_admin("supervision", "pull", "asset")
        self.assertExit(p, 0)
        lines = [json.loads(l) for l in p.stdout.splitlines()]
        self.assertEqual(lines, snap["records"])
        self.assertIn(f"next cursor: {snap['next_cursor']}", p.stderr)
        # page by page with --all: the same records
        p = self.run_admin("supervision", "pull", "asset", "--limit", "1", "--all")
        self.assertExit(p, 0)
        self.assertEqual([json.loads(l) for l in p.stdout.splitlines()], snap["records"])
        got = self.cli_json("supervision", "pull", "asset", "--limit", "1", "--all")
        self.assertEqual((got["records"], got["more"]), (snap["records"], False))
        # a cursor file: first a snapshot, then only what changed
        cur = os.path.join(self.home, "asset.cursor")
        self.assertExit(self.run_admin("supervision", "pull", "asset", "--cursor-file", cur), 0)
        p = self.run_admin("supervision", "pull", "asset", "--cursor-file", cur)
        self.assertExit(p, 0)
        self.assertEqual(p.stdout, "")
        self.cli_json("asset", "import", "-", input=json.dumps(
            [{"kind": "rack", "name": f"pull2-{sn}", "asset_tag": sn + "2"}]))
        p = self.run_admin("supervision", "pull", "asset", "--cursor-file", cur)
        self.assertExit(p, 0)
        self.assertEqual([json.loads(l)["data"]["name"] for l in p.stdout.splitlines()],
                         [f"pull2-{sn}"])
        with open(cur, encoding="utf-8") as f:
            saved = f.read().strip()
        self.assertEqual(saved, self.api("GET", f"/v1/supervision/asset?cursor={saved}")
                         .json["next_cursor"])
        self.assertExit(self.run_admin("supervision", "pull", "assets"), 2)
        p = self.run_admin("supervision", "pull", "asset", "--cursor", "bogus")
        self.assertApiError(p, 8, "GET", "/v1/supervision/asset?cursor=bogus")

    def test_supervision_push_to_itself(self):
        key = self.cli_json("supervision", "public-key")
        pem = self.write("cloud.pem", key["public_key_pem"])
        if any(c["id"] == key["cloud_id"] for c in
               self.cli_json("supervision", "cloud", "list", "--all")["items"]):
            self.api("DELETE", f"/v1/supervision/clouds/{key['cloud_id']}")
        p = self.run_admin("supervision", "cloud", "register", "自己", "--cloud-id",
                           key["cloud_id"], "--public-key-file", pem)
        self.assertExit(p, 0)
        o = parse_object(p.stdout.split("\n\n")[0])
        self.assertTrue(o["token"].startswith("gcs_"), o)
        self.assertIn("shown only this once", p.stderr)
        # the token is shown once: a later get does not carry it
        self.assertIsNone(self.api("GET", f"/v1/supervision/clouds/{key['cloud_id']}")
                          .json.get("token"))
        self.import_one_asset()
        rname = self.uniq("up-")
        rec = self.cli_json("supervision", "receiver", "create", rname, "--url",
                            self.d.url + "/v1/supervision/ingest", "--push-token", o["token"],
                            "--datasets", "asset,alarm")
        self.assertEqual((rec["name"], rec["datasets"]), (rname, ["asset", "alarm"]))
        delivered = self.wait_for("a delivered asset batch", lambda: [
            d for d in self.cli_json("supervision", "receiver", "get", rec["id"])["delivery"]
            if d["dataset"] == "asset" and d["delivered_batch_seq"] > 0])
        self.assertEqual(delivered[0]["pending_batches"], 0)
        p = self.run_admin("supervision", "receiver", "get", rec["id"])
        self.assertExit(p, 0)
        _, rows, bad = parse_table(p.stdout.split("\ndelivery:\n")[1])
        self.assertEqual(bad, [])
        self.assertEqual(sorted(r["DATASET"] for r in rows), ["alarm", "asset"])
        summ = self.cli_json("supervision", "cloud", "summary", key["cloud_id"])
        self.assertEqual(summ["name"], "自己")
        self.assertGreater(summ["assets"]["total"], 0)
        p = self.run_admin("supervision", "cloud", "summary", key["cloud_id"])
        self.assertExit(p, 0)
        _, rows, bad = parse_table(p.stdout.split("\nstreams:\n")[1])
        self.assertEqual(bad, [])
        self.assertIn("asset", [r["DATASET"] for r in rows])
        recs = self.cli_json("supervision", "cloud", "records", key["cloud_id"], "--dataset",
                             "asset", "--all")["items"]
        self.assertEqual(len([r for r in recs if r["op"] == "upsert"]),
                         summ["assets"]["total"])
        ov = self.cli_json("supervision", "overview")
        self.assertIn(key["cloud_id"], [c["cloud_id"] for c in ov["clouds"]])
        p = self.run_admin("supervision", "overview")
        self.assertExit(p, 0)
        _, rows, bad = parse_table(p.stdout.split("\nclouds:\n")[1])
        self.assertEqual(bad, [])
        self.assertIn((key["cloud_id"], "自己"), [(r["CLOUD_ID"], r["NAME"]) for r in rows])
        sr = self.cli_json("supervision", "substitution-rate")
        self.assertEqual(sr, dict(self.api("GET", "/v1/supervision/substitution-rate").json,
                                  computed_at=sr["computed_at"]))
        # changes, errors, deletion
        got = self.cli_json("supervision", "receiver", "update", rec["id"], "--enabled", "false",
                            "--if-match", "1")
        self.assertEqual((got["enabled"], got["version"]), (False, 2))
        p = self.run_admin("supervision", "receiver", "create", self.uniq("r-"), "--url",
                           "gopher://x", "--push-token", "t")
        self.assertApiError(p, 8, "POST", "/v1/supervision/receivers",
                            {"name": "rx", "url": "gopher://x", "token": "t"})
        rot = self.cli_json("supervision", "cloud", "update", key["cloud_id"], "--rotate-token")
        self.assertTrue(rot["token"].startswith("gcs_") and rot["token"] != o["token"])
        p = self.run_admin("supervision", "cloud", "register", "again", "--cloud-id",
                           key["cloud_id"], "--public-key-file", pem)
        self.assertExit(p, 6)
        self.assertExit(self.run_admin("supervision", "cloud", "register", "x", "--cloud-id",
                                       key["cloud_id"], "--public-key-file",
                                       os.path.join(self.home, "none.pem")), 2)
        self.assertExit(self.run_admin("supervision", "receiver", "delete", rec["id"]), 0)
        self.assertExit(self.run_admin("supervision", "receiver", "get", rec["id"]), 5)
        self.assertExit(self.run_admin("supervision", "cloud", "delete", key["cloud_id"]), 0)
        self.assertExit(self.run_admin("supervision", "cloud", "summary", key["cloud_id"]), 5)

    def import_one_asset(self):
        sn = uuid.uuid4().hex[:10]
        self.cli_json("asset", "import", "-", input=json.dumps(
            [{"kind": "server", "name": f"push-{sn}", "serial_number": sn}]))


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]



# ---------------------------------------------------------------------------------------
# Against a scripted HTTP server: what the client sends, and how it treats answers that a
# correct govcloudd never gives (5xx, redirects, non-JSON, hostile text).

class FakeServer:
    """A loopback HTTP server. answer(method, path, query, headers, body) returns
    (status, headers, body bytes or a JSON-able value). Every request is recorded."""

    def __init__(self, answer):
        self.requests = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def handle_any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                u = urllib.parse.urlsplit(self.path)
                req = {"method": self.command, "path": u.path,
                       "query": urllib.parse.parse_qs(u.query, keep_blank_values=True),
                       "raw_query": u.query, "headers": dict(self.headers.items()),
                       "body": body}
                outer.requests.append(req)
                status, headers, payload = answer(req)
                if not isinstance(payload, bytes):
                    payload = json.dumps(payload, ensure_ascii=False).encode()
                    headers = {"Content-Type": "application/json", **headers}
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = handle_any

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def problem(status, detail, rid="rid-1"):
    return (status, {"Content-Type": "application/problem+json", "X-Request-Id": rid},
            json.dumps({"type": "https://govcloud.example/problems/x", "title": "T",
                        "status": status, "detail": detail, "instance": "/",
                        "request_id": rid}).encode())


class CliFakeServerTest(CliMixin, unittest.TestCase):
    def setUp(self):
        self.make_home()

    def serve(self, answer):
        srv = FakeServer(answer)
        self.addCleanup(srv.close)
        return srv

    def test_request_shape(self):
        srv = self.serve(lambda r: (200, {}, {"items": [], "next_cursor": None}
                                    if r["method"] == "GET" else {"id": "x", "version": 8}))
        p = self.cli("department", "update", "d-1", "--name", "广州", "--description", "",
                     "--if-match", "007", url=srv.url, token="gct_fake")
        self.assertExit(p, 0)
        r = srv.requests[-1]
        self.assertEqual((r["method"], r["path"]), ("PATCH", "/v1/departments/d-1"))
        self.assertEqual(r["headers"].get("If-Match"), '"7"')
        self.assertEqual(r["headers"].get("Authorization"), "Bearer gct_fake")
        self.assertEqual(r["headers"].get("Content-Type"), "application/json")
        self.assertEqual(json.loads(r["body"]), {"name": "广州", "description": ""})
        self.assertTrue(r["headers"].get("User-Agent", "").startswith("govcloud/"))
        p = self.cli("department", "list", "--name", "a b&c=d/广", "--parent-id", "root",
                     "--limit", "5", url=srv.url, token="gct_fake")
        self.assertExit(p, 0)
        r = srv.requests[-1]
        self.assertEqual(r["query"], {"name": ["a b&c=d/广"], "parent_id": ["root"],
                                      "limit": ["5"]})
        self.assertNotIn("+", r["raw_query"])
        p = self.cli("department", "delete", "x y", url=srv.url, token="gct_fake")
        self.assertExit(p, 0)
        self.assertEqual((srv.requests[-1]["method"], srv.requests[-1]["path"]),
                         ("DELETE", "/v1/departments/x%20y"))
        self.assertNotIn("If-Match", srv.requests[-1]["headers"])
        # version sends no token, even when one is configured
        p = self.cli("version", url=srv.url, token="gct_fake")
        self.assertEqual(srv.requests[-1]["path"], "/v1/version")
        self.assertNotIn("Authorization", srv.requests[-1]["headers"])

    def test_status_codes_and_hostile_details(self):
        table = {400: 8, 401: 4, 403: 7, 404: 5, 405: 1, 409: 6, 412: 6, 413: 8, 415: 8,
                 422: 8, 429: 1, 500: 1, 502: 1, 503: 1}
        state = {}
        srv = self.serve(lambda r: problem(state["status"], "bad \x1b[31mthing\u202e\x07 长",
                                           rid="r-\x1b[2J;7"))
        for status, code in table.items():
            state["status"] = status
            p = self.cli("department", "get", "x", url=srv.url, token="gct_fake")
            self.assertExit(p, code)
            self.assertEqual(p.stderr, f"govcloud: error: bad ?[31mthing?? 长 "
                                       f"(HTTP {status}, request r-2J7)\n")

    def test_long_detail_keeps_status_and_request_id(self):
        # docs/cli.md: the client prints the detail "with the status and the request id";
        # a long detail is cut (at 240 cells), never the request id, never inside a character
        for detail in ("长" * 300, "a" * 100 + "长" * 100, "x" * 600):
            with self.subTest(detail=detail[:3] + "..." + detail[-3:]):
                srv = self.serve(lambda r, d=detail: problem(409, d, rid="rid-42"))
                p = self.cli("department", "get", "x", url=srv.url, token="gct_fake")
                self.assertExit(p, 6)
                self.assertTrue(p.stderr.startswith("govcloud: error: " + detail[:80]),
                                p.stderr)
                self.assertTrue(p.stderr.endswith("(HTTP 409, request rid-42)\n"), p.stderr)

    def test_redirect_is_not_followed(self):
        target = self.serve(lambda r: (200, {}, {"id": "stolen"}))
        srv = self.serve(lambda r: (307, {"Location": target.url + r["path"]}, b""))
        p = self.cli("whoami", url=srv.url, token="gct_secret")
        self.assertExit(p, 1)
        self.assertIn("redirects (HTTP 307)", p.stderr)
        self.assertEqual(target.requests, [])
        self.assertNotIn("gct_secret", p.stderr)

    def test_answer_that_is_not_json(self):
        srv = self.serve(lambda r: (200, {"Content-Type": "text/html"}, b"<html>hi</html>"))
        p = self.cli("whoami", url=srv.url, token="gct_fake")
        self.assertExit(p, 1)
        self.assertIn("is not JSON", p.stderr)
        self.assertEqual(p.stdout, "")

    def test_all_stops_on_a_repeating_cursor(self):
        srv = self.serve(lambda r: (200, {}, {"items": [{"id": "a"}], "next_cursor": "c1"}))
        p = self.cli("department", "list", "--all", url=srv.url, token="gct_fake")
        self.assertExit(p, 1)
        self.assertIn("do not come to an end", p.stderr)
        self.assertLess(len(srv.requests), 5)

    def test_job_wait_retries_short_outages_and_sanitises(self):
        answers = [problem(503, "restarting"), problem(502, "proxy"),
                   (200, {}, {"id": "j1", "state": "running", "progress": 50,
                              "message": "copy \x1b]0;pwned\x07 image"}),
                   None, (200, {}, {"id": "j1", "state": "succeeded", "progress": 100,
                                    "message": "done", "error": ""})]
        def answer(r):
            a = answers.pop(0) if len(answers) > 1 else answers[0]
            return a if a else problem(504, "gateway")
        srv = self.serve(answer)
        p = self.cli("job", "wait", "j1", "--timeout", "30", url=srv.url, token="gct_fake")
        self.assertExit(p, 0)
        self.assertEqual(p.stdout, "job j1 running 50% copy ?]0;pwned? image\n"
                                   "job j1 succeeded 100% done\n")
        self.assertEqual(len(srv.requests), 5)
        # not found is not retried
        srv404 = self.serve(lambda r: problem(404, "job 'j2' not found"))
        p = self.cli("job", "wait", "j2", url=srv404.url, token="gct_fake")
        self.assertExit(p, 5)
        self.assertEqual(len(srv404.requests), 1)
        self.assertIn("job 'j2' not found", p.stderr)

    def test_login_warns_about_plain_http_to_a_remote_host(self):
        # nothing listens at these names (.invalid never resolves): the warning comes first
        for url in ("http://gov.example.invalid:8080", "http://127.0.0.1.example.invalid:8080",
                    "http://localhost.example.invalid:8080"):
            with self.subTest(url=url):
                p = self.cli("login", "-u", "admin", "--password-stdin", url=url,
                             input="Some-Passw0rd!\n")
                self.assertExit(p, 3)
                self.assertIn("is plain http: the password and the token cross the network "
                              "unencrypted", p.stderr)
        srv = self.serve(lambda r: (201, {}, {"token": "gct_fakefake", "expires_at": "x",
                                              "user": {"username": "admin",
                                                       "role": "platform_admin"}}))
        p = self.cli("login", "-u", "admin", "--password-stdin", url=srv.url,
                     input="Some-Passw0rd!\n")
        self.assertExit(p, 0)
        self.assertNotIn("plain http", p.stderr)
        self.assertEqual(json.loads(srv.requests[-1]["body"]),
                         {"username": "admin", "password": "Some-Passw0rd!"})


# ---------------------------------------------------------------------------------------
# The audit chain, tampered with in the SQLite file between two runs of the daemon.

class CliAuditTamperTest(CliMixin, unittest.TestCase):
    def setUp(self):
        self.make_home()
        self.data_dir = tempfile.mkdtemp(prefix="govcloud-cli-tamper-")
        self.addCleanup(shutil.rmtree, self.data_dir, True)
        self.d = None

    def tearDown(self):
        if self.d:
            self.stop_daemon()

    def stop_daemon(self):
        rc = self.d.stop()
        log = self.d.read_log()
        self.d = None
        self.assertEqual(rc, 0, log[-4000:])
        for mark in SANITIZER_MARKS:
            self.assertNotIn(mark, log, log[-8000:])

    def test_verify_detects_edited_event(self):
        self.d = Daemon(data_dir=self.data_dir).start()
        token = self.d.login()
        for i in range(3):
            r = self.d.request("POST", "/v1/departments", {"name": f"审计{i}"}, token=token)
            self.assertEqual(r.status, 201, r)
        p = self.cli("audit", "verify", url=self.d.url, token=token)
        self.assertExit(p, 0)
        m = re.match(r"^audit chain intact: (\d+) events\n$", p.stdout)
        self.assertIsNotNone(m, p.stdout)
        self.assertGreaterEqual(int(m.group(1)), 5)
        self.stop_daemon()

        db = sqlite3.connect(os.path.join(self.data_dir, "govcloud.db"))
        try:
            row = db.execute("SELECT seq FROM audit_events WHERE action = 'department.create' "
                             "ORDER BY seq LIMIT 1 OFFSET 1").fetchone()
            self.assertIsNotNone(row)
            seq = row[0]
            n = db.execute("UPDATE audit_events SET reason = 'nothing to see' WHERE seq = ?",
                           (seq,)).rowcount
            self.assertEqual(n, 1)
            db.commit()
        finally:
            db.close()

        self.d = Daemon(data_dir=self.data_dir).start()
        token = self.d.login()
        p = self.cli("audit", "verify", url=self.d.url, token=token)
        self.assertExit(p, 10)
        self.assertEqual(p.stdout, f"audit chain broken at event {seq}: event {seq} was "
                                   "edited: its content does not match its hash\n")
        p = self.cli("-o", "json", "audit", "verify", url=self.d.url, token=token)
        self.assertExit(p, 10)
        out = json.loads(p.stdout)
        self.assertIs(out["intact"], False)
        self.assertEqual(out["first_bad_seq"], seq)
        self.assertIn(f"event {seq}", out["problem"])
        # exit 10 also with stdout going nowhere, as a monitoring check would run it
        p = self.cli("audit", "verify", url=self.d.url, token=token)
        self.assertExit(p, 10)

    def test_job_wait_survives_daemon_restart(self):
        self.d = Daemon(data_dir=self.data_dir).start()
        token = self.d.login()
        r = self.d.request("POST", "/v1/jobs", {"kind": "test.sleep",
                                                "params": {"steps": 8, "step_ms": 250}},
                           token=token)
        self.assertEqual(r.status, 202, r)
        jid = r.json["id"]
        waiter = subprocess.Popen([CLI, "job", "wait", jid, "--timeout", "60"],
                                  env=self.cli_env(self.d.url, token),
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        try:
            time.sleep(0.8)
            port, url = self.d.port, self.d.url
            self.stop_daemon()
            time.sleep(1.5)                 # the waiter meets connection refused meanwhile
            self.d = Daemon(data_dir=self.data_dir)
            self.d.port, self.d.url = port, url
            self.d.start()
            out, err = waiter.communicate(timeout=60)
        finally:
            if waiter.poll() is None:
                waiter.kill()
                waiter.wait()
        out, err = out.decode(), err.decode()
        self.check_sanitizer(["job", "wait"], err)
        self.assertEqual(waiter.returncode, 0, out + err)
        self.assertEqual(out.splitlines()[-1], f"job {jid} succeeded 100% step 8 of 8")
        job = self.d.request("GET", f"/v1/jobs/{jid}", token=self.d.login()).json
        self.assertEqual((job["state"], job["attempts"]), ("succeeded", 2), job)


if __name__ == "__main__":
    unittest.main()
