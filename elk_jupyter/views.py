"""The live views of a turn that the magics hand to the runner: the widget panel in a kernel with
a front-end, plain text in terminal IPython; and the display of a dry run's body.

Only this module and ``magics`` import IPython (``display``); the panel is ``panel``'s.
"""

from __future__ import annotations

import json
import os
import sys

from IPython.display import display

from .identity import short
from .render import shown_status
from .usage import Usage


def cell_of(shell) -> tuple:
    """(cell id, execution count) of the running cell."""
    header = getattr(shell, "parent_header", None) or {}
    # JupyterLab, Notebook 7 and nbclient send the cell id with each execute request.
    return ((header.get("metadata") or {}).get("cellId"), getattr(shell, "execution_count", None))


class IPythonFrontend:
    """What a turn needs from IPython (``turns.Frontend``): a view to stream into, a JSON display."""

    def __init__(self, shell):
        self.shell = shell

    def open_view(self, endpoint, conversation, model, context, replayed=False):
        widgets = getattr(self.shell, "kernel", None) is not None and os.environ.get("ELK_NO_WIDGET") != "1"
        view = WidgetView if widgets else TextView
        return view(endpoint, conversation, model, context, replayed)

    @staticmethod
    def show_json(body) -> None:
        """Dry run: the exact request body as text, safe whatever the prompt holds."""
        display({"text/plain": json.dumps(body, indent=2, ensure_ascii=False)}, raw=True)


class WidgetView:
    """The live panel while the turn streams; then the finished bundle, which needs no widget."""

    def __init__(self, endpoint, conversation, model, context, replayed):
        from .panel import Panel

        self.header = {
            "endpoint": endpoint,
            "conversation": conversation,
            "model_asked": model,
            "context": context,
            "replayed": replayed,
        }
        self.panel = Panel(
            endpoint=endpoint, conversation=conversation, model_asked=model, context=context, replayed=replayed
        )
        self.handle = display(self.panel, display_id=True)

    def show(self, reply) -> None:
        self.panel.show(reply)

    def finish(self, reply, record, note="") -> None:
        from .turn_output import turn_bundle

        self.panel.finish(reply)
        turn = record["turn"]
        # the short id, as %elk history and errors show it; the record holds the full one
        header = {**self.header, "note": note, "turn": short(turn["id"]), "origin": turn.get("origin")}
        data, metadata = turn_bundle(reply, header, record)
        # Replace the widget's output, then free its comm: a saved notebook keeps no widget view
        # (JupyterLab would show "model not found" on reopen) and no widget state.
        self.handle.update(data, metadata=metadata, raw=True)
        self.panel.retire()


class TextView:
    """Terminal IPython: the reply streams as plain text, then one status line."""

    def __init__(self, endpoint, conversation, model, context, replayed):
        self._shown = 0
        self._reasoning = 0
        self._replayed = replayed
        print(f"[{endpoint} · {conversation} · {model} · {context}]", flush=True)

    def show(self, reply) -> None:
        # Called after every event: only what is new is read (reading reply.text here joined the
        # whole reply per event, 98 s for a 2 MB reply; issue 12).
        choice = reply.choices[0]
        new = ""
        if choice.reasoning_length > self._reasoning and not choice.text_length:
            new = choice.reasoning_from(self._reasoning)
            self._reasoning = choice.reasoning_length
        if choice.text_length > self._shown:
            new += "\n---\n" if self._shown == 0 and self._reasoning else ""
            new += choice.text_from(self._shown)
            self._shown = choice.text_length
        if new:
            sys.stdout.write(new)
            sys.stdout.flush()

    def finish(self, reply, record, note="") -> None:
        self.show(reply)
        turn = record["turn"]
        tokens = Usage.of(reply.usage).describe() or "no usage reported"
        total = f"{reply.total:.2f} s" if reply.total is not None else "-"
        status = shown_status(reply.status, self._replayed)
        print(f"\n[{short(turn['id'])} {status} · {reply.model or '?'} · {tokens} · {total}]", flush=True)
        if reply.audio is not None:
            print(f"[{reply.audio.describe()}]")
        if note:
            print(note)
