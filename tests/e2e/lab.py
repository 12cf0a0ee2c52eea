"""Driving JupyterLab 4 and Notebook 7 as a user does: open a notebook, wait for its kernel,
run cells from the keyboard or the Run menu, save with Ctrl+S."""

from __future__ import annotations

import json
import time
from pathlib import Path

import nbformat

NB = ".jp-NotebookPanel:not(.lm-mod-hidden)"  # hidden Lab tabs keep their DOM
UIS = {"lab": "/lab/tree/{}?reset", "notebook7": "/notebooks/{}"}
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
KERNEL_READY = """(NB) => {
  const ind = document.querySelector(NB + ' .jp-Notebook-ExecutionIndicator');
  const name = document.querySelector(NB + ' .jp-Toolbar-kernelName');
  return !!ind && ind.dataset.status === 'idle' && !!name && !/no kernel/i.test(name.textContent) && name.textContent.trim() !== '';
}"""
OBSERVE = """(NB) => {
  window.__states = []; window.__reasoningOpenWhileThinking = false;
  const rec = () => {
    const answer = document.querySelector(NB + ' .elk-answer');
    const details = document.querySelector(NB + ' details.elk-reasoning');
    if (!answer) return;
    const text = answer.textContent;
    if (details && !details.hidden && details.open && !text) window.__reasoningOpenWhileThinking = true;
    if (window.__states[window.__states.length - 1] !== text) window.__states.push(text);
  };
  new MutationObserver(rec).observe(document.body, {subtree: true, childList: true, characterData: true, attributes: true});
}"""


def write(root, name, source):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)], metadata={"kernelspec": KERNELSPEC})
    nbformat.write(nb, str(root / name))


def open_and_run(page, jupyter, ui, name):
    page.goto(jupyter["url"] + UIS[ui].format(name))
    page.wait_for_selector(f"{NB} .jp-Cell .cm-content", timeout=90_000)
    page.wait_for_function(KERNEL_READY, arg=NB, timeout=90_000)
    page.evaluate(OBSERVE, NB)
    for _ in range(3):  # the kernel-ready race: retry while the prompt still reads [ ]
        page.locator(f"{NB} .jp-Cell .cm-content").first.click()
        page.keyboard.press("Control+Enter")
        try:
            page.wait_for_function(
                "(NB) => /\\[(\\*|\\d+)\\]/.test(document.querySelector(NB + ' .jp-InputPrompt')?.textContent || '')",
                arg=NB,
                timeout=5_000,
            )
            return
        except Exception:
            continue
    raise AssertionError("the cell never started")


def finished(page, status):
    page.wait_for_selector(f"{NB} .elk-panel[data-status='{status}']", timeout=60_000)
    page.wait_for_timeout(300)  # one more animation frame for the last paint


def run_all(page, jupyter_url: str, ui: str, name: str, cells: int) -> None:
    """Open ``name`` and run every cell through the Run menu, as a user does; wait for them all."""
    page.goto(jupyter_url + UIS[ui].format(name))
    page.wait_for_selector(f"{NB} .jp-Cell .cm-content", timeout=90_000)
    page.wait_for_function(KERNEL_READY, arg=NB, timeout=90_000)
    page.evaluate(OBSERVE, NB)
    for _ in range(3):  # the kernel-ready race: retry while the first prompt still reads [ ]
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
        try:
            page.wait_for_function(
                "(NB) => /\\[(\\*|\\d+)\\]/.test(document.querySelector(NB + ' .jp-InputPrompt')?.textContent || '')",
                arg=NB,
                timeout=5_000,
            )
            break
        except Exception:
            page.keyboard.press("Escape")
    page.wait_for_function(
        """([NB, n]) => [...document.querySelectorAll(NB + ' .jp-Cell.jp-CodeCell .jp-InputPrompt')]
             .slice(0, n).every(p => /\\[\\d+\\]/.test(p.textContent))""",
        arg=[NB, cells],
        timeout=180_000,
    )


def save(page, path: Path, records: int) -> dict:
    """Ctrl+S, as a user saves; wait until the file on disk holds ``records`` turn records."""
    page.locator(f"{NB} .jp-Cell .jp-InputPrompt").first.click()
    page.keyboard.press("Control+s")
    return saved_file(path, records)


def saved_file(path: Path, records: int) -> dict:
    """The notebook on disk once it holds ``records`` turn records (a save takes a moment)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            nb = json.loads(path.read_text())
        except (OSError, ValueError):
            nb = None
        if (
            nb
            and sum('"elk_jupyter"' in json.dumps(o.get("metadata")) for c in nb["cells"] for o in c.get("outputs", []))
            >= records
        ):
            return nb
        time.sleep(0.2)
    raise AssertionError(f"{path.name} was not saved with {records} records")
