"""The saved notebook: bytes a notebook gains per turn and per experiment run, and the time JupyterLab takes to draw a
100-turn notebook reopened with the renderer.

Real turns through a real kernel (nbclient) against the local gateway (tests/fake_gateway.py on 127.0.0.1), saved
with nbformat as JupyterLab saves them (widget state not stored: JupyterLab's default); a kind's cost per turn is the
slope between a notebook of 2 and of 8 such turns, so the fixed part (the load cell, the notebook's own metadata) is
left out. Beside each figure, its baseline: the reply's own text in UTF-8 (what any copy of it must hold).

Then JupyterLab 4 (tests/e2e/conftest.py's server, the renderer from elk_jupyter/labextension) opens the 100-turn
notebook in Chromium: seconds from navigation to the first turn drawn and to all 100 drawn, beside the same
notebook with only the turns' Markdown copies (what a front-end without the renderer shows) and with no outputs
at all (what JupyterLab itself takes to open those cells), interleaved rounds, in JupyterLab's default windowing
mode unless ``--windowing`` says otherwise.

    .venv/bin/python bench/saved_notebook.py [--small] [--no-browser] [--rounds N] [--windowing MODE] [--baseline DIR]

``--baseline DIR`` also opens the 100-turn notebook with another build of the renderer (e.g. an older checkout's
``elk_jupyter/labextension``) from a second server, in the same interleaved rounds.

``--small`` (CI) runs fewer turns and leaves the browser part out, saying so.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import nbformat  # noqa: E402
from nbclient import NotebookClient  # noqa: E402

from bench.common import machine, table  # noqa: E402
from tests.fake_gateway import FakeGateway  # noqa: E402

MIME = "application/vnd.elk-jupyter.turn.v1+json"


def reply_text(n: int) -> str:
    """A typical answer (~1,900 characters): prose, a list, a code block, a little math."""
    return (
        f"## Answer {n}\n\nThe short version: use a **generator** so the stream is read once, and keep the "
        "partial reply when it breaks. Each step below is independent of the others.\n\n"
        "1. Open the response with `with`, so the connection is released on every exit.\n"
        "2. Split the bytes into lines yourself; decode UTF-8 per complete line.\n"
        "3. Parse each `data:` frame as JSON and hand the typed event on.\n\n"
        f"```python\ndef consume(events):\n    total = 0\n    for event in events:\n        total += len(event.text)\n"
        f"    return total  # {n}\n```\n\n"
        "The cost is linear: $O(n)$ in the number of events, with a constant that the JSON decoder "
        "dominates. A reply that stops early keeps what arrived, marked *interrupted*, and the next "
        "turn does not send it back unless you accept it.\n\n"
        "- keep the request id for support\n- retry only before the first byte\n- never log the key\n\n"
        "That is the whole of it; the rest is error messages a user can act on, one line each, with the "
        "status, the gateway's code and message, and what to change. " * 2
    )


def png_bytes() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 80, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


KINDS = {
    # kind -> (the cell's magic line, the plans its turn needs, the reply text)
    "plain": lambda n: ("", [{"text": reply_text(n)}]),
    "with reasoning": lambda n: ("", [{"text": reply_text(n), "reasoning": "Let me think step by step. " * 40}]),
    "with tool steps": lambda n: (
        "--tools lookup",
        [{"text": "", "tool_calls": [("lookup", json.dumps({"city": f"Lima {n}"}))]}, {"text": reply_text(n)}],
    ),
    "with a small image": lambda n: ("--image photo.png", [{"text": reply_text(n)}]),
}
SETUP = (
    "%load_ext elk_jupyter\n"
    "def lookup(city: str) -> str:\n"
    '    """The weather in a city."""\n'
    '    return f"{city}: 18 C, clear"'
)


def run_notebook(cells: list[str], gateway: FakeGateway, plans: list[dict], folder: Path, env: dict) -> Path:
    """Execute ``cells`` in a fresh kernel (the plans queued first) and save the notebook; its path."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for plan in plans:
        gateway.plan(**plan)
    saved = os.environ.copy()
    os.environ.update(env)
    try:
        client = NotebookClient(
            nb,
            kernel_name="python3",
            timeout=180,
            store_widget_state=False,
            resources={"metadata": {"path": str(folder)}},
        )
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    if errors:
        raise RuntimeError(f"a cell failed: {errors[0].get('ename')}: {errors[0].get('evalue')}")
    path = folder / f"nb-{time.monotonic_ns()}.ipynb"
    nbformat.write(nb, str(path))
    return path


def turn_cells(kind: str, count: int) -> tuple[list[str], list[dict], int]:
    cells, plans, reply_bytes = [SETUP], [], 0
    for n in range(count):
        line, kind_plans = KINDS[kind](n)
        cells.append(f"%%chat {line}\nQuestion {n}: how do I read a stream safely?".replace("%%chat \n", "%%chat\n"))
        plans += kind_plans
        reply_bytes += len(kind_plans[-1]["text"].encode())
    return cells, plans, reply_bytes


def experiment_cell(cases: int) -> str:
    inline = " ".join(f"--case city=City{i} answer=A{i}" for i in range(cases))
    return f"%%experiment -m m1,m2 -g temperature=0,1 {inline} --score 'icontains(\"$answer\")'\nWhere is $city?"


def parts_of(path: Path) -> dict:
    """Bytes of a saved notebook by part: our bundle, the Markdown copy, the record metadata, the rest."""
    nb = json.loads(path.read_text())
    parts = {"view bundle": 0, "Markdown copy": 0, "record (metadata)": 0}
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            parts["view bundle"] += len(json.dumps(data.get(MIME, ""), indent=1).encode()) if MIME in data else 0
            parts["Markdown copy"] += len(json.dumps(data.get("text/markdown", "")).encode()) if data else 0
            parts["record (metadata)"] += len(json.dumps(output.get("metadata", {}), indent=1).encode())
    return parts


def bytes_per_turn(gateway: FakeGateway, folder: Path, env: dict, few: int, many: int) -> list:
    rows = []
    (folder / "photo.png").write_bytes(png_bytes())
    for kind in KINDS:
        sizes, parts, replies = {}, {}, {}
        for count in (few, many):
            cells, plans, replies[count] = turn_cells(kind, count)
            path = run_notebook(cells, gateway, plans, folder, env)
            sizes[count], parts[count] = path.stat().st_size, parts_of(path)
        turns = many - few
        per_turn = (sizes[many] - sizes[few]) / turns
        reply = (replies[many] - replies[few]) / turns
        split = ", ".join(f"{name} {(parts[many][name] - parts[few][name]) / turns / 1024:.1f}" for name in parts[many])
        rows.append([kind, f"{per_turn / 1024:.1f} KB", f"{reply / 1024:.1f} KB", f"{per_turn / reply:.1f}x", split])
    sizes = {}
    for cases in (2, 4):  # 2 models x 2 temperatures x cases = 8 and 16 runs
        path = run_notebook([SETUP, experiment_cell(cases)], gateway, [], folder, env)
        sizes[cases] = path.stat().st_size
    runs = 8
    per_run = (sizes[4] - sizes[2]) / runs
    rows.append(["experiment run", f"{per_run / 1024:.2f} KB", "-", "-", f"16 runs: {sizes[4] / 1024:.0f} KB in all"])
    return rows


def parts_of_last(path: Path) -> int:
    """Bytes of the last cell's record (output metadata)."""
    nb = json.loads(path.read_text())
    return sum(len(json.dumps(o.get("metadata", {}), indent=1).encode()) for o in nb["cells"][-1].get("outputs", []))


def markdown_only(path: Path, out: Path) -> None:
    """The same notebook with our bundle taken out of each output: the Markdown copy is what shows."""
    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            output.get("data", {}).pop(MIME, None)
    nbformat.write(nb, str(out))


def without_outputs(path: Path, out: Path) -> None:
    """The same cells with no outputs: what JupyterLab itself takes to open and draw the notebook."""
    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        cell["outputs"] = []
    nbformat.write(nb, str(out))


DRAWN = """([selector, text, want]) => {
  const panels = [...document.querySelectorAll(selector)];
  const drawn = panels.filter((p) => p.textContent.includes(text)).length;
  return drawn >= want ? drawn : false;
}"""
# The last turn's formula typeset: the renderer typesets a turn drawn out of sight once it comes into view.
LAST_TYPESET = """(selector) => {
  const panels = document.querySelectorAll(selector);
  return panels.length > 0 && panels[panels.length - 1].querySelector('mjx-container') !== null;
}"""
BASELINE = "renderer, baseline build (--baseline)"
# What each notebook shows per turn once drawn: (its elements, a text each holds).
SHOWN = {
    "renderer": (".jp-NotebookPanel .elk-panel", "Answer "),
    "Markdown copy only": (".jp-NotebookPanel .jp-RenderedMarkdown", "Answer "),
    "no outputs (JupyterLab's floor)": (".jp-NotebookPanel .jp-InputArea-editor", "Question "),
}


def open_times(folder: Path, notebooks: dict, turns: int, rounds: int, windowing: str, baseline: Path | None) -> list:
    import contextlib
    import shutil

    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import CHROME_ARGS, CHROMIUM, lab_home, lab_server

    def server(stack, label: str, labextension: Path | None) -> str:
        home, data = folder / f"home-{label}", folder / f"data-{label}"
        if labextension is not None:  # lab_home installs this checkout's build unless one is there already
            shutil.copytree(labextension, data / "labextensions" / "elk-jupyter-renderer")
        env = dict(os.environ, **lab_home(home, data), PYTHONPATH=str(ROOT))
        tracker = home / "settings" / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
        tracker.write_text(json.dumps({"windowingMode": windowing}))
        return stack.enter_context(lab_server(folder, env, log_name=f"bench-saved-notebook-{label}.log"))

    opened = {name: (path, "this") for name, path in notebooks.items()}
    if baseline is not None:  # the same notebook drawn by another build of the renderer, in the same rounds
        opened = {"renderer": opened.pop("renderer"), BASELINE: (notebooks["renderer"], "baseline"), **opened}
    times = {name: [] for name in opened}
    with contextlib.ExitStack() as stack, sync_playwright() as p:
        bases = {"this": server(stack, "this", None)}
        if baseline is not None:
            bases["baseline"] = server(stack, "baseline", baseline)
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROME_ARGS)
        for _ in range(rounds):
            for name, (path, build) in opened.items():
                shown = SHOWN[name if name in SHOWN else "renderer"]
                context = browser.new_context(viewport={"width": 1100, "height": 900})
                page = context.new_page()
                # JupyterLab itself loaded and idle first: what is timed is opening the file from its file browser.
                page.goto(bases[build] + "/lab?reset")
                entry = page.locator(f".jp-DirListing-item[title*='{path.name}']").first
                entry.wait_for(timeout=90_000)
                page.wait_for_timeout(500)
                start = time.perf_counter()
                entry.dblclick()
                page.wait_for_function(DRAWN, arg=[*shown, 1], timeout=90_000, polling=20)
                first = time.perf_counter() - start
                page.wait_for_function(DRAWN, arg=[*shown, turns], timeout=180_000, polling=50)
                every = time.perf_counter() - start
                typeset = None
                if name.startswith("renderer"):  # the Markdown copy shows math as code: nothing to typeset
                    scrolled = time.perf_counter()
                    page.locator(shown[0]).last.scroll_into_view_if_needed()
                    page.wait_for_function(LAST_TYPESET, arg=shown[0], timeout=30_000, polling="raf")
                    typeset = time.perf_counter() - scrolled
                times[name].append((first, every, typeset))
                context.close()
        browser.close()
    rows = []
    for name, values in times.items():
        first = statistics.median(v[0] for v in values)
        every = statistics.median(v[1] for v in values)
        typeset = f"{statistics.median(v[2] for v in values) * 1000:.0f} ms" if values[0][2] is not None else "-"
        size = f"{opened[name][0].stat().st_size / 1024:.0f} KB"
        rows.append([name, size, f"{first:.2f} s", f"{every:.2f} s", typeset])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", action="store_true", help="CI: fewer turns, no browser")
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of opening the 100-turn notebook")
    parser.add_argument(
        "--windowing",
        default="contentVisibility",
        choices=["contentVisibility", "none", "full", "defer"],
        help="JupyterLab's notebook windowing mode (its default: contentVisibility)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another build of the renderer (an older checkout's elk_jupyter/labextension), opened in the same rounds",
    )
    args = parser.parse_args()
    few, many, turns = (1, 3, 10) if args.small else (2, 8, 100)
    print(f"saved notebook · {machine()}")
    gateway = FakeGateway()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        env = {
            "ELK_API_KEY": "sk-bench",
            "ELK_BASE_URL": gateway.base_url,
            "ELK_MODEL": "m",
            "ELK_REPLAY": "off",
            "ELK_CACHE_DIR": str(folder / "cache"),
            "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path]),
        }
        rows = bytes_per_turn(gateway, folder, env, few, many)
        cells, plans, replies = turn_cells("plain", turns)
        renderer = run_notebook(cells, gateway, plans, folder, env).rename(folder / "hundred.ipynb")
        size, last = renderer.stat().st_size, parts_of_last(renderer)
        rows.append(
            [
                f"plain, {turns} turns in one conversation",
                f"{size / turns / 1024:.1f} KB",
                f"{replies / turns / 1024:.1f} KB",
                f"{size / replies:.1f}x",
                f"the last turn's record {last / 1024:.1f} KB (earlier turns named, not copied)",
            ]
        )
        print(f"\nbytes a saved notebook gains (slope between {few} and {many} turns; experiment: 8 and 16 runs)")
        print(table(rows, ["per", "bytes", "reply text (baseline)", "ratio", "of which, KB: view, Markdown, record"]))
        print("goal: at most 12 KB per plain turn")
        if args.small or args.no_browser:
            skipped = "--small" if args.small else "--no-browser"
            print(f"\nopening a {turns}-turn notebook in JupyterLab: skipped ({skipped})")
            gateway.close()
            return
        plain, empty = folder / "hundred-markdown.ipynb", folder / "hundred-empty.ipynb"
        markdown_only(renderer, plain)
        without_outputs(renderer, empty)
        notebooks = {"renderer": renderer, "Markdown copy only": plain, "no outputs (JupyterLab's floor)": empty}
        rows = open_times(folder, notebooks, turns, args.rounds, args.windowing, args.baseline)
    gateway.close()
    print(
        f"\nopening a {turns}-turn notebook in JupyterLab 4 (Chromium, windowing mode {args.windowing}), "
        f"median of {args.rounds} interleaved rounds"
    )
    print(
        table(
            rows,
            [
                "outputs",
                "file",
                "first turn drawn",
                f"all {turns} drawn",
                "scrolled to the last turn: its formula typeset",
            ],
        )
    )
    print("goals: first turn drawn within 1 s, all within 5 s")


if __name__ == "__main__":
    main()
