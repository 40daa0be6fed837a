"""The main job behind ``scripts/unlearn.py`` (and the ``hf-unlearn`` console script).

The entry point (:func:`run_unlearning`: exit codes and one-line errors) and the run's outline (:func:`_run`). The
pieces live beside it: ``hf_unlearn.cli_args`` (flags, parser), ``hf_unlearn.cli_checks`` (up-front checks),
``hf_unlearn.cli_load`` (the loading and selecting stages) and ``hf_unlearn.cli_run`` (the
other stages: unlearn, evaluate, publish); their names stay importable from
here. See docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys

from .cli_args import (  # noqa: F401  (re-exported: hf_unlearn.cli is where callers import them from)
    _CONFIG_ALIASES, DEFAULT_FORGET_FRACTION, EMBEDDED_DEFAULT_PRESET, FINAL_FILES_MARKER, ScriptArguments,
    UsageError, _parser_error, parse_args)
from .cli_checks import (  # noqa: F401  (re-exported)
    _alpha_search_plan, _check_output_dir, _check_push_target, _check_ranges, _check_resume_checkpoint,
    _check_selection, _first_line, _not_empty, _protected_dirs, _read_ids)
from .cli_load import (  # noqa: F401  (re-exported)
    _split, check_request, load_gold, load_original, load_splits, load_training_data, logger, select)
from .versions import library_versions  # noqa: F401  (re-exported; it lives in hf_unlearn.versions)
from .cli_run import (  # noqa: F401  (re-exported)
    UnlearningRun, _lock_output_dir, _remove_if_empty, _run_alpha_search, check_arguments, evaluate, format_table,
    predict_references, prepare_trainer, publish, unlearn)

__all__ = ["ScriptArguments", "parse_args", "run_unlearning", "load_training_data", "UsageError"]


DEBUG_ENV = "HF_UNLEARN_DEBUG"


def run_unlearning(argv: list[str]) -> int:
    """Entry point; returns a process exit code. Bad input: one line on stderr, exit 2, no files written.

    Any other failure: one ``error:`` line and exit 1 (``HF_UNLEARN_DEBUG=1`` re-raises it, with its traceback);
    Ctrl-C: one line and exit 130. Neither leaves an output directory that looks finished.
    """
    from .images import ImageDataError

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
        print("error: interrupted; no finished output was written (an earlier finished output is left as it was). "
              "Re-run, or pass --resume_from_checkpoint with a checkpoint-N folder of this run.", file=sys.stderr)
        return 130
    except Exception as e:
        if debug:
            raise
        print(f"error: {describe_failure(e)} (re-run with {DEBUG_ENV}=1 for the traceback)", file=sys.stderr)
        return 1


def describe_failure(e: BaseException) -> str:
    """One line for an unexpected failure; disk and permission problems name the file and the fix."""
    # safetensors and torch.save report a full disk in their own exception types, with the OS message inside
    filename = getattr(e, "filename", None)
    if (isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT)) or any(
            s in str(e) for s in ("No space left on device", "StorageFull")):
        what, setting = _whose_location(filename)
        where = f"{filename} ({what})" if filename and what != "the output" else filename or what
        return (f"no space left on the device while writing {where}; free some disk space (or {setting} on "
                "another disk) and re-run. Nothing was presented as finished.")
    if isinstance(e, OSError) and e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        what, setting = _whose_location(filename)
        writable = setting.replace("choose an --output_dir", "choose a writable --output_dir").replace(
            " to a directory", " to a writable directory")
        return f"cannot write {filename or what} ({e.strerror}); {writable} and re-run. Nothing was presented as finished."
    return f"{type(e).__name__}: {_first_line(e)}" if _first_line(e) else type(e).__name__


def _whose_location(filename) -> tuple[str, str]:
    """``(what, setting to change)`` for a path that could not be written: hf-unlearn's cache (``HF_UNLEARN_CACHE``), the Hugging
    Face cache (``HF_HOME`` and the variables under it), else the output (``--output_dir``)."""
    def inside(path, root) -> bool:
        if not path or not root:
            return False
        path, root = os.path.realpath(os.fspath(path)), os.path.realpath(os.fspath(root))
        return path == root or path.startswith(root.rstrip(os.sep) + os.sep)

    from .builtin import cache_dir

    if inside(filename, cache_dir()):
        return f"the hf-unlearn cache, {cache_dir()}", "set HF_UNLEARN_CACHE (the cache of trained originals) to a directory"
    try:
        import huggingface_hub.constants as hub_constants

        caches = [("HF_HUB_CACHE", hub_constants.HF_HUB_CACHE), ("HF_HOME", hub_constants.HF_HOME)]
    except Exception:  # pragma: no cover - huggingface_hub ships with transformers
        caches = []
    datasets_cache = os.environ.get("HF_DATASETS_CACHE")
    caches = ([("HF_DATASETS_CACHE", datasets_cache)] if datasets_cache else []) + caches
    for variable, root in caches:
        if inside(filename, root):
            return f"the Hugging Face cache, {root}", f"set {variable} (or HF_HOME) to a directory"
    return "the output", "choose an --output_dir"


def _run(argv: list[str], cleanup: contextlib.ExitStack | None = None) -> int:
    """One run, stage by stage (hf_unlearn.cli_run): check, load, select, unlearn, evaluate, publish.

    Bad input raises :class:`UsageError` in the checking, loading and selecting stages, before a model is trained.
    Every ``datasets`` transform of the run writes to a temporary directory, never beside the data (hf_unlearn.scratch).
    """
    from .scratch import dataset_writes_stay_temporary

    with dataset_writes_stay_temporary():
        return _stages(argv, cleanup)


def _stages(argv: list[str], cleanup: contextlib.ExitStack | None) -> int:
    run = check_arguments(argv, cleanup)
    with _bounded_hub_requests(run.script):
        # load: looked up in this module (tests replace ``hf_unlearn.cli.load_training_data``)
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
        run.record = run.trainer.run_record(run.results)  # the run, recorded once (hf_unlearn.record)
        # publish
        return publish(run)


def _bounded_hub_requests(script: ScriptArguments):
    """Every Hub request of the run (a Hub model, dataset or gold model being loaded; the push opens its own, stricter
    session) gets ``--hub_timeout`` seconds (``$HF_UNLEARN_HUB_TIMEOUT``, default 60) and is not retried: a Hub that
    accepts the connection and never answers ends the run with one line instead of hanging. Redirects are followed
    (downloads are redirected to the Hub's file storage)."""
    from .hub_guard import hub_session, resolve_hub_timeout

    try:
        timeout = resolve_hub_timeout(script.hub_timeout)
    except ValueError as e:
        raise UsageError(str(e)) from e
    return hub_session(timeout, follow_redirects=True)
