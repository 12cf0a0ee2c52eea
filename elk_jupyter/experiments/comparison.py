"""An experiment's figures as data: per-column aggregates with intervals, and paired comparisons. Pure.

``summary_data`` is what the views draw (the JupyterLab matrix embeds it in its mime bundle); its
shape is written down in docs/experiments-data.md. ``compare`` pairs two columns case by case and
runs the tests of ``statistics`` on them.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from elk_jupyter.errors import ConfigError
from elk_jupyter.experiments import statistics as stats
from elk_jupyter.experiments.aggregates import Aggregate, by_case
from elk_jupyter.experiments.spec import case_identity

if TYPE_CHECKING:  # results asks this module for its comparisons: importing it back would be a cycle
    from elk_jupyter.experiments.compare_view import ComparisonView
    from elk_jupyter.experiments.results import ExperimentResult
    from elk_jupyter.experiments.spec import Column

SUMMARY_VERSION = 1
ALL_PAIRS_UP_TO = 8  # columns; beyond, each column is compared with the first (the baseline) only


@dataclass(frozen=True)
class Comparison:
    """Column A against column B on the cases both have: pass/fail and score tests (None when no data)."""

    a: str
    b: str
    cases: int
    passing: stats.PairedTest | None
    scoring: stats.PairedTest | None
    # What it compared, for its display (experiments/compare_view.py): the result and the two column indexes.
    source: tuple | None = field(default=None, repr=False, compare=False)

    def text(self) -> str:
        lines = [f"A = {self.a}", f"B = {self.b}", f"{self.cases} cases with runs in both"]
        for test in (self.passing, self.scoring):
            if test is not None:
                lines.append(test.text("A", "B"))
        if self.passing is None and self.scoring is None:
            lines.append("nothing to compare: no scored runs in both columns")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:
        return self.text()

    def _repr_pretty_(self, printer, cycle) -> None:
        printer.text(self.text())

    def _repr_mimebundle_(self, include=None, exclude=None):
        """In a notebook: the experiment view opened on the two columns, this text as its plain copy."""
        if self.source is None:
            return {"text/plain": self.text()}
        from elk_jupyter.experiments.compare_view import compare_columns

        result, first, second = self.source
        return compare_columns(result, first, second, self.to_dict(), self.text())._repr_mimebundle_()

    def to_dict(self) -> dict:
        return {
            "cases": self.cases,
            "pass": _safe(self.passing.to_dict()) if self.passing else None,
            "score": _safe(self.scoring.to_dict()) if self.scoring else None,
        }


def _per_case(runs) -> dict[int, tuple[float | None, float | None]]:
    """case -> (pass rate over its repeats, mean score over its repeats)."""
    found = {}
    for case, case_runs in by_case(runs).items():
        verdicts = [r.passed for r in case_runs if r.passed is not None]
        scores = [r.score for r in case_runs if r.score is not None]
        found[case] = (
            sum(verdicts) / len(verdicts) if verdicts else None,
            statistics.fmean(scores) if scores else None,
        )
    return found


def compare_runs(label_a: str, label_b: str, runs_a, runs_b) -> Comparison:
    """Two lists of runs paired by case (two columns, or one column of two experiments on the same cases)."""
    first, second = _per_case(runs_a), _per_case(runs_b)
    shared = sorted(set(first) & set(second))
    rates = [(first[c][0], second[c][0]) for c in shared if first[c][0] is not None and second[c][0] is not None]
    scores = [(first[c][1], second[c][1]) for c in shared if first[c][1] is not None and second[c][1] is not None]
    return Comparison(label_a, label_b, len(shared), stats.mcnemar(rates), stats.paired_bootstrap(scores))


def compare(result: ExperimentResult, a: Column, b: Column) -> Comparison:
    grouped = result.column_runs()
    labels = len(result.spec.templates)
    found = compare_runs(a.label(labels), b.label(labels), grouped[a], grouped[b])
    columns = result.spec.columns
    return dataclasses.replace(found, source=(result, columns.index(a), columns.index(b)))


def compare_experiments(first: ExperimentResult, second: ExperimentResult, a: int, b: int) -> Comparison:
    """Column ``a`` of ``first`` against column ``b`` of ``second`` on the cases both have (matched
    by their fields; a case only one has is left out), with the same paired tests as ``compare``."""
    numbers = {case_identity(c): n for n, c in enumerate(first.spec.cases)}
    a_col, b_col = first.spec.columns[a], second.spec.columns[b]
    renumbered = []
    for run in second.column_runs().get(b_col, []):
        found = numbers.get(case_identity(second.spec.cases[run.case]))
        renumbered.append(dataclasses.replace(run, case=found if found is not None else -1 - run.case))
    labels = (a_col.label(len(first.spec.templates)), b_col.label(len(second.spec.templates)))
    return compare_runs(f"A: {labels[0]}", f"B: {labels[1]}", first.column_runs().get(a_col, []), renumbered)


def _safe(value):
    """JSON-safe: non-finite floats become None (a notebook is strict JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_safe(v) for v in value]
    return value


def _interval(value, bounds, **extra) -> dict | None:
    if value is None:
        return None
    low, high = bounds if bounds is not None else (None, None)
    return {"value": value, "low": low, "high": high, **extra}


def _column(index: int, column: Column, labels: int, a: Aggregate) -> dict:
    return {
        "index": index,
        "label": column.label(labels),
        "template": column.template,
        "model": column.model,
        "params": column.param_dict,
        "runs": a.runs,
        "errors": a.errors,
        "cases": a.cases,
        "replayed": a.replayed,
        "pass_rate": _interval(a.pass_rate, a.pass_interval, passed=a.passes, n=a.scored),
        "mean_score": _interval(a.mean_score, a.score_interval, n=a.cases),
        "pass_at_k": {str(k): v for k, v in a.pass_at_k.items()},
        "pass_hat_k": {str(k): v for k, v in a.pass_hat_k.items()},
        "spread": a.spread,
        "tokens": {"prompt": a.prompt_tokens, "completion": a.completion_tokens, "total": a.tokens},
        "cost": a.cost,
        "latency": {"p50": a.latency_p50, "p95": a.latency_p95},
    }


def pairs(count: int) -> list[tuple[int, int]]:
    if count <= ALL_PAIRS_UP_TO:
        return [(i, j) for i in range(count) for j in range(i + 1, count)]
    return [(0, j) for j in range(1, count)]


def summary_data(result: ExperimentResult, intervals: bool = True) -> dict:
    """Every number the views draw, JSON-safe; ``intervals=False`` skips the bootstrap and the
    comparisons (the live redraw, a few times a second while runs finish)."""
    columns = result.spec.columns
    labels = len(result.spec.templates)
    grouped = result.column_runs()
    aggregates = result.aggregates(intervals)
    comparisons = []
    if intervals:
        for i, j in pairs(len(columns)):
            found = compare_runs(
                columns[i].label(labels), columns[j].label(labels), grouped[columns[i]], grouped[columns[j]]
            )
            comparisons.append({"a": i, "b": j, **found.to_dict()})
    return _safe(
        {
            "version": SUMMARY_VERSION,
            "confidence": stats.CONFIDENCE,
            "alpha": stats.ALPHA,
            "final": not result.missing,
            "runs": len(result.runs),
            "total": result.total,
            "errors": result.errors,
            "cost": result.cost,
            "repeats": result.spec.repeats,
            "scorers": list(result.scorer_names),
            "columns": [_column(i, c, labels, aggregates[c]) for i, c in enumerate(columns)],
            "comparisons": comparisons,
        }
    )


BETWEEN_CAP = 16  # column pairs of a diff given their paired tests (the bootstrap is not free)


def diff(first: ExperimentResult, second: ExperimentResult) -> ComparisonView:
    """The two experiments side by side, the paired tests of the first pair (the same column in
    both, else the first of each) shown, and those of up to ``BETWEEN_CAP`` pairs ready for the
    renderer's column pickers (the same column in both first)."""
    from elk_jupyter.experiments.compare_view import ComparisonView
    from elk_jupyter.experiments.matrix import first_pair

    pair = first_pair(first, second)
    if pair is None:
        raise ConfigError("diff: an experiment with no columns has nothing to compare")
    a, b = pair[0], pair[1] - len(first.spec.columns)
    found = compare_experiments(first, second, a, b)
    return ComparisonView(first, second, (a, b), True, found.to_dict(), found.text(), _between(first, second, (a, b)))


def _between(first: ExperimentResult, second: ExperimentResult, shown: tuple[int, int]) -> tuple:
    later = {c: n for n, c in enumerate(second.spec.columns)}
    same = [(n, later[c]) for n, c in enumerate(first.spec.columns) if c in later]
    every = [(i, j) for i in range(len(first.spec.columns)) for j in range(len(second.spec.columns))]
    chosen = list(dict.fromkeys([shown, *same, *every]))[:BETWEEN_CAP]
    offset = len(first.spec.columns)
    return tuple({"a": i, "b": offset + j, **compare_experiments(first, second, i, j).to_dict()} for i, j in chosen)
