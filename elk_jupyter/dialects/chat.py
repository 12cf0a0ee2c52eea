"""The Chat Completions dialect (POST /chat/completions): bodies, structured output, audio
replies (``--audio``, and how an earlier spoken answer goes back), parsing. Pure.

https://platform.openai.com/docs/api-reference/chat/create
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from elk_jupyter.audio import parse_voice
from elk_jupyter.identity import short_ids
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

    def user_content(self, prompt: str):
        return prompt

    def messages(self, system: str | None, history: Sequence, prompt: str, now: float | None = None) -> list[dict]:
        """The system prompt, each earlier turn as user + assistant, the new prompt.

        Earlier tool calls are not replayed (they would need their tool results); their text is. An
        earlier audio reply goes back as ``audio: {id}`` while the server still holds it, else as its
        transcript (https://platform.openai.com/docs/guides/audio, multi-turn conversations).
        """
        now = time.time() if now is None else now
        messages = [{"role": "system", "content": system}] if system else []
        for turn in history:
            messages.append({"role": "user", "content": self.user_content(turn.prompt)})
            audio_id = audio_reference(turn, now)
            if audio_id is not None:
                messages.append({"role": "assistant", "audio": {"id": audio_id}})
            else:
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

    def request(self, ask, settings, history, system, model, host, now=None) -> Request:
        now = time.time() if now is None else now  # one instant for the body and its note
        body = self.wire_body(self.messages(system, history, ask.prompt, now), model, ask.stream, **ask.params)
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
    if not isinstance(expires, int | float) or isinstance(expires, bool) or expires <= now:
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
