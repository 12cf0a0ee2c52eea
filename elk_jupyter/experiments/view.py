"""The matrix as the output shows it: an inert Markdown table, a plain-text table, a progress line. Pure.

Rows are cases, columns prompt × model × params; each cell a mark, the score, the first repeat's
output, tokens, latency and cost; then one row per aggregate. Model text, case values and error
messages go through ``escape_text`` (every character shown as itself: nothing becomes HTML, a
link or a table separator); the only HTML is ours (``<br>``, and ``<details>`` to fold a long
output). The same bundle is updated while the runs finish and saved with the records at the end.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from elk_jupyter.display.markdown_inline import code_span, escape_text
from elk_jupyter.records.experiment import EXPERIMENT_KEY, record_of

if TYPE_CHECKING:  # results shows itself through this module: importing it back would be a cycle
    from elk_jupyter.experiments.results import Aggregate, ExperimentResult, RunResult

FOLD_AT = 80  # characters of output shown before the rest is folded into <details>
# Text symbols, not emoji: they render in every font (headless Chromium has no emoji font).
MARKS = {True: "✓", False: "✗", None: "·"}


def _inert(text: str) -> str:
    """Exact text as inline Markdown on one table row: line breaks become ``<br>``."""
    return "<br>".join(escape_text(line) for line in text.split("\n"))


def _output(text: str) -> str:
    if len(text) <= FOLD_AT:
        return _inert(text)
    return f"<details><summary>{_inert(text[:FOLD_AT])}…</summary>{_inert(text)}</details>"


def _figures(runs: list[RunResult]) -> str:
    parts = []
    tokens = sum(r.usage.numbers()["total"] for r in runs)
    if tokens:
        parts.append(f"{tokens} tok")
    latencies = [r.latency for r in runs if r.latency is not None]
    if latencies:
        parts.append(f"{sum(latencies) / len(latencies):.2f} s")
    costs = [r.cost for r in runs if r.cost is not None]
    if costs:
        parts.append(f"${sum(costs):.4g}")
    return " · ".join(parts)


def cell_markdown(runs: list[RunResult]) -> str:
    if not runs:
        return "…"
    first = runs[0]
    if not first.ok:
        return f"⚠ **{escape_text(str(first.reply.get('status')))}:** {_inert(first.error or '')}"
    passed = [r.passed for r in runs]
    mark = MARKS[None if None in passed else all(passed)]
    score = [r.score for r in runs if r.score is not None]
    head = mark + (f" {sum(score) / len(score):.2f}" if score else "")
    if len(runs) > 1:
        head += f" ({sum(bool(p) for p in passed)}/{len(runs)} pass)" if None not in passed else f" ×{len(runs)}"
    return f"{head} · {_output(first.text)} · *{_figures(runs)}*"


def _case_label(case: dict) -> str:
    text = ", ".join(f"{k}={v if isinstance(v, str) else json.dumps(v, default=str)}" for k, v in case.items())
    return _inert(text[:60] + ("…" if len(text) > 60 else "")) or "(no fields)"


def _number(value, form: str) -> str:
    return "–" if value is None else form.format(value)


AGGREGATE_ROWS = (
    ("pass rate", lambda a: _number(a.pass_rate, "{:.0%}")),
    ("mean score", lambda a: _number(a.mean_score, "{:.2f}")),
    ("spread (repeats)", lambda a: _number(a.spread, "±{:.2f}")),
    ("errors", lambda a: f"{a.errors}/{a.runs}"),
    ("tokens", lambda a: str(a.tokens)),
    ("cost", lambda a: _number(a.cost, "${:.4g}")),
    (
        "latency p50 / p95",
        lambda a: f"{_number(a.latency_p50, '{:.2f}')} / {_number(a.latency_p95, '{:.2f} s')}",
    ),
)


def summary_line(result: ExperimentResult) -> str:
    # Not how many were replayed: a replay must show the very same table (the records say it per run).
    parts = [f"{len(result.runs)}/{result.total} runs", f"{result.errors} errors"]
    if result.cost is not None:
        parts.append(f"${result.cost:.4g}")
    return " · ".join(parts)


def progress_bar(result: ExperimentResult, width: int = 20) -> str:
    filled = round(width * len(result.runs) / result.total) if result.total else width
    return "▓" * filled + "░" * (width - filled)


def markdown(result: ExperimentResult, live: bool = False) -> str:
    """The matrix; ``live`` adds a progress bar (while runs finish; the saved table has none)."""
    spec = result.spec
    bar = f"{progress_bar(result)} " if live else ""
    lines = [f"**experiment {code_span(spec.name)}** · {bar}{summary_line(result)}", ""]
    labels = [_inert(c.label(len(spec.templates))) for c in spec.columns]
    lines.append("| case | " + " | ".join(labels) + " |")
    lines.append("|---" * (len(labels) + 1) + "|")
    for number, case in enumerate(spec.cases):
        cells = [cell_markdown(result.cell(number, column)) for column in spec.columns]
        lines.append(f"| {_case_label(case)} | " + " | ".join(cells) + " |")
    aggregates = result.aggregates()
    for name, form in AGGREGATE_ROWS:
        lines.append(f"| **{name}** | " + " | ".join(form(aggregates[c]) for c in spec.columns) + " |")
    if result.scorer_names:
        # code spans: a `$` in a scorer's name must not start math (JupyterLab typesets `$…$` in Markdown)
        lines += ["", "*scorers:* " + ", ".join(code_span(n) for n in result.scorer_names)]
    return "\n".join(lines)


def plain_text(result: ExperimentResult) -> str:
    spec = result.spec
    lines = [f"experiment {spec.name}: {summary_line(result)}"]
    aggregates = result.aggregates()
    for column in spec.columns:
        lines.append(f"  [{column.label(len(spec.templates))}] " + _aggregate_text(aggregates[column]))
        for number in range(len(spec.cases)):
            runs = result.cell(number, column)
            if runs:
                first = runs[0]
                shown = " ".join(first.text.split())[:50] if first.ok else f"[{first.error}]"[:50]
                lines.append(f"    case {number}: {MARKS[first.passed]} {shown}")
    return "\n".join(lines)


def _aggregate_text(a: Aggregate) -> str:
    return " · ".join(f"{name} {form(a)}" for name, form in AGGREGATE_ROWS)


def progress_line(result: ExperimentResult) -> str:
    return f"\rexperiment {result.spec.name}: {progress_bar(result)} {summary_line(result)}"


def bundle(result: ExperimentResult, final: bool = True) -> tuple[dict, dict]:
    """``(data, metadata)``: the inert table and, once finished, every run's record."""
    data = {"text/markdown": markdown(result, live=not final), "text/plain": plain_text(result)}
    return data, ({EXPERIMENT_KEY: record_of(result)} if final else {})
