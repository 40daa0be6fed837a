"""``hf-unlearn benchmark --model M --dataset D``: the benchmark's grid on a user's own model and data.

``--model`` is the *starting checkpoint*. The **Original** is it fine-tuned on the whole train split; the **Gold** is
the same checkpoint fine-tuned the same way (same recipe, same seed) on the retain set only: the user's model
fine-tuned without the forget set. Both are trained by :func:`hf_unlearn.data.builtin.train_classifier` and cached under
``cache_dir()/benchmark``, keyed by the model's identity (:func:`model_identity`), the data's fingerprints, the
forget selection's fingerprint (the Gold), the recipe and the seed. The model and data are loaded, and the forget set
selected, by the stages of ``hf-unlearn unlearn`` (hf_unlearn.cli.load, with its checks; the flags are checked and
those stages run in :mod:`hf_unlearn.benchmark.user_load`); the grid is
:func:`hf_unlearn.benchmark.grid.run_grid`, as for the built-in datasets.
"""

from __future__ import annotations

import copy
import hashlib
import os

from ..cli.args import UsageError
from .user_load import _check_flags, _load

__all__ = [
    "USER_FAMILY",
    "run_user_benchmark",
    "prepare_user_grid",
    "default_recipe",
    "model_identity",
]

#: The one family name of a user's model in the grid (the report's section, the JSON's summary key).
USER_FAMILY = "model"
#: Built-in recipe chosen for a user's dataset: digits' up to this many training images, else Fashion-MNIST's.
SMALL_TRAIN_ROWS = 5_000
_ATTENTION_MODELS = ("vit", "deit", "beit", "swin", "dino", "former", "clip", "siglip", "levit")


def default_recipe(train_rows: int, model) -> tuple[tuple[str, str], dict]:
    """``((dataset, family), recipe)``: the built-in recipe (hf_unlearn.benchmark.protocol.RECIPES) of the built-in dataset
    closest in size (digits up to :data:`SMALL_TRAIN_ROWS` training images, else Fashion-MNIST) and of the built-in
    family closest in kind (``vit`` for attention models, else ``resnet``)."""
    from .protocol import RECIPES

    dataset = "digits" if train_rows <= SMALL_TRAIN_ROWS else "fashion_mnist"
    kind = type(getattr(model, "module", model)).__name__.lower()
    family = "vit" if any(k in kind for k in _ATTENTION_MODELS) else "resnet"
    return (dataset, family), dict(RECIPES[(dataset, family)])


def model_identity(name_or_path: str, revision: str | None = None) -> dict:
    """What the cache and the resume check know a starting checkpoint by: a local directory's absolute path and the
    SHA-256 of its safetensors and JSON files; a Hub id's revision and the commit found in the local Hub cache."""
    local = name_or_path.split(":", 1)[1] if name_or_path.startswith("local-dir:") else name_or_path
    if os.path.isdir(local):
        digest = hashlib.sha256()
        for name in sorted(os.listdir(local)):
            path = os.path.join(local, name)
            if os.path.isfile(path) and name.endswith((".safetensors", ".json")):
                digest.update(name.encode() + b"\0")
                with open(path, "rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        digest.update(block)
        return {"path": os.path.abspath(local), "sha256": digest.hexdigest()}
    repo = name_or_path.split(":", 1)[1] if name_or_path.startswith("hf-hub:") else name_or_path
    commit = None
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo, "config.json", revision=revision)
        if isinstance(found, str) and "/snapshots/" in found:
            commit = found.split("/snapshots/", 1)[1].split("/", 1)[0]
    except Exception:  # an unusual id: the revision alone names it
        commit = None
    return {"hub_id": name_or_path, "revision": revision, "commit": commit}


class _Pixels:
    """The image processor the grid calls (``processor(images=..., return_tensors="pt")``): the loaded model's own
    transform, as ``hf-unlearn unlearn`` applies it (images converted to the model's channel count); saved next to
    the cached Originals and Golds as the model's processor."""

    def __init__(self, loaded):
        self.transform, self.column, self.processor = loaded.transform, loaded.image_column, loaded.processor

    def __call__(self, images, return_tensors="pt"):
        return {"pixel_values": self.transform({self.column: list(images)})["pixel_values"]}

    def save_pretrained(self, path: str) -> None:
        if self.processor is not None:
            self.processor.save_pretrained(path)


def _set_image_size(loaded, size: int) -> None:
    """``--image_size``: the Transformers image processor resizes (and crops) to ``size`` x ``size``."""
    processor = loaded.processor
    if processor is None or not isinstance(getattr(processor, "size", None), dict):
        raise UsageError(
            f"--image_size applies to models with a Transformers image processor; {loaded.name_or_path} "
            "takes its own input size (leave --image_size out)."
        )
    processor.size = (
        {"shortest_edge": size}
        if "shortest_edge" in processor.size and "height" not in processor.size
        else {"height": size, "width": size}
    )
    if isinstance(getattr(processor, "crop_size", None), dict):
        processor.crop_size = {"height": size, "width": size}


def _reset_head(model, seed: int) -> None:
    """A newly initialised classification head, drawn from ``seed`` (every layer's ``reset_parameters``)."""
    import torch

    from ..modeling.classifiers import classifier_head

    head = classifier_head(model)
    if head is None:
        raise UsageError("--new_head: the model has no classification head that hf-unlearn can find.")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in head.modules():
            if callable(getattr(module, "reset_parameters", None)):
                module.reset_parameters()


def _columns(ds, image: str, label: str):
    """``ds`` with only the image and label columns, named ``image`` and ``label`` (what the grid reads)."""
    ds = ds.select_columns([image, label])
    renames = {k: v for k, v in ((image, "image"), (label, "label")) if k != v}
    return ds.rename_columns(renames) if renames else ds


def _heldout(validation, test, a) -> tuple:
    """(validation, test, note): both as given, or the one held-out split there is cut 50/50, stratified by label
    (the grid pools and re-partitions them per seed, hf_unlearn.benchmark.grid.heldout_for_seed)."""
    if validation is not None and test is not None:
        return validation, test, None
    only, name = (validation, a.validation_split) if validation is not None else (test, a.test_split)
    if only is None:
        raise UsageError(
            f"the dataset has no held-out data (no '{a.validation_split}' or '{a.test_split}' split); "
            "the benchmark measures test accuracy and MIA on held-out images: add a validation or test "
            "split (an image folder: train/ and test/ subfolders), or name it with --validation_split / "
            "--test_split."
        )
    import numpy as np
    from sklearn.model_selection import train_test_split

    rows = np.arange(len(only))
    try:
        first, second = train_test_split(rows, test_size=0.5, stratify=np.asarray(only["label"]), random_state=0)
    except ValueError as e:
        raise UsageError(
            f"the '{name}' split ({len(only)} rows) cannot be split in two halves with every class in "
            f"each ({e}); give a larger held-out split."
        ) from e
    note = (
        f"the dataset has only one held-out split ('{name}', {len(only)} images): it was cut 50/50 (stratified) "
        "into validation and test"
    )
    return (
        only.select(sorted(first.tolist()), keep_in_memory=True),
        only.select(sorted(second.tolist()), keep_in_memory=True),
        note,
    )


def prepare_user_grid(a, say):
    """Check and load everything (raising :class:`UsageError` for bad input, before any training): returns
    ``(GridSource, config, name)``."""
    import dataclasses

    import datasets
    import torch

    from .. import list_methods
    from ..data.labels import class_names_of
    from ..modeling.classifiers import logits_of
    from ..records.naming import public_name
    from .grid import GridSource, _benchmark_config, heldout_for_seed

    _check_flags(a)
    a.methods = list(a.methods or list_methods())
    run = _load(a, say)
    script, loaded, selection = run.script, run.loaded, run.selection
    image, label = script.image_column_name, run.args.label_column_name
    validation, test, note = _heldout(
        None if run.validation is None else _columns(run.validation, image, label),
        None if run.test is None else _columns(run.test, image, label),
        a,
    )
    data = datasets.DatasetDict({"train": _columns(run.train, image, label), "validation": validation, "test": test})
    try:
        heldout_for_seed(data, a.seeds[0])
    except ValueError as e:
        raise UsageError(
            f"the held-out data ({len(validation) + len(test)} images) cannot be re-partitioned per seed "
            f"with every class in validation and test ({e}); give more held-out images."
        ) from e
    selection = dataclasses.replace(
        selection, forget=_columns(selection.forget, image, label), retain=_columns(selection.retain, image, label)
    )
    if a.image_size:
        _set_image_size(loaded, a.image_size)
    pixels, template = _Pixels(loaded), loaded.model.eval()
    try:
        with torch.no_grad():
            first = data["train"].select(range(min(2, len(data["train"]))))["image"]
            out = logits_of(template, pixels(images=first)["pixel_values"])
        if out.shape[-1] != run.num_labels:
            raise ValueError(f"{out.shape[-1]} logits for {run.num_labels} classes")
    except Exception as e:
        raise UsageError(
            f"the model {a.model} cannot classify the dataset's images ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''}); check --image_size and --image_column_name."
        ) from e
    (source, kind), recipe = default_recipe(len(data["train"]), template)
    given = {
        k: v
        for k, v in (
            ("epochs", a.recipe_epochs),
            ("learning_rate", a.recipe_learning_rate),
            ("batch_size", a.recipe_batch_size),
        )
        if v is not None
    }
    recipe.update(given, image_size=a.image_size)  # None: the model's own processor size
    names = class_names_of(template) or [str(i) for i in range(run.num_labels)]
    identity = dict(model_identity(run.model_path, script.model_revision), new_head=bool(a.new_head))
    data_id = {
        "name": public_name(run.dataset_id),
        "config": script.dataset_config_name,
        "revision": script.dataset_revision,
        "columns": [image, label],
        **{k: v._fingerprint for k, v in data.items()},
    }
    rec = selection.record
    rule = {
        "rule": rec.selection["rule"],
        "params": rec.selection["params"],
        "description": rec.selection["description"],
        "forget_fingerprint": rec.forget_fingerprint,
        "num_removed": rec.num_removed,
    }
    class_mode = bool(a.forget_classes)

    if a.new_head:
        _reset_head(copy.deepcopy(template), 0)  # a model without a head is refused now, not at training time

    def build(family, recipe, names, seed):
        model = copy.deepcopy(template).train()
        if a.new_head:  # the seed draws the new head; every other weight is the starting checkpoint's
            _reset_head(model, seed)
        return model, pixels

    defaults = sorted({"epochs", "learning_rate", "batch_size"} - set(given))
    recipe_text = (
        f"{recipe['epochs']} epoch{'s' if recipe['epochs'] != 1 else ''}, learning rate {recipe['learning_rate']:g}, batch {recipe['batch_size']}"
        f", images at {f'{a.image_size} px' if a.image_size else 'the model processor’s size'}; AdamW "
        "(weight decay 5e-4) with a one-cycle schedule (hf_unlearn.data.builtin.train_classifier)"
    )
    if defaults:
        recipe_text += (
            f"; {', '.join(defaults)} from the built-in recipe ({source}, {kind}): the built-in dataset "
            f"closest in size (≤ {SMALL_TRAIN_ROWS:,} training images: digits, else fashion_mnist) and the "
            "built-in family closest in kind; set --recipe_epochs / --recipe_learning_rate / "
            "--recipe_batch_size"
        )
    head = (
        f" with a new classification head for the dataset's {run.num_labels} classes, drawn from each seed"
        if a.new_head
        else ""
    )
    description = (
        f"**Your model and data.** Starting checkpoint: `{public_name(a.model)}`{head}; dataset: "
        f"`{public_name(run.dataset_id)}` ({len(data['train'])} train, {len(validation)} validation, "
        f"{len(test)} test images). **Original**: the starting checkpoint fine-tuned on the whole train "
        f"split. **Gold**: the same starting checkpoint fine-tuned the same way (same recipe, same seed) on "
        f"the retain set only ({rec.num_retained} images): your model fine-tuned without the forget set "
        f"({rec.num_removed} images: {rec.selection['description']}). **Recipe** (both): {recipe_text}."
        + (f" Held-out data: {note}." if note else "")
    )
    config = _benchmark_config(
        data_id["name"],
        [USER_FAMILY],
        a.seeds,
        a.methods,
        None,
        None,
        a.method_epochs,
        None,
        None,
        a.alpha_search,
        True,
    )
    config.update(model=identity, data=data_id, forget=rule, recipe=recipe, train_size=None)
    grid = GridSource(
        dataset=data_id["name"],
        data=data,
        names=names,
        selection=selection,
        rule=rule,
        recipe=lambda family: recipe,
        build=build,
        method_overrides=lambda method: {},
        description=description,
        cache_key={"model": identity, "data": data_id},
    )
    name = a.name or _default_name(a.model, run.dataset_id, class_mode)
    return grid, config, name, class_mode


def _default_name(model: str, dataset: str, class_mode: bool) -> str:
    from ..records.naming import public_name

    slug = lambda s: "".join(c if c.isalnum() or c in "-_." else "_" for c in public_name(s).split("/")[-1])  # noqa: E731
    return f"{slug(model)}-on-{slug(dataset)}{'-class' if class_mode else ''}"


def run_user_benchmark(a, progress=print) -> dict:
    """The benchmark on ``a.model`` and ``a.dataset`` (the parsed ``hf-unlearn benchmark`` flags); writes
    ``<results_dir>/<name>.json``, ``.md`` and ``.png`` and returns the JSON object. Bad input: :class:`UsageError`
    before any model is trained or any file written."""
    import time

    from .grid import run_grid

    def say(msg: str) -> None:
        progress(f"[benchmark {time.strftime('%H:%M:%S')}] {msg}")

    grid, config, name, class_mode = prepare_user_grid(a, say)
    os.makedirs(a.results_dir, exist_ok=True)
    out = run_grid(
        grid,
        config=config,
        name=name,
        results_dir=a.results_dir,
        json_path=os.path.join(a.results_dir, f"{name}.json"),
        resume=a.resume,
        say=say,
        progress=progress,
        progress_bar=a.progress_bar,
        families=[USER_FAMILY],
        seeds=a.seeds,
        methods=a.methods,
        method_epochs=a.method_epochs,
        class_mode=class_mode,
        alpha_search=a.alpha_search,
        equal_budget=True,
    )
    return out
