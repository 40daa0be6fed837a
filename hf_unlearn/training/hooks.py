"""The core's two publishing hooks: how the trainer writes a model card and pushes to the Hub without importing
the publishing layer (``hf_unlearn.publishing.card``, ``hf_unlearn.publishing.hub``).

The publishing layer registers itself when the ``hf_unlearn`` package is imported (``hf_unlearn.publishing.register``), so
``UnlearningTrainer`` writes our card into each checkpoint and pushes with :func:`hf_unlearn.publishing.hub.push_unlearned_to_hub`.
With nothing registered the trainer writes no card and ``push_to_hub`` raises.

Layers. The core (``trainer``, ``methods/``, ``splits``, ``data``, ``ids_file``, ``evaluation``, ``streaming``,
``modeling``, ``arguments``, ``memory``, ``ranges``, ``metrics_table``, ``record``, ``versions``, ``naming``, ``hooks``,
and ``ledger``: the commitment / Merkle code, which imports nothing from the publishing side) imports nothing from the
publishing layer (``card*``, ``hub*``, ``output``, ``provenance``, ``push_*``, ``recompute``, ``publishing``) nor from
``cli*``, not even inside functions; those import the core.

* card renderer: ``render(record: hf_unlearn.records.run_record.RunRecord) -> card`` (anything with ``.save(path)``).
* publisher: ``publish(output_dir, repo_id, *, private, token, revision, commit_message) -> url``.
* output writer: ``write(trainer, output_dir, selection, metrics, **kwargs) -> output_dir`` (the finished
  directory of :meth:`UnlearningTrainer.save_unlearned`, the CLI's too).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = [
    "register_card_renderer",
    "register_publisher",
    "register_output_writer",
    "card_renderer",
    "publisher",
    "output_writer",
]

_hooks: dict[str, Callable[..., Any] | None] = {"card_renderer": None, "publisher": None, "output_writer": None}


def register_card_renderer(render: Callable[[Any], Any] | None) -> None:
    """Set the function that turns a run record into a model card (None: no card is written)."""
    _hooks["card_renderer"] = render


def register_publisher(publish: Callable[..., Any] | None) -> None:
    """Set the function ``UnlearningTrainer.push_to_hub`` uploads the output directory with."""
    _hooks["publisher"] = publish


def register_output_writer(write: Callable[..., Any] | None) -> None:
    """Set the function ``UnlearningTrainer.save_unlearned`` writes the finished output directory with."""
    _hooks["output_writer"] = write


def card_renderer() -> Callable[[Any], Any] | None:
    return _hooks["card_renderer"]


def publisher() -> Callable[..., Any] | None:
    return _hooks["publisher"]


def output_writer() -> Callable[..., Any] | None:
    return _hooks["output_writer"]
