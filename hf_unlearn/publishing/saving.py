"""``save_unlearned``: the finished output directory of an unlearning run, written the same way from Python
(:meth:`UnlearningTrainer.save_unlearned`) and from the CLI (``hf_unlearn.cli.run.publish``).

Weights and processor (safetensors), ``metrics.json``, ``removal_record.json``, ``unlearning_config.json``, the model
card (README.md), ``ledger.json`` and ``removed_ids.json`` (both stay local: the Hub push leaves them out). Part of
the publishing layer; the core reaches it through ``hf_unlearn.training.hooks`` (registered by ``hf_unlearn.publishing.register``).
"""

from __future__ import annotations

import os

__all__ = ["save_unlearned"]


def save_unlearned(
    trainer,
    output_dir: str,
    selection,
    metrics: dict | None = None,
    *,
    original_model: str | None = None,
    original_info: dict | None = None,
    dataset_id: str | None = None,
    chain: dict | None = None,
    record=None,
) -> str:
    """Write ``trainer``'s unlearned model and its records into ``output_dir``; returns the directory.

    ``selection``: the :func:`hf_unlearn.select_forget` result of the run (its removed ids and salts make the
    ledger). ``metrics``: the :meth:`~hf_unlearn.UnlearningTrainer.evaluate_unlearning` results (default: the last
    ones). ``original_model``: the original's Hub id or directory, for the card (default: what the trainer was told,
    else the model config's ``name_or_path``). ``dataset_id``: default the removal record's dataset name. ``chain``:
    earlier deletion requests (:func:`hf_unlearn.publishing.provenance.read_parent_chain`), for a model that is itself an
    hf-unlearn output. Every argument is checked before anything is written.
    """
    from .output import finalize_output_dir, original_model_info

    if not output_dir:
        raise ValueError(
            "save_unlearned needs an output directory; pass e.g. trainer.save_unlearned('runs/x/final', split)."
        )
    if not (hasattr(selection, "record") and hasattr(selection, "removed_ids")):
        raise ValueError(
            f"save_unlearned needs the select_forget(...) result of this run (got {type(selection).__name__}); "
            "pass the split you built the trainer's forget and retain sets from."
        )
    metrics = metrics if metrics is not None else trainer.last_unlearning_metrics
    if not metrics:
        raise ValueError(
            "save_unlearned found no metrics for the card and metrics.json; call "
            "trainer.evaluate_unlearning(test_dataset) first (or pass metrics=)."
        )
    if original_info is None:
        original_info = dict(getattr(trainer, "original_model_info", None) or {})
        name = original_model or getattr(getattr(trainer.model, "config", None), "_name_or_path", None)
        if not original_info and name:
            original_info = original_model_info(name)
    if dataset_id is None:
        dataset_id = (getattr(selection.record, "dataset", None) or {}).get("name")
    if record is None:
        trainer.original_model_info = original_info  # the record reads it (hf_unlearn.records.run_record)
        record = trainer.run_record(metrics)
    return finalize_output_dir(
        trainer,
        metrics,
        selection,
        original_info=original_info,
        dataset_id=dataset_id,
        chain=chain,
        record=record,
        output_dir=os.fspath(output_dir),
    )
