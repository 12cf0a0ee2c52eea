// Code blocks and copy buttons in the turn view: highlighted only through the sanitizer, code text unchanged,
// copy buttons copy the source (code text, the answer's Markdown, a choice's Markdown), choices as columns or tabs.
import assert from "node:assert/strict";
import { test } from "node:test";
import { JSDOM } from "jsdom";
import { createHighlighter } from "./highlight.js";
import { lazyHighlighter } from "./highlight-lazy.js";
import { LIVE_LANGUAGES } from "./languages-live.js";
import { staticSource } from "./view-data.js";
import { renderTurn } from "./view.js";

const { window } = new JSDOM("<!DOCTYPE html><body></body>", { pretendToBeVisual: true });
const copied = [];
// jsdom has no Clipboard API: this stands in for the browser's (the browser tests use the real one).
Object.defineProperty(window.navigator, "clipboard", { value: { writeText: async (text) => copied.push(text) } });
const host = () => window.document.body.appendChild(window.document.createElement("div"));
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));
const VIEW = { version: 1, status: "completed", endpoint: "chat", choices: [], tool_calls: [] };
const CODE = 'def f(x):\n    return "<img src=x onerror=alert(1)>" if x else None  # done';
const ANSWER = `Try this:\n\n\`\`\`python\n${CODE}\n\`\`\`\n\nand \`inline\`.`;

test("a fenced block is highlighted, keeps its exact text, and gets a copy button that copies the code", async () => {
  const el = host();
  renderTurn(el, staticSource({ ...VIEW, text: ANSWER }), { highlighter: createHighlighter(LIVE_LANGUAGES) });
  const frame = el.querySelector(".elk-answer .elk-code");
  assert.equal(frame.querySelector(".elk-code-lang").textContent, "python");
  const code = frame.querySelector("pre > code.hljs");
  assert.equal(code.textContent, `${CODE}\n`);
  assert.ok(code.querySelector("span.hljs-keyword"));
  assert.equal(el.querySelector("img, [onerror]"), null);
  for (const span of code.querySelectorAll("*")) assert.deepEqual(span.getAttributeNames(), ["class"]);
  frame.querySelector("button.elk-copy").click();
  await settle();
  assert.equal(copied.at(-1), CODE);
  assert.equal(frame.querySelector("button.elk-copy").textContent, "Copied");
  const whole = el.querySelector(".elk-actions button.elk-copy");
  assert.equal(whole.type, "button");
  whole.click();
  await settle();
  assert.equal(copied.at(-1), ANSWER); // the Markdown, not the rendered text
});

test("a grammar loaded lazily highlights the block once it is there; unknown languages stay plain", async () => {
  let resolve;
  const loaded = new Promise((r) => (resolve = r));
  const highlighter = createHighlighter({ python: () => loaded });
  const el = host();
  renderTurn(el, staticSource({ ...VIEW, text: `${ANSWER}\n\n\`\`\`cobol\nDISPLAY 'HI'.\n\`\`\`` }), { highlighter });
  const [python, cobol] = el.querySelectorAll(".elk-answer pre > code");
  assert.equal(python.querySelector("span"), null); // not yet
  resolve({ default: LIVE_LANGUAGES.python() });
  await settle();
  await settle();
  assert.ok(python.querySelector("span.hljs-keyword"));
  assert.equal(python.textContent, `${CODE}\n`);
  assert.equal(cobol.querySelector("span"), null);
  assert.equal(el.querySelectorAll(".elk-code-lang")[1].textContent, "cobol");
});

test("the live panel's highlighter, loaded on demand: blocks stay plain until it is there, then are highlighted", async () => {
  let resolve;
  let loads = 0;
  const loaded = new Promise((r) => (resolve = r));
  const highlighter = lazyHighlighter(() => (loads++, loaded));
  const el = host();
  renderTurn(el, staticSource({ ...VIEW, text: `${ANSWER}\n\n\`\`\`js\nlet a = 1;\n\`\`\`` }), { highlighter });
  const [python, js] = el.querySelectorAll(".elk-answer pre > code");
  assert.equal(python.querySelector("span"), null); // not yet: nothing of highlight.js has run
  assert.equal(loads, 1); // one load for every block that asked
  resolve(createHighlighter(LIVE_LANGUAGES));
  for (let i = 0; i < 4; i++) await settle();
  assert.ok(python.querySelector("span.hljs-keyword") && js.querySelector("span.hljs-keyword"));
  assert.equal(python.textContent, `${CODE}\n`);
  for (const span of el.querySelectorAll(".elk-answer code *")) assert.deepEqual(span.getAttributeNames(), ["class"]);
  const later = host(); // once loaded, a new block is highlighted at once
  renderTurn(later, staticSource({ ...VIEW, text: ANSWER }), { highlighter });
  assert.ok(later.querySelector("pre > code span.hljs-keyword"));
});

test("a highlighter that fails to load leaves the code plain and readable", async () => {
  const highlighter = lazyHighlighter(() => Promise.reject(new Error("blocked")));
  const el = host();
  renderTurn(el, staticSource({ ...VIEW, text: ANSWER }), { highlighter });
  for (let i = 0; i < 4; i++) await settle();
  const code = el.querySelector(".elk-answer pre > code");
  assert.equal(code.querySelector("span"), null);
  assert.equal(code.textContent, `${CODE}\n`);
});

test("prepareWhenIdle starts the load in an idle moment, once", async () => {
  let loads = 0;
  const highlighter = lazyHighlighter(async () => (loads++, createHighlighter(LIVE_LANGUAGES)));
  const idle = [];
  const win = { requestIdleCallback: (f) => idle.push(f) };
  highlighter.prepareWhenIdle(win);
  assert.equal(loads, 0); // nothing before the page is idle
  idle.shift()();
  highlighter.prepareWhenIdle(win);
  assert.equal(idle.length, 0);
  await settle();
  assert.equal(loads, 1);
  assert.ok(highlighter.highlight("x = 1", "python").includes("hljs-"));
});

test("n > 1 choices: one column each with its finish reason and a copy button; tabs move with the arrow keys", async () => {
  const choices = [
    { index: 0, text: "first **one**", finish_reason: "stop" },
    { index: 1, text: "second", finish_reason: "length" },
    { index: 2, text: "third", finish_reason: "stop" },
  ];
  const el = host();
  renderTurn(el, staticSource({ ...VIEW, text: "first **one**", choices }));
  assert.equal(el.querySelector(".elk-answer").hidden, true); // the answer is the first column
  assert.equal(el.querySelector(".elk-actions").hidden, true);
  const columns = [...el.querySelectorAll(".elk-choice-columns > .elk-choice")];
  assert.deepEqual(columns.map((c) => c.querySelector(".elk-choice-title span").textContent),
    ["choice 0 · stop", "choice 1 · length", "choice 2 · stop"]);
  assert.equal(columns[0].querySelector("strong").textContent, "one");
  columns[1].querySelector("button.elk-copy").click();
  await settle();
  assert.equal(copied.at(-1), "second");
  const tabs = [...el.querySelectorAll(".elk-choice-tabs [role=tab]")];
  assert.deepEqual(tabs.map((t) => t.getAttribute("aria-selected")), ["true", "false", "false"]);
  tabs[0].focus();
  tabs[0].dispatchEvent(new window.KeyboardEvent("keydown", { key: "ArrowLeft", bubbles: true }));
  assert.deepEqual(tabs.map((t) => t.getAttribute("aria-selected")), ["false", "false", "true"]);
  assert.equal(window.document.activeElement, tabs[2]);
  assert.deepEqual(columns.map((c) => c.hasAttribute("data-selected")), [false, false, true]);
});
