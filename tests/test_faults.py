"""The fault matrix: every way a gateway fails, through the real magics in a real kernel.

Each case asserts a one-line message naming the cause, the partial reply kept and marked, the
conversation's context unchanged, the next cell working and the kernel alive.
"""

from __future__ import annotations

import json

import pytest

from tests.environment import kernel_env
from tests.kernel import Kernel

KEY = "sk-elk-FAULTS-distinctive-5b1e"
MAGIC = {"chat": "%%chat", "responses": "%%respond"}

OPENAI_400 = {
    "error": {
        "message": "Unsupported parameter: 'max_tokens'",
        "type": "invalid_request_error",
        "param": "max_tokens",
        "code": "unsupported_parameter",
    }
}
HTML_502 = "<!DOCTYPE html><html><head><title>api.example.com | 502: Bad gateway</title></head><body><h1>Bad</h1></body></html>"


@pytest.fixture(scope="module")
def kernel(module_gateway, tmp_path_factory):
    k = Kernel(kernel_env(module_gateway.base_url, KEY, tmp_path_factory.mktemp("cache")))
    setup = k.execute("%load_ext elk_jupyter\n%config ElkMagics.timeout = 1.5\n%config ElkMagics.retries = 2")
    assert setup.status == "ok", setup.error_text
    yield k
    k.close()


def state(kernel, conversation) -> dict:
    """The conversation as the kernel holds it: active turn ids and every turn's status/text."""
    code = (
        "import json\n"
        "_r = get_ipython().magics_manager.registry['ElkMagics']\n"
        f"_c = _r.conversations.conversation({conversation!r})\n"
        "print(json.dumps({'active': _c.active, 'turns': [[t.id, t.status, t.text, t.reply['attempts']] for t in _c.turns]}))"
    )
    result = kernel.execute(code)
    assert result.status == "ok", result.error_text
    return json.loads(result.stdout)


def first_turn(kernel, module_gateway, endpoint, conversation):
    result = kernel.execute(f"{MAGIC[endpoint]} -c {conversation}\nfirst")
    assert result.status == "ok", result.error_text
    final = result.last_bundle()  # the panel, re-published with its static bundle and record
    assert "echo: first" in final["data"]["text/markdown"]
    assert final["metadata"]["elk_jupyter"]["turn"]["status"] == "completed"
    assert not result.stderr and not result.error
    return state(kernel, conversation)


def assert_recovers(kernel, module_gateway, endpoint, conversation, before):
    """Context unchanged, the next cell succeeds and sends exactly the earlier good turn."""
    after = state(kernel, conversation)
    assert after["active"] == before["active"]
    result = kernel.execute(f"{MAGIC[endpoint]} -c {conversation}\nnext")
    assert result.status == "ok", result.error_text
    body = module_gateway.bodies()[-1]
    if endpoint == "chat":
        assert [m["content"] for m in body["messages"]] == ["first", "echo: first", "next"]
    else:
        assert body["input"] == "next" and body["previous_response_id"].startswith("resp_")


def one_line(result) -> str:
    assert result.status == "error"
    lines = result.error["traceback"]
    assert len(lines) == 1, lines  # _render_traceback_: no 40-line traceback
    assert KEY not in lines[0]
    return lines[0]


ERROR_CASES = {
    "400": (
        dict(status=400, error_body=OPENAI_400),
        "APIError: HTTP 400 [invalid_request_error, unsupported_parameter]: Unsupported parameter: 'max_tokens'",
    ),
    "401-litellm": (
        dict(
            status=401,
            error_body={
                "error": {"message": "Authentication Error", "type": "auth_error", "param": "None", "code": "401"}
            },
        ),
        "APIError: HTTP 401 [auth_error, 401]: Authentication Error",
    ),
    "403-int-code": (
        dict(status=403, error_body={"error": {"code": 403, "message": "Model not allowed"}}),
        "APIError: HTTP 403 [403]: Model not allowed",
    ),
    "404-fastapi": (dict(status=404, error_body={"detail": "Not Found"}), "APIError: HTTP 404: Not Found"),
    "422-fastapi-list": (
        dict(
            status=422,
            error_body={"detail": [{"loc": ["body", "temperature"], "msg": "too hot", "type": "value_error"}]},
        ),
        "APIError: HTTP 422: body.temperature: too hot",
    ),
    "429-too-long": (
        dict(
            status=429,
            error_body={"error": {"message": "slow down", "type": "rate_limit_error"}},
            headers={"Retry-After": "3600"},
        ),
        "not retried",
    ),
    "502-html": (dict(status=502, error_body=HTML_502), "APIError: HTTP 502: api.example.com | 502: Bad gateway"),
    "200-error-json": (
        dict(status=200, error_body={"error": {"message": "quota exceeded", "type": "insufficient_quota"}}),
        "APIError: HTTP 200 [insufficient_quota]: quota exceeded",
    ),
}


@pytest.mark.parametrize("endpoint", ["chat", "responses"])
@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_http_errors(kernel, module_gateway, endpoint, case):
    plan, expected = ERROR_CASES[case]
    conversation = f"http-{case}-{endpoint}"
    before = first_turn(kernel, module_gateway, endpoint, conversation)
    for _ in range(3):  # enough for every retry
        module_gateway.plan(**plan)
    sent = len(module_gateway.requests)
    line = one_line(kernel.execute(f"{MAGIC[endpoint]} -c {conversation}\nsecond"))
    assert expected in line and "(request id req_" in line
    retried = len(module_gateway.requests) - sent
    assert retried == (3 if plan["status"] in (502,) else 1)
    module_gateway.plans.clear()
    failed = state(kernel, conversation)["turns"][-1]
    assert failed[1] == "error"
    assert_recovers(kernel, module_gateway, endpoint, conversation, before)


@pytest.mark.parametrize("endpoint", ["chat", "responses"])
@pytest.mark.parametrize("status,headers", [(429, {"Retry-After": "1"}), (500, {}), (503, {"retry-after-ms": "200"})])
def test_retried_then_succeeds(kernel, module_gateway, endpoint, status, headers):
    conversation = f"retry-{status}-{endpoint}"
    before = first_turn(kernel, module_gateway, endpoint, conversation)
    module_gateway.plan(status=status, headers=headers)
    result = kernel.execute(f"{MAGIC[endpoint]} -c {conversation}\nsecond")
    assert result.status == "ok", result.error_text
    turn = state(kernel, conversation)["turns"][-1]
    assert turn[1] == "completed" and turn[2] == "echo: second" and turn[3] == 2
    assert state(kernel, conversation)["active"] == [*before["active"], turn[0]]


CHAT_FRAMES = {
    "openai": ['data: {"error": {"message": "The server had an error", "type": "server_error"}}\n\n'],
    "vllm": [
        'data: {"error": {"message": "bad logits", "type": "BadRequestError", "param": null, "code": 400}}\n\n',
        "data: [DONE]\n\n",
    ],
    "vllm-old": [
        'data: {"object": "error", "message": "old style", "type": "BadRequestError", "param": null, "code": 400}\n\n'
    ],
    "litellm": ['data: {"error": {"message": "proxy broke", "type": "None", "param": "None", "code": "500"}}\n\n'],
    "malformed": ["data: {not json\n\n"],
}
RESPONSES_FRAMES = {
    "error-event": [
        'event: error\ndata: {"type": "error", "code": "ERR_X", "message": "went wrong", "param": null}\n\n'
    ],
    "failed": [
        'data: {"type": "response.failed", "response": {"id": "r", "status": "failed", "error": {"code": "server_error", "message": "model failed"}}}\n\n'
    ],
    "malformed": ["data: {not json\n\n"],
}
EXPECTED_FRAME = {
    "openai": "[server_error]: The server had an error",
    "vllm": "[BadRequestError, 400]: bad logits",
    "vllm-old": "[BadRequestError, 400]: old style",
    "litellm": "[500]: proxy broke",
    "malformed": "malformed JSON frame",
    "error-event": "[ERR_X]: went wrong",
    "failed": "[server_error]: model failed",
}


@pytest.mark.parametrize(
    "endpoint,shape",
    [("chat", s) for s in CHAT_FRAMES] + [("responses", s) for s in RESPONSES_FRAMES],
)
def test_error_frame_mid_stream_keeps_the_partial_reply(kernel, module_gateway, endpoint, shape):
    conversation = f"frame-{shape}-{endpoint}"
    before = first_turn(kernel, module_gateway, endpoint, conversation)
    frames = (CHAT_FRAMES if endpoint == "chat" else RESPONSES_FRAMES)[shape]
    module_gateway.plan(text="alpha beta gamma delta", cut_after=2, frames=frames, ending="clean")
    result = kernel.execute(f"{MAGIC[endpoint]} -c {conversation}\nsecond")
    line = one_line(result)
    # the panel shows the partial reply and the error; the saved bundle keeps both
    final = result.last_bundle()
    assert "alpha beta" in final["data"]["text/markdown"] and "interrupted" in final["data"]["text/markdown"]
    assert final["metadata"]["elk_jupyter"]["turn"]["status"] == "interrupted"
    assert "StreamError" in line and EXPECTED_FRAME[shape] in line and "partial reply kept" in line
    failed = state(kernel, conversation)["turns"][-1]
    assert failed[1] == "interrupted" and failed[2] == "alpha beta "
    assert_recovers(kernel, module_gateway, endpoint, conversation, before)


@pytest.mark.parametrize("endpoint", ["chat", "responses"])
@pytest.mark.parametrize(
    "ending,expected",
    [
        ("close", "the connection broke mid-stream"),
        ("reset", "the connection broke mid-stream"),
        ("stall", "the stream stalled: no data for 1.5 s"),
        ("clean", "the stream ended before"),
    ],
)
def test_broken_streams_keep_the_partial_reply(kernel, module_gateway, endpoint, ending, expected):
    conversation = f"broken-{ending}-{endpoint}"
    before = first_turn(kernel, module_gateway, endpoint, conversation)
    module_gateway.plan(text="one two three four", cut_after=2, ending=ending)
    line = one_line(kernel.execute(f"{MAGIC[endpoint]} -c {conversation}\nsecond", timeout=30))
    assert expected in line and "partial reply kept in turn" in line and "(request id req_" in line
    failed = state(kernel, conversation)["turns"][-1]
    assert failed[1] == "interrupted" and failed[2] == "one two "
    assert_recovers(kernel, module_gateway, endpoint, conversation, before)


@pytest.mark.parametrize("endpoint", ["chat", "responses"])
def test_connection_refused(kernel, module_gateway, endpoint):
    conversation = f"refused-{endpoint}"
    before = first_turn(kernel, module_gateway, endpoint, conversation)
    kernel.execute("%config ElkMagics.base_url = 'http://127.0.0.1:9/v1'")
    try:
        line = one_line(kernel.execute(f"{MAGIC[endpoint]} -c {conversation}\nsecond", timeout=60))
    finally:
        kernel.execute(f"%config ElkMagics.base_url = {module_gateway.base_url!r}")
    assert "could not reach 127.0.0.1:9 after 3 attempts: connection refused" in line
    assert_recovers(kernel, module_gateway, endpoint, conversation, before)


@pytest.mark.parametrize("endpoint", ["chat", "responses"])
def test_kernel_interrupt_mid_stream(kernel, module_gateway, endpoint):
    conversation = f"sigint-{endpoint}"
    before = first_turn(kernel, module_gateway, endpoint, conversation)
    words = " ".join(f"w{i}" for i in range(300))
    module_gateway.plan(text=words, delay=0.02)
    result = kernel.execute(f"{MAGIC[endpoint]} -c {conversation}\nsecond", interrupt_after=1.0, timeout=30)
    line = one_line(result)
    assert "interrupted by the user" in line and "partial reply kept" in line
    failed = state(kernel, conversation)["turns"][-1]
    assert failed[1] == "interrupted" and 0 < len(failed[2]) < len(words) and words.startswith(failed[2])
    assert_recovers(kernel, module_gateway, endpoint, conversation, before)


@pytest.mark.parametrize("endpoint", ["chat", "responses"])
def test_missing_usage_and_a_megabyte_reply(kernel, module_gateway, endpoint):
    conversation = f"big-{endpoint}"
    text = " ".join(["x" * 99] * 10_000)  # 1 MB
    module_gateway.plan(text=text, usage={}, words_per_chunk=50)
    result = kernel.execute(f"{MAGIC[endpoint]} -c {conversation} -o big\nbig one", timeout=120)
    assert result.status == "ok", result.error_text
    check = kernel.execute("print(len(big.text), big.usage, big.status)")
    assert check.stdout.split() == [str(len(text)), "None", "completed"]


@pytest.mark.parametrize(
    "line,expected",
    [
        ("%%chat --temperature hot", "argument -t/--temperature: invalid float value: 'hot'"),
        ("%%chat -p 'logit_bias={\"1\": oops}'", "--param logit_bias: bad JSON value"),
        ("%%respond --summary loud", "invalid choice: 'loud'"),
    ],
)
def test_invalid_options(kernel, module_gateway, line, expected):
    sent = len(module_gateway.requests)
    result = kernel.execute(f"{line}\nhello")
    # IPython reports a UsageError as one stderr line; the cell still fails (Run All stops).
    assert result.status == "error" and result.stderr.startswith("UsageError: ")
    assert expected in result.stderr and "Traceback" not in result.stderr
    assert len(module_gateway.requests) == sent
    assert kernel.execute("%%chat -c after-usage\nok").status == "ok"


def test_run_all_stops_on_a_failed_cell(kernel, module_gateway):
    module_gateway.plan(status=400, error_body=OPENAI_400)
    failing = kernel.client.execute("%%chat -c runall\nfails", stop_on_error=True)
    queued = kernel.client.execute("print('should not run')", stop_on_error=True)
    replies = {}
    while len(replies) < 2:
        msg = kernel.client.get_shell_msg(timeout=30)
        replies[msg["parent_header"]["msg_id"]] = msg["content"]["status"]
    assert replies == {failing: "error", queued: "aborted"}
