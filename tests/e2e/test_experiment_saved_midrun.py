"""An experiment saved with Ctrl+S while its runs still finish, then reopened with no kernel: the
partial matrix shows the runs done by then and says it is incomplete, not "running…" (nothing will
update it). The live page itself keeps saying "running…" until the last run."""

from __future__ import annotations

import json
import time

import nbformat
import pytest

from tests.e2e.conftest import ARTIFACTS
from tests.e2e.lab import KERNEL_READY, KERNELSPEC, NB, UIS
from tests.e2e.test_experiment_matrix import viewer_server
from tests.e2e.test_saved_notebook import fresh_page, open_saved

MIME = "application/vnd.elk-jupyter.experiment.v1+json"
MATRIX = ".elk-experiment-output .elk-matrix"


def saved_view(path) -> dict | None:
    try:
        outputs = json.loads(path.read_text())["cells"][1].get("outputs", [])
    except (OSError, ValueError, IndexError):
        return None
    return next((o["data"][MIME] for o in outputs if MIME in o.get("data", {})), None)


@pytest.fixture(scope="module")
def midrun(jupyter, session_gateway, browser):
    cases = [{"n": str(i)} for i in range(20)]
    setup = f"%load_ext elk_jupyter\ncases = {cases!r}"
    magic = "%%experiment --cases cases -m fake-small,fake-big --concurrency 2 --name midrun -o res\nCount to $n slowly"
    name = "midrun.ipynb"
    path = jupyter["root"] / name
    cells = [nbformat.v4.new_code_cell(setup), nbformat.v4.new_code_cell(magic)]
    nbformat.write(nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": KERNELSPEC}), str(path))
    session_gateway.plans.clear()
    for _ in range(40):
        session_gateway.plan(text="one two three four", delay=0.1)  # about half a second a run: 10 s in all
    context, page = fresh_page(browser)
    try:
        page.goto(jupyter["url"] + UIS["lab"].format(name))
        page.wait_for_selector(f"{NB} .jp-Cell .cm-content", timeout=90_000)
        page.wait_for_function(KERNEL_READY, arg=NB, timeout=90_000)
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
        page.wait_for_function(
            f"(NB) => /[1-9]\\d*\\/40 runs/.test(document.querySelector(NB + ' {MATRIX}')?.textContent || '')",
            arg=NB,
            timeout=60_000,
        )
        page.locator(f"{NB} .jp-Cell .jp-InputPrompt").first.click()
        page.keyboard.press("Control+s")
        deadline = time.monotonic() + 30
        while (view := saved_view(path)) is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert view is not None and view["live"] is True, "the save did not land while the runs still finished"
        saved = path.read_text()
        # the page that runs it is not fooled: still running after the save
        assert page.locator(f"{NB} .elk-matrix-live").inner_text() == "running…"
        assert page.locator(f"{NB} .elk-matrix-stopped").count() == 0
        page.wait_for_selector(f"{NB} {MATRIX} >> text=40/40 runs", timeout=60_000)
    except Exception:
        page.screenshot(path=str(ARTIFACTS / "midrun_failed.png"), full_page=True)
        raise
    finally:
        context.close()
    path.write_text(saved)
    return {"name": name, "path": path, "view": view}


@pytest.mark.parametrize("ui", list(UIS))
def test_saved_midrun_reopens_as_incomplete(browser, jupyter, midrun, tmp_path_factory, ui):
    done = midrun["view"]["sources"][0]["done"]
    assert 0 < done < 40 and len(midrun["view"]["runs"]) == done
    with viewer_server(jupyter, midrun, tmp_path_factory, trusted=True) as base:
        context, page = fresh_page(browser)
        try:
            open_saved(page, base, ui, midrun["name"], kernel_dialog=True)
            matrix = page.locator(f"{NB} {MATRIX}").first
            matrix.wait_for(timeout=60_000)
            page.wait_for_selector(f"{NB} .elk-matrix-stopped", timeout=10_000)
            assert matrix.locator(".elk-matrix-stopped").inner_text() == "incomplete: saved while running"
            assert matrix.locator(".elk-matrix-live").count() == 0
            assert f"{done}/40 runs" in matrix.locator(".elk-matrix-header").inner_text()
            # every case keeps its row, the missing runs drawn empty
            assert matrix.locator(".elk-matrix-table:not(.elk-matrix-side) tbody th").count() == 20
        except Exception:
            page.screenshot(path=str(ARTIFACTS / f"midrun_reopen_{ui}_failed.png"), full_page=True)
            raise
        finally:
            context.close()


def test_kernel_restarted_midrun_stops_saying_running(jupyter, session_gateway, browser):
    """Restart Kernel while the runs finish: no update will come, so the view must not keep "running…"."""
    cases = [{"n": str(i)} for i in range(20)]
    magic = (
        "%%experiment --cases cases -m fake-small,fake-big --concurrency 2 --replay off --name rs -o res\nRestart $n"
    )
    name = "restarted.ipynb"
    cells = [nbformat.v4.new_code_cell(f"%load_ext elk_jupyter\ncases = {cases!r}"), nbformat.v4.new_code_cell(magic)]
    nbformat.write(
        nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": KERNELSPEC}), str(jupyter["root"] / name)
    )
    session_gateway.plans.clear()
    for _ in range(40):
        session_gateway.plan(text="a b c d", delay=0.1)
    context, page = fresh_page(browser)
    try:
        page.goto(jupyter["url"] + UIS["lab"].format(name))
        page.wait_for_selector(f"{NB} .jp-Cell .cm-content", timeout=90_000)
        page.wait_for_function(KERNEL_READY, arg=NB, timeout=90_000)
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
        page.wait_for_selector(f"{NB} {MATRIX} >> text=/[1-9]\\d*\\/40 runs/", timeout=60_000)
        assert page.locator(f"{NB} .elk-matrix-live").count() == 1
        page.locator(".lm-MenuBar-itemLabel", has_text="Kernel").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Restart Kernel…").first.click()
        page.locator(".jp-Dialog .jp-mod-accept").click()
        stopped = page.locator(f"{NB} .elk-matrix-stopped")
        stopped.wait_for(timeout=15_000)
        assert stopped.inner_text() == "incomplete: stopped before the last run"
        assert page.locator(f"{NB} .elk-matrix-live").count() == 0
    except Exception:
        page.screenshot(path=str(ARTIFACTS / "restarted_failed.png"), full_page=True)
        raise
    finally:
        context.close()
