"""Every reported metric's facts, in one table: the card, the CLI table, the benchmark and ``metrics.json`` read it.

Adding a metric: compute it (an ``evaluate`` module under ``metrics/`` for anything beyond an accuracy, wired into
:func:`hf_unlearn.evaluation.metrics.unlearning_metrics`), then add one :class:`Metric` row here.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Metric", "METRICS", "GAP_KEYS", "RESULT_KEYS", "metric", "display_scale"]


@dataclass(frozen=True)
class Metric:
    """One metric's facts.

    * ``key``: its name in ``metrics.json``, the card and ``evaluate_unlearning``'s results.
    * ``label`` / ``meaning``: how the card names and explains it.
    * ``kind``: the model-index metric type; ``group``: the model-index dataset it is reported on
      (``train`` = the forget/retain sets, ``test``, ``validation``); ``splits``: the splits it reads.
    * ``module``: the shipped ``evaluate`` module that computes it (``metrics/<module>``), None for a plain count.
    * ``table_scale``: factor applied in the benchmark tables (the paper reports JSDiv x 1e4).
    * ``ideal`` / ``ideal_gold``: the ideal value without / with a gold (retrained) model (``{gold}`` = its value).
    * ``lower_is_better``: True when 0 is ideal; ``in_avg_gap``: counted in the Avg Gap (SPEC §4.8).
    """

    key: str
    label: str
    kind: str
    group: str
    splits: tuple[str, ...]
    module: str | None
    meaning: str
    ideal: str
    ideal_gold: str
    table_scale: float = 1.0
    lower_is_better: bool = False
    in_avg_gap: bool = False


_GOLD = "≈ gold ({gold})"
_LOWER = "lower is better (→ 0)"

#: key -> facts, in display order (card, CLI table, benchmark).
METRICS: dict[str, Metric] = {
    m.key: m
    for m in (
        Metric(
            "acc_forget",
            "Forget-set accuracy",
            "accuracy",
            "train",
            ("forget",),
            None,
            "accuracy on the removed samples. Ideal: what a model retrained without them scores (the gold "
            "model's value, close to test accuracy), **not 0**: a model that never saw a sample still classifies it "
            "about as well as unseen data.",
            "≈ test accuracy (not 0)",
            _GOLD,
            in_avg_gap=True,
        ),
        Metric(
            "acc_retain",
            "Retain-set accuracy",
            "accuracy",
            "train",
            ("retain",),
            None,
            "accuracy on the training samples that were kept. Ideal: as high as before unlearning (≈ the "
            "gold model's value): unlearning should not damage what the model knows about the rest of the data.",
            "≈ original",
            _GOLD,
            in_avg_gap=True,
        ),
        Metric(
            "acc_test",
            "Test accuracy",
            "accuracy",
            "test",
            ("test",),
            None,
            "accuracy on held-out test data (utility). Ideal: as high as before unlearning (≈ the gold "
            "model's value).",
            "≈ original",
            _GOLD,
            in_avg_gap=True,
        ),
        Metric(
            "acc_val",
            "Validation accuracy",
            "accuracy",
            "validation",
            ("validation",),
            None,
            "accuracy on the validation data (utility, used for model selection). Ideal: as high as before "
            "unlearning.",
            "≈ original",
            _GOLD,
        ),
        Metric(
            "mia",
            "MIA",
            "mia",
            "train",
            ("retain", "forget", "test", "validation"),
            "mia",
            "membership-inference attack score on the removed samples: how strongly an attacker can tell "
            "they were training members. Ideal: the value of a model retrained without them, **not 0** (a score far "
            "below that gives the removal away).",
            "≈ retrained model's value (not 0)",
            _GOLD,
            in_avg_gap=True,
        ),
        Metric(
            "mia_auc",
            "MIA AUC",
            "mia_auc",
            "train",
            ("retain", "forget", "test", "validation"),
            "mia",
            "ROC-AUC of the membership-inference attacker's scores for the removed samples against unseen test "
            "samples; 0.5 means the removed samples look like data the model never saw. Ideal: the retrained model's "
            "value (about 0.5).",
            "≈ retrained model's value (≈ 0.5)",
            _GOLD,
        ),
        Metric(
            "mia_heldout",
            "MIA on unseen rows",
            "mia",
            "train",
            ("retain", "test", "validation"),
            "mia",
            "the member rate the same attack gives held-out rows it was not fitted on (5-fold cross-fitting): what "
            "the MIA of a model that never saw the removed samples would be. The retrain-free target of MIA.",
            "≈ the MIA of a model that never saw the removed samples",
            _GOLD,
        ),
        Metric(
            "rf_jsd",
            "RF-JSD",
            "rf_jsd",
            "train",
            ("forget", "test"),
            "rf_jsd",
            "Retrain-Free Jensen-Shannon Divergence ([LoTUS, arXiv 2503.18314](https://arxiv.org/abs/2503.18314)): "
            "divergence between the model's class-mean predictions on the removed samples and the original's on unseen "
            "samples. A model retrained without them does not score 0 (its predictions on training-distribution rows "
            "differ from the original's on unseen ones); its value is the target.",
            "≈ a retrained model's value (not 0)",
            _GOLD,
            table_scale=1e4,
        ),
        Metric(
            "jsd",
            "JSD to gold",
            "jsd",
            "train",
            ("forget",),
            "jsd",
            "Jensen-Shannon divergence between this model's and the gold (retrained) model's predictions on "
            "the removed samples. Lower is better; 0 means identical predictions.",
            _LOWER,
            _LOWER,
            table_scale=1e4,
            lower_is_better=True,
        ),
        Metric(
            "avg_gap",
            "Average gap to gold",
            "avg_gap",
            "train",
            ("forget", "retain", "test"),
            None,
            "mean absolute difference to the gold model over the accuracies and MIA. Lower is better; 0 "
            "means the unlearned model matches the retrained one.",
            _LOWER,
            _LOWER,
            lower_is_better=True,
        ),
        Metric(
            "avg_gap_estimate",
            "Average gap, retrain-free estimate",
            "avg_gap",
            "train",
            ("forget", "retain", "test", "validation"),
            None,
            "**an estimate**, needing no retrained model: the Average gap with each term's target estimated from "
            "the original model on held-out data (forget accuracy → its held-out accuracy; retain and test accuracy "
            "→ its own; MIA → the attack's member rate on unseen rows). Lower is better; how well it tracks the true "
            'Average gap was measured (README, "Retrain-free verdict").',
            _LOWER,
            _LOWER,
            lower_is_better=True,
        ),
    )
}

#: The metrics averaged into the Avg Gap (SPEC §4.8), in table order.
GAP_KEYS: tuple[str, ...] = tuple(k for k, m in METRICS.items() if m.in_avg_gap)
#: Every key a results dict may hold, in display order, then the run's wall time.
RESULT_KEYS: tuple[str, ...] = (*METRICS, "runtime_s")


def metric(key: str) -> Metric:
    """The facts of ``key`` (a ``KeyError`` naming the known keys otherwise)."""
    try:
        return METRICS[key]
    except KeyError:
        raise KeyError(f"unknown metric {key!r}; known: {', '.join(METRICS)}") from None


def display_scale(key: str) -> float:
    """Factor for the benchmark tables (1 for a key that is not a metric, e.g. runtime_s)."""
    return METRICS[key].table_scale if key in METRICS else 1.0
