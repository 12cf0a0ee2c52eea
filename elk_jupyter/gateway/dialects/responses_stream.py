"""Responses API streams: typed events (dispatched on the JSON ``type``) -> our events. Pure.

Streams end with a terminal ``response.completed`` / ``response.incomplete`` (``response.failed``
and ``error`` raise); EOF without one is an interrupted stream
(https://platform.openai.com/docs/api-reference/responses-streaming).
"""

from __future__ import annotations

from collections.abc import Iterator

from elk_jupyter.errors import StreamError
from elk_jupyter.gateway.events import Done, Event, ReasoningDelta, Started, TextDelta, ToolCallDelta, UsageReport
from elk_jupyter.gateway.frames import (
    as_dict,
    as_index,
    as_str,
    dicts,
    first_text,
    join_halves,
    parse_json,
    raise_if_error,
    raise_mid_stream,
    scrub,
)
from elk_jupyter.gateway.sse import ServerSentEvent


class ResponsesStream:
    """Parser for Responses streams: dispatch on the JSON ``type``, never on the SSE ``event:``."""

    TERMINAL = ("response.completed", "response.incomplete")

    def __init__(self) -> None:
        self.done = False
        self._last_seq = -1
        self._text_seen = False
        self._summary_key: tuple | None = None
        self._tool_index: dict[object, int] = {}  # item id (or output position) -> our call index
        self._call_ids: dict[str, int] = {}  # call_id -> our call index
        self._calls = 0  # calls seen so far
        self._streamed: dict[int, int] = {}  # our call index -> characters of arguments sent so far
        self._named: set[int] = set()  # calls whose name was sent
        self._held: dict[object, str] = {}  # "text" | "reasoning" | call index -> a surrogate half kept back

    def feed(self, sse: ServerSentEvent) -> list[Event]:
        # A list, and the text delta inlined: this runs once per event (bench/stream_consumption.py).
        data = sse.data
        if data.startswith("[DONE]"):  # some gateways add it; the terminal event decides
            if not self.done:
                raise StreamError("the stream ended before a terminal response event ([DONE] only)")
            return []
        if not data or data.isspace():
            return []
        obj = parse_json(data)
        if not isinstance(obj, dict):
            raise StreamError(f"unexpected frame from the server: {data[:120]!r}")
        seq = obj.get("sequence_number")
        if isinstance(seq, int):
            if seq <= self._last_seq:
                return []  # a duplicate (resumed or replayed stream)
            self._last_seq = seq
        kind = obj.get("type")
        if kind == "response.output_text.delta":
            self._text_seen = True
            text = obj.get("delta")
            if text and type(text) is str:
                if self._held or not text.isascii():
                    text = self._joined("text", text)
                if text:
                    return [TextDelta(text)]
            return []
        kind = as_str(kind)
        if kind in ("error", "response.failed") or (kind is None and obj.get("error")):
            raise_mid_stream(obj)
        handler = self._handlers.get(kind)
        return [] if handler is None else list(handler(self, obj))

    def _started(self, obj):
        response = as_dict(obj.get("response"))
        yield Started(as_str(response.get("id")), as_str(response.get("model")))

    def _text_delta(self, obj):
        self._text_seen = True
        text = obj.get("delta")
        if text and type(text) is str:
            text = self._joined("text", text)
            if text:
                yield TextDelta(text)

    def _summary(self, obj):
        key = (obj.get("item_id"), obj.get("summary_index"))
        if not as_str(obj.get("delta")):
            return
        if self._summary_key is not None and key != self._summary_key:
            rest = "\ufffd" if self._held.pop("reasoning", "") else ""
            yield ReasoningDelta(rest + "\n\n")  # a new summary part reads as a new paragraph
        self._summary_key = key
        text = self._joined("reasoning", obj["delta"])
        if text:
            yield ReasoningDelta(text)

    def _reasoning_text(self, obj):
        if as_str(obj.get("delta")):
            text = self._joined("reasoning", obj["delta"])
            if text:
                yield ReasoningDelta(text)

    def _item(self, obj):
        item = as_dict(obj.get("item"))
        if item.get("type") == "function_call":
            yield from self._whole_call(item, obj.get("output_index"))

    def _arguments(self, obj):
        if as_str(obj.get("delta")):
            index = self._tool_for(obj.get("item_id"), obj.get("output_index"))
            text = self._joined(index, obj["delta"])
            self._streamed[index] = self._streamed.get(index, 0) + len(text)
            if text:
                yield ToolCallDelta(index=index, arguments=text)

    def _whole_call(self, item: dict, output_index):
        """A ``function_call`` item, from ``output_item.added``/``.done`` or the final ``output``.

        Some servers stream its arguments, some send it only when done, some only in
        ``response.completed`` (issue 12): send what has not been sent yet, never twice.
        """
        call_id = as_str(item.get("call_id"))
        index = self._call_ids.get(call_id) if call_id else None
        if index is None:
            index = self._tool_for(item.get("id"), output_index)
        if call_id:
            self._call_ids.setdefault(call_id, index)
        seen = index in self._streamed
        arguments = scrub(first_text(item.get("arguments")))
        missing = arguments[self._streamed.get(index, 0) :]
        self._streamed[index] = max(self._streamed.get(index, 0), len(arguments))
        named = index in self._named
        if as_str(item.get("name")):
            self._named.add(index)
        if not seen or missing or not named:
            yield function_call(dict(item, arguments=missing), index)

    def _tool_for(self, item_id, output_index) -> int:
        """Our index of the call an event names by its item id, its output position, or both:
        some servers name only ``output_index`` in the argument deltas, so each name the call is
        known by leads to the same index (one call, never split in two)."""
        position = as_index(output_index, -1)
        position = -1 if position is None else position
        keys = [item_id] if isinstance(item_id, str) else []
        if position >= 0 or not keys:
            keys.append(("output", position))
        index = next((self._tool_index[key] for key in keys if key in self._tool_index), None)
        if index is None:
            index, self._calls = self._calls, self._calls + 1
        for key in keys:
            self._tool_index.setdefault(key, index)
        return index

    def _terminal(self, obj):
        response = scrub(as_dict(obj.get("response")))
        self.done = True
        if as_str(response.get("model")):  # llama-server names the model only here
            yield Started(as_str(response.get("id")), response["model"])
        yield from self._flush()
        if not self._text_seen:
            # Some servers send only the final object; the text is whole there.
            text = output_text(response)
            if text:
                yield TextDelta(text)
        for position, item in enumerate(dicts(response.get("output"))):
            if item.get("type") == "function_call":
                yield from self._whole_call(item, position)
        if as_dict(response.get("usage")):
            yield UsageReport(response["usage"])
        status = as_str(response.get("status")) or obj["type"].removeprefix("response.")
        yield Done(status, as_dict(response.get("incomplete_details")) or None, response)

    def _joined(self, channel, text: str) -> str:
        """``text`` with a surrogate half kept back from the last piece on this channel joined."""
        if not self._held and text.isascii():
            return text
        text, held = join_halves(self._held.pop(channel, ""), text)
        if held:
            self._held[channel] = held
        return text

    def _flush(self):
        """Surrogate halves still held back when the stream ends, as U+FFFD."""
        for channel in self._held:
            if channel == "text":
                yield TextDelta("\ufffd")
            elif channel == "reasoning":
                yield ReasoningDelta("\ufffd")
            else:
                yield ToolCallDelta(index=channel, arguments="\ufffd")
        self._held.clear()

    _handlers = {
        "response.created": _started,
        "response.output_text.delta": _text_delta,
        "response.refusal.delta": _text_delta,
        "response.reasoning_summary_text.delta": _summary,
        "response.reasoning_text.delta": _reasoning_text,
        "response.output_item.added": _item,
        "response.output_item.done": _item,
        "response.function_call_arguments.delta": _arguments,
        "response.completed": _terminal,
        "response.incomplete": _terminal,
    }

    def end(self) -> Iterator[Event]:
        if not self.done:
            raise StreamError("the stream ended before a terminal response event (interrupted)")
        return iter(())


def function_call(item: dict, index: int) -> ToolCallDelta:
    """A ``function_call`` output item as the start (or whole) of tool call ``index``."""
    return ToolCallDelta(
        index=index,
        arguments=first_text(item.get("arguments")),
        id=as_str(item.get("call_id")) or as_str(item.get("id")),
        name=as_str(item.get("name")),
        type="function",
    )


def output_text(response: dict) -> str:
    """All ``output_text`` parts of all ``message`` items, as the SDK's ``output_text`` does."""
    return "".join(
        first_text(part.get("text"))
        for item in dicts(response.get("output"))
        if item.get("type") == "message"
        for part in dicts(item.get("content"))
        if part.get("type") in ("output_text", "text")
    )


def responses_events_from_body(obj: dict) -> Iterator[Event]:
    """A complete ``response`` object (non-streamed, or a gateway ignoring stream)."""
    obj = scrub(obj)
    yield Started(as_str(obj.get("id")), as_str(obj.get("model")))
    if obj.get("status") == "failed":
        raise_if_error({"type": "response.failed", "response": obj})
    calls = 0
    for item in dicts(obj.get("output")):
        if item.get("type") == "reasoning":
            parts = [first_text(p.get("text")) for p in dicts(item.get("summary")) + dicts(item.get("content"))]
            if any(parts):
                yield ReasoningDelta("\n\n".join(p for p in parts if p))
        elif item.get("type") == "function_call":
            yield function_call(item, calls)
            calls += 1
    text = output_text(obj)
    if text:
        yield TextDelta(text)
    if as_dict(obj.get("usage")):
        yield UsageReport(obj["usage"])
    yield Done(as_str(obj.get("status")) or "completed", as_dict(obj.get("incomplete_details")) or None, obj)
