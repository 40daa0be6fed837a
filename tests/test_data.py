"""Forget / retain selection: semantics, the removal record, and errors raised before any training."""

from __future__ import annotations

import hashlib

import datasets
import pytest

from hf_unlearn import commitment, select_forget


@pytest.fixture(scope="module")
def toy():
    features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "label": datasets.ClassLabel(names=["a", "b", "c"]),
            "x": datasets.Value("int32"),
        }
    )
    labels = [i % 3 for i in range(60)]
    return datasets.Dataset.from_dict(
        {"id": [f"s{i:03d}" for i in range(60)], "label": labels, "x": list(range(60))}, features=features
    )


def _check_partition(split, dataset):
    forget_ids, retain_ids = set(split.forget["id"]), set(split.retain["id"])
    assert not forget_ids & retain_ids
    assert forget_ids | retain_ids == set(dataset["id"])
    assert split.record.num_removed == len(forget_ids) and split.record.num_retained == len(retain_ids)


def test_by_ids(toy):
    split = select_forget(toy, ids=["s001", "s010", "s059"])
    assert sorted(split.forget["id"]) == ["s001", "s010", "s059"]
    _check_partition(split, toy)
    assert split.record.selection["rule"] == "ids"
    assert split.record.per_class_counts == {"b": 2, "c": 1}  # labels 1, 1, 2 by class name


def test_by_indices(toy):
    split = select_forget(toy, indices=[0, 5])
    assert split.forget["x"] == [0, 5]
    _check_partition(split, toy)


def test_by_class_label_and_name(toy):
    by_label = select_forget(toy, classes=[2])
    by_name = select_forget(toy, classes=["c"])
    assert set(by_label.forget["label"]) == {2} and len(by_label.forget) == 20
    assert by_label.forget["id"] == by_name.forget["id"]
    _check_partition(by_label, toy)


def test_fraction_per_class_random_is_seeded_and_stratified(toy):
    a = select_forget(toy, fraction_per_class=0.25, seed=1)
    b = select_forget(toy, fraction_per_class=0.25, seed=1)
    c = select_forget(toy, fraction_per_class=0.25, seed=2)
    assert a.forget["id"] == b.forget["id"] != c.forget["id"]
    assert a.record.per_class_counts == {"a": 5, "b": 5, "c": 5}  # floor(0.25 * 20) per class
    _check_partition(a, toy)


def test_fraction_first_k_matches_reference(toy):
    split = select_forget(toy, fraction_per_class=0.1, mode="first")
    # first 2 rows of each class in dataset order: rows 0, 3 (a); 1, 4 (b); 2, 5 (c)
    assert sorted(split.forget["x"]) == [0, 1, 2, 3, 4, 5]


def test_predicate(toy):
    split = select_forget(toy, predicate=lambda row: row["x"] >= 55)
    assert sorted(split.forget["x"]) == [55, 56, 57, 58, 59]
    assert "predicate" in split.record.selection["rule"]


def test_commitment_is_sha256_over_sorted_ids(toy):
    from hf_unlearn.records.merkle import commit_ids

    split = select_forget(toy, ids=["s010", "s001"])
    expected = hashlib.sha256(b"s001\ns010").hexdigest()
    assert commitment(["s010", "s001"]) == expected  # the legacy unsalted hash, kept for older cards
    # the record commits with a salted Merkle tree (hf_unlearn.records.ledger): reproducible only with the salts
    assert split.record.commitment["algorithm"] == "merkle-sha256" and split.record.commitment["value"] != expected
    assert commit_ids(["s010", "s001"], split.salts).root == split.record.commitment["value"]
    assert "s001" not in str(split.record.to_dict())  # the record never carries the ids themselves
    assert split.removed_ids and sorted(split.removed_ids) == ["s001", "s010"]


def test_record_has_fingerprints_and_dataset_identity(toy):
    split = select_forget(toy, classes=[0], dataset_name="me/toy", split="train", revision="abc")
    record = split.record.to_dict()
    assert record["dataset"] == {
        "name": "me/toy",
        "config": None,
        "split": "train",
        "revision": "abc",
        "fingerprint": toy._fingerprint,
    }
    assert record["forget_fingerprint"] == split.forget._fingerprint != record["retain_fingerprint"]


def test_without_id_column_commits_to_row_indices(toy):
    no_ids = toy.remove_columns("id")
    split = select_forget(no_ids, indices=[3, 1], id_column="id")
    assert split.record.id_column is None
    from hf_unlearn.records.merkle import commit_ids

    assert sorted(split.salts) == [1, 3]
    assert split.record.commitment["value"] == commit_ids([1, 3], split.salts).root


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"ids": ["nope", "s001"]}, "not in column 'id'"),
        ({"predicate": lambda row: False}, "forget set is empty"),
        ({"predicate": lambda row: True}, "whole dataset"),
        ({"classes": [0], "label_column": "target"}, "no label column 'target'"),
        ({"classes": [0], "num_labels": 2}, "outside the model's 2 classes"),
        ({"classes": ["zebra"]}, "unknown class name"),
        ({"classes": [0], "ids": ["s001"]}, "exactly one selection rule"),
        ({}, "exactly one selection rule"),
        ({"fraction_per_class": 1.5}, "must be in (0, 1)"),
        ({"indices": [100]}, "out of range"),
    ],
)
def test_errors_name_the_problem(toy, kwargs, message):
    with pytest.raises(ValueError, match=None) as info:
        select_forget(toy, **kwargs)
    assert message in str(info.value)


def test_ids_not_found_names_a_few(toy):
    with pytest.raises(ValueError) as info:
        select_forget(toy, ids=[f"missing{i}" for i in range(20)])
    assert "missing0" in str(info.value) and "20 of the 20" in str(info.value)
