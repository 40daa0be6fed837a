"""Random Labeling: train on the forget set with wrong labels and on the retain set with true ones.

Each forget row gets a label drawn uniformly from the *other* classes, redrawn every time the row is seen
(SPEC §3.3 redraws per epoch). The reference runs an "impair" pass over the relabelled forget set followed by
a "repair" pass over the retain set each epoch; here both are mixed in one shuffled pass, which gives every
row the same weight per epoch without two data loaders. SGD lr 1e-3, momentum 0.9, weight decay 5e-4.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._common import SGD_BASELINE_DEFAULTS, random_other_labels
from .base import UnlearningMethod, register_method


@register_method("random_label")
class RandomLabel(UnlearningMethod):
    display_name = "Random Labeling"  # the LoTUS code's "relabel" baseline; SPEC names no paper (§3.3)
    decay_all_parameters = True  # SGD(model.parameters(), weight_decay=5e-4)
    training_defaults = dict(SGD_BASELINE_DEFAULTS)

    def compute_loss(self, trainer, model, inputs):
        labels = inputs["labels"]
        wrong = random_other_labels(labels, trainer.num_labels)
        targets = torch.where(inputs["forget_flag"].bool(), wrong, labels)
        return F.cross_entropy(trainer.logits(model, inputs["pixel_values"]).float(), targets)
