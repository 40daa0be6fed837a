"""``hf-unlearn proof`` and ``hf-unlearn verify`` (the commands of :mod:`hf_unlearn.publishing.provenance`).

Exit codes of both commands: 0 ok, 1 verification failed (or, for ``proof``, an id that was not removed; or the Hub did
not answer), 2 bad input. Every failure is one line on stderr; every path flag is checked by kind before any work
(hf_unlearn.cli.fs_safety), and every Hub request is bounded by ``--hub_timeout`` (hf_unlearn.publishing.hub_guard.hub_session).
"""

from __future__ import annotations

import json
import os
import sys

from ..publishing.provenance import (
    RECOMPUTE_TOLERANCE,
    _BadInput,
    _card_path,
    _Failed,
    _hub_failure,
    _Unreachable,
    load_card_unlearning,
)
from ..records.ledger import (
    HEAD_KEY,
    LEDGER_NAME,
    check_against_card,
    check_card_chain,
    make_proof,
    read_ledger,
)
from ..records.merkle import LedgerError, root_from_proof
from .args import OneLineParser

__all__ = ["proof_main", "verify_main", "check_weights", "check_requests"]


# ----------------------------------------------------------------------------------------------------------------
# hf-unlearn proof
# ----------------------------------------------------------------------------------------------------------------
def proof_main(argv: list[str]) -> int:
    """``hf-unlearn proof --output_dir DIR --id ID [--out proof.json]``: print the removal proof of one id."""
    parser = OneLineParser(
        prog="hf-unlearn proof",
        description="Print the JSON proof that one sample id was removed (its salt and Merkle path; no other id).",
    )
    parser.add_argument("--output_dir", required=True, help="An hf-unlearn output directory (holds ledger.json).")
    parser.add_argument("--id", required=True, help="The sample id (or row index) to prove removed.")
    parser.add_argument("--out", default=None, help="Write the proof to this file instead of stdout.")
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse already printed the usage line
        return 0 if e.code == 0 else 2
    from .fs_safety import check_input_dir, check_output_file

    path = os.path.join(args.output_dir, LEDGER_NAME)
    try:
        try:  # every path flag checked before the ledger is read or anything is written
            check_input_dir("--output_dir", args.output_dir, "an hf-unlearn output directory (it holds ledger.json)")
            if args.out is not None:
                check_output_file("--out", args.out, "the proof file to write (or omit --out to print the proof)")
        except ValueError as e:
            raise _BadInput(str(e)) from e
        if not os.path.isfile(path):
            raise _BadInput(
                f"{path} does not exist; pass the output directory of an hf-unlearn run (the ledger is "
                "local, it is not on the Hub)"
            )
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
    if args.out is None:
        print(text)
        return 0
    try:  # written whole or not at all: a full disk leaves no half proof
        _write_atomically(args.out, text + "\n")
    except OSError as e:
        print(
            f"error: cannot write --out {args.out} ({e.strerror or e}); no proof was written: free some space or "
            "choose another --out.",
            file=sys.stderr,
        )
        return 1
    return 0


def _write_atomically(path: str, text: str) -> None:
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=".hf_unlearn-", dir=os.path.dirname(os.path.abspath(path)))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise


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
    from ..publishing.output import WEIGHT_SUFFIXES, weights_sha256

    if os.path.isdir(model):
        return weights_sha256(model)
    from huggingface_hub import HfApi, hf_hub_download

    try:
        names = [
            n
            for n in HfApi(endpoint=endpoint, token=token).list_repo_files(model, revision=revision)
            if n.endswith(WEIGHT_SUFFIXES)
        ]
        return {
            n: _hash_file(hf_hub_download(model, n, revision=revision, endpoint=endpoint, token=token))
            for n in sorted(names)
        }
    except Exception as e:
        raise _hub_failure(e, f"the weights of {model}", endpoint) from e


def check_weights(block: dict, actual: dict[str, str]) -> str:
    """A one-line summary when the weights files equal the card's SHA-256s; raises _Failed with the reason."""
    recorded = block.get("weights_sha256")
    if not isinstance(recorded, dict) or not recorded:
        raise _Failed(
            "the card records no weights SHA-256 (unlearning.weights_sha256); it was not written by an "
            "hf-unlearn version that supports verify"
        )
    missing = sorted(set(recorded) - set(actual))
    extra = sorted(set(actual) - set(recorded))
    if missing:
        raise _Failed(f"weights file(s) {', '.join(missing)} listed in the card are missing from the model")
    if extra:
        raise _Failed(
            f"weights file(s) {', '.join(extra)} are not listed in the card: the weights were swapped or "
            "added after the card was written"
        )
    for name in sorted(recorded):
        if recorded[name] != actual[name]:
            raise _Failed(
                f"{name} has SHA-256 {actual[name][:16]}… but the card records "
                f"{str(recorded[name])[:16]}…: "
                "the weights are not the ones the card describes"
            )
    return f"weights match the card ({len(recorded)} file{'s' if len(recorded) != 1 else ''})"


def check_requests(block: dict, folder: str | None) -> str:
    """A one-line summary when the card's deletion requests chain (and equal ``folder``'s ledger.json field by
    field, when there is one); raises _Failed naming the request and the field that differs."""
    requests = block.get("requests")
    if not isinstance(requests, list) or not requests:
        return "no deletion requests listed"
    ledger_path = os.path.join(folder, LEDGER_NAME) if folder else None
    try:
        if ledger_path and os.path.isfile(ledger_path):
            # a ledger whose ids do not hash to its commitments fails here (exit 1, like any other mismatch)
            check_against_card(
                read_ledger(ledger_path, chain=False), ledger_path, requests, block.get(HEAD_KEY), "the card"
            )
            return f"{len(requests)} deletion request(s) chained and equal to {LEDGER_NAME}"
        check_card_chain(requests, block.get(HEAD_KEY), "the card")
    except LedgerError as e:
        raise _Failed(str(e)) from e
    return f"{len(requests)} deletion request(s) chained"


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
    raise _Failed(
        f"the proof's root {root[:16]}… is not the commitment of any of the card's {len(requests)} "
        "request(s): the id was not removed from this model"
    )


def verify_main(argv: list[str]) -> int:
    """``hf-unlearn verify --model M [--proof proof.json] [--recompute --dataset_name D --output_dir DIR]``."""
    parser = OneLineParser(
        prog="hf-unlearn verify",
        description="Check a model against its card: the weights files' SHA-256s, the deletion requests (chained, and "
        "equal to the local ledger.json field by field), and optionally a removal proof "
        "(from `hf-unlearn proof`) against the card's deletion-request commitments.",
    )
    parser.add_argument("--model", required=True, help="An hf-unlearn output directory or a Hub repo id.")
    parser.add_argument("--proof", default=None, help="A proof file written by `hf-unlearn proof`.")
    parser.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit).")
    parser.add_argument("--token", default=None, help="Hub token, for private repos (default: HF_TOKEN).")
    parser.add_argument("--endpoint", default=None, help="Hub endpoint (default: HF_ENDPOINT or huggingface.co).")
    parser.add_argument(
        "--recompute",
        action="store_true",
        help=f"Re-evaluate the model and compare each metric with the card (tolerance "
        f"{RECOMPUTE_TOLERANCE} absolute); needs --dataset_name and --output_dir.",
    )
    parser.add_argument(
        "--dataset_name",
        default=None,
        help="With --recompute: the training dataset (default: the one the card names).",
    )
    parser.add_argument("--output_dir", default=None, help="With --recompute: the local output directory (ledger).")
    parser.add_argument(
        "--hub_timeout",
        default=None,
        help="Seconds each Hub request may take to connect and to answer (default: $HF_UNLEARN_HUB_TIMEOUT, else 60).",
    )
    parser.add_argument(
        "--parent_model",
        default=None,
        help="With --recompute: where the model this run started from is (default: the card's "
        "parent_model, looked for as named, next to --output_dir and in the hf-unlearn cache, "
        "and accepted only when its weights hash matches the card's).",
    )
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return 0 if e.code == 0 else 2
    from ..publishing.hub_guard import hub_session, resolve_hub_timeout

    try:
        timeout = resolve_hub_timeout(args.hub_timeout)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    with hub_session(timeout, follow_redirects=True):  # every download (card, weights, --recompute's) bounded
        return _verify(args)


def _check_verify_paths(args) -> None:
    """verify's path flags, by kind (hf_unlearn.cli.fs_safety), before anything is read or downloaded."""
    from .fs_safety import check_input_dir, check_input_file

    for flag, value in (("--model", args.model), ("--parent_model", args.parent_model)):
        if value is None:
            continue
        if not str(value).strip():
            raise ValueError(f"{flag} is empty ({value!r}); give an hf-unlearn output directory or a Hub repo id.")
        if os.path.exists(value) and not os.path.isdir(value):
            raise ValueError(
                f"{flag} {value} is a file; give an hf-unlearn output directory (the folder that holds "
                "README.md and the weights) or a Hub repo id."
            )
    if args.proof is not None:
        check_input_file("--proof", args.proof, "a proof file written by `hf-unlearn proof`")
    if args.output_dir is not None:
        check_input_dir("--output_dir", args.output_dir, "the local output directory holding ledger.json")


def _verify(args) -> int:
    try:
        try:
            _check_verify_paths(args)
        except ValueError as e:
            raise _BadInput(str(e)) from e
        if args.recompute and not args.output_dir:
            raise _BadInput("--recompute needs --output_dir (the local output directory holding ledger.json)")
        block = load_card_unlearning(_card_path(args.model, args.revision, args.endpoint, args.token))
        if not block:
            raise _Failed(f"the card of {args.model} has no `unlearning:` block: it was not written by hf-unlearn")
        lines = [
            check_weights(block, _model_weights(args.model, args.revision, args.endpoint, args.token)),
            check_requests(block, args.output_dir or (args.model if os.path.isdir(args.model) else None)),
        ]
        if args.proof:
            lines.insert(0, _check_proof(block, args.proof))
        if args.recompute:
            from ..publishing.recompute import recompute_table

            ok, table = recompute_table(
                args.model,
                block,
                args.output_dir,
                args.dataset_name,
                RECOMPUTE_TOLERANCE,
                revision=args.revision,
                parent_model=args.parent_model,
            )
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
