"""Kept-alive connections: whether a request went out on one, and the one resend when the server had
closed it without a byte of answer. ``transport`` sends through ``resending`` on a ``session()``.

A server closes a connection it keeps alive whenever it likes: an idle timeout (5 s in cpp-httplib
and uvicorn), a request count, or, as llama-server does, right after every streamed response though
that response advertised keep-alive (its content provider ends the stream by returning false, which
cpp-httplib takes for a failed write: the connection is shut a few milliseconds after the last
chunk). urllib3's check that a pooled connection is still open cannot see a close on its way: the
next request goes out and meets it, and the server either never reads it or reads it only to
discard it (cpp-httplib drains a socket before closing it), then the client gets EOF or a reset
instead of a status line. Browsers resend in exactly this case, POST included (Chromium:
HttpNetworkTransaction::ShouldResendRequest; RFC 9112 §9.3.1), and so does this module, once and
on a new connection. A new connection closed without an answer, a timeout, or any break after a
byte of the answer is not this case: the request may be running, and billed, so it is not resent.
"""

from __future__ import annotations

import functools
import threading

import requests
import requests.adapters
import urllib3

# This thread's send: did it go out on a kept-alive connection (``reused``); must it take a new one (``fresh``)?
_CONNECTION = threading.local()


def session(connections: int = requests.adapters.DEFAULT_POOLSIZE) -> requests.Session:
    """A requests session whose direct connections tell ``resending`` whether they were kept alive,
    keeping up to ``connections`` of them per host (requests sent at once from several threads)."""
    http = requests.Session()
    for prefix in ("http://", "https://"):
        http.mount(prefix, _Adapter(pool_maxsize=max(connections, requests.adapters.DEFAULT_POOLSIZE)))
    return http


def prepared(http: requests.Session, method: str, url: str, data: bytes | None, headers: dict):
    """The request ``http.request(method, url, data=data, headers=headers)`` would prepare, without its
    per-request merging (hooks, environment, auth: the caller's): the session's default headers under
    ``headers``, the URL quoted as requests quotes it, the body's Content-Length, the session's cookies
    (``kept_cookies`` stores them)."""
    request = requests.PreparedRequest()
    request.method, request.url, request.body = method, _quoted(url), data
    request.headers = requests.structures.CaseInsensitiveDict(http.headers)
    request.headers.update(headers)
    if data is not None:
        if data:  # as requests: an empty body goes chunked
            request.headers["Content-Length"] = str(len(data))
    elif method not in ("GET", "HEAD"):
        request.headers["Content-Length"] = "0"
    if http.cookies:  # what the gateway set (a load balancer's affinity cookie) goes back, as Session.request does
        cookie = requests.cookies.get_cookie_header(http.cookies, request)
        if cookie:
            request.headers["Cookie"] = cookie
    return request


def kept_cookies(http: requests.Session, request, response: requests.Response) -> None:
    """The cookies ``response`` sets, kept in the session for the next requests, as Session.request keeps them."""
    if "set-cookie" in response.headers:
        requests.cookies.extract_cookies_to_jar(http.cookies, request, response.raw)


@functools.lru_cache(maxsize=64)  # a client asks for the same few URLs; a failure is not cached: it raises again
def _quoted(url: str) -> str:
    request = requests.PreparedRequest()
    request.prepare_url(url, None)
    return request.url


def resending(send, *args, **kwargs) -> requests.Response:
    """``send(*args, **kwargs)`` (an adapter's ``send``), and once more, on a new connection, if the
    kept-alive connection it went out on was closed by the server without a byte of answer."""
    try:
        return _once(send, *args, **kwargs)
    except requests.ConnectionError as err:
        if not closed_unanswered(err):
            raise
    _CONNECTION.fresh = True
    try:
        return _once(send, *args, **kwargs)
    finally:
        _CONNECTION.fresh = False


def _once(send, *args, **kwargs) -> requests.Response:
    _CONNECTION.reused = False  # set by a ``_Kept`` pool as it hands out the connection (a proxy's is not one)
    return send(*args, **kwargs)


def closed_unanswered(err: requests.RequestException) -> bool:
    """Whether the request went out on a kept-alive connection that the server closed (EOF before a
    status line, reset, broken pipe) before a byte of the answer: the adapter's ``send`` with
    ``stream=True`` returns once the headers are in, so any break it raises came before the body."""
    if not getattr(_CONNECTION, "reused", False):
        return False
    reason = err.args[0] if err.args else None
    if isinstance(reason, urllib3.exceptions.ProtocolError) and len(reason.args) > 1:
        reason = reason.args[1]  # ProtocolError("Connection aborted.", RemoteDisconnected(...))
    # http.client.RemoteDisconnected, EOF where the status line should be, is a ConnectionResetError
    return isinstance(reason, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError))


class _Kept:
    """A urllib3 pool that records, for this thread, whether the connection it hands out is a kept-alive
    one (open, used before, not seen closed by the server) or a new one."""

    def _get_conn(self, timeout=None):
        conn = super()._get_conn(timeout)  # a pooled connection seen closed by the server is reset here
        if conn.sock is not None and getattr(_CONNECTION, "fresh", False):
            conn.close()  # the resend: not on another idle connection, which may be as stale
        _CONNECTION.reused = conn.sock is not None
        return conn


class _HTTPPool(_Kept, urllib3.HTTPConnectionPool):
    pass


class _HTTPSPool(_Kept, urllib3.HTTPSConnectionPool):
    pass


class _Adapter(requests.adapters.HTTPAdapter):
    """requests' adapter with ``_Kept`` pools for direct connections (a proxy's pools are requests' own)."""

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
