"""The two dialects: request bodies, and SSE bytes -> typed events -> Reply, quirk by quirk.

Each stream here is built as the bytes a server sends (https://platform.openai.com/docs/api-reference/chat-streaming and /responses-streaming, and the gateway shapes in tests/fake_gateway.py) and decoded
by the real SSE decoder, dialect parser and Reply, without any HTTP.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from elk_jupyter.errors import APIError, ElkError, StreamError, error_fields
from elk_jupyter.gateway.client import collect
from elk_jupyter.gateway.dialects import dialect
from elk_jupyter.gateway.dialects.chat_stream import chat_events_from_body
from elk_jupyter.gateway.dialects.responses_stream import responses_events_from_body
from elk_jupyter.gateway.events import ChoiceFinished, Done, Started, TextDelta, UsageReport
from elk_jupyter.gateway.reply import Reply
from elk_jupyter.gateway.sse import iter_events

CHAT, RESPONSES = "chat", "responses"
chat_body = dialect(CHAT).wire_body
responses_body = dialect(RESPONSES).wire_body


def events(endpoint: str, stream: bytes):
    """The events of a whole stream, read the way the client reads one."""
    parser = dialect(endpoint).stream()
    for sse in iter_events([stream]):
        yield from parser.feed(sse)
        if parser.done:
            break
    yield from parser.end()


def reply_of(endpoint: str, stream: bytes) -> Reply:
    return collect(events(endpoint, stream), Reply(endpoint))


def broken(endpoint: str, stream: bytes, error=StreamError) -> tuple[ElkError, Reply]:
    reply = Reply(endpoint)
    with pytest.raises(error) as info:
        collect(events(endpoint, stream), reply)
    return info.value, reply


def sse(*frames, event: bool = False) -> bytes:
    """``data:`` frames from dicts (or raw strings); ``event=True`` adds the ``event:`` line."""
    out = []
    for frame in frames:
        data = frame if isinstance(frame, str) else json.dumps(frame, ensure_ascii=False)
        head = f"event: {frame['type']}\n" if event and isinstance(frame, dict) else ""
        out.append(f"{head}data: {data}\n\n")
    return "".join(out).encode()


def chunk(delta=None, finish=None, index=0, usage=None, choices=None, **extra) -> dict:
    if choices is None:
        choices = [{"index": index, "delta": delta or {}, "logprobs": None, "finish_reason": finish}]
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "model": "m-1",
        "choices": choices,
        "usage": usage,
        **extra,
    }


USAGE = {"prompt_tokens": 19, "completion_tokens": 3, "total_tokens": 22}


# -- request bodies

MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": [{"type": "text", "text": "こんにちは"}], "name": "ann"},
    {
        "role": "assistant",
        "content": None,
        "reasoning_content": "think",
        "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "42"},
]
CHAT_PARAMS = {  # every request field of api/chat-completions.txt
    "temperature": 1,
    "top_p": 1,
    "n": 2,
    "stop": ["\n\n", "END"],
    "max_tokens": 1024,
    "max_completion_tokens": 2048,
    "presence_penalty": 0.5,
    "frequency_penalty": -0.5,
    "logit_bias": {"50256": -100},
    "user": "u-1",
    "tools": [{"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object"}}}],
    "tool_choice": {"type": "function", "function": {"name": "f"}},
    "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
    "seed": 7,
    "reasoning_effort": "high",
    "modalities": ["text", "audio"],
    "audio": {"voice": "alloy", "format": "wav"},
}


def test_chat_body_passes_every_field_unchanged_and_asks_for_usage():
    body = chat_body(MESSAGES, "gpt-5.5", **CHAT_PARAMS)
    assert body == {
        "model": "gpt-5.5",
        "messages": MESSAGES,
        **CHAT_PARAMS,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert json.loads(json.dumps(body)) == body


def test_chat_body_keeps_the_callers_stream_options():
    assert chat_body([], "m", stream_options={"include_usage": False})["stream_options"] == {"include_usage": False}
    assert chat_body([], "m", stream_options={"continuous_usage_stats": True})["stream_options"] == {
        "continuous_usage_stats": True,
        "include_usage": True,
    }


def test_chat_body_without_stream_drops_stream_options():
    body = chat_body(MESSAGES, "gpt-5.5", stream=False, stream_options={"include_usage": True}, max_tokens=5)
    assert body == {"model": "gpt-5.5", "messages": MESSAGES, "max_tokens": 5, "stream": False}


def test_falsy_values_are_kept_and_none_means_unset():
    falsy = {"temperature": 0, "top_p": 0.0, "seed": 0, "presence_penalty": 0, "stop": [], "logit_bias": {}, "user": ""}
    body = chat_body([], "m", stream=False, max_tokens=None, **falsy)
    assert body == {"model": "m", "messages": [], **falsy, "stream": False}
    assert responses_body("hi", "m", temperature=0, max_output_tokens=None) == {
        "model": "m",
        "input": "hi",
        "temperature": 0,
        "stream": True,
    }


def test_responses_body_passes_every_field_unchanged():
    params = {  # every request field of api/responses.txt
        "instructions": "Answer in Chinese.",
        "max_output_tokens": 512,
        "temperature": 1,
        "top_p": 0.9,
        "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}],
        "tool_choice": "auto",
        "reasoning": {"effort": "low", "summary": "auto"},
        "previous_response_id": "resp_1",
        "truncation": "auto",
    }
    items = [{"role": "user", "content": "今天天气真好"}]
    assert responses_body(items, "gpt-5.5", **params) == {"model": "gpt-5.5", "input": items, **params, "stream": True}
    assert responses_body("今天天气真好", "gpt-5.5", stream=False) == {
        "model": "gpt-5.5",
        "input": "今天天气真好",
        "stream": False,
    }


# -- chat dialect


def test_chat_stream_with_usage_chunk_and_done():
    stream = sse(
        chunk({"role": "assistant", "content": "", "refusal": None}),
        chunk({"content": "The"}),
        chunk({"content": " answer"}),
        chunk({}, "stop"),
        chunk(choices=[], usage=USAGE),
        "[DONE]",
    )
    got = list(events(CHAT, stream))
    assert got == [
        Started("chatcmpl-1", "m-1"),
        TextDelta("The"),
        TextDelta(" answer"),
        ChoiceFinished(0, "stop"),
        UsageReport(USAGE),
        Done("completed"),
    ]
    reply = reply_of(CHAT, stream)
    assert (reply.text, reply.finish_reason, reply.usage, reply.status) == ("The answer", "stop", USAGE, "completed")


def test_done_is_a_prefix_match_and_ends_the_stream():
    reply = reply_of(CHAT, sse(chunk({"content": "a"}), "[DONE] ", chunk({"content": "ignored"})))
    assert (reply.text, reply.status) == ("a", "completed")


def test_azure_first_chunk_with_empty_id_and_no_choices():
    azure = {"id": "", "object": "", "model": "", "choices": [], "prompt_filter_results": [{"prompt_index": 0}]}
    reply = reply_of(CHAT, sse(azure, chunk({"role": "assistant", "content": "hi"}), chunk({}, "stop"), "[DONE]"))
    assert (reply.id, reply.model, reply.text) == ("chatcmpl-1", "m-1", "hi")


def test_usage_in_the_finish_chunk():
    reply = reply_of(CHAT, sse(chunk({"content": "a"}), chunk({}, "stop", usage=USAGE), "[DONE]"))
    assert (reply.usage, reply.finish_reason) == (USAGE, "stop")


def test_usage_chunk_with_an_empty_delta_choice_litellm():
    litellm = {"id": "c", "choices": [{"index": 0, "delta": {}}], "usage": USAGE}
    reply = reply_of(CHAT, sse(chunk({"content": "a"}), chunk({}, "stop"), litellm, "[DONE]"))
    assert (reply.text, reply.usage, reply.finish_reason) == ("a", USAGE, "stop")


def test_usage_missing_is_fine():
    reply = reply_of(CHAT, sse(chunk({"content": "a"}), chunk({}, "stop"), "[DONE]"))
    assert (reply.usage, reply.status) == (None, "completed")


def test_usage_on_every_chunk_keeps_the_last():
    first, last = dict(USAGE, completion_tokens=1), dict(USAGE, completion_tokens=2)
    reply = reply_of(CHAT, sse(chunk({"content": "a"}, usage=first), chunk({}, "stop", usage=last), "[DONE]"))
    assert reply.usage == last


def test_chunks_without_finish_reason_or_logprobs_keys():
    bare = {"id": "c", "choices": [{"index": 0, "delta": {"content": "a"}}]}
    assert reply_of(CHAT, sse(bare, "[DONE]")).text == "a"


@pytest.mark.parametrize(
    "field",
    ["reasoning_content", "reasoning"],
)
def test_reasoning_fields_with_null_content(field):
    stream = sse(
        chunk({"role": "assistant", "content": None, field: ""}),
        chunk({"content": None, field: "好的，"}),
        chunk({"content": None, field: "let me see"}),
        chunk({"content": "42", field: None}),
        chunk({}, "stop"),
        "[DONE]",
    )
    reply = reply_of(CHAT, stream)
    assert (reply.reasoning, reply.text) == ("好的，let me see", "42")


def test_reasoning_details_openrouter():
    details = [{"type": "reasoning.text", "text": "step 1"}, {"type": "reasoning.summary", "summary": "; step 2"}]
    reply = reply_of(
        CHAT, sse(chunk({"content": None, "reasoning_details": details}), chunk({"content": "ok"}), "[DONE]")
    )
    assert (reply.reasoning, reply.text) == ("step 1; step 2", "ok")


def test_reasoning_content_wins_over_reasoning_when_both_are_sent():
    reply = reply_of(CHAT, sse(chunk({"reasoning_content": "rc", "reasoning": "r"}), "[DONE]"))
    assert reply.reasoning == "rc"


def test_tool_call_argument_deltas_by_index():
    stream = sse(
        chunk(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"index": 0, "id": "call_A", "type": "function", "function": {"name": "read_file", "arguments": ""}}
                ],
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"pa'}}]}),
        chunk(
            {
                "tool_calls": [
                    {"index": 1, "id": "call_B", "type": "function", "function": {"name": "ls", "arguments": "{}"}}
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'th": "a.txt"}'}}]}),
        chunk({}, "tool_calls"),
        chunk(choices=[], usage=USAGE),
        "[DONE]",
    )
    reply = reply_of(CHAT, stream)
    assert reply.tool_calls == [
        {
            "index": 0,
            "id": "call_A",
            "type": "function",
            "function": {"name": "read_file", "arguments": '{"path": "a.txt"}'},
        },
        {"index": 1, "id": "call_B", "type": "function", "function": {"name": "ls", "arguments": "{}"}},
    ]
    assert (reply.text, reply.finish_reason) == ("", "tool_calls")


def test_n_greater_than_one_interleaved():
    stream = sse(
        chunk({"role": "assistant", "content": ""}, index=0),
        chunk({"role": "assistant", "content": ""}, index=1),
        chunk({"content": "A1"}, index=1),
        chunk({"content": "B0"}, index=0),
        chunk({"content": "A2"}, index=1),
        chunk({}, "length", index=1),
        chunk({"content": "B1"}, index=0),
        chunk({}, "stop", index=0),
        chunk(choices=[], usage=USAGE),
        "[DONE]",
    )
    reply = reply_of(CHAT, stream)
    assert [(c.index, c.text, c.finish_reason) for c in reply.choices] == [(0, "B0B1", "stop"), (1, "A1A2", "length")]
    assert reply.to_dict()["choices"][1]["text"] == "A1A2"


def test_empty_data_frames_are_skipped():
    reply = reply_of(CHAT, b"data:\n\n" + sse(chunk({"content": "a"})) + b"data: \n\n" + sse("[DONE]"))
    assert reply.text == "a"


def test_eof_without_done_after_every_choice_finished_is_complete():
    assert reply_of(CHAT, sse(chunk({"content": "a"}), chunk({}, "stop"))).status == "completed"


def test_eof_without_done_mid_reply_is_a_stream_error_keeping_the_text():
    err, reply = broken(CHAT, sse(chunk({"content": "par"}), chunk({"content": "tial"})))
    assert "[DONE]" in str(err)
    assert (reply.text, reply.status, err.reply) == ("partial", "interrupted", reply)


def test_eof_on_an_empty_stream_is_a_stream_error():
    broken(CHAT, b"")
    broken(RESPONSES, b"")


@pytest.mark.parametrize("data", ['{"id": "c", "choices": [{"ind', "42", '"text"', "[1, 2]", "null"])
def test_malformed_or_non_object_frames_are_stream_errors(data):
    err, reply = broken(CHAT, sse(chunk({"content": "ok"}), data))
    assert reply.text == "ok"
    err, _ = broken(RESPONSES, sse(data))


# -- error frames inside a 200 stream (OpenAI, vLLM, LiteLLM and OpenRouter shapes)

ERROR_FRAMES = {
    "openai": (
        {
            "error": {
                "message": "The server had an error while processing your request. Sorry about that!",
                "type": "server_error",
            }
        },
        "The server had an error while processing your request. Sorry about that!",
        {"type": "server_error", "code": None, "param": None},
    ),
    "vllm": (
        {"error": {"message": "bad input", "type": "BadRequestError", "param": None, "code": 400}},
        "bad input",
        {"type": "BadRequestError", "code": "400", "param": None},
    ),
    "sglang": (
        {"object": "error", "error": {"message": "bad input", "type": "BadRequestError", "param": None, "code": 400}},
        "bad input",
        {"type": "BadRequestError", "code": "400", "param": None},
    ),
    "vllm-old": (
        {"object": "error", "message": "too long", "type": "BadRequestError", "param": None, "code": 400},
        "too long",
        {"type": "BadRequestError", "code": "400", "param": None},
    ),
    "litellm": (
        {"error": {"message": "upstream died", "type": "None", "param": "None", "code": "500"}},
        "upstream died",
        {"type": None, "code": "500", "param": None},
    ),
    "openrouter": (
        {
            "id": "c",
            "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
            "error": {"code": 502, "message": "Provider returned error"},
        },
        "Provider returned error",
        {"type": None, "code": "502", "param": None},
    ),
    "mock": (
        {"type": "error", "error": {"message": "boom", "type": "server_error", "code": "E1"}},
        "boom",
        {"type": "server_error", "code": "E1", "param": None},
    ),
    "string": ({"error": "quota exhausted"}, "quota exhausted", {"type": None, "code": None, "param": None}),
}


@pytest.mark.parametrize("shape", ERROR_FRAMES)
@pytest.mark.parametrize("then_done", [False, True])
def test_chat_error_frame_mid_stream(shape, then_done):
    frame, message, fields = ERROR_FRAMES[shape]
    stream = sse(chunk({"content": "so far"}), frame, *(["[DONE]"] if then_done else []))
    err, reply = broken(CHAT, stream)
    assert message in str(err) and "\n" not in str(err)
    assert "None" not in str(err)
    assert err.fields == fields
    assert (reply.text, reply.status) == ("so far", "interrupted")


def test_openrouter_finish_reason_error_without_error_object():
    err, reply = broken(CHAT, sse(chunk({"content": "a"}), chunk({}, "error")))
    assert "finish_reason error" in str(err)


# -- Responses dialect

RID = "resp_0f9c"


def created(**extra):
    return {
        "type": "response.created",
        "response": {"id": RID, "model": "m-2", "status": "in_progress", "output": [], "usage": None},
        **extra,
    }


def delta(text, kind="response.output_text.delta", **extra):
    return {"type": kind, "item_id": "msg_1", "output_index": 0, "content_index": 0, "delta": text, **extra}


RUSAGE = {"input_tokens": 11, "output_tokens": 18, "total_tokens": 29}


def completed(text="Hello world", status="completed", **response):
    output = [
        {"type": "message", "id": "msg_1", "role": "assistant", "content": [{"type": "output_text", "text": text}]}
    ]
    kind = "response.completed" if status == "completed" else f"response.{status}"
    return {
        "type": kind,
        "response": {"id": RID, "model": "m-2", "status": status, "output": output, "usage": RUSAGE, **response},
    }


@pytest.mark.parametrize("event_lines", [True, False])
@pytest.mark.parametrize("numbered", [True, False])
def test_responses_stream_with_or_without_event_lines_and_sequence_numbers(event_lines, numbered):
    frames = [created(), {"type": "response.in_progress", "response": {}}, delta("Hello"), delta(" world"), completed()]
    if numbered:
        frames = [dict(f, sequence_number=i) for i, f in enumerate(frames)]
    reply = reply_of(RESPONSES, sse(*frames, event=event_lines))
    assert (reply.id, reply.model, reply.text, reply.usage, reply.status) == (
        RID,
        "m-2",
        "Hello world",
        RUSAGE,
        "completed",
    )
    assert reply.response["output"][0]["content"][0]["text"] == "Hello world"


def test_responses_dispatch_on_the_json_type_not_the_event_line():
    stream = (
        b"event: message\n"
        + sse(delta("a"))[:-1]
        + b"\nevent: response.completed\n"
        + sse(delta("b"))
        + sse(completed("ab"))
    )
    assert reply_of(RESPONSES, stream).text == "ab"


def test_responses_duplicate_and_stale_sequence_numbers_are_dropped():
    frames = [
        created(sequence_number=0),
        delta("a", sequence_number=1),
        delta("a", sequence_number=1),
        delta("b", sequence_number=2),
        delta("x", sequence_number=1),
        completed("ab", sequence_number=3),
    ]
    assert reply_of(RESPONSES, sse(*frames)).text == "ab"


def test_responses_reasoning_summary_parts_and_reasoning_text():
    stream = sse(
        created(),
        {"type": "response.reasoning_summary_text.delta", "item_id": "rs_1", "summary_index": 0, "delta": "First"},
        {"type": "response.reasoning_summary_text.delta", "item_id": "rs_1", "summary_index": 0, "delta": " part."},
        {"type": "response.reasoning_summary_text.delta", "item_id": "rs_1", "summary_index": 1, "delta": "Second."},
        {"type": "response.reasoning_text.delta", "item_id": "rs_2", "content_index": 0, "delta": " Raw."},
        delta("Answer"),
        completed("Answer"),
    )
    reply = reply_of(RESPONSES, stream)
    assert (reply.reasoning, reply.text) == ("First part.\n\nSecond. Raw.", "Answer")


def test_responses_refusal_delta_is_text():
    assert reply_of(RESPONSES, sse(delta("No.", "response.refusal.delta"), completed("No."))).text == "No."


def test_responses_function_call_arguments():
    item = {
        "id": "fc_1",
        "type": "function_call",
        "status": "in_progress",
        "arguments": "",
        "call_id": "call_7",
        "name": "add",
    }
    stream = sse(
        created(),
        {"type": "response.output_item.added", "item": item, "output_index": 2},
        {"type": "response.function_call_arguments.delta", "delta": '{"a":3,', "item_id": "fc_1", "output_index": 2},
        {"type": "response.function_call_arguments.delta", "delta": '"b":5}', "item_id": "fc_1", "output_index": 2},
        {
            "type": "response.function_call_arguments.done",
            "arguments": '{"a":3,"b":5}',
            "item_id": "fc_1",
            "output_index": 2,
        },
        completed(""),
    )
    reply = reply_of(RESPONSES, stream)
    assert reply.tool_calls == [
        {"index": 0, "id": "call_7", "type": "function", "function": {"name": "add", "arguments": '{"a":3,"b":5}'}}
    ]


def test_responses_incomplete():
    details = {"reason": "max_output_tokens"}
    reply = reply_of(
        RESPONSES, sse(created(), delta("Hel"), completed("Hel", "incomplete", incomplete_details=details))
    )
    assert (reply.text, reply.status, reply.incomplete_details, reply.ok) == ("Hel", "incomplete", details, True)


def test_responses_failed_is_a_stream_error_keeping_the_text():
    failed = completed(
        "", "failed", error={"code": "server_error", "message": "The model failed to generate a response."}
    )
    err, reply = broken(RESPONSES, sse(created(), delta("Hal"), failed))
    assert "The model failed to generate a response." in str(err) and "server_error" in str(err)
    assert (reply.text, reply.status) == ("Hal", "interrupted")


def test_responses_error_event():
    frame = {
        "type": "error",
        "code": "ERR_SOMETHING",
        "message": "Something went wrong",
        "param": None,
        "sequence_number": 4,
    }
    err, reply = broken(RESPONSES, sse(created(sequence_number=0), delta("x", sequence_number=1), frame, event=True))
    assert "Something went wrong" in str(err) and "ERR_SOMETHING" in str(err)
    assert err.fields == {"type": None, "code": "ERR_SOMETHING", "param": None}
    assert reply.text == "x"


def test_responses_unknown_events_are_ignored():
    unknown = [
        {"type": "response.web_search_call.searching", "item_id": "ws_1", "output_index": 0},
        {"type": "response.output_text.annotation.added", "annotation": {"type": "url_citation"}},
        {"type": "response.future_thing", "whatever": [1, 2]},
        {"no_type": True},
    ]
    assert reply_of(RESPONSES, sse(created(), *unknown, delta("ok"), completed("ok"))).text == "ok"


def test_responses_eof_without_terminal_event_is_a_stream_error():
    err, reply = broken(RESPONSES, sse(created(), delta("half")))
    assert "terminal" in str(err)
    assert (reply.text, reply.status) == ("half", "interrupted")


def test_responses_done_before_terminal_is_a_stream_error_after_is_fine():
    broken(RESPONSES, sse(created(), delta("half"), "[DONE]"))
    assert reply_of(RESPONSES, sse(created(), delta("ok"), completed("ok"), "[DONE]")).text == "ok"


def test_responses_terminal_event_alone_carries_the_text():
    reply = reply_of(RESPONSES, sse(completed("only at the end")))
    assert (reply.text, reply.usage) == ("only at the end", RUSAGE)


# -- whole bodies (non-streamed, or gateways ignoring stream: true)


def test_chat_completion_body():
    body = {
        "id": "chatcmpl-9",
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "hi",
                    "reasoning_content": "hmm",
                    "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
                },
                "finish_reason": "tool_calls",
            },
            {"index": 1, "message": {"role": "assistant", "content": "yo"}},
        ],
        "usage": USAGE,
    }
    reply = collect(chat_events_from_body(body), Reply(CHAT))
    assert (reply.id, reply.text, reply.reasoning, reply.finish_reason, reply.usage) == (
        "chatcmpl-9",
        "hi",
        "hmm",
        "tool_calls",
        USAGE,
    )
    assert reply.tool_calls == [
        {"index": 0, "id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    ]
    assert (reply.choices[1].text, reply.choices[1].finish_reason) == ("yo", "stop")


def test_response_body_with_reasoning_and_function_call():
    body = {
        "id": RID,
        "model": "m",
        "status": "completed",
        "output": [
            {
                "type": "reasoning",
                "summary": [{"type": "summary_text", "text": "s1"}, {"type": "summary_text", "text": "s2"}],
            },
            {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"},
            {
                "type": "message",
                "content": [{"type": "output_text", "text": "Hi "}, {"type": "output_text", "text": "there"}],
            },
        ],
        "usage": RUSAGE,
    }
    reply = collect(responses_events_from_body(body), Reply(RESPONSES))
    assert (reply.text, reply.reasoning, reply.usage, reply.status) == ("Hi there", "s1\n\ns2", RUSAGE, "completed")
    assert reply.tool_calls[0]["function"] == {"name": "f", "arguments": "{}"}


def test_failed_response_body_is_an_api_error():
    body = {"id": RID, "status": "failed", "error": {"code": "server_error", "message": "nope"}, "output": []}
    with pytest.raises(APIError, match="nope"):
        collect(responses_events_from_body(body), Reply(RESPONSES))


def test_fields_of_the_wrong_type_are_ignored():
    odd = {
        "id": 5,
        "model": ["m"],
        "choices": [None, "x", {"delta": {"content": 3, "reasoning": {}, "tool_calls": "no"}}],
        "usage": [],
    }
    reply = reply_of(CHAT, sse(odd, chunk({"content": "fine"}), chunk({}, "stop"), "[DONE]"))
    assert (reply.text, reply.reasoning, reply.tool_calls, reply.usage, reply.id) == (
        "fine",
        "",
        [],
        None,
        "chatcmpl-1",
    )
    odd = {"type": "response.output_text.delta", "delta": {"text": "x"}}
    assert reply_of(RESPONSES, sse(odd, delta("fine"), completed("fine"))).text == "fine"


def test_a_choice_index_that_is_not_a_small_int_is_a_stream_error():
    err, _ = broken(CHAT, sse(chunk({"content": "a"}, index=10**9)))
    assert "unexpected choice index" in str(err)


@pytest.mark.parametrize("index", [False, True, 0.0, "0", -1])
def test_a_text_chunk_with_a_bool_float_or_text_index_is_not_choice_zero(index):
    # The common chunk is read by a shortcut (issue 25); it must keep the general rules: a bool,
    # float, text or negative index is no choice index.
    err, reply = broken(CHAT, sse(chunk({"content": "a"}), chunk({"content": "b"}, index=index), "[DONE]"))
    assert "unexpected choice index" in str(err) and reply.text == "a"


def test_text_chunks_with_a_role_reasoning_or_a_finish_reason_keep_every_field():
    stream = sse(
        chunk({"role": "assistant", "content": "Hi"}),
        chunk({"content": " there", "reasoning_content": "think"}),
        json.dumps(chunk({"content": "\ud83d"})),  # half an emoji (escaped): held until its other half
        json.dumps(chunk({"content": "\ude00!"})),
        chunk({"content": " bye"}, "stop"),
        chunk({"content": "x"}, index=1),
        "[DONE]",
    )
    reply = reply_of(CHAT, stream)
    assert (reply.text, reply.reasoning, reply.finish_reason) == ("Hi there\U0001f600! bye", "think", "stop")
    assert reply.choices[1].text == "x"


# -- property: whatever JSON a server sends, only ElkErrors come out

_KEYS = st.sampled_from(
    [
        "id",
        "model",
        "type",
        "choices",
        "index",
        "delta",
        "message",
        "content",
        "reasoning_content",
        "reasoning",
        "reasoning_details",
        "text",
        "summary",
        "tool_calls",
        "function",
        "name",
        "arguments",
        "finish_reason",
        "usage",
        "error",
        "object",
        "code",
        "param",
        "detail",
        "loc",
        "msg",
        "response",
        "status",
        "output",
        "item",
        "item_id",
        "output_index",
        "summary_index",
        "sequence_number",
        "incomplete_details",
        "call_id",
    ]
)
_TYPES = st.sampled_from(
    [
        "response.created",
        "response.output_text.delta",
        "response.refusal.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_text.delta",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.completed",
        "response.incomplete",
        "response.failed",
        "error",
        "function_call",
        "message",
        "reasoning",
        "output_text",
    ]
)
_SCALARS = st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=False) | st.text(max_size=5) | _TYPES
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS | st.text(max_size=3), inner, max_size=5),
    max_leaves=25,
)


@pytest.mark.kernel  # the slow tier: a long sweep (pytest -m unit stays under a minute)
@settings(max_examples=400)
@given(st.lists(_JSON, max_size=6), st.booleans())
def test_any_json_frames_raise_only_elk_errors(frames, done):
    for endpoint in (CHAT, RESPONSES):
        stream = sse(*(json.dumps(f) for f in frames), *(["[DONE]"] if done else []))
        reply = Reply(endpoint)
        try:
            collect(events(endpoint, stream), reply)
        except ElkError:
            assert reply.status == "interrupted" or reply.status == "error"
        reply.to_dict()


@settings(max_examples=200)
@given(_JSON)
def test_any_json_body_raises_only_elk_errors(body):
    for convert, endpoint in ((chat_events_from_body, CHAT), (responses_events_from_body, RESPONSES)):
        if not isinstance(body, dict):
            continue
        try:
            collect(convert(body), Reply(endpoint))
        except ElkError:
            pass


_ERRORISH = st.dictionaries(
    st.sampled_from(
        ["error", "object", "type", "message", "msg", "code", "param", "detail", "loc", "response", "status"]
    ),
    _JSON | _TYPES | st.just("error") | st.just("response.failed"),
    max_size=4,
)


@pytest.mark.parametrize(
    "body",
    [
        {"type": "response.failed", "response": [1]},
        {"type": "response.failed", "response": {"error": "overloaded"}},
        {"detail": [{"loc": 5, "msg": "m"}]},
        {"error": {"message": {"nested": 1}}},
        {"object": "error"},
    ],
)
def test_error_fields_of_odd_bodies(body):
    fields = error_fields(body)
    assert isinstance(fields["message"], str) and fields["message"]


@pytest.mark.kernel  # the slow tier: a long sweep (pytest -m unit stays under a minute)
@settings(max_examples=400)
@given(
    st.recursive(
        _ERRORISH,
        lambda inner: st.dictionaries(
            st.sampled_from(["error", "response", "detail"]), inner | st.lists(inner, max_size=2), max_size=3
        ),
        max_leaves=8,
    )
)
def test_error_fields_of_any_body_are_strings_or_none(body):
    fields = error_fields(body)
    if fields is not None:
        assert isinstance(fields["message"], str) and fields["message"]
        assert all(v is None or isinstance(v, str) for v in fields.values())
