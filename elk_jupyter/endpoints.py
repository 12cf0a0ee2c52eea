"""The two endpoints: request bodies, the Chat Completions dialect, and both dialects' registry. Pure.

Chat Completions streams are data-only chunks ended by ``[DONE]``; Responses streams (parsed in
``responses``) are typed events ended by a terminal ``response.*`` event (FORMATS.md §1.2, §1.5).
Each dialect is a small stateful parser fed one SSE event at a time, plus a converter for servers
that ignore ``stream: true`` and answer with one JSON body.
"""

from __future__ import annotations

from collections.abc import Iterator

from .errors import StreamError
from .events import (
    ChoiceFinished,
    Done,
    Event,
    ReasoningDelta,
    Started,
    TextDelta,
    ToolCallDelta,
    UsageReport,
)
from .frames import as_dict, as_index, as_str, dicts, first_text, parse_json, raise_if_error, raise_mid_stream
from .responses import ResponsesStream, output_text, responses_events_from_body
from .sse import ServerSentEvent

__all__ = ["ResponsesStream", "output_text", "parse_json", "raise_if_error", "responses_events_from_body"]

CHAT = "chat"
RESPONSES = "responses"
PATHS = {CHAT: "/chat/completions", RESPONSES: "/responses"}


def chat_body(messages: list, model: str, stream: bool = True, **params) -> dict:
    """The exact JSON body for POST /chat/completions. ``None`` params mean "not set"."""
    body = {"model": model, "messages": messages}
    body.update({k: v for k, v in params.items() if v is not None})
    body["stream"] = stream
    if stream:
        # Ask for the final usage chunk unless the caller decided otherwise.
        options = dict(body.get("stream_options") or {})
        options.setdefault("include_usage", True)
        body["stream_options"] = options
    else:
        body.pop("stream_options", None)  # vLLM rejects stream_options without stream
    return body


def responses_body(input, model: str, stream: bool = True, **params) -> dict:
    """The exact JSON body for POST /responses. ``None`` params mean "not set"."""
    body = {"model": model, "input": input}
    body.update({k: v for k, v in params.items() if v is not None})
    body["stream"] = stream
    return body


class ChatStream:
    """Parser for ``chat.completion.chunk`` streams, every choice keyed by its ``index``."""

    endpoint = CHAT

    def __init__(self) -> None:
        self.done = False
        self._started = False
        self._open_choices: set[int] = set()
        self._finished: set[int] = set()

    def feed(self, sse: ServerSentEvent) -> list[Event]:
        # Lists, not generators: this runs once per chunk, tens of thousands of times a reply.
        data = sse.data
        if data.startswith("[DONE]"):
            self.done = True
            return [Done("completed")]
        if not data.strip():
            return []
        obj = parse_json(data)
        if not isinstance(obj, dict):
            raise StreamError(f"unexpected frame from the server: {data[:120]!r}")
        raise_mid_stream(obj)
        events: list[Event] = []
        if not self._started and as_str(obj.get("id")):  # Azure's first chunk has id "" and choices []
            self._started = True
            events.append(Started(obj["id"], as_str(obj.get("model"))))
        for choice in dicts(obj.get("choices")):
            self._choice(choice, events)
        if as_dict(obj.get("usage")):  # keep the last one: vLLM can send usage on every chunk
            events.append(UsageReport(obj["usage"]))
        return events

    def _choice(self, choice: dict, events: list) -> None:
        index = as_index(choice.get("index"), 0)
        if index is None:
            raise StreamError(f"unexpected choice index from the server: {choice.get('index')!r:.40}")
        self._open_choices.add(index)
        delta = as_dict(choice.get("delta") or choice.get("message"))
        if "reasoning_content" in delta or "reasoning" in delta or "reasoning_details" in delta:
            reasoning = first_text(
                delta.get("reasoning_content"),
                delta.get("reasoning"),
                "".join(first_text(d.get("text"), d.get("summary")) for d in dicts(delta.get("reasoning_details"))),
            )
            if reasoning:
                events.append(ReasoningDelta(reasoning, index))
        content = delta.get("content")
        if isinstance(content, str) and content:
            events.append(TextDelta(content, index))
        for position, call in enumerate(dicts(delta.get("tool_calls")) if "tool_calls" in delta else ()):
            function = as_dict(call.get("function"))
            tool = as_index(call.get("index"), position)
            events.append(
                ToolCallDelta(
                    index=position if tool is None else tool,
                    arguments=first_text(function.get("arguments")),
                    id=as_str(call.get("id")),
                    name=as_str(function.get("name")),
                    type=as_str(call.get("type")),
                    choice=index,
                )
            )
        if as_str(choice.get("finish_reason")):
            if choice["finish_reason"] == "error":  # OpenRouter's mid-stream error
                raise StreamError(
                    "error from the server mid-stream: the server reported an error (finish_reason error)"
                )
            self._finished.add(index)
            events.append(ChoiceFinished(index, choice["finish_reason"]))

    def end(self) -> Iterator[Event]:
        """At EOF. Without ``[DONE]`` the reply is whole only if every choice finished."""
        if self.done:
            return
        if self._open_choices and self._open_choices <= self._finished:
            self.done = True
            yield Done("completed")
            return
        raise StreamError("the stream ended before the reply was complete (no [DONE])")


def chat_events_from_body(obj: dict) -> Iterator[Event]:
    """A complete ``chat.completion`` object (non-streamed, or a gateway ignoring stream)."""
    yield Started(as_str(obj.get("id")), as_str(obj.get("model")))
    parser = ChatStream()
    for position, choice in enumerate(dicts(obj.get("choices"))):
        choice = dict(choice)
        choice.setdefault("index", position)
        message = as_dict(choice.get("message"))
        calls = [dict(c, index=c.get("index", i)) for i, c in enumerate(dicts(message.get("tool_calls")))]
        choice["message"] = dict(message, tool_calls=calls)
        choice["finish_reason"] = choice.get("finish_reason") or "stop"
        events: list[Event] = []
        parser._choice(choice, events)
        yield from events
    if as_dict(obj.get("usage")):
        yield UsageReport(obj["usage"])
    yield Done("completed")


STREAMS = {CHAT: ChatStream, RESPONSES: ResponsesStream}
FROM_BODY = {CHAT: chat_events_from_body, RESPONSES: responses_events_from_body}
