// The chat panel's front-end: what a saved notebook keeps of a live panel, and its DOM (jsdom).
import assert from "node:assert/strict";
import { test } from "node:test";
import { JSDOM } from "jsdom";
import chat, { insertBelow, keepOutputs, keptTurns, panelCell, withoutLivePanels } from "./chat.js";

const WIDGET = "application/vnd.jupyter.widget-view+json";
const STATE = "application/vnd.jupyter.widget-state+json";

test("a saved notebook keeps a line of text for a live panel, its turns, and other widgets as they are", () => {
  const turn = { output_type: "display_data", data: { "text/plain": "turn" }, metadata: { elk_jupyter: { turn: {} } } };
  const other = { output_type: "display_data", data: { [WIDGET]: { model_id: "slider" } }, metadata: {} };
  const nb = {
    cells: [
      { cell_type: "code", outputs: [{ output_type: "display_data", data: { [WIDGET]: { model_id: "p1" }, "text/plain": "ChatPanel()" }, metadata: {} }, turn] },
      { cell_type: "markdown", source: "x" },
      { cell_type: "code", outputs: [other] },
    ],
    metadata: { widgets: { [STATE]: { version_major: 2, state: { p1: { state: { _esm: "code" } }, slider: {} } } } },
  };
  const saved = withoutLivePanels(nb, new Map([["p1", () => 'my "talk"']]));
  assert.deepEqual(saved.cells[0].outputs[0], {
    output_type: "display_data",
    data: { "text/plain": 'elk chat panel over conversation "my \\"talk\\"": live only while its kernel runs; its turns are the outputs below' },
    metadata: {},
  });
  assert.equal(saved.cells[0].outputs[1], turn);
  assert.equal(saved.cells[2].outputs[0], other);
  assert.deepEqual(Object.keys(saved.metadata.widgets[STATE].state), ["slider"]);
  assert.equal(saved.metadata.widgets[STATE].version_major, 2);
  assert.equal(nb.cells[0].outputs[0].data[WIDGET].model_id, "p1"); // the live model is not touched
  assert.deepEqual(Object.keys(nb.metadata.widgets[STATE].state), ["p1", "slider"]);
});

test("anything not shaped like a notebook passes through", () => {
  assert.equal(withoutLivePanels(null, new Map()), null);
  const odd = { cells: [null, { outputs: "x" }] };
  assert.deepEqual(withoutLivePanels(odd, new Map([["p", () => "c"]])), odd);
});

// The panel's DOM in jsdom over a model stand-in (get/set/on/send, as anywidget's model proxy): hostile prompts,
// replies, conversation names and tool arguments are drawn as text; the keys do what the box says.

function fakeModel(state) {
  const handlers = new Map();
  const sent = [];
  return {
    sent,
    get: (name) => state[name],
    set: (name, value) => (state[name] = value),
    save_changes() {},
    send: (message) => sent.push(message),
    on: (event, f) => handlers.set(event, [...(handlers.get(event) || []), f]),
    off() {},
    change(name, value) {
      state[name] = value;
      for (const f of handlers.get(`change:${name}`) || []) f();
    },
  };
}

const HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>';

function mount(extra = {}) {
  const { window } = new JSDOM("<!DOCTYPE html><body></body>", { pretendToBeVisual: true });
  window.ResizeObserver = class { observe() {} disconnect() {} };
  const model = fakeModel({
    conversation: `talk ${HOSTILE}`, conversations: [`talk ${HOSTILE}`], endpoint: "chat", endpoints: ["chat", "responses"],
    model: "", models: [HOSTILE], temperature: "", max_tokens: "", reasoning_effort: "", efforts: ["", "low"], system: "",
    tools: "", attach_images: "", attach_files: "", transcript: [], live: "", live_prompt: "", busy: false, notice: "",
    last_prompt: "earlier question", approval: null, panel_id: "",
    ...extra,
  });
  const el = window.document.body.appendChild(window.document.createElement("div"));
  const cleanup = chat.render({ model, el });
  return { window, model, el, cleanup };
}

test("hostile prompts, replies, names and tool arguments stay text", () => {
  const entry = { id: "t1", short: "t1", prompt: HOSTILE, status: "completed", ok: true, siblings: [], cell: "%%chat\nx",
    view: { version: 1, endpoint: "chat", status: "completed", text: `Answer ${HOSTILE}`, footer: [] } };
  const { window, model, el } = mount({ transcript: [entry] });
  model.change("approval", { name: HOSTILE, arguments: HOSTILE });
  model.change("notice", HOSTILE);
  assert.equal(el.querySelectorAll("img, script").length, 0);
  assert.equal(window.__pwned, undefined);
  assert.equal(el.querySelector(".elk-chat-prompt").textContent, HOSTILE);
  assert.equal(el.querySelector(".elk-chat-approval-args").textContent, HOSTILE);
  assert.equal(el.querySelector(".elk-chat-notice").textContent, HOSTILE);
  assert.match(el.querySelector(".elk-answer").textContent, /Answer/);
});

test("Enter sends and keeps the focus, Shift+Enter does not, Up recalls, Esc stops; Send and Stop are buttons", () => {
  const { window, model, el } = mount();
  const box = el.querySelector("textarea[aria-label='Message']");
  const key = (name, shiftKey = false) => box.dispatchEvent(new window.KeyboardEvent("keydown", { key: name, shiftKey, bubbles: true }));
  box.focus();
  key("ArrowUp");
  assert.equal(box.value, "earlier question");
  key("Enter", true);
  assert.deepEqual(model.sent, []);
  key("Enter");
  assert.deepEqual(model.sent, [{ action: "send", text: "earlier question" }]);
  assert.equal(box.value, "");
  assert.equal(window.document.activeElement, box);
  key("Escape");
  assert.deepEqual(model.sent.at(-1), { action: "stop" });
  const buttons = [...el.querySelectorAll("button")].map((b) => b.getAttribute("aria-label"));
  assert.ok(buttons.includes("Send") && buttons.includes("Stop"));
  model.change("busy", true);
  assert.equal(el.querySelector("button[aria-label='Send']").disabled, true);
  assert.equal(el.querySelector("button[aria-label='Stop']").disabled, false);
});

// A notebook model shaped as JupyterLab 4's (cells.get/length, outputs.get/length/add, sharedModel.insertCell).
function listModel(items) {
  return { get: (i) => items[i], get length() { return items.length; }, add: (item) => items.push(item), items };
}
function fakeNotebook(cellOutputs) {
  const cells = cellOutputs.map((outputs) => ({ outputs: outputs && listModel(outputs) }));
  const list = listModel(cells);
  const sharedModel = { insertCell: (at, cell) => cells.splice(at, 0, { source: cell.source, outputs: listModel([]) }) };
  return { cells: list, sharedModel };
}
const view = (id) => ({ data: { [WIDGET]: { model_id: id } }, metadata: {} });
const kept = (id) => ({ data: { "text/plain": id }, metadata: { elk_jupyter: { turn: { id } } } });
const prompt = (text) => ({ data: { "text/plain": `You: ${text}` }, metadata: {} });

test("the panel's cell is the one whose outputs show the widget; none without a notebook model", () => {
  const nb = fakeNotebook([null, [view("other")], [prompt("a"), view("p1"), kept("t1")]]);
  const found = panelCell(nb, "p1");
  assert.equal(found.index, 2);
  assert.deepEqual(keptTurns(found.cell), ["t1"]);
  assert.equal(panelCell(nb, "p2"), null);
  assert.equal(panelCell(undefined, "p1"), null);
});

test("a turn's outputs are written once: a group whose turn the cell holds is skipped whole", () => {
  const nb = fakeNotebook([[view("p1"), prompt("one"), kept("t1")]]);
  const { cell } = panelCell(nb, "p1");
  const sent = [prompt("one"), kept("t1"), prompt("two"), kept("t2")];
  keepOutputs(cell, sent.map(({ data, metadata }) => ({ data, metadata })));
  keepOutputs(cell, sent); // a second view of the notebook, or the kernel's header publish, came first
  assert.deepEqual(cell.outputs.items.map((o) => o.data["text/plain"]), [undefined, "You: one", "t1", "You: two", "t2"]);
  assert.ok(cell.outputs.items.slice(3).every((o) => o.output_type === "display_data"));
});

test("cells added below the panel keep the order they were asked in", () => {
  const nb = fakeNotebook([[view("p1")], [], []]);
  insertBelow(panelCell(nb, "p1"), "first");
  insertBelow(panelCell(nb, "p1"), "second");
  assert.deepEqual(nb.cells.items.map((c) => c.source), [undefined, "first", "second", undefined, undefined]);
});
