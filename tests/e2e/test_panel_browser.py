"""The panel in JupyterLab 4 and Notebook 7 (Debian's headless Chromium): it streams, folds the
reasoning, shows exact usage and errors, and runs nothing a model writes (reopening: test_saved_notebook.py)."""

from __future__ import annotations

import pytest

from tests.e2e.lab import NB, UIS, finished, open_and_run, write

USAGE = {
    "prompt_tokens": 123,
    "completion_tokens": 45,
    "total_tokens": 168,
    "prompt_tokens_details": {"cached_tokens": 67},
    "completion_tokens_details": {"reasoning_tokens": 8},
}
RESPONSES_USAGE = {
    "input_tokens": 123,
    "output_tokens": 45,
    "total_tokens": 168,
    "input_tokens_details": {"cached_tokens": 67},
    "output_tokens_details": {"reasoning_tokens": 8},
}
HOSTILE = (
    'Look: <img src=x onerror="window.__pwned=1"> and <script>window.__pwned=2</script> '
    'and [click me](javascript:window.__pwned=3) and <a href="javascript:window.__pwned=4">this</a>'
)


def stat(page, name):
    return page.locator(f"{NB} .elk-stat[data-stat='{name}'] .elk-stat-value").first.inner_text()


@pytest.mark.parametrize("ui", list(UIS))
@pytest.mark.parametrize("magic", ["chat", "respond"])
def test_reply_streams_reasoning_folds_and_usage_is_exact(page, jupyter, session_gateway, ui, magic):
    words = " ".join(f"word{i}" for i in range(40))
    session_gateway.plan(
        text=words,
        reasoning="thinking about it step by step now",
        delay=0.08,
        usage=USAGE if magic == "chat" else RESPONSES_USAGE,
    )
    name = f"stream_{magic}_{ui}.ipynb"
    write(
        jupyter["root"],
        name,
        f"%load_ext elk_jupyter\nget_ipython().run_cell_magic({magic!r}, '-c browser', 'Stream please')",
    )
    open_and_run(page, jupyter, ui, name)
    finished(page, "completed")
    states = page.evaluate("window.__states")
    assert len([s for s in states if s]) >= 5, states  # several distinct states mid-stream
    assert page.locator(f"{NB} .elk-answer").first.inner_text().strip() == words
    assert page.evaluate("window.__reasoningOpenWhileThinking") is True
    assert page.evaluate("(NB) => document.querySelector(NB + ' details.elk-reasoning').open", NB) is False
    assert "thinking about it step by step now" in page.locator(f"{NB} .elk-reasoning-body").first.text_content()
    assert stat(page, "prompt") == "123 (67 cached)" and stat(page, "completion") == "45 (8 reasoning)"
    assert "8 tokens" in page.locator(f"{NB} details.elk-reasoning summary").first.inner_text()
    header = page.locator(f"{NB} .elk-header").first.inner_text()
    assert "browser" in header and "fake-small-served" in header


@pytest.mark.parametrize("ui", list(UIS))
def test_error_shows_in_the_panel(page, jupyter, session_gateway, ui):
    session_gateway.plan(
        status=401, error_body={"error": {"message": "Invalid key for this project", "type": "auth_error"}}
    )
    name = f"error_{ui}.ipynb"
    write(jupyter["root"], name, "%load_ext elk_jupyter\nget_ipython().run_cell_magic('chat', '', 'Hi')")
    open_and_run(page, jupyter, ui, name)
    finished(page, "error")
    assert "HTTP 401 [auth_error]: Invalid key for this project" in page.locator(f"{NB} .elk-error").first.inner_text()
    page.wait_for_selector(
        f"{NB} .jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']", timeout=30_000
    )


def assert_inert(page):
    """Nothing the model wrote ran: no flag set, no dialog, no script link or handler in the page."""
    assert page.evaluate("window.__pwned") is None
    assert page.dialogs == []
    assert page.evaluate("() => document.querySelectorAll('a[href^=\"javascript\" i], [onerror]').length") == 0


@pytest.mark.parametrize("ui", list(UIS))
def test_hostile_reply_runs_nothing_live(page, jupyter, session_gateway, ui):
    huge = "x" * 20_000  # one unbroken line
    nested = ">" * 60 + " deep " + "\n" + "".join("  " * i + "- level\n" for i in range(40))
    session_gateway.plan(text=HOSTILE + "\n\n" + huge + "\n\n" + nested, words_per_chunk=50)
    name = f"hostile_{ui}.ipynb"
    write(jupyter["root"], name, "%load_ext elk_jupyter\nget_ipython().run_cell_magic('chat', '', 'Be evil')")
    open_and_run(page, jupyter, ui, name)
    finished(page, "completed")
    link = page.locator(f"{NB} .elk-answer a", has_text="click me")
    if link.count():
        link.first.click()
    page.wait_for_timeout(500)
    assert_inert(page)
    answer = page.locator(f"{NB} .elk-answer").first
    assert "Look:" in answer.inner_text() and huge in answer.inner_text().replace("\n", "")
    # readable: the huge line wraps inside the panel instead of widening it
    assert page.evaluate(
        "(NB) => { const p = document.querySelector(NB + ' .elk-panel'); return p.scrollWidth <= p.clientWidth + 2; }",
        NB,
    )
