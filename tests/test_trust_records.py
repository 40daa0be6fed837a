"""Issue "Trust, round 2" (records): every record a run writes is true.

* a resume continues the same training settings, or is refused (2);
* a checkpoint is complete or is not a checkpoint (5);
and, further down, the ledger chain, typed config values, quoted defaults, ignored flags and a launch whose ranks did
not form one group.
"""

from __future__ import annotations

import os
import shutil

import pytest

from hf_unlearn.cli.main import run_unlearning

FAST = ["--use_cpu", "--disable_tqdm", "true", "--per_device_eval_batch_size", "512"]


from conftest import run_cli  # noqa: E402  (the shared CLI runner; no_work is a conftest fixture)
from conftest import sha256_tree as tree  # noqa: E402

# ---- 2. a resume with another training setting is refused --------------------------------------------------------
RUN = ["--default_arch", "resnet", "--max_steps", "1", *FAST]


@pytest.fixture(scope="module")
def checkpoint(original_path, tmp_path_factory):
    """checkpoint-1 of a one-step embedded-default LoTUS run (the embedded preset: alpha 32, batch 32, lr 5e-4)."""
    root = tmp_path_factory.mktemp("resume_settings")
    assert (
        run_unlearning([*RUN, "--save_strategy", "steps", "--save_steps", "1", "--output_dir", str(root / "run")]) == 0
    )
    return root / "run" / "checkpoint-1"


# (flag, new value, the checkpoint's value as quoted, the new value as quoted)
SETTINGS = [
    ("learning_rate", "1e-3", "0.0005", "0.001"),
    ("per_device_train_batch_size", "16", "32", "16"),
    ("gradient_accumulation_steps", "2", "1", "2"),
    ("lr_scheduler_type", "linear", "'constant'", "'linear'"),
    ("lr_scheduler_kwargs", '{"last_epoch": -1}', "None", "{'last_epoch': -1}"),
    ("warmup_steps", "2", "0", "2"),
    ("num_train_epochs", "7", "10", "7"),
    ("max_steps", "2", "1", "2"),
    ("weight_decay", "0.1", "0.0005", "0.1"),
    ("seed", "1", "42", "1"),
    ("data_seed", "3", "None", "3"),
    ("optim", "sgd", "'adamw_torch'", "'sgd'"),
    ("adam_beta1", "0.8", "0.9", "0.8"),
    ("max_grad_norm", "0.5", "0.0", "0.5"),
    ("dataloader_drop_last", "true", "False", "True"),
]


@pytest.mark.parametrize("flag, value, old, new", SETTINGS, ids=[s[0] for s in SETTINGS])
def test_resume_refuses_every_other_training_setting(checkpoint, tmp_path, capsys, no_work, flag, value, old, new):
    before = tree(checkpoint.parent)
    out = tmp_path / "out"
    line = run_cli(
        [*RUN, "--resume_from_checkpoint", checkpoint, "--output_dir", out, f"--{flag}", value],
        capsys,
        2,
        f"--{flag} {old}",
    )
    assert f"this run has {new}" in line, line
    assert not out.exists() and tree(checkpoint.parent) == before


def test_resume_refuses_another_method_setting(checkpoint, tmp_path, capsys, no_work):
    run_cli(
        [*RUN, "--resume_from_checkpoint", checkpoint, "--output_dir", tmp_path / "out", "--alpha", "3"],
        capsys,
        2,
        "alpha=32.0, this run has alpha=3.0",
    )


def test_resume_with_the_same_settings_is_accepted(checkpoint, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(checkpoint, out / "checkpoint-1")
    run_cli([*RUN, "--resume_from_checkpoint", out / "checkpoint-1", "--output_dir", out], capsys, 0)
    assert (out / "metrics.json").is_file()


def test_trainer_refuses_another_training_setting(make_trainer, checkpoint):
    trainer = make_trainer(
        "lotus",
        method_config={"alpha": 32.0},
        per_device_train_batch_size=32,
        learning_rate=1e-3,
        max_steps=1,
        seed=42,
    )
    trainer.removal_record = None  # the fixture's forget set is not the CLI run's; compare the settings only
    with pytest.raises(ValueError, match=r"--learning_rate 0\.0005, this run has 0\.001"):
        trainer.train(resume_from_checkpoint=str(checkpoint))


# ---- 5. a checkpoint is complete, or it is not a checkpoint ------------------------------------------------------
class _Fail(RuntimeError):
    pass


def _crash_at_second_save(monkeypatch, target, name):
    original = getattr(target, name)
    calls = {"n": 0}

    def failing(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise _Fail("simulated kill during the checkpoint save")
        return original(*a, **k)

    monkeypatch.setattr(target, name, failing)


@pytest.mark.parametrize("where", ["trainer-files", "method-state"])
def test_interrupted_checkpoint_save_is_not_a_checkpoint(make_trainer, tmp_path, capsys, monkeypatch, where):
    from transformers import Trainer

    import hf_unlearn.training.method_state as method_state_module
    from hf_unlearn.training.method_state import METHOD_STATE_NAME, last_complete_checkpoint

    out = tmp_path / "run"
    settings = dict(
        method_config={"alpha": 8.0},
        per_device_train_batch_size=128,
        max_steps=3,
        save_strategy="steps",
        save_steps=1,
        save_total_limit=1,
        output_dir=str(out),
    )
    trainer = make_trainer("lotus", **settings)
    if where == "trainer-files":  # killed while the Trainer writes its files (RNG state: after weights, optimizer)
        _crash_at_second_save(monkeypatch, Trainer, "_save_rng_state")
    else:  # killed while the method state is written (the last file)
        _crash_at_second_save(monkeypatch, method_state_module, "write_method_state")
    with pytest.raises(_Fail):
        trainer.train()
    monkeypatch.undo()
    partial, complete = out / "checkpoint-2", out / "checkpoint-1"
    assert partial.is_dir() and not (partial / METHOD_STATE_NAME).exists()
    assert not (partial / f".{METHOD_STATE_NAME}").exists()
    # the earlier checkpoint was not rotated out by the incomplete one (save_total_limit=1)
    assert (complete / METHOD_STATE_NAME).is_file()
    assert last_complete_checkpoint(str(out)) == str(complete)
    # the CLI refuses the partial folder, naming what is missing
    line = run_cli(
        [
            "--default_arch",
            "resnet",
            "--max_steps",
            "3",
            *FAST,
            "--resume_from_checkpoint",
            partial,
            "--output_dir",
            tmp_path / "other",
        ],
        capsys,
        2,
        "is incomplete (missing",
    )
    assert METHOD_STATE_NAME in line and "interrupted" in line
    # resume_from_checkpoint=True continues from the last complete checkpoint
    resumed = make_trainer("lotus", **settings)
    resumed.train(resume_from_checkpoint=True)
    assert resumed.state.global_step == 3


# ---- 1. every public field of every deletion request is bound to the chain ---------------------------------------
@pytest.fixture(scope="module")
def chain2(original_path, digits, tmp_path_factory):
    """Request 1 (10 % per class) from the digits ResNet original, request 2 (three ids) from request 1's output."""
    import json

    root = tmp_path_factory.mktemp("ledger_chain")
    first, second = root / "request1", root / "request2"
    assert (
        run_unlearning(["--model_name_or_path", original_path, "--max_steps", "1", "--output_dir", str(first), *FAST])
        == 0
    )
    removed1 = json.loads((first / "removed_ids.json").read_text())["ids"]
    (root / "ids.txt").write_text("\n".join([i for i in digits["train"]["id"] if i not in removed1][:3]))
    assert (
        run_unlearning(
            [
                "--model_name_or_path",
                str(first),
                "--forget_ids_file",
                str(root / "ids.txt"),
                "--max_steps",
                "1",
                "--output_dir",
                str(second),
                *FAST,
            ]
        )
        == 0
    )
    return second


def _edit_json(path, edit):
    import json

    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data, indent=1))


def _edit_card(folder, edit):
    from huggingface_hub import ModelCard

    card = ModelCard.load(folder / "README.md")
    block = card.data.unlearning
    edit(block)
    card.data.unlearning = block
    card.save(folder / "README.md")


def _set(request: dict, field: str, value):
    if "." in field:
        outer, inner = field.split(".")
        request[outer][inner] = value
    else:
        request[field] = value


# (field, edited value, what the error names)
FIELDS = [
    ("num_removed", 13, "num_removed"),
    ("method", "ssd", "method"),
    ("date", "1999-01-01", "date"),
    ("metrics.acc_forget", 0.5, "metrics.acc_forget"),
    ("metrics.mia", 0.123, "metrics.mia"),
    ("dataset.fingerprint", "0" * 16, "dataset.fingerprint"),
    ("dataset.name", "other-data", "dataset.name"),
    ("id_column", "other_id", "id_column"),
    ("extra", "added", "extra"),
]
EDITS = [(k, *f) for k in (1, 2) for f in FIELDS] + [(2, "previous_sha256", "0" * 64, "previous_sha256")]


@pytest.mark.parametrize("request_no, field, value, named", EDITS, ids=[f"request{e[0]}-{e[1]}" for e in EDITS])
def test_edited_ledger_field_is_refused_and_named(chain2, tmp_path, capsys, no_work, request_no, field, value, named):
    from hf_unlearn.cli.provenance_commands import verify_main

    parent = tmp_path / "parent"
    shutil.copytree(chain2, parent)
    _edit_json(parent / "ledger.json", lambda d: _set(d["requests"][request_no - 1], field, value))
    out = tmp_path / "child"
    run_cli(
        ["--model_name_or_path", parent, "--max_steps", "1", "--output_dir", out, *FAST],
        capsys,
        2,
        f"request {request_no}'s {named} differs",
    )
    assert not out.exists()
    capsys.readouterr()
    assert verify_main(["--model", str(parent)]) == 1
    err = capsys.readouterr().err
    assert f"request {request_no}'s {named} differs" in err and err.count("\n") == 1, err


@pytest.mark.parametrize(
    "request_no, field, value",
    [(1, "num_removed", 13), (1, "metrics.acc_forget", 0.5), (2, "num_removed", 1), (2, "date", "1999-01-01")],
)
def test_same_edit_in_ledger_and_card_breaks_the_chain(chain2, tmp_path, capsys, no_work, request_no, field, value):
    from hf_unlearn.cli.provenance_commands import verify_main

    parent = tmp_path / "parent"
    shutil.copytree(chain2, parent)
    _edit_json(parent / "ledger.json", lambda d: _set(d["requests"][request_no - 1], field, value))
    _edit_card(parent, lambda b: _set(b["requests"][request_no - 1], field, value))
    expected = (
        "request 1's record does not hash to the previous_sha256 that request 2 holds"
        if request_no == 1
        else "does not hash to the card's chain_sha256"
    )
    out = tmp_path / "child"
    run_cli(["--model_name_or_path", parent, "--max_steps", "1", "--output_dir", out, *FAST], capsys, 2, expected)
    assert not out.exists()
    # a card alone (as on the Hub: no ledger) is checked too
    (parent / "ledger.json").unlink()
    capsys.readouterr()
    assert verify_main(["--model", str(parent)]) == 1
    assert expected in capsys.readouterr().err


def test_intact_chain_verifies_and_carries_the_totals(chain2, capsys):
    import json

    from hf_unlearn.cli.provenance_commands import verify_main
    from hf_unlearn.publishing.provenance import load_card_unlearning
    from hf_unlearn.records.ledger import read_ledger, record_sha256

    requests = read_ledger(str(chain2 / "ledger.json"))
    assert requests[0]["previous_sha256"] is None and requests[1]["previous_sha256"] == record_sha256(requests[0])
    block = load_card_unlearning(str(chain2 / "README.md"))
    assert block["chain_sha256"] == record_sha256(requests[-1]) == record_sha256(block["requests"][-1])
    assert block["total_removed"] == sum(r["num_removed"] for r in requests)
    assert (
        json.loads((chain2 / "unlearning_config.json").read_text())["provenance"]["chain_sha256"]
        == block["chain_sha256"]
    )
    capsys.readouterr()
    assert verify_main(["--model", str(chain2)]) == 0
    assert "2 deletion request(s) chained and equal to ledger.json" in capsys.readouterr().out


# ---- 3. config-file values are type-checked against the dataclass fields ----------------------------------------
def _config_classes(method="lotus"):
    from hf_unlearn import UnlearningArguments, get_method_class
    from hf_unlearn.cli.args import ScriptArguments

    return ScriptArguments, UnlearningArguments, get_method_class(method).config_class


#: bad values by field type (``X | None`` as ``X``): each must be refused, naming the key and the expected type
BAD_BY_TYPE = {
    "bool": [1, 0, 8.7, [True], "maybe"],
    "int": [True, 8.7, [1, 2], "eight"],
    "float": [True, False, [1, 2], "fast"],
    "str": [True, 8.7, [1, 2]],
    "list[str]": [True, [1.5], [True], 2.5],
    "list[float]": [True, ["x"], [True], "x"],
    "dict | str": [True, 8.7, [1]],
    "dict[str, typing.Any] | str": [True, 8.7, [1]],
    "dict[str, bool]": [True, "x", 8.7],
    "str | bool": [8.7, [1]],
    "str | list[str]": [True, 8.7, [1.5]],
    "enum | str": [True, 8.7, [1]],
    "str | list[DebugOption]": [True, 8.7],
    "str | Literal[False]": [True, 8.7, [1]],
    "ParallelismConfig": [True, "x", 8.7],
}


def _type_key(tp) -> str:
    import enum
    import typing

    text = str(tp).replace("<class '", "").replace("'>", "")
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) in (typing.Union, __import__("types").UnionType) and len(args) == 1:
        return _type_key(args[0])
    if any(isinstance(a, type) and issubclass(a, enum.Enum) for a in args):
        return "enum | str"
    if "Literal[False]" in text:
        return "str | Literal[False]"
    if "DebugOption" in text:
        return "str | list[DebugOption]"
    if "ParallelismConfig" in text:
        return "ParallelismConfig"
    return text.replace(" | None", "").replace("None | ", "")


def _config_type_cases():
    """Every field of the script's and every method's dataclass; of TrainingArguments' fields, the first of each
    type and the ones the issue named."""
    import dataclasses
    import typing

    from hf_unlearn import list_methods

    cases, seen_types = [], set()
    named = {
        "num_train_epochs",
        "per_device_train_batch_size",
        "learning_rate",
        "seed",
        "save_strategy",
        "lr_scheduler_kwargs",
        "report_to",
    }
    for method in [m for m in list_methods() if not m.startswith("_")]:
        script_cls, args_cls, config_cls = _config_classes(method)
        for cls in (script_cls, args_cls, config_cls) if method == "lotus" else (config_cls,):
            hints = typing.get_type_hints(cls)
            for f in dataclasses.fields(cls):
                if not f.init or f.name in ("method", "local_rank"):
                    continue
                kind = _type_key(hints[f.name])
                if cls is args_cls and f.name not in named and kind in seen_types:
                    continue
                seen_types.add(kind)
                assert kind in BAD_BY_TYPE, f"{cls.__name__}.{f.name}: no bad values for type {kind}"
                cases += [(method, f.name, value) for value in BAD_BY_TYPE[kind]]
    return cases


@pytest.mark.parametrize("method, key, value", _config_type_cases(), ids=lambda x: repr(x)[:40])
def test_config_value_of_the_wrong_type_is_refused(tmp_path, method, key, value):
    import json

    from hf_unlearn.cli.args import UsageError, parse_args

    path = tmp_path / "run.json"
    path.write_text(json.dumps({"method": method, key: value}))
    with pytest.raises(UsageError, match=rf"config file .*run\.json: '{key}' must be .*, got .*fix that value"):
        parse_args(["--config", str(path), "--output_dir", str(tmp_path / "out")])


# the issue's cases, through the CLI: one error line, exit 2, nothing written
ISSUE_CONFIGS = [
    ("num_train_epochs: true", "'num_train_epochs' must be a number, got true (a boolean)"),
    ("num_train_epochs: [1, 2]", "'num_train_epochs' must be a number, got [1, 2] (a list)"),
    ("per_device_train_batch_size: 8.7", "'per_device_train_batch_size' must be an integer, got 8.7"),
    ("forget_classes: [1.5]", "'forget_classes' must be a list of strings or null, got [1.5]"),
    ("use_cpu: 1", "'use_cpu' must be true or false, got 1 (an integer)"),
    ("alpha: [2, 3]", "'alpha' must be a number, got [2, 3]"),
    ("alpha_search: true", "'alpha_search' must be a list of numbers or null, got true"),
    ("seed: 1.5", "'seed' must be an integer, got 1.5"),
]


@pytest.mark.parametrize("text, expected", ISSUE_CONFIGS, ids=[c[0] for c in ISSUE_CONFIGS])
def test_wrong_config_types_exit_2_before_any_work(tmp_path, capsys, no_work, text, expected):
    path = tmp_path / "run.yaml"
    path.write_text(f"default_arch: resnet\n{text}\n")
    out = tmp_path / "out"
    run_cli(["--config", path, "--output_dir", out, *FAST], capsys, 2, expected)
    assert not out.exists()


def test_config_values_converted_as_flags_would_be(tmp_path):
    from hf_unlearn.cli.args import parse_args

    path = tmp_path / "run.yaml"
    path.write_text(
        "learning_rate: 1e-4\nper_device_train_batch_size: 8.0\nforget_classes: 3\nuse_cpu: 'true'\n"
        "num_train_epochs: 2\nalpha_search: [2, 4.5]\ndataset_config_name: 2020\n"
    )
    script, args, config = parse_args(["--config", str(path), "--output_dir", str(tmp_path / "out")])
    assert args.learning_rate == 1e-4 and args.per_device_train_batch_size == 8
    assert isinstance(args.per_device_train_batch_size, int) and args.use_cpu is True
    assert script.forget_classes == ["3"] and args.num_train_epochs == 2.0 and config.alpha_search == [2.0, 4.5]
    assert script.dataset_config_name == "2020"


# ---- 6. a range error quotes the default that applies to the run -------------------------------------------------
# (method, extra flags, bad flag and value, the default quoted). The embedded preset (no --model/--dataset) applies to
# LoTUS only; with a model and dataset named, the method's own training defaults apply.
NAMED = ["--model_name_or_path", "{model}", "--dataset_name", "{data}"]
DEFAULT_CASES = [
    ("lotus", NAMED, "per_device_train_batch_size", "0", "(default 128)"),
    ("lotus", NAMED, "num_train_epochs", "-1", "(default 10)"),
    ("lotus", NAMED, "learning_rate", "-1", "(default 0.0001)"),
    ("lotus", NAMED, "alpha", "-1", "(default 2.0)"),
    ("lotus", [], "per_device_train_batch_size", "0", "(default 32)"),
    ("lotus", [], "learning_rate", "-1", "(default 0.0005)"),
    ("lotus", [], "alpha", "-1", "(default 32.0)"),
    ("lotus", [], "num_train_epochs", "-1", "(default 10)"),
    ("lotus", [], "weight_decay", "-1", "(default 0.0005)"),
]


def _method_default_cases():
    """For every method, each training default it sets that has a range: the error quotes it."""
    from hf_unlearn import get_method_class, list_methods
    from hf_unlearn.training.ranges import TRAINING_ARGUMENT_RANGES, Interval

    cases = []
    for method in [m for m in list_methods() if not m.startswith("_")]:
        for key, value in get_method_class(method).training_defaults.items():
            interval = TRAINING_ARGUMENT_RANGES.get(key)
            if interval is None or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if value not in Interval.parse(interval):
                continue
            bad = "-1" if -1 not in Interval.parse(interval) else "nan"
            cases.append((method, NAMED, key, bad, f"(default {value})"))
    return cases


@pytest.mark.parametrize(
    "method, extra, flag, value, quoted", DEFAULT_CASES + _method_default_cases(), ids=lambda x: str(x)[:30]
)
def test_range_errors_quote_the_default_that_applies(
    original_path, digits_dir, tmp_path, capsys, no_work, method, extra, flag, value, quoted
):
    argv = [
        "--method",
        method,
        *[a.format(model=original_path, data=digits_dir) for a in extra],
        f"--{flag}",
        value,
        "--output_dir",
        tmp_path / "out",
        *FAST,
    ]
    line = run_cli(argv, capsys, 2, f"--{flag} must be")
    assert quoted in line, line
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def digits_dir(tmp_path_factory):
    import datasets

    from hf_unlearn.data.builtin import load_digits_dataset

    root = tmp_path_factory.mktemp("digits_small")
    small = datasets.DatasetDict({k: v.select(range(60)) for k, v in load_digits_dataset().items()})
    small.save_to_disk(str(root / "digits"))
    return root / "digits"


def test_python_range_errors_quote_the_method_defaults():
    from hf_unlearn import UnlearningArguments

    with pytest.raises(ValueError, match=r"\(default 0\.0001\)"):
        UnlearningArguments.for_method("lotus", output_dir="unused", learning_rate=-1.0)
    with pytest.raises(ValueError, match=r"\(default 128\)"):
        UnlearningArguments.for_method("lotus", output_dir="unused", per_device_train_batch_size=0)


# ---- 7. a flag that another flag makes meaningless is refused, not silently ignored --------------------------------
IGNORED = [
    (["--alpha_search", "2", "4", "--alpha", "8"], "--alpha 8 would be ignored: --alpha_search tries alpha 2, 4"),
    (["--model_name_or_path", "{model}", "--alpha_search", "2", "4", "--alpha", "32"], "--alpha 32 would be ignored"),
    (["--config", "{config}", "--alpha_search", "2", "4"], "--alpha 8 would be ignored"),
    (
        ["--forget_classes", "3", "--forget_selection", "first"],
        "--forget_selection first applies only to --forget_fraction and would be ignored with --forget_classes",
    ),
    (["--forget_ids_file", "{ids}", "--forget_selection", "first"], "would be ignored with --forget_ids_file"),
    (["--push_removed_ids", "true"], "--push_removed_ids only matters with --push_to_hub"),
]


@pytest.mark.parametrize("flags, expected", IGNORED, ids=[" ".join(f[:4]) for f, _ in IGNORED])
def test_ignored_flag_combinations_are_refused(original_path, tmp_path, capsys, no_work, flags, expected):
    (tmp_path / "c.yaml").write_text("alpha: 8\n")
    (tmp_path / "ids.txt").write_text("digits-0001\n")
    argv = [a.format(model=original_path, config=tmp_path / "c.yaml", ids=tmp_path / "ids.txt") for a in flags]
    out = tmp_path / "out"
    run_cli(["--default_arch", "resnet", *argv, "--output_dir", out, *FAST], capsys, 2, expected)
    assert not out.exists()


@pytest.mark.parametrize(
    "flags",
    [
        ["--alpha_search", "2", "4"],  # --alpha left at its default (the embedded preset's 32)
        ["--alpha_search", "2", "4", "--alpha", "32"],  # explicitly the default
        ["--forget_classes", "3"],
        ["--forget_fraction", "0.2", "--forget_selection", "first"],
    ],
)
def test_meaningful_combinations_pass_the_checks(tmp_path, flags):
    from hf_unlearn.cli.run import check_arguments

    run = check_arguments([*flags, "--default_arch", "resnet", "--output_dir", str(tmp_path / "out"), *FAST])
    assert run.script is not None


# ---- 4. a launch whose ranks did not form one group; an output is never finished without its weights -------------
LAUNCHES = [  # through a real process (the other launcher variables: test_process_group_check)
    {"RANK": "1", "WORLD_SIZE": "2"},  # the surviving rank 1 of the issue
    {"OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_RANK": "1"},
]


@pytest.mark.parametrize("launch", LAUNCHES, ids=lambda e: ",".join(f"{k}={v}" for k, v in e.items()))
def test_ranks_that_did_not_form_a_group_are_refused(tmp_path, launch):
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")}
    env.update(launch, HF_UNLEARN_CACHE=str(tmp_path / "cache"))
    out = tmp_path / "out"
    # no --use_cpu: on a machine without a GPU each process then has world size 1 (as FSDP/DeepSpeed without GPUs)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "hf_unlearn",
            "unlearn",
            "--default_arch",
            "resnet",
            "--max_steps",
            "1",
            "--disable_tqdm",
            "true",
            "--output_dir",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert len(lines) == 1 and "did not form one group" in lines[0] and "--use_cpu" in lines[0], proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert not out.exists() and not (tmp_path / "cache").exists()  # refused before any model was trained or loaded


@pytest.mark.parametrize(
    "world_size, environ, ok",
    [
        (1, {}, True),
        (1, {"WORLD_SIZE": "1"}, True),
        (2, {"WORLD_SIZE": "2", "RANK": "1"}, True),
        (1, {"WORLD_SIZE": "2", "RANK": "1"}, False),
        (2, {"WORLD_SIZE": "4"}, False),
        (1, {"PMI_SIZE": "3"}, False),
        (1, {"WORLD_SIZE": "two"}, False),
    ],
)
def test_process_group_check(world_size, environ, ok):
    from hf_unlearn.training.checks import check_process_group

    if ok:
        check_process_group(world_size, environ)
    else:
        with pytest.raises(ValueError, match="launch"):
            check_process_group(world_size, environ)


def _no_weights(model, folder, processor=None, **kwargs):  # what a process that is not torch rank 0 saves
    model.config.save_pretrained(folder)


def _finalize(make_trainer, forget_split, out):
    from hf_unlearn.publishing.output import finalize_output_dir

    trainer = make_trainer("finetune", max_steps=1, output_dir=str(out))
    return finalize_output_dir(trainer, {}, forget_split)


@pytest.mark.parametrize("fault", ["no-weights", "weights-changed"])
def test_output_is_never_finished_without_its_weights(make_trainer, forget_split, tmp_path, monkeypatch, fault):
    import hf_unlearn.modeling.classifiers
    import hf_unlearn.publishing.output as output
    from hf_unlearn.publishing.output import IncompleteOutputError

    out = tmp_path / "out"
    if fault == "no-weights":
        monkeypatch.setattr(hf_unlearn.modeling.classifiers, "save_classifier", _no_weights)
        expected = "no weights file was written"
    else:
        write = output._write_staging

        def then_change(trainer, staging, *a, **k):  # the weights change after the card recorded their hash
            write(trainer, staging, *a, **k)
            with open(os.path.join(staging, "model.safetensors"), "ab") as f:
                f.write(b"\0")

        monkeypatch.setattr(output, "_write_staging", then_change)
        expected = "not the ones the card records"
    with pytest.raises(IncompleteOutputError, match=expected):
        _finalize(make_trainer, forget_split, out)
    left = sorted(os.listdir(out)) if out.exists() else []
    assert not {"metrics.json", "README.md", "ledger.json", "model.safetensors", ".incomplete"} & set(left), left


def test_finished_output_holds_the_weights_its_card_records(make_trainer, forget_split, tmp_path):
    from hf_unlearn.publishing.output import weights_sha256
    from hf_unlearn.publishing.provenance import load_card_unlearning

    out = _finalize(make_trainer, forget_split, tmp_path / "out")
    block = load_card_unlearning(os.path.join(out, "README.md"))
    assert block["weights_sha256"] == weights_sha256(out) and "model.safetensors" in block["weights_sha256"]
