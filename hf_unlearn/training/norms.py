"""A one-row batch in training mode: BatchNorm normalises it with its running statistics.

BatchNorm in training mode normalises each channel with the statistics of the batch, and PyTorch refuses a batch that
gives one value per channel ("Expected more than 1 value per channel when training": one row reaching a 1x1 feature
map). A valid request hit it: 12 forget ids with LoTUS' defaults make 385 training rows, 3 x 128 + 1, so the last
batch of every epoch had one row and the run failed after the original had been evaluated. Any batch can have one row:
the last of an epoch (on each rank of a multi-process run), a forget set of one, or a method's subset of a batch
(UNSIR's retain rows).

The choice made here keeps every row of every epoch: a one-row forward in training mode runs the BatchNorm layers
as in evaluation (normalised with the running mean and variance, which that row does not update); everything else
(dropout, gradients, the optimiser step) is as for any batch. Rows are never dropped and batches keep their sizes.
Every forward of the library goes through :func:`single_row_safe` (``UnlearningTrainer.logits`` for the methods'
losses, preparation passes and teachers; ``hf_unlearn.data.builtin.train_classifier`` for originals and golds).
"""

from __future__ import annotations

import contextlib

from torch import nn

__all__ = ["single_row_safe"]


@contextlib.contextmanager
def single_row_safe(model: nn.Module, batch_size: int):
    """Within the block, a training-mode ``model`` given ``batch_size == 1`` normalises with running statistics."""
    if batch_size != 1 or not model.training:
        yield
        return
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training]
    for m in norms:
        m.train(False)
    try:
        yield
    finally:
        for m in norms:
            m.train(True)
