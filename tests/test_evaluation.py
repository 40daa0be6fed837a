"""The evaluation pipeline: one forward pass per model and split, shared by every metric."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import random_predictions

from hf_unlearn.evaluation.metric_modules import load_metric
from hf_unlearn.evaluation.metrics import avg_gap, unlearning_metrics


def test_pipeline_accuracies_equal_a_direct_computation(make_trainer, digits, test_split):
    trainer = make_trainer("finetune", max_steps=2)
    trainer.train()
    results = trainer.evaluate_unlearning(digits["test"], original=trainer.predictions(trainer.model, digits["test"]))
    model = trainer.model.eval()
    for key, split in (
        ("acc_forget", trainer.forget_split),
        ("acc_retain", trainer.retain_split),
        ("acc_test", test_split),
        ("acc_val", trainer.calibration_split),
    ):
        with torch.no_grad():
            direct = (model(pixel_values=split.pixel_values).logits.argmax(-1) == split.labels).float().mean().item()
        assert results["unlearned"][key] == pytest.approx(direct, abs=1e-12), key
    assert {"mia", "mia_auc", "rf_jsd", "runtime_s"} <= results["unlearned"].keys()
    assert "jsd" not in results["unlearned"] and "avg_gap" not in results["unlearned"]


def test_teacher_is_the_default_original_and_gold_adds_jsd_and_avg_gap(make_trainer, digits):
    trainer = make_trainer("lotus", max_steps=2)
    original = trainer.predictions(trainer.teacher, digits["test"])
    trainer.train()
    gold = trainer.predictions(trainer.teacher, digits["test"])  # the original as a stand-in gold model
    results = trainer.evaluate_unlearning(digits["test"], gold=gold)
    # the original compared with itself as gold: every gap is zero, JSD is zero
    assert results["original"]["avg_gap"] == pytest.approx(0.0, abs=1e-12)
    assert results["original"]["jsd"] == pytest.approx(0.0, abs=1e-9)
    assert results["unlearned"]["jsd"] > 0.0
    expected_gap = np.mean(
        [abs(results["unlearned"][k] - results["gold"][k]) for k in ("mia", "acc_forget", "acc_retain", "acc_test")]
    )
    assert results["unlearned"]["avg_gap"] == pytest.approx(expected_gap)
    # RF-JSD of the original: its forget predictions against its own test predictions
    assert results["original"]["rf_jsd"] == pytest.approx(unlearning_metrics(original, original)["rf_jsd"], rel=1e-6)


def test_methods_without_teacher_need_the_original(make_trainer, digits):
    trainer = make_trainer("finetune", max_steps=1)
    with pytest.raises(ValueError, match="keeps no copy of the original"):
        trainer.evaluate_unlearning(digits["test"])


def _random_predictions(seed: int, sizes: dict[str, int]):
    return random_predictions(seed, sizes, classes=5, scale=3)


def test_metrics_match_the_modules_fed_directly():
    sizes = {"forget": 40, "retain": 200, "test": 100, "validation": 60}
    model, original = _random_predictions(0, sizes), _random_predictions(1, sizes)
    original.labels = model.labels  # same samples
    result = unlearning_metrics(model, original)
    rf = load_metric("rf_jsd").compute(
        predictions=np.concatenate([model.logits["forget"].numpy(), original.logits["test"].numpy()]),
        references=np.concatenate([model.labels["forget"].numpy(), original.labels["test"].numpy()]),
        subset=["forget"] * 40 + ["test"] * 100,
    )
    assert result["rf_jsd"] == pytest.approx(rf["rf_jsd"], rel=1e-6)
    order = ["retain", "forget", "test", "validation"]
    mia = load_metric("mia").compute(
        predictions=np.concatenate([model.logits[s].numpy() for s in order]),
        references=np.concatenate([model.labels[s].numpy() for s in order]),
        subset=sum(([s] * sizes[s] for s in order), []),
    )
    assert result["mia"] == pytest.approx(mia["mia"]) and result["mia_auc"] == pytest.approx(mia["auc"])
    assert result["acc_forget"] == pytest.approx(
        (model.logits["forget"].argmax(-1) == model.labels["forget"]).float().mean().item()
    )


def test_avg_gap_is_the_mean_of_four_absolute_gaps():
    m = {"mia": 0.9, "acc_forget": 1.0, "acc_retain": 1.0, "acc_test": 0.93}
    g = {"mia": 0.76, "acc_forget": 0.91, "acc_retain": 0.99, "acc_test": 0.91}
    assert avg_gap(m, g) == pytest.approx((0.14 + 0.09 + 0.01 + 0.02) / 4)
    with pytest.raises(ValueError, match="missing"):
        avg_gap({"mia": 1.0}, g)


def test_reference_variant_is_the_jsdiv_formula():
    sizes = {"forget": 30, "test": 50}
    model, original = _random_predictions(2, sizes), _random_predictions(3, sizes)
    standard = unlearning_metrics(model, original)["rf_jsd"]
    reference = unlearning_metrics(model, original, variant="reference")["rf_jsd"]
    assert standard != pytest.approx(reference)
    # Independent transcription of SPEC §4.3/§4.5 (class means, whole-tensor normalisation, reversed KL, /K).
    classes = sorted(set(model.labels["forget"].tolist()))
    p = torch.stack([F.softmax(model.logits["forget"][model.labels["forget"] == c], -1).mean(0) for c in classes])
    q = torch.stack([F.softmax(original.logits["test"][original.labels["test"] == c], -1).mean(0) for c in classes])
    p, q = p / p.sum(-1, keepdim=True), q / q.sum(-1, keepdim=True)
    p, q = p.double().clamp(1e-8, 1), q.double().clamp(1e-8, 1)
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2
    expected = 0.5 * ((m * (m.log() - p.log())).sum() + (m * (m.log() - q.log())).sum()) / len(classes)
    assert reference == pytest.approx(expected.item(), rel=1e-5)
