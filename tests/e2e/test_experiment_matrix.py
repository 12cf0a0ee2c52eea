"""The experiment matrix in a real browser: an experiment run live in JupyterLab 4 against the local
gateway (the view updated in place while runs finish), saved with Ctrl+S, reopened in Notebook 7
with no kernel, then sorted, filtered, a run opened and two columns compared, with keyboard and
mouse. The figures drawn are the Python values of the saved records; hostile case values and
outputs stay inert: a counting server on 127.0.0.1 receives nothing, no dialog, no script."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import nbformat
import pytest

from tests.e2e.conftest import ARTIFACTS, lab_home, lab_server
from tests.e2e.lab import KERNELSPEC, NB, run_all
from tests.e2e.test_saved_notebook import NO_KERNELS, Counter, fresh_page, open_saved

EXPERIMENT_MIME = "application/vnd.elk-jupyter.experiment.v1+json"
EXPERIMENT_KEY = "elk_jupyter_experiment"
MATRIX = ".elk-experiment-output .elk-matrix"
MODELS = ["fake-small", "fake-big"]
INIT = """() => {
  window.__liveSeen = false;
  setInterval(() => {
    if (document.querySelector('.elk-matrix-live')) window.__liveSeen = true;
  }, 20);
}"""


def hostile(port: int) -> str:
    return (
        f"<img src=http://127.0.0.1:{port}/img onerror=window.__pwned=1> <script>window.__pwned=2</script> "
        f"![x](http://127.0.0.1:{port}/md.png) $\\href{{http://127.0.0.1:{port}/tex}}{{t}}$ "
        f"<iframe src=http://127.0.0.1:{port}/frame></iframe> $\\url{{http://127.0.0.1:{port}/url}}$ "
        f'[link](javascript:window.__pwned=3) <a href="javascript:window.__pwned=4">a</a> '
        f"<http://127.0.0.1:{port}/auto> \\(\\href{{javascript:window.__pwned=5}}{{m}}\\) "
        # TeX that builds a fetching element or style if typeset without the math policy's allow-list
        f'$\\mmlToken{{mglyph}}[src="//127.0.0.1:{port}/mglyph"]{{}}$ $\\style{{cursor: url(//127.0.0.1:{port}/style)}}{{x}}$'
    )


@pytest.fixture(scope="module")
def counter():
    server = Counter()
    yield server
    server.shutdown()


def wait_saved(path: Path) -> dict:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            nb = json.loads(path.read_text())
        except (OSError, ValueError):
            nb = None
        outputs = [o for c in (nb or {}).get("cells", []) for o in c.get("outputs", [])]
        if any(EXPERIMENT_KEY in (o.get("metadata") or {}) for o in outputs):
            return nb
        time.sleep(0.2)
    raise AssertionError(f"{path.name} was not saved with the experiment record")


@pytest.fixture(scope="module")
def ran(jupyter, session_gateway, browser, counter):
    """The notebook run through the Run menu in JupyterLab, watched live, saved with Ctrl+S."""
    bad = hostile(counter.port)
    cases = [
        {"country": "France", "capital": "Paris"},
        {"country": bad, "capital": "Lima"},
        {"country": "Japan", "capital": "Tokyo"},
    ]
    texts = ["Paris, of course", "Lyon", f"{bad} Lima", "no idea", "Tokyo", "Kyoto is the old one"]
    texts += ["It is Paris", "Paris", "Lima", f"Lima {bad}", "Tokyo", None]  # None: an HTTP 400
    for text in texts:
        if text is None:
            session_gateway.plan(status=400, error_body={"error": {"message": f"bad request {bad}", "type": "invalid"}})
        else:
            session_gateway.plan(text=text, words_per_chunk=1, delay=0.03)
    setup = (
        "%load_ext elk_jupyter\nfrom elk_jupyter.experiments import icontains\n"
        f"cases = {cases!r}\nscore = icontains('$capital')"
    )
    magic = (
        f"%%experiment --cases cases -m {','.join(MODELS)} --repeats 2 --score score --name capitals "
        "--concurrency 1 -o res\nCapital of $country?"
    )
    cells = [nbformat.v4.new_code_cell(setup), nbformat.v4.new_code_cell(magic)]
    cells.append(nbformat.v4.new_code_cell(f"res.compare({MODELS[0]!r}, {MODELS[1]!r})"))
    # a second experiment (other prompt: the gateway echoes it, so no answer names a capital), then the two diffed
    again = f"%%experiment --cases cases -m {MODELS[0]} --score score --name capitals-2 -o res2\nWhat is the capital of $country?"
    cells += [nbformat.v4.new_code_cell(again), nbformat.v4.new_code_cell("res.diff(res2)")]
    name = "matrix.ipynb"
    nbformat.write(
        nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": KERNELSPEC}), str(jupyter["root"] / name)
    )
    context, page = fresh_page(browser)
    page.add_init_script(f"({INIT})()")
    try:
        run_all(page, jupyter["url"], "lab", name, len(cells))
        page.wait_for_function(f"(NB) => document.querySelectorAll(NB + ' {MATRIX}').length >= 4", arg=NB)
        live_seen = page.evaluate("window.__liveSeen")
        page.locator(f"{NB} .jp-Cell .jp-InputPrompt").first.click()
        page.keyboard.press("Control+s")
        nb = wait_saved(jupyter["root"] / name)
        assert page.evaluate("window.__pwned") is None and page.dialogs == []
    except Exception:
        page.screenshot(path=str(ARTIFACTS / "matrix_live_failed.png"), full_page=True)
        raise
    finally:
        context.close()
    return {"name": name, "nb": nb, "live_seen": live_seen, "path": jupyter["root"] / name}


def python_result(nb: dict, name: str = "capitals"):
    from elk_jupyter.experiments.results import result_of
    from elk_jupyter.records.experiment import iter_experiments, validate

    (record,) = [r for r in iter_experiments(nb) if r["experiment"]["name"] == name]
    assert validate(record) == []
    return result_of(record)


def test_live_view_then_the_saved_bundle(ran, counter):
    assert ran["live_seen"]  # the matrix was drawn while runs were still missing, then updated in place
    outputs = [o for cell in ran["nb"]["cells"] for o in cell.get("outputs", []) if o.get("output_type") != "stream"]
    matrix, compared, _, diffed = [o for o in outputs if EXPERIMENT_MIME in o.get("data", {})]
    assert set(matrix["data"]) == {EXPERIMENT_MIME, "text/markdown", "text/plain"}
    assert matrix["data"][EXPERIMENT_MIME]["live"] is False and len(matrix["data"][EXPERIMENT_MIME]["runs"]) == 12
    assert compared["data"][EXPERIMENT_MIME]["mode"] == "compare"
    assert diffed["data"][EXPERIMENT_MIME]["mode"] == "diff" and diffed["data"][EXPERIMENT_MIME]["comparison"]
    raw = ran["path"].read_text()
    assert "_esm" not in raw and "application/vnd.jupyter.widget-view+json" not in raw
    assert counter.paths == []


@contextlib.contextmanager
def viewer_server(jupyter, ran, tmp_path_factory, trusted: bool):
    """A server with no kernel to give; on the same notary (the notebook stays trusted) or on
    "another machine" (its own notary: untrusted)."""
    root = tmp_path_factory.mktemp("matrix-view")
    (root / ran["name"]).write_text(ran["path"].read_text())
    data = jupyter["data"] if trusted else tmp_path_factory.mktemp("matrix-data")
    env = dict(jupyter["env"], **lab_home(tmp_path_factory.mktemp("matrix-home"), data))
    with lab_server(root, env, NO_KERNELS, log_name=f"jupyter-matrix-{trusted}.log") as base:
        yield base


@pytest.fixture(scope="module")
def viewer(jupyter, ran, tmp_path_factory):
    with viewer_server(jupyter, ran, tmp_path_factory, trusted=True) as base:
        yield base


def rows(matrix) -> list[str]:
    return matrix.locator(".elk-matrix-table:not(.elk-matrix-side) tbody th").all_inner_texts()


def case_label(case: dict) -> str:
    text = ", ".join(f"{k}={v}" for k, v in case.items())
    return text[:80] + "…" if len(text) > 80 else text


def test_reopened_in_notebook7_with_no_kernel(browser, ran, viewer, counter):
    result = python_result(ran["nb"])
    columns = result.spec.columns
    labels = [case_label(c) for c in result.spec.cases]
    context, page = fresh_page(browser)
    try:
        open_saved(page, viewer, "notebook7", ran["name"], kernel_dialog=True)
        page.wait_for_function(f"(NB) => document.querySelectorAll(NB + ' {MATRIX}').length >= 4", arg=NB)
        matrix = page.locator(f"{NB} {MATRIX}").first
        assert rows(matrix) == labels

        # the figures drawn are the Python values of the saved records
        aggregates = result.aggregates()
        shown = matrix.locator("tfoot th").all_inner_texts()
        assert {"pass rate", "mean score", "pass@2", "pass^2"} <= set(shown)
        for row in matrix.locator("tfoot tr").all():
            name = row.locator("th").inner_text()
            if name == "pass rate":  # the value and its Wilson interval, as the statistics computed them
                drawn = row.locator("td").evaluate_all(
                    "tds => tds.map(td => [td.dataset.value, td.dataset.low, td.dataset.high])"
                )
                assert [float(v) for v, _, _ in drawn] == [aggregates[c].pass_rate for c in columns]
                assert [(float(lo), float(hi)) for _, lo, hi in drawn] == [aggregates[c].pass_interval for c in columns]
            if name == "pass^2":
                drawn = [float(v) for v in row.locator("td").evaluate_all("tds => tds.map(td => td.dataset.value)")]
                assert drawn == [aggregates[c].pass_hat_k[2] for c in columns]
            if name == "tokens":
                assert [int(t) for t in row.locator("td").all_inner_texts()] == [aggregates[c].tokens for c in columns]

        # sort by the first column's score, from the keyboard (Enter on the focused header button)
        scores = {}
        for case in range(len(result.spec.cases)):
            values = [r.score for r in result.cell(case, columns[0]) if r.score is not None]
            scores[case] = sum(values) / len(values) if values else None
        expected = sorted(range(len(labels)), key=lambda c: (scores[c] is None, -(scores[c] or 0)))
        sort = matrix.get_by_role("button", name=f"Sort by {MODELS[0]}")
        sort.focus()
        page.keyboard.press("Enter")
        assert rows(matrix) == [labels[c] for c in expected]
        assert matrix.locator("th[aria-sort='descending']").count() == 1

        # filter: failing cases (a run in a shown column that did not pass)
        matrix.get_by_label("Show").select_option("failing")
        failing = [n for n in expected if any(r.passed is False for c in columns for r in result.cell(n, c))]
        assert rows(matrix) == [labels[c] for c in failing]
        matrix.get_by_label("Show").select_option("all")

        # open a run: full output, request body, each score, figures
        run = result.cell(0, columns[1])
        matrix.get_by_role("button", name=f"Open run: {labels[0]}, {MODELS[1]}").click()
        detail = matrix.get_by_role("region", name="Run details")
        text = detail.inner_text()
        assert "Request body" in text and detail.locator("h4").count() == len(run)
        detail.locator("summary", has_text="Request body").first.click()
        assert "Capital of France?" in detail.locator("pre").first.inner_text()
        assert f"{run[0].usage.prompt} prompt + {run[0].usage.completion} completion tokens" in text
        assert ("✓ pass" if run[0].scores["icontains('$capital')"].passed else "✗ fail") in text
        detail.get_by_role("button", name="Close run details").click()
        assert matrix.get_by_role("region", name="Run details").count() == 0

        # a hostile case opened: its outputs shown as text, images as placeholders, then Escape closes it
        matrix.get_by_role("button", name=f"Open run: {labels[1]}, {MODELS[0]}").click()
        detail = matrix.get_by_role("region", name="Run details")
        if any("<script>" in r.text for r in result.cell(1, columns[0])):
            assert "<script>window.__pwned=2</script>" in detail.inner_text()
            assert detail.locator("button.elk-image").count() >= 1
        assert detail.locator("img, iframe, script").count() == 0
        # links only as the chat's policy makes them (a bare http URL, followed on a click), never javascript:
        assert detail.locator("a[href^='javascript' i], [onerror], [onclick]").count() == 0
        hrefs = detail.locator("a[href]").evaluate_all("links => links.map(a => a.getAttribute('href'))")
        assert all(h.startswith(f"http://127.0.0.1:{counter.port}/") for h in hrefs), hrefs
        page.keyboard.press("Escape")
        assert matrix.get_by_role("region", name="Run details").count() == 0

        # the keyboard: one Tab stop in the table, arrows move between cells, Enter opens a run, Escape closes it
        focused = "() => document.activeElement.getAttribute('aria-label')"
        assert matrix.locator("button.elk-cell[tabindex='0']").count() == 1
        shown_rows = rows(matrix)
        matrix.get_by_role("button", name=f"Open run: {shown_rows[0]}, {MODELS[0]}").focus()
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowDown")
        target = f"Open run: {shown_rows[1]}, {MODELS[1]}"
        assert page.evaluate(focused) == target
        assert matrix.locator("button.elk-cell[tabindex='0']").get_attribute("aria-label") == target
        page.keyboard.press("Enter")
        detail = matrix.get_by_role("region", name="Run details")
        assert detail.count() == 1 and MODELS[1] in detail.locator("h3").inner_text()
        page.keyboard.press("Escape")
        assert matrix.get_by_role("region", name="Run details").count() == 0
        assert page.evaluate(focused) == target  # back on the cell that opened it
        page.keyboard.press("Home")
        assert page.evaluate(focused) == f"Open run: {shown_rows[1]}, {MODELS[0]}"

        # compare the two columns: side by side, the changed cases marked, the words that differ
        matrix.get_by_role("button", name="Compare A and B").click()
        pane = matrix.get_by_role("region", name="Compare columns")
        differ = sum(
            bool(a and b and (a[0].text != b[0].text or a[0].passed != b[0].passed))
            for a, b in ((result.cell(n, columns[0]), result.cell(n, columns[1])) for n in range(len(labels)))
        )
        assert f"{differ} of {len(labels)} cases with runs in both" in pane.inner_text()
        assert pane.locator("del").count() + pane.locator("ins").count() > 0
        matrix.get_by_label("Show").select_option("changed")
        assert len(rows(matrix)) == differ

        # the compare output of `res.compare(...)` opens on the same pair
        compared = page.locator(f"{NB} {MATRIX}").nth(1)
        assert compared.get_by_role("region", name="Compare columns").count() == 1

        # `res.diff(res2)`: the two experiments' paired test on the cases both have, as Python computed it
        second = python_result(ran["nb"], "capitals-2")
        paired = result.diff(second).comparison
        diffed = page.locator(f"{NB} {MATRIX}").nth(3)
        pane = diffed.get_by_role("region", name="Compare columns")
        drawn = pane.inner_text()
        test = paired["pass"]
        assert f"{test['a_better']} cases A better, {test['b_better']} B better of {test['cases']}" in drawn
        assert ("too few cases to tell" in drawn) == (test["verdict"] == "too_few"), drawn
        assert f"of {paired['cases']} cases with runs in both" in drawn

        ARTIFACTS.mkdir(exist_ok=True)
        matrix.screenshot(path=str(ARTIFACTS / "experiment-matrix.png"))
        assert page.evaluate("window.__pwned") is None and page.dialogs == []
        hostile_nodes = "img, iframe, script:not([src]):not([type]), [onerror], a[href^='javascript' i]"
        assert page.locator(f"{NB} .elk-matrix").locator(hostile_nodes).count() == 0
        assert counter.paths == [], counter.paths
    except Exception:
        page.screenshot(path=str(ARTIFACTS / "matrix_reopen_failed.png"), full_page=True)
        raise
    finally:
        context.close()


def test_reopened_in_lab_untrusted_draws_the_same_table(browser, jupyter, ran, counter, tmp_path_factory):
    """On another machine the notebook is untrusted: the renderer is safe, so the view is the same."""
    result = python_result(ran["nb"])
    with viewer_server(jupyter, ran, tmp_path_factory, trusted=False) as base:
        context, page = fresh_page(browser)
        try:
            open_saved(page, base, "lab", ran["name"], kernel_dialog=True)
            page.wait_for_function(f"(NB) => document.querySelectorAll(NB + ' {MATRIX}').length >= 2", arg=NB)
            matrix = page.locator(f"{NB} {MATRIX}").first
            assert rows(matrix) == [case_label(c) for c in result.spec.cases]
            matrix.get_by_role("button", name=f"Open run: {case_label(result.spec.cases[1])}, {MODELS[0]}").click()
            assert matrix.get_by_role("region", name="Run details").count() == 1
            assert page.evaluate("window.__pwned") is None and page.dialogs == []
            assert counter.paths == [], counter.paths
        finally:
            context.close()
