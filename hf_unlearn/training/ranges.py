"""Range checks for every numeric setting, run before anything loads.

A value outside its meaningful range used to be accepted and either crash mid-run or, worse, silently produce a
model card claiming a removal that never happened (``--num_train_epochs 0``). Ranges are interval strings such
as ``"(0, 1]"`` or ``"[0, inf)"``:

* a method's own config dataclass declares them next to its fields, as ``field(metadata={"range": ...})`` or in
  a ``ranges`` class attribute (a dict field name -> interval; subclasses inherit and extend it); a list
  field's range applies to each element;
* ``TrainingArguments``' fields (not ours to annotate) are listed in :data:`TRAINING_ARGUMENT_RANGES`.

Every int/float field is also required to be finite even when no range is declared (NaN passes every ``<``).

A refusal quotes the default that applies to the run, not the dataclass's own: for a training argument the method's
``training_defaults`` (``UnlearningArguments`` passes them), and above both whatever :func:`defaults_in_effect` holds
(the CLI's embedded preset). A default outside the range is never quoted.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import math
import re
from typing import Any

__all__ = [
    "Interval",
    "check_value",
    "check_dataclass_ranges",
    "declared_ranges",
    "TRAINING_ARGUMENT_RANGES",
    "check_training_arguments",
    "SEED_RANGE",
    "defaults_in_effect",
]

_DEFAULTS: contextvars.ContextVar[dict | None] = contextvars.ContextVar("hf_unlearn_defaults_in_effect", default=None)


@contextlib.contextmanager
def defaults_in_effect(defaults: dict | None):
    """Within the block, range errors quote these defaults (``{field name: value}``) before any other."""
    token = _DEFAULTS.set(dict(defaults or {}))
    try:
        yield
    finally:
        _DEFAULTS.reset(token)


def _default_for(f: dataclasses.Field, defaults: dict | None) -> Any:
    """The default that applies to field ``f``: :func:`defaults_in_effect`, then ``defaults``, then the field's."""
    for layer in (_DEFAULTS.get() or {}, defaults or {}):
        if f.name in layer:
            return layer[f.name]
    return f.default if f.default is not dataclasses.MISSING else None


_INTERVAL = re.compile(r"^\s*([\[(])\s*([-+]?[\w.]+)\s*,\s*([-+]?[\w.]+)\s*([\])])\s*$")
SEED_RANGE = "[0, 4294967295]"  # numpy's seed limit: transformers.set_seed fails past 2**32 - 1


@dataclasses.dataclass(frozen=True)
class Interval:
    lo: float
    hi: float
    lo_closed: bool
    hi_closed: bool
    text: str

    @classmethod
    def parse(cls, text: str) -> Interval:
        m = _INTERVAL.match(text)
        if not m:
            raise ValueError(f"bad range {text!r}; write an interval such as '(0, 1]' or '[0, inf)'.")
        return cls(float(m.group(2)), float(m.group(3)), m.group(1) == "[", m.group(4) == "]", text.strip())

    def __contains__(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        above = value >= self.lo if self.lo_closed else value > self.lo
        below = value <= self.hi if self.hi_closed else value < self.hi
        return above and below

    def describe(self) -> str:
        if math.isinf(self.hi):
            return f"{'>=' if self.lo_closed else '>'} {self.lo:g}"
        return f"in {self.text}"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_value(
    name: str, value: Any, interval: str | None, *, default: Any = None, integer: bool = False, flag: bool = True
) -> None:
    """Raise a one-line ``ValueError`` when ``value`` is NaN/inf or outside ``interval`` (None: finiteness only)."""
    if value is None or not _is_number(value):
        return
    shown = f"--{name}" if flag else name
    iv = Interval.parse(interval) if interval else None
    ok = math.isfinite(value) and (iv is None or value in iv)
    if ok:
        return
    want = iv.describe() if iv else "finite"
    kind = "an integer" if integer else "a finite number"
    hint = f" (default {default})" if _is_number(default) and (iv is None or default in iv) else ""
    raise ValueError(f"{shown} must be {want}, got {value}; pass {kind} in {iv.text if iv else '(-inf, inf)'}{hint}")


def declared_ranges(cls: type) -> dict[str, str]:
    """Field name -> interval for a dataclass: ``ranges`` class attributes along the MRO, then field metadata."""
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        out.update(vars(klass).get("ranges", {}) or {})
    for f in dataclasses.fields(cls):
        if "range" in f.metadata:
            out[f.name] = f.metadata["range"]
    return out


def check_dataclass_ranges(obj: Any, *, flag: bool = True, defaults: dict | None = None) -> None:
    """Check every numeric field of the dataclass instance ``obj`` against its declared range (or finiteness);
    ``defaults``: the defaults that apply, when not the fields' own (see :func:`_default_for`)."""
    ranges = declared_ranges(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name, None)
        default = _default_for(f, defaults)
        # a list setting (e.g. LoTUS' alpha_search) declares the range of each of its elements
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if _is_number(item):
                check_value(
                    f.name, item, ranges.get(f.name), default=default, integer=isinstance(item, int), flag=flag
                )


#: ``TrainingArguments`` fields an unlearning run reads, with their meaningful ranges. ``max_steps`` is handled
#: apart (-1 means "use epochs"); ``num_train_epochs`` must be > 0 (0 would run no optimiser step).
TRAINING_ARGUMENT_RANGES = {
    "per_device_train_batch_size": "[1, inf)",
    "per_device_eval_batch_size": "[1, inf)",
    "gradient_accumulation_steps": "[1, inf)",
    "eval_accumulation_steps": "[1, inf)",
    "learning_rate": "(0, inf)",
    "num_train_epochs": "(0, inf)",
    "warmup_steps": "[0, inf)",
    "weight_decay": "[0, inf)",
    "adam_beta1": "[0, 1)",
    "adam_beta2": "[0, 1)",
    "adam_epsilon": "(0, inf)",
    "max_grad_norm": "[0, inf)",
    "label_smoothing_factor": "[0, 1)",
    "logging_steps": "(0, inf)",
    "save_steps": "(0, inf)",
    "eval_steps": "(0, inf)",
    "eval_delay": "[0, inf)",
    "save_total_limit": "[1, inf)",
    "seed": SEED_RANGE,
    "data_seed": SEED_RANGE,
    "dataloader_num_workers": "[0, inf)",
    "dataloader_prefetch_factor": "[1, inf)",
    "torch_empty_cache_steps": "[1, inf)",
    "neftune_noise_alpha": "(0, inf)",
    "ddp_timeout": "(0, inf)",
    "ddp_bucket_cap_mb": "[1, inf)",
}
_NOT_CHECKED = {"local_rank"}  # set by the launcher, -1 outside distributed runs


def check_training_arguments(args: Any, defaults: dict | None = None) -> None:
    """Range-check a ``TrainingArguments`` (subclass) instance; ``ValueError`` naming the flag and the fix.
    ``defaults``: the method's training defaults, quoted instead of ``TrainingArguments``' own."""
    if args.max_steps == 0 or args.max_steps < -1:
        raise ValueError(
            f"--max_steps {args.max_steps} would run no optimiser step, and the model card would claim a removal "
            "that never happened; pass --max_steps >= 1, or -1 to train for --num_train_epochs."
        )
    for f in dataclasses.fields(args):
        if not f.init or f.name in _NOT_CHECKED:
            continue
        value = getattr(args, f.name, None)
        if not _is_number(value):
            continue
        interval = TRAINING_ARGUMENT_RANGES.get(f.name)
        if f.name == "num_train_epochs" and args.max_steps > 0:
            interval = "[0, inf)"  # max_steps overrides the epochs
        if f.name == "num_train_epochs" and value == 0 and args.max_steps <= 0:
            raise ValueError(
                "--num_train_epochs 0 would run no optimiser step, and the model card would claim a removal that "
                "never happened; pass --num_train_epochs > 0 (or --max_steps >= 1)."
            )
        check_value(f.name, value, interval, default=_default_for(f, defaults), integer=isinstance(value, int))
