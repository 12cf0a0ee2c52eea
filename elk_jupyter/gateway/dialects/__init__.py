"""The endpoints' dialects: one object per endpoint behind one protocol (``protocol.Dialect``).

``dialect(name)`` is the registry. Everything endpoint-specific (request bodies, chaining, the
max-tokens field, reasoning and structured-output fields, stream and whole-body parsing, the
completion cap) lives in these modules, as openai-python keeps one package per endpoint; the
rest of the package asks the dialect instead of branching on the endpoint's name.
"""

from __future__ import annotations

from elk_jupyter.errors import ConfigError
from elk_jupyter.gateway.dialects.chat import ChatDialect
from elk_jupyter.gateway.dialects.protocol import Dialect, Request, StreamParser
from elk_jupyter.gateway.dialects.responses import ResponsesDialect

__all__ = ["NAMES", "Dialect", "Request", "StreamParser", "dialect"]

_REGISTRY: dict[str, Dialect] = {d.name: d for d in (ChatDialect(), ResponsesDialect())}
NAMES = tuple(_REGISTRY)


def dialect(name: str) -> Dialect:
    """The dialect of endpoint ``name`` ("chat" or "responses")."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown endpoint {name!r}: use one of {', '.join(NAMES)}") from None
