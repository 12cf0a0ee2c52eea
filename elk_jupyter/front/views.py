"""The live views of a turn that the magics hand to the runner: the widget panel in a kernel with
a front-end, plain text in terminal IPython; the display of a dry run's body; and the question
``--approve`` asks before a tool call.

Only this module and ``magics`` import IPython (``display``); the panel is ``panel``'s.
"""

from __future__ import annotations

import json
import os
import sys

from IPython.display import display

from elk_jupyter.conversation.identity import short
from elk_jupyter.display.header import header_of
from elk_jupyter.display.render import shown_status
from elk_jupyter.display.terminal import safe, visible
from elk_jupyter.gateway.usage import Usage
from elk_jupyter.tools import loop as tool_loop


def cell_of(shell) -> tuple:
    """(cell id, execution count) of the running cell."""
    header = getattr(shell, "parent_header", None) or {}
    # JupyterLab, Notebook 7 and nbclient send the cell id with each execute request.
    return ((header.get("metadata") or {}).get("cellId"), getattr(shell, "execution_count", None))


class IPythonFrontend:
    """What a turn needs from IPython (``turns.Frontend``): a view to stream into, a JSON display."""

    def __init__(self, shell):
        self.shell = shell

    def open_view(self, endpoint, conversation, model, context, replayed=False, images=()):
        widgets = getattr(self.shell, "kernel", None) is not None and os.environ.get("ELK_NO_WIDGET") != "1"
        if not widgets:
            return TextView(endpoint, conversation, model, context, replayed)
        return WidgetView(endpoint, conversation, model, context, replayed, images)

    @staticmethod
    def show_json(body) -> None:
        """Dry run: the exact request body as text, safe whatever the prompt holds."""
        display({"text/plain": json.dumps(body, indent=2, ensure_ascii=False)}, raw=True)


APPROVE_LIMIT = 20_000  # characters of a call the question shows whole; a longer one is declined


def approve(call) -> bool:
    """``--approve``: the whole call is printed first (its arguments as indented JSON, control
    characters escaped, long runs of spaces named), then ``input()`` asks: a stdin request in a
    kernel (JupyterLab and Notebook 7 show an input box), the terminal's prompt in IPython. A
    call too long to show, or a front-end without stdin, is declined: nothing unseen is approved."""
    from IPython.core.error import StdinNotImplementedError

    name, inline = visible(call.name), visible(call.arguments)
    if len(inline) > 200 or "\n" in inline:
        shown = shown_call(call)
        if len(shown) > APPROVE_LIMIT:
            print(f"elk: the call to {name} has {len(shown):,} characters, too many to show whole here: declined")
            return False
        print(f"elk: the model asks to run {name} with these arguments (all of them):\n{shown}", flush=True)
        inline = f"the {len(call.arguments):,} characters of arguments above"
    try:
        answer = input(f"elk: run tool {name}({inline})? [y/N] ")
    except (StdinNotImplementedError, EOFError):
        print(f"elk: cannot ask about {name} here (the front-end takes no input): declined")
        return False
    return answer.strip().lower() in ("y", "yes")


def shown_call(call) -> str:
    """A call's arguments as the question shows them: all of them, pretty JSON when they parse."""
    try:
        text = json.dumps(json.loads(call.arguments or "{}"), indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):
        text = call.arguments or ""
    return visible(text)


def code_into_next_cell(shell, text: str) -> None:
    """``--code``: IPython's ``set_next_input`` payload, which JupyterLab and Notebook 7 turn into
    a new cell below (terminal IPython pre-fills the next prompt); other front-ends ignore it."""
    from elk_jupyter.display.markdown_copy import first_code_block

    code = first_code_block(text)
    if code is None:
        print("--code: the reply has no code block")
        return
    shell.set_next_input(code.rstrip("\n"), replace=False)
    where = "the next cell" if getattr(shell, "kernel", None) is not None else "the next prompt"
    print(
        f"--code: {len(code.splitlines())} lines put into {where} (JupyterLab, Notebook 7 and terminal "
        "IPython; nbclient, VS Code and other front-ends ignore it: copy it from the reply)"
    )


class WidgetView:
    """The live panel while the turn streams; then the finished bundle, which needs no widget."""

    def __init__(self, endpoint, conversation, model, context, replayed, images=()):
        from elk_jupyter.display.panel import Panel

        self.context, self.images = context, list(images)
        self.panel = Panel(
            endpoint=endpoint,
            conversation=conversation,
            model_asked=model,
            context=context,
            replayed=replayed,
            images=list(images),
        )
        self.handle = display(self.panel, display_id=True)

    @property
    def live_widget(self):
        """What an open chat panel on this conversation shows while the turn streams."""
        return self.panel

    def show(self, reply) -> None:
        self.panel.show(reply)

    def finish(self, reply, record, note="") -> None:
        from elk_jupyter.display.turn_output import turn_bundle

        self.panel.finish(reply)
        header = header_of(record["turn"], context=self.context, images=self.images, note=note)
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
        self._reply = None  # a tool turn streams one reply per step
        self._replayed = replayed
        print(safe(f"[{endpoint} · {conversation} · {model} · {context}]"), flush=True)

    def show(self, reply) -> None:
        # Called after every event: only what is new is read (reading reply.text here joined the
        # whole reply per event, 98 s for a 2 MB reply; issue 12).
        if reply is not self._reply:
            if self._shown or self._reasoning:
                sys.stdout.write("\n")
            self._reply, self._shown, self._reasoning = reply, 0, 0
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
            sys.stdout.write(safe(new))  # model text: no escape sequence reaches the terminal
            sys.stdout.flush()

    def finish(self, reply, record, note="") -> None:
        self.show(reply)
        turn = record["turn"]
        tokens = Usage.of(reply.usage).describe() or "no usage reported"
        total = f"{reply.total:.2f} s" if reply.total is not None else "-"
        status = shown_status(reply.status, self._replayed)
        print(safe(f"\n[{short(turn['id'])} {status} · {reply.model or '?'} · {tokens} · {total}]"), flush=True)
        for line in tool_loop.call_lines(reply):
            print(safe(line))
        if reply.audio is not None:
            print(f"[{reply.audio.describe()}]")
        if note:
            print(safe(note))
