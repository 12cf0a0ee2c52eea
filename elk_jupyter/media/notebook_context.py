"""What the notebook itself can tell the model: a bounded preview of a DataFrame, the last error
with its cell, the sources of the cells run before. Pure: it reads values it is handed and never
imports pandas or IPython (a DataFrame is recognised by its type's module and attributes).
"""

from __future__ import annotations

import linecache
import re
import traceback

PREVIEW_ROWS = 5
PREVIEW_COLUMNS = 20
CELL_WIDTH = 60
ERROR_CHARS = 8_000
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07")


def prompt_text(value) -> str:
    """How an interpolated value reads in a prompt: a DataFrame or Series as a bounded preview,
    anything else as ``str``. Never the full repr of a big frame."""
    module = type(value).__module__ or ""
    if module.startswith("pandas") and hasattr(value, "shape") and hasattr(value, "dtypes"):
        if hasattr(value, "columns"):
            return dataframe_preview(value)
        return dataframe_preview(value.to_frame())
    return str(value)


def dataframe_preview(frame, rows: int = PREVIEW_ROWS) -> str:
    """Shape, dtypes and the first rows as a Markdown table; only ``rows`` rows and
    ``PREVIEW_COLUMNS`` columns are ever read, whatever the frame's size."""
    height, width = frame.shape
    shown = frame.iloc[:rows, :PREVIEW_COLUMNS]
    names = [_cell(c) for c in shown.columns]
    dtypes = ", ".join(f"{_cell(c)}: {t}" for c, t in list(frame.dtypes.items())[:PREVIEW_COLUMNS])
    more = f" (first {PREVIEW_COLUMNS} shown)" if width > PREVIEW_COLUMNS else ""
    lines = [
        f"DataFrame: {height} rows × {width} columns{more}",
        f"dtypes: {dtypes}",
        "",
        "| " + " | ".join(["", *names]) + " |",
        "|" + "---|" * (len(names) + 1),
    ]
    for index, row in zip(shown.index, shown.itertuples(index=False), strict=True):
        lines.append("| " + " | ".join([_cell(index), *(_cell(v) for v in row)]) + " |")
    if height > rows:
        lines.append(f"({height - rows} more rows not shown)")
    return "\n".join(lines)


def _cell(value) -> str:
    text = " ".join(str(value).split()).replace("|", "\\|")
    return text if len(text) <= CELL_WIDTH else text[: CELL_WIDTH - 1] + "…"


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def last_error(exc_type, exc_value, tb, cell_sources: dict) -> str:
    """The last error as plain text: the failing cell's source, then the traceback (ANSI codes
    removed, bounded to its last ``ERROR_CHARS`` characters). ``cell_sources`` maps a cell's code
    file name to its source (IPython's compiled cells)."""
    if exc_value is None:
        raise ValueError("no error to explain yet: run the failing cell first")
    lines = traceback.format_exception(exc_type, exc_value, tb)
    trace = strip_ansi("".join(lines)).strip()
    if len(trace) > ERROR_CHARS:
        trace = "…" + trace[-ERROR_CHARS:]
    source = _failing_cell(tb, cell_sources)
    parts = [f"The failing cell:\n```python\n{strip_ansi(source).rstrip()}\n```"] if source else []
    parts.append(f"The traceback:\n```\n{trace}\n```")
    return "\n\n".join(parts)


def _failing_cell(tb, cell_sources: dict) -> str:
    """The source of the outermost frame that runs a notebook cell: the cell that was run (inner
    cell frames are functions defined in earlier cells; the traceback shows those lines)."""
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if name in cell_sources:
            return "".join(linecache.getlines(name))
        tb = tb.tb_next
    return ""


def previous_cells(sources: list[str], count: int) -> str:
    """The last ``count`` non-empty cell sources, oldest first, as fenced blocks."""
    chosen = [s.strip("\n") for s in sources if s.strip()][-count:] if count > 0 else []
    if not chosen:
        return ""
    blocks = "\n\n".join(f"```python\n{s}\n```" for s in chosen)
    return f"The {len(chosen)} notebook cells run before this one, oldest first:\n\n{blocks}"
