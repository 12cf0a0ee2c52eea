"""The one walker of a notebook's cells → outputs → metadata: where our records sit in a saved notebook. Pure.

Turn records (``turn.RECORD_KEY``) and experiment records (``experiment.EXPERIMENT_KEY``) sit in the
metadata of code-cell outputs. The notebook may be hand-edited: anything not shaped like a notebook
is skipped, and lone UTF-16 surrogates (valid JSON escapes, invalid text) are replaced.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping

from elk_jupyter.gateway.frames import scrub
from elk_jupyter.records.schema import too_deep


def outputs_holding(nb: Mapping, key: str) -> Iterator[tuple[MutableMapping, object]]:
    """(output, its metadata's ``key`` value) for each code-cell output holding one, in cell order
    (a cell re-run in place keeps only its last outputs). The output is the notebook's own: a
    caller rewriting a notebook replaces its data and metadata in place."""
    cells = nb.get("cells")
    for cell in cells if isinstance(cells, list) else ():
        if not isinstance(cell, Mapping) or cell.get("cell_type") != "code":
            continue
        outputs = cell.get("outputs")
        for output in outputs if isinstance(outputs, list) else ():
            metadata = output.get("metadata") if isinstance(output, Mapping) else None
            found = metadata.get(key) if isinstance(metadata, Mapping) else None
            if found is not None:
                yield output, found


def records_under(nb: Mapping, key: str) -> Iterator[object]:
    """Each record under ``key``, its text scrubbed; one nested too deep to walk is yielded as it
    is, for the validator to refuse in one line."""
    for _, found in outputs_holding(nb, key):
        yield found if too_deep(found) else scrub(found)
