// The one rendering policy for untrusted text (model output, server strings), used by the live panel and by the
// saved-turn renderer alike. Markdown is parsed by marked; what it would emit as live HTML is turned into text here:
// raw HTML shows as text, links keep only http(s)/mailto targets (judged by the URL parser after decoding), images
// become click-to-load placeholders, math is kept verbatim for a typesetter. DOMPurify, with an allow-list that
// admits only what this renderer itself emits, is the second line of defence.
import DOMPurify from "dompurify";
import { Marked, Tokenizer } from "marked";
import { mathExtension } from "./math.js";

const LINK_SCHEMES = ["http:", "https:", "mailto:"];
const IMAGE_SCHEMES = ["http:", "https:"];
// Past this size, Markdown parsing costs more than it gives: the text is shown as plain text.
export const MAX_MARKDOWN_CHARS = 400_000;

// Characters that a URL parser skips or a reader cannot see: C0/C1 controls, soft hyphen, zero-width and bidi marks.
const INVISIBLE = /[\u0000-\u001f\u007f-\u009f\u00ad\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]/g;
const BACKSLASH_ESCAPE = /\\([!-/:-@[-`{-~])/g; // CommonMark's escapable ASCII punctuation

const HTML_ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
export const escapeHtml = (value) => String(value).replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]);

// Entities decoded as an HTML attribute would be, by the document's own parser (a <textarea> parses as RCDATA:
// entities are decoded, tags are not).
function entityDecoder(document) {
  const area = document.createElement("textarea");
  return (text) => {
    if (!text.includes("&")) return text;
    area.innerHTML = text;
    return area.value;
  };
}

// The canonical absolute URL if `raw` (decoded, unescaped, invisible characters dropped) parses to one of
// `schemes`, else null. The verdict is the URL parser's, so no spelling of a scheme can differ from what a browser
// would follow; relative and protocol-relative URLs are refused (they would resolve against the notebook server).
export function safeUrl(raw, schemes, decode = (s) => s) {
  if (typeof raw !== "string" || raw.length > 8192) return null;
  const cleaned = decode(raw).replace(BACKSLASH_ESCAPE, "$1").replace(INVISIBLE, "").trim();
  let url;
  try {
    url = new URL(cleaned);
  } catch {
    return null;
  }
  return schemes.includes(url.protocol) ? url.href : null;
}

function imagePlaceholder(src, alt) {
  const named = alt.trim() ? ` “${escapeHtml(alt.trim())}”` : "";
  if (!src) {
    return `<button type="button" class="elk-image elk-image-blocked" disabled title="Only http(s) images can be loaded">Image${named} not loadable</button>`;
  }
  const host = escapeHtml(new URL(src).host);
  return `<button type="button" class="elk-image" data-elk-src="${escapeHtml(src)}" data-elk-alt="${escapeHtml(alt.trim())}" title="Load ${escapeHtml(src)}">Load image${named} from ${host}</button>`;
}

// Raw HTML must not change how the text around it is read: marked's tag tokenizer flags `<pre>`, `<code>`, `<a>`
// and friends as opening raw blocks or links, which turns off escaping of the text after them. (marked's `use`
// takes tokenizer overrides as a plain object of methods.)
const inertHtmlTokenizer = {
  tag(src) {
    const token = Tokenizer.prototype.tag.call(this, src);
    if (token) Object.assign(this.lexer.state, { inRawBlock: false, inLink: false });
    return token;
  },
};

function markdownParser(decode) {
  const parser = new Marked({ gfm: true, breaks: false, async: false, tokenizer: inertHtmlTokenizer });
  parser.use(mathExtension(escapeHtml));
  parser.use({
    renderer: {
      html: ({ text, block }) => (block ? `<div class="elk-raw-html">${escapeHtml(text.replace(/\n+$/, ""))}</div>\n` : escapeHtml(text)),
      checkbox: ({ checked }) => `<span class="elk-task">${checked ? "☑" : "☐"}</span> `,
      link({ href, title, tokens }) {
        const inner = this.parser.parseInline(tokens);
        const url = safeUrl(href, LINK_SCHEMES, decode);
        if (!url) return `<span class="elk-link-blocked" title="Not a link: only http(s) and mailto links are">${inner}</span>`;
        const titled = title ? ` title="${escapeHtml(decode(title))}"` : "";
        return `<a href="${escapeHtml(url)}"${titled} target="_blank" rel="noopener noreferrer">${inner}</a>`;
      },
      image({ href, text, tokens }) {
        const alt = tokens ? this.parser.parseInline(tokens, this.parser.textRenderer) : text;
        return imagePlaceholder(safeUrl(href, IMAGE_SCHEMES, decode), decode(alt || ""));
      },
    },
  });
  return parser;
}

const PURIFY_CONFIG = {
  ALLOWED_TAGS: ["a", "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "blockquote", "pre",
    "code", "em", "strong", "del", "table", "thead", "tbody", "tr", "th", "td", "span", "div", "button"],
  ALLOWED_ATTR: ["href", "title", "class", "align", "start", "type", "disabled", "data-elk-src", "data-elk-alt", "target",
    "rel"],
  ALLOW_DATA_ATTR: false,
  ALLOW_ARIA_ATTR: false,
  ALLOWED_URI_REGEXP: /^(?:https?|mailto):/i,
  // DOMPurify checks every other allowed attribute's value against ALLOWED_URI_REGEXP: these hold no URL.
  ADD_URI_SAFE_ATTR: ["type", "start", "data-elk-alt", "target", "rel"],
  RETURN_DOM_FRAGMENT: true,
};

function strictPurifier(window, decode) {
  const purify = DOMPurify(window);
  purify.addHook("afterSanitizeAttributes", (node) => {
    if (node.tagName === "A") {
      const url = safeUrl(node.getAttribute("href"), LINK_SCHEMES, decode);
      if (url) node.setAttribute("href", url);
      else node.removeAttribute("href");
      node.setAttribute("target", "_blank");
      node.setAttribute("rel", "noopener noreferrer");
    }
    if (node.hasAttribute?.("data-elk-src") && !safeUrl(node.getAttribute("data-elk-src"), IMAGE_SCHEMES)) {
      node.removeAttribute("data-elk-src");
      node.setAttribute("disabled", "");
    }
  });
  return (html) => purify.sanitize(html, PURIFY_CONFIG);
}

// A click on a placeholder, and only that, puts the image in: one <img>, http(s) only, sending no referrer.
function loadImageOnClick(event) {
  const button = event.target.closest?.("button.elk-image");
  if (!button) return;
  event.preventDefault(); // a placeholder inside a link loads the image; it does not follow the link
  event.stopPropagation();
  const src = safeUrl(button.getAttribute("data-elk-src"), IMAGE_SCHEMES);
  if (!src || button.disabled) return;
  const img = button.ownerDocument.createElement("img");
  img.className = "elk-loaded-image";
  img.referrerPolicy = "no-referrer";
  img.alt = button.getAttribute("data-elk-alt") || "";
  img.src = src;
  button.replaceWith(img);
}

// Text shown as it is, in one <pre>: past MAX_MARKDOWN_CHARS, or when the parser fails on hostile input.
function plainFragment(window, text) {
  const fragment = window.document.createDocumentFragment();
  const pre = window.document.createElement("pre");
  pre.className = "elk-plain";
  pre.textContent = text;
  fragment.appendChild(pre);
  return fragment;
}

// The policy bound to one window: `render(container, text)` shows text; `toFragment(text)` is the sanitized DOM;
// `markup(text)` is the first line of defence alone (marked with our renderer, before DOMPurify), for tests.
export function createRenderPolicy(window) {
  const decode = entityDecoder(window.document);
  const sanitize = strictPurifier(window, decode);
  const marked = markdownParser(decode);
  const wired = new WeakSet();

  function toFragment(text) {
    text = typeof text === "string" ? text : "";
    if (text.length <= MAX_MARKDOWN_CHARS) {
      try {
        return sanitize(marked.parse(text));
      } catch {
        /* a parser failure on hostile input: fall through to plain text */
      }
    }
    return plainFragment(window, text);
  }

  // Clicks on image placeholders inside `container` load the image (once per container).
  function wire(container) {
    if (!wired.has(container)) {
      container.addEventListener("click", loadImageOnClick);
      wired.add(container);
    }
  }

  function render(container, text) {
    container.replaceChildren(toFragment(text));
    wire(container);
  }

  // For incremental rendering (blocks.js): marked's block tokens of `text`, and the sanitized DOM of some of them.
  // The same parser, renderer and sanitizer as `toFragment`: a text drawn in pieces is held to the same policy.
  const lex = (text) => marked.lexer(text);
  const tokensToFragment = (tokens) => sanitize(marked.parser(tokens));
  // Highlighted code (highlight.js output: text escaped by it, in <span class="hljs-…">) passes the same sanitizer.
  const highlightedFragment = (html) => sanitize(html);

  return { markup: (text) => marked.parse(text), toFragment, render, wire, lex, tokensToFragment, highlightedFragment,
    plainFragment: (text) => plainFragment(window, text) };
}
