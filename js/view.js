// The DOM view of one turn: header, reasoning, answer, tool calls, choices, error, note, footer. It is driven by a
// source `{get(name), on("change", f), off("change", f)}`: the live widget model (panel.js) or a saved VIEW
// (view-data.js's staticSource, used by the JupyterLab renderer), so a turn looks the same live and reopened.
// The answer is drawn incrementally (blocks.js): settled blocks stay, only the open one is drawn again.
import { streamingMarkdown } from "./blocks.js";
import { renderChoices } from "./choices.js";
import { copyButton } from "./clipboard.js";
import { codeDecorator } from "./code.js";
import { createRenderPolicy, MAX_MARKDOWN_CHARS } from "./render.js";
import { STATUS_LABELS, usageNumbers } from "./state.js";
import { readField } from "./view-data.js";

const policies = new WeakMap(); // window -> its render policy (one DOMPurify instance per window)

function policyFor(window) {
  if (!policies.has(window)) policies.set(window, createRenderPolicy(window));
  return policies.get(window);
}

// A short answer with the Markdown a reply uses, drawn once off-screen when the page is idle (prepare): the parser's
// and the sanitizer's first use (their expressions compiled, their code warmed) then happens before the first delta,
// not in the first delta's frame (issue 25: first paint without a long task).
const SAMPLE = "# T\n\nSome **bold**, *em*, `code`, [a](https://x.invalid) and <b>x</b>.\n\n- a\n- b\n\n1. c\n\n> q\n\n" +
  "| a | b |\n|---|---|\n| 1 | 2 |\n\n```python\nx = 1\n```\n\nText\n---\n";

export function prepare(window) {
  policyFor(window).toFragment(SAMPLE);
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
  parts.images = el("div", "elk-images", root);
  parts.answer = el("div", "elk-answer jp-RenderedHTMLCommon", root);
  parts.gap = el("div", "elk-gap", root);
  parts.gap.textContent = "…";
  parts.actions = el("div", "elk-actions", root);
  parts.audio = el("div", "elk-audio", root);
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
    if (call.result === undefined) continue;
    const took = call.duration === null ? "" : ` (${Math.round(call.duration * 1000)} ms)`;
    const outcome = el("pre", call.error ? "elk-tool-error" : "elk-tool-result", box);
    outcome.textContent = (call.error ? `error: ${call.error}` : `→ ${call.result}`) + took;
  }
}

// The images the user sent with the prompt (--image): a thumbnail when the bytes came along, else a label.
function renderImages(box, images) {
  box.replaceChildren();
  for (const image of images) {
    const figure = el("figure", "elk-image-sent", box);
    if (image.src) {
      const img = el("img", "elk-thumbnail", figure);
      img.alt = image.label;
      img.src = image.src;
    }
    el("figcaption", "", figure).textContent = image.label;
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

function sizeWords(size) {
  if (size === null) return "";
  return size < 1024 ? `${size} bytes` : size < 2 ** 20 ? `${Math.round(size / 1024)} KB` : `${(size / 2 ** 20).toFixed(1)} MB`;
}

function audioCaption(clip) {
  const parts = [clip.duration !== null ? `${clip.duration.toFixed(1)} s` : "", clip.format, sizeWords(clip.size)];
  return `audio · ${parts.filter(Boolean).join(" · ")}`;
}

// The audio reply's player: from the bytes (a Blob URL made here), or from the file beside the notebook, which
// `resolveFile(name)` turns into the server's own URL for it (JupyterLab: /files/...). Nothing is fetched before the
// user presses play (preload none), and a remote URL is never used: view-data.js lets only a digest file name through.
function audioPlayer(node, resolveFile) {
  let shownKey; // undefined: nothing drawn yet
  let objectUrl = null;
  const release = () => {
    if (objectUrl) node.ownerDocument.defaultView.URL.revokeObjectURL(objectUrl);
    objectUrl = null;
  };
  function paint(clip) {
    const key = clip ? JSON.stringify([clip.streaming, clip.size, clip.file, clip.data && clip.data.length]) : null;
    if (key === shownKey) return;
    shownKey = key;
    release();
    node.replaceChildren();
    node.hidden = !clip;
    if (!clip) return;
    const caption = el("div", "elk-audio-caption", node);
    if (clip.streaming) {
      caption.textContent = `receiving audio · ${sizeWords(clip.size)} …`;
      return;
    }
    caption.textContent = audioCaption(clip);
    if (!clip.data && !(clip.file && resolveFile)) {
      caption.textContent += clip.file ? ` · saved beside the notebook as ${clip.file}` : " · no playable data";
      return;
    }
    const player = el("audio", "elk-audio-player", node);
    player.controls = true;
    player.preload = "none";
    player.addEventListener("error", () => {
      caption.textContent = `${audioCaption(clip)} · the clip could not be loaded${clip.file ? ` (${clip.file} beside the notebook)` : ""}`;
    });
    if (clip.data) {
      const win = node.ownerDocument.defaultView;
      const bytes = Uint8Array.from(win.atob(clip.data), (c) => c.charCodeAt(0));
      objectUrl = win.URL.createObjectURL(new win.Blob([bytes], { type: clip.mime }));
      player.src = objectUrl;
    } else {
      Promise.resolve(resolveFile(clip.file)).then(
        (url) => {
          if (typeof url === "string" && shownKey === key) player.src = url;
        },
        () => (caption.textContent += " · the file beside the notebook could not be found"),
      );
    }
  }
  return { paint, release };
}

function showText(node, text) {
  node.textContent = text;
  node.hidden = !text;
}

// Draw the turn into `host` and follow the source's changes; returns the cleanup that unsubscribes.
// `options.typeset(root)`, if given, is called with the turn's root after each paint (the saved-turn renderer passes
// math.js blockTypesetter over JupyterLab's typesetter: one pass over the formulas math.js allowed);
// `options.highlighter` (highlight.js's createHighlighter), if given, highlights settled code blocks.
// `options.resolveFile(name)` gives the URL of a file beside the notebook (an audio clip saved there).
export function renderTurn(host, source, options = {}) {
  const policy = policyFor(host.ownerDocument.defaultView);
  const get = (name) => readField(name, source.get(name));
  const parts = buildSkeleton(host);
  const setReasoningOpen = foldingReasoning(parts.reasoning);
  const player = audioPlayer(parts.audio, options.resolveFile);
  const dressCode = codeDecorator(policy, options.highlighter || null);
  const markdown = (node) => {
    policy.wire(node);
    return streamingMarkdown(node, policy, { decorate: dressCode, maxChars: MAX_MARKDOWN_CHARS });
  };
  const answer = markdown(parts.answer);
  parts.actions.appendChild(copyButton(host.ownerDocument, "Copy answer", "Copy the answer's Markdown", () => get("text")));
  const shown = { text: null, streaming: null, reasoning: null, choices: null };
  let frame = 0;

  function paint() {
    frame = 0;
    const text = get("text");
    const reasoning = get("reasoning");
    const status = get("badge") || get("status"); // the kernel decides "replayed" (render.py shown_status)
    const streaming = get("status") === "streaming";
    parts.root.dataset.status = status;
    redraw("header", [status, get("endpoint"), get("conversation"), get("model_asked"), get("model"), get("attempts")],
      () => renderHeader(parts.header, get, status));
    if (reasoning !== shown.reasoning) parts.reasoningBody.textContent = shown.reasoning = reasoning;
    parts.reasoning.hidden = !reasoning;
    const tokens = usageNumbers(get("usage")).reasoning;
    parts.reasoningSummary.textContent = `Reasoning${tokens ? ` · ${tokens} tokens` : ""}${streaming && !text ? " …" : ""}`;
    setReasoningOpen(!text);
    if (text !== shown.text || streaming !== shown.streaming) {
      answer.update(text, streaming);
      Object.assign(shown, { text, streaming });
    }
    parts.gap.hidden = !get("gap");
    const calls = get("tool_calls");
    redraw("tools", calls, () => renderTools(parts.tools, calls));
    player.paint(get("audio"));
    redraw("images", get("images"), () => renderImages(parts.images, get("images")));
    paintChoices(get("choices"));
    parts.actions.hidden = !text || streaming || !parts.choices.hidden;
    showText(parts.error, get("error"));
    showText(parts.note, get("note"));
    redraw("footer", get("footer"), () => renderFooter(parts.footer, get));
    options.typeset?.(parts.root);
  }

  // Header, tools and footer are drawn again only when what they show changed: a streamed update touches the
  // answer alone, so the browser restyles nothing else.
  const drawn = new Map();
  function redraw(part, inputs, draw) {
    const key = JSON.stringify(inputs);
    if (drawn.get(part) === key) return;
    drawn.set(part, key);
    draw();
  }

  // n > 1: every choice side by side (the first is the answer, so the answer itself is hidden); drawn again only
  // when the list changes.
  function paintChoices(list) {
    const key = JSON.stringify(list);
    if (key === shown.choices) return;
    shown.choices = key;
    renderChoices(parts.choices, list, (node, text) => markdown(node).update(text, false));
    parts.answer.hidden = !parts.choices.hidden;
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
    player.release();
  };
}
