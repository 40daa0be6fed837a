#!/usr/bin/env python
"""Scale (issue 13): selection, streaming evaluation and ViT-B/16 overhead at ImageNet-1k size -> results/scale.json.

* selection: ``select_forget`` over a synthetic 1,281,167-row, 1000-class dataset (string id, label, a tiny encoded
  PNG per row; memory-mapped from disk like a real Arrow dataset) by each rule -- 10 % per class (random and first),
  10 classes, 128k row indices, 128k ids read from an ids file -- timing each and recording the peak RSS increase.
* evaluation: the streaming accumulators (``hf_unlearn.evaluation.streaming.SplitStats``, what ``UnlearningTrainer.summarize``
  feeds batch by batch) over 1,281,167 train rows (10 % forget) + 50,000 test + 50,000 validation rows x 1000 classes
  of synthetic logits, for the unlearned model on every split and the original on the test split, then the metrics
  (accuracies, MIA with AUC, RF-JSD). ``matches_non_streaming``: on the Fashion-MNIST benchmark splits, the streamed
  metrics of two freshly initialised ResNets equal the logits pipeline's (evaluate modules) to 1e-6.
* vit_b16: a config-built ``ViTForImageClassification`` (hidden 768, 12 layers, 12 heads, 224 px, 1000 labels,
  random weights): the wall time of a LoTUS step through ``UnlearningTrainer`` vs the same step in a hand-written
  PyTorch loop (same rows, targets, AdamW), and an evaluation pass (``trainer.summarize``) vs a bare forward loop.
  Trainer and hand loop alternate repetition by repetition; median (and min) per-step times are reported.

Every measurement runs in a fresh subprocess; peak RSS is VmHWM after resetting it (``/proc/self/clear_refs``) once
imports and data are loaded, reported as the increase over VmRSS at that moment. The load average is recorded:
this machine is shared, so timings are noisy; re-run on a quiet machine for publishable numbers.

    python scripts/benchmark_scale.py [--quick] [--out results/scale.json]
"""

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time

from interleaved_timing import interleaved

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

IMAGENET_ROWS, IMAGENET_CLASSES, EVAL_HELD_OUT = 1_281_167, 1000, 50_000


def loadavg():
    try:
        return [float(v) for v in open("/proc/loadavg").read().split()[:3]]
    except OSError:
        return None


def _status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak():
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    return _status_kib("VmRSS")


def _peak_delta_mb(base_kib):
    return (_status_kib("VmHWM") - base_kib) / 1024


# ---- the synthetic ImageNet-sized dataset ---------------------------------------------------------------------
def dataset_dir(rows, classes):
    return os.path.join(ROOT, "results", "cache", f"scale-synthetic-{rows}-{classes}")


def build_dataset(rows, classes):
    """Built once: ids "n0000000".., labels round-robin with a shuffle, 16 distinct 8x8 PNGs (never decoded)."""
    path = dataset_dir(rows, classes)
    if os.path.isfile(os.path.join(path, "dataset_info.json")):
        return path
    import io

    import datasets
    import numpy as np
    import pyarrow as pa
    from PIL import Image

    pngs = []
    for k in range(16):
        buf = io.BytesIO()
        Image.new("RGB", (8, 8), (k * 16, 255 - k * 16, 128)).save(buf, format="PNG")
        pngs.append(buf.getvalue())
    rng = np.random.default_rng(0)
    labels = rng.permutation(np.arange(rows) % classes)
    table = pa.table(
        {
            "id": pa.array([f"n{i:07d}" for i in range(rows)]),
            "label": pa.array(labels, type=pa.int64()),
            "image": pa.StructArray.from_arrays(
                [pa.array([pngs[i % 16] for i in range(rows)], type=pa.binary()), pa.nulls(rows, type=pa.string())],
                names=["bytes", "path"],
            ),
        }
    )
    features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "label": datasets.ClassLabel(names=[f"c{i}" for i in range(classes)]),
            "image": datasets.Image(),
        }
    )
    ds = datasets.Dataset(table.cast(features.arrow_schema), info=datasets.DatasetInfo(features=features))
    ds.save_to_disk(path + ".tmp", max_shard_size="500MB")
    os.replace(path + ".tmp", path)
    return path


# ---- workers (one per subprocess) ---------------------------------------------------------------------------
def worker_selection(a):
    import datasets
    import numpy as np

    from hf_unlearn import select_forget

    ds = datasets.load_from_disk(dataset_dir(a.rows, a.classes))
    rng = np.random.default_rng(1)
    picked = np.sort(rng.choice(len(ds), min(128_000, len(ds) // 10), replace=False))
    ids_file = os.path.join(dataset_dir(a.rows, a.classes), "..", f"ids-128k-{a.rows}.txt")
    with open(ids_file, "w") as f:
        f.write("\n".join(f"n{i:07d}" for i in picked))
    rules = {
        "fraction_per_class_random": dict(fraction_per_class=0.1, seed=0),
        "fraction_per_class_first": dict(fraction_per_class=0.1, mode="first"),
        "classes": dict(classes=list(range(10))),
        "indices_128k": dict(indices=picked.tolist()),
        "ids_file_128k": None,
    }
    per_rule = {}
    base = _reset_peak()
    for name, kwargs in rules.items():
        start = time.perf_counter()
        if kwargs is None:  # the CLI's ids-file path: read the file, then select by id
            from hf_unlearn.cli.main import _read_ids

            kwargs = dict(ids=_read_ids(ids_file))
        split = select_forget(ds, num_labels=a.classes, **kwargs)
        per_rule[name] = {"seconds": time.perf_counter() - start, "num_removed": split.record.num_removed}
        del split, kwargs
        gc.collect()
    os.remove(ids_file)
    return {
        "rows": len(ds),
        "num_labels": a.classes,
        "seconds": max(r["seconds"] for r in per_rule.values()),
        "peak_rss_delta_mb": _peak_delta_mb(base),
        "per_rule": per_rule,
        "how": "max over the rules of one select_forget call each; dataset memory-mapped from disk",
    }


def worker_evaluation(a):
    import torch

    from hf_unlearn.evaluation.metrics import unlearning_metrics
    from hf_unlearn.evaluation.streaming import CLASS_SUM_SPLITS, SplitStats, StreamingPredictions

    c, batch = a.classes, 256
    n_forget = a.rows // 10
    sizes = {"forget": n_forget, "retain": a.rows - n_forget, "test": EVAL_HELD_OUT, "validation": EVAL_HELD_OUT}
    base = _reset_peak()
    start = time.perf_counter()
    g = torch.Generator().manual_seed(0)

    def stream(split, n, shift):
        stats = SplitStats(c, class_sums=split in CLASS_SUM_SPLITS)
        for lo in range(0, n, batch):
            b = min(batch, n - lo)
            labels = torch.randint(0, c, (b,), generator=g)
            logits = torch.randn(b, c, generator=g) * 2
            logits[torch.arange(b), labels] += shift  # a model that is right about half the time
            stats.update(logits, labels)
        return stats.finish()

    model, original = StreamingPredictions(), StreamingPredictions()
    for split, n in sizes.items():
        model.stats[split] = stream(split, n, 6.0 if split in ("forget", "retain") else 4.0)
    original.stats["test"] = stream("test", sizes["test"], 4.0)
    metrics = unlearning_metrics(model, original)
    return {
        "rows": sum(sizes.values()) + sizes["test"],
        "num_labels": c,
        "seconds": time.perf_counter() - start,
        "peak_rss_delta_mb": _peak_delta_mb(base),
        "splits": sizes,
        "metrics": metrics,
        "how": "synthetic logits streamed through SplitStats in batches of 256 (unlearned model: all splits; "
        "original: test), then accuracies, MIA + AUC, RF-JSD",
    }


def worker_match(a):
    """Streaming == logits pipeline on the Fashion-MNIST benchmark splits (two freshly initialised ResNets)."""
    import numpy as np
    import torch

    from hf_unlearn import UnlearningArguments, UnlearningTrainer
    from hf_unlearn.data.builtin import build_image_classifier
    from hf_unlearn.data.fashion_mnist import FASHION_MNIST_DIR, FILES, ensure_fashion_mnist_files, read_idx
    from hf_unlearn.data.splits import ImageSplit
    from hf_unlearn.evaluation.metrics import predict_splits, unlearning_metrics

    torch.set_num_threads(a.threads)
    root = ensure_fashion_mnist_files(FASHION_MNIST_DIR)
    x = read_idx(os.path.join(root, FILES["train_images"]))[: a.fashion_train]
    y = read_idx(os.path.join(root, FILES["train_labels"]))[: a.fashion_train].astype(np.int64)
    xt = read_idx(os.path.join(root, FILES["test_images"]))
    yt = read_idx(os.path.join(root, FILES["test_labels"])).astype(np.int64)
    forget_rows = np.concatenate([np.flatnonzero(y == k)[: int(0.1 * (y == k).sum())] for k in range(10)])
    mask = np.zeros(len(y), bool)
    mask[forget_rows] = True

    def split(images, labels, name):
        px = torch.from_numpy(images).float().div(255).sub(0.5).div(0.5).unsqueeze(1).contiguous()
        return ImageSplit(px, torch.from_numpy(labels), name=name)

    half = len(yt) // 2
    forget, retain = split(x[mask], y[mask], "forget"), split(x[~mask], y[~mask], "retain")
    test, val = split(xt[:half], yt[:half], "test"), split(xt[half:], yt[half:], "validation")
    model, _ = build_image_classifier("resnet", 10, 28, seed=0)
    original, _ = build_image_classifier("resnet", 10, 28, seed=1)
    args = UnlearningArguments.for_method(
        "finetune",
        output_dir=os.path.join(ROOT, "results", "cache", "scale-match"),
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
    )
    trainer = UnlearningTrainer(model, args, forget_dataset=forget, retain_dataset=retain, calibration_dataset=val)
    splits = {"forget": forget, "retain": retain, "test": test, "validation": val}
    worst, out = 0.0, {}
    for variant in ("standard", "reference"):
        full = unlearning_metrics(
            *(predict_splits(lambda s, m=m: trainer.predict_logits(m, s), splits) for m in (model, original)),
            variant=variant,
        )
        streamed = unlearning_metrics(
            trainer.predictions(model, test), trainer.predictions(original, test), variant=variant
        )
        worst = max(worst, max(abs(full[k] - streamed[k]) for k in full))
        out[variant] = {"logits_pipeline": full, "streaming": streamed}
    return {
        "matches_non_streaming": worst <= 1e-6,
        "max_abs_difference": worst,
        "rows": {k: len(v) for k, v in splits.items()},
        "metrics": out,
    }


def worker_vit(a):
    import torch
    from transformers import TrainerCallback, ViTConfig, ViTForImageClassification

    from hf_unlearn import UnlearningArguments, UnlearningTrainer
    from hf_unlearn.data.splits import ImageSplit, MixtureDataset, collate_rows
    from hf_unlearn.methods.lotus import lotus_targets, soft_cross_entropy

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    config = ViTConfig(
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        image_size=224,
        patch_size=16,
        num_labels=1000,
    )
    model = ViTForImageClassification(config).eval()
    params = sum(p.numel() for p in model.parameters())
    bs, steps = a.vit_batch, a.vit_steps
    # forget + 30 % of retain = bs * (steps + 1) mixture rows: one warm-up step, then `steps` timed steps
    n_forget = bs
    n_retain = int(round(bs * steps / 0.3)) + 2
    g = torch.Generator().manual_seed(0)

    def split(n, name):
        return ImageSplit(
            torch.randn(n, 3, 224, 224, generator=g), torch.randint(0, 1000, (n,), generator=g), name=name
        )

    forget, retain, calib = split(n_forget, "forget"), split(n_retain, "retain"), split(bs, "calibration")
    state0 = {k: v.clone() for k, v in model.state_dict().items()}

    class StepTimes(TrainerCallback):
        def __init__(self):
            self.ends = []

        def on_step_end(self, args, state, control, **kw):
            self.ends.append(time.perf_counter())

    def trainer_run():
        model.load_state_dict(state0)
        args = UnlearningArguments.for_method(
            "lotus",
            output_dir=os.path.join(ROOT, "results", "cache", "scale-vit"),
            use_cpu=True,
            report_to="none",
            save_strategy="no",
            disable_tqdm=True,
            per_device_train_batch_size=bs,
            num_train_epochs=1,
            logging_strategy="no",
            per_device_eval_batch_size=bs,
            seed=0,
            dataloader_num_workers=0,
        )
        timer = StepTimes()
        trainer = UnlearningTrainer(
            model,
            args,
            forget_dataset=forget,
            retain_dataset=retain,
            calibration_dataset=calib,
            method_config={"class_unlearning": True},
            callbacks=[timer],
        )
        trainer.train()
        mixture_rows = len(trainer.train_dataset)
        times = [
            b - a_ for a_, b in zip(timer.ends, timer.ends[1:], strict=False)
        ]  # step 1 also fills the teacher cache
        eval_split = retain.subset(range(a.eval_rows))
        start = time.perf_counter()
        trainer.summarize(trainer.model, eval_split, "retain", batch_size=bs)
        eval_s = time.perf_counter() - start
        del trainer
        gc.collect()
        return times, eval_s, mixture_rows

    def hand_run(mixture_rows):
        """The same LoTUS step written by hand as the reference does it: cached teacher logits, Gumbel targets,
        AdamW over every parameter (biases and norms decay too), no gradient clipping."""
        model.load_state_dict(state0)
        teacher = ViTForImageClassification(config).eval().requires_grad_(False)
        teacher.load_state_dict(state0)
        import random as pyrandom

        k = max(1, int(0.3 * len(retain)))
        r_idx = sorted(pyrandom.Random(0).sample(range(len(retain)), k))
        mixture = MixtureDataset(forget, retain, r_idx)
        with torch.inference_mode():
            rows = [
                collate_rows(mixture.__getitems__(list(range(i, min(i + bs, len(mixture))))))
                for i in range(0, len(mixture), bs)
            ]
            cache = torch.cat([teacher(pixel_values=r["pixel_values"]).logits.float() for r in rows])
        del teacher
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=5e-4)
        model.train()
        order = torch.randperm(len(mixture), generator=torch.Generator().manual_seed(0))
        ends = []
        for i in range(0, len(mixture), bs):
            idx = order[i : i + bs].tolist()
            batch = collate_rows(mixture.__getitems__(idx))
            targets = lotus_targets(cache[idx], batch["forget_flag"], 1.0)
            loss = soft_cross_entropy(model(pixel_values=batch["pixel_values"]).logits, targets)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            ends.append(time.perf_counter())
        model.eval()
        eval_split = retain.subset(range(a.eval_rows))
        start = time.perf_counter()
        with torch.inference_mode():
            for lo in range(0, a.eval_rows, bs):
                model(pixel_values=eval_split.pixel_values[lo : lo + bs]).logits.float()
        return [b - a_ for a_, b in zip(ends, ends[1:], strict=False)], time.perf_counter() - start

    rows = {}

    def trainer_variant():
        t_times, t_eval, rows["rows"] = trainer_run()
        return t_times, t_eval

    # the hand loop runs right after the Trainer, on the same rows
    runs = interleaved({"trainer": trainer_variant, "hand": lambda: hand_run(rows["rows"])}, a.vit_repeats)
    trainer_steps, hand_steps, trainer_eval, hand_eval, ratios, eval_ratios = [], [], [], [], [], []
    for rep, ((t_times, t_eval), (h_times, h_eval)) in enumerate(zip(runs["trainer"], runs["hand"], strict=True)):
        trainer_steps += t_times
        hand_steps += h_times
        trainer_eval.append(t_eval)
        hand_eval.append(h_eval)
        ratios.append(statistics.median(t_times) / statistics.median(h_times))
        eval_ratios.append(t_eval / h_eval)
        print(
            f"  vit rep {rep}: trainer {statistics.median(t_times):.2f} s/step, hand {statistics.median(h_times):.2f} "
            f"s/step, eval {t_eval:.2f} vs forward {h_eval:.2f} s, load {loadavg()}",
            file=sys.stderr,
            flush=True,
        )
    return {
        "params": params,
        "batch_size": bs,
        "steps": len(trainer_steps),
        "trainer_step_s": statistics.median(trainer_steps),
        "hand_step_s": statistics.median(hand_steps),
        "trainer_step_min_s": min(trainer_steps),
        "hand_step_min_s": min(hand_steps),
        "trainer_over_hand_loop": statistics.median(ratios),
        "trainer_over_hand_loop_per_repeat": ratios,
        "eval_rows": a.eval_rows,
        "trainer_eval_s": statistics.median(trainer_eval),
        "forward_eval_s": statistics.median(hand_eval),
        "eval_over_forward": statistics.median(eval_ratios),
        "eval_over_forward_per_repeat": eval_ratios,
        "repeats": a.vit_repeats,
        "threads": a.threads,
        "how": "LoTUS steps 2..N of one epoch through UnlearningTrainer (wall time between on_step_end events) vs the "
        "same steps in a hand loop; evaluation = trainer.summarize vs a bare inference_mode forward loop",
    }


WORKERS = {"selection": worker_selection, "evaluation": worker_evaluation, "match": worker_match, "vit": worker_vit}


def run_worker(name, a):
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--worker",
        name,
        "--rows",
        str(a.rows),
        "--classes",
        str(a.classes),
        "--threads",
        str(a.threads),
        "--vit_steps",
        str(a.vit_steps),
        "--vit_repeats",
        str(a.vit_repeats),
        "--vit_batch",
        str(a.vit_batch),
        "--eval_rows",
        str(a.eval_rows),
        "--fashion_train",
        str(a.fashion_train),
    ]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    sys.stderr.write(proc.stderr[-3000:] if proc.returncode else "")
    lines = [row for row in proc.stdout.splitlines() if row.startswith("{")]
    result = json.loads(lines[-1]) if proc.returncode == 0 and lines else {"error": proc.stderr[-3000:]}
    print(f"{name}: {time.perf_counter() - start:.0f} s, load {loadavg()}", flush=True)
    return result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer ViT repetitions and a Fashion-MNIST subset (<= 20 min)")
    p.add_argument("--out", default=os.path.join(ROOT, "results", "scale.json"))
    p.add_argument("--rows", type=int, default=IMAGENET_ROWS)
    p.add_argument("--classes", type=int, default=IMAGENET_CLASSES)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--vit_steps", type=int, default=None, help="timed LoTUS steps per repetition")
    p.add_argument("--vit_repeats", type=int, default=None)
    p.add_argument("--vit_batch", type=int, default=4)
    p.add_argument("--eval_rows", type=int, default=None, help="rows of the ViT evaluation pass")
    p.add_argument("--fashion_train", type=int, default=None)
    p.add_argument(
        "--parts",
        default="selection,evaluation,match,vit",
        help="comma-separated subset to (re)measure; the others are kept from an existing --out file",
    )
    p.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    a.vit_steps = a.vit_steps or (2 if a.quick else 6)
    a.vit_repeats = a.vit_repeats or (3 if a.quick else 5)
    a.eval_rows = a.eval_rows or (16 if a.quick else 64)
    a.fashion_train = a.fashion_train or (20_000 if a.quick else 60_000)
    if a.worker:
        print(json.dumps(WORKERS[a.worker](a), default=float))
        return 0

    t0 = time.perf_counter()
    load_start = loadavg()
    print(f"dataset: {build_dataset(a.rows, a.classes)} ({time.perf_counter() - t0:.0f} s)", flush=True)
    parts = [x for x in a.parts.split(",") if x]
    unknown = sorted(set(parts) - set(WORKERS))
    if unknown:
        p.error(f"unknown --parts {unknown}; choose from {sorted(WORKERS)}")
    result = {}
    if set(parts) != set(WORKERS) and os.path.isfile(a.out):
        with open(a.out) as f:
            result = json.load(f)
        result["evaluation"]["non_streaming_check"] = result["evaluation"].get("non_streaming_check", {})
    for name in parts:
        result[name] = run_worker(name, a)
        if name in ("selection", "evaluation", "vit"):
            result[name]["loadavg_after"] = loadavg()
    match = result.pop("match", None) or result.get("evaluation", {}).get("non_streaming_check", {})
    if "evaluation" in result:
        result["evaluation"]["matches_non_streaming"] = match.get("matches_non_streaming", False)
        result["evaluation"]["non_streaming_check"] = match
    import torch

    result["machine"] = {
        "cpus": os.cpu_count(),
        "torch_threads": a.threads,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "loadavg_start": load_start,
        "loadavg_end": loadavg(),
        "quick": a.quick,
        "parts_measured": parts,
        "total_s": time.perf_counter() - t0,
    }
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(result, f, indent=2, default=float)
    print(
        json.dumps(
            {k: {kk: vv for kk, vv in v.items() if not isinstance(vv, (dict, list))} for k, v in result.items()},
            indent=1,
            default=float,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
