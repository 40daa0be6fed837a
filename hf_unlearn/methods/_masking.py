"""Pieces shared by the parameter-localising methods (SSD, SalUn, DEL).

* :func:`batch_gradients` / :func:`summed_gradients`: gradients of ``sign * mean CE`` per batch over a split,
  model in eval mode, computed on the *unwrapped* model with ``torch.autograd.grad`` (the ``.grad`` fields and
  any DDP wrapper are left alone, so every process computes the same thing over the full split);
* :func:`top_fraction_mask`: a global ranking of all entries of all parameters, top fraction -> ``True``;
* :class:`MaskedUpdateMixin`: trains only the entries a boolean mask marks and keeps every other entry
  bit-identical, whatever the optimiser does (weight decay, momentum, Adam moments): the gradient is masked
  before the step and the frozen entries are copied back right after it. Masking the gradient alone is not
  enough: the reference code's SalUn lets weight decay shrink masked-out weights (SPEC §3.8). Under FSDP2 each
  parameter is a DTensor holding one shard: the mask is cut to the same shard (:func:`laid_out_like`), so every process
  masks exactly the entries it holds.

Parameters that get no gradient (an unused pooler) score nothing: they are never selected by a mask and
stay frozen.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F

from .base import UnlearningMethod

__all__ = [
    "batch_gradients",
    "summed_gradients",
    "top_fraction_mask",
    "score_or_never",
    "mask_summary",
    "MaskedUpdateMixin",
    "NEVER",
    "laid_out_like",
]


def _trainable(model) -> list[tuple[str, torch.nn.Parameter]]:
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


def batch_gradients(
    trainer, model, split, batch_size: int, *, sign: float = 1.0, order: torch.Tensor | None = None
) -> Iterator[dict[str, torch.Tensor | None]]:
    """Yield, per batch of ``split`` (rows in ``order``, default in split order), the gradient of
    ``sign * mean cross-entropy`` w.r.t. every trainable parameter of ``model`` (``None`` where unused).

    The model is in eval mode during the pass (BN uses its running statistics, as the reference code, which
    never switches the loaded model to train mode) and gets its previous mode back afterwards. Tensors that
    attention layers cache outside training mode (LeViT-style attention biases) are dropped around every batch:
    they would carry one batch's graph into the next (hf_unlearn.modeling.architectures.drop_graph_caches).
    """
    from ..modeling.architectures import drop_graph_caches

    named = _trainable(model)
    params = [p for _, p in named]
    device = params[0].device if params else torch.device("cpu")
    was_training = model.training
    model.eval()
    try:
        for _, pixels, labels in split.batches(batch_size, order):
            drop_graph_caches(model)
            with torch.enable_grad():
                logits = trainer.logits(model, pixels.to(device, non_blocking=True))
                loss = sign * F.cross_entropy(logits.float(), labels.to(device))
                grads = torch.autograd.grad(loss, params, allow_unused=True)
            trainer.count_examples(len(labels), "preparation")
            yield {n: (None if g is None else g.detach()) for (n, _), g in zip(named, grads, strict=False)}
    finally:
        drop_graph_caches(model)  # no graph outlives the pass
        model.train(was_training)


def summed_gradients(trainer, model, split, batch_size: int, *, sign: float = 1.0) -> dict[str, torch.Tensor | None]:
    """``Σ_batches ∇ (sign * mean CE)`` per trainable parameter (float32); ``None`` for a parameter that never
    received a gradient."""
    total: dict[str, torch.Tensor | None] = {n: None for n, _ in _trainable(model)}
    for grads in batch_gradients(trainer, model, split, batch_size, sign=sign):
        for n, g in grads.items():
            if g is not None:
                total[n] = g.float() if total[n] is None else total[n].add_(g.float())
    return total


NEVER = float("-inf")  #: the score of an entry that must never be selected (no gradient)


def top_fraction_mask(scores: dict[str, torch.Tensor], fraction: float) -> dict[str, torch.Tensor]:
    """Rank all entries of all tensors in ``scores`` together; the top ``fraction`` of *all* entries are ``True``.

    Entries scored ``-inf`` (or NaN) count in the total but are never selected. Exactly
    ``round(fraction * total)`` entries are selected (fewer only when not enough are selectable); ties at the
    boundary are broken arbitrarily, as ``argsort`` does in the reference code. Masks are CPU bool tensors.
    """
    names = list(scores)
    flat = torch.cat([scores[n].detach().float().reshape(-1).cpu() for n in names]) if names else torch.empty(0)
    flat = flat.masked_fill(torch.isnan(flat), NEVER)
    selectable = int((flat > NEVER).sum())
    k = min(int(round(fraction * flat.numel())), selectable)
    selected = torch.zeros(flat.numel(), dtype=torch.bool)
    if k > 0:
        selected[torch.topk(flat, k, sorted=False).indices] = True
    masks: dict[str, torch.Tensor] = {}
    offset = 0
    for n in names:
        size = scores[n].numel()
        masks[n] = selected[offset : offset + size].reshape(scores[n].shape).clone()
        offset += size
    return masks


def score_or_never(model, scores: dict[str, torch.Tensor | None]) -> dict[str, torch.Tensor]:
    """``scores`` with a ``-inf`` tensor (never selected) for every parameter whose score is ``None``."""
    params = dict(model.named_parameters())
    return {n: (s if s is not None else torch.full(params[n].shape, NEVER)) for n, s in scores.items()}


def laid_out_like(mask: torch.Tensor, param: torch.Tensor) -> torch.Tensor:
    """``mask`` (whole, the same on every process) as ``param`` holds its entries: on ``param``'s device, and under
    FSDP2 a DTensor with ``param``'s mesh and placements, i.e. this process's shard of it (cut locally: every process
    has the whole mask, so nothing is sent)."""
    from torch.distributed.tensor import DTensor, distribute_tensor

    if isinstance(param, DTensor):
        local = mask.to(param.to_local().device)
        return distribute_tensor(local, param.device_mesh, param.placements, src_data_rank=None)
    return mask.to(param.device)


def mask_summary(masks: dict[str, torch.Tensor]) -> tuple[int, int]:
    """(entries set, entries in total)."""
    return sum(int(m.sum()) for m in masks.values()), sum(m.numel() for m in masks.values())


class MaskedUpdateMixin(UnlearningMethod):
    """Train only where ``self.trainable_mask[name]`` is ``True``; every other entry stays bit-identical.

    A subclass sets ``self.trainable_mask`` (parameter name -> bool tensor; a trainable parameter missing from
    it is frozen entirely) in :meth:`prepare`. The mask travels in :meth:`state_dict`; the values to keep are
    taken from the model at ``on_train_begin``, i.e. after a resume has loaded the checkpoint's weights, whose
    frozen entries are the original ones (they are restored after every step), so nothing else needs saving.

    Gradients are masked in ``on_pre_optimizer_step``. The Trainer clips gradients *before* that hook, so with
    ``max_grad_norm > 0`` the clipping norm would include the masked-out gradients; the masked methods default
    to ``max_grad_norm=0`` (no clipping, as the reference code).
    """

    # the trainer refuses DeepSpeed ZeRO, Megatron-LM and FSDP1 (hf_unlearn.training.engines)
    needs_full_gradients = True

    def __init__(self, config=None):
        super().__init__(config)
        self.trainable_mask: dict[str, torch.Tensor] | None = None
        # (parameter, entries to keep or None for all of them, the values to keep them at)
        self._frozen: list[tuple[torch.nn.Parameter, torch.Tensor | None, torch.Tensor]] = []

    def on_train_begin(self, trainer, state, control) -> None:
        super().on_train_begin(trainer, state, control)
        if self.trainable_mask is None:
            raise RuntimeError(
                f"method '{self.name}' has no trainable mask: prepare() did not run and the checkpoint held none."
            )
        self._snapshot(trainer.model)

    def _snapshot(self, model) -> None:
        known = dict(model.named_parameters())
        unknown = sorted(set(self.trainable_mask) - set(known))
        if unknown:
            raise ValueError(
                f"the {self.name} mask names parameters this model does not have (e.g. {unknown[:3]}); "
                "resume with the same model architecture."
            )
        self._frozen = []
        for name, p in known.items():
            if not p.requires_grad:
                continue
            mask = self.trainable_mask.get(name)
            if mask is not None and mask.shape != p.shape:
                raise ValueError(
                    f"the {self.name} mask of '{name}' has shape {tuple(mask.shape)}, the parameter "
                    f"{tuple(p.shape)}; resume with the same model architecture."
                )
            if mask is None or not mask.any():
                self._frozen.append((p, None, p.detach().clone()))
            elif not mask.all():
                self._frozen.append((p, laid_out_like(~mask, p), p.detach().clone()))

    def on_pre_optimizer_step(self, trainer, model) -> None:
        super().on_pre_optimizer_step(trainer, model)
        for p, keep, _ in self._frozen:
            if keep is None:
                p.grad = None  # the optimiser then skips the tensor entirely (no decay, no state)
            elif p.grad is not None:
                p.grad.masked_fill_(keep, 0)

    @torch.no_grad()
    def on_optimizer_step(self, trainer, model) -> None:
        super().on_optimizer_step(trainer, model)
        for p, keep, values in self._frozen:
            if keep is None:
                p.copy_(values)
            else:
                p.copy_(torch.where(keep, values, p))

    def on_train_end(self, trainer, state, control) -> None:
        super().on_train_end(trainer, state, control)
        self._frozen = []  # release the copies

    def state_dict(self) -> dict:
        state = dict(super().state_dict())
        state["trainable_mask"] = {n: m.cpu() for n, m in (self.trainable_mask or {}).items()}
        return state

    def load_state_dict(self, state: dict) -> None:
        state = dict(state)
        self.trainable_mask = {n: m.bool() for n, m in state.pop("trainable_mask").items()}
        super().load_state_dict(state)
