#!/usr/bin/env python
"""FSDP2 x architecture, as measured: cells of the architecture matrix run under fsdp.yaml's FSDP2 plugin on CPU
processes (scripts/fsdp_on_cpu.py), each process training its shard of the same model.

    CUDA_VISIBLE_DEVICES="" accelerate launch --config_file examples/accelerate/fsdp.yaml --num_processes 2 \\
        scripts/fsdp_architectures.py --out results/fsdp_architectures.json [--cases ...] [--methods ...]

Every cell is hf_unlearn.benchmark.architecture_matrix.run_cell (12 random images, 2 optimiser steps, the Python
API); rank 0 writes each checkpoint before the others read it. Writes, per case and method, "supported" or the
failure, from every rank. Slow (~10 s a cell on 2 cores): a results script, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

CASES = ["resnet", "vit", "convnext", "swin", "deit", "timm/test_resnet", "timm/test_vit", "timm/test_convnext"]
METHODS = ["lotus", "salun", "del", "scrub"]


def main(argv=None) -> int:
    from fsdp_on_cpu import install_fsdp_on_cpu

    install_fsdp_on_cpu()
    import tempfile

    import torch.distributed as dist

    from hf_unlearn.benchmark.architecture_cases import case_named
    from hf_unlearn.benchmark.architecture_matrix import run_cell, save_case

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/fsdp_architectures.json")
    parser.add_argument("--cases", nargs="*", default=CASES)
    parser.add_argument("--methods", nargs="*", default=METHODS)
    a = parser.parse_args(argv)
    from accelerate import PartialState

    PartialState()  # the process group, before the first checkpoint is written (the barrier below needs it)
    rank = int(os.environ.get("RANK", "0"))
    work = os.path.join(tempfile.gettempdir(), f"hf_unlearn_fsdp_architectures_{os.environ.get('MASTER_PORT', '0')}")
    table: dict = {}
    for name in a.cases:
        case = case_named(name)
        if rank == 0:  # one writer: transformers' save_pretrained writes only on the main process once a group exists
            save_case(case, os.path.join(work, case.name.replace("/", "--")))
        if dist.is_initialized():
            dist.barrier()
        for method in a.methods:
            result = run_cell(case, method, work)
            table.setdefault(name, {})[method] = {"rank": rank, "result": result[0], "detail": result[1][:300]}
            print(f"rank {rank} {name:22s} {method:8s} {result[0]} {result[1][:120]}", flush=True)
    gathered = [None] * (dist.get_world_size() if dist.is_initialized() else 1)
    if dist.is_initialized():
        dist.all_gather_object(gathered, table)
    else:
        gathered = [table]
    if rank == 0:
        merged = {
            name: {m: [g[name][m]["result"] for g in gathered] for m in table[name]} for name in table
        }  # every rank's verdict per cell
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        with open(a.out, "w") as f:
            json.dump({"world_size": len(gathered), "engine": "FSDP2 (fsdp.yaml, bf16)", "cells": merged}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
