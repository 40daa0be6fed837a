"""SSD: Selective Synaptic Dampening (Foster et al., AAAI 2024), a one-shot weight edit without training.

The importance of every parameter entry on a set is the batch-mean of squared batch gradients of the mean
cross-entropy, ``I = mean_b (∂L_b/∂θ)^2`` (SPEC §3.6), computed with the model in eval mode on the forget set
(``I_f``) and on all training data, forget then retain (``I_D``). Entries far more important to the forget set,
``I_f > selection_weighting * I_D``, are dampened: ``θ <- θ * min(dampening_constant * I_D / I_f, 1)``; all other
entries are untouched. No optimiser step runs (``trains = False``); the edit happens in :meth:`SSD.prepare`.

Departures from the reference code: SSD is applied **once**, as in the paper (the LoTUS code repeats the whole
procedure ``--epochs`` times on the already-dampened model, SPEC §6.10); forget batches are drawn in a seeded
random order (``torch.randperm`` with ``args.seed``) instead of an unseeded shuffle. Parameters that get no
gradient (an unused pooler) have zero importance and are never dampened. In a multi-process run every process
computes both importances over the full splits on its own copy of the model, so all ranks make the same edit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ._masking import batch_gradients
from ._papers import SSD as SSD_PAPER
from .base import UnlearningMethod, register_method


@dataclass
class SSDConfig:
    selection_weighting: float = field(
        default=10.0,
        metadata={
            "help": "SSD alpha (selection weighting): dampen the entries whose forget-set importance exceeds alpha times their importance on all training data. Paper default 10."
        },
    )
    dampening_constant: float = field(
        default=1.0,
        metadata={
            "help": "SSD lambda (dampening constant): a selected entry is multiplied by min(lambda * I_D / I_f, 1). Paper default 1."
        },
    )
    # Meaningful ranges, checked (with finiteness) before anything loads: hf_unlearn.training.ranges.
    ranges = {"selection_weighting": "(0, inf)", "dampening_constant": "(0, inf)"}


def ssd_importances(
    trainer, model, split, batch_size: int, order: torch.Tensor | None = None
) -> dict[str, torch.Tensor | None]:
    """``mean_b (∇ mean CE_b)^2`` per trainable parameter (float32), model in eval mode; ``None`` where no
    batch produced a gradient."""
    total: dict[str, torch.Tensor | None] = {}
    batches = 0
    for grads in batch_gradients(trainer, model, split, batch_size, order=order):
        batches += 1
        for n, g in grads.items():
            if g is None:
                total.setdefault(n, None)
            elif total.get(n) is None:
                total[n] = g.float().square()
            else:
                total[n].add_(g.float().square())
    return {n: (None if t is None else t / batches) for n, t in total.items()}


class _Concat:
    """Forget rows then retain rows, read through the two splits' own ``batches`` (no copy of the data)."""

    def __init__(self, first, second):
        self.first, self.second = first, second

    def batches(self, batch_size: int, indices=None):
        # Batches that straddle the two splits are assembled from both, so every batch but the last is full,
        # as with the reference's ConcatDataset loader.
        n_first = len(self.first)
        order = torch.arange(n_first + len(self.second))
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            a, b = rows[rows < n_first], rows[rows >= n_first] - n_first
            parts = [(s.pixels(r), s.labels[r]) for s, r in ((self.first, a), (self.second, b)) if len(r)]
            yield rows, torch.cat([p for p, _ in parts]), torch.cat([y for _, y in parts])


@register_method("ssd")
class SSD(UnlearningMethod):
    """Selective Synaptic Dampening: a one-shot, training-free edit of the parameters the forget set relies on."""

    config_class = SSDConfig
    trains = False
    display_name = "SSD"
    papers = (SSD_PAPER,)
    # SSD runs no optimiser; only the batch size (the batches of the importance passes) matters. The rest is
    # the reference's placeholder SGD (lr 0.1, no momentum, no decay), which it used only to zero gradients.
    training_defaults = {
        "optim": "sgd",
        "learning_rate": 0.1,
        "weight_decay": 0.0,
        "lr_scheduler_type": "constant",
        "warmup_steps": 0,
        "num_train_epochs": 1,
        "per_device_train_batch_size": 128,
        "max_grad_norm": 0.0,  # no optimiser runs; stated so every method's table reads the same
    }

    def __init__(self, config=None):
        super().__init__(config)
        self.stats: dict = {}

    def validate(self, trainer) -> None:
        if self.config.selection_weighting <= 0:
            raise ValueError(f"ssd selection_weighting must be > 0, got {self.config.selection_weighting}.")
        if self.config.dampening_constant <= 0:
            raise ValueError(f"ssd dampening_constant must be > 0, got {self.config.dampening_constant}.")

    def prepare(self, trainer) -> None:
        model, bs = trainer.model, trainer.args.per_device_train_batch_size
        generator = torch.Generator().manual_seed(trainer.args.seed)
        forget_order = torch.randperm(len(trainer.forget_split), generator=generator)
        i_forget = ssd_importances(trainer, model, trainer.forget_split, bs, order=forget_order)
        i_all = ssd_importances(trainer, model, _Concat(trainer.forget_split, trainer.retain_split), bs)
        alpha, lam = self.config.selection_weighting, self.config.dampening_constant
        dampened = total = 0
        with torch.no_grad():
            for name, p in model.named_parameters():
                total += p.numel()
                i_f, i_d = i_forget.get(name), i_all.get(name)
                if i_f is None or i_d is None:
                    continue  # no gradient: zero importance, never selected
                selected = i_f > alpha * i_d
                if not selected.any():
                    continue
                factor = (lam * i_d / i_f).clamp(max=1.0)  # only read where selected (there i_f > 0)
                p.copy_(torch.where(selected, p * factor.to(p.dtype), p))
                dampened += int(selected.sum())
        self.stats = {"dampened_entries": dampened, "total_entries": total}
        trainer.log({"ssd_dampened_entries": float(dampened), "ssd_dampened_fraction": dampened / max(total, 1)})

    def state_dict(self) -> dict:
        return {"stats": dict(self.stats)}

    def load_state_dict(self, state: dict) -> None:
        self.stats = dict(state.get("stats", {}))
