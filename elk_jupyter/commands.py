"""The %elk subcommands: inspect and manage the notebook's conversations, settings and usage."""

from __future__ import annotations

from . import session, urls
from .usage import Usage


class Commands:
    def __init__(self, runner):
        self.runner = runner
        self.notebook = runner.notebook
        self.table = {
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

    def show_config(self):
        client = self.runner.client
        source = f"${client.api_key_env}" + ("" if client.api_key() else " (not set)")
        print(
            f"base URL   {urls.shown(client.base_url)}\n"
            f"model      {client.model}\nkey        from {source}, fingerprint {client.key_fingerprint()}\n"
            f"timeout    {client.timeout:g} s, retries {client.max_retries}\n"
            f"context    turns {self.runner.magics.context_turns or 'all'}, tokens {self.runner.magics.context_tokens or 'no cap'}\n"
            f"respond    {self.runner.magics.respond_mode}\nreplay     {self.runner.magics.replay}"
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
        names = self.notebook.reset(None if name == "--all" else (name or self.runner.magics.default_conversation))
        print(f"reset: {', '.join(names) or 'nothing'}")

    def fork(self, source, target, upto=None):
        forked = self.notebook.fork(source, target, upto)
        print(f"forked {source!r} into {target!r} with {len(forked.active)} turns in context")

    def accept(self, turn_id):
        conversation, _ = self.notebook.find(turn_id)
        conversation.accept(turn_id)
        print(f"turn {turn_id} now joins the context of {conversation.name!r}")

    def models(self):
        for model in self.runner.client.models():
            print(model.get("id"))

    def usage(self):
        rows = [(name, c.usage_totals()) for name, c in self.notebook.conversations.items()]
        rows.append(("(notebook)", self.notebook.usage_totals() or {}))
        for name, t in rows:
            counts = {k: t.get(k, 0) for k in ("prompt", "completion", "total", "cached", "reasoning")}
            print(f"{name:<16} turns {t.get('turns', 0):>3} · {Usage(**counts).describe(total=True)}")

    def restore(self, path=None):
        """Rebuild every conversation from a saved notebook's records (after a kernel restart)."""
        from . import record

        path = path or record.current_notebook(self.runner.magics.shell.user_ns)
        if path is None:
            raise ValueError("which notebook? The front-end did not say (no JPY_SESSION_NAME): give its path")
        turns = record.load_turns(path)
        for turn in turns:
            self.notebook.add_restored(turn)
        self.runner.index_records(turns)
        names = sorted({t.conversation for t in turns})
        print(f"restored {len(turns)} turns in {len(names)} conversations from {path}: {', '.join(names) or 'none'}")

    def _conversation(self, name):
        name = name or self.runner.magics.default_conversation
        if name not in self.notebook.conversations:
            raise KeyError(f"no conversation named {name!r}")
        return self.notebook.conversations[name]
