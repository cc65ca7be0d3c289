"""GET /v1/supervision/public-key and [supervision] cloud_id: the cloud's id and SM2 key are
made on first use under the data directory (0600), survive restarts, and the public key the
API shows is the one of the private key on disk (checked with the openssl tool)."""

import os
import stat
import subprocess
import unittest
import uuid

from gcharness import Daemon, DaemonTestCase


class SupervisionIdentity(DaemonTestCase):
    def test_identity_created_on_first_use_and_kept(self):
        sdir = os.path.join(self.d.data_dir, "supervision")
        r = self.req("GET", "/v1/supervision/public-key", token=self.admin)
        self.assertEqual(r.status, 200, r)
        j = r.json
        self.assertRegex(j["cloud_id"], r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
        self.assertEqual(j["schema_version"], "1.0")
        self.assertEqual(j["signature_alg"], "SM2-SM3")
        self.assertEqual(j["sm2_id"], "1234567812345678")
        self.assertRegex(j["fingerprint_sm3"], r"^[0-9a-f]{64}$")
        key = os.path.join(sdir, "sm2-key.pem")
        self.assertEqual(stat.S_IMODE(os.stat(key).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(sdir).st_mode), 0o700)
        with open(os.path.join(sdir, "cloud-id")) as f:
            self.assertEqual(f.read().strip(), j["cloud_id"])
        # the public key shown is the one of the private key on disk, and it is SM2
        pub = subprocess.run(["openssl", "pkey", "-in", key, "-pubout"], capture_output=True,
                             check=True, text=True).stdout
        self.assertEqual(pub, j["public_key_pem"])
        text = subprocess.run(["openssl", "pkey", "-in", key, "-noout", "-text"],
                              capture_output=True, check=True, text=True).stdout
        self.assertIn("SM2", text)
        # the same after a restart
        self.d.stop()
        self.d.start()
        self.admin = self.d.login()
        r2 = self.req("GET", "/v1/supervision/public-key", token=self.admin)
        self.assertEqual(r2.status, 200, r2)
        self.assertEqual(r2.json, j)

    def test_department_roles_refused(self):
        dept = self.mkdept("sup-" + uuid.uuid4().hex[:8])
        name = "supu" + uuid.uuid4().hex[:6]
        self.mkuser(name, "department_admin", dept=dept["id"])
        tok = self.d.login(name, "User-Passw0rd!")
        self.assertProblem(self.req("GET", "/v1/supervision/public-key", token=tok), 403,
                           "platform roles only")
        self.assertProblem(self.req("GET", "/v1/supervision/public-key"), 401)


class ConfiguredCloudId(unittest.TestCase):
    def test_configured_cloud_id(self):
        cid = str(uuid.uuid4())
        d = Daemon(extra=["--set", "supervision.cloud_id=" + cid])
        try:
            d.start()
            tok = d.login()
            r = d.request("GET", "/v1/supervision/public-key", token=tok)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json["cloud_id"], cid)
            self.assertFalse(os.path.exists(os.path.join(d.data_dir, "supervision", "cloud-id")))
        finally:
            d.stop()
            d.cleanup()

    def test_bad_cloud_id_refused_at_start(self):
        d = Daemon(extra=["--set", "supervision.cloud_id=NOT-A-UUID"])
        try:
            with self.assertRaises(Exception):
                d.start(timeout=10)
            self.assertIn("cloud_id", d.read_log())
        finally:
            try:
                d.stop()
            except Exception:
                pass
            d.cleanup()


if __name__ == "__main__":
    unittest.main()
