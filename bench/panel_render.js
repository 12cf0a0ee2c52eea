// The page side of bench/panel_render.py: streams a reply into a panel at the kernel's cadence and reports the
// main thread's cost. `mode` "panel" drives the real bundle (elk_jupyter/static/panel.js) through a widget model
// the way anywidget does; "full" is the baseline: the same render policy drawing the whole Markdown on every update
// (the panel before issue 15).
// `startAt` > 0: the text up to there is shown first (not measured), then the rest streams.
window.benchStream = async function benchStream({ mode, text, deltaChars, perSecond, startAt = 0 }) {
  const host = document.body.appendChild(document.createElement("div"));
  const work = []; // ms of our code per update: the model change plus the frame's paint
  const rawFrame = window.requestAnimationFrame.bind(window);
  let paintMs = 0;
  window.requestAnimationFrame = (callback) =>
    rawFrame((t) => {
      const start = performance.now();
      callback(t);
      paintMs += performance.now() - start;
    });
  let push;
  if (mode === "panel") {
    const { default: widget } = await import("/static/panel.js");
    const handlers = new Map();
    const values = { status: "streaming", text: "", delta: { offset: 0, text: "" }, reasoning: "", reasoning_delta: { offset: 0, text: "" },
      usage: null, timing: {}, tool_calls: [], choices: [], endpoint: "chat", conversation: "bench", model_asked: "m", model: "m" };
    const model = {
      get: (name) => values[name],
      on: (event, f) => (handlers.get(event) || handlers.set(event, new Set()).get(event)).add(f),
      off: (event, f) => handlers.get(event)?.delete(f),
      set(changes) {
        Object.assign(values, changes);
        for (const name of Object.keys(changes)) for (const f of handlers.get(`change:${name}`) || []) f();
      },
    };
    widget.initialize({ model });
    widget.render({ model, el: host });
    push = (offset, piece, done) => model.set(done ? { delta: { offset, text: piece }, status: "completed" } : { delta: { offset, text: piece } });
  } else {
    const { createRenderPolicy } = await import("/baseline.js");
    const policy = createRenderPolicy(window);
    const answer = host.appendChild(document.createElement("div"));
    let acc = "";
    let frame = 0;
    push = (offset, piece) => {
      acc = acc.slice(0, offset) + piece;
      if (!frame) frame = window.requestAnimationFrame(() => ((frame = 0), policy.render(answer, acc)));
    };
  }
  if (startAt) push(0, text.slice(0, startAt), false);
  // Observed from here: loading and compiling the bundle is not part of streaming.
  await new Promise((resolve) => setTimeout(resolve, 300));
  const longTasks = [];
  const observer = new PerformanceObserver((list) => longTasks.push(...list.getEntries().map((e) => e.duration)));
  observer.observe({ type: "longtask", buffered: false });
  const began = performance.now();
  for (let offset = startAt, n = 0; offset < text.length; offset += deltaChars, n++) {
    const wait = began + (n * 1000) / perSecond - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    paintMs = 0;
    const start = performance.now();
    push(offset, text.slice(offset, offset + deltaChars), offset + deltaChars >= text.length);
    const setMs = performance.now() - start;
    await new Promise((resolve) => rawFrame(() => setTimeout(resolve, 0))); // this update's frame has run
    work.push(setMs + paintMs);
  }
  await new Promise((resolve) => setTimeout(resolve, 200));
  observer.disconnect();
  window.requestAnimationFrame = rawFrame;
  const shown = host.textContent.length;
  host.remove();
  const worstAt = work.indexOf(Math.max(...work));
  return { longTasks, work, worstAt, seconds: (performance.now() - began) / 1000, shown };
};

// First paint (issue 25): a fresh page imports the bundle, draws an empty panel, and `firstDeltaAfter` ms later (a
// model's time to first token) the first delta arrives. Long tasks are observed from before the import (buffered),
// and sorted by phase: loading the module and drawing the panel; the page's idle time before the first delta (where
// set-up may be moved); the first delta's frame. `highlighted`: code blocks highlighted once all is done.
window.benchFirstPaint = async function benchFirstPaint({ src, firstDeltaAfter, text }) {
  const host = document.body.appendChild(document.createElement("div"));
  const t0 = performance.now();
  const { default: widget } = await import(src);
  const handlers = new Map();
  const values = { status: "streaming", text: "", delta: { offset: 0, text: "" }, reasoning: "", reasoning_delta: { offset: 0, text: "" },
    usage: null, timing: {}, tool_calls: [], choices: [], endpoint: "chat", conversation: "bench", model_asked: "m", model: "m" };
  const model = {
    get: (name) => values[name],
    on: (event, f) => (handlers.get(event) || handlers.set(event, new Set()).get(event)).add(f),
    off: (event, f) => handlers.get(event)?.delete(f),
    set(changes) {
      Object.assign(values, changes);
      for (const name of Object.keys(changes)) for (const f of handlers.get(`change:${name}`) || []) f();
    },
  };
  widget.initialize({ model });
  widget.render({ model, el: host });
  await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
  const t1 = performance.now(); // the empty panel is on screen
  await new Promise((resolve) => setTimeout(resolve, firstDeltaAfter));
  const t2 = performance.now();
  model.set({ delta: { offset: 0, text } });
  await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
  const t3 = performance.now(); // the first delta is on screen
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const longest = (from, to) => Math.max(0, ...window.longTasks.filter(([s]) => s >= from && s < to).map(([, d]) => d));
  return {
    load: longest(t0, t1),
    idle: longest(t1, t2),
    firstDelta: longest(t2, t3 + 1),
    toPanel: t1 - t0,
    toFirstDelta: t3 - t2,
    highlighted: host.querySelectorAll("code.hljs").length,
  };
};
