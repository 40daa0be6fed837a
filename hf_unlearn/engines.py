"""Which engine a run trains with, as far as it shards parameters and gradients.

SalUn, SalUn+LoTUS and DEL train only the weight entries of a mask: they zero the other entries' gradients before each
optimiser step. Under DeepSpeed ZeRO, FSDP or Megatron-LM no parameter has a whole ``.grad`` at that point, so the
masking does nothing (only the copy-back after the step kept the frozen entries right). Those engines are refused for
methods that declare ``needs_full_gradients``. The guard used to read only ``--deepspeed`` / ``--fsdp``; an engine
chosen through an accelerate config (``accelerate launch --config_file ...``) reaches the run through the environment
(``ACCELERATE_USE_DEEPSPEED`` / ``ACCELERATE_USE_FSDP`` / ``ACCELERATE_USE_MEGATRON_LM``, set by the launcher), the
training arguments' plugins and, once the Trainer exists, its accelerator's state: :func:`sharded_engine` reads them
all, so the command line refuses before any work and the trainer refuses whatever built it.
"""

from __future__ import annotations

import os

__all__ = ["sharded_engine", "full_gradients_refusal", "SHARDING_ENV"]

#: The environment variables ``accelerate launch`` sets from its config for the sharding engines.
SHARDING_ENV = {"ACCELERATE_USE_DEEPSPEED": "DeepSpeed", "ACCELERATE_USE_FSDP": "FSDP",
                "ACCELERATE_USE_MEGATRON_LM": "Megatron-LM"}
_DISTRIBUTED_TYPES = {"DEEPSPEED": "DeepSpeed", "FSDP": "FSDP", "MEGATRON_LM": "Megatron-LM"}


def _true(value) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "y", "on", "t")


def _given(value) -> bool:
    """A ``--deepspeed`` / ``--fsdp`` value that selects the engine ("", False, None, [] do not)."""
    if isinstance(value, (list, tuple, set)):
        return any(_given(v) for v in value)
    return bool(value) and str(value).strip().lower() not in ("false", "no", "none", "0")


def sharded_engine(args=None, accelerator=None, *, environ=None, deepspeed=None, fsdp=None) -> str | None:
    """The sharding engine of a run, described with where it was found, or None (one process, DDP).

    Reads, in order: the ``accelerator``'s state (distributed type, DeepSpeed / FSDP plugin), the training ``args``
    (``deepspeed``, ``fsdp`` and the DeepSpeed plugin ``TrainingArguments`` builds from the environment),
    ``deepspeed`` / ``fsdp`` flag values parsed before any arguments exist, and the accelerate environment variables.
    """
    if accelerator is not None:
        state = getattr(accelerator, "state", None)
        kind = getattr(state, "distributed_type", None)
        kind = str(getattr(kind, "value", kind) or "")
        if kind in _DISTRIBUTED_TYPES:
            return f"{_DISTRIBUTED_TYPES[kind]} (the accelerator's distributed type)"
        if getattr(state, "deepspeed_plugin", None) is not None:
            return "DeepSpeed (the accelerator's DeepSpeed plugin)"
        if getattr(state, "fsdp_plugin", None) is not None:
            return "FSDP (the accelerator's FSDP plugin)"
    if args is not None:
        deepspeed = deepspeed or getattr(args, "deepspeed", None)
        fsdp = fsdp or getattr(args, "fsdp", None)
        if not _given(deepspeed) and getattr(args, "deepspeed_plugin", None) is not None:
            return "DeepSpeed (the training arguments' DeepSpeed plugin)"
    if _given(deepspeed):
        return "DeepSpeed (--deepspeed)"
    if _given(fsdp):
        return "FSDP (--fsdp)"
    env = os.environ if environ is None else environ
    for var, name in SHARDING_ENV.items():
        if _true(env.get(var, "false")):
            return f"{name} ({var}={env[var]}, as accelerate launch sets it from its config)"
    return None


def full_gradients_refusal(method: str, engine: str) -> str:
    """The one-line refusal of a masking method under a sharding engine: what, why and the fix."""
    return (f"method '{method}' masks individual weight entries and needs every parameter's whole gradient, but "
            f"this run would use {engine}, which shards parameters and gradients (the mask would see no gradient "
            "and change nothing); run it without DeepSpeed / FSDP / Megatron-LM: in one process, or with DDP "
            "(accelerate launch --multi_gpu with a config without deepspeed/fsdp, or torchrun).")
