#!/usr/bin/env python
"""Speed, side by side in one run (issue 6 §3) -> results/speed.json.

(a) LoTUS through ``UnlearningTrainer`` vs a plain PyTorch loop written here that computes the same LoTUS loss
    (``lotus_targets`` + ``soft_cross_entropy``, same mixture rows, batch size, optimiser, per-epoch forget-accuracy
    pass and tau update): epoch-time ratio (target <= 1.05).
(b) LoTUS epoch time with the teacher-logit cache vs without (Trainer), and vs a plain cross-entropy epoch on the
    same rows (the physical floor: one forward + backward of the student per row, no teacher).
(t) Every teacher method (LoTUS, SCRUB, Bad Teacher) through the Trainer with the trainer's teacher-logit cache vs
    without (``cache_teacher_logits``), and vs a cross-entropy epoch through the same Trainer on the same rows
    (``speed_ce``, a finetune-like method registered here: the method's mixture, plain cross-entropy, no teacher).
    Target: cached epoch <= 1.1x the CE epoch. Ratios are taken per repeat (variants of one repeat run back to back)
    and reported as min and median over repeats.
(c) Peak memory of LoTUS vs plain finetuning through the Trainer: peak RSS of a fresh subprocess per method, read from
    /proc/self/status VmHWM after resetting it (``echo 5 > /proc/self/clear_refs``) once data and imports are loaded,
    reported as the peak and as the increase over the RSS just before training (``ru_maxrss`` is also recorded, but it
    cannot be reset and the imports of the CUDA torch build dominate it; tracemalloc does not see torch's C++ allocations).

Data: Fashion-MNIST (raw IDX arrays, 28x28, normalised to [-1, 1]): a ``--train_size`` subset with 10 % per class
forgotten; the mixture is the forget set + 30 % of the retain set (LoTUS defaults). Model: the benchmark's HF ResNet
(``build_image_classifier("resnet")``, freshly initialised: throughput does not depend on the weights).
LoTUS runs with ``class_unlearning=True`` here so that its early-stop rule never fires on the untrained model and
every run does the same number of epochs (the rule only changes whether an epoch happens, not its cost).
Epoch time = median over repeats of the median steady-state epoch (epochs 2..E; epoch 1 also pays one-off costs
such as filling the teacher cache, reported separately). All variants run interleaved, repeat by repeat, so a
load change on this shared machine hits them alike; the load average is recorded.

    python scripts/benchmark_speed.py [--epochs 4] [--repeats 3] [--threads 1] [--data digits] [--only_teachers]

``--data digits`` (scikit-learn's digits upsampled to 28x28) runs where the Fashion-MNIST files are not installed.
"""

import argparse
import json
import math
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))  # this checkout's hf_unlearn

import numpy as np
import torch
import torch.nn.functional as F
from interleaved_timing import interleaved, min_median


def loadavg():
    try:
        return open("/proc/loadavg").read().split()[:3]
    except OSError:
        return None


def build_data(train_size: int, seed: int = 0):
    from hf_unlearn.data.fashion_mnist import FASHION_MNIST_DIR, FILES, ensure_fashion_mnist_files, read_idx
    from hf_unlearn.data.splits import ImageSplit

    root = ensure_fashion_mnist_files(FASHION_MNIST_DIR)
    x = read_idx(os.path.join(root, FILES["train_images"]))
    y = read_idx(os.path.join(root, FILES["train_labels"])).astype(np.int64)
    xt = read_idx(os.path.join(root, FILES["test_images"]))[:2000]
    yt = read_idx(os.path.join(root, FILES["test_labels"]))[:2000].astype(np.int64)
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(y), train_size, replace=False))
    x, y = x[rows], y[rows]
    forget_rows = np.concatenate([np.flatnonzero(y == c)[: int(0.1 * (y == c).sum())] for c in range(10)])
    mask = np.zeros(len(y), bool)
    mask[forget_rows] = True

    def split(images, labels, name):
        px = torch.from_numpy(images).float().div(255).sub(0.5).div(0.5).unsqueeze(1).contiguous()
        return ImageSplit(px, torch.from_numpy(labels), name=name)

    return split(x[mask], y[mask], "forget"), split(x[~mask], y[~mask], "retain"), split(xt, yt, "calibration")


def build_digits_data(train_size: int, seed: int = 0):
    """scikit-learn's digits (shipped with it), bilinearly upsampled to 28x28 so the model does Fashion-MNIST's work."""
    from sklearn.datasets import load_digits

    from hf_unlearn.data.splits import ImageSplit

    d = load_digits()
    x = torch.from_numpy(d.images).float().div(16).sub(0.5).div(0.5).unsqueeze(1)
    x = F.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False).contiguous()
    y = torch.from_numpy(d.target).long()
    rows = torch.from_numpy(np.sort(np.random.default_rng(seed).permutation(len(y))))
    calib, rows = rows[:300], rows[300:][:train_size]
    forget_mask = torch.zeros(len(rows), dtype=torch.bool)
    for c in range(10):
        members = (y[rows] == c).nonzero(as_tuple=True)[0]
        forget_mask[members[: int(0.1 * len(members))]] = True
    split = lambda idx, name: ImageSplit(x[idx].contiguous(), y[idx], name=name)
    return split(rows[forget_mask], "forget"), split(rows[~forget_mask], "retain"), split(calib, "calibration")


def register_speed_ce():
    """``speed_ce``: cross-entropy on a teacher method's mixture (forget + a seeded retain fraction), no teacher."""
    from dataclasses import dataclass

    from hf_unlearn.methods.base import MixtureSpec, UnlearningMethod, get_method_class, list_methods, register_method

    if "speed_ce" in list_methods():
        return get_method_class("speed_ce")

    @dataclass
    class SpeedCEConfig:
        retain_subset_fraction: float = 1.0

    @register_method("speed_ce")
    class SpeedCE(UnlearningMethod):
        config_class = SpeedCEConfig
        # the teacher methods' optimiser setting (Adam(W), constant lr, no clipping): only the loss differs
        training_defaults = {
            "optim": "adamw_torch",
            "learning_rate": 1e-4,
            "weight_decay": 5e-4,
            "lr_scheduler_type": "constant",
            "warmup_steps": 0,
            "max_grad_norm": 0.0,
        }

        def mixture(self, trainer):
            n = len(trainer.retain_split)
            if self.config.retain_subset_fraction >= 1.0:
                return MixtureSpec(include_forget=True)
            k = max(1, math.floor(self.config.retain_subset_fraction * n))
            return MixtureSpec(
                include_forget=True, retain_indices=sorted(random.Random(trainer.args.seed).sample(range(n), k))
            )

        def compute_loss(self, trainer, model, inputs):
            return F.cross_entropy(trainer.logits(model, inputs["pixel_values"]).float(), inputs["labels"])

    return SpeedCE


def build_model(seed: int = 0):
    from hf_unlearn.data.builtin import build_image_classifier

    model, _ = build_image_classifier("resnet", 10, 28, seed=seed)
    return model


# ---- (a)/(b) through the Trainer -------------------------------------------------------------------------------
def trainer_run(method, forget, retain, calib, *, epochs, batch_size, seed, cache=True):
    from transformers import TrainerCallback

    from hf_unlearn import UnlearningArguments, UnlearningTrainer

    class EpochTimer(TrainerCallback):
        def __init__(self):
            self.times, self.t0 = [], None

        def on_epoch_begin(self, args, state, control, **kw):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, args, state, control, **kw):  # after the method's own on_epoch_end (forget-acc pass)
            self.times.append(time.perf_counter() - self.t0)

    timer = EpochTimer()
    if method == "lotus":
        config = {"class_unlearning": True, "cache_teacher_logits": cache}
    elif method in ("scrub", "bad_teacher"):
        config = {"cache_teacher_logits": cache}
    elif method.startswith("speed_ce"):  # speed_ce or speed_ce:<retain fraction>
        register_speed_ce()
        method, _, fraction = method.partition(":")
        config = {"retain_subset_fraction": float(fraction or 1.0)}
    else:
        config = None
    with tempfile.TemporaryDirectory() as tmp:
        args = UnlearningArguments.for_method(
            method,
            output_dir=tmp,
            report_to="none",
            save_strategy="no",
            logging_strategy="no",
            disable_tqdm=True,
            use_cpu=True,
            seed=seed,
            num_train_epochs=epochs,
            per_device_train_batch_size=batch_size,
        )
        trainer = UnlearningTrainer(
            build_model(seed),
            args,
            forget_dataset=forget,
            retain_dataset=retain,
            calibration_dataset=calib,
            method_config=config,
            callbacks=[timer],
        )
        t0 = time.perf_counter()
        trainer.train()
        total = time.perf_counter() - t0
    return {
        "epoch_s": timer.times,
        "total_s": total,
        "steps": trainer.state.global_step,
        "rows_per_epoch": len(trainer.train_dataset),
    }


# ---- (a)/(b) the plain loop -------------------------------------------------------------------------------------
def plain_run(forget, retain, calib, *, epochs, batch_size, seed, loss="lotus", alpha=2.0, lr=1e-4, weight_decay=5e-4):
    """The same LoTUS epoch written by hand (or plain cross-entropy on the same rows with ``loss="ce"``)."""
    import copy

    from hf_unlearn.methods.lotus import lotus_targets, soft_cross_entropy
    from hf_unlearn.modeling.classifiers import logits_of

    torch.manual_seed(seed)
    model = build_model(seed)
    k = max(1, math.floor(0.3 * len(retain)))
    r_idx = torch.tensor(sorted(random.Random(seed).sample(range(len(retain)), k)))
    pixels = torch.cat([forget.pixel_values, retain.pixel_values[r_idx]])
    labels = torch.cat([forget.labels, retain.labels[r_idx]])
    flags = torch.cat([torch.ones(len(forget), dtype=torch.long), torch.zeros(k, dtype=torch.long)])
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)

    def accuracy(m, split):
        m.eval()
        with torch.inference_mode():
            pred = torch.cat(
                [logits_of(m, split.pixel_values[i : i + 64]).argmax(-1) for i in range(0, len(split), 64)]
            )
        return (pred == split.labels).float().mean().item()

    times = []
    t_start = time.perf_counter()
    teacher_logits = None
    if loss == "lotus":
        teacher = copy.deepcopy(model).eval().requires_grad_(False)
        tau = math.exp(alpha * accuracy(model, forget))  # class_unlearning: calibration accuracy 0
    for epoch in range(epochs):
        t0 = time.perf_counter()
        if loss == "lotus" and teacher_logits is None:  # the cache, filled in the first epoch like the Trainer's
            with torch.inference_mode():
                teacher_logits = torch.cat(
                    [logits_of(teacher, pixels[i : i + 64]).float() for i in range(0, len(pixels), 64)]
                )
        model.train()
        for rows in torch.randperm(len(pixels)).split(batch_size):
            logits = logits_of(model, pixels[rows])
            if loss == "lotus":
                out = soft_cross_entropy(logits, lotus_targets(teacher_logits[rows], flags[rows], tau))
            else:
                out = F.cross_entropy(logits, labels[rows])
            opt.zero_grad(set_to_none=True)
            out.backward()
            opt.step()
            if not torch.isfinite(out.detach()):
                raise RuntimeError("non-finite loss")
        if loss == "lotus" and epoch + 1 < epochs:  # the per-epoch forget-accuracy pass and tau update
            tau = math.exp(alpha * accuracy(model, forget))
        times.append(time.perf_counter() - t0)
    return {"epoch_s": times, "total_s": time.perf_counter() - t_start, "rows_per_epoch": len(pixels)}


TEACHER_METHODS = ("lotus", "scrub", "bad_teacher")
CE_ROWS = {"mixture30": 0.3, "all": 1.0}  # the CE epoch's rows: forget + this fraction of retain
METHOD_ROWS = {"lotus": "mixture30", "bad_teacher": "mixture30", "scrub": "all"}


def steady(run):
    t = run["epoch_s"][1:] or run["epoch_s"]
    return statistics.median(t)


# ---- (c) memory, one subprocess per method ------------------------------------------------------------------------
def memory_child(method, train_size, epochs, batch_size, threads):
    torch.set_num_threads(threads)
    forget, retain, calib = build_data(train_size)
    build_model(0)
    import gc

    gc.collect()
    reset = _reset_peak_rss()
    base_rss, base_hwm = _status_kib("VmRSS"), _status_kib("VmHWM")
    base_maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    run = trainer_run(method, forget, retain, calib, epochs=epochs, batch_size=batch_size, seed=0)
    hwm = _status_kib("VmHWM")
    print(
        json.dumps(
            {
                "method": method,
                "peak_reset": reset,
                "rss_before_mib": base_rss / 1024,
                "hwm_before_mib": base_hwm / 1024,
                "peak_mib": hwm / 1024,
                "delta_mib": (hwm - base_rss) / 1024,
                "ru_maxrss_before_mib": base_maxrss / 1024,
                "ru_maxrss_after_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "rows_per_epoch": run["rows_per_epoch"],
                "steps": run["steps"],
            }
        )
    )


def _status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) so that imports and data loading do not mask training's peak."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train_size", type=int, default=10_000)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch_size", type=int, default=128)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--output", default="results/speed.json")
    p.add_argument("--skip_memory", action="store_true")
    p.add_argument("--data", choices=["fashion_mnist", "digits"], default="fashion_mnist")
    p.add_argument("--only_teachers", action="store_true", help="only (t): the teacher methods vs the CE epoch")
    p.add_argument("--_memory_child", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a._memory_child:
        return memory_child(a._memory_child, a.train_size, 1, a.batch_size, a.threads)
    torch.set_num_threads(a.threads)
    forget, retain, calib = (build_digits_data if a.data == "digits" else build_data)(a.train_size)
    print(
        f"speed: forget {len(forget)}, retain {len(retain)}, batch {a.batch_size}, {a.epochs} epochs x {a.repeats} "
        f"repeats, {a.threads} torch thread(s); load {loadavg()}",
        flush=True,
    )
    kw = dict(epochs=a.epochs, batch_size=a.batch_size, seed=0)
    variants = (
        {}
        if a.only_teachers
        else {
            "plain_lotus_cached": lambda: plain_run(forget, retain, calib, loss="lotus", **kw),
            "plain_ce_floor": lambda: plain_run(forget, retain, calib, loss="ce", **kw),
        }
    )
    # (t) each teacher method cached / uncached, and the CE epoch on its rows (LoTUS and Bad Teacher: forget + 30 %
    # of retain with the same seeded sample; SCRUB: forget + all of retain), all through the Trainer
    for method in TEACHER_METHODS:
        for cache in (True, False):
            variants[f"trainer_{method}_{'cached' if cache else 'uncached'}"] = lambda m=method, c=cache: trainer_run(
                m, forget, retain, calib, cache=c, **kw
            )
    for rows, fraction in CE_ROWS.items():
        variants[f"trainer_ce_{rows}"] = lambda f=fraction: trainer_run(f"speed_ce:{f}", forget, retain, calib, **kw)

    def report(rep, name, r):
        r["loadavg"] = loadavg()
        print(
            f"  repeat {rep + 1}/{a.repeats} {name:<24} steady epoch {steady(r):.3f}s  first {r['epoch_s'][0]:.3f}s  "
            f"(load {r['loadavg']})",
            flush=True,
        )

    runs = interleaved(variants, a.repeats, on_result=report)
    med = {k: statistics.median(steady(r) for r in v) for k, v in runs.items()}
    first = {k: statistics.median(r["epoch_s"][0] for r in v) for k, v in runs.items()}
    # per-repeat ratios (variants of one repeat ran back to back, so they saw similar load)
    rep_ratio = lambda x, y: [steady(rx) / steady(ry) for rx, ry in zip(runs[x], runs[y], strict=False)]
    teachers = {}
    for method in TEACHER_METHODS:
        ce = f"trainer_ce_{METHOD_ROWS[method]}"
        cached, uncached = f"trainer_{method}_cached", f"trainer_{method}_uncached"
        pairs = {
            "cached_over_ce": (cached, ce),
            "uncached_over_ce": (uncached, ce),
            "uncached_over_cached": (uncached, cached),
        }
        teachers[method] = {
            "ce_variant": ce,
            "rows_per_epoch": runs[cached][0]["rows_per_epoch"],
            "first_epoch_cached_over_ce": first[cached] / first[ce],
        }
        for name, (x, y) in pairs.items():
            teachers[method][name] = min_median(rep_ratio(x, y))
        teachers[method]["meets_1_1x_target"] = teachers[method]["cached_over_ce"]["median"] <= 1.1
        print(
            f"  {method:<12} cached/CE min {teachers[method]['cached_over_ce']['min']:.3f} median "
            f"{teachers[method]['cached_over_ce']['median']:.3f};  uncached/cached median "
            f"{teachers[method]['uncached_over_cached']['median']:.3f}",
            flush=True,
        )
    lotus_rows = runs["trainer_lotus_cached"][0]["rows_per_epoch"]
    result = {
        "setup": {
            "data": (
                "Fashion-MNIST subset (raw IDX, 28x28)"
                if a.data == "fashion_mnist"
                else "scikit-learn digits upsampled to 28x28"
            ),
            "train_size": a.train_size,
            "forget": len(forget),
            "retain": len(retain),
            "mixture_rows": lotus_rows,
            "batch_size": a.batch_size,
            "epochs": a.epochs,
            "repeats": a.repeats,
            "torch_threads": a.threads,
            "model": "HF ResNetForImageClassification via build_image_classifier('resnet', 10, 28)",
            "lotus_config": {"class_unlearning": True, "alpha": 2.0},
            "cpus": os.cpu_count(),
            "epoch_time": "median over repeats of the median of epochs 2..E (wall seconds)",
        },
        "epoch_s_median": med,
        "first_epoch_s_median": first,
        "ratios": {}
        if a.only_teachers
        else {
            "a_trainer_over_plain_lotus": med["trainer_lotus_cached"] / med["plain_lotus_cached"],
            "a_per_repeat": rep_ratio("trainer_lotus_cached", "plain_lotus_cached"),
            "b_uncached_over_cached": med["trainer_lotus_uncached"] / med["trainer_lotus_cached"],
            "b_cached_over_ce_floor": med["trainer_lotus_cached"] / med["plain_ce_floor"],
            "b_plain_lotus_over_ce_floor": med["plain_lotus_cached"] / med["plain_ce_floor"],
            "b_uncached_over_ce_floor": med["trainer_lotus_uncached"] / med["plain_ce_floor"],
        },
        "teacher_methods": {
            "how": "per repeat: steady epoch of the method (Trainer, cache on / off) over the steady "
            "epoch of speed_ce (Trainer, cross-entropy on the same rows); min and median over "
            "repeats. LoTUS' epoch includes its end-of-epoch forget-accuracy pass; target: "
            "cached <= 1.1x CE",
            **teachers,
        },
        "runs": runs,
    }
    if not a.skip_memory:
        mem = {}
        for method in ("lotus", "finetune"):
            out = subprocess.run(
                [
                    sys.executable,
                    os.path.abspath(__file__),
                    "--_memory_child",
                    method,
                    "--train_size",
                    str(a.train_size),
                    "--batch_size",
                    str(a.batch_size),
                    "--threads",
                    str(a.threads),
                ],
                capture_output=True,
                text=True,
            )
            line = [row for row in out.stdout.splitlines() if row.startswith("{")]
            mem[method] = json.loads(line[-1]) if line else {"error": out.stderr[-2000:]}
            print(f"  memory {method}: {mem[method]}", flush=True)
        result["memory"] = {
            "how": "peak RSS (VmHWM, reset via /proc/self/clear_refs after data+imports) in a fresh "
            "subprocess per method, 1 epoch through UnlearningTrainer; delta = peak - VmRSS just "
            "before the trainer is built",
            **mem,
        }
        if "delta_mib" in mem.get("lotus", {}) and "delta_mib" in mem.get("finetune", {}):
            result["ratios"]["c_peak_rss_lotus_over_finetune"] = mem["lotus"]["peak_mib"] / mem["finetune"]["peak_mib"]
            result["ratios"]["c_delta_rss_lotus_over_finetune"] = mem["lotus"]["delta_mib"] / max(
                mem["finetune"]["delta_mib"], 1e-9
            )
    result["loadavg_end"] = loadavg()
    os.makedirs(os.path.dirname(a.output) or ".", exist_ok=True)
    with open(a.output, "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps({k: result[k] for k in ("epoch_s_median", "first_epoch_s_median", "ratios")}, indent=1))
    print(json.dumps({m: {k: v for k, v in t.items() if k != "per_repeat"} for m, t in teachers.items()}, indent=1))
    print(f"wrote {a.output}")


if __name__ == "__main__":
    sys.exit(main())
