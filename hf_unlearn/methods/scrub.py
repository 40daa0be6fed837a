"""SCRUB: the model as a student that stays close to the original on retain data and moves away on forget data.

(Kurmanji et al., "Towards Unbounded Machine Unlearning", NeurIPS 2023.) With the frozen original as teacher
and ``KL_T`` = T² · KL(softmax(teacher / T) ‖ softmax(student / T)) (upstream's ``DistillKL``), retain rows are
minimised with ``gamma * CE(labels) + alpha * KL_T`` and, during the first ``scrub_max_steps`` epochs only,
forget rows are maximised with ``-KL_T``; later epochs are pure min-steps (upstream defaults: gamma 0.99,
alpha 0.001, T 4, max-steps in 2 of 3 epochs; Adam lr 5e-4, L2 weight decay 5e-4).

How this maps to one Trainer loop: upstream alternates a max pass over the forget loader and a min pass over
the retain loader per epoch; here both kinds of rows come in one shuffled mixture and every row weighs 1/B
in its batch's loss, which spends the same per-row gradient budget per epoch as equally sized alternating
passes and is exact under gradient accumulation. Forget rows add nothing in epochs without max-steps.

Departures from the reference code (SPEC §3.5), and why: the reference trains a copy of the model while its
optimiser owns the original, so it returns the untouched original (a no-op); here the model itself is
optimised. The teacher is in eval mode (the reference puts it in train mode, so its BN statistics would move).
There are ``scrub_max_steps`` / ``alpha`` / ``gamma`` as in SCRUB (the reference max-steps every epoch with unit
weights). Weight decay is 5e-4 as in SCRUB and in the reference's CIFAR-100 runs (the reference's 0.1 for the
other datasets is coupled L2 of a strength that shrinks the network; set ``--weight_decay 0.1`` to reproduce).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ._papers import SCRUB
from .bad_teacher import kl_rows, plain_adam_optimizer
from .base import UnlearningMethod, register_method

__all__ = ["Scrub", "ScrubConfig"]


@dataclass
class ScrubConfig:
    scrub_max_steps: int = field(
        default=2,
        metadata={
            "help": "SCRUB's msteps: the number of leading epochs in which forget rows are maximised (-KL); later epochs only minimise on retain rows (upstream SCRUB: 2, with 3 epochs)."
        },
    )
    alpha: float = field(
        default=0.001,
        metadata={
            "help": "SCRUB weight of the retain-row KL to the original model in the min-step (upstream SCRUB: 0.001)."
        },
    )
    gamma: float = field(
        default=0.99,
        metadata={
            "help": "SCRUB weight of the retain-row cross-entropy on the true labels in the min-step (upstream SCRUB: 0.99)."
        },
    )
    temperature: float = field(
        default=4.0,
        metadata={
            "help": "SCRUB distillation temperature T; the KL is computed on softmax(logits / T) and scaled by T^2 (upstream and reference: 4)."
        },
    )
    plain_adam: bool = field(
        default=True,
        metadata={
            "help": "Optimise with plain torch.optim.Adam (learning rate, betas, epsilon and weight decay from the TrainingArguments; decay is an L2 term in the gradient) as SCRUB and the reference; False uses TrainingArguments.optim instead."
        },
    )
    cache_teacher_logits: bool = field(
        default=True,
        metadata={
            "help": "Compute the frozen teacher's logits on the training mixture once and reuse them every epoch (only when the image transform is deterministic)."
        },
    )
    # Meaningful ranges, checked (with finiteness) before anything loads: hf_unlearn.training.ranges.
    ranges = {"scrub_max_steps": "[0, inf)", "alpha": "[0, inf)", "gamma": "[0, inf)", "temperature": "(0, inf)"}


@register_method("scrub")
class Scrub(UnlearningMethod):
    """SCRUB with max-steps on forget rows for the first ``scrub_max_steps`` epochs."""

    config_class = ScrubConfig
    needs_teacher = True
    display_name = "SCRUB"
    papers = (SCRUB,)
    decay_all_parameters = True  # Adam(model.parameters(), weight_decay=5e-4): an L2 term on every parameter
    training_defaults = {
        "optim": "adamw_torch",  # only with plain_adam=False
        "learning_rate": 5e-4,
        "weight_decay": 5e-4,
        "lr_scheduler_type": "constant",
        "warmup_steps": 0,
        "num_train_epochs": 3,
        "per_device_train_batch_size": 128,
        "max_grad_norm": 0.0,  # neither the reference nor upstream SCRUB clips
    }

    def __init__(self, config=None):
        super().__init__(config)
        self.epoch_index = 0
        self.max_phase = self.config.scrub_max_steps > 0

    def validate(self, trainer) -> None:
        c = self.config
        if c.scrub_max_steps < 0:
            raise ValueError(f"scrub_max_steps must be >= 0, got {c.scrub_max_steps}.")
        if not c.temperature > 0:
            raise ValueError(f"scrub temperature must be > 0, got {c.temperature}.")
        if c.alpha < 0 or c.gamma < 0:
            raise ValueError(f"scrub alpha and gamma must be >= 0, got alpha={c.alpha}, gamma={c.gamma}.")

    def optimizer_cls_and_kwargs(self, trainer):
        return plain_adam_optimizer(trainer, self.name) if self.config.plain_adam else None

    # ---- phases ---------------------------------------------------------------------------------------
    def _set_epoch(self, epoch_index: int) -> None:
        self.epoch_index = epoch_index
        self.max_phase = epoch_index < self.config.scrub_max_steps

    def on_epoch_begin(self, trainer, state, control) -> None:
        # state.epoch is the number of epochs done (fractional when resuming mid-epoch).
        self._set_epoch(int(math.floor((state.epoch or 0.0) + 1e-6)))
        trainer.log({"scrub_epoch": float(self.epoch_index), "scrub_max_phase": float(self.max_phase)})

    # ---- the loss ---------------------------------------------------------------------------------------
    def compute_loss(self, trainer, model, inputs) -> torch.Tensor:
        c = self.config
        x, labels, forget = inputs["pixel_values"], inputs["labels"], inputs["forget_flag"].bool()
        student = trainer.logits(model, x).float()
        teacher = trainer.teacher_logits(trainer.teacher, inputs, cache=c.cache_teacher_logits)
        kl = kl_rows(F.softmax(teacher / c.temperature, dim=-1), student, c.temperature) * c.temperature**2
        ce = F.cross_entropy(student, labels, reduction="none")
        minimise = c.gamma * ce + c.alpha * kl
        maximise = -kl if self.max_phase else torch.zeros_like(kl)
        # Every row weighs 1/B: exact under gradient accumulation (see the module docstring).
        return torch.where(forget, maximise, minimise).mean()

    # ---- resume ----------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"epoch_index": self.epoch_index, "max_phase": self.max_phase}

    def load_state_dict(self, state: dict) -> None:
        self.epoch_index = int(state["epoch_index"])
        self.max_phase = bool(state["max_phase"])
