// elk-jupyter's Panel: the live view of one turn (anywidget ESM). The kernel streams text as
// small deltas (see state.js); this module rebuilds it per model and renders it, sanitized.
import { footerItems, hasGap, reconcile, STATUS_LABELS, usageNumbers } from "./state.js";
import { makeSanitizer, markdownToSafeHtml } from "./render.js";

const STREAM_TRAITS = ["text", "delta", "reasoning", "reasoning_delta"];
const VIEW_TRAITS = ["endpoint", "conversation", "model_asked", "model", "status", "error", "attempts",
  "usage", "timing", "context", "tool_calls", "choices", "replayed", "note"];
const streams = new WeakMap(); // model -> {text, reasoning, gap, listeners}

// One accumulator per model, fed from the moment the model exists, shared by all its views.
function track(model) {
  let s = streams.get(model);
  if (s) return s;
  s = { text: "", reasoning: "", gap: false, listeners: new Set() };
  const update = () => {
    const delta = model.get("delta");
    const withCheckpoint = reconcile(s.text, model.get("text"), null);
    s.gap = hasGap(withCheckpoint, delta);
    s.text = reconcile(withCheckpoint, null, delta);
    s.reasoning = reconcile(s.reasoning, model.get("reasoning"), model.get("reasoning_delta"));
    for (const listener of s.listeners) listener();
  };
  for (const name of STREAM_TRAITS) model.on(`change:${name}`, update);
  update();
  streams.set(model, s);
  return s;
}

function el(tag, className, parent) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (parent) parent.appendChild(node);
  return node;
}

function render({ model, el: host }) {
  const sanitize = makeSanitizer(window);
  const stream = track(model);
  const root = el("div", "elk-panel", host);
  const header = el("div", "elk-header", root);
  const reasoning = el("details", "elk-reasoning", root);
  const reasoningSummary = el("summary", "", reasoning);
  const reasoningBody = el("div", "elk-reasoning-body", reasoning);
  const answer = el("div", "elk-answer jp-RenderedHTMLCommon", root);
  const tools = el("div", "elk-tools", root);
  const choices = el("div", "elk-choices", root);
  const error = el("div", "elk-error", root);
  const note = el("div", "elk-note", root);
  const footer = el("div", "elk-footer", root);

  let userToggled = false;
  let settingOpen = false;
  reasoning.open = true;
  reasoning.addEventListener("toggle", () => {
    if (!settingOpen) userToggled = true;
  });
  const setOpen = (open) => {
    if (reasoning.open === open) return;
    settingOpen = true;
    reasoning.open = open;
    // the toggle event fires asynchronously: clear the flag after it
    setTimeout(() => (settingOpen = false), 0);
  };

  let shownText = null;
  let shownReasoning = null;
  let frame = 0;

  function paint() {
    frame = 0;
    const status = model.get("replayed") && model.get("status") === "completed" ? "replayed" : model.get("status");
    root.dataset.status = status;
    renderHeader(status);
    if (stream.reasoning !== shownReasoning) {
      reasoningBody.textContent = stream.reasoning;
      shownReasoning = stream.reasoning;
    }
    reasoning.hidden = !stream.reasoning;
    const tokens = usageNumbers(model.get("usage")).reasoning;
    reasoningSummary.textContent = `Reasoning${tokens ? ` · ${tokens} tokens` : ""}${status === "streaming" && !stream.text ? " …" : ""}`;
    // Reasoning streams open, then folds away once the answer starts (unless the user chose).
    if (!userToggled) setOpen(!stream.text);
    if (stream.text !== shownText) {
      answer.innerHTML = markdownToSafeHtml(stream.text + (stream.gap ? "\n\n…" : ""), sanitize);
      shownText = stream.text;
    }
    renderTools();
    renderChoices();
    error.textContent = model.get("error") || "";
    error.hidden = !model.get("error");
    note.textContent = model.get("note") || "";
    note.hidden = !model.get("note");
    renderFooter();
  }

  function renderHeader(status) {
    header.replaceChildren();
    const asked = model.get("model_asked");
    const answered = model.get("model");
    const parts = [model.get("endpoint"), model.get("conversation"), answered && answered !== asked ? `${asked} → ${answered}` : asked];
    for (const part of parts.filter(Boolean)) el("span", "elk-tag", header).textContent = part;
    const badge = el("span", `elk-status elk-status-${status}`, header);
    badge.textContent = STATUS_LABELS[status] || status;
    const attempts = model.get("attempts");
    if (attempts > 1) el("span", "elk-tag elk-retries", header).textContent = `${attempts - 1} ${attempts > 2 ? "retries" : "retry"}`;
  }

  function renderTools() {
    tools.replaceChildren();
    for (const call of model.get("tool_calls") || []) {
      const box = el("div", "elk-tool", tools);
      el("div", "elk-tool-name", box).textContent = `tool call: ${call.function?.name || "?"}${call.id ? ` (${call.id})` : ""}`;
      let args = call.function?.arguments || "";
      try {
        args = JSON.stringify(JSON.parse(args), null, 2);
      } catch {
        /* still streaming, or not JSON: show as is */
      }
      el("pre", "elk-tool-args", box).textContent = args;
    }
  }

  function renderChoices() {
    const list = model.get("choices") || [];
    choices.replaceChildren();
    for (const choice of list.slice(1)) {
      const box = el("div", "elk-choice", choices);
      el("div", "elk-choice-title", box).textContent = `choice ${choice.index}${choice.finish_reason ? ` · ${choice.finish_reason}` : ""}`;
      el("div", "elk-choice-body jp-RenderedHTMLCommon", box).innerHTML = markdownToSafeHtml(choice.text, sanitize);
    }
  }

  function renderFooter() {
    footer.replaceChildren();
    for (const [label, value] of footerItems(model.get("usage"), model.get("timing"), model.get("context"))) {
      const item = el("span", "elk-stat", footer);
      item.dataset.stat = label;
      el("span", "elk-stat-label", item).textContent = label;
      el("span", "elk-stat-value", item).textContent = value;
    }
  }

  // Coalesce bursts of trait changes into one paint per animation frame.
  const schedule = () => {
    if (!frame) frame = requestAnimationFrame(paint);
  };
  stream.listeners.add(schedule);
  for (const name of VIEW_TRAITS) model.on(`change:${name}`, schedule);
  paint();

  return () => {
    stream.listeners.delete(schedule);
    for (const name of VIEW_TRAITS) model.off(`change:${name}`, schedule);
    if (frame) cancelAnimationFrame(frame);
  };
}

export default {
  initialize({ model }) {
    track(model);
  },
  render,
};
