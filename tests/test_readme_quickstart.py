"""The README's Python quick start, run as written on data and a model made here (digits, image column "img")."""

from __future__ import annotations

import os

import datasets


def test_readme_quick_start_runs(original_path, digits, tmp_path):
    from hf_unlearn import UnlearningArguments, UnlearningTrainer, load_classifier, save_classifier, select_forget

    data = datasets.DatasetDict({
        "train": digits["train"].rename_column("image", "img"),
        "test": datasets.concatenate_datasets([digits["validation"], digits["test"]]).rename_column("image", "img"),
    })
    held_out = data["test"].train_test_split(test_size=0.5, stratify_by_column="label", seed=0)
    loaded = load_classifier(original_path, image_column="img")
    split = select_forget(data["train"], fraction_per_class=0.1, seed=0, id_column=None,
                          num_labels=loaded.model.config.num_labels)
    args = UnlearningArguments.for_method("lotus", output_dir=str(tmp_path), num_train_epochs=2, report_to="none",
                                          use_cpu=True)
    trainer = UnlearningTrainer(loaded.model, args, forget_dataset=split.forget, retain_dataset=split.retain,
                                calibration_dataset=held_out["train"], image_transform=loaded.transform,
                                method_config={"alpha": 8.0}, removal_record=split.record,
                                processing_class=loaded.processor)
    trainer.train()
    metrics = trainer.evaluate_unlearning(held_out["test"])
    save_classifier(trainer.model, str(tmp_path / "final"), loaded.processor)
    assert {"acc_forget", "acc_retain", "acc_test", "acc_val", "mia", "rf_jsd"} <= metrics["unlearned"].keys()
    assert {"config.json", "model.safetensors", "preprocessor_config.json"} <= set(os.listdir(tmp_path / "final"))
