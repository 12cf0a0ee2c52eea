"""The Chat Completions dialect (POST /chat/completions): bodies, structured output, content
parts, tools, parsing. Pure.

https://platform.openai.com/docs/api-reference/chat/create. Tools: the assistant message with
``tool_calls``, then one ``{"role": "tool"}`` message per call
(https://platform.openai.com/docs/guides/function-calling).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from elk_jupyter.options import apply_extra, schema_name

from .chat_stream import ChatStream, chat_events_from_body
from .content import sent_parts, steps, text
from .protocol import Request


class ChatDialect:
    name = "chat"
    path = "/chat/completions"

    def fields(self, options: Mapping, max_tokens_field: str) -> dict:
        stop = options.get("stop")
        return {
            "temperature": options.get("temperature"),
            "top_p": options.get("top_p"),
            "seed": options.get("seed"),
            "n": options.get("n"),
            "stop": stop[0] if stop and len(stop) == 1 else stop,
            max_tokens_field: options.get("max_tokens"),
            "reasoning_effort": options.get("reasoning_effort"),
        }

    def structured(self, json_mode: bool, schema) -> dict:
        if schema is not None:
            name, body = schema_name(schema)
            return {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": name, "schema": body, "strict": True},
                }
            }
        return {"response_format": {"type": "json_object"}} if json_mode else {}

    def user_content(self, prompt: str, attachments: Sequence[dict] = ()):
        """The prompt, or with files and images (``content`` parts) the list of content parts."""
        return self._parts([text(prompt), *attachments]) if attachments else prompt

    @staticmethod
    def _parts(parts: Sequence[dict]) -> list[dict]:
        return [
            {"type": "image_url", "image_url": {"url": p["url"]}} if p["type"] == "image" else p  # text is the same
            for p in parts
        ]

    def tool_fields(self, specs) -> dict:
        """The ``tools`` field for these ``tools.Tool`` values (none: no field)."""
        return (
            {
                "tools": [
                    {
                        "type": "function",
                        "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
                    }
                    for t in specs
                ]
            }
            if specs
            else {}
        )

    def tool_step_items(self, step: Mapping) -> list[dict]:
        """One tool step as messages: the assistant's calls, then each call's result."""
        calls = [
            {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
            for c in step["calls"]
        ]
        messages = [{"role": "assistant", "content": step.get("text") or None, "tool_calls": calls}]
        return messages + [{"role": "tool", "tool_call_id": c["id"], "content": c["output"]} for c in step["calls"]]

    def follow_up(self, body: dict, step: Mapping, chain: bool) -> dict:
        """The next request of a tool turn: the step's request with its calls and results."""
        return {**body, "messages": [*body["messages"], *self.tool_step_items(step)]}

    def messages(self, system: str | None, history: Sequence, prompt: str, attachments=()) -> list[dict]:
        """The system prompt, each earlier turn as user (its parts as sent) + its tool steps +
        assistant, the new prompt. Calls left unanswered (the step limit) are not re-sent: they
        have no results."""
        messages = [{"role": "system", "content": system}] if system else []
        for turn in history:
            sent = sent_parts(turn)
            messages.append({"role": "user", "content": self._parts(sent) if sent else turn.prompt})
            for step in steps(turn):
                messages += self.tool_step_items(step)
            messages.append({"role": "assistant", "content": turn.text})
        messages.append({"role": "user", "content": self.user_content(prompt, attachments)})
        return messages

    def wire_body(self, input, model: str, stream: bool = True, **params) -> dict:
        """The exact JSON body for POST /chat/completions. ``None`` params mean "not set"."""
        body = {"model": model, "messages": input}
        body.update({k: v for k, v in params.items() if v is not None})
        body["stream"] = stream
        if stream:
            # Ask for the final usage chunk unless the caller decided otherwise.
            options = dict(body.get("stream_options") or {})
            options.setdefault("include_usage", True)
            body["stream_options"] = options
        else:
            body.pop("stream_options", None)  # vLLM rejects stream_options without stream
        return body

    def prompt_input(self, prompt):
        return [{"role": "user", "content": self.user_content(prompt)}] if isinstance(prompt, str) else list(prompt)

    def request(self, ask, settings, history, system, model, host) -> Request:
        messages = self.messages(system, history, ask.prompt, ask.attachments)
        body = self.wire_body(messages, model, ask.stream, **{**ask.params, **self.tool_fields(ask.tools)})
        return Request(apply_extra(body, ask.extra))

    def stream(self) -> ChatStream:
        return ChatStream()

    def events_from_body(self, obj: dict):
        return chat_events_from_body(obj)

    def completion_cap(self, params: Mapping) -> int | None:
        return params.get("max_tokens") or params.get("max_completion_tokens")
