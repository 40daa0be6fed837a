"""The local ledger that chains deletion requests, over the salted Merkle commitments of
:mod:`hf_unlearn.records.merkle` (the tree, its construction and :class:`~hf_unlearn.records.merkle.LedgerError`
are there; docs/FORMATS.md, "Removal commitment", is the normative text).

The ledger (``ledger.json``, next to ``removed_ids.json``) holds, per request, the ids, their salts in leaf order and
the public summary that goes in the card. It never leaves the machine: it is not pushed to the Hub.

Chain (ledger version 2): each request's public record (every field but ``leaves``) is hashed canonically
(:func:`record_sha256`); the next request holds that hash as ``previous_sha256``, and the card holds the newest
request's hash as ``chain_sha256``. An edit of any public field of any request breaks the chain, and
:func:`compare_with_card` names the field where the ledger and the card disagree.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
from typing import Any

from .merkle import SCHEME, Commitment, LedgerError, merkle_proof

__all__ = [
    "LEDGER_NAME",
    "LEDGER_FORMAT",
    "LEDGER_VERSION",
    "PROOF_FORMAT",
    "read_ledger",
    "write_ledger",
    "check_ledger",
    "new_request",
    "public_requests",
    "make_proof",
    "CHAIN_KEY",
    "HEAD_KEY",
    "public_record",
    "record_sha256",
    "check_chain",
    "compare_with_card",
    "check_card_chain",
    "check_against_card",
]

LEDGER_NAME = "ledger.json"
LEDGER_FORMAT = "hf-unlearn-ledger"
LEDGER_VERSION = 2
READABLE_VERSIONS = (1, 2)  # version 1: no chain hashes (its requests are checked field by field against the card)
#: In each request: the :func:`record_sha256` of the request before it (None for the first).
CHAIN_KEY = "previous_sha256"
#: In the card's ``unlearning:`` block (and the record's provenance): the :func:`record_sha256` of the newest request.
HEAD_KEY = "chain_sha256"
PROOF_FORMAT = "hf-unlearn-removal-proof"
#: Metrics copied from the run into each request's public summary.
REQUEST_METRICS = ("acc_forget", "acc_retain", "acc_test", "acc_val", "mia", "rf_jsd")


# ----------------------------------------------------------------------------------------------------------------
# the ledger file
# ----------------------------------------------------------------------------------------------------------------
def public_record(request: dict) -> dict:
    """A request's public fields: a ledger entry without ``leaves``, or a card entry without its number."""
    return {k: v for k, v in request.items() if k not in ("leaves", "request")}


def record_sha256(request: dict) -> str:
    """SHA-256 (hex) of the canonical JSON of :func:`public_record` (sorted keys, no spaces, UTF-8): the same for
    a ledger entry and the card's copy of it (the card's YAML reads back the same values)."""
    text = json.dumps(
        public_record(request), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=str
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_chain(requests: list, where: str) -> None:
    """Each chained request's ``previous_sha256`` must be the hash of the request before it (LedgerError)."""
    chained = False
    for k, r in enumerate(requests, 1):
        if not isinstance(r, dict):
            raise LedgerError(f"{where}: request {k} is not a mapping")
        if CHAIN_KEY not in r:
            if chained:
                raise LedgerError(
                    f"{where}: request {k} has no {CHAIN_KEY} although request {k - 1} is chained; "
                    "the record was altered"
                )
            continue  # a version-1 request, written before chaining
        chained = True
        want = record_sha256(requests[k - 2]) if k > 1 else None
        if r[CHAIN_KEY] != want:
            if k == 1:
                raise LedgerError(
                    f"{where}: request 1 has {CHAIN_KEY} {r[CHAIN_KEY]!r} but it is the first request; "
                    "the record was altered"
                )
            raise LedgerError(
                f"{where}: request {k - 1}'s record does not hash to the {CHAIN_KEY} that request {k} "
                f"holds: a field of request {k - 1} (method, num_removed, date, dataset, id_column, "
                "metrics, ...) was edited after it was written"
            )


def compare_with_card(requests: list[dict], card_requests: list, where: str, card: str) -> None:
    """Every public field of every request must equal the card's copy: LedgerError naming the request and the
    field that differs (``where`` names the ledger, ``card`` the card)."""
    ours = [r.get("commitment") for r in requests]
    if ours != [r.get("commitment") if isinstance(r, dict) else None for r in card_requests]:
        raise LedgerError(
            f"{where} does not belong to this model: its {len(ours)} request commitment(s) differ from "
            f"the {len(card_requests)} in {card}"
        )
    for k, (ours, theirs) in enumerate(zip(requests, card_requests, strict=False), 1):
        if not isinstance(theirs, dict):
            raise LedgerError(f"{card}: request {k} is not a mapping")
        a, b = public_record(ours), public_record(theirs)
        for field in sorted(a.keys() | b.keys()):
            if _canonical(a.get(field)) != _canonical(b.get(field)) or (field in a) != (field in b):
                sub = _first_difference(a.get(field), b.get(field))
                name = f"{field}.{sub}" if sub else field
                raise LedgerError(
                    f"request {k}'s {name} differs: {_show(a, field, sub)} in {where}, "
                    f"{_show(b, field, sub)} in {card}; one of them was edited after hf-unlearn "
                    "wrote it"
                )


def check_card_chain(card_requests: list, head: Any, card: str) -> None:
    """The card's own requests chain, and its ``chain_sha256`` is the hash of the newest one (LedgerError)."""
    check_chain(card_requests, card)
    chained = any(isinstance(r, dict) and CHAIN_KEY in r for r in card_requests)
    if head is None and not chained:
        return  # written before chaining
    if not card_requests:
        raise LedgerError(f"{card} has a {HEAD_KEY} but lists no deletion requests; the record was altered")
    if head != record_sha256(card_requests[-1]):
        raise LedgerError(
            f"the newest request ({len(card_requests)}) in {card} does not hash to the card's "
            f"{HEAD_KEY} ({str(head)[:16]}…): a field of it was edited after it was written"
        )


def check_against_card(requests: list[dict], where: str, card_requests: list, head: Any, card: str) -> None:
    """The ledger's requests equal the card's field by field (the edited field is named), and both chains hold:
    each request holds the hash of the one before it, the card's ``chain_sha256`` the newest one's. LedgerError."""
    compare_with_card(requests, card_requests, where, card)
    check_chain(requests, where)
    check_card_chain(card_requests, head, card)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _first_difference(a: Any, b: Any) -> str | None:
    """The first sub-key where two mappings differ (``metrics.acc_forget``), else None."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(a.keys() | b.keys()):
            if _canonical(a.get(key)) != _canonical(b.get(key)) or (key in a) != (key in b):
                return str(key)
    return None


def _show(record: dict, field: str, sub: str | None) -> str:
    if field not in record:
        return "absent"
    value = record[field]
    if sub is not None:
        if sub not in value:
            return "absent"
        value = value[sub]
    return repr(value)


def new_request(
    commitment: Commitment, *, method: str, record: dict, metrics: dict | None, previous: dict | None = None
) -> dict:
    """One ledger entry: the public summary (what the card lists) plus the private ``leaves``. ``previous``: the
    request before it, whose :func:`record_sha256` this one holds as ``previous_sha256``."""
    dataset = record.get("dataset") or {}
    unlearned = (metrics or {}).get("unlearned") or {}
    return {
        "method": method,
        "num_removed": record.get("num_removed"),
        "commitment": commitment.root,
        "date": datetime.datetime.now(datetime.timezone.utc).date().isoformat(),
        "dataset": {k: dataset.get(k) for k in ("name", "config", "split", "revision", "fingerprint")},
        "id_column": record.get("id_column"),
        "metrics": {
            k: round(float(unlearned[k]), 6)
            for k in REQUEST_METRICS
            if isinstance(unlearned.get(k), (int, float)) and not isinstance(unlearned.get(k), bool)
        },
        CHAIN_KEY: record_sha256(previous) if previous is not None else None,
        "leaves": [{"id": i, "salt": s.hex()} for i, s in zip(commitment.ids, commitment.salts, strict=False)],
    }


def public_requests(requests: list[dict]) -> list[dict]:
    """The card's ``requests``: each entry without its ids and salts, numbered from 1, oldest first."""
    return [{"request": k, **{key: v for key, v in r.items() if key != "leaves"}} for k, r in enumerate(requests, 1)]


def write_ledger(path: str, requests: list[dict]) -> None:
    with open(path, "w") as f:
        json.dump(
            {"format": LEDGER_FORMAT, "version": LEDGER_VERSION, "scheme": SCHEME, "requests": requests}, f, indent=1
        )


def check_ledger(ledger: dict, where: str, chain: bool = True) -> list[dict]:
    """The requests of a parsed ledger, after checking its format, that every root matches its leaves and (with
    ``chain``) that every request holds the hash of the one before it."""
    if not isinstance(ledger, dict) or ledger.get("format") != LEDGER_FORMAT:
        raise LedgerError(f'{where} is not an hf-unlearn ledger (no "format": "{LEDGER_FORMAT}")')
    if ledger.get("version") not in READABLE_VERSIONS:
        raise LedgerError(
            f"{where} has ledger version {ledger.get('version')!r}; this hf-unlearn reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}"
        )
    requests = ledger.get("requests")
    if not isinstance(requests, list) or not requests:
        raise LedgerError(f"{where} lists no requests")
    for k, r in enumerate(requests, 1):
        try:
            c = Commitment([leaf["id"] for leaf in r["leaves"]], [bytes.fromhex(leaf["salt"]) for leaf in r["leaves"]])
        except (KeyError, TypeError, ValueError) as e:
            raise LedgerError(f"{where}: request {k} is malformed ({type(e).__name__}: {e})") from e
        if c.root != r.get("commitment"):
            raise LedgerError(
                f"{where}: request {k}'s ids and salts do not hash to its commitment "
                f"{r.get('commitment')}; the ledger was altered"
            )
    if chain:
        check_chain(requests, where)
    return requests


def read_ledger(path: str, chain: bool = True) -> list[dict]:
    """Read and check a ledger file; LedgerError (one line) when missing or inconsistent. ``chain=False`` leaves
    the chain check to the caller (to compare with the card first and name the edited field)."""
    if not os.path.isfile(path):
        raise LedgerError(f"ledger {path} does not exist")
    try:
        with open(path) as f:
            ledger = json.load(f)
    except (OSError, ValueError) as e:
        raise LedgerError(f"ledger {path} is not readable JSON ({type(e).__name__}: {str(e).splitlines()[0]})") from e
    return check_ledger(ledger, path, chain)


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
        return {
            "format": PROOF_FORMAT,
            "version": LEDGER_VERSION,
            "id": ids[j],
            "id_column": r.get("id_column"),
            "salt": r["leaves"][j]["salt"],
            "request": k,
            "date": r.get("date"),
            "path": merkle_proof(c.leaves, j),
            "root": c.root,
        }
    raise LedgerError(f"id {value!r} was not removed by any request in this ledger")
