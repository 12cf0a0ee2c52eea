"""Reply: the accumulator that turns typed events into one answer (text, reasoning, tools, usage).

It is mutable while the stream runs and never touches I/O; ``to_dict`` is its frozen form.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from elk_jupyter.gateway.events import (
    AudioDelta,
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
from elk_jupyter.gateway.usage import Usage, raw_usage
from elk_jupyter.media.audio import AudioPieces, Clip, asked_format

# streaming -> completed | incomplete (the server ended it early, e.g. max tokens)
#           -> interrupted (cut, stalled or stopped by the user) | error (the server said so)
FINAL_OK = ("completed", "incomplete")


@dataclass
class Choice:
    """One choice of a reply. Every ``add`` is O(its delta): pieces are joined only when read."""

    index: int
    _text: list = field(default_factory=list, repr=False)
    _reasoning: list = field(default_factory=list, repr=False)
    _calls: list = field(default_factory=list)  # tool call dicts, sorted by index
    finish_reason: str | None = None
    text_length: int = field(default=0, repr=False)
    reasoning_length: int = field(default=0, repr=False)
    _by_index: dict = field(default_factory=dict, repr=False)  # call index -> its dict
    _arguments: dict = field(default_factory=dict, repr=False)  # call index -> pieces not yet joined
    audio: AudioPieces = field(default_factory=AudioPieces, repr=False)  # a spoken answer, as it arrives

    def __post_init__(self) -> None:
        self.text_length = sum(map(len, self._text))
        self.reasoning_length = sum(map(len, self._reasoning))
        self._by_index = {c.get("index"): c for c in self._calls if isinstance(c, dict)}

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

    def text_from(self, start: int) -> str:
        """The answer from character ``start`` on, reading only what came after it (O(delta))."""
        return _tail(self._text, self.text_length - start)

    def reasoning_from(self, start: int) -> str:
        return _tail(self._reasoning, self.reasoning_length - start)

    def add_text(self, text: str) -> None:
        self._text.append(text)
        self.text_length += len(text)

    def add_reasoning(self, text: str) -> None:
        self._reasoning.append(text)
        self.reasoning_length += len(text)

    @property
    def tool_calls(self) -> list:
        for index, pieces in self._arguments.items():
            if pieces:
                function = self._by_index[index]["function"]
                function["arguments"] = function["arguments"] + "".join(pieces)
                pieces.clear()
        return self._calls

    def add_tool_call(self, delta: ToolCallDelta) -> None:
        # Tool calls are matched by their index, not by position
        # (https://platform.openai.com/docs/api-reference/chat-streaming).
        call = self._by_index.get(delta.index)
        if call is None:
            call = {"index": delta.index, "id": None, "type": "function", "function": {"name": None, "arguments": ""}}
            self._by_index[delta.index] = call
            self._calls.append(call)
            self._calls.sort(key=lambda c: c["index"])
        if delta.id:
            call["id"] = delta.id
        if delta.type:
            call["type"] = delta.type
        if delta.name:
            call["function"]["name"] = delta.name
        if delta.arguments:  # joined on read: += on a string in a dict copies it every time
            self._arguments.setdefault(delta.index, []).append(delta.arguments)

    def to_dict(self) -> dict:
        return {
            "index": self.index,
            "text": self.text,
            "reasoning": self.reasoning,
            "tool_calls": self.tool_calls,
            "finish_reason": self.finish_reason,
        }


def _tail(pieces: list, count: int) -> str:
    """The last ``count`` characters of the joined ``pieces``, walking back only as far as needed."""
    if count <= 0:
        return ""
    tail = []
    for piece in reversed(pieces):
        if len(piece) >= count:
            tail.append(piece[len(piece) - count :])
            break
        tail.append(piece)
        count -= len(piece)
    return "".join(reversed(tail))


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
        self.steps: list[dict] = []  # earlier requests of a tool turn: their calls and results (tool_loop)
        self.audio_record: dict | None = None  # a restored record's audio whose bytes are elsewhere (a file)
        self.started_at = time.time()
        self._t0 = time.perf_counter()
        self.ttfb: float | None = None
        self.ttft: float | None = None
        self.total: float | None = None

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
    def audio(self) -> Clip | None:
        """Choice 0's audio (``modalities: ["text", "audio"]``): bytes, format, id, expiry; its transcript is ``text``."""
        return self.choices[0].audio.clip(asked_format(self.request))

    def audio_dict(self) -> dict | None:
        """The audio as the reply's record keeps it (bytes inline; ``record`` may move them to a file)."""
        clip = self.audio
        return clip.to_dict() if clip is not None else self.audio_record

    @property
    def tokens(self) -> Usage:
        """The usage as normalised counts (``usage`` keeps the server's own object)."""
        return Usage.of(self.usage)

    @property
    def ok(self) -> bool:
        return self.status in FINAL_OK

    def choice(self, index: int) -> Choice:
        while len(self.choices) <= index:
            self.choices.append(Choice(len(self.choices)))
        return self.choices[index]

    def add(self, event: Event) -> None:
        kind = type(event)
        if kind is TextDelta or kind is ReasoningDelta or kind is ToolCallDelta:
            if self.ttft is None:
                self.ttft = time.perf_counter() - self._t0
            target = self.choices[0] if event.choice == 0 else self.choice(event.choice)
            if kind is TextDelta:
                target.add_text(event.text)
            elif kind is ReasoningDelta:
                target.add_reasoning(event.text)
            else:
                target.add_tool_call(event)
        elif kind is AudioDelta:
            target = self.choices[0] if event.choice == 0 else self.choice(event.choice)
            target.audio.add(event.data, event.id, event.expires_at)
        elif kind is UsageReport:
            self.usage = raw_usage(event.usage)  # the server's object, JSON-safe; read it with Usage.of
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
        data = {
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
            "audio": self.audio_dict(),
            "choices": [c.to_dict() for c in self.choices] if len(self.choices) > 1 else None,
            "usage": self.usage,
            "request_id": self.request_id,
            "attempts": self.attempts,
            "timing": self.timing,
            "started_at": self.started_at,
        }
        if self.steps:  # only tool turns carry it: other records keep their shape
            data["steps"] = self.steps
        return data

    @classmethod
    def from_dict(cls, data: dict, request: dict | None = None) -> Reply:
        reply = cls(data.get("endpoint", "chat"), request)
        for key in ("id", "model", "status", "incomplete_details", "error", "request_id"):
            setattr(reply, key, data.get(key))
        reply.usage = raw_usage(data.get("usage"))  # records can be hand-edited: same rule as a stream
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
        reply.choices[0].audio, reply.audio_record = AudioPieces.of_record(data.get("audio"))
        timing = data.get("timing") or {}
        reply.ttfb, reply.ttft, reply.total = timing.get("ttfb"), timing.get("ttft"), timing.get("total")
        reply.started_at = data.get("started_at") or reply.started_at
        reply.steps = list(data.get("steps") or [])
        return reply

    def __repr__(self) -> str:
        text = self.text if len(self.text) <= 60 else self.text[:57] + "..."
        return f"<Reply {self.endpoint} {self.status} model={self.model!r} text={text!r}>"
