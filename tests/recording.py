"""A notebook recorded through a real kernel: its cells, key and how it is run (the records and CLI
tests share it, through conftest's ``recorded`` fixture)."""

from __future__ import annotations

import nbformat

from tests.kernel import run_notebook

KEY = "sk-elk-RECORDS-distinctive-4c2d"

CELLS = [
    "%load_ext elk_jupyter",
    "%%chat -s 'Be brief.'\nFirst question",
    "%%chat\nSecond question",
    "%%respond -c r\nChained one",
    "%%respond -c r\nChained two",
    "%%chat -c other -t 0\nAnother conversation",
]


def notebook(cells) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def execute(nb, env: dict, path=None):
    run_notebook(nb, env)
    if path is not None:
        nbformat.write(nb, path)
    return nb
