"""The fast data path: ``datasets`` selections turned into tensors once, then batched by slicing.

Selection (which rows are forgotten) stays in ``datasets``; training and evaluation read tensors. A Trainer
run over ``Dataset.with_format("torch")`` was measured 4.6x slower than over pre-built tensors on this
project's default (NOTES.md), so a split whose transform is deterministic is preprocessed once into a
:class:`ImageSplit`; a split with a random (augmenting) transform stays lazy and is transformed per access.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import datasets
import torch
from torch.utils.data import Dataset as TorchDataset

from .images import ImageDataError, locate_bad_image
from .labels import check_integer_labels

__all__ = ["ImageSplit", "MixtureDataset", "to_image_split", "collate_rows"]

# Splits larger than this stay lazy (transformed per batch) instead of living in memory as float tensors.
MAX_MATERIALIZED_BYTES = 4 * 1024**3


class ImageSplit:
    """``pixel_values`` and ``labels`` of one split, either materialised tensors or a lazy transformed dataset."""

    def __init__(
        self,
        pixel_values: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        lazy: datasets.Dataset | None = None,
        label_column: str = "label",
        name: str = "",
    ):
        self.pixel_values, self.labels, self.lazy, self.label_column, self.name = (
            pixel_values,
            labels,
            lazy,
            label_column,
            name,
        )
        if lazy is not None and labels is None:
            self.labels = torch.as_tensor(lazy.with_format(None)[label_column], dtype=torch.long)

    @property
    def materialized(self) -> bool:
        return self.pixel_values is not None

    def __len__(self) -> int:
        return len(self.labels)

    def pixels(self, indices: Sequence[int] | torch.Tensor | slice) -> torch.Tensor:
        if self.materialized:
            return self.pixel_values[indices]
        if isinstance(indices, slice):
            indices = range(*indices.indices(len(self)))
        rows = [int(i) for i in indices]
        return _read_rows(self.lazy, rows, rows, self.name)["pixel_values"]

    def batches(self, batch_size: int, indices: Sequence[int] | None = None):
        """Yield ``(positions, pixel_values, labels)`` in order, ``batch_size`` rows at a time."""
        if indices is None:
            indices = range(len(self))
        if self.materialized and isinstance(indices, range) and indices.step == 1:
            # contiguous rows (evaluation passes): views, no gather copy
            for start in range(indices.start, indices.stop, batch_size):
                stop = min(start + batch_size, indices.stop)
                yield torch.arange(start, stop), self.pixel_values[start:stop], self.labels[start:stop]
            return
        idx = torch.as_tensor(indices, dtype=torch.long)
        for start in range(0, len(idx), batch_size):
            chunk = idx[start : start + batch_size]
            yield chunk, self.pixels(chunk), self.labels[chunk]

    def subset(self, indices: Sequence[int]) -> ImageSplit:
        idx = torch.as_tensor(list(indices), dtype=torch.long)
        if self.materialized:
            return ImageSplit(self.pixel_values[idx], self.labels[idx], label_column=self.label_column, name=self.name)
        return ImageSplit(
            lazy=self.lazy.select(idx.tolist()),
            labels=self.labels[idx],
            label_column=self.label_column,
            name=self.name,
        )


def to_image_split(
    dataset: datasets.Dataset | ImageSplit | None,
    transform: Callable[[dict], dict] | None,
    *,
    label_column: str = "label",
    deterministic: bool = True,
    name: str = "",
    batch_size: int = 512,
    budget=None,
    progress: bool = False,
) -> ImageSplit | None:
    """Turn a ``datasets.Dataset`` (raw images + labels) into an :class:`ImageSplit`.

    ``transform`` is a batch transform for ``Dataset.with_transform`` producing ``pixel_values`` (None when
    the dataset already yields them). With ``deterministic=True`` and a small enough split, the transform is
    applied once and the result kept as a tensor. "Small enough" is the shared
    :class:`~hf_unlearn.training.memory.MaterializationBudget` ``budget`` when given (the trainer passes one for all its
    splits), else 4 GB for this split alone. ``progress`` shows a tqdm bar while preprocessing.
    """
    if dataset is None or isinstance(dataset, ImageSplit):
        return dataset
    if label_column not in dataset.column_names:
        raise ValueError(
            f"the {name or 'given'} dataset has no label column '{label_column}' (columns: {dataset.column_names}); "
            "pass label_column / --label_column_name."
        )
    check_integer_labels(dataset, label_column, name)  # as_tensor(dtype=long) below would truncate 1.7 to 1
    view = dataset.with_transform(transform) if transform is not None else dataset.with_format("torch")
    labels = torch.as_tensor(dataset.with_format(None)[label_column], dtype=torch.long)
    if len(dataset) == 0:
        raise ValueError(f"the {name or 'given'} dataset is empty.")
    first = _read_rows(view, slice(0, 1), [0], name)
    if "pixel_values" not in first:
        raise ValueError(
            f"the {name or 'given'} dataset yields no 'pixel_values' (keys: {sorted(first)}); give the trainer an "
            "image_transform (or processing_class) that turns images into pixel_values."
        )
    row_shape = torch.as_tensor(first["pixel_values"][0]).shape
    nbytes = row_shape.numel() * 4 * len(dataset)
    if not deterministic:
        if budget is not None:
            budget.record_lazy(name, len(dataset))
        return ImageSplit(lazy=view, labels=labels, label_column=label_column, name=name)
    fits = budget.claim(name, nbytes, len(dataset)) if budget is not None else nbytes <= MAX_MATERIALIZED_BYTES
    if not fits:
        return ImageSplit(lazy=view, labels=labels, label_column=label_column, name=name)
    from tqdm.auto import tqdm

    # Filled in place: concatenating chunks needed twice the split's size at the peak.
    pixels = torch.empty((len(dataset), *row_shape), dtype=torch.float32)
    with tqdm(
        total=len(dataset), desc=f"preprocessing {name or 'split'}", unit="img", disable=not progress, leave=False
    ) as bar:
        for start in range(0, len(dataset), batch_size):
            stop = min(start + batch_size, len(dataset))
            chunk = _read_rows(view, slice(start, stop), range(start, stop), name)["pixel_values"]
            chunk = chunk if isinstance(chunk, torch.Tensor) else torch.as_tensor(chunk)
            pixels[start : start + len(chunk)] = chunk
            bar.update(len(chunk))
    return ImageSplit(pixels, labels, label_column=label_column, name=name)


def _read_rows(view: datasets.Dataset, key, positions: Sequence[int], name: str) -> dict:
    """``view[key]`` (decode + transform); a failing image becomes an :class:`ImageDataError` naming its row."""
    try:
        return view[key]
    except Exception as e:
        transform = (view.format.get("format_kwargs") or {}).get("transform")
        message = locate_bad_image(
            view,
            positions,
            name or "given",
            e,
            transform=transform,
            image_column=getattr(transform, "image_column", None),
        )
        if message is None:
            raise
        raise ImageDataError(message) from e


class MixtureDataset(TorchDataset):
    """The training mixture: forget rows (flag 1) and retain rows (flag 0), addressed by one index.

    Items are dicts ``pixel_values, labels, forget_flag, sample_index`` where ``sample_index`` is the row's
    position in its own split (forget or retain): ``(forget_flag, sample_index)`` names a row whatever the batch,
    so per-row state (the trainer's cached teacher logits, random labels) is looked up by it, never by the
    mixture's own layout.
    """

    def __init__(self, forget: ImageSplit | None, retain: ImageSplit, retain_indices: Sequence[int] | None = None):
        self.forget, self.retain = forget, retain
        n_f = len(forget) if forget is not None else 0
        r_idx = (
            torch.arange(len(retain)) if retain_indices is None else torch.as_tensor(retain_indices, dtype=torch.long)
        )
        self.source = torch.cat([torch.ones(n_f, dtype=torch.long), torch.zeros(len(r_idx), dtype=torch.long)])
        self.position = torch.cat([torch.arange(n_f), r_idx])

    def __len__(self) -> int:
        return len(self.source)

    def positions(self, flag: int) -> torch.Tensor:
        """Sorted, distinct positions (``sample_index``) of the forget (``flag`` 1) or retain (0) split's rows in
        the mixture."""
        return self.position[self.source == flag].unique()

    def __getitem__(self, i: int) -> dict:
        return self.__getitems__([i])[0]

    def __getitems__(self, indices: list[int]) -> list[dict]:
        # Batched fetch: one tensor gather per split instead of one per row.
        idx = torch.as_tensor(indices, dtype=torch.long)
        flags, pos = self.source[idx], self.position[idx]
        pixels = torch.empty(0)
        labels = torch.empty(len(idx), dtype=torch.long)
        parts = []
        for flag, split in ((1, self.forget), (0, self.retain)):
            sel = (flags == flag).nonzero(as_tuple=True)[0]
            if len(sel):
                parts.append((sel, split.pixels(pos[sel]), split.labels[pos[sel]]))
        if parts:
            shape = parts[0][1].shape[1:]
            pixels = torch.empty((len(idx), *shape), dtype=parts[0][1].dtype)
            for sel, px, lab in parts:
                pixels[sel] = px
                labels[sel] = lab
        return [_Batch(pixels, labels, flags, pos)]


class _Batch(dict):
    """A whole collated batch travelling through the DataLoader as a single 'row'."""

    def __init__(self, pixels, labels, flags, positions):
        super().__init__(pixel_values=pixels, labels=labels, forget_flag=flags, sample_index=positions)


def collate_rows(rows: list) -> dict:
    """Collate for :class:`MixtureDataset`: its ``__getitems__`` already returns one collated batch."""
    if len(rows) == 1 and isinstance(rows[0], _Batch):
        return dict(rows[0])
    if rows and isinstance(rows[0], _Batch):  # several pre-collated batches
        return {k: torch.cat([r[k] for r in rows]) for k in rows[0]}
    return torch.utils.data.default_collate(rows)
