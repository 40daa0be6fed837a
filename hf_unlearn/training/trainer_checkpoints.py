"""Checkpoints of :class:`~hf_unlearn.UnlearningTrainer` that carry the unlearning method's run state.

:class:`CheckpointMixin` holds the trainer's save and resume of a checkpoint: the Trainer's files, then the card,
then the method state written last and atomically (so an interrupted save is not a checkpoint), and on resume the
method state read back, checked against this run and brought up to date with the checkpoint's epoch. It is separate
from ``trainer.py`` because it is one self-contained concern (the checkpoint format and its resume rules, with
:mod:`hf_unlearn.training.method_state`), which the trainer's construction and training loop do not need to know.
"""

from __future__ import annotations

import os

from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, rotate_checkpoints

from . import method_state

__all__ = ["CheckpointMixin"]


class CheckpointMixin:
    """Mixed into :class:`~hf_unlearn.UnlearningTrainer` before ``transformers.Trainer`` (it overrides the Trainer's
    ``_save_checkpoint`` and reads ``method``, ``removal_record``, ``args``, ``state`` and :meth:`_write_card`)."""

    def _save_checkpoint(self, model, trial):
        """The Trainer's checkpoint, then the card, then the method state, written last and atomically: a save
        that is interrupted leaves a folder without it, which resume refuses (and ``resume_from_checkpoint=True``
        skips). Older checkpoints are rotated out only once the new one is complete."""
        run_dir = self._get_output_dir(trial=trial)
        folder = os.path.join(run_dir, f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}")
        limit = self.args.save_total_limit
        self.args.save_total_limit = None  # the Trainer would delete older checkpoints before this one is complete
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self.args.save_total_limit = limit
        if self.args.should_save:
            os.makedirs(folder, exist_ok=True)
            self._write_card(folder)
            method_state.write_method_state(
                folder,
                {
                    "method": self.method.name,
                    "config": self.method.hyperparameters(),
                    "finished": bool(getattr(self.method, "finished", False)),
                    "state": self.method.state_dict(),
                    "epochs_ended": self._epochs_ended,
                    "removal_identity": method_state.removal_identity(self.removal_record),
                    "training": method_state.training_identity(self.args),
                },
            )
            rotate_checkpoints(
                output_dir=run_dir,
                save_total_limit=limit,
                best_model_checkpoint=self.state.best_model_checkpoint,
                use_mtime=True,
            )

    def _load_method_state(self, checkpoint: str) -> None:
        saved = method_state.read_method_state(checkpoint, self.method.name)
        method_state.check_resume_matches(
            checkpoint, saved, config=self.method.hyperparameters(), record=self.removal_record, args=self.args
        )
        self.method.finished = saved.get("finished", False)
        self.method.load_state_dict(saved["state"])
        self._epochs_ended = int(saved.get("epochs_ended", 0))

    def _replay_missed_epoch_end(self, checkpoint: str) -> None:
        """Bring the method up to date with a checkpoint before the Trainer continues from it.

        Fixes two resume bugs: (1) a step checkpoint taken at the last step of an epoch is written *before*
        ``on_epoch_end`` runs, so the end-of-epoch decision (LoTUS: the next temperature and the stop rule) was
        never taken on resume and the next epoch ran with the previous epoch's state; (2) a checkpoint whose
        method had already finished skipped training without loading the checkpoint's weights, returning the
        original model. Both need the checkpoint's weights in the model first.
        """
        from transformers import TrainerControl, TrainerState

        state_path = os.path.join(checkpoint, "trainer_state.json")
        if not os.path.isfile(state_path):
            return
        state = TrainerState.load_from_json(state_path)
        epoch = state.epoch or 0.0
        missed = abs(epoch - round(epoch)) < 1e-6 and round(epoch) > self._epochs_ended
        if not (self.method.finished or (missed and state.global_step < state.max_steps)):
            return
        self._load_from_checkpoint(checkpoint)  # the Trainer loads it again on resume: harmless
        self.state = state  # global_step etc. of the checkpoint (the Trainer re-reads it when it resumes)
        if missed and not self.method.finished and self.method.trains:
            control = TrainerControl()
            self.method.on_epoch_end(self, state, control)
            self._epochs_ended = round(epoch)
            if control.should_training_stop:
                self.method.finished = True
