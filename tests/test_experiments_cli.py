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
        "[m1] pass rate 100% [34%–100%] -> 50% [9%–91%] · mean score 1.00 [1.00–1.00] -> 0.50 [0.00–1.00]",
        "  pass rate: +50% (before better in 1 of 2 cases, after in 0): too few cases to tell — "
        "the test needs at least 6 cases that differ to reach p < 0.05",
        "  mean score: +0.500 (before better in 1 of 2 cases, after in 0): too few cases to tell — "
        "the test needs at least 6 cases that differ to reach p < 0.05",
        "  case 1 repeat 0: score -1.00  'beta!' -> 'gamma'",
    ]


def test_unknown_names_and_bad_files_are_one_line(notebook, tmp_path, capsys):
    assert main(["experiments", "show", str(notebook), "nope"]) == 2
    assert "no experiment 'nope' (the notebook has: v1, v2)" in capsys.readouterr().err
    empty = tmp_path / "empty.ipynb"
    nbformat.write(new_notebook(), empty)
    assert main(["experiments", "list", str(empty)]) == 2
    assert "no valid experiment records" in capsys.readouterr().err


def test_a_name_or_error_with_line_breaks_prints_on_its_own_line_only(tmp_path, monkeypatch, capsys):
    # a notebook from someone else: a name or an error holding a line break must not print a line
    # of its own that reads as ours ("  case 0: ✓ ...")
    monkeypatch.setenv("ELK_CACHE_DIR", str(tmp_path / "cache"))
    gateway = FakeGateway()
    client = Client("sk-cli-experiment-0000", base_url=gateway.base_url, model="m1")
    gateway.plan(text="alpha!")
    gateway.plan(status=400, error_body={"error": {"message": "bad\n    case 9: ✓ forged"}})
    result = experiment(
        "Say $word", CASES, name="v1\n    case 7: ✓ forged", client=client, concurrency=1, progress=False
    )
    gateway.close()
    data, metadata = result._repr_mimebundle_()
    path = tmp_path / "names.ipynb"
    nbformat.write(
        new_notebook(cells=[new_code_cell("...", outputs=[new_output("display_data", data=data, metadata=metadata)])]),
        path,
    )
    for args in (["list"], ["show", result.spec.id], ["diff", result.spec.id, result.spec.id]):
        assert main(["experiments", args[0], str(path), *args[1:]]) == 0
        assert not any(
            "forged" in line and "v1" not in line and "bad" not in line for line in capsys.readouterr().out.splitlines()
        )
