"""Forget / retain sets as ``datasets`` filters, with a record of exactly what was removed.

A deletion request names samples (by id, by class, by a rule). :func:`select_forget` turns it into two
``datasets.Dataset`` objects built with :meth:`datasets.Dataset.filter` -- disjoint, covering the training
set exactly -- and a :class:`RemovalRecord` (counts, rule, fingerprints and a salted Merkle commitment to the
removed ids, :mod:`hf_unlearn.records.ledger`) that ends up in the model card without re-publishing the ids themselves.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..records.naming import public_name
from .ids_file import read_ids_file  # noqa: F401  (moved; re-exported here)

__all__ = ["ForgetSplit", "RemovalRecord", "commitment", "select_forget", "read_ids_file", "FORGET_FLAG_COLUMN"]

#: Per-row flag (1 = forget, 0 = retain) that the trainer adds to its training mixture.
FORGET_FLAG_COLUMN = "forget_flag"

_COMMITMENT_SCHEME = "sha256 of '\\n'.join(str(i) for i in sorted(ids)) encoded as UTF-8"


def commitment(ids: Iterable[Any]) -> str:
    """Unsalted SHA-256 over a set of sample ids (the commitment of hf-unlearn before the salted Merkle tree).

    Kept for reading older cards only: for small integer ids it can be brute-forced. New records commit with
    :func:`hf_unlearn.records.merkle.commit_ids`. Ids are sorted in their own type (numbers numerically, strings
    lexicographically).
    """
    ordered = sorted(ids)
    return hashlib.sha256("\n".join(str(i) for i in ordered).encode("utf-8")).hexdigest()


@dataclass
class RemovalRecord:
    """What was removed, in a form that can be published (no raw ids)."""

    dataset: dict
    selection: dict
    id_column: str | None
    label_column: str
    num_removed: int
    num_retained: int
    per_class_counts: dict
    forget_fingerprint: str
    retain_fingerprint: str
    commitment: dict = field(default_factory=dict)
    #: ids rule only: ``{"num_ids": N, "histogram": {rows_matched: number_of_ids}}`` (an id column need not be
    #: unique: every row an id matches is forgotten). Counts only, never the ids.
    rows_per_id: dict | None = None
    #: How the dataset's labels were aligned with the model's ``id2label`` before selection (None: untouched).
    label_alignment: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self, path: str) -> None:
        with open(path, "w") as f:
            json.dump(self.to_dict(), f, indent=2, sort_keys=False)


@dataclass
class ForgetSplit:
    """The result of :func:`select_forget`."""

    forget: datasets.Dataset
    retain: datasets.Dataset
    record: RemovalRecord
    #: The removed ids, each once, sorted (the order :func:`commitment` uses): with the ids rule, the requested
    #: ids themselves (however many rows each matched); otherwise the id-column values of the forgotten rows,
    #: or their row indices when there is no id column.
    removed_ids: list = field(repr=False, default_factory=list)
    #: {id: 32-byte salt} of the record's Merkle commitment (hf_unlearn.records.ledger); private, like ``removed_ids``.
    salts: dict = field(repr=False, default_factory=dict)

    def __iter__(self):  # ``forget, retain, record = select_forget(...)``
        return iter((self.forget, self.retain, self.record))


def _rule(ids, indices, classes, fraction_per_class, predicate, mode, seed, id_column) -> tuple[str, str, dict]:
    given = {
        "ids": ids is not None,
        "indices": indices is not None,
        "classes": classes is not None,
        "fraction_per_class": fraction_per_class is not None,
        "predicate": predicate is not None,
    }
    chosen = [k for k, v in given.items() if v]
    if len(chosen) != 1:
        raise ValueError(
            f"select_forget needs exactly one selection rule, got {chosen or 'none'}: pass one of "
            "ids=, indices=, classes=, fraction_per_class= or predicate=."
        )
    rule = chosen[0]
    if rule == "ids":
        odd = [v for v in ids if isinstance(v, bool) or not isinstance(v, (str, int))]
        if odd:
            raise ValueError(
                f"ids must be strings or integers, got {odd[0]!r} ({type(odd[0]).__name__}); "
                "pass a flat list of the id column's values."
            )
        # "rows of": an id column need not be unique, and every row an id names is forgotten
        return rule, f"the rows of {len(set(ids))} ids in column '{id_column}'", {"count": len(set(ids))}
    if rule == "indices":
        return rule, f"{len(set(indices))} samples named by row index", {"count": len(set(indices))}
    if rule == "classes":
        return rule, f"every sample of class(es) {sorted(classes)} (class unlearning)", {"classes": sorted(classes)}
    if rule == "fraction_per_class":
        if mode not in ("random", "first"):
            raise ValueError(f"fraction mode must be 'random' or 'first', got {mode!r}.")
        how = f"seeded random (seed {seed})" if mode == "random" else "the first rows of each class in dataset order"
        return (
            rule,
            f"{fraction_per_class:.0%} of each class, {how}",
            {"fraction": fraction_per_class, "mode": mode, "seed": seed if mode == "random" else None},
        )
    name = getattr(predicate, "__name__", "predicate")
    return rule, f"rows where {name}(row) is true", {"predicate": name}


def _label_names(dataset: datasets.Dataset, label_column: str) -> list[str] | None:
    feature = dataset.features[label_column]
    return list(feature.names) if isinstance(feature, datasets.ClassLabel) else None


def _column(dataset: datasets.Dataset, column: str) -> np.ndarray:
    """One column as a NumPy array read through Arrow (honouring an indices mapping): no other column -- in
    particular no image -- is read or decoded."""
    return dataset.with_format("arrow", columns=[column])[column].to_numpy()


def _selection_fingerprint(dataset: datasets.Dataset, part: str, selected: np.ndarray) -> str:
    """Deterministic fingerprint of a forget / retain selection: SHA-256 of the parent's fingerprint and the forget
    rows. ``datasets`` would otherwise hash the 1M-entry index list with dill (45 s at ImageNet size)."""
    digest = hashlib.sha256(f"{dataset._fingerprint}|select_forget|{part}|".encode())
    digest.update(np.ascontiguousarray(selected, dtype="<i8").tobytes())
    return digest.hexdigest()[:32]


def _rows_with_ids(dataset: datasets.Dataset, id_column: str, wanted: set) -> tuple[np.ndarray, set]:
    """Row positions whose id is in ``wanted`` and the wanted ids that are absent, with Arrow's hash lookup
    (1.28M ids in well under a second, no Python set of the whole column)."""
    column = dataset.with_format("arrow", columns=[id_column])[id_column]
    try:
        value_set = pa.array(list(wanted)).cast(column.type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
        # mixed types: only ids that convert can match (the others are reported missing, as with a Python set)
        kept = []
        for value in wanted:
            try:
                kept.append(pa.scalar(value).cast(column.type).as_py())
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
                pass
        value_set = pa.array(kept, type=column.type)
    if len(value_set) == 0:
        return np.zeros(0, dtype=np.int64), set(wanted)
    mask = pc.is_in(column, value_set=value_set).to_numpy(zero_copy_only=False)
    selected = np.flatnonzero(mask)
    found = pc.unique(column.take(pa.array(selected))).to_pylist() if len(selected) else []
    return selected, set(wanted) - set(found)


def rows_of_ids(dataset: datasets.Dataset, id_column: str, ids) -> np.ndarray:
    """Row positions of the rows whose ``id_column`` value is one of ``ids``; a ``ValueError`` naming a few of the
    ids that match no row. Reads the id column only: the command line runs it before any model is loaded."""
    wanted = set(ids)
    selected, missing = _rows_with_ids(dataset, id_column, wanted)
    if missing:
        few = sorted(missing, key=str)[:5]
        feature = dataset.features[id_column]
        kinds = (
            {"int"}
            if getattr(feature, "dtype", "").startswith(("int", "uint"))
            else {"str"}
            if getattr(feature, "dtype", "") in ("string", "large_string")
            else set()
        )
        hint = (
            f" (the ids are {type(few[0]).__name__}, the column holds {'/'.join(sorted(kinds))})"
            if kinds and type(few[0]).__name__ not in kinds
            else ""
        )
        raise ValueError(
            f"{len(missing)} of the {len(wanted)} ids to forget are not in column '{id_column}' "
            f"(e.g. {few}){hint}; check the id list against the dataset/split."
        )
    return selected


def select_forget(
    dataset: datasets.Dataset,
    *,
    ids: Sequence[Any] | None = None,
    indices: Sequence[int] | None = None,
    classes: Sequence[int | str] | None = None,
    fraction_per_class: float | None = None,
    predicate: Callable[[dict], bool] | None = None,
    mode: str = "random",
    seed: int = 0,
    id_column: str | None = "id",
    label_column: str = "label",
    num_labels: int | None = None,
    dataset_name: str | None = None,
    dataset_config: str | None = None,
    split: str | None = None,
    revision: str | None = None,
) -> ForgetSplit:
    """Split ``dataset`` into a forget set and a retain set with :meth:`datasets.Dataset.filter`.

    Exactly one rule: ``ids`` (values of ``id_column``), ``indices`` (row positions), ``classes`` (labels or
    class names: class unlearning), ``fraction_per_class`` (``mode="random"``: a seeded random fraction of
    each class; ``mode="first"``: the first rows of each class, as the LoTUS reference code does), or
    ``predicate`` (any function of a row).

    ``num_labels`` (the model's number of classes) lets the labels be checked before any training. Every
    error is raised here, before a model is touched.
    """
    rule, description, params = _rule(ids, indices, classes, fraction_per_class, predicate, mode, seed, id_column)
    columns = dataset.column_names
    if label_column not in columns:
        raise ValueError(
            f"the dataset has no label column '{label_column}' (columns: {columns}); "
            "pass --label_column_name / label_column= with the right name."
        )
    if len(dataset) == 0:
        raise ValueError("the dataset is empty: nothing to unlearn from.")
    label_array = _column(dataset, label_column)
    labels = label_array.tolist()
    if num_labels is not None:
        bad = sorted({y for y in labels if not (0 <= int(y) < num_labels)})
        if bad:
            raise ValueError(
                f"labels {bad[:5]} are outside the model's {num_labels} classes (0..{num_labels - 1}); "
                "use the dataset the model was trained on, or a model with a matching classification head."
            )

    n = len(dataset)
    rows_per_id = None
    if rule == "ids":
        if id_column is None or id_column not in columns:
            raise ValueError(
                f"forgetting by id needs an id column, but '{id_column}' is not among the columns {columns}; "
                "pass id_column= / --id_column_name, or select by row indices instead."
            )
        if len({type(v) for v in ids}) > 1:
            raise ValueError(
                "the ids mix strings and integers; give them in the id column's type "
                "(hf_unlearn.read_ids_file(path, dataset.features[id_column]) does this)."
            )
        wanted = set(ids)
        selected = rows_of_ids(dataset, id_column, wanted)
        # A non-unique id column: every row an id names is forgotten; the record says how many, as counts only.
        matched = pc.value_counts(
            dataset.with_format("arrow", columns=[id_column])[id_column].take(pa.array(selected))
        )
        rows_matched = Counter(matched.field("counts").to_pylist())
        rows_per_id = {"num_ids": len(wanted), "histogram": {str(k): c for k, c in sorted(rows_matched.items())}}
    elif rule == "indices":
        bad = [i for i in indices if not (0 <= int(i) < n)]
        if bad:
            raise ValueError(f"row indices {bad[:5]} are out of range for a dataset of {n} rows.")
        selected = np.unique(np.asarray([int(i) for i in indices], dtype=np.int64))
    elif rule == "classes":
        names = _label_names(dataset, label_column)
        wanted_labels = set()
        for c in classes:
            if isinstance(c, str) and not c.lstrip("-").isdigit():
                if names is None or c not in names:
                    raise ValueError(f"unknown class name {c!r}; the classes are {names or sorted(set(labels))}.")
                wanted_labels.add(names.index(c))
            else:
                wanted_labels.add(int(c))
        absent = wanted_labels - set(labels)
        if absent:
            raise ValueError(f"class(es) {sorted(absent)} have no rows in this dataset; nothing to forget for them.")
        selected = np.flatnonzero(np.isin(label_array, sorted(wanted_labels)))
    elif rule == "fraction_per_class":
        if not 0.0 < fraction_per_class < 1.0:
            raise ValueError(f"fraction_per_class must be in (0, 1), got {fraction_per_class}.")
        # Rows of each class in dataset order (a stable sort), then the same Python random.sample calls as a
        # per-row loop would make: the selection is identical, without a Python loop over every row.
        order = np.argsort(label_array, kind="stable")
        classes_sorted, starts = np.unique(label_array[order], return_index=True)
        rng = random.Random(seed)
        chosen = []
        for _y, rows in zip(classes_sorted.tolist(), np.split(order, starts[1:]), strict=False):
            k = int(fraction_per_class * len(rows))  # floor, as the reference code
            chosen.append(rows[:k] if mode == "first" else np.asarray(rng.sample(rows.tolist(), k), dtype=np.int64))
        selected = np.unique(np.concatenate(chosen))
    else:
        selected = np.asarray([i for i, row in enumerate(dataset) if predicate(row)], dtype=np.int64)

    if len(selected) == 0:
        raise ValueError(f"the forget set is empty ({description}); nothing would be unlearned. Check the selection.")
    if len(selected) == n:
        raise ValueError(
            f"the forget set is the whole dataset ({n} rows): there is nothing left to retain. "
            "Unlearning everything is retraining from scratch; select a subset."
        )

    # Dataset.select keeps the selection inside `datasets` (fingerprinted, lazily indexed) without reading a row:
    # a filter over whole rows decoded every image. keep_in_memory: nothing is written next to the user's data.
    is_forget = np.zeros(n, dtype=bool)
    is_forget[selected] = True
    forget = dataset.select(
        selected.tolist(), keep_in_memory=True, new_fingerprint=_selection_fingerprint(dataset, "forget", selected)
    )
    retain = dataset.select(
        np.flatnonzero(~is_forget).tolist(),
        keep_in_memory=True,
        new_fingerprint=_selection_fingerprint(dataset, "retain", selected),
    )

    names = _label_names(dataset, label_column)
    counts = Counter(label_array[selected].tolist())
    per_class = {(names[y] if names else str(y)): counts[y] for y in sorted(counts)}
    if rule == "ids":  # the requester's ids, each once: the commitment verifies against their own list
        removed_ids = sorted(wanted)
        commit_ids, id_col = removed_ids, id_column
    elif id_column is not None and id_column in columns:
        removed_ids = sorted(set(forget.with_format("arrow", columns=[id_column])[id_column].to_pylist()))
        commit_ids, id_col = removed_ids, id_column
    else:  # no id column: the row index is the only stable name of a sample
        removed_ids = selected.tolist()
        commit_ids, id_col = removed_ids, None
    from ..records.merkle import commit_ids as merkle_commit

    tree = merkle_commit(commit_ids)  # over the unique ids, fresh random salts
    record = RemovalRecord(
        dataset={
            # a local dataset directory is recorded by its base name: the record is published
            "name": public_name(dataset_name) or (dataset.info.dataset_name if dataset.info else None),
            "config": dataset_config or (dataset.info.config_name if dataset.info else None),
            "split": split or (str(dataset.split) if dataset.split is not None else None),
            "revision": revision,
            "fingerprint": dataset._fingerprint,
        },
        selection={"rule": rule, "description": description, "params": params},
        id_column=id_col,
        label_column=label_column,
        num_removed=len(forget),
        num_retained=len(retain),
        per_class_counts=per_class,
        forget_fingerprint=forget._fingerprint,
        retain_fingerprint=retain._fingerprint,
        commitment=tree.to_record(),
        rows_per_id=rows_per_id,
    )
    return ForgetSplit(
        forget=forget,
        retain=retain,
        record=record,
        removed_ids=removed_ids,
        salts=dict(zip(tree.ids, tree.salts, strict=False)),
    )
