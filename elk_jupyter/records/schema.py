"""The one schema checker of our records (turn, experiment, audio): shapes declared as data, walked without recursion. Pure.

A saved notebook is hostile input: a hand-edited record may hold any JSON, nested to any depth.
The checks walk an explicit stack (never Python recursion), so a record nested 600 deep is
refused in one line instead of raising ``RecursionError``; inner values are checked too (a model
that is a number, a score of 10**400, a latency that is text are each named).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

MAX_DEPTH = 64  # deeper than any record we write (a tool's parameter schema included) by far


class Number:
    """A JSON number Python can use as a float: not a bool, not an int too big for a float (NaN and
    infinities are named by ``non_finite``, as JSON has neither)."""

    __name__ = "number"


NUMBER = Number()


@dataclass(frozen=True)
class Shape:
    """An object: keys that must hold their kind, and keys that may also be missing or null."""

    required: Mapping = field(default_factory=dict)
    optional: Mapping = field(default_factory=dict)
    __name__ = "object"


@dataclass(frozen=True)
class ListOf:
    """A list whose every item has ``item``'s kind."""

    item: object
    __name__ = "list"


@dataclass(frozen=True)
class DictOf:
    """An object with any keys, whose every value has ``value``'s kind."""

    value: object
    __name__ = "object"


def check(value, kind, where: str) -> list[str]:
    """Every way ``value`` departs from ``kind`` (a type, a tuple of types, ``NUMBER``, ``Shape``,
    ``ListOf`` or ``DictOf``), each named by its path from ``where`` ("" for none); empty when it fits."""
    problems: list[str] = []
    stack = [(value, kind, where, False)]
    while stack:
        value, kind, where, nullable = stack.pop()
        if not _is(value, kind):
            got = "a number too large for a float" if _too_large(value) else type(value).__name__
            problems.append(f"{where} should be {name(kind)}{' or null' if nullable else ''}, got {got}")
        elif isinstance(kind, Shape):
            found = [(value.get(k), v, _join(where, k), False) for k, v in kind.required.items()]
            found += [
                (value[k], v, _join(where, k), True) for k, v in kind.optional.items() if value.get(k) is not None
            ]
            stack.extend(reversed(found))
        elif isinstance(kind, ListOf):
            stack.extend(reversed([(item, kind.item, f"{where}[{n}]", False) for n, item in enumerate(value)]))
        elif isinstance(kind, DictOf):
            stack.extend(reversed([(item, kind.value, _join(where, key), False) for key, item in value.items()]))
    return problems


def fields(data: Mapping, required: Mapping, optional: Mapping, where: str) -> list[str]:
    """The keys of one object checked against their kinds (``check`` of a ``Shape``)."""
    return check(data, Shape(required, optional), where)


def too_deep(value, where: str = "record", limit: int = MAX_DEPTH) -> str | None:
    """One line naming where ``value`` nests deeper than ``limit`` objects and lists, or None."""
    stack = [(value, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            return f"{where} nests deeper than {limit} levels"
        if isinstance(value, Mapping):
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list | tuple):
            stack.extend((item, depth + 1) for item in value)
    return None


def non_finite(value, where: str = "record") -> Iterator[tuple[str, float]]:
    """Each NaN or infinity in ``value`` with its path: a notebook is JSON, which has neither."""
    stack = [(value, where)]
    while stack:
        value, where = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            yield where, value
        elif isinstance(value, Mapping):
            stack.extend(reversed([(item, f"{where}.{key}") for key, item in value.items()]))
        elif isinstance(value, list):
            stack.extend(reversed([(item, f"{where}[{n}]") for n, item in enumerate(value)]))


def not_json(record, where: str = "record") -> list[str]:
    """One line for each NaN or infinity in ``record``."""
    return [f"{path} is {number} (not JSON)" for path, number in non_finite(record, where)]


def name(kind) -> str:
    if isinstance(kind, tuple):
        return " or ".join(name(k) for k in kind)
    return kind.__name__


def _is(value, kind) -> bool:
    if isinstance(kind, tuple):
        return any(_is(value, k) for k in kind)
    if kind is NUMBER:
        return isinstance(value, int | float) and not isinstance(value, bool) and not _too_large(value)
    if isinstance(kind, Shape | DictOf):
        return isinstance(value, Mapping)
    if isinstance(kind, ListOf):
        return isinstance(value, list)
    return isinstance(value, kind) and (kind is bool or not isinstance(value, bool))


def _join(where: str, key) -> str:
    return f"{where}.{key}" if where else str(key)


def _too_large(value) -> bool:
    if isinstance(value, int) and not isinstance(value, bool):
        return abs(value) > 1 << 1023  # float(10**400) raises OverflowError
    return False
