"""The values users configure: their checks (timeout, retries, base URL, context limits, replay mode)
and the frozen ``Settings`` snapshot a turn runs under.

Shared by ``Client`` (arguments, environment) and the magics' traits (checked when
``%config`` sets them), so a bad value is one line where it is set, not a traceback later.
Errors are ConfigError with a message that quotes no secret. Pure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from elk_jupyter.errors import ConfigError
from elk_jupyter.gateway import urls

MAX_RETRIES = 10  # each retry may wait up to 8 s (or Retry-After): more is a typo, not a policy
REPLAY_MODES = ("auto", "off", "only")


def seconds(name: str, value) -> float:
    """A timeout: a finite number of seconds above 0 (0 would fail every read at once)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a finite number of seconds above 0, got {value!r}")
    return float(value)


def retries(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_RETRIES:
        raise ConfigError(f"retries must be a whole number from 0 to {MAX_RETRIES}, got {value!r}")
    return value


def at_least_zero(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{name} must be a whole number >= 0 (0: no limit), got {value!r}")
    return value


def base_url(value: str | None) -> str | None:
    """None (use $ELK_BASE_URL or the default) or a usable http(s) URL."""
    if value is None:
        return None
    try:
        urls.check(value)
    except urls.BadURL as err:
        raise ConfigError(str(err)) from None
    return value


def replay_mode(value: str, source: str = "ELK_REPLAY") -> str:
    """An unknown mode is an error: silently meaning 'auto' would run live, and bill, a turn meant to replay."""
    if value not in REPLAY_MODES:
        shown = value if len(value) <= 20 and value.isprintable() else value[:20] + "…"
        raise ConfigError(f"{source}={shown!r} is not a replay mode: use one of {', '.join(REPLAY_MODES)}")
    return value


@dataclass(frozen=True)
class Settings:
    """A snapshot of the configuration a turn runs under (the magics build it from their traits)."""

    base_url: str | None = None
    model: str | None = None
    api_key_env: str = "ELK_API_KEY"
    timeout: float = 600.0
    retries: int = 2
    default_conversation: str = "default"
    context_turns: int = 0  # send at most this many earlier turns (0: all)
    context_tokens: int = 0  # drop the oldest turns beyond this many context tokens (0: no cap)
    respond_mode: str = "chain"  # Responses context: "chain" (previous_response_id) or "stateless"
    max_tokens_field: str = "max_tokens"  # the chat field --max-tokens fills
    replay: str = "auto"  # auto | off | only
    audio_inline_bytes: int = 256 * 1024  # audio replies past this size go to a file beside the notebook

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))
