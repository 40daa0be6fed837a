"""The README's Python quick start, run as written on data and a model made here (digits, image column "img")."""

from __future__ import annotations

import json
import os

import datasets
import pytest

#: What ``hf-unlearn unlearn`` leaves in its output directory (tests/test_cli.py runs it); the Python flow ends alike.
CLI_OUTPUT_FILES = {
    "README.md",
    "config.json",
    "ledger.json",
    "metrics.json",
    "model.safetensors",
    "preprocessor_config.json",
    "removal_record.json",
    "removed_ids.json",
    "unlearning_config.json",
}


def test_readme_quick_start_runs(original_path, digits, tmp_path):
    from hf_unlearn import UnlearningArguments, UnlearningTrainer, load_classifier, select_forget

    data = datasets.DatasetDict(
        {
            "train": digits["train"].rename_column("image", "img"),
            "test": datasets.concatenate_datasets([digits["validation"], digits["test"]]).rename_column(
                "image", "img"
            ),
        }
    )
    held_out = data["test"].train_test_split(test_size=0.5, stratify_by_column="label", seed=0)
    loaded = load_classifier(original_path, image_column="img")
    split = select_forget(
        data["train"], fraction_per_class=0.1, seed=0, id_column=None, num_labels=loaded.model.config.num_labels
    )
    args = UnlearningArguments.for_method(
        "lotus", output_dir=str(tmp_path / "lotus"), num_train_epochs=2, use_cpu=True
    )
    trainer = UnlearningTrainer(
        loaded.model,
        args,
        forget_dataset=split.forget,
        retain_dataset=split.retain,
        calibration_dataset=held_out["train"],
        image_transform=loaded.transform,
        method_config={"alpha": 8.0},
        removal_record=split.record,
        processing_class=loaded.processor,
    )
    trainer.train()
    metrics = trainer.evaluate_unlearning(held_out["test"])
    trainer.save_unlearned(str(tmp_path / "lotus" / "final"), split)
    assert {"acc_forget", "acc_retain", "acc_test", "acc_val", "mia", "rf_jsd"} <= metrics["unlearned"].keys()
    final = tmp_path / "lotus" / "final"
    assert set(os.listdir(final)) == CLI_OUTPUT_FILES
    # no intermediate checkpoint (weights + optimizer state) is left beside it
    assert os.listdir(tmp_path / "lotus") == ["final"]
    card = (final / "README.md").read_text()
    assert split.record.commitment["value"] in card and "lotus" in card.lower()
    saved = json.loads((final / "metrics.json").read_text())
    assert saved["unlearned"]["acc_forget"] == pytest.approx(metrics["unlearned"]["acc_forget"])
    ledger = json.loads((final / "ledger.json").read_text())
    assert len(ledger["requests"]) == 1 and ledger["requests"][0]["num_removed"] == split.record.num_removed


def test_save_unlearned_refuses_a_missing_selection_or_metrics_before_writing(make_trainer, forget_split, tmp_path):
    trainer = make_trainer("finetune", max_steps=1)
    with pytest.raises(ValueError, match="evaluate_unlearning"):
        trainer.save_unlearned(str(tmp_path / "out"), forget_split)
    with pytest.raises(ValueError, match="select_forget"):
        trainer.save_unlearned(str(tmp_path / "out"), forget_split.record, metrics={"unlearned": {}})
    assert not (tmp_path / "out").exists()


def test_for_method_saves_no_checkpoints_unless_asked(tmp_path):
    from hf_unlearn import UnlearningArguments

    assert UnlearningArguments.for_method("lotus", output_dir=str(tmp_path)).save_strategy == "no"
    asked = UnlearningArguments.for_method("lotus", output_dir=str(tmp_path), save_strategy="epoch")
    assert asked.save_strategy == "epoch"
