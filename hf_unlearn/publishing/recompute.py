"""``hf-unlearn verify --recompute``: re-evaluate a model and compare its metrics with the card's newest request.

The forget set is rebuilt from the local ledger (``--output_dir``): the newest request's ids; earlier requests' rows
are dropped first, exactly as the run did (:func:`hf_unlearn.publishing.provenance.exclude_earlier`), so the retain and
validation sets are the run's too. The original model (for RF-JSD and the "original" reference) is the card's
``parent_model``. The evaluation is the run's own: ``UnlearningTrainer.evaluate_unlearning``.
"""

from __future__ import annotations

import os
import tempfile

__all__ = ["recompute_table"]


def _find_parent(block: dict, output_dir: str) -> str | None:
    """The parent model's location. Published cards name a local parent by its directory's base name only, so it is
    looked for as given, next to the ledger directory, and among the embedded default's cached originals; a
    candidate counts only when its weights hash equals the card's ``parent_model.sha256`` (when the card has one)."""
    from ..data.builtin import cache_dir
    from .output import sha256_of_dir

    info = block.get("parent_model") or block.get("original_model") or {}
    name = info.get("name_or_path")
    if not name:
        return None
    candidates = [
        name,
        os.path.join(os.path.dirname(os.path.abspath(output_dir)), name),
        os.path.join(cache_dir(), "originals", name),
    ]
    for candidate in candidates:
        if os.path.isdir(candidate) and (not info.get("sha256") or sha256_of_dir(candidate) == info["sha256"]):
            return candidate
    return name  # a Hub id (or not found: loading it fails with a one-line error naming --parent_model)


def recompute_table(
    model: str,
    block: dict,
    output_dir: str,
    dataset_name: str | None,
    tolerance: float,
    revision: str | None = None,
    parent_model: str | None = None,
) -> tuple[bool, str]:
    """``(all within tolerance, printable table)``; raises ValueError subclasses of provenance for bad input."""
    from .. import UnlearningArguments, UnlearningTrainer, load_classifier, select_forget
    from ..data.sources import DataSourceError, load_dataset_source, split_of
    from ..records.ledger import LEDGER_NAME, read_ledger
    from ..records.merkle import LedgerError
    from .provenance import _BadInput, _Failed, exclude_earlier

    try:
        requests = read_ledger(os.path.join(output_dir, LEDGER_NAME))
    except LedgerError as e:
        raise _BadInput(f"--output_dir: {e}") from e
    card_requests = block.get("requests") or []
    if [r.get("commitment") for r in requests] != [r.get("commitment") for r in card_requests if isinstance(r, dict)]:
        raise _Failed(
            f"the ledger in {output_dir} does not belong to this model (its commitments differ from the card's)"
        )
    reported = dict(card_requests[-1].get("metrics") or {})
    if not reported:
        raise _Failed("the card's newest request reports no metrics to compare")
    record = block.get("removal_record") or {}
    dataset = record.get("dataset") or {}
    name = dataset_name or dataset.get("name")
    train_split = dataset.get("split") or "train"
    try:
        data, _ = load_dataset_source(
            None if name in (None, "sklearn-digits") else name,
            dataset.get("config"),
            dataset.get("revision"),
            train_split=train_split,
        )
        train = split_of(data, train_split, "train")
    except DataSourceError as e:
        raise _BadInput(str(e)) from e
    if dataset.get("fingerprint") and train._fingerprint != dataset["fingerprint"]:
        raise _BadInput(
            f"the '{train_split}' split of {name} has fingerprint {train._fingerprint}, the "
            f"run's had {dataset['fingerprint']}: recompute on the data the model was unlearned on "
            "(--dataset_name)"
        )
    validation = split_of(data, "validation", "validation")
    test = split_of(data, "test", "test")
    id_column = record.get("id_column")
    label_column = record.get("label_column") or "label"
    last_ids = [leaf["id"] for leaf in requests[-1]["leaves"]]
    try:
        train, validation, kept = exclude_earlier(requests[:-1], train, validation, id_column)
        if id_column is not None:
            split = select_forget(train, ids=last_ids, id_column=id_column, label_column=label_column)
        else:
            position = {orig: pos for pos, orig in enumerate(kept)} if kept is not None else None
            split = select_forget(
                train,
                indices=[position[i] if position else i for i in last_ids],
                id_column=None,
                label_column=label_column,
            )
    except (ValueError, KeyError) as e:
        raise _BadInput(
            f"cannot rebuild the forget set from the ledger on this dataset ({e}); pass the run's --dataset_name"
        ) from e

    parent = parent_model or _find_parent(block, output_dir)
    try:
        loaded = load_classifier(model, revision=revision)
        original = load_classifier(parent).model if parent else None
    except (ValueError, OSError) as e:
        raise _BadInput(
            f"cannot load the model or its parent {parent} ({e}); pass --parent_model with the local "
            "directory (or Hub id) of the model this run started from"
        ) from e
    if original is None:
        raise _BadInput("the card names no parent model (needed for RF-JSD and the original's reference)")
    with tempfile.TemporaryDirectory() as tmp:
        args = UnlearningArguments.for_method(
            "finetune", output_dir=tmp, report_to="none", use_cpu=True, disable_tqdm=True, save_strategy="no"
        )
        trainer = UnlearningTrainer(
            loaded.model,
            args,
            forget_dataset=split.forget,
            retain_dataset=split.retain,
            calibration_dataset=validation,
            image_transform=loaded.transform,
            removal_record=split.record,
        )
        results = trainer.evaluate_unlearning(test, validation, original=original.eval(), log=False)["unlearned"]
    ok = True
    lines = [f"{'metric':<12}{'card':>12}{'recomputed':>12}{'|diff|':>12}  (tolerance {tolerance:g})"]
    for key, value in reported.items():
        now = results.get(key)
        diff = abs(now - value) if isinstance(now, (int, float)) else None
        good = diff is not None and diff <= tolerance
        ok &= good
        measured = f"{now:>12.6f}{diff:>12.2e}" if diff is not None else f"{'-':>12}{'-':>12}"
        lines.append(f"{key:<12}{value:>12.6f}{measured}" + ("  ok" if good else "  MISMATCH"))
    return ok, "\n".join(lines)
