"""Where the ``datasets`` library may write during a run: never next to the user's data.

``datasets`` stores the result of every transform of a file-backed dataset (``map``, ``filter``, ``cast``,
``flatten_indices``, ``sort``, ``shuffle``, ``train_test_split``, ...) as ``cache-<fingerprint>.arrow`` *in the
directory of the source's own Arrow files* while caching is enabled: after a run on a ``save_to_disk`` directory, the
kept row indices of a chained request (which name the rows an earlier request removed) or the relabelled training
split lay in the user's dataset directory. The location of every one of those writes is decided in one place,
``Dataset._get_cache_file_path``: with caching disabled they go to the ``datasets`` session's temporary directory
instead, which ``datasets`` removes when the process exits. (``select`` writes nothing unless given a file name,
``add_column`` and ``cast_column`` stay in memory.)

:func:`dataset_writes_stay_temporary` disables caching for the enclosed block, whatever function inside it
transforms a dataset, and restores the caller's setting afterwards; it nests. The CLI wraps a whole run in it, and
the core functions that transform a user's dataset (``hf_unlearn.data.labels.align_labels``,
``hf_unlearn.publishing.provenance.exclude_earlier``) wrap themselves, for Python callers. :func:`builder_cache_dir` is where a
local dataset that ``datasets`` must first prepare (an image folder) is prepared: the same temporary directory, not
the HF datasets cache.
"""

from __future__ import annotations

import contextlib
import functools

__all__ = ["dataset_writes_stay_temporary", "writes_stay_temporary", "builder_cache_dir"]


@contextlib.contextmanager
def dataset_writes_stay_temporary():
    """Within the block, ``datasets`` writes transform results to its temporary directory, never beside the data."""
    import datasets

    was_enabled = datasets.is_caching_enabled()
    datasets.disable_caching()
    try:
        yield
    finally:
        if was_enabled:
            datasets.enable_caching()


def writes_stay_temporary(fn):
    """Decorator form of :func:`dataset_writes_stay_temporary`."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with dataset_writes_stay_temporary():
            return fn(*args, **kwargs)

    return wrapper


def builder_cache_dir() -> str:
    """The ``cache_dir`` for ``datasets.load_dataset`` on a local path: the ``datasets`` session's temporary
    directory (removed when the process exits), so preparing a local image folder leaves nothing in the HF cache."""
    from datasets.fingerprint import get_temporary_cache_files_directory

    return get_temporary_cache_files_directory()
