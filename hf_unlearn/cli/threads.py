"""CPU threads under ``accelerate launch``.

``accelerate launch`` without a config (and without ``--use_cpu``) exports ``OMP_NUM_THREADS=1`` to every process;
on a CPU machine that pins each process to one core, measured 5x slower per ViT-B/16 step on 2 cores
(NOTES.md). :func:`launcher_cpu_threads` decides how many threads a process should use instead, and
:func:`apply_launcher_cpu_threads` sets them; ``HF_UNLEARN_NUM_THREADS`` overrides the decision (set it to 1 to keep
the launcher's single thread). ``examples/accelerate/cpu.yaml`` sets the threads in the launcher itself.

The embedded default (a 0.14M-parameter model) runs on one thread on CPU: faster than two for a model this small,
and one float reduction order, so it prints the same numbers on every machine (README, results/embedded_default.json).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["launcher_cpu_threads", "apply_launcher_cpu_threads"]


def launcher_cpu_threads(
    environ: Mapping[str, str], on_cpu: bool, cores: int | None, tiny: bool = False
) -> int | None:
    """Threads this process should use, or None to leave torch's setting alone.

    ``tiny`` (the embedded default): 1 on CPU. Otherwise acts only on CPU, under ``accelerate launch`` (its ``ACCELERATE_*`` variables are set) and when
    ``OMP_NUM_THREADS`` is the launcher's default of 1: then ``cores // LOCAL_WORLD_SIZE`` (at least 1).
    """
    override = environ.get("HF_UNLEARN_NUM_THREADS")
    if override:
        try:
            value = int(override)
        except ValueError:
            raise ValueError(f"HF_UNLEARN_NUM_THREADS must be a positive integer, got {override!r}.") from None
        if value < 1:
            raise ValueError(f"HF_UNLEARN_NUM_THREADS must be a positive integer, got {override!r}.")
        return value
    if tiny and on_cpu:
        return 1
    launched = any(k.startswith("ACCELERATE_") for k in environ)
    if not (on_cpu and launched and environ.get("OMP_NUM_THREADS") == "1"):
        return None
    try:
        local = max(1, int(environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        local = 1
    return max(1, (cores or 1) // local)


def apply_launcher_cpu_threads(on_cpu: bool, say=print, tiny: bool = False) -> int | None:
    """Set ``torch.set_num_threads`` per :func:`launcher_cpu_threads` (for this process); returns what was set."""
    import torch

    threads = launcher_cpu_threads(os.environ, on_cpu, os.cpu_count(), tiny=tiny)
    if tiny and threads == 1 and not os.environ.get("HF_UNLEARN_NUM_THREADS"):
        torch.set_num_threads(1)
        say(
            "cpu threads: 1 (the embedded default's tiny model: fastest, and the same numbers on every machine; "
            "set HF_UNLEARN_NUM_THREADS to choose)"
        )
    elif threads is not None and threads != torch.get_num_threads():
        torch.set_num_threads(threads)
        say(
            f"cpu threads: {threads} per process (accelerate launch exported OMP_NUM_THREADS=1; "
            "set HF_UNLEARN_NUM_THREADS to choose, or launch with examples/accelerate/cpu.yaml)"
        )
    return threads
