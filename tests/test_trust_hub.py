"""Issue 10 "Trust", part C: what leaves the machine on a Hub push (hf_unlearn.publishing.hub, hf_unlearn.publishing.hub_guard).

Table-driven, against the loopback Hub of tests/hub_server.py: what the fake Hub received, no raw id and no local
path in any uploaded byte, one-line errors, bounded time when the Hub hangs, and the local output directory
byte-identical after every failure.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # hub_server, test_hub

from hub_server import HubServer  # noqa: E402
from test_hub import (  # noqa: E402,F401 - fixtures and helpers shared with the push tests
    METRICS,
    REMOVED_IDS,
    REPO_ROOT,
    TOKEN,
    dir_hashes,
    hub,
    loopback_hub_allowed,
    template_output_dir,
)

from hf_unlearn.publishing.hub import HubPushError, check_repo_id, push_unlearned_to_hub  # noqa: E402
from hf_unlearn.publishing.hub_guard import (  # noqa: E402
    ALLOW_PATTERNS,
    hub_session,
    plan_upload,
    public_name,
    resolve_hub_timeout,
)

# A hanging Hub must fail in bounded time: the tests use a 1 s request timeout; huggingface_hub's default has none
# (the raw socket below would hang forever, the fake Hub's "hang" lasts 30 s). 20 s leaves room for a busy machine.
BOUND_S = 20
RUN_FILES = [
    "README.md",
    "config.json",
    "metrics.json",
    "model.safetensors",
    "preprocessor_config.json",
    "removal_record.json",
    "removed_ids.json",
    "unlearning_config.json",
]
PUSHED = {
    ".gitattributes",
    "README.md",
    "config.json",
    "metrics.json",
    "model.safetensors",
    "preprocessor_config.json",
    "removal_record.json",
    "unlearning_config.json",
}


@pytest.fixture
def run_dir(template_output_dir, tmp_path) -> Path:
    """An output directory as hf_unlearn.publishing.output.finalize_output_dir writes it: with the `files` manifest."""
    dst = tmp_path / "unlearned-run"
    shutil.copytree(template_output_dir, dst)
    config = json.loads((dst / "unlearning_config.json").read_text())
    config["files"] = RUN_FILES
    (dst / "unlearning_config.json").write_text(json.dumps(config, indent=2))
    return dst


def _uploaded(hub: HubServer, repo_id: str) -> dict[str, bytes]:
    return hub.repos[repo_id].files()


def _assert_clean(files: dict[str, bytes], *paths: str) -> None:
    """No raw id and none of `paths` in any uploaded byte."""
    blob = b"\n".join(files.values())
    for i in REMOVED_IDS:
        assert i.encode() not in blob, i
    for p in paths:
        assert p.encode() not in blob, p


def _one_line(err: BaseException, output_dir: Path) -> str:
    message = str(err)
    assert "\n" not in message
    assert f"intact at {output_dir.resolve()}" in message
    return message


# --------------------------------------------------------------------------------------------------------------
# 1. allowlist upload
# --------------------------------------------------------------------------------------------------------------
def _write(root: Path, rel: str, content: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)


SALTED_LEDGER = json.dumps({"entries": [{"id": i, "salt": "c2FsdA=="} for i in REMOVED_IDS]})
EXTRAS = {  # name -> files it adds (relative path -> content); none of them may be uploaded
    "provenance-ledger": {"ledger.json": SALTED_LEDGER},
    "ids-variants": {
        "removed_ids_v2.json": json.dumps(REMOVED_IDS),
        "removed_ids.backup.json": json.dumps(REMOVED_IDS),
    },
    "arrow-data": {"train-00000-of-00001.arrow": "\n".join(REMOVED_IDS), "cache-forget.arrow": REMOVED_IDS[0]},
    "data-folder": {"data/train.json": json.dumps(REMOVED_IDS), "data/config.json": "{}"},
    "notes-and-logs": {"notes.txt": REMOVED_IDS[1], "run.log": REMOVED_IDS[2], "config.yaml": f"x: {REMOVED_IDS[3]}"},
    "stray-weights": {
        "pytorch_model.bin": "not what the run wrote",
        "model.safetensors.bak": "old",
        "adapter_model.safetensors": "x",
    },
    "hidden-and-nested": {
        ".env": f"HF_TOKEN=secret {REMOVED_IDS[4]}",
        "sub/model.safetensors": "x",
        "checkpoint-20/metrics.json": "{}",
    },
}


@pytest.mark.parametrize("extra", sorted(EXTRAS))
def test_allowlist_uploads_only_the_run_files(hub, run_dir, extra, caplog):
    for rel, content in EXTRAS[extra].items():
        _write(run_dir, rel, content)
    before = dir_hashes(run_dir)
    with caplog.at_level(logging.WARNING, logger="hf_unlearn.publishing.hub"):
        push_unlearned_to_hub(run_dir, "test-user/allow", token=TOKEN, endpoint=hub.url)
    files = _uploaded(hub, "test-user/allow")
    assert set(files) == PUSHED
    _assert_clean(files, str(run_dir))
    assert dir_hashes(run_dir) == before
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "\n" not in warnings[0]
    for rel in EXTRAS[extra]:
        top = rel.split("/")[0] + ("/" if "/" in rel else "")
        assert top in warnings[0].split(": ", 1)[1].split(", "), (top, warnings[0])


@pytest.mark.parametrize(
    "case, manifest, push_ids, expected",
    [
        # the manifest narrows the allowlist: an allowlisted name the run did not write is not uploaded
        (
            "manifest-without-processor",
            [f for f in RUN_FILES if f != "preprocessor_config.json"],
            False,
            PUSHED - {"preprocessor_config.json"},
        ),
        # an output directory of an older version (no manifest): the static allowlist alone
        ("no-manifest", None, False, PUSHED),
        # raw ids only on request, and then only removed_ids.json (never the ledger next to it)
        ("push-ids", RUN_FILES, True, PUSHED | {"removed_ids.json"}),
        # a name on the manifest but not on the allowlist is still not uploaded
        ("manifest-lists-ledger", RUN_FILES + ["ledger.json"], False, PUSHED),
    ],
)
def test_allowlist_manifest_table(hub, run_dir, case, manifest, push_ids, expected):
    _write(run_dir, "ledger.json", SALTED_LEDGER)
    config = json.loads((run_dir / "unlearning_config.json").read_text())
    if manifest is None:
        config.pop("files")
    else:
        config["files"] = manifest
    (run_dir / "unlearning_config.json").write_text(json.dumps(config))
    push_unlearned_to_hub(run_dir, f"test-user/{case}", token=TOKEN, endpoint=hub.url, push_removed_ids=push_ids)
    files = _uploaded(hub, f"test-user/{case}")
    assert set(files) == expected
    assert b"c2FsdA==" not in b"".join(files.values())  # the ledger's salts
    if not push_ids:
        _assert_clean(files)


def test_pickle_weights_only_when_they_are_what_was_written(tmp_path):
    root = tmp_path / "out"
    root.mkdir()
    for name in ("config.json", "metrics.json", "removal_record.json", "unlearning_config.json", "pytorch_model.bin"):
        (root / name).write_text("{}")
    assert plan_upload(root)[0] == [
        "config.json",
        "metrics.json",
        "pytorch_model.bin",
        "removal_record.json",
        "unlearning_config.json",
    ]
    (root / "model.safetensors").write_text("x")  # safetensors present: a .bin next to it is not the run's
    files, skipped = plan_upload(root)
    assert "pytorch_model.bin" not in files and "pytorch_model.bin" in skipped and "model.safetensors" in files


def test_a_clean_run_directory_warns_about_nothing(hub, run_dir, caplog):
    for junk in (".incomplete", "checkpoint-10"):
        shutil.rmtree(run_dir / junk)
    for junk in ("trainer_state.json", "forget_set.csv"):
        (run_dir / junk).unlink()
    assert sorted(p.name for p in run_dir.iterdir()) == sorted(set(RUN_FILES) - {"README.md"})
    with caplog.at_level(logging.WARNING, logger="hf_unlearn.publishing.hub"):
        push_unlearned_to_hub(run_dir, "test-user/clean", token=TOKEN, endpoint=hub.url)
    assert caplog.records == []  # removed_ids.json is withheld by design, not "skipped"
    assert set(_uploaded(hub, "test-user/clean")) == PUSHED


@pytest.mark.parametrize(
    "link, target, refused",
    [
        ("model.safetensors", "/etc/passwd", True),  # an allowlisted name pointing outside: refused
        ("config.json", "dataset/forget.csv", True),  # ... or to the dataset
        ("metrics.json", "../elsewhere/metrics.json", True),
        ("notes.txt", "/etc/passwd", False),  # not allowlisted: skipped with the warning
        ("data", "dataset", False),  # a linked folder: skipped, never walked
    ],
)
def test_symlinks_are_never_followed(hub, run_dir, tmp_path, link, target, refused, caplog):
    dataset = tmp_path / "dataset"
    dataset.mkdir()
    (dataset / "forget.csv").write_text("\n".join(REMOVED_IDS))
    (tmp_path / "elsewhere").mkdir()
    shutil.copy(run_dir / "metrics.json", tmp_path / "elsewhere" / "metrics.json")
    path = run_dir / link
    if path.exists():
        path.unlink()
    real = target if os.path.isabs(target) else str(tmp_path / target) if not target.startswith("..") else target
    os.symlink(real, path)
    before = dir_hashes(run_dir)
    if refused:
        with pytest.raises(ValueError, match=rf"{link} is a symbolic link .*never follows links"):
            push_unlearned_to_hub(run_dir, "test-user/links", token=TOKEN, endpoint=hub.url)
        assert hub.requests == []
    else:
        with caplog.at_level(logging.WARNING, logger="hf_unlearn.publishing.hub"):
            push_unlearned_to_hub(run_dir, "test-user/links", token=TOKEN, endpoint=hub.url)
        files = _uploaded(hub, "test-user/links")
        assert set(files) == PUSHED
        assert b"root:" not in b"".join(files.values())
        _assert_clean(files)
        assert link in caplog.text
    assert dir_hashes(run_dir) == before


# --------------------------------------------------------------------------------------------------------------
# 2. no absolute local paths in published files
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "given, expected",
    [
        ("acme/resnet-pets", "acme/resnet-pets"),  # a Hub id stays
        ("resnet-pets", "resnet-pets"),
        (None, None),
        ("{tmp}/models/orig", "orig"),  # absolute
        ("{tmp}/models/orig/", "orig"),
        ("./models/orig", "orig"),  # relative
        ("models/../models/orig", "orig"),  # with ..
        ("{tmp}/link-to-orig", "link-to-orig"),  # symlinked: the name given, not the target's path
        ("~/models/orig", "orig"),  # home
        ("local-dir:{tmp}/models/orig", "orig"),  # timm's form of a local directory
    ],
)
def test_public_name(given, expected, tmp_path, monkeypatch):
    (tmp_path / "models" / "orig").mkdir(parents=True)
    os.symlink(tmp_path / "models" / "orig", tmp_path / "link-to-orig")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert public_name(given.format(tmp=tmp_path) if given else given) == expected


@pytest.mark.parametrize(
    "where",
    [
        "metrics-output-dir",
        "config-cache-path",
        "record-dataset-home",
        "unlearning-config-model",
        "json-escaped",
        "local-paths-arg",
        "any-existing-path",
    ],
)
def test_push_refuses_files_naming_local_paths(hub, run_dir, tmp_path, monkeypatch, where):
    home = tmp_path / "home"
    (home / "data" / "pets").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("HF_UNLEARN_CACHE", str(tmp_path / "hfu-cache"))
    model_dir = tmp_path / "models" / "orig"
    local_paths = ()
    if where == "metrics-output-dir":
        metrics = {**METRICS, "run": {**METRICS["run"], "output_dir": str(run_dir.resolve())}}
        (run_dir / "metrics.json").write_text(json.dumps(metrics))
        offender = "metrics.json"
    elif where == "config-cache-path":
        config = json.loads((run_dir / "config.json").read_text())
        config["_name_or_path"] = str(tmp_path / "hfu-cache" / "originals" / "digits-resnet")
        (run_dir / "config.json").write_text(json.dumps(config))
        offender = "config.json"
    elif where == "record-dataset-home":
        record = json.loads((run_dir / "removal_record.json").read_text())
        record["dataset"]["name"] = str(home / "data" / "pets")
        (run_dir / "removal_record.json").write_text(json.dumps(record))
        offender = "removal_record.json"
    elif where == "unlearning-config-model":  # a path that no longer exists: recorded, so still caught
        config = json.loads((run_dir / "unlearning_config.json").read_text())
        config["original_model"] = {"name_or_path": str(model_dir), "is_hub_id": False}
        (run_dir / "unlearning_config.json").write_text(json.dumps(config))
        offender = "unlearning_config.json"
    elif where == "json-escaped":  # a non-ASCII home, written by json.dump (\\u escapes)
        home = tmp_path / "hömé"
        home.mkdir()
        monkeypatch.setenv("HOME", str(home))
        metrics = {**METRICS, "note": str(home / "x")}
        (run_dir / "metrics.json").write_text(json.dumps(metrics))
        offender = "metrics.json"
    elif where == "any-existing-path":  # not one of the known directories, but it exists on this machine
        (tmp_path / "elsewhere" / "models").mkdir(parents=True)
        metrics = {**METRICS, "note": f"compare with {tmp_path / 'elsewhere' / 'models'}."}
        (run_dir / "metrics.json").write_text(json.dumps(metrics))
        offender = "metrics.json"
    else:  # a dataset directory the caller names (unlearn.py passes --dataset_name and --model_name_or_path)
        dataset_dir = tmp_path / "datasets" / "mine"
        metrics = {**METRICS, "note": f"data from {dataset_dir}"}
        (run_dir / "metrics.json").write_text(json.dumps(metrics))
        local_paths = (str(dataset_dir),)
        offender = "metrics.json"
    before = dir_hashes(run_dir)
    with pytest.raises(ValueError, match=rf"{offender} in .* contains the local path /") as excinfo:
        push_unlearned_to_hub(run_dir, "test-user/paths", token=TOKEN, endpoint=hub.url, local_paths=local_paths)
    assert "\n" not in str(excinfo.value)
    assert hub.requests == []
    assert dir_hashes(run_dir) == before


@pytest.mark.parametrize(
    "recorded, shown",
    [
        ("/data/models/original", "original"),
        ("~/m/orig", "orig"),
        ("../../m/orig", "orig"),
        ("runs/original", "runs/original"),
    ],
)
def test_card_never_shows_a_local_path_recorded_by_an_older_run(recorded, shown):
    from huggingface_hub import ModelCard
    from test_hub import removal_record

    from hf_unlearn.publishing.card import build_model_card

    card = build_model_card(
        method="finetune",
        hyperparameters={},
        removal_record=removal_record(),
        metrics=METRICS,
        original_model={"name_or_path": recorded, "sha256": "ab"},
        original_is_hub=False,
        dataset_id=None,
        library_name="transformers",
        run_info={"date": "2025-06-01"},
    )
    assert ModelCard(str(card)).data.unlearning["original_model"]["name_or_path"] == shown
    if shown != recorded:
        assert recorded not in str(card)


def test_urls_and_relative_names_are_not_local_paths(hub, run_dir, monkeypatch):
    monkeypatch.setenv("HOME", "/root")  # a short home: must not match inside URLs or longer names
    metrics = {**METRICS, "note": "see https://huggingface.co/root/x, /api/models/none, runs/original, /rootfs, /"}
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    push_unlearned_to_hub(run_dir, "test-user/urls", token=TOKEN, endpoint=hub.url)
    assert b"https://huggingface.co/root/x" in _uploaded(hub, "test-user/urls")["metrics.json"]


def test_a_file_swapped_for_a_link_after_the_check_is_not_read(tmp_path):
    from hf_unlearn.publishing.hub_guard import open_no_follow, read_no_follow

    (tmp_path / "config.json").write_text("{}")
    assert read_no_follow(tmp_path / "config.json") == b"{}"
    (tmp_path / "config.json").unlink()
    os.symlink("/etc/passwd", tmp_path / "config.json")
    with pytest.raises(ValueError, match="became a symbolic link during the push"):
        open_no_follow(tmp_path / "config.json")


@pytest.mark.parametrize("form", ["embedded-default", "symlink", "relative", "dotdot", "home"])
def test_recorded_names_are_base_names(form, original_path, digits, tmp_path, monkeypatch):
    """What hf_unlearn.publishing.output / hf_unlearn.data.selection record for the model and the dataset given five ways."""
    from hf_unlearn import select_forget
    from hf_unlearn.publishing.output import original_model_info

    home = tmp_path / "home"
    (home / "work" / "models").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    work = home / "work"
    model_dir = work / "models" / "orig-resnet"
    os.symlink(original_path, model_dir)  # cheap stand-in for a copy; resolved only by the hash
    os.symlink(model_dir, work / "linked-model")
    (work / "digits-local").mkdir()
    monkeypatch.chdir(work)
    model_arg, expected = {
        "embedded-default": (original_path, Path(original_path).name),  # the cache path
        "symlink": (str(work / "linked-model"), "linked-model"),
        "relative": ("models/orig-resnet", "orig-resnet"),
        "dotdot": ("../work/models/orig-resnet", "orig-resnet"),
        "home": (str(home / "work" / "models" / "orig-resnet"), "orig-resnet"),  # absolute, under $HOME
    }[form]
    info = original_model_info(model_arg)
    assert info["name_or_path"] == expected and info["is_hub_id"] is False and info["sha256"]
    dataset_arg = {"relative": "digits-local", "dotdot": "../work/digits-local"}.get(form, str(work / "digits-local"))
    record = select_forget(
        digits["train"].select(range(40)), fraction_per_class=0.25, seed=0, num_labels=10, dataset_name=dataset_arg
    ).record.to_dict()
    assert record["dataset"]["name"] == "digits-local"
    text = json.dumps([info, record])
    assert str(tmp_path) not in text and str(home) not in text and os.path.dirname(original_path) not in text


def test_run_then_push_publishes_no_local_path(original_path, cache_root, digits, tmp_path, monkeypatch, hub, capsys):
    """A real run (scripts/unlearn.py in-process, --push_to_hub) with a symlinked model directory and a local
    dataset directory under $HOME: no uploaded byte names a local path or a removed id; names are base names; the
    uploaded files are exactly the run's manifest minus removed_ids.json."""
    import huggingface_hub.constants as hf_constants

    from hf_unlearn.cli.main import run_unlearning

    home = tmp_path / "home"
    (home / "work" / "models").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setattr(hf_constants, "ENDPOINT", hub.url)
    work = home / "work"
    shutil.copytree(original_path, work / "models" / "orig-resnet")
    os.symlink(work / "models" / "orig-resnet", work / "linked-model")
    dataset_dir = work / "digits-local"
    digits.save_to_disk(str(dataset_dir))
    monkeypatch.chdir(work)
    argv = [
        "--method",
        "finetune",
        "--num_train_epochs",
        "1",
        "--use_cpu",
        "--output_dir",
        "out",
        "--model_name_or_path",
        "linked-model",
        "--dataset_name",
        "digits-local",
        "--push_to_hub",
        "--hub_model_id",
        "test-user/run",
        "--hub_timeout",
        "20",
        "--validation_split",
        "",
        "--test_split",
        "",
    ]  # fewer evaluation passes: this is about the push
    assert run_unlearning(argv) == 0, capsys.readouterr().err
    files = _uploaded(hub, "test-user/run")
    assert set(files) == PUSHED
    local_ids = json.loads((work / "out" / "removed_ids.json").read_text())["ids"]
    blob = b"\n".join(files.values())
    assert not any(i.encode() in blob for i in local_ids)
    for path in (str(tmp_path), str(cache_root), os.path.realpath(tmp_path), str(home)):
        assert path.encode() not in blob, path
    config = json.loads(files["unlearning_config.json"])
    assert config["original_model"]["name_or_path"] == "linked-model"
    assert json.loads(files["removal_record.json"])["dataset"]["name"] == "digits-local"
    assert set(config["files"]) == set(RUN_FILES) | {
        "ledger.json"
    }  # the ledger is written, never pushed (PUSHED above)


# --------------------------------------------------------------------------------------------------------------
# 3. network: timeouts and odd answers
# --------------------------------------------------------------------------------------------------------------
@pytest.fixture
def silent_endpoint():
    """A loopback socket that accepts connections (the kernel completes the handshake) and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.mark.parametrize("how", ["argument", "env"])
def test_silent_endpoint_times_out(run_dir, silent_endpoint, monkeypatch, how):
    from huggingface_hub.utils import _http

    factory = _http._GLOBAL_CLIENT_FACTORY
    before = dir_hashes(run_dir)
    kwargs = {"hub_timeout": 1} if how == "argument" else {}
    if how == "env":
        monkeypatch.setenv("HF_UNLEARN_HUB_TIMEOUT", "1")
    start = time.monotonic()
    with pytest.raises(HubPushError) as excinfo:
        push_unlearned_to_hub(run_dir, "test-user/x", token=TOKEN, endpoint=silent_endpoint, **kwargs)
    elapsed = time.monotonic() - start
    message = _one_line(excinfo.value, run_dir)
    assert elapsed < BOUND_S, elapsed  # 1 s per request, not huggingface_hub's unbounded default
    assert f"no answer from POST {silent_endpoint}/api/repos/create within 1 s" in message
    assert "--hub_timeout" in message
    assert dir_hashes(run_dir) == before
    assert _http._GLOBAL_CLIENT_FACTORY is factory  # no global state leaks out of the push


def test_hang_at_commit_times_out(hub, run_dir):
    before = dir_hashes(run_dir)
    hub.misbehave_next("commit", "hang")
    start = time.monotonic()
    try:
        with pytest.raises(
            HubPushError, match=r"no answer from POST .*/api/models/test-user/x/commit/main within 1 s"
        ):
            push_unlearned_to_hub(run_dir, "test-user/x", token=TOKEN, endpoint=hub.url, hub_timeout=1)
    finally:
        hub.release()
    assert time.monotonic() - start < BOUND_S
    assert set(_uploaded(hub, "test-user/x")) == {".gitattributes"}
    assert dir_hashes(run_dir) == before


@pytest.mark.parametrize("value", [0, -1, "abc", "nan", "inf"])
def test_bad_timeout_refused_before_any_request(hub, run_dir, value, monkeypatch):
    with pytest.raises(ValueError, match="must be a positive number of seconds"):
        push_unlearned_to_hub(run_dir, "test-user/x", token=TOKEN, endpoint=hub.url, hub_timeout=value)
    monkeypatch.setenv("HF_UNLEARN_HUB_TIMEOUT", str(value))
    with pytest.raises(ValueError, match="HF_UNLEARN_HUB_TIMEOUT must be a positive number"):
        push_unlearned_to_hub(run_dir, "test-user/x", token=TOKEN, endpoint=hub.url)
    assert hub.requests == []


def test_timeout_default_and_session_restored(monkeypatch):
    from huggingface_hub.utils import _http, get_session

    monkeypatch.delenv("HF_UNLEARN_HUB_TIMEOUT", raising=False)
    assert resolve_hub_timeout() == 60.0 and resolve_hub_timeout("2.5") == 2.5
    factory = _http._GLOBAL_CLIENT_FACTORY
    with pytest.raises(RuntimeError):
        with hub_session(3.0):
            client = get_session()
            assert client.timeout.read == 3.0 and client.timeout.connect == 3.0 and not client.follow_redirects
            raise RuntimeError("boom")
    assert _http._GLOBAL_CLIENT_FACTORY is factory
    assert get_session() is not client


ODD_ANSWERS = [
    # (kind, misbehaviour, what the one-line error must say)
    ("create", "redirect-loopback", r"HTTP 302 redirect from POST .*/api/repos/create to http://127\.0\.0\.1:\d+/"),
    ("commit", "redirect-foreign", r"HTTP 302 redirect from POST .*/commit/main to http://hub\.example\.invalid/"),
    ("preupload", "redirect-foreign", r"redirect from POST .*/preupload/main"),
    ("create", "html", r"unexpected answer from POST .*/api/repos/create \(JSONDecodeError"),
    ("commit", "html", r"unexpected answer from POST .*/commit/main \(JSONDecodeError"),
    ("commit", "missing_keys", r"unexpected answer from POST .*/commit/main \(KeyError: 'commitUrl'\)"),
    ("create", "truncated", r"connection to the Hub at .* broke during POST .*/api/repos/create"),
    ("commit", "truncated", r"broke during POST .*/commit/main"),
    ("create", "reset", r"broke during POST .*/api/repos/create"),
    ("commit", "reset", r"broke during POST .*/commit/main"),
    ("create", 401, r"HTTP 401 from POST .*/api/repos/create \(authentication failed"),
    ("create", 403, r"HTTP 403 from POST .*/api/repos/create \(permission denied"),
    ("commit", 404, r"HTTP 404 from POST .*/commit/main \(not found"),
    ("commit", 429, r"HTTP 429 from POST .*/commit/main \(rate limited"),
    ("create", 500, r"HTTP 500 from POST .*/api/repos/create \(server error"),
    ("preupload", "html", r"unexpected answer from POST .*/preupload/main \(JSONDecodeError"),
    # huggingface_hub retries these after sleeping (Retry-After: 3600 would be an hour): a push fails fast
    ("preupload", "retry_after", r"HTTP 429 from POST .*/preupload/main \(rate limited .*\): slow down"),
    ("preupload", 503, r"HTTP 503 from POST .*/preupload/main \(server error\)"),
    # ... and after a failed exchange it would retry 5 times, sleeping 1+2+4+8+8 s: a push stops after the first
    (
        "preupload",
        "hang*6",
        r"no complete answer from POST .*/preupload/main \(timed out\) on the first try; a push "
        r"does not retry",
    ),
    ("preupload", "reset*6", r"no complete answer from POST .*/preupload/main \(.*reset by peer\) on the first try"),
    ("preupload", "truncated*6", r"no complete answer from POST .*/preupload/main \(peer closed connection"),
    ("info", "html", r"unexpected answer from GET .*/api/models/test-user/odd \(JSONDecodeError"),
    ("validate", "html", r"unexpected answer from POST .*/api/validate-yaml \(JSONDecodeError"),
    ("create", "missing_keys", r"unexpected answer from POST .*/api/repos/create \(KeyError: 'url'\)"),
]


@pytest.mark.parametrize("kind, how, expected", ODD_ANSWERS, ids=[f"{k}-{h}" for k, h, _ in ODD_ANSWERS])
def test_odd_hub_answers_are_one_line_errors(hub, run_dir, kind, how, expected):
    before = dir_hashes(run_dir)
    with HubServer() as elsewhere:
        if isinstance(how, int):
            hub.fail_next(kind, how)
        elif how.startswith("redirect"):
            target = (
                elsewhere.url + "/api/repos/create" if how == "redirect-loopback" else "http://hub.example.invalid/x"
            )
            hub.misbehave_next(kind, "redirect", location=target)
        else:
            how, _, times = how.partition("*")
            hub.misbehave_next(kind, how, times=int(times or 1))
        start = time.monotonic()
        with pytest.raises(HubPushError, match=expected) as excinfo:
            push_unlearned_to_hub(
                run_dir, "test-user/odd", token=TOKEN, endpoint=hub.url, hub_timeout=1, private=kind == "info"
            )  # model_info is only asked with private=True
        assert time.monotonic() - start < BOUND_S
        assert elsewhere.requests == []  # a redirect is never followed (the token stays with the endpoint)
        hub.release()
    _one_line(excinfo.value, run_dir)
    assert dir_hashes(run_dir) == before
    repo = hub.repos.get("test-user/odd")
    assert repo is None or set(repo.files()) == {".gitattributes"}  # nothing half-pushed


def test_unlearn_push_to_silent_hub_fails_in_one_line(
    cache_root, original_path, tmp_path, monkeypatch, silent_endpoint, capsys
):
    """unlearn.py --push_to_hub --hub_timeout 1 (embedded default, its original in the cache) against a Hub that
    never answers: exit 1, one `error:` line, the finished output directory intact and free of local paths."""
    import huggingface_hub.constants as hf_constants

    from hf_unlearn.cli.main import run_unlearning

    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setattr(hf_constants, "ENDPOINT", silent_endpoint)
    out = tmp_path / "out"
    argv = [
        "--method",
        "finetune",
        "--default_arch",
        "resnet",
        "--num_train_epochs",
        "1",
        "--use_cpu",
        "--output_dir",
        str(out),
        "--push_to_hub",
        "--hub_model_id",
        "test-user/x",
        "--hub_timeout",
        "1",
        "--validation_split",
        "",
        "--test_split",
        "",
    ]  # fewer evaluation passes: this is about the push
    assert run_unlearning(argv) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert len(err) == 1 and "no answer from POST" in err[0] and f"intact at {out.resolve()}" in err[0], err
    assert (out / "metrics.json").is_file() and (out / "model.safetensors").is_file()
    for name in ("unlearning_config.json", "removal_record.json", "metrics.json", "README.md"):
        text = (out / name).read_text()
        assert str(cache_root) not in text and str(tmp_path) not in text, name
    assert (
        json.loads((out / "unlearning_config.json").read_text())["original_model"]["name_or_path"]
        == Path(original_path).name
    )


def test_push_script_hub_timeout_flag(run_dir, silent_endpoint, capsys):
    import runpy

    main = runpy.run_path(str(REPO_ROOT / "scripts" / "push_to_hub.py"))["main"]
    before = dir_hashes(run_dir)
    argv = [
        "--output_dir",
        str(run_dir),
        "--repo_id",
        "test-user/x",
        "--token",
        TOKEN,
        "--endpoint",
        silent_endpoint,
        "--hub_timeout",
        "1",
    ]
    start = time.monotonic()
    assert main(argv) == 1
    assert time.monotonic() - start < BOUND_S
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: push to test-user/x failed: no answer from POST") and "\n" not in err
    assert dir_hashes(run_dir) == before


# --------------------------------------------------------------------------------------------------------------
# 4. repo ids
# --------------------------------------------------------------------------------------------------------------
GOOD_IDS = ["name", "ns/name", "Org-1/model_v2.1", "a" * 96]
BAD_IDS = [
    "",
    "   ",
    "a/b/c",
    "../x",
    "ns/..",
    "a..b",
    "a--b",
    "x" * 97,
    "ns/-bad",
    "has space",
    "/lead",
    "trail/",
    "ns/name.git",
    "ns//name",
    "emoji/😀",
]


@pytest.mark.parametrize("repo_id", GOOD_IDS)
def test_check_repo_id_accepts(repo_id):
    assert check_repo_id(repo_id) == repo_id


@pytest.mark.parametrize("repo_id", BAD_IDS)
def test_check_repo_id_rejects_with_the_fix(repo_id):
    with pytest.raises(ValueError, match=r"(invalid Hub repo id|repo id is empty).*namespace/name") as excinfo:
        check_repo_id(repo_id)
    assert "\n" not in str(excinfo.value)


@pytest.mark.parametrize("repo_id", ["a/b/c", "ns/..", "has space"])
def test_push_refuses_bad_repo_id_before_any_request(hub, run_dir, repo_id, capsys):
    import runpy

    with pytest.raises(ValueError, match="invalid Hub repo id"):
        push_unlearned_to_hub(run_dir, repo_id, token=TOKEN, endpoint=hub.url)
    main = runpy.run_path(str(REPO_ROOT / "scripts" / "push_to_hub.py"))["main"]
    assert main(["--output_dir", str(run_dir), "--repo_id", repo_id, "--token", TOKEN, "--endpoint", hub.url]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: invalid Hub repo id")
    assert hub.requests == []


@pytest.mark.parametrize(
    "flags, expected",
    [
        (["--hub_model_id", "a/b/c"], "invalid Hub repo id 'a/b/c'"),
        (["--hub_model_id", "ns/.."], "invalid Hub repo id 'ns/..'"),
        (["--output_dir", "{tmp}/my run!"], "uses the --output_dir base name: pass --hub_model_id"),
        (["--output_dir", "{tmp}/" + "x" * 100], "longer than 96 characters"),
        (["--hub_model_id", "test-user/ok", "--hub_timeout", "0"], "hub_timeout must be a positive number"),
    ],
)
def test_unlearn_push_target_checked_before_any_work(flags, expected, tmp_path, monkeypatch, capsys):
    import hf_unlearn
    import hf_unlearn.cli.main as cli

    def no_work(*args, **kwargs):  # the check must come before the data or the model loads
        raise AssertionError("work started before the Hub target was checked")

    monkeypatch.setattr(hf_unlearn, "load_classifier", no_work)
    monkeypatch.setattr(cli, "load_training_data", no_work)
    run_unlearning = cli.run_unlearning
    flags = [f.format(tmp=tmp_path) for f in flags]
    argv = ["--method", "finetune", "--push_to_hub"] + flags
    if "--output_dir" not in flags:
        argv += ["--output_dir", str(tmp_path / "out")]
    assert run_unlearning(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and expected in err[0], err
    assert not (tmp_path / "out").exists() and not any(tmp_path.iterdir())


def test_allow_patterns_are_top_level_names():
    assert all("/" not in p for p in ALLOW_PATTERNS)
    assert "README.md" not in ALLOW_PATTERNS and "removed_ids.json" not in ALLOW_PATTERNS
