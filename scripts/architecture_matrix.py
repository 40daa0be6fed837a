#!/usr/bin/env python
"""The architecture matrix, in full: every architecture of hf_unlearn.benchmark.architecture_cases x every method.

Writes results/architecture_matrix.json and docs/SUPPORTED_MODELS.md (generated from it). Each cell saves a tiny
random-weight model with ``save_classifier``, loads it back with ``load_classifier`` and runs ``UnlearningTrainer``
for two steps on 32-pixel images (hf_unlearn.benchmark.architecture_matrix.run_cell). About 10 minutes on 2 cores; CI runs a
documented subset (tests/test_architecture_matrix.py).

    nice -n 10 python scripts/architecture_matrix.py [--only vit,levit] [--methods lotus,del] [--no_write]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated architecture names (default: all)")
    parser.add_argument("--methods", default="", help="comma-separated methods (default: all)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no_write", action="store_true", help="print only; write neither the JSON nor the doc")
    opts = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    warnings.filterwarnings("ignore")
    import timm
    import torch
    import transformers

    from hf_unlearn.benchmark.architecture_cases import CASES, IMAGE_SIZE
    from hf_unlearn.benchmark.architecture_matrix import render_supported_models, run_cell
    from hf_unlearn.methods.base import list_methods

    torch.set_num_threads(opts.threads)
    methods = opts.methods.split(",") if opts.methods else list_methods()
    if "lotus" in methods:  # the project's own method first
        methods = ["lotus"] + [m for m in methods if m != "lotus"]
    cases = [c for c in CASES if not opts.only or c.name in opts.only.split(",")]
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    # the code the cells run: taken before they start (an edit during the sweep is not in the results)
    dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", "hf_unlearn"))
    commit = git("rev-parse", "--short", "HEAD") + ("+uncommitted changes in hf_unlearn/" if dirty else "")
    rows, started = [], time.time()
    with tempfile.TemporaryDirectory() as work:
        for case in cases:
            cells = {}
            for method in methods:
                t0 = time.time()
                status, message = run_cell(case, method, work)
                message = message.replace(work + os.sep, "")  # the temporary checkpoint folder is not a result
                cells[method] = {"status": status, "message": message, "seconds": round(time.time() - t0, 2)}
                print(
                    f"{status:9s} {case.name:40s} {method:12s} {cells[method]['seconds']:5.1f}s {message[:160]}",
                    flush=True,
                )
            rows.append(
                {
                    "name": case.name,
                    "library": case.library,
                    "model_type": case.model_type,
                    "model_class": case.model_class,
                    "timm_name": case.timm_name,
                    "cells": cells,
                }
            )
    results = {
        "commit": commit,
        "versions": f"transformers {transformers.__version__}, timm {timm.__version__}, torch {torch.__version__}",
        "image_size": IMAGE_SIZE,
        "max_steps": 2,
        "methods": methods,
        "wall_seconds": round(time.time() - started, 1),
        "architectures": rows,
        "counts": {
            "architectures": len(rows),
            "all_methods": sum(all(a["cells"][m]["status"] == "supported" for m in methods) for a in rows),
            "lotus": sum(a["cells"].get("lotus", {}).get("status") == "supported" for a in rows),
            "refused": sorted(a["name"] for a in rows if a["cells"][methods[0]]["status"] == "refused"),
            "skipped": sorted(a["name"] for a in rows if a["cells"][methods[0]]["status"] == "skipped"),
            "failed_cells": sum(c["status"] == "failed" for a in rows for c in a["cells"].values()),
        },
    }
    print(json.dumps(results["counts"], indent=2))
    if opts.no_write:
        return
    with open(os.path.join(ROOT, "results", "architecture_matrix.json"), "w") as f:
        json.dump(results, f, indent=2)
        f.write("\n")
    with open(os.path.join(ROOT, "docs", "SUPPORTED_MODELS.md"), "w") as f:
        f.write(render_supported_models(results))


if __name__ == "__main__":
    main()
