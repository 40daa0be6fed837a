"""How published files name a model or dataset: a Hub id as it is, a local directory by its base name only.

A core module (no Hub or card imports): ``hf_unlearn.data.selection`` records dataset names with it, and the publishing layer
(``hf_unlearn.publishing.hub_guard``, ``hf_unlearn.publishing.output``, ``hf_unlearn.publishing.card``) re-uses it.
"""

from __future__ import annotations

import os

__all__ = ["public_name", "is_local_name"]


def is_local_name(name: str) -> bool:
    """True when ``name`` is a local path (absolute, ``~``/``.`` prefixed, an existing directory, or with ``..``)."""
    return os.path.isabs(name) or name.startswith(("~", ".")) or os.path.isdir(name) or ".." in name.split("/")


def public_name(name_or_path):
    """What a published file records for a model or dataset: a Hub id unchanged, a local directory (absolute,
    relative, `..`, `~`, symlinked) as its base name. None stays None."""
    if name_or_path is None:
        return None
    name = os.fspath(name_or_path) if isinstance(name_or_path, os.PathLike) else str(name_or_path)
    if name.startswith(("local-dir:", "file:")):  # timm / URL forms of a local directory
        name = name.split(":", 1)[1]
    if not is_local_name(name):
        return name
    base = os.path.basename(os.path.normpath(os.path.abspath(os.path.expanduser(name))))
    return base or "local"
