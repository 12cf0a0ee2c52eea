"""What experiment runs cost in all: runs live and replayed, tokens (judge calls included), USD. Pure.

``%elk usage`` adds this kernel's experiment runs to the notebook's totals, and ``elk-jupyter
inspect`` the runs saved in a notebook's experiment records. As with turns, only live runs
count as billed: a replayed run (from the notebook's records or the cache) was not sent.
"""

from __future__ import annotations

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
    billed: dict = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))  # live runs and their judges
    replayed_tokens: int = 0  # tokens of replayed runs: shown, not billed
    cost: float | None = None  # USD of live runs with a price

    @property
    def usage(self) -> Usage:
        return Usage(**self.billed)

    def describe(self) -> str:
        """``12 runs (10 live, 2 replayed, 1 error) · 40 prompt · 12 completion · 52 total · $0.0004``."""
        flags = [f"{self.live} live", f"{self.replayed} replayed"]
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
    count, runs, live, replayed, errors, judges, tokens = 0, 0, 0, 0, 0, 0, 0
    billed = dict.fromkeys(COUNTS, 0)
    costs = []
    for experiment in experiments:
        count += 1
        for run in experiment:
            runs += 1
            errors += not run.ok
            usages = [run.reply.get("usage")] + [(j.get("reply") or {}).get("usage") for j in run.judges]
            judges += len(run.judges)
            if run.replayed:
                replayed += 1
                tokens += sum(Usage.of(u).numbers()["total"] for u in usages)
                continue
            live += 1
            for usage in usages:
                for key, value in Usage.of(usage).numbers().items():
                    billed[key] += value
            if run.cost is not None:
                costs.append(run.cost)
    return RunTotals(count, runs, live, replayed, errors, judges, billed, tokens, sum(costs) if costs else None)
