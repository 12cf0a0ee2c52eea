"""An experiment's outcome: one RunResult per run, aggregates per column, and exports. Pure but for export.

``to_records`` is one flat dict per run (what ``to_pandas``, CSV and JSONL hold); ``aggregates``
gives per column the pass rate, mean score, spread across repeats, tokens, cost and latency
p50/p95. Model text stays data here: the views decide how it is shown.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from dataclasses import dataclass, field

from elk_jupyter.experiments.scorers import Score
from elk_jupyter.experiments.spec import Column, Spec, check_grid
from elk_jupyter.gateway.usage import Usage


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

    @property
    def ok(self) -> bool:
        return self.reply.get("status") in ("completed", "incomplete")

    @property
    def text(self) -> str:
        return self.reply.get("text") or ""

    @property
    def error(self) -> str | None:
        return None if self.ok else (self.reply.get("error") or self.reply.get("status"))

    @property
    def latency(self) -> float | None:
        return (self.reply.get("timing") or {}).get("total")

    @property
    def usage(self) -> Usage:
        return Usage.of(self.reply.get("usage"))

    @property
    def passed(self) -> bool | None:
        """All scorers passed (None when there are no scorers); a failed run never passes."""
        if not self.scores:
            return None if self.ok else False
        return self.ok and all(s.passed for s in self.scores.values())

    @property
    def score(self) -> float | None:
        if not self.scores:
            return None
        return statistics.fmean(s.value for s in self.scores.values()) if self.ok else 0.0


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


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (https://en.wikipedia.org/wiki/Percentile#The_nearest-rank_method)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def aggregate(runs: list[RunResult]) -> Aggregate:
    passes = [r.passed for r in runs if r.passed is not None]
    scores = [r.score for r in runs if r.score is not None]
    by_case: dict[int, list[float]] = {}
    for r in runs:
        if r.score is not None:
            by_case.setdefault(r.case, []).append(r.score)
    spreads = [statistics.pstdev(v) for v in by_case.values() if len(v) > 1]
    costs = [r.cost for r in runs if r.cost is not None]
    latencies = [r.latency for r in runs if r.ok and r.latency is not None]
    return Aggregate(
        runs=len(runs),
        errors=sum(not r.ok for r in runs),
        pass_rate=sum(passes) / len(passes) if passes else None,
        mean_score=statistics.fmean(scores) if scores else None,
        spread=statistics.fmean(spreads) if spreads else None,
        tokens=sum(r.usage.numbers()["total"] for r in runs),
        cost=sum(costs) if costs else None,
        latency_p50=percentile(latencies, 50),
        latency_p95=percentile(latencies, 95),
    )


class ExperimentResult:
    """The matrix: rows = cases, columns = prompt × model × params; each cell the runs of its repeats."""

    def __init__(self, spec: Spec, runs: list[RunResult], scorer_names: list[str], total: int | None = None):
        self.spec = spec
        self.runs = runs
        self.scorer_names = scorer_names
        self.total = total if total is not None else len(spec.runs())

    @property
    def missing(self) -> int:
        return self.total - len(self.runs)

    @property
    def errors(self) -> int:
        return sum(not r.ok for r in self.runs)

    @property
    def cost(self) -> float | None:
        costs = [r.cost for r in self.runs if r.cost is not None]
        return sum(costs) if costs else None

    def cell(self, case: int, column: Column) -> list[RunResult]:
        return sorted((r for r in self.runs if r.case == case and r.column == column), key=lambda r: r.repeat)

    def aggregates(self) -> dict[Column, Aggregate]:
        return {c: aggregate([r for r in self.runs if r.column == c]) for c in self.spec.columns}

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
        with open(path, "w", encoding="utf-8") as file:
            for row in self.to_records():
                file.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")

    def to_csv(self, path) -> None:
        rows = self.to_records()
        names = list(dict.fromkeys(name for row in rows for name in row))
        with open(path, "w", encoding="utf-8", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=names)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in row.items()})

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
        )
        for run in record["runs"]
    ]
    return ExperimentResult(spec, runs, list(record.get("scorers") or ()), record.get("total"))
