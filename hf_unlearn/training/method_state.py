"""The unlearning method's run state in a checkpoint: reading it back, and refusing to resume another run with it
(written and checked by :mod:`hf_unlearn.training.trainer_checkpoints`)."""

from __future__ import annotations

import os
from typing import Any

import torch

__all__ = [
    "METHOD_STATE_NAME",
    "read_method_state",
    "check_resume_matches",
    "removal_identity",
    "training_identity",
    "RESUME_TRAINING_KEYS",
    "write_method_state",
    "is_complete_checkpoint",
    "last_complete_checkpoint",
]

METHOD_STATE_NAME = "unlearning_method_state.pt"

#: The training arguments that decide what a run trains (besides the method's config): a resumed run must have the
#: same values. The Trainer restores its optimizer and scheduler from the checkpoint whatever the flags say, so a
#: different value would be recorded in the card without being used. ``world_size`` (processes) is part of the
#: effective batch size.
RESUME_TRAINING_KEYS = (
    "learning_rate",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "world_size",
    "num_train_epochs",
    "max_steps",
    "lr_scheduler_type",
    "lr_scheduler_kwargs",
    "warmup_steps",
    "weight_decay",
    "optim",
    "optim_args",
    "adam_beta1",
    "adam_beta2",
    "adam_epsilon",
    "max_grad_norm",
    "label_smoothing_factor",
    "seed",
    "data_seed",
    "dataloader_drop_last",
    "bf16",
    "fp16",
)


def training_identity(args: Any) -> dict:
    """The :data:`RESUME_TRAINING_KEYS` values of ``args`` as plain JSON values (enums by value), saved with the
    method state in every checkpoint."""
    import json

    values = {k: getattr(args, k) for k in RESUME_TRAINING_KEYS if hasattr(args, k)}
    return json.loads(json.dumps(values, default=lambda v: getattr(v, "value", str(v))))


def write_method_state(folder: str, state: dict) -> None:
    """Write the method state atomically (a temporary file renamed into place): its presence is what marks a
    ``checkpoint-N`` folder as complete, so the Trainer writes its files first and this comes last."""
    path = os.path.join(folder, METHOD_STATE_NAME)
    tmp = os.path.join(folder, "." + METHOD_STATE_NAME)  # hidden while incomplete
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def is_complete_checkpoint(folder: str) -> bool:
    """A checkpoint whose save finished: the method state (written last) and the Trainer's state and weights."""
    return all(os.path.isfile(os.path.join(folder, n)) for n in (METHOD_STATE_NAME, "trainer_state.json")) and any(
        os.path.isfile(os.path.join(folder, n)) for n in ("model.safetensors", "model.safetensors.index.json")
    )


def last_complete_checkpoint(output_dir: str) -> str | None:
    """The highest-numbered complete ``checkpoint-N`` in ``output_dir`` (an interrupted save is skipped)."""
    import re

    if not os.path.isdir(output_dir):
        return None
    steps = [
        (int(m.group(1)), n)
        for n in os.listdir(output_dir)
        if (m := re.fullmatch(r"checkpoint-(\d+)", n)) and is_complete_checkpoint(os.path.join(output_dir, n))
    ]
    return os.path.join(output_dir, max(steps)[1]) if steps else None


def read_method_state(checkpoint: str, method: str) -> dict:
    """The unlearning method's state saved in ``checkpoint`` (``torch.load(weights_only=True)``: no code runs).

    Raises a ``ValueError`` naming the fix when the file is missing, unreadable, or from another method.
    """
    path = os.path.join(checkpoint, METHOD_STATE_NAME)
    if not os.path.isfile(path):
        raise ValueError(
            f"{checkpoint} has no {METHOD_STATE_NAME}: it was not written by an UnlearningTrainer run, or its save "
            "was interrupted (the method state is written last); resume from a complete checkpoint of the same "
            "unlearning run."
        )
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ValueError(
            f"{path} is corrupt ({type(e).__name__}: {first_line}); resume from an intact checkpoint of the same run."
        ) from e
    if saved.get("method") != method:
        raise ValueError(
            f"checkpoint {checkpoint} belongs to method '{saved.get('method')}', not '{method}'; "
            "resume with the same --method."
        )
    return saved


def removal_identity(record: Any) -> dict:
    """What identifies a removal request across runs (saved in checkpoints; a resume must match it).

    Fingerprints and counts only: the commitment is not used (it may be salted per run).
    """
    if record is None:
        return {}
    d = record.to_dict() if hasattr(record, "to_dict") else dict(record)
    dataset = d.get("dataset") or {}
    # names and split labels are left out: the CLI and a Python caller name the same data differently
    return {
        "dataset_fingerprint": dataset.get("fingerprint"),
        "forget_fingerprint": d.get("forget_fingerprint"),
        "retain_fingerprint": d.get("retain_fingerprint"),
        "num_removed": d.get("num_removed"),
        "num_retained": d.get("num_retained"),
    }


def check_resume_matches(
    checkpoint: str, saved: dict, *, config: dict | None = None, record: Any = None, args: Any = None
) -> None:
    """Refuse (``ValueError`` naming the difference) to continue ``checkpoint`` with another method config, other
    training settings (``args``, :data:`RESUME_TRAINING_KEYS`) or another removal request: a resumed run must
    continue *the same* unlearning run."""
    fix = "resume only with the command that wrote it (same dataset, forget selection, method and its flags)."
    if config is not None and saved.get("config") is not None:
        old, new = saved["config"], config
        diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        if diff:
            k = diff[0]
            raise ValueError(
                f"checkpoint {checkpoint} was written with {saved.get('method')} {k}={old.get(k)!r}, "
                f"this run has {k}={new.get(k)!r}; {fix}"
            )
    ident = removal_identity(record)
    old_ident = saved.get("removal_identity")
    if ident and old_ident:
        diff = [k for k in ident if old_ident.get(k) != ident[k]]
        if diff:
            k = diff[0]
            what = "another dataset" if k == "dataset_fingerprint" else "another forget set"
            raise ValueError(
                f"checkpoint {checkpoint} belongs to a run on {what} ({k} {old_ident.get(k)!r} there, "
                f"{ident[k]!r} now); {fix}"
            )
    if args is not None and isinstance(saved.get("training"), dict):
        old, new = saved["training"], training_identity(args)
        for k in RESUME_TRAINING_KEYS:
            if k in old and k in new and old[k] != new[k]:
                what = "the number of processes (world size)" if k == "world_size" else f"--{k}"
                raise ValueError(
                    f"checkpoint {checkpoint} was trained with {what} {old[k]!r}, this run has "
                    f"{new[k]!r}; the Trainer would continue with the checkpoint's optimizer and "
                    "scheduler while the card recorded the new value: resume with the checkpoint's value, "
                    "or start a new run without --resume_from_checkpoint."
                )
