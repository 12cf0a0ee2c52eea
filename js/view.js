// The DOM view of one turn: header, reasoning, answer, tool calls, choices, error, note, footer. It is driven by a
// source `{get(name), on("change", f), off("change", f)}`: the live widget model (panel.js) or a saved VIEW
// (view-data.js's staticSource, used by the JupyterLab renderer), so a turn looks the same live and reopened.
import { createRenderPolicy } from "./render.js";
import { STATUS_LABELS, usageNumbers } from "./state.js";
import { readField } from "./view-data.js";

const policies = new WeakMap(); // window -> its render policy (one DOMPurify instance per window)

function policyFor(window) {
  if (!policies.has(window)) policies.set(window, createRenderPolicy(window));
  return policies.get(window);
}

function el(tag, className, parent) {
  const node = parent.ownerDocument.createElement(tag);
  if (className) node.className = className;
  parent.appendChild(node);
  return node;
}

function buildSkeleton(host) {
  const root = el("div", "elk-panel", host);
  const parts = { root, header: el("div", "elk-header", root) };
  const reasoning = (parts.reasoning = el("details", "elk-reasoning", root));
  parts.reasoningSummary = el("summary", "", reasoning);
  parts.reasoningBody = el("div", "elk-reasoning-body", reasoning);
  parts.answer = el("div", "elk-answer jp-RenderedHTMLCommon", root);
  for (const name of ["tools", "choices", "error", "note", "footer"]) parts[name] = el("div", `elk-${name}`, root);
  return parts;
}

// Reasoning streams open, then folds away once the answer starts, unless the user opened or closed it.
function foldingReasoning(details) {
  let userToggled = false;
  let settingOpen = false;
  details.open = true;
  details.addEventListener("toggle", () => {
    if (!settingOpen) userToggled = true;
  });
  return (open) => {
    if (userToggled || details.open === open) return;
    settingOpen = true;
    details.open = open;
    setTimeout(() => (settingOpen = false), 0); // the toggle event fires asynchronously: clear the flag after it
  };
}

function renderHeader(header, get, status) {
  header.replaceChildren();
  const asked = get("model_asked");
  const answered = get("model");
  const parts = [get("endpoint"), get("conversation"), answered && answered !== asked ? `${asked} → ${answered}` : asked];
  for (const part of parts.filter(Boolean)) el("span", "elk-tag", header).textContent = part;
  el("span", `elk-status elk-status-${status}`, header).textContent = STATUS_LABELS[status] || status;
  const attempts = get("attempts");
  if (attempts > 1) el("span", "elk-tag elk-retries", header).textContent = `${attempts - 1} ${attempts > 2 ? "retries" : "retry"}`;
}

function renderTools(tools, calls) {
  tools.replaceChildren();
  for (const call of calls) {
    const box = el("div", "elk-tool", tools);
    el("div", "elk-tool-name", box).textContent = `tool call: ${call.function.name || "?"}${call.id ? ` (${call.id})` : ""}`;
    let args = call.function.arguments;
    try {
      args = JSON.stringify(JSON.parse(args), null, 2);
    } catch {
      /* still streaming, or not JSON: show as is */
    }
    el("pre", "elk-tool-args", box).textContent = args;
  }
}

function renderFooter(footer, get) {
  footer.replaceChildren();
  for (const [label, value] of get("footer")) {
    const item = el("span", "elk-stat", footer);
    item.dataset.stat = label;
    el("span", "elk-stat-label", item).textContent = label;
    el("span", "elk-stat-value", item).textContent = value;
  }
}

function showText(node, text) {
  node.textContent = text;
  node.hidden = !text;
}

// Draw the turn into `host` and follow the source's changes; returns the cleanup that unsubscribes.
// `options.typeset(element)`, if given, is called on each math element (class elk-math) after it is drawn.
export function renderTurn(host, source, options = {}) {
  const policy = policyFor(host.ownerDocument.defaultView);
  const get = (name) => readField(name, source.get(name));
  const parts = buildSkeleton(host);
  const setReasoningOpen = foldingReasoning(parts.reasoning);
  const typeset = (node) => {
    if (options.typeset) for (const math of node.querySelectorAll(".elk-math")) options.typeset(math);
  };
  const shown = { text: null, reasoning: null, choices: null };
  let frame = 0;

  function paint() {
    frame = 0;
    const text = get("text");
    const reasoning = get("reasoning");
    const status = get("badge") || get("status"); // the kernel decides "replayed" (render.py shown_status)
    parts.root.dataset.status = status;
    renderHeader(parts.header, get, status);
    if (reasoning !== shown.reasoning) parts.reasoningBody.textContent = shown.reasoning = reasoning;
    parts.reasoning.hidden = !reasoning;
    const tokens = usageNumbers(get("usage")).reasoning;
    parts.reasoningSummary.textContent = `Reasoning${tokens ? ` · ${tokens} tokens` : ""}${status === "streaming" && !text ? " …" : ""}`;
    setReasoningOpen(!text);
    if (text !== shown.text) {
      policy.render(parts.answer, text + (get("gap") ? "\n\n…" : ""));
      typeset(parts.answer);
      shown.text = text;
    }
    renderTools(parts.tools, get("tool_calls"));
    paintChoices(get("choices"));
    showText(parts.error, get("error"));
    showText(parts.note, get("note"));
    renderFooter(parts.footer, get);
  }

  // Other choices than the first (n > 1); drawn again only when they change.
  function paintChoices(list) {
    const key = JSON.stringify(list);
    if (key === shown.choices) return;
    shown.choices = key;
    parts.choices.replaceChildren();
    for (const choice of list.slice(1)) {
      const box = el("div", "elk-choice", parts.choices);
      el("div", "elk-choice-title", box).textContent = `choice ${choice.index}${choice.finish_reason ? ` · ${choice.finish_reason}` : ""}`;
      policy.render(el("div", "elk-choice-body jp-RenderedHTMLCommon", box), choice.text);
    }
    typeset(parts.choices);
  }

  // Coalesce bursts of changes into one paint per animation frame.
  const win = host.ownerDocument.defaultView;
  const schedule = () => {
    if (!frame) frame = win.requestAnimationFrame(paint);
  };
  source.on("change", schedule);
  paint();
  return () => {
    source.off("change", schedule);
    if (frame) win.cancelAnimationFrame(frame);
  };
}
