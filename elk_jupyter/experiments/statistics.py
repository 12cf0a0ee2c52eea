"""Experiment statistics: intervals per column, pass@k / pass^k, paired tests between columns. Pure, stdlib only.

Formulas (each checked against scipy or published tables in tests/test_experiment_statistics.py):

- pass rate: Wilson score interval (Wilson 1927; Newcombe 1998, method 3), closed form
  ``(p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)``; unlike p ± z·se it stays in [0, 1]
  and is honest at 0/n and n/n.
- mean score: percentile bootstrap over *cases* (a case's repeats are one cluster, not independent
  samples), ``RESAMPLES`` resamples from a fixed seed, so the same runs give the same interval;
  from ``NORMAL_FROM`` cases on, its large-sample limit mean ± z·s/√n.
- pass@k: Chen et al. 2021 (https://arxiv.org/abs/2107.03374) unbiased estimator per case,
  ``1 - C(n-c, k) / C(n, k)`` for n repeats of which c pass, averaged over cases.
- pass^k: tau-bench (https://arxiv.org/abs/2406.12045), the chance that k repeats drawn from the
  n *all* pass, ``C(c, k) / C(n, k)`` per case, averaged over cases.
- pass/fail between two columns: exact McNemar test, i.e. the two-sided binomial (sign) test on
  the cases where the columns differ (with repeats: where the case's pass rates differ). Exact
  two-sided p for p = 1/2: ``min(1, 2 · P(X <= min(b, c)))``, X ~ Binomial(b + c, 1/2).
  Its verdict names the side better in more cases (with repeats the mean difference may not).
- scores between two columns: paired bootstrap of the mean per-case difference (interval), and
  its p-value as the share of bootstrap means, shifted to the null of no difference, at least as
  far from 0 as the observed one.
- "too few cases to tell": the exact test on m discordant cases can reach p < alpha only when even
  a unanimous split does, ``2 / 2^m < alpha``: ``minimum_pairs`` finds the smallest such m (6 for
  alpha = 0.05). Below it no result could be significant, so the test is not reported as one.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

CONFIDENCE = 0.95
ALPHA = 0.05
RESAMPLES = 2000
SEED = 20240601  # fixed: the same runs always give the same intervals
# From this many cases on, the bootstrap of a mean is replaced by its large-sample limit, the
# normal interval mean ± z·s/√n (clipped to the range of the values): by the central limit
# theorem the two agree to about a percentage point there, and resampling n values 2000 times
# per column and per comparison made a 6,400-run experiment's saved table take seconds.
NORMAL_FROM = 100


def z_value(confidence: float = CONFIDENCE) -> float:
    """The two-sided standard normal quantile (1.959964 for 95%)."""
    return statistics.NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson(successes: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """The Wilson score interval of ``successes`` out of ``n`` (None when n = 0)."""
    if n <= 0:
        return None
    z = z_value(confidence)
    p = successes / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    denominator = 1 + z * z / n
    return max(0.0, (centre - half) / denominator), min(1.0, (centre + half) / denominator)


def _percentile_interval(means: list[float], confidence: float) -> tuple[float, float]:
    """The percentile interval of bootstrap means (linear interpolation, as numpy's default)."""
    ordered = sorted(means)
    tail = (1 - confidence) / 2

    def at(q: float) -> float:
        position = q * (len(ordered) - 1)
        low = math.floor(position)
        high = min(low + 1, len(ordered) - 1)
        return ordered[low] + (ordered[high] - ordered[low]) * (position - low)

    return at(tail), at(1 - tail)


def bootstrap_means(values: Sequence[float], resamples: int = RESAMPLES, seed: int = SEED) -> list[float]:
    """The means of ``resamples`` resamples (with replacement) of ``values``, from a seeded generator."""
    rng = random.Random(seed)
    n = len(values)
    data = list(values)
    return [math.fsum(rng.choices(data, k=n)) / n for _ in range(resamples)]


def bootstrap_interval(
    values: Sequence[float], confidence: float = CONFIDENCE, resamples: int = RESAMPLES, seed: int = SEED
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of the mean of ``values`` (None when empty; a point when one value)."""
    if not values:
        return None
    if len(set(values)) == 1:
        return float(values[0]), float(values[0])
    if len(values) >= NORMAL_FROM:
        return _normal_interval(values, confidence)
    return _percentile_interval(bootstrap_means(values, resamples, seed), confidence)


def _normal_interval(values: Sequence[float], confidence: float) -> tuple[float, float]:
    mean = math.fsum(values) / len(values)
    half = z_value(confidence) * statistics.stdev(values) / math.sqrt(len(values))
    return max(min(values), mean - half), min(max(values), mean + half)  # a mean cannot leave the range


def pass_at_k(n: int, c: int, k: int) -> float:
    """Chen et al. 2021: the chance that at least one of k of the n repeats passes (c pass)."""
    if k > n:
        raise ValueError(f"k={k} is more than the {n} repeats")
    if n - c < k:
        return 1.0
    # 1 - C(n-c, k)/C(n, k) as a product: no huge binomials (the paper's numerically stable form)
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def pass_hat_k(n: int, c: int, k: int) -> float:
    """tau-bench's pass^k: the chance that k repeats drawn from the n all pass (c pass)."""
    if k > n:
        raise ValueError(f"k={k} is more than the {n} repeats")
    return math.comb(c, k) / math.comb(n, k)


def over_cases(per_case: Sequence[tuple[int, int]], k: int, estimator) -> float | None:
    """An estimator's mean over cases, each ``(repeats, passes)``; cases with fewer repeats than k skipped."""
    values = [estimator(n, c, k) for n, c in per_case if n >= k]
    return math.fsum(values) / len(values) if values else None


def binomial_two_sided(successes: int, n: int) -> float:
    """Exact two-sided binomial test of ``successes`` in ``n`` against p = 1/2 (scipy's binomtest)."""
    if n == 0:
        return 1.0
    low = min(successes, n - successes)
    tail = math.fsum(math.comb(n, i) for i in range(low + 1)) / 2**n
    return min(1.0, 2 * tail)


def minimum_pairs(alpha: float = ALPHA) -> int:
    """The fewest discordant cases with which the exact sign test can reach p < alpha at all."""
    m = 1
    while binomial_two_sided(0, m) >= alpha:
        m += 1
    return m


@dataclass(frozen=True)
class PairedTest:
    """One paired comparison of column A with column B on the cases both have."""

    kind: str  # "pass" (exact McNemar / sign test) or "score" (paired bootstrap)
    cases: int  # cases with runs in both columns
    effect: float  # A minus B: the pass-rate or mean-score difference
    p_value: float | None  # None when there are too few cases to tell
    a_better: int  # cases where A did better
    b_better: int
    low: float | None = None  # the interval of the effect (scores only)
    high: float | None = None
    needed: int = 0  # differing cases the test needs before it can say anything

    @property
    def verdict(self) -> str:
        """too_few, a_better, b_better or no_difference (at ALPHA)."""
        if self.p_value is None:
            return "too_few"
        if self.p_value < ALPHA:
            # the sign test rejects on the count of cases each side wins; with repeats the mean
            # difference can point the other way (many small wins against a few large losses)
            ahead = self.a_better - self.b_better if self.kind == "pass" else self.effect
            return "a_better" if ahead > 0 else "b_better"
        return "no_difference"

    def text(self, a: str = "A", b: str = "B") -> str:
        what = "pass rate" if self.kind == "pass" else "mean score"
        effect = f"{self.effect:+.0%}" if self.kind == "pass" else f"{self.effect:+.3f}"
        if self.low is not None:
            effect += f" [{self.low:+.3f}, {self.high:+.3f}]"
        counts = f"{a} better in {self.a_better} of {self.cases} cases, {b} in {self.b_better}"
        if self.p_value is None:
            return (
                f"{what}: {effect} ({counts}): too few cases to tell — "
                f"the test needs at least {self.needed} cases that differ to reach p < {ALPHA:g}"
            )
        test = "exact McNemar" if self.kind == "pass" else "paired bootstrap"
        said = {"a_better": f"{a} is better", "b_better": f"{b} is better"}.get(self.verdict, "no difference shown")
        return f"{what}: {effect} ({counts}), {test} p = {self.p_value:.3g}: {said}"

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "cases": self.cases,
            "effect": self.effect,
            "low": self.low,
            "high": self.high,
            "p_value": self.p_value,
            "a_better": self.a_better,
            "b_better": self.b_better,
            "needed": self.needed,
            "verdict": self.verdict,
        }


def mcnemar(rates: Sequence[tuple[float, float]], alpha: float = ALPHA) -> PairedTest | None:
    """Exact McNemar on per-case pass rates ``(a, b)``; with one repeat, the classic 2×2 test."""
    if not rates:
        return None
    a_better = sum(a > b for a, b in rates)
    b_better = sum(b > a for a, b in rates)
    effect = math.fsum(a - b for a, b in rates) / len(rates)
    needed = minimum_pairs(alpha)
    p = binomial_two_sided(a_better, a_better + b_better) if a_better + b_better >= needed else None
    return PairedTest("pass", len(rates), effect, p, a_better, b_better, needed=needed)


def paired_bootstrap(
    pairs: Sequence[tuple[float, float]], alpha: float = ALPHA, resamples: int = RESAMPLES, seed: int = SEED
) -> PairedTest | None:
    """Paired bootstrap of the mean per-case score difference ``a - b``: interval and p-value."""
    if not pairs:
        return None
    differences = [a - b for a, b in pairs]
    effect = math.fsum(differences) / len(differences)
    a_better = sum(d > 0 for d in differences)
    b_better = sum(d < 0 for d in differences)
    needed = minimum_pairs(alpha)
    if a_better + b_better < needed:
        return PairedTest("score", len(pairs), effect, None, a_better, b_better, needed=needed)
    if len(differences) >= NORMAL_FROM:  # the normal approximation, as for one column's mean
        low, high = _normal_interval(differences, 1 - alpha)
        se = statistics.stdev(differences) / math.sqrt(len(differences))
        if se == 0:  # every case differs by the same amount (no null can centre there): the sign test's p
            p = binomial_two_sided(a_better, a_better + b_better)
        else:
            p = 2 * (1 - statistics.NormalDist().cdf(abs(effect) / se))
        return PairedTest("score", len(pairs), effect, p, a_better, b_better, low, high, needed)
    means = bootstrap_means(differences, resamples, seed)
    low, high = _percentile_interval(means, 1 - alpha)
    # the null distribution: the bootstrap means shifted to centre on 0 (Efron & Tibshirani 1993, 16.4)
    extreme = sum(abs(m - effect) >= abs(effect) for m in means)
    p = min(1.0, (extreme + 1) / (len(means) + 1))
    return PairedTest("score", len(pairs), effect, p, a_better, b_better, low, high, needed)
