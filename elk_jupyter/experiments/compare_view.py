"""Two columns side by side as an output: ``result.compare(A, B)``'s display and ``result.diff(other)``. Pure.

Displayed, a ``ComparisonView`` is a bundle with the experiment mime type (mode ``compare`` or
``diff``: the JupyterLab renderer opens the two columns side by side with a word diff, the paired
test beside them), an inert Markdown table (case | A | B | changed) for other front-ends, and the
compared experiments' records in the output's metadata under ``SOURCES_KEY`` (so a run opens in
full with no kernel; not the experiment key, so the notebook's replay index and
``elk-jupyter experiments list`` never count them twice).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from elk_jupyter.display.markdown_inline import code_span, escape_text
from elk_jupyter.experiments import matrix
from elk_jupyter.experiments.spec import case_identity
from elk_jupyter.experiments.view import MARKS, case_label, cell_markdown
from elk_jupyter.records.experiment import record_of

if TYPE_CHECKING:  # results shows itself through this module: importing it back would be a cycle
    from elk_jupyter.experiments.results import ExperimentResult


@dataclass(frozen=True, eq=False)
class ComparisonView:
    """Column ``columns[0]`` of ``first`` against column ``columns[1]`` of ``second`` (the same
    experiment for a compare); ``comparison`` is the paired test's entry, when computed."""

    first: ExperimentResult
    second: ExperimentResult
    columns: tuple[int, int]
    is_diff: bool = False  # two experiments (even one twice): labels say A: and B:, cases match by fields
    comparison: dict | None = None  # the paired tests (a ``comparisons`` entry of docs/experiments-data.md)
    text: str = ""  # the same tests in words (Comparison.text()), for the plain and Markdown copies
    between: tuple = ()  # a diff: the paired tests of other column pairs, indexes into the diff's columns

    def _cells(self) -> tuple[list[dict], list, list]:
        a_col = self.first.spec.columns[self.columns[0]]
        b_col = self.second.spec.columns[self.columns[1]]
        cases = list(self.first.spec.cases)
        later = {case_identity(c): n for n, c in enumerate(self.second.spec.cases)}
        a_cells = [self.first.cell(n, a_col) for n in range(len(cases))]
        b_cells = [self.second.cell(later[key], b_col) if (key := case_identity(c)) in later else [] for c in cases]
        return cases, a_cells, b_cells

    def labels(self) -> tuple[str, str]:
        a = self.first.spec.columns[self.columns[0]].label(len(self.first.spec.templates))
        b = self.second.spec.columns[self.columns[1]].label(len(self.second.spec.templates))
        return (f"A: {a}", f"B: {b}") if self.is_diff else (a, b)

    def view(self) -> dict:
        if not self.is_diff:
            return matrix.compare_view(self.first, *self.columns, comparison=self.comparison)
        pair = [self.columns[0], len(self.first.spec.columns) + self.columns[1]]
        return {
            **matrix.diff_view(self.first, self.second, pair),
            "comparison": self.comparison,
            "between": list(self.between),
        }

    def changed(self) -> tuple[int, int]:
        """(cases with a run on both sides, of which the first repeat's output or verdict differs)."""
        _, a_cells, b_cells = self._cells()
        both = [(a[0], b[0]) for a, b in zip(a_cells, b_cells, strict=True) if a and b]
        return len(both), sum(a.text != b.text or a.passed != b.passed for a, b in both)

    def markdown(self) -> str:
        cases, a_cells, b_cells = self._cells()
        a_label, b_label = self.labels()
        names = self.first.spec.name, self.second.spec.name
        title = f"{code_span(names[0])} → {code_span(names[1])}" if self.is_diff else code_span(names[0])
        lines = [f"**compare {title}**", "", f"| case | {escape_text(a_label)} | {escape_text(b_label)} | changed |"]
        lines.append("|---|---|---|---|")
        for case, a, b in zip(cases, a_cells, b_cells, strict=True):
            changed = bool(a and b and (a[0].text != b[0].text or a[0].passed != b[0].passed))
            lines.append(
                f"| {case_label(case)} | {cell_markdown(a)} | {cell_markdown(b)} | {MARKS[True] if changed else ''} |"
            )
        both, changed = self.changed()
        lines += ["", f"{changed} of {both} cases changed"]
        lines += [f"<br>{escape_text(line)}" for line in self.text.splitlines()]
        return "\n".join(lines)

    def plain_text(self) -> str:
        a_label, b_label = self.labels()
        both, changed = self.changed()
        line = f"compare [{a_label}] with [{b_label}]: {changed} of {both} cases changed"
        return "\n".join([line, self.text]) if self.text else line

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


def compare_columns(result: ExperimentResult, first: int, second: int, comparison=None, text="") -> ComparisonView:
    """Columns ``first`` and ``second`` (indexes) of ``result`` side by side (``result.compare`` shows this)."""
    return ComparisonView(result, result, (first, second), False, comparison, text)
