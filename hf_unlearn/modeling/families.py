"""The model families behind :mod:`hf_unlearn.modeling.classifiers`: how one library's classifiers are called,
sized, saved and re-initialised.

:class:`ClassifierFamily` and its two implementations (:class:`TransformersFamily`, :class:`TimmFamily`), their
instances ``TIMM`` and ``TRANSFORMERS``, and :func:`family_of` / :func:`family_of_config`, which pick the family of
a model or of a saved ``config.json``. This is the one place that tells Hugging Face from timm. It is separate from
``classifiers.py``, which holds the public functions built on it (loading, logits, saving, seeded re-initialisation)
and re-exports these names, so that the per-library behaviour can be read and changed in one file.
"""

from __future__ import annotations

import copy
import json
import os

import torch
from torch import nn

from .reinit import _fresh_timm, _reinitialised_copy

__all__ = [
    "ClassifierFamily",
    "TransformersFamily",
    "TimmFamily",
    "TIMM",
    "TRANSFORMERS",
    "FAMILIES",
    "family_of",
    "family_of_config",
]

TIMM_PREFIXES = ("timm/", "hf-hub:", "local-dir:")


class ClassifierFamily:
    """How one model library's image classifiers are called, sized, saved and re-initialised.

    The one place that knows Hugging Face from timm: :func:`family_of` picks the family of a model (DDP-wrapped or
    not), :func:`family_of_config` the family of a saved ``config.json``; the trainer, the methods, the card and the
    embedded default ask the family instead of checking the library themselves.
    """

    #: the model card's ``library_name``
    library_name: str = ""

    def owns(self, model: nn.Module) -> bool:
        raise NotImplementedError

    def owns_config(self, config: dict) -> bool:
        """Whether ``config`` (a saved ``config.json``) was written by this library."""
        raise NotImplementedError

    def logits(self, model: nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def num_labels(self, model: nn.Module) -> int:
        model = _unwrap(model)
        config = getattr(model, "config", None)
        if config is not None and getattr(config, "num_labels", None):
            return int(config.num_labels)
        if getattr(model, "num_classes", None):
            return int(model.num_classes)
        raise ValueError(
            f"{type(model).__name__} has no classification head (no config.num_labels / num_classes); "
            "pass an image *classifier* (AutoModelForImageClassification or a timm model with num_classes > 0)."
        )

    def classifier_head(self, model: nn.Module) -> nn.Module | None:
        """The classification head (found structurally: never by names such as "fc", which would also catch a
        ViT's MLP ``fc1``/``fc2``); a distilled model's class head (:meth:`head_parameter_names` has both)."""
        from .architectures import find_head

        return find_head(_unwrap(model), self.num_labels)

    def head_parameter_names(self, model: nn.Module) -> set[str]:
        """Names (as in ``model.named_parameters()``, unwrapped) of every output head's parameters: both heads of
        a distilled model (hf_unlearn.modeling.architectures.output_heads)."""
        from .architectures import output_heads

        owned = {
            id(p) for head in output_heads(_unwrap(model), self.classifier_head(model)) for p in head.parameters()
        }
        return {n for n, p in _unwrap(model).named_parameters() if id(p) in owned}

    def fresh_like(self, model: nn.Module) -> nn.Module:
        """An untrained model of ``model``'s architecture, drawn from the global RNG (see :func:`fresh_model_like`)."""
        return _reinitialised_copy(model)

    def save(self, model: nn.Module, output_dir: str) -> None:
        """Write the model's weights (safetensors) and config to the existing directory ``output_dir``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class TransformersFamily(ClassifierFamily):
    """Hugging Face ``transformers`` classifiers, and any other model called as ``model(pixel_values=...)``."""

    library_name = "transformers"

    def owns(self, model: nn.Module) -> bool:
        return not TIMM.owns(model)

    def owns_config(self, config: dict) -> bool:
        return not TIMM.owns_config(config)

    def logits(self, model: nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
        from .architectures import input_layout

        layout = input_layout(model)  # other processor outputs packed behind the pixels (SigLIP 2)
        out = model(pixel_values=pixel_values) if layout is None else model(**layout.unpack(pixel_values))
        return out.logits if hasattr(out, "logits") else out[0]

    def fresh_like(self, model: nn.Module) -> nn.Module:
        cls = unsharded_class(model)
        if hasattr(model, "config") and hasattr(cls, "config_class"):
            return cls(copy.deepcopy(model.config))
        return _reinitialised_copy(model)

    def save(self, model: nn.Module, output_dir: str) -> None:
        _unwrap(model).save_pretrained(output_dir, safe_serialization=True)


class TimmFamily(ClassifierFamily):
    """``timm`` classifiers."""

    library_name = "timm"

    def owns(self, model: nn.Module) -> bool:
        model = _unwrap(model)
        return hasattr(model, "pretrained_cfg") or unsharded_class(model).__module__.startswith("timm.")

    def owns_config(self, config: dict) -> bool:
        """A ``timm.models.save_for_hf`` config (what the model card reports)."""
        return "architecture" in config and ("pretrained_cfg" in config or "num_features" in config)

    def owns_checkpoint(self, name_or_path: str) -> bool:
        """Whether :func:`load_classifier` loads ``name_or_path`` with timm: a timm Hub/local prefix, or a
        directory whose ``config.json`` has timm's ``architecture`` and no transformers ``model_type``."""
        if name_or_path.startswith(TIMM_PREFIXES):
            return True
        config = os.path.join(name_or_path, "config.json")
        if os.path.isfile(config):
            with open(config) as f:
                cfg = json.load(f)
            return "architecture" in cfg and "model_type" not in cfg  # timm's save_for_hf layout
        return False

    def logits(self, model: nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
        return model(pixel_values)

    def classifier_head(self, model: nn.Module) -> nn.Module | None:
        inner = _unwrap(model)
        if hasattr(inner, "get_classifier"):
            head = inner.get_classifier()
            for part in head if isinstance(head, tuple) else (head,):  # distilled: (head, head_dist)
                if _has_parameters(part):
                    return part
        return super().classifier_head(model)

    def fresh_like(self, model: nn.Module) -> nn.Module:
        return _fresh_timm(model)

    def save(self, model: nn.Module, output_dir: str) -> None:
        import timm

        timm.models.save_for_hf(_unwrap(model), output_dir, safe_serialization=True)


TIMM = TimmFamily()
TRANSFORMERS = TransformersFamily()
FAMILIES: tuple[ClassifierFamily, ...] = (TIMM, TRANSFORMERS)  # the first that owns a model wins


def family_of(model: nn.Module) -> ClassifierFamily:
    """The :class:`ClassifierFamily` of ``model`` (DDP-wrapped or not): timm, else transformers."""
    return TIMM if TIMM.owns(model) else TRANSFORMERS


def family_of_config(config: dict | None) -> ClassifierFamily:
    """The :class:`ClassifierFamily` that wrote a saved ``config.json`` (transformers unless timm's layout)."""
    return TIMM if TIMM.owns_config(config or {}) else TRANSFORMERS


def unsharded_class(model: nn.Module) -> type:
    """``model``'s own class: FSDP2's ``fully_shard`` swaps it for a generated subclass ``FSDP<Name>`` (defined in a
    torch module), which must not be instantiated for a fresh model nor read for the library that owns the model."""
    cls = type(model)
    try:
        from torch.distributed.fsdp import FSDPModule
    except ImportError:  # pragma: no cover
        return cls
    if not issubclass(cls, FSDPModule):
        return cls
    return next(c for c in cls.__mro__ if not issubclass(c, FSDPModule))


def _unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, "module", model)  # DDP


def _has_parameters(module) -> bool:
    return isinstance(module, nn.Module) and any(True for _ in module.parameters())
