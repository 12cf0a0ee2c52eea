"""``elk-jupyter experiments``: list, show and diff experiments saved in a notebook (records only)."""

from __future__ import annotations

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from elk_jupyter import Client, experiment
from elk_jupyter.cli.main import main
from elk_jupyter.experiments import contains
from tests.fake_gateway import FakeGateway

CASES = [{"word": "alpha"}, {"word": "beta"}]


@pytest.fixture
def notebook(tmp_path, monkeypatch):
    monkeypatch.setenv("ELK_CACHE_DIR", str(tmp_path / "cache"))
    gateway = FakeGateway()
    client = Client("sk-cli-experiment-0000", base_url=gateway.base_url, model="m1")
    gateway.plan(text="alpha!")
    gateway.plan(text="beta!")
    first = experiment(
        "Say $word", CASES, name="v1", scorers=[contains("$word")], client=client, concurrency=1, progress=False
    )
    gateway.plan(text="alpha!")
    gateway.plan(text="gamma")
    second = experiment(
        "Say $word now", CASES, name="v2", scorers=[contains("$word")], client=client, concurrency=1, progress=False
    )
    gateway.close()
    cells = []
    for result in (first, second):
        data, metadata = result._repr_mimebundle_()
        cells.append(new_code_cell("...", outputs=[new_output("display_data", data=data, metadata=metadata)]))
    path = tmp_path / "exp.ipynb"
    nbformat.write(new_notebook(cells=cells), path)
    return path


def test_list_show_and_diff(notebook, capsys):
    assert main(["experiments", "list", str(notebook)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in lines] == ["v1", "v2"]
    assert "2 cases × 1 columns × 1 repeats · 2/2 runs · 0 errors" in lines[0]
    assert main(["experiments", "show", str(notebook), "v2"]) == 0
    shown = capsys.readouterr().out
    assert "pass rate 50%" in shown and "case 1: ✗ gamma" in shown
    assert main(["experiments", "diff", str(notebook), "v1", "v2"]) == 0
    diff = capsys.readouterr().out.splitlines()
    assert diff == [
        "v1 -> v2",
        "[m1] pass rate 100% -> 50% · mean score 1.00 -> 0.50",
        "  case 1 repeat 0: score -1.00  'beta!' -> 'gamma'",
    ]


def test_unknown_names_and_bad_files_are_one_line(notebook, tmp_path, capsys):
    assert main(["experiments", "show", str(notebook), "nope"]) == 2
    assert "no experiment 'nope' (the notebook has: v1, v2)" in capsys.readouterr().err
    empty = tmp_path / "empty.ipynb"
    nbformat.write(new_notebook(), empty)
    assert main(["experiments", "list", str(empty)]) == 2
    assert "no valid experiment records" in capsys.readouterr().err
