// Saved turns drawn when seen, else in idle time (when-shown.js), against a page whose IntersectionObserver and
// requestIdleCallback the test drives (the real ones are exercised by the browser tests and bench/saved_notebook.py).
import assert from "node:assert/strict";
import { test } from "node:test";
import { drawWhenShown } from "./when-shown.js";

function page() {
  const observers = [];
  const idle = [];
  const win = {
    IntersectionObserver: class {
      constructor(callback) {
        this.callback = callback;
        this.nodes = [];
        observers.push(this);
      }
      observe(node) {
        this.nodes.push(node);
      }
      disconnect() {
        this.nodes = [];
      }
    },
    requestIdleCallback: (callback) => idle.push(callback),
  };
  const node = () => ({ ownerDocument: { defaultView: win } });
  const show = (shown) => {
    for (const o of observers) if (o.nodes.includes(shown)) o.callback([{ isIntersecting: true, target: shown }]);
  };
  const runIdle = (timeRemaining) => idle.splice(0).forEach((callback) => callback({ timeRemaining: () => timeRemaining }));
  return { node, show, runIdle };
}

test("nothing is drawn until seen or idle; a seen turn is drawn at once, the rest in order, one per forced callback", () => {
  const { node, show, runIdle } = page();
  const drawn = [];
  const nodes = [1, 2, 3, 4].map((n) => {
    const at = node();
    drawWhenShown(at, (shown) => drawn.push(shown ? n : -n));
    return at;
  });
  assert.deepEqual(drawn, []);
  show(nodes[2]);
  assert.deepEqual(drawn, [3]); // drawn because seen
  runIdle(0); // a callback forced by its timeout: still one draw
  assert.deepEqual(drawn, [3, -1]);
  runIdle(50); // time to spare: the rest, in order, and the one already drawn is not drawn again
  assert.deepEqual(drawn, [3, -1, -2, -4]);
  show(nodes[0]);
  runIdle(50);
  assert.deepEqual(drawn, [3, -1, -2, -4]);
});

test("with idle: false, only when seen", () => {
  const { node, show, runIdle } = page();
  const drawn = [];
  const at = node();
  drawWhenShown(at, (shown) => drawn.push(shown), { idle: false });
  runIdle(50);
  runIdle(0);
  assert.deepEqual(drawn, []);
  show(at);
  show(at);
  assert.deepEqual(drawn, [true]);
});

test("a cancelled draw never happens, seen or idle", () => {
  const { node, show, runIdle } = page();
  const drawn = [];
  const at = node();
  const cancel = drawWhenShown(at, () => drawn.push("late"));
  cancel();
  show(at);
  runIdle(50);
  assert.deepEqual(drawn, []);
});

test("where the page cannot tell what is seen, the turn is drawn at once", () => {
  const drawn = [];
  drawWhenShown({ ownerDocument: { defaultView: {} } }, (shown) => drawn.push(shown));
  assert.deepEqual(drawn, [true]);
});
