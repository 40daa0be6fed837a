"""Loading, calling and saving image classifiers: Hugging Face and timm behind one path.

``load_classifier("google/vit-base-patch16-224")``, ``load_classifier("timm/resnet18.a1_in1k")`` and a local
directory written by either library all return a :class:`LoadedClassifier` with the model, a batch image
transform for ``Dataset.with_transform`` and the library it came from. Weights load from safetensors only,
and remote code runs only with ``trust_remote_code=True``. What differs between the two libraries is in
:mod:`hf_unlearn.modeling.families` (:func:`family_of` and the families, re-exported here).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .families import (
    TIMM,
    TRANSFORMERS,
    ClassifierFamily,
    TimmFamily,
    TransformersFamily,
    _unwrap,
    family_of,
    family_of_config,
)

__all__ = [
    "LoadedClassifier",
    "load_classifier",
    "logits_of",
    "save_classifier",
    "num_labels_of",
    "is_timm_model",
    "fresh_model_like",
    "reinit_seed",
    "REINIT_SEED_FLOOR",
    "ClassifierFamily",
    "TransformersFamily",
    "TimmFamily",
    "TIMM",
    "TRANSFORMERS",
    "family_of",
    "family_of_config",
    "classifier_head",
    "head_parameter_names",
]


@dataclass
class LoadedClassifier:
    model: nn.Module
    transform: Callable[[dict], dict]
    library: str  # "transformers" or "timm"
    name_or_path: str
    processor: Any = None  # the HF image processor (None for timm)
    image_column: str = "image"


# ---- thin wrappers (the public functions that predate the families) ------------------------------------------
def is_timm_model(model: nn.Module) -> bool:
    return TIMM.owns(model)


def num_labels_of(model: nn.Module) -> int:
    return family_of(model).num_labels(model)


def logits_of(model: nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
    """Class logits of an HF or timm classifier (DDP-wrapped or not)."""
    return family_of(model).logits(model, pixel_values)


def classifier_head(model: nn.Module) -> nn.Module | None:
    """The classification head of an HF or timm classifier (or any module with an obvious one)."""
    return family_of(model).classifier_head(model)


def head_parameter_names(model: nn.Module) -> set[str]:
    return family_of(model).head_parameter_names(model)


def _is_timm_path(name_or_path: str) -> bool:
    return TIMM.owns_checkpoint(name_or_path)


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
    from .architectures import check_supported

    check_supported(config, name_or_path)  # before any weights are read
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
        if "mismatched_sizes" in str(e) or "size mismatch" in str(e):  # the head disagrees with config.json
            raise ValueError(
                f"the weights in '{name_or_path}' do not match the shapes its config.json gives (num_labels="
                f"{getattr(config, 'num_labels', '?')}): the classifier head has another size; fix config.json's "
                "num_labels / id2label, or use the checkpoint's own config."
            ) from e
        raise ValueError(
            f"cannot load model weights from '{name_or_path}' ({type(e).__name__}: {(str(e).splitlines() or [''])[0]}); "
            "only safetensors checkpoints are loaded: check the files are complete and not corrupt."
        ) from e
    check_supported(model, name_or_path)  # a forward that takes no pixel_values
    # A checkpoint without a classification head (e.g. a saved ViTModel) loads "successfully" with a freshly
    # initialised random head; unlearning that would be meaningless, so refuse it.
    missing = list(info.get("missing_keys", [])) if num_labels is None else []
    if missing:
        raise ValueError(
            f"'{name_or_path}' has no trained classification head (weights missing: {', '.join(sorted(missing)[:3])}); "
            "pass an image *classifier* checkpoint (saved from AutoModelForImageClassification)."
        )
    try:
        processor = AutoImageProcessor.from_pretrained(
            name_or_path, revision=revision, trust_remote_code=trust_remote_code
        )
    except (OSError, ValueError) as e:
        raise ValueError(
            f"'{name_or_path}' has no image processor ({str(e).splitlines()[0]}); save one next to the model "
            "(processor.save_pretrained(dir))."
        ) from e

    from ..data.images import processor_channels
    from .architectures import processor_pixels

    # every image in the model's channel count first: processors pass other modes through (hf_unlearn.data.images)
    to_pixels = processor_pixels(processor, model, processor_channels(processor, config))

    return LoadedClassifier(
        model, image_transform_from(to_pixels, image_column), "transformers", name_or_path, processor, image_column
    )


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
        raise ValueError(
            f"cannot load timm model '{name_or_path}' ({type(e).__name__}: {e}); check the id or path."
        ) from e
    data_config = resolve_data_config({}, model=model)
    pil_transform = create_transform(**data_config, is_training=False)
    in_chans = data_config.get("input_size", model.pretrained_cfg.get("input_size", (3,)))[0]
    from ..data.images import convert_image

    def to_pixels(images: list) -> torch.Tensor:
        return torch.stack([pil_transform(convert_image(im, in_chans)) for im in images])

    return LoadedClassifier(
        model, image_transform_from(to_pixels, image_column), "timm", name_or_path, None, image_column
    )


def save_classifier(model: nn.Module, output_dir: str, processor: Any = None) -> None:
    """Save with safetensors: ``save_pretrained`` for HF models, ``timm.models.save_for_hf`` for timm."""
    model = _unwrap(model)
    os.makedirs(output_dir, exist_ok=True)
    family_of(model).save(model, output_dir)
    if processor is not None:
        processor.save_pretrained(output_dir)
    from .architectures import write_pretrained_cfg

    write_pretrained_cfg(model, output_dir, processor)  # a timm_wrapper's processor is rebuilt from config.json


#: Seeds users pass (``--seed``, ``init_seed``, a recipe's seed) lie in [0, 2**32): numpy's limit, checked by
#: hf_unlearn.training.ranges. Re-initialisation draws from seeds at or above this bound, so no reset can reproduce the
#: starting weights of any model built with ``torch.manual_seed(user_seed)`` (an original or a retrained gold).
REINIT_SEED_FLOOR = 2**32


def reinit_seed(seed: int) -> int:
    """The torch seed of a re-initialisation for the run seed ``seed``: a hash of it, in
    ``[REINIT_SEED_FLOOR, 2**63)``, disjoint from every seed a user or a training recipe can give."""
    digest = hashlib.sha256(f"hf-unlearn/reinit/{int(seed)}".encode()).digest()
    return REINIT_SEED_FLOOR + int.from_bytes(digest[:8], "big") % (2**63 - REINIT_SEED_FLOOR)


def fresh_model_like(model: nn.Module, seed: int) -> nn.Module:
    """A randomly initialised model of ``model``'s architecture (no pretrained weights), seeded.

    Used for Bad Teacher's incompetent teacher and DEL's reset values. The weights come from
    :func:`reinit_seed` ``(seed)``, never from ``seed`` itself: a model retrained without the forget set is built
    from the run's own seed (the benchmark's gold is), and a reset to those very starting weights would hand the
    method knowledge no user has (measured: DEL's Avg Gap on digits doubled once the reset stopped coinciding).

    Hugging Face models are rebuilt from their config (``type(model)(config)``), timm models with
    ``timm.create_model(architecture, pretrained=False, num_classes=..., in_chans=...)``; anything else is a copy
    with every layer's ``reset_parameters()`` re-run. The global RNG is left untouched.
    """
    model = _unwrap(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(reinit_seed(seed))
        fresh = family_of(model).fresh_like(model)
    from .architectures import input_layout, set_input_layout

    set_input_layout(fresh, input_layout(model))  # called like the model (Bad Teacher's incompetent teacher)
    reference = next(model.parameters(), None)
    if reference is not None:
        fresh = fresh.to(device=reference.device, dtype=reference.dtype)
    return fresh
