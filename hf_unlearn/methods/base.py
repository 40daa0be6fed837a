"""The unlearning-method interface and its registry.

A method is a small class in its own file under ``hf_unlearn/methods/``, registered by name with
:func:`register_method`. The :class:`~hf_unlearn.UnlearningTrainer` knows no method by name: it asks the
method which rows to train on, delegates the loss to it, and forwards the Trainer's callback events (epoch
begin, before/after each optimizer step) so that epoch-level logic (LoTUS' temperature), gradient masks
(SalUn, DEL) and weight edits (SSD, DEL's reset) live in the method, not in a side script.

Third parties register their own::

    from dataclasses import dataclass, field
    from hf_unlearn import UnlearningMethod, register_method

    @dataclass
    class MyConfig:
        strength: float = field(default=1.0, metadata={"help": "how hard to forget"})

    @register_method("mine")
    class Mine(UnlearningMethod):
        config_class = MyConfig
        def compute_loss(self, trainer, model, inputs):
            ...
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch

if TYPE_CHECKING:  # pragma: no cover
    from ..training.trainer import UnlearningTrainer

__all__ = [
    "UnlearningMethod",
    "MethodConfig",
    "MixtureSpec",
    "register_method",
    "get_method_class",
    "list_methods",
    "Paper",
]

_REGISTRY: dict[str, type[UnlearningMethod]] = {}


@dataclass(frozen=True)
class Paper:
    """A paper a method comes from (the way TRL trainers carry ``_paper``): rendered in cards, tables, ``--help``."""

    title: str
    arxiv_id: str
    first_author: str
    year: int
    venue: str = ""
    #: BibTeX entry type: "inproceedings" (venue = booktitle), "article" (venue = journal) or "misc" (venue = note).
    entry: str = "misc"

    @property
    def url(self) -> str:
        return f"https://arxiv.org/abs/{self.arxiv_id}"

    def bibtex(self) -> str:
        # Only facts checked against the arXiv id are written (first author, year, venue); the rest is "others".
        key = f"{self.first_author.split()[-1].lower()}{self.year}{self.arxiv_id.replace('.', '')}"
        lines = [
            f"@{self.entry}{{{key},",
            f"  title         = {{{self.title}}},",
            f"  author        = {{{self.first_author} and others}},",
            f"  year          = {{{self.year}}},",
        ]
        if self.venue:
            field = {"inproceedings": "booktitle", "article": "journal"}.get(self.entry, "note")
            lines.append(f"  {field:<13} = {{{self.venue}}},")
        lines += [
            f"  eprint        = {{{self.arxiv_id}}},",
            "  archivePrefix = {arXiv},",
            f"  url           = {{{self.url}}}",
            "}",
        ]
        return "\n".join(lines)


@dataclass
class MethodConfig:
    """Hyper-parameters of a method that has none of its own."""


@dataclass
class MixtureSpec:
    """Which rows make up the training mixture.

    ``retain_indices=None`` means the whole retain set. Each row carries a forget flag (1 forget, 0 retain).
    """

    include_forget: bool = True
    retain_indices: list[int] | None = None


class UnlearningMethod:
    """Base class of every unlearning method.

    Class attributes a method sets:

    * ``name``: the registry name (set by :func:`register_method`).
    * ``config_class``: a dataclass of the method's own hyper-parameters (each field with ``metadata={"help":
      ...}``); the CLI parses it with ``HfArgumentParser`` next to :class:`~hf_unlearn.UnlearningArguments`.
    * ``training_defaults``: ``TrainingArguments`` values this method uses unless the user sets them (its
      optimiser, learning rate, schedule, epochs, batch size as in the paper).
    * ``needs_teacher``: keep a frozen eval-mode copy of the original model as ``trainer.teacher``.
    * ``trains``: ``False`` for methods that only edit weights (SSD); the trainer then runs no optimiser step.
    * ``display_name`` / ``papers``: how cards, benchmark tables and ``--help`` name and cite the method
      (``papers`` empty: no paper of its own).
    * ``needs_full_gradients``: the method reads or edits whole gradients entry by entry; sharded engines are
      refused (hf_unlearn.training.engines).
    * ``decay_all_parameters``: apply ``weight_decay`` to every parameter, biases and norm weights included, as
      ``torch.optim.X(model.parameters(), weight_decay=...)`` in the reference code does; ``False`` keeps the
      Trainer's convention (biases and norms exempt).

    Hooks receive the trainer, which exposes the model, the teacher, the forget / retain / calibration
    splits, ``trainer.logits(model, pixel_values)``, ``trainer.accuracy(model, split)`` and the Trainer's
    ``log``. Methods store run state that must survive a checkpoint resume in :meth:`state_dict`.
    """

    name: ClassVar[str] = ""
    config_class: ClassVar[type] = MethodConfig
    training_defaults: ClassVar[dict[str, Any]] = {}
    needs_teacher: ClassVar[bool] = False
    trains: ClassVar[bool] = True
    display_name: ClassVar[str] = ""
    papers: ClassVar[tuple[Paper, ...]] = ()
    decay_all_parameters: ClassVar[bool] = False
    #: The method edits gradients entry by entry (a mask): engines that shard parameters and gradients (DeepSpeed
    #: ZeRO, FSDP, Megatron-LM, however configured) are refused before any work (hf_unlearn.training.engines).
    needs_full_gradients: ClassVar[bool] = False
    #: Set by the method to end the run before its next epoch (e.g. LoTUS' stopping rule).
    finished: bool = False

    def __init__(self, config: Any = None):
        if config is None:
            config = self.config_class()
        elif isinstance(config, dict):
            config = self.config_class(**config)
        elif not isinstance(config, self.config_class):
            raise TypeError(f"method '{self.name}' takes a {self.config_class.__name__}, got {type(config).__name__}.")
        from ..training.ranges import check_dataclass_ranges

        check_dataclass_ranges(config)  # declared ranges + finiteness, for Python users as for the CLI
        self.config = config
        self.check_config()  # the command line builds the method before any model loads: these fail first

    # ---- set-up -------------------------------------------------------------------------------------
    def check_config(self) -> None:
        """Raise a ``ValueError`` for a setting of ``self.config`` this method cannot run with that the declared
        ranges do not express (a choice among names, a combination). Called when the method is built, so the
        command line refuses it before any model is loaded or trained; checks that need the trainer go in
        :meth:`validate`."""

    def validate(self, trainer: UnlearningTrainer) -> None:
        """Raise a ``ValueError`` for settings this method cannot run with. Called before any work."""

    def mixture(self, trainer: UnlearningTrainer) -> MixtureSpec:
        """The rows to train on. Default: forget and retain sets, all rows."""
        return MixtureSpec()

    def optimizer_cls_and_kwargs(self, trainer: UnlearningTrainer) -> tuple[type, dict] | None:
        """An optimiser the ``TrainingArguments.optim`` names cannot express (e.g. plain Adam), or ``None``."""
        return None

    def prepare(self, trainer: UnlearningTrainer) -> None:
        """Run once before the first training step of a fresh run (not on resume): masks, weight edits."""

    # ---- training -------------------------------------------------------------------------------------
    def compute_loss(self, trainer: UnlearningTrainer, model, inputs: dict) -> torch.Tensor:
        """The batch-mean loss. ``inputs`` holds ``pixel_values``, ``labels``, ``forget_flag``, ``sample_index``."""
        raise NotImplementedError(f"method '{self.name}' trains but defines no compute_loss")

    def on_train_begin(self, trainer: UnlearningTrainer, state, control) -> None:
        """After the optimiser exists (and after a resume has restored it)."""

    def on_epoch_begin(self, trainer: UnlearningTrainer, state, control) -> None:
        """Before each epoch; set ``control.should_training_stop`` to stop before it runs."""

    def on_epoch_end(self, trainer: UnlearningTrainer, state, control) -> None:
        """After each epoch; the place for "evaluate, then maybe stop before the next epoch" rules
        (set ``self.finished = True`` and ``control.should_training_stop = True``)."""

    def on_pre_optimizer_step(self, trainer: UnlearningTrainer, model) -> None:
        """Gradients are complete (and clipped); e.g. mask them."""

    def on_optimizer_step(self, trainer: UnlearningTrainer, model) -> None:
        """Right after each optimiser step; e.g. restore masked-out weights."""

    def on_train_end(self, trainer: UnlearningTrainer, state, control) -> None:
        """After the last step."""

    # ---- state for checkpoints ------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Run state that a resumed run needs (tensors allowed). Saved in every checkpoint."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` when resuming."""

    # ---- description --------------------------------------------------------------------------------------
    def hyperparameters(self) -> dict:
        return dataclasses.asdict(self.config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config})"


def register_method(name: str, *, override: bool = False):
    """Class decorator registering an :class:`UnlearningMethod` under ``name``."""

    def decorator(cls: type[UnlearningMethod]) -> type[UnlearningMethod]:
        if not (isinstance(cls, type) and issubclass(cls, UnlearningMethod)):
            raise TypeError(f"@register_method('{name}') must decorate an UnlearningMethod subclass, got {cls!r}.")
        if not dataclasses.is_dataclass(cls.config_class):
            raise TypeError(f"{cls.__name__}.config_class must be a dataclass.")
        if name in _REGISTRY and _REGISTRY[name] is not cls and not override:
            raise ValueError(f"an unlearning method named '{name}' is already registered ({_REGISTRY[name]!r}).")
        cls.name = name
        if not cls.__dict__.get("display_name"):
            cls.display_name = name  # a subclass never inherits its parent's display name
        _REGISTRY[name] = cls
        return cls

    return decorator


def get_method_class(name: str) -> type[UnlearningMethod]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown unlearning method '{name}'; the registered methods are: {', '.join(list_methods())}."
        ) from None


def list_methods() -> list[str]:
    """Names of the registered unlearning methods."""
    return sorted(_REGISTRY)
