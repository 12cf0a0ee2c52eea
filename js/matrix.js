// The experiment matrix as DOM: cases × columns, rows sorted by any column, columns ordered by any aggregate, rows
// filtered (failing, errored, changed between two columns), a run opened in full (output under the one render
// policy of render.js, request body, every score and reason, judge requests and replies, latency, tokens, cost), two
// columns side by side with a word diff. Model text reaches the DOM only through render.js's policy or as
// textContent. Controls are real buttons and labelled selects, so the view is keyboard usable; `state` (sort,
// filter, pair, open run) survives a live redraw.
import {
  caseLabel, cellRuns, changed, comparisonOf, FILTERS, filterRows, formatInterval, formatValue, isError, readMatrix, recordOf,
  recordsOf, sortColumns, sortRows, testText, wordDiff, CELL_KEYS,
} from "./matrix-data.js";
import { createRenderPolicy } from "./render.js";

const MARKS = { true: "✓", false: "✗", null: "·" };
const PREVIEW = 80; // characters of output in a cell
const MAX_JSON = 100_000;
const PAGE = 100; // rows drawn at a time
const FILTER_LABELS = { all: "all cases", failing: "failing", errored: "errored", changed: "changed between A and B" };
const policies = new WeakMap();

function policyFor(window) {
  if (!policies.has(window)) policies.set(window, createRenderPolicy(window));
  return policies.get(window);
}

function el(parent, tag, className, text) {
  const node = parent.ownerDocument.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  parent.appendChild(node);
  return node;
}

function button(parent, text, label, onClick, className = "") {
  const node = el(parent, "button", `elk-button ${className}`.trim(), text);
  node.type = "button";
  if (label) node.setAttribute("aria-label", label);
  node.addEventListener("click", onClick);
  return node;
}

function select(parent, label, options, value, onChange) {
  const wrap = el(parent, "label", "elk-matrix-control");
  el(wrap, "span", "", label);
  const node = el(wrap, "select");
  for (const [optionValue, text] of options) {
    const option = el(node, "option", "", text);
    option.value = String(optionValue);
  }
  node.value = String(value);
  node.setAttribute("aria-label", label);
  node.addEventListener("change", () => onChange(node.value));
  return node;
}

export function newState(model) {
  return { ready: false, cell: null, sort: null, cellKey: "score", columnOrder: null, filter: "all", pair: model?.pair ?? null,
    limit: PAGE, open: null, comparing: model ? model.mode !== "matrix" && model.pair !== null : false, scroll: [0, 0] };
}

function markOf(runs) {
  if (runs.some(isError)) return "⚠";
  const passed = runs.map((r) => r.passed);
  return MARKS[passed.includes(null) ? null : passed.every(Boolean)];
}

function cellSummary(runs) {
  if (!runs.length) return "…";
  const first = runs[0];
  if (isError(first)) return `⚠ ${first.status}: ${first.error}`.slice(0, PREVIEW);
  const scores = runs.map((r) => r.score).filter((s) => s !== null);
  let head = markOf(runs);
  if (scores.length) head += ` ${(scores.reduce((a, b) => a + b, 0) / scores.length).toFixed(2)}`;
  if (runs.length > 1) head += ` (${runs.filter((r) => r.passed).length}/${runs.length})`;
  const text = first.text.replace(/\s+/g, " ").trim();
  return `${head} · ${text.length > PREVIEW ? `${text.slice(0, PREVIEW)}…` : text}`;
}

function drawHeader(root, model) {
  const header = el(root, "div", "elk-matrix-header");
  const names = model.sources.map((s) => s.name).join(" → ");
  el(header, "span", "elk-matrix-title", `${model.mode === "matrix" ? "experiment" : model.mode} ${names}`);
  for (const source of model.sources) {
    const parts = [`${source.done}/${source.total} runs`, `${source.errors} errors`];
    if (source.cost !== null) parts.push(formatValue(source.cost, "usd"));
    el(header, "span", "elk-tag", parts.join(" · "));
  }
  if (model.live) el(header, "span", "elk-matrix-live", "running…");
}

function drawToolbar(root, model, state, redraw) {
  const bar = el(root, "div", "elk-matrix-toolbar");
  select(bar, "Show", FILTERS.map((f) => [f, FILTER_LABELS[f]]), state.filter, (value) => redraw({ filter: value }));
  select(bar, "Sort cells by", CELL_KEYS.map((k) => [k, k]), state.cellKey, (value) =>
    redraw({ cellKey: value, sort: state.sort?.column != null ? { ...state.sort, key: value } : state.sort }));
  const options = model.columns.map((c, n) => [n, c.label]);
  const pair = state.pair ?? [0, Math.min(1, model.columns.length - 1)];
  select(bar, "Column A", options, pair[0], (value) => redraw({ pair: [Number(value), pair[1]] }));
  select(bar, "Column B", options, pair[1], (value) => redraw({ pair: [pair[0], Number(value)] }));
  const toggle = button(bar, "Compare A and B", "Compare A and B", () => redraw({ comparing: !state.comparing, pair }));
  toggle.setAttribute("aria-pressed", String(state.comparing));
}

function sortButton(th, text, active, dir, label, onClick) {
  th.setAttribute("aria-sort", active ? (dir === "desc" ? "descending" : "ascending") : "none");
  button(th, `${text}${active ? (dir === "desc" ? " ▼" : " ▲") : ""}`, label, onClick, "elk-sort");
}

function templateOf(model, column) {
  const { source, template } = model.columns[column];
  return model.sources[source]?.templates[template] ?? "";
}

function nextDir(active, dir) {
  return active && dir === "desc" ? "asc" : "desc";
}

function drawTable(scroll, model, state, redraw, open) {
  const table = el(scroll, "table", "elk-matrix-table");
  const columns = sortColumns(model, state.columnOrder);
  const head = el(el(table, "thead"), "tr");
  const caseTh = el(head, "th");
  caseTh.scope = "col";
  const byCase = state.sort && state.sort.column === null;
  sortButton(caseTh, "case", byCase, state.sort?.dir, "Sort by case", () =>
    redraw({ sort: { column: null, dir: byCase && state.sort.dir === "asc" ? "desc" : "asc" } }));
  for (const column of columns) {
    const th = el(head, "th");
    th.scope = "col";
    const active = state.sort?.column === column;
    sortButton(th, model.columns[column].label, active, state.sort?.dir, `Sort by ${model.columns[column].label}`, () =>
      redraw({ sort: { column, key: state.cellKey, dir: nextDir(active, state.sort?.dir) } }));
    th.title = templateOf(model, column); // the prompt behind "prompt 2" (an attribute: shown as text)
  }
  const rows = visibleRows(model, state, columns);
  const body = el(table, "tbody");
  const grid = []; // the cell buttons by position on screen (null: a cell with no run yet), for the arrow keys
  for (const row of rows.slice(0, state.limit)) {
    const tr = el(body, "tr");
    const th = el(tr, "th", "elk-matrix-case", caseLabel(model.cases[row], row));
    th.scope = "row";
    const line = [];
    grid.push(line);
    for (const column of columns) {
      const runs = cellRuns(model, row, column);
      const td = el(tr, "td", runs.some(isError) ? "elk-cell-error" : runs.some((r) => r.passed === false) ? "elk-cell-fail" : "");
      if (!runs.length) {
        el(td, "span", "elk-matrix-pending", "…");
        line.push(null);
        continue;
      }
      const cell = button(td, cellSummary(runs), `Open run: ${caseLabel(model.cases[row], row)}, ${model.columns[column].label}`,
        (event) => open(row, column, event.currentTarget), "elk-cell");
      cell.tabIndex = -1;
      cell.dataset.at = `${row}:${column}`;
      cell.setAttribute("aria-keyshortcuts", "ArrowUp ArrowDown ArrowLeft ArrowRight Home End Enter");
      line.push(cell);
    }
  }
  rovingFocus(table, grid, state);
  drawAggregates(el(table, "tfoot"), model, state, columns, redraw);
  return rows;
}

// The table's cells are one Tab stop (the last cell reached, else the first): arrow keys move between cells, Home and
// End to the row's ends (with Ctrl: the table's), Enter opens the run (a button), Escape closes it. A cell with no run
// yet is skipped. https://www.w3.org/WAI/ARIA/apg/patterns/grid/#keyboardinteraction-forlayoutgrids
const MOVES = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };

function rovingFocus(table, grid, state) {
  const cells = grid.flat().filter(Boolean);
  if (!cells.length) return;
  const current = cells.find((cell) => cell.dataset.at === state.cell) ?? cells[0];
  current.tabIndex = 0;
  const hint = el(table, "caption", "elk-visually-hidden",
    "Arrow keys move between cells, Home and End to the ends of a row; Enter opens a run, Escape closes it.");
  table.prepend(hint); // a caption is the table's first child
  hint.id = `elk-matrix-hint-${++hints}`;
  table.setAttribute("aria-describedby", hint.id);
  let stop = current;
  const moveStop = (cell) => {
    stop.tabIndex = -1;
    cell.tabIndex = 0;
    stop = cell;
    state.cell = cell.dataset.at;
  };
  // A cell reached another way (a click, a search) becomes the Tab stop too: there is only ever one.
  table.addEventListener("focusin", (event) => event.target.matches?.("button.elk-cell") && moveStop(event.target));
  navigators.set(table, (event, from) => {
    if (event.altKey || event.metaKey || event.shiftKey) return;
    const r = grid.findIndex((line) => line.includes(from));
    if (r < 0) return;
    const c = grid[r].indexOf(from);
    const found = nextCell(grid, r, c, event.key, event.ctrlKey);
    if (found === undefined) return; // not a key of ours: the page keeps it
    event.preventDefault();
    event.stopPropagation(); // JupyterLab / Notebook 7 would move to the next notebook cell
    if (!found) return;
    moveStop(found);
    found.focus();
  });
  listenFirst(table.ownerDocument.defaultView);
}

// Lumino (JupyterLab, Notebook 7) handles its shortcuts in the document's capture phase, before any listener on the
// table, and binds the arrow keys to moving between notebook cells: the matrix listens on the window's capture phase,
// before it, and takes only the keys it moves with, only from its own cells. One listener per window; a table's
// navigator is dropped with the table.
const navigators = new WeakMap();
const listening = new WeakSet();

// A select of the matrix keeps the keys it reads (arrows, Home/End, Page Up/Down, a letter to jump to an option):
// in command mode Lumino took them first (ArrowDown moved to the next notebook cell, "a" and "b" inserted one) and
// the select never changed. The event goes on to the select's default action; only the notebook does not see it.
function selectKeeps(event) {
  const target = event.target;
  if (!target?.matches?.("select") || !target.closest(".elk-matrix")) return false;
  if (event.ctrlKey || event.metaKey || event.altKey) return false; // Ctrl+S and the like stay the notebook's
  return event.key !== "Tab" && event.key !== "Escape";
}

function listenFirst(window) {
  if (!window || listening.has(window)) return;
  listening.add(window);
  window.addEventListener("keydown", (event) => {
    if (selectKeeps(event)) {
      event.stopPropagation();
      return;
    }
    const from = event.target?.closest?.("button.elk-cell");
    const table = from?.closest("table.elk-matrix-table");
    navigators.get(table)?.(event, from);
  }, true);
}

let hints = 0;

// The cell `key` moves to from (r, c): a button, null (none that way), or undefined (not a moving key).
function nextCell(grid, r, c, key, ctrl) {
  const at = (row, column) => grid[row]?.[column] ?? null;
  const scan = (row, column, dr, dc) => {
    for (; row >= 0 && row < grid.length && column >= 0 && column < grid[row].length; row += dr, column += dc) {
      if (at(row, column)) return at(row, column);
    }
    return null;
  };
  if (MOVES[key]) return scan(r + MOVES[key][0], c + MOVES[key][1], ...MOVES[key]);
  if (key === "Home") return ctrl ? grid.flat().find(Boolean) ?? null : scan(r, 0, 0, 1);
  if (key === "End") return ctrl ? grid.flat().filter(Boolean).at(-1) ?? null : scan(r, grid[r].length - 1, 0, -1);
  return undefined;
}

// A long matrix draws PAGE rows at a time (sorting and filtering still see every case): the DOM, and a live redraw,
// stay the size of what a reader can look at.
function drawMore(root, count, state, redraw) {
  if (count <= state.limit) return;
  const bar = el(root, "div", "elk-matrix-toolbar");
  el(bar, "span", "", `Showing ${state.limit} of ${count} cases`);
  button(bar, `Show ${Math.min(PAGE, count - state.limit)} more`, "Show more cases", () => redraw({ limit: state.limit + PAGE }));
  button(bar, "Show all", "Show all cases", () => redraw({ limit: count }));
}

function visibleRows(model, state, columns) {
  const all = model.cases.map((_, n) => n);
  const kept = filterRows(model, all, state.filter, columns, state.pair);
  return sortRows(model, kept, state.sort);
}

function drawAggregates(foot, model, state, columns, redraw) {
  for (const field of model.fields) {
    const tr = el(foot, "tr");
    const th = el(tr, "th");
    th.scope = "row";
    const active = state.columnOrder?.field === field.name;
    sortButton(th, field.label, active, state.columnOrder?.dir, `Order columns by ${field.label}`, () =>
      redraw({ columnOrder: { field: field.name, dir: nextDir(active, state.columnOrder?.dir) } }));
    for (const column of columns) {
      const item = model.aggregates[column][field.name];
      const td = el(tr, "td", "elk-matrix-aggregate", formatValue(item?.value ?? null, field.form));
      if (item) {
        td.dataset.value = String(item.value); // the exact figures (shown rounded)
        td.title = item.interval ? `${item.value} [${item.interval[0]}, ${item.interval[1]}]` : String(item.value);
        if (item.interval) [td.dataset.low, td.dataset.high] = item.interval.map(String);
      }
      if (item?.interval) el(td, "span", "elk-interval", ` ${formatInterval(item.interval, field.form)}`);
    }
  }
}

function jsonText(value) {
  let text;
  try {
    text = JSON.stringify(value, null, 2) ?? "";
  } catch {
    text = "";
  }
  return text.length > MAX_JSON ? `${text.slice(0, MAX_JSON)}…` : text;
}

// One run opened: figures, output (the render policy), scores with reasons, request body, judges.
function drawRun(parent, model, records, run, options) {
  const section = el(parent, "section", "elk-matrix-run");
  const record = recordOf(records, run);
  el(section, "h4", "", `repeat ${run.repeat + 1}`);
  const facts = [run.status, run.replayed ? "replayed" : "live"];
  if (run.latency !== null) facts.push(formatValue(run.latency, "seconds"));
  facts.push(`${run.tokens[0]} prompt + ${run.tokens[1]} completion tokens`);
  if (run.cost !== null) facts.push(formatValue(run.cost, "usd"));
  el(section, "div", "elk-matrix-facts", facts.join(" · "));
  if (run.error) el(section, "div", "elk-error", run.error);
  const fullText = typeof record?.reply?.text === "string" ? record.reply.text : run.text;
  const output = el(section, "div", "elk-answer jp-RenderedHTMLCommon");
  policyFor(parent.ownerDocument.defaultView).render(output, fullText);
  options.typeset?.(output); // js/math.js blockTypesetter: only allowed formulas, scrubbed after
  if (!record && run.clipped) el(section, "div", "elk-note", "Output clipped: the full text is kept with the records once the experiment finishes.");
  if (run.scores.length) {
    const table = el(section, "table", "elk-matrix-scores");
    const head = el(el(table, "thead"), "tr");
    for (const name of ["scorer", "score", "passed", "reason"]) el(head, "th", "", name).scope = "col";
    const body = el(table, "tbody");
    for (const [name, score] of run.scores) {
      const tr = el(body, "tr");
      el(tr, "th", "", name).scope = "row";
      el(tr, "td", "", formatValue(score.value, "number"));
      el(tr, "td", "", score.passed ? "✓ pass" : "✗ fail");
      el(tr, "td", "", score.reason);
    }
  }
  drawFolded(section, "Request body", record ? jsonText(record.request) : "The request body is kept with the records once the experiment finishes.");
  const judges = Array.isArray(record?.judges) ? record.judges.slice(0, 16) : [];
  judges.forEach((judge, n) => {
    const details = drawFolded(section, `Judge ${n + 1} request`, jsonText(judge?.request));
    const reply = el(details.parentNode, "div", "elk-answer jp-RenderedHTMLCommon elk-judge-reply");
    reply.setAttribute("aria-label", `Judge ${n + 1} reply`);
    policyFor(parent.ownerDocument.defaultView).render(reply, typeof judge?.reply?.text === "string" ? judge.reply.text : "");
  });
  if (!record && run.judged) el(section, "div", "elk-note", `${run.judged} judge call(s): kept with the records once the experiment finishes.`);
}

function drawFolded(parent, summary, text) {
  const details = el(parent, "details", "elk-matrix-fold");
  el(details, "summary", "", summary);
  return el(details, "pre", "elk-plain", text);
}

function drawDetail(root, model, records, state, close, options) {
  const { row, column } = state.open;
  const runs = cellRuns(model, row, column);
  const pane = el(root, "div", "elk-matrix-detail");
  pane.setAttribute("role", "region");
  pane.setAttribute("aria-label", "Run details");
  const top = el(pane, "div", "elk-matrix-detail-top");
  const title = el(top, "h3", "", `${caseLabel(model.cases[row] ?? [], row)} · ${model.columns[column]?.label ?? ""}`);
  title.tabIndex = -1;
  button(top, "Close", "Close run details", close);
  const facts = el(pane, "dl", "elk-matrix-statistics");
  for (const [name, value] of [...(model.cases[row] ?? []), ["prompt", templateOf(model, column)]]) {
    el(facts, "dt", "", name);
    el(facts, "dd", "elk-matrix-field", value);
  }
  for (const run of runs) drawRun(pane, model, records, run, options);
  return title;
}

function drawDiffText(parent, parts, keep) {
  for (const part of parts) {
    if (part.op !== "same" && part.op !== keep) continue;
    el(parent, part.op === "same" ? "span" : part.op === "add" ? "ins" : "del", "", part.text);
  }
}

// What the two columns' figures say: each one's aggregates with intervals, the cases that changed, and the paired
// tests as the statistics computed them (docs/experiments-data.md), or why there are none.
function drawPairFigures(pane, model, pair, rows) {
  const list = el(pane, "dl", "elk-matrix-statistics");
  const add = (name, value) => {
    el(list, "dt", "", name);
    el(list, "dd", "", value);
  };
  for (const [side, column] of [["A", pair[0]], ["B", pair[1]]]) {
    const figures = model.fields.filter((f) => ["pass_rate", "mean_score"].includes(f.name)).map((f) => {
      const item = model.aggregates[column][f.name];
      return `${f.label} ${formatValue(item?.value ?? null, f.form)} ${formatInterval(item?.interval, f.form)}`.trim();
    });
    add(`${side}: ${model.columns[column].label}`, figures.join(" · ") || "no scores");
  }
  const both = rows.filter((row) => pair.every((column) => cellRuns(model, row, column).length));
  add("changed", `${both.filter((row) => changed(model, row, pair)).length} of ${both.length} cases with runs in both`);
  const comparison = comparisonOf(model, pair);
  if (comparison) {
    for (const test of comparison.tests) add(test.kind === "pass" ? "pass/fail test" : "score test", testText(test));
  } else {
    add("paired test", model.live ? "computed when the experiment finishes" : "not computed for this pair");
  }
}

function drawCompare(root, model, state, columns) {
  const [a, b] = state.pair;
  const pane = el(root, "div", "elk-matrix-compare");
  pane.setAttribute("role", "region");
  pane.setAttribute("aria-label", "Compare columns");
  drawPairFigures(pane, model, [a, b], visibleRows(model, { ...state, filter: "all" }, columns));
  const scroll = el(pane, "div", "elk-matrix-scroll");
  const table = el(scroll, "table", "elk-matrix-table elk-matrix-side");
  const head = el(el(table, "thead"), "tr");
  for (const text of ["case", `A: ${model.columns[a].label}`, `B: ${model.columns[b].label}`]) el(head, "th", "", text).scope = "col";
  const body = el(table, "tbody");
  for (const row of visibleRows(model, { ...state, pair: [a, b] }, columns).slice(0, state.limit)) {
    const left = cellRuns(model, row, a)[0];
    const right = cellRuns(model, row, b)[0];
    const tr = el(body, "tr", changed(model, row, [a, b]) ? "elk-changed" : "");
    el(tr, "th", "elk-matrix-case", caseLabel(model.cases[row], row)).scope = "row";
    const parts = wordDiff(left?.text ?? "", right?.text ?? "");
    for (const [run, keep] of [[left, "del"], [right, "add"]]) {
      const td = el(tr, "td", "elk-matrix-side-cell");
      if (!run) {
        el(td, "span", "elk-matrix-pending", "no run");
        continue;
      }
      el(td, "div", "elk-matrix-facts", `${markOf([run])} ${run.score === null ? "" : run.score.toFixed(2)} ${isError(run) ? run.error : ""}`.trim());
      drawDiffText(el(td, "div", "elk-diff"), parts, keep);
    }
  }
}

// Draws `view` into `host` (replacing what was there). `metadata` is the output's (the records); `state` carries the
// user's choices across redraws. Returns the model read, or null when the view is not one this code knows.
export function renderMatrix(host, view, metadata, state, options = {}) {
  const model = readMatrix(view);
  if (!model) return null;
  const records = recordsOf(metadata);
  if (!state.ready) Object.assign(state, newState(model), { ready: true }); // the first draw: the view's own pair
  let focusAfter = null;
  // What had the focus, found again after a redraw (a live update, a sort): by its accessible name.
  const focusKey = (node) => (node.matches?.(".elk-matrix-detail h3") ? "detail" : node.getAttribute?.("aria-label"));
  const draw = () => {
    const active = host.ownerDocument.activeElement;
    if (focusAfter === null && active && active !== host && host.contains(active)) focusAfter = focusKey(active);
    host.replaceChildren();
    const root = el(host, "div", "elk-panel elk-matrix");
    root.setAttribute("role", "region");
    root.setAttribute("aria-label", `Experiment ${model.sources.map((s) => s.name).join(" → ")}`);
    // Escape closes an open run from anywhere in the view (its pane, or the cell that opened it)
    root.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && state.open) {
        event.preventDefault();
        event.stopPropagation(); // JupyterLab would leave the cell's edit/command mode on it
        closeRun();
      }
    });
    if (state.pair === null && model.columns.length) state.pair = [0, Math.min(1, model.columns.length - 1)];
    drawHeader(root, model);
    if (!model.columns.length) {
      el(root, "div", "elk-note", "This experiment has no columns.");
      return;
    }
    drawToolbar(root, model, state, redraw);
    listenFirst(host.ownerDocument.defaultView); // the selects' keys, with or without cells
    const scroll = el(root, "div", "elk-matrix-scroll");
    // Kept as the user scrolls (reading it back at a redraw would force a layout of the old table).
    scroll.addEventListener("scroll", () => (state.scroll = [scroll.scrollLeft, scroll.scrollTop]), { passive: true });
    const rows = drawTable(scroll, model, state, redraw, openRun);
    // Setting a scroll offset forces a layout of the new table: only when there is one to restore.
    if (state.scroll[0] || state.scroll[1]) [scroll.scrollLeft, scroll.scrollTop] = state.scroll;
    drawMore(root, rows.length, state, redraw);
    if (state.comparing && state.pair) drawCompare(root, model, state, sortColumns(model, state.columnOrder));
    if (state.open && cellRuns(model, state.open.row, state.open.column).length) {
      const title = drawDetail(root, model, records, state, closeRun, options);
      if (focusAfter === "detail") title.focus();
    }
    if (focusAfter && focusAfter !== "detail") {
      [...root.querySelectorAll("button, select")].find((n) => n.getAttribute("aria-label") === focusAfter)?.focus();
    }
    focusAfter = null;
  };
  function redraw(change) {
    Object.assign(state, change);
    draw();
  }
  function openRun(row, column) {
    state.open = { row, column };
    state.cell = `${row}:${column}`; // the Tab stop of the table when the run is closed again
    focusAfter = "detail";
    draw();
  }
  function closeRun() {
    const { row, column } = state.open ?? {};
    state.open = null;
    draw();
    const label = `Open run: ${caseLabel(model.cases[row] ?? [], row)}, ${model.columns[column]?.label ?? ""}`;
    [...host.querySelectorAll("button.elk-cell")].find((n) => n.getAttribute("aria-label") === label)?.focus();
  }
  draw();
  return model;
}
