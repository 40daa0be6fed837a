"""One evaluation pipeline for unlearning runs.

Each model is run once over each split (eval mode, batched, ``torch.inference_mode``); the logits are shared
by every metric: accuracies, membership inference (``metrics/mia``), RF-JSD (``metrics/rf_jsd``: the unlearned
model on the forget set vs the *original* model on the test set) and, with a retrained "gold" model, JSD
(``metrics/jsd``) and the paper's Avg Gap (SPEC §4.8). In multi-process runs the logits are gathered across
processes without the sampler's padding, so every rank computes the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..data.splits import ImageSplit
from .metrics_table import GAP_KEYS  # SPEC §4.8: MIA and the forget / retain / test accuracies

__all__ = [
    "ModelPredictions",
    "predict_splits",
    "unlearning_metrics",
    "avg_gap",
    "retrain_free_estimate",
    "SPLIT_TO_SUBSET",
    "RETRAIN_FREE_RULE",
]

#: Split name in this library -> ``subset`` value of the metric modules.
SPLIT_TO_SUBSET = {"forget": "forget", "retain": "retain", "test": "test", "validation": "validation"}


@dataclass
class ModelPredictions:
    """Logits (float32, CPU) of one model on each split, and the splits' labels."""

    logits: dict[str, torch.Tensor] = field(default_factory=dict)
    labels: dict[str, torch.Tensor] = field(default_factory=dict)


def predict_splits(
    predict: Callable[[ImageSplit], torch.Tensor], splits: dict[str, ImageSplit | None]
) -> ModelPredictions:
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
    (:class:`~hf_unlearn.evaluation.streaming.StreamingPredictions`, what ``UnlearningTrainer.predictions`` returns) give the
    same numbers from per-row floats and per-class sums (:func:`hf_unlearn.evaluation.streaming.streaming_metrics`).
    """
    from .metric_modules import load_metric
    from .streaming import StreamingPredictions, streaming_metrics

    if any(isinstance(p, StreamingPredictions) for p in (model, original, gold)):
        as_streamed = [
            p if p is None or isinstance(p, StreamingPredictions) else StreamingPredictions.from_logits(p)
            for p in (model, original, gold)
        ]
        return streaming_metrics(*as_streamed, variant=variant)
    result = {f"acc_{'val' if s == 'validation' else s}": _accuracy(model, s) for s in model.logits}
    if {"retain", "forget"} <= model.logits.keys() and ({"test", "validation"} & model.logits.keys()):
        preds, refs, subsets = _rows(model, ["retain", "forget", "test", "validation"])
        mia = load_metric("mia").compute(predictions=preds, references=refs, subset=subsets)
        result["mia"], result["mia_auc"] = float(mia["mia"]), float(mia["auc"])
        result["mia_heldout"] = float(mia["heldout_member_rate"])
    if "forget" in model.logits and "test" in original.logits:
        preds = torch.cat([model.logits["forget"], original.logits["test"]]).numpy()
        refs = torch.cat([model.labels["forget"], original.labels["test"]]).numpy()
        subsets = ["forget"] * len(model.labels["forget"]) + ["test"] * len(original.labels["test"])
        rf = load_metric("rf_jsd").compute(predictions=preds, references=refs, subset=subsets, variant=variant)
        result["rf_jsd"] = float(rf["rf_jsd"])
    if gold is not None and "forget" in gold.logits:
        jsd = load_metric("jsd").compute(
            predictions=model.logits["forget"].numpy(), gold_predictions=gold.logits["forget"].numpy(), variant=variant
        )
        result["jsd"] = float(jsd["jsd"])
    return result


def avg_gap(metrics: dict[str, float], gold_metrics: dict[str, float]) -> float:
    """Mean |metric - gold metric| over MIA and forget / retain / test accuracy (SPEC §4.8)."""
    missing = [k for k in GAP_KEYS if k not in metrics or k not in gold_metrics]
    if missing:
        raise ValueError(f"avg_gap needs {GAP_KEYS}; missing {missing}.")
    return sum(abs(metrics[k] - gold_metrics[k]) for k in GAP_KEYS) / len(GAP_KEYS)


#: The frozen rule of :func:`retrain_free_estimate` (docs and records quote it).
RETRAIN_FREE_RULE = (
    "Each Avg Gap term's target is estimated without a retrained model, from data the user has: forget accuracy -> "
    "the original's accuracy on the held-out rows; retain and test (selection: validation) accuracy -> the "
    "original's; MIA -> the member rate the original's attack gives held-out rows it was not fitted on "
    "(5-fold cross-fitting). avg_gap_estimate = mean of the 4 |value - target|."
)


def retrain_free_estimate(model, original, *, heldout: tuple[str, ...] = ("test", "validation")) -> dict:
    """The Avg Gap of ``model`` estimated without a retrained model (:data:`RETRAIN_FREE_RULE`).

    ``model`` / ``original``: predictions of the evaluated and the original model (``ModelPredictions`` or
    streamed) on forget, retain and the ``heldout`` splits. ``heldout``: the held-out splits read, which stand for
    unseen data (the premise of LoTUS: a model that never saw the forget rows treats them like these). The
    utility term is test accuracy when ``"test"`` is among them, else validation accuracy; pass
    ``heldout=("validation",)`` to choose something (an alpha) without reading the test split.

    Returns ``{"avg_gap_estimate", "terms": {key: {"value", "target", "gap"}}, "heldout_splits", "rule"}``.
    """
    import numpy as np

    from .streaming import StreamingPredictions, _mia, _module

    m, o = (
        p if isinstance(p, StreamingPredictions) else StreamingPredictions.from_logits(p) for p in (model, original)
    )
    splits = tuple(h for h in heldout if h in m.stats and h in o.stats)
    if not splits or not {"forget", "retain"} <= m.stats.keys() or "retain" not in o.stats:
        raise ValueError(
            f"retrain_free_estimate needs forget, retain and held-out ({', '.join(heldout)}) "
            "predictions of the model and retain and held-out predictions of the original."
        )

    def pooled_accuracy(p) -> float:  # correct / rows over the held-out splits, float64
        return sum(p.stats[h].correct for h in splits) / sum(p.stats[h].rows for h in splits)

    utility = "test" if "test" in splits else "validation"
    utility_key = "acc_test" if utility == "test" else "acc_val"
    mia, _, own_heldout_rate = _mia(m.stats, nonmember_splits=splits)
    mia_target = _module("mia").heldout_member_rate(
        o.stats["retain"].features["entropy"], np.concatenate([o.stats[h].features["entropy"] for h in splits])
    )
    values = {
        "acc_forget": m.stats["forget"].correct / m.stats["forget"].rows,
        "acc_retain": m.stats["retain"].correct / m.stats["retain"].rows,
        utility_key: m.stats[utility].correct / m.stats[utility].rows,
        "mia": mia,
    }
    targets = {
        "acc_forget": pooled_accuracy(o),
        "acc_retain": o.stats["retain"].correct / o.stats["retain"].rows,
        utility_key: o.stats[utility].correct / o.stats[utility].rows,
        "mia": mia_target,
    }
    terms = {k: {"value": values[k], "target": targets[k], "gap": abs(values[k] - targets[k])} for k in values}
    return {
        "avg_gap_estimate": sum(t["gap"] for t in terms.values()) / len(terms),
        "terms": terms,
        "heldout_splits": list(splits),
        "rule": RETRAIN_FREE_RULE,
        # not in the rule: the evaluated model's own held-out member rate (a candidate MIA target, for study)
        "mia_heldout_model": own_heldout_rate,
    }
