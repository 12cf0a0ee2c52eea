"""What a chat-panel turn shows and keeps: the ``turns.Frontend`` the runner streams into (a
``LiveTurn`` inside the panel), the finished turn published into the panel cell's outputs (the same
bundle and record as a cell turn), the transcript entries, and the equivalent cell text ("to cell").
"""

from __future__ import annotations

import shlex
import threading

from elk_jupyter.display.chat_widget import LiveTurn, reference
from elk_jupyter.display.header import header_of
from elk_jupyter.display.markdown_copy import code_blocks, literal
from elk_jupyter.display.turn_output import turn_bundle, view_data, whole_view
from elk_jupyter.errors import HistoryError
from elk_jupyter.gateway.dialects import dialect
from elk_jupyter.gateway.reply import Reply


class Stopped(KeyboardInterrupt):
    """Raised between two events once Stop was pressed: the stream ends exactly as a kernel
    interrupt ends a cell's (``client.collect`` marks the reply interrupted and closes the response)."""


def cell_line(controls: dict, *, one_line: bool = False) -> str:
    """The ``%%chat``/``%%respond`` options the panel's controls stand for, quoted for a magic line.
    ``one_line``: leave out a system prompt with line breaks (a magic line cannot hold them)."""
    words = ["-c", controls["conversation"]]
    for option, name in (("-m", "model"), ("-t", "temperature"), ("--max-tokens", "max_tokens")):
        if controls.get(name, "").strip():
            words += [option, controls[name].strip()]
    if controls.get("reasoning_effort"):
        words += ["-r", controls["reasoning_effort"]]
    if controls.get("system") and not (one_line and "\n" in controls["system"]):
        words += ["-s", controls["system"]]
    names = ",".join(_listed(controls.get("tools", "")))
    if names:
        words += ["--tools", names, "--approve"]  # the panel asks before each call
    for option, name in (("--image", "attach_images"), ("--file", "attach_files")):
        for source in _listed(controls.get(name, "")):
            words += [option, source]
    return " ".join(shlex.quote(word) for word in words)


def _listed(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def cell_text(endpoint: str, controls: dict, prompt: str) -> tuple[str, str]:
    """(a cell that sends ``prompt`` as the panel did, with its exact options; what it cannot say)."""
    note = ""
    if "\n" in (controls.get("system") or ""):
        note = (
            "its system prompt has line breaks, which a magic line cannot hold: the cell leaves -s out "
            "(this kernel's conversation keeps the prompt)"
        )
    return f"%%{dialect(endpoint).magic} {cell_line(controls, one_line=True)}\n{prompt}", note


class PanelFrontend:
    """``turns.Frontend`` for one panel turn: the live view is a ``LiveTurn`` the panel shows."""

    def __init__(self, panel, prompt: str, stop: threading.Event, controls: dict):
        self.panel = panel
        self.prompt = prompt
        self.stop = stop
        self.controls = controls  # what the turn was sent with: its "to cell" text

    def open_view(self, endpoint, conversation, model, context, replayed=False, images=()):
        return PanelTurnView(self, endpoint, conversation, model, context, replayed, images)

    def show_json(self, body) -> None:  # the panel never dry-runs; a -p option could ask for it
        self.panel.notice = "dry run: nothing was sent"


class PanelTurnView:
    """The live reply inside the panel; at the end, the finished bundle in the panel cell's outputs."""

    def __init__(self, frontend, endpoint, conversation, model, context, replayed, images):
        self.frontend = frontend
        self.context, self.images = context, list(images)
        self.live = LiveTurn(
            endpoint=endpoint,
            conversation=conversation,
            model_asked=model,
            context=context,
            replayed=replayed,
            images=list(images),
        )
        panel = frontend.panel
        with panel.hold_sync():
            panel.live_prompt = frontend.prompt
            panel.live = reference(self.live)

    def show(self, reply) -> None:
        if self.frontend.stop.is_set():
            raise Stopped
        self.live.show(reply)

    @property
    def live_widget(self):
        """What another panel on this conversation shows while the turn streams."""
        return self.live

    def finish(self, reply, record, note="") -> None:
        turn = record["turn"]
        header = header_of(turn, context=self.context, images=self.images, note=note)  # as a cell's view
        data, metadata = turn_bundle(reply, header, record)
        panel = self.frontend.panel  # no final push to the live view: the transcript takes the turn now
        panel.keep([(prompt_bundle(self.frontend.prompt), {}), (data, metadata)])
        panel.finished(turn["id"], whole_view(data, metadata), self.frontend.controls)
        self.live.retire()


def publish(shell, parent: dict, data: dict, metadata: dict) -> None:
    """An output in the panel's own cell (``parent``: its request's header), whichever cell runs now,
    or none: the header says where a front-end puts it, and JupyterLab and Notebook 7 keep a cell's
    outputs open to its messages until it runs again. Terminal IPython and test shells just show it."""
    pub = shell.display_pub
    session = getattr(pub, "session", None)
    if session is None or not parent:
        pub.publish(data=data, metadata=metadata)
        return
    content = {"data": data, "metadata": metadata, "transient": {}}
    session.send(pub.pub_socket, session.msg("display_data", content, parent=parent), ident=pub.topic)


def conversation_name(value) -> str:
    name = str(value or "").strip()
    if not name or not name.isprintable() or len(name) > 100:
        raise ValueError("a conversation name is 1 to 100 printable characters")
    return name


def prompt_bundle(prompt: str) -> dict:
    """The user's message as an inert output above its reply (the record holds it too)."""
    return {"text/markdown": "**You:** " + (literal(prompt) or "(empty)"), "text/plain": f"You: {prompt}"}


def transcript(conversation, views: dict, controls: dict) -> list[dict]:
    """The conversation as the panel shows it: the turns of its context, then any failed or
    interrupted turn that followed them (its partial reply can be accepted); each with its
    siblings (regenerated or edited turns asked after the same parent) to switch between.
    ``views`` caches each turn's VIEW (built once: an unchanged entry is the same object)."""
    chain = [conversation.turn(i) for i in conversation.active]
    end = chain[-1].id if chain else None
    tail = [t for t in conversation.turns if not t.ok and t.parent == end and t.id not in conversation.active]
    children: dict = {}
    for turn in list(conversation.index.values()):  # a copy: another panel's worker may commit meanwhile
        if turn.conversation == conversation.name and turn.ok:
            children.setdefault(turn.parent, []).append(turn)
    entries = []
    for turn in [*chain, *tail[-1:]]:
        siblings = sorted(children.get(turn.parent, []), key=lambda t: t.created_at)
        ids = [t.id for t in siblings]
        # A turn the panel did not send (a cell's, a restored one) names its conversation and model.
        asked = controls.get(turn.id) or {
            "conversation": conversation.name,
            "model": str(turn.request.get("model", "")),
        }
        cell, cell_note = cell_text(turn.endpoint, asked, turn.prompt)
        entries.append(
            {
                "id": turn.id,
                "short": turn.short_id,
                "prompt": turn.prompt,
                "status": turn.status,
                "ok": turn.ok,
                "view": views.get(turn.id) or views.setdefault(turn.id, _view_of(turn)),
                "cell": cell,
                "code": _code_of(turn),
                "cell_note": cell_note,
                "siblings": ids if turn.id in ids and len(ids) > 1 else [],
            }
        )
    return entries


def _code_of(turn) -> str:
    """The reply's code blocks, for "Code to cell" ("" when it has none)."""
    blocks = code_blocks(str((turn.reply or {}).get("text") or ""))
    return "\n\n".join(block.rstrip("\n") for block in blocks)


def _view_of(turn) -> dict:
    """A turn the panel did not stream (a cell's, or a restored one): its view from its record."""
    return view_data(Reply.from_dict(turn.reply, turn.request), header_of(turn.to_dict()))


def newest_leaf(conversation, turn_id: str) -> str:
    """The most recent successful turn descending from ``turn_id`` (itself if none): the end of
    the branch a sibling switch goes back to."""
    best = conversation.turn(turn_id)
    for turn in list(conversation.index.values()):
        if turn.ok and turn.created_at > best.created_at and turn_id in _ancestry(conversation, turn):
            best = turn
    return best.id


def _ancestry(conversation, turn) -> set:
    try:
        return set(conversation.chain_to(turn.id))
    except HistoryError:  # a turn whose parents are not all here (a hand-edited record): no branch
        return set()
