// elk-jupyter's Panel: the live view of one turn (anywidget ESM). The kernel streams text as small deltas (see
// state.js); this module rebuilds it per model and hands view.js a source over the model, so the live panel and the
// saved-turn renderer draw with the same code.
import { lazyHighlighter } from "./highlight-lazy.js";
import { hasGap, reconcile } from "./state.js";
import { prepare, renderTurn } from "./view.js";
import { STREAMED_FIELDS, VIEW_FIELDS } from "./view-data.js";

const STREAM_TRAITS = Object.entries(STREAMED_FIELDS).flat(); // text, delta, reasoning, reasoning_delta
const streams = new WeakMap(); // model -> {text, reasoning, gap, listeners}
// One for all panels of the page. highlight.js and its grammars are evaluated in idle time after the first paint, or
// when a settled code block asks first (that block is highlighted once they are there).
const highlighter = lazyHighlighter(() => import("./highlight-live.js").then((module) => module.highlighter));

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

// Set-up that the first paint does not wait for, each in an idle moment of its own after it: the Markdown parser's
// first use, then highlight.js (issue 25). Once per page.
let prepared = false;
function prepareWhenIdle(win) {
  if (prepared || !win) return;
  prepared = true;
  const idle = win.requestIdleCallback ? (f) => win.requestIdleCallback(f, { timeout: 1000 }) : (f) => win.setTimeout(f, 100);
  idle(() => {
    prepare(win);
    highlighter.prepareWhenIdle(win);
  });
}

// The widget model as a view source: streamed fields come from the accumulator, the others from the traits.
export function liveSource(model) {
  const stream = track(model);
  const own = { text: () => stream.text, reasoning: () => stream.reasoning, gap: () => stream.gap };
  return {
    get: (name) => (own[name] ? own[name]() : model.get(name)),
    on(event, listener) {
      stream.listeners.add(listener);
      for (const name of VIEW_FIELDS) model.on(`change:${name}`, listener);
    },
    off(event, listener) {
      stream.listeners.delete(listener);
      for (const name of VIEW_FIELDS) model.off(`change:${name}`, listener);
    },
  };
}

export default {
  initialize({ model }) {
    track(model);
  },
  render({ model, el }) {
    prepareWhenIdle(el.ownerDocument.defaultView);
    // No typesetter here: anywidget offers the panel none, and KaTeX would not fit the budget (docs/performance.md).
    // Math stays verbatim in .elk-math while the reply streams; the saved-turn renderer typesets it.
    return renderTurn(el, liveSource(model), { highlighter });
  },
};
