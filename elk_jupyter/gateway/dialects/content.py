"""What both dialects read of an earlier turn: its user content parts as recorded (whichever
endpoint sent them) and its tool steps. Pure.

Parts are kept endpoint-neutral between the two: ``{"type": "text", "text": ...}`` and
``{"type": "image", "url": ...}`` (a URL, a data URL or ``attachments``' placeholder). Each
dialect writes them in its own shape (``user_content``); a conversation may mix endpoints, so an
earlier turn's recorded parts are read in either shape here.
"""

from __future__ import annotations

from collections.abc import Mapping

_TEXT = {"text", "input_text"}  # chat's and Responses' text part
_IMAGE = {"image_url", "input_image"}  # chat's and Responses' image part


def text(value: str) -> dict:
    return {"type": "text", "text": value}


def image(url: str) -> dict:
    return {"type": "image", "url": url}


def neutral(content) -> list[dict] | None:
    """Recorded content parts (either endpoint's shape) as neutral parts; None for plain text."""
    if not isinstance(content, list):
        return None
    parts = []
    for part in content:
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind in _TEXT:
            parts.append(text(str(part.get("text", ""))))
        elif kind in _IMAGE:
            url = part.get("image_url")
            url = url.get("url") if isinstance(url, Mapping) else url
            if isinstance(url, str):
                parts.append(image(url))
    return parts


def sent_parts(turn) -> list[dict] | None:
    """The parts of the user message ``turn`` sent (files, images), or None if it sent text only."""
    request = turn.request if isinstance(turn.request, Mapping) else {}
    last = request.get("messages") if "messages" in request else request.get("input")
    if isinstance(last, list):
        last = last[-1] if last else None
    return neutral(last.get("content")) if isinstance(last, Mapping) else None


def steps(turn) -> list[dict]:
    """A tool turn's steps (``reply.steps``): each one's calls and the results sent back."""
    found = turn.reply.get("steps") if isinstance(turn.reply, Mapping) else None
    if not isinstance(found, list):
        return []
    return [s for s in found if isinstance(s, Mapping) and isinstance(s.get("calls"), list)]
