"""Experiment throughput: runs per second against a local gateway with a fixed latency
(bench/latency_gateway.py, in a process of its own), at concurrency 1 / 4 / 16, next to the ideal
N·L/C and the floor of this machine (the same requests from a bare requests.Session per thread:
what HTTP, the test server and the machine's load cost; and from a bare urllib3.PoolManager, the
floor of the stack under requests), with the load average; then ten times the runs at concurrency
16 (the fixed costs spread thin); then the first runs with a burst of 429s (Retry-After), showing how
many requests the shared backoff sends in all (a herd would send many more); then one live redraw
of the matrix at 2,000 and 16,000 runs (the partial result, the live bundle and the view data)
beside the figures before issue 24.

    .venv/bin/python bench/experiment_throughput.py [--small] [--runs 48] [--latency 0.1] [--repeats 3]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import elk_jupyter.experiments as experiments  # noqa: E402
from bench.common import machine, table  # noqa: E402
from elk_jupyter import Client  # noqa: E402
from elk_jupyter.conversation.kernel import KernelState  # noqa: E402
from elk_jupyter.records.cache_file import Cache  # noqa: E402

# issue 24's figures before the change: a live redraw scanned every run for every cell
REDRAW_BEFORE = {2000: 0.20, 16000: 6.7}


class GatewayProcess:
    """bench/latency_gateway.py in a process of its own, as a real gateway is."""

    def __init__(self, latency: float, throttled: int = 0):
        argv = [sys.executable, str(ROOT / "bench" / "latency_gateway.py"), str(latency), str(throttled)]
        self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.base_url = self.process.stdout.readline().strip()

    def close(self) -> int:
        """Stops the server; how many requests it received."""
        sent, _ = self.process.communicate("", timeout=30)
        return int(sent.strip() or -1)


class _Handle:
    """A display handle that drops what it is given: the live view's cost without a front-end."""

    def update(self, *args, **kwargs) -> None:
        pass


def one(runs: int, latency: float, concurrency: int, throttled: int = 0, live: bool = False) -> tuple[float, int]:
    """(seconds, requests sent) for ``runs`` distinct runs, the first ``throttled`` answered 429;
    ``live``: with the notebook's live matrix redrawn as runs finish (as ``%%experiment`` does)."""
    from elk_jupyter.experiments.cell import LiveMatrix

    gateway = GatewayProcess(latency, throttled)
    try:
        with tempfile.TemporaryDirectory() as cache:
            state = KernelState(cache=Cache(Path(cache) / "c.sqlite3"))  # a fresh kernel: nothing finished
            client = Client("sk-bench-0000000000", base_url=gateway.base_url, model="m")
            view = LiveMatrix(lambda *args, **kwargs: _Handle())
            start = time.perf_counter()
            result = experiments.experiment(
                "run $n",
                [{"n": i} for i in range(runs)],
                client=client,
                concurrency=concurrency,
                progress=view.update if live else False,
                state=state,
            )
            if live:
                view.finish(result)  # the saved bundle: records, intervals, paired tests
            elapsed = time.perf_counter() - start
        assert result.errors == 0, result.runs[0].error
    finally:
        sent = gateway.close()
    return elapsed, sent


def floor(runs: int, latency: float, concurrency: int, http: str = "requests") -> float:
    """Seconds for the same streamed requests sent by a bare requests.Session per thread (``http``
    "requests", what the transport sends with), or a bare urllib3.PoolManager per thread ("urllib3",
    the floor of the HTTP stack under requests)."""
    import json
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import requests
    import urllib3

    gateway = GatewayProcess(latency)
    local = threading.local()

    def send(number: int) -> None:
        body = {"model": "m", "messages": [{"role": "user", "content": f"run {number}"}], "stream": True}
        if http == "urllib3":
            pool = getattr(local, "pool", None) or urllib3.PoolManager()
            local.pool = pool
            headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
            data = json.dumps(body).encode()
            response = pool.request(
                "POST", gateway.base_url + "/chat/completions", body=data, headers=headers, preload_content=False
            )
            for _ in response.stream(None):
                pass
            response.release_conn()
            return
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        with session.post(gateway.base_url + "/chat/completions", json=body, stream=True) as response:
            for _ in response.iter_content(None):
                pass

    try:
        start = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(send, range(runs)))
        return time.perf_counter() - start
    finally:
        gateway.close()


def synthetic(runs: int):
    """A finished-looking experiment of ``runs`` runs: 16 columns (4 models × 4 temperatures)."""
    from elk_jupyter.experiments.results import RunResult
    from elk_jupyter.experiments.scorers import Score
    from elk_jupyter.experiments.spec import build

    models, grid = [f"m{i}" for i in range(4)], {"temperature": [0, 0.3, 0.7, 1]}
    spec = build("Q $n", [{"n": i} for i in range(runs // 16)], models, grid, 1, "chat", None, "redraw")
    usage = {"prompt_tokens": 12, "completion_tokens": 30, "total_tokens": 42}
    done = {}
    for index, run in enumerate(spec.runs()):
        reply = {"status": "completed", "text": f"answer {index} " * 8, "usage": usage, "timing": {"total": 0.5}}
        passed = index % 3 != 0
        done[index] = RunResult(run.case, run.column, 0, f"k{index}", {}, reply, scores={"s": Score(passed, passed)})
    return spec, done


def redraw(runs: int) -> tuple[float, float]:
    """Seconds for one live redraw (the partial result as the runner builds it, its bundle, its view
    data): (the first, from nothing; one after one more run finished, as the live view redraws)."""
    from bench.common import median_time
    from elk_jupyter.experiments.redraw import RedrawMemo
    from elk_jupyter.experiments.results import ExperimentResult
    from elk_jupyter.experiments.view import bundle

    spec, done = synthetic(runs)
    last = done.pop(max(done))

    def once(memo: RedrawMemo) -> None:
        result = ExperimentResult(spec, [done[i] for i in sorted(done)], ["s"], runs + 1)
        bundle(result, final=False, memo=memo)
        result.summary_data(intervals=False)

    first = median_time(lambda: once(RedrawMemo()), 1)
    memo = RedrawMemo()
    once(memo)  # the view as it was before the last run finished
    done[runs - 1] = last

    def next_one() -> None:
        once(memo)

    return first, median_time(next_one, 3)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--runs", type=int, default=48)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    runs = 16 if args.small else args.runs
    print(f"# experiment throughput · {runs} runs · latency {args.latency:g} s · {machine()}")
    print(f"load average before: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    one(4, 0.01, 4)  # imports and first connections, outside the figures
    rows = []
    for concurrency in (1, 4, 16):
        ours, live, bare, lower = [], [], [], []
        for _ in range(args.repeats):  # in turn, so all see the same load
            ours.append(one(runs, args.latency, concurrency)[0])
            live.append(one(runs, args.latency, concurrency, live=True)[0])
            bare.append(floor(runs, args.latency, concurrency))
            lower.append(floor(runs, args.latency, concurrency, "urllib3"))
        elapsed, floor_s, live_s = statistics.median(ours), statistics.median(bare), statistics.median(live)
        lower_s = statistics.median(lower)
        ideal = math.ceil(runs / concurrency) * args.latency
        rows.append(
            [
                concurrency,
                f"{ideal:.2f}",
                f"{floor_s:.2f}",
                f"{elapsed:.2f}",
                f"{runs / ideal:.1f}",
                f"{runs / floor_s:.1f}",
                f"{runs / elapsed:.1f}",
                f"{ideal / floor_s:.0%}",
                f"{ideal / elapsed:.0%}",
                f"{live_s:.2f}",
                f"{ideal / live_s:.0%}",
                f"{ideal / lower_s:.0%}",
            ]
        )
    header = [
        "C",
        "ideal s",
        "bare s",
        "ours s",
        "ideal runs/s",
        "bare runs/s",
        "ours runs/s",
        "bare/ideal",
        "ours/ideal",
        "ours+view s",
        "ours+view/ideal",
        "bare urllib3/ideal",
    ]
    print(f"median of {args.repeats}; ours, ours with the live matrix (redrawn, then the saved bundle), a bare")
    print("requests loop and a bare urllib3 loop in turn, one gateway process each:")
    print(table(rows, header))
    print(f"load average after: {', '.join(f'{x:.1f}' for x in os.getloadavg())} (2 cores: above ~1 the figures sag)")
    if not args.small:  # the same at ten times the runs: the waves' cost, with the fixed costs spread thin
        many = runs * 10
        ours, bare, lower = [], [], []
        for _ in range(args.repeats):
            ours.append(one(many, args.latency, 16)[0])
            bare.append(floor(many, args.latency, 16))
            lower.append(floor(many, args.latency, 16, "urllib3"))
        ideal = math.ceil(many / 16) * args.latency
        shares = [f"{ideal / statistics.median(times):.0%}" for times in (ours, bare, lower)]
        print(
            f"\n{many} runs, concurrency 16 (ideal {ideal:.2f} s): ours {statistics.median(ours):.2f} s, "
            f"{shares[0]} of ideal; bare requests {shares[1]}; bare urllib3 {shares[2]}"
        )
    throttled = 16
    elapsed, sent = one(runs, args.latency, 16, throttled)
    print(
        f"\nwith the first {throttled} requests answered 429 (Retry-After 0.2 s), concurrency 16: "
        f"{elapsed:.2f} s, {sent} requests for {runs} runs (the minimum is {runs + throttled})"
    )
    rows = []
    for size in (2000,) if args.small else (2000, 16000):
        first, steady = redraw(size)
        rows.append([size, f"{steady:.3f}", f"{first:.3f}", f"{REDRAW_BEFORE[size]:.2f}", f"{steady / size * 1e6:.1f}"])
    header = ["runs", "live redraw s", "first redraw s", "before (issue 24)", "µs per run"]
    print("\n" + table(rows, header))


if __name__ == "__main__":
    main()
