"""History you can trust: turn ids, the checks on a saved history, restore by id and parent, forks,
Responses chaining under the context policy, accept, resample vs replay, records that always validate.

The graph rules are tested on values; everything a user does goes through the real magics in a real
IPython shell against the generating local gateway (whose Responses store threads
``previous_response_id`` the way OpenAI's does). Real-kernel versions: tests/test_history_kernel.py.
"""

from __future__ import annotations

import json
import math
import time

import nbformat
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from elk_jupyter.conversation import context, lineage, session
from elk_jupyter.conversation.session import Conversations, Turn
from elk_jupyter.errors import HistoryError
from elk_jupyter.front.magics import ElkMagics
from elk_jupyter.gateway.dialects.responses import chain_point
from elk_jupyter.gateway.reply import Reply
from elk_jupyter.gateway.usage import Usage
from elk_jupyter.records import turn as record
from tests.environment import conversations, fresh_shell, turns


def turn(turn_id, parent=None, context=(), conversation="default", status="completed", at=None, **fields):
    reply = {**Reply("chat").to_dict(), "status": status, "text": f"answer {turn_id}", "id": f"resp_{turn_id}"}
    return Turn(
        id=turn_id,
        conversation=conversation,
        endpoint=fields.pop("endpoint", "chat"),
        prompt=f"question {turn_id}",
        request=fields.pop("request", {"model": "m"}),
        reply=reply,
        status=status,
        parent=parent,
        context=tuple(context),
        created_at=at if at is not None else time.time(),
        **fields,
    )


# -- ids
def test_ids_are_unique_for_identical_turns_and_shown_short():
    ids = {session.new_turn_id("p", "default", {"model": "m", "input": "Hi"}, 1.0) for _ in range(1000)}
    assert len(ids) == 1000 and all(len(i) == 32 for i in ids)
    assert session.short("0123456789abcdef") == "01234567" and session.short("t1") == "t1"


def test_a_turn_is_named_by_an_unambiguous_prefix():
    notebook = Conversations()
    for turn_id in ("abcd1111", "abcd2222", "ffff0000"):
        notebook.conversation("default").commit(turn(turn_id))
    assert notebook.resolve("ffff") == "ffff0000" and notebook.resolve("abcd1111") == "abcd1111"
    with pytest.raises(ValueError, match="ambiguous"):
        notebook.resolve("abcd")
    with pytest.raises(ValueError, match="no turn 'zz'"):
        notebook.resolve("zz")


# -- the checks on a saved history
def test_ordered_puts_parents_first_whatever_the_cell_order():
    a, b, c = turn("a"), turn("b", "a", ["a"]), turn("c", "b", ["a", "b"])
    assert [t.id for t in lineage.ordered([c, a, b], {})] == ["a", "b", "c"]
    assert [t.id for t in lineage.ordered([c, b], {"a": a})] == ["b", "c"]  # a is already known


@pytest.mark.parametrize(
    ("turns", "message"),
    [
        ([turn("a", "a")], "turn a names itself as its parent"),
        ([turn("a", "b"), turn("b", "a")], "its parents form a cycle"),
        ([turn("a"), turn("b", "gone")], "turn b: its parent gone is not in the notebook"),
        ([turn("a"), turn("a", status="error")], "turn a: two different records carry this id"),
        ([turn("a"), turn("b", None, ["a"])], "turn b: its context names a, which is not one of its earlier turns"),
    ],
)
def test_impossible_histories_are_one_line_errors_naming_the_turn(turns, message):
    notebook = Conversations()
    with pytest.raises(HistoryError, match=message) as info:
        lineage.merge(notebook, turns)
    assert "\n" not in str(info.value)
    assert notebook.conversations == {} and notebook.index == {}  # nothing restored, not half


def test_a_long_cycle_is_found_at_once():
    turns = [turn(f"n{i}", f"n{(i + 1) % 5000}") for i in range(5000)]
    started = time.perf_counter()
    with pytest.raises(HistoryError, match="cycle"):
        lineage.ordered(turns, {})
    assert time.perf_counter() - started < 5  # a loop would never end; this is a guard, not a goal


def test_an_identical_copy_of_a_record_is_the_same_turn():
    a = turn("a", at=1.0)
    merged = lineage.merge(Conversations(), [a, a, turn("b", "a", ["a"], at=2.0)])
    assert [t.id for t in merged.added] == ["a", "b"]


def test_validate_rejects_self_links_non_json_numbers_and_bad_items():
    good = record.record_of(turn("a", context=[]))
    assert record.validate(good) == []
    bad = json.loads(json.dumps(good))
    bad["turn"].update(parent="a", context=["a"], context_tokens=1.5)
    bad["turn"]["reply"].update(choices=[{"text": 3}], tool_calls=[{"id": "x"}], usage={"prompt_tokens": math.nan})
    problems = record.validate(bad)
    assert "turn.parent is the turn itself" in problems
    assert "turn.context names the turn itself" in problems
    assert "turn.context_tokens should be int or null, got float" in problems
    assert "turn.reply.choices[0].text should be str or null, got int" in problems
    assert "turn.reply.tool_calls[0] should be an object with a function object" in problems
    assert "record.turn.reply.usage.prompt_tokens is nan (not JSON)" in problems


def test_odd_usage_values_count_as_whole_tokens():
    odd = {"prompt_tokens": "12", "completion_tokens": 3.7, "total_tokens": math.nan, "prompt_tokens_details": []}
    # one rule for every count (usage.Usage.of): a float rounds to the nearest whole token
    counts = {"prompt": 12, "completion": 4, "total": 16, "cached": 0, "reasoning": 0}
    assert Usage.of(odd).numbers() == {**counts, "prompt_audio": 0, "completion_audio": 0}
    assert Usage.of({"input_tokens": True, "output_tokens": -4}).numbers() == dict.fromkeys(
        ("prompt", "completion", "total", "cached", "reasoning", "prompt_audio", "completion_audio"), 0
    )
    assert Usage.of("garbage").numbers()["total"] == 0
    history = [turn("a")]
    history[0].reply["usage"] = {"prompt_tokens": math.inf, "completion_tokens": "x"}
    assert isinstance(context.context_cost(history), int)


def test_a_choice_without_index_replays():
    reply = Reply.from_dict({"endpoint": "chat", "choices": [{"text": "one"}, {"text": "two"}]})
    assert [(c.index, c.text) for c in reply.choices] == [(0, "one"), (1, "two")]


# -- Responses: where a request may chain
def test_chain_point_only_trusts_a_response_that_holds_exactly_the_turns_before_it():
    host = "h:1"
    r = {"endpoint": "responses", "host": host}
    a = turn("a", **r)
    b = turn("b", "a", ["a"], **r)
    lone = turn("c", "b", [], **r)  # --no-context
    chat = turn("d", "c", ["a", "b", "c"], host=host)
    assert chain_point([a, b], host) == (1, None)
    assert chain_point([b], host) == (
        None,
        "b's stored response holds a before it, this context no earlier turn",
    )
    assert chain_point([a, b, lone], host) == (
        1,
        "c's stored response holds no earlier turn before it, this context a, b",
    )
    assert chain_point([a, b, lone, chat], host)[0] == 1
    assert chain_point([a], "other:2") == (None, "a was answered by another host")


# -- the magics in a real shell (conftest's ``ip``)
def fresh_kernel(shell) -> ElkMagics:
    """A new notebook state, as a kernel restart gives (the cache on disk stays)."""
    return fresh_shell()[1]


def run(ip, source, cell_id=None):
    ip.parent_header = {"metadata": {"cellId": cell_id}} if cell_id else {}
    result = ip.run_cell(source)
    ip.parent_header = {}
    return result


def model_view(gateway, reply_id) -> list[str]:
    """What the model saw, from the gateway's store: every text of the chain ending at ``reply_id``."""
    texts = []
    for entry in gateway.responses[reply_id]:
        if isinstance(entry, str):
            texts.append(entry)
        else:
            texts += [item["content"] for item in entry]
    return texts


def recorded_view(ip, t: Turn) -> list[str]:
    """What the record says the model saw: the context's prompts and answers, the prompt, the answer."""
    notebook = conversations(ip)
    texts = []
    for turn_id in t.context:
        texts += [notebook.index[turn_id].prompt, notebook.index[turn_id].text]
    return [*texts, t.prompt, t.text]


def test_respond_chain_honours_context_turns_and_says_so(ip, gateway, capsys):
    ip.magics_manager.registry["ElkMagics"].context_turns = 1  # not %config: that would outlive this test's shell state
    for prompt in ("A", "B", "C"):
        assert run(ip, f"%%respond\n{prompt}").success
    a, b, c = turns(ip)
    assert c.context == (b.id,) and c.mode == "stateless"
    assert c.mode_reason == f"{b.short_id}'s stored response holds {a.short_id} before it, this context no earlier turn"
    assert "previous_response_id" not in c.request
    assert model_view(gateway, c.reply["id"]) == recorded_view(ip, c) == ["B", "echo: B", "C", "echo: C"]
    out = capsys.readouterr().out
    assert f"1 earlier turn ({b.short_id})" in out and "1 older left out by the context policy" in out
    assert f"stateless resend ({c.mode_reason})" in out


def test_respond_chain_honours_context_tokens(ip, gateway):
    for prompt in ("A long first question " * 10, "B", "C"):
        assert run(ip, f"%%respond\n{prompt}").success
    ip.magics_manager.registry["ElkMagics"].context_tokens = 20
    assert run(ip, "%%respond\nD").success
    d = turns(ip)[-1]
    assert 0 < len(d.context) < 3 and d.context_tokens <= 20
    assert model_view(gateway, d.reply["id"]) == recorded_view(ip, d)


def test_after_a_no_context_turn_the_chain_continues_from_the_right_response(ip, gateway, capsys):
    assert run(ip, "%%respond\nA").success
    assert run(ip, "%%respond --no-context\nB").success
    assert run(ip, "%%respond\nC").success
    a, b, c = turns(ip)
    assert b.context == () and b.parent == a.id
    assert c.context == (a.id, b.id) and c.mode == "chain" and c.request["previous_response_id"] == a.reply["id"]
    assert c.request["input"] == [
        {"type": "message", "role": "user", "content": "B"},
        {"type": "message", "role": "assistant", "content": "echo: B"},
        {"type": "message", "role": "user", "content": "C"},
    ]
    assert (
        model_view(gateway, c.reply["id"]) == recorded_view(ip, c) == ["A", "echo: A", "B", "echo: B", "C", "echo: C"]
    )
    out = capsys.readouterr().out
    assert "no earlier turns · 1 left out by --no-context" in out  # not blamed on the policy
    assert f"previous_response_id of {a.short_id} + {b.short_id} re-sent" in out


def test_a_chat_turn_or_an_accepted_partial_breaks_the_chain(ip, gateway):
    assert run(ip, "%%chat\nA").success
    assert run(ip, "%%respond\nB").success
    a, b = turns(ip)
    assert b.mode == "stateless" and b.mode_reason == f"{a.short_id} ran on the chat endpoint"
    assert model_view(gateway, b.reply["id"]) == recorded_view(ip, b)
    gateway.plan(text="cut short here and more", cut_after=2)
    assert not run(ip, "%%respond\nC").success
    c = turns(ip)[-1]
    ip.run_line_magic("elk", f"accept {c.short_id}")
    assert run(ip, "%%respond\nD").success
    d = turns(ip)[-1]
    assert d.context == (a.id, b.id, c.id) and d.request["previous_response_id"] == b.reply["id"]
    assert d.mode_reason == f"{c.short_id} has no complete stored response"
    assert model_view(gateway, d.reply["id"]) == recorded_view(ip, d)


def test_a_fork_chains_from_the_turn_it_forks_at(ip, gateway):
    assert run(ip, "%%respond\nA").success
    assert run(ip, "%%respond\nB").success
    a = turns(ip)[0]
    ip.run_line_magic("elk", f"fork default side {a.short_id}")
    assert run(ip, "%%respond -c side\nS").success
    (s,) = turns(ip, "side")
    assert s.parent == a.id and s.context == (a.id,) and s.request["previous_response_id"] == a.reply["id"]
    assert model_view(gateway, s.reply["id"]) == recorded_view(ip, s) == ["A", "echo: A", "S", "echo: S"]
    b = turns(ip)[1]
    assert run(ip, "%%respond --new\nAfresh").success  # B is no longer in default's context
    ip.run_line_magic("elk", f"fork default old {b.short_id}")  # a fork from any turn: its ancestry
    assert conversations(ip).conversation("old").active == [a.id, b.id]


def test_accept_says_what_joins_and_what_leaves(ip, gateway, capsys):
    assert run(ip, "%%chat\nA").success
    gateway.plan(text="partial answer that breaks", cut_after=2)
    assert not run(ip, "%%chat\nB").success
    assert run(ip, "%%chat\nC").success
    a, b, c = turns(ip)
    capsys.readouterr()
    ip.run_line_magic("elk", f"accept {b.short_id}")
    out = capsys.readouterr().out
    assert out.strip() == (
        f"context of 'default': joins {b.short_id} (after {a.short_id}); leaves {c.short_id} "
        f"(not on the chain to {b.short_id}; `%elk accept` one of them to go back); now {a.short_id}, {b.short_id}"
    )
    assert run(ip, "%%chat\nD").success
    assert [m["content"] for m in gateway.bodies()[-1]["messages"]] == ["A", "echo: A", "B", "partial answer ", "D"]
    ip.run_line_magic("elk", f"accept {c.short_id}")  # back to the other branch: stated again
    assert f"joins {c.short_id} (after {a.short_id}); leaves {b.short_id}" in capsys.readouterr().out
    ip.run_line_magic("elk", f"accept {a.short_id}")  # back to an earlier completed turn
    assert f"nothing joins; leaves {c.short_id}" in capsys.readouterr().out
    ip.run_line_magic("elk", f"accept {a.short_id}")
    assert "nothing changes" in capsys.readouterr().out
    assert conversations(ip).conversation("default").active == [a.id]


def test_rerun_samples_again_first_run_of_a_saved_request_replays(ip, gateway, tmp_path, monkeypatch):
    fresh_kernel(ip)  # replay auto, as a user's kernel starts
    assert run(ip, "%%chat -t 1\nTell me a joke", cell_id="joke").success
    assert run(ip, "%%chat -t 1\nTell me a joke", cell_id="joke").success  # re-run: regenerate
    assert len(gateway.requests) == 2
    assert [t.origin for t in turns(ip)] == ["live", "regenerated"]
    path = tmp_path / "saved.ipynb"
    save(path, turns(ip)[-1:])
    monkeypatch.setenv("JPY_SESSION_NAME", str(path))
    fresh_kernel(ip)  # reopened: Run All
    assert run(ip, "%%chat -t 1\nTell me a joke", cell_id="joke").success
    assert len(gateway.requests) == 2 and turns(ip)[-1].origin == "replayed"
    assert run(ip, "%%chat -t 1\nTell me a joke", cell_id="joke").success  # re-run after the replay
    assert len(gateway.requests) == 3 and turns(ip)[-1].origin == "regenerated"
    assert run(ip, "%%chat -t 1 --replay auto\nTell me a joke", cell_id="joke").success  # --replay decides
    assert len(gateway.requests) == 3 and turns(ip)[-1].origin == "replayed"
    fresh_kernel(ip)
    assert run(ip, "%%chat -t 1 --replay off\nTell me a joke", cell_id="joke").success
    assert len(gateway.requests) == 4 and turns(ip)[-1].origin == "live"


def save(path, saved_turns, edit=None) -> None:
    """A notebook whose cells carry these turns' records, as JupyterLab saves it."""
    nb = nbformat.v4.new_notebook()
    for t in saved_turns:
        rec = json.loads(json.dumps(record.record_of(t)))
        if edit:
            edit(rec)
        output = nbformat.v4.new_output("display_data", data={"text/plain": t.text}, metadata={"elk_jupyter": rec})
        nb.cells.append(nbformat.v4.new_code_cell(f"%%chat\n{t.prompt}", outputs=[output]))
    nbformat.write(nb, path)


def test_a_hand_edited_record_replays_or_says_which_field_is_wrong(ip, gateway, tmp_path, monkeypatch):
    assert run(ip, "%%chat -n 2\nTwo answers").success
    original = turns(ip)[-1]

    def loosen(rec):  # valid but unusual: no choice index, usage as strings
        for choice in rec["turn"]["reply"]["choices"]:
            del choice["index"]
        usage = rec["turn"]["reply"]["usage"]
        rec["turn"]["reply"]["usage"] = {k: str(v) for k, v in usage.items() if k.endswith("tokens")}

    path = tmp_path / "edited.ipynb"
    save(path, [original], loosen)
    monkeypatch.setenv("JPY_SESSION_NAME", str(path))
    monkeypatch.setenv("ELK_CACHE_DIR", str(tmp_path / "empty-cache"))  # only the notebook can answer
    fresh_kernel(ip)
    assert run(ip, "%%chat -n 2 --replay only -o r\nTwo answers").success
    assert [c.text for c in ip.user_ns["r"].choices] == [c["text"] for c in original.reply["choices"]]
    assert record.validate(record.record_of(turns(ip)[-1])) == []

    save(path, [original], lambda rec: rec["turn"]["reply"]["choices"][0].update(text=5))
    fresh_kernel(ip)
    result = run(ip, "%%chat -n 2 --replay only\nTwo answers")
    assert "is invalid: turn.reply.choices[0].text should be str or null, got int" in str(result.error_in_exec)


def test_restore_keeps_live_turns_and_saved_chains_apart(ip, gateway, tmp_path, capsys):
    """Restart, run a cell, then restore: nothing is chained onto the new turn by position."""
    for prompt in ("First", "Second"):
        assert run(ip, f"%%chat\n{prompt}").success
    first, second = turns(ip)
    path = tmp_path / "before.ipynb"
    save(path, [first, second])
    fresh_kernel(ip)
    assert run(ip, "%%chat\nFresh").success
    (fresh,) = turns(ip)
    capsys.readouterr()
    ip.run_line_magic("elk", f"restore {path}")
    out = capsys.readouterr().out
    assert f"default (context {fresh.short_id})" in out  # the most recent turn, and how to go on
    assert f"`%elk accept {second.short_id}` continues the saved chain" in out
    by_id = conversations(ip).index
    assert by_id[second.id].parent == first.id and by_id[fresh.id].parent is None
    ip.run_line_magic("elk", f"accept {second.short_id}")  # continue the saved chain instead
    assert run(ip, "%%chat\nThird").success
    assert [m["content"] for m in gateway.bodies()[-1]["messages"]][::2] == ["First", "Second", "Third"]
    ip.run_line_magic("elk", f"restore {path}")  # again: nothing new, nothing moves
    assert "restored 0 turns in 0 conversations" in capsys.readouterr().out
    ip.run_line_magic("elk", "reset --all")  # forgotten, then rebuilt from the file
    ip.run_line_magic("elk", f"restore {path}")
    assert "restored 2 turns in 1 conversations" in capsys.readouterr().out
    assert conversations(ip).conversation("default").active == [first.id, second.id]


# -- every record the package writes validates
# What servers have been seen to send as token counts, drawn often; then anything at all.
EDGE_NUMBERS = [math.nan, math.inf, -math.inf, 2.5, 1e300, -3, 0, "12", " 7 ", "1.5", "x", True, None, [], {}]
COUNT = st.one_of(
    st.sampled_from(EDGE_NUMBERS),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-5, 10**6),
    st.text(max_size=6),
    st.lists(st.integers(), max_size=2),
)
DETAILS = st.one_of(COUNT, st.fixed_dictionaries({}, optional={"cached_tokens": COUNT, "reasoning_tokens": COUNT}))
COUNTS = ("prompt_tokens", "completion_tokens", "total_tokens", "input_tokens", "output_tokens")
DETAIL_NAMES = ("prompt_tokens_details", "completion_tokens_details", "input_tokens_details", "output_tokens_details")
ODD_USAGE = st.one_of(
    st.sampled_from([None, {}]),  # None: the gateway counts; {}: it sends no usage at all
    st.fixed_dictionaries({}, optional={**dict.fromkeys(COUNTS, COUNT), **dict.fromkeys(DETAIL_NAMES, DETAILS)}),
)
REPLIES = st.fixed_dictionaries(
    {
        "endpoint": st.sampled_from(["chat", "respond"]),
        "text": st.text(max_size=40),
        "reasoning": st.text(max_size=10),
        "usage": ODD_USAGE,
        "tool_calls": st.lists(st.tuples(st.sampled_from(["f", "g"]), st.text(max_size=12)), max_size=2),
        "n": st.integers(1, 3),
        "fault": st.sampled_from([None, None, "cut", "http", "error-frame"]),
        "options": st.sampled_from(["", "--no-context", "--new", "-t 0.7", "--stateless", "--no-stream"]),
    }
)


def gateway_plan(reply) -> dict:
    plan = {"text": reply["text"] or "x", "reasoning": reply["reasoning"], "tool_calls": reply["tool_calls"]}
    plan["usage"] = reply["usage"] if reply["usage"] is not None else None
    if reply["fault"] == "cut":
        plan["cut_after"] = 1
    elif reply["fault"] == "http":
        plan.update(status=500, error_body={"error": {"message": "boom", "type": "server_error"}})
    elif reply["fault"] == "error-frame":
        plan.update(cut_after=1, ending="clean", frames=['data: {"error": {"message": "mid-stream", "code": 500}}\n\n'])
    return plan


@pytest.mark.kernel  # the slow tier: a long sweep (pytest -m unit stays under a minute)
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(replies=st.lists(REPLIES, min_size=2, max_size=4))
def test_every_record_the_magics_write_validates(ip, gateway, replies):
    fresh_kernel(ip).replay = "off"
    gateway.plans.clear()
    for reply in replies:
        gateway.plan(**gateway_plan(reply))
        magic = reply["endpoint"]
        options = reply["options"]
        if magic == "chat":
            options = options.replace("--stateless", "") + f" -n {reply['n']}"
        run(ip, f"%%{magic} {options}\nQuestion")
    notebook = conversations(ip)
    written = [t for c in notebook.conversations.values() for t in c.turns]
    assert len(written) == len(replies)
    for t in written:
        rec = record.record_of(t)
        assert record.validate(rec) == [], (rec, replies)
        json.dumps(rec, allow_nan=False)  # strict JSON, as the notebook file must be
        assert t.context_tokens is None or type(t.context_tokens) is int
    lineage.merge(Conversations(), written)  # and they restore


def test_cli_replay_rebuilds_a_partly_chained_request():
    from elk_jupyter.cli.main import rebuilt_request

    body = {
        "model": "m",
        "previous_response_id": "resp_a",
        "input": [
            {"type": "message", "role": "user", "content": "question b"},
            {"type": "message", "role": "assistant", "content": "answer b"},
            {"type": "message", "role": "user", "content": "question c"},
        ],
    }
    c = turn("c", "b", ["a", "b"], endpoint="responses", request=body)
    new = {"a": {"id": "resp_new_a", "text": "new a"}, "b": {"id": "resp_new_b", "text": "new b"}}
    rebuilt = rebuilt_request(c, new, {}, {"resp_a": "a", "resp_b": "b"})
    assert rebuilt["previous_response_id"] == "resp_new_a"
    assert [item["content"] for item in rebuilt["input"]] == ["question b", "new b", "question c"]
    assert body["previous_response_id"] == "resp_a"  # the recorded body is left alone
