"""Shared bench helpers: machine facts, medians, and a raw-socket server that streams prebuilt bytes."""

from __future__ import annotations

import os
import platform
import socket
import statistics
import threading
import time


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def interleaved_times(funcs: list, repeats: int) -> list[list[float]]:
    """Each function's times over ``repeats`` rounds, one call of each per round.

    On a shared machine the load changes from second to second; running the contenders in turn
    lets a per-round ratio compare them under the same load.
    """
    times: list[list[float]] = [[] for _ in funcs]
    for _ in range(repeats):
        for func, bucket in zip(funcs, times, strict=True):
            start = time.perf_counter()
            func()
            bucket.append(time.perf_counter() - start)
    return times


def median_time(func, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


class ByteServer:
    """HTTP/1.1 on 127.0.0.1: answers every request with the same prebuilt chunked SSE body, fast.

    The answering runs in its own thread; the bytes are framed up front, so the server's share of
    the GIL is one ``sendall`` per response."""

    def __init__(self, body: bytes, per_event: bool = False):
        # per_event: one HTTP chunk per SSE event, as servers write them (each flushed on its own);
        # otherwise 64 KB chunks, the fewest reads a client can make.
        if per_event:
            chunks = [event + b"\n\n" for event in body.split(b"\n\n") if event]
        else:
            chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)]
        framed = b"".join(f"{len(c):x}\r\n".encode() + c + b"\r\n" for c in chunks) + b"0\r\n\r\n"
        self.response = (
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n"
            b"connection: close\r\n\r\n" + framed
        )
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.base_url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn):
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, rest = data.partition(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                ),
                0,
            )
            while len(rest) < length:
                rest += conn.recv(65536)
            conn.sendall(self.response)

    def close(self):
        self.sock.close()


def table(rows: list[list], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True))  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])
