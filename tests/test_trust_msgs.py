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
sys.path.insert(0, str(Path(__file__).resolve().parent))  # test_hub

from test_hub import template_output_dir  # noqa: E402,F401 - a finished output directory (module fixture)


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


# --------------------------------------------------------------------------------------------------------------
# 2. a Hub that accepts the connection and never answers: every network subcommand ends in bounded time
# --------------------------------------------------------------------------------------------------------------
HANG_BOUND_S = 60  # the requests time out after 2 s; the rest is the interpreter's start-up on a loaded 2-core machine


@pytest.fixture
def silent_hub():
    """A loopback socket that accepts connections (the kernel completes the handshake) and never answers; closed
    when the test ends."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield f"http://127.0.0.1:{s.getsockname()[1]}"


def _hub_env(endpoint: str, home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_UNLEARN_HUB_TIMEOUT", "HF_UNLEARN_DEBUG")}
    env.update(HF_ENDPOINT=endpoint, HF_TOKEN="hf_dummy_test_token", HF_HOME=str(home / "hf_home"),
               HF_HUB_OFFLINE="0", HF_DATASETS_OFFLINE="0", HF_HUB_DISABLE_XET="1",
               HF_UNLEARN_CACHE=str(home / "cache"), PYTHONPATH=str(REPO_ROOT))
    return env


def _cli(argv, env, timeout=HANG_BOUND_S, cwd=None):
    """``python -m hf_unlearn ARGV`` in a subprocess: (exit code, stderr, seconds)."""
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "hf_unlearn", *map(str, argv)], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=cwd or REPO_ROOT)
    return done.returncode, done.stderr, time.monotonic() - start


def _error_lines(stderr: str) -> list[str]:
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines() if line.startswith("error:")]


@pytest.fixture
def finished_output(template_output_dir, tmp_path) -> Path:
    """A finished output directory (tests/test_hub.py's) for `push`."""
    import shutil

    out = tmp_path / "unlearned"
    shutil.copytree(template_output_dir, out)
    return out


NETWORK_COMMANDS = {  # subcommand -> argv (OUT: a finished output directory); each talks to the Hub first thing
    "push": ["push", "--output_dir", "OUT", "--repo_id", "test-user/x", "--hub_timeout", "2"],
    "push-metrics": ["push-metrics", "--namespace", "test-user", "--hub_timeout", "2"],
    "verify (card)": ["verify", "--model", "test-user/x", "--hub_timeout", "2"],
    "unlearn (Hub model)": ["unlearn", "--model", "test-user/x", "--output_dir", "NEW", "--hub_timeout", "2"],
    "unlearn (Hub dataset)": ["unlearn", "--dataset", "test-user/d", "--output_dir", "NEW", "--hub_timeout", "2"],
}


@pytest.mark.parametrize("case", list(NETWORK_COMMANDS))
def test_every_network_subcommand_times_out_on_a_silent_hub(case, silent_hub, finished_output, tmp_path):
    argv = [{"OUT": finished_output, "NEW": tmp_path / "new-output"}.get(a, a) for a in NETWORK_COMMANDS[case]]
    code, err, seconds = _cli(argv, _hub_env(silent_hub, tmp_path))  # raises TimeoutExpired if it hangs
    lines = _error_lines(err)
    assert code in (1, 2) and len(lines) == 1, (code, err)
    assert "127.0.0.1" in lines[0] or "me/x" in lines[0] or "test-user" in lines[0], lines
    assert seconds < HANG_BOUND_S
    assert not (tmp_path / "new-output").exists()
