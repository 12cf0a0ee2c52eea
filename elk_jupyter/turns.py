"""One turn from prompt to record: pick the context, build the body, stream, commit. And %elk.

Display goes through the view the magics hand over, so this module imports neither IPython
nor anywidget and is driven the same way from a kernel, a terminal or a test.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import endpoints, options, session
from .cache import Replays
from .errors import ElkError, StreamError
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
        self.commands = {
            "config": self.show_config,
            "list": self.list_conversations,
            "history": self.history,
            "reset": self.reset,
            "fork": self.fork,
            "accept": self.accept,
            "models": self.models,
            "usage": self.usage,
            "restore": self.restore,
        }

    # -- configuration
    @property
    def client(self):
        from .client import Client  # requests costs ~50 ms: not at %load_ext time

        m = self.magics
        key = (m.base_url, m.model, m.api_key_env, m.timeout, m.retries)
        if self._client is None or key != self._client_key:
            self._client = Client(
                base_url=m.base_url, model=m.model, api_key_env=m.api_key_env, timeout=m.timeout, max_retries=m.retries
            )
            self._client_key = key
        return self._client

    # -- a turn
    def run(self, endpoint: str, args, prompt: str, params: dict, extra: list, schema, ui) -> Outcome | None:
        """``ui`` gives ``cell`` (id, execution count), ``open_view(...)`` and ``show_json(body)``."""
        m = self.magics
        client = self.client
        name = args.conversation or m.default_conversation
        conversation = self.notebook.conversation(name)
        if args.new:
            conversation.active = []
        if args.system is not None:
            conversation.system = args.system
        cell_id, execution_count = ui.cell
        chain, dropped = conversation.context_for(cell_id)
        history = [] if args.no_context else self._apply_policy(chain)
        model = args.model or client.model
        stateless = getattr(args, "stateless", False) or m.respond_mode == "stateless"
        body, mode = self._body(endpoint, conversation, history, prompt, model, params, not args.no_stream, stateless)
        for path, value in extra:
            options.set_path(body, path, value)
        if args.dry_run:
            ui.show_json(body)
            return None
        turn_id = self.notebook.new_turn_id()
        context_note = self._context_note(history, chain, dropped, mode)
        replay_mode = args.replay or m.replay
        key = session.request_key(body, client.host)
        recorded = self._recorded(key) if replay_mode != "off" else None
        if recorded is None and replay_mode == "only":
            raise ElkError(
                f"replay is 'only' and no recorded reply matches this request ({endpoint}, conversation {name!r}, "
                f"model {model!r}, host {client.host}): use --replay auto or %config ElkMagics.replay = 'auto' to run it live"
            )
        view = ui.open_view(endpoint, name, model, context_note, replayed=recorded is not None)
        if recorded is not None:
            reply, error = Reply.from_dict(recorded, body), None
        else:
            reply, error = self._live(client, endpoint, body, view)
        turn = Turn(
            id=turn_id,
            conversation=name,
            endpoint=endpoint,
            prompt=prompt,
            request=body,
            reply=reply.to_dict(),
            status=reply.status,
            parent=chain[-1].id if chain else None,
            context=tuple(t.id for t in history),
            context_tokens=session.context_cost(history),
            cell_id=cell_id,
            execution_count=execution_count,
            system=conversation.system,
            mode=mode,
            host=client.host,
            replayed=recorded is not None,
        )
        if recorded is None and turn.ok:
            self.replays.store(key, client.host, body, turn.reply)
        conversation.commit(turn)
        view.finish(reply, session.record_of(turn))
        if dropped:
            view.note(
                f"Re-ran this cell: turn {dropped[0].id} replaced"
                + (f"; {', '.join(t.id for t in dropped[1:])} dropped from the context" if len(dropped) > 1 else "")
            )
        if error is not None:
            kept = f"; partial reply kept in turn {turn.id} ({len(reply.text)} chars, not in the context: %elk accept {turn.id} to use it)"
            if isinstance(error, StreamError) or reply.text:
                error.message += kept
            raise error
        value = None
        if args.json or schema is not None:
            try:
                value = options.parse_structured(reply.text, schema)
            except ValueError as err:
                raise StreamError(str(err)) from None
        return Outcome(reply, turn, value)

    @staticmethod
    def _live(client, endpoint, body, view) -> tuple[Reply, ElkError | None]:
        """Stream from the gateway into the view; a failure is returned with the partial reply."""
        from .client import collect

        reply = Reply(endpoint, body)
        try:
            collect(client.iter_send(endpoint, body), reply, lambda _event: view.show(reply))
        except ElkError as err:
            return reply, err
        except KeyboardInterrupt:  # the kernel's interrupt: stop at once, keep what arrived
            return reply, StreamError("interrupted by the user")
        return reply, None

    def _recorded(self, key: str) -> dict | None:
        """A reply recorded for this request: this notebook's saved records, then the cache."""
        if not self._notebook_indexed:
            self._notebook_indexed = True
            from . import record

            path = record.current_notebook(self.magics.shell.user_ns)
            if path is not None:
                try:
                    self._index(record.load_turns(path))
                except ElkError:
                    pass  # an unreadable notebook file only means nothing to replay from it
        return self.replays.lookup(key)

    def _index(self, turns) -> None:
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

    def _context_note(self, history, chain, dropped, mode) -> str:
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

    # -- %elk subcommands (each returns None and prints, or returns a value to show)
    def show_config(self):
        client = self.client
        source = f"${client.api_key_env}" + ("" if client.api_key() else " (not set)")
        print(
            f"base URL   {client.base_url if '@' not in client.base_url else client.host}\n"
            f"model      {client.model}\nkey        from {source}, fingerprint {client.key_fingerprint()}\n"
            f"timeout    {client.timeout:g} s, retries {client.max_retries}\n"
            f"context    turns {self.magics.context_turns or 'all'}, tokens {self.magics.context_tokens or 'no cap'}\n"
            f"respond    {self.magics.respond_mode}\nreplay     {self.magics.replay}"
        )

    def list_conversations(self):
        if not self.notebook.conversations:
            print("no conversations yet")
        for name, conversation in self.notebook.conversations.items():
            totals = conversation.usage_totals()
            print(
                f"{name:<16} {len(conversation.turns):>3} turns, {len(conversation.active):>3} in context, "
                f"{totals['total']} tokens"
            )

    def history(self, name=None):
        conversation = self._conversation(name)
        if not conversation.turns:
            print(f"conversation {conversation.name!r} has no turns")
        for turn in conversation.turns:
            marker = "*" if turn.id in conversation.active else " "
            numbers = session.usage_numbers(turn.reply.get("usage"))
            text = " ".join(turn.text.split())
            print(
                f"{marker}{turn.id:<5} {turn.status:<11} {turn.endpoint:<9} sent [{', '.join(turn.context)}] "
                f"{numbers['total']} tok | {' '.join(turn.prompt.split())[:40]!r} -> {text[:60]!r}"
            )
        print("(* = in the context of the next turn)")

    def reset(self, name=None):
        names = self.notebook.reset(None if name == "--all" else (name or self.magics.default_conversation))
        print(f"reset: {', '.join(names) or 'nothing'}")

    def fork(self, source, target, upto=None):
        forked = self.notebook.fork(source, target, upto)
        print(f"forked {source!r} into {target!r} with {len(forked.active)} turns in context")

    def accept(self, turn_id):
        conversation, _ = self.notebook.find(turn_id)
        conversation.accept(turn_id)
        print(f"turn {turn_id} now joins the context of {conversation.name!r}")

    def models(self):
        for model in self.client.models():
            print(model.get("id"))

    def usage(self):
        rows = [(name, c.usage_totals()) for name, c in self.notebook.conversations.items()]
        rows.append(("(notebook)", self.notebook.usage_totals() or {}))
        for name, t in rows:
            print(
                f"{name:<16} turns {t.get('turns', 0):>3}  prompt {t.get('prompt', 0):>7} (cached {t.get('cached', 0)})"
                f"  completion {t.get('completion', 0):>7} (reasoning {t.get('reasoning', 0)})  total {t.get('total', 0)}"
            )

    def restore(self, path=None):
        """Rebuild every conversation from a saved notebook's records (after a kernel restart)."""
        from . import record

        path = path or record.current_notebook(self.magics.shell.user_ns)
        if path is None:
            raise ValueError("which notebook? The front-end did not say (no JPY_SESSION_NAME): give its path")
        turns = record.load_turns(path)
        for turn in turns:
            self.notebook.add_restored(turn)
        self._index(turns)
        names = sorted({t.conversation for t in turns})
        print(f"restored {len(turns)} turns in {len(names)} conversations from {path}: {', '.join(names) or 'none'}")

    def _conversation(self, name):
        name = name or self.magics.default_conversation
        if name not in self.notebook.conversations:
            raise KeyError(f"no conversation named {name!r}")
        return self.notebook.conversations[name]
