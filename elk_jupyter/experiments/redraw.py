"""What a live matrix keeps between redraws, so each one costs the runs that finished since the last.

The live view redraws a few times a second from a new partial result. Rendering every cell again
(escaping model text) and aggregating every column again made one redraw of 16,000 runs take
6.7 s (issue 24). Here each redraw finds the runs it has not seen (one set look-up per run), and
only their rows, their columns' aggregates and their columns' text blocks are made again; the
rest is reused. Runs are compared by identity: the runner hands over the same RunResult objects,
kept alive here, so an id is never reused while it is remembered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from elk_jupyter.experiments.aggregates import Aggregate, aggregate

if TYPE_CHECKING:
    from elk_jupyter.experiments.results import ExperimentResult, RunResult
    from elk_jupyter.experiments.spec import Column


class RedrawMemo:
    def __init__(self) -> None:
        self._seen: dict[int, RunResult] = {}
        self._cells: dict[tuple[int, Column], list[RunResult]] = {}
        self._columns: dict[Column, list[RunResult]] = {}
        self._aggregates: dict[Column, Aggregate] = {}
        self.rows: dict[int, str] = {}  # case -> its Markdown row
        self.blocks: dict[Column, str] = {}  # column -> its plain-text lines
        self.views: dict[int, dict] = {}  # id(run) -> its entry in the experiment view (experiments/matrix.py)

    def update(self, result: ExperimentResult) -> None:
        """Take in the runs of ``result`` not seen yet; forget what they change."""
        new = [r for r in result.runs if id(r) not in self._seen]
        if len(self._seen) + len(new) != len(result.runs):  # a run was replaced or dropped: start again
            self.__init__()
            new = list(result.runs)
        for run in new:
            self._seen[id(run)] = run
            cell = self._cells.setdefault((run.case, run.column), [])
            cell.append(run)
            if len(cell) > 1:
                cell.sort(key=lambda r: r.repeat)
            self._columns.setdefault(run.column, []).append(run)
            self.rows.pop(run.case, None)
            self.blocks.pop(run.column, None)
            self._aggregates.pop(run.column, None)

    def cell(self, case: int, column: Column) -> list[RunResult]:
        return self._cells.get((case, column), [])

    def aggregates(self, result: ExperimentResult) -> dict[Column, Aggregate]:
        """Per column, without the bootstrap (a live redraw): only changed columns are computed."""
        for column in result.spec.columns:
            if column not in self._aggregates:
                runs = self._columns.get(column, [])
                self._aggregates[column] = aggregate(runs, intervals=False, scored=bool(result.scorer_names))
        found = {c: self._aggregates[c] for c in result.spec.columns}
        result.share_aggregates(False, found)  # summary_data(intervals=False) reads the same
        return found
