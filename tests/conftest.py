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
torch.set_num_threads(min(2, torch.get_num_threads()))


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
            report_to="none",
            save_strategy="no",
            use_cpu=True,
            disable_tqdm=True,
            logging_steps=1000,
            seed=0,
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
