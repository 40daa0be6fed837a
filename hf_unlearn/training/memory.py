"""One memory budget for materialised splits.

Every split of a run (forget, retain, calibration, test, validation) asks the same
:class:`MaterializationBudget` before its preprocessed pixels are kept in memory as a float32 tensor; splits that
do not fit what is left stay lazy (transformed per batch, with ``dataloader_num_workers`` DataLoader workers).
Before, each split was checked alone against 4 GB, so five splits could take 20 GB together.
"""

from __future__ import annotations

import logging

__all__ = ["MaterializationBudget", "available_memory_bytes", "DEFAULT_BUDGET_FRACTION"]

logger = logging.getLogger(__name__)

#: Share of the RAM available at start-up that materialised splits may take together by default.
DEFAULT_BUDGET_FRACTION = 0.5
MB = 1024**2


def available_memory_bytes() -> int:
    """RAM available to new allocations (psutil when installed, else ``MemAvailable`` of /proc/meminfo)."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 * 1024**3  # unknown platform: the former per-split limit


class MaterializationBudget:
    """Bytes that materialised splits may take together; :meth:`claim` decides split by split, first come first served."""

    def __init__(self, total_bytes: int):
        if total_bytes < 0:
            raise ValueError(f"the materialisation budget must be >= 0 bytes, got {total_bytes}.")
        self.total_bytes = int(total_bytes)
        self.used_bytes = 0
        self.decisions: dict[str, dict] = {}  # split name -> {"materialized", "bytes", "rows"}

    @classmethod
    def from_megabytes(cls, megabytes: float | None) -> MaterializationBudget:
        """``megabytes`` (``--materialize_budget_mb``), or by default half the RAM available now."""
        if megabytes is None:
            return cls(int(available_memory_bytes() * DEFAULT_BUDGET_FRACTION))
        return cls(int(megabytes * MB))

    @property
    def remaining_bytes(self) -> int:
        return self.total_bytes - self.used_bytes

    def claim(self, name: str, nbytes: int, rows: int | None = None) -> bool:
        """Reserve ``nbytes`` for split ``name`` if they fit what is left; records and logs the decision."""
        fits = nbytes <= self.remaining_bytes
        if fits:
            self.used_bytes += nbytes
        self.decisions[name] = {"materialized": fits, "bytes": int(nbytes), "rows": rows}
        logger.info(
            "split %s: %s (%.1f MB; budget %.1f of %.1f MB used)",
            name or "?",
            "materialised" if fits else "lazy, does not fit the budget",
            nbytes / MB,
            self.used_bytes / MB,
            self.total_bytes / MB,
        )
        return fits

    def record_lazy(self, name: str, rows: int | None = None, reason: str = "random transform") -> None:
        """Note a split that stays lazy whatever the budget (augmenting transform, ``materialize_data=False``)."""
        self.decisions[name] = {"materialized": False, "bytes": 0, "rows": rows, "reason": reason}

    def summary(self) -> str:
        """One line: which splits were materialised and which stay lazy."""
        mat = [f"{n} ({d['bytes'] / MB:.0f} MB)" for n, d in self.decisions.items() if d["materialized"]]
        lazy = [n for n, d in self.decisions.items() if not d["materialized"]]
        return (
            f"materialised: {', '.join(mat) or 'none'}; lazy: {', '.join(lazy) or 'none'} "
            f"(budget {self.used_bytes / MB:.0f} of {self.total_bytes / MB:.0f} MB used)"
        )
