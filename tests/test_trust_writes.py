"""Trust, round 2: a run writes nothing into a local dataset directory, nor into the HF datasets cache for a local
dataset, whatever kind of run it is (hf_unlearn.data.scratch).

Before, ``datasets`` wrote ``cache-*.arrow`` next to a ``save_to_disk`` dataset's own files: a chained request's
kept row indices (from which the earlier request's removed rows can be read off) and the relabelled train split of a
label remap. Each case snapshots every file of the dataset directory (path, size and SHA-256) before and after.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest

from hf_unlearn.cli.main import run_unlearning

FAST = [
    "--use_cpu",
    "--disable_tqdm",
    "true",
    "--per_device_eval_batch_size",
    "512",
    "--per_device_train_batch_size",
    "32",
    "--log_level",
    "error",
]


def snapshot(path) -> dict[str, tuple]:
    """Every file and directory under ``path``: relative path -> (size, SHA-256), or "dir"."""
    out = {}
    for root, dirs, files in os.walk(path):
        for name in dirs:
            out[os.path.relpath(os.path.join(root, name), path)] = "dir"
        for name in files:
            full = os.path.join(root, name)
            with open(full, "rb") as f:
                out[os.path.relpath(full, path)] = (os.path.getsize(full), hashlib.sha256(f.read()).hexdigest())
    return out


@pytest.fixture(scope="module")
def data(original_path, tmp_path_factory):
    """Small saved datasets: the digits as saved, and the same with the label names in reverse order."""
    import datasets

    from hf_unlearn.data.builtin import load_digits_dataset

    root = tmp_path_factory.mktemp("trust_writes")
    small = datasets.DatasetDict({k: v.select(range(80)) for k, v in load_digits_dataset().items()})
    small.save_to_disk(str(root / "digits"))
    names = [str(d) for d in range(10)][::-1]  # the same classes, another order: remapped by name
    features = datasets.Features(
        {"id": datasets.Value("string"), "image": datasets.Image(), "label": datasets.ClassLabel(names=names)}
    )
    small.map(
        lambda b: {"label": [9 - y for y in b["label"]]}, batched=True, features=features, keep_in_memory=True
    ).save_to_disk(str(root / "reversed"))
    return root


@pytest.fixture
def hf_datasets_cache(tmp_path, monkeypatch):
    """An empty HF datasets cache for the test (datasets reads config.HF_DATASETS_CACHE when it builds)."""
    import datasets

    cache = tmp_path / "hf_datasets_cache"
    cache.mkdir()
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
    return cache


def run(argv, capsys):
    capsys.readouterr()
    code = run_unlearning([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 0, err[-3000:]


def _plain(data, dataset, model, tmp, capsys):
    run(
        [
            "--model_name_or_path",
            model,
            "--dataset_name",
            dataset,
            "--method",
            "finetune",
            "--max_steps",
            "1",
            "--output_dir",
            tmp / "out",
            *FAST,
        ],
        capsys,
    )


def _chained(data, dataset, model, tmp, capsys):
    # request 1, then request 2 on request 1's output: the retain set of request 2 excludes request 1's rows
    run(
        [
            "--model_name_or_path",
            model,
            "--dataset_name",
            dataset,
            "--method",
            "finetune",
            "--max_steps",
            "1",
            "--output_dir",
            tmp / "first",
            *FAST,
        ],
        capsys,
    )
    removed = set(json.loads((tmp / "first" / "removed_ids.json").read_text())["ids"])
    assert removed  # request 1 removed rows; request 2 names another one
    ids = tmp / "ids.txt"
    ids.write_text(next(f"digits-{i:04d}" for i in range(80) if f"digits-{i:04d}" not in removed) + "\n")
    run(
        [
            "--model_name_or_path",
            tmp / "first",
            "--dataset_name",
            dataset,
            "--method",
            "finetune",
            "--max_steps",
            "1",
            "--forget_ids_file",
            ids,
            "--output_dir",
            tmp / "second",
            *FAST,
        ],
        capsys,
    )
    ledger = json.loads((tmp / "second" / "ledger.json").read_text())
    assert len(ledger["requests"] if isinstance(ledger, dict) else ledger) == 2, ledger  # a chained request


def _alpha_search(data, dataset, model, tmp, capsys):
    run(
        [
            "--model_name_or_path",
            model,
            "--dataset_name",
            dataset,
            "--method",
            "lotus",
            "--max_steps",
            "1",
            "--alpha_search",
            "2",
            "8",
            "--output_dir",
            tmp / "out",
            *FAST,
        ],
        capsys,
    )


def _resume(data, dataset, model, tmp, capsys):
    base = [
        "--model_name_or_path",
        model,
        "--dataset_name",
        dataset,
        "--method",
        "finetune",
        "--max_steps",
        "2",
        "--save_strategy",
        "steps",
        "--save_steps",
        "1",
        "--output_dir",
        tmp / "out",
        *FAST,
    ]
    run(base, capsys)
    run([*base, "--resume_from_checkpoint", tmp / "out" / "checkpoint-1"], capsys)


KINDS = {
    "plain": ("digits", _plain),
    "chained": ("digits", _chained),
    "label-remapped": ("reversed", _plain),
    "alpha-search": ("digits", _alpha_search),
    "resume": ("digits", _resume),
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_run_writes_nothing_beside_a_saved_dataset(kind, data, original_path, tmp_path, capsys, hf_datasets_cache):
    name, body = KINDS[kind]
    dataset = data / name
    before = snapshot(dataset)
    body(data, dataset, original_path, tmp_path, capsys)
    assert snapshot(dataset) == before
    assert snapshot(hf_datasets_cache) == {}


def test_label_remap_from_python_writes_nothing_beside_the_data(data, original_path):
    """The core function itself (not only the CLI) keeps its writes temporary, and leaves caching as it was."""
    import datasets

    from hf_unlearn import load_classifier
    from hf_unlearn.data.labels import align_labels, class_names_of

    before = snapshot(data / "reversed")
    model = load_classifier(original_path).model
    assert datasets.is_caching_enabled()
    aligned, how = align_labels(datasets.load_from_disk(str(data / "reversed")), "label", class_names_of(model), 10)
    assert how and aligned["train"].cache_files  # remapped, and backed by a file...
    assert not any(str(data) in f["filename"] for f in aligned["train"].cache_files)  # ...not beside the data
    assert datasets.is_caching_enabled()
    assert snapshot(data / "reversed") == before


def test_an_image_folder_leaves_nothing_in_the_hf_datasets_cache(original_path, tmp_path):
    """Through a real process with its own, empty HF cache: the image folder is prepared in a temporary directory."""

    from hf_unlearn.data.builtin import load_digits_dataset

    folder = tmp_path / "folder"
    digits = load_digits_dataset()
    for split in ("train", "validation", "test"):
        for i, row in enumerate(digits[split].select(range(40))):
            target = folder / split / str(row["label"])
            target.mkdir(parents=True, exist_ok=True)
            row["image"].save(target / f"{i}.png")
    hf_home = tmp_path / "hf_home"
    (hf_home / "datasets").mkdir(parents=True)
    before = snapshot(folder)
    env = dict(os.environ, HF_HOME=str(hf_home), HF_DATASETS_CACHE=str(hf_home / "datasets"))
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(os.path.abspath(__file__))), env.get("PYTHONPATH", "")]
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "hf_unlearn",
            "unlearn",
            "--model_name_or_path",
            str(original_path),
            "--dataset_name",
            str(folder),
            "--method",
            "finetune",
            "--max_steps",
            "1",
            "--forget_fraction",
            "0.2",
            "--output_dir",
            str(tmp_path / "out"),
            *FAST,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert snapshot(folder) == before
    assert snapshot(hf_home / "datasets") == {}, snapshot(hf_home)
