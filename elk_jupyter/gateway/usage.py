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
    if type(value) is int and 0 <= value <= MAX_COUNT:  # what every server sends: decided at once
        return value
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
    # What servers send, decided by exact type first: the isinstance checks below (an ABC's for
    # Mapping) cost 2.5x on every count of every reply's usage (issue 24); the result is the same.
    kind = type(value)
    if kind is int or kind is str or kind is bool or value is None:
        return value
    if kind is dict:
        return {k if type(k) is str else str(k): json_safe(v, depth + 1) for k, v in value.items()}
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
    prompt_audio: int | None = None  # audio tokens among the prompt's (an earlier audio reply sent back)
    completion_audio: int | None = None  # audio tokens among the completion's (a spoken answer)

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
        prompt_details = _details(raw, "prompt_tokens_details", "input_tokens_details")
        completion_details = _details(raw, "completion_tokens_details", "output_tokens_details")
        cached = count(prompt_details.get("cached_tokens"))
        reasoning = count(completion_details.get("reasoning_tokens"))
        audio = count(prompt_details.get("audio_tokens")), count(completion_details.get("audio_tokens"))
        return cls(prompt, completion, total, cached, reasoning, *audio)

    @property
    def known(self) -> bool:
        return any(getattr(self, name) is not None for name in _NAMES)

    def numbers(self) -> dict[str, int]:
        """Every count, 0 where unknown: for totals and tables."""
        return {name: getattr(self, name) or 0 for name in _NAMES}

    def describe(self, total: bool = False) -> str:
        """The one written form: ``12 prompt (3 cached) · 5 completion (2 reasoning, 40 audio)`` [`` · 17 total``]."""
        if not self.known:
            return ""
        prompt = _of_which(("cached", self.cached), ("audio", self.prompt_audio))
        completion = _of_which(("reasoning", self.reasoning), ("audio", self.completion_audio))
        parts = [f"{self.prompt or 0} prompt{prompt}", f"{self.completion or 0} completion{completion}"]
        if total:
            parts.append(f"{self.total or 0} total")
        return " · ".join(parts)

    def items(self) -> list[tuple[str, str]]:
        """The footer's token items: ``("prompt", "12 (3 cached)")``, ``("completion", "5 (2 reasoning, 40 audio)")``,
        each only when the server said (the same words as ``describe``)."""
        items = []
        if self.prompt is not None:
            items.append(("prompt", f"{self.prompt}{_of_which(('cached', self.cached), ('audio', self.prompt_audio))}"))
        if self.completion is not None:
            of_which = _of_which(("reasoning", self.reasoning), ("audio", self.completion_audio))
            items.append(("completion", f"{self.completion}{of_which}"))
        return items

    def wire(self) -> dict | None:
        """Chat-style names for the front-end panel, which reads them as they are."""
        if not self.known:
            return None
        data = {"prompt_tokens": self.prompt, "completion_tokens": self.completion, "total_tokens": self.total}
        prompt = {"cached_tokens": self.cached, "audio_tokens": self.prompt_audio}
        completion = {"reasoning_tokens": self.reasoning, "audio_tokens": self.completion_audio}
        for name, details in (("prompt_tokens_details", prompt), ("completion_tokens_details", completion)):
            details = {k: v for k, v in details.items() if v is not None}
            if details:
                data[name] = details
        return data


_NAMES = tuple(f.name for f in fields(Usage))  # dataclasses.fields is slow: read per run in a table


def _of_which(*parts: tuple[str, int | None]) -> str:
    """`` (3 cached, 40 audio)``: the non-zero parts of a count, or ''."""
    named = [f"{value} {name}" for name, value in parts if value]
    return f" ({', '.join(named)})" if named else ""


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
