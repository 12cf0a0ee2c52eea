"""The experiment-run record kept in a saved notebook, its version and validation. Pure.

It lives in the metadata of the experiment's output under ``"elk_jupyter_experiment"``, beside
(never inside) the turn records' ``"elk_jupyter"`` key, so the turn reader never sees it. Each
run keeps its request and its reply in the turn record's reply shape (``record.REPLY_SCHEMA``),
so a saved notebook replays every run, judges included, with no cache and no network.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from elk_jupyter.experiments.results import ExperimentResult, RunResult, score_from
from elk_jupyter.experiments.spec import Column, Spec, check_grid
from elk_jupyter.gateway.frames import scrub
from elk_jupyter.records.turn import REPLY_OPTIONAL, REPLY_SCHEMA, _check, _non_finite
from elk_jupyter.version import __version__

EXPERIMENT_KEY = "elk_jupyter_experiment"
EXPERIMENT_VERSION = 1
RUN_SCHEMA = {
    "key": str,
    "case": int,
    "template": int,
    "model": str,
    "params": dict,
    "repeat": int,
    "request": dict,
    "reply": dict,
    "scores": dict,
    "judges": list,
}
RUN_OPTIONAL = {"host": str, "replayed": bool, "cost": (int, float)}
SPEC_SCHEMA = {
    "id": str,
    "name": str,
    "templates": list,
    "cases": list,
    "models": list,
    "grid": dict,
    "repeats": int,
    "endpoint": str,
}


def record_of(result: ExperimentResult) -> dict:
    return {
        "version": EXPERIMENT_VERSION,
        "package": __version__,
        "experiment": {"id": result.spec.id, **result.spec.to_dict()},
        "scorers": list(result.scorer_names),
        "total": result.total,
        "runs": [_run_dict(r) for r in result.runs],
    }


def _run_dict(run: RunResult) -> dict:
    return {
        "key": run.key,
        "case": run.case,
        "template": run.column.template,
        "model": run.column.model,
        "params": run.column.param_dict,
        "repeat": run.repeat,
        "request": run.request,
        "reply": run.reply,
        "host": run.host,
        "replayed": run.replayed,
        "scores": {name: score.to_dict() for name, score in run.scores.items()},
        "judges": [dict(j) for j in run.judges],
        "cost": run.cost,
    }


def validate(record: object) -> list[str]:
    """Every way ``record`` departs from the schema (empty when valid)."""
    if not isinstance(record, Mapping):
        return ["the experiment record is not an object"]
    problems = []
    if record.get("version") != EXPERIMENT_VERSION:
        problems.append(f"version is {record.get('version')!r}, expected {EXPERIMENT_VERSION}")
    spec = record.get("experiment")
    if not isinstance(spec, Mapping):
        return [*problems, "experiment is missing"]
    problems += _check(spec, SPEC_SCHEMA, {"system": str}, "experiment")
    runs = record.get("runs")
    if not isinstance(runs, list):
        return [*problems, "runs should be a list"]
    for number, run in enumerate(runs):
        where = f"runs[{number}]"
        if not isinstance(run, Mapping):
            problems.append(f"{where} is not an object")
            continue
        problems += _check(run, RUN_SCHEMA, RUN_OPTIONAL, where)
        if isinstance(run.get("reply"), Mapping):
            problems += _check(run["reply"], REPLY_SCHEMA, REPLY_OPTIONAL, f"{where}.reply")
        for j, judge in enumerate(run.get("judges") or ()):
            if not isinstance(judge, Mapping) or not isinstance(judge.get("reply"), Mapping):
                problems.append(f"{where}.judges[{j}] should hold a request and a reply")
        if isinstance(run.get("case"), int) and not 0 <= run["case"] < len(spec.get("cases") or ()):
            problems.append(f"{where}.case is out of range")
        if isinstance(run.get("template"), int) and not 0 <= run["template"] < len(spec.get("templates") or ()):
            problems.append(f"{where}.template is out of range")
    return problems + [f"{w} is {v} (not JSON)" for w, v in _non_finite(record, "record")]


def iter_experiments(nb: Mapping) -> Iterator[dict]:
    """Each experiment record of a notebook (as JSON), in cell order; hand-edits that are not
    shaped like a notebook are skipped."""
    cells = nb.get("cells")
    for cell in cells if isinstance(cells, list) else ():
        outputs = cell.get("outputs") if isinstance(cell, Mapping) else None
        for output in outputs if isinstance(outputs, list) else ():
            metadata = output.get("metadata") if isinstance(output, Mapping) else None
            found = metadata.get(EXPERIMENT_KEY) if isinstance(metadata, Mapping) else None
            if found is not None:
                yield scrub(found)


def replies(record: Mapping) -> Iterator[tuple[str, dict]]:
    """(run key, reply) of every successful run and judge in a valid record: what replay can serve."""
    for run in record.get("runs") or ():
        for item in (run, *(run.get("judges") or ())):
            reply = item.get("reply") or {}
            if isinstance(item.get("key"), str) and reply.get("status") in ("completed", "incomplete"):
                yield item["key"], reply


def result_of(record: Mapping) -> ExperimentResult:
    """The ExperimentResult a valid record holds (for the CLI and for comparisons)."""
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
