"""Case files: reading .csv / .jsonl test cases exactly as written, and writing rows that read back the same.

CSV goes through the ``csv`` module on a file opened with ``newline=""`` (RFC 4180 quoted fields
keep their line breaks: https://docs.python.org/3/library/csv.html#id4) and ``utf-8-sig`` (Excel's
"CSV UTF-8" starts with a BOM, which must not stay in the first field's name). JSONL is split on
``\\n`` only (https://jsonlines.org: "the line separator is \\n"); ``str.splitlines`` would also
split on U+2028, NEL and form feed, which are valid inside a JSON string (a raw control character
there, which strict JSON refuses, is kept too). A CSV whose header reads as one field holding a
``;`` or a tab is read with that delimiter (Excel in locales with a decimal comma); unnamed columns
that hold nothing (Excel's trailing ``,,``) are dropped. Everything the file says is data: nothing
in it is evaluated.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from pathlib import Path

from elk_jupyter.errors import ConfigError
from elk_jupyter.gateway.usage import json_safe

SUFFIXES = (".csv", ".jsonl", ".ndjson")
# A cell bigger than the csv module's 128 KiB default is a long document pasted into a case: allowed.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def read(path: Path) -> list[dict]:
    """The cases in a .csv or .jsonl file; one ConfigError line naming the file on any problem."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ConfigError(f"cases file {path}: use .csv or .jsonl")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"cannot read the cases file {path}: {err.strerror or err}") from None
    text = decode(data, path)
    return _read_csv(text, path) if suffix == ".csv" else _read_jsonl(text, path)


def decode(data: bytes, path: Path) -> str:
    """UTF-8 (a BOM allowed); otherwise one line saying which encoding the file looks like."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise _not_utf8(path, f"byte 0x{data[err.start]:02x} at offset {err.start}", data) from None
    # UTF-16 with no BOM is valid UTF-8 when its text is ASCII: a NUL in every other byte
    if data.count(0) * 4 >= len(data) > 0:
        raise _not_utf8(path, f"{data.count(0)} NUL bytes in {len(data)}", data) from None
    return text


def _not_utf8(path: Path, why: str, data: bytes) -> ConfigError:
    encoding = _likely_encoding(data)
    return ConfigError(
        f"cases file {path} is not UTF-8 ({why}): it looks like {encoding}; save it as UTF-8, or read it "
        f"with pandas.read_csv(path, encoding={encoding!r}) and pass the DataFrame"
    )


def _likely_encoding(data: bytes) -> str:
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "utf-16"
    if data.count(0) * 4 >= len(data):  # no BOM: the NULs fall on the high bytes, second (LE) or first (BE)
        return "utf-16-le" if data[1::2].count(0) >= data[::2].count(0) else "utf-16-be"
    try:
        data.decode("cp1252")  # Windows' "ANSI" CSV: Excel's default "CSV" export
    except UnicodeDecodeError:
        return "latin-1"
    return "cp1252"


def _read_csv(text: str, path: Path) -> list[dict]:
    # newline="" semantics on text already read: io.StringIO with newline="" splits lines on \r, \n
    # and \r\n only, and the csv reader keeps line breaks inside quoted fields
    # strict: a quote never closed would otherwise swallow every later row into one field, silently
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text), strict=True)
    started = 1  # the line the row being read starts on (a quoted field may span lines)
    try:
        header = next(reader, None)
        if header is None:
            return []
        rows, started = [], reader.line_num + 1
        for row in reader:
            started = reader.line_num + 1  # where the next row starts
            if not row:
                continue  # a blank line (csv.DictReader skips them too)
            if len(row) != len(header):
                raise ConfigError(
                    f"{path}:{reader.line_num}: {len(row)} fields where the header has {len(header)} "
                    "(quote a field that holds a comma or a line break)"
                )
            rows.append(row)
    except csv.Error as err:
        if "end of data" in str(err):
            raise ConfigError(f"{path}:{started}: a quoted field starts here and is never closed") from None
        raise ConfigError(f"{path}:{reader.line_num}: not CSV ({err})") from None
    keep = _named_columns(header, rows, path)
    return [{header[i]: unguarded(row[i]) for i in keep} for row in rows]


def _delimiter(text: str) -> str:
    """``,``; or, when the header reads as one field that holds one, ``;`` (Excel's CSV where the
    decimal mark is a comma: most of Europe) or a tab (a sheet pasted or saved as text)."""
    first = next(csv.reader(io.StringIO(text, newline="")), [])
    if len(first) != 1:
        return ","
    for delimiter in (";", "\t"):
        if len(next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), [])) > 1:
            return delimiter
    return ","


def _named_columns(header: list[str], rows: list[list[str]], path: Path) -> list[int]:
    """The columns kept: every named one; an unnamed one only if empty in every row (a sheet's
    formatted but unused columns, which Excel exports as trailing ``,,``), else an error."""
    keep = []
    for index, name in enumerate(header):
        if name:
            keep.append(index)
        elif any(row[index] for row in rows):
            raise ConfigError(f"{path}:1: column {index + 1} has values but no name in the header")
    names = [header[i] for i in keep]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}:1: the header names a column twice: {names!r:.120}")
    return keep


def _read_jsonl(text: str, path: Path) -> list[dict]:
    rows = []
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip(" \t\r"):  # JSON's own whitespace only: a line of U+2028 is not blank
            continue
        try:
            row = json.loads(line, strict=False)  # a raw tab or form feed inside a string: kept
        except ValueError as err:
            raise ConfigError(f"{path}:{number}: not JSON ({err})") from None
        except RecursionError:  # the json module recurses once per [ or {
            raise ConfigError(f"{path}:{number}: nested too deeply for JSON to read") from None
        if not isinstance(row, dict):
            raise ConfigError(f"{path}:{number}: each line must be a JSON object, not {type(row).__name__}")
        rows.append(row)
    return rows


def json_value(value, depth: int = 0):
    """A case value as a record can hold it (strict JSON): NaN, infinities, NaT and NA (pandas'
    missing values) become None, numpy scalars their Python value, anything else JSON has no type for its
    ``str`` (what a template shows of it anyway)."""
    if depth > 32:  # what a record keeps (gateway.usage.MAX_DEPTH); a value that holds itself ends here too
        raise ConfigError("a case value is nested more than 32 levels deep (or holds itself)")
    if type(value).__name__ in ("NaTType", "NAType"):  # pandas' missing time and missing value; str() is "NaT"
        return None
    if type(value).__module__ == "numpy" and callable(getattr(value, "item", None)):  # duck-typed: not imported
        # an array (a list column read from parquet holds one per cell) is its list, not its repr "['a' 'b']"
        value = value.tolist() if getattr(value, "ndim", 0) else value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if isinstance(value, dict):
        return {str(k): json_value(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_value(v, depth + 1) for v in value]
    return str(value)


def csv_text(value) -> str:
    """How a value is written to a CSV cell: text as itself, lists and dicts as JSON, None as empty."""
    if value is None:
        return ""
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return value if isinstance(value, str) else str(value)


# OWASP's CSV injection rule (https://owasp.org/www-community/attacks/CSV_Injection): a spreadsheet
# runs a cell starting with one of these as a formula (=HYPERLINK(...) sends data away), so such text
# gets a leading ' (which spreadsheets show as a text marker). A cell that already starts with ' and
# one of these (or a second ') gets one too, so ``read`` can take exactly one off and give back the text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def inert_cell(value) -> str:
    """The CSV cell of ``value``: ``csv_text``, guarded against formulas; numbers stay numbers."""
    text = csv_text(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return text
    guarded = text[:1] in FORMULA_STARTS or (text[:1] == "'" and text[1:2] in (*FORMULA_STARTS, "'"))
    return "'" + text if guarded else text


def unguarded(cell: str) -> str:
    """The text ``inert_cell`` guarded: one leading ' taken off where the guard put one."""
    return cell[1:] if cell[:1] == "'" and cell[1:2] in (*FORMULA_STARTS, "'") else cell


def write_csv(rows: list[dict], path) -> None:
    """Rows as CSV that ``read`` gives back (every value as ``inert_cell``; UTF-8, no BOM)."""
    names = list(dict.fromkeys(name for row in rows for name in row))
    with open(path, "w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        # one column whose name holds a `;` or a tab: quoted, so ``read`` does not take it for the delimiter
        csv.writer(file, quoting=csv.QUOTE_ALL if len(names) == 1 else csv.QUOTE_MINIMAL).writerow(names)
        for row in rows:
            writer.writerow([inert_cell(row.get(name)) for name in names])


def write_jsonl(rows: list[dict], path) -> None:
    """Rows as JSON lines that ``read`` gives back; non-ASCII kept as itself, NaN and infinities as
    null (strict JSON has neither), anything else JSON cannot hold as its ``str``."""
    with open(path, "w", encoding="utf-8", newline="") as file:
        for row in rows:
            file.write(json.dumps(json_safe(row), ensure_ascii=False) + "\n")
