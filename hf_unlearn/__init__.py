"""hf-unlearn: machine unlearning for Hugging Face image classifiers.

from hf_unlearn import UnlearningArguments, UnlearningTrainer, select_forget
"""

from .data.selection import ForgetSplit, RemovalRecord, commitment, read_ids_file, select_forget
from .methods import MixtureSpec, UnlearningMethod, get_method_class, list_methods, register_method
from .modeling.classifiers import load_classifier, save_classifier
from .publishing import register as _register_publishing  # noqa: E402,F401  the card renderer, Hub publisher and output writer (training/hooks.py)
from .training.alpha_search import search_alpha  # noqa: E402  (needs the trainer)
from .training.arguments import UnlearningArguments
from .training.trainer import NonFiniteLossError, UnlearningTrainer

__version__ = "0.1.0"

__all__ = [
    "UnlearningArguments",
    "UnlearningTrainer",
    "NonFiniteLossError",
    "UnlearningMethod",
    "MixtureSpec",
    "register_method",
    "get_method_class",
    "list_methods",
    "select_forget",
    "ForgetSplit",
    "RemovalRecord",
    "commitment",
    "read_ids_file",
    "load_classifier",
    "save_classifier",
    "metric_path",
    "search_alpha",
]


def metric_path(name: str) -> str:
    """Folder of the ``evaluate`` module ``name`` (``rf_jsd``, ``jsd``, ``mia``) for ``evaluate.load``."""
    from .evaluation.metric_modules import metric_path as _metric_path

    return _metric_path(name)
