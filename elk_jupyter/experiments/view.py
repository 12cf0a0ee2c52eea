"""The matrix as the output shows it: an inert Markdown table, a plain-text table, a progress line. Pure.

Rows are cases, columns prompt × model × params; each cell a mark, the score, the first repeat's
output, tokens, latency and cost; then one row per aggregate. Model text, case values and error
messages go through ``escape_text`` (every character shown as itself: nothing becomes HTML, a
link, math or a table separator); the only HTML is ours (``<br>``, ``<details>`` to fold a long
output, and the isolated ``$`` of costs, tex.DOLLAR, which JupyterLab's MathJax cannot pair with the
next cell's). The same bundle is updated while the runs finish and saved with the records at the end.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from elk_jupyter.display.markdown_inline import code_span, escape_text
from elk_jupyter.display.tex import DOLLAR
from elk_jupyter.records.experiment import EXPERIMENT_KEY, record_of

if TYPE_CHECKING:  # results shows itself through this module: importing it back would be a cycle
    from elk_jupyter.experiments.redraw import RedrawMemo
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
    tokens = sum(r.usage.total or 0 for r in runs)  # (r.tokens["total"], without building the dict)
    if tokens:
        parts.append(f"{tokens} tok")
    latencies = [r.latency for r in runs if r.latency is not None]
    if latencies:
        parts.append(f"{sum(latencies) / len(latencies):.2f} s")
    costs = [r.cost for r in runs if r.cost is not None]
    if costs:
        parts.append(f"{DOLLAR}{sum(costs):.4g}")
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


# Bidi embeddings, overrides and isolates: one left open in a value reorders the rest of the label,
# the other fields with it ({q: <U+202E>abc, want: zz} reads "q=zz=tnaw ,cba"); as js/matrix-data.js's
# caseLabel, the label is a summary in logical order without them (the record keeps the value).
_BIDI_CONTROLS = dict.fromkeys([*range(0x202A, 0x202F), *range(0x2066, 0x206A)])


def case_label(case: dict) -> str:
    """A case's fields on one table row, as the matrix and compare views label it (and matrix-data.js)."""
    text = ", ".join(
        f"{k}={v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str)}" for k, v in case.items()
    )
    text = text.translate(_BIDI_CONTROLS)
    return _inert(text[:60] + ("…" if len(text) > 60 else "")) or "(no fields)"


def _number(value, form: str) -> str:
    return "–" if value is None else form.format(value)


def _with_interval(value, bounds, form: str) -> str:
    """``67% [35–88%]``: the figure and its 95% interval (statistics.py says how each is computed)."""
    if value is None:
        return "–"
    if bounds is None:
        return form.format(value)
    return f"{form.format(value)} [{form.format(bounds[0])}–{form.format(bounds[1])}]"


def _pass_k(a: Aggregate) -> str:
    """pass@k · pass^k at the largest k (the repeats): any of k passes · all k pass."""
    if not a.pass_at_k or max(a.pass_at_k) < 2:
        return "–"
    k = max(a.pass_at_k)
    return f"{_number(a.pass_at_k[k], '{:.0%}')} · {_number(a.pass_hat_k[k], '{:.0%}')} (k={k})"


AGGREGATE_ROWS = (
    ("pass rate", lambda a: _with_interval(a.pass_rate, a.pass_interval, "{:.0%}")),
    ("mean score", lambda a: _with_interval(a.mean_score, a.score_interval, "{:.2f}")),
    ("pass@k · pass^k", _pass_k),
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


def one_line(text: str) -> str:
    """Text for one line of the plain table: a name or error from a record (hostile: a line break in
    it would print a line of its own that looks like ours) with its whitespace runs as one space."""
    return " ".join(str(text).split())


def _plain_cell(number: int, runs: list[RunResult]) -> str:
    first = runs[0]
    shown = one_line(first.text)[:50] if first.ok else f"[{one_line(first.error)}]"[:50]
    return f"    case {number}: {MARKS[first.passed]} {shown}"


def _aggregates(result: ExperimentResult, live: bool, memo: RedrawMemo | None) -> dict:
    if live and memo is not None:
        return memo.aggregates(result)
    return result.aggregates(intervals=not live)  # the bootstrap once, in the saved table


def _rows(result: ExperimentResult, memo: RedrawMemo | None) -> list[str]:
    """The Markdown row of each case; a live view's memo renders only the rows whose runs changed."""
    spec = result.spec
    cell = memo.cell if memo is not None else result.cell
    rows = []
    for number, case in enumerate(spec.cases):
        row = memo.rows.get(number) if memo is not None else None
        if row is None:
            cells = [cell_markdown(cell(number, column)) for column in spec.columns]
            row = f"| {case_label(case)} | " + " | ".join(cells) + " |"
            if memo is not None:
                memo.rows[number] = row
        rows.append(row)
    return rows


def markdown(result: ExperimentResult, live: bool = False, memo: RedrawMemo | None = None) -> str:
    """The matrix; ``live`` adds a progress bar (while runs finish; the saved table has none).
    ``memo`` (already updated with ``result``) lets a live view reuse what did not change."""
    spec = result.spec
    bar = f"{progress_bar(result)} " if live else ""
    # Our own figures hold `$` (costs): isolated here, where they become Markdown.
    lines = [f"**experiment {code_span(spec.name)}** · {bar}{summary_line(result).replace('$', DOLLAR)}", ""]
    labels = [_inert(c.label(len(spec.templates))) for c in spec.columns]
    lines.append("| case | " + " | ".join(labels) + " |")
    lines.append("|---" * (len(labels) + 1) + "|")
    lines += _rows(result, memo)
    aggregates = _aggregates(result, live, memo)
    for name, form in AGGREGATE_ROWS:
        if name == "pass@k · pass^k" and spec.repeats < 2:
            continue
        figures = (form(aggregates[c]).replace("$", DOLLAR) for c in spec.columns)
        lines.append(f"| **{name}** | " + " | ".join(figures) + " |")
    if result.scorer_names:
        # code spans: a `$` in a scorer's name must not start math (JupyterLab typesets `$…$` in Markdown)
        lines += ["", "*scorers:* " + ", ".join(code_span(n) for n in result.scorer_names)]
        lines += ["", "*[low–high]: 95% intervals (pass rate: Wilson; mean score: bootstrap over cases)*"]
    return "\n".join(lines)


def plain_text(result: ExperimentResult, live: bool = False, memo: RedrawMemo | None = None) -> str:
    spec = result.spec
    lines = [f"experiment {one_line(spec.name)}: {summary_line(result)}"]
    aggregates = _aggregates(result, live, memo)
    cell = memo.cell if memo is not None else result.cell
    for column in spec.columns:
        lines.append(f"  [{column.label(len(spec.templates))}] " + _aggregate_text(aggregates[column]))
        block = memo.blocks.get(column) if memo is not None else None
        if block is None:
            runs = ((number, cell(number, column)) for number in range(len(spec.cases)))
            block = "\n".join(_plain_cell(number, found) for number, found in runs if found)
            if memo is not None:
                memo.blocks[column] = block
        if block:
            lines.append(block)
    return "\n".join(lines)


def _aggregate_text(a: Aggregate) -> str:
    return " · ".join(f"{name} {form(a)}" for name, form in AGGREGATE_ROWS)


def progress_line(result: ExperimentResult) -> str:
    return f"\rexperiment {result.spec.name}: {progress_bar(result)} {summary_line(result)}"


def bundle(result: ExperimentResult, final: bool = True, memo: RedrawMemo | None = None) -> tuple[dict, dict]:
    """``(data, metadata)``: the matrix view (experiments/matrix.py), the inert table and, once
    finished, every run's record (the view's runs point into it). A live view passes the same
    ``memo`` to each redraw (experiments/redraw.py)."""
    from elk_jupyter.experiments.matrix import EXPERIMENT_MIME, view

    if memo is not None:
        memo.update(result)
    data = {
        EXPERIMENT_MIME: view(result, live=not final, memo=memo),
        "text/markdown": markdown(result, not final, memo),
        "text/plain": plain_text(result, not final, memo),
    }
    return data, ({EXPERIMENT_KEY: record_of(result)} if final else {})
