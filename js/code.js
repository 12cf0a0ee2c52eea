// The chrome of code blocks in rendered Markdown: a bar with the block's language and a copy button (it copies the
// code's own text), and syntax highlighting once the block is settled (an open block, still streaming, stays plain:
// highlighting it again on every update would cost O(block) each time).
import { copyButton } from "./clipboard.js";

const LANGUAGE_CLASS = /(?:^|\s)language-(\S{1,40})/;

function dress(pre, settled, paint) {
  const code = pre.querySelector(":scope > code");
  if (!code) return; // not a Markdown code block (the plain-text fallback)
  const doc = pre.ownerDocument;
  const language = (LANGUAGE_CLASS.exec(code.className) || [])[1] || "";
  const frame = doc.createElement("div");
  frame.className = "elk-code";
  const bar = frame.appendChild(doc.createElement("div"));
  bar.className = "elk-code-bar";
  const label = bar.appendChild(doc.createElement("span"));
  label.className = "elk-code-lang";
  label.textContent = language || "code";
  // marked ends a block's text with the newline before the closing fence: the code itself does not have it
  bar.appendChild(copyButton(doc, "Copy", "Copy this code", () => code.textContent.replace(/\n$/, "")));
  pre.replaceWith(frame);
  frame.appendChild(pre);
  if (settled) paint(code, language);
}

// `decorate(nodes, settled)` for blocks.js. `policy` is the render policy (its sanitizer takes the highlighter's
// HTML); `highlighter` (highlight.js's createHighlighter) may be null: code then stays plain.
export function codeDecorator(policy, highlighter) {
  function paint(code, language) {
    if (!highlighter) return;
    const source = code.textContent;
    const apply = (html) => {
      if (html === null || code.textContent !== source) return;
      code.replaceChildren(policy.highlightedFragment(html));
      code.classList.add("hljs");
    };
    apply(highlighter.highlight(source, language, apply));
  }
  return (nodes, settled) => {
    for (const node of nodes) {
      if (node.nodeType !== 1) continue;
      for (const pre of node.tagName === "PRE" ? [node] : node.querySelectorAll("pre")) dress(pre, settled, paint);
    }
  };
}
