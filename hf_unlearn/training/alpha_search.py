"""Retrain-free choice of LoTUS' alpha: run once per candidate from the same original, keep the lowest estimated
Avg Gap.

The LoTUS paper tunes alpha against a model retrained without the forget set (SPEC §5.5), which someone who must
unlearn does not have. :func:`search_alpha` trains one candidate per alpha (each from a fresh copy of the original:
the factory builds it) and scores each by the **retrain-free Avg Gap estimate**
(:func:`hf_unlearn.evaluation.metrics.retrain_free_estimate`): forget accuracy against the original's accuracy on held-out
data, retain and validation accuracy against the original's, and MIA against the member rate the original's attack
gives held-out rows it was not fitted on. It returns every candidate's record plus the trainer of the best one.

Why not RF-JSD (the previous rule): RF-JSD compares class-*average* predictions, so it rewards softening every
forget prediction while the MIA overshoots; measured on Fashion-MNIST it never picked the hindsight-best alpha
(0 of 6 seed x family cells) and its pick was worse than not unlearning at all. RF-JSD stays in every record.

Which held-out data selects: the **validation** split only (the LoTUS calibration split: LoTUS reads just the
original's accuracy there). The test split is never read for the choice, so the test numbers stay an unbiased
report of the kept candidate. A search without a validation split is refused. With a gold model each record
also holds the true Avg Gap (for hindsight comparisons only; the choice never reads it). Ties keep the earlier
candidate.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["AlphaSearchResult", "search_alpha", "check_alphas", "SELECTION_RULE"]

SELECTION_RULE = (
    "lowest avg_gap_estimate on the validation split (hf_unlearn.evaluation.metrics.retrain_free_estimate with "
    "heldout=('validation',)); ties keep the earlier alpha; no retrained model, no test labels"
)


@dataclass
class AlphaSearchResult:
    """Every candidate's record (in the order tried), the index of the kept one and its trainer and metrics."""

    candidates: list[dict]
    best_index: int
    trainer: Any
    results: dict
    selection_split: str
    extra: dict = field(default_factory=dict)

    @property
    def best_alpha(self) -> float:
        return self.candidates[self.best_index]["alpha"]

    def to_dict(self) -> dict:
        """The ``alpha_search`` block of ``metrics.json`` (docs/FORMATS.md)."""
        return {
            "selected_alpha": self.best_alpha,
            "selection_metric": "avg_gap_estimate",
            "selection_split": self.selection_split,
            "selection_rule": SELECTION_RULE,
            "candidates": [dict(c) for c in self.candidates],
        }


def check_alphas(alphas: Sequence[float] | None) -> list[float]:
    """The candidate list, or a ``ValueError`` naming the problem and the fix."""
    values = list(alphas or [])
    if not values:
        raise ValueError("alpha_search needs at least one alpha, e.g. --alpha_search 2 4 8 16.")
    bad = [a for a in values if not isinstance(a, (int, float)) or isinstance(a, bool) or not math.isfinite(a)]
    if bad:
        raise ValueError(f"alpha_search values must be finite numbers, got {bad}; e.g. --alpha_search 2 4 8 16.")
    if len(set(values)) != len(values):
        raise ValueError(f"alpha_search lists an alpha twice ({values}); give each candidate once.")
    return [float(a) for a in values]


def _as_streaming(predictions):
    from ..evaluation.streaming import StreamingPredictions

    return (
        predictions if isinstance(predictions, StreamingPredictions) else StreamingPredictions.from_logits(predictions)
    )


def search_alpha(
    make_trainer: Callable[[float], Any],
    alphas: Sequence[float],
    *,
    test_dataset=None,
    validation_dataset=None,
    original=None,
    gold=None,
    variant: str = "standard",
    progress: Callable[[str], None] | None = None,
) -> AlphaSearchResult:
    """Run LoTUS once per alpha and keep the candidate with the lowest retrain-free Avg Gap estimate on the
    validation split (no gold model, no test labels).

    Args:
        make_trainer: ``alpha -> UnlearningTrainer`` built on a *fresh copy* of the original model with that alpha
            (and no ``alpha_search`` in its config); called once per candidate, in order.
        alphas: the candidates (:func:`check_alphas`).
        test_dataset / validation_dataset: held-out splits. Selection reads the validation split (default: the
            trainer's calibration split) only; the test split is evaluated for the record.
        original: the original model or its ``trainer.predictions(...)`` (default: the first trainer's frozen teacher).
        gold: optional retrained model or predictions: adds ``avg_gap`` / ``jsd`` to each record (never used to choose).
        variant: RF-JSD formula, "standard" or "reference" (SPEC §4.3).

    Returns an :class:`AlphaSearchResult`; the trainers of discarded candidates are released as soon as a better
    one is found.
    """
    from ..evaluation.metrics import ModelPredictions, retrain_free_estimate
    from ..evaluation.streaming import StreamingPredictions, rf_jsd_from_class_sums

    alphas = check_alphas(alphas)
    say = progress or (lambda msg: None)
    best = None  # (score, index, trainer, results)
    candidates: list[dict] = []
    original_p = _as_streaming(original) if isinstance(original, (ModelPredictions, StreamingPredictions)) else None
    gold_p = gold
    for i, alpha in enumerate(alphas):
        trainer = make_trainer(alpha)
        if original_p is None:
            source = original if original is not None else trainer.teacher
            if source is None:
                raise ValueError(
                    "search_alpha needs original= (the original model or its predictions) for a method "
                    "without a teacher."
                )
            original_p = trainer.predictions(source, test_dataset, validation_dataset)
        if gold_p is not None and not isinstance(gold_p, (ModelPredictions, StreamingPredictions)):
            gold_p = trainer.predictions(gold_p, test_dataset, validation_dataset, keep_forget_logits=True)
        if i == 0:
            if "validation" not in original_p.stats:
                raise ValueError(
                    "search_alpha chooses on a validation split, which it does not have: pass "
                    "validation_dataset (or give the trainer a calibration_dataset); the test split is "
                    "never used to choose."
                )
            if original_p.stats["validation"].class_sums is None:
                raise ValueError(
                    "the original's predictions on the validation split carry no per-class sums; pass "
                    "the original model (or trainer.predictions(original, ...))."
                )
        start = time.perf_counter()
        trainer.train()
        runtime = time.perf_counter() - start
        results = trainer.evaluate_unlearning(
            test_dataset, validation_dataset, original=original_p, gold=gold_p, variant=variant, log=False
        )
        results["unlearned"]["runtime_s"] = runtime
        u = results["unlearned"]
        candidate_p = trainer.last_predictions["unlearned"]
        estimate = retrain_free_estimate(candidate_p, original_p, heldout=("validation",))
        score = estimate["avg_gap_estimate"]
        record = {
            "alpha": alpha,
            "avg_gap_estimate_selection": score,
            "selected": False,
            "runtime_s": runtime,
            "global_steps": int(trainer.state.global_step),
            "rf_jsd_selection": rf_jsd_from_class_sums(
                candidate_p.stats["forget"], original_p.stats["validation"], variant
            ),
            "examples": sum(trainer.examples_processed.values()),
        }
        for key in (
            "rf_jsd",
            "acc_forget",
            "acc_retain",
            "acc_test",
            "acc_val",
            "mia",
            "mia_heldout",
            "avg_gap_estimate",
            "avg_gap",
            "jsd",
        ):
            if key in u:
                record[key] = u[key]
        history = getattr(trainer.method, "history", None)
        if history:
            record["epochs_run"] = sum(1 for h in history if not h.get("stop"))
        candidates.append(record)
        say(
            f"alpha {alpha:g}: estimated Avg Gap (validation) {score:.4f}  forget {u.get('acc_forget', float('nan')):.3f} "
            f"retain {u.get('acc_retain', float('nan')):.3f} test {u.get('acc_test', float('nan')):.3f}  "
            f"MIA {u.get('mia', float('nan')):.3f}  {runtime:.1f}s"
        )
        if best is None or score < best[0]:
            best = (score, i, trainer, results)  # the previous best trainer (and its model) can be freed
        del trainer
    _, index, trainer, results = best
    candidates[index]["selected"] = True
    return AlphaSearchResult(
        candidates=candidates, best_index=index, trainer=trainer, results=results, selection_split="validation"
    )
