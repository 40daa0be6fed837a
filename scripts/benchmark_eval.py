#!/usr/bin/env python
"""How much does the evaluation pipeline cost over a bare forward pass?

Target (issue 3): evaluating a model on a split costs no more than ~1.2x a bare forward pass over it. Measured
per model on the four splits (forget, retain, test, validation):

* bare: a plain ``torch.inference_mode`` loop calling the model on pre-built tensors, nothing else;
* pipeline: ``UnlearningTrainer.predictions`` (eval mode, batched, gather-ready) plus every metric
  (accuracies, MIA, RF-JSD) through the ``evaluate`` modules.

    python scripts/benchmark_eval.py [--arch vit|resnet] [--repeats 5] [--output results/eval_speed.json]

``--arch vit-b16`` (issue 24) measures a whole run's evaluation as the CLI does it, on a ViT-B/16 (224 px, random
weights) and ``--rows`` digits images (default 200): the original's pass over forget, retain, test and validation,
LoTUS's calibration accuracy (read from that validation pass), the unlearned model's four passes and the metrics;
against one bare forward pass per model over each split's rows. Written under the key ``vit-b16``.
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
    parser.add_argument("--arch", default="vit", choices=["vit", "resnet", "vit-b16"])
    parser.add_argument("--rows", type=int, default=200, help="vit-b16: images in the dataset (train/validation/test)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument(
        "--replicate", type=int, default=4, help="repeat the digits splits this many times (more rows)"
    )
    parser.add_argument("--output", default="results/eval_speed.json")
    opts = parser.parse_args()

    import datasets
    import torch

    from hf_unlearn import UnlearningArguments, UnlearningTrainer, load_classifier, select_forget
    from hf_unlearn.data.builtin import load_digits_dataset, original_model
    from hf_unlearn.evaluation.metrics import unlearning_metrics

    if opts.arch == "vit-b16":
        return _write(opts, _whole_run_evaluation(opts))
    data = load_digits_dataset()
    if opts.replicate > 1:
        data = datasets.DatasetDict({k: datasets.concatenate_datasets([v] * opts.replicate) for k, v in data.items()})
    loaded = load_classifier(original_model(opts.arch))
    selection = select_forget(data["train"], fraction_per_class=0.1, seed=0, id_column=None)
    args = UnlearningArguments.for_method(
        "finetune",
        output_dir=tempfile.mkdtemp(),
        report_to="none",
        use_cpu=True,
        per_device_eval_batch_size=opts.batch_size,
        disable_tqdm=True,
    )
    trainer = UnlearningTrainer(
        loaded.model,
        args,
        forget_dataset=selection.forget,
        retain_dataset=selection.retain,
        calibration_dataset=data["validation"],
        image_transform=loaded.transform,
    )
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
        "arch": opts.arch,
        "rows": rows,
        "batch_size": opts.batch_size,
        "repeats": opts.repeats,
        "bare_forward_s": b,
        "pipeline_s": p,
        "ratio": p / b,
        "metrics_only_s": metric_only,
        "bare_times": bare_times,
        "pipeline_times": pipeline_times,
        "loadavg": open("/proc/loadavg").read().split()[:3],
        "torch_threads": torch.get_num_threads(),
    }
    print(
        f"{opts.arch}: {rows} rows, bare forward {b:.3f}s, pipeline {p:.3f}s -> ratio {p / b:.2f} "
        f"(metrics alone {metric_only:.3f}s); loadavg {result['loadavg']}"
    )
    _write(opts, result)


def _whole_run_evaluation(opts) -> dict:
    """A ViT-B/16 run's evaluation, stage by stage as ``hf_unlearn.cli.run`` does it, against bare forward passes."""
    import datasets
    import torch
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    from hf_unlearn import UnlearningArguments, UnlearningTrainer, select_forget
    from hf_unlearn.data.builtin import load_digits_dataset
    from hf_unlearn.evaluation.metrics import unlearning_metrics

    digits = load_digits_dataset()
    rows = datasets.concatenate_datasets([digits["train"], digits["validation"], digits["test"]]).shuffle(seed=0)
    rows = rows.select(range(opts.rows))
    n_val = n_test = opts.rows // 5
    data = {
        "train": rows.select(range(opts.rows - n_val - n_test)),
        "validation": rows.select(range(opts.rows - n_val - n_test, opts.rows - n_test)),
        "test": rows.select(range(opts.rows - n_test, opts.rows)),
    }
    torch.manual_seed(0)
    model = ViTForImageClassification(ViTConfig(num_labels=10)).eval()  # ViT-B/16, 224 px, 86M parameters
    processor = ViTImageProcessor(size={"height": 224, "width": 224})
    transform = lambda b: {
        "pixel_values": processor(images=[im.convert("RGB") for im in b["image"]], return_tensors="pt")[
            "pixel_values"
        ],
        "label": b["label"],
    }
    selection = select_forget(data["train"], fraction_per_class=0.1, seed=0, id_column=None)
    args = UnlearningArguments.for_method(
        "lotus", output_dir=tempfile.mkdtemp(), report_to="none", use_cpu=True, disable_tqdm=True
    )
    trainer = UnlearningTrainer(
        model,
        args,
        forget_dataset=selection.forget,
        retain_dataset=selection.retain,
        calibration_dataset=data["validation"],
        image_transform=transform,
    )
    splits = [
        trainer.forget_split,
        trainer.retain_split,
        trainer.as_split(data["test"], "test"),
        trainer.calibration_split,
    ]
    passes = {"count": 0}
    real_summarize = trainer.summarize

    def counted(*a, **k):  # forward passes over a split that evaluation really makes (a kept pass is not one)
        before = len(trainer.__dict__.get("_kept_passes", []))
        out = real_summarize(*a, **k)
        passes["count"] += int(a[0] is not trainer.teacher or len(trainer.__dict__.get("_kept_passes", [])) > before)
        return out

    trainer.summarize = counted
    bare_before = _bare_forward(trainer, splits)  # before and after the evaluation: machine load drifts
    start = time.perf_counter()
    original = trainer.predictions(trainer.teacher, data["test"], data["validation"])  # cli_run.predict_references
    calibration = trainer.accuracy(trainer.teacher, trainer.calibration_split)  # LoTUS's A_cal (method.prepare)
    unlearned = trainer.predictions(trainer.model, data["test"], data["validation"])  # cli_run.evaluate
    unlearning_metrics(unlearned, original), unlearning_metrics(original, original)
    pipeline = time.perf_counter() - start
    bare_after = _bare_forward(trainer, splits)
    bare = (bare_before + bare_after) / 2
    result = {
        "arch": "vit-b16",
        "image_size": 224,
        "parameters": sum(p.numel() for p in model.parameters()),
        "rows": {s.name: len(s) for s in splits},
        "eval_batch_size_setting": args.per_device_eval_batch_size,
        "split_passes": passes["count"],
        "calibration_accuracy": calibration,
        "evaluation_s": pipeline,
        "bare_forward_s": bare,
        "bare_forward_runs_s": [bare_before, bare_after],
        "ratio": pipeline / bare,
        "loadavg": open("/proc/loadavg").read().split()[:3],
        "torch_threads": torch.get_num_threads(),
        "note": "machine shared with other jobs; evaluation_s = the original's 4 passes + LoTUS calibration "
        "(reused) + the unlearned model's 4 passes + metrics; bare_forward_s = 2 x 4 plain forward "
        "passes at batch 32 on the same pre-built tensors, the mean of one run before and one after",
    }
    print(
        f"vit-b16: {result['rows']}, {passes['count']} split passes, evaluation {pipeline:.1f}s, bare forward "
        f"{bare:.1f}s -> ratio {pipeline / bare:.2f}; loadavg {result['loadavg']}"
    )
    return result


def _bare_forward(trainer, splits, batch: int = 32) -> float:
    """Seconds for one plain forward pass per model (original, unlearned) over each split's pre-built tensors."""
    import torch

    start = time.perf_counter()
    with torch.inference_mode():
        for m in (trainer.teacher, trainer.model):
            for split in splits:
                for lo in range(0, len(split), batch):
                    m(pixel_values=split.pixel_values[lo : lo + batch])
    return time.perf_counter() - start


def _write(opts, result: dict) -> None:
    os.makedirs(os.path.dirname(opts.output) or ".", exist_ok=True)
    existing = json.load(open(opts.output)) if os.path.isfile(opts.output) else {}
    existing[opts.arch] = result
    with open(opts.output, "w") as f:
        json.dump(existing, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
