"""Prompt templates filled from a case, and the request body of one run. Pure.

The syntax is the magics' ``-i``: ``$name`` and ``${expr}`` in one pass, ``$$`` for a literal ``$``,
braces alone mean nothing (so JSON and code in a prompt are safe). A case's fields shadow the
notebook's names; an undefined name is an error, never an empty string.
"""

from __future__ import annotations

import builtins
import functools
import re
from collections import ChainMap
from collections.abc import Mapping

from elk_jupyter.conversation.ask import Ask
from elk_jupyter.conversation.options import field_path, interpolate
from elk_jupyter.conversation.settings import Settings
from elk_jupyter.errors import ConfigError
from elk_jupyter.experiments.spec import RunSpec, Spec
from elk_jupyter.gateway.dialects import dialect


def render(template: str, case: Mapping, namespace: Mapping | None = None) -> str:
    scope = ChainMap(dict(case), dict(namespace or {}))

    def evaluate(expr: str):
        return eval(_compiled(expr), {"__builtins__": builtins}, scope)  # noqa: S307 - the user's own template

    try:
        return interpolate(template, scope, evaluate)
    except ValueError as err:
        raise ConfigError(f"template: {err}") from None


@functools.lru_cache(maxsize=256)
def _compiled(expr: str):
    """``expr`` compiled as ``eval`` compiles a string (leading blanks dropped, the same errors).

    Compiled once, not for every run of every case (for speed: the compile is most of a ``${expr}``'s
    cost); the code is a pure function of the text, evaluated afresh in each run's scope."""
    return compile(expr.lstrip(" \t"), "<string>", "eval")


def body(spec: Spec, run: RunSpec, namespace: Mapping | None = None) -> dict:
    """The exact request one run sends (streamed, like a turn): a first turn of its endpoint's dialect."""
    template, case = spec.templates[run.column.template], spec.cases[run.case]
    try:
        prompt = render(template, case, namespace)
    except ConfigError:
        # "$q is not defined in the notebook" would hide the cause when other cases have the field
        fields = {name for other in spec.cases for name in other} - set(case)
        missing = [name for name in re.findall(r"\$\{?([A-Za-z_]\w*)", template) if name in fields]
        if missing:
            raise ConfigError(
                f"case {run.case + 1} has no field {missing[0]!r}, which the template uses and other cases "
                f"have: give every case the field (nothing was sent)"
            ) from None
        raise
    return request(spec.endpoint, prompt, run.column.model, spec.system, run.column.param_dict)


def request(endpoint: str, prompt: str, model: str, system: str | None, params: Mapping) -> dict:
    """The body of a one-turn conversation on ``endpoint`` (the dialect places the system prompt).

    A dotted name (``reasoning.effort``) nests, set last, exactly as ``%%chat -p`` sets it."""
    plain = {name: value for name, value in params.items() if "." not in name}
    nested = tuple((field_path(name), value) for name, value in params.items() if "." in name)
    ask = Ask(endpoint, prompt, plain, extra=nested)
    return dialect(endpoint).request(ask, _DEFAULTS, (), system, model, None).body


_DEFAULTS = Settings()  # frozen: one for every run (building one is a fifth of a run's request)
