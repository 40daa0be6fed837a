"""LoTUS' teacher-logit cache changes nothing but speed: same seed -> same losses, same RNG use, same weights."""

import torch
from transformers import TrainerCallback


class _Record(TrainerCallback):
    def __init__(self):
        self.losses, self.rng_end = [], None

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.losses.append(float(logs["loss"]))

    def on_train_end(self, args, state, control, **kwargs):
        self.rng_end = torch.random.get_rng_state().clone()


def _run(make_trainer, cache: bool):
    trainer = make_trainer(
        "lotus",
        method_config={"cache_teacher_logits": cache, "alpha": 8.0},
        num_train_epochs=2,
        per_device_train_batch_size=32,
        learning_rate=5e-4,
        logging_strategy="steps",
        logging_steps=1,
    )
    record = _Record()
    trainer.add_callback(record)
    trainer.train()
    weights = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
    return trainer, record, weights


def test_cached_and_uncached_lotus_agree(make_trainer):
    t_off, rec_off, w_off = _run(make_trainer, cache=False)
    t_on, rec_on, w_on = _run(make_trainer, cache=True)
    # the cache is used only when asked for
    assert t_off.method._cache is None
    assert t_on.method._cache is not None and t_on.transform_is_deterministic
    assert t_on.state.global_step == t_off.state.global_step > 0
    # same temperature schedule and the same per-step losses
    assert [h["tau"] for h in t_on.method.history] == [h["tau"] for h in t_off.method.history]
    assert len(rec_on.losses) == len(rec_off.losses) == t_on.state.global_step
    assert torch.allclose(torch.tensor(rec_on.losses), torch.tensor(rec_off.losses), atol=1e-5, rtol=1e-5)
    # the Gumbel noise consumed exactly the same random numbers in both paths
    assert torch.equal(rec_on.rng_end, rec_off.rng_end)
    # final weights (and BatchNorm buffers) agree within floating-point tolerance
    assert w_on.keys() == w_off.keys()
    for k in w_on:
        if w_on[k].is_floating_point():
            assert torch.allclose(w_on[k], w_off[k], atol=1e-5, rtol=1e-4), k
        else:
            assert torch.equal(w_on[k], w_off[k]), k


def test_cached_teacher_logits_match_the_teacher(make_trainer):
    """The cached table holds the teacher's own logits for every mixture row (eval-mode BN: batch-independent)."""
    trainer = make_trainer("lotus", method_config={"cache_teacher_logits": True}, num_train_epochs=1)
    trainer.method.prepare(trainer)
    batch = trainer.data_collator(trainer.train_dataset.__getitems__(list(range(len(trainer.train_dataset)))))
    cached = trainer.method._teacher_logits(trainer, batch)
    with torch.no_grad():
        direct = trainer.logits(trainer.teacher, batch["pixel_values"]).float()
    assert torch.allclose(cached, direct, atol=1e-5)
