"""The core imports nothing from the publishing layer or the CLI (hf_unlearn.hooks: Layers)."""

import ast
import pathlib

import pytest

PKG = pathlib.Path(__file__).resolve().parent.parent / "hf_unlearn"
CORE = ["trainer", "splits", "data", "ids_file", "evaluation", "streaming", "modeling", "arguments", "memory", "ranges",
        "metrics_table", "record", "versions", "naming", "hooks", "ledger"]
OUTER = ("cli", "card", "hub", "output", "provenance", "push_", "recompute", "publishing", "benchmark")


def _imports(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            names = [node.module or ""] + ([a.name for a in node.names] if not node.module else [])
            yield from names
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("hf_unlearn."):
            yield node.module.split(".", 1)[1]
        elif isinstance(node, ast.Import):
            yield from (a.name.split(".", 1)[1] for a in node.names if a.name.startswith("hf_unlearn."))


@pytest.mark.parametrize("path", [PKG / f"{m}.py" for m in CORE] + sorted((PKG / "methods").glob("*.py")),
                         ids=lambda p: p.stem)
def test_core_imports_no_publishing_module(path):
    bad = [m for m in _imports(path) if m.split(".")[0].startswith(OUTER)]
    assert not bad, f"{path.name} imports {bad}"


def test_the_package_registers_the_card_and_hub_hooks():
    import hf_unlearn  # noqa: F401
    from hf_unlearn import hooks

    assert hooks.card_renderer() is not None and hooks.publisher() is not None
