"""NegGrad+: gradient ascent on the forget set balanced by gradient descent on the retain set.

As SPEC §3.2 states the intent of the LoTUS reference code: every epoch ascends the cross-entropy of each
forget sample and descends that of each retain sample, with equal per-sample weight. Here both kinds of rows
are mixed in one shuffled pass, so the batch loss is ``mean_i(CE_i if retain else -forget_weight * CE_i)``.
The reference negates the gradients *before* ``backward()``, a no-op, so it actually descends on the forget set;
this implementation really ascends. (Kurmanji et al.'s per-step ``beta * CE_r - (1 - beta) * CE_f`` with the
DEL code's beta = 0.99 was measured here to leave the forget loss *lower* than before on the embedded default: the
1% ascent loses to retain descent that generalises to the forget samples.) Optimiser as the reference: SGD lr 1e-3,
momentum 0.9, weight decay 5e-4.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ._common import SGD_BASELINE_DEFAULTS
from ._papers import SCRUB
from .base import UnlearningMethod, register_method


@dataclass
class NegGradPlusConfig:
    forget_weight: float = field(
        default=1.0,
        metadata={"help": "NegGrad+ weight of each forget row's ascent term relative to a retain row's descent term."},
    )
    # Meaningful ranges, checked (with finiteness) before anything loads: hf_unlearn.training.ranges.
    ranges = {"forget_weight": "(0, inf)"}


@register_method("neggrad_plus")
class NegGradPlus(UnlearningMethod):
    config_class = NegGradPlusConfig
    display_name = "NegGrad+"
    papers = (SCRUB,)  # NegGrad+ was introduced by Kurmanji et al. (SPEC §3.2)
    decay_all_parameters = True  # SGD(model.parameters(), weight_decay=5e-4)
    training_defaults = dict(SGD_BASELINE_DEFAULTS)

    def validate(self, trainer) -> None:
        if not self.config.forget_weight > 0.0:
            raise ValueError(
                f"neggrad_plus forget_weight must be > 0 (0 would never ascend), got {self.config.forget_weight}."
            )

    def compute_loss(self, trainer, model, inputs):
        per_row = F.cross_entropy(
            trainer.logits(model, inputs["pixel_values"]).float(), inputs["labels"], reduction="none"
        )
        sign = torch.where(inputs["forget_flag"].bool(), -self.config.forget_weight, 1.0)
        return (sign * per_row).mean()
