"""Frozen teachers' logits on the training mixture, computed once and served by (forget flag, sample index).

LoTUS, SCRUB and Bad Teacher distil from frozen eval-mode teachers whose inputs, with a deterministic image
transform, are the same every epoch: running the teacher once per row instead of once per row per epoch takes a
forward pass off every step. :meth:`TeacherLogitsMixin.teacher_logits` is what the methods call; it serves rows
of a :class:`TeacherLogitCache` or, when the transform augments (or the method's flag is off), runs the teacher
on the batch itself.

Keys: every batch from :func:`~hf_unlearn.data.splits.collate_rows` carries ``forget_flag`` (1 forget, 0 retain) and
``sample_index`` (the row's position in its own split), so a row is ``(flag, index)`` whatever the batch. One table
per (teacher, flag) holds the teacher's logits on the mixture's rows of that split only (sized by the mixture, not
the retain set: ImageNet's LoTUS mixture is 0.3x the retain set), each filled by one in-order, eval-mode
:meth:`~hf_unlearn.UnlearningTrainer.predict_logits` pass on the first training step. A teacher declared to teach
forget rows only (Bad Teacher's incompetent one) never fills a retain table.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["TeacherLogitCache", "TeacherLogitsMixin", "FORGET", "RETAIN"]

FORGET, RETAIN = 1, 0


class TeacherLogitCache:
    """Per-(teacher, forget flag) tables of logits on the mixture's rows, with a row map from sample index."""

    def __init__(self):
        # (id(teacher), flag) -> (teacher, logits [rows, C], row map [len(split)] of table rows, -1 outside)
        self._tables: dict[tuple[int, int], tuple[nn.Module, torch.Tensor, torch.Tensor]] = {}

    def __len__(self) -> int:
        return len(self._tables)

    def clear(self) -> None:
        self._tables.clear()

    def holds(self, teacher: nn.Module, flag: int | None = None) -> bool:
        """Whether a table of ``teacher`` (for ``flag``, or any) has been filled."""
        return any(t is teacher and (flag is None or f == flag) for (_, f), (t, _, _) in self._tables.items())

    def table(self, trainer, teacher: nn.Module, flag: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logits, row_of)`` of ``teacher`` on the mixture's rows of the forget (1) or retain (0) split."""
        key = (id(teacher), flag)
        entry = self._tables.get(key)
        if entry is None or entry[0] is not teacher:
            split = trainer.forget_split if flag == FORGET else trainer.retain_split
            positions = trainer.train_dataset.positions(flag)
            if len(positions):
                logits = trainer.predict_logits(
                    teacher, split.subset(positions.tolist()), desc=f"teacher logits {split.name}"
                )
            else:
                logits = torch.zeros(0, trainer.num_labels, device=trainer.args.device)
            row_of = torch.full((len(split),), -1, dtype=torch.long)
            row_of[positions] = torch.arange(len(positions))
            entry = self._tables[key] = (teacher, logits, row_of.to(logits.device))
        return entry[1], entry[2]

    def lookup(
        self,
        trainer,
        teacher: nn.Module,
        flags: torch.Tensor,
        indices: torch.Tensor,
        sources: tuple[int, ...] = (FORGET, RETAIN),
    ) -> torch.Tensor:
        """Cached logits of ``teacher`` for the rows ``(flags[i], indices[i])`` (all in the mixture).

        The tables of every split in ``sources`` are filled on the first call, whatever the batch holds: in a
        multi-process run every rank then runs the same (gathering) passes at the same step.
        """
        tables = {flag: self.table(trainer, teacher, flag) for flag in sources}
        forget = flags.bool()
        present = [f for f, sel in ((FORGET, forget), (RETAIN, ~forget)) if bool(sel.any())]
        if any(f not in tables for f in present):
            raise ValueError(
                f"teacher logits were asked for {'forget' if FORGET in present else 'retain'} rows of a "
                f"teacher cached for sources {sources} only."
            )
        if not present:
            logits = tables[sources[0]][0]
            return logits.new_empty((0, logits.shape[-1]))
        if len(present) == 1:
            logits, row_of = tables[present[0]]
            return logits[row_of[indices.to(row_of.device)]]
        out = None
        for flag, sel in ((FORGET, forget), (RETAIN, ~forget)):
            logits, row_of = tables[flag]
            if out is None:
                out = logits.new_empty((len(flags), logits.shape[-1]))
            sel = sel.to(logits.device)
            out[sel] = logits[row_of[indices.to(row_of.device)[sel]]]
        return out


class TeacherLogitsMixin:
    """Mixed into :class:`~hf_unlearn.UnlearningTrainer` (it reads ``train_dataset``, the splits, ``args``,
    ``transform_is_deterministic``, ``logits`` and ``predict_logits``)."""

    @property
    def teacher_logit_cache(self) -> TeacherLogitCache:
        cache = self.__dict__.get("_teacher_logit_cache")
        if cache is None:
            cache = self.__dict__["_teacher_logit_cache"] = TeacherLogitCache()
        return cache

    def can_cache_teacher_logits(self) -> bool:
        """Teacher logits are cached only when every epoch feeds the teacher the same pixels."""
        return bool(self.transform_is_deterministic)

    def teacher_logits(
        self,
        teacher: nn.Module,
        inputs: dict,
        rows: torch.Tensor | None = None,
        *,
        cache: bool = True,
        sources: tuple[int, ...] = (FORGET, RETAIN),
    ) -> torch.Tensor:
        """Float logits of the frozen, eval-mode ``teacher`` on the batch ``inputs`` (only the rows where the
        boolean mask ``rows`` is true, when given), without gradients.

        With ``cache`` and a deterministic transform they come from the trainer's :class:`TeacherLogitCache`,
        whose tables for the splits in ``sources`` (the rows this teacher ever teaches: ``(FORGET,)``,
        ``(RETAIN,)`` or both) are filled by the first call; otherwise the teacher runs on the batch. Both give the
        teacher's eval-mode logits of the same pixels (up to float rounding of batch composition). Call it on
        every step, even when ``rows`` selects nothing: the first call must happen at the same step on every rank.
        """
        if cache and self.can_cache_teacher_logits():
            flags, indices = inputs["forget_flag"], inputs["sample_index"]
            if rows is not None:
                flags, indices = flags[rows], indices[rows]
            return self.teacher_logit_cache.lookup(self, teacher, flags, indices, sources)
        pixels = inputs["pixel_values"] if rows is None else inputs["pixel_values"][rows]
        if len(pixels) == 0:
            return torch.zeros(0, self.num_labels, device=pixels.device)
        with torch.no_grad():
            return self.logits(teacher, pixels).float()
