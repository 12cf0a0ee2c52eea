"""One turn from prompt to record: pick the context, build the body, stream or replay, commit.

Display goes through the view the magics hand over, so this module imports neither IPython
nor anywidget and is driven the same way from a kernel, a terminal or a test.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from . import options, plan, session
from .cache import Replays
from .errors import ConfigError, ElkError, StreamError, detached, unexpected
from .reply import Reply
from .session import Notebook, Turn


@dataclass
class Outcome:
    reply: Reply
    turn: Turn
    value: object = None  # the parsed JSON in --json / --schema mode


class TurnRunner:
    def __init__(self, magics):
        self.magics = magics
        self.notebook = Notebook()
        self._client = None
        self.replays = Replays()
        self._notebook_indexed = False
        self._client_key = None
        self._produced: set[str] = set()  # request keys and cell ids this kernel already answered
        self._unusable: list[str] = []  # why saved records could not be indexed for replay

    # -- configuration
    @property
    def client(self):
        from .client import Client  # requests costs ~50 ms: not at %load_ext time

        m = self.magics
        # The environment counts too: os.environ["ELK_BASE_URL"] = ... in a cell takes effect.
        env = (os.environ.get("ELK_BASE_URL"), os.environ.get("ELK_MODEL"))
        key = (m.base_url, m.model, m.api_key_env, m.timeout, m.retries, env)
        if self._client is None or key != self._client_key:
            self._client = Client(
                base_url=m.base_url, model=m.model, api_key_env=m.api_key_env, timeout=m.timeout, max_retries=m.retries
            )
            self._client_key = key
        return self._client

    # -- a turn
    def run(self, endpoint: str, args, prompt: str, params: dict, extra: list, schema, ui) -> Outcome | None:
        """``ui`` gives ``cell`` (id, execution count), ``open_view(...)`` and ``show_json(body)``; the
        view it opens takes ``show(reply)`` per event and ``finish(reply, record, note)`` once.

        The boundary: every failure leaves as one ElkError with nothing chained and no frames, so
        no traceback mode (``%xmode Verbose`` included) can print a local holding the key.
        """
        try:
            return self._turn(endpoint, args, prompt, params, extra, schema, ui)
        except ElkError as err:
            failure = detached(err)
        except Exception as err:  # a bug, here or in a library: still one line
            failure = unexpected(err, self._secret())
        raise failure  # outside the except blocks, so Python chains nothing to it

    def _secret(self) -> str | None:
        return self._client.api_key() if self._client is not None else os.environ.get(self.magics.api_key_env)

    def _turn(self, endpoint, args, prompt, params, extra, schema, ui) -> Outcome | None:
        client = self.client
        ask = plan.build(
            self.notebook, self.magics, client.model, client.host, endpoint, args, prompt, params, extra, ui.cell
        )
        self._check_json(ask.body)
        if args.dry_run:
            ui.show_json(ask.body)
            return None
        key = session.request_key(ask.body, client.host)
        cache_key = session.request_key(ask.body, client.cache_scope())
        replay_mode, rerun = self._replay_mode(args, key, ui.cell[0])
        recorded = self._recorded(key, cache_key) if replay_mode != "off" else None
        if recorded is None and replay_mode == "only":
            raise ElkError(
                f"replay is 'only' and no recorded reply matches this request ({endpoint}, conversation "
                f"{ask.conversation.name!r}, model {ask.model!r}, host {client.host}): use --replay auto "
                "or %config ElkMagics.replay = 'auto' to run it live" + self._unusable_records()
            )
        origin = "replayed" if recorded is not None else "regenerated" if rerun else "live"
        note = ask.note + (" · regenerated: a re-run in this kernel samples again" if rerun else "")
        view = ui.open_view(endpoint, ask.conversation.name, ask.model, note, replayed=recorded is not None)
        if recorded is not None:
            reply, error = Reply.from_dict(recorded, ask.body), None
        else:
            reply, error = self._live(client, endpoint, ask.body, view)
        turn = ask.turn(endpoint, prompt, reply, client.host, origin)
        self._produced |= {key, ui.cell[0]} - {None}
        if recorded is None and turn.ok:
            self.replays.store(key, client.host, ask.body, turn.reply, cache_key)
        ask.conversation.commit(turn)
        saved, problem = self._record(turn)
        view.finish(reply, saved, " · ".join(filter(None, (_rerun_note(ask.dropped), problem))))
        if error is not None:
            raise self._explained(error, reply, turn)
        return Outcome(reply, turn, self._structured(args, schema, reply))

    def _record(self, turn: Turn) -> tuple[dict, str]:
        """(the turn's record, a problem to tell): audio bytes past ``ElkMagics.audio_inline_bytes`` go
        to a file beside the notebook; if that file cannot be written they stay in the notebook."""
        saved = session.record_of(turn)
        if not isinstance(turn.reply.get("audio"), dict):
            return saved, ""
        from pathlib import Path

        from . import record

        notebook = record.current_notebook(self.magics.shell.user_ns)
        directory = notebook.parent if notebook is not None else Path.cwd()  # a kernel runs beside its notebook
        try:
            return record.place_audio(saved, directory, self.magics.audio_inline_bytes), ""
        except ElkError as err:
            return saved, f"{err}; kept in the notebook instead"

    def _replay_mode(self, args, key: str, cell_id: str | None) -> tuple[str, bool]:
        """(replay mode, whether this is a re-run that samples again).

        A cell re-run (same cell, or the same request) in the kernel that already answered it asks
        for another sample; the first run of a saved request (Run All of a reopened notebook)
        replays. ``--replay`` on the cell, or replay = "only"/"off", decide alone.
        """
        if args.replay:
            return args.replay, False
        mode = self.magics.replay
        if mode == "auto" and (key in self._produced or cell_id in self._produced):
            return "off", True
        return mode, False

    @staticmethod
    def _explained(error: ElkError, reply: Reply, turn: Turn) -> ElkError:
        if isinstance(error, StreamError) or reply.text:
            error.message += (
                f"; partial reply kept in turn {turn.short_id} ({len(reply.text)} chars, not in the "
                f"context: %elk accept {turn.short_id} to use it)"
            )
        return error

    @staticmethod
    def _structured(args, schema, reply: Reply):
        if not (args.json or schema is not None):
            return None
        try:
            return options.parse_structured(reply.text, schema)
        except ValueError as err:
            raise StreamError(str(err)) from None

    @staticmethod
    def _check_json(body: dict) -> None:
        """Refuse, before anything is sent, a body that is not strict JSON (``-t nan``, ``-p x=@obj``)."""
        bad = options.non_finite(body)
        if bad is not None:
            raise ConfigError(f"{bad}: JSON cannot carry NaN or Infinity, use a finite number (nothing was sent)")
        try:
            json.dumps(body)
        except TypeError as err:
            raise ConfigError(f"the request holds a value JSON cannot carry ({err}); nothing was sent") from None

    @staticmethod
    def _live(client, endpoint, body, view) -> tuple[Reply, ElkError | None]:
        """Stream from the gateway into the view; a failure is returned with the partial reply."""
        from .client import collect

        reply = Reply(endpoint, body)
        try:
            collect(client.iter_send(endpoint, body), reply, lambda _event: view.show(reply))
        except ElkError as err:
            error = err
        except KeyboardInterrupt:  # the kernel's interrupt: stop at once, keep what arrived
            error = StreamError("interrupted by the user")
        except Exception as err:  # a bug or a library's surprise: the turn still ends, recorded as failed
            error = unexpected(err, client.api_key())
        else:
            return reply, None
        if reply.status == "streaming":  # failed before the stream began (no key, a bad URL, ...)
            reply.fail("error", error.message)
        return reply, error

    def _recorded(self, key: str, cache_key: str) -> dict | None:
        """A reply recorded for this request: this notebook's saved records, then the cache."""
        if not self._notebook_indexed:
            self._notebook_indexed = True
            from . import record

            path = record.current_notebook(self.magics.shell.user_ns)
            if path is not None:
                try:
                    turns, self._unusable = record.read_turns(path)
                    self.index_records(turns)
                except ElkError as err:  # an unreadable notebook only means nothing to replay from it
                    self._unusable = [str(err)]
        return self.replays.lookup(key, cache_key)

    def _unusable_records(self) -> str:
        return f" ({len(self._unusable)} saved records unusable: {self._unusable[0]})" if self._unusable else ""

    def index_records(self, turns) -> None:
        """Make these turns' replies replayable (from a restored or saved notebook)."""
        for turn in turns:
            if turn.ok:
                self.replays.remember(session.request_key(turn.request, turn.host), turn.reply)


def _rerun_note(dropped: list[Turn]) -> str:
    """What a re-run of a cell did to the context ('' when the cell ran for the first time)."""
    if not dropped:
        return ""
    later = ", ".join(t.short_id for t in dropped[1:])
    return f"Re-ran this cell: turn {dropped[0].short_id} replaced" + (
        f"; {later} dropped from the context" if later else ""
    )
