"""Reply: the accumulator that turns typed events into one answer (text, reasoning, tools, usage).

It is mutable while the stream runs and never touches I/O; ``to_dict`` is its frozen form.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .events import (
    ChoiceFinished,
    Connected,
    Done,
    Event,
    ReasoningDelta,
    Started,
    TextDelta,
    ToolCallDelta,
    UsageReport,
)

# streaming -> completed | incomplete (the server ended it early, e.g. max tokens)
#           -> interrupted (cut, stalled or stopped by the user) | error (the server said so)
FINAL_OK = ("completed", "incomplete")


@dataclass
class Choice:
    index: int
    _text: list = field(default_factory=list, repr=False)
    _reasoning: list = field(default_factory=list, repr=False)
    tool_calls: list = field(default_factory=list)
    finish_reason: str | None = None

    @property
    def text(self) -> str:
        if len(self._text) > 1:  # join once, keep appending cheap
            self._text[:] = ["".join(self._text)]
        return self._text[0] if self._text else ""

    @property
    def reasoning(self) -> str:
        if len(self._reasoning) > 1:
            self._reasoning[:] = ["".join(self._reasoning)]
        return self._reasoning[0] if self._reasoning else ""

    def add_tool_call(self, delta: ToolCallDelta) -> None:
        # Tool calls are matched by their index, not by position (FORMATS.md §1.2).
        for call in self.tool_calls:
            if call["index"] == delta.index:
                break
        else:
            call = {"index": delta.index, "id": None, "type": "function", "function": {"name": None, "arguments": ""}}
            self.tool_calls.append(call)
            self.tool_calls.sort(key=lambda c: c["index"])
        if delta.id:
            call["id"] = delta.id
        if delta.type:
            call["type"] = delta.type
        if delta.name:
            call["function"]["name"] = delta.name
        call["function"]["arguments"] += delta.arguments

    def to_dict(self) -> dict:
        return {
            "index": self.index,
            "text": self.text,
            "reasoning": self.reasoning,
            "tool_calls": self.tool_calls,
            "finish_reason": self.finish_reason,
        }


class Reply:
    """Everything one request produced. ``text``/``reasoning``/``tool_calls`` are choice 0's."""

    def __init__(self, endpoint: str, request: dict | None = None):
        self.endpoint = endpoint
        self.request = request
        self.id: str | None = None
        self.model: str | None = None
        self.usage: dict | None = None
        self.status = "streaming"
        self.incomplete_details: dict | None = None
        self.error: str | None = None
        self.request_id: str | None = None
        self.attempts = 0
        self.response: dict | None = None  # the final Responses object, when the server sent one
        self.choices: list[Choice] = [Choice(0)]
        self.started_at = time.time()
        self._t0 = time.perf_counter()
        self.ttfb: float | None = None
        self.ttft: float | None = None
        self.total: float | None = None
        self.events = 0

    # -- the three things most users read
    @property
    def text(self) -> str:
        return self.choices[0].text

    @property
    def reasoning(self) -> str:
        return self.choices[0].reasoning

    @property
    def tool_calls(self) -> list:
        return self.choices[0].tool_calls

    @property
    def finish_reason(self) -> str | None:
        return self.choices[0].finish_reason

    @property
    def ok(self) -> bool:
        return self.status in FINAL_OK

    def choice(self, index: int) -> Choice:
        while len(self.choices) <= index:
            self.choices.append(Choice(len(self.choices)))
        return self.choices[index]

    def add(self, event: Event) -> None:
        self.events += 1
        kind = type(event)
        if kind is TextDelta or kind is ReasoningDelta or kind is ToolCallDelta:
            if self.ttft is None:
                self.ttft = time.perf_counter() - self._t0
            target = self.choice(event.choice)
            if kind is TextDelta:
                target._text.append(event.text)
            elif kind is ReasoningDelta:
                target._reasoning.append(event.text)
            else:
                target.add_tool_call(event)
        elif kind is UsageReport:
            self.usage = event.usage
        elif kind is ChoiceFinished:
            self.choice(event.choice).finish_reason = event.finish_reason
        elif kind is Started:
            self.id = event.id or self.id
            self.model = event.model or self.model
        elif kind is Connected:
            self.ttfb = event.ttfb
            self.request_id = event.request_id
            self.attempts = event.attempts
        elif kind is Done:
            self.status = event.status if event.status in FINAL_OK else "completed"
            self.incomplete_details = event.incomplete_details
            self.response = event.response
            self._stop()

    def fail(self, status: str, message: str) -> None:
        """Mark the reply broken ("interrupted" or "error"), keeping every byte that arrived."""
        self.status = status
        self.error = message
        self._stop()

    def _stop(self) -> None:
        if self.total is None:
            self.total = time.perf_counter() - self._t0

    @property
    def timing(self) -> dict:
        return {"ttfb": self.ttfb, "ttft": self.ttft, "total": self.total}

    def to_dict(self) -> dict:
        """A JSON-safe snapshot: what a record stores and what replay restores."""
        return {
            "endpoint": self.endpoint,
            "id": self.id,
            "model": self.model,
            "status": self.status,
            "finish_reason": self.finish_reason,
            "incomplete_details": self.incomplete_details,
            "error": self.error,
            "text": self.text,
            "reasoning": self.reasoning,
            "tool_calls": self.tool_calls,
            "choices": [c.to_dict() for c in self.choices] if len(self.choices) > 1 else None,
            "usage": self.usage,
            "request_id": self.request_id,
            "attempts": self.attempts,
            "timing": self.timing,
            "started_at": self.started_at,
        }

    @classmethod
    def from_dict(cls, data: dict, request: dict | None = None) -> Reply:
        reply = cls(data.get("endpoint", "chat"), request)
        for key in ("id", "model", "status", "incomplete_details", "error", "usage", "request_id"):
            setattr(reply, key, data.get(key))
        reply.attempts = data.get("attempts") or 0
        choices = data.get("choices") or [
            {
                "index": 0,
                "text": data.get("text", ""),
                "reasoning": data.get("reasoning", ""),
                "tool_calls": data.get("tool_calls") or [],
                "finish_reason": data.get("finish_reason"),
            }
        ]
        reply.choices = [
            Choice(
                c.get("index", position),  # a hand-edited record may leave it out
                [c.get("text") or ""],
                [c.get("reasoning") or ""],
                list(c.get("tool_calls") or []),
                c.get("finish_reason"),
            )
            for position, c in enumerate(choices)
        ]
        timing = data.get("timing") or {}
        reply.ttfb, reply.ttft, reply.total = timing.get("ttfb"), timing.get("ttft"), timing.get("total")
        reply.started_at = data.get("started_at") or reply.started_at
        return reply

    def __repr__(self) -> str:
        text = self.text if len(self.text) <= 60 else self.text[:57] + "..."
        return f"<Reply {self.endpoint} {self.status} model={self.model!r} text={text!r}>"
