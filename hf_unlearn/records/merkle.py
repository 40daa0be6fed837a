"""Salted Merkle commitments to removed ids: the tree over one request's ids, its root (the commitment), inclusion
proofs and their check, and :class:`LedgerError`, the error of a ledger or proof that cannot be used.

Construction (docs/FORMATS.md, "Removal commitment", is the normative text):

* canonical id: ``b"int:" + decimal ASCII`` for an integer id, ``b"str:" + UTF-8`` for a string id. The type tag
  keeps the integer ``7`` and the string ``"7"`` apart.
* leaf = SHA-256(salt ‖ canonical id), with a fresh 32-byte random salt per id: without the salt a small integer id
  could be found by trying every candidate against the published hash.
* leaf order: ascending by leaf hash (bytes), so the position of a leaf reveals nothing about its id.
* node = SHA-256(0x01 ‖ left ‖ right). A level with an odd number of nodes promotes its last node unchanged to the
  next level (no duplication). The root of the tree is the request's commitment; a single leaf is its own root.

Separate from :mod:`hf_unlearn.records.ledger` (the ``ledger.json`` file and the chain of requests, which builds on
this module): the tree is pure hashing, used on its own where a forget set is selected (its commitment goes in the
removal record) and where a proof is checked.
"""

from __future__ import annotations

import hashlib
import numbers
import secrets
from collections.abc import Iterable
from typing import Any

__all__ = [
    "SCHEME",
    "ALGORITHM",
    "canonical_id",
    "leaf_hash",
    "node_hash",
    "merkle_root",
    "merkle_proof",
    "root_from_proof",
    "verify_proof",
    "commit_ids",
    "Commitment",
    "LedgerError",
]


ALGORITHM = "merkle-sha256"
SCHEME = (
    "salted Merkle tree, hf-unlearn v1: leaf = sha256(salt32 || canonical id) with canonical id "
    "b'int:'+decimal or b'str:'+utf8; leaves sorted by hash; node = sha256(0x01 || left || right); "
    "an odd last node is promoted unchanged (docs/FORMATS.md)"
)
SALT_BYTES = 32
NODE_PREFIX = b"\x01"


class LedgerError(ValueError):
    """A ledger or proof that cannot be used (missing, malformed, inconsistent)."""


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
        pairs = sorted(((leaf_hash(s, i), i, s) for i, s in zip(ids, salts, strict=False)), key=lambda t: t[0])
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
