// Math in model text: `$…$`, `$$…$$`, `\(…\)`, `\[…\]` kept exactly as written (delimiters included), in an element
// with the class `elk-math`, so a typesetter (JupyterLab's latexTypesetter) can pick it up and emphasis or escape
// parsing never mangles it. Inline `$` follows Pandoc's rule (https://pandoc.org/MANUAL.html#math): no space just
// inside the dollars, and no digit right after the closing one, so "price $5 and $6" stays prose.

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
