"""Which earlier turns a request carries and what they cost: the context policy. Pure.

How those turns are written into a body (messages, Responses input, chaining) is each dialect's
business (``dialects``).
"""

from __future__ import annotations

from elk_jupyter.conversation.session import Turn, estimate_tokens
from elk_jupyter.gateway.usage import Usage


def context_cost(history: list[Turn]) -> int:
    """Tokens the earlier turns add to a request: the last one's prompt + completion, when known.

    A chat turn's prompt already holds everything before it, so the last turn's usage counts
    the whole history exactly; without usage we estimate from the text.
    """
    if not history:
        return 0
    last = history[-1]
    numbers = Usage.of(last.reply.get("usage")).numbers()
    # The last turn's usage counts exactly these turns only if it was sent with the ones before it.
    exact = list(last.context) == [t.id for t in history[:-1]]
    if exact and (numbers["prompt"] or numbers["completion"]):
        return numbers["prompt"] + numbers["completion"]
    return sum(estimate_tokens(t.prompt) + estimate_tokens(t.text) for t in history)


def apply_policy(chain: list[Turn], turns: int, tokens: int) -> list[Turn]:
    """The most recent ``turns`` turns (0: all), then the oldest dropped past ``tokens`` (0: no cap)."""
    history = chain[-turns:] if turns > 0 else list(chain)
    if tokens > 0:
        while history and context_cost(history) > tokens:
            history = history[1:]
    return history
