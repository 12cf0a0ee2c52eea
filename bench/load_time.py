"""Load time: `%load_ext elk_jupyter` in a fresh IPython process, against bare IPython and `import openai`.

.venv/bin/python bench/load_time.py [--small]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import machine, table  # noqa: E402

PROBE = """
import time
t0 = time.perf_counter()
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
t1 = time.perf_counter()
{work}
print(t1 - t0, time.perf_counter() - t1)
"""
WORK = {
    "bare IPython": "pass",
    "%load_ext elk_jupyter": "shell.run_line_magic('load_ext', 'elk_jupyter')",
    "import openai": "import openai",
}


def measure(work: str) -> float:
    out = subprocess.run([sys.executable, "-c", PROBE.format(work=work)], capture_output=True, text=True, check=True)
    return float(out.stdout.split()[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", action="store_true")
    repeats = 3 if parser.parse_args().small else 11
    print(f"load time after IPython is up, median of {repeats} fresh processes · {machine()}")
    rows = []
    medians = {}
    for name, work in WORK.items():
        try:
            medians[name] = statistics.median(measure(work) for _ in range(repeats))
        except subprocess.CalledProcessError:
            rows.append([name, "not installed", ""])
            continue
        rows.append(
            [name, f"{medians[name] * 1000:.1f} ms", f"+{(medians[name] - medians['bare IPython']) * 1000:.1f} ms"]
        )
    print(table(rows, ["what", "median", "added"]))
    print("target: %load_ext adds at most 150 ms")


if __name__ == "__main__":
    main()
