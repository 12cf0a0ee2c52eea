"""Python functions as tools: a JSON schema from the signature, type hints and docstring (or a
pydantic model), and running the model's calls (in parallel, errors as results, approval).

Pure apart from calling the user's own functions. The endpoints' request shapes live in the
dialects (``tool_fields``, ``tool_step_items``); the loop that sends results back in ``tool_loop``.
"""

from __future__ import annotations

import enum
import inspect
import json
import re
import time
import types
import typing
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from elk_jupyter.media import notebook_context

OUTPUT_LIMIT = 16_000  # characters of a result sent to the model (and kept in the record)
PREVIEW = 200  # characters of a result the panel shows
_SIMPLE = {str: "string", int: "integer", float: "number", bool: "boolean", dict: "object", list: "array"}


@dataclass(frozen=True)
class Tool:
    name: str
    func: Callable
    description: str
    parameters: dict  # JSON schema of the arguments object


def tool_of(func: Callable) -> Tool:
    """A tool from a function: its name, its docstring's summary and a schema of its parameters."""
    if not callable(func):
        raise ValueError(f"a tool must be a function, got {type(func).__name__}")
    name = getattr(func, "__name__", "")
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name or ""):
        raise ValueError(f"a tool needs a name of letters, digits, _ or - (got {name!r})")
    doc = inspect.getdoc(func) or ""
    summary, described = _docstring(doc)
    return Tool(name, func, summary or name, _parameters(func, described))


def _docstring(doc: str) -> tuple[str, dict]:
    """(the first paragraph, {parameter: description}) from Google (``Args:``) or Sphinx (``:param x:``) style."""
    summary = doc.split("\n\n", 1)[0].strip()
    described = dict(re.findall(r"^\s*:param\s+(?:\w+\s+)?(\w+):\s*(.+)$", doc, flags=re.M))
    section = re.search(r"^(?:Args|Arguments|Parameters):\s*\n((?:[ \t]+.*\n?)+)", doc, flags=re.M)
    if section:
        for name, text in re.findall(r"^\s+(\w+)(?:\s*\([^)]*\))?:\s*(.+)$", section.group(1), flags=re.M):
            described.setdefault(name, text.strip())
    return summary, described


def _parameters(func: Callable, described: dict) -> dict:
    try:
        signature = inspect.signature(func)
        hints = typing.get_type_hints(func)
    except (TypeError, ValueError, NameError) as err:
        raise ValueError(f"tool {func.__name__}: cannot read its signature ({err})") from None
    properties, required = {}, []
    for name, parameter in signature.parameters.items():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        schema = type_schema(hints.get(name, parameter.annotation))
        if name in described:
            schema = {**schema, "description": described[name]}
        if parameter.default is parameter.empty:
            required.append(name)
        elif _jsonable(parameter.default):
            schema = {**schema, "default": parameter.default}
        properties[name] = schema
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def type_schema(hint) -> dict:
    """The JSON schema of one type hint (unknown or missing hints accept anything)."""
    if hint is inspect.Parameter.empty or hint is typing.Any:
        return {}
    model_schema = getattr(hint, "model_json_schema", None)
    if callable(model_schema):  # a pydantic model
        return model_schema()
    if hint in _SIMPLE:
        return {"type": _SIMPLE[hint]}
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return {"enum": [m.value for m in hint]}
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin in (list, tuple, set, frozenset):
        return {"type": "array", **({"items": type_schema(args[0])} if args else {})}
    if origin is dict:
        return {"type": "object"}
    if origin in (typing.Union, types.UnionType):
        options = [type_schema(a) for a in args if a is not type(None)]
        schema = options[0] if len(options) == 1 else {"anyOf": options}
        return {"anyOf": [schema, {"type": "null"}]} if type(None) in args else schema
    return {}


def _jsonable(value) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


@dataclass(frozen=True)
class Call:
    """One call the model asked for: its id, the tool's name and the arguments as JSON text."""

    id: str
    name: str
    arguments: str


def run_calls(calls: list[Call], tools: dict[str, Tool], approve: Callable[[Call], bool] | None) -> list[dict]:
    """Run the model's calls (approved ones, in parallel); one result per call, in order.

    Nothing a function does fails the turn: an exception, unknown tool, bad arguments or a
    declined approval is reported to the model as an error result (the model can recover).
    """
    # Approval first, one question at a time, in the model's order; then the approved run together.
    declined = {c.id for c in calls if approve is not None and not approve(c)}
    pool = ThreadPoolExecutor(max_workers=min(8, max(1, len(calls))), thread_name_prefix="elk-tool")
    try:
        futures = [pool.submit(_run_one, call, tools, call.id in declined) for call in calls]
        return [future.result() for future in futures]
    finally:
        # Not `with`: after an interrupt it would wait for a function that may never return.
        pool.shutdown(wait=False, cancel_futures=True)


def _run_one(call: Call, tools: dict[str, Tool], declined: bool) -> dict:
    result = {"id": call.id, "name": call.name, "arguments": call.arguments, "output": "", "error": None}
    started = time.perf_counter()
    try:
        if declined:
            raise _Declined("the user declined this call")
        tool = tools.get(call.name)
        if tool is None:
            raise _Declined(f"no tool named {call.name!r}; the tools are: {', '.join(tools) or 'none'}")
        value = tool.func(**_arguments(call, tool))
        result["output"] = bounded(output_text(value))
    except Exception as err:  # the user's function (or the model's arguments): a result, not a crash
        detail = str(err) if isinstance(err, _Declined) else f"{type(err).__name__}: {err}"
        result["error"] = bounded(detail)
        result["output"] = json.dumps({"error": result["error"]}, ensure_ascii=False)
    result["duration"] = round(time.perf_counter() - started, 6)
    result["status"] = "declined" if declined else "error" if result["error"] else "ok"
    return result


class _Declined(Exception):
    """A call that was not run, and why (its message goes to the model as is)."""


def _arguments(call: Call, tool: Tool) -> dict:
    try:
        arguments = json.loads(call.arguments or "{}")
    except ValueError as err:
        raise _Declined(f"the arguments are not valid JSON ({err})") from None
    if not isinstance(arguments, dict):
        raise _Declined("the arguments must be a JSON object")
    hints = typing.get_type_hints(tool.func)  # read once already by tool_of: it resolves
    for name, hint in hints.items():
        model = getattr(hint, "model_validate", None)
        if name in arguments and callable(model):
            arguments[name] = model(arguments[name])  # a pydantic model parameter gets its model
    return arguments


def output_text(value) -> str:
    """What the model reads of a return value: text as is, other values as JSON (repr if not JSON)."""
    if isinstance(value, str):
        return value
    if (type(value).__module__ or "").startswith("pandas"):
        return notebook_context.prompt_text(value)  # a bounded preview, never a million-row repr
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return repr(value)


def bounded(text: str, limit: int = OUTPUT_LIMIT) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"... [{len(text) - limit} more characters not sent]"


def describe(result: dict) -> str:
    """One line for the note and the terminal: name(arguments) -> result or error, duration."""
    arguments = result.get("arguments") or ""
    arguments = arguments if len(arguments) <= 80 else arguments[:77] + "..."
    outcome = f"error: {result['error']}" if result.get("error") else result.get("output") or ""
    outcome = " ".join(str(outcome).split())
    outcome = outcome if len(outcome) <= PREVIEW else outcome[: PREVIEW - 3] + "..."
    duration = result.get("duration")
    took = f" ({duration * 1000:.0f} ms)" if isinstance(duration, int | float) else ""
    return f"{result.get('name')}({arguments}) -> {outcome}{took}"
