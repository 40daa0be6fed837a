"""Small pieces several methods share."""

from __future__ import annotations

import torch

# The optimiser the LoTUS reference code uses for its SGD baselines (Finetune, NegGrad+, Random Labeling, SalUn).
SGD_BASELINE_DEFAULTS = {
    "optim": "sgd",
    "optim_args": "momentum=0.9",
    "learning_rate": 1e-3,
    "weight_decay": 5e-4,
    "lr_scheduler_type": "constant",
    "warmup_steps": 0,
    "num_train_epochs": 10,
    "per_device_train_batch_size": 128,
    # The reference never clips gradients (the Trainer's default max_grad_norm=1.0 clipped most steps).
    "max_grad_norm": 0.0,
}


def random_other_labels(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """A label drawn uniformly from the classes other than each row's true label."""
    shift = torch.randint(1, num_classes, labels.shape, device=labels.device)
    return (labels + shift) % num_classes


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` where ``mask`` is true; 0 (keeping the graph) when no row is selected."""
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp(min=1.0)
