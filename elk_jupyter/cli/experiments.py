"""``elk-jupyter experiments``: list a notebook's experiments, print one's summary, diff two.

Reads the saved records only (no kernel, no network). Experiments are named by their name or a
prefix of their id; ``diff A B`` pairs runs by case (and column and repeat) and prints changed
outputs and score deltas. ``B`` may come from another notebook (``--other``).
"""

from __future__ import annotations

from elk_jupyter.errors import ElkError
from elk_jupyter.experiments.comparison import compare_runs
from elk_jupyter.experiments.results import ExperimentResult, result_of
from elk_jupyter.experiments.view import AGGREGATE_ROWS, one_line, plain_text, summary_line
from elk_jupyter.records import notebooks
from elk_jupyter.records.experiment import iter_experiments, validate


def add_parser(commands) -> None:
    parser = commands.add_parser("experiments", help="the experiments saved in a notebook: list, show, diff")
    actions = parser.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="every experiment with its summary")
    listing.add_argument("notebook")
    show = actions.add_parser("show", help="one experiment's matrix and aggregates as text")
    show.add_argument("notebook")
    show.add_argument("name", help="name or id prefix")
    diff = actions.add_parser("diff", help="changed outputs and score deltas between two experiments")
    diff.add_argument("notebook")
    diff.add_argument("first", help="name or id prefix")
    diff.add_argument("second", help="name or id prefix")
    diff.add_argument("--other", metavar="NOTEBOOK", help="find the second experiment in this notebook")


def load(path: str) -> list[ExperimentResult]:
    found, problems = results_in(path)
    if not found:
        raise ElkError(f"{path}: no valid experiment records" + (f" ({problems[0]})" if problems else ""))
    return found


def pick(results: list[ExperimentResult], ref: str) -> ExperimentResult:
    """The last experiment named ``ref`` (a re-run cell keeps the newest), or whose id starts with it."""
    matches = [r for r in results if r.spec.name == ref] or [r for r in results if r.spec.id.startswith(ref)]
    if not matches:
        known = ", ".join(sorted({r.spec.name for r in results}))
        raise ElkError(f"no experiment {ref!r} (the notebook has: {known})")
    return matches[-1]


def run(args) -> None:
    results = load(args.notebook)
    if args.action == "list":
        for result in results:
            spec = result.spec
            print(
                f"{spec.id[:8]}  {one_line(spec.name):<24} {len(spec.cases)} cases × {len(spec.columns)} columns × "
                f"{spec.repeats} repeats · {summary_line(result)}"
            )
    elif args.action == "show":
        print(plain_text(pick(results, args.name)))
    else:
        second = pick(load(args.other) if args.other else results, args.second)
        print("\n".join(diff(pick(results, args.first), second)))


def diff(first: ExperimentResult, second: ExperimentResult) -> list[str]:
    """Per column present in both: aggregate deltas; then each run whose output or score changed."""
    if list(first.spec.cases) != list(second.spec.cases):
        raise ElkError("the two experiments do not have the same cases: nothing to compare run by run")
    lines = [f"{one_line(first.spec.name)} -> {one_line(second.spec.name)}"]
    columns = [c for c in first.spec.columns if c in set(second.spec.columns)]
    if not columns:  # different models or params: pair the columns by position
        columns = list(zip(first.spec.columns, second.spec.columns, strict=False))
    else:
        columns = [(c, c) for c in columns]
    first_aggs, second_aggs = first.aggregates(), second.aggregates()
    for old, new in columns:
        label = old.label(len(first.spec.templates))
        if new != old:
            label += f" -> {new.label(len(second.spec.templates))}"
        figures = [f"{name} {form(first_aggs[old])} -> {form(second_aggs[new])}" for name, form in AGGREGATE_ROWS[:2]]
        lines.append(f"[{label}] " + " · ".join(figures))
        paired = compare_runs("before", "after", first.column_runs()[old], second.column_runs()[new])
        lines += [f"  {test.text('before', 'after')}" for test in (paired.passing, paired.scoring) if test is not None]
        for case in range(len(first.spec.cases)):
            before, after = first.cell(case, old), second.cell(case, new)
            for a, b in zip(before, after, strict=False):
                changed = a.text != b.text
                delta = (b.score or 0.0) - (a.score or 0.0) if a.score is not None or b.score is not None else 0.0
                if changed or delta:
                    lines.append(
                        f"  case {case} repeat {a.repeat}: score {delta:+.2f}"
                        + (f"  {_short(a.text)!r} -> {_short(b.text)!r}" if changed else "  (same output)")
                    )
    return lines


def _short(text: str, width: int = 50) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def results_in(path: str) -> tuple[list[ExperimentResult], list[str]]:
    """The notebook's valid experiment records as ExperimentResults, and what is wrong with each
    invalid one: skipped (it cannot be trusted), but said, so no total silently drops it."""
    found, problems = [], []
    for number, data in enumerate(iter_experiments(notebooks.read_json(path)), 1):
        issues = validate(data)
        if issues:
            problems.append(f"experiment record {number} is invalid: {'; '.join(issues[:2])}")
        else:
            found.append(result_of(data))
    return found, problems


def print_totals(experiments: list[ExperimentResult], turn_totals: dict, skipped: list[str] = ()) -> None:
    """``elk-jupyter inspect``'s experiment lines: each experiment's totals, then the notebook's."""
    from elk_jupyter.experiments.totals import totals
    from elk_jupyter.gateway.usage import Usage

    for problem in skipped:
        print(f"note: {problem} (skipped, not counted)")
    if not experiments:
        return
    print(f"\n{len(experiments)} experiments")
    for result in experiments:
        name = one_line(result.spec.name)
        print(f"  {name if len(name) <= 24 else name[:23] + '…':<24} {totals([result.runs]).describe()}")
    runs = totals(result.runs for result in experiments)
    print(f"experiment runs: {runs.describe()}")
    counts = {k: turn_totals.get(k, 0) + runs.billed.get(k, 0) for k in runs.billed}
    print(f"notebook (live turns + live experiment runs): {Usage(**counts).describe(total=True)}")
