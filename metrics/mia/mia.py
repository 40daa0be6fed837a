# Copyright 2025 The hf-unlearn developers.
# Licensed under the Apache License, Version 2.0.
"""Membership-inference attack (MIA) score for machine unlearning (SSD / Bad-Teaching / LoTUS protocol)."""

import datasets
import evaluate
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

_CITATION = """\
@inproceedings{spartalis2025lotus,
  title     = {LoTUS: Large-Scale Machine Unlearning with a Taste of Uncertainty},
  author    = {Spartalis, Christoforos N. and Semertzidis, Theodoros and Gavves, Efstratios and Daras, Petros},
  booktitle = {Proceedings of the IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)},
  year      = {2025}
}
@inproceedings{foster2024ssd,
  title     = {Fast Machine Unlearning Without Retraining Through Selective Synaptic Dampening},
  author    = {Foster, Jack and Schoepf, Stefan and Brintrup, Alexandra},
  booktitle = {Proceedings of the AAAI Conference on Artificial Intelligence},
  volume    = {38},
  number    = {11},
  year      = {2024}
}
@inproceedings{chundawat2023badteaching,
  title     = {Can Bad Teaching Induce Forgetting? Unlearning in Deep Networks Using an Incompetent Teacher},
  author    = {Chundawat, Vikram S. and Tarun, Ayush K. and Mandal, Murari and Kankanhalli, Mohan},
  booktitle = {Proceedings of the AAAI Conference on Artificial Intelligence},
  year      = {2023}
}
"""

_DESCRIPTION = """\
A simple membership-inference attack, as used to evaluate machine unlearning in the SSD, Bad-Teaching and
LoTUS code bases. One scalar feature is computed per example from the model's output; a logistic
regression (class_weight="balanced", lbfgs, random_state=42) is trained to separate members (retain rows,
label 1) from non-members (test and validation rows, label 0); `mia` is the fraction of forget rows the
attacker predicts to be members.

Attacks (feature per row):
  * "entropy" (default, the reference attack): entropy of the softmax, -sum_k p_k ln p_k (terms with
    p_k = 0 skipped).
  * "loss": cross-entropy of the true label, -ln p_y.
  * "confidence": the maximum softmax probability max_k p_k (label-free; not the true-class probability,
    which would be a monotone transform of the loss).

The ideal `mia` is NOT 0: it is the value a model retrained without the forget set (the gold model)
obtains, because a retrained model still treats forget samples like unseen data of the same
distribution. Report |mia - mia_gold|.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `list` of `float`): the evaluated model's class scores, one vector of length C
        per row. Logits by default; probabilities with `input_type="probabilities"`.
    references (`list` of `int`): the true label of each row (0 <= label < C); used by attack="loss".
    subset (`list` of `str`): which split each row comes from: "retain" (members used to train the
        attacker), "forget" (rows to score), "test" and/or "validation" (non-members used to train the
        attacker).
    attack (`str`, default "entropy"): "entropy" (the reference attack), "loss" or "confidence".
    input_type (`str`, default "logits"): "logits" (softmax applied here) or "probabilities" (rows
        already softmaxed: non-negative and summing to 1).
    round_to (`int`, optional): round `mia` and `auc` to this many decimals (the reference rounds `mia`
        to 2). Default: no rounding.
Returns:
    mia (`float`): fraction of forget rows predicted "member" by the attacker. Ideal = the gold
        (retrained) model's value, not 0.
    auc (`float`): ROC-AUC of the attacker's member probability for forget rows (positives) against test
        rows (negatives); against validation rows when there are no test rows. 0.5 = forget rows are
        indistinguishable from unseen data. Ideal = the gold model's value.
    attack_balanced_accuracy (`float`): balanced accuracy of the attacker on its own training rows
        (retain vs test+validation): how much membership signal the model leaks at all.
    heldout_member_rate (`float`): the fraction of held-out (test + validation) rows that the same attack calls
        "member" when it was not fitted on them (5-fold cross-fitting over the held-out rows; every retain row
        is in every fit). For a model that never saw the forget rows, they are held-out rows too, so this is a
        retrain-free estimate of the ideal `mia`.
Examples:
    >>> mia = evaluate.load("metrics/mia")
    >>> mia.compute(
    ...     predictions=[[9.0, 0.0], [0.0, 9.0], [0.2, 0.0], [0.0, 0.3], [8.0, 0.0]],
    ...     references=[0, 1, 0, 1, 0],
    ...     subset=["retain", "retain", "test", "validation", "forget"],
    ... )["mia"]
    1.0
"""

_ATTACKS = ("entropy", "loss", "confidence")
_INPUT_TYPES = ("logits", "probabilities")
_OPTIONS = ("attack", "input_type", "round_to")
_SUBSETS = ("retain", "forget", "test", "validation")


def _as_matrix(rows, name):
    """Convert per-row vectors to a float64 (N, C) matrix, with helpful errors."""
    if rows is None or len(rows) == 0:
        raise ValueError(
            f"`{name}` is empty: mia needs the model's outputs on retain, forget and test/validation rows. "
            "Pass them to compute() or add_batch() before calling compute()."
        )
    lengths = sorted({len(r) for r in rows})
    if len(lengths) > 1:
        raise ValueError(
            f"Rows of `{name}` have different lengths {lengths[:6]}: every row must hold one score per class "
            "for the same number of classes C. Make sure all rows come from the same model."
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


def _log_probabilities(matrix, input_type, name):
    """Return (probabilities, log-probabilities) in float64; log(0) = -inf for probability input."""
    if input_type == "logits":
        with np.errstate(over="ignore"):  # -1e308 - 1e308 = -inf: that class's probability is exactly 0
            shifted = matrix - matrix.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        return np.exp(log_probs), log_probs
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
        probs = matrix / sums[:, None]
        with np.errstate(divide="ignore"):
            return probs, np.log(probs)
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
        hint = " (write 'validation' for the validation split)" if {"val", "valid", "eval"} & set(unknown) else ""
        raise ValueError(
            f"Unknown subset name(s) {unknown}: each row's `subset` must be one of {list(allowed)}{hint}."
        )
    return names


HELDOUT_FOLDS = 5


def _attacker():
    # The reference uses multi_class="multinomial" (removed from recent scikit-learn). For two classes the
    # symmetric multinomial parametrisation with C=1 is exactly the binary model with C=2.
    return LogisticRegression(class_weight="balanced", solver="lbfgs", C=2.0, random_state=42, max_iter=1000)


def heldout_member_rate(member_feature, nonmember_feature, folds=HELDOUT_FOLDS):
    """Fraction of non-member rows the attack calls "member" when they were left out of its fit.

    The non-member rows are split into `folds` interleaved folds (row i in fold i % folds: deterministic, no RNG);
    for each fold an attacker is fitted on every member row and the other folds' non-member rows, then predicts
    the fold. A model retrained without the forget set treats the forget rows as such unseen rows, so this is
    the `mia` such a model would get, estimated without retraining.
    """
    members = np.asarray(member_feature, dtype=np.float64).reshape(len(member_feature), -1)
    nonmembers = np.asarray(nonmember_feature, dtype=np.float64).reshape(len(nonmember_feature), -1)
    folds = int(min(folds, len(nonmembers)))
    if folds < 2:
        raise ValueError("heldout_member_rate needs at least 2 non-member rows (one to fit on, one to score).")
    fold_of = np.arange(len(nonmembers)) % folds
    called_member = 0
    for k in range(folds):
        fit_x = np.concatenate([members, nonmembers[fold_of != k]])
        fit_y = np.concatenate(
            [np.ones(len(members), dtype=np.int64), np.zeros(int((fold_of != k).sum()), dtype=np.int64)]
        )
        called_member += int((_attacker().fit(fit_x, fit_y).predict(nonmembers[fold_of == k]) == 1).sum())
    return called_member / len(nonmembers)


def _attack_feature(probs, log_probs, labels, attack):
    if attack == "entropy":
        # -sum p ln p, skipping p == 0 terms (as the reference does).
        return -np.where(probs > 0, probs * np.where(probs > 0, log_probs, 0.0), 0.0).sum(axis=1)
    if attack == "loss":
        true_log_prob = log_probs[np.arange(len(labels)), labels]
        # A probability of exactly 0 for the true class gives an infinite loss; cap it at -ln(tiny float64).
        return -np.maximum(true_log_prob, np.log(np.finfo(np.float64).tiny))
    return probs.max(axis=1)


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Mia(evaluate.Metric):
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
            reference_urls=[
                "https://arxiv.org/abs/2503.18314",
                "https://arxiv.org/abs/2308.07707",
                "https://arxiv.org/abs/2205.08096",
            ],
            codebase_urls=[
                "https://github.com/cspartalis/LoTUS",
                "https://github.com/if-loops/selective-synaptic-dampening",
            ],
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

    def _checked_compute(self, predictions, references, subset, attack="entropy", input_type="logits", round_to=None):
        if attack not in _ATTACKS:
            raise ValueError(f"Unknown attack {attack!r}: use one of {list(_ATTACKS)}.")
        matrix = _as_matrix(predictions, "predictions")
        probs, log_probs = _log_probabilities(matrix, input_type, "predictions")
        labels = _labels(references, matrix.shape[0], matrix.shape[1])
        names = _subsets(subset, _SUBSETS)
        is_retain = names == "retain"
        is_forget = names == "forget"
        is_test = names == "test"
        is_val = names == "validation"
        if not is_retain.any():
            raise ValueError(
                "No rows with subset='retain': the attacker is trained on retain rows as members. Add the model's "
                "outputs on (a sample of) the retain set with subset='retain'."
            )
        if not (is_test.any() or is_val.any()):
            raise ValueError(
                "No rows with subset='test' or 'validation': the attacker needs non-member rows. Add the model's "
                "outputs on held-out data with subset='test' and/or subset='validation'."
            )
        if not is_forget.any():
            raise ValueError(
                "No rows with subset='forget': the MIA score is computed on forget rows. Add the model's outputs "
                "on the forget set with subset='forget'."
            )

        feature = _attack_feature(probs, log_probs, labels, attack)[:, None]
        is_nonmember = is_test | is_val
        train_x = np.concatenate([feature[is_retain], feature[is_nonmember]])
        train_y = np.concatenate(
            [np.ones(is_retain.sum(), dtype=np.int64), np.zeros(is_nonmember.sum(), dtype=np.int64)]
        )
        attacker = _attacker().fit(train_x, train_y)

        mia = float(np.mean(attacker.predict(feature[is_forget]) == 1))

        train_pred = attacker.predict(train_x)
        balanced_accuracy = 0.5 * (np.mean(train_pred[train_y == 1] == 1) + np.mean(train_pred[train_y == 0] == 0))

        negatives = is_test if is_test.any() else is_val
        member_score = attacker.predict_proba(feature)[:, list(attacker.classes_).index(1)]
        auc_scores = np.concatenate([member_score[is_forget], member_score[negatives]])
        auc_labels = np.concatenate([np.ones(is_forget.sum()), np.zeros(negatives.sum())])
        auc = float(roc_auc_score(auc_labels, auc_scores))

        # nan with a single held-out row: nothing would be left to fit on while it is scored
        heldout = (
            float(heldout_member_rate(feature[is_retain], feature[is_nonmember]))
            if is_nonmember.sum() >= 2
            else float("nan")
        )
        result = {
            "mia": mia,
            "auc": auc,
            "attack_balanced_accuracy": float(balanced_accuracy),
            "heldout_member_rate": heldout,
        }
        if round_to is not None:
            result = {key: round(value, int(round_to)) for key, value in result.items()}
        return result
