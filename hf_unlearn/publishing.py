"""Registers the publishing layer with the core's hooks (``hf_unlearn.hooks``); imported by ``hf_unlearn/__init__``.

The card renderer is :func:`hf_unlearn.card.render_model_card`, the publisher
:func:`hf_unlearn.hub.push_unlearned_to_hub`; both are imported only when first used.
"""

from __future__ import annotations

from .hooks import register_card_renderer, register_publisher

__all__ = ["render_card", "publish"]


def render_card(record):
    from .card import render_model_card

    return render_model_card(record)


def publish(output_dir, repo_id, **kwargs):
    from .hub import push_unlearned_to_hub

    return push_unlearned_to_hub(output_dir, repo_id, **kwargs)


register_card_renderer(render_card)
register_publisher(publish)
