"""What differs between image-classifier architectures, beyond the library they come from (hf_unlearn.modeling.classifiers).

* :func:`refusal_reason`: architectures hf-unlearn cannot unlearn, refused by name before any work;
* :func:`find_head` / :func:`output_heads`: the classification head / every output head (distilled models have two);
* :func:`drop_graph_caches`: tensors some attention layers cache outside training mode, dropped between gradient
  passes;
* :class:`PackedInputs`: processor outputs besides ``pixel_values`` that a model needs (SigLIP 2), carried as one
  tensor per row and handed to the model by the family adapter (:func:`processor_pixels`, :func:`input_layout`);
* :func:`write_pretrained_cfg`: the ``pretrained_cfg`` a saved ``timm_wrapper`` model needs for its processor.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = [
    "refusal_reason",
    "check_supported",
    "find_head",
    "output_heads",
    "drop_graph_caches",
    "timm_wrapper_pretrained_cfg",
    "write_pretrained_cfg",
    "PackedInputs",
    "processor_pixels",
    "input_layout",
    "set_input_layout",
]

#: transformers model types hf-unlearn refuses, and why (each classifier is called as ``model(pixel_values=...)``).
UNSUPPORTED: dict[str, str] = {
    "imagegpt": "ImageGPT classifies sequences of colour-cluster token ids (its processor returns input_ids, not "
    "pixel_values), and hf-unlearn feeds image classifiers pixel_values only",
    "shieldgemma2": "ShieldGemma 2 is a vision-language safety classifier that needs a text prompt (input_ids) with "
    "every image, and hf-unlearn feeds image classifiers pixel_values only",
}


def refusal_reason(model_type: str | None) -> str | None:
    """Why hf-unlearn cannot unlearn a model of this transformers ``model_type`` (None: it can)."""
    return UNSUPPORTED.get(model_type or "")


def check_supported(model_or_config: Any, name: str = "") -> None:
    """Raise a one-line ``ValueError`` naming the architecture when hf-unlearn cannot unlearn it: a known
    refusal, or a forward that takes no ``pixel_values`` at all."""
    model = getattr(model_or_config, "module", model_or_config)  # DDP
    config = getattr(model, "config", model)
    model_type = getattr(config, "model_type", None)
    where = f" ('{name}')" if name else ""
    reason = refusal_reason(model_type)
    if reason is None and isinstance(model, nn.Module) and hasattr(model, "config"):
        import inspect

        try:
            parameters = inspect.signature(model.forward).parameters
        except (TypeError, ValueError):
            parameters = {}
        if parameters and "pixel_values" not in parameters:
            reason = (
                f"{type(model).__name__}.forward takes no pixel_values, and hf-unlearn feeds image "
                "classifiers pixel_values only"
            )
    if reason:
        raise ValueError(
            f"hf-unlearn cannot unlearn the '{model_type}' architecture{where}: {reason}; use an "
            "image classifier called as model(pixel_values=...) (docs/SUPPORTED_MODELS.md lists them)."
        )


def _has_parameters(module) -> bool:
    return isinstance(module, nn.Module) and any(True for _ in module.parameters())


def find_head(model: nn.Module, num_labels) -> nn.Module | None:
    """The classification head of an (unwrapped) model, found structurally: the output embeddings, else a
    ``classifier`` / ``head`` / ``fc`` / ``mlp_head`` / ``heads`` child with parameters, else the last Linear layer
    with one output per class (``num_labels(model)``, which may raise ``ValueError``)."""
    get_out = getattr(model, "get_output_embeddings", None)
    if callable(get_out):
        try:
            head = get_out()
        except (NotImplementedError, AttributeError):
            head = None
        if _has_parameters(head):
            return head
    for attr in ("classifier", "head", "fc", "mlp_head", "heads"):
        head = getattr(model, attr, None)
        if _has_parameters(head):
            return head
    try:
        n_classes = num_labels(model)
    except ValueError:
        n_classes = None
    last = None
    for module in model.modules():
        if isinstance(module, nn.Linear) and (n_classes is None or module.out_features == n_classes):
            last = module
    return last


def _out_features(module: nn.Module) -> int | None:
    if isinstance(module, nn.Linear):
        return module.out_features
    last = None
    for sub in module.modules():
        if isinstance(sub, nn.Linear):
            last = sub.out_features
    return last


def output_heads(model: nn.Module, head: nn.Module | None) -> list[nn.Module]:
    """``head`` and every sibling that is another output head: a distilled model (DeiT / LeViT with teacher,
    SwiftFormer, timm ``*_distilled``, timm LeViT) averages a class head and a distillation head of the same type
    and size, found as children of the same parent module."""
    if head is None:
        return []
    heads = [head]
    size = _out_features(head)
    for parent in model.modules():
        children = list(parent.children())
        if not any(child is head for child in children):
            continue
        heads += [
            c
            for c in children
            if c is not head
            and type(c) is type(head)
            and size is not None
            and _out_features(c) == size
            and any(True for _ in c.parameters())
        ]
        break
    return heads


def drop_graph_caches(model: nn.Module) -> None:
    """Empty every dict attribute of a module that holds tensors with an autograd graph.

    LeViT, EfficientViT, EfficientFormer(V2) and TinyViT (transformers and timm) cache their attention-bias tensor
    whenever they are not training. Computed under ``enable_grad`` in eval mode, the cached tensor keeps the first
    batch's graph, and the second batch's backward fails ("backward through the graph a second time"). Dropping it
    makes the next forward recompute it; train / eval behaviour (BatchNorm, dropout) is untouched.
    """
    for module in model.modules():
        for value in vars(module).values():
            if (
                isinstance(value, dict)
                and value
                and any(isinstance(v, torch.Tensor) and v.grad_fn is not None for v in value.values())
            ):
                value.clear()


def timm_wrapper_pretrained_cfg(model: nn.Module, processor: Any = None) -> dict | None:
    """The ``pretrained_cfg`` to write into a ``timm_wrapper`` model's ``config.json`` (None: not one, or it has
    one). transformers builds a timm_wrapper's image processor from that entry alone (the processor's own
    ``save_pretrained`` writes nothing), so without it the saved model reloads with no processor. The timm model's
    data settings, overridden by the processor's where one is given."""
    config = getattr(model, "config", None)
    if getattr(config, "model_type", None) != "timm_wrapper" or getattr(config, "pretrained_cfg", None):
        return None
    timm_model = getattr(model, "timm_model", None)
    cfg = dict(getattr(timm_model, "pretrained_cfg", None) or {})
    cfg.update(getattr(processor, "data_config", None) or {})
    cfg.pop("num_classes", None)  # transformers keeps it at the root of config.json
    return {
        k: (list(v) if isinstance(v, tuple) else v)
        for k, v in cfg.items()
        if isinstance(v, (str, int, float, bool, list, tuple, type(None)))
    }


def write_pretrained_cfg(model: nn.Module, output_dir: str, processor: Any = None) -> None:
    """Add :func:`timm_wrapper_pretrained_cfg` to the ``config.json`` just saved in ``output_dir`` (when due)."""
    import json
    import os

    cfg = timm_wrapper_pretrained_cfg(getattr(model, "module", model), processor)
    path = os.path.join(output_dir, "config.json")
    if not cfg or not os.path.isfile(path):
        return
    with open(path) as f:
        config = json.load(f)
    config["pretrained_cfg"] = cfg
    with open(path, "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
        f.write("\n")


class PackedInputs:
    """Per-row model inputs (``pixel_values`` first, then other processor outputs the model's ``forward`` takes)
    packed into one float tensor of shape (rows, total), and back.

    Why: the data path indexes one tensor per row (materialised and lazy splits, the training mixture, the
    teacher-logit cache, streamed evaluation). Packed, SigLIP 2's ``spatial_shapes`` and ``pixel_attention_mask``
    travel every path with their image, unchanged and identically, and the family adapter unpacks them when it
    calls the model. Integer inputs are stored as floats (exact up to 2**24) and rounded back.
    """

    def __init__(self, layout: list[tuple[str, tuple[int, ...], torch.dtype]]):
        self.layout = layout
        self.sizes = [int(torch.Size(shape).numel()) for _, shape, _ in layout]

    @classmethod
    def from_outputs(cls, outputs, keys: list[str]) -> PackedInputs:
        return cls(
            [
                (k, tuple(torch.as_tensor(outputs[k]).shape[1:]), torch.as_tensor(outputs[k]).dtype)
                for k in ["pixel_values", *keys]
            ]
        )

    def pack(self, outputs) -> torch.Tensor:
        parts = []
        for name, shape, _ in self.layout:
            value = torch.as_tensor(outputs[name])
            if tuple(value.shape[1:]) != shape:
                raise ValueError(
                    f"the image processor's '{name}' has shape {tuple(value.shape[1:])} per image where "
                    f"the first images gave {shape}; resize the images to one size first."
                )
            parts.append(value.reshape(len(value), -1).float())
        return torch.cat(parts, dim=1)

    def unpack(self, packed: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {}
        for (name, shape, dtype), part in zip(
            self.layout, packed.reshape(len(packed), -1).split(self.sizes, dim=1), strict=False
        ):
            part = part.reshape(len(packed), *shape)
            # pixels keep the dtype they arrive in (autocast, bf16); integer inputs get theirs back
            out[name] = part if dtype.is_floating_point else part.round().to(dtype)
        return out

    def pixel_shape(self, rows: int) -> tuple[int, ...]:
        return (rows, *self.layout[0][1])

    def with_pixels(self, packed: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
        """``packed`` with its pixel values replaced by ``pixels`` (UNSIR's noise), the other inputs kept."""
        flat = packed.reshape(len(packed), -1)
        return torch.cat([pixels.reshape(len(pixels), -1).to(flat.dtype), flat[:, self.sizes[0] :]], dim=1)


_LAYOUT_ATTRIBUTE = "_hf_unlearn_input_layout"


def input_layout(model: nn.Module) -> PackedInputs | None:
    """The :class:`PackedInputs` of ``model``'s inputs (None: plain pixel values)."""
    return getattr(getattr(model, "module", model), _LAYOUT_ATTRIBUTE, None)


def set_input_layout(model: nn.Module, layout: PackedInputs | None) -> None:
    """Attach ``layout`` to the model (copies made with ``copy.deepcopy`` and ``fresh_model_like`` keep it)."""
    setattr(getattr(model, "module", model), _LAYOUT_ATTRIBUTE, layout)


def processor_pixels(processor: Any, model: nn.Module, channels: int):
    """``images -> tensor`` for a transformers image processor and its model: ``pixel_values``, packed with every
    other processor output the model's ``forward`` accepts (:class:`PackedInputs`, attached to ``model``)."""
    import inspect

    from PIL import Image

    from ..data.images import convert_image

    def run(images: list):
        return processor(images=[convert_image(im, channels) for im in images], return_tensors="pt")

    try:
        probe = run([Image.new("RGB", (64, 64))])  # which outputs, and their per-image shapes
    except Exception:  # a processor that cannot take the probe: plain pixel_values; real images fail by row later
        probe = {"pixel_values": None}
    if "pixel_values" not in probe:
        model_type = getattr(getattr(model, "config", None), "model_type", type(model).__name__)
        raise ValueError(
            f"hf-unlearn cannot unlearn the '{model_type}' architecture: its image processor returns "
            f"{sorted(probe)}, no pixel_values; use an image classifier whose processor returns them."
        )
    try:
        accepted = set(inspect.signature(getattr(model, "module", model).forward).parameters)
    except (TypeError, ValueError):
        accepted = set()
    extra = [k for k in probe if k != "pixel_values" and k in accepted]
    layout = PackedInputs.from_outputs(probe, extra) if extra else None
    set_input_layout(model, layout)

    def to_pixels(images: list) -> torch.Tensor:
        out = run(images)
        return layout.pack(out) if layout is not None else out["pixel_values"]

    return to_pixels
