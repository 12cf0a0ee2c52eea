"""The replay cache's SQLite file: opened on first use, one reply a row (keyed by request identity:
canonical body + gateway + account + where it was asked), rows written in batches, a damaged file
told apart (``damaged``) and set aside. ``records.cache`` decides what to do with what it holds.
Stdlib only.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

# Another kernel writing holds the lock for milliseconds; sqlite's default wait is 5 s per
# statement, twice a turn. Past this, the cache is skipped instead of stalling the turn (and not
# knocked on again for a while: ``records.cache.LOCKED_PAUSE``).
BUSY_TIMEOUT = 0.1  # seconds


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
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, check_same_thread=False, isolation_level=None)
            try:
                # No fsync: a commit waited ~1.5 ms for the disk (at the end of every experiment, at the first
                # turn of a new cache). A crash of the program loses nothing; one of the machine may lose the
                # last writes or damage the file, which is then set aside (``records.cache.Replays``): every reply
                # is in its notebook's records too (https://www.sqlite.org/pragma.html#pragma_synchronous).
                db.execute("PRAGMA synchronous=OFF")
                db.execute(
                    "CREATE TABLE IF NOT EXISTS replies (key TEXT PRIMARY KEY, host TEXT, request TEXT, reply TEXT, stored_at REAL)"
                )
            except sqlite3.Error:
                db.close()
                raise
            self._db = db
        return self._db

    def get(self, key: str) -> dict | None:
        row = self._connect().execute("SELECT reply FROM replies WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def held(self, keys: list[str]) -> set[str]:
        """Which of ``keys`` the cache holds: one read for many (an experiment's runs), not one each."""
        db, found = self._connect(), set()
        for start in range(0, len(keys), 500):  # old SQLite builds allow at most 999 ? parameters
            chunk = keys[start : start + 500]
            query = f"SELECT key FROM replies WHERE key IN ({','.join('?' * len(chunk))})"
            found.update(row[0] for row in db.execute(query, chunk))
        return found

    def put(self, key: str, host: str | None, request: str, reply: dict) -> None:
        self._connect().execute(_INSERT, _row(key, host, request, reply))

    def put_many(self, rows: list[tuple[str, str | None, str, dict]]) -> None:
        """Several (key, host, request JSON, reply) in one transaction, not one each (each is a write
        of the journal and the file, and waited ~15 ms for the disk when commits were synced)."""
        db = self._connect()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(_INSERT, [_row(*row) for row in rows])
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def set_aside(self) -> Path:
        """Move a damaged database file out of the way (the next use starts a new one); its new path."""
        self.close()
        aside = self.path.with_name(f"{self.path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        self.path.replace(aside)
        self.path.with_name(self.path.name + "-journal").unlink(missing_ok=True)  # the old file's, if any
        return aside


_INSERT = "INSERT OR REPLACE INTO replies VALUES (?, ?, ?, ?, ?)"


def _row(key: str, host: str | None, request: str, reply: dict) -> tuple:
    """A reply to ``request``, given as JSON (``Identity.body_json``: written already for the keys)."""
    return key, host or "", request, json.dumps(reply, ensure_ascii=False), time.time()


def damaged(err: sqlite3.DatabaseError) -> bool:
    """SQLITE_NOTADB or SQLITE_CORRUPT: the file is not, or no longer, a database (not one this
    process may not use: locked, read-only, a full disk)."""
    return "file is not a database" in str(err) or "malformed" in str(err)
