"""The Chat Completions dialect (POST /chat/completions): bodies, structured output, content
parts, tools, audio replies (``--audio``, and how an earlier spoken answer goes back), parsing.
Pure.

https://platform.openai.com/docs/api-reference/chat/create. Tools: the assistant message with
``tool_calls``, then one ``{"role": "tool"}`` message per call
(https://platform.openai.com/docs/guides/function-calling).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from elk_jupyter.conversation.identity import short_ids
from elk_jupyter.conversation.options import apply_extra, schema_name
from elk_jupyter.gateway.dialects.chat_stream import ChatStream, chat_events_from_body
from elk_jupyter.gateway.dialects.content import sent_parts, steps, text
from elk_jupyter.gateway.dialects.protocol import Request
from elk_jupyter.media.audio import parse_voice


class ChatDialect:
    name = "chat"
    path = "/chat/completions"
    magic = "chat"

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
            **self.audio_fields(options.get("audio"), stream=not options.get("no_stream")),
        }

    @staticmethod
    def audio_fields(voice: str | None, stream: bool) -> dict:
        """``--audio VOICE[:FORMAT]``: ``modalities`` and ``audio`` (https://platform.openai.com/docs/guides/audio)."""
        if not voice:
            return {}
        return {"modalities": ["text", "audio"], "audio": parse_voice(voice, stream)}

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
        tools = [
            {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}
            for t in specs
        ]
        return {"tools": tools} if tools else {}

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

    def messages(
        self, system: str | None, history: Sequence, prompt: str, now: float | None = None, attachments=()
    ) -> list[dict]:
        """The system prompt, each earlier turn as user (its parts as sent) + its tool steps +
        assistant, the new prompt. Calls left unanswered (the step limit) are not re-sent: they
        have no results. An earlier audio reply goes back as ``audio: {id}`` while the server
        still holds it, else as its transcript
        (https://platform.openai.com/docs/guides/audio, multi-turn conversations).
        """
        now = time.time() if now is None else now
        messages = [{"role": "system", "content": system}] if system else []
        messages += self.history_items(history, now)
        messages.append({"role": "user", "content": self.user_content(prompt, attachments)})
        return messages

    def history_items(self, history: Sequence, now: float) -> list[dict]:
        """The messages re-sending earlier turns: a pure function of those turns and ``now``, so
        a record can keep them as a reference (``records.request_history``)."""
        messages: list[dict] = []
        for turn in history:
            sent = sent_parts(turn)
            messages.append({"role": "user", "content": self._parts(sent) if sent else turn.prompt})
            for step in steps(turn):
                messages += self.tool_step_items(step)
            audio_id = audio_reference(turn, now)
            if audio_id is not None:
                messages.append({"role": "assistant", "audio": {"id": audio_id}})
            else:
                messages.append({"role": "assistant", "content": turn.text})
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

    def request(self, ask, settings, history, system, model, host, now=None) -> Request:
        now = time.time() if now is None else now  # one instant for the body and its note
        messages = self.messages(system, history, ask.prompt, now, ask.attachments)
        body = self.wire_body(messages, model, ask.stream, **{**ask.params, **self.tool_fields(ask.tools)})
        return Request(apply_extra(body, ask.extra), note=audio_note(history, now))

    def stream(self) -> ChatStream:
        return ChatStream()

    def events_from_body(self, obj: dict):
        return chat_events_from_body(obj)

    def completion_cap(self, params: Mapping) -> int | None:
        return params.get("max_tokens") or params.get("max_completion_tokens")


def audio_reference(turn, now: float) -> str | None:
    """The id of ``turn``'s audio reply while the server holds it (before ``expires_at``), else None."""
    audio = turn.reply.get("audio")
    if not isinstance(audio, dict) or not isinstance(audio.get("id"), str) or not audio["id"]:
        return None
    expires = audio.get("expires_at")
    if (
        not isinstance(expires, int | float) or isinstance(expires, bool) or not expires > now
    ):  # NaN: expired, as saved (null)
        return None
    return audio["id"]


def audio_note(history: Sequence, now: float) -> str:
    """How earlier audio replies go back, for the context note ('' when there are none)."""
    spoken = [t for t in history if isinstance(t.reply.get("audio"), dict)]
    if not spoken:
        return ""
    by_id = [t for t in spoken if audio_reference(t, now) is not None]
    text = [t for t in spoken if t not in by_id]
    parts = [f"audio {short_ids(t.id for t in by_id)} sent back by id"] if by_id else []
    if text:
        parts.append(f"audio {short_ids(t.id for t in text)} sent as its transcript (expired or no id)")
    return " · ".join(parts)
