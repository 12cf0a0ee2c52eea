// Incremental rendering (blocks.js): a reply streamed in pieces ends exactly as drawn at once, settled blocks are
// never drawn again, every intermediate state is as inert as the policy makes a whole text, and unfinished Markdown
// reads sensibly (an open fence is code, a half-typed `**` is not emphasis).
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { JSDOM } from "jsdom";
import { streamingMarkdown } from "./blocks.js";
import { createRenderPolicy } from "./render.js";

const { window } = new JSDOM("<!DOCTYPE html><body></body>");
const policy = createRenderPolicy(window);
const CORPUS = new URL("../tests/fixtures/render_corpus/", import.meta.url);
const corpus = readdirSync(CORPUS).filter((n) => n.endsWith(".md")).map((n) => [n, readFileSync(new URL(n, CORPUS), "utf8")]);

const whole = (text) => {
  const div = window.document.createElement("div");
  policy.render(div, text);
  return div.innerHTML;
};

// The container's HTML with the chunk wrappers (div.elk-blocks, for the browser's content-visibility) taken out.
const unchunked = (div) => [...div.childNodes].map((n) => (n.classList?.contains("elk-blocks") ? n.innerHTML : n.outerHTML ?? n.textContent)).join("");

// Streams `text` in `size`-character pieces; calls `check(div, shown)` after each update; returns the container.
function stream(text, size, check = () => {}) {
  const div = window.document.createElement("div");
  const view = streamingMarkdown(div, policy);
  for (let end = size; end < text.length + size; end += size) {
    view.update(text.slice(0, end), true);
    check(div, text.slice(0, end));
  }
  view.update(text, false);
  return div;
}

const FORBIDDEN = "img, script, iframe, svg, image, link, style, video, audio, source, object, embed, form, input, meta, base";

test("every corpus file streamed in pieces ends exactly as drawn at once, and is inert at every step", () => {
  for (const [name, text] of corpus) {
    for (const size of [3, 200]) {
      const div = stream(text, size, (state) => {
        assert.equal(state.querySelector(FORBIDDEN), null, name);
        for (const node of state.querySelectorAll("*")) {
          for (const attr of node.attributes) assert.ok(!attr.name.startsWith("on") && attr.name !== "src", `${name}: ${attr.name}`);
        }
        for (const a of state.querySelectorAll("[href]")) assert.match(a.getAttribute("href"), /^(https?|mailto):/, name);
      });
      assert.equal(unchunked(div), whole(text), `${name} in ${size}-character pieces`);
    }
  }
});

test("settled blocks stay the same DOM nodes while the reply grows", () => {
  const blocks = Array.from({ length: 800 }, (_, i) => `Paragraph ${i} with *emphasis* and \`code\`.\n\n`).join("");
  const div = window.document.createElement("div");
  const view = streamingMarkdown(div, policy);
  view.update(blocks.slice(0, 400), true);
  const first = div.querySelector("p");
  let drawn = 0;
  const counting = { ...policy, tokensToFragment: (tokens) => ((drawn += tokens.length), policy.tokensToFragment(tokens)) };
  const counted = streamingMarkdown(window.document.createElement("div"), counting);
  for (let end = 400; end <= blocks.length; end += 200) {
    view.update(blocks.slice(0, end), true);
    counted.update(blocks.slice(0, end), true);
  }
  assert.equal(div.querySelector("p"), first); // never drawn again
  assert.ok(drawn < 2 * 1600 + (blocks.length / 200) * 4, drawn); // each block drawn about once, not once per update
  view.update(blocks, false);
  assert.equal(unchunked(div), whole(blocks));
  assert.ok(div.querySelectorAll(":scope > .elk-blocks").length > 1); // in chunks, each skippable off screen
  assert.equal(div.classList.contains("elk-long"), true); // long enough for the browser to skip them
});

test("CRLF line ends: offsets stay right when marked turns them into LF", () => {
  const text = "one\r\ntwo\r\n\r\n# head\r\n\r\n- a\r\n- b\r\n\r\nend\r\n";
  assert.equal(unchunked(stream(text, 3)), whole(text));
});

test("an open code fence shows as code while it streams", () => {
  const div = window.document.createElement("div");
  const view = streamingMarkdown(div, policy);
  view.update("Here:\n\n```python\ndef f(x):\n    return x *", true);
  assert.equal(div.querySelector("pre code.language-python").textContent, "def f(x):\n    return x *\n");
});

test("a half-typed emphasis marker is held back; a closing one is not", () => {
  const shown = (text) => {
    const div = window.document.createElement("div");
    streamingMarkdown(div, policy).update(text, true);
    return div.innerHTML;
  };
  assert.equal(shown("so **bold*"), "<p>so **bold</p>\n"); // not `*<em>bold</em>`
  assert.equal(shown("a lone **"), "<p>a lone </p>\n");
  assert.equal(shown("2 ** 3 is 8"), "<p>2 ** 3 is 8</p>\n");
  assert.equal(shown("so **bold**"), "<p>so <strong>bold</strong></p>\n");
  assert.equal(shown("so *it*"), "<p>so <em>it</em></p>\n");
  const div = window.document.createElement("div");
  streamingMarkdown(div, policy).update("so **bold*", false); // the final state holds nothing back
  assert.equal(unchunked(div), whole("so **bold*"));
});

test("a reference definition after its use: the final state is drawn at once, so the link resolves", () => {
  const text = "See [the docs][d].\n\nMore text.\n\n[d]: https://example.com/docs\n";
  assert.equal(unchunked(stream(text, 5)), whole(text));
  assert.match(whole(text), /href="https:\/\/example.com\/docs"/);
});

test("a text that does not extend the previous one is drawn from scratch", () => {
  const div = window.document.createElement("div");
  const view = streamingMarkdown(div, policy);
  view.update("first\n\nsecond\n\nthi", true);
  view.update("other\n\ntext", true);
  view.update("other\n\ntext", false);
  assert.equal(unchunked(div), whole("other\n\ntext"));
});
