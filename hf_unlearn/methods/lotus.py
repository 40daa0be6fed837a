"""LoTUS: Large-scale machine unlearning with a Taste of Uncertainty (Spartalis et al., CVPR 2025).

The model is distilled from a frozen copy of itself on a mixture of the whole forget set and a fixed random
subset of the retain set, with targets that ignore the labels (SPEC §2):

* retain rows: a one-hot *sample* of the teacher's distribution (Gumbel-max), so retain knowledge is kept
  without reinforcing over-confidence;
* forget rows: a Gumbel-softmax sample at temperature ``tau``, whose entropy grows with ``tau``;
* ``tau = exp(alpha * (A_f - A_cal))`` where ``A_f`` is the model's accuracy on the forget set (re-measured
  before every epoch) and ``A_cal`` the original model's accuracy on held-out calibration data: the further
  the forget accuracy is above "unseen-data" accuracy, the more uncertainty is injected;
* training stops before an epoch once ``A_f - A_cal <= -0.01`` (:func:`should_stop`, the reference's exact
  comparison). Tie case: with ``reference_rounding`` a forget accuracy exactly one rounded point below ``A_cal``
  is decided by the float subtraction, as in the reference: 0.92 - 0.93 = -0.01000000000000001 stops, 0.93 - 0.94
  = -0.009999999999999898 does not (18 of the 100 one-point pairs do not stop); accuracies are correct/total in
  float64 (``UnlearningTrainer.accuracy``) before rounding, as the reference's Python division.

Departures from the reference code, and why: accuracies are not rounded to 2 decimals unless
``reference_rounding`` is set (rounding makes ``tau`` a step function of the accuracy); the forget accuracy is
measured on the un-augmented forget images (the reference measures it on randomly augmented ones, SPEC §1.4);
the stop decision for epoch e+1 is taken at the end of epoch e, which is the same rule evaluated at the same
moment, placed where the Trainer checks its stop flag.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ._papers import LOTUS
from .base import MixtureSpec, UnlearningMethod, register_method


@dataclass
class LotusConfig:
    alpha: float = field(
        default=2.0,
        metadata={
            "help": "LoTUS alpha: tau = exp(alpha * (forget acc - calibration acc)). Paper: 8 for ResNet18 CIFAR-10, 2 elsewhere, 32 for class unlearning."
        },
    )
    retain_subset_fraction: float = field(
        default=0.3,
        metadata={"help": "Fraction of the retain set (fixed, seeded random subset) mixed with the whole forget set."},
    )
    class_unlearning: bool = field(
        default=False,
        metadata={
            "help": "Class-unlearning variant: the calibration accuracy is taken as 0, so tau only decays and the stop rule never fires."
        },
    )
    reference_rounding: bool = field(
        default=False,
        metadata={
            "help": "Round accuracies to 2 decimals before computing tau, as the reference code does (for matching published numbers)."
        },
    )
    target_sampling: str = field(
        default="gumbel",
        metadata={
            "help": "'gumbel' (paper): hard retain targets are Gumbel-max samples, soft forget targets Gumbel-softmax samples. 'softmax': teacher argmax and softmax(z / tau), no noise."
        },
    )
    cache_teacher_logits: bool = field(
        default=True,
        metadata={
            "help": "Compute the frozen teacher's logits on the training mixture once and reuse them every epoch (only when the image transform is deterministic; Gumbel noise is still drawn fresh every step)."
        },
    )
    alpha_search: list[float] | None = field(
        default=None,
        metadata={
            "help": "Retrain-free alpha search: run LoTUS once per listed alpha from the same original, score each by RF-JSD on the validation split (the test split when there is none; no retrained model needed), keep the lowest; every candidate is recorded in metrics.json 'alpha_search' and the card. Not with an --alpha of its own (refused: it would be ignored). Python: hf_unlearn.search_alpha."
        },
    )
    # Meaningful ranges, checked (with finiteness) before anything loads: hf_unlearn.training.ranges.
    ranges = {"alpha": "(0, inf)", "retain_subset_fraction": "(0, 1]", "alpha_search": "(0, inf)"}


def gumbel_noise(like: torch.Tensor) -> torch.Tensor:
    """Standard Gumbel noise -log(-log U), drawn as -log(Exponential(1)) like PyTorch's gumbel_softmax."""
    return -torch.empty_like(like).exponential_().log()


def lotus_targets(
    teacher_logits: torch.Tensor, forget_flag: torch.Tensor, tau: float, sampling: str = "gumbel"
) -> torch.Tensor:
    """Per-row targets: hard samples for retain rows, soft samples at temperature ``tau`` for forget rows."""
    z = teacher_logits.float()
    if sampling == "gumbel":
        hard_index = (z + gumbel_noise(z)).argmax(-1)  # two independent draws, as in the paper
        soft = F.softmax((z + gumbel_noise(z)) / tau, dim=-1)
    elif sampling == "softmax":
        hard_index = z.argmax(-1)
        soft = F.softmax(z / tau, dim=-1)
    else:
        raise ValueError(f"target_sampling must be 'gumbel' or 'softmax', got {sampling!r}.")
    hard = F.one_hot(hard_index, z.shape[-1]).to(z.dtype)
    return torch.where(forget_flag.bool().unsqueeze(-1), soft, hard)


def should_stop(forget_accuracy: float, calibration_accuracy: float) -> bool:
    """The reference's stop rule, ``delta <= -0.01`` on the (possibly rounded) accuracies, with no tolerance:
    the float result of the subtraction decides the one-point tie exactly as in the reference (module docstring)."""
    return forget_accuracy - calibration_accuracy <= -0.01


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return -(targets * F.log_softmax(logits.float(), dim=-1)).sum(-1).mean()


@register_method("lotus")
class Lotus(UnlearningMethod):
    """LoTUS (the headline method). Needs a ``calibration_dataset`` unless ``class_unlearning`` is set."""

    config_class = LotusConfig
    needs_teacher = True
    display_name = "LoTUS"
    papers = (LOTUS,)
    decay_all_parameters = True  # AdamW(model.parameters(), weight_decay=5e-4): biases and norms decay too
    training_defaults = {
        "optim": "adamw_torch",
        "learning_rate": 1e-4,
        "weight_decay": 5e-4,
        "lr_scheduler_type": "constant",
        "warmup_steps": 0,
        "num_train_epochs": 10,
        "per_device_train_batch_size": 128,
        "max_grad_norm": 0.0,  # the reference never clips
    }

    def __init__(self, config=None):
        super().__init__(config)
        self.tau: float | None = None
        self.calibration_accuracy: float | None = None
        self.history: list[dict] = []
        self._cache = None  # the trainer's TeacherLogitCache once read (hf_unlearn.training.teacher_cache)

    def check_config(self) -> None:
        super().check_config()
        if self.config.target_sampling not in ("gumbel", "softmax"):
            raise ValueError(f"--target_sampling must be 'gumbel' or 'softmax', got {self.config.target_sampling!r}.")

    def validate(self, trainer) -> None:
        c = self.config
        if c.alpha_search:
            raise ValueError(
                "alpha_search runs LoTUS once per alpha, which one trainer cannot do: use "
                "hf_unlearn.search_alpha(make_trainer, alphas, ...) or the command line's --alpha_search."
            )
        if not 0.0 < c.retain_subset_fraction <= 1.0:
            raise ValueError(f"retain_subset_fraction must be in (0, 1], got {c.retain_subset_fraction}.")
        if trainer.calibration_split is None and not c.class_unlearning:
            raise ValueError(
                "LoTUS needs a calibration_dataset (held-out data, e.g. the validation split) to measure the "
                "original model's accuracy on unseen data; pass one, or set class_unlearning=True."
            )

    def mixture(self, trainer) -> MixtureSpec:
        n = len(trainer.retain_split)
        k = max(1, math.floor(self.config.retain_subset_fraction * n))
        # Python's random.sample with the run's seed, as the reference; fixed for all epochs.
        return MixtureSpec(
            include_forget=True, retain_indices=sorted(random.Random(trainer.args.seed).sample(range(n), k))
        )

    # ---- the temperature schedule -----------------------------------------------------------------------
    def _round(self, x: float) -> float:
        return round(x, 2) if self.config.reference_rounding else x

    def prepare(self, trainer) -> None:
        if self.config.class_unlearning:
            self.calibration_accuracy = 0.0
        else:
            self.calibration_accuracy = self._round(trainer.accuracy(trainer.teacher, trainer.calibration_split))
        self._decide(trainer, epoch=0)

    def _decide(self, trainer, epoch: int) -> None:
        forget_acc = self._round(trainer.accuracy(trainer.model, trainer.forget_split))
        delta = forget_acc - self.calibration_accuracy
        stop = should_stop(forget_acc, self.calibration_accuracy)
        self.tau = math.exp(min(self.config.alpha * delta, 80.0))  # capped: exp(80) is already a uniform target
        self.history.append(
            {"epoch": epoch, "tau": self.tau, "forget_accuracy": forget_acc, "delta": delta, "stop": stop}
        )
        trainer.log(
            {
                "lotus_tau": self.tau,
                "lotus_forget_accuracy": forget_acc,
                "lotus_delta": delta,
                "lotus_calibration_accuracy": self.calibration_accuracy,
                "lotus_stop": float(stop),
            }
        )
        if stop:
            self.finished = True

    def on_epoch_end(self, trainer, state, control) -> None:
        if state.global_step >= state.max_steps:
            return  # no next epoch: skip the forget-accuracy pass
        self._decide(trainer, epoch=round(state.epoch))
        if self.finished:
            control.should_training_stop = True

    # ---- the loss ---------------------------------------------------------------------------------------
    def _teacher_logits(self, trainer, inputs) -> torch.Tensor:
        cache = self.config.cache_teacher_logits
        # _cache: the trainer's cache this method reads (None while it runs the teacher live)
        self._cache = trainer.teacher_logit_cache if cache and trainer.can_cache_teacher_logits() else None
        return trainer.teacher_logits(trainer.teacher, inputs, cache=cache)

    def compute_loss(self, trainer, model, inputs) -> torch.Tensor:
        teacher_logits = self._teacher_logits(trainer, inputs)
        targets = lotus_targets(teacher_logits, inputs["forget_flag"], self.tau, self.config.target_sampling)
        return soft_cross_entropy(trainer.logits(model, inputs["pixel_values"]), targets)

    # ---- resume ----------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"tau": self.tau, "calibration_accuracy": self.calibration_accuracy, "history": self.history}

    def load_state_dict(self, state: dict) -> None:
        self.tau = state["tau"]
        self.calibration_accuracy = state["calibration_accuracy"]
        self.history = list(state["history"])
