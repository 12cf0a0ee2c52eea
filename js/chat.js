// elk-jupyter's ChatPanel (anywidget ESM): a message box over one of the kernel's conversations. Finished turns and
// the streaming one are drawn by view.js, the %%chat panel's own view code (saved VIEWs through staticSource, the live
// turn through panel.js's liveSource over its LiveTurn model); every action is a message to the kernel, which runs
// the turn on the one run path (elk_jupyter/front/chat_panel.py). Model text only ever reaches the page through
// view.js's render policy or textContent.
import { copyText } from "./clipboard.js";
import { createHighlighter } from "./highlight.js";
import { LIVE_LANGUAGES } from "./languages-live.js";
import { liveSource } from "./panel.js";
import { renderTurn } from "./view.js";
import { RECORD_KEY, staticSource } from "./view-data.js";

let highlighter = null;
const NARROW_PX = 520;
const WIDGET_MIME = "application/vnd.jupyter.widget-view+json";
const WIDGET_STATE = "application/vnd.jupyter.widget-state+json";
const livePanels = new Map(); // model id -> the conversation it shows (read when a notebook is saved)
const guarded = new WeakSet(); // notebook models whose toJSON leaves live panels out
const insertedCells = new WeakSet(); // cells "to cell" added: the next goes below them, in order

// A saved notebook keeps no view of a live panel. Its kernel's models are gone when it is reopened, and an output
// naming one shows "Loading widget..." or "Error displaying widget: model not found" (ipywidgets #3331); the panel's
// turns are saved as the outputs below it (bundle, inert copy and record each), so the view is replaced by one line
// of text, and the panel's widget state, if "save widget state" is on, is dropped (it holds this module's code).
// JupyterLab 4 and Notebook 7 save what the notebook model's toJSON returns; elsewhere this does nothing.
function keepOutOfSavedFiles(model) {
  const id = model.get("panel_id");
  const notebook = model.widget_manager?.context?.model;
  if (!id || !notebook || typeof notebook.toJSON !== "function") return;
  livePanels.set(id, () => model.get("conversation"));
  if (guarded.has(notebook)) return;
  guarded.add(notebook);
  const toJSON = notebook.toJSON.bind(notebook);
  notebook.toJSON = (...args) => withoutLivePanels(toJSON(...args), livePanels);
}

export function withoutLivePanels(nb, panels) {
  if (!nb || !Array.isArray(nb.cells)) return nb;
  const replace = (output) => {
    const id = output?.data?.[WIDGET_MIME]?.model_id;
    if (!panels.has(id)) return output;
    const text = `elk chat panel over conversation ${JSON.stringify(String(panels.get(id)()))}: live only while its kernel runs; its turns are the outputs below`;
    return { output_type: "display_data", data: { "text/plain": text }, metadata: {} };
  };
  const cells = nb.cells.map((cell) => (Array.isArray(cell?.outputs) ? { ...cell, outputs: cell.outputs.map(replace) } : cell));
  const state = nb.metadata?.widgets?.[WIDGET_STATE]?.state;
  if (!state || ![...panels.keys()].some((id) => id in state)) return { ...nb, cells };
  const kept = Object.fromEntries(Object.entries(state).filter(([id]) => !panels.has(id)));
  const widgets = { ...nb.metadata.widgets, [WIDGET_STATE]: { ...nb.metadata.widgets[WIDGET_STATE], state: kept } };
  return { ...nb, cells, metadata: { ...nb.metadata, widgets } };
}

// The panel's cell in the notebook model (JupyterLab 4 and Notebook 7 give a widget's manager the document's context):
// the cell whose outputs show this widget. A widget has no cell API of its own; this is how the panel writes its turns
// into its cell (after a page reload too) and adds cells below it. Null elsewhere (VS Code, Colab, a bare page).
export function panelCell(notebook, panelId) {
  const cells = notebook?.cells;
  if (!cells || !panelId) return null;
  for (let index = 0; index < cells.length; index++) {
    const outputs = cells.get(index).outputs;
    for (let j = 0; outputs && j < outputs.length; j++) {
      if (outputs.get(j).data?.[WIDGET_MIME]?.model_id === panelId) return { notebook, cell: cells.get(index), index };
    }
  }
  return null;
}

function cellOf(model) {
  return panelCell(model.widget_manager?.context?.model, model.get("panel_id"));
}

const turnIdOf = (output) => output?.metadata?.[RECORD_KEY]?.turn?.id;

export function keptTurns(cell) {
  const ids = [];
  for (let j = 0; j < cell.outputs.length; j++) {
    const id = turnIdOf(cell.outputs.get(j));
    if (typeof id === "string") ids.push(id);
  }
  return ids;
}

// A finished turn's outputs (the prompt, then the turn's bundle with its record) appended to the panel's cell, unless
// the cell holds that turn already (the kernel published it with the cell's header, or another view of this notebook
// wrote it first): each group ends with the output that names its turn.
export function keepOutputs(cell, outputs) {
  const have = new Set(keptTurns(cell));
  let group = [];
  for (const output of outputs) {
    group.push(output);
    const id = turnIdOf(output);
    if (id === undefined) continue;
    if (!have.has(id)) group.forEach(({ data, metadata }) => cell.outputs.add({ output_type: "display_data", data, metadata }));
    have.add(id);
    group = [];
  }
}

// A new code cell below the panel's cell (after those this panel added already, so they stay in the order asked).
export function insertBelow(found, source) {
  const { notebook, index } = found;
  let at = index + 1;
  while (at < notebook.cells.length && insertedCells.has(notebook.cells.get(at))) at++;
  notebook.sharedModel.insertCell(at, { cell_type: "code", source, metadata: {} });
  insertedCells.add(notebook.cells.get(at));
}

function make(doc, tag, props = {}, parent = null) {
  const node = doc.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "label") node.setAttribute("aria-label", value);
    else if (key === "role") node.setAttribute("role", value);
    else if (key === "text") node.textContent = value;
    else node[key] = value;
  }
  if (parent) parent.appendChild(node);
  return node;
}

function button(doc, text, label, onClick, parent) {
  const node = make(doc, "button", { type: "button", text, className: "elk-chat-button", label }, parent);
  node.addEventListener("click", onClick);
  return node;
}

// A control bound to a synced trait: it shows the trait and sets it on change.
function bound(model, node, name) {
  node.value = model.get(name) ?? "";
  node.addEventListener("change", () => {
    model.set(name, node.value);
    model.save_changes();
  });
  model.on(`change:${name}`, () => {
    if (node.value !== model.get(name)) node.value = model.get(name) ?? "";
  });
  return node;
}

function fillOptions(select, values, current) {
  const doc = select.ownerDocument;
  select.replaceChildren(...values.map((v) => make(doc, "option", { value: v, text: v || "(default)" })));
  if (current !== undefined && !values.includes(current)) select.appendChild(make(doc, "option", { value: current, text: current }));
  select.value = current ?? "";
}

function buildSettings(model, doc, root) {
  const details = make(doc, "details", { className: "elk-chat-settings" }, root);
  const summary = make(doc, "summary", { className: "elk-chat-summary" }, details);
  const grid = make(doc, "div", { className: "elk-chat-grid" }, details);
  const field = (label, node) => {
    const wrap = make(doc, "label", { className: "elk-chat-field" }, grid);
    make(doc, "span", { text: label }, wrap);
    wrap.appendChild(node);
    return node;
  };
  const conversation = field("Conversation", make(doc, "select", { label: "Conversation" }));
  conversation.addEventListener("change", () => {
    model.set("conversation", conversation.value);
    model.save_changes();
  });
  const fresh = field("New conversation", make(doc, "input", { type: "text", label: "New conversation", placeholder: "name, then Enter" }));
  fresh.addEventListener("keydown", (event) => {
    if (event.key !== "Enter" || !fresh.value.trim()) return;
    model.send({ action: "new", name: fresh.value.trim() });
    fresh.value = "";
  });
  const endpoint = bound(model, field("Endpoint", make(doc, "select", { label: "Endpoint" })), "endpoint");
  const list = make(doc, "datalist", { id: `elk-models-${Math.random().toString(36).slice(2)}` }, details);
  const modelBox = bound(model, field("Model", make(doc, "input", { type: "text", label: "Model", placeholder: "default" })), "model");
  modelBox.setAttribute("list", list.id);
  bound(model, field("Temperature", make(doc, "input", { type: "number", step: "0.1", min: "0", label: "Temperature" })), "temperature");
  bound(model, field("Max tokens", make(doc, "input", { type: "number", step: "1", min: "1", label: "Max tokens" })), "max_tokens");
  const effort = field("Reasoning effort", make(doc, "select", { label: "Reasoning effort" }));
  const text = (label, name, placeholder) =>
    bound(model, field(label, make(doc, "input", { type: "text", label, placeholder })), name);
  text("Tools", "tools", "notebook functions: f, g (each call asks first)");
  text("Images", "attach_images", "paths, URLs or variables, comma-separated");
  text("Files", "attach_files", "text files, comma-separated");
  const system = bound(model, field("System prompt", make(doc, "textarea", { rows: 2, label: "System prompt" })), "system");
  system.classList.add("elk-chat-system");
  effort.addEventListener("change", () => {
    model.set("reasoning_effort", effort.value);
    model.save_changes();
  });
  const paint = () => {
    fillOptions(conversation, model.get("conversations"), model.get("conversation"));
    fillOptions(endpoint, model.get("endpoints"), model.get("endpoint"));
    fillOptions(effort, model.get("efforts"), model.get("reasoning_effort"));
    list.replaceChildren(...model.get("models").map((id) => make(doc, "option", { value: id })));
    const parts = [model.get("conversation"), model.get("endpoint"), model.get("model") || "default model"];
    summary.textContent = `Settings · ${parts.join(" · ")}`;
  };
  for (const name of ["conversations", "conversation", "endpoints", "endpoint", "efforts", "reasoning_effort", "models", "model"]) {
    model.on(`change:${name}`, paint);
  }
  paint();
  return details;
}

// One finished turn: the user's message, the reply drawn by view.js, and the turn's actions.
function drawEntry(model, doc, entry, say, narrow) {
  const node = make(doc, "div", { className: "elk-chat-turn" });
  node.dataset.turn = entry.short;
  const user = make(doc, "div", { className: "elk-chat-user" }, node);
  const prompt = make(doc, "div", { className: "elk-chat-prompt", text: entry.prompt }, user);
  const tools = make(doc, "div", { className: "elk-chat-user-actions" }, user);
  button(doc, "Edit", `Edit and resend message of turn ${entry.short}`, () => edit(), tools);
  if (entry.siblings.length > 1) {
    const at = entry.siblings.indexOf(entry.id);
    const go = (step) => model.send({ action: "branch", turn: entry.siblings[at + step] });
    const prev = button(doc, "‹", "Previous version", () => go(-1), tools);
    make(doc, "span", { className: "elk-chat-branch", text: `${at + 1}/${entry.siblings.length}` }, tools);
    const next = button(doc, "›", "Next version", () => go(1), tools);
    prev.disabled = at <= 0;
    next.disabled = at >= entry.siblings.length - 1;
  }
  const reply = make(doc, "div", { className: "elk-chat-reply" }, node);
  const cleanup = renderTurn(reply, staticSource(entry.view), { highlighter });
  // The turn's actions; on a narrow output they fold under one "Actions" button (foldActions).
  const more = make(doc, "details", { className: "elk-chat-more", open: !narrow() }, node);
  make(doc, "summary", { className: "elk-chat-button", text: "Actions", label: `Actions for turn ${entry.short}` }, more);
  const actions = make(doc, "div", { className: "elk-chat-actions" }, more);
  button(doc, "Regenerate", `Regenerate turn ${entry.short}`, () => model.send({ action: "regenerate", turn: entry.id }), actions);
  const note = entry.cell_note ? ` Note: ${entry.cell_note}.` : "";
  button(doc, "To cell", `Turn ${entry.short} as a cell below`, () => toCell(entry.cell, "the equivalent cell", note), actions);
  if (entry.code) button(doc, "Code to cell", `Code of turn ${entry.short} into a cell below`, () => toCell(entry.code, "the reply's code", ""), actions);
  button(doc, "Fork", `Fork a new conversation from turn ${entry.short}`, () => model.send({ action: "fork", turn: entry.id }), actions);
  if (!entry.ok) button(doc, "Accept", `Accept the partial reply of turn ${entry.short}`, () => model.send({ action: "accept", turn: entry.id }), actions);

  async function toCell(source, what, note) {
    const found = cellOf(model);
    if (found) {
      insertBelow(found, source);
      say(`Added ${what} below the panel.${note}`);
      return;
    }
    const ok = await copyText(doc.defaultView, source);
    say(ok ? `Copied ${what} to the clipboard: paste it into a new cell (this front-end gives a widget no way to add cells).${note}` : "Could not reach the clipboard.");
  }

  function edit() {
    const box = make(doc, "textarea", { className: "elk-chat-edit", value: entry.prompt, rows: 3, label: "Edit message" });
    const bar = make(doc, "div", { className: "elk-chat-user-actions" });
    button(doc, "Resend", "Resend edited message", () => model.send({ action: "edit", turn: entry.id, text: box.value }), bar);
    button(doc, "Cancel", "Cancel editing", () => user.replaceChildren(prompt, tools), bar);
    user.replaceChildren(box, bar);
    box.focus();
  }
  return { node, cleanup };
}

// The finished turns. The kernel sends the whole list when the conversation changes, and after that only the changed
// end ({kind: "transcript", at, entries}), so a turn crosses the comm once; entries kept are not drawn again.
function transcriptView(model, doc, box, say) {
  const narrow = () => Boolean(box.closest(".elk-narrow"));
  let drawn = new Map(); // entry key -> {node, cleanup}
  let entries = model.get("transcript");
  const paint = () => {
    const next = new Map();
    const nodes = [];
    for (const entry of entries) {
      const key = JSON.stringify([entry.id, entry.status, entry.ok, entry.siblings, entry.prompt, entry.view?.text?.length]);
      const item = drawn.get(key) || drawEntry(model, doc, entry, say, narrow);
      drawn.delete(key);
      next.set(key, item);
      nodes.push(item.node);
    }
    for (const { cleanup } of drawn.values()) cleanup();
    drawn = next;
    box.replaceChildren(...nodes);
  };
  model.on("change:transcript", () => {
    entries = model.get("transcript");
    paint();
  });
  model.on("msg:custom", (msg) => {
    if (msg?.kind !== "transcript" || !Array.isArray(msg.entries)) return;
    entries = entries.slice(0, msg.at).concat(msg.entries);
    paint();
  });
  paint();
  return { shown: () => entries.map((entry) => entry.id), stop: () => drawn.forEach(({ cleanup }) => cleanup()) };
}

// Finished turns go into the panel's cell from the page where it can find the cell (then the kernel sends them here
// rather than with the cell's request header, which a reloaded page no longer knows). On drawing, the page tells the
// kernel which turns the cell holds, and it sends the others.
function outputKeeper(model, shown) {
  const found = cellOf(model);
  if (!found) {
    model.send({ action: "sync", have: null, shown: shown() });
    return;
  }
  if (!model.get("keeper")) {
    model.set("keeper", true);
    model.save_changes();
  }
  model.on("msg:custom", (msg) => {
    if (msg?.kind !== "keep" || !Array.isArray(msg.outputs)) return;
    const here = cellOf(model);
    if (here) keepOutputs(here.cell, msg.outputs);
  });
  model.send({ action: "sync", have: keptTurns(found.cell), shown: shown() });
}

function liveView(model, doc, box, host) {
  let current = "";
  let cleanup = null;
  const paint = () => {
    const ref = model.get("live");
    if (ref === current) return;
    current = ref;
    cleanup?.();
    cleanup = null;
    box.replaceChildren();
    if (!ref) return;
    make(doc, "div", { className: "elk-chat-prompt", text: model.get("live_prompt") }, make(doc, "div", { className: "elk-chat-user" }, box));
    const reply = make(doc, "div", { className: "elk-chat-reply" }, box);
    const child = host ? host.getModel(ref) : model.widget_manager.get_model(ref.replace(/^anywidget:/, ""));
    Promise.resolve(child).then((liveModel) => {
      if (current === ref) cleanup = renderTurn(reply, liveSource(liveModel), { highlighter });
    }, () => (reply.textContent = "…"));
  };
  model.on("change:live", paint);
  paint();
  return () => cleanup?.();
}

// A tool call waiting for the user (the panel's --approve): its name and arguments as text, Run or Decline.
function approvalBox(model, doc, root) {
  const box = make(doc, "div", { className: "elk-chat-approval" }, root);
  box.setAttribute("role", "group");
  box.setAttribute("aria-label", "Tool call waiting");
  const paint = () => {
    const call = model.get("approval");
    box.replaceChildren();
    box.hidden = !call;
    if (!call) return;
    make(doc, "div", { className: "elk-chat-approval-title", text: `Run tool ${call.name}?` }, box);
    make(doc, "pre", { className: "elk-chat-approval-args", text: call.arguments }, box);
    const bar = make(doc, "div", { className: "elk-chat-actions" }, box);
    button(doc, "Run", `Run tool ${call.name}`, () => model.send({ action: "approve", run: true }), bar).focus();
    button(doc, "Decline", `Decline tool ${call.name}`, () => model.send({ action: "approve", run: false }), bar);
  };
  model.on("change:approval", paint);
  paint();
}

function composer(model, doc, root) {
  const form = make(doc, "div", { className: "elk-chat-composer" }, root);
  const box = make(doc, "textarea", { className: "elk-chat-message", rows: 2, label: "Message", placeholder: "Message (Enter sends, Shift+Enter new line, ↑ last prompt, Esc stops)" }, form);
  const send = () => {
    const text = box.value;
    if (!text.trim() || model.get("busy")) return;
    model.send({ action: "send", text });
    box.value = "";
    box.focus();
  };
  const sendButton = button(doc, "Send", "Send", send, form);
  const stopButton = button(doc, "Stop", "Stop", () => model.send({ action: "stop" }), form);
  box.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    } else if (event.key === "Escape") {
      event.preventDefault();
      model.send({ action: "stop" });
    } else if (event.key === "ArrowUp" && !box.value) {
      event.preventDefault();
      box.value = model.get("last_prompt");
    }
    // Keep JupyterLab's notebook shortcuts (Shift+Enter runs the cell, letters edit cells) out of the box, except Save:
    // Ctrl+S / Cmd+S saves the notebook from anywhere, the box included.
    const save = (event.ctrlKey || event.metaKey) && !event.altKey && event.key.toLowerCase() === "s";
    if (!save) event.stopPropagation();
  });
  const paint = () => {
    stopButton.disabled = !model.get("busy");
    sendButton.disabled = model.get("busy");
  };
  model.on("change:busy", paint);
  paint();
}

// A narrow panel (a side-by-side output, a phone): the settings stack in one column and each turn's actions fold
// into a menu; widened again, they unfold.
function foldActions(root, narrow) {
  if (root.classList.contains("elk-narrow") === narrow) return;
  root.classList.toggle("elk-narrow", narrow);
  for (const menu of root.querySelectorAll(".elk-chat-more")) menu.open = !narrow;
}

export default {
  render({ model, el, host }) {
    highlighter ??= createHighlighter(LIVE_LANGUAGES);
    keepOutOfSavedFiles(model);
    const doc = el.ownerDocument;
    const root = make(doc, "div", { className: "elk-chat" }, el);
    buildSettings(model, doc, root);
    const log = make(doc, "div", { className: "elk-chat-log", role: "log" }, root);
    log.setAttribute("aria-label", "Conversation");
    const past = make(doc, "div", {}, log);
    const live = make(doc, "div", { className: "elk-chat-live" }, log);
    const notice = make(doc, "div", { className: "elk-chat-notice" }, root);
    notice.setAttribute("role", "status");
    const say = (text) => (notice.textContent = text);
    model.on("change:notice", () => say(model.get("notice")));
    say(model.get("notice"));
    approvalBox(model, doc, root);
    composer(model, doc, root);
    const transcript = transcriptView(model, doc, past, say);
    const stopLive = liveView(model, doc, live, host);
    // The output showing this view is in the cell's model once the view is attached: look for it then.
    const keeping = setTimeout(() => outputKeeper(model, transcript.shown), 0);
    const win = doc.defaultView;
    const resize = new win.ResizeObserver(() => foldActions(root, root.clientWidth < NARROW_PX));
    resize.observe(root);
    return () => {
      resize.disconnect();
      clearTimeout(keeping);
      transcript.stop();
      stopLive();
    };
  },
};
