"""Streaming evaluation: metrics accumulated batch by batch, never an N x C logits matrix.

A model's pass over a split keeps only what the metrics need:

* accuracy: a count of correct rows;
* membership inference (``metrics/mia``): one float per row per attack feature (entropy, loss, confidence);
* RF-JSD (``metrics/rf_jsd``): per-class sums of the softmax vectors (C x C floats) and per-class counts;
* JSD against a gold model (``metrics/jsd``) pairs two models row by row, so it alone needs the forget split's
  logits (N_forget x C): kept when a gold model is given, or by default when they take <= 64 MB.

The per-row arithmetic is the metric modules' own functions (``_log_probabilities``, ``_attack_feature``,
``_to_probabilities``, ``_textbook_jsd_rows``, ``_reference_jsdiv``), applied to each batch, and the final steps
mirror the modules' ``_compute``: the results equal the modules' on the full matrices (to float64 rounding of the
class sums). In a multi-process run each rank accumulates its contiguous shard; the per-row floats are gathered
in rank order and the class sums added, so every rank computes the same numbers.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = ["SplitStats", "StreamingPredictions", "streaming_metrics", "rf_jsd_from_class_sums", "ATTACKS"]

ATTACKS = ("entropy", "loss", "confidence")
CLASS_SUM_SPLITS = ("forget", "test", "validation")  # validation: the alpha search scores RF-JSD there
#: UnlearningTrainer.predictions keeps the forget logits (for JSD against a gold model) up to this size by default.
KEEP_FORGET_LOGITS_MAX_BYTES = 64 * 1024**2  # RF-JSD compares the forget split (model) with the test split (original)


@functools.cache
def _module(name: str):
    """The Python module of a shipped ``evaluate`` metric (its helper functions are reused here)."""
    from .metric_modules import load_metric

    return inspect.getmodule(type(load_metric(name)))


class SplitStats:
    """What the metrics need from one model's pass over one split, accumulated with :meth:`update`."""

    def __init__(self, num_labels: int, *, class_sums: bool = False, keep_logits: bool = False, features: bool = True):
        self.num_labels = num_labels
        self.with_features = features  # False: counts only (accuracy passes)
        self.rows = 0
        self.correct = 0
        self._features: dict[str, list[np.ndarray]] = {a: [] for a in ATTACKS}
        self.features: dict[str, np.ndarray] = {}
        self.class_sums = np.zeros((num_labels, num_labels), dtype=np.float64) if class_sums else None
        self.class_counts = np.zeros(num_labels, dtype=np.int64)
        self._logits: list[torch.Tensor] | None = [] if keep_logits else None
        self.logits: torch.Tensor | None = None
        self._mia, self._rf = _module("mia"), _module("rf_jsd")

    def update(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """Add one batch: ``logits`` (B, C) of the model and the rows' ``labels`` (B,)."""
        logits = logits.detach().float().cpu()
        labels_np = labels.detach().cpu().numpy().astype(np.int64)
        matrix = logits.numpy().astype(np.float64)  # the modules read float32 rows into float64
        if not np.all(np.isfinite(matrix)):
            raise ValueError(
                f"the model's outputs contain NaN or inf values (first in row {self.rows + int(np.argwhere(~np.isfinite(matrix))[0, 0])}); "
                "check the model (a diverged unlearning run produces NaN logits)."
            )
        self.correct += int((matrix.argmax(1) == labels_np).sum())
        self.rows += len(labels_np)
        self.class_counts += np.bincount(labels_np, minlength=self.num_labels)
        if self._logits is not None:
            self._logits.append(logits)
        if self.class_sums is not None:
            # rows added in order, as np.add.at does over the whole matrix in metrics/rf_jsd
            np.add.at(self.class_sums, labels_np, self._rf._to_probabilities(matrix, "logits", "predictions"))
        if not self.with_features:
            return
        probs, log_probs = self._mia._log_probabilities(matrix, "logits", "predictions")
        for attack in ATTACKS:
            self._features[attack].append(self._mia._attack_feature(probs, log_probs, labels_np, attack))

    def finish(self, accelerator=None, total_rows: int | None = None) -> SplitStats:
        """Concatenate the per-batch pieces; in a multi-process run, combine the ranks' shards."""
        for attack in ATTACKS:
            parts = self._features[attack]
            self.features[attack] = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float64)
        self._features = {a: [] for a in ATTACKS}
        if self._logits is not None:
            self.logits = torch.cat(self._logits) if self._logits else torch.empty(0, self.num_labels)
            self._logits = []
        if accelerator is not None and accelerator.num_processes > 1:
            self._gather(accelerator, total_rows)
        return self

    def _gather(self, accelerator, total_rows: int) -> None:
        world = accelerator.num_processes
        per_rank = -(-total_rows // world)
        device = accelerator.device

        def rows(array: torch.Tensor) -> torch.Tensor:  # contiguous shards, padded, in rank order
            padded = torch.zeros((per_rank, *array.shape[1:]), dtype=array.dtype, device=device)
            padded[: len(array)] = array.to(device)
            return accelerator.gather(padded).cpu()[:total_rows]

        for attack in ATTACKS:
            self.features[attack] = rows(torch.from_numpy(self.features[attack])).numpy()
        if self.logits is not None:
            self.logits = rows(self.logits)
        counts = torch.tensor([self.correct, self.rows], dtype=torch.long, device=device)
        self.correct, self.rows = (int(v) for v in accelerator.gather(counts[None]).sum(0).tolist())
        self.class_counts = (
            accelerator.gather(torch.from_numpy(self.class_counts)[None].to(device)).sum(0).cpu().numpy()
        )
        if self.class_sums is not None:
            self.class_sums = (
                accelerator.gather(torch.from_numpy(self.class_sums)[None].to(device)).sum(0).cpu().numpy()
            )

    @property
    def accuracy(self) -> float:
        # float32 division: the value the logits pipeline gave ((argmax == labels).float().mean()), bit for bit
        return float(np.float32(self.correct) / np.float32(self.rows)) if self.rows else float("nan")


@dataclass
class StreamingPredictions:
    """One model's :class:`SplitStats` per split (the streaming counterpart of ``ModelPredictions``)."""

    stats: dict[str, SplitStats] = field(default_factory=dict)

    @classmethod
    def from_logits(cls, predictions, *, keep_logits: bool = True) -> StreamingPredictions:
        """Summarise a ``ModelPredictions`` (full logits), e.g. to combine it with streamed predictions."""
        out = cls()
        for name, logits in predictions.logits.items():
            stats = SplitStats(
                logits.shape[-1], class_sums=name in CLASS_SUM_SPLITS, keep_logits=keep_logits and name == "forget"
            )
            stats.update(logits, predictions.labels[name])
            out.stats[name] = stats.finish()
        return out


def _mia(
    stats: dict[str, SplitStats], attack: str = "entropy", nonmember_splits: tuple[str, ...] = ("test", "validation")
) -> tuple[float, float, float]:
    """``metrics/mia``'s ``_checked_compute`` on per-row features (rows in the order retain, forget, test, validation):
    ``(mia, auc, heldout_member_rate)``. ``nonmember_splits``: the held-out splits the attacker is fitted on (the
    metric uses both; the alpha search's selection uses validation only, so it never reads the test split)."""
    from sklearn.metrics import roc_auc_score

    mia_module = _module("mia")
    feature = {name: s.features[attack][:, None] for name, s in stats.items()}
    nonmembers = [feature[s] for s in nonmember_splits if s in feature]
    train_x = np.concatenate([feature["retain"], *nonmembers])
    n_nonmembers = sum(len(x) for x in nonmembers)
    train_y = np.concatenate([np.ones(len(feature["retain"]), dtype=np.int64), np.zeros(n_nonmembers, dtype=np.int64)])
    attacker = mia_module._attacker().fit(train_x, train_y)  # the same attacker as metrics/mia
    mia = float(np.mean(attacker.predict(feature["forget"]) == 1))
    member = list(attacker.classes_).index(1)
    negatives = feature["test"] if "test" in feature and "test" in nonmember_splits else nonmembers[0]
    auc_scores = np.concatenate(
        [attacker.predict_proba(feature["forget"])[:, member], attacker.predict_proba(negatives)[:, member]]
    )
    auc_labels = np.concatenate([np.ones(len(feature["forget"])), np.zeros(len(negatives))])
    heldout = (
        float(mia_module.heldout_member_rate(feature["retain"], np.concatenate(nonmembers)))
        if n_nonmembers >= 2
        else float("nan")
    )
    return mia, float(roc_auc_score(auc_labels, auc_scores)), heldout


def rf_jsd_from_class_sums(forget: SplitStats, test: SplitStats, variant: str = "standard") -> float:
    """``metrics/rf_jsd``'s ``_checked_compute`` on per-class sums (``test``: the original's held-out split, test or
    validation; the module calls it "test" whichever it is)."""
    rf = _module("rf_jsd")
    if variant not in ("standard", "reference"):
        raise ValueError(f"Unknown variant {variant!r}: use one of ['standard', 'reference'].")
    forget_classes = np.flatnonzero(forget.class_counts)
    missing = np.setdiff1d(forget_classes, np.flatnonzero(test.class_counts))
    if missing.size:
        raise ValueError(
            f"Forget class(es) {missing[:10].tolist()}{' ...' if missing.size > 10 else ''} ({missing.size} in all) "
            "have no test rows: RF-JSD compares each forget class with the original model's predictions on test "
            "samples of the same class. Add test rows for these classes (or remove them from the forget rows)."
        )

    def means(s: SplitStats) -> np.ndarray:
        m = s.class_sums[forget_classes] / s.class_counts[forget_classes].astype(np.float64)[:, None]
        return m / m.sum(axis=1, keepdims=True)

    p, q = means(forget), means(test)
    return float(np.mean(rf._textbook_jsd_rows(p, q))) if variant == "standard" else float(rf._reference_jsdiv(p, q))


def streaming_metrics(
    model: StreamingPredictions,
    original: StreamingPredictions,
    gold: StreamingPredictions | None = None,
    *,
    variant: str = "standard",
) -> dict[str, float]:
    """The keys and values of :func:`hf_unlearn.evaluation.metrics.unlearning_metrics`, from streamed statistics."""
    s = model.stats
    result = {f"acc_{'val' if name == 'validation' else name}": st.accuracy for name, st in s.items()}
    if {"retain", "forget"} <= s.keys() and ({"test", "validation"} & s.keys()):
        result["mia"], result["mia_auc"], result["mia_heldout"] = _mia(s)
    if "forget" in s and "test" in original.stats:
        result["rf_jsd"] = rf_jsd_from_class_sums(s["forget"], original.stats["test"], variant)
    if gold is not None and "forget" in gold.stats:
        mine, theirs = s["forget"].logits, gold.stats["forget"].logits
        if mine is None or theirs is None:
            raise ValueError(
                "JSD against a gold model needs the forget logits of both models: take their "
                "predictions with trainer.predictions(..., keep_forget_logits=True)."
            )
        from .metric_modules import load_metric

        jsd = load_metric("jsd").compute(predictions=mine.numpy(), gold_predictions=theirs.numpy(), variant=variant)
        result["jsd"] = float(jsd["jsd"])
    return result


class _Chunks(torch.utils.data.Dataset):
    """Row chunks of a lazy split, transformed in DataLoader workers."""

    def __init__(self, split, batch_size: int, rows: range):
        self.split, self.batch_size, self.rows = split, batch_size, rows

    def __len__(self) -> int:
        return -(-len(self.rows) // self.batch_size)

    def __getitem__(self, i: int):
        idx = torch.as_tensor(self.rows[i * self.batch_size : (i + 1) * self.batch_size], dtype=torch.long)
        return idx, self.split.pixels(idx), self.split.labels[idx]


def split_batches(split, batch_size: int, rows: range, num_workers: int = 0):
    """``split.batches(batch_size, rows)``; a lazy split is transformed by ``num_workers`` DataLoader workers
    (in order) when ``num_workers > 0``, a materialised one is sliced in place."""
    if split.materialized or num_workers <= 0 or len(rows) == 0:
        yield from split.batches(batch_size, rows)
        return
    loader = torch.utils.data.DataLoader(_Chunks(split, batch_size, rows), batch_size=None, num_workers=num_workers)
    yield from loader
