#!/usr/bin/env python
"""Unlearn a forget set from an image classifier, measure it, and write a publishable output directory.

    accelerate launch scripts/unlearn.py --model_name_or_path google/vit-base-patch16-224 \\
        --dataset_name cifar10 --forget_fraction 0.1 --method lotus --output_dir runs/vit-c10

With no model or dataset flags it runs the embedded default: scikit-learn's digits, an original model
trained here (cached), 10% of each class forgotten with LoTUS. ``--method NAME --help`` lists that
method's own flags. Every flag of ``UnlearningArguments`` (i.e. of ``transformers.TrainingArguments``) works.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from hf_unlearn.cli.main import run_unlearning  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_unlearning(sys.argv[1:]))
