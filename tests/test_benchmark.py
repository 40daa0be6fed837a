"""The benchmark's quick path on tiny settings, and its aggregation (one Avg Gap: the mean over seeds of each seed's
gap to its own Gold, with a bootstrap interval)."""

import json
import math

import pytest


def test_quick_benchmark_writes_json_markdown_png(cache_root, tmp_path):
    from hf_unlearn.benchmark.protocol import run_benchmark

    run_benchmark(
        dataset="digits",
        families=["resnet"],
        seeds=[0],
        methods=["finetune", "ssd"],
        method_epochs=1,
        recipe_overrides={"epochs": 2},
        name="tiny",
        results_dir=str(tmp_path),
        progress=lambda m: None,
    )
    data = json.loads((tmp_path / "tiny.json").read_text())
    assert {"name", "config", "machine", "models", "runs", "summary", "failures"} <= data.keys()
    assert not data["failures"], data["failures"]
    assert {(r["method"], r["seed"]) for r in data["runs"]} == {("finetune", 0), ("ssd", 0)}
    for r in data["runs"]:
        assert {
            "acc_forget",
            "acc_retain",
            "acc_test",
            "mia",
            "rf_jsd",
            "jsd",
            "avg_gap",
            "avg_gap_estimate",
            "runtime_s",
        } <= r["unlearned"].keys()
    rows = data["summary"]["resnet"]["rows"]
    assert {"Original", "Gold", "finetune", "ssd"} <= rows.keys()
    assert rows["Gold"]["avg_gap"]["mean"] == 0.0
    assert (
        "jsd~rf_jsd" in data["summary"]["resnet"]["pcc"] and data["summary"]["resnet"]["pcc"]["includes_gold"] is False
    )
    md = (tmp_path / "tiny.md").read_text()
    assert "| row | MIA | forget acc | retain acc | test acc | Avg Gap [95 % CI] | est. Avg Gap (retrain-free) |" in md
    assert (
        "| finetune |" in md
        and "| Gold |" in md
        and "PCCs across the methods (the Gold and Original rows excluded)" in md
    )
    assert (tmp_path / "tiny.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # a single seed: the table's Avg Gap equals the run's own avg_gap
    run = next(r for r in data["runs"] if r["method"] == "finetune")
    assert rows["finetune"]["avg_gap"]["mean"] == pytest.approx(run["unlearned"]["avg_gap"], abs=1e-12)
    # cached originals/golds are reused on a second run
    again = run_benchmark(
        dataset="digits",
        families=["resnet"],
        seeds=[0],
        methods=["ssd"],
        method_epochs=1,
        recipe_overrides={"epochs": 2},
        name="tiny2",
        results_dir=str(tmp_path),
        progress=lambda m: None,
    )
    assert (
        again["models"]["resnet/0"]["original"]["train_seconds"]
        == data["models"]["resnet/0"]["original"]["train_seconds"]
    )


def _metrics(mia, f, r, t, jsd=0.01, rf=0.02):
    return {"mia": mia, "acc_forget": f, "acc_retain": r, "acc_test": t, "jsd": jsd, "rf_jsd": rf, "runtime_s": 1.0}


def test_avg_gap_is_the_mean_of_per_seed_gaps_with_an_interval():
    from hf_unlearn.benchmark.protocol import markdown_report, summarize

    gold = [_metrics(0.5, 0.8, 0.9, 0.8, jsd=0.0), _metrics(0.7, 0.9, 1.0, 0.9, jsd=0.0)]
    # m is above gold on seed 0 and below on seed 1: each seed's gap is 0.1 (the gap of seed means would be 0)
    meth = [_metrics(0.6, 0.9, 1.0, 0.9, jsd=0.02, rf=0.03), _metrics(0.6, 0.8, 0.9, 0.8, jsd=0.03, rf=0.05)]
    other = [_metrics(0.4, 0.7, 0.8, 0.7, jsd=0.05, rf=0.09), _metrics(0.4, 0.7, 0.8, 0.7, jsd=0.06, rf=0.1)]
    third = [_metrics(0.5, 0.8, 0.9, 0.8, jsd=0.01, rf=0.01), _metrics(0.7, 0.9, 0.9, 0.9, jsd=0.01, rf=0.02)]
    runs = []
    for seed in range(2):
        for name, rows in (("m", meth), ("o", other), ("t", third)):
            runs.append(
                {
                    "seed": seed,
                    "family": "resnet",
                    "method": name,
                    "unlearned": rows[seed],
                    "original": _metrics(1, 1, 1, 0.9),
                    "gold": gold[seed],
                }
            )
    s = summarize(runs)
    assert s["rows"]["m"]["avg_gap"]["values"] == pytest.approx([0.1, 0.1])
    assert s["rows"]["m"]["avg_gap"]["mean"] == pytest.approx(0.1)
    assert s["rows"]["o"]["avg_gap"]["values"] == pytest.approx([0.1, (0.3 + 0.2 + 0.2 + 0.2) / 4])
    lo, hi = s["rows"]["o"]["avg_gap"]["ci95"]
    assert 0.1 - 1e-12 <= lo <= s["rows"]["o"]["avg_gap"]["mean"] <= hi <= 0.225 + 1e-12
    assert s["rows"]["m"]["acc_forget"]["std"] == pytest.approx(math.sqrt(0.005))  # sample std (ddof=1), as pandas
    assert s["pcc"]["includes_gold"] is False and s["pcc"]["jsd~rf_jsd"]["n"] == 3  # m, o, t: no Gold, no Original
    ranks = {r["row"]: r for r in s["ranking"]}
    assert ranks["t"]["rank"] == 1 and "Gold" not in ranks
    out = {
        "name": "x",
        "config": {"dataset": "d", "seeds": [0, 1], "forget": {"fraction_per_class": 0.1}},
        "machine": {},
        "models": {},
        "runs": runs,
        "summary": {"resnet": s},
    }
    md = markdown_report(out)
    assert "| m | 0.60±0.00 |" in md and "1. t " in md


def test_bootstrap_interval_is_deterministic_and_brackets_the_mean():
    from hf_unlearn.benchmark.summary import bootstrap_ci95

    values = [0.03, 0.05, 0.04, 0.09]
    a, b = bootstrap_ci95(values), bootstrap_ci95(values)
    assert a == b and a[0] <= sum(values) / 4 <= a[1] and min(values) <= a[0] and a[1] <= max(values)
    assert bootstrap_ci95([0.1]) is None
