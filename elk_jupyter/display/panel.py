"""Panel: the live view of one turn. The only module that imports anywidget.

Traffic stays linear in the reply's size: each update sends only the text added since the
previous one (``delta``, with its offset), at most ``MAX_UPDATES_PER_SECOND`` times a second.
The full text (``text``) is sent as a checkpoint early in the stream, while the front-end code
may still be loading and could miss deltas, and once at the end, so the final state is exact.

The offset rule, shared with js/state.js: a delta's ``offset`` counts **UTF-16 code units**, the
unit JavaScript strings are indexed by, never Python code points. Each astral character (emoji,
math letters such as U+1D465) is one code point here and two units there; counting code points
would make the front-end slice through a surrogate pair. Deltas are cut at code-point boundaries,
so a delta never holds half a pair, and the running count is kept incrementally (O(delta)).
When the turn ends the magics replace this widget's output by ``turn_output.turn_bundle`` and
close it, so nothing in a saved notebook depends on a live widget.
"""

from __future__ import annotations

import time
from pathlib import Path

import anywidget
import traitlets as t

from elk_jupyter.display.render import footer_items, shown_status
from elk_jupyter.display.view_fields import FIELDS, Field
from elk_jupyter.gateway.usage import Usage
from elk_jupyter.media.audio import player_data
from elk_jupyter.tools.loop import shown_calls

STATIC = Path(__file__).parent.parent / "static"
MAX_UPDATES_PER_SECOND = 25
EARLY_CHECKPOINT_CHARS = 4096  # below this, checkpoints grow 4x each time: a few KB in all


def utf16_units(text: str) -> int:
    """The length of ``text`` as JavaScript counts it (UTF-16 code units): the offset rule above."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


class _Stream:
    """One streamed string (answer or reasoning) and what the front-end has of it."""

    def __init__(self) -> None:
        self.sent = 0  # code points already sent (checkpoint or deltas): where the next delta starts here
        self.sent_units = 0  # the same prefix in UTF-16 code units: the offset the front-end sees
        self.checkpoint = 0  # length of the last checkpoint

    def changes(self, value: str, final: bool, full_name: str, delta_name: str) -> dict:
        if len(value) == self.sent and not final:
            return {}
        if len(value) < self.sent:  # the next request of a tool turn: start the text again
            self.sent = self.checkpoint = 0
        changes = {}
        early = len(value) <= EARLY_CHECKPOINT_CHARS and len(value) >= 4 * max(self.checkpoint, 16)
        if final or early:
            changes[full_name] = value
            self.checkpoint = len(value)
        added = value[self.sent :]
        changes[delta_name] = {"offset": self.sent_units, "text": added}
        self.sent = len(value)
        self.sent_units += utf16_units(added)
        return changes


def _tool_calls_signature(calls: list) -> tuple:
    """What can change in streamed tool calls: ids, names, and how long the arguments are (they only
    grow), and whether a call ran (a tool turn's ``status``), so comparing is O(number of calls),
    not O(their arguments)."""
    return tuple(
        (
            c.get("id"),
            c.get("type"),
            c["function"].get("name"),
            len(c["function"].get("arguments") or ""),
            c.get("status"),
        )
        for c in calls
    )


def _tool_calls_copy(calls: list) -> list:
    # The reply mutates its own list and dicts in place: synced as is, traitlets would compare the
    # object with itself, see no change and never send the growing arguments.
    return [{**c, "function": dict(c["function"])} for c in calls]


def _trait(field: Field) -> t.TraitType:
    """The synced trait of one VIEW field (display/view_fields.py declares them)."""
    kinds = {str: t.Unicode, bool: t.Bool, int: t.Int, dict: t.Dict, list: t.List}
    return kinds[field.kind](default_value=field.empty, allow_none=field.nullable).tag(sync=True)


def _delta() -> t.TraitType:
    return t.Dict({"offset": 0, "text": ""}).tag(sync=True)


# The traits, in the order of FIELDS, each streamed field followed by its delta trait.
_TRAITS = {}
for _field in FIELDS:
    _TRAITS[_field.name] = _trait(_field)
    if _field.delta:
        _TRAITS[_field.delta] = _delta()


class Panel(anywidget.AnyWidget):
    """The live view: one synced trait per VIEW field (``view_fields.FIELDS``), plus a delta trait
    for each streamed one."""

    updates_per_second = MAX_UPDATES_PER_SECOND  # the throttle's rate (a subclass may change it)
    _esm = STATIC / "panel.js"
    _css = STATIC / "panel.css"
    locals().update(_TRAITS)  # class attributes, so traitlets' metaclass makes them traits

    def __init__(
        self,
        *,
        endpoint: str,
        conversation: str,
        model_asked: str,
        context: str = "",
        replayed: bool = False,
        images: list | None = None,
    ):
        super().__init__(
            endpoint=endpoint,
            conversation=conversation,
            model_asked=model_asked or "",
            context=context,
            replayed=replayed,
            images=images or [],
        )
        self._text = _Stream()
        self._reasoning = _Stream()
        self._last_push = 0.0
        self._tool_calls_sent: tuple = ()

    def show(self, reply) -> None:
        """Called after every event; pushes at most MAX_UPDATES_PER_SECOND times a second."""
        now = time.monotonic()
        if now - self._last_push < 1 / self.updates_per_second:
            return
        self._last_push = now
        self._push(reply, final=False)

    def finish(self, reply) -> None:
        """The exact final state (until the magics replace the view by the finished bundle)."""
        self._push(reply, final=True)

    def retire(self) -> None:
        """Empty the heavy state, then close: once the output no longer shows this widget, a
        front-end that keeps the state of closed widgets (nbclient and papermill do) saves no
        front-end code (~144 KB) and no second copy of the reply in the notebook."""
        with self.hold_sync():
            self._esm, self._css = "", ""
            self.text = self.reasoning = ""
            self.delta = self.reasoning_delta = {"offset": 0, "text": ""}
            self.tool_calls, self.choices, self.audio, self.images = [], [], None, []
        self.layout.close()
        self.close()

    def _push(self, reply, final: bool) -> None:
        changes = {
            **self._text.changes(reply.text, final, "text", "delta"),
            **self._reasoning.changes(reply.reasoning, final, "reasoning", "reasoning_delta"),
            "status": reply.status,
            "badge": shown_status(reply.status, self.replayed),
            "model": reply.model or "",
            "attempts": reply.attempts,
            "usage": Usage.of(reply.usage).wire(),  # normalised: the raw object stays in the record
        }
        calls = shown_calls(reply)  # a tool turn's calls that ran (with results), then the pending ones
        signature = _tool_calls_signature(calls)
        if signature != self._tool_calls_sent:
            changes["tool_calls"] = _tool_calls_copy(calls)
            self._tool_calls_sent = signature
        received = reply.choices[0].audio.size
        if received and not final:  # the player comes once the clip is complete
            changes["audio"] = {"size": received, "streaming": True}
        # Timings are final values: while streaming the footer shows "–" for them, as it always has.
        changes["footer"] = footer_items(reply.usage, reply.timing if final else {}, self.context)
        if final:
            changes.update(
                audio=player_data(reply.audio_dict()),
                error=reply.error or "",
                timing=reply.timing,
                choices=[c.to_dict() for c in reply.choices] if len(reply.choices) > 1 else [],
            )
        with self.hold_sync():  # one comm message per update
            for name, value in changes.items():
                if getattr(self, name) != value:
                    setattr(self, name, value)
