"""Which engine a run trains with, as far as it shards parameters and gradients.

SalUn, SalUn+LoTUS and DEL train only the weight entries of a mask: they zero the other entries' gradients before each
optimiser step. Under DeepSpeed ZeRO or Megatron-LM no parameter has a ``.grad`` at that point, so the masking would do
nothing: those engines are refused for methods that declare ``needs_full_gradients``. FSDP2 (``fsdp_version: 2``)
keeps every parameter as a DTensor whose local shard has a gradient of the same layout, so the mask is cut to each
process's shard (hf_unlearn.methods._masking) and the masking methods run; FSDP1 flattens parameters into one buffer
per unit and is refused with the setting to change. The engine is read from every place it can be chosen:
``--deepspeed`` / ``--fsdp``, the environment ``accelerate launch`` sets from its config (``ACCELERATE_USE_DEEPSPEED`` /
``ACCELERATE_USE_FSDP`` / ``FSDP_VERSION`` / ``ACCELERATE_USE_MEGATRON_LM``), the training arguments' plugins and,
once the Trainer exists, its accelerator's state: the command line refuses before any work and the trainer refuses
whatever built it.
"""

from __future__ import annotations

import contextlib
import os

__all__ = [
    "sharded_engine",
    "full_gradients_refusal",
    "fsdp_version",
    "engine_refusal",
    "SHARDING_ENV",
    "engine_of",
    "describe_engine",
    "engine_fallback_warning",
    "check_engine",
    "weights_not_local",
    "whole_weights",
]

#: The environment variables ``accelerate launch`` sets from its config for the sharding engines.
SHARDING_ENV = {
    "ACCELERATE_USE_DEEPSPEED": "DeepSpeed",
    "ACCELERATE_USE_FSDP": "FSDP",
    "ACCELERATE_USE_MEGATRON_LM": "Megatron-LM",
}
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
    """The one-line refusal of a masking method under an engine without per-parameter gradients: what, why, the fix."""
    return (
        f"method '{method}' masks individual weight entries and needs every parameter's gradient in its own "
        f"layout, but this run would use {engine}, which partitions gradients across processes (the mask would see "
        "no gradient and change nothing); run it in one process, with DDP (examples/accelerate/cpu.yaml or "
        "ddp.yaml) or with FSDP2 (examples/accelerate/fsdp.yaml)."
    )


def _fsdp_config_version(config) -> int:
    """``version`` of a ``--fsdp_config`` (a dict, a JSON string or a JSON file's path); transformers' default is 2."""
    if isinstance(config, str) and config.strip():
        import json

        try:
            if os.path.isfile(config):
                with open(config) as f:
                    config = json.load(f)
            else:
                config = json.loads(config)
        except (OSError, ValueError):
            config = None
    return int(config.get("version", 2)) if isinstance(config, dict) else 2


def fsdp_version(args=None, accelerator=None, *, environ=None, fsdp=None) -> int:
    """The FSDP version a run uses: the accelerator's plugin, else the ``fsdp_config`` of ``--fsdp`` (transformers'
    default 2), else ``FSDP_VERSION`` as ``accelerate launch`` sets it from its config (accelerate's default 1)."""
    plugin = getattr(getattr(accelerator, "state", None), "fsdp_plugin", None)
    if plugin is not None and getattr(plugin, "fsdp_version", None) is not None:
        return int(plugin.fsdp_version)
    if _given(fsdp) or _given(getattr(args, "fsdp", None)):
        return _fsdp_config_version(getattr(args, "fsdp_config", None))
    env = os.environ if environ is None else environ
    try:
        return int(env.get("FSDP_VERSION", "1"))
    except ValueError:
        return 1


def engine_refusal(
    method: str, masks: bool, args=None, accelerator=None, *, environ=None, deepspeed=None, fsdp=None
) -> str | None:
    """Why ``method`` cannot run under this run's engine (one line, with the fix), or None. FSDP1 is refused for every
    method (only FSDP2 is supported: its parameters keep their shapes, and the trained model is gathered whole again,
    hf_unlearn.training.fsdp); a method that ``masks`` weight entries is refused under DeepSpeed ZeRO and Megatron-LM."""
    engine = sharded_engine(args, accelerator, environ=environ, deepspeed=deepspeed, fsdp=fsdp)
    if engine is None:
        return None
    if engine.startswith("FSDP"):
        version = fsdp_version(args, accelerator, environ=environ, fsdp=fsdp)
        if version == 2:
            return None
        return (
            f"this run would use FSDP version {version} ({engine.split(' (', 1)[1][:-1]}); hf-unlearn runs FSDP2 "
            "only (FSDP1 flattens each unit's parameters into one buffer: no mask can be laid over them and the "
            "trained model is not gathered whole); set fsdp_version: 2 in the accelerate config (as "
            "examples/accelerate/fsdp.yaml does) or pass --fsdp_config '{\"version\": 2}'."
        )
    return full_gradients_refusal(method, engine) if masks else None


# ---- the engine that really ran (issue 21): recorded in the run record, metrics.json and the card -------------
_NAMES = {"NO": "none", "FSDP": "FSDP", "DEEPSPEED": "DeepSpeed", "MEGATRON_LM": "Megatron-LM", "XLA": "XLA"}


def engine_of(accelerator, args=None) -> dict:
    """What the accelerator's state says ran: ``{"name", "distributed_type", "zero_stage", "world_size",
    "mixed_precision", "requested"}``. ``name`` is "none" (one process), "DDP" (any MULTI_* type), "FSDP",
    "DeepSpeed ZeRO-<stage>"; ``requested`` is the sharding engine the configuration asked for when it is not the
    one that ran (accelerate falls back from FSDP to DDP on CPU without a word), else None."""
    state = getattr(accelerator, "state", None)
    kind = getattr(state, "distributed_type", None)
    kind = str(getattr(kind, "value", kind) or "NO")
    name = _NAMES.get(kind, "DDP" if kind.startswith("MULTI_") else kind)
    stage = None
    plugin = getattr(state, "deepspeed_plugin", None)
    if kind == "DEEPSPEED" and plugin is not None:
        stage = getattr(plugin, "zero_stage", None)
        name = f"DeepSpeed ZeRO-{stage}" if stage is not None else name
    precision = getattr(accelerator, "mixed_precision", None) or getattr(state, "mixed_precision", None) or "no"
    asked = sharded_engine(args) if args is not None else sharded_engine()
    requested = asked.split(" (")[0] if asked and not name.startswith(asked.split(" (")[0]) else None
    return {
        "name": name,
        "distributed_type": kind,
        "zero_stage": stage,
        "world_size": int(getattr(accelerator, "num_processes", 1) or 1),
        "mixed_precision": str(getattr(precision, "value", precision)),
        "requested": requested,
    }


def describe_engine(engine: dict | None) -> str:
    """One line for the card and the log: ``DDP (MULTI_CPU), 2 processes, mixed precision bf16``."""
    if not engine:
        return "—"
    processes = engine.get("world_size") or 1
    text = (
        f"{engine.get('name')} ({engine.get('distributed_type')}), {processes} process"
        f"{'es' if processes != 1 else ''}, mixed precision {engine.get('mixed_precision') or 'no'}"
    )
    if engine.get("requested"):
        text += f" ({engine['requested']} was configured but did not run)"
    return text


def engine_fallback_warning(engine: dict) -> str | None:
    """The one warning line of a run whose configuration asked for an engine that did not run."""
    if not engine.get("requested"):
        return None
    return (
        f"the configuration asks for {engine['requested']} but the accelerator runs {engine['name']} "
        f"({engine['distributed_type']}, {engine['world_size']} processes): accelerate falls back silently "
        f"(FSDP never runs on CPU); the run records '{engine['name']}'."
    )


def weights_not_local(model) -> str | None:
    """Why ``model``'s parameters are not whole on this process (ZeRO-3 partitioned at load, meta tensors from
    rank-0-only loading), or None."""
    for name, p in model.named_parameters():
        if hasattr(p, "ds_id") or hasattr(p, "ds_numel"):
            return (
                f"its parameters are DeepSpeed ZeRO-3 partitions (e.g. '{name}'); set zero3_init_flag: false "
                "in the accelerate config (the model then loads whole and ZeRO-3 shards it when training starts)"
            )
        if p.is_meta:
            return (
                f"its parameters are meta tensors on this rank (e.g. '{name}'); set "
                "fsdp_cpu_ram_efficient_loading: false in the accelerate config"
            )
    return None


def check_engine(trainer, model, accelerator=None) -> None:
    """Before any work: masking methods under a sharding engine, teachers copied from weights this process does not
    hold; once the accelerator exists, a configured engine that did not run is said in one warning line."""
    method = trainer.method
    refusal = engine_refusal(method.name, getattr(method, "needs_full_gradients", False), trainer.args, accelerator)
    if refusal:
        raise ValueError(refusal)
    if accelerator is None:
        why = weights_not_local(model)
        if why:  # every method reads the whole model before training (teacher copy, masks, accuracies)
            raise ValueError(
                f"method '{method.name}' needs the whole model on every process before training (a "
                f"teacher copy, a mask, an accuracy), but {why}."
            )
        return
    warning = engine_fallback_warning(engine_of(accelerator, trainer.args))
    if warning and trainer.args.process_index == 0:
        import logging

        logging.getLogger("hf_unlearn").warning(warning)


@contextlib.contextmanager
def whole_weights():
    """Within the block, transformers loads models whole even under a ZeRO-3 config. Once TrainingArguments with a
    ZeRO-3 config exist, ``from_pretrained`` partitions the weights at load (accelerate's ``zero3_init_flag`` is not
    consulted; measured: the embedded ResNet then failed to initialise). The teacher copy, the masks, SSD's edit and
    the accuracies before training need the whole model; ZeRO-3 partitions it when training starts."""
    try:
        from transformers.integrations import deepspeed as hf_deepspeed
    except ImportError:  # pragma: no cover
        yield
        return
    ref = hf_deepspeed._hf_deepspeed_config_weak_ref
    config = ref() if ref is not None else None
    if config is None or not config.is_zero3():
        yield
        return
    hf_deepspeed.unset_hf_deepspeed_config()
    try:
        yield
    finally:
        hf_deepspeed.set_hf_deepspeed_config(config)
