"""The pieces of the model card (``hf_unlearn.publishing.card``), each a small pure function of a run record's parts.

Formatting helpers, the ``unlearning:`` metadata block and the ``model-index`` results. The tables of the body and the
keyword arguments of the Jinja template (``model_cards/unlearned_model_card.md``) are built in
:mod:`hf_unlearn.publishing.card_body`, with the helpers here. Metric facts come from the one metrics table,
:data:`hf_unlearn.evaluation.metrics_table.METRICS`.
"""

from __future__ import annotations

import copy
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult

from ..evaluation.metrics_table import METRICS

__all__ = [
    "ID_LIST_KEYS",
    "is_hub_repo_id",
    "sanitize_removal_record",
    "original_names",
    "unlearning_block",
    "eval_results",
]

#: Keys that would hold raw ids; they are dropped (at any depth) from the removal record before it goes in a card.
ID_LIST_KEYS = frozenset(
    {
        "ids",
        "removed_ids",
        "forget_ids",
        "retain_ids",
        "indices",
        "forget_indices",
        "removed_indices",
        "retain_indices",
        "leaves",
        "salts",
    }
)

_SPLIT_NAMES = {"train": "forget/retain sets", "test": "test set", "validation": "validation set"}
_REPO_ID_RE = re.compile(r"^[A-Za-z0-9][\w.\-]{0,95}/[\w.\-]{1,96}$")


# ---- helpers ---------------------------------------------------------------------------------------------------
def is_hub_repo_id(name: str | None, *, base_dir: str | os.PathLike | None = None) -> bool:
    """True when `name` looks like a Hub repo id (`namespace/name`) and is not a local path.

    Local paths (absolute, `./x`, `~/x`, anything that exists relative to the working directory or `base_dir`)
    are not Hub ids, so they never end up as `base_model`/`datasets` in a card."""
    if not name or not isinstance(name, str):
        return False
    if name.startswith((".", "/", "~", "\\")) or "\\" in name or ".." in name or "--" in name:
        return False
    if not _REPO_ID_RE.match(name) or name.endswith((".", "-")):
        return False
    if os.path.exists(name) or (base_dir is not None and os.path.exists(os.path.join(base_dir, name))):
        return False
    return True


def sanitize_removal_record(record: dict | None) -> dict:
    """A deep copy of the removal record without any field that could hold raw ids (see `ID_LIST_KEYS`)."""

    def clean(obj):
        if isinstance(obj, dict):
            return {k: clean(v) for k, v in obj.items() if str(k).lower() not in ID_LIST_KEYS}
        if isinstance(obj, (list, tuple)):
            return [clean(v) for v in obj]
        return copy.deepcopy(obj)

    return clean(record or {})


def _md(value: Any) -> str:
    """Text safe inside a Markdown table cell."""
    return str(value).replace("\r", " ").replace("\n", " ").replace("|", "\\|")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _fmt(key: str, value: Any) -> str:
    if value is None:
        return "—"
    if not _is_number(value):
        return _md(value)
    if key in METRICS and METRICS[key].kind == "accuracy":
        return f"{100 * value:.2f}%"
    return f"{value:.4f}"


def _round(value: Any) -> Any:
    return round(float(value), 6) if _is_number(value) else value


def _show(value) -> str:
    return f"`{_md(value)}`" if value not in (None, "") else "—"


def library_version(explicit: str | None, versions: dict) -> str:
    """The hf-unlearn version the card names: given explicitly, else recorded, else installed, else "unknown"."""
    if explicit:
        return str(explicit)
    for key in ("hf_unlearn", "hf-unlearn"):
        if versions.get(key):
            return str(versions[key])
    try:
        from importlib.metadata import version

        return version("hf-unlearn")
    except Exception:
        return "unknown"


def today() -> str:
    return datetime.now(timezone.utc).date().isoformat()


# ---- sections --------------------------------------------------------------------------------------------------
def original_names(original_model: dict, original_is_hub: bool | None) -> dict:
    """How the card names the original model: ``name`` (public), ``short``, ``hub`` (the original on the Hub),
    ``base_model`` (metadata: the original or the Hub model a local original names) and ``license``."""
    name = original_model.get("name_or_path") or original_model.get("name")
    if original_is_hub is None:
        original_is_hub = is_hub_repo_id(name)
    base_model = name if (original_is_hub and name) else None
    hub = base_model  # the original itself on the Hub (links in the body)
    if base_model is None and is_hub_repo_id(original_model.get("base_model")):
        base_model = original_model["base_model"]  # a local original whose config names its Hub model
    if name and not base_model and str(name).startswith(("/", "~", ".", "local-dir:")):
        from ..records.naming import public_name  # a local original: its base name, never an absolute local path

        name = public_name(name)
    return {
        "name": name,
        "short": Path(str(name)).name if name else "model",
        "hub": hub,
        "base_model": base_model,
        "license": original_model.get("license") or None,
    }


def unlearning_block(record, removal: dict, names: dict, version: str, date: str) -> dict:
    """The card's ``unlearning:`` metadata block."""
    original = record.original_model or {}
    meta: dict[str, Any] = {
        "method": str(record.method).lower(),
        "hyperparameters": dict(record.hyperparameters or {}),
        "removal_record": removal,
        "original_model": {
            "name_or_path": names["name"],
            "revision": original.get("revision"),
            "sha256": original.get("sha256"),
        },
        "library": "hf-unlearn",
        "library_version": version,
        "date": date,
        "seed": record.seed,
        "effective_batch_size": record.effective_batch_size,
    }
    if record.library_versions:
        meta["library_versions"] = dict(record.library_versions)
    if record.training:
        meta["training"] = record.training
    if record.runtime_s is not None:
        meta["runtime_s"] = _round(record.runtime_s)
    if record.engine:
        meta["engine"] = dict(record.engine)
    provenance = record.provenance or {}
    for key in ("parent_model", "requests", "total_removed", "chain_sha256", "weights_sha256"):
        if provenance.get(key) is not None:
            meta[key] = sanitize_removal_record({key: provenance[key]})[key]
    return meta


def eval_results(record, dataset_type: str, dataset_name: str, record_dataset: dict) -> list:
    """The ``model-index`` results: the unlearned model's value of each metric of the table it has."""
    unlearned = (record.metrics or {}).get("unlearned") or {}
    split_names = {
        "train": record_dataset.get("split") or "train",
        "test": record.test_split or "test",
        "validation": record.val_split or "validation",
    }
    results = []
    for key, m in METRICS.items():
        value = unlearned.get(key)
        if not _is_number(value):
            continue
        results.append(
            EvalResult(
                task_type="image-classification",
                task_name="Image Classification",
                dataset_type=dataset_type,
                dataset_name=f"{dataset_name} ({_SPLIT_NAMES[m.group]})",
                dataset_config=record_dataset.get("config") if m.group == "train" else None,
                dataset_split=split_names[m.group],
                dataset_revision=record_dataset.get("revision") if m.group == "train" else None,
                metric_type=m.kind,
                metric_name=m.label,
                metric_value=_round(value),
            )
        )
    return results
