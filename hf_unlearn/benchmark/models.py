"""The benchmark's models and data of one (seed, family) cell: seeds derived for a purpose, the held-out partition
of a seed, and the Original / Gold trained with a recipe (or read from the cache). Used by hf_unlearn.benchmark.grid.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable

import torch

__all__ = ["derived_seed", "heldout_for_seed"]


def derived_seed(purpose: str, seed: int) -> int:
    """A seed in [0, 2**32) for ``purpose`` ("data", "heldout", ...) hashed from the run seed: seeds s and s + 1 give
    unrelated streams."""
    return int.from_bytes(hashlib.sha256(f"hf-unlearn/{purpose}/{int(seed)}".encode()).digest()[:4], "big")


def heldout_for_seed(data, seed: int) -> dict:
    """The validation and test splits of one seed: the pooled held-out rows (validation + test) partitioned anew,
    stratified by label, with the sizes of the given splits, from :func:`derived_seed` ``("heldout", seed)``."""
    import numpy as np
    from datasets import concatenate_datasets
    from sklearn.model_selection import train_test_split

    pool = concatenate_datasets([data["validation"], data["test"]])
    labels = np.asarray(pool["label"])
    val_rows, test_rows = train_test_split(
        np.arange(len(pool)), test_size=len(data["test"]), stratify=labels, random_state=derived_seed("heldout", seed)
    )
    return {
        "validation": pool.select(sorted(val_rows.tolist()), keep_in_memory=True),
        "test": pool.select(sorted(test_rows.tolist()), keep_in_memory=True),
    }


def _predict(model: torch.nn.Module, split, batch_size: int = 512) -> torch.Tensor:
    from ..modeling.classifiers import logits_of

    model.eval()
    with torch.inference_mode():
        return torch.cat([logits_of(model, px).float() for _, px, _ in split.batches(batch_size)])


def _train_or_load(kind: str, grid, family: str, seed: int, recipe: dict, split, say: Callable[[str], None]):
    """The original (``kind="original"``, trained on train) or gold (on retain) model, cached by its recipe."""
    from ..data.builtin import build_image_classifier, cache_dir, train_classifier
    from ..modeling.classifiers import load_classifier, save_classifier

    dataset, names, rule = grid.dataset, grid.names, grid.rule
    key_src = [kind, dataset, family, seed, recipe, rule if kind == "gold" else None, len(split)]
    if grid.cache_key is not None:  # a user's model and data: their identity (the built-in keys stay as they were)
        key_src.append(grid.cache_key)
    key = hashlib.sha256(json.dumps(key_src, sort_keys=True, default=str).encode()).hexdigest()[:12]
    tag = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{dataset}-{family}")[-80:]
    path = os.path.join(cache_dir(), "benchmark", f"{tag}-seed{seed}-{kind}-{key}")
    if os.path.isfile(os.path.join(path, "model.safetensors")):
        with open(os.path.join(path, "training.json")) as f:
            info = json.load(f)
        say(f"  {kind}: cached ({path})")
        return load_classifier(path).model.eval(), info
    if grid.build is None:
        model, processor = build_image_classifier(
            family, len(names), recipe["image_size"], label_names=names, seed=seed
        )
    else:
        model, processor = grid.build(family, recipe, names, seed)
    n_params = sum(p.numel() for p in model.parameters())
    say(
        f"  {kind}: training {family} ({n_params / 1e6:.2f}M params) on {len(split)} images, {recipe['epochs']} epochs ..."
    )
    seconds = train_classifier(
        model,
        split,
        epochs=recipe["epochs"],
        learning_rate=recipe["learning_rate"],
        batch_size=recipe["batch_size"],
        seed=seed,
    )
    info = {
        "kind": kind,
        "dataset": dataset,
        "family": family,
        "seed": seed,
        "recipe": recipe,
        "rule": rule,
        "train_rows": len(split),
        "train_seconds": seconds,
        "params": n_params,
        "loadavg": open("/proc/loadavg").read().split()[:3] if os.path.exists("/proc/loadavg") else None,
    }
    tmp = path + f".tmp{os.getpid()}"
    save_classifier(model, tmp, processor)
    with open(os.path.join(tmp, "training.json"), "w") as f:
        json.dump(info, f, indent=2)
    if os.path.isdir(path):
        import shutil

        shutil.rmtree(tmp)
    else:
        os.replace(tmp, path)
    say(f"  {kind}: trained in {seconds:.1f}s")
    return model.eval(), info


def _loadavg() -> list[str] | None:
    try:
        return open("/proc/loadavg").read().split()[:3]
    except OSError:
        return None


# ---------------------------------------------------------------------------------------------------------------


def _training_cost(info: dict, recipe: dict) -> dict:
    """Steps, examples and seconds of training an original or gold with ``recipe`` (the plain loop of
    builtin.train_classifier: every row once per epoch)."""
    rows, batch, epochs = info["train_rows"], recipe["batch_size"], recipe["epochs"]
    return {"steps": epochs * -(-rows // batch), "examples": epochs * rows, "seconds": info["train_seconds"]}
