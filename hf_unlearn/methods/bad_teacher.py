"""Bad Teacher: distil from a competent and an incompetent teacher (Chundawat et al., AAAI 2023).

The model is trained on the whole forget set plus a fixed, seeded random fraction (30 %) of the retain set to
match, by KL divergence at temperature ``T``, the frozen original model ("competent teacher") on retain rows
and a freshly initialised, never-trained model of the same architecture ("incompetent teacher") on forget
rows, so forget predictions become those of a model that knows nothing while the rest is kept (SPEC §3.4).
Plain Adam, lr 1e-4, no weight decay, T = 1, batch 128, 10 epochs (the reference's ResNet setting; the paper's
code runs 1).

Departures from the reference code, and why: the rows are shuffled (the reference uses ``shuffle=False``, so
every epoch sees all forget rows first, a defect the paper's own code does not have); the KL is the textbook
batch mean (sum over classes, mean over rows) instead of ``F.kl_div``'s default element mean, which also
divides by the number of classes C (a constant factor Adam all but ignores); the incompetent teacher is
always randomly initialised from the model's config (the reference's ViT "incompetent" teacher loads a
pretrained backbone); it is seeded by ``TrainingArguments.seed`` through :func:`hf_unlearn.modeling.classifiers.reinit_seed`
(a seed stream no original or retrained model is built from), so a resumed run rebuilds the same one.
"""

from __future__ import annotations

import math
import random
import warnings
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..modeling.classifiers import fresh_model_like
from ..training.teacher_cache import FORGET, RETAIN
from ._papers import BAD_TEACHER
from .base import MixtureSpec, UnlearningMethod, register_method

__all__ = ["BadTeacher", "BadTeacherConfig", "plain_adam_optimizer", "kl_rows"]


@dataclass
class BadTeacherConfig:
    temperature: float = field(
        default=1.0,
        metadata={
            "help": "Bad Teacher KL temperature T: targets are softmax(teacher logits / T), the student's log-probabilities log_softmax(logits / T) (paper and reference: 1)."
        },
    )
    retain_subset_fraction: float = field(
        default=0.3,
        metadata={
            "help": "Fraction of the retain set (fixed, seeded random subset) mixed with the whole forget set (paper and reference: 0.3)."
        },
    )
    plain_adam: bool = field(
        default=True,
        metadata={
            "help": "Optimise with plain torch.optim.Adam (learning rate, betas, epsilon and weight decay from the TrainingArguments; decay is an L2 term in the gradient) as the paper and the reference; False uses TrainingArguments.optim instead."
        },
    )
    cache_teacher_logits: bool = field(
        default=True,
        metadata={
            "help": "Compute both frozen teachers' logits on the training mixture once (the incompetent one on forget rows, the original on retain rows) and reuse them every epoch (only when the image transform is deterministic)."
        },
    )
    # Meaningful ranges, checked (with finiteness) before anything loads: hf_unlearn.training.ranges.
    ranges = {"temperature": "(0, inf)", "retain_subset_fraction": "[0, 1]"}


def kl_rows(target_probs: torch.Tensor, student_logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Per-row KL(target || softmax(student_logits / T)), summed over classes (0 where the target is 0)."""
    log_student = F.log_softmax(student_logits.float() / temperature, dim=-1)
    return F.kl_div(log_student, target_probs.float(), reduction="none").sum(-1)


def plain_adam_optimizer(trainer, method_name: str) -> tuple[type, dict]:
    """``(torch.optim.Adam, kwargs)`` from the TrainingArguments; the Trainer puts ``weight_decay`` in the param groups."""
    args = trainer.args
    optim = getattr(args.optim, "value", args.optim)
    if optim not in ("adamw_torch", "adamw_torch_fused"):
        warnings.warn(
            f"{method_name} optimises with plain Adam (plain_adam=True), so optim={optim!r} is ignored; "
            "set plain_adam=False to use TrainingArguments.optim.",
            stacklevel=2,
        )
    return torch.optim.Adam, {
        "lr": args.learning_rate,
        "betas": (args.adam_beta1, args.adam_beta2),
        "eps": args.adam_epsilon,
    }


@register_method("bad_teacher")
class BadTeacher(UnlearningMethod):
    """Bad Teacher (blindspot) unlearning with a competent and an incompetent teacher."""

    config_class = BadTeacherConfig
    needs_teacher = True
    display_name = "Bad Teacher"
    papers = (BAD_TEACHER,)
    decay_all_parameters = True  # Adam(model.parameters()) (weight decay 0 by default, so moot unless set)
    training_defaults = {
        "optim": "adamw_torch",  # only with plain_adam=False; with weight decay 0 AdamW is Adam
        "learning_rate": 1e-4,
        "weight_decay": 0.0,
        "lr_scheduler_type": "constant",
        "warmup_steps": 0,
        "num_train_epochs": 10,  # the reference's ResNet setting, as the other baselines (the paper: 1)
        "per_device_train_batch_size": 128,
        "max_grad_norm": 0.0,  # the reference never clips
    }

    def __init__(self, config=None):
        super().__init__(config)
        self.incompetent_teacher: nn.Module | None = None

    def validate(self, trainer) -> None:
        c = self.config
        if not 0.0 <= c.retain_subset_fraction <= 1.0:
            raise ValueError(f"retain_subset_fraction must be in [0, 1], got {c.retain_subset_fraction}.")
        if not c.temperature > 0:
            raise ValueError(f"bad_teacher temperature must be > 0, got {c.temperature}.")

    def mixture(self, trainer) -> MixtureSpec:
        n = len(trainer.retain_split)
        k = math.floor(self.config.retain_subset_fraction * n)
        # Python's random.sample seeded by the run's seed, as the reference; fixed for all epochs.
        return MixtureSpec(
            include_forget=True, retain_indices=sorted(random.Random(trainer.args.seed).sample(range(n), k))
        )

    def optimizer_cls_and_kwargs(self, trainer):
        return plain_adam_optimizer(trainer, self.name) if self.config.plain_adam else None

    def build_incompetent_teacher(self, trainer) -> nn.Module:
        from ..training.engines import whole_weights

        with whole_weights():  # its own whole module: under ZeRO-3 from_config would partition it, unmanaged
            fresh = fresh_model_like(trainer.model, trainer.args.seed)
        return fresh.eval().requires_grad_(False).to(trainer.args.device)

    def on_train_begin(self, trainer, state, control) -> None:
        if self.incompetent_teacher is None:
            self.incompetent_teacher = self.build_incompetent_teacher(trainer)

    def compute_loss(self, trainer, model, inputs) -> torch.Tensor:
        if self.incompetent_teacher is None:  # compute_loss called outside train()
            self.incompetent_teacher = self.build_incompetent_teacher(trainer)
        x, forget = inputs["pixel_values"], inputs["forget_flag"].bool()
        T = self.config.temperature
        student = trainer.logits(model, x).float()
        # Both teachers are in eval mode, so each row's logits do not depend on its batch: each teacher runs
        # (or is cached) only on the rows it teaches.
        targets = torch.empty_like(student)
        for rows, teacher, source in ((forget, self.incompetent_teacher, FORGET), (~forget, trainer.teacher, RETAIN)):
            # called even when no row of this kind is in the batch: the cache fills at the same step on every rank
            logits = trainer.teacher_logits(
                teacher, inputs, rows, cache=self.config.cache_teacher_logits, sources=(source,)
            )
            targets[rows] = F.softmax(logits / T, dim=-1)
        return kl_rows(targets, student, T).mean()
