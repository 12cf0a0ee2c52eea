"""The turn header: what a finished turn's output says beside the reply, as one frozen value with one builder. Pure.

The live view (``front/views``) and the CLI's re-run notebook (``cli/main``) both build it from the
turn's record with ``header_of``; the copies (``render``) and the saved view (``turn_output``) read it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from elk_jupyter.conversation.identity import short


@dataclass(frozen=True)
class TurnHeader:
    endpoint: str
    conversation: str
    model_asked: str = ""
    context: str = ""  # the plan's note on what was sent ("2 earlier turns", "no earlier turns")
    replayed: bool = False
    images: tuple = ()  # the prompt's images as the view shows them (attachments.shown)
    note: str = ""  # a line under the reply ("Re-ran this cell: turn t3 replaced")
    turn: str = ""  # the short id, as %elk history and errors show it (the record holds the full one)
    origin: str | None = None  # live, replayed or regenerated
    audio: dict | None = None  # the player's data, as the saved view holds it (turn_output sets it)


def header_of(turn: Mapping, *, context: str = "", images: Sequence = (), note: str = "") -> TurnHeader:
    """The header of a recorded turn (a record's ``turn``); ``context`` and ``images`` are what the
    live view showed of them (a record keeps ids and digests, not those words)."""
    request = turn.get("request") if isinstance(turn.get("request"), Mapping) else {}
    turn_id = turn.get("id")
    return TurnHeader(
        endpoint=str(turn.get("endpoint") or ""),
        conversation=str(turn.get("conversation") or ""),
        model_asked=str(request.get("model") or ""),
        context=context,
        replayed=turn.get("replayed") is True,
        images=tuple(images),
        note=note,
        turn=short(turn_id) if isinstance(turn_id, str) else "",
        origin=turn.get("origin") if isinstance(turn.get("origin"), str) else None,
    )
