"""Prompt templates filled from a case, and the request body of one run. Pure.

The syntax is the magics' ``-i``: ``$name`` and ``${expr}`` in one pass, ``$$`` for a literal ``$``,
braces alone mean nothing (so JSON and code in a prompt are safe). A case's fields shadow the
notebook's names; an undefined name is an error, never an empty string.
"""

from __future__ import annotations

import builtins
from collections import ChainMap
from collections.abc import Mapping

from elk_jupyter import endpoints
from elk_jupyter.errors import ConfigError
from elk_jupyter.identity import request_key
from elk_jupyter.options import interpolate

from .spec import RunSpec, Spec


def render(template: str, case: Mapping, namespace: Mapping | None = None) -> str:
    scope = ChainMap(dict(case), dict(namespace or {}))

    def evaluate(expr: str):
        return eval(expr, {"__builtins__": builtins}, scope)  # noqa: S307 - the user's own template

    try:
        return interpolate(template, scope, evaluate)
    except ValueError as err:
        raise ConfigError(f"template: {err}") from None


def body(spec: Spec, run: RunSpec, namespace: Mapping | None = None) -> dict:
    """The exact request one run sends (streamed, like a turn)."""
    prompt = render(spec.templates[run.column.template], spec.cases[run.case], namespace)
    params = run.column.param_dict
    if spec.endpoint == endpoints.CHAT:
        messages = [{"role": "system", "content": spec.system}] if spec.system else []
        return endpoints.chat_body([*messages, {"role": "user", "content": prompt}], run.column.model, True, **params)
    return endpoints.responses_body(prompt, run.column.model, True, instructions=spec.system, **params)


def run_key(request: dict, repeat: int, scope: str | None) -> str:
    """A run's identity for replay: its body, its repeat number, and where it was sent (as ``sweep``)."""
    return request_key({**request, "elk_repeat": repeat}, scope)
