"""The chat panel in JupyterLab 4 and Notebook 7 (Debian's headless Chromium, a real kernel, the fake
gateway on 127.0.0.1), driven from the keyboard: a streamed reply, a cell run and finished while the
panel streams, Stop, %%chat -c continuing the panel's conversation (the panel showing that turn while
it streams), regenerate, edit & resend with the original restorable, to-cell and code-to-cell adding
cells below the panel, Ctrl+S, the page reloaded and the panel's cell run again (its turns restored,
the next turn kept), then the file reopened with no kernel showing the transcript."""

from __future__ import annotations

import json

import nbformat
import pytest

from tests.e2e.conftest import ARTIFACTS, lab_home, lab_server
from tests.e2e.lab import KERNEL_READY, KERNELSPEC, NB, UIS, open_and_run, save, saved_file

MESSAGE = f"{NB} textarea[aria-label='Message']"
TURNS = f"{NB} .elk-chat-log .elk-chat-turn"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
NO_KERNELS = "--KernelSpecManager.allowed_kernelspecs=['elk-no-such-kernel']"
CODE = "print('from the panel')"
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
    prompts = ["Hello panel", "Talk for a long time", "Hello panel", "Hello edited"]
    assert panel_records(saved) == list(
        zip(prompts, ["completed", "interrupted", "completed", "completed"], strict=True)
    )
    assert prompt_outputs(saved) == ["Hello panel", "Talk for a long time", "Hello panel", "Hello edited"]  # once each
    assert ["".join(c["source"]) for c in saved["cells"][1:3]] == [CODE, "%%chat -c browserchat\nHello panel"]
    try:
        saved = reload_and_continue(page, jupyter, session_gateway, name)
    except Exception:
        page.screenshot(path=str(ARTIFACTS / f"chat_panel_{ui}_reload_failed.png"), full_page=True)
        raise
    statuses = ["completed", "interrupted", "completed", "completed", "completed"]
    assert panel_records(saved) == list(
        zip([*prompts, "After the reload"], statuses, strict=True)
    )  # restored, then kept
    assert prompt_outputs(saved) == [*prompts, "After the reload"]
    panel_outputs = saved["cells"][0]["outputs"]
    raw = (jupyter["root"] / name).read_text()
    assert "_esm" not in raw and "elk-chat" not in raw  # no front-end code in the notebook
    assert WIDGET_MIME not in raw  # no view of a live widget: nothing to show "model not found" for
    placeholder = next(o for o in panel_outputs if "data" in o)  # after the re-run's "already loaded" line
    assert "".join(placeholder["data"]["text/plain"]).startswith('elk chat panel over conversation "browserchat"')
    reopen(browser, jupyter, tmp_path_factory, ui, name)


def prompt_outputs(nb):
    texts = ["".join(o.get("data", {}).get("text/plain", "")) for o in nb["cells"][0]["outputs"]]
    return [t.removeprefix("You: ") for t in texts if t.startswith("You: ")]


def panel_records(nb):
    outputs = nb["cells"][0]["outputs"]
    turns = [o["metadata"]["elk_jupyter"]["turn"] for o in outputs if "elk_jupyter" in o.get("metadata", {})]
    return [(t["prompt"], t["status"]) for t in turns]


def reload_and_continue(page, jupyter, session_gateway, name):
    """The page reloaded (the kernel runs on): the saved notebook shows the panel's turns; its cell run
    again draws the panel over the restored conversation, and a new turn lands in the cell's outputs."""
    page.reload()
    page.wait_for_selector(f"{NB} .jp-Cell .cm-content", timeout=90_000)
    page.wait_for_function(KERNEL_READY, arg=NB, timeout=90_000)
    page.locator(f"{NB} .elk-turn-output .elk-panel").first.wait_for(timeout=30_000)
    run_cell(page, 0)
    box = page.locator(MESSAGE)
    box.wait_for(timeout=60_000)
    page.locator(f"{TURNS}", has_text="And now from a cell").wait_for(timeout=30_000)  # the branch shown last
    session_gateway.plan(text="kept after the reload")
    box.click()
    page.keyboard.type("After the reload")
    page.keyboard.press("Enter")
    page.locator(f"{TURNS} .elk-answer", has_text="kept after the reload").wait_for(timeout=30_000)
    page.wait_for_timeout(500)
    page.keyboard.press("Control+s")  # from the message box, which still has the focus: it saves
    return saved_file(jupyter["root"] / name, 6)


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
    # 4. %%chat -c continues the panel's conversation, and the panel shows the cell's turn as it streams.
    cell_words = " ".join(f"c{i}" for i in range(60))
    session_gateway.plan(text=cell_words, delay=0.05)
    before = len(session_gateway.requests)
    run_cell(page, 2)
    page.wait_for_function(
        "(NB) => (document.querySelector(NB + ' .elk-chat-live .elk-answer')?.textContent || '').includes('c3')", arg=NB
    )
    assert session_gateway.in_flight == 1  # live in the panel while the cell's reply streams
    assert page.locator(f"{NB} .elk-chat-live .elk-chat-prompt").inner_text() == "And now from a cell"
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
    session_gateway.plan(text=f"edited reply\n\n```python\n{CODE}\n```")
    page.locator(f"{NB} button[aria-label^='Edit and resend']").first.click()
    edit = page.locator(f"{NB} textarea[aria-label='Edit message']")
    edit.fill("")
    edit.type("Hello edited")
    page.locator(f"{NB} button[aria-label='Resend edited message']").click()
    page.locator(f"{TURNS} .elk-answer", has_text="edited reply").wait_for(timeout=30_000)
    assert page.locator(f"{NB} .elk-chat-branch").first.inner_text() == "3/3"
    # 7. Code to cell: the reply's code in a new cell below the panel.
    page.locator(f"{NB} button[aria-label^='Code of turn']").first.click()
    page.locator(f"{NB} .elk-chat-notice", has_text="below the panel").wait_for(timeout=5_000)
    assert cell_text(page, 1) == CODE
    for _ in range(2):
        page.locator(f"{NB} button[aria-label='Previous version']").first.click()
        page.wait_for_timeout(500)
    page.locator(f"{TURNS}", has_text="And now from a cell").wait_for(timeout=10_000)  # the original branch
    assert page.locator(f"{NB} .elk-chat-branch").first.inner_text() == "1/3"
    # 8. To cell: the exact cell, added below the panel (after the cell added before it).
    page.screenshot(path=str(ARTIFACTS / f"chat_panel_{ui}_live.png"), full_page=True)
    page.locator(f"{NB} button[aria-label^='Turn'][aria-label$='as a cell below']").first.click()
    page.locator(f"{NB} .elk-chat-notice", has_text="the equivalent cell below").wait_for(timeout=5_000)
    assert [cell_text(page, 1), cell_text(page, 2)] == [CODE, "%%chat -c browserchat\nHello panel"]
    # 9. A narrow output: each turn's actions fold into a menu, a real button that opens them.
    page.set_viewport_size({"width": 440, "height": 900})
    regenerate = page.locator(f"{NB} button[aria-label^='Regenerate turn']").first
    page.wait_for_function("(NB) => document.querySelector(NB + ' .elk-chat.elk-narrow') !== null", arg=NB)
    assert not regenerate.is_visible()
    page.locator(f"{NB} summary[aria-label^='Actions for turn']").first.click()
    regenerate.wait_for(state="visible", timeout=5_000)
    page.set_viewport_size({"width": 1100, "height": 900})
    page.wait_for_function("(NB) => document.querySelector(NB + ' .elk-chat.elk-narrow') === null", arg=NB)
    assert page.locator(f"{NB} button[aria-label^='Fork a new conversation']").last.is_visible()
    page.wait_for_timeout(300)


def cell_text(page, index):
    """A cell's source as its editor holds it (CodeMirror 6: one .cm-line per line)."""
    lines = page.locator(f"{NB} .jp-Cell").nth(index).locator(".cm-line")
    return "\n".join(lines.all_inner_texts())


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
