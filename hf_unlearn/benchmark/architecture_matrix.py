"""Tiny random-weight image classifiers of every architecture hf-unlearn is tested on (the architecture matrix).

Every model type of transformers' ``MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES``, the extra classifier classes
(DeiT and LeViT with a distillation head, the Perceiver variants) and a list of timm models, each built from a
config small enough to run a few unlearning steps on 32-pixel images in about a second on a CPU. No weights are
downloaded. ``tests/test_architecture_matrix.py`` and ``scripts/architecture_matrix.py`` both build from here, so
the CI subset and the full sweep test the same models.

:func:`run_cell` runs one architecture x method cell the way a user's run goes: the model is saved with
``save_classifier`` and loaded back with ``load_classifier`` (the family adapter, the processor), the forget set is
chosen with ``select_forget``, and ``UnlearningTrainer`` takes two optimiser steps and one prediction pass.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ArchitectureCase",
    "CASES",
    "SKIPPED",
    "IMAGE_SIZE",
    "NUM_LABELS",
    "build",
    "tiny_image_dataset",
    "run_cell",
    "case_named",
    "render_supported_models",
]

IMAGE_SIZE = 32
NUM_LABELS = 3


@dataclass(frozen=True)
class ArchitectureCase:
    """One architecture of the matrix: a transformers model type (with its classifier class) or a timm model."""

    name: str  # the matrix's row label
    library: str  # "transformers" or "timm"
    model_type: str = ""  # transformers: the config's model_type
    model_class: str = ""  # transformers: the classifier class (default: the mapping's first)
    config: dict = field(
        default_factory=dict
    )  # overrides of the config's defaults (transformers) or create_model kwargs
    processor: str = ""  # transformers: the image processor class, where the mapping has none
    timm_name: str = ""  # timm: the model name


_VIT = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    image_size=IMAGE_SIZE,
    patch_size=8,
)
_HIER4 = dict(depths=[1, 1, 1, 1], hidden_sizes=[8, 16, 24, 32])
_SWIN = dict(image_size=IMAGE_SIZE, patch_size=4, embed_dim=16, depths=[1, 1], num_heads=[2, 2], window_size=4)
_SEGF = dict(
    depths=[1, 1, 1, 1], hidden_sizes=[8, 16, 24, 32], num_attention_heads=[1, 1, 1, 1], sr_ratios=[2, 1, 1, 1]
)
_CLIP = dict(
    vision_config=dict(_VIT, intermediate_size=64),
    text_config=dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, vocab_size=99),
)
_PERCEIVER = dict(
    num_latents=8,
    d_latents=32,
    d_model=32,
    num_self_attends_per_block=1,
    num_self_attention_heads=2,
    num_cross_attention_heads=1,
    image_size=IMAGE_SIZE,
)

#: transformers: model type -> (classifier class or "", config overrides, image processor class or "").
_TRANSFORMERS: dict[str, tuple[str, dict, str]] = {
    "beit": ("", dict(_VIT, use_auxiliary_head=False), ""),
    "bit": ("", dict(embedding_size=8, hidden_sizes=[8, 16, 24, 32], depths=[1, 1, 1, 1], num_groups=4), ""),
    "clip": ("", _CLIP, ""),
    "convnext": ("", dict(_HIER4, image_size=IMAGE_SIZE), ""),
    "convnextv2": ("", dict(_HIER4, image_size=IMAGE_SIZE), ""),
    # depth[i] > i: CvtStage indexes its drop-path rates by its stage number
    "cvt": ("", dict(embed_dim=[16, 24, 32], num_heads=[1, 2, 2], depth=[1, 2, 3]), ""),
    "data2vec-vision": ("", dict(_VIT, use_auxiliary_head=False), ""),
    "deit": ("DeiTForImageClassification", _VIT, ""),
    "deit_teacher": ("DeiTForImageClassificationWithTeacher", _VIT, ""),
    "dinat": ("", dict(embed_dim=16, depths=[1, 1], num_heads=[2, 2], kernel_size=3), ""),
    "dinov2": ("", dict(_VIT, mlp_ratio=2), ""),
    "dinov2_with_registers": ("", dict(_VIT, mlp_ratio=2), "BitImageProcessor"),
    "donut-swin": ("", _SWIN, ""),
    "efficientnet": (
        "",
        dict(image_size=IMAGE_SIZE, width_coefficient=0.25, depth_coefficient=0.25, hidden_dim=320),
        "",
    ),
    "focalnet": ("", dict(image_size=IMAGE_SIZE, embed_dim=16, depths=[1, 1], hidden_sizes=[16, 32]), ""),
    "hgnet_v2": (
        "",
        dict(
            stem_channels=[3, 8, 8],
            stage_in_channels=[8, 16, 24, 32],
            stage_mid_channels=[8, 8, 8, 8],
            stage_out_channels=[16, 24, 32, 32],
            hidden_sizes=[16, 24, 32, 32],
            embedding_size=8,
        ),
        "BitImageProcessor",
    ),
    "hiera": (
        "",
        dict(
            image_size=[IMAGE_SIZE, IMAGE_SIZE],
            embed_dim=16,
            depths=[1, 1, 1, 1],
            num_heads=[1, 1, 1, 1],
            num_query_pool=2,
        ),
        "",
    ),
    "ijepa": ("", _VIT, ""),
    "imagegpt": ("", dict(n_embd=32, n_layer=1, n_head=2, n_positions=64, vocab_size=513), ""),
    "levit": (
        "LevitForImageClassification",
        dict(
            image_size=IMAGE_SIZE,
            hidden_sizes=[16, 24, 32],
            num_attention_heads=[1, 1, 1],
            depths=[1, 1, 1],
            key_dim=[8, 8, 8],
            patch_size=16,
        ),
        "",
    ),
    "levit_teacher": (
        "LevitForImageClassificationWithTeacher",
        dict(
            image_size=IMAGE_SIZE,
            hidden_sizes=[16, 24, 32],
            num_attention_heads=[1, 1, 1],
            depths=[1, 1, 1],
            key_dim=[8, 8, 8],
            patch_size=16,
        ),
        "",
    ),
    "metaclip_2": ("", _CLIP, ""),
    "mobilenet_v1": ("", dict(image_size=IMAGE_SIZE, depth_multiplier=0.25), ""),
    "mobilenet_v2": ("", dict(image_size=IMAGE_SIZE, depth_multiplier=0.25), ""),
    "mobilevit": (
        "",
        dict(image_size=IMAGE_SIZE, hidden_sizes=[16, 24, 32], neck_hidden_sizes=[8, 8, 16, 16, 24, 24, 32]),
        "",
    ),
    # output_stride 16: at 32 px the last stage keeps a 2 x 2 map for its 2 x 2 patches (a 1 x 1 map cannot unfold)
    "mobilevitv2": ("", dict(image_size=IMAGE_SIZE, width_multiplier=0.25, output_stride=16), ""),
    "perceiver": ("PerceiverForImageClassificationLearned", _PERCEIVER, ""),
    "perceiver_fourier": ("PerceiverForImageClassificationFourier", _PERCEIVER, ""),
    "perceiver_conv": ("PerceiverForImageClassificationConvProcessing", _PERCEIVER, ""),
    "poolformer": ("", dict(_HIER4), ""),
    "pp_lcnet": ("", dict(scale=0.25, class_expand=32), ""),
    "pvt": ("", dict(_SEGF, image_size=IMAGE_SIZE, sequence_reduction_ratios=[2, 1, 1, 1]), ""),
    "pvt_v2": ("", dict(_SEGF, image_size=IMAGE_SIZE), ""),
    "regnet": ("", dict(embedding_size=8, hidden_sizes=[8, 16, 24, 32], depths=[1, 1, 1, 1], groups_width=8), ""),
    "resnet": ("", dict(embedding_size=8, hidden_sizes=[8, 16, 24, 32], depths=[1, 1, 1, 1], layer_type="basic"), ""),
    "segformer": ("", dict(_SEGF), ""),
    "shieldgemma2": ("", {}, ""),
    "siglip": ("", _CLIP, ""),
    "siglip2": ("", dict(_CLIP, vision_config=dict(_VIT, num_patches=16, patch_size=8)), ""),
    "swiftformer": ("", dict(image_size=IMAGE_SIZE, depths=[1, 1, 1, 1], embed_dims=[8, 16, 24, 32]), ""),
    "swin": ("", _SWIN, ""),
    "swinv2": ("", _SWIN, ""),
    "textnet": (
        "",
        dict(image_size=[IMAGE_SIZE, IMAGE_SIZE], stem_out_channels=8, hidden_sizes=[8, 8, 16, 24, 32]),
        "",
    ),
    "timm_wrapper": ("", dict(architecture="test_vit"), ""),
    "vit": ("", _VIT, ""),
    "vit_msn": ("", _VIT, ""),
}

#: timm models: the CNN, ViT, hierarchical, distilled and LeViT-like families (timm's own ``test_*`` models are
#: the tiny ones; the rest are shrunk with create_model kwargs).
_TIMM: dict[str, dict] = {
    "test_resnet": {},
    "test_efficientnet": {},
    "test_convnext": {},
    "test_vit": {},
    "deit_tiny_distilled_patch16_224": dict(img_size=IMAGE_SIZE, patch_size=8, embed_dim=32, depth=1, num_heads=2),
    "swin_tiny_patch4_window7_224": dict(
        img_size=IMAGE_SIZE, embed_dim=16, depths=(1, 1), num_heads=(1, 2), window_size=4
    ),
    "levit_128s": dict(img_size=IMAGE_SIZE, embed_dim=(16, 24, 32), key_dim=8, num_heads=(1, 1, 1), depth=(1, 1, 1)),
    "efficientvit_m0": dict(
        img_size=IMAGE_SIZE, embed_dim=(16, 24, 32), key_dim=(8, 8, 8), num_heads=(1, 1, 1), depth=(1, 1, 1)
    ),
    "efficientformerv2_s0": dict(img_size=IMAGE_SIZE, depths=(1, 1, 1, 1), embed_dims=(16, 24, 32, 48), num_vit=1),
    "tiny_vit_5m_224": dict(
        embed_dims=(16, 24, 32, 32), depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1), window_sizes=(2, 2, 2, 1)
    ),
}

#: Architectures the matrix cannot build here, with the reason (a case, not a failure of the library).
SKIPPED: dict[str, str] = {
    "dinat": "DiNAT needs the `natten` package (neighbourhood-attention kernels), which is not installed",
}


def _cases() -> list[ArchitectureCase]:
    out = []
    for name, (cls, config, processor) in _TRANSFORMERS.items():
        model_type = {"deit_teacher": "deit", "levit_teacher": "levit"}.get(
            name, name.split("_")[0] if name.startswith("perceiver") else name
        )
        out.append(ArchitectureCase(name, "transformers", model_type, cls, config, processor))
    out += [ArchitectureCase(f"timm/{n}", "timm", config=kw, timm_name=n) for n, kw in _TIMM.items()]
    return out


CASES: list[ArchitectureCase] = _cases()


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


def case_named(name: str) -> ArchitectureCase:
    return next(c for c in CASES if c.name == name)


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
        f"(`hf_unlearn/benchmark/architecture_matrix.py`), saved, loaded back and unlearned on {results['image_size']}-pixel "
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
