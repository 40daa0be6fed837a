"""Trust, round 2: every input is checked before any model is loaded or trained.

Before, with an empty cache the embedded default trained its original first (a minute or more) and only then read a
malformed ids file, an unknown class name, a missing ``--previous_ledger`` or ``--gold_model``, or a method's choice
setting. Each case runs the CLI in-process with a fresh, empty ``HF_UNLEARN_CACHE`` and the embedded default's ViT
(whose original takes far longer than the limit to train here): it must fail with one ``error:`` line and exit code 2
within seconds, with nothing in the cache and no output directory. "Seconds" is measured as this process's CPU time
(training the original takes over a minute of it), so a busy shared machine cannot make a correct refusal look slow.
"""

from __future__ import annotations

import json
import os
import time

import pytest

from hf_unlearn.cli.main import run_unlearning

FAST = ["--use_cpu", "--disable_tqdm", "true", "--max_steps", "1"]
LIMIT_S = 30


def _file(text: str):
    def make(tmp):
        path = tmp / "ids.txt"
        path.write_text(text)
        return ["--forget_ids_file", path]

    return make


def _directory(tmp):
    (tmp / "ids_dir").mkdir()
    return ["--forget_ids_file", tmp / "ids_dir"]


def _config_naming(make):
    def setup(tmp):  # the same input, given through a config file
        flag, value = make(tmp)
        path = tmp / "run.json"
        path.write_text(json.dumps({flag.lstrip("-"): str(value)}))
        return ["--config", path]

    return setup


def _valid_ids_and(*extra):
    def setup(tmp):
        return [*_file("digits-0001\n")(tmp), *extra]

    return setup


CASES = [
    # (id, setup(tmp) -> argv, expected in the error line)
    ("ids-malformed-json", _file('["digits-0001", '), "not valid JSON"),
    ("ids-object-without-list", _file('{"ids": 5}'), "not a list"),
    ("ids-wrong-element-type", _file("[1.5, 2.5]"), "is a float"),
    ("ids-nested-lists", _file('[["digits-0001"]]'), "ids must be strings or integers"),
    ("ids-empty-file", _file(""), "contains no ids"),
    ("ids-blank-lines-only", _file("\n \n\n"), "contains no ids"),
    ("ids-directory", _directory, "is a directory"),
    ("ids-directory-from-config-file", _config_naming(_directory), "is a directory"),
    ("ids-unknown-in-config-file", _config_naming(_file("[")), "not valid JSON"),
    ("ids-not-in-the-dataset", _file("digits-0001\ndigits-9999\n"), "1 of the 2 ids to forget are not in column"),
    ("ids-typed-unlike-the-column", _file("[1, 2]"), "not in column 'id'"),
    ("ids-without-id-column", _valid_ids_and("--id_column_name", "nope"), "needs an id column"),
    ("unknown-class-name", lambda tmp: ["--forget_classes", "seven"], "unknown class name 'seven'"),
    (
        "alpha-search-without-held-out-split",
        lambda tmp: ["--alpha_search", "2", "8", "--validation_split", "val", "--test_split", "held"],
        "--alpha_search",
    ),
    ("missing-previous-ledger", lambda tmp: ["--previous_ledger", tmp / "nope" / "ledger.json"], "--previous_ledger"),
    ("missing-gold-model", lambda tmp: ["--gold_model", tmp / "nope"], "--gold_model"),
    ("method-choice-setting", lambda tmp: ["--target_sampling", "uniform"], "target_sampling"),
    (
        "other-method-choice-setting",
        lambda tmp: ["--method", "del", "--channel_aggregation", "median"],
        "channel_aggregation",
    ),
]


@pytest.mark.parametrize("setup,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_inputs_fail_in_seconds_with_an_empty_cache(setup, expected, tmp_path, monkeypatch, capsys):
    cache = tmp_path / "empty_cache"
    monkeypatch.setenv("HF_UNLEARN_CACHE", str(cache))
    out = tmp_path / "out"
    argv = [str(a) for a in [*setup(tmp_path), "--output_dir", out, *FAST]]
    capsys.readouterr()
    start, cpu_start = time.perf_counter(), time.process_time()
    code = run_unlearning(argv)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2, err[-3000:]
    assert len(lines) == 1 and expected in lines[0], err[-3000:]
    assert "Traceback" not in err
    assert cpu_seconds < LIMIT_S, f"refused only after {cpu_seconds:.0f} s of CPU ({seconds:.0f} s wall)"
    files = [os.path.join(r, f) for r, _, fs in os.walk(cache) for f in fs]
    assert not files, f"the cache was written (an original trained?): {files[:5]}"
    assert not out.exists()


def test_the_checks_do_not_refuse_a_good_request(tmp_path, original_path, capsys):
    """The same checks pass a valid ids file and class name (the session's trained original, one step)."""
    ids = tmp_path / "ids.json"
    ids.write_text('{"ids": ["digits-0001", "digits-0002"]}')
    for extra, out in ((["--forget_ids_file", ids], "by_ids"), (["--forget_classes", "7"], "by_class")):
        argv = [*extra, "--default_arch", "resnet", "--method", "finetune", "--output_dir", tmp_path / out, *FAST]
        assert run_unlearning([str(a) for a in argv]) == 0, capsys.readouterr().err[-3000:]
