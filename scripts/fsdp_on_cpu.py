"""Run ``scripts/unlearn.py`` under accelerate's FSDP2 on CPU processes, to test the FSDP code path without GPUs.

accelerate never runs FSDP on CPU: with ``--use_cpu`` it falls back to DDP (the run warns and records "DDP"). torch's
``fully_shard`` itself does run on CPU over gloo, so this driver gives the Trainer's accelerator the FSDP plugin that
``accelerate launch --config_file examples/accelerate/fsdp.yaml`` puts in the environment (``FSDP_*`` variables:
version, resharding, state-dict type, mixed precision), exactly as accelerate does on GPUs, and then runs the
ordinary command line. The parameters are then DTensor shards while the model trains; the run records "FSDP".

    CUDA_VISIBLE_DEVICES="" accelerate launch --config_file examples/accelerate/fsdp.yaml --num_processes 2 \\
        scripts/fsdp_on_cpu.py --use_cpu --method salun --output_dir runs/fsdp-cpu ...

Testing only (tests/test_launch_configs.py, scripts/engine_matrix.py): on GPUs launch scripts/unlearn.py itself.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def install_fsdp_on_cpu() -> None:
    """Make every Trainer's accelerator run FSDP with the plugin the launcher's environment describes."""
    from accelerate.state import PartialState
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin
    from transformers import Trainer

    if os.environ.get("ACCELERATE_USE_FSDP", "false").lower() != "true":
        raise SystemExit("fsdp_on_cpu.py: launch it with an FSDP config (examples/accelerate/fsdp.yaml).")
    create = Trainer.create_accelerator_and_postprocess

    def create_with_fsdp(self):
        create(self)
        state = self.accelerator.state
        if state.distributed_type == DistributedType.MULTI_CPU:  # accelerate's silent fallback
            plugin = FullyShardedDataParallelPlugin()  # from the FSDP_* variables the launcher set
            if self.accelerator.mixed_precision != "no":
                plugin.set_mixed_precision(self.accelerator.mixed_precision)
            state.fsdp_plugin = plugin
            state.distributed_type = PartialState._shared_state["distributed_type"] = DistributedType.FSDP
            self.is_fsdp_enabled = True

    Trainer.create_accelerator_and_postprocess = create_with_fsdp


if __name__ == "__main__":
    install_fsdp_on_cpu()
    from hf_unlearn.cli.main import run_unlearning

    sys.exit(run_unlearning(sys.argv[1:]))
