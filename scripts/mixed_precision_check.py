#!/usr/bin/env python
"""bf16 vs float32, every method, every metric: the measurement behind tests/test_mixed_precision.py's tolerance.

    python scripts/mixed_precision_check.py --out results/mixed_precision.json [--archs resnet vit] [--steps 4]

Each registered method unlearns the embedded original (digits, 10 % of each class forgotten) for ``--steps``
optimiser steps on CPU in float32 and with ``--bf16 true``, from the same original and seed; both are evaluated with
``evaluate_unlearning`` (test and validation splits) and the absolute differences are written per metric. Runs in
about 2 minutes per architecture on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def main(argv=None) -> int:
    import torch

    import hf_unlearn
    from hf_unlearn import UnlearningArguments, UnlearningTrainer, load_classifier, select_forget
    from hf_unlearn.data.builtin import load_digits_dataset, original_model

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="results/mixed_precision.json")
    p.add_argument("--archs", nargs="*", default=["resnet", "vit"])
    p.add_argument("--methods", nargs="*", default=hf_unlearn.list_methods())
    p.add_argument("--steps", type=int, default=4)
    a = p.parse_args(argv)
    data = load_digits_dataset()
    selection = select_forget(data["train"], fraction_per_class=0.1, seed=0, num_labels=10)
    report = {"steps": a.steps, "threads": torch.get_num_threads(), "torch": torch.__version__, "archs": {}}
    for arch in a.archs:
        path = original_model(arch, seed=0, dataset=data, progress=None)
        original = load_classifier(path).model.eval()
        rows = report["archs"][arch] = {}
        for method in a.methods:
            row = {}
            for precision in ("fp32", "bf16"):
                start = time.perf_counter()
                loaded = load_classifier(path)
                args = UnlearningArguments.for_method(
                    method,
                    output_dir="/tmp/mixed_precision_check",
                    report_to="none",
                    save_strategy="no",
                    use_cpu=True,
                    disable_tqdm=True,
                    logging_steps=10**6,
                    seed=0,
                    bf16=precision == "bf16",
                    max_steps=a.steps,
                )
                trainer = UnlearningTrainer(
                    loaded.model,
                    args,
                    forget_dataset=selection.forget,
                    retain_dataset=selection.retain,
                    calibration_dataset=data["validation"],
                    image_transform=loaded.transform,
                    removal_record=selection.record,
                )
                trainer.train()
                metrics = trainer.evaluate_unlearning(data["test"], data["validation"], original=original, log=False)
                row[precision] = {
                    k: v for k, v in metrics["unlearned"].items() if isinstance(v, float) and k != "runtime_s"
                }
                row[f"{precision}_wall_s"] = round(time.perf_counter() - start, 2)
            row["abs_diff"] = {k: abs(row["bf16"][k] - v) for k, v in row["fp32"].items() if k in row["bf16"]}
            rows[method] = row
            print(arch, method, {k: round(v, 4) for k, v in row["abs_diff"].items()}, flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(report, f, indent=1)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
