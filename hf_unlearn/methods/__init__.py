"""Unlearning methods, one per file, each registered by name (see :mod:`hf_unlearn.methods.base`)."""

import importlib
import pkgutil

from ._papers import method_facts, methods_help
from .base import (
    MethodConfig,
    MixtureSpec,
    Paper,
    UnlearningMethod,
    get_method_class,
    list_methods,
    register_method,
)

# Import every module in this package so its @register_method runs.
for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base" and not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "MethodConfig",
    "MixtureSpec",
    "Paper",
    "UnlearningMethod",
    "get_method_class",
    "list_methods",
    "register_method",
    "method_facts",
    "methods_help",
]
