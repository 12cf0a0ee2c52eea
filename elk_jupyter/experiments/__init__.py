"""Prompt experiments: templates × cases × models × a parameter grid × repeats, scored, kept in the .ipynb.

``experiment(...)`` runs one and returns an ``ExperimentResult``; displayed, it shows the matrix
and saves every run's record in the output's metadata, so the saved notebook replays it with
``ELK_REPLAY=only`` and no network. ``%%experiment`` (in the magics) is the same with the cell as
the template. Scorers live in ``elk_jupyter.experiments.scorers`` (also re-exported here).
"""

from __future__ import annotations

import dataclasses
import os
import sys

from elk_jupyter.errors import ElkError, detached, unexpected
from elk_jupyter.experiments.results import ExperimentResult, RunResult
from elk_jupyter.experiments.runner import ExperimentInterrupted, Options, Runner
from elk_jupyter.experiments.scorers import (
    Score,
    Scorer,
    contains,
    cost_below,
    equals,
    icontains,
    is_json,
    json_schema,
    latency_below,
    regex,
    rubric,
    scorer,
)

__all__ = [
    "ExperimentInterrupted",
    "ExperimentResult",
    "RunResult",
    "Score",
    "Scorer",
    "contains",
    "cost_below",
    "equals",
    "experiment",
    "icontains",
    "is_json",
    "json_schema",
    "latency_below",
    "regex",
    "rubric",
    "scorer",
]

_REPLAYS = None  # one per kernel: this kernel's runs and the notebook's records, then the cache
_INDEXED: set[str] = set()  # notebooks whose experiment records are already in _REPLAYS


def replays():
    global _REPLAYS
    if _REPLAYS is None:
        from elk_jupyter.records.cache import Replays

        _REPLAYS = Replays()
    return _REPLAYS


def index_notebook(store, namespace=None) -> None:
    """Make the experiment records of the notebook this kernel serves replayable (once per kernel)."""
    from elk_jupyter.experiments.records import iter_experiments, replies, validate
    from elk_jupyter.records import notebooks

    path = notebooks.current_notebook(namespace if namespace is not None else vars(sys.modules["__main__"]))
    if path is None or str(path) in _INDEXED:
        return
    _INDEXED.add(str(path))
    try:
        nb = notebooks.read_json(path)
    except ElkError:
        return  # an unreadable notebook only means nothing to replay from it
    for found in iter_experiments(nb):
        if not validate(found):
            for key, reply in replies(found):
                store.remember(key, reply)


def experiment(
    prompt,
    cases=None,
    models=None,
    grid: dict | None = None,
    repeats: int = 1,
    endpoint: str = "chat",
    *,
    scorers=(),
    system: str | None = None,
    name: str | None = None,
    judge_model: str | None = None,
    concurrency: int = 4,
    prices: dict | None = None,
    budget: float | None = None,
    completion_estimate: int = 1024,
    replay: str | None = None,
    retry_failed: bool = False,
    client=None,
    namespace=None,
    progress=None,
) -> ExperimentResult:
    """Run ``prompt`` (a template, or a list of them) over cases × models × grid × repeats.

    ``cases``: a list of dicts, a DataFrame, or a .csv/.jsonl path; ``$field`` / ``${expr}`` in the
    template take the case's fields. ``scorers``: Scorers or callables ``(output, case)``.
    ``prices``: model -> {"input": USD per 1M tokens, "output": ...}; with ``budget`` the worst
    case is checked before any request. ``replay``: "auto" (default, or $ELK_REPLAY), "off", "only".
    ``progress``: called with the partial result as runs finish (default: a line on stderr).
    """
    try:
        return _experiment(**locals())
    except ElkError as err:
        failure = detached(err)
    except Exception as err:  # a bug, here or in a library: still one line, with no frames holding the key
        failure = unexpected(err, os.environ.get("ELK_API_KEY"))
    raise failure


def _experiment(prompt, cases, models, grid, repeats, endpoint, **kw) -> ExperimentResult:
    from elk_jupyter.conversation import settings
    from elk_jupyter.experiments import spec as specs
    from elk_jupyter.experiments.scorers import scorer as as_scorer
    from elk_jupyter.experiments.view import progress_line
    from elk_jupyter.gateway.client import Client

    base = kw["client"] or Client()
    spec = specs.build(prompt, cases, models or [base.model], grid, repeats, endpoint, kw["system"], kw["name"])
    # Cases, templates and the system prompt are kept in the experiment's record: redacted as sent.
    cut, hidden = base.guard({"cases": spec.cases, "templates": spec.templates, "system": spec.system})
    spec = dataclasses.replace(spec, **cut) if hidden else spec
    mode = kw["replay"] or settings.replay_mode(os.environ.get("ELK_REPLAY") or "auto")
    settings.replay_mode(mode, "replay")
    store = replays()
    if mode != "off":
        index_notebook(store)
    options = Options(
        concurrency=kw["concurrency"],
        prices=kw["prices"],
        budget=kw["budget"],
        completion_estimate=kw["completion_estimate"],
        replay=mode,
        retry_failed=kw["retry_failed"],
        judge_model=kw["judge_model"],
    )
    scorers = [as_scorer(s) for s in kw["scorers"]]
    runner = Runner(spec, scorers, base, store, options, kw["namespace"])
    progress = kw["progress"]
    if progress is None:

        def progress(result):
            sys.stderr.write(progress_line(result) + ("\n" if not result.missing else ""))
            sys.stderr.flush()

    return runner.run(progress or None)
