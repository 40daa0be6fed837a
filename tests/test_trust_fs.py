"""Issue 10 "Trust", part A: the original is never written, no card claims a removal that did not happen,
everything is checked before the first step, no traceback for input problems, one run per output directory.

Every case goes through the CLI in-process (``hf_unlearn.cli.main.run_unlearning``) and asserts the exit code, exactly one
``error:`` line on stderr, no traceback, and what is left on disk. Up-front refusals run with training and the
original's evaluation patched to fail, so they prove that no work happened; a few cases train (``--max_steps 1``).
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import shutil
import socket
import subprocess
import sys

import pytest
import torch
from conftest import run_cli
from conftest import sha256_tree as tree

from hf_unlearn.cli.main import run_unlearning

FAST = ["--use_cpu", "--disable_tqdm", "true", "--per_device_eval_batch_size", "512"]
TINY = ["--default_arch", "resnet", "--max_steps", "1", "--per_device_train_batch_size", "64", *FAST]


@pytest.fixture(scope="module")
def inputs(original_path, tmp_path_factory):
    """Saved datasets, broken models and golds, shared by the module's cases."""
    import datasets
    from safetensors.torch import load_file, save_file

    from hf_unlearn.data.builtin import build_image_classifier, load_digits_dataset
    from hf_unlearn.modeling.classifiers import save_classifier

    root = tmp_path_factory.mktemp("trust_fs")
    small = datasets.DatasetDict({k: v.select(range(80)) for k, v in load_digits_dataset().items()})
    small.save_to_disk(str(root / "digits"))
    datasets.DatasetDict(
        {"train": small["train"], "validation": small["validation"], "test": small["test"].remove_columns("label")}
    ).save_to_disk(str(root / "test_no_label"))
    datasets.DatasetDict(
        {
            "train": small["train"],
            "validation": small["validation"].rename_column("image", "img"),
            "test": small["test"],
        }
    ).save_to_disk(str(root / "val_no_image"))
    shifted = datasets.Dataset.from_dict(
        {
            "id": small["validation"]["id"],
            "image": small["validation"]["image"],
            "label": [y + 5 for y in small["validation"]["label"]],
        },
        features=datasets.Features(
            {"id": datasets.Value("string"), "image": datasets.Image(), "label": datasets.Value("int64")}
        ),
    )
    datasets.DatasetDict({"train": small["train"], "validation": shifted, "test": small["test"]}).save_to_disk(
        str(root / "val_labels_out_of_range")
    )

    def model_copy(name, edit=None):
        shutil.copytree(original_path, root / name)
        if edit:
            w = load_file(str(root / name / "model.safetensors"))
            edit(w)
            save_file(w, str(root / name / "model.safetensors"), metadata={"format": "pt"})
        return root / name

    def nan_weight(w):
        key = sorted(k for k in w if w[k].is_floating_point() and w[k].numel() > 1)[0]
        w[key] = w[key].clone()
        w[key].view(-1)[0] = float("nan")

    def huge_head(w):  # finite weights whose logits overflow
        for k in w:
            if k.startswith("classifier") and k.endswith("weight"):
                w[k] = torch.full_like(w[k], 3e38)

    model_copy("nan_weights", nan_weight)
    model_copy("inf_logits", huge_head)
    model_copy("model")
    model5, proc = build_image_classifier("resnet", 5, 8)
    save_classifier(model5, str(root / "gold_5_classes"), proc)
    renamed, proc = build_image_classifier("resnet", 10, 8, label_names=[f"class-{c}" for c in "abcdefghij"])
    save_classifier(renamed, str(root / "gold_other_names"), proc)
    (root / "a_file").write_text("not a directory")
    return root


# ---- 1. the original is never written ------------------------------------------------------------------------
def _alias_cases():
    """(id, setup(root, model) -> argv fragment, expected). ``model`` is a private copy of the original."""

    def same(root, model):
        return ["--output_dir", model, "--overwrite_output_dir"]

    def dotdot(root, model):
        (model / "sub").mkdir(exist_ok=True)
        return ["--output_dir", f"{model}/sub/../new", "--overwrite_output_dir"]

    def symlink_alias(root, model):
        link = root / "alias"
        link.symlink_to(model, target_is_directory=True)
        return ["--output_dir", link, "--overwrite_output_dir"]

    def inside_through_symlinked_parent(root, model):
        link = root / "alias_parent"
        link.symlink_to(model.parent, target_is_directory=True)
        return ["--output_dir", link / model.name / "deep" / "new"]

    def contains(root, model):
        return ["--output_dir", model.parent, "--overwrite_output_dir"]

    return [
        ("same-dir", same, "is the original model's directory"),
        ("dotdot-inside", dotdot, "is inside the original model's directory"),
        ("symlink-alias", symlink_alias, "is the original model's directory"),
        ("inside-via-symlinked-parent", inside_through_symlinked_parent, "is inside the original model's directory"),
        ("contains-the-model", contains, "contains the original model's directory"),
    ]


@pytest.mark.parametrize("setup, expected", [c[1:] for c in _alias_cases()], ids=[c[0] for c in _alias_cases()])
def test_output_dir_aliasing_the_original_is_refused(inputs, tmp_path, capsys, no_work, setup, expected):
    model = tmp_path / "holder" / "model"
    shutil.copytree(inputs / "model", model)
    before = tree(model)
    fragment = setup(tmp_path, model)
    run_cli(
        ["--model_name_or_path", model, "--dataset_name", inputs / "digits", *fragment, *FAST], capsys, 2, expected
    )
    assert tree(model) == before


def _made(path: str) -> str:
    """A cache directory as a machine that trained a recipe the package does not ship has it."""
    os.makedirs(path, exist_ok=True)
    return path


def _protected_cases():
    from hf_unlearn.data.builtin import cache_dir

    return [
        (
            "cache-originals",
            lambda root, orig: _made(os.path.join(cache_dir(), "originals")),
            [],
            "cache of trained originals",
        ),
        (
            "inside-a-cached-original",
            lambda root, orig: os.path.join(_made(os.path.join(cache_dir(), "originals", "vit-seed7")), "out"),
            [],
            "is inside the cache of trained originals",
        ),
        (
            "inside-a-shipped-original",
            lambda root, orig: os.path.join(orig, "out"),
            [],
            "is inside the originals shipped with hf-unlearn",
        ),
        ("cache-root", lambda root, orig: cache_dir(), [], "is the hf_unlearn cache"),
        (
            "dataset-dir",
            lambda root, orig: root / "digits",
            ["--model_name_or_path", "{model}", "--dataset_name", "{root}/digits"],
            "is the dataset's directory",
        ),
        (
            "inside-dataset-dir",
            lambda root, orig: root / "digits" / "train" / "out",
            ["--model_name_or_path", "{model}", "--dataset_name", "{root}/digits"],
            "is inside the dataset's directory",
        ),
        (
            "gold-model-dir",
            lambda root, orig: root / "model",
            ["--gold_model", "{root}/model"],
            "is the --gold_model directory",
        ),
    ]


@pytest.mark.parametrize("case", _protected_cases(), ids=lambda c: c[0])
def test_protected_directories_are_never_an_output(inputs, original_path, capsys, no_work, case):
    from hf_unlearn.data.builtin import cache_dir

    _, target, fragment, expected = case
    watched = {p: tree(p) for p in (cache_dir(), inputs / "digits", inputs / "model")}
    out = target(inputs, original_path)
    argv = [a.format(root=inputs, model=inputs / "model") for a in fragment]
    run_cli(
        [*argv, "--output_dir", out, "--overwrite_output_dir", "--default_arch", "resnet", *FAST], capsys, 2, expected
    )
    assert {p: tree(p) for p in watched} == watched


def test_cli_run_writes_nothing_into_the_dataset_directory(inputs, tmp_path, capsys):
    """A dataset saved with save_to_disk: filter caches used to land next to its arrow files."""
    data = tmp_path / "data"
    shutil.copytree(inputs / "digits", data)
    before = tree(data)
    out = tmp_path / "out"
    run_cli(
        [
            "--model_name_or_path",
            inputs / "model",
            "--dataset_name",
            data,
            "--method",
            "finetune",
            "--output_dir",
            out,
            "--max_steps",
            "1",
            *FAST,
        ],
        capsys,
        0,
    )
    assert tree(data) == before
    assert (out / "metrics.json").is_file() and not (out / ".hf_unlearn.lock").exists()


# ---- 2. the card never claims a removal that did not happen: every numeric flag range-checked --------------------
def _invalid(interval: str | None, integer: bool) -> list[str]:
    from hf_unlearn.training.ranges import Interval

    values = ["nan", "inf"]  # invalid for every field (finite-only), also for ints (argparse rejects them)
    iv = Interval.parse(interval) if interval else None
    for v in ("0", "-1"):
        if iv is not None and float(v) not in iv:
            values.append(v)
    return values


def _training_flag_cases():
    from hf_unlearn.training.ranges import TRAINING_ARGUMENT_RANGES

    cases = []
    for name, interval in TRAINING_ARGUMENT_RANGES.items():
        for v in _invalid(interval, False):
            cases.append((name, v))
    cases += [
        ("max_steps", "0"),
        ("max_steps", "-2"),
        ("forget_fraction", "0"),
        ("forget_fraction", "1"),
        ("forget_fraction", "-0.1"),
        ("forget_fraction", "nan"),
        ("forget_fraction", "inf"),
    ]
    return cases


@pytest.mark.parametrize("flag, value", _training_flag_cases(), ids=lambda x: str(x))
def test_every_numeric_training_flag_is_range_checked(tmp_path, capsys, no_work, flag, value):
    out = tmp_path / "out"
    line = run_cli(
        [*FAST, f"--{flag}", value, "--output_dir", out, "--default_arch", "resnet"], capsys, 2
    )  # last wins
    assert flag in line
    assert not out.exists()


def _method_field_cases():
    from hf_unlearn import get_method_class, list_methods
    from hf_unlearn.training.ranges import declared_ranges

    cases = []
    for method in list_methods():
        if method.startswith("_"):
            continue
        config_cls = get_method_class(method).config_class
        ranges = declared_ranges(config_cls)
        for f in dataclasses.fields(config_cls):
            if f.type in ("bool", bool) or "str" in str(f.type) or "bool" in str(f.type):
                continue
            if not any(t in str(f.type) for t in ("int", "float")):
                continue
            for v in _invalid(ranges.get(f.name), "int" in str(f.type)):
                cases.append((method, f.name, v))
    return cases


@pytest.mark.parametrize("method, field, value", _method_field_cases(), ids=lambda x: str(x))
def test_every_numeric_method_setting_is_range_checked(tmp_path, capsys, no_work, method, field, value):
    out = tmp_path / "out"
    line = run_cli(
        ["--method", method, f"--{field}", value, "--output_dir", out, "--default_arch", "resnet", *FAST], capsys, 2
    )
    assert field in line
    assert not out.exists()


def test_every_numeric_method_setting_declares_a_range():
    from hf_unlearn import get_method_class, list_methods
    from hf_unlearn.training.ranges import declared_ranges

    missing = []
    for method in list_methods():
        if method.startswith("_"):
            continue
        cls = get_method_class(method).config_class
        ranges = declared_ranges(cls)
        missing += [
            f"{method}.{f.name}"
            for f in dataclasses.fields(cls)
            if any(t in str(f.type) for t in ("int", "float")) and "bool" not in str(f.type) and f.name not in ranges
        ]
    assert not missing, f"declare a range (hf_unlearn.training.ranges) for {missing}"


def test_python_users_get_the_same_checks(make_trainer):
    from hf_unlearn import UnlearningArguments, get_method_class
    from hf_unlearn.methods.base import MixtureSpec, UnlearningMethod, register_method

    with pytest.raises(ValueError, match="alpha must be > 0, got nan"):
        get_method_class("lotus")({"alpha": float("nan")})
    with pytest.raises(ValueError, match="learning_rate must be > 0, got inf"):
        UnlearningArguments(output_dir="unused", learning_rate=float("inf"))
    with pytest.raises(ValueError, match="num_train_epochs 0 would run no optimiser step"):
        UnlearningArguments.for_method("finetune", output_dir="unused", num_train_epochs=0)

    @register_method("_test_empty_mixture", override=True)
    class EmptyMixture(UnlearningMethod):
        def mixture(self, trainer):
            return MixtureSpec(include_forget=False, retain_indices=[])

    with pytest.raises(ValueError, match="empty training mixture"):
        make_trainer("_test_empty_mixture")


def test_batches_that_are_all_dropped_are_refused(tmp_path, capsys, no_work):
    out = tmp_path / "out"
    run_cli(
        [
            "--method",
            "finetune",
            "--dataloader_drop_last",
            "true",
            "--per_device_train_batch_size",
            "100000",
            "--output_dir",
            out,
            "--default_arch",
            "resnet",
            *FAST,
        ],
        capsys,
        2,
        "no optimiser step would run",
    )
    assert not out.exists()


# ---- 3. a resume continues the same run ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def checkpoint(original_path, tmp_path_factory):
    """checkpoint-1 of a one-step embedded-default LoTUS run (the embedded preset: alpha 32, batch 32)."""
    root = tmp_path_factory.mktemp("resume")
    code = run_unlearning(
        [
            "--default_arch",
            "resnet",
            "--max_steps",
            "1",
            "--save_strategy",
            "steps",
            "--save_steps",
            "1",
            "--output_dir",
            str(root / "run"),
            *FAST,
        ]
    )
    assert code == 0
    ckpt = root / "run" / "checkpoint-1"
    assert (ckpt / "optimizer.pt").is_file() and (ckpt / "scheduler.pt").is_file()
    return ckpt


def _corrupt_copy(ckpt, tmp_path, name):
    copy = tmp_path / "checkpoint-1"
    shutil.copytree(ckpt, copy)
    target = sorted(copy.glob(name))[0]
    target.write_bytes(target.read_bytes()[:40])
    return copy


RESUME_CASES = [
    ("another-forget-fraction", ["--forget_fraction", "0.2"], None, "another forget set"),
    ("another-seed", ["--seed", "1"], None, "--seed 42, this run has 1"),
    ("another-method", ["--method", "finetune"], None, "belongs to method 'lotus', not 'finetune'"),
    ("another-method-config", ["--alpha", "3"], None, "alpha=32.0"),
    (
        "another-dataset",
        [
            "--model_name_or_path",
            "{model}",
            "--dataset_name",
            "{root}/digits",
            "--alpha",
            "32",
            "--per_device_train_batch_size",
            "32",
            "--learning_rate",
            "5e-4",
        ],
        None,
        "another dataset",
    ),
    ("corrupt-optimizer", [], "optimizer.pt", "optimizer.pt in --resume_from_checkpoint is unreadable"),
    ("corrupt-scheduler", [], "scheduler.pt", "scheduler.pt in --resume_from_checkpoint is unreadable"),
    ("corrupt-rng-state", [], "rng_state*.pth", "rng_state.pth in --resume_from_checkpoint is unreadable"),
]


@pytest.mark.parametrize(
    "fragment, corrupt, expected", [c[1:] for c in RESUME_CASES], ids=[c[0] for c in RESUME_CASES]
)
def test_resume_must_continue_the_same_run(inputs, checkpoint, tmp_path, capsys, no_work, fragment, corrupt, expected):
    before = tree(checkpoint.parent)
    ckpt = _corrupt_copy(checkpoint, tmp_path, corrupt) if corrupt else checkpoint
    out = tmp_path / "out"
    argv = [a.format(root=inputs, model=inputs / "model") for a in fragment]
    line = run_cli(
        [
            "--default_arch",
            "resnet",
            "--max_steps",
            "1",
            "--resume_from_checkpoint",
            ckpt,
            "--output_dir",
            out,
            *argv,
            *FAST,
        ],
        capsys,
        2,
        expected,
    )
    assert "weights_only=False" not in line
    assert not out.exists() and tree(checkpoint.parent) == before


def test_trainer_refuses_to_resume_another_forget_set(make_trainer, checkpoint, digits):
    from hf_unlearn import select_forget

    trainer = make_trainer("lotus", method_config={"alpha": 32.0}, per_device_train_batch_size=32, learning_rate=5e-4)
    other = select_forget(digits["train"], fraction_per_class=0.2, seed=0, num_labels=10)
    trainer.removal_record = other.record
    with pytest.raises(ValueError, match="another forget set"):
        trainer.train(resume_from_checkpoint=str(checkpoint))


# ---- 4. everything is checked before the first step ----------------------------------------------------------
CHECK_CASES = [
    (
        "test-split-no-label",
        ["--dataset_name", "{root}/test_no_label"],
        "the 'test' split (--test_split) has no column 'label'",
    ),
    (
        "validation-no-image",
        ["--dataset_name", "{root}/val_no_image"],
        "'validation' split (--validation_split) has no column 'image'",
    ),
    (
        "validation-labels-out-of-range",
        ["--dataset_name", "{root}/val_labels_out_of_range"],
        "outside the model's 10 classes",
    ),
    ("gold-other-class-count", ["--gold_model", "{root}/gold_5_classes"], "has 5 classes but the model has 10"),
    ("gold-other-label-names", ["--gold_model", "{root}/gold_other_names"], "names class 0 'class-a'"),
    ("gold-missing", ["--gold_model", "{root}/no-such-gold"], "--gold_model"),
    ("gold-nan-weights", ["--gold_model", "{root}/nan_weights"], "NaN/inf values in"),
    ("model-nan-weights", ["--model_name_or_path", "{root}/nan_weights"], "has NaN/inf values in 'classifier.1.bias'"),
    ("model-inf-logits", ["--model_name_or_path", "{root}/inf_logits"], "gives NaN/inf logits on the forget set"),
    ("output-dir-is-a-file", ["--output_dir", "{root}/a_file"], "is a file, not a directory"),
    ("output-dir-under-a-file", ["--output_dir", "{root}/a_file/out"], "is a file, not a directory"),
    ("output-dir-unwritable", ["--output_dir", "/proc/hf-unlearn-test-out"], "is not writable"),
]


@pytest.mark.parametrize("fragment, expected", [c[1:] for c in CHECK_CASES], ids=[c[0] for c in CHECK_CASES])
def test_inputs_checked_before_any_work(inputs, tmp_path, capsys, no_work, fragment, expected):
    argv = [a.format(root=inputs) for a in fragment]
    out = tmp_path / "out"
    if "--output_dir" not in argv:
        argv += ["--output_dir", str(out)]
    if "--dataset_name" in argv and "--model_name_or_path" not in argv:
        argv += ["--model_name_or_path", str(inputs / "model")]
    if "--model_name_or_path" in argv and "--dataset_name" not in argv:
        argv += ["--dataset_name", str(inputs / "digits")]
    before = tree(inputs)
    run_cli(argv + ["--default_arch", "resnet", *FAST], capsys, 2, expected)
    assert not out.exists() and tree(inputs) == before


def test_read_only_output_location_is_refused(tmp_path, capsys, no_work, monkeypatch):
    import tempfile

    def read_only(*a, **k):  # tests run as root: chmod cannot make a directory read-only for us
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    run_cli(["--output_dir", tmp_path / "out", "--default_arch", "resnet", *FAST], capsys, 2, "is not writable")
    assert not (tmp_path / "out").exists()


# ---- 5. no traceback: disk full, unexpected errors, Ctrl-C ---------------------------------------------------
@pytest.fixture(scope="module")
def finished(original_path, tmp_path_factory):
    """A finished output directory (an earlier run) and its hashes."""
    out = tmp_path_factory.mktemp("finished") / "out"
    assert run_unlearning([*TINY, "--method", "finetune", "--output_dir", str(out)]) == 0
    return out


def _disk_full(*a, **k):
    raise OSError(errno.ENOSPC, "No space left on device", "model.safetensors")


def test_disk_full_at_the_final_save_keeps_the_earlier_output(finished, tmp_path, capsys, monkeypatch):
    import hf_unlearn.modeling.classifiers

    out = tmp_path / "out"
    shutil.copytree(finished, out)
    before = tree(out)
    monkeypatch.setattr(hf_unlearn.modeling.classifiers, "save_classifier", _disk_full)
    line = run_cli(
        [*TINY, "--method", "finetune", "--output_dir", out, "--overwrite_output_dir"],
        capsys,
        1,
        "no space left on the device while writing model.safetensors",
    )
    assert "HF_UNLEARN_DEBUG=1" in line
    assert tree(out) == before  # the earlier finished output, untouched; no .incomplete, no lock


def test_disk_full_at_a_checkpoint_leaves_nothing_finished(tmp_path, capsys, monkeypatch):
    real_save = torch.save

    def save(obj, f, *a, **k):
        if str(f).endswith("unlearning_method_state.pt"):
            raise OSError(errno.ENOSPC, "No space left on device", str(f))
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", save)
    out = tmp_path / "out"
    run_cli(
        [*TINY, "--method", "finetune", "--save_strategy", "steps", "--save_steps", "1", "--output_dir", out],
        capsys,
        1,
        "unlearning_method_state.pt",
    )
    left = set(os.listdir(out)) if out.exists() else set()
    assert not left & {"metrics.json", "model.safetensors", ".incomplete", ".hf_unlearn.lock"}, left


@pytest.mark.parametrize(
    "raised, code, expected",
    [
        (
            RuntimeError("boom\nsecond line"),
            1,
            "error: RuntimeError: boom (re-run with HF_UNLEARN_DEBUG=1 for the traceback)",
        ),
        (KeyboardInterrupt(), 130, "error: interrupted; no finished output was written"),
    ],
    ids=["unexpected-error", "ctrl-c"],
)
def test_failures_are_one_line_and_leave_nothing(tmp_path, capsys, monkeypatch, raised, code, expected):
    from hf_unlearn.training.trainer import UnlearningTrainer

    def fail(self, *a, **k):
        raise raised

    monkeypatch.setattr(UnlearningTrainer, "train", fail)
    out = tmp_path / "out"
    line = run_cli([*TINY, "--output_dir", out], capsys, code)
    assert line.startswith(expected), line
    assert not out.exists()  # created for the run (its lock), removed again: nothing looks finished
    monkeypatch.setenv("HF_UNLEARN_DEBUG", "1")
    with pytest.raises(type(raised)):
        run_unlearning([*TINY, "--output_dir", str(out)])


def test_interrupt_during_the_final_save_keeps_the_earlier_output(finished, tmp_path, capsys, monkeypatch):
    import hf_unlearn.publishing.output

    out = tmp_path / "out"
    shutil.copytree(finished, out)
    before = tree(out)
    real_json = hf_unlearn.publishing.output._json

    def interrupt_at_metrics(path, obj):
        if path.endswith("metrics.json"):
            raise KeyboardInterrupt
        return real_json(path, obj)

    monkeypatch.setattr(hf_unlearn.publishing.output, "_json", interrupt_at_metrics)
    run_cli([*TINY, "--method", "finetune", "--output_dir", out, "--overwrite_output_dir"], capsys, 130, "interrupted")
    assert tree(out) == before


# ---- 6. concurrency: one run per output directory ------------------------------------------------------------
def _write_lock(out, pid, host=None):
    out.mkdir(parents=True, exist_ok=True)
    (out / ".hf_unlearn.lock").write_text(
        json.dumps({"pid": pid, "hostname": host or socket.gethostname(), "started": "2026-01-01T00:00:00+00:00"})
    )


@pytest.mark.parametrize("holder", ["live-process", "other-host"])
def test_a_held_lock_refuses_the_second_run(tmp_path, capsys, no_work, holder):
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        if holder == "live-process":
            _write_lock(out, proc.pid)
        else:
            _write_lock(out, 1, host="another-host.example")
        before = tree(out)
        run_cli(
            ["--output_dir", out, "--default_arch", "resnet", *FAST],
            capsys,
            2,
            "another run is writing to --output_dir",
        )
        assert tree(out) == before
    finally:
        proc.kill()
        proc.wait()


def test_a_stale_lock_is_replaced_and_removed(tmp_path, capsys, monkeypatch):
    from hf_unlearn.training.trainer import UnlearningTrainer

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # its pid no longer exists: the lock of a crashed run
    out = tmp_path / "out"
    _write_lock(out, dead.pid)
    seen = {}

    def observe(self, *a, **k):
        seen["lock"] = json.loads((out / ".hf_unlearn.lock").read_text())
        raise KeyboardInterrupt

    monkeypatch.setattr(UnlearningTrainer, "train", observe)
    run_cli([*TINY, "--output_dir", out], capsys, 130)
    assert seen["lock"]["pid"] == os.getpid() and seen["lock"]["hostname"] == socket.gethostname()
    assert os.listdir(out) == []  # released on the way out, also on Ctrl-C


def test_two_runs_at_once_the_second_is_refused(tmp_path, capsys, monkeypatch):
    from hf_unlearn.training.trainer import UnlearningTrainer

    out = tmp_path / "out"
    second = {}
    real_train = UnlearningTrainer.train
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def start_second_run_meanwhile(self, *a, **k):
        # while this run holds the directory, a second process starts on it (and must be refused)
        done = subprocess.run(
            [sys.executable, os.path.join(root, "scripts", "unlearn.py"), *TINY, "--output_dir", str(out)],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=root,
            env={**os.environ, "PYTHONPATH": root},
        )
        second.update(code=done.returncode, err=done.stderr)
        return real_train(self, *a, **k)

    monkeypatch.setattr(UnlearningTrainer, "train", start_second_run_meanwhile)
    run_cli([*TINY, "--output_dir", out], capsys, 0)
    assert second["code"] == 2 and "Traceback" not in second["err"], second
    lines = [line for line in second["err"].splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and f"another run is writing to --output_dir {out} (pid {os.getpid()}" in lines[0], lines
    assert (out / "metrics.json").is_file() and not (out / ".hf_unlearn.lock").exists()


def test_lock_helpers_agree_on_liveness(tmp_path):
    from hf_unlearn.cli.fs_safety import OutputDirLock, OutputDirLocked, lock_is_live

    assert lock_is_live({"pid": os.getpid(), "hostname": socket.gethostname()})
    assert lock_is_live({})  # unreadable: never stolen
    assert not lock_is_live(None)
    with OutputDirLock(str(tmp_path / "d")) as lock:
        assert lock.created_dir
        with pytest.raises(OutputDirLocked, match=f"pid {os.getpid()}"):
            OutputDirLock(str(tmp_path / "d")).acquire()
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize(
    "error, expected",
    [
        (
            OSError(errno.ENOSPC, "No space left on device", "/out/model.safetensors"),
            "no space left on the device while writing /out/model.safetensors; free some disk space",
        ),
        (
            RuntimeError(
                'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left on '
                'device" })'
            ),
            "no space left on the device while writing the output",
        ),
        (
            PermissionError(errno.EACCES, "Permission denied", "/out/metrics.json"),
            "cannot write /out/metrics.json (Permission denied); choose a writable --output_dir",
        ),
        (ValueError("first\nsecond"), "ValueError: first"),
    ],
    ids=["enospc", "safetensors-disk-full", "eacces", "multi-line"],
)
def test_failure_lines_name_the_file_and_the_fix(error, expected):
    from hf_unlearn.cli.main import describe_failure

    line = describe_failure(error)
    assert line.startswith(expected) and "\n" not in line, line
