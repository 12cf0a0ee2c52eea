"""The experiment matrix as a reader meets it in a saved notebook reopened with no kernel, with data
other than the live test's: long column labels, a scorer with a long reason, a failing column.
The pairs of figures under the compare stay one per line (JupyterLab floats an output's <dt>/<dd>),
the matrix's selects keep their keys in Notebook 7's command mode (the notebook took arrows and
letters: a select never changed, "a" / "b" inserted cells), a dark theme leaves every tinted cell
readable, and a bidi override left open in one case value does not reorder the rest of the case's label."""

from __future__ import annotations

import contextlib
import json

import nbformat
import pytest

from elk_jupyter import Client, experiment
from elk_jupyter.experiments import icontains
from elk_jupyter.experiments.view import bundle
from tests.e2e.conftest import ARTIFACTS, lab_home, lab_server
from tests.e2e.lab import KERNELSPEC, NB
from tests.e2e.test_saved_notebook import NO_KERNELS, fresh_page, open_saved

MATRIX = f"{NB} .elk-experiment-output .elk-matrix"
MODELS = ["model-" + "with-a-long-descriptive-name-" * 3 + n for n in ("one", "two")]
NAME = "matrix-view.ipynb"
RLO = "\u202e"  # right-to-left override, left open


def because(output, case):
    return 0.4, "the answer names a city, but " + "not the one the case asks for; " * 12


@pytest.fixture(scope="module")
def notebook(module_gateway, tmp_path_factory):
    """An experiment run in this process against the local gateway, saved as a kernel would save it."""
    cases = [{"country": c, "capital": k} for c, k in [("France", "Paris"), ("Peru", "Lima"), ("Japan", "Tokyo")]]
    cases.append({"country": "Chile", "capital": RLO + "Santiago"})  # saved with sorted keys: capital first
    for n, city in enumerate(["Paris", "Lyon", "Lima", "Cusco", "Tokyo", "Osaka"] * 2):
        module_gateway.plan(text=f"{city}, answer {n}")  # every output its own: the compare has words to mark
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ELK_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        result = experiment(
            "Capital of $country?",
            cases,
            MODELS,
            repeats=2,
            scorers=[icontains("$capital"), because],
            name="long labels",
            client=Client("sk-matrix-view-e2e-4242", base_url=module_gateway.base_url, model=MODELS[0]),
            progress=False,
            concurrency=1,
            replay="off",
        )
    root = tmp_path_factory.mktemp("matrix-view-root")
    data, metadata = bundle(result)
    cell = nbformat.v4.new_code_cell("res")
    cell.outputs = [nbformat.v4.new_output("display_data", data=data, metadata=metadata)]
    nbformat.write(nbformat.v4.new_notebook(cells=[cell], metadata={"kernelspec": KERNELSPEC}), str(root / NAME))
    return root


@contextlib.contextmanager
def viewer(jupyter, notebook, tmp_path_factory, theme: str | None = None):
    home = tmp_path_factory.mktemp("matrix-view-home")
    env = dict(jupyter["env"], **lab_home(home, jupyter["data"]))
    if theme:
        themes = home / "settings" / "@jupyterlab" / "apputils-extension"
        themes.mkdir(parents=True, exist_ok=True)
        (themes / "themes.jupyterlab-settings").write_text(json.dumps({"theme": theme}))
    with lab_server(notebook, env, NO_KERNELS, log_name="jupyter-matrix-view.log") as base:
        yield base


@pytest.fixture(scope="module")
def light(jupyter, notebook, tmp_path_factory):
    with viewer(jupyter, notebook, tmp_path_factory) as base:
        yield base


def opened(browser, base, ui="notebook7"):
    context, page = fresh_page(browser)
    open_saved(page, base, ui, NAME, kernel_dialog=True)
    page.wait_for_selector(MATRIX, timeout=60_000)
    return context, page, page.locator(MATRIX).first


# Each <dt> starts its own line at the list's left edge, its <dd> right after it.
LINES = """(dl) => {
  const left = dl.getBoundingClientRect().left;
  return [...dl.querySelectorAll('dt')].map((dt) => {
    const style = getComputedStyle(dt);
    return {text: dt.textContent.slice(0, 20), left: Math.round(dt.getBoundingClientRect().left - left), float: style.float};
  });
}"""


def test_compare_figures_and_scores_stay_in_line(browser, light):
    context, page, matrix = opened(browser, light)
    try:
        matrix.get_by_role("button", name="Compare A and B").click()
        pane = matrix.get_by_role("region", name="Compare columns")
        lines = pane.locator("dl.elk-matrix-statistics").evaluate(LINES)
        assert [line["text"][:3] for line in lines][:2] == ["A: ", "B: "]
        assert all(line["left"] == 0 and line["float"] == "none" for line in lines), lines

        matrix.locator("button.elk-cell").first.click()
        detail = matrix.get_by_role("region", name="Run details")
        facts = detail.locator("dl.elk-matrix-statistics").evaluate(LINES)
        assert all(line["left"] == 0 for line in facts), facts
        # the score and the verdict on one line each beside the long reason (they went one character a line)
        lines_of = (
            "(td) => { const r = document.createRange(); r.selectNodeContents(td); return r.getClientRects().length; }"
        )
        for row in detail.locator("table.elk-matrix-scores tbody tr").all():
            assert [td.evaluate(lines_of) for td in row.locator("td").all()[:2]] == [1, 1]
        ARTIFACTS.mkdir(exist_ok=True)
        matrix.screenshot(path=str(ARTIFACTS / "experiment-matrix-long-labels.png"))
    finally:
        context.close()


FOCUSED = "() => document.activeElement?.getAttribute('aria-label')"


@pytest.mark.parametrize("ui", ["notebook7", "lab"])
def test_the_selects_keep_their_keys_in_command_mode(browser, light, ui):
    context, page, matrix = opened(browser, light, ui)
    try:
        cells = page.locator(f"{NB} .jp-Cell")
        show = matrix.get_by_label("Show", exact=True)
        show.focus()
        page.keyboard.press("ArrowDown")  # the notebook moved to the next cell; the select stayed on "all cases"
        assert (show.input_value(), page.evaluate(FOCUSED)) == ("failing", "Show")
        page.keyboard.press("End")
        assert show.input_value() == "changed"
        page.keyboard.press("a")  # type-ahead to "all cases"; the notebook inserted a cell above
        assert show.input_value() == "all" and cells.count() == 1
        page.keyboard.press("b")  # no option: nothing happens (the notebook inserted a cell below)
        assert show.input_value() == "all" and cells.count() == 1
        column_b = matrix.get_by_label("Column B", exact=True)
        column_b.focus()
        page.keyboard.press("ArrowUp")
        assert column_b.input_value() == "0" and page.evaluate(FOCUSED) == "Column B"
        assert matrix.get_by_role("region", name="Compare columns").count() == 0
        page.keyboard.press("Tab")  # Tab still leaves the select
        assert page.evaluate(FOCUSED) == "Compare A and B"
    finally:
        context.close()


# The WCAG contrast ratio of an element's text colour on a background (both as the canvas draws them, so any CSS
# colour syntax the computed style uses is read the same way).
CONTRAST = """([text, back]) => {
  const ctx = document.createElement('canvas').getContext('2d', {willReadFrequently: true});
  const rgb = (color) => { ctx.clearRect(0, 0, 1, 1); ctx.fillStyle = '#000'; ctx.fillStyle = color; ctx.fillRect(0, 0, 1, 1);
    return [...ctx.getImageData(0, 0, 1, 1).data].slice(0, 3); };
  const lum = (c) => { const [r, g, b] = rgb(c).map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const [a, b] = [lum(getComputedStyle(text).color), lum(getComputedStyle(back).backgroundColor)];
  return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
}"""


def test_dark_theme_keeps_tinted_cells_readable(browser, jupyter, notebook, tmp_path_factory):
    with viewer(jupyter, notebook, tmp_path_factory, theme="JupyterLab Dark") as base:
        context, page, matrix = opened(browser, base, "lab")
        try:
            page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'", timeout=30_000)
            failing = matrix.locator("td.elk-cell-fail").first
            pairs = [(failing.locator("button.elk-cell"), failing)]
            matrix.get_by_role("button", name="Compare A and B").click()
            toggle = matrix.get_by_role("button", name="Compare A and B")
            pairs.append((toggle, toggle))
            pane = matrix.get_by_role("region", name="Compare columns")
            for tag in ("ins", "del"):
                if pane.locator(tag).count():
                    pairs.append((pane.locator(tag).first, pane.locator(tag).first))
            assert len(pairs) >= 3, pane.inner_text()
            for text, back in pairs:
                ratio = page.evaluate(CONTRAST, [text.element_handle(), back.element_handle()])
                assert ratio >= 4.5, (text.inner_text()[:40], ratio)
            ARTIFACTS.mkdir(exist_ok=True)
            matrix.screenshot(path=str(ARTIFACTS / "experiment-matrix-dark.png"))
        finally:
            context.close()


# Where a substring of an element's text is drawn: its left edge.
LEFT_OF = """([th, part]) => {
  const node = th.firstChild;
  const at = node.textContent.indexOf(part);
  const range = document.createRange();
  range.setStart(node, at);
  range.setEnd(node, at + 1);
  return at < 0 ? null : range.getBoundingClientRect().left;
}"""


def test_a_bidi_override_stays_in_its_value(browser, light):
    context, page, matrix = opened(browser, light)
    try:
        th = matrix.locator("tbody th", has_text="Santiago")
        label = th.element_handle()
        where = {part: page.evaluate(LEFT_OF, [label, part]) for part in ("capital", "Santiago", "country")}
        # read left to right as written: the override reversed "Santiago, country=Chile" (the other field too)
        assert where["capital"] < where["Santiago"] < where["country"], where
        assert th.inner_text() == "capital=Santiago, country=Chile"
        # the value itself, as it is, in the run's details
        matrix.get_by_role("button", name="Open run: capital=Santiago, country=Chile", exact=False).first.click()
        detail = matrix.get_by_role("region", name="Run details")
        assert RLO + "Santiago" in detail.locator("dd").all_inner_texts()
    finally:
        context.close()
