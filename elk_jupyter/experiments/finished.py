"""The runs an experiment's workers finished, handed to the runner that waits for them."""

from __future__ import annotations

import concurrent.futures as futures
import dataclasses
import queue
import threading


class Finished:
    """Futures as they finish (no scan of the pending), and the runner woken once for many of them:
    when the last finishes, when one fails, or when it asked to be (progress, interrupts). Woken for
    every run, it took the GIL from the workers 48 times in a 48-run experiment (issue 24)."""

    def __init__(self, count: int) -> None:
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._left = count
        self._lock = threading.Lock()
        self._wake = threading.Event()

    def add(self, future: futures.Future) -> None:
        """A done callback (in the worker's thread)."""
        self._queue.put(future)
        with self._lock:
            self._left -= 1
            last = self._left == 0
        if last or future.cancelled() or future.exception() is not None:
            self._wake.set()

    def take(self, wait: float) -> list[futures.Future]:
        """The futures finished since the last take, after up to ``wait`` seconds for a reason to wake."""
        self._wake.wait(wait)
        self._wake.clear()  # before taking: one that finishes meanwhile wakes the next take at once
        found = []
        while True:
            try:
                found.append(self._queue.get_nowait())
            except queue.Empty:
                return found


def keep_late(pending: dict, kept: dict) -> None:
    """After an interrupt, keep each run already sent as this kernel's run when it lands: it was
    billed, so a re-run neither sends it again nor counts it as replayed from the cache."""
    for future, item in pending.items():
        future.add_done_callback(lambda done, key=item.key: _keep(done, kept, key))


def _keep(future: futures.Future, kept: dict, key: str) -> None:
    run = None if future.cancelled() or future.exception() is not None else future.result()
    if run is None or not run.ok or run.replayed:
        return
    # a judge asked after the stop was refused: such a run is scored again on the re-run
    judged = all((j.get("reply") or {}).get("status") in ("completed", "incomplete") for j in run.judges)
    kept[key] = run if judged else dataclasses.replace(run, scores={}, judges=())
