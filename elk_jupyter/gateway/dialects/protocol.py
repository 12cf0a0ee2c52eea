"""The one protocol every endpoint's dialect implements, and the request it builds. Pure.

A dialect owns everything that differs between endpoints, so nothing else in the package
branches on an endpoint's name:

- ``fields`` / ``structured``: the magic's options as this endpoint's request fields (the
  max-tokens field, reasoning, JSON mode and JSON schemas);
- ``request``: the exact body from a history and a prompt (system prompt vs ``instructions``,
  re-sent messages vs ``previous_response_id``), with ``wire_body`` for callers that bring the
  endpoint's own input (``Client.chat``/``respond``, sweeps);
- ``stream`` / ``events_from_body``: a streamed or a whole JSON body -> our typed events;
- ``completion_cap``: the most a request may generate, for cost estimates;
- ``user_content``: the prompt with its files and images (neutral parts, ``content``) in this
  endpoint's shape; an earlier turn's parts are re-sent as recorded;
- ``tool_fields`` / ``tool_step_items`` / ``follow_up``: tool definitions, a tool step (calls
  and results) as history items, and the next request of a tool turn (``tool_loop``).

Spoken prompts would extend ``user_content`` and ``content``; a new endpoint is one more module
registered in ``__init__``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import NamedTuple, Protocol

from elk_jupyter.gateway.events import Event
from elk_jupyter.gateway.sse import ServerSentEvent


class Request(NamedTuple):
    body: dict  # the exact JSON body
    mode: str | None = None  # Responses: "chain" | "stateless"; None where chaining does not exist
    reason: str | None = None  # why (part of) the history is re-sent rather than chained
    note: str = ""  # how earlier turns went back when the context note should say it (audio by id)


class StreamParser(Protocol):
    done: bool  # the terminal event arrived

    def feed(self, sse: ServerSentEvent) -> Iterable[Event]: ...

    def end(self) -> Iterator[Event]:
        """At EOF: the last events, or a StreamError when the reply is not whole."""
        ...


class Dialect(Protocol):
    name: str  # the endpoint's name in records and views
    path: str  # appended to the base URL
    magic: str  # the cell magic that sends to it (%%chat, %%respond): the chat panel's "to cell"

    def fields(self, options: Mapping, max_tokens_field: str) -> dict:
        """Request fields from the magic's options (``None``: not set)."""
        ...

    def structured(self, json_mode: bool, schema) -> dict:
        """The fields for JSON mode or a JSON schema, in this endpoint's shape."""
        ...

    def user_content(self, prompt: str, attachments: Sequence[dict] = ()):
        """What a user message carries: the prompt, or with ``attachments`` (neutral parts, see
        ``content``) a list of this endpoint's content parts."""
        ...

    def tool_fields(self, specs: Sequence) -> dict:
        """The request field defining these tools (``tools.Tool``: name, description, parameters)."""
        ...

    def tool_step_items(self, step: Mapping) -> list[dict]:
        """A tool step (the model's calls and their results, ``reply.steps``) as history items."""
        ...

    def follow_up(self, body: dict, step: Mapping, chain: bool) -> dict:
        """The next request of a tool turn: ``body`` with ``step``'s results (``chain``: may
        refer to the step's stored response instead of re-sending)."""
        ...

    def history_items(self, history: Sequence, now: float) -> list[dict]:
        """The items (chat messages, Responses input items) that re-send the earlier turns
        ``history`` at ``now``: a pure function of those turns."""
        ...

    def wire_body(self, input, model: str, stream: bool = True, **params) -> dict:
        """The body from this endpoint's own input (chat messages, Responses input)."""
        ...

    def prompt_input(self, prompt: str | Sequence[dict]):
        """A bare prompt, or chat-style messages, as this endpoint's input."""
        ...

    def request(
        self,
        ask,
        settings,
        history: Sequence,
        system: str | None,
        model: str,
        host: str | None,
        now: float | None = None,
    ) -> Request:
        """The exact body for ``ask`` after ``history`` (``Ask``, ``Settings`` values), built at
        ``now`` (Unix seconds, default the current time: what the server still holds of an earlier
        reply, an audio clip's id, may have expired by then)."""
        ...

    def stream(self) -> StreamParser: ...

    def events_from_body(self, obj: dict) -> Iterator[Event]:
        """A whole JSON body (a server ignoring ``stream: true``, or ``--no-stream``)."""
        ...

    def completion_cap(self, params: Mapping) -> int | None:
        """The request's cap on generated tokens, if it sets one."""
        ...
