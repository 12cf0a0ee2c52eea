"""A frozen Run All reproduces the notebook (issue 21), in real kernels (nbclient): the same prompt in
two conversations, ``--no-context`` twice, two experiment cases rendering the same prompt, a sweep,
and ``%%experiment -p a.b=...``, recorded live, then re-executed with ``ELK_REPLAY=only``, a fresh
cache and the gateway gone: every cell shows its own answer.
"""

from __future__ import annotations

import os
import sys

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from elk_jupyter.records.experiment import EXPERIMENT_KEY
from elk_jupyter.records.turn import RECORD_KEY, validate
from tests.fake_gateway import FakeGateway
from tests.kernel import run_notebook

KEY = "sk-elk-identity-kernel-8HJK"

CELLS = [
    "%load_ext elk_jupyter\nsame = [{'q': 'twin'}, {'q': 'twin'}]",
    "%%chat -c x\nHi",
    "%%chat -c y\nHi",
    "%%chat --no-context\nAlone?",
    "%%chat --no-context\nAlone?",
    "%%experiment --cases same --concurrency 1 --name twins\nSay $q",
    "from elk_jupyter import sweep\nsweep('Sweep me', grid={'temperature': [0, 1]}, concurrency=1, progress=None)",
    "%%experiment -p reasoning.effort=low --endpoint responses --name nested\nNest it",
]
ANSWERS = ["in x", "in y", "first alone", "second alone", "sample 1", "sample 2", "sweep 0", "sweep 1", "nested"]


def answers(nb) -> list[str]:
    """What each output shows, in cell order: a turn's text, each experiment run's text."""
    found = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            metadata = output.get("metadata") or {}
            if RECORD_KEY in metadata:
                assert validate(metadata[RECORD_KEY]) == []
                found.append((metadata[RECORD_KEY]["turn"]["reply"]["text"], metadata[RECORD_KEY]["turn"]["replayed"]))
            if EXPERIMENT_KEY in metadata:
                found += [(run["reply"]["text"], run["replayed"]) for run in metadata[EXPERIMENT_KEY]["runs"]]
    return found


def test_a_frozen_run_all_shows_each_cell_its_own_answer(tmp_path):
    gateway = FakeGateway()
    for text in ANSWERS:
        gateway.plan(text=text)
    base = {"ELK_BASE_URL": gateway.base_url, "ELK_MODEL": "m1", "PYTHONPATH": os.pathsep.join(sys.path)}
    nb = new_notebook(cells=[new_code_cell(source) for source in CELLS])
    saved = tmp_path / "twins.ipynb"
    try:
        live = {**base, "ELK_API_KEY": KEY, "ELK_CACHE_DIR": str(tmp_path / "cache"), "ELK_REPLAY": "auto"}
        run_notebook(nb, {**live, "JPY_SESSION_NAME": str(saved)})
    finally:
        gateway.close()  # from here on nothing answers on that address
    assert answers(nb) == [(text, False) for text in ANSWERS]
    nested = gateway.bodies("/responses")[-1]
    assert nested["reasoning"] == {"effort": "low"} and "reasoning.effort" not in nested
    nbformat.write(nb, saved)
    frozen = {**base, "ELK_REPLAY": "only", "JPY_SESSION_NAME": str(saved), "ELK_CACHE_DIR": str(tmp_path / "fresh")}
    again = run_notebook(nbformat.read(saved, as_version=4), frozen)
    assert answers(again) == [(text, True) for text in ANSWERS]
    assert len(gateway.requests) == len(ANSWERS)
