// Syntax highlighting of code blocks, with highlight.js's core and only the grammars a caller hands it: the live
// panel bundles a few small ones (its ESM is sent whole to every view: see docs/performance.md for the budget), the
// saved-turn renderer loads each of a longer list only when a reply has a block in that language (webpack chunks).
// Its output (HTML with the text escaped by highlight.js, in <span class="hljs-…">) still passes the render policy's
// sanitizer before it reaches the DOM (see code.js).
import hljs from "highlight.js/lib/core";

// A fence's info word -> the grammar's name, known before any grammar is loaded (grammars carry their own aliases,
// but a lazy one is not there yet to ask).
const ALIASES = {
  py: "python", python3: "python", py3: "python", ipython: "python",
  js: "javascript", jsx: "javascript", mjs: "javascript", cjs: "javascript", node: "javascript",
  ts: "typescript", tsx: "typescript", mts: "typescript",
  jsonc: "json", json5: "json",
  sh: "bash", shell: "bash", zsh: "bash", console: "bash", shellsession: "bash",
  html: "xml", xhtml: "xml", svg: "xml", htm: "xml",
  yml: "yaml", md: "markdown", patch: "diff", h: "c",
  "c++": "cpp", cc: "cpp", cxx: "cpp", hpp: "cpp", hh: "cpp",
  golang: "go", rs: "rust", postgresql: "sql", mysql: "sql", sqlite: "sql",
};
export const MAX_HIGHLIGHT_CHARS = 20_000; // a longer block stays plain: highlighting it would block the page

// `loaders` maps a grammar's name to a function returning the grammar, or a promise of a module whose default
// export is one. `highlight(code, language, later)` returns highlighted HTML now, or null; if the grammar is still
// loading it returns null and calls `later(html)` once it is there.
export function createHighlighter(loaders) {
  const core = hljs.newInstance();
  const pending = new Map(); // name -> promise of its registration

  const nameOf = (language) => {
    const word = String(language || "").toLowerCase();
    const name = Object.hasOwn(loaders, word) ? word : ALIASES[word];
    return name && Object.hasOwn(loaders, name) ? name : null;
  };
  const run = (code, name) => core.highlight(code, { language: name, ignoreIllegals: true }).value;

  function highlight(code, language, later = () => {}) {
    const name = nameOf(language);
    if (!name || code.length > MAX_HIGHLIGHT_CHARS) return null;
    if (!core.getLanguage(name) && !pending.has(name)) {
      const grammar = loaders[name]();
      if (typeof grammar?.then === "function") {
        pending.set(name, grammar.then((module) => core.registerLanguage(name, module.default || module)));
      } else core.registerLanguage(name, grammar);
    }
    if (core.getLanguage(name)) return run(code, name);
    pending.get(name).then(() => later(run(code, name)), () => {});
    return null;
  }

  return { highlight, languages: () => Object.keys(loaders) };
}
