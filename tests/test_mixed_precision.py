"""Issue 21: every method trains with ``--bf16 true`` on CPU; the LoTUS NaN at step 3 is gone.

Root cause (hf_unlearn/training/precision.py): torch 2.14's oneDNN bfloat16 convolution backward leaves the weight gradient
of kernel taps that only read padding uninitialised (NaN, 1e30, stale values). The embedded ResNet's later stages
convolve 1x1 maps with 3x3 stride-2 kernels, so those taps are most of the kernel; the garbage gradient reached the
weights and the next loss was NaN. Those convolutions now run in float32. Each method below trains 2 steps in
float32 and in bfloat16 from the same original (the embedded ResNet, where the bug lives; LoTUS also on the embedded
ViT, the CLI's default, which has no such convolution) and must stay finite and land within ``TOLERANCE`` of the
float32 accuracies (measured: at most 0.004 apart; scripts/mixed_precision_check.py
compares every metric after more steps, results/mixed_precision.json).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import QUIET_TRAINING

import hf_unlearn
from hf_unlearn.training.checks import first_nonfinite_tensor
from hf_unlearn.training.precision import guard_cpu_bf16_convolutions, padding_only_taps

TOLERANCE = 0.02  # accuracy (fraction) of the bf16 run minus the float32 run, per split


@pytest.fixture(scope="module")
def embedded(original_path, vit_original_path, digits, forget_split):
    """Both embedded originals with their splits built once (the split cache is per trainer)."""
    from hf_unlearn import load_classifier
    from hf_unlearn.data.splits import to_image_split

    out = {}
    for arch, path in (("resnet", original_path), ("vit", vit_original_path)):
        transform = load_classifier(path).transform
        out[arch] = (
            path,
            {
                n: to_image_split(d, transform, name=n)
                for n, d in (
                    ("forget", forget_split.forget),
                    ("retain", forget_split.retain),
                    ("calibration", digits["validation"]),
                    ("test", digits["test"]),
                )
            },
        )
    return out


def _run(method, path, splits, record, tmp_path, bf16):
    from hf_unlearn import UnlearningArguments, UnlearningTrainer, load_classifier

    args = UnlearningArguments.for_method(
        method,
        output_dir=str(tmp_path / "run"),
        **QUIET_TRAINING,
        bf16=bf16,
        max_steps=2,
        fail_on_nonfinite_loss=True,
    )
    trainer = UnlearningTrainer(
        load_classifier(path).model,
        args,
        forget_dataset=splits["forget"],
        retain_dataset=splits["retain"],
        calibration_dataset=splits["calibration"],
        removal_record=record,
    )
    trainer.train()  # NonFiniteLossError on a NaN/inf loss
    assert first_nonfinite_tensor(trainer.model) is None
    return {n: trainer.accuracy(trainer.model, splits[n]) for n in ("forget", "retain", "test")}


@pytest.mark.parametrize("method", hf_unlearn.list_methods())
def test_every_method_trains_in_bf16_close_to_float32(method, embedded, forget_split, tmp_path, one_thread):
    for arch, (path, splits) in embedded.items():
        if arch == "vit" and method != "lotus":
            continue  # 11 methods x 2 precisions on the ViT take ~30 s: scripts/mixed_precision_check.py runs them
        fp32 = _run(method, path, splits, forget_split.record, tmp_path, bf16=False)
        bf16 = _run(method, path, splits, forget_split.record, tmp_path, bf16=True)
        for split, value in fp32.items():
            assert abs(bf16[split] - value) <= TOLERANCE, (arch, split, bf16[split], value)


def test_padding_only_taps_are_found():
    conv = torch.nn.Conv2d(4, 4, 3, stride=2, padding=1)
    assert padding_only_taps(conv, (1, 1)) and not padding_only_taps(conv, (8, 8))
    assert not padding_only_taps(torch.nn.Conv2d(3, 8, 16, stride=16), (224, 224))  # a ViT patch embedding
    assert padding_only_taps(torch.nn.Conv2d(4, 4, 3, padding="same"), (1, 1))


def test_guarded_bf16_convolution_has_the_float32_weight_gradient():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(32, 64, 3, stride=2, padding=1, bias=False)
    guard_cpu_bf16_convolutions(conv)
    for _ in range(5):  # the unguarded oneDNN result is uninitialised memory: wrong in ~40 % of draws
        x = torch.randn(4, 32, 1, 1)
        conv.weight.grad = None
        with torch.autocast("cpu", dtype=torch.bfloat16):
            conv(x).float().sum().backward()
        guarded = conv.weight.grad.clone()
        conv.weight.grad = None
        F.conv2d(x, conv.weight, stride=2, padding=1).sum().backward()
        assert torch.equal(guarded, conv.weight.grad)
        assert torch.is_autocast_enabled("cpu") is False


def test_guarded_convolution_with_bf16_weights_runs_in_float32():
    """FSDP2's mixed precision casts the weights themselves to bfloat16 (no autocast): the guard covers that too, and
    hands the next layer bfloat16 again; a convolution without padding-only taps is left in bfloat16."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(8, 8, 3, stride=2, padding=1).to(torch.bfloat16)
    assert guard_cpu_bf16_convolutions(conv) == 1 and guard_cpu_bf16_convolutions(conv) == 0  # idempotent
    x = torch.randn(2, 8, 1, 1, dtype=torch.bfloat16)
    out = conv(x)
    expected = F.conv2d(x.float(), conv.weight.float(), conv.bias.float(), stride=2, padding=1)
    assert out.dtype == torch.bfloat16 and torch.equal(out, expected.to(torch.bfloat16))
    out.float().sum().backward()
    assert conv.weight.grad.dtype == torch.bfloat16 and torch.isfinite(conv.weight.grad).all()
    wide = torch.randn(2, 8, 8, 8, dtype=torch.bfloat16)
    assert torch.equal(conv(wide), F.conv2d(wide, conv.weight, conv.bias, stride=2, padding=1))


@pytest.mark.parametrize("source", ["flag", "accelerate config", "none"])
def test_the_guard_is_installed_however_bf16_was_asked_for(source, make_trainer, monkeypatch):
    """--bf16, or mixed_precision: bf16 in an accelerate config (the launcher exports ACCELERATE_MIXED_PRECISION,
    which TrainingArguments reads; fsdp.yaml and `accelerate launch --mixed_precision bf16` do): either way the CPU
    convolutions are guarded. Without bf16 they are left alone."""
    overrides = {}
    if source == "flag":
        overrides["bf16"] = True
    elif source == "accelerate config":
        monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")
    trainer = make_trainer("finetune", **overrides)
    convs = [m for m in trainer.model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(getattr(m, "_hf_unlearn_bf16_guard", False) == (source != "none") for m in convs)
