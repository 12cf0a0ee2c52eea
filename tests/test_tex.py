"""The math policy (elk_jupyter/display/tex.py): what may be typeset, the same verdict in Python and in the
JS renderer (js/math.js, lists generated into js/tex-allowed.generated.js)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from elk_jupyter.display.tex import js_module, safe_tex

ROOT = Path(__file__).resolve().parent.parent
SAFE = [
    "x^2",
    "\\frac{a}{b}",
    "\\begin{pmatrix} a & b \\\\ c & d \\end{pmatrix}",
    "\\text{if } x > 0",
    "\\left( \\sum_{i=1}^n i \\right)",
    "\\mathbb{R}^{n \\times n}",
    "\\{ x \\mid x \\in A \\}",
    "\\operatorname*{argmax}_x f(x)",
    "a \\, b \\; c \\quad d",
    "\\begin{align*} a &= b \\\\[2pt] c &= d \\end{align*}",
]
UNSAFE = [
    '\\mmlToken{mglyph}[src="//h/"]{}',
    "\\style{cursor: url(//h/), auto}{x}",
    "\\bbox[background: url(//h/)]{x}",
    "\\href{//h/}{x}",
    "\\class{jp-Dialog}{x}",
    "\\cssId{main}{x}",
    "\\unicode[Arial]{x41}",
    "\\require{//h/x.js}",
    "\\data{src=//h/}{x}",
    "\\def\\s{\\style}\\s{x}{y}",
    "\\newcommand{\\y}{\\href}",
    "\\let\\z\\href",
    "\\csname href\\endcsname",
    "\\color{red}{x}",
    "\\colorbox{url(//h/)}{x}",
    "\\includegraphics{//h/}",
    "\\url{//h/}",
    "\\eqref{a}",
    "\\Huge x",
    "\\rule{99em}{99em}",
    "\\raise{9em}{x}",
    "\\begin{x} y \\end{x}",
    "\\begin x",
    "\\sty\u200ble{x}",
    "\\\u0125ref",
    "\\sty%\nle",
    "{x",
    "x}",
    "a $ b",
    "a # b",
    "a \\\\{ b }",
    "\\$",
    "\\(",
    "\\[",
    "@@1@@",
    "x\u202e",
    "\\",
    "x" * 5000,
]


def test_the_js_lists_are_generated_from_this_module():
    assert (ROOT / "js" / "tex-allowed.generated.js").read_text() == js_module()


@pytest.mark.parametrize("tex", SAFE)
def test_plain_math_is_typeset(tex):
    assert safe_tex(tex)


@pytest.mark.parametrize("tex", UNSAFE)
def test_anything_that_can_fetch_style_define_or_hide_is_shown_as_code(tex):
    assert not safe_tex(tex)


def test_python_and_js_give_the_same_verdict():
    node = shutil.which("node")
    assert node, "node is needed for the JS half of the policy (npm test runs it too)"
    corpus = (ROOT / "tests" / "fixtures" / "render_corpus" / "math-obfuscated.md").read_text()
    samples = SAFE + UNSAFE + corpus.split("$") + ["\\" + chr(c) for c in range(32, 127)] + ["a\U0001d400b", "\ud800"]
    script = (
        "import('./js/math.js').then((m) => { let data = '';"
        " process.stdin.on('data', (c) => (data += c)).on('end', () =>"
        " console.log(JSON.stringify(JSON.parse(data).map(m.safeTex)))); });"
    )
    payload = json.dumps(samples, ensure_ascii=True)
    out = subprocess.run([node, "-e", script], input=payload, capture_output=True, text=True, cwd=ROOT, check=True)
    assert json.loads(out.stdout) == [safe_tex(s) for s in samples]
