"""A chat-completions gateway for throughput benches: every request is answered with real SSE bytes
after a fixed latency, the first ``throttled`` with a 429 and ``Retry-After``; asyncio, in a process
of its own (``python bench/latency_gateway.py LATENCY THROTTLED`` prints its URL, serves until
stdin closes, then prints how many requests it received).

A real gateway waits on a model, not on our machine's CPU. tests/fake_gateway.py, a thread per
connection that builds each chunk in Python, spends ~2 ms of CPU per request; in the client's
process it also takes the GIL from the client being measured. This one costs little, so what the
bench measures is the client.
"""

from __future__ import annotations

import asyncio
import json
import sys


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def _event(payload: dict) -> bytes:
    return _chunk(b"data: " + json.dumps(payload).encode() + b"\n\n")


FIRST = _event(
    {"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"role": "assistant"}}]}
)
REST = b"".join(
    [
        _event({"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "ok"}}]}),
        _event({"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
        _event({"id": "c", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}),
        _chunk(b"data: [DONE]\n\n"),
        b"0\r\n\r\n",
    ]
)
HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
SLOW = json.dumps({"error": {"message": "slow down", "type": "rate_limit"}}).encode()
THROTTLED = (
    b"HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\nretry-after: 0.2\r\n"
    + f"content-length: {len(SLOW)}\r\n\r\n".encode()
    + SLOW
)


class Gateway:
    def __init__(self, latency: float, throttled: int):
        self.latency, self.throttled, self.requests = latency, throttled, 0

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """HTTP/1.1 with keep-alive: one request after another on the same connection."""
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                self.requests += 1
                if self.requests <= self.throttled:
                    writer.write(THROTTLED)
                    continue
                writer.write(HEAD + FIRST)
                await writer.drain()
                await asyncio.sleep(self.latency)
                writer.write(REST)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass  # the client hung up, or the server is stopping
        finally:
            writer.close()

    async def serve(self) -> None:
        server = await asyncio.start_server(self.connection, "127.0.0.1", 0, backlog=256)
        port = server.sockets[0].getsockname()[1]
        print(f"http://127.0.0.1:{port}/v1", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until stdin closes
        server.close()
        print(self.requests, flush=True)


if __name__ == "__main__":
    asyncio.run(Gateway(float(sys.argv[1]), int(sys.argv[2])).serve())
