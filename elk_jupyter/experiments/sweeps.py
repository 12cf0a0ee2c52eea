"""Sweeps: one prompt over models × a parameter grid × repeats, as a table: a thin ``experiment()``.

A sweep is an experiment with one case and no scorers, so it runs on the experiments' engine and
the one run path (replay, resume, budget, backoff), refuses what an experiment refuses (a grid over
``model`` or ``stream``) in one line, and, displayed, keeps every run's record in the output, so a
saved sweep replays from the .ipynb with ``ELK_REPLAY=only`` and a fresh cache. The table it
returns keeps the old shape: one row per run, rendered as HTML (model text escaped).
"""

from __future__ import annotations

import html
import sys

from elk_jupyter.errors import ConfigError, ElkError
from elk_jupyter.experiments.results import ExperimentResult, RunResult
from elk_jupyter.experiments.view import one_line


class SweepTable:
    """The comparison table: one row per run, rendered as HTML in a notebook (model text escaped)."""

    COLUMNS = (
        "model",
        "params",
        "repeat",
        "status",
        "finish",
        "prompt",
        "completion",
        "latency",
        "cost",
        "replayed",
        "text",
    )

    def __init__(self, result: ExperimentResult):
        self.result = result  # the experiment it ran: its records go with the displayed table
        self.rows = [_row(run) for run in result.runs]

    def to_records(self) -> list[dict]:
        return [dict(row) for row in self.rows]

    def _repr_mimebundle_(self, include=None, exclude=None):
        """The plain table, and every run's record in the output's metadata (the HTML table comes
        from ``_repr_html_``)."""
        from elk_jupyter.experiments.view import bundle

        return {"text/plain": repr(self)}, bundle(self.result)[1]

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{c}</th>" for c in self.COLUMNS)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(_cell(row.get(c)))}</td>" for c in self.COLUMNS) + "</tr>"
            for row in self.rows
        )
        return f"<table class='elk-sweep'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def __repr__(self) -> str:
        lines = [" | ".join(self.COLUMNS)]
        lines += [" | ".join(one_line(_cell(row.get(c)))[:40] for c in self.COLUMNS) for row in self.rows]
        return "\n".join(lines)


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def sweep(
    prompt,
    models=None,
    grid: dict | None = None,
    repeats: int = 1,
    endpoint: str = "chat",
    *,
    concurrency: int = 4,
    client=None,
    prices: dict | None = None,
    budget: float | None = None,
    completion_estimate: int = 512,
    replay: str | None = None,
    replays=None,
    progress=sys.stdout,
    state=None,
) -> SweepTable:
    """Run ``prompt`` (a string, or chat messages: a system message and one user message) over
    models × grid × repeats; return the table.

    ``prices`` maps model -> {"input": USD per 1M tokens, "output": USD per 1M tokens}.
    ``replay``: "auto" reuses recorded runs, "off" always goes live, "only" never touches the
    network; by default ``$ELK_REPLAY`` (else "auto"), as for the magics. ``replays``: a
    ``Replays`` to run on (the kernel's by default); ``state``: the kernel state (``experiment``'s).
    """
    from elk_jupyter.experiments import experiment

    template, system = _template(prompt)
    result = experiment(
        template,
        None,
        models,
        grid,
        repeats,
        endpoint,
        system=system,
        name="sweep",
        concurrency=concurrency,
        prices=prices,
        budget=budget,
        completion_estimate=completion_estimate,
        replay=replay,
        client=client,
        progress=_progress(progress),
        state=_state(state, replays),
    )
    unrecorded = [run for run in result.runs if "never recorded" in (run.error or "")]
    if unrecorded:
        raise ElkError(f"replay is 'only' and {len(unrecorded)} of {result.total} runs were never recorded")
    return SweepTable(result)


def _state(state, replays):
    """The kernel state to run on; an old caller's own ``Replays`` gets a state around it."""
    if replays is None or state is not None:
        return state
    from elk_jupyter.conversation.kernel import KernelState

    state = KernelState()
    state.replays = replays
    return state


def _template(prompt) -> tuple[str, str | None]:
    """(the template, the system prompt): the prompt is text, not a template, so ``$`` stays literal."""
    if isinstance(prompt, str):
        return prompt.replace("$", "$$"), None
    messages = list(prompt) if isinstance(prompt, (list, tuple)) else None
    roles = [m.get("role") for m in messages or () if isinstance(m, dict)]
    if messages and len(roles) == len(messages) and roles[-1] == "user" and set(roles[:-1]) <= {"system"}:
        system = "\n\n".join(str(m.get("content") or "") for m in messages[:-1]) or None
        content = messages[-1].get("content")
        if isinstance(content, str):
            return content.replace("$", "$$"), system
    raise ConfigError("sweep() takes a prompt string, or chat messages: system messages then one user message")


def _progress(out):
    if not out:  # None, or False as ``experiment(progress=False)`` takes it: no progress lines
        return False

    def write(result: ExperimentResult) -> None:
        out.write(f"\rsweep: {len(result.runs)}/{result.total} runs" + ("" if result.missing else "\n"))
        out.flush()

    return write


def _row(run: RunResult) -> dict:
    reply = run.reply
    numbers = run.usage.numbers()
    return {
        "model": run.column.model,
        "params": run.column.param_dict,
        "repeat": run.repeat,
        "status": reply.get("status"),
        "finish": reply.get("finish_reason") or (reply.get("incomplete_details") or {}).get("reason"),
        "prompt": numbers["prompt"],
        "completion": numbers["completion"],
        "latency": run.latency,
        "cost": run.cost,
        "replayed": run.replayed,
        "text": run.text,
        "error": reply.get("error"),
        "model_returned": reply.get("model"),
    }
