"""Records in saved notebooks: schema, restore after a restart, offline replay, the local cache.

Notebooks run in real kernels (nbclient) against a real local gateway; the saved files are read back
with nbformat exactly as a later session would.
"""

from __future__ import annotations

import json

import nbformat
import pytest
from IPython import get_ipython
from IPython.testing.globalipapp import start_ipython
from nbclient.exceptions import CellExecutionError

from elk_jupyter.conversation.identity import request_key
from elk_jupyter.front.magics import ElkMagics
from elk_jupyter.records import notebooks
from elk_jupyter.records import turn as record
from tests.environment import turns
from tests.recording import KEY, execute, notebook


def replies(nb) -> list[str]:
    return [r["turn"]["reply"]["text"] for r in notebooks.iter_records(nb)]


def test_every_turn_leaves_a_valid_complete_record(recorded):
    path, gateway, _ = recorded
    records = list(notebooks.iter_records(notebooks.read_notebook(path)))
    read, unusable = notebooks.read_turns(path)
    assert len(records) == 5 == len(gateway.requests) == len(read) and unusable == []
    for rec, sent, rebuilt in zip(records, gateway.requests, read, strict=True):
        assert record.validate(rec) == []
        turn = rec["turn"]
        assert rebuilt.request == sent["body"]  # the exact body the server received
        assert turn["host"] == gateway.base_url.split("/")[2]
        assert turn["reply"]["model"] == "fake-small-served" and turn["reply"]["id"]
        assert turn["reply"]["usage"] and turn["reply"]["timing"]["total"] is not None
        assert rec["package"] and rec["version"] == record.RECORD_VERSION == 3
    first, second, r1, r2, other = (r["turn"] for r in records)
    # The second turn names the first instead of copying it (docs/record.md, "Earlier turns").
    key = request_key(gateway.requests[1]["body"], second["host"])
    assert second["request"]["messages"][1] == {"elk_history": {"turns": 1, "key": key}}
    assert first["reply"]["text"] not in json.dumps(second)
    assert second["parent"] == first["id"] and second["context"] == {"parents": 1}  # the last turn of its chain
    assert read[1].context == (first["id"],)
    assert r2["mode"] == "chain" and r2["request"]["previous_response_id"] == r1["reply"]["id"]
    assert other["conversation"] == "other" and other["request"]["temperature"] == 0
    assert KEY not in path.read_text()


def test_validate_names_what_is_wrong():
    assert record.validate([]) == ["the record is not an object"]
    problems = record.validate({"version": 9, "turn": {"id": 1, "endpoint": "x", "reply": {"text": None}}})
    assert "version is 9, expected 3" in problems
    assert any(p.startswith("turn.id should be str") for p in problems)
    assert "turn.endpoint is 'x'" in problems and any(p.startswith("turn.reply.text") for p in problems)


def test_only_mode_replays_the_saved_notebook_offline_identically(recorded, tmp_path):
    path, gateway, values = recorded
    gateway.close()  # the server is gone: any network use would fail the run
    offline = dict(values, ELK_REPLAY="only", ELK_CACHE_DIR=str(tmp_path / "empty-cache"), JPY_SESSION_NAME=str(path))
    replayed = execute(notebooks.read_notebook(path), offline, tmp_path / "replayed.ipynb")
    assert replies(replayed) == replies(notebooks.read_notebook(path))
    assert all(r["turn"]["replayed"] for r in notebooks.iter_records(replayed))
    markdown = [
        o["data"]["text/markdown"]
        for c in replayed.cells
        for o in c.get("outputs", [])
        if "data" in o and "text/markdown" in o["data"]
    ]
    assert all("replayed" in m.splitlines()[0] for m in markdown) and len(markdown) == 5


def test_only_mode_refuses_an_unrecorded_request(recorded, tmp_path):
    path, gateway, values = recorded
    nb = notebooks.read_notebook(path)
    nb.cells.append(nbformat.v4.new_code_cell("%%chat\nA new question"))
    offline = dict(values, ELK_REPLAY="only", ELK_CACHE_DIR=str(tmp_path / "empty"), JPY_SESSION_NAME=str(path))
    sent = len(gateway.requests)
    with pytest.raises(CellExecutionError) as info:
        execute(nb, offline)
    assert "replay is 'only' and no recorded reply matches this request" in str(info.value)
    assert len(gateway.requests) == sent


def test_restore_after_a_restart_continues_the_conversation(recorded, tmp_path):
    path, gateway, values = recorded
    fresh = notebook(
        ["%load_ext elk_jupyter", f"%elk restore {path}", "%%chat\nThird question", "%%respond -c r\nChained three"]
    )
    execute(fresh, dict(values, ELK_REPLAY="off"))
    assert "restored 5 turns in 3 conversations" in fresh.cells[1].outputs[0]["text"]
    chat, respond = gateway.bodies()[-2:]
    assert [m["content"] for m in chat["messages"]] == [
        "Be brief.",
        "First question",
        "echo: First question",
        "Second question",
        "echo: Second question",
        "Third question",
    ]
    last_r = list(notebooks.iter_records(notebooks.read_notebook(path)))[3]["turn"]
    assert respond["previous_response_id"] == last_r["reply"]["id"]
    saved = [r["turn"] for r in notebooks.iter_records(notebooks.read_notebook(path))]
    third, three = (r["turn"] for r in notebooks.iter_records(fresh))
    assert {third["id"], three["id"]}.isdisjoint(t["id"] for t in saved)  # new ids, never reused
    assert third["parent"] == saved[1]["id"] and three["parent"] == saved[3]["id"]


def test_cache_replays_identical_requests_with_zero_network(recording_env, tmp_path, monkeypatch):
    gateway, values = recording_env
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    ip = start_ipython() or get_ipython()
    ip.run_line_magic("load_ext", "elk_jupyter")
    for _ in range(2):  # a new notebook state each time; the cache file persists
        ip.register_magics(ElkMagics(ip))
        assert ip.run_cell("%%chat -o r\nCache me").success
    assert len(gateway.requests) == 1
    assert ip.user_ns["r"].text == "echo: Cache me"
    turn = turns(ip)[0]
    assert turn.replayed
    assert ip.run_cell("%%chat --replay off\nCache me").success  # off: always live
    assert len(gateway.requests) == 2
    cache_file = tmp_path / "cache" / "cache.sqlite3"
    assert cache_file.exists() and KEY.encode() not in cache_file.read_bytes()


def test_bad_files_give_clear_errors(tmp_path):
    (tmp_path / "bad.ipynb").write_text("not json")
    (tmp_path / "odd.ipynb").write_text(json.dumps({"hello": 1}))
    for name in ("bad.ipynb", "odd.ipynb", "missing.ipynb"):
        with pytest.raises(Exception) as info:
            notebooks.load_turns(tmp_path / name)
        assert type(info.value).__name__ == "ElkError" and name in str(info.value)


def test_a_notebook_saved_with_widget_state_keeps_no_front_end_code(recorded):
    """nbclient (and papermill) keep the state of closed widgets: it must hold no bundle and no reply copy."""
    path, _, _ = recorded
    nb = json.loads(path.read_text())
    outputs = [o for cell in nb["cells"] for o in cell.get("outputs", [])]
    assert not [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    state = json.dumps(nb["metadata"].get("widgets", {}))
    assert len(state) < 3_000 * 5, len(state)  # five turns; the front-end code alone was ~97 KB each
    assert "echo: First question" not in state
