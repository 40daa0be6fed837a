"""The saving half of :class:`~hf_unlearn.UnlearningTrainer`: :meth:`SaveMixin.save_unlearned`, the Python
counterpart of the CLI's finished output directory (the same function writes both, ``hf_unlearn.publishing.saving``)."""

from __future__ import annotations

from . import hooks

__all__ = ["SaveMixin"]


class SaveMixin:
    """Mixed into :class:`~hf_unlearn.UnlearningTrainer` (it reads ``model``, ``last_unlearning_metrics``,
    ``original_model_info`` and :meth:`run_record` of the trainer)."""

    def save_unlearned(self, output_dir: str, selection, metrics: dict | None = None, **kwargs) -> str:
        """Write the unlearned model (safetensors), processor, model card, ``metrics.json``, the removal record,
        ``unlearning_config.json``, ``ledger.json`` and ``removed_ids.json`` into ``output_dir``, exactly as
        ``hf-unlearn unlearn`` does; returns ``output_dir``. ``selection`` is this run's
        :func:`~hf_unlearn.select_forget` result; ``metrics`` default to the last :meth:`evaluate_unlearning`.
        Keywords: ``original_model``, ``dataset_id``, ``chain`` (see :func:`hf_unlearn.publishing.saving.save_unlearned`)."""
        writer = hooks.output_writer()
        if writer is None:
            raise RuntimeError(
                "no output writer is registered (hf_unlearn.training.hooks.register_output_writer); import "
                "hf_unlearn to register hf_unlearn.publishing.saving.save_unlearned."
            )
        if not self.is_world_process_zero():
            return output_dir  # one process writes the output (the weights are the same on every rank)
        return writer(self, output_dir, selection, metrics, **kwargs)
