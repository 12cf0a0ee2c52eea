"""The one offset rule between the kernel and the front-end (UTF-16 code units, see panel.py and
js/state.js): the Panel's real comm messages are replayed through the front-end's own accumulator
(js/state.js ``reconcile``, run by node), and every state it shows must be a clean prefix of the reply."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from elk_jupyter.display.panel import MAX_UPDATES_PER_SECOND, Panel, utf16_units
from elk_jupyter.gateway.events import Done, TextDelta, ToolCallDelta
from elk_jupyter.gateway.reply import Reply
from tests.test_panel import comms, updates  # noqa: F401  (the comms fixture records real comm messages)

REPO = Path(__file__).resolve().parents[1]
# The front-end's accumulator (as js/panel.js feeds it), given the messages in order: prints the
# final text and every state that is not a well-formed prefix of it (a lone surrogate, or garbage).
REPLAY_JS = """
import { reconcile } from "./js/state.js";
import { readFileSync } from "node:fs";
const { messages, expected } = JSON.parse(readFileSync(0, "utf8"));
let acc = "";
const bad = [];
for (const { state } of messages) {
  acc = reconcile(reconcile(acc, state.text, null), null, state.delta);
  if (!acc.isWellFormed() || !expected.startsWith(acc)) bad.push(acc.slice(-40));
}
process.stdout.write(JSON.stringify({ final: acc, bad: bad.slice(0, 5), states: messages.length }));
"""

ASTRAL = "Let 𝑥 be 🦀 in 𝔽₂ 👩‍👩‍👧 ok. "  # math letters, an emoji, a ZWJ family
COMBINING = "e\u0301 n\u0303 a\u0308\u0304 Z\u0351\u0352\u0353 "  # base letters with combining marks
CRLF = "line one\r\nline two\r\n\r\n"


def front_end(messages: list[dict], expected: str) -> dict:
    out = subprocess.run(
        ["node", "--input-type=module", "-e", REPLAY_JS],
        input=json.dumps({"messages": messages, "expected": expected}),
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    return json.loads(out.stdout)


class EveryEvent(Panel):
    """One update per event, so every cut point of the text is a delta boundary."""

    updates_per_second = float("inf")


def stream(panel: Panel, reply: Reply, text: str, size: int) -> None:
    for i in range(0, len(text), size):
        reply.add(TextDelta(text[i : i + size]))
        panel.show(reply)
    reply.add(Done())
    panel.finish(reply)


@pytest.mark.parametrize(
    "piece", [ASTRAL, COMBINING, CRLF, ASTRAL + COMBINING + CRLF], ids=["astral", "combining", "crlf", "mixed"]
)
@pytest.mark.parametrize("size", [1, 2, 3, 7])
def test_every_live_state_is_a_clean_prefix(comms, piece, size):  # noqa: F811
    text = piece * 160  # past the early checkpoints, so most of it arrives as deltas
    panel = EveryEvent(endpoint="chat", conversation="c", model_asked="m")
    reply = Reply("chat")
    stream(panel, reply, text, size)
    messages = updates(panel.comm)
    seen = front_end(messages, text)
    assert seen == {"final": text, "bad": [], "states": len(messages)}
    deltas = [m["state"]["delta"] for m in messages if "delta" in m["state"]]
    assert [d["offset"] for d in deltas[1:]] == [d["offset"] + utf16_units(d["text"]) for d in deltas[:-1]]


def test_offsets_count_utf16_units():
    assert [utf16_units(s) for s in ["", "abc", "é", "e\u0301", "𝑥", "🦀x", "\r\n"]] == [0, 3, 1, 2, 2, 3, 2]


def test_tool_call_arguments_update_live_and_end_exact(comms):  # noqa: F811
    arguments = json.dumps({"city": "Zürich 🦀", "days": [1, 2, 3], "units": "metric"})
    panel = Panel(endpoint="chat", conversation="c", model_asked="m")
    reply = Reply("chat")
    reply.add(ToolCallDelta(index=0, id="call_1", type="function", name="weather", arguments=""))
    for i in range(0, len(arguments), 5):
        reply.add(ToolCallDelta(index=0, id=None, type=None, name=None, arguments=arguments[i : i + 5]))
        time.sleep(1 / MAX_UPDATES_PER_SECOND + 0.005)
        panel.show(reply)
    panel.show(reply)  # nothing new: nothing sent
    reply.add(Done())
    panel.finish(reply)
    sent = [m["state"]["tool_calls"] for m in updates(panel.comm) if "tool_calls" in m["state"]]
    seen = [calls[0]["function"]["arguments"] for calls in sent]
    assert len(seen) >= len(arguments) // 5  # one per growth, not just the first partial state
    assert seen == sorted(set(seen), key=len)  # each one new, each longer
    assert seen[-1] == arguments and panel.tool_calls[0]["function"]["arguments"] == arguments
    assert panel.tool_calls is not reply.tool_calls  # a copy: the reply's own list keeps growing in place
