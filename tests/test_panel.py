"""Panel: what reaches the front-end (counted on a real comm), throttling, final state, bundle."""

from __future__ import annotations

import json
import time

import comm
import pytest
from comm.base_comm import BaseComm

from elk_jupyter.display.header import TurnHeader
from elk_jupyter.display.panel import MAX_UPDATES_PER_SECOND, Panel
from elk_jupyter.display.turn_output import TURN_MIME, turn_bundle
from elk_jupyter.gateway.events import Connected, Done, ReasoningDelta, Started, TextDelta, UsageReport
from elk_jupyter.gateway.reply import Reply


class RecordingComm(BaseComm):
    """A comm that keeps every message instead of sending it to a kernel's iopub."""

    def __init__(self, **kwargs):
        self.sent: list[tuple[float, dict]] = []
        super().__init__(**kwargs)

    def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):
        self.sent.append((time.monotonic(), {"msg_type": msg_type, "data": data}))


@pytest.fixture
def comms(monkeypatch):
    created: list[RecordingComm] = []

    def create(**kwargs):
        created.append(RecordingComm(**kwargs))
        return created[-1]

    # comm's documented hook for front-ends: widgets open their comm through it.
    monkeypatch.setattr(comm, "create_comm", create)
    return created


def updates(channel: RecordingComm) -> list[dict]:
    return [m["data"] for _, m in channel.sent if m["msg_type"] == "comm_msg" and m["data"]["method"] == "update"]


def stream_into(
    panel: Panel, reply: Reply, text: str, chars_per_token: int, tokens_per_second: float, reasoning: str = ""
):
    reply.add(Connected("req_1", 1, 0.01))
    reply.add(Started("id1", "served-model"))
    start = time.monotonic()
    pieces = [reasoning[i : i + chars_per_token] for i in range(0, len(reasoning), chars_per_token)]
    events = [ReasoningDelta(p) for p in pieces] + [
        TextDelta(text[i : i + chars_per_token]) for i in range(0, len(text), chars_per_token)
    ]
    for n, event in enumerate(events):
        reply.add(event)
        panel.show(reply)
        pause = start + (n + 1) / tokens_per_second - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    reply.add(
        UsageReport(
            {
                "prompt_tokens": 10,
                "completion_tokens": len(events),
                "completion_tokens_details": {"reasoning_tokens": len(pieces)},
            }
        )
    )
    reply.add(Done())
    panel.finish(reply)


def rebuild(messages: list[dict]) -> str:
    """What the front-end's accumulator (js/state.js reconcile) rebuilds from the updates."""
    acc = ""
    for message in messages:
        state = message["state"]
        if len(state.get("text", "")) > len(acc):
            acc = state["text"]
        delta = state.get("delta")
        if delta and delta["offset"] <= len(acc) < delta["offset"] + len(delta["text"]):
            acc = acc[: delta["offset"]] + delta["text"]
    return acc


def test_fast_stream_is_throttled_linear_and_exact(comms):
    text = "".join(f"word{i} " for i in range(7000))[:50_000]
    panel = Panel(endpoint="chat", conversation="default", model_asked="m")
    reply = Reply("chat")
    began = time.monotonic()
    stream_into(panel, reply, text, chars_per_token=4, tokens_per_second=5000)
    elapsed = time.monotonic() - began
    messages = updates(panel.comm)
    assert rebuild(messages) == text  # the front-end's final text is exact
    assert panel.text == text and panel.status == "completed" and panel.model == "served-model"
    assert len(messages) <= MAX_UPDATES_PER_SECOND * elapsed + 2
    sent = sum(len(json.dumps(m)) for m in messages)
    assert sent <= 3 * len(text.encode()), (sent, len(text))
    # re-sending the whole text on every update would have cost this much:
    quadratic = sum(len(rebuild(messages[: i + 1])) for i in range(len(messages)))
    assert quadratic > 10 * len(text)


def test_each_update_is_one_message_and_nothing_is_sent_when_nothing_changed(comms):
    panel = Panel(endpoint="responses", conversation="c", model_asked="m")
    reply = Reply("responses")
    reply.add(TextDelta("hello"))
    panel.show(reply)
    time.sleep(1 / MAX_UPDATES_PER_SECOND + 0.01)
    panel.show(reply)  # same text: no new delta; status etc. unchanged
    messages = updates(panel.comm)
    assert len(messages) == 1
    assert messages[0]["state"]["delta"] == {"offset": 0, "text": "hello"}


def test_reasoning_streams_separately_and_usage_reaches_the_footer_traits(comms):
    panel = Panel(endpoint="chat", conversation="default", model_asked="m")
    reply = Reply("chat")
    stream_into(panel, reply, "The answer.", chars_per_token=3, tokens_per_second=200, reasoning="Let me think.")
    assert panel.reasoning == "Let me think." and panel.text == "The answer."
    assert panel.usage["completion_tokens_details"]["reasoning_tokens"] == 5
    assert set(panel.timing) == {"ttfb", "ttft", "total"}


def test_finished_bundle_needs_no_widget_and_carries_view_copies_and_record(comms):
    panel = Panel(endpoint="chat", conversation="default", model_asked="m")
    reply = Reply("chat")
    stream_into(
        panel, reply, "Hi <img src=x onerror=alert(1)>", chars_per_token=5, tokens_per_second=1000, reasoning="hmm"
    )
    header = TurnHeader(endpoint="chat", conversation="default", model_asked="m", note="Re-ran this cell", turn="t1")
    data, metadata = turn_bundle(reply, header, {"version": 1, "turn": {"id": "t1"}})
    assert set(data) == {TURN_MIME, "text/markdown", "text/plain"}  # no widget-view entry
    view = data[TURN_MIME]
    assert (view["version"], view["text"], view["reasoning"], view["note"]) == (
        1,
        "Hi <img src=x onerror=alert(1)>",
        "hmm",
        "Re-ran this cell",
    )
    assert view["usage"]["prompt_tokens"] == 10 and view["status"] == "completed" and view["model"] == "served-model"
    assert "Hi \\<img src=x onerror=alert&#40;1&#41;\\>" in data["text/markdown"]
    assert "<details><summary>Reasoning</summary>" in data["text/markdown"]
    assert "10 prompt" in data["text/markdown"]
    assert data["text/plain"].splitlines()[0] == "[chat · default · served-model · done · turn t1]"
    assert metadata["elk_jupyter"] == {"version": 1, "turn": {"id": "t1"}}
    json.dumps(data, allow_nan=False)  # the bundle is plain JSON, as a notebook stores it
