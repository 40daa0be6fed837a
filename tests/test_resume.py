"""Issue 7: a run that crashes and is resumed from a checkpoint ends exactly where an uninterrupted run ends."""

from __future__ import annotations

import json
import os

import pytest
import torch
from transformers import TrainerCallback

import hf_unlearn


class Crash(TrainerCallback):
    """Raises at the end of step ``at`` (before that step's checkpoint is written): an honest crash."""

    def __init__(self, at: int):
        self.at = at

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.at:
            raise RuntimeError(f"simulated crash at step {self.at}")


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _run(make_trainer, method, *, crash_at=None, resume=None, output_dir=None, **kw):
    trainer = make_trainer(method, **kw, **({"output_dir": output_dir} if output_dir else {}))
    if crash_at:
        trainer.add_callback(Crash(crash_at))
        with pytest.raises(RuntimeError, match="simulated crash"):
            trainer.train()
        return trainer
    trainer.train(resume_from_checkpoint=resume)
    return trainer


# LoTUS on the digits default: 120 forget + 341 retain rows, batch 128 -> 4 steps per epoch, 2 epochs = 8 steps.
LOTUS = dict(
    method_config={"alpha": 8.0},
    per_device_train_batch_size=128,
    num_train_epochs=2,
    learning_rate=5e-4,
    save_strategy="steps",
    save_steps=1,
)


@pytest.fixture
def lotus_reference(make_trainer, tmp_path):
    ref = _run(make_trainer, "lotus", output_dir=str(tmp_path / "ref"), **{**LOTUS, "save_strategy": "no"})
    return ref


@pytest.mark.parametrize("checkpoint", [5, 4], ids=["mid-epoch", "epoch-boundary"])
def test_lotus_resume_matches_uninterrupted(make_trainer, tmp_path, lotus_reference, test_split, checkpoint):
    ref = lotus_reference
    out = str(tmp_path / "crashed")
    _run(make_trainer, "lotus", crash_at=6, output_dir=out, **LOTUS)
    assert not os.path.exists(os.path.join(out, "checkpoint-6"))
    resumed = _run(
        make_trainer, "lotus", resume=os.path.join(out, f"checkpoint-{checkpoint}"), output_dir=out, **LOTUS
    )
    assert resumed.state.global_step == ref.state.global_step
    # every epoch's temperature and stop decision, including the one taken at the boundary before the crash
    assert resumed.method.history == ref.method.history
    a, b = _state(ref.model), _state(resumed.model)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert ref.accuracy(ref.model, test_split) == resumed.accuracy(resumed.model, test_split)


def test_epoch_state_method_resume(make_trainer, tmp_path, test_split):
    method = "scrub" if "scrub" in hf_unlearn.list_methods() else "del" if "del" in hf_unlearn.list_methods() else None
    if method is None:
        pytest.skip("no method with epoch-level state (scrub/del) is registered yet")
    cfg = dict(per_device_train_batch_size=256, num_train_epochs=3, save_strategy="steps", save_steps=1)
    ref = _run(make_trainer, method, output_dir=str(tmp_path / "ref"), **{**cfg, "save_strategy": "no"})
    steps_per_epoch = ref.state.global_step // 3
    out = str(tmp_path / "crashed")
    crash = steps_per_epoch + 2  # in the second epoch
    _run(make_trainer, method, crash_at=crash, output_dir=out, **cfg)
    resumed = _run(make_trainer, method, resume=os.path.join(out, f"checkpoint-{crash - 1}"), output_dir=out, **cfg)
    assert resumed.method.state_dict() == ref.method.state_dict()
    a, b = _state(ref.model), _state(resumed.model)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_cli_resume_same_metrics(original_path, tmp_path, monkeypatch):
    """Through scripts/unlearn.py's logic: crash, --resume_from_checkpoint into the same output_dir."""
    from hf_unlearn.cli.main import run_unlearning
    from hf_unlearn.training.trainer import UnlearningTrainer

    base = [
        "--default_arch",
        "resnet",
        "--use_cpu",
        "--disable_tqdm",
        "true",
        "--seed",
        "0",
        "--max_steps",
        "6",
        "--per_device_train_batch_size",
        "128",
        "--save_strategy",
        "steps",
        "--save_steps",
        "2",
    ]
    ref, out = tmp_path / "ref", tmp_path / "out"
    assert run_unlearning(base + ["--output_dir", str(ref)]) == 0

    real_init = UnlearningTrainer.__init__

    def init_with_crash(self, *a, **k):
        real_init(self, *a, **k)
        self.add_callback(Crash(5))

    monkeypatch.setattr(UnlearningTrainer, "__init__", init_with_crash)
    monkeypatch.setenv("HF_UNLEARN_DEBUG", "1")  # re-raise instead of the one-line error (tests/test_trust_fs.py)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_unlearning(base + ["--output_dir", str(out)])
    monkeypatch.setattr(UnlearningTrainer, "__init__", real_init)
    assert not (out / "metrics.json").exists() and not (out / "model.safetensors").exists()
    assert (
        run_unlearning(base + ["--output_dir", str(out), "--resume_from_checkpoint", str(out / "checkpoint-4")]) == 0
    )

    m_ref, m_out = (json.loads((d / "metrics.json").read_text()) for d in (ref, out))
    for m in (m_ref, m_out):
        m["unlearned"].pop("runtime_s", None)
        m["original"].pop("runtime_s", None)
    assert m_ref == m_out
    from safetensors.torch import load_file

    a, b = load_file(str(ref / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
