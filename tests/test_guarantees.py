"""Issue 7 guarantees: nothing lost (original untouched, no half-written output), determinism, bad-input matrix.

Everything runs the CLI in-process (``hf_unlearn.cli.main.run_unlearning``) on the embedded digits default with a few
optimiser steps, so the whole file stays small on 2 CPU cores.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass

import pytest
import torch
from conftest import OUTPUT_FILES, run_cli, sha256_tree

from hf_unlearn.cli.main import run_unlearning

FAST = ["--use_cpu", "--disable_tqdm", "true", "--seed", "0", "--per_device_eval_batch_size", "512"]


def weights(path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(os.path.join(path, "model.safetensors"))


# ---- determinism and the original checkpoint -------------------------------------------------------------------
@pytest.fixture(scope="module")
def two_runs(original_path, tmp_path_factory):
    """Two identical CLI runs (same seed) from a local copy of the original; the copy's hashes around them."""
    root = tmp_path_factory.mktemp("two_runs")
    model_dir = root / "original"
    shutil.copytree(original_path, model_dir)
    before = sha256_tree(model_dir)
    outs = []
    for i in range(2):
        out = root / f"out{i}"
        argv = [
            "--model_name_or_path",
            str(model_dir),
            "--output_dir",
            str(out),
            "--max_steps",
            "3",
            "--per_device_train_batch_size",
            "32",
            "--gradient_accumulation_steps",
            "2",
            *FAST,
        ]
        # --model_name_or_path alone leaves the digits dataset implicit only for the embedded default: pass it.
        assert run_unlearning(argv) == 0
        outs.append(out)
    return model_dir, before, outs


def test_original_checkpoint_never_modified(two_runs):
    model_dir, before, _ = two_runs
    assert sha256_tree(model_dir) == before


def test_same_seed_bit_identical_weights(two_runs):
    _, _, (a, b) = two_runs
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_seed_versions_effective_batch_recorded(two_runs):
    import yaml

    _, _, (out, _) = two_runs
    run = json.loads((out / "metrics.json").read_text())["run"]
    assert run["seed"] == 0
    assert run["effective_batch_size"] == 32 * 1 * 2  # per-device x processes x accumulation
    assert run["library_versions"]["torch"] == torch.__version__.split("+")[0]
    assert {"transformers", "datasets", "accelerate", "hf-unlearn"} <= set(run["library_versions"])
    text = (out / "README.md").read_text()
    meta = yaml.safe_load(text.split("---")[1])["unlearning"]
    assert meta["seed"] == 0 and meta["effective_batch_size"] == 64
    assert meta["library_versions"]["torch"] == run["library_versions"]["torch"]
    assert sorted(os.listdir(out)) == sorted(OUTPUT_FILES)


# ---- a run that fails half-way leaves nothing presented as finished --------------------------------------------
@dataclass
class _FailingConfig:
    fail_at_step: int = 2
    how: str = "nan"  # nan | inf | raise | interrupt


def _register_failing_method():
    import torch.nn.functional as F

    from hf_unlearn.methods.base import MixtureSpec, UnlearningMethod, register_method

    @register_method("_test_failing", override=True)
    class Failing(UnlearningMethod):
        """Test-only: cross-entropy on the retain set that fails at ``fail_at_step``."""

        config_class = _FailingConfig
        training_defaults = {"learning_rate": 1e-3, "num_train_epochs": 1}

        def mixture(self, trainer):
            return MixtureSpec(include_forget=False)

        def compute_loss(self, trainer, model, inputs):
            loss = F.cross_entropy(trainer.logits(model, inputs["pixel_values"]).float(), inputs["labels"])
            if trainer.state.global_step + 1 >= self.config.fail_at_step:
                if self.config.how == "raise":
                    raise RuntimeError("boom inside the method")
                if self.config.how == "interrupt":
                    raise KeyboardInterrupt
                return loss * float(self.config.how)
            return loss

    return Failing


@pytest.mark.parametrize(
    "how, exc, match",
    [
        ("nan", "NonFiniteLossError", r"_test_failing loss is nan at step 2"),
        ("inf", "NonFiniteLossError", r"_test_failing loss is inf at step 2"),
        ("raise", "RuntimeError", "boom"),
        ("interrupt", "KeyboardInterrupt", None),
    ],
)
def test_failed_run_leaves_nothing_finished(original_path, tmp_path, monkeypatch, how, exc, match):
    from hf_unlearn.training.trainer import NonFiniteLossError

    monkeypatch.setenv("HF_UNLEARN_DEBUG", "1")  # re-raise instead of the one-line error (tests/test_trust_fs.py)

    _register_failing_method()
    out = tmp_path / "out"
    argv = [
        "--method",
        "_test_failing",
        "--how",
        how,
        "--fail_at_step",
        "2",
        "--max_steps",
        "4",
        "--output_dir",
        str(out),
        "--save_strategy",
        "steps",
        "--save_steps",
        "1",
        *FAST,
    ]
    expected = {
        "NonFiniteLossError": NonFiniteLossError,
        "RuntimeError": RuntimeError,
        "KeyboardInterrupt": KeyboardInterrupt,
    }[exc]
    with pytest.raises(expected, match=match):
        run_unlearning(argv)
    left = os.listdir(out) if out.exists() else []
    assert "metrics.json" not in left and "model.safetensors" not in left and ".incomplete" not in left
    # the step-1 checkpoint may exist (it is what --resume_from_checkpoint is for), never a finished output
    assert all(name.startswith("checkpoint-") for name in left), left


def test_huge_learning_rate_stops_with_step_and_method(tmp_path, original_path, monkeypatch):
    out = tmp_path / "out"
    monkeypatch.setenv("HF_UNLEARN_DEBUG", "1")  # re-raise instead of the one-line error (tests/test_trust_fs.py)
    from hf_unlearn.training.trainer import NonFiniteLossError

    with pytest.raises(NonFiniteLossError, match=r"the neggrad_plus loss is (nan|inf|-inf) at step \d+"):
        run_unlearning(
            [
                "--method",
                "neggrad_plus",
                "--learning_rate",
                "1e30",
                "--max_steps",
                "6",
                "--output_dir",
                str(out),
                *FAST,
            ]
        )
    assert not out.exists() or not {"metrics.json", "model.safetensors"} & set(os.listdir(out))


# ---- bad-input matrix ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bad_inputs(original_path, tmp_path_factory):
    """Small datasets and broken model/checkpoint folders for the matrix."""
    import datasets
    from safetensors.torch import load_file
    from transformers import ViTConfig, ViTModel

    from hf_unlearn.data.builtin import load_digits_dataset

    root = tmp_path_factory.mktemp("bad")
    small = datasets.DatasetDict({k: v.select(range(60)) for k, v in load_digits_dataset().items()})
    small.save_to_disk(str(root / "digits"))
    small.rename_column("image", "img").save_to_disk(str(root / "no_image"))
    small.remove_columns("label").save_to_disk(str(root / "no_label"))
    shifted = datasets.DatasetDict(
        {
            k: datasets.Dataset.from_dict(
                {"id": v["id"], "image": v["image"], "label": [y + 5 for y in v["label"]]},
                features=datasets.Features(
                    {"id": datasets.Value("string"), "image": datasets.Image(), "label": datasets.Value("int64")}
                ),
            )
            for k, v in small.items()
        }
    )
    shifted.save_to_disk(str(root / "labels_out_of_range"))

    ViTModel(
        ViTConfig(
            image_size=8,
            patch_size=4,
            num_channels=1,
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
        )
    ).save_pretrained(root / "headless")
    shutil.copy(os.path.join(original_path, "preprocessor_config.json"), root / "headless")

    shutil.copytree(original_path, root / "truncated")
    st = root / "truncated" / "model.safetensors"
    st.write_bytes(st.read_bytes()[: st.stat().st_size // 2])

    shutil.copytree(original_path, root / "bin_only")
    torch.save(load_file(str(root / "bin_only" / "model.safetensors")), root / "bin_only" / "pytorch_model.bin")
    os.remove(root / "bin_only" / "model.safetensors")

    ckpt = root / "ckpt" / "checkpoint-2"
    ckpt.mkdir(parents=True)
    (ckpt / "trainer_state.json").write_text("{}")
    (ckpt / "unlearning_method_state.pt").write_bytes(b"not a torch file")
    shutil.copy(os.path.join(original_path, "model.safetensors"), ckpt)

    (root / "empty_ids.txt").write_text("")
    (root / "unknown_ids.txt").write_text("digits-0000\nno-such-id\n")
    (root / "full").mkdir()
    (root / "full" / "keep.txt").write_text("earlier result")
    return root


ALL_CLASSES = [str(c) for c in range(10)]
MATRIX = [
    # id, argv fragment ({root}, {model} substituted), expected substring of the one-line error
    ("forget-empty", ["--forget_ids_file", "{root}/empty_ids.txt"], "forget set is empty"),
    ("forget-everything", ["--forget_classes", *ALL_CLASSES], "forget set is the whole dataset"),
    ("forget-ids-unknown", ["--forget_ids_file", "{root}/unknown_ids.txt"], "ids to forget are not in column 'id'"),
    ("no-image-column", ["--model_name_or_path", "{model}", "--dataset_name", "{root}/no_image"], "no column 'image'"),
    ("no-label-column", ["--model_name_or_path", "{model}", "--dataset_name", "{root}/no_label"], "no column 'label'"),
    (
        "labels-out-of-range",
        ["--model_name_or_path", "{model}", "--dataset_name", "{root}/labels_out_of_range"],
        "outside the model's 10 classes",
    ),
    ("no-classification-head", ["--model_name_or_path", "{root}/headless"], "no trained classification head"),
    ("model-path-missing", ["--model_name_or_path", "{root}/does-not-exist"], "does not exist"),
    ("model-id-missing", ["--model_name_or_path", "nobody-xyz/no-such-model"], "check the model id or path"),
    ("unknown-method", ["--method", "forgetnet"], "choose one of: "),
    ("exclusive-selection", ["--forget_fraction", "0.1", "--forget_classes", "3"], "mutually exclusive"),
    ("output-dir-not-empty", ["--output_dir", "{root}/full"], "pass --overwrite_output_dir"),
    ("grad-accum-0", ["--gradient_accumulation_steps", "0"], "gradient_accumulation_steps must be >= 1"),
    ("truncated-safetensors", ["--model_name_or_path", "{root}/truncated"], "cannot load model weights"),
    ("bin-only-checkpoint", ["--model_name_or_path", "{root}/bin_only"], "safetensors"),
    ("corrupt-resume-checkpoint", ["--resume_from_checkpoint", "{root}/ckpt/checkpoint-2"], "is corrupt"),
    ("missing-resume-checkpoint", ["--resume_from_checkpoint", "{root}/ckpt/checkpoint-9"], "is not a directory"),
]


@pytest.mark.parametrize("fragment, expected", [row[1:] for row in MATRIX], ids=[row[0] for row in MATRIX])
def test_bad_input_one_line_exit_2_no_files(
    bad_inputs, original_path, tmp_path, capsys, no_training, fragment, expected
):
    argv = [a.format(root=bad_inputs, model=original_path) for a in fragment]
    out = tmp_path / "out"
    if "--output_dir" not in argv:
        argv += ["--output_dir", str(out)]
    if "--model_name_or_path" in argv and "--dataset_name" not in argv:
        argv += ["--dataset_name", str(bad_inputs / "digits")]
    full_before = sha256_tree(bad_inputs / "full")
    models_before = sha256_tree(original_path)
    run_cli(argv + FAST, capsys, 2, expected)
    assert not out.exists()
    assert sha256_tree(bad_inputs / "full") == full_before
    assert sha256_tree(original_path) == models_before


# ---- loading: safetensors only, remote code only on request ----------------------------------------------------
@pytest.mark.parametrize("flag", [False, True])
def test_trust_remote_code_passed_through_and_safetensors_only(original_path, tmp_path, monkeypatch, flag):
    import transformers

    seen = []
    real = transformers.AutoModelForImageClassification.from_pretrained.__func__
    real_config = transformers.AutoConfig.from_pretrained.__func__

    def model_spy(cls, *a, **k):
        seen.append(("model", k.get("trust_remote_code"), k.get("use_safetensors")))
        return real(cls, *a, **k)

    def config_spy(cls, *a, **k):
        seen.append(("config", k.get("trust_remote_code"), None))
        return real_config(cls, *a, **k)

    monkeypatch.setattr(transformers.AutoModelForImageClassification, "from_pretrained", classmethod(model_spy))
    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", classmethod(config_spy))
    from hf_unlearn import load_classifier

    load_classifier(str(original_path), trust_remote_code=flag)
    assert ("model", flag, True) in seen and ("config", flag, None) in seen
    assert all(t == flag for _, t, _ in seen)

    # and the CLI forwards --trust_remote_code to load_classifier
    import hf_unlearn

    calls = []

    def fake_load(path, **k):
        calls.append(k.get("trust_remote_code"))
        raise ValueError("stop here")

    monkeypatch.setattr(hf_unlearn, "load_classifier", fake_load)
    argv = ["--output_dir", str(tmp_path / "o"), *FAST] + (["--trust_remote_code", "true"] if flag else [])
    assert run_unlearning(argv) == 2
    assert calls == [flag]
