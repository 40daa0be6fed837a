"""Issue 11 "Fidelity": every method's optimiser is its reference's, method facts live on the method class, and the
retrain-free alpha search keeps the candidate with the lowest RF-JSD."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import torch

# ---- 1. the optimiser table, transcribed from SPEC §2.1/§2.7 (LoTUS), §3.1-§3.9 (baselines) and §7.3 (DEL) ----------
# optimiser class, lr, weight decay, momentum (SGD), schedule. Every reference builds its optimiser over
# model.parameters() (biases and norm weights decayed too) and none clips gradients.
SGD, ADAM, ADAMW = torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW
REFERENCE_OPTIMISERS = {
    "lotus": (ADAMW, 1e-4, 5e-4, None, "constant"),  # §2.1, §2.7
    "finetune": (SGD, 1e-3, 5e-4, 0.9, "constant"),  # §3.1
    "neggrad_plus": (SGD, 1e-3, 5e-4, 0.9, "constant"),  # §3.2
    "random_label": (SGD, 1e-3, 5e-4, 0.9, "constant"),  # §3.3
    "bad_teacher": (ADAM, 1e-4, 0.0, None, "constant"),  # §3.4
    "scrub": (ADAM, 5e-4, 5e-4, None, "constant"),  # §3.5 (CIFAR-100 / upstream SCRUB value)
    "unsir": (SGD, 1e-3, 0.0, 0.9, "constant"),  # §3.7
    "salun": (SGD, 1e-3, 5e-4, 0.9, "constant"),  # §3.8 salun_relabel
    "salun_lotus": (ADAMW, 1e-4, 5e-4, None, "constant"),  # §3.8 salun_lotus
    "del": (SGD, 0.015, 0.0, 0.9, "cosine_with_min_lr"),  # §7.3: cosine to 0.01 * lr
}
TRAINING_FREE = {"ssd"}  # §3.6: no optimiser step at all


def test_the_table_covers_every_registered_method():
    from hf_unlearn import list_methods

    assert set(REFERENCE_OPTIMISERS) | TRAINING_FREE == set(list_methods())


@pytest.mark.parametrize("method", sorted(REFERENCE_OPTIMISERS))
def test_effective_optimiser_matches_the_reference(method, make_trainer):
    cls, lr, wd, momentum, schedule = REFERENCE_OPTIMISERS[method]
    trainer = make_trainer(method, max_steps=10)
    assert trainer.args.max_grad_norm == 0.0  # no clipping: the Trainer clips only when max_grad_norm > 0
    trainer.create_optimizer_and_scheduler(num_training_steps=10)
    opt = trainer.optimizer
    assert type(opt) is cls
    params = {id(p) for p in trainer.model.parameters() if p.requires_grad}
    decayed = {id(p) for g in opt.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    in_groups = {id(p) for g in opt.param_groups for p in g["params"]}
    assert in_groups == params
    assert trainer.method.decay_all_parameters  # every reference decays model.parameters(), biases and norms too
    if wd > 0:
        assert decayed == params  # biases and norm weights included
        assert {g["weight_decay"] for g in opt.param_groups if g["params"]} == {wd}
    else:
        assert not decayed
    for g in opt.param_groups:
        assert g["lr"] == pytest.approx(lr)
        if momentum is not None:
            assert g["momentum"] == pytest.approx(momentum)
        if cls is not SGD:
            assert g["betas"] == (0.9, 0.999) and g["eps"] == pytest.approx(1e-8)
    lrs = []
    for _ in range(10):
        lrs.append(trainer.lr_scheduler.get_last_lr()[0])
        opt.step()
        trainer.lr_scheduler.step()
    if schedule == "constant":
        assert lrs == [pytest.approx(lr)] * 10
    else:  # cosine from lr down to 0.01 * lr
        assert lrs[0] == pytest.approx(lr) and lrs == sorted(lrs, reverse=True)
        assert trainer.lr_scheduler.get_last_lr()[0] == pytest.approx(0.01 * lr, rel=1e-6)


def test_ssd_runs_no_optimiser_and_would_not_clip():
    from hf_unlearn import get_method_class

    cls = get_method_class("ssd")
    assert cls.trains is False and cls.training_defaults["max_grad_norm"] == 0.0


def test_lotus_training_never_clips(make_trainer, monkeypatch):
    trainer = make_trainer("lotus", max_steps=2, per_device_train_batch_size=64)
    norms = []
    real = trainer.accelerator.clip_grad_norm_

    def spy(parameters, max_norm, *args, **kwargs):
        norms.append(max_norm)
        return real(parameters, max_norm, *args, **kwargs)

    monkeypatch.setattr(trainer.accelerator, "clip_grad_norm_", spy)
    trainer.train()
    # the Trainer still measures the norm for its logs, with max_norm=inf (no clipping)
    assert trainer.state.global_step == 2 and norms and all(n == float("inf") for n in norms)


def test_a_method_without_decay_all_keeps_the_trainer_convention(make_trainer):
    from hf_unlearn import UnlearningTrainer
    from hf_unlearn.methods.finetune import Finetune

    class TrainerConvention(Finetune):
        name = "finetune"
        decay_all_parameters = False

    base = make_trainer("finetune", max_steps=1)
    trainer = UnlearningTrainer(
        base.model,
        base.args,
        forget_dataset=base.forget_split,
        retain_dataset=base.retain_split,
        method=TrainerConvention(),
    )
    trainer.create_optimizer()
    exempt = {
        n
        for n, p in trainer.model.named_parameters()
        if any(p is q for g in trainer.optimizer.param_groups if g["weight_decay"] == 0 for q in g["params"])
    }
    assert exempt and all("bias" in n or "norm" in n.lower() for n in exempt)


# ---- the stop rule ----------------------------------------------------------------------------------------------
def test_stop_rule_is_the_references_float_comparison():
    from hf_unlearn.methods.lotus import should_stop

    assert should_stop(0.91, 0.93) and should_stop(0.92, 0.93)  # 0.92 - 0.93 = -0.010000000000000009
    assert not should_stop(0.93, 0.94)  # the documented tie: 0.93 - 0.94 = -0.009999999999999898 does not stop
    assert not should_stop(0.935, 0.94) and not should_stop(0.94, 0.94)


@pytest.mark.parametrize(
    "forget_acc, cal_acc, stop",
    [
        (0.924, 0.926, True),  # rounded 0.92 vs 0.93: stops
        (0.934, 0.936, False),  # rounded 0.93 vs 0.94: the reference's float subtraction does not stop
        (0.9349, 0.9351, False),  # 0.93 vs 0.94 again
    ],
)
def test_stop_rule_on_rounded_accuracies_with_the_tie_case(forget_acc, cal_acc, stop):
    from hf_unlearn.methods.lotus import Lotus, LotusConfig

    method = Lotus(LotusConfig(alpha=8.0, reference_rounding=True))
    trainer = SimpleNamespace(
        teacher="t",
        model="m",
        calibration_split="cal",
        forget_split="forget",
        log=lambda *_: None,
        accuracy=lambda m, s: cal_acc if s == "cal" else forget_acc,
    )
    method.prepare(trainer)
    assert method.finished is stop


def test_accuracy_is_correct_over_total_in_float64(make_trainer):
    trainer = make_trainer("lotus", max_steps=1)
    split = trainer.forget_split
    correct = int((trainer.predict_logits(trainer.model, split).argmax(-1).cpu() == split.labels).sum())
    assert trainer.accuracy(trainer.model, split) == correct / len(split)  # exact, not a float32 mean


# ---- 2. method facts ---------------------------------------------------------------------------------------------
EXPECTED_FACTS = {
    "lotus": ("LoTUS", ["2503.18314"]),
    "scrub": ("SCRUB", ["2302.09880"]),
    "ssd": ("SSD", ["2308.07707"]),
    "del": ("DEL", ["2412.02432"]),
    "salun": ("SalUn", ["2310.12508"]),
    "salun_lotus": ("SalUn + LoTUS", ["2310.12508", "2503.18314"]),
    "bad_teacher": ("Bad Teacher", ["2205.08096"]),
    "unsir": ("UNSIR", ["2111.08947"]),
    "neggrad_plus": ("NegGrad+", ["2302.09880"]),  # introduced by Kurmanji et al. (SPEC §3.2)
    "finetune": ("Fine-tuning", []),  # the reference code's baseline, no paper (SPEC §3.1)
    "random_label": ("Random Labeling", []),  # SPEC names no paper (§3.3)
}


def test_every_registered_method_carries_its_facts():
    from hf_unlearn import get_method_class, list_methods

    assert set(EXPECTED_FACTS) == set(list_methods())
    for name, (display, arxiv) in EXPECTED_FACTS.items():
        cls = get_method_class(name)
        assert cls.display_name == display
        assert [p.arxiv_id for p in cls.papers] == arxiv
        for p in cls.papers:
            assert p.url == f"https://arxiv.org/abs/{p.arxiv_id}" and p.title and p.year


@pytest.mark.parametrize("method", sorted(EXPECTED_FACTS))
def test_card_names_and_cites_the_method_and_lotus_for_rf_jsd(method):
    from hf_unlearn.publishing.card import build_model_card

    display, arxiv = EXPECTED_FACTS[method]
    card = str(
        build_model_card(
            method=method,
            hyperparameters={},
            removal_record={"num_removed": 5},
            metrics={"original": {"rf_jsd": 0.2}, "unlearned": {"rf_jsd": 0.1}},
            original_model={},
        )
    )
    assert f"with\n**{display}**" in card and f"| Method | {display} |" in card
    citation = card[card.index("## Citation") :]
    for arxiv_id in arxiv:
        assert f"https://arxiv.org/abs/{arxiv_id}" in citation and f"eprint        = {{{arxiv_id}}}" in citation
    others = {a for _, ids in EXPECTED_FACTS.values() for a in ids} - set(arxiv) - {"2503.18314"}
    assert not any(a in card for a in others)  # no other method's paper
    # RF-JSD is cited to LoTUS in every card, in the metric's description and in the citation section
    assert "[LoTUS, arXiv 2503.18314](https://arxiv.org/abs/2503.18314)" in card
    assert "eprint        = {2503.18314}" in citation
    if "2503.18314" not in arxiv:
        assert "The unlearning method is LoTUS" not in card


def test_help_lists_display_names_and_papers(capsys):
    from hf_unlearn.cli.main import parse_args

    with pytest.raises(SystemExit):
        parse_args(["--method", "finetune", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name, (display, arxiv) in EXPECTED_FACTS.items():
        assert f"{name} ({display}" in text
        for arxiv_id in arxiv:
            assert f"arXiv {arxiv_id}" in text


def test_benchmark_table_names_the_method_from_its_class():
    from hf_unlearn.benchmark.protocol import markdown_report, summarize

    m = {
        "mia": 0.5,
        "acc_forget": 0.9,
        "acc_retain": 1.0,
        "acc_test": 0.9,
        "jsd": 0.0,
        "rf_jsd": 0.01,
        "runtime_s": 1.0,
    }
    runs = [{"seed": 0, "method": name, "unlearned": m, "original": m, "gold": m} for name in ("scrub", "finetune")]
    out = {
        "name": "x",
        "config": {"dataset": "d", "seeds": [0], "forget": {"fraction_per_class": 0.1}},
        "machine": {},
        "models": {},
        "runs": runs,
        "summary": {"resnet": summarize(runs)},
    }
    md = markdown_report(out)
    scrub = next(line for line in md.splitlines() if line.startswith("| scrub |"))
    assert scrub.endswith("| SCRUB ([arXiv 2302.09880](https://arxiv.org/abs/2302.09880)) |")
    assert next(line for line in md.splitlines() if line.startswith("| finetune |")).endswith("| Fine-tuning |")


# ---- 3. retrain-free alpha search ------------------------------------------------------------------------------
FAST = [
    "--default_arch",
    "resnet",
    "--max_steps",
    "3",
    "--use_cpu",
    "--disable_tqdm",
    "true",
    "--per_device_train_batch_size",
    "32",
    "--learning_rate",
    "1e-3",
]


def test_alpha_search_on_the_command_line_keeps_the_lowest_rf_jsd(original_path, tmp_path, capsys):
    from hf_unlearn.cli.main import run_unlearning

    out = tmp_path / "search"
    code = run_unlearning(["--method", "lotus", "--alpha_search", "2", "64", "--output_dir", str(out), *FAST])
    assert code == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    search = metrics["alpha_search"]
    cands = search["candidates"]
    assert [c["alpha"] for c in cands] == [2.0, 64.0]
    assert search["selection_split"] == "validation" and search["selection_metric"] == "avg_gap_estimate"
    for c in cands:
        assert {
            "alpha",
            "avg_gap_estimate_selection",
            "rf_jsd_selection",
            "rf_jsd",
            "acc_forget",
            "acc_retain",
            "acc_test",
            "mia",
            "avg_gap_estimate",
            "runtime_s",
            "examples",
        } <= c.keys()
        assert c["global_steps"] == 3
    assert cands[0]["avg_gap_estimate_selection"] != cands[1]["avg_gap_estimate_selection"]
    best = min(cands, key=lambda c: c["avg_gap_estimate_selection"])
    assert [c["selected"] for c in cands] == [c is best for c in cands]
    assert search["selected_alpha"] == best["alpha"]
    # the kept model is the best candidate: its metrics and its recorded alpha
    for key in ("acc_forget", "acc_retain", "acc_test", "rf_jsd", "mia"):
        assert metrics["unlearned"][key] == pytest.approx(best[key], abs=1e-12), key
    hyper = json.loads((out / "unlearning_config.json").read_text())["hyperparameters"]
    assert hyper["alpha"] == best["alpha"]
    card = (out / "README.md").read_text()
    assert "### Retrain-free α search" in card and f"**α = {best['alpha']:g}**" in card
    for c in cands:
        assert f"| {c['alpha']:.4g} | {c['avg_gap_estimate_selection']:.4f} | {c['rf_jsd']:.6f} |" in card


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--alpha_search", "2", "2"], "twice"),
        (["--alpha_search", "2", "nan"], "finite"),
        (["--alpha_search", "2", "4", "--resume_from_checkpoint", "x"], "cannot resume"),
        (["--alpha_search", "2", "4", "--validation_split", "", "--test_split", ""], "held-out"),
        (["--alpha_search", "2", "4", "--validation_split", "test"], "graded on the data it was made on"),
        (
            ["--alpha_search", "2", "4", "--validation_split", "validation", "--test_split", "validation"],
            "graded on the data it was made on",
        ),
    ],
)
def test_alpha_search_bad_input_is_one_line_before_any_work(extra, message, original_path, tmp_path, capsys):
    from hf_unlearn.cli.main import run_unlearning

    out = tmp_path / "bad"
    assert run_unlearning(["--method", "lotus", *extra, "--output_dir", str(out), *FAST]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_a_single_trainer_refuses_alpha_search(make_trainer):
    with pytest.raises(ValueError, match="search_alpha"):
        make_trainer("lotus", method_config={"alpha_search": [2.0, 4.0]})


def test_search_alpha_in_python_keeps_the_best_and_frees_the_rest(make_trainer, digits):
    from hf_unlearn import search_alpha

    built = []

    def factory(alpha):
        trainer = make_trainer(
            "lotus", method_config={"alpha": alpha}, max_steps=2, per_device_train_batch_size=32, learning_rate=1e-3
        )
        built.append(trainer)
        return trainer

    result = search_alpha(factory, [64.0, 1.0, 8.0], test_dataset=digits["test"])
    scores = [c["avg_gap_estimate_selection"] for c in result.candidates]
    assert result.best_index == scores.index(min(scores)) and result.trainer is built[result.best_index]
    assert result.trainer.method.config.alpha == result.best_alpha
    assert result.selection_split == "validation"  # the calibration split, not test
    assert result.results["unlearned"]["rf_jsd"] == result.candidates[result.best_index]["rf_jsd"]
    assert all(math.isfinite(s) for s in scores)


def test_benchmark_alpha_search_column(cache_root, tmp_path):
    from hf_unlearn.benchmark.protocol import run_benchmark

    data = run_benchmark(
        dataset="digits",
        families=["resnet"],
        seeds=[0],
        methods=["lotus"],
        method_epochs=1,
        recipe_overrides={"epochs": 2},
        name="alpha",
        results_dir=str(tmp_path),
        progress=lambda m: None,
        alpha_search=[2.0, 64.0],
    )
    assert not data["failures"], data["failures"]
    run = data["runs"][0]
    cands = run["alpha_search"]["candidates"]
    assert [c["alpha"] for c in cands] == [2.0, 64.0] and all("avg_gap" in c for c in cands)
    picked = next(c for c in cands if c["selected"])
    assert picked["avg_gap_estimate_selection"] == min(c["avg_gap_estimate_selection"] for c in cands)
    assert run["unlearned"]["avg_gap"] == pytest.approx(picked["avg_gap"])
    entry = data["summary"]["resnet"]["alpha_search"]["lotus"]
    best = min(c["avg_gap"] for c in cands)
    assert entry["per_seed"][0]["regret"] == pytest.approx(picked["avg_gap"] - best)
    assert entry["differs"] == int(picked["avg_gap"] != best) and entry["n"] == 1
    md = (tmp_path / "alpha.md").read_text()
    assert "| seed | picked α | Avg Gap (picked) | hindsight-best α | Avg Gap (best) | regret |" in md
    assert f"| 0 | {picked['alpha']:g} | {picked['avg_gap']:.4f} |" in md


def test_benchmark_searches_alpha_only_for_lotus_configs():
    from hf_unlearn import list_methods
    from hf_unlearn.benchmark.protocol import searches_alpha

    # SCRUB's config has an unrelated "alpha" (KL weight): it must not be swept
    assert [m for m in list_methods() if searches_alpha(m)] == ["lotus", "salun_lotus"]
