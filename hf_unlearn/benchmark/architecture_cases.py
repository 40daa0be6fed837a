"""The cases of the architecture matrix: every architecture hf-unlearn is tested on, each with a tiny config.

:class:`ArchitectureCase` rows for every model type of transformers' ``MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES``,
the extra classifier classes (DeiT and LeViT with a distillation head, the Perceiver variants) and a list of timm
models, each with config overrides small enough to run a few unlearning steps on ``IMAGE_SIZE``-pixel images in
about a second on a CPU; ``CASES`` in matrix order, ``SKIPPED`` (what cannot be built here, and why) and
:func:`case_named`. It is plain data, separate from :mod:`hf_unlearn.benchmark.architecture_matrix` (which builds,
saves and runs a case), so that adding or shrinking an architecture touches this catalogue only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ArchitectureCase", "CASES", "SKIPPED", "IMAGE_SIZE", "NUM_LABELS", "case_named"]

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
_LEVIT = dict(
    image_size=IMAGE_SIZE,
    hidden_sizes=[16, 24, 32],
    num_attention_heads=[1, 1, 1],
    depths=[1, 1, 1],
    key_dim=[8, 8, 8],
    patch_size=16,
)
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
        _LEVIT,
        "",
    ),
    "levit_teacher": (
        "LevitForImageClassificationWithTeacher",
        _LEVIT,
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


def case_named(name: str) -> ArchitectureCase:
    return next(c for c in CASES if c.name == name)
