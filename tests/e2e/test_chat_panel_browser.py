"""The chat panel in JupyterLab 4 and Notebook 7 (Debian's headless Chromium, a real kernel, the fake
gateway on 127.0.0.1), driven from the keyboard: a streamed reply, a cell run and finished while the
panel streams, Stop, %%chat -c continuing the panel's conversation (and the panel showing that turn),
regenerate, edit & resend with the original restorable, to-cell, then Ctrl+S and the file reopened
with no kernel showing the transcript."""

from __future__ import annotations

import json

import nbformat
import pytest

from tests.e2e.conftest import ARTIFACTS, lab_home, lab_server
from tests.e2e.lab import KERNELSPEC, NB, UIS, open_and_run, save

MESSAGE = f"{NB} textarea[aria-label='Message']"
TURNS = f"{NB} .elk-chat-log .elk-chat-turn"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
NO_KERNELS = "--KernelSpecManager.allowed_kernelspecs=['elk-no-such-kernel']"
CELL_PROBE = (
    "import time\n_t = time.perf_counter()\nsum(range(1000))\nprint('cell done', f'{time.perf_counter() - _t:.3f}')"
)


def notebook(root, name):
    cells = [
        nbformat.v4.new_code_cell("%load_ext elk_jupyter\n%elk panel -c browserchat"),
        nbformat.v4.new_code_cell(CELL_PROBE),
        nbformat.v4.new_code_cell("%%chat -c browserchat\nAnd now from a cell"),
    ]
    nbformat.write(nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": KERNELSPEC}), str(root / name))


def run_cell(page, index):
    page.locator(f"{NB} .jp-CodeCell .jp-InputPrompt").nth(index).click()
    page.keyboard.press("Control+Enter")


def turn_statuses(page):
    return page.locator(f"{TURNS} .elk-panel").evaluate_all("(nodes) => nodes.map((n) => n.dataset.status)")


def live_text(page):
    return (
        page.locator(f"{NB} .elk-chat-live .elk-answer").first.inner_text()
        if page.locator(f"{NB} .elk-chat-live .elk-answer").count()
        else ""
    )


@pytest.mark.parametrize("ui", list(UIS))
def test_chat_panel_from_the_keyboard_then_saved_and_reopened(
    page, browser, jupyter, session_gateway, ui, tmp_path_factory
):
    name = f"chat_panel_{ui}.ipynb"
    notebook(jupyter["root"], name)
    try:
        run_session(page, jupyter, session_gateway, ui, name)
    except Exception:
        page.screenshot(path=str(ARTIFACTS / f"chat_panel_{ui}_failed.png"), full_page=True)
        raise
    saved = save(page, jupyter["root"] / name, 5)
    panel_outputs = saved["cells"][0]["outputs"]
    records = [o["metadata"]["elk_jupyter"]["turn"] for o in panel_outputs if "elk_jupyter" in o.get("metadata", {})]
    assert [r["prompt"] for r in records] == ["Hello panel", "Talk for a long time", "Hello panel", "Hello edited"]
    assert [r["status"] for r in records] == ["completed", "interrupted", "completed", "completed"]
    raw = (jupyter["root"] / name).read_text()
    assert "_esm" not in raw and "elk-chat" not in raw  # no front-end code in the notebook
    assert WIDGET_MIME not in raw  # no view of a live widget: nothing to show "model not found" for
    assert "".join(panel_outputs[0]["data"]["text/plain"]).startswith('elk chat panel over conversation "browserchat"')
    reopen(browser, jupyter, tmp_path_factory, ui, name)


def run_session(page, jupyter, session_gateway, ui, name):
    open_and_run(page, jupyter, ui, name)
    box = page.locator(MESSAGE)
    box.wait_for(timeout=60_000)
    # 1. A streamed reply, typed; focus stays in the box; a cell runs and finishes while it streams.
    words = " ".join(f"w{i}" for i in range(50))
    session_gateway.plan(text=words, delay=0.08)
    box.click()
    page.keyboard.type("Hello panel")
    page.keyboard.press("Enter")
    page.wait_for_function("(sel) => document.activeElement === document.querySelector(sel)", arg=MESSAGE)
    assert box.input_value() == ""
    page.wait_for_function(
        "(NB) => (document.querySelector(NB + ' .elk-chat-live .elk-answer')?.textContent || '').length > 10", arg=NB
    )
    run_cell(page, 1)
    page.locator(f"{NB} .jp-OutputArea-output", has_text="cell done").wait_for(timeout=10_000)
    assert page.locator(f"{NB} .elk-chat-live .elk-answer").count() == 1  # still streaming meanwhile
    assert live_text(page).strip() != words
    page.locator(f"{TURNS} .elk-panel[data-status='completed']").first.wait_for(timeout=30_000)
    assert page.locator(f"{TURNS} .elk-answer").first.inner_text().strip() == words
    # 2. Stop (Esc in the box): the partial reply stays, marked interrupted.
    session_gateway.plan(text=" ".join(f"s{i}" for i in range(400)), delay=0.05)
    box.click()
    page.keyboard.type("Talk for a long time")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "(NB) => (document.querySelector(NB + ' .elk-chat-live .elk-answer')?.textContent || '').length > 20", arg=NB
    )
    page.keyboard.press("Escape")
    page.locator(f"{TURNS} .elk-panel[data-status='interrupted']").wait_for(timeout=10_000)
    assert "interrupted by the user" in page.locator(f"{NB} .elk-chat-notice").inner_text()
    partial = page.locator(f"{TURNS} .elk-panel[data-status='interrupted'] .elk-answer").inner_text().split()
    assert partial[:2] == ["s0", "s1"] and len(partial) < 400
    # 3. Up recalls the last prompt.
    box.click()
    page.keyboard.press("ArrowUp")
    assert box.input_value() == "Talk for a long time"
    box.fill("")
    # 4. %%chat -c continues the panel's conversation, and the panel shows the cell's turn.
    session_gateway.plan(text="cell reply")
    before = len(session_gateway.requests)
    run_cell(page, 2)
    page.locator(f"{TURNS}", has_text="And now from a cell").wait_for(timeout=30_000)
    sent = session_gateway.requests[before]["body"]["messages"]
    assert [m["content"] for m in sent] == ["Hello panel", words, "And now from a cell"]
    # 5. Regenerate the first turn: a sibling, switchable back.
    session_gateway.plan(text="another sample")
    page.locator(f"{NB} button[aria-label^='Regenerate turn']").first.click()
    page.locator(f"{TURNS} .elk-answer", has_text="another sample").wait_for(timeout=30_000)
    assert page.locator(f"{TURNS}").count() == 1
    assert page.locator(f"{NB} .elk-chat-branch").first.inner_text() == "2/2"
    # 6. Edit & resend the first message: a new branch from the same point; the others stay restorable.
    session_gateway.plan(text="edited reply")
    page.locator(f"{NB} button[aria-label^='Edit and resend']").first.click()
    edit = page.locator(f"{NB} textarea[aria-label='Edit message']")
    edit.fill("")
    edit.type("Hello edited")
    page.locator(f"{NB} button[aria-label='Resend edited message']").click()
    page.locator(f"{TURNS} .elk-answer", has_text="edited reply").wait_for(timeout=30_000)
    assert page.locator(f"{NB} .elk-chat-branch").first.inner_text() == "3/3"
    for _ in range(2):
        page.locator(f"{NB} button[aria-label='Previous version']").first.click()
        page.wait_for_timeout(500)
    page.locator(f"{TURNS}", has_text="And now from a cell").wait_for(timeout=10_000)  # the original branch
    assert page.locator(f"{NB} .elk-chat-branch").first.inner_text() == "1/3"
    # 7. To cell: the exact cell text, on the clipboard, and said so.
    page.screenshot(path=str(ARTIFACTS / f"chat_panel_{ui}_live.png"), full_page=True)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.locator(f"{NB} button[aria-label^='Copy turn']").first.click()
    page.locator(f"{NB} .elk-chat-notice", has_text="clipboard").wait_for(timeout=5_000)
    assert page.evaluate("navigator.clipboard.readText()") == "%%chat -c browserchat\nHello panel"
    page.wait_for_timeout(300)


def reopen(browser, jupyter, tmp_path_factory, ui, name):
    """The saved file on a server with no kernels (sharing the notary: trusted): the transcript."""
    root = tmp_path_factory.mktemp(f"chat-view-{ui}")
    (root / name).write_text((jupyter["root"] / name).read_text())
    env = dict(jupyter["env"], **lab_home(tmp_path_factory.mktemp(f"chat-home-{ui}"), jupyter["data"]))
    with lab_server(root, env, NO_KERNELS, log_name=f"jupyter-chat-{ui}.log") as base:
        context = browser.new_context(viewport={"width": 1100, "height": 900})
        page = context.new_page()
        try:
            page.goto(base + UIS[ui].format(name))
            page.wait_for_selector(f"{NB} .jp-Cell", timeout=90_000)
            dialog = page.locator(".jp-Dialog")
            dialog.wait_for(timeout=30_000)
            no_kernel = dialog.locator("button", has_text="No Kernel")
            (no_kernel if no_kernel.count() else dialog.locator(".jp-mod-reject")).first.click()
            page.wait_for_function(
                "(NB) => document.querySelectorAll(NB + ' .elk-turn-output .elk-panel').length >= 5", arg=NB
            )
            page.wait_for_timeout(3000)  # the widget manager settles: a live view would now say "not found"
            body = page.locator(NB).first.inner_text()
            page.screenshot(path=str(ARTIFACTS / f"chat_panel_{ui}_reopened.png"), full_page=True)
            assert "Error displaying widget" not in body and "model not found" not in body.lower()
            assert "Loading widget" not in body
            assert "Hello panel" in body and "Talk for a long time" in body
            assert json.dumps(body).count("another sample") == 1 and "edited reply" in body
        finally:
            context.close()
