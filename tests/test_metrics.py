"""Tests of the three `evaluate` metric modules (metrics/rf_jsd, metrics/jsd, metrics/mia).

Every value is checked against an independent computation (scipy's Jensen-Shannon distance, a direct
numpy / torch transcription of the reference `JSDiv`, scikit-learn on scipy entropies) or against
synthetic data whose answer is known. Fast and offline.
"""

import math
import pathlib
import sys
import time

import evaluate
import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.special import softmax
from scipy.stats import entropy as scipy_entropy

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
METRICS_DIR = REPO_ROOT / "metrics"
NAMES = ("rf_jsd", "jsd", "mia")

try:
    from hf_unlearn.evaluation.metric_modules import load_metric, metric_path
except ImportError:  # the package is not installed: use the source checkout
    sys.path.insert(0, str(REPO_ROOT))
    from hf_unlearn.evaluation.metric_modules import load_metric, metric_path


# --------------------------------------------------------------------------------------------------
# fixtures and independent reference computations
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["repo_path", "metric_path"])
def modules(request):
    """The three modules, loaded by repo-relative folder and through hf_unlearn.evaluation.metric_modules."""
    if request.param == "repo_path":
        return {name: evaluate.load(str(METRICS_DIR / name)) for name in NAMES}
    return {name: evaluate.load(metric_path(name)) for name in NAMES}


@pytest.fixture(scope="module")
def rf_jsd():
    return evaluate.load(str(METRICS_DIR / "rf_jsd"))


@pytest.fixture(scope="module")
def jsd():
    return evaluate.load(str(METRICS_DIR / "jsd"))


@pytest.fixture(scope="module")
def mia():
    return evaluate.load(str(METRICS_DIR / "mia"))


def f32(x):
    """What the module stores (float32), as float64 for the independent computations."""
    return np.asarray(x, dtype=np.float32).astype(np.float64)


def textbook_jsd(p, q):
    """Textbook JSD in nats via scipy (jensenshannon returns its square root)."""
    return jensenshannon(p, q, base=math.e) ** 2


def spec_jsdiv_numpy(p, q):
    """SPEC 4.3, transcribed: clamp, whole-tensor normalisation, M, 'batchmean' KL(M||.)."""
    p = np.clip(p, 1e-8, 1.0)
    q = np.clip(q, 1e-8, 1.0)
    p = p / p.sum()
    q = q / q.sum()
    m = (p + q) / 2
    n = p.shape[0]
    return 0.5 * ((m * np.log(m / p)).sum() / n + (m * np.log(m / q)).sum() / n)


def spec_jsdiv_torch(p, q):
    """The same formula with the PyTorch calls the reference code uses (float64)."""
    import torch
    import torch.nn.functional as F

    p = torch.tensor(p, dtype=torch.float64).clamp(1e-8, 1)
    q = torch.tensor(q, dtype=torch.float64).clamp(1e-8, 1)
    p = p / p.sum()
    q = q / q.sum()
    m = (p + q) / 2
    return float(0.5 * (F.kl_div(p.log(), m, reduction="batchmean") + F.kl_div(q.log(), m, reduction="batchmean")))


def per_row_reversed(p, q):
    """Per-row 1/2 [KL(m||p) + KL(m||q)] (the reversed direction)."""
    m = (p + q) / 2
    return 0.5 * ((m * np.log(m / p)).sum(axis=1) + (m * np.log(m / q)).sum(axis=1))


def class_mean_matrix(probs, labels, classes):
    rows = []
    for c in classes:
        mean = probs[labels == c].mean(axis=0)
        rows.append(mean / mean.sum())
    return np.stack(rows)


# --------------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------------


def test_metric_path_points_at_module_folders():
    for name in NAMES:
        folder = pathlib.Path(metric_path(name))
        assert folder.is_dir() and (folder / f"{name}.py").is_file()
        for extra in ("README.md", "requirements.txt", "app.py"):
            assert (folder / extra).is_file(), f"{name}/{extra} missing"
    with pytest.raises(ValueError, match="rf_jsd.*jsd.*mia"):
        metric_path("accuracy")


def test_load_relative_path_and_load_metric(monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    for name in NAMES:
        assert evaluate.load(f"metrics/{name}").name == name
        assert load_metric(name).name == name


def test_modules_are_self_contained():
    for name in NAMES:
        source = (METRICS_DIR / name / f"{name}.py").read_text()
        assert "hf_unlearn" not in source
        for line in source.splitlines():  # evaluate's import parser breaks on "import a, b"
            if line.startswith("import "):
                assert "," not in line, line


def test_readme_cards_have_space_header_and_sections():
    for name in NAMES:
        card = (METRICS_DIR / name / "README.md").read_text()
        header = card.split("---")[1]
        for key in (
            "title:",
            "emoji:",
            "colorFrom:",
            "colorTo:",
            "sdk: gradio",
            "sdk_version:",
            "app_file: app.py",
            "pinned: false",
            "- evaluate",
            "- metric",
            "description:",
        ):
            assert key in header, f"{name}: {key}"
        for section in (
            "Description",
            "How to Use",
            "Inputs",
            "Output Values",
            "Examples",
            "Limitations and Bias",
            "Citation",
        ):
            assert section in card, f"{name}: {section}"
        assert "Spartalis" in card or "Foster" in card


# --------------------------------------------------------------------------------------------------
# jsd
# --------------------------------------------------------------------------------------------------


def _jsd_data(n=60, c=7, seed=0, scale=2.0):
    rng = np.random.default_rng(seed)
    return f32(rng.normal(size=(n, c)) * scale), f32(rng.normal(size=(n, c)) * scale)


def test_jsd_standard_matches_scipy(modules):
    a, b = _jsd_data()
    p, q = softmax(a, axis=1), softmax(b, axis=1)
    expected = np.mean([textbook_jsd(p[i], q[i]) for i in range(len(p))])
    out = modules["jsd"].compute(predictions=a, gold_predictions=b)
    assert set(out) == {"jsd"}
    assert out["jsd"] == pytest.approx(expected, rel=1e-9)
    assert 0 < out["jsd"] < math.log(2)


def test_jsd_reference_matches_spec_transcription(modules):
    a, b = _jsd_data()
    p, q = softmax(a, axis=1), softmax(b, axis=1)
    ref = modules["jsd"].compute(predictions=a, gold_predictions=b, variant="reference")["jsd"]
    assert ref == pytest.approx(spec_jsdiv_numpy(p, q), rel=1e-9)
    assert ref == pytest.approx(spec_jsdiv_torch(p, q), rel=1e-9)
    std = modules["jsd"].compute(predictions=a, gold_predictions=b)["jsd"]
    assert abs(ref - std) > 0.5 * std  # the two variants really differ (1/N scaling)
    # The reference value is (1/N) x mean reversed-direction divergence, NOT (1/N) x mean JSD.
    n = len(p)
    assert ref == pytest.approx(per_row_reversed(p, q).mean() / n, rel=1e-9)
    forward = np.mean([textbook_jsd(p[i], q[i]) for i in range(n)]) / n
    assert abs(ref - forward) > 0.02 * forward


def test_jsd_reference_scales_as_one_over_n(jsd):
    a, b = _jsd_data(n=40)
    single = jsd.compute(predictions=a, gold_predictions=b, variant="reference")["jsd"]
    doubled = jsd.compute(
        predictions=np.concatenate([a, a]), gold_predictions=np.concatenate([b, b]), variant="reference"
    )["jsd"]
    assert doubled == pytest.approx(single / 2, rel=1e-9)
    std_single = jsd.compute(predictions=a, gold_predictions=b)["jsd"]
    std_doubled = jsd.compute(predictions=np.concatenate([a, a]), gold_predictions=np.concatenate([b, b]))["jsd"]
    assert std_doubled == pytest.approx(std_single, rel=1e-12)


def test_jsd_spec_example_random_10_class_pairs(jsd):
    # SPEC 4.3: random 10-class softmax pairs with a per-row reversed-KL mean around 0.84
    # give JSDiv ~ 8.4e-4 at N = 1000 and ~ 1.7e-4 at N = 5000.
    values = {}
    for n in (1000, 5000):
        a, b = _jsd_data(n=n, c=10, seed=n, scale=2.0)
        p, q = softmax(a, axis=1), softmax(b, axis=1)
        row_mean = per_row_reversed(p, q).mean()
        assert 0.7 < row_mean < 1.0
        values[n] = jsd.compute(predictions=a, gold_predictions=b, variant="reference")["jsd"]
        assert values[n] == pytest.approx(row_mean / n, rel=1e-9)
    assert 5e-4 < values[1000] < 1.2e-3
    assert values[1000] / values[5000] == pytest.approx(5.0, rel=0.1)


def test_jsd_identical_models_give_zero_and_rounding(jsd):
    a, _ = _jsd_data()
    assert jsd.compute(predictions=a, gold_predictions=a)["jsd"] == pytest.approx(0.0, abs=1e-12)
    assert jsd.compute(predictions=a, gold_predictions=a, variant="reference")["jsd"] == pytest.approx(0.0, abs=1e-12)
    a, b = _jsd_data()
    full = jsd.compute(predictions=a, gold_predictions=b, variant="reference")["jsd"]
    rounded = jsd.compute(predictions=a, gold_predictions=b, variant="reference", round_to=6)["jsd"]
    assert rounded == round(full, 6) and rounded != full


# --------------------------------------------------------------------------------------------------
# rf_jsd
# --------------------------------------------------------------------------------------------------

FORGET_CLASSES = (3, 7, 250)
NUM_CLASSES = 1200  # > 1000: the reference hard-codes range(1000)


def _rf_data(seed=0):
    """Forget rows of classes {3, 7, 250}; test rows of those plus test-only classes 999 and 1100."""
    rng = np.random.default_rng(seed)
    f_labels = np.repeat(FORGET_CLASSES, [5, 8, 6])
    t_labels = np.concatenate([np.repeat(FORGET_CLASSES, [7, 4, 9]), [999, 999, 1100]])

    def logits(labels, boost):
        z = rng.normal(size=(len(labels), NUM_CLASSES))
        z[np.arange(len(labels)), labels] += boost
        return f32(z)

    return logits(f_labels, 6.0), f_labels, logits(t_labels, 3.0), t_labels


def _rf_inputs(f_logits, f_labels, t_logits, t_labels):
    return dict(
        predictions=np.concatenate([f_logits, t_logits]),
        references=np.concatenate([f_labels, t_labels]),
        subset=["forget"] * len(f_labels) + ["test"] * len(t_labels),
    )


def _rf_expected_matrices(f_logits, f_labels, t_logits, t_labels):
    classes = sorted(set(f_labels.tolist()))
    p = class_mean_matrix(softmax(f_logits, axis=1), f_labels, classes)
    q = class_mean_matrix(softmax(t_logits, axis=1), t_labels, classes)
    return p, q


def test_rf_jsd_standard_matches_scipy_noncontiguous_classes_c_over_1000(modules):
    data = _rf_data()
    p, q = _rf_expected_matrices(*data)
    expected = np.mean([textbook_jsd(p[k], q[k]) for k in range(len(p))])
    out = modules["rf_jsd"].compute(**_rf_inputs(*data))
    assert set(out) == {"rf_jsd"}
    assert out["rf_jsd"] == pytest.approx(expected, rel=1e-9)
    assert 0 < out["rf_jsd"] < math.log(2)


def test_rf_jsd_reference_matches_spec_transcription(modules):
    data = _rf_data()
    p, q = _rf_expected_matrices(*data)
    ref = modules["rf_jsd"].compute(**_rf_inputs(*data), variant="reference")["rf_jsd"]
    assert ref == pytest.approx(spec_jsdiv_numpy(p, q), rel=1e-9)
    assert ref == pytest.approx(spec_jsdiv_torch(p, q), rel=1e-9)
    assert ref == pytest.approx(per_row_reversed(p, q).mean() / len(FORGET_CLASSES), rel=1e-6)
    std = modules["rf_jsd"].compute(**_rf_inputs(*data))["rf_jsd"]
    assert abs(ref - std) > 0.3 * std
    assert modules["rf_jsd"].compute(**_rf_inputs(*data), variant="reference", round_to=6)["rf_jsd"] == round(ref, 6)


def test_rf_jsd_ignores_test_only_classes_and_row_order(rf_jsd):
    f_logits, f_labels, t_logits, t_labels = _rf_data()
    base = rf_jsd.compute(**_rf_inputs(f_logits, f_labels, t_logits, t_labels))["rf_jsd"]
    keep = np.isin(t_labels, FORGET_CLASSES)
    without_extra = rf_jsd.compute(**_rf_inputs(f_logits, f_labels, t_logits[keep], t_labels[keep]))["rf_jsd"]
    assert without_extra == pytest.approx(base, rel=1e-12)
    inputs = _rf_inputs(f_logits, f_labels, t_logits, t_labels)
    perm = np.random.default_rng(1).permutation(len(inputs["references"]))
    shuffled = rf_jsd.compute(
        predictions=inputs["predictions"][perm],
        references=inputs["references"][perm],
        subset=[inputs["subset"][i] for i in perm],
    )["rf_jsd"]
    assert shuffled == pytest.approx(base, rel=1e-9)


def test_rf_jsd_zero_when_forget_looks_like_test(rf_jsd):
    f_logits, f_labels, _, _ = _rf_data()
    out = rf_jsd.compute(**_rf_inputs(f_logits, f_labels, f_logits, f_labels))
    assert out["rf_jsd"] == pytest.approx(0.0, abs=1e-12)


def test_rf_jsd_single_class_unlearning(rf_jsd):
    # Class unlearning: K = 1, the reference formula is then not scaled down.
    rng = np.random.default_rng(3)
    a, b = f32(rng.normal(size=(4, 10))), f32(rng.normal(size=(6, 10)))
    inputs = dict(predictions=np.concatenate([a, b]), references=[2] * 10, subset=["forget"] * 4 + ["test"] * 6)
    p = softmax(a, axis=1).mean(0)
    q = softmax(b, axis=1).mean(0)
    p, q = p / p.sum(), q / q.sum()
    assert rf_jsd.compute(**inputs)["rf_jsd"] == pytest.approx(textbook_jsd(p, q), rel=1e-9)
    assert rf_jsd.compute(**inputs, variant="reference")["rf_jsd"] == pytest.approx(
        spec_jsdiv_numpy(p[None], q[None]), rel=1e-9
    )


# --------------------------------------------------------------------------------------------------
# mia
# --------------------------------------------------------------------------------------------------


def _confident(rng, n, c=10, margin=12.0):
    labels = rng.integers(0, c, size=n)
    z = rng.normal(size=(n, c))
    z[np.arange(n), labels] += margin
    return f32(z), labels


def _uncertain(rng, n, c=10):
    labels = rng.integers(0, c, size=n)
    return f32(rng.normal(scale=0.3, size=(n, c))), labels


def _mia_inputs(parts):
    """parts: list of (subset, logits, labels)."""
    return dict(
        predictions=np.concatenate([p[1] for p in parts]),
        references=np.concatenate([p[2] for p in parts]),
        subset=sum(([p[0]] * len(p[2]) for p in parts), []),
    )


def _mia_pools(seed=0):
    rng = np.random.default_rng(seed)
    return rng, [
        ("retain",) + _confident(rng, 200),
        ("test",) + _uncertain(rng, 100),
        ("validation",) + _uncertain(rng, 100),
    ]


def test_mia_forget_like_members(modules):
    rng, pools = _mia_pools()
    out = modules["mia"].compute(**_mia_inputs(pools + [("forget",) + _confident(rng, 100)]))
    assert {"mia", "auc"} <= set(out)
    assert out["mia"] > 0.95
    assert out["auc"] > 0.95
    assert out["attack_balanced_accuracy"] > 0.95


def test_mia_forget_like_nonmembers(modules):
    rng, pools = _mia_pools()
    out = modules["mia"].compute(**_mia_inputs(pools + [("forget",) + _uncertain(rng, 100)]))
    assert out["mia"] < 0.05
    assert 0.35 < out["auc"] < 0.65


def test_mia_auc_below_half_when_forget_is_less_member_like_than_test(mia):
    # "Streisand effect": forget rows even more uncertain than unseen data (uniform predictions).
    rng, pools = _mia_pools()
    flat = f32(np.zeros((50, 10)) + rng.normal(scale=1e-3, size=(50, 10)))
    out = mia.compute(**_mia_inputs(pools + [("forget", flat, rng.integers(0, 10, 50))]))
    assert out["mia"] == 0.0
    assert out["auc"] < 0.05


def test_mia_matches_independent_sklearn_on_scipy_entropy(mia):
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(5)
    # Overlapping pools so that the learned threshold matters.
    parts = []
    for subset, n, margin in (("retain", 150, 4.0), ("test", 80, 1.5), ("validation", 70, 1.5), ("forget", 120, 2.8)):
        z, y = _confident(rng, n, margin=margin)
        parts.append((subset, z, y))
    inputs = _mia_inputs(parts)
    out = mia.compute(**inputs)
    h = scipy_entropy(softmax(inputs["predictions"], axis=1), axis=1)[:, None]
    s = np.asarray(inputs["subset"])
    x = np.concatenate([h[s == "retain"], h[(s == "test") | (s == "validation")]])
    y = np.concatenate([np.ones((s == "retain").sum()), np.zeros(((s == "test") | (s == "validation")).sum())])
    # C=2 for a binary problem = the reference's multinomial parametrisation with C=1.
    attacker = LogisticRegression(class_weight="balanced", solver="lbfgs", C=2.0, random_state=42, max_iter=1000)
    attacker.fit(x, y)
    expected = float(np.mean(attacker.predict(h[s == "forget"]) == 1))
    assert 0.1 < expected < 0.9  # a non-trivial case
    assert out["mia"] == pytest.approx(expected, abs=1e-12)
    from sklearn.metrics import roc_auc_score

    score = attacker.predict_proba(h)[:, 1]
    auc = roc_auc_score(
        np.r_[np.ones((s == "forget").sum()), np.zeros((s == "test").sum())],
        np.r_[score[s == "forget"], score[s == "test"]],
    )
    assert out["auc"] == pytest.approx(auc, abs=1e-9)
    assert out["mia"] != mia.compute(**inputs, round_to=1)["mia"] or expected == round(expected, 1)


def test_mia_attacker_matches_reference_multinomial_logistic_regression(mia):
    # The reference fits LogisticRegression(multi_class="multinomial", C=1): two symmetric weight vectors,
    # penalty 1/2 (w0^2 + w1^2). Fit that objective independently with scipy and check the module's
    # member/non-member decisions on forget rows placed where C=1 and C=2 binary fits disagree.
    from scipy.optimize import minimize

    members, nonmembers = np.array([0.9, 0.95, 0.99, 0.99]), np.array([0.5, 0.1, 0.1, 0.1])
    forget = np.array([0.5812, 0.5816, 0.5820, 0.7])
    x = np.r_[members, nonmembers]
    y = np.r_[np.ones(4), np.zeros(4)].astype(int)
    weight = np.full(len(y), 1.0)  # balanced classes of equal size

    def objective(theta):
        z = x[:, None] * theta[:2][None, :] + theta[2:][None, :]
        log_lik = z[np.arange(len(y)), y] - np.logaddexp(z[:, 0], z[:, 1])
        return -np.sum(weight * log_lik) + 0.5 * np.sum(theta[:2] ** 2)

    theta = minimize(objective, np.zeros(4), method="BFGS", options={"gtol": 1e-12}).x
    threshold = -(theta[3] - theta[2]) / (theta[1] - theta[0])
    assert 0.5820 < threshold < 0.7
    expected = float(np.mean(forget > threshold))  # members are the confident rows
    assert expected == 0.25

    def rows(conf):
        p = np.repeat(((1 - conf) / 9)[:, None], 10, axis=1)
        p[:, 0] = conf
        return p

    inputs = _mia_inputs(
        [
            ("retain", rows(members), np.zeros(4, int)),
            ("test", rows(nonmembers), np.zeros(4, int)),
            ("forget", rows(forget), np.zeros(4, int)),
        ]
    )
    out = mia.compute(**inputs, attack="confidence", input_type="probabilities")
    assert out["mia"] == expected


def test_mia_attacks_use_their_own_features(mia):
    rng, pools = _mia_pools()
    # Confident but WRONG on the forget rows: low entropy (member-like), high loss (non-member-like).
    z, y = _confident(rng, 100)
    wrong = (y + 1) % 10
    forget = ("forget", z, wrong)
    assert mia.compute(**_mia_inputs(pools + [forget]), attack="entropy")["mia"] > 0.95
    assert mia.compute(**_mia_inputs(pools + [forget]), attack="loss")["mia"] < 0.05

    # Two-way ties: max probability 0.5 like non-members, entropy ln 2 closer to members.
    def probs_rows(top, n):
        p = np.full((n, 10), (1 - top.sum()) / 8)
        p[:, :2] = top
        return f32(p)

    members = ("retain", probs_rows(np.array([0.98, 0.005]), 100), np.zeros(100, int))
    nonmembers = ("test", probs_rows(np.array([0.5, 0.5 / 9]), 100), np.zeros(100, int))
    ties = ("forget", probs_rows(np.array([0.499, 0.499]), 50), np.zeros(50, int))
    inputs = _mia_inputs([members, nonmembers, ties])
    assert mia.compute(**inputs, attack="entropy", input_type="probabilities")["mia"] == 1.0
    assert mia.compute(**inputs, attack="confidence", input_type="probabilities")["mia"] == 0.0


def test_mia_auc_uses_validation_when_no_test_rows(mia):
    rng, pools = _mia_pools()
    forget = ("forget",) + _confident(rng, 60, margin=5.0)
    nonmember = _uncertain(rng, 150)
    with_test = mia.compute(**_mia_inputs([pools[0], ("test",) + nonmember, forget]))
    with_val = mia.compute(**_mia_inputs([pools[0], ("validation",) + nonmember, forget]))
    assert with_val == with_test


def test_mia_zero_probabilities_are_skipped_in_entropy(mia):
    rng, pools = _mia_pools()
    z, y = _confident(rng, 40)
    p = softmax(z, axis=1)
    p[:, :] = np.where(p < 1e-3, 0.0, p)
    p /= p.sum(axis=1, keepdims=True)
    parts = [(s, f32(softmax(zz, axis=1)), yy) for s, zz, yy in pools] + [("forget", f32(p), y)]
    out = mia.compute(**_mia_inputs(parts), input_type="probabilities")
    assert np.isfinite(out["auc"]) and out["mia"] > 0.95


# --------------------------------------------------------------------------------------------------
# streaming and input types
# --------------------------------------------------------------------------------------------------


def _chunks(inputs, sizes):
    start = 0
    for size in sizes:
        yield {k: v[start : start + size] for k, v in inputs.items()}
        start += size


def test_streaming_equals_single_compute(rf_jsd, jsd, mia):
    rf_inputs = _rf_inputs(*_rf_data())
    rf_inputs["subset"] = np.asarray(rf_inputs["subset"])
    a, b = _jsd_data()
    rng, pools = _mia_pools()
    mia_inputs = _mia_inputs(pools + [("forget",) + _uncertain(rng, 30), ("forget",) + _confident(rng, 30)])
    mia_inputs["subset"] = np.asarray(mia_inputs["subset"])
    cases = [
        (rf_jsd, rf_inputs, {"variant": "reference"}, [5, 10, 10, 17]),
        (rf_jsd, rf_inputs, {}, [20, 22]),
        (jsd, {"predictions": a, "gold_predictions": b}, {"variant": "reference"}, [10, 25, 25]),
        (mia, mia_inputs, {}, [100, 200, 100, 60]),
    ]
    for module, inputs, kwargs, sizes in cases:
        assert sum(sizes) == len(next(iter(inputs.values())))
        once = module.compute(**inputs, **kwargs)
        for chunk in _chunks(inputs, sizes):
            module.add_batch(**chunk)
        streamed = module.compute(**kwargs)
        assert streamed == pytest.approx(once, rel=1e-12)


def test_probability_input_equals_logit_input(rf_jsd, jsd, mia):
    f_logits, f_labels, t_logits, t_labels = _rf_data()
    logit_in = _rf_inputs(f_logits, f_labels, t_logits, t_labels)
    prob_in = dict(logit_in, predictions=softmax(logit_in["predictions"], axis=1))
    for variant in ("standard", "reference"):
        assert rf_jsd.compute(**prob_in, variant=variant, input_type="probabilities")["rf_jsd"] == pytest.approx(
            rf_jsd.compute(**logit_in, variant=variant)["rf_jsd"], rel=1e-5
        )
    a, b = _jsd_data()
    for variant in ("standard", "reference"):
        assert jsd.compute(
            predictions=softmax(a, axis=1),
            gold_predictions=softmax(b, axis=1),
            variant=variant,
            input_type="probabilities",
        )["jsd"] == pytest.approx(jsd.compute(predictions=a, gold_predictions=b, variant=variant)["jsd"], rel=1e-5)
    rng, pools = _mia_pools()
    logit_in = _mia_inputs(pools + [("forget",) + _uncertain(rng, 30), ("forget",) + _confident(rng, 30)])
    prob_in = dict(logit_in, predictions=softmax(logit_in["predictions"], axis=1))
    for attack in ("entropy", "loss", "confidence"):
        from_probs = mia.compute(**prob_in, attack=attack, input_type="probabilities")
        from_logits = mia.compute(**logit_in, attack=attack)
        assert from_probs["mia"] == from_logits["mia"] == pytest.approx(0.5, abs=0.05)
        assert from_probs["auc"] == pytest.approx(from_logits["auc"], abs=1e-3)


# --------------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------------


def _good_rf():
    return dict(
        predictions=[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.5, 0.0, 0.0], [0.0, 0.5, 0.0]],
        references=[0, 1, 0, 1],
        subset=["forget", "forget", "test", "test"],
    )


def _good_jsd():
    return dict(predictions=[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], gold_predictions=[[0.5, 0.0, 0.0], [0.0, 0.5, 0.0]])


def _good_mia():
    return dict(
        predictions=[[5.0, 0.0], [0.0, 5.0], [0.1, 0.0], [0.0, 0.1], [4.0, 0.0]],
        references=[0, 1, 0, 1, 0],
        subset=["retain", "retain", "test", "validation", "forget"],
    )


def _with(base, **changes):
    out = dict(base)
    out.update(changes)
    return out


NAN_ROW = [float("nan"), 0.0, 0.0]
INF_ROW = [float("inf"), 0.0, 0.0]

BAD_INPUTS = [
    # rf_jsd
    ("rf_jsd", dict(predictions=[], references=[], subset=[]), {}, "empty"),
    (
        "rf_jsd",
        _with(_good_rf(), predictions=[[1.0, 0.0, 0.0], [0.0, 1.0], [0.5, 0.0, 0.0], [0.0, 0.5, 0.0]]),
        {},
        "different lengths",
    ),
    (
        "rf_jsd",
        _with(_good_rf(), predictions=[NAN_ROW, [0.0, 1.0, 0.0], [0.5, 0.0, 0.0], [0.0, 0.5, 0.0]]),
        {},
        "NaN or inf",
    ),
    (
        "rf_jsd",
        _with(_good_rf(), predictions=[INF_ROW, [0.0, 1.0, 0.0], [0.5, 0.0, 0.0], [0.0, 0.5, 0.0]]),
        {},
        "NaN or inf",
    ),
    ("rf_jsd", _with(_good_rf(), subset=["forget", "forget", "test", "retain"]), {}, "Unknown subset.*'retain'"),
    (
        "rf_jsd",
        _with(_good_rf(), references=[0, 2, 0, 1]),
        {},
        r"Forget class\(es\) \[2\] \(1 in all\) have no test rows",
    ),
    ("rf_jsd", _with(_good_rf(), subset=["test"] * 4), {}, "No rows with subset='forget'"),
    ("rf_jsd", _with(_good_rf(), subset=["forget"] * 4), {}, "No rows with subset='test'"),
    ("rf_jsd", _with(_good_rf(), references=[0, 1, 0, 3]), {}, r"class ids in \[0, 3\)"),
    ("rf_jsd", _good_rf(), {"variant": "jsd"}, "Unknown variant"),
    ("rf_jsd", _good_rf(), {"input_type": "softmax"}, "Unknown input_type"),
    ("rf_jsd", _good_rf(), {"input_type": "probabilities"}, "must sum to 1"),
    ("rf_jsd", _good_rf(), {"varient": "reference"}, r"Unknown option\(s\) \['varient'\]"),
    # jsd
    ("jsd", dict(predictions=[], gold_predictions=[]), {}, "empty"),
    ("jsd", _with(_good_jsd(), gold_predictions=[[0.5, 0.0], [0.0, 0.5]]), {}, "shape"),
    ("jsd", _with(_good_jsd(), predictions=[[1.0, 0.0, 0.0], [0.0, 1.0]]), {}, "different lengths"),
    ("jsd", _with(_good_jsd(), gold_predictions=[NAN_ROW, [0.0, 0.5, 0.0]]), {}, "gold_predictions.*NaN or inf"),
    (
        "jsd",
        _with(_good_jsd(), predictions=[[1.2, -0.2, 0.0], [0.0, 1.0, 0.0]]),
        {"input_type": "probabilities"},
        "negative",
    ),
    ("jsd", _good_jsd(), {"variant": "textbook"}, "Unknown variant"),
    # mia
    ("mia", dict(predictions=[], references=[], subset=[]), {}, "empty"),
    (
        "mia",
        _with(_good_mia(), subset=["forget", "forget", "test", "validation", "forget"]),
        {},
        "No rows with subset='retain'",
    ),
    (
        "mia",
        _with(_good_mia(), subset=["retain", "retain", "forget", "forget", "forget"]),
        {},
        "subset='test' or 'validation'",
    ),
    (
        "mia",
        _with(_good_mia(), subset=["retain", "retain", "test", "validation", "test"]),
        {},
        "No rows with subset='forget'",
    ),
    ("mia", _with(_good_mia(), subset=["retain", "retain", "test", "val", "forget"]), {}, "'validation'"),
    (
        "mia",
        _with(_good_mia(), predictions=[[5.0, 0.0], [0.0, 5.0, 1.0], [0.1, 0.0], [0.0, 0.1], [4.0, 0.0]]),
        {},
        "different lengths",
    ),
    (
        "mia",
        _with(_good_mia(), predictions=[[5.0, 0.0], [0.0, float("nan")], [0.1, 0.0], [0.0, 0.1], [4.0, 0.0]]),
        {},
        "NaN or inf",
    ),
    ("mia", _with(_good_mia(), references=[0, 1, 0, 1, 7]), {}, r"class ids in \[0, 2\)"),
    ("mia", _good_mia(), {"attack": "lira"}, "Unknown attack"),
    ("mia", _good_mia(), {"input_type": "probabilities"}, "must sum to 1|negative"),
]


@pytest.mark.parametrize(
    "name, inputs, kwargs, message", BAD_INPUTS, ids=[f"{b[0]}-{i}-{b[3][:25]}" for i, b in enumerate(BAD_INPUTS)]
)
def test_bad_input_raises_helpful_value_error(rf_jsd, jsd, mia, name, inputs, kwargs, message):
    module = {"rf_jsd": rf_jsd, "jsd": jsd, "mia": mia}[name]
    with pytest.raises(ValueError, match=message):
        module.compute(**inputs, **kwargs)
    # The failed compute leaves the module usable at once (no stale cache-file lock to wait for).
    good = {"rf_jsd": _good_rf, "jsd": _good_jsd, "mia": _good_mia}[name]()
    start = time.perf_counter()
    assert module.compute(**good) == module.compute(**good)
    assert time.perf_counter() - start < 0.9
