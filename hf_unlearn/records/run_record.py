"""One unlearning run, recorded once: :class:`RunRecord`.

The trainer builds it (:func:`record_from_trainer`, ``UnlearningTrainer.run_record``): the method and its
hyperparameters, the training arguments that matter, the removal record, the original model, library versions, seed,
effective batch size (computed here only), runtime (measured once, by ``UnlearningTrainer.train``) and metrics.
``hf_unlearn.publishing.output`` saves it as JSON, :func:`hf_unlearn.publishing.card.render_model_card` renders the card from it (checkpoint
cards and the final card alike) and :func:`load_run_record` reads it back from an output directory.

On disk the record is spread over the output directory's files, unchanged from earlier versions (docs/FORMATS.md,
"The run record"): ``metrics.json`` (``metrics`` plus the ``run`` summary), ``unlearning_config.json`` (method,
hyperparameters, training, seed, versions, original model, dataset, date, provenance), ``removal_record.json`` and
``config.json`` (the library name). A core module: it imports nothing from the card or Hub side.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = [
    "RunRecord",
    "TRAINING_KEYS",
    "effective_batch_size",
    "record_from_trainer",
    "load_run_record",
    "detect_library_name",
    "RECORD_FILES",
]

#: The training arguments a run records (``unlearning_config.json``'s ``training``, the card's ``training``).
TRAINING_KEYS = (
    "learning_rate",
    "optim",
    "optim_args",
    "weight_decay",
    "lr_scheduler_type",
    "num_train_epochs",
    "max_steps",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "max_grad_norm",
    "bf16",
    "fp16",
)
#: The files of an output directory that hold the record (``config.json`` is optional).
RECORD_FILES = ("metrics.json", "removal_record.json", "unlearning_config.json")


def effective_batch_size(args) -> int:
    """Rows per optimiser step over all processes: per-device batch x processes x gradient accumulation steps."""
    return args.per_device_train_batch_size * args.world_size * args.gradient_accumulation_steps


def detect_library_name(config: dict | None) -> str:
    """ "timm" for a `timm.models.save_for_hf` config, else "transformers" (the model-family adapter decides)."""
    from ..modeling.classifiers import family_of_config

    return family_of_config(config).library_name


@dataclass
class RunRecord:
    """Everything recorded about one unlearning run (see the module doc and docs/FORMATS.md)."""

    method: str
    hyperparameters: dict = field(default_factory=dict)
    removal_record: dict = field(default_factory=dict)
    #: ``{"original": {...}, "unlearned": {...}, "gold": {...}?, "alpha_search": {...}?}`` (no ``run`` block)
    metrics: dict = field(default_factory=dict)
    #: ``{"name_or_path", "revision", "sha256", "is_hub_id", "base_model", "license", ...}``
    original_model: dict = field(default_factory=dict)
    library_name: str = "transformers"
    seed: int | None = None
    effective_batch_size: int | None = None
    world_size: int | None = None
    global_steps: int | None = None
    runtime_s: float | None = None
    training: dict | None = None
    library_versions: dict = field(default_factory=dict)
    #: the hf-unlearn version when given explicitly (else ``library_versions["hf-unlearn"]``)
    library_version: str | None = None
    date: str | None = None
    dataset_id: str | None = None
    test_split: str | None = None
    val_split: str | None = None
    #: ``{"parent_model", "requests", "total_removed", "chain_sha256", "weights_sha256"}`` (hf_unlearn.publishing.output)
    provenance: dict | None = None
    #: the engine that really ran, as the accelerator's state reports it (hf_unlearn.training.engines.engine_of):
    #: ``{"name", "distributed_type", "zero_stage", "world_size", "mixed_precision", "requested"}``
    engine: dict | None = None

    def run_summary(self) -> dict:
        """``metrics.json``'s ``run`` block."""
        return {
            "method": self.method,
            "seed": self.seed,
            "effective_batch_size": self.effective_batch_size,
            "world_size": self.world_size,
            "global_steps": self.global_steps,
            "engine": self.engine,
            "library_versions": self.library_versions,
        }

    def metrics_json(self) -> dict:
        """The content of ``metrics.json``: the metrics, then the ``run`` summary."""
        return {**self.metrics, "run": self.run_summary()}

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> RunRecord:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def _plain(obj: Any) -> Any:
    """``obj`` as it reads back from JSON (enums as their value, tuples as lists): what the saved record holds."""
    return json.loads(json.dumps(obj, default=str))


def record_from_trainer(trainer, metrics: dict | None = None) -> RunRecord:
    """The record of ``trainer``'s run; ``metrics`` default to its last ``evaluate_unlearning`` results."""
    from ..modeling.classifiers import family_of
    from ..training.engines import engine_of

    args = trainer.args
    metrics = metrics or trainer.last_unlearning_metrics or {}
    removal = trainer.removal_record
    removal = removal.to_dict() if hasattr(removal, "to_dict") else dict(removal or {})
    from .versions import library_versions

    return RunRecord(
        method=trainer.method.name,
        hyperparameters=trainer.method.hyperparameters(),
        removal_record=removal,
        metrics={k: v for k, v in metrics.items() if k != "run"},
        original_model=trainer.original_model_info,
        library_name=family_of(trainer.model).library_name,
        seed=args.seed,
        effective_batch_size=effective_batch_size(args),
        world_size=args.world_size,
        global_steps=trainer.state.global_step,
        runtime_s=trainer.unlearning_runtime_s,
        training=_plain({k: getattr(args, k) for k in TRAINING_KEYS}),
        library_versions=library_versions(),
        engine=engine_of(trainer.accelerator, args),
    )


def _read_json(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def load_run_record(output_dir: str | os.PathLike) -> RunRecord:
    """The record saved in an output directory (docs/FORMATS.md); FileNotFoundError names a missing file.

    Older or hand-written directories may keep the seed, batch size, versions, date and splits in metrics.json's
    ``run`` block only: unlearning_config.json's value wins, the ``run`` block fills in.
    """
    output_dir = os.fspath(output_dir)
    missing = [n for n in RECORD_FILES if not os.path.isfile(os.path.join(output_dir, n))]
    if missing:
        raise FileNotFoundError(f"{output_dir} is missing {', '.join(missing)} (not an hf-unlearn output directory)")
    metrics = _read_json(os.path.join(output_dir, "metrics.json"))
    removal = _read_json(os.path.join(output_dir, "removal_record.json"))
    config = _read_json(os.path.join(output_dir, "unlearning_config.json"))
    model_config_path = os.path.join(output_dir, "config.json")
    model_config = _read_json(model_config_path) if os.path.isfile(model_config_path) else {}
    run = metrics.get("run") or {}
    return RunRecord(
        method=config.get("method") or run.get("method") or "unknown",
        hyperparameters=config.get("hyperparameters") or {},
        removal_record=removal,
        metrics={k: v for k, v in metrics.items() if k != "run"},
        original_model=dict(config.get("original_model") or {}),
        library_name=detect_library_name(model_config),
        seed=config.get("seed", run.get("seed")),
        effective_batch_size=config.get("effective_batch_size", run.get("effective_batch_size")),
        world_size=run.get("world_size"),
        global_steps=run.get("global_steps"),
        runtime_s=(metrics.get("unlearned") or {}).get("runtime_s"),
        training=config.get("training"),
        library_versions=config.get("library_versions") or run.get("library_versions") or {},
        date=config.get("date") or run.get("date"),
        dataset_id=config.get("dataset_id"),
        test_split=config.get("test_split") or run.get("test_split"),
        val_split=config.get("val_split") or run.get("val_split"),
        provenance=config.get("provenance"),
        engine=run.get("engine"),
    )
