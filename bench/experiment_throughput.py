"""Experiment throughput: runs per second against a local gateway with a fixed latency, at
concurrency 1 / 4 / 16, next to the ideal N·L/C; then the same with a burst of 429s (Retry-After),
showing how many requests the shared backoff sends in all (a herd would send many more).

    .venv/bin/python bench/experiment_throughput.py [--small] [--runs 48] [--latency 0.1]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import elk_jupyter.experiments as experiments  # noqa: E402
from bench.common import machine, table  # noqa: E402
from elk_jupyter import Client  # noqa: E402
from elk_jupyter.conversation.kernel import KernelState  # noqa: E402
from elk_jupyter.records.cache import Cache  # noqa: E402
from tests.fake_gateway import FakeGateway  # noqa: E402

# socketserver listens with a backlog of 5: a burst of 16 connects loses SYNs and waits ~1 s for the
# retransmit, which measures the test server, not the experiment. Real gateways accept far more.
ThreadingHTTPServer.request_queue_size = 128


def one(runs: int, latency: float, concurrency: int, throttled: int = 0) -> tuple[float, int]:
    """(seconds, requests sent) for ``runs`` distinct runs, the first ``throttled`` answered 429."""
    gateway = FakeGateway()
    try:
        for _ in range(throttled):
            gateway.plan(status=429, headers={"Retry-After": "0.2"}, error_body={"error": {"message": "slow down"}})
        for _ in range(runs):
            gateway.plan(text="ok", delay=latency)
        with tempfile.TemporaryDirectory() as cache:
            state = KernelState(cache=Cache(Path(cache) / "c.sqlite3"))  # a fresh kernel: nothing finished
            client = Client("sk-bench-0000000000", base_url=gateway.base_url, model="m")
            start = time.perf_counter()
            result = experiments.experiment(
                "run $n",
                [{"n": i} for i in range(runs)],
                client=client,
                concurrency=concurrency,
                progress=False,
                state=state,
            )
            elapsed = time.perf_counter() - start
        assert result.errors == 0, result.runs[0].error
        return elapsed, len(gateway.requests)
    finally:
        gateway.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--runs", type=int, default=48)
    parser.add_argument("--latency", type=float, default=0.1)
    args = parser.parse_args()
    runs = 16 if args.small else args.runs
    print(f"# experiment throughput · {runs} runs · latency {args.latency:g} s · {machine()}")
    rows = []
    for concurrency in (1, 4, 16):
        elapsed, _ = one(runs, args.latency, concurrency)
        ideal = math.ceil(runs / concurrency) * args.latency
        rows.append([concurrency, f"{elapsed:.2f}", f"{ideal:.2f}", f"{runs / elapsed:.1f}", f"{runs / ideal:.1f}"])
    print(table(rows, ["concurrency", "seconds", "ideal N·L/C", "runs/s", "ideal runs/s"]))
    throttled = 16
    elapsed, sent = one(runs, args.latency, 16, throttled)
    print(
        f"\nwith the first {throttled} requests answered 429 (Retry-After 0.2 s), concurrency 16: "
        f"{elapsed:.2f} s, {sent} requests for {runs} runs (the minimum is {runs + throttled})"
    )


if __name__ == "__main__":
    main()
