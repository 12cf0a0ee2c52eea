"""The live matrix redraw: reusing what did not change draws exactly what a fresh draw does."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from elk_jupyter.experiments.redraw import RedrawMemo
from elk_jupyter.experiments.results import ExperimentResult, RunResult
from elk_jupyter.experiments.scorers import Score
from elk_jupyter.experiments.spec import build
from elk_jupyter.experiments.view import bundle

HOSTILE = "<img src=x onerror=alert(1)> | $x$ [a](javascript:alert(1))\nline two"


def _runs(cases: int, repeats: int):
    spec = build("Q $n", [{"n": i} for i in range(cases)], ["a", "b"], {"t": [0, 1]}, repeats, "chat", None, "r")
    runs = []
    for index, run in enumerate(spec.runs()):
        value = (0.0, 0.5, 1.0)[index % 3]
        failed = index % 7 == 0
        reply = (
            {"status": "error", "error": f"boom {HOSTILE}"}
            if failed
            else {"status": "completed", "text": f"{HOSTILE} {index}", "usage": {"total_tokens": index}}
        )
        score = {"s": Score(value, value >= 0.5, "why")}
        runs.append(RunResult(run.case, run.column, run.repeat, f"k{index}", {}, reply, scores=score, cost=0.001))
    return spec, runs


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 6), st.integers(1, 3), st.randoms(use_true_random=False))
def test_each_live_redraw_equals_a_fresh_draw_and_the_last_equals_the_saved_table(cases, repeats, rng):
    spec, runs = _runs(cases, repeats)
    order = list(runs)
    rng.shuffle(order)
    memo = RedrawMemo()
    done = []
    for step in range(0, len(order), max(1, len(order) // 5)):
        done = order[: step + 1]
        partial = ExperimentResult(spec, list(done), ["s"], len(runs))
        assert bundle(partial, final=False, memo=memo) == bundle(ExperimentResult(spec, list(done), ["s"]), False)
    final = ExperimentResult(spec, runs, ["s"])
    assert bundle(final, memo=memo) == bundle(ExperimentResult(spec, runs, ["s"]))


def test_a_redraw_renders_only_the_rows_and_columns_of_new_runs():
    spec, runs = _runs(10, 1)
    memo = RedrawMemo()
    bundle(ExperimentResult(spec, runs[:-1], ["s"], len(runs)), final=False, memo=memo)
    assert len(memo.rows) == 10 and len(memo.blocks) == 4
    memo.update(ExperimentResult(spec, runs, ["s"]))
    last = runs[-1]
    assert last.case not in memo.rows and len(memo.rows) == 9  # only its row is drawn again
    assert last.column not in memo.blocks and len(memo.blocks) == 3


def test_a_replaced_run_starts_the_memo_again():
    spec, runs = _runs(3, 1)
    memo = RedrawMemo()
    bundle(ExperimentResult(spec, runs, ["s"]), final=False, memo=memo)
    rescored = [RunResult(r.case, r.column, r.repeat, r.key, {}, r.reply, scores={}) for r in runs]
    fresh = ExperimentResult(spec, rescored, [])
    assert bundle(fresh, final=False, memo=memo) == bundle(ExperimentResult(spec, rescored, []), final=False)


def test_shuffled_runs_give_the_same_saved_table():
    spec, runs = _runs(4, 2)
    shuffled = list(runs)
    random.Random(3).shuffle(shuffled)
    memo = RedrawMemo()
    for n in range(1, len(shuffled) + 1):
        bundle(ExperimentResult(spec, shuffled[:n], ["s"], len(runs)), final=False, memo=memo)
    ordered = ExperimentResult(spec, runs, ["s"])
    assert bundle(ordered, memo=memo)[0] == bundle(ExperimentResult(spec, runs, ["s"]))[0]
