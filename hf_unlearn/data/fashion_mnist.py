"""Fashion-MNIST from Debian's ``dataset-fashion-mnist`` package as a ``datasets.DatasetDict``.

Splits (SPEC §1.1 protocol, NOTES "memorisation gap"): ``train`` is a stratified ``train_size``-image subset of the
60,000 official training images (seed 0; a small subset lets a small model memorise it, which gives a CIFAR-like
train/test gap), ``validation`` and ``test`` are the official 10,000 test images split 50/50, stratified by label.
"""

from __future__ import annotations

import gzip
import os
import shutil
import struct
import subprocess

import numpy as np

__all__ = ["FASHION_MNIST_DIR", "FASHION_MNIST_LABELS", "ensure_fashion_mnist_files", "read_idx", "load_fashion_mnist"]

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_LABELS = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
SPLIT_SEED = 0


def _missing(root: str) -> list[str]:
    return [f for f in FILES.values() if not os.path.isfile(os.path.join(root, f))]


def ensure_fashion_mnist_files(root: str = FASHION_MNIST_DIR, install: bool = True) -> str:
    """Return ``root`` once the four IDX files are there, installing the Debian package if they are missing."""
    missing = _missing(root)
    if not missing:
        return root
    if not install or root != FASHION_MNIST_DIR:
        raise FileNotFoundError(f"Fashion-MNIST files missing under {root}: {missing}.")
    print(
        f"Fashion-MNIST files missing under {root}; installing the Debian package dataset-fashion-mnist ...",
        flush=True,
    )
    prefix = [] if os.geteuid() == 0 else (["sudo", "-n"] if shutil.which("sudo") else [])
    for cmd in (prefix + ["apt-get", "update"], prefix + ["apt-get", "install", "-y", "dataset-fashion-mnist"]):
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(
                f"could not install Fashion-MNIST: `{' '.join(cmd)}` exited {proc.returncode}:\n"
                f"{(proc.stderr or proc.stdout)[-2000:]}\nInstall it by hand (`apt-get update && apt-get install -y "
                f"dataset-fashion-mnist`, as root) or put the IDX files under {root}."
            )
    missing = _missing(root)
    if missing:
        raise RuntimeError(f"dataset-fashion-mnist installed but {missing} are still missing under {root}.")
    return root


def read_idx(path: str) -> np.ndarray:
    """Read a (gzipped) IDX file into a uint8 array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file.")
    shape = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_fashion_mnist(
    train_size: int | None = 10_000, seed: int = SPLIT_SEED, root: str = FASHION_MNIST_DIR, install: bool = True
):
    """Fashion-MNIST as a ``DatasetDict`` (``train`` / ``validation`` / ``test``; columns ``id``, ``image``, ``label``).

    ``train_size``: stratified subset of the 60,000 training images (``None`` or 60000: all of them).
    """
    import datasets
    from PIL import Image
    from sklearn.model_selection import train_test_split

    root = ensure_fashion_mnist_files(root, install=install)
    x_train, y_train = (
        read_idx(os.path.join(root, FILES["train_images"])),
        read_idx(os.path.join(root, FILES["train_labels"])),
    )
    x_test, y_test = (
        read_idx(os.path.join(root, FILES["test_images"])),
        read_idx(os.path.join(root, FILES["test_labels"])),
    )
    train_rows = np.arange(len(y_train))
    if train_size is not None and train_size < len(y_train):
        train_rows, _ = train_test_split(train_rows, train_size=train_size, stratify=y_train, random_state=seed)
        train_rows = np.sort(train_rows)
    val_rows, test_rows = train_test_split(np.arange(len(y_test)), test_size=0.5, stratify=y_test, random_state=seed)
    features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "image": datasets.Image(),
            "label": datasets.ClassLabel(names=FASHION_MNIST_LABELS),
        }
    )

    def split(x, y, rows, prefix):
        rows = np.sort(rows)
        return datasets.Dataset.from_dict(
            {
                "id": [f"{prefix}-{i:05d}" for i in rows],
                "image": [Image.fromarray(x[i], mode="L") for i in rows],
                "label": y[rows].astype(int).tolist(),
            },
            features=features,
            info=datasets.DatasetInfo(
                dataset_name="fashion-mnist",
                features=features,
                description=f"Fashion-MNIST (Debian dataset-fashion-mnist); train: stratified "
                f"{len(train_rows)}-image subset (seed {seed}); official test split 50/50 "
                f"into validation/test (stratified, seed {seed}).",
            ),
        )

    return datasets.DatasetDict(
        {
            "train": split(x_train, y_train, train_rows, "fmnist-train"),
            "validation": split(x_test, y_test, val_rows, "fmnist-test"),
            "test": split(x_test, y_test, test_rows, "fmnist-test"),
        }
    )
