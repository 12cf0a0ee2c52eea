"""The two endpoints: request bodies and the dialects' registry. Pure.

Chat Completions streams (parsed in ``chat``) are data-only chunks ended by ``[DONE]``; Responses
streams (parsed in ``responses``) are typed events ended by a terminal ``response.*`` event
(FORMATS.md §1.2, §1.5). Each dialect is a small stateful parser fed one SSE event at a time,
plus a converter for servers that ignore ``stream: true`` and answer with one JSON body.
"""

from __future__ import annotations

from .chat import CHAT, CallIndex, ChatStream, chat_events_from_body, content_parts
from .frames import parse_json, raise_if_error
from .responses import ResponsesStream, output_text, responses_events_from_body

__all__ = [
    "CallIndex",
    "ChatStream",
    "ResponsesStream",
    "chat_events_from_body",
    "content_parts",
    "output_text",
    "parse_json",
    "raise_if_error",
    "responses_events_from_body",
]

RESPONSES = "responses"
PATHS = {CHAT: "/chat/completions", RESPONSES: "/responses"}


def chat_body(messages: list, model: str, stream: bool = True, **params) -> dict:
    """The exact JSON body for POST /chat/completions. ``None`` params mean "not set"."""
    body = {"model": model, "messages": messages}
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


def responses_body(input, model: str, stream: bool = True, **params) -> dict:
    """The exact JSON body for POST /responses. ``None`` params mean "not set"."""
    body = {"model": model, "input": input}
    body.update({k: v for k, v in params.items() if v is not None})
    body["stream"] = stream
    return body


STREAMS = {CHAT: ChatStream, RESPONSES: ResponsesStream}
FROM_BODY = {CHAT: chat_events_from_body, RESPONSES: responses_events_from_body}
