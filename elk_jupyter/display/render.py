"""The static form of a finished turn: the inert Markdown copy and the plain-text copy that go beside
the record in the output (what VS Code, Colab, GitHub, nbviewer, nbconvert show). Pure.

Model text goes through `markdown_copy.inert_markdown`; every string from the server (model name,
error message, tool name) through `escape_inline` or an exact code span, so none of it can become
HTML, an entity or a link. The only HTML is ours: the `<details>` that folds the reasoning.
"""

from __future__ import annotations

import math

from elk_jupyter.display.header import TurnHeader
from elk_jupyter.display.markdown_copy import escape_inline, fenced, inert_markdown
from elk_jupyter.display.markdown_inline import code_span
from elk_jupyter.gateway.usage import Usage
from elk_jupyter.media.audio import size_words
from elk_jupyter.tools.loop import shown_calls

STATUS_WORDS = {"completed": "done", "incomplete": "incomplete", "interrupted": "interrupted", "error": "error"}

__all__ = [
    "STATUS_WORDS",
    "footer_items",
    "inert_markdown",
    "shown_status",
    "static_markdown",
    "static_text",
    "usage_line",
]


def shown_status(status: str, replayed: bool) -> str:
    """The status every view shows (panel, saved view, Markdown, terminal): "replayed" for a
    finished turn served from a record. Decided here only; the panel gets it as ``badge``."""
    return "replayed" if replayed and status in ("completed", "incomplete") else status


def footer_items(usage, timing: dict | None, context: str = "") -> list[list[str]]:
    """The panel's footer as [label, value] pairs: tokens, timings, speed, the context note.

    Sent as data (the Panel's ``footer`` trait, VIEW's ``footer``) so the front-end draws it
    without recomputing; the token parts are ``Usage``'s, the one formatting of usage.
    """
    tokens = Usage.of(usage)
    items = [list(item) for item in tokens.items()]
    timing = timing or {}
    ttft, total = _seconds(timing.get("ttft")), _seconds(timing.get("total"))
    items += [["first token", _shown(ttft)], ["total", _shown(total)]]
    generating = total - ttft if total is not None and ttft is not None else None
    if tokens.completion and generating and generating > 0:
        items.append(["speed", f"{tokens.completion / generating:.1f} tok/s"])
    if context:
        items.append(["context", context])
    return items


def _seconds(value) -> float | None:
    return (
        float(value)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        else None
    )


def _shown(value: float | None) -> str:
    return f"{value:.2f} s" if value is not None else "–"


def usage_line(reply) -> str:
    """The footer: token counts (``Usage.describe``, shared with the terminal and ``%elk usage``), timings."""
    tokens = Usage.of(reply.usage).describe()
    parts = [tokens] if tokens else []
    if reply.ttft is not None:
        parts.append(f"first token {reply.ttft:.2f} s")
    if reply.total is not None:
        parts.append(f"total {reply.total:.2f} s")
    return " · ".join(parts)


def audio_line(audio: object) -> str:
    """``audio: 2.4 s pcm16 clip, 113 KB (in the notebook)``: what a copy that cannot play it says."""
    if not isinstance(audio, dict):
        return ""
    duration = audio.get("duration")
    length = f"{duration:.1f} s " if isinstance(duration, int | float) and not isinstance(duration, bool) else ""
    size = audio.get("size")
    size = f", {size_words(size)}" if isinstance(size, int) and not isinstance(size, bool) else ""
    kept = "in the notebook" if audio.get("data") else f"file {audio.get('file')} beside the notebook"
    return f"audio: {length}{audio.get('format') or '?'} clip{size} ({kept}); the transcript is the text above"


def _header(reply, header: TurnHeader) -> list[str]:
    shown = shown_status(reply.status, header.replayed)
    status = STATUS_WORDS.get(shown, shown)
    model = reply.model or header.model_asked or "?"
    if header.origin == "regenerated":  # a re-run that sampled again instead of replaying
        status += " · regenerated"
    parts = [header.endpoint or reply.endpoint, header.conversation, model, status]
    if header.turn:
        parts.append(f"turn {header.turn}")
    return [str(part) for part in parts]


def static_markdown(reply, header: TurnHeader) -> str:
    """The turn as Markdown: header, reasoning folded in <details>, the answer, other choices, tool
    calls, the error, usage and the re-run note."""
    parts = ["*" + " · ".join(escape_inline(part) for part in _header(reply, header)) + "*", ""]
    if header.images:
        parts += [f"*sent {escape_inline(_images(header))}*", ""]
    if reply.reasoning:
        parts += ["<details><summary>Reasoning</summary>", "", inert_markdown(reply.reasoning), "", "</details>", ""]
    parts.append(inert_markdown(reply.text))
    spoken = audio_line(header.audio)
    if spoken:  # no <audio> here: a data URI player is not allowed in the Markdown copy
        parts += ["", f"*{escape_inline(spoken)}*"]
    for choice in reply.choices[1:]:
        parts += ["", f"#### choice {choice.index}", "", inert_markdown(choice.text)]
    for call in shown_calls(reply):
        function = call.get("function") or {}
        parts += ["", f"**tool call** {code_span(str(function.get('name') or '?'))}", ""]
        parts += fenced(str(function.get("arguments") or ""), "json")
        if "result" in call:  # it ran in the kernel: what it gave the model
            parts += ["", *fenced(_outcome(call))]
    if reply.error:
        parts += ["", f"**{escape_inline(str(reply.status))}:** {escape_inline(str(reply.error))}"]
    line = usage_line(reply)
    if line:
        parts += ["", f"*{line}*"]
    if header.note:
        parts += ["", f"*{escape_inline(header.note)}*"]
    return "\n".join(parts)


def _images(header: TurnHeader) -> str:
    return "; ".join(str(image.get("label") or "an image") for image in header.images)


def _outcome(call: dict) -> str:
    took = f" ({call['duration'] * 1000:.0f} ms)" if isinstance(call.get("duration"), int | float) else ""
    return (f"error: {call['error']}" if call.get("error") else f"-> {call.get('result')}") + took


def static_text(reply, header: TurnHeader) -> str:
    """The turn as plain text (terminals, text-only viewers): shown as characters, never rendered."""
    parts = [f"[{' · '.join(_header(reply, header))}]"]
    if header.images:
        parts.append(f"[sent {_images(header)}]")
    if reply.reasoning:
        parts += ["(reasoning) " + reply.reasoning, "---"]
    parts.append(reply.text)
    spoken = audio_line(header.audio)
    if spoken:
        parts.append(f"[{spoken}]")
    for choice in reply.choices[1:]:
        parts += [f"[choice {choice.index}]", choice.text]
    for call in shown_calls(reply):
        function = call.get("function") or {}
        parts.append(f"[tool call {function.get('name') or '?'}] {function.get('arguments') or ''}")
        if "result" in call:
            parts.append(_outcome(call))
    if reply.error:
        parts.append(f"[{reply.status}: {reply.error}]")
    line = usage_line(reply)
    if line:
        parts.append(f"[{line}]")
    if header.note:
        parts.append(f"[{header.note}]")
    return "\n".join(parts)
