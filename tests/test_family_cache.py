"""The model-family adapter (hf_unlearn.modeling.classifiers) and the trainer's teacher-logit cache (hf_unlearn.training.teacher_cache)."""

from __future__ import annotations

import pytest
import torch
from transformers import TrainerCallback

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: these models are tiny


# ---- the family adapter ----------------------------------------------------------------------------------------
def test_family_of_a_transformers_classifier(tmp_path):
    from hf_unlearn.data.builtin import build_image_classifier
    from hf_unlearn.methods.del_method import classifier_head, head_parameter_names
    from hf_unlearn.modeling.classifiers import (
        TRANSFORMERS,
        family_of,
        family_of_config,
        is_timm_model,
        load_classifier,
        logits_of,
        num_labels_of,
        save_classifier,
    )
    from hf_unlearn.publishing.card import detect_library_name

    model, processor = build_image_classifier("resnet", 10, 8, seed=0)
    family = family_of(model)
    assert family is TRANSFORMERS and family.library_name == "transformers" and not is_timm_model(model)
    assert family.num_labels(model) == num_labels_of(model) == 10
    x = torch.randn(3, 1, 8, 8)
    model.eval()
    assert torch.equal(family.logits(model, x), logits_of(model, x))
    assert family.classifier_head(model) is classifier_head(model) is model.classifier
    assert (
        family.head_parameter_names(model)
        == head_parameter_names(model)
        == {"classifier.1.weight", "classifier.1.bias"}
    )
    save_classifier(model, str(tmp_path / "m"), processor)
    config = __import__("json").load(open(tmp_path / "m" / "config.json"))
    assert family_of_config(config) is TRANSFORMERS and detect_library_name(config) == "transformers"
    assert detect_library_name(None) == "transformers"
    assert load_classifier(str(tmp_path / "m")).library == "transformers"


def test_family_of_a_timm_classifier(tmp_path):
    timm = pytest.importorskip("timm")
    from hf_unlearn.modeling.classifiers import (
        TIMM,
        family_of,
        family_of_config,
        fresh_model_like,
        load_classifier,
        save_classifier,
    )
    from hf_unlearn.publishing.card import detect_library_name

    torch.manual_seed(0)
    model = timm.create_model("test_resnet", pretrained=False, num_classes=10, in_chans=1)
    family = family_of(model)
    assert family is TIMM and family.library_name == "timm"
    assert family.num_labels(model) == 10
    assert family.classifier_head(model) is model.get_classifier()
    assert family.head_parameter_names(model) == {"fc.weight", "fc.bias"}
    fresh = fresh_model_like(model, 3)
    assert type(fresh) is type(model) and not torch.equal(fresh.fc.weight, model.fc.weight)
    save_classifier(model, str(tmp_path / "t"))
    config = __import__("json").load(open(tmp_path / "t" / "config.json"))
    assert family_of_config(config) is TIMM and detect_library_name(config) == "timm"
    assert load_classifier(str(tmp_path / "t")).library == "timm"


# ---- the teacher-logit cache -------------------------------------------------------------------------------------
class _Losses(TrainerCallback):
    def __init__(self):
        self.losses = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.losses.append(float(logs["loss"]))


def _run(make_trainer, method, cache, **config):
    trainer = make_trainer(
        method,
        method_config={"cache_teacher_logits": cache, **config},
        num_train_epochs=2,
        per_device_train_batch_size=32,
        logging_strategy="steps",
        logging_steps=1,
    )
    record = _Losses()
    trainer.add_callback(record)
    trainer.train()
    return trainer, record.losses, {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


@pytest.mark.parametrize("method", ["scrub", "bad_teacher"])
def test_cached_and_live_teachers_agree(make_trainer, method):
    config = {"scrub_max_steps": 1} if method == "scrub" else {}
    off, losses_off, w_off = _run(make_trainer, method, False, **config)
    on, losses_on, w_on = _run(make_trainer, method, True, **config)
    assert len(off.teacher_logit_cache) == 0 and len(on.teacher_logit_cache) > 0
    assert len(losses_on) == len(losses_off) == on.state.global_step > 0
    assert torch.allclose(torch.tensor(losses_on), torch.tensor(losses_off), atol=1e-5, rtol=1e-5)
    for k in w_on:
        if w_on[k].is_floating_point():
            assert torch.allclose(w_on[k], w_off[k], atol=1e-5, rtol=1e-4), k
    cache = on.teacher_logit_cache
    if method == "bad_teacher":  # one cache per teacher, each filled only for the rows it teaches
        incompetent = on.method.incompetent_teacher
        assert cache.holds(incompetent, 1) and not cache.holds(incompetent, 0)
        assert cache.holds(on.teacher, 0) and not cache.holds(on.teacher, 1)
    else:
        assert cache.holds(on.teacher, 1) and cache.holds(on.teacher, 0)


def test_teacher_logits_serve_the_teachers_own_logits(make_trainer):
    trainer = make_trainer("bad_teacher", num_train_epochs=1)
    trainer.method.on_train_begin(trainer, trainer.state, trainer.control)
    batch = trainer.data_collator(trainer.train_dataset.__getitems__(list(range(len(trainer.train_dataset)))))
    forget = batch["forget_flag"].bool()
    assert forget.any() and (~forget).any()
    for teacher in (trainer.teacher, trainer.method.incompetent_teacher):
        with torch.no_grad():
            direct = trainer.logits(teacher, batch["pixel_values"]).float()
        assert torch.allclose(trainer.teacher_logits(teacher, batch), direct, atol=1e-5)
        assert torch.allclose(trainer.teacher_logits(teacher, batch, forget), direct[forget], atol=1e-5)
        assert torch.allclose(trainer.teacher_logits(teacher, batch, ~forget), direct[~forget], atol=1e-5)
        # a shuffled batch is served by (forget flag, sample index), not by position
        perm = torch.randperm(len(forget))
        shuffled = {k: v[perm] for k, v in batch.items()}
        assert torch.equal(trainer.teacher_logits(teacher, shuffled), trainer.teacher_logits(teacher, batch)[perm])


def test_no_teacher_cache_with_an_augmenting_transform(make_trainer):
    trainer = make_trainer("scrub", max_steps=2, per_device_train_batch_size=32)
    trainer.transform_is_deterministic = False  # as if the transform augmented: every step runs the teacher
    trainer.train()
    assert len(trainer.teacher_logit_cache) == 0
