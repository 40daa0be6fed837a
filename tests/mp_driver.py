"""Test driver: ``scripts/unlearn.py`` plus a per-rank dump of the method's history (LoTUS temperatures, stops).

Launched by tests/test_multiprocess.py with ``accelerate launch``; writes ``$MP_HISTORY_DIR/rank<k>.json``.
"""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from hf_unlearn.cli.main import run_unlearning  # noqa: E402
from hf_unlearn.training.trainer import UnlearningTrainer  # noqa: E402

_train = UnlearningTrainer.train


def train_and_dump(self, *args, **kwargs):
    output = _train(self, *args, **kwargs)
    rank = self.accelerator.process_index
    with open(os.path.join(os.environ["MP_HISTORY_DIR"], f"rank{rank}.json"), "w") as f:
        json.dump(
            {
                "world_size": self.accelerator.num_processes,
                "history": getattr(self.method, "history", None),
                "finished": bool(self.method.finished),
                "global_step": self.state.global_step,
            },
            f,
        )
    return output


UnlearningTrainer.train = train_and_dump

if __name__ == "__main__":
    sys.exit(run_unlearning(sys.argv[1:]))
