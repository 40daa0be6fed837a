"""Issue "Trust, round 2", messages part: file arguments of every subcommand, network timeouts of every subcommand,
the run lock's stale takeover, misleading messages, and the metric modules' input checks.

Everything here is fast (seconds) and offline: network tests talk only to loopback servers they start themselves.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------------------------------------------
# 3. the run lock: a stale lock is taken over by exactly one process
# --------------------------------------------------------------------------------------------------------------
def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # reaped: its pid names no process (the lock of a crashed run)
    return proc.pid


def _race_worker(rounds, start, done, results):
    from hf_unlearn.fs_safety import OutputDirLock, OutputDirLocked

    for directory in iter(rounds.get, None):
        start.wait()
        lock = OutputDirLock(directory)
        try:
            lock.acquire()
            results.put(True)
        except OutputDirLocked:
            results.put(False)
        done.wait()  # hold it until both have tried: a lock released early may be taken legitimately
        lock.release()


def test_two_processes_never_both_take_over_a_stale_lock(tmp_path):
    import hf_unlearn.fs_safety  # noqa: F401  (imported before the fork: the workers start at once)

    ctx = multiprocessing.get_context("fork")
    rounds, results = ctx.Queue(), ctx.Queue()
    start, done = ctx.Barrier(3), ctx.Barrier(3)
    workers = [ctx.Process(target=_race_worker, args=(rounds, start, done, results), daemon=True) for _ in range(2)]
    for w in workers:
        w.start()
    stale = json.dumps({"pid": _dead_pid(), "hostname": socket.gethostname(), "started": "2026-01-01T00:00:00+00:00"})
    tally = {0: 0, 1: 0, 2: 0}
    try:
        for k in range(100):
            directory = tmp_path / f"out{k}"
            directory.mkdir()
            (directory / ".hf_unlearn.lock").write_text(stale)
            for _ in workers:
                rounds.put(str(directory))
            start.wait(timeout=30)
            won = sum(results.get(timeout=30) for _ in workers)
            tally[won] += 1
            done.wait(timeout=30)
    finally:
        for _ in workers:
            rounds.put(None)
        for w in workers:
            w.join(timeout=10)
            if w.is_alive():
                w.kill()
    assert tally[2] == 0, f"both processes acquired the same stale lock in {tally[2]} of 100 rounds"
    assert tally[0] == 0, f"neither process acquired the stale lock in {tally[0]} of 100 rounds"
