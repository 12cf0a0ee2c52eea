"""An experiment's outcome: one RunResult per run, aggregates per column, and exports. Pure but for export.

``to_records`` is one flat dict per run (what ``to_pandas``, CSV and JSONL hold); ``aggregates``
gives per column the pass rate, mean score, spread across repeats, tokens, cost and latency
p50/p95. Model text stays data here: the views decide how it is shown.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from elk_jupyter.errors import ConfigError
from elk_jupyter.experiments.aggregates import Aggregate, aggregate, by_case, percentile  # noqa: F401 - re-exported
from elk_jupyter.experiments.scorers import Score
from elk_jupyter.experiments.spec import Column, Spec, check_grid
from elk_jupyter.gateway.usage import Usage

if TYPE_CHECKING:
    from elk_jupyter.experiments.comparison import Comparison


class _once:
    """A property computed on first read and then stored on the instance (a plain attribute read
    after that). functools.cached_property takes a lock on every first read in Python 3.11: for the
    first draw of 16,000 runs that lock was a third of the time. The values are pure: two threads
    reading at once compute the same one twice, harmlessly."""

    def __init__(self, compute):
        self.compute, self.name, self.__doc__ = compute, compute.__name__, compute.__doc__

    def __get__(self, run, owner=None):
        if run is None:
            return self
        value = run.__dict__[self.name] = self.compute(run)
        return value


@dataclass(frozen=True)
class RunResult:
    case: int
    column: Column
    repeat: int
    key: str
    request: dict
    reply: dict  # Reply.to_dict()
    host: str | None = None
    replayed: bool = False
    scores: dict = field(default_factory=dict)  # scorer name -> Score
    judges: tuple = ()  # ({key, request, reply}, ...) of model-graded scorers
    cost: float | None = None
    sent: bool = True  # False: it never left (replay "only" and never recorded), so it is neither live nor replayed

    @_once  # a redraw reads it for every run: computed once
    def ok(self) -> bool:
        return self.reply.get("status") in ("completed", "incomplete")

    @property
    def text(self) -> str:
        return self.reply.get("text") or ""

    @property
    def error(self) -> str | None:
        return None if self.ok else (self.reply.get("error") or self.reply.get("status"))

    @_once  # a redraw reads it for every run: computed once
    def latency(self) -> float | None:
        return (self.reply.get("timing") or {}).get("total")

    @_once  # a redraw reads it for every run: computed once
    def usage(self) -> Usage:
        return Usage.of(self.reply.get("usage"))

    @_once
    def tokens(self) -> dict[str, int]:
        """Every usage count, 0 where unknown (``Usage.numbers``)."""
        return self.usage.numbers()

    @_once  # a redraw reads it for every run: computed once
    def passed(self) -> bool | None:
        """All scorers passed (None when there are no scorers); a failed run never passes."""
        if not self.scores:
            return None if self.ok else False
        return self.ok and all(s.passed for s in self.scores.values())

    @_once  # a redraw reads it for every run: computed once
    def score(self) -> float | None:
        if not self.scores:
            return None
        return statistics.fmean(s.value for s in self.scores.values()) if self.ok else 0.0


class ExperimentResult:
    """The matrix: rows = cases, columns = prompt × model × params; each cell the runs of its repeats."""

    def __init__(self, spec: Spec, runs: list[RunResult], scorer_names: list[str], total: int | None = None):
        self.spec = spec
        self.runs = runs
        self.scorer_names = scorer_names
        self.total = total if total is not None else len(spec.runs())
        self._cells: dict | None = None  # (case, column) -> runs, built once: a redraw is linear in runs
        self._aggregates: dict[bool, dict] = {}

    @property
    def missing(self) -> int:
        return self.total - len(self.runs)

    @property
    def errors(self) -> int:
        return sum(not r.ok for r in self.runs)

    @property
    def cost(self) -> float | None:
        """What the experiment cost: its runs, and each judge verdict once (two repeats with one
        output share one), counted the same live and replayed, so a replay shows the same figure."""
        costs = [r.cost for r in self.runs if r.cost is not None]
        verdicts = {j.get("key"): j.get("cost") for r in self.runs for j in r.judges}
        costs += [c for c in verdicts.values() if isinstance(c, (int, float)) and not isinstance(c, bool)]
        return sum(costs) if costs else None

    def _index(self) -> dict:
        if self._cells is None:
            cells: dict = {}
            for r in self.runs:
                cells.setdefault((r.case, r.column), []).append(r)
            for runs in cells.values():
                runs.sort(key=lambda r: r.repeat)
            self._cells = cells
        return self._cells

    def cell(self, case: int, column: Column) -> list[RunResult]:
        return list(self._index().get((case, column), ()))

    def column_runs(self) -> dict[Column, list[RunResult]]:
        grouped: dict[Column, list[RunResult]] = {c: [] for c in self.spec.columns}
        for r in self.runs:
            grouped.setdefault(r.column, []).append(r)
        return grouped

    def aggregates(self, intervals: bool = True) -> dict[Column, Aggregate]:
        """Per column; computed once per result (a result is a snapshot: the runner makes a new one)."""
        if intervals not in self._aggregates:
            grouped = self.column_runs()
            scored = bool(self.scorer_names)
            self._aggregates[intervals] = {c: aggregate(grouped[c], intervals, scored) for c in self.spec.columns}
        return self._aggregates[intervals]

    def share_aggregates(self, intervals: bool, found: dict[Column, Aggregate]) -> None:
        """Aggregates computed elsewhere for this very result (a live view's memo): reused, not redone."""
        self._aggregates[intervals] = found

    def column(self, which) -> Column:
        """A column by index, Column, exact label, or a model name that names one column only."""
        columns = self.spec.columns
        if isinstance(which, Column) and which in columns:
            return which
        if isinstance(which, int) and not isinstance(which, bool) and -len(columns) <= which < len(columns):
            return columns[which]
        labels = [c.label(len(self.spec.templates)) for c in columns]
        if which in labels:
            return columns[labels.index(which)]
        models = [c for c in columns if c.model == which]
        if len(models) == 1:
            return models[0]
        raise ConfigError(f"no single column {which!r}: use an index (0–{len(columns) - 1}) or one of {labels}")

    def compare(self, a, b) -> Comparison:
        """The paired comparison of two columns on the cases both have (``print`` it for the text)."""
        from elk_jupyter.experiments.comparison import compare

        return compare(self, self.column(a), self.column(b))

    def summary_data(self, intervals: bool = True) -> dict:
        """Every figure the views draw, JSON-safe (shape: docs/experiments-data.md)."""
        from elk_jupyter.experiments.comparison import summary_data

        return summary_data(self, intervals)

    def to_records(self) -> list[dict]:
        """One flat dict per run: the case's fields, the column, the output, scores and figures."""
        rows = []
        for r in self.runs:
            usage = r.usage
            row = {f"case.{k}": v for k, v in self.spec.cases[r.case].items()}
            row.update(
                case=r.case,
                prompt=r.column.template,
                model=r.column.model,
                params=r.column.param_dict,
                repeat=r.repeat,
                status=r.reply.get("status"),
                output=r.text,
                error=r.error,
                passed=r.passed,
                score=r.score,
                prompt_tokens=usage.prompt,
                completion_tokens=usage.completion,
                latency=r.latency,
                cost=r.cost,
                replayed=r.replayed,
            )
            row.update({f"score.{name}": s.value for name, s in r.scores.items()})
            rows.append(row)
        return rows

    def to_pandas(self):
        import pandas  # optional: only this method needs it

        return pandas.DataFrame(self.to_records())

    def to_jsonl(self, path) -> None:
        """One JSON object per run (``to_records``); ``experiments.cases`` reads it back the same."""
        from elk_jupyter.experiments.cases import write_jsonl

        write_jsonl(self.to_records(), path)

    def to_csv(self, path) -> None:
        """One row per run (``to_records``; dicts and lists as JSON); ``experiments.cases`` reads it back."""
        from elk_jupyter.experiments.cases import write_csv

        write_csv(self.to_records(), path)

    def diff(self, other: ExperimentResult):
        """This experiment against ``other`` (cases matched by their fields), as a view."""
        from elk_jupyter.experiments.comparison import diff

        return diff(self, other)

    def _repr_mimebundle_(self, include=None, exclude=None):
        from elk_jupyter.experiments.view import bundle

        return bundle(self)

    def __repr__(self) -> str:
        from elk_jupyter.experiments.view import plain_text

        return plain_text(self)


def score_from(data: dict) -> Score:
    return Score.from_dict(data if isinstance(data, dict) else {})


def result_of(record: dict) -> ExperimentResult:
    """The ExperimentResult a valid experiment record holds (``records.experiment``; for the CLI and comparisons)."""
    data = record["experiment"]
    spec = Spec(
        data["name"],
        tuple(data["templates"]),
        tuple(data["cases"]),
        tuple(data["models"]),
        check_grid({k: v for k, v in data["grid"].items()}),
        data["repeats"],
        data["endpoint"],
        data.get("system"),
    )
    runs = [
        RunResult(
            case=run["case"],
            column=Column.of(run["template"], run["model"], run["params"]),
            repeat=run["repeat"],
            key=run["key"],
            request=run["request"],
            reply=run["reply"],
            host=run.get("host"),
            replayed=bool(run.get("replayed")),
            scores={name: score_from(s) for name, s in run["scores"].items()},
            judges=tuple(run["judges"]),
            cost=run.get("cost"),
            sent=run.get("sent") is not False,
        )
        for run in record["runs"]
    ]
    return ExperimentResult(spec, runs, list(record.get("scorers") or ()), record.get("total"))
