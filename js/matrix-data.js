// An experiment's saved view (`application/vnd.elk-jupyter.experiment.v1+json`, written by
// elk_jupyter/experiments/matrix.py) read defensively, and what the matrix does with it: sort rows by a column,
// order columns by an aggregate, filter rows, the word diff of two outputs. A saved view may be hand-edited or
// hostile: every value is coerced to its type or dropped, lists are bounded. Pure: no DOM here.
import { clip } from "./view-data.js";

export const EXPERIMENT_MIME = "application/vnd.elk-jupyter.experiment.v1+json";
export const EXPERIMENT_VIEW_VERSION = 1;
export const EXPERIMENT_KEY = "elk_jupyter_experiment"; // the record in the output's metadata
export const SOURCES_KEY = "elk_jupyter_experiment_sources"; // compare / diff: the records shown
export const MODES = ["matrix", "compare", "diff"];
export const FILTERS = ["all", "failing", "errored", "changed"];
export const CELL_KEYS = ["score", "latency", "tokens", "cost", "output"];
const LIMITS = { cases: 20_000, columns: 512, runs: 200_000, fields: 64, scores: 64 };

const isObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);
const str = (value, limit) => (typeof value === "string" ? clip(value, limit) : "");
const num = (value) => (typeof value === "number" && Number.isFinite(value) ? value : null);
const index = (value, size) => (Number.isInteger(value) && value >= 0 && value < size ? value : null);
const entries = (value, limit) => (isObject(value) ? Object.entries(value).slice(0, limit) : []);

function readSource(source) {
  source = isObject(source) ? source : {};
  const list = (value, limit) => (Array.isArray(value) ? value.slice(0, 64).map((item) => str(item, limit)) : []);
  return {
    name: str(source.name, 200), id: str(source.id, 64), endpoint: str(source.endpoint, 32),
    repeats: Number.isInteger(source.repeats) && source.repeats > 0 ? source.repeats : 1,
    templates: list(source.templates, 4_000), system: str(source.system, 4_000), scorers: list(source.scorers, 200),
    done: Number.isInteger(source.done) ? source.done : 0, total: Number.isInteger(source.total) ? source.total : 0,
    errors: Number.isInteger(source.errors) ? source.errors : 0, cost: num(source.cost),
  };
}

const readPairs = (value, limit) => entries(value, LIMITS.fields).map(([k, v]) => [clip(k, 200), str(v, limit)]);

function readColumn(column, sources) {
  column = isObject(column) ? column : {};
  return { label: str(column.label, 400) || "?", model: str(column.model, 200), params: readPairs(column.params, 300),
    template: Number.isInteger(column.template) ? column.template : 0, source: index(column.source, sources) ?? 0,
    index: Number.isInteger(column.index) && column.index >= 0 ? column.index : null };
}

// The figures of docs/experiments-data.md (`summary_data`): the rows under the table, in order. pass@k and pass^k
// add a row per k from 2 (k = 1 is the pass rate).
const interval = (item) => (num(item?.low) !== null && num(item?.high) !== null ? [item.low, item.high] : null);
export const AGGREGATES = [
  { name: "pass_rate", label: "pass rate", form: "percent", read: (c) => [c.pass_rate?.value, interval(c.pass_rate)] },
  { name: "mean_score", label: "mean score", form: "number", read: (c) => [c.mean_score?.value, interval(c.mean_score)] },
  { name: "spread", label: "spread (repeats)", form: "number", read: (c) => [c.spread] },
  { name: "errors", label: "errors", form: "count", read: (c) => [c.errors] },
  { name: "replayed", label: "replayed", form: "count", read: (c) => [c.replayed] },
  { name: "tokens", label: "tokens", form: "count", read: (c) => [c.tokens?.total] },
  { name: "cost", label: "cost", form: "usd", read: (c) => [c.cost] },
  { name: "latency_p50", label: "latency p50", form: "seconds", read: (c) => [c.latency?.p50] },
  { name: "latency_p95", label: "latency p95", form: "seconds", read: (c) => [c.latency?.p95] },
];
const MAX_K = 16;

function readFigures(column) {
  column = isObject(column) ? column : {};
  const read = {};
  for (const row of AGGREGATES) {
    let value;
    let bounds;
    try {
      [value, bounds] = row.read(column);
    } catch {
      value = null;
    }
    if (num(value) !== null) read[row.name] = { value, interval: bounds ?? null };
  }
  for (const [key, label] of [["pass_at_k", "pass@"], ["pass_hat_k", "pass^"]]) {
    for (const [k, value] of entries(column[key], MAX_K)) {
      if (/^\d{1,2}$/.test(k) && Number(k) >= 2 && num(value) !== null) read[`${key}:${k}`] = { value, interval: null, label: `${label}${k}` };
    }
  }
  return read;
}

// The rows present in at least one column: the fixed ones in order, then pass@k and pass^k by k.
function figureRows(figures) {
  const present = new Set(figures.flatMap((f) => Object.keys(f)));
  const rows = AGGREGATES.filter((row) => present.has(row.name)).map(({ name, label, form }) => ({ name, label, form }));
  for (const key of ["pass_at_k", "pass_hat_k"]) {
    const ks = [...present].filter((name) => name.startsWith(`${key}:`)).map((name) => Number(name.split(":")[1]));
    for (const k of ks.sort((a, b) => a - b)) {
      rows.push({ name: `${key}:${k}`, label: `${key === "pass_at_k" ? "pass@" : "pass^"}${k}`, form: "percent" });
    }
  }
  return rows;
}

const VERDICTS = ["a_better", "b_better", "no_difference", "too_few"];
function readTest(test) {
  if (!isObject(test)) return null;
  const count = (value) => (Number.isInteger(value) && value >= 0 ? value : 0);
  return { kind: test.kind === "score" ? "score" : "pass", cases: count(test.cases), effect: num(test.effect),
    low: num(test.low), high: num(test.high), p_value: num(test.p_value), a_better: count(test.a_better),
    b_better: count(test.b_better), needed: count(test.needed),
    verdict: VERDICTS.includes(test.verdict) ? test.verdict : "too_few" };
}

function readComparison(entry) {
  if (!isObject(entry)) return null;
  return { a: entry.a, b: entry.b, cases: Number.isInteger(entry.cases) ? entry.cases : 0,
    tests: [readTest(entry.pass), readTest(entry.score)].filter(Boolean) };
}

// A test read the other way round: B against A.
function flipped(test) {
  const verdict = { a_better: "b_better", b_better: "a_better" }[test.verdict] ?? test.verdict;
  const neg = (v) => (v === null ? null : -v);
  return { ...test, effect: neg(test.effect), low: neg(test.high), high: neg(test.low), a_better: test.b_better,
    b_better: test.a_better, verdict };
}

// The paired tests of two columns of the view (null: not computed, or columns of two experiments).
export function comparisonOf(model, pair) {
  if (!pair) return null;
  const [a, b] = pair.map((n) => model.columns[n]);
  if (model.comparison && model.pair && model.pair[0] === pair[0] && model.pair[1] === pair[1]) return model.comparison;
  if (!a || !b) return null;
  if (a.source !== b.source) { // two experiments (a diff): the pairs the kernel tested, either way round
    for (const entry of model.between) {
      if (entry.a === pair[0] && entry.b === pair[1]) return entry;
      if (entry.a === pair[1] && entry.b === pair[0]) return { ...entry, a: pair[0], b: pair[1], tests: entry.tests.map(flipped) };
    }
    return null;
  }
  for (const entry of model.comparisons[a.source] ?? []) {
    if (entry.a === a.index && entry.b === b.index) return entry;
    if (entry.a === b.index && entry.b === a.index) return { ...entry, a: a.index, b: b.index, tests: entry.tests.map(flipped) };
  }
  return null;
}

export function testText(test) {
  const what = test.kind === "pass" ? "pass rate" : "mean score";
  const sign = (v, form) => (v === null ? "–" : `${v > 0 ? "+" : ""}${form === "percent" ? `${(v * 100).toFixed(0)}%` : v.toFixed(3)}`);
  let effect = sign(test.effect, test.kind === "pass" ? "percent" : "number");
  if (test.low !== null && test.high !== null) effect += ` [${sign(test.low)}, ${sign(test.high)}]`;
  const counts = `${test.a_better} cases A better, ${test.b_better} B better of ${test.cases}`;
  if (test.p_value === null || test.verdict === "too_few") {
    return `${what}: ${effect} (${counts}): too few cases to tell — the test needs at least ${test.needed} cases that differ`;
  }
  const said = { a_better: "A is better", b_better: "B is better" }[test.verdict] ?? "no difference shown";
  const name = test.kind === "pass" ? "exact McNemar" : "paired bootstrap";
  return `${what}: ${effect} (${counts}), ${name} p = ${Number(test.p_value.toPrecision(3))}: ${said}`;
}

function readScore(score) {
  score = isObject(score) ? score : {};
  return { value: num(score.value), passed: score.passed === true, reason: str(score.reason, 2_000) };
}

function readRun(run, sizes) {
  if (!isObject(run)) return null;
  const caseIndex = index(run.case, sizes.cases);
  const column = index(run.column, sizes.columns);
  if (caseIndex === null || column === null) return null;
  const tokens = Array.isArray(run.tokens) ? run.tokens.slice(0, 2).map((t) => (Number.isInteger(t) && t >= 0 ? t : 0)) : [];
  const record = Array.isArray(run.record) && run.record.length === 2 && run.record.every((n) => Number.isInteger(n) && n >= 0)
    ? [run.record[0], run.record[1]] : null;
  return {
    case: caseIndex, column, repeat: Number.isInteger(run.repeat) && run.repeat >= 0 ? run.repeat : 0,
    status: typeof run.status === "string" && /^[a-z_]{1,32}$/.test(run.status) ? run.status : "unknown",
    error: str(run.error, 2_000), text: str(run.text, 20_000), clipped: run.clipped === true,
    passed: run.passed === true ? true : run.passed === false ? false : null, score: num(run.score),
    scores: entries(run.scores, LIMITS.scores).map(([name, score]) => [clip(name, 200), readScore(score)]),
    latency: num(run.latency), tokens: [tokens[0] ?? 0, tokens[1] ?? 0], cost: num(run.cost),
    replayed: run.replayed === true, judged: Number.isInteger(run.judged) && run.judged > 0 ? run.judged : 0, record,
  };
}

// The view as the matrix draws it, or null when it is not a view this code knows (shown as plain text instead).
export function readMatrix(view) {
  if (!isObject(view) || view.version !== EXPERIMENT_VIEW_VERSION) return null;
  const sources = (Array.isArray(view.sources) ? view.sources.slice(0, 2) : []).map(readSource);
  if (!sources.length) sources.push(readSource({}));
  const cases = (Array.isArray(view.cases) ? view.cases.slice(0, LIMITS.cases) : []).map((c) => readPairs(c, 300));
  const columns = (Array.isArray(view.columns) ? view.columns.slice(0, LIMITS.columns) : []).map((c) =>
    readColumn(c, sources.length));
  const seen = sources.map(() => 0);
  for (const column of columns) {
    const position = seen[column.source]++;
    column.index ??= position;
  }
  const summaries = sources.map((_, n) => (Array.isArray(view.summaries) && isObject(view.summaries[n]) ? view.summaries[n] : {}));
  const aggregates = columns.map((c) => {
    const listed = Array.isArray(summaries[c.source].columns) ? summaries[c.source].columns : [];
    return readFigures(listed.find((item) => isObject(item) && item.index === c.index) ?? listed[c.index]);
  });
  const fields = figureRows(aggregates);
  const comparisons = summaries.map((s) => (Array.isArray(s.comparisons) ? s.comparisons.slice(0, 1024) : [])
    .map(readComparison).filter(Boolean));
  const sizes = { cases: cases.length, columns: columns.length };
  const runs = (Array.isArray(view.runs) ? view.runs.slice(0, LIMITS.runs) : []).map((r) => readRun(r, sizes)).filter(Boolean);
  const cells = new Map(); // "case:column" -> its runs, by repeat: built once, so drawing a cell is O(its runs)
  for (const run of runs) {
    const key = `${run.case}:${run.column}`;
    if (!cells.has(key)) cells.set(key, []);
    cells.get(key).push(run);
  }
  for (const list of cells.values()) list.sort((a, b) => a.repeat - b.repeat);
  const pair = Array.isArray(view.pair) && view.pair.length === 2 && view.pair.every((n) => index(n, columns.length) !== null)
    ? [view.pair[0], view.pair[1]] : null;
  const comparison = pair && isObject(view.comparison) ? { ...readComparison(view.comparison), a: pair[0], b: pair[1] } : null;
  const between = (Array.isArray(view.between) ? view.between.slice(0, 256) : []).map(readComparison).filter(Boolean);
  return { mode: MODES.includes(view.mode) ? view.mode : "matrix", live: view.live === true, sources, cases, columns,
    aggregates, fields, comparisons, comparison, between, runs, cells, pair };
}

export const cellRuns = (model, row, column) => model.cells.get(`${row}:${column}`) ?? [];
export const isError = (run) => !["completed", "incomplete"].includes(run.status);

// A cell's value for sorting: the mean of its runs' `key` (a score falls back to the share of passing runs).
export function cellValue(model, row, column, key = "score") {
  const runs = cellRuns(model, row, column);
  if (!runs.length) return null;
  if (key === "output") return runs[0].text;
  const pick = { score: (r) => r.score ?? (r.passed === null ? null : Number(r.passed)), latency: (r) => r.latency,
    tokens: (r) => r.tokens[0] + r.tokens[1], cost: (r) => r.cost }[key] ?? ((r) => r.score);
  const values = runs.map(pick).filter((v) => v !== null);
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : null;
}

// Values with nulls last whatever the direction; ties keep their order (Array.prototype.sort is stable).
function compareValues(a, b, dir) {
  if (a === null || b === null) return a === b ? 0 : a === null ? 1 : -1;
  const order = typeof a === "string" || typeof b === "string" ? String(a).localeCompare(String(b)) : a - b;
  return dir === "desc" ? -order : order;
}

// Row numbers in the order of `sort`: {by: "case"} (their order), or {column, key, dir}.
export function sortRows(model, rows, sort) {
  if (!sort || sort.column === undefined || sort.column === null) {
    return sort?.dir === "desc" ? [...rows].reverse() : [...rows];
  }
  const values = new Map(rows.map((row) => [row, cellValue(model, row, sort.column, sort.key)]));
  return [...rows].sort((a, b) => compareValues(values.get(a), values.get(b), sort.dir));
}

// Column numbers ordered by an aggregate field (null: their own order).
export function sortColumns(model, order) {
  const columns = model.columns.map((_, n) => n);
  if (!order?.field) return columns;
  const value = (n) => model.aggregates[n]?.[order.field]?.value ?? null;
  return columns.sort((a, b) => compareValues(value(a), value(b), order.dir));
}

// Whether two cells differ: the first repeat's output, or whether it passed.
export function changed(model, row, pair) {
  if (!pair) return false;
  const [a, b] = pair.map((column) => cellRuns(model, row, column)[0]);
  if (!a || !b) return Boolean(a) !== Boolean(b);
  return a.text !== b.text || a.passed !== b.passed || isError(a) !== isError(b);
}

// The rows `filter` keeps, among `columns` (those shown): failing (a run that did not pass), errored (a run
// that did not complete), changed (between the two columns of `pair`).
export function filterRows(model, rows, filter, columns, pair) {
  const any = (row, test) => columns.some((column) => cellRuns(model, row, column).some(test));
  switch (filter) {
    case "failing":
      return rows.filter((row) => any(row, (run) => run.passed === false));
    case "errored":
      return rows.filter((row) => any(row, isError));
    case "changed":
      return rows.filter((row) => changed(model, row, pair));
    default:
      return rows;
  }
}

// Bidi embeddings, overrides and isolates: one left open in a value (a right-to-left override) reordered the text
// after it, the other fields of the label (q=<U+202E>abc, want=zz read "q=zz=tnaw ,cba"). The label is a summary in
// logical order without them; the value as it is shows in the run's details.
const BIDI_CONTROLS = /[\u202a-\u202e\u2066-\u2069]/g;
const logical = (text) => text.replace(BIDI_CONTROLS, "");

export function caseLabel(fields, row) {
  const text = fields.map(([k, v]) => `${logical(k)}=${logical(v)}`).join(", ");
  return text ? clip(text, 80) : `case ${row + 1}`;
}

export function formatValue(value, form) {
  if (value === null || value === undefined) return "–";
  switch (form) {
    case "percent":
      return `${(value * 100).toFixed(0)}%`;
    case "count":
      return String(Math.round(value));
    case "usd":
      return `$${Number(value.toPrecision(4))}`;
    case "seconds":
      return `${value.toFixed(2)} s`;
    default:
      return value.toFixed(2);
  }
}

export function formatInterval(interval, form) {
  return interval ? `[${formatValue(interval[0], form)}, ${formatValue(interval[1], form)}]` : "";
}

// Words and the runs of white space between them: what the diff compares.
export const tokenize = (text) => (typeof text === "string" ? text.match(/\s+|[^\s]+/g) ?? [] : []);
const MAX_DIFF_CELLS = 4_000_000; // the LCS table's size bound: past it the changed middle is shown as replaced

function pushPart(parts, op, text) {
  if (!text) return;
  const last = parts[parts.length - 1];
  if (last && last.op === op) last.text += text;
  else parts.push({ op, text });
}

// A word diff of `a` into `b`: [{op: "same" | "del" | "add", text}], adjacent parts of one kind merged. The common
// head and tail are taken first (linear); the middle by a longest-common-subsequence table when it is small enough.
export function wordDiff(a, b) {
  const x = tokenize(a);
  const y = tokenize(b);
  let head = 0;
  while (head < x.length && head < y.length && x[head] === y[head]) head++;
  let tail = 0;
  while (tail < x.length - head && tail < y.length - head && x[x.length - 1 - tail] === y[y.length - 1 - tail]) tail++;
  const xs = x.slice(head, x.length - tail);
  const ys = y.slice(head, y.length - tail);
  const parts = [];
  pushPart(parts, "same", x.slice(0, head).join(""));
  if (xs.length * ys.length > MAX_DIFF_CELLS) {
    pushPart(parts, "del", xs.join(""));
    pushPart(parts, "add", ys.join(""));
  } else {
    middleDiff(xs, ys, parts);
  }
  pushPart(parts, "same", x.slice(x.length - tail).join(""));
  return parts;
}

function middleDiff(xs, ys, parts) {
  const n = xs.length;
  const m = ys.length;
  const width = m + 1;
  const table = new Uint32Array((n + 1) * width); // table[i][j]: LCS length of xs[i:] and ys[j:]
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      table[i * width + j] = xs[i] === ys[j] ? table[(i + 1) * width + j + 1] + 1
        : Math.max(table[(i + 1) * width + j], table[i * width + j + 1]);
    }
  }
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (xs[i] === ys[j]) {
      pushPart(parts, "same", xs[i]);
      i++;
      j++;
    } else if (table[(i + 1) * width + j] >= table[i * width + j + 1]) {
      pushPart(parts, "del", xs[i++]);
    } else {
      pushPart(parts, "add", ys[j++]);
    }
  }
  while (i < n) pushPart(parts, "del", xs[i++]);
  while (j < m) pushPart(parts, "add", ys[j++]);
}

// The full record of a run, from the output's metadata (null while live, or when the metadata is not ours).
export function recordsOf(metadata) {
  if (!isObject(metadata)) return [];
  if (isObject(metadata[EXPERIMENT_KEY])) return [metadata[EXPERIMENT_KEY]];
  return Array.isArray(metadata[SOURCES_KEY]) ? metadata[SOURCES_KEY].slice(0, 2) : [];
}

export function recordOf(records, run) {
  if (!run?.record) return null;
  const [source, position] = run.record;
  const runs = records[source]?.runs;
  const found = Array.isArray(runs) ? runs[position] : null;
  return isObject(found) ? found : null;
}
