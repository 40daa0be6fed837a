"""Finetune: keep training on the retain set only, relying on catastrophic forgetting of the forget set.

SPEC §3.1: cross-entropy on the true labels of the whole retain set, SGD (lr 1e-3, momentum 0.9, weight
decay 5e-4), 10 epochs. The reference leaves the model in train mode; here it is returned in eval mode.
"""

from __future__ import annotations

import torch.nn.functional as F

from ._common import SGD_BASELINE_DEFAULTS
from .base import MixtureSpec, UnlearningMethod, register_method


@register_method("finetune")
class Finetune(UnlearningMethod):
    display_name = "Fine-tuning"  # the LoTUS code's baseline; no paper of its own (SPEC §3.1)
    decay_all_parameters = True  # SGD(model.parameters(), weight_decay=5e-4)
    training_defaults = dict(SGD_BASELINE_DEFAULTS)

    def mixture(self, trainer) -> MixtureSpec:
        return MixtureSpec(include_forget=False)

    def compute_loss(self, trainer, model, inputs):
        return F.cross_entropy(trainer.logits(model, inputs["pixel_values"]).float(), inputs["labels"])
