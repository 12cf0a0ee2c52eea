"""A real HTTP server on 127.0.0.1 that sends scripted responses byte for byte.

Each request takes the next ``Script`` from a queue (so retries see 500 then 200), and the
server records what it received so tests can assert exact request bodies::

    server.queue(
        Script.json({"error": {"message": "busy"}}, status=503),
        Script(body=[b"data: {...}\\n\\n", 0.2, b"data: [DONE]\\n\\n"]),
    )
    reply = Client("sk-test", base_url=server.base_url).chat([...])
    assert server.requests[1].body["stream"] is True

A ``Script`` body is a list of byte pieces, each written with its own ``send`` (one HTTP chunk
when chunked), and floats, which sleep that many seconds. ``framing`` picks how the body is
delimited: ``chunked``, ``length`` (Content-Length) or ``close`` (an HTTP/1.0 response with
neither: the body ends when the connection closes). ``ending`` says how it stops: ``end``
(cleanly), ``close`` (hang up without the final chunk), ``reset`` (TCP RST via SO_LINGER 0),
``stall`` (send nothing more until the client hangs up: ``Request.closed`` tells when it did) or
``silent`` (read the request, then answer nothing at all, not even a status line), ``hang-up``
(read the request and close the connection without a byte of answer) or ``drop-next`` (end cleanly,
keep-alive advertised, then close the connection as the client's next request on it arrives, that
request unanswered and not parsed, counted in ``ScriptedServer.dropped``: what llama-server does
after every streamed response, and any keep-alive server whose idle timeout fires as a request
comes in).
Raw sockets, so every byte is ours.
"""

from __future__ import annotations

import collections
import contextlib
import json
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path

# Framing headers are the server's business, never copied from a transcript.
_FRAMING = {"content-length", "transfer-encoding", "connection", "keep-alive"}


@dataclass
class Script:
    status: int = 200
    headers: dict = field(default_factory=lambda: {"content-type": "text/event-stream"})
    body: list = field(default_factory=list)  # bytes pieces and float pauses (seconds)
    framing: str = "chunked"  # chunked | length | close
    ending: str = "end"  # end | close | reset | stall | silent | hang-up | drop-next

    @classmethod
    def json(cls, obj, status: int = 200, headers: dict | None = None) -> Script:
        """A JSON body with a Content-Length (an error, or a non-streamed reply)."""
        data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        return cls(status, {"content-type": "application/json", **(headers or {})}, [data], "length")

    @classmethod
    def sse(cls, *frames: str | bytes, **kwargs) -> Script:
        """An event stream, one piece per frame (``str`` frames are UTF-8 encoded)."""
        pieces = [f.encode() if isinstance(f, str) else f for f in frames]
        return cls(body=pieces, **kwargs)

    @classmethod
    def transcript(cls, path: str | Path) -> Script:
        """A captured response (status line, headers, body as received), the body as one piece.

        Captures with a Content-Length are replayed with one; the others chunked. A file that is
        only a JSON body (no status line) is a 200 ``application/json``.
        """
        raw = Path(path).read_bytes()
        if not raw.startswith(b"HTTP/"):
            return cls.json(raw)
        head, _, body = raw.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers, framing = {}, "chunked"
        for line in lines:
            name, _, value = line.partition(":")
            if name.lower() == "content-length":
                framing = "length"
            if name.lower() not in _FRAMING:
                headers[name] = value.strip()
        return cls(int(status_line.split()[1]), headers, [body], framing)

    def split(self, *cuts: int) -> Script:
        """The same response with its (single-piece) body cut at the given byte offsets."""
        (body,) = [p for p in self.body if isinstance(p, bytes)]
        edges = [0, *sorted(set(cuts)), len(body)]
        pieces = [body[a:b] for a, b in zip(edges, edges[1:], strict=False) if b > a]
        return Script(self.status, self.headers, pieces, self.framing, self.ending)


@dataclass
class Request:
    method: str
    path: str
    headers: dict  # lower-cased names
    raw: bytes  # the body as received
    body: object = None  # the body parsed as JSON, when it is JSON
    sent: list = field(default_factory=list)  # time.monotonic() as each body piece was written
    closed: threading.Event = field(default_factory=threading.Event)  # its connection is closed


class ScriptedServer:
    """Serves queued ``Script``s in order; with none left it answers 500 saying so."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.dropped = 0  # requests that arrived on a connection closed by a ``drop-next`` ending
        self._scripts: collections.deque[Script] = collections.deque()
        self._closing = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def queue(self, *scripts: Script) -> None:
        self._scripts.extend(scripts)

    def close(self) -> None:
        self._closing.set()
        self._sock.close()

    # -- the wire
    def _accept(self) -> None:
        accept_forever(self._sock, self._closing, self._serve)

    def _serve(self, conn: socket.socket) -> None:
        last = None
        try:
            with conn, conn.makefile("rb") as reader:
                while (request := self._read(reader)) is not None:
                    last = request
                    self.requests.append(request)
                    script = self._scripts.popleft() if self._scripts else _NOTHING_QUEUED
                    if not self._respond(conn, script, request):
                        break
        except OSError:
            pass  # the client hung up while we wrote
        finally:
            if last is not None:
                last.closed.set()

    def _read(self, reader) -> Request | None:
        line = reader.readline()
        if not line.strip():
            return None
        method, path, _ = line.decode("latin-1").split(" ", 2)
        headers = {}
        while (line := reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        raw = reader.read(int(headers.get("content-length") or 0))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        return Request(method, path, headers, raw, body)

    def _respond(self, conn: socket.socket, script: Script, request: Request) -> bool:
        """Write the scripted response; True if the connection can serve another request."""
        if script.ending in ("silent", "hang-up"):
            if script.ending == "silent":
                self._wait_for_hang_up(conn)
            return False
        pieces = [p for p in script.body if isinstance(p, bytes)]
        version = "HTTP/1.0" if script.framing == "close" else "HTTP/1.1"
        lines = [f"{version} {script.status} {_reason(script.status)}"]
        lines += [f"{name}: {value}" for name, value in script.headers.items()]
        if script.framing == "chunked":
            lines.append("Transfer-Encoding: chunked")
        elif script.framing == "length":
            lines.append(f"Content-Length: {sum(map(len, pieces))}")
        else:
            lines.append("Connection: close")
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        for piece in script.body:
            if not isinstance(piece, bytes):
                time.sleep(piece)
            elif piece:
                chunked = script.framing == "chunked"
                conn.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                request.sent.append(time.monotonic())
        if script.ending == "reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        if script.ending == "stall":
            self._wait_for_hang_up(conn)
            return False
        if script.ending in ("end", "drop-next") and script.framing == "chunked":
            conn.sendall(b"0\r\n\r\n")
        if script.ending == "drop-next":
            self._drop_next(conn)
            return False
        return script.ending == "end" and script.framing != "close"

    def _drop_next(self, conn: socket.socket) -> None:
        """Close as cpp-httplib does (shut the write side, drain, close) once the next request's
        first bytes are here: the client sent it on a connection it had every reason to reuse."""
        conn.settimeout(0.05)
        while not self._closing.is_set():
            try:
                if conn.recv(1, socket.MSG_PEEK):
                    self.dropped += 1
                break
            except TimeoutError:
                continue
        conn.shutdown(socket.SHUT_WR)
        conn.settimeout(0.5)
        with contextlib.suppress(OSError):
            while conn.recv(65536):
                pass

    def _wait_for_hang_up(self, conn: socket.socket) -> None:
        conn.settimeout(0.05)
        while not self._closing.is_set():
            try:
                if not conn.recv(1024):
                    return
            except TimeoutError:
                continue
            except OSError:
                return


_NOTHING_QUEUED = Script.json({"error": {"message": "scripted server: no response queued"}}, status=500)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def accept_forever(sock, closing, serve) -> None:
    """Each connection to ``sock`` served by ``serve(conn)`` on a thread of its own, until ``closing``."""
    while not closing.is_set():
        try:
            conn, _ = sock.accept()
        except OSError:
            return
        threading.Thread(target=serve, args=(conn,), daemon=True).start()
