"""``hf-unlearn benchmark --model M --dataset D``: the benchmark on a user's own model and data (offline, tiny).

The model is a tiny ResNet the test trains and saves itself; the data is a subset of scikit-learn's digits, as a
``save_to_disk`` directory (train / validation / test, with an id column) and as an image folder (PNG files in
class subfolders, train/ and test/ only: the test split is cut 50/50 into validation and test).
"""

import json
import os

import pytest

FLAGS = ["--seeds", "0", "--recipe_epochs", "1", "--method_epochs", "1", "--no_progress_bar"]


@pytest.fixture(scope="module")
def small_digits():
    from hf_unlearn.data.builtin import load_digits_dataset

    data = load_digits_dataset()
    return {
        "train": data["train"].select(range(300)),
        "validation": data["validation"].select(range(80)),
        "test": data["test"].select(range(80)),
    }


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, small_digits):
    from hf_unlearn.data.builtin import build_image_classifier, train_classifier
    from hf_unlearn.data.splits import to_image_split
    from hf_unlearn.modeling.classifiers import save_classifier

    names = small_digits["train"].features["label"].names
    model, processor = build_image_classifier("resnet", len(names), 8, label_names=names, seed=0)
    transform = lambda b: {
        "pixel_values": processor(images=b["image"], return_tensors="pt")["pixel_values"],  # noqa: E731
        "label": b["label"],
    }
    train_classifier(model, to_image_split(small_digits["train"], transform), epochs=2, seed=0)
    path = tmp_path_factory.mktemp("user") / "my-model"
    save_classifier(model, str(path), processor)
    return str(path)


@pytest.fixture(scope="module")
def saved_dir(tmp_path_factory, small_digits):
    import datasets

    path = tmp_path_factory.mktemp("user") / "my-data"
    datasets.DatasetDict(small_digits).save_to_disk(str(path))
    return str(path)


@pytest.fixture(scope="module")
def folder_dir(tmp_path_factory, small_digits):
    root = tmp_path_factory.mktemp("user") / "my-folder"
    for split in ("train", "test"):
        for row in small_digits[split]:
            d = root / split / str(row["label"])
            d.mkdir(parents=True, exist_ok=True)
            row["image"].save(d / f"{row['id']}.png")
    return str(root)


def _bench(*argv):
    from hf_unlearn.cli.commands import main

    return main(["benchmark", *argv])


def _args(*argv):
    from hf_unlearn.benchmark.command import _parser
    from hf_unlearn.benchmark.protocol import PAPER_SEEDS

    a = _parser("test").parse_args(list(argv))
    a.seeds = a.seeds or list(PAPER_SEEDS)
    return a


@pytest.mark.parametrize("data", ["saved", "folder"])
def test_user_model_and_data_write_json_markdown_png(
    cache_root, tmp_path, model_dir, saved_dir, folder_dir, data, small_digits, capsys
):
    dataset = saved_dir if data == "saved" else folder_dir
    rc = _bench(
        "--model",
        model_dir,
        "--dataset",
        dataset,
        "--forget_fraction",
        "0.1",
        "--methods",
        "finetune",
        "ssd",
        "--name",
        "mine",
        "--results_dir",
        str(tmp_path),
        *FLAGS,
    )
    assert rc == 0, capsys.readouterr().err
    out = json.loads((tmp_path / "mine.json").read_text())
    assert not out["failures"], out["failures"]
    assert {(r["method"], r["family"], r["seed"]) for r in out["runs"]} == {
        ("finetune", "model", 0),
        ("ssd", "model", 0),
    }
    for r in out["runs"]:
        assert {"cost", "unlearned"} <= r.keys()
        assert {"avg_gap", "avg_gap_estimate"} <= r["unlearned"].keys()
        assert r["cost"]["examples"] > 0
    assert out["config"]["recipe"]["epochs"] == 1 and out["config"]["model"]["sha256"]
    from collections import Counter

    per_class = Counter(small_digits["train"]["label"]).values()
    assert out["config"]["forget"]["num_removed"] == sum(int(0.1 * n) for n in per_class)
    assert "Original" in out["description"] and "Gold" in out["description"] and "1 epoch," in out["description"]
    assert "learning rate 0.003" in out["description"] and "(digits, resnet)" in out["description"]
    if data == "folder":
        assert "cut 50/50" in out["description"]
    assert set(out["models"]["model/0"]) == {"original", "gold"}
    assert out["models"]["model/0"]["gold"]["train_rows"] == 300 - out["config"]["forget"]["num_removed"]
    md = (tmp_path / "mine.md").read_text()
    assert "**Original**" in md and "## model" in md and "| finetune |" in md
    assert (tmp_path / "mine.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_forget_ids_file_and_classes_select_what_they_say(cache_root, tmp_path, model_dir, saved_dir, small_digits):
    from hf_unlearn.benchmark.user import prepare_user_grid

    ids = small_digits["train"]["id"][:7]
    (tmp_path / "ids.txt").write_text("\n".join(ids) + "\n")
    grid, config, name, class_mode = prepare_user_grid(
        _args("--model", model_dir, "--dataset", saved_dir, "--forget_ids_file", str(tmp_path / "ids.txt"), *FLAGS),
        lambda m: None,
    )
    assert grid.selection.record.num_removed == 7 and config["forget"]["num_removed"] == 7 and not class_mode
    assert len(grid.data["train"]) == 300 and len(grid.selection.retain) == 293
    # class unlearning, run end to end: the forget set is every train row of classes 3 and 5
    want = sum(1 for y in small_digits["train"]["label"] if y in (3, 5))
    rc = _bench(
        "--model",
        model_dir,
        "--dataset",
        saved_dir,
        "--forget_classes",
        "3",
        "5",
        "--methods",
        "ssd",
        "--name",
        "cls",
        "--results_dir",
        str(tmp_path),
        *FLAGS,
    )
    assert rc == 0
    out = json.loads((tmp_path / "cls.json").read_text())
    assert out["config"]["forget"]["num_removed"] == want and out["config"]["forget"]["params"] == {
        "classes": ["3", "5"]
    }
    assert out["models"]["model/0"]["gold"]["train_rows"] == 300 - want
    assert out["runs"][0]["unlearned"]["acc_forget"] <= 1.0 and not out["failures"]


def test_resume_skips_what_is_done(cache_root, tmp_path, model_dir, saved_dir, capsys):
    from hf_unlearn.benchmark.grid import _resume_from
    from hf_unlearn.benchmark.user import prepare_user_grid

    argv = [
        "--model",
        model_dir,
        "--dataset",
        saved_dir,
        "--forget_fraction",
        "0.1",
        "--methods",
        "finetune",
        "ssd",
        "--name",
        "res",
        "--results_dir",
        str(tmp_path),
        *FLAGS,
    ]
    assert _bench(*argv) == 0
    path = tmp_path / "res.json"
    first = json.loads(path.read_text())
    kept = next(r for r in first["runs"] if r["method"] == "finetune")
    first["runs"] = [kept]  # as if interrupted after the first method
    path.write_text(json.dumps(first))
    capsys.readouterr()
    assert _bench(*argv, "--resume") == 0
    log = capsys.readouterr().out
    assert "resuming: 1 runs already" in log and "original: cached" in log and "gold: cached" in log
    assert "finetune: running" not in log and "ssd: running" in log
    again = json.loads(path.read_text())
    assert [r["method"] for r in again["runs"]] == ["finetune", "ssd"]
    assert again["runs"][0]["unlearned"] == kept["unlearned"]
    # another recipe, selection or model is another benchmark: nothing would be resumed from this one
    for other in (["--recipe_learning_rate", "0.001"], ["--forget_selection", "first"], ["--new_head"]):
        _, config, _, _ = prepare_user_grid(_args(*argv, *other), lambda m: None)
        assert _resume_from({"config": config}, str(path), lambda m: None) == set(), other
    _, config, _, _ = prepare_user_grid(_args(*argv), lambda m: None)
    assert len(_resume_from({"config": config}, str(path), lambda m: None)) == 2


def test_bad_inputs_are_one_error_line_exit_2_nothing_written(
    cache_root, tmp_path, model_dir, saved_dir, small_digits, capsys
):
    import datasets

    only_train = tmp_path / "only-train"
    datasets.DatasetDict({"train": small_digits["train"]}).save_to_disk(str(only_train))
    no_train = tmp_path / "no-train"
    datasets.DatasetDict({"test": small_digits["test"]}).save_to_disk(str(no_train))
    (tmp_path / "ids.txt").write_text("no-such-id\n")
    m, d, f = ["--model", model_dir], ["--dataset", saved_dir], ["--forget_fraction", "0.1"]
    cases = {
        "model without dataset": (m + f, "--model needs --dataset"),
        "dataset without model": (d + f, "not a built-in benchmark dataset"),
        "missing model": (["--model", str(tmp_path / "nope")] + d + f, "does not exist"),
        "missing dataset": (m + ["--dataset", str(tmp_path / "nope")] + f, "cannot load dataset"),
        "no selection": (m + d, "give one forget-selection rule"),
        "two selections": (m + d + f + ["--forget_classes", "3"], "mutually exclusive"),
        "bad fraction": (m + d + ["--forget_fraction", "1.5"], "--forget_fraction"),
        "unknown ids": (m + d + ["--forget_ids_file", str(tmp_path / "ids.txt")], "not in column 'id'"),
        "missing ids file": (m + d + ["--forget_ids_file", str(tmp_path / "none.txt")], "does not exist"),
        "unknown class": (m + d + ["--forget_classes", "eleven"], "unknown class name"),
        "no train split": (m + ["--dataset", str(no_train)] + f, "no 'train' split"),
        "no held-out data": (m + ["--dataset", str(only_train)] + f, "no held-out data"),
        "bad recipe": (m + d + f + ["--recipe_learning_rate", "0"], "--recipe_learning_rate"),
        "unknown method": (m + d + f + ["--methods", "nope"], "unknown --methods"),
        "built-in flag": (m + d + f + ["--quick"], "built-in datasets only"),
        "bad label column": (m + d + f + ["--label_column_name", "y"], "no column 'y'"),
        "argparse": (m + d + ["--forget_fraction", "x"], "invalid float value"),
        "results inside the data": (m + d + f + ["--results_dir", os.path.join(saved_dir, "out")], "is inside"),
        "bad alpha search": (m + d + f + ["--alpha_search", "2", "2"], "alpha"),
    }
    out_dir = tmp_path / "results"
    cached = lambda: sorted(os.listdir(os.path.join(str(cache_root), "benchmark")))  # noqa: E731
    os.makedirs(os.path.join(str(cache_root), "benchmark"), exist_ok=True)
    before = cached()
    for case, (argv, expected) in cases.items():
        capsys.readouterr()
        rc = _bench("--results_dir", str(out_dir), *argv, *FLAGS)
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert rc == 2, (case, err)
        assert len(errors) == 1 and expected in errors[0], (case, err)
        assert not out_dir.exists() and not os.path.exists(os.path.join(saved_dir, "out")), case
    assert cached() == before  # nothing trained


@pytest.fixture(scope="module")
def other_classes_dir(tmp_path_factory, small_digits):
    """Five classes the model does not have ("a".."e": digits 0..4 renamed)."""
    import datasets

    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=list("abcde"))})
    path = tmp_path_factory.mktemp("user") / "other-classes"
    datasets.DatasetDict(
        {
            k: datasets.Dataset.from_dict(
                {
                    "image": [r["image"] for r in ds if r["label"] < 5],
                    "label": [r["label"] for r in ds if r["label"] < 5],
                },
                features=features,
            )
            for k, ds in small_digits.items()
        }
    ).save_to_disk(str(path))
    return str(path)


def test_new_head_for_other_classes_is_drawn_from_each_seed(
    cache_root, tmp_path, model_dir, other_classes_dir, capsys
):
    import torch

    from hf_unlearn.benchmark.user import prepare_user_grid
    from hf_unlearn.modeling.classifiers import classifier_head, load_classifier

    argv = ["--model", model_dir, "--dataset", other_classes_dir, "--forget_fraction", "0.1", *FLAGS]
    assert (
        _bench(*argv, "--results_dir", str(tmp_path / "r")) == 2
    )  # the model's classes are 0..9: refused, with the fix
    assert "pass --new_head" in capsys.readouterr().err and not (tmp_path / "r").exists()
    grid, config, _, _ = prepare_user_grid(_args(*argv, "--new_head"), lambda m: None)
    assert (
        grid.names == list("abcde")
        and config["model"]["new_head"] is True
        and "new classification head" in grid.description
    )
    a0, _ = grid.build("model", grid.recipe("model"), grid.names, 0)
    a1, _ = grid.build("model", grid.recipe("model"), grid.names, 1)
    again, _ = grid.build("model", grid.recipe("model"), grid.names, 0)
    heads = [dict(classifier_head(m).named_parameters()) for m in (a0, a1, again)]
    assert all(p.shape[0] == 5 for n, p in heads[0].items() if n.endswith("bias"))
    assert any(not torch.equal(heads[0][n], heads[1][n]) for n in heads[0])  # another seed, another head
    assert all(torch.equal(heads[0][n], heads[2][n]) for n in heads[0])  # the same seed, the same head
    start = dict(load_classifier(model_dir).model.named_parameters())
    body = [n for n, _ in a0.named_parameters() if not n.startswith("classifier")]
    assert body and all(torch.equal(dict(a0.named_parameters())[n], start[n]) for n in body)


def test_model_identity_names_the_weights_and_the_hub_revision(tmp_path, model_dir):
    import shutil

    from hf_unlearn.benchmark.user import model_identity

    copy = tmp_path / "copy"
    shutil.copytree(model_dir, copy)
    a, b = model_identity(model_dir), model_identity(str(copy))
    assert a["sha256"] == b["sha256"] and a["path"] != b["path"]
    with open(copy / "model.safetensors", "ab") as f:
        f.write(b"\0")
    assert model_identity(str(copy))["sha256"] != a["sha256"]
    hub = model_identity("some-org/not-cached", "v1")
    assert hub == {"hub_id": "some-org/not-cached", "revision": "v1", "commit": None}


def test_builtin_datasets_keep_their_flags(monkeypatch, tmp_path, capsys):
    import hf_unlearn.benchmark.protocol as benchmark

    calls = []

    def fake(**kw):
        calls.append(kw)
        (tmp_path / f"{kw['name']}.md").write_text("report")
        return {"runs": [], "failures": []}

    monkeypatch.setattr(benchmark, "run_benchmark", fake)
    assert _bench("--results_dir", str(tmp_path), "--seeds", "0") == 0
    kw = calls[-1]
    assert (kw["dataset"], kw["families"], kw["forget_class"], kw["train_size"], kw["name"]) == (
        "digits",
        ["resnet", "vit"],
        None,
        10_000,
        "digits",
    )
    assert _bench("--results_dir", str(tmp_path), "--dataset", "fashion_mnist", "--class_unlearning", "--quick") == 0
    kw = calls[-1]
    assert (kw["dataset"], kw["forget_class"], kw["seeds"], kw["method_epochs"]) == ("digits", 3, [3407], 3)
    capsys.readouterr()
    assert _bench("--results_dir", str(tmp_path), "--dataset", "digits", "--forget_classes", "3") == 2
    assert capsys.readouterr().err.startswith("error: --forget_classes need --model")
    assert len(calls) == 2


def test_a_user_model_on_builtin_digits(cache_root, model_dir):
    from hf_unlearn.benchmark.user import prepare_user_grid

    grid, config, name, _ = prepare_user_grid(
        _args("--model", model_dir, "--dataset", "digits", "--forget_fraction", "0.1", *FLAGS), lambda m: None
    )
    assert len(grid.data["train"]) == 1257 and config["data"]["name"] == "digits" and name == "my-model-on-digits"
