"""NegGrad+: gradient ascent on the forget set balanced by gradient descent on the retain set.

Each step minimises ``beta * CE(retain rows) - (1 - beta) * CE(forget rows)`` over a shuffled mixture of the
forget and retain sets (Kurmanji et al., 2023; beta = 0.99 as in the DEL code base). The LoTUS reference
code meant to do this but negates the gradients *before* ``backward()`` (SPEC §3.2), so it actually descends on
the forget set; this implementation really ascends. Optimiser as the reference: SGD lr 1e-3, momentum 0.9,
weight decay 5e-4.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch.nn.functional as F

from ._common import SGD_BASELINE_DEFAULTS, masked_mean
from .base import UnlearningMethod, register_method


@dataclass
class NegGradPlusConfig:
    beta: float = field(default=0.99, metadata={"help": "NegGrad+ weight of the retain loss; the forget loss is ascended with weight 1 - beta."})


@register_method("neggrad_plus")
class NegGradPlus(UnlearningMethod):
    config_class = NegGradPlusConfig
    training_defaults = dict(SGD_BASELINE_DEFAULTS)

    def validate(self, trainer) -> None:
        if not 0.0 <= self.config.beta < 1.0:
            raise ValueError(f"neggrad_plus beta must be in [0, 1) (1 would never ascend), got {self.config.beta}.")

    def compute_loss(self, trainer, model, inputs):
        per_row = F.cross_entropy(trainer.logits(model, inputs["pixel_values"]).float(), inputs["labels"], reduction="none")
        forget = inputs["forget_flag"].bool()
        b = self.config.beta
        return b * masked_mean(per_row, ~forget) - (1.0 - b) * masked_mean(per_row, forget)
