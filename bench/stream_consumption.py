"""Stream consumption: a 20,000-event chat stream and a Responses stream, sent as fast as a local
server can (one HTTP chunk per event, as servers write them, and in 64 KB chunks, with LF and with
CRLF line ends), consumed by elk_jupyter.Client's full path (``chat``/``respond``: the Reply a user
gets), by its event iterator (``iter_chat``/``iter_respond``), by the official openai SDK, and by a raw
baseline (requests + own line split + json.loads) over the same bytes. Prints medians and per-round ratios side by side.

    .venv/bin/python bench/stream_consumption.py [--small] [--no-openai]"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import statistics  # noqa: E402

from bench.common import ByteServer, interleaved_times, machine, median_time, table  # noqa: E402
from elk_jupyter import Client  # noqa: E402


def chat_stream(n: int) -> bytes:
    lines = [
        json.dumps(
            {
                "id": "c1",
                "object": "chat.completion.chunk",
                "model": "m",
                "choices": [{"index": 0, "delta": {"content": f"tok{i} "}, "finish_reason": None}],
            }
        )
        for i in range(n)
    ]
    lines.append(
        json.dumps(
            {
                "id": "c1",
                "object": "chat.completion.chunk",
                "model": "m",
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            }
        )
    )
    lines.append(
        json.dumps(
            {
                "id": "c1",
                "object": "chat.completion.chunk",
                "model": "m",
                "choices": [],
                "usage": {"prompt_tokens": 5, "completion_tokens": n, "total_tokens": n + 5},
            }
        )
    )
    return ("".join(f"data: {line}\n\n" for line in lines) + "data: [DONE]\n\n").encode()


def responses_stream(n: int) -> bytes:
    events = [
        {
            "type": "response.created",
            "sequence_number": 0,
            "response": {"id": "r1", "model": "m", "status": "in_progress"},
        }
    ]
    events += [
        {
            "type": "response.output_text.delta",
            "sequence_number": i + 1,
            "item_id": "m1",
            "output_index": 0,
            "content_index": 0,
            "delta": f"tok{i} ",
        }
        for i in range(n)
    ]
    events.append(
        {
            "type": "response.completed",
            "sequence_number": n + 1,
            "response": {
                "id": "r1",
                "model": "m",
                "status": "completed",
                "output": [],
                "usage": {"input_tokens": 5, "output_tokens": n, "total_tokens": n + 5},
            },
        }
    )
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events).encode()


def raw_baseline(url: str, body: dict, crlf: bool = False) -> int:
    """The least work that still decodes every event: read, split lines, json.loads data lines
    (``crlf``: each line's CR taken off too)."""
    count = 0
    with requests.post(url, json=body, stream=True) as response:
        pending = b""
        while chunk := response.raw.read1(65536):
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop()
            for line in [line.rstrip(b"\r") for line in lines] if crlf else lines:
                if line.startswith(b"data: ") and line != b"data: [DONE]":
                    json.loads(line[6:])
                    count += 1
    return count


def sdk_consumer(openai, base_url: str, endpoint: str):
    """The official SDK reading the same stream (every event built as its typed model)."""
    sdk = openai.OpenAI(api_key="sk-bench", base_url=base_url, max_retries=0)
    if endpoint == "chat":
        return lambda: sum(1 for _ in sdk.chat.completions.create(model="m", messages=HI, stream=True))
    return lambda: sum(1 for _ in sdk.responses.create(model="m", input="x", stream=True))


HI = [{"role": "user", "content": "x"}]
ENDPOINTS = (("chat", chat_stream, "/chat/completions"), ("responses", responses_stream, "/responses"))
FRAMINGS = (("one event per chunk", True, False), ("64 KB chunks", False, False), ("CRLF, 64 KB chunks", False, True))


def measure(n: int, repeats: int, openai, framing: tuple, endpoint: str, make, path: str) -> list:
    """One table's rows: raw, elk's full path, elk's event iterator and the SDK on one server."""
    framing, per_event, crlf = framing
    stream = make(n)
    server = ByteServer(stream.replace(b"\n", b"\r\n") if crlf else stream, per_event=per_event)
    client = Client("sk-bench", base_url=server.base_url, model="m")
    if endpoint == "chat":
        full, body = (lambda: client.chat(HI)), {"model": "m", "messages": [], "stream": True}
        events = lambda: sum(1 for _ in client.iter_chat(HI))  # noqa: E731
    else:
        full, body = (lambda: client.respond("x")), {"model": "m", "input": "x", "stream": True}
        events = lambda: sum(1 for _ in client.iter_respond("x"))  # noqa: E731
    reply = full()  # the same, exact result each time: text, usage and finish reason
    assert reply.text == "".join(f"tok{i} " for i in range(n)) and reply.status == "completed"
    assert reply.tokens.completion == n and (endpoint == "responses" or reply.finish_reason == "stop")
    raw = lambda: raw_baseline(server.base_url + path, body, crlf)  # noqa: E731
    times = dict(
        zip(
            ("raw (requests + json.loads)", "elk Client.chat/respond -> Reply", "elk events (iter_chat/iter_respond)"),
            interleaved_times([raw, full, events], repeats),
            strict=True,
        )
    )
    if openai is not None:
        times[f"openai {openai.__version__}"] = [median_time(sdk_consumer(openai, server.base_url, endpoint), 3)]
    server.close()
    raw_times = times["raw (requests + json.loads)"]
    sdk = statistics.median(times[k][0] for k in times if k.startswith("openai")) if openai else None
    rows = []
    for who, seconds in times.items():
        median = statistics.median(seconds)
        # vs raw: the median of the per-round ratios (each round ran both under the same load)
        ratio = statistics.median(e / r for e, r in zip(seconds, raw_times, strict=True)) if len(seconds) > 1 else None
        rows.append(
            [
                framing,
                endpoint,
                who,
                f"{median * 1000:.1f} ms",
                f"{n / median:,.0f}",
                f"{ratio if ratio is not None else median / statistics.median(raw_times):.2f}x",
                f"{median / sdk:.3f}x" if sdk else "-",
            ]
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", action="store_true", help="a tiny size for CI")
    parser.add_argument("--no-openai", action="store_true", help="leave the SDK out (it takes most of the time)")
    args = parser.parse_args()
    n, repeats = (2_000, 3) if args.small else (20_000, 15)
    openai = None
    if not args.no_openai:
        try:
            import openai
        except ImportError:
            print("openai is not installed: its rows are left out")
    print(f"stream consumption: {n} events, median of {repeats} interleaved rounds (openai: 3) · {machine()}")
    rows = []
    for framing in FRAMINGS:
        for endpoint, make, path in ENDPOINTS:
            rows += measure(n, repeats, openai, framing, endpoint, make, path)
    print(table(rows, ["server writes", "stream", "consumer", "median", "events/s", "vs raw", "vs openai"]))
    print("targets: elk's full path (the Reply) within 1.25x of raw (stretch 1.1x), faster than openai")


if __name__ == "__main__":
    main()
