"""The benchmark's aggregation: mean ± std over seeds, one Avg Gap with a bootstrap interval, cost next to score,
PCCs among the methods, the retrain-free verdict's agreement with the true Avg Gap, and the alpha search's pick
against the hindsight-best, the default alpha and the Original. ``hf_unlearn.benchmark.protocol`` runs, ``benchmark_report``
writes.

**One Avg Gap.** Every table uses the same definition: per seed, the mean over MIA and forget / retain / test
accuracy of |method − that seed's Gold| (what each run records as ``avg_gap``), then the mean over seeds, with the
per-seed values and a 95 % bootstrap interval over seeds (``avg_gap_ci95``). The paper (SPEC §4.8) takes the gap of
seed means instead; that hides seed-to-seed disagreement and has no per-seed values to bootstrap.

The metrics averaged into the Avg Gap come from the one metrics table (hf_unlearn.evaluation.metrics_table).
"""

from __future__ import annotations

import numpy as np

__all__ = ["summarize", "alpha_search_summary", "verdict_summary", "bootstrap_ci95", "spearman"]

BOOTSTRAP_RESAMPLES = 10_000
COST_KEYS = ("steps", "examples", "seconds")


def bootstrap_ci95(values, resamples: int = BOOTSTRAP_RESAMPLES) -> list[float] | None:
    """95 % percentile-bootstrap interval of the mean over ``values`` (one per seed); a fixed generator, so the same
    values always give the same interval. None for fewer than 2 values."""
    a = np.asarray(values, dtype=float)
    if len(a) < 2:
        return None
    rng = np.random.default_rng(0)
    means = a[rng.integers(0, len(a), size=(resamples, len(a)))].mean(axis=1)
    return [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]


def _stats(values: list[float], ci: bool = False) -> dict:
    a = np.asarray(values, dtype=float)
    out = {
        "mean": float(a.mean()),
        "std": float(a.std(ddof=1)) if len(a) > 1 else 0.0,
        "n": len(a),
        "values": a.tolist(),
    }
    if ci:
        out["ci95"] = bootstrap_ci95(a)
    return out


def spearman(xs, ys) -> dict | None:
    """Spearman's rank correlation of paired values (None with fewer than 3 points or a constant side)."""
    pts = [(x, y) for x, y in zip(xs, ys, strict=True) if x is not None and y is not None]
    if len(pts) < 3 or len({p[0] for p in pts}) < 2 or len({p[1] for p in pts}) < 2:
        return None
    from scipy.stats import spearmanr

    r, p = spearmanr([p[0] for p in pts], [p[1] for p in pts])
    return {"rho": float(r), "p": float(p), "n": len(pts)}


def run_cost(run: dict, gold_cost: dict | None) -> dict:
    """``run["cost"]`` with ``vs_gold`` (each of steps, examples, seconds as a fraction of the Gold retraining's)."""
    cost = dict(run.get("cost") or {})
    if gold_cost and cost:
        cost["vs_gold"] = {k: (cost[k] / gold_cost[k] if gold_cost.get(k) else None) for k in COST_KEYS if k in cost}
    return cost


def summarize(runs: list[dict], models: dict | None = None) -> dict:
    """Per row (Original, Gold, each method): mean ± std over seeds of each metric and of the cost; Avg Gap and its
    retrain-free estimate with per-seed values and a 95 % bootstrap interval; PCCs among the methods (Gold and
    Original excluded: the Gold's gap and JSD are 0 by construction)."""
    rows: dict[str, dict[str, list[float]]] = {}
    seen_seed: set = set()
    models = models or {}

    def add(row: str, key: str, value) -> None:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            rows.setdefault(row, {}).setdefault(key, []).append(float(value))

    for r in runs:
        info = models.get(f"{r.get('family')}/{r['seed']}") or {}
        gold_cost = (info.get("gold") or {}).get("cost")
        for row, metrics, kind in (("Original", r["original"], "original"), ("Gold", r["gold"], "gold")):
            if (row, r["seed"]) in seen_seed:
                continue
            seen_seed.add((row, r["seed"]))
            for k, v in metrics.items():
                if k != "avg_gap":
                    add(row, k, v)
            if row == "Original":
                add(row, "avg_gap", _seed_gap(r["original"], r["gold"]))
            if row == "Gold":
                add(row, "avg_gap", 0.0)  # the Gold is its own reference
            cost = (info.get(kind) or {}).get("cost")
            if cost:  # the Original's / Gold's training (what retraining costs)
                for k in COST_KEYS:
                    add(row, f"cost_{k}", cost.get(k))
                    add(row, f"cost_vs_gold_{k}", cost[k] / gold_cost[k] if gold_cost and gold_cost.get(k) else None)
        for k, v in r["unlearned"].items():
            if k != "avg_gap":
                add(r["method"], k, v)
        # one definition: each seed's gap to its own Gold (hf_unlearn.evaluation.metrics.avg_gap), whatever the run recorded
        add(r["method"], "avg_gap", _seed_gap(r["unlearned"], r["gold"]))
        cost = run_cost(r, gold_cost)
        for k in COST_KEYS:
            add(r["method"], f"cost_{k}", cost.get(k))
            add(r["method"], f"cost_vs_gold_{k}", (cost.get("vs_gold") or {}).get(k))
    table = {
        row: {k: _stats(v, ci=k in ("avg_gap", "avg_gap_estimate")) for k, v in metrics.items() if v}
        for row, metrics in rows.items()
    }
    gold = table.get("Gold")
    if gold and "jsd" in gold and gold["jsd"]["mean"] < 1e-12:
        gold["jsd"] = _stats([0.0] * gold["jsd"]["n"])
    methods = [m for m in table if m not in ("Original", "Gold")]
    pcc = {"includes_gold": False}
    for a, b in (("jsd", "rf_jsd"), ("avg_gap", "rf_jsd"), ("avg_gap", "jsd"), ("avg_gap", "avg_gap_estimate")):
        xs = [_mean(table[m], a) for m in methods]
        ys = [_mean(table[m], b) for m in methods]
        pts = [(x, y) for x, y in zip(xs, ys, strict=True) if x is not None and y is not None]
        if len(pts) >= 3 and np.std([p[0] for p in pts]) > 0 and np.std([p[1] for p in pts]) > 0:
            from scipy.stats import pearsonr

            r, p = pearsonr([p[0] for p in pts], [p[1] for p in pts])
            pcc[f"{a}~{b}"] = {"r": float(r), "p": float(p), "n": len(pts)}
        else:
            pcc[f"{a}~{b}"] = None
    return {"rows": table, "pcc": pcc, "ranking": ranking(table)}


def _seed_gap(metrics: dict, gold: dict) -> float | None:
    from ..evaluation.metrics import avg_gap
    from ..evaluation.metrics_table import GAP_KEYS

    if all(k in metrics and k in gold for k in GAP_KEYS):
        return avg_gap(metrics, gold)
    return None


def ranking(table: dict) -> list[dict]:
    """Methods (and the Original) by mean Avg Gap, each with the rows whose 95 % intervals overlap its own."""
    rows = [(m, st["avg_gap"]) for m, st in table.items() if m != "Gold" and "avg_gap" in st]
    rows.sort(key=lambda x: x[1]["mean"])
    out = []
    for rank, (m, st) in enumerate(rows, 1):
        lo, hi = st.get("ci95") or (st["mean"], st["mean"])
        overlaps = [
            o
            for o, ost in rows
            if o != m
            and (ost.get("ci95") or (ost["mean"], ost["mean"]))[0] <= hi
            and (ost.get("ci95") or (ost["mean"], ost["mean"]))[1] >= lo
        ]
        out.append({"rank": rank, "row": m, "avg_gap": st["mean"], "ci95": st.get("ci95"), "overlaps": overlaps})
    return out


def _default_alpha(method: str) -> float | None:
    from ..methods import get_method_class

    try:
        return float(get_method_class(method).config_class().alpha)
    except Exception:  # not a LoTUS-type method
        return None


def alpha_search_summary(runs: list[dict]) -> dict:
    """Per method and seed: the alpha the retrain-free estimate picked (no gold) vs the hindsight-best alpha by Avg
    Gap (needs gold), the method's default alpha and the untouched Original.

    ``{method: {"per_seed": [{seed, picked_alpha, picked_gap, best_alpha, best_gap, regret, default_alpha,
    default_gap, original_gap, gaps, estimates}], "n", "differs", "mean_regret", "max_regret", "within_001",
    "picked_minus_default": {mean, values, ci95}, "worse_than_default_beyond_interval", "picked_minus_original"}}``.
    """
    summary: dict = {}
    for r in runs:
        search = r.get("alpha_search")
        cands = [c for c in (search or {}).get("candidates", []) if "avg_gap" in c]
        if not cands:
            continue
        picked = next(c for c in cands if c["selected"])
        best = min(cands, key=lambda c: c["avg_gap"])
        # the alpha this run would use without the search: the dataset preset's (digits: 32), else the class default
        preset = ((r.get("overrides") or {}).get("method_config") or {}).get("alpha")
        default_alpha = float(preset) if preset is not None else _default_alpha(r["method"])
        default = next((c for c in cands if default_alpha is not None and c["alpha"] == default_alpha), None)
        entry = summary.setdefault(r["method"], {"per_seed": []})
        entry["per_seed"].append(
            {
                "seed": r["seed"],
                "picked_alpha": picked["alpha"],
                "picked_gap": picked["avg_gap"],
                "best_alpha": best["alpha"],
                "best_gap": best["avg_gap"],
                "regret": picked["avg_gap"] - best["avg_gap"],
                "default_alpha": default_alpha,
                "default_gap": default["avg_gap"] if default else None,
                "original_gap": (r.get("original") or {}).get("avg_gap"),
                "gaps": {str(c["alpha"]): c["avg_gap"] for c in cands},
                "estimates": {str(c["alpha"]): c.get("avg_gap_estimate_selection") for c in cands},
            }
        )
    for entry in summary.values():
        per_seed = entry["per_seed"]
        regrets = [p["regret"] for p in per_seed]
        entry.update(
            n=len(regrets),
            differs=sum(p["picked_alpha"] != p["best_alpha"] for p in per_seed),
            mean_regret=float(np.mean(regrets)),
            max_regret=float(np.max(regrets)),
            within_001=sum(x <= 0.01 for x in regrets),
        )
        for name, key in (("picked_minus_default", "default_gap"), ("picked_minus_original", "original_gap")):
            diffs = [p["picked_gap"] - p[key] for p in per_seed if p.get(key) is not None]
            entry[name] = (
                {"mean": float(np.mean(diffs)), "values": diffs, "ci95": bootstrap_ci95(diffs)} if diffs else None
            )
        d = entry["picked_minus_default"]
        # "worse beyond seed noise": the whole interval of (picked - default) lies above 0
        entry["worse_than_default_beyond_interval"] = (
            bool(d["ci95"][0] > 0) if d and d["ci95"] else (bool(d["mean"] > 0) if d else None)
        )
    return summary


def verdict_summary(runs: list[dict]) -> dict:
    """How the retrain-free Avg Gap estimate ranks what the true Avg Gap ranks: Spearman over every method's run and
    every alpha candidate, per (seed) cell and pooled over the seeds' means."""
    points_by_seed: dict = {}
    for r in runs:
        u = r.get("unlearned") or {}
        pts = points_by_seed.setdefault(r["seed"], {})
        if "avg_gap" in u and "avg_gap_estimate" in u and not r.get("alpha_search"):  # else: its candidates below
            pts[r["method"]] = (u["avg_gap_estimate"], u["avg_gap"])
        for c in (r.get("alpha_search") or {}).get("candidates", []):
            if "avg_gap" in c and "avg_gap_estimate" in c:
                pts[f"{r['method']}@alpha={c['alpha']:g}"] = (c["avg_gap_estimate"], c["avg_gap"])
        o = r.get("original") or {}
        if "avg_gap" in o and "avg_gap_estimate" in o:
            pts["Original"] = (o["avg_gap_estimate"], o["avg_gap"])
    per_seed = {}
    for seed, pts in points_by_seed.items():
        names = sorted(pts)
        per_seed[str(seed)] = spearman([pts[n][0] for n in names], [pts[n][1] for n in names])
    names = sorted(set.intersection(*(set(p) for p in points_by_seed.values()))) if points_by_seed else []
    means = {
        n: (
            float(np.mean([points_by_seed[s][n][0] for s in points_by_seed])),
            float(np.mean([points_by_seed[s][n][1] for s in points_by_seed])),
        )
        for n in names
    }
    rhos = [v["rho"] for v in per_seed.values() if v]
    return {
        "spearman_of_means": spearman([means[n][0] for n in names], [means[n][1] for n in names]),
        "spearman_per_seed": per_seed,
        "spearman_per_seed_mean": float(np.mean(rhos)) if rhos else None,
        "points": {n: {"estimate": e, "avg_gap": g} for n, (e, g) in means.items()},
    }


def _mean(stats: dict, key: str):
    v = stats.get(key)
    if v is None:
        return None
    return v if isinstance(v, float) else v["mean"]
