"""A notebook whose outputs carry the static bundle of every corpus text, through `jupyter nbconvert` to
HTML (opened in Debian's Chromium) and to Markdown: nothing runs, nothing is fetched from the counting
server on 127.0.0.1, and the code a reader sees is the model's code."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import nbformat
import pytest

from elk_jupyter.display.header import TurnHeader
from elk_jupyter.display.render import static_markdown, static_text
from elk_jupyter.gateway.events import Done, ReasoningDelta, TextDelta, ToolCallDelta
from elk_jupyter.gateway.reply import Reply
from tests.markdown_html import corpus, markdown_it_html, model_code, problems

HEADER = TurnHeader(endpoint="chat", conversation="default", model_asked="m", replayed=False)
HOSTILE_NAME = "get<img src=x onerror=window.__pwned=90>`x`"
HOSTILE_ARGS = '{"q": "<script>window.__pwned=91</script> ```"}'
# Elements nbconvert itself writes around Markdown (Pygments' div/span, a heading's anchor link).
NBCONVERT_OWN = {"div", "span"}
OUTPUT_ELEMENTS = """() => [...document.querySelectorAll('.jp-RenderedMarkdown')].map(out => ({
  tags: [...out.querySelectorAll('*')].map(el => el.tagName.toLowerCase()),
  attrs: [...out.querySelectorAll('*')].flatMap(el => [...el.attributes].map(a => [el.tagName.toLowerCase(), a.name, a.value])),
  code: [...out.querySelectorAll('code, div.highlight > pre')].map(el => el.textContent),
}))"""


class CountingServer(http.server.ThreadingHTTPServer):
    """127.0.0.1 server that counts every request (the corpus points every image and link here)."""

    def __init__(self):
        self.paths: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.paths.append(self.path)
                self.send_response(204)
                self.end_headers()

            do_POST = do_HEAD = do_GET

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.port = self.server_address[1]
        threading.Thread(target=self.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def counter():
    server = CountingServer()
    yield server
    server.shutdown()
    server.server_close()


def _reply(text: str) -> Reply:
    reply = Reply("chat")
    reply.add(TextDelta(text))
    reply.add(Done())
    return reply


def _hostile_reply() -> Reply:
    reply = Reply("chat")
    reply.add(ReasoningDelta("<img src=x onerror=window.__pwned=92> thinking"))
    reply.add(TextDelta("see the tool call"))
    reply.add(ToolCallDelta(index=0, id="call_1", name=HOSTILE_NAME, arguments=HOSTILE_ARGS))
    reply.fail("error", "gateway said \\<img src=x onerror=window.__pwned=93> [x](javascript:window.__pwned=94)")
    reply.model = "<svg onload=window.__pwned=95>"
    return reply


@pytest.fixture(scope="module")
def converted(tmp_path_factory, counter):
    """The notebook, its expected code per output, and what nbconvert made of it."""
    root = tmp_path_factory.mktemp("nbconvert")
    cases = [(_reply(text), model_code(text)) for text in corpus(counter.port).values()]
    cases.append((_hostile_reply(), [HOSTILE_NAME, HOSTILE_ARGS + "\n"]))
    header = replace(HEADER, note="Re-ran this cell: turn t3 replaced <img src=x onerror=window.__pwned=96>")
    cells = []
    for reply, _ in cases:
        data = {"text/markdown": static_markdown(reply, header), "text/plain": static_text(reply, header)}
        output = nbformat.v4.new_output("display_data", data=data, metadata={})
        cells.append(nbformat.v4.new_code_cell("%%chat\n...", outputs=[output]))
    path = root / "turns.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), str(path))
    jupyter = Path(sys.executable).parent / "jupyter"
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(root / "config"), JUPYTER_DATA_DIR=str(root / "data"))
    for target in ("html", "markdown"):
        subprocess.run([str(jupyter), "nbconvert", "--to", target, str(path)], check=True, env=env, capture_output=True)
    return {"cases": cases, "cells": cells, "html": root / "turns.html", "markdown": root / "turns.md"}


def test_nbconvert_html_in_chromium_runs_and_fetches_nothing_and_shows_exact_code(browser, counter, converted):
    context = browser.new_context()
    page = context.new_page()
    attempted, dialogs = [], []
    page.on("request", lambda request: attempted.append(request.url))
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    local = f"127.0.0.1:{counter.port}"

    def only_local(route):
        # The page template's own CDN scripts (MathJax, require.js) cannot be reached from CI anyway;
        # abort them so the load does not wait. Anything for the counting server goes through.
        if route.request.url.startswith("file:") or local in route.request.url:
            route.continue_()
        else:
            route.abort()

    context.route("**/*", only_local)
    try:
        page.goto(converted["html"].as_uri(), wait_until="load")
        page.wait_for_timeout(500)  # let failed loads fire their onerror handlers, if any were live
        outputs = page.evaluate(OUTPUT_ELEMENTS)
        pwned = page.evaluate("window.__pwned")
    finally:
        context.close()
    assert counter.paths == [] and not [url for url in attempted if local in url]
    assert pwned is None and dialogs == []
    assert len(outputs) == len(converted["cases"])
    for output, (_, expected) in zip(outputs, converted["cases"], strict=True):
        assert {tag for tag in output["tags"] if tag not in NBCONVERT_OWN} <= ALLOWED_IN_PAGE, output["tags"]
        for tag, name, value in output["attrs"]:
            assert not name.startswith("on") and name not in ("src", "srcset", "poster", "style", "background")
            if name == "href":
                assert value.lower().startswith(("http:", "https:", "mailto:")) or (
                    tag == "a" and value.startswith("#")
                )
        # Pygments (nbconvert's highlighter) strips a block's final newline; everything else is exact.
        assert [code.rstrip("\n") for code in output["code"]] == [code.rstrip("\n") for code in expected]


ALLOWED_IN_PAGE = {
    *"p em strong code pre a ul ol li blockquote hr br del s details summary".split(),
    *"h1 h2 h3 h4 h5 h6 table thead tbody tr th td".split(),
}


def test_nbconvert_markdown_carries_the_copy_verbatim_and_it_stays_inert(converted):
    markdown = converted["markdown"].read_text()
    for cell in converted["cells"]:
        copy = cell.outputs[0].data["text/markdown"]
        assert copy in markdown
    assert problems(markdown_it_html(markdown)) == []
