"""The chat panel's Python side in a real IPython shell against the fake gateway (real HTTP, real SSE):
a turn runs on a worker thread through the magics' runner, Stop keeps the partial reply, one turn
at a time, one history with %%chat, and every finished turn published with its record."""

from __future__ import annotations

import json
import time

import pytest
from IPython.utils.capture import capture_output

from elk_jupyter.display.turn_output import TURN_MIME, whole_view
from elk_jupyter.errors import ElkError, StreamError
from elk_jupyter.front.chat_panel import Busy, ChatPanel
from elk_jupyter.records.turn import RECORD_KEY, validate
from tests.environment import conversations, elk_env, fresh_shell, use_env

KEY = "sk-test-panel-1234567890"


@pytest.fixture
def ip(gateway, monkeypatch, tmp_path):
    use_env(monkeypatch, elk_env(gateway.base_url, KEY, tmp_path / "cache"), unset=("ELK_REPLAY", "JPY_SESSION_NAME"))
    shell, _ = fresh_shell()
    yield shell
    shell.parent_header = {}


def wait_for(condition, seconds=10.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_a_sent_message_streams_on_a_worker_thread_and_publishes_its_turn(ip, gateway):
    gateway.plan(text="Hello from the panel", delay=0.01)
    panel = ChatPanel(conversation="talk", model="fake-large")
    with capture_output() as captured:
        outcome = panel.send("Say hello").result(timeout=10)
    assert outcome.reply.text == "Hello from the panel"
    body = gateway.bodies("/chat/completions")[-1]
    assert body["model"] == "fake-large" and body["messages"][-1] == {"role": "user", "content": "Say hello"}
    [entry] = panel.transcript
    assert entry["prompt"] == "Say hello" and entry["view"]["text"] == "Hello from the panel"
    assert entry["cell"] == "%%chat -c talk -m fake-large\nSay hello"
    assert not panel.busy and panel.live == "" and panel.notice == ""
    prompt, turn = captured.outputs
    assert "Say hello" in prompt.data["text/plain"]
    assert "text" not in turn.data[TURN_MIME]  # kept once, in the record
    assert whole_view(turn.data, turn.metadata)["text"] == "Hello from the panel"
    record = turn.metadata[RECORD_KEY]
    assert validate(record) == [] and record["turn"]["conversation"] == "talk"


def test_stop_ends_the_stream_at_once_and_keeps_the_partial_reply_interrupted(ip, gateway):
    gateway.plan(text=" ".join(f"w{i}" for i in range(400)), delay=0.02)
    panel = ChatPanel(conversation="long")
    future = panel.send("Talk for a long time")
    wait_for(lambda: gateway.in_flight == 1 and panel.live != "")
    time.sleep(0.3)
    panel.stop()
    with pytest.raises(StreamError, match="interrupted by the user; partial reply kept in turn"):
        future.result(timeout=5)
    wait_for(lambda: gateway.in_flight == 0, seconds=2)  # the connection was closed
    [turn] = conversations(ip).conversation("long").turns
    assert turn.status == "interrupted" and turn.text.startswith("w0 w1 ") and len(turn.text.split()) < 400
    assert conversations(ip).conversation("long").active == []  # a partial reply joins only if accepted
    [entry] = panel.transcript
    assert entry["status"] == "interrupted" and not entry["ok"]
    panel._on_message(panel, {"action": "accept", "turn": turn.id}, [])
    assert conversations(ip).conversation("long").active == [turn.id]


def test_one_turn_at_a_time_per_conversation_and_cells_run_meanwhile(ip, gateway):
    gateway.plan(text=" ".join(["word"] * 60), delay=0.02)
    panel = ChatPanel(conversation="busy")
    other = ChatPanel(conversation="busy")
    future = panel.send("first")
    wait_for(lambda: panel.live != "")
    with pytest.raises(Busy, match="conversation 'busy' is busy"):
        other.send("second")
    other._on_message(other, {"action": "send", "text": "second"}, [])
    assert "is busy" in other.notice
    assert ip.run_cell("x = sum(range(1000))").success  # the kernel's thread is free
    assert not future.done() and panel.busy  # the cell ran and finished while the reply streams
    future.result(timeout=10)
    assert len(gateway.bodies("/chat/completions")) == 1


def test_panel_and_magics_share_one_history(ip, gateway):
    gateway.plan(text="panel answer")
    gateway.plan(text="cell answer")
    panel = ChatPanel(conversation="shared")
    panel.send("from the panel").result(timeout=10)
    with capture_output() as history:
        ip.run_line_magic("elk", "history shared")
    assert "from the panel" in history.stdout
    with capture_output():
        ip.run_cell_magic("chat", "-c shared", "from a cell")
    messages = gateway.bodies("/chat/completions")[-1]["messages"]
    assert [m["content"] for m in messages] == ["from the panel", "panel answer", "from a cell"]
    panel._after_cell()  # IPython's post_run_cell event, as a kernel fires it after the cell
    assert [e["prompt"] for e in panel.transcript] == ["from the panel", "from a cell"]


def test_regenerate_keeps_a_sibling_and_edit_forks_with_the_original_restorable(ip, gateway):
    for text in ("one", "two", "three", "edited answer"):
        gateway.plan(text=text)
    panel = ChatPanel(conversation="branches")
    first = panel.send("q1").result(timeout=10).turn
    second = panel.send("q2").result(timeout=10).turn
    panel._on_message(panel, {"action": "regenerate", "turn": second.id}, [])
    wait_for(lambda: not panel.busy and len(panel.transcript) == 2 and panel.transcript[1]["id"] != second.id)
    regenerated = panel.transcript[1]
    assert regenerated["view"]["text"] == "three" and regenerated["siblings"][0] == second.id
    assert gateway.bodies()[-1]["messages"][-1]["content"] == "q2"  # sampled again, same question
    panel._on_message(panel, {"action": "edit", "turn": first.id, "text": "q1 edited"}, [])
    wait_for(lambda: not panel.busy and panel.transcript[0]["prompt"] == "q1 edited")
    assert [e["prompt"] for e in panel.transcript] == ["q1 edited"]
    assert gateway.bodies()[-1]["messages"] == [{"role": "user", "content": "q1 edited"}]
    panel._on_message(panel, {"action": "branch", "turn": first.id}, [])  # back to the original branch
    assert [e["id"] for e in panel.transcript] == [first.id, regenerated["id"]]


def test_to_cell_text_sends_exactly_the_panel_request(ip, gateway):
    gateway.plan(text="a")
    gateway.plan(text="a")
    panel = ChatPanel(conversation="exact", model="fake-large")
    panel.temperature, panel.max_tokens, panel.reasoning_effort = "0", "64", "low"
    panel.system = 'Be "terse"; use $HOME literally'
    panel.send("Question with 'quotes' and $dollar").result(timeout=10)
    sent = gateway.bodies()[-1]
    cell = panel.transcript[0]["cell"]
    line, prompt = cell.split("\n", 1)
    ip.run_line_magic("elk", "reset exact")
    with capture_output():
        ip.run_cell_magic("chat", line.removeprefix("%%chat "), prompt)
    assert gateway.bodies()[-1] == sent
    assert sent["temperature"] == 0 and sent["max_tokens"] == 64 and sent["reasoning_effort"] == "low"


def test_elk_panel_opens_a_panel_with_its_options(ip, gateway):
    panel = ip.run_line_magic("elk", "panel -c notes -m fake-large --endpoint responses")
    assert isinstance(panel, ChatPanel)
    assert (panel.conversation, panel.model, panel.endpoint) == ("notes", "fake-large", "responses")
    wait_for(lambda: panel.models == ["fake-large", "fake-small"])  # GET /v1/models, off the kernel's thread
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="invalid choice"):
        ip.run_line_magic("elk", "panel --endpoint nope")


def test_stop_shuts_the_connection_of_a_server_that_went_silent(ip, gateway):
    gateway.plan(text="a b c d e f g h", cut_after=3, ending="stall")  # then 30 s of silence
    panel = ChatPanel(conversation="silent")
    future = panel.send("Hello?")
    wait_for(lambda: gateway.in_flight == 1 and panel.live != "")
    time.sleep(0.3)  # the three chunks arrive, then nothing
    panel.stop()
    with pytest.raises(StreamError):
        future.result(timeout=5)  # long before the stall (30 s) or the read timeout (600 s) ends
    [turn] = conversations(ip).conversation("silent").turns
    assert turn.status == "interrupted" and turn.text.startswith("a b")
    assert not panel.busy and "partial reply kept" in panel.notice


def test_tools_run_only_after_the_panel_asks_and_attachments_go_as_the_magics_send_them(ip, gateway, tmp_path):
    ip.run_cell("def word_count(text: str) -> int:\n    'Count the words of text.'\n    return len(text.split())")
    (tmp_path / "notes.txt").write_text("some notes")
    gateway.plan(tool_calls=[("word_count", '{"text": "to be or not"}')], text="")
    gateway.plan(text="Four.")
    panel = ChatPanel(conversation="tools")
    watcher = ChatPanel(conversation="tools")  # a second panel on the same conversation
    panel.tools, panel.attach_files = "word_count", str(tmp_path / "notes.txt")
    future = panel.send("How many words?")
    wait_for(lambda: panel.approval is not None)
    assert panel.approval == {"name": "word_count", "arguments": '{"text": "to be or not"}'}
    assert len(gateway.bodies()) == 1  # nothing ran yet
    panel._on_message(panel, {"action": "approve", "run": True}, [])
    assert future.result(timeout=10).reply.text == "Four."
    first, follow_up = gateway.bodies()
    assert [t["function"]["name"] for t in first["tools"]] == ["word_count"]
    assert "some notes" in json.dumps(first["messages"][-1]["content"])
    assert follow_up["messages"][-1] == {"role": "tool", "tool_call_id": "call_1_0", "content": "4"}
    assert panel.approval is None and "--tools word_count --approve --file" in panel.transcript[0]["cell"]
    assert [e["prompt"] for e in watcher.transcript] == ["How many words?"]


def test_a_declined_or_stopped_tool_call_does_not_run(ip, gateway):
    ip.run_cell(
        "calls = []\ndef record(text: str) -> str:\n    'Record text.'\n    calls.append(text)\n    return 'ok'"
    )
    gateway.plan(tool_calls=[("record", '{"text": "x"}')], text="")
    gateway.plan(text="Declined, fine.")
    panel = ChatPanel(conversation="decline")
    panel.tools = "record"
    future = panel.send("Record x")
    wait_for(lambda: panel.approval is not None)
    panel._on_message(panel, {"action": "approve", "run": False}, [])
    future.result(timeout=10)
    assert ip.user_ns["calls"] == [] and "declined" in gateway.bodies()[-1]["messages"][-1]["content"]


def test_to_cell_of_a_multiline_system_prompt_says_what_a_magic_line_cannot_hold(ip, gateway):
    gateway.plan(text="a")
    gateway.plan(text=" ".join(["w"] * 300), delay=0.02)
    panel = ChatPanel(conversation="lines")
    panel.system = "Line one.\nLine two."
    panel.send("first").result(timeout=10)
    future = panel.send("second")
    wait_for(lambda: panel.live != "")
    panel.stop()
    with pytest.raises(StreamError):  # an interrupted turn has its "to cell" text too
        future.result(timeout=10)
    first, second = panel.transcript
    assert first["cell"] == "%%chat -c lines\nfirst" and "line breaks" in first["cell_note"]
    assert second["status"] == "interrupted" and second["cell"] == "%%chat -c lines\nsecond"
    assert gateway.bodies()[0]["messages"][0] == {"role": "system", "content": "Line one.\nLine two."}


def test_fork_new_and_switch_conversations_from_the_panel(ip, gateway):
    gateway.plan(text="one")
    gateway.plan(text="two")
    panel = ChatPanel(conversation="main")
    first = panel.send("q1").result(timeout=10).turn
    panel.send("q2").result(timeout=10)
    for _ in range(2):
        panel.conversation = "main"
        panel._on_message(panel, {"action": "fork", "turn": first.id}, [])
    assert panel.conversation == f"main@{first.short_id}-2"
    assert [e["prompt"] for e in panel.transcript] == ["q1"]  # the fork's context: up to that turn
    assert {"main", f"main@{first.short_id}"} <= set(panel.conversations)
    panel._on_message(panel, {"action": "new", "name": "  "}, [])
    assert "1 to 100 printable characters" in panel.notice and panel.conversation == f"main@{first.short_id}-2"
    panel._on_message(panel, {"action": "new", "name": "fresh"}, [])
    assert panel.conversation == "fresh" and panel.transcript == []
    panel.conversation = "main"
    assert [e["prompt"] for e in panel.transcript] == ["q1", "q2"]


def test_responses_endpoint_chains_and_a_server_error_is_one_line_then_the_next_turn_works(ip, gateway):
    gateway.plan(text="first reply")
    gateway.plan(status=401, error_body={"error": {"message": f"bad key {KEY}", "type": "auth", "code": "invalid"}})
    gateway.plan(text="third reply")
    panel = ChatPanel(conversation="resp", endpoint="responses")
    panel.send("one").result(timeout=10)
    with pytest.raises(ElkError) as failed:
        panel.send("two").result(timeout=10)
    assert "401" in str(failed.value) and KEY not in str(failed.value) and KEY not in panel.notice
    assert "\n" not in panel.notice and not panel.busy
    assert panel.send("three").result(timeout=10).reply.text == "third reply"
    first, _, third = gateway.bodies("/responses")
    assert first["input"] == "one" and third["previous_response_id"]  # chained like %%respond
    assert panel.transcript[-1]["cell"] == "%%respond -c resp\nthree"


def test_a_panel_cell_run_again_restores_its_saved_turns_and_names_a_broken_record(ip, gateway, tmp_path, monkeypatch):
    import nbformat

    gateway.plan(text="kept answer")
    cell = {"metadata": {"cellId": "panel-cell"}, "content": {"code": "%elk panel -c kept"}}
    ip.parent_header = cell
    with capture_output() as first:
        ChatPanel(conversation="kept").send("kept question").result(timeout=10)
    outputs = [nbformat.v4.new_output("display_data", o.data, metadata=o.metadata) for o in first.outputs]
    broken = nbformat.v4.new_output("display_data", {"text/plain": "x"}, metadata={RECORD_KEY: {"turn": {"id": 3}}})
    code = nbformat.v4.new_code_cell("%elk panel -c kept", id="panel-cell", outputs=[*outputs, broken])
    path = tmp_path / "saved.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[code]), str(path))
    monkeypatch.setenv("JPY_SESSION_NAME", str(path))
    fresh_shell()  # a new kernel: nothing in memory
    ip.parent_header = cell
    panel = ChatPanel(conversation="kept")
    assert [e["prompt"] for e in panel.transcript] == ["kept question"]
    assert "record 2" in panel.notice and "invalid" in panel.notice
    with capture_output() as again:
        ip.events.trigger("post_run_cell", None)  # the cell ends: its turns go back into its outputs
    kept = [o.metadata[RECORD_KEY]["turn"]["reply"]["text"] for o in again.outputs if RECORD_KEY in o.metadata]
    assert kept == ["kept answer"]
    gateway.plan(text="continued")
    with capture_output():
        ip.run_cell_magic("chat", "-c kept", "and then?")
    assert [m["content"] for m in gateway.bodies()[-1]["messages"]] == ["kept question", "kept answer", "and then?"]
