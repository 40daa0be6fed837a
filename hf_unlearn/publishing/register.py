"""Registers the publishing layer with the core's hooks (``hf_unlearn.training.hooks``); imported by ``hf_unlearn/__init__``.

The card renderer is :func:`hf_unlearn.publishing.card.render_model_card`, the publisher
:func:`hf_unlearn.publishing.hub.push_unlearned_to_hub`, the output writer :func:`hf_unlearn.publishing.saving.save_unlearned`; each is
imported only when first used.
"""

from __future__ import annotations

from ..training.hooks import register_card_renderer, register_output_writer, register_publisher

__all__ = ["render_card", "publish", "write_output"]


def render_card(record):
    from .card import render_model_card

    return render_model_card(record)


def publish(output_dir, repo_id, **kwargs):
    from .hub import push_unlearned_to_hub

    return push_unlearned_to_hub(output_dir, repo_id, **kwargs)


def write_output(trainer, output_dir, selection, metrics=None, **kwargs):
    from .saving import save_unlearned

    return save_unlearned(trainer, output_dir, selection, metrics, **kwargs)


register_card_renderer(render_card)
register_output_writer(write_output)
register_publisher(publish)
