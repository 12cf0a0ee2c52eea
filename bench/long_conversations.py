"""Long conversations stay linear: building the request for turn N, and restoring N turns from a
saved notebook, at 10 / 100 / 1,000 turns. Time per turn should stay flat.

    .venv/bin/python bench/long_conversations.py [--small]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import machine, table  # noqa: E402
from elk_jupyter.conversation import (
    lineage,
    session,  # noqa: E402
)
from elk_jupyter.conversation.session import Conversations, Turn  # noqa: E402
from elk_jupyter.gateway.dialects import dialect  # noqa: E402
from elk_jupyter.gateway.events import Done, TextDelta  # noqa: E402
from elk_jupyter.gateway.reply import Reply  # noqa: E402
from elk_jupyter.records import notebooks
from elk_jupyter.records import turn as record


def conversation(n: int) -> Conversations:
    notebook = Conversations()
    parent = None
    for i in range(n):
        reply = Reply("chat")
        reply.add(TextDelta(f"answer {i} " * 60))
        reply.add(Done())
        turn = Turn(
            id=session.new_turn_id(parent, "default", {"i": i}, time.time()),
            conversation="default",
            endpoint="chat",
            prompt=f"question {i} " * 20,
            request={"model": "m", "messages": []},
            reply=reply.to_dict(),
            status="completed",
            parent=parent,
            cell_id=f"cell-{i}",
        )
        notebook.conversation("default").commit(turn)
        parent = turn.id
    return notebook


def build_request(notebook: Conversations) -> dict:
    conv = notebook.conversation("default")
    history, _ = conv.context_for("a-new-cell")
    return dialect("chat").wire_body(dialect("chat").messages("system", history, "next"), "m", True)


def saved_notebook(notebook: Conversations, path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    for turn in notebook.conversation("default").turns:
        output = nbformat.v4.new_output(
            "display_data", data={"text/plain": turn.text}, metadata={record.RECORD_KEY: record.record_of(turn)}
        )
        nb.cells.append(nbformat.v4.new_code_cell("%%chat\n" + turn.prompt, outputs=[output]))
    nbformat.write(nb, path)


def restore(path: Path) -> Conversations:
    notebook = Conversations()
    lineage.merge(notebook, notebooks.load_turns(path))
    return notebook


def timed(func, *args) -> float:
    start = time.perf_counter()
    func(*args)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", action="store_true")
    sizes = (10, 100) if parser.parse_args().small else (10, 100, 1000)
    print(f"long conversations · {machine()}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            notebook = conversation(n)
            build = min(timed(build_request, notebook) for _ in range(5))
            path = Path(tmp) / f"n{n}.ipynb"
            saved_notebook(notebook, path)
            restored = min(timed(restore, path) for _ in range(3))
            assert restore(path).conversation("default").active == notebook.conversation("default").active
            rows.append(
                [
                    n,
                    f"{build * 1000:.2f} ms",
                    f"{build / n * 1e6:.1f} µs",
                    f"{restored * 1000:.1f} ms",
                    f"{restored / n * 1e6:.0f} µs",
                ]
            )
    print(table(rows, ["turns", "build request", "per turn", "restore notebook", "per turn"]))
    print("linear = the per-turn columns stay flat as turns grow")


if __name__ == "__main__":
    main()
