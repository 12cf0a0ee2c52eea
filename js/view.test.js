// The turn view driven by a saved VIEW (as the JupyterLab renderer does) and by a live widget model (as the panel
// does): same DOM, hostile data drawn as text, cleanup unsubscribes.
import assert from "node:assert/strict";
import { test } from "node:test";
import { JSDOM } from "jsdom";
import { liveSource } from "./panel.js";
import { readField, staticSource, VIEW_FIELDS } from "./view-data.js";
import { blockTypesetter } from "./math.js";
import { renderTurn } from "./view.js";

const { window } = new JSDOM("<!DOCTYPE html><body></body>", { pretendToBeVisual: true });
const host = () => window.document.body.appendChild(window.document.createElement("div"));
const nextFrame = () => new Promise((resolve) => window.requestAnimationFrame(() => setTimeout(resolve, 0)));
const texts = (root, selector) => [...root.querySelectorAll(selector)].map((node) => node.textContent);

const VIEW = {
  version: 1, endpoint: "chat", conversation: "default", model_asked: "gpt-x", model: "gpt-x-2026", status: "completed",
  replayed: false, error: "", note: "turn t3 replaced", attempts: 2, context: "2 earlier turns",
  text: "The answer is **42**: `x < 5 && y`.\n\n![plot](https://example.com/p.png)", reasoning: "think first",
  usage: { prompt_tokens: 100, completion_tokens: 50, prompt_tokens_details: { cached_tokens: 20 } },
  timing: { ttft: 0.5, total: 1.5 },
  tool_calls: [{ id: "call_1", type: "function", function: { name: "lookup", arguments: '{"q":"a"}' } }],
  choices: [{ index: 0, text: "first", finish_reason: "stop" }, { index: 1, text: "second *choice*", finish_reason: "length" }],
  // as elk_jupyter/display/render.py footer_items computes it (tests/test_render.py checks the same pairs)
  footer: [["prompt", "100 (20 cached)"], ["completion", "50"], ["first token", "0.50 s"], ["total", "1.50 s"],
    ["speed", "50.0 tok/s"], ["context", "2 earlier turns"]],
};

test("a saved VIEW renders header, answer, reasoning, tools, choices, note and footer", () => {
  const el = host();
  renderTurn(el, staticSource(VIEW));
  const root = el.querySelector(".elk-panel");
  assert.equal(root.dataset.status, "completed");
  assert.deepEqual(texts(root, ".elk-header .elk-tag"), ["chat", "default", "gpt-x → gpt-x-2026", "1 retry"]);
  assert.equal(root.querySelector(".elk-header .elk-status").textContent, "done");
  assert.equal(root.querySelector(".elk-answer strong").textContent, "42");
  assert.equal(root.querySelector(".elk-answer code").textContent, "x < 5 && y");
  assert.equal(root.querySelector(".elk-answer button.elk-image").textContent, "Load image “plot” from example.com");
  assert.equal(root.querySelector(".elk-reasoning-body").textContent, "think first");
  assert.equal(root.querySelector(".elk-reasoning").open, false); // folded: the answer is there
  assert.equal(root.querySelector(".elk-tool-name").textContent, "tool call: lookup (call_1)");
  assert.equal(root.querySelector(".elk-tool-args").textContent, '{\n  "q": "a"\n}');
  assert.deepEqual(texts(root, ".elk-choice-title span"), ["choice 0 · stop", "choice 1 · length"]);
  assert.equal(root.querySelectorAll(".elk-choice-body")[1].querySelector("em").textContent, "choice");
  assert.equal(root.querySelector(".elk-note").textContent, "turn t3 replaced");
  assert.equal(root.querySelector(".elk-error").hidden, true);
  assert.deepEqual(texts(root, ".elk-footer .elk-stat").map((t) => t.replace(/\s+/g, " ")),
    ["prompt100 (20 cached)", "completion50", "first token0.50 s", "total1.50 s", "speed50.0 tok/s", "context2 earlier turns"]);
});

test("calls that ran in the kernel show their result, error and duration, as text", () => {
  const el = host();
  const calls = [
    { id: "c1", function: { name: "add", arguments: "{}" }, result: "5", error: null, duration: 0.0123 },
    { id: "c2", function: { name: "boom", arguments: "{}" }, result: "", error: '<img src=x onerror="window.__pwned=3">', duration: "x" },
    { id: "c3", function: { name: "later", arguments: "{}" } },
  ];
  renderTurn(el, staticSource({ ...VIEW, tool_calls: calls }));
  assert.deepEqual(texts(el, ".elk-tool-result"), ["→ 5 (12 ms)"]);
  assert.deepEqual(texts(el, ".elk-tool-error"), ['error: <img src=x onerror="window.__pwned=3">']);
  assert.equal(el.querySelectorAll(".elk-tool").length, 3);
  assert.equal(el.querySelector("img"), null);
  assert.equal(window.__pwned, undefined);
});

test("images sent show as thumbnails only from inline raster data URLs", () => {
  const el = host();
  const png = "data:image/png;base64,iVBORw0KGgo=";
  const images = [
    { label: "pixel · image/png · 69 bytes", src: png },
    { label: "big.png · image/png · 90,000 bytes", src: "" },
    { label: "svg", src: "data:image/svg+xml;base64,PHN2Zz4=" },
    { label: "remote", src: "https://example.com/x.png" },
    { label: "<b>html</b>", src: 'data:image/png;base64,AAAA" onerror="x' },
  ];
  renderTurn(el, staticSource({ ...VIEW, images }));
  assert.deepEqual([...el.querySelectorAll("img.elk-thumbnail")].map((img) => img.getAttribute("src")), [png]);
  assert.deepEqual(texts(el, ".elk-image-sent figcaption"), images.map((image) => image.label));
  assert.equal(el.querySelector(".elk-images b"), null);
});

test("a replayed turn shows as replayed", () => {
  const el = host();
  renderTurn(el, staticSource({ ...VIEW, replayed: true, badge: "replayed" })); // the kernel's render.shown_status
  assert.equal(el.querySelector(".elk-status").textContent, "replayed");
});

const HTML = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>';

test("a hostile VIEW (HTML in every field, wrong types, huge strings) renders as text and never throws", () => {
  const hostile = Object.fromEntries(VIEW_FIELDS.map((name) => [name, HTML]));
  Object.assign(hostile, { version: 1, text: `${HTML} [x](javascript:alert(1))`, reasoning: HTML, model_asked: "m".repeat(1e6),
    attempts: "9", replayed: "yes", usage: "<b>usage</b>", timing: [1, 2], tool_calls: { 0: 1 },
    choices: [null, 7, { index: "<i>", text: 5 }, { index: 2, text: HTML, finish_reason: { a: 1 } }],
    footer: [[HTML, HTML], "x", [1, 2], ["first token", 3], ["total", "1.50 s"]] });
  const el = host();
  renderTurn(el, staticSource(hostile));
  assert.equal(el.querySelector("img, script, a"), null);
  assert.equal(window.__pwned, undefined);
  assert.equal(el.querySelector(".elk-panel").dataset.status, "unknown");
  assert.ok(el.querySelector(".elk-header").textContent.includes(HTML)); // endpoint, as text
  assert.ok(el.querySelector(".elk-header").textContent.length < 1000); // the huge model name is clipped
  assert.ok(el.querySelector(".elk-error").textContent.includes(HTML));
  assert.deepEqual(texts(el, ".elk-choice-title span"), ["choice ?", "choice ?", "choice ?", "choice 2"]);
  assert.deepEqual(texts(el, ".elk-footer .elk-stat-label"), [`${HTML.slice(0, 64)}…`, "total"]); // text, clipped; malformed dropped
  for (const view of [null, "x", 5, [], {}]) renderTurn(host(), staticSource(view));
  assert.equal(el.querySelector("audio"), null); // audio: HTML is no clip
});

test("a saved VIEW without its answer and reasoning reads them from the output's record, coerced like any field", () => {
  const { text, reasoning, ...rest } = VIEW;
  const metadata = { elk_jupyter: { turn: { reply: { text, reasoning: "why" } } } };
  const el = host();
  renderTurn(el, staticSource(rest, metadata));
  assert.ok(el.querySelector(".elk-answer").textContent.includes("The answer is 42"));
  assert.ok(el.querySelector(".elk-reasoning").textContent.includes("why"));
  const own = host(); // a field the VIEW holds wins over the record's
  renderTurn(own, staticSource({ ...rest, text: "from the view" }, metadata));
  assert.ok(own.querySelector(".elk-answer").textContent.includes("from the view"));
  for (const hostile of [null, 5, { elk_jupyter: [] }, { elk_jupyter: { turn: { reply: { text: { a: 1 }, reasoning: HTML } } } }]) {
    const bad = host();
    renderTurn(bad, staticSource(rest, hostile));
    assert.equal(bad.querySelector("img, script, a"), null);
    assert.equal(bad.querySelector(".elk-answer").textContent.trim(), "");
  }
});

// A real (tiny) WAV: RIFF header, 8 kHz mono 16-bit, 800 frames = 0.1 s.
function wavBase64() {
  const frames = 800;
  const buffer = Buffer.alloc(44 + frames * 2);
  buffer.write("RIFF", 0); buffer.writeUInt32LE(36 + frames * 2, 4); buffer.write("WAVEfmt ", 8);
  buffer.writeUInt32LE(16, 16); buffer.writeUInt16LE(1, 20); buffer.writeUInt16LE(1, 22); buffer.writeUInt32LE(8000, 24);
  buffer.writeUInt32LE(16000, 28); buffer.writeUInt16LE(2, 32); buffer.writeUInt16LE(16, 34); buffer.write("data", 36);
  buffer.writeUInt32LE(frames * 2, 40);
  return buffer.toString("base64");
}

test("an audio reply: the bytes become a player (a Blob URL, nothing fetched before play); cleanup frees it", async () => {
  const made = [];
  const revoked = [];
  const { createObjectURL, revokeObjectURL } = window.URL;
  window.URL.createObjectURL = (blob) => (made.push(blob), `blob:elk/${made.length}`);
  window.URL.revokeObjectURL = (url) => revoked.push(url);
  try {
    const el = host();
    const audio = { format: "wav", mime: "audio/wav", duration: 0.1, size: 1644, data: wavBase64() };
    const cleanup = renderTurn(el, staticSource({ ...VIEW, text: "Hello there", audio }));
    const player = el.querySelector("audio.elk-audio-player");
    assert.equal(player.getAttribute("src"), "blob:elk/1");
    assert.equal(player.preload, "none");
    assert.equal(made[0].type, "audio/wav");
    assert.equal(made[0].size, 1644);
    const bytes = await new Promise((resolve) => {
      const reader = new window.FileReader(); // jsdom's Blob has no arrayBuffer()
      reader.onload = () => resolve(Buffer.from(reader.result));
      reader.readAsArrayBuffer(made[0]);
    });
    assert.equal(bytes.toString("base64"), audio.data);
    assert.equal(bytes.subarray(0, 4).toString(), "RIFF");
    assert.equal(el.querySelector(".elk-audio-caption").textContent, "audio · 0.1 s · wav · 2 KB");
    cleanup();
    assert.deepEqual(revoked, ["blob:elk/1"]);
  } finally {
    Object.assign(window.URL, { createObjectURL, revokeObjectURL });
  }
});

test("an audio file beside the notebook plays from the URL resolveFile gives; any other name or URL is refused", async () => {
  const name = `${"ab".repeat(32)}.wav`;
  const asked = [];
  const resolveFile = async (file) => (asked.push(file), `/files/notebooks/${file}?token=x`);
  const el = host();
  renderTurn(el, staticSource({ ...VIEW, audio: { format: "wav", mime: "audio/wav", size: 5_000_000, file: name } }), { resolveFile });
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.deepEqual(asked, [name]);
  assert.equal(el.querySelector("audio").getAttribute("src"), `/files/notebooks/${name}?token=x`);
  for (const file of ["https://evil.example/a.wav", "../secret.wav", "x.wav", `${name}/../../a`]) {
    const other = host();
    renderTurn(other, staticSource({ ...VIEW, audio: { format: "wav", mime: "audio/wav", size: 1, file } }), { resolveFile });
    assert.equal(other.querySelector("audio"), null, file);
  }
  for (const audio of [{ mime: "text/html", data: "PGI+" }, { mime: "audio/wav", data: "not base64!" }]) {
    const other = host();
    renderTurn(other, staticSource({ ...VIEW, audio }));
    assert.equal(other.querySelector("audio"), null, JSON.stringify(audio));
  }
  assert.equal(asked.length, 1);
  const noResolver = host(); // the live panel has no files: it names the file instead
  renderTurn(noResolver, staticSource({ ...VIEW, audio: { format: "wav", mime: "audio/wav", size: 9, file: name } }));
  assert.ok(noResolver.querySelector(".elk-audio-caption").textContent.includes(name));
});

test("while the clip streams the panel says how much arrived, and no player yet", () => {
  const el = host();
  renderTurn(el, staticSource({ ...VIEW, status: "streaming", audio: { streaming: true, size: 4096 } }));
  assert.equal(el.querySelector(".elk-audio-caption").textContent, "receiving audio · 4 KB …");
  assert.equal(el.querySelector("audio"), null);
  const none = host();
  renderTurn(none, staticSource(VIEW));
  assert.equal(none.querySelector(".elk-audio").hidden, true);
});

test("fields are read by type: numbers stay numbers, anything else becomes the empty value", () => {
  assert.deepEqual(readField("usage", { prompt_tokens: 3, completion_tokens: "4", input_tokens_details: { cached_tokens: 1, x: "y" } }),
    { prompt_tokens: 3, input_tokens_details: { cached_tokens: 1 } });
  assert.deepEqual(readField("timing", { ttft: "1", total: 2 }), { ttft: null, total: 2 });
  assert.equal(readField("attempts", -1), 0);
  assert.equal(readField("status", "done now"), "unknown");
  assert.equal(readField("error", 42), "");
});

test("typeset, when given, runs once over the turn and reads only the allowed formulas", async () => {
  const calls = [];
  const text = "Euler: $e^{i\\pi}+1=0$ and $$x_1$$ but $5 or $6, and $\\style{cursor:url(//h/)}{x}$ and\n\n"
    + "$$\n\\mmlToken{mglyph}[src=\"//h/\"]{}\n$$\n\n" + Array.from({ length: 1200 }, (_, i) => `$x_{${i}}$`).join(" ");
  const el = host();
  renderTurn(el, staticSource({ ...VIEW, model: "$m$ \\href{//h}{x}", error: "$5 \\(x\\)", text, choices: [] }),
    { typeset: blockTypesetter((nodes) => calls.push(...nodes.map((node) => [node, texts(node, ".mathjax_process")]))) });
  await nextFrame();
  assert.equal(calls.length, 1);
  const [root, read] = calls[0];
  assert.equal(root, el.querySelector(".elk-panel"));
  assert.ok(root.classList.contains("mathjax_ignore")); // MathJax reads only inside .mathjax_process
  assert.deepEqual(read.slice(0, 3), ["$e^{i\\pi}+1=0$", "$$x_1$$", "$x_{0}$"]);
  assert.equal(read.length, 1202);
  assert.deepEqual(texts(root, "code.elk-math-code"), ["$\\style{cursor:url(//h/)}{x}$", "$$\n\\mmlToken{mglyph}[src=\"//h/\"]{}\n$$"]);
  assert.equal(root.querySelector(".mathjax_process"), null); // typeset once: a later paint does not read them again
});

test("turns drawn in one task are typeset in one pass; a turn drawn while it runs waits for the next", async () => {
  const passes = [];
  let release;
  const typeset = blockTypesetter((nodes) => {
    passes.push(nodes.map((node) => texts(node, ".mathjax_process")));
    return passes.length === 1 ? new Promise((resolve) => (release = resolve)) : Promise.resolve();
  });
  const draw = (text) => renderTurn(host(), staticSource({ ...VIEW, text, choices: [] }), { typeset });
  draw("$a$");
  draw("no math");
  draw("$b$ and $c$");
  await nextFrame();
  assert.deepEqual(passes, [[["$a$"], ["$b$", "$c$"]]]); // one pass, only the roots with allowed math
  draw("$d$");
  draw("$e$");
  await nextFrame();
  assert.equal(passes.length, 1); // the first pass still runs: the next waits for it, gathering both
  release();
  await nextFrame();
  assert.deepEqual(passes[1], [["$d$"], ["$e$"]]);
});

test("what a typesetter builds is scrubbed: no element or attribute that fetches, links or restyles", async () => {
  const el = host();
  const typeset = ([node]) => {
    for (const math of node.querySelectorAll(".mathjax_process")) {
      math.innerHTML = '<mjx-container class="MathJax" style="position: relative"><mjx-math style="cursor: url(//h/c), auto">'
        + '<a href="//h/a">x</a><img src="//h/i"><mjx-mi style="background:u\\72l(//h/b)" onclick="x()" data="//h/d">y</mjx-mi>'
        + '<svg><image href="//h/s"></image></svg></mjx-math></mjx-container>';
    }
    return Promise.resolve();
  };
  renderTurn(el, staticSource({ ...VIEW, text: "$x$", choices: [] }), { typeset: blockTypesetter(typeset) });
  await nextFrame();
  const container = el.querySelector("mjx-container");
  assert.equal(container.querySelector("a, img, image"), null);
  assert.equal(container.textContent, "xy");
  assert.equal(container.getAttribute("style"), "position: relative");
  for (const node of container.querySelectorAll("*")) assert.deepEqual([...node.attributes].map((a) => a.name), []);
});

// The anywidget model interface the panel uses: get, on/off("change:name"), with set() firing the events.
class WidgetModel {
  #values;
  #handlers = new Map();
  constructor(values) {
    this.#values = { ...values };
  }
  get(name) {
    return this.#values[name];
  }
  on(event, f) {
    if (!this.#handlers.has(event)) this.#handlers.set(event, new Set());
    this.#handlers.get(event).add(f);
  }
  off(event, f) {
    this.#handlers.get(event)?.delete(f);
  }
  set(changes) {
    Object.assign(this.#values, changes);
    for (const name of Object.keys(changes)) for (const f of this.#handlers.get(`change:${name}`) || []) f();
  }
  listeners() {
    return [...this.#handlers.values()].reduce((n, set) => n + set.size, 0);
  }
}

test("live: deltas stream into the same view, one paint per frame; cleanup unsubscribes", async () => {
  const model = new WidgetModel({ ...VIEW, status: "streaming", text: "", delta: { offset: 0, text: "" }, reasoning: "",
    reasoning_delta: { offset: 0, text: "" }, usage: null, timing: {}, tool_calls: [], choices: [], note: "" });
  const el = host();
  const source = liveSource(model); // its accumulator listens for the model's whole life (initialize)
  const before = model.listeners();
  const cleanup = renderTurn(el, source);
  assert.equal(el.querySelector(".elk-status").textContent, "streaming");
  model.set({ delta: { offset: 0, text: "Hello " } });
  model.set({ delta: { offset: 6, text: "**world**" } });
  await nextFrame();
  assert.equal(el.querySelector(".elk-answer").textContent.trim(), "Hello world");
  model.set({ text: "Hello **world**!", delta: { offset: 15, text: "" }, status: "completed" });
  await nextFrame();
  assert.equal(el.querySelector(".elk-answer").textContent.trim(), "Hello world!");
  assert.equal(el.querySelector(".elk-status").textContent, "done");
  cleanup();
  assert.equal(model.listeners(), before);
});
