"""One turn from an ``Ask`` to a record: plan the body, replay or stream, commit, finish the view.

The runner takes values (an ``Ask`` per cell, a ``Settings`` snapshot per turn) and a front-end
(``Frontend``: where views open), so it imports neither IPython nor anywidget and is driven the
same way from a kernel, a terminal or a test.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from elk_jupyter import redaction
from elk_jupyter.conversation import options, plan
from elk_jupyter.conversation import run as runs
from elk_jupyter.conversation.ask import Ask
from elk_jupyter.conversation.identity import Identity
from elk_jupyter.conversation.kernel import KernelState
from elk_jupyter.conversation.session import Conversations, Turn
from elk_jupyter.conversation.settings import Settings
from elk_jupyter.errors import ElkError, StreamError, detached, unexpected
from elk_jupyter.gateway.reply import Reply
from elk_jupyter.media import attachments
from elk_jupyter.records.cache import Replays
from elk_jupyter.records.cache_file import Cache
from elk_jupyter.records.turn import record_of
from elk_jupyter.tools import loop as tool_loop


class View(Protocol):
    """The live view of one turn."""

    def show(self, reply: Reply) -> None:
        """After every event (throttle here, not in the runner)."""

    def finish(self, reply: Reply, record: dict, note: str = "") -> None:
        """Once, with the turn's record and what a re-run did to the context."""


class Frontend(Protocol):
    """Where a turn shows itself (``views.IPythonFrontend`` in a kernel or a terminal)."""

    def open_view(
        self, endpoint: str, conversation: str, model: str, context: str, replayed: bool = False, images: Sequence = ()
    ) -> View:
        """A view for a turn about to stream (or replay); ``context`` is the plan's note, ``images``
        the prompt's (``attachments.shown``: a label and a small thumbnail each)."""

    def show_json(self, body: dict) -> None:
        """A dry run's exact request body."""


@dataclass
class Outcome:
    reply: Reply
    turn: Turn
    value: object = None  # the parsed JSON in --json / --schema mode


class TurnRunner:
    """Runs a conversation's turns on one ``KernelState`` (the magics', or one of its own).

    ``run`` is the entry point of a turn, from a cell or the chat panel's worker thread alike: it
    calls no IPython, and what it touches (the state's conversations and replay index) is the
    kernel's, not a module's.
    """

    def __init__(
        self,
        settings: Callable[[], Settings] = Settings,
        state: KernelState | None = None,
        *,
        locate_notebook: Callable[[], Path | None] | None = None,
        cache: Cache | None = None,
    ):
        self.settings = settings  # read at every turn: %config takes effect at once
        self.state = state if state is not None else KernelState(locate_notebook or (lambda: None), cache)
        self._client = None
        self._client_key = None

    @property
    def conversations(self) -> Conversations:
        return self.state.conversations

    @property
    def replays(self) -> Replays:
        return self.state.replays

    # -- configuration
    @property
    def client(self):
        from elk_jupyter.gateway.client import Client  # requests costs ~50 ms: not at %load_ext time

        s = self.settings()
        # The environment counts too: os.environ["ELK_BASE_URL"] = ... in a cell takes effect.
        env = (os.environ.get("ELK_BASE_URL"), os.environ.get("ELK_MODEL"))
        key = (s.base_url, s.model, s.api_key_env, s.timeout, s.retries, env)
        if self._client is None or key != self._client_key:
            client = Client(
                base_url=s.base_url, model=s.model, api_key_env=s.api_key_env, timeout=s.timeout, max_retries=s.retries
            )
            client.images = self.state.images  # the kernel's images: placeholders expand from them
            self._client, self._client_key = client, key
        return self._client

    # -- a turn
    def run(self, ask: Ask, frontend: Frontend, *, held: bool = False) -> Outcome | None:
        """Run ``ask``: None for a dry run, else the outcome; a failure is raised once the turn is
        recorded (as failed) and its view finished. One turn at a time per conversation: this waits
        for one streaming there (a chat panel's), unless the caller ``held`` its ``turn_lock``.

        The boundary: every failure leaves as one ElkError with nothing chained and no frames, so
        no traceback mode (``%xmode Verbose`` included) can print a local holding the key.
        """
        lock = None if held else self.state.turn_lock(self.conversation_of(ask))
        if lock is not None:
            lock.acquire()  # interruptible: a kernel interrupt ends the wait like any cell
        try:
            return self._turn(ask, frontend)
        except ElkError as err:
            failure = detached(err)
        except Exception as err:  # a bug, here or in a library: still one line
            failure = unexpected(err, self._secret())
        finally:
            if lock is not None:
                lock.release()
        raise failure  # outside the except blocks, so Python chains nothing to it

    def conversation_of(self, ask: Ask) -> str:
        return ask.conversation or self.settings().default_conversation

    def _secret(self) -> str | None:
        return self._client.api_key() if self._client is not None else os.environ.get(self.settings().api_key_env)

    def _turn(self, ask: Ask, frontend: Frontend) -> Outcome | None:
        settings, client = self.settings(), self.client
        # The one boundary where text becomes a request: what is sent, shown, recorded and cached
        # is the redacted prompt, system prompt and body (``redaction`` has the rule).
        texts, hidden = client.guard({"prompt": ask.prompt, "system": ask.system})
        ask = dataclasses.replace(ask, **texts) if hidden else ask
        mode = ask.replay or settings.replay
        with self.state.lock:
            planned = self._plan(settings, ask, client, mode)
        options.check_json(planned.body)
        planned.body, more = client.guard(planned.body)  # files, cells, history: all that is sent
        hidden_note = redaction.note(hidden + more)
        if ask.dry_run:
            frontend.show_json(planned.body)
            return None
        self.state.images.add(*ask.images)
        shown = {}
        opened = self._opener(frontend, ask, planned, hidden_note, shown)

        def send(body: dict) -> tuple[Reply, ElkError | None]:
            return self._send(client, ask, settings, body, shown["view"])

        try:
            ran = runs.run(
                self.replays,
                self._identity(planned, client),
                mode,
                send,
                refusal=lambda: self._refusal(ask, planned, client.host),
                forced=ask.replay is not None,
                opened=opened,
                resample=True,
            )
            turn = self._commit(ask, planned, ran, client.host)
            saved, problem = self._record(turn, settings.audio_inline_bytes)
            notes = (hidden_note, _rerun_note(planned.dropped), tool_loop.note(ran.reply), problem)
            shown["view"].finish(ran.reply, saved, " · ".join(filter(None, notes)))
        finally:
            if "view" in shown:
                self.state.announce("ended", planned.conversation.name)
        if ran.error is not None:
            raise _explained(ran.error, ran.reply, turn)
        return Outcome(ran.reply, turn, _structured(ask, ran.reply))

    def _opener(self, frontend: Frontend, ask: Ask, planned: plan.Plan, hidden_note: str, shown: dict):
        """What the run path calls once it knows the turn's origin: the turn's view opens (into
        ``shown``), and the conversation's watchers (chat panels) are told."""

        def opened(decision) -> None:
            regenerated = " · regenerated: a re-run in this kernel samples again"
            note = planned.note + (regenerated if decision.origin == "regenerated" else "")
            note += f" · {hidden_note}" if hidden_note else ""
            replayed, images = decision.recorded is not None, attachments.shown(ask.images)
            name = planned.conversation.name
            shown["view"] = frontend.open_view(ask.endpoint, name, planned.model, note, replayed, images)
            self.state.announce("opened", name, shown["view"], ask.prompt)

        return opened

    def _commit(self, ask: Ask, planned: plan.Plan, ran, host: str) -> Turn:
        """The turn joins its conversation (its context only if it succeeded)."""
        entries = [image.entry(ask.keep_images) for image in ask.images]
        turn = planned.turn(ask.endpoint, ask.prompt, ran.reply, host, ran.origin, entries)
        with self.state.lock:
            planned.conversation.commit(turn)
        return turn

    @staticmethod
    def _identity(planned: plan.Plan, client) -> Identity:
        return Identity(planned.body, client.host, client.cache_scope(), planned.where)

    def _plan(self, settings: Settings, ask: Ask, client, mode: str) -> plan.Plan:
        """The turn's plan; when the notebook recorded this turn, the plan it recorded: the body as
        planned at the record's time, if that is its body and the replay policy serves it (an
        earlier audio clip referred to by id until it expired must not turn into its transcript)."""
        planned = plan.build(self.conversations, settings, ask, client.model, client.host)
        earlier = self.replays.recorded_at(planned.where) if mode != "off" and not ask.dry_run else None
        if earlier is None or earlier.created_at is None or earlier.identity.body == planned.body:
            return planned
        again = plan.build(self.conversations, settings, ask, client.model, client.host, earlier.created_at)
        if again.body != earlier.identity.body:
            return planned
        decision = self.replays.decide(mode, self._identity(again, client), forced=ask.replay is not None)
        return again if decision.recorded is not None else planned

    @staticmethod
    def _send(client, ask, settings, body, view) -> tuple[Reply, ElkError | None]:
        """A reply streamed live into the view, through the tool loop when the cell offers tools
        (with its error, if it failed)."""
        from elk_jupyter.gateway.client import send_keeping_partial

        def step(step_body: dict) -> tuple[Reply, ElkError | None]:
            return send_keeping_partial(client, ask.endpoint, step_body, view.show, interrupt_ends_turn=True)

        if not ask.tools:
            return step(body)
        # A follow-up may chain from the step's stored response only when this turn may chain.
        chain = not (ask.stateless or settings.respond_mode == "stateless") and body.get("store") is not False
        toolset = {tool.name: tool for tool in ask.tools}
        return tool_loop.run(step, ask.endpoint, body, toolset, ask.approve, ask.max_steps, chain, client.redact)

    def _record(self, turn: Turn, inline_limit: int) -> tuple[dict, str]:
        """(the turn's record, a problem to tell): audio bytes past ``inline_limit`` go to a file
        beside the notebook; if that file cannot be written they stay in the notebook."""
        saved = record_of(turn, self.conversations.index.get)
        if not isinstance(turn.reply.get("audio"), dict):
            return saved, ""
        from elk_jupyter.records.audio_files import place_audio

        notebook = self.state.locate_notebook()
        directory = notebook.parent if notebook is not None else Path.cwd()  # a kernel runs beside its notebook
        try:
            return place_audio(saved, directory, inline_limit), ""
        except ElkError as err:
            return saved, f"{err}; kept in the notebook instead"

    def _refusal(self, ask: Ask, planned, host: str) -> str:
        unusable = self.state.unusable
        why = f" ({len(unusable)} saved records unusable: {unusable[0]})" if unusable else ""
        return (
            f"replay is 'only' and no recorded reply matches this request ({ask.endpoint}, conversation "
            f"{planned.conversation.name!r}, model {planned.model!r}, host {host}): use --replay auto "
            "or %config ElkMagics.replay = 'auto' to run it live" + why
        )

    def index_records(self, turns) -> None:
        """Make these turns' replies replayable (from a restored or saved notebook)."""
        self.state.index_turns(turns)


def _explained(error: ElkError, reply: Reply, turn: Turn) -> ElkError:
    if isinstance(error, StreamError) or reply.text:
        error.message += (
            f"; partial reply kept in turn {turn.short_id} ({len(reply.text)} chars, not in the "
            f"context: %elk accept {turn.short_id} to use it)"
        )
    return error


def _structured(ask: Ask, reply: Reply):
    if not ask.structured:
        return None
    try:
        return options.parse_structured(reply.text, ask.schema)
    except ValueError as err:
        raise StreamError(str(err)) from None


def _rerun_note(dropped: list[Turn]) -> str:
    """What a re-run of a cell did to the context ('' when the cell ran for the first time)."""
    if not dropped:
        return ""
    later = ", ".join(t.short_id for t in dropped[1:])
    return f"Re-ran this cell: turn {dropped[0].short_id} replaced" + (
        f"; {later} dropped from the context" if later else ""
    )
