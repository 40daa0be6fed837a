"""The masking methods (SalUn, SalUn+LoTUS, DEL) are refused under every engine that partitions gradients, and every
method under FSDP1, however the engine was configured.

Under DeepSpeed ZeRO configured through an accelerate config (not ``--deepspeed``) no parameter has a ``.grad`` when the
mask is applied, so the masking did nothing; the guard read only ``args.deepspeed`` / ``args.fsdp``. The engine is now
read from the accelerate environment variables, the training arguments and the accelerator's state
(hf_unlearn.training.engines). FSDP2 keeps per-parameter DTensor shards, so the masks are cut to each shard and the
masking methods run (2 real processes: tests/test_launch_configs.py); FSDP1's flat parameters are refused for every
method. deepspeed is not installed here: the detection is tested with faked environments and stub accelerator states,
the command line's refusal through a real process with the launcher's variables set.
"""

from __future__ import annotations

import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
from accelerate.utils import DistributedType

import hf_unlearn
from hf_unlearn.training.engines import engine_refusal, sharded_engine

MASKING = [m for m in hf_unlearn.list_methods() if hf_unlearn.get_method_class(m).needs_full_gradients]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_masking_methods_declare_it():
    assert set(MASKING) == {"del", "salun", "salun_lotus"}


def _state(kind=DistributedType.NO, deepspeed_plugin=None, fsdp_plugin=None):
    return SimpleNamespace(
        state=SimpleNamespace(distributed_type=kind, deepspeed_plugin=deepspeed_plugin, fsdp_plugin=fsdp_plugin)
    )


DETECTION = [
    # (id, keyword arguments of sharded_engine, expected engine or None)
    ("env-deepspeed", dict(environ={"ACCELERATE_USE_DEEPSPEED": "true"}), "DeepSpeed"),
    ("env-deepspeed-capitalised", dict(environ={"ACCELERATE_USE_DEEPSPEED": "True"}), "DeepSpeed"),
    ("env-deepspeed-1", dict(environ={"ACCELERATE_USE_DEEPSPEED": "1"}), "DeepSpeed"),
    ("env-fsdp", dict(environ={"ACCELERATE_USE_FSDP": "true"}), "FSDP"),
    ("env-megatron", dict(environ={"ACCELERATE_USE_MEGATRON_LM": "true"}), "Megatron-LM"),
    ("env-false", dict(environ={"ACCELERATE_USE_DEEPSPEED": "false", "ACCELERATE_USE_FSDP": "0"}), None),
    ("env-empty", dict(environ={}), None),
    ("state-deepspeed", dict(accelerator=_state(DistributedType.DEEPSPEED), environ={}), "DeepSpeed"),
    ("state-fsdp", dict(accelerator=_state(DistributedType.FSDP), environ={}), "FSDP"),
    ("state-megatron", dict(accelerator=_state(DistributedType.MEGATRON_LM), environ={}), "Megatron-LM"),
    ("state-deepspeed-plugin", dict(accelerator=_state(deepspeed_plugin=object()), environ={}), "DeepSpeed"),
    ("state-fsdp-plugin", dict(accelerator=_state(fsdp_plugin=object()), environ={}), "FSDP"),
    ("state-ddp", dict(accelerator=_state(DistributedType.MULTI_CPU), environ={}), None),
    ("state-one-process", dict(accelerator=_state(DistributedType.NO), environ={}), None),
    ("args-deepspeed", dict(args=SimpleNamespace(deepspeed="ds.json", fsdp=""), environ={}), "DeepSpeed"),
    (
        "args-deepspeed-plugin",
        dict(args=SimpleNamespace(deepspeed=None, fsdp=None, deepspeed_plugin=object()), environ={}),
        "DeepSpeed",
    ),
    ("args-fsdp-list", dict(args=SimpleNamespace(deepspeed=None, fsdp=["full_shard"]), environ={}), "FSDP"),
    ("args-fsdp-off", dict(args=SimpleNamespace(deepspeed=None, fsdp=[]), environ={}), None),
    ("flags-before-arguments", dict(deepspeed=None, fsdp="full_shard auto_wrap", environ={}), "FSDP"),
]


@pytest.mark.parametrize("kwargs,expected", [c[1:] for c in DETECTION], ids=[c[0] for c in DETECTION])
def test_the_engine_is_detected_wherever_it_was_configured(kwargs, expected):
    found = sharded_engine(**kwargs)
    assert (found is None) if expected is None else (found or "").startswith(expected), found


REFUSALS = [
    # (id, sharded_engine keyword arguments, whether the method masks, expected refusal text or None)
    ("deepspeed-masks", dict(environ={"ACCELERATE_USE_DEEPSPEED": "true"}), True, "partitions gradients"),
    ("deepspeed-no-mask", dict(environ={"ACCELERATE_USE_DEEPSPEED": "true"}), False, None),
    ("megatron-masks", dict(environ={"ACCELERATE_USE_MEGATRON_LM": "true"}), True, "partitions gradients"),
    ("fsdp-env-default-v1", dict(environ={"ACCELERATE_USE_FSDP": "true"}), False, "FSDP version 1"),
    ("fsdp-env-v1-masks", dict(environ={"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "1"}), True, "FSDP version 1"),
    ("fsdp-env-v2-masks", dict(environ={"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "2"}), True, None),
    ("fsdp-env-v2-no-mask", dict(environ={"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "2"}), False, None),
    ("fsdp-flag-default-v2", dict(args=SimpleNamespace(deepspeed=None, fsdp="full_shard"), environ={}), True, None),
    (
        "fsdp-flag-config-v1",
        dict(args=SimpleNamespace(deepspeed=None, fsdp="full_shard", fsdp_config={"version": 1}), environ={}),
        True,
        "FSDP version 1",
    ),
    (
        "fsdp-flag-json-v1",
        dict(args=SimpleNamespace(deepspeed=None, fsdp="full_shard", fsdp_config='{"version": 1}'), environ={}),
        False,
        "FSDP version 1",
    ),
    (
        "fsdp-plugin-v1",
        dict(accelerator=_state(DistributedType.FSDP, fsdp_plugin=SimpleNamespace(fsdp_version=1)), environ={}),
        True,
        "FSDP version 1",
    ),
    (
        "fsdp-plugin-v2",
        dict(accelerator=_state(DistributedType.FSDP, fsdp_plugin=SimpleNamespace(fsdp_version=2)), environ={}),
        True,
        None,
    ),
    ("ddp", dict(accelerator=_state(DistributedType.MULTI_CPU), environ={}), True, None),
]


@pytest.mark.parametrize("kwargs,masks,expected", [c[1:] for c in REFUSALS], ids=[c[0] for c in REFUSALS])
def test_what_each_engine_refuses(kwargs, masks, expected):
    refusal = engine_refusal("salun" if masks else "finetune", masks, **kwargs)
    if expected is None:
        assert refusal is None, refusal
    else:
        assert expected in refusal and "\n" not in refusal, refusal
        assert ("fsdp_version: 2" in refusal) == ("FSDP version" in expected)  # each names its own fix


@pytest.mark.parametrize("method", MASKING)
@pytest.mark.parametrize(
    "variable,version,expected",
    [
        ("ACCELERATE_USE_DEEPSPEED", None, "masks .*ACCELERATE_USE_DEEPSPEED"),
        ("ACCELERATE_USE_FSDP", None, "FSDP version 1 .*ACCELERATE_USE_FSDP.*fsdp_version: 2"),
    ],
)
def test_python_users_get_the_refusal_from_the_environment(
    method, variable, version, expected, make_trainer, monkeypatch
):
    monkeypatch.setenv(variable, "true")
    monkeypatch.setattr(
        "transformers.TrainingArguments.__post_init__",  # deepspeed is not installed here
        _post_init_without(variable),
    )
    with pytest.raises(ValueError, match=expected):
        make_trainer(method)


def _post_init_without(variable):
    """TrainingArguments.__post_init__ with the variable hidden (it would import deepspeed), then restored."""
    from transformers import TrainingArguments

    original = TrainingArguments.__post_init__

    def post_init(self):
        value = os.environ.pop(variable)
        try:
            original(self)
        finally:
            os.environ[variable] = value

    return post_init


@pytest.mark.parametrize("method", MASKING)
def test_the_trainer_refuses_the_engine_its_accelerator_set_up(method, make_trainer, monkeypatch):
    """The accelerator's real state, after the Trainer built it: a stub reporting DeepSpeed in place of ours."""
    from transformers import Trainer

    create = Trainer.create_accelerator_and_postprocess

    class DeepSpeedState:
        def __init__(self, real):
            self._real = real

        distributed_type = DistributedType.DEEPSPEED

        def __getattr__(self, name):
            return getattr(self._real, name)

    def create_then_fake(self):
        create(self)
        self.accelerator.state = DeepSpeedState(self.accelerator.state)

    monkeypatch.setattr(Trainer, "create_accelerator_and_postprocess", create_then_fake)
    with pytest.raises(ValueError, match=f"method '{method}' masks .*DeepSpeed \\(the accelerator's"):
        make_trainer(method)
    make_trainer("finetune")  # a method without a mask is not refused


@pytest.mark.parametrize("method", ["finetune", "salun"])
def test_fsdp2_is_not_refused(method, monkeypatch):
    from hf_unlearn.cli.args import parse_args

    monkeypatch.setattr("transformers.TrainingArguments.__post_init__", _post_init_without("ACCELERATE_USE_FSDP"))
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    monkeypatch.setenv("FSDP_VERSION", "2")  # as accelerate launch sets it from examples/accelerate/fsdp.yaml
    parse_args(["--method", method, "--use_cpu", "--output_dir", "unused"])


CLI_CASES = [
    # (id, method, extra environment, extra flags, expected in the error line, the fix it names)
    (
        "salun-accelerate-deepspeed",
        "salun",
        {"ACCELERATE_USE_DEEPSPEED": "true"},
        [],
        "ACCELERATE_USE_DEEPSPEED",
        "DDP",
    ),
    (
        "del-accelerate-fsdp1",
        "del",
        {"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "1"},
        [],
        "ACCELERATE_USE_FSDP",
        "fsdp_version: 2",
    ),
    (
        "salun_lotus-deepspeed-flag",
        "salun_lotus",
        {},
        ["--deepspeed", "ds_config.json"],
        "DeepSpeed (--deepspeed)",
        "FSDP2",
    ),
]


@pytest.mark.parametrize("method,env,flags,expected,fix", [c[1:] for c in CLI_CASES], ids=[c[0] for c in CLI_CASES])
def test_the_command_line_refuses_before_any_work(method, env, flags, expected, fix, tmp_path):
    cache = tmp_path / "cache"
    full_env = dict(os.environ, HF_UNLEARN_CACHE=str(cache), **env)
    full_env["PYTHONPATH"] = os.pathsep.join([ROOT, full_env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "hf_unlearn",
            "unlearn",
            "--method",
            method,
            "--use_cpu",
            "--output_dir",
            str(tmp_path / "out"),
            *flags,
        ],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 2, done.stderr[-3000:]
    assert len(lines) == 1 and expected in lines[0] and fix in lines[0], done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists() and not cache.exists()  # nothing trained, nothing written
