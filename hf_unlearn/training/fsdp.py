"""FSDP2 around the Trainer's loop: the model is sharded only while it trains, and whole again afterwards.

Before training every process holds the whole model (its teacher copy, masks, SSD's edit and the accuracies before
training are computed on it, see hf_unlearn.training.engines.weights_not_local). accelerate shards it with
``fully_shard`` when the Trainer's loop starts; afterwards :func:`whole_again` gathers the trained weights into a
plain copy of the model kept on the CPU, so evaluation, the saved checkpoint and ``trainer.model`` are exactly what a
single process would have: no collective is needed to read, evaluate or save them, and nothing saves a shard by
mistake. The cost is one whole copy of the model in host memory per process while it trains.
"""

from __future__ import annotations

import contextlib
import copy

import torch
from torch import nn

__all__ = ["is_sharded", "whole_copy", "whole_again", "float32_whole", "accelerate_can_shard", "norms_in_float32"]


def is_sharded(model: nn.Module) -> bool:
    """Whether any parameter of ``model`` is a DTensor shard (FSDP2)."""
    from torch.distributed.tensor import DTensor

    return any(isinstance(p, DTensor) for p in model.parameters())


def whole_copy(model: nn.Module) -> nn.Module:
    """A plain copy of the (not yet sharded) ``model`` on the CPU, to receive the trained weights."""
    return copy.deepcopy(model).to("cpu")


@torch.no_grad()
def whole_again(sharded: nn.Module, skeleton: nn.Module, device) -> nn.Module:
    """``skeleton`` holding ``sharded``'s trained parameters and buffers, on ``device``. Every process must call it
    (each sharded parameter is all-gathered, in the same order everywhere)."""
    from torch.distributed.tensor import DTensor

    state = {
        name: (value.full_tensor() if isinstance(value, DTensor) else value).detach().cpu()
        for name, value in sharded.state_dict().items()
    }
    skeleton.load_state_dict(state, strict=True)
    return skeleton.to(device)


def _low_precision(model: nn.Module) -> bool:
    """Whether a sharded ``model`` computes in a lower precision than its float32 shards (FSDP2 mixed precision).
    Reads torch's per-unit policy; where it cannot, it answers True (the float32 copy is right either way)."""
    from torch.distributed.fsdp import FSDPModule

    for module in model.modules():
        if isinstance(module, FSDPModule):
            policy = getattr(module._get_fsdp_state(), "_mp_policy", None)
            if policy is None or getattr(policy, "param_dtype", None) not in (None, torch.float32):
                return True
    return False


@contextlib.contextmanager
def float32_whole(model: nn.Module, skeleton: nn.Module | None, device):
    """The model to score a decision with (LoTUS's forget accuracy): ``model`` itself, unless it is sharded and
    computes in low precision (FSDP2 mixed precision casts the parameters, so accelerate's autocast cannot be turned
    off as :func:`hf_unlearn.training.precision.float32_forward` does); then ``skeleton`` holding the float32
    weights, gathered on every process (a collective), on ``device`` for the block and back on the CPU after."""
    if skeleton is None or not is_sharded(model) or not _low_precision(model):
        yield model
        return
    whole = whole_again(model, skeleton, device)
    try:
        yield whole
    finally:
        whole.to("cpu")


@contextlib.contextmanager
def accelerate_can_shard(model: nn.Module):
    """Within the block ``model.get_input_embeddings()`` answers None. accelerate's ``fsdp2_prepare_model`` shards a
    language model's token embeddings as their own unit; for an image classifier that call fails two ways, both
    found by running fsdp.yaml's plugin: transformers raises ``NotImplementedError`` for models without embeddings
    (ResNet, ConvNeXt, ...), and a ViT's patch embeddings sit inside ``ViTEmbeddings``, which the transformer-layer
    wrap policy has already sharded, so sharding them again fails inside torch ("Invariant encountered"). Image
    classifiers tie no embedding to their head, so nothing is lost; the instance attribute is removed afterwards."""
    model.get_input_embeddings = lambda: None  # an instance attribute: the class is untouched
    try:
        yield
    finally:
        del model.get_input_embeddings


def norms_in_float32(model: nn.Module, accelerator) -> int:
    """Shard every normalisation layer with running statistics (BatchNorm, timm's BatchNormAct, ...) as its own FSDP2
    unit whose parameters stay float32, before accelerate shards the rest in the configured low precision; returns how
    many. Under FSDP2 mixed precision a BatchNorm otherwise gets bfloat16 weights beside float32 running statistics and
    its forward fails ("expected scalar type BFloat16 but found Float"; pytorch/torchtitan#674): this is the fix torch's
    FSDP2 authors give. The layer computes in float32 and hands the next layer the low-precision dtype. accelerate
    leaves modules that are already sharded alone."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    plugin = accelerator.state.fsdp_plugin
    policy = getattr(plugin, "mixed_precision_policy", None)
    low = getattr(policy, "param_dtype", None)
    if low is None or low == torch.float32:
        return 0
    norms = [
        m
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._NormBase)
        and m.track_running_stats
        and any(True for _ in m.parameters(recurse=False))
    ]
    for norm in norms:
        fully_shard(
            norm,
            reshard_after_forward=plugin.reshard_after_forward,
            offload_policy=plugin.cpu_offload,
            mp_policy=MixedPrecisionPolicy(
                param_dtype=torch.float32, reduce_dtype=torch.float32, output_dtype=low, cast_forward_inputs=True
            ),
        )
    return len(norms)
