"""Model card + Hub push of an unlearned checkpoint, against the loopback Hub in tests/hub_server.py (offline).

The unlearning output directory is built by hand (a tiny HF ResNet + the JSON files of docs/FORMATS.md), so these
tests do not depend on the trainer.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # hub_server
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from hub_server import HubServer, free_port  # noqa: E402
from huggingface_hub import HfApi, ModelCard  # noqa: E402
from huggingface_hub.errors import RepositoryNotFoundError  # noqa: E402

from hf_unlearn.publishing.card import build_model_card, model_card_from_output_dir  # noqa: E402
from hf_unlearn.publishing.hub import HubPushError, files_to_push, push_unlearned_to_hub  # noqa: E402

TOKEN = "hf_dummy_test_token"
CLASSES = ["cat", "dog", "bird"]
# Distinctive ids: if any of them shows up in a published file, the privacy guarantee is broken.
REMOVED_IDS = [f"subject-{c}-{k:03d}-zq7x" for c in CLASSES for k in range(4)]


def commitment(ids) -> str:
    """The removal commitment (same definition as hf_unlearn.data.selection.commitment)."""
    return hashlib.sha256("\n".join(str(i) for i in sorted(ids)).encode("utf-8")).hexdigest()


def test_commitment_matches_library():
    try:
        from hf_unlearn.data.selection import commitment as library_commitment
    except ImportError:  # pragma: no cover - hf_unlearn.data.selection is written separately
        pytest.skip("hf_unlearn.data.selection.commitment not available")
    assert library_commitment(REMOVED_IDS) == commitment(REMOVED_IDS)
    assert library_commitment([10, 9, 100]) == commitment([10, 9, 100])  # numbers sort numerically


def dir_hashes(path: Path) -> dict[str, str]:
    """sha256 of every file under `path` (relative path -> digest); also catches added/removed files."""
    return {
        p.relative_to(path).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


METRICS = {
    "original": {
        "acc_forget": 1.0,
        "acc_retain": 1.0,
        "acc_test": 0.91,
        "acc_val": 0.9,
        "mia": 0.83,
        "rf_jsd": 0.021,
        "jsd": 0.04,
        "avg_gap": 0.08,
    },
    "unlearned": {
        "acc_forget": 0.9167,
        "acc_retain": 0.99,
        "acc_test": 0.9,
        "acc_val": 0.9,
        "mia": 0.61,
        "mia_auc": 0.52,
        "rf_jsd": 0.006,
        "jsd": 0.011,
        "avg_gap": 0.012,
        "runtime_s": 3.2,
    },
    "gold": {"acc_forget": 0.9, "acc_retain": 1.0, "acc_test": 0.9, "acc_val": 0.89, "mia": 0.6, "rf_jsd": 0.005},
    "run": {
        "method": "lotus",
        "seed": 42,
        "effective_batch_size": 64,
        "library_versions": {"hf_unlearn": "0.1.0", "transformers": "5.23.0", "torch": "2.14.1"},
    },
}


def removal_record(ids=REMOVED_IDS) -> dict:
    return {
        "dataset": {
            "name": "hf-unlearn-tests/pets",
            "config": None,
            "split": "train",
            "revision": "0123abc",
            "fingerprint": "f00dfeed",
        },
        "selection": {
            "rule": "fraction_per_class",
            "description": "10% of each class, seeded random (seed 0)",
            "params": {"fraction": 0.1, "mode": "random", "seed": 0},
        },
        "id_column": "id",
        "label_column": "label",
        "num_removed": len(ids),
        "num_retained": 108,
        "per_class_counts": {c: sum(1 for i in ids if f"-{c}-" in i) for c in CLASSES},
        "forget_fingerprint": "aa11",
        "retain_fingerprint": "bb22",
        "commitment": {
            "algorithm": "sha256",
            "scheme": "sha256 of '\\n'.join(str(i) for i in sorted(ids)) encoded as UTF-8",
            "value": commitment(ids),
        },
    }


UNLEARNING_CONFIG = {
    "method": "lotus",
    "hyperparameters": {"alpha": 2.0, "epochs": 2, "learning_rate": 0.001},
    "training": {"per_device_train_batch_size": 32, "gradient_accumulation_steps": 2},
    "seed": 42,
    "effective_batch_size": 64,
    "library_versions": {"hf_unlearn": "0.1.0", "transformers": "5.23.0", "torch": "2.14.1"},
    "original_model": {
        "name_or_path": "acme/resnet-tiny-pets",
        "revision": "main",
        "sha256": "9" * 64,
        "is_hub_id": True,
    },
    "dataset_id": "hf-unlearn-tests/pets",
    "date": "2025-06-01",
}


@pytest.fixture(scope="module")
def template_output_dir(tmp_path_factory) -> Path:
    """A finished unlearning output directory, plus files that must never be pushed."""
    import torch
    from transformers import ResNetConfig, ResNetForImageClassification, ViTImageProcessor

    out = tmp_path_factory.mktemp("unlearned")
    torch.manual_seed(0)
    config = ResNetConfig(
        num_channels=1,
        embedding_size=8,
        hidden_sizes=[8, 16],
        depths=[1, 1],
        layer_type="basic",
        num_labels=3,
        id2label=dict(enumerate(CLASSES)),
        label2id={c: i for i, c in enumerate(CLASSES)},
    )
    model = ResNetForImageClassification(config)
    with torch.no_grad():  # non-trivial BatchNorm buffers, so that they are compared too
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-1, 1)
                module.running_var.uniform_(0.5, 2)
    model.save_pretrained(out)
    ViTImageProcessor(size={"height": 16, "width": 16}, image_mean=[0.5], image_std=[0.5]).save_pretrained(out)
    (out / "metrics.json").write_text(json.dumps(METRICS, indent=2))
    (out / "removal_record.json").write_text(json.dumps(removal_record(), indent=2))
    (out / "unlearning_config.json").write_text(json.dumps(UNLEARNING_CONFIG, indent=2))
    (out / "removed_ids.json").write_text(json.dumps({"id_column": "id", "ids": REMOVED_IDS}))
    # never pushed: trainer checkpoints and state, data files (this one even holds the ids)
    (out / "checkpoint-10").mkdir()
    (out / "checkpoint-10" / "model.safetensors").write_bytes(b"not a real checkpoint")
    (out / "trainer_state.json").write_text(json.dumps({"global_step": 10}))
    (out / "forget_set.csv").write_text("id,label\n" + "\n".join(f"{i},0" for i in REMOVED_IDS))
    (out / ".incomplete").mkdir()  # staging folder of a run that died (hf_unlearn.publishing.output)
    (out / ".incomplete" / "removed_ids.json").write_text(json.dumps({"ids": REMOVED_IDS}))
    return out


@pytest.fixture
def output_dir(template_output_dir, tmp_path) -> Path:
    dst = tmp_path / "unlearned-output"
    shutil.copytree(template_output_dir, dst)
    return dst


@pytest.fixture(scope="module")
def cli_without_token(template_output_dir, tmp_path_factory):
    """`scripts/push_to_hub.py` without any token, started in the background as soon as a test asks for it.

    Importing hf_unlearn takes seconds, so the round-trip test requests this fixture too: the two subprocesses then
    run concurrently. Yields (output_dir, file hashes before, Popen)."""
    tmp = tmp_path_factory.mktemp("cli")
    output_dir = tmp / "unlearned-output"
    shutil.copytree(template_output_dir, output_dir)
    before = dir_hashes(output_dir)
    env = {
        **os.environ,
        "HF_HOME": str(tmp / "hf_home"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_OFFLINE": "0",
        "PYTHONPATH": str(REPO_ROOT),
    }
    for key in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        env.pop(key, None)
    proc = subprocess.Popen(
        [
            sys.executable,
            str(REPO_ROOT / "scripts" / "push_to_hub.py"),
            "--output_dir",
            str(output_dir),
            "--repo_id",
            "test-user/x",
            "--endpoint",
            f"http://127.0.0.1:{free_port()}",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    yield output_dir, before, proc
    if proc.poll() is None:
        proc.kill()
        proc.communicate()


@pytest.fixture(autouse=True)
def loopback_hub_allowed(monkeypatch):
    """tests/conftest.py sets HF_HUB_OFFLINE=1 (no network in tests); these tests only talk to 127.0.0.1."""
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")


@pytest.fixture
def hub():
    with HubServer() as server:
        yield server


def _all_text(files: dict[str, bytes]) -> str:
    return "\n".join(content.decode("utf-8", errors="replace") for content in files.values())


def _assert_one_line_error(err: BaseException, output_dir: Path):
    message = str(err)
    assert "\n" not in message
    assert f"intact at {output_dir.resolve()}" in message


# --------------------------------------------------------------------------------------------------------------
# the server itself
# --------------------------------------------------------------------------------------------------------------
def test_server_with_explicit_endpoint(hub, tmp_path):
    api = HfApi(endpoint=hub.url, token=TOKEN)
    assert api.whoami()["name"] == "test-user"
    url = api.create_repo("test-user/plain", private=True)
    assert url.repo_id == "test-user/plain" and hub.repos["test-user/plain"].private
    api.create_repo("test-user/plain", exist_ok=True)  # 409 swallowed
    with pytest.raises(Exception, match="409"):
        api.create_repo("test-user/plain")
    info = api.upload_file(path_or_fileobj=b"hello", path_in_repo="a/b.txt", repo_id="test-user/plain")
    assert hub.repos["test-user/plain"].files()["a/b.txt"] == b"hello"
    assert api.model_info("test-user/plain").sha == info.oid
    assert {f.path for f in api.list_repo_tree("test-user/plain", recursive=True)} >= {"a", "a/b.txt"}
    path = api.hf_hub_download("test-user/plain", "a/b.txt", cache_dir=tmp_path / "cache")
    assert Path(path).read_bytes() == b"hello"
    # upload_folder with create_pr (in this process hf_xet is enabled: the pipelined upload opens the PR through the
    # discussions API, then commits to refs/pr/N)
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "c.txt").write_text("pr content")
    pr = api.upload_folder(folder_path=folder, repo_id="test-user/plain", create_pr=True)
    assert pr.pr_url == f"{hub.url}/test-user/plain/discussions/1" and pr.pr_revision == "refs/pr/1"
    assert hub.repos["test-user/plain"].files("refs/pr/1")["c.txt"] == b"pr content"
    assert "c.txt" not in hub.repos["test-user/plain"].files("main")
    # writes need a token; anonymous reads of a private repo look like a missing repo
    anonymous = HfApi(endpoint=hub.url, token=False)
    with pytest.raises(Exception, match="401"):
        anonymous.create_repo("test-user/other")
    with pytest.raises(RepositoryNotFoundError):
        anonymous.model_info("test-user/plain")


# --------------------------------------------------------------------------------------------------------------
# model card
# --------------------------------------------------------------------------------------------------------------
def test_card_from_output_dir(output_dir):
    card = model_card_from_output_dir(output_dir, repo_id="me/resnet-pets-unlearned")
    text = str(card)
    assert not any(i in text for i in REMOVED_IDS)
    data = ModelCard(text).data  # round trip through the YAML
    assert data.base_model == "acme/resnet-tiny-pets"
    assert data.datasets == ["hf-unlearn-tests/pets"]
    assert data.library_name == "transformers" and data.pipeline_tag == "image-classification"
    assert {"machine-unlearning", "hf-unlearn", "lotus"} <= set(data.tags)
    meta = data.unlearning
    assert meta["method"] == "lotus" and meta["hyperparameters"]["alpha"] == 2.0
    assert meta["removal_record"] == removal_record()
    assert meta["original_model"] == {"name_or_path": "acme/resnet-tiny-pets", "revision": "main", "sha256": "9" * 64}
    assert meta["seed"] == 42 and meta["effective_batch_size"] == 64 and meta["library_version"] == "0.1.0"
    assert meta["date"] == "2025-06-01" and meta["training"]["gradient_accumulation_steps"] == 2
    results = {r.metric_name: r for r in data.eval_results}
    assert set(results) == {
        "Forget-set accuracy",
        "Retain-set accuracy",
        "Test accuracy",
        "Validation accuracy",
        "MIA",
        "MIA AUC",
        "RF-JSD",
        "JSD to gold",
        "Average gap to gold",
    }
    assert results["Forget-set accuracy"].metric_value == pytest.approx(0.9167)
    assert results["Test accuracy"].dataset_split == "test"
    assert results["Forget-set accuracy"].dataset_revision == "0123abc"
    # body: counts, rule, commitment, the metric table with the gold column, usage, citation
    assert "12 training samples" in text and "fraction_per_class" in text
    assert commitment(REMOVED_IDS) in text
    assert "| cat | 4 |" in text
    assert "Gold (retrained)" in text and "| Forget-set accuracy | 100.00% | 91.67% | 90.00% |" in text
    assert "not 0" in text and "its value is the target" in text
    assert 'pipeline("image-classification", model="me/resnet-pets-unlearned")' in text
    assert "Spartalis" in text and "@inproceedings" in text


def test_card_local_original_is_not_base_model(output_dir):
    config = dict(UNLEARNING_CONFIG, dataset_id=None)
    config["original_model"] = {"name_or_path": "runs/original", "revision": None, "sha256": "ab", "is_hub_id": False}
    (output_dir / "unlearning_config.json").write_text(json.dumps(config))
    data = model_card_from_output_dir(output_dir).data
    assert data.base_model is None
    assert data.unlearning["original_model"]["name_or_path"] == "runs/original"
    assert data.datasets == ["hf-unlearn-tests/pets"]  # from the removal record's dataset name


def test_card_without_gold_local_original_and_timm():
    metrics = {k: v for k, v in METRICS.items() if k != "gold"}
    metrics["unlearned"] = {k: v for k, v in metrics["unlearned"].items() if k not in ("jsd", "avg_gap")}
    record = removal_record()
    record["selection"]["params"]["ids"] = REMOVED_IDS  # an id list that slipped into the record is dropped
    card = build_model_card(
        method="finetune",
        hyperparameters={"epochs": 1},
        removal_record=record,
        metrics=metrics,
        original_model={"name_or_path": "/data/models/original", "revision": None, "sha256": "ab"},
        dataset_id=None,
        library_name="timm",
        run_info={"date": "2025-06-01", "seed": 1},
    )
    text = str(card)
    assert not any(i in text for i in REMOVED_IDS)
    data = ModelCard(text).data
    assert data.base_model is None and data.datasets is None
    assert data.library_name == "timm" and "finetune" in data.tags
    assert data.unlearning["date"] == "2025-06-01" and data.unlearning["seed"] == 1
    names = {r.metric_name for r in data.eval_results}
    assert "JSD to gold" not in names and "RF-JSD" in names
    assert "Gold (retrained)" not in text and 'timm.create_model("hf-hub:' in text


# --------------------------------------------------------------------------------------------------------------
# push
# --------------------------------------------------------------------------------------------------------------
def test_push_roundtrip_from_pretrained(hub, output_dir, tmp_path, cli_without_token):
    """CLI push with HF_ENDPOINT set in the environment, then from_pretrained / ModelCard.load back (subprocess)."""
    script = textwrap.dedent(
        """
        import json, runpy, sys
        from pathlib import Path
        import torch
        from safetensors.torch import load_file
        from huggingface_hub import ModelCard
        from transformers import AutoImageProcessor, AutoModelForImageClassification

        out, repo = sys.argv[1], sys.argv[2]
        main = runpy.run_path(str(Path(sys.argv[3])))["main"]
        assert main(["--output_dir", out, "--repo_id", repo]) == 0
        model = AutoModelForImageClassification.from_pretrained(repo)
        local = load_file(str(Path(out) / "model.safetensors"))
        remote = model.state_dict()
        processor = AutoImageProcessor.from_pretrained(repo)
        card = ModelCard.load(repo)
        print(json.dumps({
            "same_keys": sorted(local) == sorted(remote),
            "equal": all(torch.equal(local[k], remote[k]) for k in local),
            "labels": model.config.id2label,
            "size": processor.to_dict()["size"],
            "unlearning": card.data.unlearning,
            "tags": card.data.tags,
            "pipeline_tag": card.data.pipeline_tag,
            "metrics": sorted(r.metric_name for r in card.data.eval_results),
        }))
        """
    )
    env = {**os.environ, **hub.env(tmp_path / "hf_home"), "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            str(output_dir),
            "test-user/resnet-pets-unlearned",
            str(REPO_ROOT / "scripts" / "push_to_hub.py"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("pushed: " + hub.url + "/test-user/resnet-pets-unlearned/commit/")
    result = json.loads(lines[-1])
    assert result["same_keys"] and result["equal"]
    assert result["labels"] == {"0": "cat", "1": "dog", "2": "bird"}
    assert result["size"] == {"height": 16, "width": 16}
    assert result["unlearning"]["removal_record"] == removal_record()
    assert result["unlearning"]["method"] == "lotus"
    assert {"machine-unlearning", "hf-unlearn", "lotus"} <= set(result["tags"])
    assert result["pipeline_tag"] == "image-classification"
    assert "Forget-set accuracy" in result["metrics"] and "MIA" in result["metrics"]

    repo = hub.repos["test-user/resnet-pets-unlearned"]
    assert not repo.private
    files = repo.files("main")
    assert set(files) == {
        ".gitattributes",
        "README.md",
        "config.json",
        "model.safetensors",
        "preprocessor_config.json",
        "metrics.json",
        "removal_record.json",
        "unlearning_config.json",
    }
    assert len(repo.commit_list()) == 2  # repo creation + one commit with everything


def test_push_in_process_private_and_no_raw_ids(hub, output_dir):
    before = dir_hashes(output_dir)
    url = push_unlearned_to_hub(output_dir, "test-user/private-model", private=True, token=TOKEN, endpoint=hub.url)
    assert url.startswith(f"{hub.url}/test-user/private-model/commit/")
    repo = hub.repos["test-user/private-model"]
    assert repo.private
    files = repo.files()
    assert "removed_ids.json" not in files and "forget_set.csv" not in files
    assert not any(p.startswith("checkpoint-") for p in files) and "trainer_state.json" not in files
    text = _all_text(files)
    assert not any(i in text for i in REMOVED_IDS)
    assert commitment(REMOVED_IDS) in files["README.md"].decode()
    local = (output_dir / "model.safetensors").read_bytes()
    assert files["model.safetensors"] == local
    commit = repo.commit_list()[-1]
    assert commit.message == "Unlearn 12 samples with lotus (hf-unlearn)"
    assert commitment(REMOVED_IDS) in commit.description
    assert dir_hashes(output_dir) == before  # README.md was generated in memory, nothing written locally
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=hub.url, token=False).model_info("test-user/private-model")
    # pushing again (private=True) to the same, existing private repo works
    push_unlearned_to_hub(output_dir, "test-user/private-model", private=True, token=TOKEN, endpoint=hub.url)


def test_push_removed_ids_opt_in(hub, output_dir):
    push_unlearned_to_hub(
        output_dir,
        "test-user/with-ids",
        push_removed_ids=True,
        token=TOKEN,
        endpoint=hub.url,
        commit_message="publish ids on purpose",
    )
    files = hub.repos["test-user/with-ids"].files()
    assert json.loads(files["removed_ids.json"])["ids"] == REMOVED_IDS
    assert (
        commitment(json.loads(files["removed_ids.json"])["ids"])
        == json.loads(files["removal_record.json"])["commitment"]["value"]
    )
    assert "forget_set.csv" not in files  # data files stay local even then
    assert hub.repos["test-user/with-ids"].commit_list()[-1].message == "publish ids on purpose"


def test_create_pr_and_revision(hub, output_dir):
    api = HfApi(endpoint=hub.url, token=TOKEN)
    api.create_repo("test-user/shared")
    info = push_unlearned_to_hub(output_dir, "test-user/shared", create_pr=True, token=TOKEN, endpoint=hub.url)
    repo = hub.repos["test-user/shared"]
    assert info.pr_url == f"{hub.url}/test-user/shared/discussions/1"
    assert repo.pull_requests[0]["ref"] == "refs/pr/1" and repo.pull_requests[0]["target"] == "main"
    assert set(repo.files("main")) == {".gitattributes"}  # main untouched
    assert "model.safetensors" in repo.files("refs/pr/1")

    push_unlearned_to_hub(output_dir, "test-user/shared", revision="unlearned-v1", token=TOKEN, endpoint=hub.url)
    assert "unlearned-v1" in repo.branches
    assert "model.safetensors" in repo.files("unlearned-v1")
    assert set(repo.files("main")) == {".gitattributes"}
    head = repo.branches["unlearned-v1"]
    # the branch exists now: pushing the same files again is a no-op (no empty commit) ...
    again = push_unlearned_to_hub(
        output_dir, "test-user/shared", revision="unlearned-v1", token=TOKEN, endpoint=hub.url, commit_message="again"
    )
    assert repo.branches["unlearned-v1"] == head and again.oid == head
    # ... and a changed output goes on top of the branch
    metrics = json.loads((output_dir / "metrics.json").read_text())
    metrics["unlearned"]["acc_test"] = 0.95
    (output_dir / "metrics.json").write_text(json.dumps(metrics))
    push_unlearned_to_hub(
        output_dir, "test-user/shared", revision="unlearned-v1", token=TOKEN, endpoint=hub.url, commit_message="again"
    )
    new_head = repo.commits[repo.branches["unlearned-v1"]]
    assert new_head.message == "again" and new_head.parent == head
    assert "95.00%" in new_head.files["README.md"].decode()
    assert set(repo.files("main")) == {".gitattributes"}


def test_push_to_bare_name_uses_token_namespace(hub, output_dir):
    push_unlearned_to_hub(output_dir, "bare-name", token=TOKEN, endpoint=hub.url)
    readme = hub.repos["test-user/bare-name"].files()["README.md"].decode()
    assert 'model="test-user/bare-name"' in readme


def test_files_to_push(output_dir):
    assert files_to_push(output_dir) == [
        "config.json",
        "metrics.json",
        "model.safetensors",
        "preprocessor_config.json",
        "removal_record.json",
        "unlearning_config.json",
    ]
    assert "removed_ids.json" in files_to_push(output_dir, push_removed_ids=True)


# --------------------------------------------------------------------------------------------------------------
# failures: nothing local changes, one-line HubPushError
# --------------------------------------------------------------------------------------------------------------
def test_no_token(hub, output_dir, monkeypatch, tmp_path):
    import huggingface_hub.constants as hf_constants

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.delenv("HF_OIDC_RESOURCE", raising=False)
    monkeypatch.setattr(hf_constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    before = dir_hashes(output_dir)
    with pytest.raises(HubPushError, match="no Hugging Face token: run `hf auth login` or pass --token/set HF_TOKEN"):
        push_unlearned_to_hub(output_dir, "test-user/x", endpoint=hub.url)
    assert dir_hashes(output_dir) == before
    assert hub.requests == []  # failed before any request


def test_server_error_on_commit(hub, output_dir):
    before = dir_hashes(output_dir)
    hub.fail_next_commit(500)
    with pytest.raises(HubPushError) as excinfo:
        push_unlearned_to_hub(output_dir, "test-user/x", token=TOKEN, endpoint=hub.url)
    _assert_one_line_error(excinfo.value, output_dir)
    assert "HTTP 500" in str(excinfo.value) and "/commit/main" in str(excinfo.value)
    assert isinstance(excinfo.value, RuntimeError)
    assert dir_hashes(output_dir) == before
    assert set(hub.repos["test-user/x"].files()) == {".gitattributes"}  # nothing half-pushed


def test_card_metadata_rejected_by_hub(hub, output_dir):
    hub.fail_next("validate", 400)
    with pytest.raises(HubPushError, match="rejected the upload: Invalid metadata in README.md. - Injected") as exc:
        push_unlearned_to_hub(output_dir, "test-user/x", token=TOKEN, endpoint=hub.url)
    _assert_one_line_error(exc.value, output_dir)


def test_bad_token_rejected(output_dir):
    with HubServer(tokens={"the-only-valid-token"}) as server:
        with pytest.raises(HubPushError, match="HTTP 401") as excinfo:
            push_unlearned_to_hub(output_dir, "test-user/x", token="wrong", endpoint=server.url)
        _assert_one_line_error(excinfo.value, output_dir)


@pytest.mark.parametrize("how", ["stopped", "wrong_port"])
def test_connection_refused(output_dir, how):
    before = dir_hashes(output_dir)
    if how == "stopped":
        server = HubServer().start()
        endpoint = server.url
        server.stop()
    else:
        endpoint = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(HubPushError, match="could not reach the Hub at") as excinfo:
        push_unlearned_to_hub(output_dir, "test-user/x", token=TOKEN, endpoint=endpoint)
    _assert_one_line_error(excinfo.value, output_dir)
    assert endpoint in str(excinfo.value)
    assert dir_hashes(output_dir) == before


def test_private_requested_on_existing_public_repo(hub, output_dir):
    HfApi(endpoint=hub.url, token=TOKEN).create_repo("test-user/public", private=False)
    with pytest.raises(HubPushError, match="already exists and is public"):
        push_unlearned_to_hub(output_dir, "test-user/public", private=True, token=TOKEN, endpoint=hub.url)
    assert set(hub.repos["test-user/public"].files()) == {".gitattributes"}


def test_not_an_output_dir(hub, output_dir):
    (output_dir / "metrics.json").unlink()
    (output_dir / "model.safetensors").unlink()
    with pytest.raises(ValueError, match=r"missing metrics\.json, model weights .*scripts/unlearn\.py"):
        push_unlearned_to_hub(output_dir, "test-user/x", token=TOKEN, endpoint=hub.url)
    assert hub.requests == []


def test_raw_ids_in_published_files_are_refused(hub, output_dir):
    record = removal_record()
    record["ids"] = REMOVED_IDS
    (output_dir / "removal_record.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match="raw id list"):
        push_unlearned_to_hub(output_dir, "test-user/x", token=TOKEN, endpoint=hub.url)
    (output_dir / "removal_record.json").write_text(json.dumps(removal_record()))
    # an id in an uploaded file (notes.txt would not be uploaded at all: it is not on the allowlist)
    metrics = {**METRICS, "note": f"removed {REMOVED_IDS[3]} on request"}
    (output_dir / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(ValueError, match="metrics.json .*contains removed ids"):
        push_unlearned_to_hub(output_dir, "test-user/x", token=TOKEN, endpoint=hub.url)
    assert hub.requests == []


def test_cli_failure_exits_nonzero_with_one_line(cli_without_token):
    output_dir, before, proc = cli_without_token
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, stderr[-3000:]
    err_lines = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(err_lines) == 1, stderr
    assert "no Hugging Face token: run `hf auth login` or pass --token/set HF_TOKEN" in err_lines[0]
    assert f"intact at {output_dir.resolve()}" in err_lines[0]
    assert dir_hashes(output_dir) == before


def test_cli_in_process(hub, output_dir, capsys):
    import runpy

    main = runpy.run_path(str(REPO_ROOT / "scripts" / "push_to_hub.py"))["main"]
    argv = ["--output_dir", str(output_dir), "--repo_id", "test-user/cli", "--token", TOKEN, "--endpoint", hub.url]
    assert main(argv + ["--private", "--create_pr"]) == 0
    assert capsys.readouterr().out.strip() == f"pull request: {hub.url}/test-user/cli/discussions/1"
    assert hub.repos["test-user/cli"].private
    hub.fail_next_commit(503)
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: push to test-user/cli failed: HTTP 503") and "\n" not in err
