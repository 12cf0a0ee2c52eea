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
from pathlib import Path

from elk_jupyter.conversation.session import Turn
from elk_jupyter.errors import ElkError
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
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise ElkError(f"{path}: not a Jupyter notebook (no list of cells)")
    return nb


def write_notebook(nb, path: str | os.PathLike) -> None:
    import nbformat

    nbformat.write(nb, str(path))


def iter_records(nb: Mapping) -> Iterator[object]:
    """Each turn record in cell order (see ``metadata.records_under``)."""
    return records_under(nb, RECORD_KEY)


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
            turns.append(turn_of(inline_audio(record, Path(path).parent)))  # a clip beside it plays on replay
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
