"""SalUn: saliency-masked unlearning (Fan et al., ICLR 2024), with Random Labeling or with LoTUS.

The saliency mask marks the weight entries the forget set depends on most: with the model in eval mode,
gradients of ``-CE`` (batch mean) are summed over the forget batches and the top ``mask_fraction`` of all
entries by ``|Σ g|`` (one global ranking) may train; every other entry stays bit-identical to the original.
``salun`` trains with Random Labeling (forget rows relabelled to a random other class, retain rows with their
labels), ``salun_lotus`` with the LoTUS loss and temperature schedule.

Departures from the reference code (SPEC §3.8): default ``mask_fraction`` 0.5 (the SalUn paper's; the LoTUS
code uses 0.1); masked-out entries really stay fixed (the reference only masks the gradient, so SGD's weight
decay and AdamW's decoupled decay still move them); for ``salun`` the mask applies to every update (the
reference leaves its retain "repair" pass unmasked; SalUn masks the whole update); parameters without a
gradient get an all-zero mask (the reference crashes on them); ``salun_lotus`` takes LoTUS' full config
(``alpha`` 2 and ``class_unlearning`` as given, where the reference forces ``class_unlearning=False``); no
gradient clipping by default (``max_grad_norm=0``), as in the reference. Every process computes the mask over
the full forget set, so all ranks agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ._common import SGD_BASELINE_DEFAULTS
from ._masking import MaskedUpdateMixin, mask_summary, score_or_never, summed_gradients, top_fraction_mask
from ._papers import LOTUS, SALUN
from .base import register_method
from .lotus import Lotus, LotusConfig
from .random_label import RandomLabel

_MASK_FRACTION_HELP = (
    "SalUn: fraction of all weight entries (ranked globally by |sum of forget-set gradients|) "
    "that are updated; the rest stay exactly at their original values. Paper default 0.5."
)


@dataclass
class SalUnConfig:
    mask_fraction: float = field(default=0.5, metadata={"help": _MASK_FRACTION_HELP})
    # Meaningful ranges, checked (with finiteness) before anything loads: hf_unlearn.training.ranges.
    ranges = {"mask_fraction": "(0, 1]"}


@dataclass
class SalUnLotusConfig(LotusConfig):
    mask_fraction: float = field(default=0.5, metadata={"help": _MASK_FRACTION_HELP})
    ranges = {"mask_fraction": "(0, 1]"}  # plus LotusConfig.ranges (inherited along the MRO)


class SaliencyMaskMixin(MaskedUpdateMixin):
    """The SalUn part shared by both registered methods: compute the saliency mask, then train through it."""

    def validate(self, trainer) -> None:
        f = self.config.mask_fraction
        if not 0.0 < f <= 1.0:
            raise ValueError(f"{self.name} mask_fraction must be in (0, 1], got {f}.")
        super().validate(trainer)

    def prepare(self, trainer) -> None:
        model = trainer.model
        grads = summed_gradients(
            trainer, model, trainer.forget_split, trainer.args.per_device_train_batch_size, sign=-1.0
        )
        scores = score_or_never(model, {n: (None if g is None else g.abs()) for n, g in grads.items()})
        self.trainable_mask = top_fraction_mask(scores, self.config.mask_fraction)
        selected, total = mask_summary(self.trainable_mask)
        trainer.log({"salun_mask_entries": float(selected), "salun_mask_fraction": selected / max(total, 1)})
        super().prepare(trainer)


_MASKED_TRAINING = {"max_grad_norm": 0.0}


@register_method("salun")
class SalUn(SaliencyMaskMixin, RandomLabel):
    """SalUn with Random Labeling (the SalUn paper's main variant)."""

    config_class = SalUnConfig
    display_name = "SalUn"
    papers = (SALUN,)
    training_defaults = {**SGD_BASELINE_DEFAULTS, **_MASKED_TRAINING}


@register_method("salun_lotus")
class SalUnLotus(SaliencyMaskMixin, Lotus):
    """LoTUS trained through a SalUn saliency mask (the LoTUS paper's "SalUn + LoTUS" row)."""

    config_class = SalUnLotusConfig
    display_name = "SalUn + LoTUS"
    papers = (SALUN, LOTUS)
    training_defaults = {**Lotus.training_defaults, **_MASKED_TRAINING}
