#!/usr/bin/env python
"""Regenerate the originals that ship inside the package (``hf_unlearn/originals/``) from their recipes.

The embedded default starts from these weights, so the first run trains nothing and every machine prints the
same numbers. They come from ``hf_unlearn.data.builtin.DIGITS_RECIPES`` (seed 0) with one torch thread, so a rerun on
the same machine writes the same bytes (training with another thread count or on another CPU may differ in the
last bits; that is why the weights are shipped rather than trained on first use).

    python scripts/make_originals.py [--arch vit resnet]

After changing a recipe, run this, re-run ``scripts/embedded_default_results.py`` (the README's numbers) and
commit both. Old folders (an older recipe's key) are removed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def main() -> None:
    from hf_unlearn.data import builtin

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--arch", nargs="+", default=sorted(builtin.DIGITS_RECIPES), choices=sorted(builtin.DIGITS_RECIPES)
    )
    opts = parser.parse_args()

    import torch

    torch.set_num_threads(1)  # one reduction order: reproducible on this machine
    os.makedirs(builtin.SHIPPED_ORIGINALS_DIR, exist_ok=True)
    with tempfile.TemporaryDirectory() as cache:
        os.environ["HF_UNLEARN_CACHE"] = cache
        for arch in opts.arch:
            trained = builtin.original_model(arch, seed=0, use_shipped=False)
            name = os.path.basename(trained)
            for old in os.listdir(builtin.SHIPPED_ORIGINALS_DIR):  # an older recipe's weights
                if old.startswith(f"digits-{arch}-seed0-") and old != name:
                    shutil.rmtree(os.path.join(builtin.SHIPPED_ORIGINALS_DIR, old))
            target = os.path.join(builtin.SHIPPED_ORIGINALS_DIR, name)
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(trained, target)
            size = sum(os.path.getsize(os.path.join(target, f)) for f in os.listdir(target))
            print(f"{arch}: {target} ({size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
