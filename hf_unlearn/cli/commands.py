"""The ``hf-unlearn`` console script (``[project.scripts]``) and ``python -m hf_unlearn``.

    hf-unlearn unlearn --model google/vit-base-patch16-224 --dataset uoft-cs/cifar10 --output_dir runs/x
    hf-unlearn unlearn run.yaml                       # or --config run.yaml, flags overriding the file
    hf-unlearn push --output_dir runs/x --repo_id me/x
    hf-unlearn push-metrics --namespace my-org
    hf-unlearn benchmark --quick
    hf-unlearn proof ... / hf-unlearn verify ...      # where hf_unlearn.publishing.provenance is installed

Each subcommand returns a process exit code: 0 success, 1 a failure while working (a push), 2 bad input.
"""

from __future__ import annotations

import importlib
import os
import sys

__all__ = ["SUBCOMMANDS", "main"]

DEBUG_ENV = "HF_UNLEARN_DEBUG"  # as hf_unlearn.cli.main: set, a failure re-raises with its traceback

#: name -> (module, function taking argv and returning an exit code, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str, str]] = {
    "unlearn": (
        "hf_unlearn.cli.main",
        "run_unlearning",
        "unlearn a forget set from a classifier (scripts/unlearn.py)",
    ),
    "push": ("hf_unlearn.cli.push", "main", "publish an output directory to the Hub (scripts/push_to_hub.py)"),
    "push-metrics": ("hf_unlearn.cli.push_metrics", "main", "publish rf_jsd, jsd and mia as evaluate Spaces"),
    "benchmark": (
        "hf_unlearn.benchmark.command",
        "main",
        "the LoTUS paper's protocol, every method (scripts/benchmark.py)",
    ),
    "proof": (
        "hf_unlearn.cli.provenance_commands",
        "proof_main",
        "write a proof that given ids were removed (provenance)",
    ),
    "verify": (
        "hf_unlearn.cli.provenance_commands",
        "verify_main",
        "check a proof against a published card (provenance)",
    ),
}


def _usage() -> str:
    lines = [
        "usage: hf-unlearn <command> [options]   (hf-unlearn <command> --help for its flags)",
        "",
        "Machine unlearning for Hugging Face image classifiers.",
        "",
        "commands:",
    ]
    lines += [f"  {name:<14}{help_}" for name, (_, _, help_) in SUBCOMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0 if argv else 2
    if argv[0] == "--version":
        from .. import __version__

        print(f"hf-unlearn {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(
            f"error: unknown command '{name}'; choose one of: {', '.join(SUBCOMMANDS)} (hf-unlearn --help).",
            file=sys.stderr,
        )
        return 2
    module_name, function, _ = SUBCOMMANDS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name != module_name:  # a missing dependency inside the module: a real error, not an absent feature
            raise
        print(
            f"error: `hf-unlearn {name}` is not available in this version of hf-unlearn ({module_name} is missing).",
            file=sys.stderr,
        )
        return 2
    entry = getattr(module, function, None)
    if entry is None:
        print(
            f"error: `hf-unlearn {name}` is not available in this version of hf-unlearn "
            f"({module_name}.{function} is missing).",
            file=sys.stderr,
        )
        return 2
    try:
        return int(entry(rest) or 0)
    except SystemExit as e:  # argparse: --help (0) and usage errors (2) exit; keep them as return codes
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    except KeyboardInterrupt:
        if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
            raise
        print(f"error: `hf-unlearn {name}` interrupted.", file=sys.stderr)
        return 130
    except Exception as e:  # the last resort of every subcommand: one line, never a traceback
        if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
            raise
        from ..failures import describe_failure

        print(
            f"error: `hf-unlearn {name}` failed: {describe_failure(e)} (re-run with {DEBUG_ENV}=1 for the traceback)",
            file=sys.stderr,
        )
        return 1
