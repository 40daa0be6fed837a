#!/usr/bin/env python
"""Engine x method, as measured: every registered method launched with 2 CPU processes under each CPU-capable config
of examples/accelerate/ (and fsdp.yaml, which falls back to DDP on CPU), 2 optimiser steps on the embedded ResNet.
The column ``fsdp.yaml+fsdp_on_cpu`` runs fsdp.yaml's FSDP2 plugin for real on the CPU processes
(scripts/fsdp_on_cpu.py: accelerate itself never does), so the parameters are DTensor shards while the model trains.

    python scripts/engine_matrix.py --out results/engine_matrix.json [--configs cpu.yaml ...] [--methods lotus ...]

Writes, per (config, method): exit code, "works" / "refuses" / "fails", the one-line refusal, the engine the run
recorded (metrics.json "run"."engine"), the world size each rank saw and the unlearned accuracies. DeepSpeed configs
need deepspeed importable (pip install "hf-unlearn[deepspeed]"); they are marked "skipped" otherwise. Slow
(~30 s a launch on 2 cores): a results script, not a test.
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FSDP_ON_CPU = "+fsdp_on_cpu"
CONFIGS = ["cpu.yaml", "deepspeed_zero2.yaml", "deepspeed_zero3.yaml", "fsdp.yaml", "fsdp.yaml" + FSDP_ON_CPU]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def driver_command(config, method, out, hist, *, launch=(), flags=(), env=None, port=None) -> tuple[list, dict]:
    """``accelerate launch --config_file examples/accelerate/<config>`` of tests/mp_driver.py on CPU processes (no
    visible GPU), on the embedded ResNet, writing ``out``; each rank dumps what it saw into ``hist``. ``launch`` are
    launcher flags, ``flags`` flags of the run (a later flag wins), ``env`` extra environment. Returns (command,
    environment); tests/test_launch_configs.py launches the same way."""
    full_env = dict(
        os.environ,
        CUDA_VISIBLE_DEVICES="",
        MP_HISTORY_DIR=str(hist),
        PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]),
        **(env or {}),
    )
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        os.path.join(ROOT, "examples", "accelerate", config),
        "--main_process_port",
        str(port or free_port()),
        *launch,
        os.path.join(ROOT, "tests", "mp_driver.py"),
        "--use_cpu",
        "--ddp_find_unused_parameters",
        "false",
        "--method",
        method,
        "--default_arch",
        "resnet",
        "--disable_tqdm",
        "true",
        "--output_dir",
        str(out),
        *flags,
    ]
    return cmd, full_env


def launch(config: str, method: str, work: str, steps: int, extra: list[str]) -> dict:
    out, hist = os.path.join(work, "out"), os.path.join(work, "hist")
    os.makedirs(hist, exist_ok=True)
    env = {}
    if config.endswith(FSDP_ON_CPU):
        config, env["MP_FSDP_ON_CPU"] = config[: -len(FSDP_ON_CPU)], "1"
    cmd, env = driver_command(
        config, method, out, hist, launch=("--num_processes", "2"), flags=("--max_steps", str(steps), *extra), env=env
    )
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, cwd=ROOT)
    row = {"rc": done.returncode, "wall_s": round(time.perf_counter() - start, 1)}
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    warnings = [line.strip() for line in done.stderr.splitlines() if "the configuration asks for" in line]
    ranks, shards = [], []
    for name in sorted(os.listdir(hist)):
        with open(os.path.join(hist, name)) as f:
            dumped = json.load(f)
        ranks.append(dumped["world_size"])
        shards.append(sum(1 for _, local in dumped.get("shards", {}).values() if local is not None))
    row["rank_world_sizes"] = ranks
    row["rank_sharded_parameters"] = shards  # parameters held as DTensor shards while training, per rank
    if warnings:
        row["warning"] = warnings[0]
    metrics_path = os.path.join(out, "metrics.json")
    if done.returncode == 0 and os.path.isfile(metrics_path):
        with open(metrics_path) as f:
            metrics = json.load(f)
        row["result"] = "works"
        row["engine"] = metrics["run"].get("engine")
        row["unlearned"] = {k: v for k, v in metrics["unlearned"].items() if k.startswith("acc_")}
    elif errors and "Traceback" not in done.stderr:  # the one-line refusal (accelerate exits 1 for a child's 2)
        row["result"], row["reason"] = "refuses", errors[0]
    else:
        row["result"], row["reason"] = "fails", (errors or done.stderr.strip().splitlines()[-1:] or [""])[0][-500:]
    return row


def main(argv=None) -> int:
    import hf_unlearn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/engine_matrix.json")
    parser.add_argument("--configs", nargs="*", default=CONFIGS)
    parser.add_argument("--methods", nargs="*", default=hf_unlearn.list_methods())
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more flags for scripts/unlearn.py")
    a = parser.parse_args(argv)
    has_deepspeed = importlib.util.find_spec("deepspeed") is not None
    table: dict = {}
    if os.path.isfile(a.out):
        with open(a.out) as f:
            table = json.load(f)  # add to an earlier run's rows
    for config in a.configs:
        for method in a.methods:
            if config.startswith("deepspeed") and not has_deepspeed:
                row = {"result": "skipped", "reason": "deepspeed is not installed"}
            else:
                with tempfile.TemporaryDirectory() as work:
                    row = launch(config, method, work, a.steps, a.extra)
            table.setdefault(config, {})[method] = row
            print(
                f"{config:24s} {method:14s} {row['result']:8s} {row.get('wall_s', '')} "
                f"{(row.get('engine') or {}).get('name', row.get('reason', ''))[:150]}",
                flush=True,
            )
            os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
            with open(a.out, "w") as f:
                json.dump(table, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
