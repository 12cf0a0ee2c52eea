"""The experiment's own view data (``EXPERIMENT_MIME``): the matrix, a two-column compare, a diff. Pure.

The prebuilt JupyterLab / Notebook 7 renderer (labextension/, js/matrix.js) draws it with no kernel:
sortable, filterable, a run opened, two columns side by side. The data is what the table needs and
no more: each run's output is clipped to ``TEXT_CAP`` characters and points (``record``: source,
index) at its full record in the output's metadata (the experiment record, kept there anyway for
replay), where the renderer reads the full output, the request body and the judges. Values stay
data (strings and numbers): the renderer treats every one as hostile. The view is versioned: a
renderer that meets another version shows the bundle's Markdown copy's plain text instead.
"""

from __future__ import annotations

import dataclasses
import json
import math

from elk_jupyter.experiments.results import Aggregate, ExperimentResult, RunResult

EXPERIMENT_MIME = "application/vnd.elk-jupyter.experiment.v1+json"
EXPERIMENT_VIEW_VERSION = 1
MODES = ("matrix", "compare", "diff")
SOURCES_KEY = "elk_jupyter_experiment_sources"  # compare/diff: the records shown (never replayed from)
TEXT_CAP = 600  # characters of a run's output in the view (the full output is in the record)
FIELD_CAP = 300  # characters of a case value shown in the table
TEMPLATE_CAP = 4000
# Aggregate fields the table shows, in order: (field, label, format). Fields the Aggregate does not
# have (statistics added later) are skipped; ``<field>_ci`` / ``<field>_interval`` pairs become its interval.
AGGREGATE_FIELDS = (
    ("pass_rate", "pass rate", "percent"),
    ("mean_score", "mean score", "number"),
    ("pass_at_k", "pass@k", "percent"),
    ("pass_hat_k", "pass^k", "percent"),
    ("spread", "spread (repeats)", "number"),
    ("errors", "errors", "count"),
    ("runs", "runs", "count"),
    ("tokens", "tokens", "count"),
    ("cost", "cost", "usd"),
    ("latency_p50", "latency p50", "seconds"),
    ("latency_p95", "latency p95", "seconds"),
)
INTERVAL_SUFFIXES = ("_ci", "_interval")


def _number(value) -> float | int | None:
    """A finite JSON number, or None (NaN and infinities are not JSON)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value if math.isfinite(value) else None


def _clip(text: object, cap: int) -> str:
    text = text if isinstance(text, str) else json.dumps(text, ensure_ascii=False, default=str)
    return text if len(text) <= cap else text[:cap] + "…"


def _interval(aggregate: Aggregate, name: str) -> list[float] | None:
    for suffix in INTERVAL_SUFFIXES:
        pair = getattr(aggregate, name + suffix, None)
        if isinstance(pair, (list, tuple)) and len(pair) == 2 and all(_number(v) is not None for v in pair):
            return [float(pair[0]), float(pair[1])]
    return None


def aggregate_rows(aggregate: Aggregate) -> dict:
    """field -> {value, interval?} for every shown field the aggregate has (numbers only)."""
    present = {f.name for f in dataclasses.fields(aggregate)}
    rows = {}
    for name, _, _ in AGGREGATE_FIELDS:
        if name in present or hasattr(aggregate, name):
            item = {"value": _number(getattr(aggregate, name, None))}
            interval = _interval(aggregate, name)
            if interval:
                item["interval"] = interval
            rows[name] = item
    return rows


def _run(run: RunResult, column: int, source: int, index: int) -> dict:
    usage = run.usage
    text = run.text
    return {
        "case": run.case,
        "column": column,
        "repeat": run.repeat,
        "status": str(run.reply.get("status") or ""),
        "error": _clip(run.error or "", 2000),
        "text": _clip(text, TEXT_CAP),
        "clipped": len(text) > TEXT_CAP,
        "passed": run.passed,
        "score": _number(run.score),
        "scores": {
            name: {"value": _number(s.value), "passed": bool(s.passed), "reason": _clip(s.reason, 2000)}
            for name, s in run.scores.items()
        },
        "latency": _number(run.latency),
        "tokens": [usage.prompt or 0, usage.completion or 0],
        "cost": _number(run.cost),
        "replayed": run.replayed,
        "judged": len(run.judges),
        "record": [source, index],
    }


def _columns(result: ExperimentResult, source: int, prefix: str) -> list[dict]:
    templates = len(result.spec.templates)
    return [
        {
            "label": prefix + c.label(templates),
            "template": c.template,
            "model": c.model,
            "params": {k: _clip(v, FIELD_CAP) for k, v in c.param_dict.items()},
            "source": source,
        }
        for c in result.spec.columns
    ]


def _case(case: dict) -> dict:
    return {str(k): _clip(v, FIELD_CAP) for k, v in case.items()}


def _source(result: ExperimentResult) -> dict:
    spec = result.spec
    return {
        "name": spec.name,
        "id": spec.id,
        "endpoint": spec.endpoint,
        "repeats": spec.repeats,
        "templates": [_clip(t, TEMPLATE_CAP) for t in spec.templates],
        "system": _clip(spec.system or "", TEMPLATE_CAP),
        "scorers": list(result.scorer_names),
        "done": len(result.runs),
        "total": result.total,
        "errors": result.errors,
        "cost": _number(result.cost),
    }


def view(result: ExperimentResult, live: bool = False) -> dict:
    """The matrix of one experiment (``live`` while runs still finish)."""
    index = {c: n for n, c in enumerate(result.spec.columns)}
    aggregates = result.aggregates()
    return {
        "version": EXPERIMENT_VIEW_VERSION,
        "mode": "matrix",
        "live": live,
        "sources": [_source(result)],
        "cases": [_case(c) for c in result.spec.cases],
        "columns": _columns(result, 0, ""),
        "aggregates": [aggregate_rows(aggregates[c]) for c in result.spec.columns],
        "aggregate_fields": [[n, label, form] for n, label, form in AGGREGATE_FIELDS],
        "runs": [_run(r, index[r.column], 0, n) for n, r in enumerate(result.runs) if r.column in index],
        "pair": None,
        "statistics": {},
    }


def compare_view(result: ExperimentResult, first: int, second: int, statistics: dict | None = None) -> dict:
    """The matrix opened on two of its columns side by side; ``statistics`` (flat name -> number or
    text) is drawn beside them as it comes (the paired test's figures)."""
    data = view(result)
    data.update(mode="compare", pair=[first, second], statistics=flat_statistics(statistics or {}))
    return data


def flat_statistics(statistics: dict) -> dict:
    flat = {}
    for name, value in statistics.items():
        if _number(value) is not None or isinstance(value, (str, bool)) or value is None:
            flat[str(name)] = _clip(value, 400) if isinstance(value, str) else value
        elif isinstance(value, (list, tuple)) and all(_number(v) is not None for v in value):
            flat[str(name)] = list(value)[:8]
    return flat


def diff_view(first: ExperimentResult, second: ExperimentResult) -> dict:
    """Two experiments in one table: their columns side by side (A then B), cases matched by their
    fields (a case only one has is blank in the other's columns), the first matching pair compared."""
    cases: list[dict] = []
    positions: dict[str, int] = {}
    for result in (first, second):
        for case in result.spec.cases:
            identity = json.dumps(case, sort_keys=True, default=str)
            if identity not in positions:
                positions[identity] = len(cases)
                cases.append(case)
    data = {
        "version": EXPERIMENT_VIEW_VERSION,
        "mode": "diff",
        "live": False,
        "sources": [_source(first), _source(second)],
        "cases": [_case(c) for c in cases],
        "columns": _columns(first, 0, "A: ") + _columns(second, 1, "B: "),
        "aggregates": [],
        "aggregate_fields": [[n, label, form] for n, label, form in AGGREGATE_FIELDS],
        "runs": [],
        "pair": None,
        "statistics": {},
    }
    offset = 0
    for source, result in enumerate((first, second)):
        index = {c: offset + n for n, c in enumerate(result.spec.columns)}
        aggregates = result.aggregates()
        data["aggregates"] += [aggregate_rows(aggregates[c]) for c in result.spec.columns]
        renumber = [positions[json.dumps(c, sort_keys=True, default=str)] for c in result.spec.cases]
        for n, run in enumerate(result.runs):
            if run.column in index:
                shown = _run(run, index[run.column], source, n)
                shown["case"] = renumber[run.case]
                data["runs"].append(shown)
        offset += len(result.spec.columns)
    data["pair"] = first_pair(first, second)
    return data


def first_pair(first: ExperimentResult, second: ExperimentResult) -> list[int] | None:
    """The same column in both (else the first of each): what the diff opens compared."""
    if not first.spec.columns or not second.spec.columns:
        return None
    later = {c: n for n, c in enumerate(second.spec.columns)}
    for n, column in enumerate(first.spec.columns):
        if column in later:
            return [n, len(first.spec.columns) + later[column]]
    return [0, len(first.spec.columns)]
