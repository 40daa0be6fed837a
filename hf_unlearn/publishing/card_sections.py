"""The pieces of the model card (``hf_unlearn.publishing.card``), each a small pure function of a run record's parts.

Formatting helpers, the ``unlearning:`` metadata block, the ``model-index`` results, the tables of the body and the
keyword arguments of the Jinja template (``model_cards/unlearned_model_card.md``). Metric facts come from the one
metrics table, :data:`hf_unlearn.evaluation.metrics_table.METRICS`.
"""

from __future__ import annotations

import copy
import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult

from ..evaluation.metrics_table import METRICS
from ..training.engines import describe_engine

__all__ = [
    "ID_LIST_KEYS",
    "PAPER_URL",
    "is_hub_repo_id",
    "sanitize_removal_record",
    "original_names",
    "unlearning_block",
    "eval_results",
    "metric_rows",
    "alpha_search_view",
    "template_kwargs",
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

PAPER_URL = "https://arxiv.org/abs/2503.18314"

_SPLIT_NAMES = {"train": "forget/retain sets", "test": "test set", "validation": "validation set"}
_REPO_ID_RE = re.compile(r"^[A-Za-z0-9][\w.\-]{0,95}/[\w.\-]{1,96}$")
_LICENSE_SOURCES = {
    "--license": " (set with --license)",
    "model card": " (from the original model's card)",
    "config": " (from the original model's config)",
}


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


def method_display(method: str) -> str:
    from ..methods import method_facts

    facts = method_facts(method)  # the method class's display_name when the method is registered
    if facts["display_name"] != str(method):
        return facts["display_name"]
    known = {
        "lotus": "LoTUS",
        "finetune": "Fine-tuning",
        "neggrad": "NegGrad",
        "neggrad+": "NegGrad+",
        "random_label": "Random labels",
        "randl": "Random labels",
        "scrub": "SCRUB",
        "bad_teacher": "Bad Teacher",
        "salun": "SalUn",
        "l1_sparse": "l1-sparse",
        "ssd": "SSD",
        "unsir": "UNSIR",
        "retrain": "Retrain",
    }
    return known.get(method.lower(), method)


def _papers(method: str) -> list[dict]:
    from ..methods import method_facts

    return method_facts(method)["papers"]


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


def metric_rows(metrics: dict) -> list[dict]:
    """The body's metrics table: original, unlearned, gold, ideal and meaning of each metric present."""
    original, unlearned, gold = (metrics.get(k) or {} for k in ("original", "unlearned", "gold"))
    rows = []
    for key, m in METRICS.items():
        if not any(isinstance(v.get(key), (int, float)) for v in (original, unlearned, gold)):
            continue
        ideal = m.ideal_gold.format(gold=_fmt(key, gold.get(key))) if gold.get(key) is not None else m.ideal
        rows.append(
            {
                "label": m.label,
                "original": _fmt(key, original.get(key)),
                "unlearned": _fmt(key, unlearned.get(key)),
                "gold": _fmt(key, gold.get(key)),
                "ideal": ideal,
                "meaning": m.meaning,
            }
        )
    return rows


def alpha_search_view(search: dict | None) -> dict | None:
    """Rows of the retrain-free alpha search (metrics.json ``alpha_search``), for the card."""
    if not search or not search.get("candidates"):
        return None

    def num(v, pct=False):
        if not _is_number(v):
            return "—"
        return f"{100 * v:.2f}%" if pct else f"{v:.4g}"

    rows = [
        {
            "alpha": num(c.get("alpha")),
            "selected": bool(c.get("selected")),
            "estimate_selection": (
                f"{c['avg_gap_estimate_selection']:.4f}" if _is_number(c.get("avg_gap_estimate_selection")) else "—"
            ),
            "mia": num(c.get("mia")),
            "rf_jsd": f"{c['rf_jsd']:.6f}" if isinstance(c.get("rf_jsd"), (int, float)) else "—",
            "acc_forget": num(c.get("acc_forget"), True),
            "acc_retain": num(c.get("acc_retain"), True),
            "acc_test": num(c.get("acc_test"), True),
            "runtime": f"{c['runtime_s']:.1f} s" if isinstance(c.get("runtime_s"), (int, float)) else "—",
        }
        for c in search["candidates"]
    ]
    return {
        "rows": rows,
        "selected_alpha": num(search.get("selected_alpha")),
        "selection_split": _md(search.get("selection_split") or "validation"),
    }


def _license_display(original_model: dict, license_id: str | None) -> str:
    if license_id:
        return f"`{_md(license_id)}`" + _LICENSE_SOURCES.get(original_model.get("license_source"), "")
    return (
        "not set: the original model's license is unknown; set one with `--license` (or a `license:` line in "
        "this card's metadata) before publishing"
    )


def template_kwargs(
    record,
    *,
    removal: dict,
    names: dict,
    model_name: str,
    dataset_id: str | None,
    version: str,
    date: str,
    repo_id: str | None,
    ids_published: bool,
) -> dict:
    """The keyword arguments of the card template."""
    record_dataset = removal.get("dataset") or {}
    selection = removal.get("selection") or {}
    commitment = removal.get("commitment") or {}
    metrics = record.metrics or {}
    method_key = str(record.method).lower()
    hub, base_model, short = names["hub"], names["base_model"], names["short"]
    provenance = record.provenance or {}
    runtime_s, num_retained = record.runtime_s, removal.get("num_retained")
    return dict(
        model_name=_md(model_name),
        original_model_name=_md(short if not hub else hub),
        method_key=method_key,
        method_display=method_display(str(record.method)),
        num_removed=removal.get("num_removed", "an unspecified number of"),
        num_retained_display=num_retained if num_retained is not None else "—",
        dataset_display=_md(dataset_id or record_dataset.get("name") or ""),
        dataset_config_display=_show(record_dataset.get("config")),
        dataset_split_display=_show(record_dataset.get("split")),
        dataset_revision_display=_show(record_dataset.get("revision")),
        dataset_fingerprint_display=_show(record_dataset.get("fingerprint")),
        rule=_md(selection.get("rule") or ""),
        rule_description=_md(selection.get("description") or ""),
        commitment_algorithm=_md(commitment.get("algorithm") or "sha256"),
        commitment_value=_md(commitment.get("value") or ""),
        per_class_rows=[
            {"label": _md(label), "count": count} for label, count in (removal.get("per_class_counts") or {}).items()
        ],
        has_gold=bool(metrics.get("gold")),
        metric_rows=metric_rows(metrics),
        hyperparameter_rows=[
            {"name": _md(k), "value": _md(json.dumps(v) if not isinstance(v, str) else v)}
            for k, v in dict(record.hyperparameters or {}).items()
        ],
        seed_display=record.seed if record.seed is not None else "—",
        effective_batch_size_display=(record.effective_batch_size if record.effective_batch_size is not None else "—"),
        runtime_display=f"{float(runtime_s):.1f} s" if isinstance(runtime_s, (int, float)) else "",
        engine_display=_md(describe_engine(record.engine)) if record.engine else "",
        original_model_display=(
            f"[{hub}](https://huggingface.co/{hub})"
            if hub
            else f"`{_md(short)}` (a local checkpoint)"
            if names["name"]
            else "—"
        ),
        base_model_display=(
            f"[{base_model}](https://huggingface.co/{base_model})" if base_model and base_model != hub else ""
        ),
        license_display=_license_display(record.original_model or {}, names["license"]),
        original_revision_display=_show((record.original_model or {}).get("revision")),
        original_sha256_display=_show((record.original_model or {}).get("sha256")),
        library_version=_md(version),
        date=date,
        library_name=record.library_name,
        usage_repo_id=repo_id or "<namespace>/<model-name>",
        ids_published=ids_published,
        paper_url=PAPER_URL,
        request_rows=[
            {
                "request": r.get("request"),
                "date": _md(r.get("date")),
                "method": _md(r.get("method")),
                "num_removed": r.get("num_removed"),
                "commitment": _md(r.get("commitment")),
            }
            for r in provenance.get("requests") or []
        ],
        total_removed=provenance.get("total_removed"),
        method_papers=_papers(method_key),
        rf_jsd_paper=_papers("lotus")[0],  # RF-JSD is defined by LoTUS: every card's metrics cite it
        alpha_search=alpha_search_view(metrics.get("alpha_search")),
    )
