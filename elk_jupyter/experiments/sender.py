"""Sending an experiment's requests: a client per worker thread and one backoff shared by all.

A 429 (or a 502/503/504) pauses *every* worker until its ``Retry-After`` (or an exponential delay),
then the run that got it tries again: each worker retrying on its own turns one slowdown into a
thundering herd (https://platform.openai.com/docs/guides/rate-limits#retrying-with-exponential-backoff).
The workers' clients retry nothing themselves, so this is the one retry policy of an experiment;
a run whose stream had started is never retried (its bytes may be billed).
"""

from __future__ import annotations

import threading
import time

from elk_jupyter.errors import APIError
from elk_jupyter.gateway.client import Client, send_keeping_partial
from elk_jupyter.gateway.reply import Reply

RETRY_STATUSES = frozenset({429, 502, 503, 504})


class Backoff:
    """One pause for every worker of an experiment."""

    def __init__(self) -> None:
        self._until = 0.0
        self._lock = threading.Lock()
        self.pauses = 0  # how many slow-downs were asked for (for the bench and the summary)

    def wait(self) -> None:
        while (left := self._until - time.monotonic()) > 0:
            time.sleep(min(left, 0.25))

    def slow_down(self, seconds: float) -> None:
        with self._lock:
            self.pauses += 1
            self._until = max(self._until, time.monotonic() + seconds)


class Sender:
    def __init__(self, client: Client, endpoint: str, max_attempts: int, max_retry_after: float, stop, workers: int):
        # One client for every worker: it sends through the adapter's thread-safe pools, sized for them;
        # its own retries are off: the backoff is shared.
        self.client, self.endpoint = client.copy(max_retries=0, connections=workers), endpoint
        self.max_attempts, self.max_retry_after, self.stop = max_attempts, max_retry_after, stop
        self.backoff = Backoff()

    def send(self, body: dict) -> Reply:
        """Send one request; a retryable status pauses every worker, then this one tries again."""
        client = self.client
        for attempt in range(1, self.max_attempts + 1):
            self.backoff.wait()
            reply, error = send_keeping_partial(client, self.endpoint, body)  # never raises an ElkError
            if not isinstance(error, APIError):
                return reply
            delay = error.retry_after if error.retry_after is not None else 0.5 * 2 ** (attempt - 1)
            retry = error.status in RETRY_STATUSES and not reply.text and delay <= self.max_retry_after
            if not retry or attempt == self.max_attempts or self.stop.is_set():
                return reply
            self.backoff.slow_down(delay)
        return reply
