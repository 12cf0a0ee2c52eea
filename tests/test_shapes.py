"""Real gateway shapes (issue 12), as bytes, decoded at every split point of the stream.

Each stream is built as the server sends it and read by the real SSE decoder, dialect and
Reply, whole, cut once at every byte offset, and cut at every byte; every reading must give
the same complete reply. The surrogate cases then go through a real kernel (widget, record,
cache) to check that nothing downstream meets a lone surrogate.
"""

from __future__ import annotations

import json

import pytest

from elk_jupyter.gateway.client import collect
from elk_jupyter.gateway.dialects import dialect
from elk_jupyter.gateway.dialects.chat_stream import chat_events_from_body
from elk_jupyter.gateway.reply import Reply
from elk_jupyter.gateway.sse import iter_events
from tests.environment import kernel_env
from tests.kernel import Kernel
from tests.scripted_server import Script

CHAT, RESPONSES = "chat", "responses"


def read(endpoint: str, pieces: list[bytes]) -> dict:
    parser = dialect(endpoint).stream()

    def events():
        for sse in iter_events(pieces):
            yield from parser.feed(sse)
            if parser.done:
                break
        yield from parser.end()

    state = collect(events(), Reply(endpoint)).to_dict()
    del state["timing"], state["started_at"]
    return state


def at_every_split(endpoint: str, stream: bytes) -> dict:
    """The reply, after checking that every chunking of ``stream`` gives the same one."""
    whole = read(endpoint, [stream])
    for cut in range(1, len(stream)):
        assert read(endpoint, [stream[:cut], stream[cut:]]) == whole, f"cut at byte {cut}"
    assert read(endpoint, [stream[i : i + 1] for i in range(len(stream))]) == whole, "every byte"
    return whole


def frames(*objects, ascii_escapes: bool = False) -> bytes:
    """``data:`` frames; ``ascii_escapes`` writes non-ASCII as JSON \\u escapes (as JS servers do)."""
    out = b""
    for obj in objects:
        data = obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=ascii_escapes)
        out += f"data: {data}\n\n".encode("utf-8", "surrogatepass")
    return out


def chunk(delta: dict, finish=None) -> dict:
    return {"id": "c1", "model": "m", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


# -- Mistral Magistral: content as a list of thinking and text parts


def thinking(text: str) -> dict:
    return {"type": "thinking", "thinking": [{"type": "text", "text": text}]}


def test_magistral_content_parts_stream_thinking_as_reasoning_and_text_as_answer():
    stream = frames(
        chunk({"role": "assistant", "content": [thinking("The user greets. ")]}),
        chunk({"content": [thinking("Answer briefly.")]}),
        chunk({"content": [{"type": "text", "text": "Bonjour"}]}),
        chunk({"content": [{"type": "text", "text": " !"}]}),
        chunk({"content": ""}, "stop"),
        "[DONE]",
    )
    reply = at_every_split(CHAT, stream)
    assert (reply["reasoning"], reply["text"], reply["status"]) == (
        "The user greets. Answer briefly.",
        "Bonjour !",
        "completed",
    )


def test_magistral_parts_in_one_chunk_and_plain_string_content_mixed():
    stream = frames(
        chunk({"content": [thinking("hmm"), {"type": "text", "text": "A"}]}),
        chunk({"content": "B"}),
        chunk({"content": [{"type": "image_url", "image_url": {"url": "x"}}, {"type": "text", "text": 3}]}),
        chunk({}, "stop"),
        "[DONE]",
    )
    reply = at_every_split(CHAT, stream)
    assert (reply["reasoning"], reply["text"]) == ("hmm", "AB")


def test_magistral_message_content_list_in_a_whole_body():
    body = {
        "id": "c1",
        "model": "magistral-small",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": [thinking("Let me think."), {"type": "text", "text": "42"}],
                },
                "finish_reason": "stop",
            }
        ],
    }
    reply = collect(chat_events_from_body(body), Reply(CHAT))
    assert (reply.reasoning, reply.text, reply.status) == ("Let me think.", "42", "completed")


# -- parallel tool calls


def whole_call(call_id: str, name: str, arguments: dict, **extra) -> dict:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}, **extra}


@pytest.mark.parametrize("index", [None, 0], ids=["no index (Gemini)", "index 0 repeated"])
def test_parallel_calls_each_whole_in_one_chunk_with_its_own_id_stay_separate(index):
    extra = {} if index is None else {"index": index}
    stream = frames(
        chunk({"role": "assistant", "tool_calls": [whole_call("call_a", "weather", {"city": "Paris"}, **extra)]}),
        chunk({"tool_calls": [whole_call("call_b", "weather", {"city": "Tokyo"}, **extra)]}),
        chunk({"tool_calls": [whole_call("call_c", "time", {"tz": "UTC"}, **extra)]}),
        chunk({}, "tool_calls"),
        "[DONE]",
    )
    calls = at_every_split(CHAT, stream)["tool_calls"]
    assert [(c["index"], c["id"], c["function"]["name"]) for c in calls] == [
        (0, "call_a", "weather"),
        (1, "call_b", "weather"),
        (2, "call_c", "time"),
    ]
    assert [json.loads(c["function"]["arguments"]) for c in calls] == [
        {"city": "Paris"},
        {"city": "Tokyo"},
        {"tz": "UTC"},
    ]


def test_a_call_without_index_or_id_continues_the_last_call():
    stream = frames(
        chunk({"tool_calls": [{"id": "call_a", "function": {"name": "f", "arguments": '{"a":'}}]}),
        chunk({"tool_calls": [{"function": {"arguments": " 1}"}}]}),
        chunk({"tool_calls": [{"id": "call_a", "function": {"arguments": ""}}]}),  # an id repeated
        chunk({}, "tool_calls"),
        "[DONE]",
    )
    (call,) = at_every_split(CHAT, stream)["tool_calls"]
    assert (call["id"], json.loads(call["function"]["arguments"])) == ("call_a", {"a": 1})


# -- Responses: a function call sent only whole


def event(kind: str, n: int, **fields) -> dict:
    return {"type": kind, "sequence_number": n, **fields}


CALL_ITEM = {
    "type": "function_call",
    "id": "fc_1",
    "call_id": "call_1",
    "name": "weather",
    "arguments": '{"city": "Oslo"}',
    "status": "completed",
}


def completed(n: int, output: list) -> dict:
    response = {"id": "resp_1", "model": "m", "status": "completed", "output": output}
    return event("response.completed", n, response=response)


def test_a_function_call_only_in_output_item_done():
    stream = frames(
        event("response.created", 0, response={"id": "resp_1", "model": "m"}),
        event("response.output_item.done", 1, output_index=0, item=CALL_ITEM),
        completed(2, []),
    )
    assert at_every_split(RESPONSES, stream)["tool_calls"] == [
        {
            "index": 0,
            "id": "call_1",
            "type": "function",
            "function": {"name": "weather", "arguments": '{"city": "Oslo"}'},
        }
    ]


def test_a_function_call_only_in_response_completed():
    stream = frames(event("response.created", 0, response={"id": "resp_1"}), completed(1, [CALL_ITEM]))
    (call,) = at_every_split(RESPONSES, stream)["tool_calls"]
    assert (call["id"], call["function"]) == ("call_1", {"name": "weather", "arguments": '{"city": "Oslo"}'})


def test_a_streamed_function_call_is_not_duplicated_by_done_and_completed():
    added = dict(CALL_ITEM, arguments="", status="in_progress")
    stream = frames(
        event("response.output_item.added", 0, output_index=0, item=added),
        event("response.function_call_arguments.delta", 1, item_id="fc_1", output_index=0, delta='{"city": '),
        event("response.function_call_arguments.delta", 2, item_id="fc_1", output_index=0, delta='"Oslo"}'),
        event("response.output_item.done", 3, output_index=0, item=CALL_ITEM),
        completed(4, [CALL_ITEM]),
    )
    (call,) = at_every_split(RESPONSES, stream)["tool_calls"]
    assert call["function"]["arguments"] == '{"city": "Oslo"}'


def test_arguments_streamed_without_an_added_item_get_their_name_from_done():
    stream = frames(
        event("response.function_call_arguments.delta", 0, item_id="fc_1", output_index=0, delta='{"city": "Oslo"}'),
        event("response.output_item.done", 1, output_index=0, item=CALL_ITEM),
        completed(2, [CALL_ITEM]),
    )
    (call,) = at_every_split(RESPONSES, stream)["tool_calls"]
    assert (call["id"], call["function"]) == ("call_1", {"name": "weather", "arguments": '{"city": "Oslo"}'})


def test_a_call_added_without_arguments_gets_them_from_done():
    stream = frames(
        event("response.output_item.added", 0, output_index=0, item=dict(CALL_ITEM, arguments="")),
        event("response.output_item.done", 1, output_index=0, item=CALL_ITEM),
        completed(2, [dict(CALL_ITEM, id=None)]),  # no item id this time: the call_id matches it
    )
    (call,) = at_every_split(RESPONSES, stream)["tool_calls"]
    assert call["function"]["arguments"] == '{"city": "Oslo"}'


# -- UTF-16 surrogate halves in separate frames

EMOJI_HALVES = ("\ud83d", "\ude00")  # U+1F600 as the two JSON escapes a JavaScript server may send


def surrogate_stream(endpoint: str, pieces) -> bytes:
    if endpoint == CHAT:
        return frames(*(chunk({"content": p}) for p in pieces), chunk({}, "stop"), "[DONE]", ascii_escapes=True)
    deltas = [event("response.output_text.delta", i, item_id="m", delta=p) for i, p in enumerate(pieces)]
    return frames(*deltas, completed(len(pieces), []), ascii_escapes=True)


@pytest.mark.parametrize("endpoint", [CHAT, RESPONSES])
@pytest.mark.parametrize(
    ("pieces", "text"),
    [
        (["Hi ", *EMOJI_HALVES, "!"], "Hi \U0001f600!"),
        (EMOJI_HALVES, "\U0001f600"),
        (["a\ud83d", "\ude00b"], "a\U0001f600b"),
        (["a\ud83d", "b"], "a\ufffdb"),  # a high half never completed
        (["a", "\ude00b"], "a\ufffdb"),  # a low half alone
        (["x\udc00y"], "x\ufffdy"),
        (["ends with ", "\ud83d"], "ends with \ufffd"),  # cut at the end of the stream
    ],
)
def test_surrogate_halves_join_across_frames_and_lone_ones_are_replaced(endpoint, pieces, text):
    reply = at_every_split(endpoint, surrogate_stream(endpoint, pieces))
    assert reply["text"] == text
    json.dumps(reply, ensure_ascii=False).encode("utf-8")  # never a UnicodeEncodeError


def test_surrogates_in_reasoning_arguments_ids_and_usage_are_safe():
    stream = frames(
        {"id": "c\ud800", "model": "m\udfff", "choices": [{"index": 0, "delta": {"reasoning_content": "r\ud83d"}}]},
        chunk(
            {
                "reasoning_content": "\ude00",
                "tool_calls": [{"index": 0, "id": "k", "function": {"arguments": "\ud83d"}}],
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": "\ude00"}}]}, "tool_calls"),
        {"id": "c", "choices": [], "usage": {"prompt_tokens": 1, "note\ud800": "\udbff"}},
        "[DONE]",
        ascii_escapes=True,
    )
    reply = at_every_split(CHAT, stream)
    assert (reply["id"], reply["model"], reply["reasoning"]) == ("c\ufffd", "m\ufffd", "r\U0001f600")
    assert reply["tool_calls"][0]["function"]["arguments"] == "\U0001f600"
    assert reply["usage"] == {"prompt_tokens": 1, "note\ufffd": "\ufffd"}
    json.dumps(reply, ensure_ascii=False).encode("utf-8")


# -- and downstream: widget, record and cache in a real kernel


@pytest.fixture
def kernel(scripted, tmp_path):
    k = Kernel(kernel_env(scripted.base_url, "sk-elk-shapes-test-0000", tmp_path / "cache", model="m", replay="auto"))
    assert k.execute("%load_ext elk_jupyter").status == "ok"
    yield k
    k.close()


@pytest.mark.parametrize("endpoint", [CHAT, RESPONSES])
def test_split_and_lone_surrogates_through_a_real_kernel_widget_record_and_cache(scripted, kernel, endpoint):
    stream = surrogate_stream(endpoint, ["Hi ", *EMOJI_HALVES, " and a lone \ud83d", "."])
    scripted.queue(Script(body=[stream]).split(*range(1, len(stream))))
    magic = "%%chat" if endpoint == CHAT else "%%respond"
    result = kernel.execute(f"{magic} --new\nhello")
    assert result.status == "ok", result.error_text
    record = result.last_bundle()["metadata"]["elk_jupyter"]
    assert record["turn"]["reply"]["text"] == "Hi \U0001f600 and a lone \ufffd."
    again = kernel.execute(f"{magic} --new --replay auto\nhello")  # the same request, replayed from the cache
    assert again.status == "ok", again.error_text
    assert again.last_bundle()["metadata"]["elk_jupyter"]["turn"]["replayed"] is True
    assert len(scripted.requests) == 1
