import assert from "node:assert/strict";
import { test } from "node:test";
import { JSDOM } from "jsdom";
import { makeSanitizer, markdownToSafeHtml } from "./render.js";

const { window } = new JSDOM("<!DOCTYPE html><body></body>");
const sanitize = makeSanitizer(window);
const render = (md) => {
  const div = window.document.createElement("div");
  div.innerHTML = markdownToSafeHtml(md, sanitize);
  return div;
};

test("markdown renders code blocks, lists and tables", () => {
  const div = render("# T\n\n- a\n- b\n\n```py\nx = 1 < 2\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |");
  assert.equal(div.querySelectorAll("li").length, 2);
  assert.equal(div.querySelector("pre code").textContent, "x = 1 < 2\n");
  assert.equal(div.querySelectorAll("td").length, 2);
});

test("scripts, event handlers and javascript: links never survive", () => {
  const div = render('<script>alert(1)</script><img src=x onerror="alert(1)"> [a](javascript:alert(1)) <a href="JavaScript:alert(1)">b</a> <iframe src="x"></iframe> <svg onload=alert(1)></svg> [c](data:text/html,<script>)');
  assert.equal(div.querySelector("script"), null);
  assert.equal(div.querySelector("iframe"), null);
  for (const node of div.querySelectorAll("*")) {
    for (const attr of node.attributes) {
      assert.ok(!attr.name.startsWith("on"), `${node.tagName} ${attr.name}`);
      assert.ok(!/^\s*(javascript|data|vbscript):/i.test(attr.value), `${node.tagName} ${attr.name}=${attr.value}`);
    }
  }
  assert.equal(div.querySelector("img").getAttribute("src"), null); // "x" is not an allowed URL form
});

test("safe links open in a new tab without an opener", () => {
  const a = render("[site](https://example.com)").querySelector("a");
  assert.equal(a.getAttribute("href"), "https://example.com");
  assert.equal(a.getAttribute("target"), "_blank");
  assert.match(a.getAttribute("rel"), /noopener/);
});
