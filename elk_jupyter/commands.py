"""The %elk subcommands: inspect and manage the notebook's conversations, settings and usage."""

from __future__ import annotations

from . import lineage, session, urls
from .session import short, short_ids
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
        own = {t.id for t in conversation.turns}
        inherited = [conversation.turn(t) for t in conversation.active if t not in own]
        if not conversation.turns and not inherited:
            print(f"conversation {conversation.name!r} has no turns")
        for turn in [*inherited, *conversation.turns]:
            marker = "*" if turn.id in conversation.active else " "
            numbers = session.usage_numbers(turn.reply.get("usage"))
            text = " ".join(turn.text.split())
            origin = f" (from {turn.conversation})" if turn.id not in own else ""
            print(
                f"{marker}{turn.short_id:<8} {turn.status:<11} {turn.endpoint:<9} sent [{short_ids(turn.context, '')}] "
                f"{numbers['total']} tok | {' '.join(turn.prompt.split())[:40]!r} -> {text[:60]!r}{origin}"
            )
        print("(* = in the context of the next turn)")

    def reset(self, name=None):
        names = self.notebook.reset(None if name == "--all" else (name or self.runner.magics.default_conversation))
        print(f"reset: {', '.join(names) or 'nothing'}")

    def fork(self, source, target, upto=None):
        if source not in self.notebook.conversations:
            raise KeyError(f"no conversation named {source!r}")
        forked = self.notebook.fork(source, target, upto)
        print(
            f"forked {source!r} into {target!r} with {len(forked.active)} turns in context ({short_ids(forked.active)})"
        )

    def accept(self, turn_ref):
        """Say exactly what joins and what leaves: the context stays a history that happened."""
        conversation, turn = self.notebook.find(turn_ref)
        joined, left = conversation.accept(turn.id)
        parent = f"after {short(turn.parent)}" if turn.parent else "as its first turn"
        if not joined and not left:
            print(f"turn {turn.short_id} already ends the context of {conversation.name!r}; nothing changes")
            return
        joins = f"joins {short_ids(joined)} ({parent})" if joined else "nothing joins"
        leaves = (
            f"leaves {short_ids(left)} (not on the chain to {turn.short_id}; `%elk accept` one of them to go back)"
            if left
            else "nothing leaves"
        )
        print(f"context of {conversation.name!r}: {joins}; {leaves}; now {short_ids(conversation.active)}")

    def models(self):
        for model in self.runner.client.models():
            print(model.get("id"))

    def usage(self):
        rows = [(name, c.usage_totals()) for name, c in self.notebook.conversations.items()]
        rows.append(("(notebook)", self.notebook.usage_totals() or {}))
        for name, t in rows:
            counts = {k: t.get(k, 0) for k in Usage().numbers()}
            print(f"{name:<16} turns {t.get('turns', 0):>3} · {Usage(**counts).describe(total=True)}")

    def restore(self, path=None):
        """Rebuild every conversation from a saved notebook's records (after a kernel restart)."""
        from . import record

        path = path or record.current_notebook(self.runner.magics.shell.user_ns)
        if path is None:
            raise ValueError("which notebook? The front-end did not say (no JPY_SESSION_NAME): give its path")
        turns = record.load_turns(path)
        merged = lineage.merge(self.notebook, turns)  # checks everything first: all or nothing
        self.runner.index_records(merged.added)
        already = len({t.id for t in turns}) - len(merged.added)
        print(
            f"restored {len(merged.added)} turns in {len(merged.conversations)} conversations from {path}"
            + (f" ({already} already here)" if already else "")
            + ": "
            + ", ".join(self._restored_context(name, merged.added) for name in merged.conversations)
            + (f"; accepted earlier: {short_ids(merged.accepted)}" if merged.accepted else "")
        )

    def _restored_context(self, name, added) -> str:
        """A conversation's context after a restore, and how to continue the saved one if it differs."""
        conversation = self.notebook.conversations[name]
        text = f"{name} (context {short_ids(conversation.active)})"
        saved = [t for t in added if t.conversation == name and t.ok]
        last = max(saved, key=lambda t: t.created_at) if saved else None
        if last is not None and last.id not in conversation.active:
            text += f" [a newer turn ran here; `%elk accept {last.short_id}` continues the saved chain]"
        return text

    def _conversation(self, name):
        name = name or self.runner.magics.default_conversation
        if name not in self.notebook.conversations:
            raise KeyError(f"no conversation named {name!r}")
        return self.notebook.conversations[name]
