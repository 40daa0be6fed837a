"""The benchmark: the LoTUS paper's protocol (SPEC §1, §4.8) on offline data, every registered method side by side.

For each (dataset, model family, seed): an original model trained on ``train`` and a gold model trained with the
same recipe on the retain set only (both cached on disk under ``cache_dir()/benchmark`` by dataset, family, seed,
recipe and forget rule); the forget set is the first 10 % of each class (SPEC §1.1: deterministic, seed-independent)
or one whole class (``class_unlearning``); every method runs with its defaults through :class:`UnlearningTrainer`
and is evaluated with :meth:`UnlearningTrainer.evaluate_unlearning` against the original's and the gold's
predictions. Aggregation (SPEC §4.8): mean ± std over seeds per metric, Avg Gap = mean over MIA and forget /
retain / test accuracy of |seed-mean(method) - seed-mean(gold)| (a gap of means, not a mean of per-seed gaps),
JSD and RF-JSD × 1e4, Pearson correlation of (JSD, RF-JSD) across the methods including the Gold row (SPEC §5.4).

Departures, documented: Avg Gap uses unrounded seed means (the paper rounds means to 2 decimals first; the
rounded variant is stored as ``avg_gap_rounded``); runtimes are seconds on this machine (the paper: minutes on a
GPU); on digits (125 forget images) LoTUS uses the embedded preset of ``cli.EMBEDDED_DEFAULT_PRESET`` (alpha 32,
batch 32, lr 5e-4), because the paper's CIFAR-sized defaults make a handful of steps there and forget nothing.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import tempfile
import time
import traceback
from typing import Callable, Sequence

import numpy as np
import torch

from .evaluation import GAP_KEYS, predict_splits
from .metrics_table import METRICS

__all__ = ["RECIPES", "PAPER_SEEDS", "run_benchmark", "summarize", "markdown_report", "plot_gap_vs_runtime",
           "load_benchmark_dataset"]

PAPER_SEEDS = (3407, 13, 12)  # SPEC §1.1

#: (dataset, family) -> original/gold training recipe. Fashion-MNIST: the 10k-image train subset of NOTES, sized so
#: one training takes about a minute on 2 idle cores; the benchmark records train vs test accuracy (memorisation).
RECIPES = {
    ("digits", "resnet"): {"image_size": 8, "epochs": 30, "learning_rate": 3e-3, "batch_size": 64},
    ("digits", "vit"): {"image_size": 16, "epochs": 40, "learning_rate": 2e-3, "batch_size": 64},
    ("fashion_mnist", "resnet"): {"image_size": 28, "epochs": 20, "learning_rate": 3e-3, "batch_size": 128},
    ("fashion_mnist", "vit"): {"image_size": 28, "epochs": 20, "learning_rate": 2e-3, "batch_size": 128},
}

#: Small-dataset overrides (documented in the module docstring): digits has 125 forget images.
SMALL_DATASET_OVERRIDES = {"digits": {"lotus": {"alpha": 32.0, "per_device_train_batch_size": 32, "learning_rate": 5e-4},
                                      "salun_lotus": {"alpha": 32.0, "per_device_train_batch_size": 32,
                                                      "learning_rate": 5e-4}}}
#: Class unlearning (SPEC §5.6): LoTUS with class_unlearning=True and alpha 32 (salun_lotus shares LoTUS' config).
CLASS_UNLEARNING_CONFIG = {"lotus": {"class_unlearning": True, "alpha": 32.0},
                           "salun_lotus": {"class_unlearning": True, "alpha": 32.0}}
METRIC_KEYS = ("mia", "acc_forget", "acc_retain", "acc_test", "acc_val", "jsd", "rf_jsd", "runtime_s")  # summarised per method
SCALED = {k: m.table_scale for k, m in METRICS.items() if m.table_scale != 1.0}  # the paper reports JSDiv x 1e4


def load_benchmark_dataset(name: str, train_size: int = 10_000):
    if name == "digits":
        from .builtin import load_digits_dataset

        return load_digits_dataset()
    if name == "fashion_mnist":
        from .datasets_fashion import load_fashion_mnist

        return load_fashion_mnist(train_size=train_size)
    raise ValueError(f"unknown benchmark dataset {name!r}; use 'digits' or 'fashion_mnist'.")


def _predict(model: torch.nn.Module, split, batch_size: int = 512) -> torch.Tensor:
    from .modeling import logits_of

    model.eval()
    with torch.inference_mode():
        return torch.cat([logits_of(model, px).float() for _, px, _ in split.batches(batch_size)])


def _train_or_load(kind: str, dataset: str, family: str, seed: int, recipe: dict, rule: dict, split, names,
                   say: Callable[[str], None]):
    """The original (``kind="original"``, trained on train) or gold (on retain) model, cached by its recipe."""
    from .builtin import build_image_classifier, cache_dir, train_classifier
    from .modeling import load_classifier, save_classifier

    key_src = [kind, dataset, family, seed, recipe, rule if kind == "gold" else None, len(split)]
    key = hashlib.sha256(json.dumps(key_src, sort_keys=True, default=str).encode()).hexdigest()[:12]
    path = os.path.join(cache_dir(), "benchmark", f"{dataset}-{family}-seed{seed}-{kind}-{key}")
    if os.path.isfile(os.path.join(path, "model.safetensors")):
        with open(os.path.join(path, "training.json")) as f:
            info = json.load(f)
        say(f"  {kind}: cached ({path})")
        return load_classifier(path).model.eval(), info
    model, processor = build_image_classifier(family, len(names), recipe["image_size"], label_names=names, seed=seed)
    n_params = sum(p.numel() for p in model.parameters())
    say(f"  {kind}: training {family} ({n_params / 1e6:.2f}M params) on {len(split)} images, {recipe['epochs']} epochs ...")
    seconds = train_classifier(model, split, epochs=recipe["epochs"], learning_rate=recipe["learning_rate"],
                               batch_size=recipe["batch_size"], seed=seed)
    info = {"kind": kind, "dataset": dataset, "family": family, "seed": seed, "recipe": recipe, "rule": rule,
            "train_rows": len(split), "train_seconds": seconds, "params": n_params,
            "loadavg": open("/proc/loadavg").read().split()[:3] if os.path.exists("/proc/loadavg") else None}
    tmp = path + f".tmp{os.getpid()}"
    save_classifier(model, tmp, processor)
    with open(os.path.join(tmp, "training.json"), "w") as f:
        json.dump(info, f, indent=2)
    if os.path.isdir(path):
        import shutil

        shutil.rmtree(tmp)
    else:
        os.replace(tmp, path)
    say(f"  {kind}: trained in {seconds:.1f}s")
    return model.eval(), info


def _loadavg() -> list[str] | None:
    try:
        return open("/proc/loadavg").read().split()[:3]
    except OSError:
        return None


# ---------------------------------------------------------------------------------------------------------------
def run_benchmark(
    *,
    dataset: str = "digits",
    families: Sequence[str] = ("resnet", "vit"),
    seeds: Sequence[int] = PAPER_SEEDS,
    methods: Sequence[str] | None = None,
    forget_fraction: float = 0.1,
    forget_class: int | None = None,
    method_epochs: float | None = None,
    recipe_overrides: dict | None = None,
    train_size: int = 10_000,
    name: str | None = None,
    results_dir: str = "results",
    resume: bool = False,
    progress: Callable[[str], None] = print,
    alpha_search: Sequence[float] | None = None,
) -> dict:
    """Run the benchmark and write ``results/<name>.json``, ``.md`` and ``.png``; returns the JSON object.

    ``forget_class``: class unlearning (forget every sample of that class index) instead of ``forget_fraction``.
    ``method_epochs``: override every method's ``num_train_epochs`` (the quick mode); ``recipe_overrides``:
    fields replacing the original/gold training recipe (e.g. ``{"epochs": 3}`` in tests).
    ``alpha_search``: LoTUS (and SalUn + LoTUS) pick alpha among these by RF-JSD on the validation split
    (:func:`hf_unlearn.search_alpha`, no gold model); each run records every candidate with its Avg Gap to the gold
    model, and the report compares the picked alpha with the hindsight-best one per seed.
    """
    from . import UnlearningArguments, UnlearningTrainer, list_methods, search_alpha, select_forget
    from .builtin import build_image_classifier
    from .splits import to_image_split

    def say(msg: str) -> None:
        progress(f"[benchmark {time.strftime('%H:%M:%S')}] {msg}")

    methods = list(methods or list_methods())
    class_mode = forget_class is not None
    name = name or f"{dataset}{'-class' if class_mode else ''}"
    os.makedirs(results_dir, exist_ok=True)
    json_path = os.path.join(results_dir, f"{name}.json")
    config = {"dataset": dataset, "families": list(families), "seeds": list(seeds), "methods": methods,
              "forget": {"class": forget_class} if class_mode else {"fraction_per_class": forget_fraction, "mode": "first"},
              "method_epochs": method_epochs, "recipe_overrides": recipe_overrides or {},
              "train_size": train_size if dataset != "digits" else None}
    if alpha_search:
        config["alpha_search"] = [float(a) for a in alpha_search]
    out = {"name": name, "config": config, "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                                                        "loadavg_start": _loadavg()},
           "models": {}, "runs": []}
    done = set()
    if resume and os.path.isfile(json_path):
        with open(json_path) as f:
            previous = json.load(f)
        if previous.get("config") == config:
            out["runs"] = [r for r in previous["runs"] if not r.get("error")]
            out["models"] = previous.get("models", {})
            done = {(r["family"], r["seed"], r["method"]) for r in out["runs"]}
            say(f"resuming: {len(done)} runs already in {json_path}")

    say(f"{name}: dataset={dataset} families={list(families)} seeds={list(seeds)} methods={methods}")
    data = load_benchmark_dataset(dataset, train_size)
    train, validation, test = data["train"], data["validation"], data["test"]
    names = train.features["label"].names
    if class_mode:
        rule = {"classes": [forget_class]}
    else:
        rule = {"fraction_per_class": forget_fraction, "mode": "first"}
    selection = select_forget(train, num_labels=len(names), dataset_name=dataset, split="train", **rule)
    say(f"forget {selection.record.num_removed} / retain {selection.record.num_retained} "
        f"({selection.record.selection['description']})")
    failures = []
    start_all = time.perf_counter()

    splits_by_family = {}
    for seed in seeds:
        for family in families:
            recipe = dict(RECIPES[(dataset, family)], **(recipe_overrides or {}))
            if family not in splits_by_family:
                _, processor = build_image_classifier(family, len(names), recipe["image_size"], label_names=names)
                transform = (lambda p: lambda batch: {
                    "pixel_values": p(images=batch["image"], return_tensors="pt")["pixel_values"], "label": batch["label"]})(processor)
                splits_by_family[family] = {
                    "train": to_image_split(train, transform, name="train"),
                    "forget": to_image_split(selection.forget, transform, name="forget"),
                    "retain": to_image_split(selection.retain, transform, name="retain"),
                    "validation": to_image_split(validation, transform, name="validation"),
                    "test": to_image_split(test, transform, name="test")}
            s = splits_by_family[family]
            say(f"== {dataset} / {family} / seed {seed}")
            original, o_info = _train_or_load("original", dataset, family, seed, recipe, rule, s["train"], names, say)
            gold, g_info = _train_or_load("gold", dataset, family, seed, recipe, rule, s["retain"], names, say)
            eval_splits = {k: s[k] for k in ("forget", "retain", "test", "validation")}
            original_p = predict_splits(lambda sp: _predict(original, sp), eval_splits)
            gold_p = predict_splits(lambda sp: _predict(gold, sp), eval_splits)
            out["models"][f"{family}/{seed}"] = {"original": o_info, "gold": g_info}
            for method in methods:
                if (family, seed, method) in done:
                    continue
                run = {"family": family, "seed": seed, "method": method}
                settings = dict(report_to="none", save_strategy="no", use_cpu=True, disable_tqdm=True,
                                logging_strategy="no", seed=seed)
                settings.update({k: v for k, v in SMALL_DATASET_OVERRIDES.get(dataset, {}).get(method, {}).items()
                                 if k in ("per_device_train_batch_size", "learning_rate")})
                if method_epochs is not None:
                    settings["num_train_epochs"] = method_epochs
                method_config = {k: v for k, v in SMALL_DATASET_OVERRIDES.get(dataset, {}).get(method, {}).items()
                                 if k not in ("per_device_train_batch_size", "learning_rate")}
                if class_mode:
                    method_config.update(CLASS_UNLEARNING_CONFIG.get(method, {}))
                run["overrides"] = {"training": {k: v for k, v in settings.items()
                                                 if k in ("per_device_train_batch_size", "learning_rate", "num_train_epochs")},
                                    "method_config": method_config}
                say(f"  {method}: running ...")
                t0 = time.perf_counter()
                try:
                    with tempfile.TemporaryDirectory() as tmp:
                        args = UnlearningArguments.for_method(method, output_dir=tmp, **settings)

                        def make_trainer(alpha=None, method=method, args=args, method_config=method_config):
                            config = dict(method_config, alpha=alpha) if alpha is not None else method_config
                            return UnlearningTrainer(copy.deepcopy(original), args, forget_dataset=s["forget"],
                                                     retain_dataset=s["retain"], calibration_dataset=s["validation"],
                                                     method_config=config or None, removal_record=selection.record)

                        if alpha_search and searches_alpha(method):
                            search = search_alpha(make_trainer, alpha_search, test_dataset=s["test"],
                                                  validation_dataset=s["validation"], original=original_p, gold=gold_p)
                            trainer, res = search.trainer, search.results
                            run["alpha_search"] = search.to_dict()
                        else:
                            trainer = make_trainer()
                            trainer.train()
                            res = trainer.evaluate_unlearning(s["test"], s["validation"], original=original_p,
                                                              gold=gold_p, log=False)
                    run["unlearned"] = res["unlearned"]
                    run["unlearned"]["runtime_s"] = trainer.unlearning_runtime_s
                    run["original"] = res["original"]
                    run["gold"] = res["gold"]
                    run["global_steps"] = trainer.state.global_step
                    u = res["unlearned"]
                    say(f"  {method}: {trainer.unlearning_runtime_s:.1f}s  forget {u['acc_forget']:.3f} retain "
                        f"{u['acc_retain']:.3f} test {u['acc_test']:.3f} MIA {u['mia']:.3f} gap {u['avg_gap']:.4f}")
                except Exception as e:  # tolerate a failing method, loudly
                    run["error"] = f"{type(e).__name__}: {e}"
                    run["traceback"] = traceback.format_exc()[-4000:]
                    failures.append(f"{family}/{seed}/{method}: {run['error']}")
                    progress("!" * 100 + f"\n!!! METHOD FAILED: {method} ({family}, seed {seed}) after "
                             f"{time.perf_counter() - t0:.1f}s: {run['error']}\n" + "!" * 100)
                run["loadavg"] = _loadavg()
                out["runs"].append(run)
                _write(out, results_dir, name, families)
    out["machine"]["loadavg_end"] = _loadavg()
    out["wall_s"] = time.perf_counter() - start_all
    out["failures"] = failures
    _write(out, results_dir, name, families)
    say(f"done in {out['wall_s']:.0f}s; wrote {json_path} (+ .md, .png)")
    if failures:
        progress("!!! FAILED METHODS:\n  " + "\n  ".join(failures))
    return out


def _write(out: dict, results_dir: str, name: str, families) -> None:
    out["summary"] = {family: summarize([r for r in out["runs"] if r["family"] == family and not r.get("error")],
                                        {k: v for k, v in out["models"].items() if k.startswith(family + "/")})
                      for family in families}
    for family in families:
        out["summary"][family]["alpha_search"] = alpha_search_summary(
            [r for r in out["runs"] if r["family"] == family and not r.get("error")])
    path = os.path.join(results_dir, name)
    with open(path + ".json.tmp", "w") as f:
        json.dump(out, f, indent=1, default=str)
    os.replace(path + ".json.tmp", path + ".json")
    with open(path + ".md", "w") as f:
        f.write(markdown_report(out))
    try:
        plot_gap_vs_runtime(out, path + ".png")
    except Exception as e:  # a plotting failure must not lose the numbers
        print(f"!!! plotting failed: {e}")


# ---------------------------------------------------------------------------------------------------------------
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


def searches_alpha(method: str) -> bool:
    """Whether ``--alpha_search`` applies: LoTUS-type configs (an ``alpha_search`` field); SCRUB's ``alpha`` is an
    unrelated KL weight."""
    from .methods import get_method_class

    return "alpha_search" in getattr(get_method_class(method).config_class, "__dataclass_fields__", {})


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


def _fmt(stats: dict, key: str, digits: int = 3) -> str:
    if key not in stats:
        return "–"
    s = stats[key]
    scale = SCALED.get(key, 1.0)
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
