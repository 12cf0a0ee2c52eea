"""A notebook saved the way users save it (Run All, Ctrl+S in JupyterLab 4 / Notebook 7: so it is
trusted), then reopened in a fresh page with no kernel — trusted, untrusted (another machine's
notary), with the renderer extension disabled, and with "save widget state" on. Every reply is a
text of the hostile corpus; a counting HTTP server on 127.0.0.1 must receive no request and no
script may run, live or reopened; the answer reads the same everywhere."""

from __future__ import annotations

import contextlib
import http.server
import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import nbformat
import pytest
from markdown_it import MarkdownIt

from tests.e2e.conftest import ARTIFACTS, REPO, lab_home, lab_server
from tests.e2e.lab import KERNELSPEC, NB, UIS, run_all, save

CORPUS = sorted((REPO / "tests" / "fixtures" / "render_corpus").glob("*.md"))
TURN_MIME = "application/vnd.elk-jupyter.turn.v1+json"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
USAGE = {
    "prompt_tokens": 123,
    "completion_tokens": 45,
    "prompt_tokens_details": {"cached_tokens": 67},
    "completion_tokens_details": {"reasoning_tokens": 8},
}
SAVED_VIEW = ".elk-turn-output .elk-panel"  # the renderer extension's view of a finished turn
NO_KERNELS = "--KernelSpecManager.allowed_kernelspecs=['elk-no-such-kernel']"


class Counter(http.server.ThreadingHTTPServer):
    """Counts every request: anything the page fetches by itself from model text lands here."""

    def __init__(self):
        self.paths: list[str] = []
        counter = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                counter.paths.append(self.path)
                self.send_response(404)
                self.end_headers()

            do_POST = do_GET

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.daemon_threads = True
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return self.server_address[1]


@pytest.fixture(scope="module")
def counter():
    server = Counter()
    yield server
    server.shutdown()


def corpus_texts(port: int) -> dict[str, str]:
    return {path.stem: path.read_text().replace("{PORT}", str(port)) for path in CORPUS}


def code_of(text: str) -> list[str]:
    """The code spans and blocks of ``text`` as a CommonMark parser reads them (what must stay exact)."""
    found = []
    for token in MarkdownIt("commonmark").enable("table").parse(text):
        if token.type in ("fence", "code_block"):
            found.append(token.content.rstrip("\n"))
        for child in token.children or []:
            if child.type == "code_inline":
                found.append(child.content)
    return found


def inert(page, counter) -> None:
    assert page.evaluate("window.__pwned") is None
    assert page.dialogs == []
    assert counter.paths == [], counter.paths
    assert (
        page.evaluate("() => document.querySelectorAll('a[href^=\"javascript\" i], [onerror], [onload]').length") == 0
    )


# True once the saved-turn renderer has typeset every formula of an answer (a live panel has no typesetter).
TYPESET = """(answer) => answer.closest('.elk-turn-output') === null
  || [...answer.querySelectorAll('.elk-math')].every((math) => math.querySelector('mjx-container'))"""


def answers(page) -> list[str]:
    """Each answer as a reader sees it: scrolled into view, so the renderer has typeset its formulas (a turn drawn
    out of sight is typeset when it comes into view)."""
    texts = []
    for answer in page.locator(f"{NB} .elk-answer").all():
        answer.scroll_into_view_if_needed()
        page.wait_for_function(TYPESET, arg=answer.element_handle(), timeout=30_000)
        texts.append(answer.inner_text())
    return texts


def open_saved(page, base: str, ui: str, name: str, kernel_dialog: bool) -> None:
    """Open a saved notebook in a fresh page; a server with no such kernel asks, and we pick none."""
    page.goto(base + UIS[ui].format(name))
    page.wait_for_selector(f"{NB} .jp-Cell", timeout=90_000)
    if kernel_dialog:
        dialog = page.locator(".jp-Dialog")
        dialog.wait_for(timeout=30_000)
        no_kernel = dialog.locator("button", has_text="No Kernel")
        (no_kernel if no_kernel.count() else dialog.locator(".jp-mod-reject")).first.click()


@pytest.fixture(scope="module")
def saved(jupyter, session_gateway, browser, counter, tmp_path_factory):
    """Per UI: the corpus notebook run through the Run menu, saved with Ctrl+S, and what it showed."""
    results = {}
    texts = corpus_texts(counter.port)
    for ui in UIS:
        for text in texts.values():
            session_gateway.plan(text=text, reasoning="thinking <b>hard</b>", usage=USAGE, words_per_chunk=3)
        name = f"corpus_{ui}.ipynb"
        cells = [nbformat.v4.new_code_cell("%load_ext elk_jupyter")]
        cells += [nbformat.v4.new_code_cell(f"%%chat --no-context -c corpus\nSay {stem}") for stem in texts]
        nb = nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": KERNELSPEC})
        nbformat.write(nb, str(jupyter["root"] / name))
        context = browser.new_context(viewport={"width": 1100, "height": 900})
        page = context.new_page()
        page.dialogs = []
        page.on("dialog", lambda d, page=page: (page.dialogs.append(d.message), d.dismiss()))
        try:
            run_all(page, jupyter["url"], ui, name, len(cells))
            page.wait_for_function(
                f"([NB, n]) => document.querySelectorAll(NB + ' {SAVED_VIEW}').length >= n",
                arg=[NB, len(texts)],
                timeout=60_000,
            )
        except Exception:
            page.screenshot(path=str(ARTIFACTS / f"corpus_{ui}_failed.png"), full_page=True)
            raise
        page.wait_for_timeout(500)
        live = answers(page)
        inert(page, counter)
        saved_nb = save(page, jupyter["root"] / name, len(texts))
        context.close()
        results[ui] = {"name": name, "texts": texts, "live": live, "nb": saved_nb, "path": jupyter["root"] / name}
    return results


@pytest.mark.parametrize("ui", list(UIS))
def test_saved_file_holds_the_bundle_and_no_widget(saved, ui):
    nb, texts = saved[ui]["nb"], saved[ui]["texts"]
    raw = saved[ui]["path"].read_text()
    outputs = [o for cell in nb["cells"] for o in cell.get("outputs", []) if o.get("output_type") == "display_data"]
    assert len(outputs) == len(texts)
    for output, text in zip(outputs, texts.values(), strict=True):
        assert set(output["data"]) == {TURN_MIME, "text/markdown", "text/plain"}
        assert "text" not in output["data"][TURN_MIME]  # the renderer reads the answer from the record
        assert output["metadata"]["elk_jupyter"]["turn"]["reply"]["text"] == text  # the exact reply
    assert WIDGET_MIME not in raw and "_esm" not in raw  # no per-turn front-end code, no widget view
    assert len(raw) < 12_000 * len(texts)


@pytest.mark.parametrize("ui", list(UIS))
def test_live_answer_is_exact_and_inert(saved, ui):
    for shown, text in zip(saved[ui]["live"], saved[ui]["texts"].values(), strict=True):
        for code in code_of(text):
            assert code.strip() in shown, (code, shown)


@pytest.fixture(scope="module")
def viewers(jupyter, saved, tmp_path_factory):
    """Servers that open the saved files elsewhere with no kernel: one sharing the notary (the
    notebook is trusted), one on "another machine" (untrusted), one with the renderer disabled."""
    found = {}
    with contextlib.ExitStack() as stack:
        for kind in ("trusted", "untrusted", "disabled"):
            root = tmp_path_factory.mktemp(f"view-{kind}")
            for item in saved.values():
                shutil.copy(item["path"], root / item["name"])
            home = tmp_path_factory.mktemp(f"home-{kind}")
            data = tmp_path_factory.mktemp(f"data-{kind}") if kind == "untrusted" else jupyter["data"]
            env = dict(jupyter["env"], **lab_home(home, data))
            if kind == "disabled":
                subprocess.run(
                    # --level=user: this server's own JUPYTER_CONFIG_DIR, not the environment every server shares
                    [
                        sys.executable,
                        "-m",
                        "jupyter",
                        "labextension",
                        "disable",
                        "--level=user",
                        "elk-jupyter-renderer",
                    ],
                    env=env,
                    check=True,
                    capture_output=True,
                )
            base = stack.enter_context(lab_server(root, env, NO_KERNELS, log_name=f"jupyter-{kind}.log"))
            found[kind] = base
        yield found


def fresh_page(browser):
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    page.dialogs = []
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    return context, page


def trusted(path: Path, data: Path) -> bool:
    from nbformat.sign import NotebookNotary

    return NotebookNotary(data_dir=str(data)).check_signature(nbformat.read(str(path), as_version=4))


@pytest.mark.parametrize("kind", ["trusted", "untrusted"])
@pytest.mark.parametrize("ui", list(UIS))
def test_reopened_with_no_kernel_shows_the_panel_as_it_was(browser, jupyter, saved, viewers, counter, ui, kind):
    assert trusted(saved[ui]["path"], jupyter["data"])  # Ctrl+S in the UI signed it
    context, page = fresh_page(browser)
    try:
        open_saved(page, viewers[kind], ui, saved[ui]["name"], kernel_dialog=True)
        page.wait_for_function(
            f"([NB, n]) => document.querySelectorAll(NB + ' {SAVED_VIEW}').length >= n",
            arg=[NB, len(saved[ui]["texts"])],
            timeout=60_000,
        )
        page.wait_for_timeout(500)
        body = page.locator(NB).first.inner_text()
        assert "Error displaying widget" not in body and "model not found" not in body.lower()
        assert answers(page) == saved[ui]["live"]  # the same answer, word for word, as when it ran
        footer = page.locator(f"{NB} .elk-footer").first.inner_text()
        assert "123" in footer and "67 cached" in footer and "8 reasoning" in footer
        inert(page, counter)
        # An image loads only when asked: one click, one request to the counting server.
        placeholder = page.locator(f"{NB} .elk-answer button.elk-image").first
        placeholder.click()
        page.wait_for_timeout(1000)
        assert len(counter.paths) == 1, counter.paths
    finally:
        counter.paths.clear()
        context.close()


@pytest.mark.parametrize("ui", list(UIS))
def test_renderer_disabled_shows_the_exact_inert_markdown(browser, saved, viewers, counter, ui):
    context, page = fresh_page(browser)
    try:
        open_saved(page, viewers["disabled"], ui, saved[ui]["name"], kernel_dialog=True)
        rendered = page.locator(f"{NB} .jp-OutputArea .jp-RenderedMarkdown")
        page.wait_for_function(
            "([NB, n]) => document.querySelectorAll(NB + ' .jp-OutputArea .jp-RenderedMarkdown').length >= n",
            arg=[NB, len(saved[ui]["texts"])],
            timeout=60_000,
        )
        page.wait_for_timeout(500)
        assert page.locator(f"{NB} .elk-panel").count() == 0
        for index, text in enumerate(saved[ui]["texts"].values()):
            shown = rendered.nth(index)
            codes = shown.locator("code").all_text_contents()
            for code in code_of(text):
                assert any(code.strip() in c for c in codes), (code, codes)
        inert(page, counter)
    finally:
        counter.paths.clear()
        context.close()


def test_save_widget_state_on_keeps_no_widget(browser, jupyter, session_gateway, counter):
    plugin = jupyter["settings"] / "@jupyter-widgets" / "jupyterlab-manager"
    plugin.mkdir(parents=True, exist_ok=True)
    (plugin / "plugin.jupyterlab-settings").write_text('{"saveState": true}')
    session_gateway.plan(text="Widget state on. `x < 5 && y`", usage=USAGE)
    name = "widget_state.ipynb"
    cells = [nbformat.v4.new_code_cell("%load_ext elk_jupyter"), nbformat.v4.new_code_cell("%%chat\nHello")]
    nbformat.write(
        nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": KERNELSPEC}), str(jupyter["root"] / name)
    )
    context, page = fresh_page(browser)
    try:
        run_all(page, jupyter["url"], "lab", name, 2)
        page.wait_for_selector(f"{NB} {SAVED_VIEW}", timeout=60_000)
        nb = save(page, jupyter["root"] / name, 1)
    finally:
        context.close()
        (plugin / "plugin.jupyterlab-settings").unlink()
    raw = json.dumps(nb)
    states = (nb["metadata"].get("widgets") or {}).get("application/vnd.jupyter.widget-state+json", {})
    assert not [m for m in states.get("state", {}).values() if "_esm" in json.dumps(m)]
    assert WIDGET_MIME not in raw and "_esm" not in raw and len(raw) < 20_000
