"""The static Markdown of a turn is inert: hostile model output cannot become HTML or a script link."""

from __future__ import annotations

import re

from elk_jupyter.events import Done, ReasoningDelta, TextDelta, ToolCallDelta, UsageReport
from elk_jupyter.render import inert_markdown, static_markdown, static_text
from elk_jupyter.reply import Reply

HOSTILE = [
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    '<a href="javascript:alert(1)">x</a>',
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[ref]\n\n[ref]: javascript:alert(1)",
    "<javascript:alert(1)>",
    "[x](data:text/html;base64,PHNjcmlwdD4=)",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "<details open ontoggle=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
]


def html_outside_code(markdown: str) -> str:
    """The Markdown with fenced code blocks removed: what a renderer could treat as HTML."""
    return re.sub(r"^(`{3,})[^\n]*\n.*?^\1$", "", markdown, flags=re.S | re.M)


def test_hostile_text_is_escaped_outside_code():
    for text in HOSTILE:
        out = html_outside_code(inert_markdown(text))
        assert not re.search(r"(?<!\\)<[a-zA-Z/!?]", out), (text, out)  # no raw tag can open
        assert not re.search(r"(?<!\\)&", out), (text, out)  # no entity can decode
        assert not re.search(r"(?<!unsafe-)\b(?i:javascript|data):", out), (text, out)


def test_code_blocks_keep_their_text_and_cannot_be_escaped_from():
    text = "Before\n```html\n<b>bold</b> & ``` not a close\n````\n<img src=x onerror=alert(1)>\n```\nAfter <i>"
    out = inert_markdown(text)
    fence = re.match(r"`+", out.split("\n")[1]).group(0)
    assert len(fence) > 3  # longer than any backtick run inside
    assert "<b>bold</b> & ``` not a close" in out  # code shown exactly as written
    # "````" closes the block (CommonMark: a closing fence at least as long), so the tag after it
    # is prose and escaped; the last "```" opens a block that the end of the text closes.
    assert "\n\\<img src=x onerror=alert(1)>\n" in out
    assert out.endswith("```\nAfter <i>\n```")


def test_unclosed_code_block_from_a_cut_stream_is_closed():
    out = inert_markdown("Code:\n```python\nprint('<x>')")
    assert out.split("\n")[-1] == "```" and "print('<x>')" in out


def test_inline_markdown_survives():
    out = inert_markdown("**bold** and `code` and a [link](https://example.com) > quote\n- item\n| a | b |")
    assert out == "**bold** and `code` and a [link](https://example.com) > quote\n- item\n| a | b |"


def test_huge_unbroken_line_and_deep_nesting_are_handled_linearly():
    line = "x" * 1_000_000
    assert inert_markdown(line) == line
    nested = ">" * 5000 + " deep" + "\n" + "- " * 5000 + "list"
    assert inert_markdown(nested) == nested


def test_static_markdown_has_everything_and_only_inert_model_text():
    reply = Reply("chat")
    reply.add(ReasoningDelta("think <script>alert(1)</script>"))
    reply.add(TextDelta("Answer <img src=x onerror=alert(1)>"))
    reply.add(ToolCallDelta(index=0, id="call_1", name="get<x>", arguments='{"a": 1}'))
    reply.add(
        UsageReport(
            {
                "prompt_tokens": 12,
                "completion_tokens": 5,
                "prompt_tokens_details": {"cached_tokens": 4},
                "completion_tokens_details": {"reasoning_tokens": 3},
            }
        )
    )
    reply.add(Done())
    md = static_markdown(reply, {"endpoint": "chat", "conversation": "default", "model_asked": "m"})
    assert md.startswith("*chat · default · m · done*")
    assert "<details><summary>Reasoning</summary>" in md and "think \\<script>" in md
    assert "Answer \\<img src=x onerror=alert(1)>" in md
    assert "12 prompt (4 cached) · 5 completion (3 reasoning)" in md
    assert "**tool call** `get\\<x>`" in md
    text = static_text(reply, {"endpoint": "chat", "conversation": "default"})
    assert "Answer <img src=x onerror=alert(1)>" in text  # plain text is never rendered


def test_failed_reply_shows_its_status_and_error():
    reply = Reply("responses")
    reply.add(TextDelta("partial"))
    reply.fail("interrupted", "the connection broke <mid-stream>")
    md = static_markdown(reply, {"endpoint": "responses", "conversation": "c", "replayed": False})
    assert "**interrupted:** the connection broke \\<mid-stream>" in md
    assert "responses · c · ? · interrupted" in md
