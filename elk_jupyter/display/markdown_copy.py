"""The inert, exact Markdown copy of model text: parsed with markdown-it-py, re-serialised block by block.

The copy goes into `text/markdown` outputs, which JupyterLab renders without a sanitizer for trusted
notebooks, and which VS Code, Colab, GitHub, nbviewer and nbconvert render with their own parsers. So
it is built to render the same text as the model's Markdown while being unable to do anything: raw HTML
shows as text, code is exact, links survive only for http(s)/mailto, images become plain links, math
is kept for typesetting only when display/tex.py allows it (else shown as code). A real parser rather
than regexes over lines, because escaping and code spans depend on context a line cannot see (issue 11).
Pure.

markdown-it-py (executablebooks, the parser MyST and mdformat use, already in the Jupyter stack through
nbconvert's dependencies) follows CommonMark exactly and exposes a token stream; mdit-py-plugins (same
maintainers) adds the `$...$`/`$$...$$` math that JupyterLab, GitHub and nbconvert typeset. GFM tables
and strikethrough are markdown-it's own rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache

from elk_jupyter.display.markdown_inline import escape_text, inline, math

MAX_NESTING = 20  # markdown-it's CommonMark preset; deeper containers are dropped by the parser


@lru_cache(maxsize=16)  # a finished turn's bundle may be asked for more than once
def inert_markdown(text: str) -> str:
    """Markdown that renders the model's text but can run, load or link to nothing unsafe."""
    from markdown_it.tree import SyntaxTreeNode

    tokens = _parser().parse(text)
    if any(token.level >= MAX_NESTING - 1 for token in tokens):
        return literal(text)  # the parser gave up on deeper containers: keep every character as text
    return "\n".join(_blocks(SyntaxTreeNode(tokens).children))


def escape_inline(text: str) -> str:
    """A server-provided string (model name, error message) as inert inline Markdown on one line."""
    return escape_text(text.strip())


def fenced(code: str, info: str = "") -> list[str]:
    """A fenced code block showing ``code`` exactly: a fence longer than any backtick run inside, and an
    info string reduced to a language name (it becomes an HTML class attribute in most renderers)."""
    longest = max((len(run) for run in re.findall(r"`+", code)), default=0)
    fence = "`" * max(3, longest + 1)
    language = "".join(c for c in (info.split() or [""])[0] if c.isascii() and (c.isalnum() or c in "+-_.#"))
    body = code[:-1] if code.endswith("\n") else code
    return [fence + language[:40], *(body.split("\n") if code else []), fence]


def literal(text: str) -> str:
    """Text shown character for character (raw HTML, unparseable input): escaped lines, hard breaks."""
    lines = [escape_text(line, line_start=True) for line in text.split("\n")]
    return "\\\n".join(line for line in lines if line.strip())


@lru_cache(maxsize=1)
def _parser():
    # Imported here, not at the top: `%load_ext` stays ~17 ms faster; the first finished turn pays it.
    from markdown_it import MarkdownIt
    from mdit_py_plugins.dollarmath import dollarmath_plugin

    md = MarkdownIt("commonmark", {"maxNesting": MAX_NESTING}).enable(["table", "strikethrough"])
    # No space inside and no digit outside the dollars (Pandoc's rule), so "costs $5 and $6" stays prose.
    dollarmath_plugin(
        md, allow_labels=False, allow_space=False, allow_digits=False, allow_blank_lines=False, double_inline=True
    )
    md.inline.ruler.before("escape", "math_bracket", _bracket_math)
    return md


def _bracket_math(state, silent: bool) -> bool:
    r"""`\(...\)` and `\[...\]` (LaTeX's delimiters, which models use) as math tokens; they are emitted with
    dollars, the delimiters JupyterLab, nbconvert and GitHub all typeset."""
    src, pos = state.src, state.pos
    opening = src[pos : pos + 2]
    if opening not in ("\\(", "\\["):
        return False
    closing = "\\)" if opening == "\\(" else "\\]"
    misses = state.env.setdefault("_elk_math_misses", {})
    if misses.get(closing, len(src) + 1) <= pos:
        return False  # an earlier search found no closer after here: stay linear
    end = src.find(closing, pos + 2)
    if end < 0:
        misses[closing] = pos
        return False
    if not silent:
        token = state.push("math_bracket_inline" if opening == "\\(" else "math_bracket_display", "math", 0)
        token.content, token.markup = src[pos + 2 : end], opening
    state.pos = end + 2
    return True


def _blocks(nodes, *, tight: bool = False) -> list[str]:
    out: list[str] = []
    for node in nodes:
        lines = _block(node)
        if out and not tight:
            out.append("")
        out.extend(lines)
    return out


def _block(node) -> list[str]:
    kind = node.type
    if kind == "paragraph":
        return inline(node.children[0].token.children or []).split("\n")
    if kind == "heading":
        return [f"{'#' * int(node.tag[1])} {inline(node.children[0].token.children or [], one_line=True)}".rstrip()]
    if kind == "blockquote":
        return [f"> {line}" if line else ">" for line in _blocks(node.children)]
    if kind in ("bullet_list", "ordered_list"):
        return _list(node)
    if kind == "fence":
        return fenced(node.content, node.info)
    if kind == "code_block":
        return fenced(node.content)
    if kind == "hr":
        return ["___"]  # never `---` or `***`: after a `-`/`*` list marker those read as a break, not an item
    if kind == "table":
        return _table(node)
    if kind == "math_block":
        kept = math(node.content.strip("\n"), "", one_line=False)
        if kept is not None:
            return ["$$", *kept.split("\n"), "$$"]
        return fenced("$$" + node.content + "$$\n", "latex")  # not provably safe math: shown as code
    return literal(node.content).split("\n")  # html_block, and anything unforeseen, as its characters


def _list(node) -> list[str]:
    tight = all(p.hidden for item in node.children for p in item.children if p.type == "paragraph")
    start = node.attrs.get("start", 1) if node.type == "ordered_list" else None
    out: list[str] = []
    for item in node.children:
        marker = f"{start}{item.markup}" if start is not None else item.markup
        body = _blocks(item.children, tight=tight)
        if out and not tight:
            out.append("")
        out.append(f"{marker} {body[0]}" if body and body[0] else marker)
        out.extend(" " * (len(marker) + 1) + line if line else "" for line in body[1:])
    return out


_ALIGN = {"text-align:left": ":--", "text-align:center": ":-:", "text-align:right": "--:"}


def _table(node) -> list[str]:
    rows = [row for section in node.children for row in section.children]
    lines = []
    for row in rows:
        cells = [_cell(cell) for cell in row.children]
        lines.append("| " + " | ".join(cells) + " |")
    header = rows[0].children
    lines.insert(1, "| " + " | ".join(_ALIGN.get(cell.attrs.get("style", ""), "---") for cell in header) + " |")
    return lines


def _cell(cell) -> str:
    return inline(cell.children[0].token.children or [], one_line=True, in_cell=True) if cell.children else ""


def code_blocks(text: str) -> Iterator[str]:
    """The contents of the reply's fenced and indented code blocks, in order."""
    for token in _parser().parse(text):
        if token.type in ("fence", "code_block"):
            yield token.content


def first_code_block(text: str) -> str | None:
    """The content of the reply's first code block (``--code``), or None."""
    return next(code_blocks(text), None)
