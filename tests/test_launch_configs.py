"""Issue 21: every shipped launch config that can run on a CPU machine starts 2 real processes and records its engine.

cpu.yaml is launched by tests/test_multiprocess.py (2 processes, LoTUS, metrics equal to one process). Here: the
multi-node config as two "machines" on localhost, and the DeepSpeed ZeRO-2 / ZeRO-3 configs, which need deepspeed
(a source-only package whose build takes ~6 minutes: CI does not install it, so those cases are skipped with the
reason). ddp.yaml and fsdp.yaml are GPU-only (scripts/gpu_check.py); fsdp.yaml on CPU falls back to DDP, which is
warned and recorded (test_fsdp_fallback_is_warned_and_recorded). fsdp.yaml's FSDP2 plugin itself is run for real on 2
CPU processes through scripts/fsdp_on_cpu.py (the test_fsdp2_* tests). Every rank dumps
the world size it saw (tests/mp_driver.py); the output's metrics.json must name the engine that ran.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from accelerate.utils import DistributedType
from test_multiprocess import ROOT, free_port

sys.path.insert(0, os.path.join(ROOT, "scripts"))
from engine_matrix import driver_command  # noqa: E402  (the engine matrix launches the same way)

CONFIGS = os.path.join(ROOT, "examples", "accelerate")
HAS_DEEPSPEED = importlib.util.find_spec("deepspeed") is not None
NO_DEEPSPEED = "deepspeed is not installed (pip install 'hf-unlearn[deepspeed]'; source-only, ~6 min build)"


def _launch(config, tmp_path, method, extra_launch=(), port=None, extra_env=None, flags=()):
    hist = tmp_path / "hist"
    hist.mkdir(parents=True, exist_ok=True)
    cmd, env = driver_command(
        config,
        method,
        tmp_path / "out",
        hist,
        launch=extra_launch,
        flags=("--max_steps", "2", *flags),
        env={"OMP_NUM_THREADS": "1", **(extra_env or {})},
        port=port,
    )
    return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _check(procs, tmp_path, engine_name):
    for proc in procs:
        _, err = proc.communicate(timeout=580)
        assert proc.returncode == 0, err[-4000:]
    dumps = [json.loads(p.read_text()) for p in sorted((tmp_path / "hist").iterdir())]
    assert [d["world_size"] for d in dumps] == [2, 2]  # two processes really ran, in one group
    engine = json.loads((tmp_path / "out" / "metrics.json").read_text())["run"]["engine"]
    assert engine["name"] == engine_name and engine["world_size"] == 2 and engine["requested"] is None, engine
    return dumps, engine


def test_multinode_config_runs_two_machines_on_localhost(original_path, tmp_path):
    port = free_port()
    procs = [
        _launch("multinode.yaml", tmp_path, "finetune", ("--machine_rank", str(rank)), port=port) for rank in (0, 1)
    ]
    _check(procs, tmp_path, "DDP")


@pytest.mark.skipif(not HAS_DEEPSPEED, reason=NO_DEEPSPEED)
@pytest.mark.parametrize("stage", [2, 3])
def test_deepspeed_configs_run_on_cpu(stage, original_path, tmp_path):
    # LoTUS: a teacher (its own whole module, never partitioned) and a decision from the model's accuracy
    _check([_launch(f"deepspeed_zero{stage}.yaml", tmp_path, "lotus")], tmp_path, f"DeepSpeed ZeRO-{stage}")


def test_fsdp2_shards_masks_gathers_and_resumes(original_path, tmp_path):
    """fsdp.yaml as it ships (FSDP2, full shard, bf16), run for real on 2 CPU processes with SalUn: every parameter is
    a DTensor holding its share of the rows while the model trains, the saliency mask is cut to each rank's shard,
    every entry outside the mask stays bit-identical to the original, and the saved model is the whole trained model.
    A run that crashes after a checkpoint and is resumed with --resume_from_checkpoint ends with exactly the weights
    of the run that never stopped (the mask and the RNG travel in the checkpoint, the weights as a whole state dict)."""
    from safetensors.torch import load_file

    flags = (
        "--max_steps",
        "4",
        "--save_strategy",
        "steps",
        "--save_steps",
        "2",
        "--per_device_train_batch_size",
        "128",
    )
    launch = dict(extra_launch=("--num_processes", "2"), flags=flags)
    fsdp = {"MP_FSDP_ON_CPU": "1"}
    reference = _launch("fsdp.yaml", tmp_path / "ref", "salun", extra_env={**fsdp, "MP_DUMP_MASK": "1"}, **launch)
    crashed = _launch("fsdp.yaml", tmp_path / "run", "salun", extra_env={**fsdp, "MP_CRASH_AT_STEP": "3"}, **launch)
    _, err = crashed.communicate(timeout=580)
    assert crashed.returncode != 0 and "simulated crash at step 3" in err, err[-3000:]
    dumps, engine = _check([reference], tmp_path / "ref", "FSDP")
    assert engine["mixed_precision"] == "bf16"
    shards = [d["shards"] for d in dumps]
    assert shards[0] and shards[0].keys() == shards[1].keys()
    for name, (shape, local) in shards[0].items():
        other = shards[1][name][1]
        assert local is not None and other is not None, name  # a DTensor shard on both ranks
        assert local[0] + other[0] == shape[0] and local[1:] == other[1:] == shape[1:], (name, shape, local, other)
    mask = dumps[0]["mask"]
    saved = load_file(str(tmp_path / "ref" / "out" / "model.safetensors"))
    original = load_file(os.path.join(original_path, "model.safetensors"))
    assert mask.keys() <= saved.keys()
    moved = 0
    for name, flat in mask.items():
        trainable = torch.tensor(flat, dtype=torch.bool)
        after, before = saved[name].flatten(), original[name].flatten()
        assert torch.equal(after[~trainable], before[~trainable]), name  # bit-identical outside the mask
        moved += int((after[trainable] != before[trainable]).sum())
    assert moved > 0.5 * sum(sum(f) for f in mask.values())  # most masked entries trained (measured: 99 %)

    out = tmp_path / "run" / "out"
    assert (out / "checkpoint-2").is_dir() and not (out / "model.safetensors").exists()
    resumed = _launch(
        "fsdp.yaml",
        tmp_path / "run",
        "salun",
        extra_env=fsdp,
        extra_launch=launch["extra_launch"],
        flags=(*flags, "--resume_from_checkpoint", str(out / "checkpoint-2")),
    )
    _, err = resumed.communicate(timeout=580)
    assert resumed.returncode == 0, err[-4000:]
    got = load_file(str(out / "model.safetensors"))
    assert saved.keys() == got.keys() and all(torch.equal(saved[k], got[k]) for k in saved)
    engine = json.loads((out / "metrics.json").read_text())["run"]["engine"]
    assert engine["name"] == "FSDP" and engine["world_size"] == 2


@pytest.mark.parametrize("precision", ["no", "bf16"])
def test_fsdp2_scores_decisions_in_lockstep_and_in_float32(precision, tmp_path):
    """LoTUS reads the model's forget accuracy at every epoch end, while the model is sharded. In float32 the sharded
    model scores it: with 127 forget rows split 64 / 63 and evaluation batches of 1 one process makes one forward
    more, and every FSDP2 forward is a collective, so the other answers it on a filler row (before: the run aborted
    in gloo). In bf16 (fsdp.yaml as shipped) the decision is scored in float32 by the whole model gathered for it,
    never by the bf16 shards."""
    flags = (
        "--forget_classes",
        "1",
        "--per_device_eval_batch_size",
        "1",
        "--per_device_train_batch_size",
        "128",
        "--max_steps",
        "-1",
        "--num_train_epochs",
        "2",
    )
    proc = _launch(
        "fsdp.yaml",
        tmp_path,
        "lotus",
        ("--num_processes", "2", "--mixed_precision", precision),
        extra_env={"MP_FSDP_ON_CPU": "1"},
        flags=flags,
    )
    dumps, engine = _check([proc], tmp_path, "FSDP")
    assert engine["mixed_precision"] == precision
    assert [len(d["history"]) for d in dumps] == [2, 2], dumps  # an epoch-end decision per epoch on each rank
    assert dumps[0]["history"] == dumps[1]["history"]
    scored = [tuple(s) for d in dumps for s in d["scored"]]
    assert scored, "no decision was scored while training"
    expected = {(True, "torch.float32")} if precision == "no" else {(False, "torch.float32")}
    assert set(scored) == expected, scored


def test_every_config_says_what_it_needs_and_how_to_launch_it():
    names = sorted(os.listdir(CONFIGS))
    assert names == [
        "cpu.yaml",
        "ddp.yaml",
        "deepspeed_zero2.yaml",
        "deepspeed_zero3.yaml",
        "fsdp.yaml",
        "multinode.yaml",
    ]
    for name in names:
        header = open(os.path.join(CONFIGS, name)).read().split("compute_environment")[0]
        assert "Needs:" in header and f"accelerate launch --config_file examples/accelerate/{name}" in header, name
        assert ("GPU-only" in header) == (name in ("ddp.yaml", "fsdp.yaml")), name


def test_fsdp_fallback_is_warned_and_recorded(monkeypatch):
    """accelerate runs FSDP as DDP on CPU (--use_cpu) without a word: the run says so and records both."""
    from hf_unlearn.training.engines import describe_engine, engine_fallback_warning, engine_of

    accelerator = SimpleNamespace(
        state=SimpleNamespace(distributed_type=DistributedType.MULTI_CPU, deepspeed_plugin=None, fsdp_plugin=None),
        num_processes=2,
        mixed_precision="bf16",
    )
    args = SimpleNamespace(deepspeed=None, fsdp=None)
    engine = engine_of(accelerator, args)
    assert engine == {
        "name": "DDP",
        "distributed_type": "MULTI_CPU",
        "zero_stage": None,
        "world_size": 2,
        "mixed_precision": "bf16",
        "requested": None,
    }
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")  # what accelerate launch sets from fsdp.yaml
    engine = engine_of(accelerator, args)
    assert engine["name"] == "DDP" and engine["requested"] == "FSDP"
    warning = engine_fallback_warning(engine)
    assert "\n" not in warning and "FSDP" in warning and "DDP" in warning
    assert "FSDP was configured but did not run" in describe_engine(engine)


def test_weights_not_whole_on_this_process_are_refused_before_any_work(make_trainer, monkeypatch):
    """Rank-0-only loading (fsdp_cpu_ram_efficient_loading) leaves meta tensors on the other ranks: a teacher copied
    from them, a mask or an accuracy would be meaningless, so the trainer refuses with the setting to change."""
    import hf_unlearn.training.trainer as trainer_module
    from hf_unlearn.training.engines import weights_not_local

    assert weights_not_local(torch.nn.Linear(2, 2)) is None
    assert "fsdp_cpu_ram_efficient_loading: false" in weights_not_local(torch.nn.Linear(2, 2, device="meta"))
    real_init = trainer_module.UnlearningTrainer.__init__

    def init_with_meta_weights(self, model, *a, **k):
        name, first = next(model.named_parameters())
        module_name, _, attr = name.rpartition(".")
        setattr(model.get_submodule(module_name), attr, torch.nn.Parameter(torch.empty(first.shape, device="meta")))
        real_init(self, model, *a, **k)

    monkeypatch.setattr(trainer_module.UnlearningTrainer, "__init__", init_with_meta_weights)
    with pytest.raises(ValueError, match="meta tensors on this rank.*fsdp_cpu_ram_efficient_loading: false"):
        make_trainer("lotus")


def test_accelerate_can_shard_image_classifiers(original_path, vit_original_path):
    """accelerate's FSDP2 preparation shards get_input_embeddings() as its own unit: a ResNet raises
    NotImplementedError there and a ViT's patch embeddings are already inside a sharded ViTEmbeddings (both found by
    running fsdp.yaml's plugin). While accelerate shards, the call answers None; afterwards the model is as it was."""
    from transformers import AutoModelForImageClassification

    from hf_unlearn.training.fsdp import accelerate_can_shard, norms_in_float32

    resnet = AutoModelForImageClassification.from_pretrained(original_path)
    vit = AutoModelForImageClassification.from_pretrained(vit_original_path)
    embeddings = vit.get_input_embeddings()
    for model in (resnet, vit):
        with accelerate_can_shard(model):
            assert model.get_input_embeddings() is None
        assert "get_input_embeddings" not in vars(model)  # the instance is as it was
    with pytest.raises(NotImplementedError):
        resnet.get_input_embeddings()
    assert vit.get_input_embeddings() is embeddings
    for policy in (None, SimpleNamespace(param_dtype=None), SimpleNamespace(param_dtype=torch.float32)):
        plugin = SimpleNamespace(mixed_precision_policy=policy)
        assert norms_in_float32(resnet, SimpleNamespace(state=SimpleNamespace(fsdp_plugin=plugin))) == 0
