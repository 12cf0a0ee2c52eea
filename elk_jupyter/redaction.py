"""The one redaction rule: every spelling of the API key the guard knows, cut out of text and of
request bodies where they become a request (before it is sent, recorded or cached) and out of
every error message. Pure.

The rule (README "Guarantees"): a span of text is replaced by ``[redacted key]`` when it is

- the key, or any run of at least ``MIN_SPAN`` (12) consecutive characters of it: a key cut by
  a preview (a 60-character DataFrame cell, the 16,000-character tool result, the last 8,000
  characters of a traceback) still leaves its longest piece, and that piece is caught;
- the same for the key URL-encoded (``quote`` and ``quote_plus``);
- the same for the key in base64, standard and URL-safe alphabets, at any of the three byte
  alignments: so also inside ``base64("Bearer <key>")`` or ``base64("user:<key>")``.

A key shorter than ``MIN_SPAN`` is matched whole. Fewer than 12 characters of a 40-character key
are not treated as the key: that much of a random key narrows nothing that matters.
"""

from __future__ import annotations

import base64
import functools
import json
from urllib.parse import quote, quote_plus

REPLACEMENT = "[redacted key]"
MIN_SPAN = 12


class Redactor:
    """The rule for one key; ``Redactor(None)`` redacts nothing."""

    def __init__(self, secret: str | None):
        self.spellings = _spellings(secret) if secret else ()
        # Every match holds one of these blocks: a look for each (``in``, fast in C) rules most
        # text out (a regex alternation of them was 5x slower on long text).
        self._blocks = sorted({block for spelling in self.spellings for block in _blocks(spelling).values()})
        self._json_safe = not any(c in '"\\' or c < " " for spelling in self.spellings for c in spelling)

    def __call__(self, text):
        """``text`` with every known spelling cut out (anything not a str is returned as is)."""
        return self.text(text)[0] if isinstance(text, str) else text

    def text(self, text: str) -> tuple[str, int]:
        """(the text, how many spans were cut out)."""
        if not self.spellings or not text or not self._hinted(text):
            return text, 0
        spans = _merged([span for spelling in self.spellings for span in _matches(text, spelling)])
        if not spans:
            return text, 0
        pieces, start = [], 0
        for begin, end in spans:
            pieces += [text[start:begin], REPLACEMENT]
            start = end
        pieces.append(text[start:])
        return "".join(pieces), len(spans)

    def body(self, value, written: str | None = None) -> tuple[object, int]:
        """(a copy of a JSON-like value with every string, keys included, redacted; the count).

        Iterative, so a deeply nested body cannot exhaust the stack; the value itself when
        nothing was cut. Values other than str, dict, list and tuple are kept as they are.
        ``written``: the value's JSON (``ensure_ascii=False``, any separators and key order) when
        the caller has written it already, searched instead of writing it again."""
        if not self.spellings or self._surely_clean(value, written):
            return value, 0
        count = 0
        root = [value]
        stack = [(root, 0)]
        while stack:
            holder, slot = stack.pop()
            item = holder[slot]
            if isinstance(item, str):
                holder[slot], found = self.text(item)
                count += found
            elif isinstance(item, dict):
                pairs = [[k, v] for k, v in item.items()]
                for pair in pairs:
                    stack += [(pair, 0), (pair, 1)]
                holder[slot] = _Pending(dict, pairs)
            elif isinstance(item, list | tuple):
                copy = list(item)
                stack += [(copy, n) for n in range(len(copy))]
                holder[slot] = _Pending(tuple if isinstance(item, tuple) else list, copy)
        return (_built(root[0]), count) if count else (value, 0)

    def _surely_clean(self, value, written: str | None = None) -> bool:
        """True when the body's JSON text holds no block of any spelling: one search in C instead
        of a walk (a long conversation's body is mostly earlier turns). JSON writes a string as
        is unless it holds a quote, a backslash or a control character, so this holds only for
        keys without those (whatever the separators and the order of keys: every string is in the
        text as it is)."""
        if not self._json_safe:
            return False
        if written is None:
            try:
                written = json.dumps(value, ensure_ascii=False, default=str)
            except (TypeError, ValueError, RecursionError):
                return False
        return not self._hinted(written)

    def _hinted(self, text: str) -> bool:
        return any(block in text for block in self._blocks)


class _Pending:
    """A container whose items the walk is still redacting."""

    __slots__ = ("kind", "items")

    def __init__(self, kind, items):
        self.kind, self.items = kind, items


def _built(value):
    """Turn the walk's ``_Pending`` containers back into dicts, lists and tuples (iteratively)."""
    if not isinstance(value, _Pending):
        return value
    order, stack = [], [value]
    while stack:
        pending = stack.pop()
        order.append(pending)
        for item in pending.items:
            children = item if pending.kind is dict else [item]
            stack += [child for child in children if isinstance(child, _Pending)]
    done = {}
    for pending in reversed(order):  # children before their parents
        if pending.kind is dict:
            items = [(done.get(id(k), k), done.get(id(v), v)) for k, v in pending.items]
            done[id(pending)] = dict(items)
        else:
            done[id(pending)] = pending.kind(done.get(id(i), i) for i in pending.items)
    return done[id(value)]


@functools.lru_cache(maxsize=8)
def redactor(secret: str | None) -> Redactor:
    """The rule for ``secret`` (built once per key: its spellings are computed here)."""
    return Redactor(secret)


def redact(text, secret: str | None):
    """``text`` without ``secret`` in any spelling the rule knows."""
    return redactor(secret)(text)


def note(count: int, where: str = "the request") -> str:
    """What the panel and the Markdown copy say when something was cut out ('' when nothing)."""
    if not count:
        return ""
    return f"{count} secret{'s' if count > 1 else ''} (ELK_API_KEY) redacted from {where}"


def _spellings(secret: str) -> tuple[str, ...]:
    found = {secret, quote(secret, safe=""), quote_plus(secret, safe="")}
    raw = secret.encode()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        for pad in range(3):
            encoded = encode(b"\0" * pad + raw).decode()
            # only the characters made of the key's own bits (not the neighbours' or padding's)
            stable = encoded[-(-8 * pad // 6) : 8 * (pad + len(raw)) // 6]
            if len(stable) >= min(MIN_SPAN, len(secret)):
                found.add(stable)
    return tuple(sorted(found, key=len, reverse=True))


def _matches(text: str, spelling: str) -> list[tuple[int, int]]:
    """Spans of ``text`` that are runs of at least ``MIN_SPAN`` characters of ``spelling``.

    Any such run contains one of the spelling's blocks of ``MIN_SPAN // 2`` characters at a block
    boundary, so only those are searched for (``str.find``), then each hit is grown both ways."""
    spans = []
    least = min(MIN_SPAN, len(spelling))
    for start, block in _blocks(spelling).items():
        size = len(block)
        at = text.find(block)
        while at != -1:
            left, right = at, at + size
            shift = start - at  # text[i] lines up with spelling[i + shift]
            while left > 0 and left + shift > 0 and text[left - 1] == spelling[left - 1 + shift]:
                left -= 1
            while right < len(text) and right + shift < len(spelling) and text[right] == spelling[right + shift]:
                right += 1
            if right - left >= least:
                spans.append((left, right))
            at = text.find(block, at + 1)
    return spans


def _blocks(spelling: str) -> dict[int, str]:
    """{start: block}: the spelling cut in blocks of half the shortest match, from its start."""
    size = max(1, min(MIN_SPAN, len(spelling)) // 2)
    return {start: spelling[start : start + size] for start in range(0, len(spelling) - size + 1, size)}


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[list[int]] = []
    for begin, end in sorted(spans):
        if merged and begin <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([begin, end])
    return [(b, e) for b, e in merged]
