"""Client: the only module that speaks HTTP (requests). Auth, timeouts, retries, errors, streaming."""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import json
import os
import random
import time
from collections.abc import Callable, Iterator
from urllib.parse import urljoin, urlsplit

import requests
import urllib3

from . import attachments, endpoints, settings, tool_bodies, tool_loop, tools, urls
from .endpoints import CHAT, RESPONSES
from .errors import APIError, ConfigError, ElkError, StreamError, detached, error_fields
from .events import Connected, Event
from .reply import Reply
from .sse import iter_events

DEFAULT_BASE_URL = "https://api.elkapi.com/v1"
DEFAULT_MODEL = "gpt-5.5"
RETRY_STATUSES = frozenset({408, 409, 429}) | frozenset(range(500, 600))
LOOPBACK = ("127.0.0.1", "localhost", "::1")


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
    ):
        self._api_key = api_key
        self.api_key_env = api_key_env
        self.base_url = (base_url or os.environ.get("ELK_BASE_URL") or DEFAULT_BASE_URL).strip().rstrip("/")
        self.model = model or os.environ.get("ELK_MODEL") or DEFAULT_MODEL
        self.timeout = settings.seconds("timeout", timeout)
        self.connect_timeout = settings.seconds("connect_timeout", connect_timeout)
        self.max_retries = settings.retries(max_retries)
        self.max_retry_after = max_retry_after
        self._http = requests.Session()  # keep-alive across cells

    # -- settings
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

    def redact(self, text: str | None) -> str | None:
        """``text`` with the key cut out: gateways echo it in messages and even in headers."""
        key = self.api_key()
        return text.replace(key, "[redacted key]") if text and key and key in text else text

    def key_fingerprint(self) -> str:
        key = self.api_key()
        if not key:
            return "not set"
        return f"…{key[-4:]}" if len(key) >= 12 else "set (too short to fingerprint)"

    def __repr__(self) -> str:
        source = "argument" if self._api_key else f"${self.api_key_env}"
        return f"Client(base_url={self.host!r}, model={self.model!r}, key={source} {self.key_fingerprint()})"

    # -- the public calls
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
        body = endpoints.chat_body(messages, model or self.model, stream, **params)
        return self.send(CHAT, body, on_event, approve=approve, max_steps=max_steps)

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
        body = endpoints.responses_body(input, model or self.model, stream, **params)
        return self.send(RESPONSES, body, on_event, approve=approve, max_steps=max_steps)

    def iter_chat(self, messages: list, model: str | None = None, stream: bool = True, **params) -> Iterator[Event]:
        """The same request as ``chat``, as an iterator of typed events."""
        return self.iter_send(CHAT, endpoints.chat_body(messages, model or self.model, stream, **params))

    def iter_respond(self, input, model: str | None = None, stream: bool = True, **params) -> Iterator[Event]:
        """The same request as ``respond``, as an iterator of typed events."""
        return self.iter_send(RESPONSES, endpoints.responses_body(input, model or self.model, stream, **params))

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
        body, toolset = _with_functions(endpoint, body)

        def step(step_body: dict):
            reply = Reply(endpoint, step_body)
            collect(self.iter_send(endpoint, attachments.expand(step_body)), reply, on_event)
            return reply, None

        if not toolset:
            return step(body)[0]
        chain = body.get("store") is not False
        return tool_loop.run(step, endpoint, body, toolset, approve, max_steps, chain, self.redact)[0]

    def models(self) -> list[dict]:
        """GET /models: the gateway's model list (``data`` of the response)."""
        try:
            response = self._request("GET", "/models", None)
        except ElkError as err:
            failure = self._redacted(err)
        else:
            failure = None
        if failure is not None:
            raise failure
        with response:
            body = _json_or_none(response.content)
        if not isinstance(body, dict):
            raise APIError("GET /models did not return JSON", status=response.status_code)
        return list(body.get("data") or [])

    def _redacted(self, err: ElkError) -> ElkError:
        """Error messages quote the gateway, and some gateways quote the key back: cut it out.

        The result is detached from its chain and frames (see ``errors.detached``)."""
        for name in ("message", "detail", "request_id"):
            value = getattr(err, name, None)
            if isinstance(value, str):
                setattr(err, name, self.redact(value))
        err.args = (err.message,)
        return detached(err)

    # -- the stream
    def iter_send(self, endpoint: str, body: dict) -> Iterator[Event]:
        try:
            yield from self._stream(endpoint, body)
            return
        except ElkError as err:
            failure = self._redacted(err)
        raise failure  # outside the except block: nothing chained, no frame of the request kept

    def _stream(self, endpoint: str, body: dict) -> Iterator[Event]:
        started = time.perf_counter()
        response = self._request("POST", endpoints.PATHS[endpoint], body)
        request_id = self.redact(_request_id(response))
        with response:  # closed on every exit, KeyboardInterrupt and generator close included
            yield Connected(response.status_code, request_id, response.attempts, time.perf_counter() - started)
            content_type = response.headers.get("content-type", "").lower()
            try:
                if "text/event-stream" in content_type:
                    yield from self._events(endpoint, response)
                else:
                    yield from _whole_body(endpoint, response, request_id)
            except StreamError as err:
                err.request_id = err.request_id or request_id
                if request_id and "request id" not in err.message:
                    err.message += f" (request id {request_id})"
                raise

    def _events(self, endpoint: str, response: requests.Response) -> Iterator[Event]:
        """The stream's events; after the terminal one (or an error event) the body is drained."""
        parser = endpoints.STREAMS[endpoint]()
        body = _Body(response, self.timeout)
        try:
            for sse in iter_events(body.chunks()):
                yield from parser.feed(sse)
                if parser.done:
                    break
        except StreamError:
            if not body.broken:  # the server said "error" and may still be finishing: let it
                body.drain(self.drain_bytes, self.drain_seconds)
            raise
        if parser.done:
            body.drain(self.drain_bytes, self.drain_seconds)
        yield from parser.end()

    def _request(self, method: str, path: str, body: dict | None) -> requests.Response:
        """One request with bounded retries, only while it provably did not reach the server or
        the server asks for one: a POST that was sent may be running, and billed, already."""
        url, data, headers = self._prepared(path, body)
        for attempt in range(1, self.max_retries + 2):
            last = attempt > self.max_retries
            try:
                response = self._send_once(method, url, data, headers)
            except requests.RequestException as err:
                not_sent = _not_sent(err)
                if not_sent is None or last:
                    raise self._transport_error(err, attempt, not_sent) from None
                time.sleep(_backoff(attempt))
                continue
            response.attempts = attempt
            if response.status_code < 300:
                return response
            if response.status_code < 400:
                raise _redirect_error(response, url)
            delay = _retry_after(response.headers)
            should = response.headers.get("x-should-retry")
            retry = should == "true" or (should != "false" and response.status_code in RETRY_STATUSES)
            too_long = delay is not None and delay > self.max_retry_after
            if retry and not last and not too_long:
                response.close()
                time.sleep(delay if delay is not None and delay > 0 else _backoff(attempt))
                continue
            raise _status_error(response, attempt, delay if too_long else None)
        raise AssertionError("unreachable: max_retries is checked to be >= 0")

    def _prepared(self, path: str, body: dict | None) -> tuple[str, bytes | None, dict]:
        """URL, strict JSON bytes and headers; a ConfigError, before anything is sent, if unusable."""
        try:
            url = urls.join(self.base_url, path)
        except urls.BadURL as err:
            raise ConfigError(f"{err} (set ELK_BASE_URL or %config ElkMagics.base_url)") from None
        if not self.api_key() and urlsplit(url).hostname not in LOOPBACK:
            raise ConfigError(
                f"No API key: set the environment variable {self.api_key_env} (never put the key in a notebook)."
            )
        headers = {"Accept": "text/event-stream" if body and body.get("stream") else "application/json"}
        if body is None:
            return url, None, headers
        return url, _json_bytes(body), {**headers, "Content-Type": "application/json"}

    def _send_once(self, method: str, url: str, data: bytes | None, headers: dict) -> requests.Response:
        try:
            return self._http.request(
                method,
                url,
                data=data,
                headers=headers,
                auth=_Bearer(self),  # also keeps ~/.netrc from replacing the key
                stream=True,
                timeout=(self.connect_timeout, self.timeout),
                allow_redirects=False,  # a redirected POST would carry the body (and key) elsewhere
            )
        except (ValueError, urllib3.exceptions.HTTPError) as err:  # requests parsing a Location it won't follow
            raise APIError(f"{self.host} sent a malformed response ({_cause(err)}); not retried") from None

    def _transport_error(self, err: requests.RequestException, attempts: int, not_sent: str | None) -> ElkError:
        if isinstance(err, (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema)):
            return ConfigError(
                f"the request could not be made ({type(err).__name__}): check the base URL and the proxy "
                "settings (HTTP_PROXY, HTTPS_PROXY); nothing was sent"
            )
        if not_sent is not None:
            return APIError(f"could not reach {self.host} after {attempts} attempts: {not_sent}")
        if isinstance(err, requests.ReadTimeout):
            return APIError(
                f"sent to {self.host}, no answer within {self.timeout:g} s; not retried (the request may "
                "be running, and billed, already): raise ElkMagics.timeout for slow models"
            )
        if isinstance(err, requests.ConnectionError):
            return APIError(
                f"the connection to {self.host} broke after the request was sent ({_cause(err)}); "
                "not retried (it may have been processed)"
            )
        return APIError(f"{self.host} sent a malformed response ({_cause(err)}); not retried")


class _Bearer(requests.auth.AuthBase):
    """Sets ``Authorization: Bearer <key>`` at send time, so no dict of ours holds the header."""

    def __init__(self, client: Client):
        self._client = client

    def __call__(self, request):
        key = self._client.api_key()
        if key:
            request.headers["Authorization"] = f"Bearer {key}"
        return request

    def __repr__(self) -> str:
        return "<Bearer [redacted]>"


def _json_bytes(body: dict) -> bytes:
    """The body as strict JSON: NaN and Infinity are not JSON, and a gateway would reject them."""
    try:
        return json.dumps(body, allow_nan=False).encode("utf-8")  # as requests itself encodes json=
    except ValueError:
        raise ConfigError(
            "the request holds NaN or Infinity, which JSON cannot carry: use a finite number; nothing was sent"
        ) from None
    except TypeError as err:
        raise ConfigError(f"the request holds a value JSON cannot carry ({err}); nothing was sent") from None


def _not_sent(err: requests.RequestException) -> str | None:
    """Why the request provably never reached the server (refused, DNS, connect timeout), or None."""
    if isinstance(err, requests.ConnectTimeout):
        return "connect timeout"
    if isinstance(err, requests.exceptions.ProxyError):  # the proxy itself was not reached
        return f"the proxy could not be reached ({_cause(err)})"
    if not isinstance(err, requests.ConnectionError) or isinstance(err, requests.ReadTimeout):
        return None
    reason = getattr(err.args[0], "reason", err.args[0]) if err.args else None
    if isinstance(reason, urllib3.exceptions.NewConnectionError):  # NameResolutionError is one too
        return _cause(reason)
    return None


def _redirect_error(response: requests.Response, url: str) -> APIError:
    location = response.headers.get("location")
    response.close()
    try:
        target = urls.shown(urljoin(url, location)) if location else "nowhere (no Location header)"
    except ValueError:
        target = "a malformed Location header"
    return APIError(
        f"the gateway redirects to {target}; requests are not followed there (the body and the key would "
        "go along): set the base URL to the final address",
        status=response.status_code,
        request_id=_request_id(response),
    )


def _with_functions(endpoint: str, body: dict) -> tuple[dict, dict]:
    """(the body with tool definitions, {name: Tool}) when ``tools`` holds Python functions."""
    given = body.get("tools")
    if not isinstance(given, list) or not any(callable(t) for t in given):
        return body, {}
    if not all(callable(t) for t in given):
        raise ConfigError("tools: give Python functions or JSON tool definitions, not both")
    try:
        toolset = {t.name: t for t in map(tools.tool_of, given)}
    except ValueError as err:
        raise ConfigError(str(err)) from None
    return {**body, "tools": tool_bodies.definitions(toolset.values(), endpoint)}, toolset


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


_TRANSPORT_ERRORS = (urllib3.exceptions.HTTPError, requests.RequestException, OSError)


class _Body:
    """An event-stream body: its chunks as they arrive, then (after the terminal event) its drain."""

    def __init__(self, response: requests.Response, timeout: float) -> None:
        self.response = response
        self.timeout = timeout
        self.broken = False  # the transport failed: nothing left to drain

    def chunks(self) -> Iterator[bytes]:
        try:
            yield from _chunks(self.response, self.timeout)
        except StreamError:
            self.broken = True
            raise

    def drain(self, max_bytes: int, seconds: float) -> None:
        """Read on to the body's end, at most ``max_bytes`` for at most ``seconds``; then it is closed.

        Servers finish their work after the last event: Llama Stack stores a response (the one a
        later ``previous_response_id`` names) only when its stream generator ends, and cancels the
        store when the client hangs up first; proxies log or bill after ``[DONE]`` (issue 12).
        The reply is already whole here, so a slow or broken tail is dropped, never an error.
        """
        raw = self.response.raw
        sock = getattr(getattr(raw, "connection", None), "sock", None)
        previous = sock.gettimeout() if sock is not None else None
        deadline = time.monotonic() + seconds
        left = max_bytes
        try:
            while left > 0 and hasattr(raw, "read1"):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                if sock is not None:  # one read may wait only until the deadline
                    sock.settimeout(remaining if previous is None else min(remaining, previous))
                chunk = raw.read1(min(65536, left), decode_content=True)
                if not chunk:
                    return  # the end of the body: the server has finished
                left -= len(chunk)
        except _TRANSPORT_ERRORS:
            return
        finally:
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.settimeout(previous)


def _chunks(response: requests.Response, timeout: float) -> Iterator[bytes]:
    """Body bytes as they arrive, for chunked and close-delimited bodies alike.

    ``iter_content`` waits for EOF on close-delimited bodies (FORMATS.md §2.5); urllib3's
    ``read1`` returns whatever has arrived.
    """
    raw = response.raw
    try:
        if hasattr(raw, "read1"):
            while True:
                chunk = raw.read1(65536, decode_content=True)
                if not chunk:
                    return
                yield chunk
        else:  # pragma: no cover - urllib3 < 2
            yield from response.iter_content(chunk_size=None)
    except (urllib3.exceptions.ReadTimeoutError, requests.Timeout):
        raise StreamError(f"the stream stalled: no data for {timeout:g} s") from None
    except _TRANSPORT_ERRORS as err:
        raise StreamError(f"the connection broke mid-stream: {_cause(err)}") from None


def _whole_body(endpoint: str, response: requests.Response, request_id: str | None) -> Iterator[Event]:
    """A 200 that is not a stream: a gateway ignoring ``stream``, an error body, or an HTML page."""
    raw = b"".join(_chunks(response, 0))
    body = _json_or_none(raw)
    if not isinstance(body, dict):
        raise APIError(
            f"expected JSON or an event stream, got {response.headers.get('content-type') or 'no content type'}: {_excerpt(raw)}",
            status=response.status_code,
            request_id=request_id,
        )
    fields = error_fields(body)
    if fields is not None:
        raise APIError(fields.pop("message"), status=response.status_code, request_id=request_id, **fields)
    yield from endpoints.FROM_BODY[endpoint](body)


def _status_error(response: requests.Response, attempts: int, retry_after: float | None) -> APIError:
    try:
        raw = response.content
    except (requests.RequestException, urllib3.exceptions.HTTPError):
        raw = b""
    finally:
        response.close()
    body = _json_or_none(raw)
    fields = error_fields(body) or {"message": _excerpt(raw) or response.reason or "no body"}
    message = fields.pop("message")
    if attempts > 1:
        message += f" (after {attempts} attempts)"
    if retry_after is not None:
        message += f"; the server asks to retry after {retry_after:g} s, more than the limit, so not retried"
    return APIError(
        message,
        status=response.status_code,
        request_id=_request_id(response),
        retry_after=_retry_after(response.headers),
        **fields,
    )


def _json_or_none(raw: bytes):
    import json

    try:
        # DeepSeek sends blank lines before a non-streamed body; a BOM is possible too.
        return json.loads(raw.decode("utf-8-sig").strip())
    except ValueError:
        return None


def _excerpt(raw: bytes, limit: int = 200) -> str:
    """One line of text from an error body; HTML pages are reduced to their <title> or text."""
    import re

    text = raw.decode("utf-8", errors="replace")
    title = re.search(r"<title[^>]*>(.*?)</title>", text, re.I | re.S)
    if title:
        text = title.group(1)
    else:
        text = re.sub(r"<[^>]+>", " ", text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _request_id(response: requests.Response) -> str | None:
    return response.headers.get("x-request-id") or response.headers.get("request-id")


def _retry_after(headers) -> float | None:
    """Seconds from ``retry-after-ms``, ``retry-after`` (seconds) or ``retry-after`` (HTTP date)."""
    try:
        return float(headers["retry-after-ms"]) / 1000
    except (KeyError, ValueError, TypeError):
        pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        parsed = email.utils.parsedate_tz(value)
        return max(0.0, email.utils.mktime_tz(parsed) - time.time()) if parsed else None


def _backoff(attempt: int) -> float:
    """Exponential backoff with jitter: 0.5 s, 1 s, 2 s … capped at 8 s, less up to 25 %."""
    return min(0.5 * 2 ** (attempt - 1), 8.0) * (1 - 0.25 * random.random())


def _cause(err: BaseException) -> str:
    """The innermost reason of a transport error, without the URL (it may carry secrets)."""
    text = str(err)
    for marker in (
        "Connection refused",
        "timed out",
        "Connection reset",
        "Name or service not known",
        "Remote end closed",
        "IncompleteRead",
        "Connection aborted",
        "InvalidChunkLength",
    ):
        if marker.lower() in text.lower():
            return marker.lower()
    return type(err).__name__
