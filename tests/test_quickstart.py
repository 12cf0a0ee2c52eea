"""The quickstart notebook runs end to end in a real kernel (nbclient) against a local server."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from elk_jupyter.display.turn_output import TURN_MIME, whole_view
from tests.environment import elk_env, replay_offline, use_env
from tests.fake_gateway import FakeGateway

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "quickstart.ipynb"
KEY = "sk-elk-QUICKSTART-distinctive-77aa"


@pytest.fixture
def executed(tmp_path, monkeypatch):
    gateway = FakeGateway()
    use_env(monkeypatch, elk_env(gateway.base_url, KEY, tmp_path / "cache"))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(tmp_path)}}).execute()
    path = tmp_path / "quickstart-executed.ipynb"
    nbformat.write(nb, path)
    yield nb, path, gateway
    gateway.close()


def test_quickstart_runs_and_leaves_readable_outputs(executed):
    nb, path, gateway = executed
    magic_cells = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith(("%%chat", "%%respond"))]
    sent = [c for c in magic_cells if "--dry-run" not in c.source]
    assert len(gateway.requests) == len(sent) >= 4
    for cell in sent:
        bundles = [o for o in cell.outputs if o.get("output_type") == "display_data"]
        assert bundles, cell.source
        data = bundles[-1]["data"]
        # the finished bundle our renderer draws, with its inert copies; no widget view left behind
        assert set(data) == {TURN_MIME, "text/markdown", "text/plain"}, sorted(data)
        assert "text" not in data[TURN_MIME]  # the renderer reads the answer from the record (docs/record.md)
        assert "echo:" in whole_view(data, bundles[-1]["metadata"])["text"]
        assert "echo:" in data["text/markdown"] and "echo:" in data["text/plain"]
        assert bundles[-1]["metadata"]["elk_jupyter"]["turn"]["status"] == "completed"
    assert KEY not in path.read_text()


def test_committed_quickstart_replays_offline_identically(tmp_path, monkeypatch):
    """The main job's offline path: the committed outputs, recorded from a real llama-server, replay
    exactly with no server at all (nothing listens on the recorded address)."""
    from elk_jupyter.records import notebooks

    committed = notebooks.read_notebook(NOTEBOOK)
    recorded = [r["turn"]["reply"]["text"] for r in notebooks.iter_records(committed)]
    assert len(recorded) == 5 and all(recorded)
    nb = replay_offline(NOTEBOOK, tmp_path, monkeypatch)
    replayed = list(notebooks.iter_records(nb))
    assert [r["turn"]["reply"]["text"] for r in replayed] == recorded
    assert all(r["turn"]["replayed"] for r in replayed)
