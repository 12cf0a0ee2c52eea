"""Typesetting a saved turn with many formulas in JupyterLab 4 (real server, Debian's Chromium, no kernel).

Prints the seconds from opening the notebook until JupyterLab's MathJax has typeset every formula, for the
saved-turn renderer (elk_jupyter/labextension, or the one given with --labextension, e.g. an older checkout's:
the renderer before issue 22 called the typesetter once per formula) beside the baseline: the same text as a
plain `text/markdown` output, which JupyterLab typesets in one pass.

    .venv/bin/python bench/math_typeset.py [--formulas 1200] [--labextension DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import machine, table  # noqa: E402

NB = ".jp-NotebookPanel:not(.lm-mod-hidden)"


def answer(formulas: int) -> str:
    lines = [
        f"Step {i}: with $x_{{{i}}} = \\frac{{{i}}}{{2}}$ the sum stays below $\\sqrt{{{i}}}$."
        for i in range(0, formulas, 2)
    ]
    return "\n\n".join(lines)


def notebook(path: Path, data: dict) -> None:
    import nbformat

    output = nbformat.v4.new_output("display_data", data=data)
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("", outputs=[output])]), str(path))


def turn_data(text: str) -> dict:
    from elk_jupyter.display.turn_output import turn_bundle
    from elk_jupyter.gateway.events import Done, TextDelta
    from elk_jupyter.gateway.reply import Reply

    reply = Reply("chat")
    reply.add(TextDelta(text))
    reply.add(Done())
    return turn_bundle(reply, {"endpoint": "chat", "conversation": "bench"}, None)[0]


# Checked once per animation frame from the page's start: when the text is drawn (every formula in the DOM, not yet
# typeset) and when every formula is typeset, in the page's own clock.
CLOCK = """(() => {
  const n = %d, nb = '.jp-NotebookPanel:not(.lm-mod-hidden) ';
  window.__math = {};
  const tick = () => {
    const drawn = document.querySelectorAll(nb + '.elk-math, ' + nb + '.jp-RenderedMarkdown p').length >= n / 2;
    if (drawn && !window.__math.drawn) window.__math.drawn = performance.now();
    if (document.querySelectorAll(nb + 'mjx-container').length >= n) window.__math.done = performance.now();
    else requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
})();"""


def seconds_to_typeset(browser, url: str, formulas: int) -> tuple[float, float]:
    """(seconds until the text is drawn, seconds from then until every formula is typeset)."""
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    context.add_init_script(CLOCK % formulas)
    page = context.new_page()
    try:
        page.goto(url)
        page.wait_for_function("() => window.__math && window.__math.done", timeout=600_000, polling=200)
        marks = page.evaluate("window.__math")
        return marks["drawn"] / 1000, (marks["done"] - marks["drawn"]) / 1000
    finally:
        context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--formulas", type=int, default=1200)
    parser.add_argument("--labextension", type=Path, default=ROOT / "elk_jupyter" / "labextension")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import CHROME_ARGS, CHROMIUM, lab_home, lab_server

    text = answer(args.formulas)
    with tempfile.TemporaryDirectory() as tmp:
        root, home, data = (Path(tmp) / part for part in ("root", "home", "data"))
        root.mkdir()
        shutil.copytree(args.labextension, data / "labextensions" / "elk-jupyter-renderer")
        turn = turn_data(text)
        notebook(root / "turn.ipynb", turn)
        notebook(root / "markdown.ipynb", {"text/markdown": text})
        env = dict(os.environ, **lab_home(home, data))
        rows = []
        with lab_server(root, env, log_name="jupyter-bench-math.log") as base, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROME_ARGS)
            seconds_to_typeset(browser, f"{base}/lab/tree/markdown.ipynb?reset", args.formulas)  # warm the caches
            views = (
                ("turn.ipynb", f"saved-turn renderer ({args.labextension})"),
                ("markdown.ipynb", "baseline: Markdown"),
            )
            for _ in range(2):  # in turn, so both see the same load on a shared machine
                for name, label in views:
                    drawn, typeset = seconds_to_typeset(browser, f"{base}/lab/tree/{name}?reset", args.formulas)
                    rows.append([label, args.formulas, f"{drawn:.1f}", f"{typeset:.1f}"])
            browser.close()
    print(machine())
    print(table(rows, ["view", "formulas", "s until drawn", "s typesetting"]))


if __name__ == "__main__":
    main()
