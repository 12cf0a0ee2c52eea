// Saved turns drawn when they are about to be seen, the rest in idle time. JupyterLab renders every output of a
// notebook it opens (its default windowing mode, contentVisibility, keeps all cells in the DOM), in one go before the
// first paint: a 100-turn notebook spent its first seconds drawing turns no one could see yet
// (bench/saved_notebook.py). `drawWhenShown(node, draw)` draws at once where the page cannot tell (no
// IntersectionObserver or requestIdleCallback: tests, old browsers); otherwise as soon as `node` intersects the
// viewport, and in any case in idle time, in the order asked, so every turn is drawn (and searchable) a moment later.
// `draw(shown)`: true when drawn because it was seen (or at once). With `{ idle: false }` only when seen: for work no
// one needs before then (typesetting a turn's formulas, labextension/src/index.js).
// Returns a function that cancels a draw not yet made (the output re-rendered or disposed).
const queues = new WeakMap(); // window -> { jobs, scheduled }

export function drawWhenShown(node, draw, { idle = true } = {}) {
  const win = node.ownerDocument?.defaultView;
  if (!win?.IntersectionObserver || !win.requestIdleCallback) {
    draw(true);
    return () => {};
  }
  const job = { done: false };
  const observer = new win.IntersectionObserver((entries) => {
    if (entries.some((entry) => entry.isIntersecting)) job.run(true);
  });
  job.run = (shown) => {
    if (job.done) return;
    job.done = true;
    observer.disconnect();
    draw(shown);
  };
  observer.observe(node);
  const cancel = () => {
    job.done = true;
    observer.disconnect();
  };
  if (!idle) return cancel;
  const queue = queues.get(win) ?? { jobs: [], scheduled: false };
  queues.set(win, queue);
  queue.jobs.push(job);
  drainWhenIdle(win, queue);
  return cancel;
}

// At least one draw per idle callback (a callback forced by its timeout has no time left), more while time remains.
function drainWhenIdle(win, queue) {
  if (queue.scheduled) return;
  queue.scheduled = true;
  win.requestIdleCallback(
    (deadline) => {
      queue.scheduled = false;
      do {
        queue.jobs.shift()?.run(false);
      } while (queue.jobs.length && deadline.timeRemaining() > 4);
      if (queue.jobs.length) drainWhenIdle(win, queue);
    },
    { timeout: 300 },
  );
}
