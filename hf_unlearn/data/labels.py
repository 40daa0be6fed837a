"""The dataset's labels checked against the model's classes before anything is selected or trained.

A label is an index into the model's head, so a dataset whose class ``3`` means something else than the model's
class ``3`` would be unlearned (and reported, per class, in the model card) under the wrong names. :func:`align_labels`
makes every split's labels the model's class ids, or refuses:

- ``ClassLabel`` with the model's names in the same order: untouched.
- ``ClassLabel`` with (a subset of) the model's names in another order: remapped by exact name, and reported.
- ``ClassLabel`` with a name the model does not have: refused (which class is which would be a guess).
- A model whose classes are unnamed (transformers' generic ``LABEL_0, LABEL_1, ...``, or a timm model without
  ``label_names``): there is nothing to compare, so the dataset's class ids are taken as the model's ids (noted).
- Integer labels: kept. Whole-number float labels (``1.0``): cast to int (noted). Other floats, NaN, None: refused.
- String labels: mapped by exact name when every value is one of the model's (named) classes, else refused.
- Any other feature (bool, lists: multi-label data): refused.
- Finally every label must lie in ``0 .. num_labels - 1``.
"""

from __future__ import annotations

import math
import re
from typing import Any

import datasets

from .scratch import writes_stay_temporary

__all__ = ["align_labels", "class_names_of", "check_integer_labels"]

_GENERIC = re.compile(r"LABEL_(\d+)")
_INT_TYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
_FLOAT_TYPES = ("float16", "float32", "float64", "bfloat16")
_STR_TYPES = ("string", "large_string")


def class_names_of(model: Any) -> list[str] | None:
    """The model's class names in id order, or None when it has none (generic ``LABEL_i`` or absent)."""
    model = getattr(model, "module", model)
    config = getattr(model, "config", None)
    id2label = getattr(config, "id2label", None) if config is not None else None
    if id2label:
        names = [str(id2label.get(i, id2label.get(str(i), f"LABEL_{i}"))) for i in range(len(id2label))]
    else:
        names = list((getattr(model, "pretrained_cfg", None) or {}).get("label_names") or [])
    if not names or all(
        _GENERIC.fullmatch(n) and int(_GENERIC.fullmatch(n).group(1)) == i for i, n in enumerate(names)
    ):
        return None
    return names


def check_integer_labels(dataset: datasets.Dataset, label_column: str, name: str = "") -> None:
    """Refuse a label column that is not integer class ids (``ClassLabel`` or an integer ``Value``).

    ``torch.as_tensor(labels, dtype=torch.long)`` would otherwise truncate 1.7 to 1 without a word.
    """
    feature = dataset.features.get(label_column)
    if isinstance(feature, datasets.ClassLabel) or (
        isinstance(feature, datasets.Value) and feature.dtype in _INT_TYPES
    ):
        return
    raise ValueError(
        f"the {name or 'given'} dataset's label column '{label_column}' is {_describe(feature)}, not integer class "
        "ids; convert it first (hf_unlearn.data.labels.align_labels(dataset, label_column, class_names_of(model)) maps "
        "whole-number floats and class-name strings, and refuses the rest)."
    )


@writes_stay_temporary  # a relabelled split is never written next to the user's data
def align_labels(data, label_column: str, class_names: list[str] | None, num_labels: int | None = None):
    """``(aligned data, description)``: every split's labels as the model's class ids, or a ``ValueError``.

    ``data`` is a ``datasets.Dataset`` or ``DatasetDict`` (every split gets the same treatment); ``class_names`` are
    the model's names in id order (:func:`class_names_of`; None for an unnamed head); ``num_labels`` defaults to
    ``len(class_names)``. ``description`` is None when nothing was changed or assumed, else
    ``{"label_column", "actions": [{"split", "action", "detail", ...}], "notes": [one line per action]}``.
    """
    if num_labels is None:
        if class_names is None:
            raise ValueError("align_labels needs num_labels when the model's classes are unnamed.")
        num_labels = len(class_names)
    if class_names is not None and len(class_names) != num_labels:
        class_names = None  # an id2label that does not describe the head cannot name its classes
    actions: list[dict] = []
    if isinstance(data, datasets.DatasetDict):
        aligned = datasets.DatasetDict(
            {
                split: _align_split(ds, split, label_column, class_names, num_labels, actions)
                for split, ds in data.items()
            }
        )
    else:
        aligned = _align_split(data, str(data.split or "given"), label_column, class_names, num_labels, actions)
    if not actions:
        return aligned, None
    return aligned, {"label_column": label_column, "actions": actions, "notes": [a["detail"] for a in actions]}


def _describe(feature) -> str:
    if feature is None:
        return "missing"
    if isinstance(feature, datasets.Value):
        return f"of type {feature.dtype}"
    return f"a {type(feature).__name__} feature"


def _align_split(ds: datasets.Dataset, split: str, column: str, names, num_labels: int, actions: list):
    if column not in ds.column_names:
        return ds  # the caller decides whether this split needs labels
    feature = ds.features[column]
    where = f"the '{split}' split"
    if isinstance(feature, datasets.ClassLabel):
        ds_names = list(feature.names)
        if names is None:
            actions.append(
                {
                    "split": split,
                    "action": "unnamed_model_classes",
                    "detail": f"{where}: the model's classes are unnamed (LABEL_i), so the dataset's class ids "
                    "are taken as the model's ids",
                }
            )
        elif ds_names != names[: len(ds_names)]:
            unknown = [n for n in ds_names if n not in names]
            if unknown:
                raise ValueError(
                    f"{where}'s class names disagree with the model's id2label: {unknown[:3]} "
                    f"{'is not a class' if len(unknown) == 1 else 'are not classes'} of the model (model classes: "
                    f"{names[:10]}{' ...' if len(names) > 10 else ''}); use the dataset the model was trained on, "
                    "or fix config.id2label of the model."
                )
            to_model = [names.index(n) for n in ds_names]
            ds = _map_labels(ds, column, lambda y: None if y is None else to_model[y], names)
            changed = {
                n: [old, new] for old, (n, new) in enumerate(zip(ds_names, to_model, strict=False)) if old != new
            }
            actions.append(
                {
                    "split": split,
                    "action": "remapped_by_name",
                    "mapping": changed,
                    "detail": f"{where}: labels remapped to the model's ids by class name "
                    f"({len(changed)} of {len(ds_names)} classes moved, e.g. "
                    + ", ".join(f"{n!r} {o}->{m}" for n, (o, m) in list(changed.items())[:3])
                    + ")",
                }
            )
    elif isinstance(feature, datasets.Value) and feature.dtype in _INT_TYPES:
        pass
    elif isinstance(feature, datasets.Value) and feature.dtype in _FLOAT_TYPES:
        for row, y in enumerate(ds[column]):
            if y is None or not math.isfinite(y) or y != int(y):
                raise ValueError(
                    f"label {y!r} in row {row} of {where} is not a whole number: labels are class ids "
                    "(0, 1, 2, ...); fix the label column."
                )
        ds = ds.cast_column(column, datasets.Value("int64"))
        actions.append(
            {
                "split": split,
                "action": "cast_float_to_int",
                "detail": f"{where}: float labels are all whole numbers and were cast to int (1.0 -> 1)",
            }
        )
    elif isinstance(feature, datasets.Value) and feature.dtype in _STR_TYPES:
        values = ds[column]
        if names is None:
            raise ValueError(
                f"{where} has string labels ({values[0]!r}, ...) but the model's classes are unnamed, "
                "so they cannot be matched; map them to the model's class ids yourself."
            )
        lookup = {n: i for i, n in enumerate(names)}
        for row, y in enumerate(values):
            if y not in lookup:
                raise ValueError(
                    f"label {y!r} in row {row} of {where} is not a class name of the model (model "
                    f"classes: {names[:10]}{' ...' if len(names) > 10 else ''}); fix the label or use "
                    "the dataset the model was trained on."
                )
        ds = _map_labels(ds, column, lambda y: lookup[y], names)
        actions.append(
            {
                "split": split,
                "action": "strings_by_name",
                "detail": f"{where}: string labels mapped to the model's ids by class name",
            }
        )
    else:
        raise ValueError(
            f"the label column '{column}' of {where} is {_describe(feature)}, not one integer class per "
            "image (multi-label and boolean labels are not supported); pass --label_column_name naming "
            "a column of class ids."
        )
    _check_range(ds[column], where, num_labels)
    return ds


def _map_labels(ds: datasets.Dataset, column: str, fn, names: list[str]) -> datasets.Dataset:
    features = ds.features.copy()
    features[column] = datasets.ClassLabel(names=list(names))
    return ds.map(
        lambda batch: {column: [fn(y) for y in batch[column]]},
        batched=True,
        features=features,
        desc="aligning labels with the model",
    )


def _check_range(values, where: str, num_labels: int) -> None:
    for row, y in enumerate(values):
        if y is None:
            raise ValueError(f"row {row} of {where} has no label (None); drop or label it.")
        if not 0 <= y < num_labels:
            bad = sorted({v for v in values if v is not None and not 0 <= v < num_labels})
            raise ValueError(
                f"labels {bad[:5]} of {where} (first at row {row}) are outside the model's {num_labels} classes "
                f"(0..{num_labels - 1}); use the dataset the model was trained on, or a model with a matching "
                "classification head."
            )
