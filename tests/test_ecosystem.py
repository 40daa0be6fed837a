"""Issue 14 (ecosystem): --model/--dataset, the hf-unlearn console script and its subcommands, config files,
--help order and defaults, push-metrics to Spaces, progress of the embedded original, card metadata, timm ids."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # hub_server

from hf_unlearn.cli.commands import SUBCOMMANDS, main  # noqa: E402
from hf_unlearn.cli.main import EMBEDDED_DEFAULT_PRESET, UsageError, parse_args, run_unlearning  # noqa: E402

FAST = ["--default_arch", "resnet", "--max_steps", "2", "--use_cpu", "--disable_tqdm", "true"]
PAPER = {"alpha": 2.0, "per_device_train_batch_size": 128, "learning_rate": 1e-4}  # lotus's own defaults
PRESET = EMBEDDED_DEFAULT_PRESET["lotus"]


def _settings(argv):
    script, args, config = parse_args(argv)
    return script, {
        "alpha": config.alpha,
        "per_device_train_batch_size": args.per_device_train_batch_size,
        "learning_rate": args.learning_rate,
    }


def _help(argv, capsys) -> str:
    with pytest.raises(SystemExit) as done:
        parse_args(argv)
    assert done.value.code == 0
    return capsys.readouterr().out


# ---- item 1: --model / --dataset, the embedded preset from parsed values ------------------------------------------
def test_model_and_dataset_are_short_forms():
    script, _ = _settings(["--model", "google/vit-base-patch16-224", "--dataset", "uoft-cs/cifar10"])
    assert script.model_name_or_path == "google/vit-base-patch16-224" and script.dataset_name == "uoft-cs/cifar10"
    script, _ = _settings(["--model=a/b"])
    assert script.model_name_or_path == "a/b"


@pytest.mark.parametrize(
    "spelling",
    [
        ["--model", "a/b"],
        ["--model=a/b"],
        ["--model_name_or_path", "a/b"],
        ["--model-name-or-path", "a/b"],
        ["--model_name", "a/b"],
        ["--dataset", "d/e"],
        ["--dataset-name", "d/e"],
        ["--dataset_name=d/e"],
    ],
)
def test_any_spelling_of_a_model_or_dataset_turns_the_embedded_preset_off(spelling):
    script, settings = _settings(spelling)
    assert (script.model_name_or_path or script.dataset_name) in ("a/b", "d/e")
    assert settings == PAPER


def test_embedded_preset_applies_without_model_and_dataset_and_flags_override_it():
    assert _settings([])[1] == PRESET
    assert _settings(["--learning_rate", "0.01"])[1] == {**PRESET, "learning_rate": 0.01}


# ---- item 2: console script, python -m, subcommands, config files ------------------------------------------------
def test_console_script_is_declared_and_points_at_commands_main():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '[project.scripts]\nhf-unlearn = "hf_unlearn.cli.commands:main"' in pyproject
    assert set(SUBCOMMANDS) >= {"unlearn", "push", "push-metrics", "benchmark", "proof", "verify"}


def test_hf_unlearn_help_lists_the_subcommands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("unlearn", "push", "push-metrics", "benchmark", "proof", "verify"):
        assert re.search(rf"^  {re.escape(name)}\s", out, re.M), name
    assert main([]) == 2  # no command: the same list, as a usage error
    assert main(["frobnicate"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown command 'frobnicate'") and "\n" not in err


def test_python_m_hf_unlearn_lists_scrub_flags_first(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "hf_unlearn", "unlearn", "--method", "scrub", "--help"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    flags = re.findall(r"^  (--[a-z_]+)", done.stdout, re.M)
    assert flags[:2] == ["--method", "--scrub_max_steps"]
    assert flags.index("--temperature") < flags.index("--model_name_or_path") < flags.index("--learning_rate")
    assert done.stdout.startswith("usage: hf-unlearn unlearn")


def test_proof_and_verify_dispatch_to_provenance_or_say_not_available(monkeypatch, capsys):
    import types

    calls = []
    fake = types.ModuleType("hf_unlearn._fake_provenance")
    fake.proof_main = lambda argv: calls.append(("proof", argv)) or 0
    fake.verify_main = lambda argv: calls.append(("verify", argv)) or 3
    monkeypatch.setitem(sys.modules, "hf_unlearn._fake_provenance", fake)
    monkeypatch.setitem(SUBCOMMANDS, "proof", ("hf_unlearn._fake_provenance", "proof_main", ""))
    monkeypatch.setitem(SUBCOMMANDS, "verify", ("hf_unlearn._fake_provenance", "verify_main", ""))
    assert main(["proof", "--x", "1"]) == 0 and main(["verify"]) == 3
    assert calls == [("proof", ["--x", "1"]), ("verify", [])]
    monkeypatch.setitem(SUBCOMMANDS, "proof", ("hf_unlearn._absent_module_for_tests", "proof_main", ""))
    assert main(["proof"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not available in this version" in err[0]


def test_push_and_benchmark_subcommands_keep_the_scripts_flags(capsys):
    import dataclasses
    import runpy

    from hf_unlearn.cli.push import PushArguments

    fields = {f.name for f in dataclasses.fields(PushArguments)}
    assert fields >= {
        "output_dir",
        "repo_id",
        "private",
        "revision",
        "create_pr",
        "token",
        "push_removed_ids",
        "commit_message",
        "endpoint",
    }
    assert runpy.run_path(str(ROOT / "scripts" / "push_to_hub.py"))["main"].__module__ == "hf_unlearn.cli.push"
    assert main(["push", "--help"]) == 0
    assert "--repo_id" in capsys.readouterr().out
    assert main(["benchmark", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--quick" in out and "--class_unlearning" in out
    assert main(["push", "--output_dir", "x"]) == 2  # missing --repo_id: argparse's usage error, as an exit code


def test_config_file_values_are_defaults_that_flags_override(tmp_path):
    yaml_file = tmp_path / "run.yaml"
    yaml_file.write_text(
        "method: finetune\nmodel: org/model\nlearning_rate: 0.01\nnum_train_epochs: 3\nforget_classes: ['3', '5']\n"
    )
    script, args, _ = parse_args(["--config", str(yaml_file), "--learning_rate", "0.02"])
    assert (args.method, script.model_name_or_path, args.learning_rate, args.num_train_epochs) == (
        "finetune",
        "org/model",
        0.02,
        3,
    )
    assert script.forget_classes == ["3", "5"]
    json_file = tmp_path / "run.json"
    json_file.write_text(json.dumps({"method": "scrub", "temperature": 2.0, "output_dir": "runs/s"}))
    script, args, config = parse_args([str(json_file)])  # transformers' lone .json argument
    assert (args.method, config.temperature, args.output_dir, script.model_name_or_path) == (
        "scrub",
        2.0,
        "runs/s",
        None,
    )
    script, args, config = parse_args([str(json_file), "--method", "scrub", "--temperature", "5"])
    assert config.temperature == 5.0


def test_config_file_beats_the_embedded_preset_and_counts_as_naming_a_model(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("alpha: 3.0\n")
    assert _settings(["--config", str(f)])[1] == {**PRESET, "alpha": 3.0}
    f.write_text("model_name_or_path: org/model\n")
    assert _settings(["--config", str(f)])[1] == PAPER


@pytest.mark.parametrize(
    "content,needle",
    [
        ("alpah: 3\n", "unknown keys: alpah"),
        ("- a\n- b\n", "mapping"),
        ("a: [1,\n", "cannot be parsed"),
        ("x:\n  y: 1\n", "nested"),
    ],
)
def test_bad_config_files_are_one_line_usage_errors(tmp_path, content, needle, capsys):
    f = tmp_path / "c.yaml"
    f.write_text(content)
    with pytest.raises(UsageError, match=needle):
        parse_args(["--config", str(f)])
    assert run_unlearning(["--config", str(f), "--output_dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: config file") and "\n" not in err and not (tmp_path / "out").exists()
    with pytest.raises(UsageError, match="does not exist"):
        parse_args(["--config", str(tmp_path / "missing.json")])


# ---- item 4: --help order and defaults ---------------------------------------------------------------------------
def _default_of(help_text: str, flag: str) -> str:
    block = help_text.split(f"  {flag} ", 1)[1].split("\n  --", 1)[0]
    return re.search(r"\(default: ([^)]*)\)", " ".join(block.split())).group(1)


def test_help_starts_with_method_and_script_options_then_the_trainer(capsys):
    text = _help(["--help"], capsys)
    assert len(text.splitlines()) > 300  # every TrainingArguments flag is still listed
    head = "\n".join(text.splitlines()[:40])
    assert "--method" in head and "--alpha" in head
    order = [
        text.index(f"\n  {flag} ")
        for flag in (
            "--method",
            "--alpha",
            "--model_name_or_path",
            "--fail_on_nonfinite_loss",
            "--learning_rate",
            "--adam_beta1",
        )
    ]
    assert order == sorted(order)
    # the defaults shown are lotus's own, not the embedded preset ...
    assert _default_of(text, "--learning_rate") == "0.0001"
    assert _default_of(text, "--per_device_train_batch_size") == "128"
    assert _default_of(text, "--alpha") == "2.0"
    # ... which is printed as a note, only when it applies (no model, no dataset)
    assert "embedded default" in text and "--alpha 32.0" in text
    text = _help(["--model", "org/model", "--help"], capsys)
    assert "--alpha 32.0" not in text and _default_of(text, "--alpha") == "2.0"
    text = _help(["--method", "scrub", "--help"], capsys)
    assert "--alpha 32.0" not in text and _default_of(text, "--alpha") == "0.001"


# ---- item 5: progress of the embedded original's training --------------------------------------------------------
def test_embedded_original_training_reports_epochs_loss_and_accuracy(monkeypatch, tmp_path, digits, capsys):
    from hf_unlearn.data import builtin

    monkeypatch.setenv("HF_UNLEARN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(builtin.DIGITS_RECIPES, "resnet", (8, 2, 3e-3))  # 2 epochs: a different cache key
    lines = []
    path = builtin.original_model("resnet", dataset=digits, progress=lines.append)
    assert [re.sub(r"[\d.]+", "N", line) for line in lines[1:3]] == [
        "original resnet (digits): epoch N/N: loss N, train accuracy N, N s"
    ] * 2
    assert lines[1].startswith("original resnet (digits): epoch 1/2") and lines[2].split("epoch ")[1].startswith("2/2")
    accuracy = float(re.search(r"train accuracy ([\d.]+)", lines[2]).group(1))
    assert 0.0 < accuracy <= 1.0
    assert lines[0].startswith("training the embedded default's original") and "trained" in lines[-1]
    capsys.readouterr()
    # a progress bar (stderr) with the same numbers, and quiet when progress is None
    monkeypatch.setitem(builtin.DIGITS_RECIPES, "resnet", (8, 1, 3e-3))
    builtin.original_model("resnet", dataset=digits, progress=lambda m: None, progress_bar=True)
    err = capsys.readouterr().err
    assert "original resnet (digits)" in err and "loss=" in err and "accuracy=" in err and "1/1" in err
    monkeypatch.setitem(builtin.DIGITS_RECIPES, "resnet", (8, 3, 3e-3))
    builtin.original_model("resnet", dataset=digits, progress=None, progress_bar=True)
    assert capsys.readouterr() == ("", "")
    assert os.path.isfile(os.path.join(path, "model.safetensors"))


@pytest.mark.parametrize(
    "flags,bar,quiet",
    [
        (["--disable_tqdm", "false"], True, False),
        (["--disable_tqdm", "true"], False, False),
        (["--log_level", "error", "--disable_tqdm", "false"], True, True),
    ],
)
def test_cli_passes_progress_settings_to_the_embedded_original(monkeypatch, tmp_path, flags, bar, quiet):
    from hf_unlearn.data import builtin

    seen = {}

    def fake_original_model(arch, **kwargs):
        seen.update(kwargs)
        raise UsageError("stop here")  # the rest of the run is not what this test checks

    monkeypatch.setattr(builtin, "original_model", fake_original_model)
    assert run_unlearning(["--output_dir", str(tmp_path / "o"), "--use_cpu", *flags]) == 2
    assert seen["progress_bar"] is bar and (seen["progress"] is None) is quiet


# ---- item 6: the card's license, base_model, datasets, metrics ---------------------------------------------------
def _card(original, dataset_id=None):
    from hf_unlearn.publishing.card import build_model_card

    record = {
        "dataset": {"name": dataset_id or "local-data", "split": "train"},
        "num_removed": 3,
        "num_retained": 7,
        "selection": {"rule": "ids"},
        "commitment": {"algorithm": "sha256", "value": "ab" * 32},
    }
    metrics = {
        "original": {"acc_forget": 1.0, "mia": 0.9, "rf_jsd": 0.1},
        "unlearned": {"acc_forget": 0.8, "mia": 0.5, "rf_jsd": 0.01},
    }
    return build_model_card(
        method="lotus",
        hyperparameters={},
        removal_record=record,
        metrics=metrics,
        original_model=original,
        dataset_id=dataset_id,
    )


def test_describe_original_reads_license_and_base_model_from_a_local_directory(tmp_path):
    from hf_unlearn.publishing.card_metadata import describe_original

    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "config.json").write_text(json.dumps({"model_type": "vit", "_name_or_path": "google/vit-base-patch16-224"}))
    (hf / "README.md").write_text("---\nlicense: mit\n---\n# a fine-tune\n")
    assert describe_original(str(hf)) == {
        "base_model": "google/vit-base-patch16-224",
        "license": "mit",
        "license_source": "model card",
        "detected_license": "mit",
    }
    # --license wins; what the original declares is kept next to it
    assert describe_original(str(hf), license="other") == {
        "base_model": "google/vit-base-patch16-224",
        "license": "other",
        "license_source": "--license",
        "detected_license": "mit",
    }
    timm_dir = tmp_path / "timm"
    timm_dir.mkdir()
    (timm_dir / "config.json").write_text(
        json.dumps(
            {
                "architecture": "resnet18",
                "num_classes": 10,
                "pretrained_cfg": {"hf_hub_id": "timm/resnet18.a1_in1k", "license": "apache-2.0"},
            }
        )
    )
    assert describe_original(str(timm_dir))["base_model"] == "timm/resnet18.a1_in1k"
    assert describe_original(str(timm_dir))["license_source"] == "config"
    trainer_card = tmp_path / "trainer"  # transformers 5 drops _name_or_path; Trainer cards name the base model
    trainer_card.mkdir()
    (trainer_card / "config.json").write_text(json.dumps({"model_type": "vit"}))
    (trainer_card / "README.md").write_text("---\nbase_model: google/vit-base-patch16-224\n---\n")
    assert describe_original(str(trainer_card))["base_model"] == "google/vit-base-patch16-224"
    assert describe_original(str(trainer_card))["license"] is None
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "config.json").write_text(json.dumps({"model_type": "vit", "_name_or_path": str(tmp_path)}))
    assert describe_original(str(plain))["base_model"] is None  # a local path is never a base_model


def test_card_has_license_base_model_datasets_and_metrics_at_the_top_level():
    card = _card(
        {
            "name_or_path": "/data/models/vit-ft",
            "base_model": "google/vit-base-patch16-224",
            "license": "apache-2.0",
            "license_source": "model card",
        },
        dataset_id="uoft-cs/cifar10",
    )
    assert card.data.license == "apache-2.0"
    assert card.data.base_model == "google/vit-base-patch16-224"
    assert card.data.datasets == ["uoft-cs/cifar10"]
    assert card.data.metrics == ["accuracy", "mia", "rf_jsd"]
    assert "| License | `apache-2.0` (from the original model's card) |" in card.text
    assert "| Base model (Hub) | [google/vit-base-patch16-224]" in card.text
    assert "`vit-ft` (a local checkpoint)" in card.text  # the original itself is still the local directory
    card = _card({"name_or_path": "/data/models/vit-ft"})
    assert card.data.license is None and card.data.base_model is None and card.data.datasets is None
    assert "license: " not in card.content.split("---")[1]
    assert "| License | not set: the original model's license is unknown; set one with `--license`" in card.text


def test_license_flag_reaches_the_card_and_a_bad_one_is_refused(original_path, tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        main(
            [
                "unlearn",
                "--model",
                original_path,
                "--method",
                "finetune",
                "--license",
                "mit",
                "--output_dir",
                str(out),
                *FAST,
            ]
        )
        == 0
    ), capsys.readouterr().err
    card = (out / "README.md").read_text()
    assert "\nlicense: mit\n" in card and "(set with --license)" in card
    assert json.loads((out / "unlearning_config.json").read_text())["original_model"]["license"] == "mit"
    assert json.loads((out / "metrics.json").read_text())["run"]["method"] == "finetune"
    capsys.readouterr()
    assert main(["unlearn", "--license", "MIT License", "--output_dir", str(tmp_path / "bad"), *FAST]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --license 'MIT License' is not a license id") and not (tmp_path / "bad").exists()


# ---- item 7: timm ids --------------------------------------------------------------------------------------------
def test_timm_hub_ids_are_translated_for_timm_1_0(monkeypatch, tmp_path):
    import timm

    from hf_unlearn import load_classifier

    received = []

    def fake_create_model(name, **kwargs):
        received.append(name)
        raise RuntimeError("no network in tests")

    monkeypatch.setattr(timm, "create_model", fake_create_model)
    for name in ("timm/resnet18.a1_in1k", "hf-hub:timm/resnet18.a1_in1k"):
        with pytest.raises(ValueError, match="cannot load timm model"):
            load_classifier(name)
    local = tmp_path / "timm-model"
    local.mkdir()
    (local / "config.json").write_text(json.dumps({"architecture": "resnet18", "num_classes": 3}))
    with pytest.raises(ValueError):
        load_classifier(str(local))
    assert received == ["hf-hub:timm/resnet18.a1_in1k", "hf-hub:timm/resnet18.a1_in1k", f"local-dir:{local}"]


# ---- item 3: push-metrics to Spaces, then evaluate.load("ORG/rf_jsd") in a fresh process elsewhere ---------------
def test_push_metrics_publishes_spaces_that_evaluate_loads_from_anywhere(tmp_path):
    from hub_server import HubServer

    from hf_unlearn import metric_path

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with HubServer() as hub:
        env = {**os.environ, **hub.env(tmp_path / "hf_home"), "PYTHONPATH": str(ROOT)}
        done = subprocess.run(
            [sys.executable, "-m", "hf_unlearn", "push-metrics", "--namespace", "test-org"],
            cwd=elsewhere,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        for name in ("rf_jsd", "jsd", "mia"):
            space = hub.space(f"test-org/{name}")
            assert space.repo_type == "space" and not space.private
            files = space.files()
            assert {f"{name}.py", "README.md", "app.py", "requirements.txt"} <= files.keys()
            assert not any("__pycache__" in p for p in files)
            assert files[f"{name}.py"] == (Path(metric_path(name)) / f"{name}.py").read_bytes()
            assert b"sdk: gradio" in files["README.md"] and b"app_file: app.py" in files["README.md"]
        assert f"test-org/{'rf_jsd'}" not in hub.repos  # Spaces are kept apart from models

        script = textwrap.dedent("""
            import json, evaluate
            preds = [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.5, 0.4, 0.1], [0.3, 0.3, 0.4], [0.1, 0.1, 0.8]]
            refs = [0, 1, 2, 0, 1, 2]
            subset = ["forget"] * 3 + ["test"] * 3
            print(json.dumps(evaluate.load("test-org/rf_jsd").compute(predictions=preds, references=refs, subset=subset)))
        """)
        fresh = {k: v for k, v in env.items() if k != "PYTHONPATH"}
        fresh["HF_HOME"] = str(tmp_path / "hf_home_fresh")  # nothing cached: the module comes from the Space
        loaded = subprocess.run(
            [sys.executable, "-c", script], cwd=elsewhere, env=fresh, capture_output=True, text=True, timeout=300
        )
        assert loaded.returncode == 0, loaded.stderr[-2000:]
        assert any(path.startswith("/spaces/test-org/rf_jsd/resolve/") for _, path, _ in hub.requests)

    import evaluate
    import numpy as np

    preds = np.array(
        [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.5, 0.4, 0.1], [0.3, 0.3, 0.4], [0.1, 0.1, 0.8]]
    )
    local = evaluate.load(metric_path("rf_jsd")).compute(
        predictions=preds, references=[0, 1, 2, 0, 1, 2], subset=["forget"] * 3 + ["test"] * 3
    )
    remote = json.loads(loaded.stdout.strip().splitlines()[-1])
    assert remote == pytest.approx(local) and remote["rf_jsd"] > 0


def test_push_metrics_private_and_bad_input(tmp_path, monkeypatch, capsys):
    import huggingface_hub.constants as hf_constants
    from hub_server import HubServer

    from hf_unlearn.cli.push_metrics import push_metric_spaces

    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)  # conftest: offline; this only talks to 127.0.0.1
    with HubServer() as hub:
        urls = push_metric_spaces("test-org", private=True, names=["mia"], token="hf_dummy", endpoint=hub.url)
        assert list(urls) == ["mia"] and hub.space("test-org/mia").private
        again = push_metric_spaces("test-org", private=True, names=["mia"], token="hf_dummy", endpoint=hub.url)
        assert list(again) == ["mia"]  # an existing Space is updated, not an error
        before = len(hub.requests)
        for argv, needle in (
            (["--namespace", "bad org"], "is not a Hub user or organisation"),
            (["--namespace", "ok", "--metrics", "accuracy"], "unknown metric(s) accuracy"),
        ):
            assert main(["push-metrics", *argv, "--endpoint", hub.url, "--token", "hf_dummy"]) == 2
            err = capsys.readouterr().err.strip()
            assert err.startswith("error: ") and needle in err and "\n" not in err
        assert len(hub.requests) == before  # refused before any request
        hub.fail_next("commit", 403)  # (5xx answers are retried by huggingface_hub)
        assert (
            main(
                [
                    "push-metrics",
                    "--namespace",
                    "test-org",
                    "--metrics",
                    "jsd",
                    "--endpoint",
                    hub.url,
                    "--token",
                    "hf_dummy",
                ]
            )
            == 1
        )
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: pushing the Space test-org/jsd failed") and "\n" not in err


# ---- the README's first command block ----------------------------------------------------------------------------
def test_readme_first_commands_use_hf_unlearn_and_model_and_parse():
    readme = (ROOT / "README.md").read_text()
    head = readme.split("## ", 1)[0]
    commands = re.findall(r"(?:\.venv/bin/)?hf-unlearn unlearn([^`\n]*)", head)
    assert any("--model " in c for c in commands) and len(commands) >= 2
    for command in commands:
        script, args, _ = parse_args(command.split())
        assert args.output_dir
        if "--model" in command:
            assert script.model_name_or_path == "google/vit-base-patch16-224"
