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

import numpy as np
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
    from hf_unlearn.cli.fs_safety import OutputDirLock, OutputDirLocked

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
    import hf_unlearn.cli.fs_safety  # noqa: F401  (imported before the fork: the workers start at once)

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
    env.update(
        HF_ENDPOINT=endpoint,
        HF_TOKEN="hf_dummy_test_token",
        HF_HOME=str(home / "hf_home"),
        HF_HUB_OFFLINE="0",
        HF_DATASETS_OFFLINE="0",
        HF_HUB_DISABLE_XET="1",
        HF_UNLEARN_CACHE=str(home / "cache"),
        PYTHONPATH=str(REPO_ROOT),
    )
    return env


def _cli(argv, env, timeout=HANG_BOUND_S, cwd=None):
    """``python -m hf_unlearn ARGV`` in a subprocess: (exit code, stderr, seconds)."""
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "hf_unlearn", *map(str, argv)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=cwd or REPO_ROOT,
    )
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
    # a local model (the data is loaded first): a Hub dataset without --model is refused up front
    "unlearn (Hub dataset)": [
        "unlearn",
        "--model",
        "OUT",
        "--dataset",
        "test-user/d",
        "--output_dir",
        "NEW",
        "--hub_timeout",
        "2",
    ],
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
    (
        ["proof", "--output_dir", "OUTDIR", "--id", "a", "--out", "VALUE"],
        "--out",
        ["missing-parent", "dir", "empty", "unwritable"],
    ),
    (["proof", "--output_dir", "VALUE", "--id", "a"], "--output_dir", ["missing", "file", "empty"]),
    (["verify", "--model", "OUTDIR", "--proof", "VALUE"], "--proof", ["missing", "dir", "empty"]),
    (["verify", "--model", "VALUE"], "--model", ["file", "empty"]),
    (
        ["verify", "--model", "OUTDIR", "--recompute", "--output_dir", "VALUE"],
        "--output_dir",
        ["missing", "file", "empty"],
    ),
    (["verify", "--model", "OUTDIR", "--parent_model", "VALUE"], "--parent_model", ["file", "empty"]),
    (["push", "--output_dir", "VALUE", "--repo_id", "test-user/x"], "--output_dir", ["missing", "file", "empty"]),
    (["unlearn", "--output_dir", "VALUE"], "--output_dir", ["file", "empty", "unwritable"]),
    (
        ["unlearn", "--output_dir", "NEW", "--forget_ids_file", "VALUE"],
        "--forget_ids_file",
        ["missing", "dir", "empty"],
    ),
    (
        ["unlearn", "--output_dir", "NEW", "--previous_ledger", "VALUE"],
        "--previous_ledger",
        ["missing", "dir", "empty"],
    ),
    (["unlearn", "--output_dir", "NEW", "--config", "VALUE"], "--config", ["missing", "dir", "empty"]),
    (
        ["unlearn", "--output_dir", "NEW", "--resume_from_checkpoint", "VALUE"],
        "--resume_from_checkpoint",
        ["missing", "file", "empty"],
    ),
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
    import hf_unlearn.cli.main

    def refuse(*a, **k):
        raise AssertionError("the run went on to load data: the bad argument was not refused up front")

    monkeypatch.setattr(hf_unlearn.cli.main, "load_training_data", refuse)
    monkeypatch.setenv("HF_UNLEARN_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize("argv, flag, kind", PATH_CASES, ids=[f"{a[0]}{f}-{k}" for a, f, k in PATH_CASES])
def test_every_path_argument_is_checked_by_kind(
    argv, flag, kind, tmp_path, no_work, template_output_dir, capsys, monkeypatch
):
    from hf_unlearn.cli.commands import main

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


# --------------------------------------------------------------------------------------------------------------
# 5. metric modules: finite extreme logits compute correctly; labels must be integer class ids
# --------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def metric_modules():
    import evaluate

    return {name: evaluate.load(str(REPO_ROOT / "metrics" / name)) for name in ("rf_jsd", "jsd", "mia")}


# Each extreme row has a moderate twin with the same softmax in float64 (exp(-1000) and exp(-2e308) are both 0),
# so the metric must give exactly the twin's value: finite, not NaN/inf, not refused.
EXTREME_ROWS = {  # name -> (extreme rows, moderate twins)
    "+1e308": ([[1e308, 0.0, 0.0], [0.0, 1e308, 0.0]], [[1000.0, 0.0, 0.0], [0.0, 1000.0, 0.0]]),
    "mixed ±1e308": (
        [[1e308, -1e308, 0.0], [-1e308, 1e308, -1e308]],
        [[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, -1000.0]],
    ),
    "all -1e308": ([[-1e308, -1e308, -1e308], [-1e308, -1e308, 5.0]], [[0.0, 0.0, 0.0], [-1000.0, -1000.0, 5.0]]),
    "all +1e308": ([[1e308, 1e308, 1e308], [1.7e308, 1.7e308, -1.7e308]], [[0.0, 0.0, 0.0], [7.0, 7.0, -1000.0]]),
}
NORMAL = [[2.0, 0.5, -1.0], [0.1, 3.0, 0.0], [1.0, 0.0, 0.2], [0.0, 1.0, 0.3], [0.4, 0.1, 2.0], [0.2, 0.6, 0.1]]


def _metric_inputs(name: str, rows: list) -> dict:
    n = len(rows)
    if name == "jsd":
        return {"predictions": rows, "gold_predictions": NORMAL[:n]}
    if name == "rf_jsd":
        return {
            "predictions": rows + NORMAL[:n],
            "references": [0, 1][:n] * 1 + [0, 1][:n],
            "subset": ["forget"] * n + ["test"] * n,
        }
    return {
        "predictions": rows + NORMAL,
        "references": [0, 1][:n] + [0, 1, 2, 0, 1, 2],
        "subset": ["forget"] * n + ["retain", "retain", "retain", "test", "test", "validation"],
    }


EXTREME_CASES = [
    (name, case, attack)
    for case in EXTREME_ROWS
    for name, attack in [("rf_jsd", None), ("jsd", None), ("mia", "entropy"), ("mia", "loss"), ("mia", "confidence")]
]


@pytest.mark.parametrize("name, case, attack", EXTREME_CASES)
def test_extreme_finite_logits_compute_like_their_moderate_twins(metric_modules, name, case, attack):
    extreme, twin = EXTREME_ROWS[case]
    options = {"attack": attack} if name == "mia" else {}
    got = metric_modules[name].compute(**_metric_inputs(name, extreme), **options)
    expected = metric_modules[name].compute(**_metric_inputs(name, twin), **options)
    assert all(np.isfinite(v) for v in got.values()), got
    assert got == expected
    if name != "mia":  # both variants of the divergences
        got = metric_modules[name].compute(**_metric_inputs(name, extreme), variant="reference")
        assert got == metric_modules[name].compute(**_metric_inputs(name, twin), variant="reference")


def test_normal_inputs_give_the_documented_numbers(metric_modules):
    """Unchanged results: the modules' own docstring examples (and tests/test_metrics.py for the rest)."""
    assert metric_modules["rf_jsd"].compute(
        predictions=[[2.0, 0.0], [0.0, 2.0], [1.0, 0.0], [0.0, 1.0]],
        references=[0, 1, 0, 1],
        subset=["forget", "forget", "test", "test"],
    ) == {"rf_jsd": 0.0183055897974283}
    assert metric_modules["jsd"].compute(
        predictions=[[2.0, 0.0], [0.0, 1.0]], gold_predictions=[[1.0, 0.0], [0.0, 1.0]]
    ) == {"jsd": 0.00915279489871418}
    # 0.1 is stored at float32 precision, as before (the value a float32 model would output)
    a = metric_modules["jsd"].compute(predictions=[[0.1, 0.0]], gold_predictions=[[0.0, 0.0]])
    b = metric_modules["jsd"].compute(predictions=[[float(np.float32(0.1)), 0.0]], gold_predictions=[[0.0, 0.0]])
    assert a == b


BAD_LABELS = [0.7, True, "1", float("nan"), np.float64(2.5), np.bool_(False), None]


@pytest.mark.parametrize("name", ["rf_jsd", "mia"])
@pytest.mark.parametrize("bad", BAD_LABELS, ids=[repr(b) for b in BAD_LABELS])
@pytest.mark.parametrize("how", ["compute", "add_batch", "add"])
def test_non_integer_labels_are_refused_naming_the_row(metric_modules, name, bad, how):
    module = metric_modules[name]
    inputs = _metric_inputs(name, [[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    inputs["references"] = list(inputs["references"])
    inputs["references"][1] = bad
    with pytest.raises(ValueError, match=r"`references` row 1 is .*not an integer class id"):
        if how == "compute":
            module.compute(**inputs)
        elif how == "add_batch":
            module.add_batch(**inputs)
        else:
            for i in range(len(inputs["predictions"])):
                try:
                    module.add(
                        prediction=inputs["predictions"][i],
                        reference=inputs["references"][i],
                        subset=inputs["subset"][i],
                    )
                except ValueError as e:
                    raise ValueError(str(e).replace("row 0", f"row {i}")) from e
    good = _metric_inputs(name, [[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    assert all(np.isfinite(v) for v in module.compute(**good).values())  # still usable, nothing stale buffered
    integral = dict(good, references=[float(r) for r in good["references"]])  # 1.0 is an integer class id
    assert module.compute(**integral) == module.compute(**good)


# --------------------------------------------------------------------------------------------------------------
# 4. messages that mislead: each names the real problem and the real fix
# --------------------------------------------------------------------------------------------------------------
def _one_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def _empty_dataset(tmp_path, empty: str):
    import datasets

    feats = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b"])})
    from PIL import Image

    rows = {"image": [Image.new("L", (8, 8))] * 4, "label": [0, 1, 0, 1]}
    none = {"image": [], "label": []}
    splits = {
        s: datasets.Dataset.from_dict(none if s == empty else rows, features=feats)
        for s in ("train", "validation", "test")
    }
    return datasets.DatasetDict(splits)


EMPTY_DATA = [  # (how the data arrives, which split is empty, what the line must say)
    ("saved", "train", "its 'train' split has no rows"),
    ("saved", "validation", "its 'validation' split has no rows"),
    ("loaded", "train", "the 'train' split of the dataset is empty"),
    ("loaded", "test", "the 'test' split of the dataset is empty (no rows); pass --test_split"),
]


@pytest.mark.parametrize("how, empty, expected", EMPTY_DATA)
def test_an_empty_dataset_or_split_is_named_not_an_index_error(how, empty, expected, tmp_path, monkeypatch, capsys):
    import hf_unlearn.cli.main
    from hf_unlearn.cli.commands import main

    monkeypatch.setenv("HF_UNLEARN_CACHE", str(tmp_path / "cache"))
    data = _empty_dataset(tmp_path, empty)
    if how == "saved":
        data.save_to_disk(str(tmp_path / "data"))
    else:
        monkeypatch.setattr(hf_unlearn.cli.main, "load_training_data", lambda script: (data, "data"))
    argv = [
        "unlearn",
        "--model",
        "test-user/model",
        "--dataset",
        str(tmp_path / "data"),
        "--output_dir",
        str(tmp_path / "out"),
    ]
    assert main(argv) == 2
    line = _one_error(capsys)
    assert expected in line and "IndexError" not in line, line
    assert not (tmp_path / "out").exists()


def _fast_original(monkeypatch, tmp_path):
    """The embedded default's original, trained for no epochs: the test is about writing it to the cache (the
    shipped originals are hidden, as for a recipe the package does not ship)."""
    import hf_unlearn.data.builtin

    monkeypatch.setattr(hf_unlearn.data.builtin, "train_classifier", lambda *a, **k: 0.0)
    monkeypatch.setattr(hf_unlearn.data.builtin, "SHIPPED_ORIGINALS_DIR", str(tmp_path / "no-shipped-originals"))


CACHE_FAILURES = ["disk-full-safetensors", "disk-full-oserror", "read-only-cache"]


@pytest.mark.parametrize("failure", CACHE_FAILURES)
def test_a_cache_write_failure_names_the_cache_and_leaves_no_tmp_folder(failure, tmp_path, monkeypatch, capsys):
    import errno

    import hf_unlearn.modeling.classifiers
    from hf_unlearn.cli.commands import main

    cache = tmp_path / "cache"
    _fast_original(monkeypatch, tmp_path)
    real_save = hf_unlearn.modeling.classifiers.save_classifier

    def full_disk(model, path, processor=None, **kwargs):
        real_save(model, path, processor, **kwargs)  # a half-written folder, then the disk is full
        if failure == "disk-full-safetensors":
            raise RuntimeError(
                'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No '
                'space left on device" })'
            )
        raise OSError(errno.ENOSPC, "No space left on device", os.path.join(path, "model.safetensors"))

    if failure == "read-only-cache":
        if not _sys_is_read_only():
            pytest.skip("/sys accepts new files here")
        cache = Path("/sys/hf_unlearn_cache")
    else:
        monkeypatch.setattr(hf_unlearn.modeling.classifiers, "save_classifier", full_disk)
    monkeypatch.setenv("HF_UNLEARN_CACHE", str(cache))
    code = main(
        ["unlearn", "--default_arch", "resnet", "--output_dir", str(tmp_path / "out"), "--disable_tqdm", "true"]
    )
    line = _one_error(capsys)
    assert code == 1, line
    assert "HF_UNLEARN_CACHE" in line and str(cache) in line and "--output_dir" not in line, line
    if failure != "read-only-cache":
        assert "no space left" in line
        assert [p.name for p in (cache / "originals").iterdir()] == []  # no .tmp-PID folder left behind
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("variable", ["HF_HOME", "HF_HUB_CACHE", "HF_DATASETS_CACHE"])
def test_a_read_only_hugging_face_cache_is_named_with_its_variable(variable, tmp_path, monkeypatch):
    import errno

    import huggingface_hub.constants as hub_constants

    from hf_unlearn.cli.main import describe_failure

    root = tmp_path / "hf"
    monkeypatch.setenv(variable, str(root))
    if variable == "HF_HOME":
        monkeypatch.setattr(hub_constants, "HF_HOME", str(root))
    elif variable == "HF_HUB_CACHE":
        monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(root))
    for error in (
        OSError(errno.EROFS, "Read-only file system", str(root / "x" / "blob")),
        OSError(errno.ENOSPC, "No space left on device", str(root / "x" / "blob")),
    ):
        line = describe_failure(error)
        assert variable in line and "--output_dir" not in line, line
    line = describe_failure(OSError(errno.EACCES, "Permission denied", str(tmp_path / "out" / "metrics.json")))
    assert "choose a writable --output_dir" in line  # the output's own failure still names --output_dir


@pytest.mark.parametrize("num_labels", [3, 7, 12])
def test_a_wrong_shape_head_is_named_not_called_damaged(tmp_path, num_labels):
    import json

    from hf_unlearn.data.builtin import build_image_classifier
    from hf_unlearn.modeling.classifiers import load_classifier, save_classifier

    model, processor = build_image_classifier("resnet", 10, 8)
    save_classifier(model, str(tmp_path), processor)
    config = json.loads((tmp_path / "config.json").read_text())
    config.update(
        num_labels=num_labels,
        id2label={str(i): str(i) for i in range(num_labels)},
        label2id={str(i): i for i in range(num_labels)},
    )
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError) as e:
        load_classifier(str(tmp_path))
    assert "classifier head" in str(e.value) and f"num_labels={num_labels}" in str(e.value)
    assert "complete" not in str(e.value)
