"""The local reply cache (an SQLite file keyed by request identity: canonical body + gateway +
account), the replay store in front of it, and the one replay policy: replay, go live or refuse.

Only successful replies are stored, so a replay never reproduces a failure. The cache is an
optimisation: any problem with it (a file where its directory should be, an unwritable home, a
corrupt or locked database) is a miss with one warning, never a failed or stalled turn. Stdlib only.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

# Another kernel writing holds the lock for milliseconds; sqlite's default wait is 5 s per
# statement, twice a turn. Past this, skip the cache instead of stalling the turn, and do not
# knock again for a while (a store right after a locked look-up would wait once more).
BUSY_TIMEOUT = 0.1  # seconds
LOCKED_PAUSE = 10.0  # seconds without trying the cache after it was found locked


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

    def put_many(self, rows: list[tuple[str, str | None, dict, dict]]) -> None:
        """Several (key, host, request, reply) in one transaction: one sync to disk, not one each
        (an autocommitted INSERT waits for the disk every time: ~15 ms here, per experiment run)."""
        db = self._connect()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "INSERT OR REPLACE INTO replies VALUES (?, ?, ?, ?, ?)",
                [
                    (
                        key,
                        host or "",
                        json.dumps(request, ensure_ascii=False),
                        json.dumps(reply, ensure_ascii=False),
                        time.time(),
                    )
                    for key, host, request, reply in rows
                ],
            )
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Decision:
    """What to do with one request: ``origin`` is replayed (``recorded`` holds the reply), live,
    regenerated (a re-run that samples again) or refused (replay "only" and nothing recorded)."""

    origin: str
    recorded: dict | None = None

    @property
    def refused(self) -> bool:
        return self.origin == "refused"


class Replays:
    """Where a recorded reply for a request is found: the notebook's own records, then the cache.

    Notebook records are keyed by body and host (what a record stores); the cache, shared by
    every notebook and account on the machine, by body, host, path and a hash of the key.
    ``saved``, if given, yields (key, reply) pairs from saved records; it is read at the first
    look-up (the notebook is read only when a turn may replay).
    """

    def __init__(
        self,
        cache: Cache | None = None,
        warn: Callable[[str], None] = _to_stderr,
        saved: Callable[[], Iterable[tuple[str, dict]]] | None = None,
    ):
        self.cache = cache if cache is not None else Cache()  # not `or`: opening is deferred
        self.recorded: dict[str, dict] = {}  # request key -> reply dict, from notebook records
        self._saved = saved
        self._answered: set[str] = set()  # request keys and cell ids this process already answered
        self.unusable: str | None = None  # why the cache is off for this kernel
        self._warn = warn
        self._warned: set[str] = set()
        self._warn_lock = threading.Lock()  # sweeps use the cache from several threads
        self._locked_until = 0.0

    def remember(self, key: str, reply: dict) -> None:
        self.recorded.setdefault(key, reply)

    def decide(
        self, mode: str, key: str, cache_key: str | None = None, *, cell_id: str | None = None, forced: bool = False
    ) -> Decision:
        """The one replay policy, for every caller (turns, sweeps, the CLI).

        ``mode`` is auto, off or only. In auto a re-run (the same cell, or the same request, that
        this process already answered) asks for another sample, while the first run of a saved
        request (Run All of a reopened notebook) replays; a mode given for this one request
        (``forced``: ``--replay`` on the cell) decides alone.
        """
        if mode == "auto" and not forced and ({key, cell_id} & self._answered):
            return Decision("regenerated")
        recorded = self.lookup(key, cache_key) if mode != "off" else None
        if recorded is not None:
            return Decision("replayed", recorded)
        return Decision("refused" if mode == "only" else "live")

    def answered(self, key: str, cell_id: str | None = None) -> None:
        """This process answered ``key`` (in cell ``cell_id``): running it again samples again."""
        self._answered |= {key, cell_id} - {None}

    def lookup(self, key: str, cache_key: str | None = None) -> dict | None:
        if self._saved is not None:
            saved, self._saved = self._saved, None
            for saved_key, reply in saved():
                self.remember(saved_key, reply)
        found = self.recorded.get(key)
        if found is None:
            found = self._safely(lambda: self.cache.get(cache_key or key))
        return found if isinstance(found, dict) else None

    def store(self, key: str, host: str | None, request: dict, reply: dict, cache_key: str | None = None) -> None:
        self.recorded[key] = reply
        self._safely(lambda: self.cache.put(cache_key or key, host, request, reply))

    def store_many(self, items: list[tuple[str, str | None, dict, dict, str | None]]) -> None:
        """``store`` for several (key, host, request, reply, cache_key) at once, in one transaction."""
        for key, _, _, reply, _ in items:
            self.recorded[key] = reply
        rows = [(cache_key or key, host, request, reply) for key, host, request, reply, cache_key in items]
        self._safely(lambda: self.cache.put_many(rows))

    def _safely(self, action: Callable[[], object]) -> object:
        """Run a cache action; a problem is a miss (None) and one warning per kind of problem."""
        if self.unusable is not None or time.monotonic() < self._locked_until:
            return None
        try:
            return action()
        except sqlite3.OperationalError as err:
            if "locked" in str(err) or "busy" in str(err):
                self._locked_until = time.monotonic() + LOCKED_PAUSE
                self._once("locked", f"the replay cache {self.cache.path} is locked by another process: skipped")
                return None
            problem = f"{type(err).__name__}: {err}"
        except (OSError, sqlite3.Error, ValueError) as err:  # ValueError: a row that is not JSON
            problem = f"{type(err).__name__}: {err}"
        self.unusable = problem
        self.cache.close()
        self._once("unusable", f"the replay cache {self.cache.path} is unusable ({problem}): off in this kernel")
        return None

    def _once(self, kind: str, message: str) -> None:
        with self._warn_lock:
            if kind in self._warned:
                return
            self._warned.add(kind)
        self._warn(f"elk-jupyter: {message}")
