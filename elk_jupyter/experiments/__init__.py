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
from elk_jupyter.experiments.runner import ExperimentFailed, ExperimentInterrupted, Options, Runner
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
    "ExperimentFailed",
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


def kernel_state(namespace=None):
    """The state of the kernel this runs in: the magics' when the extension is loaded in this IPython
    (so ``experiment()``, ``%%experiment`` and ``%%chat`` share one replay index and finished runs),
    else a new one whose notebook is found from ``namespace`` (outside IPython a call has its own
    state; the SQLite cache still replays what an earlier call stored)."""
    import builtins

    from elk_jupyter.conversation.kernel import KernelState
    from elk_jupyter.records import notebooks

    shell = getattr(builtins, "get_ipython", lambda: None)()  # set by IPython while it runs code
    magics = getattr(getattr(shell, "magics_manager", None), "registry", {}).get("ElkMagics")
    state = getattr(magics, "state", None)
    if isinstance(state, KernelState):
        return state
    scope = namespace if namespace is not None else vars(sys.modules["__main__"])
    return KernelState(lambda: notebooks.current_notebook(scope))


def experiment(
    prompt,
    cases=None,
    models=None,
    grid: dict | None = None,
    repeats: int = 1,
    endpoint: str = "chat",
    *,
    params: dict | None = None,
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
    state=None,
) -> ExperimentResult:
    """Run ``prompt`` (a template, or a list of them) over cases × models × grid × repeats.

    ``cases``: a list of dicts, a DataFrame, or a .csv/.jsonl path; ``$field`` / ``${expr}`` in the
    template take the case's fields. ``params``: fixed request fields (``{"reasoning.effort": "low"}``
    nests, as ``-p`` does). ``scorers``: Scorers or callables ``(output, case)``.
    ``prices``: model -> {"input": USD per 1M tokens, "output": ...}; with ``budget`` the worst
    case is checked before any request. ``replay``: "auto" (default, or $ELK_REPLAY), "off", "only".
    ``progress``: called with the partial result as runs finish (default: a line on stderr).
    ``state``: the kernel state to run on (default: the loaded magics', see ``kernel_state``).
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
    from elk_jupyter.experiments.budget import check_prices
    from elk_jupyter.experiments.scorers import check_fields
    from elk_jupyter.experiments.scorers import scorer as as_scorer
    from elk_jupyter.experiments.view import progress_line
    from elk_jupyter.gateway.client import Client

    specs.check_limits(kw["concurrency"], kw["budget"], kw["completion_estimate"])
    given = kw["scorers"]
    base = kw["client"] or Client()
    # a scorer's name quotes its argument (``contains("sk-…")``) and names a column of the record
    scorers = [as_scorer(s) for s in ([given] if callable(given) else given or ())]  # one scorer or several
    scorers = [dataclasses.replace(s, name=base.redact(s.name)) for s in scorers]
    grid = specs.with_params(grid, kw["params"])
    models = [base.model] if models is None else models  # [] is a mistake, not "the default model"
    spec = specs.build(prompt, cases, models, grid, repeats, endpoint, kw["system"], kw["name"])
    # Cases, templates and the system prompt are kept in the experiment's record: redacted as sent.
    cut, hidden = base.guard({"cases": spec.cases, "templates": spec.templates, "system": spec.system})
    spec = dataclasses.replace(spec, **cut) if hidden else spec
    check_fields(scorers, spec.cases)
    if kw["prices"] is not None:
        judged = [kw["judge_model"] or spec.models[0]] if any(s.judge for s in scorers) else []
        check_prices(kw["prices"], [*spec.models, *judged])
    mode = kw["replay"] or settings.replay_mode(os.environ.get("ELK_REPLAY") or "auto")
    settings.replay_mode(mode, "replay")
    state = kw["state"] if kw["state"] is not None else kernel_state(kw["namespace"])
    options = Options(
        concurrency=kw["concurrency"],
        prices=kw["prices"],
        budget=kw["budget"],
        completion_estimate=kw["completion_estimate"],
        replay=mode,
        retry_failed=kw["retry_failed"],
        judge_model=kw["judge_model"],
    )
    runner = Runner(spec, scorers, base, state, options, kw["namespace"])
    progress = kw["progress"]
    if progress is None:

        def progress(result):
            sys.stderr.write(progress_line(result) + ("\n" if not result.missing else ""))
            sys.stderr.flush()

    return runner.run(progress or None)
