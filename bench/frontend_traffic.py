"""Front-end traffic: a 50,000-character reply streamed at 5,000 tokens/s through the real %%chat and
Panel in a real kernel; count the comm messages and bytes the front-end receives, against a widget
that re-sends the whole text on every update (what chatlab-style tools do), at the same cadence.

    .venv/bin/python bench/frontend_traffic.py [--small]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import machine, table  # noqa: E402
from tests.fake_gateway import FakeGateway  # noqa: E402
from tests.kernel import Kernel  # noqa: E402

RESEND = """
import time, ipywidgets
w = ipywidgets.HTML()
display(w)
text, step, updates = {text!r}, {step}, {updates}
for i in range(1, updates + 1):
    w.value = text[: i * step]
    time.sleep(1 / 25)
w.value = text
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", action="store_true")
    chars = 5_000 if parser.parse_args().small else 50_000
    words = chars // 5  # "wxyz " = 5 chars, about one token each
    text = "".join(f"w{i % 1000:03d} " for i in range(words))
    gateway = FakeGateway()
    env = dict(
        os.environ,
        ELK_API_KEY="sk-bench",
        ELK_BASE_URL=gateway.base_url,
        ELK_MODEL="m",
        ELK_REPLAY="off",
        ELK_CACHE_DIR=str(Path("/tmp") / "elk-bench-cache"),
        PYTHONPATH=str(ROOT),
    )
    kernel = Kernel(env)
    try:
        kernel.execute("%load_ext elk_jupyter")
        gateway.plan(text=text.rstrip(" "), delay=1 / 5000, words_per_chunk=1)
        start = time.monotonic()
        elk = kernel.execute("%%chat -o r\nGo", timeout=300)
        elapsed = time.monotonic() - start
        exact = kernel.execute("print(len(r.text))").stdout.strip()
        updates = max(1, elk.comm_msgs - 1)
        step = -(-len(text) // updates)
        resend = kernel.execute(RESEND.format(text=text, step=step, updates=updates), timeout=300)
    finally:
        kernel.close()
        gateway.close()
    reply_bytes = len(text.encode())
    print(f"front-end traffic: {chars:,}-char reply at 5,000 tokens/s · {machine()}")
    rows = [
        [
            "elk Panel (deltas)",
            elk.comm_msgs,
            f"{elk.comm_msgs / elapsed:.1f}",
            f"{elk.comm_bytes:,}",
            f"{elk.comm_bytes / reply_bytes:.2f}x",
        ],
        [
            "resend whole text",
            resend.comm_msgs,
            f"{resend.comm_msgs / elapsed:.1f}",
            f"{resend.comm_bytes:,}",
            f"{resend.comm_bytes / reply_bytes:.2f}x",
        ],
    ]
    print(table(rows, ["view", "comm msgs", "msgs/s", "update bytes", "bytes / reply"]))
    print(
        f"(one-time widget creation, not counted above: elk {elk.comm_open_bytes:,} bytes incl. the front-end code, "
        f"resend {resend.comm_open_bytes:,} bytes)"
    )
    print(f"stream took {elapsed:.2f} s; final text length in the kernel: {exact} (sent {len(text.rstrip(' '))})")
    print("targets: at most 30 messages/s and at most 3x the reply's bytes, final text exact")


if __name__ == "__main__":
    main()
