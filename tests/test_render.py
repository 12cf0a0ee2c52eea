"""The static Markdown of a turn is inert: hostile model output cannot become HTML or a script link."""

from __future__ import annotations

import re

from elk_jupyter.display.header import TurnHeader
from elk_jupyter.display.render import inert_markdown, static_markdown, static_text
from elk_jupyter.gateway.events import Done, ReasoningDelta, TextDelta, ToolCallDelta, UsageReport
from elk_jupyter.gateway.reply import Reply
from tests.markdown_html import Page, markdown_it_html, mistune_html, problems

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


def shown(markdown: str) -> str:
    """The text a reader sees once markdown-it renders the copy."""
    return "".join(Page(markdown_it_html(markdown)).text)


def test_hostile_text_is_escaped_outside_code():
    for text in HOSTILE:
        out = html_outside_code(inert_markdown(text))
        assert not re.search(r"(?<!\\)<[a-zA-Z/!?]", out), (text, out)  # no raw tag can open
        # no entity of the model's can decode (ours write brackets and parentheses: literal text)
        assert not re.search(r"(?<!\\)&(?!#(?:40|41|91|93);)", out), (text, out)
        # Was: no "javascript:" without an "unsafe-" prefix. Now the prose stays as written and what
        # matters is the rendered result: no element, handler or link a browser could act on.
        assert problems(markdown_it_html(out)) == [] and problems(mistune_html(out)) == [], (text, out)


def test_code_blocks_keep_their_text_and_cannot_be_escaped_from():
    text = "Before\n```html\n<b>bold</b> & ``` not a close\n````\n<img src=x onerror=alert(1)>\n```\nAfter <i>"
    out = inert_markdown(text)
    fence = next(line for line in out.split("\n") if line.startswith("```"))
    assert fence == "````html"  # longer than any backtick run inside
    assert "<b>bold</b> & ``` not a close" in out  # code shown exactly as written
    # "````" closes the block (CommonMark: a closing fence at least as long). The tag alone on the next
    # line starts an HTML block that runs to the next blank line (CommonMark 4.6, type 7), so the last
    # "```" and "After <i>" belong to it: all shown as the characters they are. (The old line-based
    # escaper opened a code block there instead.)
    assert Page(markdown_it_html(out)).code == ["<b>bold</b> & ``` not a close\n"]
    assert shown(out).endswith("<img src=x onerror=alert(1)>\n```\nAfter <i>\n")


def test_unclosed_code_block_from_a_cut_stream_is_closed():
    out = inert_markdown("Code:\n```python\nprint('<x>')")
    assert out.split("\n")[-1] == "```" and "print('<x>')" in out


def test_inline_markdown_survives():
    text = "**bold** and `code` and a [link](https://example.com) > quote\n- item\n| a | b |"
    out = inert_markdown(text)
    # Was: the copy equals the text. Links now always take the `<...>` form and `>`/`|` are escaped,
    # so the test is on what a renderer makes of it: the same HTML as the model's own Markdown.
    assert "**bold** and `code` and a [link](<https://example.com>)" in out
    assert markdown_it_html(out) == markdown_it_html(text)


def test_huge_unbroken_line_and_deep_nesting_are_handled_linearly():
    line = "x" * 1_000_000
    assert inert_markdown(line) == line
    nested = ">" * 5000 + " deep" + "\n" + "- " * 5000 + "list"
    out = inert_markdown(nested)
    # Was: the copy equals the text. Past markdown-it's nesting limit the parser drops content, so
    # the copy falls back to the text as literal characters: nothing lost, nothing live.
    assert shown(out).replace("\n", "") == nested.replace("\n", "")
    assert problems(markdown_it_html(out)) == []


def _full_reply() -> Reply:
    reply = Reply("chat")
    reply.add(ReasoningDelta("think <script>alert(1)</script>"))
    reply.add(TextDelta("Answer <img src=x onerror=alert(1)>"))
    reply.add(ToolCallDelta(index=0, id="call_1", name="get<x>", arguments='{"a": "```<b>"}'))
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
    return reply


def test_static_markdown_has_everything_and_only_inert_model_text():
    reply = _full_reply()
    md = static_markdown(reply, TurnHeader(endpoint="chat", conversation="default", model_asked="m"))
    assert md.startswith("*chat · default · m · done*")
    assert "<details><summary>Reasoning</summary>" in md and "think \\<script\\>" in md
    assert "Answer \\<img src=x onerror=alert&#40;1&#41;\\>" in md
    assert "12 prompt (4 cached) · 5 completion (3 reasoning)" in md
    # Was `get\<x>`: CommonMark keeps backslashes inside code spans, so that showed a stray "\".
    assert "**tool call** `get<x>`" in md
    for html in (markdown_it_html(md), mistune_html(md)):
        assert problems(html) == []
        assert Page(html).code == ["get<x>", '{"a": "```<b>"}\n']
        assert "Answer <img src=x onerror=alert(1)>" in "".join(Page(html).text)
    text = static_text(reply, TurnHeader(endpoint="chat", conversation="default"))
    assert "Answer <img src=x onerror=alert(1)>" in text  # plain text is never rendered


def test_failed_reply_shows_its_status_and_error():
    reply = Reply("responses")
    reply.add(TextDelta("partial"))
    reply.fail("interrupted", "the connection broke <mid-stream>")
    md = static_markdown(reply, TurnHeader(endpoint="responses", conversation="c", replayed=False))
    assert "**interrupted:** the connection broke \\<mid-stream\\>" in md
    assert "responses · c · ? · interrupted" in md
    assert "interrupted: the connection broke <mid-stream>" in shown(md)


def test_choices_note_and_hostile_server_strings_reach_both_copies_inert():
    reply = Reply("chat")
    reply.add(TextDelta("first"))
    reply.add(TextDelta("second <b>", choice=1))
    reply.add(UsageReport({"prompt_tokens": "<img src=x onerror=alert(1)>", "completion_tokens": 2}))
    reply.add(Done())
    reply.model = "m<svg onload=alert(1)>\n# not a heading"
    header = TurnHeader(endpoint="chat", conversation="c", note="Re-ran this cell: turn t3 replaced")
    md = static_markdown(reply, header)
    assert "#### choice 1\n\nsecond \\<b\\>" in md
    assert "*0 prompt · 2 completion" in md  # a count that is not a number is dropped, never shown
    assert md.endswith("*Re-ran this cell: turn t3 replaced*")
    assert "[Re-ran this cell: turn t3 replaced]" in static_text(reply, header)
    html = markdown_it_html(md)
    assert problems(html) == [] and problems(mistune_html(md)) == []
    assert "m<svg onload=alert(1)> # not a heading" in shown(md) and "<h1>" not in html


def test_a_tool_name_cannot_leave_its_code_span():
    reply = Reply("chat")
    reply.add(ToolCallDelta(index=0, id="c", name="f\n<div onclick=alert(1)>\n# h\n`", arguments="{}"))
    reply.add(Done())
    md = static_markdown(reply, TurnHeader(endpoint="chat", conversation="c"))
    for html in (markdown_it_html(md), mistune_html(md)):
        assert problems(html) == [] and Page(html).code[0] == "f <div onclick=alert(1)> # h `"


def test_the_footer_is_computed_once_in_python_as_label_value_pairs():
    """Moved from js/state.test.js: the front-end now draws these pairs as they are."""
    from elk_jupyter.display.render import footer_items

    usage = {
        "prompt_tokens": 100,
        "completion_tokens": 50,
        "prompt_tokens_details": {"cached_tokens": 20},
        "completion_tokens_details": {"reasoning_tokens": 10},
    }
    assert footer_items(usage, {"ttft": 0.5, "total": 1.5}, "2 earlier turns") == [
        ["prompt", "100 (20 cached)"],
        ["completion", "50 (10 reasoning)"],
        ["first token", "0.50 s"],
        ["total", "1.50 s"],
        ["speed", "50.0 tok/s"],
        ["context", "2 earlier turns"],
    ]
    assert footer_items(None, {}, "") == [["first token", "–"], ["total", "–"]]
    # hostile timings and usage never break it
    assert footer_items("garbage", {"ttft": float("nan"), "total": True}, "") == [["first token", "–"], ["total", "–"]]


def test_replayed_is_decided_in_one_place():
    from elk_jupyter.display.render import shown_status

    assert shown_status("completed", True) == "replayed" and shown_status("incomplete", True) == "replayed"
    assert shown_status("streaming", True) == "streaming" and shown_status("completed", False) == "completed"
