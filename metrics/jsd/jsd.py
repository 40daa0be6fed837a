# Copyright 2025 The hf-unlearn developers.
# Licensed under the Apache License, Version 2.0.
"""JSD between an unlearned model and a retrained (gold) model on the forget set."""

import math

import datasets
import evaluate
import numpy as np

_CITATION = """\
@inproceedings{spartalis2025lotus,
  title     = {LoTUS: Large-Scale Machine Unlearning with a Taste of Uncertainty},
  author    = {Spartalis, Christoforos N. and Semertzidis, Theodoros and Gavves, Efstratios and Daras, Petros},
  booktitle = {Proceedings of the IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)},
  year      = {2025}
}
@inproceedings{chundawat2023badteaching,
  title     = {Can Bad Teaching Induce Forgetting? Unlearning in Deep Networks Using an Incompetent Teacher},
  author    = {Chundawat, Vikram S. and Tarun, Ayush K. and Mandal, Murari and Kankanhalli, Mohan},
  booktitle = {Proceedings of the AAAI Conference on Artificial Intelligence},
  year      = {2023}
}
"""

_DESCRIPTION = """\
JSD compares the predictions of an unlearned model with those of a model retrained without the forget
set (the "gold" model) on the same forget samples. 0 means the unlearned model predicts exactly like the
gold model on the forget set.

variant="standard" (default): the mean over samples of the textbook Jensen-Shannon divergence between
the two softmax vectors (natural log, bounded by ln 2).
variant="reference": the `JSDiv` function of the LoTUS / Bad-Teaching reference code applied to the
stacked (N, C) probability matrices: entries clamped to [1e-8, 1], each matrix normalised by the sum of
the WHOLE matrix, M = (P + Q) / 2, value = 1/2 [KL(M||P) + KL(M||Q)] summed and divided by N. This is
(1/N) x the mean per-row reversed-direction divergence, so it shrinks as 1/N; published tables report it
x 1e4. Use it only for parity with published numbers.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `list` of `float`): the UNLEARNED model's class scores on the forget samples,
        one vector of length C per sample. Logits by default.
    gold_predictions (`list` of `list` of `float`): the RETRAINED (gold) model's class scores on the same
        samples, in the same order, same C.
    variant (`str`, default "standard"): "standard" (mean per-sample textbook JSD) or "reference" (the
        LoTUS reference `JSDiv`, including its 1/N scaling).
    input_type (`str`, default "logits"): "logits" (softmax applied here) or "probabilities" (rows
        already softmaxed: non-negative and summing to 1).
    round_to (`int`, optional): round the result to this many decimals (the reference rounds to 6).
        Default: no rounding.
Returns:
    jsd (`float`): the divergence; 0 = indistinguishable from the gold model (the ideal).
Examples:
    >>> jsd = evaluate.load("metrics/jsd")
    >>> jsd.compute(predictions=[[2.0, 0.0], [0.0, 1.0]], gold_predictions=[[1.0, 0.0], [0.0, 1.0]])
    {'jsd': 0.00915279489871418}
"""

_VARIANTS = ("standard", "reference")
_INPUT_TYPES = ("logits", "probabilities")
_OPTIONS = ("variant", "input_type", "round_to")


def _as_matrix(rows, name):
    """Convert per-row vectors to a float64 (N, C) matrix, with helpful errors."""
    if rows is None or len(rows) == 0:
        raise ValueError(
            f"`{name}` is empty: jsd needs the unlearned model's outputs (`predictions`) and the gold model's "
            "outputs (`gold_predictions`) on the forget samples. Pass them to compute() or add_batch()."
        )
    lengths = sorted({len(r) for r in rows})
    if len(lengths) > 1:
        raise ValueError(
            f"Rows of `{name}` have different lengths {lengths[:6]}: every row must hold one score per class "
            "for the same number of classes C. Make sure all rows come from models with the same label space."
        )
    if lengths[0] == 0:
        raise ValueError(f"Rows of `{name}` are empty vectors: each row must hold one score per class.")
    matrix = np.asarray(rows, dtype=np.float64)
    if not np.all(np.isfinite(matrix)):
        bad_row = int(np.argwhere(~np.isfinite(matrix))[0, 0])
        raise ValueError(
            f"`{name}` contains NaN or inf values (first in row {bad_row}). Check the model outputs (a diverged "
            "unlearning run produces NaN logits) and pass finite values."
        )
    # Rows are read at float32 precision (a model's own), as when the module stored float32: results are unchanged.
    # A finite value beyond float32's range (e.g. 1e308) keeps its float64 value instead of becoming inf.
    with np.errstate(over="ignore"):
        in_range = np.abs(matrix) <= np.finfo(np.float32).max
        return np.where(in_range, matrix.astype(np.float32).astype(np.float64), matrix)


def _log_softmax(logits):
    with np.errstate(over="ignore"):  # -1e308 - 1e308 = -inf: that class's probability is exactly 0
        shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _to_probabilities(matrix, input_type, name):
    if input_type == "logits":
        return np.exp(_log_softmax(matrix))
    if input_type == "probabilities":
        if matrix.min() < 0:
            raise ValueError(
                f"`{name}` has negative entries but input_type='probabilities'. Pass probabilities (softmax "
                "outputs) or use input_type='logits' for raw logits."
            )
        sums = matrix.sum(axis=1)
        bad = np.abs(sums - 1.0) > 1e-3
        if bad.any():
            row = int(np.argmax(bad))
            raise ValueError(
                f"Rows of `{name}` must sum to 1 with input_type='probabilities' (row {row} sums to {sums[row]:.6g}). "
                "Pass softmax outputs, or use input_type='logits' for raw logits."
            )
        return matrix / sums[:, None]
    raise ValueError(f"Unknown input_type {input_type!r}: use one of {list(_INPUT_TYPES)}.")


def _textbook_jsd_rows(p, q):
    """Per-row Jensen-Shannon divergence (natural log), 0 * log 0 = 0."""
    m = 0.5 * (p + q)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_pm = np.where(p > 0, p * (np.log(p) - np.log(m)), 0.0).sum(axis=1)
        kl_qm = np.where(q > 0, q * (np.log(q) - np.log(m)), 0.0).sum(axis=1)
    return np.clip(0.5 * (kl_pm + kl_qm), 0.0, math.log(2.0))


def _reference_jsdiv(p, q):
    """The LoTUS/Bad-Teaching `JSDiv` on (N, C) matrices (SPEC 4.3), in float64."""
    p = np.clip(p, 1e-8, 1.0)
    q = np.clip(q, 1e-8, 1.0)
    p = p / p.sum()
    q = q / q.sum()
    m = 0.5 * (p + q)
    n = p.shape[0]
    kl_mp = (m * (np.log(m) - np.log(p))).sum() / n
    kl_mq = (m * (np.log(m) - np.log(q))).sum() / n
    return 0.5 * (kl_mp + kl_mq)


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Jsd(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("float64")),
                    "gold_predictions": datasets.Sequence(datasets.Value("float64")),
                }
            ),
            reference_urls=["https://arxiv.org/abs/2503.18314", "https://arxiv.org/abs/2205.08096"],
            codebase_urls=["https://github.com/cspartalis/LoTUS"],
        )

    def compute(self, **kwargs):
        """Compute the metric (see the module description for the inputs and options).

        Input errors are raised only after `evaluate` has released its cache file, so a module that
        raised a `ValueError` stays usable (no stale lock, no stale rows).
        """
        self._deferred_error = None
        result = super().compute(**kwargs)
        error, self._deferred_error = self._deferred_error, None
        if error is not None:
            raise error
        return result

    def _compute(self, predictions, gold_predictions, **options):
        try:
            unknown = sorted(set(options) - set(_OPTIONS))
            if unknown:
                raise ValueError(f"Unknown option(s) {unknown}: the options are {list(_OPTIONS)}.")
            return self._checked_compute(predictions, gold_predictions, **options)
        except Exception as error:  # re-raised by compute() once evaluate has cleaned up
            self._deferred_error = error
            return None

    def _checked_compute(self, predictions, gold_predictions, variant="standard", input_type="logits", round_to=None):
        if variant not in _VARIANTS:
            raise ValueError(f"Unknown variant {variant!r}: use one of {list(_VARIANTS)}.")
        unlearned = _as_matrix(predictions, "predictions")
        gold = _as_matrix(gold_predictions, "gold_predictions")
        if unlearned.shape != gold.shape:
            raise ValueError(
                f"`predictions` has shape {unlearned.shape} but `gold_predictions` has shape {gold.shape}: both "
                "must hold one vector per forget sample (same order) over the same C classes."
            )
        p = _to_probabilities(unlearned, input_type, "predictions")
        q = _to_probabilities(gold, input_type, "gold_predictions")
        if variant == "standard":
            value = float(np.mean(_textbook_jsd_rows(p, q)))
        else:
            value = float(_reference_jsdiv(p, q))
        if round_to is not None:
            value = round(value, int(round_to))
        return {"jsd": value}
