"""Token usage: the one value type, its one normalisation rule, and its one written form.

A server's usage object is hostile input: numbers arrive as strings, floats, NaN, negatives or
booleans, and a string may stand where an object belongs (seen on OpenAI-compatible proxies).
``Usage.of`` turns any JSON value into ints or None and never raises; ``json_safe`` keeps the
server's raw object storable (a notebook is JSON, which has no NaN or Infinity). Pure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields

# Beyond 2**53 a JSON number is not an exact integer in JavaScript: no real count is that big.
MAX_COUNT = 2**53
MAX_DEPTH = 32  # raw usage nested deeper than this is cut (a hostile server can nest 1000 levels)


def count(value: object) -> int | None:
    """A token count from whatever the server sent: a non-negative int, or None."""
    if isinstance(value, bool) or value is None:
        return None  # True is an int in Python, not a count
    if isinstance(value, str):
        text = value.strip()
        try:
            return count(int(text))
        except ValueError:
            pass
        try:
            return count(float(text))
        except ValueError:
            return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        value = round(value)
    if isinstance(value, int) and 0 <= value <= MAX_COUNT:
        return value
    return None


def json_safe(value: object, depth: int = 0) -> object:
    """``value`` as strict JSON can hold it: NaN and infinities become None, keys strings."""
    if depth > MAX_DEPTH:
        return None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v, depth + 1) for v in value]
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)


def raw_usage(value: object) -> dict | None:
    """What a reply and its record keep: the server's object, JSON-safe, and always a dict."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return json_safe(value)
    return {"raw": json_safe(value)}  # a string or list where an object belongs: kept, not used


@dataclass(frozen=True)
class Usage:
    """Token counts of one reply (or totals of several); None where the server did not say."""

    prompt: int | None = None
    completion: int | None = None
    total: int | None = None
    cached: int | None = None
    reasoning: int | None = None

    @classmethod
    def of(cls, raw: object) -> Usage:
        """Either endpoint's names: chat ``prompt/completion_tokens``, Responses ``input/output_tokens``."""
        if not isinstance(raw, Mapping):
            return cls()
        prompt = _first(raw, "prompt_tokens", "input_tokens")
        completion = _first(raw, "completion_tokens", "output_tokens")
        total = count(raw.get("total_tokens"))
        if total is None and (prompt is not None or completion is not None):
            total = (prompt or 0) + (completion or 0)
        cached = count(_details(raw, "prompt_tokens_details", "input_tokens_details").get("cached_tokens"))
        reasoning = count(_details(raw, "completion_tokens_details", "output_tokens_details").get("reasoning_tokens"))
        return cls(prompt, completion, total, cached, reasoning)

    @property
    def known(self) -> bool:
        return any(getattr(self, f.name) is not None for f in fields(self))

    def numbers(self) -> dict[str, int]:
        """Every count, 0 where unknown: for totals and tables."""
        return {f.name: getattr(self, f.name) or 0 for f in fields(self)}

    def describe(self, total: bool = False) -> str:
        """The one written form: ``12 prompt (3 cached) · 5 completion (2 reasoning)`` [`` · 17 total``]."""
        if not self.known:
            return ""
        parts = [
            f"{self.prompt or 0} prompt" + (f" ({self.cached} cached)" if self.cached else ""),
            f"{self.completion or 0} completion" + (f" ({self.reasoning} reasoning)" if self.reasoning else ""),
        ]
        if total:
            parts.append(f"{self.total or 0} total")
        return " · ".join(parts)

    def items(self) -> list[tuple[str, str]]:
        """The footer's token items: ``("prompt", "12 (3 cached)")``, ``("completion", "5 (2 reasoning)")``,
        each only when the server said (the same words as ``describe``)."""
        items = []
        if self.prompt is not None:
            items.append(("prompt", f"{self.prompt}" + (f" ({self.cached} cached)" if self.cached else "")))
        if self.completion is not None:
            items.append(
                ("completion", f"{self.completion}" + (f" ({self.reasoning} reasoning)" if self.reasoning else ""))
            )
        return items

    def wire(self) -> dict | None:
        """Chat-style names for the front-end panel, which reads them as they are."""
        if not self.known:
            return None
        data = {"prompt_tokens": self.prompt, "completion_tokens": self.completion, "total_tokens": self.total}
        if self.cached is not None:
            data["prompt_tokens_details"] = {"cached_tokens": self.cached}
        if self.reasoning is not None:
            data["completion_tokens_details"] = {"reasoning_tokens": self.reasoning}
        return data


def _first(raw: Mapping, *names: str) -> int | None:
    for name in names:
        value = count(raw.get(name))
        if value is not None:
            return value
    return None


def _details(raw: Mapping, *names: str) -> Mapping:
    for name in names:
        value = raw.get(name)
        if isinstance(value, Mapping):
            return value
    return {}
