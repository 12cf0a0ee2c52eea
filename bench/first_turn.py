"""First-turn cost: `%load_ext`, the first `%%chat` of a kernel and a later one, side by side.

Each run starts a fresh ipykernel (jupyter_client) in this environment, JupyterLab included, with
JPY_SESSION_NAME naming a saved notebook (as JupyterLab sets it), so the first turn reads that
notebook's records to replay from them, as it does for a user. The gateway is a local server
sending a prebuilt stream; each prompt differs, so every turn is live (a replay miss). Times are taken in the kernel
around the magic calls (no messaging), medians over the runs.

    .venv/bin/python bench/first_turn.py [--small]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from jupyter_client import KernelManager

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import ByteServer, machine, table  # noqa: E402
from bench.stream_consumption import chat_stream  # noqa: E402

LATER = 5  # later turns per kernel
PROBE = """
import json, sys, time
ip = get_ipython()
t = time.perf_counter(); ip.run_line_magic("load_ext", "elk_jupyter"); load = time.perf_counter() - t
t = time.perf_counter(); ip.run_cell_magic("chat", "--new", "hi 0"); first = time.perf_counter() - t
later = []
for i in range({later}):
    t = time.perf_counter(); ip.run_cell_magic("chat", "--new", f"hi {{i + 1}}"); later.append(time.perf_counter() - t)
heavy = sorted(m for m in ("nbformat", "jsonschema", "rfc3987_syntax") if m in sys.modules)
print("RESULT " + json.dumps({{"load": load, "first": first, "later": later, "heavy": heavy}}))
"""


def one_kernel(env: dict) -> dict:
    manager = KernelManager(kernel_name="python3")
    manager.start_kernel(env=env)
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        out = []

        def hook(msg):
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                raise RuntimeError("\n".join(msg["content"]["traceback"]))

        client.execute_interactive(PROBE.format(later=LATER), output_hook=hook, timeout=120)
        line = next(line for line in "".join(out).splitlines() if line.startswith("RESULT "))
        return json.loads(line[len("RESULT ") :])
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def saved_notebook(folder: Path) -> Path:
    """A small saved notebook (no records: reading it is what costs, not what it holds)."""
    path = folder / "analysis.ipynb"
    cell = {"cell_type": "code", "id": "c1", "metadata": {}, "execution_count": 1, "source": "1", "outputs": []}
    nb = {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb))
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", action="store_true", help="a tiny size for CI")
    kernels = 2 if parser.parse_args().small else 5
    try:
        import jupyterlab

        lab = f"JupyterLab {jupyterlab.__version__} installed"
    except ImportError:
        lab = "JupyterLab NOT installed (the cost this bench is about may not show)"
    server = ByteServer(chat_stream(20))
    with tempfile.TemporaryDirectory() as folder:
        env = dict(
            os.environ,
            ELK_API_KEY="sk-bench",
            ELK_BASE_URL=server.base_url,
            ELK_MODEL="m",
            ELK_REPLAY="auto",  # the default: the first turn looks for a recorded reply
            ELK_CACHE_DIR=str(Path(folder) / "cache"),
            JPY_SESSION_NAME=str(saved_notebook(Path(folder))),
            PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parent.parent), *sys.path]),
        )
        runs = [one_kernel(env) for _ in range(kernels)]
    server.close()
    load = statistics.median(r["load"] for r in runs)
    first = statistics.median(r["first"] for r in runs)
    later = statistics.median(t for r in runs for t in r["later"])
    print(f"first-turn cost, {kernels} fresh kernels, {LATER} later turns each · {lab} · {machine()}")
    rows = [
        ["%load_ext elk_jupyter", f"{load * 1000:.1f} ms", ""],
        ["first %%chat of the kernel", f"{first * 1000:.1f} ms", f"+{(first - later) * 1000:.1f} ms vs later"],
        ["later %%chat (baseline)", f"{later * 1000:.1f} ms", ""],
    ]
    print(table(rows, ["what", "median", "extra"]))
    heavy = sorted({m for r in runs for m in r["heavy"]})
    print(f"heavy modules imported by the turns: {', '.join(heavy) or 'none'}")
    print("targets: first turn at most 150 ms more than a later one; %load_ext at most 50 ms")


if __name__ == "__main__":
    main()
