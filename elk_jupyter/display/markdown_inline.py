"""Inline pieces of the inert Markdown copy: escaped text, exact code spans, checked links, images as
plain links, math passed through. Works on markdown-it tokens (duck-typed); pure.

Every renderer we target (CommonMark/markdown-it, marked in JupyterLab 4, mistune 3 in nbconvert 7,
GitHub) honours a backslash before any ASCII punctuation (https://spec.commonmark.org/0.31.2/#backslash-escapes),
so a text run is made inert by escaping every character that could open a construct: HTML and autolinks
(`<`), entities (`&`), images (`!`), code (`` ` ``), emphasis, `{ }`, tables (`|`); brackets and parentheses
(links) are written as character references instead (`\\(` and `\\[` open math in some front-ends). A `$`
or a backslash is not escaped but isolated (tex.DOLLAR, tex.BACKSLASH): JupyterLab typesets after Markdown
removed escapes, so `\\$` and `\\\\(` would still open math. Math itself is kept only when tex.safe_tex
allows it, else shown as code.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

from elk_jupyter.display.tex import BACKSLASH, DOLLAR, safe_tex

# Escaped wherever they are; `-`, `+`, `=`, `:` and `1.` only matter at the start of a line (lists,
# setext underlines, thematic breaks, mistune's definition lists), so prose keeps its hyphens.
_ALWAYS = "`*_{}<>#!|~&"
# Brackets and parentheses become character references, not `\[` `\(`: those are math delimiters to
# front-ends that take `\(…\)` and `\[…\]` out of the source before Markdown, and would typeset a code
# span between them unchecked. A reference is literal text in every context (CommonMark 6.2: it can
# never open a link).
_BRACKETS = {"[": "&#91;", "]": "&#93;", "(": "&#40;", ")": "&#41;"}
_ISOLATED = {"$": DOLLAR, "\\": BACKSLASH}
_ISOLATED_SPLIT = re.compile(r"([$\\])")
_HELD = ("\ue000", "\ue001")  # private-use characters: stand-ins for `\` and `$` while the rest is escaped
_ORDERED_MARKER = re.compile(r"^(\d{1,9})\.")
_BREAKS = re.compile(r"[\r\n]+")
# marked (JupyterLab) and mistune's url plugin (nbconvert) find bare URLs in the raw source, before
# escapes, and their URL runs include `\`: `http://x\<img ...>` would hand them a live tag. So a bare
# URL in the text becomes an explicit link, and what is left can never start one (`http\://`, `www\.`).
_BARE_URL = re.compile(r"(?i)https?://[^\s<>\\`\"']+")
# Where a backslash goes (before the `:` of `http://`, the `.` of `www.`): a position, so the
# substitution is a literal one done in C (Python 3.11 expands group templates in Python per match).
_URL_START = re.compile(r"(?i)(?=[:.])(?:(?<=https)(?=://)|(?<=http)(?=://)|(?<=ftp)(?=://)|(?<=www)(?=\.))")
SAFE_SCHEMES = ("http", "https", "mailto")
# Characters a browser drops or ignores inside a URL scheme (https://url.spec.whatwg.org/#url-parsing).
_IGNORED_IN_SCHEME = re.compile(r"[\x00-\x20\x7f]+")
_ENTITY = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{0,31});")
# A tag, closing tag, comment, declaration or processing instruction (or an autolink) opens with `<` then one of these.
_TAG_OPEN = re.compile(r"<(?=[A-Za-z/!?])")


def escape_text(text: str, *, line_start: bool = False) -> str:
    """A text run as Markdown that every renderer shows as exactly these characters, and nothing more."""
    if "\n" in text or "\r" in text:
        text = _BREAKS.sub(" ", text)  # a decoded `&#10;` must not start a new block
    if line_start:
        text = text.lstrip(" \t")  # leading spaces could make an indented code block
    if ("$" in text or "\\" in text) and (_HELD[0] in text or _HELD[1] in text):
        # isolated, in pieces: their replacements hold `<`, `&`, `#`, which must not be escaped
        text = "".join(_ISOLATED.get(piece) or _escaped(piece) for piece in _ISOLATED_SPLIT.split(text))
    elif "$" in text or "\\" in text:  # the same, faster: held as characters the text does not have
        held = _escaped(text.replace("\\", _HELD[0]).replace("$", _HELD[1]))
        text = held.replace(_HELD[0], BACKSLASH).replace(_HELD[1], DOLLAR)
    else:
        text = _escaped(text)
    # (?i) matches no other spelling of "://" or "www.": only text that holds one is searched
    if "://" in text or "www." in text.lower():
        text = _URL_START.sub(r"\\", text)
    if line_start and text[:1] in ("-", "+", "=", ":"):
        text = "\\" + text
    elif line_start:
        text = _ORDERED_MARKER.sub(r"\1\\.", text, count=1)
    return text


def _escaped(text: str) -> str:
    """Each of ``_ALWAYS`` after a backslash: one C-level pass per character present, no callback
    into Python per match (the Markdown table of 16,000 runs took seconds that way, issue 24)."""
    for char in _ALWAYS:
        if char in text:
            text = text.replace(char, "\\" + char)
    for char, reference in _BRACKETS.items():  # after `&` was escaped: these `&` stay references
        if char in text:
            text = text.replace(char, reference)
    return text


def code_span(code: str) -> str:
    """A code span whose content is exactly ``code`` (CommonMark 6.1: a longer backtick run, and padding
    when the code starts or ends with a backtick or would lose a space to stripping). A line break becomes
    a space, as CommonMark does inside code spans, so the next line cannot start a block (`<div ...>`)."""
    code = _BREAKS.sub(" ", code)
    longest = max((len(run) for run in re.findall(r"`+", code)), default=0)
    fence = "`" * (longest + 1)
    pad = code[:1] == "`" or code[-1:] == "`" or (code[:1] == " " and code[-1:] == " " and code.strip(" "))
    return f"{fence} {code} {fence}" if pad else f"{fence}{code}{fence}"


def safe_url(url: str) -> str | None:
    """The URL if it is http(s)/mailto however its scheme was spelled, else None. Decided on the decoded
    form: markdown-it has already undone entities and backslash escapes; here percent-encoding, ignored
    whitespace and control characters, and case (`java%09script:`, `JaVaScRiPt:` are javascript:)."""
    probe = _IGNORED_IN_SCHEME.sub("", unquote(url)).lower()
    scheme, colon, _ = probe.partition(":")
    if not colon or not re.fullmatch(r"[a-z][a-z0-9+.-]*", scheme) or scheme not in SAFE_SCHEMES:
        return None
    if not url[: len(scheme) + 1].lower() == scheme + ":":
        return None  # the scheme is not written plainly at the start: refuse rather than guess
    return url


def destination(url: str) -> str:
    """A link destination that cannot break out or decode: `<...>` form, with what would end it (`<`, `>`,
    a line break), what a table would split on (`|`), backslashes, a `$` (front-ends that take math out
    before Markdown would pair it with another and cut the link), and an `&` that starts an entity
    percent-encoded. (A backslash before the `&` is enough for CommonMark, but mistune ignores it.)"""
    encoded = re.sub(r"[\x00-\x20<>\\|\x7f$]", lambda m: f"%{ord(m.group()):02X}", url)
    return "<" + _ENTITY.sub(lambda m: "%26" + m.group()[1:], encoded) + ">"


def image_label(alt: str, url: str) -> str:
    try:
        host = urlsplit(url).netloc.rpartition("@")[2] or "?"
    except ValueError:  # e.g. an unclosed IPv6 bracket
        host = "?"
    return f"image: {alt} ({host})" if alt else f"image ({host})"


def math(content: str, delimiter: str, *, one_line: bool) -> str | None:
    """Math source to emit as is, or None when it must be shown as code instead.

    Only math tex.safe_tex allows is typeset. Renderers that typeset (JupyterLab, nbconvert, GitHub, VS
    Code) take math out before Markdown parsing, but one that does not (plain CommonMark, nbviewer's
    fallback) parses the same characters as Markdown. So a `<` that could open a tag becomes `\\lt `
    (MathJax and KaTeX define it, so the typeset result is the same); anything else that could become a
    live construct (an entity, a link or bare URL, a code span or fence, a blank line, a pipe or line break
    where the context cannot hold one) makes it code too.
    """
    if not safe_tex(content):
        return None
    if "`" in content or _ENTITY.search(content) or re.search(r"\][(\[:]|\n[ \t]*(\n|~~~)|^[ \t]*~~~", content):
        return None
    if "\\<" in content or _URL_START.search(content) or (one_line and ("\n" in content or "|" in content)):
        return None  # (a bare URL: marked and mistune would link it from the raw source, math or not)
    return delimiter + _TAG_OPEN.sub(r"\\lt ", content) + delimiter


_DELIMITERS = {"em": None, "strong": None, "s": "~~"}  # None: keep the model's own `*` or `_`


def inline(children, *, one_line: bool = False, in_link: bool = False, in_cell: bool = False) -> str:
    """The inline tokens of one block as inert Markdown. ``one_line`` for headings and table cells,
    which cannot hold a line break; ``in_link`` for link text, which cannot hold another link;
    ``in_cell`` for a table cell, where even a code span's `|` must be escaped (GFM 4.10)."""
    out: list[str] = []
    line_start = True
    i = 0
    while i < len(children):
        token = children[i]
        kind = token.type
        if kind == "link_open":
            close = _matching_close(children, i)
            out.append(_link(token, children[i + 1 : close], one_line=one_line, in_link=in_link, in_cell=in_cell))
            i = close
        elif kind in ("softbreak", "hardbreak"):
            out.append(" " if one_line else ("\n" if kind == "softbreak" else "\\\n"))
        else:
            piece = _leaf(token, line_start=line_start, one_line=one_line, in_link=in_link, in_cell=in_cell)
            if out and (out[-1][-1:], piece[:1]) in (("`", "`"), ("$", "$")):
                # Two code spans side by side (math shown as code, then code) would read as one backtick
                # run; two formulas side by side (`$a$$b$`) as `$$`, display math to renderers that take
                # math out first, which then swallows what follows (a code span holding raw HTML).
                out.append("<span></span>")
            out.append(piece)
        line_start = kind in ("softbreak", "hardbreak") and not one_line
        i += 1
    return "".join(out)


def _matching_close(children, start: int) -> int:
    for j in range(start + 1, len(children)):
        if children[j].type == "link_close":  # CommonMark links do not nest
            return j
    return len(children)


def _leaf(token, *, line_start: bool, one_line: bool, in_link: bool, in_cell: bool) -> str:
    kind = token.type
    if kind == "code_inline":
        return code_span(token.content.replace("|", "\\|") if in_cell else token.content)
    if kind.endswith(("_open", "_close")) and kind.rsplit("_", 1)[0] in _DELIMITERS:
        return _DELIMITERS[kind.rsplit("_", 1)[0]] or token.markup
    if kind == "image":
        return _image(token, in_link=in_link)
    if kind in ("math_inline", "math_inline_double", "math_bracket_inline", "math_bracket_display"):
        content = token.content.strip() if kind.startswith("math_bracket") else token.content
        kept = math(content, "$", one_line=one_line) if content else None
        if kept is not None and kind in ("math_inline_double", "math_bracket_display"):
            # Display math inside a line, as `$\displaystyle …$`: an inline `$$…$$` is read as `$`, `$…$`,
            # `$` by front-ends whose inline math is `$` only (markdown-it's dollarmath by default), and
            # that last `$` pairs with the next formula's, swallowing the text between into math.
            return "$\\displaystyle " + kept[1:]
        if kept is not None:
            return kept
        shown = token.markup + token.content + _closing(token.markup)  # as code: MathJax never reads <code>
        return code_span(shown.replace("|", "\\|") if in_cell else shown)
    if kind == "text" and not in_link:
        return _text_with_links(token.content, line_start=line_start)
    # html_inline (raw HTML shows as the characters the model wrote), link text, and anything unforeseen
    return escape_text(token.content, line_start=line_start)


def _text_with_links(text: str, *, line_start: bool) -> str:
    """Escaped text in which each bare http(s) URL is an explicit link, as GFM front-ends show it."""
    out, last = [], 0
    for match in _BARE_URL.finditer(text):
        url = match.group().rstrip(".,:;!?)")
        if len(url) <= len("https://"):
            continue
        out.append(escape_text(text[last : match.start()], line_start=line_start and last == 0))
        out.append(f"[{escape_text(url)}]({destination(url)})")
        last = match.start() + len(url)
    out.append(escape_text(text[last:], line_start=line_start and last == 0))
    return "".join(out)


def _closing(opening: str) -> str:
    return {"\\(": "\\)", "\\[": "\\]"}.get(opening, opening)


def _link(token, inner, *, one_line: bool, in_link: bool, in_cell: bool) -> str:
    text = inline(inner, one_line=one_line, in_link=True, in_cell=in_cell)
    url = safe_url(token.attrs.get("href", ""))
    if url is None or in_link:
        return text
    return f"[{text or escape_text(url)}]({destination(url)})"


def _image(token, *, in_link: bool) -> str:
    """Never an image: an http(s) image becomes a link naming its host, anything else its alt text."""
    alt = "".join(child.content for child in token.children or () if child.type not in ("softbreak", "hardbreak"))
    url = safe_url(token.attrs.get("src", ""))
    if url is None or url.lower().startswith("mailto:"):
        return escape_text(alt)
    label = escape_text(image_label(alt, url))
    return label if in_link else f"[{label}]({destination(url)})"
