#!/usr/bin/env python3
"""Writes a small TUF repository with python-tuf, for the interop test.

Usage: make_repo.py OUT_DIR

OUT_DIR/metadata holds 1.root.json, 2.root.json (a root key rotation,
cross-signed), consistent-snapshot versioned targets/snapshot metadata and a
delegated role "team"; OUT_DIR/targets holds hash-prefixed target files.
OUT_DIR/expected/<target path> holds each target's bytes.
"""

import os
import sys
from datetime import datetime, timedelta, timezone

from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import (
    DelegatedRole,
    Delegations,
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

out = sys.argv[1]
meta_dir = os.path.join(out, "metadata")
targets_dir = os.path.join(out, "targets")
expected_dir = os.path.join(out, "expected")
os.makedirs(meta_dir)
expires = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=7)


def save(md: Metadata, name: str) -> bytes:
    data = md.to_bytes(JSONSerializer(compact=False))
    with open(os.path.join(meta_dir, name), "wb") as f:
        f.write(data)
    return data


def add_file(targets: Targets, path: str, data: bytes) -> None:
    tf = TargetFile.from_data(path, data, ["sha256", "sha512"])
    targets.targets[path] = tf
    dirname, _, basename = path.rpartition("/")
    for digest in tf.hashes.values():
        dest = os.path.join(targets_dir, dirname, f"{digest}.{basename}")
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(dest, "wb") as f:
            f.write(data)
    dest = os.path.join(expected_dir, path)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    with open(dest, "wb") as f:
        f.write(data)


signers = {role: CryptoSigner.generate_ed25519() for role in ("root", "timestamp", "snapshot", "targets")}
signers["root2"] = CryptoSigner.generate_ecdsa()
signers["team"] = CryptoSigner.generate_rsa()

root = Root(expires=expires, consistent_snapshot=True)
for role in ("root", "timestamp", "snapshot", "targets"):
    root.add_key(signers[role].public_key, role)
md = Metadata(root)
md.sign(signers["root"])
save(md, "1.root.json")

# Root v2: add an ECDSA root key, threshold 2, signed by old and new keys.
root.version = 2
root.add_key(signers["root2"].public_key, "root")
root.roles["root"].threshold = 2
md = Metadata(root)
md.sign(signers["root"])
md.sign(signers["root2"], append=True)
save(md, "2.root.json")

targets = Targets(expires=expires)
add_file(targets, "hello.txt", b"hello from python-tuf\n")
team = Targets(expires=expires)
add_file(team, "nested/dir/data.bin", bytes(range(256)) * 40)
targets.delegations = Delegations(
    {}, roles={"team": DelegatedRole("team", [], 1, True, paths=["nested/*/*"])}
)
targets.add_key(signers["team"].public_key, "team")

md = Metadata(team)
md.sign(signers["team"])
team_bytes = save(md, "1.team.json")
md = Metadata(targets)
md.sign(signers["targets"])
targets_bytes = save(md, "1.targets.json")

snapshot = Snapshot(expires=expires)
snapshot.meta["targets.json"] = MetaFile.from_data(1, targets_bytes, ["sha256"])
snapshot.meta["team.json"] = MetaFile(1)
md = Metadata(snapshot)
md.sign(signers["snapshot"])
snapshot_bytes = save(md, "1.snapshot.json")

timestamp = Timestamp(expires=expires)
timestamp.snapshot_meta = MetaFile.from_data(1, snapshot_bytes, ["sha256", "sha512"])
md = Metadata(timestamp)
md.sign(signers["timestamp"])
save(md, "timestamp.json")
