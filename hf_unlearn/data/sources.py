"""Loading a dataset by its description (a Hub id, a saved dataset, an image folder, or the embedded digits).

Both the CLI's load stage and ``hf-unlearn verify --recompute`` (which reloads the data a run recorded) use it, so it
lives below both of them.
"""

from __future__ import annotations

import logging
import os

__all__ = ["DataSourceError", "load_dataset_source", "split_of"]

logger = logging.getLogger("hf_unlearn")


class DataSourceError(ValueError):
    """The dataset cannot be loaded as described; the message names the fix."""


def load_dataset_source(
    name: str | None, config: str | None = None, revision: str | None = None, *, train_split: str = "train"
):
    """``(DatasetDict, dataset id)`` to unlearn from: the embedded digits (``name`` None), a saved dataset, an image
    folder or a Hub dataset. Bad input raises :class:`DataSourceError` with the fix."""
    import datasets

    if name is None:
        from .builtin import DIGITS_DATASET_ID, load_digits_dataset

        return load_digits_dataset(), DIGITS_DATASET_ID
    from .scratch import builder_cache_dir

    try:
        if os.path.isdir(name) and (
            os.path.isfile(os.path.join(name, "dataset_dict.json"))
            or os.path.isfile(os.path.join(name, "dataset_info.json"))
        ):
            _refuse_empty_saved_splits(name, train_split)
            data = datasets.load_from_disk(name)
        elif os.path.isdir(name):
            # prepared in a temporary directory, not the HF datasets cache: a local dataset leaves no copy there
            data = datasets.load_dataset("imagefolder", data_dir=name, cache_dir=builder_cache_dir())
        else:
            data = datasets.load_dataset(name, config, revision=revision)
    except FileNotFoundError as e:
        raise DataSourceError(f"cannot load dataset '{name}' ({e}); check the Hub id or local path.") from e
    except OSError as e:
        import errno

        if e.errno not in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT):
            raise DataSourceError(
                f"cannot load dataset '{name}' ({type(e).__name__}: {str(e).splitlines()[0]})."
            ) from e
        from ..failures import describe_failure  # names the cache (HF_HOME, HF_DATASETS_CACHE) and its variable

        raise DataSourceError(f"cannot load dataset '{name}': {describe_failure(e)}") from e
    except Exception as e:  # datasets raises many types for a missing Hub dataset offline
        raise DataSourceError(f"cannot load dataset '{name}' ({type(e).__name__}: {str(e).splitlines()[0]}).") from e
    if isinstance(data, datasets.Dataset):
        data = datasets.DatasetDict({train_split: data})
    return data, name


def _refuse_empty_saved_splits(path: str, train_split: str) -> None:
    """A split saved with no rows cannot be loaded back (``datasets.load_from_disk`` fails with "IndexError: list
    index out of range"): name the split instead. An empty held-out split can be skipped; an empty train split
    leaves nothing to forget."""
    import json

    try:
        with open(os.path.join(path, "dataset_dict.json")) as f:
            splits = {s: os.path.join(path, s) for s in json.load(f).get("splits", [])}
    except (OSError, ValueError, AttributeError):
        splits = {train_split: path}  # a single saved Dataset
    for split, folder in splits.items():
        try:
            with open(os.path.join(folder, "state.json")) as f:
                empty = json.load(f).get("_data_files") == []
        except (OSError, ValueError, AttributeError):
            continue
        if empty:
            fix = (
                "a run forgets rows of the training split: save the dataset with its training rows"
                if split == train_split
                else f"remove the empty split from the saved dataset (or pass "
                f"--{'validation' if split == 'validation' else 'test'}_split naming another split)"
            )
            raise DataSourceError(f"the dataset at {path} is empty: its '{split}' split has no rows; {fix}.")


def split_of(data, name: str | None, what: str):
    """The split ``name`` of ``data``; None if no name. A missing train split is an error, a missing held-out split a
    warning (its metrics are skipped)."""
    if not name:
        return None
    if name not in data:
        if what == "train":
            raise DataSourceError(f"the dataset has no '{name}' split (splits: {list(data)}); pass --train_split.")
        logger.warning("no '%s' split (splits: %s): %s metrics that need it are skipped", name, list(data), what)
        return None
    return data[name]
