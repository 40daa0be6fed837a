"""Issue 10 "Trust", part B: labels, ids files, multi-row ids and images.

Refused inputs go through the CLI in-process (``run_unlearning``): exit 2, exactly one ``error:`` line, no traceback,
no output directory, and no training step. Accepted inputs stop at ``UnlearningTrainer.train`` (the forget set, the
removal record and the materialised pixels are already built then), except two short full runs that read the
written ``removal_record.json``.
"""

from __future__ import annotations

import io
import json
import os

import datasets
import numpy as np
import pytest
import torch
from conftest import run_cli
from PIL import Image

from hf_unlearn import read_ids_file, select_forget
from hf_unlearn.cli.main import run_unlearning
from hf_unlearn.data.images import ImageDataError, convert_image
from hf_unlearn.data.labels import align_labels, check_integer_labels, class_names_of
from hf_unlearn.records.ledger import read_ledger
from hf_unlearn.records.merkle import commit_ids

FAST = ["--use_cpu", "--disable_tqdm", "true", "--seed", "0", "--per_device_eval_batch_size", "512"]
NAMES = [str(i) for i in range(10)]
N = 60  # rows per split of the small datasets


def _features(label=None, id_type="string"):
    return datasets.Features(
        {"id": datasets.Value(id_type), "image": datasets.Image(), "label": label or datasets.ClassLabel(names=NAMES)}
    )


def _png(image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def _rebuild(small, *, labels=None, label_feature=None, ids=None, id_type="string", images=None):
    """``small`` with some columns replaced; each ``labels``/``ids``/``images`` is a function (split, values) -> values."""
    out = {}
    for split, ds in small.items():
        cols = {
            "id": ds["id"],
            "image": [{"bytes": _png(im), "path": None} for im in ds["image"]],
            "label": ds["label"],
        }
        if labels:
            cols["label"] = labels(split, cols["label"])
        if ids:
            cols["id"] = ids(split, cols["id"])
        if images:
            cols["image"] = images(split, cols["image"])
        out[split] = datasets.Dataset.from_dict(cols, features=_features(label_feature, id_type))
    return datasets.DatasetDict(out)


@pytest.fixture(scope="module")
def small():
    from hf_unlearn.data.builtin import load_digits_dataset

    return datasets.DatasetDict({k: v.select(range(N)) for k, v in load_digits_dataset().items()})


@pytest.fixture(scope="module")
def root(small, tmp_path_factory):
    root = tmp_path_factory.mktemp("trust_input")
    small.save_to_disk(str(root / "digits"))
    first = small["train"]["image"][0]
    png = _png(first)

    def put(name, data):
        data.save_to_disk(str(root / name))

    # labels
    put(
        "labels_reversed",
        _rebuild(small, labels=lambda s, y: [9 - v for v in y], label_feature=datasets.ClassLabel(names=NAMES[::-1])),
    )
    put(
        "labels_float_whole",
        _rebuild(small, labels=lambda s, y: [float(v) for v in y], label_feature=datasets.Value("float32")),
    )
    put(
        "labels_float_fraction",
        _rebuild(
            small,
            labels=lambda s, y: [float(v) + (0.5 if i == 4 else 0) for i, v in enumerate(y)],
            label_feature=datasets.Value("float32"),
        ),
    )
    put(
        "labels_strings_unknown",
        _rebuild(
            small,
            labels=lambda s, y: [str(v) if i != 2 else "cat" for i, v in enumerate(y)],
            label_feature=datasets.Value("string"),
        ),
    )
    put("labels_other_names", _rebuild(small, label_feature=datasets.ClassLabel(names=list("abcdefghij"))))
    put("labels_more_names", _rebuild(small, label_feature=datasets.ClassLabel(names=NAMES + ["10", "11"])))
    put(
        "labels_negative",
        _rebuild(
            small,
            labels=lambda s, y: [-1 if i == 3 else v for i, v in enumerate(y)],
            label_feature=datasets.Value("int64"),
        ),
    )
    put(
        "labels_multilabel",
        _rebuild(
            small, labels=lambda s, y: [[v] for v in y], label_feature=datasets.Sequence(datasets.Value("int64"))
        ),
    )
    put(
        "labels_bool",
        _rebuild(small, labels=lambda s, y: [bool(v % 2) for v in y], label_feature=datasets.Value("bool")),
    )
    # ids
    put("int_ids", _rebuild(small, ids=lambda s, v: list(range(len(v))), id_type="int64"))
    put("multi_ids", _rebuild(small, ids=lambda s, v: [i // 3 for i in range(len(v))], id_type="int64"))

    # images
    def replace(split_name, row, value):
        return lambda s, ims: [value if (s == split_name and i == row) else im for i, im in enumerate(ims)]

    put("image_garbage", _rebuild(small, images=replace("train", 5, {"bytes": b"not an image", "path": None})))
    put(
        "image_truncated",
        _rebuild(small, images=replace("train", 7, {"bytes": png[: len(png) // 2], "path": "scans/0007.png"})),
    )
    put("image_none_test", _rebuild(small, images=replace("test", 3, None)))
    float_image = Image.fromarray(np.asarray(first, dtype=np.float32))
    put("image_float_mode", _rebuild(small, images=replace("train", 2, {"bytes": _tiff(float_image), "path": None})))
    modes = ["L", "RGB", "RGBA", "LA", "CMYK", "I;16", "P", "1"]
    put(
        "image_mixed_modes",
        _rebuild(
            small,
            images=lambda s, ims: [
                {
                    "bytes": _png_or_tiff(_as_mode(Image.open(io.BytesIO(im["bytes"])), modes[i % len(modes)])),
                    "path": None,
                }
                for i, im in enumerate(ims)
            ],
        ),
    )

    files = {
        "nested.json": '[["digits-0001"], "digits-0002"]',
        "invalid.json": '["digits-0001", "digits-0002"',
        "object_without_ids.json": '{"samples": ["digits-0001"]}',
        "object_ids.json": '{"ids": ["digits-0001", "digits-0004"], "requested_by": "someone"}',
        "bom_crlf.txt": "\ufeffdigits-0001\r\n\r\n   digits-0004  \r\ndigits-0001\r\n\r\n",
        "int_ids.txt": "3\n17\n\n17\n",
        "int_ids_zero_padded.txt": "3\n007\n",
        "int_ids_float.json": "[3, 7.0]",
        "int_ids_words.txt": "3\nseven\n",
        "null_in_list.json": '["digits-0001", null]',
        "multi.txt": "1\n4\n4\n",
    }
    for name, text in files.items():
        (root / name).write_text(text, encoding="utf-8", newline="")
    (root / "binary.bin").write_bytes(png)
    (root / "utf16.txt").write_bytes("digits-0001\ndigits-0002\n".encode("utf-16"))
    (root / "latin1.txt").write_bytes("digits-0001\ncaf\xe9\n".encode("latin-1"))
    return root


def _tiff(image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "TIFF")
    return buf.getvalue()


def _png_or_tiff(image) -> bytes:
    return _tiff(image) if image.mode == "CMYK" else _png(image)  # PNG cannot store CMYK


def _as_mode(image, mode):
    if mode == "I;16":  # a real 16-bit image: 0..65535
        return Image.fromarray(np.asarray(image.convert("L"), dtype=np.uint16) * 257)
    if mode == "RGBA":
        rgba = image.convert("RGBA")
        rgba.putalpha(255)
        return rgba
    return image.convert(mode)


class _Stop(BaseException):  # not an Exception: the CLI's top-level handler must not turn it into exit 1
    pass


@pytest.fixture
def stop_at_train(monkeypatch):
    """Runs the CLI up to ``trainer.train`` and hands back the trainer (selection, record and splits built)."""
    from hf_unlearn.training.trainer import UnlearningTrainer

    seen = {}

    def capture(self, *a, **k):
        seen["trainer"] = self
        raise _Stop

    monkeypatch.setattr(UnlearningTrainer, "train", capture)
    real_predictions = UnlearningTrainer.predictions

    def predictions(self, model, test_dataset=None, validation_dataset=None, **kwargs):
        seen["test"] = test_dataset
        return real_predictions(self, model, test_dataset, validation_dataset, **kwargs)

    monkeypatch.setattr(UnlearningTrainer, "predictions", predictions)

    def run(argv, capsys):
        capsys.readouterr()
        with pytest.raises(_Stop):
            run_unlearning(argv + FAST)
        seen["trainer"].seen_test = seen.get("test")
        return seen["trainer"], capsys.readouterr().out

    return run


# ---- refused inputs: one line, exit 2, nothing written, nothing trained ----------------------------------------
REFUSED = [
    # labels
    (
        "label-float-fraction",
        "labels_float_fraction",
        [],
        "label 4.5 in row 4 of the 'train' split is not a whole number",
    ),
    (
        "label-string-unknown",
        "labels_strings_unknown",
        [],
        "label 'cat' in row 2 of the 'train' split is not a class name",
    ),
    ("label-other-class-names", "labels_other_names", [], "class names disagree with the model's id2label"),
    ("label-more-class-names", "labels_more_names", [], "['10', '11'] are not classes of the model"),
    ("label-negative", "labels_negative", [], "labels [-1] of the 'train' split (first at row 3) are outside"),
    ("label-multilabel", "labels_multilabel", [], "not one integer class per image"),
    ("label-bool", "labels_bool", [], "is of type bool, not one integer class"),
    # ids files
    ("ids-nested-json", "digits", ["--forget_ids_file", "{root}/nested.json"], "nested.json, element 0: a JSON list"),
    (
        "ids-invalid-json",
        "digits",
        ["--forget_ids_file", "{root}/invalid.json"],
        "invalid.json is not valid JSON (line 1",
    ),
    ("ids-binary", "digits", ["--forget_ids_file", "{root}/binary.bin"], "binary.bin is binary"),
    ("ids-utf16", "digits", ["--forget_ids_file", "{root}/utf16.txt"], "utf16.txt is UTF-16 text; save it as UTF-8"),
    (
        "ids-latin1",
        "digits",
        ["--forget_ids_file", "{root}/latin1.txt"],
        "latin1.txt is not UTF-8 text (undecodable byte at line 2)",
    ),
    (
        "ids-object-without-ids",
        "digits",
        ["--forget_ids_file", "{root}/object_without_ids.json"],
        "is a JSON object without an 'ids' key (keys: ['samples'])",
    ),
    ("ids-null-element", "digits", ["--forget_ids_file", "{root}/null_in_list.json"], "element 1: a JSON null"),
    (
        "ids-zero-padded-vs-int-column",
        "int_ids",
        ["--forget_ids_file", "{root}/int_ids_zero_padded.txt"],
        "int_ids_zero_padded.txt, line 2: '007' is not written as a plain integer",
    ),
    (
        "ids-float-vs-int-column",
        "int_ids",
        ["--forget_ids_file", "{root}/int_ids_float.json"],
        "int_ids_float.json, element 1: 7.0 is a float",
    ),
    ("ids-words-vs-int-column", "int_ids", ["--forget_ids_file", "{root}/int_ids_words.txt"], "line 2: 'seven'"),
    (
        "ids-text-vs-string-column-missing",
        "digits",
        ["--forget_ids_file", "{root}/int_ids.txt"],
        "2 of the 2 ids to forget are not in column 'id'",
    ),
    # images
    (
        "image-garbage-bytes",
        "image_garbage",
        ["--forget_fraction", "0.2"],
        "(id 'digits-0005') in the retain split cannot be decoded (not an image format PIL recognises)",
    ),
    (
        "image-truncated-png",
        "image_truncated",
        ["--forget_fraction", "0.2"],
        "cannot be decoded (OSError: image file is truncated); file 0007.png",
    ),
    (
        "image-none-in-test",
        "image_none_test",
        ["--forget_fraction", "0.2"],
        "image of row 3 (id 'digits-0025') in the test split has no image (None)",
    ),
    (
        "image-float-mode",
        "image_float_mode",
        ["--forget_fraction", "0.2"],
        "image mode F (float pixels) has no fixed value range",
    ),
    (
        "image-garbage-lazy",
        "image_garbage",
        ["--forget_fraction", "0.2", "--materialize_data", "false"],
        "(id 'digits-0005') in the retain split cannot be decoded",
    ),
]


@pytest.mark.parametrize("dataset, fragment, expected", [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_refused_one_line_exit_2_nothing_written(
    root, original_path, tmp_path, capsys, no_training, dataset, fragment, expected
):
    out = tmp_path / "out"
    argv = [
        "--model_name_or_path",
        str(original_path),
        "--dataset_name",
        str(root / dataset),
        "--output_dir",
        str(out),
        "--method",
        "finetune",
        *[a.format(root=root) for a in fragment],
    ]
    run_cli(argv + FAST, capsys, 2, expected)
    # a lazy split is read batch by batch, after Trainer.__init__ has created the (still empty) output_dir;
    # materialised splits, held-out ones included, are all read before it
    assert not out.exists() or ("--materialize_data" in argv and not os.listdir(out))


def test_image_path_that_does_not_exist(small, original_path, tmp_path, capsys, no_training, monkeypatch):
    """A dataset whose image is a path to a file that is gone (datasets keeps local paths unembedded in memory)."""
    import hf_unlearn.cli.main as cli

    picture = tmp_path / "pictures" / "p.png"
    picture.parent.mkdir()
    small["train"]["image"][0].save(picture)
    data = _rebuild(
        small, images=lambda s, ims: [str(picture) if (s == "train" and i == 9) else im for i, im in enumerate(ims)]
    )
    assert data["train"].with_format("arrow")[9:10].column("image")[0].as_py()["bytes"] is None
    picture.unlink()
    monkeypatch.setattr(cli, "load_training_data", lambda script: (data, "in-memory"))
    out = tmp_path / "out"
    line = run_cli(
        [
            "--model_name_or_path",
            str(original_path),
            "--dataset_name",
            "in-memory",
            "--output_dir",
            str(out),
            "--method",
            "finetune",
            "--forget_fraction",
            "0.2",
            *FAST,
        ],
        capsys,
        2,
    )
    assert "(id 'digits-0009')" in line and f"file {picture} does not exist" in line
    assert not out.exists()


# ---- labels: accepted, remapped, cast ------------------------------------------------------------------------
def test_labels_same_names_other_order_remapped_by_name(root, small, original_path, tmp_path, capsys, stop_at_train):
    """The dataset's class '3' is its id 6; after the remap the model's class 3 is forgotten and reported as '3'."""
    argv = [
        "--model_name_or_path",
        str(original_path),
        "--dataset_name",
        str(root / "labels_reversed"),
        "--output_dir",
        str(tmp_path / "out"),
        "--method",
        "finetune",
        "--forget_classes",
        "3",
    ]
    trainer, stdout = stop_at_train(argv, capsys)
    assert "labels: the 'train' split: labels remapped to the model's ids by class name" in stdout
    record = trainer.removal_record.to_dict()
    threes = [i for i, y in zip(small["train"]["id"], small["train"]["label"], strict=False) if y == 3]
    assert record["per_class_counts"] == {"3": len(threes)}
    assert trainer.forget_split.labels.tolist() == [3] * len(threes)
    actions = record["label_alignment"]["actions"]
    assert {a["split"] for a in actions} == {"train", "validation", "test"}
    assert all(a["action"] == "remapped_by_name" and a["mapping"]["3"] == [6, 3] for a in actions)
    # the test split was remapped too: the original model is right on it (scrambled labels would give ~0.1)
    test = trainer.as_split(trainer.seen_test, "test")
    accuracy = (trainer.predict_logits(trainer.model, test).argmax(-1) == test.labels).float().mean().item()
    assert accuracy > 0.8


def test_labels_whole_number_floats_cast_with_a_note(root, small, original_path, tmp_path, capsys, stop_at_train):
    argv = [
        "--model_name_or_path",
        str(original_path),
        "--dataset_name",
        str(root / "labels_float_whole"),
        "--output_dir",
        str(tmp_path / "out"),
        "--method",
        "finetune",
        "--forget_classes",
        "2",
    ]
    trainer, stdout = stop_at_train(argv, capsys)
    assert "float labels are all whole numbers and were cast to int (1.0 -> 1)" in stdout
    assert trainer.forget_split.labels.tolist() == [2] * small["train"]["label"].count(2)
    assert trainer.removal_record.label_alignment["actions"][0]["action"] == "cast_float_to_int"


def test_align_labels_string_names_and_every_split(small):
    strings = _rebuild(small, labels=lambda s, y: [str(v) for v in y], label_feature=datasets.Value("string"))
    aligned, description = align_labels(strings, "label", NAMES)
    for split in ("train", "validation", "test"):
        assert aligned[split]["label"] == small[split]["label"]
        assert aligned[split].features["label"].names == NAMES
    assert [a["action"] for a in description["actions"]] == ["strings_by_name"] * 3


def test_align_labels_unnamed_model_does_not_block_but_says_so(small):
    reversed_names = _rebuild(small, label_feature=datasets.ClassLabel(names=NAMES[::-1]))
    aligned, description = align_labels(reversed_names, "label", class_names_of(_Generic(10)), num_labels=10)
    assert aligned["train"]["label"] == small["train"]["label"]  # ids kept as they are
    assert description["actions"][0]["action"] == "unnamed_model_classes"
    with pytest.raises(ValueError, match="outside the model's 5 classes"):
        align_labels(reversed_names, "label", None, num_labels=5)
    with pytest.raises(ValueError, match="string labels .* the model's classes are unnamed"):
        align_labels(
            _rebuild(small, labels=lambda s, y: [str(v) for v in y], label_feature=datasets.Value("string")),
            "label",
            None,
            num_labels=10,
        )


def test_align_labels_identical_names_change_nothing(small):
    aligned, description = align_labels(small, "label", NAMES)
    assert description is None and aligned["train"]._fingerprint == small["train"]._fingerprint


class _Generic(torch.nn.Module):
    def __init__(self, n):
        super().__init__()
        from transformers import PretrainedConfig

        self.config = PretrainedConfig(num_labels=n)


def test_trainer_and_splits_refuse_non_integer_labels(small, original_path, tmp_path):
    from hf_unlearn import UnlearningArguments, UnlearningTrainer, load_classifier
    from hf_unlearn.data.splits import to_image_split

    floats = _rebuild(small, labels=lambda s, y: [v + 0.7 for v in y], label_feature=datasets.Value("float32"))
    loaded = load_classifier(str(original_path))
    with pytest.raises(ValueError, match="label column 'label' is of type float32, not integer class ids"):
        to_image_split(floats["test"], loaded.transform, name="test")
    args = UnlearningArguments.for_method("finetune", output_dir=str(tmp_path / "o"), use_cpu=True, report_to="none")
    with pytest.raises(ValueError, match="the forget dataset's label column 'label' is of type float32"):
        UnlearningTrainer(
            loaded.model,
            args,
            forget_dataset=floats["train"].select(range(5)),
            retain_dataset=floats["train"].select(range(5, N)),
            image_transform=loaded.transform,
        )
    check_integer_labels(small["train"], "label")  # ClassLabel passes


# ---- ids files -------------------------------------------------------------------------------------------------
INT, STR = datasets.Value("int64"), datasets.Value("string")
IDS_READ = [
    # (content, feature, expected ids)
    ("\ufeffa\r\n\r\n  b \r\nc\r\n", STR, ["a", "b", "c"]),
    ("a\nb\na\nb\n", None, ["a", "b"]),
    ('{"ids": ["x", "y"]}', STR, ["x", "y"]),
    ("[7, 8, 7]", STR, ["7", "8"]),
    ('["7", 8]', INT, [7, 8]),
    ("12\n-3\n0\n", INT, [12, -3, 0]),
    ("007\n", STR, ["007"]),
]


@pytest.mark.parametrize("content, feature, expected", IDS_READ)
def test_read_ids_file_accepts(tmp_path, content, feature, expected):
    path = tmp_path / "ids"
    path.write_text(content, encoding="utf-8", newline="")
    assert read_ids_file(str(path), feature) == expected


@pytest.mark.parametrize(
    "content, feature, message",
    [
        ("", None, "contains no ids"),
        ("\n  \r\n", None, "contains no ids"),
        ("[]", None, "contains no ids"),
        ('{"ids": "a"}', None, "'ids' is a JSON str, not a list"),
        ("[true]", INT, "element 0: a JSON bool"),
        ("[1.5]", STR, "element 0: 1.5 is a float"),
        ("+7\n", INT, "line 1: '+7'"),
        ("7.0\n", INT, "line 1: '7.0'"),
        ("a\n", datasets.ClassLabel(names=["a"]), "can only be matched against an integer or string column"),
    ],
)
def test_read_ids_file_refuses(tmp_path, content, feature, message):
    path = tmp_path / "ids"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=None) as info:
        read_ids_file(str(path), feature)
    assert message in str(info.value) and str(path) in str(info.value)


@pytest.mark.parametrize(
    "dataset, ids_file, expected",
    [
        ("digits", "bom_crlf.txt", ["digits-0001", "digits-0004"]),
        ("digits", "object_ids.json", ["digits-0001", "digits-0004"]),
        ("int_ids", "int_ids.txt", [3, 17]),
    ],
)
def test_ids_file_accepted_forgets_those_rows(
    root, original_path, tmp_path, capsys, stop_at_train, dataset, ids_file, expected
):
    argv = [
        "--model_name_or_path",
        str(original_path),
        "--dataset_name",
        str(root / dataset),
        "--output_dir",
        str(tmp_path / "out"),
        "--method",
        "finetune",
        "--forget_ids_file",
        str(root / ids_file),
    ]
    trainer, _ = stop_at_train(argv, capsys)
    record = trainer.removal_record
    assert record.num_removed == len(expected) and len(trainer.forget_split) == len(expected)
    assert record.commitment["num_leaves"] == len(expected)  # one salted leaf per requested id
    assert record.rows_per_id == {"num_ids": len(expected), "histogram": {"1": len(expected)}}


# ---- multi-row ids ---------------------------------------------------------------------------------------------
def test_multi_row_ids_all_rows_forgotten_and_histogram(root, original_path, tmp_path, capsys):
    """ids 1 and 4 each name 3 rows (id = row // 3); the file repeats 4."""
    out = tmp_path / "out"
    argv = [
        "--model_name_or_path",
        str(original_path),
        "--dataset_name",
        str(root / "multi_ids"),
        "--output_dir",
        str(out),
        "--method",
        "finetune",
        "--max_steps",
        "1",
        "--forget_ids_file",
        str(root / "multi.txt"),
    ]
    run_cli(argv + FAST, capsys, 0)
    record = json.loads((out / "removal_record.json").read_text())
    assert record["num_removed"] == 6 and record["num_retained"] == N - 6
    assert record["rows_per_id"] == {"num_ids": 2, "histogram": {"3": 2}}
    # the requester's own list verifies: the ledger's leaves are exactly their ids, and its root is the record's
    (request,) = read_ledger(str(out / "ledger.json"))  # read_ledger recomputes the root from ids and salts
    assert sorted(leaf["id"] for leaf in request["leaves"]) == [1, 4]
    assert request["commitment"] == record["commitment"]["value"]
    assert json.loads((out / "removed_ids.json").read_text())["ids"] == [1, 4]
    assert "the rows of 2 ids in column 'id'" in record["selection"]["description"]
    assert record["label_alignment"] is None  # the model's names, in the model's order: nothing to align


def test_select_forget_multi_row_ids_unit():
    ds = datasets.Dataset.from_dict({"id": ["a", "b", "b", "c", "c", "c", "d"], "label": [0, 1, 0, 1, 0, 1, 0]})
    split = select_forget(ds, ids=["c", "a", "b", "a"])
    assert sorted(split.forget["id"]) == ["a", "b", "b", "c", "c", "c"]
    assert split.removed_ids == ["a", "b", "c"]  # each once, sorted
    assert split.record.rows_per_id == {"num_ids": 3, "histogram": {"1": 1, "2": 1, "3": 1}}
    # the requester's own list (any order, repeats) with the request's salts gives the record's root
    assert split.record.commitment["value"] == commit_ids(["c", "a", "b", "a"], split.salts).root
    assert "'a'" not in json.dumps(split.record.to_dict()) and '"a"' not in json.dumps(split.record.to_dict())
    by_fraction = select_forget(ds, fraction_per_class=0.5, seed=0)
    assert by_fraction.removed_ids == sorted(set(by_fraction.forget["id"]))
    with pytest.raises(ValueError, match="mix strings and integers"):
        select_forget(ds, ids=["a", 1])
    with pytest.raises(ValueError, match=r"the ids are int, the column holds str"):
        select_forget(ds, ids=[1])


# ---- image modes -----------------------------------------------------------------------------------------------
def test_mixed_modes_materialised_as_one_channel(root, small, original_path, tmp_path, capsys, stop_at_train):
    argv = [
        "--model_name_or_path",
        str(original_path),
        "--dataset_name",
        str(root / "image_mixed_modes"),
        "--output_dir",
        str(tmp_path / "out"),
        "--method",
        "finetune",
        "--forget_fraction",
        "0.2",
    ]
    trainer, _ = stop_at_train(argv, capsys)
    assert trainer.retain_split.pixel_values.shape[1:] == (1, 8, 8)
    assert trainer.forget_split.pixel_values.shape[1:] == (1, 8, 8)


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "LA", "CMYK", "I;16"])
def test_lossless_modes_give_the_same_pixels(small, original_path, mode):
    from hf_unlearn import load_classifier

    transform = load_classifier(str(original_path)).transform
    image = small["train"]["image"][0]
    expected = transform({"image": [image]})["pixel_values"]
    got = transform({"image": [_as_mode(image, mode)]})["pixel_values"]
    assert got.shape == expected.shape == (1, 1, 8, 8)
    assert torch.allclose(got, expected, atol=1 / 255)


def test_convert_image_rgb_and_transparency():
    grey = Image.new("L", (2, 2), 100)
    assert convert_image(grey, 3).mode == "RGB" and convert_image(grey, 3).getpixel((0, 0)) == (100, 100, 100)
    clear = Image.new("RGBA", (2, 2), (0, 0, 0, 0))
    assert convert_image(clear, 3).getpixel((0, 0)) == (255, 255, 255)  # onto white, as convert_to_rgb does
    assert convert_image(clear, 1).getpixel((0, 0)) == 255
    sixteen = Image.fromarray(np.full((2, 2), 65535, dtype=np.uint16))
    assert convert_image(sixteen, 1).getpixel((0, 0)) == 255  # scaled, not clipped garbage
    for bad, message in (
        (None, "missing"),
        (Image.new("I", (2, 2)), "32-bit integer"),
        (Image.new("F", (2, 2)), "float pixels"),
        (Image.new("RGB", (2, 2)), "only to 1 .L. or 3"),
    ):
        with pytest.raises(ValueError, match=message):
            convert_image(bad, 4 if message.startswith("only") else 3)


def test_hf_three_channel_processor_and_timm_transform_convert_every_mode(tmp_path):
    import timm
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    from hf_unlearn import load_classifier

    images = [
        _as_mode(Image.new("RGB", (8, 8), (10, 200, 30)), m)
        for m in ("L", "RGB", "RGBA", "LA", "P", "CMYK", "I;16", "1")
    ]
    hf_dir = tmp_path / "vit3"
    ViTForImageClassification(
        ViTConfig(
            image_size=8,
            patch_size=4,
            num_channels=3,
            hidden_size=8,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=8,
            num_labels=3,
        )
    ).save_pretrained(hf_dir)
    ViTImageProcessor(size={"height": 8, "width": 8}).save_pretrained(hf_dir)
    pixels = load_classifier(str(hf_dir)).transform({"image": images})["pixel_values"]
    assert pixels.shape == (8, 3, 8, 8)

    timm_dir = tmp_path / "timm1"
    timm.models.save_for_hf(
        timm.create_model("test_resnet", num_classes=3, in_chans=1), str(timm_dir), safe_serialization=True
    )
    loaded = load_classifier(str(timm_dir))
    assert loaded.library == "timm"
    pixels = loaded.transform({"image": images})["pixel_values"]
    assert pixels.shape[:2] == (8, 1)


def test_lazy_split_names_the_bad_row(small, original_path):
    from hf_unlearn import load_classifier
    from hf_unlearn.data.splits import to_image_split

    broken = _rebuild(
        small,
        images=lambda s, ims: [
            {"bytes": b"\x89PNG broken", "path": "x/y.png"} if i == 11 else im for i, im in enumerate(ims)
        ],
    )["train"]
    split = to_image_split(broken, load_classifier(str(original_path)).transform, name="retain", deterministic=False)
    assert not split.materialized
    split.pixels([0, 1])  # good rows still read
    with pytest.raises(
        ImageDataError,
        match=r"row 11 \(id 'digits-0012'\) in the retain split cannot be decoded .*; "
        r"file x/y.png",
    ):
        split.pixels(range(8, 14))


def test_trainer_processing_class_converts_modes(root, original_path, tmp_path):
    """Python users who give ``processing_class`` (no image_transform) get the same mode conversion."""
    from hf_unlearn import UnlearningArguments, UnlearningTrainer, load_classifier

    mixed = datasets.load_from_disk(str(root / "image_mixed_modes"))["train"]
    loaded = load_classifier(str(original_path))
    args = UnlearningArguments.for_method("finetune", output_dir=str(tmp_path / "o"), use_cpu=True, report_to="none")
    trainer = UnlearningTrainer(
        loaded.model,
        args,
        forget_dataset=mixed.select(range(8)),
        retain_dataset=mixed.select(range(8, N)),
        processing_class=loaded.processor,
    )
    assert trainer.forget_split.pixel_values.shape == (8, 1, 8, 8)
