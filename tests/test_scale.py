"""Issue 13 (scale): streaming evaluation equals the logits pipeline, one materialisation budget, selection that
never decodes an image, progress bars that respect disable_tqdm, CPU threads under accelerate launch.

Speed and memory at 1.28M rows are measured by scripts/benchmark_scale.py, not here.
"""

from __future__ import annotations

import os

import datasets
import pytest
import torch
from conftest import random_predictions

from hf_unlearn import select_forget
from hf_unlearn.cli.threads import launcher_cpu_threads
from hf_unlearn.evaluation.metrics import ModelPredictions, predict_splits, unlearning_metrics
from hf_unlearn.evaluation.streaming import CLASS_SUM_SPLITS, SplitStats, StreamingPredictions

SPLITS = ("forget", "retain", "test", "validation")


def _random_predictions(seed: int, sizes: dict[str, int]):
    return random_predictions(seed, sizes, classes=7, scale=4)


def _streamed(p: ModelPredictions, batch: int) -> StreamingPredictions:
    out = StreamingPredictions()
    for split in p.logits:
        stats = SplitStats(
            p.logits[split].shape[1], class_sums=split in ("forget", "test"), keep_logits=split == "forget"
        )
        for start in range(0, len(p.labels[split]), batch):
            stats.update(p.logits[split][start : start + batch], p.labels[split][start : start + batch])
        out.stats[split] = stats.finish()
    return out


@pytest.mark.parametrize("variant", ["standard", "reference"])
@pytest.mark.parametrize("batch", [1, 13, 1000])
def test_streaming_equals_logits_pipeline_on_synthetic_logits(variant, batch):
    sizes = {"forget": 60, "retain": 400, "test": 150, "validation": 90}
    model, original, gold = (_random_predictions(s, sizes) for s in (0, 1, 2))
    expected = unlearning_metrics(model, original, gold, variant=variant)
    got = unlearning_metrics(
        _streamed(model, batch), _streamed(original, batch), _streamed(gold, batch), variant=variant
    )
    assert (
        got.keys()
        == expected.keys()
        == {"acc_forget", "acc_retain", "acc_test", "acc_val", "mia", "mia_auc", "mia_heldout", "rf_jsd", "jsd"}
    )
    for key in expected:
        assert got[key] == pytest.approx(expected[key], abs=1e-6), key


def test_streaming_without_test_split_uses_validation_for_mia_like_the_module():
    sizes = {"forget": 40, "retain": 200, "validation": 80}
    model, original = _random_predictions(3, sizes), _random_predictions(4, sizes)
    expected = unlearning_metrics(model, original)
    got = unlearning_metrics(_streamed(model, 17), _streamed(original, 17))
    assert "rf_jsd" not in got and got.keys() == expected.keys()
    for key in expected:
        assert got[key] == pytest.approx(expected[key], abs=1e-6), key


def test_streaming_rejects_non_finite_logits_and_missing_forget_logits_for_jsd():
    stats = SplitStats(3)
    with pytest.raises(ValueError, match="NaN or inf"):
        stats.update(torch.tensor([[0.0, float("nan"), 1.0]]), torch.tensor([0]))
    sizes = {"forget": 20, "retain": 50, "test": 30}
    model, original = _random_predictions(5, sizes), _random_predictions(6, sizes)
    streamed = _streamed(model, 8)
    streamed.stats["forget"].logits = None
    with pytest.raises(ValueError, match="keep_forget_logits=True"):
        unlearning_metrics(streamed, _streamed(original, 8), _streamed(original, 8))


def test_trainer_predictions_stream_and_equal_the_logits_pipeline_on_digits(make_trainer, digits):
    trainer = make_trainer("lotus", max_steps=2)
    trainer.train()
    streamed = {
        m: trainer.predictions(model, digits["test"], keep_forget_logits=False)
        for m, model in (("unlearned", trainer.model), ("original", trainer.teacher))
    }
    for p in streamed.values():  # a few floats per row, no logits
        assert isinstance(p, StreamingPredictions) and set(p.stats) == set(SPLITS)
        for name, stats in p.stats.items():
            assert stats.logits is None and stats.features["entropy"].shape == (stats.rows,)
            assert (stats.class_sums is not None) == (name in CLASS_SUM_SPLITS)  # forget, test, validation
    splits = {
        "forget": trainer.forget_split,
        "retain": trainer.retain_split,
        "test": trainer.as_split(digits["test"], "test"),
        "validation": trainer.calibration_split,
    }
    full = {
        m: predict_splits(lambda s, model=model: trainer.predict_logits(model, s), splits)
        for m, model in (("unlearned", trainer.model), ("original", trainer.teacher))
    }
    for variant in ("standard", "reference"):
        expected = unlearning_metrics(full["unlearned"], full["original"], variant=variant)
        got = unlearning_metrics(streamed["unlearned"], streamed["original"], variant=variant)
        assert got.keys() == expected.keys()
        for key in expected:
            assert got[key] == pytest.approx(expected[key], abs=1e-6), (variant, key)
    # evaluate_unlearning goes through the streaming path and reports the same numbers
    results = trainer.evaluate_unlearning(digits["test"], log=False)
    expected = unlearning_metrics(full["unlearned"], full["original"])
    for key in expected:
        assert results["unlearned"][key] == pytest.approx(expected[key], abs=1e-6), key


def test_one_budget_makes_later_splits_lazy_and_results_unchanged(make_trainer, digits):
    roomy = make_trainer("finetune", max_steps=1)
    forget_mb = roomy.forget_split.pixel_values.numel() * 4 / 1024**2
    # room for the forget split only: retain and calibration (and test, later) must stay lazy
    tight = make_trainer("finetune", max_steps=1, materialize_budget_mb=forget_mb * 1.5)
    assert tight.forget_split.materialized
    assert not tight.retain_split.materialized and not tight.calibration_split.materialized
    budget = tight.materialization_budget
    assert budget.used_bytes <= budget.total_bytes
    assert [n for n, d in budget.decisions.items() if d["materialized"]] == ["forget"]
    tight.as_split(digits["test"], "test")
    assert budget.decisions["test"]["materialized"] is False
    summary = budget.summary()
    assert "materialised: forget" in summary and "retain" in summary.split("lazy:")[1]
    # a roomy budget materialises everything; the numbers do not depend on where the pixels live
    assert all(d["materialized"] for d in roomy.materialization_budget.decisions.values())
    a = roomy.evaluate_unlearning(digits["test"], original=roomy.predictions(roomy.model, digits["test"]), log=False)
    b = tight.evaluate_unlearning(digits["test"], original=tight.predictions(tight.model, digits["test"]), log=False)
    for key, value in a["unlearned"].items():
        assert b["unlearned"][key] == pytest.approx(value, abs=1e-6), key


def test_zero_budget_keeps_every_split_lazy_and_negative_is_refused(make_trainer):
    from hf_unlearn import UnlearningArguments

    trainer = make_trainer("finetune", max_steps=1, materialize_budget_mb=0)
    assert not any(s.materialized for s in (trainer.forget_split, trainer.retain_split, trainer.calibration_split))
    with pytest.raises(ValueError, match="materialize_budget_mb must be >= 0"):
        UnlearningArguments(output_dir="unused", materialize_budget_mb=-1, use_cpu=True, report_to="none")


def test_cli_rejects_a_negative_budget_in_one_line(tmp_path, capsys):
    from hf_unlearn.cli.main import run_unlearning

    code = run_unlearning(["--materialize_budget_mb", "-5", "--output_dir", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error:") and "materialize_budget_mb" in err[0]
    assert not (tmp_path / "out").exists()


def _undecodable_dataset(rows: int, classes: int, path) -> datasets.Dataset:
    """An id, a label and an image column whose bytes are not an image: decoding any of them raises."""
    ds = datasets.Dataset.from_dict(
        {
            "id": [f"img-{i:06d}" for i in range(rows)],
            "label": [(i * 7) % classes for i in range(rows)],
            "image": [{"bytes": b"not an image", "path": None}] * rows,
        },
        features=datasets.Features(
            {
                "id": datasets.Value("string"),
                "label": datasets.ClassLabel(num_classes=classes),
                "image": datasets.Image(),
            }
        ),
    )
    ds.save_to_disk(str(path))
    return datasets.load_from_disk(str(path))


def _old_fraction_selection(labels, fraction, mode, seed):
    """The former per-row loop, kept here to show the selection did not change."""
    import random

    by_class: dict[int, list[int]] = {}
    for i, y in enumerate(labels):
        by_class.setdefault(y, []).append(i)
    rng, selected = random.Random(seed), set()
    for y in sorted(by_class):
        rows = by_class[y]
        k = int(fraction * len(rows))
        selected.update(rows[:k] if mode == "first" else rng.sample(rows, k))
    return sorted(selected)


@pytest.mark.parametrize("rule", ["fraction_random", "fraction_first", "classes", "class_names", "ids", "indices"])
def test_selection_reads_no_image_writes_nothing_and_is_unchanged(tmp_path, rule):
    ds = _undecodable_dataset(20_000, 50, tmp_path / "data")
    with pytest.raises(Exception):  # noqa: B017  (PIL and datasets raise several types)
        ds[0]["image"]  # the image column really cannot be decoded
    before = sorted(os.listdir(tmp_path / "data"))
    labels = [(i * 7) % 50 for i in range(20_000)]
    kwargs, expected = {
        "fraction_random": ({"fraction_per_class": 0.1, "seed": 3}, _old_fraction_selection(labels, 0.1, "random", 3)),
        "fraction_first": (
            {"fraction_per_class": 0.25, "mode": "first"},
            _old_fraction_selection(labels, 0.25, "first", 0),
        ),
        "classes": ({"classes": [3, 17]}, [i for i, y in enumerate(labels) if y in (3, 17)]),
        "class_names": ({"classes": ["3"]}, [i for i, y in enumerate(labels) if y == 3]),
        "ids": ({"ids": [f"img-{i:06d}" for i in (19_999, 5, 77, 5)]}, [5, 77, 19_999]),
        "indices": ({"indices": [10, 2, 2, 19_000]}, [2, 10, 19_000]),
    }[rule]
    split = select_forget(ds, num_labels=50, **kwargs)
    ids = split.forget.with_format("arrow", columns=["id"])["id"].to_pylist()
    assert ids == [f"img-{i:06d}" for i in expected]
    assert split.removed_ids == ids
    assert len(split.forget) + len(split.retain) == 20_000
    assert set(ids).isdisjoint(split.retain.with_format("arrow", columns=["id"])["id"].to_pylist())
    assert split.record.num_removed == len(expected)
    assert sum(split.record.per_class_counts.values()) == len(expected)
    assert sorted(os.listdir(tmp_path / "data")) == before  # nothing written next to the user's data


def test_selection_by_ids_reports_missing_ids(tmp_path):
    ds = _undecodable_dataset(1000, 10, tmp_path / "data")
    with pytest.raises(ValueError, match="2 of the 3 ids to forget are not in column 'id'"):
        select_forget(ds, ids=["img-000001", "nope", "img-999999"])


def test_progress_bars_respect_disable_tqdm(make_trainer, digits, capfd):
    quiet = make_trainer("finetune", max_steps=1)  # the fixture sets disable_tqdm=True
    capfd.readouterr()
    quiet.predictions(quiet.model, digits["test"])
    assert "evaluating" not in capfd.readouterr().err
    loud = make_trainer("finetune", max_steps=1, disable_tqdm=False)
    err = capfd.readouterr().err
    assert "preprocessing retain" in err
    loud.predictions(loud.model, digits["test"])
    err = capfd.readouterr().err
    assert "evaluating retain" in err and "evaluating test" in err


@pytest.mark.parametrize(
    "env, on_cpu, cores, expected",
    [
        ({"ACCELERATE_DYNAMO_BACKEND": "NO", "OMP_NUM_THREADS": "1"}, True, 8, 8),
        ({"ACCELERATE_DYNAMO_BACKEND": "NO", "OMP_NUM_THREADS": "1", "LOCAL_WORLD_SIZE": "2"}, True, 8, 4),
        ({"ACCELERATE_DYNAMO_BACKEND": "NO", "OMP_NUM_THREADS": "1", "LOCAL_WORLD_SIZE": "4"}, True, 2, 1),
        ({"ACCELERATE_DYNAMO_BACKEND": "NO", "OMP_NUM_THREADS": "3"}, True, 8, None),  # the user chose
        ({"OMP_NUM_THREADS": "1"}, True, 8, None),  # not under accelerate launch
        ({"ACCELERATE_DYNAMO_BACKEND": "NO", "OMP_NUM_THREADS": "1"}, False, 8, None),  # GPU
        ({"ACCELERATE_DYNAMO_BACKEND": "NO", "OMP_NUM_THREADS": "1", "HF_UNLEARN_NUM_THREADS": "1"}, True, 8, 1),
    ],
)
def test_cpu_threads_under_accelerate_launch(env, on_cpu, cores, expected):
    assert launcher_cpu_threads(env, on_cpu, cores) == expected


def test_cpu_threads_override_must_be_positive():
    with pytest.raises(ValueError, match="HF_UNLEARN_NUM_THREADS must be a positive integer"):
        launcher_cpu_threads({"HF_UNLEARN_NUM_THREADS": "0"}, True, 4)


def test_selection_fingerprints_are_deterministic_and_name_the_selection(tmp_path):
    ds = _undecodable_dataset(2000, 10, tmp_path / "data")
    a, b = select_forget(ds, fraction_per_class=0.1, seed=0), select_forget(ds, fraction_per_class=0.1, seed=0)
    c = select_forget(ds, fraction_per_class=0.1, seed=1)
    assert (a.record.forget_fingerprint, a.record.retain_fingerprint) == (
        b.record.forget_fingerprint,
        b.record.retain_fingerprint,
    )
    assert a.record.forget_fingerprint != c.record.forget_fingerprint != a.record.retain_fingerprint
    assert a.forget._fingerprint == a.record.forget_fingerprint
