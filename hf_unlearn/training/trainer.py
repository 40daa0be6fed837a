"""``UnlearningTrainer``: a ``transformers.Trainer`` that unlearns a forget set with a registered method."""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable
from typing import Any

import datasets
import torch
import torch.nn.functional as F
from torch import nn
from transformers import Trainer, TrainerCallback
from transformers.trainer_utils import TrainOutput

from ..data.splits import ImageSplit, MixtureDataset, collate_rows, to_image_split
from ..methods import UnlearningMethod, get_method_class
from ..modeling.classifiers import family_of, image_transform_from, logits_of
from ..records.run_record import RunRecord, record_from_trainer
from . import hooks, method_state
from .arguments import UnlearningArguments
from .memory import MaterializationBudget
from .norms import single_row_safe
from .teacher_cache import TeacherLogitsMixin
from .trainer_checkpoints import CheckpointMixin
from .trainer_eval import EvaluationMixin
from .trainer_save import SaveMixin

__all__ = ["UnlearningTrainer", "NonFiniteLossError"]


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or infinite; the run stops before the optimiser applies it."""


class _MethodEvents(TrainerCallback):
    """Forwards the Trainer's events to the unlearning method (kept first among the callbacks)."""

    def __init__(self, trainer: UnlearningTrainer):
        self.trainer = trainer

    def on_train_begin(self, args, state, control, **kwargs):
        self.trainer.method.on_train_begin(self.trainer, state, control)

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.trainer.method.on_epoch_begin(self.trainer, state, control)

    def on_epoch_end(self, args, state, control, **kwargs):
        self.trainer.method.on_epoch_end(self.trainer, state, control)
        self.trainer._epochs_ended = round(state.epoch or 0)  # saved with the method state (see train())

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        self.trainer.method.on_pre_optimizer_step(self.trainer, self.trainer.model)

    def on_optimizer_step(self, args, state, control, **kwargs):
        self.trainer.method.on_optimizer_step(self.trainer, self.trainer.model)

    def on_train_end(self, args, state, control, **kwargs):
        self.trainer.method.on_train_end(self.trainer, state, control)


class UnlearningTrainer(EvaluationMixin, SaveMixin, TeacherLogitsMixin, CheckpointMixin, Trainer):
    """Unlearn ``forget_dataset`` from ``model`` while preserving ``retain_dataset``.

    Args:
        model: the trained image classifier (Hugging Face or timm). It is updated in place; keep your own copy
            (or the checkpoint on disk) if you need the original afterwards.
        args: :class:`UnlearningArguments` (``args.method`` names the method unless ``method`` is given).
        forget_dataset / retain_dataset: ``datasets.Dataset`` (typically from :func:`hf_unlearn.select_forget`)
            with an image column and a label column, or already-built :class:`~hf_unlearn.data.splits.ImageSplit`.
        calibration_dataset: held-out data the original model never trained on (LoTUS compares the model's
            forget-set accuracy with the original model's accuracy here).
        method: a registered name or an :class:`UnlearningMethod` instance (overrides ``args.method``).
        method_config: the method's config dataclass or a dict of its fields.
        image_transform: batch transform for ``Dataset.with_transform`` producing ``pixel_values``;
            defaults to ``processing_class`` (an HF image processor) applied to ``image_column``.
        transform_is_deterministic: ``False`` when ``image_transform`` augments (then nothing is cached: neither
            the preprocessed pixels nor the teachers' logits, see :meth:`teacher_logits`).
        removal_record: the :class:`~hf_unlearn.data.selection.RemovalRecord` of the forget set, for the model card.
    """

    # Methods return a batch-mean loss, so the Trainer must divide it by the accumulation steps itself
    # (HF classifiers accept **kwargs, which would otherwise make the Trainer assume the model scales it).
    loss_is_scaled_for_ga = False

    def __init__(
        self,
        model: nn.Module,
        args: UnlearningArguments,
        *,
        forget_dataset: datasets.Dataset | ImageSplit,
        retain_dataset: datasets.Dataset | ImageSplit,
        calibration_dataset: datasets.Dataset | ImageSplit | None = None,
        method: str | UnlearningMethod | None = None,
        method_config: Any = None,
        image_transform: Callable[[dict], dict] | None = None,
        image_column: str = "image",
        transform_is_deterministic: bool = True,
        removal_record: Any = None,
        processing_class: Any = None,
        callbacks: list[TrainerCallback] | None = None,
        **trainer_kwargs,
    ):
        if not isinstance(args, UnlearningArguments):
            raise TypeError(f"args must be UnlearningArguments, got {type(args).__name__}.")
        from .checks import check_process_group

        check_process_group(args.world_size)  # every rank alone would write the output as the main process
        if isinstance(method, UnlearningMethod):
            self.method = method
        else:
            self.method = get_method_class(method or args.method)(method_config)
        args.method = self.method.name
        from ..modeling.architectures import check_supported

        check_supported(model)  # an architecture hf-unlearn cannot feed, named before any preprocessing
        self.family = family_of(model)  # how this library's classifiers are called, sized, saved
        self.num_labels = self.family.num_labels(model)
        self.removal_record = removal_record

        if image_transform is None and processing_class is not None:
            from ..data.images import processor_channels
            from ..modeling.architectures import processor_pixels

            channels = processor_channels(processing_class, getattr(model, "config", None))
            image_transform = image_transform_from(processor_pixels(processing_class, model, channels), image_column)
        self.args = args  # as_split and the method's hooks below read it
        self.transform_is_deterministic = transform_is_deterministic
        self.image_transform = image_transform
        self._split_cache: dict = {}
        # One budget for every split this trainer materialises (see hf_unlearn.training.memory).
        self.materialization_budget = MaterializationBudget.from_megabytes(args.materialize_budget_mb)
        self.forget_split = self.as_split(forget_dataset, "forget")
        self.retain_split = self.as_split(retain_dataset, "retain")
        self.calibration_split = self.as_split(calibration_dataset, "calibration")
        self._check_labels()

        self._check_engine(model=model)  # from the arguments, the environment and the weights, before any work
        # Frozen copy of the original model, for methods that distil from it; also the basis of metrics.
        self.teacher = copy.deepcopy(model).eval().requires_grad_(False) if self.method.needs_teacher else None
        # --bf16, or bf16 from an accelerate config (ACCELERATE_MIXED_PRECISION, which TrainingArguments reads)
        if (args.bf16 or getattr(args, "mixed_precision", None) == "bf16") and args.device.type == "cpu":
            from .precision import guard_cpu_bf16_convolutions

            guard_cpu_bf16_convolutions(model)  # oneDNN's bf16 conv gradient bug (hf_unlearn.training.precision)

        self.method.validate(self)
        spec = self.method.mixture(self)
        train_dataset = MixtureDataset(
            self.forget_split if spec.include_forget else None, self.retain_split, spec.retain_indices
        )
        self._check_some_steps(train_dataset)
        super().__init__(
            model=model,
            args=args,
            train_dataset=train_dataset,
            data_collator=collate_rows,
            processing_class=processing_class,
            callbacks=[_MethodEvents(self)] + list(callbacks or []),
            optimizer_cls_and_kwargs=self.method.optimizer_cls_and_kwargs(self),
            **trainer_kwargs,
        )
        self._check_engine(self.accelerator)  # and from the engine the accelerator really set up
        self.unlearning_runtime_s: float | None = None
        #: Rows through a forward *and* backward pass of the model being unlearned, by kind (see count_examples).
        self.examples_processed: dict[str, int] = {"training": 0, "preparation": 0}
        self._epochs_ended = 0  # epochs whose end-of-epoch decision the method has taken (for resume)
        self._fsdp_whole = None  # under FSDP2, while training: the whole CPU copy (hf_unlearn.training.fsdp)
        self.last_unlearning_metrics: dict | None = None
        self.original_model_info: dict = {}

    # ---- checks -----------------------------------------------------------------------------------------
    def _check_labels(self) -> None:
        for split in (self.forget_split, self.retain_split, self.calibration_split):
            if split is None:
                continue
            if len(split) == 0:
                raise ValueError(f"the {split.name} set is empty.")
            lo, hi = int(split.labels.min()), int(split.labels.max())
            if lo < 0 or hi >= self.num_labels:
                raise ValueError(
                    f"the {split.name} set has labels in [{lo}, {hi}] but the model has {self.num_labels} classes "
                    f"(0..{self.num_labels - 1}); use the dataset the model was trained on or a matching head."
                )

    def _check_engine(self, accelerator=None, model=None) -> None:
        """Refusals by engine (masks, teachers of partitioned weights) and the fallback warning (hf_unlearn.training.engines)."""
        from .engines import check_engine

        check_engine(self, model if model is not None else self.model, accelerator)

    def _check_some_steps(self, mixture) -> None:
        """A training method that would take no optimiser step is refused: its card would claim a removal that
        never happened."""
        if not self.method.trains:
            return
        args = self.args
        if len(mixture) == 0:
            raise ValueError(
                f"method '{self.method.name}' has an empty training mixture: no optimiser step would run; "
                "check the method's retain/forget settings."
            )
        if args.max_steps == 0 or (args.max_steps < 0 and not args.num_train_epochs > 0):
            raise ValueError(
                "no optimiser step would run (max_steps/num_train_epochs); pass --num_train_epochs > 0 "
                "or --max_steps >= 1."
            )
        per_step = args.per_device_train_batch_size * max(1, args.world_size)
        if args.dataloader_drop_last and len(mixture) < per_step:
            raise ValueError(
                f"--dataloader_drop_last with {len(mixture)} training rows and batches of {per_step} "
                "drops every batch: no optimiser step would run; lower --per_device_train_batch_size "
                "or drop --dataloader_drop_last."
            )

    # ---- helpers for methods ------------------------------------------------------------------------------
    @staticmethod
    def logits(model: nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
        # a one-row batch in training mode is normalised with BatchNorm's running statistics (hf_unlearn.training.norms)
        with single_row_safe(model, len(pixel_values)):
            return logits_of(model, pixel_values)

    def count_examples(self, rows: int, kind: str = "training") -> None:
        """Add ``rows`` to this run's cost (``examples_processed``): rows through a forward and backward pass of the
        model being unlearned, on this process. ``training``: the Trainer's steps (counted in ``compute_loss``);
        ``preparation``: a method's own gradient passes (SSD's importances, DEL's and SalUn's scores, UNSIR's noise
        steps). Forward-only passes (teacher logits, LoTUS' accuracy checks, evaluation) are not counted: their
        cost shows in the wall time."""
        self.examples_processed[kind] = self.examples_processed.get(kind, 0) + int(rows)

    def as_split(self, dataset, name: str) -> ImageSplit | None:
        """A ``datasets.Dataset`` turned into an :class:`ImageSplit` with this trainer's image transform.

        Memoised by the dataset's fingerprint: evaluating several models on the same test set preprocesses it once.
        """
        if dataset is None or isinstance(dataset, ImageSplit):
            return dataset
        key = (getattr(dataset, "_fingerprint", None) or id(dataset), name)
        if key not in self._split_cache:
            self._split_cache[key] = to_image_split(
                dataset,
                self.image_transform,
                label_column=self.args.label_column_name,
                deterministic=self.transform_is_deterministic and self.args.materialize_data,
                name=name,
                budget=self.materialization_budget,
                progress=not self.args.disable_tqdm and self.args.process_index == 0,
            )
        return self._split_cache[key]

    # ---- run record, model card, Hub -------------------------------------------------------------------
    def run_record(self, metrics: dict | None = None) -> RunRecord:
        """This run's :class:`~hf_unlearn.records.run_record.RunRecord` (``metrics`` default to the last
        :meth:`evaluate_unlearning` results): what the card, ``metrics.json`` and ``unlearning_config.json`` hold."""
        return record_from_trainer(self, metrics)

    def unlearning_model_card(self, metrics: dict | None = None):
        """Our model card (``model_cards/``) of :meth:`run_record`: method, removal record, metrics; never the removed
        ids. Rendered by the registered card renderer (:mod:`hf_unlearn.training.hooks`); None when there is none."""
        render = hooks.card_renderer()
        return render(self.run_record(metrics)) if render is not None else None

    def push_to_hub(
        self,
        commit_message: str | None = None,
        blocking: bool = True,
        token: str | None = None,
        revision: str | None = None,
        **kwargs,
    ):
        """Push ``output_dir`` with the registered publisher (:func:`hf_unlearn.publishing.hub.push_unlearned_to_hub`): one
        commit, our card, and never ``removed_ids.json`` (the stock ``Trainer.push_to_hub`` would upload it)."""
        if not self.is_world_process_zero():
            return None
        publish = hooks.publisher()
        if publish is None:
            raise RuntimeError(
                "no Hub publisher is registered (hf_unlearn.training.hooks.register_publisher); import hf_unlearn "
                "to register hf_unlearn.publishing.hub.push_unlearned_to_hub."
            )
        return publish(
            self.args.output_dir,
            self.hub_model_id or self.args.hub_model_id,
            private=bool(self.args.hub_private_repo),
            token=token or self.args.hub_token,
            revision=revision or getattr(self.args, "hub_revision", None),
            commit_message=commit_message,
        )

    def create_model_card(self, *args, **kwargs) -> None:
        """Replaces the Trainer's generic card (used by ``push_to_hub``) with the unlearning card."""
        if self.is_world_process_zero():
            self._write_card(self.args.output_dir)

    def _write_card(self, folder: str) -> None:
        card = self.unlearning_model_card()
        if card is not None:
            os.makedirs(folder, exist_ok=True)
            card.save(os.path.join(folder, "README.md"))

    # ---- the Trainer's hooks -----------------------------------------------------------------------------
    def get_decay_parameter_names(self, model: nn.Module) -> list[str]:
        """Every parameter when the method says ``decay_all_parameters`` (the reference optimisers decay biases and
        norm weights too); otherwise the Trainer's default, which exempts them."""
        if getattr(self.method, "decay_all_parameters", False):
            return [n for n, _ in model.named_parameters()]
        return super().get_decay_parameter_names(model)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if return_outputs:  # Trainer.evaluate / predict: plain cross-entropy on the labels
            logits = self.logits(model, inputs["pixel_values"])
            return F.cross_entropy(logits, inputs["labels"]), {"logits": logits}
        self.count_examples(len(inputs["labels"]))
        loss = self.method.compute_loss(self, model, inputs)
        if self.args.fail_on_nonfinite_loss and not torch.isfinite(loss.detach()).all():
            raise NonFiniteLossError(
                f"the {self.method.name} loss is {loss.item()} at step {self.state.global_step + 1} "
                f"(epoch {self.state.epoch or 0:.2f}); lower the learning rate or check the data. "
                "Nothing was saved as the final model."
            )
        return loss

    def train(self, resume_from_checkpoint: str | bool | None = None, **kwargs) -> TrainOutput:
        """Run the unlearning method: its one-off preparation, then (for training methods) the Trainer loop."""
        start = time.perf_counter()
        if resume_from_checkpoint is True:
            # a checkpoint whose save was interrupted (no method state, written last) is not a checkpoint
            resume_from_checkpoint = method_state.last_complete_checkpoint(self.args.output_dir)
            if resume_from_checkpoint is None:
                raise ValueError(f"no complete checkpoint found in {self.args.output_dir} to resume from.")
        if resume_from_checkpoint:
            self._load_method_state(resume_from_checkpoint)
            self._replay_missed_epoch_end(resume_from_checkpoint)
        else:
            self.method.finished = False
            self.method.prepare(self)
        if self.teacher is not None:
            self.teacher.to(self.args.device)
        if not self.method.trains or self.method.finished:
            output = TrainOutput(self.state.global_step, 0.0, {"train_runtime": time.perf_counter() - start})
            self.log({"unlearning_steps": float(self.state.global_step)})
        else:
            output = self._train_loop(resume_from_checkpoint, **kwargs)
        if self.accelerator.num_processes > 1:
            # DDP keeps the parameters in sync but BatchNorm running statistics are updated locally after the last
            # forward, so ranks end with slightly different buffers. The saved model is rank 0's; give every rank
            # rank 0's buffers so the sharded evaluation scores exactly the model that is saved.
            import torch.distributed as dist

            with torch.no_grad():
                for buffer in self.accelerator.unwrap_model(self.model).buffers():
                    dist.broadcast(buffer.data, src=0)
        self.model.eval()
        self.unlearning_runtime_s = time.perf_counter() - start
        return output

    def _train_loop(self, resume_from_checkpoint, **kwargs) -> TrainOutput:
        """The Trainer's loop; under FSDP2 the model is sharded only inside it (hf_unlearn.training.fsdp)."""
        if not self.is_fsdp_enabled:
            return super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)
        from . import fsdp

        model = self.accelerator.unwrap_model(self.model)
        skeleton = self._fsdp_whole = fsdp.whole_copy(model)  # also scores decisions in float32 (accuracy())
        fsdp.norms_in_float32(model, self.accelerator)
        try:
            with fsdp.accelerate_can_shard(model):
                output = super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)
        finally:
            self._fsdp_whole = None
        self.model = self.model_wrapped = fsdp.whole_again(self.model, skeleton, self.args.device)
        return output

    def unlearn(self, **kwargs) -> TrainOutput:
        """Alias of :meth:`train`, for readability."""
        return self.train(**kwargs)
