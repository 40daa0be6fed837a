"""Chained deletion requests, removal proofs and their verification (``hf-unlearn proof`` / ``hf-unlearn verify``).

* :func:`read_parent_chain` (used by ``hf-unlearn unlearn``): the earlier requests of the model being unlearned,
  from its local ``ledger.json`` or ``--previous_ledger`` (checked against the parent's card).
* :func:`exclude_earlier` : drop rows removed by earlier requests from the training and calibration data.
* :func:`proof_main` -- ``hf-unlearn proof --output_dir DIR --id ID``: the JSON inclusion proof of one id.
* :func:`verify_main` -- ``hf-unlearn verify --model DIR|HUB_ID [--proof proof.json]``: checks the weights files
  against the card's SHA-256s and the proof against the card's request commitments.

Exit codes of both commands: 0 ok, 1 verification failed (or, for ``proof``, an id that was not removed), 2 bad input.
Every failure is one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any

from .ledger import LEDGER_NAME, LedgerError, make_proof, read_ledger, root_from_proof

__all__ = ["read_parent_chain", "exclude_earlier", "proof_main", "verify_main", "load_card_unlearning",
           "check_weights", "RECOMPUTE_TOLERANCE"]

logger = logging.getLogger("hf_unlearn")

#: Absolute tolerance of ``verify --recompute``: the card rounds metrics to 6 decimals (±5e-7), and an eval-mode
#: forward pass is deterministic up to float summation order (thread count, batch size, BLAS build), which moves
#: MIA/RF-JSD by ~1e-7 and an accuracy only if an argmax tie flips (one sample of N is 1/N, far above 1e-4 for the
#: datasets here, so a flip is reported, not hidden).
RECOMPUTE_TOLERANCE = 1e-4


class _BadInput(ValueError):
    """Exit code 2."""


class _Failed(Exception):
    """Exit code 1."""


class _Unreachable(_BadInput):
    """The Hub did not answer (timeout, broken connection): exit code 1 in ``verify``. A ``_BadInput`` so that
    :func:`read_parent_chain` treats it as any unreadable card (a warning)."""


def _hub_failure(e: Exception, what: str, endpoint: str | None) -> _BadInput:
    """``_Unreachable`` (one line: the request, the timeout, the fix) when the Hub did not answer, else ``_BadInput``."""
    from .hub import describe_hub_error, unreachable_cause
    from .hub_guard import active_session

    cause = unreachable_cause(e)
    if cause is not None:
        import huggingface_hub.constants as hf_constants

        session = active_session()
        return _Unreachable(f"cannot download {what}: " + describe_hub_error(
            cause, endpoint or hf_constants.ENDPOINT, session.get("last"), session.get("timeout") or 0))
    return _BadInput(f"cannot download {what} ({type(e).__name__}: {(str(e).strip().splitlines() or [''])[0]})")


def _Parser(**kwargs) -> argparse.ArgumentParser:
    """argparse with a one-line ``error:`` (argparse's own prints the usage block first)."""
    from .cli_args import OneLineParser

    return OneLineParser(**kwargs)


# ----------------------------------------------------------------------------------------------------------------
# cards
# ----------------------------------------------------------------------------------------------------------------
def _card_path(model: str, revision: str | None = None, endpoint: str | None = None, token: str | None = None,
               missing_ok: bool = False) -> str | None:
    """Local path of the model's README.md (downloaded for a Hub id); None when it has none and ``missing_ok``."""
    if os.path.isdir(model):
        path = os.path.join(model, "README.md")
        if os.path.isfile(path):
            return path
        if missing_ok:
            return None
        raise _BadInput(f"{model} has no README.md (model card); pass an hf-unlearn output directory or Hub repo")
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        return hf_hub_download(model, "README.md", revision=revision, endpoint=endpoint, token=token)
    except EntryNotFoundError:
        if missing_ok:
            return None
        raise _BadInput(f"the Hub repo {model} has no README.md (model card)") from None
    except Exception as e:
        failure = _hub_failure(e, f"the card of {model}", endpoint)
        if not isinstance(failure, _Unreachable):
            failure = _BadInput(f"{failure}; check the repo id, revision and network")
        raise failure from e


def load_card_unlearning(path: str) -> dict:
    """The ``unlearning:`` block of a card file ({} when there is none)."""
    from huggingface_hub import ModelCard

    try:
        card = ModelCard.load(path, ignore_metadata_errors=True)
    except Exception as e:
        raise _BadInput(f"cannot read the model card {path} ({type(e).__name__}: {e})") from e
    block = getattr(card.data, "unlearning", None)
    return block if isinstance(block, dict) else {}


# ----------------------------------------------------------------------------------------------------------------
# chains (hf-unlearn unlearn)
# ----------------------------------------------------------------------------------------------------------------
def read_parent_chain(model_path: str, revision: str | None, previous_ledger: str | None,
                      original_info: dict | None = None) -> dict:
    """``{"parent_model": {...}, "requests": [ledger entries, oldest first]}`` of the model to unlearn.

    The requests come from ``previous_ledger`` or the parent directory's ``ledger.json``; when the parent's card
    lists requests, their commitments must equal the ledger's. Raises ValueError (one line, with the fix) when the
    parent is an hf-unlearn output and no ledger is available, or when the ledger does not belong to it.
    """
    from .output import sha256_of_dir, weights_sha256

    local = os.path.isdir(model_path)
    from .hub_guard import public_name

    # published in the card: a Hub id, or a local directory's base name (never a local path)
    parent = {"name_or_path": public_name(model_path), "revision": revision,
              "sha256": (original_info or {}).get("sha256") or (sha256_of_dir(model_path) if local else None),
              "weights_sha256": None}
    card_requests = None
    try:
        card_path = _card_path(model_path, revision, missing_ok=True)
    except _BadInput as e:
        if previous_ledger:
            raise ValueError(f"--previous_ledger needs the parent's card to check it against: {e}") from e
        # A Hub original read from the cache while offline: nothing tells whether it is an hf-unlearn output.
        logger.warning("could not read the card of %s to look for earlier deletion requests (%s); if it is an "
                       "hf-unlearn output, pass --previous_ledger", model_path, e)
        card_path = None
    block = load_card_unlearning(card_path) if card_path else {}
    if isinstance(block.get("requests"), list):
        card_requests = block["requests"]
    elif local and os.path.isfile(os.path.join(model_path, "unlearning_config.json")):
        with open(os.path.join(model_path, "unlearning_config.json")) as f:
            card_requests = (json.load(f).get("provenance") or {}).get("requests")
    is_output = bool(block) or (local and os.path.isfile(os.path.join(model_path, "removal_record.json")))
    if local:
        parent["weights_sha256"] = weights_sha256(model_path)
        recorded = block.get("weights_sha256")
        if isinstance(recorded, dict) and recorded != parent["weights_sha256"]:
            raise ValueError(f"the weights in {model_path} do not match the SHA-256s its card records; the directory "
                             "was modified after hf-unlearn wrote it: unlearn from an intact output directory")
    elif isinstance(block.get("weights_sha256"), dict):
        parent["weights_sha256"] = block["weights_sha256"]

    ledger_path = previous_ledger or (os.path.join(model_path, LEDGER_NAME)
                                      if local and os.path.isfile(os.path.join(model_path, LEDGER_NAME)) else None)
    if ledger_path is None:
        if is_output:
            where = "its local ledger.json is missing" if local else "a Hub repo carries no ledger"
            raise ValueError(f"{model_path} is an hf-unlearn output (earlier deletion requests) but {where}; pass "
                             "--previous_ledger <ledger.json of the run that produced it> so that earlier removed rows "
                             "stay removed")
        return {"parent_model": parent, "requests": []}
    try:
        requests = read_ledger(ledger_path)
    except LedgerError as e:
        raise ValueError(f"{e}; pass the ledger.json written next to the parent model") from e
    if card_requests is None:
        raise ValueError(f"{model_path}'s card lists no deletion requests, so the ledger {ledger_path} cannot be "
                         "checked against it; --previous_ledger applies to models written by hf-unlearn")
    ours = [r.get("commitment") for r in requests]
    theirs = [r.get("commitment") if isinstance(r, dict) else None for r in card_requests]
    if ours != theirs:
        raise ValueError(f"the ledger {ledger_path} (commitments {_short(ours)}) does not belong to {model_path} (card "
                         f"commitments {_short(theirs)}); pass the ledger.json written with that model")
    return {"parent_model": parent, "requests": requests}


def _short(roots: list) -> str:
    return "[" + ", ".join(str(r)[:12] + "…" for r in roots) + "]"


def exclude_earlier(requests: list[dict], train, validation, id_column: str | None, new_ids: list | None = None):
    """``(train, validation, kept)``: the data without the rows earlier requests removed.

    With an id column, rows whose id an earlier request removed are filtered out of both splits (validation only
    when it has the same column); ``kept`` is None. Without one, earlier requests named rows by index in the
    identical training split (same fingerprint, else ValueError); ``kept`` maps new row positions to original ones.
    ``new_ids`` (the ids this request names) must not include an id already removed.
    """
    if not requests:
        return train, validation, None
    for k, r in enumerate(requests, 1):
        if r.get("id_column") != id_column:
            was = f"column '{r.get('id_column')}'" if r.get("id_column") else "row index"
            now = f"column '{id_column}'" if id_column else "row index (no id column)"
            raise ValueError(f"request {k} named samples by {was} but this run names them by {now}; "
                             f"pass --id_column_name {r.get('id_column') or '<a column absent from the data>'}")
    earlier: dict[Any, int] = {}
    for k, r in enumerate(requests, 1):
        for leaf in r["leaves"]:
            earlier.setdefault(leaf["id"], k)
    if new_ids:
        again = [i for i in dict.fromkeys(new_ids) if i in earlier]
        if again:
            raise ValueError(f"{len(again)} of the ids to forget were already removed by an earlier request (e.g. "
                             f"{again[0]!r} in request {earlier[again[0]]}); drop them from the ids file")
    if id_column is not None:
        train = train.filter(lambda v: v not in earlier, input_columns=id_column, desc="drop earlier requests")
        if validation is not None and id_column in validation.column_names:
            validation = validation.filter(lambda v: v not in earlier, input_columns=id_column,
                                           desc="drop earlier requests")
        return train, validation, None
    for k, r in enumerate(requests, 1):
        fp = (r.get("dataset") or {}).get("fingerprint")
        if fp != train._fingerprint:
            raise ValueError(f"request {k} named rows by index in a training split with fingerprint {fp}, this one "
                             f"has {train._fingerprint}: row indices only name the same rows in the identical data; "
                             "use the same dataset, or data with an id column (--id_column_name)")
    kept = [i for i in range(len(train)) if i not in earlier]
    return train.select(kept), validation, kept


# ----------------------------------------------------------------------------------------------------------------
# hf-unlearn proof
# ----------------------------------------------------------------------------------------------------------------
def proof_main(argv: list[str]) -> int:
    """``hf-unlearn proof --output_dir DIR --id ID [--out proof.json]``: print the removal proof of one id."""
    parser = _Parser(
        prog="hf-unlearn proof",
        description="Print the JSON proof that one sample id was removed (its salt and Merkle path; no other id).")
    parser.add_argument("--output_dir", required=True, help="An hf-unlearn output directory (holds ledger.json).")
    parser.add_argument("--id", required=True, help="The sample id (or row index) to prove removed.")
    parser.add_argument("--out", default=None, help="Write the proof to this file instead of stdout.")
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse already printed the usage line
        return 0 if e.code == 0 else 2
    path = os.path.join(args.output_dir, LEDGER_NAME)
    try:
        if not os.path.isfile(path):
            raise _BadInput(f"{path} does not exist; pass the output directory of an hf-unlearn run (the ledger is "
                            "local, it is not on the Hub)")
        requests = read_ledger(path)
    except (_BadInput, LedgerError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        proof = make_proof(requests, args.id)
    except LedgerError as e:
        print(f"error: {e}; only ids removed by this model's deletion requests have a proof", file=sys.stderr)
        return 1
    text = json.dumps(proof, indent=1)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    else:
        print(text)
    return 0


# ----------------------------------------------------------------------------------------------------------------
# hf-unlearn verify
# ----------------------------------------------------------------------------------------------------------------
def _hash_file(path: str) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _model_weights(model: str, revision: str | None, endpoint: str | None, token: str | None) -> dict[str, str]:
    from .output import WEIGHT_SUFFIXES, weights_sha256

    if os.path.isdir(model):
        return weights_sha256(model)
    from huggingface_hub import HfApi, hf_hub_download

    try:
        names = [n for n in HfApi(endpoint=endpoint, token=token).list_repo_files(model, revision=revision)
                 if n.endswith(WEIGHT_SUFFIXES)]
        return {n: _hash_file(hf_hub_download(model, n, revision=revision, endpoint=endpoint, token=token))
                for n in sorted(names)}
    except Exception as e:
        raise _hub_failure(e, f"the weights of {model}", endpoint) from e


def check_weights(block: dict, actual: dict[str, str]) -> str:
    """A one-line summary when the weights files equal the card's SHA-256s; raises _Failed with the reason."""
    recorded = block.get("weights_sha256")
    if not isinstance(recorded, dict) or not recorded:
        raise _Failed("the card records no weights SHA-256 (unlearning.weights_sha256); it was not written by an "
                      "hf-unlearn version that supports verify")
    missing = sorted(set(recorded) - set(actual))
    extra = sorted(set(actual) - set(recorded))
    if missing:
        raise _Failed(f"weights file(s) {', '.join(missing)} listed in the card are missing from the model")
    if extra:
        raise _Failed(f"weights file(s) {', '.join(extra)} are not listed in the card: the weights were swapped or "
                      "added after the card was written")
    for name in sorted(recorded):
        if recorded[name] != actual[name]:
            raise _Failed(f"{name} has SHA-256 {actual[name][:16]}… but the card records "
                          f"{str(recorded[name])[:16]}…: "
                          "the weights are not the ones the card describes")
    return f"weights match the card ({len(recorded)} file{'s' if len(recorded) != 1 else ''})"


def _check_proof(block: dict, proof_path: str) -> str:
    try:
        with open(proof_path) as f:
            proof = json.load(f)
    except (OSError, ValueError) as e:
        raise _BadInput(f"cannot read the proof {proof_path} ({type(e).__name__}: {str(e).splitlines()[0]})") from e
    if not isinstance(proof, dict) or not {"id", "salt", "path", "root"} <= proof.keys():
        raise _BadInput(f"{proof_path} is not a removal proof (needs id, salt, path and root; see `hf-unlearn proof`)")
    try:
        root = root_from_proof(proof["id"], bytes.fromhex(str(proof["salt"])), proof["path"]).hex()
    except (LedgerError, ValueError, TypeError) as e:
        raise _Failed(f"the proof is malformed ({e}): it was altered") from e
    if root != proof["root"]:
        raise _Failed("the proof's id, salt and path do not hash to its root: the proof was altered")
    requests = block.get("requests")
    if not isinstance(requests, list) or not requests:
        raise _Failed("the card lists no deletion requests (unlearning.requests) to check the proof against")
    for k, r in enumerate(requests, 1):
        if isinstance(r, dict) and r.get("commitment") == root:
            return f"id {proof['id']!r} removed in request {k} ({r.get('date')})"
    raise _Failed(f"the proof's root {root[:16]}… is not the commitment of any of the card's {len(requests)} "
                  "request(s): the id was not removed from this model")


def verify_main(argv: list[str]) -> int:
    """``hf-unlearn verify --model M [--proof proof.json] [--recompute --dataset_name D --output_dir DIR]``."""
    parser = _Parser(
        prog="hf-unlearn verify",
        description="Check a model against its card: the weights files' SHA-256s, and optionally a removal proof "
                    "(from `hf-unlearn proof`) against the card's deletion-request commitments.")
    parser.add_argument("--model", required=True, help="An hf-unlearn output directory or a Hub repo id.")
    parser.add_argument("--proof", default=None, help="A proof file written by `hf-unlearn proof`.")
    parser.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit).")
    parser.add_argument("--token", default=None, help="Hub token, for private repos (default: HF_TOKEN).")
    parser.add_argument("--endpoint", default=None, help="Hub endpoint (default: HF_ENDPOINT or huggingface.co).")
    parser.add_argument("--recompute", action="store_true",
                        help=f"Re-evaluate the model and compare each metric with the card (tolerance "
                             f"{RECOMPUTE_TOLERANCE} absolute); needs --dataset_name and --output_dir.")
    parser.add_argument("--dataset_name", default=None,
                        help="With --recompute: the training dataset (default: the one the card names).")
    parser.add_argument("--output_dir", default=None, help="With --recompute: the local output directory (ledger).")
    parser.add_argument("--hub_timeout", default=None,
                        help="Seconds each Hub request may take to connect and to answer (default: "
                             "$HF_UNLEARN_HUB_TIMEOUT, else 60).")
    parser.add_argument("--parent_model", default=None,
                        help="With --recompute: where the model this run started from is (default: the card's "
                             "parent_model, looked for as named, next to --output_dir and in the hf-unlearn cache, "
                             "and accepted only when its weights hash matches the card's).")
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return 0 if e.code == 0 else 2
    from .hub_guard import hub_session, resolve_hub_timeout

    try:
        timeout = resolve_hub_timeout(args.hub_timeout)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    with hub_session(timeout, follow_redirects=True):  # every download (card, weights, --recompute's) bounded
        return _verify(args)


def _verify(args) -> int:
    try:
        if args.recompute and not args.output_dir:
            raise _BadInput("--recompute needs --output_dir (the local output directory holding ledger.json)")
        block = load_card_unlearning(_card_path(args.model, args.revision, args.endpoint, args.token))
        if not block:
            raise _Failed(f"the card of {args.model} has no `unlearning:` block: it was not written by hf-unlearn")
        lines = [check_weights(block, _model_weights(args.model, args.revision, args.endpoint, args.token))]
        if args.proof:
            lines.insert(0, _check_proof(block, args.proof))
        if args.recompute:
            from .recompute import recompute_table

            ok, table = recompute_table(args.model, block, args.output_dir, args.dataset_name, RECOMPUTE_TOLERANCE,
                                        revision=args.revision, parent_model=args.parent_model)
            print(table)
            if not ok:
                raise _Failed(f"a recomputed metric differs from the card by more than {RECOMPUTE_TOLERANCE}")
    except _Unreachable as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except _BadInput as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except _Failed as e:
        print(f"verification failed: {e}", file=sys.stderr)
        return 1
    print("; ".join(lines))
    return 0
