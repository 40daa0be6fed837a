"""Forget / retain sets as ``datasets`` filters, with a record of exactly what was removed.

A deletion request names samples (by id, by class, by a rule). :func:`select_forget` turns it into two
``datasets.Dataset`` objects built with :meth:`datasets.Dataset.filter` -- disjoint, covering the training
set exactly -- and a :class:`RemovalRecord` (counts, rule, fingerprints and a salted Merkle commitment to the
removed ids, :mod:`hf_unlearn.ledger`) that ends up in the model card without re-publishing the ids themselves.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Sequence

import datasets

__all__ = ["ForgetSplit", "RemovalRecord", "commitment", "select_forget", "FORGET_FLAG_COLUMN"]

#: Per-row flag (1 = forget, 0 = retain) that the trainer adds to its training mixture.
FORGET_FLAG_COLUMN = "forget_flag"

_COMMITMENT_SCHEME = "sha256 of '\\n'.join(str(i) for i in sorted(ids)) encoded as UTF-8"


def commitment(ids: Iterable[Any]) -> str:
    """Unsalted SHA-256 over a set of sample ids (the commitment of hf-unlearn before the salted Merkle tree).

    Kept for reading older cards only: for small integer ids it can be brute-forced. New records commit with
    :func:`hf_unlearn.ledger.commit_ids`. Ids are sorted in their own type (numbers numerically, strings
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
    removed_ids: list = field(repr=False, default_factory=list)
    #: {id: 32-byte salt} of the record's Merkle commitment (hf_unlearn.ledger); private, like ``removed_ids``.
    salts: dict = field(repr=False, default_factory=dict)

    def __iter__(self):  # ``forget, retain, record = select_forget(...)``
        return iter((self.forget, self.retain, self.record))


def _rule(
    ids, indices, classes, fraction_per_class, predicate, mode, seed, id_column
) -> tuple[str, str, dict]:
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
        return rule, f"{len(set(ids))} samples named by their '{id_column}'", {"count": len(set(ids))}
    if rule == "indices":
        return rule, f"{len(set(indices))} samples named by row index", {"count": len(set(indices))}
    if rule == "classes":
        return rule, f"every sample of class(es) {sorted(classes)} (class unlearning)", {"classes": sorted(classes)}
    if rule == "fraction_per_class":
        if mode not in ("random", "first"):
            raise ValueError(f"fraction mode must be 'random' or 'first', got {mode!r}.")
        how = f"seeded random (seed {seed})" if mode == "random" else "the first rows of each class in dataset order"
        return rule, f"{fraction_per_class:.0%} of each class, {how}", {
            "fraction": fraction_per_class, "mode": mode, "seed": seed if mode == "random" else None}
    name = getattr(predicate, "__name__", "predicate")
    return rule, f"rows where {name}(row) is true", {"predicate": name}


def _label_names(dataset: datasets.Dataset, label_column: str) -> list[str] | None:
    feature = dataset.features[label_column]
    return list(feature.names) if isinstance(feature, datasets.ClassLabel) else None


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
    labels = dataset[label_column]
    if num_labels is not None:
        bad = sorted({y for y in labels if not (0 <= int(y) < num_labels)})
        if bad:
            raise ValueError(
                f"labels {bad[:5]} are outside the model's {num_labels} classes (0..{num_labels - 1}); "
                "use the dataset the model was trained on, or a model with a matching classification head."
            )

    n = len(dataset)
    if rule == "ids":
        if id_column is None or id_column not in columns:
            raise ValueError(
                f"forgetting by id needs an id column, but '{id_column}' is not among the columns {columns}; "
                "pass id_column= / --id_column_name, or select by row indices instead."
            )
        wanted = set(ids)
        present = set(dataset[id_column])
        missing = wanted - present
        if missing:
            few = sorted(missing, key=str)[:5]
            raise ValueError(
                f"{len(missing)} of the {len(wanted)} ids to forget are not in column '{id_column}' "
                f"(e.g. {few}); check the id list against the dataset/split."
            )
        selected = {i for i, v in enumerate(dataset[id_column]) if v in wanted}
    elif rule == "indices":
        bad = [i for i in indices if not (0 <= int(i) < n)]
        if bad:
            raise ValueError(f"row indices {bad[:5]} are out of range for a dataset of {n} rows.")
        selected = {int(i) for i in indices}
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
        selected = {i for i, y in enumerate(labels) if y in wanted_labels}
    elif rule == "fraction_per_class":
        if not 0.0 < fraction_per_class < 1.0:
            raise ValueError(f"fraction_per_class must be in (0, 1), got {fraction_per_class}.")
        by_class: dict[int, list[int]] = {}
        for i, y in enumerate(labels):
            by_class.setdefault(y, []).append(i)
        rng = random.Random(seed)
        selected = set()
        for y in sorted(by_class):
            rows = by_class[y]
            k = int(fraction_per_class * len(rows))  # floor, as the reference code
            selected.update(rows[:k] if mode == "first" else rng.sample(rows, k))
    else:
        selected = {i for i, row in enumerate(dataset) if predicate(row)}

    if not selected:
        raise ValueError(f"the forget set is empty ({description}); nothing would be unlearned. Check the selection.")
    if len(selected) == n:
        raise ValueError(
            f"the forget set is the whole dataset ({n} rows): there is nothing left to retain. "
            "Unlearning everything is retraining from scratch; select a subset."
        )

    # Dataset.filter keeps the selection inside `datasets` (fingerprinted, cached, lazily indexed).
    forget = dataset.filter(lambda _, i: i in selected, with_indices=True, desc="forget set")
    retain = dataset.filter(lambda _, i: i not in selected, with_indices=True, desc="retain set")

    names = _label_names(dataset, label_column)
    counts = Counter(forget[label_column])
    per_class = {(names[y] if names else str(y)): counts[y] for y in sorted(counts)}
    if id_column is not None and id_column in columns:
        removed_ids = list(forget[id_column])
        commit_ids, id_col = removed_ids, id_column
    else:  # no id column: the row index is the only stable name of a sample
        removed_ids = sorted(selected)
        commit_ids, id_col = removed_ids, None
    from .ledger import commit_ids as merkle_commit

    tree = merkle_commit(commit_ids)  # over the unique ids, fresh random salts
    record = RemovalRecord(
        dataset={
            "name": dataset_name or (dataset.info.dataset_name if dataset.info else None),
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
    )
    return ForgetSplit(forget=forget, retain=retain, record=record, removed_ids=removed_ids,
                       salts=dict(zip(tree.ids, tree.salts)))
