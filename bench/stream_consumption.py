"""Stream consumption: a 20,000-chunk chat stream and a Responses stream, sent as fast as a local
server can, consumed by elk_jupyter.Client, by the official openai SDK, and by a raw baseline
(requests + own line split + json.loads). Prints medians and ratios side by side.

    .venv/bin/python bench/stream_consumption.py [--small]
"""

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


def raw_baseline(url: str, body: dict) -> int:
    """The least work that still decodes every event: read, split lines, json.loads data lines."""
    count = 0
    with requests.post(url, json=body, stream=True) as response:
        pending = b""
        while chunk := response.raw.read1(65536):
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop()
            for line in lines:
                if line.startswith(b"data: ") and line != b"data: [DONE]":
                    json.loads(line[6:])
                    count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", action="store_true", help="a tiny size for CI")
    args = parser.parse_args()
    n, repeats = (2_000, 3) if args.small else (20_000, 15)
    try:
        import openai
    except ImportError:
        openai = None
    print(
        f"stream consumption: {n} chunks, median of {repeats} interleaved rounds (openai: {max(3, repeats // 3)}) · {machine()}"
    )
    rows = []
    for name, stream, path in (
        ("chat", chat_stream(n), "/chat/completions"),
        ("responses", responses_stream(n), "/responses"),
    ):
        server = ByteServer(stream)
        client = Client("sk-bench", base_url=server.base_url, model="m")
        text = "".join(f"tok{i} " for i in range(n))
        if name == "chat":
            elk = lambda: client.chat([{"role": "user", "content": "x"}])  # noqa: E731
            body = {"model": "m", "messages": [], "stream": True}
        else:
            elk = lambda: client.respond("x")  # noqa: E731
            body = {"model": "m", "input": "x", "stream": True}
        assert elk().text == text  # the same, exact result each time
        raw_times, elk_times = interleaved_times([lambda: raw_baseline(server.base_url + path, body), elk], repeats)
        timings = {
            "raw (requests + json.loads)": statistics.median(raw_times),
            "elk_jupyter.Client": statistics.median(elk_times),
        }
        # vs raw for elk: the median of the per-round ratios (both ran under the same load)
        ratios = {"elk_jupyter.Client": statistics.median(e / r for e, r in zip(elk_times, raw_times, strict=True))}
        if openai is not None:
            sdk = openai.OpenAI(api_key="sk-bench", base_url=server.base_url, max_retries=0)
            if name == "chat":

                def consume():
                    for _chunk in sdk.chat.completions.create(
                        model="m", messages=[{"role": "user", "content": "x"}], stream=True
                    ):
                        pass
            else:

                def consume():
                    for _event in sdk.responses.create(model="m", input="x", stream=True):
                        pass

            timings[f"openai {openai.__version__}"] = median_time(consume, max(3, repeats // 3))
        raw = timings["raw (requests + json.loads)"]
        sdk_time = next((v for k, v in timings.items() if k.startswith("openai")), None)
        for who, seconds in timings.items():
            rows.append(
                [
                    name,
                    who,
                    f"{seconds * 1000:.1f} ms",
                    f"{n / seconds:,.0f}",
                    f"{ratios.get(who, seconds / raw):.2f}x",
                    f"{seconds / sdk_time:.2f}x" if sdk_time else "-",
                ]
            )
        server.close()
    print(table(rows, ["stream", "consumer", "median", "events/s", "vs raw", "vs openai"]))
    print("targets: elk within 1.25x of raw, faster than openai")


if __name__ == "__main__":
    main()
