// JupyterLab's MathJax for saved turns, many turns per pass. Its ILatexTypesetter takes one element per call, and each
// call is a MathJax render that measures the page (a forced layout) before typesetting: opening a 100-turn notebook
// spent ~1 s in those measurements (bench/saved_notebook.py, docs/performance.md §15). JupyterLab's MathJax typesetter
// (@jupyterlab/mathjax-extension, 4.0 onwards) also exposes the MathJax document it renders with, `mathDocument()`,
// and its own typeset(element) is exactly `options.elements = [element]; clear().render()` on it: given that, the
// turns drawn in one task are rendered by one call over all their roots, with JupyterLab's own MathJax configuration.
// Any other typesetter (a MathJax 2 or KaTeX extension) is called once per root, as before.
import { blockTypesetter } from "../../js/math.js";

let shared = null; // [typesetter, its block typesetter]: one per page, so turns drawn together share a pass

export function typesetterFor(typesetter) {
  if (!typesetter) return undefined;
  if (shared?.[0] !== typesetter) shared = [typesetter, blockTypesetter((roots) => typesetAll(typesetter, roots))];
  return shared[1];
}

async function typesetAll(typesetter, roots) {
  const doc = await mathDocument(typesetter);
  if (!doc) {
    for (const root of roots) await typesetter.typeset(root);
    return;
  }
  doc.options.elements = roots;
  try {
    doc.clear().render();
  } finally {
    delete doc.options.elements;
  }
}

async function mathDocument(typesetter) {
  if (typeof typesetter.mathDocument !== "function") return null;
  try {
    const doc = await typesetter.mathDocument();
    return doc && typeof doc.clear === "function" && doc.options ? doc : null;
  } catch {
    return null; // MathJax failed to load: typeset(root) logs it, as JupyterLab does for its own outputs
  }
}
