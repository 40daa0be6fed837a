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

This module runs it; ``hf_unlearn.benchmark_summary`` aggregates (``summarize``) and ``hf_unlearn.benchmark_report``
writes the Markdown and the plot; their names stay importable from here.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import os
import tempfile
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from .benchmark_report import _fmt, _method_label, markdown_report, plot_gap_vs_runtime  # noqa: F401  (re-exported)
from .benchmark_summary import _mean, _stats, alpha_search_summary, summarize  # noqa: F401  (re-exported)
from .evaluation import predict_splits

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
    from . import list_methods, select_forget

    def say(msg: str) -> None:
        progress(f"[benchmark {time.strftime('%H:%M:%S')}] {msg}")

    methods = list(methods or list_methods())
    class_mode = forget_class is not None
    name = name or f"{dataset}{'-class' if class_mode else ''}"
    os.makedirs(results_dir, exist_ok=True)
    json_path = os.path.join(results_dir, f"{name}.json")
    config = _benchmark_config(dataset, families, seeds, methods, forget_fraction, forget_class, method_epochs,
                               recipe_overrides, train_size, alpha_search)
    out = {"name": name, "config": config, "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                                                        "loadavg_start": _loadavg()},
           "models": {}, "runs": []}
    done = _resume_from(out, json_path, say) if resume else set()

    say(f"{name}: dataset={dataset} families={list(families)} seeds={list(seeds)} methods={methods}")
    data = load_benchmark_dataset(dataset, train_size)
    names = data["train"].features["label"].names
    rule = {"classes": [forget_class]} if class_mode else {"fraction_per_class": forget_fraction, "mode": "first"}
    selection = select_forget(data["train"], num_labels=len(names), dataset_name=dataset, split="train", **rule)
    say(f"forget {selection.record.num_removed} / retain {selection.record.num_retained} "
        f"({selection.record.selection['description']})")
    failures: list[str] = []
    start_all = time.perf_counter()

    splits_by_family: dict = {}
    for seed, family in itertools.product(seeds, families):  # seeds outer, families inner
        recipe = dict(RECIPES[(dataset, family)], **(recipe_overrides or {}))
        if family not in splits_by_family:
            splits_by_family[family] = _family_splits(family, recipe, names, data, selection)
        if all((family, seed, m) in done for m in methods):  # resumed: no original or gold to train for this cell
            say(f"== {dataset} / {family} / seed {seed}: every method already recorded")
            continue
        say(f"== {dataset} / {family} / seed {seed}")
        cell = _prepare_cell(dataset, family, seed, recipe, rule, splits_by_family[family], names, out, say)
        for method in methods:
            if (family, seed, method) in done:
                continue
            run = _run_method(cell, method, selection, method_epochs=method_epochs, class_mode=class_mode,
                              alpha_search=alpha_search, failures=failures, say=say, progress=progress)
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


def _benchmark_config(dataset, families, seeds, methods, forget_fraction, forget_class, method_epochs,
                      recipe_overrides, train_size, alpha_search) -> dict:
    """The run's ``config`` block: a resumed run continues only an earlier run with the same block."""
    class_mode = forget_class is not None
    config = {"dataset": dataset, "families": list(families), "seeds": list(seeds), "methods": methods,
              "forget": {"class": forget_class} if class_mode else {"fraction_per_class": forget_fraction, "mode": "first"},
              "method_epochs": method_epochs, "recipe_overrides": recipe_overrides or {},
              "train_size": train_size if dataset != "digits" else None}
    if alpha_search:
        config["alpha_search"] = [float(a) for a in alpha_search]
    return config


def _resume_from(out: dict, json_path: str, say: Callable[[str], None]) -> set:
    """With ``resume``: the runs and models of an earlier ``json_path`` with the same config (its failed runs are run
    again) are copied into ``out``; returns the (family, seed, method) already done."""
    if not os.path.isfile(json_path):
        return set()
    with open(json_path) as f:
        previous = json.load(f)
    if previous.get("config") != out["config"]:
        return set()
    out["runs"] = [r for r in previous["runs"] if not r.get("error")]
    out["models"] = previous.get("models", {})
    done = {(r["family"], r["seed"], r["method"]) for r in out["runs"]}
    say(f"resuming: {len(done)} runs already in {json_path}")
    return done


def _family_splits(family: str, recipe: dict, names, data, selection) -> dict:
    """Every split preprocessed for ``family``'s image processor (built once per family)."""
    from .builtin import build_image_classifier
    from .splits import to_image_split

    _, processor = build_image_classifier(family, len(names), recipe["image_size"], label_names=names)
    transform = (lambda p: lambda batch: {
        "pixel_values": p(images=batch["image"], return_tensors="pt")["pixel_values"], "label": batch["label"]})(processor)
    return {"train": to_image_split(data["train"], transform, name="train"),
            "forget": to_image_split(selection.forget, transform, name="forget"),
            "retain": to_image_split(selection.retain, transform, name="retain"),
            "validation": to_image_split(data["validation"], transform, name="validation"),
            "test": to_image_split(data["test"], transform, name="test")}


@dataclass
class _Cell:
    """One (dataset, family, seed): its splits, the original model and the original's and gold's predictions."""

    dataset: str
    family: str
    seed: int
    splits: dict
    original: torch.nn.Module
    original_p: Any
    gold_p: Any


def _prepare_cell(dataset: str, family: str, seed: int, recipe: dict, rule: dict, s: dict, names, out: dict,
                  say: Callable[[str], None]) -> _Cell:
    """The original and gold models of one (dataset, family, seed), trained or from the cache, and their predictions;
    their training facts go to ``out["models"]``."""
    original, o_info = _train_or_load("original", dataset, family, seed, recipe, rule, s["train"], names, say)
    gold, g_info = _train_or_load("gold", dataset, family, seed, recipe, rule, s["retain"], names, say)
    eval_splits = {k: s[k] for k in ("forget", "retain", "test", "validation")}
    original_p = predict_splits(lambda sp: _predict(original, sp), eval_splits)
    gold_p = predict_splits(lambda sp: _predict(gold, sp), eval_splits)
    out["models"][f"{family}/{seed}"] = {"original": o_info, "gold": g_info}
    return _Cell(dataset, family, seed, s, original, original_p, gold_p)


def _method_overrides(dataset: str, method: str, seed: int, method_epochs: float | None,
                      class_mode: bool) -> tuple[dict, dict]:
    """(training settings, method config) of one method: its defaults with the small-dataset and class-unlearning
    overrides (module docstring) and ``method_epochs``."""
    small = SMALL_DATASET_OVERRIDES.get(dataset, {}).get(method, {})
    settings = dict(report_to="none", save_strategy="no", use_cpu=True, disable_tqdm=True,
                    logging_strategy="no", seed=seed)
    settings.update({k: v for k, v in small.items() if k in ("per_device_train_batch_size", "learning_rate")})
    if method_epochs is not None:
        settings["num_train_epochs"] = method_epochs
    method_config = {k: v for k, v in small.items() if k not in ("per_device_train_batch_size", "learning_rate")}
    if class_mode:
        method_config.update(CLASS_UNLEARNING_CONFIG.get(method, {}))
    return settings, method_config


def _run_method(cell: _Cell, method: str, selection, *, method_epochs, class_mode: bool, alpha_search,
                failures: list[str], say: Callable[[str], None], progress: Callable[[str], None]) -> dict:
    """One method on one cell: the run's record (its overrides, metrics, steps), or its error (appended to
    ``failures`` too: a failing method is reported loudly, the benchmark goes on)."""
    family, seed = cell.family, cell.seed
    run = {"family": family, "seed": seed, "method": method}
    settings, method_config = _method_overrides(cell.dataset, method, seed, method_epochs, class_mode)
    run["overrides"] = {"training": {k: v for k, v in settings.items()
                                     if k in ("per_device_train_batch_size", "learning_rate", "num_train_epochs")},
                        "method_config": method_config}
    say(f"  {method}: running ...")
    t0 = time.perf_counter()
    try:
        trainer, res = _unlearn_and_evaluate(cell, method, settings, method_config, selection, alpha_search, run)
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
    return run


def _unlearn_and_evaluate(cell: _Cell, method: str, settings: dict, method_config: dict, selection, alpha_search,
                          run: dict):
    """(trainer, results) of one method: trained with its settings (or, for LoTUS-type methods with
    ``alpha_search``, the kept candidate of the retrain-free search, recorded in ``run["alpha_search"]``) and
    evaluated against the original's and gold's predictions."""
    from . import UnlearningArguments, UnlearningTrainer, search_alpha

    s = cell.splits
    with tempfile.TemporaryDirectory() as tmp:
        args = UnlearningArguments.for_method(method, output_dir=tmp, **settings)

        def make_trainer(alpha=None):
            config = dict(method_config, alpha=alpha) if alpha is not None else method_config
            return UnlearningTrainer(copy.deepcopy(cell.original), args, forget_dataset=s["forget"],
                                     retain_dataset=s["retain"], calibration_dataset=s["validation"],
                                     method_config=config or None, removal_record=selection.record)

        if alpha_search and searches_alpha(method):
            search = search_alpha(make_trainer, alpha_search, test_dataset=s["test"],
                                  validation_dataset=s["validation"], original=cell.original_p, gold=cell.gold_p)
            run["alpha_search"] = search.to_dict()
            return search.trainer, search.results
        trainer = make_trainer()
        trainer.train()
        return trainer, trainer.evaluate_unlearning(s["test"], s["validation"], original=cell.original_p,
                                                    gold=cell.gold_p, log=False)


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


def searches_alpha(method: str) -> bool:
    """Whether ``--alpha_search`` applies: LoTUS-type configs (an ``alpha_search`` field); SCRUB's ``alpha`` is an
    unrelated KL weight."""
    from .methods import get_method_class

    return "alpha_search" in getattr(get_method_class(method).config_class, "__dataclass_fields__", {})
