"""The evaluation half of :class:`~hf_unlearn.UnlearningTrainer`: logits, accuracies and the unlearning metrics
of any model on the trainer's splits, streamed batch by batch and sharded across processes."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..data.splits import ImageSplit
from ..evaluation.metrics import ModelPredictions, avg_gap, retrain_free_estimate, unlearning_metrics

__all__ = ["EvaluationMixin"]


def _splits_of(predictions) -> list[str]:
    return list(getattr(predictions, "stats", None) or getattr(predictions, "logits", {}))


#: An evaluation pass is cut into at least this many batches: one batch the size of the split (the default eval
#: batch of 256 against a 180-row split) left its progress bar at 0 for the whole pass (minutes for a ViT-B/16 on
#: CPU). The batch depends on the split size only, never on timing, so the numbers do not depend on the machine.
MIN_BATCHES_PER_PASS = 8
#: ... but never below this many rows per batch (unless asked): tiny batches add per-batch overhead. ViT-B/16, 200
#: images: evaluation / bare forward 1.47 with batches of 1-5 rows, 1.14 with this floor (results/eval_speed.json,
#: "vit-b16"; both on a shared machine, the first at a higher load).
MIN_EVAL_BATCH = 16


def eval_batch_size(rows: int, configured: int) -> int:
    """The batch of an evaluation pass over ``rows`` rows: ``configured`` (``per_device_eval_batch_size``), made
    smaller for a small split so that the pass has at least :data:`MIN_BATCHES_PER_PASS` batches of at least
    :data:`MIN_EVAL_BATCH` rows."""
    return max(1, min(int(configured), max(MIN_EVAL_BATCH, math.ceil(rows / MIN_BATCHES_PER_PASS))))


class EvaluationMixin:
    """Mixed into :class:`~hf_unlearn.UnlearningTrainer` (it reads ``args``, ``accelerator``, ``num_labels``,
    ``logits``, the splits, ``teacher``, ``model``, ``method``, ``as_split`` and ``log`` of the trainer)."""

    def _progress(self, total: int, desc: str):
        """A tqdm bar for a pass over ``total`` rows (main process only; off with ``disable_tqdm``)."""
        from tqdm.auto import tqdm

        return tqdm(
            total=total,
            desc=desc,
            unit="img",
            leave=False,
            disable=bool(self.args.disable_tqdm) or self.args.process_index != 0,
        )

    @torch.inference_mode()
    def predict_logits(
        self, model: nn.Module, split: ImageSplit, batch_size: int | None = None, desc: str | None = None
    ) -> torch.Tensor:
        """Logits of ``model`` on every row of ``split``, in order, in eval mode.

        In a multi-process run each process scores a contiguous shard and the shards are gathered, so every
        rank gets the same full result and no sample is counted twice.
        """
        world, n = self.accelerator.num_processes, len(split)
        per_rank, rows, batch_size = self._rows_of_this_process(n, batch_size)
        was_training = model.training
        model.eval()
        device = self.args.device
        outs = []
        from ..evaluation.streaming import split_batches

        try:
            with (
                self.autocast_smart_context_manager(),
                self._progress(len(rows), desc or f"logits {split.name}") as bar,
            ):
                for _, pixels, _ in split_batches(split, batch_size, rows, self.args.dataloader_num_workers):
                    outs.append(self.logits(model, pixels.to(device, non_blocking=True)).float())
                    bar.update(len(pixels))
                self._lockstep(model, split, per_rank, len(rows), batch_size)
        finally:
            model.train(was_training)
        local = torch.cat(outs) if outs else torch.empty(0, self.num_labels, device=device)
        if world == 1:
            return local
        padded = torch.zeros(per_rank, self.num_labels, device=device)
        padded[: len(local)] = local
        return self.accelerator.gather(padded)[:n]  # shards are contiguous and in rank order

    def accuracy(self, model: nn.Module, split: ImageSplit, batch_size: int | None = None) -> float:
        # Counted batch by batch (no N x C logits); in a multi-process run the ranks' counts are added.
        # correct / total in float64: a float32 mean can cross a 2-decimal rounding boundary (LoTUS' stop rule);
        # the forward in float32 too: a bf16 argmax can flip near-ties and move the decision (hf_unlearn.training.precision)
        from .fsdp import float32_whole
        from .precision import float32_forward

        with float32_whole(model, self._fsdp_whole, self.args.device) as scored:
            with float32_forward(scored):
                stats = self.summarize(scored, split, batch_size=batch_size, features=False)
        return stats.correct / stats.rows

    @torch.inference_mode()
    def summarize(
        self,
        model: nn.Module,
        split: ImageSplit,
        name: str | None = None,
        *,
        batch_size: int | None = None,
        keep_logits: bool = False,
        features: bool = True,
        class_sums: bool | None = None,
    ):
        """Stream ``model`` over ``split`` into a :class:`~hf_unlearn.evaluation.streaming.SplitStats`: correct count,
        per-row MIA features, per-class probability sums (forget / test splits) and, with ``keep_logits``, the
        logits. Memory: a few floats per row plus C x C, never N x C (unless ``keep_logits``). Sharded across
        processes like :meth:`predict_logits`. ``name`` (default ``split.name``) decides the class sums (forget, test,
        validation) unless ``class_sums`` says otherwise."""
        from ..evaluation.streaming import CLASS_SUM_SPLITS, SplitStats, split_batches

        n = len(split)
        per_rank, rows, batch_size = self._rows_of_this_process(n, batch_size)
        name = name or split.name
        if class_sums is None:
            class_sums = features and name in CLASS_SUM_SPLITS
        frozen = model is getattr(self, "teacher", None)  # the frozen original: its passes are kept and reused
        if frozen:
            kept = self._kept_pass(model, split, features=features, class_sums=class_sums, keep_logits=keep_logits)
            if kept is not None:
                return kept
        stats = SplitStats(self.num_labels, class_sums=class_sums, keep_logits=keep_logits, features=features)
        was_training = model.training
        model.eval()
        device = self.args.device
        try:
            with self.autocast_smart_context_manager(), self._progress(len(rows), f"evaluating {name}") as bar:
                for _, pixels, labels in split_batches(split, batch_size, rows, self.args.dataloader_num_workers):
                    stats.update(self.logits(model, pixels.to(device, non_blocking=True)).float(), labels)
                    bar.update(len(labels))
                self._lockstep(model, split, per_rank, len(rows), batch_size)
        finally:
            model.train(was_training)
        stats = stats.finish(self.accelerator, n)
        if frozen:
            self.__dict__.setdefault("_kept_passes", []).append((model, split, stats))
        return stats

    def _rows_of_this_process(self, n: int, batch_size: int | None) -> tuple[int, range, int]:
        """This process's contiguous shard of ``n`` rows, in rank order: (rows per process, its rows, the evaluation
        batch, from ``batch_size`` or :func:`eval_batch_size`). Every process gets the same batch size."""
        world, rank = self.accelerator.num_processes, self.accelerator.process_index
        per_rank = math.ceil(n / world)
        rows = range(min(rank * per_rank, n), min((rank + 1) * per_rank, n))
        return per_rank, rows, batch_size or eval_batch_size(per_rank, self.args.per_device_eval_batch_size)

    def _lockstep(self, model: nn.Module, split: ImageSplit, per_rank: int, rows: int, batch_size: int) -> None:
        """The forwards a sharded model (FSDP2, while it trains) still owes after this process's ``rows`` rows: each
        forward all-gathers parameters with every other process, so all must make as many as the process with the
        most rows (``per_rank``); otherwise one waits forever, or pairs its gather with another's (measured: a LoTUS
        forget set of 127 rows split 64 / 63 in batches of 1 aborted the run). The extra outputs are discarded."""
        if self.accelerator.num_processes == 1 or len(split) == 0:
            return
        from .fsdp import is_sharded

        owed = math.ceil(per_rank / batch_size) - math.ceil(rows / batch_size)
        if owed > 0 and is_sharded(model):
            filler = split.pixels([0]).to(self.args.device)
            for _ in range(owed):
                self.logits(model, filler)

    def _kept_pass(self, model, split, *, features: bool, class_sums: bool, keep_logits: bool):
        """A pass of the frozen ``model`` over ``split`` already made that holds everything asked: e.g. LoTUS's
        calibration accuracy is read from the original's validation pass (the same split) instead of a second one."""
        for kept_model, kept_split, stats in self.__dict__.get("_kept_passes", []):
            if (
                kept_model is model
                and kept_split is split
                and (stats.with_features or not features)
                and (stats.class_sums is not None or not class_sums)
                and (stats.logits is not None or not keep_logits)
            ):
                return stats
        return None

    def _validation_split(self, validation_dataset):
        """The split of ``validation_dataset``: the calibration split when it is the same data (the CLI calibrates
        on the validation split), so it is materialised and evaluated once."""
        if validation_dataset is None:
            return self.calibration_split
        key = getattr(validation_dataset, "_fingerprint", None) or id(validation_dataset)
        same = self._split_cache.get((key, "calibration"))
        return same if same is not None else self.as_split(validation_dataset, "validation")

    def predictions(
        self, model: nn.Module, test_dataset=None, validation_dataset=None, *, keep_forget_logits: bool | None = None
    ):
        """What the metrics need of ``model`` on the forget, retain, test and validation splits, each streamed once.

        Returns :class:`~hf_unlearn.evaluation.streaming.StreamingPredictions` (per-row floats and per-class sums, no N x C
        logits), accepted wherever ``ModelPredictions`` is. ``keep_forget_logits`` keeps the forget split's logits,
        which JSD against a gold model needs; by default they are kept when they take at most
        ``streaming.KEEP_FORGET_LOGITS_MAX_BYTES`` (64 MB), so JSD works as before on all but huge forget sets.
        """
        from ..evaluation.streaming import KEEP_FORGET_LOGITS_MAX_BYTES, StreamingPredictions

        if keep_forget_logits is None:
            keep_forget_logits = len(self.forget_split) * self.num_labels * 4 <= KEEP_FORGET_LOGITS_MAX_BYTES

        splits = {
            "forget": self.forget_split,
            "retain": self.retain_split,
            "test": self.as_split(test_dataset, "test"),
            "validation": self._validation_split(validation_dataset),
        }
        out = StreamingPredictions()
        for name, split in splits.items():
            if split is not None:
                out.stats[name] = self.summarize(
                    model, split, name, keep_logits=keep_forget_logits and name == "forget"
                )
        return out

    def evaluate_unlearning(
        self,
        test_dataset=None,
        validation_dataset=None,
        *,
        original: nn.Module | ModelPredictions | None = None,
        gold: nn.Module | ModelPredictions | None = None,
        variant: str = "standard",
        log: bool = True,
    ) -> dict[str, dict[str, float]]:
        """Accuracies, MIA, RF-JSD (and JSD / Avg Gap against ``gold``) of the unlearned and original models.

        ``original`` defaults to the trainer's frozen teacher; methods without a teacher need the original
        model or its :meth:`predictions` taken before training. ``validation_dataset`` defaults to the
        calibration set. Returns ``{"unlearned": {...}, "original": {...}, "gold": {...}}``.
        """
        original = original if original is not None else self.teacher
        if original is None:
            raise ValueError(
                f"method '{self.method.name}' keeps no copy of the original model: pass original= (the model, or "
                "trainer.predictions(original_model, ...) taken before training)."
            )
        from ..evaluation.streaming import StreamingPredictions

        def preds(m):
            if isinstance(m, (ModelPredictions, StreamingPredictions)):
                return m
            return self.predictions(
                m, test_dataset, validation_dataset, keep_forget_logits=True if gold is not None else None
            )

        unlearned_p, original_p = preds(self.model), preds(original)
        gold_p = preds(gold) if gold is not None else None
        results = {
            "unlearned": unlearning_metrics(unlearned_p, original_p, gold_p, variant=variant),
            "original": unlearning_metrics(original_p, original_p, gold_p, variant=variant),
        }
        # The retrain-free verdict: each Avg Gap term's target estimated from the original on held-out data
        # (hf_unlearn.evaluation.metrics.RETRAIN_FREE_RULE); an estimate, shown next to the true Avg Gap when there is a gold.
        if {"forget", "retain"} <= set(_splits_of(unlearned_p)) and {"test", "validation"} & set(
            _splits_of(unlearned_p)
        ):
            estimate = retrain_free_estimate(unlearned_p, original_p)
            results["retrain_free"] = estimate
            results["unlearned"]["avg_gap_estimate"] = estimate["avg_gap_estimate"]
            results["original"]["avg_gap_estimate"] = retrain_free_estimate(original_p, original_p)["avg_gap_estimate"]
        if gold_p is not None:
            results["gold"] = unlearning_metrics(gold_p, original_p, gold_p, variant=variant)
            for key in ("unlearned", "original"):
                results[key]["avg_gap"] = avg_gap(results[key], results["gold"])
        if self.unlearning_runtime_s is not None:
            results["unlearned"]["runtime_s"] = self.unlearning_runtime_s
        if log:
            self.log({f"unlearned_{k}": v for k, v in results["unlearned"].items()})
        self.last_unlearning_metrics = results
        self.last_predictions = {"unlearned": unlearned_p, "original": original_p}  # e.g. for the alpha search
        return results
