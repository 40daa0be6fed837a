"""Writing a finished unlearning output directory (layout: docs/FORMATS.md), atomically.

Everything is first written to a staging folder inside the output directory and then moved into place file
by file, ``metrics.json`` last: a run that dies half-way never leaves a directory that looks finished. Nothing is
moved unless the staged weights exist and hash to what the card records (:func:`check_weights_staged`).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
from typing import Any

__all__ = [
    "finalize_output_dir",
    "config_json",
    "original_model_info",
    "sha256_of_dir",
    "weights_sha256",
    "check_weights_staged",
    "IncompleteOutputError",
]

STAGING_DIR = ".incomplete"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


def sha256_of_dir(path: str, suffixes: tuple[str, ...] = WEIGHT_SUFFIXES) -> str:
    """SHA-256 over the weight files of a model directory (name and content, sorted by name)."""
    digest = hashlib.sha256()
    for name in sorted(os.listdir(path)):
        if name.endswith(suffixes):
            digest.update(name.encode())
            with open(os.path.join(path, name), "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


def weights_sha256(path: str, suffixes: tuple[str, ...] = WEIGHT_SUFFIXES) -> dict[str, str]:
    """{file name: SHA-256} of each weights file in a model directory (what the card records and `verify` checks)."""
    out = {}
    for name in sorted(os.listdir(path)):
        if name.endswith(suffixes) and os.path.isfile(os.path.join(path, name)):
            digest = hashlib.sha256()
            with open(os.path.join(path, name), "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
            out[name] = digest.hexdigest()
    return out


def original_model_info(name_or_path: str, revision: str | None = None) -> dict[str, Any]:
    """Name, revision and weights hash of the original model (the hash only for local directories)."""
    from ..records.naming import public_name

    # published in unlearning_config.json and the card: a local directory by its base name, not its path
    info: dict[str, Any] = {
        "name_or_path": public_name(name_or_path),
        "revision": revision,
        "sha256": None,
        "is_hub_id": not os.path.isdir(name_or_path),
    }
    if os.path.isdir(name_or_path):
        info["sha256"] = sha256_of_dir(name_or_path)
    return info


def _json(path: str, obj: Any) -> None:
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, default=str)


def finalize_output_dir(
    trainer,
    results: dict,
    selection,
    script=None,
    original_info: dict | None = None,
    dataset_id: str | None = None,
    chain: dict | None = None,
    record=None,
    output_dir: str | None = None,
) -> str:
    """Write model, processor, card, metrics, removal record and config into ``output_dir`` (default
    ``trainer.args.output_dir``); :func:`hf_unlearn.publishing.saving.save_unlearned` is the entry point.

    ``record``: the run's :class:`~hf_unlearn.records.run_record.RunRecord` (default: ``trainer.run_record(results)``); this adds
    what only the output knows (the final commitment, original model, dataset, date, provenance) and saves it.
    ``chain`` (from :func:`hf_unlearn.publishing.provenance.read_parent_chain`): ``{"parent_model": {...}, "requests": [...]}``,
    the earlier deletion requests this run continues; the new ``ledger.json`` lists them and this one."""
    from ..modeling.classifiers import save_classifier

    if record is None:
        record = trainer.run_record(results)
    out = output_dir or trainer.args.output_dir
    os.makedirs(out, exist_ok=True)
    staging = os.path.join(out, STAGING_DIR)
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    try:
        _write_staging(trainer, staging, record, selection, original_info, dataset_id, save_classifier, chain)
        check_weights_staged(staging, (record.provenance or {}).get("weights_sha256"))
    except BaseException:
        # disk full, Ctrl-C...: no half-written files, and an earlier finished output stays as it was
        shutil.rmtree(staging, ignore_errors=True)
        raise

    names = sorted(os.listdir(staging), key=lambda n: n == "metrics.json")  # metrics.json last
    marker = os.path.join(out, "metrics.json")
    if os.path.lexists(marker):
        # an earlier output's completion marker goes first: if a move below fails, the directory must not look
        # finished with a mix of old and new files
        os.remove(marker)
    for name in names:
        target = os.path.join(out, name)
        if os.path.isdir(target) and not os.path.islink(target):
            shutil.rmtree(target)
        os.replace(os.path.join(staging, name), target)
    os.rmdir(staging)
    return out


class IncompleteOutputError(RuntimeError):
    """The staged output lacks its weights, or they are not the ones its card and records name."""


def check_weights_staged(staging: str, recorded: dict | None) -> None:
    """Before an output directory is finished: it holds a weights file, and every weights file's SHA-256 is the
    one the card and ``unlearning_config.json`` record (``recorded``). Raises :class:`IncompleteOutputError`."""
    actual = weights_sha256(staging)
    if not actual:
        raise IncompleteOutputError(
            "no weights file was written, so the output would hold a card and metrics for a model it does not "
            "contain; nothing was presented as finished (a process that is not torch rank 0 saves no weights: check "
            "that the launch formed one process group)."
        )
    if actual != (recorded or {}):
        differ = sorted(set(actual) ^ set(recorded or {})) or sorted(n for n in actual if actual[n] != recorded[n])
        raise IncompleteOutputError(
            f"the weights written ({', '.join(differ)}) are not the ones the card records (weights_sha256); nothing "
            "was presented as finished. Re-run."
        )


def config_json(record, files: list[str]) -> dict:
    """``unlearning_config.json``: the record's method, training, versions, original model, dataset, date and
    provenance, with the ``files`` manifest (docs/FORMATS.md)."""
    from .hub_guard import MANIFEST_KEY

    return {
        "method": record.method,
        "hyperparameters": record.hyperparameters,
        "training": record.training,
        "seed": record.seed,
        "effective_batch_size": record.effective_batch_size,
        "library_versions": record.library_versions,
        "original_model": record.original_model,
        "dataset_id": record.dataset_id,
        "date": record.date,
        # the files this run writes: the Hub push uploads only these (hf_unlearn.publishing.hub_guard.plan_upload)
        MANIFEST_KEY: files,
        "provenance": record.provenance,
    }


def _write_staging(
    trainer, staging, record, selection, original_info, dataset_id, save_classifier, chain: dict | None = None
) -> None:
    from ..records.ledger import (
        HEAD_KEY,
        LEDGER_NAME,
        new_request,
        public_requests,
        record_sha256,
        write_ledger,
    )
    from ..records.merkle import commit_ids
    from ..records.naming import public_name

    save_classifier(trainer.model, staging, trainer.processing_class)
    # The salts chosen at selection time make the tree's root the record's commitment (fresh salts otherwise).
    tree = commit_ids(selection.removed_ids, getattr(selection, "salts", None))
    selection.record.commitment = tree.to_record()
    record.removal_record = selection.record.to_dict()
    earlier = list((chain or {}).get("requests") or [])
    # each request holds the hash of the one before it; the card holds the newest one's (hf_unlearn.records.ledger)
    requests = earlier + [
        new_request(
            tree,
            method=record.method,
            record=record.removal_record,
            metrics=record.metrics,
            previous=earlier[-1] if earlier else None,
        )
    ]
    write_ledger(os.path.join(staging, LEDGER_NAME), requests)
    _json(os.path.join(staging, "removal_record.json"), record.removal_record)
    _json(
        os.path.join(staging, "removed_ids.json"),
        {"id_column": selection.record.id_column, "ids": list(selection.removed_ids)},
    )
    record.original_model = original_info or {}
    record.dataset_id = public_name(dataset_id)
    record.date = datetime.date.today().isoformat()
    record.provenance = {
        "parent_model": (chain or {}).get("parent_model"),
        "requests": public_requests(requests),
        "total_removed": sum(int(r.get("num_removed") or 0) for r in requests),
        HEAD_KEY: record_sha256(requests[-1]),
        "weights_sha256": weights_sha256(staging),
    }
    files = sorted(set(os.listdir(staging)) | {"unlearning_config.json", "metrics.json", "README.md"})
    _json(os.path.join(staging, "unlearning_config.json"), config_json(record, files))
    _json(os.path.join(staging, "metrics.json"), record.metrics_json())
    try:
        from .card import model_card_from_output_dir

        # the card of the saved record, read back as the Hub push reads it (the same bytes as at push time)
        model_card_from_output_dir(staging).save(os.path.join(staging, "README.md"))
    except ImportError:  # pragma: no cover - card module ships with the package
        pass
