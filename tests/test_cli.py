"""The main job, ``scripts/unlearn.py``: every registered method, a gold model, and the push at the end of a run."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hf_unlearn import list_methods
from hf_unlearn.cli.main import run_unlearning

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--default_arch", "resnet", "--max_steps", "2", "--use_cpu", "--disable_tqdm", "true"]


@pytest.mark.parametrize("method", list_methods())
def test_every_registered_method_runs_through_the_main_job(method, original_path, tmp_path, capsys):
    out = tmp_path / method
    code = run_unlearning(["--method", method, "--output_dir", str(out), *FAST])
    assert code == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["run"]["method"] == method
    assert json.loads((out / "unlearning_config.json").read_text())["method"] == method
    assert f"- {method}" in (out / "README.md").read_text()  # the card's tags name the method


def test_method_flags_come_from_the_method_config(original_path, tmp_path, capsys):
    out = tmp_path / "lotus"
    assert (
        run_unlearning(
            ["--method", "lotus", "--alpha", "3.5", "--retain_subset_fraction", "0.5", "--output_dir", str(out), *FAST]
        )
        == 0
    )
    hyper = json.loads((out / "unlearning_config.json").read_text())["hyperparameters"]
    assert hyper["alpha"] == 3.5 and hyper["retain_subset_fraction"] == 0.5
    # another method's flag is rejected, with the way to find the right ones
    assert run_unlearning(["--method", "finetune", "--alpha", "2", "--output_dir", str(tmp_path / "x"), *FAST]) == 2
    assert "--method finetune --help" in capsys.readouterr().err


def test_gold_model_adds_jsd_and_avg_gap(original_path, tmp_path):
    out = tmp_path / "gold"
    # The original stands in for a retrained model: the original row's gaps are then exactly zero.
    assert (
        run_unlearning(["--method", "finetune", "--gold_model", original_path, "--output_dir", str(out), *FAST]) == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"jsd", "avg_gap"} <= metrics["unlearned"].keys() and "gold" in metrics
    assert metrics["original"]["avg_gap"] == pytest.approx(0.0, abs=1e-12)
    assert metrics["original"]["jsd"] == pytest.approx(0.0, abs=1e-9)
    gaps = [abs(metrics["unlearned"][k] - metrics["gold"][k]) for k in ("mia", "acc_forget", "acc_retain", "acc_test")]
    assert metrics["unlearned"]["avg_gap"] == pytest.approx(sum(gaps) / 4)


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_unlearn_push_to_hub_at_the_end_and_a_failed_push_keeps_the_output(original_path, tmp_path):
    from hub_server import HubServer

    argv = [
        sys.executable,
        str(ROOT / "scripts" / "unlearn.py"),
        "--method",
        "finetune",
        *FAST,
        "--push_to_hub",
        "--hub_model_id",
        "test-user/digits-unlearned",
        "--hub_private_repo",
        "true",
    ]
    with HubServer() as hub:
        env = {**os.environ, **hub.env(tmp_path / "hf_home"), "PYTHONPATH": str(ROOT)}
        out = tmp_path / "pushed"
        done = subprocess.run(argv + ["--output_dir", str(out)], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        repo = hub.repos["test-user/digits-unlearned"]
        files = repo.files("main")
        assert repo.private
        assert {"model.safetensors", "config.json", "README.md", "metrics.json", "removal_record.json"} <= files.keys()
        assert "removed_ids.json" not in files  # privacy by default
        removed = json.loads((out / "removed_ids.json").read_text())["ids"]
        assert not any(i.encode() in blob for i in removed[:20] for blob in files.values())
        url = hub.url

    # The server is gone now: the push fails, the run says so, and the local output stays complete.
    env = {
        **os.environ,
        "HF_ENDPOINT": url,
        "HF_TOKEN": "hf_dummy",
        "HF_HOME": str(tmp_path / "hf_home2"),
        "HF_HUB_OFFLINE": "0",
        "HF_HUB_ETAG_TIMEOUT": "2",
        "PYTHONPATH": str(ROOT),
    }
    failed_out = tmp_path / "not-pushed"
    failed = subprocess.run(
        argv + ["--output_dir", str(failed_out)], env=env, capture_output=True, text=True, timeout=300
    )
    assert failed.returncode == 1
    assert "intact" in failed.stderr
    assert {"model.safetensors", "metrics.json", "README.md", "removal_record.json"} <= _hashes(failed_out).keys()
