"""Turn records in saved notebooks: the only module that imports nbformat (lazily).

A record lives in the metadata of a ``%%chat``/``%%respond`` output under ``"elk_jupyter"``
(schema in docs/record.md). From a saved .ipynb this module reads the turns back in cell
order, checks each record against the schema, and finds the notebook a kernel is running.

Reading records needs only JSON: the first turn of a kernel reads the notebook to replay from
it, and importing nbformat there (jsonschema and its format checkers) cost 1.35 s (issue 12).
nbformat is imported only to read a notebook for rewriting it, and to write one.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from .errors import ElkError
from .frames import scrub
from .record_audio import check_audio, inline_audio, place_audio  # noqa: F401 - one import for callers
from .session import READABLE_VERSIONS, RECORD_KEY, RECORD_VERSION, Turn

# Required keys and their JSON types; optional keys may also be null.
TURN_SCHEMA = {
    "id": str,
    "conversation": str,
    "endpoint": str,
    "prompt": str,
    "request": dict,
    "reply": dict,
    "status": str,
    "context": list,
    "created_at": (int, float),
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
}
REPLY_SCHEMA = {
    "endpoint": str,
    "status": str,
    "text": str,
    "reasoning": str,
    "tool_calls": list,
    "attempts": int,
    "timing": dict,
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
    "started_at": (int, float),
}


def validate(record: object) -> list[str]:
    """Every way ``record`` departs from the schema (empty when it is valid)."""
    if not isinstance(record, Mapping):
        return ["the record is not an object"]
    problems = []
    if record.get("version") not in READABLE_VERSIONS:
        problems.append(f"version is {record.get('version')!r}, expected {RECORD_VERSION}")
    if not isinstance(record.get("package"), str):
        problems.append("package (the elk-jupyter version) is missing")
    turn = record.get("turn")
    if not isinstance(turn, Mapping):
        return [*problems, "turn is missing"]
    problems += _check(turn, TURN_SCHEMA, TURN_OPTIONAL, "turn")
    if isinstance(turn.get("reply"), Mapping):
        problems += _check(turn["reply"], REPLY_SCHEMA, REPLY_OPTIONAL, "turn.reply")
    if turn.get("endpoint") not in ("chat", "responses"):
        problems.append(f"turn.endpoint is {turn.get('endpoint')!r}")
    problems += _check_links(turn)
    if isinstance(turn.get("reply"), Mapping):
        problems += _check_items(turn["reply"])
        problems += check_audio(turn["reply"].get("audio"))
    problems += [f"{where} is {value} (not JSON)" for where, value in _non_finite(record, "record")]
    return problems


def _check_links(turn: Mapping) -> list[str]:
    """The links a single record can get wrong by itself (the graph is checked by ``lineage``)."""
    problems = []
    context = turn.get("context")
    if isinstance(context, list) and not all(isinstance(c, str) for c in context):
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
        problems += _check(choice, {}, {"index": int, "text": str, "reasoning": str, "tool_calls": list}, where)
        problems += _check_calls(choice.get("tool_calls") or (), where)
    return problems + _check_calls(reply.get("tool_calls") or (), "turn.reply")


def _check_calls(calls, where: str) -> list[str]:
    problems = []
    for number, call in enumerate(calls):
        here = f"{where}.tool_calls[{number}]"
        if not isinstance(call, Mapping) or not isinstance(call.get("function"), Mapping):
            problems.append(f"{here} should be an object with a function object")
            continue
        problems += _check(call["function"], {}, {"name": str, "arguments": str}, f"{here}.function")
    return problems


def _non_finite(value, where: str):
    """Each NaN or infinity in ``value``: a notebook is JSON, which has neither."""
    if isinstance(value, float) and not math.isfinite(value):
        yield where, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _non_finite(item, f"{where}.{key}")
    elif isinstance(value, list):
        for number, item in enumerate(value):
            yield from _non_finite(item, f"{where}[{number}]")


def _check(data: Mapping, required: dict, optional: dict, where: str) -> list[str]:
    problems = []
    for key, kind in required.items():
        if not isinstance(data.get(key), kind) or isinstance(data.get(key), bool) and kind is not bool:
            problems.append(f"{where}.{key} should be {_name(kind)}, got {type(data.get(key)).__name__}")
    for key, kind in optional.items():
        value = data.get(key)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool) and kind is not bool):
            problems.append(f"{where}.{key} should be {_name(kind)} or null, got {type(value).__name__}")
    return problems


def _name(kind) -> str:
    return " or ".join(k.__name__ for k in kind) if isinstance(kind, tuple) else kind.__name__


def read_notebook(path: str | os.PathLike):
    """Read a notebook as an ``nbformat.NotebookNode`` (to rewrite it), or raise an ElkError."""
    import nbformat

    try:
        return nbformat.read(str(path), as_version=4)
    except FileNotFoundError:
        raise ElkError(f"{path}: no such file") from None
    except (
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        nbformat.ValidationError,
        nbformat.reader.NotJSONError,
    ) as err:
        raise ElkError(f"{path}: not a Jupyter notebook ({type(err).__name__})") from None


def read_json(path: str | os.PathLike) -> dict:
    """A notebook file as plain JSON (enough to read records), or an ElkError saying what is wrong."""
    try:
        with open(path, "rb") as file:
            nb = json.load(file)
    except FileNotFoundError:
        raise ElkError(f"{path}: no such file") from None
    except (OSError, ValueError, RecursionError) as err:
        raise ElkError(f"{path}: not a Jupyter notebook ({type(err).__name__})") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise ElkError(f"{path}: not a Jupyter notebook (no list of cells)")
    return nb


def write_notebook(nb, path: str | os.PathLike) -> None:
    import nbformat

    nbformat.write(nb, str(path))


def iter_records(nb: Mapping) -> Iterator[dict]:
    """Each turn record in cell order (a cell re-run in place keeps only its last output).

    The notebook may be hand-edited: anything not shaped like a notebook is skipped, and lone
    UTF-16 surrogates (valid JSON escapes, invalid text) are replaced.
    """
    cells = nb.get("cells")
    for cell in cells if isinstance(cells, list) else ():
        if not isinstance(cell, Mapping) or cell.get("cell_type") != "code":
            continue
        outputs = cell.get("outputs")
        for output in outputs if isinstance(outputs, list) else ():
            metadata = output.get("metadata") if isinstance(output, Mapping) else None
            record = metadata.get(RECORD_KEY) if isinstance(metadata, Mapping) else None
            if record is not None:
                yield scrub(record)


def read_turns(path: str | os.PathLike) -> tuple[list[Turn], list[str]]:
    """(the valid turns of a saved notebook, a one-line reason for each record that is not)."""
    turns, unusable = [], []
    for number, record in enumerate(iter_records(read_json(path)), 1):
        problems = validate(record)
        if problems:
            turn_id = (record.get("turn") or {}).get("id") if isinstance(record, Mapping) else None
            named = f" (turn {turn_id[:8]})" if isinstance(turn_id, str) else ""
            unusable.append(f"{path}: record {number}{named} is invalid: {'; '.join(problems[:3])}")
        else:
            turns.append(Turn.from_dict(inline_audio(record, Path(path).parent)["turn"]))
    return turns, unusable


def load_turns(path: str | os.PathLike) -> list[Turn]:
    """The turns recorded in a saved notebook; a record that fails the schema is an error."""
    turns, unusable = read_turns(path)
    if unusable:
        raise ElkError(unusable[0])
    return turns


def current_notebook(user_ns: Mapping) -> Path | None:
    """The notebook this kernel serves, as the front-end tells it (JupyterLab, VS Code)."""
    for candidate in (user_ns.get("__vsc_ipynb_file__"), os.environ.get("JPY_SESSION_NAME")):
        if candidate and str(candidate).endswith(".ipynb") and Path(candidate).is_file():
            return Path(candidate)
    return None
