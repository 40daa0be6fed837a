"""The unlearning method's run state in a checkpoint: reading it back, and refusing to resume another run with it
(re-exported by :mod:`hf_unlearn.trainer`)."""

from __future__ import annotations

import os
from typing import Any

import torch

__all__ = ["METHOD_STATE_NAME", "read_method_state", "check_resume_matches", "removal_identity"]

METHOD_STATE_NAME = "unlearning_method_state.pt"


def read_method_state(checkpoint: str, method: str) -> dict:
    """The unlearning method's state saved in ``checkpoint`` (``torch.load(weights_only=True)``: no code runs).

    Raises a ``ValueError`` naming the fix when the file is missing, unreadable, or from another method.
    """
    path = os.path.join(checkpoint, METHOD_STATE_NAME)
    if not os.path.isfile(path):
        raise ValueError(
            f"{checkpoint} has no {METHOD_STATE_NAME}: it was not written by an UnlearningTrainer run; "
            "resume from a checkpoint of the same unlearning run."
        )
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ValueError(f"{path} is corrupt ({type(e).__name__}: {first_line}); resume from an intact checkpoint "
                         "of the same run.") from e
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
    return {"dataset_fingerprint": dataset.get("fingerprint"), "forget_fingerprint": d.get("forget_fingerprint"),
            "retain_fingerprint": d.get("retain_fingerprint"), "num_removed": d.get("num_removed"),
            "num_retained": d.get("num_retained")}


def check_resume_matches(checkpoint: str, saved: dict, *, config: dict | None = None, record: Any = None) -> None:
    """Refuse (``ValueError`` naming the difference) to continue ``checkpoint`` with another method config or
    another removal request: a resumed run must continue *the same* unlearning run."""
    fix = "resume only with the command that wrote it (same dataset, forget selection, method and its flags)."
    if config is not None and saved.get("config") is not None:
        old, new = saved["config"], config
        diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        if diff:
            k = diff[0]
            raise ValueError(f"checkpoint {checkpoint} was written with {saved.get('method')} {k}={old.get(k)!r}, "
                             f"this run has {k}={new.get(k)!r}; {fix}")
    ident = removal_identity(record)
    old_ident = saved.get("removal_identity")
    if ident and old_ident:
        diff = [k for k in ident if old_ident.get(k) != ident[k]]
        if diff:
            k = diff[0]
            what = "another dataset" if k == "dataset_fingerprint" else "another forget set"
            raise ValueError(f"checkpoint {checkpoint} belongs to a run on {what} ({k} {old_ident.get(k)!r} there, "
                             f"{ident[k]!r} now); {fix}")
