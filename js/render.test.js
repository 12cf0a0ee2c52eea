// The render policy on the shared corpus (tests/fixtures/render_corpus): nothing that can run or fetch survives,
// code and math come out exactly as the model wrote them, images load only on a click.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { JSDOM, ResourceLoader } from "jsdom";
import { marked } from "marked";
import { blockTypesetter, safeTex } from "./math.js";
import { createRenderPolicy, MAX_MARKDOWN_CHARS, safeUrl } from "./render.js";

const CORPUS = new URL("../tests/fixtures/render_corpus/", import.meta.url);
const PORT = "8765";
const corpus = readdirSync(CORPUS)
  .filter((name) => name.endsWith(".md"))
  .map((name) => [name, readFileSync(new URL(name, CORPUS), "utf8").replaceAll("{PORT}", PORT)]);

// Every request jsdom would make for the rendered document (scripts, styles, frames, images) is counted.
class CountingLoader extends ResourceLoader {
  requests = [];
  fetch(url, options) {
    this.requests.push(url);
    return super.fetch(url, options);
  }
}
const loader = new CountingLoader();
const { window } = new JSDOM("<!DOCTYPE html><body></body>", { resources: loader, runScripts: "dangerously", url: "http://127.0.0.1:1/" });
const policy = createRenderPolicy(window);
const render = (md) => {
  const div = window.document.createElement("div");
  window.document.body.appendChild(div);
  policy.render(div, md);
  return div;
};

const texts = (root, selector) => [...root.querySelectorAll(selector)].map((node) => node.textContent);

const FORBIDDEN_TAGS = "img, script, iframe, svg, image, link, style, video, audio, source, picture, object, embed, form, input, meta, base";
const FORBIDDEN_ATTRS = ["src", "srcset", "poster", "style", "background", "xlink:href", "action", "formaction"];

function assertInert(div, name) {
  assert.equal(div.querySelector(FORBIDDEN_TAGS), null, `${name}: ${div.querySelector(FORBIDDEN_TAGS)?.outerHTML}`);
  for (const node of div.querySelectorAll("*")) {
    for (const attr of node.attributes) {
      assert.ok(!attr.name.startsWith("on"), `${name}: ${node.tagName} ${attr.name}`);
      assert.ok(!FORBIDDEN_ATTRS.includes(attr.name), `${name}: ${node.tagName} ${attr.name}`);
    }
  }
  for (const a of div.querySelectorAll("[href]")) assert.match(a.getAttribute("href"), /^(https?|mailto):/, `${name}: ${a.outerHTML}`);
  for (const a of div.querySelectorAll("a")) {
    assert.equal(a.getAttribute("target"), "_blank", name);
    assert.match(a.getAttribute("rel"), /\bnoopener\b/, name);
  }
}

// The model's code, as an independent CommonMark/GFM lexer (marked's own, without our extensions) reads it.
// An image's alt text is plain text (no <code> inside), so its tokens are skipped.
function expectedCode(md) {
  const found = [];
  const walk = (tokens) => {
    for (const token of tokens || []) {
      if (token.type === "image") continue;
      if (token.type === "codespan") found.push(token.text);
      // marked keeps the final newline of an indented block in its text, not of a fenced one: as its renderer does
      if (token.type === "code") found.push(token.text ? `${token.text.replace(/\n$/, "")}\n` : "");
      walk(token.tokens);
      if (token.type === "list") walk(token.items);
      if (token.type === "table") for (const cell of [...token.header, ...token.rows.flat()]) walk(cell.tokens);
    }
  };
  walk(marked.lexer(md, { gfm: true }));
  return found;
}

for (const [name, md] of corpus) {
  test(`corpus ${name}: inert, code exact, math intact`, () => {
    const div = render(md);
    assertInert(div, name);
    // The first line of defence holds without DOMPurify too (parsed in an inert <template>).
    const template = window.document.createElement("template");
    template.innerHTML = policy.markup(md);
    assertInert(template.content, `${name} (before DOMPurify)`);
    // (math the policy refuses is shown as code too, with the class elk-math-code)
    assert.deepEqual([...div.querySelectorAll("code:not(.elk-math-code)")].map((c) => c.textContent), expectedCode(md), name);
    for (const math of div.querySelectorAll(".elk-math, code.elk-math-code")) assert.ok(md.includes(math.textContent), `${name}: ${math.textContent}`);
    assert.equal(div.querySelector(".mathjax_process"), null, name); // only blockTypesetter marks math for a typesetter
  });
}

test("rendering the whole corpus runs no script and requests nothing", () => {
  const before = loader.requests.length;
  for (const [, md] of corpus) render(md);
  assert.equal(window.__pwned, undefined);
  assert.deepEqual(loader.requests.slice(before), []);
});

// What blockTypesetter gives the typesetter (the formulas marked .mathjax_process), and the element after it.
async function typesetOnce(md) {
  const div = render(md);
  const read = [];
  await blockTypesetter(([root]) => read.push(...texts(root, ".mathjax_process")))(div);
  return { div, read };
}

test("hostile math is shown as code, never given to the typesetter; safe math is", async () => {
  const typeset = async (name) => (await typesetOnce(corpus.find(([n]) => n === name)[1])).read;
  assert.deepEqual(await typeset("math-hostile.md"), ["$e^{i\\pi} + 1 = 0$", "$\\frac{a}{b} \\le \\sqrt[3]{x}$"]);
  // A full-width ＼ is an ordinary character to MathJax: that formula is harmless text and may be typeset.
  assert.deepEqual(await typeset("math-obfuscated.md"), [`$＼style{cursor: url(//127.0.0.1:${PORT}/fullwidth)}{x}$`, "$x$", "$y$"]);
  const md = corpus.find(([n]) => n === "math-hostile.md")[1];
  const { div } = await typesetOnce(md);
  const shown = texts(div, "code.elk-math-code").join("\n");
  assertInert(div, "math-hostile.md after typesetting");
  for (const [url] of md.matchAll(/\/\/127\.0\.0\.1:\d+\/[\w.-]+/g)) assert.ok(shown.includes(url), url); // each vector, as code
  assert.match(shown, /\\class\{jp-Dialog\}/);
  assert.match(shown, /\\cssId\{jp-main\}/);
});

test("the allow-list: plain math passes; anything that names a URL, style, class, id, load or definition does not", () => {
  for (const tex of ["x^2", "\\frac{a}{b}", "\\begin{pmatrix} a & b \\\\ c & d \\end{pmatrix}", "\\text{if } x > 0", "\\left( \\sum_{i=1}^n i \\right)",
    "\\mathbb{R}^{n \\times n}", "\\{ x \\mid x \\in A \\}", "\\operatorname*{argmax}_x f(x)", "a \\, b \\; c \\quad d"]) {
    assert.ok(safeTex(tex), tex);
  }
  for (const tex of ["\\style{color:red}{x}", "\\href{x}{y}", "\\class{a}{x}", "\\cssId{a}{x}", "\\bbox[red]{x}", "\\mmlToken{mi}{x}",
    "\\unicode{x41}", "\\require{color}", "\\def\\a{b}", "\\newcommand{\\a}{b}", "\\color{red}{x}", "\\begin{x}", "\\begin x", "{x",
    "x}", "\\frac{a}{b", "a $ b", "a # b", "a % b", "a \\\\{ b }", "\\$", "\\(", "\\[", "\\sty\u200ble", "x\u202e", "@@1@@",
    "\\", "x".repeat(5000), "\\ĥref", "\\eqref{a}", "\\Huge x", "\\rule{9em}{9em}", "\\raise{9em}{x}"]) {
    assert.ok(!safeTex(tex), tex);
  }
});

test("math passes through verbatim; prices stay prose", () => {
  const div = render(readFileSync(new URL("math.md", CORPUS), "utf8"));
  assert.deepEqual([...div.querySelectorAll(".elk-math")].map((m) => m.textContent), [
    "$a_b * c_d$", "$x < y$", "$$\n\\sum_{i=1}^{n} i^2 = \\frac{n(n+1)(2n+1)}{6}\n$$", "\\(e^{i\\pi} + 1 = 0\\)"]);
  assert.equal(div.querySelector("em"), null);
  assert.match(div.textContent, /price \$5 and \$6\./);
  const tricky = render("*a $b*c$ d* and \\$5 and $$x_1 * y_1$$ and \\[ a_b \\]");
  assert.deepEqual([...tricky.querySelectorAll(".elk-math")].map((m) => m.textContent), ["$b*c$", "$$x_1 * y_1$$", "\\[ a_b \\]"]);
  assert.equal(tricky.querySelector("em").textContent, "a $b*c$ d");
  const prices = render(corpus.find(([n]) => n === "prices.md")[1]);
  assert.equal(prices.querySelector(".elk-math, .elk-math-code"), null);
  assert.match(prices.textContent, /cost \$0\.0012 and the next \$0\.0034; a plan is \$5 or \$6 a month, \$10-\$20/);
});

test("raw HTML shows as text, not sanitized away", () => {
  const div = render('<img src=x onerror="alert(1)"> and <b>bold</b>\n\n<div onclick="x()">block</div>');
  assert.match(div.textContent, /<img src=x onerror="alert\(1\)"> and <b>bold<\/b>/);
  assert.match(div.textContent, /<div onclick="x\(\)">block<\/div>/);
  assert.equal(div.querySelector("b"), null);
});

test("links: only http(s) and mailto, opened in a new tab without opener", () => {
  const div = render("[a](https://example.com/x) [b](javascript:alert(1)) <mailto:x@example.com> [c](/rel)");
  assert.deepEqual([...div.querySelectorAll("a")].map((a) => a.getAttribute("href")), ["https://example.com/x", "mailto:x@example.com"]);
  assert.equal(div.textContent.trim(), "a b mailto:x@example.com c");
});

test("safeUrl judges every spelling of a scheme as the URL parser reads it", () => {
  const decode = (s) => {
    const area = window.document.createElement("textarea");
    area.innerHTML = s;
    return area.value;
  };
  const refused = ["javascript:alert(1)", "JaVaScRiPt:x", " javascript:x", "java\tscript:x", "java\nscript:x", "\u0000javascript:x",
    "javas\u200bcript:x", "&#106;avascript:x", "&#x6A;avascript:x", "javascript&colon;x", "javascript&#58;x", "&Tab;javascript:x",
    "javascript\\:x", "vbscript:x", "data:text/html,<script>", "file:///etc/passwd", "//evil.example/x", "/relative", "#frag", "", "x"];
  for (const raw of refused) assert.equal(safeUrl(raw, ["http:", "https:", "mailto:"], decode), null, JSON.stringify(raw));
  assert.equal(safeUrl("&#x68;ttps://example.com/a", ["https:"], decode), "https://example.com/a");
  assert.equal(safeUrl(" HTTPS://EXAMPLE.COM/A ", ["https:"], decode), "https://example.com/A");
  assert.equal(safeUrl("mailto:a@example.com", ["http:", "https:"], decode), null);
});

test("an image loads only when its placeholder is clicked: one <img>, http(s) only", () => {
  const div = render(`![cat](http://127.0.0.1:${PORT}/cat.png) ![dog](https://example.com/dog.png) ![x](//example.com/x.png) ![y](data:image/png;base64,AAAA) ![z](javascript:alert(1))`);
  const buttons = [...div.querySelectorAll("button.elk-image")];
  assert.equal(buttons.length, 5);
  assert.equal(div.querySelector("img"), null);
  assert.equal(buttons[0].textContent, `Load image “cat” from 127.0.0.1:${PORT}`);
  assert.equal(buttons[2].textContent, "Image “x” not loadable");
  assert.deepEqual(buttons.map((b) => b.disabled), [false, false, true, true, true]);
  for (const button of buttons) button.click();
  buttons[0].click(); // a second click on a consumed placeholder does nothing
  assert.deepEqual([...div.querySelectorAll("img")].map((img) => img.getAttribute("src")), [`http://127.0.0.1:${PORT}/cat.png`, "https://example.com/dog.png"]);
  assert.equal(div.querySelectorAll("button.elk-image").length, 3);
  for (const img of div.querySelectorAll("img")) assert.equal(img.referrerPolicy, "no-referrer");
  assert.deepEqual([...div.querySelectorAll("img")].map((img) => img.alt), ["cat", "dog"]);
});

test("a placeholder pointed elsewhere after rendering still loads nothing", () => {
  const div = render("![cat](https://example.com/cat.png)");
  const button = div.querySelector("button.elk-image");
  button.setAttribute("data-elk-src", "javascript:alert(1)");
  button.click();
  assert.equal(div.querySelector("img"), null);
});

test("a placeholder inside a link loads the image instead of following the link", () => {
  const div = render(`[![badge](https://example.com/b.svg)](https://example.com/)`);
  const event = new window.MouseEvent("click", { bubbles: true, cancelable: true });
  div.querySelector("a button.elk-image").dispatchEvent(event);
  assert.equal(event.defaultPrevented, true);
  assert.equal(div.querySelector("a img").getAttribute("src"), "https://example.com/b.svg");
});

test("huge or non-string text renders as plain text without throwing", () => {
  const huge = "<img src=x onerror=alert(1)> **b** ".repeat(Math.ceil((MAX_MARKDOWN_CHARS + 10) / 34));
  const div = render(huge);
  assert.equal(div.querySelector("pre.elk-plain").textContent, huge);
  assertInert(div, "huge");
  for (const value of [null, undefined, 42, { a: 1 }, ["x"]]) assert.equal(render(value).textContent, "");
});

test("markdown still renders code blocks, lists, tables and task items", () => {
  const div = render("# T\n\n- a\n- [x] b\n\n```py\nx = 1 < 2\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |");
  assert.equal(div.querySelectorAll("li").length, 2);
  assert.equal(div.querySelector(".elk-task").textContent, "☑");
  assert.equal(div.querySelector("pre code").textContent, "x = 1 < 2\n");
  assert.equal(div.querySelectorAll("td").length, 2);
  assert.equal(render("3. three\n4. four").querySelector("ol").getAttribute("start"), "3");
  assert.equal(render("![a](https://example.com/a.png)").querySelector("button").getAttribute("type"), "button");
});
