"""Long replies: seconds per MB at growing sizes, so a path that is not O(delta) shows as a rising column.

Three per-event paths, each fed as the bytes a server sends, through the real SSE decoder, chat
dialect and Reply (no HTTP, to time only our code):
- text + terminal view: a reply in 16-character deltas, shown by the terminal view (`_TextView`,
  writing to a null stream), next to the same stream without a view (the baseline);
- tool-call arguments: one call whose arguments arrive in 16-character deltas;
- one long SSE line: a single `data:` frame of that size arriving in 4 KB reads.

    .venv/bin/python bench/long_replies.py [--small] [--sizes 1,4,16]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import machine, table  # noqa: E402
from elk_jupyter.gateway.client import collect  # noqa: E402
from elk_jupyter.gateway.dialects import dialect  # noqa: E402

CHAT = "chat"
from elk_jupyter.gateway.reply import Reply  # noqa: E402
from elk_jupyter.gateway.sse import iter_events  # noqa: E402

MB = 1 << 20
PIECE = "0123456789abcde "  # 16 characters per delta


def frame(delta: dict, finish=None) -> bytes:
    chunk = {"id": "c", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


def text_stream(size: int) -> list[bytes]:
    one = frame({"content": PIECE})
    body = one * (size // len(PIECE)) + frame({}, "stop") + b"data: [DONE]\n\n"
    return [body[i : i + 65536] for i in range(0, len(body), 65536)]


def arguments_stream(size: int) -> list[bytes]:
    first = frame({"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "f", "arguments": ""}}]})
    one = frame({"tool_calls": [{"index": 0, "function": {"arguments": PIECE}}]})
    body = first + one * (size // len(PIECE)) + frame({}, "tool_calls") + b"data: [DONE]\n\n"
    return [body[i : i + 65536] for i in range(0, len(body), 65536)]


def long_line_stream(size: int) -> list[bytes]:
    body = frame({"content": "x" * size}) + frame({}, "stop") + b"data: [DONE]\n\n"
    return [body[i : i + 4096] for i in range(0, len(body), 4096)]


def consume(pieces: list[bytes], view=None) -> Reply:
    parser = dialect(CHAT).stream()

    def events():
        for sse in iter_events(pieces):
            yield from parser.feed(sse)
            if parser.done:
                break
        yield from parser.end()

    reply = Reply(CHAT)
    collect(events(), reply, (lambda _event: view.show(reply)) if view else None)
    return reply


def with_text_view(pieces: list[bytes]) -> Reply:
    from elk_jupyter.front.views import TextView as _TextView

    with contextlib.redirect_stdout(io.StringIO()) as out:
        view = _TextView("chat", "default", "m", "no earlier turns", False)
        reply = consume(pieces, view)
    assert len(out.getvalue()) > len(reply.text)  # it did write the whole reply
    return reply


PATHS = {
    "text, no view (baseline)": (text_stream, consume, lambda r: len(r.text)),
    "text + terminal view": (text_stream, with_text_view, lambda r: len(r.text)),
    "tool-call arguments": (arguments_stream, consume, lambda r: len(r.tool_calls[0]["function"]["arguments"])),
    "one long SSE line (4 KB reads)": (long_line_stream, consume, lambda r: len(r.text)),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", action="store_true", help="a tiny size for CI")
    parser.add_argument("--sizes", help="comma-separated sizes in MB (default 1,4,16)")
    args = parser.parse_args()
    sizes = [float(s) for s in args.sizes.split(",")] if args.sizes else ([0.25, 0.5, 1] if args.small else [1, 4, 16])
    print(f"long replies: seconds per MB (flat = O(delta)) · {machine()}")
    rows = []
    for name, (build, run, measured) in PATHS.items():
        row = [name]
        for size_mb in sizes:
            size = int(size_mb * MB)
            pieces = build(size)
            start = time.perf_counter()
            reply = run(pieces)
            seconds = time.perf_counter() - start
            assert abs(measured(reply) - size) < 64, (name, measured(reply), size)
            row.append(f"{seconds / size_mb:.3f} s/MB")
        rows.append(row)
    print(table(rows, ["path", *(f"{s:g} MB" for s in sizes)]))
    print("target: each row flat (time per MB does not grow with the size)")


if __name__ == "__main__":
    main()
