"""Earlier turns inside a saved request, kept once: a turn's record names them instead of copying them. Pure.

A request re-sends the earlier turns of its conversation (chat messages, Responses input items).
Copied into every record, turn n's record held turns 1..n-1 again and a notebook grew with the
square of its length (bench/saved_notebook.py: 124 KB a turn over 100 turns, 12.4 MB in all). The
items that re-send earlier turns are a pure function of those turns (``Dialect.history_items``:
each one's prompt or parts as sent, tool steps, reply text or audio id, at the turn's own time),
and those turns' records are in the same notebook. So the record keeps one marker in their place:

    {"elk_history": {"turns": k, "key": "<request key of the whole body>"}}

meaning "the items of the last ``k`` turns of ``context``", and ``expand`` rebuilds the exact body
when the notebook is read. ``compact`` writes the marker only when expanding it gives back the body
exactly (else the record keeps the body as it is: a ``--param messages=…``, an audio id that
expired between planning and recording); ``key`` (``identity.request_key`` of the whole body and
host, the replay identity) tells a rebuilt body from one whose earlier turns were edited since.

``context`` (the ids of the turns the model saw) grew the same way, one id per earlier turn. It is
almost always the last ``k`` turns of the turn's own parent chain, and is then saved as
``{"parents": k}`` (``compact_context``), rebuilt by following ``parent`` links.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from elk_jupyter.conversation.identity import request_key
from elk_jupyter.conversation.session import Turn
from elk_jupyter.gateway.dialects import dialect

MARKER = "elk_history"


class Unrebuildable(ValueError):
    """A saved request whose earlier turns cannot be put back: one line saying why."""


def items_field(request: Mapping) -> str | None:
    """Where a body keeps its items: chat ``messages``, Responses ``input`` (a list), else None."""
    for name in ("messages", "input"):
        if isinstance(request.get(name), list):
            return name
    return None


def marker_of(item) -> Mapping | None:
    """The marker's value when ``item`` is one (a dict whose only key is ``MARKER``), else None."""
    if isinstance(item, Mapping) and len(item) == 1 and isinstance(item.get(MARKER), Mapping):
        return item[MARKER]
    return None


def resent(turn: Turn, earlier: Callable[[str], Turn | None]) -> list[Turn] | None:
    """The context turns whose items ``turn``'s body holds (after the response a Responses chain
    continues from, else all of them), or None when one of them is unknown."""
    context = [earlier(turn_id) for turn_id in turn.context]
    if any(t is None for t in context):
        return None
    chained = turn.request.get("previous_response_id") if isinstance(turn.request, Mapping) else None
    if chained:
        for position in range(len(context) - 1, -1, -1):
            if context[position].reply.get("id") == chained:
                return context[position + 1 :]
    return context


def compact(turn: Turn, earlier: Callable[[str], Turn | None]) -> dict:
    """``turn.request`` with the items of its earlier turns as one marker, when ``expand`` gives
    back exactly this body; otherwise the body as it is."""
    request, field = turn.request, items_field(turn.request)
    turns = resent(turn, earlier) if field else None
    if not turns:
        return request
    items = request[field]
    history = dialect(turn.endpoint).history_items(turns, turn.created_at)
    for at in (0, 1):  # first, or after chat's system message
        # Equal items are what ``expand`` puts back: the same function of the same turns (their
        # saved form gives the same items: strings kept as they are, an audio expiry that is not
        # a number read as expired either way).
        if items[at : at + len(history)] == history:
            marker = {MARKER: {"turns": len(turns), "key": request_key(request, turn.host)}}
            return {**request, field: [*items[:at], marker, *items[at + len(history) :]]}
    return request


def expand(request: Mapping, turn: Turn, earlier: Callable[[str], Turn | None]) -> dict:
    """The exact body a saved ``request`` (of ``turn``) stands for: its marker replaced by the
    items of the earlier turns it names; ``Unrebuildable`` when they are missing or were edited."""
    field = items_field(request)
    found = [n for n, item in enumerate(request[field]) if marker_of(item) is not None] if field else []
    if not found:
        return dict(request)
    marker = marker_of(request[field][found[0]])
    count = marker.get("turns")
    if len(found) > 1 or not isinstance(count, int) or isinstance(count, bool) or not 0 < count <= len(turn.context):
        raise Unrebuildable("its request's reference to earlier turns is malformed")
    missing = [t for t in turn.context[-count:] if earlier(t) is None]
    if missing:
        raise Unrebuildable(f"its request re-sends turn {missing[0][:8]}, which is not in this notebook")
    history = dialect(turn.endpoint).history_items([earlier(t) for t in turn.context[-count:]], turn.created_at)
    items = request[field]
    body = {**request, field: [*items[: found[0]], *history, *items[found[0] + 1 :]]}
    if request_key(body, turn.host) != marker.get("key"):
        raise Unrebuildable("the earlier turns its request re-sends were edited after it was asked")
    return body


def compact_context(turn: Turn, earlier: Callable[[str], Turn | None]) -> list | dict:
    """``turn.context`` as ``{"parents": k}`` when it is the last ``k`` turns of its parent chain
    (what the context policy leaves), else the list of ids."""
    context = list(turn.context)
    if context and parent_chain(turn.parent, len(context), earlier) == (context, None):
        return {"parents": len(context)}
    return context


def expand_context(saved, parent: str | None, earlier: Callable[[str], Turn | None]) -> tuple[str, ...]:
    """The ids a saved ``context`` stands for; ``Unrebuildable`` when its chain is broken."""
    if isinstance(saved, list):
        return tuple(saved)
    ids, problem = parent_chain(parent, saved["parents"], earlier)
    if problem is not None:
        raise Unrebuildable(problem)
    return tuple(ids)


def parent_chain(parent: str | None, count: int, earlier: Callable[[str], Turn | None]) -> tuple[list[str], str | None]:
    """(the ``count`` turns ending at ``parent``, oldest first, following parent links; why the
    chain ends before that, or None). A hand-edited loop of parents ends it, however large ``count``."""
    ids: list[str] = []
    seen: set[str] = set()
    while len(ids) < count:
        turn = earlier(parent) if parent is not None else None
        if parent is None:
            return ids[::-1], f"its context names {count} turns; its parent chain holds {len(ids)}"
        if turn is None and not ids:
            return [], f"its parent {parent[:8]} is not in this notebook"
        if turn is None:
            return ids[::-1], f"its context goes back through turn {parent[:8]}, which is not in this notebook"
        if turn.id in seen:
            return ids[::-1], f"its parents form a cycle (through turn {turn.id[:8]})"
        ids.append(turn.id)
        seen.add(turn.id)
        parent = turn.parent
    return ids[::-1], None
