"""The Markdown copy on the shared corpus and on arbitrary text: rendered by markdown-it (CommonMark) and
by nbconvert's mistune, it holds no element, handler, fetch or unsafe link, and its code is the model's."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from elk_jupyter.display.markdown_copy import _parser, escape_inline, inert_markdown
from elk_jupyter.display.tex import BACKSLASH, DOLLAR, safe_tex
from tests.markdown_html import Page, corpus, markdown_it_html, mistune_html, model_code, problems

CORPUS = corpus()
RENDERERS = [markdown_it_html, mistune_html]


def kept_math(copy: str) -> list[str]:
    """The formulas a typesetting front-end finds in the copy: every `$…$` / `$$…$$` outside code (JupyterLab
    reads `\\(` only as `\\\\(` in the source, which the copy never holds outside code; checked separately)."""
    from markdown_it import MarkdownIt
    from mdit_py_plugins.dollarmath import dollarmath_plugin

    md = MarkdownIt("commonmark").enable("table")
    dollarmath_plugin(md, allow_blank_lines=False)
    found = []
    for token in md.parse(copy):
        if token.type == "math_block":
            found.append(token.content.strip("\n"))
        found += [child.content for child in token.children or () if child.type.startswith("math_")]
    return found


def without_code(copy: str) -> str:
    """The copy's source with its code blocks (by their source lines) and code spans (with their
    backticks, so text equal to a span's content elsewhere stays) taken out."""
    tokens = _parser().parse(copy)
    lines = copy.splitlines(keepends=True)
    for token in tokens:
        if token.type in ("fence", "code_block") and token.map:
            lines[token.map[0] : token.map[1]] = [""] * (token.map[1] - token.map[0])
    copy = "".join(lines)
    for child in (child for token in tokens for child in token.children or ()):
        if child.type == "code_inline":
            for span in (
                f"{child.markup}{child.content}{child.markup}",
                f"{child.markup} {child.content} {child.markup}",
            ):
                if span in copy:
                    copy = copy.replace(span, "", 1)
                    break
    return copy


def without_math(copy: str) -> str:
    """The copy with the formulas it keeps (``kept_math``, checked by ``safe_tex``) taken out with their
    dollars: a kept formula may hold ``\\\\`` (a TeX line break) or ``\\$``."""
    for formula in sorted(kept_math(copy), key=len, reverse=True):
        for delimited in (f"$${formula}$$", f"${formula}$"):
            copy = copy.replace(delimited, "", 1)
    return copy


def hrefs(html: str) -> list[str]:
    return [value for _, attrs in Page(html).tags for name, value in attrs if name == "href"]


def assert_inert_and_exact(text: str) -> str:
    """Inert in both renderers, the model's code in both, and both link to the same places (a renderer
    that finds a link the other does not would be reading something out of escaped text)."""
    copy = inert_markdown(text)
    assert hrefs(markdown_it_html(copy)) == hrefs(mistune_html(copy)), (text, copy)
    assert [m for m in kept_math(copy) if not safe_tex(m)] == [], (text, copy)
    plain = without_math(without_code(copy))
    assert "\\$" not in plain and "\\\\" not in plain, (
        text,
        copy,
    )  # `$`, `\` in text are isolated
    for render in RENDERERS:
        html = render(copy)
        assert problems(html) == [], (render.__name__, text, copy, html)
        expected = model_code(text, mistune=render is mistune_html)
        assert Page(html).code == expected, (render.__name__, text, copy, html)
    return copy


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_text_renders_inert_with_exact_code(name):
    assert_inert_and_exact(CORPUS[name])


def seen(markdown: str) -> str:
    return "".join(Page(markdown_it_html(markdown)).text)


def test_raw_html_and_escaped_html_show_as_the_characters_written():
    assert 'Before <img src=x onerror="window.__pwned=1"> after \\<img src=x' in seen(
        inert_markdown(CORPUS["backslash-html"])
    )
    assert '<div onclick="window.__pwned=6">block html</div>' in seen(inert_markdown(CORPUS["raw-html"]))
    assert "<!-- <script>window.__pwned=18</script> -->" in seen(inert_markdown(CORPUS["autolinks-html-comments"]))


def test_prose_keeps_its_words():
    shown = seen(inert_markdown(CORPUS["prose-punctuation"]))
    assert shown.startswith("JavaScript: a language. Use data: URIs carefully. 5 > 3 & 2 < 4. Emphasis stays bold;")
    assert "a_b_c; C:\\path\\to\\file; 100% of #hash; trailing backslash\\" in shown
    assert "unsafe" not in inert_markdown(CORPUS["prose-punctuation"])


def test_script_schemes_in_any_spelling_become_their_text():
    for name in ("entity-scheme", "escaped-colon-link", "whitespace-scheme"):
        html = markdown_it_html(inert_markdown(CORPUS[name]))
        assert "<a " not in html, name


def test_links_keep_only_http_https_mailto():
    copy = inert_markdown(CORPUS["safe-links"])
    assert "[docs](<https://example.com/a?b=1&c=2>)" in copy and "[mail](<mailto:someone@example.com>)" in copy
    assert seen(copy).endswith("and rel and frag\n")  # relative and fragment links keep only their text


def test_images_become_links_naming_their_host_and_never_load():
    copy = inert_markdown(CORPUS["images-inline"] + "\n\n" + CORPUS["images-reference"])
    assert "[image: cat &#40;127.0.0.1:9&#41;](<http://127.0.0.1:9/inline.png>)" in copy
    assert "[image: ref image &#40;127.0.0.1:9&#41;](<http://127.0.0.1:9/ref.png>)" in copy
    assert "protocol-relative" not in copy  # no scheme: not a link, only its (empty) alt text
    linked = inert_markdown(CORPUS["image-in-link"])
    assert linked.startswith("[image: badge &#40;127.0.0.1:9&#41;](<https://example.com/>)")  # no link in a link


def test_math_passes_through_for_typesetting():
    copy = inert_markdown(CORPUS["math"])
    assert "$a_b * c_d$" in copy and "$x < y$" in copy
    assert "$$\n\\sum_{i=1}^{n} i^2 = \\frac{n(n+1)(2n+1)}{6}\n$$" in copy
    assert "$e^{i\\pi} + 1 = 0$" in copy  # \(...\) in the dollars every typesetting front-end reads
    # currency is not math: an entity in an element of its own, which neither JupyterLab's removeMath nor
    # MathJax (one run of text at a time) can pair with another `$`
    assert copy.endswith(f"price {DOLLAR}5 and {DOLLAR}6.")
    assert seen(copy).endswith("price $5 and $6.\n")


def test_math_that_could_be_live_markdown_is_shown_as_code():
    # `<` before a letter becomes MathJax's \lt (same typeset result); links, entities and code in
    # "math" would be live in a renderer without math, so such spans are shown as code instead.
    assert inert_markdown("$a<b$") == "$a\\lt b$"
    for text in ("$[x](javascript:alert(1))$", "$&lt;$", "$`x`$", "$$\n[a]: javascript:x\n$$"):
        copy = assert_inert_and_exact(text)
        assert kept_math(copy) == [] and "$" not in without_code(copy), copy


def test_math_outside_the_allow_list_is_shown_as_code():
    copy = assert_inert_and_exact(CORPUS["math-hostile"])
    assert "127.0.0.1" not in without_code(copy)  # every vector is inside code
    assert kept_math(copy) == ["e^{i\\pi} + 1 = 0", "\\frac{a}{b} \\le \\sqrt[3]{x}"]  # safe math is still typeset
    obfuscated = assert_inert_and_exact(CORPUS["math-obfuscated"])
    # (a full-width ＼ is an ordinary character to MathJax: that formula is harmless text)
    assert kept_math(obfuscated) == ["＼style{cursor: url(//127.0.0.1:9/fullwidth)}{x}", "x", "y"]


def test_prices_and_tex_like_prose_reach_no_typesetter():
    copy = assert_inert_and_exact(CORPUS["prices"])
    assert kept_math(copy) == [] and "$" not in copy.replace(DOLLAR, "")
    shown = seen(copy)
    assert "this call cost $0.0012 and the next $0.0034; a plan is $5 or $6 a month, $10-$20 for teams." in shown
    assert "$0.0012cheap" in shown.replace("\n", "")  # the table cell
    prose = inert_markdown("\\href{//h/}{x} \\begin{align}x\\end{align} \\\\(y\\\\) \\$5")
    assert "\\" not in prose.replace(BACKSLASH, "").replace("\\{", "").replace("\\}", "").replace("\\(", "").replace(
        "\\)", ""
    )
    assert seen(prose) == "\\href{//h/}{x} \\begin{align}x\\end{align} \\(y\\) $5\n"


@pytest.mark.parametrize(
    "text",
    [
        "# Title\n\nSetext\n---\n\n> quote\n> > nested\n\n***\n\npara  \nhard\\\nbreaks *em* _em_ **st** __st__ ~~del~~",
        "- a\n- b\n  - c\n\n3) x\n4) y\n\n* loose\n\n* list\n\n  more\n\n10. ten",
        "| l | c | r |\n|:--|:-:|--:|\n| `a` | *b* | [c](https://e.x) |\n| 1 |",
        "| a | b |\n|---|---|\n| `x\\|y` | $p$ \\| q |",
        "- item\n\n  ```py\n  x = 1\n\n  y = 2\n  ```\n\n> ```\n> \tcode <b>\n>\n> ```",
        "`` ` `` and ` `` ` and `  ` and ` a` and `a ` and &copy; &#35; 2 * 3 * 4 a*b*c",
        "1986\\. A year.\n\n+ plus\n\n\\- not a list\n\n= not setext",
    ],
)
def test_structure_renders_as_the_model_wrote_it(text):
    assert markdown_it_html(inert_markdown(text)) == markdown_it_html(text)


def test_server_strings_are_inline_and_inert():
    hostile = "gpt\n\n<img src=x onerror=alert(1)> [x](javascript:alert(1)) \\<b> `code` &lt;"
    escaped = escape_inline(hostile)
    assert "\n" not in escaped
    assert seen(escaped) == "gpt <img src=x onerror=alert(1)> [x](javascript:alert(1)) \\<b> `code` &lt;\n"
    assert problems(markdown_it_html(escaped)) == [] and problems(mistune_html(escaped)) == []


HEAVY = "<>&\\`[]()!*_$:"
ALPHABET = HEAVY * 4 + "abcxyz019 \n\n\t\r\u00a0\u2028#-+=|~>{}.\"'/"
PIECES = st.sampled_from(
    [
        "javascript:",
        "http://127.0.0.1:9/x.png",
        "<img src=x onerror=alert(1)>",
        "```",
        "~~~",
        "    ",
        "\n\n",
        "- ",
        "> ",
        "1. ",
        "| a | b |\n|---|---|\n",
        "&#106;",
        "&amp;",
        "\\(",
        "\\)",
        "$$",
        "![a](",
        "](",
        "<!--",
        "<a href=",
        "&colon;",
        "%6A",
        "\\[",
        "[r]: ",
        "*",
        "**",
        "_",
        "\\|",
        "\\<",
        "www.",
        "ftp://",
        "\\begin{x}",
        "\\style{cursor:url(//h/)}{x}",
        "\\href{//h/}",
        "\\mmlToken{mglyph}[src=x]",
        "\\frac{a}{b}",
        "$x$",
        "$5",
    ]
)
TEXTS = st.one_of(
    st.text(alphabet=ALPHABET, max_size=120),
    st.lists(st.one_of(PIECES, st.text(alphabet=ALPHABET, max_size=6)), max_size=25).map("".join),
)


@pytest.mark.kernel  # the slow tier: a long sweep (pytest -m unit stays under a minute)
@settings(max_examples=400, deadline=None)
@given(TEXTS)
def test_any_text_renders_inert_with_exact_code(text):
    assert_inert_and_exact(text)


def test_a_kept_formula_may_hold_a_tex_line_break():
    """Found by the property test: `$\\\\$` is kept as math (a TeX line break), not text to isolate."""
    assert_inert_and_exact("$\\\\$")


def test_text_equal_to_a_code_span_elsewhere_is_still_checked():
    """Found by the property test: taking code out by its content alone also took "> " out of the
    escaped text after it, and made two backslashes meet."""
    assert_inert_and_exact("```> ```> <img src=x onerror=alert(1)>")


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("HtTpS://h/x", "HtTpS\\://h/x"),
        ("see ftp://h and http://h", "see ftp\\://h and http\\://h"),
        ("WwW.h.org www.www.h", "WwW\\.h.org www\\.www\\.h"),
        ("wwww.h", "wwww\\.h"),
        ("http:/h https//h www", "http:/h https//h www"),  # no URL start: left as written
        ("$5 \\(x\\) <b>", f"{DOLLAR}5 {BACKSLASH}&#40;x{BACKSLASH}&#41; \\<b\\>"),
        # the private-use stand-ins the fast path holds `\` and `$` in, written by the model itself
        ("\ue000$\ue001\\*", f"\ue000{DOLLAR}\ue001{BACKSLASH}\\*"),
        ("$\\[x](y)", f"{DOLLAR}{BACKSLASH}&#91;x&#93;&#40;y&#41;"),
    ],
)
def test_url_starts_in_any_case_are_broken_and_dollars_isolated(text, escaped):
    """The escaper's fast paths (one replace per character, a search only when `://` or `www.` is
    there) give what the single-pass rule says, whatever the case of the scheme."""
    from elk_jupyter.display.markdown_inline import escape_text

    assert escape_text(text) == escaped
