"""The experiment view at scale: building its data in the kernel (seconds, bytes per run beside the
record's), the inert Markdown table drawn whole and one live redraw (beside the figures before), then drawing it in a real browser (Debian's Chromium via Playwright, no Jupyter): the first
draw and the median of three redraws (what each live update costs), layout included, of js/matrix.js, paged (100 cases drawn) next to the
baseline of drawing every case (the matrix before paging).

    .venv/bin/python bench/experiment_view.py [--small] [--runs 2000,16000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import machine, table  # noqa: E402
from elk_jupyter.experiments import matrix  # noqa: E402
from elk_jupyter.experiments.redraw import RedrawMemo  # noqa: E402
from elk_jupyter.experiments.results import ExperimentResult, RunResult  # noqa: E402
from elk_jupyter.experiments.scorers import Score  # noqa: E402
from elk_jupyter.experiments.spec import Spec  # noqa: E402
from elk_jupyter.experiments.view import bundle, markdown  # noqa: E402
from elk_jupyter.records.experiment import record_of  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
MARKDOWN_BEFORE = 6.4  # seconds, measured before the escaper's one pass (issue 24)
ORIGIN = "http://bench.invalid"  # every request is answered by the route below: nothing leaves the machine
COLUMNS = 8
# A model's answer as they come: Markdown, code, math, a URL, HTML: every character the escaper handles.
ANSWER = (
    "**The answer is {answer}**, since adding `{c}` to itself doubles it: $x + x = 2x$ (see "
    "https://en.wikipedia.org/wiki/Addition, [ref](#1) or <b>this</b>). | a | b |\n- one_two * {c}"
)
DRAW = """async ([view, limit]) => {
  const { renderMatrix } = window.elkMatrix;
  const host = document.body.appendChild(document.createElement('div'));
  const state = {};
  // Each draw includes the layout it causes (read back at once), as a user waits for both.
  const time = (f) => { const t = performance.now(); f(); host.offsetHeight; return performance.now() - t; };
  time(() => renderMatrix(host, view, {}, state));
  state.limit = limit;
  const first = time(() => renderMatrix(host, view, {}, state));
  const redraws = [0, 1, 2].map(() => time(() => renderMatrix(host, view, {}, state))).sort((a, b) => a - b);
  const rows = host.querySelectorAll('tbody tr').length;
  host.remove();
  return { first, redraw: redraws[1], rows };
}"""


def result_of_size(runs: int) -> ExperimentResult:
    cases = tuple({"question": f"What is {n} + {n}?", "answer": str(2 * n)} for n in range(runs // COLUMNS))
    spec = Spec("bench", ("$question",), cases, tuple(f"model-{i}" for i in range(COLUMNS)))
    done = [
        RunResult(
            c,
            column,
            0,
            f"key-{c}-{column.model}",
            {"model": column.model, "messages": [{"role": "user", "content": case["question"]}]},
            {
                "status": "completed",
                "text": ANSWER.format(answer=case["answer"], c=c),
                "usage": {"prompt_tokens": 14, "completion_tokens": 12},
                "timing": {"total": 0.4},
            },
            scores={"equals": Score(float(c % 3 != 0), c % 3 != 0)},
        )
        for column in spec.columns
        for c, case in enumerate(cases)
    ]
    return ExperimentResult(spec, done, ["equals"])


def markdown_times(result: ExperimentResult) -> tuple[float, float]:
    """Seconds for the whole inert Markdown table drawn once, and for one live redraw of the
    bundle (view data, Markdown, text) after one more run finished, as the runner redraws."""
    start = time.perf_counter()
    markdown(result)
    first = time.perf_counter() - start
    runs, memo = list(result.runs), RedrawMemo()
    bundle(ExperimentResult(result.spec, runs[:-1], result.scorer_names, result.total), final=False, memo=memo)
    start = time.perf_counter()
    bundle(ExperimentResult(result.spec, runs, result.scorer_names, result.total), final=False, memo=memo)
    return first, time.perf_counter() - start


def bundle_js() -> str:
    entry = 'import { renderMatrix } from "./js/matrix.js"; window.elkMatrix = { renderMatrix };'
    esbuild = ROOT / "node_modules" / ".bin" / "esbuild"
    out = subprocess.run(
        [str(esbuild), "--bundle", "--format=iife", "--minify", "--target=es2020"],
        input=entry,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    return out.stdout


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", action="store_true", help="one small size (CI: keeps the script from rotting)")
    parser.add_argument("--runs", default="2000,16000")
    args = parser.parse_args()
    sizes = [400] if args.small else [int(s) for s in args.runs.split(",")]
    print(f"machine: {machine()}\n")
    views, rows = {}, []
    for runs in sizes:
        result = result_of_size(runs)
        start = time.perf_counter()
        view = matrix.view(result, live=True)
        seconds = time.perf_counter() - start
        table_s, redraw_s = markdown_times(result_of_size(runs))  # a fresh result: nothing computed yet
        view_bytes = len(json.dumps(view))
        record_bytes = len(json.dumps(record_of(result)))
        views[runs] = view
        rows.append(
            [
                f"{runs:,}",
                f"{seconds:.2f} s",
                f"{table_s:.2f} s",
                f"{redraw_s:.3f} s",
                f"{view_bytes / runs:.0f} B",
                f"{record_bytes / runs:.0f} B",
            ]
        )
    header = ["runs", "view built (kernel)", "Markdown table, first draw", "live redraw", "view / run"]
    print(table(rows, [*header, "record / run"]))
    print(f"(before issue 24's gaps: the Markdown table of 16,000 runs {MARKDOWN_BEFORE:g} s, a live redraw 6.7 s)")
    from playwright.sync_api import sync_playwright

    files = {
        "/": ("text/html", b"<!DOCTYPE html><meta charset=utf-8><body></body>"),
        "/matrix.js": ("text/javascript", bundle_js().encode()),
    }
    rows = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page()
        page.route(
            f"{ORIGIN}/**", lambda route: route.fulfill(status=200, body=files[route.request.url[len(ORIGIN) :]][1])
        )
        page.goto(ORIGIN + "/")
        page.add_script_tag(url=ORIGIN + "/matrix.js")
        for runs, view in views.items():
            for label, limit in [("every case (before)", 10**9), ("paged, 100 cases", 100)]:
                r = page.evaluate(DRAW, [view, limit])
                rows.append([f"{runs:,}", label, r["rows"], f"{r['first']:.0f} ms", f"{r['redraw']:.0f} ms"])
        browser.close()
    print()
    print(table(rows, ["runs", "drawn", "rows", "first draw", "redraw (a live update)"]))


if __name__ == "__main__":
    main()
