"""The local reply cache (an SQLite file, ``cache_file``), the replay index in front of it (every
record of the notebook), and the one replay policy: replay, go live or refuse.

Only successful replies are stored, so a replay never reproduces a failure. The cache is an
optimisation: any problem with it (a file where its directory should be, an unwritable home, a
locked database) is a miss with one warning, never a failed or stalled turn; a damaged database
file is set aside, and a new one is started. Stdlib only.
"""

from __future__ import annotations

import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass

from elk_jupyter.conversation.identity import Identity, Where
from elk_jupyter.records.cache_file import Cache, damaged
from elk_jupyter.records.cache_writes import BatchedWrites

LOCKED_PAUSE = 10.0  # seconds without trying the cache after it was found locked


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


@dataclass(frozen=True)
class Recorded:
    """One saved record as replay sees it: the request's identity, its reply, and when it was
    planned (a replayed turn is planned with this clock, not today's: audio ids expire)."""

    identity: Identity
    reply: dict
    created_at: float | None = None


class Replays:
    """Where a recorded reply for a request is found: the notebook's own records, then the cache.

    Every record of the notebook is kept (grouped by body and host, in notebook order), and a
    request takes the one asked where it is asked (``Where.matches``: cell, conversation and
    position, case and repeat). The cache, shared by every notebook and account on the machine,
    is keyed by body, host, path, a hash of the key and the shared part of where.
    ``saved``, if given, yields ``Recorded`` from saved records; it is read at the first look-up
    (the notebook is read only when a turn may replay).
    """

    def __init__(
        self,
        cache: Cache | None = None,
        warn: Callable[[str], None] = _to_stderr,
        saved: Callable[[], Iterable[Recorded]] | None = None,
    ):
        self.cache = cache if cache is not None else Cache()  # not `or`: opening is deferred
        self.recorded: dict[str, list[Recorded]] = {}  # body key -> every record of that body
        self._places: dict[tuple, Recorded] = {}  # ("cell", id) / (conversation, position) -> its record
        self._saved = saved
        self._answered: set[str] = set()  # request keys and cell ids this process already answered
        self.unusable: str | None = None  # why the cache is off for this kernel
        self._warn = warn
        self._warned: set[str] = set()
        self._lock = threading.Lock()  # experiments use the index and the cache from several threads
        self._locked_until = 0.0
        self._writes: BatchedWrites | None = None  # open while an experiment runs (``batched``)

    def remember(self, record: Recorded) -> None:
        """Index a saved record (after those already indexed: the notebook's order)."""
        with self._lock:
            self._index(record, first=False)

    def _index(self, record: Recorded, first: bool) -> None:
        group = self.recorded.setdefault(record.identity.body_key, [])
        group.insert(0, record) if first else group.append(record)
        for place in _places(record.identity.where):
            if first or place not in self._places:
                self._places[place] = record

    def decide(self, mode: str, identity: Identity, *, forced: bool = False) -> Decision:
        """The one replay policy, for every caller (turns, experiment runs, judges, the CLI).

        ``mode`` is auto, off or only. In auto a re-run (the same cell, or the same request, that
        this process already answered) asks for another sample, while the first run of a saved
        request (Run All of a reopened notebook) replays; a mode given for this one request
        (``forced``: ``--replay`` on the cell) decides alone.
        """
        asked = {identity.key, identity.where.cell}
        if mode == "auto" and not forced and asked & self._answered:
            return Decision("regenerated")
        recorded = self.lookup(identity) if mode != "off" else None
        if recorded is not None:
            return Decision("replayed", recorded)
        return Decision("refused" if mode == "only" else "live")

    def answered(self, identity: Identity) -> None:
        """This process answered this request (in its cell): running it again samples again."""
        self._answered |= {identity.key, identity.where.cell} - {None}

    def recorded_at(self, where: Where) -> Recorded | None:
        """The saved record of a turn asked at ``where`` (its cell, else its conversation and
        position), whatever its body: the decision a replay repeats."""
        self._read_saved()
        for place in _places(where):
            if place in self._places:
                return self._places[place]
        return None

    def lookup(self, identity: Identity) -> dict | None:
        self._read_saved()
        with self._lock:
            group = list(self.recorded.get(identity.body_key, ()))
        found = _best(group, identity)
        writes = self._writes
        if found is None and writes is not None and identity.cache_key in writes.missed:
            return None  # asked already in this batch (the budget check): no second read of the disk
        if found is None:
            found = self._safely(lambda: self.cache.get(identity.cache_key))
            if found is None and writes is not None:
                writes.missed.add(identity.cache_key)
        return found if isinstance(found, dict) else None

    def prefetch(self, identities: Iterable[Identity]) -> None:
        """While a batch is open, one read of the cache for many requests (``BatchedWrites.ask``):
        each experiment worker read it before sending, behind the writer's commit (~5 ms a run)."""
        if self._writes is not None:
            self._writes.ask(
                [i.cache_key for i in identities], lambda keys: self._safely(lambda: self.cache.held(keys))
            )

    def _read_saved(self) -> None:
        with self._lock:
            saved, self._saved = self._saved, None
            for record in saved() if saved is not None else ():
                self._index(record, first=False)

    def store(self, identity: Identity, reply: dict, keep: bool = True) -> None:
        """A reply this process got: it answers its request here from now on; with ``keep``, the
        cache keeps it for other kernels too."""
        with self._lock:
            self._index(Recorded(identity, reply), first=True)
        writes = self._writes
        if keep and writes is not None:
            writes.put((identity.cache_key, identity.host, identity.body_json, reply))
        elif keep:
            self._safely(lambda: self.cache.put(identity.cache_key, identity.host, identity.body_json, reply))

    @contextmanager
    def batched(self):
        """While open, ``store`` keeps replies in memory at once and the cache writes them in
        batches from one thread (an experiment's workers do not each wait for the disk), and a key
        the cache did not have is not read again (an experiment looks each run up for its budget,
        then on the run path; the second read would wait behind the writer's commit). Flushed on
        the way out."""
        writes = BatchedWrites(lambda rows: self._safely(lambda: self.cache.put_many(rows)))
        self._writes = writes
        try:
            yield self
        finally:
            self._writes = None
            writes.close()

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
        except sqlite3.DatabaseError as err:
            problem = f"{type(err).__name__}: {err}"
            if damaged(err) and self._set_aside(problem):
                return None
        except (OSError, sqlite3.Error, ValueError) as err:  # ValueError: a row that is not JSON
            problem = f"{type(err).__name__}: {err}"
        self.unusable = problem
        self.cache.close()
        self._once("unusable", f"the replay cache {self.cache.path} is unusable ({problem}): off in this kernel")
        return None

    def _set_aside(self, problem: str) -> bool:
        """Move a damaged file aside, once per kernel: this look-up or write is a miss, the next use
        starts a new cache. False when it cannot be moved (the cache is then off, as for any problem)."""
        if "damaged" in self._warned:
            return False
        try:
            aside = self.cache.set_aside()
        except OSError:
            return False
        self._once("damaged", f"the replay cache {self.cache.path} was damaged ({problem}): moved to {aside.name}")
        return True

    def _once(self, kind: str, message: str) -> None:
        with self._lock:
            if kind in self._warned:
                return
            self._warned.add(kind)
        self._warn(f"elk-jupyter: {message}")


def _places(where: Where) -> list[tuple]:
    places = [("cell", where.cell)] if where.cell is not None else []
    return places + ([(where.conversation, where.position)] if where.position is not None else [])


def _best(records, asked: Identity) -> dict | None:
    """The reply of the record that answers ``asked`` where it is asked: one made in the same cell
    first, then at the same place, then one that says nowhere (an old record). A reply this process
    got knows its scope (path, account) and answers only there; a saved record names its host only."""
    best, rank, where = None, 0, asked.where
    for record in records:
        made = record.identity.where
        scoped = record.identity.scope is not None and asked.scope is not None
        if not made.matches(where) or (scoped and record.identity.scope != asked.scope):
            continue
        score = 3 if made.cell is not None and made.cell == where.cell else 2 if made.shared() else 1
        if score > rank:
            best, rank = record.reply, score
    return best
