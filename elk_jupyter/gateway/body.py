"""Reading a response body as it arrives: an event stream's events, the bounded drain after the
terminal event, and a whole JSON body from a server that ignored ``stream``. Errors are StreamError/APIError.
"""

from __future__ import annotations

import contextlib
import http.client
import time
from collections.abc import Callable, Iterator

import requests
import urllib3

from elk_jupyter.errors import APIError, StreamError, error_fields
from elk_jupyter.gateway.dialects import dialect
from elk_jupyter.gateway.events import Event
from elk_jupyter.gateway.sse import SSEDecoder
from elk_jupyter.gateway.transport import cause, excerpt, json_or_none

_TRANSPORT_ERRORS = (urllib3.exceptions.HTTPError, requests.RequestException, OSError)


class Body:
    """An event-stream body: its chunks as they arrive, then (after the terminal event) its drain."""

    def __init__(self, response: requests.Response, timeout: float) -> None:
        self.response = response
        self.timeout = timeout
        self.broken = False  # the transport failed: nothing left to drain
        self._tail: Callable[[int], bytes] | None = None  # how the drain reads: as the stream did

    def events(self, endpoint: str, drain_bytes: int, drain_seconds: float) -> Iterator[Event]:
        """The stream's events; after the terminal one (or an error event) the body is drained."""
        parser = dialect(endpoint).stream()
        # One loop from the socket's reads to the events, no generator between them: this runs
        # once per event, tens of thousands of times a reply (issue 25, bench/stream_consumption.py).
        read, decoder, feed = self.read(), SSEDecoder(), parser.feed
        try:
            while not parser.done:
                chunk = read()
                for sse in decoder.feed(chunk) if chunk else decoder.finish():
                    yield from feed(sse)
                    if parser.done:
                        break
                if not chunk:
                    break
        except StreamError:
            if not self.broken:  # the server said "error" and may still be finishing: let it
                self.drain(drain_bytes, drain_seconds)
            raise
        if parser.done:
            self.drain(drain_bytes, drain_seconds)
        yield from parser.end()

    def chunks(self) -> Iterator[bytes]:
        try:
            yield from chunks(self.response, self.timeout)
        except StreamError:
            self.broken = True
            raise

    def read(self) -> Callable[[], bytes]:
        """The next piece of the body as it arrives (b"" at its end), for the stream's loop.

        A function, not a generator: the loop over events calls it once per read (issue 25).
        A failure marks the body broken and is a StreamError.
        """
        raw = self.response.raw
        if not hasattr(raw, "read1"):  # pragma: no cover - urllib3 < 2
            pieces = self.chunks()
            return lambda: next(pieces, b"")
        decode = _encoded(self.response)
        wire = getattr(raw, "_fp", None)  # the http.client response urllib3 reads from
        if not decode and getattr(wire, "chunked", False) and hasattr(wire, "read1"):
            self._tail = _chunked_tail(raw, wire)
            return self._chunked_read(raw, wire)
        self._tail = lambda size: raw.read1(size, decode_content=decode)

        def read() -> bytes:
            try:
                return raw.read1(65536, decode_content=decode)
            except _TRANSPORT_ERRORS as err:
                self.broken = True
                raise _stream_error(err, self.timeout) from None

        return read

    def _chunked_read(self, raw, wire) -> Callable[[], bytes]:
        """Reads of a chunked body straight from http.client, under urllib3's own read.

        Servers write one event per HTTP chunk, so a stream is one read per event, and urllib3's
        ``read1`` costs 2.3x http.client's (a context manager, buffers and counters per call:
        issue 25, profiled in docs/performance.md). Without Content-Encoding urllib3 adds nothing
        to the bytes, so they are the same. The errors are urllib3's causes, said the same way;
        the last read goes through urllib3, which sees the end and returns the connection to the
        pool for the next request.
        """
        read1 = wire.read1

        def read() -> bytes:
            try:
                chunk = read1(65536)
                return chunk if chunk else _ended(raw, wire, 65536)
            except (*_TRANSPORT_ERRORS, http.client.HTTPException) as err:  # IncompleteRead: the body was cut
                self.broken = True
                raise _stream_error(err, self.timeout) from None

        return read

    def drain(self, max_bytes: int, seconds: float) -> None:
        """Read on to the body's end, at most ``max_bytes`` for at most ``seconds``; then it is closed.

        Servers finish their work after the last event: Llama Stack stores a response (the one a
        later ``previous_response_id`` names) only when its stream generator ends, and cancels the
        store when the client hangs up first; proxies log or bill after ``[DONE]`` (issue 12).
        The reply is already whole here, so a slow or broken tail is dropped, never an error.
        """
        raw = self.response.raw
        read = self._tail
        if read is None:  # pragma: no cover - urllib3 < 2: no read1, nothing to drain with
            return
        sock = getattr(getattr(raw, "connection", None), "sock", None)
        previous = sock.gettimeout() if sock is not None else None
        deadline = time.monotonic() + seconds
        left = max_bytes
        try:
            while left > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                if sock is not None:  # one read may wait only until the deadline
                    sock.settimeout(remaining if previous is None else min(remaining, previous))
                chunk = read(min(65536, left))
                if not chunk:
                    return  # the end of the body: the server has finished
                left -= len(chunk)
        except (*_TRANSPORT_ERRORS, http.client.HTTPException):  # IncompleteRead from http.client
            return
        finally:
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.settimeout(previous)


def _chunked_tail(raw, wire) -> Callable[[int], bytes]:
    """The drain's reads of a chunked body read from http.client (``Body._chunked_read``): the
    same bytes at half the cost of urllib3's decoding ``read1`` (issue 24)."""

    def read(size: int) -> bytes:
        return wire.read1(size) or _ended(raw, wire, size)

    return read


def _ended(raw, wire, size: int) -> bytes:
    """b"" at the end of a chunked body read from http.client, the connection back in the pool.

    http.client closes itself once it has read the last chunk and the trailers; then urllib3's own
    ``read1`` would only find that and call ``release_conn``, through a context manager and its
    bookkeeping (2.5x the cost, per run: issue 24): so that call is made here. Before that point
    (an empty read that is not the end) urllib3 reads on, as before.
    """
    if wire.isclosed():
        raw.release_conn()  # the connection goes back to the pool: the next request reuses it
        return b""
    return raw.read1(size, decode_content=False)


def chunks(response: requests.Response, timeout: float) -> Iterator[bytes]:
    """Body bytes as they arrive, for chunked and close-delimited bodies alike.

    ``iter_content`` waits for EOF on close-delimited bodies
    (https://www.rfc-editor.org/rfc/rfc9112#section-6.3); urllib3's
    ``read1`` returns whatever has arrived.
    """
    raw = response.raw
    try:
        if hasattr(raw, "read1"):
            decode = _encoded(response)
            while True:
                chunk = raw.read1(65536, decode_content=decode)
                if not chunk:
                    return
                yield chunk
        else:  # pragma: no cover - urllib3 < 2
            yield from response.iter_content(chunk_size=None)
    except _TRANSPORT_ERRORS as err:
        raise _stream_error(err, timeout) from None


def _encoded(response: requests.Response) -> bool:
    """Whether urllib3 must decode the body (gzip, br, ...): with no Content-Encoding its decoding
    step passes the bytes through unchanged, at a cost on every read (issue 25), so it is skipped."""
    return bool(response.headers.get("content-encoding", "").strip())


def _stream_error(err: BaseException, timeout: float) -> StreamError:
    if isinstance(err, (urllib3.exceptions.ReadTimeoutError, requests.Timeout, TimeoutError)):
        return StreamError(f"the stream stalled: no data for {timeout:g} s")
    return StreamError(f"the connection broke mid-stream: {cause(err)}")


def whole_body(endpoint: str, response: requests.Response, request_id: str | None) -> Iterator[Event]:
    """A 200 that is not a stream: a gateway ignoring ``stream``, an error body, or an HTML page."""
    raw = b"".join(chunks(response, 0))
    body = json_or_none(raw)
    if not isinstance(body, dict):
        raise APIError(
            f"expected JSON or an event stream, got {response.headers.get('content-type') or 'no content type'}: {excerpt(raw)}",
            status=response.status_code,
            request_id=request_id,
        )
    fields = error_fields(body)
    if fields is not None:
        raise APIError(fields.pop("message"), status=response.status_code, request_id=request_id, **fields)
    yield from dialect(endpoint).events_from_body(body)


def model_list(body: object, status: int) -> list[dict]:
    """GET /models' ``data``: objects with an ``id`` (OpenAI's shape); bare names become
    ``{"id": name}``; any other shape is one APIError line."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(body, dict) or not isinstance(data, list | None):
        shape = f"'data' is {type(data).__name__}, not a list" if isinstance(body, dict) else "not a JSON object"
        raise APIError(f"GET /models returned {shape}", status=status)
    return [model if isinstance(model, dict) else {"id": str(model)} for model in data or ()]
