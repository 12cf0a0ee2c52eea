"""The Markdown copy stays linear: time to build the inert copy of a 50 / 100 / 200 / 400 KB reply,
next to markdown-it-py rendering the same text to HTML (the parse the copy cannot avoid). Time per KB
should stay flat; a ratio near 1-2x means the re-serialisation costs about as much as the parse.

    .venv/bin/python bench/markdown_copy.py [--small]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import machine, median_time, table  # noqa: E402
from elk_jupyter.display.markdown_copy import _parser, inert_markdown  # noqa: E402

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "render_corpus"
PROSE = (
    "## Step {i}\n\nThe *answer* uses `List<int>` and x < 5 && y, see [docs](https://example.com/{i}) or "
    "https://example.com/bare/{i}. Math $a_{i} < b$ and **bold**.\n\n- item <b>{i}</b>\n- item 2\n\n"
    "```python\nfor k in range({i}):\n    print('<{i}>')\n```\n\n| a | b |\n|---|---|\n| {i} | `x` |\n\n"
)


def reply_of(size: int) -> str:
    hostile = "\n\n".join(path.read_text() for path in sorted(CORPUS.glob("*.md")))
    parts, i, total = [], 0, 0
    while total < size:
        part = PROSE.format(i=i) + (hostile if i % 20 == 0 else "")
        parts.append(part)
        total += len(part)
        i += 1
    return "".join(parts)[:size]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", action="store_true")
    sizes = (50_000, 100_000) if parser.parse_args().small else (50_000, 100_000, 200_000, 400_000)
    print(f"markdown copy · {machine()}")
    md = _parser()
    rows = []
    for size in sizes:
        text = reply_of(size)
        inert_markdown(text)  # warm the parser
        copy = median_time(lambda: inert_markdown(text), 5)
        html = median_time(lambda: md.render(text), 5)
        rows.append(
            [
                f"{size // 1000} KB",
                f"{copy * 1000:.0f} ms",
                f"{copy / size * 1e6:.1f} ms",
                f"{html * 1000:.0f} ms",
                f"{copy / html:.1f}x",
            ]
        )
    print(table(rows, ["reply", "inert copy", "per KB", "markdown-it to HTML (baseline)", "ratio"]))
    line = "x" * 1_000_000
    print(f"one 1 MB line: {median_time(lambda: inert_markdown(line), 3) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
