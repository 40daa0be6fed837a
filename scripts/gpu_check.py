#!/usr/bin/env python
"""One-command GPU check: ViT-B/16 (random weights, 224 px) unlearning throughput under every engine.

    python scripts/gpu_check.py --out results/gpu_check.json

On a CUDA machine: LoTUS, plain finetune, SCRUB and SalUn on one GPU in bf16, then DDP (ddp.yaml), FSDP (fsdp.yaml)
and DeepSpeed ZeRO-2 (deepspeed_zero2.yaml, skipped when deepspeed is not installed) over all GPUs present. Prints,
per engine and method, images/s (training images over the wall time of the steps after the warm-up, epoch-end work
included), the throughput as a fraction of plain finetune's under the same engine, peak GPU memory, the engine the
run recorded, or the one-line refusal (SalUn masks gradient entries: refused under ZeRO, cut to each shard under
FSDP2). Every launch has a timeout, so it runs unattended in under 10 minutes; the JSON holds everything printed.

``--toy`` runs the same code on CPU with a tiny ViT, one process, float32 (tests/test_gpu_check.py).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METHODS = ["finetune", "lotus", "scrub", "salun"]
ENGINES = {"ddp": "ddp.yaml", "fsdp": "fsdp.yaml", "zero2": "deepspeed_zero2.yaml"}
SIZES = {  # ViT-B/16 as in the LoTUS paper's ImageNet setting; toy: seconds on CPU
    "vit-b16": dict(
        image_size=224,
        patch_size=16,
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
    ),
    "toy": dict(
        image_size=16, patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
    ),
}


def run_method(method: str, size: str, batch: int, steps: int, warmup: int, bf16: bool, use_cpu: bool) -> dict:
    """Unlearn a random ViT with ``method`` for ``steps`` optimiser steps in this process (any launcher)."""
    import torch
    from transformers import TrainerCallback, ViTConfig, ViTForImageClassification

    from hf_unlearn import UnlearningArguments, UnlearningTrainer
    from hf_unlearn.data.splits import ImageSplit

    config = ViTConfig(num_labels=10, **SIZES[size])
    torch.manual_seed(0)
    model = ViTForImageClassification(config)
    args = UnlearningArguments.for_method(
        method,
        output_dir=tempfile.mkdtemp(prefix="gpu_check-"),
        report_to="none",
        save_strategy="no",
        use_cpu=use_cpu,
        bf16=bf16,
        max_steps=steps,
        per_device_train_batch_size=batch,
        per_device_eval_batch_size=batch,
        logging_steps=10**6,
        disable_tqdm=True,
        seed=0,
        ddp_find_unused_parameters=False,
        dataloader_drop_last=True,
    )
    world = max(1, args.world_size)
    side = config.image_size
    generator = torch.Generator().manual_seed(0)

    def split(rows, name):
        return ImageSplit(
            torch.randn(rows, 3, side, side, generator=generator),
            torch.randint(0, 10, (rows,), generator=generator),
            name=name,
        )

    forget, retain = split(batch * world, "forget"), split(9 * batch * world, "retain")  # 10 % forgotten
    calibration = split(batch, "calibration")
    times: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, *a, **k):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            times.append(time.perf_counter())

    trainer = UnlearningTrainer(
        model,
        args,
        forget_dataset=forget,
        retain_dataset=retain,
        calibration_dataset=calibration,
        method=method,
        callbacks=[Clock()],
    )
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    measured = times[warmup:]
    seconds = measured[-1] - measured[0] if len(measured) > 1 else float("nan")
    images = (len(measured) - 1) * batch * world * args.gradient_accumulation_steps
    row = {
        "images_per_s": images / seconds if seconds > 0 else None,
        "steps_timed": len(measured) - 1,
        "world_size": world,
        "engine": trainer.run_record().engine,
    }
    if torch.cuda.is_available():
        row["peak_memory_gb"] = torch.cuda.max_memory_allocated() / 2**30
    else:
        import resource

        row["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return row, trainer.args.process_index


def worker(a) -> int:
    rows = {}
    rank = 0
    for method in a.methods:
        try:
            row, rank = run_method(method, a.size, a.batch, a.steps, a.warmup, a.bf16, a.use_cpu)
        except ValueError as e:  # a refusal before any work (one line)
            row = {"refused": str(e).splitlines()[0]}
        rows[method] = row
    if rank == 0:
        with open(a.worker_out, "w") as f:
            json.dump(rows, f)
    return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(engine: str, a, gpus: int, timeout: int) -> dict:
    out = tempfile.mktemp(suffix=".json")
    common = (
        [
            "--worker",
            "--worker_out",
            out,
            "--size",
            a.size,
            "--batch",
            str(a.batch),
            "--steps",
            str(a.steps),
            "--warmup",
            str(a.warmup),
            "--methods",
            *a.methods,
        ]
        + (["--bf16"] if a.bf16 else [])
        + (["--use_cpu"] if a.use_cpu else [])
    )
    if engine == "single" and a.toy:  # in this process: the CPU test pays no second interpreter start
        worker(argparse.Namespace(**{**vars(a), "worker_out": out}))
        cmd = None
    elif engine == "single":
        cmd = [sys.executable, os.path.abspath(__file__), *common]
    else:
        cmd = [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--config_file",
            os.path.join(ROOT, "examples", "accelerate", ENGINES[engine]),
            "--num_processes",
            str(gpus),
            "--main_process_port",
            str(free_port()),
            "--mixed_precision",
            "bf16" if a.bf16 else "no",
            os.path.abspath(__file__),
            *common,
        ]
    start = time.perf_counter()
    if cmd is not None:
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {timeout} s"}
        if done.returncode != 0 or not os.path.isfile(out):
            return {"error": (done.stderr.strip().splitlines() or ["(no output)"])[-1][-400:]}
    with open(out) as f:
        rows = json.load(f)
    os.remove(out)
    base = (rows.get("finetune") or {}).get("images_per_s")
    for row in rows.values():
        if row.get("images_per_s") and base:
            row["fraction_of_finetune"] = row["images_per_s"] / base
    return {"wall_s": round(time.perf_counter() - start, 1), "methods": rows}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="results/gpu_check.json")
    p.add_argument("--toy", action="store_true", help="tiny ViT, one CPU process, float32 (the CPU test)")
    p.add_argument("--engines", nargs="*", default=["single", *ENGINES])
    p.add_argument("--methods", nargs="*", default=METHODS)
    p.add_argument("--size", default="vit-b16", choices=sorted(SIZES))
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=14)
    p.add_argument("--warmup", type=int, default=4, help="steps not timed (teacher cache fill, compilation)")
    p.add_argument("--timeout", type=int, default=120, help="seconds per launch (4 launches: under 10 minutes)")
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--use_cpu", action="store_true")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--worker_out", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        return worker(a)
    import torch

    gpus = torch.cuda.device_count()
    if a.toy:
        a.size, a.use_cpu, a.bf16, a.engines, a.batch = "toy", True, False, ["single"], min(a.batch, 8)
        a.steps, a.warmup = min(a.steps, 4), min(a.warmup, 1)
    elif gpus == 0:
        print(
            "error: no CUDA device: scripts/gpu_check.py runs on a GPU machine (--toy runs a tiny CPU version).",
            file=sys.stderr,
        )
        return 2
    else:
        a.bf16 = True
    report = {
        "size": a.size,
        "batch_per_device": a.batch,
        "steps": a.steps,
        "warmup": a.warmup,
        "gpus": gpus,
        "device": torch.cuda.get_device_name(0) if gpus else "cpu",
        "engines": {},
    }
    for engine in a.engines:
        if engine == "zero2" and importlib.util.find_spec("deepspeed") is None:
            result = {"skipped": "deepspeed is not installed (pip install 'hf-unlearn[deepspeed]')"}
        else:
            result = launch(engine, a, max(gpus, 1), a.timeout)
        report["engines"][engine] = result
        for method, row in (result.get("methods") or {}).items():
            mem = row.get("peak_memory_gb", row.get("peak_rss_gb"))
            print(
                f"{engine:7s} {method:9s} "
                + (
                    f"refused: {row['refused']}"
                    if "refused" in row
                    else f"{row['images_per_s'] or 0:9.1f} img/s  {row.get('fraction_of_finetune', float('nan')):5.2f}x "
                    f"finetune  peak {mem:6.2f} GB  {(row.get('engine') or {}).get('name')}"
                ),
                flush=True,
            )
        if "methods" not in result:
            print(f"{engine:7s} {result}", flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(report, f, indent=1)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
