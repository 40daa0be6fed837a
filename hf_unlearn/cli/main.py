"""The main job behind ``scripts/unlearn.py`` (and the ``hf-unlearn`` console script).

The entry point (:func:`run_unlearning`: exit codes and one-line errors) and the run's outline (:func:`_run`). The
pieces live beside it: ``hf_unlearn.cli.args`` (flags, parser), ``hf_unlearn.cli.checks`` (up-front checks),
``hf_unlearn.cli.load`` (the loading and selecting stages) and ``hf_unlearn.cli.run`` (the
other stages: unlearn, evaluate, publish); their names stay importable from
here. See docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import contextlib
import os
import sys

from ..failures import describe_failure  # noqa: F401  (one line for an unexpected failure)
from ..records.versions import library_versions  # noqa: F401  (re-exported; it lives in hf_unlearn.records.versions)
from .args import (  # noqa: F401  (re-exported: hf_unlearn.cli is where callers import them from)
    _CONFIG_ALIASES,
    DEFAULT_FORGET_FRACTION,
    EMBEDDED_DEFAULT_PRESET,
    FINAL_FILES_MARKER,
    ScriptArguments,
    UsageError,
    _parser_error,
    parse_args,
)
from .checks import (  # noqa: F401  (re-exported)
    _alpha_search_plan,
    _check_output_dir,
    _check_push_target,
    _check_ranges,
    _check_resume_checkpoint,
    _check_selection,
    _not_empty,
    _protected_dirs,
    _read_ids,
)
from .load import _split, check_request, load_gold, load_original, load_splits, load_training_data, logger, select  # noqa: F401  (re-exported)
from .run import (  # noqa: F401  (re-exported)
    UnlearningRun,
    _lock_output_dir,
    _remove_if_empty,
    _run_alpha_search,
    check_arguments,
    evaluate,
    format_table,
    predict_references,
    prepare_trainer,
    publish,
    unlearn,
)

__all__ = ["ScriptArguments", "parse_args", "run_unlearning", "load_training_data", "UsageError"]


DEBUG_ENV = "HF_UNLEARN_DEBUG"


def run_unlearning(argv: list[str]) -> int:
    """Entry point; returns a process exit code. Bad input: one line on stderr, exit 2, no files written.

    Any other failure: one ``error:`` line and exit 1 (``HF_UNLEARN_DEBUG=1`` re-raises it, with its traceback);
    Ctrl-C: one line and exit 130. Neither leaves an output directory that looks finished.
    """
    from ..data.images import ImageDataError

    debug = os.environ.get(DEBUG_ENV, "") not in ("", "0")
    try:
        with contextlib.ExitStack() as cleanup:
            return _run(argv, cleanup)
    except (UsageError, ImageDataError) as e:  # ImageDataError: a bad image found while reading a split
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if debug:
            raise
        print(
            "error: interrupted; no finished output was written (an earlier finished output is left as it was). "
            "Re-run, or pass --resume_from_checkpoint with a checkpoint-N folder of this run.",
            file=sys.stderr,
        )
        return 130
    except Exception as e:
        if debug:
            raise
        print(f"error: {describe_failure(e)} (re-run with {DEBUG_ENV}=1 for the traceback)", file=sys.stderr)
        return 1


def _run(argv: list[str], cleanup: contextlib.ExitStack | None = None) -> int:
    """One run, stage by stage (hf_unlearn.cli.run): check, load, select, unlearn, evaluate, publish.

    Bad input raises :class:`UsageError` in the checking, loading and selecting stages, before a model is trained.
    Every ``datasets`` transform of the run writes to a temporary directory, never beside the data (hf_unlearn.data.scratch).
    """
    from ..data.scratch import dataset_writes_stay_temporary

    with dataset_writes_stay_temporary():
        return _stages(argv, cleanup)


def _stages(argv: list[str], cleanup: contextlib.ExitStack | None) -> int:
    run = check_arguments(argv, cleanup)
    with _bounded_hub_requests(run.script):
        # load: looked up in this module (tests replace ``hf_unlearn.cli.main.load_training_data``)
        run.data, run.dataset_id = load_training_data(run.script)
        load_splits(run)
        check_request(run)  # the ids file, class names, held-out splits: every input check that needs no model
        load_original(run)
        # select
        select(run)
        load_gold(run)
        # unlearn and evaluate: the references are predicted before training (the "before" column)
        prepare_trainer(run)
        predict_references(run)
        unlearn(run)
        evaluate(run)
        run.record = run.trainer.run_record(run.results)  # the run, recorded once (hf_unlearn.records.run_record)
        # publish
        return publish(run)


def _bounded_hub_requests(script: ScriptArguments):
    """Every Hub request of the run (a Hub model, dataset or gold model being loaded; the push opens its own, stricter
    session) gets ``--hub_timeout`` seconds (``$HF_UNLEARN_HUB_TIMEOUT``, default 60) and is not retried: a Hub that
    accepts the connection and never answers ends the run with one line instead of hanging. Redirects are followed
    (downloads are redirected to the Hub's file storage)."""
    from ..publishing.hub_guard import hub_session, resolve_hub_timeout

    try:
        timeout = resolve_hub_timeout(script.hub_timeout)
    except ValueError as e:
        raise UsageError(str(e)) from e
    return hub_session(timeout, follow_redirects=True)
