// Math in model text, the one JS policy for it. The Markdown extension keeps `$…$`, `$$…$$`, `\(…\)`, `\[…\]` exactly
// as written (delimiters included) in an element with the class `elk-math`, so emphasis or escape parsing never
// mangles it; the live panel shows it so, verbatim in code font (it has no typesetter). Only blockTypesetter hands
// math to a typesetter (JupyterLab's MathJax, in the saved-turn renderer): a formula whose every command is on the
// allow-list (safeTex; the lists are generated from elk_jupyter/display/tex.py, the Python half) is typeset, any
// other is shown as code, since MathJax with all its packages builds images, links and styles from TeX
// (`\mmlToken{mglyph}[src=…]`, `\style`, `\href`, …). Inline `$` follows Pandoc's rule
// (https://pandoc.org/MANUAL.html#math): no space just inside the dollars, and no digit right after the closing one,
// so "price $5 and $6" stays prose.
import { COMMANDS, ENVIRONMENTS, MAX_TEX, SYMBOL_COMMANDS } from "./tex-allowed.generated.js";

const MAX_MATH = 4096; // a closing delimiter further than this is not math: bounds the work per candidate

const INLINE_FORMS = [
  { open: "$$", close: "$$", display: true },
  { open: "\\[", close: "\\]", display: true },
  { open: "\\(", close: "\\)", display: false },
];
const SINGLE_DOLLAR = /^\$(?![\s$])((?:\\[\s\S]|[^\\$]){1,4096}?)(?<![\s\\])\$(?!\d)/;
const BLOCK = /^ {0,3}(\$\$[\s\S]+?\$\$|\\\[[\s\S]+?\\\])[ \t]*(?:\n+|$)/;
// Every span a math tokenizer could take, for masking emphasis delimiters inside math (see emStrongMask).
const ANYWHERE = /\$\$[\s\S]{1,4096}?\$\$|\\\[[\s\S]{1,4096}?\\\]|\\\([\s\S]{1,4096}?\\\)|\$(?![\s$])(?:\\[\s\S]|[^\\$]){1,4096}?(?<![\s\\])\$(?!\d)/g;

function delimited(src) {
  for (const form of INLINE_FORMS) {
    if (!src.startsWith(form.open)) continue;
    const end = src.slice(0, MAX_MATH).indexOf(form.close, form.open.length + 1);
    if (end < 0) return null;
    return { raw: src.slice(0, end + form.close.length), display: form.display };
  }
  const match = SINGLE_DOLLAR.exec(src);
  return match ? { raw: match[0], display: false } : null;
}

// MathJax's own reading of a control sequence (TexParser.GetCS: `/^([a-z]+|.) ?/i`): ASCII letters, or one character.
const COMMAND = /\\([A-Za-z]+|[\s\S]?)/y;
const ENVIRONMENT_NAME = /[ \t]*\{([A-Za-z*]{1,20})\}/y;
const HIDDEN = /(?![\n\t])\p{C}/u; // controls, format (zero-width, bidi), private use, unassigned

// True if `body` (a formula without its delimiters) uses only allowed commands and characters, with balanced
// braces: typesetting it can build nothing but math. The same rule as tex.py's safe_tex.
export function safeTex(body) {
  if (body.length > MAX_TEX || body.includes("@@") || HIDDEN.test(body)) return false;
  let depth = 0;
  for (let at = 0; at < body.length; ) {
    const char = body[at];
    if (char === "\\") {
      COMMAND.lastIndex = at;
      const [whole, name] = COMMAND.exec(body);
      at += whole.length;
      if (name === "begin" || name === "end") {
        ENVIRONMENT_NAME.lastIndex = at;
        const env = ENVIRONMENT_NAME.exec(body);
        if (!env || !ENVIRONMENTS.has(env[1])) return false;
        at += env[0].length;
      } else if (!COMMANDS.has(name) && !SYMBOL_COMMANDS.has(name)) {
        return false;
      } else if (name === "\\" && (body[at] === "{" || body[at] === "}")) {
        return false; // TeX reads `\\{` as `\\` `{`, JupyterLab's removeMath as `\{`
      }
      continue;
    }
    if (char === "$" || char === "#" || char === "%") return false; // end of math, macro parameter, comment
    depth += (char === "{") - (char === "}");
    if (depth < 0) return false;
    at += 1;
  }
  return depth === 0;
}

// The formula between a form's delimiters.
function body(raw) {
  return raw.startsWith("$$") || raw.startsWith("\\") ? raw.slice(2, -2) : raw.slice(1, -1);
}

// Elements a typesetter may have built from TeX that fetch, link or embed; attributes that hold a URL or a script.
const BUILT = "img, image, a, iframe, object, embed, video, audio, source, picture, link, style, script, use, foreignObject";
const URL_ATTRIBUTES = /* @__PURE__ */ new Set(["src", "srcset", "href", "xlink:href", "action", "formaction", "poster", "background", "data", "ping"]);
const FETCHING_STYLE = /url\s*\(|image|@import|expression|\\|behavior|binding|cursor|content\s*:/i;

// Second line of defence, after typesetting: whatever slipped through the allow-list cannot fetch, link or restyle
// the page. Links keep their text; fetching elements go; URL and script attributes and fetching styles are removed.
export function scrubTypeset(root) {
  for (const math of root.querySelectorAll("mjx-container, .MathJax")) {
    for (const node of math.querySelectorAll(BUILT)) {
      if (node.localName === "a") node.replaceWith(...node.childNodes);
      else node.remove();
    }
    for (const node of [math, ...math.querySelectorAll("*")]) {
      for (const { name, value } of [...node.attributes]) {
        const lower = name.toLowerCase();
        if (URL_ATTRIBUTES.has(lower) || lower.startsWith("on") || (lower === "style" && FETCHING_STYLE.test(value))) {
          node.removeAttribute(name);
        }
      }
    }
  }
}

// `typesetAll(elements)` (JupyterLab's MathJax, see labextension/src/typeset.js) made into one pass per batch of
// turns: the function returned takes a turn's root; every root asked for before the pending pass begins (the turns
// drawn in one task: js/when-shown.js draws several per idle period) is typeset in that one MathJax pass, which
// measures the page once (a forced layout per pass was most of MathJax's cost when opening a long notebook:
// bench/saved_notebook.py). In each root, every formula not seen yet is judged first: allowed ones get
// `mathjax_process`, the others become code. A root gets `mathjax_ignore`, so MathJax reads text only inside
// `.mathjax_process`: prose, headers and errors, `$` or not, are never read as math. Passes run one after the other.
// (Only the saved-turn renderer imports this: the live panel's bundle leaves it and the lists out.)
export function blockTypesetter(typesetAll) {
  let queue = Promise.resolve();
  let waiting = null; // the roots the queued pass will typeset; more join it until it begins
  async function pass(roots) {
    const pending = roots.map(judge);
    const withMath = roots.filter((root, at) => pending[at].length);
    if (!withMath.length) return;
    try {
      await typesetAll(withMath);
    } finally {
      for (const math of pending.flat()) math.classList.remove("mathjax_process");
      withMath.forEach(scrubTypeset);
    }
  }
  return (root) => {
    root.classList.add("mathjax_ignore");
    if (!waiting) {
      const roots = (waiting = new Set());
      const begin = () => {
        waiting = null;
        return pass([...roots]);
      };
      queue = queue.then(begin, begin);
    }
    waiting.add(root);
    return queue;
  };
}

// A root's formulas not judged yet: the allowed ones marked for the typesetter (returned), the others made code.
function judge(root) {
  const pending = [];
  for (const math of root.querySelectorAll(".elk-math:not(.elk-math-judged)")) {
    math.classList.add("elk-math-judged");
    if (safeTex(body(math.textContent.trim()))) {
      math.classList.add("mathjax_process");
      pending.push(math);
    } else {
      math.replaceWith(asCode(math));
    }
  }
  return pending;
}

// A refused formula as code: inline <code>, or a block <pre><code>, with the text exactly as written.
function asCode(math) {
  const doc = math.ownerDocument;
  const code = doc.createElement("code");
  code.className = "elk-math-code";
  code.textContent = math.textContent;
  if (math.localName !== "div") return code;
  const pre = doc.createElement("pre");
  pre.className = "elk-math-code";
  pre.appendChild(code);
  return pre;
}

export function mathExtension(escapeHtml) {
  // Inside a paragraph even display math is a <span> (a <div> would end the <p>); CSS makes it a block.
  const render = (token) =>
    `<span class="elk-math ${token.display ? "elk-math-display" : "elk-math-inline"}">${escapeHtml(token.raw)}</span>`;
  return {
    extensions: [
      {
        name: "elkMathBlock",
        level: "block",
        tokenizer(src) {
          const match = BLOCK.exec(src);
          return match ? { type: "elkMathBlock", raw: match[0], display: true } : undefined;
        },
        renderer: (token) => `<div class="elk-math elk-math-display">${escapeHtml(token.raw.trim())}</div>\n`,
      },
      {
        name: "elkMath",
        level: "inline",
        start: (src) => {
          const at = src.search(/\$|\\[([]/);
          return at < 0 ? undefined : at;
        },
        tokenizer(src) {
          const found = delimited(src);
          return found ? { type: "elkMath", ...found } : undefined;
        },
        renderer: render,
      },
    ],
    hooks: {
      // marked looks for the closing `*`/`_` of emphasis in a masked copy of the text; hide those inside math so
      // `*a $b*c$` does not end an emphasis inside the formula. Same length in, same length out.
      emStrongMask: (src) => src.replace(ANYWHERE, (span) => span.replace(/[*_~]/g, "a")),
    },
  };
}
