// The experiment matrix: reading a hostile view, sorting rows and columns, filters, the word diff, and the DOM
// (sort buttons, a run opened from its record, two columns compared), all inert.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { JSDOM } from "jsdom";
import {
  cellValue, EXPERIMENT_MIME, filterRows, readMatrix, SOURCES_KEY, sortColumns, sortRows, tokenize, wordDiff,
} from "./matrix-data.js";
import { renderMatrix } from "./matrix.js";

const { window } = new JSDOM("<!DOCTYPE html><body></body>", { pretendToBeVisual: true });
const host = () => window.document.body.appendChild(window.document.createElement("div"));

const run = (caseIndex, column, fields = {}) => ({
  case: caseIndex, column, repeat: 0, status: "completed", error: "", text: `out ${caseIndex} ${column}`,
  clipped: false, passed: true, score: 1, scores: { s: { value: 1, passed: true, reason: "ok" } }, latency: 0.5,
  tokens: [3, 4], cost: null, replayed: false, judged: 0, record: [0, caseIndex * 2 + column], ...fields,
});

function sampleView() {
  return {
    version: 1, mode: "matrix", live: false,
    sources: [{ name: "demo", id: "abc", done: 6, total: 6, errors: 1, scorers: ["s"], templates: ["Capital of <b>$q</b>?"] }],
    cases: [{ q: "alpha" }, { q: "beta" }, { q: "gamma" }],
    columns: [{ label: "m1", model: "m1", params: {}, source: 0 }, { label: "m2", model: "m2", params: {}, source: 0 }],
    summaries: [{ version: 1, columns: [
      { index: 0, pass_rate: { value: 0.33, low: 0.06, high: 0.79 }, pass_hat_k: { 1: 0.33, 2: 0.1 } },
      { index: 1, pass_rate: { value: 0.67, low: null, high: null } },
    ], comparisons: [{ a: 0, b: 1, cases: 3, pass: { kind: "pass", cases: 3, effect: -0.33, low: null, high: null,
      p_value: null, a_better: 0, b_better: 1, needed: 6, verdict: "too_few" }, score: null }] }],
    runs: [
      run(0, 0, { score: 0.2, passed: false }), run(0, 1, { score: 0.9 }),
      run(1, 0, { score: 0.7, text: "same" }), run(1, 1, { score: 0.1, text: "same" }),
      run(2, 0, { score: 0.5, status: "error", error: "HTTP 500", passed: false }), run(2, 1, { score: null, passed: null }),
    ],
    pair: null, comparison: null,
  };
}

test("the mime type and view version are the Python side's (elk_jupyter/experiments/matrix.py)", () => {
  const source = readFileSync(new URL("../elk_jupyter/experiments/matrix.py", import.meta.url), "utf8");
  assert.match(source, new RegExp(`EXPERIMENT_MIME = "${EXPERIMENT_MIME.replace(/[.+]/g, "\\$&")}"`));
  assert.match(source, /EXPERIMENT_VIEW_VERSION = 1\n/);
  assert.match(source, new RegExp(`SOURCES_KEY = "${SOURCES_KEY}"`));
});

test("rows sort by a column's score either way, empty cells last; by case restores the order", () => {
  const model = readMatrix(sampleView());
  assert.deepEqual(sortRows(model, [0, 1, 2], { column: 0, key: "score", dir: "desc" }), [1, 2, 0]);
  assert.deepEqual(sortRows(model, [0, 1, 2], { column: 0, key: "score", dir: "asc" }), [0, 2, 1]);
  // column 1, case 2 has no score and did not pass or fail: it sorts last in both directions
  assert.deepEqual(sortRows(model, [0, 1, 2], { column: 1, key: "score", dir: "asc" }), [1, 0, 2]);
  assert.deepEqual(sortRows(model, [0, 1, 2], { column: 1, key: "score", dir: "desc" }), [0, 1, 2]);
  assert.deepEqual(sortRows(model, [2, 0, 1], { column: null, dir: "desc" }), [1, 0, 2]);
  assert.deepEqual(sortRows(model, [0, 1, 2], { column: 0, key: "output", dir: "asc" }), [0, 2, 1]);
  assert.equal(cellValue(model, 0, 0, "tokens"), 7);
});

test("columns order by an aggregate; a missing value goes last", () => {
  const model = readMatrix(sampleView());
  assert.deepEqual(sortColumns(model, { field: "pass_rate", dir: "desc" }), [1, 0]);
  assert.deepEqual(sortColumns(model, { field: "pass_rate", dir: "asc" }), [0, 1]);
  assert.deepEqual(sortColumns(model, null), [0, 1]);
});

test("filters: failing, errored, changed between two columns", () => {
  const model = readMatrix(sampleView());
  assert.deepEqual(filterRows(model, [0, 1, 2], "failing", [0, 1]), [0, 2]);
  assert.deepEqual(filterRows(model, [0, 1, 2], "failing", [1]), []);
  assert.deepEqual(filterRows(model, [0, 1, 2], "errored", [0, 1]), [2]);
  assert.deepEqual(filterRows(model, [0, 1, 2], "changed", [0, 1], [0, 1]), [0, 2]);
  assert.deepEqual(filterRows(model, [0, 1, 2], "all", [0, 1]), [0, 1, 2]);
});

test("word diff: common words kept, changed words deleted and added, text rebuilt exactly", () => {
  const parts = wordDiff("the quick brown fox", "the slow brown dog jumps");
  assert.deepEqual(parts, [
    { op: "same", text: "the " }, { op: "del", text: "quick" }, { op: "add", text: "slow" },
    { op: "same", text: " brown " }, { op: "del", text: "fox" }, { op: "add", text: "dog jumps" },
  ]);
  const rebuild = (ps, skip) => ps.filter((p) => p.op !== skip).map((p) => p.text).join("");
  for (const [a, b] of [["", "x y"], ["a  b\nc", "a b\nc d"], ["same", "same"], ["x", ""]]) {
    const diff = wordDiff(a, b);
    assert.equal(rebuild(diff, "add"), a);
    assert.equal(rebuild(diff, "del"), b);
  }
  assert.deepEqual(tokenize("a  b"), ["a", "  ", "b"]);
});

test("a long diff stays linear past the table bound (replaced middle, exact text)", () => {
  const a = Array.from({ length: 5000 }, (_, n) => `a${n}`).join(" ");
  const b = Array.from({ length: 5000 }, (_, n) => `b${n}`).join(" ");
  const parts = wordDiff(`head ${a} tail`, `head ${b} tail`);
  assert.equal(parts[0].text, "head ");
  assert.equal(parts.at(-1).text, " tail");
  assert.deepEqual(parts.map((p) => p.op), ["same", "del", "add", "same"]);
});

test("a hostile view: wrong types dropped, out-of-range runs ignored, unknown versions refused", () => {
  assert.equal(readMatrix({ version: 2 }), null);
  assert.equal(readMatrix("<script>"), null);
  const model = readMatrix({
    version: 1, mode: "<x>", cases: [{ a: "<img src=x onerror=alert(1)>" }, 5],
    columns: [{ label: 7 }, null], summaries: "x",
    runs: [{ case: 9, column: 0 }, { case: 0, column: 1, status: "<b>", score: NaN, tokens: [-1, "x"], record: "y" }, 3],
    pair: [0, 5], comparison: { pass: "<i>" },
  });
  assert.equal(model.mode, "matrix");
  assert.equal(model.runs.length, 1);
  assert.deepEqual([model.runs[0].status, model.runs[0].score, model.runs[0].tokens, model.runs[0].record],
    ["unknown", null, [0, 0], null]);
  assert.equal(model.pair, null);
  assert.equal(model.comparison, null);
  assert.deepEqual(model.fields, []);
  assert.deepEqual(model.cases[1], []);
});

const HOSTILE = "<img src=x onerror=alert(1)> <script>window.__pwned=1</script> [l](javascript:alert(1)) ![i](http://127.0.0.1:9/x.png) $\\href{javascript:alert(1)}{x}$";

test("hostile case values, labels and outputs stay text; nothing loads or runs", () => {
  const view = sampleView();
  view.cases[0] = { q: HOSTILE };
  view.columns[0].label = HOSTILE;
  view.runs[0].text = HOSTILE;
  view.runs[0].scores = { [HOSTILE]: { value: 0, passed: false, reason: HOSTILE } };
  const node = host();
  const state = {};
  renderMatrix(node, view, { elk_jupyter_experiment: { runs: [{ request: { messages: [{ content: HOSTILE }] }, reply: { text: HOSTILE } }] } }, state);
  node.querySelector("button.elk-cell").click();
  assert.ok(node.textContent.includes("<img src=x onerror=alert(1)>"));
  assert.equal(node.querySelectorAll("img, script, iframe, [onerror], a[href^='javascript']").length, 0);
  assert.ok(node.querySelector(".elk-matrix-detail .elk-answer button.elk-image")); // a click-to-load placeholder
});

test("the table sorts from its header buttons and a run opens from its record, focus moving to it", () => {
  const node = host();
  const records = { elk_jupyter_experiment: { runs: Array.from({ length: 6 }, (_, n) => ({
    request: { model: "m", messages: [{ role: "user", content: `ask ${n}` }] }, reply: { text: `**full** output ${n}` },
    judges: n === 1 ? [{ request: { judge: true }, reply: { text: "SCORE: 1 because" } }] : [] })) } };
  const view = sampleView();
  view.runs[2].text = "aaa"; // beta's output sorts first, its score last
  renderMatrix(node, view, records, {});
  const caseLabels = () => [...node.querySelectorAll("tbody th")].map((th) => th.textContent);
  assert.deepEqual(caseLabels(), ["q=alpha", "q=beta", "q=gamma"]);
  const sortM1 = node.querySelector("button[aria-label='Sort by m1']");
  sortM1.focus(); // as a keyboard user reaches it; Enter is a click
  sortM1.click();
  assert.deepEqual(caseLabels(), ["q=beta", "q=gamma", "q=alpha"]);
  assert.equal(node.querySelector("th[aria-sort='descending'] button").getAttribute("aria-label"), "Sort by m1");
  assert.equal(window.document.activeElement.getAttribute("aria-label"), "Sort by m1");
  node.querySelector("button[aria-label='Sort by m1']").click();
  assert.deepEqual(caseLabels(), ["q=alpha", "q=gamma", "q=beta"]);
  const by = node.querySelector("select[aria-label='Sort cells by']");
  by.value = "output"; // the same column, the same direction, now by its outputs
  by.dispatchEvent(new window.Event("change"));
  assert.deepEqual(caseLabels(), ["q=beta", "q=alpha", "q=gamma"]);
  node.querySelector("button[aria-label='Open run: q=alpha, m2']").click();
  const detail = node.querySelector("[aria-label='Run details']");
  assert.equal(window.document.activeElement, detail.querySelector("h3"));
  assert.equal(detail.querySelector(".elk-answer strong").textContent, "full");
  assert.match(detail.textContent, /"content": "ask 1"/);
  assert.match(detail.textContent, /SCORE: 1 because/);
  assert.match(detail.textContent, /3 prompt \+ 4 completion tokens/);
  assert.match(detail.textContent, /qalphapromptCapital of <b>\$q<\/b>\?/); // the case's fields and the template, as text
  assert.equal(node.querySelector("thead th:nth-child(2)").title, "Capital of <b>$q</b>?");
  detail.querySelector("button[aria-label='Close run details']").click();
  assert.equal(node.querySelector("[aria-label='Run details']"), null);
  assert.equal(window.document.activeElement.getAttribute("aria-label"), "Open run: q=alpha, m2");
});

test("aggregates show their interval and order the columns; filters redraw the rows", () => {
  const node = host();
  renderMatrix(node, sampleView(), {}, {});
  assert.match(node.querySelector("tfoot").textContent, /33% \[6%, 79%\]/);
  // pass rate, and pass^2 (only column 0 has it; k = 1 is the pass rate)
  assert.deepEqual([...node.querySelectorAll("tfoot th")].map((th) => th.textContent), ["pass rate", "pass^2"]);
  assert.deepEqual([...node.querySelectorAll("tfoot tr:last-child td")].map((td) => td.textContent), ["10%", "–"]);
  node.querySelector("button[aria-label='Order columns by pass rate']").click();
  assert.deepEqual([...node.querySelectorAll("thead th button")].map((b) => b.getAttribute("aria-label")),
    ["Sort by case", "Sort by m2", "Sort by m1"]);
  const filter = node.querySelector("select[aria-label='Show']");
  filter.value = "errored";
  filter.dispatchEvent(new window.Event("change"));
  assert.deepEqual([...node.querySelectorAll("tbody th")].map((th) => th.textContent), ["q=gamma"]);
});

test("compare: two columns side by side with the word diff and the paired test, opened by a compare view", () => {
  const view = { ...sampleView(), mode: "compare", pair: [1, 0] };
  view.runs[0].text = "the slow fox";
  view.runs[1].text = "the quick fox";
  const node = host();
  renderMatrix(node, view, {}, {});
  const pane = node.querySelector("[aria-label='Compare columns']");
  assert.ok(pane);
  assert.equal(pane.querySelector("del").textContent, "quick");
  assert.equal(pane.querySelector("ins").textContent, "slow");
  // the summary compared 0 with 1; the pair asked is 1 with 0: the effect and counts read the other way round
  assert.match(pane.textContent, /pass rate: \+33% \(1 cases A better, 0 B better of 3\): too few cases to tell/);
  assert.match(pane.textContent, /changed2 of 3 cases with runs in both/);
  assert.equal(node.querySelector("button[aria-label='Compare A and B']").getAttribute("aria-pressed"), "true");
});

test("a long matrix draws a page of rows; sorting sees every case; more rows on request", () => {
  const cases = Array.from({ length: 450 }, (_, n) => ({ q: `case ${n}` }));
  const runs = cases.map((_, n) => run(n, 0, { score: n === 444 ? 1 : 0.5, record: null }));
  const view = { ...sampleView(), cases, columns: [sampleView().columns[0]], runs, summaries: [] };
  const node = host();
  renderMatrix(node, view, {}, {});
  const shown = () => node.querySelectorAll(".elk-matrix-table tbody tr").length;
  assert.equal(shown(), 100);
  assert.match(node.textContent, /Showing 100 of 450 cases/);
  node.querySelector("button[aria-label='Sort by m1']").click();
  assert.equal(node.querySelector("tbody th").textContent, "q=case 444");
  node.querySelector("button[aria-label='Show more cases']").click();
  assert.equal(shown(), 200);
  node.querySelector("button[aria-label='Show all cases']").click();
  assert.equal(shown(), 450);
  assert.equal(node.querySelector("button[aria-label='Show more cases']"), null);
});

test("a live update redraws in place: sort, open run and focus are kept", () => {
  const node = host();
  const state = {};
  const live = { ...sampleView(), live: true };
  renderMatrix(node, live, {}, state);
  node.querySelector("button[aria-label='Sort by m2']").click();
  const open = node.querySelector("button[aria-label='Open run: q=beta, m1']");
  open.click();
  assert.equal(window.document.activeElement, node.querySelector(".elk-matrix-detail h3"));
  const later = { ...sampleView(), live: false };
  later.runs[2].text = "now finished";
  renderMatrix(node, later, {}, state); // what the renderer does on update_display_data
  assert.equal(node.querySelector("th[aria-sort='descending'] button").getAttribute("aria-label"), "Sort by m2");
  assert.match(node.querySelector(".elk-matrix-detail").textContent, /now finished/);
  assert.equal(window.document.activeElement, node.querySelector(".elk-matrix-detail h3"));
  assert.equal(node.querySelector(".elk-matrix-live"), null);
});

test("keyboard: the cells are one Tab stop; arrows, Home and End move; Escape closes a run back to its cell", () => {
  const node = host();
  const view = sampleView();
  view.runs.splice(3, 1); // beta × m2 has no run yet: skipped
  renderMatrix(node, view, {}, {});
  const key = (key, extra = {}) => window.document.activeElement.dispatchEvent(
    new window.KeyboardEvent("keydown", { key, bubbles: true, cancelable: true, ...extra }));
  const at = () => window.document.activeElement.getAttribute("aria-label");
  const stops = [...node.querySelectorAll("button.elk-cell")].filter((b) => b.tabIndex === 0);
  assert.deepEqual(stops.map((b) => b.getAttribute("aria-label")), ["Open run: q=alpha, m1"]);
  assert.match(node.querySelector("caption").textContent, /Arrow keys move between cells/);
  assert.equal(node.querySelector("table").getAttribute("aria-describedby"), node.querySelector("caption").id);
  stops[0].focus();
  key("ArrowRight");
  assert.equal(at(), "Open run: q=alpha, m2");
  key("ArrowRight"); // the edge: focus stays
  assert.equal(at(), "Open run: q=alpha, m2");
  key("ArrowDown"); // beta × m2 has no run: on to gamma
  assert.equal(at(), "Open run: q=gamma, m2");
  key("Home");
  assert.equal(at(), "Open run: q=gamma, m1");
  key("Home", { ctrlKey: true });
  assert.equal(at(), "Open run: q=alpha, m1");
  key("End", { ctrlKey: true });
  assert.equal(at(), "Open run: q=gamma, m2");
  key("ArrowUp");
  assert.equal(at(), "Open run: q=alpha, m2");
  assert.deepEqual([...node.querySelectorAll("button.elk-cell")].filter((b) => b.tabIndex === 0).map((b) => b.getAttribute("aria-label")),
    ["Open run: q=alpha, m2"]); // the Tab stop moved with the focus
  node.querySelector("button[aria-label='Open run: q=gamma, m1']").focus(); // reached another way: the new Tab stop
  assert.deepEqual([...node.querySelectorAll("button.elk-cell")].filter((b) => b.tabIndex === 0).map((b) => b.getAttribute("aria-label")),
    ["Open run: q=gamma, m1"]);
  key("ArrowUp");
  key("ArrowRight"); // beta × m2 has no run, nothing further right: focus stays on beta × m1
  assert.equal(at(), "Open run: q=beta, m1");
  key("ArrowUp");
  key("ArrowRight");
  const other = new window.KeyboardEvent("keydown", { key: "a", bubbles: true, cancelable: true });
  window.document.activeElement.dispatchEvent(other);
  assert.equal(other.defaultPrevented, false); // keys not ours are left to the page
  window.document.activeElement.click(); // Enter on a button
  assert.equal(window.document.activeElement, node.querySelector(".elk-matrix-detail h3"));
  key("Escape");
  assert.equal(node.querySelector("[aria-label='Run details']"), null);
  assert.equal(at(), "Open run: q=alpha, m2");
  assert.equal(window.document.activeElement.tabIndex, 0);
});

test("diff: the paired test of two experiments' columns, read either way round; a pair not tested says so", () => {
  const base = sampleView();
  const test = (verdict, effect) => ({ kind: "pass", cases: 3, effect, low: null, high: null, p_value: null,
    a_better: 2, b_better: 0, needed: 6, verdict });
  const view = {
    ...base, mode: "diff", pair: [0, 2],
    sources: [base.sources[0], { ...base.sources[0], name: "later" }],
    summaries: [base.summaries[0], base.summaries[0]],
    columns: [...base.columns, ...base.columns.map((c, n) => ({ ...c, label: `B: ${c.label}`, source: 1, index: n }))],
    runs: [...base.runs, ...base.runs.map((r) => ({ ...r, column: r.column + 2, record: [1, 0] }))],
    comparison: { cases: 3, pass: test("too_few", 0.67), score: null },
    between: [{ a: 0, b: 2, cases: 3, pass: test("too_few", 0.67), score: null },
      { a: 1, b: 3, cases: 3, pass: test("too_few", -0.33), score: null }],
  };
  const node = host();
  renderMatrix(node, view, {}, {});
  const pane = () => node.querySelector("[aria-label='Compare columns']").textContent;
  assert.match(pane(), /pass rate: \+67% \(2 cases A better, 0 B better of 3\): too few cases to tell — the test needs at least 6/);
  const pick = (label, value) => {
    const picker = node.querySelector(`select[aria-label='${label}']`);
    picker.value = String(value);
    picker.dispatchEvent(new window.Event("change"));
  };
  pick("Column A", 3);
  pick("Column B", 1); // (3, 1): tested as (1, 3), so read the other way round
  assert.match(pane(), /pass rate: \+33% \(0 cases A better, 2 B better of 3\)/);
  pick("Column A", 0); // (0, 1): one experiment's own pair, from its summary
  assert.match(pane(), /pass rate: -33% \(0 cases A better, 1 B better of 3\)/);
  pick("Column B", 3); // (0, 3): not among the pairs tested
  assert.match(pane(), /paired testnot computed for this pair/);
});
