"""Mixed precision (``--bf16`` / ``--fp16``): what stays float32, and a CPU bfloat16 convolution workaround.

accelerate runs the model being unlearned under autocast by wrapping its ``forward`` (``prepare_model``); teachers
are copies taken before that and run in float32. The methods compute their losses from ``logits.float()``
(log-softmax, KL, Gumbel noise, cross-entropy), and the masks and importances of SalUn, DEL and SSD are computed in
``prepare``, before the Trainer wraps the model, in float32. Two things need help:

* **Decisions.** LoTUS's temperature and stop rule read the model's forget-set accuracy; a bfloat16 argmax can flip
  near-ties and move the decision. :func:`float32_forward` runs a forward without accelerate's autocast, so the
  accuracies that drive decisions are the float32 ones.
* **CPU bfloat16 convolutions.** torch 2.14's oneDNN bfloat16 convolution backward leaves the weight gradient of
  kernel taps that only ever read padding uninitialised: NaN, 1e30 or stale values instead of 0 (measured: a 3x3
  stride-2 padding-1 convolution on a 1x1 input, 8 of 20 draws). The embedded ResNet's later stages see 1x1 maps,
  so LoTUS's loss became NaN at step 3. :func:`guard_cpu_bf16_convolutions` runs exactly those convolutions in
  float32 (their maps are tiny, so the cost is nil); every other one keeps bfloat16. It covers both ways a CPU
  convolution gets bfloat16: accelerate's autocast (``--bf16``, DDP) and bfloat16 weights and inputs (FSDP2's
  mixed precision casts the parameters themselves; a run of fsdp.yaml's plugin on CPU processes without the guard
  once died with "malloc(): unaligned tcache chunk detected").
"""

from __future__ import annotations

import contextlib
import functools

import torch
from torch import nn

__all__ = ["float32_forward", "guard_cpu_bf16_convolutions", "padding_only_taps", "mixed_precision_of"]


def mixed_precision_of(args) -> str:
    """ "bf16", "fp16" or "no", as the training arguments ask."""
    return "bf16" if getattr(args, "bf16", False) else "fp16" if getattr(args, "fp16", False) else "no"


@contextlib.contextmanager
def float32_forward(model: nn.Module):
    """Within the block, ``model``'s forward runs without the autocast accelerate wrapped it in (if any)."""
    inner = getattr(model, "module", model)
    original, wrapped = inner.__dict__.get("_original_forward"), inner.__dict__.get("forward")
    if original is None or wrapped is None:
        yield
        return
    inner.forward = original
    try:
        yield
    finally:
        inner.forward = wrapped


@functools.lru_cache(maxsize=4096)
def _dim_has_padding_only_tap(n: int, k: int, s: int, p: int, d: int) -> bool:
    out = (n + 2 * p - d * (k - 1) - 1) // s + 1
    return any(not any(0 <= o * s - p + j * d < n for o in range(max(out, 0))) for j in range(k))


def padding_only_taps(conv: nn.Module, spatial: tuple[int, ...]) -> bool:
    """Whether some kernel tap of ``conv`` reads only padding for an input of this spatial size."""
    padding = conv.padding
    if isinstance(padding, str):
        padding = (
            tuple(d * (k - 1) // 2 for k, d in zip(conv.kernel_size, conv.dilation, strict=False))
            if padding == "same"
            else (0,) * len(spatial)
        )
    return any(
        _dim_has_padding_only_tap(int(n), k, s, p, d)
        for n, k, s, p, d in zip(spatial, conv.kernel_size, conv.stride, padding, conv.dilation, strict=False)
    )


_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _guarded_forward(module, x, *rest):
    """The convolution's forward, in float32 when it would run in CPU bfloat16 and has taps that read only padding."""
    autocast_bf16 = torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    low = torch.bfloat16 in (x.dtype, module.weight.dtype)
    if (
        x.device.type != "cpu"
        or not (autocast_bf16 or low)
        or not padding_only_taps(module, tuple(x.shape[-len(module.kernel_size) :]))
    ):
        return type(module).forward(module, x, *rest)
    with torch.autocast("cpu", enabled=False):
        bias = None if module.bias is None else module.bias.float()
        out = module._conv_forward(x.float(), module.weight.float(), bias)
    # under autocast the next op casts as it needs; with bfloat16 weights the next layer expects bfloat16 input
    return out if autocast_bf16 or x.dtype != torch.bfloat16 else out.to(torch.bfloat16)


def guard_cpu_bf16_convolutions(model: nn.Module) -> int:
    """Make every convolution of ``model`` whose kernel has taps that read only padding run in float32 whenever it
    would run in CPU bfloat16 (autocast or bfloat16 weights; see the module doc). Idempotent; returns the number of
    convolutions guarded."""
    guarded = 0
    for module in model.modules():
        if isinstance(module, _CONVS) and not getattr(module, "_hf_unlearn_bf16_guard", False):
            module.forward = functools.partial(_guarded_forward, module)  # an instance attribute, kept by deepcopy
            module._hf_unlearn_bf16_guard = True
            guarded += 1
    return guarded
