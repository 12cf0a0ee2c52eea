"""The static form of a turn: inert Markdown and plain text for saved notebooks, nbconvert, GitHub.

JupyterLab does not sanitize outputs made in the running session, so model text must be inert
before it enters a Markdown output. Outside code blocks every character that can start HTML or
an entity is backslash-escaped (CommonMark: any ASCII punctuation may be), and script-capable
link schemes are defused. Code blocks are re-fenced with a fence longer than any backtick run
inside them, so their content can never close the fence and escape into HTML. Pure.
"""

from __future__ import annotations

import re

from .session import usage_numbers

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_HTML_START = re.compile(r"([<&])")
_SCHEME = re.compile(r"(?i)\b(javascript|vbscript|livescript)(\s*):|\bdata:(?=\S)")

STATUS_WORDS = {"completed": "done", "incomplete": "incomplete", "interrupted": "interrupted", "error": "error"}


def inert_markdown(text: str) -> str:
    """Markdown that renders the model's text but can run nothing."""
    out: list[str] = []
    code: list[str] | None = None
    marker = ""
    info = ""
    for line in text.split("\n"):
        if code is None:
            opening = _FENCE.match(line)
            if opening:
                marker, info = opening.group(1), line[opening.end() :].strip()
                code = []
            else:
                out.append(_escape(line))
        elif line.strip().startswith(marker[0] * len(marker)) and not line.strip().strip(marker[0]):
            out.extend(_fenced(code, info))
            code = None
        else:
            code.append(line)
    if code is not None:  # an unclosed block (a stream cut mid-code) still closes safely
        out.extend(_fenced(code, info))
    return "\n".join(out)


def _escape(line: str) -> str:
    line = _HTML_START.sub(r"\\\1", line)
    return _SCHEME.sub(lambda m: f"unsafe-{m.group(1)}{m.group(2)}:" if m.group(1) else "unsafe-data:", line)


def _fenced(lines: list[str], info: str) -> list[str]:
    longest = max((len(run) for line in lines for run in re.findall(r"`+", line)), default=0)
    fence = "`" * max(3, longest + 1)
    language = re.sub(r"[^\w+-]", "", info.split()[0]) if info else ""
    return [fence + language, *lines, fence]


def usage_line(reply) -> str:
    numbers = usage_numbers(reply.usage)
    parts = []
    if reply.usage:
        parts.append(f"{numbers['prompt']} prompt" + (f" ({numbers['cached']} cached)" if numbers["cached"] else ""))
        parts.append(
            f"{numbers['completion']} completion"
            + (f" ({numbers['reasoning']} reasoning)" if numbers["reasoning"] else "")
        )
    if reply.ttft is not None:
        parts.append(f"first token {reply.ttft:.2f} s")
    if reply.total is not None:
        parts.append(f"total {reply.total:.2f} s")
    return " · ".join(parts)


def _header(reply, header: dict) -> str:
    status = "replayed" if header.get("replayed") else STATUS_WORDS.get(reply.status, reply.status)
    model = reply.model or header.get("model_asked") or "?"
    turn = f" · turn {header['turn']}" if header.get("turn") else ""
    if header.get("origin") == "regenerated":  # a re-run that sampled again instead of replaying
        status += " · regenerated"
    return f"{header.get('endpoint', reply.endpoint)} · {header.get('conversation', '')} · {model} · {status}{turn}"


def static_markdown(reply, header: dict) -> str:
    """The turn as Markdown: header, reasoning folded in <details>, the answer, usage, errors."""
    parts = [f"*{_escape(_header(reply, header))}*", ""]
    if reply.reasoning:
        parts += ["<details><summary>Reasoning</summary>", "", inert_markdown(reply.reasoning), "", "</details>", ""]
    parts.append(inert_markdown(reply.text))
    for choice in reply.choices[1:]:
        parts += ["", f"**choice {choice.index}**", "", inert_markdown(choice.text)]
    for call in reply.tool_calls:
        name = _escape(call["function"].get("name") or "?")
        parts += [
            "",
            f"**tool call** `{name}`",
            "",
            *_fenced(call["function"].get("arguments", "").split("\n"), "json"),
        ]
    if reply.error:
        parts += ["", f"**{_escape(reply.status)}:** {_escape(reply.error)}"]
    line = usage_line(reply)
    if line:
        parts += ["", f"*{line}*"]
    return "\n".join(parts)


def static_text(reply, header: dict) -> str:
    """The turn as plain text (terminals, text-only viewers)."""
    parts = [f"[{_header(reply, header)}]"]
    if reply.reasoning:
        parts += ["(reasoning) " + reply.reasoning, "---"]
    parts.append(reply.text)
    if reply.error:
        parts.append(f"[{reply.status}: {reply.error}]")
    line = usage_line(reply)
    if line:
        parts.append(f"[{line}]")
    return "\n".join(parts)
