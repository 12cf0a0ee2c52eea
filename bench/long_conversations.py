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


def first_named(n: int) -> list[Turn]:
    """A chain of ``n`` turns whose contexts each name the first turn and the parent (a context
    policy that pins the opening turn): the shape that made the restore check quadratic."""
    turns, parent, first = [], None, None
    for i in range(n):
        turn_id = session.new_turn_id(parent, "default", {"i": i}, float(i))
        context = tuple(dict.fromkeys(c for c in (first, parent) if c))
        turns.append(
            Turn(
                id=turn_id,
                conversation="default",
                endpoint="chat",
                prompt=f"q{i}",
                request={"model": "m", "messages": []},
                reply={"text": f"a{i}"},
                status="completed",
                parent=parent,
                context=context,
            )
        )
        first, parent = first or turn_id, turn_id
    return turns


def walk_up_check(turns: list[Turn], everything: dict) -> None:
    """The check as it was before (a walk up the chain per turn, until every context id is
    found): kept here only as the baseline of the figure."""
    for turn in turns:
        wanted, node, seen = set(turn.context), turn.parent, set()
        while wanted and node is not None and node not in seen and node in everything:
            wanted.discard(node)
            seen.add(node)
            node = everything[node].parent
        assert not wanted


def pinned_first_figures(sizes) -> None:
    """Restore of contexts naming the first turn, before (walk up) and after (one numbering)."""
    rows = []
    for n in sizes:
        turns = first_named(n)
        everything = {t.id: t for t in turns}
        repeats = 3 if n <= 1000 else 1  # the baseline takes minutes at 12,000 turns
        before = min(timed(walk_up_check, turns, everything) for _ in range(repeats))
        after = min(timed(lineage.ordered, turns, {}) for _ in range(3))
        rows.append([n, f"{before * 1000:.1f} ms", f"{after * 1000:.1f} ms", f"{after / n * 1e6:.1f} µs"])
    print(table(rows, ["turns", "check before (walk up)", "whole ordered() after", "after per turn"]))
    print("contexts that name the first turn: before grows as turns², after stays flat per turn")


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
    pinned_first_figures((100, 1000) if parser.parse_args().small else (1000, 4000, 12000))


if __name__ == "__main__":
    main()
