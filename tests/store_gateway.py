"""A real HTTP server on 127.0.0.1 that, like Llama Stack, finishes its work after the last event.

Llama Stack's Responses implementation stores a response (so a later ``previous_response_id``
can name it) after its stream generator has yielded ``response.completed``, and a client that
hangs up at that point cancels the generator, so the store never happens; the next turn then
gets HTTP 400 "not found" (issue 12). Billing or logging proxies behave the same after
``[DONE]``. This server does that on a raw socket:

- POST /v1/responses streams ``response.created``, text deltas and ``response.completed``, then
  spends ``finish_after`` seconds "storing"; if the client closed the connection meanwhile the
  store is cancelled (``cancelled``), else the response is stored and the body ends;
- a request whose ``previous_response_id`` is not stored gets 400, as Llama Stack answers;
- POST /v1/chat/completions streams chunks and ``[DONE]``, then "bills" the same way (``billed``);
- ``tail`` bytes, when set, are sent after the terminal event (``tail_forever`` repeats them
  until the client leaves), to check that the client's drain is bounded.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time

from tests.scripted_server import accept_forever


class StoreGateway:
    def __init__(self, finish_after: float = 0.2) -> None:
        self.finish_after = finish_after
        self.stored: dict[str, dict] = {}  # response id -> {"text", "previous"}
        self.cancelled: list[str] = []  # ids whose store (or bill) a hang-up cancelled
        self.billed: list[str] = []  # chat completions logged after [DONE]
        self.tail = b""
        self.tail_forever = False
        self._count = 0
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.base_url = f"http://127.0.0.1:{self._sock.getsockname()[1]}/v1"
        self._closing = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._closing.set()
        self._sock.close()

    def _accept(self) -> None:
        accept_forever(self._sock, self._closing, self._serve)

    def _serve(self, conn: socket.socket) -> None:
        try:
            with conn, conn.makefile("rb") as reader:
                while (request := _read(reader)) is not None:
                    path, body = request
                    if path.endswith("/responses"):
                        self._respond(conn, body)
                    else:
                        self._chat(conn, body)
        except OSError:
            pass  # the client hung up

    # -- the two endpoints
    def _respond(self, conn, body: dict) -> None:
        previous = body.get("previous_response_id")
        if previous is not None and previous not in self.stored:
            error = {"error": {"message": f"Response with id '{previous}' not found.", "type": "invalid_request_error"}}
            _send_json(conn, 400, error)
            return
        self._count += 1
        response_id = f"resp_{self._count}"
        earlier = self.stored[previous]["text"] if previous else ""
        text = f"You said: {body.get('input')}" + (f" (after: {earlier})" if earlier else "")
        response = {"id": response_id, "object": "response", "model": "store-model", "status": "in_progress"}
        events = [
            {"type": "response.created", "sequence_number": 0, "response": response},
            {"type": "response.output_text.delta", "sequence_number": 1, "item_id": "m", "delta": text},
            {
                "type": "response.completed",
                "sequence_number": 2,
                "response": dict(
                    response, status="completed", output=[], usage={"input_tokens": 3, "output_tokens": 4}
                ),
            },
        ]
        frames = [f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events]
        stored = {"text": text, "previous": previous}
        if not self._stream_then_finish(conn, frames, lambda: self.stored.__setitem__(response_id, stored)):
            self.cancelled.append(response_id)

    def _chat(self, conn, body: dict) -> None:
        self._count += 1
        completion_id = f"chatcmpl-{self._count}"
        chunks = [
            {"id": completion_id, "model": "store-model", "choices": [{"index": 0, "delta": {"content": "Hi"}}]},
            {"id": completion_id, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        ]
        frames = [b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks] + [b"data: [DONE]\n\n"]
        if not self._stream_then_finish(conn, frames, lambda: self.billed.append(completion_id)):
            self.cancelled.append(completion_id)

    def _stream_then_finish(self, conn, frames: list[bytes], finish) -> bool:
        """Send the frames, then ``finish()`` the work unless the client hangs up first (True: finished).
        The work is done before the body ends, as a server's generator finishes before its last chunk."""
        head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
        conn.sendall(head + b"".join(_chunk(f) for f in frames))
        if self.tail_forever:
            while not _hung_up(conn, 0):
                conn.sendall(_chunk(self.tail))
            return False
        if self.tail:
            conn.sendall(_chunk(self.tail))
        if _hung_up(conn, self.finish_after):
            return False
        finish()
        conn.sendall(b"0\r\n\r\n")  # the generator is done: only now does the body end
        return True


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _hung_up(conn: socket.socket, seconds: float) -> bool:
    """Whether the client closes its side within ``seconds`` (as Starlette's disconnect check sees it)."""
    deadline = time.monotonic() + seconds
    while True:
        readable, _, _ = select.select([conn], [], [], max(0.0, deadline - time.monotonic()))
        if readable:
            try:
                if conn.recv(1, socket.MSG_PEEK) == b"":
                    return True
            except OSError:
                return True
            return False  # the client sent another request: it is still there
        if time.monotonic() >= deadline:
            return False


def _send_json(conn, status: int, obj) -> None:
    data = json.dumps(obj).encode()
    head = f"HTTP/1.1 {status} Bad Request\r\ncontent-type: application/json\r\ncontent-length: {len(data)}\r\n\r\n"
    conn.sendall(head.encode() + data)


def _read(reader) -> tuple[str, dict] | None:
    line = reader.readline()
    if not line.strip():
        return None
    _, path, _ = line.decode("latin-1").split(" ", 2)
    length = 0
    while (line := reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    raw = reader.read(length)
    return path, (json.loads(raw) if raw else {})
