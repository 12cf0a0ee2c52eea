"""An experiment's cache writes: replayable at once in memory, written to disk by one thread in batches.

Each autocommitted SQLite INSERT waits for the disk (~15 ms on the test machine): done by each
worker after its run, that wait came straight off the throughput (78% of ideal at concurrency
16). Here a worker only hands its reply over; one writer thread takes whatever has queued up and
writes it in one transaction. ``close`` flushes, so a finished experiment is in the cache.
"""

from __future__ import annotations

import queue
import threading

_CLOSE = object()


class CacheWrites:
    def __init__(self, replays) -> None:
        self.replays = replays
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False

    def put(self, key: str, host: str | None, request: dict, reply: dict, cache_key: str | None) -> None:
        self.replays.remember(key, reply)  # this kernel replays it at once (a judge asked twice is sent once)
        with self._lock:
            closed = self._closed
            if not closed and self._thread is None:  # no thread for an experiment that sends nothing
                self._thread = threading.Thread(target=self._write, name="elk-experiment-cache", daemon=True)
                self._thread.start()
            if not closed:
                self._queue.put((key, host, request, reply, cache_key))
        if closed:  # a run that was in flight when the experiment stopped: written at once, by its worker
            self.replays.store_many([(key, host, request, reply, cache_key)])

    def close(self) -> None:
        """Write what is queued and stop the writer (a no-op when nothing was sent)."""
        with self._lock:
            thread, self._thread, self._closed = self._thread, None, True
        if thread is not None:
            self._queue.put(_CLOSE)
            thread.join()

    def _write(self) -> None:
        closing = False
        while not closing:
            batch = [self._queue.get()]
            while True:  # everything that queued up meanwhile joins this transaction
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            closing = any(item is _CLOSE for item in batch)
            items = [item for item in batch if item is not _CLOSE]
            if items:
                self.replays.store_many(items)
