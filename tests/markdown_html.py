"""Render a Markdown copy the way other front-ends do and read back what a browser would get: the
elements, attributes and code text. Shared by the unit, property and nbconvert tests."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from markdown_it import MarkdownIt

from elk_jupyter.display.markdown_copy import _parser
from elk_jupyter.display.markdown_inline import math

CORPUS_DIR = Path(__file__).resolve().parent / "fixtures" / "render_corpus"
ALLOWED = {
    *"p em strong code pre a ul ol li blockquote hr br del s details summary span".split(),
    *"h1 h2 h3 h4 h5 h6 table thead tbody tr th td".split(),
}
FETCHING = {"src", "srcset", "poster", "style", "background", "href", "xlink:href", "action", "formaction", "data"}
# The one style a renderer writes itself, for a table column's alignment (`| :-: |`): no url() can hide in it.
ALIGNMENT = re.compile(r"text-align: ?(left|center|right);?")


def corpus(port: int = 9) -> dict[str, str]:
    return {path.stem: path.read_text().replace("{PORT}", str(port)) for path in sorted(CORPUS_DIR.glob("*.md"))}


def markdown_it_html(markdown: str) -> str:
    """CommonMark as markdown-it (VS Code, MyST) renders it, with GFM tables and strikethrough."""
    return MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(markdown)


def mistune_html(markdown: str) -> str:
    """nbconvert 7's own Markdown parser and renderer (mistune 3, its math rules, harmful protocols
    allowed), minus two things it adds itself: Pygments markup around code and heading anchor links."""
    from mistune import HTMLRenderer
    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

    class Plain(IPythonRenderer):
        def block_code(self, code, info=None):
            return HTMLRenderer.block_code(self, code, info)

    return MarkdownWithMath(renderer=Plain(escape=False, exclude_anchor_links=True)).render(markdown)


class Page(HTMLParser):
    """Tags, attributes and the text of every `code` element, in document order."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.code: list[str] = []
        self.text: list[str] = []
        self._open: list[int] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))
        if tag == "code":
            self._open.append(len(self.code))
            self.code.append("")

    def handle_endtag(self, tag):
        if tag == "code" and self._open:
            self._open.pop()

    def handle_data(self, data):
        self.text.append(data)
        for index in self._open:
            self.code[index] += data


def problems(html: str) -> list[str]:
    """Everything in rendered HTML that could run, fetch, or link to something unsafe."""
    found = []
    for tag, attrs in Page(html).tags:
        if tag not in ALLOWED:
            found.append(f"element <{tag}>")
        for name, value in attrs:
            value = value or ""
            if name.startswith("on"):
                found.append(f"handler {name} on <{tag}>")
            elif name == "href" and tag == "a":
                if not re.match(r"(?i)(https?|mailto):", value):  # schemes are case-insensitive (RFC 3986)
                    found.append(f"href {value!r}")
            elif name == "style" and tag in ("th", "td") and ALIGNMENT.fullmatch(value):
                continue
            elif name in FETCHING:
                found.append(f"{name}={value!r} on <{tag}>")
            elif name not in ("class", "title", "align", "start", "open"):
                found.append(f"attribute {name} on <{tag}>")
    return found


def model_code(text: str, *, mistune: bool = False) -> list[str]:
    """The code spans and blocks of the model's text, as markdown-it-py parses it, in document order
    (code inside an image's alt text is not code: the alt text is shown as text). A block cut off by the
    end of the text has no final line ending; closed, it has one, as every closed block does.

    ``mistune``: nbconvert's mistune keeps the backslash of a `\\|` inside a code span in a table cell,
    where GFM (https://github.github.com/gfm/#example-200), markdown-it, marked and GitHub drop it; no
    Markdown can hold a `|` in a cell's code for both, so the copy follows GFM and mistune shows `\\|`.

    Math the policy does not keep (display/tex.py) is shown as code, delimiters included: it is counted too.
    """
    found, in_cell, one_line = [], False, False
    for token in _parser().parse(text):
        if token.type in ("fence", "code_block"):
            found.append(token.content if token.content.endswith("\n") or not token.content else token.content + "\n")
        if token.type == "math_block" and math(token.content.strip("\n"), "", one_line=False) is None:
            found.append("$$" + token.content + "$$\n")
        in_cell = token.type in ("th_open", "td_open") or (in_cell and token.type == "inline")
        one_line = token.type in ("th_open", "td_open", "heading_open") or (one_line and token.type == "inline")
        for child in token.children or ():
            if child.type == "code_inline":
                found.append(child.content.replace("|", "\\|") if mistune and in_cell else child.content)
            shown = _math_as_code(child, one_line=one_line)
            if shown is not None:
                found.append(shown.replace("|", "\\|") if mistune and in_cell else shown)
    return found


_INLINE_MATH = {
    "math_inline": "$",
    "math_inline_double": "$$",
    "math_bracket_inline": "$",
    "math_bracket_display": "$$",
}


def _math_as_code(token, *, one_line: bool) -> str | None:
    """The text of the code span an inline formula becomes when the policy does not keep it, else None."""
    if token.type not in _INLINE_MATH:
        return None
    content = token.content.strip() if token.type.startswith("math_bracket") else token.content
    if content and math(content, _INLINE_MATH[token.type], one_line=one_line) is not None:
        return None
    closing = {"\\(": "\\)", "\\[": "\\]"}.get(token.markup, token.markup)
    return " ".join(re.split(r"[\r\n]+", token.markup + token.content + closing))
