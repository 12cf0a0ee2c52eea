"""Cache writes in batches: stored at once in memory by the caller, written to disk by one thread.

Each autocommitted SQLite INSERT waited for the disk (~15 ms on the test machine): done by each
experiment worker after its run, that wait came straight off the throughput (78% of ideal at
concurrency 16, issue 24). While ``Replays.batched()`` is open, a store only hands its row over;
one writer thread prepares each row as it comes (its JSON, written while the workers wait on the
network rather than all at the end) and writes what came within ``EVERY`` seconds of the first in
one transaction. Closing flushes at once.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

_CLOSE = object()
# A commit cost the writer ~3 ms of CPU while commits were synced to disk: one per wave of runs was
# ~0.5 ms a run at concurrency 16. Rows wait at most this long for the next commit (each is
# replayable in memory at once; a crash may lose as much of the cache, never more).
EVERY = 0.25  # seconds


class BatchedWrites:
    def __init__(self, prepare: Callable[[tuple], tuple | None], write: Callable[[list], None]) -> None:
        self._prepare = prepare  # a row as put, made ready to write (None: it cannot be); never raises
        self._write_batch = write  # writes a list of prepared rows in one transaction; never raises
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.missed: set[str] = set()  # cache keys read and not found while this batch is open

    def put(self, row: tuple) -> None:
        with self._lock:
            closed = self._closed
            if not closed:
                if self._thread is None:  # no thread when nothing is written
                    self._thread = threading.Thread(target=self._run, name="elk-cache-writes", daemon=True)
                    self._thread.start()
                self._queue.put(row)
        if closed:  # a run that was in flight when the batch closed: written at once, by its thread
            self._store([self._prepare(row)])

    def ask(self, keys: list[str], held: Callable[[list[str]], set | None]) -> None:
        """Ask once which of ``keys`` the cache holds (``held``: None when it cannot say); those it
        does not are ``missed``: not read again one by one while this batch is open."""
        keys = [key for key in dict.fromkeys(keys) if key not in self.missed]
        found = held(keys) if keys else set()
        if found is not None:
            self.missed.update(key for key in keys if key not in found)

    def close(self) -> None:
        """Write what is queued and stop the writer; later rows are written one by one."""
        with self._lock:
            thread, self._thread, self._closed = self._thread, None, True
        if thread is not None:
            self._queue.put(_CLOSE)
            thread.join()

    def _run(self) -> None:
        item = None
        while item is not _CLOSE:
            item = self._queue.get()
            batch, deadline = [], time.monotonic() + EVERY  # what comes within ``EVERY`` joins this transaction
            while item is not _CLOSE:
                batch.append(self._prepare(item))  # now, while the workers wait on the network
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
            self._store(batch)

    def _store(self, prepared: list) -> None:
        ready = [row for row in prepared if row is not None]
        if ready:
            self._write_batch(ready)
