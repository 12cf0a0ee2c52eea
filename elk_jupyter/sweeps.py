"""Sweeps: one prompt over models × a parameter grid × repeats, run concurrently, as a table.

Every run goes through the replay cache (keyed by its request and repeat number), so a sweep that
ran once replays offline. A price table turns usage into cost; a budget refuses to start a sweep
whose worst-case estimate exceeds it.
"""

from __future__ import annotations

import html
import itertools
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from . import endpoints, session
from .cache import Replays
from .errors import ConfigError, ElkError
from .reply import Reply


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


def estimate_cost(runs: list[Run], prompt_tokens: int, prices: dict, completion_tokens: int) -> float:
    """Worst-case USD: each run's prompt plus its completion cap, at the model's price per 1M tokens."""
    from .experiments.budget import completion_cap  # the experiments' rule (importing them loads requests)

    total = 0.0
    for run in runs:
        price = prices.get(run.model)
        if price is None:
            raise ConfigError(f"no price for model {run.model!r} in the price table: add it or drop the budget")
        # every cap field and n count: reading max_tokens alone underestimated a bill 1600x (issue 16)
        cap = completion_cap({"model": run.model, **run.params}, completion_tokens)
        total += (prompt_tokens * price["input"] + cap * price["output"]) / 1_000_000
    return total


def cost(usage: dict | None, price: dict | None) -> float | None:
    if not usage or not price:
        return None
    numbers = session.usage_numbers(usage)
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
    ``replay``: "auto" reuses recorded runs, "off" always goes live, "only" never touches the network
    (default: ``$ELK_REPLAY``, else "auto").
    """
    import os

    from . import settings
    from .client import Client

    replay = replay or settings.replay_mode(os.environ.get("ELK_REPLAY") or "auto")
    base = client or Client()
    models = list(models or [base.model])
    runs = plan(models, grid, repeats)
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
    if budget is not None:
        estimate = estimate_cost(runs, session.estimate_tokens(str(messages)), prices or {}, completion_estimate)
        if estimate > budget:
            raise ConfigError(
                f"this sweep could cost up to ${estimate:.4f} ({len(runs)} runs), over the budget of ${budget:.4f}"
            )
    replays = replays or Replays()
    local = threading.local()
    done = [0]
    lock = threading.Lock()

    def one(run: Run) -> dict:
        if endpoint == endpoints.CHAT:
            body = endpoints.chat_body(messages, run.model, True, **run.params)
        else:
            body = endpoints.responses_body(
                prompt if isinstance(prompt, str) else messages, run.model, True, **run.params
            )
        key = session.request_key({**body, "elk_repeat": run.repeat}, base.cache_scope())
        recorded = replays.lookup(key) if replay != "off" else None
        if recorded is None and replay == "only":
            raise ElkError(f"replay is 'only' and run {run} was never recorded")
        if recorded is not None:
            reply = Reply.from_dict(recorded, body)
        else:
            if not hasattr(local, "client"):  # a requests session per thread
                local.client = Client(
                    base._api_key,
                    base_url=base.base_url,
                    model=base.model,
                    api_key_env=base.api_key_env,
                    timeout=base.timeout,
                    max_retries=base.max_retries,
                )
            try:
                reply = local.client.send(endpoint, body)
                replays.store(key, base.host, body, reply.to_dict())
            except ElkError as err:
                reply = getattr(err, "reply", None) or Reply(endpoint, body)
                if reply.status == "streaming":
                    reply.fail("error", err.message)
        with lock:
            done[0] += 1
            if progress is not None:
                progress.write(f"\rsweep: {done[0]}/{len(runs)} runs")
                progress.flush()
        numbers = session.usage_numbers(reply.usage)
        return {
            "model": run.model,
            "params": run.params,
            "repeat": run.repeat,
            "status": reply.status,
            "finish": reply.finish_reason or (reply.incomplete_details or {}).get("reason"),
            "prompt": numbers["prompt"],
            "completion": numbers["completion"],
            "latency": reply.total,
            "cost": cost(reply.usage, (prices or {}).get(run.model)),
            "replayed": recorded is not None,
            "text": reply.text,
            "error": reply.error,
            "model_returned": reply.model,
        }

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        rows = list(pool.map(one, runs))
    if progress is not None:
        progress.write("\n")
    return SweepTable(rows)
