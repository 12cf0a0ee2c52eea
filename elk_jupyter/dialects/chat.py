"""The Chat Completions dialect (POST /chat/completions): bodies, structured output, parsing. Pure.

https://platform.openai.com/docs/api-reference/chat/create
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from elk_jupyter.options import apply_extra, schema_name

from .chat_stream import ChatStream, chat_events_from_body
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

    def user_content(self, prompt: str):
        return prompt

    def messages(self, system: str | None, history: Sequence, prompt: str) -> list[dict]:
        """The system prompt, each earlier turn as user + assistant, the new prompt.

        Earlier tool calls are not replayed (they would need their tool results); their text is.
        """
        messages = [{"role": "system", "content": system}] if system else []
        for turn in history:
            messages.append({"role": "user", "content": self.user_content(turn.prompt)})
            messages.append({"role": "assistant", "content": turn.text})
        messages.append({"role": "user", "content": self.user_content(prompt)})
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
        body = self.wire_body(self.messages(system, history, ask.prompt), model, ask.stream, **ask.params)
        return Request(apply_extra(body, ask.extra))

    def stream(self) -> ChatStream:
        return ChatStream()

    def events_from_body(self, obj: dict):
        return chat_events_from_body(obj)

    def completion_cap(self, params: Mapping) -> int | None:
        return params.get("max_tokens") or params.get("max_completion_tokens")
