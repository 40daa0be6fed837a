# Copyright 2025 The hf-unlearn developers.
# Licensed under the Apache License, Version 2.0.
"""RF-JSD: the retrain-free Jensen-Shannon divergence of LoTUS (Spartalis et al., CVPR 2025)."""

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
"""

_DESCRIPTION = """\
RF-JSD (Retrain-Free Jensen-Shannon Divergence) measures how far an unlearned model's predictions on the
forget set are from the ORIGINAL model's predictions on unseen (test) data, class by class, without
needing a retrained ("gold") model. For every class c present in the forget rows, p_c is the mean
softmax vector of the unlearned model over the forget samples of class c and q_c is the mean softmax
vector of the original model over the test samples of class c (both renormalised to sum to 1).

variant="standard" (default): the textbook Jensen-Shannon divergence JSD(p_c, q_c) (natural log,
bounded by ln 2), averaged over the forget classes.
variant="reference": the exact formula of the LoTUS reference code (its `JSDiv` applied to the stacked
(K, C) class-mean matrices; reversed KL direction and an implicit 1/K factor), so that values x 1e4 are
comparable with the published tables.

Lower means the forget set looks more like unseen data. The ideal value is the one a model retrained
without the forget set obtains (not 0).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `list` of `float`): one vector of class scores per row (all rows the same
        length C). Logits by default; probabilities with `input_type="probabilities"`.
    references (`list` of `int`): the true class label (0 <= label < C) of each row.
    subset (`list` of `str`): "forget" for rows scored by the UNLEARNED model on forget samples, "test"
        for rows scored by the ORIGINAL model on test samples.
    variant (`str`, default "standard"): "standard" (textbook JSD averaged over classes) or "reference"
        (the LoTUS reference `JSDiv`, for parity with published numbers x 1e4).
    input_type (`str`, default "logits"): "logits" (softmax applied here) or "probabilities" (rows
        already softmaxed: non-negative and summing to 1).
    round_to (`int`, optional): round the result to this many decimals (the reference rounds to 6).
        Default: no rounding.
Returns:
    rf_jsd (`float`): the divergence. Lower = the forget set looks more like unseen data; the ideal value
        is the retrained (gold) model's RF-JSD, not 0.
Examples:
    >>> rf_jsd = evaluate.load("metrics/rf_jsd")
    >>> rf_jsd.compute(
    ...     predictions=[[2.0, 0.0], [0.0, 2.0], [1.0, 0.0], [0.0, 1.0]],
    ...     references=[0, 1, 0, 1],
    ...     subset=["forget", "forget", "test", "test"],
    ... )
    {'rf_jsd': 0.0183055897974283}
"""

_VARIANTS = ("standard", "reference")
_INPUT_TYPES = ("logits", "probabilities")
_OPTIONS = ("variant", "input_type", "round_to")
_SUBSETS = ("forget", "test")


def _as_matrix(rows, name):
    """Convert per-row vectors to a float64 (N, C) matrix, with helpful errors."""
    if rows is None or len(rows) == 0:
        raise ValueError(
            f"`{name}` is empty: rf_jsd needs forget rows (unlearned model) and test rows (original model). "
            "Pass them to compute() or add_batch() before calling compute()."
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


def _labels(references, num_rows, num_classes):
    labels = np.asarray(references)
    if labels.shape != (num_rows,):
        raise ValueError(f"`references` must hold one integer label per row ({num_rows} rows).")
    labels = labels.astype(np.int64)
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(
            f"`references` must be class ids in [0, {num_classes}) (the prediction vectors have {num_classes} "
            f"entries); got labels in [{labels.min()}, {labels.max()}]."
        )
    return labels


def _check_labels(references, start=0):
    """Refuse labels that are not integer class ids before `evaluate` casts them to int64 (which reads 0.7 as 0,
    True as 1 and "1" as 1, and fails on NaN without naming the row). Integral floats (1.0) are accepted."""
    if references is None:
        return
    values = references.tolist() if hasattr(references, "tolist") else references
    if not isinstance(values, (list, tuple)):
        values = [values]
    for i, value in enumerate(values, start):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
            problem = f"{value!r} ({type(value).__name__})"
        elif isinstance(value, (float, np.floating)) and not float(value).is_integer():
            problem = repr(float(value))
        else:
            continue
        raise ValueError(
            f"`references` row {i} is {problem}, not an integer class id: each label must be an int "
            "(0 <= label < C). Pass the dataset's integer labels (not probabilities, booleans or strings)."
        )


def _subsets(subset, allowed):
    names = np.asarray([str(s) for s in subset], dtype=object)
    unknown = sorted(set(names.tolist()) - set(allowed))
    if unknown:
        raise ValueError(f"Unknown subset name(s) {unknown}: each row's `subset` must be one of {list(allowed)}.")
    return names


def _class_means(probs, labels, classes):
    """Mean probability vector per class (rows of `classes` order), renormalised to sum 1."""
    index = np.searchsorted(classes, labels)
    sums = np.zeros((len(classes), probs.shape[1]), dtype=np.float64)
    np.add.at(sums, index, probs)
    counts = np.bincount(index, minlength=len(classes)).astype(np.float64)
    means = sums / counts[:, None]
    return means / means.sum(axis=1, keepdims=True)


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
class RfJsd(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("float64")),
                    "references": datasets.Value("int64"),
                    "subset": datasets.Value("string"),
                }
            ),
            reference_urls=["https://arxiv.org/abs/2503.18314"],
            codebase_urls=["https://github.com/cspartalis/LoTUS"],
        )

    def add_batch(self, *, predictions=None, references=None, **kwargs):
        """Add a batch of rows (labels are checked first: integer class ids only)."""
        _check_labels(references)  # before a bad label is cast and buffered
        return super().add_batch(predictions=predictions, references=references, **kwargs)

    def add(self, *, prediction=None, reference=None, **kwargs):
        """Add one row (its label is checked first: an integer class id only)."""
        _check_labels([reference])
        return super().add(prediction=prediction, reference=reference, **kwargs)

    def compute(self, **kwargs):
        """Compute the metric (see the module description for the inputs and options).

        Input errors are raised only after `evaluate` has released its cache file, so a module that
        raised a `ValueError` stays usable (no stale lock, no stale rows).
        """
        self._deferred_error = None
        _check_labels(kwargs.get("references"))
        result = super().compute(**kwargs)
        error, self._deferred_error = self._deferred_error, None
        if error is not None:
            raise error
        return result

    def _compute(self, predictions, references, subset, **options):
        try:
            unknown = sorted(set(options) - set(_OPTIONS))
            if unknown:
                raise ValueError(f"Unknown option(s) {unknown}: the options are {list(_OPTIONS)}.")
            return self._checked_compute(predictions, references, subset, **options)
        except Exception as error:  # re-raised by compute() once evaluate has cleaned up
            self._deferred_error = error
            return None

    def _checked_compute(
        self, predictions, references, subset, variant="standard", input_type="logits", round_to=None
    ):
        if variant not in _VARIANTS:
            raise ValueError(f"Unknown variant {variant!r}: use one of {list(_VARIANTS)}.")
        matrix = _as_matrix(predictions, "predictions")
        probs = _to_probabilities(matrix, input_type, "predictions")
        labels = _labels(references, matrix.shape[0], matrix.shape[1])
        names = _subsets(subset, _SUBSETS)
        is_forget = names == "forget"
        is_test = names == "test"
        if not is_forget.any():
            raise ValueError(
                "No rows with subset='forget': add the UNLEARNED model's outputs on the forget samples with subset='forget'."
            )
        if not is_test.any():
            raise ValueError(
                "No rows with subset='test': add the ORIGINAL model's outputs on the test samples with subset='test'."
            )
        forget_classes = np.unique(labels[is_forget])
        test_classes = np.unique(labels[is_test])
        missing = np.setdiff1d(forget_classes, test_classes)
        if missing.size:
            raise ValueError(
                f"Forget class(es) {missing[:10].tolist()}{' ...' if missing.size > 10 else ''} ({missing.size} in all) "
                "have no test rows: RF-JSD compares each forget class with "
                "the original model's predictions on test samples of the same class. Add test rows for these "
                "classes (or remove them from the forget rows)."
            )
        # Test classes absent from the forget rows are dropped (as in the reference code).
        keep = np.isin(labels, forget_classes) & is_test
        p = _class_means(probs[is_forget], labels[is_forget], forget_classes)
        q = _class_means(probs[keep], labels[keep], forget_classes)
        if variant == "standard":
            value = float(np.mean(_textbook_jsd_rows(p, q)))
        else:
            value = float(_reference_jsdiv(p, q))
        if round_to is not None:
            value = round(value, int(round_to))
        return {"rf_jsd": value}
