"""Issue 21: scripts/gpu_check.py (the one-command GPU check) runs its own code path on CPU at toy size."""

from __future__ import annotations

import importlib.util
import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_gpu_check_runs_at_toy_size_on_cpu(tmp_path, one_thread):
    spec = importlib.util.spec_from_file_location("gpu_check", os.path.join(ROOT, "scripts", "gpu_check.py"))
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    out = tmp_path / "gpu_check.json"
    assert gpu_check.main(["--toy", "--methods", "finetune", "lotus", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    rows = report["engines"]["single"]["methods"]
    assert set(rows) == {"finetune", "lotus"}
    for row in rows.values():
        assert row["images_per_s"] > 0 and row["steps_timed"] >= 1 and row["peak_rss_gb"] > 0
        assert row["engine"]["name"] == "none" and row["engine"]["world_size"] == 1
    assert rows["finetune"]["fraction_of_finetune"] == 1.0 and rows["lotus"]["fraction_of_finetune"] > 0
