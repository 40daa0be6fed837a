"""``UnlearningArguments``: ``TrainingArguments`` plus what every unlearning run shares.

A method's own hyper-parameters live in its ``config_class`` (one dataclass per method file); its preferred
optimiser, learning rate and schedule are its ``training_defaults``, applied by :meth:`UnlearningArguments.for_method`
in Python and by ``scripts/unlearn.py`` on the command line, and overridden by anything the user sets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import TrainingArguments

__all__ = ["UnlearningArguments"]


@dataclass
class UnlearningArguments(TrainingArguments):
    method: str = field(
        default="lotus",
        metadata={
            "help": "Unlearning method, a name from hf_unlearn.list_methods() (lotus, finetune, neggrad_plus, ...)."
        },
    )
    # Evaluation here is metric passes over whole splits (LoTUS checks forget accuracy every epoch); the
    # Trainer's default of 8 made those passes ~4x slower than batch 128 (measured, scripts/benchmark_speed.py).
    per_device_eval_batch_size: int = field(
        default=256,
        metadata={"help": "Batch size per device for evaluation passes (forget accuracy, metrics, teacher logits)."},
    )
    label_column_name: str = field(default="label", metadata={"help": "Column holding the integer class label."})
    materialize_data: bool = field(
        default=True,
        metadata={
            "help": "Preprocess forget/retain/calibration images once into tensors when the transform is "
            "deterministic (much faster than per-step preprocessing). Set False for huge datasets or random augmentation."
        },
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Allow writing into a non-empty output_dir (its finished files are replaced). Without it a "
            "non-empty output_dir is refused, so no earlier result is clobbered by accident."
        },
    )
    fail_on_nonfinite_loss: bool = field(
        default=True,
        metadata={"help": "Stop with an error naming the step and method as soon as a loss is NaN or infinite."},
    )
    materialize_budget_mb: float | None = field(
        default=None,
        metadata={
            "help": "Memory (MB) that preprocessed splits may take together when materialised (forget, retain, "
            "calibration, test, validation, first come first served); splits beyond it stay lazy and are "
            "transformed per batch (use --dataloader_num_workers). Default: half the RAM available at start."
        },
    )

    def __post_init__(self):
        from .ranges import check_training_arguments

        # every numeric flag, before TrainingArguments acts on it (hf_unlearn.training.ranges); a refusal quotes the method's
        # defaults, not TrainingArguments' (an unknown method is reported where the method is looked up)
        check_training_arguments(self, defaults=_method_training_defaults(self.method))
        if self.materialize_budget_mb is not None and not self.materialize_budget_mb >= 0:
            raise ValueError(
                f"materialize_budget_mb must be >= 0 (MB), got {self.materialize_budget_mb}; pass e.g. "
                "--materialize_budget_mb 4096, or 0 to keep every split lazy."
            )
        if self.gradient_accumulation_steps < 1:
            raise ValueError(
                f"gradient_accumulation_steps must be >= 1, got {self.gradient_accumulation_steps}; pass "
                "--gradient_accumulation_steps 1 (or more)."
            )
        # Images are preprocessed once; the model signature is not what decides which columns to keep.
        self.remove_unused_columns = False
        if self.dataloader_pin_memory and (self.use_cpu or not _has_accelerator()):
            self.dataloader_pin_memory = False  # pinning needs an accelerator: torch warns on every run without one
        if self.label_names is None:
            self.label_names = ["labels"]
        super().__post_init__()

    @classmethod
    def for_method(cls, method: str, **kwargs) -> UnlearningArguments:
        """Arguments with ``method``'s training defaults (optimiser, learning rate, epochs...), then ``kwargs``.

        No intermediate checkpoints unless asked (``save_strategy="no"``, as on the command line): a run ends with
        :meth:`UnlearningTrainer.save_unlearned`, and a Trainer checkpoint of a ViT-B/16 is ~1 GB of weights and
        optimizer state."""
        from ..methods import get_method_class

        defaults = {"save_strategy": "no", **get_method_class(method).training_defaults}
        defaults.update(kwargs)
        return cls(method=method, **defaults)


def _has_accelerator() -> bool:
    import torch

    accelerator = getattr(torch, "accelerator", None)  # torch >= 2.6; older: CUDA is the accelerator that pins
    return bool(accelerator.is_available()) if accelerator is not None else torch.cuda.is_available()


def _method_training_defaults(method: str) -> dict:
    from ..methods import get_method_class

    try:
        return dict(get_method_class(method).training_defaults)
    except (KeyError, ValueError):
        return {}
