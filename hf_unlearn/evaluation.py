"""One evaluation pipeline for unlearning runs.

Each model is run once over each split (eval mode, batched, ``torch.inference_mode``); the logits are shared
by every metric: accuracies, membership inference (``metrics/mia``), RF-JSD (``metrics/rf_jsd``: the unlearned
model on the forget set vs the *original* model on the test set) and, with a retrained "gold" model, JSD
(``metrics/jsd``) and the paper's Avg Gap (SPEC §4.8). In multi-process runs the logits are gathered across
processes without the sampler's padding, so every rank computes the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from .metrics_table import GAP_KEYS  # SPEC §4.8: MIA and the forget / retain / test accuracies
from .splits import ImageSplit

__all__ = ["ModelPredictions", "predict_splits", "unlearning_metrics", "avg_gap", "SPLIT_TO_SUBSET"]

#: Split name in this library -> ``subset`` value of the metric modules.
SPLIT_TO_SUBSET = {"forget": "forget", "retain": "retain", "test": "test", "validation": "validation"}


@dataclass
class ModelPredictions:
    """Logits (float32, CPU) of one model on each split, and the splits' labels."""

    logits: dict[str, torch.Tensor] = field(default_factory=dict)
    labels: dict[str, torch.Tensor] = field(default_factory=dict)


def predict_splits(predict: Callable[[ImageSplit], torch.Tensor], splits: dict[str, ImageSplit | None]) -> ModelPredictions:
    """Run ``predict`` (a model bound to e.g. ``UnlearningTrainer.predict_logits``) once over each split."""
    out = ModelPredictions()
    for name, split in splits.items():
        if split is None:
            continue
        out.logits[name] = predict(split).float().cpu()
        out.labels[name] = split.labels.cpu()
    return out


def _accuracy(p: ModelPredictions, split: str) -> float:
    return (p.logits[split].argmax(-1) == p.labels[split]).float().mean().item()


def _rows(p: ModelPredictions, splits: list[str]):
    predictions, references, subsets = [], [], []
    for s in splits:
        if s in p.logits:
            predictions.append(p.logits[s])
            references.append(p.labels[s])
            subsets += [SPLIT_TO_SUBSET[s]] * len(p.labels[s])
    return torch.cat(predictions).numpy(), torch.cat(references).numpy(), subsets


def unlearning_metrics(
    model: ModelPredictions,
    original: ModelPredictions,
    gold: ModelPredictions | None = None,
    *,
    variant: str = "standard",
) -> dict[str, float]:
    """Metrics of ``model`` (which may be the original itself) from predictions computed once.

    Returns ``acc_forget``, ``acc_retain``, ``acc_test``, ``acc_val`` (when a validation split was given),
    ``mia``, ``mia_auc``, ``rf_jsd`` and, with ``gold``, ``jsd``. ``variant="reference"`` uses the reference
    code's JSDiv formula (SPEC §4.3) for RF-JSD and JSD. Streamed predictions
    (:class:`~hf_unlearn.streaming.StreamingPredictions`, what ``UnlearningTrainer.predictions`` returns) give the
    same numbers from per-row floats and per-class sums (:func:`hf_unlearn.streaming.streaming_metrics`).
    """
    from .metric_modules import load_metric
    from .streaming import StreamingPredictions, streaming_metrics

    if any(isinstance(p, StreamingPredictions) for p in (model, original, gold)):
        as_streamed = [p if p is None or isinstance(p, StreamingPredictions) else StreamingPredictions.from_logits(p)
                       for p in (model, original, gold)]
        return streaming_metrics(*as_streamed, variant=variant)
    result = {f"acc_{'val' if s == 'validation' else s}": _accuracy(model, s) for s in model.logits}
    if {"retain", "forget"} <= model.logits.keys() and ({"test", "validation"} & model.logits.keys()):
        preds, refs, subsets = _rows(model, ["retain", "forget", "test", "validation"])
        mia = load_metric("mia").compute(predictions=preds, references=refs, subset=subsets)
        result["mia"], result["mia_auc"] = float(mia["mia"]), float(mia["auc"])
    if "forget" in model.logits and "test" in original.logits:
        preds = torch.cat([model.logits["forget"], original.logits["test"]]).numpy()
        refs = torch.cat([model.labels["forget"], original.labels["test"]]).numpy()
        subsets = ["forget"] * len(model.labels["forget"]) + ["test"] * len(original.labels["test"])
        rf = load_metric("rf_jsd").compute(predictions=preds, references=refs, subset=subsets, variant=variant)
        result["rf_jsd"] = float(rf["rf_jsd"])
    if gold is not None and "forget" in gold.logits:
        jsd = load_metric("jsd").compute(predictions=model.logits["forget"].numpy(),
                                         gold_predictions=gold.logits["forget"].numpy(), variant=variant)
        result["jsd"] = float(jsd["jsd"])
    return result


def avg_gap(metrics: dict[str, float], gold_metrics: dict[str, float]) -> float:
    """Mean |metric - gold metric| over MIA and forget / retain / test accuracy (SPEC §4.8)."""
    missing = [k for k in GAP_KEYS if k not in metrics or k not in gold_metrics]
    if missing:
        raise ValueError(f"avg_gap needs {GAP_KEYS}; missing {missing}.")
    return sum(abs(metrics[k] - gold_metrics[k]) for k in GAP_KEYS) / len(GAP_KEYS)
