"""The two endpoints' wire dialects: request bodies, and server data -> typed events. Pure.

Chat Completions streams are data-only chunks ended by ``[DONE]``; Responses streams are typed
events ended by a terminal ``response.*`` event (FORMATS.md §1.2, §1.5). Each dialect is a small
stateful parser fed one SSE event at a time, plus a converter for servers that ignore
``stream: true`` and answer with one JSON body.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from .errors import APIError, StreamError, error_fields
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
from .sse import ServerSentEvent

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


_decode = json.JSONDecoder().decode  # json.loads minus its per-call type checks (hot path)


def parse_json(data: str) -> object:
    try:
        return _decode(data)
    except ValueError:
        excerpt = data if len(data) <= 120 else data[:117] + "..."
        raise StreamError(f"malformed JSON frame from the server: {excerpt!r}") from None


def raise_if_error(obj: object, http_status: int | None = None) -> None:
    fields = error_fields(obj)
    if fields is not None:
        raise APIError(fields.pop("message"), status=http_status, **fields)


def _first_text(*values) -> str:
    for value in values:
        if isinstance(value, str) and value:
            return value
    return ""


# Servers send JSON of any shape; a field of the wrong type is ignored, never a crash.
def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _dicts(value) -> list[dict]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _str(value) -> str | None:
    return value if isinstance(value, str) else None


def _index(value, default: int) -> int | None:
    """A choice or tool-call index: a small non-negative int (n is at most 128 at OpenAI)."""
    if value is None:
        return default
    return value if type(value) is int and 0 <= value < 1024 else None


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
        _raise_mid_stream(obj)
        events: list[Event] = []
        if not self._started and _str(obj.get("id")):  # Azure's first chunk has id "" and choices []
            self._started = True
            events.append(Started(obj["id"], _str(obj.get("model"))))
        for choice in _dicts(obj.get("choices")):
            self._choice(choice, events)
        if _dict(obj.get("usage")):  # keep the last one: vLLM can send usage on every chunk
            events.append(UsageReport(obj["usage"]))
        return events

    def _choice(self, choice: dict, events: list) -> None:
        index = _index(choice.get("index"), 0)
        if index is None:
            raise StreamError(f"unexpected choice index from the server: {choice.get('index')!r:.40}")
        self._open_choices.add(index)
        delta = _dict(choice.get("delta") or choice.get("message"))
        if "reasoning_content" in delta or "reasoning" in delta or "reasoning_details" in delta:
            reasoning = _first_text(
                delta.get("reasoning_content"),
                delta.get("reasoning"),
                "".join(_first_text(d.get("text"), d.get("summary")) for d in _dicts(delta.get("reasoning_details"))),
            )
            if reasoning:
                events.append(ReasoningDelta(reasoning, index))
        content = delta.get("content")
        if isinstance(content, str) and content:
            events.append(TextDelta(content, index))
        for position, call in enumerate(_dicts(delta.get("tool_calls")) if "tool_calls" in delta else ()):
            function = _dict(call.get("function"))
            tool = _index(call.get("index"), position)
            events.append(
                ToolCallDelta(
                    index=position if tool is None else tool,
                    arguments=_first_text(function.get("arguments")),
                    id=_str(call.get("id")),
                    name=_str(function.get("name")),
                    type=_str(call.get("type")),
                    choice=index,
                )
            )
        if _str(choice.get("finish_reason")):
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


def _raise_mid_stream(obj: dict) -> None:
    # A cheap look first: this runs on every frame, and error frames are rare.
    if not (
        "error" in obj
        or "detail" in obj
        or obj.get("object") == "error"
        or obj.get("type") in ("error", "response.failed")
    ):
        return
    fields = error_fields(obj)
    if fields is not None:
        message = fields.pop("message")
        tags = ", ".join(str(v) for v in (fields.get("type"), fields.get("code")) if v)
        raise StreamError(f"error from the server mid-stream{f' [{tags}]' if tags else ''}: {message}", **fields)


def chat_events_from_body(obj: dict) -> Iterator[Event]:
    """A complete ``chat.completion`` object (non-streamed, or a gateway ignoring stream)."""
    yield Started(_str(obj.get("id")), _str(obj.get("model")))
    parser = ChatStream()
    for position, choice in enumerate(_dicts(obj.get("choices"))):
        choice = dict(choice)
        choice.setdefault("index", position)
        message = _dict(choice.get("message"))
        calls = [dict(c, index=c.get("index", i)) for i, c in enumerate(_dicts(message.get("tool_calls")))]
        choice["message"] = dict(message, tool_calls=calls)
        choice["finish_reason"] = choice.get("finish_reason") or "stop"
        events: list[Event] = []
        parser._choice(choice, events)
        yield from events
    if _dict(obj.get("usage")):
        yield UsageReport(obj["usage"])
    yield Done("completed")


class ResponsesStream:
    """Parser for Responses streams: dispatch on the JSON ``type``, never on the SSE ``event:``."""

    endpoint = RESPONSES
    TERMINAL = ("response.completed", "response.incomplete")

    def __init__(self) -> None:
        self.done = False
        self._last_seq = -1
        self._text_seen = False
        self._summary_key: tuple | None = None
        self._tool_index: dict[object, int] = {}

    def feed(self, sse: ServerSentEvent) -> Iterator[Event]:
        data = sse.data
        if data.startswith("[DONE]"):  # some gateways add it; the terminal event decides
            if not self.done:
                raise StreamError("the stream ended before a terminal response event ([DONE] only)")
            return
        if not data.strip():
            return
        obj = parse_json(data)
        if not isinstance(obj, dict):
            raise StreamError(f"unexpected frame from the server: {data[:120]!r}")
        seq = obj.get("sequence_number")
        if isinstance(seq, int):
            if seq <= self._last_seq:
                return  # a duplicate (resumed or replayed stream)
            self._last_seq = seq
        kind = _str(obj.get("type"))
        if kind in ("error", "response.failed") or (kind is None and obj.get("error")):
            _raise_mid_stream(obj)
        handler = self._handlers.get(kind)
        if handler is not None:
            yield from handler(self, obj)

    def _started(self, obj):
        response = _dict(obj.get("response"))
        yield Started(_str(response.get("id")), _str(response.get("model")))

    def _text(self, obj):
        self._text_seen = True
        if _str(obj.get("delta")):
            yield TextDelta(obj["delta"])

    def _summary(self, obj):
        key = (obj.get("item_id"), obj.get("summary_index"))
        if not _str(obj.get("delta")):
            return
        if self._summary_key is not None and key != self._summary_key:
            yield ReasoningDelta("\n\n")  # a new summary part reads as a new paragraph
        self._summary_key = key
        yield ReasoningDelta(obj["delta"])

    def _reasoning_text(self, obj):
        if _str(obj.get("delta")):
            yield ReasoningDelta(obj["delta"])

    def _item_added(self, obj):
        item = _dict(obj.get("item"))
        if item.get("type") == "function_call":
            index = self._tool_for(item.get("id"), obj.get("output_index"))
            yield ToolCallDelta(
                index=index,
                arguments=_first_text(item.get("arguments")),
                id=_str(item.get("call_id")) or _str(item.get("id")),
                name=_str(item.get("name")),
                type="function",
            )

    def _arguments(self, obj):
        if _str(obj.get("delta")):
            index = self._tool_for(obj.get("item_id"), obj.get("output_index"))
            yield ToolCallDelta(index=index, arguments=obj["delta"])

    def _tool_for(self, item_id, output_index) -> int:
        key = item_id if isinstance(item_id, str) else ("output", _index(output_index, -1))
        return self._tool_index.setdefault(key, len(self._tool_index))

    def _terminal(self, obj):
        response = _dict(obj.get("response"))
        self.done = True
        if _str(response.get("model")):  # llama-server names the model only here
            yield Started(_str(response.get("id")), response["model"])
        if not self._text_seen:
            # Some servers send only the final object; the text is whole there.
            text = output_text(response)
            if text:
                yield TextDelta(text)
        if _dict(response.get("usage")):
            yield UsageReport(response["usage"])
        status = _str(response.get("status")) or obj["type"].removeprefix("response.")
        yield Done(status, _dict(response.get("incomplete_details")) or None, response)

    _handlers = {
        "response.created": _started,
        "response.output_text.delta": _text,
        "response.refusal.delta": _text,
        "response.reasoning_summary_text.delta": _summary,
        "response.reasoning_text.delta": _reasoning_text,
        "response.output_item.added": _item_added,
        "response.function_call_arguments.delta": _arguments,
        "response.completed": _terminal,
        "response.incomplete": _terminal,
    }

    def end(self) -> Iterator[Event]:
        if not self.done:
            raise StreamError("the stream ended before a terminal response event (interrupted)")
        return iter(())


def output_text(response: dict) -> str:
    """All ``output_text`` parts of all ``message`` items, as the SDK's ``output_text`` does."""
    return "".join(
        _first_text(part.get("text"))
        for item in _dicts(response.get("output"))
        if item.get("type") == "message"
        for part in _dicts(item.get("content"))
        if part.get("type") in ("output_text", "text")
    )


def responses_events_from_body(obj: dict) -> Iterator[Event]:
    """A complete ``response`` object (non-streamed, or a gateway ignoring stream)."""
    yield Started(_str(obj.get("id")), _str(obj.get("model")))
    if obj.get("status") == "failed":
        raise_if_error({"type": "response.failed", "response": obj})
    calls = 0
    for item in _dicts(obj.get("output")):
        if item.get("type") == "reasoning":
            parts = [_first_text(p.get("text")) for p in _dicts(item.get("summary")) + _dicts(item.get("content"))]
            if any(parts):
                yield ReasoningDelta("\n\n".join(p for p in parts if p))
        elif item.get("type") == "function_call":
            yield ToolCallDelta(
                index=calls,
                arguments=_first_text(item.get("arguments")),
                id=_str(item.get("call_id")) or _str(item.get("id")),
                name=_str(item.get("name")),
                type="function",
            )
            calls += 1
    text = output_text(obj)
    if text:
        yield TextDelta(text)
    if _dict(obj.get("usage")):
        yield UsageReport(obj["usage"])
    yield Done(_str(obj.get("status")) or "completed", _dict(obj.get("incomplete_details")) or None, obj)


STREAMS = {CHAT: ChatStream, RESPONSES: ResponsesStream}
FROM_BODY = {CHAT: chat_events_from_body, RESPONSES: responses_events_from_body}
