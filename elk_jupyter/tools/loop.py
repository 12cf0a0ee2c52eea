"""The tool loop of one turn: the model calls, the functions run, the results go back, until the
model answers or the step limit is reached. Pure apart from the ``stream`` it is handed.

A turn is one record however many requests it took: the last reply is the turn's reply and each
earlier step (its calls and their results, as sent) is kept in ``reply.steps``. Replay restores
those from the record, so a replayed tool turn runs no function (issue 17).
"""

from __future__ import annotations

from collections.abc import Callable

from elk_jupyter.errors import ConfigError, StreamError
from elk_jupyter.gateway.dialects import dialect
from elk_jupyter.redaction import note as redaction_note
from elk_jupyter.tools import functions as tools
from elk_jupyter.tools.functions import Call

DEFAULT_STEPS = 5  # model requests per turn
PREVIEW = 2_000  # characters of a tool result the panel and the Markdown copy show


def pending_calls(reply) -> list[Call]:
    """The calls the model asked for in this reply (choice 0), ids filled in when a server left them out."""
    return [
        Call(
            call.get("id") or f"call_{call.get('index', n)}",
            call["function"].get("name") or "",
            call["function"].get("arguments") or "",
        )
        for n, call in enumerate(reply.tool_calls)
    ]


def run(
    stream: Callable,
    endpoint: str,
    body: dict,
    toolset: dict,
    approve,
    max_steps: int,
    chain: bool,
    redact: Callable[[str], str] = str,
) -> tuple[object, object]:
    """(the last reply, its error or None). ``stream(body)`` sends one request: (reply, error).

    ``redact`` cuts the API key out of each result before it is cut, sent or recorded (a
    function that reads the environment could return it)."""
    if not isinstance(max_steps, int) or isinstance(max_steps, bool) or max_steps < 1:
        raise ConfigError(f"max_steps must be a whole number of at least 1 (got {max_steps!r})")
    steps: list[dict] = []
    speaker = dialect(endpoint)
    for number in range(1, max_steps + 1):
        reply, error = stream(body)
        calls = pending_calls(reply)
        if error is not None or not reply.ok or not calls:
            break
        if number == max_steps:  # the model still wants tools: stop, and say so
            reply.status = "incomplete"
            reply.incomplete_details = {"reason": "max_tool_steps", "max_steps": max_steps, "calls_not_run": len(calls)}
            break
        try:
            results = tools.run_calls(calls, toolset, approve, redact)
        except KeyboardInterrupt:  # the kernel's interrupt while a function ran: end the turn, keep it
            error = StreamError("interrupted by the user while the tools ran")
            reply.fail("interrupted", error.message)
            break
        step = {"id": reply.id, "text": reply.text, "usage": reply.usage, "calls": results}
        steps.append(step)
        body = speaker.follow_up(body, step, chain)
    reply.steps = steps
    return reply, error


def with_functions(endpoint: str, body: dict) -> tuple[dict, dict]:
    """(the body with tool definitions, {name: Tool}) when its ``tools`` holds Python functions
    (``Client.chat(..., tools=[f, g])``); else (the body, {})."""
    given = body.get("tools")
    if not isinstance(given, list) or not any(callable(t) for t in given):
        return body, {}
    if not all(callable(t) for t in given):
        raise ConfigError("tools: give Python functions or JSON tool definitions, not both")
    try:
        toolset = {t.name: t for t in map(tools.tool_of, given)}
    except ValueError as err:
        raise ConfigError(str(err)) from None
    return {**body, **dialect(endpoint).tool_fields(list(toolset.values()))}, toolset


def note(reply) -> str:
    """What the note says about a tool turn: the secrets cut out of its results, and that the step
    limit stopped it ('' when neither)."""
    cut = sum(c.get("redacted") or 0 for step in reply.steps or () for c in step.get("calls") or ())
    notes = [redaction_note(cut, "the tool results")]
    details = reply.incomplete_details or {}
    if details.get("reason") == "max_tool_steps":
        notes.append(
            f"step limit {details['max_steps']} reached: {details['calls_not_run']} calls not run (--max-steps)"
        )
    return " · ".join(filter(None, notes))


def call_lines(reply) -> list[str]:
    """One line per call that ran: for the terminal view."""
    return ["tool " + tools.describe(c) for step in reply.steps for c in step["calls"]]


def shown_calls(reply) -> list[dict]:
    """Every call of the turn as the panel shows it: the calls that ran with their result preview,
    duration and error (``reply.steps``), then any the model asked for last (not run)."""
    ran = [
        {
            "id": call.get("id"),
            "type": "function",
            "function": {"name": call.get("name"), "arguments": call.get("arguments")},
            "result": str(call.get("output") or "")[:PREVIEW],
            "error": call.get("error"),
            "duration": call.get("duration"),
            "status": call.get("status"),
        }
        for step in getattr(reply, "steps", None) or ()
        for call in step.get("calls") or ()
    ]
    return ran + list(reply.tool_calls)
