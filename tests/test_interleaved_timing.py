"""The speed scripts' one timing loop (scripts/interleaved_timing.py): variants alternate repeat by repeat."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts"))

from interleaved_timing import interleaved, min_median  # noqa: E402


def test_variants_alternate_repeat_by_repeat_and_ratios_summarise():
    order = []
    runs = interleaved(
        {"a": lambda: order.append("a") or len(order), "b": lambda: order.append("b") or len(order)},
        3,
        on_result=lambda rep, name, result: order.append(f"{name}{rep}"),
    )
    assert order == ["a", "a0", "b", "b0", "a", "a1", "b", "b1", "a", "a2", "b", "b2"]
    assert runs == {"a": [1, 5, 9], "b": [3, 7, 11]}
    assert min_median([3.0, 1.0, 2.0]) == {"min": 1.0, "median": 2.0, "per_repeat": [3.0, 1.0, 2.0]}
