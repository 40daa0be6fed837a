"""``hf-unlearn benchmark`` (and ``scripts/benchmark.py``): the LoTUS paper's protocol, every registered method.

    hf-unlearn benchmark --quick                       # digits, 1 seed, 3 method epochs (< 10 min)
    hf-unlearn benchmark --dataset fashion_mnist       # 10k Fashion-MNIST subset, ResNet + ViT, seeds 3407 13 12
    hf-unlearn benchmark --dataset digits --class_unlearning [--forget_class 3]

Writes results/<name>.json, results/<name>.md (paper layout) and results/<name>.png (Avg Gap vs runtime).
Originals and golds are cached under $HF_UNLEARN_CACHE/benchmark. See hf_unlearn/benchmark.py for the protocol.
"""

import argparse
import os

__all__ = ["main"]


def main(argv=None, prog: str = "hf-unlearn benchmark") -> int:
    # Everything the benchmark loads is local; these only take effect when set before the HF libraries are imported
    # (scripts/benchmark.py sets them at its top), and never override the caller's settings.
    for key, value in (("HF_HUB_OFFLINE", "1"), ("HF_DATASETS_OFFLINE", "1"), ("TRANSFORMERS_VERBOSITY", "error")):
        os.environ.setdefault(key, value)
    from .benchmark import PAPER_SEEDS, run_benchmark

    p = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="digits", choices=["digits", "fashion_mnist"])
    p.add_argument("--families", nargs="+", default=["resnet", "vit"], choices=["resnet", "vit"])
    p.add_argument("--seeds", nargs="+", type=int, default=list(PAPER_SEEDS))
    p.add_argument("--methods", nargs="+", default=None, help="default: every registered method")
    p.add_argument("--method_epochs", type=float, default=None, help="override every method's num_train_epochs")
    p.add_argument("--recipe_epochs", type=int, default=None, help="override the original/gold training epochs")
    p.add_argument("--train_size", type=int, default=10_000, help="Fashion-MNIST train subset size")
    p.add_argument("--class_unlearning", action="store_true", help="forget one whole class (LoTUS alpha 32, class_unlearning)")
    p.add_argument("--forget_class", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="digits, 1 seed, 3 method epochs")
    p.add_argument("--name", default=None)
    p.add_argument("--results_dir", default="results")
    p.add_argument("--resume", action="store_true", help="skip runs already in results/<name>.json (same config)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--alpha_search", nargs="+", type=float, default=None,
                   help="LoTUS / SalUn+LoTUS pick alpha among these by RF-JSD on validation (e.g. 2 4 8 16); the report "
                        "compares it with the hindsight-best alpha by Avg Gap")
    a = p.parse_args(argv)
    if a.threads:
        import torch

        torch.set_num_threads(a.threads)
    if a.quick:
        a.dataset, a.seeds = "digits", a.seeds[:1]
        a.method_epochs = a.method_epochs or 3
    name = a.name or (a.dataset + ("-class" if a.class_unlearning else "") + ("-quick" if a.quick else ""))
    out = run_benchmark(dataset=a.dataset, families=a.families, seeds=a.seeds, methods=a.methods,
                        forget_class=a.forget_class if a.class_unlearning else None, method_epochs=a.method_epochs,
                        recipe_overrides={"epochs": a.recipe_epochs} if a.recipe_epochs else None,
                        train_size=a.train_size, name=name, results_dir=a.results_dir, resume=a.resume,
                        progress=lambda m: print(m, flush=True), alpha_search=a.alpha_search)
    print(open(os.path.join(a.results_dir, name + ".md")).read())
    return 1 if out.get("failures") and len(out["failures"]) == len(out["runs"]) else 0
