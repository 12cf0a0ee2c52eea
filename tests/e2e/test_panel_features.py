"""What people expect of a chat view, in JupyterLab 4 and Notebook 7 (Debian's headless Chromium): a long
reply streams block by block and ends exact, code is highlighted and copies as its source, math is typeset
in the saved renderer, n > 1 choices sit side by side (tabs when narrow), tool-call arguments grow live, and
astral characters never show a lone surrogate mid-stream."""

from __future__ import annotations

import json

import pytest

from tests.e2e.lab import NB, UIS, finished, open_and_run, write

# Installed before the page's own scripts: records what the live panel shows while its status is "streaming".
WATCH = """
window.__elk = { live: [], tools: [], lone: [], liveHighlighted: false };
document.addEventListener("DOMContentLoaded", () => {
  new MutationObserver(() => {
    const panel = document.querySelector(".jp-NotebookPanel:not(.lm-mod-hidden) .elk-panel");
    if (!panel) return;
    const answer = panel.querySelector(".elk-answer");
    const args = panel.querySelector(".elk-tool-args")?.textContent;
    for (const text of [answer?.textContent || "", args || ""]) if (!text.isWellFormed()) window.__elk.lone.push(text.slice(-30));
    if (panel.dataset.status !== "streaming") return;
    const state = { h2: answer.querySelectorAll("h2").length, pre: answer.querySelectorAll("pre").length,
      length: answer.textContent.length };
    if (window.__elk.live.at(-1)?.length !== state.length) window.__elk.live.push(state);
    if (answer.querySelector(".hljs-keyword")) window.__elk.liveHighlighted = true;
    if (args !== undefined && window.__elk.tools.at(-1) !== args) window.__elk.tools.push(args);
  }).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
});
"""
CODE = 'def greet(name):\n    return f"Hello, {name} 🦀"  # a comment'


def long_reply(sections: int) -> str:
    parts = []
    for n in range(1, sections + 1):
        parts.append(
            f"## Step {n}\n\nThe **{n}th** point, with 𝑥 and 🦀 and `solve({n})`: each pass keeps its state.\n\n"
            f"- item {n}.1\n- item {n}.2\n\n"
        )
        if n % 3 == 0:
            parts.append(f"```python\ndef step_{n}(x):\n    return x * {n}\n```\n\n")
    return "".join(parts) + "The end of the reply."


def run_turn(page, jupyter, session_gateway, ui, name, magic_line, **plan):
    page.add_init_script(WATCH)
    session_gateway.plan(**plan)
    write(jupyter["root"], name, f"%load_ext elk_jupyter\nget_ipython().run_cell_magic('chat', {magic_line!r}, 'Go')")
    open_and_run(page, jupyter, ui, name)
    finished(page, "completed")


@pytest.mark.parametrize("ui", list(UIS))
def test_a_long_reply_streams_block_by_block_and_ends_exact(page, jupyter, session_gateway, ui):
    text = long_reply(120)  # ~16,000 characters
    run_turn(page, jupyter, session_gateway, ui, f"long_{ui}.ipynb", "", text=text, words_per_chunk=12, delay=0.02)
    seen = page.evaluate("window.__elk")
    live = seen["live"]
    assert len(live) >= 10, live
    # settled blocks stay: headings and code blocks only ever grow in number while the reply streams
    assert all(a["h2"] <= b["h2"] and a["pre"] <= b["pre"] for a, b in zip(live, live[1:], strict=False)), live
    assert seen["lone"] == []
    answer = page.locator(f"{NB} .elk-answer").first
    assert answer.locator("h2").count() == 120 and answer.locator("pre").count() == 40
    # text_content: innerText leaves out chunks the browser skips off screen (content-visibility)
    assert answer.text_content().rstrip().endswith("The end of the reply.")
    assert answer.text_content().count("🦀") == 120


@pytest.mark.parametrize("ui", list(UIS))
def test_code_is_highlighted_and_copy_buttons_copy_the_source(browser, jupyter, session_gateway, ui):
    context = browser.new_context(
        viewport={"width": 1100, "height": 900}, permissions=["clipboard-read", "clipboard-write"]
    )
    page = context.new_page()
    text = f'Here is the function:\n\n```python\n{CODE}\n```\n\nand its data:\n\n```json\n{{"a": [1, 2]}}\n```\n\nDone.'
    try:
        run_turn(page, jupyter, session_gateway, ui, f"code_{ui}.ipynb", "", text=text, delay=0.05)
        assert page.evaluate("window.__elk.liveHighlighted") is True  # the settled block, while the rest streamed
        block = page.locator(f"{NB} .elk-answer .elk-code").first
        page.wait_for_selector(f"{NB} .elk-answer .elk-code .hljs-keyword")  # the saved renderer's lazy grammar
        assert block.locator(".elk-code-lang").inner_text() == "python"
        assert block.locator("code").text_content() == CODE + "\n"
        block.locator("button.elk-copy").click()
        assert page.evaluate("navigator.clipboard.readText()") == CODE
        assert block.locator("button.elk-copy").inner_text() == "Copied"
        whole = page.locator(f"{NB} .elk-actions button.elk-copy").first
        whole.focus()
        page.keyboard.press("Enter")  # a real button: the keyboard works
        page.wait_for_function("() => document.activeElement.textContent === 'Copied'")
        assert page.evaluate("navigator.clipboard.readText()") == text  # the Markdown, not the rendered text
    finally:
        context.close()


@pytest.mark.parametrize("ui", list(UIS))
def test_math_is_typeset_in_the_saved_renderer_and_never_mangled(page, jupyter, session_gateway, ui):
    text = "Inline $a_1 * b_2 * c_3$ and \\(x_i^*\\), then display:\n\n$$\\sum_{i=1}^n i = \\frac{n(n+1)}{2}$$\n\n\\[E = mc^2\\]\n"
    run_turn(page, jupyter, session_gateway, ui, f"math_{ui}.ipynb", "", text=text, words_per_chunk=3, delay=0.02)
    answer = f"{NB} .elk-answer"
    page.wait_for_function(
        "(sel) => document.querySelectorAll(sel + ' .elk-math mjx-container').length === 4", arg=answer, timeout=30_000
    )
    assert page.locator(f"{answer} em, {answer} strong").count() == 0  # the asterisks stayed inside the math
    assert page.locator(f"{answer} .elk-math-display").count() == 2


@pytest.mark.parametrize("ui", list(UIS))
def test_choices_sit_side_by_side_and_become_tabs_when_narrow(page, jupyter, session_gateway, ui):
    run_turn(page, jupyter, session_gateway, ui, f"choices_{ui}.ipynb", "-n 2", text="one two three four")
    columns = page.locator(f"{NB} .elk-choice-columns > .elk-choice")
    assert columns.count() == 2
    titles = [columns.nth(i).locator(".elk-choice-title span").inner_text() for i in range(2)]
    assert titles == ["choice 0 · stop", "choice 1 · stop"]
    first, second = columns.nth(0).bounding_box(), columns.nth(1).bounding_box()
    assert first["x"] + first["width"] <= second["x"] and abs(first["y"] - second["y"]) < 2
    assert columns.nth(1).locator(".elk-choice-body").inner_text().startswith("[1]")
    assert columns.nth(1).locator("button.elk-copy").count() == 1
    page.set_viewport_size({"width": 560, "height": 900})
    tabs = page.locator(f"{NB} .elk-choice-tabs [role=tab]")
    tabs.nth(1).wait_for(state="visible")
    assert columns.nth(0).is_visible() and not columns.nth(1).is_visible()
    tabs.nth(1).click()
    assert columns.nth(1).is_visible() and not columns.nth(0).is_visible()


@pytest.mark.parametrize("ui", list(UIS))
def test_tool_call_arguments_grow_live_and_end_exact(page, jupyter, session_gateway, ui):
    arguments = {"city": "Zürich 🦀", "days": [1, 2, 3, 4, 5], "units": "metric", "details": ["wind", "rain", "sun"]}
    run_turn(
        page,
        jupyter,
        session_gateway,
        ui,
        f"tools_{ui}.ipynb",
        "",
        text="Calling.",
        tool_calls=[("weather", json.dumps(arguments))],
        delay=0.08,
    )
    seen = page.evaluate("window.__elk")
    assert len(seen["tools"]) >= 4, seen["tools"]  # not frozen at the first partial state
    assert all(len(a) < len(b) for a, b in zip(seen["tools"], seen["tools"][1:], strict=False))
    assert seen["lone"] == []
    shown = page.locator(f"{NB} .elk-tool-args").first.text_content()
    assert json.loads(shown) == arguments and shown == json.dumps(arguments, indent=2, ensure_ascii=False)
