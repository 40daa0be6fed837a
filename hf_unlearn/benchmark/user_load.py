"""The input stage of ``hf-unlearn benchmark --model M --dataset D``: the benchmark's own flags checked up front
(before anything is loaded), then the model and data loaded and the forget set selected by the stages of
``hf-unlearn unlearn`` (hf_unlearn.cli.load, with its checks), or the starting checkpoint given a new classification
head (``--new_head``). Separate from :mod:`hf_unlearn.benchmark.user`, which turns what is loaded here into the
grid's source (held-out splits, processor, recipe, cache identity) and runs it: the CLI's parser and loaders are
called from here only.
"""

from __future__ import annotations

import os

from ..cli.args import UsageError

__all__ = ["BUILTIN_DATASETS"]


BUILTIN_DATASETS = ("digits", "fashion_mnist")


def _check_flags(a) -> None:
    """The up-front checks of a user benchmark's own flags (before anything is loaded)."""
    from .. import list_methods
    from ..training.ranges import check_value

    if not a.dataset:
        raise UsageError(
            "--model needs --dataset: the Original and the Gold are fine-tuned on your data (a Hub id, a "
            "save_to_disk directory or an image folder)."
        )
    for flag, given in (
        ("--families", a.families),
        ("--train_size", a.train_size),
        ("--quick", a.quick),
        ("--class_unlearning", a.class_unlearning),
        ("--forget_class", a.forget_class),
    ):
        if given not in (None, False):
            raise UsageError(
                f"{flag} applies to the built-in datasets only; with --model use --forget_classes, "
                "--forget_fraction or --forget_ids_file."
            )
    rules = [
        f
        for f, v in (
            ("--forget_fraction", a.forget_fraction is not None),
            ("--forget_ids_file", a.forget_ids_file),
            ("--forget_classes", a.forget_classes),
        )
        if v
    ]
    if not rules:
        raise UsageError(
            "give one forget-selection rule: --forget_fraction F, --forget_ids_file PATH or "
            "--forget_classes C [C ...]."
        )
    try:
        for name, value, interval, integer in (
            ("recipe_epochs", a.recipe_epochs, "[1, inf)", True),
            ("recipe_learning_rate", a.recipe_learning_rate, "(0, inf)", False),
            ("recipe_batch_size", a.recipe_batch_size, "[1, inf)", True),
            ("image_size", a.image_size, "[1, inf)", True),
            ("method_epochs", a.method_epochs, "(0, inf)", False),
        ):
            check_value(name, value, interval, integer=integer)
        for seed in a.seeds:
            check_value("seeds", seed, "[0, 4294967296)", integer=True)
        if a.alpha_search:
            from ..training.alpha_search import check_alphas

            check_alphas(a.alpha_search)
    except ValueError as e:
        raise UsageError(str(e)) from e
    unknown = [m for m in (a.methods or []) if m not in list_methods()]
    if unknown:
        raise UsageError(f"unknown --methods {unknown}; choose among: {', '.join(list_methods())}.")
    if a.name is not None and (not a.name or os.sep in a.name or a.name.startswith(".")):
        raise UsageError(f"--name {a.name!r} must be a plain file name (no '{os.sep}', not starting with '.').")
    from ..cli.fs_safety import relation

    for what, path in (("the model's directory", a.model), ("the dataset's directory", a.dataset)):
        if os.path.isdir(path) and relation(a.results_dir, path) in ("same", "inside"):
            raise UsageError(f"--results_dir {a.results_dir} is or is inside {what} ({path}); choose one outside it.")


def _unlearn_argv(a) -> list[str]:
    """The flags of ``hf-unlearn unlearn`` that load the same model and data and select the same forget set."""
    argv = [
        "--method",
        "finetune",
        "--model",
        a.model,
        "--dataset",
        a.dataset,
        "--seed",
        str(a.seeds[0]),
        "--image_column_name",
        a.image_column_name,
        "--label_column_name",
        a.label_column_name,
        "--id_column_name",
        a.id_column_name,
        "--train_split",
        a.train_split,
        "--validation_split",
        a.validation_split,
        "--test_split",
        a.test_split,
        "--forget_selection",
        a.forget_selection,
        "--report_to",
        "none",
        "--use_cpu",
        "True",
    ]
    for flag, value in (
        ("--model_revision", a.model_revision),
        ("--dataset_config_name", a.dataset_config_name),
        ("--dataset_revision", a.dataset_revision),
        ("--forget_fraction", a.forget_fraction),
        ("--forget_ids_file", a.forget_ids_file),
    ):
        if value is not None:
            argv += [flag, str(value)]
    if a.forget_classes:
        argv += ["--forget_classes", *a.forget_classes]
    if a.trust_remote_code:
        argv += ["--trust_remote_code", "True"]
    return argv


def _load(a, say):
    """The ``hf-unlearn unlearn`` stages that load and select: (run, notes)."""
    from ..cli.args import parse_args
    from ..cli.checks import _check_ranges, _check_selection
    from ..cli.load import check_request, load_original, load_splits, load_training_data, select
    from ..cli.run import UnlearningRun

    script, args, method_config = parse_args(_unlearn_argv(a), prog="hf-unlearn benchmark")
    _check_ranges(script, method_config)
    _check_selection(script)
    run = UnlearningRun(script=script, args=args, method_config=method_config, alphas=None, say=say, is_main=True)
    if a.dataset in BUILTIN_DATASETS:  # the built-in data (Fashion-MNIST: its 10,000-image train subset)
        from .protocol import load_benchmark_dataset

        run.data, run.dataset_id = load_benchmark_dataset(a.dataset), a.dataset
    else:
        run.data, run.dataset_id = load_training_data(script)
    load_splits(run)
    check_request(run)  # the ids file and class names, before any model (as hf-unlearn unlearn)
    if a.new_head:
        _load_with_new_head(run)
    else:
        try:
            load_original(run)
        except UsageError as e:
            if "classes" not in str(e) or not ("id2label" in str(e) or "outside the model" in str(e)):
                raise
            raise UsageError(
                f"{e} To fine-tune the checkpoint with a new classification head for the dataset's "
                "classes, pass --new_head."
            ) from e
    select(run)
    return run


def _load_with_new_head(run) -> None:
    """``--new_head``: the starting checkpoint with a classification head for the dataset's classes (its class
    names, or ``0 .. max label`` for integer labels); the head is drawn anew from each seed in ``build``. Fills in
    what :func:`hf_unlearn.cli.load.load_original` fills in for :func:`hf_unlearn.cli.load.select`."""
    import datasets

    from .. import load_classifier
    from ..data.labels import align_labels, check_integer_labels
    from ..publishing.provenance import read_parent_chain
    from ..training.checks import check_model_finite

    script, column = run.script, run.args.label_column_name
    feature = run.train.features[column]
    try:
        if isinstance(feature, datasets.ClassLabel):
            names, num_labels = list(feature.names), feature.num_classes
        else:
            check_integer_labels(run.train, column, script.train_split)
            splits = [s for s in (run.train, run.validation, run.test) if s is not None]
            names, num_labels = None, 1 + max(max(y for y in s[column] if y is not None) for s in splits)
        run.chain = read_parent_chain(script.model_name_or_path, script.model_revision, None)
        loaded = load_classifier(
            script.model_name_or_path,
            num_labels=num_labels,
            image_column=script.image_column_name,
            trust_remote_code=script.trust_remote_code,
            revision=script.model_revision,
        )
        data, run.label_alignment = align_labels(run.data, column, names, num_labels)
        check_model_finite(loaded.model, f"the model {script.model_name_or_path}")
    except ValueError as e:
        raise UsageError(str(e)) from e
    config = getattr(loaded.model, "config", None)
    if names and config is not None and hasattr(config, "id2label"):  # the new head's classes, named
        config.id2label, config.label2id = dict(enumerate(names)), {n: i for i, n in enumerate(names)}
    run.loaded, run.num_labels, run.model_path, run.data = loaded, num_labels, script.model_name_or_path, data
    run.train = run.loaded_train = data[script.train_split]
    run.validation = data[script.validation_split] if run.validation is not None else None
    run.test = data[script.test_split] if run.test is not None else None
