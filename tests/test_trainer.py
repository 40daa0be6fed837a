"""UnlearningTrainer: registry, Trainer features (gradient accumulation, resume), NegGrad+, and the main job."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import pytest
import torch
import torch.nn.functional as F

import hf_unlearn
from hf_unlearn import UnlearningMethod, list_methods, register_method


def weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_weights(a: dict, b: dict, atol: float = 0.0):
    assert a.keys() == b.keys()
    for k in a:
        if atol == 0.0:
            assert torch.equal(a[k], b[k]), k
        else:
            torch.testing.assert_close(a[k], b[k], atol=atol, rtol=0, msg=k)


def test_registry_lists_builtin_methods_and_accepts_third_party_ones(make_trainer):
    assert {"lotus", "finetune", "neggrad_plus", "random_label"} <= set(list_methods())

    @dataclass
    class ShrinkConfig:
        factor: float = field(default=0.5, metadata={"help": "multiply every weight by this"})

    @register_method("test_shrink")
    class Shrink(UnlearningMethod):
        config_class = ShrinkConfig
        trains = False

        def prepare(self, trainer):
            with torch.no_grad():
                for p in trainer.model.parameters():
                    p.mul_(self.config.factor)

    try:
        assert "test_shrink" in list_methods()
        trainer = make_trainer("test_shrink", method_config={"factor": 0.0})
        trainer.train()
        assert all(torch.all(p == 0) for p in trainer.model.parameters())
        assert trainer.state.global_step == 0
        with pytest.raises(ValueError, match="already registered"):
            register_method("test_shrink")(type("Other", (UnlearningMethod,), {}))
    finally:
        from hf_unlearn.methods import base

        base._REGISTRY.pop("test_shrink", None)


def test_unknown_method_lists_the_valid_ones(make_trainer):
    with pytest.raises(ValueError, match="registered methods are: .*lotus"):
        make_trainer("no_such_method")


def test_for_method_applies_the_method_defaults_and_user_overrides(tmp_path):
    args = hf_unlearn.UnlearningArguments.for_method("finetune", output_dir=str(tmp_path), learning_rate=0.5)
    assert args.optim == "sgd" and args.optim_args == "momentum=0.9" and args.learning_rate == 0.5
    lotus = hf_unlearn.UnlearningArguments.for_method("lotus", output_dir=str(tmp_path))
    assert lotus.optim == "adamw_torch" and lotus.learning_rate == 1e-4 and lotus.lr_scheduler_type == "constant"


def forget_loss(trainer) -> float:
    logits = trainer.predict_logits(trainer.model, trainer.forget_split)
    return F.cross_entropy(logits, trainer.forget_split.labels).item()


def test_neggrad_plus_raises_the_forget_loss(make_trainer):
    # The memorised original has a saturated softmax (forget CE ~7e-4), so the reference's lr 1e-3 moves it
    # very little in a short run; lr 0.05 makes the direction of the update visible within 2 epochs.
    settings = dict(num_train_epochs=2, learning_rate=0.05)
    neggrad = make_trainer("neggrad_plus", **settings)
    before = forget_loss(neggrad)
    neggrad.train()
    finetune = make_trainer("finetune", **settings)
    finetune.train()
    # Ascent on the forget rows: the forget loss rises, unlike with descent only (the reference's NegGrad+ sign
    # flip is a no-op, SPEC §3.2, which makes it behave like finetuning here).
    assert forget_loss(neggrad) > 2 * before
    assert forget_loss(neggrad) > 2 * forget_loss(finetune)
    assert neggrad.accuracy(neggrad.model, neggrad.retain_split) > 0.9


def test_neggrad_plus_is_refused_without_ascent(make_trainer):
    with pytest.raises(ValueError, match="forget_weight"):
        make_trainer("neggrad_plus", method_config={"forget_weight": 0.0})


@pytest.fixture(scope="module")
def vit_path(tmp_path_factory):
    """An untrained small ViT (no BatchNorm, no dropout): batch composition cannot change its forward pass."""
    from hf_unlearn.data.builtin import build_image_classifier
    from hf_unlearn.modeling.classifiers import save_classifier

    model, processor = build_image_classifier("vit", 10, image_size=8, seed=0)
    path = tmp_path_factory.mktemp("vit")
    save_classifier(model, str(path), processor)
    return str(path)


def _vit_trainer(vit_path, digits, forget_split, tmp_path, method, method_config=None, **overrides):
    from hf_unlearn import UnlearningArguments, UnlearningTrainer, load_classifier

    loaded = load_classifier(vit_path)
    settings = dict(
        output_dir=str(tmp_path),
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
        max_grad_norm=0.0,
    )
    settings.update(overrides)
    return UnlearningTrainer(
        loaded.model,
        UnlearningArguments.for_method(method, **settings),
        forget_dataset=forget_split.forget,
        retain_dataset=forget_split.retain,
        calibration_dataset=digits["validation"],
        method_config=method_config,
        image_transform=loaded.transform,
    )


@pytest.mark.parametrize("method, config", [("finetune", None), ("lotus", {"target_sampling": "softmax"})])
def test_gradient_accumulation_2x8_equals_batch_16(vit_path, digits, forget_split, tmp_path, method, config):
    runs = []
    for batch, accumulation in ((16, 1), (8, 2)):
        trainer = _vit_trainer(
            vit_path,
            digits,
            forget_split,
            tmp_path / f"{batch}",
            method,
            config,
            per_device_train_batch_size=batch,
            gradient_accumulation_steps=accumulation,
            max_steps=1,
            optim="sgd",
            optim_args="momentum=0.0",
            learning_rate=0.5,
            weight_decay=0.0,
        )
        before = weights(trainer.model)
        trainer.train()
        runs.append((before, weights(trainer.model)))
    (start16, end16), (start8, end8) = runs
    assert_same_weights(start16, start8)
    assert any(not torch.equal(start16[k], end16[k]) for k in start16)  # the step did something
    # Same 16 rows, same update: the Trainer divides each micro-batch mean by the accumulation steps.
    assert_same_weights(end16, end8, atol=1e-6)


@pytest.mark.parametrize("resume_step", [6, 8])  # 4 steps per epoch: 6 is mid-epoch, 8 an epoch boundary
def test_resume_from_mid_run_checkpoint_reaches_the_same_weights(make_trainer, tmp_path, resume_step):
    full = make_trainer(
        "lotus", num_train_epochs=3, save_strategy="steps", save_steps=2, output_dir=str(tmp_path / "full")
    )
    full.train()
    checkpoint = tmp_path / "full" / f"checkpoint-{resume_step}"
    assert (checkpoint / "unlearning_method_state.pt").is_file() and (checkpoint / "README.md").is_file()

    resumed = make_trainer(
        "lotus", num_train_epochs=3, save_strategy="steps", save_steps=2, output_dir=str(tmp_path / "resumed")
    )
    resumed.train(resume_from_checkpoint=str(checkpoint))
    assert_same_weights(weights(full.model), weights(resumed.model), atol=1e-6)
    assert [h["tau"] for h in resumed.method.history] == pytest.approx([h["tau"] for h in full.method.history])


def test_resume_with_another_method_is_refused(make_trainer, tmp_path):
    first = make_trainer("finetune", max_steps=2, save_strategy="steps", save_steps=2, output_dir=str(tmp_path / "a"))
    first.train()
    other = make_trainer("random_label", max_steps=4, output_dir=str(tmp_path / "b"))
    with pytest.raises(ValueError, match="belongs to method 'finetune'"):
        other.train(resume_from_checkpoint=str(tmp_path / "a" / "checkpoint-2"))


def test_nan_loss_stops_with_step_and_method(make_trainer):
    trainer = make_trainer("finetune", learning_rate=1e30, max_steps=20)
    with pytest.raises(hf_unlearn.NonFiniteLossError, match=r"finetune loss is .* at step \d+"):
        trainer.train()


def test_main_job_on_the_embedded_default(original_path, tmp_path, capsys):
    from hf_unlearn.cli.main import run_unlearning

    out = tmp_path / "out"
    code = run_unlearning(
        [
            "--default_arch",
            "resnet",
            "--output_dir",
            str(out),
            "--num_train_epochs",
            "2",
            "--disable_tqdm",
            "true",
            "--use_cpu",
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "acc_forget" in printed and "unlearned" in printed  # the before/after table
    files = set(os.listdir(out))
    assert {
        "config.json",
        "model.safetensors",
        "preprocessor_config.json",
        "metrics.json",
        "removal_record.json",
        "removed_ids.json",
        "unlearning_config.json",
        "README.md",
    } <= files
    assert ".incomplete" not in files
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("original", "unlearned"):
        assert {"acc_forget", "acc_retain", "acc_test", "mia", "rf_jsd"} <= metrics[key].keys()
        assert all(0.0 <= metrics[key][k] <= 1.0 for k in ("acc_forget", "acc_retain", "acc_test"))
    assert metrics["unlearned"]["runtime_s"] > 0
    record = json.loads((out / "removal_record.json").read_text())
    assert record["num_removed"] == 120 and record["selection"]["rule"] == "fraction_per_class"
    # the same model directory loads back through the library's loading path
    reloaded = hf_unlearn.load_classifier(str(out))
    assert reloaded.model.config.num_labels == 10

    # a second run into the same non-empty directory is refused, before any work
    code = run_unlearning(["--default_arch", "resnet", "--output_dir", str(out)])
    assert code == 2 and "--overwrite_output_dir" in capsys.readouterr().err
