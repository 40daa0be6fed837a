"""The benchmark's report: ``results/<name>.md`` (the paper's table layout) and ``results/<name>.png`` (Avg Gap vs
runtime). Display scales (JSD, RF-JSD × 1e4) come from the one metrics table (hf_unlearn.metrics_table).
"""

from __future__ import annotations

from .metrics_table import display_scale

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
    from .methods import method_facts

    facts = method_facts(row)
    links = ", ".join(f"[arXiv {p['arxiv_id']}]({p['url']})" for p in facts["papers"])
    return f"{facts['display_name']} ({links})" if links else facts["display_name"]


def markdown_report(out: dict) -> str:
    """``results/<name>.md``: per family, the paper's table (mean ± std over seeds), the PCCs, the alpha search's
    picked vs hindsight-best alpha, the originals' training times, then any failed runs."""
    cfg = out["config"]
    lines = [f"# Benchmark `{out['name']}`: {cfg['dataset']}, forget "
             f"{'class ' + str(cfg['forget']['class']) if 'class' in cfg['forget'] else str(int(cfg['forget']['fraction_per_class'] * 100)) + ' % per class (first rows)'}",
             "",
             f"Seeds {cfg['seeds']}; mean ± std over the seeds that completed (n per cell in the JSON). Avg Gap = mean of "
             "|seed-mean − Gold seed-mean| over MIA, forget, retain, test accuracy (SPEC §4.8). JSD, RF-JSD × 1e4. "
             "t = wall seconds on this machine (Original/Gold: training time). "
             f"Machine: {out['machine'].get('cpus')} CPUs, load average at start {out['machine'].get('loadavg_start')}, "
             f"at end {out['machine'].get('loadavg_end')} (shared machine: timings are noisy).", ""]
    for family, summary in out.get("summary", {}).items():
        table = summary["rows"]
        if not table:
            continue
        info = {k: v for k, v in out["models"].items() if k.startswith(family + "/")}
        params = next(iter(info.values()))["original"].get("params") if info else None
        lines += [f"## {family}" + (f" ({params / 1e6:.2f}M parameters)" if params else ""), "",
                  "| method | MIA | forget acc | retain acc | test acc | Avg Gap | JSD | RF-JSD | t (s) | method (paper) |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        order = ["Original", "Gold"] + [m for m in table if m not in ("Original", "Gold")]
        for row in order:
            if row not in table:
                continue
            st = table[row]
            gap = f"{st['avg_gap']:.4f}" if "avg_gap" in st and row != "Original" else (
                f"({st['avg_gap']:.4f})" if "avg_gap" in st else "–")
            lines.append(f"| {row} | {_fmt(st, 'mia', 2)} | {_fmt(st, 'acc_forget')} | {_fmt(st, 'acc_retain')} | "
                         f"{_fmt(st, 'acc_test')} | {gap} | {_fmt(st, 'jsd', 2)} | {_fmt(st, 'rf_jsd', 2)} | "
                         f"{_fmt(st, 'runtime_s', 1)} | {_method_label(row)} |")
        pcc = summary["pcc"].get("jsd~rf_jsd")
        lines += ["", "PCC (JSD, RF-JSD) across methods incl. Gold: " +
                  (f"r = {pcc['r']:.2f} (p = {pcc['p']:.4f}, n = {pcc['n']})" if pcc else "n/a (too few points)"), ""]
        others = {k: v for k, v in summary["pcc"].items() if k != "jsd~rf_jsd" and v}
        if others:
            lines += ["Other PCCs: " + "; ".join(f"({k.replace('~', ', ')}) r = {v['r']:.2f} (p = {v['p']:.4f})"
                                                 for k, v in others.items()), ""]
        for method, entry in (summary.get("alpha_search") or {}).items():
            lines += [f"Retrain-free alpha search ({method}, candidates {cfg.get('alpha_search')}, picked by RF-JSD on "
                      "validation; hindsight-best by Avg Gap to Gold, per seed):", "",
                      "| seed | picked α | Avg Gap (picked) | hindsight-best α | Avg Gap (best) | regret |",
                      "|---|---|---|---|---|---|"]
            lines += [f"| {p['seed']} | {p['picked_alpha']:g} | {p['picked_gap']:.4f} | {p['best_alpha']:g} | "
                      f"{p['best_gap']:.4f} | {p['regret']:.4f} |" for p in entry["per_seed"]]
            lines += ["", f"Picked ≠ hindsight-best in {entry['differs']} of {entry['n']} seeds; regret mean "
                          f"{entry['mean_regret']:.4f}, max {entry['max_regret']:.4f}; within 0.01 Avg Gap in "
                          f"{entry['within_001']} of {entry['n']}.", ""]
        if info:
            lines += ["Original / Gold training time per seed: " + "; ".join(
                f"seed {k.split('/')[1]}: {v['original']['train_seconds']:.0f}s / {v['gold']['train_seconds']:.0f}s "
                f"(load {v['original'].get('loadavg')})" for k, v in info.items()) +
                      ". Memorisation: compare the Original row's retain/forget accuracy (train) with its test accuracy.", ""]
    failed = [r for r in out["runs"] if r.get("error")]
    if failed:
        lines += ["## Failed runs", ""] + [f"- {r['family']} seed {r['seed']} {r['method']}: `{r['error'][:300]}`"
                                          for r in failed] + [""]
    return "\n".join(lines)


def plot_gap_vs_runtime(out: dict, path: str) -> None:
    """``results/<name>.png``: Avg Gap against runtime (log scale), one panel per family."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families = [f for f, s in out.get("summary", {}).items() if s["rows"]]
    fig, axes = plt.subplots(1, max(1, len(families)), figsize=(6 * max(1, len(families)), 4.5), squeeze=False)
    for ax, family in zip(axes[0], families):
        table = out["summary"][family]["rows"]
        for m, st in table.items():
            if m == "Original" or "avg_gap" not in st or "runtime_s" not in st:
                continue
            x, y = st["runtime_s"]["mean"], st["avg_gap"]
            ax.scatter([x], [y], s=60 if m in ("lotus", "Gold") else 30,
                       color="tab:red" if m == "lotus" else ("tab:green" if m == "Gold" else "tab:blue"))
            ax.annotate(m, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.set_xscale("log")
        ax.set_xlabel("runtime (s, log scale; Gold = retraining time)")
        ax.set_ylabel("Avg Gap (lower is better)")
        ax.set_title(f"{out['config']['dataset']} / {family}")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
