"""The gateway's base URL: what makes one usable, how a path joins it, and how it may be shown.

Pure and stdlib-only, so the magics can validate ``%config ElkMagics.base_url`` without
importing requests. Every message here names the problem, never the URL itself: a URL can
carry a password or a token in its query.
"""

from __future__ import annotations

import functools
from urllib.parse import SplitResult, urlsplit


class BadURL(ValueError):
    """The base URL cannot be used; the message quotes no part of it that may hold a secret."""


def check(url: str) -> SplitResult:
    """The parts of a usable base URL: http(s), a host, no ``user:password@``, a valid port."""
    try:
        parts = urlsplit(url.strip())
        if parts.port is not None and parts.port <= 0:  # .port raises on a non-numeric or too large port
            raise ValueError("port out of range")
    except ValueError as err:
        raise BadURL(f"the base URL is malformed ({_reason(err)}); expected http(s)://host[:port]/path") from None
    if parts.scheme not in ("http", "https"):
        raise BadURL("the base URL must start with http:// or https://, e.g. https://api.elkapi.com/v1")
    if not parts.hostname:
        raise BadURL("the base URL has no host; expected http(s)://host[:port]/path")
    if parts.username is not None or parts.password is not None:
        # requests would turn them into Basic auth and silently drop the Bearer key; they would
        # also be shown wherever the URL is. Refuse rather than guess which credential is meant.
        raise BadURL(
            "the base URL carries user:password@ credentials: remove them "
            "(the key is read from the environment and sent as a Bearer token)"
        )
    return parts


@functools.lru_cache(maxsize=64)  # pure, and asked for on every request
def join(url: str, path: str) -> str:
    """``path`` appended to the base URL's path; its query (Azure's ``?api-version=``) is kept."""
    parts = check(url)
    joined = parts.path.rstrip("/") + "/" + path.lstrip("/")
    return parts._replace(path=joined, fragment="").geturl()


@functools.lru_cache(maxsize=64)  # pure, and asked for on every request
def host(url: str) -> str:
    """host[:port], what records and messages name; empty for an unusable URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ""
    if not parts.hostname:
        return ""
    name = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return name + (f":{port}" if port else "")


@functools.lru_cache(maxsize=64)  # pure, and asked for on every request
def origin(url: str) -> str:
    """host[:port] and path (no credentials, no query): which gateway, for the replay cache."""
    try:
        path = urlsplit(url).path.rstrip("/")
    except ValueError:
        path = ""
    return host(url) + path


def shown(url: str) -> str:
    """The URL as messages may show it: scheme, host, port and path; no credentials or query."""
    try:
        scheme = urlsplit(url).scheme
    except ValueError:
        return "(malformed URL)"
    return f"{scheme}://{origin(url)}" if host(url) else "(malformed URL)"


def _reason(err: ValueError) -> str:
    text = str(err).lower()
    if "port" in text:
        return "invalid port"
    if "ipv6" in text:
        return "invalid IPv6 address"
    return "cannot be parsed"
