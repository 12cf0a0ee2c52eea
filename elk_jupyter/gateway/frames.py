"""JSON frames from any server, read defensively: a field of the wrong type is ignored, never a crash.

Shared by both dialects (``endpoints`` for Chat Completions, ``responses`` for the Responses API).
"""

from __future__ import annotations

import json
import re

from elk_jupyter.errors import APIError, StreamError, error_fields

_decoder = json.JSONDecoder()
_raw_decode = _decoder.raw_decode  # the C scanner, without decode()'s two whitespace regexes (hot path)


def parse_json(data: str) -> object:
    try:
        obj, end = _raw_decode(data)
        if end == len(data) or data[end:].isspace():
            return obj
    except ValueError:
        pass
    try:  # leading whitespace, or not JSON at all: the full decoder says which
        return _decoder.decode(data)
    except ValueError:
        excerpt = data if len(data) <= 120 else data[:117] + "..."
        raise StreamError(f"malformed JSON frame from the server: {excerpt!r}") from None


def raise_if_error(obj: object) -> None:
    fields = error_fields(scrub(obj))
    if fields is not None:
        raise APIError(fields.pop("message"), **fields)


def first_text(*values) -> str:
    for value in values:
        if isinstance(value, str) and value:
            return value
    return ""


# Servers send JSON of any shape; a field of the wrong type is ignored, never a crash.
def as_dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def dicts(value) -> list[dict]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def as_str(value) -> str | None:
    if type(value) is str:
        return value if value.isascii() else scrub(value)
    return value if isinstance(value, str) else None


# -- UTF-16 surrogates. JSON may escape each half of an astral character (an emoji) on its own,
# and servers written in JavaScript cut text by UTF-16 code unit, so "\ud83d" and "\ude00" can
# arrive in two frames (issue 12). json decodes each to a lone surrogate, which no UTF-8 encoder
# (records, cache, terminal, kernel messages) accepts: pair them up or replace them, at the edge.
_SURROGATE = re.compile("[\\ud800-\\udfff]")


def scrub(value):
    """``value`` (deep) with surrogate pairs joined and lone surrogates replaced by U+FFFD."""
    if isinstance(value, str):
        if value.isascii() or _SURROGATE.search(value) is None:
            return value
        return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    if isinstance(value, dict):
        return {scrub(k): scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


def join_halves(held: str, text: str) -> tuple[str, str]:
    """One piece of a streamed string (a choice's text, its reasoning, a call's arguments).

    ``held`` is a high surrogate the previous piece ended with. Returns the text to use now and
    the high surrogate to keep back for the next piece (or ""); whatever stays unpaired becomes
    U+FFFD. Callers skip this for ASCII pieces when nothing is held: the hot path stays free.
    """
    if held:
        text = held + text
    if _SURROGATE.search(text) is None:
        return text, ""
    if "\ud800" <= text[-1] <= "\udbff":
        return scrub(text[:-1]), text[-1]
    return scrub(text), ""


def as_index(value, default: int) -> int | None:
    """A choice or tool-call index: a small non-negative int (n is at most 128 at OpenAI)."""
    if value is None:
        return default
    return value if type(value) is int and 0 <= value < 1024 else None


def raise_mid_stream(obj: dict) -> None:
    # A cheap look first: this runs on every frame, and error frames are rare.
    if not (
        "error" in obj
        or "detail" in obj
        or obj.get("object") == "error"
        or obj.get("type") in ("error", "response.failed")
    ):
        return
    fields = error_fields(scrub(obj))
    if fields is not None:
        message = fields.pop("message")
        tags = ", ".join(str(v) for v in (fields.get("type"), fields.get("code")) if v)
        raise StreamError(f"error from the server mid-stream{f' [{tags}]' if tags else ''}: {message}", **fields)
