import assert from "node:assert/strict";
import { test } from "node:test";
import { withoutLivePanels } from "./chat.js";

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
