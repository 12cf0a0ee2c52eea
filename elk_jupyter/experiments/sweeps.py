"""Sweeps: one prompt over models × a parameter grid × repeats, run concurrently, as a table.

Every run goes through the replay cache (keyed by its request and repeat number), so a sweep that
ran once replays offline. A price table turns usage into cost; a budget refuses to start a sweep
whose worst-case estimate exceeds it.
"""

from __future__ import annotations

import html
import itertools
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from elk_jupyter.conversation import session, settings
from elk_jupyter.errors import ConfigError, ElkError
from elk_jupyter.gateway.dialects import dialect
from elk_jupyter.gateway.reply import Reply
from elk_jupyter.gateway.usage import Usage
from elk_jupyter.records.cache import Replays


@dataclass(frozen=True)
class Run:
    model: str
    params: dict
    repeat: int


def plan(models, grid: dict | None, repeats: int) -> list[Run]:
    grid = grid or {}
    names = sorted(grid)
    combos = [dict(zip(names, values, strict=True)) for values in itertools.product(*(grid[n] for n in names))]
    return [Run(m, combo, r) for m in models for combo in combos for r in range(repeats)]


def estimate_cost(runs: list[Run], prompt_tokens: int, prices: dict, completion_tokens: int, endpoint="chat") -> float:
    """Worst-case USD: each run's prompt plus its completion cap, at the model's price per 1M tokens."""
    from elk_jupyter.experiments.budget import completion_cap  # the experiments' rule (importing them loads requests)

    speaker = dialect(endpoint)
    total = 0.0
    for run in runs:
        price = prices.get(run.model)
        if price is None:
            raise ConfigError(f"no price for model {run.model!r} in the price table: add it or drop the budget")
        # the cap times n: ignoring n underestimated a bill 1600x (issue 16)
        cap = completion_cap(speaker, run.params, completion_tokens)
        total += (prompt_tokens * price["input"] + cap * price["output"]) / 1_000_000
    return total


def cost(usage: dict | None, price: dict | None) -> float | None:
    if not usage or not price:
        return None
    numbers = Usage.of(usage).numbers()
    return (numbers["prompt"] * price["input"] + numbers["completion"] * price["output"]) / 1_000_000


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

    def __init__(self, rows: list[dict]):
        self.rows = rows

    def to_records(self) -> list[dict]:
        return [dict(row) for row in self.rows]

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{c}</th>" for c in self.COLUMNS)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(_cell(row.get(c)))}</td>" for c in self.COLUMNS) + "</tr>"
            for row in self.rows
        )
        return f"<table class='elk-sweep'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def __repr__(self) -> str:
        lines = [" | ".join(self.COLUMNS)]
        lines += [" | ".join(_cell(row.get(c))[:40] for c in self.COLUMNS) for row in self.rows]
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
    replays: Replays | None = None,
    progress=sys.stdout,
) -> SweepTable:
    """Run ``prompt`` (a string, or chat messages) over models × grid × repeats; return the table.

    ``prices`` maps model -> {"input": USD per 1M tokens, "output": USD per 1M tokens}.
    ``replay``: "auto" reuses recorded runs, "off" always goes live, "only" never touches the
    network; by default ``$ELK_REPLAY`` (else "auto"), as for the magics.
    """
    from elk_jupyter.gateway.client import Client

    base = client or Client()
    runs = plan(list(models or [base.model]), grid, repeats)
    if budget is not None:
        _check_budget(runs, prompt, prices or {}, completion_estimate, budget, endpoint)
    mode = settings.replay_mode(os.environ.get("ELK_REPLAY") or "auto") if replay is None else replay
    runner = _Runs(prompt, dialect(endpoint), base, settings.replay_mode(mode, "replay"), replays or Replays())
    runner.prices, runner.progress, runner.total = prices or {}, progress, len(runs)
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        rows = list(pool.map(runner.one, runs))
    if progress is not None:
        progress.write("\n")
    return SweepTable(rows)


def _check_budget(runs, prompt, prices: dict, completion_estimate: int, budget: float, endpoint: str) -> None:
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
    estimate = estimate_cost(runs, session.estimate_tokens(str(messages)), prices, completion_estimate, endpoint)
    if estimate > budget:
        raise ConfigError(
            f"this sweep could cost up to ${estimate:.4f} ({len(runs)} runs), over the budget of ${budget:.4f}"
        )


class _Runs:
    """The runs of one sweep, on a pool of threads: each replayed or sent, then one table row."""

    def __init__(self, prompt, speaker, base, mode: str, replays: Replays):
        self.prompt, self.speaker, self.base, self.mode, self.replays = prompt, speaker, base, mode, replays
        self.prices: dict = {}
        self.progress = None
        self.total = 0
        self._local = threading.local()
        self._done = 0
        self._lock = threading.Lock()

    def one(self, run: Run) -> dict:
        body = self.speaker.wire_body(self.speaker.prompt_input(self.prompt), run.model, True, **run.params)
        body = self.base.guard(body)[0]  # the one redaction rule, before the body is sent or cached
        # The repeat number is part of the identity: repeats are separate samples, each replayable.
        key = session.request_key({**body, "elk_repeat": run.repeat}, self.base.cache_scope())
        decision = self.replays.decide(self.mode, key)
        if decision.refused:
            raise ElkError(f"replay is 'only' and run {run} was never recorded")
        if decision.recorded is not None:
            reply = Reply.from_dict(decision.recorded, body)
        else:
            from elk_jupyter.gateway.client import send_keeping_partial

            reply, error = send_keeping_partial(self._client(), self.speaker.name, body)
            if error is None:
                self.replays.store(key, self.base.host, body, reply.to_dict())
        self._count()
        return _row(run, reply, decision.recorded is not None, self.prices.get(run.model))

    def _client(self):
        if not hasattr(self._local, "client"):  # a requests session per thread
            self._local.client = self.base.copy()
        return self._local.client

    def _count(self) -> None:
        with self._lock:
            self._done += 1
            if self.progress is not None:
                self.progress.write(f"\rsweep: {self._done}/{self.total} runs")
                self.progress.flush()


def _row(run: Run, reply: Reply, replayed: bool, price: dict | None) -> dict:
    numbers = reply.tokens.numbers()
    return {
        "model": run.model,
        "params": run.params,
        "repeat": run.repeat,
        "status": reply.status,
        "finish": reply.finish_reason or (reply.incomplete_details or {}).get("reason"),
        "prompt": numbers["prompt"],
        "completion": numbers["completion"],
        "latency": reply.total,
        "cost": cost(reply.usage, price),
        "replayed": replayed,
        "text": reply.text,
        "error": reply.error,
        "model_returned": reply.model,
    }
