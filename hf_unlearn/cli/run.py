"""The stages of one ``hf-unlearn unlearn`` run, in the order ``hf_unlearn.cli.main._run`` calls them.

    check_arguments -> load (load_training_data, load_splits, load_original) -> select (select, load_gold)
    -> unlearn (prepare_trainer, [predict_references], unlearn) -> evaluate (evaluate) -> publish

Loading and selecting live in ``hf_unlearn.cli.load``; the others here. Every stage reads and fills in one
:class:`UnlearningRun`. Bad input is refused as :class:`UsageError` before any model is trained: the loading and
selecting stages do all their checks before the unlearning stage starts. The original's (and the gold model's)
predictions are taken before training: they are the "before" column and the references of the metrics.
"""

from __future__ import annotations

import contextlib
import copy
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .args import ScriptArguments, UsageError, parse_args
from .checks import (
    _alpha_search_plan,
    _check_ignored_flags,
    _check_method_config,
    _check_output_dir,
    _check_push_target,
    _check_ranges,
    _check_resume_checkpoint,
    _check_selection,
    _not_empty,
)

__all__ = [
    "UnlearningRun",
    "check_arguments",
    "prepare_trainer",
    "predict_references",
    "unlearn",
    "evaluate",
    "publish",
    "format_table",
]


@dataclass
class UnlearningRun:
    """What the stages of one run share; each stage fills in its own fields (None until then)."""

    script: ScriptArguments
    args: Any  # UnlearningArguments
    method_config: Any
    alphas: list[float] | None
    say: Callable[..., None]
    is_main: bool
    cleanup: contextlib.ExitStack | None = None
    # load
    data: Any = None
    dataset_id: str | None = None
    train: Any = None
    loaded_train: Any = None  # the training split as loaded, before earlier requests' rows were excluded
    validation: Any = None
    test: Any = None
    model_path: str | None = None
    chain: dict | None = None
    loaded: Any = None
    num_labels: int | None = None
    original_info: dict | None = None
    label_alignment: dict | None = None
    forget_ids: list | None = None  # --forget_ids_file, read by cli_load.check_request before any model
    # select
    selection: Any = None
    gold_loaded: Any = None
    # unlearn / evaluate
    push: bool = False
    original: Any = None
    trainer: Any = None
    original_predictions: Any = None
    gold: Any = None
    search: Any = None
    runtime: float | None = None
    results: dict | None = None
    record: Any = None  # hf_unlearn.records.run_record.RunRecord, built once after evaluation


# ---- check ---------------------------------------------------------------------------------------------------
def check_arguments(argv: list[str], cleanup: contextlib.ExitStack | None = None) -> UnlearningRun:
    """Parse the flags and run every up-front check (hf_unlearn.cli.checks); set the seed and the CPU threads."""
    import transformers

    script, args, method_config = parse_args(argv)
    from ..training.checks import check_process_group

    try:  # before anything else reads the rank: a launch whose ranks did not form one group
        check_process_group(args.world_size)
    except ValueError as e:
        raise UsageError(str(e)) from e
    _check_ranges(script, method_config)
    _check_method_config(args.method, method_config)
    _check_selection(script)
    _check_ignored_flags(script, args)
    _check_output_dir(script, args)
    alphas, method_config = _alpha_search_plan(method_config, args, script)
    _check_resume_checkpoint(args, method_config)
    if args.push_to_hub:  # the Hub target is checked before any work (hf_unlearn.publishing.hub_guard)
        _check_push_target(script, args)
    transformers.set_seed(args.seed)
    is_main = args.process_index == 0
    say = print if is_main else (lambda *a, **k: None)
    import torch

    from .threads import apply_launcher_cpu_threads

    if cleanup is not None:  # an in-process run (tests, a notebook) leaves the caller's thread count as it was
        cleanup.callback(torch.set_num_threads, torch.get_num_threads())
    try:  # accelerate launch without a config pins one thread per process on CPU (5x slower)
        apply_launcher_cpu_threads(
            args.device.type == "cpu", say, tiny=script.model_name_or_path is None and script.dataset_name is None
        )
    except ValueError as e:
        raise UsageError(str(e)) from e
    return UnlearningRun(
        script=script, args=args, method_config=method_config, alphas=alphas, say=say, is_main=is_main, cleanup=cleanup
    )


# ---- unlearn -------------------------------------------------------------------------------------------------
def prepare_trainer(run: UnlearningRun) -> None:
    """The :class:`UnlearningTrainer` (``run.trainer``) and a copy of the original (``run.original``); the
    original's logits checked, the output directory locked."""
    from .. import UnlearningTrainer
    from ..training.checks import check_logits_finite

    args, selection, loaded = run.args, run.selection, run.loaded
    # The push happens once, at the end, from the finished directory (hf_unlearn.publishing.hub): the Trainer's own
    # push_to_hub would contact the Hub at start-up and upload checkpoints as they are written.
    run.push, args.push_to_hub = args.push_to_hub, False
    if run.is_main and run.cleanup is not None and not os.path.isdir(args.output_dir):
        # the Trainer creates output_dir when it is built: a run that stops before writing anything removes it
        run.cleanup.callback(_remove_if_empty, args.output_dir)
    run.original = copy.deepcopy(loaded.model).eval()  # kept for the "before" metrics and RF-JSD's reference
    try:
        # Held-out splits are preprocessed by the trainer (one materialisation budget); a bad image there is an
        # ImageDataError (exit 2) and the empty output directory the Trainer created is removed again.
        trainer = UnlearningTrainer(
            loaded.model,
            args,
            forget_dataset=selection.forget,
            retain_dataset=selection.retain,
            calibration_dataset=run.validation,
            method_config=run.method_config,
            image_transform=loaded.transform,
            removal_record=selection.record,
            processing_class=loaded.processor,
        )
    except (ValueError, TypeError) as e:
        raise UsageError(str(e)) from e
    trainer.original_model_info = run.original_info
    run.trainer = trainer
    try:
        check_logits_finite(trainer, run.original, f"the model {run.model_path}")
    except ValueError as e:
        raise UsageError(str(e)) from e
    _lock_output_dir(args, trainer, run.is_main, run.cleanup)
    chain = run.chain
    run.say(
        f"hf-unlearn: method={args.method}  model={run.model_path}  dataset={run.dataset_id}  "
        f"forget={selection.record.num_removed}  retain={selection.record.num_retained}"
        + (f"  (request {len(chain['requests']) + 1}; earlier requests' rows excluded)" if chain["requests"] else "")
    )
    run.say(f"selection: {selection.record.selection['description']}")


def unlearn(run: UnlearningRun) -> None:
    """Train: one run, or the retrain-free alpha search (hf_unlearn.training.alpha_search: one LoTUS run per alpha, the
    lowest RF-JSD kept, ``run.search``); ``run.trainer`` is the kept model's trainer, ``run.runtime`` the seconds."""
    if run.alphas:
        start = time.perf_counter()
        run.search = _run_alpha_search(
            run.trainer,
            run.alphas,
            run.method_config,
            run.original,
            run.loaded,
            run.selection,
            run.validation,
            run.test,
            run.original_predictions,
            run.gold,
            run.script,
            run.args,
            run.say,
        )
        run.trainer = run.search.trainer
        run.runtime = time.perf_counter() - start  # the whole search; each candidate's own runtime is in its record
    else:
        run.trainer.train(resume_from_checkpoint=run.args.resume_from_checkpoint)  # measures its runtime (once)


def _remove_if_empty(path: str) -> None:
    try:
        os.rmdir(path)
    except OSError:
        pass


def _lock_output_dir(args, trainer, is_main: bool, cleanup: contextlib.ExitStack | None) -> None:
    """Only the main process takes the output directory's lock; every process learns whether it got it (a
    refusal on rank 0 alone would leave the other ranks waiting in a collective forever)."""
    from .fs_safety import OutputDirLock, OutputDirLocked

    lock, problem = None, None
    if is_main:
        try:
            lock = OutputDirLock(args.output_dir).acquire()
            # re-checked under the lock: another run may have finished here since the up-front check
            if _not_empty(args.output_dir) and not args.overwrite_output_dir and not args.resume_from_checkpoint:
                problem = (
                    f"--output_dir {args.output_dir} exists and is not empty; pass --overwrite_output_dir to "
                    "replace it, or --resume_from_checkpoint to continue the run in it."
                )
        except OutputDirLocked as e:
            problem = str(e)
    if trainer.accelerator.num_processes > 1:
        from accelerate.utils import broadcast_object_list

        problem = broadcast_object_list([problem], from_process=0)[0]
    if lock is not None:
        if cleanup is None:
            lock.release()  # no owner to release it at the end: do not leave a lock behind
        else:
            cleanup.callback(lock.release)  # on success, error and Ctrl-C alike (run_unlearning's ExitStack)
    if problem:
        raise UsageError(problem)


def _run_alpha_search(
    first_trainer,
    alphas,
    method_config,
    original,
    loaded,
    selection,
    validation,
    test,
    original_predictions,
    gold,
    script,
    args,
    say,
):
    import dataclasses

    from .. import UnlearningTrainer
    from ..training.alpha_search import search_alpha

    def make_trainer(alpha):
        if alpha == alphas[0]:
            return first_trainer  # built (and validated) above with the first alpha
        trainer = UnlearningTrainer(
            copy.deepcopy(original),
            args,
            forget_dataset=selection.forget,
            retain_dataset=selection.retain,
            calibration_dataset=validation,
            method_config=dataclasses.replace(method_config, alpha=alpha),
            image_transform=loaded.transform,
            removal_record=selection.record,
            processing_class=loaded.processor,
        )
        trainer.original_model_info = first_trainer.original_model_info
        return trainer

    if validation is None and test is None:
        raise UsageError(
            "--alpha_search scores candidates by RF-JSD on held-out data, but the dataset has neither "
            "the --validation_split nor the --test_split; name an existing held-out split."
        )
    search = search_alpha(
        make_trainer,
        alphas,
        test_dataset=test,
        validation_dataset=validation,
        original=original_predictions,
        gold=gold,
        variant=script.metrics_variant,
        progress=lambda m: say(f"alpha search: {m}"),
    )
    say(
        f"alpha search: kept alpha {search.best_alpha:g} (lowest retrain-free Avg Gap estimate on the {search.selection_split} split)"
    )
    return search


# ---- evaluate ------------------------------------------------------------------------------------------------
def predict_references(run: UnlearningRun) -> None:
    """The original's (and the gold model's) predictions on every split, before unlearning: the "before" column
    and the references of RF-JSD, JSD and the Avg Gap."""
    trainer, test, validation = run.trainer, run.test, run.validation
    # The trainer's frozen teacher is the original (a copy taken when it was built): its passes are kept, so a method
    # that asks for the original's accuracy on the calibration (= validation) split reuses this pass.
    original = trainer.teacher if trainer.teacher is not None else run.original
    run.original_predictions = trainer.predictions(
        original, test, validation, keep_forget_logits=True if run.gold_loaded is not None else None
    )
    run.gold = (
        trainer.predictions(run.gold_loaded, test, validation, keep_forget_logits=True)
        if run.gold_loaded is not None
        else None
    )
    run.say(f"data: {trainer.materialization_budget.summary()}")


def evaluate(run: UnlearningRun) -> None:
    """``run.results``: the metrics of the original, the unlearned (and the gold) model, with the runtime; after an
    alpha search, the kept candidate's metrics and every candidate's (``results["alpha_search"]``)."""
    if run.search is not None:
        results = run.search.results
        results["alpha_search"] = run.search.to_dict()
        results["alpha_search"]["total_runtime_s"] = run.runtime
    else:
        results = run.trainer.evaluate_unlearning(
            run.test,
            run.validation,
            original=run.original_predictions,
            gold=run.gold,
            variant=run.script.metrics_variant,
        )
        # results["unlearned"]["runtime_s"]: the trainer's own measurement of train() (hf_unlearn.records.run_record)
    run.results = results


# ---- publish -------------------------------------------------------------------------------------------------
def publish(run: UnlearningRun) -> int:
    """Write the output directory (model, card, records; ``metrics.json`` last), print the table, and push it
    with ``--push_to_hub``; returns the exit code."""
    from ..publishing.saving import save_unlearned

    trainer, args, script, say = run.trainer, run.args, run.script, run.say
    if trainer.accelerator.is_main_process:
        say(f"saving the model, card and records to {os.path.abspath(args.output_dir)} ...")
        # the function behind UnlearningTrainer.save_unlearned: the Python flow ends with the same directory
        save_unlearned(
            trainer,
            args.output_dir,
            run.selection,
            run.results,
            original_info=run.original_info,
            dataset_id=run.dataset_id,
            chain=run.chain,
            record=run.record,
        )
        say(format_table(run.results))
        say(f"wrote {os.path.abspath(args.output_dir)}")
    trainer.accelerator.wait_for_everyone()
    if run.push and trainer.accelerator.is_main_process:
        from ..publishing.hub import HubPushError, push_unlearned_to_hub

        try:
            url = push_unlearned_to_hub(
                args.output_dir,
                args.hub_model_id or os.path.basename(os.path.abspath(args.output_dir)),
                private=bool(args.hub_private_repo),
                token=args.hub_token,
                revision=getattr(args, "hub_revision", None),
                push_removed_ids=script.push_removed_ids,
                hub_timeout=script.hub_timeout,
                local_paths=[
                    p
                    for p in (script.model_name_or_path, script.dataset_name, script.forget_ids_file)
                    if p and os.path.exists(p)
                ],
            )
            say(f"pushed to {url}")
        except (HubPushError, ValueError) as e:  # ValueError: refused before sending (a local path, a raw id)
            print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
            return 1
    return 0


def format_table(results: dict) -> str:
    """The before/after table printed at the end of a run."""
    columns = [c for c in ("original", "unlearned", "gold") if c in results]
    from ..evaluation.metrics_table import RESULT_KEYS

    shown = [k for k in RESULT_KEYS if k != "mia_auc"]  # the AUC is in metrics.json and the card
    keys = [k for k in shown if any(k in results[c] for c in columns)]
    lines = [f"{'metric':<12}" + "".join(f"{c:>12}" for c in columns)]
    for k in keys:
        row = f"{k:<12}"
        for c in columns:
            v = results[c].get(k)
            row += f"{'-':>12}" if v is None else (f"{v:>12.2f}" if k == "runtime_s" else f"{v:>12.4f}")
        lines.append(row)
    return "\n".join(lines)
