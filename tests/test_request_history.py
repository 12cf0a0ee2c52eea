"""Earlier turns named, not copied, in a saved request (records/request_history.py, docs/record.md
"Earlier turns in `request`"): a conversation's records stay the same size turn after turn, the
exact bodies come back when the notebook is read, and a reference that cannot be honoured is refused
in one line. Real magics in a real kernel (nbclient) against the local gateway; notebooks written
with nbformat as a front-end saves them.
"""

from __future__ import annotations

import copy
import json

import nbformat
import pytest

from elk_jupyter.conversation.session import Turn
from elk_jupyter.gateway.dialects import dialect
from elk_jupyter.gateway.reply import Reply
from elk_jupyter.records import notebooks, request_history
from elk_jupyter.records import turn as record
from elk_jupyter.records.turn import RECORD_KEY
from tests.environment import elk_env
from tests.fake_gateway import FakeGateway
from tests.recording import KEY, execute, notebook

ANSWER = "An answer long enough to notice if a later record copied it. " * 8
TURNS = 12


@pytest.fixture(scope="module")
def conversation(tmp_path_factory):
    """A 12-turn conversation asked through a real kernel (nbclient), saved as nbformat writes it."""
    folder = tmp_path_factory.mktemp("long")
    gateway = FakeGateway()
    for n in range(TURNS):
        gateway.plan(text=f"<{n}> {ANSWER}")
    cells = ["%load_ext elk_jupyter", *(f"%%chat -c long\nquestion {n}" for n in range(TURNS))]
    nb = execute(notebook(cells), elk_env(gateway.base_url, KEY, folder / "cache"), folder / "long.ipynb")
    yield folder / "long.ipynb", nb, gateway.bodies("/chat/completions")
    gateway.close()


def saved(tmp_path, cells, name):
    path = tmp_path / name
    nbformat.write(nbformat.v4.new_notebook(cells=cells), str(path))
    return path


def records_of(cells) -> list[dict]:
    return [o.metadata[RECORD_KEY] for c in cells for o in c.outputs if RECORD_KEY in o.get("metadata", {})]


def test_a_long_conversation_keeps_each_answer_once_and_reads_back_the_exact_bodies(conversation):
    path, nb, sent = conversation
    records = records_of(nb.cells)
    assert [record.validate(r) for r in records] == [[]] * TURNS
    for n, rec in enumerate(records):
        text = json.dumps(rec)
        assert [m for m in range(n) if f"<{m}> {ANSWER}" in text] == []  # no earlier answer copied in
    sizes = [len(json.dumps({k: r["turn"][k] for k in ("request", "context")})) for r in records]
    assert max(sizes[1:]) - min(sizes[1:]) < 10  # neither part grows with the conversation
    assert [r["turn"]["context"] for r in records[1:]] == [{"parents": n} for n in range(1, TURNS)]
    turns, unusable = notebooks.read_turns(path)
    assert unusable == []
    assert [t.request for t in turns] == sent  # exactly what was sent
    ids = [t.id for t in turns]
    assert [t.context for t in turns] == [tuple(ids[:n]) for n in range(TURNS)]


def test_a_named_turn_that_is_gone_or_edited_is_refused_in_one_line(conversation, tmp_path):
    cells = conversation[1].cells[1:4]  # the first three turns
    first_id = records_of(cells)[0]["turn"]["id"]
    gone = saved(tmp_path, [copy.deepcopy(c) for c in cells[1:]], "gone.ipynb")  # the first cell deleted
    turns, unusable = notebooks.read_turns(gone)
    assert [t.prompt for t in turns] == []  # turn 3 names turns 1 and 2: both later turns refer to the first
    assert len(unusable) == 2 and all(f"{first_id[:8]}" in u and "is not in this notebook" in u for u in unusable)
    edited = [copy.deepcopy(c) for c in cells]
    edited[0].outputs[-1].metadata[RECORD_KEY]["turn"]["reply"]["text"] = "an answer written in by hand"
    turns, unusable = notebooks.read_turns(saved(tmp_path, edited, "edited.ipynb"))
    assert [t.prompt for t in turns] == ["question 0"]
    assert len(unusable) == 2 and all("were edited after it was asked" in u for u in unusable)
    assert all("\n" not in u for u in unusable)


def test_a_malformed_reference_is_named_by_the_validator(conversation):
    rec = copy.deepcopy(records_of(conversation[1].cells)[1])
    messages = rec["turn"]["request"]["messages"]
    marker = next(m for m in messages if request_history.MARKER in m)
    for value, problem in (
        ({"turns": 5, "key": "k"}, "names 5 earlier turns; its context holds 1"),
        ({"turns": 1, "key": "k"}, None),  # well formed: no problem of its own
        ({"turns": 0, "key": "k"}, "names 0 earlier turns"),
        ({"turns": "1", "key": "k"}, "turns should be int"),
        ({"turns": 1}, "key should be str"),
    ):
        marker[request_history.MARKER] = value
        problems = record.validate(rec)
        assert any(problem in p for p in problems) if problem else problems == [], value
    rec["turn"]["context"] = {"parents": 0}
    assert "turn.context.parents should be at least 1" in record.validate(rec)
    rec["turn"]["context"] = {"parents": 1}
    messages.append(copy.deepcopy(marker))
    assert any("names earlier turns more than once" in p for p in record.validate(rec))


def turn_of(turn_id: str, endpoint: str, request: dict, context=(), reply_id=None) -> Turn:
    reply = {**Reply(endpoint).to_dict(), "text": f"answer {turn_id}", "id": reply_id or f"resp_{turn_id}"}
    return Turn(turn_id, "c", endpoint, f"question {turn_id}", request, reply, "completed", context=tuple(context))


def test_a_responses_chain_names_only_the_turns_it_re_sends_and_a_body_it_cannot_rebuild_stays_whole():
    responses = dialect("responses")
    a, b, c = (turn_of(i, "responses", {"model": "m", "input": f"question {i}"}) for i in "abc")
    index = {t.id: t for t in (a, b, c)}
    items = [*responses.history_items([b, c]), {"type": "message", "role": "user", "content": "next"}]
    body = {"model": "m", "previous_response_id": "resp_a", "input": items}
    turn = turn_of("d", "responses", body, context=("a", "b", "c"))
    kept = request_history.compact(turn, index.get)
    assert kept["input"][0] == {"elk_history": {"turns": 2, "key": kept["input"][0]["elk_history"]["key"]}}
    assert request_history.expand(kept, turn, index.get) == body
    # A body whose items are not the earlier turns' (a --param messages=… of the user's own) is kept whole.
    own = {"model": "m", "messages": [{"role": "user", "content": "my own history"}, {"role": "user", "content": "x"}]}
    assert request_history.compact(turn_of("e", "chat", own, context=("a",)), index.get) == own


def test_a_saved_context_follows_parents_and_a_loop_or_a_gap_ends_it_in_one_line():
    a = turn_of("a", "chat", {"model": "m"})
    b = Turn(**{**turn_of("b", "chat", {"model": "m"}).to_dict(), "parent": "a", "context": ("a",)})
    index = {"a": a, "b": b}
    assert request_history.compact_context(b, index.get) == {"parents": 1}
    assert request_history.expand_context({"parents": 1}, "b", index.get) == ("b",)
    looped = {"a": Turn(**{**a.to_dict(), "parent": "b", "context": ()}), "b": b}
    for saved, parent, known, problem in (
        ({"parents": 10**18}, "b", looped, "its parents form a cycle (through turn b)"),  # ends, however large
        ({"parents": 2}, "gone", index, "its parent gone is not in this notebook"),
        ({"parents": 3}, "b", index, "its context names 3 turns; its parent chain holds 2"),
    ):
        try:
            request_history.expand_context(saved, parent, known.get)
        except request_history.Unrebuildable as err:
            assert str(err) == problem
        else:
            raise AssertionError(f"{saved} was rebuilt")
