"""A chat panel's cell run again (Run All, a restarted kernel, a reopened notebook): the turns its
cell kept in the saved notebook, and those it made in this kernel, go back into the conversations
(as ``%elk restore`` merges them: checked first, all or nothing) and back into the cell's outputs,
so the notebook keeps every panel turn and the cells after it continue, or replay, that history.
"""

from __future__ import annotations

import weakref
from pathlib import Path

from elk_jupyter.conversation import lineage
from elk_jupyter.display.header import header_of
from elk_jupyter.display.turn_output import turn_bundle
from elk_jupyter.errors import ElkError
from elk_jupyter.front.chat_view import prompt_bundle
from elk_jupyter.gateway.reply import Reply
from elk_jupyter.records import notebooks
from elk_jupyter.records.turn import record_of

_MADE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # kernel state -> {panel cell: [turn ids]}


def panel_cell(parent_header: dict) -> tuple | None:
    """The cell a panel was opened in, as a saved notebook can be searched for it: (its id, or None
    where the front-end sends none, as nbclient; its source). None outside a cell."""
    cell_id = (parent_header.get("metadata") or {}).get("cellId")
    source = (parent_header.get("content") or {}).get("code")
    if not isinstance(source, str):
        return None
    return (cell_id if isinstance(cell_id, str) else None, source)


def remember(runner, cell: tuple | None, turn_id: str) -> None:
    """A turn the panel of ``cell`` made in this kernel (its outputs go if the cell runs again)."""
    if cell is not None:
        _MADE.setdefault(runner.state, {}).setdefault(cell, []).append(turn_id)


def restore(runner, cell: tuple | None) -> tuple[list, str]:
    """(the turns of the panel in ``cell`` (``panel_cell``), oldest first; a problem to tell, or "")."""
    if cell is None:
        return [], ""
    saved, problem = _saved(runner, cell)
    index = runner.conversations.index
    made = [index[i] for i in _MADE.get(runner.state, {}).get(cell, []) if i in index]
    turns = {turn.id: index.get(turn.id, turn) for turn in [*saved, *made]}
    return sorted(turns.values(), key=lambda turn: turn.created_at), problem


def _saved(runner, cell: tuple) -> tuple[list, str]:
    path = runner.state.locate_notebook()
    if path is None or not Path(path).is_file():
        return [], ""
    try:
        turns, unusable = notebooks.read_turns(path, cell)
        merged = lineage.merge(runner.conversations, turns)
    except ElkError as err:
        return [], f"the panel's saved turns were not restored: {err}"
    runner.state.index_turns(merged.added)  # the cells after the panel may replay from them
    return turns, (unusable[0] if unusable else "")


def bundles(turn, earlier) -> list[tuple[dict, dict]]:
    """A kept turn as the panel first published it: its prompt, then its finished-turn bundle
    (``earlier``: turn id -> turn, the kernel's index, for the record's history references)."""
    reply = Reply.from_dict(turn.reply, turn.request)
    record = record_of(turn, earlier)
    data, metadata = turn_bundle(reply, header_of(record["turn"]), record)
    return [(prompt_bundle(turn.prompt), {}), (data, metadata)]
