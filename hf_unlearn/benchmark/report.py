"""The benchmark's report: ``results/<name>.md`` (the paper's table layout) and ``results/<name>.png`` (Avg Gap vs
runtime). Display scales (JSD, RF-JSD × 1e4) come from the one metrics table (hf_unlearn.evaluation.metrics_table).
"""

from __future__ import annotations

from ..evaluation.metrics_table import display_scale

__all__ = ["markdown_report", "plot_gap_vs_runtime"]


def _fmt(stats: dict, key: str, digits: int = 3) -> str:
    if key not in stats:
        return "–"
    s = stats[key]
    scale = display_scale(key)
    if s["n"] > 1:
        return f"{s['mean'] * scale:.{digits}f}±{s['std'] * scale:.{digits}f}"
    return f"{s['mean'] * scale:.{digits}f}"


def _method_label(row: str) -> str:
    """Display name and paper link(s) of a method row, from the method class (``–`` for Original / Gold)."""
    if row in ("Original", "Gold"):
        return "–"
    from ..methods import method_facts

    facts = method_facts(row)
    links = ", ".join(f"[arXiv {p['arxiv_id']}]({p['url']})" for p in facts["papers"])
    return f"{facts['display_name']} ({links})" if links else facts["display_name"]


def _gap(st: dict, key: str = "avg_gap") -> str:
    v = st.get(key)
    if not isinstance(v, dict):
        return "–"
    ci = v.get("ci95")
    return f"{v['mean']:.4f}" + (f" [{ci[0]:.4f}, {ci[1]:.4f}]" if ci else "")


def _cost(st: dict) -> str:
    ex, vs, sec = st.get("cost_examples"), st.get("cost_vs_gold_examples"), st.get("cost_vs_gold_seconds")
    if not ex:
        return "– | –"
    return f"{ex['mean']:,.0f} | " + (f"{vs['mean']:.2f} / {sec['mean']:.2f}" if vs and sec else "–")


def _num(v, spec: str = ".4f") -> str:
    return "–" if v is None else format(v, spec)


def _table(table: dict) -> list[str]:
    lines = [
        "| row | MIA | forget acc | retain acc | test acc | Avg Gap [95 % CI] | est. Avg Gap (retrain-free) | "
        "JSD | RF-JSD | t (s) | examples | cost vs Gold (examples / s) | method (paper) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    order = ["Original", "Gold"] + sorted(
        (m for m in table if m not in ("Original", "Gold")),
        key=lambda m: (table[m].get("avg_gap") or {}).get("mean", float("inf")),
    )
    for row in order:
        if row not in table:
            continue
        st = table[row]
        lines.append(
            f"| {row} | {_fmt(st, 'mia', 2)} | {_fmt(st, 'acc_forget')} | {_fmt(st, 'acc_retain')} | "
            f"{_fmt(st, 'acc_test')} | {_gap(st)} | {_gap(st, 'avg_gap_estimate')} | {_fmt(st, 'jsd', 2)} | "
            f"{_fmt(st, 'rf_jsd', 2)} | {_fmt(st, 'runtime_s', 1)} | {_cost(st)} | {_method_label(row)} |"
        )
    return lines


def _ranking(summary: dict) -> list[str]:
    out = []
    for r in summary.get("ranking") or []:
        overlap = ", ".join(r["overlaps"]) if r["overlaps"] else "none"
        out.append(f"{r['rank']}. {r['row']} {r['avg_gap']:.4f}; interval overlaps: {overlap}")
    return out


def markdown_report(out: dict) -> str:
    """``results/<name>.md``: per family, the table at each method's defaults and at equal budget (Avg Gap with its
    95 % interval, the retrain-free estimate, cost beside score), the ranking with overlapping intervals, the PCCs
    among the methods, the retrain-free verdict's agreement with the Avg Gap, the alpha search's pick, then any
    failed runs."""
    cfg = out["config"]
    forget = (
        "class " + str(cfg["forget"]["class"])
        if "class" in cfg["forget"]
        else f"{int(cfg['forget']['fraction_per_class'] * 100)} % per class (first rows)"
        if "fraction_per_class" in cfg["forget"]
        else str(cfg["forget"].get("description", cfg["forget"]))
    )
    lines = [f"# Benchmark `{out['name']}`: {cfg['dataset']}, forget {forget}", ""]
    if out.get("description"):
        lines += [out["description"], ""]
    lines += [
        f"Seeds {cfg['seeds']}, independent (own data order and validation/test partition per seed). Metrics: "
        "mean ± std over the seeds that completed (n per cell in the JSON). **Avg Gap**: per seed, the mean over "
        "MIA and forget / retain / test accuracy of |method − that seed's Gold|; then the mean over seeds, with "
        "a 95 % bootstrap interval over seeds. **est. Avg Gap**: the retrain-free estimate (no Gold: each term's "
        "target from the original on held-out data). The targets of MIA, forget accuracy and RF-JSD are the "
        "Gold's values (not 0). JSD, RF-JSD × 1e4. t = wall seconds (Original/Gold: training time). examples = "
        "rows through a forward + backward pass (training steps and the method's gradient passes); cost vs Gold "
        "= fraction of the Gold retraining's examples / seconds. "
        f"Machine: {out['machine'].get('cpus')} CPUs, load average at start {out['machine'].get('loadavg_start')}, "
        f"at end {out['machine'].get('loadavg_end')} (shared machine: timings are noisy).",
        "",
    ]
    for family, summary in out.get("summary", {}).items():
        table = summary["rows"]
        if not table:
            continue
        info = {k: v for k, v in out["models"].items() if k.startswith(family + "/")}
        params = next(iter(info.values()))["original"].get("params") if info else None
        lines += [
            f"## {family}" + (f" ({params / 1e6:.2f}M parameters)" if params else ""),
            "",
            "### Each method at its defaults",
            "",
        ] + _table(table)
        lines += [
            "",
            "Ranking by Avg Gap (rows whose 95 % intervals overlap cannot be told apart on these seeds):",
            "",
        ]
        lines += _ranking(summary) + [""]
        eq = summary.get("equal_budget")
        if eq and eq.get("rows"):
            lines += ["### At equal budget", "", f"Rule: {cfg.get('equal_budget', {}).get('rule', '')}.", ""]
            lines += _table(eq["rows"]) + ["", "Ranking at equal budget:", ""] + _ranking(eq) + [""]
        pcc = summary["pcc"]
        shown = {k: v for k, v in pcc.items() if k != "includes_gold"}
        lines += [
            "PCCs across the methods (the Gold and Original rows excluded): "
            + "; ".join(
                f"({k.replace('~', ', ')}) " + (f"r = {v['r']:.2f} (p = {v['p']:.4f}, n = {v['n']})" if v else "n/a")
                for k, v in shown.items()
            ),
            "",
        ]
        verdict = summary.get("retrain_free") or {}
        rho = verdict.get("spearman_of_means")
        per_seed = verdict.get("spearman_per_seed") or {}
        lines += [
            "Retrain-free verdict: Spearman between the estimated and the true Avg Gap over every method and "
            "alpha candidate: "
            + (f"ρ = {rho['rho']:.2f} (n = {rho['n']}) on the seed means" if rho else "n/a")
            + (
                "; per seed " + ", ".join(f"{k}: {v['rho']:.2f}" if v else f"{k}: n/a" for k, v in per_seed.items())
                if per_seed
                else ""
            )
            + ".",
            "",
        ]
        for method, entry in (summary.get("alpha_search") or {}).items():
            lines += [
                f"Retrain-free alpha search ({method}, candidates {cfg.get('alpha_search')}, picked by the "
                "estimated Avg Gap on validation; hindsight-best by the true Avg Gap, per seed):",
                "",
                "| seed | picked α | Avg Gap (picked) | hindsight-best α | Avg Gap (best) | regret | "
                "default α | Avg Gap (default) | Avg Gap (Original) |",
                "|---|---|---|---|---|---|---|---|---|",
            ]
            for p in entry["per_seed"]:
                lines.append(
                    f"| {p['seed']} | {p['picked_alpha']:g} | {p['picked_gap']:.4f} | {p['best_alpha']:g} | "
                    f"{p['best_gap']:.4f} | {p['regret']:.4f} | {_num(p.get('default_alpha'), 'g')} | "
                    f"{_num(p.get('default_gap'))} | {_num(p.get('original_gap'))} |"
                )
            d = entry.get("picked_minus_default")
            lines += [
                "",
                f"Picked = hindsight-best in {entry['n'] - entry['differs']} of {entry['n']} seeds; within "
                f"0.01 Avg Gap of it in {entry['within_001']} of {entry['n']}; regret mean "
                f"{entry['mean_regret']:.4f}, max {entry['max_regret']:.4f}. Picked − default α: "
                + (
                    f"{d['mean']:+.4f}" + (f" [{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}]" if d.get("ci95") else "")
                    if d
                    else "n/a"
                )
                + f"; worse than the default beyond the interval: {entry.get('worse_than_default_beyond_interval')}.",
                "",
            ]
        if info:
            lines += [
                "Original / Gold training time per seed: "
                + "; ".join(
                    f"seed {k.split('/')[1]}: {v['original']['train_seconds']:.0f}s / {v['gold']['train_seconds']:.0f}s "
                    f"(load {v['original'].get('loadavg')})"
                    for k, v in info.items()
                )
                + ". Memorisation: compare the Original row's retain/forget accuracy (train) with its test accuracy.",
                "",
            ]
    failed = [r for r in out["runs"] if r.get("error")]
    if failed:
        lines += (
            ["## Failed runs", ""]
            + [
                f"- {r['family']} seed {r['seed']} {r['method']} ({r.get('view', 'default')}): `{r['error'][:300]}`"
                for r in failed
            ]
            + [""]
        )
    return "\n".join(lines)


def plot_gap_vs_runtime(out: dict, path: str) -> None:
    """``results/<name>.png``: Avg Gap (mean over seeds, 95 % interval) against cost (examples as a fraction of the Gold
    retraining, log scale), one panel per family."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families = [f for f, s in out.get("summary", {}).items() if s["rows"]]
    fig, axes = plt.subplots(1, max(1, len(families)), figsize=(6 * max(1, len(families)), 4.5), squeeze=False)
    for ax, family in zip(axes[0], families, strict=False):
        table = out["summary"][family]["rows"]
        for m, st in table.items():
            gap, cost = st.get("avg_gap"), st.get("cost_vs_gold_examples")
            if m == "Original" or not isinstance(gap, dict) or not cost:
                continue
            x, y = cost["mean"], gap["mean"]
            ci = gap.get("ci95")
            color = "tab:red" if m == "lotus" else ("tab:green" if m == "Gold" else "tab:blue")
            if ci:
                ax.errorbar([x], [y], yerr=[[y - ci[0]], [ci[1] - y]], fmt="none", ecolor=color, alpha=0.5)
            ax.scatter([x], [y], s=60 if m in ("lotus", "Gold") else 30, color=color)
            ax.annotate(m, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.set_xscale("log")
        ax.set_xlabel("cost: examples processed / Gold retraining's (log scale)")
        ax.set_ylabel("Avg Gap (mean over seeds, 95 % CI; lower is better)")
        ax.set_title(f"{out['config']['dataset']} / {family}")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
