"""The experiment-run record format: its key, version and schema, how a result becomes one, how one is checked. Pure.

It lives in the metadata of the experiment's output under ``"elk_jupyter_experiment"``, beside
(never inside) the turn records' ``"elk_jupyter"`` key, so the turn reader never sees it. Each
run keeps its request and its reply in the turn record's reply shape (``turn.REPLY_SCHEMA``),
so a saved notebook replays every run, judges included, with no cache and no network. Turning a
valid record back into an ``ExperimentResult`` is ``experiments.results.result_of`` (records sit
below experiments: this module knows a result only by its attributes).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from elk_jupyter.gateway.dialects import NAMES
from elk_jupyter.records.metadata import records_under
from elk_jupyter.records.schema import NUMBER, DictOf, ListOf, Shape, check, not_json, too_deep
from elk_jupyter.records.turn import REPLY_OPTIONAL, REPLY_SCHEMA
from elk_jupyter.version import __version__

EXPERIMENT_KEY = "elk_jupyter_experiment"
EXPERIMENT_VERSION = 1
REPLY = Shape(REPLY_SCHEMA, REPLY_OPTIONAL)
SCORE = Shape({"value": NUMBER, "passed": bool}, {"reason": str})
JUDGE = Shape({"key": str, "request": dict, "reply": REPLY}, {"replayed": bool, "cost": NUMBER})
RUN = Shape(
    {
        "key": str,
        "case": int,
        "template": int,
        "model": str,
        "params": dict,
        "repeat": int,
        "request": dict,
        "reply": REPLY,
        "scores": DictOf(SCORE),
        "judges": ListOf(JUDGE),
    },
    {"host": str, "replayed": bool, "cost": NUMBER, "sent": bool},
)
SPEC = Shape(
    {
        "id": str,
        "name": str,
        "templates": ListOf(str),
        "cases": ListOf(dict),
        "models": ListOf(str),
        "grid": DictOf(list),
        "repeats": int,
        "endpoint": str,
    },
    {"system": str},
)
# The record's own keys but the experiment (checked first, on its own, so its problems come first).
_REST = Shape({"package": str, "runs": ListOf(RUN)}, {"scorers": ListOf(str), "total": int})


def record_of(result) -> dict:
    """The versioned record of an ``experiments.results.ExperimentResult`` (read by its attributes)."""
    return {
        "version": EXPERIMENT_VERSION,
        "package": __version__,
        "experiment": {"id": result.spec.id, **result.spec.to_dict()},
        "scorers": list(result.scorer_names),
        "total": result.total,
        "runs": [_run_dict(r) for r in result.runs],
    }


def _run_dict(run) -> dict:
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
        **({} if run.sent else {"sent": False}),  # written only for a run that never left
    }


def validate(record: object) -> list[str]:
    """Every way ``record`` departs from the schema (empty when valid)."""
    if not isinstance(record, Mapping):
        return ["the experiment record is not an object"]
    deep = too_deep(record)
    if deep:
        return [deep]  # one line, before any check walks it
    problems = []
    if record.get("version") != EXPERIMENT_VERSION:
        problems.append(f"version is {record.get('version')!r}, expected {EXPERIMENT_VERSION}")
    spec = record.get("experiment")
    if not isinstance(spec, Mapping):
        return [*problems, "experiment is missing"]
    problems += check(spec, SPEC, "experiment")
    runs = record.get("runs")
    if not isinstance(runs, list):
        return [*problems, "runs should be a list"]
    problems += check({k: v for k, v in record.items() if k != "experiment"}, _REST, "")
    if spec.get("endpoint") not in NAMES:
        problems.append(f"experiment.endpoint is {spec.get('endpoint')!r}")
    for number, run in enumerate(runs):
        where = f"runs[{number}]"
        if not isinstance(run, Mapping):
            continue  # named by the shape check
        if isinstance(run.get("case"), int) and not 0 <= run["case"] < len(spec.get("cases") or ()):
            problems.append(f"{where}.case is out of range")
        if isinstance(run.get("template"), int) and not 0 <= run["template"] < len(spec.get("templates") or ()):
            problems.append(f"{where}.template is out of range")
    return problems + not_json(record)


def iter_experiments(nb: Mapping) -> Iterator[object]:
    """Each experiment record of a notebook (as JSON), in cell order."""
    return records_under(nb, EXPERIMENT_KEY)


def replies(record: Mapping) -> Iterator[tuple[str, dict]]:
    """(run key, reply) of every successful run and judge in a valid record: what replay can serve."""
    for run in record.get("runs") or ():
        for item in (run, *(run.get("judges") or ())):
            reply = item.get("reply") or {}
            if isinstance(item.get("key"), str) and reply.get("status") in ("completed", "incomplete"):
                yield item["key"], reply
