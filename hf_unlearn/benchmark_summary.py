"""The benchmark's aggregation (SPEC §4.8): mean ± std over seeds, Avg Gap as the gap of seed means, PCCs, and the
retrain-free alpha search's picked vs hindsight-best alpha. ``hf_unlearn.benchmark`` runs, ``benchmark_report`` writes.

The metrics averaged into the Avg Gap come from the one metrics table (hf_unlearn.metrics_table).
"""

from __future__ import annotations

import numpy as np

from .metrics_table import GAP_KEYS

__all__ = ["summarize", "alpha_search_summary"]


def _stats(values: list[float]) -> dict:
    a = np.asarray(values, dtype=float)
    return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if len(a) > 1 else 0.0, "n": len(a),
            "values": a.tolist()}


def summarize(runs: list[dict], models: dict | None = None) -> dict:
    """Per-row (Original, Gold, each method) mean ± std over seeds, Avg Gap as the gap of seed means, PCCs."""
    rows: dict[str, dict[str, list[float]]] = {}
    seen_seed: set = set()
    for r in runs:
        for row, metrics in (("Original", r["original"]), ("Gold", r["gold"])):
            if (row, r["seed"]) in seen_seed:
                continue
            seen_seed.add((row, r["seed"]))
            for k, v in metrics.items():
                rows.setdefault(row, {}).setdefault(k, []).append(v)
        for k, v in r["unlearned"].items():
            rows.setdefault(r["method"], {}).setdefault(k, []).append(v)
    # original / gold "runtime" = their training time
    for info_by_seed in (models or {}).values():
        for row, kind in (("Original", "original"), ("Gold", "gold")):
            if row in rows and kind in info_by_seed:
                rows[row].setdefault("runtime_s", []).append(info_by_seed[kind]["train_seconds"])
    table = {row: {k: _stats(v) for k, v in metrics.items() if v and all(isinstance(x, (int, float)) for x in v)}
             for row, metrics in rows.items()}
    gold = table.get("Gold")
    if gold:
        for row, stats in table.items():
            if all(k in stats for k in GAP_KEYS):
                stats["avg_gap"] = float(np.mean([abs(stats[k]["mean"] - gold[k]["mean"]) for k in GAP_KEYS]))
                stats["avg_gap_rounded"] = round(float(np.mean(
                    [abs(round(stats[k]["mean"], 2) - round(gold[k]["mean"], 2)) for k in GAP_KEYS])), 4)
        if "jsd" in gold:
            gold["jsd"] = _stats([0.0] * gold["jsd"]["n"]) if gold["jsd"]["mean"] < 1e-12 else gold["jsd"]
    methods = [m for m in table if m != "Original"]  # the Gold row is included (SPEC §4.8)
    pcc = {}
    for a, b in (("jsd", "rf_jsd"), ("avg_gap", "rf_jsd"), ("avg_gap", "jsd")):
        xs = [_mean(table[m], a) for m in methods]
        ys = [_mean(table[m], b) for m in methods]
        pts = [(x, y) for x, y in zip(xs, ys) if x is not None and y is not None]
        if len(pts) >= 3 and np.std([p[0] for p in pts]) > 0 and np.std([p[1] for p in pts]) > 0:
            from scipy.stats import pearsonr

            r, p = pearsonr([p[0] for p in pts], [p[1] for p in pts])
            pcc[f"{a}~{b}"] = {"r": float(r), "p": float(p), "n": len(pts)}
        else:
            pcc[f"{a}~{b}"] = None
    return {"rows": table, "pcc": pcc}


def alpha_search_summary(runs: list[dict]) -> dict:
    """Per method and seed: the alpha RF-JSD picked (no gold) vs the hindsight-best alpha by Avg Gap (needs gold).

    ``{method: {"per_seed": [{seed, picked_alpha, picked_gap, best_alpha, best_gap, regret}], "differs": k,
    "n": n, "mean_regret", "max_regret", "within_0.01": k}}``; regret = picked_gap - best_gap (>= 0).
    """
    summary: dict = {}
    for r in runs:
        search = r.get("alpha_search")
        cands = [c for c in (search or {}).get("candidates", []) if "avg_gap" in c]
        if not cands:
            continue
        picked = next(c for c in cands if c["selected"])
        best = min(cands, key=lambda c: c["avg_gap"])
        entry = summary.setdefault(r["method"], {"per_seed": []})
        entry["per_seed"].append({"seed": r["seed"], "picked_alpha": picked["alpha"], "picked_gap": picked["avg_gap"],
                                  "best_alpha": best["alpha"], "best_gap": best["avg_gap"],
                                  "regret": picked["avg_gap"] - best["avg_gap"],
                                  "gaps": {str(c["alpha"]): c["avg_gap"] for c in cands},
                                  "rf_jsd_selection": {str(c["alpha"]): c["rf_jsd_selection"] for c in cands}})
    for entry in summary.values():
        regrets = [p["regret"] for p in entry["per_seed"]]
        entry.update(n=len(regrets), differs=sum(p["picked_alpha"] != p["best_alpha"] for p in entry["per_seed"]),
                     mean_regret=float(np.mean(regrets)), max_regret=float(np.max(regrets)),
                     within_001=sum(x <= 0.01 for x in regrets))
    return summary


def _mean(stats: dict, key: str):
    v = stats.get(key)
    if v is None:
        return None
    return v if isinstance(v, float) else v["mean"]
