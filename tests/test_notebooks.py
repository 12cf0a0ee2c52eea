"""The committed notebooks (notebooks/*.ipynb) are what the current code writes (issue 26): nothing of an older output
format is left in them (widget views, "Loading widget", counter turn ids, old record versions), and re-executed offline
by this checkout in a real kernel each output comes back in the same shape: the same mime types, the same metadata
keys and record versions, the same fields in our own JSON views. When a test here fails, run
`python notebooks/regenerate.py` (a real model, llama-server + SmolLM2; CONTRIBUTING.md) and commit the notebooks."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from elk_jupyter.conversation.identity import SHORT_ID
from elk_jupyter.display.turn_output import TURN_MIME
from elk_jupyter.records.turn import RECORD_KEY, RECORD_VERSION, validate
from tests.environment import replay_offline

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
REGENERATE = "the committed notebook is not what the current code writes: run `python notebooks/regenerate.py`"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
TURN_ID = re.compile(r"[0-9a-f]{32}")
HISTORY_LINE = re.compile(r"^[* ](\S+) +\w+ +\w+ +sent \[")  # `%elk history`: marker, id, status, endpoint


def outputs(nb):
    for cell in nb.cells:
        if cell.cell_type == "code":
            yield cell, cell.get("outputs", [])


def shape(nb) -> list:
    """Per code cell, each output as the format knows it: its type, its mime types (with the fields and version of
    our own JSON views), its metadata keys with their record versions. Texts, ids and numbers are left out."""
    shapes = []
    for cell, outs in outputs(nb):
        shown = []
        for out in outs:
            data = out.get("data", {})
            views = {
                mime: (sorted(value), value.get("version"))
                for mime, value in data.items()
                if mime.startswith("application/vnd.elk-jupyter") and isinstance(value, dict)
            }
            meta = {
                key: (value.get("version") if isinstance(value, dict) else None)
                for key, value in out.get("metadata", {}).items()
            }
            shown.append((out["output_type"], out.get("name"), sorted(data), views, meta))
        shapes.append((cell.source.splitlines()[0] if cell.source else "", shown))
    return shapes


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_a_committed_notebook_holds_nothing_of_an_older_format(path):
    text = path.read_text(encoding="utf-8")
    nb = nbformat.reads(text, as_version=4)
    assert nb.nbformat == 4 and "widgets" not in nb.metadata, REGENERATE
    assert WIDGET_MIME not in text and "Loading widget" not in text, REGENERATE
    records = [
        out["metadata"][RECORD_KEY] for _, outs in outputs(nb) for out in outs if RECORD_KEY in out.get("metadata", {})
    ]
    for _, outs in outputs(nb):
        for out in outs:
            if RECORD_KEY in out.get("metadata", {}):
                # the finished bundle: our renderer's data, the inert copies, the record beside them
                assert {TURN_MIME, "text/markdown", "text/plain"} <= set(out["data"]), REGENERATE
    for record in records:
        assert record.get("version") == RECORD_VERSION and validate(record) == [], REGENERATE
        assert TURN_ID.fullmatch(record["turn"]["id"]), (record["turn"]["id"], REGENERATE)
    ids = [record["turn"]["id"] for record in records]
    for cell, outs in outputs(nb):
        if cell.source.startswith("%elk history"):
            lines = [line for out in outs if out["output_type"] == "stream" for line in out["text"].splitlines()]
            shown = [m.group(1) for m in map(HISTORY_LINE.match, lines) if m]
            assert shown, REGENERATE
            for short in shown:  # a short id of a recorded turn, as `%elk history` prints it today
                assert len(short) == SHORT_ID and any(i.startswith(short) for i in ids), (short, REGENERATE)


@pytest.mark.kernel  # nbclient runs the notebook in an ipykernel
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_a_committed_notebook_comes_back_in_the_same_shape_when_re_executed(path, tmp_path, monkeypatch):
    committed = nbformat.read(path, as_version=4)
    replayed = replay_offline(path, tmp_path, monkeypatch)  # ELK_REPLAY=only: nothing listens where it was recorded
    for (source, want), (_, got) in zip(shape(committed), shape(replayed), strict=True):
        assert got == want, (source, REGENERATE)
