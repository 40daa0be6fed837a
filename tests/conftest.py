"""Shared fixtures: the embedded digits default, its shipped original models (the same weights on every machine, so
effectiveness margins measured here hold anywhere: hf_unlearn/originals/), trainer factory."""

from __future__ import annotations

import os

import pytest
import torch

# Tests never touch the network or the user's cache.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# One intra-op thread in the test process, whatever OMP_NUM_THREADS says: float reduction order depends on the thread
# count, so pinning it makes every number a test asserts the same on a 2-core laptop and a 64-core CI runner (the
# effectiveness margins were measured under 1 and 2 threads). Subprocess launches set their own threads.
torch.set_num_threads(1)


#: The training arguments of an in-process test run: CPU, no reports, no checkpoints, no progress bars, seed 0.
QUIET_TRAINING = dict(
    report_to="none", save_strategy="no", use_cpu=True, disable_tqdm=True, logging_steps=1000, seed=0
)


@pytest.fixture(scope="session")
def cache_root(tmp_path_factory):
    # The shipped originals are never written to the cache; benchmark originals and golds, and recipes the package
    # does not ship, are. HF_UNLEARN_TEST_CACHE (optional) keeps those between pytest runs while developing; CI
    # leaves it unset and trains them afresh in a temporary folder.
    persistent = os.environ.get("HF_UNLEARN_TEST_CACHE")
    root = persistent or tmp_path_factory.mktemp("hf_unlearn_cache")
    old = os.environ.get("HF_UNLEARN_CACHE")
    os.environ["HF_UNLEARN_CACHE"] = str(root)
    yield root
    if old is None:
        os.environ.pop("HF_UNLEARN_CACHE", None)
    else:
        os.environ["HF_UNLEARN_CACHE"] = old


@pytest.fixture(scope="session")
def digits():
    from hf_unlearn.data.builtin import load_digits_dataset

    return load_digits_dataset()


@pytest.fixture(scope="session")
def original_path(cache_root, digits):
    """The shipped ResNet (8x8 input) trained on digits' train split: 1.00 train / 0.985 test accuracy."""
    from hf_unlearn.data.builtin import original_model

    return original_model("resnet", seed=0, dataset=digits, progress=None)


@pytest.fixture(scope="session")
def vit_original_path(cache_root, digits):
    """The embedded default's shipped ViT (16x16 input): 1.00 train / 0.963 test accuracy."""
    from hf_unlearn.data.builtin import original_model

    return original_model("vit", seed=0, dataset=digits, progress=None)


@pytest.fixture(scope="session")
def forget_split(digits):
    from hf_unlearn import select_forget

    return select_forget(digits["train"], fraction_per_class=0.1, seed=0, num_labels=10)


@pytest.fixture
def make_trainer(original_path, digits, forget_split, tmp_path):
    """``make_trainer(method, method_config=None, model_path=None, **training_args)`` -> a fresh UnlearningTrainer
    on the digits default (the session's ResNet original unless ``model_path`` is given)."""
    from hf_unlearn import UnlearningArguments, UnlearningTrainer, load_classifier

    def factory(method: str, method_config=None, model_path=None, **overrides):
        loaded = load_classifier(model_path or original_path)
        settings = dict(
            output_dir=str(tmp_path / f"run-{method}"),
            **QUIET_TRAINING,
        )
        settings.update(overrides)
        args = UnlearningArguments.for_method(method, **settings)
        return UnlearningTrainer(
            loaded.model,
            args,
            forget_dataset=forget_split.forget,
            retain_dataset=forget_split.retain,
            calibration_dataset=digits["validation"],
            method_config=method_config,
            image_transform=loaded.transform,
            removal_record=forget_split.record,
        )

    return factory


@pytest.fixture
def test_split(original_path, digits):
    from hf_unlearn import load_classifier
    from hf_unlearn.data.splits import to_image_split

    return to_image_split(digits["test"], load_classifier(original_path).transform, name="test")


@pytest.fixture
def one_thread():
    """Tiny models: one intra-op thread is faster than two, and far faster on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ---- the CLI as a test drives it: one runner and one "no work started" guard, shared by every bad-input table ----
def run_cli(argv, capsys, code: int, expected: str | None = None) -> str:
    """Run ``hf-unlearn unlearn`` in process; assert the exit code, exactly one ``error:`` line (containing
    ``expected``) for a non-zero code, none for 0, and no traceback. Returns the error line ("" on success)."""
    from hf_unlearn.cli.main import run_unlearning

    capsys.readouterr()
    got = run_unlearning([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert got == code, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    if code:
        assert len(lines) == 1, err[-3000:]
        if expected is not None:
            assert expected in lines[0], lines[0]
        return lines[0]
    assert not lines, err[-3000:]
    return ""


@pytest.fixture
def no_work(monkeypatch):
    """Up-front refusals: neither the original's evaluation nor a training step may run."""
    from hf_unlearn.training.trainer import UnlearningTrainer

    def forbidden(*a, **k):
        raise AssertionError("work started before the input was rejected")

    monkeypatch.setattr(UnlearningTrainer, "training_step", forbidden)
    monkeypatch.setattr(UnlearningTrainer, "predictions", forbidden)


@pytest.fixture
def no_training(monkeypatch):
    """Refusals that may read data first (a lazy split is read batch by batch) but must not train a step."""
    from hf_unlearn.training.trainer import UnlearningTrainer

    def refuse(*a, **k):
        raise AssertionError("a training step ran before the input was rejected")

    monkeypatch.setattr(UnlearningTrainer, "training_step", refuse)


#: The files of a finished ``hf-unlearn unlearn`` output directory (docs/FORMATS.md).
OUTPUT_FILES = frozenset(
    {
        "README.md",
        "config.json",
        "metrics.json",
        "model.safetensors",
        "preprocessor_config.json",
        "removal_record.json",
        "removed_ids.json",
        "unlearning_config.json",
        "ledger.json",
    }
)


def sha256_tree(path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under ``path`` (the listing and the content at once)."""
    import hashlib

    out = {}
    for root, _, files in os.walk(path):
        for name in files:
            full = os.path.join(root, name)
            with open(full, "rb") as f:
                out[os.path.relpath(full, path)] = hashlib.sha256(f.read()).hexdigest()
    return out


def random_predictions(seed: int, sizes: dict[str, int], classes: int, scale: float):
    """Synthetic ``ModelPredictions``: per split, ``sizes[split]`` rows of Gaussian logits (× ``scale``) over
    ``classes`` classes and uniform labels, from one seeded generator (the metric tests' known-answer inputs)."""
    from hf_unlearn.evaluation.metrics import ModelPredictions

    g = torch.Generator().manual_seed(seed)
    p = ModelPredictions()
    for split, count in sizes.items():
        p.logits[split] = torch.randn(count, classes, generator=g) * scale
        p.labels[split] = torch.randint(0, classes, (count,), generator=g)
    return p
