"""Bad Teacher, SCRUB and UNSIR: each does what its paper intends (and what the reference code got wrong)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import QUIET_TRAINING
from transformers import TrainerCallback, TrainingArguments

METHODS = ("bad_teacher", "scrub", "unsir")


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: these models are tiny


# ---- helpers ---------------------------------------------------------------------------------------------
def kl(target_logits: torch.Tensor, model_logits: torch.Tensor, temperature: float = 1.0) -> float:
    """Mean over rows of KL(softmax(target / T) || softmax(model / T))."""
    log_q = F.log_softmax(model_logits / temperature, dim=-1)
    p = F.softmax(target_logits / temperature, dim=-1)
    return F.kl_div(log_q, p, reduction="none").sum(-1).mean().item()


def weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def max_change(before: dict, model) -> float:
    after = model.state_dict()
    return max((after[k].float() - v.float()).abs().max().item() for k, v in before.items())


def accuracies(trainer, test_split) -> tuple[float, float, float]:
    return tuple(trainer.accuracy(trainer.model, s) for s in (trainer.forget_split, trainer.retain_split, test_split))


def assert_unlearned(before, after, *, retain_tolerance=0.03):
    """Forget accuracy dropped or is at the original's test level; retain accuracy within a few points."""
    (f0, r0, t0), (f1, r1, _) = before, after
    assert f1 <= f0
    assert f1 < f0 or f1 <= t0 + 0.01, f"forget accuracy {f1:.3f} stayed above the test level {t0:.3f}"
    assert r1 >= r0 - retain_tolerance, f"retain accuracy fell from {r0:.3f} to {r1:.3f}"


@pytest.fixture
def vit_path(tmp_path):
    """A small untrained HF ViT on 8x8 digits (no dropout, no BatchNorm: per-row independent)."""
    from hf_unlearn import save_classifier
    from hf_unlearn.data.builtin import build_image_classifier

    model, processor = build_image_classifier("vit", 10, 8, seed=0)
    path = str(tmp_path / "vit")
    save_classifier(model, path, processor)
    return path


def _trainer_for(path, method, forget_split, tmp_path, method_config=None, **overrides):
    from hf_unlearn import UnlearningArguments, UnlearningTrainer, load_classifier

    loaded = load_classifier(path)
    settings = dict(
        output_dir=str(tmp_path / "out"),
        **QUIET_TRAINING,
    )
    settings.update(overrides)
    return UnlearningTrainer(
        loaded.model,
        UnlearningArguments.for_method(method, **settings),
        forget_dataset=forget_split.forget,
        retain_dataset=forget_split.retain,
        method_config=method_config,
        image_transform=loaded.transform,
    )


# ---- registry and configuration -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", METHODS)
def test_registered_with_documented_config_and_defaults(name):
    from hf_unlearn import get_method_class, list_methods

    assert name in list_methods()
    cls = get_method_class(name)
    training_fields = {f.name for f in dataclasses.fields(TrainingArguments)}
    for f in dataclasses.fields(cls.config_class):
        assert f.metadata.get("help"), f"{name}.{f.name} has no help"
        assert f.name not in training_fields, f"{name}.{f.name} collides with a TrainingArguments field"
    for key in (
        "optim",
        "learning_rate",
        "weight_decay",
        "lr_scheduler_type",
        "warmup_steps",
        "num_train_epochs",
        "per_device_train_batch_size",
    ):
        assert key in cls.training_defaults, f"{name} has no default {key}"
    assert cls.training_defaults["lr_scheduler_type"] == "constant"


def test_plain_adam_from_training_arguments(make_trainer):
    trainer = make_trainer("scrub", max_steps=1, adam_beta2=0.99)
    trainer.create_optimizer()
    opt = trainer.optimizer
    assert type(opt) is torch.optim.Adam
    assert opt.param_groups[0]["lr"] == pytest.approx(5e-4) and opt.param_groups[0]["betas"] == (0.9, 0.99)
    assert {g["weight_decay"] for g in opt.param_groups if g["params"]} == {5e-4}  # all decayed, as the reference
    trainer = make_trainer("bad_teacher", max_steps=1, method_config={"plain_adam": False}, optim="sgd")
    trainer.create_optimizer()
    assert type(trainer.optimizer).__name__ == "SGD"
    with pytest.warns(UserWarning, match="plain Adam"):
        make_trainer("bad_teacher", max_steps=1, optim="sgd")


# ---- SCRUB ----------------------------------------------------------------------------------------------------
class _ForgetKL(TrainerCallback):
    """KL(teacher || model) at T on the forget and retain sets after every epoch."""

    def __init__(self, trainer, temperature):
        self.trainer, self.temperature, self.values = trainer, temperature, []

    def on_epoch_end(self, args, state, control, **kwargs):
        t = self.trainer
        self.values.append(
            tuple(
                kl(t.predict_logits(t.teacher, split), t.predict_logits(t.model, split), self.temperature)
                for split in (t.forget_split, t.retain_split)
            )
        )


def test_scrub_end_to_end_max_steps_push_forget_away(make_trainer, test_split):
    trainer = make_trainer("scrub")  # defaults: 3 epochs, max-steps in the first 2
    assert trainer.args.num_train_epochs == 3 and trainer.method.config.scrub_max_steps == 2
    before_weights, before = weights(trainer.model), accuracies(trainer, test_split)
    recorder = _ForgetKL(trainer, 4.0)
    trainer.add_callback(recorder)
    trainer.train()
    after = accuracies(trainer, test_split)

    assert max_change(before_weights, trainer.model) > 1e-3  # the reference returns the untouched original
    (f1, r1), (f2, r2), _ = recorder.values
    assert f2 > f1 > 0.02, f"forget KL to the teacher should grow over the max-step epochs: {recorder.values}"
    assert f1 > r1 and f2 > r2  # forget rows move further from the teacher than retain rows
    assert_unlearned(before, after, retain_tolerance=0.02)
    assert trainer.method.max_phase is False and not trainer.model.training

    # Without max-steps the same epoch barely moves the forget rows away from the teacher.
    no_max = make_trainer("scrub", {"scrub_max_steps": 0}, num_train_epochs=1)
    recorder0 = _ForgetKL(no_max, 4.0)
    no_max.add_callback(recorder0)
    no_max.train()
    assert recorder0.values[0][0] < f1 / 3


def test_scrub_resume_matches_uninterrupted_run(make_trainer, tmp_path):
    config = {"scrub_max_steps": 1}
    full = make_trainer(
        "scrub", config, num_train_epochs=2, save_strategy="steps", save_steps=5, output_dir=str(tmp_path / "full")
    )
    full.train()  # 20 steps: max-steps in epoch 0 (steps 1-10), min-steps only in epoch 1
    checkpoint = tmp_path / "full" / "checkpoint-5"  # mid-epoch 0, in the max-step phase
    saved = torch.load(checkpoint / "unlearning_method_state.pt", weights_only=True)
    assert saved["state"] == {"epoch_index": 0, "max_phase": True}

    resumed = make_trainer("scrub", config, num_train_epochs=2, output_dir=str(tmp_path / "resumed"))
    resumed.train(resume_from_checkpoint=str(checkpoint))
    assert resumed.state.global_step == 20 and resumed.method.max_phase is False
    expected = full.model.state_dict()
    for key, value in resumed.model.state_dict().items():
        assert torch.allclose(value.float(), expected[key].float(), atol=1e-6), key


# ---- Bad Teacher ----------------------------------------------------------------------------------------------
def test_bad_teacher_incompetent_teacher_is_fresh_and_frozen(make_trainer):
    trainer = make_trainer("bad_teacher", seed=3)
    rng = torch.get_rng_state()
    incompetent = trainer.method.build_incompetent_teacher(trainer)
    assert torch.equal(rng, torch.get_rng_state())  # built under a forked RNG
    assert type(incompetent) is type(trainer.model) and not incompetent.training
    assert not any(p.requires_grad for p in incompetent.parameters())
    original = trainer.model.state_dict()
    fresh = incompetent.state_dict()
    assert fresh.keys() == original.keys()
    assert not torch.allclose(fresh["classifier.1.weight"], original["classifier.1.weight"])
    # Nothing pretrained: it is exactly the config's random initialisation under the run's seed's re-initialisation
    # stream (hf_unlearn.modeling.classifiers.reinit_seed: never the stream an original or gold is built from) ...
    from hf_unlearn.modeling.classifiers import reinit_seed

    torch.manual_seed(reinit_seed(3))
    reference = type(trainer.model)(trainer.model.config).state_dict()
    assert all(torch.equal(fresh[k], reference[k]) for k in reference)
    # ... so a resumed run rebuilds the same teacher, and another seed gives another one.
    again = trainer.method.build_incompetent_teacher(trainer).state_dict()
    assert all(torch.equal(fresh[k], again[k]) for k in fresh)
    trainer.args.seed = 4
    other = trainer.method.build_incompetent_teacher(trainer).state_dict()
    assert not torch.equal(fresh["classifier.1.weight"], other["classifier.1.weight"])


def test_bad_teacher_mixture_is_forget_plus_seeded_30_percent_of_retain(make_trainer):
    trainer = make_trainer("bad_teacher", max_steps=1)
    mixture = trainer.train_dataset
    n_r = len(trainer.retain_split)
    assert int((mixture.source == 1).sum()) == len(trainer.forget_split)
    assert int((mixture.source == 0).sum()) == int(0.3 * n_r)
    again = make_trainer("bad_teacher", max_steps=1).train_dataset
    assert torch.equal(again.position, mixture.position)


def test_bad_teacher_end_to_end_forget_follows_incompetent_teacher(make_trainer, test_split):
    # The defaults (Adam 1e-4, batch 128, 10 epochs: 40 steps on 120 forget + 341 retain rows) change no
    # prediction here; 5 epochs of batch 64 at 2e-4 (40 steps) show the effect on this tiny set.
    # Measured from the shipped ResNet, seeds 0-3 (1 thread; seed 0 also under 2): KL to the incompetent teacher
    # x0.60-0.64 (asserted < 0.8), retain KL to the original 0.013-0.018 (< 0.05), forget KL / retain KL 2.4-3.6
    # (> 2), retain accuracy >= 0.996 (>= before - 0.02). Forget accuracy 1.000 -> 0.975-1.000: with a 2-point
    # forget/test gap on 120 rows it moves by 0-3 rows (seed 2: none), so the signal asserted is the KL, and only
    # that forget accuracy does not rise.
    trainer = make_trainer("bad_teacher", num_train_epochs=5, per_device_train_batch_size=64, learning_rate=2e-4)
    trainer.method.on_train_begin(trainer, trainer.state, trainer.control)
    incompetent = trainer.method.incompetent_teacher
    forget, retain = trainer.forget_split, trainer.retain_split
    to_incompetent_before = kl(
        trainer.predict_logits(incompetent, forget), trainer.predict_logits(trainer.model, forget)
    )
    before = accuracies(trainer, test_split)
    trainer.train()
    after = accuracies(trainer, test_split)
    assert trainer.method.incompetent_teacher is incompetent  # built once

    to_incompetent_after = kl(
        trainer.predict_logits(incompetent, forget), trainer.predict_logits(trainer.model, forget)
    )
    forget_to_competent = kl(
        trainer.predict_logits(trainer.teacher, forget), trainer.predict_logits(trainer.model, forget)
    )
    retain_to_competent = kl(
        trainer.predict_logits(trainer.teacher, retain), trainer.predict_logits(trainer.model, retain)
    )
    assert to_incompetent_after < 0.8 * to_incompetent_before
    assert retain_to_competent < 0.05
    assert retain_to_competent < forget_to_competent / 2
    (f0, r0, _), (f1, r1, _) = before, after
    assert f1 <= f0
    assert r1 >= r0 - 0.02, f"retain accuracy fell from {r0:.3f} to {r1:.3f}"


# ---- gradient accumulation ------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["bad_teacher", "scrub"])
def test_gradient_accumulation_equals_one_big_batch(method, vit_path, forget_split, tmp_path):
    # SGD without clipping so that any scaling error shows (Adam's first step and clipping would hide it);
    # a ViT without dropout so that the rows of a batch are independent (BatchNorm statistics are not).
    common = dict(
        method_config={"plain_adam": False},
        optim="sgd",
        optim_args=None,
        learning_rate=0.5,
        max_grad_norm=0.0,
        max_steps=1,
        seed=1,
    )  # seed 0 built the ViT: its twin would teach
    if method == "scrub":
        common["method_config"]["scrub_max_steps"] = 1
    big = _trainer_for(
        vit_path,
        method,
        forget_split,
        tmp_path / "big",
        per_device_train_batch_size=16,
        gradient_accumulation_steps=1,
        **common,
    )
    small = _trainer_for(
        vit_path,
        method,
        forget_split,
        tmp_path / "small",
        per_device_train_batch_size=8,
        gradient_accumulation_steps=2,
        **common,
    )
    start = weights(big.model)
    big.train()
    small.train()
    assert max_change(start, big.model) > 1e-3
    expected = big.model.state_dict()
    for key, value in small.model.state_dict().items():
        assert torch.allclose(value, expected[key], atol=1e-5), key


# ---- UNSIR -----------------------------------------------------------------------------------------------------
def test_unsir_noise_maximises_forget_error_and_leaves_model_alone(make_trainer):
    from hf_unlearn.methods.unsir import error_maximising_noise

    trainer = make_trainer("unsir", max_steps=1)
    model = trainer.model.train()
    _, pixels, labels = next(trainer.forget_split.batches(32))
    torch.manual_seed(0)
    noise, errors, objectives = error_maximising_noise(
        model, trainer.logits, pixels.shape, labels, steps=5, lr=0.01, l2_weight=0.1
    )
    assert len(errors) == len(objectives) == 5 and noise.shape == pixels.shape
    assert errors[-1] > errors[0] and objectives[-1] < objectives[0]
    assert all(b > a for a, b in zip(errors, errors[1:], strict=False)), errors
    assert model.training  # mode restored
    assert all(p.grad is None for p in model.parameters())  # only the noise got gradients
    assert noise.min() < 0  # not clamped to [0, 1]: inputs are normalised


def test_unsir_impair_trains_noise_with_forget_labels(make_trainer, monkeypatch):
    import hf_unlearn.methods.unsir as unsir

    calls = []
    real = unsir.error_maximising_noise

    def spy(model, logits_fn, shape, labels, **kwargs):
        noise, errors, objectives = real(model, logits_fn, shape, labels, **kwargs)
        calls.append((labels.clone(), noise.clone()))
        return noise, errors, objectives

    monkeypatch.setattr(unsir, "error_maximising_noise", spy)
    trainer = make_trainer("unsir", max_steps=1)
    method, model = trainer.method, trainer.model.train()
    method._set_epoch(0)
    inputs = next(iter(trainer.get_train_dataloader()))
    forget = inputs["forget_flag"].bool()
    assert forget.any() and (~forget).any()
    loss = method.compute_loss(trainer, model, inputs)
    ((labels, noise),) = calls
    assert torch.equal(labels, inputs["labels"][forget])  # forget labels, not the retain batch's
    assert len(method.last_noise_losses) == method.config.noise_steps == 5
    x = inputs["pixel_values"].clone()
    x[forget] = noise
    expected = F.cross_entropy(trainer.logits(model, x), inputs["labels"])
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)

    method._set_epoch(1)  # repair: retain rows only, each weighing 1/B; no noise
    loss = method.compute_loss(trainer, model, inputs)
    assert len(calls) == 1
    per_row = F.cross_entropy(
        trainer.logits(model, inputs["pixel_values"][~forget]), inputs["labels"][~forget], reduction="none"
    )
    assert loss.item() == pytest.approx(per_row.sum().item() / len(forget), rel=1e-5)


def test_unsir_phase_cycle_and_state():
    from hf_unlearn.methods.unsir import Unsir

    method = Unsir({"impair_epochs": 2, "repair_epochs": 1})
    assert [method.is_impair_epoch(e) for e in range(6)] == [True, True, False, True, True, False]
    method._set_epoch(2)
    restored = Unsir({"impair_epochs": 2, "repair_epochs": 1})
    restored.load_state_dict(method.state_dict())
    assert restored.impair is False and restored.epoch_index == 2
    assert [Unsir().is_impair_epoch(e) for e in range(4)] == [True, False, True, False]


def test_unsir_end_to_end(make_trainer, test_split):
    # SGD lr 1e-3 (the reference's) changes no prediction here; lr 3e-2 does. With a single repair epoch the retain
    # accuracy after it was 0.92-0.98 depending on the thread count (float summation order), so: 1 impair + 2 repair
    # epochs (measured: forget 0.97-0.975, retain >= 0.987 with 1 and 2 threads).
    # max_grad_norm=1.0: the regime these numbers were measured in (the default is now the reference's no clipping,
    # under which lr 3e-2 drops retain accuracy to 0.87); the test checks UNSIR's mechanics, not the optimiser.
    trainer = make_trainer(
        "unsir", method_config={"repair_epochs": 2}, num_train_epochs=3, learning_rate=3e-2, max_grad_norm=1.0
    )
    before_weights, before = weights(trainer.model), accuracies(trainer, test_split)
    trainer.train()
    after = accuracies(trainer, test_split)
    assert max_change(before_weights, trainer.model) > 1e-3
    history = trainer.method.noise_history
    # One noise tensor per impair batch (every batch here has forget rows), none in the repair epoch.
    assert len(history) == math.ceil(len(trainer.train_dataset) / trainer.args.per_device_train_batch_size)
    improved = sum(h[-1] > h[0] for h in history)
    assert improved >= 0.8 * len(history), history
    assert_unlearned(before, after, retain_tolerance=0.03)
    assert not trainer.model.training


# ---- timm models ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_methods_run_on_a_timm_model(method, digits, tmp_path):
    timm = pytest.importorskip("timm")
    from hf_unlearn import UnlearningArguments, UnlearningTrainer
    from hf_unlearn.data.splits import ImageSplit

    rows = digits["train"][:160]
    pixels = torch.stack([torch.tensor(np.asarray(im), dtype=torch.float32) for im in rows["image"]])
    pixels = pixels.unsqueeze(1) / 127.5 - 1.0
    labels = torch.as_tensor(rows["label"])
    forget = ImageSplit(pixels[:32], labels[:32], name="forget")
    retain = ImageSplit(pixels[32:], labels[32:], name="retain")
    torch.manual_seed(0)
    model = timm.create_model("test_resnet", pretrained=False, num_classes=10, in_chans=1)
    start = weights(model)
    args = UnlearningArguments.for_method(
        method,
        output_dir=str(tmp_path),
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
        max_steps=2,
        per_device_train_batch_size=32,
        learning_rate=1e-2,
    )
    trainer = UnlearningTrainer(model, args, forget_dataset=forget, retain_dataset=retain)
    trainer.train()
    assert max_change(start, trainer.model) > 0 and not trainer.model.training
    if method == "bad_teacher":  # rebuilt by timm from the architecture name, randomly initialised
        incompetent = trainer.method.incompetent_teacher
        assert type(incompetent) is type(model) and not incompetent.training
        fresh = incompetent.state_dict()
        assert {k: v.shape for k, v in fresh.items()} == {k: v.shape for k, v in start.items()}
        assert not torch.allclose(fresh["fc.weight"], start["fc.weight"])
