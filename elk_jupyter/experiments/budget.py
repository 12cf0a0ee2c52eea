"""The one budget rule: the worst-case cost of the runs still to send, checked before any request. Pure.

Each run costs at most its prompt plus ``cap × n`` completion tokens, where the cap is the body's
own cap field as its endpoint's dialect reads it (``max_tokens`` / ``max_completion_tokens`` on
chat, ``max_output_tokens`` on Responses), or an assumed figure when it sets none; each
model-graded scorer adds one judge call. The prompt is every field the model reads: messages or
input, Responses ``instructions``, tools and their schemas, structured-output schemas, a
prediction, and each image at a worst-case token count. The old sweep estimate read only
``max_tokens`` and ignored ``n`` (estimated at $0.005, billed $8 against a $0.50 budget, issue 16);
an estimate of the messages alone let a 470 KB ``instructions`` through on Responses (issue 21).
"""

from __future__ import annotations

from collections.abc import Mapping

from elk_jupyter.conversation.session import estimate_tokens
from elk_jupyter.errors import ConfigError

JUDGE_PROMPT_OVERHEAD = 120  # tokens of the judge's own instructions around the case and the answer
# The request fields a model reads (and bills as input), on either endpoint.
PROMPT_FIELDS = (
    "messages",
    "input",
    "instructions",
    "tools",
    "functions",
    "tool_choice",
    "response_format",
    "text",
    "prediction",
)
IMAGE_PARTS = frozenset({"image_url", "input_image"})
# A high-detail image is at most 85 + 170 per 512 px tile; 2048×2048 fits 16 tiles: 2,805 tokens
# (https://platform.openai.com/docs/guides/images-vision#calculating-costs).
IMAGE_TOKENS = 2805


def prompt_tokens(body: Mapping) -> int:
    """A worst-case count of the input tokens of ``body``: its text fields at 4 characters a
    token, each image at ``IMAGE_TOKENS`` (its bytes, or its URL, are not what is billed)."""
    images = [0]

    def text_of(value) -> str:
        if isinstance(value, Mapping):
            if value.get("type") in IMAGE_PARTS:
                images[0] += 1
                return ""
            return " ".join(f"{key} {text_of(item)}" for key, item in value.items())
        if isinstance(value, (list, tuple)):
            return " ".join(text_of(item) for item in value)
        return "" if value is None else str(value)

    text = " ".join(text_of(body.get(name)) for name in PROMPT_FIELDS if body.get(name) is not None)
    return estimate_tokens(text) + images[0] * IMAGE_TOKENS


def completion_cap(speaker, params: Mapping, assumed: int) -> int:
    """The most one request may generate: the endpoint's own cap field (``speaker`` is its
    dialect), or ``assumed`` when it sets none, times the ``n`` choices it asks for."""
    cap = speaker.completion_cap(params)
    cap = cap if isinstance(cap, int) and not isinstance(cap, bool) and cap > 0 else assumed
    n = params.get("n")
    return cap * (n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 1)


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
        prompt = prompt_tokens(body)
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
