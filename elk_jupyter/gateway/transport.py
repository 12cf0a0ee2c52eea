"""One HTTP request to the gateway (requests): the prepared body and headers, auth at send time,
bounded retries only while a request provably did not reach the server, and the errors a user can
act on (status, gateway code and message, request id). The only module besides ``client`` that
imports requests; ``client`` streams what this returns. One resend is not a retry: ``keepalive``.
"""

from __future__ import annotations

import contextlib
import email.utils
import functools
import json
import os
import random
import re
import socket
import threading
import time
import weakref
from urllib.parse import urljoin, urlsplit

import requests
import urllib3

from elk_jupyter.errors import APIError, ConfigError, ElkError, error_fields
from elk_jupyter.gateway import keepalive, urls

_READING: weakref.WeakValueDictionary = weakref.WeakValueDictionary()  # thread id -> the response it streams


def abort(thread_id: int) -> bool:
    """Shut, from another thread, the connection thread ``thread_id`` is reading a response from,
    so a read blocked on a silent server returns at once (the chat panel's Stop): the reader sees
    the stream end and keeps the reply, interrupted. A response read to its end has released its
    connection (to the pool, for the next request): nothing is shut then."""
    response = _READING.pop(thread_id, None)
    sock = getattr(getattr(getattr(response, "raw", None), "connection", None), "sock", None)
    if sock is None:
        return False
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    return True


RETRY_STATUSES = frozenset({408, 409, 429}) | frozenset(range(500, 600))
# What requests reads from the environment for an http(s) URL (select_proxy, merge_environment_settings):
# cheap to read; requests itself scans the whole environment twice per request (getproxies_environment),
# ~1 ms with a large one: a third of an experiment run's CPU (bench/experiment_throughput.py).
ENVIRONMENT = tuple(
    spelling for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy") for spelling in (name, name.upper())
) + ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class Transport:
    """Requests for one ``Client`` (its settings are read at each request), over one keep-alive session."""

    def __init__(self, client) -> None:
        self.client = client
        self._http = keepalive.session(client.connections)  # keep-alive across cells
        self._http.trust_env = False  # the environment's proxies and CA bundle: _environment_settings

    def request(self, method: str, path: str, body: dict | None) -> requests.Response:
        """One request with bounded retries, only while it provably did not reach the server or
        the server asks for one: a POST that was sent may be running, and billed, already."""
        url, data, headers = self._prepared(path, body)
        for attempt in range(1, self.client.max_retries + 2):
            last = attempt > self.client.max_retries
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
                _READING[threading.get_ident()] = response
                return response
            if response.status_code < 400:
                raise _redirect_error(response, url)
            delay = _retry_after(response.headers)
            should = response.headers.get("x-should-retry")
            retry = should == "true" or (should != "false" and response.status_code in RETRY_STATUSES)
            too_long = delay is not None and delay > self.client.max_retry_after
            if retry and not last and not too_long:
                response.close()
                time.sleep(delay if delay is not None and delay > 0 else _backoff(attempt))
                continue
            raise _status_error(response, attempt, delay if too_long else None)
        raise AssertionError("unreachable: max_retries is checked to be >= 0")

    def _prepared(self, path: str, body: dict | None) -> tuple[str, bytes | None, dict]:
        """URL, strict JSON bytes and headers; a ConfigError, before anything is sent, if unusable."""
        try:
            url = urls.join(self.client.base_url, path)
        except urls.BadURL as err:
            raise ConfigError(f"{err} (set ELK_BASE_URL or %config ElkMagics.base_url)") from None
        if not self.client.api_key() and urlsplit(url).hostname not in LOOPBACK:
            raise ConfigError(
                f"No API key: set the environment variable {self.client.api_key_env} (never put the key in a notebook)."
            )
        headers = {"Accept": "text/event-stream" if body and body.get("stream") else "application/json"}
        if body is None:
            return url, None, headers
        return url, _json_bytes(body), {**headers, "Content-Type": "application/json"}

    def _send_once(self, method: str, url: str, data: bytes | None, headers: dict) -> requests.Response:
        proxies, verify = _environment_settings(tuple(map(os.environ.get, ENVIRONMENT)), url)
        response = None
        try:
            # The session's adapter, not Session.request, which merges settings, cookies, hooks and the
            # environment on every request (~40% of an experiment run's CPU, under the GIL). The adapter
            # keeps proxies, TLS, timeouts, the pools (``keepalive``) and the mapping of urllib3's errors;
            # it follows no redirect (a redirected POST would carry the body, and the key, elsewhere).
            request = keepalive.prepared(self._http, method, url, data, headers)  # what requests prepares
            _Bearer(self.client)(request)  # at send time; ~/.netrc is never read
            send, timeout = self._http.get_adapter(url).send, (self.client.connect_timeout, self.client.timeout)
            response = keepalive.resending(send, request, stream=True, timeout=timeout, verify=verify, proxies=proxies)
            keepalive.kept_cookies(self._http, request, response)
            if response.is_redirect:  # a Location requests could not parse stays a malformed response
                urlsplit(urljoin(url, response.headers["location"]))
            return response
        except (ValueError, urllib3.exceptions.HTTPError) as err:
            if response is not None:
                response.close()
            raise APIError(f"{self.client.host} sent a malformed response ({cause(err)}); not retried") from None

    def _transport_error(self, err: requests.RequestException, attempts: int, not_sent: str | None) -> ElkError:
        if isinstance(err, (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema)):
            return ConfigError(
                f"the request could not be made ({type(err).__name__}): check the base URL and the proxy "
                "settings (HTTP_PROXY, HTTPS_PROXY); nothing was sent"
            )
        if not_sent is not None:
            return APIError(f"could not reach {self.client.host} after {attempts} attempts: {not_sent}")
        if isinstance(err, requests.ReadTimeout):
            return APIError(
                f"sent to {self.client.host}, no answer within {self.client.timeout:g} s; not retried (the request may "
                "be running, and billed, already): raise ElkMagics.timeout for slow models"
            )
        if isinstance(err, requests.ConnectionError):
            return APIError(
                f"the connection to {self.client.host} broke after the request was sent ({cause(err)}); "
                "not retried (it may have been processed)"
            )
        return APIError(f"{self.client.host} sent a malformed response ({cause(err)}); not retried")


class _Bearer(requests.auth.AuthBase):
    """Sets ``Authorization: Bearer <key>`` at send time, so no dict of ours holds the header."""

    def __init__(self, client):
        self._client = client

    def __call__(self, request):
        key = self._client.api_key()
        if key:
            request.headers["Authorization"] = f"Bearer {key}"
        return request

    def __repr__(self) -> str:
        return "<Bearer [redacted]>"


@functools.lru_cache(maxsize=16)
def _environment_settings(seen: tuple, url: str) -> tuple[dict, object]:
    """(proxies, verify) as requests derives them from the environment for ``url``, once per value
    of ``seen`` (the variables it reads): shared by every session (an experiment's workers)."""
    found = requests.Session().merge_environment_settings(url, {}, True, None, None)
    return dict(found["proxies"]), found["verify"]


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
        return f"the proxy could not be reached ({cause(err)})"
    if not isinstance(err, requests.ConnectionError) or isinstance(err, requests.ReadTimeout):
        return None
    reason = getattr(err.args[0], "reason", err.args[0]) if err.args else None
    if isinstance(reason, urllib3.exceptions.NewConnectionError):  # NameResolutionError is one too
        return cause(reason)
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
        request_id=request_id(response),
    )


def _status_error(response: requests.Response, attempts: int, retry_after: float | None) -> APIError:
    try:
        raw = response.content
    except (requests.RequestException, urllib3.exceptions.HTTPError):
        raw = b""
    finally:
        response.close()
    body = json_or_none(raw)
    fields = error_fields(body) or {"message": excerpt(raw) or response.reason or "no body"}
    message = fields.pop("message")
    if attempts > 1:
        message += f" (after {attempts} attempts)"
    if retry_after is not None:
        message += f"; the server asks to retry after {retry_after:g} s, more than the limit, so not retried"
    return APIError(
        message,
        status=response.status_code,
        request_id=request_id(response),
        retry_after=_retry_after(response.headers),
        **fields,
    )


def json_or_none(raw: bytes):
    try:
        # DeepSeek sends blank lines before a non-streamed body; a BOM is possible too.
        return json.loads(raw.decode("utf-8-sig").strip())
    except ValueError:
        return None


def excerpt(raw: bytes, limit: int = 200) -> str:
    """One line of text from an error body; HTML pages are reduced to their <title> or text."""
    text = raw.decode("utf-8", errors="replace")
    title = re.search(r"<title[^>]*>(.*?)</title>", text, re.I | re.S)
    if title:
        text = title.group(1)
    else:
        text = re.sub(r"<[^>]+>", " ", text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def request_id(response: requests.Response) -> str | None:
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


def cause(err: BaseException) -> str:
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
