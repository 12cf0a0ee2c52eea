"""The Responses dialect (POST /responses): bodies, chaining, structured output, content parts,
tools, parsing. Pure.

https://platform.openai.com/docs/api-reference/responses/create. Tools: ``function_call`` and
``function_call_output`` items; a tool turn's next request chains from the step's response with
``previous_response_id`` or, stateless, re-sends everything
(https://platform.openai.com/docs/guides/function-calling, Responses tab).

The rule for chaining: a stored response holds exactly the turns its record says were sent with
it, plus itself; so a request may chain from a turn (``previous_response_id``) only if that
turn's recorded context is exactly the turns before it in the history to send. Anything else
would make the model see a history the record does not show (issue 14).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from elk_jupyter.conversation.identity import short, short_ids
from elk_jupyter.conversation.options import apply_extra, schema_name
from elk_jupyter.gateway.dialects.content import sent_parts, steps, text
from elk_jupyter.gateway.dialects.protocol import Request
from elk_jupyter.gateway.dialects.responses_stream import ResponsesStream, responses_events_from_body


class ResponsesDialect:
    name = "responses"
    path = "/responses"
    magic = "respond"

    def fields(self, options: Mapping, max_tokens_field: str) -> dict:
        # max_tokens_field names the chat field only: Responses has one, max_output_tokens.
        reasoning = {"effort": options.get("reasoning_effort"), "summary": options.get("summary")}
        reasoning = {k: v for k, v in reasoning.items() if v is not None}
        return {
            "temperature": options.get("temperature"),
            "top_p": options.get("top_p"),
            "seed": options.get("seed"),
            "max_output_tokens": options.get("max_tokens"),
            "truncation": options.get("truncation"),
            "reasoning": reasoning or None,
        }

    def structured(self, json_mode: bool, schema) -> dict:
        if schema is not None:
            name, body = schema_name(schema)
            return {"text": {"format": {"type": "json_schema", "name": name, "schema": body, "strict": True}}}
        return {"text": {"format": {"type": "json_object"}}} if json_mode else {}

    def user_content(self, prompt: str, attachments: Sequence[dict] = ()):
        """The prompt, or with files and images (``content`` parts) the list of input parts."""
        return self._parts([text(prompt), *attachments]) if attachments else prompt

    @staticmethod
    def _parts(parts: Sequence[dict]) -> list[dict]:
        return [
            {"type": "input_image", "image_url": p["url"]}
            if p["type"] == "image"
            else {"type": "input_text", "text": p["text"]}
            for p in parts
        ]

    def tool_fields(self, specs) -> dict:
        """The ``tools`` field for these ``tools.Tool`` values (none: no field)."""
        tools = [
            {"type": "function", "name": t.name, "description": t.description, "parameters": t.parameters}
            for t in specs
        ]
        return {"tools": tools} if tools else {}

    def tool_step_items(self, step: Mapping, with_calls: bool = True) -> list[dict]:
        """One tool step as input items (``with_calls``: the model's calls too, for a resend)."""
        items = []
        if with_calls:
            if step.get("text"):
                items.append({"type": "message", "role": "assistant", "content": step["text"]})
            items += [
                {"type": "function_call", "call_id": c["id"], "name": c["name"], "arguments": c["arguments"]}
                for c in step["calls"]
            ]
        return items + [
            {"type": "function_call_output", "call_id": c["id"], "output": c["output"]} for c in step["calls"]
        ]

    def follow_up(self, body: dict, step: Mapping, chain: bool) -> dict:
        """The next request of a tool turn: chained from the step's response (only its results
        sent), or stateless with the step's calls and results after everything before."""
        if chain and step.get("id"):
            return {**body, "previous_response_id": step["id"], "input": self.tool_step_items(step, with_calls=False)}
        before = body.get("input")
        if isinstance(before, str):
            before = [{"type": "message", "role": "user", "content": before}]
        return {**body, "input": [*(before or []), *self.tool_step_items(step)]}

    def input(self, history: Sequence, prompt: str, attachments=()) -> list[dict] | str:
        """Stateless input: the earlier turns re-sent as messages, each with its parts as sent and
        its tool steps, then the prompt (alone: the bare string, unless it has parts)."""
        if not history and not attachments:
            return prompt
        items = self.history_items(history)
        items.append({"type": "message", "role": "user", "content": self.user_content(prompt, attachments)})
        return items

    def history_items(self, history: Sequence, now: float | None = None) -> list[dict]:
        """The input items re-sending earlier turns (each with its parts as sent and its tool
        steps): a pure function of those turns, so a record can keep them as a reference."""
        # "type": "message" is optional in OpenAI's spec but required by llama-server.
        items: list[dict] = []
        for turn in history:
            sent = sent_parts(turn)
            items.append({"type": "message", "role": "user", "content": self._parts(sent) if sent else turn.prompt})
            for step in steps(turn):
                items += self.tool_step_items(step)
            items.append({"type": "message", "role": "assistant", "content": turn.text})
        return items

    def wire_body(self, input, model: str, stream: bool = True, **params) -> dict:
        """The exact JSON body for POST /responses. ``None`` params mean "not set"."""
        body = {"model": model, "input": input}
        body.update({k: v for k, v in params.items() if v is not None})
        body["stream"] = stream
        return body

    def prompt_input(self, prompt):
        return prompt if isinstance(prompt, str) else list(prompt)

    def request(self, ask, settings, history, system, model, host, now=None) -> Request:
        """Chain from the latest response that holds exactly the history before it, re-sending the
        turns after it; stateless when none does (or when asked)."""
        stateless = ask.stateless or settings.respond_mode == "stateless"
        params = {**ask.params, **self.tool_fields(ask.tools), "instructions": system}
        position, reason = (None, None) if stateless or not history else chain_point(history, host)
        if position is None:
            body, mode = (
                self.wire_body(self.input(history, ask.prompt, ask.attachments), model, ask.stream, **params),
                "stateless",
            )
        else:
            params["previous_response_id"] = history[position].reply["id"]
            body = self.wire_body(
                self.input(history[position + 1 :], ask.prompt, ask.attachments), model, ask.stream, **params
            )
            mode = "chain"
        body = apply_extra(body, ask.extra)
        if mode == "stateless" and body.get("previous_response_id"):
            mode, reason = "chain", "previous_response_id set by --param: the server's history is not in the record"
        return Request(body, mode, reason)

    def stream(self) -> ResponsesStream:
        return ResponsesStream()

    def events_from_body(self, obj: dict):
        return responses_events_from_body(obj)

    def completion_cap(self, params: Mapping) -> int | None:
        return params.get("max_output_tokens")


def chain_point(history: Sequence, host: str | None) -> tuple[int | None, str | None]:
    """(the index of the latest turn in ``history`` a request can chain from, or None; why the
    turns after it, if any, cannot be chained and must be re-sent)."""
    reason = None
    for position in range(len(history) - 1, -1, -1):
        problem = unchainable(history[position], [t.id for t in history[:position]], host)
        if problem is None:
            return position, reason
        reason = reason or problem
    return None, reason


def unchainable(turn, before: list[str], host: str | None) -> str | None:
    """Why ``turn``'s stored response cannot stand for ``before`` + itself (None: it can)."""
    name = short(turn.id)
    if turn.endpoint != ResponsesDialect.name:
        return f"{name} ran on the {turn.endpoint} endpoint"
    if not turn.reply.get("id") or turn.reply.get("status") not in ("completed", "incomplete"):
        return f"{name} has no complete stored response"
    if turn.request.get("store") is False:
        return f"{name} was sent with store=false"
    if turn.host != host:
        return f"{name} was answered by another host"
    if list(turn.context) != before:
        return f"{name}'s stored response holds {short_ids(turn.context)} before it, this context {short_ids(before)}"
    return None
