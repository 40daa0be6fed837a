"""The loading and selecting stages of one ``hf-unlearn unlearn`` run (hf_unlearn.cli.run has the others).

Every check on the data, the original model, the forget-selection rule and the gold model happens here, before a
model is trained: bad input is refused as :class:`UsageError`.
"""

from __future__ import annotations

import logging

from .args import DEFAULT_FORGET_FRACTION, ScriptArguments, UsageError
from .checks import _read_ids
from .run import UnlearningRun

__all__ = ["load_training_data", "load_splits", "check_request", "load_original", "select", "load_gold"]

logger = logging.getLogger("hf_unlearn")


# ---- load ----------------------------------------------------------------------------------------------------
def load_training_data(script: ScriptArguments):
    """The DatasetDict to unlearn from: the embedded digits, a saved dataset, an image folder or a Hub dataset."""
    from ..data.sources import DataSourceError, load_dataset_source

    if script.dataset_name is None:
        from .checks import _check_dataset_given

        _check_dataset_given(script)  # --model without --dataset: only the embedded default's models

    try:
        return load_dataset_source(
            script.dataset_name, script.dataset_config_name, script.dataset_revision, train_split=script.train_split
        )
    except DataSourceError as e:
        raise UsageError(str(e)) from e


def _split(data, name: str | None, what: str):
    from ..data.sources import DataSourceError, split_of

    try:
        return split_of(data, name, what)
    except DataSourceError as e:
        raise UsageError(str(e)) from e


def load_splits(run: UnlearningRun) -> None:
    """The train, validation and test splits of ``run.data`` (loaded by the caller); the train split's columns
    are checked. Every check happens here and in the next stages, before a model is touched."""
    script, args = run.script, run.args
    train = _split(run.data, script.train_split, "train")
    for column in (script.image_column_name, args.label_column_name):
        if column not in train.column_names:
            raise UsageError(
                f"the '{script.train_split}' split has no column '{column}' (columns: {train.column_names}); "
                f"pass --{'image_column_name' if column == script.image_column_name else 'label_column_name'}."
            )
    if len(train) == 0:
        raise UsageError(
            f"the '{script.train_split}' split of the dataset is empty (no rows): there is nothing to "
            "forget from; pass a dataset whose training split has rows (or another --train_split)."
        )
    run.train = train
    run.validation = _split(run.data, script.validation_split, "validation")
    run.test = _split(run.data, script.test_split, "test")
    for flag, split, what in (
        ("--validation_split", script.validation_split, run.validation),
        ("--test_split", script.test_split, run.test),
    ):
        if what is not None and len(what) == 0:
            raise UsageError(
                f"the '{split}' split of the dataset is empty (no rows); pass {flag} naming a split "
                f"with rows, or {flag} '' to skip it."
            )


def check_request(run: UnlearningRun) -> None:
    """Every check of the request against the data that needs no model, before the original is loaded (or, for
    the embedded default, trained): the ids file, read and typed like the id column (``run.forget_ids``); the id
    column; class names against the dataset's; a held-out split for ``--alpha_search``."""
    script, train = run.script, run.train
    if script.forget_ids_file:
        if script.id_column_name not in train.column_names:
            raise UsageError(
                f"--forget_ids_file needs an id column; '{script.id_column_name}' is not among "
                f"{train.column_names}; pass --id_column_name."
            )
        run.forget_ids = _read_ids(script.forget_ids_file, train.features.get(script.id_column_name))
        from ..data.selection import rows_of_ids

        try:
            rows_of_ids(train, script.id_column_name, run.forget_ids)  # every id names a row of the loaded split
        except ValueError as e:
            raise UsageError(str(e)) from e
    import datasets

    feature = train.features.get(run.args.label_column_name)
    if script.forget_classes and isinstance(feature, datasets.ClassLabel):
        # names stay valid after the labels are aligned with the model's (remapped by name, or refused)
        unknown = [c for c in script.forget_classes if not c.lstrip("-").isdigit() and c not in feature.names]
        if unknown:
            raise UsageError(
                f"--forget_classes: unknown class name {unknown[0]!r}; the classes are {list(feature.names)}."
            )
    if run.alphas and run.validation is None and run.test is None:
        raise UsageError(
            "--alpha_search scores candidates by RF-JSD on held-out data, but the dataset has neither "
            f"the '{script.validation_split}' nor the '{script.test_split}' split (splits: "
            f"{list(run.data)}); name an existing held-out split with --validation_split or --test_split."
        )


def load_original(run: UnlearningRun) -> None:
    """The original model (the embedded default is trained and cached here), its earlier deletion requests, its
    description for the card; every split's labels aligned with the model's classes, the held-out splits and the
    model's weights checked."""
    from .. import load_classifier
    from ..publishing.output import original_model_info
    from ..training.engines import whole_weights

    script, args, say = run.script, run.args, run.say
    model_path = script.model_name_or_path
    if model_path is None:
        from ..data.builtin import original_model

        # Multi-process runs: only the main process trains (and caches) the original; the others wait for it and
        # then find it in the cache. Without this every rank trained it and raced on the same staging folder.
        with args.main_process_first(local=False, desc="embedded default original model"):
            # Progress per epoch: a bar, lines with --disable_tqdm, nothing with --log_level error/critical.
            quiet = args.log_level in ("error", "critical")
            model_path = original_model(
                script.default_arch, progress=None if quiet else say, progress_bar=not args.disable_tqdm
            )
    run.model_path = model_path
    # ---- earlier deletion requests (hf_unlearn.publishing.provenance): their rows stay out of retain and calibration data ----
    from ..publishing.provenance import read_parent_chain

    try:
        run.chain = read_parent_chain(model_path, script.model_revision, script.previous_ledger)
    except ValueError as e:
        raise UsageError(str(e)) from e
    run.loaded_train = run.train
    try:
        with whole_weights():  # whole on every process, also under ZeRO-3 (hf_unlearn.training.engines)
            loaded = load_classifier(
                model_path,
                image_column=script.image_column_name,
                trust_remote_code=script.trust_remote_code,
                revision=script.model_revision,
            )
    except ValueError as e:
        raise UsageError(str(e)) from e
    run.loaded = loaded
    from ..modeling.classifiers import num_labels_of

    try:
        num_labels = num_labels_of(loaded.model)
    except ValueError as e:
        raise UsageError(str(e)) from e
    run.num_labels = num_labels
    run.original_info = original_model_info(model_path, script.model_revision)
    from ..publishing.card_metadata import describe_original

    run.original_info.update(describe_original(model_path, script.model_revision, license=script.license))
    # Labels are the model's class ids in every split from here on (remapped by name, or refused): hf_unlearn.data.labels
    from ..data.labels import align_labels, class_names_of

    try:
        data, run.label_alignment = align_labels(
            run.data, args.label_column_name, class_names_of(loaded.model), num_labels
        )
    except ValueError as e:
        raise UsageError(str(e)) from e
    run.data = data
    for note in (run.label_alignment or {}).get("notes", []):
        say(f"labels: {note}")
    run.train = data[script.train_split]
    run.validation = data[script.validation_split] if run.validation is not None else None
    run.test = data[script.test_split] if run.test is not None else None
    # the held-out splits are checked as they will be used: after their labels were aligned with the model's
    from ..training.checks import check_eval_split, check_model_finite

    try:
        for split, name, flag in (
            (run.validation, script.validation_split, "--validation_split"),
            (run.test, script.test_split, "--test_split"),
        ):
            check_eval_split(
                split,
                name,
                flag,
                image_column=script.image_column_name,
                label_column=args.label_column_name,
                num_labels=num_labels,
            )
        check_model_finite(loaded.model, f"the model {model_path}")
    except ValueError as e:
        raise UsageError(str(e)) from e


# ---- select --------------------------------------------------------------------------------------------------
def select(run: UnlearningRun) -> None:
    """The forget and retain sets (``run.selection``) from the one forget-selection rule, without the rows that
    earlier deletion requests removed; a ``--resume_from_checkpoint`` must be for this same removal request."""
    from .. import select_forget
    from ..publishing.provenance import exclude_earlier

    script, args, train, chain = run.script, run.args, run.train, run.chain
    rule: dict = {}
    if script.forget_classes:
        rule["classes"] = script.forget_classes
    elif script.forget_ids_file:
        rule["ids"] = run.forget_ids  # read and checked by check_request, before any model
    else:
        rule["fraction_per_class"] = (
            DEFAULT_FORGET_FRACTION if script.forget_fraction is None else script.forget_fraction
        )
        rule["mode"] = script.forget_selection
    id_column = script.id_column_name if script.id_column_name in train.column_names else None
    if "ids" in rule and id_column is None:
        raise UsageError(
            f"--forget_ids_file needs an id column; '{script.id_column_name}' is not among {train.column_names}."
        )
    try:
        train, run.validation, kept = exclude_earlier(
            chain["requests"], train, run.validation, id_column, rule.get("ids")
        )
    except ValueError as e:
        raise UsageError(str(e)) from e
    run.train = train
    try:
        selection = select_forget(
            train,
            seed=args.seed,
            id_column=id_column,
            label_column=args.label_column_name,
            num_labels=run.num_labels,
            dataset_name=run.dataset_id,
            dataset_config=script.dataset_config_name,
            split=script.train_split,
            revision=script.dataset_revision,
            **rule,
        )
    except ValueError as e:
        raise UsageError(str(e)) from e
    if chain["requests"]:
        from ..records.merkle import commit_ids

        # The card names the training split as loaded, not the copy without earlier requests' rows.
        selection.record.dataset["fingerprint"] = run.loaded_train._fingerprint
        if kept is not None:  # row-index ids: back to positions in the loaded split, with fresh salts
            selection.removed_ids = [kept[i] for i in selection.removed_ids]
            tree = commit_ids(selection.removed_ids)
            selection.salts = dict(zip(tree.ids, tree.salts, strict=False))
            selection.record.commitment = tree.to_record()
    selection.record.label_alignment = run.label_alignment
    run.selection = selection
    if args.resume_from_checkpoint:  # the same removal request as the checkpoint's run, or nothing
        from ..training.method_state import check_resume_matches, read_method_state

        try:
            check_resume_matches(
                args.resume_from_checkpoint,
                read_method_state(args.resume_from_checkpoint, args.method),
                record=selection.record,
            )
        except ValueError as e:
            raise UsageError(str(e)) from e


def load_gold(run: UnlearningRun) -> None:
    """The ``--gold_model`` (a model retrained without the forget set), loaded and checked against the original
    now: before, a bad gold model failed after the original's evaluation."""
    script = run.script
    if not script.gold_model:
        return
    from .. import load_classifier
    from ..training.checks import check_gold_model
    from ..training.engines import whole_weights

    try:
        with whole_weights():
            run.gold_loaded = load_classifier(
                script.gold_model, image_column=script.image_column_name, trust_remote_code=script.trust_remote_code
            ).model
        check_gold_model(run.gold_loaded, run.loaded.model, script.gold_model)
    except ValueError as e:
        raise UsageError(f"--gold_model: {e}" if not str(e).startswith("--gold_model") else str(e)) from e
