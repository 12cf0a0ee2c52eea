"""The turn record format: its key, version and schema, how a turn becomes one, how one is checked. Pure.

A record lives in the metadata of a ``%%chat``/``%%respond`` output under ``RECORD_KEY``
(docs/record.md describes every field). The shapes are checked by ``schema`` (the one checker,
shared with the experiment record); reading and writing notebook files is ``notebooks``'.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from elk_jupyter.conversation.session import Turn
from elk_jupyter.gateway.dialects import NAMES
from elk_jupyter.records import request_history
from elk_jupyter.records.audio import check_audio
from elk_jupyter.records.schema import NUMBER, DictOf, fields, not_json, too_deep
from elk_jupyter.version import __version__

# 2: ids unique across kernels, parents may cross conversations (forks);
# 3: a request names the earlier turns it re-sends instead of copying them (request_history)
RECORD_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
RECORD_KEY = "elk_jupyter"  # the output-metadata key that holds a turn's record

# Required keys and their JSON types; optional keys may also be null.
TURN_SCHEMA = {
    "id": str,
    "conversation": str,
    "endpoint": str,
    "prompt": str,
    "request": dict,
    "reply": dict,
    "status": str,
    "context": (list, dict),  # ids, or {"parents": k}: the last k turns of its parent chain
    "created_at": NUMBER,
}
TURN_OPTIONAL = {
    "parent": str,
    "context_tokens": int,
    "cell_id": str,
    "execution_count": int,
    "system": str,
    "mode": str,
    "host": str,
    "replayed": bool,
    "mode_reason": str,
    "origin": str,
    "attachments": list,
    "position": int,  # where in its conversation it was asked (replay identity); absent before 0.x
}
REPLY_SCHEMA = {
    "endpoint": str,
    "status": str,
    "text": str,
    "reasoning": str,
    "tool_calls": list,
    "attempts": int,
    "timing": DictOf((NUMBER, type(None))),  # ttfb, ttft, total in seconds (null when not measured)
}
REPLY_OPTIONAL = {
    "id": str,
    "model": str,
    "finish_reason": str,
    "incomplete_details": dict,
    "error": str,
    "choices": list,
    "audio": dict,
    "usage": dict,
    "request_id": str,
    "started_at": NUMBER,
    "steps": list,
}


def record_of(turn: Turn, earlier: Callable[[str], Turn | None] | None = None) -> dict:
    """The versioned record a turn leaves in its output's metadata (see docs/record.md); with
    ``earlier`` (turn id -> the kernel's turn), the earlier turns its request re-sends are named,
    not copied (``request_history``), so a notebook grows linearly with its turns."""
    data = _without_nulls(turn.to_dict(), TURN_SCHEMA)
    data["reply"] = _without_nulls(data["reply"], REPLY_SCHEMA)
    if earlier is not None:
        data["request"] = request_history.compact(turn, earlier)
        data["context"] = request_history.compact_context(turn, earlier)
    return {"version": RECORD_VERSION, "package": __version__, "turn": strict_json(data)}


def _without_nulls(data: dict, required: Mapping) -> dict:
    """``data`` without its optional keys that are null: absent and null mean the same here, and a
    notebook keeps every record (a dozen nulls were ~0.4 KB of every turn)."""
    return {key: value for key, value in data.items() if value is not None or key in required}


def strict_json(value):
    """``value`` with NaN and infinities (which servers do send in usage) as null: notebooks are
    JSON, and JavaScript's JSON.parse, like most readers, rejects NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strict_json(v) for v in value]
    return value


def turn_of(record: Mapping) -> Turn:
    """The turn a valid record holds, as saved: a context saved as ``{"parents": k}`` is left
    empty here (``notebooks.read_turns`` rebuilds it and the request from the other records)."""
    saved = record["turn"]
    return Turn.from_dict({**saved, "context": saved["context"] if isinstance(saved["context"], list) else []})


def validate(record: object) -> list[str]:
    """Every way ``record`` departs from the schema (empty when it is valid)."""
    if not isinstance(record, Mapping):
        return ["the record is not an object"]
    deep = too_deep(record)
    if deep:
        return [deep]  # one line, before any check walks it
    problems = []
    if record.get("version") not in READABLE_VERSIONS:
        problems.append(f"version is {record.get('version')!r}, expected {RECORD_VERSION}")
    if not isinstance(record.get("package"), str):
        problems.append("package (the elk-jupyter version) is missing")
    turn = record.get("turn")
    if not isinstance(turn, Mapping):
        return [*problems, "turn is missing"]
    problems += fields(turn, TURN_SCHEMA, TURN_OPTIONAL, "turn")
    if isinstance(turn.get("reply"), Mapping):
        problems += fields(turn["reply"], REPLY_SCHEMA, REPLY_OPTIONAL, "turn.reply")
    if turn.get("endpoint") not in NAMES:
        problems.append(f"turn.endpoint is {turn.get('endpoint')!r}")
    problems += _check_links(turn) + _check_history(turn)
    if isinstance(turn.get("reply"), Mapping):
        problems += _check_items(turn["reply"]) + _check_steps(turn["reply"].get("steps") or ())
        problems += check_audio(turn["reply"].get("audio"))
    problems += _check_attachments(turn.get("attachments") or ())
    return problems + not_json(record)


def _check_history(turn: Mapping) -> list[str]:
    """A request's reference to the earlier turns it re-sends: one, well formed, within context."""
    request = turn.get("request")
    field = request_history.items_field(request) if isinstance(request, Mapping) else None
    markers = [request_history.marker_of(item) for item in request[field]] if field else []
    markers = [m for m in markers if m is not None]
    if not markers:
        return []
    where = f"turn.request.{field}"
    if len(markers) > 1:
        return [f"{where} names earlier turns more than once"]
    problems = fields(markers[0], {"turns": int, "key": str}, {}, f"{where}[{request_history.MARKER}]")
    context = turn.get("context")
    size = len(context) if isinstance(context, list) else (context or {}).get("parents")
    if not problems and isinstance(size, int) and not 0 < markers[0]["turns"] <= size:
        problems.append(f"{where} names {markers[0]['turns']} earlier turns; its context holds {size}")
    return problems


def _check_links(turn: Mapping) -> list[str]:
    """The links a single record can get wrong by itself (the graph is checked by ``lineage``)."""
    problems = []
    context = turn.get("context")
    if isinstance(context, Mapping):
        problems = fields(context, {"parents": int}, {}, "turn.context")
        if not problems and context["parents"] < 1:
            problems.append("turn.context.parents should be at least 1")
        if not problems and not isinstance(turn.get("parent"), str):
            problems.append("turn.context names parents, and the turn has none")
    elif isinstance(context, list) and not all(isinstance(c, str) for c in context):
        problems.append("turn.context should hold turn ids (strings)")
    elif isinstance(context, list) and turn.get("id") in context:
        problems.append("turn.context names the turn itself")
    if turn.get("parent") is not None and turn.get("parent") == turn.get("id"):
        problems.append("turn.parent is the turn itself")
    return problems


def _check_items(reply: Mapping) -> list[str]:
    """What replay and rendering read inside the lists: each choice and tool call."""
    problems = []
    for number, choice in enumerate(reply.get("choices") or ()):
        where = f"turn.reply.choices[{number}]"
        if not isinstance(choice, Mapping):
            problems.append(f"{where} should be object")
            continue
        problems += fields(choice, {}, {"index": int, "text": str, "reasoning": str, "tool_calls": list}, where)
        problems += _check_calls(choice.get("tool_calls") or (), where)
    return problems + _check_calls(reply.get("tool_calls") or (), "turn.reply")


def _check_calls(calls, where: str) -> list[str]:
    problems = []
    for number, call in enumerate(calls):
        here = f"{where}.tool_calls[{number}]"
        if not isinstance(call, Mapping) or not isinstance(call.get("function"), Mapping):
            problems.append(f"{here} should be an object with a function object")
            continue
        problems += fields(call["function"], {}, {"name": str, "arguments": str}, f"{here}.function")
    return problems


STEP_CALL = {"id": str, "name": str, "arguments": str, "output": str, "status": str}
ATTACHMENT = {"media_type": str, "size": int, "source": str}


def _check_steps(steps) -> list[str]:
    """A tool turn's earlier steps: re-sent with later turns, so each call must be whole."""
    problems = []
    for number, step in enumerate(steps):
        where = f"turn.reply.steps[{number}]"
        if not isinstance(step, Mapping) or not isinstance(step.get("calls"), list):
            problems.append(f"{where} should be an object with a list of calls")
            continue
        problems += fields(step, {}, {"id": str, "text": str, "usage": dict}, where)
        for index, call in enumerate(step["calls"]):
            here = f"{where}.calls[{index}]"
            if not isinstance(call, Mapping):
                problems.append(f"{here} should be object")
                continue
            problems += fields(call, STEP_CALL, {"error": str, "duration": NUMBER, "redacted": int}, here)
    return problems


def _check_attachments(entries) -> list[str]:
    problems = []
    for number, entry in enumerate(entries):
        where = f"turn.attachments[{number}]"
        if not isinstance(entry, Mapping):
            problems.append(f"{where} should be object")
            continue
        problems += fields(entry, ATTACHMENT, {"digest": str, "data": str, "url": str}, where)
    return problems
