"""Trust, round 2: any forget-set size of at least 1 runs with every method, however the rows fall into batches.

BatchNorm in training mode refuses a batch of one row once a feature map is 1x1 (the embedded ResNet on 8x8 digits):
12 forget ids with LoTUS' defaults made 385 training rows, 3 x 128 + 1, and the run failed after the original was
evaluated. A one-row forward in training mode now normalises with the running statistics (hf_unlearn.training.norms); no row
is dropped. Every registered method runs on the embedded ResNet with a last training batch of one row, with a forget
set of one row and with a larger one.
"""

from __future__ import annotations

import pytest
import torch
from conftest import QUIET_TRAINING

import hf_unlearn
from hf_unlearn import UnlearningArguments, UnlearningTrainer, load_classifier, select_forget


@pytest.fixture(scope="module")
def small_train(digits):
    return digits["train"].select(range(60))


def _trainer(method, loaded, selection, calibration, batch_size, tmp_path):
    args = UnlearningArguments.for_method(
        method,
        output_dir=str(tmp_path / method),
        **QUIET_TRAINING,
        per_device_train_batch_size=batch_size,
        num_train_epochs=2,
        max_steps=-1,
    )
    return UnlearningTrainer(
        loaded.model,
        args,
        forget_dataset=selection.forget,
        retain_dataset=selection.retain,
        calibration_dataset=calibration,
        image_transform=loaded.transform,
        removal_record=selection.record,
    )


@pytest.mark.parametrize("forget_size", [1, 5])
@pytest.mark.parametrize("method", hf_unlearn.list_methods())
def test_every_method_runs_with_a_last_batch_of_one_row(
    method, forget_size, original_path, digits, small_train, tmp_path, one_thread
):
    selection = select_forget(small_train, indices=list(range(forget_size)), num_labels=10)
    calibration = digits["validation"].select(range(40))
    # the mixture's size depends on the method (retain subsets, retain only): batches of size - 1 leave one row
    rows = len(_trainer(method, load_classifier(original_path), selection, calibration, 8, tmp_path).train_dataset)
    assert rows >= 2
    trainer = _trainer(method, load_classifier(original_path), selection, calibration, rows - 1, tmp_path)
    sizes = []
    compute_loss = trainer.method.compute_loss

    def record(trainer_, model, inputs):
        sizes.append(len(inputs["labels"]))
        return compute_loss(trainer_, model, inputs)

    trainer.method.compute_loss = record
    trainer.train()
    if trainer.method.trains:
        assert sizes and sizes[:2] == [rows - 1, 1], sizes  # every row of the epoch, the last one alone
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())


def test_a_one_row_forward_in_training_mode_uses_the_running_statistics(original_path, digits):
    loaded = load_classifier(original_path)
    model = loaded.model.train()
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert norms
    before = [m.running_mean.clone() for m in norms]
    pixels = torch.stack([loaded.transform({"image": [digits["train"][0]["image"]]})["pixel_values"][0]])
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        hf_unlearn.modeling.classifiers.logits_of(model, pixels)  # what PyTorch does without the rule
    model.load_state_dict(load_classifier(original_path).model.state_dict())  # undo the failed forward's updates
    before = [m.running_mean.clone() for m in norms]
    logits = UnlearningTrainer.logits(model, pixels)
    logits.sum().backward()  # gradients flow as in any training step
    assert logits.shape == (1, 10) and all(m.training for m in norms) and model.training
    assert all(
        torch.equal(m.running_mean, b) for m, b in zip(norms, before, strict=False)
    )  # the one row updates nothing
    two = UnlearningTrainer.logits(model, pixels.repeat(2, 1, 1, 1))  # larger batches: batch statistics as before
    assert two.shape == (2, 10) and not all(
        torch.equal(m.running_mean, b) for m, b in zip(norms, before, strict=False)
    )


def test_the_reported_request_runs_through_the_cli(original_path, digits, tmp_path, capsys):
    """The issue's case: 12 forget ids, LoTUS' settings, the embedded ResNet: 385 rows = 12 x 32 + 1 (preset batch)."""
    from hf_unlearn.cli.main import run_unlearning

    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(digits["train"]["id"][:12]) + "\n")
    code = run_unlearning(
        [
            "--default_arch",
            "resnet",
            "--forget_ids_file",
            str(ids),
            "--num_train_epochs",
            "1",
            "--output_dir",
            str(tmp_path / "out"),
            "--use_cpu",
            "--disable_tqdm",
            "true",
            "--log_level",
            "error",
        ]
    )
    assert code == 0, capsys.readouterr().err[-3000:]
    assert (tmp_path / "out" / "metrics.json").is_file()
