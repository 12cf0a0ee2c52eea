"""Hostile math in a real notebook: a kernel runs turns whose answer, reasoning, reported model id and gateway
error carry the hostile-math corpus (tests/fixtures/render_corpus/math-*.md) and prices, plus an experiment table
with costs; the notebook is saved with Ctrl+S and reopened with no kernel in JupyterLab 4 and Notebook 7, trusted,
untrusted and with the renderer disabled. Everywhere: JupyterLab's MathJax typesets the allowed formulas, a
counting server on 127.0.0.1 (every URL in the corpus) receives zero requests, no element carries a src, href or
style pointing at it, and prices read as prices."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys

import nbformat
import pytest

from tests.e2e.conftest import ARTIFACTS, lab_home, lab_server
from tests.e2e.lab import KERNELSPEC, NB, UIS, run_all, save
from tests.e2e.test_saved_notebook import NO_KERNELS, Counter, corpus_texts, fresh_page, open_saved

USAGE = {"prompt_tokens": 123, "completion_tokens": 45}
PRICES = {"fake-small": {"input": 1000.0, "output": 2000.0}}  # 123 * 0.001 + 45 * 0.002 = $0.213 per run
SAFE_FORMULAS = 5  # allowed in the answer: e^{iπ}+1=0, a fraction, the full-width ＼ one, $x$, $y$
PRICE_LINE = "this call cost $0.0012 and the next $0.0034; a plan is $5 or $6 a month, $10-$20 for teams."

# Every element attribute that names the counting server in a way a browser could follow or load.
LEAKS = """([NB, port]) => {
  const found = [];
  for (const node of document.querySelectorAll(NB + ' *')) {
    for (const {name, value} of node.attributes) {
      const n = name.toLowerCase();
      const fetching = ['src', 'srcset', 'href', 'xlink:href', 'style', 'data', 'background', 'poster'].includes(n);
      if (fetching && value.includes('127.0.0.1:' + port)) found.push(node.tagName + ' ' + n + '=' + value);
    }
  }
  for (const node of document.querySelectorAll(NB + ' mjx-container, ' + NB + ' mjx-container *')) {
    const style = node.getAttribute('style') || '';
    if (/url\\s*\\(/i.test(style) || node.matches('img, a, image')) found.push('mathjax ' + node.outerHTML.slice(0, 120));
  }
  return found;
}"""


@pytest.fixture(scope="module")
def counter():
    server = Counter()
    yield server
    server.shutdown()


def hostile(port: int) -> dict[str, str]:
    texts = corpus_texts(port)
    url = f"//127.0.0.1:{port}"
    return {
        "answer": "\n\n".join([texts["math-hostile"], texts["math-obfuscated"], texts["prices"]]),
        "reasoning": texts["math-hostile"],
        "model": f"$\\style{{cursor: url({url}/model), auto}}{{m}}$ at $5 \\href{{{url}/model-href}}{{x}}",
        "error": f'$\\mmlToken{{mglyph}}[src="{url}/error"]{{}}$ costs $5 or $6 \\(\\style{{cursor: url({url}/err)}}{{x}}\\)',
    }


@pytest.fixture(scope="module")
def notebook(jupyter, session_gateway, browser, counter):
    """The notebook run in JupyterLab through the Run menu and saved with Ctrl+S; what the live page showed."""
    texts = hostile(counter.port)
    session_gateway.plan(text=texts["answer"], reasoning=texts["reasoning"], model=texts["model"], usage=USAGE)
    for stem in ("prices", "math-hostile"):
        session_gateway.plan(text=corpus_texts(counter.port)[stem], usage=USAGE)
    error = {"error": {"message": texts["error"], "type": "invalid_request_error", "code": "$5"}}
    session_gateway.plan(status=400, error_body=error)
    cells = [
        "%load_ext elk_jupyter",
        "%%chat --no-context -c math\nSay hostile math",
        "from elk_jupyter import experiment\n"
        f"experiment('Say $t', [{{'t': 'prices'}}, {{'t': 'math'}}], name='prices', prices={PRICES!r},"
        " concurrency=1, progress=False)",
        "%%chat --no-context -c failing\nfail",
    ]
    name = "math.ipynb"
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(c) for c in cells], metadata={"kernelspec": KERNELSPEC}
    )
    nbformat.write(nb, str(jupyter["root"] / name))
    context, page = fresh_page(browser)
    try:
        run_all(page, jupyter["url"], "lab", name, len(cells))
        typeset(page)
        live = check(page, counter)
        save(page, jupyter["root"] / name, 2)
    except Exception:
        page.screenshot(path=str(ARTIFACTS / "math_live_failed.png"), full_page=True)
        raise
    finally:
        context.close()
    return {"name": name, "path": jupyter["root"] / name, "live": live, "texts": texts}


def typeset(page) -> None:
    """Wait until JupyterLab's MathJax has typeset the allowed formulas (and a moment for anything it would load)."""
    page.wait_for_function(
        "([NB, n]) => document.querySelectorAll(NB + ' mjx-container').length >= n",
        arg=[NB, SAFE_FORMULAS],
        timeout=60_000,
    )
    page.wait_for_timeout(1500)


def check(page, counter) -> str:
    """The page's checks: zero requests, no leaking attribute, prices as prices. Returns the notebook's text."""
    assert page.evaluate(LEAKS, [NB, counter.port]) == []
    assert counter.paths == [], counter.paths
    assert page.evaluate("window.__pwned") is None and page.dialogs == []
    text = " ".join(page.locator(NB).first.inner_text().split())
    assert PRICE_LINE in text
    assert "$0.0012" in text  # a model's price in a run's output
    # a cost as a price: a run's ($0.213, the Markdown table) or the column's total of two runs (the matrix view)
    assert "$0.213" in text or "$0.426" in text
    assert "costs $5 or $6" in text  # the gateway's error line
    return text


@pytest.fixture(scope="module")
def viewers(jupyter, notebook, tmp_path_factory):
    """Servers with no kernel: one sharing the notary (trusted), one on another machine (untrusted), one with the
    renderer extension disabled."""
    found = {}
    with contextlib.ExitStack() as stack:
        for kind in ("trusted", "untrusted", "disabled"):
            root = tmp_path_factory.mktemp(f"math-{kind}")
            shutil.copy(notebook["path"], root / notebook["name"])
            home = tmp_path_factory.mktemp(f"math-home-{kind}")
            data = tmp_path_factory.mktemp(f"math-data-{kind}") if kind == "untrusted" else jupyter["data"]
            env = dict(jupyter["env"], **lab_home(home, data))
            if kind == "disabled":
                disable = ["labextension", "disable", "--level=user", "elk-jupyter-renderer"]
                subprocess.run([sys.executable, "-m", "jupyter", *disable], env=env, check=True, capture_output=True)
            found[kind] = stack.enter_context(lab_server(root, env, NO_KERNELS, log_name=f"jupyter-math-{kind}.log"))
        yield found


def test_live_run_typesets_safe_math_and_fetches_nothing(notebook):
    text = notebook["live"]
    assert "\\mmlToken{mglyph}" in text and "\\style{cursor: url(" in text  # refused math, shown as code


@pytest.mark.parametrize("kind", ["trusted", "untrusted", "disabled"])
@pytest.mark.parametrize("ui", list(UIS))
def test_reopened_anywhere_math_fetches_nothing_and_prices_stay_prices(browser, notebook, viewers, counter, ui, kind):
    context, page = fresh_page(browser)
    try:
        open_saved(page, viewers[kind], ui, notebook["name"], kernel_dialog=True)
        typeset(page)
        text = check(page, counter)
        panels = page.locator(f"{NB} .elk-turn-output .elk-panel").count()
        assert panels == (0 if kind == "disabled" else 2)
        assert "\\mmlToken{mglyph}" in text and "\\href{//127.0.0.1" in text  # refused math and model id as text
    except Exception:
        page.screenshot(path=str(ARTIFACTS / f"math_{ui}_{kind}_failed.png"), full_page=True)
        raise
    finally:
        counter.paths.clear()
        context.close()
