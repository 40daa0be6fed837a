"""The benchmark's grid: (seed, family) cells x methods over a :class:`GridSource`, with the honest protocol of
:mod:`hf_unlearn.benchmark.protocol` (derived seeds, per-seed held-out split, cost, the equal-budget view). The built-in
datasets (``hf_unlearn.benchmark.protocol.run_benchmark``) and a user's own model and data
(``hf_unlearn.benchmark.user.run_user_benchmark``) both run through :func:`run_grid`. One method's run on a cell
(its overrides, training or alpha search, evaluation and cost) is :mod:`hf_unlearn.benchmark.method_run`.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ..evaluation.metrics import predict_splits
from .method_run import _Cell, _run_method
from .models import _loadavg, _predict, _train_or_load, _training_cost, heldout_for_seed
from .report import markdown_report, plot_gap_vs_runtime
from .summary import alpha_search_summary, summarize, verdict_summary

#: The method whose examples processed set the equal-budget view's budget (per seed and family).
BUDGET_METHOD = "lotus"


@dataclass
class GridSource:
    """What a benchmark grid runs on: the dataset (train / validation / test), its class names, the forget
    selection and rule, the original/gold recipe per family, how to build an untrained model of a family
    (``build(family, recipe, names, seed) -> (model, processor)``; None: the built-in small classifiers), and the
    method overrides that apply to this dataset."""

    dataset: str
    data: Any
    names: list
    selection: Any
    rule: dict
    recipe: Callable[[str], dict]
    build: Callable | None
    method_overrides: Callable[[str], dict]
    description: str = ""
    #: added to the original/gold cache key when set: what identifies a user's model and data
    cache_key: Any = None


def run_grid(
    grid: GridSource,
    *,
    config: dict,
    name: str,
    results_dir: str,
    json_path: str,
    resume: bool,
    say,
    progress,
    progress_bar: bool,
    families,
    seeds,
    methods,
    method_epochs,
    class_mode: bool,
    alpha_search,
    equal_budget: bool,
) -> dict:
    """The (seed, family) cells x methods of a benchmark over ``grid``; writes the results after every run."""
    out = {
        "name": name,
        "config": config,
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "loadavg_start": _loadavg()},
        "models": {},
        "runs": [],
    }
    if grid.description:
        out["description"] = grid.description
    done = _resume_from(out, json_path, say) if resume else set()
    selection = grid.selection
    say(f"{name}: dataset={grid.dataset} families={list(families)} seeds={list(seeds)} methods={methods}")
    say(
        f"forget {selection.record.num_removed} / retain {selection.record.num_retained} "
        f"({selection.record.selection['description']})"
    )
    failures: list[str] = []
    start_all = time.perf_counter()
    bar = _grid_bar(progress_bar, len(seeds) * len(families) * len(methods), len(done))

    base_splits: dict = {}
    for seed, family in itertools.product(seeds, families):  # seeds outer, families inner
        recipe = grid.recipe(family)
        if all((family, seed, m, "default") in done for m in methods) and not _budget_pending(
            out, family, seed, methods, equal_budget, done
        ):
            say(f"== {grid.dataset} / {family} / seed {seed}: every method already recorded")
            continue
        if family not in base_splits:
            base_splits[family] = _family_splits(grid, family, recipe)
        transform, splits = base_splits[family]
        heldout = heldout_for_seed(grid.data, seed)
        cell_splits = dict(splits, **{k: _to_split(heldout[k], transform, k) for k in ("validation", "test")})
        say(f"== {grid.dataset} / {family} / seed {seed}")
        cell = _prepare_cell(grid, family, seed, recipe, cell_splits, out, say)
        for method in methods:
            if (family, seed, method, "default") in done:
                continue
            run = _run_method(
                cell,
                method,
                selection,
                grid=grid,
                method_epochs=method_epochs,
                class_mode=class_mode,
                alpha_search=alpha_search,
                failures=failures,
                say=say,
                progress=progress,
            )
            out["runs"].append(run)
            _write(out, results_dir, name, families)
            bar.update(1)
        if equal_budget:
            for method, max_steps in _budget_reruns(out, family, seed, methods, done):
                bar.total += 1
                run = _run_method(
                    cell,
                    method,
                    selection,
                    grid=grid,
                    method_epochs=method_epochs,
                    class_mode=class_mode,
                    alpha_search=None,
                    failures=failures,
                    say=say,
                    progress=progress,
                    max_steps=max_steps,
                )
                out["runs"].append(run)
                _write(out, results_dir, name, families)
                bar.update(1)
    bar.close()
    out["machine"]["loadavg_end"] = _loadavg()
    out["wall_s"] = time.perf_counter() - start_all
    out["failures"] = failures
    _write(out, results_dir, name, families)
    say(f"done in {out['wall_s']:.0f}s; wrote {json_path} (+ .md, .png)")
    if failures:
        progress("!!! FAILED METHODS:\n  " + "\n  ".join(failures))
    return out


def _grid_bar(enabled: bool, total: int, already: int):
    from tqdm.auto import tqdm  # noqa: I001

    return tqdm(total=total, initial=min(already, total), desc="benchmark grid", unit="run", disable=not enabled)


def _benchmark_config(
    dataset,
    families,
    seeds,
    methods,
    forget_fraction,
    forget_class,
    method_epochs,
    recipe_overrides,
    train_size,
    alpha_search,
    equal_budget=True,
) -> dict:
    """The run's ``config`` block: a resumed run continues only an earlier run with the same block."""
    class_mode = forget_class is not None
    config = {
        "dataset": dataset,
        "families": list(families),
        "seeds": list(seeds),
        "methods": methods,
        "forget": {"class": forget_class} if class_mode else {"fraction_per_class": forget_fraction, "mode": "first"},
        "method_epochs": method_epochs,
        "recipe_overrides": recipe_overrides or {},
        "train_size": train_size if dataset != "digits" else None,
        "protocol": PROTOCOL,
    }
    if alpha_search:
        config["alpha_search"] = [float(a) for a in alpha_search]
    if equal_budget and BUDGET_METHOD in methods:
        config["equal_budget"] = {"budget_method": BUDGET_METHOD, "rule": EQUAL_BUDGET_RULE}
    return config


#: Version of the benchmark protocol: a resumed run never mixes runs of two protocols.
PROTOCOL = "evidence-1 (reinit_seed, data_seed and held-out split per seed, cost, equal budget, per-seed Avg Gap)"
EQUAL_BUDGET_RULE = (
    "each method whose default run processes more examples (forward + backward rows, its own "
    "preparation passes included) than LoTUS's run of the same seed and family (with an alpha "
    "search: its kept candidate's run) is run again with "
    "max_steps = floor((LoTUS's examples - its preparation examples) / batch size), at least 1; "
    "cheaper methods, and methods without training steps (SSD), keep their default run"
)


def _run_key(r: dict) -> tuple:
    return (r["family"], r["seed"], r["method"], r.get("view", "default"))


def _resume_from(out: dict, json_path: str, say: Callable[[str], None]) -> set:
    """With ``resume``: the runs and models of an earlier ``json_path`` with the same config (its failed runs are run
    again) are copied into ``out``; returns the (family, seed, method, view) already done."""
    if not os.path.isfile(json_path):
        return set()
    with open(json_path) as f:
        previous = json.load(f)
    if previous.get("config") != out["config"]:
        return set()
    out["runs"] = [r for r in previous["runs"] if not r.get("error")]
    out["models"] = previous.get("models", {})
    done = {_run_key(r) for r in out["runs"]}
    say(f"resuming: {len(done)} runs already in {json_path}")
    return done


def _budget_of(out: dict, family: str, seed: int) -> int | None:
    budget = next(
        (r for r in out["runs"] if _run_key(r) == (family, seed, BUDGET_METHOD, "default") and not r.get("error")),
        None,
    )
    if budget is None:
        return None
    search = budget.get("alpha_search")
    if search:  # one LoTUS run (the kept candidate), not the whole search
        return next(c["examples"] for c in search["candidates"] if c["selected"])
    return budget["cost"]["examples"]


def _budget_reruns(out: dict, family: str, seed: int, methods, done: set) -> list[tuple[str, int]]:
    """(method, max_steps) of the equal-budget runs still to do in one cell (module docstring, EQUAL_BUDGET_RULE)."""
    budget = _budget_of(out, family, seed)
    if budget is None:
        return []
    todo = []
    for method in methods:
        if method == BUDGET_METHOD or (family, seed, method, "equal_budget") in done:
            continue
        run = next(
            (r for r in out["runs"] if _run_key(r) == (family, seed, method, "default") and not r.get("error")), None
        )
        if (
            run is None
            or run["cost"]["examples"] <= budget
            or run.get("alpha_search")
            or not run["cost"]["examples_by_kind"].get("training")
        ):  # all preparation (SSD): nothing to cut
            continue
        per_step = max(1, run["cost"]["examples_per_step"])
        preparation = run["cost"]["examples_by_kind"].get("preparation", 0)
        todo.append((method, max(1, (budget - preparation) // per_step)))
    return todo


def _budget_pending(out, family, seed, methods, equal_budget, done) -> bool:
    return bool(equal_budget and _budget_reruns(out, family, seed, methods, done))


def _to_split(dataset, transform, name: str):
    from ..data.splits import to_image_split

    return to_image_split(dataset, transform, name=name)


def _family_splits(grid: GridSource, family: str, recipe: dict):
    """(image transform, the train / forget / retain splits) preprocessed for ``family``'s image processor (once per
    family; the validation and test splits are drawn per seed)."""
    from ..data.builtin import build_image_classifier

    if grid.build is None:
        _, processor = build_image_classifier(family, len(grid.names), recipe["image_size"], label_names=grid.names)
    else:
        _, processor = grid.build(family, recipe, grid.names, 0)
    transform = (
        lambda p: (
            lambda batch: {
                "pixel_values": p(images=batch["image"], return_tensors="pt")["pixel_values"],
                "label": batch["label"],
            }
        )
    )(processor)
    sel = grid.selection
    return transform, {
        "train": _to_split(grid.data["train"], transform, "train"),
        "forget": _to_split(sel.forget, transform, "forget"),
        "retain": _to_split(sel.retain, transform, "retain"),
    }


def _prepare_cell(
    grid: GridSource, family: str, seed: int, recipe: dict, s: dict, out: dict, say: Callable[[str], None]
) -> _Cell:
    """The original and gold models of one (dataset, family, seed), trained or from the cache, and their predictions;
    their training facts (and cost) go to ``out["models"]``."""
    original, o_info = _train_or_load("original", grid, family, seed, recipe, s["train"], say)
    gold, g_info = _train_or_load("gold", grid, family, seed, recipe, s["retain"], say)
    o_info, g_info = (
        dict(o_info, cost=_training_cost(o_info, recipe)),
        dict(g_info, cost=_training_cost(g_info, recipe)),
    )
    eval_splits = {k: s[k] for k in ("forget", "retain", "test", "validation")}
    original_p = predict_splits(lambda sp: _predict(original, sp), eval_splits)
    gold_p = predict_splits(lambda sp: _predict(gold, sp), eval_splits)
    out["models"][f"{family}/{seed}"] = {"original": o_info, "gold": g_info}
    return _Cell(grid.dataset, family, seed, s, original, original_p, gold_p)


def _write(out: dict, results_dir: str, name: str, families) -> None:
    ok = [r for r in out["runs"] if not r.get("error")]
    for r in ok:
        gold_cost = ((out["models"].get(f"{r['family']}/{r['seed']}") or {}).get("gold") or {}).get("cost")
        if r.get("cost") and gold_cost:
            from .summary import run_cost

            r["cost"] = run_cost(r, gold_cost)
    out["summary"] = {}
    for family in families:
        runs = [r for r in ok if r["family"] == family]
        default = [r for r in runs if r.get("view", "default") == "default"]
        models = {k: v for k, v in out["models"].items() if k.startswith(family + "/")}
        summary = summarize(default, models)
        summary["alpha_search"] = alpha_search_summary(default)
        summary["retrain_free"] = verdict_summary(default)
        if "equal_budget" in out["config"]:
            # the equal-budget view: each method's cut run where it has one, else its default run (already within)
            cut = {(r["seed"], r["method"]) for r in runs if r.get("view") == "equal_budget"}
            view = [
                r
                for r in runs
                if r.get("view") == "equal_budget"
                or (r.get("view", "default") == "default" and (r["seed"], r["method"]) not in cut)
            ]
            summary["equal_budget"] = summarize(view, models)
        out["summary"][family] = summary
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
