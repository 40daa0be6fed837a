"""Chained deletion requests, removal proofs and their verification (``hf-unlearn proof`` / ``hf-unlearn verify``).

* :func:`read_parent_chain` (used by ``hf-unlearn unlearn``): the earlier requests of the model being unlearned,
  from its local ``ledger.json`` or ``--previous_ledger`` (checked against the parent's card).
* :func:`exclude_earlier` : drop rows removed by earlier requests from the training and calibration data.
* :func:`proof_main` -- ``hf-unlearn proof --output_dir DIR --id ID``: the JSON inclusion proof of one id.
* :func:`verify_main` -- ``hf-unlearn verify --model DIR|HUB_ID [--proof proof.json]``: checks the weights files
  against the card's SHA-256s, the card's deletion requests (chained; equal to the local ledger.json field by field)
  and the proof against the card's request commitments. Both commands live in :mod:`hf_unlearn.cli.provenance_commands`
  (importable from here too).

Exit codes of both commands: 0 ok, 1 verification failed (or, for ``proof``, an id that was not removed), 2 bad input.
Every failure is one line on stderr.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from ..data.scratch import writes_stay_temporary
from ..records.ledger import HEAD_KEY, LEDGER_NAME, check_against_card, read_ledger
from ..records.merkle import LedgerError

__all__ = ["read_parent_chain", "exclude_earlier", "load_card_unlearning", "RECOMPUTE_TOLERANCE"]

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
    from .hub_errors import describe_hub_error
    from .hub_guard import active_session, unreachable_cause

    cause = unreachable_cause(e)
    if cause is not None:
        import huggingface_hub.constants as hf_constants

        session = active_session()
        return _Unreachable(
            f"cannot download {what}: "
            + describe_hub_error(
                cause, endpoint or hf_constants.ENDPOINT, session.get("last"), session.get("timeout") or 0
            )
        )
    return _BadInput(f"cannot download {what} ({type(e).__name__}: {(str(e).strip().splitlines() or [''])[0]})")


# ----------------------------------------------------------------------------------------------------------------
# cards
# ----------------------------------------------------------------------------------------------------------------
def _card_path(
    model: str,
    revision: str | None = None,
    endpoint: str | None = None,
    token: str | None = None,
    missing_ok: bool = False,
) -> str | None:
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
def read_parent_chain(
    model_path: str, revision: str | None, previous_ledger: str | None, original_info: dict | None = None
) -> dict:
    """``{"parent_model": {...}, "requests": [ledger entries, oldest first]}`` of the model to unlearn.

    The requests come from ``previous_ledger`` or the parent directory's ``ledger.json``; when the parent's card
    lists requests, their commitments must equal the ledger's. Raises ValueError (one line, with the fix) when the
    parent is an hf-unlearn output and no ledger is available, or when the ledger does not belong to it.
    """
    from .output import sha256_of_dir, weights_sha256

    local = os.path.isdir(model_path)
    from .hub_guard import public_name

    # published in the card: a Hub id, or a local directory's base name (never a local path)
    parent = {
        "name_or_path": public_name(model_path),
        "revision": revision,
        "sha256": (original_info or {}).get("sha256") or (sha256_of_dir(model_path) if local else None),
        "weights_sha256": None,
    }
    card_requests = None
    try:
        card_path = _card_path(model_path, revision, missing_ok=True)
    except _BadInput as e:
        if previous_ledger:
            raise ValueError(f"--previous_ledger needs the parent's card to check it against: {e}") from e
        # A Hub original read from the cache while offline: nothing tells whether it is an hf-unlearn output.
        logger.warning(
            "could not read the card of %s to look for earlier deletion requests (%s); if it is an "
            "hf-unlearn output, pass --previous_ledger",
            model_path,
            e,
        )
        card_path = None
    block = load_card_unlearning(card_path) if card_path else {}
    card_head = block.get(HEAD_KEY)
    if isinstance(block.get("requests"), list):
        card_requests = block["requests"]
    elif local and os.path.isfile(os.path.join(model_path, "unlearning_config.json")):
        with open(os.path.join(model_path, "unlearning_config.json")) as f:
            provenance = json.load(f).get("provenance") or {}
        card_requests, card_head = provenance.get("requests"), provenance.get(HEAD_KEY)
    is_output = bool(block) or (local and os.path.isfile(os.path.join(model_path, "removal_record.json")))
    if local:
        parent["weights_sha256"] = weights_sha256(model_path)
        recorded = block.get("weights_sha256")
        if isinstance(recorded, dict) and recorded != parent["weights_sha256"]:
            raise ValueError(
                f"the weights in {model_path} do not match the SHA-256s its card records; the directory "
                "was modified after hf-unlearn wrote it: unlearn from an intact output directory"
            )
    elif isinstance(block.get("weights_sha256"), dict):
        parent["weights_sha256"] = block["weights_sha256"]

    ledger_path = previous_ledger or (
        os.path.join(model_path, LEDGER_NAME)
        if local and os.path.isfile(os.path.join(model_path, LEDGER_NAME))
        else None
    )
    if ledger_path is None:
        if is_output:
            where = "its local ledger.json is missing" if local else "a Hub repo carries no ledger"
            raise ValueError(
                f"{model_path} is an hf-unlearn output (earlier deletion requests) but {where}; pass "
                "--previous_ledger <ledger.json of the run that produced it> so that earlier removed rows "
                "stay removed"
            )
        return {"parent_model": parent, "requests": []}
    try:
        requests = read_ledger(ledger_path, chain=False)  # chained below, after the field-by-field comparison
    except LedgerError as e:
        raise ValueError(f"{e}; pass the ledger.json written next to the parent model") from e
    if card_requests is None:
        raise ValueError(
            f"{model_path}'s card lists no deletion requests, so the ledger {ledger_path} cannot be "
            "checked against it; --previous_ledger applies to models written by hf-unlearn"
        )
    ours = [r.get("commitment") for r in requests]
    theirs = [r.get("commitment") if isinstance(r, dict) else None for r in card_requests]
    if ours != theirs:
        raise ValueError(
            f"the ledger {ledger_path} (commitments {_short(ours)}) does not belong to {model_path} (card "
            f"commitments {_short(theirs)}); pass the ledger.json written with that model"
        )
    try:
        check_against_card(requests, ledger_path, card_requests, card_head, f"the card of {model_path}")
    except LedgerError as e:
        raise ValueError(
            f"{e}: the earlier requests would be carried into this run's card wrongly; unlearn from an "
            "intact output directory and its own ledger.json"
        ) from e
    return {"parent_model": parent, "requests": requests}


def _short(roots: list) -> str:
    return "[" + ", ".join(str(r)[:12] + "…" for r in roots) + "]"


@writes_stay_temporary  # the kept rows' indices would name the removed ones: never beside the data
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
            raise ValueError(
                f"request {k} named samples by {was} but this run names them by {now}; "
                f"pass --id_column_name {r.get('id_column') or '<a column absent from the data>'}"
            )
    earlier: dict[Any, int] = {}
    for k, r in enumerate(requests, 1):
        for leaf in r["leaves"]:
            earlier.setdefault(leaf["id"], k)
    if new_ids:
        again = [i for i in dict.fromkeys(new_ids) if i in earlier]
        if again:
            raise ValueError(
                f"{len(again)} of the ids to forget were already removed by an earlier request (e.g. "
                f"{again[0]!r} in request {earlier[again[0]]}); drop them from the ids file"
            )
    if id_column is not None:
        train = train.filter(lambda v: v not in earlier, input_columns=id_column, desc="drop earlier requests")
        if validation is not None and id_column in validation.column_names:
            validation = validation.filter(
                lambda v: v not in earlier, input_columns=id_column, desc="drop earlier requests"
            )
        return train, validation, None
    for k, r in enumerate(requests, 1):
        fp = (r.get("dataset") or {}).get("fingerprint")
        if fp != train._fingerprint:
            raise ValueError(
                f"request {k} named rows by index in a training split with fingerprint {fp}, this one "
                f"has {train._fingerprint}: row indices only name the same rows in the identical data; "
                "use the same dataset, or data with an id column (--id_column_name)"
            )
    kept = [i for i in range(len(train)) if i not in earlier]
    return train.select(kept), validation, kept
