"""Long replies stay exact on every per-event path that must be O(delta) (issue 12, point 10).

Tests never time (the per-MB figures are bench/long_replies.py's, in docs/performance.md); they
check the result at sizes where the quadratic versions these paths had would not finish in any
reasonable time (a 2 MB reply through the terminal view took 98 s), and the cursor the views use.
"""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout

import pytest

from elk_jupyter.front.views import TextView as _TextView
from elk_jupyter.gateway.client import collect
from elk_jupyter.gateway.dialects import dialect
from elk_jupyter.gateway.events import ReasoningDelta, TextDelta, ToolCallDelta
from elk_jupyter.gateway.reply import Choice, Reply
from elk_jupyter.gateway.sse import SSEDecoder, iter_events

CHAT = "chat"

PIECE = "0123456789abcdé "  # 16 characters, one of them not ASCII


def frame(delta: dict, finish=None) -> bytes:
    chunk = {"id": "c", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + json.dumps(chunk, ensure_ascii=False).encode() + b"\n\n"


def consume(body: bytes, read_size: int = 65536, on_event=None) -> Reply:
    parser = dialect(CHAT).stream()

    def events():
        for sse in iter_events(body[i : i + read_size] for i in range(0, len(body), read_size)):
            yield from parser.feed(sse)
            if parser.done:
                break
        yield from parser.end()

    reply = Reply(CHAT)
    collect(events(), reply, on_event and (lambda _event: on_event(reply)))
    return reply


@pytest.mark.kernel  # the slow tier: a long sweep (pytest -m unit stays under a minute)
def test_a_2_mb_reply_with_reasoning_through_the_terminal_view_is_printed_exactly():
    thinking, answer = PIECE * 8192, PIECE * (131072 - 8192)  # 2 MB in 16-character deltas
    body = (
        frame({"reasoning_content": PIECE}) * 8192
        + frame({"content": PIECE}) * (131072 - 8192)
        + frame({}, "stop")
        + b"data: [DONE]\n\n"
    )
    out = io.StringIO()
    with redirect_stdout(out):
        view = _TextView("chat", "default", "m", "no earlier turns", False)
        reply = consume(body, on_event=view.show)
    assert (reply.reasoning, reply.text) == (thinking, answer)
    header = "[chat · default · m · no earlier turns]\n"
    assert out.getvalue() == header + thinking + "\n---\n" + answer


@pytest.mark.kernel  # the slow tier: a long sweep (pytest -m unit stays under a minute)
def test_2_mb_of_tool_call_arguments_in_small_deltas_are_exact_json():
    value = PIECE * 131072
    arguments = json.dumps({"text": value}, ensure_ascii=False)
    pieces = [arguments[i : i + 16] for i in range(0, len(arguments), 16)]
    body = frame({"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "save", "arguments": ""}}]})
    body += b"".join(frame({"tool_calls": [{"index": 0, "function": {"arguments": p}}]}) for p in pieces)
    body += frame({}, "tool_calls") + b"data: [DONE]\n\n"
    (call,) = consume(body).tool_calls
    assert json.loads(call["function"]["arguments"]) == {"text": value}


def test_a_10_mb_data_line_arriving_in_4_kb_reads_is_one_event():
    data = b'{"content": "' + b"x" * (10 << 20) + b'"}'
    stream = b"data: " + data + b"\n\n"
    decoder = SSEDecoder()
    events = []
    for i in range(0, len(stream), 4096):
        events += decoder.feed(stream[i : i + 4096])
    events += decoder.finish()
    assert [e.data.encode() for e in events] == [data]


def test_the_views_cursor_reads_exactly_what_came_after_it_even_after_the_text_was_joined():
    choice = Choice(0)
    shown = ""
    for n, piece in enumerate(["Hel", "lo", "", " wor", "ld", "!" * 5]):
        choice.add_text(piece)
        if n == 3:
            assert choice.text == "Hello wor"  # a read joins the pieces: the cursor must not care
        shown += choice.text_from(len(shown))
        assert shown == choice.text
    assert choice.text_from(0) == "Hello world!!!!!" and choice.text_from(99) == ""


def test_the_reply_accumulates_each_kind_of_delta_in_order():
    reply = Reply(CHAT)
    for event in [
        ReasoningDelta("a"),
        ReasoningDelta("b"),
        TextDelta("c"),
        ToolCallDelta(1, '{"y":', id="k2", name="g"),
        ToolCallDelta(0, "{", id="k1", name="f"),
        ToolCallDelta(1, " 2}"),
        ToolCallDelta(0, "}"),
        TextDelta("d", choice=1),
    ]:
        reply.add(event)
    assert (reply.reasoning, reply.text, reply.choices[1].text) == ("ab", "c", "d")
    assert [(c["id"], c["function"]["arguments"]) for c in reply.tool_calls] == [("k1", "{}"), ("k2", '{"y": 2}')]
    restored = Reply.from_dict(reply.to_dict())
    assert restored.to_dict()["tool_calls"] == reply.to_dict()["tool_calls"]
    restored.choices[0].add_tool_call(ToolCallDelta(0, " "))  # a restored call can still grow
    assert restored.tool_calls[0]["function"]["arguments"] == "{} "
