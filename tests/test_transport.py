"""The Client's transport rules over real sockets: when a request is retried, how the base URL is
used, what a redirect or a malformed header gives, and which settings are refused up front."""

from __future__ import annotations

import json
import math

import pytest

from elk_jupyter import APIError, Client, ConfigError, StreamError
from tests.conftest import free_port
from tests.scripted_server import Script
from tests.test_client import DONE, HI, KEY, _ok, delta

AZURE = "/openai/deployments/gpt-4o?api-version=2024-10-21"


def client_for(server, path="/v1", **kwargs) -> Client:
    options = dict(model="m", timeout=2, connect_timeout=1, max_retries=2) | kwargs
    return Client(KEY, base_url=f"http://127.0.0.1:{server.port}{path}", **options)


# -- retries: only when the request provably did not reach the server, or the server asks


def test_a_server_that_reads_the_request_and_never_answers_gets_one_post(scripted):
    scripted.queue(Script(ending="silent"), _ok(), _ok())
    client = client_for(scripted, timeout=0.5)
    with pytest.raises(APIError) as info:
        client.chat(HI)
    assert len(scripted.requests) == 1  # one billable POST, not three
    assert str(info.value) == (
        f"Gateway error: sent to 127.0.0.1:{scripted.port}, no answer within 0.5 s; not retried (the request "
        "may be running, and billed, already): raise ElkMagics.timeout for slow models"
    )


def test_a_connection_cut_after_the_request_was_sent_is_not_retried(scripted):
    scripted.queue(Script(ending="hang-up"), _ok(), _ok())
    with pytest.raises(APIError) as info:
        client_for(scripted).chat(HI)
    assert len(scripted.requests) == 1
    assert str(info.value).startswith(
        f"Gateway error: the connection to 127.0.0.1:{scripted.port} broke after the request was sent"
    )


def _dropping(text="ok") -> Script:
    """A stream answered in full, keep-alive advertised, its connection then closed as the next
    request arrives on it: llama-server after every streamed response (cpp-httplib)."""
    return Script(body=[delta(text), delta(None, "stop"), DONE], ending="drop-next")


@pytest.mark.parametrize("max_retries", [0, 2])
def test_a_kept_alive_connection_the_server_closed_unanswered_is_resent_once_on_a_new_one(scripted, max_retries):
    scripted.queue(_dropping("one"), _ok("two"))
    client = client_for(scripted, max_retries=max_retries)  # an experiment's workers retry nothing
    assert client.chat(HI).text == "one"
    reply = client.chat(HI)  # sent on the kept-alive connection, closed by the server unread
    assert (reply.text, reply.attempts) == ("two", 1)
    assert scripted.dropped == 1 and len(scripted.requests) == 2  # each answered once, the second on a new connection


def test_the_resend_takes_a_new_connection_not_another_kept_alive_one(scripted):
    scripted.queue(_dropping("a"), _dropping("b"), _ok("c"))
    client = client_for(scripted, max_retries=0)
    first, second = client.iter_chat(HI), client.iter_chat(HI)
    next(first), next(second)  # two streams at once: two connections, both kept alive when read
    list(first), list(second)
    assert client.chat(HI).text == "c"  # sent on one, resent on neither of them
    assert scripted.dropped == 1 and len(scripted.requests) == 3


def test_the_resend_on_a_new_connection_is_the_only_one(scripted):
    scripted.queue(_dropping(), Script(ending="hang-up"), _ok(), _ok())
    client = client_for(scripted)
    client.chat(HI)
    with pytest.raises(APIError) as info:
        client.chat(HI)  # the new connection's request read and left unanswered: may be running
    assert scripted.dropped == 1 and len(scripted.requests) == 2
    assert str(info.value) == (
        f"Gateway error: the connection to 127.0.0.1:{scripted.port} broke after the request was sent "
        "(remote end closed); not retried (it may have been processed)"
    )


def test_a_kept_alive_connection_cut_once_the_answer_began_is_not_resent(scripted):
    scripted.queue(_ok(), Script(body=[delta("par")], ending="close"), _ok())
    client = client_for(scripted)
    client.chat(HI)
    with pytest.raises(StreamError, match="the connection broke mid-stream"):
        client.chat(HI)
    assert len(scripted.requests) == 2


def test_refused_connections_are_retried_because_nothing_was_sent():
    client = Client(KEY, base_url=f"http://127.0.0.1:{free_port()}/v1", max_retries=2, connect_timeout=1)
    with pytest.raises(APIError, match="after 3 attempts: connection refused"):
        client.chat(HI)


def test_the_server_asking_for_a_retry_still_gets_one(scripted):
    scripted.queue(Script.json({"error": {"message": "busy"}}, 503, {"retry-after-ms": "10"}), _ok())
    assert client_for(scripted).chat(HI).attempts == 2


# -- the base URL


def test_an_azure_query_string_is_kept_on_every_request(scripted):
    response = {
        "id": "resp_1",
        "object": "response",
        "status": "completed",
        "output": [{"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "ok"}]}],
    }
    scripted.queue(_ok(), Script.json({"data": [{"id": "gpt-4o"}]}), Script.json(response))
    client = client_for(scripted, AZURE)
    assert client.chat(HI).text == "ok"
    assert client.models() == [{"id": "gpt-4o"}]
    assert client.respond("hi", stream=False).text == "ok"
    paths = [r.path for r in scripted.requests]
    assert paths == [
        "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
        "/openai/deployments/gpt-4o/models?api-version=2024-10-21",
        "/openai/deployments/gpt-4o/responses?api-version=2024-10-21",
    ]
    assert client.host == f"127.0.0.1:{scripted.port}"


def test_credentials_in_the_url_are_refused_not_sent_as_basic_auth(scripted):
    client = Client(KEY, base_url=f"http://alice:hunter2-secret@127.0.0.1:{scripted.port}/v1")
    with pytest.raises(ConfigError) as info:
        client.chat(HI)
    assert "user:password@" in str(info.value) and "hunter2" not in str(info.value) and "alice" not in str(info.value)
    assert scripted.requests == []


@pytest.mark.parametrize(
    "url,reason",
    [
        ("api.example.com/v1?token=tok-SECRET", "must start with http:// or https://"),
        ("ftp://files.example.com/v1?token=tok-SECRET", "must start with http:// or https://"),
        ("http://[::1/v1?token=tok-SECRET", "malformed (invalid IPv6 address)"),
        ("http://gateway.example:99999/v1?token=tok-SECRET", "malformed (invalid port)"),
        ("http:///v1?token=tok-SECRET", "has no host"),
    ],
)
def test_a_malformed_base_url_is_a_config_error_quoting_nothing(url, reason):
    with pytest.raises(ConfigError) as info:
        Client(KEY, base_url=url).chat(HI)
    message = str(info.value)
    assert reason in message and "SECRET" not in message and "example" not in message
    assert info.value.__context__ is None and info.value.__cause__ is None  # nothing chained to show


def test_a_key_echoed_in_a_successful_header_is_redacted(scripted):
    scripted.queue(
        Script(
            headers={"content-type": "text/event-stream", "x-request-id": f"req-{KEY}"},
            body=[delta("ok"), delta(None, "stop")],
        )
    )
    reply = client_for(scripted).chat(HI)
    assert reply.request_id == "req-[redacted key]"
    assert KEY not in json.dumps(reply.to_dict()) and KEY not in repr(reply)


# -- redirects and malformed headers: one line, never followed, never retried


@pytest.mark.parametrize(
    "location,target",
    [
        ("SELF", "http://127.0.0.1:{port}/v1/chat/completions"),  # a loop: it points at itself
        ("ftp://files.example.com/x?sig=abc", "ftp://files.example.com/x"),
        ("http://[::1", None),  # requests itself fails to parse it
        (None, "nowhere (no Location header)"),
    ],
)
def test_redirects_are_one_line_errors(scripted, location, target):
    headers = {}
    if location is not None:
        headers["Location"] = scripted.base_url + "/chat/completions" if location == "SELF" else location
    scripted.queue(Script.json({}, 307, headers), _ok())
    with pytest.raises(APIError) as info:
        client_for(scripted).chat(HI)
    if target is None:
        assert (
            str(info.value)
            == f"Gateway error: 127.0.0.1:{scripted.port} sent a malformed response (ValueError); not retried"
        )
    else:
        expected = target.format(port=scripted.port)
        assert str(info.value).startswith(f"HTTP 307: the gateway redirects to {expected};")
    assert len(scripted.requests) == 1


@pytest.mark.parametrize("values", [("2", "5"), ("2, 7",)])
def test_conflicting_content_lengths_are_one_line(scripted, values):
    headers = {"content-type": "application/json"}
    for number, value in enumerate(values):
        headers["Content-Length" if number == 0 else "content-length"] = value
    scripted.queue(Script(200, headers, [b"{}"], "close"), _ok())
    with pytest.raises(APIError, match=r"sent a malformed response \(InvalidHeader\); not retried"):
        client_for(scripted).chat(HI)
    assert len(scripted.requests) == 1


# -- settings refused before anything is sent


@pytest.mark.parametrize(
    "options,message",
    [
        (dict(timeout=0), "timeout must be a finite number of seconds above 0, got 0"),
        (dict(timeout=math.inf), "timeout must be a finite number of seconds above 0, got inf"),
        (dict(connect_timeout=-1), "connect_timeout must be a finite number of seconds above 0"),
        (dict(max_retries=-1), "retries must be a whole number from 0 to 10, got -1"),
        (dict(max_retries=1000), "retries must be a whole number from 0 to 10, got 1000"),
    ],
)
def test_bad_settings_are_config_errors(options, message):
    with pytest.raises(ConfigError, match=message):
        Client(KEY, base_url="https://gateway.example/v1", **options)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_nan_and_infinity_are_refused_before_sending(scripted, value):
    with pytest.raises(ConfigError, match="NaN or Infinity.*nothing was sent"):
        client_for(scripted).chat(HI, temperature=value)
    assert scripted.requests == []


def test_a_netrc_entry_does_not_replace_the_bearer_key(scripted, tmp_path, monkeypatch):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login alice password hunter2\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))  # requests would send these as Basic auth
    scripted.queue(_ok())
    client_for(scripted).chat(HI)
    assert scripted.requests[0].headers["authorization"] == f"Bearer {KEY}"


def test_proxy_settings_changed_between_requests_are_followed(scripted, monkeypatch):
    """requests' reading of the environment is kept between requests (it costs ~1 ms each), and
    read again as soon as one of its variables changes: a proxy set or bypassed between cells."""
    from tests.scripted_server import ScriptedServer

    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    proxy = ScriptedServer()
    try:
        client = client_for(scripted, max_retries=0)
        scripted.queue(_ok(), _ok())
        proxy.queue(_ok())
        client.chat(HI)
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
        client.chat(HI)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        client.chat(HI)
        assert [r.path for r in proxy.requests] == [f"http://127.0.0.1:{scripted.port}/v1/chat/completions"]
        assert [r.path for r in scripted.requests] == ["/v1/chat/completions"] * 2
    finally:
        proxy.close()


def test_a_cookie_the_gateway_sets_goes_back_on_the_next_requests(scripted):
    """A load balancer's affinity cookie, as requests' Session keeps it: sent back to the host that set it."""
    scripted.queue(
        Script.sse(delta("a"), DONE, headers={"content-type": "text/event-stream", "set-cookie": "node=b7; Path=/"})
    )
    scripted.queue(_ok(), _ok())
    client = client_for(scripted)
    for _ in range(3):
        client.chat(HI)
    cookies = [request.headers.get("cookie") for request in scripted.requests]
    assert cookies == [None, "node=b7", "node=b7"]
