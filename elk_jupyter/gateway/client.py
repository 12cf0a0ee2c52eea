"""Client: the public way to talk to a gateway (settings from arguments or the environment, the
calls, streaming into a Reply), and the one "send and keep the partial reply" used by turns,
sweeps and the CLI. HTTP itself is ``transport``'s; reading the body is ``body``'s.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator

from elk_jupyter import redaction
from elk_jupyter.conversation import settings
from elk_jupyter.errors import APIError, ElkError, StreamError, detached, unexpected
from elk_jupyter.gateway import transport, urls
from elk_jupyter.gateway.body import Body, model_list, whole_body
from elk_jupyter.gateway.dialects import dialect
from elk_jupyter.gateway.events import Connected, Event
from elk_jupyter.gateway.reply import Reply
from elk_jupyter.gateway.transport import Transport, json_or_none
from elk_jupyter.media import attachments
from elk_jupyter.tools import loop as tool_loop

DEFAULT_BASE_URL = "https://api.elkapi.com/v1"
DEFAULT_MODEL = "gpt-5.5"


class Client:
    """A client for an OpenAI-compatible gateway (elkapi by default).

    Each setting comes from its argument or else the environment: ``ELK_API_KEY`` (or the
    variable named by ``api_key_env``), ``ELK_BASE_URL``, ``ELK_MODEL``.

    >>> client = Client()                                    # doctest: +SKIP
    >>> reply = client.chat([{"role": "user", "content": "Hi"}], temperature=0)  # doctest: +SKIP
    >>> reply.text, reply.usage["total_tokens"]              # doctest: +SKIP
    """

    # After the terminal event the rest of the body is read, within these bounds (see _Body.drain).
    drain_bytes = 1 << 20
    drain_seconds = 2.0

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        model: str | None = None,
        api_key_env: str = "ELK_API_KEY",
        timeout: float = 600.0,
        connect_timeout: float = 10.0,
        max_retries: int = 2,
        max_retry_after: float = 60.0,
        connections: int = 10,
    ):
        self._api_key = api_key
        self.api_key_env = api_key_env
        self.base_url = (base_url or os.environ.get("ELK_BASE_URL") or DEFAULT_BASE_URL).strip().rstrip("/")
        self.model = model or os.environ.get("ELK_MODEL") or DEFAULT_MODEL
        self.timeout = settings.seconds("timeout", timeout)
        self.connect_timeout = settings.seconds("connect_timeout", connect_timeout)
        self.max_retries = settings.retries(max_retries)
        self.max_retry_after = max_retry_after
        self.connections = connections  # requests in flight at once, from several threads: kept-alive connections
        self._transport = Transport(self)
        self.images = attachments.Images()  # what image placeholders stand for (a kernel's: KernelState.images)
        self._rule: tuple[str | None, redaction.Redactor] | None = None  # (the key, its redaction rule)

    def copy(self, **changes) -> Client:
        """The same gateway, key and settings with an HTTP session of its own, ``changes`` applied
        (e.g. ``max_retries=0``, or ``connections`` for a client that several threads send through)."""
        names = "base_url model api_key_env timeout connect_timeout max_retries max_retry_after connections".split()
        copied = Client(self._api_key, **{**{name: getattr(self, name) for name in names}, **changes})
        copied.images = self.images
        return copied

    @property
    def host(self) -> str:
        """The base URL's host[:port]: what records and messages name, never credentials."""
        return urls.host(self.base_url)

    def cache_scope(self) -> str:
        """Which gateway and account a reply came from, for the replay cache: host and path, and a
        hash of the key (never the key: the cache is a plain file)."""
        key = self.api_key()
        account = hashlib.sha256(b"elk-jupyter replay cache\0" + key.encode()).hexdigest()[:16] if key else "no key"
        return f"{urls.origin(self.base_url)} account {account}"

    def api_key(self) -> str | None:
        return self._api_key or os.environ.get(self.api_key_env) or None

    def redact(self, text: str | None) -> str | None:  # every spelling ``redaction`` knows
        return self._redactor()(text)

    def guard(self, body: dict, written: str | None = None) -> tuple[dict, int]:
        """(``body`` redacted, spans cut): applied before a body is sent, recorded or cached.
        ``written``: the body's JSON when the caller has it (``redaction.Redactor.body``)."""
        return self._redactor().body(body, written)

    def _redactor(self) -> redaction.Redactor:
        """The rule for the key as it is now (read at each call: the environment may change it), built
        once per key: building one computes every spelling (~30 µs), and a run asks several times."""
        key, known = self.api_key(), self._rule
        if known is None or known[0] != key:
            known = self._rule = (key, redaction.redactor(key))
        return known[1]

    def key_fingerprint(self) -> str:
        key = self.api_key()
        if not key:
            return "not set"
        return f"…{key[-4:]}" if len(key) >= 12 else "set (too short to fingerprint)"

    def __repr__(self) -> str:
        source = "argument" if self._api_key else f"${self.api_key_env}"
        return f"Client(base_url={self.host!r}, model={self.model!r}, key={source} {self.key_fingerprint()})"

    def chat(
        self,
        messages: list,
        model: str | None = None,
        stream: bool = True,
        on_event: Callable[[Event], None] | None = None,
        *,
        approve: Callable | None = None,
        max_steps: int = tool_loop.DEFAULT_STEPS,
        **params,
    ) -> Reply:
        """POST /chat/completions and return the whole Reply (streamed as it arrives).
        ``tools=[f, g]`` runs Python functions as tools (see ``send``)."""
        body = dialect("chat").wire_body(messages, model or self.model, stream, **params)
        return self.send("chat", body, on_event, approve=approve, max_steps=max_steps)

    def respond(
        self,
        input,
        model: str | None = None,
        stream: bool = True,
        on_event: Callable[[Event], None] | None = None,
        *,
        approve: Callable | None = None,
        max_steps: int = tool_loop.DEFAULT_STEPS,
        **params,
    ) -> Reply:
        """POST /responses and return the whole Reply (streamed as it arrives).
        ``tools=[f, g]`` runs Python functions as tools (see ``send``)."""
        body = dialect("responses").wire_body(input, model or self.model, stream, **params)
        return self.send("responses", body, on_event, approve=approve, max_steps=max_steps)

    def iter_chat(self, messages: list, model: str | None = None, stream: bool = True, **params) -> Iterator[Event]:
        """The same request as ``chat``, as an iterator of typed events."""
        return self.iter_send("chat", dialect("chat").wire_body(messages, model or self.model, stream, **params))

    def iter_respond(self, input, model: str | None = None, stream: bool = True, **params) -> Iterator[Event]:
        """The same request as ``respond``, as an iterator of typed events."""
        body = dialect("responses").wire_body(input, model or self.model, stream, **params)
        return self.iter_send("responses", body)

    def send(
        self,
        endpoint: str,
        body: dict,
        on_event: Callable[[Event], None] | None = None,
        *,
        approve: Callable | None = None,
        max_steps: int = tool_loop.DEFAULT_STEPS,
    ) -> Reply:
        """Send a prepared body; on a broken stream the partial Reply rides on the exception.

        ``tools=[f, g]`` (functions, in ``chat``/``respond``'s params or the body) runs the tool
        loop: the model's calls run here and their results go back until it answers, at most
        ``max_steps`` requests; ``approve(call) -> bool`` is asked before each call.
        """
        body, toolset = tool_loop.with_functions(endpoint, body)

        def step(step_body: dict):
            reply = Reply(endpoint, step_body)
            return collect(self.iter_send(endpoint, step_body), reply, on_event), None

        if not toolset:
            return step(body)[0]
        chain = body.get("store") is not False
        return tool_loop.run(step, endpoint, body, toolset, approve, max_steps, chain, self.redact)[0]

    def models(self) -> list[dict]:
        """GET /models: the gateway's model list (``data`` of the response, each an object with an id)."""
        failure = None
        try:
            response = self._transport.request("GET", "/models", None)
        except ElkError as err:
            failure = self._redacted(err)
        if failure is not None:
            raise failure
        with response:
            return model_list(json_or_none(response.content), response.status_code)

    def _redacted(self, err: ElkError) -> ElkError:
        """Error messages quote the gateway, and some gateways quote the key back: cut it out.

        The result is detached from its chain and frames (see ``errors.detached``)."""
        for name in ("message", "detail", "request_id"):
            value = getattr(err, name, None)
            if isinstance(value, str):
                setattr(err, name, self.redact(value))
        err.args = (err.message,)
        return detached(err)

    def iter_send(self, endpoint: str, body: dict) -> Iterator[Event]:
        try:
            yield from self._stream(endpoint, body)
            return
        except ElkError as err:
            failure = self._redacted(err)
        raise failure  # outside the except block: nothing chained, no frame of the request kept

    def _stream(self, endpoint: str, body: dict) -> Iterator[Event]:
        started = time.perf_counter()
        # Images travel as placeholders (records, replay keys) until here: the bytes go on the wire.
        body = self.guard(body)[0]  # the last guard: a caller that built its own body is covered too
        response = self._transport.request("POST", dialect(endpoint).path, self.images.expand(body))
        request_id = self.redact(transport.request_id(response))
        with response:  # closed on every exit, KeyboardInterrupt and generator close included
            yield Connected(request_id, response.attempts, time.perf_counter() - started)
            content_type = response.headers.get("content-type", "").lower()
            try:
                if "text/event-stream" in content_type:
                    yield from Body(response, self.timeout).events(endpoint, self.drain_bytes, self.drain_seconds)
                else:
                    yield from whole_body(endpoint, response, request_id)
            except StreamError as err:
                err.request_id = err.request_id or request_id
                if request_id and "request id" not in err.message:
                    err.message += f" (request id {request_id})"
                raise


def collect(events: Iterator[Event], reply: Reply, on_event: Callable[[Event], None] | None = None) -> Reply:
    """Feed events into ``reply``; a break or an interrupt marks it and keeps the partial text."""
    try:
        for event in events:
            reply.add(event)
            if on_event is not None:
                on_event(event)
    except StreamError as err:
        reply.fail("interrupted", err.message)
        err.reply = reply
        raise
    except APIError as err:
        reply.fail("error", err.message)
        err.reply = reply
        raise
    except KeyboardInterrupt as err:
        reply.fail("interrupted", "interrupted by the user")
        err.reply = reply
        raise
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()  # release the connection at once, even on an interrupt
    return reply


def send_keeping_partial(
    client: Client,
    endpoint: str,
    body: dict,
    on_update: Callable[[Reply], None] | None = None,
    *,
    interrupt_ends_turn: bool = False,
) -> tuple[Reply, ElkError | None]:
    """Send ``body``; ``(reply, None)``, or on any failure ``(the partial reply, the error)``.

    The one way turns, sweeps and the CLI send: a failure never loses what arrived, and a reply
    that failed before its stream began says why. ``interrupt_ends_turn``: the kernel's interrupt
    (KeyboardInterrupt) ends this turn as interrupted instead of propagating.
    """
    reply = Reply(endpoint, body)
    on_event = (lambda _event: on_update(reply)) if on_update is not None else None
    try:
        collect(client.iter_send(endpoint, body), reply, on_event)
    except ElkError as err:
        error = err
    except KeyboardInterrupt:
        if not interrupt_ends_turn:
            raise
        error = StreamError("interrupted by the user")
    except Exception as err:  # a bug or a library's surprise: the turn still ends, recorded as failed
        error = unexpected(err, client.api_key())
    else:
        return reply, None
    if reply.status == "streaming":  # failed before the stream began (no key, a bad URL, ...)
        reply.fail("error", error.message)
    return reply, error
