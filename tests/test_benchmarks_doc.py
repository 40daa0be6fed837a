"""docs/BENCHMARKS.md is generated from results/ (it cannot drift), and README.md stays a short front page."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _script():
    spec = importlib.util.spec_from_file_location("benchmarks_doc", ROOT / "scripts" / "benchmarks_doc.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmarks_doc_equals_what_the_script_generates():
    expected = _script().build()
    actual = (ROOT / "docs" / "BENCHMARKS.md").read_text(encoding="utf-8")
    assert actual == expected, "docs/BENCHMARKS.md is out of date: run python scripts/benchmarks_doc.py"


def test_benchmarks_doc_includes_every_result_table_it_names():
    template = (ROOT / "scripts" / "benchmarks_doc.md.in").read_text(encoding="utf-8")
    included = re.findall(r"^<!-- include (results/[\w.-]+\.md) -->$", template, flags=re.M)
    assert included, "the template includes no result file"
    doc = (ROOT / "docs" / "BENCHMARKS.md").read_text(encoding="utf-8")
    for name in included:
        assert (ROOT / name).is_file(), name
        first_heading = next(line for line in (ROOT / name).read_text().splitlines() if line.startswith("# "))
        assert "##" + first_heading in doc, name
    assert "<!-- include" not in doc


def test_readme_is_a_short_front_page_without_issue_references():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) < 250
    assert not re.search(r"\bissues?\b\s*#?\d+", readme, flags=re.I), re.findall(
        r".{30}\bissues?\b\s*#?\d+.{10}", readme, re.I
    )
    assert "(docs/BENCHMARKS.md" in readme
