"""Up-front checks of what a run is given: evaluation splits, a gold model, non-finite weights and logits.

Each raises a one-line ``ValueError`` naming the problem and the fix, before the original is evaluated or any
optimiser step runs (before, a broken test split or gold model failed after minutes of work, with a traceback).
"""

from __future__ import annotations

import os
import re

import torch

__all__ = [
    "check_eval_split",
    "first_nonfinite_tensor",
    "check_model_finite",
    "check_logits_finite",
    "label_names_of",
    "check_gold_model",
    "check_process_group",
    "LAUNCHER_WORLD_SIZE_VARS",
]

#: Where launchers put the number of processes they started (torchrun, accelerate, DeepSpeed; MPI), as accelerate
#: reads them.
LAUNCHER_WORLD_SIZE_VARS = ("WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE")


def check_process_group(world_size: int, environ=os.environ) -> None:
    """Refuse a launch whose processes did not form one group: the launcher started N > 1 processes but this one
    has a world size other than N. Each process would then train alone and write the output as the main process
    (seen with FSDP or DeepSpeed on a machine without a GPU, launched without ``--use_cpu``)."""
    for var in LAUNCHER_WORLD_SIZE_VARS:
        value = environ.get(var, "").strip()
        if not value:
            continue
        try:
            launched = int(value)
        except ValueError:
            raise ValueError(
                f"the launcher's {var}={value!r} is not a number of processes; launch with torchrun or "
                "accelerate launch, or unset it for one process."
            ) from None
        if launched > 1 and world_size != launched:
            rank = environ.get("RANK", "?")
            raise ValueError(
                f"the launcher started {launched} processes ({var}={launched}, RANK={rank}) but this one is in a "
                f"group of {world_size}: the processes did not form one group, so each would train alone and write "
                "the output as the main process. On a machine without a GPU pass --use_cpu (CPU processes join over "
                "gloo; FSDP and DeepSpeed need GPUs), or launch a single process."
            )
        return


def check_eval_split(split, name: str, flag: str, *, image_column: str, label_column: str, num_labels: int) -> None:
    """A validation/test split has the image and label columns and labels in ``[0, num_labels)``."""
    if split is None:
        return
    for column, column_flag in ((image_column, "--image_column_name"), (label_column, "--label_column_name")):
        if column not in split.column_names:
            raise ValueError(
                f"the '{name}' split ({flag}) has no column '{column}' (columns: {split.column_names}); "
                f"pass {column_flag}, or {flag} '' to skip that split."
            )
    if len(split) == 0:
        raise ValueError(f"the '{name}' split ({flag}) is empty; pass another {flag}, or {flag} '' to skip it.")
    labels = split.with_format(None)[label_column]
    bad = sorted({y for y in labels if y is None or not (0 <= int(y) < num_labels)}, key=str)
    if bad:
        raise ValueError(
            f"the '{name}' split ({flag}) has labels {bad[:5]} outside the model's {num_labels} classes "
            f"(0..{num_labels - 1}); use the dataset the model was trained on, or {flag} '' to skip it."
        )


def first_nonfinite_tensor(model: torch.nn.Module) -> str | None:
    """Name of the first parameter or floating buffer holding a NaN or infinity (None when all are finite)."""
    named = list(model.named_parameters()) + [(n, b) for n, b in model.named_buffers() if b.is_floating_point()]
    for name, tensor in named:
        if tensor.is_floating_point() and not torch.isfinite(tensor.detach()).all():
            return name
    return None


def check_model_finite(model: torch.nn.Module, what: str) -> None:
    bad = first_nonfinite_tensor(model)
    if bad is not None:
        raise ValueError(
            f"{what} has NaN/inf values in '{bad}'; its checkpoint is broken: unlearning it would publish "
            "meaningless numbers. Use an intact checkpoint."
        )


def check_logits_finite(trainer, model: torch.nn.Module, what: str, batch_size: int | None = None) -> None:
    """Logits of ``model`` on one batch of the forget set are finite (weights can be finite and still overflow)."""
    split = trainer.forget_split
    n = min(len(split), batch_size or trainer.args.per_device_train_batch_size)
    logits = trainer.predict_logits(model, split.subset(range(n)))
    if not torch.isfinite(logits).all():
        raise ValueError(
            f"{what} gives NaN/inf logits on the forget set (first batch of {n} images); check the "
            "checkpoint and its image preprocessing (e.g. an fp16 overflow). Nothing was trained."
        )


_DEFAULT_NAME = re.compile(r"^LABEL_\d+$")


def label_names_of(model: torch.nn.Module) -> list[str] | None:
    """Class names from an HF ``config.id2label`` (None when absent or only ``LABEL_i`` placeholders)."""
    config = getattr(getattr(model, "module", model), "config", None)
    id2label = getattr(config, "id2label", None) or {}
    if not id2label:
        return None
    names = [str(id2label.get(i, id2label.get(str(i), ""))) for i in range(len(id2label))]
    if all(_DEFAULT_NAME.match(n) for n in names):
        return None
    return names


def check_gold_model(gold: torch.nn.Module, model: torch.nn.Module, path: str) -> None:
    """The gold (retrained) model must classify into the same classes as the model being unlearned."""
    from ..modeling.classifiers import num_labels_of

    n_gold, n_model = num_labels_of(gold), num_labels_of(model)
    if n_gold != n_model:
        raise ValueError(
            f"--gold_model {path} has {n_gold} classes but the model has {n_model}; pass a gold model "
            "retrained on the same dataset (same classes)."
        )
    a, b = label_names_of(gold), label_names_of(model)
    if a is not None and b is not None and a != b:
        diff = next(i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y)
        raise ValueError(
            f"--gold_model {path} names class {diff} '{a[diff]}' but the model names it '{b[diff]}'; "
            "pass a gold model retrained on the same dataset (same label order)."
        )
    check_model_finite(gold, f"--gold_model {path}")
