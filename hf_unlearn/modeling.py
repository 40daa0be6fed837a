"""Loading, calling and saving image classifiers: Hugging Face and timm behind one path.

``load_classifier("google/vit-base-patch16-224")``, ``load_classifier("timm/resnet18.a1_in1k")`` and a local
directory written by either library all return a :class:`LoadedClassifier` with the model, a batch image
transform for ``Dataset.with_transform`` and the library it came from. Weights load from safetensors only,
and remote code runs only with ``trust_remote_code=True``.
"""

from __future__ import annotations

import copy
import json
import os
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

__all__ = ["LoadedClassifier", "load_classifier", "logits_of", "save_classifier", "num_labels_of", "is_timm_model",
           "fresh_model_like"]

TIMM_PREFIXES = ("timm/", "hf-hub:", "local-dir:")


@dataclass
class LoadedClassifier:
    model: nn.Module
    transform: Callable[[dict], dict]
    library: str  # "transformers" or "timm"
    name_or_path: str
    processor: Any = None  # the HF image processor (None for timm)
    image_column: str = "image"


def is_timm_model(model: nn.Module) -> bool:
    model = getattr(model, "module", model)  # DDP
    return hasattr(model, "pretrained_cfg") or type(model).__module__.startswith("timm.")


def num_labels_of(model: nn.Module) -> int:
    model = getattr(model, "module", model)
    config = getattr(model, "config", None)
    if config is not None and getattr(config, "num_labels", None):
        return int(config.num_labels)
    if getattr(model, "num_classes", None):
        return int(model.num_classes)
    raise ValueError(
        f"{type(model).__name__} has no classification head (no config.num_labels / num_classes); "
        "pass an image *classifier* (AutoModelForImageClassification or a timm model with num_classes > 0)."
    )


def logits_of(model: nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
    """Class logits of an HF or timm classifier (DDP-wrapped or not)."""
    if is_timm_model(model):
        return model(pixel_values)
    out = model(pixel_values=pixel_values)
    return out.logits if hasattr(out, "logits") else out[0]


def _is_timm_path(name_or_path: str) -> bool:
    if name_or_path.startswith(TIMM_PREFIXES):
        return True
    config = os.path.join(name_or_path, "config.json")
    if os.path.isfile(config):
        with open(config) as f:
            cfg = json.load(f)
        return "architecture" in cfg and "model_type" not in cfg  # timm's save_for_hf layout
    return False


def image_transform_from(to_pixels: Callable[[list], torch.Tensor], image_column: str) -> Callable[[dict], dict]:
    """A batch transform for ``Dataset.with_transform``: images of ``image_column`` -> ``pixel_values``."""

    def transform(batch: dict) -> dict:
        if image_column not in batch:
            raise ValueError(
                f"the dataset has no image column '{image_column}' (columns: {sorted(batch)}); "
                "pass --image_column_name with the right name."
            )
        out = {k: v for k, v in batch.items() if k != image_column}
        out["pixel_values"] = to_pixels(batch[image_column])
        return out

    transform.image_column = image_column
    return transform


def load_classifier(
    name_or_path: str,
    *,
    num_labels: int | None = None,
    image_column: str = "image",
    trust_remote_code: bool = False,
    revision: str | None = None,
) -> LoadedClassifier:
    """Load an image classifier and its preprocessing from the Hub or a local directory."""
    if _is_timm_path(name_or_path):
        return _load_timm(name_or_path, num_labels=num_labels, image_column=image_column)
    from transformers import AutoConfig, AutoImageProcessor, AutoModelForImageClassification

    # A Hub id is "name" or "org/name"; anything else that is not a directory is a local path that does not exist.
    looks_like_path = name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1
    if looks_like_path and not os.path.isdir(name_or_path):
        raise ValueError(f"model path '{name_or_path}' does not exist; pass an existing directory or a Hub model id.")
    try:
        config = AutoConfig.from_pretrained(name_or_path, revision=revision, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as e:
        raise ValueError(
            f"cannot load a model config from '{name_or_path}' ({type(e).__name__}: {str(e).splitlines()[0]}); "
            "check the model id or path (and your network / HF_HUB_OFFLINE settings)."
        ) from e
    kwargs: dict[str, Any] = {"revision": revision, "trust_remote_code": trust_remote_code, "use_safetensors": True}
    if num_labels is not None and num_labels != getattr(config, "num_labels", None):
        kwargs.update(num_labels=num_labels, ignore_mismatched_sizes=True)
    try:
        model, info = AutoModelForImageClassification.from_pretrained(name_or_path, output_loading_info=True, **kwargs)
    except ValueError as e:
        raise ValueError(
            f"'{name_or_path}' is not an image classifier transformers can load "
            f"({str(e).splitlines()[0]}); pass an AutoModelForImageClassification checkpoint."
        ) from e
    except Exception as e:  # OSError for missing files; safetensors' own error type for a truncated file
        raise ValueError(
            f"cannot load model weights from '{name_or_path}' ({type(e).__name__}: {(str(e).splitlines() or [''])[0]}); "
            "only safetensors checkpoints are loaded: check the files are complete and not corrupt."
        ) from e
    # A checkpoint without a classification head (e.g. a saved ViTModel) loads "successfully" with a freshly
    # initialised random head; unlearning that would be meaningless, so refuse it.
    missing = list(info.get("missing_keys", [])) if num_labels is None else []
    if missing:
        raise ValueError(
            f"'{name_or_path}' has no trained classification head (weights missing: {', '.join(sorted(missing)[:3])}); "
            "pass an image *classifier* checkpoint (saved from AutoModelForImageClassification)."
        )
    try:
        processor = AutoImageProcessor.from_pretrained(name_or_path, revision=revision, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as e:
        raise ValueError(
            f"'{name_or_path}' has no image processor ({str(e).splitlines()[0]}); save one next to the model "
            "(processor.save_pretrained(dir))."
        ) from e

    from .images import convert_image, processor_channels

    channels = processor_channels(processor, config)

    def to_pixels(images: list) -> torch.Tensor:
        # every image in the model's channel count first: processors pass other modes through (hf_unlearn.images)
        return processor(images=[convert_image(im, channels) for im in images], return_tensors="pt")["pixel_values"]

    return LoadedClassifier(model, image_transform_from(to_pixels, image_column), "transformers", name_or_path,
                            processor, image_column)


def timm_source(name_or_path: str) -> str:
    """What ``timm.create_model`` expects for ``name_or_path``: timm 1.0 rejects the Hub form ``timm/<name>``
    ("no source prefix"), so it becomes ``hf-hub:timm/<name>``; a local directory becomes ``local-dir:<abs path>``."""
    if os.path.isdir(name_or_path):
        return "local-dir:" + os.path.abspath(name_or_path)
    if name_or_path.startswith("timm/"):
        return "hf-hub:" + name_or_path
    return name_or_path


def _load_timm(name_or_path: str, *, num_labels: int | None, image_column: str) -> LoadedClassifier:
    import timm
    from timm.data import create_transform, resolve_data_config

    source = timm_source(name_or_path)
    kwargs = {"num_classes": num_labels} if num_labels is not None else {}
    try:
        model = timm.create_model(source, pretrained=True, **kwargs)
    except Exception as e:  # timm raises a variety of errors for bad ids / files
        raise ValueError(f"cannot load timm model '{name_or_path}' ({type(e).__name__}: {e}); check the id or path.") from e
    data_config = resolve_data_config({}, model=model)
    pil_transform = create_transform(**data_config, is_training=False)
    in_chans = data_config.get("input_size", model.pretrained_cfg.get("input_size", (3,)))[0]
    from .images import convert_image

    def to_pixels(images: list) -> torch.Tensor:
        return torch.stack([pil_transform(convert_image(im, in_chans)) for im in images])

    return LoadedClassifier(model, image_transform_from(to_pixels, image_column), "timm", name_or_path, None, image_column)


def save_classifier(model: nn.Module, output_dir: str, processor: Any = None) -> None:
    """Save with safetensors: ``save_pretrained`` for HF models, ``timm.models.save_for_hf`` for timm."""
    model = getattr(model, "module", model)
    os.makedirs(output_dir, exist_ok=True)
    if is_timm_model(model):
        import timm

        timm.models.save_for_hf(model, output_dir, safe_serialization=True)
    else:
        model.save_pretrained(output_dir, safe_serialization=True)
    if processor is not None:
        processor.save_pretrained(output_dir)


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
        stacklevel=3,
    )
    return _reinitialised_copy(model)


def fresh_model_like(model: nn.Module, seed: int) -> nn.Module:
    """A randomly initialised model of ``model``'s architecture (no pretrained weights), seeded.

    Used for Bad Teacher's incompetent teacher and DEL's reset values.

    Hugging Face models are rebuilt from their config (``type(model)(config)``), timm models with
    ``timm.create_model(architecture, pretrained=False, num_classes=..., in_chans=...)``; anything else is a copy
    with every layer's ``reset_parameters()`` re-run. The global RNG is left untouched.
    """
    model = getattr(model, "module", model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if is_timm_model(model):
            fresh = _fresh_timm(model)
        elif hasattr(model, "config") and hasattr(type(model), "config_class"):
            fresh = type(model)(copy.deepcopy(model.config))
        else:
            fresh = _reinitialised_copy(model)
    reference = next(model.parameters(), None)
    if reference is not None:
        fresh = fresh.to(device=reference.device, dtype=reference.dtype)
    return fresh
