"""A long saved notebook opened in JupyterLab's default windowing mode (contentVisibility), in which JupyterLab
attaches a notebook's cells in steps: every turn is drawn, and each formula, typeset once its turn is seen, is scaled
to the text around it. Typeset when drawn, in a cell JupyterLab had not attached yet, MathJax measured nothing and
left most formulas unscaled, smaller than their neighbours (bench/saved_notebook.py found it; docs/performance.md §15).
"""

from __future__ import annotations

import json

import nbformat
import pytest
from nbclient import NotebookClient

from tests.e2e.conftest import lab_home, lab_server
from tests.e2e.lab import KERNELSPEC, NB
from tests.e2e.test_saved_notebook import NO_KERNELS, answers, fresh_page, open_saved

pytestmark = pytest.mark.browser
TURNS = 40


def reply(n: int) -> str:
    prose = "Each step reads the stream once and keeps what arrived when it breaks. " * 6
    return f"## Answer {n}\n\n{prose}\n\nThe cost is $O(n)$ in the events, and $\\frac{{a}}{{b}}$ at most.\n\n{prose}"


def test_a_long_notebook_typesets_each_turn_as_it_is_seen_at_the_size_of_its_text(
    browser, jupyter, session_gateway, tmp_path, monkeypatch
):
    for name in ("ELK_API_KEY", "ELK_BASE_URL", "ELK_MODEL", "ELK_REPLAY", "ELK_CACHE_DIR", "PYTHONPATH"):
        monkeypatch.setenv(name, jupyter["env"][name])  # the kernel nbclient starts inherits them
    for n in range(TURNS):
        session_gateway.plan(text=reply(n))
    cells = ["%load_ext elk_jupyter"] + [f"%%chat\nQuestion {n}" for n in range(TURNS)]
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(c) for c in cells], metadata={"kernelspec": KERNELSPEC}
    )
    NotebookClient(nb, kernel_name="python3", timeout=180, store_widget_state=False).execute()
    root, home = tmp_path / "root", tmp_path / "home"
    root.mkdir()
    nbformat.write(nb, str(root / "long.ipynb"))
    env = dict(jupyter["env"], **lab_home(home, jupyter["data"]))
    tracker = home / "settings" / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.write_text(json.dumps({"windowingMode": "contentVisibility"}))  # JupyterLab's default
    with lab_server(root, env, NO_KERNELS, log_name="jupyter-long.log") as base:
        context, page = fresh_page(browser)
        try:
            open_saved(page, base, "lab", "long.ipynb", kernel_dialog=True)
            page.wait_for_function(
                "([NB, n]) => [...document.querySelectorAll(NB + ' .elk-answer')].filter((a) => a.textContent.includes('Answer')).length >= n",
                arg=[NB, TURNS],
                timeout=60_000,
            )
            shown = answers(page)  # each scrolled into view and its formulas typeset
            assert [f"Answer {n}" in text for n, text in enumerate(shown)] == [True] * TURNS
            scales = page.locator(f"{NB} .elk-turn-output mjx-container").evaluate_all(
                "(all) => all.map((m) => m.style.fontSize)"
            )
            assert len(scales) == 2 * TURNS and all(scales), scales
        finally:
            context.close()
