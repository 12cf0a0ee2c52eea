"""The Client over real HTTP: captured transcripts byte for byte, errors, retries, broken streams, llmock.

Everything here goes through a real socket: the scripted server (tests/scripted_server.py) for
byte-exact control, and llmock (a third-party mock gateway) for an independent implementation.
"""

from __future__ import annotations

import gzip
import json
import time

import pytest

from elk_jupyter import APIError, Client, ConfigError, ElkError, StreamError
from elk_jupyter.gateway.events import Connected, TextDelta
from tests.conftest import TRANSCRIPTS, free_port, llmock_server
from tests.scripted_server import Script

CHAT, RESPONSES = "chat", "responses"

KEY = "sk-elk-TEST-4f9a2c7e1b3d5a6f"
HI = [{"role": "user", "content": "Say hi"}]


@pytest.fixture
def client(scripted):
    return Client(KEY, base_url=scripted.base_url, model="m", timeout=2, connect_timeout=1, max_retries=2)


def frame(obj) -> bytes:
    return b"data: " + json.dumps(obj, ensure_ascii=False).encode() + b"\n\n"


def delta(text, finish=None) -> bytes:
    content = {"content": text} if text is not None else {}
    return frame({"id": "c-1", "model": "m-1", "choices": [{"index": 0, "delta": content, "finish_reason": finish}]})


DONE = b"data: [DONE]\n\n"
USAGE = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}


# -- transcripts captured from real servers, replayed and re-split


def _request_for(name: str) -> tuple[str, dict]:
    stream = "nonstream" not in name
    if "_chat_" in name:
        return CHAT, {"model": "m", "messages": HI, "stream": stream}
    return RESPONSES, {"model": "m", "input": "Say hi", "stream": stream}


def _outcome(client: Client, endpoint: str, body: dict) -> tuple:
    """The Reply (or the error and its partial Reply) without the timings."""
    try:
        reply = client.send(endpoint, body)
        error = None
    except ElkError as err:
        reply, error = getattr(err, "reply", None), (type(err).__name__, str(err))
    state = reply.to_dict() if reply is not None else None
    if state:
        del state["timing"], state["started_at"]
    return error, state


def _variants(script: Script) -> dict[str, Script]:
    """The same response cut at every boundary that matters for a decoder."""
    (body,) = script.body
    lf = [i for i, b in enumerate(body) if b == 0x0A]
    crlf = body.replace(b"\n", b"\r\n")
    variants = {
        "every byte": script.split(*range(1, len(body))),
        "around every LF": script.split(*lf, *(i + 1 for i in lf)),
        "CRLF split between CR and LF": Script(script.status, script.headers, [crlf]).split(
            *(i + 1 for i, b in enumerate(crlf) if b == 0x0D)
        ),
        "CR only": Script(script.status, script.headers, [body.replace(b"\n", b"\r")], script.framing),
    }
    if script.framing == "chunked":
        variants["close-delimited"] = Script(script.status, script.headers, [body], "close")
    if "event-stream" not in str(script.headers).lower():
        variants = {"every byte": variants["every byte"]}  # JSON bodies: only the chunking
    return variants


# name -> (error class or None, text start, usage total_tokens, model)
TRANSCRIPT_FACTS = {
    "litellm_chat_nonstream": (None, "Hello from the LiteLLM mock model.", 30, "mock-gpt"),
    "litellm_chat_stream_usage": (None, "Hello from the LiteLLM mock model.", 24, "mock-gpt"),
    "litellm_responses_nonstream": (None, "Hello from the LiteLLM mock model.", 123, "mock-gpt"),
    "litellm_responses_previous_id": (None, "Hello from the LiteLLM mock model.", 123, "mock-gpt"),
    "litellm_responses_stream": ("APIError", "HTTP 500 [500]: 'async for' requires", None, None),
    "litellm_to_llamaserver_smollm2-bridge_responses_previous_id": (
        "APIError",
        "HTTP 400 [invalid_request_error, 400]",
        None,
        None,
    ),
    "litellm_to_llamaserver_smollm2-bridge_responses_stream": (
        None,
        "Ada, I'm a helpful AI named SmolLM",
        65,
        "smollm2",
    ),
    "litellm_to_llamaserver_smollm2_responses_previous_id": (
        "APIError",
        "HTTP 400 [invalid_request_error, 400]",
        None,
        None,
    ),
    "litellm_to_llamaserver_smollm2_responses_stream": (None, "Ada, I'm a helpful AI named SmolLM", 65, "smollm2"),
    "litellm_to_llamaserver_think_chat_stream_usage": (None, " is the brain of a computer", 69, "smollm2-think"),
    "llamacpppython_chat_nonstream": (None, "Hi, welcome to my chat.", 43, "smollm2"),
    "llamacpppython_chat_stream_usage": (None, "Hi, welcome to my chat.", None, "smollm2"),
    "llamacpppython_responses_stream": (
        "APIError",
        "HTTP 404: Not Found (request id bc3b10c114bf4f73b9855ec7cac6a7d9)",
        None,
        None,
    ),
    "llamaserver_chat_nonstream": (None, "Hello, welcome to my blog!", 44, "smollm2"),
    "llamaserver_chat_stream_usage": (None, "Hello, welcome to my blog!", 44, "smollm2"),
    "llamaserver_responses_nonstream": (None, "Hello there, welcome to my world!", 63, "smollm2"),
    "llamaserver_responses_previous_id": (
        "APIError",
        "HTTP 400 [invalid_request_error, 400]: llama.cpp does not support",
        None,
        None,
    ),
    "llamaserver_responses_stream": (None, "Hello, welcome to my blog!", 44, "smollm2"),
    "llamaserver_think_chat_nonstream": (None, " is the brain of a computer", 69, "smollm2-think"),
    "llamaserver_think_chat_stream_usage": (None, " is the brain of a computer", 69, "smollm2-think"),
    "llamaserver_think_responses_stream": (None, " is the brain of a computer", 69, "smollm2-think"),
    "llmock_chat_nonstream": (None, "Hello! You said: Say hi", 6, "gpt-4o"),
    "llmock_chat_stream_usage": (None, "Hello! You said: Say hi", 6, "gpt-4o"),
    "llmock_responses_previous_id": (None, "Hello! You said: What did I say?", 11, "gpt-4o"),
    "llmock_responses_stream": (None, "Hello! You said: Say hi", 6, "gpt-4o"),
}


def test_every_transcript_has_facts():
    assert sorted(p.stem for p in TRANSCRIPTS.iterdir()) == sorted(TRANSCRIPT_FACTS)


@pytest.mark.parametrize("name", sorted(TRANSCRIPT_FACTS))
def test_transcript_replayed_and_resplit(scripted, name):
    (path,) = TRANSCRIPTS.glob(name + ".*")
    client = Client(KEY, base_url=scripted.base_url, model="m", timeout=5, max_retries=0)
    endpoint, body = _request_for(name)
    script = Script.transcript(path)

    scripted.queue(script)
    error, reply = _outcome(client, endpoint, body)
    error_class, start, total_tokens, model = TRANSCRIPT_FACTS[name]
    if error_class:
        assert error[0] == error_class and error[1].startswith(start) and "\n" not in error[1]
        assert reply["status"] == "error"
    else:
        assert error is None
        assert reply["text"].startswith(start) and reply["status"] == "completed"
        assert (reply["usage"] or {}).get("total_tokens") == total_tokens
        assert reply["model"] == model
        assert bool(reply["reasoning"]) == ("think" in name)
    assert scripted.requests[-1].body == body

    for variant, resplit in _variants(script).items():
        scripted.queue(resplit)
        assert _outcome(client, endpoint, body) == (error, reply), variant


def test_utf8_japanese_and_chinese_split_inside_every_character(scripted, client):
    text = ["こんにちは、", "世界。", "你好，", "世界 🐘"]
    stream = b"".join(delta(t) for t in text) + delta(None, "stop") + DONE
    scripted.queue(Script(body=[stream]).split(*range(1, len(stream))))
    assert client.chat(HI).text == "".join(text)


def test_request_is_exact(scripted, client):
    scripted.queue(Script(body=[delta("hi"), delta(None, "stop"), DONE]))
    client.chat(HI, temperature=0, max_tokens=5)
    (request,) = scripted.requests
    assert (request.method, request.path) == ("POST", "/v1/chat/completions")
    assert request.body == {
        "model": "m",
        "messages": HI,
        "temperature": 0,
        "max_tokens": 5,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["accept"] == "text/event-stream"
    assert request.headers["content-type"] == "application/json"


def test_respond_and_models_requests(scripted, client):
    scripted.queue(Script.json({"id": "resp_1", "status": "completed", "output": []}))
    scripted.queue(Script.json({"object": "list", "data": [{"id": "a"}, {"id": "b"}]}))
    client.respond("hi", stream=False, previous_response_id="resp_0")
    assert client.models() == [{"id": "a"}, {"id": "b"}]
    post, get = scripted.requests
    assert (post.path, post.body) == (
        "/v1/responses",
        {"model": "m", "input": "hi", "previous_response_id": "resp_0", "stream": False},
    )
    assert (get.method, get.path, get.headers["accept"]) == ("GET", "/v1/models", "application/json")


def test_iter_chat_yields_typed_events_as_they_come(scripted, client):
    scripted.queue(
        Script(
            body=[
                delta("a"),
                delta("b"),
                delta(None, "stop"),
                frame({"id": "c-1", "choices": [], "usage": USAGE}),
                DONE,
            ]
        )
    )
    events = list(client.iter_chat(HI))
    assert isinstance(events[0], Connected) and events[0].attempts == 1
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["a", "b"]


# -- how a stream is read (issue 25: chunked bodies are read from http.client, under urllib3)


def test_a_stream_read_to_its_end_leaves_the_connection_for_the_next_request(scripted, client):
    # Read to the end (no [DONE]: every choice finished), and read up to [DONE] then drained.
    scripted.queue(Script(body=[delta("a", "stop")]), Script(body=[delta("b"), delta(None, "stop"), DONE]))
    assert client.chat(HI).text == "a" and client.chat(HI).text == "b"
    # One keep-alive connection served both: the first request's connection is still open.
    assert len(scripted.requests) == 2 and not scripted.requests[0].closed.wait(0.3)


def test_a_gzip_event_stream_is_decoded(scripted, client):
    packed = gzip.compress(delta("zipped ") + delta("reply") + delta(None, "stop") + DONE)
    headers = {"content-type": "text/event-stream", "content-encoding": "gzip"}
    scripted.queue(Script(headers=headers, body=[packed[:20], packed[20:]]))
    reply = client.chat(HI)
    assert (reply.text, reply.status) == ("zipped reply", "completed")


@pytest.mark.parametrize(
    "tail",
    [b"zz\r\nxx\r\n", b"200\r\ndata: {", b"", b"%x\r\n" % len(DONE)],
    ids=["bad chunk size", "cut inside a chunk", "cut between chunks", "cut inside the last chunk"],
)
def test_a_chunked_body_cut_or_garbled_keeps_the_partial_reply(scripted, client, tail):
    headers = {"content-type": "text/event-stream", "transfer-encoding": "chunked"}
    first = delta("kept")
    scripted.queue(Script(headers=headers, body=[b"%x\r\n%s\r\n" % (len(first), first), tail], framing="close"))
    with pytest.raises(StreamError) as info:
        client.chat(HI)
    assert str(info.value).startswith("the connection broke mid-stream: incompleteread")
    assert (info.value.reply.text, info.value.reply.status) == ("kept", "interrupted")


# -- bodies that are not streams


def test_close_delimited_body_streams_as_it_arrives(scripted, client):
    scripted.queue(Script(body=[delta("first "), 0.6, delta("second"), delta(None, "stop"), DONE], framing="close"))
    seen = []
    reply = client.chat(HI, on_event=lambda e: isinstance(e, TextDelta) and seen.append(time.monotonic()))
    sent = scripted.requests[0].sent
    assert reply.text == "first second" and reply.status == "completed"
    assert seen[0] < sent[1] - 0.3  # the first delta was shown while the server still waited


def test_close_delimited_body_cut_before_done_is_interrupted(scripted, client):
    scripted.queue(Script(body=[delta("part")], framing="close"))
    with pytest.raises(StreamError) as info:
        client.chat(HI)
    assert (info.value.reply.text, info.value.reply.status) == ("part", "interrupted")


@pytest.mark.parametrize("endpoint", [CHAT, RESPONSES])
def test_gateway_ignoring_stream_true_returns_json(scripted, client, endpoint):
    chat = {
        "id": "c-9",
        "model": "m-9",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "whole"}, "finish_reason": "stop"}],
        "usage": USAGE,
    }
    response = {
        "id": "resp_9",
        "model": "m-9",
        "status": "completed",
        "usage": USAGE,
        "output": [{"type": "message", "content": [{"type": "output_text", "text": "whole"}]}],
    }
    scripted.queue(Script.json(b"\n\n" + json.dumps(chat if endpoint == CHAT else response).encode()))
    reply = client.chat(HI) if endpoint == CHAT else client.respond("hi")
    assert (reply.text, reply.model, reply.usage, reply.status) == ("whole", "m-9", USAGE, "completed")
    assert reply.id == ("c-9" if endpoint == CHAT else "resp_9")
    assert scripted.requests[0].body["stream"] is True


def test_200_with_error_json(scripted, client):
    scripted.queue(
        Script.json({"error": {"message": "Insufficient credits", "code": 402}}, headers={"x-request-id": "req_7"})
    )
    with pytest.raises(APIError) as info:
        client.chat(HI)
    err = info.value
    assert (err.status, err.code, err.request_id) == (200, "402", "req_7")
    assert str(err) == "HTTP 200 [402]: Insufficient credits (request id req_7)"
    assert err.reply.status == "error"


HTML_502 = (
    b"<!DOCTYPE html>\n<html>\n<head>\n<title>api.openai.com | 502: Bad gateway</title>\n<style>body{}</style>\n</head>\n"
    b"<body><h1>Bad gateway</h1><p>Error code 502</p>\n<p>Visit cloudflare.com for more information.</p></body></html>\n"
)


def test_html_502_page_is_one_line_with_the_title(scripted, client):
    scripted.queue(Script(502, {"content-type": "text/html"}, [HTML_502], "length"))
    client.max_retries = 0
    with pytest.raises(APIError) as info:
        client.chat(HI)
    assert str(info.value) == "HTTP 502: api.openai.com | 502: Bad gateway"
    assert info.value.status == 502


def test_html_page_with_200_is_an_error(scripted, client):
    scripted.queue(Script(200, {"content-type": "text/html"}, [HTML_502], "length"))
    with pytest.raises(APIError, match=r"got text/html: api.openai.com \| 502: Bad gateway$"):
        client.chat(HI)


# Gateway error bodies (https://platform.openai.com/docs/guides/error-codes and others): status, body -> (type, code, param, message)
ERROR_BODIES = {
    "openai": (
        400,
        {
            "error": {
                "message": "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
                "type": "invalid_request_error",
                "param": "max_tokens",
                "code": "unsupported_parameter",
            }
        },
        (
            "invalid_request_error",
            "unsupported_parameter",
            "max_tokens",
            "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
        ),
    ),
    "openai-429": (
        429,
        {
            "error": {
                "message": "Rate limit exceeded. Please try again in 20 seconds.",
                "type": "rate_limit_error",
                "param": None,
                "code": "rate_limit_exceeded",
            }
        },
        ("rate_limit_error", "rate_limit_exceeded", None, "Rate limit exceeded. Please try again in 20 seconds."),
    ),
    "vllm": (
        400,
        {"error": {"message": "max_tokens is too large", "type": "BadRequestError", "param": None, "code": 400}},
        ("BadRequestError", "400", None, "max_tokens is too large"),
    ),
    "vllm-old": (
        400,
        {
            "object": "error",
            "message": "max_tokens is too large",
            "type": "BadRequestError",
            "param": None,
            "code": 400,
        },
        ("BadRequestError", "400", None, "max_tokens is too large"),
    ),
    "litellm": (
        401,
        {
            "error": {
                "message": "Authentication Error, Invalid proxy server token passed.",
                "type": "auth_error",
                "param": "None",
                "code": "401",
            }
        },
        ("auth_error", "401", None, "Authentication Error, Invalid proxy server token passed."),
    ),
    "openrouter": (
        402,
        {"error": {"code": 402, "message": "Insufficient credits", "metadata": {"provider_name": None}}},
        (None, "402", None, "Insufficient credits"),
    ),
    "cloudflare-json": (
        502,
        {"error": {"code": 502, "message": "Bad gateway.", "param": None, "type": "cf_bad_gateway"}},
        ("cf_bad_gateway", "502", None, "Bad gateway."),
    ),
    "no-type": (
        400,
        {"error": {"message": "Invalid request body", "code": "invalid_request_body"}},
        (None, "invalid_request_body", None, "Invalid request body"),
    ),
    "fastapi": (401, {"detail": "Invalid API key"}, (None, None, None, "Invalid API key")),
    "fastapi-422": (
        422,
        {"detail": [{"loc": ["body", "messages"], "msg": "Field required", "type": "missing"}]},
        (None, None, None, "body.messages: Field required"),
    ),
    "llamacpp-500": (
        500,
        {"error": {"message": "boom", "type": "internal_server_error", "param": None, "code": None}},
        ("internal_server_error", None, None, "boom"),
    ),
}


@pytest.mark.parametrize("shape", ERROR_BODIES)
def test_error_body_is_normalised(scripted, client, shape):
    status, body, (type_, code, param, message) = ERROR_BODIES[shape]
    scripted.queue(Script.json(body, status, {"x-request-id": "req_abc123"}))
    client.max_retries = 0
    with pytest.raises(APIError) as info:
        client.chat(HI)
    err = info.value
    assert (err.status, err.type, err.code, err.param, err.detail, err.request_id) == (
        status,
        type_,
        code,
        param,
        message,
        "req_abc123",
    )
    tags = ", ".join(t for t in (type_, code) if t)
    assert str(err) == f"HTTP {status}{f' [{tags}]' if tags else ''}: {message} (request id req_abc123)"


# -- retries (only before the first byte of a 200 body)


def _ok(text="ok") -> Script:
    return Script(body=[delta(text), delta(None, "stop"), DONE])


def test_500_then_200_is_retried(scripted, client):
    scripted.queue(Script.json({"error": {"message": "oops"}}, 500), _ok())
    reply = client.chat(HI)
    assert (reply.text, reply.attempts) == ("ok", 2)
    first, second = scripted.requests
    assert first.body == second.body


def test_429_with_retry_after_then_success(scripted, client):
    scripted.queue(Script.json({"error": {"message": "slow down"}}, 429, {"retry-after": "1"}), _ok())
    started = time.monotonic()
    reply = client.chat(HI)
    assert reply.attempts == 2
    assert 1.0 <= time.monotonic() - started < 2.5


def test_retry_after_ms_wins(scripted, client):
    scripted.queue(
        Script.json({"error": {"message": "slow down"}}, 429, {"retry-after-ms": "1200", "retry-after": "9"}), _ok()
    )
    started = time.monotonic()
    assert client.chat(HI).attempts == 2
    assert 1.2 <= time.monotonic() - started < 2.5  # 1.2 s: not 9 s, nor the 0.375-0.5 s backoff


def test_429_with_long_retry_after_is_not_retried(scripted, client):
    scripted.queue(
        Script.json({"error": {"message": "quota", "type": "rate_limit_error"}}, 429, {"retry-after": "3600"}), _ok()
    )
    with pytest.raises(APIError) as info:
        client.chat(HI)
    assert len(scripted.requests) == 1
    assert info.value.retry_after == 3600
    assert "retry after 3600 s" in str(info.value) and "not retried" in str(info.value)


def test_400_is_not_retried(scripted, client):
    scripted.queue(Script.json({"error": {"message": "bad"}}, 400), _ok())
    with pytest.raises(APIError, match="^HTTP 400: bad$"):
        client.chat(HI)
    assert len(scripted.requests) == 1


def test_exhausted_retries_say_how_many_attempts(scripted, client):
    client.max_retries = 1
    scripted.queue(*[Script.json({"error": {"message": "down"}}, 503)] * 2)
    with pytest.raises(APIError, match=r"^HTTP 503: down \(after 2 attempts\)$"):
        client.chat(HI)


def test_x_should_retry_overrides_the_status(scripted, client):
    scripted.queue(
        Script.json({"error": {"message": "retry me"}}, 400, {"x-should-retry": "true", "retry-after-ms": "10"}), _ok()
    )
    assert client.chat(HI).attempts == 2
    scripted.queue(Script.json({"error": {"message": "do not"}}, 503, {"x-should-retry": "false"}), _ok())
    with pytest.raises(APIError, match="do not"):
        client.chat(HI)
    assert len(scripted.requests) == 3


def test_connect_refused_gives_up_after_bounded_attempts():
    client = Client(KEY, base_url=f"http://127.0.0.1:{free_port()}/v1", max_retries=1, connect_timeout=1)
    started = time.monotonic()
    with pytest.raises(APIError) as info:
        client.chat(HI)
    assert str(info.value).startswith("Gateway error: could not reach 127.0.0.1:")
    assert "after 2 attempts: connection refused" in str(info.value)
    assert time.monotonic() - started < 2


# -- streams that break after they started: never retried, the partial reply kept


def _broken(client) -> StreamError:
    with pytest.raises(StreamError) as info:
        client.chat(HI)
    return info.value


def test_error_frame_mid_stream(scripted, client):
    error = {"error": {"message": "The server had an error while processing your request.", "type": "server_error"}}
    scripted.queue(
        Script(
            headers={"content-type": "text/event-stream", "x-request-id": "req_mid"},
            body=[delta("so "), delta("far"), frame(error)],
        )
    )
    err = _broken(client)
    assert (
        str(err)
        == "error from the server mid-stream [server_error]: The server had an error while processing your request. (request id req_mid)"
    )
    assert (err.reply.text, err.reply.status, err.reply.error, err.request_id) == (
        "so far",
        "interrupted",
        str(err),
        "req_mid",
    )
    assert len(scripted.requests) == 1


def test_connection_reset_mid_stream(scripted, client):
    scripted.queue(Script(body=[delta("par"), delta("tial"), 0.05], ending="reset"), _ok())
    err = _broken(client)
    assert str(err).startswith("the connection broke mid-stream")
    assert (err.reply.text, err.reply.status) == ("partial", "interrupted")
    assert len(scripted.requests) == 1


def test_chunked_body_cut_without_final_chunk(scripted, client):
    scripted.queue(Script(body=[delta("half")], ending="close"))
    err = _broken(client)
    assert (err.reply.text, err.reply.status) == ("half", "interrupted")


def test_stall_is_a_read_timeout(scripted, client):
    client.timeout = 0.4
    scripted.queue(Script(body=[delta("waiting")], ending="stall"))
    started = time.monotonic()
    err = _broken(client)
    assert str(err) == "the stream stalled: no data for 0.4 s"
    assert (err.reply.text, err.reply.status) == ("waiting", "interrupted")
    assert time.monotonic() - started < 1.5
    assert scripted.requests[0].closed.wait(2)


def test_keyboard_interrupt_closes_the_connection(scripted, client):
    scripted.queue(Script(body=[delta("first")], ending="stall"))

    def interrupt(event):
        if isinstance(event, TextDelta):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as info:
        client.chat(HI, on_event=interrupt)
    assert scripted.requests[0].closed.wait(2)  # the server saw the hang-up
    assert (info.value.reply.text, info.value.reply.status) == ("first", "interrupted")


def test_closing_the_event_iterator_closes_the_connection(scripted, client):
    scripted.queue(Script(body=[delta("first")], ending="stall"))
    events = client.iter_chat(HI)
    assert any(isinstance(e, TextDelta) for e in events)
    events.close()
    assert scripted.requests[0].closed.wait(2)


# -- the key stays secret


def test_api_key_never_appears_in_repr_errors_or_records(scripted, client, monkeypatch):
    assert KEY not in repr(client) and repr(client).endswith("key=argument …5a6f)")
    monkeypatch.setenv("ELK_API_KEY", KEY)
    assert repr(Client(base_url=scripted.base_url)).endswith("key=$ELK_API_KEY …5a6f)")

    echo = {
        "error": {
            "message": f"Incorrect API key provided: {KEY}.",
            "type": "invalid_request_error",
            "code": "invalid_api_key",
        }
    }
    scripted.queue(Script.json(echo, 401, {"x-request-id": KEY}))
    with pytest.raises(APIError) as info:
        client.chat(HI)
    err = info.value
    assert KEY not in str(err) and KEY not in repr(err) and KEY not in err.detail and KEY not in (err.request_id or "")
    assert KEY not in json.dumps(err.reply.to_dict())

    scripted.queue(Script(body=[delta("ok "), frame({"error": {"message": f"bad key {KEY}"}})]))
    with pytest.raises(StreamError) as info:
        client.chat(HI)
    assert KEY not in str(info.value) and KEY not in json.dumps(info.value.reply.to_dict())

    scripted.queue(_ok())
    assert KEY not in json.dumps(client.chat(HI).to_dict())


def test_missing_key_is_a_config_error_for_remote_gateways(scripted):
    with pytest.raises(ConfigError, match="set the environment variable ELK_API_KEY"):
        Client(base_url="https://gateway.example/v1").chat(HI)
    scripted.queue(_ok())
    Client(base_url=scripted.base_url, model="m").chat(HI)  # loopback servers need no key
    assert "authorization" not in scripted.requests[0].headers


# -- llmock: an independent OpenAI-compatible implementation


@pytest.fixture
def mock(llmock):
    return Client(KEY, base_url=llmock, model="gpt-4o", timeout=5, max_retries=0)


def test_llmock_chat_stream_with_usage(mock):
    reply = mock.chat([{"role": "user", "content": "こんにちは 你好"}])
    assert (reply.text, reply.status, reply.finish_reason, reply.model) == (
        "Hello! You said: こんにちは 你好",
        "completed",
        "stop",
        "gpt-4o",
    )
    assert reply.usage["total_tokens"] == reply.usage["prompt_tokens"] + reply.usage["completion_tokens"] > 0
    assert reply.id.startswith("chatcmpl-")


def test_llmock_responses_stream(mock):
    reply = mock.respond("Say hi")
    assert (reply.text, reply.status, reply.model) == ("Hello! You said: Say hi", "completed", "gpt-4o")
    assert reply.usage["input_tokens"] > 0 and reply.id.startswith("resp_")
    assert reply.response["status"] == "completed"


def test_llmock_previous_response_id_chaining(mock):
    first = mock.respond("My name is Ada.")
    second = mock.respond("What is my name?", previous_response_id=first.id)
    assert second.status == "completed" and second.id != first.id
    assert second.text == "Hello! You said: What is my name?"


@pytest.mark.parametrize("endpoint", [CHAT, RESPONSES])
def test_llmock_non_stream(mock, endpoint):
    reply = mock.chat(HI, stream=False) if endpoint == CHAT else mock.respond("Say hi", stream=False)
    assert (reply.text, reply.status) == ("Hello! You said: Say hi", "completed")
    assert reply.usage


def test_llmock_models(mock):
    assert "gpt-4o" in [m["id"] for m in mock.models()]


@pytest.mark.parametrize(
    ("option", "status", "attempts"),
    [("500=1", 500, 2), ("429=1", 429, 2), ("400=1", 400, 1)],
)
def test_llmock_http_errors(option, status, attempts):
    with llmock_server("--error-rate", option) as base_url:
        client = Client(KEY, base_url=base_url, model="gpt-4o", max_retries=1)
        with pytest.raises(APIError) as info:
            client.chat(HI)
    assert info.value.status == status
    assert info.value.reply.status == "error"
    assert ("after 2 attempts" in str(info.value)) == (attempts == 2)


LONG = "one two three four five six seven eight nine ten eleven twelve"


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("truncate", "ended before"),
        ("disconnect", ""),
        ("malformed", "malformed JSON frame"),
        ("stall", "stalled"),
    ],
)
@pytest.mark.parametrize("endpoint", [CHAT, RESPONSES])
def test_llmock_stream_faults(fault, message, endpoint):
    with llmock_server("--stream-fault", f"{fault}=1", "--stream-stall-seconds", "5") as base_url:
        client = Client(KEY, base_url=base_url, model="gpt-4o", timeout=0.5, max_retries=2)
        with pytest.raises(StreamError) as info:
            client.chat([{"role": "user", "content": LONG}]) if endpoint == CHAT else client.respond(LONG)
    reply = info.value.reply
    assert message in str(info.value)
    assert reply.status == "interrupted" and reply.attempts == 1
    assert ("Hello! You said: " + LONG).startswith(reply.text)
