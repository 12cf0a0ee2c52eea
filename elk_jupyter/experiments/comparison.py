"""``result.compare(A, B)`` and ``result.diff(other)`` as outputs: the matrix view opened on two columns. Pure.

Displayed, a ``Comparison`` is a bundle with the experiment mime type (mode ``compare`` or
``diff``: the JupyterLab renderer opens the two columns side by side with a word diff), an inert
Markdown table (case | A | B | changed) for other front-ends, and the compared experiments'
records in the output's metadata under ``SOURCES_KEY`` (so a run opens in full with no kernel; not
the experiment key, so the notebook's replay index and ``experiments list`` never count them twice).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from elk_jupyter.display.markdown_inline import code_span, escape_text
from elk_jupyter.errors import ConfigError
from elk_jupyter.experiments import matrix
from elk_jupyter.experiments.records import record_of
from elk_jupyter.experiments.results import ExperimentResult, RunResult
from elk_jupyter.experiments.spec import Column
from elk_jupyter.experiments.view import MARKS, cell_markdown


def pick_column(result: ExperimentResult, ref) -> int:
    """The column named by its index, its label as the table shows it, or a model that only it has."""
    columns = result.spec.columns
    labels = [c.label(len(result.spec.templates)) for c in columns]
    if isinstance(ref, int) and not isinstance(ref, bool) and -len(columns) <= ref < len(columns):
        return ref % len(columns)
    if isinstance(ref, Column) and ref in columns:
        return columns.index(ref)
    if isinstance(ref, str):
        if ref in labels:
            return labels.index(ref)
        by_model = [n for n, c in enumerate(columns) if c.model == ref]
        if len(by_model) == 1:
            return by_model[0]
    raise ConfigError(f"compare: no column {str(ref)[:80]!r}; the columns are: " + ", ".join(map(repr, labels)))


def paired_counts(first: list[list[RunResult]], second: list[list[RunResult]]) -> dict:
    """Per case, the first repeat of each side: how often both pass, only one does, and outputs differ."""
    counts = {"cases": 0, "both pass": 0, "only A passes": 0, "only B passes": 0, "both fail": 0, "outputs differ": 0}
    for a_runs, b_runs in zip(first, second, strict=True):
        if not a_runs or not b_runs:
            continue
        a, b = a_runs[0], b_runs[0]
        counts["cases"] += 1
        counts["outputs differ"] += a.text != b.text
        if a.passed is None or b.passed is None:
            continue
        key = {(True, True): "both pass", (True, False): "only A passes", (False, True): "only B passes"}
        counts[key.get((bool(a.passed), bool(b.passed)), "both fail")] += 1
    return counts


@dataclass(frozen=True)
class Comparison:
    """Two columns (of one experiment, or of two: a diff), shown side by side."""

    first: ExperimentResult
    second: ExperimentResult
    columns: tuple[int, int]
    statistics: dict = field(default_factory=dict)
    is_diff: bool = False  # two experiments (even the same one twice): columns labelled A: and B:

    def _cells(self) -> tuple[list, list, list]:
        a_col = self.first.spec.columns[self.columns[0]]
        b_col = self.second.spec.columns[self.columns[1]]
        cases = list(self.first.spec.cases)
        later = {repr(sorted(c.items(), key=str)): n for n, c in enumerate(self.second.spec.cases)}
        a_cells = [self.first.cell(n, a_col) for n in range(len(cases))]
        b_cells = [
            self.second.cell(later[key], b_col) if (key := repr(sorted(c.items(), key=str))) in later else []
            for c in cases
        ]
        return cases, a_cells, b_cells

    def labels(self) -> tuple[str, str]:
        a = self.first.spec.columns[self.columns[0]].label(len(self.first.spec.templates))
        b = self.second.spec.columns[self.columns[1]].label(len(self.second.spec.templates))
        return (f"A: {a}", f"B: {b}") if self.is_diff else (a, b)

    def view(self) -> dict:
        stats = {**paired_counts(*self._cells()[1:]), **self.statistics}
        if not self.is_diff:
            return matrix.compare_view(self.first, *self.columns, statistics=stats)
        data = matrix.diff_view(self.first, self.second)
        data.update(pair=[self.columns[0], len(self.first.spec.columns) + self.columns[1]])
        data["statistics"] = matrix.flat_statistics(stats)
        return data

    def markdown(self) -> str:
        cases, a_cells, b_cells = self._cells()
        a_label, b_label = self.labels()
        names = self.first.spec.name, self.second.spec.name
        title = f"{code_span(names[0])} → {code_span(names[1])}" if self.is_diff else code_span(names[0])
        lines = [f"**compare {title}**", "", f"| case | {escape_text(a_label)} | {escape_text(b_label)} | changed |"]
        lines.append("|---|---|---|---|")
        for number, (case, a, b) in enumerate(zip(cases, a_cells, b_cells, strict=True)):
            changed = bool(a and b and (a[0].text != b[0].text or a[0].passed != b[0].passed))
            label = escape_text(", ".join(f"{k}={v}" for k, v in case.items())[:60]) or f"case {number}"
            lines.append(f"| {label} | {cell_markdown(a)} | {cell_markdown(b)} | {MARKS[True] if changed else ''} |")
        stats = {**paired_counts(a_cells, b_cells), **self.statistics}
        lines += ["", " · ".join(f"{escape_text(str(k))}: {escape_text(str(v))}" for k, v in stats.items())]
        return "\n".join(lines)

    def plain_text(self) -> str:
        a_label, b_label = self.labels()
        stats = {**paired_counts(*self._cells()[1:]), **self.statistics}
        return f"compare [{a_label}] with [{b_label}]: " + ", ".join(f"{k} {v}" for k, v in stats.items())

    def _repr_mimebundle_(self, include=None, exclude=None):
        sources = [record_of(self.first)] + ([record_of(self.second)] if self.is_diff else [])
        data = {
            matrix.EXPERIMENT_MIME: self.view(),
            "text/markdown": self.markdown(),
            "text/plain": self.plain_text(),
        }
        return data, {matrix.SOURCES_KEY: sources}

    def __repr__(self) -> str:
        return self.plain_text()


def compare(result: ExperimentResult, first, second, statistics: dict | None = None) -> Comparison:
    return Comparison(result, result, (pick_column(result, first), pick_column(result, second)), statistics or {})


def diff(first: ExperimentResult, second: ExperimentResult) -> Comparison:
    pair = matrix.first_pair(first, second)
    if pair is None:
        raise ConfigError("diff: an experiment with no columns has nothing to compare")
    return Comparison(first, second, (pair[0], pair[1] - len(first.spec.columns)), is_diff=True)
