"""Model cards for unlearned checkpoints.

`build_model_card` renders `model_cards/unlearned_model_card.md` (a Jinja template, shipped in the wheel as
`hf_unlearn/_model_cards/`) with `huggingface_hub.ModelCard.from_template`. The card's YAML metadata holds
`base_model` (only when the original model is a Hub id), `datasets`, `library_name`, `pipeline_tag`, `tags`,
a `model-index` with the computed metrics and a custom `unlearning:` block (method, hyperparameters, the removal
record, the original model, versions, date, seed, effective batch size).

Privacy: the card never contains raw sample ids. The removal record is copied without any id-list field
(see `ID_LIST_KEYS`); only counts, the selection rule, fingerprints and the salted Merkle commitment are kept.

`model_card_from_output_dir(output_dir)` reads `metrics.json`, `removal_record.json` and
`unlearning_config.json` (docs/FORMATS.md) and renders the card. Neither function writes anything: call
`card.save(path)` (or let `hf_unlearn.hub.push_unlearned_to_hub` upload it).
"""

from __future__ import annotations

import copy
import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

__all__ = [
    "TEMPLATE_NAME",
    "ID_LIST_KEYS",
    "METRIC_SPECS",
    "build_model_card",
    "model_card_from_output_dir",
    "default_template_path",
    "is_hub_repo_id",
    "sanitize_removal_record",
    "detect_library_name",
]

from .metrics_table import METRICS

TEMPLATE_NAME = "unlearned_model_card.md"

#: Keys that would hold raw ids; they are dropped (at any depth) from the removal record before it goes in a card.
ID_LIST_KEYS = frozenset(
    {"ids", "removed_ids", "forget_ids", "retain_ids", "indices", "forget_indices", "removed_indices", "retain_indices",
     "leaves", "salts"}
)

PAPER_URL = "https://arxiv.org/abs/2503.18314"

# key -> label, kind, split group, meaning, ideal without / with gold, in display order: the one metrics table.
METRIC_SPECS: dict[str, dict[str, str]] = {
    m.key: {"label": m.label, "kind": m.kind, "group": m.group, "meaning": m.meaning, "ideal": m.ideal,
            "ideal_gold": m.ideal_gold}
    for m in METRICS.values()
}

_SPLIT_NAMES = {"train": "forget/retain sets", "test": "test set", "validation": "validation set"}


# ----------------------------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------------------------
def default_template_path() -> Path:
    """The card template: the packaged copy (`hf_unlearn/_model_cards/`) or the repository's `model_cards/`."""
    candidates = []
    try:
        from importlib import resources

        candidates.append(Path(str(resources.files("hf_unlearn._model_cards") / TEMPLATE_NAME)))
    except Exception:  # not installed as a wheel (editable / source checkout)
        pass
    here = Path(__file__).resolve().parent
    candidates += [here / "_model_cards" / TEMPLATE_NAME, here.parent / "model_cards" / TEMPLATE_NAME]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"model card template {TEMPLATE_NAME} not found (looked in {[str(c) for c in candidates]})")


_REPO_ID_RE = re.compile(r"^[A-Za-z0-9][\w.\-]{0,95}/[\w.\-]{1,96}$")


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


def detect_library_name(config: dict | None) -> str:
    """"timm" for a `timm.models.save_for_hf` config, else "transformers"."""
    from .modeling import family_of_config

    return family_of_config(config).library_name


def _md(value: Any) -> str:
    """Text safe inside a Markdown table cell."""
    return str(value).replace("\r", " ").replace("\n", " ").replace("|", "\\|")


def _fmt(key: str, value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return _md(value)
    if METRIC_SPECS.get(key, {}).get("kind") == "accuracy":
        return f"{100 * value:.2f}%"
    return f"{value:.4f}"


def _round(value: Any) -> Any:
    return round(float(value), 6) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def _library_version(run_info: dict) -> str:
    if run_info.get("library_version"):
        return str(run_info["library_version"])
    versions = run_info.get("library_versions") or {}
    for key in ("hf_unlearn", "hf-unlearn"):
        if versions.get(key):
            return str(versions[key])
    try:
        from importlib.metadata import version

        return version("hf-unlearn")
    except Exception:
        return "unknown"


def _method_display(method: str) -> str:
    from .methods import method_facts

    facts = method_facts(method)  # the method class's display_name when the method is registered
    if facts["display_name"] != str(method):
        return facts["display_name"]
    known = {"lotus": "LoTUS", "finetune": "Fine-tuning", "neggrad": "NegGrad", "neggrad+": "NegGrad+",
             "random_label": "Random labels", "randl": "Random labels", "scrub": "SCRUB", "bad_teacher": "Bad Teacher",
             "salun": "SalUn", "l1_sparse": "l1-sparse", "ssd": "SSD", "unsir": "UNSIR", "retrain": "Retrain"}
    return known.get(method.lower(), method)


def _method_papers(method: str) -> list[dict]:
    from .methods import method_facts

    return method_facts(method)["papers"]


def _rf_jsd_paper() -> dict:
    """The LoTUS paper, which defines RF-JSD: every card's metrics cite it, whatever the method."""
    from .methods import method_facts

    return method_facts("lotus")["papers"][0]


def _alpha_search_view(search: dict | None) -> dict | None:
    """Rows of the retrain-free alpha search (metrics.json ``alpha_search``), for the card."""
    if not search or not search.get("candidates"):
        return None

    def num(v, pct=False):
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            return "—"
        return f"{100 * v:.2f}%" if pct else f"{v:.4g}"

    rows = [{"alpha": num(c.get("alpha")), "selected": bool(c.get("selected")),
             "rf_jsd_selection": f"{c['rf_jsd_selection']:.6f}" if isinstance(c.get("rf_jsd_selection"), (int, float)) else "—",
             "rf_jsd": f"{c['rf_jsd']:.6f}" if isinstance(c.get("rf_jsd"), (int, float)) else "—",
             "acc_forget": num(c.get("acc_forget"), True), "acc_retain": num(c.get("acc_retain"), True),
             "acc_test": num(c.get("acc_test"), True),
             "runtime": f"{c['runtime_s']:.1f} s" if isinstance(c.get("runtime_s"), (int, float)) else "—"}
            for c in search["candidates"]]
    return {"rows": rows, "selected_alpha": num(search.get("selected_alpha")),
            "selection_split": _md(search.get("selection_split") or "validation")}


def _eval_results(metrics: dict, dataset_type: str, dataset_name: str, record_dataset: dict, run_info: dict):
    unlearned = (metrics or {}).get("unlearned") or {}
    split_names = {
        "train": record_dataset.get("split") or "train",
        "test": run_info.get("test_split") or "test",
        "validation": run_info.get("val_split") or "validation",
    }
    results = []
    for key, spec in METRIC_SPECS.items():
        value = unlearned.get(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        group = spec["group"]
        results.append(
            EvalResult(
                task_type="image-classification",
                task_name="Image Classification",
                dataset_type=dataset_type,
                dataset_name=f"{dataset_name} ({_SPLIT_NAMES[group]})",
                dataset_config=record_dataset.get("config") if group == "train" else None,
                dataset_split=split_names[group],
                dataset_revision=record_dataset.get("revision") if group == "train" else None,
                metric_type=spec["kind"],
                metric_name=spec["label"],
                metric_value=_round(value),
            )
        )
    return results


# ----------------------------------------------------------------------------------------------------------------
# public API
# ----------------------------------------------------------------------------------------------------------------
def build_model_card(
    *,
    method: str,
    hyperparameters: dict | None,
    removal_record: dict,
    metrics: dict,
    original_model: dict | None,
    original_is_hub: bool | None = None,
    dataset_id: str | None = None,
    library_name: str = "transformers",
    run_info: dict | None = None,
    model_name: str | None = None,
    repo_id: str | None = None,
    ids_published: bool = False,
    template_path: str | os.PathLike | None = None,
    provenance: dict | None = None,
) -> ModelCard:
    """Render the model card of an unlearned checkpoint.

    Args:
        method: the unlearning method's name ("lotus", "finetune", ...).
        hyperparameters: the method's hyperparameters (JSON-serialisable).
        removal_record: `hf_unlearn.data.RemovalRecord.to_dict()` (docs/FORMATS.md). Any id-list field is dropped.
        metrics: the content of `metrics.json`: {"original": {...}, "unlearned": {...}, "gold": {...}?, "run": {...}}.
        original_model: {"name_or_path", "revision", "sha256"}. `base_model` is set only for a Hub id.
        original_is_hub: whether `original_model["name_or_path"]` is a Hub id (None: guessed with `is_hub_repo_id`:
            `namespace/name` and not an existing local path).
        dataset_id: Hub dataset id for the `datasets` metadata (None: not listed). The removal record's dataset name
            is used for the eval results either way.
        library_name: "transformers" or "timm".
        run_info: {"seed", "effective_batch_size", "library_versions", "library_version", "date", "runtime_s",
            "training", "test_split", "val_split"}; all optional (`date` defaults to today, UTC).
        model_name: the name in the card title and `model-index` (default: from `repo_id` or the original model).
        repo_id: the Hub repo the card is for (used in the usage snippet).
        ids_published: whether `removed_ids.json` is published next to the card (changes one sentence).
        template_path: another Jinja template (default: `default_template_path()`).
        provenance: `unlearning_config.json`'s `provenance` (hf_unlearn.output): `parent_model`, `requests` (oldest
            first, no ids), `total_removed`, `weights_sha256`; copied into the `unlearning:` block.

    Returns:
        `huggingface_hub.ModelCard` (save it with `card.save(path)` or push it with `card.push_to_hub(repo_id)`).
    """
    run_info = dict(run_info or {})
    metrics = metrics or {}
    original_model = dict(original_model or {})
    hyperparameters = dict(hyperparameters or {})
    record = sanitize_removal_record(removal_record)
    record_dataset = record.get("dataset") or {}
    selection = record.get("selection") or {}
    commitment = record.get("commitment") or {}
    method_key = str(method).lower()
    method_display = _method_display(str(method))

    original_name = original_model.get("name_or_path") or original_model.get("name")
    if original_is_hub is None:
        original_is_hub = is_hub_repo_id(original_name)
    base_model = original_name if (original_is_hub and original_name) else None
    hub_original = base_model  # the original itself on the Hub (links in the body)
    if base_model is None and is_hub_repo_id(original_model.get("base_model")):
        base_model = original_model["base_model"]  # a local original whose config names its Hub model
    license_id = original_model.get("license") or None
    if original_name and not base_model and str(original_name).startswith(("/", "~", ".", "local-dir:")):
        from .hub_guard import public_name  # a local original: its base name, never an absolute local path

        original_name = public_name(original_name)
    original_short = Path(str(original_name)).name if original_name else "model"
    if model_name is None:
        model_name = repo_id.split("/")[-1] if repo_id else f"{original_short}-unlearned-{method_key}"

    dataset_name = record_dataset.get("name") or dataset_id or "unknown"
    dataset_type = dataset_id or dataset_name

    run_metrics = metrics.get("run") or {}
    seed = run_info.get("seed", run_metrics.get("seed"))
    effective_batch_size = run_info.get("effective_batch_size", run_metrics.get("effective_batch_size"))
    library_versions = run_info.get("library_versions") or run_metrics.get("library_versions") or {}
    library_version = _library_version({**run_info, "library_versions": library_versions})
    date = str(run_info.get("date") or datetime.now(timezone.utc).date().isoformat())
    runtime_s = run_info.get("runtime_s", (metrics.get("unlearned") or {}).get("runtime_s"))

    unlearning_meta: dict[str, Any] = {
        "method": method_key,
        "hyperparameters": hyperparameters,
        "removal_record": record,
        "original_model": {
            "name_or_path": original_name,
            "revision": original_model.get("revision"),
            "sha256": original_model.get("sha256"),
        },
        "library": "hf-unlearn",
        "library_version": library_version,
        "date": date,
        "seed": seed,
        "effective_batch_size": effective_batch_size,
    }
    if library_versions:
        unlearning_meta["library_versions"] = dict(library_versions)
    if run_info.get("training"):
        unlearning_meta["training"] = run_info["training"]
    if runtime_s is not None:
        unlearning_meta["runtime_s"] = _round(runtime_s)
    for key in ("parent_model", "requests", "total_removed", "weights_sha256"):
        if (provenance or {}).get(key) is not None:
            unlearning_meta[key] = sanitize_removal_record({key: provenance[key]})[key]

    eval_results = _eval_results(metrics, dataset_type, dataset_name, record_dataset, run_info)
    tags = ["machine-unlearning", "hf-unlearn", method_key, "image-classification"]
    card_data = ModelCardData(
        license=license_id,
        base_model=base_model,
        datasets=[dataset_id] if dataset_id else None,
        library_name=library_name,
        pipeline_tag="image-classification",
        tags=tags,
        model_name=model_name if eval_results else None,
        eval_results=eval_results or None,
        metrics=sorted({r.metric_type for r in eval_results}) or None,
        unlearning=unlearning_meta,
    )

    # --- body ---------------------------------------------------------------------------------------------------
    original, unlearned, gold = (metrics.get(k) or {} for k in ("original", "unlearned", "gold"))
    has_gold = bool(gold)
    metric_rows = []
    for key, spec in METRIC_SPECS.items():
        if not any(isinstance(m.get(key), (int, float)) for m in (original, unlearned, gold)):
            continue
        ideal = spec["ideal_gold"].format(gold=_fmt(key, gold.get(key))) if gold.get(key) is not None else spec["ideal"]
        metric_rows.append(
            {
                "label": spec["label"],
                "original": _fmt(key, original.get(key)),
                "unlearned": _fmt(key, unlearned.get(key)),
                "gold": _fmt(key, gold.get(key)),
                "ideal": ideal,
                "meaning": spec["meaning"],
            }
        )
    per_class = record.get("per_class_counts") or {}
    per_class_rows = [{"label": _md(label), "count": count} for label, count in per_class.items()]
    hyperparameter_rows = [{"name": _md(k), "value": _md(json.dumps(v) if not isinstance(v, str) else v)}
                           for k, v in hyperparameters.items()]

    def show(value):
        return f"`{_md(value)}`" if value not in (None, "") else "—"

    num_retained = record.get("num_retained")
    template_kwargs = dict(
        model_name=_md(model_name),
        original_model_name=_md(original_short if not hub_original else hub_original),
        method_key=method_key,
        method_display=method_display,
        num_removed=record.get("num_removed", "an unspecified number of"),
        num_retained_display=num_retained if num_retained is not None else "—",
        dataset_display=_md(dataset_id or record_dataset.get("name") or ""),
        dataset_config_display=show(record_dataset.get("config")),
        dataset_split_display=show(record_dataset.get("split")),
        dataset_revision_display=show(record_dataset.get("revision")),
        dataset_fingerprint_display=show(record_dataset.get("fingerprint")),
        rule=_md(selection.get("rule") or ""),
        rule_description=_md(selection.get("description") or ""),
        commitment_algorithm=_md(commitment.get("algorithm") or "sha256"),
        commitment_value=_md(commitment.get("value") or ""),
        per_class_rows=per_class_rows,
        has_gold=has_gold,
        metric_rows=metric_rows,
        hyperparameter_rows=hyperparameter_rows,
        seed_display=seed if seed is not None else "—",
        effective_batch_size_display=effective_batch_size if effective_batch_size is not None else "—",
        runtime_display=f"{float(runtime_s):.1f} s" if isinstance(runtime_s, (int, float)) else "",
        original_model_display=(f"[{hub_original}](https://huggingface.co/{hub_original})" if hub_original
                                else f"`{_md(original_short)}` (a local checkpoint)" if original_name else "—"),
        base_model_display=(f"[{base_model}](https://huggingface.co/{base_model})"
                            if base_model and base_model != hub_original else ""),
        license_display=(f"`{_md(license_id)}`" + {"--license": " (set with --license)",
                                                     "model card": " (from the original model's card)",
                                                     "config": " (from the original model's config)"}.get(
                             original_model.get("license_source"), "") if license_id else
                         "not set: the original model's license is unknown; set one with `--license` (or a "
                         "`license:` line in this card's metadata) before publishing"),
        original_revision_display=show(original_model.get("revision")),
        original_sha256_display=show(original_model.get("sha256")),
        library_version=_md(library_version),
        date=date,
        library_name=library_name,
        usage_repo_id=repo_id or "<namespace>/<model-name>",
        ids_published=ids_published,
        paper_url=PAPER_URL,
        request_rows=[{"request": r.get("request"), "date": _md(r.get("date")), "method": _md(r.get("method")),
                       "num_removed": r.get("num_removed"), "commitment": _md(r.get("commitment"))}
                      for r in (provenance or {}).get("requests") or []],
        total_removed=(provenance or {}).get("total_removed"),
        method_papers=_method_papers(method_key),
        rf_jsd_paper=_rf_jsd_paper(),
        alpha_search=_alpha_search_view(metrics.get("alpha_search")),
    )
    path = Path(template_path) if template_path is not None else default_template_path()
    return ModelCard.from_template(card_data, template_path=str(path), **template_kwargs)


def _read_json(path: Path) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def model_card_from_output_dir(
    output_dir: str | os.PathLike,
    *,
    repo_id: str | None = None,
    dataset_id: str | None = None,
    ids_published: bool = False,
    template_path: str | os.PathLike | None = None,
) -> ModelCard:
    """Build the card of an unlearning output directory (docs/FORMATS.md) from its JSON files.

    Reads `metrics.json`, `removal_record.json`, `unlearning_config.json` and `config.json` (for the library name).
    `dataset_id` defaults to unlearning_config.json's `dataset_id`, else the removal record's dataset name, when that
    is a Hub id (`namespace/name`). `original_model.is_hub_id: false` keeps a local original out of `base_model`.
    Writes nothing; raises FileNotFoundError naming a missing file.
    """
    output_dir = Path(output_dir)
    missing = [n for n in ("metrics.json", "removal_record.json", "unlearning_config.json")
               if not (output_dir / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{output_dir} is missing {', '.join(missing)} (not an hf-unlearn output directory)")
    metrics = _read_json(output_dir / "metrics.json")
    record = _read_json(output_dir / "removal_record.json")
    config = _read_json(output_dir / "unlearning_config.json")
    model_config = _read_json(output_dir / "config.json") if (output_dir / "config.json").is_file() else {}

    run = metrics.get("run") or {}
    run_info = {
        "seed": config.get("seed", run.get("seed")),
        "effective_batch_size": config.get("effective_batch_size", run.get("effective_batch_size")),
        "library_versions": config.get("library_versions") or run.get("library_versions") or {},
        "training": config.get("training"),
        "date": config.get("date") or run.get("date"),
        "runtime_s": (metrics.get("unlearned") or {}).get("runtime_s"),
    }
    for key in ("test_split", "val_split"):
        if config.get(key) or run.get(key):
            run_info[key] = config.get(key) or run.get(key)
    if dataset_id is None:
        for candidate in (config.get("dataset_id"), (record.get("dataset") or {}).get("name")):
            if is_hub_repo_id(candidate, base_dir=output_dir.parent):
                dataset_id = candidate
                break
    original = dict(config.get("original_model") or {})
    original_is_hub = is_hub_repo_id(original.get("name_or_path"), base_dir=output_dir.parent)
    if original.get("is_hub_id") is False:  # recorded by hf_unlearn.output.original_model_info
        original_is_hub = False
    return build_model_card(
        method=config.get("method") or run.get("method") or "unknown",
        hyperparameters=config.get("hyperparameters") or {},
        removal_record=record,
        metrics=metrics,
        original_model=original,
        original_is_hub=original_is_hub,
        dataset_id=dataset_id,
        library_name=detect_library_name(model_config),
        run_info=run_info,
        repo_id=repo_id,
        ids_published=ids_published,
        template_path=template_path,
        provenance=config.get("provenance"),
    )
