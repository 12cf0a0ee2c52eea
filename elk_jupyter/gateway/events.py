"""The typed events a reply is made of, whatever the endpoint or server dialect. Pure values.

The deltas, made once per chunk, are plain slotted dataclasses, not frozen ones: a frozen
dataclass's ``__init__`` sets each field through ``object.__setattr__``, 2.5x the cost, and
stream consumption is measured per event (issue 12, bench/stream_consumption.py). Treat them
as immutable all the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Connected:
    """The gateway answered 2xx (after ``attempts`` tries); the body follows."""

    request_id: str | None
    attempts: int
    ttfb: float  # seconds from the request to the response headers


@dataclass(frozen=True, slots=True)
class Started:
    """The reply's identity as the server reports it (the model that actually answers)."""

    id: str | None
    model: str | None


@dataclass(slots=True)
class TextDelta:
    text: str
    choice: int = 0


@dataclass(slots=True)
class ReasoningDelta:
    text: str
    choice: int = 0


@dataclass(slots=True)
class ToolCallDelta:
    """A fragment of tool call ``index``: id/name come once, ``arguments`` arrives in pieces."""

    index: int
    arguments: str = ""
    id: str | None = None
    name: str | None = None
    type: str | None = None
    choice: int = 0


@dataclass(slots=True)
class AudioDelta:
    """A piece of an audio reply: decoded bytes, and the clip's id and expiry when the server says them."""

    data: bytes = b""
    id: str | None = None
    expires_at: int | None = None
    choice: int = 0


@dataclass(frozen=True, slots=True)
class UsageReport:
    usage: dict  # the server's dict, untouched


@dataclass(frozen=True, slots=True)
class ChoiceFinished:
    choice: int
    finish_reason: str | None


@dataclass(frozen=True, slots=True)
class Done:
    """The server said the reply is over: ``[DONE]``, or a terminal Responses event."""

    status: str = "completed"  # completed | incomplete
    incomplete_details: dict | None = None
    response: dict | None = field(default=None, repr=False)


Event = (
    Connected | Started | TextDelta | ReasoningDelta | ToolCallDelta | AudioDelta | UsageReport | ChoiceFinished | Done
)
