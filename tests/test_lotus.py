"""LoTUS (SPEC §2): targets, temperature, stopping rule, and an end-to-end run that forgets."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from hf_unlearn.methods.lotus import Lotus, LotusConfig, lotus_targets, soft_cross_entropy


def entropy(p: torch.Tensor) -> torch.Tensor:
    return -(p.clamp_min(1e-12).log() * p).sum(-1)


def test_hard_retain_targets_are_samples_of_the_teacher_distribution():
    torch.manual_seed(0)
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    logits = probs.log().repeat(40_000, 1)
    targets = lotus_targets(logits, torch.zeros(40_000, dtype=torch.long), tau=1.0)
    assert torch.all(targets.sum(-1) == 1) and torch.all((targets == 0) | (targets == 1))  # one-hot
    frequencies = targets.mean(0)
    # Gumbel-max sampling: class frequencies match softmax(z), not the argmax (which would give [1, 0, 0, 0]).
    assert torch.allclose(frequencies, probs, atol=0.01), frequencies


def test_softmax_mode_uses_teacher_argmax_without_noise():
    logits = torch.tensor([[0.1, 2.0, 0.3]]).repeat(100, 1)
    targets = lotus_targets(logits, torch.zeros(100, dtype=torch.long), tau=1.0, sampling="softmax")
    assert torch.all(targets.argmax(-1) == 1) and torch.all(targets.max(-1).values == 1)


def test_soft_forget_targets_entropy_grows_with_tau():
    torch.manual_seed(0)
    logits = torch.randn(4_000, 10) * 3
    flags = torch.ones(4_000, dtype=torch.long)
    entropies = [entropy(lotus_targets(logits, flags, tau=tau)).mean().item() for tau in (0.5, 1.0, 2.0, 8.0, 1e6)]
    assert all(a < b for a, b in zip(entropies, entropies[1:], strict=False)), entropies
    assert entropies[-1] == pytest.approx(math.log(10), abs=1e-3)  # huge tau: uniform target


def test_mixed_batch_uses_soft_for_forget_rows_and_hard_for_retain_rows():
    torch.manual_seed(0)
    logits = torch.randn(6, 5)
    flags = torch.tensor([1, 0, 1, 0, 0, 1])
    targets = lotus_targets(logits, flags, tau=3.0)
    is_one_hot = (targets.max(-1).values == 1) & (targets.sum(-1) == 1)
    assert is_one_hot.tolist() == [False, True, False, True, True, False]


def test_soft_cross_entropy_matches_hard_cross_entropy_on_one_hot_targets():
    logits = torch.randn(8, 4)
    labels = torch.randint(0, 4, (8,))
    one_hot = torch.nn.functional.one_hot(labels, 4).float()
    assert soft_cross_entropy(logits, one_hot).item() == pytest.approx(
        torch.nn.functional.cross_entropy(logits, labels).item(), rel=1e-6
    )


def _fake_trainer(forget_acc: float, calibration_acc: float):
    logs = []
    trainer = SimpleNamespace(
        teacher="teacher",
        model="model",
        calibration_split="cal",
        forget_split="forget",
        log=logs.append,
        accuracy=lambda model, split: calibration_acc if split == "cal" else forget_acc,
    )
    return trainer, logs


@pytest.mark.parametrize(
    "forget_acc, cal_acc, rounding, stop, delta",
    [
        (1.00, 0.93, False, False, 0.07),
        (0.92, 0.93, False, True, -0.01),  # exactly one point below: stop
        (0.922, 0.93, False, False, -0.008),  # less than one point below: keep going
        (0.964, 0.966, False, False, -0.002),
        (0.964, 0.966, True, True, -0.01),  # reference rounding: 0.96 - 0.97
        (0.966, 0.974, True, False, 0.0),  # reference rounding: 0.97 - 0.97, tau = 1
    ],
)
def test_temperature_and_stop_rule(forget_acc, cal_acc, rounding, stop, delta):
    method = Lotus(LotusConfig(alpha=8.0, reference_rounding=rounding))
    trainer, logs = _fake_trainer(forget_acc, cal_acc)
    method.prepare(trainer)
    assert method.history[0]["delta"] == pytest.approx(delta, abs=1e-9)
    assert method.tau == pytest.approx(math.exp(8.0 * delta), rel=1e-9)
    assert method.finished is stop
    assert logs[0]["lotus_tau"] == pytest.approx(method.tau) and logs[0]["lotus_stop"] == float(stop)


def test_class_unlearning_takes_calibration_accuracy_as_zero():
    method = Lotus(LotusConfig(alpha=32.0, class_unlearning=True))
    trainer, _ = _fake_trainer(forget_acc=0.5, calibration_acc=0.99)
    method.prepare(trainer)
    assert method.calibration_accuracy == 0.0
    assert method.tau == pytest.approx(math.exp(16.0)) and not method.finished


def test_lotus_without_calibration_data_is_refused_before_training(make_trainer, forget_split):
    from hf_unlearn import UnlearningTrainer

    trainer = make_trainer("lotus")
    with pytest.raises(ValueError, match="calibration_dataset"):
        UnlearningTrainer(
            trainer.model,
            trainer.args,
            forget_dataset=forget_split.forget,
            retain_dataset=forget_split.retain,
            image_transform=trainer.image_transform,
        )


def _split_loss(trainer, split) -> float:
    logits = trainer.predict_logits(trainer.model, split)
    return torch.nn.functional.cross_entropy(logits, split.labels).item()


def _accuracies_and_losses(trainer, splits):
    return (
        {k: trainer.accuracy(trainer.model, s) for k, s in splits.items()},
        {k: _split_loss(trainer, s) for k, s in splits.items()},
    )


def test_lotus_lowers_forget_accuracy_towards_test_accuracy(make_trainer, vit_original_path, digits):
    """The embedded default exactly as the main job runs it (ViT, alpha 32, batch 32, lr 5e-4, 10 epochs, no clipping).

    Measured from the shipped ViT (forget 1.000, test 0.963, forget-test gap 0.037), seeds 0-3 x 1 and 2 threads (the
    same numbers under both): seeds 1-3 stop after 2 epochs at forget 0.967; seed 0 never reaches the stop rule, its
    forget accuracy dips to 0.975 after epoch 1 and oscillates back to 1.000 by epoch 10 (LoTUS returns the last
    epoch). In every case: the forget rows' loss rises 5.4-15.9x, retain accuracy stays >= 0.980. So the assertions
    are the lowest forget accuracy LoTUS measured during the run, and the final forget loss (>= 4x).
    """
    trainer = make_trainer(
        "lotus",
        method_config={"alpha": 32.0},
        model_path=vit_original_path,
        per_device_train_batch_size=32,
        learning_rate=5e-4,
        num_train_epochs=10,
    )
    splits = {
        "forget": trainer.forget_split,
        "retain": trainer.retain_split,
        "test": trainer.as_split(digits["test"], "test"),
    }
    before, loss_before = _accuracies_and_losses(trainer, splits)
    trainer.train()
    after, loss_after = _accuracies_and_losses(trainer, splits)
    assert before["forget"] - before["test"] > 0.02  # there is something to forget
    assert min(h["forget_accuracy"] for h in trainer.method.history[1:]) < before["forget"]  # towards test level
    assert after["forget"] <= before["forget"]
    assert loss_after["forget"] > 4 * loss_before["forget"]
    assert after["retain"] > before["retain"] - 0.03
    assert trainer.method.history[0]["tau"] > 1.0 and not trainer.model.training


def test_lotus_makes_memorised_forget_rows_fit_like_unseen_data(make_trainer, test_split):
    # The 8x8 ResNet memorises with extreme confidence and its forget/calibration gap is only ~2 points, so
    # tau = exp(alpha * 0.022) needs a large alpha to matter (alpha 8 -> 1.19: nothing forgotten; 64 -> 4.1).
    # With a 2-point gap forget *accuracy* moves by one or two of 120 images (and test accuracy as much), so this
    # test checks the robust signal: the forget rows' loss. Measured from the shipped ResNet, seeds 0-3 x 1 and 2
    # threads (identical): forget loss x18.4-64.6 (asserted: x5), forget loss / retain loss after 1.21-1.85
    # (before 1.17; asserted: > 1), forget accuracy 1.000 -> 0.992-1.000, retain accuracy >= 0.996.
    trainer = make_trainer(
        "lotus", method_config={"alpha": 64.0}, per_device_train_batch_size=32, learning_rate=5e-4, num_train_epochs=5
    )
    splits = {"forget": trainer.forget_split, "retain": trainer.retain_split, "test": test_split}
    acc_before, loss_before = _accuracies_and_losses(trainer, splits)
    trainer.train()
    acc_after, loss_after = _accuracies_and_losses(trainer, splits)
    # Before: forget and retain rows are memorised alike. After: the forget rows' loss has risen by an order of
    # magnitude and is above the retained rows', while the retain fit is kept.
    assert loss_before["forget"] < 2 * loss_before["retain"]
    assert loss_after["forget"] > 5 * loss_before["forget"]
    assert loss_after["forget"] > loss_after["retain"]
    assert acc_after["forget"] <= acc_before["forget"]
    assert acc_after["retain"] > acc_before["retain"] - 0.03
