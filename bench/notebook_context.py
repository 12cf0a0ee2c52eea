"""What issue 17's context costs: a tool step's calls run in parallel (wall time of N calls that
each wait 0.1 s, next to running them one after another: the baseline), and the preview of a
DataFrame (time and size for 10^4..10^6 rows, next to ``str(df)``, what ``${df}`` sent before).

    .venv/bin/python bench/notebook_context.py [--small]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import machine, median_time, table  # noqa: E402
from elk_jupyter.media import notebook_context
from elk_jupyter.tools import functions as tools  # noqa: E402


def wait() -> str:
    time.sleep(0.1)
    return "done"


def tool_step(counts) -> None:
    toolset = {"wait": tools.tool_of(wait)}
    rows = []
    for count in counts:
        calls = [tools.Call(f"c{i}", "wait", "{}") for i in range(count)]
        parallel = median_time(lambda: tools.run_calls(calls, toolset, None), 3)
        one_by_one = median_time(lambda: [tools.run_calls([c], toolset, None) for c in calls], 3)
        rows.append(
            [str(count), f"{parallel * 1000:.0f} ms", f"{one_by_one * 1000:.0f} ms", f"{one_by_one / parallel:.1f}x"]
        )
    print(table(rows, ["calls of 0.1 s", "one step (parallel)", "one by one (baseline)", "speed-up"]))


def previews(sizes) -> None:
    import numpy as np
    import pandas as pd

    rows = []
    for size in sizes:
        frame = pd.DataFrame(
            {"id": np.arange(size), "x": np.random.default_rng(0).random(size), "name": ["abc"] * size}
        )
        preview = median_time(lambda: notebook_context.prompt_text(frame), 5)
        text = notebook_context.prompt_text(frame)
        whole = median_time(lambda: str(frame), 5)
        rows.append(
            [
                f"{size:,}",
                f"{preview * 1000:.2f} ms",
                f"{len(text)} chars",
                f"{whole * 1000:.2f} ms",
                f"{len(str(frame))} chars",
            ]
        )
    print(table(rows, ["rows", "preview", "preview size", "str(df) (baseline)", "str(df) size"]))
    # pandas truncates str(df) by default; many notebooks set display.max_rows = None, and then
    # ${df} sent every row (the preview does not depend on the option).
    frame = pd.DataFrame({"id": np.arange(10_000), "name": ["abc"] * 10_000})
    with pd.option_context("display.max_rows", None):
        size = len(str(frame))
        preview = len(notebook_context.prompt_text(frame))
    print(f"10,000 rows with display.max_rows = None: str(df) {size:,} chars, preview {preview} chars")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", action="store_true")
    small = parser.parse_args().small
    print(f"notebook context · {machine()}")
    tool_step((2, 4) if small else (2, 4, 8))
    previews((10_000, 100_000) if small else (10_000, 100_000, 1_000_000))


if __name__ == "__main__":
    main()
