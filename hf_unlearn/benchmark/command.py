"""``hf-unlearn benchmark`` (and ``scripts/benchmark.py``): the LoTUS paper's protocol, every registered method.

    hf-unlearn benchmark --quick                       # digits, 1 seed, 3 method epochs (< 10 min)
    hf-unlearn benchmark --dataset fashion_mnist       # 10k Fashion-MNIST subset, ResNet + ViT, seeds 3407 13 12
    hf-unlearn benchmark --dataset digits --class_unlearning [--forget_class 3]
    hf-unlearn benchmark --model MODEL --dataset DATA --forget_fraction 0.1 [--recipe_epochs 3 ...]

Your own model and data (--model: a Hub id or local directory, as `hf-unlearn unlearn --model`; --dataset: a Hub id,
a save_to_disk directory or an image folder): --model is the *starting checkpoint*. The Original is it fine-tuned on
the whole train split; the Gold is the same checkpoint fine-tuned the same way (same recipe, same seed) on the retain
set only -- your model fine-tuned without the forget set. The recipe comes from --recipe_epochs,
--recipe_learning_rate, --recipe_batch_size; each one left out comes from the built-in recipe of the built-in
dataset closest in size (digits up to 5,000 training images, else fashion_mnist) and family (vit for attention
models, else resnet). Give one forget rule (--forget_fraction: a random fraction of each class drawn with the first
seed, or --forget_selection first; --forget_ids_file; --forget_classes); the data needs a train split and held-out
data (validation and/or test; a single held-out split is cut 50/50). --new_head: a model trained on other classes
gets a new classification head for the dataset's classes, drawn from each seed. --dataset digits|fashion_mnist with
--model: the built-in data. Everything trains on the CPU, like the built-in benchmark.

Writes results/<name>.json, results/<name>.md (paper layout) and results/<name>.png (Avg Gap vs runtime).
Originals and golds are cached under $HF_UNLEARN_CACHE/benchmark. See hf_unlearn/benchmark/protocol.py for the protocol.
"""

import argparse
import os

__all__ = ["main"]


class _ArgumentError(ValueError):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, as every other bad input (argparse would print the whole usage)
        raise _ArgumentError(message)


def _parser(prog: str) -> argparse.ArgumentParser:
    p = _Parser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--dataset",
        default=None,
        help="'digits' (default) or 'fashion_mnist' (built-in), or with --model "
        "your dataset: a Hub id, a save_to_disk directory or an image folder",
    )
    p.add_argument(
        "--families",
        nargs="+",
        default=None,
        choices=["resnet", "vit"],
        help="built-in datasets only (default: resnet vit)",
    )
    p.add_argument("--seeds", nargs="+", type=int, default=None, help="default 3407 13 12")
    p.add_argument("--methods", nargs="+", default=None, help="default: every registered method")
    p.add_argument("--method_epochs", type=float, default=None, help="override every method's num_train_epochs")
    p.add_argument("--recipe_epochs", type=int, default=None, help="override the original/gold training epochs")
    p.add_argument("--train_size", type=int, default=None, help="Fashion-MNIST train subset size (default 10000)")
    p.add_argument(
        "--class_unlearning", action="store_true", help="forget one whole class (LoTUS alpha 32, class_unlearning)"
    )
    p.add_argument("--forget_class", type=int, default=None, help="with --class_unlearning (default 3)")
    p.add_argument("--quick", action="store_true", help="digits, 1 seed, 3 method epochs")
    p.add_argument("--name", default=None)
    p.add_argument("--results_dir", default="results")
    p.add_argument("--resume", action="store_true", help="skip runs already in results/<name>.json (same config)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument(
        "--alpha_search",
        nargs="+",
        type=float,
        default=None,
        help="LoTUS / SalUn+LoTUS pick alpha among these by RF-JSD on validation (e.g. 2 4 8 16); the report "
        "compares it with the hindsight-best alpha by Avg Gap",
    )
    u = p.add_argument_group("your own model and data (with --model)")
    u.add_argument(
        "--model",
        default=None,
        help="the starting checkpoint: a Hub id (HF or 'timm/...') or a local "
        "directory, loaded as by `hf-unlearn unlearn` (safetensors only)",
    )
    u.add_argument("--model_revision", default=None)
    u.add_argument("--trust_remote_code", action="store_true", help="allow custom modelling code from the model repo")
    u.add_argument("--dataset_config_name", default=None)
    u.add_argument("--dataset_revision", default=None)
    u.add_argument("--image_column_name", default="image")
    u.add_argument("--label_column_name", default="label")
    u.add_argument("--id_column_name", default="id", help="column of sample ids (for --forget_ids_file)")
    u.add_argument("--train_split", default="train")
    u.add_argument("--validation_split", default="validation")
    u.add_argument("--test_split", default="test")
    u.add_argument(
        "--forget_fraction",
        type=float,
        default=None,
        help="forget this fraction of each class (with "
        "--model: drawn with the first seed, see --forget_selection; built-in: the first rows, default 0.1)",
    )
    u.add_argument("--forget_selection", default="random", choices=["random", "first"])
    u.add_argument(
        "--forget_ids_file", default=None, help="file of sample ids to forget (one per line, or a JSON list)"
    )
    u.add_argument(
        "--forget_classes", nargs="+", default=None, help="forget every sample of these classes (ids or names)"
    )
    u.add_argument("--recipe_learning_rate", type=float, default=None, help="the original/gold learning rate")
    u.add_argument("--recipe_batch_size", type=int, default=None, help="the original/gold batch size")
    u.add_argument(
        "--image_size",
        type=int,
        default=None,
        help="resize images to S x S for the model (Transformers image processors; default: the processor's own size)",
    )
    u.add_argument(
        "--new_head",
        action="store_true",
        help="fine-tune the checkpoint with a new classification head "
        "for the dataset's classes (drawn from each seed), e.g. a model trained on other classes",
    )
    u.add_argument("--no_progress_bar", dest="progress_bar", action="store_false", help="no bar over the grid")
    return p


def main(argv=None, prog: str = "hf-unlearn benchmark") -> int:
    import sys

    from .user_load import BUILTIN_DATASETS

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        a = _parser(prog).parse_args(argv)
        user = a.model is not None or (a.dataset is not None and a.dataset not in BUILTIN_DATASETS)
        if user and a.model is None:
            raise _ArgumentError(
                f"--dataset {a.dataset!r} is not a built-in benchmark dataset ({', '.join(BUILTIN_DATASETS)}); "
                "to benchmark on your own data give --model too (the starting checkpoint to fine-tune)."
            )
    except _ArgumentError as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    if user:
        return _main_user(a)
    # Everything the benchmark loads is local; these only take effect when set before the HF libraries are imported
    # (scripts/benchmark.py sets them at its top), and never override the caller's settings.
    for key, value in (("HF_HUB_OFFLINE", "1"), ("HF_DATASETS_OFFLINE", "1"), ("TRANSFORMERS_VERBOSITY", "error")):
        os.environ.setdefault(key, value)
    from .protocol import PAPER_SEEDS, run_benchmark

    own = [
        f
        for f, v in (
            ("--forget_ids_file", a.forget_ids_file),
            ("--new_head", a.new_head or None),
            ("--forget_classes", a.forget_classes),
            ("--image_size", a.image_size),
            ("--recipe_learning_rate", a.recipe_learning_rate),
            ("--recipe_batch_size", a.recipe_batch_size),
        )
        if v is not None
    ]
    if own:
        print(
            f"error: {', '.join(own)} need --model (your own model and data); the built-in datasets use their "
            "own recipes and forget the first --forget_fraction (default 10 %) of each class (or --class_unlearning).",
            file=sys.stderr,
        )
        return 2
    if a.forget_fraction is not None and not 0 < a.forget_fraction < 1:
        print(f"error: --forget_fraction must be in (0, 1), got {a.forget_fraction}.", file=sys.stderr)
        return 2
    a.dataset, a.families = a.dataset or "digits", a.families or ["resnet", "vit"]
    a.seeds = a.seeds or list(PAPER_SEEDS)
    a.forget_class = 3 if a.forget_class is None else a.forget_class
    if a.threads:
        import torch

        torch.set_num_threads(a.threads)
    if a.quick:
        a.dataset, a.seeds = "digits", a.seeds[:1]
        a.method_epochs = a.method_epochs or 3
    name = a.name or (a.dataset + ("-class" if a.class_unlearning else "") + ("-quick" if a.quick else ""))
    out = run_benchmark(
        dataset=a.dataset,
        families=a.families,
        seeds=a.seeds,
        methods=a.methods,
        forget_fraction=a.forget_fraction if a.forget_fraction is not None else 0.1,
        forget_class=a.forget_class if a.class_unlearning else None,
        method_epochs=a.method_epochs,
        recipe_overrides={"epochs": a.recipe_epochs} if a.recipe_epochs else None,
        train_size=a.train_size or 10_000,
        name=name,
        results_dir=a.results_dir,
        resume=a.resume,
        progress=lambda m: print(m, flush=True),
        alpha_search=a.alpha_search,
    )
    print(open(os.path.join(a.results_dir, name + ".md")).read())
    return 1 if out.get("failures") and len(out["failures"]) == len(out["runs"]) else 0


def _main_user(a) -> int:
    """``--model``: the benchmark on your own model and data (hf_unlearn.benchmark.user)."""
    import sys

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from ..cli.args import UsageError
    from ..data.images import ImageDataError
    from .protocol import PAPER_SEEDS
    from .user import run_user_benchmark

    a.seeds = a.seeds or list(PAPER_SEEDS)
    if a.threads:
        import torch

        torch.set_num_threads(a.threads)
    try:
        out = run_user_benchmark(a, progress=lambda m: print(m, flush=True))
    except (UsageError, ImageDataError) as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    print(open(os.path.join(a.results_dir, out["name"] + ".md")).read())
    return 1 if out.get("failures") and len(out["failures"]) == len(out["runs"]) else 0
