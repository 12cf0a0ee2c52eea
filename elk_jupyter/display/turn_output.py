"""The finished turn's output: one mime bundle that needs no live widget. Pure.

A widget view in a saved notebook shows "Error displaying widget: model not found" once its
kernel is gone, and JupyterLab prefers that entry whenever it trusts the notebook (it trusts
every notebook it saved itself; ipywidgets #3331). So when a turn ends its output is replaced by
this bundle and the widget is closed:

- ``TURN_MIME``: the data the panel's view needs, rendered by the prebuilt JupyterLab extension
  (``labextension/``) with the live panel's own front-end code, trusted or not, with no kernel;
- ``text/markdown``: an inert copy for every other front-end (VS Code, Colab, GitHub, nbconvert);
- ``text/plain``; and the turn's record in the output's metadata (docs/record.md). The VIEW leaves
  out the answer and the reasoning when the record holds them (``FROM_RECORD``): the renderer reads
  them from the output's metadata, and each is stored three times in a notebook, not four.
"""

from __future__ import annotations

from dataclasses import replace

from elk_jupyter.display.header import TurnHeader
from elk_jupyter.display.render import footer_items, shown_status, static_markdown, static_text
from elk_jupyter.display.view_fields import NAMES, TURN_MIME, VIEW_VERSION
from elk_jupyter.gateway.usage import Usage
from elk_jupyter.media.audio import player_data
from elk_jupyter.records.turn import RECORD_KEY
from elk_jupyter.tools.loop import shown_calls

__all__ = ["TURN_MIME", "VIEW_VERSION", "turn_bundle", "view_data", "whole_view"]

FROM_RECORD = ("text", "reasoning")  # VIEW fields a saved bundle leaves to its record when they are the same


def view_data(reply, header: TurnHeader, audio: dict | None = None) -> dict:
    """What the panel shows at the end of a turn: each VIEW field (``view_fields.FIELDS``, the Panel's
    synced traits), no more, no less.

    ``audio`` is the record's (bytes inline as base64, or the name of the file beside the notebook)."""
    values = {
        "endpoint": header.endpoint or reply.endpoint,
        "conversation": header.conversation,
        "model_asked": header.model_asked,
        "model": reply.model or "",
        "status": reply.status,
        "badge": shown_status(reply.status, header.replayed),
        "replayed": header.replayed,
        "error": reply.error or "",
        "note": header.note,
        "attempts": reply.attempts,
        "context": header.context,
        "text": reply.text,
        "reasoning": reply.reasoning,
        "usage": Usage.of(reply.usage).wire(),  # normalised, as the live panel gets it
        "timing": reply.timing,
        "tool_calls": shown_calls(reply),
        "choices": [c.to_dict() for c in reply.choices] if len(reply.choices) > 1 else [],
        "audio": player_data(audio if audio is not None else reply.audio_dict()),
        "footer": footer_items(reply.usage, reply.timing, header.context),
        "images": list(header.images),
    }
    return {"version": VIEW_VERSION, **{name: values[name] for name in NAMES}}


def turn_bundle(reply, header: TurnHeader, record: dict | None) -> tuple[dict, dict]:
    """``(data, metadata)`` for ``display``/``update_display``: the turn as its output keeps it."""
    recorded = ((record or {}).get("turn") or {}).get("reply") or {}
    view = view_data(reply, header, recorded.get("audio"))
    header = replace(header, audio=view["audio"])  # the copies say what the VIEW's player holds
    # The answer and reasoning are kept once, in the record (js/view-data.js reads them there).
    view = {k: v for k, v in view.items() if k not in FROM_RECORD or not v or recorded.get(k) != v}
    data = {
        TURN_MIME: view,
        "text/markdown": static_markdown(reply, header),
        "text/plain": static_text(reply, header),
    }
    metadata = {RECORD_KEY: record} if record is not None else {}
    return data, metadata


def whole_view(data: dict, metadata: dict) -> dict:
    """The VIEW of a ``turn_bundle`` with the fields it left to the record put back (what the
    renderer draws, for a view that is not drawn from the output: the chat panel's transcript)."""
    reply = ((metadata.get(RECORD_KEY) or {}).get("turn") or {}).get("reply") or {}
    view = data[TURN_MIME]
    return {**view, **{name: reply[name] for name in FROM_RECORD if name not in view and name in reply}}
