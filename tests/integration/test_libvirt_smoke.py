"""The engine side without govcloud: the system libvirtd (started by hand if needed) boots the
tiny guest from scripts/tiny-image as a transient type='qemu' (TCG) domain with direct kernel
boot, the guest prints its lines on the file-backed serial console and powers off, and the
domain vanishes by itself.

Skips, saying so, only when libvirt or QEMU is not installed. Everything else that goes wrong
(no root, no access to Debian's repository for the kernel, libvirtd not starting, a guest that
does not boot) fails.

GOVCLOUD_TINY_IMAGE_DIR=DIR builds the image into DIR (kept between runs, so a rerun does not
download the kernel again) and copies it into the test's temporary directory; by default it is
built inside that directory and removed with it.
"""

import os
import re
import shutil
import sys
import time
import unittest
import uuid

import libvirtd as lv

BOOT_TIMEOUT = 60  # seconds from `virsh create` returning until the domain must be gone
MESSAGE = "hello-123"


class LibvirtSmokeTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        missing = lv.missing_binaries()
        if missing:
            raise unittest.SkipTest(
                "libvirt/QEMU not installed (missing: " + ", ".join(missing) + "); install "
                "libvirt-daemon-system libvirt-clients qemu-system-x86 to run this test")

    def test_tiny_guest_boots_prints_and_powers_off(self):
        started = lv.ensure_libvirtd()
        # Stops the daemons only if the helper started them and no other test uses them.
        self.addCleanup(lv.stop_libvirtd)
        print(f"\nlibvirtd: {'started by this test' if started else 'already running'}",
              file=sys.stderr)

        # 0755: QEMU runs as libvirt-qemu and must reach the kernel and initrd in it.
        work = lv.make_workdir("govcloud-smoke-")
        self.addCleanup(shutil.rmtree, work, ignore_errors=True)

        t0 = time.monotonic()
        cache = os.environ.get("GOVCLOUD_TINY_IMAGE_DIR")
        if cache:
            k, i = lv.tiny_image(cache)
            kernel = os.path.join(work, "vmlinuz")
            initrd = os.path.join(work, "initramfs.img")
            shutil.copyfile(k, kernel)
            shutil.copyfile(i, initrd)
        else:
            kernel, initrd = lv.tiny_image(work)
        print(f"tiny image: {time.monotonic() - t0:.2f} s", file=sys.stderr)
        self.assertTrue(os.path.getsize(kernel) > 1_000_000, kernel)
        self.assertTrue(os.path.getsize(initrd) > 100_000, initrd)

        name = f"govcloud-smoke-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        serial = os.path.join(work, "serial.log")
        xml_path = os.path.join(work, "domain.xml")
        with open(xml_path, "w") as f:
            f.write(lv.domain_xml(name, kernel, initrd, serial,
                                  cmdline=f"console=ttyS0 govcloud.msg={MESSAGE}",
                                  domain_type="qemu", memory_mib=128, vcpus=1))

        # Registered before creating it: a failure anywhere below still removes the domain.
        self.addCleanup(lv.destroy_domain, name)
        t1 = time.monotonic()
        lv.virsh("create", xml_path, timeout=120)
        created = time.monotonic() - t1
        gone = lv.wait_domain_gone(name, BOOT_TIMEOUT)

        with open(serial, errors="replace") as f:
            out = f.read()
        tail = "\n".join(out.splitlines()[-25:])
        self.assertIsNotNone(gone, f"domain {name} still there after {BOOT_TIMEOUT} s; "
                                   f"serial console so far:\n{tail}")
        print(f"virsh create: {created:.2f} s; create -> domain gone (boot to poweroff): "
              f"{gone:.2f} s", file=sys.stderr)

        lines = [line.rstrip("\r") for line in out.splitlines()]
        self.assertTrue(any(re.fullmatch(r"GOVCLOUD-GUEST-OK hostname=\S+", line)
                            for line in lines),
                        f"no GOVCLOUD-GUEST-OK line on the serial console:\n{tail}")
        self.assertIn(f"GOVCLOUD-MSG {MESSAGE}", lines,
                      f"no 'GOVCLOUD-MSG {MESSAGE}' line on the serial console:\n{tail}")


if __name__ == "__main__":
    unittest.main()
