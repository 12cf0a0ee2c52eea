"""What tools look like on the wire: definitions, the follow-up request that carries results back,
and how an earlier tool turn is re-sent. Pure; one function per endpoint shape.

Chat Completions: the assistant message with ``tool_calls``, then one ``{"role": "tool"}`` message
per call (https://platform.openai.com/docs/guides/function-calling). Responses: ``function_call``
items and ``function_call_output`` items; a follow-up chains from the step's response with
``previous_response_id`` or, stateless, re-sends everything (the same guide, Responses tab).
"""

from __future__ import annotations

import copy

CHAT = "chat"


def definitions(tools, endpoint: str) -> list[dict]:
    """The ``tools`` field of a request for these ``tools.Tool`` values."""
    if endpoint == CHAT:
        return [
            {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}
            for t in tools
        ]
    return [
        {"type": "function", "name": t.name, "description": t.description, "parameters": t.parameters} for t in tools
    ]


def chat_step_messages(step: dict) -> list[dict]:
    """One tool step as chat messages: the assistant's calls, then each call's result."""
    calls = [
        {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
        for c in step["calls"]
    ]
    messages = [{"role": "assistant", "content": step.get("text") or None, "tool_calls": calls}]
    messages += [{"role": "tool", "tool_call_id": c["id"], "content": c["output"]} for c in step["calls"]]
    return messages


def responses_step_items(step: dict, with_calls: bool = True) -> list[dict]:
    """One tool step as Responses input items (``with_calls``: the model's calls too, for a resend)."""
    items = []
    if with_calls:
        if step.get("text"):
            items.append({"type": "message", "role": "assistant", "content": step["text"]})
        items += [
            {"type": "function_call", "call_id": c["id"], "name": c["name"], "arguments": c["arguments"]}
            for c in step["calls"]
        ]
    items += [{"type": "function_call_output", "call_id": c["id"], "output": c["output"]} for c in step["calls"]]
    return items


def follow_up(endpoint: str, body: dict, step: dict, chain: bool) -> dict:
    """The next request of a tool turn: ``body`` (the step's request) with the step's results."""
    body = copy.deepcopy(body)
    if endpoint == CHAT:
        body["messages"] = [*body["messages"], *chat_step_messages(step)]
        return body
    if chain and step.get("id"):
        body["previous_response_id"] = step["id"]
        body["input"] = responses_step_items(step, with_calls=False)
        return body
    before = body.get("input")
    if isinstance(before, str):
        before = [{"type": "message", "role": "user", "content": before}]
    body["input"] = [*(before or []), *responses_step_items(step)]
    return body
