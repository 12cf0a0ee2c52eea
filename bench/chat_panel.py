"""The chat panel's cost to the notebook: a reply streamed into a ChatPanel in a real kernel (the fake
gateway on 127.0.0.1), counting every comm message the front-end receives meanwhile; the wall time of
a small cell run while the panel streams against the same cell with the panel idle; and the bytes a
conversation of many turns sends, against the baseline of sending the whole transcript after each
turn (what the panel did before it sent only the transcript's changed end).

    .venv/bin/python bench/chat_panel.py [--small]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import machine, table  # noqa: E402
from tests.fake_gateway import FakeGateway  # noqa: E402
from tests.kernel import Kernel  # noqa: E402

OPEN = "%load_ext elk_jupyter\nfrom elk_jupyter import ChatPanel\npanel = ChatPanel(conversation='bench')\npanel"
PROBE = "sum(range(200_000))"


class Traffic(threading.Thread):
    """Every iopub comm message, from any parent (the panel's worker thread has none of its own)."""

    def __init__(self, client):
        super().__init__(daemon=True)
        self.client, self.running, self.messages = client, True, []

    def run(self) -> None:
        while self.running:
            try:
                msg = self.client.get_iopub_msg(timeout=0.05)
            except queue.Empty:
                continue
            if msg["msg_type"] == "comm_msg":
                self.messages.append((time.monotonic(), len(json.dumps(msg["content"]["data"]))))


def timed(client, code: str) -> float:
    """Wall time of one cell, from its request to its reply, as a front-end sees it."""
    start = time.perf_counter()
    msg_id = client.execute(code)
    while client.get_shell_msg(timeout=60)["parent_header"].get("msg_id") != msg_id:
        pass
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", action="store_true")
    small = parser.parse_args().small
    words, turns = (2_000, 8) if small else (10_000, 40)
    text = " ".join(f"w{i % 1000:03d}" for i in range(words))
    gateway = FakeGateway()
    env = dict(
        os.environ,
        ELK_API_KEY="sk-bench",
        ELK_BASE_URL=gateway.base_url,
        ELK_MODEL="m",
        ELK_REPLAY="off",
        ELK_CACHE_DIR="/tmp/elk-bench-cache",
        PYTHONPATH=str(ROOT),
    )
    kernel = Kernel(env)
    try:
        kernel.execute(OPEN)
        client = kernel.client
        traffic = Traffic(client)
        traffic.start()
        for _ in range(5):  # warm up: the first cells after start-up are slower
            timed(client, PROBE)
        idle = [timed(client, PROBE) for _ in range(10)]
        gateway.plan(text=text, delay=1 / 1000)  # ~1,000 tokens/s, ~10 s
        start = time.monotonic()
        timed(client, "future = panel.send('Go')")
        busy = []
        while gateway.in_flight == 0 and time.monotonic() - start < 10:
            time.sleep(0.01)
        while gateway.in_flight and len(busy) < 200:
            busy.append(timed(client, PROBE))
            time.sleep(0.1)
        timed(client, "future.result(timeout=300)")
        elapsed = time.monotonic() - start
        idle += [timed(client, PROBE) for _ in range(10)]
        time.sleep(0.5)
        per_turn = conversation_traffic(client, traffic, gateway, turns)
        traffic.running = False
        traffic.join()
        whole = [ours + earlier for ours, earlier in zip(per_turn, resent(kernel, turns), strict=True)]
    finally:
        kernel.close()
        gateway.close()
    stream = [n for at, n in traffic.messages if at <= start + elapsed]
    count, size = len(stream), sum(stream)
    reply = len(text.encode())
    print(f"chat panel: {len(text):,}-char reply at ~1,000 tokens/s into a ChatPanel · {machine()}")
    print(
        table(
            [["panel stream", count, f"{count / elapsed:.1f}", f"{size:,}", f"{size / reply:.2f}x"]],
            ["", "comm messages", "per second", "bytes", "bytes / reply"],
        )
    )
    print(
        table(
            [
                ["panel idle", len(idle), f"{statistics.median(idle) * 1000:.1f}", f"{max(idle) * 1000:.1f}"],
                ["panel streaming", len(busy), f"{statistics.median(busy) * 1000:.1f}", f"{max(busy) * 1000:.1f}"],
            ],
            ["cell wall time", "runs", "median ms", "max ms"],
        )
    )

    rows = [
        [k + 1, f"{ours:,}", f"{baseline:,}"] for k, (ours, baseline) in enumerate(zip(per_turn, whole, strict=True))
    ]
    shown = rows[:2] + rows[len(rows) // 2 : len(rows) // 2 + 1] + rows[-1:]
    shown.append(["all", f"{sum(per_turn):,}", f"{sum(whole):,}"])
    print(f"a conversation of {turns} turns (~1 KB replies): comm bytes per turn")
    print(table(shown, ["turn", "ours (changed end)", "whole transcript each turn"]))


def conversation_traffic(client, traffic, gateway, turns: int) -> list[int]:
    """The comm bytes each of ``turns`` turns in a fresh conversation cost (streaming, the finished
    turn, the transcript), sent from cells as a user's code would."""
    timed(client, "panel.conversation = 'bench-turns'")
    ours = []
    for k in range(turns):
        gateway.plan(text=f"answer {k} " + "lorem ipsum " * 80)
        before = len(traffic.messages)
        timed(client, f"panel.send('question {k}').result(timeout=60)")
        time.sleep(0.2)  # the worker's last messages
        ours.append(sum(n for _, n in traffic.messages[before:]))
    return ours


def resent(kernel, turns: int) -> list[int]:
    """What re-sending the whole transcript after turn k would add: the k earlier entries, as JSON."""
    code = f"import json\nprint([len(json.dumps(panel.transcript[:k])) for k in range({turns})])"
    return json.loads(kernel.execute(code).stdout)


if __name__ == "__main__":
    main()
