"""Supervision push and supervisor mode (docs/supervision.md#push-to-a-supervisor,
#supervisor-mode; docs/supervision-spec.md section 8).

End to end: two govcloudd on loopback, one cloud and one supervisor. The cloud is registered
on the supervisor with its real public key, a receiver on the cloud points to the
supervisor's ingest URL, and the supervisor must end with exactly the records the cloud's
pull shows (same ids, seqs and data) — also after the supervisor was stopped (SIGTERM, then
kill -9) while the cloud kept changing, and after the cloud itself was killed mid-stream.

Ingest checks: batches made here with the openssl command line (an independent signer, as
tests/unit/supervision_interop.py): tampered, signed by an unregistered key, another
cloud's id, wrong token, one bad record among good ones, replay, reordering and gaps, a
reused batch_seq with other contents, JSON text that is not canonical, many clouds pushing at
once (group commit), and a kill -9 of the supervisor during such concurrent pushes."""

import base64
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import uuid

from gcharness import Daemon
from test_vms import VmHelpers, uniq

LAG_RULE = "00000000-0000-7000-8000-000000000008"


def check_log(testcase, d):
    log = d.read_log()
    for bad in ("runtime error:", "AddressSanitizer", "LeakSanitizer"):
        testcase.assertNotIn(bad, log, log[-6000:])


# the canonical form (spec section 5) by the independent Python implementation of the unit
# tests' interoperability check
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "unit"))
from supervision_interop import canon  # noqa: E402


class Signer:
    """An SM2 key of this test, used through the openssl command line."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.key = os.path.join(tmp, "key-%s.pem" % uuid.uuid4().hex[:8])
        subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                        "ec_paramgen_curve:SM2", "-out", self.key], check=True,
                       capture_output=True)
        self.public_pem = subprocess.run(["openssl", "pkey", "-in", self.key, "-pubout"],
                                         check=True, capture_output=True,
                                         text=True).stdout

    def private_pem(self):
        with open(self.key) as f:
            return f.read()

    def sign(self, body):
        msg = os.path.join(self.tmp, "msg")
        with open(msg, "wb") as f:
            f.write(body.encode())
        sig = subprocess.run(["openssl", "pkeyutl", "-sign", "-inkey", self.key, "-rawin",
                              "-digest", "sm3", "-in", msg, "-pkeyopt",
                              "distid:1234567812345678"], check=True,
                             capture_output=True).stdout
        return base64.b64encode(sig).decode()

    def batch(self, cloud_id, batch_seq, records, dataset="asset"):
        b = {"cloud_id": cloud_id, "dataset": dataset, "schema_version": "1.0",
             "batch_seq": batch_seq, "time": "2026-11-25T18:40:02.000Z",
             "record_ids": [r.get("id", "") for r in records], "records": records}
        body = canon(b)
        b["signature"] = {"alg": "SM2-SM3", "value": self.sign(body)}
        return canon(b).encode()


def asset_record(rid, seq, name="srv", op="upsert", **data):
    r = {"id": rid, "dataset": "asset", "schema_version": "1.0", "seq": seq,
         "time": "2026-11-25T18:40:01.517Z", "op": op}
    if op == "upsert":
        r["data"] = {"kind": "server", "name": name, **data}
    return r


class Base(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="govcloud-push-")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def assertProblem(self, r, status, part=None):
        self.assertEqual(r.status, status, r)
        self.assertTrue(r.headers.get("Content-Type", "").startswith(
            "application/problem+json"), r.headers.get("Content-Type"))
        for k in ("type", "title", "status", "detail"):
            self.assertIn(k, r.json)
        if part:
            self.assertIn(part, r.json["detail"])

    @staticmethod
    def ingest(sup, body, token, ctype="application/json"):
        h = {"Content-Type": ctype}
        if token is not None:
            h["Authorization"] = "Bearer " + token
        return sup.request("POST", "/v1/supervision/ingest", raw=body, headers=h)

    @staticmethod
    def received(sup, tok, cloud_id, dataset=None):
        """Every record the supervisor holds of a cloud: {id: record}."""
        out, cursor = {}, None
        while True:
            q = {"limit": 1000}
            if dataset:
                q["dataset"] = dataset
            if cursor:
                q["cursor"] = cursor
            r = sup.request("GET", f"/v1/supervision/clouds/{cloud_id}/records?"
                            + urllib.parse.urlencode(q), token=tok)
            assert r.status == 200, r
            for x in r.json["items"]:
                assert x["id"] not in out, x
                out[x["id"]] = x
            cursor = r.json.get("next_cursor")
            if not cursor:
                return out


class IngestChecks(Base):
    """One supervisor; a cloud registered with a key of this test."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sup = Daemon(extra=["--set", "supervision.accept_pushes=true"]).start()
        cls.admin = cls.sup.login()
        cls.signer = Signer(cls.tmp)
        cls.other = Signer(cls.tmp)

    @classmethod
    def tearDownClass(cls):
        rc = cls.sup.stop()
        log = cls.sup.read_log()
        cls.sup.cleanup()
        super().tearDownClass()
        if rc != 0:
            raise AssertionError(f"supervisor exited with {rc}:\n{log[-4000:]}")
        for bad in ("runtime error:", "AddressSanitizer", "LeakSanitizer"):
            if bad in log:
                raise AssertionError(log[-8000:])

    def register(self, signer=None, **kw):
        cid = str(uuid.uuid4())
        body = {"cloud_id": cid, "name": uniq("cloud-"),
                "public_key_pem": (signer or self.signer).public_pem, **kw}
        r = self.sup.request("POST", "/v1/supervision/clouds", body, token=self.admin)
        self.assertEqual(r.status, 201, r)
        self.assertRegex(r.json["token"], r"^gcs_")
        return cid, r.json["token"]

    def test_register_validation_and_token_shown_once(self):
        cid, tok = self.register()
        g = self.sup.request("GET", f"/v1/supervision/clouds/{cid}", token=self.admin)
        self.assertEqual(g.status, 200, g)
        self.assertNotIn("token", g.json)
        self.assertRegex(g.json["fingerprint_sm3"], r"^[0-9a-f]{64}$")
        # the token is stored only as its SM3 hash
        con = sqlite3.connect(self.sup.db_path)
        try:
            rows = con.execute("SELECT token_hash FROM sup_clouds WHERE id = ?",
                               (cid,)).fetchall()
        finally:
            con.close()
        self.assertEqual(len(rows), 1)
        self.assertNotIn(tok, rows[0][0])
        self.assertRegex(rows[0][0], r"^[0-9a-f]{64}$")
        # bad keys and ids are 400 naming the field
        bad = [({"public_key_pem": "not a key"}, "public_key_pem"),
               ({"public_key_pem": self.signer.private_pem()}, "public_key_pem"),
               ({"cloud_id": "NOT-A-UUID"}, "cloud_id"),
               ({"secret": "c2hvcnQ="}, "secret")]
        for patch, field in bad:
            body = {"cloud_id": str(uuid.uuid4()), "name": uniq("c-"),
                    "public_key_pem": self.signer.public_pem, **patch}
            r = self.sup.request("POST", "/v1/supervision/clouds", body, token=self.admin)
            self.assertProblem(r, 400)
            self.assertEqual(r.json.get("field"), field, r.json)
        # an RSA key is not an SM2 key
        rsa = os.path.join(self.tmp, "rsa.pem")
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-out", rsa], check=True,
                       capture_output=True)
        pub = subprocess.run(["openssl", "pkey", "-in", rsa, "-pubout"], check=True,
                             capture_output=True, text=True).stdout
        r = self.sup.request("POST", "/v1/supervision/clouds",
                             {"cloud_id": str(uuid.uuid4()), "name": uniq("c-"),
                              "public_key_pem": pub}, token=self.admin)
        self.assertProblem(r, 400)
        # registering the same cloud twice is 409
        r = self.sup.request("POST", "/v1/supervision/clouds",
                             {"cloud_id": cid, "name": uniq("c-"),
                              "public_key_pem": self.signer.public_pem}, token=self.admin)
        self.assertProblem(r, 409)
        # a rotated token replaces the old one
        r = self.sup.request("PATCH", f"/v1/supervision/clouds/{cid}", {"rotate_token": True},
                             token=self.admin)
        self.assertEqual(r.status, 200, r)
        new = r.json["token"]
        body = self.signer.batch(cid, 1, [asset_record("asset:a", 1)])
        self.assertProblem(self.ingest(self.sup, body, tok), 401)
        self.assertEqual(self.ingest(self.sup, body, new).status, 200)
        # the change is audited
        ev = self.sup.request("GET", "/v1/audit-events?resource_id=" + cid, token=self.admin)
        actions = [e["action"] for e in ev.json["items"]]
        self.assertIn("supervision_cloud.create", actions)
        self.assertIn("supervision_cloud.update", actions)

    def test_authentication_and_signature(self):
        cid, tok = self.register()
        good = self.signer.batch(cid, 1, [asset_record("asset:x1", 5)])
        # no token, wrong token, wrong scheme, wrong media type
        self.assertProblem(self.ingest(self.sup, good, None), 401)
        self.assertProblem(self.ingest(self.sup, good, "gcs_wrong"), 401)
        r = self.sup.request("POST", "/v1/supervision/ingest", raw=good,
                             headers={"Content-Type": "application/json",
                                      "Authorization": "Basic " + tok})
        self.assertProblem(r, 401)
        self.assertProblem(self.ingest(self.sup, good, tok, ctype="text/plain"), 415)
        # a user's session token is not a push token
        self.assertProblem(self.ingest(self.sup, good, self.admin), 401)
        # tampered: one byte of a record flipped (the name) -> signature fails, nothing kept
        tampered = good.replace(b'"name":"srv"', b'"name":"srw"')
        self.assertNotEqual(tampered, good)
        r = self.ingest(self.sup, tampered, tok)
        self.assertIn(r.status, (400, 401), r)
        self.assertProblem(r, r.status)
        # signed by a key that is not the registered one
        forged = self.other.batch(cid, 1, [asset_record("asset:x1", 5)])
        self.assertProblem(self.ingest(self.sup, forged, tok), 401)
        # a batch of another (unregistered) cloud with this cloud's token
        stranger = self.other.batch(str(uuid.uuid4()), 1, [asset_record("asset:x1", 5)])
        self.assertProblem(self.ingest(self.sup, stranger, tok), 403)
        # not JSON at all
        self.assertProblem(self.ingest(self.sup, b"{nope", tok), 400)
        self.assertEqual(self.received(self.sup, self.admin, cid), {})
        # the genuine one is taken
        r = self.ingest(self.sup, good, tok)
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json["accepted"], r.json["duplicates"], r.json["rejected"],
                          r.json["gaps"]), (1, 0, [], []))
        self.assertEqual(list(self.received(self.sup, self.admin, cid)), ["asset:x1"])

    def test_bad_record_rejected_alone_replay_and_tombstones(self):
        cid, tok = self.register()
        recs = [asset_record("asset:g1", 10, name="one"),
                asset_record("asset:bad", 11, name="two", location={"u": 61}),
                asset_record("asset:g2", 12, name="three", mlps_grade=3)]
        body = self.signer.batch(cid, 1, recs)
        r = self.ingest(self.sup, body, tok)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["accepted"], 2)
        self.assertEqual(len(r.json["rejected"]), 1, r.json)
        rej = r.json["rejected"][0]
        self.assertEqual(rej["record_id"], "asset:bad")
        self.assertEqual(rej["field"], "/data/location/u")
        self.assertIn("61", rej["detail"])
        got = self.received(self.sup, self.admin, cid)
        self.assertEqual(sorted(got), ["asset:g1", "asset:g2"])
        self.assertEqual(got["asset:g2"]["data"], {"kind": "server", "name": "three",
                                                   "mlps_grade": 3})
        self.assertEqual((got["asset:g2"]["seq"], got["asset:g2"]["op"]), (12, "upsert"))
        # the same batch again: all duplicates, nothing doubled
        r = self.ingest(self.sup, body, tok)
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json["accepted"], r.json["duplicates"]), (0, 2), r.json)
        self.assertEqual(self.received(self.sup, self.admin, cid), got)
        # the same batch_seq with other records is a sender error
        other = self.signer.batch(cid, 1, [asset_record("asset:zz", 13)])
        self.assertProblem(self.ingest(self.sup, other, tok), 409)
        # a newer batch: a delete (tombstone) and an update; an older change arriving late
        # in a later batch does not bring a record back
        r = self.ingest(self.sup, self.signer.batch(cid, 2, [
            asset_record("asset:g1", 20, op="delete"),
            asset_record("asset:g2", 21, name="three-b")]), tok)
        self.assertEqual((r.json["accepted"], r.json["duplicates"]), (2, 0), r.json)
        r = self.ingest(self.sup, self.signer.batch(cid, 3, [
            asset_record("asset:g1", 15, name="stale"),
            asset_record("asset:g2", 21, name="three-b")]), tok)
        self.assertEqual((r.json["accepted"], r.json["duplicates"]), (0, 2), r.json)
        got = self.received(self.sup, self.admin, cid)
        self.assertEqual((got["asset:g1"]["op"], got["asset:g1"]["seq"],
                          got["asset:g1"]["data"]), ("delete", 20, None))
        self.assertEqual(got["asset:g2"]["data"]["name"], "three-b")
        c = self.sup.request("GET", f"/v1/supervision/clouds/{cid}", token=self.admin).json
        s = {x["dataset"]: x for x in c["streams"]}["asset"]
        self.assertEqual((s["max_batch_seq"], s["batches"], s["rejected"], s["gaps"]),
                         (3, 3, 1, []), s)

    def test_reordering_and_gaps(self):
        cid, tok = self.register()
        b = {n: self.signer.batch(cid, n, [asset_record(f"asset:r{n}", n * 10)])
             for n in range(1, 7)}
        self.assertEqual(self.ingest(self.sup, b[1], tok).json["gaps"], [])
        r = self.ingest(self.sup, b[3], tok)
        self.assertEqual(r.json["gaps"], [[2, 2]])
        r = self.ingest(self.sup, b[6], tok)
        self.assertEqual(r.json["gaps"], [[2, 2], [4, 5]])
        c = self.sup.request("GET", f"/v1/supervision/clouds/{cid}", token=self.admin).json
        self.assertEqual(c["streams"][0]["gaps"], [[2, 2], [4, 5]])
        self.assertEqual(self.ingest(self.sup, b[2], tok).json["gaps"], [[4, 5]])
        self.assertEqual(self.ingest(self.sup, b[5], tok).json["gaps"], [[4, 4]])
        r = self.ingest(self.sup, b[4], tok)
        self.assertEqual((r.json["gaps"], r.json["accepted"]), ([], 1))
        got = self.received(self.sup, self.admin, cid)
        self.assertEqual(sorted(got), [f"asset:r{n}" for n in range(1, 7)])

    def test_other_json_text(self):
        """Text that is JSON but not canonical is put in canonical form before the signature
        is checked, and stored canonical; a signature over such text itself does not count
        (spec section 6)."""
        cid, tok = self.register()
        recs = [asset_record("asset:p1", 1, name="é \"q\"", location={"u": 7, "rack": "R1"})]
        b = {"cloud_id": cid, "dataset": "asset", "schema_version": "1.0", "batch_seq": 1,
             "time": "2026-11-25T18:40:02.000Z", "record_ids": ["asset:p1"], "records": recs}
        sig = self.signer.sign(canon(b))
        b["signature"] = {"alg": "SM2-SM3", "value": sig}
        # pretty, keys in another order, \u escapes, a trailing newline
        pretty = json.dumps(dict(reversed(list(b.items()))), indent=2, ensure_ascii=True) + "\n"
        self.assertNotEqual(pretty.encode(), canon(b).encode())
        r = self.ingest(self.sup, pretty.encode(), tok)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["accepted"], 1, r.json)
        got = self.received(self.sup, self.admin, cid)
        self.assertEqual(got["asset:p1"]["data"], recs[0]["data"])
        # stored as its canonical text, byte for byte
        with sqlite3.connect(self.sup.db_path) as db:
            (text,) = db.execute("SELECT data FROM sup_records WHERE cloud_id = ? AND"
                                 " record_id = 'asset:p1'", (cid,)).fetchone()
        self.assertEqual(text, canon(recs[0]["data"]))
        # canonical text with a trailing newline is canonical text
        r = self.ingest(self.sup, self.signer.batch(cid, 2, [asset_record("asset:p2", 2)])
                        + b"\r\n", tok)
        self.assertEqual(r.status, 200, r)
        # signed over the pretty text minus its signature: not the canonical body
        b2 = dict(b, batch_seq=3, record_ids=["asset:p3"],
                  records=[asset_record("asset:p3", 3)])
        b2.pop("signature")
        body = json.dumps(b2, indent=1)
        b2["signature"] = {"alg": "SM2-SM3", "value": self.signer.sign(body)}
        text = json.dumps(b2, indent=1)
        self.assertProblem(self.ingest(self.sup, text.encode(), tok), 401, "does not verify")
        self.assertNotIn("asset:p3", self.received(self.sup, self.admin, cid))
        # duplicate keys are refused, as in canonical text
        dup = canon(b).replace('"batch_seq":1', '"batch_seq":1,"batch_seq":1', 1)
        self.assertProblem(self.ingest(self.sup, dup.encode(), tok), 400)

    def test_reals_come_back_to_the_bit(self):
        """The records API gives reals with 17 digits: what the cloud sent, exactly (15, as
        elsewhere in the API, would turn 0.30000000000000004 into 0.3)."""
        cid, tok = self.register()
        values = [0.30000000000000004, 24.5, 1e-07, 123456.78901234567, -0.0]
        recs = []
        for k, v in enumerate(values):
            rid = f"env:t{k}"
            recs.append({"id": rid, "dataset": "environment", "schema_version": "1.0",
                         "seq": k + 1, "time": "2026-11-25T18:42:16.000Z", "op": "upsert",
                         "data": {"sensor_id": f"t{k}", "reading_type": "temperature",
                                  "reading": v, "reading_units": "Cel",
                                  "time": "2026-11-25T18:42:16.000Z", "status": "ok"}})
        r = self.ingest(self.sup, self.signer.batch(cid, 1, recs, dataset="environment"), tok)
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json["accepted"], r.json["rejected"]), (len(values), []), r.json)
        got = self.received(self.sup, self.admin, cid, "environment")
        for k, v in enumerate(values):
            self.assertEqual(got[f"env:t{k}"]["data"]["reading"].hex(), float(v).hex())

    def test_concurrent_batches_share_commits(self):
        """Many clouds pushing at once: every batch answered with its own outcome (a reused
        batch_seq is 409 alone, a bad record rejected alone), every good record stored."""
        import threading
        clouds = [self.register() for _ in range(6)]
        work = []  # (token, body, expect status, record ids that must be stored)
        for i, (cid, tok) in enumerate(clouds):
            for n in range(1, 6):
                ids = [f"asset:c{i}-{n}-{k}" for k in range(20)]
                recs = [asset_record(x, n * 100 + k) for k, x in enumerate(ids)]
                if n == 3:
                    recs[5]["data"]["location"] = {"u": 99}  # rejected alone
                work.append((tok, self.signer.batch(cid, n, recs), 200,
                             [x for k, x in enumerate(ids) if not (n == 3 and k == 5)]))
            # the same batch_seq 1 with other contents: 409, and nothing of it stored
            work.append((tok, self.signer.batch(cid, 1, [asset_record(f"asset:c{i}-x", 1)]),
                         409, []))
        # the first batch of each cloud goes first, so that the reuse is a reuse
        first = [w for w in work if w[2] == 200 and b'"batch_seq":1,' in w[1]]
        rest = [w for w in work if w not in first]
        results = {}

        def push(items, slot):
            for k, (tok, body, _, _) in enumerate(items):
                results[(slot, k)] = self.ingest(self.sup, body, tok)

        for group in (first, rest):
            threads = [threading.Thread(target=push, args=(group[j::6], (id(group), j)))
                       for j in range(6)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            for j in range(6):
                for k, (tok, body, status, ids) in enumerate(group[j::6]):
                    r = results[((id(group), j), k)]
                    self.assertEqual(r.status, status, r)
                    if status == 200:
                        self.assertEqual(r.json["accepted"], len(ids), r.json)
                        self.assertEqual(len(r.json["rejected"]), 20 - len(ids), r.json)
                    else:
                        self.assertProblem(r, 409, "never reused")
        for i, (cid, _) in enumerate(clouds):
            got = self.received(self.sup, self.admin, cid)
            want = sorted(x for (t, _, st, ids) in work if t == clouds[i][1] for x in ids)
            self.assertEqual(sorted(got), want)
            c = self.sup.request("GET", f"/v1/supervision/clouds/{cid}", token=self.admin).json
            s = c["streams"][0]
            self.assertEqual((s["max_batch_seq"], s["batches"], s["accepted"], s["rejected"],
                              s["gaps"]), (5, 5, 99, 1, []), s)

    def test_encryption_required_when_the_cloud_has_a_secret(self):
        secret = base64.b64encode(os.urandom(32)).decode()
        cid, tok = self.register(secret=secret)
        r = self.ingest(self.sup, self.signer.batch(cid, 1, [asset_record("asset:e", 1)]), tok)
        self.assertProblem(r, 400)
        self.assertEqual(self.received(self.sup, self.admin, cid), {})

    def test_roles(self):
        cid, _ = self.register()
        name = uniq("sv")
        r = self.sup.request("POST", "/v1/users", {"username": name, "password":
                                                   "User-Passw0rd!", "role": "supervisor"},
                             token=self.admin)
        self.assertEqual(r.status, 201, r)
        st = self.sup.login(name, "User-Passw0rd!")
        self.assertEqual(self.sup.request("GET", f"/v1/supervision/clouds/{cid}",
                                          token=st).status, 200)
        self.assertEqual(self.sup.request("GET", f"/v1/supervision/clouds/{cid}/records",
                                          token=st).status, 200)
        self.assertProblem(self.sup.request("DELETE", f"/v1/supervision/clouds/{cid}",
                                            token=st), 403)
        self.assertProblem(self.sup.request("GET", "/v1/supervision/receivers", token=st), 403)
        self.assertProblem(self.sup.request("GET", "/v1/supervision/clouds/" + str(uuid.uuid4()),
                                            token=self.admin), 404)
        self.assertProblem(self.sup.request(
            "GET", f"/v1/supervision/clouds/{cid}/records?dataset=nope", token=self.admin), 400)


class IngestCrash(Base):
    """kill -9 of a supervisor while four clouds push at once: every batch it acknowledged
    is there after the restart, record by record; the others are sent again and taken (or
    counted as duplicates when they were committed but not yet answered); no gap stays."""

    def test_kill9_during_concurrent_pushes(self):
        import threading
        sup = Daemon(extra=["--set", "supervision.accept_pushes=true"]).start()
        try:
            admin = sup.login()
            signer = Signer(self.tmp)
            clouds = []
            for _ in range(4):
                cid = str(uuid.uuid4())
                r = sup.request("POST", "/v1/supervision/clouds",
                                {"cloud_id": cid, "name": uniq("cloud-"),
                                 "public_key_pem": signer.public_pem}, token=admin)
                self.assertEqual(r.status, 201, r)
                batches = []
                for n in range(1, 31):
                    recs = [asset_record(f"asset:{cid[:8]}-{n}-{k}", n * 1000 + k,
                                         name=f"n{n}k{k}") for k in range(40)]
                    batches.append((n, [x["id"] for x in recs], signer.batch(cid, n, recs)))
                clouds.append((cid, r.json["token"], batches))
            acked = {cid: [] for cid, _, _ in clouds}
            stop = threading.Event()

            def push(cid, tok, batches):
                for n, ids, body in batches:
                    if stop.is_set():
                        return
                    try:
                        r = self.ingest(sup, body, tok)
                    except OSError:
                        return  # the daemon is gone
                    if r.status == 200:
                        acked[cid].append((n, ids))

            threads = [threading.Thread(target=push, args=c) for c in clouds]
            for t in threads:
                t.start()
            deadline = time.time() + 60
            while sum(len(v) for v in acked.values()) < 20 and time.time() < deadline:
                time.sleep(0.01)
            sup.kill9()
            stop.set()
            for t in threads:
                t.join()
            total = sum(len(v) for v in acked.values())
            self.assertGreaterEqual(total, 20)
            self.assertLess(total, 120, "the kill came after every batch: nothing was tested")
            sup.start()
            admin = sup.login()
            for cid, tok, batches in clouds:
                got = self.received(sup, admin, cid)
                for n, ids in acked[cid]:
                    for k, x in enumerate(ids):
                        self.assertIn(x, got, f"acknowledged batch {n} lost record {x}")
                        self.assertEqual(got[x]["data"]["name"], f"n{n}k{k}")
                # the rest again, in order: taken, or duplicates of what was committed
                done = {n for n, _ in acked[cid]}
                for n, ids, body in batches:
                    if n in done:
                        continue
                    r = self.ingest(sup, body, tok)
                    self.assertEqual(r.status, 200, r)
                    self.assertEqual(r.json["accepted"] + r.json["duplicates"], 40, r.json)
                got = self.received(sup, admin, cid)
                self.assertEqual(len(got), 30 * 40)
                c = sup.request("GET", f"/v1/supervision/clouds/{cid}", token=admin).json
                self.assertEqual((c["streams"][0]["max_batch_seq"], c["streams"][0]["gaps"]),
                                 (30, []), c["streams"][0])
            self.assertEqual(sup.stop(), 0)
            check_log(self, sup)
        finally:
            sup.cleanup()


class PushEndToEnd(Base, VmHelpers):
    """A cloud pushing to a supervisor, with outages of both."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.files = cls.tmp
        cls.sup = Daemon(extra=["--set", "supervision.accept_pushes=true"]).start()
        cls.cloud = Daemon(extra=["--set", "jobs.workers=2",
                                  "--set", "supervision.asset_sync_interval=1",
                                  "--set", "supervision.push_interval=1",
                                  "--set", "monitor.metrics_access=public"]).start()
        cls.d = cls.cloud
        cls.admin = cls.cloud.login()
        cls.sadmin = cls.sup.login()

    @classmethod
    def tearDownClass(cls):
        logs = []
        for d in (cls.cloud, cls.sup):
            d.stop()
            logs.append(d.read_log())
            d.cleanup()
        super().tearDownClass()
        for log in logs:
            for bad in ("runtime error:", "AddressSanitizer", "LeakSanitizer"):
                if bad in log:
                    raise AssertionError(log[-8000:])

    def cloud_snapshot(self):
        r = self.cloud.request("GET", "/v1/supervision/asset?limit=1000000", token=self.admin)
        self.assertEqual(r.status, 200, r)
        self.assertFalse(r.json["more"])
        return {x["id"]: x for x in r.json["records"]}

    def converge(self, cid, timeout=90):
        """Waits until the supervisor's live records equal the cloud's snapshot."""
        deadline = time.time() + timeout
        while True:
            snap = self.cloud_snapshot()
            got = self.received(self.sup, self.sadmin, cid, "asset")
            live = {k: v for k, v in got.items() if v["op"] == "upsert"}
            same = (set(live) == set(snap) and
                    all(live[k]["seq"] == snap[k]["seq"] and live[k]["data"] == snap[k]["data"]
                        and live[k]["time"] == snap[k]["time"] for k in snap))
            if same:
                rcv = self.receiver()["delivery"][0]
                if rcv["pending_batches"] == 0:
                    return snap, got
            if time.time() > deadline:
                missing = set(snap) - set(live)
                extra = set(live) - set(snap)
                diff = [k for k in set(snap) & set(live) if live[k]["seq"] != snap[k]["seq"]]
                self.fail(f"not converged: missing {sorted(missing)[:5]} extra "
                          f"{sorted(extra)[:5]} differing {diff[:5]}; receiver "
                          f"{self.receiver()}\ncloud log:\n{self.cloud.read_log()[-3000:]}")
            time.sleep(0.3)

    def receiver(self):
        r = self.cloud.request("GET", f"/v1/supervision/receivers/{self.rid}",
                               token=self.admin)
        self.assertEqual(r.status, 200, r)
        return r.json

    def stream(self, cid):
        c = self.sup.request("GET", f"/v1/supervision/clouds/{cid}", token=self.sadmin).json
        return {s["dataset"]: s for s in c["streams"]}["asset"]

    def check_exact(self, cid):
        """Nothing doubled, batch_seqs without gaps, every built batch delivered once."""
        d = self.receiver()["delivery"][0]
        s = self.stream(cid)
        self.assertEqual(d["delivered_batch_seq"], d["last_batch_seq"], d)
        self.assertEqual(s["max_batch_seq"], d["last_batch_seq"], (s, d))
        self.assertEqual(s["batches"], s["max_batch_seq"], s)
        self.assertEqual(s["gaps"], [], s)
        self.assertEqual(d["last_error"], "", d)
        # the supervisor saw each batch_seq exactly once
        con = sqlite3.connect(self.sup.db_path)
        try:
            seqs = [x[0] for x in con.execute(
                "SELECT batch_seq FROM sup_batches_in WHERE cloud_id = ? ORDER BY batch_seq",
                (cid,))]
        finally:
            con.close()
        self.assertEqual(seqs, list(range(1, len(seqs) + 1)))

    def import_servers(self, n, prefix):
        rows = [{"kind": "server", "name": f"{prefix}-{i}", "serial_number": f"{prefix}-SN{i}",
                 "mlps_grade": 1 + i % 5} for i in range(n)]
        r = self.cloud.request("POST", "/v1/assets/import", rows, token=self.admin)
        self.assertEqual(r.status, 200, r)
        return r.json

    def metric(self, name, receiver):
        r = self.cloud.request("GET", "/metrics")
        self.assertEqual(r.status, 200, r)
        for line in r.body.decode().splitlines():
            if line.startswith(name + "{") and f'receiver="{receiver}"' in line:
                return float(line.rsplit(" ", 1)[1])
        return None

    def test_end_to_end(self):
        # the built-in rule exists
        r = self.cloud.request("GET", f"/v1/alarm-rules/{LAG_RULE}", token=self.admin)
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json["name"], r.json["severity"]), ("supervision-lag", "major"))
        self.assertTrue(r.json["selector"].startswith("govcloud_supervision_lag_seconds"),
                        r.json)
        # the cloud does not accept pushes itself
        self.assertProblem(self.ingest(self.cloud, b"{}", "x"), 404, "accept_pushes")
        # register the cloud on the supervisor with its real key, and a shared SM4 secret
        pk = self.cloud.request("GET", "/v1/supervision/public-key", token=self.admin).json
        cid = pk["cloud_id"]
        secret = base64.b64encode(os.urandom(32)).decode()
        r = self.sup.request("POST", "/v1/supervision/clouds",
                             {"cloud_id": cid, "name": "cloud-" + cid[:8],
                              "public_key_pem": pk["public_key_pem"], "secret": secret},
                             token=self.sadmin)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json["fingerprint_sm3"], pk["fingerprint_sm3"])
        token = r.json["token"]
        # the cloud's resources: a host, a VM, imported servers
        host = self.mkhost()
        flavor = self.mkflavor()
        image = self.mkimage()
        dept = self.mkdept_()
        vm = self.create_vm(flavor["id"], image["id"], dept=dept["id"])
        self.import_servers(40, uniq("a"))
        # the receiver (token and secret are never shown back)
        name = uniq("sup-")
        r = self.cloud.request("POST", "/v1/supervision/receivers",
                               {"name": name, "url": self.sup.url + "/v1/supervision/ingest",
                                "token": token, "secret": secret, "datasets": ["asset"]},
                               token=self.admin)
        self.assertEqual(r.status, 201, r)
        self.assertNotIn("token", r.json)
        self.assertNotIn("secret", r.json)
        self.assertTrue(r.json["encrypted"])
        self.rid = r.json["id"]
        snap, got = self.converge(cid)
        self.assertIn("host:" + host["id"], snap)
        self.assertIn("vm:" + vm["id"], snap)
        self.check_exact(cid)
        d = self.receiver()["delivery"][0]
        self.assertIsNotNone(d["last_success_at"])
        self.assertEqual(self.metric("govcloud_supervision_pending_batches", name) or 0, 0)
        # what went over the wire was encrypted
        con = sqlite3.connect(self.cloud.db_path)
        try:
            bodies = [x[0] for x in con.execute("SELECT body FROM sup_outbox")]
        finally:
            con.close()
        self.assertTrue(bodies)
        for b in bodies:
            j = json.loads(b)
            self.assertIn("encryption", j)
            self.assertNotIn("records", j)

        # phase 2: the supervisor stops (SIGTERM); the cloud keeps changing
        self.assertEqual(self.sup.stop(), 0)
        self.import_servers(30, uniq("b"))
        victim = [k for k, v in snap.items() if v["data"]["kind"] == "server"][0]
        self.assertEqual(self.cloud.request("DELETE", f"/v1/assets/{victim}",
                                            token=self.admin).status, 204)
        self.delete_vm(vm["id"])
        deadline = time.time() + 30
        while True:
            d = self.receiver()["delivery"][0]
            lag = self.metric("govcloud_supervision_lag_seconds", name)
            if d["pending_batches"] > 0 and d["last_error"] and lag and lag >= 2:
                break
            if time.time() > deadline:
                self.fail(f"no pending batch / lag while the supervisor is down: {d} {lag}")
            time.sleep(0.3)
        self.assertGreater(self.metric("govcloud_supervision_pending_batches", name), 0)
        self.sup.start()
        snap, got = self.converge(cid)
        self.assertEqual(got[victim]["op"], "delete")
        self.assertEqual(got["vm:" + vm["id"]]["op"], "delete")
        self.check_exact(cid)
        self.assertEqual(self.receiver()["delivery"][0]["lag_seconds"], 0)

        # phase 3: kill -9 of the supervisor mid-stream
        self.import_servers(1200, uniq("c"))
        time.sleep(0.3)
        self.sup.kill9()
        self.import_servers(20, uniq("d"))
        time.sleep(1.5)
        self.sup.start()
        self.converge(cid)
        self.check_exact(cid)

        # phase 4: kill -9 of the cloud while it builds and sends
        self.import_servers(3000, uniq("e"))
        time.sleep(0.3)
        self.cloud.kill9()
        self.cloud.start()
        self.admin = self.cloud.login()
        self.converge(cid, timeout=120)
        self.check_exact(cid)
        check_log(self, self.sup)

    def test_receiver_validation_and_roles(self):
        bad = [({"url": "ftp://x"}, "url"), ({"datasets": ["nope"]}, "datasets/0"),
               ({"datasets": ["asset", "asset"]}, "datasets/1"),
               ({"secret": "c2hvcnQ="}, "secret"), ({"name": "bad name!"}, "name")]
        for patch, field in bad:
            body = {"name": uniq("r-"), "url": "http://127.0.0.1:9/v1/supervision/ingest",
                    "token": "t", **patch}
            r = self.cloud.request("POST", "/v1/supervision/receivers", body, token=self.admin)
            self.assertProblem(r, 400)
            self.assertEqual(r.json.get("field"), field, r.json)
        r = self.cloud.request("POST", "/v1/supervision/receivers",
                               {"name": uniq("r-"), "url": "http://127.0.0.1:9/x",
                                "token": "t", "enabled": False}, token=self.admin)
        self.assertEqual(r.status, 201, r)
        rid = r.json["id"]
        self.assertEqual(r.json["datasets"], ["asset", "environment", "log", "metric", "alarm", "availability", "backup"])
        self.assertFalse(r.json["encrypted"])
        r = self.cloud.request("PATCH", f"/v1/supervision/receivers/{rid}",
                               {"url": "https://sup.example/v1/supervision/ingest"},
                               token=self.admin)
        self.assertEqual((r.status, r.json["url"], r.json["version"]),
                         (200, "https://sup.example/v1/supervision/ingest", 2))
        auditor = self.mkuser_("auditor")
        dept = self.mkdept_()
        duser = self.mkuser_("department_admin", dept["id"])
        for tok in (auditor["token"], duser["token"]):
            self.assertProblem(self.cloud.request("GET", "/v1/supervision/receivers",
                                                  token=tok), 403)
            self.assertProblem(self.cloud.request("DELETE", f"/v1/supervision/receivers/{rid}",
                                                  token=tok), 403)
        r = self.cloud.request("DELETE", f"/v1/supervision/receivers/{rid}", token=self.admin)
        self.assertEqual(r.status, 204, r)
        ev = self.cloud.request("GET", "/v1/audit-events?resource_id=" + rid, token=self.admin)
        self.assertEqual(sorted(e["action"] for e in ev.json["items"]
                                if e["outcome"] == "success"),
                         ["supervision_receiver.create", "supervision_receiver.delete",
                          "supervision_receiver.update"])
        self.assertNotIn('"token"', json.dumps(ev.json))


if __name__ == "__main__":
    unittest.main()


class AllDatasetsEndToEnd(Base):
    """Every dataset pushed: the cloud has assets (domestic and not), raises and resolves an
    alarm, reads a Modbus sensor; the supervisor ends with exactly the records of the
    cloud's pull for each, also across a restart of the supervisor, and its views
    (GET /v1/supervision/clouds/{id}/summary, /overview) agree with the cloud's own figures."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sup = Daemon(extra=["--set", "supervision.accept_pushes=true"]).start()
        cls.cloud = Daemon(extra=["--set", "supervision.asset_sync_interval=1",
                                  "--set", "supervision.push_interval=1",
                                  "--set", "tsdb.test_ingest=true",
                                  "--set", "alarm.evaluation_interval=1",
                                  "--set", "environment.interval=1"]).start()
        cls.admin = cls.cloud.login()
        cls.sadmin = cls.sup.login()

    @classmethod
    def tearDownClass(cls):
        logs = []
        for d in (cls.cloud, cls.sup):
            d.stop()
            logs.append(d.read_log())
            d.cleanup()
        super().tearDownClass()
        for log in logs:
            for bad in ("runtime error:", "AddressSanitizer", "LeakSanitizer"):
                if bad in log:
                    raise AssertionError(log[-8000:])

    def c(self, method, path, body=None):
        return self.cloud.request(method, path, body, token=self.admin)

    def pull(self, dataset):
        r = self.c("GET", f"/v1/supervision/{dataset}?limit=1000000")
        self.assertEqual(r.status, 200, r)
        self.assertFalse(r.json["more"])
        return {x["id"]: x for x in r.json["records"]}

    def stored(self, cid, dataset):
        """The supervisor's records as stored (the API prints reals with 15 digits; the
        store keeps what the cloud sent, to the bit)."""
        con = sqlite3.connect(f"file:{self.sup.db_path}?mode=ro", uri=True)
        try:
            rows = con.execute("SELECT record_id, seq, data FROM sup_records WHERE"
                               " cloud_id = ? AND dataset = ? AND op = 'upsert'",
                               (cid, dataset)).fetchall()
        finally:
            con.close()
        return {r[0]: {"seq": r[1], "data": json.loads(r[2])} for r in rows}

    def same(self, cid, dataset):
        want = self.pull(dataset)
        got = self.stored(cid, dataset)
        if set(want) != set(got):
            return False
        for k, w in want.items():
            if (got[k]["seq"], canon(got[k]["data"])) != (w["seq"], canon(w["data"])):
                return False
        return True

    def converge(self, cid, datasets, timeout=90):
        deadline = time.time() + timeout
        while not all(self.same(cid, ds) for ds in datasets):
            if time.time() > deadline:
                bad = [ds for ds in datasets if not self.same(cid, ds)]
                detail = {}
                for ds in bad:
                    want = self.pull(ds)
                    got = self.stored(cid, ds)
                    diff = [(want[k], got[k]) for k in want if k in got and
                            (got[k]["seq"], canon(got[k]["data"])) !=
                            (want[k]["seq"], canon(want[k]["data"]))][:1]
                    detail[ds] = (sorted(set(want) - set(got))[:3],
                                  sorted(set(got) - set(want))[:3], len(want), len(got), diff)
                self.fail(f"the supervisor never matched the cloud for {bad}: {detail} "
                          f"{self.c('GET', '/v1/supervision/receivers').json}")
            time.sleep(0.5)

    def alarm_of(self, rule_id):
        r = self.c("GET", f"/v1/alarms?rule_id={rule_id}")
        return r.json["items"]

    def test_every_dataset_and_the_views(self):
        from test_environment import ModbusServer
        pk = self.c("GET", "/v1/supervision/public-key").json
        cid = pk["cloud_id"]
        r = self.sup.request("POST", "/v1/supervision/clouds",
                             {"cloud_id": cid, "name": "市政务云-" + cid[:6],
                              "public_key_pem": pk["public_key_pem"]}, token=self.sadmin)
        self.assertEqual(r.status, 201, r)
        token = r.json["token"]
        # assets: domestic and foreign servers and an OS layer
        rows = [{"kind": "server", "name": f"srv-{i}", "serial_number": f"E2E-{i}",
                 "layer": "server", "cpu_arch": "aarch64" if i % 2 else "x86_64",
                 "domestic": {"flag": i % 2 == 1, "basis": "信创目录" if i % 2 else ""}}
                for i in range(6)]
        rows.append({"kind": "software", "name": "麒麟 OS", "layer": "os",
                     "domestic": {"flag": True, "basis": "证书 123"}})
        r = self.c("POST", "/v1/assets/import", rows)
        self.assertEqual(r.status, 200, r)
        # an alarm that fires and is acknowledged
        r = self.c("POST", "/v1/alarm-rules", {"name": "e2e-hot", "selector": "gc_e2e_temp",
                                              "op": ">", "threshold": 30, "severity": "major"})
        self.assertEqual(r.status, 201, r)
        rule = r.json["id"]

        def inject(v):
            self.assertEqual(self.c("POST", "/v1/metrics/test-samples", {"samples": [
                {"metric": "gc_e2e_temp", "t_ms": int(time.time() * 1000),
                 "value": v}]}).status, 200)
        inject(35)
        deadline = time.time() + 20
        while not [a for a in self.alarm_of(rule) if a["status"] == "firing"]:
            self.assertLess(time.time(), deadline, "the alarm never fired")
            time.sleep(0.3)
        al = self.alarm_of(rule)[0]
        self.assertEqual(self.c("POST", f"/v1/alarms/{al['id']}/ack", {}).status, 200)
        # a sensor: 31.0 °C at the inlet, beyond GB 50174's 27 °C — the built-in
        # environment-limit alarm fires on it (its `for` shortened for the test)
        rules = {x["name"]: x["id"] for x in self.c("GET", "/v1/alarm-rules?limit=100")
                 .json["items"]}
        env_rule = rules["environment-limit"]
        self.assertEqual(self.c("PATCH", f"/v1/alarm-rules/{env_rule}",
                                {"for_seconds": 0}).status, 200)
        mb = ModbusServer(["i 0 310", "i 1 450"])
        try:
            r = self.c("POST", "/v1/sensors", {"name": "e2e-th", "driver": "modbus",
                                               "address": "127.0.0.1", "port": mb.port,
                                               "profile": "modbus-th-sensor", "room": "A201",
                                               "room_class": "A", "context": "intake"})
            self.assertEqual(r.status, 201, r)
            sensor = r.json["id"]
            deadline = time.time() + 20
            while not [x for x in self.pull("environment").values()
                       if x["data"]["sensor_id"] == sensor]:
                self.assertLess(time.time(), deadline, "no environment record")
                time.sleep(0.3)
            deadline = time.time() + 20
            while not [a for a in self.alarm_of(env_rule)
                       if a["labels"].get("sensor_id") == sensor and
                       a["labels"].get("reading") == "temperature"]:
                self.assertLess(time.time(), deadline, "no environment-limit alarm")
                time.sleep(0.3)
            env_alarm = [a for a in self.alarm_of(env_rule)
                         if a["labels"].get("reading") == "temperature"][0]
            self.assertEqual((env_alarm["status"], env_alarm["severity"]),
                             ("firing", "critical"))
            self.assertIn("A201", env_alarm["summary"])
            # the receiver: every dataset (the default)
            r = self.c("POST", "/v1/supervision/receivers",
                       {"name": "up", "url": self.sup.url + "/v1/supervision/ingest",
                        "token": token})
            self.assertEqual(r.status, 201, r)
            self.assertIn("environment", r.json["datasets"])
            # the sensor stops so that the environment dataset stops growing
            self.assertEqual(self.c("DELETE", f"/v1/sensors/{sensor}").status, 204)
        finally:
            mb.stop()
        self.converge(cid, ("asset", "alarm", "log", "environment", "availability"))
        # the supervisor restarts while the alarm resolves: nothing lost or doubled
        self.assertEqual(self.sup.stop(), 0)
        inject(20)
        deadline = time.time() + 20
        while not [a for a in self.alarm_of(rule) if a["status"] == "resolved"]:
            self.assertLess(time.time(), deadline, "the alarm never resolved")
            time.sleep(0.3)
        self.sup.start()
        self.sadmin = self.sup.login()
        self.converge(cid, ("asset", "alarm", "log", "environment", "availability"))
        got = self.received(self.sup, self.sadmin, cid, "alarm")
        mine = [v for v in got.values() if v["data"]["labels"].get("alertname") == "e2e-hot"]
        self.assertEqual(len(mine), 1, mine)
        self.assertEqual(mine[0]["data"]["status"], "resolved")
        self.assertIn(f"alarm:{env_alarm['id']}", got)
        c = self.sup.request("GET", f"/v1/supervision/clouds/{cid}", token=self.sadmin).json
        for s in c["streams"]:
            self.assertEqual(s["gaps"], [], s)
        # the views
        summary = self.sup.request("GET", f"/v1/supervision/clouds/{cid}/summary",
                                   token=self.sadmin)
        self.assertEqual(summary.status, 200, summary)
        sm = summary.json
        local = self.c("GET", "/v1/supervision/substitution-rate").json
        assets = self.pull("asset")
        self.assertEqual(sm["assets"]["total"], len(assets))
        self.assertEqual(sm["assets"]["by_cpu_arch"].get("aarch64"), 3)
        self.assertEqual(sm["assets"]["substitution_rate"]["overall"], local["overall"])
        self.assertEqual(sm["environment"]["sensors"], 1)
        self.assertEqual(sm["environment"]["latest_readings_by_status"]["critical"] >= 1, True,
                         sm["environment"])
        self.assertTrue(sm["environment"]["critical_readings"])
        self.assertEqual({s["dataset"] for s in sm["streams"]} >= {"asset", "alarm", "log"},
                         True, sm["streams"])
        ov = self.sup.request("GET", "/v1/supervision/overview", token=self.sadmin).json
        self.assertEqual(ov["cloud_count"], 1)
        self.assertEqual(ov["assets"]["total"], len(assets))
        check_log(self, self.sup)
