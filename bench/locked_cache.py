"""A locked replay cache (another kernel writing) costs a turn a bounded wait, not sqlite's 5 s a
statement: the cache's two statements of a turn (look up, store) on a locked database, with the
cache's busy timeout and, as the baseline, sqlite's default one.

    .venv/bin/python bench/locked_cache.py [--small]
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import machine, median_time, table  # noqa: E402
from elk_jupyter.conversation.identity import Identity  # noqa: E402
from elk_jupyter.records.cache import Replays  # noqa: E402
from elk_jupyter.records.cache_file import BUSY_TIMEOUT, Cache  # noqa: E402

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
REPLY = {"endpoint": "chat", "status": "completed", "text": "hello"}


def elk_turn(path: Path) -> None:
    """What a turn asks of the cache, as a new kernel would: look up, then store."""
    replays = Replays(Cache(path), warn=lambda _message: None)
    identity = Identity(BODY, "host")
    replays.lookup(identity)
    replays.store(identity, REPLY)


def baseline_turn(path: Path) -> None:
    """The same two statements as before the fix: sqlite3.connect's default 5 s wait on each."""
    db = sqlite3.connect(path, isolation_level=None)
    for statement, values in (("SELECT reply FROM replies WHERE key = ?", ("key",)), (INSERT, ROW)):
        try:
            db.execute(statement, values).fetchall()
        except sqlite3.OperationalError:
            pass  # locked: a miss, after the wait
    db.close()


INSERT = "INSERT OR REPLACE INTO replies VALUES (?, ?, ?, ?, ?)"
ROW = ("key", "host", "{}", "{}", 0.0)


def measure(turn, locked: bool, repeats: int, folder: Path) -> float:
    path = folder / f"{turn.__name__}-{locked}.sqlite3"
    Cache(path).put("warm", "host", Identity(BODY, "host").body_json, REPLY)  # the database and its table exist
    holder = sqlite3.connect(path, isolation_level=None)
    if locked:
        holder.execute("BEGIN EXCLUSIVE")  # another kernel in the middle of a write
    try:
        return median_time(lambda: turn(path), repeats)
    finally:
        holder.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", action="store_true", help="one repeat (CI)")
    repeats = 1 if parser.parse_args().small else 5
    with tempfile.TemporaryDirectory() as tmp:
        rows = [
            ["unlocked", "elk cache", f"{measure(elk_turn, False, repeats, Path(tmp)) * 1000:.1f} ms"],
            [
                "locked",
                f"**elk cache** (busy timeout {BUSY_TIMEOUT:g} s)",
                f"{measure(elk_turn, True, repeats, Path(tmp)) * 1000:.1f} ms",
            ],
            [
                "locked",
                "before: sqlite's default wait (baseline)",
                f"{measure(baseline_turn, True, 1, Path(tmp)) * 1000:.0f} ms",
            ],
        ]
    print(machine())
    print(table(rows, ["database", "cache", "look up + store, one turn"]))


if __name__ == "__main__":
    main()
