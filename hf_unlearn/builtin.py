"""The embedded default: scikit-learn's digits as a ``datasets`` image dataset, and originals trained here.

No model or dataset can be downloaded at run time, so the default job trains its own original classifier
(cached on disk once trained) on data that ships inside scikit-learn. The same helpers train the "gold"
(retrained-without-the-forget-set) models the benchmark compares against.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import time
from typing import Callable

import datasets
import numpy as np
import torch
import torch.nn.functional as F

from .splits import ImageSplit

__all__ = [
    "load_digits_dataset",
    "build_image_classifier",
    "train_classifier",
    "original_model",
    "cache_dir",
]

DIGITS_SPLIT_SEED = 0


def cache_dir() -> str:
    """Where trained originals and golds are cached (``$HF_UNLEARN_CACHE``, default ``~/.cache/hf_unlearn``)."""
    return os.environ.get("HF_UNLEARN_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "hf_unlearn"))


def load_digits_dataset(validation_fraction: float = 0.15, test_fraction: float = 0.15) -> datasets.DatasetDict:
    """scikit-learn's 1,797 8x8 digit images as a ``DatasetDict`` with ``train``/``validation``/``test``.

    Columns: ``id`` (``"digits-0000"``...), ``image`` (PIL grayscale), ``label`` (``ClassLabel`` "0".."9").
    The stratified split is fixed (seed 0) so ids and fingerprints are stable across runs.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = np.clip(digits.images * 16, 0, 255).astype(np.uint8)  # 0..16 -> 0..255
    labels = digits.target.astype(int)
    ids = np.array([f"digits-{i:04d}" for i in range(len(labels))])
    idx = np.arange(len(labels))
    train_idx, rest = train_test_split(idx, test_size=validation_fraction + test_fraction, stratify=labels,
                                       random_state=DIGITS_SPLIT_SEED)
    val_idx, test_idx = train_test_split(rest, test_size=test_fraction / (validation_fraction + test_fraction),
                                         stratify=labels[rest], random_state=DIGITS_SPLIT_SEED)
    features = datasets.Features({
        "id": datasets.Value("string"),
        "image": datasets.Image(),
        "label": datasets.ClassLabel(names=[str(d) for d in range(10)]),
    })

    def split(rows) -> datasets.Dataset:
        rows = np.sort(rows)
        return datasets.Dataset.from_dict(
            {"id": ids[rows].tolist(), "image": [_pil(images[i]) for i in rows], "label": labels[rows].tolist()},
            features=features,
            info=datasets.DatasetInfo(dataset_name="sklearn-digits", description="scikit-learn load_digits, 8x8",
                                      features=features),
        )

    return datasets.DatasetDict({"train": split(train_idx), "validation": split(val_idx), "test": split(test_idx)})


def _pil(array: np.ndarray):
    from PIL import Image

    return Image.fromarray(array, mode="L")


def build_image_classifier(arch: str, num_labels: int, image_size: int, num_channels: int = 1,
                           label_names: list[str] | None = None, seed: int = 0):
    """A small, freshly initialised HF classifier and its image processor.

    ``arch``: ``"resnet"`` (ResNetForImageClassification, ~0.3M parameters) or ``"vit"``
    (ViTForImageClassification, hidden 64, 4 layers, patch ``image_size // 4``).
    """
    from transformers import ResNetConfig, ResNetForImageClassification, ViTConfig, ViTForImageClassification, ViTImageProcessor

    torch.manual_seed(seed)
    names = label_names or [str(i) for i in range(num_labels)]
    label_maps = {"id2label": dict(enumerate(names)), "label2id": {n: i for i, n in enumerate(names)}}
    if arch == "resnet":
        config = ResNetConfig(num_channels=num_channels, embedding_size=16, hidden_sizes=[16, 32, 64, 128],
                              depths=[1, 1, 1, 1], layer_type="basic", downsample_in_first_stage=False,
                              num_labels=num_labels, **label_maps)
        model = ResNetForImageClassification(config)
    elif arch == "vit":
        config = ViTConfig(image_size=image_size, patch_size=max(1, image_size // 4), num_channels=num_channels,
                           hidden_size=64, num_hidden_layers=4, num_attention_heads=4, intermediate_size=128,
                           num_labels=num_labels, **label_maps)
        model = ViTForImageClassification(config)
    else:
        raise ValueError(f"unknown architecture {arch!r}; use 'resnet' or 'vit'.")
    processor = ViTImageProcessor(size={"height": image_size, "width": image_size}, image_mean=[0.5] * num_channels,
                                  image_std=[0.5] * num_channels, resample=2)
    return model, processor


def train_classifier(model: torch.nn.Module, split: ImageSplit, *, epochs: int, learning_rate: float = 2e-3,
                     batch_size: int = 64, seed: int = 0, weight_decay: float = 5e-4,
                     progress: Callable[[str], None] | None = None, progress_bar: bool = False,
                     description: str = "training") -> float:
    """Train ``model`` on a materialised split with AdamW + cosine decay; returns the wall time in seconds.

    A plain loop over tensors: this trains the originals and golds the unlearning runs start from, so it
    must be fast and deterministic, not configurable. Progress, per epoch (mean loss and running training
    accuracy): a tqdm bar on stderr with ``progress_bar=True``, else one line per epoch through ``progress``;
    neither when both are off. Reporting never changes the result (no RNG is touched).
    """
    from .modeling import family_of
    from .norms import single_row_safe

    logits_of = family_of(model).logits
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
    steps = epochs * ((len(split) + batch_size - 1) // batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=learning_rate, total_steps=steps, pct_start=0.15)
    bar = None
    if progress_bar:
        from tqdm.auto import tqdm

        bar = tqdm(total=epochs, desc=description, unit="epoch")
    start = time.perf_counter()
    model.train()
    try:
        for epoch in range(epochs):
            order = torch.randperm(len(split), generator=generator)
            total, correct = 0.0, 0
            for begin in range(0, len(split), batch_size):
                rows = order[begin : begin + batch_size]
                labels = split.labels[rows]
                with single_row_safe(model, len(rows)):  # a last batch of one row (hf_unlearn.norms)
                    logits = logits_of(model, split.pixels(rows))
                loss = F.cross_entropy(logits, labels)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                total += loss.item() * len(rows)
                correct += int((logits.detach().argmax(-1) == labels).sum())
            loss_mean, accuracy = total / len(split), correct / len(split)
            if bar is not None:
                bar.set_postfix(loss=f"{loss_mean:.4f}", accuracy=f"{accuracy:.4f}", refresh=False)
                bar.update(1)
            elif progress:
                progress(f"{description}: epoch {epoch + 1}/{epochs}: loss {loss_mean:.4f}, "
                         f"train accuracy {accuracy:.4f}, {time.perf_counter() - start:.0f} s")
    finally:
        if bar is not None:
            bar.close()
    model.eval()
    return time.perf_counter() - start


@contextlib.contextmanager
def _transformers_bars(enabled: bool):
    """transformers' own progress bars (e.g. while saving) on or off for the duration, then as they were."""
    from transformers.utils import logging as hf_logging

    before = hf_logging.is_progress_bar_enabled()
    if before and not enabled:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if before and not enabled:
            hf_logging.enable_progress_bar()


#: Recipes for the embedded default's original model, per architecture: (image size, epochs, learning rate).
DIGITS_RECIPES = {"resnet": (8, 30, 3e-3), "vit": (16, 40, 2e-3)}


def original_model(arch: str = "resnet", seed: int = 0, *, dataset: datasets.DatasetDict | None = None,
                   progress: Callable[[str], None] | None = print, progress_bar: bool = False) -> str:
    """Path of the embedded default's original model (trained on digits' train split), training it once.

    While training (a few seconds to minutes, first run only) it reports each epoch's loss and training
    accuracy: as a tqdm bar with ``progress_bar=True``, else as lines through ``progress``; ``progress=None``
    is quiet (no bar either).

    The result is an ordinary HF model directory (``config.json``, ``model.safetensors``,
    ``preprocessor_config.json``) loaded back through :func:`hf_unlearn.load_classifier`, like a Hub model.
    """
    from .modeling import save_classifier
    from .splits import to_image_split

    image_size, epochs, lr = DIGITS_RECIPES[arch]
    key = hashlib.sha256(json.dumps([arch, seed, image_size, epochs, lr, DIGITS_SPLIT_SEED]).encode()).hexdigest()[:12]
    path = os.path.join(cache_dir(), "originals", f"digits-{arch}-seed{seed}-{key}")
    if os.path.isfile(os.path.join(path, "model.safetensors")):
        return path
    dataset = dataset or load_digits_dataset()
    train = dataset["train"]
    names = train.features["label"].names
    model, processor = build_image_classifier(arch, len(names), image_size, label_names=names, seed=seed)
    transform = lambda batch: {"pixel_values": processor(images=batch["image"], return_tensors="pt")["pixel_values"],
                               "label": batch["label"]}
    split = to_image_split(train, transform, name="train")
    if progress:
        progress(f"training the embedded default's original model ({arch}, digits, {epochs} epochs; cached at {path})")
    seconds = train_classifier(model, split, epochs=epochs, learning_rate=lr, seed=seed, progress=progress,
                               progress_bar=progress_bar and progress is not None,
                               description=f"original {arch} (digits)")
    tmp = f"{path}.tmp-{os.getpid()}"  # per process: two runs sharing a cache never write the same folder
    try:
        with _transformers_bars(progress_bar and progress is not None):  # quiet: no "Writing model shards" bar
            save_classifier(model, tmp, processor)
        with open(os.path.join(tmp, "training.json"), "w") as f:
            json.dump({"arch": arch, "seed": seed, "epochs": epochs, "learning_rate": lr, "train_seconds": seconds,
                       "dataset": "sklearn-digits/train"}, f, indent=2)
        try:
            os.replace(tmp, path)  # atomic: a crash mid-training never leaves a half-written "original"
        except OSError:
            if not os.path.isfile(os.path.join(path, "model.safetensors")):
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another process finished the same (deterministic) original
    except BaseException as e:  # a full disk, a read-only cache, Ctrl-C: no half-written .tmp-PID folder is left
        shutil.rmtree(tmp, ignore_errors=True)
        full = any(m in str(e) for m in ("No space left on device", "StorageFull"))
        if isinstance(e, Exception) and (full or isinstance(e, OSError)) and not getattr(e, "filename", None):
            # safetensors reports a full disk without the path: name the cache folder being written
            code = errno.ENOSPC if full else (e.errno or errno.EIO)
            raise OSError(code, os.strerror(code), tmp) from e
        raise
    if progress:
        progress(f"trained the embedded default's original model in {seconds:.0f} s")
    return path
