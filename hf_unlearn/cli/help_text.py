"""``--help`` for the unlearning command: the method's and the script's options first, the Trainer's last.

``HfArgumentParser`` puts every field of every dataclass into one group in declaration order, so the ~100
``TrainingArguments`` flags came before ``--method`` and the method's own flags. This builds a help-only
parser that re-groups the same argparse actions (same flags, same defaults) in the order a user needs them.
"""

from __future__ import annotations

import argparse
import dataclasses

__all__ = ["format_unlearn_help"]

USAGE = "{prog} [--method NAME] [--model MODEL] [--dataset DATASET] [--output_dir DIR] [--config FILE] [options]"


def _dests(dataclass_type) -> list[str]:
    return [f.name for f in dataclasses.fields(dataclass_type) if f.init]


def format_unlearn_help(
    parser, *, prog: str, method: str, method_cls, script_cls, arguments_cls, methods: str, preset: dict | None
) -> str:
    """Help text for ``parser`` (an ``HfArgumentParser`` over script, unlearning and method arguments).

    ``methods``: the registered methods with their display names and papers (``methods.methods_help()``).
    ``preset``: the embedded default's settings when they apply to this command line (None otherwise); they
    are printed as a note, never as the defaults (the defaults shown are the method's own).
    """
    from transformers import TrainingArguments

    by_dest: dict[str, list] = {}
    for action in parser._actions:  # a bool field has two actions (--flag, --no_flag) with one dest
        if action.dest != "help":
            by_dest.setdefault(action.dest, []).append(action)
    trainer_fields = set(_dests(TrainingArguments))
    method_fields = ["method", *_dests(method_cls.config_class)]
    script_fields = _dests(script_cls)
    shared_fields = [d for d in _dests(arguments_cls) if d not in trainer_fields and d != "method"]
    shown = set(method_fields) | set(script_fields) | set(shared_fields)
    trainer = [d for d in _dests(arguments_cls) if d not in shown]

    description = (
        f"Unlearn a forget set from an image classifier with hf-unlearn. Methods: {methods}. "
        f"`--method NAME --help` lists that method's flags first. A JSON/YAML config file works too: a "
        f"lone run.json argument, or --config run.yaml (flags override the file)."
    )
    if preset:  # printed only when it applies: no model and no dataset on this command line
        settings = ", ".join(f"--{k} {v}" for k, v in preset.items())
        description += (
            f" Without --model and --dataset this runs the embedded default (digits, an original trained "
            f"here): for it {method} uses {settings} unless you set them; the defaults listed below are "
            f"{method}'s own."
        )
    help_parser = argparse.ArgumentParser(
        prog=prog,
        usage=USAGE.format(prog=prog),
        description=description,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        add_help=False,
    )
    help_parser.add_argument("-h", "--help", action="help", help="show this help message and exit")
    sections = [
        (
            f"{method} options (--method {method}: {method_cls.__name__}, config {method_cls.config_class.__name__})",
            method_fields,
        ),
        ("script options (model, data, forget selection, output)", script_fields),
        ("unlearning options (every method)", shared_fields),
        ("Trainer options (transformers.TrainingArguments; the defaults shown are this method's)", trainer),
    ]
    for title, dests in sections:
        group = help_parser.add_argument_group(title)
        for dest in dests:
            for action in by_dest.get(dest, []):
                group._group_actions.append(action)
    return help_parser.format_help()
