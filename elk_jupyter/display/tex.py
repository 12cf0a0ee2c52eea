"""Which math may reach a typesetter, and how text keeps `$` and `\\` away from one. Pure.

JupyterLab typesets with MathJax 3 and every TeX package (https://github.com/jupyterlab/jupyterlab,
packages/mathjax-extension): `\\mmlToken{mglyph}[src=...]` draws an <img>, `\\style{cursor:url(...)}`,
`\\bbox`, `\\class`, `\\cssId`, `\\href`, `\\unicode`, `\\require` and friends build URLs, styles and
elements, and `\\def` can build any of them from pieces. So a formula is typeset only when every command
in it is on the allow-list below (plain math: letters, operators, fractions, roots, matrices, fonts);
anything else is shown as code. The JS renderer applies the same lists (js/tex-allowed.generated.js is generated
from this module: ``python -m elk_jupyter.display.tex > js/tex-allowed.generated.js``; a test keeps them equal).

Text that is not math must never reach MathJax as a delimiter. JupyterLab hides math from its Markdown
parser (rendermime's `removeMath`, on the source), renders, then runs MathJax over the DOM text, where
Markdown has already removed the backslash of `\\$`. MathJax looks for delimiters inside one run of
text between elements (HTMLDomStrings), so each `$` and `\\` of our text is written as an entity in an
element of its own: neither `removeMath` (no `$` in the source) nor MathJax (no delimiter pair in one
text run) can pair it, and the page still shows `$` and `\\`.
"""

from __future__ import annotations

import re
import unicodedata

# Escapes for text, not math: an entity (removeMath sees no `$`/`\`) in its own element (MathJax sees it alone).
DOLLAR = "<span>&#36;</span>"
BACKSLASH = "<span>&#92;</span>"

_LETTER_COMMANDS = """
alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa varkappa lambda mu nu xi omicron pi
varpi rho varrho sigma varsigma tau upsilon phi varphi chi psi omega digamma Gamma Delta Theta Lambda Xi Pi Sigma
Upsilon Phi Psi Omega varGamma varDelta varTheta varLambda varXi varPi varSigma varUpsilon varPhi varPsi varOmega
aleph beth gimel daleth
pm mp times div cdot ast star circ bullet oplus ominus otimes oslash odot cap cup sqcap sqcup vee wedge land lor
setminus smallsetminus wr diamond bigtriangleup bigtriangledown triangleleft triangleright lhd rhd unlhd unrhd uplus
amalg dagger ddagger centerdot dotplus ltimes rtimes intercal cdotp ldotp
leq le geq ge neq ne equiv approx approxeq sim simeq cong propto prec succ preceq succeq ll gg lll ggg subset supset
subseteq supseteq subsetneq supsetneq sqsubset sqsupset sqsubseteq sqsupseteq in ni notin owns mid nmid parallel
nparallel perp models vdash dashv asymp doteq bowtie smile frown lt gt leqslant geqslant lesssim gtrsim nleq ngeq
nless ngtr nsim ncong nsubseteq nsupseteq triangleq coloneqq eqqcolon colon vartriangle
to gets leftarrow rightarrow leftrightarrow Leftarrow Rightarrow Leftrightarrow longleftarrow longrightarrow
longleftrightarrow Longleftarrow Longrightarrow Longleftrightarrow mapsto longmapsto uparrow downarrow updownarrow
Uparrow Downarrow Updownarrow nearrow searrow swarrow nwarrow hookleftarrow hookrightarrow leftharpoonup
rightharpoonup leftharpoondown rightharpoondown rightleftharpoons leftrightharpoons implies impliedby iff leadsto
xrightarrow xleftarrow nrightarrow nleftarrow nRightarrow nLeftarrow twoheadrightarrow rightrightarrows
infty partial nabla forall exists nexists emptyset varnothing neg lnot top bot angle measuredangle triangle square
Box blacksquare lozenge bigstar hbar hslash ell Re Im wp prime backprime backslash ldots cdots vdots ddots dots
dotsc dotsb dotsm dotsi dotso flat natural sharp clubsuit diamondsuit heartsuit spadesuit surd checkmark imath
jmath therefore because complement mho eth
sum prod coprod int iint iiint oint bigcup bigcap bigoplus bigotimes bigodot bigvee bigwedge biguplus bigsqcup
lim limsup liminf sup inf max min arg det dim exp gcd hom ker lg ln log Pr sin cos tan cot sec csc arcsin arccos
arctan sinh cosh tanh coth deg injlim projlim
left right middle big Big bigg Bigg bigl bigr Bigl Bigr biggl biggr Biggl Biggr bigm Bigm langle rangle lfloor
rfloor lceil rceil lvert rvert lVert rVert vert Vert lbrace rbrace lbrack rbrack ulcorner urcorner llcorner
lrcorner
frac dfrac tfrac cfrac binom dbinom tbinom sqrt root of overline underline overbrace underbrace overrightarrow
overleftarrow overleftrightarrow underrightarrow underleftarrow widehat widetilde hat tilde bar vec dot ddot dddot
acute grave breve check mathring stackrel overset underset atop choose over substack boxed not cancel bcancel
xcancel sideset
mathrm mathbf mathit mathsf mathtt mathcal mathbb mathfrak mathscr mathnormal boldsymbol rm bf it sf tt cal
text textrm textbf textit textsf texttt textnormal mbox operatorname mathop mathbin mathrel mathord mathopen
mathclose mathpunct mathinner
quad qquad enspace thinspace negthinspace displaystyle textstyle scriptstyle scriptscriptstyle limits nolimits
phantom hphantom vphantom smash pmod bmod mod pod hline cr nonumber notag tag S P
""".split()
# `\\`, spacing, escaped specials. Never `\$` (a delimiter to removeMath), `\(`, `\[` (delimiters to MathJax).
_SYMBOL_COMMANDS = ["\\", ",", ";", ":", "!", " ", "{", "}", "|", "%", "&", "#", "_", ">"]
_ENVIRONMENTS = """
matrix pmatrix bmatrix Bmatrix vmatrix Vmatrix smallmatrix cases dcases rcases array subarray aligned alignedat
gathered split align align* alignat alignat* gather gather* equation equation* multline multline* eqnarray
eqnarray*
""".split()

COMMANDS = frozenset(_LETTER_COMMANDS)
SYMBOL_COMMANDS = frozenset(_SYMBOL_COMMANDS)
ENVIRONMENTS = frozenset(_ENVIRONMENTS)
MAX_TEX = 4096  # characters of one formula; past this it is shown as code

# MathJax's own reading of a control sequence (TexParser.GetCS: `/^([a-z]+|.) ?/i`): ASCII letters, or one character.
_COMMAND = re.compile(r"\\([A-Za-z]+|[\s\S]?)")
_ENVIRONMENT_NAME = re.compile(r"[ \t]*\{([A-Za-z*]{1,20})\}")
_REFUSED_CHARACTERS = frozenset("$#%")  # `$` ends math; `#` and `%` are TeX's macro parameter and comment


def safe_tex(body: str) -> bool:
    """True if ``body`` (a formula without its delimiters) uses only allowed commands and characters,
    with balanced braces: typesetting it can build nothing but math."""
    if len(body) > MAX_TEX or "@@" in body:  # `@@n@@` is removeMath's own placeholder
        return False
    if any(unicodedata.category(c)[0] == "C" and c not in "\n\t" for c in body):
        return False  # controls, format (zero-width, bidi), private use, unassigned: nothing hides in the source
    depth = position = 0
    while position < len(body):
        char = body[position]
        if char == "\\":
            match = _COMMAND.match(body, position)
            name, position = match.group(1), match.end()
            if name in ("begin", "end"):
                env = _ENVIRONMENT_NAME.match(body, position)
                if env is None or env.group(1) not in ENVIRONMENTS:
                    return False
                position = env.end()
            elif name not in COMMANDS and name not in SYMBOL_COMMANDS:
                return False
            elif name == "\\" and body[position : position + 1] in ("{", "}"):
                return False  # TeX reads `\\{` as `\\` `{`, removeMath as `\{`: it would then pair the wrong `$`
            continue
        if char in _REFUSED_CHARACTERS:
            return False
        depth += (char == "{") - (char == "}")
        if depth < 0:
            return False
        position += 1
    return depth == 0


def js_module() -> str:
    """js/tex-allowed.generated.js: the same lists for the JS renderer (js/math.js). Words joined by spaces and `@__PURE__`,
    so a bundle that never asks for a verdict (the live panel, with its size budget) leaves them out."""
    symbols = "".join(sorted(SYMBOL_COMMANDS)).replace("\\", "\\\\")  # one character each
    words = {"COMMANDS": COMMANDS, "ENVIRONMENTS": ENVIRONMENTS}
    lines = [
        f'export const {name} = /* @__PURE__ */ new Set(/* @__PURE__ */ "{" ".join(sorted(items))}".split(" "));'
        for name, items in words.items()
    ]
    return "\n".join(
        [
            "// Generated by `python -m elk_jupyter.display.tex > js/tex-allowed.generated.js` (elk_jupyter/display/tex.py): do not edit.",
            *lines,
            f'export const SYMBOL_COMMANDS = /* @__PURE__ */ new Set("{symbols}");',
            f"export const MAX_TEX = {MAX_TEX};",
            "",
        ]
    )


if __name__ == "__main__":
    import sys

    sys.stdout.write(js_module())
