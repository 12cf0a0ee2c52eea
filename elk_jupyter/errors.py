"""The package's one error hierarchy: every failure a user can act on is an ElkError."""

from __future__ import annotations


class ElkError(Exception):
    """Base of every error elk-jupyter raises on purpose.

    ``str(err)`` is one line a user can act on. ``_render_traceback_`` makes IPython print just
    that line (no 40-line traceback) while the cell still fails, so Run All stops.
    """

    def __init__(self, message: str):
        message = " ".join(message.split())  # one line, even when a gateway's message has several
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self.message}"]


class ConfigError(ElkError):
    """The set-up is wrong: no API key, a bad base URL, an unknown option."""


class APIError(ElkError):
    """The gateway answered with an error: an HTTP status >= 400, or an error body in a 200.

    Every field is optional because gateways disagree on the shape (OpenAI's is
    https://platform.openai.com/docs/guides/error-codes; see ``error_fields`` for the others).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ):
        self.status = status
        self.type = type
        self.code = code
        self.param = param
        self.request_id = request_id
        self.retry_after = retry_after
        self.detail = message
        super().__init__(_one_line(message, status, type, code, request_id))


class StreamError(ElkError):
    """A stream broke after it started: cut, stalled, malformed, or an error frame mid-stream.

    ``reply`` holds what arrived before the break (status "interrupted" or "error"), so the
    partial answer is never lost. Never retried: the first bytes may already be on screen.
    """

    def __init__(self, message: str, *, reply=None, request_id: str | None = None, **fields):
        self.reply = reply
        self.request_id = request_id
        self.fields = fields
        super().__init__(message if not request_id else f"{message} (request id {request_id})")


class InternalError(ElkError):
    """Something nobody planned for (a bug here or in a library), caught at the turn's boundary.

    Raised instead of the original so no traceback, in any ``%xmode``, prints frame locals that
    may hold the key; the type name and a redacted first line say what happened.
    """


def unexpected(err: BaseException, secret: str | None) -> InternalError:
    """An InternalError naming ``err``'s type; its text without ``secret`` or any URL."""
    import re

    from elk_jupyter.redaction import redact

    try:
        said = str(err)
    except Exception:  # an exception whose __str__ raises still becomes one line
        said = ""
    text = redact(said, secret).split("\n", 1)[0][:200]  # redacted before the cut
    text = re.sub(r"\b[a-zA-Z][\w+.-]*://\S+", "<url>", text)  # URLs may carry tokens
    return InternalError(
        f"unexpected {type(err).__name__}" + (f": {text}" if text else "") + " (a bug: please report it)"
    )


def detached(err: ElkError) -> ElkError:
    """``err`` alone: no chained exception and no traceback frames, whose locals may hold the key.

    Raise the result outside any ``except`` block, or Python chains the handled exception again.
    """
    err.__cause__ = None
    err.__context__ = None
    err.__suppress_context__ = True
    err.__traceback__ = None
    return err


class HistoryError(ElkError):
    """Saved history that cannot be rebuilt as it happened: a cycle, a missing parent, two turns
    with one id, or a turn that does not exist. The message names the turn."""


def _one_line(message, status, type_, code, request_id) -> str:
    head = f"HTTP {status}" if status is not None else "Gateway error"
    tags = ", ".join(t for t in (type_, code) if t and t != "None")
    parts = [head + (f" [{tags}]" if tags else "") + ": " + (message or "no message")]
    if request_id:
        parts.append(f"(request id {request_id})")
    return " ".join(parts)


def error_fields(body: object) -> dict | None:
    """Normalise a gateway error body to ``{message, type, code, param}``, or None if it is none.

    Covers the shapes gateways send (tests/test_faults.py has one of each): OpenAI/vLLM/LiteLLM ``{"error": {...}}`` (code
    as str, int or the string "None"), old vLLM/SGLang ``{"object": "error", ...}``, a flat
    Responses ``{"type": "error", ...}``, ``response.failed``, ``{"error": "text"}`` and FastAPI's
    ``{"detail": "..."}`` or ``{"detail": [{"loc", "msg"}]}``.
    """
    if not isinstance(body, dict):
        return None
    err = body.get("error")
    if body.get("type") == "response.failed":
        response = body.get("response")
        err = response.get("error") if isinstance(response, dict) else None
        err = err if isinstance(err, dict) and err else {"message": err or "the response failed"}
    elif isinstance(err, str) and err:
        err = {"message": err}
    elif not (isinstance(err, dict) and err):
        if body.get("object") == "error" or body.get("type") == "error":
            err = body
        elif "detail" in body and len(body) <= 2:
            err = {"message": _detail_text(body["detail"])}
        else:
            return None
    return {
        "message": str(err.get("message") or err.get("msg") or "unknown error"),
        "type": _clean(err.get("type")) if err is not body or body.get("type") != "error" else None,
        "code": _clean(err.get("code")),
        "param": _clean(err.get("param")),
    }


def _clean(value) -> str | None:
    # LiteLLM stringifies missing values as "None"; vLLM sends the HTTP status as an int code.
    if value is None or value == "None" or value == "":
        return None
    return str(value)


def _detail_text(detail) -> str:
    if not isinstance(detail, list):
        return str(detail)
    return "; ".join(_detail_item(d) for d in detail)


def _detail_item(item) -> str:
    # FastAPI 422: {"loc": ["body", "model"], "msg": "field required", "type": "missing"}
    if not isinstance(item, dict):
        return str(item)
    loc = item.get("loc")
    where = ".".join(map(str, loc)) if isinstance(loc, list) else ("" if loc is None else str(loc))
    message = item.get("msg", item)
    return f"{where}: {message}" if where else str(message)
