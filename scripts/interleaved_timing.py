"""One interleaved-timing loop for the speed scripts (benchmark_speed.py, benchmark_scale.py).

Every variant runs once per repeat, in turn (A, B, A, B, ...), so a change of machine load hits all variants alike;
ratios are taken within a repeat, and reported as min and median over repeats.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable


def interleaved(variants: dict[str, Callable[[], object]], repeats: int, on_result=None) -> dict[str, list]:
    """``{name: [result of each repeat]}``; ``on_result(repeat, name, result)`` is called after each run."""
    runs = {name: [] for name in variants}
    for repeat in range(repeats):
        for name, run in variants.items():
            result = run()
            runs[name].append(result)
            if on_result is not None:
                on_result(repeat, name, result)
    return runs


def min_median(per_repeat) -> dict:
    """``{"min", "median", "per_repeat"}`` of per-repeat values (ratios of variants that ran back to back)."""
    values = list(per_repeat)
    return {"min": min(values), "median": statistics.median(values), "per_repeat": values}
