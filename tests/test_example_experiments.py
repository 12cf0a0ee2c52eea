"""notebooks/experiments.ipynb: its committed outputs replay offline, to the identical tables, in a real kernel."""

from __future__ import annotations

from pathlib import Path

import nbformat

from elk_jupyter.records.experiment import EXPERIMENT_KEY, validate
from tests.environment import replay_offline

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "experiments.ipynb"


def _outputs(nb) -> list[tuple[str, dict]]:
    return [
        (o["data"]["text/markdown"], o["metadata"][EXPERIMENT_KEY])
        for c in nb.cells
        for o in c.get("outputs", [])
        if EXPERIMENT_KEY in o.get("metadata", {})
    ]


def _streams(nb) -> list[str]:
    return [o["text"] for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "stream"]


def test_the_committed_example_replays_offline_identically(tmp_path, monkeypatch):
    committed = nbformat.read(NOTEBOOK, as_version=4)
    recorded = _outputs(committed)
    assert [r["experiment"]["name"] for _, r in recorded] == ["capitals", "capitals-v2"]
    assert all(validate(r) == [] and len(r["runs"]) == r["total"] == 12 for _, r in recorded)
    assert any(run["judges"] for run in recorded[1][1]["runs"])  # the rubric's judge calls are kept
    nb = replay_offline(NOTEBOOK, tmp_path, monkeypatch)
    replayed = _outputs(nb)
    assert [table for table, _ in replayed] == [table for table, _ in recorded]
    assert all(run["replayed"] for _, r in replayed for run in r["runs"])
    assert _streams(nb) == _streams(committed)  # the diff and the printed rows too
