"""Per-column figures of an experiment: pass rate and mean score with their intervals, pass@k and
pass^k, spread across repeats, tokens, cost, latency. Pure (formulas: ``statistics``)."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from elk_jupyter.experiments import statistics as stats

if TYPE_CHECKING:
    from elk_jupyter.experiments.results import RunResult


@dataclass(frozen=True)
class Aggregate:
    runs: int
    errors: int
    pass_rate: float | None
    mean_score: float | None
    spread: float | None  # mean over cases of the standard deviation of the score across repeats
    tokens: int
    cost: float | None
    latency_p50: float | None
    latency_p95: float | None
    passes: int = 0  # runs that passed, of ``scored`` runs with a verdict
    scored: int = 0
    cases: int = 0  # cases with at least one run
    pass_interval: tuple | None = None  # Wilson 95%
    score_interval: tuple | None = None  # bootstrap 95% over cases
    pass_at_k: dict = field(default_factory=dict)  # k -> Chen et al.'s unbiased pass@k
    pass_hat_k: dict = field(default_factory=dict)  # k -> tau-bench's pass^k
    prompt_tokens: int = 0
    completion_tokens: int = 0
    replayed: int = 0


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (https://en.wikipedia.org/wiki/Percentile#The_nearest-rank_method)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def by_case(runs: list[RunResult]) -> dict[int, list[RunResult]]:
    grouped: dict[int, list[RunResult]] = {}
    for r in runs:
        grouped.setdefault(r.case, []).append(r)
    return grouped


def aggregate(runs: list[RunResult], intervals: bool = True, scored: bool = True) -> Aggregate:
    """A column's figures; ``intervals=False`` leaves out the bootstrap (the live view's redraw).
    ``scored=False``: the experiment has no scorers, so no pass rate (a failed request's ✗ is not one)."""
    passes = [r.passed for r in runs if r.passed is not None] if scored else []
    cases = by_case(runs)
    case_scores = {c: [r.score for r in rs if r.score is not None] for c, rs in cases.items()}
    spreads = [statistics.pstdev(v) for v in case_scores.values() if len(v) > 1]
    means = [statistics.fmean(v) for v in case_scores.values() if v]
    verdicts = [(len(p), sum(p)) for p in ([r.passed for r in rs if r.passed is not None] for rs in cases.values())]
    verdicts = [v for v in verdicts if v[0] and scored]
    most = min((n for n, _ in verdicts), default=0)  # pass@k is defined for k up to every case's repeats
    costs = [r.cost for r in runs if r.cost is not None]
    latencies = [r.latency for r in runs if r.ok and r.latency is not None]
    usages = [r.tokens for r in runs]
    return Aggregate(
        runs=len(runs),
        errors=sum(not r.ok for r in runs),
        pass_rate=sum(passes) / len(passes) if passes else None,
        # over cases, as its interval and the paired test are: a case with more scored runs (fewer
        # errors) does not weigh more, and the value stays inside its interval
        mean_score=statistics.fmean(means) if means else None,
        spread=statistics.fmean(spreads) if spreads else None,
        tokens=sum(u["total"] for u in usages),
        cost=sum(costs) if costs else None,
        latency_p50=percentile(latencies, 50),
        latency_p95=percentile(latencies, 95),
        passes=sum(passes),
        scored=len(passes),
        cases=len(cases),
        pass_interval=stats.wilson(sum(passes), len(passes)),
        score_interval=stats.bootstrap_interval(means) if intervals else None,
        pass_at_k={k: stats.over_cases(verdicts, k, stats.pass_at_k) for k in range(1, most + 1)},
        pass_hat_k={k: stats.over_cases(verdicts, k, stats.pass_hat_k) for k in range(1, most + 1)},
        prompt_tokens=sum(u["prompt"] for u in usages),
        completion_tokens=sum(u["completion"] for u in usages),
        replayed=sum(r.replayed for r in runs),
    )
