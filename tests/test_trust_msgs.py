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


# --------------------------------------------------------------------------------------------------------------
# 1. file and directory arguments of every subcommand: one `error:` line, exit 2, nothing written
# --------------------------------------------------------------------------------------------------------------
def _sys_is_read_only() -> bool:
    try:
        open("/sys/hf_unlearn_probe", "w").close()
    except OSError:
        return True
    os.remove("/sys/hf_unlearn_probe")
    return False


BAD = {  # kind -> path (relative to the test's folder, where "file" is a file and "dir" a directory)
    "missing": "missing",
    "missing-parent": "missing/x.json",
    "dir": "dir",
    "file": "file",
    "empty": "",
    "unwritable": "/sys/x.json",  # sysfs: no new files, even for root
}
PATH_ARGS = [  # (subcommand argv with FLAG/VALUE placeholders, flag, kinds that must be refused)
    (["proof", "--output_dir", "OUTDIR", "--id", "a", "--out", "VALUE"], "--out", ["missing-parent", "dir", "empty",
                                                                                   "unwritable"]),
    (["proof", "--output_dir", "VALUE", "--id", "a"], "--output_dir", ["missing", "file", "empty"]),
    (["verify", "--model", "OUTDIR", "--proof", "VALUE"], "--proof", ["missing", "dir", "empty"]),
    (["verify", "--model", "VALUE"], "--model", ["file", "empty"]),
    (["verify", "--model", "OUTDIR", "--recompute", "--output_dir", "VALUE"], "--output_dir", ["missing", "file",
                                                                                                "empty"]),
    (["verify", "--model", "OUTDIR", "--parent_model", "VALUE"], "--parent_model", ["file", "empty"]),
    (["push", "--output_dir", "VALUE", "--repo_id", "test-user/x"], "--output_dir", ["missing", "file", "empty"]),
    (["unlearn", "--output_dir", "VALUE"], "--output_dir", ["file", "empty", "unwritable"]),
    (["unlearn", "--output_dir", "NEW", "--forget_ids_file", "VALUE"], "--forget_ids_file", ["missing", "dir", "empty"]),
    (["unlearn", "--output_dir", "NEW", "--previous_ledger", "VALUE"], "--previous_ledger", ["missing", "dir", "empty"]),
    (["unlearn", "--output_dir", "NEW", "--config", "VALUE"], "--config", ["missing", "dir", "empty"]),
    (["unlearn", "--output_dir", "NEW", "--resume_from_checkpoint", "VALUE"], "--resume_from_checkpoint",
     ["missing", "file", "empty"]),
    (["unlearn", "--output_dir", "NEW", "--model", "VALUE"], "--model_name_or_path", ["file", "empty"]),
    (["unlearn", "--output_dir", "NEW", "--gold_model", "VALUE"], "--gold_model", ["file", "empty"]),
    (["unlearn", "--output_dir", "NEW", "--dataset", "VALUE"], "--dataset_name", ["file", "empty"]),
]
PATH_CASES = [(argv, flag, kind) for argv, flag, kinds in PATH_ARGS for kind in kinds]


def _tree(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.stat().st_size if p.is_file() else None) for p in sorted(root.rglob("*"))}


@pytest.fixture
def no_work(monkeypatch, tmp_path):
    """Bad input must be refused before any loading: reaching the loading stage fails the test at once."""
    import hf_unlearn.cli

    def refuse(*a, **k):
        raise AssertionError("the run went on to load data: the bad argument was not refused up front")

    monkeypatch.setattr(hf_unlearn.cli, "load_training_data", refuse)
    monkeypatch.setenv("HF_UNLEARN_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize("argv, flag, kind", PATH_CASES, ids=[f"{a[0]}{f}-{k}" for a, f, k in PATH_CASES])
def test_every_path_argument_is_checked_by_kind(argv, flag, kind, tmp_path, no_work, template_output_dir, capsys,
                                                monkeypatch):
    from hf_unlearn.commands import main

    if kind == "unwritable" and not _sys_is_read_only():
        pytest.skip("/sys accepts new files here")
    work = tmp_path / "work"
    (work / "dir").mkdir(parents=True)
    (work / "file").write_text("not what the flag wants\n")
    monkeypatch.chdir(work)
    value = BAD[kind]
    argv = [{"VALUE": value, "OUTDIR": str(template_output_dir), "NEW": str(tmp_path / "new")}.get(a, a) for a in argv]
    before = _tree(work)
    code = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (code, err)
    assert flag in lines[0] or flag.replace("_name_or_path", "") in lines[0], lines[0]
    if value:
        assert value in lines[0], lines[0]  # the path is named, never a blank
    assert _tree(work) == before and not (tmp_path / "new").exists()
