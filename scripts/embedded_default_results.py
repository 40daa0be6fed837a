#!/usr/bin/env python
"""The numbers the README quotes for its first command: ``results/embedded_default.json``.

Runs ``hf-unlearn unlearn --output_dir ... --overwrite_output_dir`` (the embedded default: the shipped digits ViT,
LoTUS, one CPU thread) in a fresh process with an empty ``HF_UNLEARN_CACHE``, under each ``OMP_NUM_THREADS`` given,
and records the metrics it prints (rounded to ``--decimals``; every thread count must agree) and each run's wall
time with the load average. ``tests/test_first_contact.py`` re-runs the command and checks it against this file.

    python scripts/embedded_default_results.py [--threads 1 2] [--output results/embedded_default.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
KEYS = ("acc_forget", "acc_retain", "acc_test", "acc_val", "mia", "mia_heldout", "rf_jsd", "avg_gap_estimate")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", nargs="+", default=["1", "2"])
    parser.add_argument("--decimals", type=int, default=3)
    parser.add_argument("--output", default=os.path.join(ROOT, "results", "embedded_default.json"))
    opts = parser.parse_args()
    runs, metrics = [], None
    for threads in opts.threads:
        with tempfile.TemporaryDirectory() as tmp:
            env = dict(
                os.environ,
                HF_UNLEARN_CACHE=os.path.join(tmp, "cache"),
                OMP_NUM_THREADS=threads,
                PYTHONPATH=os.path.abspath(ROOT),
            )
            env.pop("HF_UNLEARN_NUM_THREADS", None)
            out = os.path.join(tmp, "out")
            load = open("/proc/loadavg").read().split()[:3] if os.path.exists("/proc/loadavg") else None
            start = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "hf_unlearn", "unlearn", "--output_dir", out, "--overwrite_output_dir"],
                env=env,
                capture_output=True,
                text=True,
            )
            wall = time.perf_counter() - start
            if done.returncode != 0:
                sys.exit(f"the run failed under OMP_NUM_THREADS={threads}:\n{done.stderr[-3000:]}")
            with open(os.path.join(out, "metrics.json")) as f:
                saved = json.load(f)
            got = {c: {k: round(saved[c][k], opts.decimals) for k in KEYS} for c in ("original", "unlearned")}
            if metrics is not None and got != metrics:
                sys.exit(f"OMP_NUM_THREADS={threads} printed other numbers: {got} != {metrics}")
            metrics = got
            runs.append(
                {
                    "omp_num_threads": threads,
                    "wall_s": round(wall, 2),
                    "loadavg_before": load,
                    "unlearning_runtime_s": round(saved["unlearned"]["runtime_s"], 2),
                }
            )
            print(f"OMP_NUM_THREADS={threads}: {wall:.1f} s (load {load}); {got}")
    result = {
        "command": "hf-unlearn unlearn --output_dir outputs/default --overwrite_output_dir",
        "what": "the embedded default: the shipped digits ViT original, LoTUS (embedded preset), 10% of each "
        "class forgotten, one CPU thread",
        "decimals": opts.decimals,
        "metrics": metrics,
        "runs": runs,
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
    }
    with open(opts.output, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print(f"wrote {opts.output}")


if __name__ == "__main__":
    main()
