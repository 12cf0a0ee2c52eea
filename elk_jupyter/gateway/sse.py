"""Server-Sent Events over bytes: chunks in, ServerSentEvent out. Knows nothing of JSON or [DONE].

Follows the WHATWG event-stream interpretation rules:
https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
Lines end in CR, LF or CRLF (a CRLF may be split across two network reads); bytes are kept until a
line is complete and only then decoded as UTF-8, so a character split across reads is never
mangled. We never use requests' ``iter_lines`` (spurious blank line on a split CRLF) or
``decode_unicode`` (ISO-8859-1 for text/event-stream), nor ``str.splitlines`` (splits on U+2028).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

_BOM = "\ufeff"


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs 3x (one per event)
class ServerSentEvent:
    data: str
    event: str | None = None
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Incremental decoder: ``feed(chunk)`` returns the events that chunk completed."""

    def __init__(self) -> None:
        self._pending = bytearray()  # bytes of a line not yet terminated
        self._skip_lf = False  # the last chunk ended in CR: a leading LF belongs to it
        self._first_line = True
        self._data: list[str] = []
        self._event: str | None = None
        self._retry: int | None = None
        self._last_id: str | None = None  # persists across events, per spec

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        events: list[ServerSentEvent] = []
        if not chunk:
            return events  # an empty read must not forget a CR that ended the previous one
        if self._skip_lf and chunk[:1] == b"\n":
            chunk = chunk[1:]  # the LF of a CRLF whose CR ended the last chunk
        self._skip_lf = False
        if self._first_line and not self._pending and chunk[:1] != b"\xef":
            # No BOM can start this stream (U+FEFF is EF BB BF in UTF-8): its first line is like any
            # other, and the first chunk takes the block path too (issue 24: one reply, one first chunk).
            self._first_line = False
        if b"\r" in chunk and chunk[-1:] != b"\r" and chunk.count(b"\r") == chunk.count(b"\r\n"):
            # Every CR here is the start of a CRLF (servers that end lines so): the same lines with LF
            # endings, read in C like the rest (issue 25: CRLF streams cost 1.6x raw line by line).
            chunk = chunk.replace(b"\r\n", b"\n")
        if b"\r" not in chunk:
            if not (self._pending or self._data or self._first_line or self._event is not None):
                return self._feed_blocks(chunk, events)
            # Mid-event (a large read cuts events anywhere): line by line to the event's end, then
            # the rest from the next event's first line in blocks.
            end = chunk.find(b"\n\n") + 2
            if self._first_line or end < 2 or end == len(chunk):
                return self._feed_lf(chunk, events)
            self._feed_lf(chunk[:end], events)
            return self._feed_blocks(chunk[end:], events)
        start, n = 0, len(chunk)
        while start < n:
            cr = chunk.find(b"\r", start)
            lf = chunk.find(b"\n", start)
            if cr < 0 and lf < 0:
                self._pending += chunk[start:]
                break
            end = lf if cr < 0 or (0 <= lf < cr) else cr
            self._pending += chunk[start:end]
            line = bytes(self._pending)
            self._pending.clear()
            event = self._line(line)
            if event is not None:
                events.append(event)
            start = end + 1
            if chunk[end : end + 1] == b"\r":
                if start < n:
                    if chunk[start : start + 1] == b"\n":
                        start += 1
                else:
                    self._skip_lf = True
        return events

    def _feed_blocks(self, chunk: bytes, events: list) -> list[ServerSentEvent]:
        """A chunk with LF endings that starts at an event's first line (the decoder holds nothing).

        Servers write one or a few whole events per chunk, so most chunks are ``data: …`` or
        ``event: …`` + ``data: …`` blocks, each ended by a blank line: those become events here
        in one split, without a pass per line (issue 25: per-chunk cost). The first block of any
        other shape, and the unfinished rest, go through ``_feed_lf``, which keeps every rule.
        """
        blocks = chunk.split(b"\n\n")
        rest = blocks.pop()  # after the last blank line: the start of an event not yet ended
        start, last_id = 0, self._last_id
        for block in blocks:
            if block[:6] == b"data: " and b"\n" not in block:
                kind = None
                data = block[6:]
            elif block[:7] == b"event: " and block.count(b"\n") == 1:
                head, _, data = block.partition(b"\n")
                if data[:6] != b"data: ":
                    return self._feed_lf(chunk[start:], events)
                kind = head[7:].decode("utf-8", "replace")
                data = data[6:]
            else:
                return self._feed_lf(chunk[start:], events)
            events.append(ServerSentEvent(data.decode("utf-8", "replace"), kind, last_id, self._retry))
            if self._retry is not None:  # a retry field before the block: its first event's
                self._retry = None
            start += len(block) + 2
        return self._feed_lf(rest, events) if rest else events

    def _feed_lf(self, chunk: bytes, events: list) -> list[ServerSentEvent]:
        """The common case, a chunk with LF endings only: split in C, not byte by byte."""
        if b"\n" not in chunk:  # inside a long line: keep it, copying only this chunk (O(delta))
            self._pending += chunk
            return events
        lines = chunk.split(b"\n")
        if self._pending:
            lines[0] = bytes(self._pending) + lines[0]
            self._pending.clear()
        self._pending += lines.pop()  # after the last LF: an unfinished line
        # The hot path, inlined (issue 12: per-event cost): "data: ..." lines, "event: ..." lines,
        # and the blank line ending an event of one data line. Everything else goes to _line.
        data = self._data
        for raw in lines:
            if not self._first_line:
                if raw[:6] == b"data: ":
                    data.append(raw[6:].decode("utf-8", "replace"))
                    continue
                if not raw and len(data) == 1:
                    events.append(ServerSentEvent(data.pop(), self._event, self._last_id, self._retry))
                    self._event = self._retry = None
                    continue
                if raw[:7] == b"event: ":
                    self._event = raw[7:].decode("utf-8", "replace")
                    continue
            event = self._line(raw)
            if event is not None:
                events.append(event)
        return events

    def finish(self) -> list[ServerSentEvent]:
        """At EOF: dispatch the last event even without its blank line (or its final newline).

        The spec discards it; we keep it because servers that close right after their last frame
        (`data: [DONE]` with no trailing newline) exist, and a frame that was really cut mid-line
        fails JSON decoding later and is reported as a broken stream, not silently lost.
        """
        if self._pending:
            line = bytes(self._pending)
            self._pending.clear()
            event = self._line(line)
            if event is not None:
                return [event]
        event = self._dispatch()
        return [event] if event is not None else []

    def _line(self, raw: bytes) -> ServerSentEvent | None:
        if raw[:6] == b"data: " and not self._first_line:  # the hot path: one data line
            self._data.append(raw[6:].decode("utf-8", errors="replace"))
            return None
        line = raw.decode("utf-8", errors="replace")
        if self._first_line:
            self._first_line = False
            if line.startswith(_BOM):
                line = line[1:]
        if not line:
            return self._dispatch()
        if line[0] == ":":
            return None  # comment / keep-alive
        field, colon, value = line.partition(":")
        if colon and value[:1] == " ":
            value = value[1:]
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        elif field == "id":
            if "\0" not in value:
                self._last_id = value
        elif field == "retry":
            if value.isascii() and value.isdigit():  # ASCII digits only, per spec ("²".isdigit() is True)
                self._retry = int(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        if not self._data:
            # Per spec an event with no data is not dispatched; reset its type all the same.
            self._event = None
            self._retry = None
            return None
        event = ServerSentEvent("\n".join(self._data), self._event, self._last_id, self._retry)
        self._data.clear()  # in place: _feed_lf holds this list
        self._event = None
        self._retry = None
        return event


def iter_events(chunks: Iterable[bytes]) -> Iterator[ServerSentEvent]:
    """Decode a whole byte stream, yielding each event as soon as its chunk arrives."""
    decoder = SSEDecoder()
    for chunk in chunks:
        yield from decoder.feed(chunk)
    yield from decoder.finish()
