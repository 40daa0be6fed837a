"""One method on one (dataset, family, seed) cell of the benchmark grid: the method's training settings and config
(its defaults with the small-dataset and class-unlearning overrides, the seed's data order), the run itself (or its
retrain-free alpha search) evaluated against the cell's Original and Gold, and the run's cost. Separate from
:mod:`hf_unlearn.benchmark.grid`, which prepares the cells, schedules the runs (resume, the equal-budget view) and
writes the results: this module knows nothing of the schedule, only how one run is made and recorded.
"""

from __future__ import annotations

import copy
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from .models import _loadavg, derived_seed

if TYPE_CHECKING:
    from .grid import GridSource


#: Small-dataset overrides (documented in hf_unlearn.benchmark.protocol's module docstring): digits has 125 forget images.
SMALL_DATASET_OVERRIDES = {
    "digits": {
        "lotus": {"alpha": 32.0, "per_device_train_batch_size": 32, "learning_rate": 5e-4},
        "salun_lotus": {"alpha": 32.0, "per_device_train_batch_size": 32, "learning_rate": 5e-4},
    }
}
#: Class unlearning (SPEC §5.6): LoTUS with class_unlearning=True and alpha 32 (salun_lotus shares LoTUS' config).
CLASS_UNLEARNING_CONFIG = {
    "lotus": {"class_unlearning": True, "alpha": 32.0},
    "salun_lotus": {"class_unlearning": True, "alpha": 32.0},
}


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


def _small_dataset_overrides(dataset: str, method: str) -> dict:
    return SMALL_DATASET_OVERRIDES.get(dataset, {}).get(method, {})


def _method_overrides(
    dataset: str, method: str, seed: int, method_epochs: float | None, class_mode: bool, small: dict | None = None
) -> tuple[dict, dict]:
    """(training settings, method config) of one method: its defaults with the small-dataset and class-unlearning
    overrides (hf_unlearn.benchmark.protocol's docstring), ``method_epochs`` and the seed's own data order (``data_seed``)."""
    small = _small_dataset_overrides(dataset, method) if small is None else small
    settings = dict(
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
        logging_strategy="no",
        seed=seed,
        data_seed=derived_seed("data", seed),
    )
    settings.update({k: v for k, v in small.items() if k in ("per_device_train_batch_size", "learning_rate")})
    if method_epochs is not None:
        settings["num_train_epochs"] = method_epochs
    method_config = {k: v for k, v in small.items() if k not in ("per_device_train_batch_size", "learning_rate")}
    if class_mode:
        method_config.update(CLASS_UNLEARNING_CONFIG.get(method, {}))
    return settings, method_config


def _run_method(
    cell: _Cell,
    method: str,
    selection,
    *,
    grid: GridSource,
    method_epochs,
    class_mode: bool,
    alpha_search,
    failures: list[str],
    say: Callable[[str], None],
    progress: Callable[[str], None],
    max_steps: int | None = None,
) -> dict:
    """One method on one cell: the run's record (its overrides, metrics, cost), or its error (appended to
    ``failures`` too: a failing method is reported loudly, the benchmark goes on). ``max_steps``: the equal-budget
    view's cut (``view: "equal_budget"``)."""
    family, seed = cell.family, cell.seed
    view = "default" if max_steps is None else "equal_budget"
    run = {"family": family, "seed": seed, "method": method, "view": view}
    settings, method_config = _method_overrides(
        cell.dataset, method, seed, method_epochs, class_mode, grid.method_overrides(method)
    )
    if max_steps is not None:
        settings["max_steps"] = int(max_steps)
    run["overrides"] = {
        "training": {
            k: v
            for k, v in settings.items()
            if k in ("per_device_train_batch_size", "learning_rate", "num_train_epochs", "max_steps", "data_seed")
        },
        "method_config": method_config,
    }
    say(f"  {method}{' (equal budget, max_steps ' + str(max_steps) + ')' if max_steps else ''}: running ...")
    t0 = time.perf_counter()
    try:
        trainer, res = _unlearn_and_evaluate(cell, method, settings, method_config, selection, alpha_search, run)
        run["unlearned"] = res["unlearned"]
        run["unlearned"]["runtime_s"] = trainer.unlearning_runtime_s
        run["original"] = res["original"]
        run["gold"] = res["gold"]
        run["retrain_free"] = res.get("retrain_free")
        run["global_steps"] = trainer.state.global_step
        run["cost"] = _cost_of(trainer, run)
        u = res["unlearned"]
        say(
            f"  {method}: {trainer.unlearning_runtime_s:.1f}s  forget {u['acc_forget']:.3f} retain "
            f"{u['acc_retain']:.3f} test {u['acc_test']:.3f} MIA {u['mia']:.3f} gap {u['avg_gap']:.4f} "
            f"(estimate {u.get('avg_gap_estimate', float('nan')):.4f}); {run['cost']['examples']} examples"
        )
    except Exception as e:  # tolerate a failing method, loudly
        run["error"] = f"{type(e).__name__}: {e}"
        run["traceback"] = traceback.format_exc()[-4000:]
        failures.append(f"{family}/{seed}/{method}/{view}: {run['error']}")
        progress(
            "!" * 100 + f"\n!!! METHOD FAILED: {method} ({family}, seed {seed}, {view}) after "
            f"{time.perf_counter() - t0:.1f}s: {run['error']}\n" + "!" * 100
        )
    run["loadavg"] = _loadavg()
    return run


def _cost_of(trainer, run: dict) -> dict:
    """The run's ``cost``: with an alpha search, every candidate's (the search is what the user pays for)."""
    by_kind = dict(trainer.examples_processed)
    per_step = trainer.args.per_device_train_batch_size * trainer.args.gradient_accumulation_steps
    cost = {
        "steps": int(trainer.state.global_step),
        "examples": int(sum(by_kind.values())),
        "examples_by_kind": by_kind,
        "seconds": float(trainer.unlearning_runtime_s or 0.0),
        "examples_per_step": int(per_step),
    }
    search = run.get("alpha_search")
    if search:
        cands = search["candidates"]
        cost.update(
            steps=int(sum(c["global_steps"] for c in cands)),
            examples=int(sum(c["examples"] for c in cands)),
            seconds=float(sum(c["runtime_s"] for c in cands)),
            candidates=len(cands),
        )
    return cost


def _unlearn_and_evaluate(
    cell: _Cell, method: str, settings: dict, method_config: dict, selection, alpha_search, run: dict
):
    """(trainer, results) of one method: trained with its settings (or, for LoTUS-type methods with
    ``alpha_search``, the kept candidate of the retrain-free search, recorded in ``run["alpha_search"]``) and
    evaluated against the original's and gold's predictions."""
    from .. import UnlearningArguments, UnlearningTrainer, search_alpha

    s = cell.splits
    with tempfile.TemporaryDirectory() as tmp:
        args = UnlearningArguments.for_method(method, output_dir=tmp, **settings)

        def make_trainer(alpha=None):
            config = dict(method_config, alpha=alpha) if alpha is not None else method_config
            return UnlearningTrainer(
                copy.deepcopy(cell.original),
                args,
                forget_dataset=s["forget"],
                retain_dataset=s["retain"],
                calibration_dataset=s["validation"],
                method_config=config or None,
                removal_record=selection.record,
            )

        if alpha_search and searches_alpha(method):
            search = search_alpha(
                make_trainer,
                alpha_search,
                test_dataset=s["test"],
                validation_dataset=s["validation"],
                original=cell.original_p,
                gold=cell.gold_p,
            )
            run["alpha_search"] = search.to_dict()
            return search.trainer, search.results
        trainer = make_trainer()
        trainer.train()
        return trainer, trainer.evaluate_unlearning(
            s["test"], s["validation"], original=cell.original_p, gold=cell.gold_p, log=False
        )


def searches_alpha(method: str) -> bool:
    """Whether ``--alpha_search`` applies: LoTUS-type configs (an ``alpha_search`` field); SCRUB's ``alpha`` is an
    unrelated KL weight."""
    from ..methods import get_method_class

    return "alpha_search" in getattr(get_method_class(method).config_class, "__dataclass_fields__", {})
