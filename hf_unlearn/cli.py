"""The main job behind ``scripts/unlearn.py`` (and the ``hf-unlearn`` console script)."""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import re
import sys
import time
from dataclasses import dataclass, field

__all__ = ["ScriptArguments", "parse_args", "run_unlearning", "load_training_data", "UsageError"]

logger = logging.getLogger("hf_unlearn")

DEFAULT_FORGET_FRACTION = 0.1

#: Settings of the embedded default (digits, a 0.14M-parameter ViT, 1,257 training images), applied only when
#: no model or dataset is given; any flag overrides them. The paper's defaults (alpha 2, batch 128, lr 1e-4)
#: are sized for CIFAR: on 120 forget images they make 40 tiny steps and forget nothing (measured: forget
#: accuracy 1.00 -> 1.00); alpha 8 (the paper's ResNet/CIFAR-10 value) with batch 32 and lr 5e-4 gives
#: forget 1.00 -> 0.975 at retain 0.998 -> 0.984.
EMBEDDED_DEFAULT_PRESET = {"lotus": {"alpha": 8.0, "per_device_train_batch_size": 32, "learning_rate": 5e-4}}
FINAL_FILES_MARKER = "metrics.json"  # written last: its presence means the output directory is complete


class UsageError(ValueError):
    """Bad input detected before any work was done."""


@dataclass
class ScriptArguments:
    model_name_or_path: str | None = field(
        default=None,
        metadata={"aliases": ["--model"], "help": "Image classifier to unlearn: a Hub id (HF or 'timm/...') or a local directory. "
                          "Omit for the embedded default (an original trained here on scikit-learn's digits)."})
    model_revision: str | None = field(default=None, metadata={"help": "Model revision (branch, tag or commit)."})
    default_arch: str = field(default="vit", metadata={"help": "Embedded default only: 'vit' or 'resnet'."})
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow custom modelling code from the model repo."})
    dataset_name: str | None = field(
        default=None,
        metadata={"aliases": ["--dataset"], "help": "Training dataset: a Hub id, a directory saved with Dataset(Dict).save_to_disk, or an image "
                          "folder. Omit for the embedded digits default."})
    dataset_config_name: str | None = field(default=None, metadata={"help": "Dataset configuration name."})
    dataset_revision: str | None = field(default=None, metadata={"help": "Dataset revision (branch, tag or commit)."})
    train_split: str = field(default="train", metadata={"help": "Split the model was trained on (forget/retain come from it)."})
    validation_split: str | None = field(default="validation", metadata={"help": "Held-out split for LoTUS calibration and MIA non-members ('' to skip)."})
    test_split: str | None = field(default="test", metadata={"help": "Held-out split for test accuracy, RF-JSD and MIA."})
    image_column_name: str = field(default="image", metadata={"help": "Column holding the images."})
    id_column_name: str = field(default="id", metadata={"help": "Column holding sample ids (for --forget_ids_file)."})
    forget_fraction: float | None = field(default=None, metadata={"help": f"Forget this fraction of each class (default {DEFAULT_FORGET_FRACTION} when no other rule is given)."})
    forget_selection: str = field(default="random", metadata={"help": "With --forget_fraction: 'random' (seeded) or 'first' (first rows of each class, as the LoTUS reference)."})
    forget_classes: list[str] | None = field(default=None, metadata={"help": "Forget every sample of these classes (labels or class names): class unlearning."})
    forget_ids_file: str | None = field(default=None, metadata={"help": "File of sample ids to forget (one per line, or a JSON list), matched against --id_column_name."})
    gold_model: str | None = field(default=None, metadata={"help": "A model retrained without the forget set: adds JSD and Avg Gap to the metrics."})
    metrics_variant: str = field(default="standard", metadata={"help": "'standard' (textbook JSD) or 'reference' (the LoTUS code's JSDiv, for comparing with published numbers)."})
    push_removed_ids: bool = field(default=False, metadata={"help": "Also upload removed_ids.json (the raw ids) when pushing. Off by default: the card carries a SHA-256 commitment only."})
    license: str | None = field(default=None, metadata={"help": "The card's license id (e.g. apache-2.0, mit, other). Default: the original model's license when its card or config declares one, else none (the card says so)."})


# ---------------------------------------------------------------------------------------------------------
def parse_args(argv: list[str], prog: str = "hf-unlearn unlearn"):
    """Parse into (ScriptArguments, UnlearningArguments, method config) with ``HfArgumentParser``.

    ``--method`` is read first so that the selected method's own dataclass and training defaults join the parser.
    A config file (a lone ``run.json``/``run.yaml`` argument, or ``--config FILE``) gives defaults that explicit
    flags override. The embedded preset applies when the *parsed* model and dataset are both unset, whatever
    spelling (``--model``, ``--model-name-or-path``, a config file...) set them.
    """
    from transformers import HfArgumentParser

    from . import UnlearningArguments, get_method_class, list_methods
    from .config_file import ConfigFileError, read_config_file, split_config_argument

    try:
        argv, config_path = split_config_argument(argv)
        file_values = read_config_file(config_path) if config_path else {}
    except ConfigFileError as e:
        raise UsageError(str(e)) from e
    file_values = {_CONFIG_ALIASES.get(k, k): v for k, v in file_values.items()}
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--method", default=file_values.get("method", "lotus"))
    known, _ = pre.parse_known_args(argv)
    if known.method not in list_methods():
        raise UsageError(f"unknown --method '{known.method}'; choose one of: {', '.join(list_methods())}.")
    method_cls = get_method_class(known.method)
    parser = HfArgumentParser(
        (ScriptArguments, UnlearningArguments, method_cls.config_class),
        description=f"Machine unlearning with hf-unlearn. Methods: {', '.join(list_methods())}.",
        usage=f"{prog} [--method NAME] [--model MODEL] [--dataset DATASET] [--output_dir DIR] [options]",
    )
    known_dests = {a.dest for a in parser._actions} - {"help"}
    unknown_keys = sorted(k for k in file_values if k not in known_dests)
    if unknown_keys:
        raise UsageError(f"config file {config_path} has unknown keys: {', '.join(unknown_keys)}; "
                         f"see `{prog} --method {known.method} --help` for the flag names.")
    defaults = dict(method_cls.training_defaults)
    defaults.setdefault("report_to", "none")
    defaults.setdefault("save_strategy", "no")
    defaults.setdefault("logging_strategy", "epoch")
    defaults["output_dir"] = os.path.join("outputs", f"unlearn-{known.method}")
    defaults.update(file_values)
    parser.set_defaults(**defaults)
    wants_help = any(a in ("-h", "--help") for a in argv)
    # Decided from the parsed values: --model, --model-name-or-path, --model_name (argparse prefix) and a config
    # file all count; before, only the exact underscore spellings switched the preset off.
    probe, _ = parser.parse_known_args([a for a in argv if a not in ("-h", "--help")])
    embedded = probe.model_name_or_path is None and probe.dataset_name is None
    preset = {k: v for k, v in EMBEDDED_DEFAULT_PRESET.get(known.method, {}).items() if k not in file_values}
    if wants_help:
        from .cli_help import format_unlearn_help

        print(format_unlearn_help(parser, prog=prog, method=known.method, method_cls=method_cls,
                                  script_cls=ScriptArguments, arguments_cls=UnlearningArguments,
                                  methods=list_methods(), preset=preset if embedded else None))
        raise SystemExit(0)
    if embedded and preset:
        parser.set_defaults(**preset)
    try:
        script, args, config = parser.parse_args_into_dataclasses(args=argv)
    except ValueError as e:  # HfArgumentParser: unknown flags, bad values
        raise UsageError(f"{e}; see `{prog} --method {known.method} --help`.") from e
    return script, args, config


#: Short names accepted in config files (the flags ``--model``/``--dataset`` are argparse aliases).
_CONFIG_ALIASES = {"model": "model_name_or_path", "dataset": "dataset_name"}


def _check_selection(script: ScriptArguments) -> None:
    rules = [n for n, v in (("--forget_fraction", script.forget_fraction), ("--forget_classes", script.forget_classes),
                           ("--forget_ids_file", script.forget_ids_file)) if v]
    if len(rules) > 1:
        raise UsageError(f"{' and '.join(rules)} are mutually exclusive: give one forget-selection rule.")
    if script.forget_ids_file and not os.path.isfile(script.forget_ids_file):
        raise UsageError(f"--forget_ids_file {script.forget_ids_file} does not exist.")
    if script.license is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.+-]*", script.license):
        raise UsageError(f"--license {script.license!r} is not a license id; pass one like apache-2.0, mit or other.")
    if script.metrics_variant not in ("standard", "reference"):
        raise UsageError(f"--metrics_variant must be 'standard' or 'reference', got {script.metrics_variant!r}.")


def _check_output_dir(script: ScriptArguments, args) -> None:
    out = os.path.abspath(args.output_dir)
    if script.model_name_or_path and os.path.isdir(script.model_name_or_path):
        model_dir = os.path.abspath(script.model_name_or_path)
        if out == model_dir or out.startswith(model_dir + os.sep):
            raise UsageError(
                f"--output_dir {args.output_dir} is inside the original model's directory; the original checkpoint is "
                "never overwritten: choose another --output_dir."
            )
    if os.path.isdir(out) and os.listdir(out) and not args.overwrite_output_dir and not args.resume_from_checkpoint:
        raise UsageError(
            f"--output_dir {args.output_dir} exists and is not empty; pass --overwrite_output_dir to replace it, "
            "or --resume_from_checkpoint to continue the run in it."
        )


def _check_resume_checkpoint(args) -> None:
    """A --resume_from_checkpoint folder is checked up front: before, a missing or corrupt one failed inside
    ``trainer.train`` (a traceback, after the evaluation of the original had already run)."""
    ckpt = args.resume_from_checkpoint
    if not ckpt:
        return
    from .trainer import METHOD_STATE_NAME, read_method_state

    fix = "pass a checkpoint-N folder written by an earlier run of the same command (or drop --resume_from_checkpoint)."
    if not os.path.isdir(ckpt):
        raise UsageError(f"--resume_from_checkpoint {ckpt} is not a directory; {fix}")
    missing = [n for n in ("trainer_state.json", METHOD_STATE_NAME, "model.safetensors")
               if not os.path.isfile(os.path.join(ckpt, n))]
    if missing:
        raise UsageError(f"--resume_from_checkpoint {ckpt} is incomplete (missing {', '.join(missing)}); {fix}")
    try:
        from safetensors import safe_open

        with safe_open(os.path.join(ckpt, "model.safetensors"), framework="pt") as f:
            for key in f.keys():  # reads every tensor: a truncated file fails here
                f.get_tensor(key)
        with open(os.path.join(ckpt, "trainer_state.json")) as f:
            json.load(f)
    except Exception as e:
        raise UsageError(f"--resume_from_checkpoint {ckpt} is corrupt ({type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''}); {fix}") from e
    try:
        read_method_state(ckpt, args.method)
    except ValueError as e:
        raise UsageError(str(e)) from e


def _read_ids(path: str) -> list:
    with open(path) as f:
        text = f.read().strip()
    if text.startswith("["):
        return json.loads(text)
    return [line.strip() for line in text.splitlines() if line.strip()]


def load_training_data(script: ScriptArguments):
    """The DatasetDict to unlearn from: the embedded digits, a saved dataset, an image folder or a Hub dataset."""
    import datasets

    if script.dataset_name is None:
        from .builtin import load_digits_dataset

        return load_digits_dataset(), "sklearn-digits"
    name = script.dataset_name
    try:
        if os.path.isdir(name) and (os.path.isfile(os.path.join(name, "dataset_dict.json"))
                                     or os.path.isfile(os.path.join(name, "dataset_info.json"))):
            data = datasets.load_from_disk(name)
        elif os.path.isdir(name):
            data = datasets.load_dataset("imagefolder", data_dir=name)
        else:
            data = datasets.load_dataset(name, script.dataset_config_name, revision=script.dataset_revision)
    except FileNotFoundError as e:
        raise UsageError(f"cannot load dataset '{name}' ({e}); check the Hub id or local path.") from e
    except Exception as e:  # datasets raises many types for a missing Hub dataset offline
        raise UsageError(f"cannot load dataset '{name}' ({type(e).__name__}: {str(e).splitlines()[0]}).") from e
    if isinstance(data, datasets.Dataset):
        data = datasets.DatasetDict({script.train_split: data})
    return data, name


def _split(data, name: str | None, what: str):
    if not name:
        return None
    if name not in data:
        if what == "train":
            raise UsageError(f"the dataset has no '{name}' split (splits: {list(data)}); pass --train_split.")
        logger.warning("no '%s' split (splits: %s): %s metrics that need it are skipped", name, list(data), what)
        return None
    return data[name]


# ---------------------------------------------------------------------------------------------------------
def run_unlearning(argv: list[str]) -> int:
    """Entry point; returns a process exit code. Bad input: one line on stderr, exit 2, no files written."""
    try:
        return _run(argv)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _run(argv: list[str]) -> int:
    import transformers

    from . import UnlearningTrainer, load_classifier, select_forget
    from .output import finalize_output_dir, original_model_info

    script, args, method_config = parse_args(argv)
    _check_selection(script)
    _check_output_dir(script, args)
    _check_resume_checkpoint(args)
    transformers.set_seed(args.seed)
    is_main = args.process_index == 0
    say = print if is_main else (lambda *a, **k: None)

    # ---- data and selection: every check happens here, before a model is touched ----
    data, dataset_id = load_training_data(script)
    train = _split(data, script.train_split, "train")
    for column in (script.image_column_name, args.label_column_name):
        if column not in train.column_names:
            raise UsageError(
                f"the '{script.train_split}' split has no column '{column}' (columns: {train.column_names}); "
                f"pass --{'image_column_name' if column == script.image_column_name else 'label_column_name'}."
            )
    validation = _split(data, script.validation_split, "validation")
    test = _split(data, script.test_split, "test")

    # ---- the original model ----
    model_path = script.model_name_or_path
    if model_path is None:
        if script.dataset_name is not None:
            raise UsageError("--dataset_name needs --model_name_or_path (the embedded default model is trained on digits).")
        from .builtin import original_model

        # Multi-process runs: only the main process trains (and caches) the original; the others wait for it and
        # then find it in the cache. Without this every rank trained it and raced on the same staging folder.
        with args.main_process_first(local=False, desc="embedded default original model"):
            # Progress per epoch: a bar, lines with --disable_tqdm, nothing with --log_level error/critical.
            quiet = args.log_level in ("error", "critical")
            model_path = original_model(script.default_arch, progress=None if quiet else say,
                                        progress_bar=not args.disable_tqdm)
    try:
        loaded = load_classifier(model_path, image_column=script.image_column_name,
                                 trust_remote_code=script.trust_remote_code, revision=script.model_revision)
    except ValueError as e:
        raise UsageError(str(e)) from e
    from .modeling import num_labels_of

    try:
        num_labels = num_labels_of(loaded.model)
    except ValueError as e:
        raise UsageError(str(e)) from e
    original_info = original_model_info(model_path, script.model_revision)
    from .card_metadata import describe_original

    original_info.update(describe_original(model_path, script.model_revision, license=script.license))

    rule: dict = {}
    if script.forget_classes:
        rule["classes"] = script.forget_classes
    elif script.forget_ids_file:
        rule["ids"] = _read_ids(script.forget_ids_file)
    else:
        rule["fraction_per_class"] = script.forget_fraction or DEFAULT_FORGET_FRACTION
        rule["mode"] = script.forget_selection
    id_column = script.id_column_name if script.id_column_name in train.column_names else None
    if "ids" in rule and id_column is None:
        raise UsageError(f"--forget_ids_file needs an id column; '{script.id_column_name}' is not among {train.column_names}.")
    try:
        selection = select_forget(train, seed=args.seed, id_column=id_column, label_column=args.label_column_name,
                                  num_labels=num_labels, dataset_name=dataset_id, dataset_config=script.dataset_config_name,
                                  split=script.train_split, revision=script.dataset_revision, **rule)
    except ValueError as e:
        raise UsageError(str(e)) from e

    # ---- unlearning ----
    # The push happens once, at the end, from the finished directory (hf_unlearn.hub): the Trainer's own
    # push_to_hub would contact the Hub at start-up and upload checkpoints as they are written.
    push, args.push_to_hub = args.push_to_hub, False
    original = copy.deepcopy(loaded.model).eval()  # kept for the "before" metrics and RF-JSD's reference
    try:
        trainer = UnlearningTrainer(
            loaded.model, args, forget_dataset=selection.forget, retain_dataset=selection.retain,
            calibration_dataset=validation, method_config=method_config, image_transform=loaded.transform,
            removal_record=selection.record, processing_class=loaded.processor,
        )
    except (ValueError, TypeError) as e:
        raise UsageError(str(e)) from e
    trainer.original_model_info = original_info
    say(f"hf-unlearn: method={args.method}  model={model_path}  dataset={dataset_id}  "
        f"forget={selection.record.num_removed}  retain={selection.record.num_retained}")
    say(f"selection: {selection.record.selection['description']}")
    original_predictions = trainer.predictions(original, test, validation)
    gold = None
    if script.gold_model:
        try:
            gold = load_classifier(script.gold_model, image_column=script.image_column_name,
                                   trust_remote_code=script.trust_remote_code).model
        except ValueError as e:
            raise UsageError(f"--gold_model: {e}") from e
        gold = trainer.predictions(gold, test, validation)

    start = time.perf_counter()
    trainer.train(resume_from_checkpoint=args.resume_from_checkpoint)
    runtime = time.perf_counter() - start
    results = trainer.evaluate_unlearning(test, validation, original=original_predictions, gold=gold,
                                          variant=script.metrics_variant)
    results["unlearned"]["runtime_s"] = runtime
    results["run"] = {
        "method": args.method,
        "seed": args.seed,
        "effective_batch_size": args.per_device_train_batch_size * args.world_size * args.gradient_accumulation_steps,
        "world_size": args.world_size,
        "global_steps": trainer.state.global_step,
        "library_versions": library_versions(),
    }

    if trainer.accelerator.is_main_process:
        finalize_output_dir(trainer, results, selection, script, original_info, dataset_id)
        say(format_table(results))
        say(f"wrote {os.path.abspath(args.output_dir)}")
    trainer.accelerator.wait_for_everyone()
    if push and trainer.accelerator.is_main_process:
        from .hub import HubPushError, push_unlearned_to_hub

        try:
            url = push_unlearned_to_hub(args.output_dir, args.hub_model_id or os.path.basename(os.path.abspath(args.output_dir)),
                                        private=bool(args.hub_private_repo), token=args.hub_token,
                                        revision=getattr(args, "hub_revision", None), push_removed_ids=script.push_removed_ids)
            say(f"pushed to {url}")
        except HubPushError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
    return 0


def library_versions() -> dict[str, str]:
    import importlib.metadata as md

    versions = {}
    for pkg in ("hf-unlearn", "torch", "transformers", "datasets", "accelerate", "evaluate", "huggingface-hub", "timm"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return versions


def format_table(results: dict) -> str:
    """The before/after table printed at the end of a run."""
    columns = [c for c in ("original", "unlearned", "gold") if c in results]
    keys = ["acc_forget", "acc_retain", "acc_test", "acc_val", "mia", "rf_jsd", "jsd", "avg_gap", "runtime_s"]
    keys = [k for k in keys if any(k in results[c] for c in columns)]
    lines = [f"{'metric':<12}" + "".join(f"{c:>12}" for c in columns)]
    for k in keys:
        row = f"{k:<12}"
        for c in columns:
            v = results[c].get(k)
            row += f"{'-':>12}" if v is None else (f"{v:>12.2f}" if k == "runtime_s" else f"{v:>12.4f}")
        lines.append(row)
    return "\n".join(lines)
