"""One kernel's state, owned by the magics and passed down: its conversations, the replay index
(its notebook's turn and experiment records, then the cache), the attachment store and the
finished experiment runs. No module global holds any of it, so ``%%chat``, ``%%experiment``,
``sweep()`` and the chat panel of one kernel share one replay index.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from elk_jupyter.conversation.identity import Identity, Where
from elk_jupyter.conversation.session import Conversations, Turn
from elk_jupyter.errors import ElkError
from elk_jupyter.media.attachments import Images
from elk_jupyter.records.cache import Recorded, Replays
from elk_jupyter.records.cache_file import Cache


class KernelState:
    def __init__(self, locate_notebook: Callable[[], Path | None] = lambda: None, cache: Cache | None = None):
        self.locate_notebook = locate_notebook
        self.conversations = Conversations()
        self.images = Images()
        self.replays = Replays(cache, saved=self._saved)
        # (cache scope, experiment id) -> run key -> RunResult: what ran here, so a re-run resumes.
        # The scope (base URL with its path, account hash) keeps /staging/v1's runs from /prod/v1.
        self.finished: dict[tuple[str, str], dict] = {}
        self.unusable: list[str] = []  # why saved records could not be indexed for replay
        # Held while a turn is planned and while it joins its conversation (never while it streams):
        # a chat-panel message on a worker thread and a cell then never interleave those steps.
        self.lock = threading.RLock()
        # One turn at a time per conversation, whichever front-end asks (a cell waits, the chat panel
        # refuses): two replies streaming into one history would both continue the same context.
        self._turn_locks: dict[str, threading.Lock] = {}
        # Front-ends showing a conversation (the chat panels): told when one of its turns opens and ends.
        self.watchers: weakref.WeakSet = weakref.WeakSet()

    def turn_lock(self, conversation: str) -> threading.Lock:
        with self.lock:
            return self._turn_locks.setdefault(conversation, threading.Lock())

    def announce(self, event: str, conversation: str, view=None, prompt: str = "") -> None:
        """Tell every watcher that a turn of ``conversation`` opened (with its live ``view``) or ended.
        A watcher's failure is its own: it never fails the turn."""
        for watcher in list(self.watchers):
            try:
                watcher.turn_event(event, conversation, view, prompt)
            except Exception:  # noqa: BLE001, S112 - a closed panel's comm, say: the turn goes on
                continue

    def finished_runs(self, scope: str, experiment_id: str) -> dict:
        return self.finished.setdefault((scope, experiment_id), {})

    def index_turns(self, turns: Iterable[Turn]) -> None:
        """Make these turns replayable (a restored notebook), their kept image bytes re-sendable."""
        for turn in turns:
            self.images.remember(turn.attachments)
            if turn.ok:
                self.replays.remember(recorded_turn(turn))

    def _saved(self) -> Iterator[Recorded]:
        """Every successful record of this kernel's notebook, turns then experiment runs and judges."""
        from elk_jupyter.records import notebooks
        from elk_jupyter.records.experiment import iter_experiments, validate  # the experiment record format

        path = self.locate_notebook()
        if path is None:
            return
        try:
            turns, self.unusable = notebooks.read_turns(path)
            experiments = list(iter_experiments(notebooks.read_json(path)))
        except ElkError as err:  # an unreadable notebook only means nothing to replay from it
            self.unusable = [str(err)]
            return
        for turn in turns:
            self.images.remember(turn.attachments)  # kept image bytes: a restored turn re-sends them
            if turn.ok:
                yield recorded_turn(turn)
        for record in experiments:
            if not validate(record):
                yield from recorded_runs(record)


def where_of(turn: Turn) -> Where:
    """Where a recorded turn was asked; a record from before ``position`` says only its cell."""
    if turn.position is None:
        return Where(cell=turn.cell_id)
    return Where(turn.conversation, turn.position, turn.cell_id)


def recorded_turn(turn: Turn) -> Recorded:
    return Recorded(Identity(turn.request, turn.host, where=where_of(turn)), turn.reply, turn.created_at)


def recorded_runs(record: dict) -> Iterator[Recorded]:
    """The successful runs of a valid experiment record (at their case and repeat) and their judge
    calls (anywhere: a verdict is named by its prompt)."""
    for run in record.get("runs") or ():
        host = run.get("host")
        where = Where(case=run["case"], repeat=run["repeat"])
        for item, at in ((run, where), *((judge, Where()) for judge in run.get("judges") or ())):
            reply, request = item.get("reply") or {}, item.get("request")
            if isinstance(request, dict) and reply.get("status") in ("completed", "incomplete"):
                yield Recorded(Identity(request, host, where=at), reply)
