"""The worst-case cost of the runs still to send, from their real caps, checked before any request. Pure.

Each run costs at most its prompt plus ``cap × n`` completion tokens, where the cap is the body's
own cap field as its endpoint's dialect reads it (``max_tokens`` / ``max_completion_tokens`` on
chat, ``max_output_tokens`` on Responses), or an assumed figure when it sets none; each
model-graded scorer adds one judge call. The old sweep estimate read only ``max_tokens`` and
ignored ``n``: estimated at $0.005, billed $8 against a $0.50 budget (issue 16).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from elk_jupyter.conversation.session import estimate_tokens
from elk_jupyter.errors import ConfigError

JUDGE_PROMPT_OVERHEAD = 120  # tokens of the judge's own instructions around the case and the answer


def completion_cap(speaker, params: Mapping, assumed: int) -> int:
    """The most one request may generate: the endpoint's own cap field (``speaker`` is its
    dialect), or ``assumed`` when it sets none, times the ``n`` choices it asks for."""
    cap = speaker.completion_cap(params)
    cap = cap if isinstance(cap, int) and not isinstance(cap, bool) and cap > 0 else assumed
    n = params.get("n")
    return cap * (n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 1)


def check_prices(prices, models) -> None:
    """A price table, checked before any request: each of ``models`` it prices has ``input`` and
    ``output`` as finite numbers >= 0 (a table missing ``output`` once crashed the experiment after
    its runs had been billed). A model it does not price has no cost (a budget refuses it)."""
    if not isinstance(prices, Mapping):
        raise ConfigError(
            f"prices must be a dict of model -> {{'input': USD, 'output': USD}}, not {type(prices).__name__}"
        )
    for model in dict.fromkeys(models):
        price = prices.get(model)
        if price is None:
            continue
        if not isinstance(price, Mapping):
            raise ConfigError(f"prices[{model!r}] must be a dict with 'input' and 'output' USD per 1M tokens")
        for side in ("input", "output"):
            value = price.get(side)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ConfigError(
                    f"prices[{model!r}][{side!r}] must be a number >= 0 (USD per 1M tokens), not {value!r:.40}"
                )


def _price(prices: dict, model: str) -> dict:
    price = prices.get(model)
    if not isinstance(price, dict) or not {"input", "output"} <= set(price):
        raise ConfigError(f"no price for model {model!r} in prices (USD per 1M tokens, input and output)")
    return price


def estimate(speaker, bodies: list[dict], judges: list, judge_model: str, prices: dict, assumed: int) -> float:
    """USD, worst case, for ``bodies`` (``speaker``'s requests) and, per body, one call per judge scorer."""
    total = 0.0
    for body in bodies:
        price = _price(prices, body["model"])
        prompt = estimate_tokens(str(body.get("messages") or body.get("input") or ""))
        completion = completion_cap(speaker, body, assumed)
        total += (prompt * price["input"] + completion * price["output"]) / 1e6
        for judge in judges:
            judge_price = _price(prices, judge_model)
            judge_prompt = prompt + completion + JUDGE_PROMPT_OVERHEAD
            total += (judge_prompt * judge_price["input"] + judge.judge_cap * judge_price["output"]) / 1e6
    return total


def check(speaker, bodies: list[dict], judges: list, judge_model: str, prices: dict, budget: float, assumed: int):
    figure = estimate(speaker, bodies, judges, judge_model, prices, assumed)
    if figure > budget:
        calls = len(bodies) * (1 + len(judges))
        raise ConfigError(
            f"this experiment could cost up to ${figure:.4f} ({calls} requests still to send), over the budget "
            f"of ${budget:.4f}: nothing was sent (lower max_tokens, n, repeats or the grid, or raise the budget)"
        )
    return figure
