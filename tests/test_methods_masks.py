"""SSD, SalUn (Random Labeling and LoTUS variants) and DEL: exact weight edits, exact masks, resume."""

from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F

from hf_unlearn.modeling.classifiers import logits_of


def _params(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def _accuracies(trainer, test_split) -> dict[str, float]:
    return {
        "forget": trainer.accuracy(trainer.model, trainer.forget_split),
        "retain": trainer.accuracy(trainer.model, trainer.retain_split),
        "test": trainer.accuracy(trainer.model, test_split),
    }


# ---- SSD --------------------------------------------------------------------------------------------------
def _squared_batch_gradients(model, batches) -> dict[str, torch.Tensor]:
    """Independent reference: mean over batches of the squared gradient of the batch-mean CE, eval mode."""
    model.eval()
    total = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    count = 0
    for x, y in batches:
        model.zero_grad(set_to_none=True)
        F.cross_entropy(logits_of(model, x), y).backward()
        for n, p in model.named_parameters():
            if p.grad is not None:
                total[n] += p.grad.square()
        count += 1
    model.zero_grad(set_to_none=True)
    return {n: t / count for n, t in total.items()}


@pytest.mark.parametrize("alpha,lam", [(10.0, 1.0), (5.0, 0.5)])
def test_ssd_dampens_exactly_the_selected_entries_by_the_right_factor(make_trainer, alpha, lam):
    trainer = make_trainer("ssd", {"selection_weighting": alpha, "dampening_constant": lam})
    model, bs = trainer.model, trainer.args.per_device_train_batch_size
    before = _params(model)

    forget, retain = trainer.forget_split, trainer.retain_split
    order = torch.randperm(len(forget), generator=torch.Generator().manual_seed(trainer.args.seed))
    i_f = _squared_batch_gradients(
        model,
        [(forget.pixels(order[s : s + bs]), forget.labels[order[s : s + bs]]) for s in range(0, len(forget), bs)],
    )
    x_all = torch.cat([forget.pixels(slice(None)), retain.pixels(slice(None))])
    y_all = torch.cat([forget.labels, retain.labels])
    i_d = _squared_batch_gradients(model, [(x_all[s : s + bs], y_all[s : s + bs]) for s in range(0, len(y_all), bs)])

    out = trainer.train()
    assert out.global_step == 0 and trainer.state.global_step == 0  # no optimiser step
    assert not trainer.model.training
    after = _params(model)

    n_selected = 0
    for name, p0 in before.items():
        selected = i_f[name] > alpha * i_d[name]
        # Entries within float noise of the selection boundary could go either way between two computations.
        clear = (i_f[name] - alpha * i_d[name]).abs() > 1e-4 * (i_f[name] + alpha * i_d[name])
        factor = torch.where(selected, (lam * i_d[name] / i_f[name]).clamp(max=1.0), torch.ones_like(p0))
        expected = p0 * factor
        unselected = ~selected & clear
        assert torch.equal(after[name][unselected], p0[unselected]), name
        sel = selected & clear
        torch.testing.assert_close(after[name][sel], expected[sel], rtol=1e-5, atol=0)
        n_selected += int(selected.sum())
    assert n_selected > 0
    assert abs(trainer.method.stats["dampened_entries"] - n_selected) <= 2
    changed = sum(int((after[n] != before[n]).sum()) for n in before)
    assert changed > 0 and changed <= n_selected


def test_ssd_skips_parameters_without_gradient(make_trainer):
    trainer = make_trainer("ssd", {"selection_weighting": 1.0})
    trainer.model.unused = torch.nn.Linear(3, 3)  # never called: no gradient, zero importance
    unused = _params(trainer.model.unused)
    trainer.train()
    assert all(torch.equal(p, unused[n]) for n, p in trainer.model.unused.named_parameters())
    assert trainer.method.stats["dampened_entries"] > 0


# ---- SalUn ------------------------------------------------------------------------------------------------
def _saliency(model, split, bs) -> dict[str, torch.Tensor]:
    model.eval()
    total = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    for s in range(0, len(split), bs):
        model.zero_grad(set_to_none=True)
        (-F.cross_entropy(logits_of(model, split.pixels(slice(s, s + bs))), split.labels[s : s + bs])).backward()
        for n, p in model.named_parameters():
            total[n] += p.grad
    model.zero_grad(set_to_none=True)
    return {n: t.abs() for n, t in total.items()}


@pytest.mark.parametrize("method,fraction", [("salun", None), ("salun_lotus", 0.2)])
def test_salun_masked_out_entries_stay_bit_identical(make_trainer, method, fraction):
    config = {"mask_fraction": fraction} if fraction is not None else None
    # Weight decay on (the default of both): it would move masked-out weights if they were not restored.
    trainer = make_trainer(method, config, num_train_epochs=2)
    assert trainer.args.weight_decay > 0
    model = trainer.model
    before = _params(model)
    saliency = _saliency(model, trainer.forget_split, trainer.args.per_device_train_batch_size)
    trainer.train()
    assert trainer.state.global_step > 0 and not trainer.model.training
    mask = trainer.method.trainable_mask
    after = _params(model)

    assert set(mask) == set(before)
    total = sum(m.numel() for m in mask.values())
    selected = sum(int(m.sum()) for m in mask.values())
    expected_fraction = fraction if fraction is not None else 0.5
    assert abs(selected - expected_fraction * total) <= 1
    for name, m in mask.items():
        assert m.dtype == torch.bool and m.shape == before[name].shape
        assert torch.equal(after[name][~m], before[name][~m]), name
    changed = sum(int((after[n] != before[n])[m].sum()) for n, m in mask.items())
    assert changed > 0.9 * selected
    # The mask is the global top fraction of |sum of forget gradients|.
    in_scores = torch.cat([saliency[n][m] for n, m in mask.items()])
    out_scores = torch.cat([saliency[n][~m] for n, m in mask.items()])
    assert in_scores.min() >= out_scores.max() * (1 - 1e-4)


def test_salun_parameter_without_gradient_gets_an_all_zero_mask(make_trainer):
    trainer = make_trainer("salun", {"mask_fraction": 0.9}, num_train_epochs=1)
    trainer.model.unused = torch.nn.Linear(3, 3)
    unused = _params(trainer.model.unused)
    trainer.train()
    for name, p in trainer.model.unused.named_parameters():
        assert not trainer.method.trainable_mask[f"unused.{name}"].any()
        assert torch.equal(p, unused[name])


# ---- DEL --------------------------------------------------------------------------------------------------
def _check_del(trainer, before, head_names):
    method = trainer.method
    reset, trainable = method.reset_mask, method.trainable_mask
    after = _params(trainer.model)
    total = sum(m.numel() for m in reset.values())
    assert abs(sum(int(m.sum()) for m in reset.values()) - 0.3 * total) <= 1
    assert head_names and all(trainable[n].all() for n in head_names)
    for name, m in trainable.items():
        frozen = ~m
        assert torch.equal(after[name][frozen], before[name][frozen]), name
        if name not in head_names:
            assert torch.equal(m, reset[name])
    reset_entries = torch.cat([(after[n] != before[n])[m] for n, m in reset.items()])
    assert reset_entries.float().mean() > 0.95  # reset (then trained) entries differ from the original
    head_changed = torch.cat([(after[n] != before[n]).reshape(-1) for n in head_names])
    assert head_changed.float().mean() > 0.9  # the whole head trains, not only its reset part


@pytest.mark.parametrize("accumulation", [1, 2])
def test_del_resets_and_finetunes_only_the_mask_and_the_head(make_trainer, accumulation):
    trainer = make_trainer("del", num_train_epochs=1, gradient_accumulation_steps=accumulation)
    before = _params(trainer.model)
    trainer.train()
    assert trainer.state.global_step > 0 and not trainer.model.training
    _check_del(trainer, before, {"classifier.1.weight", "classifier.1.bias"})


def test_del_reset_takes_values_from_a_seeded_fresh_initialisation(make_trainer):
    trainer = make_trainer("del", {"init_seed": 123})
    model = trainer.model
    before = _params(model)
    trainer.method.prepare(trainer)  # the reset alone, without the finetuning
    from hf_unlearn.modeling.classifiers import reinit_seed

    torch.manual_seed(reinit_seed(123))
    fresh = dict(type(model)(model.config).named_parameters())
    for name, m in trainer.method.reset_mask.items():
        p = dict(model.named_parameters())[name].detach()
        assert torch.equal(p[m], fresh[name].detach()[m]), name
        assert torch.equal(p[~m], before[name][~m]), name


def test_del_channel_scores():
    from hf_unlearn.methods.del_method import channel_scores

    conv = torch.arange(2 * 3 * 2 * 2, dtype=torch.float).reshape(2, 3, 2, 2)  # rows of 12 entries
    top = channel_scores(conv, "topk_mean", 0.25)  # k = 3: mean of the 3 largest entries of each row
    assert torch.equal(top[0], torch.full((3, 2, 2), 10.0)) and torch.equal(top[1], torch.full((3, 2, 2), 22.0))
    assert torch.equal(channel_scores(conv, "mean", 0.1)[1], torch.full((3, 2, 2), 17.5))
    few_rows = torch.rand(3, 5)  # fewer than 10 output channels: the reference's k would be 0 (NaN)
    assert torch.equal(channel_scores(few_rows, "topk_mean", 0.1)[:, 0], few_rows.max(dim=1).values)
    bias = torch.rand(4)
    assert torch.equal(channel_scores(bias), bias)


def test_del_works_on_a_timm_model(tmp_path, digits, forget_split):
    timm = pytest.importorskip("timm")
    from hf_unlearn import UnlearningArguments, UnlearningTrainer, load_classifier

    torch.manual_seed(1)  # not args.seed: the fresh initialisation must differ from this model's own
    tiny = timm.create_model(
        "test_resnet",
        pretrained=False,
        num_classes=10,
        in_chans=1,
        pretrained_cfg_overlay=dict(input_size=(1, 8, 8), mean=(0.5,), std=(0.5,)),
    )
    timm.models.save_for_hf(tiny, str(tmp_path / "timm"), safe_serialization=True)
    loaded = load_classifier(str(tmp_path / "timm"))
    assert loaded.library == "timm"
    args = UnlearningArguments.for_method(
        "del",
        output_dir=str(tmp_path / "out"),
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
        num_train_epochs=1,
    )
    trainer = UnlearningTrainer(
        loaded.model,
        args,
        forget_dataset=forget_split.forget,
        retain_dataset=forget_split.retain,
        image_transform=loaded.transform,
    )
    before = _params(trainer.model)
    trainer.train()
    _check_del(trainer, before, {"fc.weight", "fc.bias"})

    # The reset values come from timm.create_model(arch, pretrained=False) with the model's in_chans, seeded.
    again = load_classifier(str(tmp_path / "timm"))
    trainer = UnlearningTrainer(
        again.model,
        args,
        forget_dataset=forget_split.forget,
        retain_dataset=forget_split.retain,
        image_transform=again.transform,
    )
    trainer.method.prepare(trainer)
    from hf_unlearn.modeling.classifiers import reinit_seed

    torch.manual_seed(reinit_seed(args.seed))  # the re-initialisation stream, never the run's own seed
    fresh = dict(timm.create_model("test_resnet", pretrained=False, num_classes=10, in_chans=1).named_parameters())
    reset = dict(trainer.model.named_parameters())
    for name, m in trainer.method.reset_mask.items():
        assert torch.equal(reset[name].detach()[m], fresh[name].detach()[m]), name


@pytest.mark.parametrize("method", ["del", "salun"])
def test_resume_matches_an_uninterrupted_run(make_trainer, tmp_path, method):
    common = dict(num_train_epochs=2, save_strategy="steps", save_steps=7)
    full = make_trainer(method, output_dir=str(tmp_path / "full"), **common)
    full.train()
    checkpoint = str(tmp_path / "full" / "checkpoint-7")
    assert os.path.isdir(checkpoint) and full.state.global_step > 9  # resumed mid-epoch 1, crosses into epoch 2

    resumed = make_trainer(method, output_dir=str(tmp_path / "resumed"), **common)
    resumed.train(resume_from_checkpoint=checkpoint)
    assert resumed.state.global_step == full.state.global_step
    for name, m in full.method.trainable_mask.items():
        assert torch.equal(resumed.method.trainable_mask[name], m)
    final, again = _params(full.model), _params(resumed.model)
    for name in final:
        torch.testing.assert_close(again[name], final[name], atol=1e-6, rtol=0)


# ---- end to end on the embedded default ---------------------------------------------------------------------
# Measured from the shipped ResNet (forget 1.000, retain 1.000, test 0.978), seeds 0-3, 1 thread (seed 0 also under 2):
# forget after 0.983-1.000, i.e. at most 0.022 above the original's test accuracy (asserted: 0.025; SSD and
# SalUn+LoTUS leave it at 1.000 for every seed), retain >= 0.995 (asserted: >= before - 0.05), test >= 0.941
# (asserted: >= before - 0.08). The originals ship with the package: before, each machine trained its own, and one
# whose test accuracy came out at 0.970 failed the 0.025 bound.
# DEL: 10 of its default 30 epochs; 5 sufficed only while its reset coincided with the original's starting weights
# (with an independent re-initialisation, 5 epochs left retain accuracy at 0.944 < 0.95 under one thread)
@pytest.mark.parametrize("method,epochs", [("ssd", 1), ("salun", 3), ("salun_lotus", 2), ("del", 10)])
def test_end_to_end_on_the_embedded_default(make_trainer, test_split, method, epochs):
    trainer = make_trainer(method, num_train_epochs=epochs)
    before_params = _params(trainer.model)
    before = _accuracies(trainer, test_split)
    trainer.train()
    after = _accuracies(trainer, test_split)
    assert not trainer.model.training
    assert any(not torch.equal(p, before_params[n]) for n, p in trainer.model.named_parameters())
    assert after["forget"] <= before["forget"] + 1e-9
    assert after["forget"] <= before["test"] + 0.025  # at (or below) the level of unseen data
    assert after["retain"] >= before["retain"] - 0.05
    assert after["test"] >= before["test"] - 0.08
