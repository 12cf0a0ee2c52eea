"""Saved notebooks: reading their turn records, rewriting and writing them. The only module that
imports nbformat (lazily), and the one that finds the notebook a kernel serves.

Reading records needs only JSON: the first turn of a kernel reads the notebook to replay from
it, and importing nbformat there (jsonschema and its format checkers) cost 1.35 s (issue 12).
nbformat is imported only to read a notebook for rewriting it, and to write one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path

from elk_jupyter.conversation.session import Turn
from elk_jupyter.errors import ElkError
from elk_jupyter.records import request_history
from elk_jupyter.records.audio_files import inline_audio
from elk_jupyter.records.metadata import records_under
from elk_jupyter.records.turn import RECORD_KEY, turn_of, validate


def read_notebook(path: str | os.PathLike):
    """Read a notebook as an ``nbformat.NotebookNode`` (to rewrite it), or raise an ElkError."""
    import nbformat

    try:
        return nbformat.read(str(path), as_version=4)
    except FileNotFoundError:
        raise ElkError(f"{path}: no such file") from None
    except RecursionError:  # nbformat validates recursively: a hand-edited value nested a few hundred deep
        raise ElkError(f"{path}: not a Jupyter notebook (nested too deep to read)") from None
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
    except RecursionError:
        raise ElkError(f"{path}: not a Jupyter notebook (nested too deep to read)") from None
    except (OSError, ValueError) as err:
        raise ElkError(f"{path}: not a Jupyter notebook ({type(err).__name__})") from None
    if isinstance(nb, dict) and nb.get("nbformat") != 4 and "cells" not in nb:
        return _upgraded(nb, path)
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise ElkError(f"{path}: not a Jupyter notebook (no list of cells)")
    return nb


def _upgraded(nb: dict, path) -> dict:
    """An older notebook (nbformat 3 keeps its cells in ``worksheets``) converted to version 4 by
    nbformat itself, or one line naming its version and the command that upgrades it."""
    import nbformat

    version = nb.get("nbformat")
    upgrade = f"upgrade it with: jupyter nbconvert --to notebook --nbformat 4 {path}"
    if version not in (3, 2, 1) or not isinstance(nb.get("worksheets", []), list):
        raise ElkError(f"{path}: not a Jupyter notebook (no list of cells; nbformat {version!r})")
    try:
        converted = nbformat.convert(nbformat.from_dict(nb), 4)
    except Exception as err:  # nbformat's converters assume a well-formed notebook
        raise ElkError(
            f"{path}: an nbformat {version} notebook that cannot be converted ({type(err).__name__}); {upgrade}"
        ) from None
    if not isinstance(converted.get("cells"), list):
        raise ElkError(f"{path}: an nbformat {version} notebook; {upgrade}")
    return json.loads(json.dumps(converted))  # plain dicts and lists, like a version 4 file


def write_notebook(nb, path: str | os.PathLike) -> None:
    import nbformat

    nbformat.write(nb, str(path))


def iter_records(nb: Mapping) -> Iterator[object]:
    """Each turn record in cell order (see ``metadata.records_under``)."""
    return records_under(nb, RECORD_KEY)


def read_turns(path: str | os.PathLike, only: tuple | None = None) -> tuple[list[Turn], list[str]]:
    """(the valid turns of a saved notebook, a one-line reason for each record that is not);
    ``only`` = (cell id, source): that cell's alone (``cells_named``). A request that names the
    earlier turns it re-sent is rebuilt from their records, wherever they are in the notebook."""
    nb = read_json(path)
    chosen, unusable = _valid(iter_records(nb if only is None else cells_named(nb, *only)), path)
    everything = chosen if only is None else _valid(iter_records(nb), path)[0]
    index = {turn.id: turn for _, _, turn in everything}
    turns = []
    for named, saved, turn in chosen:
        try:
            turn = replace(turn, context=request_history.expand_context(saved["context"], turn.parent, index.get))
            turns.append(replace(turn, request=request_history.expand(turn.request, turn, index.get)))
        except request_history.Unrebuildable as err:
            unusable.append(f"{path}: {named} cannot be rebuilt: {err}")
    return turns, unusable


def _valid(records, path) -> tuple[list[tuple[str, dict, Turn]], list[str]]:
    """((a record's name for messages, its turn as saved, its Turn) for each valid record, a line
    for each other)."""
    valid, unusable = [], []
    for number, record in enumerate(records, 1):
        problems = validate(record)
        if problems:
            unusable.append(f"{path}: {_named_record(number, record)} is invalid: {'; '.join(problems[:3])}")
        else:  # a clip beside the notebook plays on replay
            turn = turn_of(inline_audio(record, Path(path).parent))
            valid.append((_named_record(number, record), record["turn"], turn))
    return valid, unusable


def _named_record(number: int, record) -> str:
    turn_id = (record.get("turn") or {}).get("id") if isinstance(record, Mapping) else None
    return f"record {number}" + (f" (turn {turn_id[:8]})" if isinstance(turn_id, str) else "")


def cells_named(nb: Mapping, cell_id: str | None, source: str | None) -> dict:
    """The notebook with only the cell ``cell_id``, or, where the front-end sent no id (nbclient),
    the cells whose source is ``source``: a chat panel keeps its turns in its own cell."""
    cells = nb.get("cells") if isinstance(nb.get("cells"), list) else []
    return {"cells": [c for c in cells if isinstance(c, Mapping) and _named(c, cell_id, source)]}


def _named(cell: Mapping, cell_id: str | None, source: str | None) -> bool:
    if cell_id is not None:
        return cell.get("id") == cell_id
    text = cell.get("source")
    text = "".join(text) if isinstance(text, list) and all(isinstance(t, str) for t in text) else text
    return source is not None and text == source


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
