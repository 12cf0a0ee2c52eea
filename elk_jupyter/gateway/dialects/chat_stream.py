"""Chat Completions streams: ``chat.completion.chunk`` frames (and whole bodies) -> our events. Pure.

Streams are data-only chunks ended by ``[DONE]``
(https://platform.openai.com/docs/api-reference/chat-streaming); every choice is keyed by its
``index``, every tool call by ``CallIndex``.
"""

from __future__ import annotations

from collections.abc import Iterator

from elk_jupyter.errors import StreamError
from elk_jupyter.gateway.events import (
    AudioDelta,
    ChoiceFinished,
    Done,
    Event,
    ReasoningDelta,
    Started,
    TextDelta,
    ToolCallDelta,
    UsageReport,
)
from elk_jupyter.gateway.frames import (
    as_dict,
    as_index,
    as_str,
    dicts,
    first_text,
    join_halves,
    parse_json,
    raise_mid_stream,
    scrub,
)
from elk_jupyter.gateway.sse import ServerSentEvent
from elk_jupyter.media.audio import Base64Stream


class ChatStream:
    """Parser for ``chat.completion.chunk`` streams, every choice keyed by its ``index``."""

    def __init__(self) -> None:
        self.done = False
        self._started = False
        self._open_choices: set[int] = set()
        self._finished: set[int] = set()
        self._held: dict[tuple, str] = {}  # (choice, channel) -> a surrogate half kept back
        self._calls: dict[int, CallIndex] = {}  # choice -> which call each fragment continues
        self._audio: dict[int, Base64Stream] = {}  # choice -> its audio decoder

    def feed(self, sse: ServerSentEvent) -> list[Event]:
        # Lists, not generators, and the common case inlined: this runs once per chunk, tens of
        # thousands of times a reply (bench/stream_consumption.py).
        data = sse.data
        if data.startswith("[DONE]"):
            self.done = True
            return [*self._flush(), Done("completed")]
        if not data.strip():
            return []
        obj = parse_json(data)
        if type(obj) is not dict:
            raise StreamError(f"unexpected frame from the server: {data[:120]!r}")
        raise_mid_stream(obj)
        events: list[Event] = []
        if not self._started and as_str(obj.get("id")):  # Azure's first chunk has id "" and choices []
            self._started = True
            events.append(Started(as_str(obj["id"]), as_str(obj.get("model"))))
        choices = obj.get("choices")
        if type(choices) is list:
            for choice in choices:
                if type(choice) is not dict:
                    continue
                delta = choice.get("delta")
                # The common chunk, inlined (issue 25): one ASCII text piece of choice 0, nothing else.
                if (
                    type(delta) is dict
                    and type(content := delta.get("content")) is str
                    and content
                    and len(delta) == (2 if "role" in delta else 1)
                    and not choice.get("finish_reason")
                    and type(index := choice.get("index", 0)) is int
                    and index == 0
                    and not self._held
                    and content.isascii()
                ):
                    self._open_choices.add(0)
                    events.append(TextDelta(content, 0))
                else:
                    self._choice(choice, events)
        usage = obj.get("usage")
        if usage and type(usage) is dict:  # keep the last one: vLLM can send usage on every chunk
            events.append(UsageReport(scrub(usage)))
        return events

    def _choice(self, choice: dict, events: list) -> None:
        index = choice.get("index", 0)
        if type(index) is not int or not 0 <= index < 1024:
            index = as_index(index, 0)
            if index is None:
                raise StreamError(f"unexpected choice index from the server: {choice.get('index')!r:.40}")
        self._open_choices.add(index)
        delta = choice.get("delta") or choice.get("message")
        if type(delta) is not dict:
            delta = {}
        if "reasoning_content" in delta or "reasoning" in delta or "reasoning_details" in delta:
            reasoning = first_text(
                delta.get("reasoning_content"),
                delta.get("reasoning"),
                "".join(first_text(d.get("text"), d.get("summary")) for d in dicts(delta.get("reasoning_details"))),
            )
            if reasoning:
                self._text(ReasoningDelta, reasoning, index, events)
        content = delta.get("content")
        if type(content) is str:
            if not content:
                pass
            elif self._held or not content.isascii():
                self._text(TextDelta, content, index, events)
            else:
                events.append(TextDelta(content, index))
        elif isinstance(content, list):  # Mistral: a list of parts, thinking and text
            for kind, text in content_parts(content):
                self._text(kind, text, index, events)
        if "tool_calls" in delta:
            self._tool_calls(dicts(delta["tool_calls"]), index, events)
        if "audio" in delta and type(delta["audio"]) is dict:
            self._audio_piece(delta["audio"], index, events)
        finish = choice.get("finish_reason")
        if finish and type(finish) is str:
            if finish == "error":  # OpenRouter's mid-stream error
                raise StreamError(
                    "error from the server mid-stream: the server reported an error (finish_reason error)"
                )
            self._finished.add(index)
            events.append(ChoiceFinished(index, as_str(finish)))

    def _text(self, kind, text: str, choice: int, events: list) -> None:
        text = self._joined((choice, kind), text)
        if text:
            events.append(kind(text, choice))

    def _joined(self, key: tuple, text: str) -> str:
        """``text`` with a surrogate half kept back from the last piece on this channel joined."""
        if not self._held and text.isascii():
            return text
        text, held = join_halves(self._held.pop(key, ""), text)
        if held:
            self._held[key] = held
        return text

    def _tool_calls(self, calls: list[dict], choice: int, events: list) -> None:
        numbering = self._calls.get(choice)
        if numbering is None:
            numbering = self._calls[choice] = CallIndex()
        for call in calls:
            function = as_dict(call.get("function"))
            call_id = as_str(call.get("id"))
            tool = numbering.of(as_index(call.get("index"), -1), call_id)
            arguments = first_text(function.get("arguments"))
            if arguments:
                arguments = self._joined((choice, tool), arguments)
            events.append(
                ToolCallDelta(
                    index=tool,
                    arguments=arguments,
                    id=call_id,
                    name=as_str(function.get("name")),
                    type=as_str(call.get("type")),
                    choice=choice,
                )
            )

    def _audio_piece(self, audio: dict, choice: int, events: list) -> None:
        """``delta.audio`` / ``message.audio``: the transcript is the reply's text, ``data`` its sound."""
        transcript = first_text(audio.get("transcript"))
        if transcript:
            self._text(TextDelta, transcript, choice, events)
        data = audio.get("data")
        expires = audio.get("expires_at")
        expires = expires if type(expires) is int else None
        clip_id = as_str(audio.get("id"))
        decoded = b""
        if type(data) is str and data:
            decoder = self._audio.get(choice) or self._audio.setdefault(choice, Base64Stream())
            decoded = decoder.feed(data)
        if decoded or clip_id or expires is not None:
            events.append(AudioDelta(decoded, clip_id, expires, choice))

    def _flush(self) -> list[Event]:
        """Lone surrogate halves still held back, as U+FFFD, before the stream ends."""
        for decoder in self._audio.values():
            decoder.end()
        events: list[Event] = []
        for choice, channel in self._held:
            if channel in (TextDelta, ReasoningDelta):
                events.append(channel("\ufffd", choice))
            else:
                events.append(ToolCallDelta(channel, "\ufffd", choice=choice))
        self._held.clear()
        return events

    def end(self) -> Iterator[Event]:
        """At EOF. Without ``[DONE]`` the reply is whole only if every choice finished."""
        if self.done:
            return
        if self._open_choices and self._open_choices <= self._finished:
            self.done = True
            yield from self._flush()
            yield Done("completed")
            return
        raise StreamError("the stream ended before the reply was complete (no [DONE])")


class CallIndex:
    """Which tool call each streamed fragment belongs to, in one choice.

    OpenAI numbers calls with ``index`` and sends the ``id`` once
    (https://platform.openai.com/docs/api-reference/chat-streaming). Gemini's
    OpenAI-compatible endpoint sends parallel calls whole, one chunk each, with an ``id`` and no
    ``index``; others repeat index 0 for every call. So a fragment whose ``id`` differs from its
    call's starts a new call, and one with neither ``index`` nor ``id`` continues the last call.
    """

    __slots__ = ("_by_id", "_by_index", "_ids", "_last")

    def __init__(self) -> None:
        self._by_id: dict[str, int] = {}
        self._by_index: dict[int, int] = {}  # the server's index -> ours
        self._ids: dict[int, str | None] = {}  # ours -> the call's id
        self._last: int | None = None

    def of(self, index: int | None, call_id: str | None) -> int:
        if index == -1:
            index = None  # absent
        if call_id is not None and call_id in self._by_id:
            ours = self._by_id[call_id]
        elif index in self._by_index and (call_id is None or self._ids[self._by_index[index]] is None):
            ours = self._by_index[index]  # the same call, continued
        elif index is None and call_id is None and self._last is not None:
            ours = self._last
        else:  # a new call: the server's index when it is free
            ours = index if index is not None and index not in self._ids else max(self._ids, default=-1) + 1
            self._ids[ours] = None
            if index is not None:
                self._by_index[index] = ours
        if call_id is not None and self._ids[ours] is None:
            self._ids[ours] = call_id
            self._by_id[call_id] = ours
        self._last = ours
        return ours


def content_parts(parts: list) -> Iterator[tuple[type, str]]:
    """(TextDelta or ReasoningDelta, text) for each text-bearing part of a content list.

    Mistral's Magistral: ``[{"type": "thinking", "thinking": [{"type": "text", "text": ...}]},
    {"type": "text", "text": ...}]`` (https://docs.mistral.ai/capabilities/reasoning/).
    """
    for part in dicts(parts):
        kind = part.get("type")
        if kind in ("text", "output_text"):
            text = first_text(part.get("text"))
            if text:
                yield TextDelta, text
        elif kind in ("thinking", "reasoning"):
            inner = part.get(kind, part.get("text"))
            text = inner if isinstance(inner, str) else "".join(first_text(p.get("text")) for p in dicts(inner))
            if text:
                yield ReasoningDelta, text


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
        yield UsageReport(scrub(obj["usage"]))
    yield from parser._flush()
    yield Done("completed")
