"""The %elk subcommands: inspect and manage the notebook's conversations, settings and usage."""

from __future__ import annotations

import argparse
import contextlib
import shlex
import sys

from elk_jupyter.conversation import lineage
from elk_jupyter.conversation.session import short, short_ids
from elk_jupyter.display.terminal import SafeText
from elk_jupyter.gateway import urls
from elk_jupyter.gateway.dialects import NAMES
from elk_jupyter.gateway.usage import Usage

# $_error is the last traceback with its cell (cell_inputs); $$ would be a literal dollar.
EXPLAIN = "Explain this error from my notebook and how to fix it.\n\n$_error"


class BadCommand(Exception):
    """A ``%elk`` line that cannot run: bad arguments, or a name that names nothing. The magics
    show it as IPython's UsageError; any other exception is a bug and is not disguised as one."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises BadCommand instead of printing usage and exiting the kernel."""

    def error(self, message):
        raise BadCommand(f"%elk {self.prog}: {message}; see %elk?")

    def exit(self, status=0, message=None):
        raise BadCommand(f"%elk {self.prog}: {message or 'see %elk?'}")


def _parser(name: str, *arguments: tuple[tuple, dict]) -> _Parser:
    parser = _Parser(prog=name, add_help=False)
    for names, options in arguments:
        parser.add_argument(*names, **options)
    return parser


_NAME = (("name",), {"nargs": "?"})
PARSERS = {
    "config": _parser("config"),
    "list": _parser("list"),
    "history": _parser("history", _NAME),
    "reset": _parser("reset", _NAME, (("--all",), {"action": "store_true"})),
    "fork": _parser("fork", (("source",), {}), (("target",), {}), (("upto",), {"nargs": "?"})),
    "accept": _parser("accept", (("turn_ref",), {})),
    "models": _parser("models"),
    "usage": _parser("usage"),
    "restore": _parser("restore", (("path",), {"nargs": "?"})),
    "panel": _parser(
        "panel",
        (("-c", "--conversation"), {}),
        (("-m", "--model"), {}),
        (("--endpoint",), {"choices": NAMES, "default": NAMES[0]}),
    ),
}
PASSED_ON = {"explain"}  # its options are %%chat's: parsed there, not here


class Commands:
    """The ``%elk`` subcommands over a runner's conversations; ``settings`` and ``locate_notebook``
    are the magics' (a ``Settings`` snapshot, the notebook this kernel serves); ``shell`` runs the
    %%chat cell ``explain`` sends."""

    def __init__(self, runner, settings, locate_notebook, shell=None):
        self.runner = runner
        self.shell = shell
        self.conversations = runner.conversations
        self.settings = settings
        self.locate_notebook = locate_notebook
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
            "explain": self.explain,
            "panel": self.panel,
        }

    def run(self, words: list[str]):
        """Run one ``%elk`` line (already split into words)."""
        names = ", ".join(sorted(self.table))
        if not words:
            raise BadCommand(f"%elk needs a subcommand: {names}")
        if words[0] not in self.table:
            raise BadCommand(f"unknown %elk subcommand {words[0]!r}; try: {names}")
        # Names, model ids and errors may hold escape sequences; terminal IPython prints to a terminal.
        with contextlib.redirect_stdout(SafeText(sys.stdout)):
            if words[0] in PASSED_ON:
                return self.table[words[0]](*words[1:])
            arguments = vars(PARSERS[words[0]].parse_args(words[1:]))
            return self.table[words[0]](**arguments)

    def show_config(self):
        client, settings = self.runner.client, self.settings()
        source = f"${client.api_key_env}" + ("" if client.api_key() else " (not set)")
        print(
            f"base URL   {urls.shown(client.base_url)}\n"
            f"model      {client.model}\nkey        from {source}, fingerprint {client.key_fingerprint()}\n"
            f"timeout    {client.timeout:g} s, retries {client.max_retries}\n"
            f"context    turns {settings.context_turns or 'all'}, tokens {settings.context_tokens or 'no cap'}\n"
            f"respond    {settings.respond_mode}\nreplay     {settings.replay}"
        )

    def list_conversations(self):
        if not self.conversations.conversations:
            print("no conversations yet")
        for name, conversation in self.conversations.conversations.items():
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
            numbers = Usage.of(turn.reply.get("usage")).numbers()
            text = " ".join(turn.text.split())
            origin = f" (from {turn.conversation})" if turn.id not in own else ""
            print(
                f"{marker}{turn.short_id:<8} {turn.status:<11} {turn.endpoint:<9} sent [{short_ids(turn.context, '')}] "
                f"{numbers['total']} tok | {' '.join(turn.prompt.split())[:40]!r} -> {text[:60]!r}{origin}"
            )
        print("(* = in the context of the next turn)")

    def reset(self, name=None, all=False):
        names = self.conversations.reset(None if all else (name or self.settings().default_conversation))
        print(f"reset: {', '.join(names) or 'nothing'}")

    def fork(self, source, target, upto=None):
        if source not in self.conversations.conversations:
            raise BadCommand(f"%elk fork: no conversation named {source!r}")
        try:
            forked = self.conversations.fork(source, target, upto)
        except ValueError as err:  # the target exists, or TURN names no turn
            raise BadCommand(f"%elk fork: {err}") from None
        print(
            f"forked {source!r} into {target!r} with {len(forked.active)} turns in context ({short_ids(forked.active)})"
        )

    def accept(self, turn_ref):
        """Say exactly what joins and what leaves: the context stays a history that happened."""
        try:
            conversation, turn = self.conversations.find(turn_ref)
        except ValueError as err:
            raise BadCommand(f"%elk accept: {err}") from None
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

    def explain(self, *options):
        """Send the last error (traceback without ANSI codes, the failing cell's source) to %%chat;
        ``options`` are %%chat's (``-c``, ``-m``, ``--dry-run``, ...)."""
        line = " ".join(["-i", *(shlex.quote(o) for o in options)])
        if self.shell is None:
            raise BadCommand("%elk explain: no shell to run %%chat in here")
        return self.shell.run_cell_magic("chat", line, EXPLAIN)

    def panel(self, conversation=None, model=None, endpoint="chat"):
        """The interactive chat panel over a conversation (the cell's value: it shows below)."""
        from elk_jupyter.front.chat_panel import ChatPanel

        return ChatPanel(conversation=conversation, model=model, endpoint=endpoint, shell=self.shell)

    def models(self):
        for model in self.runner.client.models():
            print(model.get("id"))

    def usage(self):
        """Token totals per conversation, this kernel's experiment runs, and the notebook (both)."""
        from elk_jupyter.experiments.totals import totals

        rows = [(name, c.usage_totals()) for name, c in self.conversations.conversations.items()]
        notebook = self.conversations.usage_totals() or {}
        for name, t in rows:
            counts = {k: t.get(k, 0) for k in Usage().numbers()}
            print(f"{name:<16} turns {t.get('turns', 0):>3} · {Usage(**counts).describe(total=True)}")
        runs = totals(list(found.values()) for found in self.runner.state.finished.values())
        if runs.experiments:
            print(f"{'(experiments)':<16} {runs.experiments} · {runs.describe()}")
        counts = {k: notebook.get(k, 0) + runs.billed[k] for k in Usage().numbers()}
        print(
            f"{'(notebook)':<16} turns {notebook.get('turns', 0):>3}"
            + (f" · experiment runs {runs.live} live" if runs.experiments else "")
            + f" · {Usage(**counts).describe(total=True)}"
        )

    def restore(self, path=None):
        """Rebuild every conversation from a saved notebook's records (after a kernel restart)."""
        from elk_jupyter.records import notebooks

        path = path or self.locate_notebook()
        if path is None:
            raise BadCommand(
                "%elk restore: which notebook? The front-end did not say (no JPY_SESSION_NAME): give its path"
            )
        turns = notebooks.load_turns(path)
        merged = lineage.merge(self.conversations, turns)  # checks everything first: all or nothing
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
        conversation = self.conversations.conversations[name]
        text = f"{name} (context {short_ids(conversation.active)})"
        saved = [t for t in added if t.conversation == name and t.ok]
        last = max(saved, key=lambda t: t.created_at) if saved else None
        if last is not None and last.id not in conversation.active:
            text += f" [a newer turn ran here; `%elk accept {last.short_id}` continues the saved chain]"
        return text

    def _conversation(self, name):
        name = name or self.settings().default_conversation
        if name not in self.conversations.conversations:
            raise BadCommand(f"no conversation named {name!r}")
        return self.conversations.conversations[name]
