#!/usr/bin/env python3
"""A second, independent implementation of the supervision batch envelope (the canonical form
of docs/supervision-spec.md in Python, the cryptography through the openssl command-line
tool), used by test_supervision_envelope to check what the C code makes.

usage: supervision_interop.py verify BATCH.json PUBLIC.pem [SECRET_HEX]
         verifies the SM2 signature (openssl pkeyutl); when the batch is encrypted, derives
         the keys (openssl kdf HKDF), checks the MAC (openssl dgst -mac HMAC) and decrypts
         (openssl enc -sm4-ctr); prints the canonical records; exit 0 when all holds
       supervision_interop.py canon FILE.json
         prints the canonical form of the JSON value in FILE"""

import base64
import json
import os
import re
import subprocess
import sys
import tempfile

SM2_ID = "1234567812345678"


def canon_str(s):
    out = ['"']
    for ch in s:
        c = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif c < 0x20:
            short = {8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r"}
            out.append(short.get(c, "\\u%04X" % c))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def canon_real(x):
    s = "%.17g" % x
    if re.fullmatch(r"-?[0-9]+", s):
        s += ".0"
    return re.sub(r"e\+?(-?)0*([0-9])", r"e\1\2", s)


def canon(v):
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return canon_real(v)
    if isinstance(v, str):
        return canon_str(v)
    if isinstance(v, list):
        return "[" + ",".join(canon(x) for x in v) + "]"
    # keys by code point: Python compares str by code point, as UTF-8 bytes sort
    return "{" + ",".join(canon_str(k) + ":" + canon(v[k]) for k in sorted(v)) + "}"


def no_dupes(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise ValueError("duplicate key " + k)
        d[k] = v
    return d


def run(args, data=None):
    return subprocess.run(args, input=data, capture_output=True, check=True).stdout


def kdf(secret_hex, info, length):
    out = run(["openssl", "kdf", "-keylen", str(length), "-kdfopt", "digest:SM3",
               "-kdfopt", "hexkey:" + secret_hex, "-kdfopt", "info:" + info, "HKDF"])
    return out.decode().strip().replace(":", "").lower()


def verify(batch_path, pub_path, secret_hex=None):
    with open(batch_path, "rb") as f:
        batch = json.loads(f.read().decode("utf-8"), object_pairs_hook=no_dupes)
    sig = base64.b64decode(batch["signature"]["value"], validate=True)
    body = {k: v for k, v in batch.items() if k != "signature"}
    with tempfile.TemporaryDirectory() as tmp:
        msg = os.path.join(tmp, "body")
        sigf = os.path.join(tmp, "sig")
        with open(msg, "wb") as f:
            f.write(canon(body).encode("utf-8"))
        with open(sigf, "wb") as f:
            f.write(sig)
        r = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", pub_path,
                            "-rawin", "-digest", "sm3", "-in", msg, "-sigfile", sigf,
                            "-pkeyopt", "distid:" + SM2_ID], capture_output=True)
        if r.returncode != 0:
            sys.stderr.write("signature: " + r.stdout.decode() + r.stderr.decode())
            return 1
        if "records" in batch:
            print(canon(batch["records"]))
            return 0
        if not secret_hex:
            sys.stderr.write("encrypted batch and no secret\n")
            return 1
        enc = batch["encryption"]
        kenc = kdf(secret_hex, "govcloud-supervision-1.0 sm4-ctr", 16)
        kmac = kdf(secret_hex, "govcloud-supervision-1.0 hmac-sm3", 32)
        iv = base64.b64decode(enc["iv"], validate=True)
        ct = base64.b64decode(enc["ciphertext"], validate=True)
        aad = "govcloud-supervision-1.0\n%s\n%s\n%s\n%d\n" % (
            batch["cloud_id"], batch["dataset"], batch["schema_version"], batch["batch_seq"])
        macin = os.path.join(tmp, "macin")
        with open(macin, "wb") as f:
            f.write(aad.encode() + iv + ct)
        out = run(["openssl", "dgst", "-sm3", "-mac", "HMAC", "-macopt", "hexkey:" + kmac,
                   "-r", macin]).decode().split()[0]
        if bytes.fromhex(out) != base64.b64decode(enc["mac"], validate=True):
            sys.stderr.write("mac does not match\n")
            return 1
        ctf = os.path.join(tmp, "ct")
        with open(ctf, "wb") as f:
            f.write(ct)
        pt = run(["openssl", "enc", "-d", "-sm4-ctr", "-K", kenc, "-iv", iv.hex(), "-in", ctf])
        records = json.loads(pt.decode("utf-8"), object_pairs_hook=no_dupes)
        if canon(records).encode() != pt:
            sys.stderr.write("the decrypted records are not in canonical form\n")
            return 1
        print(canon(records))
        return 0


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "verify":
        return verify(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None)
    if len(sys.argv) == 3 and sys.argv[1] == "canon":
        with open(sys.argv[2], "rb") as f:
            sys.stdout.write(canon(json.loads(f.read().decode("utf-8"))))
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
