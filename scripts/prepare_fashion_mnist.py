#!/usr/bin/env python
"""Convert Debian's Fashion-MNIST IDX files into a ``datasets.DatasetDict`` saved to disk.

    python scripts/prepare_fashion_mnist.py --output_dir data/fashion-mnist-10k [--train_size 10000] [--seed 0]

Installs ``dataset-fashion-mnist`` (apt-get) when the files under /usr/share/datasets/fashion-mnist are missing.
The result loads with ``datasets.load_from_disk`` or ``scripts/unlearn.py --dataset_name <dir>``.
"""

import argparse
import sys

from hf_unlearn.data.fashion_mnist import FASHION_MNIST_DIR, load_fashion_mnist


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output_dir", default="data/fashion-mnist-10k")
    p.add_argument(
        "--train_size", type=int, default=10_000, help="stratified subset of the 60k train images (0 = all)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--root", default=FASHION_MNIST_DIR, help="folder with the IDX files")
    a = p.parse_args(argv)
    try:
        data = load_fashion_mnist(train_size=a.train_size or None, seed=a.seed, root=a.root)
    except (RuntimeError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    data.save_to_disk(a.output_dir)
    print({k: len(v) for k, v in data.items()}, "->", a.output_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
