"""How saved turns link up, checked once: distinct ids, parents that exist, no cycles, contexts
drawn from a turn's own ancestors; and the merge of saved turns into a kernel's notebook.

Pure. ``%elk restore`` and ``elk-jupyter export`` both go through ``merge``, which checks
everything before it changes anything: a bad history is one HistoryError naming the turn,
never a hang and never a half-restored notebook. The rules are in docs/record.md ("Restore").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from elk_jupyter.conversation.session import Conversations, Turn, accepted, short
from elk_jupyter.errors import HistoryError


def ordered(turns: list[Turn], known: Mapping[str, Turn], linked: Mapping[str, Turn] | None = None) -> list[Turn]:
    """The distinct turns not yet in ``known``, each after its parent (else in the given order).

    Parents and contexts may also name turns in ``linked`` (default ``known``).
    """
    linked = known if linked is None else linked
    fresh: dict[str, Turn] = {}
    for turn in turns:
        same = fresh.get(turn.id)
        if same is not None and same != turn:
            raise HistoryError(f"turn {short(turn.id)}: two different records carry this id")
        fresh[turn.id] = turn  # an identical copy (a cell copied with its output) is the same turn
    fresh = {i: t for i, t in fresh.items() if i not in known}
    for turn in fresh.values():
        if turn.parent == turn.id:
            raise HistoryError(f"turn {short(turn.id)} names itself as its parent")
        if turn.parent is not None and turn.parent not in fresh and turn.parent not in linked:
            raise HistoryError(f"turn {short(turn.id)}: its parent {short(turn.parent)} is not in the notebook")
    result: list[Turn] = []
    state: dict[str, str] = {}  # "walking" while on the current parent path, then "done"
    for start in fresh:
        path, node = [], start
        while node in fresh and state.get(node) != "done":
            if state.get(node) == "walking":  # only this walk marks nodes "walking": a loop
                raise HistoryError(f"turn {short(node)}: its parents form a cycle")
            state[node] = "walking"
            path.append(node)
            node = fresh[node].parent
        for node in reversed(path):
            state[node] = "done"
            result.append(fresh[node])
    _check_contexts(result, {**linked, **fresh})
    return result


def _check_contexts(turns: list[Turn], everything: Mapping[str, Turn]) -> None:
    """A turn can only have been sent with turns on its own parent chain.

    Checked in time linear in the turns and their contexts, however far back a context reaches
    (a context naming the first turn made the walk up the chain quadratic): one depth-first walk
    numbers every turn, and ``c`` is an ancestor of ``t`` when ``t``'s number falls inside the
    range of ``c``'s subtree."""
    first, last = _subtree_ranges(everything)
    for turn in turns:
        at = first.get(turn.id)
        for wanted in turn.context:
            if wanted == turn.id or at is None or wanted not in first or not first[wanted] < at <= last[wanted]:
                raise HistoryError(
                    f"turn {short(turn.id)}: its context names {short(wanted)}, which is not one of its earlier turns"
                )


def _subtree_ranges(everything: Mapping[str, Turn]) -> tuple[dict[str, int], dict[str, int]]:
    """({id: its number in a depth-first walk}, {id: the last number inside its subtree}).

    Turns whose parent chain loops (never among checked turns: ``ordered`` refuses a cycle)
    have no number."""
    children: dict[str, list[str]] = {}
    roots = []
    for turn_id, turn in everything.items():
        if turn.parent is None or turn.parent not in everything or turn.parent == turn_id:
            roots.append(turn_id)
        else:
            children.setdefault(turn.parent, []).append(turn_id)
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for root in roots:
        stack = [(root, False)]
        while stack:
            node, leaving = stack.pop()
            if leaving:
                last[node] = len(first) - 1
                continue
            first[node] = len(first)
            stack.append((node, True))
            stack += [(child, False) for child in children.get(node, ())]
    return first, last


@dataclass
class Merge:
    """What a merge did: the turns added (parents first) and the conversations it settled."""

    added: list[Turn] = field(default_factory=list)
    conversations: list[str] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)  # failed turns that later turns built on


def merge(conversations: Conversations, saved: list[Turn]) -> Merge:
    """Add the saved turns the notebook does not have yet, by id and parent; then each touched
    conversation's context is the chain of its most recent successful turn, saved or live."""
    # A turn is already here only if its conversation is: `%elk reset` then restore brings it back.
    alive = {i: t for i, t in conversations.index.items() if t.conversation in conversations.conversations}
    added = ordered(saved, alive, conversations.index)
    parents = {t.parent for t in added} | {t.parent for t in conversations.index.values()}
    result = Merge()
    for turn in added:
        if not turn.ok and turn.id in parents:
            # Only a turn in the context can be a parent, so this one was accepted (%elk accept).
            turn = accepted(turn)
            result.accepted.append(turn.id)
        conversation = conversations.conversation(turn.conversation)
        conversation.system = turn.system or conversation.system
        conversation.add(turn)
        result.added.append(turn)
    result.conversations = sorted({t.conversation for t in added})
    for name in result.conversations:
        conversations.conversations[name].settle()
    return result
