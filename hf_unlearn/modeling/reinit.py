"""Untrained copies of a classifier's architecture: the re-initialisation behind
:meth:`hf_unlearn.modeling.families.ClassifierFamily.fresh_like` (timm rebuilt by name, anything else layer by layer)."""

from __future__ import annotations

import copy
import warnings

from torch import nn


def _in_channels(model: nn.Module) -> int | None:
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Conv1d, nn.Conv3d)):
            return module.in_channels
    return None


def _reinitialised_copy(model: nn.Module) -> nn.Module:
    """Fallback: a deep copy with every layer's ``reset_parameters()`` re-run (BN statistics included), then
    the model's own ``init_weights()`` where it has one (timm: position embeddings, class tokens...)."""
    fresh = copy.deepcopy(model)
    for module in fresh.modules():
        if callable(getattr(module, "reset_parameters", None)):
            module.reset_parameters()
    if callable(getattr(fresh, "init_weights", None)):
        try:
            fresh.init_weights()
        except TypeError:  # an init_weights that needs arguments: the per-layer reset stands
            pass
    return fresh


def _fresh_timm(model: nn.Module) -> nn.Module:
    import timm

    cfg = getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", None) or {}
    arch = cfg.get("architecture")
    kwargs = {"pretrained": False, "num_classes": model.num_classes}
    in_chans = _in_channels(model)
    if in_chans is not None:
        kwargs["in_chans"] = in_chans
    if arch:
        try:
            fresh = timm.create_model(arch, **kwargs)
        except Exception:  # custom / unknown architecture: fall through to the generic path
            fresh = None
        if fresh is not None:
            ours = {k: v.shape for k, v in model.state_dict().items()}
            theirs = {k: v.shape for k, v in fresh.state_dict().items()}
            if ours == theirs:
                return fresh
    warnings.warn(
        f"could not rebuild timm model '{arch}' with the same parameter shapes from its name; the fresh "
        "model is a copy of the model with every layer's reset_parameters() re-run instead.",
        stacklevel=4,  # fresh_model_like -> ClassifierFamily.fresh_like -> here
    )
    return _reinitialised_copy(model)
