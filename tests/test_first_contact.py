"""Issue 24, a new user's first contact: the shipped originals, the embedded default's numbers on every machine,
``--model`` without ``--dataset`` refused, and a quiet run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results" / "embedded_default.json"


def test_the_embedded_originals_ship_inside_the_package_and_train_nothing(tmp_path, monkeypatch):
    from hf_unlearn.data import builtin

    monkeypatch.setenv("HF_UNLEARN_CACHE", str(tmp_path / "cache"))
    for arch in builtin.DIGITS_RECIPES:
        path = builtin.original_model(arch, progress=None)
        assert path == builtin.shipped_original(arch) and path.startswith(builtin.SHIPPED_ORIGINALS_DIR)
        size = sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))
        assert size < 2_000_000, f"{arch}: {size} bytes"  # small enough to ship in the wheel
        assert builtin.is_embedded_default_model(path)
    assert not (tmp_path / "cache").exists()  # nothing trained, nothing cached
    # a non-editable install has them too: pyproject's package-data names both files of each folder
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"hf_unlearn" = ["originals/*/*.json", "originals/*/*.safetensors"]' in pyproject


@pytest.mark.parametrize("argv", [["--model", "some-org/some-model"], ["--model_name_or_path", "{local}"]])
def test_a_model_without_dataset_is_refused_before_any_work(argv, tmp_path, capsys, monkeypatch):
    import hf_unlearn.cli.main
    from hf_unlearn.cli.main import run_unlearning

    local = tmp_path / "model"
    local.mkdir()
    (local / "config.json").write_text("{}")
    monkeypatch.setattr(
        hf_unlearn.cli.main, "load_original", lambda *a, **k: pytest.fail("the run went on to a model")
    )
    monkeypatch.setenv("HF_UNLEARN_CACHE", str(tmp_path / "cache"))
    argv = [a.replace("{local}", str(local)) for a in argv]
    assert run_unlearning([*argv, "--output_dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "without --dataset" in lines[0] and "pass --dataset" in lines[0], err
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()


def test_no_pin_memory_warning_on_cpu(tmp_path):
    from hf_unlearn import UnlearningArguments

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        args = UnlearningArguments.for_method("lotus", output_dir=str(tmp_path), use_cpu=True)
    assert args.dataloader_pin_memory is False


@pytest.mark.slow
def test_the_first_command_prints_the_numbers_of_the_results_file(tmp_path):
    """The README quotes results/embedded_default.json; this runs the README's first command (a fresh process, an
    empty cache, one and two OMP threads) and checks every number it prints against that file, at its precision."""
    expected = json.loads(RESULTS.read_text())
    for threads in ("1", "2"):
        env = dict(
            os.environ,
            HF_UNLEARN_CACHE=str(tmp_path / f"cache{threads}"),
            OMP_NUM_THREADS=threads,
            PYTHONPATH=str(ROOT),
        )
        env.pop("HF_UNLEARN_NUM_THREADS", None)
        out = tmp_path / f"out{threads}"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "hf_unlearn",
                "unlearn",
                "--output_dir",
                str(out),
                "--overwrite_output_dir",
                "--disable_tqdm",
                "true",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert "cpu threads: 1" in done.stdout  # pinned and said so: the same reduction order everywhere
        assert "pin_memory" not in done.stderr
        assert "training the embedded default" not in done.stdout + done.stderr
        assert not (tmp_path / f"cache{threads}").exists()
        metrics = json.loads((out / "metrics.json").read_text())
        for column in ("original", "unlearned"):
            for key, value in expected["metrics"][column].items():
                assert round(metrics[column][key], expected["decimals"]) == value, (threads, column, key)


def test_each_split_is_evaluated_once_and_calibration_reuses_the_validation_pass(make_trainer, digits):
    """The CLI's order: the original's predictions (the frozen teacher), then LoTUS's calibration accuracy; the
    validation split (= the calibration data) is materialised and passed over once."""
    trainer = make_trainer("lotus")
    seen = []
    real = trainer.logits

    def counting(model, pixels):
        seen.append((model is trainer.teacher, len(pixels)))
        return real(model, pixels)

    trainer.logits = counting
    original = trainer.predictions(trainer.teacher, digits["test"], digits["validation"])
    rows = sum(s.rows for s in original.stats.values())
    assert sum(n for _, n in seen) == rows == 120 + 1137 + 270 + 270
    accuracy = trainer.accuracy(trainer.teacher, trainer.calibration_split)  # LoTUS's A_cal: no second pass
    assert sum(n for _, n in seen) == rows and accuracy == original.stats["validation"].correct / 270
    assert trainer._validation_split(digits["validation"]) is trainer.calibration_split


@pytest.mark.parametrize(
    "rows, configured, expected",
    [(180, 256, 23), (1137, 256, 143), (5000, 256, 256), (40, 256, 16), (3, 256, 16), (1137, 64, 64), (40, 8, 8)],
)
def test_the_evaluation_batch_adapts_to_the_split_size(rows, configured, expected):
    from hf_unlearn.training.trainer_eval import MIN_BATCHES_PER_PASS, MIN_EVAL_BATCH, eval_batch_size

    batch = eval_batch_size(rows, configured)
    assert batch == expected
    # the bar moves at least 8 times per pass, unless that would take batches under 16 rows
    assert -(-rows // batch) >= min(-(-rows // MIN_EVAL_BATCH), MIN_BATCHES_PER_PASS) or batch == configured


def test_the_embedded_default_runs_on_one_cpu_thread_unless_told():
    from hf_unlearn.cli.threads import launcher_cpu_threads

    assert launcher_cpu_threads({}, True, 16, tiny=True) == 1
    assert launcher_cpu_threads({"OMP_NUM_THREADS": "8"}, True, 16, tiny=True) == 1
    assert launcher_cpu_threads({"HF_UNLEARN_NUM_THREADS": "3"}, True, 16, tiny=True) == 3  # the user's choice wins
    assert launcher_cpu_threads({}, False, 16, tiny=True) is None  # on an accelerator torch's threads do not matter
    assert launcher_cpu_threads({}, True, 16) is None  # any other run: torch's default


def test_an_in_process_run_leaves_the_callers_thread_count(tmp_path, monkeypatch):
    import contextlib

    import torch

    from hf_unlearn.cli.run import check_arguments

    before = torch.get_num_threads()
    monkeypatch.delenv("HF_UNLEARN_NUM_THREADS", raising=False)
    with contextlib.ExitStack() as cleanup:
        check_arguments(["--output_dir", str(tmp_path / "out"), "--use_cpu"], cleanup)
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
