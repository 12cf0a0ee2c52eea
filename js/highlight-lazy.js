// A highlighter whose real one (highlight.js's createHighlighter) is loaded on demand: `load()` returns a promise of
// it. Until it is there, `highlight` returns null and hands the HTML to `later` once it is (as a lazily loaded grammar
// does), so a code block stays plain for that moment and is highlighted then. `prepareWhenIdle(window)` starts the
// load when the page is idle (after the first paint), so the first settled block rarely waits.
export function lazyHighlighter(load) {
  let real = null;
  let loading = null;
  const start = () => {
    loading ??= load().then((highlighter) => (real = highlighter));
    return loading;
  };
  function highlight(code, language, later = () => {}) {
    if (real) return real.highlight(code, language, later);
    start().then(
      (highlighter) => {
        const html = highlighter.highlight(code, language, later);
        if (html !== null) later(html);
      },
      () => {}, // failed to load: the block stays plain
    );
    return null;
  }
  function prepareWhenIdle(win) {
    if (loading) return;
    const idle = win.requestIdleCallback ? (f) => win.requestIdleCallback(f, { timeout: 1000 }) : (f) => win.setTimeout(f, 200);
    idle(() => start().catch(() => {}));
  }
  return { highlight, prepareWhenIdle, languages: () => (real ? real.languages() : []) };
}
