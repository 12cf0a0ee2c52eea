"""Audio replies: a streamed pcm16 answer (base64 ``delta.audio.data`` chunks, as OpenAI streams them)
consumed by elk_jupyter.Client, next to two baselines over the same local socket: the same frames read
raw (requests + line split + json.loads + b64decode), and a text stream of as many frames carrying the
same number of characters as ``content``. Prints medians and ratios; nothing is asserted.

    .venv/bin/python bench/audio_stream.py [--small]
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import sys
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import ByteServer, interleaved_times, machine, table  # noqa: E402
from elk_jupyter import Client  # noqa: E402

CHUNK_BYTES = 3_600  # 75 ms of 24 kHz pcm16 per frame, 4,800 base64 characters


def frame(delta: dict, finish=None) -> str:
    body = {"id": "c1", "object": "chat.completion.chunk", "model": "m"}
    body["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish}]
    return f"data: {json.dumps(body)}\n\n"


def streams(seconds: float) -> tuple[bytes, bytes, bytes]:
    """(the pcm16 samples, the audio stream, a text stream of as many frames and characters)."""
    samples = bytes(range(256)) * int(seconds * 48_000 / 256)
    pieces = [samples[i : i + CHUNK_BYTES] for i in range(0, len(samples), CHUNK_BYTES)]
    audio = [frame({"audio": {"id": "audio_1", "transcript": "Hello."}})]
    audio += [frame({"audio": {"data": base64.b64encode(p).decode()}}) for p in pieces]
    audio.append(frame({"audio": {"expires_at": 4102444800}}, finish="stop"))
    text = [frame({"content": "x" * len(base64.b64encode(p))}) for p in pieces]
    text.append(frame({}, finish="stop"))
    return samples, "".join(audio + ["data: [DONE]\n\n"]).encode(), "".join(text + ["data: [DONE]\n\n"]).encode()


def raw_audio(url: str) -> int:
    """The least a client can do: read lines, parse JSON, decode each chunk's base64."""
    got = bytearray()
    with requests.post(url + "/chat/completions", json={"model": "m"}, stream=True) as response:
        for line in response.iter_lines():
            if line.startswith(b"data: {"):
                audio = json.loads(line[6:])["choices"][0]["delta"].get("audio") or {}
                if "data" in audio:
                    got += base64.b64decode(audio["data"])
    return len(got)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", action="store_true")
    args = parser.parse_args()
    seconds, repeats = (20, 3) if args.small else (300, 7)
    samples, audio_body, text_body = streams(seconds)
    audio_server, text_server = ByteServer(audio_body), ByteServer(text_body)
    ask = {"modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": "pcm16"}}
    elk_audio = Client("sk-bench", base_url=audio_server.base_url, model="m")
    elk_text = Client("sk-bench", base_url=text_server.base_url, model="m")
    reply = elk_audio.chat([{"role": "user", "content": "hi"}], **ask)
    assert reply.audio.data.endswith(samples) and reply.text == "Hello."  # the bench measures a correct path

    funcs = [
        lambda: elk_audio.chat([{"role": "user", "content": "hi"}], **ask).audio,
        lambda: raw_audio(audio_server.base_url),
        lambda: elk_text.chat([{"role": "user", "content": "hi"}]).text,
    ]
    times = interleaved_times(funcs, repeats)
    medians = [statistics.median(t) for t in times]
    frames = audio_body.count(b"\n\n")
    print(f"{machine()}; {seconds} s of pcm16 audio = {len(samples) / 2**20:.1f} MB in {frames} frames")
    print(f"({len(audio_body) / 2**20:.1f} MB of SSE), median of {repeats} interleaved runs")
    names = [
        "elk Client, audio reply (decoded, WAV-wrapped)",
        "raw baseline, same audio frames",
        "elk Client, text reply",
    ]
    rows = [
        [name, f"{m * 1000:.0f} ms", f"{len(audio_body) / m / 2**20:.0f} MB/s"]
        for name, m in zip(names, medians, strict=True)
    ]
    ratios = [statistics.median(a / b for a, b in zip(times[0], other, strict=True)) for other in times[1:]]
    print(table(rows, ["consumer", "median", "SSE throughput"]))
    print(f"audio / raw baseline: {ratios[0]:.2f}x   audio / text reply of the same size: {ratios[1]:.2f}x")
    audio_server.close()
    text_server.close()


if __name__ == "__main__":
    main()
