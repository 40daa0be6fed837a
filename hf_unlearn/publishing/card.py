"""Model cards for unlearned checkpoints.

`render_model_card(record)` renders `model_cards/unlearned_model_card.md` (a Jinja template, shipped in the wheel as
`hf_unlearn/_model_cards/`) with `huggingface_hub.ModelCard.from_template`: a pure function of a
:class:`hf_unlearn.records.run_record.RunRecord` (plus how the card is published: repo id, whether the ids are published). The
trainer's checkpoint cards and the final card of an output directory both go through it. The card's YAML metadata
holds `base_model` (only when the original model is a Hub id), `datasets`, `library_name`, `pipeline_tag`, `tags`, a
`model-index` with the computed metrics and a custom `unlearning:` block (method, hyperparameters, the removal record,
the original model, versions, date, seed, effective batch size). The sections are built in
`hf_unlearn.publishing.card_sections` (the metadata) and `hf_unlearn.publishing.card_body` (the template's body).

Privacy: the card never contains raw sample ids. The removal record is copied without any id-list field
(see `ID_LIST_KEYS`); only counts, the selection rule, fingerprints and the salted Merkle commitment are kept.

`model_card_from_output_dir(output_dir)` loads the record of an output directory (`hf_unlearn.records.run_record.load_run_record`:
`metrics.json`, `removal_record.json`, `unlearning_config.json`, docs/FORMATS.md) and renders it.
`build_model_card(**parts)` renders a card from loose parts (kept for callers of earlier versions). None of them
writes anything: call `card.save(path)` (or let `hf_unlearn.publishing.hub.push_unlearned_to_hub` upload it).
"""

from __future__ import annotations

import os
from pathlib import Path

from huggingface_hub import ModelCard, ModelCardData

from ..evaluation.metrics_table import METRICS
from ..records.run_record import RunRecord, detect_library_name, load_run_record
from .card_body import (
    PAPER_URL,  # noqa: F401  (re-exported)
    template_kwargs,
)
from .card_sections import (
    ID_LIST_KEYS,
    eval_results,
    is_hub_repo_id,
    library_version,
    original_names,
    sanitize_removal_record,
    today,
    unlearning_block,
)

__all__ = [
    "TEMPLATE_NAME",
    "ID_LIST_KEYS",
    "METRIC_SPECS",
    "render_model_card",
    "build_model_card",
    "model_card_from_output_dir",
    "default_template_path",
    "is_hub_repo_id",
    "sanitize_removal_record",
    "detect_library_name",
]

TEMPLATE_NAME = "unlearned_model_card.md"

#: Compatible view of the metrics table (`hf_unlearn.evaluation.metrics_table.METRICS`, which the card reads): key -> label,
#: kind, split group, meaning, ideal without / with gold, in display order.
METRIC_SPECS: dict[str, dict[str, str]] = {
    m.key: {
        "label": m.label,
        "kind": m.kind,
        "group": m.group,
        "meaning": m.meaning,
        "ideal": m.ideal,
        "ideal_gold": m.ideal_gold,
    }
    for m in METRICS.values()
}


def default_template_path() -> Path:
    """The card template: the packaged copy (`hf_unlearn/_model_cards/`) or the repository's `model_cards/`."""
    candidates = []
    try:
        from importlib import resources

        candidates.append(Path(str(resources.files("hf_unlearn._model_cards") / TEMPLATE_NAME)))
    except Exception:  # not installed as a wheel (editable / source checkout)
        pass
    here = Path(__file__).resolve().parents[1]  # the hf_unlearn package
    candidates += [here / "_model_cards" / TEMPLATE_NAME, here.parent / "model_cards" / TEMPLATE_NAME]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"model card template {TEMPLATE_NAME} not found (looked in {[str(c) for c in candidates]})"
    )


def render_model_card(
    record: RunRecord,
    *,
    dataset_id: str | None = None,
    original_is_hub: bool | None = None,
    repo_id: str | None = None,
    model_name: str | None = None,
    ids_published: bool = False,
    template_path: str | os.PathLike | None = None,
) -> ModelCard:
    """The model card of the run ``record`` (a pure function of its arguments; writes nothing).

    Args:
        record: the run (:class:`hf_unlearn.records.run_record.RunRecord`). Any id-list field of its removal record is dropped.
        dataset_id: Hub dataset id for the `datasets` metadata (None: not listed). The removal record's dataset name
            is used for the eval results either way.
        original_is_hub: whether the original model's `name_or_path` is a Hub id (None: guessed with
            `is_hub_repo_id`: `namespace/name` and not an existing local path). `base_model` is set only for one.
        repo_id: the Hub repo the card is for (used in the usage snippet and the default model name).
        model_name: the name in the card title and `model-index` (default: from `repo_id` or the original model).
        ids_published: whether `removed_ids.json` is published next to the card (changes one sentence).
        template_path: another Jinja template (default: `default_template_path()`).

    Returns:
        `huggingface_hub.ModelCard` (save it with `card.save(path)` or push it with `card.push_to_hub(repo_id)`).
    """
    removal = sanitize_removal_record(record.removal_record)
    record_dataset = removal.get("dataset") or {}
    names = original_names(dict(record.original_model or {}), original_is_hub)
    method_key = str(record.method).lower()
    if model_name is None:
        model_name = repo_id.split("/")[-1] if repo_id else f"{names['short']}-unlearned-{method_key}"
    dataset_name = record_dataset.get("name") or dataset_id or "unknown"
    version = library_version(record.library_version, record.library_versions or {})
    date = str(record.date or today())

    results = eval_results(record, dataset_id or dataset_name, dataset_name, record_dataset)
    card_data = ModelCardData(
        license=names["license"],
        base_model=names["base_model"],
        datasets=[dataset_id] if dataset_id else None,
        library_name=record.library_name,
        pipeline_tag="image-classification",
        tags=["machine-unlearning", "hf-unlearn", method_key, "image-classification"],
        model_name=model_name if results else None,
        eval_results=results or None,
        metrics=sorted({r.metric_type for r in results}) or None,
        unlearning=unlearning_block(record, removal, names, version, date),
    )
    kwargs = template_kwargs(
        record,
        removal=removal,
        names=names,
        model_name=model_name,
        dataset_id=dataset_id,
        version=version,
        date=date,
        repo_id=repo_id,
        ids_published=ids_published,
    )
    path = Path(template_path) if template_path is not None else default_template_path()
    return ModelCard.from_template(card_data, template_path=str(path), **kwargs)


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
    """The card of a run given in parts: builds its :class:`~hf_unlearn.records.run_record.RunRecord`, then
    :func:`render_model_card`.

    ``metrics`` is `metrics.json`'s content; ``run_info`` may hold "seed", "effective_batch_size",
    "library_versions", "library_version", "date", "runtime_s", "training", "test_split", "val_split", "engine"
    (each missing one is taken from ``metrics["run"]``, the runtime from ``metrics["unlearned"]``); ``provenance`` is
    `unlearning_config.json`'s. The other arguments are :func:`render_model_card`'s.
    """
    run_info = dict(run_info or {})
    metrics = metrics or {}
    run = metrics.get("run") or {}
    record = RunRecord(
        method=method,
        hyperparameters=dict(hyperparameters or {}),
        removal_record=removal_record,
        metrics={k: v for k, v in metrics.items() if k != "run"},
        original_model=dict(original_model or {}),
        library_name=library_name,
        seed=run_info.get("seed", run.get("seed")),
        effective_batch_size=run_info.get("effective_batch_size", run.get("effective_batch_size")),
        runtime_s=run_info.get("runtime_s", (metrics.get("unlearned") or {}).get("runtime_s")),
        engine=run_info.get("engine", run.get("engine")),
        training=run_info.get("training"),
        library_versions=run_info.get("library_versions") or run.get("library_versions") or {},
        library_version=run_info.get("library_version"),
        date=run_info.get("date"),
        test_split=run_info.get("test_split"),
        val_split=run_info.get("val_split"),
        provenance=provenance,
    )
    return render_model_card(
        record,
        dataset_id=dataset_id,
        original_is_hub=original_is_hub,
        repo_id=repo_id,
        model_name=model_name,
        ids_published=ids_published,
        template_path=template_path,
    )


def model_card_from_output_dir(
    output_dir: str | os.PathLike,
    *,
    repo_id: str | None = None,
    dataset_id: str | None = None,
    ids_published: bool = False,
    template_path: str | os.PathLike | None = None,
) -> ModelCard:
    """The card of an unlearning output directory (docs/FORMATS.md): its record loaded from JSON, rendered.

    `dataset_id` defaults to unlearning_config.json's `dataset_id`, else the removal record's dataset name, when that
    is a Hub id (`namespace/name`). `original_model.is_hub_id: false` keeps a local original out of `base_model`.
    Writes nothing; raises FileNotFoundError naming a missing file.
    """
    output_dir = Path(output_dir)
    record = load_run_record(output_dir)
    if dataset_id is None:
        for candidate in (record.dataset_id, (record.removal_record.get("dataset") or {}).get("name")):
            if is_hub_repo_id(candidate, base_dir=output_dir.parent):
                dataset_id = candidate
                break
    original_is_hub = is_hub_repo_id(record.original_model.get("name_or_path"), base_dir=output_dir.parent)
    if record.original_model.get("is_hub_id") is False:  # recorded by hf_unlearn.publishing.output.original_model_info
        original_is_hub = False
    return render_model_card(
        record,
        dataset_id=dataset_id,
        original_is_hub=original_is_hub,
        repo_id=repo_id,
        ids_published=ids_published,
        template_path=template_path,
    )
