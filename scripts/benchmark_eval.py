#!/usr/bin/env python
"""How much does the evaluation pipeline cost over a bare forward pass?

Target (issue 3): evaluating a model on a split costs no more than ~1.2x a bare forward pass over it. Measured
per model on the four splits (forget, retain, test, validation):

* bare: a plain ``torch.inference_mode`` loop calling the model on pre-built tensors, nothing else;
* pipeline: ``UnlearningTrainer.predictions`` (eval mode, batched, gather-ready) plus every metric
  (accuracies, MIA, RF-JSD) through the ``evaluate`` modules.

    python scripts/benchmark_eval.py [--arch vit|resnet] [--repeats 5] [--output results/eval_speed.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="vit", choices=["vit", "resnet"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument("--replicate", type=int, default=4, help="repeat the digits splits this many times (more rows)")
    parser.add_argument("--output", default="results/eval_speed.json")
    opts = parser.parse_args()

    import datasets
    import torch

    from hf_unlearn import UnlearningArguments, UnlearningTrainer, load_classifier, select_forget
    from hf_unlearn.builtin import load_digits_dataset, original_model
    from hf_unlearn.evaluation import unlearning_metrics

    data = load_digits_dataset()
    if opts.replicate > 1:
        data = datasets.DatasetDict({k: datasets.concatenate_datasets([v] * opts.replicate) for k, v in data.items()})
    loaded = load_classifier(original_model(opts.arch))
    selection = select_forget(data["train"], fraction_per_class=0.1, seed=0, id_column=None)
    args = UnlearningArguments.for_method("finetune", output_dir=tempfile.mkdtemp(), report_to="none", use_cpu=True,
                                          per_device_eval_batch_size=opts.batch_size, disable_tqdm=True)
    trainer = UnlearningTrainer(loaded.model, args, forget_dataset=selection.forget, retain_dataset=selection.retain,
                                calibration_dataset=data["validation"], image_transform=loaded.transform)
    test = trainer.as_split(data["test"], "test")
    splits = [trainer.forget_split, trainer.retain_split, test, trainer.calibration_split]
    model = trainer.model.eval()
    rows = sum(len(s) for s in splits)

    def bare() -> None:
        with torch.inference_mode():
            for split in splits:
                for start in range(0, len(split), opts.batch_size):
                    model(pixel_values=split.pixel_values[start : start + opts.batch_size])

    original = trainer.predictions(model, data["test"])

    def pipeline() -> None:
        unlearning_metrics(trainer.predictions(model, data["test"]), original)

    def timed(fn) -> list[float]:
        fn()  # warm-up (module loading, allocator)
        times = []
        for _ in range(opts.repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return times

    # Interleave the two measurements so machine load affects both alike.
    bare_times, pipeline_times = [], []
    for _ in range(opts.repeats):
        bare_times += timed(bare)[:1]
        pipeline_times += timed(pipeline)[:1]
    b, p = statistics.median(bare_times), statistics.median(pipeline_times)
    metric_only = statistics.median(timed(lambda: unlearning_metrics(original, original)))
    result = {
        "arch": opts.arch, "rows": rows, "batch_size": opts.batch_size, "repeats": opts.repeats,
        "bare_forward_s": b, "pipeline_s": p, "ratio": p / b, "metrics_only_s": metric_only,
        "bare_times": bare_times, "pipeline_times": pipeline_times,
        "loadavg": open("/proc/loadavg").read().split()[:3], "torch_threads": torch.get_num_threads(),
    }
    print(f"{opts.arch}: {rows} rows, bare forward {b:.3f}s, pipeline {p:.3f}s -> ratio {p / b:.2f} "
          f"(metrics alone {metric_only:.3f}s); loadavg {result['loadavg']}")
    os.makedirs(os.path.dirname(opts.output) or ".", exist_ok=True)
    existing = json.load(open(opts.output)) if os.path.isfile(opts.output) else {}
    existing[opts.arch] = result
    with open(opts.output, "w") as f:
        json.dump(existing, f, indent=2)


if __name__ == "__main__":
    main()
