"""After the terminal event the client reads the body to its end (bounded), for both endpoints.

Against tests/store_gateway.py, a real server that, like Llama Stack, stores a response only when
its stream generator finishes and cancels the store when the client hangs up first.
"""

from __future__ import annotations

import threading

import pytest

from elk_jupyter import APIError, Client
from tests.scripted_server import Script
from tests.store_gateway import StoreGateway

KEY = "sk-elk-TEST-drain-0123456789"


@pytest.fixture
def store_gateway():
    """A gateway that stores Responses turns (previous_response_id)."""
    server = StoreGateway()
    yield server
    server.close()


def test_previous_response_id_is_found_because_the_stream_was_read_to_its_end(store_gateway):
    client = Client(KEY, base_url=store_gateway.base_url, model="store-model", max_retries=0)
    first = client.respond("one")
    assert first.text == "You said: one" and first.ok
    assert store_gateway.stored == {first.id: {"text": "You said: one", "previous": None}}
    second = client.respond("two", previous_response_id=first.id)
    assert second.text == "You said: two (after: You said: one)"
    assert store_gateway.cancelled == []


def test_a_response_that_was_never_stored_is_a_400_from_that_server(store_gateway):
    client = Client(KEY, base_url=store_gateway.base_url, model="store-model", max_retries=0)
    with pytest.raises(APIError) as info:
        client.respond("two", previous_response_id="resp_404")
    assert info.value.status == 400 and "not found" in str(info.value)


def test_chat_is_read_past_done_so_the_proxy_logs_the_completion(store_gateway):
    client = Client(KEY, base_url=store_gateway.base_url, model="store-model", max_retries=0)
    reply = client.chat([{"role": "user", "content": "hi"}])
    assert reply.text == "Hi" and reply.ok
    assert store_gateway.billed == [reply.id] and store_gateway.cancelled == []


def test_the_reply_is_final_before_the_drain(store_gateway):
    """Every event, Done included, reaches the caller while the server is still finishing."""
    store_gateway.finish_after = 0.5
    client = Client(KEY, base_url=store_gateway.base_url, model="store-model", max_retries=0)
    seen = []
    client.respond("one", on_event=lambda event: seen.append((type(event).__name__, list(store_gateway.stored))))
    assert seen[-1] == ("Done", [])  # nothing stored yet when the reply ended: the drain came after
    assert list(store_gateway.stored) == ["resp_1"]


@pytest.mark.parametrize("endpoint", ["chat", "responses"])
def test_an_endless_tail_is_dropped_after_the_byte_bound(store_gateway, endpoint):
    store_gateway.tail, store_gateway.tail_forever = b": keep-alive " + b"x" * 8000 + b"\n", True
    client = Client(KEY, base_url=store_gateway.base_url, model="store-model", max_retries=0, timeout=60)
    client.drain_seconds = 60  # only the byte bound can end this drain
    reply = _within(lambda: _send(client, endpoint), 30)
    assert reply.ok and reply.text


@pytest.mark.parametrize("endpoint", ["chat", "responses"])
def test_a_server_that_never_ends_the_body_costs_at_most_the_drain_time(scripted, endpoint):
    frames = {
        "chat": [b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n', b"data: [DONE]\n\n"],
        "responses": [
            b'data: {"type":"response.output_text.delta","delta":"Hi"}\n\n',
            b'data: {"type":"response.completed","response":{"id":"r","status":"completed"}}\n\n',
        ],
    }[endpoint]
    scripted.queue(Script(body=frames, ending="stall"))
    client = Client(KEY, base_url=scripted.base_url, model="m", max_retries=0, timeout=60)
    client.drain_seconds = 0.5  # the read timeout (60 s) must not apply to the drain
    reply = _within(lambda: _send(client, endpoint), 30)
    assert reply.ok and reply.text == "Hi"
    assert scripted.requests[-1].closed.wait(10)  # and the connection was let go


def test_an_error_event_is_drained_too(scripted):
    scripted.queue(
        Script(body=[b'data: {"error": {"message": "boom"}}\n\n', 0.2, b": still finishing\n\n"], ending="end")
    )
    client = Client(KEY, base_url=scripted.base_url, model="m", max_retries=0)
    with pytest.raises(Exception, match="boom"):
        client.chat([{"role": "user", "content": "hi"}])
    assert len(scripted.requests[-1].sent) == 2  # the tail after the error was read, not cut


def _send(client, endpoint):
    if endpoint == "chat":
        return client.chat([{"role": "user", "content": "hi"}])
    return client.respond("hi")


def _within(call, seconds):
    """Run ``call`` in a thread; a drain that never ends fails here instead of hanging the suite."""
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("value", call()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert "value" in result, f"the call did not return within {seconds} s"
    return result["value"]
