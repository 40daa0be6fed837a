"""The layering of docs/ARCHITECTURE.md, checked by parsing the imports; and the README's "Add a method" example, run.

* each layer (core, publishing, CLI, benchmark) imports nothing from the layers above it (not even inside a
  function), and every module is in a layer;
* no import cycle among the hf_unlearn modules at any depth (imports inside functions count; TYPE_CHECKING ones don't);
* no .py file in hf_unlearn/ is over 400 lines;
* the README's method example registers a method that the CLI parser and the trainer run.
"""

from __future__ import annotations

import ast
import fnmatch
import re
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "hf_unlearn"
MAX_LINES = 400

#: The layers of docs/ARCHITECTURE.md, bottom up, as module patterns relative to hf_unlearn. A module may import
#: from its own layer and the layers below; every module a layer imports joins that layer's closure.
CORE = [
    "training",
    "training.*",
    "methods",
    "methods.*",
    "data",
    "data.*",
    "modeling",
    "modeling.*",
    "evaluation",
    "evaluation.*",
    "records",
    "records.*",
    "failures",
]
PUBLISHING = ["publishing", "publishing.*"]
CLI = ["cli", "cli.*"]
BENCHMARK = ["benchmark", "benchmark.*"]
#: What each layer must not import (not even inside a function): every layer above it.
LAYERS = {
    "core": (CORE, PUBLISHING + CLI + BENCHMARK),
    "publishing": (PUBLISHING, CLI + BENCHMARK),
    "cli": (CLI, BENCHMARK),
}


def _modules() -> dict[str, Path]:
    """Module name relative to hf_unlearn ("" = the package itself, "methods" = methods/__init__.py) -> file."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _resolve(module: str, node: ast.ImportFrom | ast.Import) -> list[str]:
    """The hf_unlearn modules an import statement in ``module`` loads (names relative to hf_unlearn)."""
    is_package = MODULES[module].name == "__init__.py"
    found = []
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name == "hf_unlearn" or alias.name.startswith("hf_unlearn."):
                found.append(alias.name[len("hf_unlearn.") :] if "." in alias.name else "")
        return [m for m in found if m in MODULES]
    if node.level:
        base = module.split(".") if module else []
        if not is_package:
            base = base[:-1]
        base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
        target = ".".join(base + ([node.module] if node.module else []))
    elif node.module and (node.module == "hf_unlearn" or node.module.startswith("hf_unlearn.")):
        target = node.module[len("hf_unlearn.") :] if "." in node.module else ""
    else:
        return []
    for alias in node.names:  # `from .cli import main` loads the submodule hf_unlearn.cli.main
        sub = f"{target}.{alias.name}" if target else alias.name
        found.append(sub if sub in MODULES else target)
    return [m for m in dict.fromkeys(found) if m in MODULES]


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(module: str, *, top_level_only: bool) -> list[tuple[str, int]]:
    """(imported module, line) for every import in ``module``: all of them, or those run when it is imported
    (module level, including under ``if``/``try`` there; ``if TYPE_CHECKING:`` blocks never run)."""
    tree = ast.parse(MODULES[module].read_text(), filename=str(MODULES[module]))
    if top_level_only:
        nodes, stack = [], list(tree.body)
        while stack:
            node = stack.pop()
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                nodes.append(node)
            elif isinstance(node, ast.If) and not _is_type_checking(node):
                stack += node.body + node.orelse
            elif isinstance(node, ast.Try):
                stack += node.body + node.orelse + node.finalbody + [s for h in node.handlers for s in h.body]
            elif isinstance(node, (ast.With, ast.For, ast.While)):
                stack += node.body
    else:  # every import, inside functions and classes too; only ``if TYPE_CHECKING:`` blocks never run
        nodes, stack = [], [tree]
        while stack:
            node = stack.pop()
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                nodes.append(node)
            elif isinstance(node, ast.If) and _is_type_checking(node):
                stack += node.orelse
            else:
                stack += list(ast.iter_child_nodes(node))
    return [(target, node.lineno) for node in nodes for target in _resolve(module, node) if target != module]


def _matches(module: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(module, p) for p in patterns)


# ---- (a) each layer imports nothing from the layers above it ---------------------------------------------------
def test_every_package_module_belongs_to_a_layer():
    loose = [m for m in MODULES if m not in ("", "__main__") and not _matches(m, CORE + PUBLISHING + CLI + BENCHMARK)]
    assert not loose, f"modules in no layer (move them into a subpackage, docs/ARCHITECTURE.md): {loose}"


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_a_layer_imports_nothing_from_the_layers_above(layer):
    members, above = LAYERS[layer]
    seeds = [m for m in MODULES if _matches(m, members)]
    assert seeds, layer
    closure, queue, violations = set(seeds), list(seeds), []
    while queue:
        module = queue.pop()
        for target, line in _imports(module, top_level_only=False):
            if _matches(target, above):
                violations.append(
                    f"hf_unlearn/{MODULES[module].relative_to(PACKAGE)}:{line} imports hf_unlearn.{target}"
                )
            elif target not in closure:
                closure.add(target)
                queue.append(target)
    assert not violations, f"the {layer} layer imports from a layer above it:\n" + "\n".join(sorted(violations))


def test_the_package_registers_the_card_and_hub_hooks():
    """The core calls the card renderer and the Hub publisher through hf_unlearn.training.hooks; importing the package
    registers them, so a Python user of UnlearningTrainer gets checkpoint cards and push_to_hub as before."""
    import hf_unlearn  # noqa: F401
    from hf_unlearn.training import hooks

    assert hooks.card_renderer() is not None and hooks.publisher() is not None


# ---- (b) no import cycle at any depth ---------------------------------------------------------------------------
def _cycles(graph: dict[str, list[str]]) -> list[str]:
    """One path per strongly connected component of more than one module (Tarjan), printed as a loop."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(module: str) -> None:
        index[module] = low[module] = counter[0]
        counter[0] += 1
        stack.append(module)
        on_stack.add(module)
        for target in graph[module]:
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(" <-> ".join(sorted(component)))

    for module in graph:
        if module not in index:
            visit(module)
    return found


def test_no_import_cycle_at_any_depth():
    """Imports inside functions count: a loop through them is a loop in the layering, even if Python tolerates it."""
    graph = {m: sorted({t for t, _ in _imports(m, top_level_only=False)}) for m in MODULES}
    cycles = _cycles(graph)
    assert not cycles, "import cycles (hf_unlearn.<name>, '' = the package; imports inside functions count):\n" + (
        "\n".join(cycles)
    )


def test_the_cycle_finder_sees_a_loop_through_function_imports():
    assert _cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == ["a <-> b <-> c"]
    assert _cycles({"a": ["b"], "b": []}) == []


def test_the_import_parser_sees_relative_and_function_imports():
    cli_top = {t for t, _ in _imports("cli.main", top_level_only=True)}
    assert {"cli.args", "cli.checks", "cli.load", "cli.run"} <= cli_top
    everywhere = {t for t, _ in _imports("cli.run", top_level_only=False)}
    # inside functions; "" = `from .. import ...` (the package)
    assert {"publishing.saving", "publishing.hub", "training.alpha_search", ""} <= everywhere
    assert "publishing.saving" not in {t for t, _ in _imports("cli.run", top_level_only=True)}


# ---- (c) no file over 400 lines ---------------------------------------------------------------------------------
def test_no_module_over_400_lines():
    long = {
        str(p.relative_to(ROOT)): n for p in MODULES.values() if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"files over {MAX_LINES} lines (split them along their stages): {long}"


# ---- re-exports: the names callers import from the split modules ------------------------------------------------
def test_split_modules_keep_their_names_importable():
    import hf_unlearn.benchmark.protocol as benchmark
    import hf_unlearn.cli.main as cli

    for name in (
        "ScriptArguments",
        "UsageError",
        "parse_args",
        "run_unlearning",
        "load_training_data",
        "_split",
        "_read_ids",
        "describe_failure",
        "library_versions",
        "format_table",
        "EMBEDDED_DEFAULT_PRESET",
        "DEFAULT_FORGET_FRACTION",
        "FINAL_FILES_MARKER",
        "DEBUG_ENV",
        "_run",
    ):
        assert hasattr(cli, name), name
    for name in (
        "run_benchmark",
        "summarize",
        "markdown_report",
        "plot_gap_vs_runtime",
        "load_benchmark_dataset",
        "searches_alpha",
        "alpha_search_summary",
        "RECIPES",
        "PAPER_SEEDS",
    ):
        assert hasattr(benchmark, name), name


# ---- the README's "Add a method" example ------------------------------------------------------------------------
def _readme_method_example() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Extending", 1)[1].split("\n### Add a method", 1)[1].split("\n### ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert blocks, "README.md: no python block under '## Extending' / '### Add a method'"
    return blocks[0]


@pytest.fixture
def readme_method():
    from hf_unlearn.methods import base

    before = dict(base._REGISTRY)
    module = types.ModuleType("readme_method_example")  # a real module: dataclasses look their module up
    sys.modules[module.__name__] = module
    try:
        exec(compile(_readme_method_example(), "README.md (Add a method)", "exec"), module.__dict__)
        added = sorted(set(base._REGISTRY) - set(before))
        assert len(added) == 1, f"the README example should register exactly one method, registered {added}"
        yield added[0]
    finally:
        base._REGISTRY.clear()
        base._REGISTRY.update(before)
        del sys.modules[module.__name__]


def test_readme_method_example_registers_parses_and_trains(readme_method, make_trainer, tmp_path):
    from hf_unlearn import get_method_class
    from hf_unlearn.cli.main import parse_args
    from hf_unlearn.methods import method_facts

    cls = get_method_class(readme_method)
    facts = method_facts(readme_method)
    assert facts["display_name"] and facts["papers"] and facts["papers"][0]["url"].startswith("https://arxiv.org/abs/")
    # the config's fields are flags of the CLI, the training defaults its defaults
    field = next(iter(cls.config_class.__dataclass_fields__))
    default = getattr(cls.config_class(), field)
    script, args, config = parse_args(
        ["--method", readme_method, f"--{field}", str(default / 2), "--output_dir", str(tmp_path / "cli")]
    )
    assert getattr(config, field) == default / 2
    for key, value in cls.training_defaults.items():
        if key in ("learning_rate", "num_train_epochs", "per_device_train_batch_size"):
            assert getattr(args, key) == value
    # and the trainer runs it
    trainer = make_trainer(readme_method, num_train_epochs=1)
    trainer.train()
    assert trainer.state.global_step > 0
