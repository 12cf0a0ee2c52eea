// Model text -> safe HTML. Model output is untrusted: markdown goes through DOMPurify, links
// with script-capable schemes are dropped, and links open in a new tab without an opener.
import DOMPurify from "dompurify";
import { marked } from "marked";

const SAFE_URL = /^(?:https?:|mailto:|#|\/|\.\/|\.\.\/)/i;

export function makeSanitizer(window) {
  const purify = DOMPurify(window);
  purify.addHook("afterSanitizeAttributes", (node) => {
    for (const name of ["href", "src", "xlink:href", "action", "formaction"]) {
      const value = node.getAttribute && node.getAttribute(name);
      if (value !== null && value !== undefined && !SAFE_URL.test(value.trim())) node.removeAttribute(name);
    }
    if (node.tagName === "A") {
      node.setAttribute("target", "_blank");
      node.setAttribute("rel", "noopener noreferrer nofollow");
    }
  });
  return (html) =>
    purify.sanitize(html, {
      FORBID_TAGS: ["style", "form", "input", "button", "textarea", "select", "iframe", "object", "embed"],
      FORBID_ATTR: ["style"],
    });
}

// Markdown -> sanitized HTML string. `marked` never sees the DOM; only the sanitizer's output does.
export function markdownToSafeHtml(text, sanitize) {
  const html = marked.parse(text || "", { async: false, gfm: true, breaks: false });
  return sanitize(html);
}
