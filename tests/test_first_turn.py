"""The first turn of a kernel reads the saved notebook's records as plain JSON, never via nbformat.

Importing nbformat (jsonschema, rfc3987-syntax) made the first %%chat 1.35 s slower than later ones
(issue 12; figures from bench/first_turn.py in docs/performance.md). What a test can check is the
behaviour behind the figure: after a first turn, replayed from the notebook's own records, in a
fresh kernel, none of those modules is loaded.
"""

from __future__ import annotations

import json

import pytest

from elk_jupyter import ElkError
from elk_jupyter.records import notebooks
from tests.kernel import Kernel

HEAVY = ("nbformat", "jsonschema", "rfc3987_syntax", "jsonschema_specifications")


def test_a_first_turn_replayed_from_the_saved_notebook_imports_no_nbformat(recorded):
    path, gateway, env = recorded
    served = len(gateway.requests)
    kernel = Kernel({**env, "ELK_REPLAY": "only", "JPY_SESSION_NAME": str(path)})
    try:
        assert kernel.execute("%load_ext elk_jupyter").status == "ok"
        first = kernel.execute("%%chat -s 'Be brief.'\nFirst question")
        assert first.status == "ok", first.error_text
        assert first.last_bundle()["metadata"]["elk_jupyter"]["turn"]["replayed"] is True
        loaded = kernel.execute(f"import sys; print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
        assert loaded.stdout.strip() == "[]"
    finally:
        kernel.close()
    assert len(gateway.requests) == served  # replayed from the file: nothing was sent


def test_records_read_as_json_equal_records_read_with_nbformat(recorded):
    path, _, _ = recorded
    as_json = list(notebooks.iter_records(notebooks.read_json(path)))
    assert as_json == list(notebooks.iter_records(notebooks.read_notebook(path))) and len(as_json) == 5
    assert [t.id for t in notebooks.load_turns(path)] == [r["turn"]["id"] for r in as_json]


@pytest.mark.parametrize(
    "content",
    [b"", b"not json", b"[1, 2]", b'{"cells": 3}', b"\xff\xfe", b"[" * 100_000],
    ids=["empty", "text", "a list", "cells not a list", "not UTF-8", "deeply nested"],
)
def test_a_file_that_is_not_a_notebook_is_one_elk_error(tmp_path, content):
    path = tmp_path / "bad.ipynb"
    path.write_bytes(content)
    with pytest.raises(ElkError, match="not a Jupyter notebook"):
        notebooks.load_turns(path)


def test_hand_edited_cells_of_any_shape_are_skipped_and_lone_surrogates_replaced(recorded, tmp_path):
    path, _, _ = recorded
    nb = json.loads(path.read_text())
    (good,) = [c for c in nb["cells"] if c.get("outputs") and "First question" in "".join(c["source"])]
    good["outputs"][-1]["metadata"]["elk_jupyter"]["turn"]["reply"]["text"] = "broken \ud83d emoji"
    nb["cells"] = [
        3,
        {"cell_type": "code", "outputs": 5},
        {"cell_type": "code", "outputs": [7, {"metadata": []}]},
        good,
    ]
    edited = tmp_path / "edited.ipynb"
    edited.write_text(json.dumps(nb))  # json writes the lone surrogate as the escape "\ud83d"
    (turn,) = notebooks.load_turns(edited)
    assert turn.reply["text"] == "broken \ufffd emoji"
    json.dumps(turn.to_dict(), ensure_ascii=False).encode("utf-8")
