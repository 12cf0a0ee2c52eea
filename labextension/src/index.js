// elk-jupyter-renderer: a JupyterLab mime renderer for finished turns. It draws the output's saved VIEW with the
// live panel's own modules (js/view.js, the one render policy in js/render.js, js/panel.css), so a reopened notebook
// looks like the live one, with no kernel and no widget state. `safe: true` lets JupyterLab use it in untrusted
// notebooks too: everything in the VIEW is treated as hostile by the policy. A VIEW it does not know is shown as the
// bundle's own plain text. https://jupyterlab.readthedocs.io/en/stable/extension/extension_points.html#mime-renderer-extensions
// A second factory draws an experiment (application/vnd.elk-jupyter.experiment.v1+json) as the interactive matrix
// of js/matrix.js, reading the full runs from the experiment record in the output's metadata.
import { Widget } from "@lumino/widgets";
import "../../js/panel.css";
import "../../js/matrix.css";
import { EXPERIMENT_MIME } from "../../js/matrix-data.js";
import { newState, renderMatrix } from "../../js/matrix.js";
import { clip, isKnownView, staticSource, VIEW_MIME } from "../../js/view-data.js";
import { createHighlighter } from "../../js/highlight.js";
import { renderTurn } from "../../js/view.js";
import { drawWhenShown } from "../../js/when-shown.js";
import { typesetterFor } from "./typeset.js";
import { SAVED_LANGUAGES } from "./languages.js";

const MAX_FALLBACK_CHARS = 200_000;
let highlighter = null; // one for every saved turn, made on first use

function plainText(data) {
  const value = data?.["text/plain"];
  const text = Array.isArray(value) ? value.filter((line) => typeof line === "string").join("") : value;
  return typeof text === "string" ? clip(text, MAX_FALLBACK_CHARS) : "";
}

// The bundle's text/plain in a panel frame, with a line saying why.
function renderFallback(node, data, reason) {
  const root = node.ownerDocument.createElement("div");
  root.className = "elk-panel elk-fallback";
  const why = root.appendChild(node.ownerDocument.createElement("div"));
  why.className = "elk-note";
  why.textContent = reason;
  const pre = root.appendChild(node.ownerDocument.createElement("pre"));
  pre.className = "elk-plain";
  pre.textContent = plainText(data);
  node.replaceChildren(root);
}

class TurnRenderer extends Widget {
  constructor(options) {
    super();
    this.addClass("elk-turn-output");
    this._typesetter = options.latexTypesetter || null;
    this._resolver = options.resolver || null;
    this._cleanup = null;
    this._cancel = null;
    this._cancelTypeset = null;
  }

  renderModel(model) {
    this._cancel?.();
    this._cancelTypeset?.();
    this._cleanup?.();
    this._cleanup = null;
    this.node.replaceChildren();
    const view = model.data[VIEW_MIME];
    if (!isKnownView(view)) {
      const version = view !== null && typeof view === "object" ? view.version : undefined;
      renderFallback(this.node, model.data, `This turn was saved in a format this elk-jupyter renderer does not know (view version ${clip(String(version), 40)}); its text:`);
      return Promise.resolve();
    }
    // Drawn when it is about to be seen, else in idle time (js/when-shown.js): opening a long notebook shows its
    // first turns without waiting for the others.
    this._cancel = drawWhenShown(this.node, (shown) => this._draw(model, view, shown));
    return Promise.resolve();
  }

  _draw(model, view, shown) {
    try {
      // One MathJax pass for the turns drawn together, over the formulas the math policy allowed; what it builds is
      // scrubbed after (./typeset.js). A turn drawn out of sight has its formulas typeset when it comes into view, as
      // MathJax's own lazy typesetting does (https://docs.mathjax.org/en/latest/output/lazy.html): MathJax measures
      // the text around each formula, which in a cell JupyterLab has not attached yet reads as nothing (the formula
      // came out at the wrong size) and in an attached one forces a layout of the page, at every pass.
      const now = typesetterFor(this._typesetter);
      const typeset = now && !shown ? (root) => this._typesetWhenShown(now, root) : now;
      highlighter ??= createHighlighter(SAVED_LANGUAGES);
      this._cleanup = renderTurn(this.node, staticSource(view, model.metadata), { typeset, highlighter, resolveFile: this._fileUrl() });
    } catch (error) {
      renderFallback(this.node, model.data, "This turn could not be drawn; its text:");
    }
  }

  _typesetWhenShown(typeset, root) {
    this._cancelTypeset?.();
    this._cancelTypeset = drawWhenShown(root, () => typeset(root), { idle: false });
  }

  // An audio clip saved beside the notebook: its path relative to the notebook, then the server's download URL for
  // it (/files/..., the way JupyterLab resolves a Markdown cell's relative image). The name is a digest (view-data.js).
  _fileUrl() {
    const resolver = this._resolver;
    if (!resolver) return undefined;
    return async (name) => resolver.getDownloadUrl(await resolver.resolveUrl(name));
  }

  dispose() {
    this._cancel?.();
    this._cancelTypeset?.();
    this._cleanup?.();
    this._cleanup = null;
    super.dispose();
  }
}

// An experiment's matrix. JupyterLab calls renderModel again on the same renderer when a live output is updated in
// place (update_display_data), so the user's sort, filter and open run are kept here across updates.
class ExperimentRenderer extends Widget {
  constructor(options) {
    super();
    this.addClass("elk-experiment-output");
    this._typesetter = options.latexTypesetter || null;
    this._state = null;
  }

  renderModel(model) {
    const view = model.data[EXPERIMENT_MIME];
    const typeset = typesetterFor(this._typesetter); // the math policy's, as for turns
    try {
      this._state ??= newState(null); // filled from the view on its first draw
      if (renderMatrix(this.node, view, model.metadata, this._state, { typeset })) {
        return Promise.resolve();
      }
      const version = view !== null && typeof view === "object" ? view.version : undefined;
      renderFallback(this.node, model.data, `This experiment was saved in a format this elk-jupyter renderer does not know (view version ${clip(String(version), 40)}); its text:`);
    } catch (error) {
      renderFallback(this.node, model.data, "This experiment could not be drawn; its text:");
    }
    return Promise.resolve();
  }
}

const turnExtension = {
  id: "elk-jupyter-renderer:turn",
  name: "elk-jupyter-renderer",
  rendererFactory: {
    safe: true,
    mimeTypes: [VIEW_MIME],
    defaultRank: 0,
    createRenderer: (options) => new TurnRenderer(options),
  },
  rank: 0,
  dataType: "json",
};

const experimentExtension = {
  id: "elk-jupyter-renderer:experiment",
  name: "elk-jupyter-renderer-experiment",
  rendererFactory: {
    safe: true,
    mimeTypes: [EXPERIMENT_MIME],
    defaultRank: 0,
    createRenderer: (options) => new ExperimentRenderer(options),
  },
  rank: 0,
  dataType: "json",
};

export default [turnExtension, experimentExtension];
