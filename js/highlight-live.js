// What the live panel highlights with: highlight.js's core and the bundled grammars, imported by panel.js with a
// dynamic import(), so that the bundle (one ESM file) evaluates it only when a settled code block or idle time asks
// for it, never before the panel's first paint (issue 25: its set-up was most of a 68-76 ms long task).
import { createHighlighter } from "./highlight.js";
import { LIVE_LANGUAGES } from "./languages-live.js";

export const highlighter = createHighlighter(LIVE_LANGUAGES);
