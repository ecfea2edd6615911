#!/usr/bin/env python3
"""Re-verifies a cordon audit log with nothing of cordon's: SHA-256
(hashlib), JSON (json) and Ed25519 (PyNaCl). See docs/gate/audit.md.

Usage: verify.py LOG.jsonl TRUSTED_PUBLIC_KEY_BASE64...

LOG.jsonl has one Kafka record a line, in offset order:
{"offset": N, "key": "<key>", "value": "<value>"}.
Prints "ok RECORDS HEAD_SEQ HEAD_HASH LAST_CHECKPOINT_SEQ" and exits 0,
or "tampered SEQ OFFSET REASON" and exits 1.
"""
import base64
import hashlib
import json
import sys

import nacl.exceptions
import nacl.signing


def canonical(obj):
    # RFC 8785 for objects of strings and integers below 2**53: what every
    # audit record and checkpoint message is.
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def main():
    trusted = {}
    for k in sys.argv[2:]:
        pub = base64.b64decode(k)
        trusted[hashlib.sha256(pub).hexdigest()[:16]] = nacl.signing.VerifyKey(pub)
    prev_seq, prev_hash, records, last_cp = 0, "0" * 64, 0, 0
    pending = None  # a record whose link to its successor is not yet checked

    def tampered(seq, offset, reason):
        print("tampered", seq, offset, reason)
        sys.exit(1)

    with open(sys.argv[1], encoding="utf-8") as f:
        for line in f:
            e = json.loads(line)
            value = e["value"].encode("utf-8")
            try:
                rec = json.loads(value)
            except ValueError:
                tampered(e["key"], e["offset"], "not JSON")
            if canonical(rec) != value:
                tampered(rec.get("seq"), e["offset"], "not canonical")
            if rec.get("v") != "cordon-audit/v1" or not isinstance(rec.get("seq"), int) or e["key"] != str(rec["seq"]):
                tampered(rec.get("seq"), e["offset"], "not a record of the log")
            seq = rec["seq"]
            if seq != prev_seq + 1:
                tampered(seq, e["offset"], "out of sequence after %d" % prev_seq)
            if rec["prev"] != prev_hash:
                # the previous record no longer hashes to what this one says
                tampered(prev_seq, pending, "altered")
            h = hashlib.sha256(value).hexdigest()
            if rec["kind"] == "checkpoint":
                cp = json.loads(rec["body"])
                if cp["seq"] != prev_seq or cp["hash"] != prev_hash:
                    tampered(seq, e["offset"], "checkpoint covers another record")
                key = trusted.get(cp["key"])
                if key is None:
                    tampered(seq, e["offset"], "checkpoint key not trusted")
                msg = canonical({"v": "cordon-audit-checkpoint/v1", "seq": cp["seq"], "hash": cp["hash"]})
                try:
                    key.verify(msg, base64.b64decode(cp["signature"]))
                except nacl.exceptions.BadSignatureError:
                    tampered(seq, e["offset"], "bad checkpoint signature")
                last_cp = seq
            prev_seq, prev_hash, pending = seq, h, e["offset"]
            records += 1
    print("ok", records, prev_seq, prev_hash, last_cp)


if __name__ == "__main__":
    main()
