"""Load time: `%load_ext elk_jupyter` in a fresh IPython process, against bare IPython and `import openai`,
and what the load imports (``python -X importtime``).

    .venv/bin/python bench/load_time.py [--small] [--before DIR]

``--before DIR`` also measures the package found in DIR (an earlier checkout, e.g. from
``git archive main | tar -x -C DIR``) in the same run, interleaved with this one. The package's
bytecode is compiled first, as installing a wheel does (PYTHONDONTWRITEBYTECODE would otherwise
make every process compile every module).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
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
LOAD = WORK["%load_ext elk_jupyter"]


def env_for(source: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(source)
    return env


def compile_package(source: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(source / "elk_jupyter")],
        env=env_for(source),
        capture_output=True,
        check=False,
    )


def measure(work: str, source: Path) -> float:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(work=work)],
        capture_output=True,
        text=True,
        check=True,
        env=env_for(source),
        cwd=source,
    )
    return float(out.stdout.split()[1])


def imported_by_load(source: Path) -> tuple[int, list[tuple[str, int]]]:
    """(modules %load_ext imports, the heaviest top-level ones by -X importtime, µs cumulative)."""
    probe = PROBE.format(work="import sys; print('--load--', file=sys.stderr); " + LOAD)
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", probe],
        capture_output=True,
        text=True,
        env=env_for(source),
        cwd=source,
    )
    lines = out.stderr.split("--load--", 1)[-1].splitlines()
    rows = [line.split("|") for line in lines if line.startswith("import time:")]
    modules = [(name.rstrip(), int(cumulative)) for _, cumulative, name in rows]
    top = [(name.strip(), us) for name, us in modules if not name.startswith("   ")]
    return len(modules), sorted(top, key=lambda item: -item[1])[:6]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--before", type=Path, help="a checkout of an earlier version, measured beside this one")
    args = parser.parse_args()
    repeats = 3 if args.small else 11
    sources = {"": ROOT} | ({" (before)": args.before.resolve()} if args.before else {})
    for source in sources.values():
        compile_package(source)
    lab = importlib.util.find_spec("jupyterlab") is not None
    print(
        f"load time after IPython is up, median of {repeats} fresh processes, JupyterLab installed: {lab} · {machine()}"
    )
    times: dict[str, list[float]] = {}
    for _ in range(repeats):  # interleaved: each round sees the same load on a shared machine
        for name, work in WORK.items():
            for tag, source in sources.items():
                if tag and work != LOAD:
                    continue
                try:
                    times.setdefault(name + tag, []).append(measure(work, source))
                except subprocess.CalledProcessError:
                    times.setdefault(name + tag, [])
    bare = statistics.median(times["bare IPython"])
    rows = []
    for name, values in times.items():
        if not values:
            rows.append([name, "not installed", ""])
            continue
        median = statistics.median(values)
        rows.append([name, f"{median * 1000:.1f} ms", f"+{(median - bare) * 1000:.1f} ms"])
    print(table(rows, ["what", "median", "added"]))
    for tag, source in sources.items():
        count, top = imported_by_load(source)
        heaviest = ", ".join(f"{name} {us / 1000:.1f} ms" for name, us in top)
        print(f"%load_ext{tag} imports {count} modules; heaviest (-X importtime, cumulative): {heaviest}")
    print("target: %load_ext adds at most 50 ms")


if __name__ == "__main__":
    main()
