"""Tiny random-weight image classifiers of every architecture hf-unlearn is tested on (the architecture matrix).

Every model type of transformers' ``MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES``, the extra classifier classes
(DeiT and LeViT with a distillation head, the Perceiver variants) and a list of timm models, each built from a
config small enough to run a few unlearning steps on 32-pixel images in about a second on a CPU. No weights are
downloaded. The cases and their configs are listed in :mod:`hf_unlearn.benchmark.architecture_cases`; this module
builds, saves and runs them. ``tests/test_architecture_matrix.py`` and ``scripts/architecture_matrix.py`` both build
from here, so the CI subset and the full sweep test the same models.

:func:`run_cell` runs one architecture x method cell the way a user's run goes: the model is saved with
``save_classifier`` and loaded back with ``load_classifier`` (the family adapter, the processor), the forget set is
chosen with ``select_forget``, and ``UnlearningTrainer`` takes two optimiser steps and one prediction pass.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from .architecture_cases import IMAGE_SIZE, NUM_LABELS, SKIPPED, ArchitectureCase

__all__ = [
    "build",
    "tiny_image_dataset",
    "run_cell",
    "render_supported_models",
]


def _processor(case: ArchitectureCase):
    import transformers
    from transformers.models.auto.image_processing_auto import IMAGE_PROCESSOR_MAPPING_NAMES

    name = case.processor
    if not name:
        names = IMAGE_PROCESSOR_MAPPING_NAMES.get(case.model_type) or {}
        name = names.get("pil") or next(iter(names.values()))
    cls = getattr(transformers, name)
    default, kwargs = cls(), {}
    # every processor at IMAGE_SIZE, whatever its size keys (passed to the constructor: it resolves them once)
    for attr in ("size", "crop_size"):
        size = getattr(default, attr, None)
        if size is not None:
            values = dataclasses.asdict(size) if dataclasses.is_dataclass(size) else dict(size)
            keys = {k for k, v in values.items() if v is not None}
            kwargs[attr] = (
                {"shortest_edge": IMAGE_SIZE}
                if "shortest_edge" in keys and attr == "size"
                else {"height": IMAGE_SIZE, "width": IMAGE_SIZE}
            )
    if getattr(default, "crop_pct", None) is not None:
        kwargs["crop_pct"] = 1.0
    if getattr(default, "max_num_patches", None) is not None:  # SigLIP2: patches of the tiny vision config
        kwargs.update(max_num_patches=(IMAGE_SIZE // 8) ** 2, patch_size=8)
    if case.model_type == "imagegpt":  # its processor quantises colours to these clusters (its vocabulary)
        import numpy as np

        kwargs["clusters"] = np.random.default_rng(0).uniform(-1, 1, (512, 3))
    processor = cls(**kwargs)
    return processor


def build(case: ArchitectureCase, seed: int = 0) -> tuple[Any, Any]:
    """``(model, processor)`` of ``case``: random weights drawn from ``seed``, NUM_LABELS classes; the processor is
    None for timm (timm's own transform is used)."""
    import torch

    torch.manual_seed(seed)
    if case.library == "timm":
        import timm

        model = timm.create_model(
            case.timm_name,
            pretrained=False,
            num_classes=NUM_LABELS,
            pretrained_cfg_overlay=dict(input_size=(3, IMAGE_SIZE, IMAGE_SIZE), crop_pct=1.0),
            **case.config,
        )
        return model, None
    import transformers
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES

    config = AutoConfig.for_model(case.model_type, **case.config)
    config.num_labels = NUM_LABELS
    cls_name = case.model_class or MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES[case.model_type]
    if isinstance(cls_name, (tuple, list)):
        cls_name = cls_name[0]
    model = getattr(transformers, cls_name)(config)
    if case.model_type == "timm_wrapper":  # its processor is rebuilt from config.json's pretrained_cfg when loaded
        processor = transformers.TimmWrapperImageProcessor(
            pretrained_cfg=dict(input_size=(3, IMAGE_SIZE, IMAGE_SIZE), crop_pct=1.0), architecture=config.architecture
        )
    else:
        processor = _processor(case)
    return model.eval(), processor


@functools.cache  # built once per process: every cell reads the same rows, none writes them
def tiny_image_dataset(rows: int = 12, seed: int = 0):
    """A ``datasets.Dataset`` of ``rows`` random 32 x 32 RGB images, labels 0..NUM_LABELS-1 in turn, and an id."""
    import datasets
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    images = [Image.fromarray(rng.integers(0, 256, (IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)) for _ in range(rows)]
    features = datasets.Features(
        {"image": datasets.Image(), "label": datasets.ClassLabel(NUM_LABELS), "id": datasets.Value("int64")}
    )
    return datasets.Dataset.from_dict(
        {"image": images, "label": [i % NUM_LABELS for i in range(rows)], "id": list(range(rows))}, features=features
    )


def save_case(case: ArchitectureCase, directory: str, seed: int = 0) -> str:
    """Write ``case`` as a checkpoint directory (``save_classifier``), as a user's saved model would be. An
    architecture hf-unlearn refuses gets its config only: the refusal must come before any weights are read."""
    import os

    from ..modeling.architectures import refusal_reason

    os.makedirs(directory, exist_ok=True)
    if case.library == "transformers" and refusal_reason(case.model_type):
        from transformers import AutoConfig

        AutoConfig.for_model(case.model_type, **case.config).save_pretrained(directory)
        return directory
    from ..modeling.classifiers import save_classifier

    model, processor = build(case, seed)
    save_classifier(model, directory, processor)
    return directory


def run_cell(case: ArchitectureCase, method: str, workdir: str, *, max_steps: int = 2) -> tuple[str, str]:
    """``("supported", "")``, ``("refused", the one-line message)``, ``("skipped", reason)`` or ``("failed",
    "<error type>: <first line>")`` for ``method`` on ``case``: 12 images, ``max_steps`` steps of batch 3, so every
    gradient pass over the 6 forget rows spans two batches. (At batch 2, LeViT's last BatchNorm normalises 2 values,
    one token per image, and SalUn's logits overflowed on 2 threads: a tiny-config artefact, not a library fault.)"""
    import os

    import torch

    if case.name in SKIPPED:
        return "skipped", SKIPPED[case.name]
    from .. import UnlearningArguments, UnlearningTrainer, load_classifier, select_forget

    path = os.path.join(workdir, case.name.replace("/", "--"))
    if not os.path.isdir(path):
        save_case(case, path)
    try:
        loaded = load_classifier(path)
    except ValueError as e:
        return "refused", str(e)
    try:
        train = tiny_image_dataset(12)
        split = select_forget(train, indices=[0, 1, 2, 3, 4, 5], id_column="id", num_labels=NUM_LABELS)
        args = UnlearningArguments.for_method(
            method,
            output_dir=os.path.join(workdir, "out"),
            max_steps=max_steps,
            per_device_train_batch_size=3,
            per_device_eval_batch_size=3,
            use_cpu=True,
            report_to="none",
            save_strategy="no",
            disable_tqdm=True,
            logging_steps=1000,
            seed=0,
        )
        trainer = UnlearningTrainer(
            loaded.model,
            args,
            forget_dataset=split.forget,
            retain_dataset=split.retain,
            calibration_dataset=tiny_image_dataset(6, seed=1),
            image_transform=loaded.transform,
            removal_record=split.record,
        )
        trainer.train()
        with torch.no_grad():
            logits = trainer.logits(trainer.model.eval(), trainer.forget_split.pixels([0, 1]))
        if logits.shape != (2, NUM_LABELS) or not torch.isfinite(logits).all():
            return "failed", f"unusable logits after unlearning (shape {tuple(logits.shape)})"
    except ValueError as e:  # a refusal by the trainer (before any work) is a one-line ValueError too
        if "hf-unlearn cannot" in str(e):
            return "refused", str(e)
        return "failed", f"{type(e).__name__}: {(str(e).splitlines() or [''])[0]}"
    except Exception as e:
        return "failed", f"{type(e).__name__}: {(str(e).splitlines() or [''])[0]}"
    return "supported", ""


_MARK = {"supported": "✓", "refused": "refused", "skipped": "skipped", "failed": "**failed**"}


def render_supported_models(results: dict) -> str:
    """docs/SUPPORTED_MODELS.md from ``results/architecture_matrix.json`` (scripts/architecture_matrix.py)."""
    methods, rows = results["methods"], results["architectures"]
    full = [a for a in rows if all(a["cells"][m]["status"] == "supported" for m in methods)]
    lines = [
        "# Supported models",
        "",
        "<!-- generated by scripts/architecture_matrix.py from results/architecture_matrix.json; do not edit -->",
        "",
        f"**{len(full)} of {len(rows)} architectures pass all {len(methods)} methods.** Every model type of "
        "transformers' `MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES`, the extra classifier classes (DeiT and LeViT "
        "with a distillation head, the three Perceiver variants) and timm models of the CNN, ViT, hierarchical, "
        "distilled and LeViT-like families, each built from a tiny random-weight config "
        f"(`hf_unlearn/benchmark/architecture_cases.py`), saved, loaded back and unlearned on {results['image_size']}-pixel "
        f"images for {results['max_steps']} steps with every method (commit {results.get('commit', '?')}; "
        f"{results['versions']}).",
        "",
        "✓: the run trained and the model's logits were finite afterwards. refused: hf-unlearn stops before any "
        "work with the one-line reason below. skipped: the architecture cannot be built here (reason below). "
        "CI runs every architecture with LoTUS and a fixed rotation of the other methods "
        "(`tests/test_architecture_matrix.py`); `python scripts/architecture_matrix.py` runs all of them.",
        "",
        "| Architecture | " + " | ".join(methods) + " |",
        "|---|" + "---|" * len(methods),
    ]
    for a in rows:
        lines.append(f"| `{a['name']}` | " + " | ".join(_MARK[a["cells"][m]["status"]] for m in methods) + " |")
    notes = [
        (a["name"], a["cells"][m]["status"], a["cells"][m]["message"])
        for a in rows
        for m in methods[:1]
        if a["cells"][m]["status"] in ("refused", "skipped")
    ]
    failed = [
        (a["name"], m, a["cells"][m]["message"]) for a in rows for m in methods if a["cells"][m]["status"] == "failed"
    ]
    if notes:
        lines += ["", "## Refused and skipped", ""]
        lines += [f"* `{name}` ({status}): {message}" for name, status, message in notes]
    if failed:
        lines += ["", "## Failures", ""]
        lines += [f"* `{name}` × {method}: {message}" for name, method, message in failed]
    return "\n".join(lines) + "\n"
