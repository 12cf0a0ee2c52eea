"""The experiment's own view data (``EXPERIMENT_MIME``): the matrix, a two-column compare, a diff. Pure.

The prebuilt JupyterLab / Notebook 7 renderer (labextension/, js/matrix.js) draws it with no kernel:
sortable, filterable, a run opened, two columns side by side. The data is what the table needs and
no more: each run's output is clipped to ``TEXT_CAP`` characters and points (``record``: source,
index) at its full record in the output's metadata (the experiment record, kept there anyway for
replay), where the renderer reads the full output, the request body and the judges. Values stay
data (strings and numbers): the renderer treats every one as hostile. The view is versioned: a
renderer that meets another version shows the bundle's Markdown copy's plain text instead. The
figures (``summaries``: per column, with intervals; the paired tests) have the shape written down in
docs/experiments-data.md, so the view draws what the statistics compute and nothing of its own.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING

from elk_jupyter.experiments.spec import case_identity

if TYPE_CHECKING:  # results shows itself through this module: importing it back would be a cycle
    from elk_jupyter.experiments.results import ExperimentResult, RunResult

EXPERIMENT_MIME = "application/vnd.elk-jupyter.experiment.v1+json"
EXPERIMENT_VIEW_VERSION = 1
MODES = ("matrix", "compare", "diff")
SOURCES_KEY = "elk_jupyter_experiment_sources"  # compare/diff: the records shown (never replayed from)
TEXT_CAP = 600  # characters of a run's output in the view (the full output is in the record)
FIELD_CAP = 300  # characters of a case value shown in the table
TEMPLATE_CAP = 4000


def _number(value) -> float | int | None:
    """A finite JSON number, or None (NaN and infinities are not JSON)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value if math.isfinite(value) else None


def _clip(text: object, cap: int) -> str:
    text = text if isinstance(text, str) else json.dumps(text, ensure_ascii=False, default=str)
    return text if len(text) <= cap else text[:cap] + "…"


def summary(result: ExperimentResult, final: bool) -> dict:
    """The figures per column in the shape of docs/experiments-data.md: the statistics' own
    ``summary_data`` (intervals and paired tests once final), else these from the aggregates."""
    if hasattr(result, "summary_data"):  # issue 24's statistics (experiments/comparison.py)
        return result.summary_data(intervals=final)
    aggregates = result.aggregates()
    columns = []
    for index, column in enumerate(result.spec.columns):
        a = aggregates[column]
        columns.append(
            {
                "index": index,
                "runs": a.runs,
                "errors": a.errors,
                "pass_rate": None if a.pass_rate is None else {"value": _number(a.pass_rate)},
                "mean_score": None if a.mean_score is None else {"value": _number(a.mean_score)},
                "spread": _number(a.spread),
                "tokens": {"total": a.tokens},
                "cost": _number(a.cost),
                "latency": {"p50": _number(a.latency_p50), "p95": _number(a.latency_p95)},
            }
        )
    return {"version": 1, "final": final, "columns": columns, "comparisons": []}


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
            "index": n,  # in its source's columns (and its summary's)
        }
        for n, c in enumerate(result.spec.columns)
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


def _runs(result: ExperimentResult, source: int, offset: int, cases: list[int], memo=None) -> list[dict]:
    """The runs of one source, with their column shifted by ``offset`` and their case renumbered.
    A live view's ``memo`` keeps each run's entry, so a redraw makes only the new runs' (their
    position in the record, which moves as runs finish, is set each time)."""
    index = {c: offset + n for n, c in enumerate(result.spec.columns)}
    made = memo.views if memo is not None else {}
    shown = []
    for n, run in enumerate(result.runs):
        if run.column in index and 0 <= run.case < len(cases):
            item = made.get(id(run))
            if item is None:
                item = made[id(run)] = _run(run, index[run.column], source, n)
            shown.append({**item, "case": cases[run.case], "record": [source, n]})
    return shown


def view(result: ExperimentResult, live: bool = False, memo=None) -> dict:
    """The matrix of one experiment (``live`` while runs still finish; ``memo``: experiments/redraw.py)."""
    if memo is not None:
        memo.aggregates(result)  # computed for the changed columns only, and shared with summary_data
    return {
        "version": EXPERIMENT_VIEW_VERSION,
        "mode": "matrix",
        "live": live,
        "sources": [_source(result)],
        "summaries": [summary(result, final=not live)],
        "cases": [_case(c) for c in result.spec.cases],
        "columns": _columns(result, 0, ""),
        "runs": _runs(result, 0, 0, list(range(len(result.spec.cases))), memo),
        "pair": None,
        "comparison": None,
    }


def compare_view(result: ExperimentResult, first: int, second: int, comparison: dict | None = None) -> dict:
    """The matrix opened on two of its columns side by side, with their paired comparison (a
    ``comparisons`` entry of docs/experiments-data.md) when there is one."""
    data = view(result)
    data.update(mode="compare", pair=[first, second], comparison=comparison)
    return data


def diff_view(first: ExperimentResult, second: ExperimentResult, pair: list[int] | None = None) -> dict:
    """Two experiments in one table: their columns side by side (A then B), cases matched by their
    fields (a case only one has is blank in the other's columns), ``pair`` (default: the first
    column both have) compared."""
    cases: list[dict] = []
    positions: dict[str, int] = {}
    for result in (first, second):
        for case in result.spec.cases:
            if case_identity(case) not in positions:
                positions[case_identity(case)] = len(cases)
                cases.append(case)
    numbers = [[positions[case_identity(c)] for c in r.spec.cases] for r in (first, second)]
    offset = len(first.spec.columns)
    return {
        "version": EXPERIMENT_VIEW_VERSION,
        "mode": "diff",
        "live": False,
        "sources": [_source(first), _source(second)],
        "summaries": [summary(first, final=True), summary(second, final=True)],
        "cases": [_case(c) for c in cases],
        "columns": _columns(first, 0, "A: ") + _columns(second, 1, "B: "),
        "runs": _runs(first, 0, 0, numbers[0]) + _runs(second, 1, offset, numbers[1]),
        "pair": pair or first_pair(first, second),
        "comparison": None,
    }


def first_pair(first: ExperimentResult, second: ExperimentResult) -> list[int] | None:
    """The same column in both (else the first of each), as indexes into the diff's columns."""
    if not first.spec.columns or not second.spec.columns:
        return None
    later = {c: n for n, c in enumerate(second.spec.columns)}
    for n, column in enumerate(first.spec.columns):
        if column in later:
            return [n, len(first.spec.columns) + later[column]]
    return [0, len(first.spec.columns)]
