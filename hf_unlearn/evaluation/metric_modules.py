"""Locate and load the unlearning metrics shipped as local ``evaluate`` modules.

The modules live in the repository's ``metrics/<name>/`` folders; an installed wheel ships them as the
package ``hf_unlearn._metrics`` (see pyproject.toml). Both layouts are found here, and loading works
offline (no Hub access)::

    from hf_unlearn.evaluation.metric_modules import load_metric

    rf_jsd = load_metric("rf_jsd")
    rf_jsd.add_batch(predictions=forget_logits, references=forget_labels, subset=["forget"] * n)
    rf_jsd.add_batch(predictions=test_logits, references=test_labels, subset=["test"] * m)
    rf_jsd.compute(variant="standard")  # {"rf_jsd": ...}
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

__all__ = ["METRIC_NAMES", "available_metrics", "metric_path", "load_metric"]

#: The metric modules this package ships.
METRIC_NAMES = ("rf_jsd", "jsd", "mia")

_REPO_METRICS_DIR = Path(__file__).resolve().parents[2] / "metrics"


def _packaged_dir(name: str) -> Path | None:
    """``hf_unlearn._metrics/<name>`` of an installed wheel, if it exists as a real folder."""
    try:
        root = importlib.resources.files("hf_unlearn._metrics")
    except (ModuleNotFoundError, ImportError, TypeError):
        return None
    candidate = root / name
    try:
        if candidate.is_dir() and (candidate / f"{name}.py").is_file():
            return Path(str(candidate))
    except (OSError, TypeError):
        return None
    return None


def available_metrics() -> list[str]:
    """Names accepted by :func:`metric_path` / :func:`load_metric`."""
    return list(METRIC_NAMES)


def metric_path(name: str) -> str:
    """Folder of the ``evaluate`` module ``name`` ("rf_jsd", "jsd" or "mia"), for ``evaluate.load``.

    Looks first in the installed package (``hf_unlearn._metrics/<name>``), then in the source checkout
    (``<repo root>/metrics/<name>``).
    """
    if name not in METRIC_NAMES:
        raise ValueError(f"Unknown metric {name!r}: available metrics are {list(METRIC_NAMES)}.")
    packaged = _packaged_dir(name)
    if packaged is not None:
        return str(packaged)
    local = _REPO_METRICS_DIR / name
    if (local / f"{name}.py").is_file():
        return str(local)
    raise ValueError(
        f"The metric module {name!r} was not found: neither hf_unlearn._metrics/{name} (installed package) nor "
        f"{local} (source checkout) exists. Reinstall hf-unlearn (`pip install -e .`)."
    )


def load_metric(name: str, **kwargs):
    """``evaluate.load(metric_path(name), **kwargs)``: load one of the shipped metrics offline."""
    import evaluate

    return evaluate.load(metric_path(name), **kwargs)
