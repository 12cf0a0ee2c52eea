"""Cache writes in batches: stored at once in memory by the caller, written to disk by one thread.

Each autocommitted SQLite INSERT waits for the disk (~15 ms on the test machine): done by each
experiment worker after its run, that wait came straight off the throughput (78% of ideal at
concurrency 16, issue 24). While ``Replays.batched()`` is open, a store only hands its row over;
one writer thread takes whatever has queued up within ``EVERY`` seconds of the first row and
writes it in one transaction. Closing flushes at once.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

_CLOSE = object()
# A commit costs the writer ~3 ms of CPU, most of it in the kernel (journal, sync): one per wave
# of runs was ~0.5 ms a run at concurrency 16. Rows wait at most this long for the next commit
# (each is replayable in memory at once; a crash may lose as much of the cache, never more).
EVERY = 0.25  # seconds


class BatchedWrites:
    def __init__(self, write: Callable[[list], None]) -> None:
        self._write_batch = write  # writes a list of rows in one transaction; never raises
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._closing = threading.Event()  # set by close: write what is queued now, do not wait
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
            self._write_batch([row])

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
            self._closing.set()
            thread.join()

    def _run(self) -> None:
        closing = False
        while not closing:
            batch = [self._queue.get()]
            self._closing.wait(EVERY)  # the rows of the next ``EVERY`` seconds join this transaction
            while True:  # everything that queued up meanwhile joins this transaction
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            closing = any(row is _CLOSE for row in batch)
            rows = [row for row in batch if row is not _CLOSE]
            if rows:
                self._write_batch(rows)
