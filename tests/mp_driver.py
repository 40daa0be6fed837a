"""Test driver: ``scripts/unlearn.py`` plus a per-rank dump of the method's history (LoTUS temperatures, stops).

Launched by tests/test_multiprocess.py with ``accelerate launch``; writes ``$MP_HISTORY_DIR/rank<k>.json``. With
``MP_FSDP_ON_CPU=1`` (and an FSDP config) the accelerator runs FSDP2 on the CPU processes (scripts/fsdp_on_cpu.py) and
each rank also records, per parameter, its shape and the shape of the shard it holds when training begins. With
``MP_CRASH_AT_STEP=N`` every rank raises at the end of step N (before that step's checkpoint), as a crash would.
"""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from transformers import TrainerCallback  # noqa: E402

from hf_unlearn.cli.main import run_unlearning  # noqa: E402
from hf_unlearn.training import trainer as trainer_module  # noqa: E402
from hf_unlearn.training.trainer import UnlearningTrainer  # noqa: E402

SHARDS: dict = {}
SCORED: list = []  # (sharded?, parameter dtype) of every model the trainer scored while training
TRAINING: list = []  # non-empty between the Trainer's train begin and the end of train()

_train = UnlearningTrainer.train


class _Crash(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == int(os.environ["MP_CRASH_AT_STEP"]):
            raise RuntimeError(f"simulated crash at step {state.global_step}")


def train_and_dump(self, *args, **kwargs):
    if os.environ.get("MP_CRASH_AT_STEP"):
        self.add_callback(_Crash())
    output = _train(self, *args, **kwargs)
    TRAINING.clear()
    rank = self.accelerator.process_index
    with open(os.path.join(os.environ["MP_HISTORY_DIR"], f"rank{rank}.json"), "w") as f:
        json.dump(
            {
                "world_size": self.accelerator.num_processes,
                "history": getattr(self.method, "history", None),
                "finished": bool(self.method.finished),
                "global_step": self.state.global_step,
                "shards": SHARDS,
                "scored": SCORED,
                "mask": {
                    n: m.flatten().tolist() for n, m in (getattr(self.method, "trainable_mask", None) or {}).items()
                }
                if rank == 0 and os.environ.get("MP_DUMP_MASK") == "1"
                else None,
            },
            f,
        )
    return output


UnlearningTrainer.train = train_and_dump
_train_begin = trainer_module._MethodEvents.on_train_begin


def record_shards(self, args, state, control, **kwargs):
    from torch.distributed.tensor import DTensor

    TRAINING.append(True)
    for name, p in self.trainer.model.named_parameters():
        SHARDS[name] = [list(p.shape), list(p.to_local().shape) if isinstance(p, DTensor) else None]
    return _train_begin(self, args, state, control, **kwargs)


trainer_module._MethodEvents.on_train_begin = record_shards
_summarize = UnlearningTrainer.summarize


def record_scoring(self, model, *args, **kwargs):
    from torch.distributed.tensor import DTensor

    if TRAINING and model is not self.teacher:
        first = next(model.parameters())
        SCORED.append([isinstance(first, DTensor), str(first.dtype)])
    return _summarize(self, model, *args, **kwargs)


UnlearningTrainer.summarize = record_scoring

if os.environ.get("MP_FSDP_ON_CPU") == "1":
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
    from fsdp_on_cpu import install_fsdp_on_cpu  # noqa: E402

    install_fsdp_on_cpu()

if __name__ == "__main__":
    sys.exit(run_unlearning(sys.argv[1:]))
