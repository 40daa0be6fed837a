"""Build docs/BENCHMARKS.md from scripts/benchmarks_doc.md.in and the result tables in results/.

The template holds the prose (protocol, caveats, what the numbers say, failures included); each line
``<!-- include results/NAME.md -->`` is replaced by that file, its headings moved two levels down, followed by its
plot when ``results/NAME.png`` exists. ``tests/test_benchmarks_doc.py`` checks that the committed file equals this
output, so the tables cannot drift from results/.

    python scripts/benchmarks_doc.py            # writes docs/BENCHMARKS.md
    python scripts/benchmarks_doc.py --check    # exit 1 if docs/BENCHMARKS.md is out of date
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "scripts" / "benchmarks_doc.md.in"
OUTPUT = ROOT / "docs" / "BENCHMARKS.md"
INCLUDE = re.compile(r"^<!-- include (results/[\w.-]+\.md) -->$")


def _included(relative: str, root: Path) -> str:
    path = root / relative
    lines = []
    for line in path.read_text(encoding="utf-8").rstrip("\n").split("\n"):
        lines.append("##" + line if re.match(r"#+ ", line) else line)
    plot = path.with_suffix(".png")
    if plot.is_file():
        lines += ["", f"![{path.stem}](../{plot.relative_to(root).as_posix()})"]
    return "\n".join(lines)


def build(root: Path = ROOT) -> str:
    out = []
    for line in (root / TEMPLATE.relative_to(ROOT)).read_text(encoding="utf-8").split("\n"):
        match = INCLUDE.match(line)
        out.append(_included(match.group(1), root) if match else line)
    return "\n".join(out).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/BENCHMARKS.md is out of date")
    args = parser.parse_args(argv)
    text = build()
    if args.check:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.is_file() else ""
        if current != text:
            print("docs/BENCHMARKS.md is out of date: run python scripts/benchmarks_doc.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(ROOT)} ({text.count(chr(10))} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
