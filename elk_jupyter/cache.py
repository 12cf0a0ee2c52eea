"""The local reply cache: an SQLite file keyed by request identity (canonical body + host).

Only successful replies are stored, so a replay never reproduces a failure. Stdlib only.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path


def default_path() -> Path:
    base = os.environ.get("ELK_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "elk-jupyter"
    )
    return Path(base) / "cache.sqlite3"


class Cache:
    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path else default_path()
        self._db: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:  # opened on first use: %load_ext stays fast
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS replies (key TEXT PRIMARY KEY, host TEXT, request TEXT, reply TEXT, stored_at REAL)"
            )
        return self._db

    def get(self, key: str) -> dict | None:
        row = self._connect().execute("SELECT reply FROM replies WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, host: str | None, request: dict, reply: dict) -> None:
        self._connect().execute(
            "INSERT OR REPLACE INTO replies VALUES (?, ?, ?, ?, ?)",
            (
                key,
                host or "",
                json.dumps(request, ensure_ascii=False),
                json.dumps(reply, ensure_ascii=False),
                time.time(),
            ),
        )

    def __len__(self) -> int:
        return self._connect().execute("SELECT COUNT(*) FROM replies").fetchone()[0]

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


class Replays:
    """Where a recorded reply for a request is found: the notebook's own records, then the cache."""

    def __init__(self, cache: Cache | None = None):
        self.cache = cache or Cache()
        self.recorded: dict[str, dict] = {}  # request key -> reply dict, from notebook records

    def remember(self, key: str, reply: dict) -> None:
        self.recorded.setdefault(key, reply)

    def lookup(self, key: str) -> dict | None:
        found = self.recorded.get(key)
        if found is None:
            try:
                found = self.cache.get(key)
            except sqlite3.Error:
                found = None  # an unreadable cache is a miss, not a failed cell
        return found

    def store(self, key: str, host: str | None, request: dict, reply: dict) -> None:
        self.recorded[key] = reply
        try:
            self.cache.put(key, host, request, reply)
        except sqlite3.Error:
            pass  # a read-only or full cache directory must not fail a successful turn
