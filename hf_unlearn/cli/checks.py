"""The up-front checks of ``hf-unlearn unlearn``: every one runs before any work and raises :class:`UsageError`.

Flags and their combinations, the output directory (never inside an input or the cache, never locked by another
run), a ``--resume_from_checkpoint`` folder, the ``--push_to_hub`` target and the ``--alpha_search`` plan.
"""

from __future__ import annotations

import json
import os
import re

from ..failures import first_line
from .args import DEFAULT_FORGET_FRACTION, ScriptArguments, UsageError


def _check_ranges(script: ScriptArguments, method_config) -> None:
    """Numeric flags of the script (the training arguments and the method's config are checked in ``parse_args``,
    where the defaults that apply are known: hf_unlearn.training.ranges)."""
    from ..training.ranges import check_value

    try:
        # 0 is an error, not "the default": it would forget nothing (before, `or DEFAULT` made it 10 %).
        check_value("forget_fraction", script.forget_fraction, "(0, 1)", default=DEFAULT_FORGET_FRACTION)
    except ValueError as e:
        raise UsageError(str(e)) from e


def _check_method_config(method: str, method_config) -> None:
    """The method built once from its config: its ranges, types and choices (``UnlearningMethod.check_config``) are
    checked here, before any model is loaded or trained (the trainer builds it again later)."""
    from .. import get_method_class

    try:
        get_method_class(method)(method_config)
    except (ValueError, TypeError) as e:
        raise UsageError(str(e)) from e


def _check_selection(script: ScriptArguments) -> None:
    rules = [
        n
        for n, v in (
            ("--forget_fraction", script.forget_fraction is not None),
            ("--forget_classes", script.forget_classes),
            ("--forget_ids_file", script.forget_ids_file),
        )
        if v
    ]
    if len(rules) > 1:
        raise UsageError(f"{' and '.join(rules)} are mutually exclusive: give one forget-selection rule.")
    _check_path_arguments(script)
    if script.forget_ids_file and not os.path.isfile(script.forget_ids_file):
        what = "is a directory" if os.path.isdir(script.forget_ids_file) else "does not exist"
        raise UsageError(
            f"--forget_ids_file {script.forget_ids_file} {what}; pass a file of ids (one per line, or a JSON list)."
        )
    if script.previous_ledger and not os.path.isfile(script.previous_ledger):
        raise UsageError(
            f"--previous_ledger {script.previous_ledger} does not exist; pass the ledger.json written "
            "next to the parent model."
        )
    if script.dataset_name is not None and script.model_name_or_path is None:
        raise UsageError(
            "--dataset_name needs --model_name_or_path (the embedded default model is trained on digits)."
        )
    for flag, path in (("--model_name_or_path", script.model_name_or_path), ("--gold_model", script.gold_model)):
        # the rule of hf_unlearn.modeling.classifiers.load_classifier: a Hub id is "name" or "org/name", anything else is a path
        # (timm's "hf-hub:" / "local-dir:" references are left to the loader)
        if (
            path
            and not re.match(r"^[\w-]+:", path)
            and (path.startswith((".", "/", "~")) or path.count("/") > 1)
            and not os.path.isdir(os.path.expanduser(path))
        ):
            raise UsageError(f"{flag} {path} does not exist; pass an existing model directory or a Hub model id.")
    if script.license is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.+-]*", script.license):
        raise UsageError(f"--license {script.license!r} is not a license id; pass one like apache-2.0, mit or other.")
    if script.metrics_variant not in ("standard", "reference"):
        raise UsageError(f"--metrics_variant must be 'standard' or 'reference', got {script.metrics_variant!r}.")


def _check_dataset_given(script: ScriptArguments) -> None:
    """``--model`` alone would be unlearned on the embedded digits data, which only the embedded default's models
    were trained on: any other model needs its own ``--dataset`` (before, this failed later on mismatched labels).
    Called first when the data is loaded (hf_unlearn.cli.load), inside the run's bounded Hub session: a Hub model's
    record is one small download."""
    if script.model_name_or_path is None or script.dataset_name is not None:
        return
    from ..data.builtin import is_embedded_default_model

    if not is_embedded_default_model(os.path.expanduser(script.model_name_or_path), script.model_revision):
        raise UsageError(
            f"--model {script.model_name_or_path} was given without --dataset; pass --dataset (the data "
            "the model was trained on: a Hub id, a save_to_disk directory or an image folder). Without "
            "both, the embedded digits default runs."
        )


def _check_ignored_flags(script: ScriptArguments, args) -> None:
    """A flag that the other flags make meaningless is refused, not silently dropped (the record would not say it
    was ignored). ``--alpha`` with ``--alpha_search``: :func:`_alpha_search_plan`."""
    rule = "--forget_classes" if script.forget_classes else "--forget_ids_file" if script.forget_ids_file else None
    if rule and script.forget_selection != "random":
        raise UsageError(
            f"--forget_selection {script.forget_selection} applies only to --forget_fraction and would be "
            f"ignored with {rule}; drop --forget_selection (or use --forget_fraction)."
        )
    if script.push_removed_ids and not args.push_to_hub:
        raise UsageError(
            "--push_removed_ids only matters with --push_to_hub and would be ignored; add --push_to_hub, "
            "or drop --push_removed_ids."
        )


def _check_path_arguments(script: ScriptArguments) -> None:
    """Every file or directory flag of the script, by kind (hf_unlearn.cli.fs_safety): given but empty, missing, a
    directory where a file is expected or the reverse, unreadable. The output directory: :func:`_check_output_dir`."""
    from .fs_safety import check_input_file

    try:
        if script.forget_ids_file is not None:
            check_input_file("--forget_ids_file", script.forget_ids_file, "a text or JSON file of sample ids")
        if script.previous_ledger is not None:
            check_input_file(
                "--previous_ledger", script.previous_ledger, "the ledger.json of the run that produced the model"
            )
        for flag, value, what in (
            ("--model_name_or_path", script.model_name_or_path, "a model"),
            ("--gold_model", script.gold_model, "a model"),
            ("--dataset_name", script.dataset_name, "a dataset"),
        ):
            if value is None:
                continue
            if not str(value).strip():
                raise ValueError(
                    f"{flag} is empty ({value!r}); give a Hub id or the local directory of {what} (or omit the flag)."
                )
            if os.path.exists(value) and not os.path.isdir(value):
                raise ValueError(
                    f"{flag} {value} is a file; give a Hub id or the local directory of {what} (the "
                    "directory that holds its files)."
                )
    except ValueError as e:
        raise UsageError(str(e)) from e


def _protected_dirs(script: ScriptArguments) -> list[tuple[str, str]]:
    """Directories a run never writes into, whatever the flags: the inputs, the cache of trained originals and the
    originals shipped inside the package."""
    from ..data.builtin import SHIPPED_ORIGINALS_DIR, cache_dir

    local = lambda p: p if p and os.path.isdir(p) else None  # noqa: E731
    return [
        (what, p)
        for what, p in (
            ("the original model's directory", local(script.model_name_or_path)),
            ("the --gold_model directory", local(script.gold_model)),
            ("the dataset's directory", local(script.dataset_name)),
            ("the hf_unlearn cache", cache_dir()),
            ("the cache of trained originals", os.path.join(cache_dir(), "originals")),
            ("the originals shipped with hf-unlearn", SHIPPED_ORIGINALS_DIR),
        )
        if p
    ]


def _check_output_dir(script: ScriptArguments, args) -> None:
    from ..data.builtin import cache_dir
    from .fs_safety import OutputDirLocked, check_not_locked, check_output_location, relation

    if not str(args.output_dir or "").strip():
        raise UsageError(
            f"--output_dir is empty ({args.output_dir!r}); give the directory to write the unlearned "
            "model to (e.g. --output_dir outputs/unlearned)."
        )
    out = os.path.abspath(args.output_dir)
    protected = _protected_dirs(script)
    if os.path.isdir(cache_dir()) and relation(args.output_dir, cache_dir()) == "inside":
        # the cache root itself is protected; inside it only the originals are (checked below)
        protected = [(w, p) for w, p in protected if p != cache_dir()]
    try:
        check_output_location(args.output_dir, protected)
        if os.path.isdir(out) and args.process_index == 0:  # other ranks would see their own rank 0's lock
            check_not_locked(out)
    except OutputDirLocked as e:
        raise UsageError(str(e)) from e
    except ValueError as e:
        raise UsageError(str(e)) from e
    if _not_empty(out) and not args.overwrite_output_dir and not args.resume_from_checkpoint:
        raise UsageError(
            f"--output_dir {args.output_dir} exists and is not empty; pass --overwrite_output_dir to replace it, "
            "or --resume_from_checkpoint to continue the run in it."
        )


def _not_empty(out: str) -> bool:
    from .fs_safety import LOCK_NAME

    return os.path.isdir(out) and any(n != LOCK_NAME for n in os.listdir(out))  # a stale lock alone is nothing


def _check_resume_checkpoint(args, method_config=None) -> None:
    """A --resume_from_checkpoint folder is checked up front: before, a missing or corrupt one failed inside
    ``trainer.train`` (a traceback, after the evaluation of the original had already run)."""
    ckpt = args.resume_from_checkpoint
    if ckpt is None or ckpt is False:
        return
    if not str(ckpt).strip():
        raise UsageError(
            "--resume_from_checkpoint is empty (''); pass a checkpoint-N folder written by an earlier run "
            "of the same command (or drop --resume_from_checkpoint)."
        )
    from ..training.method_state import METHOD_STATE_NAME, read_method_state

    fix = (
        "pass a checkpoint-N folder written by an earlier run of the same command (or drop --resume_from_checkpoint)."
    )
    if not os.path.isdir(ckpt):
        raise UsageError(f"--resume_from_checkpoint {ckpt} is not a directory; {fix}")
    missing = [
        n
        for n in ("trainer_state.json", METHOD_STATE_NAME, "model.safetensors")
        if not os.path.isfile(os.path.join(ckpt, n))
    ]
    if missing:
        # the method state is written last (UnlearningTrainer._save_checkpoint): without it the save was interrupted
        raise UsageError(
            f"--resume_from_checkpoint {ckpt} is incomplete (missing {', '.join(missing)}; a checkpoint "
            f"save that was interrupted); {fix}"
        )
    try:
        from safetensors import safe_open

        with safe_open(os.path.join(ckpt, "model.safetensors"), framework="pt") as f:
            for key in f.keys():  # reads every tensor: a truncated file fails here
                f.get_tensor(key)
        with open(os.path.join(ckpt, "trainer_state.json")) as f:
            json.load(f)
    except Exception as e:
        raise UsageError(
            f"--resume_from_checkpoint {ckpt} is corrupt ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''}); {fix}"
        ) from e
    # The Trainer loads these only after the original has been evaluated: a corrupt one failed late, with a
    # traceback. weights_only=True (as the Trainer): a checkpoint never runs code.
    import glob

    import torch
    from transformers.trainer_pt_utils import safe_globals

    for path in sorted(glob.glob(os.path.join(ckpt, "rng_state*.pth"))) + [
        os.path.join(ckpt, n) for n in ("optimizer.pt", "scheduler.pt") if os.path.isfile(os.path.join(ckpt, n))
    ]:
        try:
            with safe_globals():  # numpy's RNG state, allowlisted exactly as the Trainer does
                torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise UsageError(
                f"{path} in --resume_from_checkpoint is unreadable ({type(e).__name__}: "
                f"{first_line(e)}); resume from another checkpoint-N folder of the same run, "
                "or delete that checkpoint and start again."
            ) from e
    try:
        saved = read_method_state(ckpt, args.method)
        if method_config is not None:
            from .. import get_method_class
            from ..training.method_state import check_resume_matches

            # as the trainer saves it (a method may describe its config beyond the dataclass fields)
            check_resume_matches(
                ckpt, saved, config=get_method_class(args.method)(method_config).hyperparameters(), args=args
            )
    except ValueError as e:
        raise UsageError(str(e)) from e


def _read_ids(path: str, feature=None) -> list:
    from ..data.selection import read_ids_file

    try:
        return read_ids_file(path, feature)
    except ValueError as e:
        raise UsageError(str(e)) from e


def _check_push_target(script: ScriptArguments, args) -> None:
    from ..publishing.hub_guard import check_repo_id, resolve_hub_timeout

    repo_id = args.hub_model_id or os.path.basename(os.path.abspath(args.output_dir))
    try:
        check_repo_id(repo_id)
        resolve_hub_timeout(script.hub_timeout)
    except ValueError as e:
        how = (
            ""
            if args.hub_model_id
            else " (--push_to_hub without --hub_model_id uses the --output_dir base name: pass --hub_model_id)"
        )
        raise UsageError(f"{e}{how}") from e


def _alpha_search_plan(method_config, args, script):
    """(alphas, config for the first candidate) when ``--alpha_search`` is given, checked before any work."""
    import dataclasses

    alphas = getattr(method_config, "alpha_search", None)
    if not alphas:
        return None, method_config
    from ..training.alpha_search import check_alphas

    try:
        alphas = check_alphas(alphas)
    except ValueError as e:
        raise UsageError(str(e)) from e
    default = _alpha_default(method_config, script, args.method)
    if method_config.alpha != default:
        shown = ", ".join(f"{a:g}" for a in alphas)
        raise UsageError(
            f"--alpha {method_config.alpha:g} would be ignored: --alpha_search tries alpha {shown} and "
            f"keeps the best; drop --alpha (its default is {default:g}), or drop --alpha_search to train "
            f"with alpha {method_config.alpha:g}."
        )
    if args.resume_from_checkpoint:
        raise UsageError(
            "--alpha_search trains one model per alpha and cannot resume a checkpoint; drop "
            "--resume_from_checkpoint (or --alpha_search and resume the single run)."
        )
    if script.validation_split and script.validation_split == script.test_split:
        raise UsageError(
            f"--alpha_search chooses on the validation split, and --validation_split {script.validation_split} "
            "is also the --test_split the results are reported on: the choice would be graded on the data "
            "it was made on; give a held-out split other than the test split as --validation_split."
        )
    if not script.validation_split and not script.test_split:
        raise UsageError(
            "--alpha_search scores candidates by RF-JSD on held-out data: give a --validation_split or --test_split."
        )
    return alphas, dataclasses.replace(method_config, alpha=alphas[0], alpha_search=None)


def _alpha_default(method_config, script, method: str):
    """The ``alpha`` a run gets without ``--alpha``: the embedded preset's (no model and no dataset), else the
    method config's field default."""
    import dataclasses

    from .args import EMBEDDED_DEFAULT_PRESET

    field = {f.name: f for f in dataclasses.fields(method_config)}["alpha"]
    if script.model_name_or_path is None and script.dataset_name is None:
        preset = EMBEDDED_DEFAULT_PRESET.get(method, {})
        if "alpha" in preset:
            return preset["alpha"]
    return field.default
