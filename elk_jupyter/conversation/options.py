"""Magic options -> request fields, and explicit prompt interpolation. Pure; errors are ValueError.

The magics turn each ValueError into IPython's UsageError, so a bad option is one clear line.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping

from elk_jupyter.errors import ConfigError
from elk_jupyter.media.notebook_context import prompt_text

_CREDENTIAL_FIELDS = {"api_key", "apikey", "key", "authorization", "access_token", "token"}
_PLACEHOLDER = re.compile(r"\$(?:\$|\{([^{}]+)\}|([A-Za-z_][A-Za-z0-9_]*))")


def interpolate(text: str, namespace: Mapping, evaluate) -> str:
    """One pass of ``$name`` / ``${expr}`` substitution; ``$$`` is a literal ``$``.

    Braces alone mean nothing, so code and JSON in a prompt never break it (unlike
    ``str.format``). A name that is not defined is an error, not an empty string. A DataFrame
    reads as a bounded preview (``notebook_context.prompt_text``), never its whole repr.
    """

    def substitute(match: re.Match) -> str:
        expr, name = match.group(1), match.group(2)
        if expr is None and name is None:
            return "$"
        if name is not None and name not in namespace:
            raise ValueError(f"${name} is not defined in the notebook (write $$ for a literal $)")
        shown = f"${name}" if name is not None else f"${{{expr}}}"
        try:  # the user's expression, or a value whose str() raises: any error is theirs to see
            return prompt_text(namespace[name] if name is not None else evaluate(expr))
        except Exception as err:
            raise ValueError(f"{shown} failed: {said(err)}") from None

    return _PLACEHOLDER.sub(substitute, text)


def said(err: BaseException) -> str:
    """``Type: message`` of an exception, even one whose own ``str`` raises (first line only)."""
    try:
        text = str(err).split("\n", 1)[0]
    except Exception:
        text = "(its message cannot be shown)"
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def parse_param(item: str, namespace: Mapping) -> tuple[list[str], object]:
    """``key=value`` -> (path, value). Values are JSON when they parse, else strings.

    ``a.b=1`` sets a nested field; ``key=@var`` takes a notebook variable (for big values such
    as ``tools``). A value that looks like JSON (starts with ``{``, ``[`` or ``"``) must be JSON.
    """
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(f"--param expects key=value, got {item!r}")
    path = field_path(key)
    if raw.startswith("@") and raw[1:].isidentifier():
        if raw[1:] not in namespace:
            raise ValueError(f"--param {key}: variable {raw[1:]!r} is not defined")
        value = namespace[raw[1:]]
    elif raw[:1] and raw[0] in '{["':  # ("" is in every string: an empty value is the empty text)
        try:
            value = json.loads(raw)
        except ValueError as err:
            raise ValueError(f"--param {key}: bad JSON value {raw!r} ({err})") from None
    else:
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
    return path, value


def field_path(name: str) -> list[str]:
    """A request field's path from its name: ``a.b`` nests, in every magic, in ``experiment(params=...)``
    and in a grid; a credential anywhere in it is refused (it would be sent in the body and saved in
    the notebook's record)."""
    path = name.split(".")
    if not all(part.strip() for part in path):
        raise ValueError(f"--param {name}: a field name has an empty part")
    if any(part.lower().replace("-", "_") in _CREDENTIAL_FIELDS for part in path):
        raise ValueError(
            f"--param {name}: the API key is read from the environment only (ELK_API_KEY), never the magic line"
        )
    return path


def set_path(body: dict, path: list[str], value) -> None:
    target = body
    for part in path[:-1]:
        existing = target.get(part)
        if not isinstance(existing, dict):
            existing = target[part] = {}
        target = existing
    target[path[-1]] = value


def apply_extra(body: dict, extra) -> dict:
    """``body`` with each ``--param`` (path, value) set, last (so it wins over every option)."""
    for path, value in extra:
        set_path(body, path, value)
    return body


def schema_format(schema) -> tuple[str, dict]:
    """(name, JSON schema) from a dict schema or a pydantic model class."""
    if isinstance(schema, Mapping):
        data = dict(schema)
        if "schema" in data and isinstance(data["schema"], Mapping):  # already {name, schema}
            return str(data.get("name") or "output"), dict(data["schema"])
        return str(data.get("title") or "output"), data
    to_schema = getattr(schema, "model_json_schema", None)
    if callable(to_schema):
        return schema.__name__, to_schema()
    raise ValueError("--schema needs a dict (a JSON schema) or a pydantic model class")


def schema_name(schema) -> tuple[str, dict]:
    """(a name every endpoint accepts, the JSON schema) for structured output."""
    name, body = schema_format(schema)
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64] or "output", body


def parse_structured(text: str, schema):
    """The reply parsed as JSON, validated into the pydantic class when one was given."""
    validate = getattr(schema, "model_validate_json", None)
    if callable(validate):
        return validate(text)
    try:
        return json.loads(text)
    except ValueError as err:
        raise ValueError(f"the reply is not valid JSON ({err}); the text is kept in the reply") from None


def non_finite(value, path: str = "") -> str | None:
    """``path=value`` of the first NaN or infinity in a request body (JSON has neither), or None.

    ``-t nan`` and ``-p temperature=1e999`` parse as floats; requests would fail deep inside
    with a traceback, and a gateway would reject the body anyway.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return f"{path or 'value'}={value}"
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        found = non_finite(child, f"{path}.{key}" if path else str(key))
        if found is not None:
            return found
    return None


def check_json(body: dict) -> None:
    """Refuse, before anything is sent, a body that is not strict JSON (``-t nan``, ``-p x=@obj``)."""
    bad = non_finite(body)
    if bad is not None:
        raise ConfigError(f"{bad}: JSON cannot carry NaN or Infinity, use a finite number (nothing was sent)")
    try:
        json.dumps(body)
    except TypeError as err:
        raise ConfigError(f"the request holds a value JSON cannot carry ({err}); nothing was sent") from None
