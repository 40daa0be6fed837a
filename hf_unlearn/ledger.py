"""Salted Merkle commitments to removed ids, and the local ledger that chains deletion requests.

Construction (docs/FORMATS.md, "Removal commitment", is the normative text):

* canonical id: ``b"int:" + decimal ASCII`` for an integer id, ``b"str:" + UTF-8`` for a string id. The type tag
  keeps the integer ``7`` and the string ``"7"`` apart.
* leaf = SHA-256(salt ‖ canonical id), with a fresh 32-byte random salt per id: without the salt a small integer id
  could be found by trying every candidate against the published hash.
* leaf order: ascending by leaf hash (bytes), so the position of a leaf reveals nothing about its id.
* node = SHA-256(0x01 ‖ left ‖ right). A level with an odd number of nodes promotes its last node unchanged to the
  next level (no duplication). The root of the tree is the request's commitment; a single leaf is its own root.

The ledger (``ledger.json``, next to ``removed_ids.json``) holds, per request, the ids, their salts in leaf order and
the public summary that goes in the card. It never leaves the machine: it is not pushed to the Hub.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import numbers
import os
import secrets
from typing import Any, Iterable

__all__ = [
    "LEDGER_NAME", "LEDGER_FORMAT", "LEDGER_VERSION", "PROOF_FORMAT", "SCHEME", "ALGORITHM",
    "canonical_id", "leaf_hash", "node_hash", "merkle_root", "merkle_proof", "root_from_proof", "verify_proof",
    "commit_ids", "Commitment", "read_ledger", "write_ledger", "check_ledger", "new_request", "public_requests",
    "make_proof", "LedgerError",
]

LEDGER_NAME = "ledger.json"
LEDGER_FORMAT = "hf-unlearn-ledger"
LEDGER_VERSION = 1
PROOF_FORMAT = "hf-unlearn-removal-proof"
ALGORITHM = "merkle-sha256"
SCHEME = ("salted Merkle tree, hf-unlearn v1: leaf = sha256(salt32 || canonical id) with canonical id "
          "b'int:'+decimal or b'str:'+utf8; leaves sorted by hash; node = sha256(0x01 || left || right); "
          "an odd last node is promoted unchanged (docs/FORMATS.md)")
SALT_BYTES = 32
NODE_PREFIX = b"\x01"
#: Metrics copied from the run into each request's public summary.
REQUEST_METRICS = ("acc_forget", "acc_retain", "acc_test", "acc_val", "mia", "rf_jsd")


class LedgerError(ValueError):
    """A ledger or proof that cannot be used (missing, malformed, inconsistent)."""


# ----------------------------------------------------------------------------------------------------------------
# the tree
# ----------------------------------------------------------------------------------------------------------------
def canonical_id(value: Any) -> bytes:
    """The bytes that identify a sample id in a leaf: ``b"int:42"`` or ``b"str:digits-0042"``."""
    if isinstance(value, bool) or value is None:
        raise LedgerError(f"sample id {value!r} is neither an integer nor a string")
    if isinstance(value, numbers.Integral):  # numpy integers too
        return b"int:" + str(int(value)).encode("ascii")
    if isinstance(value, str):
        return b"str:" + value.encode("utf-8")
    raise LedgerError(f"sample id {value!r} ({type(value).__name__}) is neither an integer nor a string")


def leaf_hash(salt: bytes, value: Any) -> bytes:
    if len(salt) != SALT_BYTES:
        raise LedgerError(f"a salt must be {SALT_BYTES} bytes, got {len(salt)}")
    return hashlib.sha256(salt + canonical_id(value)).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _levels(leaves: list[bytes]) -> list[list[bytes]]:
    if not leaves:
        raise LedgerError("a Merkle tree needs at least one leaf")
    levels = [list(leaves)]
    while len(levels[-1]) > 1:
        level = levels[-1]
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])  # odd node promoted unchanged
        levels.append(nxt)
    return levels


def merkle_root(leaves: list[bytes]) -> bytes:
    """Root over leaf hashes given in leaf order (ascending; see :func:`commit_ids`)."""
    return _levels(leaves)[-1][0]


def merkle_proof(leaves: list[bytes], index: int) -> list[dict]:
    """Sibling path from leaf ``index`` to the root: ``[{"side": "left"|"right", "hash": hex}, ...]``, leaf first.
    A level where the node is promoted (odd, last) contributes no step."""
    path = []
    for level in _levels(leaves)[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            path.append({"side": "left" if sibling < index else "right", "hash": level[sibling].hex()})
        index //= 2
    return path


def root_from_proof(value: Any, salt: bytes, path: list[dict]) -> bytes:
    """Recompute the root from an id, its salt and a sibling path (raises LedgerError when malformed)."""
    node = leaf_hash(salt, value)
    if not isinstance(path, list):
        raise LedgerError("the proof's path must be a list")
    for step in path:
        try:
            side, sibling = step["side"], bytes.fromhex(step["hash"])
        except (TypeError, KeyError, ValueError) as e:
            raise LedgerError(f"malformed path step {step!r}") from e
        if len(sibling) != 32 or side not in ("left", "right"):
            raise LedgerError(f"malformed path step {step!r}")
        node = node_hash(sibling, node) if side == "left" else node_hash(node, sibling)
    return node


def verify_proof(proof: dict, root_hex: str) -> bool:
    """True when ``proof`` (id, salt, path) hashes to ``root_hex``."""
    try:
        return root_from_proof(proof["id"], bytes.fromhex(proof["salt"]), proof["path"]).hex() == root_hex
    except (KeyError, TypeError, ValueError):
        return False


class Commitment:
    """The salted tree of one request: ``ids`` and ``salts`` in leaf order, ``root`` (hex)."""

    def __init__(self, ids: list, salts: list[bytes]):
        pairs = sorted(((leaf_hash(s, i), i, s) for i, s in zip(ids, salts)), key=lambda t: t[0])
        self.leaves = [p[0] for p in pairs]
        self.ids = [p[1] for p in pairs]
        self.salts = [p[2] for p in pairs]
        self.root = merkle_root(self.leaves).hex()

    def to_record(self) -> dict:
        """The ``commitment`` entry of a removal record (public)."""
        return {"algorithm": ALGORITHM, "scheme": SCHEME, "value": self.root, "num_leaves": len(self.ids)}


def commit_ids(ids: Iterable[Any], salts: dict | None = None) -> Commitment:
    """Commit to the unique ``ids`` with fresh random salts (or the given ``{id: salt bytes}``)."""
    unique = list(dict.fromkeys(_plain(i) for i in ids))
    salts = salts or {}
    return Commitment(unique, [salts.get(i) or secrets.token_bytes(SALT_BYTES) for i in unique])


def _plain(value):
    return int(value) if isinstance(value, numbers.Integral) and not isinstance(value, bool) else value


# ----------------------------------------------------------------------------------------------------------------
# the ledger file
# ----------------------------------------------------------------------------------------------------------------
def new_request(commitment: Commitment, *, method: str, record: dict, metrics: dict | None) -> dict:
    """One ledger entry: the public summary (what the card lists) plus the private ``leaves``."""
    dataset = record.get("dataset") or {}
    unlearned = (metrics or {}).get("unlearned") or {}
    return {
        "method": method,
        "num_removed": record.get("num_removed"),
        "commitment": commitment.root,
        "date": datetime.datetime.now(datetime.timezone.utc).date().isoformat(),
        "dataset": {k: dataset.get(k) for k in ("name", "config", "split", "revision", "fingerprint")},
        "id_column": record.get("id_column"),
        "metrics": {k: round(float(unlearned[k]), 6) for k in REQUEST_METRICS
                    if isinstance(unlearned.get(k), (int, float)) and not isinstance(unlearned.get(k), bool)},
        "leaves": [{"id": i, "salt": s.hex()} for i, s in zip(commitment.ids, commitment.salts)],
    }


def public_requests(requests: list[dict]) -> list[dict]:
    """The card's ``requests``: each entry without its ids and salts, numbered from 1, oldest first."""
    return [{"request": k, **{key: v for key, v in r.items() if key != "leaves"}} for k, r in enumerate(requests, 1)]


def write_ledger(path: str, requests: list[dict]) -> None:
    with open(path, "w") as f:
        json.dump({"format": LEDGER_FORMAT, "version": LEDGER_VERSION, "scheme": SCHEME, "requests": requests}, f,
                  indent=1)


def check_ledger(ledger: dict, where: str) -> list[dict]:
    """The requests of a parsed ledger, after checking its format and that every root matches its leaves."""
    if not isinstance(ledger, dict) or ledger.get("format") != LEDGER_FORMAT:
        raise LedgerError(f"{where} is not an hf-unlearn ledger (no \"format\": \"{LEDGER_FORMAT}\")")
    if ledger.get("version") != LEDGER_VERSION:
        raise LedgerError(f"{where} has ledger version {ledger.get('version')!r}; this hf-unlearn reads version "
                          f"{LEDGER_VERSION}")
    requests = ledger.get("requests")
    if not isinstance(requests, list) or not requests:
        raise LedgerError(f"{where} lists no requests")
    for k, r in enumerate(requests, 1):
        try:
            c = Commitment([leaf["id"] for leaf in r["leaves"]], [bytes.fromhex(leaf["salt"]) for leaf in r["leaves"]])
        except (KeyError, TypeError, ValueError) as e:
            raise LedgerError(f"{where}: request {k} is malformed ({type(e).__name__}: {e})") from e
        if c.root != r.get("commitment"):
            raise LedgerError(f"{where}: request {k}'s ids and salts do not hash to its commitment "
                              f"{r.get('commitment')}; the ledger was altered")
    return requests


def read_ledger(path: str) -> list[dict]:
    """Read and check a ledger file; LedgerError (one line) when missing or inconsistent."""
    if not os.path.isfile(path):
        raise LedgerError(f"ledger {path} does not exist")
    try:
        with open(path) as f:
            ledger = json.load(f)
    except (OSError, ValueError) as e:
        raise LedgerError(f"ledger {path} is not readable JSON ({type(e).__name__}: {str(e).splitlines()[0]})") from e
    return check_ledger(ledger, path)


def make_proof(requests: list[dict], value: str) -> dict:
    """The inclusion proof of the id spelled ``value`` (as on a command line) in the newest request holding it."""
    for k in range(len(requests), 0, -1):
        r = requests[k - 1]
        ids = [leaf["id"] for leaf in r["leaves"]]
        matches = [j for j, i in enumerate(ids) if str(i) == value]
        if not matches:
            continue
        j = matches[0]
        c = Commitment(ids, [bytes.fromhex(leaf["salt"]) for leaf in r["leaves"]])
        return {"format": PROOF_FORMAT, "version": LEDGER_VERSION, "id": ids[j], "id_column": r.get("id_column"),
                "salt": r["leaves"][j]["salt"], "request": k, "date": r.get("date"),
                "path": merkle_proof(c.leaves, j), "root": c.root}
    raise LedgerError(f"id {value!r} was not removed by any request in this ledger")
