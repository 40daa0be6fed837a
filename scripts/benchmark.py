#!/usr/bin/env python
"""The benchmark (issue 6): the LoTUS paper's protocol, every registered method side by side.

    python scripts/benchmark.py --quick                       # digits, 1 seed, 3 method epochs (< 10 min)
    python scripts/benchmark.py --dataset fashion_mnist       # 10k Fashion-MNIST subset, ResNet + ViT, seeds 3407 13 12
    python scripts/benchmark.py --dataset digits --class_unlearning [--forget_class 3]

Writes results/<name>.json, results/<name>.md (paper layout) and results/<name>.png (Avg Gap vs runtime).
Originals and golds are cached under $HF_UNLEARN_CACHE/benchmark. See hf_unlearn/benchmark/protocol.py for the protocol.
"""

import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))  # a source checkout, uninstalled

from hf_unlearn.benchmark.command import main  # noqa: E402  (the flags and logic live there; `hf-unlearn benchmark`)

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], prog="scripts/benchmark.py"))
