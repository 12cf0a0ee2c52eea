"""One turn from prompt to record: pick the context, build the body, stream or replay, commit.

Display goes through the view the magics hand over, so this module imports neither IPython
nor anywidget and is driven the same way from a kernel, a terminal or a test.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from . import endpoints, options, session
from .cache import Replays
from .errors import ConfigError, ElkError, StreamError, detached, unexpected
from .reply import Reply
from .session import Conversation, Notebook, Turn


@dataclass
class Plan:
    """A turn about to be sent: its conversation, context and exact body."""

    conversation: Conversation
    chain: list[Turn]  # the conversation's context before this turn
    dropped: list[Turn]  # turns a re-run of this cell takes out of the context
    history: list[Turn]  # the earlier turns actually sent (after the context policy)
    model: str
    body: dict
    mode: str | None  # responses: chain | stateless
    note: str  # what the panel says about the context
    cell: tuple  # (cell id, execution count)

    def turn(self, turn_id, endpoint, prompt, reply, host, replayed) -> Turn:
        return Turn(
            id=turn_id,
            conversation=self.conversation.name,
            endpoint=endpoint,
            prompt=prompt,
            request=self.body,
            reply=reply.to_dict(),
            status=reply.status,
            parent=self.chain[-1].id if self.chain else None,
            context=tuple(t.id for t in self.history),
            context_tokens=session.context_cost(self.history),
            cell_id=self.cell[0],
            execution_count=self.cell[1],
            system=self.conversation.system,
            mode=self.mode,
            host=host,
            replayed=replayed,
        )


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
        plan = self._plan(endpoint, args, prompt, params, extra, ui.cell)
        if args.dry_run:
            ui.show_json(plan.body)
            return None
        key = session.request_key(plan.body, client.host)
        cache_key = session.request_key(plan.body, client.cache_scope())
        replay_mode = args.replay or self.magics.replay
        recorded = self._recorded(key, cache_key) if replay_mode != "off" else None
        if recorded is None and replay_mode == "only":
            raise ElkError(
                f"replay is 'only' and no recorded reply matches this request ({endpoint}, conversation "
                f"{plan.conversation.name!r}, model {plan.model!r}, host {client.host}): use --replay auto "
                "or %config ElkMagics.replay = 'auto' to run it live"
            )
        view = ui.open_view(endpoint, plan.conversation.name, plan.model, plan.note, replayed=recorded is not None)
        if recorded is not None:
            reply, error = Reply.from_dict(recorded, plan.body), None
        else:
            reply, error = self._live(client, endpoint, plan.body, view)
        turn = plan.turn(self.notebook.new_turn_id(), endpoint, prompt, reply, client.host, recorded is not None)
        if recorded is None and turn.ok:
            self.replays.store(key, client.host, plan.body, turn.reply, cache_key)
        plan.conversation.commit(turn)
        view.finish(reply, session.record_of(turn), _rerun_note(plan.dropped))
        if error is not None:
            if isinstance(error, StreamError) or reply.text:
                error.message += (
                    f"; partial reply kept in turn {turn.id} ({len(reply.text)} chars, not in the "
                    f"context: %elk accept {turn.id} to use it)"
                )
            raise error
        value = None
        if args.json or schema is not None:
            try:
                value = options.parse_structured(reply.text, schema)
            except ValueError as err:
                raise StreamError(str(err)) from None
        return Outcome(reply, turn, value)

    def _plan(self, endpoint, args, prompt, params, extra, cell) -> Plan:
        """Which conversation, which earlier turns, and the exact body to send."""
        m = self.magics
        conversation = self.notebook.conversation(args.conversation or m.default_conversation)
        if args.new:
            conversation.active = []
        if args.system is not None:
            conversation.system = args.system
        chain, dropped = conversation.context_for(cell[0])
        history = [] if args.no_context else self._apply_policy(chain)
        model = args.model or self.client.model
        stateless = getattr(args, "stateless", False) or m.respond_mode == "stateless"
        body, mode = self._body(endpoint, conversation, history, prompt, model, params, not args.no_stream, stateless)
        for path, value in extra:
            options.set_path(body, path, value)
        self._check_json(body)
        note = self._context_note(history, chain, mode)
        return Plan(conversation, chain, dropped, history, model, body, mode, note, cell)

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
                    self.index_records(record.load_turns(path))
                except ElkError:
                    pass  # an unreadable notebook file only means nothing to replay from it
        return self.replays.lookup(key, cache_key)

    def index_records(self, turns) -> None:
        """Make these turns' replies replayable (from a restored or saved notebook)."""
        for turn in turns:
            if turn.ok:
                self.replays.remember(session.request_key(turn.request, turn.host), turn.reply)

    def _apply_policy(self, chain: list[Turn]) -> list[Turn]:
        m = self.magics
        history = chain[-m.context_turns :] if m.context_turns > 0 else list(chain)
        if m.context_tokens > 0:
            while history and session.context_cost(history) > m.context_tokens:
                history = history[1:]
        return history

    def _body(
        self, endpoint, conversation, history, prompt, model, params, stream, stateless
    ) -> tuple[dict, str | None]:
        if endpoint == endpoints.CHAT:
            messages = session.chat_messages(conversation.system, history, prompt)
            return endpoints.chat_body(messages, model, stream, **params), None
        params = dict(params, instructions=conversation.system)
        mode = "stateless" if stateless else "chain"
        last = history[-1] if history else None
        chainable = last is not None and last.endpoint == endpoints.RESPONSES and last.reply.get("id")
        if mode == "chain" and chainable:
            params["previous_response_id"] = last.reply["id"]
            return endpoints.responses_body(prompt, model, stream, **params), "chain"
        if mode == "chain" and history:
            mode = "stateless"  # the last turn has no server-side id to chain from
        return endpoints.responses_body(session.responses_input(history, prompt), model, stream, **params), mode

    def _context_note(self, history, chain, mode) -> str:
        if not history:
            note = "no earlier turns"
        else:
            ids = ", ".join(t.id for t in history)
            note = f"{len(history)} earlier turn{'s' if len(history) > 1 else ''} ({ids}) · ~{session.context_cost(history)} tokens"
        if len(history) < len(chain):
            note += f" · {len(chain) - len(history)} older left out by the context policy"
        if mode:
            note += f" · {'previous_response_id' if mode == 'chain' else 'stateless resend'}"
        return note


def _rerun_note(dropped: list[Turn]) -> str:
    """What a re-run of a cell did to the context ('' when the cell ran for the first time)."""
    if not dropped:
        return ""
    later = ", ".join(t.id for t in dropped[1:])
    return f"Re-ran this cell: turn {dropped[0].id} replaced" + (f"; {later} dropped from the context" if later else "")
