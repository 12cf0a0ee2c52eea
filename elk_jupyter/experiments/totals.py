"""What experiment runs cost in all: runs live and replayed, tokens (judge calls included), USD. Pure.

``%elk usage`` adds this kernel's experiment runs to the notebook's totals, and ``elk-jupyter
inspect`` the runs saved in a notebook's experiment records. As with turns, only live runs
count as billed: a replayed run (from the notebook's records or the cache) was not sent, and
neither was a judge's verdict served again (two repeats with one output ask it once).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from elk_jupyter.gateway.usage import Usage

COUNTS = tuple(Usage().numbers())


@dataclass(frozen=True)
class RunTotals:
    experiments: int = 0
    runs: int = 0
    live: int = 0
    replayed: int = 0
    errors: int = 0
    judge_calls: int = 0
    unsent: int = 0  # runs that never left (replay "only", never recorded): neither live nor replayed
    billed: dict = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))  # live runs and their judges
    replayed_tokens: int = 0  # tokens of replayed runs: shown, not billed
    cost: float | None = None  # USD of live runs and judge calls with a price

    @property
    def usage(self) -> Usage:
        return Usage(**self.billed)

    def describe(self) -> str:
        """``12 runs (10 live, 2 replayed, 1 error) · 40 prompt · 12 completion · 52 total · $0.0004``."""
        flags = [f"{self.live} live", f"{self.replayed} replayed"]
        if self.unsent:
            flags.append(f"{self.unsent} not sent")
        if self.errors:
            flags.append(f"{self.errors} error{'s' * (self.errors != 1)}")
        parts = [f"{self.runs} runs ({', '.join(flags)})"]
        if self.judge_calls:
            parts.append(f"{self.judge_calls} judge calls")
        parts.append(self.usage.describe(total=True) or "no usage reported")
        if self.cost is not None:
            parts.append(f"${self.cost:.4g}")
        if self.replayed_tokens:
            parts.append(f"{self.replayed_tokens} tokens replayed, not billed")
        return " · ".join(parts)


def totals(experiments: Iterable[Iterable]) -> RunTotals:
    """The totals of ``experiments``, each an iterable of RunResult."""
    count, runs, live, replayed, errors, judges, tokens, unsent = 0, 0, 0, 0, 0, 0, 0, 0
    billed = dict.fromkeys(COUNTS, 0)
    costs = []
    seen = set()  # live replies already counted: a copied cell shows the same runs again
    for experiment in experiments:
        count += 1
        for run in experiment:
            runs += 1
            errors += not run.ok
            judges += len(run.judges)
            if not run.sent:  # nothing left, nothing was served: no tokens, no cost
                unsent += 1
                continue
            sending = _sending(run.key, run.reply)
            again = run.replayed or (sending is not None and sending in seen)
            if not again:
                seen.add(sending)
            replayed += again
            live += not again
            calls = [(run.reply, run.cost, again)]
            calls += [(j.get("reply") or {}, j.get("cost"), again or j.get("replayed") is True) for j in run.judges]
            for reply, cost, served in calls:
                numbers = Usage.of(reply.get("usage")).numbers()
                if served:
                    tokens += numbers["total"]
                    continue
                for key, value in numbers.items():
                    billed[key] += value
                if _usd(cost) is not None:
                    costs.append(cost)
    total = sum(costs) if costs else None  # past the largest float it is inf: no figure, not a crash
    return RunTotals(count, runs, live, replayed, errors, judges, unsent, billed, tokens, _usd(total))


def _sending(key, reply) -> tuple | None:
    """What tells one sending of a run from another (the server's id and when it was sent), or None."""
    found = reply.get("id"), reply.get("started_at")
    return None if found == (None, None) else (str(key), *map(str, found))


def _usd(value) -> float | None:
    """A cost a total can hold: a finite number >= 0 (a hand-edited record may say anything)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
        return None
    return value
